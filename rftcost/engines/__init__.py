"""The ``bill()`` front door: where the billing kernel runs.

Above the kernel (``billing.bill_events``) and the engines that run it, so that
arrows point one way: this package dispatches a log to the kernel in memory, to
hash buckets of jobs on disk (``buckets``), or to a Spark cluster
(``engines.spark``, the ``rftcost[spark]`` extra, imported lazily); none of them
imports it back. Every path gives the same cents and the same documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from numbers import Integral
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from rftcost.billing import Bill, bill_events
from rftcost.buckets import auto_buckets, bill_in_buckets
from rftcost.errors import InputError
from rftcost.events.readers import EventLog, ProgressCallback, read_events
from rftcost.events.survey import refuse_folders_without_logs, survey_logs
from rftcost.policy import Policy, load_policy
from rftcost.workers import available_workers

__all__ = ["bill"]


def bill(
    source: str | Path | Sequence[str | Path] | EventLog | pd.DataFrame,
    *,
    policy: Policy | str | Path | None = None,
    assume_tz: str | None = None,
    on_progress: ProgressCallback | None = None,
    buckets: int | Literal["auto"] | None = "auto",
    engine: Literal["pandas", "spark"] = "pandas",
    workdir: str | Path | None = None,
    workers: int | Literal["auto"] = 1,
    keep_timeline: bool = False,
    follow_links: bool = False,
) -> Bill:
    """Bill event logs: paths (files or folders), an ``EventLog``, or a frame of events.

    A frame holds canonical columns (``ts`` as timestamps, ISO strings or epoch
    seconds); it goes through the same validation as a file.

    Paths larger than memory are billed in ``buckets`` hash buckets of jobs on disk
    (``"auto"``: above ``buckets.AUTO_BUCKET_EVENTS``; ``None`` or 1: in memory), with
    ``workdir`` for the bucket files, by ``workers`` processes (``"auto"``: one per
    CPU, at most 4; a script that uses more than one must guard its entry point with
    ``if __name__ == "__main__":``, as each worker process imports it); a Parquet log
    written job by job is billed in runs of whole jobs straight from the file instead
    (``job_runs``), with no bucket file. ``engine="spark"``
    runs the same kernel on a Spark cluster (the ``rftcost[spark]`` extra). Every path
    gives the same cents. A bill made in buckets keeps amounts and per-job time but not
    the time line's pieces and intervals, unless ``keep_timeline`` (an audit's evidence
    needs them; memory then grows with the log). ``follow_links`` reads the files that
    links inside a folder point at outside it (else they are noted and left).

    A folder that holds no event log, an empty list of paths, or an ``engine``,
    ``buckets`` or ``workers`` it cannot use raises ``InputError`` naming it, as a path
    that does not exist does; a file that holds no record reads as zero records
    (``log.counts()``).
    """
    _check_options(buckets=buckets, engine=engine, workers=workers)
    resolved = load_policy(policy)
    if isinstance(source, EventLog):
        log = source
    elif isinstance(source, pd.DataFrame):
        log = _log_from_frame(source, resolved, assume_tz)
    else:
        paths = _paths(source)
        if not paths:  # an empty glob, say: no log is not a bill of 0.00
            raise InputError(
                "no event log named: give files or folders of logs", path="rftcost.bill"
            )
        # A folder named that holds no log is a wrong path, not a bill of 0.00 (as the
        # command says, and as a path that does not exist is refused).
        refuse_folders_without_logs(survey_logs(paths, follow_links=follow_links))
        if engine == "spark":
            from rftcost.engines.spark import bill_with_spark  # the pyspark extra, lazily

            return bill_with_spark(
                paths, resolved, assume_tz=assume_tz, buckets=buckets, follow_links=follow_links
            )
        processes = available_workers() if workers == "auto" else workers
        if buckets == "auto":
            buckets = auto_buckets(paths, workers=processes)
        if buckets is not None and buckets > 1:
            return bill_in_buckets(
                paths,
                resolved,
                buckets,
                assume_tz=assume_tz,
                workdir=workdir,
                workers=processes,
                keep_timeline=keep_timeline,
                on_progress=on_progress,
                follow_links=follow_links,
            )
        log = read_events(
            paths,
            assume_tz=assume_tz,
            policy=resolved,
            on_progress=on_progress,
            follow_links=follow_links,
        )
    result = bill_events(log.events, resolved, reader_problems=log.problems, log=log)
    if on_progress:
        on_progress("bill", 1, 1)
    return result


def _paths(source: object) -> list[str | Path]:
    """The paths ``source`` names: a ``str`` or ``Path``, or a list (any iterable) of them;
    anything else is refused naming what was given (not a ``TypeError`` from iteration)."""
    if isinstance(source, str | Path):
        return [source]
    given = list(source) if isinstance(source, Iterable) else None
    if given is None or not all(isinstance(p, str | Path) for p in given):
        kind = type(source).__name__ if given is None else "a list holding other things"
        raise InputError(
            "reads paths (a str or Path, or a list of them), an EventLog or a DataFrame of"
            f" events, not {kind}",
            path="rftcost.bill",
        )
    return given


def _check_options(*, buckets: object, engine: object, workers: object) -> None:
    """``InputError`` naming an option ``bill`` cannot use (what the command's own options
    refuse), rather than a type error from deep inside, or a silent other meaning."""

    def count(value: object) -> bool:
        return isinstance(value, Integral) and not isinstance(value, bool) and int(value) >= 1

    if engine not in ("pandas", "spark"):
        raise InputError("not an engine: pandas or spark", path="engine", value=repr(engine))
    if not (buckets is None or buckets == "auto" or count(buckets)):
        raise InputError(
            'a whole number of buckets (1 or more), "auto" or None',
            path="buckets",
            value=repr(buckets),
        )
    if not (workers == "auto" or count(workers)):
        raise InputError(
            'a whole number of processes (1 or more) or "auto"', path="workers", value=repr(workers)
        )


def _log_from_frame(frame: pd.DataFrame, policy: Policy, assume_tz: str | None) -> EventLog:
    from rftcost.events.readers import deduplicate, normalize_records, problems_from_rejections

    raw = frame if "line" in frame else frame.assign(line=np.arange(1, len(frame) + 1))
    events, rejected = normalize_records(raw, source="<frame>", assume_tz=assume_tz, policy=policy)
    events, duplicates, conflicts = deduplicate(events)
    rejected = pd.concat([rejected, conflicts], ignore_index=True)
    return EventLog(
        events=events,
        rejected=rejected,
        duplicates=duplicates,
        problems=problems_from_rejections(rejected),
        files=("<frame>",),
    )
