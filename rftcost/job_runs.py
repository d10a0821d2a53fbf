"""Parquet logs written job by job: billed in runs of whole jobs, straight from the file.

A log whose records are grouped by job (each job's records one run of rows, as a
per-job export or a sort by job writes them) needs no hash buckets: a run of whole
jobs is a bucket already. ``plan_job_runs`` reads only the ``job_id`` column, to
prove the grouping and to cut the files at job starts into units (runs of row groups,
one task of a worker) and parts (the jobs billed at once); ``read_parts`` reads a
unit and yields each part's records. A job is never cut, so each part bills exactly
as the whole log would (R1-R15 are per job; so is de-duplication).

Anything else plans nothing and is bucketed: a text log or an OpenAI export, a job
whose records are in two places (two runs, two files), a ``job_id`` column that is
not text, a file that cannot be read (the bucketed path then says why).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import numpy as np
import pandas as pd

from rftcost.events.readers import normalize_chunk, parquet_file, parquet_tables
from rftcost.policy import Policy

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["RunUnit", "plan_job_runs", "read_parts"]

_CHUNK_ROWS = 65_536  # rows decoded at a time: see read_parts
_SCAN_ROWS = 1_000_000  # rows of job ids read by one task of the plan
_T = TypeVar("_T")
_R = TypeVar("_R")


class RunUnit(NamedTuple):
    """A run of a Parquet file's row groups read by one task, and the parts billed from it."""

    path: Path
    row_groups: tuple[int, ...]
    """Row groups read, consecutive."""
    parts: tuple[tuple[int, int], ...]
    """Lines ``[first, end)`` (1-based, as readers number Parquet rows) of whole jobs."""


class _FileRuns(NamedTuple):
    """A file's runs of one job: first row of each run and its job id (stripped, or None)."""

    path: Path
    starts: np.ndarray
    keys: np.ndarray
    group_starts: np.ndarray
    rows: int


def plan_job_runs(
    files: Sequence[Path],
    *,
    part_rows: int,
    unit_rows: int,
    jobs: Sequence[str] | None = None,
) -> list[RunUnit] | None:
    """Units of whole jobs to bill ``files`` by, or ``None`` if they are not grouped by job.

    Parts hold about ``part_rows`` records (more when one job is larger), units about
    ``unit_rows``, both cut at the first job start at or after the mark. With ``jobs``,
    only the parts that hold one of those jobs are kept.
    """
    if not files or any(not f.name.lower().endswith(".parquet") for f in files):
        return None
    found = [_file_runs(path) for path in files]
    if any(runs is None for runs in found):
        return None
    runs = [r for r in found if r is not None]
    keys = pd.Series(np.concatenate([r.keys for r in runs]), dtype=object)
    if keys[keys.notna()].duplicated().any():
        return None  # a job in two places: only buckets bring its records together
    wanted = None if jobs is None else {str(j) for j in jobs}
    units: list[RunUnit] = []
    for file in runs:
        units.extend(_file_units(file, part_rows, unit_rows, wanted))
    return units


def _file_runs(path: Path) -> _FileRuns | None:
    """The runs of ``path``'s ``job_id`` column, adjacent runs of one job merged."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        if len(set(names)) != len(names) or not {"job_id", "ts", "event"} <= set(names):
            return None  # not an event log: the bucketed path says so before any work
        metadata = parquet.metadata
        sizes = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
        kind = parquet.schema_arrow.field("job_id").type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return None
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype("int64")
        # Row groups read a run at a time: a file of many small ones is not opened per group.
        tasks = np.flatnonzero(np.diff(offsets[:-1] // _SCAN_ROWS, prepend=-1))
        runs = [tuple(range(a, b)) for a, b in itertools.pairwise([*tasks, len(sizes)])]
        # The first run alone first: a log of interleaved jobs is told at once.
        first = _group_runs(path, runs[0]) if runs else None
        found = [first, *_map_threads(partial(_group_runs, path), runs[1:])] if first else []
    except Exception:  # a file unreadable here is bucketed, and that path names the error
        return None
    if any(f is None for f in found) or (runs and not found):
        return None  # a job in two runs within some row groups
    pairs = [f for f in found if f is not None]
    start = np.concatenate(
        [rows + offsets[groups[0]] for groups, (rows, _) in zip(runs, pairs, strict=True)]
        or [np.zeros(0, "int64")]
    ).astype("int64")
    key = np.concatenate([keys for _, keys in pairs] or [np.zeros(0, object)])
    # One job's runs side by side (a row group boundary, "a" then " a") are one run.
    previous = pd.Series(key, dtype=object).shift(1)
    new_run = ~(previous.notna() & (previous == pd.Series(key, dtype=object))).to_numpy()
    return _FileRuns(path, start[new_run], key[new_run], offsets, int(offsets[-1]))


def _group_runs(path: Path, groups: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """First row (from the first of ``groups``) and job id of each run of those row groups;
    ``None`` when an id has two runs there (the file is not written job by job)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path, read_dictionary=["job_id"]).read_row_groups(
        list(groups), columns=["job_id"]
    )
    chunk = table.unify_dictionaries().column(0).combine_chunks()
    if len(chunk) == 0:
        return np.zeros(0, "int64"), np.zeros(0, object)
    if not pa.types.is_dictionary(chunk.type):
        chunk = chunk.dictionary_encode()
    indices = chunk.indices
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    codes = indices.to_numpy(zero_copy_only=False)
    first = np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1])
    if len(first) > len(np.unique(codes[first])):
        return None
    # The readers strip a job id as Python does (``str.strip``); blank is none.
    names = pd.Index(chunk.dictionary.to_pandas(), dtype=object).str.strip()
    # One slot more, for the code -1 of a null id: a record of no job.
    named = np.empty(len(names) + 1, dtype=object)
    named[:-1] = np.where(names == "", None, names.to_numpy(dtype=object))
    return first, named[codes[first]]


def _map_threads(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``list(map(function, items))`` on a few threads (Parquet decoding frees the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(4, max(1, os.cpu_count() or 1))) as pool:
        return list(pool.map(function, items))


def _file_units(
    file: _FileRuns, part_rows: int, unit_rows: int, wanted: set[str] | None
) -> list[RunUnit]:
    """Cut one file at job starts: units at row group marks, parts within each unit."""
    if file.rows == 0:
        return []
    cuts = np.append(file.starts, file.rows)  # where a part may begin or end

    def at_cut(rows: np.ndarray) -> np.ndarray:
        return cuts[np.searchsorted(cuts, rows, side="left")]

    # A new unit begins at the first row group past each ``unit_rows`` of rows.
    group_first = file.group_starts[:-1]
    marks = group_first[np.flatnonzero(np.diff(group_first // max(1, unit_rows), prepend=-1))]
    unit_bounds = np.unique(np.append(at_cut(marks), file.rows))
    units: list[RunUnit] = []
    for begin, end in itertools.pairwise(unit_bounds):
        targets = np.arange(begin + part_rows, end, max(1, part_rows))
        bounds = np.unique(np.concatenate([[begin], at_cut(targets), [end]]))
        parts = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
        if wanted is not None:
            parts = [p for p in parts if _holds(file, p, wanted)]
        if not parts:
            continue
        first_group = int(np.searchsorted(file.group_starts, parts[0][0], side="right")) - 1
        last_group = int(np.searchsorted(file.group_starts, parts[-1][1] - 1, side="right")) - 1
        units.append(
            RunUnit(
                path=file.path,
                row_groups=tuple(range(first_group, last_group + 1)),
                parts=tuple((a + 1, b + 1) for a, b in parts),
            )
        )
    return units


def _holds(file: _FileRuns, part: tuple[int, int], wanted: set[str]) -> bool:
    """Whether rows ``[first, end)`` of ``file`` hold one of the ``wanted`` jobs."""
    inside = (file.starts >= part[0]) & (file.starts < part[1])
    return any(key in wanted for key in file.keys[inside] if key is not None)


def read_parts(
    unit: RunUnit,
    *,
    policy: Policy,
    assume_tz: str | None = None,
    chunk_rows: int = _CHUNK_ROWS,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """``(accepted, rejected)`` records of each of ``unit``'s parts, in order.

    A part's rows are gathered in Arrow and validated at once, as every reader
    validates records (``normalize_chunk``); reading stops once the last part is
    complete, where it ends in the unit's last row group. Rows are decoded
    ``chunk_rows`` at a time: 65,536 rather than 250,000 cost less CPU in a worker that
    bills between parts (measured with ``unit_cpu.py``, reading the first unit: 0.84-1.15
    s instead of 1.23-1.38 s, most of it the kernel's time to map fresh pages), and
    hold less memory beside the part.
    """
    import pyarrow as pa

    tables = _unit_tables(unit, chunk_rows)
    pending: list[pa.Table] = []
    read_to = 0  # the last line read
    for first, end in unit.parts:
        while read_to < end - 1:
            table = next(tables, None)
            if table is None:
                break
            if table.num_rows:
                pending.append(table)
                read_to = _first_line(table) + table.num_rows - 1
        pieces = [_lines(t, first, end) for t in pending]
        pieces = [t for t in pieces if t.num_rows]
        # Concatenated without a copy; a part's categories are its own (a slice of a row
        # group keeps the whole group's dictionary).
        empty = pending[0].slice(0, 0) if pending else None
        raw = pa.concat_tables(pieces) if pieces else empty
        part = (
            _no_records()
            if raw is None
            else normalize_chunk(
                raw,
                path=unit.path,
                assume_tz=assume_tz,
                policy=policy,
                own_categories=bool(pieces),
            )
        )
        del raw, pieces, empty  # the part's Arrow table, before it is billed
        yield part
        del part  # before the next part is read (the caller lets go of it too)
        pending = [t for t in (_lines(t, end, None) for t in pending) if t.num_rows]


def _unit_tables(unit: RunUnit, chunk_rows: int) -> Iterator[pa.Table]:
    """The unit's rows, ``chunk_rows`` at a time, up to the end of its last part.

    The last row group is read only as far as the last part needs (a few rows when the
    unit ends with the first job of that group; the whole group when it ends with the
    group), in batches that end where that part ends: no row past it is decoded.
    """
    # Decoded in this thread: a worker is one of several processes sharing the cores,
    # where Arrow's threads add CPU and no speed.
    head, tail = unit.row_groups[:-1], unit.row_groups[-1]
    if head:
        yield from parquet_tables(
            unit.path, chunk_rows=chunk_rows, row_groups=head, use_threads=False
        )
    metadata = parquet_file(unit.path).metadata
    tail_first = 1 + sum(metadata.row_group(g).num_rows for g in range(tail))
    needed = max(1, unit.parts[-1][1] - tail_first)
    batches = -(-needed // max(1, chunk_rows))
    yield from parquet_tables(
        unit.path, chunk_rows=-(-needed // batches), row_groups=[tail], use_threads=False
    )


def _first_line(table: pa.Table) -> int:
    line: int = table.column("line")[0].as_py()
    return line


def _lines(table: pa.Table, first: int, end: int | None) -> pa.Table:
    """The rows of ``table`` (consecutive lines) on lines ``[first, end)`` (``end`` None:
    to its last): a slice, no copy."""
    start = _first_line(table) if table.num_rows else first
    low = max(0, first - start)
    high = table.num_rows if end is None else max(low, min(table.num_rows, end - start))
    return table.slice(low, high - low)


def _no_records() -> tuple[pd.DataFrame, pd.DataFrame]:
    from rftcost.events.readers import empty_events, empty_rejected

    return empty_events(), empty_rejected()
