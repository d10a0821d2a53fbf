"""What the paths a user names as logs hold, looked at before they are read.

A folder without any event log, or a file without a single record, reads as an empty
log: a bill of 0.00 that looks like a real one. ``survey_logs`` finds both cheaply
(a folder scan, then each file up to its first record), so that a caller can say so
instead: the CLI and the library's ``bill()`` refuse a folder with no log
(``refuse_folders_without_logs``), and the CLI warns about a file with no record.
It never decides what a record holds: a file that cannot be read, or a record that
will be rejected, is left to the readers to report in their own words.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from rftcost.errors import InputError
from rftcost.events.readers import expand_paths, parquet_file, skip_notes

__all__ = [
    "LOG_KINDS",
    "NO_RECORD",
    "LogSurvey",
    "holds_no_record",
    "refuse_folders_without_logs",
    "survey_logs",
]

LOG_KINDS = ".jsonl, .csv or .parquet, optionally .gz, or an OpenAI export"
"""What a folder is searched for, in the words of a message."""
NO_RECORD = "empty, or a header only"
"""What a file without a record is, in the words of a message."""
_BLOCK_CHARACTERS = 1 << 20
"""Characters read at a time while looking for a file's first record."""
_BOM = "\ufeff"
_CSV_BLANK = " \t\r"
"""What pandas' CSV parser skips as a blank line (a line of other whitespace is a row)."""


class LogSurvey(BaseModel):
    """The files behind the paths named as logs, and those that hold nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    files: tuple[Path, ...]
    """Every file the readers will read, in their order."""
    folders_without_logs: tuple[tuple[Path, tuple[str, ...]], ...] = ()
    """Folders named that hold no event-log file (nothing below them will be read), each
    with why its files were left out (the readers' notes, in their words)."""
    files_without_records: tuple[Path, ...] = ()
    """Files that hold no record at all: empty, blank lines only, a CSV header only, a
    Parquet file of no row."""
    elsewhere: tuple[str, ...] = ()
    """Paths that are no local file or folder (``s3://``, ``table:`` for Spark, or a path
    that does not exist): left to the engine, which lists or refuses them."""

    @property
    def holds_no_record(self) -> bool:
        """No path holds a record: reading them all gives no event and no rejection."""
        return not self.elsewhere and len(self.files_without_records) == len(self.files)


def refuse_folders_without_logs(survey: LogSurvey) -> None:
    """Raise ``InputError`` for a folder named that holds no event log, rather than bill it
    as 0.00: the first such, in one line, as for a path that does not exist, with why its
    files were left out."""
    if survey.folders_without_logs:
        folder, left_out = survey.folders_without_logs[0]
        why = f"no event log in this folder ({LOG_KINDS})"
        if left_out:
            more = f" (and {len(left_out) - 1} more)" if len(left_out) > 1 else ""
            why += f"; left out: {left_out[0]}{more}"
        raise InputError(why, path=folder)


def survey_logs(paths: Iterable[str | Path], *, follow_links: bool = False) -> LogSurvey:
    """Look at the paths a user names as logs: which folders hold no log, which files
    no record. Raises ``UnreadableFileError`` for a path that is neither a file nor a
    folder (a pipe), as the readers would; one that does not exist here is ``elsewhere``."""
    files: list[Path] = []
    empty_folders: list[tuple[Path, tuple[str, ...]]] = []
    elsewhere: list[str] = []
    for given in paths:
        if not Path(given).exists():
            elsewhere.append(str(given))
            continue
        skipped: list[Path] = []
        links: list[Path] = []
        found = expand_paths([given], skipped, follow_links=follow_links, links=links)
        if Path(given).is_dir() and not found:
            empty_folders.append((Path(given), skip_notes(skipped, links)))
        files.extend(found)
    return LogSurvey(
        files=tuple(files),
        folders_without_logs=tuple(empty_folders),
        elsewhere=tuple(elsewhere),
        files_without_records=tuple(f for f in files if holds_no_record(f)),
    )


def holds_no_record(path: Path) -> bool:
    """True when ``path`` certainly holds no record (the readers would find none).

    A JSON Lines file holds a record when a line holds more than whitespace; a CSV
    file when a line other than its header holds more than blanks; a Parquet file
    when its metadata counts a row. An OpenAI export (``.json``), a file that cannot
    be opened or parsed, and anything unsure count as holding one: the readers say
    what is wrong with them.
    """
    name = path.name.lower()
    if name.endswith(".json"):
        return False
    if name.endswith(".parquet"):
        try:
            return int(parquet_file(path).metadata.num_rows) == 0
        except InputError:
            return False
    try:
        if name.endswith((".csv", ".csv.gz")):
            return _csv_has_no_row(path)
        return _text_is_blank(path)
    except (OSError, EOFError, UnicodeError, zlib.error):  # gzip.BadGzipFile is an OSError
        return False


def _text_blocks(path: Path) -> Iterator[str]:
    """The file's text a block at a time, decoded as the readers decode it: bytes that
    are not UTF-8 are kept (as surrogates, never whitespace), a leading BOM is not text."""
    opener: Callable[..., Any] = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="surrogateescape", newline="") as handle:
        first = True
        while block := handle.read(_BLOCK_CHARACTERS):
            yield block.removeprefix(_BOM) if first else block
            first = False


def _text_is_blank(path: Path) -> bool:
    """JSON Lines: the readers skip a line of whitespace only, and read any other; a
    byte-order mark starting a line is no text to them (files joined with ``cat``)."""
    line_start = False  # the file's own byte-order mark: read past by ``_text_blocks``
    for block in _text_blocks(path):
        text = block.replace("\n" + _BOM, "\n")
        if line_start:
            text = text.removeprefix(_BOM)
        if text and not text.isspace():
            return False
        line_start = block.endswith("\n") if block else line_start
    return True


def _csv_has_no_row(path: Path) -> bool:
    """CSV: at most one line (the header) holds more than blanks; pandas skips the rest,
    and a file without even a header has no record either."""
    lines_with_text = 0
    tail = ""
    for block in _text_blocks(path):
        # A line may run over two blocks: the text after the block's last line break
        # is carried over to the next block.
        lines = (tail + block).replace("\r", "\n").split("\n")
        tail = lines.pop()
        lines_with_text += sum(1 for line in lines if line.strip(_CSV_BLANK))
        if lines_with_text > 1:
            return False
    lines_with_text += 1 if tail.strip(_CSV_BLANK) else 0
    return lines_with_text <= 1
