"""The HTML report: one self-contained page a team lead opens or attaches to a ticket.

``html_report(bill, budgets=..., audit=...)`` returns one HTML document: totals,
spend per team (table and chart), budgets (table and cumulative chart), the
whole bill's waterfall, the audit when one is given (its totals, the invoice's money
the logs do not check and, prominently, what they cannot check, its findings with each
finding's job timeline, its notes), the largest jobs, invalid jobs, and the policy in force.

The page needs nothing else: charts are inline SVG, styles are inline, there is
no JavaScript and no network access (the template's Content-Security-Policy says so
to the browser). The markup lives in Jinja2 templates (``rftcost/templates/report*.j2``)
rendered with autoescape on: every text from the logs, the policy (name,
description, currency, sources), the budgets, the audit and the title reaches the
page escaped, without anyone having to remember to. This module only gathers
plain values for the templates; the one piece of markup it hands over is each
chart's SVG (``Markup`` in ``_figure``, matplotlib's output). Every amount is
formatted from the bill's exact values (``Decimal`` or integer cents); an amount
that cannot be established (a value in an audit document that is not a number)
shows as ``unknown``, never as zero.
"""

from __future__ import annotations

import decimal
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rftcost.audit import SEVERITY_ORDER
from rftcost.billing import Bill
from rftcost.charts import (
    cumulative_figure,
    figure_svg,
    spend_figure,
    timeline_figure,
    waterfall_figure,
)
from rftcost.explain import explain
from rftcost.money import (
    RoundingMode,
    cents_to_decimal,
    format_money,
    parse_amount,
    round_decimal,
    units_text,
)
from rftcost.spend import UNALLOCATED, Budgets, SpendReport, Window, load_budgets, spend
from rftcost.textsafe import visible_controls
from rftcost.version import __version__

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

    from rftcost.policy import Policy

__all__ = ["html_report", "write_report"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"
"""The report's templates (package data: ``[tool.setuptools.package-data]``)."""

_MAX_TIMELINES = 25
_MAX_FINDINGS = 500
_MAX_JOBS = 25
_MAX_CUMULATIVE_MONTHS = 3

_UNKNOWN = "unknown"
"""An amount that cannot be established (never shown as zero)."""

_MISSING = "—"
"""An amount that is not there (no value in the document)."""


def html_report(
    bill: Bill,
    *,
    budgets: Budgets | str | Path | None = None,
    audit: Any = None,
    window: Window | str | None = None,
    title: str | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The report as one self-contained HTML document.

    ``audit`` is an ``AuditReport`` of ``rftcost.audit`` (anything with
    ``to_dict()`` giving an ``rftcost.audit/v1`` document); ``budgets`` a
    ``Budgets`` or a budgets CSV path; ``window`` restricts spend to a period.
    """
    plan = load_budgets(budgets) if isinstance(budgets, str | Path) else budgets
    win = Window.parse(window) if isinstance(window, str) else window
    monthly = spend(bill, by="team", period="month", window=win, budgets=plan)
    currency = bill.policy.currency
    moment = (generated_at or datetime.now(UTC)).astimezone(UTC)
    page = {
        "heading": title or "RFT cost report",
        "generated": f"{moment:%Y-%m-%d %H:%M}",
        "version": __version__,
        "header": _header(bill, win),
        "totals": _totals(bill, monthly, currency),
        "spending": _spend_section(monthly, currency),
        "budgets": None if plan is None else _budget_section(bill, monthly, plan, currency),
        "waterfall": _waterfall(bill),
        "audit": None
        if audit is None
        else _audit_section(
            bill,
            audit.to_dict(),
            currency,
            _unverifiable(audit),
            bool(getattr(audit, "expected_unknown", False)),
        ),
        "jobs": _jobs_section(bill, currency),
        "invalid": _invalid_table(bill),
        "policy": _policy_section(bill.policy),
    }
    # A control character from a log (a NUL in a job id) is no parse error in the page:
    # written visibly, as on the terminal and in CSV (``textsafe``).
    return visible_controls(_environment().get_template("report.html.j2").render(page))


def write_report(document: str, path: str | Path) -> Path:
    """Write a report document to ``path`` (UTF-8)."""
    target = Path(path)
    target.write_text(document, encoding="utf-8")
    return target


@functools.cache
def _environment() -> jinja2.Environment:
    """The templates of the package, every value escaped (autoescape on, for every file)."""
    import jinja2

    return jinja2.Environment(
        # The folder next to this file (a PackageLoader would import the package root).
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# --- what the templates show: plain values, escaped by the template --------------------------


@dataclass(frozen=True)
class _Cell:
    """A table cell shown in bold or as a badge; any other cell is a plain text."""

    text: str
    strong: bool = False
    badge: str | None = None
    """The badge's class: one of the report's own (``ok``, ``over``, a severity)."""


@dataclass(frozen=True)
class _Row:
    cells: Sequence[str | _Cell]
    css_class: str = ""


@dataclass(frozen=True)
class _Table:
    headers: Sequence[str]
    rows: Sequence[_Row]
    numeric: frozenset[int] = field(default_factory=frozenset)
    """Columns of numbers (right-aligned)."""


@dataclass(frozen=True)
class _Card:
    label: str
    value: str
    css_class: str = ""
    slug: str | None = None
    """The value's element id (the totals' cards have one: tests and scripts find them)."""


@dataclass(frozen=True)
class _Figure:
    svg: Markup
    caption: str


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str | _Cell]],
    *,
    numeric: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
) -> _Table:
    classes = row_classes or [""] * len(rows)
    return _Table(
        headers=headers,
        rows=[_Row(cells=row, css_class=cls) for row, cls in zip(rows, classes, strict=True)],
        numeric=frozenset(numeric),
    )


def _figure(fig: Any, caption: str) -> _Figure:
    """A chart as inline SVG: the one piece of markup the templates do not escape.

    The SVG is matplotlib's output for a figure of ours (its texts are escaped by
    matplotlib); each figure's ids get a prefix of its own (its caption's digest) so
    that they are unique in the page.
    """
    from markupsafe import Markup

    digest = hashlib.sha1(caption.encode("utf-8"), usedforsecurity=False).hexdigest()[:10]
    return _Figure(svg=Markup(figure_svg(fig, id_prefix=f"fig-{digest}")), caption=caption)


# --- sections -------------------------------------------------------------------------------


def _header(bill: Bill, window: Window | None) -> dict[str, Any]:
    logs = None
    if bill.log is not None:
        files = ", ".join(bill.log.files[:5]) + (" …" if len(bill.log.files) > 5 else "")
        logs = {"files": files, **bill.log.counts()}
    return {
        "policy": bill.policy.name,
        "currency": bill.policy.currency,
        "window": None if window is None else window.label(),
        "logs": logs,
    }


def _totals(bill: Bill, monthly: SpendReport, currency: str) -> dict[str, Any]:
    totals = bill.totals()
    orphans = bill.orphan_records()
    # No valid job at all: no sum is not $0 (with some, the notes say what is unknown).
    no_sum = bool(totals.invalid_jobs or orphans) and totals.jobs == totals.invalid_jobs

    def known(text: str) -> str:
        return _UNKNOWN if no_sum else text

    window = monthly.window
    charged = format_money(totals.total_amount, currency)
    if totals.invalid_jobs or orphans:  # a lower bound, as the spend table's total says
        charged += " + unknown"
    cards = [
        ("Total charged", known(charged), "total"),
        ("Compute", known(format_money(totals.compute_amount, currency)), ""),
        ("Data-sharing discount", known(format_money(-totals.discount_amount, currency)), ""),
        ("Grader tokens", known(format_money(totals.grader_amount, currency)), ""),
        ("Billed hours", known(f"{totals.billed_hours} h"), ""),
        ("Jobs", f"{totals.jobs - totals.invalid_jobs} valid / {totals.jobs}", ""),
        ("Accrued, not charged", known(format_money(totals.accrued_amount, currency)), ""),
    ]
    notes = []
    if totals.invalid_jobs:
        # Hours of wall clock for a person to read, from exact seconds (no float).
        hours = round_decimal(Decimal(totals.invalid_wall_seconds) / 3600, 2, RoundingMode.HALF_UP)
        rejected = bill.log is not None and bool(bill.log.rejected["job_id"].notna().any())
        notes.append(
            f"{totals.invalid_jobs} invalid job(s): amount unknown (not $0), "
            f"{'at least ' if rejected else ''}{hours} h of wall clock affected — see below."
        )
    if orphans:
        notes.append(
            f"{orphans} rejected record(s) of no known job: amount unknown (not $0), "
            "they may belong to any job or none — see rftcost validate."
        )
    if window is not None:
        # The cards above are the whole log's (as the waterfall and largest jobs below);
        # the window's figure is a card of its own, not a sentence under them.
        in_window = _spend_total(monthly, currency)
        cards.insert(1, (f"Charged in {window.label()}", in_window, "total"))
        notes.append(
            f"Total charged, the other cards and every section but the spend per team cover the"
            f" whole log; spend in the window {window.label()}: {in_window}."
        )
    notes.append(
        "Total = compute − discount + grader tokens. Accrued work (after a job's last billing "
        "event) is not charged yet and is not in the total."
    )
    return {
        "cards": [
            _Card(label=label, value=value, css_class=cls, slug=_slug(label))
            for label, value, cls in cards
        ],
        "notes": notes,
    }


def _spend_total(report: SpendReport, currency: str) -> str:
    """The spend's total as ``rftcost spend`` says it: invalid jobs and records of no known
    job are in no row, so the sum is a lower bound, and with no valid job there is no sum
    at all (unknown, never 0.00)."""
    total = format_money(report.totals.total_amount, currency)
    if not (report.invalid_jobs or report.orphan_records):
        return total
    return f"{total} + unknown" if report.totals.jobs else _UNKNOWN


def _spend_section(report: SpendReport, currency: str) -> dict[str, Any]:
    rows: list[list[str | _Cell]] = [
        [
            row["period"],
            row["team"],
            str(row["jobs"]) + (f" + {row['unknown_jobs']} invalid" if row["unknown_jobs"] else ""),
            # No sum (null): a row whose only jobs have unknown amounts.
            row["billed_hours"] or _UNKNOWN,
            *(
                _UNKNOWN
                if row[key] is None
                else _money_text(row[key], currency, negate=key == "discount_amount")
                for key in ("compute_amount", "discount_amount", "grader_amount")
            ),
            # With an invalid job beside known ones, the known sum is a lower bound.
            _UNKNOWN
            if row["total_amount"] is None
            else _money_text(row["total_amount"], currency, negate=False)
            + (" + unknown" if row["unknown_jobs"] else ""),
        ]
        for row in report.rows()
    ]
    totals = report.totals
    total = _spend_total(report, currency)
    sums = [
        f"{totals.billed_hours}",
        format_money(totals.compute_amount, currency),
        format_money(-totals.discount_amount, currency),
        format_money(totals.grader_amount, currency),
    ]
    if (report.invalid_jobs or report.orphan_records) and not totals.jobs:
        sums = [_UNKNOWN] * len(sums)
    rows.append(
        [_Cell("total", strong=True), "", str(totals.jobs), *sums, _Cell(total, strong=True)]
    )
    headers = ["month", "team", "jobs", "billed h", "compute", "discount", "grader", "total"]
    return {
        "table": _table(headers, rows, numeric=(2, 3, 4, 5, 6, 7)),
        "figure": _figure(
            spend_figure(report),
            "Spend per team and month of the billing event (UTC): compute after discount, "
            "grader tokens hatched; budgets as dashed lines.",
        ),
        "unallocated": UNALLOCATED,
    }


def _budget_section(
    bill: Bill, report: SpendReport, plan: Budgets, currency: str
) -> dict[str, Any]:
    statuses = report.budgets
    rows: list[list[str | _Cell]] = [
        [
            status.team,
            status.period,
            format_money(status.amount, currency),
            format_money(status.spent, currency) + (" + unknown" if status.in_doubt else ""),
            _UNKNOWN if status.remaining is None else format_money(status.remaining, currency),
            (_UNKNOWN if status.in_doubt else _MISSING)
            if status.used_percent is None
            else f"{status.used_percent:.2f}%",
            _Cell("OVER", badge="over")
            if status.over
            else _Cell("unknown", badge="over")
            if status.in_doubt
            # A misspelt team: 0.00 spent, and the real team's spending unchecked.
            else _Cell("no job of this team", badge="over")
            if not status.team_in_logs
            else _Cell("ok", badge="ok"),
        ]
        for status in statuses
    ]
    headers = ["team", "period", "budget", "spent", "remaining", "used", "status"]
    months = sorted({s.period for s in statuses if len(s.period) == 7})[-_MAX_CUMULATIVE_MONTHS:]
    return {
        "over": sum(1 for s in statuses if s.over),
        "unknown": sum(1 for s in statuses if s.status == "unknown"),
        "table": _table(
            headers,
            rows,
            numeric=(2, 3, 4, 5),
            row_classes=["over" if s.over else "" for s in statuses],
        ),
        "source": plan.source,
        "figures": [
            _figure(
                cumulative_figure(bill, month=month, budgets=plan),
                f"Cumulative spend per team in {month} against each team's budget (dashed).",
            )
            for month in months
        ],
    }


def _waterfall(bill: Bill) -> _Figure | None:
    if bill.charges.empty:
        return None
    return _figure(
        waterfall_figure(bill),
        "Every valid job: wall-clock time valued at its hourly rate, less excluded phases and "
        "lost work, plus hour rounding, less the data-sharing discount, plus grader tokens.",
    )


def _in_audit_order(findings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings in the audit's own order: by severity first; a stable sort, so that
    a document the audit sorted already (severity, then money) keeps its order."""
    last = len(SEVERITY_ORDER)
    return sorted(findings, key=lambda f: SEVERITY_ORDER.get(str(f.get("severity")), last))


_CANNOT_CHECK_KINDS = frozenset({"invalid_job", "unreadable_line"})
"""Findings whose money the logs cannot check (as ``rftcost audit`` decides it)."""

_UNCHECKED_WHAT = "credits, adjustments, tax, other costs, invalid jobs, jobs of unreadable lines"
"""What an audit's unchecked total holds, in the words of ``rftcost audit``."""


def _unverifiable(audit: Any) -> Any:
    """The audit's cannot-check amount, ``None`` when it does not say.

    The ``rftcost.audit/v1`` document keeps its summary's keys and says this amount in a
    note only, so the report reads it from the ``AuditReport`` itself.
    """
    return getattr(getattr(audit, "summary", None), "unverifiable_total", None)


def _audit_section(
    bill: Bill,
    document: dict[str, Any],
    currency: str,
    unverifiable: Any = None,
    unpriced: bool = False,
) -> dict[str, Any]:
    summary = document.get("summary", {})
    findings = _in_audit_order(list(document.get("findings", [])))
    # The billed total is only the lines the logs can check: beside it, the invoice's own
    # total and what was left unchecked, or a reader takes "Difference $0.00" for the
    # whole invoice.
    cards = [
        # null: a line's amount cannot be read, so the invoice's total is unknown.
        _Card("Invoice total", _invoice_total(summary, currency)),
        _Card(
            "Expected (logs)",
            # Invalid jobs no line bills: their charges are unknown, never 0.00.
            _money_text(summary.get("expected_total"), currency)
            + (" + unknown" if unpriced else ""),
        ),
        _Card("Billed (lines checked)", _money_text(summary.get("billed_total"), currency)),
        _Card("Difference", _money_text(summary.get("difference"), currency)),
        _Card("Overbilled", _money_text(summary.get("overbilled"), currency)),
        _Card("Underbilled", _money_text(summary.get("underbilled"), currency)),
        _Card("Unchecked", _money_text(summary.get("unchecked_total"), currency)),
    ]
    cannot_check = _cannot_check(
        findings, summary.get("unverifiable_total", unverifiable), currency
    )
    if cannot_check is not None:
        # First and in the alarm colour: money nobody verified must not read as agreed.
        cards.insert(0, _Card("Cannot check", cannot_check, css_class="alert"))
    rows: list[list[str | _Cell]] = []
    for finding in findings[:_MAX_FINDINGS]:
        severity = str(finding.get("severity", ""))
        line = finding.get("invoice_line")
        rows.append(
            [
                # The badge's class is a severity of ours, nothing else.
                _Cell(severity, badge=severity if severity in SEVERITY_ORDER else ""),
                str(finding.get("kind", "")),
                _finding_subject(finding),
                "" if line is None else str(line),
                # A finding's amount of null is unknown (an invalid job's), as the CLI says.
                *(
                    _UNKNOWN if finding.get(key) is None else _money_text(finding[key], currency)
                    for key in ("expected", "billed", "difference")
                ),
                str(finding.get("explanation", "")),
            ]
        )
    headers = [
        "severity",
        "kind",
        "job",
        "invoice line",
        "expected",
        "billed",
        "difference",
        "explanation",
    ]
    jobs = _jobs_with_findings(bill, findings)
    unchecked = _amount_or_none(summary.get("unchecked_total"))
    return {
        "invoice": document.get("invoice"),
        "policy": document.get("policy"),
        "cards": cards,
        "cannot_check": None
        if cannot_check is None
        else f"Cannot check {cannot_check}: lines of jobs whose logs are invalid or of "
        "unreadable lines, in neither the expected nor the billed total"
        + (" (errors below)." if rows else "."),
        "unchecked": _unchecked_note(summary, unchecked, cannot_check is not None, currency),
        "verdict": _verdict(
            unchecked, int(summary.get("unchecked_lines") or 0), cannot_check is not None, unpriced
        ),
        "notes": [str(note) for note in document.get("notes", [])],
        "table": _table(headers, rows, numeric=(4, 5, 6)) if rows else None,
        "not_shown": max(0, len(findings) - _MAX_FINDINGS),
        "timelines": [
            {"slug": _slug(job_id), "figure": _timeline(bill, job_id, findings)}
            for job_id in jobs[:_MAX_TIMELINES]
        ],
        "timelines_not_shown": max(0, len(jobs) - _MAX_TIMELINES),
    }


def _cannot_check(
    findings: Sequence[dict[str, Any]], unverifiable: Any, currency: str
) -> str | None:
    """The money the logs should check and cannot, as a card's value; ``None`` when there
    is none (no such amount and no finding of an invalid job or an unreadable line)."""
    amount = _amount_or_none(unverifiable)
    cases = [f for f in findings if f.get("kind") in _CANNOT_CHECK_KINDS]
    if not cases and not amount:
        return None
    # An unreadable line may have no amount: its share is unknown, never $0.
    unknown = any(_amount_or_none(f.get("billed")) is None for f in cases)
    if amount is None or (unknown and not amount):
        return _UNKNOWN
    return format_money(amount, currency) + (" + unknown" if unknown else "")


def _invoice_total(summary: dict[str, Any], currency: str) -> str:
    """The invoice's total as text: ``unknown`` where the document has none (a line's
    amount could not be read), never a dash that reads as nothing."""
    if "invoice_total" in summary and summary["invoice_total"] is None:
        return _UNKNOWN
    return _money_text(summary.get("invoice_total"), currency)


def _unchecked_note(
    summary: dict[str, Any], unchecked: Decimal | None, cannot_check: bool, currency: str
) -> str | None:
    if unchecked is None or (not unchecked and not summary.get("unchecked_lines")):
        return None
    total = _invoice_total(summary, currency)
    if cannot_check:
        return (
            f"Unchecked {format_money(unchecked, currency)} of the invoice total {total} "
            f"({_UNCHECKED_WHAT}): the logs cannot check these lines; they are in neither "
            "the expected nor the billed total."
        )
    # With no invalid job and no unreadable line, what is left unchecked is what the logs
    # never bill (a vendor's adjustment, tax): outside their scope, not a difference.
    return (
        f"Unchecked {format_money(unchecked, currency)} of the invoice total {total}: "
        "credits, adjustments, tax and other costs, which the logs do not bill; taken as "
        "billed, not a difference."
    )


def _verdict(
    unchecked: Decimal | None, unchecked_lines: int, cannot_check: bool, unpriced: bool
) -> dict[str, str]:
    """What the section says when there is no finding (the CLI's words)."""
    if cannot_check:
        return {"badge": "over", "text": "NOT VERIFIED: money the logs cannot check"}
    if unpriced:
        return {
            "badge": "over",
            "text": "no findings in the lines checked; the logs leave some charges unknown (notes)",
        }
    if unchecked is None or unchecked or unchecked_lines:
        return {"badge": "ok", "text": "no findings: the lines checked match the logs"}
    return {"badge": "ok", "text": "no findings: the invoice matches the logs"}


def _finding_subject(finding: dict[str, Any]) -> str:
    """The job of a finding; for a Costs API audit, its project and UTC day."""
    if finding.get("job_id"):
        return str(finding["job_id"])
    parts = [str(finding[k]) for k in ("project", "day") if finding.get(k)]
    return " ".join(parts)


def _jobs_with_findings(bill: Bill, findings: Sequence[dict[str, Any]]) -> list[str]:
    """Jobs of the bill that have a finding, in the findings' order, each once."""
    known = set(bill.job_ids())
    jobs = [str(f["job_id"]) for f in findings if f.get("job_id") and f["job_id"] in known]
    return list(dict.fromkeys(jobs))


def _timeline(bill: Bill, job_id: str, findings: Sequence[dict[str, Any]]) -> _Figure:
    kinds = sorted({str(f.get("kind")) for f in findings if f.get("job_id") == job_id})
    return _figure(
        timeline_figure(explain(bill, job_id), currency=bill.policy.currency),
        f"Job {job_id} ({', '.join(kinds)}): billed, lost and excluded time, billing events "
        "and checkpoints.",
    )


def _jobs_section(bill: Bill, currency: str) -> dict[str, Any] | None:
    jobs = bill.jobs[bill.jobs["status"] != "invalid"]
    if jobs.empty:
        return None
    top = jobs.sort_values(["total_cents", "job_id"], ascending=[False, True]).head(_MAX_JOBS)
    columns = {
        "job": top["job_id"].astype(str),
        "team": top["team"].where(top["team"].map(_is_text), UNALLOCATED),
        "project": top["project"].where(top["project"].map(_is_text), _MISSING),
        "status": top["status"].astype(str),
        "billed h": units_text(top["hour_units"], bill.policy.rounding.hours_decimals),
        "total": top["total_cents"].map(lambda c: _money_cents(c, currency)),
        "accrued": top["accrued_cents"].map(lambda c: _money_cents(c, currency)),
    }
    rows: list[list[str | _Cell]] = [
        [str(v) for v in values]
        for values in zip(*(column.tolist() for column in columns.values()), strict=True)
    ]
    return {
        "table": _table(list(columns), rows, numeric=(4, 5, 6)),
        "shown": len(top),
        "valid": len(jobs),
    }


def _invalid_table(bill: Bill) -> _Table | None:
    if bill.problems.empty:
        return None
    rows: list[list[str | _Cell]] = [
        [str(job_id), str(problem)]
        for job_id, problem in zip(bill.problems["job_id"], bill.problems["problem"], strict=True)
    ]
    return _table(["job", "problem"], rows)


def _policy_section(policy: Policy) -> dict[str, _Table]:
    rounding = policy.rounding
    discount = policy.data_sharing_discount
    rows: list[list[str | _Cell]] = [
        ["policy", policy.name + (f" (extends {policy.extends})" if policy.extends else "")],
        ["description", policy.description or _MISSING],
        ["currency", policy.currency],
        [
            "hourly training rates",
            ", ".join(
                f"{m}: {format_money(r, policy.currency)}/h" for m, r in policy.hourly_rates.items()
            ),
        ],
        [
            "rounding (R11)",
            f"seconds {rounding.seconds_mode}; hours to {rounding.hours_decimals} decimals "
            f"{rounding.hours_mode}; money {rounding.money_mode}; scope {rounding.scope}",
        ],
        [
            "data-sharing discount (R12)",
            f"{discount.rate * 100:.0f}% of {' and '.join(discount.scope) or 'nothing'}",
        ],
        [
            "per-job cap",
            "none"
            if policy.cap.per_job_amount is None
            else format_money(policy.cap.per_job_amount, policy.currency),
        ],
        ["captured forward progress (R5)", "yes" if policy.captured_progress.enabled else "no"],
        ["token price table", policy.price_table.price_source],
    ]
    if policy.sources:
        rows.append(["sources", "; ".join(policy.sources)])
    return {
        "settings": _table(["setting", "value"], rows),
        "prices": _table(
            ["model", "from", "input", "cached input", "output", "source"],
            _price_rows(policy),
            numeric=(2, 3, 4),
        ),
    }


def _price_rows(policy: Policy) -> list[list[str | _Cell]]:
    # The policy's own table (with its sources); models it does not name are priced by
    # genai-prices, which the "token price table" row names with its version (kind 14).
    table = policy.price_table.override_layer()
    return [
        [
            family,
            f"{entry.effective_from:%Y-%m-%d}",
            format_money(entry.input, table.currency, places=3),
            format_money(entry.cached_input, table.currency, places=3),
            format_money(entry.output, table.currency, places=3),
            entry.source,
        ]
        for family, entries in sorted(table.models.items())
        for entry in entries
    ]


# --- values ---------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _money_text(value: Any, currency: str, *, negate: bool = False) -> str:
    """An amount string from a JSON document → ``$1,234.50``.

    No value → ``—``; a value that is not a finite number → ``unknown`` (an amount that
    cannot be established is never shown as zero).
    """
    if value is None or value == "":
        return _MISSING
    try:
        amount = parse_amount(str(value))
    except (decimal.InvalidOperation, ValueError):
        return _UNKNOWN
    return format_money(-amount if negate else amount, currency)


def _amount_or_none(value: Any) -> Decimal | None:
    """An amount of a JSON document as a ``Decimal``; ``None`` when absent or not a number."""
    if value is None or value == "":
        return None
    try:
        return parse_amount(str(value))
    except (decimal.InvalidOperation, ValueError):
        return None


def _money_cents(cents: Any, currency: str) -> str:
    """Integer cents of a bill's frame → ``$1,234.50``; a missing value → ``—``."""
    if cents is None or pd.isna(cents):
        return _MISSING
    return format_money(cents_to_decimal(int(cents)), currency)
