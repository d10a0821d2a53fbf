"""``rftcost audit --invoice FILE LOGS...``: reconcile an invoice against the event logs."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Any

import typer

from rftcost.cli.app import app
from rftcost.cli.common import (
    EXIT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    AssumeTzOption,
    FollowLinksOption,
    FormatOption,
    LogsArgument,
    OutputFormat,
    OutputOption,
    PolicyOption,
    check_logs,
    check_outputs,
    emit,
    markdown_table,
    markdown_text,
    one_line,
    output_stream,
    policy_files,
    progress,
    resolve_format,
    visible_controls,
)

__all__ = [
    "audit_command",
    "render_markdown",
    "render_table",
]


_TABLE_ROWS_LIMIT = 500


@app.command("audit")
def audit_command(
    logs: LogsArgument,
    invoice: Annotated[
        Path,
        typer.Option(
            "--invoice",
            "-i",
            help="The invoice: canonical CSV / JSON Lines, or an OpenAI Costs API export (.json).",
        ),
    ],
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    assume_tz: AssumeTzOption = None,
    follow_links: FollowLinksOption = False,
    tolerance: Annotated[
        str,
        typer.Option(
            "--tolerance",
            help="Differences up to this amount (e.g. 0.05) are reported as info, not errors.",
        ),
    ] = "0.00",
    dispute: Annotated[
        Path | None,
        typer.Option(
            "--dispute",
            help="Also write the findings worth raising with the vendor as CSV: errors and "
            "warnings about the invoice (not invalid_job, which is about your own logs).",
        ),
    ] = None,
    project_map: Annotated[
        list[str] | None,
        typer.Option(
            "--project-map",
            help="Costs API exports: map a project id to the logs' project, PROJ_ID=NAME "
            "(PROJ_ID= for jobs without a project), or a .json / .csv file of such pairs. "
            "Repeatable.",
            metavar="PROJ_ID=NAME|FILE",
        ),
    ] = None,
) -> None:
    """Reconcile an invoice against the logs: every difference explained in money.

    Exit code 1 when a finding of severity error remains, 0 otherwise, 2 when the
    input cannot be used.
    """
    from decimal import Decimal, InvalidOperation

    from rftcost.audit import audit_invoice
    from rftcost.audit.document import write_audit, write_dispute
    from rftcost.engines import bill

    check_outputs(
        [output, dispute],
        [*logs, invoice, *(project_map or []), *policy_files(policy)],
        follow_links=follow_links,
    )
    output_format = resolve_format(output_format, output, OutputFormat.table)
    try:
        allowed = Decimal(tolerance.strip())
        if not allowed.is_finite() or allowed < 0:
            raise InvalidOperation
    except InvalidOperation:
        typer.echo(
            f"error: --tolerance {tolerance!r} is not a non-negative amount (e.g. 0.05)", err=True
        )
        raise typer.Exit(EXIT_USAGE) from None
    from rftcost.invoice import load_project_map, read_invoice

    projects = load_project_map(project_map or [])
    # The invoice is read before the logs are billed: a bad invoice fails in a moment. A
    # line that cannot be read is set aside and reported (unreadable_line, exit 1).
    read = read_invoice(invoice, assume_tz=assume_tz, on_bad_line="set_aside")
    check_logs(logs, follow_links=follow_links)
    with progress(logs) as report:
        billed = bill(
            logs,
            policy=policy,
            assume_tz=assume_tz,
            on_progress=report,
            # One process: the whole time line is kept here, and a second worker's memory
            # would add to it (1,000,000 lines: 1.2 GiB against 2.1-3.2 GiB with two, in
            # the same time: the matching, not the bill, takes it).
            workers=1,
            keep_timeline=True,  # the findings' kinds and evidence come from it
            follow_links=follow_links,
        )
    result = audit_invoice(
        read, billed, tolerance=allowed, assume_tz=assume_tz, project_map=projects
    )
    if output_format in (OutputFormat.json, OutputFormat.csv):
        # Written a chunk of findings at a time (issue 16).
        with output_stream(output) as stream:
            write_audit(result, stream, "json" if output_format is OutputFormat.json else "csv")
        if result.expected_unknown:
            # A findings CSV has no place for it (the JSON has it in its notes): said beside
            # it, as spend and export focus do, never a silent empty sheet.
            typer.echo(
                visible_controls(
                    f"note: expected total + unknown ({_unknown_reasons(result)}); "
                    "see the notes of the table or JSON"
                ),
                err=True,
            )
    elif output_format is OutputFormat.markdown:
        emit(render_markdown(result), output)
    else:
        emit(render_table(result), output)
    if dispute is not None:
        # Through the stream every document goes through: a control character in a job id
        # or description is written visibly (``textsafe``), as in the findings CSV.
        with output_stream(dispute) as handle:
            write_dispute(result, handle)
    raise typer.Exit(EXIT_FOUND if result.has_errors else EXIT_OK)


def _summary_lines(result: Any) -> list[str]:
    s = result.summary
    c = result.currency
    lines = [
        f"Invoice {result.invoice or '(no id)'} ({result.source}), policy {result.policy}, "
        f"amounts in {c}",
        f"Compared {result.comparison}.",
        "",
        f"Expected   {_money(s.expected_total):>14}" + _unpriced(result),
        f"Billed     {_money(s.billed_total):>14}",
        f"Difference {_money(s.difference):>14}   overbilled {_money(s.overbilled)}, "
        f"underbilled {_money(s.underbilled)}",
    ]
    if s.unverifiable_total or _cannot_check(result):
        lines.append(
            f"Cannot check {_partly_unknown(s.unverifiable_total, s):>12}   NOT VERIFIED: "
            "lines of jobs whose logs are invalid or of unreadable lines (errors below)"
        )
    if s.unchecked_lines:
        lines.append(
            f"Unchecked  {_money(s.unchecked_total):>14}   (credits, adjustments, tax, "
            "other costs, invalid jobs, jobs of unreadable lines;"
            f" invoice total {_invoice_total(s)})"
        )
    lines.append(
        f"Findings: {s.findings} ({s.errors} error, {s.warnings} warning, {s.infos} info)"
        + (f"; tolerance {_money(result.tolerance)}" if result.tolerance else "")
    )
    return lines


def _invoice_total(summary: Any) -> str:
    """The invoice's total: stated by a total line, or the lines' sum, "+ unknown" when a
    line's amount cannot be read and no total line states it."""
    if summary.invoice_total_known:
        return _money(summary.invoice_total)
    return _partly_unknown(summary.invoice_total, summary)


def _partly_unknown(amount: Any, summary: Any) -> str:
    """An amount lines of unreadable amount are part of: the known part "+ unknown"."""
    if not summary.unreadable_amounts:
        return _money(amount)
    return "unknown" if not amount else f"{_money(amount)} + unknown"


def _unpriced(result: Any) -> str:
    """Beside the expected total: what of it the logs cannot establish (notes)."""
    return (
        f" + unknown   ({_unknown_reasons(result)}: see the notes)"
        if result.expected_unknown
        else ""
    )


def _unknown_reasons(result: Any) -> str:
    reasons = []
    if result.unpriced_jobs:
        reasons.append(f"{len(result.unpriced_jobs)} invalid job(s) with no line")
    if result.orphan_records:
        reasons.append(f"{result.orphan_records} rejected record(s) of no known job")
    return "; ".join(reasons)


def _verdict(result: Any) -> str:
    """What is said when no finding remains."""
    if result.expected_unknown:
        return (
            "No differences in the lines checked; the logs leave some charges unknown "
            f"({_unknown_reasons(result)}: notes)."
        )
    s = result.summary
    if s.unchecked_lines:  # credits, adjustments, tax: taken as billed, not what the logs bill
        return (
            f"No differences in the lines checked; {s.unchecked_total:.2f} on lines the logs "
            "do not bill (credits, adjustments, tax, other costs) is taken as billed "
            f"({s.unchecked_lines} line(s)), not checked against the logs."
        )
    return "No differences: the invoice matches the logs."


def _cannot_check(result: Any) -> bool:
    """A finding whose money the logs cannot check (its amount may be unknown)."""
    return any(f.kind in ("invalid_job", "unreadable_line") for f in result.findings)


def _where(finding: Any, unnamed_project: str = "(all)") -> str:
    if finding.job_id:
        return str(finding.job_id)
    if finding.day:
        return f"{finding.project or unnamed_project} {finding.day}"
    return "-"


def _line(finding: Any) -> str:
    if finding.invoice_lines:
        numbers = [str(n) for n in finding.invoice_lines]
        return ",".join(numbers[:3]) + ("…" if len(numbers) > 3 else "")
    return "-" if finding.invoice_line is None else str(finding.invoice_line)


def _money(value: Any) -> str:
    """An amount with two decimals, rounded as every document rounds it (R15, half up)."""
    from rftcost.money import format_amount

    return format_amount(value)


def _amount(value: Any) -> str:
    return "unknown" if value is None else _money(value)


_HEADERS = ["severity", "kind", "job", "line", "type", "expected", "billed", "difference"]


def _rows(result: Any) -> list[list[str]]:
    return [
        [
            f.severity,
            f.kind,
            _where(f, result.unnamed_project),
            _line(f),
            f.line_type or "-",
            _amount(f.expected),
            _amount(f.billed),
            _amount(f.difference),
        ]
        for f in result.findings
    ]


def render_table(result: Any) -> str:
    """The audit for a person: the summary first, then findings by severity and money."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(record=True, width=160, file=io.StringIO())
    for text in _summary_lines(result):
        console.print(text, markup=False, soft_wrap=True)
    findings = list(result.findings)
    if not findings:
        console.print("\n" + _verdict(result), markup=False)
        _print_notes(console, result)
        return console.export_text()
    shown = findings[:_TABLE_ROWS_LIMIT]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in _HEADERS:
        table.add_column(
            header, justify="right" if header in {"expected", "billed", "difference"} else "left"
        )
    for row in _rows(result)[: len(shown)]:  # plain Text cells: a job "[/b]" is not markup
        table.add_row(*[Text(one_line(cell)) for cell in row])
    console.print()
    console.print(table)
    console.print("Why:", markup=False)
    for number, finding in enumerate(shown, start=1):
        # soft_wrap: a sentence is never cut at the console's width (piped output).
        console.print(
            f"{number:>3}. [{finding.severity}] {one_line(finding.explanation)}",
            markup=False,
            soft_wrap=True,
        )
    if len(findings) > len(shown):
        console.print(
            f"… and {len(findings) - len(shown)} more findings: use --format csv or json for all.",
            markup=False,
        )
    _print_notes(console, result)
    return console.export_text()


def _print_notes(console: Any, result: Any) -> None:
    if result.notes:
        console.print("\nNotes:", markup=False)
        for note in result.notes:
            console.print(f"  - {note}", markup=False, soft_wrap=True)


def render_markdown(result: Any) -> str:
    """The audit as Markdown (a CI step summary)."""
    s = result.summary
    text = f"## Invoice audit: {markdown_text(result.invoice or result.source)}\n\n"
    text += (
        f"Policy {markdown_text(result.policy)}, amounts in {markdown_text(result.currency)};"
        f" compared {markdown_text(result.comparison)}.\n\n"
    )
    text += markdown_table(
        ["expected", "billed", "difference", "overbilled", "underbilled", "findings"],
        [
            [
                f"{_money(s.expected_total)}" + (" + unknown" if result.expected_unknown else ""),
                f"{_money(s.billed_total)}",
                f"{_money(s.difference)}",
                f"{_money(s.overbilled)}",
                f"{_money(s.underbilled)}",
                f"{s.findings} ({s.errors} error, {s.warnings} warning, {s.infos} info)",
            ]
        ],
    )
    if s.unverifiable_total or _cannot_check(result):
        text += (
            f"\n**Cannot check {_partly_unknown(s.unverifiable_total, s)}"
            f" {markdown_text(result.currency)}"
            "**: lines of jobs whose logs are invalid or of unreadable lines, not verified "
            "(errors below).\n"
        )
    if s.unchecked_lines:
        text += (
            "\nUnchecked (credits, adjustments, tax, other costs, invalid jobs, jobs of "
            "unreadable lines): "
            f"{_money(s.unchecked_total)}\n"
        )
    if result.findings:
        rows = [
            [*row, f.explanation] for row, f in zip(_rows(result), result.findings, strict=True)
        ]
        text += "\n" + markdown_table([*_HEADERS, "explanation"], rows)
    else:
        text += "\n" + _verdict(result) + "\n"
    if result.notes:
        text += "\nNotes:\n\n" + "".join(
            "- " + markdown_text(str(note)) + "\n" for note in result.notes
        )
    return text
