"""``rftcost watch``: guard running jobs (live spend, forecast, pause at the budget).

The library (``rftcost.watch.watch``) polls and decides; this module only renders each
``WatchState``: a live table on a terminal, one line per poll and job when piped, one
``rftcost.watch/v1`` JSON object per line with ``--format json``. Warnings and the last
summary go to stderr.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rftcost.cli.app import app
from rftcost.cli.common import EXIT_USAGE, PolicyOption, one_line, visible_controls

if TYPE_CHECKING:
    from rftcost.watch import JobWatch, WatchState

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_MAX_FAILURES",
    "DEFAULT_MAX_RETRIES",
    "MAX_INTERVAL",
    "WatchFormat",
    "poll_line",
    "summary",
    "watch_command",
    "watch_table",
]

# rftcost.watch.DEFAULT_INTERVAL / DEFAULT_MAX_FAILURES and rftcost.fetch.DEFAULT_MAX_RETRIES,
# repeated so that `rftcost --help` does not import the library (tests check they agree).
DEFAULT_INTERVAL = 60.0
DEFAULT_MAX_FAILURES = 5
DEFAULT_MAX_RETRIES = 5
MAX_INTERVAL = 86_400.0
"""Longest --interval: a day between polls (``inf`` would overflow the sleep after a poll)."""


class WatchFormat(StrEnum):
    """Output of ``rftcost watch``."""

    table = "table"
    json = "json"


@app.command("watch")
def watch_command(
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Fine-tuning job ids (ftjob-…) to watch.", metavar="JOB_ID...", show_default=False
        ),
    ] = None,
    all_jobs: Annotated[
        bool,
        typer.Option("--all", help="Every running reinforcement fine-tuning job of the key's org."),
    ] = False,
    budget: Annotated[
        str | None,
        typer.Option("--budget", help="Budget of each job (e.g. 250.00).", show_default=False),
    ] = None,
    budgets: Annotated[
        Path | None,
        typer.Option(
            "--budgets",
            help="Team budgets (team,period,amount): each job against its team's month "
            "(team from metadata.team); --budget is the fallback.",
        ),
    ] = None,
    history: Annotated[
        list[Path] | None,
        typer.Option(
            "--history",
            help="Event logs of past jobs: their charges this month count against team budgets.",
        ),
    ] = None,
    pause: Annotated[
        bool, typer.Option("--pause", help="Pause a job whose spend reaches its budget.")
    ] = False,
    pause_on_forecast: Annotated[
        bool,
        typer.Option(
            "--pause-on-forecast", help="Pause a job whose P50 forecast exceeds its budget."
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.01, max=MAX_INTERVAL, help="Seconds between polls."),
    ] = DEFAULT_INTERVAL,
    once: Annotated[
        bool, typer.Option("--once", help="Poll once: report, pause if asked, exit.")
    ] = False,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration", help="Calibration file for the forecast (rftcost calibrate)."
        ),
    ] = None,
    policy: PolicyOption = None,
    output_format: Annotated[
        WatchFormat,
        typer.Option(
            "--format",
            "-f",
            help="table: live on a terminal, a line per job when piped; json: "
            "rftcost.watch/v1 lines.",
            case_sensitive=False,
        ),
    ] = WatchFormat.table,
    notify: Annotated[
        str | None,
        typer.Option(
            "--notify",
            help="Webhook (Slack-compatible) for alerts at 50/80/100% of budget, "
            "forecast over budget, paused.",
        ),
    ] = None,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save", help="Keep the fetched exports in DIR/JOB_ID/ (else nothing is written)."
        ),
    ] = None,
    max_retries: Annotated[
        int,
        typer.Option(
            "--max-retries",
            min=0,
            help="Retries, with backoff, of a request hit by a rate limit, a timeout, "
            "a dropped connection or a server error.",
        ),
    ] = DEFAULT_MAX_RETRIES,
    max_failures: Annotated[
        int,
        typer.Option(
            "--max-failures", min=1, help="Failed polls in a row before giving up (exit 2)."
        ),
    ] = DEFAULT_MAX_FAILURES,
) -> None:
    """Watch running jobs: spend so far, forecast, budget; pause at the budget (exit 1 over)."""
    from rftcost.watch import watch

    if budget is None and budgets is None:
        typer.echo("error: give --budget AMOUNT or --budgets FILE", err=True)
        raise typer.Exit(EXIT_USAGE)
    if not job_ids and not all_jobs:
        typer.echo("error: give job ids (ftjob-…) or --all", err=True)
        raise typer.Exit(EXIT_USAGE)
    states = watch(
        job_ids or (),
        all_jobs=all_jobs,
        budget=budget,
        budgets=budgets,
        history=history or None,
        pause=pause,
        pause_on_forecast=pause_on_forecast,
        interval=interval,
        once=once,
        calibration=calibration,
        policy=policy,
        notify=notify,
        save=save,
        max_retries=max_retries,
        max_failures=max_failures,
    )
    live = output_format is WatchFormat.table and sys.stdout.isatty()
    last: WatchState | None = None
    try:
        if live:
            last = _live(states)
        else:
            for state in states:
                last = state
                _print_state(state, output_format)
    except KeyboardInterrupt:
        typer.echo("interrupted: the jobs go on, unguarded", err=True)
        states.close()
    if last is None:
        raise typer.Exit(0)
    typer.echo(visible_controls(summary(last)), err=True, nl=False)
    raise typer.Exit(last.exit_code)


def _print_state(state: WatchState, output_format: WatchFormat) -> None:
    # Names come from the API (a team in metadata): control characters shown, not obeyed,
    # as every other command writes them (a JSON line stays the same data).
    for warning in state.warnings:
        typer.echo(visible_controls(f"warning: {warning}"), err=True)
    if output_format is WatchFormat.json:
        for line in state.lines():
            sys.stdout.write(visible_controls(json.dumps(line, ensure_ascii=False)) + "\n")
    else:
        for job in state.jobs:
            sys.stdout.write(visible_controls(poll_line(state, job)) + "\n")
        if not state.jobs:
            sys.stdout.write(f"{_at(state)} no running reinforcement fine-tuning job\n")
    for job in state.jobs:
        if job.action == "paused":
            message = f"{job.job_id}: pause sent ({'; '.join(job.notes)})"
            typer.echo(visible_controls(message), err=True)
    sys.stdout.flush()


def _live(states: Any) -> WatchState | None:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    last = None
    console = Console()
    with Live(console=console, auto_refresh=False) as live:
        for state in states:
            last = state
            live.update(watch_table(state), refresh=True)
            for warning in state.warnings:
                # Text, not markup: a warning may quote the API or a name with brackets.
                live.console.print(Text.assemble(("warning: ", "yellow"), warning))
    return last


def watch_table(state: WatchState) -> Any:
    """The live table of one poll (rich). On a narrow terminal the job id and the money
    keep their width; team, status and action are shortened first."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    title = f"rftcost watch · poll {state.poll} · {_at(state)} · {state.policy} ({state.currency})"
    table = Table(
        title=Text(title + (" · poll failed: last known figures" if state.failed else "")),
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
        collapse_padding=True,
    )
    rows = [
        [
            job.job_id,
            job.team or "unallocated",
            job.status,
            _step(job),
            _amount(job.spent),
            _amount(job.forecast.p50 if job.forecast else None),
            "final"
            if job.forecast is not None and job.forecast.final
            else _amount(job.forecast.p90 if job.forecast else None),
            _amount(job.budget),
            "—" if job.budget_used is None else f"{job.budget_used:.2f}%",
            _duration(job.seconds_to_budget),
            _action(job),
        ]
        for job in state.jobs
    ]
    headers = ["job", "team", "status", "step", "spent", "P50", "P90", "budget", "used"]
    headers += ["budget in", "action"]
    for i, header in enumerate(headers):
        if header in ("team", "status", "action"):
            table.add_column(header, overflow="ellipsis", no_wrap=True)
        else:  # ids and figures are never cut
            width = max([len(header), *(len(row[i]) for row in rows)])
            table.add_column(
                header,
                justify="left" if header == "job" else "right",
                no_wrap=True,
                min_width=width,
            )
    for row in rows:
        table.add_row(*(Text(one_line(cell)) for cell in row))  # names are text, never markup
    return table


def poll_line(state: WatchState, job: JobWatch) -> str:
    """One line of a poll for one job (output piped)."""
    parts = [
        _at(state),
        job.job_id,
        job.team or "unallocated",
        job.status,
        f"step {_step(job)}",
        f"spent {_amount(job.spent)}",
    ]
    if job.spent is not None:
        parts.append(f"(charged {_amount(job.charged)} + accrued {_amount(job.accrued)})")
    if job.forecast is not None and job.forecast.final:
        parts.append(f"final bill {_amount(job.forecast.p50)}")
    elif job.forecast is not None:
        parts.append(
            f"forecast P10 {_amount(job.forecast.p10)} P50 {_amount(job.forecast.p50)} "
            f"P90 {_amount(job.forecast.p90)}"
        )
    if job.budget is not None:
        used = "" if job.budget_used is None else f" ({job.budget_used:.2f}% used)"
        parts.append(f"budget {_amount(job.budget)}{used}")
        if job.seconds_to_budget is not None:
            parts.append(f"budget in {_duration(job.seconds_to_budget)}")
    action = _action(job)
    if action:
        parts.append(f"→ {action}")
    if job.problems:
        parts.append("amount unknown: " + "; ".join(job.problems))
    return " ".join(parts)


def summary(state: WatchState) -> str:
    """The last word: each job's spend (final bill once ended) against its budget."""
    lines = [f"summary after {state.poll} poll(s):"]
    for job in state.jobs:
        if job.spent is None:
            figure = "amount unknown (" + "; ".join(job.problems) + ")"
        elif job.forecast is not None and job.forecast.final:
            figure = f"final bill {_amount(job.spent)} {state.currency}"
        else:
            figure = f"spent so far {_amount(job.spent)} {state.currency}"
            if job.forecast is not None:
                figure += f", forecast P50 {_amount(job.forecast.p50)}"
        if job.budget is None:
            verdict = "no budget"
        else:
            used = "" if job.budget_used is None else f", {job.budget_used:.2f}% used"
            verdict = f"budget {_amount(job.budget)} ({job.budget_source}{used})"
            if job.over_budget:
                verdict += ": budget reached"
            elif job.forecast_over_budget:
                verdict += ": forecast over budget"
            elif job.spent is None or job.unknown_elsewhere:  # not said within it
                verdict += ": unknown"
            else:
                verdict += ": within budget"
        paused = ", paused by rftcost watch" if job.paused_by_watch else ""
        lines.append(f"  {job.job_id}: {job.status}{paused}, {figure}; {verdict}")
    if not state.jobs:
        lines.append("  no job watched")
    return "\n".join(lines) + "\n"


def _at(state: WatchState) -> str:
    from rftcost.time import iso_seconds

    return str(iso_seconds(state.at))


def _step(job: JobWatch) -> str:
    if job.step is None:
        return "—" if job.total_steps is None else f"0/{job.total_steps}"
    return f"{job.step}/{job.total_steps}" if job.total_steps else str(job.step)


def _amount(value: Any) -> str:
    from rftcost.money import format_amount

    return "unknown" if value is None else format_amount(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _action(job: JobWatch) -> str:
    if job.action == "paused":
        return "paused"
    if job.action == "alerted":
        return "alerted: " + ", ".join(job.alerts)
    if job.over_budget:
        return "over budget"
    if job.forecast_over_budget:
        return "forecast over budget"
    return ""
