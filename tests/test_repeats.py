"""rftcost.events.repeats: repeated values found by fingerprints, exactly."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from rftcost.events.repeats import fingerprints, repeated_values

# Few letters and short lengths make repeats, near misses (one byte apart, the same
# start and end, the same length) and strings shorter than a window frequent.
_TEXTS = st.one_of(
    st.none(),
    st.text(alphabet="ab\x00é😀", max_size=20),
    st.builds(lambda middle: "ftevent-0123456789" + middle + "-end", st.text("xy", max_size=3)),
)


@given(st.lists(_TEXTS, max_size=60), st.sampled_from(["string", "object", "category"]))
def test_repeated_values_are_exactly_the_duplicated_ones(
    texts: list[str | None], dtype: str
) -> None:
    values = pd.Series(texts, dtype=dtype)
    expected = (values.duplicated(keep=False) & values.notna()).to_numpy()
    assert repeated_values(values).tolist() == expected.tolist()


@given(st.lists(st.text(max_size=30), min_size=1, max_size=40), st.integers(0, 5))
def test_equal_strings_have_equal_fingerprints_in_any_slice(texts: list[str], skip: int) -> None:
    whole = pa.array(texts * 2, pa.large_string()).slice(min(skip, len(texts) - 1))
    prints = fingerprints(whole)
    values = whole.to_pylist()
    for i, value in enumerate(values):
        for j in range(i):
            if values[j] == value:
                assert prints[i] == prints[j]


def test_a_log_without_repeats_is_settled_without_comparing_text() -> None:
    ids = pd.Series([f"ftevent-{i:08d}" for i in range(10_000)], dtype="string")
    assert not repeated_values(ids).any()
    assert len(set(fingerprints(pa.array(ids.array, pa.large_string())).tolist())) == 10_000
