"""Notes: what is worth knowing about an import that is not an error.

Steps timed from their anchor, ``moderation_checks`` events, usage figures that
disagree, checkpoint messages without a checkpoint list, and Azure's "Training hours
billed: X" compared with the hours the steps measure (a cross-check, never billed
from).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pandas as pd

from rftcost.errors import excerpt
from rftcost.events.openai.frames import true_where
from rftcost.events.openai.reading import NOTE_EVENT_TYPES

__all__ = [
    "COUNTS_NOTE",
    "counts_note",
    "failed_without_checkpoints",
    "import_notes",
    "vendor_decimal",
    "vendor_hours",
]

COUNTS_NOTE = "OpenAI export counts: "
"""How the note of ``counts_note`` begins (``watch`` says it never: it changes each poll)."""


def counts_note(objects_read: int, repeated: int, events: int) -> str:
    """What a bill of exports counts: the records are the canonical events made from the
    export's API objects, which are said here, with those that repeat an object (every
    object accounted for)."""
    objects = "object" if objects_read == 1 else "objects"
    return (
        f"{COUNTS_NOTE}{objects_read} API {objects} read, {repeated} of them repeating one "
        "read already (the same id: a page exported twice, a job's snapshots), merged with "
        f"it or, its content other, reported; the records counted are the {events} "
        "events made from them"
    )


_VENDOR_HOURS = re.compile(r"^Training hours billed:\s*(.*?)\s*$", re.IGNORECASE | re.DOTALL)
_HOURS = re.compile(
    r"([0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?)(?![0-9,]|\.[0-9]|[eE][0-9+-])"
)
"""A decimal at the start of the text, with thousands separated by commas or not (1,000.5
was read as 1), followed by words or nothing ("1.25 hours"), not by more of a number (1e3)."""


def vendor_decimal(text: object) -> Decimal | None:
    """The hours of a "Training hours billed" text (``vendor_hours``); None if none."""
    found = _HOURS.match(str(text))
    return Decimal(found.group(1).replace(",", "")) if found else None


def vendor_hours(events: pd.DataFrame) -> pd.Series:
    """Azure's "Training hours billed: X" per job (the last one): the text of a decimal,
    or the message's text when it holds none (said as such in the notes, not dropped)."""
    said = events.assign(hours=events["message"].str.extract(_VENDOR_HOURS, expand=False))
    said = said[said["hours"].notna()]
    return said.groupby("job_id", sort=False)["hours"].last()


def import_notes(
    jobs: pd.DataFrame,
    events: pd.DataFrame,
    steps: pd.DataFrame,
    checkpoints: pd.DataFrame,
    usage: pd.DataFrame,
    vendor: pd.Series,
) -> list[str]:
    """The notes of an import: untimed steps, safety-check events, usage figures that
    disagree, Azure's billed hours against the steps', checkpoint messages without a list."""
    notes: list[str] = []
    by_time = steps[~steps["timed"] & steps["start"].notna()]
    if len(by_time):
        notes.append(
            f"{len(by_time)} step(s) without data.timing.step.full_iteration: timed from the "
            "previous step or start message"
        )
    clipped = steps[steps["clipped"]] if "clipped" in steps else steps.iloc[0:0]
    if len(clipped):
        named = ", ".join(sorted({str(job) for job in clipped["job_id"]})[:5])
        notes.append(
            f"{len(clipped)} step(s) whose data.timing.step.full_iteration is longer than the "
            "time since the step before (or since training started, or since the job was "
            "created, validated or queued): timed from that moment "
            f"instead, so that no queue, setup or pause is billed as training (jobs {named})"
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
    # A model grader grades every step's samples: a step whose metrics event reports no
    # usage, where the job's other steps do, has tokens no record carries (R9). Said, not
    # guessed: they are in no charge, so the grader amount may be understated.
    graded = jobs.loc[true_where(jobs["model_grader"]), "job_id"]
    silent = steps[
        steps["job_id"].isin(graded)
        & steps["job_id"].isin(usage["job_id"])
        & ~steps["id"].isin(usage["id"])
    ]
    for silent_job, unreported in silent.groupby("job_id", sort=True)["step"]:
        named = ", ".join(str(step) for step in unreported.head(5))
        named += f" and {len(unreported) - 5} more" if len(unreported) > 5 else ""
        notes.append(
            f"job {silent_job}: {len(unreported)} metrics event(s) (step {named}) report no grader "
            "token usage where its other steps do: any tokens of those steps are in no "
            "charge, so its grader amount may be understated"
        )
    # The vendor's own figure is a cross-check: compared with the time measured from
    # the steps (before any R5 loss or R11 rounding), never billed from.
    timed = steps[steps["start"].notna()]
    measured = (timed["ts"] - timed["start"]).dt.total_seconds().groupby(timed["job_id"]).sum()
    for job_id, text in vendor.items():
        theirs = vendor_decimal(text)
        if theirs is None:
            notes.append(
                f"job {job_id}: the vendor's event 'Training hours billed: {excerpt(str(text))}'"
                " holds no number of hours: not compared with the steps"
            )
            continue
        ours = Decimal(str(float(measured.get(job_id, 0.0)))) / 3600
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


def failed_without_checkpoints(canonical: pd.DataFrame) -> list[str]:
    """Failed jobs with steps and no checkpoint in the export: all their training is lost
    (R5), 0.00 of compute. Said, never silent: an export without its checkpoint list reads
    the same as a job that saved none."""
    event = canonical["event"]
    failed = set(canonical.loc[event == "failed", "job_id"].astype(str))
    stepped = set(canonical.loc[event == "step_completed", "job_id"].astype(str))
    saved = set(canonical.loc[event == "checkpoint_saved", "job_id"].astype(str))
    return [
        f"job {job_id}: failed after training steps with no checkpoint in the export (no "
        "checkpoint list, no 'Checkpoint created' message): its training is taken as lost "
        "(R5), 0.00 of compute; if it saved checkpoints, export its checkpoint list with it"
        for job_id in sorted((failed & stepped) - saved)
    ]
