"""Reading canonical event logs: JSON Lines, CSV and Parquet, plain or gzip, files or folders.

The reader's guarantees (event-log.md, "What the reader guarantees"):

- every record ends up accepted, a duplicate, or rejected with its file, line,
  reason and raw value, and ``records_read = accepted + duplicates + rejected``;
- records with the same ``event_id`` and content are one event; the same
  ``event_id`` with other content is a conflict that makes the job invalid;
  records without ``event_id`` are de-duplicated on their full content;
- the result does not depend on the order of records or their split into files.

Validation and coercion work on whole columns; a per-line Python parse is used
only to locate the bad lines of a JSON Lines block that does not parse as a whole.
A typed Parquet table is checked in Arrow first (``typed_tables``); only a table
with a record to reject comes to ``normalize_records``. Text files (JSON Lines, CSV,
gzipped or not) are read in blocks, so that memory follows the records kept, not
the size of the file.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from rftcost.csv_lines import csv_records, record_lines
from rftcost.errors import EXCERPT, InputError, UnreadableFileError, excerpt, why_unreadable
from rftcost.events.csv_rows import (
    csv_frame,
    job_before_open_quote,
    refuse_repeated_csv_columns,
    set_aside_swallowed,
    without_repeated_headers,
)
from rftcost.events.duplicates import (
    deduplicate,
    empty_duplicates,
    empty_rejected,
    in_reading_order,
    recoded,
)
from rftcost.events.folders import UNREADABLE_LINK_NOTE, entries_below, skip_notes
from rftcost.events.json_text import (
    SURROGATE_ESCAPE,
    file_named_in_text,
    lone_surrogate,
    without_surrogates,
)
from rftcost.events.line_blocks import MAX_LINE_BYTES, line_blocks
from rftcost.events.names import not_a_name
from rftcost.events.schema import (
    BOOL_COLUMNS,
    CATEGORY_COLUMNS,
    CONTENT_COLUMNS,
    EVENT_COLUMNS,
    EVENTS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    MAX_COUNT,
    REJECTED_COLUMNS,
    REQUIRED_BY_EVENT,
    STRING_COLUMNS,
    refuse_repeated_columns,
)
from rftcost.policy import Policy, load_policy
from rftcost.time import parse_iso

__all__ = [
    "CATEGORY_COLUMNS",
    "LOG_SUFFIXES",
    "MAX_COUNT",
    "UNREADABLE_LINK_NOTE",
    "VALUE_EXCERPT",
    "EventLog",
    "ProgressCallback",
    "check_zone",
    "concat_events",
    "deduplicate",
    "drop_repeats",
    "empty_events",
    "empty_rejected",
    "expand_paths",
    "is_openai_export",
    "message_line",
    "normalize_chunk",
    "normalize_records",
    "parquet_file",
    "parquet_tables",
    "problems_from_rejections",
    "read_events",
    "read_file_chunks",
    "read_openai_exports",
    "skip_notes",
]

LOG_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".csv", ".csv.gz", ".parquet")
"""File names a folder is searched for (OpenAI exports, ``.json``, are recognised too)."""

_T = TypeVar("_T")

ProgressCallback = Callable[[str, int, int], None]
"""``(stage, done, total)``: called as files are read and stages complete."""

PROVENANCE_COLUMNS = ("source", "line")
# Timestamps are held as int64 nanoseconds since 1970 (the Unix epoch) up to 2262-04-11,
# the most int64 holds. Anything outside is rejected: a log of an RFT job from year 1 or
# 1725 is a bad record (a typo'd year), and two times of one job are then never more
# than 2**63 ns apart, so no difference of times can overflow (1677-09-21, pandas' own
# lower bound, would allow 585 years and a negative bill for a job spanning 300 of them).
_MIN_NS = 0
_MAX_NS = int(pd.Timestamp.max.value)
_MIN_EPOCH_SECONDS = 0
_MAX_EPOCH_SECONDS = _MAX_NS // 1_000_000_000
_EPOCH_RANGE = "epoch seconds out of range (years 1970-2262; milliseconds?)"
_TS_RANGE = "timestamp out of range (years 1970-2262)"
# An offset counts only after a time of day: in "2025-06-02" the "-02" is the day.
_OFFSET_PATTERN = r"[T t]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_EPOCH_PATTERN = r"-?\d+(?:\.\d+)?"
_DATE_ONLY_PATTERN = r"[+-]?\d{4,}-\d{2}(?:-\d{2})?|[+-]?\d{4,}-W\d{2}(?:-\d)?|\d{4}-\d{3}"
"""A calendar, week or ordinal date with no time of day (ISO 8601)."""
VALUE_EXCERPT = EXCERPT
"""A rejected value is kept (and shown) as at most this many characters."""
_BOM = "\ufeff"
_TEXT_BLOCK_BYTES = 4 * 2**20
"""Bytes of JSON Lines read at a time (whole lines): bounds the memory of a large or
gzipped file to its parsed blocks, whatever it expands to."""
_CSV_CHUNK_ROWS = 200_000
"""CSV rows read at a time when the caller gives no chunk size (the same bound)."""
_UNDECODED = re.compile("[\udc80-\udcff]")
"""Bytes that were not UTF-8, kept as surrogates by ``surrogateescape``."""
_JOB_ID_IN_TEXT = re.compile(r'"job_id"\s*:\s*"((?:[^"\\]|\\.){1,200})"')
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


class EventLog(BaseModel):
    """What reading logs produced: accepted events, and every other record accounted for."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    events: pd.DataFrame
    """Accepted events: ``EVENT_COLUMNS`` (``ts`` as int64 UTC nanoseconds) + source, line."""
    rejected: pd.DataFrame
    """Records not used: source, line, job_id, column, value, reason."""
    duplicates: pd.DataFrame
    """Records identical to an accepted one: source, line, job_id, event_id."""
    problems: pd.DataFrame
    """Per-job reasons the job cannot be reconstructed from its records: job_id, problem."""
    files: tuple[str, ...]
    """Files read, in order."""
    accepted_count: int | None = None
    """Accepted events, when ``events`` is not kept (bucketed billing keeps it on disk)."""
    notes: tuple[str, ...] = ()
    """What an OpenAI import could not map (unknown messages) or chose, for the reader."""

    @property
    def accepted(self) -> int:
        """Accepted events."""
        return len(self.events) if self.accepted_count is None else self.accepted_count

    @property
    def records_read(self) -> int:
        """Records found in the files."""
        return self.accepted + len(self.duplicates) + len(self.rejected)

    def counts(self) -> dict[str, int]:
        """``records_read``, ``accepted``, ``duplicates``, ``rejected`` (they reconcile)."""
        return {
            "records_read": self.records_read,
            "accepted": self.accepted,
            "duplicates": len(self.duplicates),
            "rejected": len(self.rejected),
        }


def expand_paths(
    paths: Iterable[str | Path],
    skipped: list[Path] | None = None,
    *,
    follow_links: bool = False,
    links: list[Path] | None = None,
) -> list[Path]:
    """Files named, and event-log files below folders named, in sorted order.

    Inside a folder, a file that is plainly not an event log (a CSV or JSON file
    without the ``job_id``, ``ts`` and ``event`` columns, such as an invoice or a
    budget kept beside the logs) is left out and added to ``skipped``; a file named
    on its own is always read. A link (symlink) inside a folder that leads out of
    it is not followed unless ``follow_links``: it is added to ``links`` instead (a
    folder of logs must not read whatever file a link points at).
    """
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            entries, linked_folders = entries_below(path, follow_links=follow_links)
            if links is not None:
                links.extend(linked_folders)
            found = [p for p in entries if _is_log_file(p)]
            below = sorted(p for p in found if p.is_file())
            if skipped is not None:
                # A dangling link or a link loop, a pipe or a device: a log that cannot be
                # read is said, never silently absent (its jobs may bill short); skip_notes
                # words it.
                skipped.extend(sorted(p for p in found if not p.is_file() and not p.is_dir()))
            if not follow_links:
                root = path.resolve()
                outside = [p for p in below if not p.resolve().is_relative_to(root)]
                if links is not None:
                    links.extend(outside)
                below = [p for p in below if p not in set(outside)]
            logs = [p for p in below if _looks_like_event_log(p)]
            if skipped is not None:
                skipped.extend(p for p in below if p not in set(logs))
            files.extend(file_named_in_text(p) for p in logs)
        elif path.is_file():
            files.append(file_named_in_text(path))
        elif path.exists():  # a pipe, /dev/zero, a socket: reading it would hang or never end
            raise UnreadableFileError(
                "not a regular file; an event log is a file or a folder of files", path=path
            )
        else:
            raise UnreadableFileError("no such file or folder", path=path)
    return files


def check_zone(assume_tz: str | None) -> None:
    """Raise ``InputError`` naming ``--assume-tz`` when ``assume_tz`` is not a known zone."""
    if assume_tz is None:
        return
    try:
        pd.DatetimeIndex([]).tz_localize(assume_tz)
    except Exception as exc:  # pytz / zoneinfo / dateutil each raise their own
        raise InputError(
            "unknown time zone",
            path="--assume-tz",
            value=excerpt(assume_tz),
            hint="name an IANA zone such as Europe/Paris, or UTC",
        ) from exc


def message_line(exc: BaseException) -> str:
    """A library's message as one short line (Arrow's run over several, with schemas)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return excerpt(first, 200)


def parquet_file(path: Path) -> Any:
    """``pyarrow.parquet.ParquetFile`` of ``path``; an unreadable file names itself."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read file: {why_unreadable(exc)}", path=path) from exc
    except Exception as exc:  # ArrowInvalid and kin: a corrupt or truncated file
        raise UnreadableFileError(
            f"not a readable Parquet file: {message_line(exc)}", path=path
        ) from exc


_REQUIRED_COLUMNS = {"job_id", "ts", "event"}


def _looks_like_event_log(path: Path) -> bool:
    """A cheap look at a file's columns (header, first record or schema), no full read."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return set(pq.read_schema(path).names) >= _REQUIRED_COLUMNS
        if name.endswith((".json", ".jsonl", ".ndjson")) and is_openai_export(path):
            return True
        if name.endswith(".json"):
            return False  # a .json file in a folder is an OpenAI export or not a log at all
        opener = gzip.open if name.endswith(".gz") else open
        # utf-8-sig: a byte-order mark must not hide the first column's name.
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as handle:
            first = next((line for line in handle if line.strip()), "")
        if name.endswith((".csv", ".csv.gz")):
            return {c.strip().strip('"') for c in first.split(",")} >= _REQUIRED_COLUMNS
        record = json.loads(first)
        return isinstance(record, dict) and set(record) >= _REQUIRED_COLUMNS
    except (OSError, ValueError, EOFError):
        return True  # let the reader say what is wrong with it


def _is_log_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(LOG_SUFFIXES) or name.endswith(".json")


def read_events(
    paths: str | Path | Sequence[str | Path],
    *,
    assume_tz: str | None = None,
    policy: Policy | str | Path | None = None,
    on_progress: ProgressCallback | None = None,
    follow_links: bool = False,
) -> EventLog:
    """Read, validate and de-duplicate canonical event logs (and OpenAI exports).

    ``assume_tz`` names the zone of timestamps written without an offset (else they
    are rejected). ``policy`` supplies phase aliases (R3). ``follow_links`` reads
    files that links inside a folder point at outside it (else they are noted and
    left). Raises ``UnreadableFileError`` for a file that cannot be read at all.
    """
    check_zone(assume_tz)
    resolved_policy = load_policy(policy)
    if isinstance(paths, str | Path):
        paths = [paths]
    skipped: list[Path] = []
    links: list[Path] = []
    files = expand_paths(paths, skipped, follow_links=follow_links, links=links)
    exports = [f for f in files if is_openai_export(f)]
    accepted: list[pd.DataFrame] = []
    rejected: list[pd.DataFrame] = []
    notes: tuple[str, ...] = ()
    export_problems = pd.DataFrame({"job_id": [], "problem": []}, dtype="string")
    if exports:
        # One import for all export files: a job's pages may be spread over several.
        frame, bad, notes, export_problems = read_openai_exports(
            exports, assume_tz=assume_tz, policy=resolved_policy
        )
        accepted.append(frame)
        rejected.append(bad)
    canonical = [f for f in files if f not in set(exports)]
    repeats: list[pd.DataFrame] = []
    for done, file in enumerate(canonical):
        frame, bad, repeated = _read_file(file, assume_tz=assume_tz, policy=resolved_policy)
        accepted.append(frame)
        rejected.append(bad)
        if repeated is not None and len(repeated):
            repeats.append(repeated)
        if on_progress:
            on_progress("read", done + 1, len(canonical))
    events = concat_events(accepted) if accepted else empty_events()
    rejected_frame = pd.concat(rejected, ignore_index=True) if rejected else empty_rejected()
    events, duplicates, conflicts = deduplicate(events)
    if repeats:
        duplicates = in_reading_order([*repeats, duplicates], accepted)
    rejected_frame = pd.concat([rejected_frame, conflicts], ignore_index=True)
    problems = pd.concat(
        [problems_from_rejections(rejected_frame), export_problems], ignore_index=True
    )
    if on_progress:
        on_progress("validate", 1, 1)
    return EventLog(
        events=events,
        rejected=rejected_frame,
        duplicates=duplicates,
        problems=problems,
        files=tuple(str(f) for f in files),
        notes=notes + skip_notes(skipped, links),
    )


def concat_events(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate event frames, keeping categorical columns categorical (union of categories)."""
    frames = [f for f in frames if len(f)] or list(frames[:1])
    # A column with no value at all comes back from Parquet untyped: categorical again.
    frames = [
        f.assign(
            **{
                c: f[c].astype("string").astype("category")
                for c in CATEGORY_COLUMNS
                if not isinstance(f[c].dtype, pd.CategoricalDtype)
            }
        )
        for f in frames
    ]
    if len(frames) == 1:
        return frames[0]
    unified = {
        column: pd.Index(
            sorted({str(c) for f in frames for c in f[column].cat.categories}), dtype=object
        )
        for column in CATEGORY_COLUMNS
    }
    aligned = [
        f.assign(**{c: recoded(f[c], categories) for c, categories in unified.items()})
        for f in frames
    ]
    return pd.concat(aligned, ignore_index=True)


# --- reading one file ------------------------------------------------------------------


def _read_file(
    path: Path, *, assume_tz: str | None, policy: Policy
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """(events, rejected, repeats): a text file's records identical to an earlier one of
    the same chunk are set aside chunk by chunk (a gzipped file of one record repeated
    a million times holds one), as ``duplicates``; ``deduplicate`` does the rest."""
    frames, rejected, repeats = [], [], []
    text = not path.name.lower().endswith(".parquet")
    for frame, bad in read_file_chunks(path, assume_tz=assume_tz, policy=policy):
        if text:
            frame, repeated = drop_repeats(frame)
            repeats.append(repeated)
        frames.append(frame)
        rejected.append(bad)
    repeat_frame = pd.concat(repeats, ignore_index=True) if repeats else None
    return concat_events(frames), pd.concat(rejected, ignore_index=True), repeat_frame


def drop_repeats(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records identical (job, event id and content) to an earlier record of ``events``:
    ``(kept, duplicates)``.

    Such a record is a duplicate wherever the earlier one is, so setting them aside
    piece by piece before ``deduplicate`` changes neither what is kept, nor the
    duplicates, nor the conflicts: it only bounds the memory a log of repeats takes.
    """
    same = events.duplicated(["job_id", "event_id", *CONTENT_COLUMNS], keep="first")
    if not same.any():
        return events, empty_duplicates(events)
    repeated = events.loc[same, ["source", "line", "job_id", "event_id"]]
    return events[~same].reset_index(drop=True), repeated.reset_index(drop=True)


def read_file_chunks(
    path: Path,
    *,
    assume_tz: str | None,
    policy: Policy,
    chunk_rows: int | None = None,
    row_groups: Sequence[int] | None = None,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Yield ``(accepted, rejected)`` for one file, ``chunk_rows`` records at a time.

    Parquet files are read in chunks when ``chunk_rows`` is given; CSV files in chunks
    of ``chunk_rows`` or 200,000 rows, JSON Lines files in blocks of 4 MiB of whole
    lines (bounded memory, gzipped or not); OpenAI exports are read whole. ``row_groups``
    reads only those row groups of a Parquet file (lines still count from its start).
    """
    check_zone(assume_tz)
    name = path.name.lower()
    if name.endswith(".json"):
        yield _read_openai_export(path, assume_tz=assume_tz, policy=policy)
        return
    if not name.endswith(LOG_SUFFIXES):
        raise UnreadableFileError(
            "unsupported file type",
            path=path,
            hint="use .jsonl, .csv or .parquet (optionally .gz), or an OpenAI export .json",
        )
    for raw, bad in _named_errors(path, _raw_chunks(path, chunk_rows, row_groups)):
        yield normalize_chunk(raw, path=path, assume_tz=assume_tz, policy=policy, rejected=bad)


def parquet_tables(
    path: Path,
    *,
    chunk_rows: int | None = None,
    row_groups: Sequence[int] | None = None,
    use_threads: bool = True,
) -> Iterator[Any]:
    """Arrow tables of a Parquet file's records, ``chunk_rows`` at a time, each with its
    ``line`` column (row numbers from the file's start); raw, for ``normalize_chunk``.
    ``use_threads=False``: columns decoded one after another, in this thread (for a
    process that is one of several sharing the cores)."""
    tables = _read_parquet(path, chunk_rows, row_groups, use_threads=use_threads)
    chunks = ((table, None) for table in tables)
    for table, _ in _named_errors(path, chunks):
        yield table


def normalize_chunk(
    raw: Any,
    *,
    path: Path,
    assume_tz: str | None,
    policy: Policy,
    rejected: pd.DataFrame | None = None,
    own_categories: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(accepted, rejected)`` of raw records read from ``path``: a pandas frame, or an
    Arrow table (``parquet_tables``) checked in Arrow first. ``rejected``: records the
    reading itself set aside, put first. ``own_categories``: an Arrow table's text
    categories are only the values its rows use (a slice of row groups read as if
    alone; ``typed_tables.own_dictionaries``)."""
    bad = empty_rejected() if rejected is None else rejected
    if isinstance(raw, pd.DataFrame):
        names, rows = list(raw.columns), len(raw)
    else:
        names, rows = raw.column_names, raw.num_rows
    missing = sorted(_REQUIRED_COLUMNS - set(names)) if rows else []
    if missing:
        raise UnreadableFileError(
            f"not an event log: no {', '.join(missing)} column",
            path=path,
            hint="every record needs job_id, ts and event (see the event log format)",
        )
    if not isinstance(raw, pd.DataFrame):
        # A Parquet table: checked in Arrow; only a table with a record to reject
        # (or an unusual column type) goes through the general path below.
        frame = _normalize_typed(
            raw, source=str(path), policy=policy, own_categories=own_categories
        )
        if frame is not None:
            return frame, bad
        from rftcost.events.typed_tables import own_dictionaries, undecoded_text_as_bytes

        if own_categories:
            raw = own_dictionaries(raw)
        raw = undecoded_text_as_bytes(raw).to_pandas()
    frame, invalid = normalize_records(raw, source=str(path), assume_tz=assume_tz, policy=policy)
    both = pd.concat([bad, invalid], ignore_index=True)  # in line order, as a user reads them
    return frame, both.sort_values("line", kind="stable", ignore_index=True) if len(bad) else both


def _named_errors(path: Path, chunks: Iterator[tuple[Any, _T]]) -> Iterator[tuple[Any, _T]]:
    """``chunks``, a failure to read or parse them an ``UnreadableFileError`` naming ``path``."""
    while True:
        try:
            item = next(chunks)
        except StopIteration:
            return
        except InputError:
            raise
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise UnreadableFileError(
                f"cannot read file: {why_unreadable(exc)}", path=path
            ) from exc
        except Exception as exc:  # pyarrow / pandas parser errors have no common base
            raise UnreadableFileError(f"cannot parse file: {message_line(exc)}", path=path) from exc
        yield item


def _normalize_typed(
    table: Any, *, source: str, policy: Policy, own_categories: bool = False
) -> pd.DataFrame | None:
    """The fast path of a Parquet table (``typed_tables``), its line column set apart."""
    from rftcost.events.typed_tables import normalize_table

    lines = table["line"]
    if len(lines) == 0:
        return None
    body = table.drop_columns(["line"])
    return normalize_table(
        body,
        source=source,
        first_line=int(lines[0].as_py()),
        policy=policy,
        own_categories=own_categories,
    )


def _raw_chunks(
    path: Path, chunk_rows: int | None, row_groups: Sequence[int] | None
) -> Iterator[tuple[Any, pd.DataFrame]]:
    """``(records, rejected)``: records as a pandas frame, or an Arrow table (Parquet)."""
    name = path.name.lower()
    if not name.endswith((".parquet", ".gz")):
        _refuse_misnamed(path)
    if name.endswith(".parquet"):
        for table in _read_parquet(path, chunk_rows, row_groups):
            yield table, empty_rejected()
    elif name.endswith((".csv", ".csv.gz")):
        for frame, rejected in _read_csv(path, chunk_rows):
            yield set_aside_swallowed(path, without_repeated_headers(path, frame), rejected)
    else:
        yield from _read_jsonl(path)


def _refuse_misnamed(path: Path) -> None:
    """A text log's name on gzip or Parquet data: every line would be a rejected record
    (the total unknown, exit 0); the file's kind is said instead, exit 2."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return  # the reading proper says why
    kind = "gzip" if head[:2] == b"\x1f\x8b" else "Parquet" if head == b"PAR1" else None
    if kind is not None:
        named = f"{path.name}.gz" if kind == "gzip" else f"{path.stem}.parquet"
        raise UnreadableFileError(
            f"{kind} data in a file named as text", path=path, hint=f"rename it {named}"
        )


_EXPORT_MARK = b"fine_tuning.job"
"""Every object an OpenAI export is recognised by names its type so (``events.openai``)."""
_FETCH_NAMES = ("job.json", "events.json", "checkpoints.json")
"""Files ``rftcost fetch`` writes: recognised by their name too (``events.openai``)."""


def is_openai_export(path: Path) -> bool:
    name = path.name.lower()
    if not name.endswith((".json", ".jsonl", ".ndjson")):
        return False
    if path.is_file() and name not in _FETCH_NAMES:
        # A canonical log is told apart without loading the importer (a large module):
        # no export object in the first 64 KiB, where the importer's own sniff looks.
        try:
            with path.open("rb") as handle:
                if _EXPORT_MARK not in handle.read(65_536):
                    return False
        except OSError:
            return False
    from rftcost.events.openai import looks_like_openai_export

    return looks_like_openai_export(path)


def read_openai_exports(
    paths: Sequence[Path], *, assume_tz: str | None, policy: Policy
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...], pd.DataFrame]:
    """OpenAI exports → canonical events through the importer, with its report kept.

    Returns events, rejected records (an export object that cannot be read, with its
    file, line, event id and job: its job is invalid), notes, and the jobs the export
    cannot bill (job_id, problem: incomplete time, unknown grader usage).
    """
    from rftcost.events.openai import import_openai
    from rftcost.events.openai.notes import counts_note

    imported = import_openai(list(paths))
    source = str(paths[0]) if len(paths) == 1 else f"OpenAI export ({len(paths)} files)"
    raw = imported.events.assign(line=np.arange(1, len(imported.events) + 1))
    frame, bad = normalize_records(raw, source=source, assume_tz=assume_tz, policy=policy)
    problems = pd.DataFrame(
        [
            _rejection(
                p.file, p.line or 0, p.job_id, "openai", p.position, f"OpenAI export: {p.reason}"
            )
            for p in imported.problems
        ],
        columns=list(REJECTED_COLUMNS),
    )
    job_problems = pd.DataFrame(
        {
            "job_id": [p.job_id for p in imported.job_problems],
            "problem": [f"OpenAI export: {p.reason}" for p in imported.job_problems],
        },
        dtype="string",
    )
    counted = counts_note(imported.objects_read, imported.duplicates, len(imported.events))
    unknown = (
        f"{m.file}: job {m.job_id}: unknown message at {m.created_at.isoformat()}: {m.message!r}"
        for m in imported.unknown_messages
    )
    notes = (counted, *unknown, *imported.notes)
    return frame, pd.concat([bad, problems], ignore_index=True), notes, job_problems


def _read_openai_export(
    path: Path, *, assume_tz: str | None, policy: Policy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not is_openai_export(path):
        raise UnreadableFileError(
            "a .json file that is not an OpenAI fine-tuning export",
            path=path,
            hint="canonical logs are .jsonl, .csv or .parquet",
        )
    frame, bad, _, _ = read_openai_exports([path], assume_tz=assume_tz, policy=policy)
    return frame, bad


def _text_chunks(path: Path) -> Iterator[tuple[int, list[str], bool, bool]]:
    """The file's lines a block at a time, ``(first line's number, lines, clean, cut)``:
    a gzipped file decompressed as it is read (a bomb costs time, not memory; a line
    longer than ``MAX_LINE_BYTES`` comes alone, ``cut``: ``line_blocks``). Lines end at
    ``"\n"`` only (not at a U+2028 in a string) and lose a final ``"\r"``; blocks break
    between lines, so no UTF-8 sequence is cut. Bytes that are not UTF-8 are kept as
    surrogates, so that only their lines are rejected; ``clean``: the block has none."""
    opener: Callable[..., Any] = gzip.open if path.name.lower().endswith(".gz") else open
    first_line, start_byte, checked = 1, 0, False
    with opener(path, "rb") as handle:
        for block, cut in line_blocks(handle, _TEXT_BLOCK_BYTES):
            if start_byte == 0:
                _refuse_utf16(block[:4], path)
            try:
                text, clean = block.decode("utf-8"), True
            except UnicodeDecodeError as exc:
                text, clean = block.decode("utf-8", errors="surrogateescape"), False
                if not checked:
                    _refuse_binary(path, opener, exc, start_byte + exc.start)
                    checked = True
            # A byte-order mark (Windows editors write one) is no part of a record: at the
            # file's start, or a line's (files joined with cat; JSON text holds no raw line
            # break, so one there starts a file's text).
            text = text.removeprefix(_BOM).replace("\n" + _BOM, "\n")
            lines = [text] if cut else [line.removesuffix("\r") for line in text.split("\n")]
            if block.endswith(b"\n"):
                lines.pop()  # the empty text after the block's last line break
            yield first_line, lines, clean, cut
            first_line += len(lines)
            start_byte += len(block)


def _refuse_binary(
    path: Path, opener: Callable[..., Any], exc: UnicodeDecodeError, at_byte: int
) -> None:
    """A file that is mostly not UTF-8 is a binary file, not a log: one error.

    Counted over the whole file (a second pass, only for a file with a byte that is
    not UTF-8), before any of it is used.
    """
    undecoded = characters = 0
    with opener(path, "rb") as handle:
        for block, _ in line_blocks(handle, _TEXT_BLOCK_BYTES):
            text = block.decode("utf-8", errors="surrogateescape")
            undecoded += len(_UNDECODED.findall(text))
            characters += len(text)
    if undecoded * 2 > characters:
        reason = f"not UTF-8 text ({exc.reason} at byte {at_byte})"
        raise UnreadableFileError(reason, path=path) from exc


def _refuse_utf16(start: bytes, path: Path) -> None:
    """A UTF-16 or UTF-32 file (its byte-order mark says so) is one error, not N rejections."""
    if start.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        raise UnreadableFileError(
            "UTF-16 or UTF-32 text, not UTF-8", path=path, hint="save the file as UTF-8"
        )


def _read_parquet(
    path: Path,
    chunk_rows: int | None,
    row_groups: Sequence[int] | None = None,
    *,
    use_threads: bool = True,
) -> Iterator[Any]:
    """Arrow tables of the file's records, each with its ``line`` column (row numbers)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Columns with few distinct values come out of Arrow as dictionaries (categoricals
    # in pandas) directly, without a Python string per row.
    names = parquet_file(path).schema_arrow.names
    refuse_repeated_columns(names, path)
    dictionary = [c for c in CATEGORY_COLUMNS if c in names]
    # Extra columns are ignored: not read (a repeated name is an error, said by the
    # general path, so then everything is read).
    wanted = {*EVENT_COLUMNS, *PROVENANCE_COLUMNS}
    columns = [c for c in names if c in wanted] if len(set(names)) == len(names) else None

    def numbered(table: Any, first: int) -> Any:
        line = pa.array(np.arange(first, first + table.num_rows, dtype="int64"))
        if "line" in table.column_names:  # a column of that name is replaced, in place
            return table.set_column(table.column_names.index("line"), "line", line)
        return table.append_column("line", line)

    if chunk_rows is None and row_groups is None:
        yield numbered(
            pq.read_table(
                path, columns=columns, read_dictionary=dictionary, use_threads=use_threads
            ),
            1,
        )
        return
    parquet = pq.ParquetFile(path, read_dictionary=dictionary)
    metadata = parquet.metadata
    groups = list(range(metadata.num_row_groups) if row_groups is None else row_groups)
    if not groups:
        return
    # Lines are numbered from the start of the file, whichever row groups are read.
    first_row = 1 + sum(metadata.row_group(g).num_rows for g in range(groups[0]))
    batches = parquet.iter_batches(
        batch_size=chunk_rows or 1_000_000,
        row_groups=groups,
        columns=columns,
        use_threads=use_threads,
    )
    for batch in batches:
        yield numbered(pa.Table.from_batches([batch]), first_row)
        first_row += batch.num_rows


def _read_csv(path: Path, chunk_rows: int | None) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """CSV records with their line (1 is the header), and the rows that do not fit it.

    The C parser reads the file; a row with more fields than the header stops it
    (pandas would otherwise drop the extra fields of a first row, or take its first
    fields as an index and shift every column). Then, only then, the rest of the
    file is read row by row to reject those rows with their line.
    """
    options: dict[str, Any] = {
        "dtype": str,
        "keep_default_na": False,
        "na_values": [""],
        "index_col": False,
        "encoding": "utf-8-sig",  # a byte-order mark is not part of the first name
        "compression": "gzip" if path.name.lower().endswith(".gz") else None,
    }
    refuse_repeated_csv_columns(path)
    done = 0  # data rows yielded so far
    # Always in chunks: a gzipped file that expands a thousandfold costs time, not memory.
    chunk_rows = chunk_rows or _CSV_CHUNK_ROWS
    # The line each record starts on: a multi-line message or a blank line before a
    # record would otherwise shift its number (pandas counts records, not lines).
    lines = record_lines(path)
    if lines.broken:  # a quote pandas would read across lines: row by row, that line rejected
        yield from _read_csv_by_row(path, chunk_rows, skip=0)
        return
    try:
        try:
            reader = _strict_csv(lambda: pd.read_csv(path, chunksize=chunk_rows, **options))
        except pd.errors.EmptyDataError:
            # No header at all (0 bytes, a byte-order mark, blank lines): a file with no
            # record, as an empty JSON Lines file is, not pandas' "No columns to parse".
            yield _no_records(), empty_rejected()
            return
        with reader:
            while True:
                try:
                    frame = _strict_csv(lambda: next(reader))
                except StopIteration:
                    return
                yield frame.assign(line=lines.of(done, len(frame))), empty_rejected()
                done += len(frame)
    except (pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError):
        pass  # a long row, or bytes that are not UTF-8: find those rows
    yield from _read_csv_by_row(path, chunk_rows, skip=done)


def _strict_csv(read: Callable[[], Any]) -> Any:
    """``read()`` with pandas' "header and data lengths differ" warning raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return read()


def _read_csv_by_row(
    path: Path, chunk_rows: int | None, *, skip: int
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Slow path, only for a CSV file with a row longer than its header (see ``_read_csv``)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as raw:
        _refuse_utf16(raw.read(4), path)
    with opener(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        # Records as pandas reads them, with the lines they start on; a quote never closed
        # makes its line one rejected record, and the lines after it are read again.
        records = csv_records(handle)
        first = next(records, None)
        header = [] if first is None else first.fields
        header_line = 1 if first is None else first.line
        if first is not None and first.problem is not None:
            raise UnreadableFileError(
                f"the header is {first.problem}", path=path, line=header_line
            ) from None
        not_text = next((name for name in header if _UNDECODED.search(name)), None)
        if not_text is not None:  # no record can be read without its columns' names
            reason = "the header holds a column name that is not UTF-8 text"
            value, hint = _replace_undecoded(not_text), "save the file as UTF-8"
            raise UnreadableFileError(reason, path=path, line=header_line, value=value, hint=hint)
        missing = sorted(_REQUIRED_COLUMNS - set(header))
        if missing:  # rows longer than a header that is not one (a comment line)
            raise UnreadableFileError(
                f"not an event log: no {', '.join(missing)} column",
                path=path,
                hint="every record needs job_id, ts and event (see the event log format)",
            )
        width = len(header)
        at_job = header.index("job_id")
        rows: list[list[str | None]] = []
        lines: list[int] = []
        bad: list[dict[str, Any]] = []
        for count, record in enumerate(records, start=1):
            if count <= skip:
                continue  # read by pandas already
            number, row = record.line, record.fields
            # A record's job, when its fields say it: a record that cannot be read makes
            # its own job invalid (never its job billed without it).
            job_id = (row[at_job].strip() or None) if at_job < len(row) else None
            if record.open_quote:
                job_id = job_before_open_quote(row, at_job)
            if record.problem is not None:
                bad.append(_rejection(path, number, job_id, None, None, record.problem))
                continue
            undecoded = any(_UNDECODED.search(cell) for cell in row)
            if len(row) > width or undecoded:
                if undecoded:
                    row = [_replace_undecoded(cell) for cell in row]
                    job_id = (row[at_job].strip() or None) if at_job < len(row) else None
                reason = (
                    "not UTF-8 text" if undecoded else f"{len(row)} fields, the header has {width}"
                )
                bad.append(_rejection(path, number, job_id, None, ",".join(row), reason))
            else:
                rows.append([c if c != "" else None for c in row] + [None] * (width - len(row)))
                lines.append(number)
            if chunk_rows is not None and len(rows) + len(bad) >= chunk_rows:
                yield csv_frame(rows, header, lines), pd.DataFrame(bad, columns=_REJECTED)
                rows, lines, bad = [], [], []
        if rows or bad or chunk_rows is None:
            yield csv_frame(rows, header, lines), pd.DataFrame(bad, columns=_REJECTED)


def _replace_undecoded(text: str) -> str:
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _read_jsonl(path: Path) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """JSON Lines records with their line, a block of lines at a time."""
    found = False
    for first_line, lines, clean, cut in _text_chunks(path):
        if cut:  # a line no record is as long as: its start names its job
            found, reason = True, f"a line of more than {MAX_LINE_BYTES // 2**20} MiB: not read"
            shown = _replace_undecoded(lines[0][:VALUE_EXCERPT])
            bad = [_rejection(path, first_line, _job_id_in(lines[0]), None, shown, reason)]
            yield _no_records(), pd.DataFrame(bad, columns=list(REJECTED_COLUMNS))
            continue
        numbers = [first_line + i for i, text in enumerate(lines) if text.strip()]
        if not numbers:
            continue
        found = True
        texts = [lines[number - first_line] for number in numbers]
        yield _jsonl_records(path, texts, numbers, clean)
    if not found:
        yield _no_records(), empty_rejected()


def _no_records() -> pd.DataFrame:
    return pd.DataFrame({"line": pd.Series([], dtype="int64")})


def _jsonl_records(
    path: Path, texts: list[str], numbers: list[int], clean: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    joined = "\n".join(texts)
    # Escapes of surrogates are rare and may be lone ones (no text: the line is rejected,
    # not the file), so such blocks are read line by line.
    if clean and not SURROGATE_ESCAPE.search(joined):
        try:
            frame = pd.read_json(io.StringIO(joined), lines=True, dtype=False)
            if len(frame) == len(numbers):
                return frame.assign(line=numbers), empty_rejected()
        except (ValueError, TypeError):  # a line that is not an object (42, [1]): by line
            pass
    return _read_jsonl_by_line(path, texts, numbers)


def _read_jsonl_by_line(
    path: Path, texts: list[str], numbers: list[int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Slow path, only for lines that do not parse as a whole: find the bad lines."""
    records: list[dict[str, Any]] = []
    good: list[int] = []
    bad: list[dict[str, Any]] = []
    for text, number in zip(texts, numbers, strict=True):
        if _UNDECODED.search(text):
            shown = _replace_undecoded(text)
            reason = "not UTF-8 text"
            bad.append(_rejection(path, number, _job_id_in(shown), None, shown, reason))
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            reason = f"not JSON: {exc.msg}"
            bad.append(_rejection(path, number, _job_id_in(text), None, text, reason))
            continue
        except RecursionError:
            reason = "not JSON: nested too deep"
            bad.append(_rejection(path, number, _job_id_in(text), None, text, reason))
            continue
        if not isinstance(record, dict):
            bad.append(_rejection(path, number, None, None, text, "not a JSON object"))
            continue
        lone = lone_surrogate(record) if SURROGATE_ESCAPE.search(text) else None
        if lone:
            reason = f"not valid text: a lone surrogate escape {lone}"
            bad.append(_rejection(path, number, _job_id_in(text), None, text, reason))
            continue
        records.append(record)
        good.append(number)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    return frame.assign(line=good), pd.DataFrame(bad, columns=list(REJECTED_COLUMNS))


def _job_id_in(text: str) -> str | None:
    """The job id of a line that does not parse, when its text still shows it.

    A truncated record of a job must make that job invalid (its events are not all
    known), not vanish as a record of no job.
    """
    found = _JOB_ID_IN_TEXT.search(text)
    if found is None:
        return None
    try:
        job_id = json.loads(f'"{found.group(1)}"')
    except json.JSONDecodeError:
        return None
    if not isinstance(job_id, str):
        return None
    # A lone surrogate is shown as U+FFFD, as a byte that is not UTF-8 is: the job is
    # named (and made invalid) in text every output can hold.
    return without_surrogates(job_id).strip() or None


# --- validation and coercion ----------------------------------------------------------

_REJECTED = list(REJECTED_COLUMNS)


def _rejection(
    path: Path | str, line: int, job_id: str | None, column: str | None, value: Any, reason: str
) -> dict[str, Any]:
    return {
        "source": str(path),
        "line": line,
        "job_id": job_id,
        "column": column,
        "value": None if value is None else excerpt(str(value)),
        "reason": reason,
    }


def normalize_records(
    raw: pd.DataFrame, *, source: str, assume_tz: str | None, policy: Policy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coerce raw records to the canonical dtypes; split off the records that fail.

    ``raw`` holds any subset of the canonical columns (extra columns are ignored)
    and ``line`` (and ``source``, else ``source`` names them all). Returns
    ``(events, rejected)``.
    """
    check_zone(assume_tz)  # every entry (frames, engines) names a bad zone, not pandas
    repeated = raw.columns[raw.columns.duplicated()]
    if len(repeated):
        raise UnreadableFileError(
            "a column appears twice", path=source, value=excerpt(str(repeated[0]))
        )
    raw = raw.reset_index(drop=True)  # a CSV with a short first row has another index
    n = len(raw)
    checks = _Checks(raw, n)
    # A "source" column (records gathered from several files by an engine) wins.
    sources = (
        raw["source"].astype("string")
        if "source" in raw
        else pd.Series(source, index=raw.index, dtype="string")
    )
    # A column of pandas text (JSON Lines, CSV) holds names only: the others are judged.
    not_names = {
        col: not_a_name(raw[col])
        for col in STRING_COLUMNS
        if col in raw and not isinstance(raw[col].dtype, pd.StringDtype)
    }
    for col, problems in not_names.items():
        checks.fail_each(problems, col, raw[col])
    text = {col: _as_text(raw[col]) if col in raw else _na_strings(n) for col in STRING_COLUMNS}

    job_id = text["job_id"]
    if "job_id" in not_names:
        # A job id that is not a name ties its record to no job ("{'a': 1}" is none).
        job_id = job_id.mask(not_names["job_id"].notna())
        text["job_id"] = job_id
    checks.fail(job_id.isna(), "job_id", None, "missing job_id")

    event = text["event"]
    checks.fail(event.isna(), "event", None, "missing event")
    checks.fail(
        event.notna() & ~event.isin(EVENTS),
        "event",
        event,
        f"unknown event (known: {', '.join(EVENTS)})",
    )

    ts, ts_reason = _parse_timestamps(raw["ts"] if "ts" in raw else _na_strings(n), assume_tz)
    checks.fail_each(ts_reason, "ts", raw.get("ts"))

    aliases = policy.phases.aliases
    phase = text["phase"].astype("string").replace(aliases) if aliases else text["phase"]
    needs_phase = event.isin(["phase_start", "phase_end"])
    checks.fail(
        needs_phase & phase.notna() & ~phase.isin(policy.phases.known),
        "phase",
        text["phase"],
        f"unknown phase (known: {', '.join(policy.phases.known)}; "
        "map other names with [phases.aliases] in a policy)",
    )
    text["phase"] = phase

    numbers: dict[str, pd.Series] = {}
    for col in INT_COLUMNS:
        numbers[col] = _parse_integers(raw.get(col), n, checks, col)
    for col in FLOAT_COLUMNS:
        numbers[col] = _parse_floats(raw.get(col), n, checks, col)
    flags = {col: _parse_bools(raw.get(col), n, checks, col) for col in BOOL_COLUMNS}

    for name, required in REQUIRED_BY_EVENT.items():
        for col in required:
            value = text[col] if col in text else numbers[col]
            checks.fail((event == name) & value.isna(), col, None, f"{name} needs {col}")

    inputs, cached = numbers["input_tokens"], numbers["cached_input_tokens"]
    usage = event == "grader_usage"
    numbers["cached_input_tokens"] = cached.mask(usage & cached.isna(), 0)
    checks.fail(
        (cached > inputs).fillna(False),
        "cached_input_tokens",
        cached,
        "cached_input_tokens exceeds input_tokens (input includes cached, R9)",
    )

    events = pd.DataFrame(
        {
            **{col: text[col] for col in STRING_COLUMNS},
            "ts": ts,
            **numbers,
            **flags,
            "source": sources,
            "line": raw["line"].astype("int64") if "line" in raw else np.arange(1, n + 1),
        }
    )
    events = events[[*EVENT_COLUMNS, *PROVENANCE_COLUMNS]]
    bad = checks.reason.notna()
    rejected = pd.DataFrame(
        {
            "source": sources[bad],
            "line": events["line"][bad],
            "job_id": job_id[bad],
            "column": checks.column[bad],
            "value": checks.value[bad],
            "reason": checks.reason[bad],
        }
    )
    # Most chunks have no bad record: no filtering copy then.
    good = events[~bad] if bad.any() else events
    good = good.astype({"ts": "int64", **dict.fromkeys(CATEGORY_COLUMNS, "category")})
    if bad.any():
        # A rejected record's unknown event or phase must not stay on as a category.
        good = good.assign(**{c: good[c].cat.remove_unused_categories() for c in CATEGORY_COLUMNS})
    return good.reset_index(drop=True), rejected.reset_index(drop=True)


class _Checks:
    """The first failing check of each record: its column, raw value and reason."""

    def __init__(self, raw: pd.DataFrame, n: int) -> None:
        self.raw = raw
        self.reason = _na_strings(n, raw.index)
        self.column = _na_strings(n, raw.index)
        self.value = _na_strings(n, raw.index)

    def fail(self, mask: pd.Series, column: str, value: pd.Series | None, reason: str) -> None:
        """Record ``reason`` for the rows of ``mask`` that have no reason yet."""
        if mask.dtype != bool:  # nullable: NA is no failure
            mask = mask.fillna(False).astype(bool)
        if not mask.to_numpy().any():
            return
        self.fail_each(pd.Series(reason, index=mask.index[mask], dtype="string"), column, value)

    def fail_each(self, reasons: pd.Series, column: str, value: pd.Series | None) -> None:
        """Record per-row reasons (NA = no failure) where no reason is recorded yet."""
        reasons = reasons.dropna()
        if reasons.empty:
            return
        new = reasons.index[self.reason.loc[reasons.index].isna().to_numpy()]
        if new.empty:
            return
        self.reason.loc[new] = reasons.loc[new]
        self.column.loc[new] = column
        if value is None:
            value = self.raw.get(column, None)
        if value is not None:
            shown = _shown(value.loc[new])
            # A rejected value is kept as a short excerpt: it is shown on screen.
            long = shown.str.len() > VALUE_EXCERPT
            if long.any():
                cut = shown.str.slice(0, VALUE_EXCERPT - 1) + "…"
                shown = shown.mask(long.fillna(False), cut)
            self.value.loc[new] = shown


def _shown(values: pd.Series) -> pd.Series:
    """Rejected values as text, as the file wrote them as nearly as can be told: a JSON
    Lines column of numbers with gaps is read as floats, where ``-3`` would show ``-3.0``."""
    if values.dtype.kind == "f":  # whole ones as digits (_cell_text), huge ones as read
        values = values.astype(object).mask(values.abs() >= 2**53, values.astype(str))
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        try:
            return _as_text(values)
        except (NotImplementedError, OverflowError, ValueError):
            # A Parquet time beyond the years Python can write (33658): as its count.
            counts = values.astype("int64").astype(str) + f" {values.dt.unit} since 1970-01-01"
            return counts.astype("string").mask(values.isna())
    return _as_text(values)


def _na_strings(n: int, index: pd.Index | None = None) -> pd.Series:
    return pd.Series(pd.NA, index=index if index is not None else pd.RangeIndex(n), dtype="string")


def _as_text(values: pd.Series) -> pd.Series:
    """Any column → strings with NA for missing and blank cells."""
    # Numbers with gaps come as floats: 7.0 is the name "7" (as without gaps), never "7.0".
    if values.dtype == object or values.dtype.kind == "f":
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind == "empty":
            return pd.Series(pd.NA, index=values.index, dtype="string")
        if kind != "string":  # numbers or mixed cells from JSON: 5.0 → "5"
            values = values.map(_cell_text, na_action="ignore")
        values = values.astype("string")
    elif isinstance(values.dtype, pd.CategoricalDtype):
        raw_categories = values.cat.categories
        if raw_categories.dtype == object and pd.api.types.infer_dtype(raw_categories) != "string":
            # Binary (bytes) categories from Parquet: decoded, never str(b"...").
            values = values.cat.rename_categories(
                pd.Index([_cell_text(c) for c in raw_categories], dtype=object)
            )
        categories = pd.Index(values.cat.categories.astype(str), dtype=object)
        stripped = categories.str.strip()
        if stripped.is_unique and not (stripped == "").any():
            # Strip the few categories, not every row.
            return values.cat.rename_categories(stripped)
        values = values.astype("string")
    elif not pd.api.types.is_string_dtype(values.dtype):
        values = values.astype("string")
    # Already text (pandas' own string dtypes): strip it where it is, no conversion.
    text = values.str.strip()
    blank = text == ""
    return text.mask(blank) if blank.any() else text


def _cell_text(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def _parse_timestamps(raw: pd.Series, assume_tz: str | None) -> tuple[pd.Series, pd.Series]:
    """Timestamps → int64 UTC nanoseconds (as Float64 where invalid) and a reason per bad one."""
    n = len(raw)
    index = raw.index
    reasons = _na_strings(n, index)
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        ns, out = _datetime_ns(raw)
        return ns, reasons.mask(raw.isna(), "missing timestamp").mask(out, _TS_RANGE)
    if raw.dtype.kind == "M":
        if assume_tz is None:
            return pd.Series(pd.NA, index=index, dtype="Int64"), reasons.mask(
                raw.notna(), "timestamp without an offset; name its zone with --assume-tz"
            ).mask(raw.isna(), "missing timestamp")
        local = raw.dt.tz_localize(assume_tz, ambiguous="NaT", nonexistent="NaT")
        ns, out = _datetime_ns(local)
        reasons = reasons.mask(raw.isna(), "missing timestamp")
        reasons = reasons.mask(raw.notna() & local.isna(), f"not a valid time in {assume_tz}")
        return ns, reasons.mask(out, _TS_RANGE)

    result = pd.Series(pd.NA, index=index, dtype="Int64")
    if raw.dtype.kind in "iuf":
        return _epoch_numbers(raw, result, reasons)
    text = _as_text(raw)
    reasons = reasons.mask(text.isna(), "missing timestamp")
    is_epoch = text.str.fullmatch(_EPOCH_PATTERN).fillna(False)
    if is_epoch.any():
        result, reasons = _epoch_strings(text, is_epoch, result, reasons)
    iso = text.notna() & ~is_epoch
    has_offset = text.str.contains(_OFFSET_PATTERN, regex=True).fillna(False)
    # A date alone ("2025-06-02", a Parquet date32) has no time of day (nor an offset,
    # which needs one): rejected, even with --assume-tz, which names a zone, not a time
    # (midnight would invent a bill). Looked for among the few text times with no offset.
    unzoned = iso & ~has_offset
    if unzoned.any():
        dated_only = unzoned & text[unzoned].str.fullmatch(_DATE_ONLY_PATTERN).reindex(
            text.index, fill_value=False
        ).fillna(False).astype(bool)
        reasons = reasons.mask(dated_only, "a date without a time of day")
        iso &= ~dated_only
    aware = iso & has_offset
    if aware.any():
        parsed = parse_iso(text[aware], utc=True)
        ns, out = _datetime_ns(parsed)
        result = result.mask(aware, ns)
        reasons = reasons.mask(aware & parsed.reindex(index).isna(), "not an ISO 8601 timestamp")
        reasons = reasons.mask(out.reindex(index, fill_value=False), _TS_RANGE)
        no_time = aware & result.isna()
        if no_time.any():  # the year is read only where a better reason may be needed
            reasons = reasons.mask(no_time & _year_out_of_range(text), _TS_RANGE)
    naive = iso & ~has_offset
    if naive.any():
        parsed = parse_iso(text[naive], utc=False)
        unparsed = naive & parsed.reindex(text.index).isna()
        reasons = reasons.mask(unparsed, "not an ISO 8601 timestamp")
        if unparsed.any():
            reasons = reasons.mask(unparsed & _year_out_of_range(text), _TS_RANGE)
        if assume_tz is None:
            reasons = reasons.mask(
                naive & ~unparsed, "timestamp without an offset; name its zone with --assume-tz"
            )
        else:
            local = parsed.dt.tz_localize(assume_tz, ambiguous="NaT", nonexistent="NaT")
            ns, out = _datetime_ns(local)
            result = result.mask(naive, ns)
            failed = naive & ~unparsed & local.reindex(index).isna()
            reasons = reasons.mask(
                failed,
                f"a local time that does not exist in {assume_tz} (the clocks went forward"
                " over it)",
            )
            if failed.any():
                # A time the clocks went back over happens twice: which one is unknown
                # (not invalid: the words say which it is).
                twice = parsed.dt.tz_localize(
                    assume_tz, ambiguous=np.ones(len(parsed), dtype=bool), nonexistent="NaT"
                )
                reasons = reasons.mask(
                    failed & twice.reindex(index).notna(),
                    f"an ambiguous local time in {assume_tz} (it happens twice: the clocks "
                    "went back); give its offset",
                )
            reasons = reasons.mask(out.reindex(index, fill_value=False), _TS_RANGE)
    return result, reasons


def _year_out_of_range(text: pd.Series) -> pd.Series:
    """Text that starts with a year out of range (a better reason than "not ISO")."""
    year = pd.to_numeric(text.str.extract(r"^\+?(\d{4,})-", expand=False), errors="coerce")
    return ((year < 1970) | (year > 2261)).fillna(False).astype(bool)


def _datetime_ns(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """UTC nanoseconds (Int64, NA where missing or out of range) and the out-of-range mask.

    pandas keeps a parsed timestamp at the unit it needs (year 1 or 9999 fits in
    microseconds); events are held from 1970 (``_MIN_NS``) to 2262-04-11.
    """
    utc = values.dt.tz_convert("UTC")
    low = pd.Timestamp(_MIN_NS, unit="ns", tz="UTC")
    high = pd.Timestamp(_MAX_NS, unit="ns", tz="UTC")
    out = ((utc < low) | (utc > high)).fillna(False).astype(bool)
    if out.any():
        utc = utc.mask(out)
    ns: pd.Series = utc.dt.as_unit("ns").astype("int64").astype("Int64").mask(utc.isna())
    return ns, out


def _epoch_numbers(
    raw: pd.Series, result: pd.Series, reasons: pd.Series
) -> tuple[pd.Series, pd.Series]:
    values = raw.astype("float64")
    in_range = (values >= _MIN_EPOCH_SECONDS) & (values <= _MAX_EPOCH_SECONDS)
    # Epoch seconds as binary floats: keep microseconds, the resolution they can carry; to
    # nanoseconds in integers (a float of nanoseconds is past 2**53: off by up to 128 ns).
    micros = (values.where(in_range) * 1_000_000).round()
    result = micros.astype("Int64") * 1000
    reasons = reasons.mask(values.isna(), "missing timestamp")
    reasons = reasons.mask(values.notna() & ~in_range, _EPOCH_RANGE)
    return result, reasons


def _epoch_strings(
    text: pd.Series, is_epoch: pd.Series, result: pd.Series, reasons: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """Epoch seconds written as text, converted exactly (no binary float)."""
    epoch = text[is_epoch]
    parts = epoch.str.split(".", n=1, expand=True, regex=False)
    # More than 11 digits cannot be a time in range, and may not fit 64 bits: not parsed.
    fits = parts[0].str.lstrip("-").str.lstrip("0").str.len() <= 11
    whole = parts[0].where(fits, "0").astype("int64")
    fraction = parts[1] if parts.shape[1] > 1 else pd.Series(pd.NA, index=epoch.index)
    nanos = fraction.fillna("0").astype("string").str.slice(0, 9).str.ljust(9, "0").astype("int64")
    negative = epoch.str.startswith("-")
    in_range = fits & (whole >= _MIN_EPOCH_SECONDS) & (whole < _MAX_EPOCH_SECONDS)
    in_range &= ~(negative & (nanos > 0))  # "-0.5": half a second before 1970
    ns = whole.where(in_range, 0) * 1_000_000_000 + nanos.where(~negative, -nanos)
    result = result.mask(is_epoch, ns.where(in_range).astype("Int64"))
    reasons = reasons.mask(is_epoch & ~in_range.reindex(text.index, fill_value=True), _EPOCH_RANGE)
    return result, reasons


def _parse_integers(raw: pd.Series | None, n: int, checks: _Checks, column: str) -> pd.Series:
    if raw is None:
        return pd.Series(pd.NA, index=checks.raw.index, dtype="Int64")
    too_large = f"{column} is too large (more than {MAX_COUNT})"
    if raw.dtype.kind in "iu" or str(raw.dtype) in {"Int64", "Int32", "UInt64", "int64[pyarrow]"}:
        # Compared before the cast: a uint64 beyond int64 must not wrap to a negative.
        large = (raw > MAX_COUNT).fillna(False).astype(bool)
        checks.fail(large, column, raw, too_large)
        values = raw.where(~large).astype("Int64") if large.any() else raw.astype("Int64")
    elif raw.dtype == np.float64:
        return _integers_from_floats(raw, checks, column, too_large)
    else:
        shown = _as_text(raw)
        numeric = pd.to_numeric(shown, errors="coerce")
        numeric = pd.Series(numeric, index=raw.index).astype("Float64")
        finite = numeric.isna() | numeric.abs().le(float(MAX_COUNT))
        integral = numeric.isna() | (numeric == numeric.round())
        checks.fail(
            (shown.notna() & (numeric.isna() | ~integral)).fillna(True),
            column,
            raw,
            f"{column} is not an integer",
        )
        # 1e30 tokens is not a count: rejected as such, not wrapped to a negative number.
        checks.fail(~finite.fillna(True), column, raw, too_large)
        values = numeric.where(integral & finite).round().astype("Int64")
    checks.fail((values < 0).fillna(False), column, raw, f"{column} is negative")
    return values


def _integers_from_floats(raw: pd.Series, checks: _Checks, column: str, big: str) -> pd.Series:
    """``_parse_integers`` of float64 numbers (JSON Lines with gaps), in numpy: the checks,
    in order, of the text path (a float64's repr parses back to it), NaN missing."""
    numbers = raw.to_numpy(dtype="float64")
    missing = np.isnan(numbers)
    integral = missing | (numbers == np.round(numbers))
    finite = missing | (np.abs(numbers) <= float(MAX_COUNT))
    index = raw.index
    kept = integral & finite & ~missing
    counts = np.where(kept, numbers, 0).astype("int64")
    # 1e30 tokens is not a count: rejected as such, not wrapped to a negative number.
    for failing, reason in (
        (~integral, f"{column} is not an integer"),
        (~finite, big),
        (kept & (counts < 0), f"{column} is negative"),
    ):
        if failing.any():  # the usual case: none, and no Series to build
            checks.fail(pd.Series(failing, index=index), column, raw, reason)
    return pd.Series(pd.arrays.IntegerArray(counts, ~kept), index=index, name=raw.name)


def _parse_floats(raw: pd.Series | None, n: int, checks: _Checks, column: str) -> pd.Series:
    if raw is None:
        return pd.Series(pd.NA, index=checks.raw.index, dtype="Float64")
    if raw.dtype.kind in "iuf" or str(raw.dtype) in {"Float64", "Int64"}:
        numeric = raw.astype("Float64")
    else:
        numeric = pd.Series(pd.to_numeric(_as_text(raw), errors="coerce"), index=raw.index)
        numeric = numeric.astype("Float64")
        checks.fail(
            _as_text(raw).notna() & numeric.isna(), column, raw, f"{column} is not a number"
        )
    infinite = numeric.notna() & ~np.isfinite(numeric.astype("float64").fillna(0.0))
    checks.fail(infinite, column, raw, f"{column} is not a finite number")
    checks.fail((numeric < 0).fillna(False), column, raw, f"{column} is negative")
    return numeric.mask(infinite)


def _parse_bools(raw: pd.Series | None, n: int, checks: _Checks, column: str) -> pd.Series:
    if raw is None:
        return pd.Series(pd.NA, index=checks.raw.index, dtype="boolean")
    if raw.dtype.kind == "b" or str(raw.dtype) == "boolean":
        return raw.astype("boolean")
    if raw.dtype == object and pd.api.types.infer_dtype(raw, skipna=True) == "boolean":
        # JSON true / false with gaps: what the text path below reads them as.
        return raw.astype("boolean")
    text = _as_text(raw).str.lower()
    values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    values = values.mask(text.isin(_TRUE).fillna(False), True)
    values = values.mask(text.isin(_FALSE).fillna(False), False)
    checks.fail(text.notna() & values.isna(), column, raw, f"{column} is not true or false")
    return values


def problems_from_rejections(rejected: pd.DataFrame) -> pd.DataFrame:
    """A job with a rejected record cannot be billed from what is left of it."""
    tied = rejected[rejected["job_id"].notna()]
    # R3: the value itself, as validate shows it (that of one field, not a whole line).
    reason = tied["reason"].astype(str)
    shown = tied["column"].notna() & ~reason.str.contains("(value ", regex=False)
    value = tied["value"].astype("string").where(shown)
    cut = value.where(value.str.len() <= EXCERPT, value.str[: EXCERPT - 1] + "…")
    problem = (
        "record rejected at " + tied["source"].astype(str) + ":" + tied["line"].astype(str)
        + ": " + reason + (" (value '" + cut + "')").fillna("")
    )  # fmt: skip
    return pd.DataFrame(
        {"job_id": tied["job_id"].astype("string"), "problem": problem.astype("string")}
    )


def empty_events() -> pd.DataFrame:
    policy = load_policy(None)
    frame, _ = normalize_records(
        pd.DataFrame({"line": pd.Series([], dtype="int64")}),
        source="",
        assume_tz=None,
        policy=policy,
    )
    return frame
