"""Write the sample logs next to this file (deterministic: the same bytes on every run).

    python sample_logs/generate.py

- ``2025-05.jsonl``, ``2025-06.csv.gz``, ``2025-07.parquet``: three months of RFT jobs of
  four teams (events split by the month of their timestamp, so a job running over a
  month's end is split across two files), made by ``rftcost.simulate``: featured jobs
  showing each billing situation, plus a background of random jobs.
- ``../examples/worked_examples.jsonl``: the twelve worked examples of billing-rules.md,
  built by hand with exact timestamps (``ftjob-example-01`` … ``ftjob-example-12``). They
  live outside this folder: a folder is read whole, and the examples (no team, June
  2025) are not part of the realistic log a new user bills, charts and audits first.

README.md (next to this file) says which job shows what.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rftcost.events.schema import EVENT_COLUMNS, INT_COLUMNS
from rftcost.simulate import (
    RunSettings,
    Scenario,
    random_scenario,
    random_settings,
    simulate_jobs,
    write_events,
)

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
SEED = 20250610
MONTH_FILES = {
    "2025-05": "2025-05.jsonl",
    "2025-06": "2025-06.csv.gz",
    "2025-07": "2025-07.parquet",
}
BACKGROUND_JOBS = 36


# --- featured jobs: one per situation ---------------------------------------------------------


def _settings(team: str | None, project: str | None = None, **changes: Any) -> RunSettings:
    base: dict[str, Any] = {
        "team": team,
        "project": project,
        "n_train_examples": 120,
        "n_valid_examples": 24,
        "batch_size": 16,
        "n_epochs": 2,
        "eval_interval": 5,
        "grader_type": "python",
    }
    return RunSettings(**{**base, **changes})


_O3 = {"grader_type": "score_model", "grader_model": "o3-2025-04-16"}

# (job id, created at, settings, scenario): README.md describes each.
FEATURED: list[tuple[str, str, RunSettings, Scenario]] = [
    (
        "ftjob-demo-success",
        "2025-05-06T09:12:00Z",
        _settings("search", "ranking"),
        Scenario(checkpoint_interval=5),
    ),
    (
        "ftjob-demo-failed-checkpoint",
        "2025-05-14T13:40:00Z",
        _settings(
            "support", "triage", grader_type="score_model", grader_model="gpt-4.1-2025-04-14"
        ),
        Scenario(outcome="failed", stop_after_step=8, checkpoint_interval=5),
    ),
    (
        "ftjob-demo-failed-early",
        "2025-05-20T08:05:00Z",
        _settings("legal", "contracts"),
        Scenario(outcome="failed", stop_after_step=3, checkpoint_interval=5),
    ),
    (
        "ftjob-demo-month-end",
        "2025-05-31T23:05:00Z",
        _settings(
            "research", "agents", grader_type="label_model", grader_model="gpt-4.1-nano-2025-04-14"
        ),
        Scenario(checkpoint_interval=5),
    ),
    (
        "ftjob-demo-failed-after-resume",
        "2025-06-03T10:00:00Z",
        _settings("legal", "contracts"),
        Scenario(
            outcome="failed",
            stop_after_step=7,
            pause_after_step=5,
            pause_seconds=5400,
            checkpoint_interval=5,
        ),
    ),
    (
        "ftjob-demo-o3-before",
        "2025-06-05T07:30:00Z",
        _settings("search", "query-rewrite", **_O3),
        Scenario(checkpoint_interval=5),
    ),
    (
        "ftjob-demo-o3-across",
        "2025-06-09T20:30:00Z",
        _settings("research", "math-reasoning", **_O3),
        Scenario(pause_after_step=4, pause_seconds=3 * 3600, checkpoint_interval=5),
    ),
    (
        "ftjob-demo-o3-after",
        "2025-06-12T07:30:00Z",
        _settings("search", "query-rewrite", **_O3),
        Scenario(checkpoint_interval=5),
    ),
    (
        "ftjob-demo-pause-resume",
        "2025-06-18T14:00:00Z",
        _settings(
            "support", "answers", grader_type="score_model", grader_model="gpt-4.1-mini-2025-04-14"
        ),
        Scenario(pause_after_step=6, pause_seconds=4 * 3600, checkpoint_interval=5),
    ),
    (
        "ftjob-demo-rollback",
        "2025-06-24T09:00:00Z",
        _settings(
            "research", "agents", grader_type="score_model", grader_model="o4-mini-2025-04-16"
        ),
        Scenario(rollback_after_steps=(8,), checkpoint_interval=5),
    ),
    (
        "ftjob-demo-data-sharing",
        "2025-07-02T11:00:00Z",
        _settings("support", "answers", data_sharing=True),
        Scenario(checkpoint_interval=5),
    ),
    (
        "ftjob-demo-cancelled",
        "2025-07-09T15:20:00Z",
        _settings("search", "ranking", grader_type="string_check"),
        Scenario(outcome="cancelled", stop_after_step=6, checkpoint_interval=5),
    ),
    (
        "ftjob-demo-no-team",
        "2025-07-16T10:45:00Z",
        _settings(None, grader_type="multi", grader_model="gpt-4.1-mini-2025-04-14"),
        Scenario(checkpoint_interval=5),
    ),
    (
        "ftjob-demo-running",
        "2025-07-31T19:00:00Z",
        _settings("research", "math-reasoning", **_O3),
        Scenario(outcome="running", stop_after_step=9, checkpoint_interval=5),
    ),
]


def featured_jobs() -> pd.DataFrame:
    ids, created, settings, scenarios = zip(*FEATURED, strict=True)
    return simulate_jobs(
        list(settings),
        scenarios=list(scenarios),
        job_ids=list(ids),
        created_at=list(created),
        seed=SEED,
    )


def background_jobs() -> pd.DataFrame:
    """Random jobs of the four teams; those still running are finished (only the last
    day of the log may show a running job, and ``ftjob-demo-running`` does)."""
    rng = np.random.default_rng(SEED)
    settings = random_settings(rng, BACKGROUND_JOBS)
    scenarios = []
    for run in settings:
        scenario = random_scenario(rng, run.steps)
        if scenario.outcome == "running":
            scenario = scenario.model_copy(update={"outcome": "succeeded"})
        scenarios.append(scenario)
    return simulate_jobs(
        settings,
        scenarios=scenarios,
        start="2025-05-01T00:00:00Z",
        end="2025-07-28T00:00:00Z",
        seed=SEED + 1,
    )


def monthly_logs(out: Path) -> list[Path]:
    events = pd.concat([featured_jobs(), background_jobs()], ignore_index=True)
    events = events.sort_values(["ts", "job_id"], kind="stable").reset_index(drop=True)
    month = events["ts"].dt.strftime("%Y-%m")
    unexpected = sorted(set(month) - set(MONTH_FILES))
    if unexpected:
        raise SystemExit(f"events outside May-July 2025: {unexpected}")
    return [
        write_events(events[month == key].reset_index(drop=True), out / name)
        for key, name in MONTH_FILES.items()
    ]


# --- the worked examples of billing-rules.md, by hand -------------------------------------------


@dataclass
class _Job:
    """Events of one hand-built job at a moving clock."""

    job_id: str
    clock: datetime
    events: list[dict[str, Any]] = field(default_factory=list)

    def at(self, **delta: float) -> _Job:
        self.clock += timedelta(**delta)
        return self

    def add(self, event: str, **fields: Any) -> _Job:
        self.events.append(
            {
                "job_id": self.job_id,
                "ts": self.clock.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "event": event,
                "event_id": f"{self.job_id.replace('ftjob', 'ftevent')}-{len(self.events)}",
                **fields,
            }
        )
        return self

    def phase(self, name: str, **duration: float) -> _Job:
        return self.add("phase_start", phase=name).at(**duration).add("phase_end", phase=name)


def _start(number: int, day: int, **created: Any) -> _Job:
    job = _Job(f"ftjob-example-{number:02d}", datetime(2025, 6, day, 8, tzinfo=UTC))
    return job.add("job_created", model="o4-mini-2025-04-16", **created)


def _guide_prelude(job: _Job) -> _Job:
    """The billing guide's run: 10 + 20 + 30 + 30 min before training (all excluded, R2)."""
    return (
        job.phase("validating_files", minutes=10)
        .phase("safety_check", minutes=20)
        .phase("queued", minutes=30)
        .phase("setup", minutes=30)
    )


def _four_hours_of_training(job: _Job) -> _Job:
    """4 h of training whose phases overlap (R1): their union is exactly 4 h."""
    t0 = job.clock
    marks = [
        (0, "phase_start", "rollout"),
        (60, "phase_start", "grading"),
        (90, "phase_end", "rollout"),
        (120, "phase_end", "grading"),
        (120, "phase_start", "update"),
        (150, "phase_end", "update"),
        (150, "phase_start", "validation"),
        (180, "phase_end", "validation"),
        (180, "phase_start", "rollout"),
        (210, "phase_start", "grading"),
        (220, "phase_end", "rollout"),
        (240, "phase_end", "grading"),
    ]
    for minute, event, phase in marks:
        job.clock = t0 + timedelta(minutes=minute)
        job.add(event, phase=phase)
    return job


def _example_1_or_9(number: int, day: int, data_sharing: bool) -> _Job:
    job = _guide_prelude(_start(number, day, data_sharing=data_sharing))
    return _four_hours_of_training(job).phase("safety_eval", minutes=30).add("succeeded")


def worked_examples() -> Iterator[_Job]:
    yield _example_1_or_9(1, 2, data_sharing=False)

    job = _guide_prelude(_start(2, 3)).add("phase_start", phase="rollout").at(hours=2)
    job.add("step_completed", step=5).add("checkpoint_saved", step=5).at(hours=1)
    yield job.add("phase_end", phase="rollout").add("failed")

    yield _start(3, 4).phase("rollout", hours=1, seconds=18).add("succeeded")
    yield _start(4, 5).phase("rollout", hours=1, seconds=17).add("succeeded")

    job = _start(5, 6).phase("rollout", hours=1, seconds=17).add("paused").at(hours=3)
    yield job.add("resumed").phase("rollout", hours=1, seconds=17).add("succeeded")

    job = _start(6, 9).add("phase_start", phase="rollout").at(minutes=30)
    job.add("phase_start", phase="grading").at(minutes=30).add("phase_end", phase="rollout")
    job.at(minutes=30).add("phase_end", phase="grading").add("phase_start", phase="update")
    yield job.at(minutes=30).add("phase_end", phase="update").add("succeeded")

    yield _start(7, 10).add("phase_start", phase="rollout").at(hours=3).add("cancelled")

    job = _start(8, 11).phase("rollout", hours=1).add("checkpoint_saved", step=10)
    job.add("paused").at(minutes=10).add("resumed")
    yield job.add("phase_start", phase="rollout").at(hours=2).add("failed")

    yield _example_1_or_9(9, 12, data_sharing=True)

    job = _start(10, 13, grader_type="score_model", grader_model="gpt-4.1")
    job.add("phase_start", phase="rollout").at(minutes=30)
    job.add(
        "grader_usage",
        grader_model="gpt-4.1",
        input_tokens=1_000_000,
        cached_input_tokens=200_000,
        output_tokens=100_000,
    )
    yield job.at(minutes=30).add("phase_end", phase="rollout").add("succeeded")

    # One job, two charges: the same o3 usage before and after o3's price cut (R10).
    o3_usage = {
        "grader_model": "o3-2025-04-16",
        "input_tokens": 1_000_000,
        "cached_input_tokens": 200_000,
        "output_tokens": 150_000,
    }
    job = _start(11, 9, grader_type="score_model", grader_model="o3-2025-04-16")
    job.add("phase_start", phase="rollout").at(minutes=30).add("grader_usage", **o3_usage)
    job.at(minutes=30).add("phase_end", phase="rollout").add("paused")
    job.clock = datetime(2025, 6, 11, 8, tzinfo=UTC)
    job.add("resumed").add("phase_start", phase="rollout").at(minutes=30)
    job.add("grader_usage", **o3_usage).at(minutes=30)
    yield job.add("phase_end", phase="rollout").add("succeeded")

    job = _start(12, 16).add("phase_start", phase="rollout").at(hours=1)
    job.add("checkpoint_saved", step=10).at(minutes=30).add("rollback", step=10).at(hours=1)
    yield job.add("phase_end", phase="rollout").add("succeeded")


def worked_examples_log(out: Path) -> Path:
    records = [event for job in worked_examples() for event in job.events]
    frame = pd.DataFrame.from_records(records)
    columns = [c for c in EVENT_COLUMNS if c in frame]
    dtypes = {c: "Int64" for c in INT_COLUMNS if c in frame} | {"data_sharing": "boolean"}
    frame = frame[columns].astype(dtypes).assign(ts=pd.to_datetime(frame["ts"], utc=True))
    return write_events(frame, out / "worked_examples.jsonl")


def main(out: Path = HERE, examples: Path = EXAMPLES) -> list[Path]:
    """Write the monthly logs into ``out`` and the worked examples into ``examples``;
    returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    examples.mkdir(parents=True, exist_ok=True)
    return [*monthly_logs(out), worked_examples_log(examples)]


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path.relative_to(HERE.parent)} ({path.stat().st_size:,} bytes)")
