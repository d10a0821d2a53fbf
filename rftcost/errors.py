"""Errors raised by rftcost.

Every error carries the data a person needs to act on it (file, line, value,
what to do), and its ``str()`` is one line that the CLI prints as it is.

Hierarchy::

    RftcostError                 base of everything rftcost raises on purpose
    ├── InputError               a file or record cannot be used (file, line, column, value)
    │   ├── UnreadableFileError  the file cannot be opened or parsed at all
    │   └── InvoiceError         an invoice file or line cannot be used
    ├── PolicyError              a policy or price table is invalid or unknown
    ├── PriceNotFoundError       no token price for a model at a time (R10)
    ├── PlanError                an estimate plan is invalid
    ├── CalibrationError         a calibration cannot be fitted or loaded
    ├── ExportError              an OpenAI export or API call cannot be used
    │   └── FetchError           (rftcost.fetch) a call to the OpenAI API failed
    └── WatchError               (rftcost.watch) the watch cannot start

``FetchError`` and ``WatchError`` live next to the code that raises them (the CLI
imports neither module for ``--help``); every other error is defined here.

The CLI maps ``RftcostError`` to one line on stderr and exit code 2; library code
never prints or exits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "CalibrationError",
    "ExportError",
    "InputError",
    "InvoiceError",
    "PlanError",
    "PolicyError",
    "PriceNotFoundError",
    "RftcostError",
    "UnknownJobError",
    "UnreadableFileError",
    "WorkerError",
    "excerpt",
    "settings_problems",
    "why_unreadable",
]

EXCERPT = 80
"""A value shown in a message is at most this many characters (a hostile value can be huge)."""


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def why_unreadable(exc: BaseException) -> str:
    """Why a file could not be read, in words a user acts on: gzip's failures (a plain file
    named ``.gz``, a truncated or damaged one) and the system's reason for an ``OSError``,
    without the library's wording or the path again (the error names the file)."""
    import gzip
    import zlib

    if isinstance(exc, gzip.BadGzipFile) and str(exc).startswith("Not a gzipped file"):
        return "not gzip data, although its name ends in .gz (plain text? name it without .gz)"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):  # a bad CRC or length, bad deflate data
        return "its gzip data is damaged (copy or download it again)"
    if isinstance(exc, EOFError):
        return "its gzip data ends early: the file is truncated (copy or download it again)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return excerpt(text.splitlines()[0] if text else type(exc).__name__, 200)


_BOUNDS = {
    "greater_than": ("above", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("below", "lt"),
    "less_than_equal": ("at most", "le"),
}


def settings_problems(exc: Any, root: str, limit: int = 3) -> str:
    """A settings file's validation failures (a pydantic ``ValidationError``: policies,
    price tables) in our words, each with where it is and the value given: ``rounding.
    hours_mode: must be one of 'half_up', 'half_even', 'down', 'up' (got 'sideways')``."""
    errors = exc.errors()
    parts = []
    for err in errors[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or root
        kind, context = err["type"], err.get("ctx") or {}
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "required, not given"
        elif kind in _BOUNDS:
            word, key = _BOUNDS[kind]
            message = f"must be {word} {context.get(key)}"
        elif kind.startswith(("datetime", "date_")):
            message = "not a date and time such as 2025-06-10T00:00:00Z"
        elif kind in ("literal_error", "enum"):
            message = f"must be one of {context.get('expected', '')}"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        if kind not in ("extra_forbidden", "missing", "value_error"):
            message += f" (got {excerpt(repr(err.get('input')), 40)})"
        parts.append(f"{where}: {message}")
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


class RftcostError(Exception):
    """Base class of every error rftcost raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (bucket workers, Spark): rebuild them from
        # their message and attributes, not by calling ``__init__`` with the message.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[RftcostError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class InputError(RftcostError):
    """A file or one of its records cannot be used.

    Attributes name where the problem is, so that a caller can point at it.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
        value: object = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        self.value = value
        self.hint = hint
        super().__init__(self._message())

    def _message(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: {self.reason}"
        if self.column is not None:
            text += f" (column {self.column!r}"
            text += f", value {excerpt(repr(self.value))})" if self.value is not None else ")"
        elif self.value is not None:
            text += f" (value {excerpt(repr(self.value))})"
        if self.hint:
            text += f"; {self.hint}"
        return text


class UnreadableFileError(InputError):
    """A file cannot be opened or parsed at all."""


class UnknownJobError(InputError, KeyError):
    """A job id that is not in the bill: an ``InputError`` naming it, and a ``KeyError``
    as a mapping's missing key is (what ``Bill.job`` has always raised)."""

    def __init__(self, job_id: str, *, known: int) -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id!r} is not in the logs ({known} jobs read)",
            hint="Bill.job_ids() lists them",
        )

    def _message(self) -> str:
        return f"{self.reason}; {self.hint}"  # no file: the job id says where

    def __str__(self) -> str:
        return InputError.__str__(self)  # KeyError's own would show the message quoted


class InvoiceError(InputError):
    """An invoice file or one of its lines cannot be used."""


class PolicyError(RftcostError):
    """A policy or price table is unknown or invalid."""

    def __init__(self, reason: str, *, source: str | None = None) -> None:
        self.reason = reason
        self.source = source
        super().__init__(f"{source}: {reason}" if source else reason)


class PriceNotFoundError(RftcostError):
    """No token price is in force for a model at a time (R10): never a silent $0."""

    def __init__(self, model: str, at: str) -> None:
        self.model = model
        self.at = at
        super().__init__(f"no token price for grader model {model!r} at {at}")


class PlanError(RftcostError):
    """An estimate plan is invalid (unknown grader, out-of-range setting, bad data file)."""


class CalibrationError(RftcostError):
    """A calibration cannot be fitted (history too thin) or loaded."""


class ExportError(RftcostError):
    """An OpenAI export or an API call cannot be used (missing key, 401, 404, rate limit)."""


class WorkerError(RftcostError):
    """A worker process billing part of a large log ended before its part was done."""
