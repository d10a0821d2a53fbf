"""``rftcost report``: one self-contained HTML page: totals, spend, budgets, audit findings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rftcost.cli.app import app
from rftcost.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    AssumeTzOption,
    FollowLinksOption,
    LogsArgument,
    PolicyOption,
    check_logs,
    check_outputs,
    policy_files,
    progress,
)
from rftcost.cli.spend import BudgetsOption, WindowOption

__all__ = ["report_command"]


@app.command("report")
def report_command(
    logs: LogsArgument,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The HTML file to write.", metavar="FILE"),
    ],
    invoice: Annotated[
        Path | None,
        typer.Option(
            "--invoice",
            help="Also audit this invoice (canonical CSV / JSON Lines, or a Costs API export).",
            metavar="FILE",
        ),
    ] = None,
    budgets: BudgetsOption = None,
    window: WindowOption = None,
    title: Annotated[str | None, typer.Option("--title", help="The page's title.")] = None,
    policy: PolicyOption = None,
    assume_tz: AssumeTzOption = None,
    follow_links: FollowLinksOption = False,
) -> None:
    """A self-contained HTML page: totals, spend per team, budgets, audit findings, the policy."""
    from rftcost.engines import bill
    from rftcost.report import html_report, write_report

    check_outputs(
        [output], [*logs, invoice, budgets, *policy_files(policy)], follow_links=follow_links
    )
    if output.suffix.lower() not in (".html", ".htm"):
        # As charts and FOCUS: an HTML page in report.pdf would open as a broken PDF.
        typer.echo(f"error: {output}: a report is written as .html", err=True)
        raise typer.Exit(EXIT_USAGE)
    check_logs(logs, follow_links=follow_links)
    with progress(logs) as report:
        result = bill(
            logs,
            policy=policy,
            assume_tz=assume_tz,
            on_progress=report,
            workers="auto",
            follow_links=follow_links,
        )
    audit = _audit(invoice, result, assume_tz) if invoice is not None else None
    document = html_report(result, budgets=budgets, audit=audit, window=window, title=title)
    write_report(document, output)
    summary = f"wrote {output}"
    if audit is not None:
        summary += f" ({audit.summary.findings} audit finding(s))"
    typer.echo(summary, err=True)
    raise typer.Exit(EXIT_OK)


def _audit(invoice: Path, result: Any, assume_tz: str | None) -> Any:
    """Audit ``invoice`` against the bill (``rftcost.audit``), under the bill's policy."""
    try:
        from rftcost.audit import audit_invoice
    except ImportError as error:  # the audit module ships with the package; guard a broken install
        from rftcost.errors import InputError

        raise InputError(
            f"cannot audit an invoice: the audit module is unavailable ({error})",
            path=invoice,
            hint="run rftcost report without --invoice",
        ) from None
    return audit_invoice(invoice, result, assume_tz=assume_tz)
