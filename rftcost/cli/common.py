"""What every command shares: options, output, progress, exit codes."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "EXIT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "AssumeTzOption",
    "FollowLinksOption",
    "FormatOption",
    "LogsArgument",
    "OutputFormat",
    "OutputOption",
    "PolicyOption",
    "StrictOption",
    "csv_text",
    "emit",
    "json_text",
    "markdown_table",
    "progress",
]

EXIT_OK = 0
"""Done; nothing found."""
EXIT_FOUND = 1
"""The command ran and found something (findings, over budget, invalid jobs under --strict)."""
EXIT_USAGE = 2
"""The command could not run (bad arguments, unreadable input, invalid policy)."""


class OutputFormat(StrEnum):
    """Output formats of the reporting commands."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


LogsArgument = Annotated[
    list[Path],
    typer.Argument(
        help="Event logs: .jsonl, .csv, .parquet (optionally .gz), OpenAI exports, or folders.",
        metavar="LOGS...",
        show_default=False,
    ),
]
PolicyOption = Annotated[
    str | None,
    typer.Option("--policy", help="Policy preset name or TOML file (default: openai-rft)."),
]
FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
]


def _known_zone(zone: str | None) -> str | None:
    """Refuse an unknown ``--assume-tz`` zone up front, in one line (exit 2), whether or
    not the logs turn out to hold a timestamp without an offset."""
    if zone is None:
        return None
    import pandas as pd

    from rftcost.errors import InputError

    try:
        pd.Timestamp("2025-01-01T00:00:00").tz_localize(zone)
    except Exception as error:  # pytz, zoneinfo and dateutil each raise their own kind
        raise InputError(
            "not a known time zone",
            path="--assume-tz",
            value=zone[:80],
            hint="name one such as UTC, Europe/Paris or America/New_York",
        ) from error
    return zone


AssumeTzOption = Annotated[
    str | None,
    typer.Option(
        "--assume-tz",
        help="Zone of timestamps written without an offset (e.g. UTC, Europe/Paris).",
        metavar="ZONE",
        callback=_known_zone,
    ),
]
FollowLinksOption = Annotated[
    bool,
    typer.Option(
        "--follow-links",
        help="Read the files that links (symlinks) inside a folder point at outside it "
        "(default: such links are noted and not followed).",
    ),
]
StrictOption = Annotated[
    bool,
    typer.Option("--strict", help="Exit 1 when any job is invalid or any record is rejected."),
]


def emit(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` or stdout (JSON goes to stdout alone)."""
    if not text.endswith("\n"):
        text += "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def json_text(document: Any) -> str:
    """Pretty JSON with a trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def csv_text(rows: Sequence[Mapping[Any, Any]], columns: Sequence[str]) -> str:
    """Rows (mappings keyed by column name, e.g. a frame's records) → CSV text with a header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (fits a CI step summary)."""

    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


@contextmanager
def progress(paths: Sequence[Path], *, threshold_bytes: int = 20_000_000) -> Iterator[Any]:
    """A progress callback that draws a bar on a terminal for large inputs, else nothing."""
    size = sum(_size(p) for p in paths)
    if not sys.stderr.isatty() or size < threshold_bytes:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        transient=True,
        console=_stderr_console(),
    ) as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield report


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
