"""Estimates: what a run will cost before launch, as P10 / P50 / P90 (estimator.md).

``estimate(plan, calibration)`` draws many possible runs of the plan (Monte
Carlo) from the calibration's fitted model (``rftcost.calibration``):

1. counts (``Plan.steps``, ``Plan.validation_runs``): steps = ceil(n_train × n_epochs /
   batch_size), validation runs = ceil(steps / eval_interval), every ``eval_interval``
   steps and after the last (none without validation data);
2. per draw, a job-level residual vector is resampled from the history (so a run
   that reasons longer is slower *and* uses more grader tokens), and each fit's
   coefficients are drawn from their uncertainty; seconds per step and per
   validation run, grader tokens per step and per run follow;
3. each draw is **billed with the policy's own arithmetic**: its billable time in
   integer nanoseconds → whole seconds → hours with the policy's decimals and
   modes → cents at the model's hourly rate (cap, data-sharing discount), grader
   tokens × the price table's rates in force at ``at`` → cents. Amounts are
   integer cents throughout (``rftcost.money.divide_round``), never floats;
4. P10 / P50 / P90 are order statistics of those integer amounts (each is the
   amount of an actual draw), shown as ``Decimal``. Each quantile's hours are the
   policy's rounded hours of the draw at that quantile, so the P50 compute amount
   is exactly the P50 hours × the hourly rate.

The same random numbers are used for every variant of a plan (what-if tables,
budget advice), so that a change in a setting, not noise, moves the figures.

``project_running`` does the same for a job in progress: what it has been
charged, plus its unbilled work, plus the steps and validation runs left, with
the job's own pace so far pulling the per-step time towards what it has shown.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Concatenate, ParamSpec

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from rftcost._callable import make_module_callable
from rftcost.calibration import (
    PRIOR,
    TRAIN_PHASES,
    Calibration,
    grader_key,
    is_reasoning_grader,
)
from rftcost.errors import PlanError, PriceNotFoundError
from rftcost.money import cents_to_decimal, format_amount
from rftcost.plan import AUTO_DEFAULTS, GRADER_TYPE_NAMES, Plan, plan_from_settings
from rftcost.policy import Policy, load_policy
from rftcost.rules import (
    cap_cents,
    capped_amounts,
    compute_cents,
    discount_cents,
    grader_cents,
    hour_units,
    hourly_rate_units,
    rate_places,
    shrink_shares,
    token_pico,
    token_price_pico,
)

__all__ = [
    "ESTIMATE_SCHEMA",
    "VARY_NAMES",
    "BudgetCheck",
    "Estimate",
    "Progress",
    "Quantiles",
    "WhatIfRow",
    "check_budget",
    "check_projected_budget",
    "estimate",
    "graded_samples",
    "parse_vary",
    "project_running",
    "what_if",
]

ESTIMATE_SCHEMA = "rftcost.estimate/v1"
DEFAULT_DRAWS = 4000
_NS = 1_000_000_000
_MAX_FEATURES = 32
_FROZEN = ConfigDict(frozen=True, extra="forbid")
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

SAMPLES_PER_EXAMPLE = 4
"""Prior guess of rollouts sampled per training example at compute_multiplier 1 (graded samples)."""


class Quantiles(BaseModel):
    """P10 / P50 / P90 of one figure."""

    model_config = _FROZEN

    p10: Decimal
    """10th percentile."""
    p50: Decimal
    """Median."""
    p90: Decimal
    """90th percentile."""

    def strings(self, places: int | None = 2) -> dict[str, str]:
        """``{"p10": "3.10", ...}`` with exactly ``places`` decimals; ``None``: each value's
        own (hours keep the policy's ``hours_decimals``, as a bill shows them, R11)."""
        return {
            "p10": _decimal_text(self.p10, places),
            "p50": _decimal_text(self.p50, places),
            "p90": _decimal_text(self.p90, places),
        }


def _decimal_text(value: Decimal, places: int | None) -> str:
    return f"{value:f}" if places is None else f"{value:.{places}f}"


class Progress(BaseModel):
    """What a job in progress has done so far (``project_running``)."""

    model_config = _FROZEN

    job_id: str
    """The job."""
    status: str
    """Its status in the logs (running or paused)."""
    steps_done: int
    """Highest step completed."""
    validation_runs_done: int
    """Validation runs so far."""
    charged_amount: Decimal
    """Charged so far (its billing events: pauses)."""
    unbilled_hours: Decimal
    """Billable hours since the last billing event (accrued, R8)."""
    observed_seconds_per_step: float | None
    """The job's own training pace so far."""


class Estimate(BaseModel):
    """A cost estimate: counts, amounts as P10 / P50 / P90, breakdown and assumptions."""

    model_config = _FROZEN

    policy: str
    """Policy in force."""
    currency: str
    """Currency of the amounts."""
    calibrated: bool
    """``False`` when built-in priors were used (the range is then wide)."""
    plan: Plan
    """The plan estimated (every "auto" resolved)."""
    steps: int
    """Training steps."""
    validation_runs: int
    """Validation runs."""
    graded_samples: int
    """Samples the grader scores (training rollouts + validation samples)."""
    billable_hours: Quantiles
    """Billed hours (rounded as the policy rounds)."""
    compute_amount: Quantiles
    """Hours × hourly rate (cap applied)."""
    discount_amount: Quantiles
    """Data-sharing discount (positive, subtracted)."""
    grader_amount: Quantiles
    """Grader tokens at the price table's rates."""
    total_amount: Quantiles
    """compute − discount + grader."""
    breakdown: dict[str, Quantiles]
    """Billable hours per phase (rollout, grading, update, validation)."""
    grader_tokens: dict[str, Quantiles]
    """Grader input / cached / output tokens."""
    grader_amount_by_model: dict[str, Quantiles] = {}
    """Per grader model, its amount at its own model's rates (a multi grader runs each
    of its model graders on every sample); a model twice is summed."""
    assumptions: tuple[str, ...]
    """Each "auto" resolved, each prior used, each count taken from an option."""
    calibration: tuple[str, ...]
    """Fit quality of the calibration used (or that priors were used)."""
    draws: int
    """Monte Carlo draws."""
    priced_at: str
    """Time whose token prices were used (ISO 8601 UTC)."""
    price_source: str = ""
    """The token prices' layers and versions (kind 14)."""
    progress: Progress | None = None
    """For a job in progress: what it has done so far."""

    def to_dict(self) -> dict[str, Any]:
        """The ``rftcost.estimate/v1`` document (cli-and-outputs.md), with extra fields.

        ``breakdown`` maps each phase to its P50 billable hours (a string, like every
        figure); ``breakdown_hours`` has its P10 / P50 / P90. Training phases share the
        training time in proportion to their own lengths in the history (rollout and
        grading overlap, R1), so the phases add up to the billable time.
        """
        document: dict[str, Any] = {
            "schema": ESTIMATE_SCHEMA,
            "policy": self.policy,
            "currency": self.currency,
            "calibrated": self.calibrated,
            "steps": self.steps,
            "validation_runs": self.validation_runs,
            "graded_samples": self.graded_samples,
            "billable_hours": self.billable_hours.strings(None),
            "compute_amount": self.compute_amount.strings(),
            "discount_amount": self.discount_amount.strings(),
            "grader_amount": self.grader_amount.strings(),
            "total_amount": self.total_amount.strings(),
            "breakdown": {phase: q.strings(None)["p50"] for phase, q in self.breakdown.items()},
            "breakdown_hours": {phase: q.strings(None) for phase, q in self.breakdown.items()},
            "grader_tokens": {k: q.strings(0) for k, q in self.grader_tokens.items()},
            # Additive to estimate/v1 (kind 13).
            "grader_amount_by_model": {
                model: q.strings() for model, q in self.grader_amount_by_model.items()
            },
            "settings": self.plan.settings(),
            "assumptions": list(self.assumptions),
            "calibration": list(self.calibration),
            "draws": self.draws,
            "priced_at": self.priced_at,
            "price_source": self.price_source,
        }
        if self.progress is not None:
            document["progress"] = self.progress.model_dump(mode="json")
            document["progress"]["charged_amount"] = f"{self.progress.charged_amount:.2f}"
            document["progress"]["unbilled_hours"] = f"{self.progress.unbilled_hours:f}"
        return document


# --- the Monte Carlo core ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Draws:
    """Per-draw results (time as floats, amounts as integer cents)."""

    train_seconds: FloatArray
    valid_seconds: FloatArray
    hour_units: IntArray
    compute_cents: IntArray
    discount_cents: IntArray
    grader_cents: IntArray
    total_cents: IntArray
    grader_cents_by_model: tuple[tuple[str, IntArray], ...]
    input_tokens: IntArray
    cached_tokens: IntArray
    output_tokens: IntArray
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Already:
    """A job in progress: what is charged, and the unbilled work its last charge will include."""

    charged_hour_units: int = 0
    charged_compute_cents: int = 0
    charged_discount_cents: int = 0
    charged_grader_cents: int = 0
    unbilled_ns: int = 0
    unbilled_input: int = 0
    unbilled_cached: int = 0
    unbilled_output: int = 0
    shift: tuple[tuple[str, float], ...] = ()
    """Per component, a log shift from the job's own pace."""
    spread: float = 1.0
    """Scale of the residual spread left once the job's pace is known."""


def _values(plan: Plan) -> dict[str, Any]:
    return {
        "batch_size": plan.batch_size,
        "compute_multiplier": plan.compute_multiplier,
        "n_valid_examples": max(plan.n_valid_examples, 1),
        "eval_samples": plan.eval_samples,
        "reasoning_effort": plan.reasoning_effort,
        "grader": grader_key(plan.grader_type, plan.grader_model),
    }


def _residual_draws(
    calibration: Calibration, rng: np.random.Generator, draws: int
) -> dict[str, FloatArray]:
    """Job-level residuals, resampled jointly from the history (or normal for priors)."""
    names = list(calibration.components)
    shared = rng.standard_normal(draws)
    own = rng.standard_normal((draws, len(names)))
    picks = rng.integers(0, max(len(calibration.residuals), 1), size=draws)
    fill = rng.random((draws, len(names)))
    result: dict[str, FloatArray] = {}
    matrix = (
        np.array(
            [[np.nan if v is None else v for v in row] for row in calibration.residuals],
            dtype="float64",
        )
        if calibration.residuals
        else np.zeros((0, 0))
    )
    for position, name in enumerate(names):
        fit = calibration.components[name]
        if name in calibration.residual_columns and matrix.size:
            column = matrix[:, calibration.residual_columns.index(name)]
            present = column[~np.isnan(column)]
            values = column[picks]
            missing = np.isnan(values)
            if missing.any():
                chosen = (fill[:, position] * len(present)).astype(int).clip(0, len(present) - 1)
                values = np.where(missing, present[chosen], values)
            # A history that barely varies (identical jobs: every residual 0) says nothing
            # of the spread: at least the prior's, shrunk by the history's size, so that
            # P10 = P50 = P90 never claims a certainty no history of a few jobs holds.
            prior = PRIOR.components.get(name)
            floor = 0.0 if prior is None else prior.residual_sd / math.sqrt(max(fit.n_jobs, 1))
            if fit.residual_sd < floor:
                values = values + math.sqrt(floor**2 - fit.residual_sd**2) * own[:, position]
            result[name] = values
        else:
            result[name] = fit.residual_sd * (
                math.sqrt(0.5) * shared + math.sqrt(0.5) * own[:, position]
            )
    return result


class _TooLargeError(PlanError):
    """An amount beyond int64 (``_int_tokens``, ``_checked``): named with its plan by
    ``_naming_the_plan``."""


_Params = ParamSpec("_Params")


def _naming_the_plan(
    simulate: Callable[Concatenate[Plan, _Params], _Draws],
) -> Callable[Concatenate[Plan, _Params], _Draws]:
    """``simulate``, an amount too large to compute named with its plan file and counts."""

    @functools.wraps(simulate)
    def named(plan: Plan, /, *args: _Params.args, **kwargs: _Params.kwargs) -> _Draws:
        try:
            return simulate(plan, *args, **kwargs)
        except _TooLargeError as exc:
            raise PlanError(
                f"{plan.source or 'the plan'}: {exc} ({plan.steps:,} steps and"
                f" {plan.validation_runs:,} validation runs of {plan.n_valid_examples:,}"
                f" examples × eval_samples {plan.eval_samples:,})"
            ) from exc

    return named


@_naming_the_plan
def _simulate(
    plan: Plan,
    calibration: Calibration,
    policy: Policy,
    *,
    draws: int,
    seed: int,
    at: datetime,
    steps: int,
    runs: int,
    already: _Already | None = None,
) -> _Draws:
    rng = np.random.default_rng(seed)
    residuals = _residual_draws(calibration, rng, draws)
    normals = {
        name: rng.standard_normal((draws, _MAX_FEATURES + 1)) for name in calibration.components
    }
    values = _values(plan)
    already = already or _Already()
    shift = dict(already.shift)
    notes: list[str] = []

    def per_unit(name: str, settings: Mapping[str, Any] = values) -> FloatArray:
        fit = calibration.components[name]
        x, offset, extra, component_notes = fit.design(settings)
        notes.extend(component_notes)
        z = normals[name]
        coefficients = fit.coefficient_draws(z[:, : len(x)])
        log_y = (
            coefficients @ x
            + offset
            + already.spread * residuals[name]
            + shift.get(name, 0.0)
            + math.sqrt(extra) * z[:, -1]
        )
        return np.exp(log_y)

    train_seconds = steps * per_unit("train_seconds_per_step")
    valid_seconds = runs * per_unit("valid_seconds_per_run") if runs else np.zeros(draws)
    # Kind 13: every model grader of a multi grader runs on every sample, so each one's
    # tokens are those of a grader of its own model, priced at its own model's rates.
    tokens: list[tuple[str, IntArray, IntArray, IntArray]] = []
    for index, (model, effort) in enumerate(_model_graders(plan)):
        settings = (
            values
            if len(plan.grader.models) == 1
            else {**values, "grader": grader_key("score_model", model)}
        )
        input_tokens = steps * per_unit("train_input_tokens_per_step", settings)
        output_tokens = steps * per_unit("train_output_tokens_per_step", settings)
        if runs:
            input_tokens = input_tokens + runs * per_unit("valid_input_tokens_per_run", settings)
            output_tokens = output_tokens + runs * per_unit("valid_output_tokens_per_run", settings)
        output_tokens = output_tokens * _effort_factor(str(settings["grader"]), effort)
        key = str(settings["grader"])
        share = calibration.cached_share.get(key, calibration.cached_share.get("*", 0.0))
        # A job in progress: its unbilled tokens join its (first) grader's line.
        first = index == 0
        tokens.append(
            (
                model,
                _int_tokens(input_tokens) + (already.unbilled_input if first else 0),
                _int_tokens(input_tokens * share) + (already.unbilled_cached if first else 0),
                _int_tokens(output_tokens) + (already.unbilled_output if first else 0),
            )
        )
    if not tokens and (already.unbilled_input or already.unbilled_output):
        tokens.append(
            (
                "",
                np.full(draws, already.unbilled_input, dtype="int64"),
                np.full(draws, already.unbilled_cached, dtype="int64"),
                np.full(draws, already.unbilled_output, dtype="int64"),
            )
        )
    zeros = np.zeros(draws, dtype="int64")
    inputs = sum((t[1] for t in tokens), start=zeros)
    cached = sum((t[2] for t in tokens), start=zeros)
    outputs = sum((t[3] for t in tokens), start=zeros)
    ns = _int_tokens((train_seconds + valid_seconds) * _NS) + already.unbilled_ns
    hour_units, compute, discount, grader, by_model = _bill_draws(
        plan, policy, ns, tokens, at, already
    )
    notes.extend(_cap_notes(compute + grader, policy, already))
    return _Draws(
        train_seconds=train_seconds,
        valid_seconds=valid_seconds,
        hour_units=hour_units + already.charged_hour_units,
        compute_cents=compute + already.charged_compute_cents,
        discount_cents=discount + already.charged_discount_cents,
        grader_cents=grader + already.charged_grader_cents,
        grader_cents_by_model=by_model,
        total_cents=(compute - discount + grader)
        + (
            already.charged_compute_cents
            - already.charged_discount_cents
            + already.charged_grader_cents
        ),
        input_tokens=inputs,
        cached_tokens=cached,
        output_tokens=outputs,
        notes=tuple(dict.fromkeys(notes)),
    )


def _bill_draws(
    plan: Plan,
    policy: Policy,
    ns: IntArray,
    tokens: Sequence[tuple[str, IntArray, IntArray, IntArray]],
    at: datetime,
    already: _Already,
) -> tuple[IntArray, IntArray, IntArray, IntArray, tuple[tuple[str, IntArray], ...]]:
    """One charge per draw, with the billing kernel's arithmetic (R11-R13): integer units only.

    ``tokens`` holds, per grader model, its input, cached input and output tokens; each
    model's amount is rounded to the cent on its own, as a bill's grader line is (R13).
    """
    rate = policy.hourly_rate(plan.model)
    if rate is None:
        raise PlanError(
            f"no hourly training rate for base model {plan.model!r} in policy {policy.name}; "
            f"known: {', '.join(sorted(policy.hourly_rates))}"
        )
    units = hour_units(ns, policy)
    rate_units = hourly_rate_units(rate, rate_places(policy))
    compute = _checked(compute_cents, units, rate_units, policy)
    grader = np.zeros(len(ns), dtype="int64")
    by_model: list[tuple[str, IntArray]] = []
    table = policy.price_table
    for model, inputs, cached, outputs in tokens:
        entry = table.lookup(model or plan.grader_model or "", at)
        pico = token_pico(
            inputs,
            cached,
            outputs,
            token_price_pico(entry.input, table.unit_tokens),
            token_price_pico(entry.cached_input, table.unit_tokens),
            token_price_pico(entry.output, table.unit_tokens),
        )
        cents = _checked(grader_cents, pico, policy)
        by_model.append((model, cents))
        grader = grader + cents
    if policy.cap.per_job_amount is not None:
        compute, kept_grader = _capped_amounts(compute, grader, policy, already)
        by_model = _models_capped(by_model, kept_grader)
        grader = kept_grader
    discount = discount_cents(compute, grader, plan.data_sharing, policy)
    return units.astype("int64"), compute, discount, grader, tuple(by_model)


def _capped_amounts(
    compute: IntArray, grader: IntArray, policy: Policy, already: _Already
) -> tuple[IntArray, IntArray]:
    """The per-job cap as the bill applies it (rules.capped_amounts): the charge that
    reaches the cap is cut to the room left, compute first, then grader; once a job has
    reached it (Azure pauses it), a resumed job bills in full."""
    cap = cap_cents(policy)
    if cap is None:
        return compute, grader
    before = already.charged_compute_cents + already.charged_grader_cents
    kept_compute, kept_grader = capped_amounts(compute, grader, before, cap)
    return kept_compute, kept_grader


def _capped(compute: IntArray, grader: IntArray, policy: Policy, already: _Already) -> IntArray:
    """The compute cents of ``_capped_amounts``."""
    return _capped_amounts(compute, grader, policy, already)[0]


def _models_capped(
    by_model: Sequence[tuple[str, IntArray]], kept: IntArray
) -> list[tuple[str, IntArray]]:
    """Each grader model's cents cut with the draw's grader amount, as a bill cuts its
    grader lines (``rules.shrink_shares``: in proportion, by largest remainder)."""
    if len(by_model) < 2:
        return [(model, kept) for model, _cents in by_model]
    matrix = np.stack([cents for _model, cents in by_model], axis=1)
    draws, models = matrix.shape
    shared = shrink_shares(
        matrix.reshape(-1), np.repeat(np.arange(draws), models), np.repeat(kept, models)
    ).reshape(draws, models)
    return [(model, shared[:, i]) for i, (model, _cents) in enumerate(by_model)]


def _cap_notes(charged: IntArray, policy: Policy, already: _Already) -> list[str]:
    """What the estimate assumes when the run would reach the policy's per-job cap."""
    cap = cap_cents(policy)
    before = already.charged_compute_cents + already.charged_grader_cents
    if cap is None or before >= cap:
        return []
    reached = float(np.mean(before + charged >= cap)) if len(charged) else 0.0
    if not reached:
        return []
    amount = format_amount(cents_to_decimal(cap))
    return [
        f"policy {policy.name} caps a job at {amount} {policy.currency} (training plus"
        f" grading): the run reaches the cap in {reached:.0%} of the simulated runs, where it would"
        f" be paused with {amount} charged (the charge that reaches it is cut, compute"
        " first, then grader); the hours are the whole run's, and a resumed job bills the"
        " rest with no further limit"
    ]


def _int_tokens(values: FloatArray) -> IntArray:
    """Floats (tokens, nanoseconds) → int64, refusing what int64 cannot hold (never a wrap)."""
    rounded = np.rint(values)
    if not np.all(np.isfinite(rounded)) or np.any(np.abs(rounded) >= 2.0**63):
        raise _TooLargeError(
            "the settings give amounts too large to compute (beyond 2^63 tokens or"
            " nanoseconds); check the hyperparameters and the data counts"
        )
    return rounded.astype("int64")


def _checked(rule: Callable[..., IntArray], *args: Any) -> IntArray:
    """A rule's exact amounts as int64; an amount beyond int64 is refused, never wrapped."""
    try:
        return np.asarray(rule(*args), dtype="int64")
    except OverflowError as exc:
        raise _TooLargeError(
            "the settings give an amount too large to compute; check the hyperparameters"
        ) from exc


_EFFORT_OUTPUT = {
    "none": 1 / 14,
    "minimal": 0.25,
    "low": 0.5,
    "medium": 1.0,
    "high": 2.0,
    "xhigh": 3.0,
    "max": 4.0,
}
"""Kind 9: a reasoning grader's output tokens at its ``sampling_params.reasoning_effort``,
relative to medium (the effort the priors and a calibration without it assume). rftcost's
documented guesses: ``none`` reasons not at all (a non-reasoning model's output)."""


def _effort_factor(key: str, effort: str | None) -> float:
    if effort is None or not is_reasoning_grader(key):
        return 1.0
    return _EFFORT_OUTPUT.get(effort, 1.0)


def _model_graders(plan: Plan) -> list[tuple[str, str | None]]:
    """Each model grader's model and its ``sampling_params.reasoning_effort``."""
    return list(zip(plan.grader.models, plan.grader.efforts_per_model(), strict=False))


def _by_model(
    amounts: Sequence[tuple[str, IntArray]],
) -> list[tuple[str, IntArray]]:
    summed: dict[str, IntArray] = {}
    for model, cents in amounts:
        summed[model] = summed[model] + cents if model in summed else cents
    return list(summed.items())


def _quantile_ints(values: IntArray) -> tuple[int, int, int]:
    picked = np.quantile(values, [0.1, 0.5, 0.9], method="inverted_cdf")
    return int(picked[0]), int(picked[1]), int(picked[2])


def _money(values: IntArray) -> Quantiles:
    p10, p50, p90 = _quantile_ints(values)
    return Quantiles(
        p10=cents_to_decimal(p10), p50=cents_to_decimal(p50), p90=cents_to_decimal(p90)
    )


def _hours(units: IntArray, places: int) -> Quantiles:
    p10, p50, p90 = _quantile_ints(units)
    return Quantiles(
        p10=Decimal(p10).scaleb(-places),
        p50=Decimal(p50).scaleb(-places),
        p90=Decimal(p90).scaleb(-places),
    )


def _seconds_to_hours(seconds: FloatArray, policy: Policy) -> Quantiles:
    ns = np.rint(seconds * _NS).astype("int64")
    return _hours(hour_units(ns, policy), policy.rounding.hours_decimals)


def _tokens(values: IntArray) -> Quantiles:
    p10, p50, p90 = _quantile_ints(values)
    return Quantiles(p10=Decimal(p10), p50=Decimal(p50), p90=Decimal(p90))


def graded_samples(plan: Plan, steps: int | None = None, runs: int | None = None) -> int:
    """Samples the grader scores: rollouts of training examples plus validation samples.

    Training: ``steps × batch_size × SAMPLES_PER_EXAMPLE × compute_multiplier`` (rollouts
    per example grow with the exploration compute); validation: ``runs × n_valid ×
    eval_samples``. The count is informative; amounts come from the fitted tokens.
    """
    steps = plan.steps if steps is None else steps
    runs = plan.validation_runs if runs is None else runs
    train = steps * plan.batch_size * max(1, round(SAMPLES_PER_EXAMPLE * plan.compute_multiplier))
    return int(train + runs * plan.n_valid_examples * plan.eval_samples)


def _resolve(
    calibration: Calibration | str | Path | None, policy: Policy | str | Path | None
) -> tuple[Calibration, Policy]:
    if calibration is None:
        resolved = PRIOR
    elif isinstance(calibration, Calibration):
        resolved = calibration
    else:
        resolved = Calibration.load(calibration)
    return resolved, load_policy(policy)


def _now() -> datetime:
    return datetime.now(UTC)


def _assumptions(
    plan: Plan, calibration: Calibration, draws: _Draws, policy: Policy
) -> tuple[str, ...]:
    lines = list(plan.assumptions)
    if not calibration.calibrated:
        lines.append(
            "no calibration: built-in priors (not fitted on your jobs), so the range is wide;"
            " run `rftcost calibrate LOGS -o calibration.json` and pass --calibration"
        )
        lines.extend(calibration.notes)
    else:
        lines.extend(_outside_history(plan, calibration))
    lines.extend(draws.notes)
    if plan.grader_model is None:
        lines.append(f"{plan.grader_type} grader: no grader tokens, only the time it adds")
    elif len(plan.grader.models) > 1:
        lines.append(
            f"multi grader with models {', '.join(plan.grader.models)}: each model grader runs"
            " on every graded sample, its tokens priced at its own model's rates"
        )
    efforts = [
        f"{model} {effort}"
        for model, effort in _model_graders(plan)
        if effort is not None and is_reasoning_grader(grader_key("score_model", model))
    ]
    if efforts:
        lines.append(
            "grader sampling_params.reasoning_effort "
            + ", ".join(efforts)
            + ": output tokens scaled from medium (none ×1/14, minimal ×0.25, low ×0.5,"
            " high ×2, xhigh ×3, max ×4; rftcost's guesses)"
        )
    if plan.data_sharing:
        scope = policy.data_sharing_discount.scope
        lines.append(
            f"data sharing: discount {policy.data_sharing_discount.rate * 100:.0f}% on"
            f" {', '.join(scope)} (policy {policy.name})"
            if scope
            else f"data sharing: no training discount under policy {policy.name}"
        )
    return tuple(dict.fromkeys(lines))


def _outside_history(plan: Plan, calibration: Calibration) -> list[str]:
    notes = []
    values = _values(plan)
    for setting in ("batch_size", "compute_multiplier", "eval_samples", "n_valid_examples"):
        seen = calibration.seen.get(setting)
        if not seen or (setting == "n_valid_examples" and plan.n_valid_examples == 0):
            continue
        value = float(values[setting])
        low, high = float(seen[0]), float(seen[1])
        if value < low or value > high:
            notes.append(
                f"{setting} {value:g} is outside the calibration history ({low:g}-{high:g}):"
                " extrapolated"
            )
    return notes


# --- public API -------------------------------------------------------------------------------


def estimate(
    plan: Plan,
    calibration: Calibration | str | Path | None = None,
    *,
    policy: Policy | str | Path | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    at: datetime | None = None,
) -> Estimate:
    """Estimate a plan's cost as P10 / P50 / P90 (without a calibration: built-in priors)."""
    resolved, policy_ = _resolve(calibration, policy)
    at = at or _now()
    _check_priced(plan, policy_, at, plan.source or "<plan>")
    result = _simulate(
        plan,
        resolved,
        policy_,
        draws=draws,
        seed=seed,
        at=at,
        steps=plan.steps,
        runs=plan.validation_runs,
    )
    estimated = _estimate_of(plan, resolved, policy_, result, draws=draws, at=at)
    cap = cap_cents(policy_)
    at_cap = cap is not None and bool(np.any(result.total_cents + result.discount_cents >= cap))
    return estimated.model_copy(
        update={
            "assumptions": (
                *estimated.assumptions,
                "the run completes in one charge (no pause, failure or rollback)"
                + (
                    ", unless it reaches the per-job cap: it is then paused there" if at_cap else ""
                ),
            )
        }
    )


def _estimate_of(
    plan: Plan,
    calibration: Calibration,
    policy: Policy,
    result: _Draws,
    *,
    draws: int,
    at: datetime,
    progress: Progress | None = None,
    steps: int | None = None,
    runs: int | None = None,
) -> Estimate:
    shares = calibration.phase_shares or PRIOR.phase_shares
    breakdown = {
        phase: _seconds_to_hours(result.train_seconds * shares.get(phase, 0.0), policy)
        for phase in TRAIN_PHASES
    }
    breakdown["validation"] = _seconds_to_hours(result.valid_seconds, policy)
    return Estimate(
        policy=policy.name,
        currency=policy.currency,
        calibrated=calibration.calibrated,
        plan=plan,
        steps=plan.steps,
        validation_runs=plan.validation_runs,
        graded_samples=graded_samples(plan),
        billable_hours=_hours(result.hour_units, policy.rounding.hours_decimals),
        compute_amount=_money(result.compute_cents),
        discount_amount=_money(result.discount_cents),
        grader_amount=_money(result.grader_cents),
        total_amount=_money(result.total_cents),
        breakdown=breakdown,
        grader_amount_by_model={
            model: _money(cents) for model, cents in _by_model(result.grader_cents_by_model)
        },
        grader_tokens={
            "input_tokens": _tokens(result.input_tokens),
            "cached_input_tokens": _tokens(result.cached_tokens),
            "output_tokens": _tokens(result.output_tokens),
        },
        assumptions=_assumptions(plan, calibration, result, policy),
        calibration=tuple(calibration.summary_lines()),
        draws=draws,
        priced_at=at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        price_source=policy.price_table.price_source,
        progress=progress,
    )


# --- what-if tables ---------------------------------------------------------------------------

VARY_NAMES: dict[str, str] = {
    "batch_size": "batch_size",
    "n_epochs": "n_epochs",
    "compute_multiplier": "compute_multiplier",
    "eval_interval": "eval_interval",
    "eval_samples": "eval_samples",
    "reasoning_effort": "reasoning_effort",
    "grader": "grader",
    "grader_model": "grader_model",
    "grader_type": "grader_type",
    "n_train": "n_train_examples",
    "n_train_examples": "n_train_examples",
    "n_valid": "n_valid_examples",
    "n_valid_examples": "n_valid_examples",
    "data_sharing": "data_sharing",
    "model": "model",
}
"""Names ``--vary`` accepts → the plan setting they change."""

_INT_SETTINGS = (
    "batch_size",
    "n_epochs",
    "eval_interval",
    "eval_samples",
    "n_train_examples",
    "n_valid_examples",
)


class WhatIfRow(BaseModel):
    """One combination of a what-if table."""

    model_config = _FROZEN

    changes: dict[str, str]
    """Setting → value of this row."""
    steps: int
    """Training steps."""
    validation_runs: int
    """Validation runs."""
    billable_hours: Quantiles
    """Billed hours."""
    total_amount: Quantiles
    """Total amount."""


def parse_vary(specs: Iterable[str]) -> dict[str, list[str]]:
    """``["eval_interval=5,10", "grader=gpt-4.1-nano,gpt-4.1"]`` → {name: values}.

    Raises ``PlanError`` for an unknown name or a malformed spec.
    """
    result: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, raw = spec.partition("=")
        name = name.strip()
        if not sep or not raw.strip():
            raise PlanError(f"--vary {spec!r}: write NAME=V1,V2 (e.g. eval_interval=5,10,20)")
        if name not in VARY_NAMES:
            raise PlanError(
                f"--vary {spec!r}: unknown setting {name!r}; known: {', '.join(VARY_NAMES)}"
            )
        values = [v.strip() for v in raw.split(",") if v.strip()]
        result.setdefault(name, []).extend(values)
    return result


def _check_priced(plan: Plan, policy: Policy, at: datetime, where: str) -> None:
    """The plan's base model has an hourly rate and each grader model a token price at
    ``at`` in ``policy`` (R10, R11); else a ``PlanError`` naming ``where`` the setting
    came from (the plan file, or a ``--vary`` change)."""
    if policy.hourly_rate(plan.model) is None:
        raise PlanError(
            f"{where}: no hourly training rate for base model {plan.model!r} in policy"
            f" {policy.name}; known: {', '.join(sorted(policy.hourly_rates))}"
        )
    table = policy.price_table
    for model in dict.fromkeys(
        plan.grader.models or ([plan.grader_model] if plan.grader_model else [])
    ):
        try:
            table.lookup(model, at)
        except PriceNotFoundError as exc:
            raise PlanError(
                f"{where}: no token price for grader model {model!r} at"
                f" {at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} (R10) in policy {policy.name};"
                f" `rftcost policy show {policy.name}` lists its token prices"
            ) from exc


def _change(plan: Plan, changes: Mapping[str, str]) -> Plan:
    typed: dict[str, Any] = {}
    for name, raw in changes.items():
        field = VARY_NAMES[name]
        if raw.lower() in ("auto", "default") and field in AUTO_DEFAULTS:
            # As in a plan: "auto" (and reasoning_effort "default") is rftcost's default.
            typed[field] = AUTO_DEFAULTS[field]
            continue
        try:
            if field in _INT_SETTINGS:
                typed[field] = int(raw)
            elif field == "compute_multiplier":
                typed[field] = float(raw)
            elif field == "data_sharing":
                if raw.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(raw)
                typed[field] = raw.lower() in ("true", "yes", "1")
            elif field == "grader":
                # A type's name (label_model too, to be refused as a top-level type) or a
                # model's.
                typed["grader_type" if raw in GRADER_TYPE_NAMES else "grader_model"] = raw
            else:
                typed[field] = raw
        except ValueError as exc:
            raise PlanError(f"--vary {name}={raw}: not a valid value for {field}") from exc
    return plan.with_changes(**typed)


def what_if(
    plan: Plan,
    vary: Mapping[str, Sequence[str]],
    calibration: Calibration | str | Path | None = None,
    *,
    policy: Policy | str | Path | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    at: datetime | None = None,
) -> list[WhatIfRow]:
    """One row per combination of the varied settings (same random numbers for every row)."""
    resolved, policy_ = _resolve(calibration, policy)
    at = at or _now()
    names = list(vary)
    rows = []
    for combination in itertools.product(*(vary[n] for n in names)):
        changes = dict(zip(names, combination, strict=True))
        variant = _change(plan, changes)
        spec = " ".join(f"{name}={value}" for name, value in changes.items())
        _check_priced(variant, policy_, at, f"--vary {spec}")
        result = _simulate(
            variant,
            resolved,
            policy_,
            draws=draws,
            seed=seed,
            at=at,
            steps=variant.steps,
            runs=variant.validation_runs,
        )
        rows.append(
            WhatIfRow(
                changes=changes,
                steps=variant.steps,
                validation_runs=variant.validation_runs,
                billable_hours=_hours(result.hour_units, policy_.rounding.hours_decimals),
                total_amount=_money(result.total_cents),
            )
        )
    return rows


# --- budget -----------------------------------------------------------------------------------


class BudgetCheck(BaseModel):
    """Whether the P90 total fits a budget, and the single change that makes it fit."""

    model_config = _FROZEN

    budget: Decimal
    """The budget."""
    p90: Decimal
    """P90 total of the plan."""
    over: bool
    """P90 exceeds the budget."""
    suggestion: str | None
    """The mildest single change whose P90 is within the budget (``None`` if none, or not over)."""
    suggestion_p90: Decimal | None = None
    """P90 total with that change."""
    candidates: tuple[tuple[str, Decimal], ...] = ()
    """Every single change tried, with its P90 total, cheapest first."""


_TIERS = ("validation", "grader", "training", "data sharing")
"""Kinds of single changes, most harmless first: validation settings do not change the model
trained; a cheaper grader changes only the reward's judge; training settings change the
training; data sharing is an organisation's decision."""


def _candidate_changes(plan: Plan, policy: Policy) -> list[tuple[str, str, dict[str, Any]]]:
    """(tier, label, changes) of every single change worth trying."""
    from rftcost.prices import resolve_model_family

    candidates: list[tuple[str, str, dict[str, Any]]] = []
    if plan.validation_runs:
        for factor in (2, 4):
            interval = plan.eval_interval * factor
            if -(-plan.steps // interval) < plan.validation_runs:
                candidates.append(
                    (
                        "validation",
                        f"eval_interval {plan.eval_interval} → {interval}",
                        {"eval_interval": interval},
                    )
                )
        if plan.eval_samples > 1:
            fewer = max(1, plan.eval_samples // 2)
            candidates.append(
                (
                    "validation",
                    f"eval_samples {plan.eval_samples} → {fewer}",
                    {"eval_samples": fewer},
                )
            )
        if plan.n_valid_examples > 1:
            half = max(1, plan.n_valid_examples // 2)
            candidates.append(
                (
                    "validation",
                    f"validation set {plan.n_valid_examples} → {half} examples",
                    {"n_valid_examples": half},
                )
            )
        candidates.append(("validation", "no validation file", {"n_valid_examples": 0}))
    if plan.grader_model is not None:
        current = resolve_model_family(plan.grader_model)
        for model in ("gpt-4.1-mini", "gpt-4.1-nano"):
            if model != current and policy.price_table.models.get(model):
                candidates.append(
                    (
                        "grader",
                        f"grader model {plan.grader_model} → {model}",
                        {"grader_model": model},
                    )
                )
    efforts = ("low", "medium", "high")
    position = efforts.index(plan.reasoning_effort)
    if position > 0:
        candidates.append(
            (
                "training",
                f"reasoning_effort {plan.reasoning_effort} → {efforts[position - 1]}",
                {"reasoning_effort": efforts[position - 1]},
            )
        )
    if plan.compute_multiplier > 0.25:
        lower = round(plan.compute_multiplier / 2, 6)
        candidates.append(
            (
                "training",
                f"compute_multiplier {plan.compute_multiplier:g} → {lower:g}",
                {"compute_multiplier": lower},
            )
        )
    if plan.n_epochs > 1:
        fewer_epochs = max(1, plan.n_epochs // 2) if plan.n_epochs > 2 else 1
        candidates.append(
            ("training", f"n_epochs {plan.n_epochs} → {fewer_epochs}", {"n_epochs": fewer_epochs})
        )
    if not plan.data_sharing and policy.data_sharing_discount.scope:
        candidates.append(
            (
                "data sharing",
                "share training data with OpenAI (data-sharing discount)",
                {"data_sharing": True},
            )
        )
    return candidates


def check_budget(
    plan: Plan,
    budget: Decimal | str | int,
    calibration: Calibration | str | Path | None = None,
    *,
    policy: Policy | str | Path | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    at: datetime | None = None,
) -> BudgetCheck:
    """Compare the P90 total with ``budget``; when over, find the mildest single change that fits.

    Changes are tried by kind, most harmless first (``_TIERS``: validation settings,
    a cheaper grader model, training settings, data sharing); within the first kind
    that has a change within the budget, the one whose P90 stays highest (it gives
    up the least) is suggested. Every candidate and its P90 are listed.
    """
    from rftcost.money import to_decimal

    limit = to_decimal(budget)
    resolved, policy_ = _resolve(calibration, policy)
    at = at or _now()

    def p90_of(variant: Plan) -> int:
        result = _simulate(
            variant,
            resolved,
            policy_,
            draws=draws,
            seed=seed,
            at=at,
            steps=variant.steps,
            runs=variant.validation_runs,
        )
        return _quantile_ints(result.total_cents)[2]

    p90 = cents_to_decimal(p90_of(plan))
    if p90 <= limit:
        return BudgetCheck(budget=limit, p90=p90, over=False, suggestion=None)
    tried: list[tuple[str, str, Decimal]] = []
    for tier, label, changes in _candidate_changes(plan, policy_):
        try:
            variant = plan.with_changes(**changes)
            variant_p90 = p90_of(variant)
        except (PlanError, PriceNotFoundError):
            continue  # a grader not priced at ``at``: no change to suggest, not an error
        tried.append((tier, label, cents_to_decimal(variant_p90)))
    best: tuple[str, Decimal] | None = None
    for tier in _TIERS:
        fitting = [(label, p90) for t, label, p90 in tried if t == tier and p90 <= limit]
        if fitting:
            best = max(fitting, key=lambda item: item[1])
            break
    return BudgetCheck(
        budget=limit,
        p90=p90,
        over=True,
        suggestion=best[0] if best else None,
        suggestion_p90=best[1] if best else None,
        candidates=tuple(sorted(((label, p90) for _, label, p90 in tried), key=lambda c: c[1])),
    )


# --- a job in progress ------------------------------------------------------------------------


def check_projected_budget(
    projection: Estimate,
    budget: Decimal | str | int,
    calibration: Calibration | str | Path | None = None,
    *,
    policy: Policy | str | Path | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    at: datetime | None = None,
) -> BudgetCheck:
    """The budget check of a job in progress (``project_running``): its projected final
    total's P90 against ``budget``.

    What has been charged already is spent, so the budget applies to the projection
    (charged so far plus the forecast of the rest), not to a fresh run of the plan;
    the single changes that would fit are still looked for on the job's plan
    (``check_budget``), as the changes a next run could make.
    """
    from rftcost.money import to_decimal

    planned = check_budget(
        projection.plan, budget, calibration, policy=policy, draws=draws, seed=seed, at=at
    )
    p90 = projection.total_amount.p90
    return planned.model_copy(update={"p90": p90, "over": p90 > to_decimal(budget)})


def _charged_so_far(charges: Any, plan: Plan, policy: Policy) -> dict[str, int]:
    """What the job's charges so far will stay at once it ends, and time its last charge carries.

    With ``rounding_scope = "charge"`` each charge is final. With ``"job"`` (R11) the
    job's exact seconds are rounded once on its last charge: the time charged so far
    moves to the final charge (``carried_ns``) and earlier charges keep only their
    grader amounts (and any discount on them).
    """
    from rftcost.policy import RoundingScope

    grader = int(charges["grader_cents"].sum())
    if policy.rounding.scope != RoundingScope.JOB:
        return {
            "hour_units": int(charges["hour_units"].sum()),
            "compute_cents": int(charges["compute_cents"].sum()),
            "discount_cents": int(charges["discount_cents"].sum()),
            "grader_cents": grader,
            "carried_ns": 0,
        }
    # Only the grader part of a discount stays on these charges (R12 on no compute).
    graders = charges["grader_cents"].to_numpy(dtype="int64")
    discount = int(discount_cents(graders * 0, graders, plan.data_sharing, policy).sum())
    return {
        "hour_units": 0,
        "compute_cents": 0,
        "discount_cents": discount,
        "grader_cents": grader,
        "carried_ns": int(charges["billable_ns"].sum()),
    }


_STEP_OF_TOTAL = r"^\s*Step\s+\d+\s*/\s*(\d+)"
"""An OpenAI metrics message, ``Step 2/4 , train mean reward=0.50``: its total steps."""


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def _total_steps(result: Any, job_id: str) -> int | None:
    """An export's total steps (its metrics messages ``Step N/M``); ``None`` if none say."""
    log = result.log
    if log is None:
        return None
    events = log.events
    mine = events.loc[
        (events["job_id"].astype(str) == job_id) & (events["event"] == "step_completed"),
        "message",
    ]
    totals = mine.dropna().astype(str).str.extract(_STEP_OF_TOTAL)[0].dropna()
    return int(totals.astype("int64").max()) if len(totals) else None


_PACE_WEIGHT_STEPS = 5.0
"""Steps after which a job's own pace counts as much as the calibration's prediction,
while the job keeps to it."""
_LEAST_PRIOR_STEPS = 0.5
"""The least the prediction weighs, however far the job is from it."""


def _prior_steps(gap: float, residual_sd: float) -> float:
    """How many of the job's own steps the calibration's prediction weighs: five while the
    job's pace agrees with it (within the fit's residual spread), falling with the square
    of the disagreement, to half a step. A job ten times slower than the model (another
    load, another region) is forecast at its own pace within a few steps, not at the
    model's (whose forecast stayed low to the end and never paused on it)."""
    if abs(gap) <= residual_sd:
        return _PACE_WEIGHT_STEPS
    return max(_PACE_WEIGHT_STEPS * (residual_sd / gap) ** 2, _LEAST_PRIOR_STEPS)


def project_running(
    source: Any,
    job_id: str,
    calibration: Calibration | str | Path | None = None,
    *,
    plan: Plan | None = None,
    policy: Policy | str | Path | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    at: datetime | None = None,
    settings_given: Mapping[str, Any] | None = None,
) -> Estimate:
    """Project a job in progress to its final cost: charged so far + unbilled + what is left.

    ``source`` is a ``Bill`` or logs. The job's settings come from its
    ``job_created`` event (or ``plan``), with ``settings_given`` (``n_train_examples``,
    ``n_valid_examples``, ``data_sharing``: the command's options) over the recorded
    ones when there is no plan. Data sharing is the job's own where it was recorded:
    the discount was settled when the job was created (R12), whatever the plan or an
    option says (a note says so where they differ). Its own pace so far shifts the per-step
    prediction with weight ``k / (k + p)`` after ``k`` steps, and the spread left
    shrinks by the same measure; the prediction weighs ``p = 5`` steps while the job's
    pace agrees with it, fewer (down to half a step) the further the job is from it.
    """
    from rftcost.billing import Bill
    from rftcost.calibration import measure_jobs
    from rftcost.engines import bill

    resolved, policy_ = _resolve(calibration, policy)
    at = at or _now()
    result = (
        source
        if isinstance(source, Bill)
        else bill(source, policy=policy_, buckets=None, keep_timeline=True)
    )
    rows = result.jobs[result.jobs["job_id"] == job_id]
    if rows.empty:
        known = ", ".join(result.job_ids()[:5])
        raise PlanError(
            f"job {job_id!r} is not in the logs"
            f" (jobs: {known}{', ...' if len(result.jobs) > 5 else ''})"
        )
    row = rows.iloc[0]
    status = str(row["status"])
    if status == "invalid":
        problems = "; ".join(
            result.problems.loc[result.problems["job_id"] == job_id, "problem"].astype(str)
        )
        raise PlanError(f"job {job_id} is invalid, its cost cannot be projected: {problems}")
    if status not in ("running", "paused"):
        raise PlanError(
            f"job {job_id} has finished ({status}): its bill is final, see `rftcost bill`"
        )
    code = int(row["job"])
    settings = {str(k): v for k, v in result.timeline.jobs.loc[code].to_dict().items()}
    recorded_sharing = settings.get("data_sharing")
    given = {k: v for k, v in (settings_given or {}).items() if v is not None}
    if plan is None:
        settings.update({k: v for k, v in given.items() if k != "data_sharing"})
    if plan is None and _missing(settings.get("n_train_examples")):
        settings["total_steps"] = _total_steps(result, job_id)
    job_plan = plan or plan_from_settings(settings, source=f"job {job_id}")
    sharing_notes: tuple[str, ...] = ()
    asked = plan.data_sharing if plan is not None else given.get("data_sharing")
    if not _missing(recorded_sharing):
        if asked is not None and bool(asked) != bool(recorded_sharing):
            sharing_notes = (
                f"data sharing {'on' if recorded_sharing else 'off'}, as the job was created"
                f" (not {'on' if asked else 'off'}: a job's discount is settled at its"
                " creation, R12)",
            )
        job_plan = job_plan.model_copy(update={"data_sharing": bool(recorded_sharing)})
    elif asked is not None:
        job_plan = job_plan.model_copy(update={"data_sharing": bool(asked)})
    measured = measure_jobs(result, [code]).iloc[0]
    steps_done = int(measured["max_step"])
    runs_done = int(measured["valid_runs"])
    steps_left = max(job_plan.steps - steps_done, 0)
    runs_left = max(job_plan.validation_runs - runs_done, 0)

    shift: list[tuple[str, float]] = []
    spread = 1.0
    observed: float | None = None
    if measured["steps"] > 0 and measured["train_seconds"] > 0:
        observed = float(measured["train_seconds"] / measured["steps"])
        fit = resolved.components["train_seconds_per_step"]
        predicted = fit.predict(_values(job_plan))
        gap = math.log(observed) - predicted
        weight = measured["steps"] / (measured["steps"] + _prior_steps(gap, fit.residual_sd))
        shift = [(name, weight * gap) for name in resolved.components]
        spread = math.sqrt(1.0 - weight)

    charges = result.charges[result.charges["job_id"] == job_id]
    charged = _charged_so_far(charges, job_plan, policy_)
    lines = result.grader_lines[
        (result.grader_lines["job_id"] == job_id) & (result.grader_lines["charge"] < 0)
    ]
    already = _Already(
        charged_hour_units=charged["hour_units"],
        charged_compute_cents=charged["compute_cents"],
        charged_discount_cents=charged["discount_cents"],
        charged_grader_cents=charged["grader_cents"],
        unbilled_ns=charged["carried_ns"]
        + (int(row["unbilled_ns"]) if row["unbilled_ns"] is not None else 0),
        unbilled_input=int(lines["input_tokens"].sum()),
        unbilled_cached=int(lines["cached_input_tokens"].sum()),
        unbilled_output=int(lines["output_tokens"].sum()),
        shift=tuple(shift),
        spread=spread,
    )
    simulated = _simulate(
        job_plan,
        resolved,
        policy_,
        draws=draws,
        seed=seed,
        at=at,
        steps=steps_left,
        runs=runs_left,
        already=already,
    )
    places = policy_.rounding.hours_decimals
    unbilled_units = hour_units(
        int(row["unbilled_ns"]) if row["unbilled_ns"] is not None else 0, policy_
    )
    progress = Progress(
        job_id=job_id,
        status=status,
        steps_done=steps_done,
        validation_runs_done=runs_done,
        charged_amount=cents_to_decimal(int(charges["amount_cents"].sum())),
        unbilled_hours=Decimal(int(unbilled_units)).scaleb(-places),
        observed_seconds_per_step=observed,
    )
    result_ = _estimate_of(
        job_plan, resolved, policy_, simulated, draws=draws, at=at, progress=progress
    )
    extra: tuple[str, ...] = (
        f"job in progress: {steps_done} of {job_plan.steps} steps and {runs_done} of "
        f"{job_plan.validation_runs} validation runs done; charged so far "
        f"{format_amount(progress.charged_amount)}; the last charge covers the unbilled "
        f"{progress.unbilled_hours} h and the work left",
    )
    if steps_done > job_plan.steps or runs_done > job_plan.validation_runs:
        # Settings that contradict the log (a wrong --n-train): said, not silently capped.
        extra = (
            *extra,
            f"the log shows more work done ({steps_done} steps, {runs_done} validation runs)"
            f" than the settings plan ({job_plan.steps} steps, {job_plan.validation_runs}"
            " runs): no work left is projected; check the training-set size and settings",
        )
    assumptions = (*extra, *sharing_notes, *result_.assumptions)
    return result_.model_copy(update={"assumptions": assumptions})


# ``rftcost.estimate`` is both this module and the function (see ``rftcost._callable``).
make_module_callable(__name__, estimate)
