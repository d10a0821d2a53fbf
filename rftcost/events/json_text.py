"""JSON text that parses but is not text: lone UTF-16 surrogate escapes.

JSON may spell a character as ``\\ud83d\\ude00`` (a surrogate pair, one character once
parsed); half a pair alone (``\\udc80``) parses to a code point that no UTF-8 output,
Arrow column or terminal can hold. A record holding one is rejected on its own (its job
is invalid), so that one such escape never refuses the whole file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rftcost.errors import UnreadableFileError

__all__ = [
    "SURROGATE_ESCAPE",
    "file_named_in_text",
    "holds_surrogate",
    "lone_surrogate",
    "lone_surrogate_in",
    "lone_surrogate_line",
    "without_surrogates",
]

SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
"""A JSON escape of a surrogate: text holding none cannot parse to a lone surrogate."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(parsed: Any) -> str | None:
    """The first lone surrogate in a parsed JSON value, as its escape (``\\udc80``);
    ``None`` when its text is all valid (a pair parses to one character)."""
    found = _SURROGATE.search(json.dumps(parsed, ensure_ascii=False, default=str))
    return None if found is None else f"\\u{ord(found.group()):04x}"


def holds_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate: a lone one parsed from JSON, or a byte that is
    not UTF-8 kept by ``surrogateescape`` (a file name or command-line argument)."""
    return _SURROGATE.search(text) is not None


def file_named_in_text(path: Path) -> Path:
    """``path``, refused when its name is not UTF-8 text (bytes kept as surrogates): each
    record names its file, and no output (JSON, CSV, Arrow columns) can hold that name."""
    if holds_surrogate(str(path)):
        raise UnreadableFileError(
            "a file name that is not UTF-8 text",
            path=without_surrogates(str(path)),
            value=str(path),
            hint="rename the file (its name in UTF-8)",
        )
    return path


def without_surrogates(text: str) -> str:
    """``text`` with each lone surrogate shown as U+FFFD, as a byte that is not UTF-8
    is shown: a job id named in a message or an output stays writable."""
    return _SURROGATE.sub("\ufffd", text)


_LONE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def lone_surrogate_line(text: str) -> int | None:
    """The line of ``text`` where the first lone surrogate escape is written, for a
    document that holds one (``lone_surrogate``); ``None`` if no escape is lone."""
    found = _LONE_ESCAPE.search(text)
    return None if found is None else text.count("\n", 0, found.start()) + 1


def lone_surrogate_in(text: str, parsed: Any) -> tuple[str, int | None] | None:
    """The first lone surrogate of a document, ``parsed`` being what ``text`` parses to:
    its escape and the line it is written on; ``None`` when there is none. Only text with
    a surrogate escape is looked into (clean text costs one search)."""
    if not SURROGATE_ESCAPE.search(text):
        return None
    lone = lone_surrogate(parsed)
    return None if lone is None else (lone, lone_surrogate_line(text))
