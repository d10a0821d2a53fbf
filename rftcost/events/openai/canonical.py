"""Canonical event rows from job objects and checkpoints, and the final frame.

``job_created`` from the merged job object (event id hashed from its settings, so
re-imports de-duplicate), ``checkpoint_saved`` from the checkpoint list, and from
"Checkpoint created at step N" messages the list lacks (R5: work before a saved
checkpoint is not lost). ``canonical_events`` concatenates every kind of row into
exactly ``EVENT_COLUMNS`` with their dtypes, in time order.
"""

from __future__ import annotations

import re
from typing import Any, cast

import pandas as pd

from rftcost.events.openai.frames import event_ids, lookup, utc_from_epoch
from rftcost.events.openai.messages import FINAL_STATUSES
from rftcost.events.openai.reading import JOB_SETTINGS
from rftcost.events.openai.values import json_digest
from rftcost.events.schema import (
    BOOL_COLUMNS,
    EVENT_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    STRING_COLUMNS,
)

__all__ = ["announced_checkpoints", "canonical_events", "checkpoint_rows", "job_created_rows"]


def job_created_rows(jobs: pd.DataFrame) -> pd.DataFrame:
    """``job_created`` at each job's ``created_at`` with its settings; the id carries a
    hash of the settings, so a job re-imported with other settings is not merged away."""
    settings = [
        "team",
        "project",
        "model",
        "data_sharing",
        "grader_model",
        "grader_type",
        *JOB_SETTINGS,
        "compute_multiplier",
        "reasoning_effort",
    ]
    content = jobs[settings].astype("object").where(jobs[settings].notna(), None)
    digest = [json_digest(record)[:12] for record in content.to_dict("records")]
    return jobs[settings].assign(
        job_id=jobs["job_id"],
        ts=utc_from_epoch(jobs["created_at"]),
        event="job_created",
        event_id=event_ids(
            jobs["job_id"], "created", pd.Series(digest, index=jobs.index, dtype="string")
        ),
    )


def checkpoint_rows(
    checkpoints: pd.DataFrame, events: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """``checkpoint_saved`` for each listed checkpoint (R5), at its ``created_at`` or at
    its step's metrics event, whichever is earlier, and notes on those dated after a
    later step or after the job ended.

    A checkpoint keeps the work of the steps up to its ``step_number`` and no work after
    its date: a date stamped later (by another clock, or by a late save) must not decide
    what a failure loses (a date after the failure would lose every step, one after a
    later step would keep that step too). A metrics event logged after the checkpoint
    (after a pause, say) does not move the checkpoint later.
    """
    created = utc_from_epoch(checkpoints["created_at"])
    step_end = _at_their_steps(checkpoints["job_id"], checkpoints["step"], events)
    at = step_end.where(step_end.notna() & (step_end < created), created)
    rows = pd.DataFrame(
        {
            "job_id": checkpoints["job_id"],
            "ts": at,
            "event": "checkpoint_saved",
            "event_id": event_ids(checkpoints["id"], "checkpoint_saved"),
            "step": checkpoints["step"],
        }
    )
    return rows, _misdated(checkpoints, created, at, events)


def _at_their_steps(job_id: pd.Series, step: pd.Series, events: pd.DataFrame) -> pd.Series:
    """The time of each (job, step)'s metrics event; NaT where the export has none."""
    metrics = (
        events[events["type"] == "metrics"]
        .drop_duplicates(["job_id", "step"], keep="last")
        .set_index(["job_id", "step"])["ts"]
    )
    keys = pd.MultiIndex.from_arrays([job_id, step.astype("Int64")])
    return pd.Series(metrics.reindex(keys).to_numpy(), index=job_id.index, dtype=metrics.dtype)


def _misdated(
    checkpoints: pd.DataFrame, created: pd.Series, at: pd.Series, events: pd.DataFrame
) -> list[str]:
    """Notes on the listed checkpoints placed at their step that are dated after a later
    step's metrics event or after the job's end message."""
    moved = checkpoints.assign(created=created, at=at)[at.notna() & (created > at)]
    if moved.empty:
        return []
    metrics = events.loc[events["type"] == "metrics", ["job_id", "ts", "step"]]
    moved = moved.astype({"created": metrics["ts"].dtype, "job_id": metrics["job_id"].dtype})
    last_step = pd.merge_asof(
        moved.rename_axis("_row").reset_index().sort_values("created", kind="stable"),
        metrics.rename(columns={"ts": "step_ts", "step": "step_by_then"}).sort_values(
            "step_ts", kind="stable"
        ),
        left_on="created",
        right_on="step_ts",
        by="job_id",
    ).set_index("_row")["step_by_then"]
    ends = events[events["rule_event"].isin(FINAL_STATUSES).fillna(False)]
    ended = lookup(moved["job_id"], ends.groupby("job_id", sort=False)["ts"].min())
    later_step = pd.to_numeric(last_step.reindex(moved.index)) > pd.to_numeric(moved["step"])
    after_end = ended.notna() & (moved["created"] > ended)
    notes = []
    for row, later, late in zip(
        moved.itertuples(), later_step.fillna(False), after_end.fillna(False), strict=True
    ):
        if not (later or late):
            continue
        what = "after the job ended" if late else "after the metrics event of a later step"
        notes.append(
            f"job {row.job_id}: checkpoint {row.id} of step {row.step} is dated "
            f"{pd.Timestamp(cast(Any, row.created)).isoformat()}, {what}: taken as saved at "
            f"its step's metrics event ({pd.Timestamp(cast(Any, row.at)).isoformat()}), as "
            "its step number says which work it keeps (R5)"
        )
    return notes


_ANNOUNCED = re.compile(r"Checkpoint created at step (\d+)", re.IGNORECASE)


def announced_checkpoints(
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
    # A step beyond the export's metrics events has no time: the job is invalid
    # (problems.incomplete_jobs), and the message's own time stands here.
    at = _at_their_steps(missing["job_id"], missing["step"], events)
    stepped = at.notna()
    at = at.fillna(missing["ts"])
    rows = pd.DataFrame(
        {
            "job_id": missing["job_id"],
            "ts": at,
            "event": "checkpoint_saved",
            "event_id": event_ids(missing["id"], "checkpoint_saved"),
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
        + (
            "(its step's metrics event)"
            if timed
            else "(the message: no metrics event of that step)"
        )
        for row, when, timed in zip(missing.itertuples(), at, stepped, strict=True)
    ]
    return rows, notes


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


def canonical_events(parts: list[pd.DataFrame]) -> pd.DataFrame:
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
