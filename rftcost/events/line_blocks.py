"""A text file's bytes in blocks of whole lines, with a bound on the length of a line.

JSON Lines are parsed a block of lines at a time, so that a large or gzipped file costs
its blocks' memory, not its own. A single line is a record and is never cut, up to
``MAX_LINE_BYTES``: beyond that no event record is that long (a decompression bomb of
one line of spaces is), and holding it whole would cost memory without bound. Such a
line is given as its first ``MAX_LINE_BYTES`` bytes, said to be cut, and the rest of it
is read past without being kept (time, not memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

__all__ = ["MAX_LINE_BYTES", "line_blocks"]

MAX_LINE_BYTES = 64 * 2**20
"""The longest line read whole; a longer one is a record that cannot be read."""


def line_blocks(
    handle: IO[bytes], block_bytes: int, max_line: int = MAX_LINE_BYTES
) -> Iterator[tuple[bytes, bool]]:
    """``(bytes, cut)``: blocks of whole lines of about ``block_bytes`` (the last line
    break kept); or, ``cut``, the first ``max_line`` bytes of a line longer than that,
    alone, the rest of that line skipped (its line break too). ``max_line`` is at least
    ``block_bytes``: a line read within one block is never too long."""
    pending: list[bytes] = []  # the start of a line begun in an earlier block
    held = 0
    after = b""  # what followed a cut line in the last block read: read as new data
    while data := after or handle.read(block_bytes):
        after = b""
        first = data.find(b"\n")
        if first < 0:
            pending.append(data)
            held += len(data)
            if held > max_line:
                yield b"".join(pending)[:max_line], True
                pending, held = [], 0
                after = _skip_line(handle, block_bytes)
            continue
        if held + first > max_line:  # the pending line ends here, too long
            yield b"".join([*pending, data[:first]])[:max_line], True
            pending, held, after = [], 0, data[first + 1 :]
            continue
        end = data.rfind(b"\n")
        yield b"".join([*pending, data[: end + 1]]), False
        tail = data[end + 1 :]
        pending, held = ([tail], len(tail)) if tail else ([], 0)
    if pending:
        yield b"".join(pending), False


def _skip_line(handle: IO[bytes], block_bytes: int) -> bytes:
    """Read past the rest of a line; what follows its line break in the last block read."""
    while data := handle.read(block_bytes):
        end = data.find(b"\n")
        if end >= 0:
            return data[end + 1 :]
    return b""
