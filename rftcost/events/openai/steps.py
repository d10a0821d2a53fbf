"""Metrics events → training steps: ``step_completed`` and the billable step interval.

A metrics event ends a billable interval of ``STEP_PHASE`` lasting
``data.timing.step.full_iteration`` seconds (to the microsecond); without that timing
the interval runs from the previous metrics event, or the later "job started" /
"resumed" message (R1: only the union of billable time counts).
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from rftcost.events.openai.frames import event_ids, lookup, utc_from_epoch

__all__ = [
    "STEP_PHASE",
    "in_progress_rows",
    "step_intervals",
    "step_rows",
    "success_after_its_steps",
]


STEP_PHASE: Final = "rollout"
"""Phase of the billable interval of one training step.

The export gives one duration per step (``full_iteration``: sampling, grading,
training and eval together), not one per phase, so the whole step is recorded
under the loop's first phase. Only the union of billable time counts (R1), so the
name never changes an amount.
"""


def step_intervals(events: pd.DataFrame, jobs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Metrics events with the start of their billable interval (timing, else previous anchor).

    ``jobs`` (with ``job_id`` and epoch ``created_at``) adds each job's creation to the
    moments a step cannot start before."""
    anchors = events[(events["type"] == "metrics") | events["training_starts"]]
    metrics = events[events["type"] == "metrics"]
    previous = anchors.groupby("job_id", sort=False)["ts"].shift(1).reindex(metrics.index)
    metrics = metrics.assign(previous=previous)
    micros = (metrics["full_iteration"] * 1_000_000).round().astype("float64")
    duration = pd.to_timedelta(micros, unit="us")  # NaN (no timing) → NaT
    timed = metrics["full_iteration"].notna()
    start = (metrics["ts"] - duration).where(timed, metrics["previous"])
    # A step cannot start before the step before it ended, nor before training started
    # (or resumed), nor while the job was still being created, validated or queued: a
    # full_iteration longer than that would bill the queue, the setup or a pause as
    # training (R2). Such a step is timed from that anchor (said in a note).
    # (An anchor in the step's own second leaves the step as timed: clipped, it would be
    # a step of no time, which makes its job invalid.)
    bounds = pd.concat([metrics["previous"], _not_training_yet(events, jobs, metrics)], axis=1)
    floor = bounds.max(axis=1).astype(metrics["ts"].dtype)
    early = timed & floor.notna() & (start < floor) & (floor < metrics["ts"])
    start = start.where(~early, floor)
    return metrics.assign(start=start, timed=timed, clipped=early)


def _not_training_yet(
    events: pd.DataFrame, jobs: pd.DataFrame | None, metrics: pd.DataFrame
) -> pd.Series:
    """For each metrics event, the last moment before it at which the job had not begun
    training: its creation, or a message starting file validation or the queue."""
    marks = events.loc[
        (events["rule"] == 0) | events["rule_phase"].isin(list(_BEFORE_TRAINING)).fillna(False),
        ["job_id", "ts"],
    ]
    if jobs is not None and len(jobs):
        created = jobs.loc[jobs["created_at"].notna(), ["job_id", "created_at"]]
        marks = pd.concat(
            [marks, created.assign(ts=utc_from_epoch(created["created_at"]))[["job_id", "ts"]]],
            ignore_index=True,
        )
    if marks.empty or metrics.empty:
        return pd.Series(pd.NaT, index=metrics.index, dtype=metrics["ts"].dtype)
    marks = marks.astype({"job_id": metrics["job_id"].dtype, "ts": metrics["ts"].dtype})
    found = pd.merge_asof(
        metrics[["job_id", "ts"]]
        .rename_axis("_row")
        .reset_index()
        .sort_values("ts", kind="stable"),
        marks.rename(columns={"ts": "mark"}).sort_values("mark", kind="stable"),
        left_on="ts",
        right_on="mark",
        by="job_id",
        allow_exact_matches=False,
    )
    return found.set_index("_row")["mark"].reindex(metrics.index)


_BEFORE_TRAINING: Final = ("validating_files", "queued")
"""Phases a message starts before training begins (``messages.MESSAGE_RULES``)."""


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


def in_progress_rows(steps: pd.DataFrame, canonical: pd.DataFrame) -> pd.DataFrame:
    """The step in progress when a job was cancelled or paused (R7: such a charge covers all
    work up to the stop), as a ``STEP_PHASE`` interval from the end of the step before it
    to the stop.

    Steps run back to back, so the next one had begun when the step before the stop was
    not the last (``total_steps`` says so); only a stop that comes within the longest step
    of that end is such a step (later, a metrics event is missing from the export: the
    job's problem, see ``problems``). After the last step, or with no ``total_steps`` to
    tell, nothing is assumed; a stop at the step's own end adds nothing.
    """
    columns = ["job_id", "ts", "event", "event_id", "phase", "message"]
    timed = steps[steps["start"].notna() & (steps["start"] < steps["ts"])]
    stops = canonical.loc[
        canonical["event"].isin(["cancelled", "paused"]), ["job_id", "ts", "event_id"]
    ]
    if stops.empty or timed.empty:
        return pd.DataFrame(columns=columns)
    longest = (
        timed.assign(length=timed["ts"] - timed["start"])
        .groupby("job_id", sort=False)["length"]
        .max()
        .rename("longest")
    )
    ends = timed[["job_id", "ts", "step", "total_steps"]].rename(columns={"ts": "step_end"})
    # The end of the last step at or before each stop, job by job.
    before = pd.merge_asof(
        stops.sort_values("ts", kind="stable"),
        ends.sort_values("step_end", kind="stable"),
        left_on="ts",
        right_on="step_end",
        by="job_id",
    ).join(longest, on="job_id")
    # Only the first stop after a step stopped its work: a cancel while paused adds nothing.
    before = before[before["step_end"].notna()].drop_duplicates(["job_id", "step_end"])
    more = pd.to_numeric(before["step"]) < pd.to_numeric(before["total_steps"])
    working = before[
        more.fillna(False).astype(bool)
        & (before["ts"] > before["step_end"])
        & ((before["ts"] - before["step_end"]) <= before["longest"])
    ]
    starts = pd.DataFrame(
        {
            "job_id": working["job_id"],
            "ts": working["step_end"],
            "event": "phase_start",
            "event_id": working["event_id"] + ":in_progress:phase_start",
            "phase": STEP_PHASE,
            "message": "the step in progress at the stop (R7)",
        }
    )
    stopped = starts.assign(
        ts=working["ts"],
        event="phase_end",
        event_id=working["event_id"] + ":in_progress:phase_end",
    )
    return pd.concat([starts, stopped], ignore_index=True)[columns]


def success_after_its_steps(canonical: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A job that succeeded before its last step's metrics event: its success is taken at
    that step's end, with a note.

    A succeeded job has run every step; a step logged after the success message (another
    clock, or a late log) would otherwise be accrued work of an ended job (R8), never
    charged, and the job billed short (R4: the final charge covers the whole run).
    """
    done = canonical["event"].eq("succeeded")
    steps = canonical[canonical["event"].eq("step_completed")]
    if not done.any() or steps.empty:
        return canonical, []
    last_step = lookup(canonical["job_id"], steps.groupby("job_id", sort=False)["ts"].max())
    final = canonical[done].drop_duplicates("job_id", keep="last").index
    late = pd.Series(False, index=canonical.index)
    late[final] = True
    late &= last_step.notna() & (last_step > canonical["ts"])
    if not late.any():
        return canonical, []
    moved = canonical[late]
    notes = [
        f"job {job}: a step is logged after its success (at {pd.Timestamp(was).isoformat()}): "
        f"the success is taken at the end of its last step "
        f"({pd.Timestamp(now).isoformat()}), so that every step is charged (R4)"
        for job, was, now in zip(moved["job_id"], moved["ts"], last_step[late], strict=True)
    ]
    return canonical.assign(ts=canonical["ts"].where(~late, last_step)), notes
