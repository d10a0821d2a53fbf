"""The kernel's array primitives give what NumPy and pandas give, on the shapes a log
takes (rows grouped by job, mostly in time order) and on any other."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rftcost.runs import asof_join, new_runs, running_max, running_sum, sorted_by


def _cases(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    n = 2_000
    grouped_jobs = np.repeat(rng.permutation(40), rng.multinomial(n, [1 / 40] * 40))
    in_time = np.cumsum(rng.integers(0, 3, n)) * 1_000_000_000
    return [
        (grouped_jobs, in_time),  # a log written job by job
        (grouped_jobs, rng.integers(0, 50, n)),  # both keys in 16 bits: one radix sort
        (rng.integers(0, 3_000, n), rng.integers(0, 3_000, n)),  # each in 16 bits: two
        (rng.integers(0, 40, n), in_time),  # jobs interleaved
        (rng.integers(0, 40, n), rng.integers(-(2**62), 2**62, n)),  # too wide to pack
        (rng.integers(0, 70_000, n), in_time),  # more jobs than 16 bits hold
        (np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")),
    ]


@pytest.mark.parametrize("seed", range(5))
def test_sorted_by_is_lexsort(seed: int) -> None:
    for major, minor in _cases(np.random.default_rng(seed)):
        expected = np.lexsort((minor, major))
        assert np.array_equal(sorted_by(major, minor), expected)


@pytest.mark.parametrize("seed", range(5))
def test_running_sums_and_maxima_are_group_bys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for key, values in _cases(rng)[:3]:
        ordered = np.sort(key, kind="stable")
        starts = new_runs(ordered)
        run = np.cumsum(starts)
        grouped = pd.Series(values).groupby(run)
        assert np.array_equal(running_sum(values, starts), grouped.cumsum().to_numpy())
        assert np.array_equal(running_max(values, starts), grouped.cummax().to_numpy())
    wide = np.array([-(2**62), 2**62, 0, 5], dtype="int64")  # too wide to lift: group-by
    starts = np.array([True, False, True, False])
    assert list(running_max(wide, starts)) == [-(2**62), 2**62, 0, 5]


def _pandas_asof(
    left: pd.DataFrame, right: pd.DataFrame, by: list[str], **options: object
) -> pd.DataFrame:
    """``merge_asof`` with the right side's integers made nullable (exact where no row
    matches), joined on a plain copy of the right side's time."""
    exact = {c: "Int64" for c in right.columns if c not in by}
    right = right.astype(exact).assign(key=right["at"])
    return pd.merge_asof(
        left.sort_values("ts", kind="stable"),
        right.sort_values("key", kind="stable"),
        left_on="ts",
        right_on="key",
        by=by,
        **options,  # type: ignore[arg-type]
    ).drop(columns="key")


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("direction", ["backward", "forward"])
@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("by", [["job"], ["job", "step"]])
def test_asof_join_is_merge_asof(seed: int, direction: str, exact: bool, by: list[str]) -> None:
    rng = np.random.default_rng(seed)
    left = pd.DataFrame(
        {
            "job": rng.integers(0, 5, 300),
            "step": rng.integers(0, 3, 300),
            "ts": rng.integers(0, 100, 300) * 10**9,
        }
    )
    right = pd.DataFrame(
        {
            "job": rng.integers(0, 5, 80),
            "step": rng.integers(0, 3, 80),
            "at": rng.integers(0, 100, 80) * 10**9,
            "payload": rng.integers(0, 10**18, 80),
        }
    )
    if by == ["job"]:
        right = right.drop(columns="step")
    elif seed == 0:  # keys too wide to pack into one integer: numbered as distinct rows
        left["step"] *= 2**61
        right["step"] *= 2**61
    options = {"direction": direction, "allow_exact_matches": exact}
    joined = asof_join(left, right, left_on="ts", right_on="at", by=by, **options)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(joined, _pandas_asof(left, right, by, **options))
    # In the left side's order, the same rows.
    unordered = asof_join(
        left,
        right,
        left_on="ts",
        right_on="at",
        by=by,
        any_order=True,
        **options,  # type: ignore[arg-type]
    )
    back = unordered.take(np.argsort(unordered["ts"].to_numpy(), kind="stable"))
    pd.testing.assert_frame_equal(back.reset_index(drop=True), joined)
