"""Exact values of invoice cells, whole columns at once: decimals written as text to
integers of fixed scale, and ISO 8601 or epoch times to UTC nanoseconds. Never through a
binary float; a value that cannot be used gets its reason, never an overflow."""

from __future__ import annotations

import pandas as pd

__all__ = [
    "MAX_EPOCH_SECONDS",
    "MAX_WHOLE_DIGITS",
    "UTC_OFFSET",
    "parse_scaled",
    "parse_times",
]

MAX_WHOLE_DIGITS = 12
"""Whole digits of a number an invoice may hold (a trillion less a cent)."""
MAX_EPOCH_SECONDS = 9_223_372_035
"""The last epoch second UTC nanoseconds hold in 64 bits."""
UTC_OFFSET = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
"""The end of a time that names its offset (or ``Z``)."""


def parse_scaled(text: pd.Series, places: int = 6) -> tuple[pd.Series, pd.Series]:
    """Decimal numbers written as text → Int64 of ``10**-places`` units, and a reason per bad one.

    Exact: the digits are cut and joined as integers, never through a float.
    Missing values stay NA without a reason.
    """
    # Arrow strings: match and replace run in C++ over the whole column.
    cells = text.astype("string[pyarrow]").str.strip()
    shaped = cells.str.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)").fillna(False).astype(bool)
    sign = cells.str.slice(0, 1)
    body = cells.str.replace(r"^[+-]", "", regex=True)
    whole = body.str.replace(r"\..*$", "", regex=True)
    fraction = body.str.replace(r"^[^.]*\.?", "", regex=True).fillna("")
    present = text.notna()
    reasons = pd.Series(pd.NA, index=text.index, dtype="string")
    reasons = reasons.mask(present & ~shaped, "not a number (write digits and a '.', e.g. 12.50)")
    whole = whole.where(whole.str.len() > 0, "0").fillna("0").str.lstrip("0")
    precise = fraction.str.slice(places).str.strip("0").fillna("") != ""
    reasons = reasons.mask(present & shaped & precise, f"more than {places} decimals")
    big = whole.str.len().fillna(0) > MAX_WHOLE_DIGITS
    reasons = reasons.mask(present & shaped & big, "number too large")
    good = present & shaped & ~precise & ~big
    whole_int = whole.where(good & (whole.str.len() > 0), "0").astype("int64")
    part = fraction.str.slice(0, places).str.ljust(places, "0").where(good, "0")
    if places:
        part_int = part.where(part.str.len() > 0, "0").astype("int64")
    else:
        part_int = pd.Series(0, index=text.index, dtype="int64")
    value = whole_int * 10**places + part_int
    value = value.where(sign.fillna("") != "-", -value)
    return value.astype("Int64").where(good), reasons


def parse_times(text: pd.Series, assume_tz: str | None) -> tuple[pd.Series, pd.Series]:
    """ISO 8601 times (or epoch seconds) → Int64 UTC nanoseconds, and a reason per bad one.

    A time outside what nanoseconds hold (before 1677-09-22 or after 2262-04-11: years
    0001 or 9999, epochs of 1e20) is a bad value with its reason, never an overflow.
    """
    reasons = pd.Series(pd.NA, index=text.index, dtype="string")
    result = pd.Series(pd.NA, index=text.index, dtype="Int64")
    present = text.notna()
    # RFC 3339 allows a lower-case "t" and "z" (section 5.6), which pandas does not read.
    lower = present & text.str.contains("[tz]", regex=True).fillna(False)
    if lower.any():
        text = text.mask(lower, text.str.upper())
    epoch = present & text.str.fullmatch(r"\d+(?:\.\d+)?").fillna(False)
    if epoch.any():
        # Whole seconds beyond int64 nanoseconds would wrap silently in the scaled integers.
        whole = text[epoch].str.replace(r"\..*$", "", regex=True).str.lstrip("0")
        huge = (whole.str.len() > 10) | ((whole.str.len() == 10) & (whole > str(MAX_EPOCH_SECONDS)))
        fits = epoch.copy()
        fits[epoch] = ~huge
        ns, bad = parse_scaled(text[fits], 9)
        result = result.mask(fits, ns)
        reasons = reasons.mask(fits, bad)
        reasons = reasons.mask(epoch & ~fits, _OUT_OF_RANGE)
    # A date alone names no moment (its "-01" is no UTC offset): as in the logs, refused.
    dated = present & ~epoch & text.str.fullmatch(r"\d{4}-\d{1,2}(?:-\d{1,2})?").fillna(False)
    reasons = reasons.mask(dated, "a date without a time of day")
    iso = present & ~epoch & ~dated
    aware = iso & text.str.contains(UTC_OFFSET, regex=True).fillna(False)
    if aware.any():
        parsed = pd.to_datetime(text[aware], utc=True, format="ISO8601", errors="coerce")
        ns, outside = _ns(parsed)
        result = result.mask(aware, ns)
        reasons = reasons.mask(aware & outside.reindex(text.index, fill_value=False), _OUT_OF_RANGE)
    naive = iso & ~aware
    if naive.any():
        if assume_tz is None:
            reasons = reasons.mask(naive, "time without an offset; name its zone with --assume-tz")
        else:
            parsed = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
            outside = ((parsed < _NS_MIN_NAIVE) | (parsed > _NS_MAX_NAIVE)).fillna(False)
            parsed = parsed.mask(outside)
            local = parsed.dt.tz_localize(assume_tz, ambiguous="NaT", nonexistent="NaT")
            ns, _ = _ns(local)
            result = result.mask(naive, ns)
            reasons = reasons.mask(
                naive & outside.reindex(text.index, fill_value=False), _OUT_OF_RANGE
            )
    reasons = reasons.mask(iso & result.isna() & reasons.isna(), "not an ISO 8601 time")
    return result, reasons


_OUT_OF_RANGE = "time out of range (readable times are 1677-09-22 to 2262-04-11)"
_NS_MIN_NAIVE = pd.Timestamp.min.tz_localize(None) + pd.Timedelta(days=1)
_NS_MAX_NAIVE = pd.Timestamp.max.tz_localize(None) - pd.Timedelta(days=1)


def _ns(stamps: pd.Series) -> tuple[pd.Series, pd.Series]:
    """UTC nanoseconds (Int64), and where a time lies outside the nanosecond range (NA there).

    pandas parses at microseconds, so year 9999 parses and only overflows when cast to
    nanoseconds: a day's margin keeps every zone's offset inside the range.
    """
    utc = stamps.dt.tz_convert("UTC")
    low = pd.Timestamp.min.tz_localize("UTC") + pd.Timedelta(days=1)
    high = pd.Timestamp.max.tz_localize("UTC") - pd.Timedelta(days=1)
    outside = ((utc < low) | (utc > high)).fillna(False).astype(bool)
    inside = utc[~outside & utc.notna()]
    values = pd.Series(pd.NA, index=stamps.index, dtype="Int64")
    if len(inside):
        values[inside.index] = inside.dt.as_unit("ns").astype("int64").to_numpy()
    return values, outside
