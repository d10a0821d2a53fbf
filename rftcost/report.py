"""The HTML report: one self-contained page a team lead opens or attaches to a ticket.

``html_report(bill, budgets=..., audit=...)`` returns one HTML document: totals,
spend per team (table and chart), budgets (table and cumulative chart), the
whole bill's waterfall, the audit findings with each finding's job timeline when
an audit is given, the largest jobs, invalid jobs, and the policy in force.

The page needs nothing else: charts are inline SVG, styles are inline, there is
no JavaScript and no network access (a Content-Security-Policy says so to the
browser). Every text from the logs, the policy (name, description, currency,
sources), the budgets, the audit and the title is escaped: a table cell is
escaped unless it is markup this module built (``_Html``), and a test walks
every interpolation of the templates below. Every amount is formatted from the bill's
exact values (``Decimal`` or integer cents).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from rftcost.billing import Bill
from rftcost.charts import (
    cumulative_figure,
    figure_svg,
    format_money,
    spend_figure,
    timeline_figure,
    waterfall_figure,
)
from rftcost.explain import explain
from rftcost.spend import UNALLOCATED, Budgets, SpendReport, Window, load_budgets, spend

__all__ = ["html_report", "write_report"]

_MAX_TIMELINES = 25
_MAX_FINDINGS = 500
_MAX_JOBS = 25
_MAX_CUMULATIVE_MONTHS = 3

_CSS = """
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; margin: 0;
       color: #1a1a1a; background: #fafafa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid #0072B2; }
h3 { font-size: 1.05rem; margin: 22px 0 6px; }
p.meta { color: #555; margin: 2px 0; font-size: 0.9rem; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid #d9d9d9; border-radius: 6px; padding: 10px 14px; min-width: 140px; }
.card .label { font-size: 0.8rem; color: #555; text-transform: uppercase; letter-spacing: 0.03em; }
.card .value { font-size: 1.35rem; font-weight: bold; font-variant-numeric: tabular-nums; }
.card.total { border-color: #0072B2; border-width: 2px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.88rem; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e5e5e5; text-align: left;
         vertical-align: top; }
th { background: #f2f2f2; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.over td { background: #fbe3d6; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 0.8rem;
          font-weight: bold; }
.badge.over, .badge.error { background: #D55E00; color: #fff; }
.badge.ok, .badge.info { background: #009E73; color: #fff; }
.badge.warning { background: #E69F00; color: #000; }
figure { margin: 12px 0 20px; }
figure svg { width: 100%; max-width: 1100px; height: auto; display: block; }
figcaption { font-size: 0.85rem; color: #555; margin-top: 4px; }
.note { font-size: 0.85rem; color: #555; }
code { font-size: 0.85rem; }
footer { margin-top: 40px; font-size: 0.8rem; color: #777; }
"""


_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'"
"""The page runs no script and loads nothing: should any text ever escape escaping, a
browser still refuses to run it (defence in depth; every text is escaped below)."""


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
    heading = title or "RFT cost report"
    moment = (generated_at or datetime.now(UTC)).astimezone(UTC)
    sections = [
        _header(bill, heading, moment, win),
        _totals(bill, monthly, currency),
        _spend_section(monthly, currency),
    ]
    if plan is not None:
        sections.append(_budget_section(bill, monthly, plan, currency))
    sections.append(_waterfall_section(bill))
    if audit is not None:
        sections.append(_audit_section(bill, audit.to_dict(), currency))
    sections += [_jobs_section(bill, currency), _invalid_section(bill), _policy_section(bill)]
    body = "\n".join(s for s in sections if s)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        f"<title>{_e(heading)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n"
        f"<footer>Generated by rftcost {_e(_version())} on {moment:%Y-%m-%d %H:%M} UTC. "
        "A self-contained page: no scripts, no network access.</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def write_report(document: str, path: str | Path) -> Path:
    """Write a report document to ``path`` (UTF-8)."""
    target = Path(path)
    target.write_text(document, encoding="utf-8")
    return target


# --- sections -------------------------------------------------------------------------------


def _header(bill: Bill, heading: str, moment: datetime, window: Window | None) -> str:
    policy = bill.policy
    lines = [f"<h1>{_e(heading)}</h1>"]
    lines.append(
        f'<p class="meta">Policy <strong>{_e(policy.name)}</strong>'
        f" · amounts in {_e(policy.currency)}"
        f" · generated {moment:%Y-%m-%d %H:%M} UTC</p>"
    )
    if window is not None:
        lines.append(f'<p class="meta">Spend window: {_e(window.label())} (UTC)</p>')
    if bill.log is not None:
        counts = bill.log.counts()
        files = ", ".join(bill.log.files[:5]) + (" …" if len(bill.log.files) > 5 else "")
        lines.append(
            f'<p class="meta">Logs: {_e(files)} — {counts["records_read"]} records read ='
            f" {counts['accepted']} used + {counts['duplicates']} duplicates +"
            f" {counts['rejected']} rejected</p>"
        )
    return "\n".join(lines)


def _totals(bill: Bill, monthly: SpendReport, currency: str) -> str:
    totals = bill.totals()
    cards = [
        ("Total charged", format_money(totals.total_amount, currency), "total"),
        ("Compute", format_money(totals.compute_amount, currency), ""),
        ("Data-sharing discount", format_money(-totals.discount_amount, currency), ""),
        ("Grader tokens", format_money(totals.grader_amount, currency), ""),
        ("Billed hours", f"{totals.billed_hours} h", ""),
        ("Jobs", f"{totals.jobs - totals.invalid_jobs} valid / {totals.jobs}", ""),
        ("Accrued, not charged", format_money(totals.accrued_amount, currency), ""),
    ]
    html_cards = "".join(
        f'<div class="card {cls}"><div class="label">{_e(label)}</div>'
        f'<div class="value" id="{_slug(label)}">{_e(value)}</div></div>'
        for label, value, cls in cards
    )
    notes = []
    if totals.invalid_jobs:
        notes.append(
            f"{totals.invalid_jobs} invalid job(s): amount unknown (not $0), "
            f"{totals.invalid_wall_seconds / 3600:.2f} h of wall clock affected — see below."
        )
    if monthly.window is not None:
        notes.append(
            f"Spend in the window {monthly.window.label()}: "
            f"{format_money(monthly.totals.total_amount, currency)}."
        )
    notes.append(
        "Total = compute − discount + grader tokens. Accrued work (after a job's last billing "
        "event) is not charged yet and is not in the total."
    )
    return f'<h2>Totals</h2>\n<div class="cards">{html_cards}</div>\n' + "".join(
        f'<p class="note">{_e(n)}</p>' for n in notes
    )


def _spend_section(report: SpendReport, currency: str) -> str:
    rows = []
    for row in report.rows():
        rows.append(
            [
                row["period"],
                row["team"],
                str(row["jobs"]),
                row["billed_hours"],
                _money_text(row["compute_amount"], currency),
                _money_text(
                    "-" + row["discount_amount"] if row["discount_amount"] != "0.00" else "0.00",
                    currency,
                ),
                _money_text(row["grader_amount"], currency),
                _money_text(row["total_amount"], currency),
            ]
        )
    totals = report.totals
    rows.append(
        [
            _Html("<strong>total</strong>"),
            "",
            str(totals.jobs),
            f"{totals.billed_hours}",
            format_money(totals.compute_amount, currency),
            format_money(-totals.discount_amount, currency),
            format_money(totals.grader_amount, currency),
            _Html(f"<strong>{_e(format_money(totals.total_amount, currency))}</strong>"),
        ]
    )
    headers = ["month", "team", "jobs", "billed h", "compute", "discount", "grader", "total"]
    table = _table(headers, rows, numeric={2, 3, 4, 5, 6, 7})
    chart = _figure_html(
        spend_figure(report),
        "Spend per team and month of the billing event (UTC): compute after discount, "
        "grader tokens hatched; budgets as dashed lines.",
    )
    note = (
        f'<p class="note">Jobs without a team are under <code>{UNALLOCATED}</code>. '
        "A charge counts in the month of its billing event (UTC).</p>"
    )
    return "<h2>Spend per team</h2>\n" + table + chart + note


def _budget_section(bill: Bill, report: SpendReport, plan: Budgets, currency: str) -> str:
    statuses = report.budgets
    over = [b for b in statuses if b.over]
    rows = []
    classes = []
    for status in statuses:
        badge = _Html(
            '<span class="badge over">OVER</span>'
            if status.over
            else '<span class="badge ok">ok</span>'
        )
        used = "—" if status.used_percent is None else f"{status.used_percent:.2f}%"
        rows.append(
            [
                _e(status.team),
                _e(status.period),
                _e(format_money(status.amount, currency)),
                _e(format_money(status.spent, currency)),
                _e(format_money(status.remaining, currency)),
                _e(used),
                badge,
            ]
        )
        classes.append("over" if status.over else "")
    headers = ["team", "period", "budget", "spent", "remaining", "used", "status"]
    table = _table(headers, rows, numeric={2, 3, 4, 5}, row_classes=classes)
    summary = (
        f'<p><span class="badge over">{len(over)} over budget</span></p>'
        if over
        else '<p><span class="badge ok">every team within budget</span></p>'
    )
    source = f'<p class="note">Budgets from {_e(plan.source)}.</p>' if plan.source else ""
    months = sorted({s.period for s in statuses if len(s.period) == 7})[-_MAX_CUMULATIVE_MONTHS:]
    charts = "".join(
        _figure_html(
            cumulative_figure(bill, month=month, budgets=plan),
            f"Cumulative spend per team in {month} against each team's budget (dashed).",
        )
        for month in months
    )
    return "<h2>Budgets</h2>\n" + summary + table + source + charts


def _waterfall_section(bill: Bill) -> str:
    if bill.charges.empty:
        return ""
    return "<h2>From wall clock to total</h2>\n" + _figure_html(
        waterfall_figure(bill),
        "Every valid job: wall-clock time valued at its hourly rate, less excluded phases and "
        "lost work, plus hour rounding, less the data-sharing discount, plus grader tokens.",
    )


_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def _audit_section(bill: Bill, document: dict[str, Any], currency: str) -> str:
    summary = document.get("summary", {})
    findings = list(document.get("findings", []))
    findings.sort(
        key=lambda f: (
            _SEVERITY_ORDER.get(str(f.get("severity")), 3),
            -abs(_dec(f.get("difference"))),
        )
    )
    cards = [
        ("Expected (logs)", summary.get("expected_total")),
        ("Billed (invoice)", summary.get("billed_total")),
        ("Difference", summary.get("difference")),
        ("Overbilled", summary.get("overbilled")),
        ("Underbilled", summary.get("underbilled")),
    ]
    html_cards = "".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(_money_text(value, currency))}</div></div>'
        for label, value in cards
    )
    invoice = document.get("invoice")
    head = "<h2>Invoice audit</h2>\n"
    if invoice:
        head += f'<p class="meta">Invoice <strong>{_e(invoice)}</strong>'
        if document.get("policy"):
            head += f" audited under policy <strong>{_e(document['policy'])}</strong>"
        head += "</p>\n"
    rows = []
    for finding in findings[:_MAX_FINDINGS]:
        severity = str(finding.get("severity", ""))
        badge = severity if severity in _SEVERITY_ORDER else ""  # a class of ours, nothing else
        rows.append(
            [
                _Html(f'<span class="badge {badge}">{_e(severity)}</span>'),
                _e(finding.get("kind", "")),
                _e(_finding_subject(finding)),
                _e(
                    finding.get("invoice_line", "")
                    if finding.get("invoice_line") is not None
                    else ""
                ),
                _e(_money_text(finding.get("expected"), currency)),
                _e(_money_text(finding.get("billed"), currency)),
                _e(_money_text(finding.get("difference"), currency)),
                _e(finding.get("explanation", "")),
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
    table = (
        _table(headers, rows, numeric={4, 5, 6})
        if rows
        else '<p><span class="badge ok">no findings: the invoice matches the logs</span></p>'
    )
    if len(findings) > _MAX_FINDINGS:
        table += f'<p class="note">{len(findings) - _MAX_FINDINGS} more findings not shown.</p>'
    timelines = _finding_timelines(bill, findings)
    return head + f'<div class="cards">{html_cards}</div>\n' + table + timelines


def _finding_subject(finding: dict[str, Any]) -> str:
    """The job of a finding; for a Costs API audit, its project and UTC day."""
    if finding.get("job_id"):
        return str(finding["job_id"])
    parts = [str(finding[k]) for k in ("project", "day") if finding.get(k)]
    return " ".join(parts)


def _finding_timelines(bill: Bill, findings: Sequence[dict[str, Any]]) -> str:
    known = set(bill.job_ids())
    jobs: list[str] = []
    for finding in findings:
        job_id = finding.get("job_id")
        if job_id and job_id in known and job_id not in jobs:
            jobs.append(str(job_id))
    if not jobs:
        return ""
    parts = ["<h3>Timelines of the jobs with findings</h3>"]
    for job_id in jobs[:_MAX_TIMELINES]:
        kinds = sorted({str(f.get("kind")) for f in findings if f.get("job_id") == job_id})
        parts.append(f'<section id="job-{_slug(job_id)}">')
        parts.append(
            _figure_html(
                timeline_figure(explain(bill, job_id), currency=bill.policy.currency),
                f"Job {job_id} ({', '.join(kinds)}): billed, lost and excluded time, "
                "billing events "
                "and checkpoints.",
            )
        )
        parts.append("</section>")
    if len(jobs) > _MAX_TIMELINES:
        parts.append(
            f'<p class="note">{len(jobs) - _MAX_TIMELINES} more jobs have findings; '
            "see <code>rftcost explain --job ID --chart FILE</code>.</p>"
        )
    return "\n".join(parts)


def _jobs_section(bill: Bill, currency: str) -> str:
    jobs = bill.jobs[bill.jobs["status"] != "invalid"]
    if jobs.empty:
        return ""
    top = jobs.sort_values(["total_cents", "job_id"], ascending=[False, True]).head(_MAX_JOBS)
    places = bill.policy.rounding.hours_decimals
    rows = [
        [
            _e(row.job_id),
            _e(row.team if isinstance(row.team, str) else UNALLOCATED),
            _e(row.project if isinstance(row.project, str) else "—"),
            _e(row.status),
            _e(f"{Decimal(int(row.hour_units)).scaleb(-places):.{places}f}"),
            _e(_money_cents(row.total_cents, currency)),
            _e(_money_cents(row.accrued_cents, currency)),
        ]
        for row in _tuples(top)
    ]
    headers = ["job", "team", "project", "status", "billed h", "total", "accrued"]
    note = (
        f'<p class="note">The {len(top)} largest of {len(jobs)} valid jobs; '
        "<code>rftcost bill --format csv</code> lists every job.</p>"
    )
    return "<h2>Largest jobs</h2>\n" + _table(headers, rows, numeric={4, 5, 6}) + note


def _invalid_section(bill: Bill) -> str:
    if bill.problems.empty:
        return ""
    rows = [
        [_e(job_id), _e(problem)]
        for job_id, problem in zip(bill.problems["job_id"], bill.problems["problem"], strict=True)
    ]
    return (
        "<h2>Invalid jobs (amount unknown)</h2>\n"
        '<p class="note">These jobs cannot be billed from their logs; their amount is unknown, '
        "not $0, and they are in no total above.</p>\n" + _table(["job", "problem"], rows)
    )


def _policy_section(bill: Bill) -> str:
    policy = bill.policy
    rounding = policy.rounding
    discount = policy.data_sharing_discount
    rows = [
        ["policy", policy.name + (f" (extends {policy.extends})" if policy.extends else "")],
        ["description", policy.description or "—"],
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
    prices = _price_rows(policy)
    return (
        "<h2>Policy used</h2>\n"
        + _table(["setting", "value"], rows)
        + "<h3>Grader token prices (per 1M tokens)</h3>\n"
        + _table(
            ["model", "from", "input", "cached input", "output", "source"],
            prices,
            numeric={2, 3, 4},
        )
    )


def _price_rows(policy: Any) -> list[list[Any]]:
    # The policy's own table (with its sources); models it does not name are priced by
    # genai-prices, which the "token price table" row names with its version (kind 14).
    table = policy.price_table.override_layer()
    rows = []
    for family, entries in sorted(table.models.items()):
        for entry in entries:
            rows.append(
                [
                    _e(family),
                    _e(f"{entry.effective_from:%Y-%m-%d}"),
                    _e(format_money(entry.input, table.currency, places=3)),
                    _e(format_money(entry.cached_input, table.currency, places=3)),
                    _e(format_money(entry.output, table.currency, places=3)),
                    _e(entry.source),
                ]
            )
    return rows


# --- pieces ----------------------------------------------------------------------------------


def _figure_html(fig: Any, caption: str) -> str:
    # Each figure's SVG ids get a prefix of its own (its caption's digest): unique in the page.
    digest = hashlib.sha1(caption.encode("utf-8"), usedforsecurity=False).hexdigest()[:10]
    svg = figure_svg(fig, id_prefix=f"fig-{digest}")
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>\n"


def _tuples(frame: pd.DataFrame) -> Iterator[Any]:
    return iter(frame.itertuples(index=False))


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: set[int] | None = None,
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; every header and cell is escaped unless it is ``_Html`` already."""
    numeric = numeric or set()
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    lines = [f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>"]
    for index, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
            for i, v in enumerate(row)
        )
        cls = row_classes[index] if row_classes and row_classes[index] else ""
        lines.append(f'<tr class="{_e(cls)}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    lines.append("</tbody>\n</table>\n")
    return "\n".join(lines)


class _Html(str):
    """Text that is HTML already (markup of ours around escaped parts): written as it is.

    Every other value that reaches the page goes through ``_e``; a plain ``str``
    in a table cell is escaped, so a name from a log can never become markup.
    """

    __slots__ = ()


def _e(value: Any) -> _Html:
    """``value`` as HTML text: escaped (quotes too: safe in an attribute), ``_Html`` kept."""
    if isinstance(value, _Html):
        return value
    return _Html(html.escape("" if value is None else str(value), quote=True))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except Exception:
        return Decimal(0)


def _money_text(value: Any, currency: str) -> str:
    """A two-decimal amount string from a JSON document → ``$1,234.50``; None → ``—``."""
    if value is None or value == "":
        return "—"
    return format_money(Decimal(str(value)), currency)


def _money_cents(cents: Any, currency: str) -> str:
    if cents is None or pd.isna(cents):
        return "—"
    return format_money(Decimal(int(cents)).scaleb(-2), currency)


def _version() -> str:
    from rftcost.version import __version__

    return __version__
