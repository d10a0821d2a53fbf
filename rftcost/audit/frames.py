"""Small frame helpers the audit's steps share (membership, rows of findings, exact sums)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["among", "as_int", "exact_sums", "line_numbers", "rows_of", "split_by_job"]


def among(values: Any, members: Any) -> np.ndarray[Any, Any]:
    """``values.isin(members)`` through object hash tables (Arrow strings' isin is slow)."""
    keys = pd.Index(np.asarray(values, dtype=object), dtype=object)
    return np.asarray(keys.isin(pd.Index(list(members), dtype=object)), dtype=bool)


def as_int(value: Any) -> int:
    """A frame cell known to hold an integer, as a Python int."""
    return int(value)


def rows_of(frame: pd.DataFrame) -> Iterator[Any]:
    """A frame's rows as named tuples (the few rows of findings, never every line)."""
    return iter(frame.itertuples(index=False))


def exact_sums(frame: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Exact group sums of a column of Python ints: int64 when no sum can overflow."""
    values = frame[column]
    if values.empty:
        return frame[keys].drop_duplicates().assign(**{column: pd.Series([], dtype=object)})
    largest = max(abs(int(v)) for v in (values.max(), values.min()))
    if largest * len(values) < 2**62:
        sums = (
            frame.assign(**{column: values.astype("int64")})
            .groupby(keys, as_index=False)[column]
            .sum()
        )
        exact: pd.DataFrame = sums.assign(**{column: sums[column].astype(object)})
        return exact
    big: pd.DataFrame = frame.groupby(keys, as_index=False).agg(
        **{column: (column, lambda v: sum(int(x) for x in v))}
    )
    return big


def split_by_job(frame: pd.DataFrame, codes: set[int]) -> dict[int, pd.DataFrame]:
    """The rows of a few jobs (by time line code), one frame per job."""
    chosen = frame[among(frame["job"], list(codes))]
    return {as_int(code): group for code, group in chosen.groupby("job", sort=False)}


def line_numbers(
    lines: pd.DataFrame, keys: list[str], wanted: pd.DataFrame
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """Invoice line numbers of the ``wanted`` groups only (the few with findings)."""
    if wanted.empty or lines.empty:
        return {}
    chosen = lines[[*keys, "line"]].merge(wanted[keys].drop_duplicates(), on=keys)
    found: dict[tuple[Any, ...], tuple[int, ...]] = {}
    for key, numbers in chosen.groupby(keys, sort=False)["line"]:
        found[key if isinstance(key, tuple) else (key,)] = tuple(sorted(int(n) for n in numbers))
    return found
