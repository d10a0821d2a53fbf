"""Metrics events → training steps: ``step_completed`` and the billable step interval.

A metrics event ends a billable interval of ``STEP_PHASE`` lasting
``data.timing.step.full_iteration`` seconds (to the microsecond); without that timing
the interval runs from the previous metrics event, or the later "job started" /
"resumed" message (R1: only the union of billable time counts).
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from rftcost.events.openai.frames import event_ids

__all__ = ["STEP_PHASE", "step_intervals", "step_rows"]


STEP_PHASE: Final = "rollout"
"""Phase of the billable interval of one training step.

The export gives one duration per step (``full_iteration``: sampling, grading,
training and eval together), not one per phase, so the whole step is recorded
under the loop's first phase. Only the union of billable time counts (R1), so the
name never changes an amount.
"""


def step_intervals(events: pd.DataFrame) -> pd.DataFrame:
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


def step_rows(steps: pd.DataFrame) -> pd.DataFrame:
    """``step_completed`` per step, and its billable interval as ``STEP_PHASE`` start and end
    (a step of no time gets no interval: it makes its job invalid, see ``problems``)."""
    done = pd.DataFrame(
        {
            "job_id": steps["job_id"],
            "ts": steps["ts"],
            "event": "step_completed",
            "event_id": event_ids(steps["id"], "step_completed"),
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
            "event_id": event_ids(timed["id"], "phase_start", STEP_PHASE),
            "phase": STEP_PHASE,
            "message": "step " + timed["step"].astype("string"),
        }
    )
    ends = starts.assign(
        ts=timed["ts"],
        event="phase_end",
        event_id=event_ids(timed["id"], "phase_end", STEP_PHASE),
    )
    return pd.concat([done, starts, ends], ignore_index=True)
