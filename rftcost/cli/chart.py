"""``rftcost chart spend|cumulative|timeline|waterfall``: pictures, PNG or SVG by suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rftcost.cli.app import app
from rftcost.cli.common import (
    EXIT_USAGE,
    AssumeTzOption,
    FollowLinksOption,
    LogsArgument,
    PolicyOption,
    check_logs,
    check_outputs,
    note_missing_glyphs,
    policy_files,
    progress,
)
from rftcost.cli.spend import (
    BudgetsOption,
    By,
    ByOption,
    Period,
    PeriodOption,
    WindowOption,
)

__all__ = [
    "chart_app",
    "chart_cumulative",
    "chart_spend",
    "chart_timeline",
    "chart_waterfall",
]

chart_app = typer.Typer(
    help="Pictures of spend and of jobs (PNG or SVG, chosen by the file's suffix).",
    no_args_is_help=True,
)
app.add_typer(chart_app, name="chart")

ChartFile = Annotated[
    Path,
    typer.Option(
        "--output", "-o", help="The picture to write: a .png or .svg file.", metavar="FILE"
    ),
]
JobOption = Annotated[str, typer.Option("--job", "-j", help="The job to draw.")]


def _bill(
    logs: list[Path], policy: str | None, assume_tz: str | None, follow_links: bool = False
) -> Any:
    from rftcost.engines import bill

    check_logs(logs, follow_links=follow_links)
    with progress(logs) as report:
        return bill(
            logs,
            policy=policy,
            assume_tz=assume_tz,
            on_progress=report,
            workers="auto",
            follow_links=follow_links,
        )


def _check_suffix(output: Path) -> None:
    if output.suffix.lower() not in (".png", ".svg"):
        typer.echo(f"error: {output}: a chart is written as .png or .svg", err=True)
        raise typer.Exit(EXIT_USAGE)


def _check_job(result: Any, job: str) -> None:
    if job not in set(result.job_ids()):
        typer.echo(
            f"error: job {job!r} is not in the logs ({len(result.jobs)} jobs read); "
            "see rftcost bill for the job ids",
            err=True,
        )
        raise typer.Exit(EXIT_USAGE)


def _note_unknown(result: Any) -> None:
    """Say what a spend chart cannot draw: amounts that are unknown are not bars of $0."""
    invalid = int(result.totals().invalid_jobs)
    orphans = int(result.orphan_records())
    said = [f"{invalid} invalid job(s)"] if invalid else []
    said += [f"{orphans} rejected record(s) of no known job"] if orphans else []
    if said:
        typer.echo(
            f"note: not drawn, amount unknown (not $0): {', '.join(said)}; see rftcost validate",
            err=True,
        )


def _saved(fig: Any, output: Path) -> None:
    from rftcost.charts import save_figure

    save_figure(fig, output)
    typer.echo(f"wrote {output}", err=True)
    note_missing_glyphs(fig, output)


@chart_app.command("spend")
def chart_spend(
    logs: LogsArgument,
    output: ChartFile,
    by: ByOption = By.team,
    period: PeriodOption = Period.month,
    window: WindowOption = None,
    budgets: BudgetsOption = None,
    policy: PolicyOption = None,
    assume_tz: AssumeTzOption = None,
    follow_links: FollowLinksOption = False,
) -> None:
    """Stacked bars per period and team (compute after discount, grader), budgets as lines."""
    _check_suffix(output)
    check_outputs([output], [*logs, budgets, *policy_files(policy)], follow_links=follow_links)
    from rftcost.charts import spend_figure
    from rftcost.spend import spend

    result = _bill(logs, policy, assume_tz, follow_links)
    report = spend(result, by=by.value, period=period.value, window=window, budgets=budgets)
    _saved(spend_figure(report), output)
    _note_unknown(result)


@chart_app.command("cumulative")
def chart_cumulative(
    logs: LogsArgument,
    output: ChartFile,
    month: Annotated[
        str | None,
        typer.Option("--month", help="The month, e.g. 2025-06 (default: the latest charge's)."),
    ] = None,
    budgets: BudgetsOption = None,
    policy: PolicyOption = None,
    assume_tz: AssumeTzOption = None,
    follow_links: FollowLinksOption = False,
) -> None:
    """Cumulative spend per team over one month against each team's budget."""
    _check_suffix(output)
    check_outputs([output], [*logs, budgets, *policy_files(policy)], follow_links=follow_links)
    from rftcost.charts import cumulative_figure

    result = _bill(logs, policy, assume_tz, follow_links)
    _saved(cumulative_figure(result, month=month, budgets=budgets), output)
    _note_unknown(result)


@chart_app.command("timeline")
def chart_timeline(
    logs: LogsArgument,
    output: ChartFile,
    job: JobOption,
    policy: PolicyOption = None,
    assume_tz: AssumeTzOption = None,
    follow_links: FollowLinksOption = False,
) -> None:
    """One job as a Gantt chart: billed, lost and excluded time, billing events, checkpoints."""
    _check_suffix(output)
    check_outputs([output], [*logs, *policy_files(policy)], follow_links=follow_links)
    from rftcost.charts import timeline_figure
    from rftcost.explain import explain

    result = _bill(logs, policy, assume_tz, follow_links)
    _check_job(result, job)
    _saved(timeline_figure(explain(result, job), currency=result.policy.currency), output)


@chart_app.command("waterfall")
def chart_waterfall(
    logs: LogsArgument,
    output: ChartFile,
    job: Annotated[
        str | None, typer.Option("--job", "-j", help="One job (default: the whole bill).")
    ] = None,
    policy: PolicyOption = None,
    assume_tz: AssumeTzOption = None,
    follow_links: FollowLinksOption = False,
) -> None:
    """Wall clock → excluded → lost work → billable → rounding → discount → grader → total."""
    _check_suffix(output)
    check_outputs([output], [*logs, *policy_files(policy)], follow_links=follow_links)
    from rftcost.charts import waterfall_figure

    result = _bill(logs, policy, assume_tz, follow_links)
    if job is not None:
        _check_job(result, job)
    _saved(waterfall_figure(result, job), output)
