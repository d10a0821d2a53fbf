"""Hypothesis strategies: random but valid RFT job logs."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from hypothesis import strategies as st

PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
"""The hypothesis profile in force (tests/conftest.py loads it): ``ci`` when ``CI`` is set."""

_SCALE = {"ci": 0.5, "dev": 1.0, "thorough": 10.0}
_SLOW_CI_SCALE = 0.25


def examples(count: int, *, slow: bool = False) -> int:
    """``max_examples`` for a property that asks for ``count`` on a workstation.

    The ``ci`` profile runs half as many (a quarter for a ``slow`` property, one that
    bills several times per example), never fewer than 5; ``thorough`` ten times as many.
    The examples stay derandomized in CI, so a smaller count never makes a run flaky.
    """
    scale = _SCALE.get(PROFILE, 1.0)
    if slow and PROFILE == "ci":
        scale = _SLOW_CI_SCALE
    return max(5, round(count * scale))


BASE = datetime(2025, 6, 8, tzinfo=UTC)
BILLABLE = ("rollout", "grading", "update", "validation")
EXCLUDED = ("validating_files", "safety_check", "queued", "setup", "safety_eval", "idle")
GRADERS = ("gpt-4.1", "gpt-4.1-nano", "o3", "o4-mini-2025-04-16")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@st.composite
def job_events(draw: st.DrawFn, job_id: str) -> list[dict[str, Any]]:
    """One job: phases (some overlapping), checkpoints, usage, pauses, rollbacks, an ending."""
    clock = BASE + timedelta(seconds=draw(st.integers(0, 5 * 86400)))
    events: list[dict[str, Any]] = []

    def add(event: str, at: datetime, **fields: Any) -> None:
        events.append({"job_id": job_id, "ts": _iso(at), "event": event, **fields})

    team = draw(st.sampled_from(["search", "ads", None]))
    sharing = draw(st.booleans())
    add("job_created", clock, team=team, data_sharing=sharing)
    # Settings repeated on a later record (fine), or given otherwise (the job invalid).
    restated = draw(
        st.sampled_from([{}] * 6 + [{"team": team} if team else {}, {"data_sharing": not sharing}])
    )
    step = 0
    checkpoints: list[int] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["excluded", "billable", "overlap", "pause", "rollback"]))
        length = timedelta(
            seconds=draw(st.integers(1, 7200)), milliseconds=draw(st.integers(0, 999))
        )
        if kind == "excluded":
            phase = draw(st.sampled_from(EXCLUDED))
            add("phase_start", clock, phase=phase)
            clock += length
            add("phase_end", clock, phase=phase)
        elif kind in ("billable", "overlap"):
            phase = draw(st.sampled_from(BILLABLE))
            add("phase_start", clock, phase=phase, **restated)
            if kind == "overlap":
                other = draw(st.sampled_from([p for p in BILLABLE if p != phase]))
                add("phase_start", clock + length / 2, phase=other)
                add("phase_end", clock + length * 1.5, phase=other)
            if draw(st.booleans()):
                add(
                    "grader_usage",
                    clock + length / 3,
                    grader_model=draw(st.sampled_from(GRADERS)),
                    input_tokens=(tokens := draw(st.integers(0, 3_000_000))),
                    cached_input_tokens=draw(st.integers(0, tokens)),
                    output_tokens=draw(st.integers(0, 500_000)),
                )
            clock += length
            step += draw(st.integers(1, 20))
            add("step_completed", clock, step=step)
            if draw(st.booleans()):
                add("checkpoint_saved", clock, step=step)
                checkpoints.append(step)
            add("phase_end", clock, phase=phase)
            if kind == "overlap":
                clock += length / 2
        elif kind == "pause":
            add("paused", clock)
            clock += length
            if draw(st.integers(0, 7)):  # else its resume lost: later work makes it invalid
                add("resumed", clock)
        elif kind == "rollback":
            add("phase_start", clock, phase="rollout")
            clock += length
            target = (
                draw(st.sampled_from(checkpoints)) if checkpoints and draw(st.booleans()) else None
            )
            if target is None:
                add("rollback", clock)
            else:
                add("rollback", clock, step=target)
            add("phase_end", clock, phase="rollout")
    ending = draw(st.sampled_from(["succeeded", "failed", "cancelled", None]))
    clock += timedelta(seconds=draw(st.integers(0, 600)))
    if ending == "failed" and draw(st.booleans()):
        # Work in flight at the failure: a phase left open, closed by the failure.
        add("phase_start", clock, phase="rollout")
        clock += timedelta(seconds=draw(st.integers(1, 3600)))
    if ending is not None:
        add(ending, clock)
    return events


@st.composite
def logs(draw: st.DrawFn, max_jobs: int = 4) -> list[dict[str, Any]]:
    """Several jobs' events, each with a unique event_id."""
    records: list[dict[str, Any]] = []
    for index in range(draw(st.integers(1, max_jobs))):
        records.extend(draw(job_events(f"ftjob-{index}")))
    return [{**record, "event_id": f"ev-{i}"} for i, record in enumerate(records)]


@st.composite
def excluded_phases(draw: st.DrawFn, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Up to three intervals of excluded phases per job of ``records``, inside its wall clock.

    Every added record has its own ``event_id``: two intervals of the same phase that start
    (or end) at the same second are two events, not one record repeated. Without ids they
    were de-duplicated on content into one start and two ends, which is an unmatched
    ``phase_end`` (an invalid job), not the property under test.
    """
    frame = pd.DataFrame(records)
    stamps = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    added: list[dict[str, Any]] = []
    for job_id, times in stamps.groupby(frame["job_id"]):
        first, last = times.min(), times.max()
        span = int((last - first).total_seconds())
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.integers(0, span))
            end = draw(st.integers(start, span))
            phase = draw(st.sampled_from(EXCLUDED))
            for event, offset in (("phase_start", start), ("phase_end", end)):
                moment = first + pd.Timedelta(seconds=offset)
                added.append(
                    {
                        "job_id": job_id,
                        "ts": moment.isoformat().replace("+00:00", "Z"),
                        "event": event,
                        "phase": phase,
                        "event_id": f"excluded-{len(added)}",
                    }
                )
    return added
