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
``checkpoints.json``; ``import_openai([DIR])`` reads them back. A file of a folder with
one of these names that is not JSON text at all (an HTML error page, UTF-16, binary) is
read too, so that it is a problem of its job (invalid), never a file skipped.

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
  absent field never overrides a present one, the latest status wins (the most
  advanced, but a pause the events show resumed gives way to a running or queued
  snapshot), and disagreements (data sharing, team, project, paused or not, how it
  ended) are noted with the value used. A job no snapshot names the method of is
  RFT when its metrics events are RFT's, else invalid; another method (supervised,
  dpo) is reported and skipped. Metadata that is not an object, a team or project
  that is not text, or a model that is not text makes the job invalid, with the value.
- How a job ended comes from every saved shape of it (``job_state``): a message
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

Modules
-------
- ``importer``: ``import_openai``, the steps in order;
- ``reading``: recognising and reading the export shapes into validated records;
- ``values``: validating one JSON value (ids, epoch seconds, counts, text);
- ``attribution``: which job each record belongs to;
- ``snapshots``: job snapshots merged field by field, duplicates, the method;
- ``messages``: the message table and the phases messages start;
- ``steps``: metrics events → steps and their billable intervals;
- ``job_state``: how a job ended when no message says so;
- ``grader_usage``: grader token usage, read and turned into events;
- ``canonical``: ``job_created`` and checkpoint rows, the canonical frame;
- ``problems``: jobs that cannot be billed; ``notes``: what is worth knowing;
- ``model``: the result types; ``frames``: small pandas helpers;
- ``jsonl``: canonical events → JSON Lines.
"""

from __future__ import annotations

from rftcost.events.openai.importer import import_openai
from rftcost.events.openai.jsonl import events_to_jsonl
from rftcost.events.openai.messages import MESSAGE_RULES, MessageRule
from rftcost.events.openai.model import ImportedJob, ImportProblem, OpenAIImport, UnknownMessage
from rftcost.events.openai.reading import (
    EXPORT_SUFFIXES,
    NOTE_EVENT_TYPES,
    looks_like_openai_export,
)
from rftcost.events.openai.steps import STEP_PHASE

__all__ = [
    "EXPORT_SUFFIXES",
    "MESSAGE_RULES",
    "NOTE_EVENT_TYPES",
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
