"""Invoices: reading what a vendor billed, and writing invoices from a bill (invoice-audit.md).

Two inputs, one ``Invoice`` value:

- the **canonical invoice** (``.csv``, optionally ``.gz``, or JSON Lines ``.jsonl`` /
  ``.ndjson``): one line per charge line, with the columns of ``INVOICE_COLUMNS``.
  Lines are tied to jobs (``basis = "job"``);
- an **OpenAI Costs API export** (``.json``: a ``page`` object, a list of pages, or
  JSON Lines of pages from ``GET /v1/organization/costs``). Costs carry no job id,
  so its lines are tied to a project and a UTC day (``basis = "project_day"``).

Nothing is skipped silently and nothing goes through a binary float: every
number is parsed from its text (JSON numbers are read as text or ``Decimal``)
into integers of fixed scale, whole columns at once:

- ``amount_micro``: the amount in millionths of the currency (a discount or a
  credit is negative);
- ``quantity_micro``: hours or tokens, in millionths;
- ``unit_price_micro``: per hour, or per 1M tokens, in millionths.

A value that cannot be used (not a number, more than six decimals, an unknown
line type, a compute line without hours, a time out of range, ...) raises
``InvoiceError`` naming the file, the line, the column and the value, with the count
of further bad lines; with ``on_bad_line="set_aside"`` (what the audit reads with) the
line is set aside instead, in ``Invoice.rejected`` with the same facts, and the other
lines are read. An invoice none of whose lines can be read is still refused.

The writers (``invoice_from_bill``, ``write_invoice``, ``costs_export_from_bill``,
``dump_costs_export``) and ``INVOICE_COLUMNS`` are in ``rftcost.invoice_writers``, and
importable from here too.
"""

from __future__ import annotations

import codecs
import collections
import csv
import gzip
import io
import itertools
import json
import re
import warnings
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from rftcost.csv_lines import csv_records, record_lines
from rftcost.errors import InvoiceError, why_unreadable
from rftcost.events.json_text import SURROGATE_ESCAPE, lone_surrogate, lone_surrogate_in
from rftcost.invoice_values import (
    MAX_EPOCH_SECONDS,
    MAX_WHOLE_DIGITS,
    UTC_OFFSET,
    parse_scaled,
    parse_times,
)
from rftcost.invoice_writers import (
    INVOICE_COLUMNS,
    costs_export_from_bill,
    dump_costs_export,
    invoice_from_bill,
    write_invoice,
)
from rftcost.prices import resolve_model_family
from rftcost.rules import priced_tokens as priced_tokens  # where it was; the writers use it

if TYPE_CHECKING:
    pass

__all__ = [
    "COSTS_CATEGORIES",
    "INVOICE_COLUMNS",
    "LINE_TYPES",
    "REJECTED_COLUMNS",
    "TOKEN_TYPES",
    "BadLine",
    "Invoice",
    "costs_export_from_bill",
    "dump_costs_export",
    "invoice_from_bill",
    "is_hour_unit",
    "is_token_unit",
    "load_project_map",
    "parse_scaled",
    "parse_times",
    "read_invoice",
    "write_invoice",
]

LINE_TYPES = (
    "compute",
    "data_sharing_discount",
    "grader_tokens",
    "credit",
    "adjustment",
    "tax",
    "total",
)
"""Line types of the canonical invoice. ``total`` (an addition to the spec) states the
invoice's total; it is not a charge, and the other lines must add up to it."""

CHECKED_LINE_TYPES = ("compute", "data_sharing_discount", "grader_tokens")
"""Line types the event logs can check; the others are taken as billed."""

TOKEN_TYPES = ("input", "cached_input", "output")
"""Token types of ``grader_tokens`` lines: uncached input, cached input, output."""

COSTS_CATEGORIES = {
    "data_sharing_discount": ("discount", "data sharing", "data_sharing"),
    "grader_tokens": ("grader",),
    "compute": ("training", "fine-tun", "fine_tun", "finetun", "rft", "reinforcement"),
}
"""How a Costs API ``line_item`` is recognised (first match, lower case); others are ``other``."""

REJECTED_COLUMNS = (
    "source_line",
    "line",
    "column",
    "value",
    "reason",
    "invoice_id",
    "job_id",
    "line_type",
    "amount_micro",
)
"""Columns of ``Invoice.rejected``: the file line, the line's number (its ``line`` when
readable, else its row), the first bad column, its value (a short excerpt), why, and what
could be read of the line (invoice, job, line type, amount in millionths; NA when
unreadable)."""

_SCALE = 10**6
_MAX_HOURS = 10**9
_MAX_AMOUNT_PICO = 10**24
"""A line's quantity × unit price (millionths × millionths) below a trillion."""
_MAX_INVOICE_MICRO = 10**18
"""The lines of an invoice (each by the larger of its amount and its quantity × unit
price; total lines not counted) add up to less than a trillion: the audit's sums then fit
64-bit integers (beyond, they would wrap silently)."""
_UNITS = {
    "compute": {"hours", "hour", "h", "hrs"},
    "grader_tokens": {"tokens", "token"},
}


class Invoice(BaseModel):
    """An invoice, read and checked: one row per line, amounts as integers of fixed scale."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    source: str
    """The file it was read from (``<frame>`` for a frame)."""
    invoice_id: str | None
    """The invoice's id (several ids joined with ", "), if the file names one."""
    basis: Literal["job", "project_day"]
    """``job``: lines name jobs; ``project_day``: lines name a project and a UTC day."""
    currency: str | None
    """Currency of the lines (upper case), if any line says."""
    lines: pd.DataFrame
    """source_line, line, invoice_id, job_id, project, day, line_type, charge_at (ns UTC),
    description, grader_model, grader_family, token_type ("" for none), quantity_micro,
    unit, unit_price_micro, amount_micro, currency."""
    notes: tuple[str, ...] = ()
    """What reading it accepted or skipped (an older page shape, rows without cost)."""
    rejected: pd.DataFrame = Field(default_factory=lambda: _no_rejected())
    """Lines that could not be read and were set aside (``read_invoice(...,
    on_bad_line="set_aside")``), one row a line, columns ``REJECTED_COLUMNS``; their
    amounts are in no total. Empty when every line was read."""

    def __len__(self) -> int:
        return len(self.lines)

    def total(self) -> Decimal:
        """Sum of every line except ``total`` lines."""
        charges = self.lines[self.lines["line_type"] != "total"]
        return Decimal(int(charges["amount_micro"].sum())).scaleb(-6)


# --- reading ---------------------------------------------------------------------------


def _no_rejected() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_line": pd.Series([], dtype="int64"),
            "line": pd.Series([], dtype="int64"),
            "column": pd.Series([], dtype="string"),
            "value": pd.Series([], dtype="string"),
            "reason": pd.Series([], dtype="string"),
            "invoice_id": pd.Series([], dtype="string"),
            "job_id": pd.Series([], dtype="string"),
            "line_type": pd.Series([], dtype="string"),
            "amount_micro": pd.Series([], dtype="Int64"),
        }
    )


BadLine = Literal["raise", "set_aside"]
"""What reading does with a canonical invoice line a value of which cannot be used."""


def read_invoice(
    source: str | Path | pd.DataFrame,
    *,
    assume_tz: str | None = None,
    on_bad_line: BadLine = "raise",
) -> Invoice:
    """Read a canonical invoice (CSV, JSON Lines, or a frame) or an OpenAI Costs API export.

    ``assume_tz`` names the zone of ``charge_at`` times written without an offset.
    Raises ``InvoiceError`` for anything that cannot be used. ``on_bad_line``: for a
    canonical invoice line with a value that cannot be used (a time out of range, an
    amount that is not a number, an unknown line type, ...), ``"raise"`` refuses the
    invoice naming the first such line; ``"set_aside"`` sets the line aside in
    ``Invoice.rejected`` (file line, column, value, reason) and reads the others, as
    the audit does. Either way, an invoice with lines none of which can be read is
    refused (an empty invoice is no invoice), and so is a file that is not an invoice
    (not CSV / JSON, a required column missing, a row with more fields than the header).
    """
    if isinstance(source, pd.DataFrame):
        raw = source.astype(object).where(source.notna(), None)
        raw = raw.map(lambda v: None if v is None else str(v))
        raw = raw.assign(source_line=np.arange(1, len(raw) + 1))
        return _canonical(raw, "<frame>", assume_tz, on_bad_line)
    path = Path(source)
    if not path.exists():
        raise InvoiceError("no such invoice file", path=path)
    if not path.is_file():
        # A folder, or a device such as /dev/zero that never ends: not an invoice.
        raise InvoiceError("not a regular file", path=path, hint="pass the invoice file")
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        # Read and checked a chunk of records at a time (issue 16): never the whole text.
        chunks = _csv_chunks(path)
        first = next(chunks)
        if "line_type" not in first and _DASHBOARD_COLUMNS & set(first.columns):
            return _dashboard_csv(pd.concat([first, *chunks], ignore_index=True), str(path))
        return _canonical_chunks(
            itertools.chain([first], chunks), str(path), assume_tz, on_bad_line
        )
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")):
        return _canonical_chunks(_jsonl_chunks(path), str(path), assume_tz, on_bad_line)
    if name.endswith((".json", ".json.gz")):
        return _read_json(path, assume_tz, on_bad_line)
    raise InvoiceError(
        "unsupported invoice file type",
        path=path,
        hint="use .csv or .jsonl (canonical invoice) or .json (OpenAI Costs API export)",
    )


def _refuse_lone_surrogate(parsed: Any, path: Path, line: int | None) -> None:
    """A lone surrogate escape parses to no text: an invoice holding one is refused with
    its line, as any value that cannot be read (``events.json_text``)."""
    lone = lone_surrogate(parsed)
    if lone:
        raise _lone_surrogate_error(lone, path, line)


def _refuse_lone_surrogate_in(text: str, parsed: Any, path: Path) -> None:
    """``_refuse_lone_surrogate`` for a whole document, ``parsed`` from ``text``."""
    found = lone_surrogate_in(text, parsed)
    if found:
        raise _lone_surrogate_error(found[0], path, found[1])


def _lone_surrogate_error(lone: str, path: Path, line: int | None) -> InvoiceError:
    return InvoiceError(f"not valid text: a lone surrogate escape {lone}", path=path, line=line)


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            data = gzip.decompress(data)
        text = data.decode("utf-8-sig")
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise InvoiceError(f"cannot read invoice: {why_unreadable(exc)}", path=path) from exc
    except UnicodeDecodeError as exc:
        raise InvoiceError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from exc
    if not text.strip():
        # Never read as an empty Costs API export that audits clean.
        raise InvoiceError(
            "the invoice file is empty: an empty invoice is no invoice",
            path=path,
            hint="pass the invoice (canonical CSV / JSON Lines) or the Costs API export",
        )
    return text


_READ_ROWS = 50_000
"""Records of a canonical invoice read (and checked) at a time: its text is never whole."""


def _check_text(path: Path) -> None:
    """Refuse a file that cannot be read, is not UTF-8, or holds only white space (an empty
    invoice is no invoice), streaming it once in blocks (nothing held)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    blank, consumed = True, 0
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as handle:
            while block := handle.read(1 << 20):
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(block)
                except UnicodeDecodeError as exc:
                    at = consumed - pending + exc.start
                    raise InvoiceError(
                        f"not UTF-8 text ({exc.reason} at byte {at})", path=path
                    ) from exc
                if blank:
                    blank = not text.lstrip("\ufeff" if consumed == 0 else "").strip()
                consumed += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:  # the file ends inside a character
        raise InvoiceError(f"not UTF-8 text ({exc.reason} at byte {consumed})", path=path) from exc
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise InvoiceError(f"cannot read invoice: {why_unreadable(exc)}", path=path) from exc
    if blank:
        # Never read as an empty Costs API export that audits clean.
        raise InvoiceError(
            "the invoice file is empty: an empty invoice is no invoice",
            path=path,
            hint="pass the invoice (canonical CSV / JSON Lines) or the Costs API export",
        )


def _open_text(path: Path, newline: str | None) -> Any:
    """The file as text (UTF-8, a byte-order mark dropped; ``.gz`` decompressed on the fly)."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline=newline)
    return path.open(encoding="utf-8-sig", newline=newline)


def _csv_chunks(path: Path) -> Iterator[pd.DataFrame]:
    """The records of a CSV as strings, ``_READ_ROWS`` at a time (at least one chunk)."""
    _check_text(path)
    _refuse_repeated_columns(path)
    rows = 0
    lines = record_lines(path)  # a line a quoted newline or a blank line moved is still found
    if lines.broken:  # a quote pandas would read across lines: the file is refused
        raise _long_row(path) or InvoiceError("a quote that does not close", path=path)
    with _open_text(path, newline="") as handle:
        try:
            with warnings.catch_warnings():
                # index_col=False: a row with more fields than the header never turns the
                # first column into an index (every column shifted); pandas warns, and it is
                # refused.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                reader = pd.read_csv(
                    handle,
                    dtype=str,
                    keep_default_na=False,
                    na_values=[""],
                    index_col=False,
                    chunksize=_READ_ROWS,
                )
                with reader:
                    header: list[str] | None = None
                    for raw in reader:
                        raw.columns = header = [str(c).strip() for c in raw.columns]
                        yield raw.assign(source_line=lines.of(rows, len(raw)))
                        rows += len(raw)
                    if header is None:  # a header alone: an invoice of nothing
                        names = [str(c).strip() for c in reader.orig_options["names"] or []]
                        yield _header_only(path, names)
        except pd.errors.EmptyDataError as exc:
            raise InvoiceError("empty invoice file (no header)", path=path) from exc
        except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
            raise _long_row(path) or InvoiceError(f"cannot parse CSV: {exc}", path=path) from exc
        except ValueError as exc:
            raise InvoiceError(f"cannot parse CSV: {exc}", path=path) from exc


_READ_COLUMNS = frozenset(
    {
        *INVOICE_COLUMNS,
        *("amount.currency", "amount.value", "amount_currency", "amount_value", "end_time"),
        *("end_time_iso", "line_item", "project_id", "project_name", "quantity_unit"),
        *("start_time", "start_time_iso"),
    }
)
"""The columns a canonical invoice or a Costs export's CSV is read by."""


def _refuse_repeated_columns(path: Path) -> None:
    """A header naming a column it is read by twice (``amount`` twice): pandas would read
    the first copy alone as ``amount`` and the other as ``amount.1``, so the audit would
    depend on the columns' order. Which copy a line means is unknown: refused, naming the
    column. The header is the first line that is not blank, as pandas reads it."""
    with _open_text(path, newline="") as handle:
        try:
            rows = csv.reader(handle)
            header = next((r for r in rows if any(cell.strip() for cell in r)), [])
        except csv.Error:
            return  # the reading proper says what is wrong with the file
    counts = collections.Counter(name.strip() for name in header)
    repeated = sorted(n for n, count in counts.items() if n in _READ_COLUMNS and count > 1)
    if repeated:
        raise InvoiceError(
            f"the header names column {repeated[0]!r} twice: which copy a line means is unknown",
            path=path,
            line=1,
            column=repeated[0],
            hint="keep one column of each name",
        )


def _header_only(path: Path, names: list[str]) -> pd.DataFrame:
    """The columns of a CSV without records (its header, read again: one line)."""
    if not names:
        with _open_text(path, newline="") as handle:
            names = [c.strip() for c in next(csv.reader(handle), [])]
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in names}).assign(
        source_line=np.arange(0)
    )


def _long_row(path: Path) -> InvoiceError | None:
    """The first row with more fields than the header, or a quote never closed, named by
    the line it starts on (error path only)."""
    with _open_text(path, newline="") as handle:
        records = csv_records(handle)
        header = next(records, None)
        width = 0 if header is None else len(header.fields)
        for record in records:
            if record.open_quote:
                never = "never closed" in (record.problem or "")
                return InvoiceError(
                    "a quote never closed: the rest of the file would be one field"
                    if never
                    else "a quote closed on a later line with text after it: the lines "
                    "between would be one field",
                    path=path,
                    line=record.line,
                    hint="close the quote, or double a quote that is part of the text",
                )
            if len(record.fields) > width:
                return InvoiceError(
                    f"a row with more fields ({len(record.fields)}) than the header ({width})",
                    path=path,
                    line=record.line,
                    value=",".join(record.fields)[:60],
                    hint="quote a field that holds a comma",
                )
    return None


def _jsonl_chunks(path: Path) -> Iterator[pd.DataFrame]:
    """The records of JSON Lines as strings, ``_READ_ROWS`` at a time (at least one chunk).
    Lines end at a line break (``\n``, ``\r\n`` or ``\r``) alone: U+2028 or a form feed
    in a line is JSON's business (text in a string, an error elsewhere), not a new line."""
    _check_text(path)
    batch: list[str] = []
    numbers: list[int] = []
    number, chunks = 0, 0
    with _open_text(path, newline=None) as handle:
        for physical in handle:
            number += 1
            if physical.strip():
                batch.append(physical.removesuffix("\n"))
                numbers.append(number)
            if len(batch) >= _READ_ROWS:
                yield _jsonl_frame(batch, numbers, path)
                batch, numbers, chunks = [], [], chunks + 1
    if batch or not chunks:
        yield _jsonl_frame(batch, numbers, path)


_EXPONENT_LIMIT = 30
"""A JSON number in exponent form is written out when its exponent is at most this."""


def _json_number(text: str) -> str:
    """A JSON number as the digits it stands for: ``1e2`` is exactly 100 (Decimal, never a
    float); an exponent beyond ``_EXPONENT_LIMIT`` is kept as written (then refused as not
    a number rather than spelled out in a thousand digits)."""
    if "e" not in text.lower():
        return text
    value = Decimal(text)
    if abs(value.adjusted()) > _EXPONENT_LIMIT:
        return text
    return f"{value:f}"


def _json_cell(value: Any) -> str | None:
    """A value of a JSON invoice as text; a number (a Decimal) as ``_json_number`` writes it."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return _json_number(str(value))
    return str(value)


def _refuse_event_log(record: dict[str, Any], path: Path, number: int) -> None:
    """An event log given as the invoice is named as such, not by its first odd value."""
    if "line_type" not in record and {"event", "ts"} <= record.keys():
        raise InvoiceError(
            "this is an event log (records with 'ts' and 'event'), not an invoice",
            path=path,
            line=number,
            hint="pass the invoice with --invoice and the event logs as the other arguments",
        )


_NOT_SCALAR = "\x00not_scalar"
"""Hidden column of a JSON record: the first key whose value is an object, a list or a
boolean (names are text: never "{'a': 1}" or "True" as a job id), a problem of its line."""
_NOT_SCALAR_REASON = "a value must be a string or a number"


def _mark_not_scalar(record: dict[str, Any]) -> None:
    """Note ``record``'s first value that is not a string or a number (as JSON text, so
    that it is shown as written) in ``_NOT_SCALAR``: its line is bad, as a bad amount is."""
    odd = [key for key, value in record.items() if isinstance(value, dict | list | bool)]
    for key in odd:  # every one as text (none is read as a name), the first one named
        record[key] = json.dumps(record[key], default=str)
    if odd:
        record[_NOT_SCALAR] = odd[0]


def _jsonl_frame(lines: list[str], numbers: list[int], path: Path) -> pd.DataFrame:
    """Lines of JSON objects (file line ``numbers``) → a frame of strings."""
    body = "[" + ",".join(lines) + "]"
    try:
        records = json.loads(body, parse_float=_json_number, parse_int=str)
    except json.JSONDecodeError:
        records = None
    except RecursionError as exc:
        raise InvoiceError("JSON nested too deep", path=path) from exc
    if records is None or len(records) != len(numbers):
        # Find the first bad line to name it.
        for number, text in zip(numbers, lines, strict=True):
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvoiceError(f"not JSON: {exc.msg}", path=path, line=number) from exc
        raise InvoiceError("not JSON Lines", path=path)
    escapes = SURROGATE_ESCAPE.search(body) is not None
    for number, record in zip(numbers, records, strict=True):
        if not isinstance(record, dict):
            raise InvoiceError("not a JSON object", path=path, line=number)
        _refuse_event_log(record, path, number)
        if escapes:
            _refuse_lone_surrogate(record, path, number)
        _mark_not_scalar(record)
    raw = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    raw = raw.astype(object).where(raw.notna(), None)
    raw = raw.map(lambda v: None if v is None else str(v))
    return raw.assign(source_line=np.asarray(numbers, dtype="int64"))


class _Problems:
    """Bad cells found column by column; the first of each bad line is what is reported."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self.raw = raw
        self.found: list[pd.DataFrame] = []

    def add(self, mask: pd.Series, column: str, reason: str | pd.Series) -> None:
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        values = self.raw[column] if column in self.raw else pd.Series(None, index=self.raw.index)
        self.found.append(
            pd.DataFrame(
                {
                    "source_line": self.raw.loc[mask, "source_line"],
                    "column": column,
                    "value": values[mask],
                    "reason": reason[mask] if isinstance(reason, pd.Series) else reason,
                }
            )
        )

    def first_per_line(self) -> pd.DataFrame:
        """The first problem of every bad line, in line order (index: the raw row)."""
        if not self.found:
            return pd.DataFrame(columns=["source_line", "column", "value", "reason"])
        bad = pd.concat(self.found).sort_values("source_line", kind="stable")
        return bad[~bad.index.duplicated(keep="first")]


def _first_problem(bad: pd.DataFrame, source: str, why: str | None = None) -> InvoiceError:
    """The error naming the first bad line (``bad``: the first problem of every bad line, in
    line order), with the count of the others."""
    first = bad.iloc[0]
    others = len(bad) - 1
    hints = [why] if why else []
    hints += [f"{others} more line(s) with problems"] if others else []
    return InvoiceError(
        str(first["reason"]),
        path=source,
        line=int(first["source_line"]),
        column=str(first["column"]),
        value=_shown(first["value"]),
        hint="; ".join(hints) or None,
    )


def _shown(value: Any) -> str | None:
    """A rejected cell as named in a message: ``None`` when empty, else a short excerpt."""
    return None if value is None or value is pd.NA or value != value else _excerpt(value)


def _excerpt(value: Any, limit: int = 60) -> str:
    """A rejected value as shown on screen: a short excerpt, never a whole cell."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _column(raw: pd.DataFrame, name: str) -> pd.Series:
    if name not in raw:
        return pd.Series(pd.NA, index=raw.index, dtype="string")
    values = raw[name].astype("string").str.strip()
    return values.mask(values == "")


def _canonical(
    raw: pd.DataFrame, source: str, assume_tz: str | None, on_bad_line: BadLine = "raise"
) -> Invoice:
    """Check and normalise canonical invoice records (strings) into an ``Invoice``; bad
    lines raise, or are set aside (``on_bad_line``)."""
    return _canonical_chunks(iter([raw]), source, assume_tz, on_bad_line)


def _canonical_chunks(
    chunks: Iterator[pd.DataFrame], source: str, assume_tz: str | None, on_bad_line: BadLine
) -> Invoice:
    """``_canonical`` over chunks of records in file order (at least one, maybe empty): each
    is checked and typed on its own, so memory holds the typed lines and one chunk of text.
    What needs every line (a missing column, the first bad line and their count, one
    currency) is decided at the end, as for the whole file at once."""
    parts: list[pd.DataFrame] = []
    bads: list[pd.DataFrame] = []
    set_aside: list[pd.DataFrame] = []
    columns: set[str] = set()
    blank: list[pd.Series] = []
    rows = 0
    for raw in chunks:
        columns |= {str(c) for c in raw.columns}
        lines, bad, rejected, skipped = _chunk_lines(raw, assume_tz, rows)
        rows += len(raw)
        blank.append(skipped)
        parts.append(lines)
        bads.append(bad)
        set_aside.append(rejected)
    if "line_type" not in columns and {"event", "ts"} <= columns:
        raise InvoiceError(
            "this is an event log (columns 'ts' and 'event'), not an invoice",
            path=source,
            line=1,
            hint="pass the invoice with --invoice and the event logs as the other arguments",
        )
    for required in ("line_type", "amount", "job_id"):
        if required not in columns:
            raise InvoiceError(
                f"missing column {required!r}",
                path=source,
                line=1,
                hint=f"the canonical invoice has columns {', '.join(INVOICE_COLUMNS)}; a Costs "
                "export (dashboard CSV) has start_time, end_time, amount_value, amount_currency, "
                "line_item, project_id",
            )
    bad = pd.concat(bads).sort_values("source_line", kind="stable")
    if len(bad) and on_bad_line == "raise":
        raise _first_problem(bad, source)
    skipped = pd.concat(blank)
    rows -= len(skipped)
    if len(bad) and len(bad) == rows:
        raise _first_problem(
            bad, source, "no line of the invoice can be read: an empty invoice is no invoice"
        )
    lines = pd.concat(parts, ignore_index=True)
    rejected = pd.concat(set_aside, ignore_index=True)
    _refuse_too_large_total(lines, source)
    currency = lines["currency"]
    currencies = sorted(currency.dropna().unique())
    if len(currencies) > 1:
        # The line to name is the first one out of the currency most lines are in.
        counts = currency.value_counts()
        main = sorted(counts.index, key=lambda c: (-int(counts[c]), str(c)))[0]
        first_other = currency[currency.notna() & (currency != main)].index[0]
        spread = ", ".join(f"{int(counts[c])} in {c}" for c in sorted(counts.index))
        raise InvoiceError(
            f"lines in several currencies ({spread}): this line is not in {main}",
            path=source,
            line=int(lines.loc[first_other, "source_line"]),
            column="currency",
            value=str(currency[first_other]),
        )
    ids = [str(i) for i in lines["invoice_id"].dropna().unique()]
    notes: tuple[str, ...] = ()
    if len(rejected):
        shown = ", ".join(str(n) for n in rejected["source_line"].head(5))
        notes = (
            f"{len(rejected)} line(s) could not be read and were set aside (file line(s) "
            f"{shown}{', …' if len(rejected) > 5 else ''}): their amounts (where readable) "
            "count in the invoice total, in neither the expected nor the billed total",
        )
    if len(skipped):
        shown = ", ".join(str(n) for n in skipped.head(5))
        notes += (
            f"{len(skipped)} row(s) with every cell empty or repeating the header were "
            f"skipped (file line(s) {shown}{', …' if len(skipped) > 5 else ''}): they state "
            "no line",
        )
    return Invoice(
        source=source,
        invoice_id=", ".join(ids) if ids else None,
        basis="job",
        currency=currencies[0] if currencies else None,
        lines=lines,
        notes=notes,
        rejected=rejected,
    )


def _chunk_lines(
    raw: pd.DataFrame, assume_tz: str | None, rows_before: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
    """One chunk of records → its readable lines, the first problem of each bad line, the
    bad lines as ``Invoice.rejected`` rows, and the file lines of rows with every cell
    empty (a spreadsheet's trailing ``,,,`` rows) or repeating the header (invoices joined
    with ``cat``): skipped. ``rows_before``: records of earlier chunks (a line without a
    ``line`` number is numbered by its row in the file)."""
    row_number = pd.Series(
        np.arange(rows_before + 1, rows_before + len(raw) + 1), index=raw.index, dtype="Int64"
    )
    blank = raw.drop(columns="source_line").isna().all(axis=1)
    # Invoices joined with ``cat``: a line type is never named "line_type".
    blank |= (_column(raw, "line_type").str.lstrip("\ufeff") == "line_type").fillna(False)
    skipped = raw.loc[blank, "source_line"].astype("int64")
    raw, row_number = raw[~blank], row_number[~blank]
    problems = _Problems(raw)
    if _NOT_SCALAR in raw:  # first: the line's own first problem (JSON records only)
        marked = raw[_NOT_SCALAR]
        for column in marked.dropna().unique():  # the few keys that hold one
            problems.add(marked == column, str(column), _NOT_SCALAR_REASON)
        raw = raw.drop(columns=[_NOT_SCALAR])
    line_type = _column(raw, "line_type").str.lower()
    problems.add(line_type.isna(), "line_type", "missing line type")
    problems.add(
        line_type.notna() & ~line_type.isin(LINE_TYPES),
        "line_type",
        f"unknown line type; known: {', '.join(LINE_TYPES)}",
    )
    job_id = _column(raw, "job_id")
    checked = line_type.isin(CHECKED_LINE_TYPES)
    problems.add(
        checked & job_id.isna(), "job_id", "a compute, discount or grader line needs a job_id"
    )

    amount, bad = parse_scaled(_column(raw, "amount"))
    problems.add(bad.notna(), "amount", bad)
    problems.add(amount.isna() & bad.isna(), "amount", "missing amount")
    quantity, bad = parse_scaled(_column(raw, "quantity"))
    problems.add(bad.notna(), "quantity", bad)
    unit_price, bad = parse_scaled(_column(raw, "unit_price"))
    problems.add(bad.notna(), "unit_price", bad)

    token_type = _column(raw, "token_type").str.lower()
    grader_model = _column(raw, "grader_model")
    is_compute = line_type == "compute"
    is_tokens = line_type == "grader_tokens"
    problems.add(is_compute & quantity.isna(), "quantity", "a compute line needs its hours")
    problems.add(
        is_compute & unit_price.isna(), "unit_price", "a compute line needs its hourly price"
    )
    problems.add(
        is_tokens & grader_model.isna(),
        "grader_model",
        "a grader_tokens line needs its grader model",
    )
    problems.add(
        token_type.notna() & ~token_type.isin(TOKEN_TYPES),
        "token_type",
        f"unknown token type; known: {', '.join(TOKEN_TYPES)} (or empty)",
    )
    problems.add(
        token_type.notna() & ~is_tokens, "token_type", "token_type is for grader_tokens lines only"
    )
    typed = is_tokens & token_type.notna()
    problems.add(
        typed & quantity.isna(), "quantity", "a grader line with a token type needs its tokens"
    )
    problems.add(
        typed & unit_price.isna(), "unit_price", "a grader line with a token type needs its price"
    )
    problems.add(
        is_tokens & quantity.notna() & (quantity % _SCALE != 0),
        "quantity",
        "tokens are whole numbers",
    )
    problems.add(
        (is_compute | is_tokens) & quantity.notna() & (quantity < 0),
        "quantity",
        "a negative quantity",
    )
    # Bounds that keep every sum and product of the audit exact in 64-bit integers: no
    # invoice line bills a billion hours, or a trillion at once.
    problems.add(is_compute & (quantity > _MAX_HOURS * _SCALE), "quantity", "more than 1e9 hours")
    problems.add(_too_large_products(quantity, unit_price, is_tokens), "unit_price",
                 "quantity × unit_price is a trillion or more")  # fmt: skip
    unit = _column(raw, "unit").str.lower()
    for kind, names in _UNITS.items():
        wrong = (line_type == kind) & unit.notna() & ~unit.isin(sorted(names))
        problems.add(
            wrong, "unit", f"the unit of a {kind} line is one of {', '.join(sorted(names))}"
        )

    charge_at, bad = parse_times(_column(raw, "charge_at"), assume_tz)
    problems.add(bad.notna(), "charge_at", bad)

    given_line, bad = parse_scaled(_column(raw, "line"), 0)
    problems.add(bad.notna(), "line", bad)
    currency = _column(raw, "currency").str.upper()
    number = given_line.fillna(row_number)
    faulty = problems.first_per_line()
    keep = ~raw.index.isin(faulty.index)
    rejected = _no_rejected()
    if len(faulty):
        at = faulty.index
        rejected = pd.DataFrame(
            {
                "source_line": faulty["source_line"].astype("int64"),
                "line": number[at].astype("int64"),
                "column": faulty["column"].astype(str).astype("string"),
                "value": faulty["value"].map(_shown).astype("string"),
                "reason": faulty["reason"].astype(str).astype("string"),
                "invoice_id": _column(raw, "invoice_id")[at].astype("string"),
                "job_id": job_id[at].astype("string"),
                "line_type": line_type[at].astype("string"),
                "amount_micro": amount[at].astype("Int64"),
            }
        ).reset_index(drop=True)
        raw = raw[keep]
        line_type, job_id, amount, quantity, unit_price = (
            line_type[keep], job_id[keep], amount[keep], quantity[keep], unit_price[keep]
        )  # fmt: skip
        token_type, grader_model, unit, charge_at = (
            token_type[keep], grader_model[keep], unit[keep], charge_at[keep]
        )  # fmt: skip
        currency, number = currency[keep], number[keep]
    lines = pd.DataFrame(
        {
            "source_line": raw["source_line"].astype("int64"),
            "line": number.astype("int64"),
            "invoice_id": _column(raw, "invoice_id"),
            "job_id": job_id,
            "project": pd.Series(pd.NA, index=raw.index, dtype="string"),
            "day": pd.Series(pd.NA, index=raw.index, dtype="string"),
            "line_type": line_type.astype("string"),
            "charge_at": charge_at.astype("Int64"),
            "description": _column(raw, "description"),
            "grader_model": grader_model,
            "grader_family": _families(grader_model),
            "token_type": token_type.fillna("").astype("string"),
            "quantity_micro": quantity.astype("Int64"),
            "unit": unit,
            "unit_price_micro": unit_price.astype("Int64"),
            "amount_micro": amount.astype("int64"),
            "currency": currency,
        }
    )
    return lines, faulty[["source_line", "column", "value", "reason"]], rejected, skipped


def _refuse_too_large_total(lines: pd.DataFrame, source: str) -> None:
    """An invoice whose lines add up to a trillion or more (``_MAX_INVOICE_MICRO``) is
    refused, naming the line where the sum crosses it: the audit's sums would wrap."""
    # A total line restates the lines: not counted. A line counts by the larger of its
    # amount and its quantity × unit price (the audit computes both).
    lines = lines[lines["line_type"] != "total"]
    if lines.empty:
        return
    columns = ("amount_micro", "quantity_micro", "unit_price_micro")
    amount, quantity, price = (lines[c].fillna(0).abs().to_numpy(dtype="int64") for c in columns)
    per = np.where(lines["line_type"].to_numpy(dtype=object) == "grader_tokens", 10**12, 10**6)
    # Floats only to tell the usual invoice, far below the bound, at once; near it, the
    # exact sum of Python integers decides.
    rough = np.maximum(amount.astype("float64"), quantity.astype("float64") * price / per)
    if rough.sum() < _MAX_INVOICE_MICRO / 2:
        return
    product = quantity.astype(object) * price.astype(object) // per.astype(object)
    exact = np.maximum(amount.astype(object), product)
    totals = np.cumsum(exact)
    if totals[-1] < _MAX_INVOICE_MICRO:
        return
    crossed = int(np.argmax(totals >= _MAX_INVOICE_MICRO))
    raise InvoiceError(
        "the invoice's amounts add up to a trillion or more by this line: too large to audit",
        path=source,
        line=int(lines["source_line"].iloc[crossed]),
        column="amount",
        value=format(Decimal(int(lines["amount_micro"].iloc[crossed])).scaleb(-6).normalize(), "f"),
    )


def _too_large_products(quantity: pd.Series, price: pd.Series, is_tokens: pd.Series) -> pd.Series:
    """Lines whose quantity × unit price (a price per 1M tokens for tokens) is a trillion or
    more, exactly: the few with a factor above 10**12 are multiplied as Python integers."""
    q, p = quantity.abs(), price.abs()
    unsure = (q >= 10**12) | (p >= 10**12)  # below both, the product is below 10**24
    found = pd.Series(False, index=quantity.index)
    if not unsure.fillna(False).any():
        return found
    rows = unsure.fillna(False).astype(bool) & q.notna() & p.notna()
    per = np.where(is_tokens[rows], _SCALE, 1)
    product = q[rows].astype(object) * p[rows].astype(object)
    found[rows] = product.to_numpy() >= _MAX_AMOUNT_PICO * per.astype(object)
    return found


def _families(models: pd.Series) -> pd.Series:
    mapping = {m: resolve_model_family(str(m)) for m in models.dropna().unique()}
    return models.map(mapping).astype("string")


# --- OpenAI Costs API exports -----------------------------------------------------------


def _read_json(path: Path, assume_tz: str | None, on_bad_line: BadLine) -> Invoice:
    text = _text(path)
    try:
        document: Any = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:
        # JSON Lines of pages, or lines of a canonical invoice in a .json file.
        document = []
        for number, line in enumerate(text.split("\n"), start=1):  # as _jsonl_chunks
            if not line.strip():
                continue
            try:
                document.append(json.loads(line, parse_float=Decimal))
            except json.JSONDecodeError as exc:
                raise InvoiceError(f"not JSON: {exc.msg}", path=path, line=number) from exc
    except RecursionError as exc:
        raise InvoiceError("JSON nested too deep", path=path) from exc
    _refuse_lone_surrogate_in(text, document, path)
    pages = document if isinstance(document, list) else [document]
    if not pages:
        raise InvoiceError(
            "an empty invoice is no invoice: the file holds no Costs API page and no line",
            path=path,
            hint=_COSTS_HINT,
        )
    if all(isinstance(p, dict) and "line_type" in p for p in pages):
        for record in pages:
            _mark_not_scalar(record)
        raw = pd.DataFrame.from_records(pages).astype(object)
        raw = raw.where(raw.notna(), None).map(_json_cell)
        return _canonical(
            raw.assign(source_line=np.arange(1, len(raw) + 1)), str(path), assume_tz, on_bad_line
        )
    return _costs_pages(pages, str(path))


_COSTS_HINT = (
    "expected pages of the OpenAI Costs API (GET /v1/organization/costs?bucket_width=1d"
    "&group_by=line_item,project_id)"
)
_HOUR_UNITS = frozenset({"hours", "hour", "h", "hrs", "duration_hours"})
_MAX_AMOUNT = Decimal(10) ** MAX_WHOLE_DIGITS


def is_hour_unit(unit: pd.Series) -> pd.Series:
    """Units that are hours of compute: ``hours`` and the Costs API's ``duration_hours``."""
    text = unit.fillna("").astype(str).str.strip().str.lower()
    hit: pd.Series = text.isin(sorted(_HOUR_UNITS)) | text.str.endswith("_hours")
    return hit


def is_token_unit(unit: pd.Series) -> pd.Series:
    """Units that count tokens (``tokens``, ``input_tokens``, …)."""
    text = unit.fillna("").astype(str).str.strip().str.lower()
    hit: pd.Series = text.str.contains("token", regex=False)
    return hit


class _Cost:
    """One cost result, with where it was read (JSON path or CSV line) for its errors."""

    __slots__ = ("end", "line", "result", "start", "where")

    def __init__(
        self, result: dict[str, Any], start: Any, end: Any, where: str, line: int | None
    ) -> None:
        self.result, self.start, self.end, self.where, self.line = result, start, end, where, line


def _costs_pages(pages: list[Any], source: str) -> Invoice:
    """Costs API pages → costs. Older pages and generated clients differ in small ways that are
    accepted (``result`` for ``results``, a page without ``object``, a bare list of buckets,
    a bucket's times as ISO text); anything else is named exactly."""
    notes: list[str] = []
    costs: list[_Cost] = []

    def fail(reason: str, where: str, value: Any = None) -> InvoiceError:
        return InvoiceError(
            reason,
            path=source,
            column=where,
            value=None if value is None else str(value)[:60],
            hint=_COSTS_HINT,
        )

    buckets: list[tuple[str, Any]] = []
    for p, page in enumerate(pages):
        if isinstance(page, dict) and isinstance(page.get("data"), list):
            kind = page.get("object")
            if kind not in (None, "page"):
                raise fail(
                    f"not a Costs API page: its object is {kind!r}, a Costs API page has "
                    "object 'page'",
                    f"[{p}].object",
                    kind,
                )
            buckets.extend((f"[{p}].data[{b}]", bucket) for b, bucket in enumerate(page["data"]))
        elif isinstance(page, dict) and ("results" in page or "result" in page):
            buckets.append((f"[{p}]", page))  # a bucket saved on its own (page.data[i])
        else:
            raise fail(
                "not a Costs API page (object 'page' with a 'data' list of buckets)",
                f"[{p}]",
                json.dumps(page, default=str)[:60] if not isinstance(page, str) else page,
            )
    if not buckets:
        # No day at all (a page of "data": []): no invoice period, nothing billed or not.
        raise InvoiceError(
            "an empty invoice is no invoice: the Costs pages hold no bucket (no day)",
            path=source,
            hint=_COSTS_HINT,
        )
    seen: set[str] = set()
    repeated: list[str] = []
    spans: dict[tuple[str, str], int] = {}
    for where, bucket in buckets:
        if not isinstance(bucket, dict):
            raise fail("not a bucket (an object with start_time, end_time, results)", where)
        # Pages saved twice (or overlapping exports) hold a bucket twice: the same costs
        # are one charge, read once; a span read twice with other results is said.
        same = json.dumps(bucket, sort_keys=True, default=str)
        if same in seen:
            repeated.append(where)
            continue
        seen.add(same)
        span = (str(bucket.get("start_time")), str(bucket.get("end_time")))
        spans[span] = spans.get(span, 0) + 1
        results = bucket.get("results", bucket.get("result"))
        if "results" not in bucket and "result" in bucket and "result" not in notes:
            # Older Costs pages and some generated clients write the singular.
            notes.append("result")
        if isinstance(results, dict):
            results = [results]
        if not isinstance(results, list):
            raise fail("a bucket without a 'results' list", where + ".results", results)
        for r, result in enumerate(results):
            costs.append(
                _Cost(
                    result,
                    bucket.get("start_time"),
                    bucket.get("end_time"),
                    f"{where}.results[{r}]",
                    None,
                )
            )
    said = (
        ["buckets with 'result' instead of 'results' (older Costs pages) were read as 'results'"]
        if notes
        else []
    )
    if repeated:
        said.append(
            f"{len(repeated)} bucket(s) repeat an earlier bucket exactly ({', '.join(repeated[:3])}"
            f"{', …' if len(repeated) > 3 else ''}): pages saved twice or overlapping, read once"
        )
    twice = sorted(span for span, count in spans.items() if count > 1)
    if twice:
        said.append(
            f"{len(twice)} bucket span(s) appear more than once with different results "
            f"(start_time {', '.join(start for start, _ in twice[:3])}"
            f"{', …' if len(twice) > 3 else ''}): their costs are added up; if two exports "
            "overlap, audit each day once"
        )
    last = pages[-1]
    if isinstance(last, dict) and last.get("has_more") is True:
        # An export cut short: the days after its last bucket are missing, not $0.
        said.append(
            "the export's last page says has_more: true, so later buckets are missing: fetch "
            f"the next page (page={last.get('next_page')}) and audit all pages together"
        )
    return _costs_invoice(costs, source, said, csv=False)


_DASHBOARD_COLUMNS = frozenset({"amount_value", "amount.value"})
"""Columns that make a CSV a Costs export (the dashboard's, or a client's flattened results)."""
_CSV_FIELDS = {
    "amount.value": "amount_value",
    "amount": "amount_value",
    "start_time": "start_time",
    "end_time": "end_time",
    "quantity": "quantity",
    "": "amount_value",
}


def _dashboard_csv(raw: pd.DataFrame, source: str) -> Invoice:
    """The Costs dashboard's CSV export: one row per bucket (and line item, project), the
    Costs API result fields flattened (``start_time, end_time, start_time_iso, end_time_iso,
    amount_value, amount_currency, line_item, project_id, organization_id, ...``).

    Rows without an amount are the days without cost: skipped, and counted in the notes.
    Amounts have 16 decimals ("0.5617712500000000"); they are summed to the millionth, as
    the Costs API's JSON amounts are.
    """

    def column(*names: str) -> pd.Series:
        for name in names:
            if name in raw:
                return _column(raw, name)
        return pd.Series(pd.NA, index=raw.index, dtype="string")

    if raw.empty:
        raise InvoiceError(
            "an empty invoice is no invoice: the Costs export has its header and no day",
            path=source,
            hint=_COSTS_HINT,
        )
    amount = column("amount_value", "amount.value")
    currency = column("amount_currency", "amount.currency")
    start = column("start_time").fillna(column("start_time_iso"))
    end = column("end_time").fillna(column("end_time_iso"))
    if start.isna().all() and amount.notna().any():
        raise InvoiceError(
            "a Costs export without start_time or start_time_iso",
            path=source,
            line=1,
            hint="the dashboard's cost export has columns start_time, end_time, "
            "start_time_iso, end_time_iso, amount_value, amount_currency, line_item, "
            "project_id",
        )
    item = column("line_item")
    project = column("project_id", "project_name")
    quantity = column("quantity")
    unit = column("quantity_unit")
    lines = raw["source_line"].astype("int64")
    costs = [
        _Cost(
            {
                "amount": {
                    "value": amount[i],
                    "currency": None if currency[i] is pd.NA else currency[i],
                },
                "line_item": None if item[i] is pd.NA else item[i],
                "project_id": None if project[i] is pd.NA else project[i],
                "quantity": None if quantity[i] is pd.NA else quantity[i],
                "quantity_unit": None if unit[i] is pd.NA else unit[i],
            },
            None if start[i] is pd.NA else start[i],
            None if end[i] is pd.NA else end[i],
            "",
            int(lines[i]),
        )
        for i in raw.index[amount.notna().to_numpy()]
    ]
    skipped = int(amount.isna().sum())
    notes = [
        "read as the Costs dashboard's CSV export (one row per day, project and line item), "
        "compared like a Costs API export"
    ]
    if skipped:
        notes.append(f"{skipped} row(s) without an amount (days without cost) skipped")
    return _costs_invoice(costs, source, notes, csv=True)


def _epoch_seconds(value: Any) -> int | None:
    """Bucket times: epoch seconds (the API), or ISO 8601 text with an offset (some clients)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_EPOCH_SECONDS else None
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{1,10}", text):
            number = int(text)
            return number if number <= MAX_EPOCH_SECONDS else None
        if re.search(UTC_OFFSET, text):
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                return None
            seconds = int(moment.timestamp())
            return seconds if 0 <= seconds <= MAX_EPOCH_SECONDS else None
    return None


def _number(value: Any) -> Decimal | None:
    """A JSON or CSV number, exactly (``Decimal``); ``None`` when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return None
    try:
        exact = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return exact if exact.is_finite() else None


def _costs_invoice(costs: list[_Cost], source: str, notes: list[str], csv: bool) -> Invoice:
    """Cost results (from Costs API pages or the dashboard's CSV) → an ``Invoice`` per project
    and day. Every number is checked: out of range, too large for 64 bits, not a number."""

    def fail(reason: str, cost: _Cost, field: str, value: Any = None) -> InvoiceError:
        if csv:
            line, column = cost.line, _CSV_FIELDS.get(field, field)
        else:
            line = None
            column = cost.where if field == "" else f"{cost.where}.{field}"
            if field in ("start_time", "end_time"):
                column = cost.where.rsplit(".results", 1)[0] + "." + field
        return InvoiceError(
            reason,
            path=source,
            line=line,
            column=column,
            value=None if value is None else str(value)[:60],
            hint=None if csv else _COSTS_HINT,
        )

    rows: list[dict[str, Any]] = []
    for cost in costs:
        result = cost.result
        if not isinstance(result, dict):
            raise fail("not a result object", cost, "")
        start, end = _epoch_seconds(cost.start), _epoch_seconds(cost.end)
        if start is None or end is None or end <= start:
            field = "start_time" if start is None else "end_time"
            given = cost.start if start is None else cost.end
            millis = _epoch_seconds(int(given) // 1000) if str(given).isdigit() else None
            raise fail(
                "bucket start_time/end_time are not epoch seconds of 1970 to 2262 "
                "(or end_time is not after start_time)"
                + (
                    "; this looks like milliseconds, the Costs API gives seconds"
                    if millis is not None and len(str(given)) == 13
                    else ""
                ),
                cost,
                field,
                cost.start if start is None else cost.end,
            )
        day_start = start - start % 86400
        if end > day_start + 86400:
            raise fail(
                "bucket spans more than one UTC day (use bucket_width=1d)", cost, "end_time", end
            )
        day = datetime.fromtimestamp(day_start, tz=UTC).strftime("%Y-%m-%d")
        amount = result.get("amount")
        value: Any
        currency: Any = None
        if isinstance(amount, dict):
            if "value" not in amount:
                raise fail("result without amount.value", cost, "amount")
            value, currency = amount["value"], amount.get("currency")
        else:
            value = amount  # a client that flattened {value, currency} into a number
        exact = _number(value)
        if exact is None:
            raise fail("amount.value is not a number", cost, "amount.value", value)
        if abs(exact) >= _MAX_AMOUNT:
            raise fail("amount.value is too large (12 digits at most)", cost, "amount.value", value)
        quantity = result.get("quantity")
        quantity_exact = None
        if quantity is not None and quantity != "":
            quantity_exact = _number(quantity)
            if quantity_exact is None:
                raise fail("quantity is not a number", cost, "quantity", quantity)
            if abs(quantity_exact) >= _MAX_AMOUNT:
                raise fail("quantity is too large (12 digits at most)", cost, "quantity", quantity)
            if quantity_exact < 0:
                raise fail("a negative quantity", cost, "quantity", quantity)
        for name in ("line_item", "project_id", "project_name", "quantity_unit"):
            named = result.get(name)
            if named is not None and not isinstance(named, str):
                # Names are strings: a nested object or a boolean is not a project or an item.
                raise fail(f"{name} is not a string", cost, name, json.dumps(named, default=str))
        if currency is not None and not isinstance(currency, str):
            raise fail("amount.currency is not a string", cost, "amount.currency", currency)
        item = result.get("line_item")
        unit = result.get("quantity_unit")
        project = result.get("project_id") or result.get("project_name")
        rows.append(
            {
                "line": len(rows) + 1,
                "source_line": cost.line if cost.line is not None else len(rows) + 1,
                "project": None if project is None else str(project),
                "day": day,
                "line_item": None if item is None or str(item).strip() == "" else str(item),
                # Costs are summed to the millionth (half up); finer digits are noise.
                "amount_micro": int(exact.scaleb(6).quantize(Decimal(1), rounding=ROUND_HALF_UP)),
                "currency": str(currency or "").strip().upper() or None,
                "quantity_micro": None
                if quantity_exact is None
                else int(quantity_exact.scaleb(6).quantize(Decimal(1), rounding=ROUND_HALF_UP)),
                "unit": None if unit is None or str(unit).strip() == "" else str(unit).strip(),
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "line",
            "source_line",
            "project",
            "day",
            "line_item",
            "amount_micro",
            "currency",
            "quantity_micro",
            "unit",
        ],
    )
    currencies = sorted(frame["currency"].dropna().unique())
    if len(currencies) > 1:
        raise InvoiceError(f"costs in several currencies ({', '.join(currencies)})", path=source)
    n = len(frame)
    lines = pd.DataFrame(
        {
            "source_line": frame["source_line"].astype("int64"),
            "line": frame["line"].astype("int64"),
            "invoice_id": pd.Series(pd.NA, index=frame.index, dtype="string"),
            "job_id": pd.Series(pd.NA, index=frame.index, dtype="string"),
            "project": frame["project"].astype("string"),
            "day": frame["day"].astype("string"),
            "line_type": _costs_category(frame["line_item"], frame["unit"]),
            "charge_at": pd.Series(pd.NA, index=frame.index, dtype="Int64"),
            "description": frame["line_item"].astype("string"),
            "grader_model": pd.Series(pd.NA, index=frame.index, dtype="string"),
            "grader_family": pd.Series(pd.NA, index=frame.index, dtype="string"),
            "token_type": pd.Series([""] * n, index=frame.index, dtype="string"),
            "quantity_micro": frame["quantity_micro"].astype("Int64"),
            "unit": frame["unit"].astype("string"),
            "unit_price_micro": pd.Series(pd.NA, index=frame.index, dtype="Int64"),
            "amount_micro": frame["amount_micro"].astype("int64"),
            "currency": frame["currency"].astype("string"),
        }
    )
    return Invoice(
        source=source,
        invoice_id=None,
        basis="project_day",
        currency=currencies[0] if currencies else None,
        lines=lines,
        notes=tuple(notes),
    )


def _costs_category(items: pd.Series, units: pd.Series) -> pd.Series:
    """compute, data_sharing_discount, grader_tokens or other, by the line item's words; a
    line in hours (``duration_hours``) is compute whatever its text, a line in tokens never.
    A line without a line item (an export without ``group_by=line_item``) is ``unknown``:
    only its day's total can be compared."""
    text = items.fillna("").astype(str).str.lower()
    category = pd.Series("other", index=items.index, dtype="string")
    decided = pd.Series(False, index=items.index)
    hours = is_hour_unit(units)
    for name, words in COSTS_CATEGORIES.items():
        hit = pd.Series(False, index=items.index)
        for word in words:
            hit = hit | text.str.contains(word, regex=False)
        if name == "compute":
            # RFT training is billed by the hour: a training line counted in tokens is
            # another method's (supervised fine-tuning) or a fine-tuned model's usage.
            hit = (hit & ~is_token_unit(units)) | hours
        category = category.mask(hit & ~decided, name)
        decided = decided | hit
    return category.mask(~decided & items.isna(), "unknown")


# --- project ids of Costs API exports ------------------------------------------------------


def load_project_map(values: Sequence[str | Path]) -> dict[str, str]:
    """``--project-map`` values → {Costs API project id: the logs' project name}.

    Each value is ``PROJ_ID=NAME`` (``PROJ_ID=`` maps to the jobs without a project) or a
    file of such pairs: ``.json`` (an object ``{"proj_…": "name"}``) or ``.csv`` (columns
    ``project_id,project``). One id mapped twice to different names is refused.
    """
    mapping: dict[str, str] = {}

    def put(key: str, name: str, where: str | Path, line: int | None = None) -> None:
        key, name = key.strip(), name.strip()
        if not key:
            raise InvoiceError(
                "a project map entry without a project id",
                path=where,
                line=line,
                value=f"{key}={name}",
                hint="write PROJ_ID=NAME, e.g. --project-map proj_abc=ranker",
            )
        if key in mapping and mapping[key] != name:
            raise InvoiceError(
                f"project id {key!r} mapped to {mapping[key]!r} and to {name!r}",
                path=where,
                line=line,
            )
        mapping[key] = name

    for value in values:
        text = str(value)
        path = Path(text)
        if "=" in text and not path.is_file():
            key, _, name = text.partition("=")
            put(key, name, "--project-map")
            continue
        if not path.is_file():
            raise InvoiceError(
                "not PROJ_ID=NAME and no such file",
                path="--project-map",
                value=text[:60],
                hint="write PROJ_ID=NAME (e.g. proj_abc=ranker) or name a .json / .csv file",
            )
        try:
            body = path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise InvoiceError(
                f"cannot read the project map: {why_unreadable(exc)}", path=path
            ) from exc
        except UnicodeDecodeError as exc:
            raise InvoiceError(
                f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path
            ) from exc
        if path.name.lower().endswith(".json"):
            try:
                document = json.loads(body)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise InvoiceError(f"not JSON: {exc}", path=path) from exc
            _refuse_lone_surrogate_in(body, document, path)
            if not isinstance(document, dict) or not all(
                isinstance(v, str) for v in document.values()
            ):
                raise InvoiceError(
                    'a project map is a JSON object {"proj_…": "project name"}', path=path
                )
            for key, name in document.items():
                put(str(key), name, path)
        else:
            rows = list(csv.reader(io.StringIO(body)))
            start = (
                1 if rows and rows[0] and rows[0][0].strip().lower() in ("project_id", "id") else 0
            )
            for number, row in enumerate(rows[start:], start=start + 1):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != 2:
                    raise InvoiceError(
                        f"a project map row has two fields (project_id,project), not {len(row)}",
                        path=path,
                        line=number,
                        value=",".join(row)[:60],
                    )
                put(row[0], row[1], path, number)
    return mapping
