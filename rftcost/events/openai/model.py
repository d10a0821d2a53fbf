"""The result of an import: ``OpenAIImport`` and the records it lists.

``ImportProblem`` (an object, a file or a job that cannot be used, and why),
``UnknownMessage`` (a status message no rule of ``MESSAGE_RULES`` knows) and
``ImportedJob`` (one merged ``fine_tuning.job``). Frozen pydantic values; no logic.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pandas as pd
from pydantic import BaseModel, ConfigDict

__all__ = ["ImportProblem", "ImportedJob", "OpenAIImport", "UnknownMessage"]


class ImportProblem(BaseModel):
    """An object (or a whole file) that could not be used, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    """The file it is in."""
    position: str
    """Where in the file: ``data[3]``, ``line 7``, ``line 7, data[0]``, or ``file``."""
    reason: str
    """What is wrong, in one line."""
    job_id: str | None = None
    """The job it belongs to, when known (a problem of a job's record makes it invalid)."""
    line: int | None = None
    """The line of the file where the object is, when it can be found."""

    def __str__(self) -> str:
        job = f" (job {self.job_id})" if self.job_id else ""
        return f"{self.file}: {self.position}: {self.reason}{job}"


class UnknownMessage(BaseModel):
    """A status message that no row of ``MESSAGE_RULES`` matches: it emitted nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    """The job whose event it is."""
    event_id: str
    """The OpenAI event id (``ftevent-…``)."""
    created_at: datetime
    """When the event was posted (UTC)."""
    level: str | None
    """The event's level (``info``, ``warn``, ``error``)."""
    message: str
    """The message text."""
    file: str
    """The file it was read from."""


class ImportedJob(BaseModel):
    """One ``fine_tuning.job`` object, as imported."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    """The OpenAI job id (``ftjob-…``)."""
    status: str | None
    """The job's status in the export (``succeeded``, ``failed``, ``running``, …)."""
    model: str | None
    """Base model."""
    created_at: datetime
    """When the job was created (UTC)."""
    finished_at: datetime | None
    """When the job finished (UTC), if it has."""
    team: str | None
    """``metadata.team``."""
    project: str | None
    """``metadata.project``."""
    data_sharing: bool | None
    """``shared_with_openai``."""
    grader_type: str | None
    """Type of ``method.reinforcement.grader``."""
    grader_model: str | None
    """Model of the grader, when it uses one model."""
    file: str
    """The file the job object was read from (the latest of its snapshots)."""
    vendor_billed_hours: Decimal | None = None
    """Azure's "Training hours billed: X" message: the vendor's own figure, a cross-check."""


class OpenAIImport(BaseModel):
    """What importing OpenAI exports produced: canonical events and a report."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    events: pd.DataFrame
    """Canonical events: exactly ``EVENT_COLUMNS``; ``ts`` is ``datetime64[ns, UTC]``."""
    jobs: tuple[ImportedJob, ...]
    """The job objects imported (a job known only from its events is not listed)."""
    unknown_messages: tuple[UnknownMessage, ...]
    """Messages no rule matches, in time order."""
    problems: tuple[ImportProblem, ...]
    """Objects or files that could not be used (each makes its job, when known, invalid)."""
    job_problems: tuple[ImportProblem, ...] = ()
    """Jobs whose amount cannot be established from the export (incomplete time, grader
    usage that cannot be read, …): a bill shows them invalid, amount unknown, never $0."""
    notes: tuple[str, ...]
    """Things worth knowing that are not errors (skipped files, missing pieces)."""
    files: tuple[str, ...]
    """Files read, in order."""
    objects_read: int
    """OpenAI objects found: jobs, events and checkpoints, duplicates included."""
    duplicates: int
    """Objects read more than once (overlapping exports), counted once."""

    def counts(self) -> dict[str, int]:
        """Files, jobs, OpenAI objects, canonical events, unknown messages and problems."""
        return {
            "files": len(self.files),
            "jobs": int(self.events["job_id"].nunique()),
            "objects_read": self.objects_read,
            "duplicates": self.duplicates,
            "events": len(self.events),
            "unknown_messages": len(self.unknown_messages),
            "problems": len(self.problems),
            "job_problems": len(self.job_problems),
        }
