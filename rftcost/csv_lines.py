"""Where each record of a CSV file starts: the line a person finds it on in an editor.

pandas' parser yields records, not lines: a quoted field that runs over several lines
(a message with a line break) and the blank lines it skips would shift every line
number after them if records were numbered one per line, and an error would send a
user to the wrong line. ``record_lines`` reads the file's bytes once, a block at a
time, and finds the lines records start on with array work: line breaks (``\\n``,
``\\r\\n`` or a lone ``\\r``, as pandas and Python's ``csv`` count them) outside
quoted fields end a record, and a record of blanks alone is skipped, as pandas skips
it. A block with no quote, no blank line and no lone ``\\r`` (the usual file) is only
counted. Only when a quote is used as the CSV format does not use it (``ab"c``, a
closing quote followed by text), so that where fields begin and end is the parser's
judgement rather than the format's, is the file read again by Python's ``csv``
module, a row at a time, to number its records as a CSV reader sees them.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, NamedTuple, cast

import numpy as np

from rftcost.events.line_blocks import MAX_LINE_BYTES

__all__ = ["CsvRecord", "RecordLines", "csv_records", "record_lines"]

_BLOCK_BYTES = 1 << 22
_NO_FIELD_LIMIT = 2**31 - 1
"""Python's ``csv`` refuses fields over 128 KiB by default; pandas reads any."""
_QUOTE, _COMMA, _LF, _CR, _SPACE, _TAB = 34, 44, 10, 13, 32, 9
_BOM = b"\xef\xbb\xbf"
_BLANK_LINE = re.compile(rb"\n[ \t\r]*\n")
"""A blank line after the first of a block of whole lines (blanks alone)."""
_BLANK_START = (b"\n", b"\r", b" ", b"\t")
"""First bytes of a block whose first line may be blank (looked at in full then)."""
_LONE_CR = re.compile(rb"\r(?!\n)")
_BLANKS = np.array([_SPACE, _TAB, _CR, _LF], dtype=np.uint8)
"""Bytes a blank line holds (pandas skips a line of these alone)."""
_BESIDE_QUOTE = np.array([_COMMA, _LF, _CR, _QUOTE], dtype=np.uint8)
"""What may stand before an opening quote, or after a closing one, in CSV."""


class _Irregular(Exception):
    """A quote where CSV does not put one: fields are the parser's guess."""


class RecordLines:
    """The line each data record of a CSV file starts on (the header is record -1).

    Kept as the records where the difference between a record's line and its number
    plus 2 (a file of one line per record, header on line 1) changes: as many entries
    as there are multi-line records and blank lines, none in the usual file.
    """

    def __init__(self, records: np.ndarray, shifts: np.ndarray, *, broken: bool = False) -> None:
        self._records = records
        self._shifts = shifts
        self.broken = broken
        """Whether a quote opens a field that does not close as CSV closes it (never, or
        on a later line with text after it): pandas would read lines as one field, so the
        file is read a row at a time (``csv_records``), and the line rejected."""

    def of(self, first: int, count: int) -> np.ndarray:
        """Lines of the data records ``first`` .. ``first + count - 1`` (0-based)."""
        numbers = np.arange(first, first + count, dtype=np.int64)
        if not len(self._records):
            return numbers + 2
        at = np.searchsorted(self._records, numbers, side="right") - 1
        shift = np.where(at >= 0, self._shifts[np.maximum(at, 0)], 0)
        return numbers + 2 + shift

    @property
    def irregular(self) -> bool:
        """Whether any record starts elsewhere than on the line after the previous one."""
        return bool(len(self._records))


def record_lines(path: Path) -> RecordLines:
    """Where each data record of the CSV file ``path`` (``.gz`` decompressed) starts.

    A line of more than ``MAX_LINE_BYTES`` is refused (``UnreadableFileError``, naming
    it) before any of the file is parsed: no record is that long, and pandas would hold
    it whole (a gzipped bomb of one long field costs time, not memory)."""
    scan = _Scan()
    try:
        with _open_bytes(path) as handle:
            for block, final in _blocks_of_lines(handle):
                scan.feed(block, final=final)
    except _Irregular:
        _refuse_long_lines(path)  # read row by row below, with no bound of its own
        return _lines_by_row(path)
    except _TooLong:
        _refuse_long_lines(path)
    return scan.result()


def _refuse_long_lines(path: Path) -> None:
    """``UnreadableFileError`` naming the first line of more than ``MAX_LINE_BYTES``."""
    from rftcost.errors import UnreadableFileError

    breaks = 0
    with _open_bytes(path) as handle:
        try:
            for block, _ in _blocks_of_lines(handle):
                breaks += block.count(b"\n")
        except _TooLong:
            raise UnreadableFileError(
                f"a line of more than {MAX_LINE_BYTES // 2**20} MiB: no record is that long",
                path=path,
                line=breaks + 1,
            ) from None


class _TooLong(Exception):
    """A line longer than ``MAX_LINE_BYTES``."""


def _open_bytes(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return cast("IO[bytes]", gzip.open(path, "rb"))
    return path.open("rb")


def _blocks_of_lines(handle: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """The file in blocks that end with a line break (the last one: the rest)."""
    pieces: list[bytes] = []
    while True:
        data = handle.read(_BLOCK_BYTES)
        if not data:
            break
        # The line begun in the blocks before, up to its first break here: bounded.
        begun = sum(len(piece) for piece in pieces)
        pieces.append(data)
        first = data.find(b"\n")
        if begun + (len(data) if first < 0 else first) > MAX_LINE_BYTES:
            raise _TooLong
        # A '\r' that ends what was read may be half of a '\r\n': cut before it.
        cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1
        if cut == 0:
            continue  # a line longer than a block: read on (joined once below)
        joined = b"".join(pieces) if len(pieces) > 1 else data
        end = len(joined) - (len(data) - cut)
        yield joined[:end], False
        pieces = [joined[end:]] if end < len(joined) else []
    yield b"".join(pieces), True


class _Scan:
    """State carried from block to block by ``record_lines``."""

    def __init__(self) -> None:
        self.inside = 0  # within a quoted field at the start of the next block
        self.previous: int | None = None  # the byte before the next block (None: start)
        self.breaks = 0  # line breaks so far
        self.open_line = 0  # where the record still open at a block's end began
        self.open_content = False  # whether it holds more than blanks
        self.header = False  # whether the header has been read
        self.records = 0  # data records so far
        self.shift = 0  # line - (record + 2) of the last record
        self.changes: list[tuple[np.ndarray, np.ndarray]] = []

    def result(self) -> RecordLines:
        if not self.changes:
            return RecordLines(np.zeros(0, np.int64), np.zeros(0, np.int64))
        records, shifts = zip(*self.changes, strict=True)
        return RecordLines(np.concatenate(records), np.concatenate(shifts))

    def feed(self, block: bytes, *, final: bool) -> None:
        if self.previous is None and block.startswith(_BOM):
            block = block[len(_BOM) :]  # read as no character, as pandas reads it
        if not block:
            return
        plain = (
            not final
            and not self.inside
            and b'"' not in block
            and block[:1] not in _BLANK_START
            and _LONE_CR.search(block) is None
            and _BLANK_LINE.search(block) is None
        )
        if plain:
            self._lines(block.count(b"\n"))
            self.previous = block[-1]
        else:
            self._scan(np.frombuffer(block, dtype=np.uint8), final=final)

    def _lines(self, lines: int) -> None:
        """``lines`` whole lines, each one record, none blank: numbers only move on."""
        first_line, count = self.breaks + 1, lines
        if not self.header:
            self.header, first_line, count = True, first_line + 1, count - 1
        if count > 0:
            shift = first_line - (self.records + 2)
            if shift != self.shift:  # blank lines or a long record just before
                self.changes.append((np.array([self.records]), np.array([shift])))
                self.shift = shift
            self.records += count
        self.breaks += lines

    def _scan(self, data: np.ndarray, *, final: bool) -> None:
        size = len(data)
        is_lf, is_cr = data == _LF, data == _CR
        if is_cr.any():  # a lone '\r' breaks a line too, as in pandas
            after_is_lf = np.append(is_lf[1:], False)
            breaks = np.flatnonzero(is_lf | (is_cr & ~after_is_lf))
        else:
            breaks = np.flatnonzero(is_lf)
        quotes = np.flatnonzero(data == _QUOTE)
        # The state before each quote: outside (0) or inside (1) a quoted field.
        state = (self.inside + np.arange(len(quotes))) & 1
        self._check_quotes(data, quotes, state, final=final)
        inside_at_break = (self.inside + np.searchsorted(quotes, breaks)) & 1
        ends = breaks[inside_at_break == 0]
        end_inside = (self.inside + len(quotes)) & 1
        if final and not end_inside and (not len(ends) or ends[-1] != size - 1):
            ends = np.append(ends, size - 1)  # the last record, with no line break after it
        bounds = np.concatenate([[0], ends + 1])
        tail = bounds[-1] < size  # a record still open (inside quotes) at the end
        starts = bounds if tail else bounds[:-1]
        # A record that begins with other than a blank holds more than blanks (most do);
        # the others are looked at whole.
        content = ~np.isin(data[starts], _BLANKS)
        if not content.all():
            filled = (~np.isin(data, _BLANKS)).view(np.uint8)
            content = np.maximum.reduceat(filled, starts) > 0
        lines = self.breaks + 1 + np.searchsorted(breaks, starts)
        if self.inside and len(starts):  # the first piece goes on with the open record
            lines[0] = self.open_line
            content[0] |= self.open_content
        if tail:
            self.open_line, self.open_content = int(lines[-1]), bool(content[-1])
            lines, content = lines[:-1], content[:-1]
        self._records_at(lines[content])
        self.inside = end_inside
        self.breaks += len(breaks)
        self.previous = int(data[-1])

    def _check_quotes(
        self, data: np.ndarray, quotes: np.ndarray, state: np.ndarray, *, final: bool
    ) -> None:
        if not len(quotes):
            return
        opening, closing = quotes[state == 0], quotes[state == 1]
        before = data[np.maximum(opening - 1, 0)]
        if len(opening) and opening[0] == 0:
            before = before.copy()
            before[0] = _COMMA if self.previous is None else self.previous
        after_index = closing + 1
        at_end = after_index >= len(data)
        if at_end.any() and not final:
            raise _Irregular  # a block ends with a break: a quote cannot be its last byte
        after = data[np.minimum(after_index, len(data) - 1)]
        after = np.where(at_end, _COMMA, after)  # the end of the file closes a field
        if not (np.isin(before, _BESIDE_QUOTE).all() and np.isin(after, _BESIDE_QUOTE).all()):
            raise _Irregular

    def _records_at(self, lines: np.ndarray) -> None:
        """Records found starting on ``lines`` (the first one ever: the header)."""
        if not self.header and len(lines):
            self.header, lines = True, lines[1:]
        numbers = self.records + np.arange(len(lines), dtype=np.int64)
        shifts = lines.astype(np.int64) - (numbers + 2)
        changed = np.flatnonzero(np.diff(shifts, prepend=self.shift))
        if len(changed):
            self.changes.append((numbers[changed], shifts[changed]))
            self.shift = int(shifts[-1])
        self.records += len(lines)


class CsvRecord(NamedTuple):
    """A record of a CSV text as pandas reads it, with the file line it starts on."""

    line: int
    fields: list[str]
    """Its fields; of a record that is not CSV, what its line reads as (its job)."""
    problem: str | None
    """Why it is not CSV, naming the file lines it spans; ``None`` when it is."""
    open_quote: bool = False
    """Whether it is a line with a quote never closed, or closed on a later line with text
    after it (the lines after it are read on their own; pandas would read them otherwise)."""


def csv_records(handle: Iterable[str]) -> Iterator[CsvRecord]:
    """The records of a CSV text (opened with ``newline=""``), a row at a time, as pandas'
    parser reads them: blank lines (spaces, tabs alone) skipped, a quote used as CSV does
    not use it (``"ab"cd``) read as text, no limit on a field's size.

    A quote never closed would make the rest of the file one field (records lost in it):
    its line is one record that is not CSV (its job named by the line's first fields),
    and the lines after it are read on their own, as records again.
    """
    source = _Replay(handle)
    offset = 0  # lines read again start at this one
    limit = csv.field_size_limit()
    csv.field_size_limit(_NO_FIELD_LIMIT)
    try:
        while True:
            lines = _Recorded(source)
            reader = csv.reader(lines, strict=True)
            rest: list[str] | None = None
            while rest is None:
                first = offset + reader.line_num + 1
                lines.record = []
                try:
                    fields, problem = next(reader), None
                except StopIteration:
                    return
                except csv.Error as error:
                    if _unclosed(error):
                        # The line alone: its last field is the one the quote opened
                        # (it holds the rest of the line); the fields before it stand.
                        fields = next(csv.reader(lines.record[:1]), [])
                        problem = (
                            f"not CSV: a quote never closed on file line {first} (the lines "
                            "after it are read on their own)"
                        )
                        rest = lines.record[1:]
                    elif _closed_by_a_record(lines.record):
                        # The quote its first line leaves open is "closed" by the quote that
                        # opens a field of a later line, text after it: the lines between
                        # would be one field (records lost in it). As a quote never closed:
                        # its line is one record that is not CSV, the rest read again.
                        fields = next(csv.reader(lines.record[:1]), [])
                        problem = (
                            f"not CSV: a quote opened on file line {first} closes on line "
                            f"{offset + reader.line_num} with text after it ({error}; the "
                            "lines after it are read on their own)"
                        )
                        rest = lines.record[1:]
                    else:  # read as pandas reads it: a quote in text is text
                        loose = list(csv.reader(lines.record))
                        fields, problem = (loose[0] if loose else []), None
                        if len(loose) != 1:
                            spanned = (
                                f"file lines {first}-{offset + reader.line_num} read as one record"
                            )
                            problem = f"not CSV: {error} ({spanned})"
                if problem is None and not "".join(lines.record).strip(" \t\r\n"):
                    continue  # a blank line, as pandas skips it ('""' is a record: it is not)
                yield CsvRecord(first, fields, problem, rest is not None)
            # The record's other lines are read again, then those the reader did not reach.
            source.again(rest)
            offset = first
    finally:
        csv.field_size_limit(limit)


def _closed_by_a_record(record: list[str]) -> bool:
    """Whether a record of several lines is a quote its first line leaves open, "closed"
    by the first quote of a later line that holds fields before it (``ftjob-q,…,"search"``,
    or a quote at the line's start): that line is a record, not the rest of a message
    (``world" ,x`` or ``world","search"x`` close one: no separator before the quote)."""
    if len(record) < 2 or not _ends_in_quote(record[0]):
        return False
    for line in record[1:]:
        at = _lone_quote(line)
        if at is not None:
            return at == 0 or "," in line[:at]
    return False


def _ends_in_quote(line: str) -> bool:
    """Whether ``line`` ends inside a quoted field (a quote opening a field, not closed)."""
    quoted, field_start, at = False, True, 0
    while at < len(line):
        char = line[at]
        if quoted:
            if char == '"':
                if line[at + 1 : at + 2] == '"':
                    at += 1  # a doubled quote inside quotes is a quote
                else:
                    quoted = False
        elif char == '"' and field_start:
            quoted = True
        field_start = not quoted and char == ","
        at += 1
    return quoted


def _lone_quote(line: str) -> int | None:
    """The first quote of ``line`` that is not doubled, read inside a quoted field."""
    at = line.find('"')
    while at >= 0:
        if line[at + 1 : at + 2] != '"':
            return at
        at = line.find('"', at + 2)
    return None


def _unclosed(error: csv.Error) -> bool:
    """Whether ``error`` is a quoted field still open at the end of the file."""
    return "end of data" in str(error)


class _Recorded:
    """The lines a ``csv.reader`` reads, those of the record being read kept."""

    def __init__(self, handle: Iterable[str]) -> None:
        self._lines = iter(handle)
        self.record: list[str] = []

    def __iter__(self) -> _Recorded:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.record.append(line)
        return line


class _Replay:
    """Lines of a text, some of them read again (``again``) before the rest: one
    iterator however many records are read again (no chain of chains)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self._again: list[str] = []

    def __iter__(self) -> _Replay:
        return self

    def __next__(self) -> str:
        return self._again.pop() if self._again else next(self._lines)

    def again(self, lines: list[str]) -> None:
        """Read ``lines`` next, in their order."""
        self._again.extend(reversed(lines))


def _lines_by_row(path: Path) -> RecordLines:
    """Record lines as Python's ``csv`` reads the rows: for a file whose quotes are not
    used as CSV uses them (rare; a row at a time)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    starts: list[int] = []
    broken = False
    with opener(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="") as text:
        for record in csv_records(text):
            if record.open_quote:
                broken = True  # pandas' records past it are not these
                break
            starts.append(record.line)
    scan = _Scan()
    scan._records_at(np.asarray(starts, dtype=np.int64))  # the header first, as a scan finds
    found = scan.result()
    found.broken = broken
    return found
