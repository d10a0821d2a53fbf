"""CSV cells a spreadsheet will not run: formula injection neutralised as OWASP recommends.

A job id, team or project comes from a log a person did not write; in a CSV file
opened in Excel, LibreOffice or Google Sheets, a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return may be run as a formula
(``=HYPERLINK(…)``, ``+cmd|' /C calc'!A0``, ``@SUM(…)``). Such a cell is prefixed
with a single quote, which every spreadsheet shows as text
(https://owasp.org/www-community/attacks/CSV_Injection).

A number keeps its sign: a cell that is wholly a decimal number (``-12.50``,
``+3``, ``1e-05``) is data, not a formula, and is written as it is. ``-1+1`` is
not a number (a spreadsheet computes it) and is neutralised. Values that are
not strings (numbers, booleans, missing values) are never touched.

The CSV quoting itself (commas, quotes, newlines inside a cell) is the ``csv``
module's and pandas' job; this module only decides what a cell says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

__all__ = [
    "FORMULA_TRIGGERS",
    "neutralise_csv_cell",
    "neutralise_csv_column",
    "neutralise_csv_frame",
    "neutralise_csv_row",
    "neutralise_csv_value",
]

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP)."""

_TRIGGER = r"[=+\-@\t\r]"
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)


def neutralise_csv_cell(text: str) -> str:
    """``text`` as a cell no spreadsheet runs: prefixed with ``'`` when it starts a formula.

    >>> neutralise_csv_cell('=HYPERLINK("http://x")')
    '\\'=HYPERLINK("http://x")'
    >>> neutralise_csv_cell("-12.50")
    '-12.50'
    """
    if text and text[0] in FORMULA_TRIGGERS and not _NUMBER_RE.fullmatch(text):
        return "'" + text
    return text


def neutralise_csv_value(value: Any) -> Any:
    """A cell of any type: strings neutralised, everything else as it is."""
    return neutralise_csv_cell(value) if isinstance(value, str) else value


def neutralise_csv_row(row: Mapping[Any, Any]) -> dict[Any, Any]:
    """A mapping of cells (one CSV row) with every string cell neutralised."""
    return {key: neutralise_csv_value(value) for key, value in row.items()}


def neutralise_csv_column(column: pd.Series) -> pd.Series:
    """One column, vectorised: its string cells that would run are prefixed with ``'``.

    Numeric, boolean and datetime columns cannot hold a formula and come back as
    they are (same object).
    """
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return column
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column
    strings = column.astype("string")
    risky = strings.str.match(_TRIGGER, na=False) & ~strings.str.fullmatch(_NUMBER, na=False)
    if not risky.any():
        return column
    fixed = column.copy()
    fixed[risky] = "'" + strings[risky].astype(object)
    return fixed


def neutralise_csv_frame(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A copy of ``frame`` safe to write as CSV: every text column (or ``columns``) neutralised.

    Column by column, never row by row; a frame with nothing to neutralise is
    returned as it is.
    """
    names = list(frame.columns) if columns is None else [c for c in columns if c in frame]
    changed = {}
    for name in names:
        column = frame[name]
        fixed = neutralise_csv_column(column)
        if fixed is not column:
            changed[name] = fixed
    return frame.assign(**changed) if changed else frame
