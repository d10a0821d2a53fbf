"""OpenAI and Azure status messages → canonical events and non-billable phases.

``MESSAGE_RULES`` is one table of ``(regex, event, phase, …)`` rows: the first row
whose regex matches the start of a message (case-insensitive) decides (R4: the
events that issue a charge). A phase started by a message lasts until the next
message that changes the state or the next training step's start. A message no row
matches emits nothing and is listed as unknown.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

import pandas as pd

from rftcost.events.openai.frames import event_ids, true_where

__all__ = [
    "FINAL_STATUSES",
    "MESSAGE_RULES",
    "MessageRule",
    "chronological",
    "classify_messages",
    "message_event_rows",
    "state_rows",
]


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
    # Azure's wording (REST reference, "Fine Tuning - Get Events", sample response):
    # "Job enqueued. Waiting for jobs ahead to complete.", then "Job started.".
    MessageRule(r"Job enqueued\b",                        None,    "queued"),
    MessageRule(_JOB + r"(?:has )?started\b",             None,    "setup", training_starts=True),
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


FINAL_STATUSES: Final = ("succeeded", "failed", "cancelled")
"""The statuses (and canonical events) that end a job (R4)."""


_RULES = pd.DataFrame(MESSAGE_RULES, columns=list(MessageRule._fields))
_RULES = _RULES.assign(
    changes_state=_RULES["event"].notna() | _RULES["phase"].notna() | _RULES["ends_phase"]
)


def chronological(events: pd.DataFrame) -> pd.DataFrame:
    """Events in time order per job; at equal times, in the API's order (newest first, reversed)."""
    ordered = events.assign(_neg_seq=-events["seq"]).sort_values(
        ["job_id", "created_at", "_neg_seq"], kind="stable"
    )
    ts = pd.to_datetime(ordered["created_at"], unit="s", utc=True).astype("datetime64[ns, UTC]")
    return ordered.drop(columns="_neg_seq").assign(ts=ts).reset_index(drop=True)


def classify_messages(events: pd.DataFrame) -> pd.DataFrame:
    """The first rule matching each message (-1: none, -2: a metrics event) and its effects."""
    is_message = events["type"] == "message"
    rule = pd.Series(-1, index=events.index, dtype="int64")
    for index, row in enumerate(MESSAGE_RULES):
        hit = (
            is_message
            & (rule == -1)
            & events["message"].str.match(row.pattern, flags=re.IGNORECASE)
        )
        rule = rule.mask(true_where(hit), index)
    # -1 (unknown), -2 (metrics): empty rows
    rules = _RULES.reindex(rule.to_numpy()).set_axis(events.index)
    return events.assign(
        rule=rule.where(is_message, -2),
        rule_event=rules["event"].astype("string"),
        rule_phase=rules["phase"].astype("string"),
        changes_state=true_where(rules["changes_state"]),
        training_starts=true_where(rules["training_starts"]),
    )


def message_event_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The canonical event a message's rule emits (``succeeded``, ``paused``, …), at its time."""
    emitting = events[events["rule_event"].notna()]
    return pd.DataFrame(
        {
            "job_id": emitting["job_id"],
            "ts": emitting["ts"],
            "event": emitting["rule_event"],
            "event_id": event_ids(emitting["id"], emitting["rule_event"]),
            "message": emitting["message"],
        }
    )


def state_rows(events: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
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
            "event_id": event_ids(opened["id"], "phase_start", opened["rule_phase"]),
            "phase": opened["rule_phase"],
            "message": opened["message"],
        }
    )
    ends = pd.DataFrame(
        {
            "job_id": closed["job_id"],
            "ts": end[closed.index],
            "event": "phase_end",
            "event_id": event_ids(closed["id"], "phase_end", closed["rule_phase"]),
            "phase": closed["rule_phase"],
        }
    )
    return pd.concat([starts, ends], ignore_index=True)
