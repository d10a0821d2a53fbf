"""Reading and recognising the export shapes: files → validated flat records → frames.

Recognises (``looks_like_openai_export``, a cheap sniff) and reads job objects,
events and checkpoints list pages (one or several per job, ``has_more`` kept), bare
JSON arrays, JSON Lines, webhook payloads and Azure's event stream, in the layout
``rftcost fetch`` writes or any other. ``ExportReader`` parses each object once,
validates it into a flat record (a malformed object becomes an ``ImportProblem``
with its file, position and line) and keeps its provenance (file, folder, position,
order read, content fingerprint); ``*_frame`` turn the records into typed frames.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd

from rftcost.errors import UnreadableFileError, why_unreadable
from rftcost.events.json_text import (
    SURROGATE_ESCAPE,
    file_named_in_text,
    holds_surrogate,
    lone_surrogate,
    without_surrogates,
)
from rftcost.events.openai.grader_usage import (
    grader_models,
    grader_usage_of,
    runs_a_model,
    single_grader_model,
)
from rftcost.events.openai.model import ImportProblem
from rftcost.events.openai.values import (
    InvalidObject,
    as_object,
    epoch_seconds,
    json_digest,
    required_id,
    stripped_text,
    whole_number,
)

__all__ = [
    "EXPORT_SUFFIXES",
    "JOB_SETTINGS",
    "NOTE_EVENT_TYPES",
    "ExportReader",
    "checkpoints_frame",
    "events_frame",
    "expand_paths",
    "jobs_frame",
    "line_in_file",
    "looks_like_openai_export",
    "sniff_file",
    "webhooks_frame",
]


EXPORT_SUFFIXES: Final = (".json", ".jsonl", ".ndjson")
"""File names an OpenAI export may have."""


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
        return any(c.is_file() and sniff_file(c) for c in candidates)
    return path.is_file() and sniff_file(path)


def sniff_file(path: Path) -> bool:
    """Whether one file looks like an export: its name, then its first 64 KiB (no parse);
    a file named as ``rftcost fetch`` names them that they do not tell is parsed whole."""
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
    if path.name.lower() not in _FETCH_FILES:
        return False
    return bool(_LIST_PATTERN.match(text)) or _unreadable_json(path)


def _unreadable_json(path: Path) -> bool:
    """Whether a file named as ``rftcost fetch`` names its pages is not JSON text at all
    (a byte that is not UTF-8 where the sniff looks, UTF-16, a truncated page, an HTML
    error page): it is read as an export, so that the page is a rejected record of its
    job, not a file skipped while its events go uncounted. A readable JSON document
    holding no export object (a settings file) is not an export."""
    try:
        json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError:
        return False
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep
        return True
    return False


def expand_paths(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
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
                if sniff_file(file):
                    files.append(file_named_in_text(file))
                else:
                    notes.append(f"{file}: skipped, not an OpenAI fine-tuning export")
        elif path.is_file():
            files.append(file_named_in_text(path))
        else:
            raise UnreadableFileError("no such file or folder", path=path)
    return files, notes


_WHOLE_FILE = ": none of the file's objects (a job, a page of events or checkpoints) can be read"
"""What a file that cannot be parsed loses: it is one rejected record of its job."""


JOB_SETTINGS = ("batch_size", "n_epochs", "eval_interval", "eval_samples")


class ExportReader:
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
        self._escapes = False
        self._provenance = {"file": "", "folder": ""}

    def read_file(self, path: Path) -> bool:
        """Read one file; False when it holds no OpenAI object or list page at all."""
        found = self.seq + self.pages
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UnreadableFileError(
                f"cannot read file: {why_unreadable(exc)}", path=path
            ) from exc
        by_line = path.name.lower().endswith((".jsonl", ".ndjson"))
        undecoded = False
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if not by_line:
                reason = f"not UTF-8 text ({exc.reason} at byte {exc.start}){_WHOLE_FILE}"
                self._problem(path, "file", reason, line=data.count(b"\n", 0, exc.start) + 1)
                return True
            # JSON Lines: only the lines that are not UTF-8 are lost, each a problem of its
            # own (its job invalid), as in a canonical log; the bytes kept as surrogates.
            text, undecoded = data.decode("utf-8-sig", errors="surrogateescape"), True
        self._text = text
        self._provenance = {"file": str(path), "folder": str(path.parent)}
        if by_line:
            for number, line in enumerate(text.splitlines(), start=1):
                if undecoded and holds_surrogate(line):
                    self._problem(path, f"line {number}", "not UTF-8 text", line=number)
                elif line.strip():
                    self._read_json(path, line, f"line {number}", f"line {number}, ", number)
        else:
            self._read_json(path, text, "file", "")
        return self.seq + self.pages > found

    def _read_json(
        self, path: Path, text: str, where: str, prefix: str, line: int | None = None
    ) -> None:
        # Only text with a surrogate escape can hold a lone one (``json_text``).
        self._escapes = SURROGATE_ESCAPE.search(text) is not None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            self._problem(
                path,
                where,
                f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                + (_WHOLE_FILE if where == "file" else ""),
                line=line or exc.lineno,
            )
            return
        except RecursionError:  # arrays or objects nested thousands deep: no export object
            self._problem(
                path,
                where,
                "JSON nested too deep to read" + (_WHOLE_FILE if where == "file" else ""),
                line=line,
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
        lone = lone_surrogate(item) if self._escapes else None
        try:
            if lone:
                raise InvalidObject(f"not valid text: a lone surrogate escape {lone}")
            record = validate(item)
        except InvalidObject as exc:
            job = item.get("fine_tuning_job_id") if kind.endswith("checkpoint") else None
            if kind == "fine_tuning.job":
                job = item.get("id")
            self._problem(
                path,
                position,
                f"{kind} {_label(item)}: {exc}",
                without_surrogates(job) if isinstance(job, str) else job,
                line=line or _line_of(self._text, item.get("id")),
            )
            return
        fingerprint = json_digest(item)
        into.append(
            {
                **record,
                **self._provenance,
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


def line_in_file(file: str, object_id: str) -> int | None:
    """The line of a file where an object is (read again: only for the rare conflicts)."""
    try:
        return _line_of(Path(file).read_text(encoding="utf-8-sig"), object_id)
    except (OSError, UnicodeDecodeError):
        return None


def _label(item: dict[str, Any]) -> str:
    """How a problem names an object: its id, or "without an id"."""
    value = item.get("id")
    return repr(value) if isinstance(value, str) and value.strip() else "without an id"


def _job_record(item: dict[str, Any]) -> dict[str, Any]:
    """A ``fine_tuning.job`` snapshot → a flat record: settings, grader, metadata, status."""
    job_id = required_id(item)
    created = epoch_seconds(item, "created_at")
    finished = epoch_seconds(item, "finished_at", required=False)
    method = as_object(item.get("method"))
    method_type = stripped_text(method.get("type"))
    config = as_object(method.get(method_type)) if method_type else {}
    hyper = as_object(config.get("hyperparameters"))
    grader = as_object(config.get("grader"))
    metadata = _metadata(item.get("metadata"))
    sharing = item.get("shared_with_openai")
    if sharing is not None and not isinstance(sharing, bool):
        # "true", 1 or "yes" is not read as either: guessing it false bills without the
        # data-sharing discount, guessing it true bills with it; neither is known.
        raise InvalidObject(
            f"'shared_with_openai' is not a JSON boolean true/false (value {sharing!r})"
        )
    settings: dict[str, Any] = {}
    for key in JOB_SETTINGS:
        value = hyper.get(key)
        settings[key] = (
            None if value in (None, "auto") else whole_number(value, f"hyperparameter {key!r}")
        )
    multiplier = hyper.get("compute_multiplier")
    if multiplier in (None, "auto"):
        settings["compute_multiplier"] = None
    elif (
        isinstance(multiplier, int | float) and not isinstance(multiplier, bool) and multiplier >= 0
    ):
        settings["compute_multiplier"] = float(multiplier)
    else:
        raise InvalidObject(
            f"hyperparameter 'compute_multiplier' is not a number (value {multiplier!r})"
        )
    effort = hyper.get("reasoning_effort")
    error = as_object(item.get("error"))
    return {
        "job_id": job_id,
        "created_at": created,
        "finished_at": finished,
        "status": _status_text(item.get("status")),
        "model": _model_text(item.get("model")),
        "method": method_type,
        "team": _metadata_text(metadata, "team"),
        "project": _metadata_text(metadata, "project"),
        "data_sharing": sharing if isinstance(sharing, bool) else None,
        "grader_type": stripped_text(grader.get("type")),
        "grader_model": single_grader_model(grader),
        "grader_models": grader_models(grader),
        "model_grader": runs_a_model(grader) if grader else None,
        **settings,
        "reasoning_effort": None if effort in (None, "auto") else stripped_text(effort),
        "error_message": stripped_text(error.get("message")) or stripped_text(error.get("code")),
    }


def _metadata(value: Any) -> dict[str, Any]:
    """The job's ``metadata``: a JSON object, or none (null or absent). Text such as
    ``"team=search"`` or a list is not read as no metadata: the job would be billed to no
    team without a word; parsed, perhaps to the wrong one. The job is then invalid, with
    the value."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidObject(
            f"'metadata' is not a JSON object (value {value!r}): who pays is not known; the"
            " API's metadata is an object of strings"
        )
    return value


_STATUS_SPELLINGS = {"canceled": "cancelled", "notrunning": "not_running"}
"""Other spellings of a status (Azure's ``canceled``, ``notRunning``) → OpenAI's words."""


def _status_text(value: Any) -> str | None:
    """A job object's status in OpenAI's words: lower case, Azure's spellings mapped."""
    text = stripped_text(value)
    if text is None:
        return None
    lowered = text.lower()
    return _STATUS_SPELLINGS.get(lowered, lowered)


def _model_text(value: Any) -> str | None:
    """The job's base ``model``: text, or none (null or absent: the policy's default). A
    number or an object is not a model name: billed at the default model's hourly rate,
    a job of another model would be charged another rate without a word. The job is
    then invalid, with the value."""
    if value is not None and not isinstance(value, str):
        raise InvalidObject(
            f"'model' is not text (value {value!r}): the hourly rate depends on the model"
        )
    return stripped_text(value)


def _metadata_text(metadata: dict[str, Any], key: str) -> str | None:
    """``metadata[key]``, the team or project that pays (event-log.md): text, as the API's metadata
    values are. A number, list or object there is not read as a name: taken as none, the
    job would be billed to no team without a word; guessed as its text, perhaps to the
    wrong one. The job is then invalid, with the value."""
    value = metadata.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidObject(
            f"metadata {key!r} is not text (value {value!r}): who pays is not known; the"
            " API's metadata values are strings"
        )
    return stripped_text(value)


NOTE_EVENT_TYPES: Final = ("moderation_checks",)
"""Documented event types that are not billing data (the RFT guide's safety checks): notes."""


def _event_record(item: dict[str, Any]) -> dict[str, Any]:
    """A ``fine_tuning.job.event`` → a flat record (a metrics event: its step, timing, usage)."""
    event_id = required_id(item)
    created = epoch_seconds(item, "created_at")
    message = item.get("message")
    if message is None and item.get("type") in NOTE_EVENT_TYPES:
        message = ""
    if not isinstance(message, str):
        raise InvalidObject(f"'message' is not text (value {message!r})")
    kind = item.get("type") or "message"
    if kind not in ("message", "metrics", *NOTE_EVENT_TYPES):
        raise InvalidObject(
            f"unknown event type {kind!r} (known: message, metrics, {', '.join(NOTE_EVENT_TYPES)})"
        )
    record: dict[str, Any] = {
        "id": event_id,
        "created_at": created,
        "level": stripped_text(item.get("level")),
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
    event_id = required_id(item)
    created = epoch_seconds(item, "created_at")
    status = str(item["type"]).removeprefix("fine_tuning.job.")
    if status not in ("succeeded", "failed", "cancelled"):
        raise InvalidObject(f"unknown webhook type {item['type']!r}")
    job_id = stripped_text(as_object(item.get("data")).get("id"))
    if job_id is None:
        raise InvalidObject("a webhook payload without 'data.id' (the job)")
    return {"id": event_id, "created_at": created, "status": status, "job_id": job_id}


def _metrics(data: Any) -> dict[str, Any]:
    """A metrics event's ``data``: step, total steps, step timing, grader usage, and whether
    it is RFT's (step timing, grader usage or rewards)."""
    if not isinstance(data, dict):
        raise InvalidObject("a metrics event without a 'data' object")
    if data.get("step") is None:
        raise InvalidObject("a metrics event without 'data.step'")
    step = whole_number(data.get("step"), "'data.step'")
    total = data.get("total_steps")
    total_steps = None if total is None else whole_number(total, "'data.total_steps'")
    full = as_object(as_object(data.get("timing")).get("step")).get("full_iteration")
    if full is not None and (
        isinstance(full, bool) or not isinstance(full, int | float) or not 0 <= full < 10**9
    ):
        raise InvalidObject(
            "'data.timing.step.full_iteration' is not seconds from 0 to under a billion "
            f"(value {full!r})"
        )
    rows, conflicts = grader_usage_of(data)
    timing = as_object(data.get("timing"))
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


def _checkpoint_record(item: dict[str, Any]) -> dict[str, Any]:
    """A ``fine_tuning.job.checkpoint`` → a flat record: its step and its job."""
    checkpoint_id = required_id(item)
    created = epoch_seconds(item, "created_at")
    if item.get("step_number") is None:
        raise InvalidObject("missing 'step_number'")
    return {
        "id": checkpoint_id,
        "created_at": created,
        "step": whole_number(item.get("step_number"), "'step_number'"),
        "job_id": stripped_text(item.get("fine_tuning_job_id")),
    }


_PROVENANCE = {
    "file": "string",
    "folder": "string",
    "position": "string",
    "seq": "int64",
    "fingerprint": "string",
    "has_more": "boolean",
}


def _frame(records: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    """Records → a frame of these columns and dtypes, with their provenance columns."""
    dtypes = {**columns, **_PROVENANCE}
    if not records:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in dtypes.items()})
    frame = pd.DataFrame.from_records(records, columns=list(dtypes))
    return frame.astype({c: t for c, t in dtypes.items() if t != "object"})


def jobs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The job snapshots read, one row each (merged later, ``snapshots``)."""
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
        "grader_models": "object",  # every model a multi grader runs: usage checked for each
        "model_grader": "boolean",
        **dict.fromkeys(JOB_SETTINGS, "Int64"),
        "compute_multiplier": "Float64",
        "reasoning_effort": "string",
        "error_message": "string",
    }
    return _frame(records, columns)


def events_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The events read, one row each; ``job_id`` empty until ``attribution`` tells it."""
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


def checkpoints_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The checkpoints read, one row each."""
    columns = {"id": "string", "created_at": "int64", "step": "Int64", "job_id": "string"}
    return _frame(records, columns)


def webhooks_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The webhook payloads read, one row each (how a job ended, ``job_state``)."""
    columns = {"id": "string", "created_at": "int64", "status": "string", "job_id": "string"}
    return _frame(records, columns)
