"""``rftcost import-openai``: OpenAI fine-tuning exports → canonical JSON Lines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rftcost.cli.app import app
from rftcost.cli.common import (
    EXIT_FOUND,
    EXIT_OK,
    check_outputs,
    emit,
    stdout_for_dash,
    visible_controls,
)

__all__ = [
    "import_openai_command",
]


if TYPE_CHECKING:
    from rftcost.events.openai import OpenAIImport

_LISTED = 20
"""Unknown messages or problems listed in the report before '… and N more'."""


@app.command("import-openai")
def import_openai_command(
    exports: Annotated[
        list[Path],
        typer.Argument(
            help="OpenAI exports: job, event and checkpoint JSON (or JSON Lines) files, "
            "or folders such as those 'rftcost fetch' writes.",
            metavar="EXPORT...",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Canonical JSON Lines file to write (default, or '-': stdout).",
            callback=stdout_for_dash,
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit 1 also when any message is unknown or any object malformed "
            "(a job whose amount is unknown always exits 1).",
        ),
    ] = False,
    keep_unknown: Annotated[
        bool,
        typer.Option(
            "--keep-unknown",
            help="Also write the events of jobs whose amount the export cannot establish "
            "(a bill of them alone would understate those jobs).",
        ),
    ] = False,
) -> None:
    """OpenAI fine-tuning exports → canonical events (JSON Lines); a report on stderr.

    Exits 1 when the export cannot establish a job's amount (time incomplete, grader
    usage or a record that cannot be read). Canonical events cannot carry "amount
    unknown", so a bill of that job's events alone would look complete and understate
    it: they are left out (--keep-unknown writes them). Bill the export itself.
    """
    from rftcost.events.openai import events_to_jsonl, import_openai

    check_outputs([output], exports)
    if output is not None and output.suffix.lower() != ".jsonl":
        # The canonical events are JSON Lines: a .csv (or .parquet) named file would hold
        # JSON Lines that its reader would take for CSV (every record rejected).
        from rftcost.errors import InputError

        raise InputError(
            "import-openai writes canonical events as JSON Lines",
            path=output,
            hint="name the output .jsonl",
        )

    result = import_openai(exports)
    unknown = _unknown_jobs(result)
    events = result.events
    if unknown and not keep_unknown:
        events = events[~events["job_id"].astype(str).isin(unknown)]
    emit(events_to_jsonl(events), output)
    # Ids, messages and file names come from the export: no control character reaches the
    # terminal (a NUL or ESC in a job id), as in every other output.
    typer.echo(visible_controls(_report(result, output, len(events))), err=True, nl=False)
    if unknown:
        # Written without the problem, these jobs would bill for less, never as unknown.
        fate = (
            "their events are written but do not say so"
            if keep_unknown
            else "their events are left out, so that a bill of the output cannot understate "
            "them (--keep-unknown writes them)"
        )
        typer.echo(
            visible_controls(
                f"Warning: amount unknown for {len(unknown)} job(s) ({', '.join(unknown)}); "
                f"{fate}: bill the export itself"
            ),
            err=True,
        )
        raise typer.Exit(EXIT_FOUND)
    if strict and (result.unknown_messages or result.problems or result.job_problems):
        raise typer.Exit(EXIT_FOUND)
    raise typer.Exit(EXIT_OK)


def _unknown_jobs(result: OpenAIImport) -> list[str]:
    """Jobs whose amount the export cannot establish: job problems and rejected records."""
    problems = (*result.job_problems, *result.problems)
    return sorted({p.job_id for p in problems if p.job_id is not None})


def _report(result: OpenAIImport, output: Path | None, written: int) -> str:
    counts = result.counts()
    target = str(output) if output is not None else "stdout"
    left_out = counts["events"] - written
    lines = [
        f"Imported {counts['jobs']} job(s), {counts['events']} canonical event(s) from "
        f"{counts['files']} file(s) ({counts['objects_read']} OpenAI objects, "
        f"{counts['duplicates']} duplicate(s)) → {target}"
        + (
            f" ({written} written, {left_out} of jobs of unknown amount left out)"
            if left_out
            else ""
        ),
        f"Unknown messages: {counts['unknown_messages']}; problems: {counts['problems']}"
        + (
            f"; jobs that cannot be billed: {len(result.job_problems)}"
            if result.job_problems
            else ""
        ),
    ]
    if result.unknown_messages:
        lines.append("Unknown messages (nothing was emitted for them):")
        lines += [
            f"  {m.job_id} {m.event_id} {m.created_at:%Y-%m-%dT%H:%M:%SZ} "
            f"[{m.level or '-'}] {m.message!r}"
            for m in result.unknown_messages[:_LISTED]
        ]
        lines += _more(len(result.unknown_messages))
    if result.problems:
        lines.append("Problems (these objects were not used):")
        lines += [f"  {p}" for p in result.problems[:_LISTED]]
        lines += _more(len(result.problems))
    if result.job_problems:
        # The canonical events cannot say "amount unknown": bill the export itself, or
        # keep this list with the written events.
        lines.append(
            "Jobs that cannot be billed from this export (amount unknown; canonical events "
            "cannot carry this, so bill the export itself):"
        )
        lines += [f"  {p.job_id}: {p.reason}" for p in result.job_problems[:_LISTED]]
        lines += _more(len(result.job_problems))
    if result.notes:
        lines.append("Notes:")
        lines += [f"  {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def _more(count: int) -> list[str]:
    return [f"  … and {count - _LISTED} more"] if count > _LISTED else []
