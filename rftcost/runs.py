"""Rows sorted by integer keys, and runs of sorted rows: the kernel's array primitives.

``timeline`` works on whole parts of a log at once; these are the few operations it
repeats on arrays of a part's size, kept exact and cheap:

- ``sorted_by``: a stable sort by two integer keys (``np.lexsort``'s order), on one
  packed key or by radix where the keys allow;
- ``new_runs``, ``running_sum``, ``running_max``: runs of equal keys among sorted rows,
  and sums and maxima within each run (no group-by);
- ``asof_join``: ``merge_asof`` on integer times and keys that keeps integers exact.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["asof_join", "new_runs", "running_max", "running_sum", "sorted_by"]


def asof_join(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    left_on: str,
    right_on: str,
    by: str | list[str],
    direction: Literal["backward", "forward", "nearest"] = "backward",
    allow_exact_matches: bool = True,
    any_order: bool = False,
) -> pd.DataFrame:
    """``merge_asof`` that keeps the right side's integers exact.

    ``any_order``: the rows may come in ``left``'s order rather than in time order
    (a caller that sorts them again spares a sort).

    A plain ``merge_asof`` turns an int64 column into float64 where a row finds no
    match, and float64 cannot hold nanosecond timestamps exactly (it steps by 256 ns
    around 2025). Integer payload columns are made nullable ``Int64`` first.

    The kernel's joins (integer times and keys, integer payloads, backward or forward)
    are done on arrays by ``_asof_arrays``: the same rows, without ``merge_asof``'s
    fixed cost, which a bill of a few hundred events pays several times.
    """
    keys = [by] if isinstance(by, str) else by
    if _asof_on_arrays(left, right, left_on, right_on, keys, direction):
        return _asof_arrays(
            left,
            right,
            left_on=left_on,
            right_on=right_on,
            keys=keys,
            forward=direction == "forward",
            allow_exact_matches=allow_exact_matches,
            in_left_order=any_order,
        )
    right = right.assign(_asof_key=right[right_on].astype("int64"))
    exact = {
        column: "Int64"
        for column in right.columns
        if column not in (*keys, "_asof_key") and right[column].dtype.kind in "iu"
    }
    merged = pd.merge_asof(
        left.sort_values(left_on, kind="stable"),
        right.astype(exact).sort_values("_asof_key", kind="stable"),
        left_on=left_on,
        right_on="_asof_key",
        by=by,
        direction=direction,
        allow_exact_matches=allow_exact_matches,
    )
    return merged.drop(columns="_asof_key")


def _asof_on_arrays(
    left: pd.DataFrame,
    right: pd.DataFrame,
    left_on: str,
    right_on: str,
    keys: list[str],
    direction: str,
) -> bool:
    """Whether ``_asof_arrays`` gives what ``merge_asof`` would: NumPy integer times and
    keys, integer payloads (plain or nullable), no column name on both sides."""
    payload = [c for c in right.columns if c not in keys]
    left_types, right_types = left.dtypes.to_dict(), right.dtypes.to_dict()
    return (
        direction in ("backward", "forward")
        and all(
            isinstance(types[c], np.dtype) and types[c].kind in "iu"
            for types, columns in ((left_types, [left_on, *keys]), (right_types, [right_on, *keys]))
            for c in columns
        )
        and all(right_types[c].kind in "iu" for c in payload)
        and not set(payload) & set(left.columns)
    )


def _asof_arrays(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    left_on: str,
    right_on: str,
    keys: list[str],
    forward: bool,
    allow_exact_matches: bool,
    in_left_order: bool = False,
) -> pd.DataFrame:
    """``merge_asof`` by sorting both sides together: left rows in time order (in their
    own order with ``in_left_order``), each with the right columns (``Int64``) of the
    latest right row of its keys at or before it (backward; the earliest at or after it,
    forward), strictly so without exact matches.

    Rows of both sides sorted by keys and time, stably (so neither side needs sorting
    first); at one time a right row comes before a left row when it may match it
    looking back (or when it may not, looking forward). A running maximum (minimum from
    the end) of right positions then finds each left row's match, which counts when
    its keys are the left row's keys."""
    left_columns: dict[str, Any] = {c: left[c].array for c in left.columns}
    right_columns: dict[str, Any] = {c: right[c].array for c in right.columns}
    n_left, n_right = len(left), len(right)
    group = _key_groups(
        [
            np.concatenate(
                [np.asarray(left_columns[k], dtype="int64"), np.asarray(right_columns[k], "int64")]
            )
            for k in keys
        ]
    )
    times = np.concatenate(
        [np.asarray(left_columns[left_on], "int64"), np.asarray(right_columns[right_on], "int64")]
    )
    right_first = allow_exact_matches != forward
    side = np.r_[np.full(n_left, int(right_first)), np.full(n_right, int(not right_first))]
    order = _by_group_time_and_side(group, times, side)
    is_right = order >= n_left
    # Right rows numbered in the joint order (increasing, so running extremes find them).
    rank = np.cumsum(is_right) - 1
    if forward:
        found = np.minimum.accumulate(np.where(is_right, rank, n_right)[::-1])[::-1]
    else:
        found = np.maximum.accumulate(np.where(is_right, rank, -1))
    right_in_order = order[is_right] - n_left
    left_in_order, found = order[~is_right], found[~is_right]
    valid = (found >= 0) & (found < n_right)
    valid[valid] = group[n_left + right_in_order[found[valid]]] == group[left_in_order[valid]]
    match = np.full(n_left, -1)
    match[left_in_order[valid]] = right_in_order[found[valid]]
    # One frame built from its columns (adding them one by one costs a copy of the
    # column index each).
    merged = dict(left_columns)
    for column, values in right_columns.items():
        if column in keys:
            continue
        if isinstance(values.dtype, np.dtype):  # plain integers: no NA to carry
            plain = np.append(np.asarray(values, dtype="int64"), 0)  # 0 under NA
            merged[column] = pd.arrays.IntegerArray(plain[match], match < 0)
        else:
            merged[column] = pd.array(values, dtype="Int64").take(match, allow_fill=True)
    left_ts = times[:n_left]
    if not in_left_order and not _ascending(left_ts):  # merge_asof's order: by time
        in_time_order = np.argsort(left_ts, kind="stable")
        merged = {c: values.take(in_time_order) for c, values in merged.items()}
    return pd.DataFrame(merged, index=pd.RangeIndex(n_left), copy=False)


def _ascending(values: np.ndarray) -> bool:
    """Whether ``values`` never decrease (one pass, cheaper than a sort)."""
    return len(values) < 2 or bool((values[1:] >= values[:-1]).all())


def _key_groups(keys: list[np.ndarray]) -> np.ndarray:
    """One integer per row equal for rows of equal keys (the order of groups does not
    matter to ``_asof_arrays``): the key itself, keys packed into one integer when
    their ranges leave room, else the rank of the distinct rows."""
    if len(keys) == 1:
        return keys[0]
    if not len(keys[0]):
        return np.zeros(0, dtype="int64")
    packed = np.zeros(len(keys[0]), dtype="int64")
    room = 1
    for key in keys:
        low = int(key.min())
        width = int(key.max()) - low + 1
        room *= width
        if room >= 2**62:
            unique = np.unique(np.stack(keys, axis=1), axis=0, return_inverse=True)
            inverse: np.ndarray = unique[1].reshape(-1)
            return inverse
        packed = packed * width + (key - low)
    return packed


def _by_group_time_and_side(group: np.ndarray, times: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Rows sorted by group, time and side (ties in input order): ``np.lexsort((side,
    times, group))``, time and side packed into one key when the span of times leaves room."""
    if len(times) == 0:
        return np.zeros(0, dtype="int64")
    low, high = int(times.min()), int(times.max())
    if (high - low) < (2**63 - 1) // 2 - 2:
        return sorted_by(group, (times - low) * 2 + side)
    return np.lexsort((side, times, group))


def sorted_by(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Rows sorted by ``major`` then ``minor`` (integers; ties kept in input order): what
    ``np.lexsort((minor, major))`` gives. A stable sort on ``minor``, then on ``major``;
    keys from 0 to 65,535 (job codes of a log of fewer jobs, phase codes) are sorted
    as 16-bit integers, which NumPy sorts by radix in linear time."""
    if not _fits_16_bits(major):
        return np.lexsort((minor, major))
    if not _fits_16_bits(minor):
        packed = _packed_in_runs(major, minor)
        if packed is not None:  # one sort, which finds the rows' runs already in order
            return np.argsort(packed, kind="stable")
    elif len(minor) and (int(major.max()) + 1) * (int(minor.max()) + 1) <= 0x10000:
        # Both keys together fit 16 bits (a part's jobs times its phases): one radix sort.
        both = major.astype(np.uint16)
        both *= int(minor.max()) + 1
        both += minor.astype(np.uint16)
        return np.argsort(both, kind="stable")
    by_minor = np.argsort(_narrowed(minor), kind="stable")
    by_major: np.ndarray = by_minor[np.argsort(major[by_minor].astype(np.uint16), kind="stable")]
    return by_major


def _packed_in_runs(major: np.ndarray, minor: np.ndarray) -> np.ndarray | None:
    """``major`` (0 to 65,535) and ``minor`` packed into one integer that sorts as the
    pair: ``minor`` less the least ``minor`` of its ``major``, beside ``major``; None when
    that does not fit, or when ``major`` comes in too many runs to find its least
    ``minor`` cheaply. Rows grouped by job (the usual case) come in one run per job,
    mostly in order already, which a stable sort on one integer key takes advantage of
    (a sort on ``minor`` first would scatter them)."""
    n = len(major)
    if n == 0 or int(minor.max()) - int(minor.min()) >= 2**62:
        return None
    starts = np.flatnonzero(new_runs(major))
    if len(starts) > n // 8:
        return None
    floor = np.full(int(major.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(floor, major[starts], np.minimum.reduceat(minor, starts))
    within = floor[major]
    np.subtract(minor, within, out=within)  # in place: fewer arrays of the part's size
    width = int(within.max()) + 1
    if len(floor) * width >= 2**62:
        return None
    packed: np.ndarray = major.astype(np.int64)
    packed *= width
    packed += within
    return packed


def _fits_16_bits(values: np.ndarray) -> bool:
    return len(values) == 0 or (int(values.min()) >= 0 and int(values.max()) <= 0xFFFF)


def _narrowed(values: np.ndarray) -> np.ndarray:
    """Values as 16-bit integers when they fit (a radix sort), else as they are."""
    return values.astype(np.uint16) if _fits_16_bits(values) else values


def new_runs(keys: np.ndarray) -> np.ndarray:
    """Whether each row starts a run of equal keys (the first row does)."""
    new_run = np.ones(len(keys), dtype=bool)
    new_run[1:] = keys[1:] != keys[:-1]
    return new_run


def running_sum(values: np.ndarray, new_run: np.ndarray) -> np.ndarray:
    """The running sum of ``values`` within each run of rows (``new_run`` marks a run's first)."""
    total: np.ndarray = np.cumsum(values)
    firsts = np.flatnonzero(new_run)  # positions: cheaper to apply than the mask
    before = total[firsts] - values[firsts]
    run = np.cumsum(new_run)
    run -= 1
    total -= before[run]  # in place: no second array of the rows' size
    return total


def running_max(values: np.ndarray, new_run: np.ndarray) -> np.ndarray:
    """The running maximum of integer ``values`` within each run of rows (``new_run``
    marks a run's first): one running maximum of the values lifted by their run's number
    times their span, so that no run reaches into the next (a group-by when they do not fit)."""
    run = np.cumsum(new_run) - 1
    low, high = int(values.min()), int(values.max())
    span = high - low + 1
    if (int(run[-1]) + 1) * span >= 2**62:
        grouped: np.ndarray = pd.Series(values).groupby(run, sort=False).cummax().to_numpy()
        return grouped
    lift = run * span - low
    reach: np.ndarray = np.maximum.accumulate(values + lift) - lift
    return reach
