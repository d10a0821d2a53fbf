"""Validating one JSON value of an export object: ids, epoch seconds, counts, text.

Each validator returns the value read or raises ``InvalidObject`` with the reason in
one line; the reader turns that into an ``ImportProblem`` tied to the object's file,
position and job. ``json_digest`` fingerprints an object (duplicates, settings).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

__all__ = [
    "InvalidObject",
    "as_object",
    "epoch_seconds",
    "json_digest",
    "required_id",
    "stripped_text",
    "whole_number",
]


class InvalidObject(Exception):
    """An object cannot be used: the reason, raised inside a validator."""


_MAX_EPOCH_SECONDS = 9_223_372_036
"""The last second a ``datetime64[ns]`` holds (2262-04-11): a later epoch cannot be a time."""


_MAX_COUNT = 2**53 - 1
"""The largest count read, as the canonical reader (a JSON number above it is not exact)."""


def required_id(item: dict[str, Any]) -> str:
    """The object's ``id``: a non-blank string."""
    value = item.get("id")
    if not isinstance(value, str) or not value.strip():
        raise InvalidObject("missing 'id'")
    return value


def epoch_seconds(item: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    """``item[key]`` as whole epoch seconds a ``datetime64[ns]`` holds (None if absent and
    not required)."""
    value = item.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidObject(f"{key!r} is not epoch seconds (value {value!r})")
    if value != value or not 0 < value < _MAX_EPOCH_SECONDS or value != int(value):
        raise InvalidObject(f"{key!r} is not whole epoch seconds in range (value {value!r})")
    return int(value)


def whole_number(value: Any, what: str) -> int:
    """A count (tokens, a step, a hyperparameter): a whole JSON number ≥ 0, absent is 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidObject(f"{what} is not a number (value {value!r})")
    if value < 0 or value != int(value):
        raise InvalidObject(f"{what} is not a whole number ≥ 0 (value {value!r})")
    if value > _MAX_COUNT:
        # An int64 column cannot hold it (OverflowError later): rejected here, tied to its job.
        raise InvalidObject(f"{what} is too large (more than {_MAX_COUNT}) (value {value!r})")
    return int(value)


def as_object(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one (an optional nested object)."""
    return value if isinstance(value, dict) else {}


def stripped_text(value: Any) -> str | None:
    """A string without surrounding blanks; None for blank text or a value that is not text."""
    return value.strip() or None if isinstance(value, str) else None


def json_digest(value: Any) -> str:
    """SHA-256 (hex) of a value as canonical JSON (sorted keys; a non-JSON value as text).

    The fingerprint of an object read (the same id with other content is a conflict)
    and of a job's settings (the ``job_created`` event id).
    """
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
