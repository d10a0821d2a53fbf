"""Time in one place: integer nanoseconds and timezone-aware datetimes → ISO 8601 text.

Every stage keeps instants as integer nanoseconds since the epoch (UTC) inside vectorized
code and turns them into text only at the edge, with these helpers:

- ``datetime_from_ns``: nanoseconds → a UTC ``datetime`` (to the microsecond);
- ``iso_seconds`` / ``iso_seconds_from_ns``: ``2025-06-01T10:00:00Z``, to the second
  (budgets, spend periods, watch polls: a second is the resolution a user reads);
- ``iso_exact``: a datetime with every digit it carries (``…T10:00:00.250000Z``);
- ``iso_trimmed``: a datetime written as ``iso_series`` writes a column (explain's JSON);
- ``iso_series``: a column of nanoseconds → ``…T10:00:00.25Z``, exact to the
  nanosecond, trailing zeros dropped (timelines, invoice evidence).
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
