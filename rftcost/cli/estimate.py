"""``rftcost estimate`` and ``rftcost calibrate``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from rftcost.cli.app import app
from rftcost.cli.common import (
    EXIT_FOUND,
    EXIT_OK,
    AssumeTzOption,
    FollowLinksOption,
    LogsArgument,
    OutputOption,
    PolicyOption,
    check_logs,
    check_outputs,
    emit,
    json_text,
    markdown_table,
    markdown_text,
    policy_files,
    resolve_format,
)

__all__ = [
    "EstimateFormat",
    "calibrate_command",
    "estimate_command",
]


class EstimateFormat(StrEnum):
    """Output formats of ``estimate`` and ``calibrate``."""

    table = "table"
    json = "json"
    markdown = "markdown"


FormatOption = Annotated[
    EstimateFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format (default: from the suffix of --output: .json, .md; else table).",
        case_sensitive=False,
        show_default=False,
    ),
]


MAX_DRAWS = 100_000
"""Most Monte Carlo draws: more would not change P10/P50/P90 and would exhaust memory."""


@app.command("estimate")
def estimate_command(
    plan: Annotated[
        Path | None,
        typer.Argument(
            help="Create-job request (JSON body of POST /v1/fine_tuning/jobs) with local data"
            " file paths. Optional with --running (the job's own settings are used).",
            show_default=False,
        ),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            "-c",
            help="Calibration from `rftcost calibrate` (default: built-in priors, wide range).",
        ),
    ] = None,
    n_train: Annotated[
        int | None,
        typer.Option("--n-train", help="Training examples (instead of counting the file)."),
    ] = None,
    n_valid: Annotated[
        int | None,
        typer.Option("--n-valid", help="Validation examples (instead of counting the file)."),
    ] = None,
    data_sharing: Annotated[
        bool, typer.Option("--data-sharing", help="The organisation shares training data (R12).")
    ] = False,
    vary: Annotated[
        list[str] | None,
        typer.Option(
            "--vary",
            help="What-if: NAME=V1,V2,... (repeatable; one row per combination), e.g."
            " eval_interval=5,10,20 or grader=gpt-4.1-nano,gpt-4.1.",
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget", help="Exit 1 when the P90 total exceeds this amount; say what fits."
        ),
    ] = None,
    running: Annotated[
        list[Path] | None,
        typer.Option(
            "--running", help="Logs of a job in progress (with --job): project its final cost."
        ),
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="The job in progress (with --running).")
    ] = None,
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    draws: Annotated[int, typer.Option("--draws", help="Monte Carlo draws.", min=200)] = 4000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (same seed, same figures).", min=0)
    ] = 0,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Price grader tokens as of this time (ISO 8601; default: now)."),
    ] = None,
    assume_tz: AssumeTzOption = None,
) -> None:
    """Cost of a run before launch (or of a job in progress) as P10 / P50 / P90."""
    from rftcost.calibration import Calibration
    from rftcost.errors import PlanError
    from rftcost.estimate import (
        check_budget,
        check_projected_budget,
        estimate,
        parse_vary,
        project_running,
        what_if,
    )
    from rftcost.plan import load_plan
    from rftcost.policy import load_policy

    if draws > MAX_DRAWS:
        # Each draw holds a few dozen floats per array: 200,000 draws already take ~0.5 GB.
        raise PlanError(f"--draws must be at most {MAX_DRAWS:,}, got {draws:,}")
    if (running is None) != (job is None):
        raise PlanError("--running LOGS and --job ID go together")
    if plan is None and running is None:
        raise PlanError("give a PLAN file (or --running LOGS --job ID for a job in progress)")
    inputs = [plan, calibration, *(running or []), *policy_files(policy)]
    check_outputs([output], inputs)
    output_format = resolve_format(output_format, output, EstimateFormat.table)
    when = _parse_at(at)
    resolved_policy = load_policy(policy)
    cal = Calibration.load(calibration) if calibration is not None else None
    loaded = (
        load_plan(plan, n_train=n_train, n_valid=n_valid, data_sharing=data_sharing or None)
        if plan is not None
        else None
    )
    if plan is not None:  # the plan's data files were read: never overwrite them either
        check_outputs([output], _plan_data_files(plan))
    variations = parse_vary(vary or [])
    common: dict[str, Any] = {"policy": resolved_policy, "draws": draws, "seed": seed, "at": when}
    if running is not None and job is not None:
        from rftcost.engines import bill

        check_logs(running)
        logs = bill(running, policy=resolved_policy, assume_tz=assume_tz)
        # Without a plan the options stand for the job's settings (over what it recorded).
        given = {
            "n_train_examples": n_train,
            "n_valid_examples": n_valid,
            "data_sharing": True if data_sharing else None,
        }
        result = project_running(logs, job, cal, plan=loaded, settings_given=given, **common)
    else:
        assert loaded is not None
        result = estimate(loaded, cal, **common)
    rows = what_if(result.plan, variations, cal, **common) if variations else []
    check = None
    if budget is not None and running is not None:  # against the projected final total
        check = check_projected_budget(result, _amount(budget), cal, **common)
    elif budget is not None:
        check = check_budget(result.plan, _amount(budget), cal, **common)

    if output_format is EstimateFormat.json:
        document = result.to_dict()
        if rows:
            document["what_if"] = [_row_json(r) for r in rows]
        if check is not None:
            document["budget"] = _budget_json(check)
        emit(json_text(document), output)
    elif output_format is EstimateFormat.markdown:
        emit(_markdown(result, rows, check), output)
    else:
        emit(_table(result, rows, check), output)
    raise typer.Exit(EXIT_FOUND if check is not None and check.over else EXIT_OK)


def _plan_data_files(plan: Path) -> list[Path]:
    """The local data files a (loaded, valid) plan names, resolved as ``load_plan`` does."""
    import json

    try:
        body = json.loads(plan.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(body, dict):
        return []
    files = [body.get("training_file"), body.get("validation_file")]
    return [plan.parent / name for name in files if isinstance(name, str) and name.strip()]


def _parse_at(text: str | None) -> datetime | None:
    from rftcost.errors import PlanError

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PlanError(f"--at {text!r}: not an ISO 8601 time (e.g. 2025-07-01T00:00:00Z)") from exc
    if value.tzinfo is None:
        raise PlanError(f"--at {text!r}: give a time zone offset (e.g. Z)")
    return value


def _amount(text: str | None) -> Any:
    from rftcost.errors import PlanError
    from rftcost.money import budget_amount

    assert text is not None
    try:
        value = budget_amount(text.strip().removeprefix("$"))
    except ValueError as error:
        raise PlanError(f"--budget {text!r}: {error}") from None
    if value <= 0:
        raise PlanError(f"--budget {text!r}: must be positive")
    return value


def _row_json(row: Any) -> dict[str, Any]:
    return {
        "changes": row.changes,
        "steps": row.steps,
        "validation_runs": row.validation_runs,
        "billable_hours": row.billable_hours.strings(None),
        "total_amount": row.total_amount.strings(),
    }


def _budget_json(check: Any) -> dict[str, Any]:
    return {
        "budget": f"{check.budget:.2f}",
        "p90": f"{check.p90:.2f}",
        "over": check.over,
        "suggestion": check.suggestion,
        "suggestion_p90": None if check.suggestion_p90 is None else f"{check.suggestion_p90:.2f}",
        "candidates": [{"change": c, "p90": f"{p:.2f}"} for c, p in check.candidates],
    }


# --- rendering ------------------------------------------------------------------------------


def _headline(result: Any) -> str:
    plan = result.plan
    title = (
        f"Projection of job {result.progress.job_id} ({result.progress.status})"
        if result.progress is not None
        else "Estimate"
    )
    weak = any(line.startswith(("WEAK FIT", "FEW JOBS")) for line in result.calibration)
    basis = (
        ("calibrated on past jobs" + (" (weakly: see Calibration)" if weak else ""))
        if result.calibrated
        else "NOT CALIBRATED: built-in priors, the range is wide"
    )
    return (
        f"{title}: {plan.model}, {plan.grader.label} grader, policy {result.policy}"
        f" ({result.currency}); {basis}"
    )


def _counts(result: Any) -> str:
    plan = result.plan
    return (
        f"{result.steps} steps ({plan.n_train_examples} examples × {plan.n_epochs} epochs"
        f" / batch {plan.batch_size}), {result.validation_runs} validation runs"
        f" ({plan.n_valid_examples} examples × {plan.eval_samples} sample(s) every"
        f" {plan.eval_interval} steps), {result.graded_samples:,} graded samples"
    )


def _figure_rows(result: Any) -> list[list[str]]:
    rows = [["billable hours", *result.billable_hours.strings(None).values()]]
    for label, q in (
        ("compute", result.compute_amount),
        ("discount", result.discount_amount),
        ("grader", result.grader_amount),
        ("total", result.total_amount),
    ):
        rows.append([label, *q.strings().values()])
        if label == "grader" and len(result.grader_amount_by_model) > 1:
            # Kind 13: each model grader of a multi grader at its own model's rates.
            rows.extend(
                [f"  {model}", *amount.strings().values()]
                for model, amount in result.grader_amount_by_model.items()
            )
    return rows


def _breakdown_rows(result: Any) -> list[list[str]]:
    return [[phase, *q.strings(None).values()] for phase, q in result.breakdown.items()]


def _what_if_rows(rows: list[Any]) -> tuple[list[str], list[list[str]]]:
    names = list(rows[0].changes) if rows else []
    headers = [*names, "steps", "val runs", "hours P50", "total P10", "total P50", "total P90"]
    body = [
        [
            *(row.changes[n] for n in names),
            str(row.steps),
            str(row.validation_runs),
            row.billable_hours.strings(None)["p50"],
            *row.total_amount.strings().values(),
        ]
        for row in rows
    ]
    return headers, body


def _budget_lines(check: Any, currency: str, *, running: bool = False) -> list[str]:
    if not check.over:
        return [f"Within budget: P90 total {currency} {check.p90:.2f} ≤ {check.budget:.2f}."]
    lines = [f"OVER BUDGET: P90 total {currency} {check.p90:.2f} > {check.budget:.2f}."]
    # For a job in progress what is charged is spent: no setting of this job undoes it, the
    # changes are those a next run of its plan could make.
    if check.suggestion:
        lines.append(
            f"A next run of this plan would fit with one change: {check.suggestion}"
            f" (its P90 {check.suggestion_p90:.2f}); this job, part done, cannot."
            if running
            else f"Single change that brings P90 under budget: {check.suggestion}"
            f" (P90 {check.suggestion_p90:.2f})."
        )
    elif check.candidates:
        best = check.candidates[0]
        lines.append(
            f"No single change brings a next run of this plan under budget; the cheapest"
            f" is {best[0]} (its P90 {best[1]:.2f})."
            if running
            else f"No single change is enough; the cheapest is {best[0]} (P90 {best[1]:.2f})."
        )
    elif running:
        lines.append(
            "A next run of this plan would fit the budget as it is: this job is over for"
            " how it has run so far."
        )
    return lines


def _progress_lines(result: Any) -> list[str]:
    progress = result.progress
    if progress is None:
        return []
    pace = (
        f", {progress.observed_seconds_per_step:.0f} s per step so far"
        if progress.observed_seconds_per_step
        else ""
    )
    return [
        f"Done: {progress.steps_done}/{result.steps} steps, {progress.validation_runs_done}"
        f"/{result.validation_runs} validation runs{pace}; charged {progress.charged_amount:.2f},"
        f" unbilled {progress.unbilled_hours} h. Figures below are the projected final totals;"
        " the breakdown is the work left."
    ]


def _table(result: Any, rows: list[Any], check: Any) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(record=True, width=120, file=_null(), soft_wrap=True)
    console.print(_headline(result), markup=False)
    console.print(_counts(result), markup=False)
    for line in _progress_lines(result):
        console.print(line, markup=False)
    figures = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in ("", "P10", "P50", "P90"):
        figures.add_column(header, justify="left" if not header else "right")
    for row in _figure_rows(result):
        figures.add_row(*row)
    console.print(figures)
    console.print("Billable hours by phase (P10 / P50 / P90; phases overlap, shares of the union):")
    phases = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in ("phase", "P10", "P50", "P90"):
        phases.add_column(header, justify="left" if header == "phase" else "right")
    for row in _breakdown_rows(result):
        phases.add_row(*row)
    console.print(phases)
    if rows:
        headers, body = _what_if_rows(rows)
        console.print(_what_if_title(result) + ":")
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for header in headers:
            table.add_column(header, justify="right")
        for row in body:
            table.add_row(*row)
        console.print(table)
    if check is not None:
        for line in _budget_lines(check, result.currency, running=result.progress is not None):
            console.print(line, markup=False)
    console.print("Assumptions:")
    for line in result.assumptions:
        console.print(f"  - {line}", markup=False)
    console.print("Calibration:")
    for line in result.calibration:
        console.print(f"  {line}", markup=False)
    return console.export_text()


def _markdown(result: Any, rows: list[Any], check: Any) -> str:
    md = markdown_text  # every sentence is text: a model or file name is not Markdown
    text = f"## RFT cost estimate\n\n{md(_headline(result))}.\n\n{md(_counts(result))}.\n\n"
    for line in _progress_lines(result):
        text += md(line) + "\n\n"
    text += markdown_table(["", "P10", "P50", "P90"], _figure_rows(result))
    text += "\nBillable hours by phase:\n\n"
    text += markdown_table(["phase", "P10", "P50", "P90"], _breakdown_rows(result))
    if rows:
        headers, body = _what_if_rows(rows)
        text += f"\n### {_what_if_title(result)}\n\n" + markdown_table(headers, body)
    if check is not None:
        said = _budget_lines(check, result.currency, running=result.progress is not None)
        text += "\n" + "\n".join(f"**{md(line)}**" for line in said) + "\n"
    text += "\n### Assumptions\n\n" + "".join(f"- {md(line)}\n" for line in result.assumptions)
    text += "\n### Calibration\n\n" + "".join(f"- {md(line)}\n" for line in result.calibration)
    return text


def _what_if_title(result: Any) -> str:
    """What the what-if rows are: for a job in progress, fresh runs of its plan (each row's
    figures are a whole run's, not the projection's)."""
    if result.progress is None:
        return "What if"
    return "What if (fresh runs of the job's plan, not this job's projection)"


def _null() -> Any:
    import io

    return io.StringIO()


# --- calibrate ------------------------------------------------------------------------------


@app.command("calibrate")
def calibrate_command(
    logs: LogsArgument,
    output: OutputOption = None,
    policy: PolicyOption = None,
    output_format: Annotated[
        EstimateFormat,
        typer.Option(
            "--format",
            "-f",
            help="Format of the summary on stdout (the calibration file is JSON).",
            case_sensitive=False,
        ),
    ] = EstimateFormat.table,
    min_jobs: Annotated[
        int, typer.Option("--min-jobs", help="Fewest successful jobs to fit on.", min=5)
    ] = 20,
    allow_constant: Annotated[
        bool,
        typer.Option(
            "--allow-constant",
            help="When a needed setting never varies in the history, use the built-in prior"
            " slope for it instead of refusing.",
        ),
    ] = False,
    assume_tz: AssumeTzOption = None,
    follow_links: FollowLinksOption = False,
) -> None:
    """Fit the estimator's time and token model on past jobs (write it with -o FILE)."""
    from rftcost.calibration import calibrate
    from rftcost.engines import bill

    check_outputs([output], [*logs, *policy_files(policy)], follow_links=follow_links)
    # Billed here so that --follow-links reaches the reader; calibrate takes the bill.
    check_logs(logs, follow_links=follow_links)
    history = bill(logs, policy=policy, assume_tz=assume_tz, follow_links=follow_links)
    result = calibrate(
        history,
        policy=policy,
        min_jobs=min_jobs,
        allow_constant=allow_constant,
        assume_tz=assume_tz,
    )
    if output is None:
        emit(json_text(result.to_dict()), None)
        raise typer.Exit(EXIT_OK)
    result.save(output)
    if output_format is EstimateFormat.json:
        emit(
            json_text(
                {
                    "schema": "rftcost.calibration-summary/v1",
                    "file": str(output),
                    "n_jobs": result.n_jobs,
                    "skipped": result.n_skipped,
                    "quality": result.quality,
                    "notes": list(result.notes),
                }
            ),
            None,
        )
    else:
        bullet = "- " if output_format is EstimateFormat.markdown else "  "
        lines = [f"Calibration written to {output}"]
        lines += [f"{bullet}{line}" for line in result.summary_lines()]
        lines += [f"{bullet}note: {note}" for note in result.notes]
        emit("\n".join(lines), None)
    raise typer.Exit(EXIT_OK)
