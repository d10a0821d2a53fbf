"""One writer per output document, streamed to a text stream.

Every path that produces a bill (in memory, bucket by bucket, Spark) writes it
through the writers here, so the document is the same bytes whichever path made
it. A writer takes bills one after another (one bill, or a bucket's bill at a
time) and writes their jobs a chunk at a time (``billing.DOCUMENT_CHUNK_JOBS``):
memory is bounded by a chunk of jobs and the largest job, never by the whole
document held as text or as Python objects.

The content of ``rftcost.bill/v1`` (its keys, their order, how an amount or an
hour is written) is defined once, in ``billing`` (``bill_head``,
``Bill.iter_job_documents``, ``totals_document``), which ``Bill.to_dict`` uses
too; this module only lays it out as JSON (the layout of ``json.dumps(document,
indent=2, ensure_ascii=False)``) or CSV. The same holds for ``rftcost.spend/v1``
(``SpendReport.to_dict`` and ``iter_rows``). Terminal safety (control characters)
is the command line's job, applied to the stream it hands in.

JSON Schemas of the documents are published in ``schemas/`` (``bill-v1``,
``estimate-v1``, ``watch-v1``) and the tests validate the documents against them.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
import pandas as pd

from rftcost.billing import (
    DOCUMENT_CHUNK_JOBS,
    Bill,
    BillTotals,
    bill_head,
    document_notes,
    job_sums,
    totals_document,
    totals_from_sums,
    zero_sums,
)
from rftcost.csvsafe import neutralise_csv_frame, neutralise_csv_row
from rftcost.events.readers import EventLog
from rftcost.policy import Policy
from rftcost.spend import SpendReport

__all__ = [
    "VALIDATE_SCHEMA",
    "BillCsvWriter",
    "BillJsonWriter",
    "BillWriter",
    "TextSink",
    "bill_writer",
    "write_bill",
    "write_spend",
    "write_validation",
]

_INDENT = 2
"""Spaces per level, as ``json.dumps(indent=2)``; a job object sits two levels deep."""
_JOB_MARGIN = "\n" + " " * (2 * _INDENT)
_CSV_CHUNK_JOBS = 10 * DOCUMENT_CHUNK_JOBS
"""Rows of CSV laid out at a time: text rows are small, and pandas' column operations
cost per call, so larger pieces than the JSON's chunk of job objects."""
_MARKER = "\x00jobs\x00"
"""Stands for the jobs while the document around them is laid out (never in a bill:
JSON escapes a NUL, and the layout is split at the escaped form)."""


class TextSink(Protocol):
    """Where a document is written: anything with ``write(text)`` (a file, stdout)."""

    def write(self, text: str, /) -> int:
        """Write ``text``."""
        ...


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=_INDENT, ensure_ascii=False)


_quoted = json.encoder.encode_basestring  # the C encoder's, as json.dumps(ensure_ascii=False)
_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _laid_out(value: Any, margin: str) -> str:
    """``value`` as ``json.dumps(value, indent=2, ensure_ascii=False)`` lays it out at
    ``margin``: the same bytes, encoded by orjson (json's indented encoder is pure Python,
    and was most of the time of writing a large bill).

    orjson's indented layout is json's, with two differences put right here: a float
    below 1e-4 is written ``0.00001`` or ``1e-9`` where Python writes ``1e-05`` and
    ``1e-09`` (the digits are the same shortest round trip), so such a number is written
    again as Python writes it; and what orjson refuses or would write differently (a
    lone surrogate, an integer beyond 64 bits, a key that is not a string, a subclass of
    a built-in type, a date) is laid out by ``_laid_out_in_python``. NaN and infinities
    never occur in these documents (seconds come from integer nanoseconds).
    """
    try:
        text = orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _laid_out_in_python(value, margin)
    if "0.0000" in text or "e-" in text:
        text = _SMALL_FLOAT.sub(_as_python_writes_it, text)
    return text.replace("\n", "\n" + margin) if margin else text


_ORJSON_OPTIONS = (
    orjson.OPT_INDENT_2
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
"""Indented by two spaces; a date, a dataclass or a subclass of a built-in type is
refused (``json.dumps`` refuses or writes them its own way), so it falls back."""

_SMALL_FLOAT = re.compile(
    r'^( *(?:"(?:[^"\\\n]|\\.)*": )?)(-?(?:0\.0000\d*|\d+(?:\.\d+)?e-\d+))(,?)$', re.MULTILINE
)
"""A line of indented JSON whose value is a number below 1e-4 as orjson writes it (each
line holds one value: a line break inside a string is escaped, so a string's content
never starts a line)."""


def _as_python_writes_it(number: re.Match[str]) -> str:
    head, token, comma = number.groups()
    return head + float.__repr__(float(token)) + comma


def _laid_out_in_python(value: Any, margin: str) -> str:
    """``value`` as ``json.dumps(value, indent=2, ensure_ascii=False)`` lays it out at
    ``margin``: for what orjson refuses (json's indented encoder is slower still)."""
    if isinstance(value, str):
        return _quoted(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        text = float.__repr__(value)
        return _NONFINITE.get(text, text)
    inner = margin + " " * _INDENT
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = (
            inner + _quoted(key) + ": " + _laid_out_in_python(item, inner)
            for key, item in value.items()
        )
        return "{\n" + ",\n".join(items) + "\n" + margin + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        return (
            "[\n"
            + ",\n".join(inner + _laid_out_in_python(item, inner) for item in value)
            + "\n"
            + margin
            + "]"
        )
    return _dumps(value).replace("\n", "\n" + margin)  # anything else: json's own way


def _around_jobs(document: Mapping[str, Any], key: str = "jobs") -> tuple[str, str]:
    """The layout of ``document`` before and after the items of its list ``key`` (a
    top-level key): everything up to and including ``"jobs": [``, and everything from
    the closing ``]`` (no final newline)."""
    text = _dumps({**document, key: [_MARKER]})
    items = "[" + _JOB_MARGIN + _dumps(_MARKER) + "\n" + " " * _INDENT + "]"
    before, after = text.split(items)
    return before + "[", "]" + after


class BillWriter:
    """Writes one ``rftcost.bill`` output from one or more bills of disjoint jobs.

    ``add`` each bill (the whole log's, or one bucket's), then ``finish`` with what
    was read. Jobs are written in the order of their ids, as a bill made at once
    has them: ``add`` writes a bill's jobs at once when no other bill follows or
    when bills come in that order; ``spool`` sets a bill's jobs aside on disk
    instead (one file per bill, laid out already), and ``finish`` merges the files
    in job order (for buckets, whose jobs interleave). ``totals()`` are the sums
    of the bills given, exact (integer sums, ``billing.job_sums``), as if the jobs
    were billed at once.
    """

    def __init__(self, stream: TextSink, policy: Policy) -> None:
        self.stream = stream
        self.policy = policy
        self._sums = zero_sums()
        self._spooled: list[Path] = []

    def add(self, bill: Bill) -> None:
        """Write ``bill``'s jobs now and add its sums to the totals."""
        self._count(bill)
        for chunk in self._texts(bill, keyed=False):
            self._write(text for _, text in chunk)

    def spool(self, bill: Bill, folder: Path) -> None:
        """Lay out ``bill``'s jobs into a file in ``folder``, written in job order by
        ``finish``; add its sums to the totals."""
        self._count(bill)
        path = folder / f"document-{len(self._spooled):05d}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for chunk in self._texts(bill, keyed=True):
                handle.write("".join(json.dumps(pair) + "\n" for pair in chunk))
        self._spooled.append(path)

    def totals(self) -> BillTotals:
        """Totals over every bill given so far."""
        return totals_from_sums(self._sums, self.policy)

    def finish(self, log: EventLog | None) -> None:
        """Write the spooled jobs in job order, then what follows the jobs (notes, totals,
        record counts of ``log``)."""
        if self._spooled:
            with ExitStack() as files:
                merged = heapq.merge(
                    *(
                        map(json.loads, files.enter_context(p.open(encoding="utf-8")))
                        for p in self._spooled
                    ),
                    key=lambda pair: pair[0],
                )
                for batch in iter(lambda: list(itertools.islice(merged, DOCUMENT_CHUNK_JOBS)), []):
                    self._write(text for _, text in batch)
            for path in self._spooled:
                path.unlink(missing_ok=True)
            self._spooled = []
        self._finish(log)

    def _count(self, bill: Bill) -> None:
        sums = job_sums(bill.jobs)
        self._sums = {key: self._sums[key] + value for key, value in sums.items()}

    def _texts(self, bill: Bill, *, keyed: bool) -> Iterator[list[tuple[str, str]]]:
        """(job id, laid-out text) of ``bill``'s jobs, a chunk at a time (a writer may give
        a chunk's text whole, with no job id, unless ``keyed``)."""
        raise NotImplementedError

    def _write(self, texts: Iterable[str]) -> None:
        raise NotImplementedError

    def _finish(self, log: EventLog | None) -> None:
        raise NotImplementedError


class BillJsonWriter(BillWriter):
    """The ``rftcost.bill/v1`` document, laid out as ``json.dumps(indent=2)`` lays out
    ``Bill.to_dict()`` plus ``"records"`` (the counts of what was read), job by job."""

    def __init__(self, stream: TextSink, policy: Policy) -> None:
        super().__init__(stream, policy)
        before, _ = _around_jobs(bill_head(policy))
        self.stream.write(before)
        self._jobs_written = 0

    def _texts(self, bill: Bill, *, keyed: bool) -> Iterator[list[tuple[str, str]]]:
        for chunk in bill.iter_job_documents():
            yield [(job["job_id"], _JOB_MARGIN + _laid_out(job, _JOB_MARGIN[1:])) for job in chunk]

    def _write(self, texts: Iterable[str]) -> None:
        pieces = []
        for text in texts:
            pieces.append("," + text if self._jobs_written else text)
            self._jobs_written += 1
        self.stream.write("".join(pieces))

    def _finish(self, log: EventLog | None) -> None:
        document: dict[str, Any] = {
            **bill_head(self.policy),
            "jobs": [],
            "notes": document_notes(log),
            "totals": totals_document(self.totals()),
        }
        if log is not None:
            document["records"] = log.counts()
        _, after = _around_jobs(document)
        closing = "\n" + " " * _INDENT if self._jobs_written else ""
        self.stream.write(closing + after + "\n")


class BillCsvWriter(BillWriter):
    """The bill as CSV: one row per job (``Bill.jobs_table``) with the policy and currency,
    text cells a spreadsheet would run as formulas neutralised (``csvsafe``)."""

    def __init__(self, stream: TextSink, policy: Policy) -> None:
        super().__init__(stream, policy)
        self._header: str | None = None
        self._header_written = False

    def _texts(self, bill: Bill, *, keyed: bool) -> Iterator[list[tuple[str, str]]]:
        if self._header is None and bill.jobs.empty:
            self._header = self._rows(bill.jobs_table(), header=True)
        for table in bill.iter_jobs_tables(_CSV_CHUNK_JOBS):
            if self._header is None:
                self._header = self._rows(table.iloc[0:0], header=True)
            text = self._rows(table, header=False)
            if not keyed:
                yield [("", text)]
                continue
            rows = text.split("\n")[:-1]
            if len(rows) != len(table):  # a cell with a line break: lay out row by row
                rows = [self._rows(table.iloc[i : i + 1], header=False) for i in range(len(table))]
            else:
                rows = [row + "\n" for row in rows]
            yield list(zip(table["job_id"].astype(str), rows, strict=True))

    def _rows(self, table: pd.DataFrame, *, header: bool) -> str:
        rows = table.assign(policy=self.policy.name, currency=self.policy.currency)
        text: str = neutralise_csv_frame(rows).to_csv(index=False, header=header)
        return text

    def _write(self, texts: Iterable[str]) -> None:
        if not self._header_written and self._header is not None:
            self.stream.write(self._header)
            self._header_written = True
        self.stream.write("".join(texts))

    def _finish(self, log: EventLog | None) -> None:
        self._write(())  # no job: the header alone


def write_spend(
    report: SpendReport, stream: TextSink, output_format: Literal["json", "csv"]
) -> None:
    """Write ``report`` as its ``rftcost.spend/v1`` JSON document or as CSV (one line per
    row, with the policy and currency), a chunk of rows at a time."""
    if output_format == "csv":
        columns = [*report.row_keys(), "policy", "currency"]
        # The csv module's own dialect (lines end with CRLF), cells neutralised (csvsafe).
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        extra = {"policy": report.policy, "currency": report.currency}
        for chunk in report.iter_rows():
            writer.writerows(neutralise_csv_row({**row, **extra}) for row in chunk)
        return
    before, after = _around_jobs(report.to_dict(rows=False), key="rows")
    stream.write(before)
    written = 0
    for chunk in report.iter_rows():
        texts = (_JOB_MARGIN + _laid_out(row, _JOB_MARGIN[1:]) for row in chunk)
        stream.write(("," if written else "") + ",".join(texts))
        written += len(chunk)
    stream.write(("\n" + " " * _INDENT if written else "") + after + "\n")


VALIDATE_SCHEMA = "rftcost.validate/v1"

_REJECTED_CHUNK_ROWS = 50_000
"""Rejected records laid out at a time: a log of a million bad lines is never held as text."""


def write_validation(bill: Bill, stream: TextSink, output_format: Literal["json", "csv"]) -> None:
    """Write what ``rftcost validate`` reports of ``bill``'s log: the ``rftcost.validate/v1``
    document (counts, rejected records, invalid jobs, notes), or its rejected records as
    CSV (cells neutralised, ``csvsafe``); the rejected records a chunk at a time."""
    log = bill.log
    if log is None:
        raise ValueError("a bill made without its log (an EventLog) has nothing to validate")
    rejected = log.rejected.fillna("")
    chunks = (
        rejected.iloc[start : start + _REJECTED_CHUNK_ROWS].to_dict("records")
        for start in range(0, len(rejected), _REJECTED_CHUNK_ROWS)
    )
    if output_format == "csv":
        # The csv module's own dialect (lines end with CRLF), as ``rftcost spend`` writes.
        writer = csv.DictWriter(stream, fieldnames=list(rejected.columns), extrasaction="ignore")
        writer.writeheader()
        for chunk in chunks:
            writer.writerows(neutralise_csv_row(row) for row in chunk)
        return
    document = {
        "schema": VALIDATE_SCHEMA,
        "policy": bill.policy.name,
        "files": list(log.files),
        "records": log.counts(),
        "jobs": len(bill.jobs),
        "invalid_jobs": int((bill.jobs["status"] == "invalid").sum()),
        "rejected": [],
        "problems": bill.problems.to_dict("records"),
        "notes": list(log.notes),
    }
    before, after = _around_jobs(document, key="rejected")
    stream.write(before)
    written = 0
    for chunk in chunks:
        texts = (_JOB_MARGIN + _laid_out(row, _JOB_MARGIN[1:]) for row in chunk)
        stream.write(("," if written else "") + ",".join(texts))
        written += len(chunk)
    stream.write(("\n" + " " * _INDENT if written else "") + after + "\n")


def bill_writer(
    output_format: Literal["json", "csv"], stream: TextSink, policy: Policy
) -> BillWriter:
    """The writer of ``rftcost.bill`` in ``output_format`` to ``stream``."""
    if output_format == "json":
        return BillJsonWriter(stream, policy)
    return BillCsvWriter(stream, policy)


def write_bill(bill: Bill, stream: TextSink, output_format: Literal["json", "csv"]) -> None:
    """Write ``bill`` as ``rftcost.bill/v1`` JSON (with its record counts) or as CSV."""
    writer = bill_writer(output_format, stream, bill.policy)
    writer.add(bill)
    writer.finish(bill.log)
