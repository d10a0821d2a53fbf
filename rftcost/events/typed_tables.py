"""Normalizing a typed Arrow table (a Parquet log) with column-wide checks, no per-row work.

A Parquet log written by a program has typed columns: text (dictionary-encoded when
read), a timezone-aware timestamp, integer counts, a boolean. For such a table every
rule of ``readers.normalize_records`` is checked here on whole columns, most of them
on a dictionary's few values and the integer codes that point into it (membership,
stripping, null masks), the rest with Arrow's ``min_max`` (ranges) and NumPy masks.

When every record passes, the event frame is built straight from the Arrow buffers:
the same columns, dtypes, categories and values as ``normalize_records`` gives (a
test compares the two). When any record fails a check, or a column has a type this
path does not handle (text timestamps, floats in a count column, binary names...),
``normalize_table`` returns ``None`` and the reader runs ``normalize_records`` on the
pandas frame: rejected records, their reasons and raw values come from that one
place, word for word.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rftcost.events.schema import (
    BOOL_COLUMNS,
    CATEGORY_COLUMNS,
    EVENT_COLUMNS,
    EVENTS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    MAX_COUNT,
    REQUIRED_BY_EVENT,
    STRING_COLUMNS,
)
from rftcost.policy import Policy

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["dictionary_codes", "normalize_table", "present_slots"]

_MIN_NS = 0  # as the readers: since 1970, so no two times are 2**63 ns apart
_MAX_NS = int(pd.Timestamp.max.value)
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


class _Unclean(Exception):
    """A record fails a check, or a column is not of a type handled here."""


def normalize_table(
    table: pa.Table, *, source: str, first_line: int, policy: Policy
) -> pd.DataFrame | None:
    """The event frame of ``table`` when every record is valid, else ``None``.

    ``first_line`` is the line (row number, 1-based) of the table's first row. Only
    a timestamp with a time zone is handled (no ``--assume-tz`` is then involved).
    """
    names = table.column_names
    if (
        table.num_rows == 0
        or len(set(names)) != len(names)
        or "source" in names
        or not {"job_id", "ts", "event"} <= set(names)
    ):
        return None
    try:
        return _normalized(table, source=source, first_line=first_line, policy=policy)
    except _Unclean:
        return None


def _normalized(table: pa.Table, *, source: str, first_line: int, policy: Policy) -> pd.DataFrame:
    n = table.num_rows
    text = {col: _text_column(table, col, n) for col in STRING_COLUMNS}

    job_id, event = text["job_id"], text["event"]
    _require(not job_id.isna().any())
    _require(not event.isna().any())
    _require(_used_categories_within(event, EVENTS))
    is_event = {name: _code_mask(event, name) for name in ("phase_start", "phase_end")}

    ts = _timestamps(table)

    phase = text["phase"]
    aliases = policy.phases.aliases
    if aliases:  # as normalize_records does: the names mapped, then categorical again
        phase = phase.astype("string").replace(aliases)
    needs_phase = is_event["phase_start"] | is_event["phase_end"]
    known = set(policy.phases.known)
    phase_known = phase.isin(known).to_numpy(dtype=bool)
    _require(bool((phase_known | ~needs_phase).all()))  # also: a phase event has a phase
    text["phase"] = phase

    numbers: dict[str, pd.api.extensions.ExtensionArray] = {}
    nulls: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}  # the values as read: what a null slot holds is moot
    for col in INT_COLUMNS:
        counts[col], nulls[col] = _integers(table, col, n)
        numbers[col] = pd.arrays.IntegerArray(counts[col], nulls[col])
    for col in FLOAT_COLUMNS:
        numbers[col], nulls[col] = _floats(table, col, n)
    flags = {col: _booleans(table, col, n) for col in BOOL_COLUMNS}

    for name, required in REQUIRED_BY_EVENT.items():
        rows = _code_mask(event, name) if name not in is_event else is_event[name]
        if not rows.any():
            continue
        for col in required:
            missing = text[col].isna().to_numpy() if col in text else nulls[col]
            _require(not (rows & missing).any())

    # R9: input includes cached; cached usage not given on grader usage is 0.
    cached_values = counts["cached_input_tokens"]
    both = ~nulls["input_tokens"] & ~nulls["cached_input_tokens"]
    _require(not ((cached_values > counts["input_tokens"]) & both).any())
    fill = _code_mask(event, "grader_usage") & nulls["cached_input_tokens"]
    if fill.any():
        numbers["cached_input_tokens"] = pd.arrays.IntegerArray(
            np.where(fill, 0, cached_values), nulls["cached_input_tokens"] & ~fill
        )

    columns: dict[str, Any] = {
        **text,
        "ts": ts,
        **numbers,
        **flags,
        "source": pd.Categorical.from_codes(
            np.zeros(n, dtype="int8"), categories=pd.Index([source], dtype="string")
        ),
        "line": np.arange(first_line, first_line + n, dtype="int64"),
    }
    frame = pd.DataFrame(columns, copy=False)[[*EVENT_COLUMNS, "source", "line"]]
    return frame.astype(dict.fromkeys(CATEGORY_COLUMNS, "category"))


def _require(condition: bool) -> None:
    if not condition:
        raise _Unclean


def _code_mask(values: pd.Series, name: str) -> np.ndarray:
    """Rows of a categorical equal to ``name`` (a comparison of integer codes)."""
    categories = list(values.cat.categories)
    if name not in categories:
        return np.zeros(len(values), dtype=bool)
    return np.asarray(values.cat.codes.to_numpy() == categories.index(name))


def _used_categories_within(values: pd.Series, allowed: tuple[str, ...]) -> bool:
    outside = ~values.cat.categories.isin(allowed)
    if not outside.any():
        return True
    codes = values.cat.codes.to_numpy()
    used = np.bincount(codes[codes >= 0], minlength=len(outside)) > 0
    return not (used & outside).any()


def _text_column(table: pa.Table, col: str, n: int) -> pd.Series:
    """A text column, stripped, blank as NA: categorical for ``CATEGORY_COLUMNS``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if col not in table.column_names:
        if col in CATEGORY_COLUMNS:
            return pd.Series(
                pd.Categorical.from_codes(
                    np.full(n, -1, dtype="int8"), categories=pd.Index([], dtype="string")
                )
            )
        return pd.Series(pd.NA, index=pd.RangeIndex(n), dtype="string")
    column = table[col]
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    _require(pa.types.is_string(kind) or pa.types.is_large_string(kind))
    if col not in CATEGORY_COLUMNS:
        # Stored as a dictionary (a pandas categorical written as is): pandas reads it as
        # a categorical, which the general path keeps; leave it to that path.
        _require(not pa.types.is_dictionary(column.type))
        # pandas' own ``str.strip`` on Arrow strings is this kernel: the same white space
        # (and the same error on text that is not UTF-8).
        stripped = pc.utf8_trim_whitespace(column)
        # A blank value is one of length 0 once stripped: a minimum, not a pass of text.
        if pc.min(pc.binary_length(stripped)).as_py() == 0:
            blank = pc.equal(stripped, "")
            stripped = pc.if_else(blank, pa.scalar(None, stripped.type), stripped)
        values: pd.Series = stripped.to_pandas().astype("string")
        return values
    _require(pa.types.is_dictionary(column.type))
    # The categorical straight from the codes (no Python per row), over the dictionary
    # as pandas unifies a column's pieces.
    dictionary, codes, present = dictionary_codes(column)
    _require(dictionary.null_count == 0)
    # Python's ``str.strip`` on the dictionary's few names, as the general path strips.
    stripped_names = [name.strip() for name in dictionary.to_pylist()]
    # Two names equal once stripped, or a blank name: the general path handles those.
    _require(len(set(stripped_names)) == len(stripped_names) and "" not in stripped_names)
    if present is not None:
        codes = np.where(present, codes, -1)
    categories = pd.CategoricalDtype(pd.Index(stripped_names))  # as the general path infers it
    return pd.Series(pd.Categorical.from_codes(codes, dtype=categories, validate=False))


def dictionary_codes(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, np.ndarray | None]:
    """A dictionary column as ``(dictionary, codes, present)``: the dictionary (its
    pieces' unified in order when they differ, as ``combine_chunks`` and pandas unify
    them), each row's code (0 for a null row) and which rows are not null (``None``:
    all). Pieces of one dictionary (slices of a row group) are not copied into one."""
    chunks = [chunk for chunk in column.chunks if len(chunk)] or column.chunks
    if not chunks or any(not c.dictionary.equals(chunks[0].dictionary) for c in chunks[1:]):
        chunks = [column.combine_chunks()]
    codes, present = [], []
    for chunk in chunks:
        indices = chunk.indices
        valid = present_slots(indices)
        if valid is None:
            codes.append(np.asarray(indices.to_numpy(zero_copy_only=False)))
            present.append(np.ones(len(indices), dtype=bool))
        else:
            width = indices.type.bit_width // 8
            raw = np.frombuffer(
                indices.buffers()[1],
                dtype=indices.type.to_pandas_dtype(),
                count=len(indices),
                offset=indices.offset * width,
            )
            codes.append(np.where(valid, raw, 0))  # what a null slot holds is moot
            present.append(valid)
    dictionary: pa.Array = chunks[0].dictionary
    all_codes = codes[0] if len(codes) == 1 else np.concatenate(codes)
    all_present = present[0] if len(present) == 1 else np.concatenate(present)
    return dictionary, all_codes, None if all_present.all() else all_present


def _timestamps(table: pa.Table) -> np.ndarray:
    """UTC nanoseconds of a timezone-aware timestamp column, all present and in range."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table["ts"]
    _require(pa.types.is_timestamp(column.type) and column.type.tz is not None)
    _require(column.null_count == 0)
    factor = _NS_PER_UNIT[column.type.unit]
    raw = column.cast(pa.int64())
    bounds = pc.min_max(raw)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    _require(low * factor >= _MIN_NS and high * factor <= _MAX_NS)
    values = np.asarray(raw.to_numpy(), dtype="int64")
    return values * factor if factor != 1 else values


def _present(table: pa.Table, col: str, n: int) -> tuple[Any, np.ndarray] | None:
    if col not in table.column_names:
        return None
    column = table[col]
    return column, _missing(column)


def _missing(column: Any) -> np.ndarray:
    """Which rows of a chunked Arrow column are null, read from the validity bitmaps."""
    masks = []
    for chunk in column.chunks:
        present = present_slots(chunk)
        masks.append(np.zeros(len(chunk), dtype=bool) if present is None else ~present)
    return np.concatenate(masks) if masks else np.zeros(0, dtype=bool)


def present_slots(array: pa.Array) -> np.ndarray | None:
    """Which slots of one Arrow array hold a value (its validity bitmap as booleans);
    ``None`` when all of them do."""
    if array.null_count == 0:
        return None
    bitmap = array.buffers()[0]
    if bitmap is None:  # nulls without a bitmap: an array of the null type
        return np.zeros(len(array), dtype=bool)
    end = array.offset + len(array)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=end, bitorder="little")
    return bits[array.offset :].view(bool)


def _integers(table: pa.Table, col: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A count column (R9 tokens, steps, settings): integers from 0 to ``MAX_COUNT``, as
    ``(values, missing)``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = _present(table, col, n)
    if found is None:
        return np.zeros(n, dtype="int64"), np.ones(n, dtype=bool)
    column, missing = found
    _require(pa.types.is_integer(column.type))
    bounds = pc.min_max(column)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    _require(low is None or (low >= 0 and high <= MAX_COUNT))
    return _values(_cast(column, pa.int64()), "int64"), missing


def _floats(table: pa.Table, col: str, n: int) -> tuple[pd.arrays.FloatingArray, np.ndarray]:
    """A setting held as a float (never money): finite and not negative."""
    import pyarrow as pa

    found = _present(table, col, n)
    if found is None:
        missing = np.ones(n, dtype=bool)
        return pd.arrays.FloatingArray(np.zeros(n, dtype="float64"), missing), missing
    column, null = found
    _require(pa.types.is_floating(column.type) or pa.types.is_integer(column.type))
    values = _values(_cast(column, pa.float64()), "float64")
    # NaN is missing, as pandas' Float64 has it.
    missing = np.isnan(values) | null
    present = values[~missing]
    _require(bool(np.isfinite(present).all() and (present >= 0).all()))
    return pd.arrays.FloatingArray(np.where(missing, 0.0, values), missing), missing


def _booleans(table: pa.Table, col: str, n: int) -> pd.arrays.BooleanArray:
    import pyarrow as pa

    found = _present(table, col, n)
    if found is None:
        return pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool))
    column, missing = found
    _require(pa.types.is_boolean(column.type))
    # The values bitmap as booleans, a null slot False (as a fill of the nulls gives).
    pieces = []
    for chunk in column.chunks:
        end = chunk.offset + len(chunk)
        bits = np.unpackbits(
            np.frombuffer(chunk.buffers()[1], dtype=np.uint8), count=end, bitorder="little"
        )
        pieces.append(bits[chunk.offset :].view(bool))
    values = np.concatenate(pieces) if pieces else np.zeros(0, dtype=bool)
    return pd.arrays.BooleanArray(values & ~missing, missing)


def _cast(column: Any, kind: Any) -> Any:
    """``column`` as ``kind`` (as it is when it is of that type already)."""
    return column if column.type == kind else column.cast(kind)


def _values(column: Any, dtype: str) -> np.ndarray:
    """The values buffers of a fixed-width column as NumPy (one copy when it is in
    pieces), without filling its nulls (what a null slot holds does not matter: the mask
    says it is missing)."""
    chunks = column.chunks if hasattr(column, "chunks") else [column]
    width = np.dtype(dtype).itemsize
    pieces = [
        np.frombuffer(
            chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * width
        )
        for chunk in chunks
        if len(chunk)
    ]
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)
