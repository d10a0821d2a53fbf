"""Bill logs larger than memory: hash buckets of jobs on disk, billed one at a time.

Events are read in chunks, validated, and written to Parquet files partitioned by
a hash of ``job_id``, so that every event of a job lands in the same bucket. Each
bucket is then de-duplicated and billed by the same kernel (``bill_events``) as
an in-memory log, and its results are streamed out. Peak memory is bounded by one
chunk and one bucket, not by the log.

A Parquet log written job by job skips the bucket files: ``job_runs`` plans runs of
whole jobs read straight from the file, and ``bucketed`` bills those instead.

No rule is implemented here: this module only decides which events are billed
together, and the kernel is the same one every other path uses.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from rftcost.billing import Bill, bill_events
from rftcost.errors import InputError
from rftcost.events.readers import (
    CATEGORY_COLUMNS,
    EventLog,
    ProgressCallback,
    check_zone,
    concat_events,
    deduplicate,
    drop_repeats,
    empty_rejected,
    expand_paths,
    is_openai_export,
    parquet_file,
    problems_from_rejections,
    read_file_chunks,
    read_openai_exports,
    skip_notes,
)
from rftcost.job_runs import RunUnit, plan_job_runs, read_parts
from rftcost.policy import Policy
from rftcost.rules import price_in_force
from rftcost.timeline import Timeline
from rftcost.workers import (
    AUTO_BUCKET_EVENTS,
    GZIP_BYTES_PER_EVENT,
    TEXT_BYTES_PER_EVENT,
    available_workers,
    start_workers,
)
from rftcost.workers import mapped as _mapped

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = [
    "AUTO_BUCKET_EVENTS",
    "Partition",
    "as_billed",
    "auto_buckets",
    "available_workers",
    "bill_in_buckets",
    "bucket_of",
    "bucketed",
    "combine_bills",
    "combine_logs",
    "estimated_events",
    "iter_bucket_bills",
    "no_problems",
    "partition_events",
    "skipped_notes",
    "slim_bill",
    "summed_usage",
]

_EVENTS_PER_BUCKET = 1_250_000
_CHUNK_ROWS = 250_000
_GROUP_ROWS = 1_000_000  # rows read before each bucket's next row group is written
_UNIT_ROWS = 4_000_000  # rows of a Parquet file one partitioning worker reads at a time
_T = TypeVar("_T")
_R = TypeVar("_R")


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
    """Records that passed validation, before de-duplication: written to buckets, those
    repeating an earlier record of their chunk as repeats only (``_REPEATS``)."""
    notes: tuple[str, ...] = ()
    """What reading noted, as the in-memory reader notes it: an OpenAI import's notes,
    files below a folder left out (budgets, invoices), links not followed."""
    problems: pd.DataFrame = Field(default_factory=lambda: no_problems())
    """Jobs an OpenAI export cannot bill (job_id, problem): incomplete time, unreadable
    grader usage. Their amount is unknown on every path (issue 12, kind 15)."""

    def log_with(self, logs: Sequence[EventLog]) -> EventLog:
        """What was read: the logs of the bills of its buckets or units, with the records
        rejected, the notes and the job problems of partitioning."""
        return combine_logs(
            logs,
            read_rejected=self.rejected,
            files=self.files,
            notes=self.notes,
            problems=self.problems,
        )


def no_problems() -> pd.DataFrame:
    """An empty frame of per-job problems (job_id, problem)."""
    return pd.DataFrame({"job_id": [], "problem": []}, dtype="string")


def bucket_of(job_ids: pd.Series, buckets: int) -> np.ndarray:
    """Bucket of each job id: a stable hash of the id's text, modulo ``buckets``."""
    categorical = job_ids.astype("category")
    names = categorical.cat.categories.astype(str).to_numpy(dtype=object)
    by_name = pd.util.hash_array(names) % np.uint64(buckets)
    codes = categorical.cat.codes.to_numpy()
    return by_name.astype("int64")[codes]


def estimated_events(paths: Sequence[str | Path]) -> int:
    """Events in ``paths``: counted from Parquet metadata, estimated from text file sizes."""

    total = 0
    for path in expand_paths(paths):
        name = path.name.lower()
        if name.endswith(".parquet"):
            total += parquet_file(path).metadata.num_rows
        else:
            per_event = GZIP_BYTES_PER_EVENT if name.endswith(".gz") else TEXT_BYTES_PER_EVENT
            total += path.stat().st_size // per_event
    return total


def auto_buckets(paths: Sequence[str | Path], *, workers: int = 1) -> int | None:
    """How many buckets an input needs (``None``: bill it in memory at once).

    Billing bucket by bucket is faster as well as lighter beyond a few million
    events (smaller sorts, a working set that fits the caches), so large inputs
    are bucketed: about 1.25M events a bucket for one process, and as many times
    smaller as there are ``workers`` (each holds a bucket), so that peak memory
    stays about the same.
    """
    events = estimated_events(paths)
    if events <= AUTO_BUCKET_EVENTS:
        return None
    return max(2, math.ceil(events * max(1, workers) / _EVENTS_PER_BUCKET))


class _Unit(NamedTuple):
    """A piece of input read by one worker: a file, or a run of a Parquet file's row groups."""

    file_number: int
    number: int
    path: Path
    row_groups: tuple[int, ...] | None


def _units(files: Sequence[Path], rows_per_unit: int) -> list[_Unit]:
    """Cut the input into units: a text file whole, a Parquet file by runs of row groups."""

    units: list[_Unit] = []
    for file_number, path in enumerate(files):
        if not path.name.lower().endswith(".parquet"):
            units.append(_Unit(file_number, len(units), path, None))
            continue
        metadata = parquet_file(path).metadata
        run: list[int] = []
        rows = 0
        for group in range(metadata.num_row_groups):
            run.append(group)
            rows += metadata.row_group(group).num_rows
            if rows >= rows_per_unit:
                units.append(_Unit(file_number, len(units), path, tuple(run)))
                run, rows = [], 0
        if run or metadata.num_row_groups == 0:
            units.append(_Unit(file_number, len(units), path, tuple(run) or None))
    return units


def partition_events(
    paths: Sequence[str | Path],
    folder: Path,
    buckets: int,
    *,
    policy: Policy,
    assume_tz: str | None = None,
    chunk_rows: int = _CHUNK_ROWS,
    workers: int = 1,
    on_progress: ProgressCallback | None = None,
    follow_links: bool = False,
) -> Partition:
    """Read, validate and write events to ``buckets`` hash buckets of Parquet files.

    With ``workers`` > 1 the input is cut into units (a text file, or a run of a
    Parquet file's row groups) read by that many processes; each unit writes its
    own file per bucket, named in reading order, so a bucket reads back in file and
    line order whatever the number of workers.

    OpenAI exports are imported together, here, before the units, as ``read_events``
    imports them: a job's snapshots and pages may be spread over several files, and
    the import's job-level problems (an incomplete export, unreadable grader usage)
    must reach the job's bucket. Exports are small (one job's API responses).
    """
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    check_zone(assume_tz)
    skipped: list[Path] = []
    links: list[Path] = []
    found = expand_paths(paths, skipped, follow_links=follow_links, links=links)
    exports = [f for f in found if is_openai_export(f)]
    files = [f for f in found if f not in set(exports)]
    rejected: list[pd.DataFrame] = [empty_rejected()]
    accepted = 0
    notes: tuple[str, ...] = ()
    problems = no_problems()
    if exports:
        events, bad, notes, problems = read_openai_exports(
            exports, assume_tz=assume_tz, policy=policy
        )
        # Named before every unit's part: an export's events come first, as in memory.
        name = "part-00000-00000.parquet"
        bad, count = _write_chunks(iter([(events, bad, None)]), folder, buckets, name)
        rejected.append(bad)
        accepted += count
    # Units small enough that every worker gets some (two each, for balance).
    rows = estimated_events(files)
    units = _units(files, max(1, min(_UNIT_ROWS, math.ceil(rows / (2 * max(1, workers))))))
    task = partial(
        _partition_unit,
        folder=folder,
        buckets=buckets,
        policy=policy,
        assume_tz=assume_tz,
        chunk_rows=chunk_rows,
    )
    for done, (bad, count) in enumerate(_mapped(task, units, workers), start=1):
        if len(bad):
            rejected.append(bad)
        accepted += count
        if on_progress:
            on_progress("bucket", done, len(units))
    return Partition(
        folder=folder,
        buckets=buckets,
        files=tuple(str(f) for f in found),
        rejected=pd.concat(rejected, ignore_index=True),
        accepted=accepted,
        notes=notes + skip_notes(skipped, links),
        problems=problems,
    )


def skipped_notes(skipped: Sequence[Path]) -> tuple[str, ...]:
    """The reading notes for files a folder scan left out (``readers.skip_notes``)."""
    return skip_notes(skipped)


def _partition_unit(
    unit: _Unit,
    *,
    folder: Path,
    buckets: int,
    policy: Policy,
    assume_tz: str | None,
    chunk_rows: int,
) -> tuple[pd.DataFrame, int]:
    """Read one unit and append its events to one file per bucket; (rejected, accepted)."""
    chunks = read_file_chunks(
        unit.path,
        assume_tz=assume_tz,
        policy=policy,
        chunk_rows=chunk_rows,
        row_groups=unit.row_groups,
    )
    # Unit parts are named after the exports' part (file number 0), in reading order.
    name = f"part-{unit.file_number + 1:05d}-{unit.number:05d}.parquet"
    if unit.path.name.lower().endswith(".parquet"):
        return _write_chunks(((frame, bad, None) for frame, bad in chunks), folder, buckets, name)
    return _write_chunks(_without_repeats(chunks), folder, buckets, name)


def _without_repeats(
    chunks: Iterator[tuple[pd.DataFrame, pd.DataFrame]],
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]]:
    """A text file's chunks, each record identical to an earlier one of its chunk set
    aside (``readers.drop_repeats``, as the in-memory reader does): a log of one record
    repeated a million times spools one event per chunk, not a million to one bucket.
    The repeats are duplicates wherever the first copy is; only their place is kept."""
    for frame, bad in chunks:
        kept, repeated = drop_repeats(frame)
        yield kept, bad, repeated


def _write_chunks(
    chunks: Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]],
    folder: Path,
    buckets: int,
    name: str,
) -> tuple[pd.DataFrame, int]:
    """Append validated chunks' events to a file ``name`` per bucket, and their repeats
    (records set aside by ``drop_repeats``: source, line, job_id, event_id) to a
    ``_REPEATS`` file beside it; (rejected, accepted)."""
    rejected: list[pd.DataFrame] = [empty_rejected()]
    accepted = 0
    events = _BucketSpool(folder, buckets, name)
    repeats = _BucketSpool(folder, buckets, _REPEATS + name)
    try:
        for frame, bad, repeated in chunks:
            if len(bad):
                rejected.append(bad)
            accepted += len(frame) + (0 if repeated is None else len(repeated))
            events.add(frame)
            del frame
            if repeated is not None:
                repeats.add(repeated)
        events.flush()
        repeats.flush()
    finally:
        events.close()
        repeats.close()
    return pd.concat(rejected, ignore_index=True), accepted


_REPEATS = "repeats-"
"""Prefix of a bucket's files of repeats (``_without_repeats``), beside its ``part-`` files."""


class _BucketSpool:
    """Rows appended to one Parquet file per bucket (``folder/NNNNN/name``), by job.

    Chunks are sorted by bucket, with each bucket's bounds, until ``_GROUP_ROWS`` are
    held: then one row group per bucket. Writing each chunk's slices at once would give
    row groups of a few thousand rows with many buckets, slow to write and to read.
    """

    def __init__(self, folder: Path, buckets: int, name: str) -> None:
        self.folder = folder
        self.buckets = buckets
        self.name = name
        self.writers: dict[int, pq.ParquetWriter] = {}
        self.schema: pa.Schema | None = None
        self.pending: list[tuple[pa.Table, list[int]]] = []
        self.pending_rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        if frame.empty:
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        self.schema = self.schema or _part_schema(table.schema)
        bucket = bucket_of(frame["job_id"], self.buckets)
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(self.buckets + 1)).tolist()
        self.pending.append((table.take(order).cast(self.schema), bounds))
        self.pending_rows += len(order)
        if self.pending_rows >= _GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        for number in range(self.buckets):
            pieces = [
                table.slice(bounds[number], bounds[number + 1] - bounds[number])
                for table, bounds in self.pending
                if bounds[number + 1] > bounds[number]
            ]
            if not pieces:
                continue
            if number not in self.writers:
                path = self.folder / f"{number:05d}" / self.name
                self.writers[number] = _part_writer(path, pieces[0].schema)
            self.writers[number].write_table(pa.concat_tables(pieces))
        self.pending.clear()
        self.pending_rows = 0

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _part_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of bucket files: ``job_id`` as plain text, other dictionaries widened.

    A slice of an Arrow dictionary column keeps the whole dictionary: every job id
    of the chunk, and unifying those over a bucket's row groups would give each
    bucket every job id of the log. Written as text, Parquet dictionary-encodes the
    ids present, and reading asks for a dictionary again. The other text columns
    have a few values; their indices are widened so that every chunk has one schema.
    """
    import pyarrow as pa

    def part_type(field: pa.Field) -> pa.DataType:
        if field.name == "job_id":
            return pa.large_string()
        if pa.types.is_dictionary(field.type):
            return pa.dictionary(pa.int32(), pa.large_string())
        return field.type

    fields = [field.with_type(part_type(field)) for field in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _part_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A unit's file of one bucket, a row group per chunk read."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    # Temporary files read once: no compression or statistics, text columns of few
    # values dictionary-encoded.
    return pq.ParquetWriter(
        path,
        schema,
        compression="none",
        write_statistics=False,
        use_dictionary=[c for c in CATEGORY_COLUMNS if c in schema.names],
    )


def as_billed(bill: Bill, folder: Path) -> Bill:
    """The bill as billed: what a worker sends back unless told to do more with it
    (``then`` of ``bucketed`` and ``iter_bucket_bills``)."""
    return bill


def _billed_then(
    task: Callable[[_T], Bill], then: Callable[[Bill, Path], _R], folder: Path, item: _T
) -> _R:
    """``then(task(item), folder)``: a worker's whole task, one picklable callable."""
    return then(task(item), folder)


@overload
def iter_bucket_bills(
    partition: Partition,
    policy: Policy,
    *,
    keep_intervals: bool = ...,
    keep_timeline: bool = ...,
    workers: int = ...,
    jobs: Sequence[str] | None = ...,
    on_progress: ProgressCallback | None = ...,
) -> Iterator[Bill]: ...


@overload
def iter_bucket_bills(
    partition: Partition,
    policy: Policy,
    *,
    keep_intervals: bool = ...,
    keep_timeline: bool = ...,
    workers: int = ...,
    jobs: Sequence[str] | None = ...,
    on_progress: ProgressCallback | None = ...,
    then: Callable[[Bill, Path], _R],
) -> Iterator[_R]: ...


def iter_bucket_bills(
    partition: Partition,
    policy: Policy,
    *,
    keep_intervals: bool = False,
    keep_timeline: bool = False,
    workers: int = 1,
    jobs: Sequence[str] | None = None,
    on_progress: ProgressCallback | None = None,
    then: Callable[[Bill, Path], object] = as_billed,
) -> Iterator[object]:
    """Bill each bucket with the kernel; yield one slim ``Bill`` per non-empty bucket
    (or what ``then`` makes of it in the worker, given the partition's folder).

    A slim bill keeps every amount and the per-job time, but not the event frame nor
    the per-piece time line (``pieces``, ``usage``); ``keep_intervals`` keeps phase
    intervals too (for explain), ``keep_timeline`` the whole time line (for audit
    evidence: more memory). With ``workers`` > 1, buckets
    are billed in that many processes and yielded in bucket order. ``jobs`` bills
    only the buckets that hold those jobs (their other jobs come along).
    """
    reader_problems = problems_from_rejections(partition.rejected)
    problem_bucket = bucket_of(reader_problems["job_id"], partition.buckets)
    export_bucket = bucket_of(partition.problems["job_id"], partition.buckets)
    wanted = (
        range(partition.buckets)
        if jobs is None
        else sorted(set(bucket_of(pd.Series(list(jobs), dtype="string"), partition.buckets)))
    )
    tasks: list[tuple[int, pd.DataFrame, pd.DataFrame]] = []
    for number in wanted:
        problems = reader_problems[problem_bucket == number].reset_index(drop=True)
        job_problems = partition.problems[export_bucket == number].reset_index(drop=True)
        if (
            (partition.folder / f"{number:05d}").is_dir()
            or not problems.empty
            or not job_problems.empty
        ):
            tasks.append((number, problems, job_problems))
    task = partial(
        _bill_bucket,
        folder=partition.folder,
        files=partition.files,
        policy=policy,
        keep_intervals=keep_intervals,
        keep_timeline=keep_timeline,
    )
    finished = partial(_billed_then, task, then, partition.folder)
    for (number, _, _), bill in zip(tasks, _mapped(finished, tasks, workers), strict=True):
        yield bill
        if on_progress:
            on_progress("bill", number + 1, partition.buckets)


def _bill_bucket(
    task: tuple[int, pd.DataFrame, pd.DataFrame],
    *,
    folder: Path,
    files: tuple[str, ...],
    policy: Policy,
    keep_intervals: bool,
    keep_timeline: bool,
) -> Bill:
    """One bucket read, de-duplicated and billed by the kernel: its slim ``Bill``."""
    number, problems, job_problems = task
    parts = sorted((folder / f"{number:05d}").glob("part-*.parquet"))
    events = _read_bucket(parts) if parts else _no_events()
    repeats = sorted((folder / f"{number:05d}").glob(f"{_REPEATS}*.parquet"))
    return _bill_records(
        events,
        problems=problems,
        job_problems=job_problems,
        repeats=repeats,
        files=files,
        policy=policy,
        keep_intervals=keep_intervals,
        keep_timeline=keep_timeline,
    )


def _bill_records(
    events: pd.DataFrame,
    *,
    problems: pd.DataFrame,
    job_problems: pd.DataFrame,
    files: tuple[str, ...],
    policy: Policy,
    keep_intervals: bool,
    keep_timeline: bool,
    read_rejected: pd.DataFrame | None = None,
    repeats: list[Path] | None = None,
) -> Bill:
    """Whole jobs' records de-duplicated and billed by the kernel: a slim ``Bill`` whose
    log counts them (with ``read_rejected``, the records rejected while reading them)."""
    events, duplicates, conflicts = deduplicate(events)
    if repeats:
        duplicates = _with_repeats(duplicates, repeats, files)
    rejected = (
        conflicts
        if read_rejected is None
        else pd.concat([read_rejected, conflicts], ignore_index=True)
    )
    log = EventLog(
        events=events.iloc[0:0].copy(),
        rejected=rejected,
        duplicates=duplicates,
        # In memory's order: rejected records (read, then conflicts), then the reasons
        # an OpenAI export gives for the whole job.
        problems=pd.concat(
            [problems, problems_from_rejections(conflicts), job_problems], ignore_index=True
        ),
        files=files,
        accepted_count=len(events),
    )
    bill = bill_events(events, policy, reader_problems=log.problems, log=log)
    del events
    return bill if keep_timeline else slim_bill(bill, keep_intervals=keep_intervals)


def _bill_run_unit(
    unit: RunUnit,
    *,
    files: tuple[str, ...],
    policy: Policy,
    assume_tz: str | None,
    keep_intervals: bool,
    keep_timeline: bool,
) -> Bill:
    """A unit of whole jobs (``job_runs``) read and billed part by part: one ``Bill``."""
    bills = []
    for events, rejected in read_parts(unit, policy=policy, assume_tz=assume_tz):
        bills.append(
            _bill_records(
                events,
                problems=problems_from_rejections(rejected),
                job_problems=no_problems(),
                files=files,
                policy=policy,
                keep_intervals=keep_intervals,
                keep_timeline=keep_timeline,
                read_rejected=rejected,
            )
        )
        del events, rejected  # a part's records are gone before the next is read
    logs = [b.log for b in bills if b.log is not None]
    return combine_bills(bills, log=combine_logs(logs, files=files))


def _read_bucket(parts: list[Path]) -> pd.DataFrame:
    """A bucket's files as one frame: text columns read as Arrow dictionaries of the
    values present, unified in Arrow, so they arrive as categoricals without a
    per-part recode in pandas."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = pa.dictionary(pa.int32(), pa.string())
    tables = []
    for part in parts:
        table = pq.read_table(part, read_dictionary=list(CATEGORY_COLUMNS))
        for name in CATEGORY_COLUMNS:
            index = table.schema.get_field_index(name)
            if index >= 0 and table.schema.field(index).type != text:
                table = table.set_column(index, name, table.column(name).cast(text))
        tables.append(table)
    table = pa.concat_tables(tables, promote_options="default").unify_dictionaries()
    del tables
    # Arrow's buffers are released column by column as pandas takes them over.
    return concat_events([table.to_pandas(self_destruct=True, split_blocks=True)])


def _with_repeats(
    duplicates: pd.DataFrame, parts: list[Path], files: tuple[str, ...]
) -> pd.DataFrame:
    """A bucket's duplicates with the repeats set aside while partitioning, in reading
    order (file as read, then line): records the same as ``deduplicate`` would have
    found, had the repeats been spooled with the events."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ["source", "line", "job_id", "event_id"]
    tables = [pq.read_table(part, read_dictionary=["source", "job_id"]) for part in parts]
    read = pa.concat_tables(tables, promote_options="default").unify_dictionaries()
    del tables
    frames = [duplicates[columns], read.to_pandas()[columns]]
    # Text columns stay categorical (a repeat's job id is one of a few), over the union
    # of their names, without a string per row.
    names = {column: _union([f[column] for f in frames]) for column in ("source", "job_id")}
    joined = pd.concat(
        [
            frame.assign(**{c: _recoded(frame[c], union) for c, union in names.items()})
            for frame in frames
        ],
        ignore_index=True,
    )
    # Files in reading order; -1 (first) is an OpenAI import's source, read before them.
    sources = joined["source"].cat
    position = pd.Index(list(dict.fromkeys(files)), dtype=object).get_indexer(
        sources.categories.astype(str)
    )
    rank = position[sources.codes.to_numpy()]
    order = np.lexsort((joined["line"].to_numpy(dtype="int64"), rank))
    result: pd.DataFrame = joined.take(order).reset_index(drop=True)
    return result


def _union(columns: list[pd.Series]) -> pd.Index:
    """The text values of ``columns`` (categoricals or not), sorted."""
    names: set[str] = set()
    for values in columns:
        kind = values.astype("category")
        names |= {str(c) for c in kind.cat.categories}
    return pd.Index(sorted(names), dtype=object)


def _recoded(values: pd.Series, categories: pd.Index) -> pd.Categorical:
    """``values`` as a categorical over ``categories`` (which hold every one of them)."""
    kind = values.astype("category")
    mapping = categories.get_indexer(kind.cat.categories.astype(str))
    codes = kind.cat.codes.to_numpy()
    recoded = np.where(codes >= 0, mapping[codes] if len(mapping) else codes, -1)
    return pd.Categorical.from_codes(recoded, categories=categories)


def _no_events() -> pd.DataFrame:
    from rftcost.events.readers import empty_events

    return empty_events()


def slim_bill(bill: Bill, *, keep_intervals: bool) -> Bill:
    """``bill`` without what grows with its events: the time line's pieces, its intervals
    (unless ``keep_intervals``) and its grader usage event by event, which is kept summed
    per line instead (``summed_usage``: what FOCUS rows and invoices by token type read)."""
    # ``.copy()`` matters: an empty slice is a view that keeps the whole frame alive.
    timeline = bill.timeline
    slim = timeline.model_copy(
        update={
            "pieces": timeline.pieces.iloc[0:0].copy(),
            "usage": summed_usage(timeline.usage, bill.policy),
            **({} if keep_intervals else {"intervals": timeline.intervals.iloc[0:0].copy()}),
        }
    )
    return bill.model_copy(update={"timeline": slim})


_USAGE_TOKENS = ("input_tokens", "cached_input_tokens", "output_tokens")


def summed_usage(usage: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Grader usage summed per job, charge (``segment``), lost or not (R9), model and token
    price entry in force (R10), with the first time of each: the token counts every grader
    line, FOCUS row and invoice token line is made of, in one row per line rather than per
    event. The columns and types of ``Timeline.usage`` are kept; each row's time lies in
    its price entry, so pricing it again finds the same entry."""
    if usage.empty:
        return usage.iloc[0:0].copy()
    entry = price_in_force(usage, policy.price_table.to_frame())["price_index"]
    keys = ["job", "segment", "lost", "grader_model"]
    groups = usage.assign(_entry=entry.fillna(-1).astype("int64").to_numpy()).groupby(
        [*keys, "_entry"], sort=False, observed=True, dropna=False
    )
    summed = groups.agg(
        ts=("ts", "min"), **{column: (column, "sum") for column in _USAGE_TOKENS}
    ).reset_index()
    summed = summed.sort_values(["job", "ts"], kind="stable", ignore_index=True)
    return summed[list(usage.columns)].astype(usage.dtypes.to_dict())


def combine_bills(bills: Sequence[Bill], *, log: EventLog | None = None) -> Bill:
    """One ``Bill`` from bills of disjoint sets of jobs (job codes renumbered)."""
    if not bills:
        raise ValueError("nothing to combine")
    offsets = np.cumsum([0, *(len(b.timeline.jobs) for b in bills[:-1])])

    def shifted(frames: list[pd.DataFrame]) -> pd.DataFrame:
        moved = [f.assign(job=f["job"] + offset) for f, offset in zip(frames, offsets, strict=True)]
        return _concat(moved)

    timelines = [b.timeline for b in bills]
    jobs_index = [
        t.jobs.set_axis(t.jobs.index + o) for t, o in zip(timelines, offsets, strict=True)
    ]
    timeline = Timeline(
        jobs=_concat(jobs_index, keep_index=True),
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
    jobs = _concat(
        [b.jobs.assign(job=b.jobs["job"] + o) for b, o in zip(bills, offsets, strict=True)]
    ).sort_values("job_id", kind="stable", ignore_index=True)
    return Bill(
        policy=bills[0].policy,
        jobs=jobs,
        charges=shifted([b.charges for b in bills]),
        grader_lines=shifted([b.grader_lines for b in bills]),
        excluded=_concat([b.excluded for b in bills]),
        problems=_concat([b.problems for b in bills]),
        timeline=timeline,
        log=log,
    )


def _concat(frames: list[pd.DataFrame], *, keep_index: bool = False) -> pd.DataFrame:
    """``frames`` one after another; a column categorical in each stays categorical (over
    the union of their names), as the contracts ask, when their categories differ (parts
    of a log that did not see the same events, phases or teams)."""
    joined = pd.concat(frames, ignore_index=not keep_index)
    for column in frames[0].columns if frames else ():
        if all(isinstance(f[column].dtype, pd.CategoricalDtype) for f in frames) and not (
            isinstance(joined[column].dtype, pd.CategoricalDtype)
        ):
            joined[column] = joined[column].astype("category")
    return joined


def bill_in_buckets(
    paths: Sequence[str | Path],
    policy: Policy,
    buckets: int,
    *,
    assume_tz: str | None = None,
    workdir: str | Path | None = None,
    keep_intervals: bool = False,
    keep_timeline: bool = False,
    workers: int = 1,
    jobs: Sequence[str] | None = None,
    on_progress: ProgressCallback | None = None,
    follow_links: bool = False,
) -> Bill:
    """Bill ``paths`` bucket by bucket and combine the results into one ``Bill``, slim
    unless ``keep_timeline`` (only the buckets holding ``jobs``, when given)."""
    with bucketed(
        paths,
        policy,
        buckets,
        assume_tz=assume_tz,
        workdir=workdir,
        keep_intervals=keep_intervals,
        keep_timeline=keep_timeline,
        workers=workers,
        jobs=jobs,
        on_progress=on_progress,
        follow_links=follow_links,
    ) as (partition, stream):
        bills = list(stream)
        log = partition.log_with([b.log for b in bills if b.log is not None])
        return combine_bills(bills or [_empty_bill(policy)], log=log)


def _bucket_folder(workdir: str | Path | None) -> Path:
    """A fresh temporary folder for the bucket files, in ``workdir`` when given.

    A missing workdir, or a file given as one, is refused in one line before any work
    (never created: a typo would scatter bucket files in a new folder)."""
    if workdir is not None and not Path(workdir).is_dir():
        reason = "no such folder" if not Path(workdir).exists() else "not a folder"
        raise InputError(f"--workdir: {reason}", path=workdir)
    try:
        return Path(tempfile.mkdtemp(prefix="rftcost-buckets-", dir=workdir))
    except OSError as exc:
        raise InputError(
            f"--workdir: cannot create the bucket folder: {exc.strerror}", path=workdir
        ) from exc


@overload
def bucketed(
    paths: Sequence[str | Path],
    policy: Policy,
    buckets: int,
    *,
    assume_tz: str | None = ...,
    workdir: str | Path | None = ...,
    keep_intervals: bool = ...,
    keep_timeline: bool = ...,
    workers: int = ...,
    jobs: Sequence[str] | None = ...,
    on_progress: ProgressCallback | None = ...,
    follow_links: bool = ...,
) -> AbstractContextManager[tuple[Partition, Iterator[Bill]]]: ...


@overload
def bucketed(
    paths: Sequence[str | Path],
    policy: Policy,
    buckets: int,
    *,
    assume_tz: str | None = ...,
    workdir: str | Path | None = ...,
    keep_intervals: bool = ...,
    keep_timeline: bool = ...,
    workers: int = ...,
    jobs: Sequence[str] | None = ...,
    on_progress: ProgressCallback | None = ...,
    follow_links: bool = ...,
    then: Callable[[Bill, Path], _R],
) -> AbstractContextManager[tuple[Partition, Iterator[_R]]]: ...


@contextmanager
def bucketed(
    paths: Sequence[str | Path],
    policy: Policy,
    buckets: int,
    *,
    assume_tz: str | None = None,
    workdir: str | Path | None = None,
    keep_intervals: bool = False,
    keep_timeline: bool = False,
    workers: int = 1,
    jobs: Sequence[str] | None = None,
    on_progress: ProgressCallback | None = None,
    follow_links: bool = False,
    then: Callable[[Bill, Path], Any] = as_billed,
) -> Iterator[tuple[Partition, Iterator[Any]]]:
    """Partition ``paths`` into a temporary folder and stream one ``Bill`` per bucket.

    Parquet logs written job by job (``job_runs``) are not partitioned: their runs of
    whole jobs are billed straight from the files, one ``Bill`` per unit, and the
    partition is empty. The folder (kept for the caller's own spool files) is removed
    on exit; a caller writes each bill's results out as it comes, so that only
    ``workers`` buckets or units are in memory at a time. ``then`` runs in the worker
    on each bill, with the folder, and what it returns is streamed instead of the bill
    (a writer lays out its document there: the work is spread over the workers, and
    only the result crosses to this process).
    """
    folder = _bucket_folder(workdir)
    start_workers(workers)
    try:
        runs = _job_runs(
            paths,
            folder,
            buckets,
            policy=policy,
            assume_tz=assume_tz,
            keep_intervals=keep_intervals,
            keep_timeline=keep_timeline,
            workers=workers,
            jobs=jobs,
            on_progress=on_progress,
            follow_links=follow_links,
            then=then,
        )
        if runs is not None:
            yield runs
            return
        partition = partition_events(
            paths,
            folder,
            buckets,
            policy=policy,
            assume_tz=assume_tz,
            workers=workers,
            on_progress=on_progress,
            follow_links=follow_links,
        )
        yield (
            partition,
            iter_bucket_bills(
                partition,
                policy,
                keep_intervals=keep_intervals,
                keep_timeline=keep_timeline,
                workers=workers,
                jobs=jobs,
                on_progress=on_progress,
                then=then,
            ),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _job_runs(
    paths: Sequence[str | Path],
    folder: Path,
    buckets: int,
    *,
    policy: Policy,
    assume_tz: str | None,
    keep_intervals: bool,
    keep_timeline: bool,
    workers: int,
    jobs: Sequence[str] | None,
    on_progress: ProgressCallback | None,
    follow_links: bool,
    then: Callable[[Bill, Path], _R],
) -> tuple[Partition, Iterator[_R]] | None:
    """Parquet logs written job by job, billed in runs of whole jobs (``job_runs``) with
    no bucket file: an empty partition (nothing spooled, every record counted by the
    bills' logs) and the bills of the units; ``None`` if the logs are not so written."""
    check_zone(assume_tz)
    skipped: list[Path] = []
    links: list[Path] = []
    found = expand_paths(paths, skipped, follow_links=follow_links, links=links)
    rows = estimated_events(found)
    # Reading keeps Arrow data of the file beside the part a worker bills (200-290 MiB
    # measured between parts, with row groups of 1M rows): parts are half a bucket, so
    # that a worker's peak stays about a bucket's (50M events: 1.6 GiB, not 1.9-2.2).
    units = plan_job_runs(
        found,
        part_rows=max(1, math.ceil(rows / (2 * buckets))),
        unit_rows=max(1, min(_UNIT_ROWS, math.ceil(rows / (2 * max(1, workers))))),
        jobs=jobs,
    )
    if units is None:
        return None
    files = tuple(str(f) for f in found)
    partition = Partition(
        folder=folder,
        buckets=sum(len(unit.parts) for unit in units),
        files=files,
        rejected=empty_rejected(),
        accepted=0,
        notes=skip_notes(skipped, links),
    )
    task = partial(
        _bill_run_unit,
        files=files,
        policy=policy,
        assume_tz=assume_tz,
        keep_intervals=keep_intervals,
        keep_timeline=keep_timeline,
    )

    finished = partial(_billed_then, task, then, folder)

    def bills() -> Iterator[_R]:
        for done, bill in enumerate(_mapped(finished, units, workers), start=1):
            yield bill
            if on_progress:
                on_progress("bill", done, len(units))

    return partition, bills()


def combine_logs(
    logs: Sequence[EventLog],
    *,
    read_rejected: pd.DataFrame | None = None,
    files: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
    problems: pd.DataFrame | None = None,
) -> EventLog:
    """What was read, over the logs of several buckets' bills (and records rejected while
    partitioning, ``read_rejected``; ``notes`` on reading, such as files skipped;
    ``problems`` of jobs an OpenAI export cannot bill)."""
    rejected = pd.concat(
        [
            read_rejected if read_rejected is not None else empty_rejected(),
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
        problems=pd.concat(
            [
                problems_from_rejections(rejected),
                problems if problems is not None else no_problems(),
            ],
            ignore_index=True,
        ),
        files=files,
        accepted_count=sum(log.accepted for log in logs),
        notes=notes + tuple(note for log in logs for note in log.notes),
    )


def _empty_bill(policy: Policy) -> Bill:
    return bill_events(_no_events(), policy)
