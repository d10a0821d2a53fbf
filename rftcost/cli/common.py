"""What every command shares: options, output, progress, exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from rftcost.textsafe import visible_controls

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
    "StdoutFormatOption",
    "StrictOption",
    "check_logs",
    "check_outputs",
    "csv_text",
    "emit",
    "frame_csv_text",
    "json_text",
    "markdown_table",
    "markdown_text",
    "note_missing_glyphs",
    "one_line",
    "output_stream",
    "policy_files",
    "progress",
    "resolve_format",
    "stdout_for_dash",
    "strict_exit",
    "visible_controls",
    "warn",
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
    OutputFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format (default: from the suffix of --output: .csv, .json, .md; else table).",
        case_sensitive=False,
        show_default=False,
    ),
]
StdoutFormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
]
"""``--format`` of a command that writes to stdout only (no ``--output`` to take it from)."""


def stdout_for_dash(value: Path | None) -> Path | None:
    """``-o -`` is stdout, as the tools of the shell read it (not a file named ``-``)."""
    return None if value is not None and str(value) == "-" else value


OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write to this file instead of stdout ('-': stdout).",
        callback=stdout_for_dash,
    ),
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


_SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".markdown": "markdown"}
"""The format an output file's suffix names, when ``--format`` does not say."""

_TEXT_SUFFIXES = frozenset({"", ".txt", ".text", ".log", ".out"})
"""Suffixes of ``-o`` that take the text table when ``--format`` does not say; any other
(``.parquet``, ``.html``, ``.xlsx``) is refused: a text table under such a name would be
read back as that format (a ``.parquet`` in a log folder stops every later bill)."""

_Format = TypeVar("_Format", bound=StrEnum)


def strict_exit(strict: bool, invalid_jobs: int, rejected_records: int) -> NoReturn:
    """Exit: 1 under ``--strict`` with an invalid job or a rejected record, saying so on
    stderr (the output may be a file, and a bare exit 1 says nothing); else 0."""
    if strict and (invalid_jobs or rejected_records):
        typer.echo(
            f"strict: {invalid_jobs} invalid job(s), {rejected_records} rejected record(s)"
            " (see rftcost validate)",
            err=True,
        )
        raise typer.Exit(EXIT_FOUND)
    raise typer.Exit(EXIT_OK)


def resolve_format(chosen: _Format | None, output: Path | None, default: _Format) -> _Format:
    """The output format: ``--format`` when given, else the one ``-o``'s suffix names.

    ``bill -o bill.csv`` writes CSV, ``-o bill.json`` JSON, ``-o bill.md`` Markdown;
    ``.txt`` (or no suffix, or stdout) gets ``default``. A suffix of a format the command
    cannot write (``estimate -o x.csv``, ``bill -o x.parquet``) is refused rather than
    filled with a text table.
    """
    if chosen is not None:
        return chosen
    kind = type(default)
    suffix = output.suffix.lower() if output is not None else ""
    if suffix not in _TEXT_SUFFIXES and suffix not in _SUFFIX_FORMATS:
        from rftcost.errors import InputError

        choices = ", ".join(f.value for f in kind)
        raise InputError(
            f"this command does not write {suffix} files",
            path=output,
            hint="-o takes .txt (the table), .json, .csv or .md (markdown); or choose"
            f" --format ({choices}) to write that format under this name",
        )
    name = _SUFFIX_FORMATS.get(suffix)
    if name is None:
        return default
    try:
        return kind(name)
    except ValueError:
        from rftcost.errors import InputError

        choices = ", ".join(f.value for f in kind)
        raise InputError(
            f"this command does not write {name.upper()}",
            path=output,
            hint=f"choose --format ({choices}) or another suffix",
        ) from None


def check_outputs(
    outputs: Iterable[Path | None],
    inputs: Iterable[Path | str | None],
    *,
    follow_links: bool = False,
) -> None:
    """Refuse, before any work, an output that would overwrite an input or cannot be written.

    An output is refused (``InputError``, exit 2) when it is the same file as an
    input (same path after links, or the same file by inode), lies inside an
    input folder (a later run would read it as a log) or is a file of one under another
    name (a hard link; a link the reading follows, ``follow_links``), is a folder, or is
    in a folder that does not exist; two outputs of one command must differ too.
    ``inputs`` may hold names that are not files (a policy preset): only paths
    that exist are compared.
    """
    from rftcost.errors import InputError

    existing = [Path(p) for p in inputs if p is not None and Path(p).exists()]
    resolved_inputs = [(p, _resolved(p)) for p in existing]
    seen: dict[Path, Path] = {}
    for output in outputs:
        if output is None:
            continue
        target = _resolved(output)
        if target in seen:
            raise InputError(
                f"the same file is given for two outputs ({seen[target]} and {output})",
                path=output,
                hint="give each output its own file",
            )
        seen[target] = output
        if output.is_dir():
            raise InputError("is a folder, not a file to write", path=output)
        if not target.parent.is_dir():
            # A link whose target's folder is missing: that folder, not the link's own.
            missing = output.parent if not _resolved(output.parent).is_dir() else target.parent
            raise InputError(
                f"the folder {missing} does not exist"
                + (f" (where the link {output} points)" if missing != output.parent else ""),
                path=output,
                hint="create it first or write elsewhere",
            )
        for given, source in resolved_inputs:
            same = target == source or (output.exists() and _same_file(output, given))
            inside = source.is_dir() and target.is_relative_to(source)
            if not inside and follow_links and source.is_dir():
                # A folder a link of the input leads to is read as the input's too.
                inside = any(
                    target.is_relative_to(real)
                    for _place, real, _files in _walk(source, follow_links=True)
                )
            if not (same or inside) and output.exists() and source.is_dir():
                # A file of the folder under another name: a hard link, or reached by a
                # link (a linked file, a folder followed with --follow-links).
                below = _files_below(source, follow_links=follow_links)
                same = any(_same_file(output, file) for file in below)
            if same or inside:
                where = "is an input" if same else f"is inside the input folder {given}"
                raise InputError(
                    f"the output {where}; rftcost never overwrites its input",
                    path=output,
                    hint="write the output to another file",
                )


def _resolved(path: Path) -> Path:
    """``path`` after its links; a loop of links is refused naming the path (Python says
    ``RuntimeError`` or ``OSError`` by version)."""
    from rftcost.errors import InputError

    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:
        raise InputError("leads into a loop of links", path=path) from exc


def _walk(folder: Path, *, follow_links: bool) -> Iterator[tuple[str, str, list[str]]]:
    """(place, its real path, its files) of each folder below ``folder`` the reading
    reads, links to folders followed only with ``follow_links`` (each real folder once,
    so a loop ends)."""
    seen: set[str] = set()
    for place, folders, files in os.walk(folder, followlinks=follow_links):
        real = os.path.realpath(place)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        yield place, real, files


def _files_below(folder: Path, *, follow_links: bool) -> Iterator[Path]:
    """The files below ``folder`` the reading reads: links that lead out of it only when
    it follows them."""
    root = os.path.realpath(folder)
    for place, _real, files in _walk(folder, follow_links=follow_links):
        for name in files:
            path = Path(place, name)
            inside = os.path.realpath(path).startswith(root + os.sep)
            if follow_links or not path.is_symlink() or inside:
                yield path


def check_logs(logs: Sequence[Path], *, follow_links: bool = False) -> None:
    """Nothing silent: say, before reading, that a log holds nothing (no 0.00 bill unsaid).

    A folder named that holds no event log is refused (``InputError``, exit 2), as a
    path that does not exist is: it is a wrong path, and one line names it and why its
    files were left out. A file that holds no record is named in a warning on stderr;
    when no file holds a single record the command has nothing to read and is refused.
    """
    from rftcost.errors import InputError
    from rftcost.events.survey import NO_RECORD, refuse_folders_without_logs, survey_logs

    survey = survey_logs(logs, follow_links=follow_links)
    refuse_folders_without_logs(survey)
    empty = survey.files_without_records
    if empty and survey.holds_no_record:
        shown = ", ".join(str(p) for p in empty[:3])
        shown += f" and {len(empty) - 3} more" if len(empty) > 3 else ""
        none = (
            "holds no record"
            if len(empty) == 1
            else f"none of these {len(empty)} files holds a record"
        )
        raise InputError(f"{none} ({NO_RECORD}); nothing to read", path=shown)
    for path in empty:
        warn(f"{path}: holds no record ({NO_RECORD}); it adds nothing")


def note_missing_glyphs(fig: Any, output: Path) -> None:
    """After a PNG chart is written: a note on stderr when a name held characters its
    fonts cannot draw, saying how they were drawn instead (``charts.save_figure``)."""
    if output.suffix.lower() != ".png":
        return  # an SVG keeps names as text, for its viewer's fonts
    from rftcost.charts import drawable, missing_glyphs

    missing = missing_glyphs(fig)
    if missing:
        shown = ", ".join(sorted({drawable(c, missing) for c in missing})[:8])
        more = ", …" if len(missing) > 8 else ""
        typer.echo(
            f"note: {one_line(visible_controls(str(output)))}: the chart's fonts have no glyph"
            f" for {len(missing)} character(s) of its names, drawn as {shown}{more}",
            err=True,
        )


def warn(message: str) -> None:
    """A warning for the person at the terminal: one line on stderr (never in a document)."""
    typer.echo(f"warning: {one_line(visible_controls(message))}", err=True)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def policy_files(policy: str | None) -> list[Path]:
    """The files ``--policy`` reads when it names one (a preset name is none): the policy,
    those it extends, its price table; an output must not write over any of them."""
    from rftcost.policy import policy_files as files_of

    return [] if policy is None else list(files_of(policy))


def one_line(value: Any) -> str:
    """A name for one cell of a terminal table: line breaks written as ``\\n`` (and the
    like), so a job id with a newline cannot split its row or forge another one; other
    control characters as ``\\u0007`` here, before the table (rich drops BEL, backspace)."""
    text = _NEWLINES.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))
    return visible_controls(text)


def emit(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` or stdout (JSON goes to stdout alone)."""
    text = visible_controls(text)
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
    """Rows (mappings keyed by column name, e.g. a frame's records) → CSV text with a header.

    Every text cell that a spreadsheet would run as a formula is neutralised
    (``rftcost.csvsafe``); numbers keep their sign.
    """
    from rftcost.csvsafe import neutralise_csv_row

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(neutralise_csv_row(row) for row in rows)
    return buffer.getvalue()


def frame_csv_text(frame: Any, *, header: bool = True) -> str:
    """A frame → CSV text, its text columns neutralised column by column (``rftcost.csvsafe``)."""
    from rftcost.csvsafe import neutralise_csv_frame

    text: str = neutralise_csv_frame(frame).to_csv(index=False, header=header)
    return visible_controls(text)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|~&$]|(?<![^\W_])_|_(?![^\W_]))")
# An underscore inside a word (eval_interval, ftjob_abc) never makes emphasis in GitHub
# Markdown and is left as it is; one at a word's edge (_x_) is escaped.
_NEWLINES = re.compile(r"\r\n|[\r\n\u2028\u2029\x85\v\f]")
_AUTOLINK = re.compile(r"(?<=[A-Za-z])(:)(?=//)|(?<![\w.])(www)(\.)|(@)")
"""What GitHub's extended autolinks start from (``scheme://``, ``www.``, an e-mail's ``@``):
its punctuation escaped, which renders as itself and no longer makes a live link."""


def markdown_text(value: Any) -> str:
    """A name or message as inline Markdown text that renders as itself.

    Newlines become spaces (a line break would end a table row or a list item),
    and the characters that make emphasis, code, links, HTML or a table cell
    (backslash, backtick, ``* [ ] < > | ~ &``, ``_`` at a word's edge) are escaped, so a
    team called ``a|b`` or ``<img src=x>`` never changes the page's structure; so is what
    starts a bare web address or e-mail (``https://``, ``www.``, ``@``), which GitHub would
    make a live link.
    """
    if value is None:
        return ""
    text = _NEWLINES.sub(" ", str(value))
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return _AUTOLINK.sub(_unlinked, text)


def _unlinked(match: re.Match[str]) -> str:
    """A ``_AUTOLINK`` match with its punctuation backslash-escaped."""
    if match.group(1):
        return "\\:"
    if match.group(2):
        return "www\\."
    return "\\@"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (fits a CI step summary); every cell is text."""
    cell = markdown_text
    lines = [
        "| " + " | ".join(cell(h) for h in headers) + " |",
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


class _VisibleStream:
    """A text stream that writes control characters visibly (``visible_controls``), as
    ``emit`` does, so a streamed document is the same bytes as one emitted whole."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def write(self, text: str, /) -> int:
        written: int = self.target.write(visible_controls(text))
        return written


@contextmanager
def output_stream(output: Path | None) -> Iterator[_VisibleStream]:
    """A stream to ``output`` (or stdout) for a document written piece by piece.

    A file is written beside its name and renamed into place once the document is
    whole: a failure midway (a bad record found by a worker) leaves no half document,
    and an earlier file of that name stands (a link to a file: the file it points at,
    its permissions kept). Anything else (``/dev/null``, a pipe), or a folder where no
    other file can be made, is written in place: never replaced by a file.
    """
    if output is None:
        yield _VisibleStream(sys.stdout)
        return
    target = Path(os.path.realpath(output))
    partial = target.with_name(f".{target.name}.partial")
    try:
        handle = (
            partial.open("x", encoding="utf-8") if target.is_file() or not target.exists() else None
        )
    except OSError:
        handle = None
    if handle is None:
        with output.open("w", encoding="utf-8") as direct:
            yield _VisibleStream(direct)
        return
    try:
        with handle:
            yield _VisibleStream(handle)
        if target.exists():
            shutil.copymode(target, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
