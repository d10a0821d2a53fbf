"""Records set aside: de-duplication of events, and the frames of what was not used.

Two records with the same ``(job_id, event_id)`` and the same content are one event
read twice (a duplicate); with other content, the later one is a conflict (rejected).
Records without an ``event_id`` are duplicates when their whole content repeats, also
the content of a record with an ``event_id`` (which is the one kept).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rftcost.events.repeats import repeated_values
from rftcost.events.schema import CONTENT_COLUMNS, REJECTED_COLUMNS

__all__ = [
    "deduplicate",
    "empty_duplicates",
    "empty_rejected",
    "in_reading_order",
    "recoded",
]


def deduplicate(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split events (in file and line order) into (kept, duplicates, conflicts)."""
    n = len(events)
    has_id = events["event_id"].notna().to_numpy()
    # A repeated (job_id, event_id) needs a repeated event_id: look for those first
    # (cheap), then compare the exact keys of only those rows.
    repeated_id = has_id & repeated_values(events["event_id"])
    same_id = np.zeros(n, dtype=bool)
    if repeated_id.any():
        keys = events.loc[repeated_id, ["job_id", "event_id"]]
        same_id[repeated_id] = keys.duplicated(keep=False).to_numpy()
    same_content = np.zeros(n, dtype=bool)
    candidates = same_id | ~has_id
    if candidates.any():
        subset = events[candidates]
        columns = ["job_id", "event_id", *CONTENT_COLUMNS]
        same_content[candidates] = subset.duplicated(columns, keep="first").to_numpy()
    if has_id.any() and not has_id.all():
        same_content |= _copies_of_identified(events, has_id)
    if not same_id.any() and not same_content.any():
        # The usual case: nothing repeated, nothing to copy.
        return events.reset_index(drop=True), empty_duplicates(events), empty_rejected()
    duplicates = events[same_content]
    kept = events[~same_content]
    repeated = kept[same_id[~same_content]]
    conflict_in_repeated = repeated.duplicated(["job_id", "event_id"], keep="first")
    conflicting = repeated[conflict_in_repeated.to_numpy()]
    firsts = (
        repeated[~conflict_in_repeated.to_numpy()]
        .set_index(["job_id", "event_id"])
        .loc[
            pd.MultiIndex.from_tuples(
                list(zip(conflicting["job_id"], conflicting["event_id"], strict=True))
            ),
            ["source", "line"],
        ]
        if len(conflicting)
        else pd.DataFrame({"source": [], "line": []})
    )
    conflicts = pd.DataFrame(
        {
            "source": conflicting["source"].astype(str).to_numpy(),
            "line": conflicting["line"].to_numpy(),
            "job_id": conflicting["job_id"].astype(str).to_numpy(),
            "column": "event_id",
            "value": conflicting["event_id"].astype(str).to_numpy(),
            "reason": (
                "conflicting duplicate: event_id also used at "
                + firsts["source"].astype(str).to_numpy()
                + ":"
                + firsts["line"].astype(str).to_numpy()
                + " with other content"
            ),
        }
    )
    dup_frame = duplicates[["source", "line", "job_id", "event_id"]].reset_index(drop=True)
    drop = np.zeros(len(kept), dtype=bool)
    drop[np.flatnonzero(same_id[~same_content])[conflict_in_repeated.to_numpy()]] = True
    return kept[~drop].reset_index(drop=True), dup_frame, conflicts


def _copies_of_identified(events: pd.DataFrame, has_id: np.ndarray) -> np.ndarray:
    """Records without an ``event_id`` whose content is that of a record with one in
    their job: the same event from an export that does not carry ids (a CSV beside a
    JSON Lines export). The record with the id is kept wherever it comes in the reading
    order, so the bill is the same for any order (event-log.md: overlapping exports
    never change a bill). Only the jobs that hold both kinds are compared."""
    job = events["job_id"]
    mixed = job.isin(pd.unique(job[has_id])) & job.isin(pd.unique(job[~has_id]))
    copies = np.zeros(len(events), dtype=bool)
    if not mixed.any():
        return copies
    at = np.flatnonzero(mixed.to_numpy())
    identified = at[has_id[at]]
    anonymous = at[~has_id[at]]
    columns = ["job_id", *CONTENT_COLUMNS]
    # Identified records first: an anonymous one repeating any of them is marked.
    stacked = pd.concat(
        [events[columns].take(identified), events[columns].take(anonymous)], ignore_index=True
    )
    repeats = stacked.duplicated(keep="first").to_numpy()[len(identified) :]
    copies[anonymous[repeats]] = True
    return copies


def in_reading_order(parts: list[pd.DataFrame], read: list[pd.DataFrame]) -> pd.DataFrame:
    """Duplicates found in pieces, in the order ``deduplicate`` gives them when it sees
    the whole log: by file (as read) and line."""
    rank: dict[str, int] = {}
    for frame in read:
        for source in frame["source"].cat.categories.astype(str):
            rank.setdefault(source, len(rank))
    positions = []
    for part in parts:
        sources = part["source"].astype("category")
        by_code = np.array([rank.get(str(c), len(rank)) for c in sources.cat.categories] + [0])
        positions.append(by_code[sources.cat.codes.to_numpy()])
    lines = np.concatenate([p["line"].to_numpy(dtype="int64") for p in parts])
    order = np.lexsort((lines, np.concatenate(positions)))
    # Categorical columns stay categorical, over the union of their names.
    coded = [p.astype(dict.fromkeys(["source", "job_id"], "category")) for p in parts]
    unified = {
        c: pd.Index(sorted({str(v) for p in coded for v in p[c].cat.categories}), dtype=object)
        for c in ("source", "job_id")
    }
    joined = pd.concat(
        [p.assign(**{c: recoded(p[c], names) for c, names in unified.items()}) for p in coded],
        ignore_index=True,
    )
    columns = ["source", "line", "job_id", "event_id"]
    return joined[columns].take(order).reset_index(drop=True)


def empty_duplicates(events: pd.DataFrame) -> pd.DataFrame:
    # A copy: an empty slice would keep the whole frame alive.
    return events.iloc[0:0][["source", "line", "job_id", "event_id"]].copy()


def empty_rejected() -> pd.DataFrame:
    """An empty frame of rejected records (``REJECTED_COLUMNS``)."""
    return pd.DataFrame({col: pd.Series([], dtype="object") for col in REJECTED_COLUMNS})


def recoded(values: pd.Series, categories: pd.Index) -> pd.Series:
    """The same values as a categorical over ``categories`` (text categories, any dtype in)."""
    own = pd.Index(values.cat.categories.astype(str), dtype=object)
    mapping = categories.get_indexer(own)
    codes = values.cat.codes.to_numpy()
    recoded = np.where(codes >= 0, mapping[codes], -1) if len(own) else codes
    return pd.Series(pd.Categorical.from_codes(recoded, categories=categories), index=values.index)
