"""Invoices × bills → findings: what was billed, what the logs say, and why they differ.

``audit_invoice`` recomputes every charge from the event logs under a policy
(``rftcost.bill``), matches the invoice's lines to it, and explains every
difference in money (invoice-audit.md).

Matching (canonical invoices, ``basis = "job"``):

1. Lines for a job with no events are ``unknown_job``; lines for a job whose logs
   cannot be reconstructed are ``invalid_job`` (never a guess); ``credit``,
   ``adjustment`` and ``tax`` lines are taken as billed (``unchecked_total``).
2. A line with ``charge_at`` is matched to the nearest billing event of its job
   within ``match_window``. When every line of a job is matched, the job is
   compared charge by charge; otherwise its lines are compared to its totals.
3. Identical lines are ``duplicate_line`` when dropping the copies brings the
   amount closer to the logs (two identical charges of a paused job are not
   duplicates).
4. Each line is checked on its own (``arithmetic_error``: quantity × unit price ≠
   amount; ``rate_mismatch``: a price other than the policy's hourly rate;
   ``grader_price_mismatch``: a token price not in force on the usage date), then
   each group (job or charge; compute, discount, grader model and token type) is
   compared to the bill. Hours billed beyond the logs are matched against the
   job's excluded intervals (``queue_time_billed``) and lost work
   (``lost_work_billed``) within one rounding step per charge; differences that
   only rounding explains are ``rounding`` (severity ``info``).
5. Jobs with charges and no line are ``unbilled_job``.

Every finding's ``difference`` is a disjoint share of the total difference: the
findings' differences add up to ``summary.difference`` (``invalid_job`` findings
carry none, their lines being unchecked).

Costs API exports (``basis = "project_day"``) name no job: their costs are
compared per project (the logs' ``project``) and UTC day (the day of each
charge's billing event), per category (compute, discount, grader tokens).

The comparison is vectorized (merges and group-bys over all lines at once);
Python loops run only over findings, whose count is what an auditor reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from rftcost.csvsafe import neutralise_csv_cell
from rftcost.errors import InvoiceError, PolicyError
from rftcost.invoice import (
    CHECKED_LINE_TYPES,
    Invoice,
    _hour_unit,
    _token_unit,
    read_invoice,
)
from rftcost.money import cents_to_decimal, divide_round, format_amount
from rftcost.prices import resolve_model_family

__all__ = [
    "AUDIT_SCHEMA",
    "DISPUTE_COLUMNS",
    "FINDING_KINDS",
    "AuditReport",
    "AuditSummary",
    "Comparison",
    "Evidence",
    "Finding",
    "audit_invoice",
    "priced_tokens",
]

AUDIT_SCHEMA = "rftcost.audit/v1"

FindingKind = Literal[
    "queue_time_billed",
    "lost_work_billed",
    "overbilled_time",
    "underbilled_time",
    "missing_discount",
    "rate_mismatch",
    "grader_tokens_mismatch",
    "grader_price_mismatch",
    "arithmetic_error",
    "duplicate_line",
    "unknown_job",
    "unbilled_job",
    "rounding",
    "invalid_job",
]
FINDING_KINDS: tuple[str, ...] = FindingKind.__args__  # type: ignore[attr-defined]
"""Every finding kind of invoice-audit.md."""

Severity = Literal["error", "warning", "info"]
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

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

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_NS_PER_HOUR = 3600 * 10**9
_MICRO = 10**6
_MICRO_PER_CENT = 10**4
_PICO_PER_CENT = 10**10
_NS_PER_MICRO_HOUR = _NS_PER_HOUR // _MICRO
_NS_PER_DAY = 86400 * 10**9


# --- the value types ---------------------------------------------------------------------


class Evidence(BaseModel):
    """One fact behind a finding: an interval, a loss, a checkpoint, a price entry, a line."""

    model_config = _FROZEN

    type: str
    """excluded_interval, billable_phase, lost_interval, rate, price_entry, tokens,
    discount, cap, invoice_line, billing_event, problem, project_day, rounding."""
    description: str
    """The fact in words."""
    phase: str | None = None
    """The phase of an interval."""
    start: datetime | None = None
    """Start of an interval (UTC)."""
    end: datetime | None = None
    """End of an interval (UTC)."""
    seconds: float | None = None
    """Length that counts (excluded time not overlapping billable time; lost billable time)."""
    cause: str | None = None
    """failure or rollback, for a lost interval."""
    checkpoint_step: int | None = None
    """The retained checkpoint of a loss."""
    checkpoint_at: datetime | None = None
    """When that checkpoint was saved."""
    price: Decimal | None = None
    """A rate: per hour, or per 1M tokens."""
    effective_from: datetime | None = None
    """When a token price entry took effect."""
    source: str | None = None
    """Where a rate comes from (price table entry, policy)."""
    grader_model: str | None = None
    """The grader model of a token fact."""
    token_type: str | None = None
    """input, cached_input or output."""
    tokens: int | None = None
    """A token count."""
    invoice_line: int | None = None
    """An invoice line number."""
    job_id: str | None = None
    """A job named by project/day evidence."""


class Finding(BaseModel):
    """One difference between the invoice and the logs, explained (invoice-audit.md)."""

    model_config = _FROZEN

    kind: FindingKind
    """What was found."""
    severity: Severity
    """error (billed more than the logs support), warning (billed less, or unverifiable), info."""
    job_id: str | None
    """The job (``None`` for project/day comparisons and invoice-wide findings)."""
    invoice_line: int | None
    """The (first) invoice line concerned, if any."""
    line_type: str | None
    """compute, data_sharing_discount, grader_tokens, total, or ``None`` for a whole job."""
    expected: Decimal | None
    """What the logs support for the thing compared (``None``: unknown, invalid job)."""
    billed: Decimal | None
    """What was billed for it; ``expected + difference = billed``."""
    difference: Decimal | None
    """This finding's share of the total difference (positive: overbilled)."""
    explanation: str
    """A sentence a person can paste into a support ticket."""
    evidence: tuple[Evidence, ...] = ()
    """The facts it rests on."""
    also: tuple[FindingKind, ...] = ()
    """Other causes that explain the same difference equally well."""
    invoice_lines: tuple[int, ...] = ()
    """Every invoice line concerned."""
    charge_at: datetime | None = None
    """The billing event compared, when lines were matched charge by charge."""
    grader_model: str | None = None
    """Grader model family of a grader finding."""
    token_type: str | None = None
    """Token type of a grader finding."""
    project: str | None = None
    """Project of a project/day finding."""
    day: str | None = None
    """UTC day of a project/day finding."""

    def to_dict(self) -> dict[str, Any]:
        """The finding as in ``rftcost.audit/v1`` (amounts as two-decimal strings)."""
        record: dict[str, Any] = {
            "kind": self.kind,
            "severity": self.severity,
            "job_id": self.job_id,
            "line_type": self.line_type,
            "expected": _fmt(self.expected),
            "billed": _fmt(self.billed),
            "difference": _fmt(self.difference),
            "explanation": self.explanation,
            "invoice_line": self.invoice_line,
            "invoice_lines": list(self.invoice_lines),
            "charge_at": _iso(self.charge_at),
            "grader_model": self.grader_model,
            "token_type": self.token_type,
            "project": self.project,
            "day": self.day,
            "also": list(self.also),
            "evidence": [_evidence_dict(e) for e in self.evidence],
        }
        return record


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
    errors: int
    """Findings of severity error."""
    warnings: int
    """Findings of severity warning."""
    infos: int
    """Findings of severity info."""


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
            "expected": _fmt(self.expected),
            "billed": _fmt(self.billed),
            "difference": _fmt(self.billed - self.expected),
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
                "expected_total": _fmt(s.expected_total),
                "billed_total": _fmt(s.billed_total),
                "difference": _fmt(s.difference),
                "findings": s.findings,
                "overbilled": _fmt(s.overbilled),
                "underbilled": _fmt(s.underbilled),
                "invoice_total": _fmt(s.invoice_total),
                "unchecked_total": _fmt(s.unchecked_total),
                "errors": s.errors,
                "warnings": s.warnings,
                "infos": s.infos,
            },
            "findings": [f.to_dict() for f in self.findings],
            "policy": self.policy,
            "basis": self.basis,
            "comparison": self.comparison,
            "tolerance": _fmt(self.tolerance),
            "source": self.source,
            "lines": self.lines,
            "jobs": self.jobs,
            "notes": list(self.notes),
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    def dispute_rows(self) -> list[dict[str, str]]:
        """The findings worth raising with the vendor (errors and warnings about the invoice).

        ``invalid_job`` findings are left out: they are about the user's own logs. Every
        cell is neutralised against spreadsheet formulas (``neutralise_csv_cell``).
        """
        rows = []
        for f in self.findings:
            if f.severity == "info" or f.kind == "invalid_job":
                continue
            row = {
                "invoice": self.invoice or "",
                "invoice_line": ";".join(str(n) for n in f.invoice_lines)
                or ("" if f.invoice_line is None else str(f.invoice_line)),
                "job_id": f.job_id or (f"{f.project or '-'} {f.day}" if f.day else ""),
                "line_type": f.line_type or "",
                "kind": f.kind,
                "severity": f.severity,
                "currency": self.currency,
                "expected": _fmt(f.expected) or "",
                "billed": _fmt(f.billed) or "",
                "difference": _fmt(f.difference) or "",
                "explanation": f.explanation,
                "evidence": "; ".join(e.description for e in f.evidence),
            }
            # Job ids and descriptions come from files a person did not write: no cell of
            # the dispute CSV may be run by a spreadsheet (amounts keep their sign).
            rows.append({k: neutralise_csv_cell(v) for k, v in row.items()})
        return rows


# --- entry point ---------------------------------------------------------------------------


def audit_invoice(
    invoice: str | Path | Invoice,
    source: Any,
    *,
    policy: Any = None,
    tolerance: Decimal | str | int = Decimal("0.00"),
    assume_tz: str | None = None,
    match_window: timedelta = timedelta(hours=1),
    project_map: Mapping[str, str] | None = None,
) -> AuditReport:
    """Audit an invoice against the event logs.

    ``invoice``: a canonical invoice (CSV / JSON Lines), a Costs API export, or an
    ``Invoice``. ``source``: a ``Bill``, or anything ``rftcost.bill`` reads (paths,
    an ``EventLog``, a frame of events). ``policy`` (name, path or ``Policy``; default
    the bill's, else ``openai-rft``). ``tolerance``: findings whose difference is at
    most this amount get severity ``info``. ``assume_tz``: zone of times written
    without an offset, in the logs and the invoice. ``match_window``: how far a
    line's ``charge_at`` may be from its billing event. ``project_map``: a Costs API
    export's project ids (``proj_…``) → the logs' project names (``""``: the jobs without a
    project); ids not in it are compared as they are.
    """
    from rftcost.billing import Bill
    from rftcost.engines import bill

    if isinstance(tolerance, float):
        raise TypeError("tolerance is a Decimal, int or str, not a float")
    tolerance = Decimal(tolerance)
    if tolerance < 0:
        raise ValueError("tolerance must not be negative")
    read = invoice if isinstance(invoice, Invoice) else read_invoice(invoice, assume_tz=assume_tz)
    if isinstance(source, Bill):
        billed = source
        if policy is not None:
            from rftcost.policy import load_policy

            wanted = load_policy(policy)
            if wanted != source.policy:
                if source.log is None:
                    raise PolicyError(
                        f"the bill was made under {source.policy.name!r} and holds no log to "
                        f"bill again under {wanted.name!r}; pass the logs instead"
                    )
                billed = bill(source.log, policy=wanted)
    else:
        # The findings' kinds and evidence come from the time line: keep it whole.
        billed = bill(source, policy=policy, assume_tz=assume_tz, keep_timeline=True)
    if read.currency is not None and read.currency != billed.policy.currency.upper():
        raise InvoiceError(
            f"invoice in {read.currency} but policy {billed.policy.name!r} bills in "
            f"{billed.policy.currency}",
            path=read.source,
            hint="audit under a policy in the invoice's currency",
        )
    if read.basis == "project_day":
        auditor: _Base = _ProjectDayAudit(
            read, billed, tolerance, project_map=dict(project_map or {})
        )
    else:
        auditor = _JobAudit(
            read, billed, tolerance, window_ns=int(match_window.total_seconds() * 10**9)
        )
    return auditor.report()


# --- shared machinery -------------------------------------------------------------------------


def _among(values: Any, members: Any) -> np.ndarray[Any, Any]:
    """``values.isin(members)`` through object hash tables (Arrow strings' isin is slow)."""
    keys = pd.Index(np.asarray(values, dtype=object), dtype=object)
    return np.asarray(keys.isin(pd.Index(list(members), dtype=object)), dtype=bool)


def _n(value: Any) -> int:
    """A frame cell known to hold an integer, as a Python int."""
    return int(value)


def _rows(frame: pd.DataFrame) -> Iterator[Any]:
    """A frame's rows as named tuples (the few rows of findings, never every line)."""
    return iter(frame.itertuples(index=False))


def _dec(micro: int) -> Decimal:
    """Millionths → Decimal (two decimals when the amount is whole cents)."""
    micro = int(micro)
    if micro % _MICRO_PER_CENT == 0:
        return cents_to_decimal(micro // _MICRO_PER_CENT)
    return Decimal(micro).scaleb(-6)


def _fmt(amount: Decimal | None) -> str | None:
    return None if amount is None else format_amount(amount)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _evidence_dict(evidence: Evidence) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in evidence.model_dump().items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = _iso(value)
        elif isinstance(value, Decimal):
            value = f"{value.normalize():f}" if value != value.to_integral() else f"{value:.2f}"
        record[key] = value
    return record


def _at(ns: int) -> datetime:
    seconds, rest = divmod(int(ns), 10**9)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)


def _clock(ns: int) -> str:
    return _at(ns).strftime("%Y-%m-%d %H:%M")


def _span(start: int, end: int) -> str:
    """``between 2025-06-01 10:00 and 10:30 UTC`` (the date once when both are on it)."""
    a, b = _at(start), _at(end)
    second = b.strftime("%H:%M") if a.date() == b.date() else b.strftime("%Y-%m-%d %H:%M")
    return f"between {a.strftime('%Y-%m-%d %H:%M')} and {second} UTC"


def _hours_text(ns: int) -> str:
    """Nanoseconds → ``0.50 h`` (two decimals, for reading; not a billed quantity)."""
    hours = Decimal(int(ns)) / Decimal(_NS_PER_HOUR)
    return f"{hours.quantize(Decimal('0.01'))} h"


def _micro_hours_text(micro: int) -> str:
    value = Decimal(int(micro)).scaleb(-6)
    text = f"{value.normalize():f}"
    if "." not in text:
        text += ".00"
    elif len(text.split(".")[1]) < 2:
        text += "0"
    return f"{text} h"


def _price_entry_evidence(
    family: str, entry: Any, amount_micro: int, currency: str, *, in_force: bool
) -> Evidence:
    """A price entry as evidence: its rates and what they give for the line's tokens (R10)."""
    return Evidence(
        type="price_entry",
        description=(
            f"{family} from {entry.effective_from.date()}: {_price(entry.input)} / "
            f"{_price(entry.cached_input)} / {_price(entry.output)} per 1M gives "
            f"{_money(amount_micro, currency)}" + (" (in force)" if in_force else "")
        ),
        price=entry.input,
        effective_from=entry.effective_from,
        source=entry.source,
        grader_model=family,
    )


def _price(value: Decimal) -> str:
    """A rate for reading: two decimals, more only when it has them (0.275)."""
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else f"{value.normalize():f}"


def _money(micro: int, currency: str) -> str:
    return f"{format_amount(_dec(micro))} {currency}"


def _currency(bill: Any) -> str:
    return str(bill.policy.currency)


def _ratio(rate: Decimal) -> tuple[int, int]:
    numerator, denominator = rate.as_integer_ratio()
    return numerator, denominator


def _round_div(numerator: int, denominator: int, mode: Any) -> int:
    """Round a signed integer quotient with a named mode (symmetric around zero)."""
    if numerator < 0:
        return -int(divide_round(-numerator, denominator, mode))
    return int(divide_round(numerator, denominator, mode))


def _severity(difference: int) -> Severity:
    return "error" if difference > 0 else "warning"


@dataclass
class _Candidate:
    """A stretch of time that would explain billed hours: its kind, length and evidence."""

    kind: FindingKind
    ns: int
    text: str
    evidence: list[Evidence]
    specificity: int
    also: tuple[FindingKind, ...] = ()


@dataclass
class _Base:
    invoice: Invoice
    bill: Any
    tolerance: Decimal
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def currency(self) -> str:
        return str(self.bill.policy.currency)

    def add(self, **fields: Any) -> Finding:
        for key in ("evidence", "invoice_lines", "also"):
            if key in fields and not isinstance(fields[key], tuple):
                fields[key] = tuple(fields[key])
        finding = Finding(**fields)
        self.findings.append(finding)
        return finding

    def comparison(self) -> str:
        raise NotImplementedError

    def totals(self) -> tuple[int, int, int, int]:
        """(expected, billed, invoice total, unchecked) in millionths."""
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def report(self) -> AuditReport:
        self.run()
        tolerance_micro = int(self.tolerance.scaleb(6))
        findings = []
        for f in self.findings:
            if (
                f.difference is not None
                and f.severity != "info"
                and abs(int(f.difference.scaleb(6))) <= tolerance_micro
            ):
                f = f.model_copy(
                    update={
                        "severity": "info",
                        "explanation": f.explanation
                        + f" (within the tolerance of {format_amount(self.tolerance)} "
                        f"{self.currency})",
                    }
                )
            findings.append(f)
        findings.sort(
            key=lambda f: (
                _SEVERITY_ORDER[f.severity],
                -(abs(f.difference) if f.difference is not None else Decimal(-1)),
                f.job_id or "",
                f.invoice_line if f.invoice_line is not None else -1,
                f.kind,
            )
        )
        expected, billed, invoice_total, unchecked = self.totals()
        differences = [int(f.difference.scaleb(6)) for f in findings if f.difference is not None]
        summary = AuditSummary(
            expected_total=_dec(expected),
            billed_total=_dec(billed),
            difference=_dec(billed - expected),
            findings=len(findings),
            overbilled=_dec(sum(d for d in differences if d > 0)),
            underbilled=_dec(-sum(d for d in differences if d < 0)),
            invoice_total=_dec(invoice_total),
            unchecked_total=_dec(unchecked),
            errors=sum(f.severity == "error" for f in findings),
            warnings=sum(f.severity == "warning" for f in findings),
            infos=sum(f.severity == "info" for f in findings),
        )
        return AuditReport(
            invoice=self.invoice.invoice_id,
            source=self.invoice.source,
            currency=self.currency,
            policy=str(self.bill.policy.name),
            basis=self.invoice.basis,
            comparison=self.comparison(),
            tolerance=self.tolerance,
            summary=summary,
            findings=tuple(findings),
            lines=len(self.invoice.lines),
            jobs=len(self.bill.jobs),
            notes=(*self.invoice.notes, *self.notes),
            comparisons=tuple(self.comparisons),
        )


# --- expected grader tokens, priced ---------------------------------------------------------


_TOKEN_PARTS = (
    ("input", 0, "uncached", "input_pico"),
    ("cached_input", 1, "cached_input_tokens", "cached_pico"),
    ("output", 2, "output_tokens", "output_pico"),
)


def _price_index_at(
    families: pd.Series, ns: pd.Series, prices: pd.DataFrame
) -> np.ndarray[Any, Any]:
    """Index of the price entry in force for each (family, time); -1 where none (R10)."""
    left = pd.DataFrame(
        {
            "pos": np.arange(len(ns)),
            "t": ns.to_numpy(dtype="int64"),
            "grader_family": pd.Series(families.astype(str).to_numpy(), dtype=object),
        }
    ).sort_values("t", kind="stable")
    right = (
        prices[["grader_family", "effective_ns", "price_index"]]
        .astype({"grader_family": object})
        .sort_values("effective_ns")
    )
    merged = pd.merge_asof(
        left, right, left_on="t", right_on="effective_ns", by="grader_family", direction="backward"
    )
    found = merged.sort_values("pos")["price_index"]
    return found.fillna(-1).to_numpy(dtype="int64")


def priced_tokens(bill: Any, grader_lines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Charged grader tokens per job, charge, grader model, token type and price entry.

    ``input`` is uncached input (input − cached), priced at the input rate;
    ``cached_input`` and ``output`` at theirs (R9). A charge whose segment lies
    within one price entry takes its tokens from the bill's grader lines; a segment
    that straddles a price change is priced usage event by usage event (R10).
    Columns: job_id, charge, grader_model, grader_family, token_type, token_order,
    price_index, price_micro (per 1M tokens, in millionths = pico-units per token),
    tokens, pico (object ints: exact amount in 10^-12 of the currency).
    """
    policy = bill.policy
    lines = bill.grader_lines if grader_lines is None else grader_lines
    lines = lines[lines["charge"] >= 0]
    prices = policy.price_table.to_frame()
    columns = [
        "job_id",
        "charge",
        "grader_model",
        "grader_family",
        "token_type",
        "token_order",
        "price_index",
        "price_micro",
        "tokens",
        "pico",
    ]
    if lines.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    charges = bill.charges[["job_id", "charge", "segment_start", "at"]].astype({"job_id": object})
    lines = lines.astype({"job_id": object}).merge(charges, on=["job_id", "charge"], how="left")
    family = (
        lines["grader_model"]
        .astype(str)
        .map({m: resolve_model_family(m) for m in lines["grader_model"].astype(str).unique()})
    )
    lines = lines.assign(grader_family=family)
    at_start = _price_index_at(family, lines["segment_start"], prices)
    at_end = _price_index_at(family, lines["at"], prices)
    single = at_start == at_end
    simple = lines[single].assign(
        price_index=at_end[single],
        uncached=lines["input_tokens"] - lines["cached_input_tokens"],
    )
    keyed_prices = prices.astype({"grader_family": object})
    simple = simple.merge(keyed_prices, on=["grader_family", "price_index"], how="left")
    parts = [simple]
    if not single.all():
        parts.append(_straddling(bill, lines[~single], keyed_prices))
    priced = pd.concat(parts, ignore_index=True)
    frames = []
    for token_type, order, tokens, price in _TOKEN_PARTS:
        count = priced[tokens].astype("int64")
        rate = priced[price].astype("int64")
        frames.append(
            pd.DataFrame(
                {
                    "job_id": priced["job_id"].astype(str),
                    "charge": priced["charge"].astype("int64"),
                    "grader_model": priced["grader_model"].astype(str),
                    "grader_family": priced["grader_family"].astype(str),
                    "token_type": token_type,
                    "token_order": order,
                    "price_index": priced["price_index"].astype("int64"),
                    "price_micro": rate,
                    "tokens": count,
                    "pico": count.astype(object) * rate.astype(object),
                }
            )
        )
    typed = pd.concat(frames, ignore_index=True)
    typed = typed[typed["tokens"] != 0].astype(
        {"job_id": object, "grader_model": object, "grader_family": object, "token_type": object}
    )
    return typed.sort_values(
        ["job_id", "charge", "grader_model", "token_order", "price_index"]
    ).reset_index(drop=True)[columns]


def _straddling(bill: Any, lines: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Grader lines whose segment straddles a price change, priced per usage event."""
    timeline = bill.timeline
    job_ids = timeline.jobs["job_id"].astype(str)
    usage = timeline.usage[~timeline.usage["lost"]]
    usage = usage.assign(job_id=job_ids.reindex(usage["job"]).to_numpy(), charge=usage["segment"])
    wanted = lines[["job_id", "charge", "grader_model"]].astype({"grader_model": object})
    usage = usage.astype({"grader_model": object}).merge(
        wanted, on=["job_id", "charge", "grader_model"]
    )
    family = usage["grader_model"].map(
        {m: resolve_model_family(m) for m in usage["grader_model"].unique()}
    )
    usage = usage.assign(
        grader_family=family,
        price_index=_price_index_at(family, usage["ts"], prices),
        input_tokens=usage["input_tokens"].astype("int64"),
        cached_input_tokens=usage["cached_input_tokens"].fillna(0).astype("int64"),
        output_tokens=usage["output_tokens"].astype("int64"),
    )
    sums = usage.groupby(
        ["job_id", "charge", "grader_model", "grader_family", "price_index"], as_index=False
    )[["input_tokens", "cached_input_tokens", "output_tokens"]].sum()
    sums = sums.assign(uncached=sums["input_tokens"] - sums["cached_input_tokens"])
    priced: pd.DataFrame = sums.merge(prices, on=["grader_family", "price_index"], how="left")
    return priced


# --- the job-basis audit -----------------------------------------------------------------------


_DUP_COLUMNS = [
    "job_id",
    "line_type",
    "charge_at",
    "grader_family",
    "token_type",
    "quantity_micro",
    "unit_price_micro",
    "amount_micro",
]


@dataclass
class _JobAudit(_Base):
    window_ns: int = 3600 * 10**9
    _expected_micro: int = 0
    _billed_micro: int = 0
    _invoice_micro: int = 0
    _unchecked_micro: int = 0

    def comparison(self) -> str:
        return (
            "per job: lines with a charge_at are matched to the nearest billing event of their "
            f"job (within {self.window_ns // 10**9 // 60} min) and compared charge by charge; "
            "the other jobs' lines are compared to the job's totals"
        )

    def totals(self) -> tuple[int, int, int, int]:
        return self._expected_micro, self._billed_micro, self._invoice_micro, self._unchecked_micro

    # The steps, in order.

    def run(self) -> None:
        policy = self.bill.policy
        self.places = int(policy.rounding.hours_decimals)
        if self.places > 6:
            raise PolicyError("the audit supports at most 6 hour decimals")
        self.unit_micro_hours = 10 ** (6 - self.places)
        self.unit_ns = _NS_PER_HOUR // 10**self.places
        self.mode = policy.rounding.money_mode
        jobs = self.bill.jobs.assign(job_id=self.bill.jobs["job_id"].astype(str)).set_index(
            "job_id"
        )
        self.jobs = jobs
        rates = {m: policy.hourly_rate(str(m)) for m in jobs["model"].unique()}
        self.rate_micro = (
            jobs["model"]
            .map({m: int(r * _MICRO) if r is not None else 0 for m, r in rates.items()})
            .astype("int64")
        )
        self.rate_of = dict(rates.items())
        code = pd.Series(
            self.bill.timeline.jobs.index, index=self.bill.timeline.jobs["job_id"].astype(str)
        )
        self.code_of = code

        lines = self.invoice.lines.assign(job_id=self.invoice.lines["job_id"].astype("string"))
        self._check_total_lines(lines)
        lines = lines[lines["line_type"] != "total"]
        found = pd.Index(np.asarray(jobs.index, dtype=object), dtype=object).get_indexer(
            np.asarray(lines["job_id"], dtype=object)
        )
        statuses = jobs["status"].to_numpy(dtype=object)
        status = pd.Series(
            np.where(found >= 0, statuses[found], None), index=lines.index, dtype=object
        )
        checked = lines["line_type"].isin(CHECKED_LINE_TYPES)
        unchecked = ~checked
        unknown = checked & status.isna()
        invalid = checked & (status == "invalid")
        good = checked & status.notna() & (status != "invalid")
        self._unchecked_micro += int(lines.loc[unchecked | invalid, "amount_micro"].sum())
        self._billed_micro += int(lines.loc[good | unknown, "amount_micro"].sum())
        self._unknown_jobs(lines[unknown])
        self._invalid_jobs(lines[invalid])

        valid = jobs[jobs["status"] != "invalid"]
        self._expected_micro = int(valid["total_cents"].astype("int64").sum()) * _MICRO_PER_CENT
        g = lines[good].astype(
            {"job_id": object, "grader_family": object, "token_type": object, "line_type": object}
        )
        g = self._match_charges(g)
        self._unbilled_jobs(valid, set(g["job_id"]))
        if g.empty:
            return
        g = g.assign(typed=self._typed_families(g))
        expected = self._expected(set(g["job_id"]), g)
        g = self._duplicates(g, expected)
        self.causes: dict[tuple[str, int], Finding] = {}
        self._compute(g, expected)
        self._discount(g, expected)
        self._grader(g, expected)

    # --- invoice-wide checks ---------------------------------------------------------------

    def _check_total_lines(self, lines: pd.DataFrame) -> None:
        totals = lines[lines["line_type"] == "total"]
        charges = lines[lines["line_type"] != "total"]
        self._invoice_micro = int(charges["amount_micro"].sum())
        if totals.empty:
            return
        stated = 0
        for invoice_id, group in totals.groupby(totals["invoice_id"].fillna(""), sort=True):
            in_invoice = (
                charges["invoice_id"].fillna("") == invoice_id
                if invoice_id
                else charges.index == charges.index
            )
            added = int(charges.loc[in_invoice, "amount_micro"].sum())
            said = int(group["amount_micro"].sum())
            stated += said
            if said != added:
                numbers = [int(n) for n in group["line"]]
                self.add(
                    kind="arithmetic_error",
                    severity=_severity(said - added),
                    job_id=None,
                    invoice_line=numbers[0],
                    invoice_lines=tuple(numbers),
                    line_type="total",
                    expected=_dec(added),
                    billed=_dec(said),
                    difference=_dec(said - added),
                    explanation=(
                        f"The invoice states a total of {_money(said, self.currency)} but its "
                        "lines "
                        f"add up to {_money(added, self.currency)}: "
                        f"{_money(said - added, self.currency)} "
                        f"{'more' if said > added else 'less'}."
                    ),
                    evidence=(
                        Evidence(type="invoice_line", description=f"total line {n}", invoice_line=n)
                        for n in numbers
                    ),
                )
        # What is charged is the stated total; the gap counts as billed (and is a finding).
        self._billed_micro += stated - self._invoice_micro
        self._invoice_micro = stated

    def _unknown_jobs(self, lines: pd.DataFrame) -> None:
        n_jobs = len(self.jobs)
        for row in lines.pipe(_rows):
            amount = int(row.amount_micro)
            self.add(
                kind="unknown_job",
                severity=_severity(amount),
                job_id=str(row.job_id),
                invoice_line=int(row.line),
                invoice_lines=(int(row.line),),
                line_type=str(row.line_type),
                expected=_dec(0),
                billed=_dec(amount),
                difference=_dec(amount),
                explanation=(
                    f"Line {int(row.line)} bills {_money(amount, self.currency)} ({row.line_type}) "
                    f"for job {row.job_id}, which has no events in the logs ({n_jobs} jobs read)."
                ),
                evidence=(
                    Evidence(
                        type="invoice_line",
                        description=(
                            f"line {int(row.line)}: "
                            f"{row.description if isinstance(row.description, str) else row.line_type}"  # noqa: E501
                        ),
                        invoice_line=int(row.line),
                    ),
                ),
            )

    def _invalid_jobs(self, lines: pd.DataFrame) -> None:
        if lines.empty:
            return
        problems = self.bill.problems.astype({"job_id": object})
        for job_id, group in lines.groupby("job_id", sort=True):
            reasons = [str(p) for p in problems.loc[problems["job_id"] == job_id, "problem"]]
            amount = int(group["amount_micro"].sum())
            numbers = tuple(int(n) for n in group["line"])
            self.add(
                kind="invalid_job",
                severity="warning",
                job_id=str(job_id),
                invoice_line=numbers[0],
                invoice_lines=numbers,
                line_type=None,
                expected=None,
                billed=_dec(amount),
                difference=None,
                explanation=(
                    f"The logs of job {job_id} cannot be reconstructed "
                    f"({reasons[0] if reasons else 'invalid'}"
                    f"{f'; {len(reasons) - 1} more problem(s)' if len(reasons) > 1 else ''}), "
                    "so its "
                    f"{len(numbers)} line(s) totalling {_money(amount, self.currency)} cannot "
                    "be checked."
                ),
                evidence=tuple(Evidence(type="problem", description=r) for r in reasons),
            )

    def _unbilled_jobs(self, valid: pd.DataFrame, billed_jobs: set[str]) -> None:
        missing = valid[
            ~_among(valid.index, list(billed_jobs)) & (valid["total_cents"].astype("int64") != 0)
        ]
        for job_id, row in missing.iterrows():
            total = int(row["total_cents"]) * _MICRO_PER_CENT
            n = int(row["n_charges"])
            self.add(
                kind="unbilled_job",
                severity="warning",
                job_id=str(job_id),
                invoice_line=None,
                line_type=None,
                expected=_dec(total),
                billed=_dec(0),
                difference=_dec(-total),
                explanation=(
                    f"Job {job_id} ({row['status']}, {n} charge(s), {_money(total, self.currency)} "
                    "in the logs) has no line on the invoice; it may be billed later or was missed."
                ),
                evidence=(
                    Evidence(
                        type="billing_event",
                        description=f"{n} billing event(s), last {self._last_event(str(job_id))}",
                        job_id=str(job_id),
                    ),
                ),
            )

    def _last_event(self, job_id: str) -> str:
        charges = self.bill.charges
        rows = charges[charges["job_id"].astype(str) == job_id]
        if rows.empty:
            return "none"
        last = rows.iloc[-1]
        return f"{last['event']} at {_clock(int(last['at']))} UTC"

    # --- matching ---------------------------------------------------------------------------

    def _match_charges(self, g: pd.DataFrame) -> pd.DataFrame:
        charges = self.bill.charges[["job_id", "charge", "at"]].astype({"job_id": object})
        with_at = g[g["charge_at"].notna()]
        matched = pd.Series(np.nan, index=g.index)
        matched_at = pd.Series(np.nan, index=g.index)
        if not with_at.empty and not charges.empty:
            left = pd.DataFrame(
                {
                    "pos": with_at.index,
                    "job_id": pd.Series(with_at["job_id"].astype(str).to_numpy(), dtype=object),
                    "t": with_at["charge_at"].astype("int64").to_numpy(),
                }
            ).sort_values("t", kind="stable")
            right = charges.rename(columns={"at": "event_at"}).sort_values(
                "event_at", kind="stable"
            )
            found = pd.merge_asof(
                left,
                right,
                left_on="t",
                right_on="event_at",
                by="job_id",
                direction="nearest",
                tolerance=self.window_ns,
            ).set_index("pos")
            matched = found["charge"].reindex(g.index)
            matched_at = found["event_at"].reindex(g.index)
        every = matched.notna().groupby(g["job_id"]).transform("all")
        return g.assign(
            charge=matched.where(every, -1).astype("int64"),
            event_at=matched_at.where(every),
        )

    def _typed_families(self, g: pd.DataFrame) -> pd.Series:
        """A (job, charge, grader family) is compared by token type when every line has one."""
        grader = g["line_type"] == "grader_tokens"
        has_type = (g["token_type"] != "") | ~grader
        keys = [g["job_id"], g["charge"], g["grader_family"].fillna("")]
        return grader & has_type.groupby(keys).transform("all")

    # --- what the logs expect ---------------------------------------------------------------

    def _expected(self, job_ids: set[str], g: pd.DataFrame) -> dict[str, pd.DataFrame]:
        bill = self.bill
        per_charge_jobs = set(g.loc[g["charge"] >= 0, "job_id"])
        wanted = list(job_ids)
        charges = bill.charges.astype({"job_id": object})
        charges = charges[_among(charges["job_id"], wanted)]
        floor = divide_round(
            charges["billable_ns"].to_numpy(dtype="int64"), self.unit_ns, _mode("down")
        )
        ceil = divide_round(
            charges["billable_ns"].to_numpy(dtype="int64"), self.unit_ns, _mode("up")
        )
        charges = charges.assign(floor_units=floor, ceil_units=ceil, n=1)
        first_ns = bill.timeline.jobs.set_index(bill.timeline.jobs["job_id"].astype(str))[
            "first_ns"
        ]
        by_job = charges.groupby("job_id", as_index=False).agg(
            hour_units=("hour_units", "sum"),
            compute_cents=("compute_cents", "sum"),
            discount_cents=("discount_cents", "sum"),
            grader_cents=("grader_cents", "sum"),
            billable_ns=("billable_ns", "sum"),
            floor_units=("floor_units", "sum"),
            ceil_units=("ceil_units", "sum"),
            capped=("capped", "any"),
            at=("at", "max"),
            n=("n", "sum"),
        )
        # Every job with lines gets a row, even one without a billing event (expected 0).
        by_job = by_job.set_index("job_id").reindex(sorted(job_ids)).reset_index()
        last_ns = bill.timeline.jobs.set_index(bill.timeline.jobs["job_id"].astype(str))["last_ns"]
        no_charge = by_job["n"].isna()
        by_job = by_job.assign(
            at=by_job["at"].where(~no_charge, last_ns.reindex(by_job["job_id"]).to_numpy()),
            capped=by_job["capped"].fillna(False).astype(bool),
        ).fillna(0)
        by_job = by_job.astype(
            {c: "int64" for c in by_job.columns if c not in ("job_id", "capped")}
        ).assign(
            charge=-1, segment_start=first_ns.reindex(by_job["job_id"]).to_numpy(dtype="int64")
        )
        columns = [
            "job_id",
            "charge",
            "hour_units",
            "compute_cents",
            "discount_cents",
            "grader_cents",
            "billable_ns",
            "floor_units",
            "ceil_units",
            "capped",
            "segment_start",
            "at",
            "n",
        ]
        per = _among(charges["job_id"], per_charge_jobs)
        whole = ~_among(by_job["job_id"], per_charge_jobs)
        money = pd.concat(
            [charges.loc[per, columns], by_job.loc[whole, columns]], ignore_index=True
        ).astype({"job_id": object})

        lines = bill.grader_lines[bill.grader_lines["charge"] >= 0].astype({"job_id": object})
        lines = lines[_among(lines["job_id"], wanted)]
        lines = lines.assign(
            grader_family=lines["grader_model"]
            .astype(str)
            .map({m: resolve_model_family(m) for m in lines["grader_model"].astype(str).unique()})
            .astype(object),
            charge=lines["charge"].where(_among(lines["job_id"], per_charge_jobs), -1),
            n=1,
        )
        family = (
            lines.assign(tokens=lines["input_tokens"] + lines["output_tokens"])
            .groupby(["job_id", "charge", "grader_family"], as_index=False)
            .agg(amount_cents=("amount_cents", "sum"), n=("n", "sum"), tokens=("tokens", "sum"))
        )
        typed_keys = g.loc[g["typed"], ["job_id", "grader_family"]].drop_duplicates()
        typed_jobs = set(typed_keys["job_id"])
        tokens = priced_tokens(
            bill, bill.grader_lines[_among(bill.grader_lines["job_id"], typed_jobs)]
        )
        if not tokens.empty:
            tokens = tokens.assign(
                charge=tokens["charge"].where(_among(tokens["job_id"], per_charge_jobs), -1)
            )
        return {"money": money, "family": family, "tokens": tokens}

    # --- duplicates ---------------------------------------------------------------------------

    def _duplicates(self, g: pd.DataFrame, expected: dict[str, pd.DataFrame]) -> pd.DataFrame:
        copies = g.duplicated(subset=_DUP_COLUMNS, keep="first")
        if not copies.any():
            return g
        real = pd.Series(False, index=g.index)
        group_keys = ["job_id", "charge", "line_type", "grader_family", "token_type"]
        keyed = g.assign(grader_family=g["grader_family"].fillna(""), copy=copies)
        with_copies = keyed[copies][group_keys].drop_duplicates()
        for key in with_copies.pipe(_rows):
            members = keyed[
                (keyed["job_id"] == key.job_id)
                & (keyed["charge"] == key.charge)
                & (keyed["line_type"] == key.line_type)
                & (keyed["grader_family"] == key.grader_family)
                & (keyed["token_type"] == key.token_type)
            ]
            target = self._expected_amount(key, members, expected)
            all_lines = int(members["amount_micro"].sum())
            without = int(members.loc[~members["copy"], "amount_micro"].sum())
            if abs(without - target) < abs(all_lines - target):
                real[members.index[members["copy"].to_numpy()]] = True
        for index in real[real].index:
            row = g.loc[index]
            original = g[
                (g[_DUP_COLUMNS].fillna(-1) == row[_DUP_COLUMNS].fillna(-1)).all(axis=1) & ~real
            ]
            first = int(original["line"].iloc[0]) if len(original) else None
            amount = int(row["amount_micro"])
            line = int(row["line"])
            self.add(
                kind="duplicate_line",
                severity=_severity(amount),
                job_id=str(row["job_id"]),
                invoice_line=line,
                invoice_lines=(line,) if first is None else (line, first),
                line_type=str(row["line_type"]),
                expected=_dec(0),
                billed=_dec(amount),
                difference=_dec(amount),
                charge_at=None if pd.isna(row["event_at"]) else _at(int(row["event_at"])),
                explanation=(
                    f"Line {line} repeats line {first} ({row['line_type']}, "
                    f"{_money(amount, self.currency)}) "
                    f"for job {row['job_id']}: the same charge appears to be billed twice."
                ),
                evidence=(
                    Evidence(
                        type="invoice_line",
                        description=f"line {first}: the original",
                        invoice_line=first,
                    ),
                    Evidence(
                        type="invoice_line", description=f"line {line}: the copy", invoice_line=line
                    ),
                ),
            )
        return g[~real]

    def _expected_amount(
        self, key: Any, members: pd.DataFrame, expected: dict[str, pd.DataFrame]
    ) -> int:
        money = expected["money"]
        row = money[(money["job_id"] == key.job_id) & (money["charge"] == key.charge)]
        if key.line_type == "compute":
            return int(row["compute_cents"].sum()) * _MICRO_PER_CENT
        if key.line_type == "data_sharing_discount":
            return -int(row["discount_cents"].sum()) * _MICRO_PER_CENT
        if key.token_type:
            tokens = expected["tokens"]
            if tokens.empty:
                return 0
            part = tokens[
                (tokens["job_id"] == key.job_id)
                & (tokens["charge"] == key.charge)
                & (tokens["grader_family"] == key.grader_family)
                & (tokens["token_type"] == key.token_type)
            ]
            pico = sum(int(p) for p in part["pico"])
            return int(divide_round(pico, _PICO_PER_CENT, self.mode)) * _MICRO_PER_CENT
        family = expected["family"]
        part = family[
            (family["job_id"] == key.job_id)
            & (family["charge"] == key.charge)
            & (family["grader_family"] == key.grader_family)
        ]
        return int(part["amount_cents"].sum()) * _MICRO_PER_CENT

    # --- compute ----------------------------------------------------------------------------

    @staticmethod
    def _lines_for(
        lines: pd.DataFrame, keys: list[str], wanted: pd.DataFrame
    ) -> dict[tuple[Any, ...], tuple[int, ...]]:
        """Invoice line numbers of the ``wanted`` groups only (the few with findings)."""
        if wanted.empty or lines.empty:
            return {}
        chosen = lines[[*keys, "line"]].merge(wanted[keys].drop_duplicates(), on=keys)
        found: dict[tuple[Any, ...], tuple[int, ...]] = {}
        for key, numbers in chosen.groupby(keys, sort=False)["line"]:
            found[key if isinstance(key, tuple) else (key,)] = tuple(
                sorted(int(n) for n in numbers)
            )
        return found

    def _cause(self, job_id: str, charge: int, finding: Finding) -> None:
        """Remember the largest compute finding of a job or charge (a discount may follow it)."""
        known = self.causes.get((job_id, charge))
        size = abs(finding.difference or Decimal(0))
        if known is None or size > abs(known.difference or Decimal(0)):
            self.causes[(job_id, charge)] = finding

    def _compute(self, g: pd.DataFrame, expected: dict[str, pd.DataFrame]) -> None:
        """Per line (arithmetic, rate), then per charge or job (hours)."""
        money = expected["money"]
        capped_jobs = set(money.loc[money["capped"].astype(bool), "job_id"])
        lines = g[g["line_type"] == "compute"]
        q = lines["quantity_micro"].astype("int64").to_numpy().astype(object)
        p = lines["unit_price_micro"].astype("int64").to_numpy().astype(object)
        rate = self.rate_micro.reindex(lines["job_id"]).to_numpy(dtype="int64")
        computed = _cents_of_pico(q * p, self.mode)
        at_rate = _cents_of_pico(q * rate.astype(object), self.mode)
        amount = lines["amount_micro"].to_numpy(dtype="int64")
        capped = _among(lines["job_id"], capped_jobs)
        arithmetic = np.where(capped, 0, amount - computed * _MICRO_PER_CENT)
        rate_part = (computed - at_rate) * _MICRO_PER_CENT
        per_line = lines.assign(
            computed=computed,
            at_rate=at_rate,
            arithmetic=arithmetic,
            rate_part=rate_part,
            rate=rate,
        )
        self._line_findings(per_line)

        groups = per_line.groupby(["job_id", "charge"], as_index=False).agg(
            quantity=("quantity_micro", "sum"),
            at_rate=("at_rate", "sum"),
            amount=("amount_micro", "sum"),
            rate_part=("rate_part", "sum"),
        )
        jobs_with_lines = set(g["job_id"])
        wanted = money[_among(money["job_id"], jobs_with_lines)]
        groups = wanted.merge(groups, on=["job_id", "charge"], how="outer")
        groups = groups.assign(
            quantity=groups["quantity"].fillna(0).astype("int64"),
            at_rate=groups["at_rate"].fillna(0).astype("int64"),
            amount=groups["amount"].fillna(0).astype("int64"),
            rate_part=groups["rate_part"].fillna(0).astype("int64"),
            rate=self.rate_micro.reindex(groups["job_id"]).to_numpy(dtype="int64"),
        )
        groups = groups.assign(
            expected_micro=groups["compute_cents"].astype("int64") * _MICRO_PER_CENT,
            hours_part=(groups["at_rate"] - groups["compute_cents"].astype("int64"))
            * _MICRO_PER_CENT,
            delta=groups["quantity"] - groups["hour_units"].astype("int64") * self.unit_micro_hours,
            capped=groups["capped"].astype(bool) | _among(groups["job_id"], capped_jobs),
        )
        groups = groups.assign(
            hours_part=groups["hours_part"].where(
                ~groups["capped"], groups["amount"] - groups["rate_part"] - groups["expected_micro"]
            )
        )
        self._hours_findings(groups, per_line[["job_id", "charge", "line"]])

    def _line_findings(self, lines: pd.DataFrame) -> None:
        for row in lines[(lines["arithmetic"] != 0) | (lines["rate_part"] != 0)].pipe(_rows):
            line = int(row.line)
            at = None if pd.isna(row.event_at) else _at(int(row.event_at))
            hours = _micro_hours_text(int(row.quantity_micro))
            price = Decimal(int(row.unit_price_micro)).scaleb(-6)
            if row.rate_part != 0:
                rate = Decimal(int(row.rate)).scaleb(-6)
                model = str(self.jobs.loc[row.job_id, "model"])
                policy = self.bill.policy
                made = self.add(
                    kind="rate_mismatch",
                    severity=_severity(int(row.rate_part)),
                    job_id=str(row.job_id),
                    invoice_line=line,
                    invoice_lines=(line,),
                    line_type="compute",
                    expected=cents_to_decimal(int(row.at_rate)),
                    billed=cents_to_decimal(int(row.computed)),
                    difference=_dec(int(row.rate_part)),
                    charge_at=at,
                    explanation=(
                        f"Line {line} prices {hours} of {model} training at {format_amount(price)} "
                        f"{self.currency}/h; policy {policy.name} gives {format_amount(rate)} "
                        f"{self.currency}/h: {_money(int(row.rate_part), self.currency)} "
                        f"{'more' if row.rate_part > 0 else 'less'}."
                    ),
                    evidence=(
                        Evidence(
                            type="rate",
                            description=(
                                f"policy {policy.name}: {format_amount(rate)} {self.currency} per "
                                f"billable hour of {resolve_model_family(model)}"
                            ),
                            price=rate,
                            source="; ".join(policy.sources) or policy.name,
                        ),
                        Evidence(
                            type="invoice_line",
                            description=f"line {line}: {hours} at {format_amount(price)}",
                            invoice_line=line,
                            price=price,
                        ),
                    ),
                )
                self._cause(str(row.job_id), int(row.charge), made)
            if row.arithmetic != 0:
                made = self._arithmetic(
                    row, "compute", f"{hours} × {format_amount(price)} {self.currency}/h", at
                )
                self._cause(str(row.job_id), int(row.charge), made)

    def _arithmetic(
        self, row: Any, line_type: str, product: str, at: datetime | None, **extra: Any
    ) -> Finding:
        line = int(row.line)
        computed = int(row.computed) * _MICRO_PER_CENT
        amount = int(row.amount_micro)
        return self.add(
            kind="arithmetic_error",
            severity=_severity(amount - computed),
            job_id=str(row.job_id),
            invoice_line=line,
            invoice_lines=(line,),
            line_type=line_type,
            expected=_dec(computed),
            billed=_dec(amount),
            difference=_dec(amount - computed),
            charge_at=at,
            explanation=(
                f"Line {line}: {product} = {_money(computed, self.currency)}, but the line says "
                f"{_money(amount, self.currency)}."
            ),
            evidence=(
                Evidence(
                    type="invoice_line", description=f"line {line}: {product}", invoice_line=line
                ),
            ),
            **extra,
        )

    def _hours_findings(self, groups: pd.DataFrame, lines: pd.DataFrame) -> None:
        """Hours per charge or job: a job whose total only rounding explains gets one finding."""
        if not (groups["hours_part"] != 0).any():
            return
        unit = self.unit_micro_hours
        groups = groups.assign(differing=(groups["hours_part"] != 0).astype("int64"))
        totals = groups.groupby("job_id").agg(
            quantity=("quantity", "sum"),
            low=("floor_units", "sum"),
            high=("ceil_units", "sum"),
            hours_part=("hours_part", "sum"),
            expected=("expected_micro", "sum"),
            differing=("differing", "sum"),
            capped=("capped", "any"),
            billable_ns=("billable_ns", "sum"),
        )
        rounding = (
            (totals["differing"] > 0)
            & ~totals["capped"]
            & (totals["low"] * unit <= totals["quantity"])
            & (totals["quantity"] <= totals["high"] * unit)
        )
        rounded = totals[rounding & (totals["hours_part"] != 0)]
        job_lines = self._lines_for(lines, ["job_id"], rounded.reset_index())
        for job_id, row in rounded.iterrows():
            if int(row["hours_part"]) != 0:
                finding = self._job_rounding(str(job_id), row, job_lines.get((job_id,), ()))
                self.findings.append(finding)
                for charge in groups.loc[groups["job_id"] == job_id, "charge"]:
                    self._cause(str(job_id), int(charge), finding)
        rest = groups[
            ~_among(groups["job_id"], totals.index[rounding]) & (groups["hours_part"] != 0)
        ]
        if rest.empty:
            return
        time = _TimeIndex(self.bill, set(rest["job_id"]), self.code_of)
        charge_lines = self._lines_for(lines, ["job_id", "charge"], rest)
        for row in rest.pipe(_rows):
            numbers = charge_lines.get((row.job_id, row.charge), ())
            finding = self._hours_finding(row, time, numbers)
            self.findings.append(finding)
            self._cause(str(row.job_id), int(row.charge), finding)

    def _job_rounding(self, job_id: str, row: pd.Series, lines: tuple[int, ...]) -> Finding:
        total, expected = int(row["hours_part"]), int(row["expected"])
        rounding = self.bill.policy.rounding
        return Finding(
            kind="rounding",
            severity="info",
            job_id=job_id,
            invoice_line=lines[0] if lines else None,
            invoice_lines=lines,
            line_type="compute",
            expected=_dec(expected),
            billed=_dec(expected + total),
            difference=_dec(total),
            explanation=(
                f"Job {job_id}: {_micro_hours_text(int(row['quantity']))} billed for "
                f"{_hours_text(int(row['billable_ns']))} of exact billable time, which lies "
                "between "
                "the exact time of each charge rounded down and up; policy "
                f"{self.bill.policy.name} rounds to {self.places} decimals "
                f"({rounding.hours_mode}, scope {rounding.scope}): "
                f"{_money(total, self.currency)}, which only rounding explains."
            ),
            evidence=(
                Evidence(
                    type="rounding",
                    description=(
                        f"exact billable time {_hours_text(int(row['billable_ns']))}; rounded per "
                        f"charge: {_micro_hours_text(int(row['low']) * self.unit_micro_hours)} "
                        "down "
                        f"to {_micro_hours_text(int(row['high']) * self.unit_micro_hours)} up"
                    ),
                    seconds=int(row["billable_ns"]) / 1e9,
                ),
            ),
        )

    def _hours_finding(self, row: Any, time: _TimeIndex, lines: tuple[int, ...]) -> Finding:
        job_id, charge = str(row.job_id), int(row.charge)
        hours_part = int(row.hours_part)
        expected = int(row.expected_micro)
        unit = self.unit_micro_hours
        billed_hours = int(row.quantity)
        expected_hours = int(row.hour_units) * unit
        delta = int(row.delta)
        window = (int(row.segment_start), int(row.at))
        scope = f"charge at {_clock(int(row.at))} UTC" if charge >= 0 else "job"
        base: dict[str, Any] = {
            "job_id": job_id,
            "invoice_line": lines[0] if lines else None,
            "invoice_lines": lines,
            "line_type": "compute",
            "expected": _dec(expected),
            "billed": _dec(expected + hours_part),
            "difference": _dec(hours_part),
            "charge_at": _at(int(row.at)) if charge >= 0 else None,
        }
        policy = self.bill.policy
        if bool(row.capped):
            cap = policy.cap.per_job_amount
            kind: FindingKind = "overbilled_time" if hours_part > 0 else "underbilled_time"
            return Finding(
                kind=kind,
                severity=_severity(hours_part),
                explanation=(
                    f"Job {job_id} reaches policy {policy.name}'s cap of "
                    f"{format_amount(cap) if cap is not None else '?'} {self.currency} per job; "
                    f"the invoice bills {_money(hours_part, self.currency)} "
                    f"{'beyond' if hours_part > 0 else 'short of'} it."
                ),
                evidence=(
                    Evidence(type="cap", description=f"compute capped at {cap} per job", price=cap),
                ),
                **base,
            )
        # Under rounding scope "charge", one charge's hours may lie between its exact time
        # rounded down and up; under scope "job" only the job's total can (checked before).
        low, high = int(row.floor_units) * unit, int(row.ceil_units) * unit
        per_charge_rounding = policy.rounding.scope == "charge" and low <= billed_hours <= high
        if delta == 0 or per_charge_rounding:
            why = (
                "the hours agree; the amount differs by the rounding of each line"
                if delta == 0
                else "it lies between the exact time rounded down and up"
            )
            return Finding(
                kind="rounding",
                severity="info",
                explanation=(
                    f"{_micro_hours_text(billed_hours)} billed for {job_id} ({scope}) where the "
                    "logs "
                    f"give {_micro_hours_text(expected_hours)} for "
                    f"{_hours_text(int(row.billable_ns))} of exact billable time: {why} "
                    f"({_money(hours_part, self.currency)})."
                ),
                evidence=(
                    Evidence(
                        type="rounding",
                        description=(
                            f"exact billable time {_hours_text(int(row.billable_ns))}, billed "
                            f"{_micro_hours_text(billed_hours)}; policy {policy.name} rounds to "
                            f"{self.places} decimals ({policy.rounding.hours_mode}, scope "
                            f"{policy.rounding.scope})"
                        ),
                        seconds=int(row.billable_ns) / 1e9,
                    ),
                ),
                **base,
            )
        steps = int(row.n) if policy.rounding.scope == "charge" else 1
        tolerance_ns = max(steps, 1) * self.unit_ns
        delta_ns = delta * _NS_PER_MICRO_HOUR
        code = int(self.code_of[job_id])
        if delta > 0:
            candidates = time.over_candidates(code, charge, window)
            matches = sorted(
                (c for c in candidates if abs(delta_ns - c.ns) < tolerance_ns),
                key=lambda c: (abs(delta_ns - c.ns), c.specificity),
            )
            if matches:
                return self._explained(matches, hours_part, job_id, scope, base)
            return Finding(
                kind="overbilled_time",
                severity=_severity(hours_part),
                explanation=(
                    f"{_micro_hours_text(delta)} billed beyond the "
                    f"{_micro_hours_text(expected_hours)} of billable time in the logs for "
                    f"{job_id} ({scope}, {_span(*window)}): {_money(hours_part, self.currency)}; "
                    "no excluded or lost interval of the job explains it."
                ),
                evidence=(
                    Evidence(
                        type="billable_time",
                        description=(
                            f"{_hours_text(int(row.billable_ns))} billable {_span(*window)}"
                        ),
                        start=_at(window[0]),
                        end=_at(window[1]),
                        seconds=int(row.billable_ns) / 1e9,
                    ),
                ),
                **base,
            )
        phases = time.billable_phases(code, window)
        fits = [c for c in phases if abs(-delta_ns - c.ns) < tolerance_ns]
        hint = f"; it matches the {fits[0].text}, as if that phase were not billed" if fits else ""
        return Finding(
            kind="underbilled_time",
            severity=_severity(hours_part),
            explanation=(
                f"{_micro_hours_text(-delta)} less than the {_micro_hours_text(expected_hours)} of "
                f"billable time in the logs is billed for {job_id} ({scope}): "
                f"{_money(-hours_part, self.currency)} in your favour{hint}."
            ),
            evidence=tuple(e for c in fits for e in c.evidence),
            **base,
        )

    def _explained(
        self,
        matches: list[_Candidate],
        hours_part: int,
        job_id: str,
        scope: str,
        base: dict[str, Any],
    ) -> Finding:
        primary = matches[0]
        kinds = [primary.kind, *primary.also]
        others: list[_Candidate] = []
        for candidate in matches[1:]:
            if candidate.kind not in kinds:
                kinds.append(candidate.kind)
                others.append(candidate)
        same = [c for c in matches[1:] if c.kind == primary.kind][:2]
        text = (
            f"{primary.text} appears to be billed for {job_id} ({scope}): "
            f"{_money(hours_part, self.currency)}"
        )
        if primary.kind == "lost_work_billed":
            text += " (R5/R6: only captured forward progress is billed)"
        if primary.kind == "queue_time_billed":
            text += " (R2: excluded phases are never billed)"
        if same:
            text += "; " + " or ".join(c.text for c in same) + " fits as well"
        if others:
            text += "; the same difference is also explained by " + " or ".join(
                c.text for c in others
            )
        evidence = [*primary.evidence]
        for c in [*same, *others]:
            evidence.extend(c.evidence)
        return Finding(
            kind=primary.kind,
            severity=_severity(hours_part),
            explanation=text + ".",
            evidence=tuple(evidence),
            also=tuple(k for k in kinds[1:]),
            **base,
        )

    # --- discount -----------------------------------------------------------------------------

    def _discount(self, g: pd.DataFrame, expected: dict[str, pd.DataFrame]) -> None:
        money = expected["money"]
        policy = self.bill.policy
        settings = policy.data_sharing_discount
        numerator, denominator = _ratio(settings.rate)
        lines = g[g["line_type"] == "data_sharing_discount"]
        billed = lines.groupby(["job_id", "charge"], as_index=False).agg(
            billed=("amount_micro", "sum"), n_lines=("line", "size")
        )
        compute_billed = (
            g[g["line_type"] == "compute"].groupby(["job_id", "charge"])["amount_micro"].sum()
        )
        grader_billed = (
            g[g["line_type"] == "grader_tokens"].groupby(["job_id", "charge"])["amount_micro"].sum()
        )
        wanted = money[_among(money["job_id"], set(g["job_id"]))]
        groups = wanted.merge(billed, on=["job_id", "charge"], how="outer")
        groups = groups.assign(
            billed=groups["billed"].fillna(0).astype("int64"),
            expected=-groups["discount_cents"].fillna(0).astype("int64") * _MICRO_PER_CENT,
        )
        groups = groups[groups["billed"] != groups["expected"]]
        if groups.empty:
            return
        numbers = self._lines_for(lines, ["job_id", "charge"], groups)
        for row in groups.pipe(_rows):
            job_id, charge = str(row.job_id), int(row.charge)
            sharing = bool(self.jobs.loc[job_id, "data_sharing"])
            base_micro = 0
            if "compute" in settings.scope:
                base_micro += int(compute_billed.get((job_id, charge), 0))
            if "grader" in settings.scope:
                base_micro += int(grader_billed.get((job_id, charge), 0))
            follows = (
                -_round_div(base_micro * numerator, denominator * _MICRO_PER_CENT, self.mode)
                * _MICRO_PER_CENT
                if sharing
                else 0
            )
            diff = int(row.billed) - int(row.expected)
            found = numbers.get((row.job_id, row.charge), ())
            n = max(int(row.n) if not pd.isna(row.n) else 1, len(found), 1)
            at = _at(int(row.at)) if charge >= 0 and not pd.isna(row.at) else None
            common: dict[str, Any] = {
                "job_id": job_id,
                "invoice_line": found[0] if found else None,
                "invoice_lines": found,
                "line_type": "data_sharing_discount",
                "expected": _dec(int(row.expected)),
                "billed": _dec(int(row.billed)),
                "difference": _dec(diff),
                "charge_at": at,
            }
            rate_text = f"{(settings.rate * 100).normalize():f}%"
            scope_text = " and ".join(settings.scope) or "nothing"
            policy_evidence = Evidence(
                type="discount",
                description=(
                    f"policy {policy.name}: {rate_text} off {scope_text} for data-sharing jobs; "
                    f"job {job_id} was created with data_sharing={str(sharing).lower()}"
                ),
                price=settings.rate,
                source=policy.name,
            )
            cause = self.causes.get((job_id, charge))
            if (
                sharing
                and follows == int(row.billed)
                and follows != int(row.expected)
                and cause is not None
            ):
                self.add(
                    kind=cause.kind,
                    severity=cause.severity,
                    explanation=(
                        f"The discount follows the compute billed for {job_id}: {rate_text} of the "
                        f"{cause.kind.replace('_', ' ')} above is "
                        f"{_money(-diff, self.currency)} of "
                        "extra discount, which offsets part of that finding."
                    ),
                    evidence=(policy_evidence,),
                    also=cause.also,
                    **common,
                )
            elif abs(diff) <= n * _MICRO_PER_CENT and int(row.expected) != 0:
                self.add(
                    kind="rounding",
                    severity="info",
                    explanation=(
                        f"The data-sharing discount of {job_id} differs from {rate_text} of its "
                        "compute by "
                        f"{_money(diff, self.currency)}, which only rounding explains."
                    ),
                    evidence=(policy_evidence,),
                    **common,
                )
            else:
                if int(row.expected) != 0 and int(row.billed) == 0:
                    text = (
                        f"Job {job_id} was created with data sharing, but no data-sharing "
                        "discount is "
                        f"billed: policy {policy.name} gives {rate_text} off {scope_text}, "
                        f"{_money(-int(row.expected), self.currency)}."
                    )
                elif int(row.expected) == 0:
                    text = (
                        f"A discount of {_money(-int(row.billed), self.currency)} is billed for "
                        f"{job_id}, "
                        f"but policy {policy.name} gives "
                        + (
                            "no training discount (audit under openai-rft if your contract "
                            "grants one)."
                            if sharing
                            else "no discount to a job created without data sharing."
                        )
                    )
                else:
                    text = (
                        f"The data-sharing discount of {job_id} is "
                        f"{_money(-int(row.billed), self.currency)}; "
                        f"policy {policy.name} gives {rate_text} off {scope_text}, "
                        f"{_money(-int(row.expected), self.currency)}."
                    )
                self.add(
                    kind="missing_discount",
                    severity=_severity(diff),
                    explanation=text,
                    evidence=(policy_evidence,),
                    **common,
                )

    # --- grader tokens -------------------------------------------------------------------------

    def _grader(self, g: pd.DataFrame, expected: dict[str, pd.DataFrame]) -> None:
        lines = g[g["line_type"] == "grader_tokens"]
        family = expected["family"]
        typed = lines[lines["typed"]]
        untyped = lines[~lines["typed"]]
        typed_keys = typed[["job_id", "charge", "grader_family"]].drop_duplicates()
        # Untyped (and expected families with no line): amounts only.
        # The lines' own token count (quantity), when every line of the group gives one.
        billed = (
            untyped.assign(
                _q=untyped["quantity_micro"].fillna(0).astype("int64") // _MICRO,
                _q_missing=untyped["quantity_micro"].isna(),
            )
            .groupby(["job_id", "charge", "grader_family"], as_index=False)
            .agg(
                billed=("amount_micro", "sum"),
                billed_q=("_q", "sum"),
                q_missing=("_q_missing", "any"),
            )
        )
        wanted = family[_among(family["job_id"], set(g["job_id"]))]
        wanted = wanted.merge(
            typed_keys.assign(_typed=True), on=["job_id", "charge", "grader_family"], how="left"
        )
        wanted = wanted[wanted["_typed"].isna()].drop(columns="_typed")
        groups = wanted.merge(billed, on=["job_id", "charge", "grader_family"], how="outer")
        groups = groups.assign(
            billed=groups["billed"].fillna(0).astype("int64"),
            expected=groups["amount_cents"].fillna(0).astype("int64") * _MICRO_PER_CENT,
            n=groups["n"].fillna(1).astype("int64"),
            tokens=groups["tokens"].fillna(0).astype("int64"),
            billed_q=groups["billed_q"].fillna(0).astype("int64"),
            q_missing=groups["q_missing"].astype("boolean").fillna(True).astype(bool),
        )
        differing = groups[groups["billed"] != groups["expected"]]
        if not differing.empty:
            usage = _UsageIndex(self.bill, set(differing["job_id"]), self.code_of)
            keys = ["job_id", "charge", "grader_family"]
            numbers = self._lines_for(untyped, keys, differing)
            for row in differing.pipe(_rows):
                found = numbers.get((row.job_id, row.charge, row.grader_family), ())
                self._untyped_finding(row, usage, found)
        if not typed.empty:
            self._typed(typed, expected)

    def _charge_window(self, job_id: str, charge: int) -> tuple[int, int, datetime | None]:
        charges = self.bill.charges
        rows = charges[charges["job_id"].astype(str) == job_id]
        if charge >= 0:
            row = rows[rows["charge"] == charge].iloc[0]
            return int(row["segment_start"]), int(row["at"]), _at(int(row["at"]))
        first = int(self.bill.timeline.jobs.loc[int(self.code_of[job_id]), "first_ns"])
        return first, int(rows["at"].max()) if len(rows) else first, None

    def _untyped_finding(self, row: Any, usage: _UsageIndex, lines: tuple[int, ...]) -> None:
        job_id, charge, fam = str(row.job_id), int(row.charge), str(row.grader_family)
        diff = int(row.billed) - int(row.expected)
        _start, end, at = self._charge_window(job_id, charge)
        scope = f"charge at {_clock(end)} UTC" if charge >= 0 else "job"
        common: dict[str, Any] = {
            "job_id": job_id,
            "invoice_line": lines[0] if lines else None,
            "invoice_lines": lines,
            "line_type": "grader_tokens",
            "expected": _dec(int(row.expected)),
            "billed": _dec(int(row.billed)),
            "difference": _dec(diff),
            "charge_at": at,
            "grader_model": fam,
        }
        n = max(int(row.n), len(lines), 1)
        if abs(diff) <= n * _MICRO_PER_CENT and row.expected != 0 and row.billed != 0:
            self.add(
                kind="rounding",
                severity="info",
                explanation=(
                    f"The {fam} grader amount of {job_id} ({scope}) differs by "
                    f"{_money(diff, self.currency)}, "
                    "which only rounding explains."
                ),
                **common,
            )
            return
        code = int(self.code_of[job_id])
        lost_cost, lost_evidence = usage.lost_cost(code, fam, charge, self.bill, self.mode)
        old_cost, old_evidence = usage.previous_price_cost(code, fam, charge, self.bill, self.mode)
        tolerance = n * _MICRO_PER_CENT
        causes: list[tuple[FindingKind, str, list[Evidence]]] = []
        if lost_cost and abs(diff - lost_cost) <= tolerance:
            causes.append(
                (
                    "grader_tokens_mismatch",
                    f"the {_money(lost_cost, self.currency)} of {fam} tokens used in lost work "
                    "(R9: not "
                    "charged) appear to be billed",
                    lost_evidence,
                )
            )
        if row.expected and abs(diff - int(row.expected)) <= tolerance:
            causes.append(
                ("grader_tokens_mismatch", f"the {fam} tokens appear to be billed twice", [])
            )
        if (
            old_cost is not None
            and abs(diff - (old_cost - int(row.expected))) <= tolerance
            and diff != 0
        ):
            causes.append(
                (
                    "grader_price_mismatch",
                    f"the {fam} tokens appear to be priced at a rate no longer in force on "
                    "their usage "
                    f"date ({_money(old_cost, self.currency)} at the earlier price)",
                    old_evidence,
                )
            )
        counted = not bool(row.q_missing) and int(row.billed) != 0
        if counted and int(row.billed_q) == int(row.tokens) and int(row.tokens) > 0:
            # The invoice's token count is the logs': the difference is in the price.
            causes = [c for c in causes if c[0] == "grader_price_mismatch"]
            if not causes:
                said, evidence = usage.price_entries(
                    code, fam, charge, int(row.billed), self.bill, self.mode
                )
                causes.append(
                    (
                        "grader_price_mismatch",
                        f"{int(row.billed_q):,} {fam} tokens are billed, the logs' count, at "
                        f"{_money(int(row.billed), self.currency)} where the prices in force give "
                        f"{_money(int(row.expected), self.currency)}: the difference is in the "
                        f"price. {said}",
                        evidence,
                    )
                )
        elif counted and int(row.billed_q) != int(row.tokens):
            causes = [c for c in causes if c[0] != "grader_price_mismatch"]
            if not causes:
                causes.append(
                    (
                        "grader_tokens_mismatch",
                        f"{int(row.billed_q):,} {fam} tokens are billed where the logs count "
                        f"{int(row.tokens):,} charged tokens",
                        [],
                    )
                )
        if int(row.billed) == 0:
            text = (
                f"No {fam} grader line is billed for {job_id} ({scope}); the logs give "
                f"{_money(int(row.expected), self.currency)} of grader tokens."
            )
            self.add(
                kind="grader_tokens_mismatch", severity=_severity(diff), explanation=text, **common
            )
            return
        if int(row.expected) == 0 and not causes:
            text = (
                f"{_money(int(row.billed), self.currency)} of {fam} grader tokens billed for "
                f"{job_id} "
                f"({scope}), where the logs show no charged {fam} usage."
            )
            self.add(
                kind="grader_tokens_mismatch", severity=_severity(diff), explanation=text, **common
            )
            return
        if causes:
            kind = causes[0][0]
            text = f"{job_id} ({scope}): " + causes[0][1]
            if len(causes) > 1:
                text += "; the same difference is also explained if " + " or ".join(
                    c[1] for c in causes[1:]
                )
            self.add(
                kind=kind,
                severity=_severity(diff),
                explanation=text + f" ({_money(diff, self.currency)}).",
                evidence=tuple(e for c in causes for e in c[2]),
                also=tuple(dict.fromkeys(c[0] for c in causes[1:] if c[0] != kind)),
                **common,
            )
            return
        self.add(
            kind="grader_tokens_mismatch",
            severity=_severity(diff),
            explanation=(
                f"The {fam} grader amount of {job_id} ({scope}) is "
                f"{_money(int(row.billed), self.currency)}; "
                f"the logs give {_money(int(row.expected), self.currency)}. The invoice gives "
                "no token "
                "breakdown, so the token count and the price cannot be told apart."
            ),
            **common,
        )

    def _typed(self, lines: pd.DataFrame, expected: dict[str, pd.DataFrame]) -> None:
        """Grader lines by token type: per line (arithmetic, price), per type (tokens); the
        rest is rounding."""
        keys = ["job_id", "charge", "grader_family", "token_type"]
        family_keys = ["job_id", "charge", "grader_family"]
        tokens = expected["tokens"]
        if tokens.empty:
            tokens = pd.DataFrame(
                {
                    "job_id": pd.Series([], dtype=object),
                    "charge": pd.Series([], dtype="int64"),
                    "grader_family": pd.Series([], dtype=object),
                    "token_type": pd.Series([], dtype=object),
                    "price_index": pd.Series([], dtype="int64"),
                    "price_micro": pd.Series([], dtype="int64"),
                    "tokens": pd.Series([], dtype="int64"),
                    "pico": pd.Series([], dtype=object),
                }
            )
        tokens = tokens.merge(lines[family_keys].drop_duplicates(), on=family_keys)
        self._tokens = tokens
        per_type = tokens.groupby(keys, as_index=False)["tokens"].sum()
        per_type = per_type.set_axis([*keys, "expected_tokens"], axis="columns").merge(
            _exact_sums(tokens, keys, "pico"), on=keys
        )
        q = lines["quantity_micro"].astype("int64").to_numpy() // _MICRO
        p = lines["unit_price_micro"].astype("int64").to_numpy()
        computed = _cents_of_pico(q.astype(object) * p.astype(object), self.mode)
        # A line's price is in force when usage of its type was priced at it (R10).
        prices = tokens[[*keys, "price_micro"]].drop_duplicates().assign(in_force=True)
        lines = (
            lines.assign(tokens=q, computed=computed)
            .merge(per_type, on=keys, how="left")
            .merge(
                prices,
                left_on=[*keys, "unit_price_micro"],
                right_on=[*keys, "price_micro"],
                how="left",
            )
        )
        amount = lines["amount_micro"].to_numpy(dtype="int64")
        expected_tokens = lines["expected_tokens"].fillna(0).astype("int64")
        own = lines["in_force"].fillna(False).astype(bool) | (expected_tokens == 0)
        # Otherwise the line's tokens at the price in force (blended if it changed in the charge).
        blend = lines.index[~own]
        at_force = pd.Series(computed, index=lines.index, dtype="int64")
        for i in blend:  # only lines priced wrongly: findings
            at_force[i] = int(
                divide_round(
                    int(q[i]) * _n(lines.at[i, "pico"]),
                    int(expected_tokens[i]) * _PICO_PER_CENT,
                    self.mode,
                )
            )
        lines = lines.assign(
            arithmetic=amount - computed * _MICRO_PER_CENT,
            at_force=at_force,
            price_part=(computed - at_force.to_numpy()) * _MICRO_PER_CENT,
        )
        table = self.bill.policy.price_table
        for row in lines[(lines["arithmetic"] != 0) | (lines["price_part"] != 0)].pipe(_rows):
            at = None if pd.isna(row.event_at) else _at(int(row.event_at))
            price = Decimal(int(row.unit_price_micro)).scaleb(-6)
            product = (
                f"{int(row.tokens):,} {row.grader_family} {row.token_type} tokens × "
                f"{_price(price)} per 1M"
            )
            extra = {"grader_model": str(row.grader_family), "token_type": str(row.token_type)}
            if row.price_part != 0:
                self._price_finding(row, price, at, table, extra)
            if row.arithmetic != 0:
                self._arithmetic(row, "grader_tokens", product, at, **extra)

        # Per type: tokens. Per family: what is left is rounding.
        billed = lines.groupby(keys, as_index=False).agg(
            billed_tokens=("tokens", "sum"),
            at_force=("at_force", "sum"),
            arithmetic=("arithmetic", "sum"),
            price_part=("price_part", "sum"),
        )
        groups = per_type.merge(billed, on=keys, how="outer")
        pico = groups["pico"].where(groups["pico"].notna(), 0).to_numpy(dtype=object)
        groups = groups.assign(
            expected_tokens=groups["expected_tokens"].fillna(0).astype("int64"),
            billed_tokens=groups["billed_tokens"].fillna(0).astype("int64"),
            at_force=groups["at_force"].fillna(0).astype("int64"),
            expected_cents=_cents_of_pico(pico, self.mode),
        )
        groups = groups.assign(
            token_part=(groups["at_force"] - groups["expected_cents"]) * _MICRO_PER_CENT
        )
        findings = (groups["billed_tokens"] != groups["expected_tokens"]) & (
            groups["token_part"] != 0
        )
        token_groups = groups[findings]
        if not token_groups.empty:
            usage = _UsageIndex(self.bill, set(token_groups["job_id"]), self.code_of)
            numbers = self._lines_for(lines, keys, token_groups)
            for _, row in token_groups.iterrows():
                found = numbers.get(tuple(row[k] for k in keys), ())
                self._token_finding(row, usage, found)
        groups = groups.assign(
            explained=groups["token_part"].where(findings, 0)
            + groups["price_part"].fillna(0).astype("int64")
            + groups["arithmetic"].fillna(0).astype("int64")
        )
        fam = (
            lines.groupby(family_keys)[["amount_micro"]]
            .sum()
            .join(groups.groupby(family_keys)["explained"].sum())
            .reset_index()
            .merge(expected["family"][[*family_keys, "amount_cents"]], how="left", on=family_keys)
        )
        fam = fam.assign(
            expected=fam["amount_cents"].fillna(0).astype("int64") * _MICRO_PER_CENT,
        )
        fam = fam.assign(rest=fam["amount_micro"] - fam["expected"] - fam["explained"])
        rests = fam[fam["rest"] != 0]
        numbers = self._lines_for(lines, family_keys, rests)
        for row in rests.pipe(_rows):
            lines_of = numbers.get((row.job_id, row.charge, row.grader_family), ())
            job_id, charge = str(row.job_id), int(row.charge)
            _, _end, at = self._charge_window(job_id, charge)
            rest = int(row.rest)
            self.add(
                kind="rounding",
                severity="info",
                job_id=job_id,
                invoice_line=lines_of[0] if lines_of else None,
                invoice_lines=lines_of,
                line_type="grader_tokens",
                expected=_dec(int(row.expected)),
                billed=_dec(int(row.expected) + rest),
                difference=_dec(rest),
                charge_at=at,
                grader_model=str(row.grader_family),
                explanation=(
                    f"The {row.grader_family} token lines of {job_id} are rounded one by one; "
                    f"the bill rounds their sum once (R13): {_money(rest, self.currency)}, which "
                    "only rounding explains."
                ),
            )

    def _price_finding(
        self, row: Any, price: Decimal, at: datetime | None, table: Any, extra: dict[str, Any]
    ) -> None:
        line = int(row.line)
        family = str(row.grader_family)
        entries = table.models.get(family, ())
        tokens = self._tokens
        used = tokens[
            (tokens["job_id"] == row.job_id)
            & (tokens["charge"] == row.charge)
            & (tokens["grader_family"] == row.grader_family)
            & (tokens["token_type"] == row.token_type)
        ]
        in_force = [entries[i] for i in sorted(set(used["price_index"])) if 0 <= i < len(entries)]
        field_name = {"input": "input", "cached_input": "cached_input", "output": "output"}[
            str(row.token_type)
        ]
        matching = [e for e in entries if getattr(e, field_name) == price]
        evidence = [
            Evidence(
                type="price_entry",
                description=(
                    f"{family} {row.token_type} {_price(getattr(e, field_name))} per 1M from "
                    f"{e.effective_from.date()} (in force for this usage)"
                ),
                price=getattr(e, field_name),
                effective_from=e.effective_from,
                source=e.source,
                grader_model=family,
                token_type=str(row.token_type),
            )
            for e in in_force
        ]
        old = ""
        for e in matching:
            later = [x for x in entries if x.effective_from > e.effective_from]
            until = f", replaced on {later[0].effective_from.date()}" if later else ""
            old = f"; {_price(price)} is the entry from {e.effective_from.date()}{until}"
            evidence.append(
                Evidence(
                    type="price_entry",
                    description=(
                        f"{family} {row.token_type} {_price(price)} per 1M from "
                        f"{e.effective_from.date()}{until}"
                    ),
                    price=price,
                    effective_from=e.effective_from,
                    source=e.source,
                    grader_model=family,
                    token_type=str(row.token_type),
                )
            )
        in_force_text = " / ".join(f"{_price(getattr(e, field_name))}" for e in in_force) or "?"
        diff = int(row.price_part)
        self.add(
            kind="grader_price_mismatch",
            severity=_severity(diff),
            job_id=str(row.job_id),
            invoice_line=line,
            invoice_lines=(line,),
            line_type="grader_tokens",
            expected=cents_to_decimal(int(row.at_force)),
            billed=cents_to_decimal(int(row.computed)),
            difference=_dec(diff),
            charge_at=at,
            explanation=(
                f"Line {line} prices {int(row.tokens):,} {family} {row.token_type} tokens at "
                f"{_price(price)} {self.currency} per 1M; the price in force on their usage "
                "date is "
                f"{in_force_text} (R10){old}: {_money(diff, self.currency)}."
            ),
            evidence=tuple(evidence),
            **extra,
        )

    def _token_finding(self, row: pd.Series, usage: _UsageIndex, lines: tuple[int, ...]) -> None:
        job_id, charge, family, token_type = (
            str(row["job_id"]),
            int(row["charge"]),
            str(row["grader_family"]),
            str(row["token_type"]),
        )
        _, end, at = self._charge_window(job_id, charge)
        scope = f"charge at {_clock(end)} UTC" if charge >= 0 else "job"
        billed_tokens, expected_tokens = int(row["billed_tokens"]), int(row["expected_tokens"])
        delta = billed_tokens - expected_tokens
        diff = int(row["token_part"])
        lost, lost_evidence = usage.lost_tokens(
            int(self.code_of[job_id]), family, charge, token_type, self.bill
        )
        reasons = []
        evidence: list[Evidence] = [
            Evidence(
                type="tokens",
                description=(
                    f"logs: {expected_tokens:,} charged {family} {token_type} tokens ({scope})"
                ),
                grader_model=family,
                token_type=token_type,
                tokens=expected_tokens,
            )
        ]
        if lost and delta == lost:
            reasons.append(
                f"they equal the {lost:,} {token_type} tokens used in lost work (R9: not charged)"
            )
            evidence.extend(lost_evidence)
        if expected_tokens and billed_tokens == 2 * expected_tokens:
            reasons.append("the tokens appear to be counted twice")
        if expected_tokens == 0 and billed_tokens:
            reasons.append("the logs show no charged usage of this kind")
        because = ("; " + " or ".join(reasons)) if reasons else ""
        self.add(
            kind="grader_tokens_mismatch",
            severity=_severity(diff),
            job_id=job_id,
            invoice_line=lines[0] if lines else None,
            invoice_lines=lines,
            line_type="grader_tokens",
            expected=cents_to_decimal(int(row["expected_cents"])),
            billed=_dec(int(row["expected_cents"]) * _MICRO_PER_CENT + diff),
            difference=_dec(diff),
            charge_at=at,
            grader_model=family,
            token_type=token_type,
            explanation=(
                f"{billed_tokens:,} {family} {token_type} tokens billed for {job_id} ({scope}) "
                "where the "
                f"logs give {expected_tokens:,}: {delta:+,} tokens, "
                f"{_money(diff, self.currency)}{because}."
            ),
            evidence=tuple(evidence),
        )


def _exact_sums(frame: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Exact group sums of a column of Python ints: int64 when no sum can overflow."""
    values = frame[column]
    if values.empty:
        return frame[keys].drop_duplicates().assign(**{column: pd.Series([], dtype=object)})
    largest = max(abs(int(v)) for v in (values.max(), values.min()))
    if largest * len(values) < 2**62:
        sums = (
            frame.assign(**{column: values.astype("int64")})
            .groupby(keys, as_index=False)[column]
            .sum()
        )
        exact: pd.DataFrame = sums.assign(**{column: sums[column].astype(object)})
        return exact
    big: pd.DataFrame = frame.groupby(keys, as_index=False).agg(
        **{column: (column, lambda v: sum(int(x) for x in v))}
    )
    return big


def _mode(name: str) -> Any:
    from rftcost.money import RoundingMode

    return RoundingMode(name)


def _cents_of_pico(pico: np.ndarray[Any, Any], mode: Any) -> np.ndarray[Any, Any]:
    """Exact non-negative pico-amounts (object ints) → int64 cents, rounded with ``mode``."""
    if len(pico) == 0:
        return np.zeros(0, dtype="int64")
    return np.asarray(divide_round(pico, _PICO_PER_CENT, mode), dtype="int64")


# --- time evidence for the few jobs with differences --------------------------------------


class _TimeIndex:
    """Phase intervals, losses and lost pieces of a few jobs, for explaining billed hours."""

    def __init__(self, bill: Any, job_ids: set[str], code_of: pd.Series) -> None:
        timeline = bill.timeline
        codes = {int(c) for c in code_of.reindex(list(job_ids)).dropna()}
        self.intervals = _split(timeline.intervals, codes)
        self.losses = _split(timeline.losses, codes)
        pieces = timeline.pieces
        self.lost_pieces = _split(pieces[pieces["lost"]], codes)
        self.billable_pieces = _split(pieces[pieces["billable"]], codes)

    def _billable_union(self, code: int) -> list[tuple[int, int]]:
        rows = self.billable_pieces.get(code)
        if rows is None:
            return []
        return _merge([(int(s), int(e)) for s, e in zip(rows["start"], rows["end"], strict=True)])

    def over_candidates(self, code: int, charge: int, window: tuple[int, int]) -> list[_Candidate]:
        """Excluded intervals and lost work inside ``window`` whose billing would add hours."""
        w0, w1 = window
        candidates: list[_Candidate] = []
        billable = self._billable_union(code)
        by_phase: dict[str, list[tuple[int, int, int]]] = {}
        rows = self.intervals.get(code)
        if rows is not None:
            for phase, start, end, is_billable in zip(
                rows["phase"], rows["start"], rows["end"], rows["billable"], strict=True
            ):
                if is_billable:
                    continue
                s, e = max(int(start), w0), min(int(end), w1)
                if e <= s:
                    continue
                extra = (e - s) - _overlap([(s, e)], billable)
                if extra <= 0:
                    continue
                by_phase.setdefault(str(phase), []).append((s, e, extra))
        interval_evidence: dict[str, list[Evidence]] = {}
        for phase, spans in by_phase.items():
            evidence = [
                Evidence(
                    type="excluded_interval",
                    description=f"{phase} {_span(s, e)} ({_hours_text(extra)} not billable)",
                    phase=phase,
                    start=_at(s),
                    end=_at(e),
                    seconds=extra / 1e9,
                )
                for s, e, extra in spans
            ]
            interval_evidence[phase] = evidence
            for (s, e, extra), ev in zip(spans, evidence, strict=True):
                candidates.append(
                    _Candidate(
                        "queue_time_billed",
                        extra,
                        f"{_hours_text(extra)} of {_phase_name(phase)} time {_span(s, e)}",
                        [ev],
                        0,
                    )
                )
            if len(spans) > 1:
                total = _union_length([(s, e) for s, e, _ in spans], billable)
                candidates.append(
                    _Candidate(
                        "queue_time_billed",
                        total,
                        f"{_hours_text(total)} of {_phase_name(phase)} time ({len(spans)} "
                        "intervals)",
                        evidence,
                        1,
                    )
                )
        phases = sorted(by_phase)
        for a, b in combinations(phases, 2):
            pair = [(s, e) for p in (a, b) for s, e, _ in by_phase[p]]
            total = _union_length(pair, billable)
            candidates.append(
                _Candidate(
                    "queue_time_billed",
                    total,
                    f"{_hours_text(total)} of {_phase_name(a)} and {_phase_name(b)} time",
                    interval_evidence[a] + interval_evidence[b],
                    2,
                )
            )
        all_excluded = 0
        if len(phases) > 2:
            every = [(s, e) for p in phases for s, e, _ in by_phase[p]]
            all_excluded = _union_length(every, billable)
            candidates.append(
                _Candidate(
                    "queue_time_billed",
                    all_excluded,
                    f"{_hours_text(all_excluded)} of excluded time "
                    f"({', '.join(_phase_name(p) for p in phases)})",
                    [e for p in phases for e in interval_evidence[p]],
                    3,
                )
            )
        elif phases:
            all_excluded = _union_length(
                [(s, e) for p in phases for s, e, _ in by_phase[p]], billable
            )
        # Idle gaps (no phase at all) and excluded time together: billing the wall clock.
        covered = _merge(
            [(int(s), int(e)) for s, e in zip(rows["start"], rows["end"], strict=True)]
            if rows is not None
            else []
        )
        idle = (w1 - w0) - _overlap([(w0, w1)], covered)
        losses = self.losses.get(code)
        lost_total = 0
        loss_candidates: list[_Candidate] = []
        if losses is not None:
            lost = self.lost_pieces.get(code)
            lost_spans = (
                [(int(s), int(e)) for s, e in zip(lost["start"], lost["end"], strict=True)]
                if lost is not None
                else []
            )
            for loss in losses.pipe(_rows):
                if charge >= 0 and int(loss.segment) != charge:
                    continue
                if not (w0 <= int(loss.end) <= w1 or w0 <= int(loss.start) < w1):
                    continue
                ns = _overlap([(int(loss.start), int(loss.end))], lost_spans)
                if ns <= 0:
                    continue
                lost_total += ns
                step = None if pd.isna(loss.checkpoint_step) else int(loss.checkpoint_step)
                ck_at = None if pd.isna(loss.checkpoint_ts) else int(loss.checkpoint_ts)
                after = (
                    f" after checkpoint step {step} saved at {_clock(ck_at)} UTC"
                    if step is not None and ck_at is not None
                    else " (no checkpoint in the segment)"
                )
                text = (
                    f"{_hours_text(ns)} of work lost to the {loss.cause} at "
                    f"{_clock(int(loss.at))} UTC{after}"
                )
                evidence = [
                    Evidence(
                        type="lost_interval",
                        description=f"lost to {loss.cause} {_span(int(loss.start), int(loss.end))}",
                        start=_at(int(loss.start)),
                        end=_at(int(loss.end)),
                        seconds=ns / 1e9,
                        cause=str(loss.cause),
                        checkpoint_step=step,
                        checkpoint_at=None if ck_at is None else _at(ck_at),
                    )
                ]
                if step is not None and ck_at is not None:
                    evidence.append(
                        Evidence(
                            type="checkpoint",
                            description=f"checkpoint step {step} saved at {_clock(ck_at)} UTC",
                            checkpoint_step=step,
                            checkpoint_at=_at(ck_at),
                        )
                    )
                loss_candidates.append(_Candidate("lost_work_billed", ns, text, evidence, 0))
        candidates.extend(loss_candidates)
        if len(loss_candidates) > 1:
            candidates.append(
                _Candidate(
                    "lost_work_billed",
                    lost_total,
                    f"{_hours_text(lost_total)} of work lost to {len(loss_candidates)} failures "
                    "or rollbacks",
                    [e for c in loss_candidates for e in c.evidence],
                    1,
                )
            )
        if loss_candidates and all_excluded:
            candidates.append(
                _Candidate(
                    "queue_time_billed",
                    lost_total + all_excluded,
                    f"{_hours_text(all_excluded)} of excluded time and "
                    f"{_hours_text(lost_total)} of lost work",
                    [e for p in phases for e in interval_evidence[p]]
                    + [e for c in loss_candidates for e in c.evidence],
                    4,
                    also=("lost_work_billed",),
                )
            )
        if idle > 0:
            wall = (w1 - w0) - (_overlap([(w0, w1)], billable) - lost_total)
            candidates.append(
                _Candidate(
                    "queue_time_billed",
                    wall,
                    f"the wall clock {_span(w0, w1)} ({_hours_text(wall)} beyond the billable "
                    "time, "
                    f"{_hours_text(idle)} of it with no phase at all)",
                    [e for p in phases for e in interval_evidence[p]],
                    5,
                    also=("lost_work_billed",) if lost_total else (),
                )
            )
        return candidates

    def billable_phases(self, code: int, window: tuple[int, int]) -> list[_Candidate]:
        """Billable phases inside ``window`` (for hours billed short)."""
        rows = self.intervals.get(code)
        if rows is None:
            return []
        w0, w1 = window
        by_phase: dict[str, list[tuple[int, int]]] = {}
        for phase, start, end, is_billable in zip(
            rows["phase"], rows["start"], rows["end"], rows["billable"], strict=True
        ):
            s, e = max(int(start), w0), min(int(end), w1)
            if is_billable and e > s:
                by_phase.setdefault(str(phase), []).append((s, e))
        found = []
        for phase, spans in sorted(by_phase.items()):
            total = _union_length(spans, [])
            found.append(
                _Candidate(
                    "underbilled_time",
                    total,
                    f"{phase} phase ({_hours_text(total)})",
                    [
                        Evidence(
                            type="billable_phase",
                            description=f"{phase} {_span(s, e)}",
                            phase=phase,
                            start=_at(s),
                            end=_at(e),
                            seconds=(e - s) / 1e9,
                        )
                        for s, e in spans
                    ],
                    0,
                )
            )
        return found


_PHASE_NAMES = {
    "queued": "queue",
    "validating_files": "file validation",
    "safety_check": "safety check",
    "safety_eval": "safety evaluation",
    "paused": "pause",
}


def _phase_name(phase: str) -> str:
    return _PHASE_NAMES.get(phase, phase)


def _split(frame: pd.DataFrame, codes: set[int]) -> dict[int, pd.DataFrame]:
    chosen = frame[_among(frame["job"], list(codes))]
    return {_n(code): group for code, group in chosen.groupby("job", sort=False)}


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _overlap(spans: list[tuple[int, int]], others: list[tuple[int, int]]) -> int:
    total = 0
    for s, e in _merge(spans):
        for a, b in others:
            total += max(0, min(e, b) - max(s, a))
    return total


def _union_length(spans: list[tuple[int, int]], minus: list[tuple[int, int]]) -> int:
    merged = _merge(spans)
    return sum(e - s for s, e in merged) - _overlap(merged, _merge(minus))


class _UsageIndex:
    """Grader usage of a few jobs, priced, for explaining grader differences."""

    def __init__(self, bill: Any, job_ids: set[str], code_of: pd.Series) -> None:
        codes = {int(c) for c in code_of.reindex(list(job_ids)).dropna()}
        usage = bill.timeline.usage
        usage = usage[_among(usage["job"], list(codes))]
        if usage.empty:
            self.usage = usage.assign(
                grader_family=pd.Series([], dtype=str), price_index=pd.Series([], dtype="int64")
            )
            self.n_charges: dict[int, int] = {}
            return
        family = (
            usage["grader_model"]
            .astype(str)
            .map({m: resolve_model_family(m) for m in usage["grader_model"].astype(str).unique()})
        )
        prices = bill.policy.price_table.to_frame()
        self.usage = usage.assign(
            grader_family=family.to_numpy(),
            price_index=_price_index_at(family, usage["ts"], prices),
            cached_input_tokens=usage["cached_input_tokens"].fillna(0).astype("int64"),
        )
        counts = bill.timeline.charges.groupby("job").size()
        self.n_charges = {int(k): int(v) for k, v in counts.items()}

    def _rows(self, code: int, family: str, charge: int) -> pd.DataFrame:
        u = self.usage
        rows = u[(u["job"] == code) & (u["grader_family"] == family)]
        if charge >= 0:
            chosen: pd.DataFrame = rows[rows["segment"] == charge]
            return chosen
        earlier: pd.DataFrame = rows[rows["segment"] < self.n_charges.get(code, 0)]
        return earlier

    @staticmethod
    def _pico(rows: pd.DataFrame, table: Any, family: str, offset: int = 0) -> int | None:
        entries = table.models.get(family, ())
        total = 0
        for row in rows.pipe(_rows):
            index = int(row.price_index) - offset
            if index < 0 or index >= len(entries):
                return None
            e = entries[index]
            scale = Decimal(10**12) / table.unit_tokens
            uncached = int(row.input_tokens) - int(row.cached_input_tokens)
            total += int(
                (
                    e.input * uncached
                    + e.cached_input * int(row.cached_input_tokens)
                    + e.output * int(row.output_tokens)
                )
                * scale
            )
        return total

    def lost_cost(
        self, code: int, family: str, charge: int, bill: Any, mode: Any
    ) -> tuple[int, list[Evidence]]:
        rows = self._rows(code, family, charge)
        lost = rows[rows["lost"]]
        if lost.empty:
            return 0, []
        pico = self._pico(lost, bill.policy.price_table, family) or 0
        cents = int(divide_round(pico, _PICO_PER_CENT, mode))
        evidence = [
            Evidence(
                type="tokens",
                description=(
                    f"{int(lost['input_tokens'].sum()):,} input and "
                    f"{int(lost['output_tokens'].sum()):,} "
                    f"output {family} tokens used in lost work"
                ),
                grader_model=family,
                tokens=int(lost["input_tokens"].sum() + lost["output_tokens"].sum()),
            )
        ]
        return cents * _MICRO_PER_CENT, evidence

    def lost_tokens(
        self, code: int, family: str, charge: int, token_type: str, bill: Any
    ) -> tuple[int, list[Evidence]]:
        rows = self._rows(code, family, charge)
        lost = rows[rows["lost"]]
        if lost.empty:
            return 0, []
        cached = int(lost["cached_input_tokens"].sum())
        count = {
            "input": int(lost["input_tokens"].sum()) - cached,
            "cached_input": cached,
            "output": int(lost["output_tokens"].sum()),
        }[token_type]
        first, last = int(lost["ts"].min()), int(lost["ts"].max())
        return count, [
            Evidence(
                type="tokens",
                description=(
                    f"{count:,} {family} {token_type} tokens used in lost work "
                    + (f"at {_clock(first)} UTC" if first == last else _span(first, last))
                ),
                grader_model=family,
                token_type=token_type,
                tokens=count,
                start=_at(first),
                end=_at(last),
            )
        ]

    def price_entries(
        self, code: int, family: str, charge: int, billed: int, bill: Any, mode: Any
    ) -> tuple[str, list[Evidence]]:
        """The charged tokens priced at every entry of ``family``: which one gives ``billed``."""
        rows = self._rows(code, family, charge)
        rows = rows[~rows["lost"]]
        table = bill.policy.price_table
        entries = table.models.get(family, ())
        evidence, match, current = [], None, None
        in_force = {int(i) for i in rows["price_index"]}
        for index, entry in enumerate(entries):
            pico = self._pico(rows.assign(price_index=index), table, family)
            if pico is None:
                continue
            micro = int(divide_round(pico, _PICO_PER_CENT, mode)) * _MICRO_PER_CENT
            if index in in_force:
                current = entry
            elif abs(micro - billed) <= _MICRO_PER_CENT and match is None:
                match = entry
            evidence.append(
                _price_entry_evidence(
                    family, entry, micro, _currency(bill), in_force=index in in_force
                )
            )
        if match is not None:
            return (
                f"The billed amount is what the {family} price entry from "
                f"{match.effective_from.date()} gives ({_price(match.input)} / "
                f"{_price(match.cached_input)} / {_price(match.output)} per 1M input / cached / "
                "output), not the one in force"
                + (f" (from {current.effective_from.date()})" if current else "")
                + ".",
                evidence,
            )
        return f"No {family} price entry gives the billed amount.", evidence

    def previous_price_cost(
        self, code: int, family: str, charge: int, bill: Any, mode: Any
    ) -> tuple[int | None, list[Evidence]]:
        rows = self._rows(code, family, charge)
        rows = rows[~rows["lost"]]
        if rows.empty:
            return None, []
        table = bill.policy.price_table
        pico = self._pico(rows, table, family, offset=1)
        if pico is None:
            return None, []
        entries = table.models.get(family, ())
        used = sorted({int(i) for i in rows["price_index"]})
        evidence = []
        for i in used:
            old, new = entries[i - 1], entries[i]
            evidence.append(
                Evidence(
                    type="price_entry",
                    description=(
                        f"{family} from {new.effective_from.date()}: {_price(new.input)} / "
                        f"{_price(new.cached_input)} / {_price(new.output)} per 1M (in force); "
                        f"before: {_price(old.input)} / {_price(old.cached_input)} / "
                        f"{_price(old.output)}"
                    ),
                    effective_from=new.effective_from,
                    source=new.source,
                    grader_model=family,
                )
            )
        return int(divide_round(pico, _PICO_PER_CENT, mode)) * _MICRO_PER_CENT, evidence


# --- the project/day audit (Costs API exports) ----------------------------------------------------


_CATEGORIES = ("compute", "data_sharing_discount", "grader_tokens")
_DAY_TOTAL = "day_total"
"""Cell of a project and day whose export lines name no line item: only the total compares."""
_REEXPORT = (
    "re-export with group_by=line_item,project_id (GET /v1/organization/costs?bucket_width=1d"
    "&group_by=line_item&group_by=project_id) to compare compute, grader tokens and discounts "
    "each on its own"
)


def _quantity_text(micro: int, unit: str, places: int) -> str:
    """Micro-units → hours with at least ``places`` decimals ("0.50 h") or whole tokens."""
    if unit == "tokens":
        return f"{micro // _MICRO:,} tokens"
    value = Decimal(micro).scaleb(-6).normalize()
    if value.as_tuple().exponent > -places:  # type: ignore[operator]
        value = value.quantize(Decimal(1).scaleb(-places))
    return f"{value:f} h"


def _billed_quantity_text(micro: int, unit: str) -> str:
    """The vendor's quantity as it wrote it ("0.5 h", not "0.50 h")."""
    if unit == "tokens":
        return _quantity_text(micro, unit, 0)
    return f"{Decimal(micro).scaleb(-6).normalize():f} h"


@dataclass
class _ProjectDayAudit(_Base):
    project_map: dict[str, str] = field(default_factory=dict)
    _expected_micro: int = 0
    _billed_micro: int = 0
    _invoice_micro: int = 0
    _unchecked_micro: int = 0
    _known: set[str] = field(default_factory=set)
    _unplaced: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    _export_projects: tuple[str, ...] = ()
    _day_totals: bool = False

    def comparison(self) -> str:
        return (
            "per project and UTC day: the Costs API export names no jobs, so each charge is placed "
            "on its billing event's day (UTC) under its job's project and compared per category "
            "(compute, data-sharing discount, grader tokens)"
            + (
                "; where the export names no line item (no group_by=line_item), the day's total "
                "is compared"
                if self._day_totals
                else ""
            )
        )

    def totals(self) -> tuple[int, int, int, int]:
        return self._expected_micro, self._billed_micro, self._invoice_micro, self._unchecked_micro

    def _lines(self) -> pd.DataFrame:
        """The export's lines, with its project ids mapped to the logs' project names."""
        lines = self.invoice.lines
        if self.project_map:
            project = lines["project"].astype(object)
            mapped = project.map(lambda p: self.project_map.get(p, p) if isinstance(p, str) else p)
            lines = lines.assign(project=mapped.astype("string"))
        return lines

    def _expected(self, by_project: bool) -> pd.DataFrame:
        """Charges of the logs per project, day, category and job, with hours and tokens."""
        bill = self.bill
        charges = bill.charges.astype({"job_id": object})
        jobs = bill.jobs.assign(job_id=bill.jobs["job_id"].astype(str)).set_index("job_id")
        project = jobs["project"].reindex(charges["job_id"]).astype("string").fillna("").to_numpy()
        day = (
            pd.to_datetime(
                (charges["at"].astype("int64") // _NS_PER_DAY) * _NS_PER_DAY, unit="ns", utc=True
            )
            .dt.strftime("%Y-%m-%d")
            .to_numpy()
        )
        self._known = {str(p) for p in project}
        if not by_project:
            project = np.full(len(charges), "", dtype=object)
        places = int(bill.policy.rounding.hours_decimals)
        grader = bill.grader_lines[bill.grader_lines["charge"] >= 0].astype({"job_id": object})
        tokens = (
            grader.assign(tokens=grader["input_tokens"] + grader["output_tokens"])
            .groupby(["job_id", "charge"])["tokens"]
            .sum()
        )
        key = pd.MultiIndex.from_arrays([charges["job_id"], charges["charge"]])
        charge_tokens = tokens.reindex(key).fillna(0).astype("int64").to_numpy()
        base = {
            "project": project,
            "day": day,
            "job_id": charges["job_id"].to_numpy(),
            "charge": charges["charge"].astype("int64").to_numpy(),
        }
        expected = pd.concat(
            [
                pd.DataFrame(
                    {
                        **base,
                        "line_type": category,
                        "micro": sign
                        * charges[column].astype("int64").to_numpy()
                        * _MICRO_PER_CENT,
                        "quantity": quantity,
                    }
                )
                for category, column, sign, quantity in (
                    (
                        "compute",
                        "compute_cents",
                        1,
                        charges["hour_units"].astype("int64").to_numpy() * 10 ** (6 - places),
                    ),
                    ("data_sharing_discount", "discount_cents", -1, 0),
                    ("grader_tokens", "grader_cents", 1, charge_tokens * _MICRO),
                )
            ],
            ignore_index=True,
        )
        expected = expected[(expected["micro"] != 0) | (expected["quantity"] != 0)]
        return expected

    def run(self) -> None:
        lines = self._lines()
        self._invoice_micro = int(lines["amount_micro"].sum())
        checked = lines["line_type"].isin([*_CATEGORIES, "unknown"])
        self._unchecked_micro = int(lines.loc[~checked, "amount_micro"].sum())
        lines = lines[checked]
        self._billed_micro = int(lines["amount_micro"].sum())
        by_project = bool(lines["project"].notna().any())
        expected = self._expected(by_project)
        self._expected_micro = int(expected["micro"].sum())
        billed_lines = lines.assign(
            project=lines["project"].fillna("").astype(str),
            day=lines["day"].astype(str),
            line_type=lines["line_type"].astype(str),
        )
        # An export without line items (no group_by=line_item) cannot tell compute, grader
        # tokens and discounts apart: its project's day is compared as one total.
        whole = billed_lines.loc[billed_lines["line_type"] == "unknown", ["project", "day"]]
        whole_keys = set(zip(whole["project"], whole["day"], strict=True))
        self._day_totals = bool(whole_keys)
        if whole_keys:
            fold = pd.Series(
                [k in whole_keys for k in zip(expected["project"], expected["day"], strict=True)],
                index=expected.index,
                dtype=bool,
            )
            expected = expected.assign(
                line_type=expected["line_type"].mask(fold, _DAY_TOTAL),
                quantity=expected["quantity"].mask(fold, 0),
            )
            fold_lines = pd.Series(
                [
                    k in whole_keys
                    for k in zip(billed_lines["project"], billed_lines["day"], strict=True)
                ],
                index=billed_lines.index,
                dtype=bool,
            )
            billed_lines = billed_lines.assign(
                line_type=billed_lines["line_type"].mask(fold_lines, _DAY_TOTAL)
            )
        hours = _hour_unit(billed_lines["unit"])
        tokens = _token_unit(billed_lines["unit"])
        # The vendor's own quantity (R-independent cross-check): hours for compute lines given
        # in hours, tokens for grader lines given in tokens; unknown when a line lacks one.
        fits = billed_lines["quantity_micro"].notna() & (
            ((billed_lines["line_type"] == "compute") & hours)
            | ((billed_lines["line_type"] == "grader_tokens") & tokens)
        )
        billed_lines = billed_lines.assign(
            q=billed_lines["quantity_micro"].where(fits, 0).astype("int64"),
            q_missing=~fits,
        )
        keys = ["project", "day", "line_type"]
        exp = expected.groupby(keys, as_index=False).agg(
            expected=("micro", "sum"),
            expected_q=("quantity", "sum"),
            jobs=("job_id", lambda j: tuple(sorted(set(j)))),
            n=("micro", "size"),
        )
        got = billed_lines.groupby(keys, as_index=False).agg(
            billed=("amount_micro", "sum"),
            billed_q=("q", "sum"),
            q_missing=("q_missing", "any"),
            lines=("line", list),
            descriptions=("description", lambda d: tuple(sorted({str(x) for x in d}))),
        )
        cells = exp.merge(got, on=keys, how="outer")
        cells = cells.assign(
            expected=cells["expected"].fillna(0).astype("int64"),
            billed=cells["billed"].fillna(0).astype("int64"),
            expected_q=cells["expected_q"].fillna(0).astype("int64"),
            billed_q=cells["billed_q"].fillna(0).astype("int64"),
            q_missing=cells["q_missing"].astype("boolean").fillna(True).astype(bool),
        ).sort_values(keys)
        # Jobs that a by-project export cannot place: the logs give them no project.
        self._export_projects = tuple(
            sorted({p for p in billed_lines["project"] if p and p not in self._known})
        )
        if by_project:
            # Jobs whose project (or lack of one) is none of the export's: a mapping may place
            # them (--project-map).
            exported = set(billed_lines["project"])
            loose = expected[~_among(expected["project"], exported)]
            self._unplaced = {
                str(d): tuple(sorted(set(zip(g["job_id"], g["project"], strict=True))))
                for d, g in loose.groupby("day")
            }
        per_job = expected.groupby(["project", "day", "line_type", "job_id"])["micro"].sum()
        places = int(self.bill.policy.rounding.hours_decimals)
        comparisons = []
        for row in cells.pipe(_rows):
            comparisons.append(self._comparison(row, places))
            if int(row.expected) != int(row.billed):
                self._cell_finding(row, per_job, places, expected)
            elif str(row.line_type) == _DAY_TOTAL:
                self.notes.append(
                    f"{self._where(row)}: the export names no line item, so compute, grader "
                    "tokens and discounts cannot be told apart; the day's total agrees: billed "
                    f"{_money(int(row.billed), self.currency)}, the logs "
                    f"{_money(int(row.expected), self.currency)}; " + _REEXPORT + "."
                )
            else:
                self._quantity_note(row, places)
        self.comparisons = comparisons

    def _where(self, row: Any) -> str:
        return f"project {row.project or '(all)'} on {row.day} (UTC)"

    def _comparison(self, row: Any, places: int) -> Comparison:
        unit = {"compute": "hours", "grader_tokens": "tokens"}.get(str(row.line_type))
        expected_q = billed_q = None
        if unit is not None:
            expected_q = Decimal(int(row.expected_q)).scaleb(-6)
            if unit == "hours":
                expected_q = expected_q.quantize(Decimal(1).scaleb(-places))
            if not bool(row.q_missing):
                billed_q = Decimal(int(row.billed_q)).scaleb(-6).normalize()
        jobs = row.jobs if isinstance(row.jobs, tuple) else ()
        return Comparison(
            project=str(row.project) or None,
            day=str(row.day),
            line_type=None if str(row.line_type) == _DAY_TOTAL else str(row.line_type),
            expected=_dec(int(row.expected)),
            billed=_dec(int(row.billed)),
            expected_quantity=expected_q,
            billed_quantity=billed_q,
            quantity_unit=unit,
            jobs=tuple(str(j) for j in jobs),
        )

    def _quantity_note(self, row: Any, places: int) -> None:
        """Amounts agree: say whether the vendor's own quantity agrees too, with both figures."""
        unit = {"compute": "hours", "grader_tokens": "tokens"}.get(str(row.line_type))
        if unit is None or bool(row.q_missing) or not isinstance(row.lines, list):
            return
        billed = _billed_quantity_text(int(row.billed_q), unit)
        logs = _quantity_text(int(row.expected_q), unit, places)
        same = int(row.billed_q) == int(row.expected_q)
        self.notes.append(
            f"{self._where(row)}, {row.line_type}: billed "
            f"{_money(int(row.billed), self.currency)} for {billed}, the logs "
            f"{_money(int(row.expected), self.currency)} for {logs}: "
            + (
                "the vendor's quantity agrees."
                if same
                else "the amounts agree but the vendor's quantity differs."
            )
        )

    def _cell_finding(
        self, row: Any, per_job: pd.Series, places: int, expected: pd.DataFrame
    ) -> None:
        diff = int(row.billed) - int(row.expected)
        lines = tuple(int(n) for n in row.lines) if isinstance(row.lines, list) else ()
        jobs = row.jobs if isinstance(row.jobs, tuple) else ()
        line_type = str(row.line_type)
        category = "cost" if line_type == _DAY_TOTAL else line_type
        where = self._where(row)
        evidence = [
            Evidence(
                type="project_day",
                description=(
                    f"{job}: {_money(int(per_job.get((row.project, row.day, line_type, job), 0)), self.currency)}"  # noqa: E501
                    f" of {category} charged on {row.day}"
                ),
                job_id=str(job),
            )
            for job in jobs[:20]
        ]
        unit = {"compute": "hours", "grader_tokens": "tokens"}.get(line_type)
        quantities = ""
        if unit is not None and lines and not bool(row.q_missing):
            q_diff = int(row.billed_q) - int(row.expected_q)
            billed_q = _billed_quantity_text(int(row.billed_q), unit)
            expected_q = _quantity_text(int(row.expected_q), unit, places)
            quantities = f" The export's quantity is {billed_q}, the logs' {expected_q}" + (
                f" ({_quantity_text(abs(q_diff), unit, places)} "
                f"{'more' if q_diff > 0 else 'less'})."
                if q_diff
                else " (the same)."
            )
            evidence.append(
                Evidence(
                    type="quantity",
                    description=f"billed {billed_q} against {expected_q} in the logs",
                )
            )
        common: dict[str, Any] = {
            "job_id": None,
            "invoice_line": lines[0] if lines else None,
            "invoice_lines": lines,
            "line_type": None if line_type == _DAY_TOTAL else line_type,
            "expected": _dec(int(row.expected)),
            "billed": _dec(int(row.billed)),
            "difference": _dec(diff),
            "project": str(row.project) or None,
            "day": str(row.day),
        }
        n = max(int(row.n) if not pd.isna(row.n) else 1, 1)
        kind: FindingKind
        severity: Severity | None = None
        unplaced = self._unplaced.get(str(row.day), ())
        if row.project and row.project not in self._known and int(row.expected) == 0:
            kind = "unknown_job"
            text = (
                f"{_money(int(row.billed), self.currency)} of {category} is billed to project "
                f"{row.project} on {row.day}, a project with no job in the logs."
            )
            if unplaced:
                # Not a charge for nothing: the logs' jobs of that day cannot be placed.
                severity = "warning"
                named = ", ".join(f"{j} ({p or 'no project'})" for j, p in unplaced[:5])
                text += (
                    f" The logs' jobs of that day in none of the export's projects ({named}) "
                    "cannot be matched to its project ids. "
                    + self._fix(str(row.project), {p for _, p in unplaced})
                )
            else:
                text += " " + self._fix(str(row.project), set())
        elif not lines:
            kind = "unbilled_job"
            text = (
                f"No {category} cost is reported for {where}, where the logs charge "
                f"{_money(int(row.expected), self.currency)} ({len(jobs)} job(s): "
                f"{', '.join(jobs[:5])})."
            )
            if self._export_projects and any(
                p == str(row.project) for _, p in self._unplaced.get(str(row.day), ())
            ):
                held = (
                    "these jobs have no project in the logs (no metadata.project)"
                    if not row.project
                    else f"project {row.project} is none of its project ids"
                )
                text += (
                    f" The export is grouped by project and {held}, so they cannot be placed in "
                    f"its projects ({', '.join(self._export_projects[:5])}). "
                    + self._fix(self._export_projects[0], {str(row.project)})
                )
        elif abs(diff) <= n * _MICRO_PER_CENT and int(row.expected) != 0:
            kind = "rounding"
            text = (
                f"The {category} costs of {where} differ by "
                f"{_money(diff, self.currency)}, which only rounding explains."
            )
        elif line_type == _DAY_TOTAL:
            kind = "overbilled_time" if diff > 0 else "underbilled_time"
            # The day's total includes every cost of the project (other APIs too): a
            # difference cannot be pinned on fine-tuning, so it is not an error.
            severity = "warning"
            text = (
                f"{_money(int(row.billed), self.currency)} is billed in all for {where}; the logs "
                f"charge {_money(int(row.expected), self.currency)} that day "
                f"({len(jobs)} job(s){': ' + ', '.join(jobs[:5]) if jobs else ''}). The export "
                "names no line item, so compute, grader tokens, discounts and any other cost "
                f"of that day cannot be told apart; {_REEXPORT}."
            )
        elif (
            line_type == "grader_tokens"
            and not bool(row.q_missing)
            and int(row.billed_q) == int(row.expected_q)
            and int(row.expected_q) > 0
        ):
            kind = "grader_price_mismatch"
            explained, price_evidence = self._price_explanation(row, expected)
            evidence.extend(price_evidence)
            text = (
                f"{_money(int(row.billed), self.currency)} of grader tokens is billed for {where} "
                f"for {_quantity_text(int(row.billed_q), 'tokens', 0)}, the logs' count; the "
                f"logs charge {_money(int(row.expected), self.currency)} for them at the prices "
                f"in force, so the difference is in the price. {explained}"
            )
            quantities = ""
        else:
            kind = {
                "compute": "overbilled_time" if diff > 0 else "underbilled_time",
                "data_sharing_discount": "missing_discount",
                "grader_tokens": "grader_tokens_mismatch",
            }[line_type]
            text = (
                f"{_money(int(row.billed), self.currency)} of {line_type} is billed for "
                f"{where}; the "
                f"logs charge {_money(int(row.expected), self.currency)} that day "
                f"({len(jobs)} job(s){': ' + ', '.join(jobs[:5]) if jobs else ''}): "
                f"{_money(abs(diff), self.currency)} {'over' if diff > 0 else 'under'}billed. "
                "The export names no job, so the difference cannot be traced to one."
            )
        if kind not in ("unknown_job", "unbilled_job"):
            text += quantities
        if severity is None:
            severity = (
                "info"
                if kind == "rounding"
                else ("warning" if kind == "unbilled_job" else _severity(diff))
            )
        self.add(kind=kind, severity=severity, explanation=text, evidence=tuple(evidence), **common)

    def _fix(self, project_id: str, projects: set[str]) -> str:
        """How to place an export's project id: the mapping to write, and the job metadata."""
        if len(projects) == 1:
            (name,) = projects
            target = f"--project-map {project_id}={name}" + (
                " (jobs without a project)" if not name else f" (the logs' project {name})"
            )
        else:
            target = (
                f"--project-map {project_id}=NAME for the logs' project NAME, or "
                f"--project-map {project_id}= for the jobs without a project"
            )
        return (
            f"If {project_id} is where these jobs ran, map it: {target} (project_map in "
            "Python); or give the jobs their project (metadata.project when creating the job)."
        )

    def _price_explanation(self, row: Any, expected: pd.DataFrame) -> tuple[str, list[Evidence]]:
        """Token counts agree and amounts differ: which price entry gives the billed amount."""
        bill = self.bill
        cell = expected[
            (expected["project"] == row.project)
            & (expected["day"] == row.day)
            & (expected["line_type"] == "grader_tokens")
        ]
        grader = bill.grader_lines[bill.grader_lines["charge"] >= 0].astype({"job_id": object})
        used = grader.merge(cell[["job_id", "charge"]].drop_duplicates(), on=["job_id", "charge"])
        table = bill.policy.price_table
        families = sorted({resolve_model_family(str(m)) for m in used["grader_model"]})
        mode = _mode(bill.policy.rounding.money_mode)
        if len(families) != 1:
            return (
                "Several grader models share the day, so the entry cannot be singled out.",
                [],
            )
        family = families[0]
        entries = table.models.get(family, ())
        uncached = int((used["input_tokens"] - used["cached_input_tokens"]).sum())
        cached = int(used["cached_input_tokens"].sum())
        output = int(used["output_tokens"].sum())
        day_start = datetime.fromisoformat(str(row.day)).replace(tzinfo=UTC)
        in_force = [e for e in entries if e.effective_from <= day_start + timedelta(days=1)]
        evidence = []
        match = None
        for entry in entries:
            pico = int(
                (entry.input * uncached + entry.cached_input * cached + entry.output * output)
                * (Decimal(10**12) / table.unit_tokens)
            )
            cents = int(divide_round(pico, _PICO_PER_CENT, mode))
            if abs(cents * _MICRO_PER_CENT - int(row.billed)) <= _MICRO_PER_CENT:
                match = entry
            evidence.append(
                _price_entry_evidence(
                    family,
                    entry,
                    cents * _MICRO_PER_CENT,
                    self.currency,
                    in_force=bool(in_force) and entry is in_force[-1],
                )
            )
        current = in_force[-1] if in_force else None
        if match is not None and match is not current:
            return (
                f"The billed amount is what the {family} price entry from "
                f"{match.effective_from.date()} gives ({_price(match.input)} / "
                f"{_price(match.cached_input)} / {_price(match.output)} per 1M input / cached / "
                "output), not the one in force on "
                f"{row.day}"
                + (f" (from {current.effective_from.date()})" if current else "")
                + ".",
                evidence,
            )
        return (
            f"No {family} price entry gives the billed amount for these tokens.",
            evidence,
        )


def read_and_audit(
    invoice_path: str | Path, logs: Sequence[str | Path], **options: Any
) -> AuditReport:
    """Convenience for scripts: ``audit_invoice`` on a file and log paths."""
    return audit_invoice(invoice_path, list(logs), **options)
