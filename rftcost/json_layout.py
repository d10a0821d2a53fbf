"""JSON documents laid out as ``json.dumps(indent=2, ensure_ascii=False)`` lays them out,
written a chunk of list items at a time.

Every JSON document rftcost writes has this layout; the large ones (bill, spend, validate,
audit) are streamed: the text around their top-level lists is laid out once
(``around_lists``) and the items are laid out and written a chunk at a time
(``item_text``, ``write_items``), so memory is bounded by a chunk, never by the document.
orjson lays the values out (``laid_out``): the same bytes, faster than json's indented
encoder, which is pure Python.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import orjson

__all__ = [
    "ITEM_MARGIN",
    "TextSink",
    "around_lists",
    "close_list",
    "item_text",
    "laid_out",
    "write_document",
    "write_items",
]

_INDENT = 2
"""Spaces per level, as ``json.dumps(indent=2)``; an item of a top-level list sits two
levels deep."""
ITEM_MARGIN = "\n" + " " * (2 * _INDENT)
"""What leads an item of a top-level list."""


class TextSink(Protocol):
    """Where a document is written: anything with ``write(text)`` (a file, stdout)."""

    def write(self, text: str, /) -> int:
        """Write ``text``."""
        ...


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=_INDENT, ensure_ascii=False)


_quoted = json.encoder.encode_basestring  # the C encoder's, as json.dumps(ensure_ascii=False)
_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def laid_out(value: Any, margin: str = "") -> str:
    """``value`` as ``json.dumps(value, indent=2, ensure_ascii=False)`` lays it out at
    ``margin``: the same bytes, encoded by orjson (json's indented encoder is pure Python,
    and was most of the time of writing a large bill).

    orjson's indented layout is json's, with two differences put right here: a float
    below 1e-4 is written ``0.00001`` or ``1e-9`` where Python writes ``1e-05`` and
    ``1e-09`` (the digits are the same shortest round trip), so such a number is written
    again as Python writes it; and what orjson refuses or would write differently (a
    lone surrogate, an integer beyond 64 bits, a key that is not a string, a subclass of
    a built-in type, a date) is laid out by ``_laid_out_in_python``. NaN and infinities
    never occur in these documents (seconds come from integer nanoseconds).
    """
    try:
        text = orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _laid_out_in_python(value, margin)
    if "0.0000" in text or "e-" in text:
        text = _SMALL_FLOAT.sub(_as_python_writes_it, text)
    return text.replace("\n", "\n" + margin) if margin else text


_ORJSON_OPTIONS = (
    orjson.OPT_INDENT_2
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
"""Indented by two spaces; a date, a dataclass or a subclass of a built-in type is
refused (``json.dumps`` refuses or writes them its own way), so it falls back."""

_SMALL_FLOAT = re.compile(
    r'^( *(?:"(?:[^"\\\n]|\\.)*": )?)(-?(?:0\.0000\d*|\d+(?:\.\d+)?e-\d+))(,?)$', re.MULTILINE
)
"""A line of indented JSON whose value is a number below 1e-4 as orjson writes it (each
line holds one value: a line break inside a string is escaped, so a string's content
never starts a line)."""


def _as_python_writes_it(number: re.Match[str]) -> str:
    head, token, comma = number.groups()
    return head + float.__repr__(float(token)) + comma


def _laid_out_in_python(value: Any, margin: str) -> str:
    """``value`` as ``json.dumps(value, indent=2, ensure_ascii=False)`` lays it out at
    ``margin``: for what orjson refuses (json's indented encoder is slower still)."""
    if isinstance(value, str):
        return _quoted(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        text = float.__repr__(value)
        return _NONFINITE.get(text, text)
    inner = margin + " " * _INDENT
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = (
            inner + _quoted(key) + ": " + _laid_out_in_python(item, inner)
            for key, item in value.items()
        )
        return "{\n" + ",\n".join(items) + "\n" + margin + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        return (
            "[\n"
            + ",\n".join(inner + _laid_out_in_python(item, inner) for item in value)
            + "\n"
            + margin
            + "]"
        )
    return _dumps(value).replace("\n", "\n" + margin)  # anything else: json's own way


def around_lists(document: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    """The layout of ``document`` around the items of its top-level lists ``keys`` (in
    the document's order): up to and including the first list's ``[``, then from each
    list's closing ``]`` to the next one's ``[``, then from the last ``]`` to the end (no
    final newline). ``write_items`` writes the items in between."""
    markers = {key: f"\x00{key}\x00" for key in keys}
    text = _dumps({**document, **{key: [marker] for key, marker in markers.items()}})
    pieces = []
    for marker in markers.values():
        items = "[" + ITEM_MARGIN + _dumps(marker) + "\n" + " " * _INDENT + "]"
        before, text = text.split(items, 1)
        pieces.append(before + "[")
        text = "]" + text
    return [*pieces, text]


def item_text(value: Any) -> str:
    """``value`` as an item of a top-level list, with the line break that leads it."""
    return ITEM_MARGIN + laid_out(value, ITEM_MARGIN[1:])


def write_items(stream: TextSink, chunks: Iterable[Iterable[str]]) -> bool:
    """Write laid-out items (``item_text``) of one list, comma-separated; True if any."""
    written = False
    for chunk in chunks:
        text = ",".join(chunk)
        if text:
            stream.write(("," if written else "") + text)
            written = True
    return written


def close_list(written: bool) -> str:
    """What closes a list before the ``]`` that ``around_lists`` gives: a line break and
    the document's indent after items, nothing after none (``[]``)."""
    return "\n" + " " * _INDENT if written else ""


def write_document(
    stream: TextSink, document: Mapping[str, Any], lists: Mapping[str, Iterable[Iterable[Any]]]
) -> None:
    """Write ``document`` as ``json.dumps(indent=2, ensure_ascii=False)`` lays it out, with
    a final newline, the top-level lists ``lists`` names coming a chunk of values at a time
    (memory bounded by a chunk, whatever the length of the list)."""
    pieces = around_lists(document, list(lists))
    stream.write(pieces[0])
    for chunks, after in zip(lists.values(), pieces[1:], strict=True):
        written = write_items(stream, ([item_text(v) for v in chunk] for chunk in chunks))
        stream.write(close_list(written) + after)
    stream.write("\n")
