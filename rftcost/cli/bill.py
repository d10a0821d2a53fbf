"""``rftcost bill`` and ``rftcost validate``."""

from __future__ import annotations

import io
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from rftcost.cli.app import app
from rftcost.cli.common import (
    EXIT_FOUND,
    EXIT_OK,
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
)

__all__ = [
    "Engine",
    "bill_command",
    "validate_command",
]


_TABLE_ROWS_LIMIT = 2000
MAX_BUCKETS = 10_000
"""Most buckets ``--buckets`` takes: each is a folder of files written at once."""


class Engine(StrEnum):
    """Where the billing kernel runs."""

    pandas = "pandas"
    spark = "spark"


@app.command("bill")
def bill_command(
    logs: LogsArgument,
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    assume_tz: AssumeTzOption = None,
    strict: StrictOption = False,
    buckets: Annotated[
        int | None,
        typer.Option(
            "--buckets",
            min=1,
            help="Bill in N hash buckets of jobs on disk (bounded memory); "
            "default: automatic above 2 million events.",
        ),
    ] = None,
    engine: Annotated[
        Engine, typer.Option("--engine", help="Where the kernel runs (spark: rftcost[spark]).")
    ] = Engine.pandas,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Folder for bucket files (default: temp).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes that read and bill buckets "
            "(default: RFTCOST_WORKERS, else one per CPU, at most 4).",
        ),
    ] = None,
    follow_links: FollowLinksOption = False,
) -> None:
    """Event logs → charges per job and billing event, with totals."""
    from rftcost.buckets import auto_buckets
    from rftcost.engines import bill
    from rftcost.errors import InputError
    from rftcost.policy import load_policy
    from rftcost.workers import available_workers

    check_outputs([output], [*logs, *policy_files(policy)], follow_links=follow_links)
    # One file (and one open writer) per bucket, one process per worker: beyond these a
    # typo hangs the machine instead of billing (auto_buckets stays far below).
    for option, value, most in (("--buckets", buckets, MAX_BUCKETS), ("--workers", workers, 64)):
        if value is not None and value > most:
            raise InputError(f"at most {most:,}", path=option, value=value)
    chosen = resolve_format(output_format, output, OutputFormat.table)
    resolved = load_policy(policy)
    processes = workers if workers is not None else available_workers()
    count = buckets if buckets is not None else auto_buckets(logs, workers=processes)
    streamable = chosen in (OutputFormat.csv, OutputFormat.json)
    check_logs(logs, follow_links=follow_links)
    if engine is Engine.pandas and count is not None and count > 1 and streamable:
        invalid, rejected = _stream_buckets(
            logs,
            resolved,
            count,
            chosen,
            output,
            assume_tz,
            workdir,
            processes,
            follow_links=follow_links,
        )
    else:
        with progress(logs) as report:
            result = bill(
                logs,
                policy=resolved,
                assume_tz=assume_tz,
                on_progress=report,
                buckets=count,
                engine=engine.value,
                workdir=workdir,
                workers=processes,
                follow_links=follow_links,
            )
        _emit_bill(result, chosen, output)
        rejected = len(result.log.rejected) if result.log is not None else 0
        invalid = result.totals().invalid_jobs
    strict_exit(strict, invalid, rejected)


def _emit_bill(result: Any, output_format: OutputFormat, output: Path | None) -> None:
    from rftcost.documents import write_bill

    if output_format in (OutputFormat.json, OutputFormat.csv):
        with output_stream(output) as stream:
            write_bill(result, stream, _document_format(output_format))
    elif output_format is OutputFormat.markdown:
        emit(_bill_markdown(result), output)
    else:
        emit(_bill_table(result), output)


def _document_format(output_format: OutputFormat) -> Literal["json", "csv"]:
    return "json" if output_format is OutputFormat.json else "csv"


def _stream_buckets(
    logs: list[Path],
    policy: Any,
    count: int,
    output_format: OutputFormat,
    output: Path | None,
    assume_tz: str | None,
    workdir: Path | None,
    workers: int,
    *,
    follow_links: bool = False,
) -> tuple[int, int]:
    """Write each bucket's jobs as soon as it is billed; only ``workers`` buckets are in
    memory at a time. The library's writer lays out the document, as for one bill.
    Returns the counts of invalid jobs and rejected records."""
    from rftcost.buckets import bucketed
    from rftcost.documents import bill_writer

    bucket_logs = []
    with (
        output_stream(output) as handle,
        progress(logs, threshold_bytes=0) as report,
    ):
        # Nothing reaches the stream before ``finish`` merges the spooled jobs: a bill that
        # fails part-way writes no half document (the writers begin their text lazily).
        writer = bill_writer(_document_format(output_format), handle, policy)
        with bucketed(
            logs,
            policy,
            count,
            assume_tz=assume_tz,
            workdir=workdir,
            workers=workers,
            on_progress=report,
            follow_links=follow_links,
            then=writer.spooler(),  # each worker lays out its own jobs
        ) as (partition, stream):
            for part in stream:
                if part.log is not None:
                    bucket_logs.append(part.log)  # counts only: a bucket's frames are freed
                writer.adopt(part)  # merged in job order by finish
            log = partition.log_with(bucket_logs)
            writer.finish(log)  # the spool files live in the partition's folder
    return writer.totals().invalid_jobs, len(log.rejected)


def _job_rows(result: Any) -> list[list[Any]]:
    table = result.jobs_table()
    return [
        [
            row.job_id,
            _team(row.team, row.model),
            row.status,
            _hours(row.billable_seconds, result.policy.rounding),
            row.billed_hours,
            row.compute_amount,
            row.discount_amount,
            row.grader_amount,
            row.total_amount,
            row.accrued_amount,
        ]
        for row in table.fillna({"billed_hours": "unknown"}).itertuples(index=False)
    ]


def _team(team: Any, model: Any) -> str:
    """Who pays: ``unallocated`` for a job read without a team; ``unknown`` for one of
    which no record could be read (every one rejected: no model either), as explain says."""
    if isinstance(team, str):
        return team
    return "unallocated" if isinstance(model, str) else "unknown"


def _hours(seconds: Any, rounding: Any) -> str:
    """Billable hours as R11 rounds them: whole seconds, then hours, each by the policy's
    mode (a float would show 6030 s as 1.67 h where the bill charges 1.68 h)."""
    from rftcost.money import round_decimal

    try:
        exact = Decimal(str(seconds))
    except (TypeError, ValueError, ArithmeticError):
        return "unknown"
    if not exact.is_finite():
        return "unknown"
    whole = round_decimal(exact, 0, rounding.seconds_mode)
    hours = round_decimal(whole / 3600, rounding.hours_decimals, rounding.hours_mode)
    return f"{hours:.{rounding.hours_decimals}f}"


_HEADERS = [
    "job",
    "team",
    "status",
    "billable h",
    "billed h",
    "compute",
    "discount",
    "grader",
    "total",
    "accrued",
]


def _money(value: Any) -> str:
    return "unknown" if value is None or not isinstance(value, str) else value


def _bill_table(result: Any) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    totals = result.totals()
    policy = result.policy
    console = Console(record=True, width=140, file=_Null())
    console.print(Text.assemble(("Bill", "bold"), f"  policy {policy.name} ({policy.currency})"))
    # Kind 14: the token prices' layers and versions, so an old bill can be reproduced.
    console.print(f"Token prices: {policy.price_table.price_source}", markup=False)
    rows = _job_rows(result)
    if len(rows) > _TABLE_ROWS_LIMIT:
        console.print(
            f"{len(rows)} jobs: the table shows totals only;"
            " use --format csv or json for every job."
        )
    else:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for header in _HEADERS:
            table.add_column(
                header, justify="left" if header in {"job", "team", "status"} else "right"
            )
        for row in rows:
            # Cells are plain Text: a name like "[/bold]" is not rich markup.
            table.add_row(*[Text(_money(v) if i >= 4 else one_line(v)) for i, v in enumerate(row)])
        console.print(table)
    # soft_wrap: a headline or a note (a long path) is never cut at the console's width.
    console.print(
        _totals_line(totals, policy.currency, int(result.orphan_records())),
        markup=False,
        soft_wrap=True,
    )
    for line in _notes(result):
        console.print(line, markup=False, soft_wrap=True)
    return console.export_text()


class _Null(io.StringIO):
    """A console file that keeps nothing: the text is taken from the console's record."""

    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        return None


def _totals_line(totals: Any, currency: str, orphans: int = 0) -> str:
    """The headline. Totals sum the valid jobs only: with an invalid job, or a rejected
    record that names no job it could belong to (``orphans``), the total is unknown, and
    the headline says so rather than show the valid jobs' sum (or 0.00) as the whole bill."""
    invalid = totals.invalid_jobs
    unreadable = f"{_jobs(orphans, 'rejected record')} of no known job: see rftcost validate"
    if (invalid and invalid == totals.jobs) or (orphans and not totals.jobs):
        reasons = [_jobs(invalid, "invalid job")] if invalid else []
        reasons += [unreadable] if orphans else []
        return f"Total {currency} unknown ({'; '.join(reasons)}; amount unknown, not 0.00)"
    head = f"Total {currency} {totals.total_amount:.2f}"
    if invalid:
        head += f" + unknown ({_jobs(invalid, 'invalid job')})"
    if orphans:
        head += f" + unknown ({unreadable})"
    return (
        f"{head} = compute {totals.compute_amount:.2f}"
        f" − discount {totals.discount_amount:.2f} + grader {totals.grader_amount:.2f}"
        f"  ({totals.jobs} jobs, {totals.billed_hours} h billed; accrued, not charged:"
        f" {totals.accrued_amount:.2f})"
    )


def _accrued_after_the_end(jobs: Any) -> list[str]:
    """Jobs that ended (succeeded, cancelled, failed) with accrued work or tokens."""
    ended = jobs["status"].isin(["succeeded", "cancelled", "failed"])
    accrued = (jobs["unbilled_ns"].fillna(0) > 0) | (jobs["accrued_cents"].fillna(0) > 0)
    return [str(j) for j in jobs.loc[ended & accrued, "job_id"]]


def _without_job_created(events: Any) -> list[str]:
    """The jobs of ``events`` none of whose records is their ``job_created``."""
    jobs = events["job_id"]
    created = jobs[(events["event"] == "job_created").to_numpy()].unique()
    return sorted({str(job) for job in jobs.unique()} - {str(job) for job in created})


def _rejected_records_of_jobs(result: Any) -> bool:
    """Whether a record of a known job was rejected (its time, unread, is not counted)."""
    return result.log is not None and bool(result.log.rejected["job_id"].notna().any())


def _jobs(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _notes(result: Any) -> list[str]:
    notes = []
    totals = result.totals()
    if totals.invalid_jobs:
        # A rejected record's time is not read: the wall clock is at least what was.
        least = "at least " if _rejected_records_of_jobs(result) else ""
        notes.append(
            f"{totals.invalid_jobs} invalid job(s), amount unknown, {least}"
            f"{totals.invalid_wall_seconds / 3600:.2f} h of wall clock affected:"
        )
        problems = _in_job_order(result.problems)
        for job_id, problem in zip(problems["job_id"], problems["problem"], strict=True):
            notes.append(f"  {one_line(job_id)}: {one_line(problem)}")  # a line each
    if result.log is not None and result.log.notes:
        notes.append(f"Notes on reading ({len(result.log.notes)}):")
        notes += [f"  {one_line(note)}" for note in result.log.notes]
    if result.log is not None:
        counts = result.log.counts()
        notes.append(
            f"Records: {counts['records_read']} read = {counts['accepted']} used"
            f" + {counts['duplicates']} duplicates + {counts['rejected']} rejected"
            + (" (see rftcost validate)" if counts["rejected"] else "")
        )
    return notes


def _in_job_order(problems: Any) -> Any:
    """Problems by job id, each job's in their order: a bill made in buckets lists them
    as the one made at once does (buckets give them bucket by bucket)."""
    return problems.sort_values("job_id", kind="stable")


def _bill_markdown(result: Any) -> str:
    policy = result.policy
    totals = result.totals()
    text = (
        f"## RFT bill\n\nPolicy {markdown_text(policy.name)},"
        f" amounts in {markdown_text(policy.currency)}.\n\n"
    )
    rows = [[_money(v) if i >= 4 else v for i, v in enumerate(row)] for row in _job_rows(result)]
    text += markdown_table(_HEADERS, rows)
    text += (
        "\n**"
        + markdown_text(_totals_line(totals, policy.currency, int(result.orphan_records())))
        + "**\n"
    )
    notes = _notes(result)
    if notes:
        # A note under a heading note (indented) is an item of its sub-list.
        text += (
            "\n"
            + "\n".join(
                ("  - " if n.startswith("  ") else "- ") + markdown_text(n.strip()) for n in notes
            )
            + "\n"
        )
    return text


_EXCERPT_CHARS = 80
"""Longest rejected value shown on screen; the CSV and JSON outputs keep it whole."""


def _excerpt(value: Any) -> str:
    """A rejected value as a short one-line excerpt (its repr, cut with an ellipsis)."""
    text = repr(value)
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


@app.command("validate")
def validate_command(
    logs: LogsArgument,
    policy: PolicyOption = None,
    output_format: FormatOption = None,
    output: OutputOption = None,
    assume_tz: AssumeTzOption = None,
    follow_links: FollowLinksOption = False,
) -> None:
    """Read and check logs only: counts, rejected records, invalid jobs (exit 1 if any)."""
    from rftcost.documents import write_validation
    from rftcost.engines import bill
    from rftcost.events.readers import UNREADABLE_LINK_NOTE

    check_outputs([output], [*logs, *policy_files(policy)], follow_links=follow_links)
    output_format = resolve_format(output_format, output, OutputFormat.table)
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
    assert result.log is not None
    log = result.log
    counts = log.counts()
    invalid = _in_job_order(result.problems)
    # A log in the folder that could not be read (a broken link) is a finding too.
    unreadable = any(note.endswith(UNREADABLE_LINK_NOTE) for note in log.notes)
    rejected = log.rejected.fillna("")
    if output_format in (OutputFormat.json, OutputFormat.csv):
        with output_stream(output) as stream:
            write_validation(result, stream, _document_format(output_format))
        if output_format is OutputFormat.csv and len(invalid):
            # The CSV holds rejected records; the jobs' reasons are said, not left out.
            jobs = invalid["job_id"].drop_duplicates()
            typer.echo(
                f"{len(jobs)} invalid job(s), their reasons in `rftcost validate -f json`: "
                + one_line(", ".join(jobs.astype(str).head(5)))
                + (" …" if len(jobs) > 5 else ""),
                err=True,
            )
    else:
        lines = [
            f"Files: {len(log.files)}",
            f"Records: {counts['records_read']} read = {counts['accepted']} used"
            f" + {counts['duplicates']} duplicates + {counts['rejected']} rejected",
            f"Jobs: {len(result.jobs)}, invalid: {int((result.jobs['status'] == 'invalid').sum())}",
        ]
        bullet = "- " if output_format is OutputFormat.markdown else "  "
        if len(rejected):
            lines.append("Rejected records:")
            # One line per item, whatever a name or value holds (a job id with a line
            # break cannot forge a line of the report).
            lines += [
                f"{bullet}{one_line(r.source)}:{r.line}: {one_line(r.reason)}"
                + (f" (value {one_line(_excerpt(r.value))})" if r.value != "" else "")
                for r in rejected.itertuples(index=False)
            ]
        if len(invalid):
            lines.append("Invalid jobs:")
            lines += [
                f"{bullet}{one_line(j)}: {one_line(p)}"
                for j, p in zip(invalid["job_id"], invalid["problem"], strict=True)
            ]
        uncreated = _without_job_created(log.events)
        notes = list(log.notes)
        if uncreated:
            # Their team, model and data sharing are on job_created (event-log.md): billed
            # as the spec says (unallocated, the policy's model, no discount), and said.
            shown = ", ".join(uncreated[:5]) + (" …" if len(uncreated) > 5 else "")
            notes.append(
                f"{len(uncreated)} job(s) with no job_created record in these files ({shown}):"
                " billed as unallocated, at the policy's default model, without a data-sharing"
                " discount; give the file that holds their job_created if it exists"
            )
        late = _accrued_after_the_end(result.jobs)
        if late:
            # R8's accrued work is a running job's or a truncated log's: after a job's
            # final event it will never be charged, and the log is worth a look.
            shown = ", ".join(late[:5]) + (" …" if len(late) > 5 else "")
            notes.append(
                f"{len(late)} ended job(s) with work or grader tokens logged after their final"
                f" event ({shown}): accrued, never charged (R8); `rftcost explain` shows where"
            )
        if notes:
            lines.append("Notes:")
            lines += [f"{bullet}{one_line(note)}" for note in notes]
        if not len(rejected) and not len(invalid) and not unreadable:
            lines.append(
                "OK: every record used or a duplicate, every job can be billed"
                + (" (see the notes)." if uncreated or late else ".")
            )
        if output_format is OutputFormat.markdown:  # names and values are text, not Markdown
            lines = [
                bullet + markdown_text(line[len(bullet) :])
                if line.startswith(bullet)
                else markdown_text(line)
                for line in lines
            ]
        emit("\n".join(lines), output)
    if len(rejected) or len(invalid) or unreadable:
        raise typer.Exit(EXIT_FOUND)
    raise typer.Exit(EXIT_OK)
