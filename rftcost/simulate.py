"""Synthetic RFT runs: realistic canonical event logs for samples, tests and benchmarks.

A run is described by its settings (``RunSettings``, the hyperparameters of
OpenAI's create-job request plus who pays) and by what happens to it
(``Scenario``: success, failure, cancellation, a log that ends mid-training, a
pause, worker crashes that roll training back to a checkpoint). ``simulate_jobs``
turns many runs into one frame of canonical events (event-log.md), with the
columns and dtypes of ``rftcost.events.schema``.

The time model is explicit (``TimeModel``): a step's rollout, grading, update and
validation seconds are simple functions of the settings (``TimeModel.median_seconds``)
times lognormal noise, so an estimator can be fitted on simulated history and
checked against it.

Generation is vectorized over all jobs and steps at once: a job is laid out as a
sequence of *units* (a prelude, one unit per attempted training step, an
epilogue) and every event kind is a column-wise mask and time offset over the
units; counting the events of each unit places every event in the output without
sorting. Only the handful of event kinds is looped over, never jobs or events.

Each job, in time order::

    job_created
    validating_files, safety_check, queued, setup        (excluded phases, R2)
    per step: rollout ─┐                                 (billable phases, R1)
                grading (starts before the rollout ends: the two overlap)
                update, step_completed, [checkpoint_saved], [validation]
              [paused ... resumed]                       (R4, R7)
              [a worker crash: the rollout stops, rollback to the checkpoint, R6]
    safety_eval, succeeded        (or failed / cancelled during a step; running: no end)
"""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rftcost.events.schema import EVENT_COLUMNS, EVENTS

__all__ = [
    "DEFAULT_TEAMS",
    "GRADER_MODELS",
    "MODEL_GRADER_TYPES",
    "Outcome",
    "RunSettings",
    "Scenario",
    "StepSeconds",
    "TimeModel",
    "random_scenario",
    "random_settings",
    "simulate_jobs",
    "write_events",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Int32Array = npt.NDArray[np.int32]
CodeArray = npt.NDArray[np.int8]

Outcome = Literal["succeeded", "failed", "cancelled", "running"]
ReasoningEffort = Literal["low", "medium", "high"]
GraderType = Literal[
    "string_check", "text_similarity", "score_model", "label_model", "python", "multi"
]

MODEL_GRADER_TYPES: Final = ("score_model", "label_model", "multi")
"""Grader types that call an OpenAI model (and so need ``grader_model``, R9)."""

GRADER_MODELS: Final = (
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "o3-2025-04-16",
    "o4-mini-2025-04-16",
)
"""Model graders the random settings draw from (dated names, as in a grader config)."""

DEFAULT_TEAMS: Final[Mapping[str, tuple[str | None, ...]]] = {
    "search": ("ranking", "query-rewrite"),
    "support": ("triage", "answers"),
    "legal": ("contracts",),
    "research": ("math-reasoning", "agents", None),
}
"""Teams and their projects drawn by ``random_settings`` (``None``: no project)."""

_OUTCOMES: Final = ("succeeded", "failed", "cancelled", "running")
_EFFORTS: Final = ("low", "medium", "high")
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_REASONING_MODEL = re.compile(r"^o\d")
_MS = 1_000_000  # nanoseconds per millisecond: simulated times have millisecond resolution


# --- settings and scenarios -------------------------------------------------------------


class RunSettings(BaseModel):
    """The settings of one RFT run: the create-job request's hyperparameters and who pays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "o4-mini-2025-04-16"
    """Base model being fine-tuned."""
    team: str | None = None
    """Team that pays (``None``: the job is reported as unallocated)."""
    project: str | None = None
    """Project within the team, if any."""
    data_sharing: bool = False
    """The job was created with data sharing (R12)."""
    n_train_examples: int = Field(default=200, ge=1)
    """Examples in the training file."""
    n_valid_examples: int = Field(default=40, ge=0)
    """Examples in the validation file."""
    batch_size: int = Field(default=16, ge=1)
    """Prompts per training step."""
    n_epochs: int = Field(default=2, ge=1)
    """Passes over the training file."""
    compute_multiplier: float = Field(default=1.0, gt=0)
    """Scales the samples drawn (and so the compute) per step."""
    eval_interval: int = Field(default=5, ge=1)
    """Training steps between validation runs."""
    eval_samples: int = Field(default=1, ge=1)
    """Samples drawn per validation example."""
    reasoning_effort: ReasoningEffort = "medium"
    """Reasoning effort of the model being trained: longer rollouts when higher."""
    grader_type: GraderType = "python"
    """The run's grader (``multi`` combines a model grader with a python one)."""
    grader_model: str | None = None
    """Model of the model grader; required for score_model, label_model and multi."""

    @model_validator(mode="after")
    def _grader_model_matches_type(self) -> RunSettings:
        needs_model = self.grader_type in MODEL_GRADER_TYPES
        if needs_model and self.grader_model is None:
            raise ValueError(f"a {self.grader_type} grader needs grader_model")
        if not needs_model and self.grader_model is not None:
            raise ValueError(f"a {self.grader_type} grader calls no model; drop grader_model")
        return self

    @property
    def steps(self) -> int:
        """Training steps: ``ceil(n_train_examples × n_epochs / batch_size)``."""
        return math.ceil(self.n_train_examples * self.n_epochs / self.batch_size)


class Scenario(BaseModel):
    """What happens to a run. Step numbers count completed training steps.

    The job stops, pauses or crashes at the *first* completion of the step named
    (after a rollback, steps are done again). Values that do not fit the run are
    adjusted when it is simulated: a stop is clipped to ``[0, steps - 1]``; a pause
    after the stop or after the last step is dropped; a rollback needs a checkpoint
    to return to and a step after it, so one before the first checkpoint or at or
    after the stop (or the last step) is dropped.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Outcome = "succeeded"
    """``succeeded``; ``failed`` or ``cancelled`` during a step; ``running``: the log
    ends during a step, with no final billing event (R8)."""
    stop_after_step: int | None = Field(default=None, ge=0)
    """Steps completed before a failure, cancellation or the end of a running log;
    the stop happens during the next step. ``None``: half of the run."""
    checkpoint_interval: int = Field(default=5, ge=1)
    """A checkpoint is saved every this many steps, and at the last step."""
    pause_after_step: int | None = Field(default=None, ge=1)
    """The user pauses the job after this step (a billing event, R4) and resumes later."""
    pause_seconds: float = Field(default=3600.0, gt=0)
    """How long the job stays paused."""
    rollback_after_steps: tuple[int, ...] = ()
    """A worker crashes during the step after each of these; training goes back to the
    latest checkpoint and continues (R6)."""

    @field_validator("rollback_after_steps")
    @classmethod
    def _sorted_positive(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if any(step < 1 for step in steps):
            raise ValueError("rollback steps are >= 1")
        return tuple(sorted(set(steps)))


class StepSeconds(BaseModel):
    """Median seconds of one training step's phases and of one validation run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    samples_per_step: float
    """Samples drawn and graded per step: batch_size × rollouts_per_prompt × compute_multiplier."""
    rollout: float
    """Sampling from the model being trained."""
    grading: float
    """Running the grader on the step's samples (overlaps the rollout)."""
    update: float
    """Computing and applying the weight update."""
    validation: float
    """One validation run (every ``eval_interval`` steps)."""


class TimeModel(BaseModel):
    """How long things take. Every duration is a median; noise is lognormal around it.

    Per training step, with ``samples = batch_size × rollouts_per_prompt × compute_multiplier``:

    - rollout  = rollout_base + rollout_per_sample × effort_factor[effort] × samples
    - grading  = grading_base + grader_seconds(grader) × samples
    - update   = update_base + update_per_sample × samples
    - validation (every ``eval_interval`` steps and after the last one), with
      ``v = eval_samples × n_valid_examples``:
      validation_base + (validation_per_sample × effort_factor + grader_seconds) × v

    Grading starts when a fraction ``grading_start`` (drawn uniformly) of the rollout is
    done and ends ``max(grading - (rollout - start), grading_tail × grading)`` after the
    rollout ends: a fast grader keeps pace with sampling, a slow one trails it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rollouts_per_prompt: int = 4
    """Samples per training prompt at compute_multiplier 1."""
    rollout_base: float = 20.0
    """Fixed seconds of a step's rollout."""
    rollout_per_sample: float = 1.5
    """Rollout seconds per sample at medium reasoning effort."""
    effort_factor: dict[str, float] = Field(
        default_factory=lambda: {"low": 0.5, "medium": 1.0, "high": 2.0}
    )
    """Rollout length relative to medium reasoning effort."""
    grading_base: float = 3.0
    """Fixed seconds of a step's grading."""
    grader_seconds: dict[str, float] = Field(
        default_factory=lambda: {
            "string_check": 0.002,
            "text_similarity": 0.01,
            "python": 0.02,
            "gpt-4.1-nano": 0.05,
            "gpt-4.1-mini": 0.07,
            "gpt-4.1": 0.1,
            "o4-mini": 0.6,
            "o3": 0.9,
        }
    )
    """Grading seconds per sample by grader type or grader model family (a reasoning model
    grader is about 10× slower than a non-reasoning one)."""
    reasoning_grader_seconds: float = 0.7
    """Per sample, for a reasoning model grader (``o…``) missing from ``grader_seconds``."""
    other_grader_seconds: float = 0.08
    """Per sample, for any other model grader missing from ``grader_seconds``."""
    update_base: float = 15.0
    """Fixed seconds of a step's weight update."""
    update_per_sample: float = 0.6
    """Update seconds per sample."""
    validation_base: float = 15.0
    """Fixed seconds of a validation run."""
    validation_per_sample: float = 1.0
    """Validation sampling seconds per validation sample at medium effort."""
    grading_start: tuple[float, float] = (0.3, 0.8)
    """Range of the rollout fraction done when grading starts."""
    grading_tail: float = 0.05
    """Shortest grading tail after the rollout ends, as a fraction of grading."""
    step_noise: float = 0.15
    """Sigma of the lognormal noise on every phase of every step."""
    job_noise: float = 0.1
    """Sigma of a lognormal speed factor per job (hardware, prompt lengths)."""
    step_gap: float = 2.0
    """Seconds between steps, outside any phase."""
    checkpoint: float = 12.0
    """Seconds to save a checkpoint, outside any phase."""
    recovery: float = 300.0
    """Median seconds from a worker crash to training again."""
    resume: float = 240.0
    """Seconds from a resume to training again."""
    validating_files: tuple[float, float] = (60.0, 0.5)
    """Validating files: base seconds and seconds per training example."""
    safety_check: tuple[float, float] = (240.0, 1.0)
    """Safety check of the dataset: base seconds and seconds per training example."""
    queued: tuple[float, float] = (600.0, 0.8)
    """Queue: median seconds and lognormal sigma (long-tailed)."""
    setup: float = 600.0
    """Setup seconds (weights, dataset rendering)."""
    safety_eval: float = 900.0
    """Post-training safety evaluation seconds."""

    def grader_seconds_per_sample(self, grader_type: str, grader_model: str | None) -> float:
        """Grading seconds per sample of a grader (a multi grader adds a python grader)."""
        if grader_type not in MODEL_GRADER_TYPES or grader_model is None:
            return self.grader_seconds.get(grader_type, self.grader_seconds["python"])
        family = _DATE_SUFFIX.sub("", grader_model)
        fallback = (
            self.reasoning_grader_seconds
            if _REASONING_MODEL.match(family)
            else self.other_grader_seconds
        )
        seconds = self.grader_seconds.get(family, fallback)
        if grader_type == "multi":
            seconds += self.grader_seconds["python"]
        return seconds

    def median_seconds(self, settings: RunSettings) -> StepSeconds:
        """The median phase seconds of one step of ``settings`` (the model, before noise)."""
        medians = _phase_medians(
            self,
            batch_size=np.array([settings.batch_size], dtype=np.float64),
            compute_multiplier=np.array([settings.compute_multiplier]),
            effort=np.array([self.effort_factor[settings.reasoning_effort]]),
            grader=np.array(
                [self.grader_seconds_per_sample(settings.grader_type, settings.grader_model)]
            ),
            validation_samples=np.array(
                [settings.eval_samples * settings.n_valid_examples], dtype=np.float64
            ),
        )
        return StepSeconds(**{name: float(values[0]) for name, values in medians.items()})


def _phase_medians(
    model: TimeModel,
    *,
    batch_size: FloatArray,
    compute_multiplier: FloatArray,
    effort: FloatArray,
    grader: FloatArray,
    validation_samples: FloatArray,
) -> dict[str, FloatArray]:
    """The time model's formulas (``TimeModel`` docstring), over arrays of jobs."""
    samples = batch_size * model.rollouts_per_prompt * compute_multiplier
    return {
        "samples_per_step": samples,
        "rollout": model.rollout_base + model.rollout_per_sample * effort * samples,
        "grading": model.grading_base + grader * samples,
        "update": model.update_base + model.update_per_sample * samples,
        "validation": model.validation_base
        + (model.validation_per_sample * effort + grader) * validation_samples,
    }


# Grader token use per graded sample: the grader reads the prompt, the sample and its
# rubric (a shared prefix that is often cached); a reasoning grader writes far more.
_GRADER_INPUT_TOKENS = 1200.0
_REASONING_OUTPUT_TOKENS = 350.0
_OTHER_OUTPUT_TOKENS = 25.0
_CACHED_SHARE = (0.2, 0.6)
_TOKEN_NOISE = 0.1


# --- drawing settings and scenarios -----------------------------------------------------

# (grader_type, grader_model, weight): the mix random settings draw from.
_GRADER_MIX: Final[tuple[tuple[str, str | None, float], ...]] = (
    ("python", None, 0.22),
    ("string_check", None, 0.12),
    ("text_similarity", None, 0.04),
    ("score_model", "o3-2025-04-16", 0.12),
    ("score_model", "o4-mini-2025-04-16", 0.10),
    ("score_model", "gpt-4.1-2025-04-14", 0.10),
    ("score_model", "gpt-4.1-mini-2025-04-14", 0.08),
    ("label_model", "gpt-4.1-nano-2025-04-14", 0.08),
    ("label_model", "gpt-4.1-mini-2025-04-14", 0.04),
    ("multi", "gpt-4.1-mini-2025-04-14", 0.05),
    ("multi", "o3-2025-04-16", 0.05),
)


@dataclass(frozen=True)
class _Jobs:
    """Settings of many jobs as columns (one entry per job)."""

    model: npt.NDArray[np.object_]
    team: npt.NDArray[np.object_]
    project: npt.NDArray[np.object_]
    data_sharing: BoolArray
    n_train_examples: IntArray
    n_valid_examples: IntArray
    batch_size: IntArray
    n_epochs: IntArray
    compute_multiplier: FloatArray
    eval_interval: IntArray
    eval_samples: IntArray
    reasoning_effort: npt.NDArray[np.object_]
    grader_type: npt.NDArray[np.object_]
    grader_model: npt.NDArray[np.object_]

    def __len__(self) -> int:
        return len(self.batch_size)

    @property
    def steps(self) -> IntArray:
        """``ceil(n_train_examples × n_epochs / batch_size)`` in integers."""
        return -(-(self.n_train_examples * self.n_epochs) // self.batch_size)

    def settings(self, i: int) -> RunSettings:
        return RunSettings(
            model=str(self.model[i]),
            team=self.team[i],
            project=self.project[i],
            data_sharing=bool(self.data_sharing[i]),
            n_train_examples=int(self.n_train_examples[i]),
            n_valid_examples=int(self.n_valid_examples[i]),
            batch_size=int(self.batch_size[i]),
            n_epochs=int(self.n_epochs[i]),
            compute_multiplier=float(self.compute_multiplier[i]),
            eval_interval=int(self.eval_interval[i]),
            eval_samples=int(self.eval_samples[i]),
            reasoning_effort=self.reasoning_effort[i],
            grader_type=self.grader_type[i],
            grader_model=self.grader_model[i],
        )

    @classmethod
    def of(cls, settings: Sequence[RunSettings]) -> _Jobs:
        def column(name: str, dtype: Any) -> Any:
            return np.array([getattr(s, name) for s in settings], dtype=dtype)

        return cls(
            model=column("model", object),
            team=column("team", object),
            project=column("project", object),
            data_sharing=column("data_sharing", np.bool_),
            n_train_examples=column("n_train_examples", np.int64),
            n_valid_examples=column("n_valid_examples", np.int64),
            batch_size=column("batch_size", np.int64),
            n_epochs=column("n_epochs", np.int64),
            compute_multiplier=column("compute_multiplier", np.float64),
            eval_interval=column("eval_interval", np.int64),
            eval_samples=column("eval_samples", np.int64),
            reasoning_effort=column("reasoning_effort", object),
            grader_type=column("grader_type", object),
            grader_model=column("grader_model", object),
        )


def _draw_jobs(
    rng: np.random.Generator, n: int, teams: Mapping[str, Sequence[str | None]]
) -> _Jobs:
    """Varied, realistic settings for ``n`` jobs, drawn column by column."""
    pairs = [(team, project) for team, projects in teams.items() for project in projects]
    if not pairs:
        raise ValueError("teams: name at least one team with at least one project (or None)")
    owner = rng.integers(0, len(pairs), size=n)
    unallocated = rng.random(n) < 0.03  # a few jobs are created without team metadata
    team = np.array([pairs[i][0] for i in range(len(pairs))], dtype=object)[owner]
    project = np.array([pairs[i][1] for i in range(len(pairs))], dtype=object)[owner]
    team[unallocated] = None
    project[unallocated] = None

    n_train = np.round(np.exp(rng.uniform(np.log(25), np.log(500), size=n))).astype(np.int64)
    n_valid = np.maximum(10, np.round(n_train * rng.uniform(0.1, 0.25, size=n))).astype(np.int64)
    weights = np.array([w for _, _, w in _GRADER_MIX])
    grader = rng.choice(len(_GRADER_MIX), size=n, p=weights / weights.sum())
    return _Jobs(
        model=np.full(n, "o4-mini-2025-04-16", dtype=object),
        team=team,
        project=project,
        data_sharing=rng.random(n) < 0.3,
        n_train_examples=n_train,
        n_valid_examples=n_valid,
        batch_size=rng.choice(np.array([8, 16, 32, 64]), size=n, p=[0.2, 0.35, 0.3, 0.15]),
        n_epochs=rng.choice(np.array([1, 2, 3]), size=n, p=[0.3, 0.45, 0.25]),
        compute_multiplier=rng.choice(
            np.array([0.5, 1.0, 2.0, 3.0]), size=n, p=[0.15, 0.6, 0.2, 0.05]
        ),
        eval_interval=rng.choice(np.array([1, 2, 5, 10]), size=n, p=[0.1, 0.25, 0.45, 0.2]),
        eval_samples=rng.choice(np.array([1, 2, 3]), size=n, p=[0.6, 0.3, 0.1]),
        reasoning_effort=np.array(_EFFORTS, dtype=object)[rng.choice(3, size=n, p=[0.2, 0.6, 0.2])],
        grader_type=np.array([g[0] for g in _GRADER_MIX], dtype=object)[grader],
        grader_model=np.array([g[1] for g in _GRADER_MIX], dtype=object)[grader],
    )


def random_settings(
    rng: np.random.Generator,
    n: int = 1,
    *,
    teams: Mapping[str, Sequence[str | None]] = DEFAULT_TEAMS,
) -> list[RunSettings]:
    """Draw ``n`` varied, realistic run settings.

    Teams and projects come from ``teams`` (about 3% of jobs have no team); graders
    mix python, string_check, text_similarity and model graders (gpt-4.1,
    gpt-4.1-mini, gpt-4.1-nano, o3, o4-mini); about 30% of jobs share data.
    """
    jobs = _draw_jobs(rng, n, teams)
    return [jobs.settings(i) for i in range(n)]


@dataclass(frozen=True)
class _Scenarios:
    """Scenarios of many jobs as columns; ``-1`` marks "none"."""

    outcome: IntArray  # index into _OUTCOMES
    stop_after: IntArray
    checkpoint_interval: IntArray
    pause_after: IntArray
    pause_seconds: FloatArray
    rollback_job: IntArray  # one entry per rollback, sorted by job then step
    rollback_after: IntArray

    def scenario(self, i: int) -> Scenario:
        return Scenario(
            outcome=_OUTCOMES[self.outcome[i]],
            stop_after_step=None if self.stop_after[i] < 0 else int(self.stop_after[i]),
            checkpoint_interval=int(self.checkpoint_interval[i]),
            pause_after_step=None if self.pause_after[i] < 1 else int(self.pause_after[i]),
            pause_seconds=float(self.pause_seconds[i]),
            rollback_after_steps=tuple(int(s) for s in self.rollback_after[self.rollback_job == i]),
        )

    @classmethod
    def of(cls, scenarios: Sequence[Scenario]) -> _Scenarios:
        rollbacks = [(i, step) for i, s in enumerate(scenarios) for step in s.rollback_after_steps]
        return cls(
            outcome=np.array([_OUTCOMES.index(s.outcome) for s in scenarios], dtype=np.int64),
            stop_after=np.array(
                [-1 if s.stop_after_step is None else s.stop_after_step for s in scenarios],
                dtype=np.int64,
            ),
            checkpoint_interval=np.array(
                [s.checkpoint_interval for s in scenarios], dtype=np.int64
            ),
            pause_after=np.array(
                [-1 if s.pause_after_step is None else s.pause_after_step for s in scenarios],
                dtype=np.int64,
            ),
            pause_seconds=np.array([s.pause_seconds for s in scenarios], dtype=np.float64),
            rollback_job=np.array([job for job, _ in rollbacks], dtype=np.int64),
            rollback_after=np.array([step for _, step in rollbacks], dtype=np.int64),
        )


def _draw_scenarios(rng: np.random.Generator, steps: IntArray) -> _Scenarios:
    """A realistic mix: mostly successes, some failures, cancellations, pauses and crashes."""
    n = len(steps)
    outcome = rng.choice(4, size=n, p=[0.8, 0.09, 0.07, 0.04])
    stop_after = np.where(outcome == 0, -1, np.floor(rng.random(n) * steps).astype(np.int64))
    interval = rng.choice(np.array([1, 2, 5, 10]), size=n, p=[0.1, 0.3, 0.4, 0.2])
    interval = np.minimum(interval, np.maximum(steps // 2, 1))
    pauses = (rng.random(n) < 0.06) & (steps >= 2)
    pause_after = np.where(pauses, 1 + np.floor(rng.random(n) * (steps - 1)).astype(np.int64), -1)
    pause_seconds = np.clip(rng.lognormal(np.log(7200.0), 1.0, size=n), 300.0, 3 * 86400.0)

    # About 10% of jobs have a worker crash, a few of them two; each after the first checkpoint.
    crashes = rng.choice(3, size=n, p=[0.9, 0.08, 0.02]) * (steps > interval + 1)
    rollback_job = np.repeat(np.arange(n, dtype=np.int64), crashes)
    low, high = interval[rollback_job], steps[rollback_job]
    rollback_after = low + np.floor(rng.random(len(rollback_job)) * (high - low)).astype(np.int64)
    order = np.lexsort((rollback_after, rollback_job))
    rollback_job, rollback_after = rollback_job[order], rollback_after[order]
    distinct = np.ones(len(order), dtype=np.bool_)
    distinct[1:] = (np.diff(rollback_job) != 0) | (np.diff(rollback_after) != 0)
    return _Scenarios(
        outcome=outcome.astype(np.int64),
        stop_after=stop_after.astype(np.int64),
        checkpoint_interval=interval.astype(np.int64),
        pause_after=pause_after.astype(np.int64),
        pause_seconds=pause_seconds,
        rollback_job=rollback_job[distinct],
        rollback_after=rollback_after[distinct],
    )


def random_scenario(rng: np.random.Generator, steps: int) -> Scenario:
    """Draw what happens to a run of ``steps`` steps: about 80% succeed, 9% fail, 7% are
    cancelled and 4% are still running; 6% are paused once; 10% have worker crashes."""
    return _draw_scenarios(rng, np.array([steps], dtype=np.int64)).scenario(0)


# --- laying jobs out as units -------------------------------------------------------------

# A job is a sequence of units: its prelude, one unit per attempted step, its epilogue.
_PRELUDE, _FULL, _CUT, _EPILOGUE = 0, 1, 2, 3
# How a cut (unfinished) step ends; _FAIL.. equal the outcome codes (_OUTCOMES).
_CRASH, _FAIL, _CANCEL, _RUNNING = 0, 1, 2, 3


@dataclass(frozen=True)
class _Units:
    """All units of all jobs, in job order then time order."""

    job: IntArray
    kind: IntArray
    step: IntArray  # the step attempted (full and cut units)
    cut: IntArray  # how a cut unit ends (_CRASH...), else -1
    rollback_to: IntArray  # for a crash: the checkpoint step training returns to, else -1
    job_first: IntArray  # per job: index of its first unit
    job_count: IntArray  # per job: number of units


def _within(counts: IntArray) -> IntArray:
    """0, 1, … within each of consecutive groups of the given sizes."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


@dataclass(frozen=True)
class _Ranges:
    """Runs of consecutive training steps, in job order: each job's first run from
    step 1, then one more after each crash, from the checkpoint it returned to."""

    job: IntArray
    start: IntArray  # first step of the run
    n_full: IntArray  # steps completed in the run (the last is start + n_full - 1)
    cut: IntArray  # how the step after the run ends: _CRASH, _FAIL, ... or -1 (it does not)
    crash_to: IntArray  # after a crash: the checkpoint step returned to, else -1


def _ranges(steps: IntArray, scen: _Scenarios) -> _Ranges:
    """The runs of steps of every job, given its outcome, stop and crashes (Scenario)."""
    n = len(steps)
    succeeded = scen.outcome == 0
    interval = np.maximum(scen.checkpoint_interval, 1)
    stop = np.where(scen.stop_after < 0, steps // 2, scen.stop_after)
    last = np.where(succeeded, steps, np.clip(stop, 0, np.maximum(steps - 1, 0)))

    # A crash needs a checkpoint to return to and happens before the job's last step.
    keep = (scen.rollback_after >= interval[scen.rollback_job]) & (
        scen.rollback_after < last[scen.rollback_job]
    )
    crash_job, crash_after = scen.rollback_job[keep], scen.rollback_after[keep]
    crash_to = crash_after // interval[crash_job] * interval[crash_job]
    crashes = np.bincount(crash_job, minlength=n).astype(np.int64)

    runs = crashes + 1
    job = np.repeat(np.arange(n, dtype=np.int64), runs)
    ends_in_crash = (np.cumsum(runs) - runs)[crash_job] + _within(crashes)  # run before a crash
    start = np.ones(len(job), dtype=np.int64)
    start[ends_in_crash + 1] = crash_to + 1
    end = last[job]
    end[ends_in_crash] = crash_after
    cut = np.where(succeeded[job], -1, scen.outcome[job])  # the last run: stops, or does not
    cut[ends_in_crash] = _CRASH
    run_crash_to = np.full(len(job), -1, dtype=np.int64)
    run_crash_to[ends_in_crash] = crash_to
    return _Ranges(job, start, np.maximum(end - start + 1, 0), cut, run_crash_to)


def _plan_units(ranges: _Ranges, succeeded: BoolArray) -> _Units:
    """Each job's units in order: prelude, the attempted steps of its runs, epilogue."""
    n = len(succeeded)
    has_cut = ranges.cut >= 0
    run_units = ranges.n_full + has_cut
    job_count = 1 + np.bincount(ranges.job, weights=run_units, minlength=n).astype(np.int64)
    job_count += succeeded  # the epilogue
    job_first = np.cumsum(job_count) - job_count

    units_before = np.cumsum(run_units) - run_units  # over all jobs
    first_run = np.cumsum(np.bincount(ranges.job, minlength=n)) - np.bincount(
        ranges.job, minlength=n
    )
    units_before -= units_before[first_run][ranges.job]  # within the job
    run_first_unit = job_first[ranges.job] + 1 + units_before

    total = int(job_count.sum())
    kind = np.full(total, _PRELUDE, dtype=np.int64)
    step = np.zeros(total, dtype=np.int64)
    cut = np.full(total, -1, dtype=np.int64)
    rollback_to = np.full(total, -1, dtype=np.int64)
    offset = _within(run_units)
    run = np.repeat(np.arange(len(ranges.job)), run_units)
    at = run_first_unit[run] + offset
    kind[at] = np.where(offset == ranges.n_full[run], _CUT, _FULL)
    step[at] = ranges.start[run] + offset
    cut_runs = np.flatnonzero(has_cut)
    cut_unit = run_first_unit[cut_runs] + ranges.n_full[cut_runs]
    cut[cut_unit] = ranges.cut[cut_runs]
    rollback_to[cut_unit] = ranges.crash_to[cut_runs]
    kind[(job_first + job_count - 1)[succeeded]] = _EPILOGUE
    job = np.repeat(np.arange(n, dtype=np.int64), job_count)
    return _Units(job, kind, step, cut, rollback_to, job_first, job_count)


# --- times --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """One event kind emitted by some units, at an offset (ms) from the unit's start."""

    event: str
    mask: BoolArray
    offset: IntArray
    phase: str | None = None
    step: IntArray | None = None
    tokens: tuple[IntArray, IntArray, IntArray] | None = None
    message: str | None = None


_PHASES: Final = (
    "validating_files",
    "safety_check",
    "queued",
    "setup",
    "rollout",
    "grading",
    "update",
    "validation",
    "safety_eval",
)
_MESSAGES: Final = {
    "job_created": "Fine-tuning job created",
    "paused": "Job paused by user",
    "resumed": "Job resumed",
    "rollback": "Training worker crashed; resumed from the latest checkpoint",
    "failed": "Job failed: training worker error",
    "cancelled": "Job cancelled by user",
    "succeeded": "The job has successfully completed",
}


def _ms(seconds: FloatArray) -> IntArray:
    """Seconds → whole milliseconds, at least 1 (every phase takes some time)."""
    return np.maximum(np.round(seconds * 1000.0), 1).astype(np.int64)


@dataclass(frozen=True)
class _Prelude:
    """Offsets (ms from job creation) of the phases before training; one entry per unit."""

    validating_files: tuple[IntArray, IntArray]
    safety_check: tuple[IntArray, IntArray]
    queued: tuple[IntArray, IntArray]
    setup: tuple[IntArray, IntArray]
    span: IntArray  # job creation → first step


def _prelude(rng: np.random.Generator, jobs: _Jobs, units: _Units, model: TimeModel) -> _Prelude:
    """File validation, safety check, queue, setup: back to back, a few seconds apart."""
    n_units = len(units.job)
    n_train = jobs.n_train_examples.astype(np.float64)[units.job]
    gaps = _ms(rng.uniform(1.0, 5.0, size=(4, n_units)))
    noise = rng.lognormal(0.0, 0.3, size=(2, n_units))
    validating = _ms((model.validating_files[0] + model.validating_files[1] * n_train) * noise[0])
    checking = _ms((model.safety_check[0] + model.safety_check[1] * n_train) * noise[1])
    queued = _ms(model.queued[0] * rng.lognormal(0.0, model.queued[1], size=n_units))
    setup = _ms(model.setup * rng.lognormal(0.0, 0.2, size=n_units))

    vf_start = gaps[0]
    vf_end = vf_start + validating
    sc_start = vf_end + gaps[1]
    sc_end = sc_start + checking
    q_start = sc_end + gaps[2]
    q_end = q_start + queued  # setup starts as soon as compute is assigned
    setup_end = q_end + setup
    return _Prelude(
        validating_files=(vf_start, vf_end),
        safety_check=(sc_start, sc_end),
        queued=(q_start, q_end),
        setup=(q_end, setup_end),
        span=setup_end + gaps[3],
    )


@dataclass(frozen=True)
class _Steps:
    """Offsets (ms from the unit's start) of one attempted step's events; per unit."""

    rollout_end: IntArray
    grading_start: IntArray
    grading_end: IntArray  # also the update's start
    update_end: IntArray  # also step_completed
    checkpoint: BoolArray
    saved: IntArray
    evaluates: BoolArray
    validation: tuple[IntArray, IntArray]
    pause: BoolArray
    paused: IntArray
    resumed: IntArray
    cut_at: IntArray  # when a cut unit stops (during its rollout)
    grading_started: BoolArray  # a cut unit's grading had begun
    span: IntArray  # unit start → next unit start
    samples: FloatArray  # samples graded per step


def _steps(
    rng: np.random.Generator, jobs: _Jobs, scen: _Scenarios, units: _Units, model: TimeModel
) -> _Steps:
    """The time model (``TimeModel``) applied to every attempted step of every job."""
    n_units = len(units.job)
    job, step = units.job, units.step
    full, cut = units.kind == _FULL, units.kind == _CUT
    last_step = jobs.steps[job]

    def noise(sigma: float) -> FloatArray:
        return rng.lognormal(0.0, sigma, size=n_units)

    medians = _phase_medians(
        model,
        batch_size=jobs.batch_size.astype(np.float64)[job],
        compute_multiplier=jobs.compute_multiplier[job],
        effort=np.array([model.effort_factor[e] for e in _EFFORTS])[
            _codes(jobs.reasoning_effort, _EFFORTS)
        ][job],
        grader=_grader_profile(jobs, model)[0][job],
        validation_samples=(jobs.eval_samples * jobs.n_valid_examples).astype(np.float64)[job],
    )
    speed = rng.lognormal(0.0, model.job_noise, size=len(jobs))[job]
    rollout = np.maximum(_ms(medians["rollout"] * speed * noise(model.step_noise)), 2)
    grading = _ms(medians["grading"] * speed * noise(model.step_noise))
    update = _ms(medians["update"] * speed * noise(model.step_noise))
    validation = _ms(medians["validation"] * speed * noise(model.step_noise))

    # Grading starts while the rollout still runs (R1: the overlap counts once) and
    # trails it by what is left to grade.
    low, high = model.grading_start
    grading_start = _part(rollout, rng.uniform(low, high, size=n_units))
    tail = np.maximum(grading - (rollout - grading_start), np.round(model.grading_tail * grading))
    grading_end = rollout + np.maximum(tail.astype(np.int64), 1)
    update_end = grading_end + update

    checkpoint = full & ((step % scen.checkpoint_interval[job] == 0) | (step == last_step))
    saved = update_end + checkpoint * _ms(model.checkpoint * noise(0.3))
    evaluates = full & ((step % jobs.eval_interval[job] == 0) | (step == last_step))
    validation_start = saved + evaluates * 1000
    validation_end = validation_start + evaluates * validation

    # A pause after the last step would pause nothing (Scenario's docstring): dropped.
    pause_after = np.where(scen.pause_after < jobs.steps, scen.pause_after, -1)
    pause = _first_full_unit_at(units, pause_after)
    paused = validation_end + pause * _ms(rng.uniform(5.0, 60.0, size=n_units))
    resumed = paused + pause * _ms(scen.pause_seconds[job])
    restarted = resumed + pause * _ms(model.resume * noise(0.3))

    # A cut unit stops during its rollout: a crash, a failure, a cancel or the log's end.
    cut_at = _part(rollout, rng.uniform(0.1, 0.95, size=n_units))
    recovery = _ms(model.recovery * noise(0.5))
    span = np.select(
        [full, cut & (units.cut == _CRASH)],
        [restarted + _ms(model.step_gap * noise(0.5)), cut_at + recovery],
        default=0,
    )
    return _Steps(
        rollout_end=rollout,
        grading_start=grading_start,
        grading_end=grading_end,
        update_end=update_end,
        checkpoint=checkpoint,
        saved=saved,
        evaluates=evaluates,
        validation=(validation_start, validation_end),
        pause=pause,
        paused=paused,
        resumed=resumed,
        cut_at=cut_at,
        grading_started=cut & (grading_start < cut_at),
        span=span,
        samples=medians["samples_per_step"],
    )


def _part(duration: IntArray, fraction: FloatArray) -> IntArray:
    """A fraction of a duration (ms), at least 1 ms from either end."""
    return np.clip(np.round(duration * fraction).astype(np.int64), 1, duration - 1)


def _lay_out(
    rng: np.random.Generator,
    jobs: _Jobs,
    scen: _Scenarios,
    units: _Units,
    model: TimeModel,
) -> tuple[list[_Slot], IntArray]:
    """Every event kind as a slot over units, and each unit's start (ms from job creation)."""
    kind, job = units.kind, units.job
    prelude, full, cut, epilogue = (kind == k for k in (_PRELUDE, _FULL, _CUT, _EPILOGUE))
    before = _prelude(rng, jobs, units, model)
    steps = _steps(rng, jobs, scen, units, model)
    safety_start = _ms(rng.uniform(1.0, 5.0, size=len(job)))
    safety_end = safety_start + _ms(model.safety_eval * rng.lognormal(0.0, 0.2, size=len(job)))
    done = safety_end + _ms(rng.uniform(1.0, 5.0, size=len(job)))

    span = np.where(prelude, before.span, steps.span)
    passed = np.cumsum(span) - span
    start = passed - passed[units.job_first[job]]

    _, reasoning, model_grader = _grader_profile(jobs, model)
    uses_model = model_grader[job]
    valid_samples = (jobs.eval_samples * jobs.n_valid_examples).astype(np.float64)[job]
    train_tokens = _grader_tokens(rng, steps.samples, reasoning[job], full & uses_model)
    evaluates = steps.evaluates
    valid_tokens = _grader_tokens(rng, valid_samples, reasoning[job], evaluates & uses_model)

    is_cut = {code: cut & (units.cut == code) for code in (_CRASH, _FAIL, _CANCEL)}
    ends_phases = is_cut[_CRASH] | is_cut[_CANCEL]  # a failure leaves them open (event-log.md)
    zero = np.zeros(len(job), dtype=np.int64)
    val_start, val_end = steps.validation

    def phase(name: str, mask: BoolArray, begin: IntArray, end: IntArray) -> list[_Slot]:
        return [
            _Slot("phase_start", mask, begin, phase=name),
            _Slot("phase_end", mask, end, phase=name),
        ]

    slots = [
        _Slot("job_created", prelude, zero, message=_MESSAGES["job_created"]),
        *phase("validating_files", prelude, *before.validating_files),
        *phase("safety_check", prelude, *before.safety_check),
        *phase("queued", prelude, *before.queued),
        *phase("setup", prelude, *before.setup),
        _Slot("phase_start", full | cut, zero, phase="rollout"),
        _Slot("phase_start", full | steps.grading_started, steps.grading_start, phase="grading"),
        _Slot("phase_end", full, steps.rollout_end, phase="rollout"),
        _Slot("phase_end", ends_phases, steps.cut_at, phase="rollout"),
        _Slot("phase_end", ends_phases & steps.grading_started, steps.cut_at, phase="grading"),
        _Slot("grader_usage", full & uses_model, steps.grading_end, tokens=train_tokens),
        _Slot("phase_end", full, steps.grading_end, phase="grading"),
        *phase("update", full, steps.grading_end, steps.update_end),
        _Slot("step_completed", full, steps.update_end, step=units.step),
        _Slot("checkpoint_saved", steps.checkpoint, steps.saved, step=units.step),
        _Slot("phase_start", evaluates, val_start, phase="validation"),
        _Slot("grader_usage", evaluates & uses_model, val_end, tokens=valid_tokens),
        _Slot("phase_end", evaluates, val_end, phase="validation"),
        _Slot("paused", steps.pause, steps.paused, message=_MESSAGES["paused"]),
        _Slot("resumed", steps.pause, steps.resumed, message=_MESSAGES["resumed"]),
        _Slot(
            "rollback",
            is_cut[_CRASH],
            steps.cut_at,
            step=units.rollback_to,
            message=_MESSAGES["rollback"],
        ),
        _Slot("failed", is_cut[_FAIL], steps.cut_at, message=_MESSAGES["failed"]),
        _Slot("cancelled", is_cut[_CANCEL], steps.cut_at, message=_MESSAGES["cancelled"]),
        *phase("safety_eval", epilogue, safety_start, safety_end),
        _Slot("succeeded", epilogue, done, message=_MESSAGES["succeeded"]),
    ]
    return slots, start


def _codes(values: npt.NDArray[np.object_], names: Sequence[str]) -> IntArray:
    """Positions of ``values`` in ``names`` (vectorized lookup of a small vocabulary)."""
    codes = np.full(len(values), -1, dtype=np.int64)
    for i, name in enumerate(names):
        codes[values == name] = i
    return codes


def _grader_profile(jobs: _Jobs, model: TimeModel) -> tuple[FloatArray, BoolArray, BoolArray]:
    """Per job: grading seconds per sample, reasoning model grader, model grader."""
    key = (
        pd.Series(jobs.grader_type).astype("string")
        + "|"
        + pd.Series(jobs.grader_model).astype("string").fillna("")
    )
    codes, uniques = pd.factorize(key)
    seconds, reasoning, calls_model = [], [], []
    for unique in uniques:  # one per distinct grader, not per job
        grader_type, _, grader_model = str(unique).partition("|")
        family = _DATE_SUFFIX.sub("", grader_model)
        seconds.append(model.grader_seconds_per_sample(grader_type, grader_model or None))
        reasoning.append(bool(_REASONING_MODEL.match(family)))
        calls_model.append(grader_type in MODEL_GRADER_TYPES and grader_model != "")
    return (
        np.array(seconds, dtype=np.float64)[codes],
        np.array(reasoning, dtype=np.bool_)[codes],
        np.array(calls_model, dtype=np.bool_)[codes],
    )


def _grader_tokens(
    rng: np.random.Generator, samples: FloatArray, reasoning: BoolArray, rows: BoolArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Input (including cached), cached input and output tokens of grading ``samples``."""
    noise = rng.lognormal(0.0, _TOKEN_NOISE, size=(2, len(samples)))
    inputs = np.round(samples * _GRADER_INPUT_TOKENS * noise[0]).astype(np.int64)
    cached = np.floor(inputs * rng.uniform(*_CACHED_SHARE, size=len(samples))).astype(np.int64)
    per_sample = np.where(reasoning, _REASONING_OUTPUT_TOKENS, _OTHER_OUTPUT_TOKENS)
    outputs = np.round(samples * per_sample * noise[1]).astype(np.int64)
    return inputs * rows, cached * rows, outputs * rows


def _first_full_unit_at(units: _Units, after: IntArray) -> BoolArray:
    """The unit that first completes step ``after[job]`` (``-1``: none)."""
    hits = np.flatnonzero((units.kind == _FULL) & (units.step == after[units.job]))
    _, first = np.unique(units.job[hits], return_index=True)
    found = np.zeros(len(units.job), dtype=np.bool_)
    found[hits[first]] = True
    return found


# --- the frame ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    """Events in output order, as numpy columns (``-1``: missing).

    The int64 columns become the output's buffers (``_frame`` takes them over), so
    they are allocated once at their final size; codes are small integers.
    """

    job: Int32Array
    ts: IntArray  # milliseconds from the job's creation
    event: CodeArray
    phase: CodeArray
    step: IntArray
    input_tokens: IntArray
    cached_input_tokens: IntArray
    output_tokens: IntArray
    message: CodeArray
    seq: Int32Array  # 0, 1, … within each job


def _place(units: _Units, slots: Sequence[_Slot], start: IntArray) -> _Placed:
    """Put every slot's events at their final rows: units in order, slots in order within."""
    per_unit = np.zeros(len(units.job), dtype=np.int64)
    for slot in slots:
        per_unit += slot.mask
    unit_first = np.cumsum(per_unit) - per_unit
    total = int(per_unit.sum())

    def column(dtype: type[np.integer[Any]]) -> Any:
        return np.full(total, -1, dtype=dtype)

    job: Int32Array = column(np.int32)
    ts, step = column(np.int64), column(np.int64)
    event, phase, message = column(np.int8), column(np.int8), column(np.int8)
    tokens: list[IntArray] = [column(np.int64) for _ in range(3)]
    rank = np.zeros(len(units.job), dtype=np.int64)
    messages = list(_MESSAGES.values())
    for slot in slots:
        where = np.flatnonzero(slot.mask)
        rows = unit_first[where] + rank[where]
        rank += slot.mask
        job[rows] = units.job[where]
        ts[rows] = start[where] + slot.offset[where]
        event[rows] = EVENTS.index(slot.event)
        if slot.phase is not None:
            phase[rows] = _PHASES.index(slot.phase)
        if slot.step is not None:
            step[rows] = slot.step[where]
        if slot.tokens is not None:
            for column_values, values in zip(tokens, slot.tokens, strict=True):
                column_values[rows] = values[where]
        if slot.message is not None:
            message[rows] = messages.index(slot.message)
    job_first_event = unit_first[units.job_first]
    seq = (np.arange(total, dtype=np.int64) - job_first_event[job]).astype(np.int32)
    return _Placed(
        job=job,
        ts=ts,
        event=event,
        phase=phase,
        step=step,
        input_tokens=tokens[0],
        cached_input_tokens=tokens[1],
        output_tokens=tokens[2],
        message=message,
        seq=seq,
    )


def _job_ids(rng: np.random.Generator, n: int) -> npt.NDArray[np.str_]:
    """OpenAI-style ids: ``ftjob-`` and 24 letters or digits."""
    alphabet = np.frombuffer(
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8
    )
    chars = alphabet[rng.integers(0, len(alphabet), size=(n, 24))]
    suffixes = np.ascontiguousarray(chars).view("S24").ravel().astype(np.str_)
    return np.char.add("ftjob-", suffixes)


def _strings(values: pa.Array) -> pd.Series:
    """A pandas ``string`` column over Arrow strings (pandas stores them as large_string)."""
    if not pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(values), copy=False)


def _take(
    vocabulary: Sequence[str | None] | pa.Array, codes: npt.NDArray[np.signedinteger[Any]]
) -> pd.Series:
    """Strings ``vocabulary[code]``, missing where ``code < 0``."""
    if not isinstance(vocabulary, pa.Array):
        vocabulary = pa.array(vocabulary, pa.large_string())
    return _strings(vocabulary.take(pa.array(codes, mask=codes < 0)))


def _ints(values: IntArray) -> pd.Series:
    """A nullable ``Int64`` column over ``values`` (taken over, not copied); ``-1`` is missing."""
    missing = values < 0
    values[missing] = 0
    return pd.Series(pd.arrays.IntegerArray(values, missing), copy=False)


def _sparse(values: npt.NDArray[Any], rows: IntArray, total: int) -> pd.Series:
    """A nullable column holding ``values`` at ``rows`` and missing elsewhere."""
    data = np.zeros(total, dtype=values.dtype)
    data[rows] = values
    missing = np.ones(total, dtype=np.bool_)
    missing[rows] = False
    if values.dtype == np.bool_:
        return pd.Series(pd.arrays.BooleanArray(data, missing), copy=False)
    if values.dtype.kind == "f":
        return pd.Series(pd.arrays.FloatingArray(data, missing), copy=False)
    return pd.Series(pd.arrays.IntegerArray(data, missing), copy=False)


def _frame(placed: _Placed, jobs: _Jobs, job_ids: pa.Array, t0_ns: IntArray) -> pd.DataFrame:
    """The canonical event frame (schema.py's columns and dtypes).

    Job settings appear on ``job_created`` only (event-log.md), and the grader model
    also on ``grader_usage``. The int64 columns of ``placed`` are reused, not copied.
    """
    job = placed.job
    total = len(job)
    created = np.flatnonzero(placed.event == EVENTS.index("job_created"))  # one per job, in order
    on_created = np.full(total, -1, dtype=np.int32)
    on_created[created] = np.arange(len(created))
    on_usage = np.where(placed.event == EVENTS.index("grader_usage"), job, on_created)
    job_ids = pc.cast(job_ids, pa.large_string())
    event_ids = pc.binary_join_element_wise(
        pc.utf8_replace_slice(job_ids, 0, 5, "ftevent").take(pa.array(job)),
        pc.cast(pa.array(placed.seq), pa.large_string()),
        pa.scalar("-", pa.large_string()),
    )

    def job_strings(values: npt.NDArray[np.object_], rows: Int32Array) -> pd.Series:
        return _take(pa.array(values, pa.large_string()), rows)

    ts = placed.ts  # taken over: milliseconds from creation → UTC nanoseconds, in place
    ts *= _MS
    ts += t0_ns[job]
    utc = pd.Series(ts.view("datetime64[ns]"), copy=False).dt.tz_localize("UTC")
    columns: dict[str, pd.Series] = {
        "job_id": _take(job_ids, job),
        "ts": utc,
        "event": _take(EVENTS, placed.event),
        "event_id": _strings(event_ids),
        "phase": _take(_PHASES, placed.phase),
        "step": _ints(placed.step),
        "team": job_strings(jobs.team, on_created),
        "project": job_strings(jobs.project, on_created),
        "model": job_strings(jobs.model, on_created),
        "data_sharing": _sparse(jobs.data_sharing, created, total),
        "grader_model": job_strings(jobs.grader_model, on_usage),
        "grader_type": job_strings(jobs.grader_type, on_created),
        "input_tokens": _ints(placed.input_tokens),
        "cached_input_tokens": _ints(placed.cached_input_tokens),
        "output_tokens": _ints(placed.output_tokens),
        "n_train_examples": _sparse(jobs.n_train_examples, created, total),
        "n_valid_examples": _sparse(jobs.n_valid_examples, created, total),
        "batch_size": _sparse(jobs.batch_size, created, total),
        "n_epochs": _sparse(jobs.n_epochs, created, total),
        "compute_multiplier": _sparse(jobs.compute_multiplier, created, total),
        "eval_interval": _sparse(jobs.eval_interval, created, total),
        "eval_samples": _sparse(jobs.eval_samples, created, total),
        "reasoning_effort": job_strings(jobs.reasoning_effort, on_created),
        "message": _take(list(_MESSAGES.values()), placed.message),
    }
    return pd.DataFrame({name: columns[name] for name in EVENT_COLUMNS}, copy=False)


def _utc_ns(value: datetime | str) -> int:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"{value!r}: give a time zone (e.g. 2025-05-01T00:00:00Z)")
    return int(stamp.tz_convert("UTC").as_unit("ns").value)


def simulate_jobs(
    settings: Sequence[RunSettings] | None = None,
    *,
    n_jobs: int | None = None,
    start: datetime | str = "2025-05-01T00:00:00Z",
    end: datetime | str = "2025-08-01T00:00:00Z",
    seed: int = 0,
    scenarios: Scenario | Sequence[Scenario] | None = None,
    time_model: TimeModel | None = None,
    job_ids: Sequence[str] | None = None,
    created_at: Sequence[datetime | str] | None = None,
    teams: Mapping[str, Sequence[str | None]] = DEFAULT_TEAMS,
) -> pd.DataFrame:
    """Simulate RFT jobs; one frame of canonical events for all of them.

    ``settings`` gives each job's settings (default: ``n_jobs`` jobs, 100 unless
    given, drawn like ``random_settings`` from ``teams``). ``scenarios`` is one
    scenario for every job, one per job, or ``None`` to draw a realistic mix
    (``random_scenario``). Jobs are created uniformly in ``[start, end)``, in
    order, unless ``created_at`` gives each job's creation time; ``job_ids``
    replaces the random ``ftjob-…`` ids. The same arguments give the same frame.

    The frame has the columns of ``EVENT_COLUMNS``, rows grouped by job (in
    creation order) and in time order within a job; ``ts`` is
    ``datetime64[ns, UTC]``, integers ``Int64``, ``data_sharing`` ``boolean``,
    ``compute_multiplier`` ``Float64``, text ``string``.
    """
    model = time_model or TimeModel()
    rng = np.random.default_rng(seed)
    if settings is None:
        jobs = _draw_jobs(rng, 100 if n_jobs is None else n_jobs, teams)
    else:
        if n_jobs is not None and n_jobs != len(settings):
            raise ValueError(f"n_jobs={n_jobs} but {len(settings)} settings were given")
        jobs = _Jobs.of(settings)
    n = len(jobs)
    steps = jobs.steps
    if scenarios is None:
        scen = _draw_scenarios(rng, steps)
    elif isinstance(scenarios, Scenario):
        scen = _Scenarios.of([scenarios] * n)
    else:
        if len(scenarios) != n:
            raise ValueError(f"{len(scenarios)} scenarios for {n} jobs")
        scen = _Scenarios.of(scenarios)

    first_ns, last_ns = _utc_ns(start), _utc_ns(end)
    if created_at is not None:
        if len(created_at) != n:
            raise ValueError(f"{len(created_at)} creation times for {n} jobs")
        t0 = np.array([_utc_ns(t) for t in created_at], dtype=np.int64)
    else:
        if last_ns <= first_ns:
            raise ValueError("end must be after start")
        t0 = np.sort(rng.integers(first_ns // _MS, last_ns // _MS, size=n)) * _MS
    ids = np.array(job_ids, dtype=np.str_) if job_ids is not None else _job_ids(rng, n)
    if len(ids) != n or len(np.unique(ids)) != n:
        raise ValueError("job_ids: give one distinct id per job")

    units = _plan_units(_ranges(steps, scen), scen.outcome == 0)
    slots, unit_start = _lay_out(rng, jobs, scen, units, model)
    placed = _place(units, slots, unit_start)
    del units, slots, unit_start  # per-unit arrays: free them before the frame is built
    return _frame(placed, jobs, pa.array(ids, pa.string()), t0.astype(np.int64))


# --- writing ------------------------------------------------------------------------------


def write_events(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write an event frame as ``.jsonl``, ``.jsonl.gz``, ``.csv``, ``.csv.gz`` or ``.parquet``.

    JSON Lines and CSV carry ``ts`` as ISO 8601 UTC with ``Z`` (milliseconds when
    the data has them); a missing value is left out of a JSON object and empty in
    CSV. Parquet stores ``ts`` as ``timestamp[us, tz=UTC]``. ``ts`` may be
    tz-aware datetimes or int64 UTC nanoseconds (the reader's frames). Gzip output
    is byte-for-byte reproducible. Returns the path.
    """
    target = Path(path)
    name = target.name.lower()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if "ts" in table.column_names:
        table = table.set_column(
            table.schema.get_field_index("ts"), "ts", _utc_timestamps(table["ts"])
        )
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(table, target)
    elif name.endswith((".jsonl", ".jsonl.gz")):
        _write_bytes(target, _jsonl_chunks(table))
    elif name.endswith((".csv", ".csv.gz")):
        _write_csv(target, table)
    else:
        raise ValueError(f"{target}: use .jsonl, .jsonl.gz, .csv, .csv.gz or .parquet")
    return target


def _utc_timestamps(ts: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps as ``timestamp[us, tz=UTC]`` (int64 input is UTC nanoseconds)."""
    if pa.types.is_integer(ts.type):
        ts = pc.cast(ts, pa.timestamp("ns", tz="UTC"))
    elif not pa.types.is_timestamp(ts.type) or ts.type.tz is None:
        raise ValueError("ts: expected tz-aware timestamps or int64 UTC nanoseconds")
    return pc.cast(ts, pa.timestamp("us", tz="UTC"))


def _iso(ts: pa.ChunkedArray) -> pa.ChunkedArray:
    """ISO 8601 with ``Z``, at the coarsest of seconds / ms / µs that loses nothing."""
    micros = pc.fill_null(pc.cast(ts, pa.int64()), 0).to_numpy()
    for unit, per in (("s", 1_000_000), ("ms", 1_000)):
        if not (micros % per).any():
            ts = pc.cast(ts, pa.timestamp(unit, tz="UTC"))
            break
    text = pc.strftime(ts, format="%Y-%m-%dT%H:%M:%S", locale="C")
    return pc.binary_join_element_wise(text, "Z", "")


_JSON_ESCAPES: Final = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def _json_values(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """Each value as JSON text (null stays null)."""
    if pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())  # one chunk is far below 2 GiB
    kind = column.type
    if name == "ts":
        return pc.binary_join_element_wise('"', _iso(column), '"', "")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = column
        for raw, escaped in _JSON_ESCAPES:
            text = pc.replace_substring(text, raw, escaped)
        if pc.any(pc.match_substring_regex(text, r"[\x00-\x1f]")).as_py():
            import json

            text = pa.chunked_array(
                [pa.array([None if v is None else json.dumps(v)[1:-1] for v in column.to_pylist()])]
            )
        return pc.binary_join_element_wise('"', text, '"', "")
    if pa.types.is_floating(kind):
        column = pc.if_else(pc.is_finite(column), column, pa.scalar(None, kind))
    return pc.cast(column, pa.string())


def _jsonl_chunks(table: pa.Table, rows: int = 500_000) -> list[bytes]:
    """JSON Lines of ``table`` in chunks, built column-wise with Arrow compute."""
    chunks = []
    for offset in range(0, max(table.num_rows, 1), rows):
        part = table.slice(offset, rows)
        if part.num_rows == 0:
            break
        fields = [
            pc.binary_join_element_wise(f'"{name}":', _json_values(part[name], name), "")
            for name in part.column_names
        ]
        body = pc.binary_join_element_wise(*fields, ",", null_handling="skip")
        lines = pc.binary_join_element_wise("{", body, "}\n", "")
        chunks.append(_joined_bytes(pa.chunked_array(lines).combine_chunks()))
    return chunks


def _joined_bytes(strings: pa.Array) -> bytes:
    """All values of a string array back to back (no separator)."""
    strings = pc.cast(strings, pa.large_string())
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)[
        strings.offset : strings.offset + len(strings) + 1
    ]
    data = strings.buffers()[2]
    if data is None:
        return b""
    joined: bytes = data.slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes()
    return joined


def _write_csv(target: Path, table: pa.Table) -> None:
    import pyarrow.csv as pacsv

    if "ts" in table.column_names:
        table = table.set_column(table.schema.get_field_index("ts"), "ts", _iso(table["ts"]))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    _write_bytes(target, [sink.getvalue().to_pybytes()])


def _write_bytes(target: Path, chunks: Sequence[bytes]) -> None:
    if target.name.lower().endswith(".gz"):
        with (
            target.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
        ):
            for chunk in chunks:
                out.write(chunk)
    else:
        with target.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
