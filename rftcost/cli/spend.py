"""``rftcost spend``: spend per team, project, model or job, per day, week or month; budgets."""

from __future__ import annotations

import io
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from rftcost.cli.app import app
from rftcost.cli.common import (
    EXIT_FOUND,
    EXIT_USAGE,
    AssumeTzOption,
    FollowLinksOption,
    FormatOption,
    LogsArgument,
    OutputFormat,
    OutputOption,
    PolicyOption,
    StrictOption,
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
    strict_exit,
    visible_controls,
)

__all__ = [
    "BudgetsOption",
    "By",
    "ByOption",
    "Period",
    "PeriodOption",
    "WindowOption",
    "spend_command",
]


class By(StrEnum):
    """What spend is grouped by (mirrors ``rftcost.spend.SpendGroup``)."""

    team = "team"
    project = "project"
    model = "model"
    job = "job"


class Period(StrEnum):
    """Calendar periods in UTC (mirrors ``rftcost.spend.PeriodKind``)."""

    day = "day"
    week = "week"
    month = "month"


ByOption = Annotated[By, typer.Option("--by", help="Group rows by.", case_sensitive=False)]
PeriodOption = Annotated[
    Period,
    typer.Option(
        "--period",
        help="Period of each row: the UTC day, ISO week or month of each charge's billing event.",
        case_sensitive=False,
    ),
]
WindowOption = Annotated[
    str | None,
    typer.Option(
        "--window",
        help="Only charges in START..END (UTC, end exclusive), e.g. 2025-06-01..2025-07-01.",
        metavar="START..END",
    ),
]
BudgetsOption = Annotated[
    Path | None,
    typer.Option(
        "--budgets",
        help="Budgets CSV: team,period,amount (period 2025-06, 2025-W23 or 2025-06-01).",
        metavar="FILE",
    ),
]


@app.command("spend")
def spend_command(
    logs: LogsArgument,
    by: ByOption = By.team,
    period: PeriodOption = Period.month,
    window: WindowOption = None,
    budgets: BudgetsOption = None,
    fail_over_budget: Annotated[
        bool,
        typer.Option(
            "--fail-over-budget",
            help="Exit 1 when a team spent more than its budget, or may have: a job of the "
            "team in the period is invalid, its amount unknown.",
        ),
    ] = False,
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    assume_tz: AssumeTzOption = None,
    follow_links: FollowLinksOption = False,
    strict: StrictOption = False,
) -> None:
    """Spend per team (project, model, job) and day, week or month, against budgets."""
    if fail_over_budget and budgets is None:
        typer.echo("error: --fail-over-budget needs --budgets FILE", err=True)
        raise typer.Exit(EXIT_USAGE)
    check_outputs([output], [*logs, budgets, *policy_files(policy)], follow_links=follow_links)
    output_format = resolve_format(output_format, output, OutputFormat.table)
    from rftcost.engines import bill
    from rftcost.spend import spend

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
    spent = spend(result, by=by.value, period=period.value, window=window, budgets=budgets)
    if output_format in (OutputFormat.json, OutputFormat.csv):
        from rftcost.documents import write_spend

        with output_stream(output) as stream:
            write_spend(spent, stream, "json" if output_format is OutputFormat.json else "csv")
        if spent.invalid_jobs or spent.orphan_records:
            # The rows hold known amounts only (a CSV has no place to say more): said
            # beside them, as the table says it under them and export focus on stderr.
            typer.echo(visible_controls(_left_out(spent)), err=True)
    elif output_format is OutputFormat.markdown:
        emit(_markdown(spent), output)
    else:
        emit(_table(spent), output)
    if fail_over_budget and (spent.over_budget or spent.unknown_budgets):
        # A budget a job of unknown amount may break cannot be said to hold.
        raise typer.Exit(EXIT_FOUND)
    rejected = len(result.log.rejected) if result.log is not None else 0
    strict_exit(strict, len(spent.invalid_jobs), rejected)


def _counted(spent: Any) -> str:
    """Where the rows count invalid jobs: in their groups' rows of the periods their
    records fall in, inside the window (none may)."""
    if int(spent.table["unknown_jobs"].sum()):
        return "; counted in unknown_jobs of the rows of their periods"
    return "; in no row of this report"


def _left_out(spent: Any) -> str:
    """What no row includes: jobs of unknown amount, records of no known job."""
    jobs = spent.invalid_jobs
    said = []
    if jobs:
        named = ", ".join(jobs[:5]) + (f" and {len(jobs) - 5} more" if len(jobs) > 5 else "")
        said.append(f"{len(jobs)} invalid job(s) in no row's sums{_counted(spent)} ({named})")
    if spent.orphan_records:
        said.append(f"{spent.orphan_records} rejected record(s) of no known job")
    return f"note: {'; '.join(said)}: amount unknown, not $0 (see rftcost validate)"


_HEADERS = ["period", "{group}", "jobs", "billed h", "compute", "discount", "grader", "total",
            "budget", "used"]  # fmt: skip


def _row_cells(row: dict[str, Any], group: str) -> list[str]:
    used = row["budget_used"]
    if used is not None:
        used_text = f"{used}%" + (" OVER" if row["over_budget"] else "")
    elif row["over_budget"]:  # over already, by a share unknown (charges of unknown amount)
        used_text = "OVER"
    else:  # no budget; or a job of unknown amount in the row (spend's budgets say which)
        used_text = "" if row["budget"] is None else "unknown"
    sums = ("billed_hours", "compute_amount", "discount_amount", "grader_amount")
    total = row["total_amount"]
    unknown = row["unknown_jobs"]
    return [
        row["period"],
        row[group],
        str(row["jobs"]) + (f" + {unknown} invalid" if unknown else ""),
        *("unknown" if row[key] is None else row[key] for key in sums),
        # A row's sums are its known jobs': with an invalid job the total is a lower bound.
        "unknown" if total is None else total + (" + unknown" if unknown else ""),
        row["budget"] or "",
        used_text,
    ]


def _budget_cells(spent: Any) -> list[list[str]]:
    return [
        [
            b.team,
            b.period,
            f"{b.amount:.2f}",
            f"{b.spent:.2f}" + (" + unknown" if b.in_doubt else ""),
            "unknown" if b.remaining is None else f"{b.remaining:.2f}",
            ("unknown" if b.in_doubt else "")
            if b.used_percent is None
            else f"{b.used_percent:.2f}%",
            b.status.upper()
            if b.status == "over"
            # A misspelt team: not "ok", its real team's spending is unchecked.
            else "no job of this team"
            if b.status == "ok" and not b.team_in_logs
            else b.status,
        ]
        for b in spent.budgets
    ]


_BUDGET_HEADERS = ["team", "period", "budget", "spent", "remaining", "used", "status"]


def _totals_line(spent: Any) -> str:
    t = spent.totals
    window = f" in {spent.window.label()}" if spent.window is not None else ""
    # Invalid jobs are not in the rows: their amount is unknown, and so is the total's.
    invalid, orphans = len(spent.invalid_jobs), spent.orphan_records
    reasons = [f"{invalid} invalid job" + ("" if invalid == 1 else "s")] if invalid else []
    if orphans:  # rejected records whose job could not be read: of any group, or none
        records = "record" if orphans == 1 else "records"
        reasons.append(f"{orphans} rejected {records} of no known job: see rftcost validate")
    unknown = "; ".join(reasons)
    if reasons and not t.jobs:
        return f"Total {spent.currency} unknown ({unknown}; amount unknown, not 0.00{window})"
    return (
        f"Total {spent.currency} {t.total_amount:.2f}"
        + (f" + unknown ({unknown})" if reasons else "")
        + f" = compute {t.compute_amount:.2f}"
        f" − discount {t.discount_amount:.2f} + grader {t.grader_amount:.2f}"
        f"  ({t.jobs} jobs, {t.charges} charges, {t.billed_hours} h billed{window})"
    )


def _notes(spent: Any) -> list[str]:
    notes = []
    if spent.invalid_jobs:
        shown = ", ".join(one_line(job) for job in spent.invalid_jobs[:5])
        shown += " …" if len(spent.invalid_jobs) > 5 else ""
        notes.append(
            f"{len(spent.invalid_jobs)} invalid job(s) not in the sums"
            f" (amount unknown, not $0{_counted(spent)}): {shown}"
        )
    over = spent.over_budget
    if over:
        notes.append(
            "Over budget: "
            + "; ".join(f"{b.team} {b.period} spent {b.spent:.2f} of {b.amount:.2f}" for b in over)
        )
    for b in spent.unknown_budgets:
        unknown = []
        if b.unknown_jobs:
            jobs = ", ".join(one_line(job) for job in b.unknown_jobs[:3])
            jobs += " …" if len(b.unknown_jobs) > 3 else ""
            unknown.append(f"{len(b.unknown_jobs)} invalid job(s) ({jobs})")
        if b.unknown_records:
            unknown.append(f"{b.unknown_records} rejected record(s) of no known job")
        notes.append(
            f"Budget of {one_line(b.team)} {b.period} unknown: spent {b.spent:.2f} known of "
            f"{b.amount:.2f}, plus the unknown amount of {' and '.join(unknown)}"
        )
    # A budget in doubt may be this team's already (an invalid job's team unknown): said
    # above, and not contradicted here.
    unseen = sorted({b.team for b in spent.budgets if not b.team_in_logs and not b.in_doubt})
    if unseen:
        notes.append(
            "No job of the logs is of team "
            + ", ".join(repr(one_line(team)) for team in unseen)
            + ": its budgets show 0.00 spent (team names match exactly, case included;"
            " a misspelt name leaves the real team's spending unchecked)."
        )
    cut = [b for b in spent.budgets if not b.whole_period]
    if cut:
        notes.append(
            "The window covers part of the period of "
            + ", ".join(f"{one_line(b.team)} {b.period}" for b in cut)
            + ": spent counts the window's part alone, not the whole period's."
        )
    notes.append("A charge counts in the period of its billing event (UTC); accrued work is not.")
    return notes


def _table(spent: Any) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    group = spent.by.value
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(
        Text.assemble(
            (f"Spend per {group} and {spent.period.value}", "bold"),
            f"  policy {spent.policy} ({spent.currency})",
        )
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in _HEADERS:
        name = header.format(group=group)
        table.add_column(name, justify="left" if name in {"period", group} else "right")
    for row in spent.rows():  # plain Text cells: a team "[/bold]" is not rich markup
        table.add_row(*[Text(one_line(cell)) for cell in _row_cells(row, group)])
    console.print(table)
    if spent.budgets:
        console.print("[bold]Budgets[/bold]")
        budgets = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for header in _BUDGET_HEADERS:
            budgets.add_column(header, justify="left" if header in {"team", "period"} else "right")
        for cells in _budget_cells(spent):
            budgets.add_row(
                *[Text(one_line(cell)) for cell in cells],
                style="bold red" if cells[-1] == "OVER" else None,
            )
        console.print(budgets)
    console.print(_totals_line(spent), markup=False, soft_wrap=True)
    for note in _notes(spent):
        console.print(note, markup=False, soft_wrap=True)
    return console.export_text()


def _markdown(spent: Any) -> str:
    group = spent.by.value
    text = (
        f"## RFT spend per {group} and {spent.period.value}\n\n"
        f"Policy {markdown_text(spent.policy)}, amounts in {markdown_text(spent.currency)}.\n\n"
    )
    headers = [h.format(group=group) for h in _HEADERS]
    text += markdown_table(headers, [_row_cells(row, group) for row in spent.rows()])
    if spent.budgets:
        text += "\n### Budgets\n\n" + markdown_table(_BUDGET_HEADERS, _budget_cells(spent))
    text += "\n**" + markdown_text(_totals_line(spent)) + "**\n\n"
    text += "\n".join(f"- {markdown_text(note)}" for note in _notes(spent)) + "\n"
    return text
