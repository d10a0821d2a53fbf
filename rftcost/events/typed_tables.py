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

__all__ = [
    "dictionary_codes",
    "normalize_table",
    "own_dictionaries",
    "present_slots",
    "undecoded_text_as_bytes",
]

_MIN_NS = 0  # as the readers: since 1970, so no two times are 2**63 ns apart
_MAX_NS = int(pd.Timestamp.max.value)
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


_FEW_CODES = 16  # up to this many, which codes occur is asked code by code


class _Unclean(Exception):
    """A record fails a check, or a column is not of a type handled here."""


def normalize_table(
    table: pa.Table,
    *,
    source: str,
    first_line: int,
    policy: Policy,
    own_categories: bool = False,
) -> pd.DataFrame | None:
    """The event frame of ``table`` when every record is valid, else ``None``.

    ``first_line`` is the line (row number, 1-based) of the table's first row. Only
    a timestamp with a time zone is handled (no ``--assume-tz`` is then involved).
    ``own_categories``: a categorical column's categories are the values its rows use,
    as in ``own_dictionaries(table)`` (checked on those values only).
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
        return _normalized(
            table, source=source, first_line=first_line, policy=policy, own=own_categories
        )
    except (_Unclean, UnicodeDecodeError):
        # A text column that is not UTF-8 (Parquet does not check): the general path
        # rejects those records one by one.
        return None


def _normalized(
    table: pa.Table, *, source: str, first_line: int, policy: Policy, own: bool
) -> pd.DataFrame:
    n = table.num_rows
    text = {col: _text_column(table, col, n, own) for col in STRING_COLUMNS}

    job_id, event = text["job_id"], text["event"]
    _require(not job_id.isna().any())
    _require(not event.isna().any())
    _require(_used_categories_within(event, EVENTS))
    event_codes, event_names = event.cat.codes.to_numpy(), list(event.cat.categories)

    def event_rows(name: str) -> np.ndarray:
        """Rows of the event ``name`` (a comparison of integer codes)."""
        if name not in event_names:
            return np.zeros(n, dtype=bool)
        return np.asarray(event_codes == event_names.index(name))

    is_event = {name: event_rows(name) for name in ("phase_start", "phase_end")}

    ts = _timestamps(table)

    phase = text["phase"]
    aliases = policy.phases.aliases
    if aliases:  # as normalize_records does: the names mapped, then categorical again
        phase = phase.astype("string").replace(aliases)
    needs_phase = is_event["phase_start"] | is_event["phase_end"]
    known = set(policy.phases.known)
    if isinstance(phase.dtype, pd.CategoricalDtype):  # the names checked, not the rows
        by_code = np.append(phase.cat.categories.isin(known), False)  # code -1: no phase
        phase_known = by_code[phase.cat.codes.to_numpy()]
    else:
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
        rows = event_rows(name) if name not in is_event else is_event[name]
        if not rows.any():
            continue
        for col in required:
            missing = text[col].isna().to_numpy() if col in text else nulls[col]
            _require(not (rows & missing).any())

    # R9: input includes cached; cached usage not given on grader usage is 0.
    cached_values = counts["cached_input_tokens"]
    both = ~nulls["input_tokens"] & ~nulls["cached_input_tokens"]
    _require(not ((cached_values > counts["input_tokens"]) & both).any())
    fill = event_rows("grader_usage") & nulls["cached_input_tokens"]
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
    order = [*EVENT_COLUMNS, "source", "line"]
    frame = pd.DataFrame({col: columns[col] for col in order}, copy=False)
    # Only what is not categorical yet (a phase renamed by aliases): the rest is as is.
    plain = [c for c in CATEGORY_COLUMNS if not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    return frame.astype(dict.fromkeys(plain, "category")) if plain else frame


def _require(condition: bool) -> None:
    if not condition:
        raise _Unclean


def _used_categories_within(values: pd.Series, allowed: tuple[str, ...]) -> bool:
    outside = ~values.cat.categories.isin(allowed)
    if not outside.any():
        return True
    codes = values.cat.codes.to_numpy()
    used = np.bincount(codes[codes >= 0], minlength=len(outside)) > 0
    return not (used & outside).any()


def _text_column(table: pa.Table, col: str, n: int, own: bool) -> pd.Series:
    """A text column, stripped, blank as NA: categorical for ``CATEGORY_COLUMNS`` (over
    the values its rows use when ``own``, as ``own_dictionaries`` leaves them)."""
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
        if _trims_nothing(column):
            unchanged: pd.Series = column.to_pandas().astype("string")
            return unchanged
        # pandas' own ``str.strip`` on Arrow strings is this kernel: the same white space
        # (and the same error on text that is not UTF-8 at either end).
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
    if own and len(dictionary):
        if column.null_count == n:  # no value: the null rows' code 0 is the only one
            used = np.arange(len(dictionary)) == 0
            codes = np.zeros(n, dtype="int8")
        else:
            used = _used_codes(codes, len(dictionary))
            if not used.all():
                codes = (np.cumsum(used) - 1).astype(_code_type(int(used.sum())))[codes]
        if not used.all():
            dictionary = dictionary.filter(pa.array(used))
    if present is not None:  # a null row's code -1, in place (the codes are a copy)
        codes += 1
        codes *= present
        codes -= 1
    _require(dictionary.null_count == 0)
    # Python's ``str.strip`` on the dictionary's few names, as the general path strips.
    stripped_names = [name.strip() for name in dictionary.to_pylist()]
    # Two names equal once stripped, or a blank name: the general path handles those.
    _require(len(set(stripped_names)) == len(stripped_names) and "" not in stripped_names)
    categories = pd.CategoricalDtype(pd.Index(stripped_names))  # as the general path infers it
    return pd.Series(pd.Categorical.from_codes(codes, dtype=categories, validate=False))


def _trims_nothing(column: pa.ChunkedArray) -> bool:
    """Whether every value of a text column begins and ends with printable ASCII (a
    byte from ``!`` to ``~``), read from the first and last byte of each: then stripping
    changes nothing, raises nothing, and no value is blank."""
    import pyarrow as pa

    for chunk in column.chunks:
        if chunk.null_count == len(chunk):
            continue
        offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets: np.ndarray = np.frombuffer(
            chunk.buffers()[1],
            dtype=offset_type,
            count=len(chunk) + 1,
            offset=chunk.offset * np.dtype(offset_type).itemsize,
        )
        data = chunk.buffers()[2]
        if data is None:
            return False  # every value empty
        text = np.frombuffer(data, dtype=np.uint8)
        starts, ends = offsets[:-1], offsets[1:]  # positions in the data buffer itself
        present = present_slots(chunk)
        if present is not None:
            starts, ends = starts[present], ends[present]
        if not (ends > starts).all():
            return False
        for edge in (text[starts], text[ends - 1]):
            if not ((edge > 0x20) & (edge < 0x7F)).all():
                return False
    return True


def dictionary_codes(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, np.ndarray | None]:
    """A dictionary column as ``(dictionary, codes, present)``: the dictionary (its
    pieces' unified in order when they differ, as ``combine_chunks`` and pandas unify
    them), each row's code (0 for a null row; in the smallest integers that
    hold the dictionary's positions, as pandas keeps codes) and which rows are not null
    (``None``: all). Pieces of one dictionary (slices of a row group) are not copied
    into one first."""
    chunks = column.chunks
    if not chunks or any(not c.dictionary.equals(chunks[0].dictionary) for c in chunks[1:]):
        chunks = [column.combine_chunks()]
    dictionary: pa.Array = chunks[0].dictionary
    codes = np.empty(sum(len(chunk) for chunk in chunks), dtype=_code_type(len(dictionary)))
    present = np.ones(len(codes), dtype=bool)
    every_present = True
    at = 0
    for chunk in chunks:
        indices = chunk.indices
        end = at + len(indices)
        if indices.null_count == len(indices):  # no value: nothing to read
            codes[at:end] = 0
            present[at:end] = False
            every_present = every_present and not len(indices)
            at = end
            continue
        # The index buffer as it is (a null slot holds anything: overwritten below).
        codes[at:end] = np.frombuffer(
            indices.buffers()[1],
            dtype=indices.type.to_pandas_dtype(),
            count=len(indices),
            offset=indices.offset * (indices.type.bit_width // 8),
        )
        valid = present_slots(indices)
        if valid is not None:
            every_present = False
            present[at:end] = valid
            # 0 where not valid (what a null slot held, multiplied by 0): quicker than a
            # masked copy.
            codes[at:end] *= valid
        at = end
    return dictionary, codes, None if every_present else present


def own_dictionaries(table: pa.Table) -> pa.Table:
    """``table`` with each dictionary column holding only the values its rows use.

    A slice of a row group keeps the whole group's dictionary: other parts' job ids,
    and any name only another part's (rejected) records have; a part of a log billed
    in job runs is validated and billed as if read alone, so its categories are its
    own (``normalize_table(own_categories=True)`` gives the same categories). A null
    row counts as using the dictionary's first value, which the categories then keep.
    """
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if not pa.types.is_dictionary(field.type):
            continue
        column = table.column(index)
        dictionary, codes, present = dictionary_codes(column)
        if not len(dictionary):
            continue  # no value (every row null): nothing to drop
        used = _used_codes(codes, len(dictionary))
        if used.all():
            continue
        # Each code's position among the values used, as the column's own index type.
        index_type = field.type.index_type
        renumbered = (np.cumsum(used) - 1).astype(index_type.to_pandas_dtype())[codes]
        validity = (
            None if present is None else pa.py_buffer(np.packbits(present, bitorder="little"))
        )
        indices = pa.Array.from_buffers(
            index_type,
            len(renumbered),
            [validity, pa.py_buffer(renumbered)],
            null_count=0 if present is None else len(present) - int(np.count_nonzero(present)),
        )
        owned = pa.DictionaryArray.from_arrays(indices, dictionary.filter(pa.array(used)))
        table = table.set_column(index, field.name, owned)
    return table


def _used_codes(codes: np.ndarray, size: int) -> np.ndarray:
    """Which of ``size`` codes occur in ``codes`` (codes of the dictionary's positions;
    a null row's is 0, so it counts as using the first value, as it always has)."""
    if size <= _FEW_CODES:  # a comparison per code is quicker than counting them all
        return np.array([bool((codes == code).any()) for code in range(size)], dtype=bool)
    return np.asarray(np.bincount(codes, minlength=size) > 0)


def _code_type(size: int) -> type[np.signedinteger[Any]]:
    """The integers pandas keeps a categorical's codes in, for ``size`` categories."""
    for kind in (np.int8, np.int16, np.int32):
        if size < np.iinfo(kind).max:
            return kind
    return np.int64


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
    present = np.ones(len(column), dtype=bool)
    at = 0
    for chunk in column.chunks:
        valid = present_slots(chunk)
        if valid is not None:
            present[at : at + len(chunk)] = valid
        at += len(chunk)
    return np.logical_not(present, out=present)


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
    if column.type == pa.int64():
        # One pass: as unsigned, a negative count is above MAX_COUNT too; a null slot's
        # value (moot) is looked at only when some slot is out of range.
        values = _values(column, "int64")
        outside = values.view(np.uint64) > MAX_COUNT
        _require(not outside.any() or not (outside & ~missing).any())
        return values, missing
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
    chunks = [chunk for chunk in column.chunks if len(chunk)]
    width = np.dtype(dtype).itemsize

    def buffer(chunk: Any) -> np.ndarray:
        data = chunk.buffers()[1]
        if data is None:  # no values at all (every slot null)
            return np.zeros(len(chunk), dtype=dtype)
        return np.frombuffer(data, dtype=dtype, count=len(chunk), offset=chunk.offset * width)

    if len(chunks) == 1:
        return buffer(chunks[0])
    values = np.empty(len(column), dtype=dtype)
    at = 0
    for chunk in chunks:
        values[at : at + len(chunk)] = buffer(chunk)
        at += len(chunk)
    return values


def undecoded_text_as_bytes(table: Any) -> Any:
    """``table`` with each text column that holds bytes that are not UTF-8 read as bytes.

    Parquet does not check that a string column is UTF-8; Arrow's conversion to Python
    text would then fail for the whole file with the codec's words. As bytes, each such
    value is a record rejected on its own (``readers``), its job invalid. Checked
    here, on the general path only (``normalize_table`` declines such a table).
    """
    import pyarrow as pa

    for index, column in enumerate(table.columns):
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            continue
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            as_bytes = (
                pa.dictionary(column.type.index_type, pa.binary())
                if pa.types.is_dictionary(column.type)
                else pa.binary()
            )
            table = table.set_column(index, table.field(index).name, column.cast(as_bytes))
    return table
