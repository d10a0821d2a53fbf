"""Names (job id, team, project, model...): which values of a column can be one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["not_a_name"]

_EXACT_FLOAT = 2**53
"""Floats hold every whole number below this exactly; above, neighbours merge."""
_INEXACT = "a number too large to read exactly as a name (above 2^53): write it as text"


def _no_problem(values: pd.Series) -> pd.Series:
    return pd.Series(pd.NA, index=values.index, dtype="string")


def not_a_name(values: pd.Series) -> pd.Series:
    """Why each value cannot be a name (job id, team, model...): NA where it can.

    A name is text (a number is read as its digits); a JSON object, array or boolean
    is not one, and must not become the text "{'a': 1}" or "True"; bytes must be
    UTF-8 (a Parquet binary column).
    """
    if values.dtype.kind == "f":
        # A number with gaps beside it is read as a float, exact only below 2**53: above,
        # two names (team 9007199254740993 and ...992) would be one, silently.
        inexact = (values.abs() >= _EXACT_FLOAT).fillna(False).to_numpy(dtype=bool)
        return _no_problem(values).mask(inexact, _INEXACT)
    if values.dtype.kind == "b" or str(values.dtype) == "boolean":
        return _no_problem(values).mask(values.notna(), "a boolean, not a name")
    if isinstance(values.dtype, pd.CategoricalDtype):
        # A Parquet dictionary column: judge its few categories, not every row.
        categories = pd.Series(values.cat.categories.to_numpy(dtype=object))
        by_category = not_a_name(categories).to_numpy(dtype=object)
        if not len(by_category):
            return _no_problem(values)
        codes = values.cat.codes.to_numpy()
        picked = by_category[np.maximum(codes, 0)]
        picked[codes < 0] = None
        return pd.Series(picked, index=values.index, dtype="string")
    if values.dtype != object:
        return _no_problem(values)
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("string", "empty", "integer", "floating", "mixed-integer-float", "decimal"):
        return _no_problem(values)
    return values.map(_name_problem, na_action="ignore").astype("string")


def _name_problem(value: Any) -> str | None:
    if isinstance(value, bool | np.bool_):
        return "a boolean, not a name"
    if isinstance(value, dict):
        return "a JSON object, not a name"
    if isinstance(value, list | tuple | np.ndarray):
        return "a list, not a name"
    if isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return "bytes that are not UTF-8 text, not a name"
    return None
