"""OpenAI fine-tuning API exports → canonical events (event-log.md, second part).

What is read
------------
A path is a file or a folder (every ``.json``, ``.jsonl`` and ``.ndjson`` file below
it that holds OpenAI objects, in sorted order). A file holds, as the API returns them:

- a ``fine_tuning.job`` object (``GET /v1/fine_tuning/jobs/{id}``);
- a webhook payload ``{"object": "event", "type": "fine_tuning.job.succeeded", …}``
  (``.failed``, ``.cancelled``), naming its job in ``data.id``;
- a list page ``{"object": "list", "data": [...], "has_more": ...}`` of
  ``fine_tuning.job.event``, ``fine_tuning.job.checkpoint`` or ``fine_tuning.job``
  objects (a job's events may be spread over several pages and files), or a bare
  JSON array of such objects;
- JSON Lines: one such object or page per line.

``rftcost fetch`` writes ``DIR/JOB_ID/job.json``, ``events.json`` and
``checkpoints.json``; ``import_openai([DIR])`` reads them back.

Which job an event belongs to
-----------------------------
Event objects do not name their job. The events of one file belong to, in this order:
the job named by a "Created fine-tuning job: ftjob-…" event of that file; the
``ftjob-…`` id in the file's name, else in its folder's name (the layout of
``rftcost fetch``); the one job object read from the same folder (or a ``job.json``
next to the file); the one job object of the whole import. A file whose job cannot
be told is reported as a problem, never guessed. Checkpoints name their job
(``fine_tuning_job_id``).

What becomes what
-----------------
- A job object becomes ``job_created`` at its ``created_at``: team from
  ``metadata.team``, project from ``metadata.project``, ``model``, data sharing
  from ``shared_with_openai``, the grader's type and model (``method.reinforcement
  .grader``; a ``multi`` grader names a model when all its model graders use one),
  and the hyperparameters that are not ``"auto"``. Several snapshots of one job
  (create, pause, resume, cancel responses, retrieves) merge field by field: an
  absent field never overrides a present one, the most advanced status wins, and
  disagreements (data sharing, how it ended) are noted with the value used. A job no
  snapshot names the method of is RFT when its metrics events are RFT's, else
  invalid; another method (supervised, dpo) is reported and skipped.
- How a job ended comes from every saved shape of it (``_status_rows``): a message
  of the table; else a webhook payload; else an error-level event (a failure,
  whatever its wording) of a job whose object says ``failed`` or nothing; else the
  job object's ``status`` at ``finished_at``. Each inference is noted with its
  evidence, and evidence that contradicts the messages is noted too.
- A message event goes through ``MESSAGE_RULES``, one table of
  ``(regex, event, phase, …)`` rows: the first row whose regex matches the start of
  the message (case-insensitive) decides. A row may emit a canonical event at the
  message's time (``succeeded``, ``failed``, ``cancelled``, ``paused``,
  ``resumed``) and may start a non-billable phase (``validating_files``,
  ``queued``, ``setup``, ``safety_eval``, ``paused``). A phase started by a message
  lasts until the next message that changes the state (starts a phase, ends one or
  emits an event) or until the next training step starts, whichever is first. A
  message no row matches is listed in ``OpenAIImport.unknown_messages``: it emits
  nothing. A new message is one line in the table.
- A metrics event (``type == "metrics"``) becomes ``step_completed`` (``data.step``)
  and a billable interval of ``STEP_PHASE`` ending at the event's time and lasting
  ``data.timing.step.full_iteration`` seconds (kept to the microsecond). Without
  that timing the interval runs from the previous metrics event, or the later
  "job started" / "resumed" message, to this event.
- ``data.usage.graders[]`` (the RFT guide's per-grader usage: ``…_tokens_count``)
  adds the models ``data.model_graders_token_usage`` lacks; a model in both is
  counted once (the latter's figures, a difference noted).
- ``data.model_graders_token_usage`` becomes one ``grader_usage`` per grader model
  and step at the metrics event's time: ``input_tokens`` = train + eval prompt
  tokens, ``cached_input_tokens`` = train + eval cached tokens, ``output_tokens`` =
  train + eval completion tokens. OpenAI's prompt token counts include the cached
  ones, which is the convention of the canonical log (R9); cached tokens above the
  prompt tokens are reported as a problem (the bill then rejects the record).
- A checkpoint object becomes ``checkpoint_saved`` (``step_number``) at its
  ``created_at``. "Checkpoint created at step N" messages are informational: the
  API posts them when the job ends, later than the checkpoint itself, so the
  checkpoint list is the source of truth. A checkpoint a message announces and the
  list lacks (the API keeps only the best three) is taken as saved at its step's
  metrics event, and noted (R5: work before it is not lost).
- Events of type ``moderation_checks`` and Azure's tail ("Postprocessing started.",
  "Completed results file") are notes; Azure's "Training hours billed: X" is the
  vendor's figure, compared with the steps' hours in a note, never billed from.

Jobs that cannot be billed
--------------------------
``OpenAIImport.job_problems`` lists the jobs whose money the export cannot establish,
which a bill shows invalid (amount unknown, never a smaller amount as final): an
events page with ``has_more: true`` and no last page; metrics that skip steps or do
not start at step 1; a succeeded job whose steps end before ``total_steps``; a
checkpoint past the last metrics step; a step with no timing and no anchor, or of no
time (``full_iteration: 0``, or an untimed step at its anchor's time); a job
with no events; a stop (``paused``, or a status without ``finished_at``) whose time
no event gives; a cancel or pause longer than any step after the last step; a model
grader with no token usage to read. A malformed object is a problem tied to its job
(told from its file like events), which the bill also shows invalid.

Every canonical event carries an ``event_id`` built from the OpenAI ids
(``openai:<ftevent id>:<role>``, ``openai:<ftckpt id>:checkpoint_saved``,
``openai:<ftjob id>:created:<hash of the job's settings>``), so that importing
overlapping exports, or the same export twice, de-duplicates.

Malformed objects (a missing id, a timestamp that is not epoch seconds, a metrics
event without a step, negative, fractional or too large token counts (above
2^53 - 1, as the canonical reader), a time beyond 2262, a ``shared_with_openai``
that is not a JSON boolean, a file that is not JSON) are listed
in ``OpenAIImport.problems`` with their file, position and reason; the rest of
the file is still imported. Parsing touches each JSON object once, in Python (that
is what parsing is); the mapping to canonical events works on whole columns.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, NamedTuple, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from rftcost.errors import ExportError, UnreadableFileError
from rftcost.events.schema import (
    BOOL_COLUMNS,
    EVENT_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    STRING_COLUMNS,
)

__all__ = [
    "EXPORT_SUFFIXES",
    "MESSAGE_RULES",
    "STEP_PHASE",
    "ImportProblem",
    "ImportedJob",
    "MessageRule",
    "OpenAIImport",
    "UnknownMessage",
    "events_to_jsonl",
    "import_openai",
    "looks_like_openai_export",
]

EXPORT_SUFFIXES: Final = (".json", ".jsonl", ".ndjson")
"""File names an OpenAI export may have."""

STEP_PHASE: Final = "rollout"
"""Phase of the billable interval of one training step.

The export gives one duration per step (``full_iteration``: sampling, grading,
training and eval together), not one per phase, so the whole step is recorded
under the loop's first phase. Only the union of billable time counts (R1), so the
name never changes an amount.
"""


class MessageRule(NamedTuple):
    """One row of the message table: what a status message means."""

    pattern: str
    """Regular expression matched at the start of the message, case-insensitive."""
    event: str | None = None
    """Canonical event emitted at the message's time, if any."""
    phase: str | None = None
    """Non-billable phase that starts at the message's time, if any."""
    ends_phase: bool = False
    """The message ends the current phase (implied when ``event`` or ``phase`` is set)."""
    training_starts: bool = False
    """Training (re)starts here: the start of a first step that carries no timing."""


_JOB = r"(?:the )?(?:fine[- ]?tuning )?job "

# One row per known message. Rows without an event or a phase only mark a message
# as known: "Created fine-tuning job" (job_created comes from the job object),
# "Checkpoint created at step N" (checkpoint_saved comes from the checkpoint list),
# "New fine-tuned model created".
# fmt: off
MESSAGE_RULES: Final[tuple[MessageRule, ...]] = (
    #           regex (start of message)                 event    phase started
    MessageRule(r"Created fine-tuning job\b"),
    MessageRule(r"Validating training file\b",            None,    "validating_files"),
    MessageRule(r"Files validated, moving job to queued", None,    "queued"),
    MessageRule(r"Fine-tuning job started\b",             None,    "setup", training_starts=True),
    MessageRule(r"Checkpoint created at step \d+"),
    MessageRule(r"New fine-tuned model created\b"),
    MessageRule(r"Evaluating model against our usage",    None,    "safety_eval"),
    MessageRule(r"Usage policy evaluations completed\b",  ends_phase=True),
    MessageRule(r"The job has successfully completed\b",  "succeeded"),
    # The API reference's wording, and Azure's ("Job succeeded.").
    MessageRule(_JOB + r"(?:has )?(?:successfully completed|completed successfully|succeeded)\b",
                "succeeded"),
    MessageRule(_JOB + r"(?:has )?failed\b",              "failed"),
    MessageRule(_JOB + r"(?:was |has been )?cancell?ed\b", "cancelled"),
    MessageRule(_JOB + r"(?:was |has been )?paused\b",    "paused",  "paused"),
    MessageRule(_JOB + r"(?:was |has been )?resumed\b",   "resumed", "setup", training_starts=True),
    # Azure's tail after success: notes. "Training hours billed: X" is the vendor's own
    # figure, kept as a cross-check (ImportedJob.vendor_billed_hours), never billed from.
    MessageRule(r"Postprocessing started\b"),
    MessageRule(r"Completed results file\b"),
    MessageRule(r"Training hours billed:"),
)
# fmt: on
"""The message → event table. The first matching row decides; no match is reported."""


# --- the result -----------------------------------------------------------------------


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


# --- sniffing -------------------------------------------------------------------------

_SNIFF_BYTES = 65_536
_OBJECT_PATTERN = re.compile(
    r'"object"\s*:\s*"fine_tuning\.job(?:\.event|\.checkpoint)?"'
    r'|"type"\s*:\s*"fine_tuning\.job\.(?:succeeded|failed|cancelled)"'  # webhook payloads
)
_LIST_PATTERN = re.compile(r'^\s*\{\s*"object"\s*:\s*"list"')
_FETCH_FILES = ("job.json", "events.json", "checkpoints.json")


def looks_like_openai_export(path: Path) -> bool:
    """Whether ``path`` looks like an OpenAI fine-tuning export (a cheap sniff, no parse).

    True for a ``.json`` / ``.jsonl`` / ``.ndjson`` file whose first 64 KiB hold a
    ``fine_tuning.job``, ``fine_tuning.job.event`` or ``fine_tuning.job.checkpoint``
    object, for a list page named as ``rftcost fetch`` names them (``events.json``,
    ``checkpoints.json``: an empty list is an export too), and for a folder written
    by ``rftcost fetch`` (those files in it or in a folder below it).
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / name for name in _FETCH_FILES]
        candidates += [
            sub / name for sub in sorted(path.iterdir()) if sub.is_dir() for name in _FETCH_FILES
        ]
        return any(c.is_file() and _sniff_file(c) for c in candidates)
    return path.is_file() and _sniff_file(path)


def _sniff_file(path: Path) -> bool:
    if not path.name.lower().endswith(EXPORT_SUFFIXES):
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        return False
    text = head.decode("utf-8", errors="replace")
    if _OBJECT_PATTERN.search(text):
        return True
    return path.name.lower() in _FETCH_FILES and bool(_LIST_PATTERN.match(text))


# --- reading: files → validated flat records -------------------------------------------

_JOB_ID_IN_NAME = re.compile(r"ftjob-[A-Za-z0-9_-]+")
_CREATED_MESSAGE = re.compile(r"Created fine-tuning job:\s*(ftjob-[A-Za-z0-9_-]+)")
_MAX_EPOCH_SECONDS = 9_223_372_036
"""The last second a ``datetime64[ns]`` holds (2262-04-11): a later epoch cannot be a time."""
_MAX_COUNT = 2**53 - 1
"""The largest count read, as the canonical reader (a JSON number above it is not exact)."""
_STATUS_RANK = {"validating_files": 0, "queued": 1, "running": 2, "paused": 3}
_FINAL = ("succeeded", "failed", "cancelled")
_TOKEN_FIELDS = (
    "train_prompt_tokens",
    "train_completion_tokens",
    "train_cached_tokens",
    "eval_prompt_tokens",
    "eval_completion_tokens",
    "eval_cached_tokens",
)
_SETTINGS = ("batch_size", "n_epochs", "eval_interval", "eval_samples")


class _Invalid(Exception):
    """An object cannot be used: the reason, raised inside a validator."""


class _Reader:
    """Collects flat records of jobs, events and checkpoints, and the problems met."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.checkpoints: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        self.problems: list[ImportProblem] = []
        self.seq = 0
        self.pages = 0
        self._text = ""

    def read_file(self, path: Path) -> bool:
        """Read one file; False when it holds no OpenAI object or list page at all."""
        found = self.seq + self.pages
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self._problem(path, "file", f"not UTF-8 text ({exc.reason} at byte {exc.start})")
            return True
        except OSError as exc:
            raise UnreadableFileError(f"cannot read file: {exc}", path=path) from exc
        self._text = text
        if path.name.lower().endswith((".jsonl", ".ndjson")):
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    self._read_json(path, line, f"line {number}", f"line {number}, ", number)
        else:
            self._read_json(path, text, "file", "")
        return self.seq + self.pages > found

    def _read_json(
        self, path: Path, text: str, where: str, prefix: str, line: int | None = None
    ) -> None:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            self._problem(
                path,
                where,
                f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                line=line or exc.lineno,
            )
            return
        if isinstance(value, dict) and value.get("object") == "list":
            data = value.get("data")
            if not isinstance(data, list):
                self._problem(path, where, "a list page without a 'data' array", line=line)
                return
            self.pages += 1
            # A saved page that says more pages follow (has_more) while no page of the
            # job says it is the last one means older events are missing (kind 10).
            has_more = value.get("has_more")
            more = has_more if isinstance(has_more, bool) else None
            for index, item in enumerate(data):
                self._read_object(path, item, f"{prefix}data[{index}]", line, more)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._read_object(path, item, f"{prefix}[{index}]", line)
        else:
            self._read_object(path, value, where, line)

    def _read_object(
        self,
        path: Path,
        item: Any,
        position: str,
        line: int | None = None,
        has_more: bool | None = None,
    ) -> None:
        kind = item.get("object") if isinstance(item, dict) else None
        if kind == "event" and str(item.get("type", "")).startswith("fine_tuning.job."):
            kind = "webhook"  # a webhook payload: state evidence like the job object
        readers = {
            "fine_tuning.job": (_job_record, self.jobs),
            "fine_tuning.job.event": (_event_record, self.events),
            "fine_tuning.job.checkpoint": (_checkpoint_record, self.checkpoints),
            "webhook": (_webhook_record, self.webhooks),
        }
        if kind not in readers:
            what = "not a JSON object" if not isinstance(item, dict) else f"unknown object {kind!r}"
            self._problem(
                path,
                position,
                f"{what} (expected fine-tuning jobs, events or checkpoints)",
                line=line,
            )
            return
        validate, into = readers[kind]
        self.seq += 1
        try:
            record = validate(item)
        except _Invalid as exc:
            job = item.get("fine_tuning_job_id") if kind.endswith("checkpoint") else None
            if kind == "fine_tuning.job":
                job = item.get("id")
            self._problem(
                path,
                position,
                f"{kind} {_label(item)}: {exc}",
                job,
                line=line or _line_of(self._text, item.get("id")),
            )
            return
        fingerprint = hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
        into.append(
            {
                **record,
                "file": str(path),
                "folder": str(path.parent),
                "position": position,
                "seq": self.seq,
                "fingerprint": fingerprint,
                "has_more": has_more,
            }
        )

    def _problem(
        self,
        path: Path,
        position: str,
        reason: str,
        job_id: Any = None,
        *,
        line: int | None = None,
    ) -> None:
        job = job_id if isinstance(job_id, str) else None
        self.problems.append(
            ImportProblem(file=str(path), position=position, reason=reason, job_id=job, line=line)
        )


def _line_of(text: str, object_id: Any) -> int | None:
    """The line of ``text`` where the object with this id is (a problem names a real line)."""
    if not isinstance(object_id, str) or not object_id:
        return None
    at = text.find(json.dumps(object_id))
    return None if at < 0 else text.count("\n", 0, at) + 1


def _line_in_file(file: str, object_id: str) -> int | None:
    """The line of a file where an object is (read again: only for the rare conflicts)."""
    try:
        return _line_of(Path(file).read_text(encoding="utf-8-sig"), object_id)
    except (OSError, UnicodeDecodeError):
        return None


def _label(item: dict[str, Any]) -> str:
    value = item.get("id")
    return repr(value) if isinstance(value, str) and value.strip() else "without an id"


def _id(item: dict[str, Any]) -> str:
    value = item.get("id")
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("missing 'id'")
    return value


def _epoch(item: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{key!r} is not epoch seconds (value {value!r})")
    if value != value or not 0 < value < _MAX_EPOCH_SECONDS or value != int(value):
        raise _Invalid(f"{key!r} is not whole epoch seconds in range (value {value!r})")
    return int(value)


def _count(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Invalid(f"{what} is not a number (value {value!r})")
    if value < 0 or value != int(value):
        raise _Invalid(f"{what} is not a whole number ≥ 0 (value {value!r})")
    if value > _MAX_COUNT:
        # An int64 column cannot hold it (OverflowError later): rejected here, tied to its job.
        raise _Invalid(f"{what} is too large (more than {_MAX_COUNT}) (value {value!r})")
    return int(value)


def _job_record(item: dict[str, Any]) -> dict[str, Any]:
    job_id = _id(item)
    created = _epoch(item, "created_at")
    finished = _epoch(item, "finished_at", required=False)
    method = _obj(item.get("method"))
    method_type = _text(method.get("type"))
    config = _obj(method.get(method_type)) if method_type else {}
    hyper = _obj(config.get("hyperparameters"))
    grader = _obj(config.get("grader"))
    metadata = _obj(item.get("metadata"))
    sharing = item.get("shared_with_openai")
    if sharing is not None and not isinstance(sharing, bool):
        # "true", 1 or "yes" is not read as either: guessing it false bills without the
        # data-sharing discount, guessing it true bills with it; neither is known.
        raise _Invalid(f"'shared_with_openai' is not a JSON boolean true/false (value {sharing!r})")
    settings: dict[str, Any] = {}
    for key in _SETTINGS:
        value = hyper.get(key)
        settings[key] = (
            None if value in (None, "auto") else _count(value, f"hyperparameter {key!r}")
        )
    multiplier = hyper.get("compute_multiplier")
    if multiplier in (None, "auto"):
        settings["compute_multiplier"] = None
    elif (
        isinstance(multiplier, int | float) and not isinstance(multiplier, bool) and multiplier >= 0
    ):
        settings["compute_multiplier"] = float(multiplier)
    else:
        raise _Invalid(
            f"hyperparameter 'compute_multiplier' is not a number (value {multiplier!r})"
        )
    effort = hyper.get("reasoning_effort")
    error = _obj(item.get("error"))
    return {
        "job_id": job_id,
        "created_at": created,
        "finished_at": finished,
        "status": _text(item.get("status")),
        "model": _text(item.get("model")),
        "method": method_type,
        "team": _text(metadata.get("team")),
        "project": _text(metadata.get("project")),
        "data_sharing": sharing if isinstance(sharing, bool) else None,
        "grader_type": _text(grader.get("type")),
        "grader_model": _grader_model(grader),
        "model_grader": _runs_a_model(grader) if grader else None,
        **settings,
        "reasoning_effort": None if effort in (None, "auto") else _text(effort),
        "error_message": _text(error.get("message")) or _text(error.get("code")),
    }


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _grader_model(grader: dict[str, Any]) -> str | None:
    """The one model a grader (or all model graders of a ``multi`` grader) uses."""
    models: set[str] = set()

    def visit(node: Any) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") in ("score_model", "label_model") and isinstance(
            node.get("model"), str
        ):
            models.add(node["model"])
        children = node.get("graders")
        if isinstance(children, dict) and "type" in children:  # the SDK's shape: one grader
            visit(children)
        elif isinstance(children, dict):  # the API's shape: graders by name
            for child in children.values():
                visit(child)
        elif isinstance(children, list):
            for child in children:
                visit(child)

    visit(grader)
    return models.pop() if len(models) == 1 else None


def _runs_a_model(grader: dict[str, Any]) -> bool:
    """Whether the grader, or a sub-grader of a ``multi`` grader, runs a model (R9)."""
    text = json.dumps(grader)
    return '"score_model"' in text or '"label_model"' in text


NOTE_EVENT_TYPES: Final = ("moderation_checks",)
"""Documented event types that are not billing data (the RFT guide's safety checks): notes."""


def _event_record(item: dict[str, Any]) -> dict[str, Any]:
    event_id = _id(item)
    created = _epoch(item, "created_at")
    message = item.get("message")
    if message is None and item.get("type") in NOTE_EVENT_TYPES:
        message = ""
    if not isinstance(message, str):
        raise _Invalid(f"'message' is not text (value {message!r})")
    kind = item.get("type") or "message"
    if kind not in ("message", "metrics", *NOTE_EVENT_TYPES):
        raise _Invalid(
            f"unknown event type {kind!r} (known: message, metrics, {', '.join(NOTE_EVENT_TYPES)})"
        )
    record: dict[str, Any] = {
        "id": event_id,
        "created_at": created,
        "level": _text(item.get("level")),
        "message": message.strip(),
        "type": kind,
        "step": None,
        "total_steps": None,
        "full_iteration": None,
        "usage": [],
        "rft_metrics": False,
        "usage_conflict": None,
    }
    if kind == "metrics":
        record.update(_metrics(item.get("data")))
    return record


def _webhook_record(item: dict[str, Any]) -> dict[str, Any]:
    """A webhook payload ``{"object": "event", "type": "fine_tuning.job.succeeded", …}``."""
    event_id = _id(item)
    created = _epoch(item, "created_at")
    status = str(item["type"]).removeprefix("fine_tuning.job.")
    if status not in ("succeeded", "failed", "cancelled"):
        raise _Invalid(f"unknown webhook type {item['type']!r}")
    job_id = _text(_obj(item.get("data")).get("id"))
    if job_id is None:
        raise _Invalid("a webhook payload without 'data.id' (the job)")
    return {"id": event_id, "created_at": created, "status": status, "job_id": job_id}


def _metrics(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Invalid("a metrics event without a 'data' object")
    if data.get("step") is None:
        raise _Invalid("a metrics event without 'data.step'")
    step = _count(data.get("step"), "'data.step'")
    total = data.get("total_steps")
    total_steps = None if total is None else _count(total, "'data.total_steps'")
    full = _obj(_obj(data.get("timing")).get("step")).get("full_iteration")
    if full is not None and (
        isinstance(full, bool) or not isinstance(full, int | float) or not 0 <= full < 10**9
    ):
        raise _Invalid(f"'data.timing.step.full_iteration' is not seconds ≥ 0 (value {full!r})")
    usage_by_model = data.get("model_graders_token_usage") or {}
    if not isinstance(usage_by_model, dict):
        raise _Invalid("'data.model_graders_token_usage' is not an object keyed by grader model")
    usage = []
    for grader_model, tokens in sorted(usage_by_model.items()):
        where = f"'data.model_graders_token_usage.{grader_model}'"
        if not isinstance(tokens, dict):
            raise _Invalid(f"{where} is not an object of token counts")
        counts = {key: _count(tokens.get(key), f"{where}.{key}") for key in _TOKEN_FIELDS}
        usage.append(
            (
                grader_model,
                counts["train_prompt_tokens"] + counts["eval_prompt_tokens"],
                counts["train_cached_tokens"] + counts["eval_cached_tokens"],
                counts["train_completion_tokens"] + counts["eval_completion_tokens"],
            )
        )
    # The RFT guide's per-grader usage (data.usage.graders[]): the same tokens as
    # model_graders_token_usage when both are present, so a model counted there is not
    # counted again (kind 3); a model only here is added.
    by_model = {model: (inp, cached, out) for model, inp, cached, out in usage}
    conflicts = []
    for model, documented in _usage_graders(data).items():
        if model not in by_model:
            by_model[model] = documented
        elif documented != by_model[model]:
            conflicts.append(
                f"grader {model}: data.model_graders_token_usage {by_model[model]} and "
                f"data.usage.graders {documented} (input, cached, output) differ; the first is "
                "used"
            )
    rows = [
        {
            "grader_model": model,
            "input_tokens": inp,
            "cached_input_tokens": cached,
            "output_tokens": out,
        }
        for model, (inp, cached, out) in sorted(by_model.items())
    ]
    timing = _obj(data.get("timing"))
    rft = (
        full is not None
        or bool(rows)
        or "graders" in timing
        or any("reward" in str(key) for key in data)
    )
    return {
        "step": step,
        "total_steps": total_steps,
        "full_iteration": None if full is None else float(full),
        "usage": rows,
        "rft_metrics": rft,
        "usage_conflict": "; ".join(conflicts) or None,
    }


_GRADER_COUNTS = (
    ("train_prompt_tokens_count", "valid_prompt_tokens_count"),
    ("train_cached_tokens_count", "valid_cached_tokens_count"),
    ("train_completion_tokens_count", "valid_completion_tokens_count"),
)


def _usage_graders(data: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """``data.usage.graders[]`` → (input, cached, output) tokens per grader model."""
    graders = _obj(data.get("usage")).get("graders")
    if graders is None:
        return {}
    if not isinstance(graders, list):
        raise _Invalid("'data.usage.graders' is not a list")
    found: dict[str, tuple[int, int, int]] = {}
    for index, grader in enumerate(graders):
        where = f"'data.usage.graders[{index}]'"
        if not isinstance(grader, dict):
            raise _Invalid(f"{where} is not an object")
        counts = tuple(
            sum(_count(grader.get(key), f"{where}.{key}") for key in keys)
            for keys in _GRADER_COUNTS
        )
        model = _text(grader.get("model"))
        if model is None:
            if any(counts):
                raise _Invalid(f"{where} has token counts but no 'model' to price them by")
            continue
        before = found.get(model, (0, 0, 0))
        # Two sub-graders of one model (a multi grader) both run: their tokens add up.
        found[model] = (before[0] + counts[0], before[1] + counts[1], before[2] + counts[2])
    return found


def _checkpoint_record(item: dict[str, Any]) -> dict[str, Any]:
    checkpoint_id = _id(item)
    created = _epoch(item, "created_at")
    if item.get("step_number") is None:
        raise _Invalid("missing 'step_number'")
    return {
        "id": checkpoint_id,
        "created_at": created,
        "step": _count(item.get("step_number"), "'step_number'"),
        "job_id": _text(item.get("fine_tuning_job_id")),
    }


# --- the import -------------------------------------------------------------------------


def import_openai(paths: Sequence[str | Path] | str | Path) -> OpenAIImport:
    """Import OpenAI fine-tuning exports (files or folders) as canonical events.

    Malformed objects, messages no rule knows and missing pieces are reported in the
    result, never guessed at. Raises ``UnreadableFileError`` for a path that does not
    exist and ``ExportError`` when nothing in the paths is an OpenAI export.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files, notes = _expand(paths)
    reader = _Reader()
    for file in files:
        if not reader.read_file(file) and not any(p.file == str(file) for p in reader.problems):
            reader.problems.append(
                ImportProblem(
                    file=str(file),
                    position="file",
                    reason="no fine-tuning job, event or checkpoint objects in it",
                )
            )
    if reader.seq + reader.pages == 0:
        where = ", ".join(str(p) for p in paths)
        found = (
            f" ({reader.problems[0].position}: {reader.problems[0].reason})"
            if reader.problems
            else ""
        )
        raise ExportError(
            f"{where}: no OpenAI fine-tuning export found{found}; expected a job object, an "
            "event or checkpoint list as the API returns it, or a folder written by 'rftcost fetch'"
        )
    problems = list(reader.problems)
    jobs = _jobs_frame(reader.jobs)
    events = _events_frame(reader.events)
    checkpoints = _checkpoints_frame(reader.checkpoints)
    webhooks = _webhooks_frame(reader.webhooks)

    events, resolve_problems, file_jobs = _resolve_event_jobs(events, jobs)
    checkpoints = _resolve_checkpoint_jobs(checkpoints, events, jobs)
    problems += resolve_problems + _unresolved(checkpoints, "checkpoint")
    checkpoints = checkpoints[checkpoints["job_id"].notna()]
    # A record that cannot be read makes its own job invalid: tie it to its job.
    problems = _tie_to_jobs(problems, file_jobs, jobs)

    duplicates = 0
    jobs, dropped, snapshot_notes = _merge_snapshots(jobs)
    duplicates += dropped
    notes += snapshot_notes
    events, dropped, conflicts = _dedupe(events)
    duplicates += dropped
    problems += conflicts
    checkpoints, dropped, conflicts = _dedupe(checkpoints)
    duplicates += dropped
    problems += conflicts
    webhooks, dropped, conflicts = _dedupe(webhooks)
    duplicates += dropped
    problems += conflicts

    jobs, method_notes, job_problems = _methods(jobs, events)
    notes += method_notes
    skipped_ids = set(jobs.loc[jobs["method"].fillna("") != "reinforcement", "job_id"]) - {
        p.job_id for p in job_problems
    }
    jobs = jobs[~jobs["job_id"].isin(skipped_ids)]
    events = events[~events["job_id"].isin(skipped_ids)]
    checkpoints = checkpoints[~checkpoints["job_id"].isin(skipped_ids)]
    webhooks = webhooks[~webhooks["job_id"].isin(skipped_ids)]
    # A skipped job is not billed: its unreadable records are still listed, untied.
    problems = [
        p.model_copy(update={"job_id": None}) if p.job_id in skipped_ids else p for p in problems
    ]

    events = _chronological(events)
    events = _classify(events)
    steps = _steps(events)
    usage = _usage_table(events)
    announced, announced_notes = _announced_checkpoints(events, checkpoints)
    status, status_notes = _status_rows(jobs, events, webhooks)
    canonical = _canonical(
        [
            _job_created_rows(jobs),
            _message_event_rows(events),
            status,
            _state_rows(events, steps),
            _step_rows(steps),
            _usage_rows(usage),
            _checkpoint_rows(checkpoints),
            announced,
        ]
    )
    problems += _usage_problems(usage)
    job_problems += _incomplete(jobs, events, steps, checkpoints, canonical)
    job_problems += _unknown_grader(jobs, steps, usage)
    vendor = _vendor_hours(events)
    notes += status_notes + announced_notes
    notes += _notes(jobs, events, steps, checkpoints, usage, vendor)
    return OpenAIImport(
        events=canonical,
        jobs=_imported_jobs(jobs, vendor),
        unknown_messages=_unknown(events),
        problems=tuple(problems),
        job_problems=tuple(job_problems),
        notes=tuple(notes),
        files=tuple(str(f) for f in files),
        objects_read=reader.seq,
        duplicates=duplicates,
    )


def _expand(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """Files named, and OpenAI export files below folders named; notes on skipped files."""
    files: list[Path] = []
    notes: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            below = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.name.lower().endswith(EXPORT_SUFFIXES)
            )
            for file in below:
                if _sniff_file(file):
                    files.append(file)
                else:
                    notes.append(f"{file}: skipped, not an OpenAI fine-tuning export")
        elif path.is_file():
            files.append(path)
        else:
            raise UnreadableFileError("no such file or folder", path=path)
    return files, notes


# --- frames of the records --------------------------------------------------------------

_PROVENANCE = {
    "file": "string",
    "folder": "string",
    "position": "string",
    "seq": "int64",
    "fingerprint": "string",
    "has_more": "boolean",
}


def _frame(records: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    dtypes = {**columns, **_PROVENANCE}
    if not records:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in dtypes.items()})
    frame = pd.DataFrame.from_records(records, columns=list(dtypes))
    return frame.astype({c: t for c, t in dtypes.items() if t != "object"})


def _jobs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    columns = {
        "job_id": "string",
        "created_at": "int64",
        "finished_at": "Int64",
        "status": "string",
        "model": "string",
        "method": "string",
        "team": "string",
        "project": "string",
        "data_sharing": "boolean",
        "grader_type": "string",
        "grader_model": "string",
        "model_grader": "boolean",
        **dict.fromkeys(_SETTINGS, "Int64"),
        "compute_multiplier": "Float64",
        "reasoning_effort": "string",
        "error_message": "string",
    }
    return _frame(records, columns)


def _events_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    columns = {
        "id": "string",
        "created_at": "int64",
        "level": "string",
        "message": "string",
        "type": "string",
        "step": "Int64",
        "total_steps": "Int64",
        "full_iteration": "Float64",
        "usage": "object",
        "rft_metrics": "bool",
        "usage_conflict": "string",
    }
    frame = _frame(records, columns)
    return frame.assign(job_id=pd.Series(pd.NA, index=frame.index, dtype="string"))


def _checkpoints_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    columns = {"id": "string", "created_at": "int64", "step": "Int64", "job_id": "string"}
    return _frame(records, columns)


def _webhooks_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    columns = {"id": "string", "created_at": "int64", "status": "string", "job_id": "string"}
    return _frame(records, columns)


# --- which job ---------------------------------------------------------------------------


def _resolve_event_jobs(
    events: pd.DataFrame, jobs: pd.DataFrame
) -> tuple[pd.DataFrame, list[ImportProblem], dict[str, str]]:
    """Give every event its job (see the module docstring); report files that cannot be told.

    Also returns the job of each events file, so that a record of the file that could
    not be read is tied to its job.
    """
    problems: list[ImportProblem] = []
    file_jobs: dict[str, str] = {}
    named = events["message"].str.extract(_CREATED_MESSAGE, expand=False)
    resolved = pd.Series(pd.NA, index=events.index, dtype="string")
    for file, group in events.groupby("file", sort=False):
        candidates = [
            set(named[group.index].dropna()),
            _ids_in_path(Path(str(file))),
            set(jobs.loc[jobs["folder"] == group["folder"].iloc[0], "job_id"]),
            _sibling_job(Path(str(file))),
            set(jobs["job_id"]),
        ]
        choice = next((c for c in candidates if c), set())
        if len(choice) == 1:
            file_jobs[str(file)] = next(iter(choice))
            resolved[group.index] = choice.pop()
            continue
        reason = (
            f"events of several jobs ({', '.join(sorted(choice))}) and no way to tell them apart"
            if choice
            else "cannot tell which job these events belong to: no 'Created fine-tuning job' "
            "event, no ftjob- id in the file or folder name, and no single job object"
        )
        problems.append(
            ImportProblem(
                file=str(file), position=f"{len(group)} events", reason=reason + ": skipped"
            )
        )
    events = events.assign(job_id=resolved)
    return events[events["job_id"].notna()], problems, file_jobs


def _tie_to_jobs(
    problems: list[ImportProblem], file_jobs: dict[str, str], jobs: pd.DataFrame
) -> list[ImportProblem]:
    """Give each problem of a record its job, told from its file as events are (R-invalid).

    A problem whose job cannot be told (several candidates) stays without one.
    """
    tied = []
    for problem in problems:
        if problem.job_id is None:
            file = Path(problem.file)
            candidates = [
                {file_jobs[problem.file]} if problem.file in file_jobs else set(),
                _ids_in_path(file),
                {j for f, j in file_jobs.items() if Path(f).parent == file.parent},
                set(jobs.loc[jobs["folder"] == str(file.parent), "job_id"]),
                _sibling_job(file),
                set(jobs["job_id"]),
            ]
            choice = next((c for c in candidates if c), set())
            if len(choice) == 1:
                problem = problem.model_copy(update={"job_id": choice.pop()})
        tied.append(problem)
    return tied


def _ids_in_path(file: Path) -> set[str]:
    for name in (file.stem, file.parent.name):
        found = set(_JOB_ID_IN_NAME.findall(name))
        if found:
            return found
    return set()


def _sibling_job(file: Path) -> set[str]:
    """The id of the job object in a ``job.json`` next to ``file`` (fetch layout)."""
    sibling = file.parent / "job.json"
    if sibling == file or not sibling.is_file():
        return set()
    try:
        value = json.loads(sibling.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return set()
    if (
        isinstance(value, dict)
        and value.get("object") == "fine_tuning.job"
        and isinstance(value.get("id"), str)
    ):
        return {value["id"]}
    return set()


def _resolve_checkpoint_jobs(
    checkpoints: pd.DataFrame, events: pd.DataFrame, jobs: pd.DataFrame
) -> pd.DataFrame:
    """A checkpoint names its job; else the job of its file's folder, like events."""
    missing = checkpoints["job_id"].isna()
    if not missing.any():
        return checkpoints
    fill = pd.Series(pd.NA, index=checkpoints.index, dtype="string")
    for file, group in checkpoints[missing].groupby("file", sort=False):
        candidates = [
            _ids_in_path(Path(str(file))),
            set(events.loc[events["folder"] == group["folder"].iloc[0], "job_id"]),
            set(jobs.loc[jobs["folder"] == group["folder"].iloc[0], "job_id"]),
            _sibling_job(Path(str(file))),
            set(jobs["job_id"]),
        ]
        choice = next((c for c in candidates if c), set())
        if len(choice) == 1:
            fill[group.index] = choice.pop()
    return checkpoints.assign(job_id=checkpoints["job_id"].fillna(fill))


def _unresolved(frame: pd.DataFrame, what: str) -> list[ImportProblem]:
    lost = frame[frame["job_id"].isna()]
    return [
        ImportProblem(
            file=str(row.file),
            position=str(row.position),
            reason=(
                f"{what} {row.id!s} names no job (fine_tuning_job_id) and its file "
                "does not tell: skipped"
            ),
        )
        for row in lost.itertuples()
    ]


# --- duplicates ---------------------------------------------------------------------------


def _merge_snapshots(jobs: pd.DataFrame) -> tuple[pd.DataFrame, int, list[str]]:
    """One row per job: its snapshots merged field by field (kind 2).

    The create, pause, resume and cancel responses and later retrieves of one job are
    snapshots. The most advanced status wins (a finished job over a paused one over a
    running one; at equal rank the one read last); every other field takes the value
    of the most advanced snapshot that has one, so an absent field never overrides a
    present one. Snapshots that disagree on data sharing or on how the job ended are
    reported with the value used.
    """
    rank = jobs["status"].map(_STATUS_RANK).astype("float64")
    rank = rank.fillna(len(_STATUS_RANK)).where(jobs["status"].notna(), -1.0)
    ordered = jobs.assign(_rank=rank).sort_values(
        ["job_id", "_rank", "seq"], ascending=[True, False, False], kind="stable"
    )
    merged = (
        ordered.drop(columns="_rank")
        .groupby("job_id", sort=False, as_index=False)
        .first()
        .astype(jobs.dtypes.to_dict())
    )
    notes: list[str] = []
    sharing = ordered.groupby("job_id", sort=False)["data_sharing"].nunique()
    for job_id in sharing[sharing > 1].index:
        row = merged[merged["job_id"] == job_id].iloc[0]
        seen = ordered.loc[ordered["job_id"] == job_id, ["data_sharing", "file"]].dropna()
        said = "; ".join(
            f"{f}: {bool(v)}" for v, f in zip(seen["data_sharing"], seen["file"], strict=True)
        )
        notes.append(
            f"job {job_id}: snapshots disagree on data sharing (shared_with_openai {said}); "
            f"used {bool(row['data_sharing'])}, from the latest snapshot ({row['file']})"
        )
    final = ordered[ordered["status"].isin(_FINAL)]
    ends = final.groupby("job_id", sort=False)["status"].nunique()
    for job_id in ends[ends > 1].index:
        endings = sorted(set(final.loc[final["job_id"] == job_id, "status"]))
        used = merged.loc[merged["job_id"] == job_id, "status"].iloc[0]
        notes.append(
            f"job {job_id}: snapshots disagree on how the job ended ({', '.join(endings)}); "
            f"the snapshot read last says {used!r} and is used"
        )
    merged = merged.sort_values("seq").reset_index(drop=True)
    return merged, len(jobs) - len(merged), notes


def _methods(
    jobs: pd.DataFrame, events: pd.DataFrame
) -> tuple[pd.DataFrame, list[str], list[ImportProblem]]:
    """RFT jobs: named so by a snapshot, or (no snapshot names a method) by RFT metrics.

    The pause / resume / cancel responses carry no ``method``: a job whose metrics
    events are RFT's (step timing, grader usage, rewards) is an RFT job. A job whose
    method no snapshot names and no RFT metrics show cannot be billed: it is invalid,
    never dropped. Another method (supervised, dpo) is skipped with a note.
    """
    rft_jobs = set(events.loc[events["rft_metrics"], "job_id"])
    unnamed = jobs["method"].isna()
    inferred = unnamed & jobs["job_id"].isin(rft_jobs)
    notes = [
        f"job {job_id}: no snapshot names its method; its metrics events are RFT's "
        "(step timing, grader usage or rewards): imported as reinforcement fine-tuning"
        for job_id in jobs.loc[inferred, "job_id"]
    ]
    problems = [
        ImportProblem(
            file=str(row.file),
            position="job",
            reason="no snapshot names the job's method and no metrics event shows RFT "
            "(step timing, grader usage): it cannot be billed as reinforcement fine-tuning; "
            "export the job object (GET /v1/fine_tuning/jobs/{id}) with its method",
            job_id=str(row.job_id),
        )
        for row in jobs[unnamed & ~inferred].itertuples()
    ]
    method = jobs["method"].mask(inferred, "reinforcement")
    skipped = jobs[method.notna() & (method != "reinforcement")]
    notes += [
        f"job {row.job_id}: method {row.method}, not reinforcement fine-tuning: skipped "
        "with its events"
        for row in skipped.itertuples()
    ]
    return jobs.assign(method=method), notes, problems


def _dedupe(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, list[ImportProblem]]:
    """Objects with the same id within a job are one; the same id with other content is reported."""
    frame = frame.sort_values("seq")
    repeated = frame.duplicated(["job_id", "id"], keep="first")
    same = frame.duplicated(["job_id", "id", "fingerprint"], keep="first")
    conflicting = frame[repeated & ~same]
    kept = frame[~repeated]
    first_seen = dict(
        zip(
            zip(kept["job_id"], kept["id"], strict=True),
            kept["file"] + ": " + kept["position"],
            strict=True,
        )
    )
    problems = [
        ImportProblem(
            file=str(file),
            position=str(position),
            reason=(
                f"id {object_id} also read at {first_seen[(job_id, object_id)]} "
                "with other content: the first is kept"
            ),
            job_id=str(job_id),
            line=_line_in_file(str(file), str(object_id)),
        )
        for file, position, job_id, object_id in zip(
            conflicting["file"],
            conflicting["position"],
            conflicting["job_id"],
            conflicting["id"],
            strict=True,
        )
    ]
    return frame[~repeated].reset_index(drop=True), int(repeated.sum()), problems


# --- classification and time ------------------------------------------------------------

_RULES = pd.DataFrame(MESSAGE_RULES, columns=list(MessageRule._fields))
_RULES = _RULES.assign(
    changes_state=_RULES["event"].notna() | _RULES["phase"].notna() | _RULES["ends_phase"]
)


def _chronological(events: pd.DataFrame) -> pd.DataFrame:
    """Events in time order per job; at equal times, in the API's order (newest first, reversed)."""
    ordered = events.assign(_neg_seq=-events["seq"]).sort_values(
        ["job_id", "created_at", "_neg_seq"], kind="stable"
    )
    ts = pd.to_datetime(ordered["created_at"], unit="s", utc=True).astype("datetime64[ns, UTC]")
    return ordered.drop(columns="_neg_seq").assign(ts=ts).reset_index(drop=True)


def _classify(events: pd.DataFrame) -> pd.DataFrame:
    """The first rule matching each message (-1: none, -2: a metrics event) and its effects."""
    is_message = events["type"] == "message"
    rule = pd.Series(-1, index=events.index, dtype="int64")
    for index, row in enumerate(MESSAGE_RULES):
        hit = (
            is_message
            & (rule == -1)
            & events["message"].str.match(row.pattern, flags=re.IGNORECASE)
        )
        rule = rule.mask(hit.fillna(False).astype(bool), index)
    rules = _RULES.reindex(rule.to_numpy())  # -1 (unknown), -2 (metrics): empty rows
    return events.assign(
        rule=rule.where(is_message, -2),
        rule_event=pd.Series(rules["event"].to_numpy(), index=events.index, dtype="string"),
        rule_phase=pd.Series(rules["phase"].to_numpy(), index=events.index, dtype="string"),
        changes_state=pd.Series(rules["changes_state"].to_numpy(), index=events.index)
        .fillna(False)
        .astype(bool),
        training_starts=pd.Series(rules["training_starts"].to_numpy(), index=events.index)
        .fillna(False)
        .astype(bool),
    )


def _steps(events: pd.DataFrame) -> pd.DataFrame:
    """Metrics events with the start of their billable interval (timing, else previous anchor)."""
    anchors = events[(events["type"] == "metrics") | events["training_starts"]]
    metrics = events[events["type"] == "metrics"]
    previous = anchors.groupby("job_id", sort=False)["ts"].shift(1).reindex(metrics.index)
    metrics = metrics.assign(previous=previous)
    micros = (metrics["full_iteration"] * 1_000_000).round().astype("float64")
    duration = pd.to_timedelta(micros, unit="us")  # NaN (no timing) → NaT
    timed = metrics["full_iteration"].notna()
    start = (metrics["ts"] - duration).where(timed, metrics["previous"])
    return metrics.assign(start=start, timed=timed)


def _state_rows(events: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Phases started by messages, ended by the next state change or the next step's start."""
    changes = events[events["changes_state"]]
    next_change = changes.groupby("job_id", sort=False)["ts"].shift(-1)
    states = changes.assign(next_change=next_change)
    states = states[states["rule_phase"].notna()].sort_values("ts", kind="stable")
    later_steps = (
        steps.loc[steps["start"].notna(), ["job_id", "ts", "start"]]
        .rename(columns={"ts": "step_ts", "start": "step_start"})
        .sort_values("step_ts", kind="stable")
    )
    merged = pd.merge_asof(
        states,
        later_steps,
        left_on="ts",
        right_on="step_ts",
        by="job_id",
        direction="forward",
        allow_exact_matches=False,
    ).set_axis(states.index)
    starts_before = merged["step_start"].notna() & (merged["step_start"] <= merged["ts"])
    step_bound = merged["step_start"].mask(starts_before, merged["ts"])
    end = pd.concat([merged["next_change"], step_bound], axis=1).min(axis=1)
    empty = end.notna() & (end <= merged["ts"])
    opened = merged[~empty]
    closed = opened[end[~empty].notna()]
    starts = pd.DataFrame(
        {
            "job_id": opened["job_id"],
            "ts": opened["ts"],
            "event": "phase_start",
            "event_id": "openai:" + opened["id"] + ":phase_start:" + opened["rule_phase"],
            "phase": opened["rule_phase"],
            "message": opened["message"],
        }
    )
    ends = pd.DataFrame(
        {
            "job_id": closed["job_id"],
            "ts": end[closed.index],
            "event": "phase_end",
            "event_id": "openai:" + closed["id"] + ":phase_end:" + closed["rule_phase"],
            "phase": closed["rule_phase"],
        }
    )
    return pd.concat([starts, ends], ignore_index=True)


# --- canonical rows ------------------------------------------------------------------------


def _job_created_rows(jobs: pd.DataFrame) -> pd.DataFrame:
    settings = [
        "team",
        "project",
        "model",
        "data_sharing",
        "grader_model",
        "grader_type",
        *_SETTINGS,
        "compute_multiplier",
        "reasoning_effort",
    ]
    content = jobs[settings].astype("object").where(jobs[settings].notna(), None)
    digest = [
        hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:12]
        for record in content.to_dict("records")
    ]
    return jobs[settings].assign(
        job_id=jobs["job_id"],
        ts=pd.to_datetime(jobs["created_at"], unit="s", utc=True),
        event="job_created",
        event_id="openai:"
        + jobs["job_id"]
        + ":created:"
        + pd.Series(digest, index=jobs.index, dtype="string"),
    )


def _message_event_rows(events: pd.DataFrame) -> pd.DataFrame:
    emitting = events[events["rule_event"].notna()]
    return pd.DataFrame(
        {
            "job_id": emitting["job_id"],
            "ts": emitting["ts"],
            "event": emitting["rule_event"],
            "event_id": "openai:" + emitting["id"] + ":" + emitting["rule_event"],
            "message": emitting["message"],
        }
    )


def _step_rows(steps: pd.DataFrame) -> pd.DataFrame:
    done = pd.DataFrame(
        {
            "job_id": steps["job_id"],
            "ts": steps["ts"],
            "event": "step_completed",
            "event_id": "openai:" + steps["id"] + ":step_completed",
            "step": steps["step"],
            "message": steps["message"],
        }
    )
    timed = steps[steps["start"].notna() & (steps["start"] < steps["ts"])]
    starts = pd.DataFrame(
        {
            "job_id": timed["job_id"],
            "ts": timed["start"],
            "event": "phase_start",
            "event_id": "openai:" + timed["id"] + ":phase_start:" + STEP_PHASE,
            "phase": STEP_PHASE,
            "message": "step " + timed["step"].astype("string"),
        }
    )
    ends = starts.assign(
        ts=timed["ts"],
        event="phase_end",
        event_id="openai:" + timed["id"] + ":phase_end:" + STEP_PHASE,
    )
    return pd.concat([done, starts, ends], ignore_index=True)


def _usage_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per metrics event and grader model, with its token counts."""
    columns = ["job_id", "id", "ts", "file", "position"]
    metrics = events.loc[events["type"] == "metrics", [*columns, "usage"]].explode("usage")
    metrics = metrics[metrics["usage"].notna()].reset_index(drop=True)
    tokens = pd.DataFrame(
        metrics["usage"].tolist(),
        index=metrics.index,
        columns=["grader_model", "input_tokens", "cached_input_tokens", "output_tokens"],
    )
    return metrics[columns].join(tokens)


def _usage_rows(usage: pd.DataFrame) -> pd.DataFrame:
    used = usage[["input_tokens", "cached_input_tokens", "output_tokens"]].gt(0).any(axis=1)
    rows = usage[used]
    return rows.drop(columns=["id", "file", "position"]).assign(
        event="grader_usage",
        event_id="openai:" + rows["id"] + ":grader_usage:" + rows["grader_model"],
    )


def _usage_problems(usage: pd.DataFrame) -> list[ImportProblem]:
    bad = usage[usage["cached_input_tokens"] > usage["input_tokens"]]
    reason = (
        "event "
        + bad["id"]
        + ": grader "
        + bad["grader_model"]
        + " has more cached tokens ("
        + bad["cached_input_tokens"].astype("string")
        + ") than prompt tokens ("
        + bad["input_tokens"].astype("string")
        + "); prompt tokens include cached ones (R9)"
    )
    return [
        ImportProblem(file=str(file), position=str(position), reason=str(text), job_id=str(job))
        for file, position, text, job in zip(
            bad["file"], bad["position"], reason, bad["job_id"], strict=True
        )
    ]


def _checkpoint_rows(checkpoints: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "job_id": checkpoints["job_id"],
            "ts": pd.to_datetime(checkpoints["created_at"], unit="s", utc=True),
            "event": "checkpoint_saved",
            "event_id": "openai:" + checkpoints["id"] + ":checkpoint_saved",
            "step": checkpoints["step"],
        }
    )


_EVENT_RANK = {
    "job_created": 0,
    "phase_end": 1,
    "step_completed": 2,
    "grader_usage": 3,
    "checkpoint_saved": 4,
    "paused": 5,
    "succeeded": 5,
    "cancelled": 5,
    "failed": 5,
    "resumed": 6,
    "phase_start": 7,
}


def _canonical(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate event rows into the canonical columns and dtypes, in time order."""
    filled = [part for part in parts if not part.empty]
    frame = pd.concat(filled, ignore_index=True) if filled else pd.DataFrame(index=pd.RangeIndex(0))
    columns: dict[str, pd.Series] = {}
    for column in EVENT_COLUMNS:
        values = frame.get(column, pd.Series(pd.NA, index=frame.index, dtype="object"))
        if column == "ts":
            columns[column] = pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")
        elif column in STRING_COLUMNS:
            columns[column] = values.astype("string")
        elif column in INT_COLUMNS:
            columns[column] = values.astype("Int64")
        elif column in FLOAT_COLUMNS:
            columns[column] = values.astype("Float64")
        elif column in BOOL_COLUMNS:
            columns[column] = values.astype("boolean")
    canonical = pd.DataFrame(columns, index=frame.index)
    rank = canonical["event"].map(_EVENT_RANK).astype("int64")
    return (
        canonical.assign(_rank=rank)
        .sort_values(["job_id", "ts", "_rank", "event_id"], kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def _status_rows(
    jobs: pd.DataFrame, events: pd.DataFrame, webhooks: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """How a job ended when no message of its events says so, from other evidence (R4).

    The message wording varies (API reference, logs, Azure), so a job's state comes
    from every saved shape of it, in this order: a message the table knows; a webhook
    payload (``fine_tuning.job.succeeded`` / ``.failed`` / ``.cancelled``) at its time;
    an error-level event of a job whose object says ``failed`` (or says nothing), at its
    time; the job object's ``status`` at ``finished_at`` (else the job's last event).
    Each inferred event is reported with its evidence; evidence that contradicts the
    messages is reported too, and the messages (time-stamped) are used.
    """
    said = events[events["rule_event"].isin(_FINAL)]
    said_by_job = {
        str(k): str(v) for k, v in said.groupby("job_id", sort=False)["rule_event"].last().items()
    }
    status = jobs.set_index("job_id")["status"]
    status_text = {str(k): _optional_text(v) for k, v in status.items()}
    last_ts = events.groupby("job_id", sort=False)["ts"].max()
    notes: list[str] = []
    parts: list[pd.DataFrame] = []
    known = set(said_by_job)

    hooks = webhooks.sort_values(["created_at", "seq"]).drop_duplicates("job_id", keep="last")
    for row in hooks[hooks["job_id"].isin(known)].itertuples():
        if said_by_job[str(row.job_id)] != row.status:
            notes.append(
                f"job {row.job_id}: webhook {row.id} says {row.status!r} but its events say "
                f"{said_by_job[str(row.job_id)]!r}: the events are used"
            )
    hooks = hooks[~hooks["job_id"].isin(known)]
    hook_ts = pd.to_datetime(hooks["created_at"], unit="s", utc=True)
    parts.append(
        pd.DataFrame(
            {
                "job_id": hooks["job_id"],
                "ts": hook_ts,
                "event": hooks["status"],
                "event_id": "openai:" + hooks["id"] + ":" + hooks["status"],
                "message": "webhook fine_tuning.job." + hooks["status"],
            }
        )
    )
    notes += [
        f"job {row.job_id}: {row.status} at {ts.isoformat()} from webhook {row.id} "
        "(no message of its events says so)"
        for row, ts in zip(hooks.itertuples(), hook_ts, strict=True)
    ]
    known |= set(hooks["job_id"])

    job_status = _lookup(events["job_id"], status)
    errors = events[
        (events["rule"] == -1)
        & events["level"].str.lower().eq("error").fillna(False).astype(bool)
        & ~events["job_id"].isin(known)
        & (job_status.isna() | job_status.eq("failed").fillna(False).astype(bool))
    ].drop_duplicates("job_id", keep="last")
    parts.append(
        pd.DataFrame(
            {
                "job_id": errors["job_id"],
                "ts": errors["ts"],
                "event": "failed",
                "event_id": "openai:" + errors["id"] + ":failed",
                "message": errors["message"],
            }
        )
    )
    notes += [
        f"job {row.job_id}: failed at {pd.Timestamp(cast(Any, row.ts)).isoformat()} from its "
        f"error-level event {row.id} ({row.message!r})"
        + (
            f"; the job object says {status_text[str(row.job_id)]!r}"
            if str(row.job_id) in status_text
            else ""
        )
        for row in errors.itertuples()
    ]
    known |= set(errors["job_id"])

    ended = jobs[jobs["status"].isin(_FINAL)]
    for row in ended[ended["job_id"].isin(known)].itertuples():
        if said_by_job.get(str(row.job_id), str(row.status)) != str(row.status):
            notes.append(
                f"job {row.job_id}: the job object says {row.status!r} but its events say "
                f"{said_by_job[str(row.job_id)]!r}: the events (time-stamped) are used"
            )
    ended = ended[~ended["job_id"].isin(known)]
    finished = pd.to_datetime(ended["finished_at"].astype("float64"), unit="s", utc=True)
    fallback = _lookup(ended["job_id"], last_ts)
    at = finished.fillna(fallback)
    ended, finished, at = ended[at.notna()], finished[at.notna()], at[at.notna()]
    parts.append(
        pd.DataFrame(
            {
                "job_id": ended["job_id"],
                "ts": at,
                "event": ended["status"],
                "event_id": "openai:" + ended["job_id"] + ":status:" + ended["status"],
                "message": "job object status " + ended["status"],
            }
        )
    )
    notes += [
        f"job {row.job_id}: {row.status} at {when.isoformat()} from the job object "
        + (
            "(status and finished_at)"
            if not _missing(fin)
            else "(status; no finished_at: at its last event)"
        )
        + " as no message of its events says so"
        + (
            f"; its error: {_optional_text(row.error_message)}"
            if not _missing(row.error_message)
            else ""
        )
        for row, when, fin in zip(ended.itertuples(), at, finished, strict=True)
    ]

    # A paused job (the pause response) whose events do not end paused: paused at its
    # last event, the last time known (R4: a pause issues a charge).
    toggles = events[events["rule_event"].isin(["paused", "resumed"])]
    last_toggle = toggles.groupby("job_id", sort=False)["rule_event"].last()
    paused = jobs[jobs["status"].eq("paused").fillna(False).astype(bool)]
    paused = paused[
        _lookup(paused["job_id"], last_toggle).ne("paused").fillna(True).astype(bool)
        & paused["job_id"].isin(last_ts.index)
    ]
    parts.append(
        pd.DataFrame(
            {
                "job_id": paused["job_id"],
                "ts": _lookup(paused["job_id"], last_ts),
                "event": "paused",
                "event_id": "openai:" + paused["job_id"] + ":status:paused",
                "message": "job object status paused",
            }
        )
    )
    notes += [
        f"job {job_id}: paused at its last event, from the job object (status 'paused'); "
        "no message of its events says so"
        for job_id in paused["job_id"]
    ]
    return pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True), notes


def _lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``table[key]`` for each key (missing: NA), keeping the table's dtype."""
    table = table[~table.index.duplicated(keep="last")]
    return pd.Series(table.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=table.dtype)


_ANNOUNCED = re.compile(r"Checkpoint created at step (\d+)", re.IGNORECASE)


def _announced_checkpoints(
    events: pd.DataFrame, checkpoints: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """Checkpoints a message announces that the checkpoint list lacks (kind 8).

    The API keeps only the best three checkpoints of a job, so a checkpoint may be
    announced and absent from the list. Its message comes when the job ends, so it is
    taken as saved at the time of its step's metrics event (else at the message), and
    reported: work before it is not lost (R5).
    """
    step = events["message"].str.extract(_ANNOUNCED, expand=False)
    announced = events[step.notna()].assign(step=step[step.notna()].astype("int64"))
    listed = checkpoints[["job_id", "step"]].astype({"step": "int64"}).assign(_listed=True)
    flagged = announced.merge(listed.drop_duplicates(), on=["job_id", "step"], how="left")
    missing = announced[flagged["_listed"].isna().to_numpy()].drop_duplicates(["job_id", "step"])
    metrics = (
        events[events["type"] == "metrics"]
        .drop_duplicates(["job_id", "step"], keep="last")
        .set_index(["job_id", "step"])["ts"]
    )
    keys = pd.MultiIndex.from_arrays([missing["job_id"], missing["step"].astype("Int64")])
    at = pd.Series(metrics.reindex(keys).to_numpy(), index=missing.index).fillna(missing["ts"])
    rows = pd.DataFrame(
        {
            "job_id": missing["job_id"],
            "ts": at,
            "event": "checkpoint_saved",
            "event_id": "openai:" + missing["id"] + ":checkpoint_saved",
            "step": missing["step"],
        }
    )
    has_list = set(checkpoints["job_id"])
    notes = [
        f"job {row.job_id}: checkpoint at step {row.step} announced by event {row.id} but "
        + (
            "absent from the checkpoint list (the API keeps only the best three)"
            if row.job_id in has_list
            else "no checkpoint list was exported"
        )
        + f": taken as saved at {pd.Timestamp(cast(Any, when)).isoformat()} "
        + "(its step's metrics event)"
        for row, when in zip(missing.itertuples(), at, strict=True)
    ]
    return rows, notes


def _incomplete(
    jobs: pd.DataFrame,
    events: pd.DataFrame,
    steps: pd.DataFrame,
    checkpoints: pd.DataFrame,
    canonical: pd.DataFrame,
) -> list[ImportProblem]:
    """Jobs whose time the export does not hold in full: amount unknown, not smaller (kind 10)."""
    found: dict[str, list[str]] = {}

    def add(job_ids: Any, reason: Any) -> None:
        for job_id, text in zip(job_ids, reason, strict=True):
            found.setdefault(str(job_id), []).append(str(text))

    pages = events[events["has_more"].notna()]
    more = pages.groupby("job_id", sort=False)["has_more"].agg(["any", "all"])
    cut = more[more["all"]].index
    add(
        cut,
        [
            "its events page says has_more: true and no later page was exported: older "
            "events are missing (export every page, e.g. with 'rftcost fetch')"
        ]
        * len(cut),
    )

    numbered = steps[steps["step"] >= 1]
    per_job = numbered.groupby("job_id", sort=False)["step"].agg(["max", "nunique", "min"])
    per_job = per_job.join(steps.groupby("job_id", sort=False)["total_steps"].max())
    gaps = per_job[per_job["nunique"] < per_job["max"]]
    add(
        gaps.index,
        [
            f"metrics events for {row.nunique} of steps 1–{row.max} (the first is step "
            f"{row.min}): the time of the missing steps is not in the export"
            for row in gaps.itertuples()
        ],
    )
    final_groups = canonical[canonical["event"].isin(_FINAL)].groupby("job_id", sort=False)
    succeeded = final_groups["event"].last()
    short = per_job[
        per_job.index.isin(succeeded[succeeded == "succeeded"].index)
        & per_job["total_steps"].notna()
        & (per_job["max"] < per_job["total_steps"].fillna(0))
    ]
    add(
        short.index,
        [
            f"succeeded, but its metrics events end at step {row.max} of {row.total_steps}: "
            "the last steps are not in the export"
            for row in short.itertuples()
        ],
    )
    # Steps run back to back: a cancel or pause that comes longer than any step after
    # the last step's end leaves work that no metrics event of the export accounts for.
    timed = steps[steps["start"].notna()]
    span = timed.assign(length=timed["ts"] - timed["start"]).groupby("job_id", sort=False)
    spans = span.agg(last_end=("ts", "max"), longest=("length", "max"))
    stopping = canonical[canonical["event"].isin(["cancelled", "paused"])]
    stops = stopping.groupby("job_id", sort=False)["ts"].max().rename("stop")
    gap = spans.join(stops, how="inner")
    gap = gap[(gap["stop"] - gap["last_end"]) > gap["longest"]]
    gap = gap.assign(
        idle=(gap["stop"] - gap["last_end"]).dt.total_seconds(),
        step_s=gap["longest"].dt.total_seconds(),
    )
    add(
        gap.index,
        [
            f"its last step ends {row.idle:.0f} s before it "
            f"stops, longer than any of its steps ({row.step_s:.0f} s): a "
            "metrics event is missing from the export"
            for row in gap.itertuples()
        ],
    )
    # How and when it ended must be known: a stop time guessed from the last event could
    # leave out steps the export lacks.
    finals = canonical[canonical["event"].isin(_FINAL)]
    guessed = canonical[canonical["event_id"].str.contains(":status:", regex=False, na=False)]
    untimed_stop = jobs[
        jobs["job_id"].isin(set(guessed["job_id"]))
        & (jobs["finished_at"].isna() | jobs["status"].eq("paused").fillna(False).astype(bool))
    ]
    add(
        untimed_stop["job_id"],
        [
            f"the job object says {row.status!r} but has no finished_at and no event says when: "
            "work after its last event may be missing"
            for row in untimed_stop.itertuples()
        ],
    )
    open_end = jobs[jobs["finished_at"].notna() & ~jobs["job_id"].isin(set(finals["job_id"]))]
    open_end = open_end[~open_end["status"].isin(["paused"]).fillna(False).astype(bool)]
    add(
        open_end["job_id"],
        [
            "the job object has finished_at but nothing in the export says how it ended "
            "(no status, message or webhook)"
        ]
        * len(open_end),
    )
    # A job that stopped with no metrics event cost nothing only if the export shows it
    # never trained: created (its first message is there) and never started.
    started = set(events.loc[events["training_starts"], "job_id"])
    created = set(events.loc[events["rule"] == 0, "job_id"])
    stopped = canonical[canonical["event"].isin(["succeeded", "cancelled", "paused"])]
    blank = set(stopped["job_id"]) - set(steps["job_id"])
    trained = sorted(blank & started)
    add(
        trained,
        [
            "training started and the job stopped, but no metrics event is in the export: "
            "its steps' time is unknown"
        ]
        * len(trained),
    )
    headless = sorted(blank - started - created)
    add(
        headless,
        [
            "its events begin after its creation (no 'Created fine-tuning job' or start "
            "message) and hold no metrics event: its time is unknown"
        ]
        * len(headless),
    )
    last_step = per_job["max"]
    beyond = checkpoints.assign(last=_lookup(checkpoints["job_id"], last_step))
    beyond = beyond[beyond["last"].isna() | (beyond["step"] > beyond["last"].fillna(0))]
    beyond = beyond.drop_duplicates("job_id", keep="last")
    add(
        beyond["job_id"],
        [
            f"a checkpoint at step {row.step} but "
            + (
                "no metrics event"
                if _missing(row.last)
                else f"metrics events only up to step {int(cast(Any, row.last))}"
            )
            + ": the events around it are not in the export"
            for row in beyond.itertuples()
        ],
    )
    untimed = steps[steps["start"].isna()].drop_duplicates("job_id")
    add(
        untimed["job_id"],
        [
            f"step {row.step} has no timing (data.timing.step.full_iteration) and no earlier "
            "step or start message: its time is not in the export"
            for row in untimed.itertuples()
        ],
    )
    # A step of no time (full_iteration 0, or no timing and its anchor at its own time)
    # was still run: billing it as 0 s would shorten the bill (R1), so the time is unknown.
    empty = steps[steps["start"].notna() & (steps["start"] >= steps["ts"])]
    empty = empty.drop_duplicates("job_id")
    add(
        empty["job_id"],
        [
            f"step {row.step} takes no time ("
            + (
                f"data.timing.step.full_iteration is {row.full_iteration:g}"
                if row.timed
                else "no timing, and its metrics event is at the time of the one before"
            )
            + "): its time is not in the export"
            for row in empty.itertuples()
        ],
    )
    quiet = jobs[
        ~jobs["job_id"].isin(set(events["job_id"]))
        & ~jobs["status"].isin(["validating_files", "queued"])
    ]
    add(
        quiet["job_id"],
        [
            f"no events in the export (status {_optional_text(row.status) or 'unknown'}): its "
            "time is unknown; "
            "export its events too"
            for row in quiet.itertuples()
        ],
    )
    file_of = dict(zip(jobs["job_id"], jobs["file"], strict=True))
    file_of.update(
        {j: f for j, f in zip(events["job_id"], events["file"], strict=True) if j not in file_of}
    )
    return [
        ImportProblem(
            file=file_of.get(job_id, ""),
            position="job",
            reason="time incomplete, amount unknown: " + "; ".join(reasons),
            job_id=job_id,
        )
        for job_id, reasons in sorted(found.items())
    ]


def _unknown_grader(
    jobs: pd.DataFrame, steps: pd.DataFrame, usage: pd.DataFrame
) -> list[ImportProblem]:
    """A model-grader job with steps and no token usage to read: grader amount unknown (R9)."""
    used = usage[usage[["input_tokens", "output_tokens"]].gt(0).any(axis=1)]
    graded = jobs[
        jobs["model_grader"].fillna(False).astype(bool)
        & jobs["job_id"].isin(set(steps["job_id"]))
        & ~jobs["job_id"].isin(set(used["job_id"]))
    ]
    return [
        ImportProblem(
            file=str(row.file),
            position="job",
            reason=(
                "grader amount unknown: its grader runs a model ("
                + (_optional_text(row.grader_model) or "see method.reinforcement.grader")
                + ") but no metrics event has token usage to read "
                "(data.usage.graders[] or data.model_graders_token_usage)"
            ),
            job_id=str(row.job_id),
        )
        for row in graded.itertuples()
    ]


_VENDOR_HOURS = re.compile(r"^Training hours billed:\s*([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)


def _vendor_hours(events: pd.DataFrame) -> pd.Series:
    """Azure's "Training hours billed: X" per job (the last one): text of a decimal."""
    hours = events["message"].str.extract(_VENDOR_HOURS, expand=False)
    said = events.assign(hours=hours)[hours.notna()]
    return said.groupby("job_id", sort=False)["hours"].last()


# --- the report ---------------------------------------------------------------------------


def _unknown(events: pd.DataFrame) -> tuple[UnknownMessage, ...]:
    unknown = events[events["rule"] == -1]
    return tuple(
        UnknownMessage(
            job_id=str(row.job_id),
            event_id=str(row.id),
            created_at=pd.Timestamp(cast(Any, row.ts)).to_pydatetime(),
            level=_optional_text(row.level),
            message=str(row.message),
            file=str(row.file),
        )
        for row in unknown.itertuples()
    )


def _imported_jobs(jobs: pd.DataFrame, vendor: pd.Series) -> tuple[ImportedJob, ...]:
    hours = {str(k): str(v) for k, v in vendor.items()}

    def when(epoch: Any) -> datetime | None:
        if _missing(epoch):
            return None
        return pd.Timestamp(int(epoch), unit="s", tz="UTC").to_pydatetime()

    return tuple(
        ImportedJob(
            job_id=str(row.job_id),
            status=_optional_text(row.status),
            model=_optional_text(row.model),
            created_at=cast(datetime, when(row.created_at)),
            finished_at=when(row.finished_at),
            team=_optional_text(row.team),
            project=_optional_text(row.project),
            data_sharing=None if _missing(row.data_sharing) else bool(row.data_sharing),
            grader_type=_optional_text(row.grader_type),
            grader_model=_optional_text(row.grader_model),
            file=str(row.file),
            vendor_billed_hours=Decimal(hours[str(row.job_id)])
            if str(row.job_id) in hours
            else None,
        )
        for row in jobs.sort_values("job_id").itertuples()
    )


def _missing(value: object) -> bool:
    return bool(pd.isna(cast(Any, value)))


def _optional_text(value: object) -> str | None:
    return None if _missing(value) else str(value)


def _notes(
    jobs: pd.DataFrame,
    events: pd.DataFrame,
    steps: pd.DataFrame,
    checkpoints: pd.DataFrame,
    usage: pd.DataFrame,
    vendor: pd.Series,
) -> list[str]:
    notes: list[str] = []
    by_time = steps[~steps["timed"] & steps["start"].notna()]
    if len(by_time):
        notes.append(
            f"{len(by_time)} step(s) without data.timing.step.full_iteration: timed from the "
            "previous step or start message"
        )
    aside = events[events["type"].isin(NOTE_EVENT_TYPES)]
    notes += [
        f"job {row.job_id}: event {row.id} of type {row.type!r} (safety checks): not billing "
        "data, noted"
        for row in aside.itertuples()
    ]
    conflicts = events[events["usage_conflict"].notna()]
    notes += [
        f"job {row.job_id}: event {row.id}: {row.usage_conflict}" for row in conflicts.itertuples()
    ]
    # The vendor's own figure is a cross-check: compared with the time measured from
    # the steps (before any R5 loss or R11 rounding), never billed from.
    timed = steps[steps["start"].notna()]
    measured = (timed["ts"] - timed["start"]).dt.total_seconds().groupby(timed["job_id"]).sum()
    for job_id, text in vendor.items():
        ours = Decimal(str(float(measured.get(job_id, 0.0)))) / 3600
        theirs = Decimal(str(text))
        agrees = abs(ours - theirs) < Decimal("0.0005")
        notes.append(
            f"job {job_id}: the vendor's event says 'Training hours billed: {theirs}'; the "
            f"steps measure {ours:.3f} h: "
            + ("they agree" if agrees else "they DIFFER, check the invoice for this job")
        )
    announced = events.loc[
        events["message"].str.match(r"Checkpoint created at step", na=False), "job_id"
    ]
    for job_id in sorted(set(announced) - set(checkpoints["job_id"])):
        notes.append(
            f"job {job_id}: checkpoint messages but no checkpoint list: export the checkpoints "
            "too (rftcost fetch does); the messages are used meanwhile"
        )
    return notes


# --- writing --------------------------------------------------------------------------------


def events_to_jsonl(events: pd.DataFrame) -> str:
    """Canonical events → JSON Lines text: ISO 8601 ``Z`` timestamps, empty fields left out."""
    if events.empty:
        return ""
    ts = events["ts"].dt.tz_convert("UTC")
    micros = ts.dt.microsecond
    fraction = ("." + micros.astype("string").str.zfill(6).str.rstrip("0")).where(micros > 0, "")
    table = events[list(EVENT_COLUMNS)].assign(
        ts=ts.dt.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    )
    # Rows with the same empty fields are rendered together, without those fields.
    present = table.notna().to_numpy()
    pattern = present.astype(np.int64) @ (
        np.int64(1) << np.arange(present.shape[1], dtype=np.int64)
    )
    rendered = []
    for _, group in table.groupby(pattern, sort=False):
        filled = group.loc[:, group.notna().all()]
        text = filled.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
        rendered.append(pd.Series(text.splitlines(), index=group.index, dtype="object"))
    lines = pd.concat(rendered).sort_index()
    return _UNESCAPED_SLASH.sub(r"\1/", "\n".join(lines) + "\n")


_UNESCAPED_SLASH = re.compile(r"(?<!\\)((?:\\\\)*)\\/")
"""pandas escapes ``/`` as ``\\/`` (valid JSON, hard to read): undo it outside escapes."""
