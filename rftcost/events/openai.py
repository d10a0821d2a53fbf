"""OpenAI fine-tuning API exports → canonical events (event-log.md, second part).

What is read
------------
A path is a file or a folder (every ``.json``, ``.jsonl`` and ``.ndjson`` file below
it that holds OpenAI objects, in sorted order). A file holds, as the API returns them:

- a ``fine_tuning.job`` object (``GET /v1/fine_tuning/jobs/{id}``);
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
  and the hyperparameters that are not ``"auto"``. Only reinforcement jobs are
  imported; another method is reported and skipped.
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
- ``data.model_graders_token_usage`` becomes one ``grader_usage`` per grader model
  and step at the metrics event's time: ``input_tokens`` = train + eval prompt
  tokens, ``cached_input_tokens`` = train + eval cached tokens, ``output_tokens`` =
  train + eval completion tokens. OpenAI's prompt token counts include the cached
  ones, which is the convention of the canonical log (R9); cached tokens above the
  prompt tokens are reported as a problem (the bill then rejects the record).
- A checkpoint object becomes ``checkpoint_saved`` (``step_number``) at its
  ``created_at``. "Checkpoint created at step N" messages are informational: the
  API posts them when the job ends, later than the checkpoint itself, so the
  checkpoint list is the source of truth (an import with such messages and no
  checkpoint list says so in its notes).

Every canonical event carries an ``event_id`` built from the OpenAI ids
(``openai:<ftevent id>:<role>``, ``openai:<ftckpt id>:checkpoint_saved``,
``openai:<ftjob id>:created:<hash of the job's settings>``), so that importing
overlapping exports, or the same export twice, de-duplicates.

Malformed objects (a missing id, a timestamp that is not epoch seconds, a metrics
event without a step, negative token counts, a file that is not JSON) are listed
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


_JOB = r"(?:the )?(?:fine-tuning )?job "

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
    MessageRule(_JOB + r"(?:has )?failed\b",              "failed"),
    MessageRule(_JOB + r"(?:was |has been )?cancell?ed\b", "cancelled"),
    MessageRule(_JOB + r"(?:was |has been )?paused\b",    "paused",  "paused"),
    MessageRule(_JOB + r"(?:was |has been )?resumed\b",   "resumed", "setup", training_starts=True),
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
    """The job it belongs to, when known."""

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
    """The file the job object was read from."""


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
    """Objects or files that could not be used."""
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
        }


# --- sniffing -------------------------------------------------------------------------

_SNIFF_BYTES = 65_536
_OBJECT_PATTERN = re.compile(r'"object"\s*:\s*"fine_tuning\.job(?:\.event|\.checkpoint)?"')
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
_MAX_EPOCH_SECONDS = 10**11
_STATUS_RANK = {"validating_files": 0, "queued": 1, "running": 2, "paused": 3}
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
        self.problems: list[ImportProblem] = []
        self.seq = 0
        self.pages = 0

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
        if path.name.lower().endswith((".jsonl", ".ndjson")):
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    self._read_json(path, line, f"line {number}", f"line {number}, ")
        else:
            self._read_json(path, text, "file", "")
        return self.seq + self.pages > found

    def _read_json(self, path: Path, text: str, where: str, prefix: str) -> None:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            self._problem(
                path, where, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            )
            return
        if isinstance(value, dict) and value.get("object") == "list":
            data = value.get("data")
            if not isinstance(data, list):
                self._problem(path, where, "a list page without a 'data' array")
                return
            self.pages += 1
            for index, item in enumerate(data):
                self._read_object(path, item, f"{prefix}data[{index}]")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._read_object(path, item, f"{prefix}[{index}]")
        else:
            self._read_object(path, value, where)

    def _read_object(self, path: Path, item: Any, position: str) -> None:
        kind = item.get("object") if isinstance(item, dict) else None
        readers = {
            "fine_tuning.job": (_job_record, self.jobs),
            "fine_tuning.job.event": (_event_record, self.events),
            "fine_tuning.job.checkpoint": (_checkpoint_record, self.checkpoints),
        }
        if kind not in readers:
            what = "not a JSON object" if not isinstance(item, dict) else f"unknown object {kind!r}"
            self._problem(
                path, position, f"{what} (expected fine-tuning jobs, events or checkpoints)"
            )
            return
        validate, into = readers[kind]
        self.seq += 1
        try:
            record = validate(item)
        except _Invalid as exc:
            job = item.get("fine_tuning_job_id") if kind.endswith("checkpoint") else None
            self._problem(path, position, f"{kind} {_label(item)}: {exc}", job)
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
            }
        )

    def _problem(self, path: Path, position: str, reason: str, job_id: Any = None) -> None:
        job = job_id if isinstance(job_id, str) else None
        self.problems.append(
            ImportProblem(file=str(path), position=position, reason=reason, job_id=job)
        )


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
        **settings,
        "reasoning_effort": None if effort in (None, "auto") else _text(effort),
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


def _event_record(item: dict[str, Any]) -> dict[str, Any]:
    event_id = _id(item)
    created = _epoch(item, "created_at")
    message = item.get("message")
    if not isinstance(message, str):
        raise _Invalid(f"'message' is not text (value {message!r})")
    kind = item.get("type") or "message"
    if kind not in ("message", "metrics"):
        raise _Invalid(f"unknown event type {kind!r} (known: message, metrics)")
    record: dict[str, Any] = {
        "id": event_id,
        "created_at": created,
        "level": _text(item.get("level")),
        "message": message.strip(),
        "type": kind,
        "step": None,
        "full_iteration": None,
        "usage": [],
    }
    if kind == "metrics":
        record.update(_metrics(item.get("data")))
    return record


def _metrics(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Invalid("a metrics event without a 'data' object")
    if data.get("step") is None:
        raise _Invalid("a metrics event without 'data.step'")
    step = _count(data.get("step"), "'data.step'")
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
            {
                "grader_model": grader_model,
                "input_tokens": counts["train_prompt_tokens"] + counts["eval_prompt_tokens"],
                "cached_input_tokens": counts["train_cached_tokens"] + counts["eval_cached_tokens"],
                "output_tokens": counts["train_completion_tokens"]
                + counts["eval_completion_tokens"],
            }
        )
    return {"step": step, "full_iteration": None if full is None else float(full), "usage": usage}


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

    events, resolve_problems = _resolve_event_jobs(events, jobs)
    checkpoints = _resolve_checkpoint_jobs(checkpoints, events, jobs)
    problems += resolve_problems + _unresolved(checkpoints, "checkpoint")
    checkpoints = checkpoints[checkpoints["job_id"].notna()]

    duplicates = 0
    jobs, dropped = _latest_snapshot(jobs)
    duplicates += dropped
    events, dropped, conflicts = _dedupe(events)
    duplicates += dropped
    problems += conflicts
    checkpoints, dropped, conflicts = _dedupe(checkpoints)
    duplicates += dropped
    problems += conflicts

    skipped = jobs[jobs["method"].fillna("") != "reinforcement"]
    notes += [
        f"job {row.job_id}: method {_optional_text(row.method) or 'unknown'}, not reinforcement "
        "fine-tuning: skipped with its events"
        for row in skipped.itertuples()
    ]
    skipped_ids = set(skipped["job_id"])
    jobs = jobs[~jobs["job_id"].isin(skipped_ids)]
    events = events[~events["job_id"].isin(skipped_ids)]
    checkpoints = checkpoints[~checkpoints["job_id"].isin(skipped_ids)]

    events = _chronological(events)
    events = _classify(events)
    steps = _steps(events)
    usage = _usage_table(events)
    canonical = _canonical(
        [
            _job_created_rows(jobs),
            _message_event_rows(events),
            _state_rows(events, steps),
            _step_rows(steps),
            _usage_rows(usage),
            _checkpoint_rows(checkpoints),
        ]
    )
    problems += _usage_problems(usage)
    notes += _notes(jobs, events, steps, checkpoints, canonical)
    return OpenAIImport(
        events=canonical,
        jobs=_imported_jobs(jobs),
        unknown_messages=_unknown(events),
        problems=tuple(problems),
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
        **dict.fromkeys(_SETTINGS, "Int64"),
        "compute_multiplier": "Float64",
        "reasoning_effort": "string",
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
        "full_iteration": "Float64",
        "usage": "object",
    }
    frame = _frame(records, columns)
    return frame.assign(job_id=pd.Series(pd.NA, index=frame.index, dtype="string"))


def _checkpoints_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    columns = {"id": "string", "created_at": "int64", "step": "Int64", "job_id": "string"}
    return _frame(records, columns)


# --- which job ---------------------------------------------------------------------------


def _resolve_event_jobs(
    events: pd.DataFrame, jobs: pd.DataFrame
) -> tuple[pd.DataFrame, list[ImportProblem]]:
    """Give every event its job (see the module docstring); report files that cannot be told."""
    problems: list[ImportProblem] = []
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
    return events[events["job_id"].notna()], problems


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


def _latest_snapshot(jobs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One object per job: the most advanced snapshot (a finished job over a running one)."""
    rank = jobs["status"].map(_STATUS_RANK).astype("float64").fillna(len(_STATUS_RANK))
    ordered = jobs.assign(_rank=rank).sort_values(
        ["job_id", "_rank", "seq"], ascending=[True, False, True]
    )
    latest = ordered.drop_duplicates("job_id", keep="first").drop(columns="_rank")
    return latest.sort_values("seq").reset_index(drop=True), len(jobs) - len(latest)


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


def _imported_jobs(jobs: pd.DataFrame) -> tuple[ImportedJob, ...]:
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
    canonical: pd.DataFrame,
) -> list[str]:
    notes: list[str] = []
    untimed = steps[steps["start"].isna()]
    notes += [
        f"job {row.job_id}: step {row.step} has no timing and no earlier step or start "
        "message: its time is not counted"
        for row in untimed.itertuples()
    ]
    by_time = steps[~steps["timed"]]
    if len(by_time):
        notes.append(
            f"{len(by_time)} step(s) without data.timing.step.full_iteration: timed from the "
            "previous step or start message"
        )
    with_events = set(events["job_id"])
    emitted = canonical.groupby("job_id")["event"].agg(set)
    for row in jobs.itertuples():
        if row.job_id not in with_events:
            notes.append(f"job {row.job_id}: no events in the export, only its creation is known")
            continue
        status = _optional_text(row.status)
        if status in ("succeeded", "failed", "cancelled", "paused") and status not in emitted.get(
            row.job_id, set()
        ):
            notes.append(
                f"job {row.job_id}: status is {status!r} but no message of its events says so; "
                "see the unknown messages (MESSAGE_RULES in rftcost/events/openai.py maps them)"
            )
    announced = events.loc[
        events["message"].str.match(r"Checkpoint created at step", na=False), "job_id"
    ]
    for job_id in sorted(set(announced) - set(checkpoints["job_id"])):
        notes.append(
            f"job {job_id}: checkpoint messages but no checkpoint list: export the checkpoints "
            "too (rftcost fetch does), or work after the last checkpoint of a failed job is "
            "not known to be retained"
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
