"""CSV rows read one by one (``csv_lines.csv_records``): the frame of the slow path of
``readers`` for a file pandas cannot read whole (a row longer than its header, bytes that
are not UTF-8, a quote never closed), and the records a stray quote swallowed."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rftcost.errors import UnreadableFileError, excerpt
from rftcost.events.schema import EVENT_COLUMNS, REJECTED_COLUMNS, refuse_repeated_columns

__all__ = [
    "csv_frame",
    "job_before_open_quote",
    "refuse_repeated_csv_columns",
    "set_aside_swallowed",
    "without_repeated_headers",
]


def csv_frame(rows: list[list[str | None]], header: list[str], lines: list[int]) -> pd.DataFrame:
    """Rows read as text, under the header's names, with their ``line`` numbers."""
    # A repeated name is renamed as pandas' own CSV parser does ("job_id.1"): the same
    # columns whichever path read the file.
    seen: dict[str, int] = {}
    names = []
    for name in header:
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(name if count == 0 else f"{name}.{count}")
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    return frame.assign(line=np.asarray(lines, dtype="int64"))


def set_aside_swallowed(
    path: Any, frame: pd.DataFrame, rejected: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` without the records whose quoted text holds lines shaped as records (as
    many separators as the header), those added to ``rejected``.

    A quote never closed, then closed by a later one, makes one field of the lines
    between: their records vanish into a message, and a job bills for less without a
    word. A message of several lines is fine; one whose lines are records is not, nor
    is a job id of several lines (a quote opened before the id, closed on a later line).
    Such a record's job is the one its first line names (the text before its first
    separator): it is that job's record that cannot be read.
    """
    separators = len(frame.columns) - 2  # the header's fields, less one ("line" is ours)
    if frame.empty or separators < 1:
        return frame, rejected
    record_line = "\n(?:[^,\n]*,){" + str(separators) + "}"
    swallowed = np.zeros(len(frame), dtype=bool)
    records_in = np.zeros(len(frame), dtype=bool)  # lines shaped as records, not an id alone
    found: pd.Series | None = None
    for column in frame.columns:
        values = frame[column]
        if column == "line" or not pd.api.types.is_string_dtype(values.dtype):
            continue
        several = values.str.contains("\n", regex=False, na=False)
        if not several.any():  # the usual file: one cheap test per column
            continue
        shaped = (
            several
            if column == "job_id"
            else several & values.str.contains(record_line, regex=True, na=False)
        ).to_numpy(dtype=bool)
        if found is None:
            found = pd.Series(pd.NA, index=frame.index, dtype="object")
        found = found.mask(shaped & ~swallowed, values)
        records_in |= shaped & values.str.contains(record_line, regex=True, na=False).to_numpy(
            dtype=bool
        )
        swallowed |= shaped
    if not swallowed.any():
        return frame, rejected
    assert found is not None  # some column's values were kept above
    bad = frame[swallowed]
    text = found[swallowed].astype(str)
    job_id = (
        bad["job_id"].astype("string").str.split("\n").str[0].str.split(",").str[0].str.strip()
        if "job_id" in bad
        else None
    )
    spans = text.str.count("\n").to_numpy()
    more = pd.DataFrame(
        {
            "source": str(path),
            "line": bad["line"].to_numpy(dtype="int64"),
            "job_id": None if job_id is None else job_id.to_numpy(dtype=object),
            "column": None,
            "value": [excerpt(value) for value in text],
            "reason": [
                f"a quoted field runs over {lines} more line(s) shaped as records (a quote "
                "never closed?): their records would be lost in it"
                if shaped_as_records
                else f"a job id over {lines + 1} lines (a quote never closed?)"
                for lines, shaped_as_records in zip(spans, records_in[swallowed], strict=True)
            ],
        },
        columns=list(REJECTED_COLUMNS),
    )
    return frame[~swallowed], pd.concat([rejected, more], ignore_index=True)


def refuse_repeated_csv_columns(path: Path) -> None:
    """``refuse_repeated_columns`` of the file's header (read alone: pandas would keep both
    copies, ``data_sharing`` and ``data_sharing.1``, and the first would be read alone)."""
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, EOFError, csv.Error):
        return  # the reading proper says what is wrong with the file
    refuse_repeated_columns([name.strip() for name in header], path, line=1)


def job_before_open_quote(row: list[str], at_job: int) -> str | None:
    """The job of a line whose last field opens a quote never closed: a field before it
    stands; the quote's own field, if it is the job id's, is the id up to the next
    separator (``"jv5,2025-…`` is jv5's); a job id after it was swallowed: unknown."""
    if at_job < len(row) - 1:
        return row[at_job].strip() or None
    if at_job == len(row) - 1:
        return row[at_job].split(",", 1)[0].strip() or None
    return None


def without_repeated_headers(path: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the rows that repeat its header (files joined with ``cat``: a
    header is no record). A row naming other columns, or the header's in another order,
    is refused: read under the first header, the values of the rows after it would be in
    the wrong columns (an ``UnreadableFileError`` naming its line)."""
    names = [c for c in frame.columns if c != "line"]
    if frame.empty or "event" not in frame.columns:
        return frame
    # No event is named as a column: only a header's row holds a column name there.
    candidates = frame[frame["event"].isin(names)]
    if candidates.empty:  # the usual file
        return frame
    # A file joined after another keeps its byte-order mark, then read as text ("job_id"
    # quoted after it): the few header rows are compared without them.
    cells = (
        candidates[names]
        .astype(object)
        .map(
            lambda cell: cell.lstrip("\ufeff").strip().strip('"') if isinstance(cell, str) else cell
        )
    )
    repeated = (cells == pd.Series(names, index=names)).all(axis=1)
    known = {*names, *EVENT_COLUMNS}
    named = cells.isin(known)
    # Three names at least: a row with a stray name or two is a record to reject.
    other = ~repeated & (cells.isna() | named).all(axis=1) & (named.sum(axis=1) >= 3)
    if other.any():
        row = candidates[other].iloc[0]
        raise UnreadableFileError(
            "this line is a header naming other columns or another order (files with "
            "different headers joined into one?): the rows after it would be read in the "
            "wrong columns",
            path=path,
            line=int(row["line"]),
            value=",".join(str(row[n]) for n in names),
            hint="bill the files apart, each with its own header",
        )
    return frame.drop(index=candidates.index[repeated.to_numpy()])
