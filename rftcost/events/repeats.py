"""Which values of a text column occur more than once, without hashing every string.

De-duplication (event-log.md) needs the event ids that repeat, and a log usually
has none. Hashing every id in a hash table costs about 0.4 µs per id (a third of
reading a large log); instead each id gets a 64-bit fingerprint computed on whole
arrays from its length and three 8-byte windows (start, middle, end) read straight
from Arrow's buffers, and only the ids whose fingerprint repeats are compared as
text. Equal strings have equal fingerprints, so no repeat is missed; a fingerprint
shared by different strings only costs an exact comparison of those few.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["fingerprints", "repeated_values"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def repeated_values(values: pd.Series) -> np.ndarray:
    """Whether each value occurs more than once (missing values never do)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values.dtype, pd.CategoricalDtype):
        return np.asarray(values.duplicated(keep=False) & values.notna(), dtype=bool)
    # Chunk by chunk (a column read from Parquet comes in pieces): no copy of the text.
    array = _large_strings(pa.array(values.array, from_pandas=True))
    present = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    pieces = [fingerprints(chunk) for chunk in array.chunks]
    prints = (np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint64))[present]
    found = np.zeros(len(values), dtype=bool)
    ordered = np.sort(prints)  # (numpy's hashed ``unique`` is slower than a sort here)
    if not (ordered[1:] == ordered[:-1]).any():  # the usual log: settled without any text
        return found
    candidates = np.flatnonzero(present)[
        pd.Series(prints).duplicated(keep=False).to_numpy(dtype=bool)
    ]
    texts = array.take(pa.array(candidates))
    counts = pc.value_counts(texts)
    repeats = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    found[candidates] = np.asarray(
        pc.is_in(texts, value_set=repeats).to_numpy(zero_copy_only=False), dtype=bool
    )
    return found


def fingerprints(array: Any) -> np.ndarray:
    """A 64-bit fingerprint of each string of an Arrow ``large_string`` array (0 for a
    null): equal strings, equal fingerprints."""
    n = len(array)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + n + 1]
    starts, ends = offsets[:-1], offsets[1:]
    data = array.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    if len(raw) < 8:  # too short for one word: a padded copy (of at most 7 bytes)
        raw = np.concatenate([raw, np.zeros(8, dtype=np.uint8)])
    # Unaligned 8-byte words at every byte offset of the data, without a copy of it.
    words = np.ndarray(shape=(len(raw) - 7,), dtype="<u8", buffer=raw, strides=(1,))
    last_word = len(raw) - 8
    # Only a string starting in the data's last 7 bytes reads a word past its end (a
    # middle or end window of a longer string ends inside it); offsets only grow, so
    # those strings are the last ones: the others' words are read as they are.
    inside = int(np.searchsorted(starts, last_word, side="right"))

    def word_at(at: np.ndarray) -> np.ndarray:
        if inside == n:
            found: np.ndarray = words[at]
            return found
        # A word running past the data is the last word shifted: zeros come in on top.
        tail = at[inside:]
        beyond = np.clip(tail - last_word, 0, 7).astype(np.uint64)
        shifted = words[np.minimum(tail, last_word)] >> (beyond * np.uint64(8))
        return np.concatenate([words[at[:inside]], shifted])

    lengths = (ends - starts).astype(np.uint64)
    middle = np.maximum(starts + (ends - starts) // 2 - 4, starts)
    last = np.maximum(ends - 8, starts)
    if n and int(lengths.min()) >= 8:  # no string shorter than a window: nothing to mask
        value = _mix((lengths * _GOLDEN) ^ word_at(starts))
        value ^= word_at(middle)
        value = _mix(value)
        value ^= word_at(last)
        return _mix(value)
    # Bytes past the end of a string shorter than 8 are masked off (little-endian words).
    keep = np.where(
        lengths < 8,
        (np.uint64(1) << (lengths * np.uint64(8) % np.uint64(64))) - np.uint64(1),
        ~np.uint64(0),
    )
    value = _mix(lengths * _GOLDEN ^ (word_at(starts) & keep))
    value = _mix(value ^ (word_at(middle) & keep))
    return _mix(value ^ (word_at(last) & keep))


def _large_strings(array: Any) -> Any:
    """``array`` as a chunked Arrow ``large_string`` array (its chunks as they are)."""
    import pyarrow as pa

    if not isinstance(array, pa.ChunkedArray):
        array = pa.chunked_array([array])
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if not pa.types.is_large_string(array.type):
        array = array.cast(pa.large_string())
    return array


def _mix(value: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches every output bit (in place: the
    caller's array is a temporary of its own)."""
    value ^= value >> np.uint64(30)
    value *= _MIX_1
    value ^= value >> np.uint64(27)
    value *= _MIX_2
    value ^= value >> np.uint64(31)
    return value
