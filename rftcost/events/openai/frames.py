"""Small helpers over the import's pandas values: keyed look-up, missing values, text."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd

__all__ = ["is_missing", "lookup", "optional_text"]


def lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``table[key]`` for each key (missing: NA), keeping the table's dtype."""
    table = table[~table.index.duplicated(keep="last")]
    return pd.Series(table.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=table.dtype)


def is_missing(value: object) -> bool:
    return bool(pd.isna(cast(Any, value)))


def optional_text(value: object) -> str | None:
    return None if is_missing(value) else str(value)
