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
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TextIO

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from rftcost.billing import (
    DOCUMENT_CHUNK_JOBS,
    Bill,
    BillTotals,
    bill_head,
    document_notes,
    job_sums,
    orphan_records,
    totals_document,
    totals_from_sums,
    zero_sums,
)
from rftcost.csvsafe import neutralise_csv_frame, neutralise_csv_row
from rftcost.events.readers import EventLog
from rftcost.json_layout import (
    TextSink,
    around_lists,
    close_list,
    item_text,
    write_document,
)
from rftcost.policy import Policy

if TYPE_CHECKING:  # only a signature: a bill does not import the spend module
    from rftcost.spend import SpendReport

__all__ = [
    "VALIDATE_SCHEMA",
    "BillCsvWriter",
    "BillJsonWriter",
    "BillWriter",
    "SpooledJobs",
    "TextSink",
    "bill_writer",
    "spool_jobs",
    "write_bill",
    "write_spend",
    "write_validation",
]

_CSV_CHUNK_JOBS = 10 * DOCUMENT_CHUNK_JOBS
"""Rows of CSV laid out at a time: text rows are small, and pandas' column operations
cost per call, so larger pieces than the JSON's chunk of job objects."""


class BillWriter:
    """Writes one ``rftcost.bill`` output from one or more bills of disjoint jobs.

    ``add`` each bill (the whole log's, or one bucket's), then ``finish`` with what
    was read. Jobs are written in the order of their ids, as a bill made at once
    has them: ``add`` writes a bill's jobs at once when no other bill follows or
    when bills come in that order; ``adopt`` takes a bill's jobs set aside on disk
    instead (one file per bill, laid out already by ``spool_jobs``, in the worker
    that made it: ``spooler``), and ``finish`` merges the files in job order (for
    buckets, whose jobs interleave). ``totals()`` are the sums
    of the bills given, exact (integer sums, ``billing.job_sums``), as if the jobs
    were billed at once.
    """

    output_format: ClassVar[Literal["json", "csv"]]

    def __init__(self, stream: TextSink, policy: Policy) -> None:
        self.stream = stream
        self.policy = policy
        self._sums = zero_sums()
        self._spooled: list[SpooledJobs] = []

    def add(self, bill: Bill) -> None:
        """Write ``bill``'s jobs now and add its sums to the totals."""
        self._count(bill)
        for chunk in self._texts(bill, keyed=False):
            self._write(text for _, text in chunk)

    def spooler(self) -> Callable[[Bill, Path], SpooledJobs]:
        """``spool_jobs`` for this writer's format: run by the process that made a bill
        (``then`` of ``buckets.bucketed``), its result given to ``adopt``."""
        return partial(spool_jobs, output_format=self.output_format)

    def adopt(self, spooled: SpooledJobs) -> None:
        """Take jobs spooled by ``spool_jobs`` (in this process or another) for
        ``finish``; add their sums to the totals."""
        self._sums = {key: self._sums[key] + value for key, value in spooled.sums.items()}
        self._spooled.append(spooled)

    def totals(self) -> BillTotals:
        """Totals over every bill given so far."""
        return totals_from_sums(self._sums, self.policy)

    def finish(self, log: EventLog | None) -> None:
        """Write the spooled jobs in job order, then what follows the jobs (notes, totals,
        record counts of ``log``)."""
        if self._spooled:
            self._adopt_header(self._spooled)
            spooled = [s for s in self._spooled if s.first_job is not None]
            with ExitStack() as files:
                opened = [
                    _spooled_jobs(files.enter_context(_open_spool(s.path, "r"))) for s in spooled
                ]
                # Jobs of a log written in id order arrive in order: no merge to pay.
                in_order = all(
                    str(before.last_job) < str(after.first_job)
                    for before, after in itertools.pairwise(spooled)
                )
                jobs = (
                    itertools.chain.from_iterable(opened)
                    if in_order
                    else heapq.merge(*opened, key=lambda pair: pair[0])
                )
                for batch in iter(lambda: list(itertools.islice(jobs, DOCUMENT_CHUNK_JOBS)), []):
                    self._write(text for _, text in batch)
            for each in self._spooled:
                each.path.unlink(missing_ok=True)
            self._spooled = []
        self._finish(log)

    def _count(self, bill: Bill) -> None:
        sums = job_sums(bill.jobs)
        self._sums = {key: self._sums[key] + value for key, value in sums.items()}

    def _adopt_header(self, spooled: list[SpooledJobs]) -> None:
        """What a writer must know of the spooled layout before writing it (CSV: the
        header row)."""

    def _header_text(self) -> str | None:
        """The header its layout of jobs starts with (CSV), for ``SpooledJobs``."""
        return None

    def _texts(self, bill: Bill, *, keyed: bool) -> Iterator[list[tuple[str, str]]]:
        """(job id, laid-out text) of ``bill``'s jobs, a chunk at a time (a writer may give
        a chunk's text whole, with no job id, unless ``keyed``)."""
        raise NotImplementedError

    def _write(self, texts: Iterable[str]) -> None:
        raise NotImplementedError

    def _finish(self, log: EventLog | None) -> None:
        raise NotImplementedError


class SpooledJobs(BaseModel):
    """A bill's jobs laid out in a spool file (``spool_jobs``), and what a writer needs
    of that bill besides: the sums of its jobs, the ids of its first and last job (in
    order), its log (record counts), and the header its layout starts with (CSV)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    path: Path
    sums: dict[str, int]
    first_job: str | None
    last_job: str | None
    log: EventLog | None
    header: str | None = None


def spool_jobs(bill: Bill, folder: Path, *, output_format: Literal["json", "csv"]) -> SpooledJobs:
    """Lay out ``bill``'s jobs into a new file in ``folder`` for ``BillWriter.adopt``.

    Meant to run where the bill was made (a worker billing a bucket), so that the
    layout, most of the cost of writing, is spread over the workers, and only the sums
    and the log cross to the writing process. Each job is a header line (the lengths of
    its id and of its text, in characters) then its id and text, unescaped.
    """
    layout = bill_writer(output_format, _Discarded(), bill.policy)
    fd, name = tempfile.mkstemp(prefix="document-", suffix=".spool", dir=folder)
    os.close(fd)
    with _open_spool(Path(name), "w") as handle:
        for chunk in layout._texts(bill, keyed=True):
            handle.write("".join(f"{len(job)} {len(text)}\n{job}{text}" for job, text in chunk))
    ids = bill.jobs["job_id"]
    return SpooledJobs(
        path=Path(name),
        sums=job_sums(bill.jobs),
        first_job=str(ids.iloc[0]) if len(ids) else None,
        last_job=str(ids.iloc[-1]) if len(ids) else None,
        log=bill.log,
        header=layout._header_text(),
    )


def _open_spool(path: Path, mode: Literal["r", "w"]) -> TextIO:
    # Text goes through the spool as it came, whatever it holds (even a lone surrogate).
    return path.open(mode, encoding="utf-8", errors="surrogatepass", newline="")


class _Discarded:
    """The stream of a writer used only to lay out jobs (``spool_jobs``)."""

    def write(self, text: str, /) -> int:
        raise AssertionError("a spooling writer writes to its spool file only")


def _spooled_jobs(handle: TextIO) -> Iterator[tuple[str, str]]:
    """(job id, text) of a file ``spool_jobs`` wrote, in its order."""
    for header in iter(handle.readline, ""):
        job, _, text = header.partition(" ")
        yield handle.read(int(job)), handle.read(int(text))


class BillJsonWriter(BillWriter):
    """The ``rftcost.bill/v1`` document, laid out as ``json.dumps(indent=2)`` lays out
    ``Bill.to_dict()`` plus ``"records"`` (the counts of what was read), job by job."""

    output_format = "json"

    def __init__(self, stream: TextSink, policy: Policy) -> None:
        super().__init__(stream, policy)
        # Written with the first job (or at the end): jobs spooled for a merge reach the
        # stream only once every bill is in, so a failure before then writes nothing.
        self._head: str | None = around_lists({**bill_head(policy), "jobs": []}, ["jobs"])[0]
        self._jobs_written = 0

    def _begin(self) -> None:
        if self._head is not None:
            self.stream.write(self._head)
            self._head = None

    def _texts(self, bill: Bill, *, keyed: bool) -> Iterator[list[tuple[str, str]]]:
        for chunk in bill.iter_job_documents():
            yield [(job["job_id"], item_text(job)) for job in chunk]

    def _write(self, texts: Iterable[str]) -> None:
        self._begin()
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
            "totals": totals_document(self.totals(), orphan_records=orphan_records(log)),
        }
        if log is not None:
            document["records"] = log.counts()
        self._begin()
        _, after = around_lists(document, ["jobs"])
        self.stream.write(close_list(bool(self._jobs_written)) + after + "\n")


class BillCsvWriter(BillWriter):
    """The bill as CSV: one row per job (``Bill.jobs_table``) with the policy and currency,
    text cells a spreadsheet would run as formulas neutralised (``csvsafe``)."""

    output_format = "csv"

    def __init__(self, stream: TextSink, policy: Policy) -> None:
        super().__init__(stream, policy)
        self._header: str | None = None
        self._header_written = False

    def _adopt_header(self, spooled: list[SpooledJobs]) -> None:
        if self._header is None:
            self._header = next((s.header for s in spooled if s.header is not None), None)

    def _header_text(self) -> str | None:
        return self._header

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
            if len(rows) != len(table):  # a cell with a line break spans lines
                rows = self._row_texts(table)
            else:
                rows = [row + "\n" for row in rows]
            yield list(zip(table["job_id"].astype(str), rows, strict=True))

    def _row_texts(self, table: pd.DataFrame) -> list[str]:
        """Each row's text, when some cell holds a line break: those rows are laid out one
        by one, the others at once (a row at a time for all would make a few such names
        cost a chunk's worth of calls each)."""
        broken = np.zeros(len(table), dtype=bool)
        for column in table.columns:
            if not pd.api.types.is_numeric_dtype(table[column].dtype):
                cells = table[column].astype(str)
                broken |= cells.str.contains("\n", regex=False).to_numpy(dtype=bool)
        plain = self._rows(table[~broken], header=False).split("\n")[:-1]
        if len(plain) != int((~broken).sum()):  # a break not found above: row by row
            broken[:] = True
        rows = iter(plain)
        return [
            self._rows(table.iloc[i : i + 1], header=False) if spans else next(rows) + "\n"
            for i, spans in enumerate(broken.tolist())
        ]

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
    write_document(stream, report.to_dict(rows=False), {"rows": report.iter_rows()})


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
        "rejected": [],  # written a chunk at a time
        "problems": bill.problems.to_dict("records"),
        "notes": list(log.notes),
    }
    write_document(stream, document, {"rejected": chunks})


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
