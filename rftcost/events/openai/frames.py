"""Small helpers over the import's frames: event ids, epoch times, look-ups, missing values.

Every canonical event carries an id built from the OpenAI ids (``event_ids``), so
that importing overlapping exports, or the same export twice, de-duplicates.
"""

from __future__ import annotations

from typing import Any, cast

import pandas as pd

__all__ = ["event_ids", "is_missing", "lookup", "optional_text", "true_where", "utc_from_epoch"]


def event_ids(ids: pd.Series, *parts: str | pd.Series) -> pd.Series:
    """``openai:<id>:<part>:…``: the canonical event id of each row, from its OpenAI id
    (``ftevent-…``, ``ftckpt-…``, ``ftjob-…``) and what the row is (its role)."""
    built = "openai:" + ids
    for part in parts:
        built = built + ":" + part
    return built


def utc_from_epoch(seconds: pd.Series) -> pd.Series:
    """Epoch seconds (the API's ``created_at``, ``finished_at``) → UTC timestamps."""
    return pd.to_datetime(seconds, unit="s", utc=True)


def true_where(mask: pd.Series) -> pd.Series:
    """A nullable or object mask as plain booleans: a missing value is False."""
    return mask.fillna(False).astype(bool)


def lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``table[key]`` for each key (missing: NA), keeping the table's dtype."""
    table = table[~table.index.duplicated(keep="last")]
    return pd.Series(table.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=table.dtype)


def is_missing(value: object) -> bool:
    """Whether a value read from a frame is missing (None, NaN, NA, NaT)."""
    return bool(pd.isna(cast(Any, value)))


def optional_text(value: object) -> str | None:
    """A value read from a frame as text, None when missing."""
    return None if is_missing(value) else str(value)
