"""Canonical events → JSON Lines text (``rftcost import-openai``'s output)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from rftcost.events.schema import (
    EVENT_COLUMNS,
)

__all__ = ["events_to_jsonl"]


def events_to_jsonl(events: pd.DataFrame) -> str:
    """Canonical events → JSON Lines text: ISO 8601 ``Z`` timestamps, empty fields left out."""
    if events.empty:
        return ""
    ts = events["ts"].dt.tz_convert("UTC")
    micros = ts.dt.microsecond
    fraction = ("." + micros.astype("string").str.zfill(6).str.rstrip("0")).where(micros > 0, "")
    table = events[list(EVENT_COLUMNS)].assign(
        ts=ts.dt.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    )
    # Rows with the same empty fields are rendered together, without those fields.
    present = table.notna().to_numpy()
    pattern = present.astype(np.int64) @ (
        np.int64(1) << np.arange(present.shape[1], dtype=np.int64)
    )
    rendered = []
    for _, group in table.groupby(pattern, sort=False):
        filled = group.loc[:, group.notna().all()]
        text = filled.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
        rendered.append(pd.Series(text.splitlines(), index=group.index, dtype="object"))
    lines = pd.concat(rendered).sort_index()
    return _UNESCAPED_SLASH.sub(r"\1/", "\n".join(lines) + "\n")


_UNESCAPED_SLASH = re.compile(r"(?<!\\)((?:\\\\)*)\\/")
"""pandas escapes ``/`` as ``\\/`` (valid JSON, hard to read): undo it outside escapes."""
