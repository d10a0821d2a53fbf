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

from rftcost.events.openai.frames import event_ids, utc_from_epoch
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


def checkpoint_rows(checkpoints: pd.DataFrame) -> pd.DataFrame:
    """``checkpoint_saved`` at each listed checkpoint's ``created_at`` (R5)."""
    return pd.DataFrame(
        {
            "job_id": checkpoints["job_id"],
            "ts": utc_from_epoch(checkpoints["created_at"]),
            "event": "checkpoint_saved",
            "event_id": event_ids(checkpoints["id"], "checkpoint_saved"),
            "step": checkpoints["step"],
        }
    )


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
        + "(its step's metrics event)"
        for row, when in zip(missing.itertuples(), at, strict=True)
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
