"""Time in one place: integer nanoseconds and timezone-aware datetimes → ISO 8601 text.

Every stage keeps instants as integer nanoseconds since the epoch (UTC) inside vectorized
code and turns them into text only at the edge, with these helpers:

- ``datetime_from_ns``: nanoseconds → a UTC ``datetime`` (to the microsecond);
- ``iso_seconds`` / ``iso_seconds_from_ns``: ``2025-06-01T10:00:00Z``, to the second
  (budgets, spend periods, watch polls: a second is the resolution a user reads);
- ``iso_exact``: a datetime with every digit it carries (``…T10:00:00.250000Z``);
- ``iso_trimmed``: a datetime written as ``iso_series`` writes a column (explain's JSON);
- ``iso_series``: a column of nanoseconds → ``…T10:00:00.25Z``, exact to the
  nanosecond, trailing zeros dropped (timelines, invoice evidence);
- ``parse_iso``: ISO 8601 text → datetimes, the other way (the readers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "NS_PER_SECOND",
    "datetime_from_ns",
    "iso_exact",
    "iso_seconds",
    "iso_seconds_from_ns",
    "iso_series",
    "iso_trimmed",
    "parse_iso",
]

NS_PER_SECOND = 1_000_000_000


def datetime_from_ns(ns: int) -> datetime:
    """Nanoseconds since the epoch → a UTC datetime, to the microsecond (the finer digits
    are dropped: a datetime holds no more)."""
    seconds, rest = divmod(int(ns), NS_PER_SECOND)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)


def iso_seconds(moment: datetime | None) -> str | None:
    """A datetime → ``2025-06-01T10:00:00Z`` in UTC, to the second (``None`` stays ``None``)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_seconds_from_ns(ns: int) -> str:
    """Nanoseconds since the epoch → ``2025-06-01T10:00:00Z``, to the second (floor)."""
    return datetime.fromtimestamp(ns // NS_PER_SECOND, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_exact(moment: datetime | None) -> str | None:
    """A datetime → ISO 8601 in UTC with ``Z`` and every fractional digit it carries."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_trimmed(moment: datetime) -> str:
    """A datetime → ``2025-06-01T10:00:00.25Z`` in UTC, the fraction's trailing zeros
    dropped: an instant written alike by every output (``iso_series`` for a column)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def iso_series(ns: pd.Series) -> pd.Series:
    """A column of nanoseconds → ``2025-06-01T10:00:00.25Z`` strings (exact, vectorized)."""
    import pandas as pd

    if ns.empty:  # the usual case of a problem column: no job has that problem
        return pd.Series([], dtype="str", index=ns.index)
    as_int = ns.astype("int64")
    stamps = pd.to_datetime(as_int, unit="ns", utc=True)
    rest = as_int % NS_PER_SECOND
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S").astype(str)
    fraction = "." + rest.astype(str).str.zfill(9).str.rstrip("0")
    return text.where(rest == 0, text + fraction) + "Z"


def parse_iso(text: pd.Series, *, utc: bool) -> pd.Series:
    """ISO 8601 text → datetimes (NaT where not ISO 8601); years beyond pandas' bounds too.

    pandas raises, even with ``errors="coerce"``, for a year it cannot hold at any
    unit (0000, 10000): those records are rejected, not the run aborted. RFC 3339's
    lower-case "t" and "z" (section 5.6) are read too.
    """
    import pandas as pd

    try:
        parsed: pd.Series = pd.to_datetime(text, utc=utc, format="ISO8601", errors="coerce")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        # Rare: parse one by one (only for a chunk holding such a value).
        parts = [
            pd.to_datetime(text.iloc[i : i + 1], utc=utc, format="ISO8601", errors="coerce")
            if _parses(text.iloc[i : i + 1], utc)
            else pd.Series(pd.NaT, index=text.index[i : i + 1], dtype="datetime64[us, UTC]")
            for i in range(len(text))
        ]
        parsed = pd.concat(parts) if parts else text.astype("datetime64[us, UTC]")
        if not utc and isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
    # pandas does not read a lower-case "t" or "z": the few times that failed with one are
    # read again in capitals.
    failed = text[parsed.isna().to_numpy()]
    lower = failed[failed.str.contains("[tz]", regex=True).fillna(False).astype(bool)]
    if len(lower):
        again = parse_iso(lower.str.upper(), utc=utc)
        parsed = again.reindex(parsed.index).combine_first(parsed)
    return parsed


def _parses(one: pd.Series, utc: bool) -> bool:
    import pandas as pd

    try:
        pd.to_datetime(one, utc=utc, format="ISO8601", errors="coerce")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        return False
    return True
