"""The audit's findings: kinds, severities, evidence, and the ``Finding`` itself.

A ``Finding`` is one difference between an invoice and the logs, explained. Its
``difference`` is derived from ``billed`` and ``expected`` (billed − expected), never
passed in: the one relation every finding keeps. ``SEVERITY_ORDER`` is the order
findings are read in (errors first), for every writer of the audit.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from rftcost.money import cents_to_decimal, format_amount
from rftcost.time import iso_exact

__all__ = [
    "FINDING_KINDS",
    "READING_KINDS",
    "SEVERITIES",
    "SEVERITY_ORDER",
    "Evidence",
    "Finding",
    "FindingKind",
    "Severity",
    "amount_text",
    "micro_of",
    "micro_to_decimal",
    "severity_of",
]

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
    "unreadable_line",
]
READING_KINDS: tuple[str, ...] = ("unreadable_line",)
"""Finding kinds about reading the invoice itself, beside invoice-audit.md's table:
``unreadable_line``, a line of the invoice that cannot be read (a time out of range, an
amount that is not a number, ...), set aside with its file line, column and value; its
money is unknown, so it is an error."""
FINDING_KINDS: tuple[str, ...] = tuple(
    kind
    for kind in FindingKind.__args__  # type: ignore[attr-defined]
    if kind not in READING_KINDS
)
"""Every finding kind of invoice-audit.md (what comparing the invoice to the logs finds);
``FINDING_KINDS + READING_KINDS`` is every ``FindingKind``."""

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[str, ...] = Severity.__args__  # type: ignore[attr-defined]
"""Every severity, most serious first."""
SEVERITY_ORDER: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}
"""Severity → rank (error 0, warning 1, info 2): findings are read in this order."""


def severity_of(difference: int) -> Severity:
    """error when billed more than the logs support, warning when billed less."""
    return "error" if difference > 0 else "warning"


_FROZEN = ConfigDict(frozen=True, extra="forbid")
_MICRO_PER_CENT = 10**4


def micro_to_decimal(micro: int) -> Decimal:
    """Millionths → Decimal (two decimals when the amount is whole cents)."""
    micro = int(micro)
    if micro % _MICRO_PER_CENT == 0:
        return cents_to_decimal(micro // _MICRO_PER_CENT)
    return Decimal(micro).scaleb(-6)


def micro_of(amount: Decimal) -> int:
    """A Decimal amount → millionths (the audit's amounts are exact millionths)."""
    return int(amount.scaleb(6))


def amount_text(amount: Decimal | None) -> str | None:
    """An amount as a two-decimal string (R15), ``None`` kept."""
    return None if amount is None else format_amount(amount)


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

    def to_dict(self) -> dict[str, Any]:
        """The evidence as in ``rftcost.audit/v1``: set fields only, times in ISO 8601."""
        record: dict[str, Any] = {}
        for key, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, datetime):
                value = iso_exact(value)
            elif isinstance(value, Decimal):
                value = f"{value.normalize():f}" if value != value.to_integral() else f"{value:.2f}"
            record[key] = value
        return record


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
    difference: Decimal | None = None
    """This finding's share of the total difference (positive: overbilled): always
    ``billed − expected``, derived from them (``None`` when either is unknown)."""
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

    @model_validator(mode="before")
    @classmethod
    def _derive_difference(cls, data: Any) -> Any:
        """``difference`` is billed − expected, in exact millionths; a contradicting one is
        refused."""
        if not isinstance(data, dict):
            return data
        expected, billed = data.get("expected"), data.get("billed")
        derived = None
        if expected is not None and billed is not None:
            derived = micro_to_decimal(micro_of(Decimal(billed)) - micro_of(Decimal(expected)))
        given = data.get("difference")
        if given is not None and (derived is None or Decimal(given) != derived):
            raise ValueError(f"difference {given} is not billed {billed} − expected {expected}")
        return {**data, "difference": derived}

    def to_dict(self) -> dict[str, Any]:
        """The finding as in ``rftcost.audit/v1`` (amounts as two-decimal strings)."""
        record: dict[str, Any] = {
            "kind": self.kind,
            "severity": self.severity,
            "job_id": self.job_id,
            "line_type": self.line_type,
            "expected": amount_text(self.expected),
            "billed": amount_text(self.billed),
            "difference": amount_text(self.difference),
            "explanation": self.explanation,
            "invoice_line": self.invoice_line,
            "invoice_lines": list(self.invoice_lines),
            "charge_at": iso_exact(self.charge_at),
            "grader_model": self.grader_model,
            "token_type": self.token_type,
            "project": self.project,
            "day": self.day,
            "also": list(self.also),
            "evidence": [e.to_dict() for e in self.evidence],
        }
        return record
