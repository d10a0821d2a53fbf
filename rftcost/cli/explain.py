"""``rftcost explain --job ID``: one job's time line, every stretch billed, excluded or lost."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from rftcost.cli.app import app
from rftcost.cli.common import (
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
    csv_text,
    emit,
    json_text,
    markdown_table,
    markdown_text,
    note_missing_glyphs,
    policy_files,
    resolve_format,
)

__all__ = ["explain_command", "render_explanation"]


@app.command("explain")
def explain_command(
    logs: LogsArgument,
    job: Annotated[str, typer.Option("--job", "-j", help="The job to explain.")],
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    assume_tz: AssumeTzOption = None,
    follow_links: FollowLinksOption = False,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Also draw the job's timeline (PNG or SVG).")
    ] = None,
) -> None:
    """One job's time line: every stretch billed, excluded or lost, and its charges."""
    from rftcost.buckets import auto_buckets, bill_in_buckets
    from rftcost.engines import bill
    from rftcost.explain import explain
    from rftcost.policy import load_policy
    from rftcost.workers import available_workers

    check_outputs([output, chart], [*logs, *policy_files(policy)], follow_links=follow_links)
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        typer.echo(f"error: {chart}: a chart is written as .png or .svg", err=True)
        raise typer.Exit(EXIT_USAGE)
    output_format = resolve_format(output_format, output, OutputFormat.table)
    resolved = load_policy(policy)
    check_logs(logs, follow_links=follow_links)
    workers = available_workers()
    count = auto_buckets(logs, workers=workers)
    if count is None:
        result = bill(logs, policy=resolved, assume_tz=assume_tz, follow_links=follow_links)
    else:  # a large log: only the job's bucket is billed, with its phase intervals
        result = bill_in_buckets(
            logs,
            resolved,
            count,
            assume_tz=assume_tz,
            keep_intervals=True,
            workers=workers,
            jobs=[job],
            follow_links=follow_links,
        )
    if job not in set(result.job_ids()):
        typer.echo(
            f"error: job {job!r} is not in the logs"
            + (f" ({len(result.jobs)} jobs read); " if count is None else "; ")
            + "see rftcost bill for the job ids",
            err=True,
        )
        raise typer.Exit(EXIT_USAGE)
    explanation = explain(result, job)
    if chart is not None:
        from rftcost.charts import save_figure, timeline_figure

        figure = timeline_figure(explanation)
        save_figure(figure, chart)
        note_missing_glyphs(figure, chart)
    if output_format is OutputFormat.json:
        emit(json_text(explanation.to_document()), output)
    elif output_format is OutputFormat.csv:
        emit(csv_text(_stretch_rows(explanation), _STRETCH_COLUMNS), output)
    else:
        emit(
            render_explanation(explanation, markdown=output_format is OutputFormat.markdown), output
        )


_UNKNOWN = "unknown"
"""What explain prints for what the logs cannot establish."""

_STRETCH_COLUMNS = ["from", "to", "seconds", "status", "phases", "charge", "why"]


def _stretch_rows(explanation: Any) -> list[dict[str, Any]]:
    """The job's stretches as CSV rows (``--format csv``): one per stretch of its time line."""
    return [
        {
            "from": _clock(s.start),
            "to": _clock(s.end),
            "seconds": s.seconds,
            "status": s.status,
            "phases": ";".join(s.phases),
            "charge": s.charge or "",
            "why": s.reason,
        }
        for s in explanation.stretches
    ]


def _clock(moment: datetime) -> str:
    """The time to the microsecond where it has a fraction of a second (a stretch of
    0.25 s read 08:00:00Z → 08:00:00Z)."""
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + fraction + "Z"


def _shown_seconds(start: datetime, end: datetime) -> float:
    """The seconds between two clocks, to the microsecond as they are shown: a row's
    duration is its ``to`` minus its ``from``, and the rows add up to the wall clock."""
    return (end - start) / timedelta(microseconds=1) / 1e6


def _duration(seconds: float) -> str:
    """H:MM:SS, with the fraction of a second where there is one (never rounded away:
    two charges of 1800.5 s are 1:00:01 together, and each shows its half second)."""
    micro = round(seconds * 1_000_000)
    whole, fraction = divmod(micro, 1_000_000)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" + _fraction(fraction)


def _seconds(seconds: float) -> str:
    """Seconds as a number, with their fraction where there is one (1800.5 s, 7234 s)."""
    whole, fraction = divmod(round(seconds * 1_000_000), 1_000_000)
    return f"{whole}{_fraction(fraction)}"


def _fraction(microseconds: int) -> str:
    return f".{microseconds:06d}".rstrip("0") if microseconds else ""


def render_explanation(explanation: Any, *, markdown: bool = False) -> str:
    """The explanation as text (or Markdown) a person reads top to bottom."""
    from rftcost.money import format_amount

    job = explanation.job
    # A job whose every record was rejected: what no record says is unknown, as every
    # output says it (not "unallocated", not "<NA>", not a wall clock of 0 s).
    read = explanation.records_read
    lines = [
        f"Job {job.job_id}  team {job.team or ('unallocated' if read else _UNKNOWN)}"
        f"  project {job.project or ('-' if read else _UNKNOWN)}"
        f"  model {job.model or _UNKNOWN}  status {job.status}",
        f"Policy {explanation.policy}",
        "",
    ]
    if not read:
        lines += [
            "No time line: no record of this job could be read (every one was rejected).",
            "Time: unknown",
            "",
            "INVALID: amount unknown, not $0. Problems:",
            *[f"  - {p}" for p in job.problems],
        ]
        return _joined(lines, -1, markdown)
    rows = [
        [
            _clock(s.start),
            _clock(s.end),
            _duration(_shown_seconds(s.start, s.end)),
            s.status.upper(),
            ", ".join(s.phases) or "-",
            s.charge or "",
            s.reason,
        ]
        for s in explanation.stretches
    ]
    headers = ["from", "to", "duration", "status", "phases", "charge", "why"]
    table_line = len(lines)
    lines.append(markdown_table(headers, rows) if markdown else _text_table(headers, rows))
    if explanation.losses:
        lines.append("Lost work (captured forward progress, R5/R6):")
        for loss in explanation.losses:
            kept = (
                f"checkpoint step {loss.checkpoint_step} saved"
                f" {_clock(loss.checkpoint_at)} retained"
                if loss.checkpoint_at is not None
                else "no checkpoint retained in the segment"
            )
            lines.append(
                f"  {loss.cause} at {_clock(loss.end)}: {kept}; billable time after"
                f" {_clock(loss.start)} is lost"
            )
        lines.append("")
    totals = {
        "wall clock": job.wall_seconds,
        "billable, charged": job.billable_seconds,
        "lost": job.lost_seconds,
        "accrued (not charged yet)": job.unbilled_seconds,
    }
    lines.append(
        "Time: "
        + "; ".join(
            f"{name} {_duration(value)}" for name, value in totals.items() if value is not None
        )
    )
    # Every second of the wall clock once: billed, lost and accrued above, and the rest of
    # the stretches (excluded, idle), so that the line adds up to the wall clock.
    unbilled = {
        status: sum(
            _shown_seconds(s.start, s.end) for s in explanation.stretches if s.status == status
        )
        for status in ("excluded", "idle", "unknown")
    }
    if not unbilled["unknown"]:
        del unbilled["unknown"]  # an invalid job's stretches of unknown status only
    lines[-1] += "".join(f"; {status} {_duration(value)}" for status, value in unbilled.items())
    if job.excluded_seconds:
        lines.append(
            "Excluded phases (each one's own length; where a billable phase overlaps one,"
            " that time is billed, R1): "
            + ", ".join(f"{p} {_duration(s)}" for p, s in sorted(job.excluded_seconds.items()))
        )
    lines.append("")
    if job.status == "invalid":
        lines.append("INVALID: amount unknown, not $0. Problems:")
        lines += [f"  - {p}" for p in job.problems]
        return _joined(lines, table_line, markdown)
    lines.append("Charges:")
    if explanation.rounding_scope == "job" and len(job.charges) > 1:
        # R11 at job scope: a charge's hours are not its own seconds rounded.
        seconds = sum(charge.billable_seconds for charge in job.charges)
        lines.append(
            f"  (rounding scope job, R11: the job's {_seconds(seconds)} s are rounded once, to "
            f"{job.billed_hours} h, all on its last charge; the charges before show 0.00 h)"
        )
    for number, charge in enumerate(job.charges, start=1):
        lines.append(
            f"  {number}. {charge.event} at {charge.at}: {_seconds(charge.billable_seconds)} s"
            " billable"
            f" → {charge.billed_hours} h = "
            + (_before_cap(charge) if charge.capped else "")
            + format_amount(charge.compute_amount)
            + (
                f" − discount {format_amount(charge.discount_amount)}"
                if charge.discount_amount
                else ""
            )
            + (f" + grader {format_amount(charge.grader_amount)}" if charge.grader_amount else "")
            + f" = {format_amount(charge.amount)}"
            + (" (capped)" if charge.capped else "")
        )
        for line in charge.grader_lines:
            lines.append(
                f"       grader {line.grader_model}: {line.input_tokens} input"
                f" ({line.cached_input_tokens} cached), {line.output_tokens} output"
                f" → {format_amount(line.amount)}"
                + (" (after the cap)" if charge.grader_cut else "")
                + (
                    f"; lost, not charged: {line.lost_input_tokens} input,"
                    f" {line.lost_output_tokens} output"
                    if line.lost_input_tokens or line.lost_output_tokens
                    else ""
                )
            )
    lines.append(
        f"Total {format_amount(job.total_amount)}"
        + (
            f"; accrued, not charged: {format_amount(job.accrued_amount)}"
            if job.accrued_amount
            else ""
        )
    )
    return _joined(lines, table_line, markdown)


def _before_cap(charge: Any) -> str:
    """A capped charge's amounts before the per-job cap and what the cap cut ("Policy":
    the charge that reaches the cap is cut to the room left, compute first, then grader)."""
    from rftcost.money import format_amount

    compute = charge.compute_amount + charge.compute_cut
    grader = charge.grader_amount + charge.grader_cut
    cut = charge.compute_cut + charge.grader_cut
    return (
        format_amount(compute)
        + (f" + grader {format_amount(grader)}" if grader else "")
        + f" = {format_amount(compute + grader)}; the per-job cap cuts {format_amount(cut)}"
        + f" (compute {format_amount(charge.compute_cut)}"
        + (f", then grader {format_amount(charge.grader_cut)}" if charge.grader_cut else "")
        + "): "
    )


def _joined(lines: list[str], table_line: int, markdown: bool) -> str:
    """The lines as one text; in Markdown every line but the (escaped) table is plain text."""
    if markdown:
        lines = [line if i == table_line else markdown_text(line) for i, line in enumerate(lines)]
    return "\n".join(lines) + "\n"


def _text_table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = []
    for row in cells:
        out.append("  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip())
    return "\n".join(out) + "\n"
