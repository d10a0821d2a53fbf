"""Bill logs larger than memory: hash buckets of jobs on disk, billed one at a time.

Events are read in chunks, validated, and written to Parquet files partitioned by
a hash of ``job_id``, so that every event of a job lands in the same bucket. Each
bucket is then de-duplicated and billed by the same kernel (``bill_events``) as
an in-memory log, and its results are streamed out. Peak memory is bounded by one
chunk and one bucket, not by the log.

No rule is implemented here: this module only decides which events are billed
together, and the kernel is the same one every other path uses.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from rftcost.billing import Bill, bill_events
from rftcost.events.readers import (
    CATEGORY_COLUMNS,
    EventLog,
    ProgressCallback,
    _deduplicate,
    _empty_rejected,
    _problems_from_rejections,
    concat_events,
    expand_paths,
    read_file_chunks,
)
from rftcost.policy import Policy
from rftcost.timeline import Timeline

__all__ = [
    "AUTO_BUCKET_EVENTS",
    "Partition",
    "auto_buckets",
    "bill_in_buckets",
    "bucket_of",
    "bucketed",
    "combine_bills",
    "combine_logs",
    "estimated_events",
    "iter_bucket_bills",
    "partition_events",
]

AUTO_BUCKET_EVENTS = 2_000_000
"""Inputs with more events than this (counted or estimated) are billed in buckets."""
_EVENTS_PER_BUCKET = 1_250_000
_CHUNK_ROWS = 1_000_000
# Bytes per event of a text log, to estimate a count without reading (gzip ~8x smaller).
_TEXT_BYTES_PER_EVENT = 150
_GZIP_BYTES_PER_EVENT = 20


class Partition(BaseModel):
    """Events written to on-disk buckets, and every record not written accounted for."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    folder: Path
    """Folder holding one sub-folder of Parquet parts per bucket."""
    buckets: int
    """Number of buckets."""
    files: tuple[str, ...]
    """Input files, in reading order."""
    rejected: pd.DataFrame
    """Records rejected while reading (source, line, job_id, column, value, reason)."""
    accepted: int
    """Records written to buckets (before de-duplication)."""


def bucket_of(job_ids: pd.Series, buckets: int) -> np.ndarray:
    """Bucket of each job id: a stable hash of the id's text, modulo ``buckets``."""
    categorical = job_ids.astype("category")
    names = categorical.cat.categories.astype(str).to_numpy(dtype=object)
    by_name = pd.util.hash_array(names) % np.uint64(buckets)
    codes = categorical.cat.codes.to_numpy()
    return by_name.astype("int64")[codes]


def estimated_events(paths: Sequence[str | Path]) -> int:
    """Events in ``paths``: counted from Parquet metadata, estimated from text file sizes."""
    import pyarrow.parquet as pq

    total = 0
    for path in expand_paths(paths):
        name = path.name.lower()
        if name.endswith(".parquet"):
            total += pq.ParquetFile(path).metadata.num_rows
        else:
            per_event = _GZIP_BYTES_PER_EVENT if name.endswith(".gz") else _TEXT_BYTES_PER_EVENT
            total += path.stat().st_size // per_event
    return total


def auto_buckets(paths: Sequence[str | Path]) -> int | None:
    """How many buckets an input needs (``None``: bill it in memory at once).

    Billing bucket by bucket is faster as well as lighter beyond a few million
    events (smaller sorts, a working set that fits the caches), so large inputs
    are bucketed, about 1.25M events a bucket.
    """
    events = estimated_events(paths)
    if events <= AUTO_BUCKET_EVENTS:
        return None
    return max(2, math.ceil(events / _EVENTS_PER_BUCKET))


def partition_events(
    paths: Sequence[str | Path],
    folder: Path,
    buckets: int,
    *,
    policy: Policy,
    assume_tz: str | None = None,
    chunk_rows: int = _CHUNK_ROWS,
    on_progress: ProgressCallback | None = None,
) -> Partition:
    """Read, validate and write events to ``buckets`` hash buckets of Parquet files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    files = expand_paths(paths)
    rejected: list[pd.DataFrame] = [_empty_rejected()]
    accepted = 0
    for file_number, file in enumerate(files):
        chunks = read_file_chunks(file, assume_tz=assume_tz, policy=policy, chunk_rows=chunk_rows)
        for chunk_number, (frame, bad) in enumerate(chunks):
            rejected.append(bad)
            accepted += len(frame)
            if frame.empty:
                continue
            bucket = bucket_of(frame["job_id"], buckets)
            order = np.argsort(bucket, kind="stable")
            bucket = bucket[order]
            table = pa.Table.from_pandas(frame.iloc[order], preserve_index=False)
            bounds = np.searchsorted(bucket, np.arange(buckets + 1))
            for number in np.flatnonzero(np.diff(bounds)):
                start, end = int(bounds[number]), int(bounds[number + 1])
                target = folder / f"{number:05d}"
                target.mkdir(parents=True, exist_ok=True)
                part = target / f"part-{file_number:05d}-{chunk_number:05d}.parquet"
                pq.write_table(table.slice(start, end - start), part)
            if on_progress:
                on_progress("bucket", file_number + 1, len(files))
    return Partition(
        folder=folder,
        buckets=buckets,
        files=tuple(str(f) for f in files),
        rejected=pd.concat(rejected, ignore_index=True),
        accepted=accepted,
    )


def iter_bucket_bills(
    partition: Partition,
    policy: Policy,
    *,
    keep_intervals: bool = False,
    on_progress: ProgressCallback | None = None,
) -> Iterator[Bill]:
    """Bill each bucket with the kernel; yield one slim ``Bill`` per non-empty bucket.

    A slim bill keeps every amount and the per-job time, but not the event frame nor
    the per-piece time line (``pieces``, ``usage``); ``keep_intervals`` keeps phase
    intervals too (for explain and audit evidence).
    """
    reader_problems = _problems_from_rejections(partition.rejected)
    problem_bucket = bucket_of(reader_problems["job_id"], partition.buckets)
    for number in range(partition.buckets):
        parts = sorted((partition.folder / f"{number:05d}").glob("*.parquet"))
        problems = reader_problems[problem_bucket == number]
        if not parts and problems.empty:
            continue
        events = _read_bucket(parts) if parts else _no_events()
        events, duplicates, conflicts = _deduplicate(events)
        conflict_problems = _problems_from_rejections(conflicts)
        log = EventLog(
            events=events.iloc[0:0].copy(),
            rejected=conflicts,
            duplicates=duplicates,
            problems=pd.concat([problems, conflict_problems], ignore_index=True),
            files=partition.files,
            accepted_count=len(events),
        )
        bill = bill_events(events, policy, reader_problems=log.problems, log=log)
        del events
        yield _slim(bill, keep_intervals=keep_intervals)
        if on_progress:
            on_progress("bill", number + 1, partition.buckets)


def _read_bucket(parts: list[Path]) -> pd.DataFrame:
    """A bucket's parts as one frame: concatenated and dictionary-unified in Arrow, so the
    category columns arrive as categoricals without a per-part recode in pandas."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = pa.dictionary(pa.int32(), pa.string())
    tables = []
    for part in parts:
        table = pq.read_table(part)
        for name in CATEGORY_COLUMNS:
            index = table.schema.get_field_index(name)
            if index >= 0 and table.schema.field(index).type != text:
                table = table.set_column(index, name, table.column(name).cast(text))
        tables.append(table)
    table = pa.concat_tables(tables, promote_options="default").unify_dictionaries()
    return concat_events([table.to_pandas()])


def _no_events() -> pd.DataFrame:
    from rftcost.events.readers import _empty_events

    return _empty_events()


def _slim(bill: Bill, *, keep_intervals: bool) -> Bill:
    # ``.copy()`` matters: an empty slice is a view that keeps the whole frame alive.
    timeline = bill.timeline
    slim = timeline.model_copy(
        update={
            "pieces": timeline.pieces.iloc[0:0].copy(),
            "usage": timeline.usage.iloc[0:0].copy(),
            **({} if keep_intervals else {"intervals": timeline.intervals.iloc[0:0].copy()}),
        }
    )
    return bill.model_copy(update={"timeline": slim})


def combine_bills(bills: Sequence[Bill], *, log: EventLog | None = None) -> Bill:
    """One ``Bill`` from bills of disjoint sets of jobs (job codes renumbered)."""
    if not bills:
        raise ValueError("nothing to combine")
    offsets = np.cumsum([0, *(len(b.timeline.jobs) for b in bills[:-1])])

    def shifted(frames: list[pd.DataFrame]) -> pd.DataFrame:
        moved = [f.assign(job=f["job"] + offset) for f, offset in zip(frames, offsets, strict=True)]
        return pd.concat(moved, ignore_index=True)

    timelines = [b.timeline for b in bills]
    jobs_index = [
        t.jobs.set_axis(t.jobs.index + o) for t, o in zip(timelines, offsets, strict=True)
    ]
    timeline = Timeline(
        jobs=pd.concat(jobs_index),
        **{
            name: shifted([getattr(t, name) for t in timelines])
            for name in (
                "intervals",
                "charges",
                "accrued",
                "losses",
                "pieces",
                "excluded",
                "usage",
                "checkpoints",
                "problems",
            )
        },
    )
    jobs = pd.concat(
        [b.jobs.assign(job=b.jobs["job"] + o) for b, o in zip(bills, offsets, strict=True)],
        ignore_index=True,
    ).sort_values("job_id", kind="stable", ignore_index=True)
    return Bill(
        policy=bills[0].policy,
        jobs=jobs,
        charges=shifted([b.charges for b in bills]),
        grader_lines=shifted([b.grader_lines for b in bills]),
        excluded=pd.concat([b.excluded for b in bills], ignore_index=True),
        problems=pd.concat([b.problems for b in bills], ignore_index=True),
        timeline=timeline,
        log=log,
    )


def bill_in_buckets(
    paths: Sequence[str | Path],
    policy: Policy,
    buckets: int,
    *,
    assume_tz: str | None = None,
    workdir: str | Path | None = None,
    keep_intervals: bool = False,
    on_progress: ProgressCallback | None = None,
) -> Bill:
    """Bill ``paths`` bucket by bucket and combine the results into one slim ``Bill``."""
    with bucketed(
        paths,
        policy,
        buckets,
        assume_tz=assume_tz,
        workdir=workdir,
        keep_intervals=keep_intervals,
        on_progress=on_progress,
    ) as (partition, stream):
        bills = list(stream)
        logs = [b.log for b in bills if b.log is not None]
        log = combine_logs(logs, read_rejected=partition.rejected, files=partition.files)
        return combine_bills(bills or [_empty_bill(policy)], log=log)


@contextmanager
def bucketed(
    paths: Sequence[str | Path],
    policy: Policy,
    buckets: int,
    *,
    assume_tz: str | None = None,
    workdir: str | Path | None = None,
    keep_intervals: bool = False,
    on_progress: ProgressCallback | None = None,
) -> Iterator[tuple[Partition, Iterator[Bill]]]:
    """Partition ``paths`` into a temporary folder and stream one ``Bill`` per bucket.

    The folder is removed on exit; a caller writes each bucket's results out as it
    comes, so that only one bucket is in memory at a time.
    """
    folder = Path(tempfile.mkdtemp(prefix="rftcost-buckets-", dir=workdir))
    try:
        partition = partition_events(
            paths, folder, buckets, policy=policy, assume_tz=assume_tz, on_progress=on_progress
        )
        yield (
            partition,
            iter_bucket_bills(
                partition, policy, keep_intervals=keep_intervals, on_progress=on_progress
            ),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def combine_logs(
    logs: Sequence[EventLog],
    *,
    read_rejected: pd.DataFrame | None = None,
    files: tuple[str, ...] = (),
) -> EventLog:
    """What was read, over the logs of several buckets' bills (and records rejected while
    partitioning, ``read_rejected``)."""
    rejected = pd.concat(
        [
            read_rejected if read_rejected is not None else _empty_rejected(),
            *(log.rejected for log in logs),
        ],
        ignore_index=True,
    )
    return EventLog(
        events=_no_events(),
        rejected=rejected,
        duplicates=pd.concat(
            [log.duplicates for log in logs] or [pd.DataFrame()], ignore_index=True
        ),
        problems=_problems_from_rejections(rejected),
        files=files,
        accepted_count=sum(log.accepted for log in logs),
    )


def _empty_bill(policy: Policy) -> Bill:
    return bill_events(_no_events(), policy)
