"""Jobs whose amount the export cannot establish (invalid: amount unknown, never $0).

An events page with ``has_more: true`` and no last page; metrics that skip steps or
do not start at step 1; a succeeded job whose steps end before ``total_steps``; a
checkpoint past the last metrics step; a step with no timing and no anchor, or of no
time; a job with no events; a stop whose time no event gives; a cancel or pause
longer than any step after the last step.
"""

from __future__ import annotations

from typing import Any, cast

import pandas as pd

from rftcost.events.openai.frames import is_missing, lookup, optional_text, true_where
from rftcost.events.openai.messages import FINAL_STATUSES
from rftcost.events.openai.model import ImportProblem

__all__ = ["incomplete_jobs"]


def incomplete_jobs(
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
    final_groups = canonical[canonical["event"].isin(FINAL_STATUSES)].groupby("job_id", sort=False)
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
    # The stop that ended the work: the first at or after the last step's end (a job
    # paused, then cancelled later, stopped working at the pause).
    stopping = canonical.loc[canonical["event"].isin(["cancelled", "paused"]), ["job_id", "ts"]]
    after = stopping.merge(
        spans["last_end"].rename_axis("job").reset_index(), left_on="job_id", right_on="job"
    )
    after = after[after["ts"] >= after["last_end"]]
    stops = after.groupby("job_id", sort=False)["ts"].min().rename("stop")
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
    finals = canonical[canonical["event"].isin(FINAL_STATUSES)]
    guessed = canonical[canonical["event_id"].str.contains(":status:", regex=False, na=False)]
    untimed_stop = jobs[
        jobs["job_id"].isin(guessed["job_id"])
        & (jobs["finished_at"].isna() | true_where(jobs["status"].eq("paused")))
    ]
    add(
        untimed_stop["job_id"],
        [
            f"the job object says {row.status!r} but has no finished_at and no event says when: "
            "work after its last event may be missing"
            for row in untimed_stop.itertuples()
        ],
    )
    open_end = jobs[jobs["finished_at"].notna() & ~jobs["job_id"].isin(finals["job_id"])]
    open_end = open_end[~true_where(open_end["status"].isin(["paused"]))]
    add(
        open_end["job_id"],
        [
            "the job object has finished_at but nothing in the export says how it ended "
            + (
                "(no status, message or webhook)"
                if is_missing(row.status)
                else f"(its status {row.status!r} is not an end: no message or webhook says one)"
            )
            for row in open_end.itertuples()
        ],
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
    beyond = checkpoints.assign(last=lookup(checkpoints["job_id"], last_step))
    beyond = beyond[beyond["last"].isna() | (beyond["step"] > beyond["last"].fillna(0))]
    beyond = beyond.drop_duplicates("job_id", keep="last")
    add(
        beyond["job_id"],
        [
            f"a checkpoint at step {row.step} but "
            + (
                "no metrics event"
                if is_missing(row.last)
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
        ~jobs["job_id"].isin(events["job_id"])
        & ~jobs["status"].isin(["validating_files", "queued"])
    ]
    add(
        quiet["job_id"],
        [
            f"no events in the export (status {optional_text(row.status) or 'unknown'}): its "
            "time is unknown; "
            "export its events too"
            for row in quiet.itertuples()
        ],
    )
    # A job's file: its job object's, else the file of its last event.
    last_events = events.drop_duplicates("job_id", keep="last")
    file_of = dict(zip(last_events["job_id"], last_events["file"], strict=True))
    file_of.update(zip(jobs["job_id"], jobs["file"], strict=True))
    return [
        ImportProblem(
            file=file_of.get(job_id, ""),
            position="job",
            reason="time incomplete, amount unknown: " + "; ".join(reasons),
            job_id=job_id,
        )
        for job_id, reasons in sorted(found.items())
    ]
