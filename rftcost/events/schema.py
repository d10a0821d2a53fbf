"""The canonical event log, version 1: its columns, event names and phase names.

This module is the one column contract of the project (event-log.md). Readers
produce frames with exactly these columns; everything downstream relies on them.

An *event frame* (after reading) has one row per accepted event and the columns of
``EVENT_COLUMNS`` with these dtypes:

- ``job_id``, ``event``, ``event_id``, ``phase``, ``team``, ``project``, ``model``,
  ``grader_model``, ``grader_type``, ``reasoning_effort``, ``message``: strings
  (missing = NA);
- ``ts``: int64 nanoseconds since the Unix epoch, UTC;
- ``step``, token counts and integer settings: nullable ``Int64``;
- ``data_sharing``: nullable ``boolean``;
- ``compute_multiplier``: ``Float64`` (a setting, never money);
- ``source``, ``line``: where the record came from (file path, 1-based line or row).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from rftcost.errors import UnreadableFileError

__all__ = [
    "BILLING_EVENTS",
    "BOOL_COLUMNS",
    "CATEGORY_COLUMNS",
    "CONTENT_COLUMNS",
    "DEFAULT_BILLABLE_PHASES",
    "DEFAULT_EXCLUDED_PHASES",
    "EVENTS",
    "EVENT_COLUMNS",
    "FINAL_EVENTS",
    "FLOAT_COLUMNS",
    "INT_COLUMNS",
    "JOB_SETTING_COLUMNS",
    "MAX_COUNT",
    "REJECTED_COLUMNS",
    "REQUIRED_BY_EVENT",
    "STRING_COLUMNS",
    "refuse_repeated_columns",
]

EVENTS: Final = (
    "job_created",
    "phase_start",
    "phase_end",
    "step_completed",
    "checkpoint_saved",
    "paused",
    "resumed",
    "succeeded",
    "cancelled",
    "failed",
    "rollback",
    "grader_usage",
)
"""Every event name of the canonical log."""

BILLING_EVENTS: Final = ("paused", "succeeded", "cancelled", "failed")
"""Events at which a charge is issued (R4)."""

FINAL_EVENTS: Final = ("succeeded", "cancelled", "failed")
"""Billing events after which no further billing event may follow."""

DEFAULT_BILLABLE_PHASES: Final = ("rollout", "grading", "update", "validation")
DEFAULT_EXCLUDED_PHASES: Final = (
    "validating_files",
    "safety_check",
    "queued",
    "setup",
    "safety_eval",
    "paused",
    "idle",
)

STRING_COLUMNS: Final = (
    "job_id",
    "event",
    "event_id",
    "phase",
    "team",
    "project",
    "model",
    "grader_model",
    "grader_type",
    "reasoning_effort",
    "message",
)
INT_COLUMNS: Final = (
    "step",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "n_train_examples",
    "n_valid_examples",
    "batch_size",
    "n_epochs",
    "eval_interval",
    "eval_samples",
)
FLOAT_COLUMNS: Final = ("compute_multiplier",)
BOOL_COLUMNS: Final = ("data_sharing",)

EVENT_COLUMNS: Final = (
    "job_id",
    "ts",
    "event",
    "event_id",
    "phase",
    "step",
    "team",
    "project",
    "model",
    "data_sharing",
    "grader_model",
    "grader_type",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "n_train_examples",
    "n_valid_examples",
    "batch_size",
    "n_epochs",
    "compute_multiplier",
    "eval_interval",
    "eval_samples",
    "reasoning_effort",
    "message",
)
"""The canonical columns, in output order."""

CONTENT_COLUMNS: Final = tuple(c for c in EVENT_COLUMNS if c != "event_id")
"""Columns compared to decide whether two records are the same event."""

JOB_SETTING_COLUMNS: Final = (
    "team",
    "project",
    "model",
    "data_sharing",
    "grader_model",
    "grader_type",
    "n_train_examples",
    "n_valid_examples",
    "batch_size",
    "n_epochs",
    "compute_multiplier",
    "eval_interval",
    "eval_samples",
    "reasoning_effort",
)
"""Columns read from a job's ``job_created`` event."""

CATEGORY_COLUMNS: Final = (
    "job_id",
    "event",
    "phase",
    "team",
    "project",
    "model",
    "grader_model",
    "grader_type",
    "reasoning_effort",
    "source",
)
"""Columns with few distinct values, held as categoricals (memory, fast group-bys)."""

REQUIRED_BY_EVENT: Final[dict[str, tuple[str, ...]]] = {
    "phase_start": ("phase",),
    "phase_end": ("phase",),
    "step_completed": ("step",),
    "checkpoint_saved": ("step",),
    "grader_usage": ("grader_model", "input_tokens", "output_tokens"),
}
"""Columns an event must carry (the table of event-log.md, "required for")."""

MAX_COUNT: Final = 2**53 - 1
"""Largest step or token count accepted: beyond it a count is not exact as a float, and
sums of a job's counts could overflow 64 bits; no real job comes near it."""


REJECTED_COLUMNS: Final = ("source", "line", "job_id", "column", "value", "reason")
"""Columns of a rejected record: where it was read, its job, which value failed and why."""


def refuse_repeated_columns(
    names: Sequence[str], path: str | Path, *, line: int | None = None
) -> None:
    """An ``UnreadableFileError`` naming a column of the event log a file gives twice (a
    CSV header, a Parquet schema): which copy a record means is unknown, and reading the
    first alone would bill by the columns' order. (A JSON line with a key twice is read as
    JSON parsers read it, the last value standing: checking every line would cost the fast
    path its speed.)"""
    repeated = sorted({n for n in names if list(names).count(n) > 1 and n in EVENT_COLUMNS})
    if repeated:
        raise UnreadableFileError(
            f"the file names column {repeated[0]!r} twice: which copy a record means is unknown",
            path=path,
            line=line,
            hint="keep one column of each name",
        )
