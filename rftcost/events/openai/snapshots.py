"""Duplicates: job snapshots merged field by field, objects read twice counted once.

Several snapshots of one job (create, pause, resume, cancel responses, retrieves)
merge into one row: the latest status wins (the most advanced, unless the events
show a pause resumed) and an absent field never overrides a present one;
disagreements are noted with the value used. Events, checkpoints and webhooks
with the same id within a job are one (other content is a problem). A job's method
is RFT when named so, or inferred from RFT metrics; another method is skipped.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from rftcost.events.openai.frames import (
    is_missing,
    lookup,
    optional_text,
    true_where,
    utc_from_epoch,
)
from rftcost.events.openai.messages import FINAL_STATUSES
from rftcost.events.openai.model import ImportProblem
from rftcost.events.openai.reading import line_in_file

__all__ = ["dedupe_objects", "merge_snapshots", "resolve_methods", "sharing_conflicts"]


_STATUS_RANK = {
    "created": 0,
    "validating_files": 0,
    "pending": 1,
    "not_running": 1,
    "queued": 1,
    "running": 2,
    "paused": 3,
}
"""How advanced a status is (Azure's ``created``, ``pending`` and ``notRunning`` come before
it runs); a final status ranks above them all, one the importer does not know with
``running`` (a job in some state of its run: never above how it ended)."""
_UNKNOWN_STATUS_RANK = 2.0


_RESUMED_PAUSE_RANK = 0.5
"""A pause its job's events show resumed: below ``queued`` and ``running`` (what a resume
returns to), above ``validating_files`` (which no resume returns to)."""


_AGREEING_FIELDS = {
    "data_sharing": ("data sharing", "shared_with_openai"),
    "team": ("team", "metadata.team"),
    "project": ("project", "metadata.project"),
}
"""Fields whose disagreement between snapshots changes the bill: reported with the value used."""


def merge_snapshots(
    jobs: pd.DataFrame, events: pd.DataFrame
) -> tuple[pd.DataFrame, int, list[str]]:
    """One row per job: its snapshots merged field by field (kind 2).

    The create, pause, resume and cancel responses and later retrieves of one job are
    snapshots. The latest status wins. A snapshot of a job that has not finished carries
    no time of its own, so "latest" is how advanced the status is (a finished job over a
    paused one over a running one; at equal rank the one read last), except that a pause
    the job's events show resumed ranks below running and queued (``_resumed_at``).
    Every other field takes the value of the winning snapshot, else of the next that has
    one, so an absent field never overrides a present one. Snapshots that disagree on
    data sharing, team, project, whether the job is paused or how it ended are reported
    with the value used and why.

    ``events`` are the classified events (``rule_event``, ``created_at``).
    """
    resumed_by_job = _resumed_at(events)
    resumed = lookup(jobs["job_id"], resumed_by_job)
    rank = _status_rank(jobs["status"])
    finished = jobs["finished_at"].astype("Float64")
    stale_pause = true_where(jobs["status"].eq("paused")) & true_where(
        resumed.notna() & (finished.isna() | (finished <= resumed.astype("Float64")))
    )
    rank = rank.mask(stale_pause, _RESUMED_PAUSE_RANK)
    # The finished_at of a pause since resumed is that pause's time, not the job's end:
    # kept, a running job would look finished with no word of how.
    ordered = jobs.assign(_rank=rank, finished_at=jobs["finished_at"].mask(stale_pause))
    ordered = ordered.sort_values(
        ["job_id", "_rank", "seq"], ascending=[True, False, False], kind="stable"
    )
    merged = (
        ordered.drop(columns="_rank")
        .groupby("job_id", sort=False, as_index=False)
        .first()
        .astype(jobs.dtypes.to_dict())
    )
    notes = _field_notes(ordered, merged)
    notes += _pause_notes(ordered, merged, resumed_by_job)
    final = ordered[ordered["status"].isin(FINAL_STATUSES)]
    ends = final.groupby("job_id", sort=False)["status"].nunique()
    for job_id in ends[ends > 1].index:
        endings = sorted(set(final.loc[final["job_id"] == job_id, "status"]))
        used = merged.loc[merged["job_id"] == job_id, "status"].iloc[0]
        notes.append(
            f"job {job_id}: snapshots disagree on how the job ended ({', '.join(endings)}); "
            f"the snapshot read last says {used!r} and is used"
        )
    merged = merged.sort_values("seq").reset_index(drop=True)
    return merged, len(jobs) - len(merged), notes


def _resumed_at(events: pd.DataFrame) -> pd.Series:
    """Per job whose events end resumed (a resume message after its last pause message,
    if any), the epoch second of that resume.

    Why the events: a pause response and a resume response carry the same
    ``created_at`` and no ``finished_at`` (``updated_at`` is not in the API), and file
    names order nothing (``cancel.json`` sorts before ``create.json``); the messages
    are the only time-stamped record of a pause and a resume. A paused snapshot whose
    own ``finished_at`` (the pause time, where given) is after that resume is a later
    pause, not the one resumed.
    """
    toggles = events[events["rule_event"].isin(["paused", "resumed"])]
    toggles = toggles.sort_values(["job_id", "created_at"], kind="stable")
    last = toggles.groupby("job_id", sort=False)[["rule_event", "created_at"]].last()
    return last.loc[last["rule_event"] == "resumed", "created_at"].astype("Int64")


def _where(row: Any) -> str:
    """A snapshot as a note names it: its file, and its place there when the file holds several."""
    return str(row.file) if row.position == "file" else f"{row.file} {row.position}"


def _status_rank(status: pd.Series) -> pd.Series:
    """How advanced each snapshot's status is (``_STATUS_RANK``; an end above all, an
    unknown status with ``running``, no status below all)."""
    rank = status.map(_STATUS_RANK).astype("float64")
    ended = true_where(status.isin(FINAL_STATUSES))
    rank = rank.fillna(_UNKNOWN_STATUS_RANK).mask(ended, len(_STATUS_RANK))
    return rank.where(status.notna(), -1.0)


def sharing_conflicts(jobs: pd.DataFrame) -> list[ImportProblem]:
    """Jobs whose latest snapshots disagree on data sharing: a problem each (invalid).

    The snapshot of the most advanced status says what the job is (``merge_snapshots``);
    snapshots of one status carry no time to say which is later, and taking one would make
    the bill depend on the order the files were read in (R12: the discount)."""
    known = jobs.dropna(subset=["data_sharing"])
    rank = _status_rank(known["status"])
    latest = known[rank == rank.groupby(known["job_id"], sort=False).transform("max")]
    split = latest.groupby("job_id", sort=False)["data_sharing"].nunique()
    problems = []
    for job_id in split[split > 1].index:
        seen = latest[latest["job_id"] == job_id]
        said = "; ".join(
            f"{_where(row)}: {_shown(row, 'data_sharing')}"
            for row in seen.sort_values("seq").itertuples()
        )
        first = next(seen.sort_values("seq").itertuples())
        problems.append(
            ImportProblem(
                file=str(first.file),
                position="job",
                reason=f"its snapshots disagree on data sharing (shared_with_openai {said}):"
                " the discount (R12) cannot be told",
                job_id=str(job_id),
            )
        )
    return problems


def _field_notes(ordered: pd.DataFrame, merged: pd.DataFrame) -> list[str]:
    """Snapshots that disagree on data sharing, team or project: each value with its
    snapshot, and the one used (the first present in status order; snapshots of one status
    that disagree on data sharing make the job invalid, ``sharing_conflicts``)."""
    notes: list[str] = []
    for column, (what, field) in _AGREEING_FIELDS.items():
        values = ordered.groupby("job_id", sort=False)[column].nunique()
        for job_id in values[values > 1].index:
            seen = ordered[(ordered["job_id"] == job_id) & ordered[column].notna()]
            said = "; ".join(
                f"{_where(row)}: {_shown(row, column)}"
                for row in seen.sort_values("seq").itertuples()
            )
            source = next(seen.itertuples())
            status = merged.loc[merged["job_id"] == job_id, "status"].iloc[0]
            notes.append(
                f"job {job_id}: snapshots disagree on {what} ({field} {said}); used "
                f"{_shown(source, column)}, from the latest snapshot ({_where(source)}; the job's "
                f"status is {optional_text(status)!r})"
            )
    return notes


def _shown(row: Any, column: str) -> str:
    value = getattr(row, column)
    return str(bool(value)) if column == "data_sharing" else repr(str(value))


def _iso(epoch: Any) -> str:
    return str(utc_from_epoch(pd.Series([int(epoch)])).iloc[0].isoformat())


def _pause_notes(ordered: pd.DataFrame, merged: pd.DataFrame, resumed: pd.Series) -> list[str]:
    """A paused snapshot and a queued or running one of a job that has not finished: which
    status is used, and the evidence (a resume in its events, or none)."""
    notes: list[str] = []
    toggling = ordered[true_where(ordered["status"].isin(["paused", "queued", "running"]))]
    kinds = toggling.assign(_paused=toggling["status"].eq("paused"))
    both = kinds.groupby("job_id", sort=False)["_paused"].nunique()
    for job_id in both[both > 1].index:
        used = str(merged.loc[merged["job_id"] == job_id, "status"].iloc[0])
        if used not in ("paused", "queued", "running"):
            continue  # it finished: a final status is later than both
        seen = toggling[toggling["job_id"] == job_id]
        said = "; ".join(
            f"{_where(row)}: {row.status!r}" for row in seen.sort_values("seq").itertuples()
        )
        source = next(seen.itertuples())
        at = resumed.get(job_id)
        if is_missing(at):
            why = (
                "no message of its events resumes it after a pause, and a snapshot of a job "
                "not finished has no time of its own: a pause follows running"
            )
        elif used != "paused":
            why = f"its events resume it at {_iso(at)}, after the pause"
        else:
            why = (
                f"its events resume it at {_iso(at)}, but the paused snapshot's finished_at "
                f"({_iso(source.finished_at)}) is later: a later pause"
            )
        notes.append(
            f"job {job_id}: snapshots disagree on whether the job is paused ({said}); "
            f"{why}: {used!r} is used ({_where(source)})"
        )
    return notes


def resolve_methods(
    jobs: pd.DataFrame, events: pd.DataFrame
) -> tuple[pd.DataFrame, list[str], list[ImportProblem]]:
    """RFT jobs: named so by a snapshot, or (no snapshot names a method) by RFT metrics.

    The pause / resume / cancel responses carry no ``method``: a job whose metrics
    events are RFT's (step timing, grader usage, rewards) is an RFT job. A job whose
    method no snapshot names and no RFT metrics show cannot be billed: it is invalid,
    never dropped. Another method (supervised, dpo) is skipped with a note.
    """
    rft_jobs = set(events.loc[events["rft_metrics"], "job_id"])
    unnamed = jobs["method"].isna()
    inferred = unnamed & jobs["job_id"].isin(rft_jobs)
    notes = [
        f"job {job_id}: no snapshot names its method; its metrics events are RFT's "
        "(step timing, grader usage or rewards): imported as reinforcement fine-tuning. Its "
        "grader is not named either: grader tokens are charged as its metrics events report "
        "them, none if they report none (R9)"
        for job_id in jobs.loc[inferred, "job_id"]
    ]
    problems = [
        ImportProblem(
            file=str(row.file),
            position="job",
            reason="no snapshot names the job's method and no metrics event shows RFT "
            "(step timing, grader usage): it cannot be billed as reinforcement fine-tuning; "
            "export the job object (GET /v1/fine_tuning/jobs/{id}) with its method",
            job_id=str(row.job_id),
        )
        for row in jobs[unnamed & ~inferred].itertuples()
    ]
    method = jobs["method"].mask(inferred, "reinforcement")
    skipped = jobs[method.notna() & (method != "reinforcement")]
    notes += [
        f"job {row.job_id}: method {row.method}, not reinforcement fine-tuning: skipped "
        "with its events"
        for row in skipped.itertuples()
    ]
    return jobs.assign(method=method), notes, problems


def dedupe_objects(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, list[ImportProblem]]:
    """Objects with the same id within a job are one; the same id with other content is reported."""
    frame = frame.sort_values("seq")
    repeated = frame.duplicated(["job_id", "id"], keep="first")
    same = frame.duplicated(["job_id", "id", "fingerprint"], keep="first")
    conflicting = frame[repeated & ~same]
    kept = frame[~repeated]
    first_seen = conflicting[["job_id", "id"]].merge(
        kept[["job_id", "id"]].assign(at=kept["file"] + ": " + kept["position"]),
        on=["job_id", "id"],
        how="left",
    )["at"]
    problems = [
        ImportProblem(
            file=str(file),
            position=str(position),
            reason=f"id {object_id} also read at {at} with other content: the first is kept",
            job_id=str(job_id),
            line=line_in_file(str(file), str(object_id)),
        )
        for file, position, job_id, object_id, at in zip(
            conflicting["file"],
            conflicting["position"],
            conflicting["job_id"],
            conflicting["id"],
            first_seen,
            strict=True,
        )
    ]
    return frame[~repeated].reset_index(drop=True), int(repeated.sum()), problems
