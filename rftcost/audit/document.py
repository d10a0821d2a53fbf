"""The ``rftcost.audit/v1`` document: the report, its summary and comparisons, and writers.

``build_report`` turns an audit's findings into an ``AuditReport`` (tolerance applied,
findings sorted by ``SEVERITY_ORDER`` and money, the summary added up), and the
report writes its own JSON document (``AuditReport.to_dict``) and dispute rows
(``AuditReport.dispute_rows``): the one writer of each, used by the CLI and the HTML
report alike.

``write_audit`` and ``write_dispute`` write those documents to a stream a chunk of
findings at a time (issue 16): the same bytes as ``json.dumps(report.to_dict(),
indent=2, ensure_ascii=False)`` and the CSV of every row, never the whole text held.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from rftcost.audit.model import (
    SEVERITY_ORDER,
    Finding,
    amount_text,
    micro_of,
    micro_to_decimal,
)
from rftcost.audit.wording import orphan_note, unpriced_note
from rftcost.csvsafe import neutralise_csv_cell, neutralise_csv_row
from rftcost.json_layout import TextSink, write_document
from rftcost.money import format_amount

__all__ = [
    "AUDIT_SCHEMA",
    "DISPUTE_COLUMNS",
    "FINDING_COLUMNS",
    "AuditReport",
    "AuditSummary",
    "Comparison",
    "TextSink",
    "build_report",
    "write_audit",
    "write_dispute",
]

AUDIT_SCHEMA = "rftcost.audit/v1"

DISPUTE_COLUMNS = (
    "invoice",
    "invoice_line",
    "job_id",
    "line_type",
    "kind",
    "severity",
    "currency",
    "expected",
    "billed",
    "difference",
    "explanation",
    "evidence",
)
"""Columns of the dispute CSV (``AuditReport.dispute_rows``)."""

FINDING_COLUMNS = (
    "severity",
    "kind",
    "job_id",
    "invoice_line",
    "invoice_lines",
    "line_type",
    "charge_at",
    "grader_model",
    "token_type",
    "project",
    "day",
    "expected",
    "billed",
    "difference",
    "also",
    "explanation",
    "evidence",
)
"""Columns of the findings CSV (``AuditReport.finding_rows``)."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_CHUNK = 1_000
"""Findings (or comparisons) laid out at a time by the writers."""


class AuditSummary(BaseModel):
    """Totals of an audit: expected, billed, and where the difference goes."""

    model_config = _FROZEN

    expected_total: Decimal
    """What the logs support for the lines checked (every valid job in the logs)."""
    billed_total: Decimal
    """What the invoice bills for them (the invoice total less ``unchecked_total``)."""
    difference: Decimal
    """billed − expected; the sum of the findings' differences."""
    findings: int
    """Number of findings (all severities)."""
    overbilled: Decimal
    """Sum of the positive differences."""
    underbilled: Decimal
    """Sum of the negative differences, as a positive amount."""
    invoice_total: Decimal
    """The invoice's total (its ``total`` line, else the sum of its lines)."""
    unchecked_total: Decimal
    """Lines the logs cannot check: credits, adjustments, tax, other costs, invalid jobs."""
    unchecked_lines: int = 0
    """How many lines ``unchecked_total`` adds up: with any, the invoice is never said to
    match the logs, even when their amounts net to zero (a credit and a tax of 10.00)."""
    unverifiable_total: Decimal = Decimal("0.00")
    """Of the unchecked money, what the logs should have checked and cannot: lines of jobs
    whose logs are invalid, unreadable lines and the other lines of their jobs (each an
    error finding). Said in ``notes`` in the JSON document, whose summary keeps its keys."""
    errors: int
    """Findings of severity error."""
    warnings: int
    """Findings of severity warning."""
    infos: int
    """Findings of severity info."""
    unreadable_amounts: int = 0
    """Lines set aside whose amount cannot be read: ``unverifiable_total`` is then its
    known part, "+ unknown", and so is ``invoice_total`` unless a ``total`` line states
    it (``invoice_total_known``)."""
    invoice_total_known: bool = True
    """Whether ``invoice_total`` is the whole invoice: False when a line's amount cannot be
    read and no ``total`` line states it (the JSON document's ``invoice_total`` is then
    null: a total with a part unknown is no total)."""


class Comparison(BaseModel):
    """One project, day and category of a Costs API export, against the logs."""

    model_config = _FROZEN

    project: str | None
    """The export's project (mapped to the logs' project name); ``None``: all projects."""
    day: str
    """UTC day."""
    line_type: str | None
    """compute, data_sharing_discount, grader_tokens, or ``None``: the day's total (the export
    names no line item)."""
    expected: Decimal
    """What the logs charge."""
    billed: Decimal
    """What the export bills."""
    expected_quantity: Decimal | None = None
    """Hours (compute) or tokens (grader tokens) in the logs."""
    billed_quantity: Decimal | None = None
    """The export's ``quantity``, when every line of the cell gives one in a matching unit."""
    quantity_unit: str | None = None
    """``hours`` or ``tokens``."""
    jobs: tuple[str, ...] = ()
    """The jobs charged there."""

    def to_dict(self) -> dict[str, Any]:
        """Amounts as two-decimal strings, quantities as decimal strings."""
        return {
            "project": self.project,
            "day": self.day,
            "line_type": self.line_type,
            "expected": amount_text(self.expected),
            "billed": amount_text(self.billed),
            "difference": amount_text(self.billed - self.expected),
            "expected_quantity": None
            if self.expected_quantity is None
            else f"{self.expected_quantity:f}",
            "billed_quantity": None
            if self.billed_quantity is None
            else f"{self.billed_quantity:f}",
            "quantity_unit": self.quantity_unit,
            "jobs": list(self.jobs),
        }


class AuditReport(BaseModel):
    """The result of ``audit_invoice``."""

    model_config = _FROZEN

    invoice: str | None
    """The invoice id(s)."""
    source: str
    """The invoice file."""
    currency: str
    """Currency of every amount."""
    policy: str
    """The policy the logs were billed under."""
    basis: Literal["job", "project_day"]
    """``job``: lines compared per job (and charge); ``project_day``: per project and UTC day."""
    comparison: str
    """How lines were compared, in words."""
    tolerance: Decimal
    """Differences up to this amount are reported with severity info."""
    summary: AuditSummary
    """Totals."""
    findings: tuple[Finding, ...]
    """Sorted by severity, then money."""
    lines: int
    """Invoice lines read."""
    jobs: int
    """Jobs in the logs."""
    notes: tuple[str, ...] = ()
    """What the audit could not compare, or compared another way, and the vendor's own
    figures that agree (an export without line items, its quantities, skipped rows)."""
    comparisons: tuple[Comparison, ...] = ()
    """Costs API exports: every project, day and category compared (agreeing or not)."""
    unpriced_jobs: tuple[str, ...] = ()
    """Jobs whose logs are invalid and that no line bills: their charges are unknown, in no
    expected total (said in a note, and in the document's ``unpriced_jobs``)."""
    unnamed_project: str = "(all)"
    """How a Costs finding without a project is named in tables and the dispute CSV:
    ``(none)`` when the export is grouped by project (the jobs of no project), ``(all)``
    when it is not (every project)."""
    orphan_records: int = 0
    """Rejected records of the logs whose job could not be read (``Bill.orphan_records``):
    some job's charges may be missing from the expected total (said in a note)."""

    @property
    def expected_unknown(self) -> bool:
        """Whether the expected total leaves out charges the logs cannot establish
        (``unpriced_jobs``, ``orphan_records``): it is then a known part, "+ unknown"."""
        return bool(self.unpriced_jobs or self.orphan_records)

    @property
    def has_errors(self) -> bool:
        """True when a finding of severity error remains (the CLI exits 1)."""
        return self.summary.errors > 0

    def to_dict(self) -> dict[str, Any]:
        """The ``rftcost.audit/v1`` document (cli-and-outputs.md), with added fields."""
        s = self.summary
        return {
            "schema": AUDIT_SCHEMA,
            "invoice": self.invoice,
            "currency": self.currency,
            "summary": {
                "expected_total": amount_text(s.expected_total),
                "billed_total": amount_text(s.billed_total),
                "difference": amount_text(s.difference),
                "findings": s.findings,
                "overbilled": amount_text(s.overbilled),
                "underbilled": amount_text(s.underbilled),
                "invoice_total": amount_text(s.invoice_total) if s.invoice_total_known else None,
                "unchecked_total": amount_text(s.unchecked_total),
                "unchecked_lines": s.unchecked_lines,
                "errors": s.errors,
                "warnings": s.warnings,
                "infos": s.infos,
                # The expected total is a known part ("+ unknown"): charges of invalid jobs
                # no line bills, or of records of no known job, cannot be established.
                "expected_unknown": self.expected_unknown,
            },
            "findings": [f.to_dict() for f in self.findings],
            "policy": self.policy,
            "basis": self.basis,
            "comparison": self.comparison,
            "tolerance": amount_text(self.tolerance),
            "source": self.source,
            "lines": self.lines,
            "jobs": self.jobs,
            "notes": list(self.notes),
            "unpriced_jobs": list(self.unpriced_jobs),
            "orphan_records": self.orphan_records,
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    def finding_rows(self) -> list[dict[str, Any]]:
        """Every finding as one CSV row (lists joined with ``;``, evidence by description).

        Names come from files a person did not write: every text cell is neutralised
        against spreadsheet formulas (``neutralise_csv_cell``).
        """
        return [row for chunk in self.iter_finding_rows() for row in chunk]

    def iter_finding_rows(self, chunk: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """The rows of ``finding_rows``, ``chunk`` findings at a time."""
        chunk = chunk or _CHUNK
        for start in range(0, len(self.findings), chunk):
            rows = []
            for finding in self.findings[start : start + chunk]:
                record = finding.to_dict()
                record["invoice_lines"] = ";".join(str(n) for n in record["invoice_lines"])
                record["also"] = ";".join(record["also"])
                record["evidence"] = "; ".join(e["description"] for e in record["evidence"])
                rows.append(
                    {
                        k: neutralise_csv_cell(v) if isinstance(v, str) else v
                        for k, v in record.items()
                    }
                )
            yield rows

    def dispute_rows(self) -> list[dict[str, str]]:
        """The findings worth raising with the vendor (errors and warnings about the invoice).

        ``invalid_job`` findings are left out: they are about the user's own logs. Every
        cell is neutralised against spreadsheet formulas (``neutralise_csv_cell``).
        """
        return [row for chunk in self.iter_dispute_rows() for row in chunk]

    def iter_dispute_rows(self, chunk: int | None = None) -> Iterator[list[dict[str, str]]]:
        """The rows of ``dispute_rows``, from ``chunk`` findings at a time."""
        chunk = chunk or _CHUNK
        for start in range(0, len(self.findings), chunk):
            rows = []
            for f in self.findings[start : start + chunk]:
                if f.severity == "info" or f.kind == "invalid_job":
                    continue
                row = {
                    "invoice": self.invoice or "",
                    "invoice_line": ";".join(str(n) for n in f.invoice_lines)
                    or ("" if f.invoice_line is None else str(f.invoice_line)),
                    "job_id": f.job_id
                    or (f"{f.project or self.unnamed_project} {f.day}" if f.day else ""),
                    "line_type": f.line_type or "",
                    "kind": f.kind,
                    "severity": f.severity,
                    "currency": self.currency,
                    "expected": amount_text(f.expected) or "",
                    "billed": amount_text(f.billed) or "",
                    "difference": amount_text(f.difference) or "",
                    "explanation": f.explanation,
                    "evidence": "; ".join(e.description for e in f.evidence),
                }
                # Job ids and descriptions come from files a person did not write: no cell of
                # the dispute CSV may be run by a spreadsheet (amounts keep their sign).
                rows.append({k: neutralise_csv_cell(v) for k, v in row.items()})
            yield rows


def write_audit(
    report: AuditReport, stream: TextSink, output_format: Literal["json", "csv"]
) -> None:
    """Write ``report`` as its ``rftcost.audit/v1`` JSON document (``to_dict``, laid out as
    ``json.dumps(indent=2, ensure_ascii=False)`` with a final newline) or as the findings
    CSV (``FINDING_COLUMNS``, the csv module's dialect), a chunk of findings at a time."""
    if output_format == "csv":
        writer = csv.DictWriter(stream, fieldnames=list(FINDING_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for rows in report.iter_finding_rows():
            writer.writerows(neutralise_csv_row(row) for row in rows)
        return
    emptied = report.model_copy(update={"findings": (), "comparisons": ()})
    lists = {
        "findings": (
            [f.to_dict() for f in report.findings[i : i + _CHUNK]]
            for i in range(0, len(report.findings), _CHUNK)
        ),
        "comparisons": (
            [c.to_dict() for c in report.comparisons[i : i + _CHUNK]]
            for i in range(0, len(report.comparisons), _CHUNK)
        ),
    }
    write_document(stream, emptied.to_dict(), lists)


def write_dispute(report: AuditReport, stream: TextSink) -> None:
    """Write the dispute CSV (``DISPUTE_COLUMNS``, the csv module's dialect), a chunk of
    findings at a time."""
    writer = csv.DictWriter(stream, fieldnames=list(DISPUTE_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for rows in report.iter_dispute_rows():
        writer.writerows(neutralise_csv_row(row) for row in rows)


def _within_tolerance(
    findings: Sequence[Finding], tolerance: Decimal, currency: str
) -> list[Finding]:
    """Findings whose difference is at most ``tolerance`` become info, saying so."""
    tolerance_micro = micro_of(tolerance)
    kept = []
    for f in findings:
        if (
            f.difference is not None
            and f.severity != "info"
            and abs(micro_of(f.difference)) <= tolerance_micro
        ):
            f = f.model_copy(
                update={
                    "severity": "info",
                    "explanation": f.explanation
                    + f" (within the tolerance of {format_amount(tolerance)} {currency})",
                }
            )
        kept.append(f)
    return kept


def build_report(
    *,
    invoice: Any,
    bill: Any,
    tolerance: Decimal,
    comparison: str,
    findings: Sequence[Finding],
    totals: tuple[int, int, int, int],
    notes: Sequence[str] = (),
    comparisons: Sequence[Comparison] = (),
    unverifiable: int = 0,
    unpriced_jobs: Sequence[str] = (),
    unchecked_lines: int = 0,
    invoice_total_known: bool | None = None,
    unnamed_project: str = "(all)",
) -> AuditReport:
    """The report of an audit: ``totals`` are (expected, billed, invoice total, unchecked) in
    millionths; findings keep their order where severity and money tie.
    ``invoice_total_known``: whether the invoice total is whole (default: no line's amount
    unreadable, or a total line states it)."""
    currency = str(bill.policy.currency)
    ordered = _within_tolerance(findings, tolerance, currency)
    ordered.sort(
        key=lambda f: (
            SEVERITY_ORDER[f.severity],
            -(abs(f.difference) if f.difference is not None else Decimal(-1)),
            f.job_id or "",
            f.invoice_line if f.invoice_line is not None else -1,
            f.kind,
        )
    )
    expected, billed, invoice_total, unchecked = totals
    orphans = int(bill.orphan_records())
    rejected = invoice.rejected
    unreadable = int(rejected["amount_micro"].isna().sum()) if len(rejected) else 0
    differences = [micro_of(f.difference) for f in ordered if f.difference is not None]
    summary = AuditSummary(
        expected_total=micro_to_decimal(expected),
        billed_total=micro_to_decimal(billed),
        difference=micro_to_decimal(billed - expected),
        findings=len(ordered),
        overbilled=micro_to_decimal(sum(d for d in differences if d > 0)),
        underbilled=micro_to_decimal(-sum(d for d in differences if d < 0)),
        invoice_total=micro_to_decimal(invoice_total),
        unchecked_total=micro_to_decimal(unchecked),
        unchecked_lines=unchecked_lines,
        unverifiable_total=micro_to_decimal(unverifiable),
        unreadable_amounts=unreadable,
        invoice_total_known=(
            not unreadable or bool((invoice.lines["line_type"] == "total").any())
            if invoice_total_known is None
            else invoice_total_known
        ),
        errors=sum(f.severity == "error" for f in ordered),
        warnings=sum(f.severity == "warning" for f in ordered),
        infos=sum(f.severity == "info" for f in ordered),
    )
    return AuditReport(
        invoice=invoice.invoice_id,
        source=invoice.source,
        currency=currency,
        policy=str(bill.policy.name),
        basis=invoice.basis,
        comparison=comparison,
        tolerance=tolerance,
        summary=summary,
        findings=tuple(ordered),
        lines=len(invoice.lines),
        jobs=len(bill.jobs),
        notes=(*invoice.notes, *notes, *unpriced_note(list(unpriced_jobs)), *orphan_note(orphans)),
        comparisons=tuple(comparisons),
        unpriced_jobs=tuple(unpriced_jobs),
        orphan_records=orphans,
        unnamed_project=unnamed_project,
    )
