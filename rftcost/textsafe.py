"""Text every output can show as it is: control characters written visibly.

A job id, team or message comes from a log a person did not write. A NUL, an ESC or a
C1 control in it would move a terminal's cursor, clear its screen or retitle it, end a
C string in the tool that reads a CSV file, or be a parse error in an HTML page. Every
output (the terminal, CSV files, the HTML report) writes them as JSON's own escape,
``\\u0000``, which is visible and the same data in a JSON document. Tab, newline and
carriage return are the text's own layout and stay (CSV quotes them; terminal tables
write line breaks as ``\\n`` themselves).
"""

from __future__ import annotations

import re

__all__ = ["CONTROL_CHARACTERS", "visible_controls"]

CONTROL_CHARACTERS = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
"""C0 and C1 controls but tab, newline and CR; and the invisible marks that change the
direction of text (U+202E shows a name reversed: ``exe.txt`` for ``txt.exe``)."""


_ASCII_SHOWN = bytes(range(0x20, 0x7F)) + b"\t\n\r"
"""The ASCII characters written as they are: printable ones, tab, newline, CR."""


def visible_controls(text: str) -> str:
    """Control characters (but tab, newline, CR) written as ``\\u001b``: a name from a log
    cannot move the cursor, clear the screen or retitle the terminal (ESC, CSI, BEL…).

    The form is JSON's own escape, so a JSON document stays exactly the same data.
    """
    # A document is mostly ASCII with no control: found so by a byte translation, a few
    # times faster than the pattern's scan, which a bill of many jobs pays per chunk.
    if text.isascii() and not text.encode("ascii").translate(None, _ASCII_SHOWN):
        return text
    return CONTROL_CHARACTERS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
