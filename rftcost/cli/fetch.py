"""``rftcost fetch``: download OpenAI fine-tuning jobs, their events and checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rftcost.cli.app import app
from rftcost.cli.common import EXIT_OK

__all__ = [
    "fetch_command",
]


# rftcost.fetch.DEFAULT_MAX_RETRIES and DEFAULT_PAGE_SIZE, repeated here so that
# `rftcost --help` does not import the library (tests check they agree).
DEFAULT_MAX_RETRIES = 5
DEFAULT_PAGE_SIZE = 100


@app.command("fetch")
def fetch_command(
    job_ids: Annotated[
        list[str],
        typer.Argument(
            help="Fine-tuning job ids (ftjob-…).", metavar="JOB_ID...", show_default=False
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Folder to write DIR/JOB_ID/{job,events,checkpoints}.json."
        ),
    ],
    max_retries: Annotated[
        int,
        typer.Option(
            "--max-retries",
            min=0,
            help="Retries, with exponential backoff, of a request hit by a rate limit, "
            "a timeout or a server error.",
        ),
    ] = DEFAULT_MAX_RETRIES,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=100, help="Events or checkpoints per request.")
    ] = DEFAULT_PAGE_SIZE,
) -> None:
    """Download jobs from the OpenAI API (key from OPENAI_API_KEY) for 'rftcost import-openai'."""
    from rftcost.fetch import fetch_jobs

    result = fetch_jobs(job_ids, output, max_retries=max_retries, page_size=page_size)
    for job in result.jobs:
        method = "" if job.method in (None, "reinforcement") else f" (method {job.method}: not RFT)"
        typer.echo(
            f"{job.job_id}: {job.status or 'unknown status'}{method}, {job.events} event(s), "
            f"{job.checkpoints} checkpoint(s) → {job.folder}",
            err=True,
        )
        for problem in job.problems:
            typer.echo(f"{job.job_id}: warning: {problem}", err=True)
    typer.echo(f"next: rftcost import-openai {result.out_dir} -o events.jsonl", err=True)
    raise typer.Exit(EXIT_OK)
