"""Calibration: how time and grader tokens depend on a run's settings, fitted on past jobs.

``calibrate`` bills past jobs' logs and measures, for every successful job with
its settings recorded on ``job_created``:

- **training seconds per step**: the wall-clock union of its billable phases
  other than ``validation`` (R1), divided by its ``step_completed`` events;
- **validation seconds per run**: the billable time that only validation adds,
  divided by its validation runs (the ``validation`` intervals);
- **grader tokens per step and per validation run** (input, output; cached as a
  share of input): ``grader_usage`` events inside a validation interval count
  for validation, the others for training.

Each quantity is fitted by least squares on the log scale (numpy), one
*component* per quantity::

    log(y) = b0 + b1·log(batch_size) + b2·log(compute_multiplier) + …
             + one term per reasoning effort and per grader (dummies) + ε

The residuals ε (what the settings do not explain: problem difficulty, answer
length, a slow day) are kept per job, so that an estimate can draw them jointly
(a job that reasons longer is slower *and* uses more grader tokens), together
with each fit's parameter covariance (a plan far from the history gets a wider
range). Fit quality (R², residual spread, jobs used) is part of the result.

``PRIOR`` is a calibration written by hand (documented guesses, wide residuals)
used when no history is given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rftcost.errors import CalibrationError
from rftcost.events.json_text import lone_surrogate_in

__all__ = [
    "CALIBRATION_SCHEMA",
    "COMPONENTS",
    "PRIOR",
    "Calibration",
    "ComponentFit",
    "calibrate",
    "grader_key",
    "is_reasoning_grader",
    "job_measurements",
    "measure_jobs",
]

CALIBRATION_SCHEMA = "rftcost.calibration/v1"

FloatArray = npt.NDArray[np.float64]
_NS = 1_000_000_000
_FROZEN = ConfigDict(frozen=True, extra="forbid")

TRAIN_PHASES = ("rollout", "grading", "update")
"""Billable phases of a training step (their shares split the training time in a breakdown)."""

REASONING_GRADER_FAMILIES = (
    "o1",
    "o1-mini",
    "o3",
    "o3-mini",
    "o3-pro",
    "o4-mini",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
)
"""Grader models that reason (slower, more output tokens: a prior when history lacks them)."""


# The components: what is fitted, on which numeric settings, per which unit.
_NUMERIC_TRAIN = ("batch_size", "compute_multiplier")
_NUMERIC_VALID = ("n_valid_examples", "eval_samples", "compute_multiplier")
_CURVATURE_MIN_JOBS = 60
"""With this many jobs, training time per step also gets a curvature term (log_work²) and
reasoning effort × log_work terms (the fixed part of a step weighs less as work grows)."""
CURVED: dict[str, tuple[str, ...]] = {
    "train_seconds_per_step": ("batch_size", "compute_multiplier")
}
"""Components that get the curvature terms, and the settings that make their work."""
COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "train_seconds_per_step": ("step", _NUMERIC_TRAIN),
    "valid_seconds_per_run": ("validation run", _NUMERIC_VALID),
    "train_input_tokens_per_step": ("step", _NUMERIC_TRAIN),
    "train_output_tokens_per_step": ("step", _NUMERIC_TRAIN),
    "valid_input_tokens_per_run": ("validation run", _NUMERIC_VALID),
    "valid_output_tokens_per_run": ("validation run", _NUMERIC_VALID),
}
"""Component → (unit, numeric settings entering as logs)."""

REQUIRED_VARIATION: dict[str, tuple[str, ...]] = {
    "train_seconds_per_step": ("batch_size", "compute_multiplier"),
    "valid_seconds_per_run": ("n_valid_examples", "eval_samples"),
}
"""Settings whose effect cannot be guessed safely: the history must vary them."""

_CATEGORICAL = ("reasoning_effort", "grader")
WORK_SETTINGS = ("batch_size", "compute_multiplier", "n_valid_examples", "eval_samples")
"""Settings that only add work: their slopes are never negative."""
_MIN_CATEGORY_JOBS = 3
MAX_RESIDUAL_ROWS = 5000
"""Most residual vectors a calibration keeps (a random sample of a larger history)."""


def grader_key(grader_type: Any, grader_model: Any) -> str:
    """The grader as a category: ``model:gpt-4.1``, ``multi:o3``, ``python``, ``string_check``.

    A score_model and a label_model grader with the same model are one category
    (``model:<family>``): their speed and tokens are the model's. A multi grader
    keeps its own category (it runs other graders too).
    """
    from rftcost.prices import resolve_model_family

    kind = str(grader_type) if _present(grader_type) else None
    if _present(grader_model):
        family = resolve_model_family(str(grader_model))
        return f"multi:{family}" if kind == "multi" else f"model:{family}"
    return kind or "unknown"


def _present(value: Any) -> bool:
    if value is None:
        return False
    try:
        import pandas as pd

        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def is_reasoning_grader(key: str) -> bool:
    """Whether a grader key names a reasoning model."""
    _, _, family = key.partition(":")
    return family in REASONING_GRADER_FAMILIES


# --- the fitted model ------------------------------------------------------------------------


class ComponentFit(BaseModel):
    """One log-linear fit: ``log(y) = features · coefficients + ε``."""

    model_config = _FROZEN

    name: str
    """What is fitted (``train_seconds_per_step``, ...)."""
    unit: str
    """Per what (``step``, ``validation run``)."""
    features: tuple[str, ...]
    """Feature names: ``intercept``, ``log_<setting>``, ``<category>=<level>``."""
    coefficients: tuple[float, ...]
    """One per feature (log scale)."""
    covariance: tuple[tuple[float, ...], ...]
    """Covariance of the coefficients (their uncertainty)."""
    fixed: dict[str, float] = Field(default_factory=dict)
    """Slopes not fitted (no variation in the history): ``log_<setting>`` → prior slope."""
    work: tuple[str, ...] = ()
    """Settings whose product is the work per unit (``log_work`` = the sum of their logs)."""
    work_center: float = 0.0
    """Mean ``log_work`` of the history (``log_work`` terms are centred on it)."""
    work_range: tuple[float, float] = (0.0, 0.0)
    """Centred ``log_work`` range of the history: beyond it the curvature continues on its
    tangent (a straight line on the log scale), so extrapolation stays tame."""
    references: dict[str, str] = Field(default_factory=dict)
    """Per categorical setting, the level that the intercept stands for."""
    residual_sd: float
    """Standard deviation of the residuals (log scale)."""
    r2: float | None
    """R² of the fit on the log scale (``None`` for a prior, and where the history's
    values do not vary: there is no variance to explain)."""
    n_jobs: int
    """Jobs the fit used."""

    def design(self, values: Mapping[str, Any]) -> tuple[FloatArray, float, float, list[str]]:
        """Features of one run: (x, fixed offset, extra log-variance, notes).

        The prediction is ``x · coefficients + offset``. ``values`` holds the
        numeric settings and the categorical levels. A level the fit has not seen
        contributes the prior's ratio to the reference level (in ``offset``), with
        extra variance and a note.
        """
        x = np.zeros(len(self.features))
        notes: list[str] = []
        extra = 0.0
        offset = 0.0
        seen_levels: dict[str, set[str]] = {}
        work = sum(math.log(float(values[s])) for s in self.work) - self.work_center
        for index, feature in enumerate(self.features):
            if feature == "intercept":
                x[index] = 1.0
            elif feature == "log_work^2":
                low, high = self.work_range
                edge = min(max(work, low), high)
                x[index] = edge * edge + 2.0 * edge * (work - edge)
            elif feature.startswith("log_"):
                x[index] = math.log(float(values[feature[4:]]))
            else:
                term, _, by_work = feature.partition("*")
                category, _, level = term.partition("=")
                seen_levels.setdefault(category, set()).add(level)
                match = 1.0 if str(values[category]) == level else 0.0
                x[index] = match * work if by_work else match
        for feature, slope in self.fixed.items():
            offset += slope * math.log(float(values[feature[4:]]))
        for category, reference in self.references.items():
            level = str(values[category])
            if level == reference or level in seen_levels.get(category, set()):
                continue
            ratio, spread = _prior_ratio(self.name, category, level, reference)
            offset += ratio
            extra += spread**2
            notes.append(
                f"{category} {level} has no term of its own in {self.name}: prior factor"
                f" ×{math.exp(ratio):.2f} relative to {reference}"
            )
        return x, offset, extra, notes

    def predict(self, values: Mapping[str, Any]) -> float:
        """Point prediction (log scale) for one run's settings."""
        x, offset, _, _ = self.design(values)
        return float(x @ np.asarray(self.coefficients)) + offset

    def coefficient_draws(self, normals: FloatArray) -> FloatArray:
        """Coefficient vectors drawn from their uncertainty: one row per row of ``normals``.

        Slopes of settings that add work (``WORK_SETTINGS``) are kept ≥ 0 in every
        draw: more examples, samples or compute never take less time.
        """
        mean = np.asarray(self.coefficients, dtype="float64")
        covariance = np.asarray(self.covariance, dtype="float64")
        if covariance.size:
            values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
            root = vectors * np.sqrt(np.clip(values, 0.0, None))
            draws = mean + normals[:, : len(mean)] @ root.T
        else:
            draws = np.tile(mean, (len(normals), 1))
        for index, feature in enumerate(self.features):
            if feature.startswith("log_") and feature[4:] in WORK_SETTINGS:
                draws[:, index] = np.clip(draws[:, index], 0.0, None)
        return np.asarray(draws, dtype="float64")


class Calibration(BaseModel):
    """Fitted time and token model (or the built-in prior), with its quality figures."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: str = Field(default=CALIBRATION_SCHEMA, alias="schema")
    """``rftcost.calibration/v1``."""
    calibrated: bool
    """``False`` for the built-in prior."""
    created_at: str
    """When it was fitted (ISO 8601 UTC)."""
    policy: str | None = None
    """Policy of the bills it was fitted on."""
    sources: tuple[str, ...] = ()
    """Logs it was fitted on."""
    n_jobs: int
    """Successful jobs with settings that the fit used."""
    n_skipped: dict[str, int] = Field(default_factory=dict)
    """Jobs not used, by reason."""
    components: dict[str, ComponentFit]
    """One fit per quantity."""
    residuals: tuple[tuple[float | None, ...], ...] = ()
    """Per job, one residual per component (``None`` where the job had none of it)."""
    residual_columns: tuple[str, ...] = ()
    """Component of each residual column."""
    cached_share: dict[str, float] = Field(default_factory=dict)
    """Cached input tokens as a share of input tokens, per grader key (``*``: overall)."""
    phase_shares: dict[str, float] = Field(default_factory=dict)
    """Share of each training phase (rollout, grading, update) in training time."""
    seen: dict[str, list[Any]] = Field(default_factory=dict)
    """Per setting, [min, max] (numeric) or the levels seen (categorical)."""
    quality: dict[str, Any] = Field(default_factory=dict)
    """Fit quality: per component R², residual spread, jobs; job-level time fit."""
    notes: tuple[str, ...] = ()
    """What the fit assumed (constant settings, missing components)."""

    def to_dict(self) -> dict[str, Any]:
        """The ``rftcost.calibration/v1`` document."""
        return self.model_dump(mode="json", by_alias=True)

    def save(self, path: str | Path) -> None:
        """Write the calibration as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a calibration file; ``CalibrationError`` if it is not one."""
        where = str(path)
        try:
            text = Path(path).read_bytes().decode("utf-8")
            raw = json.loads(text)
        except OSError as exc:
            raise CalibrationError(f"{where}: cannot read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CalibrationError(
                f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}); make a calibration"
                " with `rftcost calibrate LOGS -o FILE`"
            ) from exc
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"{where}:{exc.lineno}: not JSON ({exc.msg})") from exc
        except RecursionError as exc:
            raise CalibrationError(f"{where}: not JSON (nested too deep)") from exc
        # A lone surrogate parses to no text: it could be written nowhere (estimate's
        # output names the calibration's sources and notes).
        lone = lone_surrogate_in(text, raw)
        if lone:
            raise CalibrationError(
                f"{where}:{lone[1]}: not valid text: a lone surrogate escape {lone[0]}"
            )
        return cls.from_dict(raw, source=where)

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "<calibration>") -> Calibration:
        """A calibration from its JSON document."""
        if not isinstance(raw, dict) or raw.get("schema") != CALIBRATION_SCHEMA:
            found = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
            raise CalibrationError(
                f"{source}: not a calibration file (schema {found!r}, expected "
                f"{CALIBRATION_SCHEMA!r}); make one with `rftcost calibrate LOGS -o FILE`"
            )
        try:
            calibration = cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CalibrationError(
                f"{source}: invalid calibration at {where}: {_shown(first.get('input'))},"
                f" expected {_EXPECTED.get(first['type'], first['msg'].lower())}"
            ) from exc
        problem = _out_of_range(calibration)
        if problem is not None:
            where, value, expected = problem
            raise CalibrationError(
                f"{source}: invalid calibration at {where}: {_shown(value)}, expected {expected}"
            )
        return calibration

    def summary_lines(self) -> list[str]:
        """Fit quality in a few lines (for people)."""
        if not self.calibrated:
            return ["built-in priors (no calibration): rough guesses with a wide range"]
        lines = [f"{self.n_jobs} successful jobs used" + _skipped_text(self.n_skipped)]
        for fit in self.components.values():
            r2 = "n/a" if fit.r2 is None else f"{fit.r2:.3f}"
            lines.append(
                f"{fit.name}: R² {r2}, residual sd {fit.residual_sd:.3f} (log), {fit.n_jobs} jobs"
            )
        job_fit = self.quality.get("job_billable_seconds")
        if isinstance(job_fit, dict):
            fitted, error = job_fit.get("r2"), job_fit.get("median_abs_rel_error")
            if _finite(error):
                r2 = f"{fitted:.3f}" if _finite(fitted) else "n/a (the jobs' time does not vary)"
                lines.append(f"job billable time: R² {r2}, median |error| {100 * error:.1f}%")
            else:  # no job had every setting the whole-job check needs
                lines.append("job billable time: not measured (no job to check the fit on)")
        lines.extend(self.weaknesses())
        return lines

    def weaknesses(self) -> list[str]:
        """Why the fitted range may be narrower than what jobs will cost: a fit that explains
        little of the history's whole-job time, or too few jobs to say (an estimate says
        so beside "calibrated")."""
        if not self.calibrated:
            return []
        said = []
        job_fit = self.quality.get("job_billable_seconds")
        if isinstance(job_fit, dict):
            fitted, error = job_fit.get("r2"), job_fit.get("median_abs_rel_error")
            if (_finite(fitted) and fitted < WEAK_R2) or (
                _finite(error) and error > WEAK_MEDIAN_ERROR
            ):
                said.append(
                    "WEAK FIT: the settings explain little of these jobs' time (R² below"
                    f" {WEAK_R2:g} or a median error above {WEAK_MEDIAN_ERROR:.0%}): estimates"
                    " may miss by more than their range says"
                )
        if self.n_jobs < FEW_JOBS:
            said.append(
                f"FEW JOBS: {self.n_jobs} in the history (fewer than {FEW_JOBS}): the range"
                " is likely narrower than the jobs' real spread"
            )
        return said


def _finite(value: object) -> TypeGuard[float]:
    """A real number that is not NaN or infinite (a quality figure that can be shown)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


WEAK_R2 = 0.5
"""Below this R² of whole-job billable time, a calibration is said to be a weak fit."""
WEAK_MEDIAN_ERROR = 0.25
"""Above this median relative error of whole-job billable time, likewise."""
FEW_JOBS = 20
"""A history of fewer successful jobs is said to be thin."""


_EXPECTED = {
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "an object",
    "tuple_type": "a list",
    "list_type": "a list",
    "missing": "a value (the field is required)",
    "extra_forbidden": "no such field (not a calibration field)",
}
"""Pydantic's error types → what the calibration file should hold, in rftcost's words."""

_MAX_LOG = 50.0
"""Largest log-scale coefficient, offset or residual taken as real: e^50 ≈ 5×10^21 seconds or
tokens per unit, far beyond any run, so a larger one is a damaged file."""


def _shown(value: Any) -> str:
    """A value of the file as it reads (text quoted, at most 60 characters)."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _out_of_range(calibration: Calibration) -> tuple[str, Any, str] | None:
    """The first field whose value the estimator cannot use: (its path, value, what is
    expected), or ``None``. Pydantic checks the types; these are the ranges."""

    def bad_number(value: Any, *, low: float = -_MAX_LOG, high: float = _MAX_LOG) -> bool:
        return not (
            isinstance(value, int | float) and math.isfinite(value) and low <= value <= high
        )

    in_log = f"a finite number within ±{_MAX_LOG:g} (log scale)"
    for key, share in calibration.cached_share.items():
        if bad_number(share, low=0.0, high=1.0):
            return f"cached_share.{key}", share, "a share between 0 and 1 (cached of input tokens)"
    for phase, share in calibration.phase_shares.items():
        if phase not in TRAIN_PHASES:
            return f"phase_shares.{phase}", share, f"a phase among {', '.join(TRAIN_PHASES)}"
        if bad_number(share, low=0.0, high=1.0):
            return f"phase_shares.{phase}", share, "a share between 0 and 1 of training time"
    total = sum(calibration.phase_shares.values())
    if calibration.phase_shares and abs(total - 1.0) > 1e-6:
        return "phase_shares", calibration.phase_shares, "shares that add up to 1"
    for name, fit in calibration.components.items():
        at = f"components.{name}"
        if len(fit.coefficients) != len(fit.features):
            return (
                f"{at}.coefficients",
                fit.coefficients,
                f"{len(fit.features)} values (one per feature)",
            )
        for index, value in enumerate(fit.coefficients):
            if bad_number(value):
                return f"{at}.coefficients.{index}", value, in_log
        size = len(fit.features)
        if fit.covariance and (
            len(fit.covariance) != size or any(len(row) != size for row in fit.covariance)
        ):
            return f"{at}.covariance", fit.covariance, f"a {size}×{size} matrix (or empty)"
        for i, row in enumerate(fit.covariance):
            for j, value in enumerate(row):
                if not (isinstance(value, int | float) and math.isfinite(value)):
                    return f"{at}.covariance.{i}.{j}", value, "a finite number"
            # A fit's own covariance (pinv) may hold a variance of -1e-18: rounding, not data.
            if row and row[i] < -1e-9:
                return f"{at}.covariance.{i}.{i}", row[i], "a variance ≥ 0"
        settings = ", ".join(_SETTINGS)
        for index, feature in enumerate(fit.features):
            if not _known_feature(feature):
                return (
                    f"{at}.features.{index}",
                    feature,
                    f"intercept, log_work^2, log_<setting> or <category>=<level>[*log_work]"
                    f" (settings: {settings}; categories: {', '.join(_CATEGORICAL)})",
                )
        for feature, slope in fit.fixed.items():
            if not (feature.startswith("log_") and feature[4:] in _SETTINGS):
                return f"{at}.fixed.{feature}", slope, f"log_<setting> (settings: {settings})"
            if bad_number(slope):
                return f"{at}.fixed.{feature}", slope, in_log
        for setting in fit.work:
            if setting not in WORK_SETTINGS:
                return f"{at}.work", list(fit.work), f"settings among {', '.join(WORK_SETTINGS)}"
        for category, level in fit.references.items():
            if category not in _CATEGORICAL:
                return f"{at}.references.{category}", level, f"one of {', '.join(_CATEGORICAL)}"
        if bad_number(fit.work_center):
            return f"{at}.work_center", fit.work_center, in_log
        low, high = fit.work_range
        if bad_number(low) or bad_number(high) or low > high:
            return (
                f"{at}.work_range",
                list(fit.work_range),
                f"[low, high] with low ≤ high, {in_log}",
            )
        if bad_number(fit.residual_sd, low=0.0):
            return f"{at}.residual_sd", fit.residual_sd, f"a spread ≥ 0 within {_MAX_LOG:g}"
        if fit.r2 is not None and not math.isfinite(fit.r2):
            return f"{at}.r2", fit.r2, "a finite number (or null)"
        if fit.n_jobs < 0:
            return f"{at}.n_jobs", fit.n_jobs, "a count ≥ 0"
    if calibration.n_jobs < 0:
        return "n_jobs", calibration.n_jobs, "a count ≥ 0"
    for reason, count in calibration.n_skipped.items():
        if count < 0:
            return f"n_skipped.{reason}", count, "a count ≥ 0"
    for column in calibration.residual_columns:
        if column not in calibration.components:
            return "residual_columns", column, "a component of the calibration"
    width = len(calibration.residual_columns)
    for row_index, residual_row in enumerate(calibration.residuals):
        if len(residual_row) != width:
            return (
                f"residuals.{row_index}",
                list(residual_row),
                f"{width} values (one per residual column)",
            )
        for index, residual in enumerate(residual_row):
            if residual is not None and bad_number(residual):
                return f"residuals.{row_index}.{index}", residual, f"null or {in_log}"
    for index, column in enumerate(calibration.residual_columns):
        # A column drawn from (residual_columns) needs one value to draw.
        if calibration.residuals and all(row[index] is None for row in calibration.residuals):
            return f"residuals (column {column})", None, "at least one number in each column"
    return None


_SETTINGS = tuple(dict.fromkeys((*_NUMERIC_TRAIN, *_NUMERIC_VALID)))
"""The numeric settings a fit's ``log_<setting>`` terms may name (``estimate._values``)."""


def _known_feature(feature: str) -> bool:
    """Whether ``design`` can evaluate ``feature`` for a run's settings."""
    if feature in ("intercept", "log_work^2"):
        return True
    if feature.startswith("log_"):
        return feature[4:] in _SETTINGS
    term, _, by_work = feature.partition("*")
    category, equals, _ = term.partition("=")
    return bool(equals) and category in _CATEGORICAL and by_work in ("", "log_work")


def _skipped_text(skipped: Mapping[str, int]) -> str:
    parts = [f"{count} {reason}" for reason, count in skipped.items() if count]
    return f" (not used: {', '.join(parts)})" if parts else ""


# --- priors ----------------------------------------------------------------------------------

# Documented guesses used without a calibration and for levels a history has not seen.
_PRIOR_EFFORT_TIME = {"low": math.log(0.7), "medium": 0.0, "high": math.log(1.6)}
_PRIOR_EFFORT_VALIDATION = {"low": math.log(0.6), "medium": 0.0, "high": math.log(1.8)}
_PRIOR_EFFORT_TOKENS = {"low": 0.0, "medium": 0.0, "high": 0.0}
_PRIOR_GRADER_TIME = {
    "string_check": math.log(0.8),
    "text_similarity": math.log(0.85),
    "python": math.log(1.0),
    "model": math.log(1.3),
    "reasoning_model": math.log(2.5),
    "multi": math.log(1.4),
}


def _grader_class(key: str) -> str:
    if key.startswith("multi"):
        return "multi"
    if ":" in key:
        return "reasoning_model" if is_reasoning_grader(key) else "model"
    return key if key in _PRIOR_GRADER_TIME else "python"


def _prior_ratio(component: str, category: str, level: str, reference: str) -> tuple[float, float]:
    """Log ratio of ``level`` to ``reference`` from the priors, and its uncertainty."""
    if category == "reasoning_effort":
        table = (
            _PRIOR_EFFORT_TOKENS
            if "tokens" in component
            else _PRIOR_EFFORT_VALIDATION
            if component.startswith("valid")
            else _PRIOR_EFFORT_TIME
        )
        return table.get(level, 0.0) - table.get(reference, 0.0), 0.15
    if "seconds" in component:
        return (
            _PRIOR_GRADER_TIME[_grader_class(level)] - _PRIOR_GRADER_TIME[_grader_class(reference)],
            0.3,
        )
    if "output" in component:
        ratio = (
            math.log(14.0)
            if is_reasoning_grader(level) and not is_reasoning_grader(reference)
            else 0.0
        )
        if is_reasoning_grader(reference) and not is_reasoning_grader(level):
            ratio = -math.log(14.0)
        return ratio, 0.4
    return 0.0, 0.3


def _prior_fit(
    name: str, at_reference: float, slopes: Mapping[str, tuple[float, float]], sd: float
) -> ComponentFit:
    """A hand-written fit: ``at_reference`` is log(y) at the reference settings.

    ``slopes`` maps a setting to (slope, its reference value). The intercept's
    uncertainty (0.35) is at the reference run, each slope's is 0.15, so that a
    plan near the reference is not made wider by the slopes.
    """
    features = ("intercept", *(f"log_{s}" for s in slopes))
    intercept = at_reference - sum(b * math.log(ref) for b, ref in slopes.values())
    coefficients = (intercept, *(b for b, _ in slopes.values()))
    k = len(features)
    jacobian = np.eye(k)
    for index, (_, ref) in enumerate(slopes.values(), start=1):
        jacobian[0, index] = -math.log(ref)
    base = np.diag([0.35**2, *(0.15**2 for _ in slopes)])
    covariance = jacobian @ base @ jacobian.T
    return ComponentFit(
        name=name,
        unit=COMPONENTS[name][0],
        features=features,
        coefficients=coefficients,
        covariance=tuple(tuple(float(v) for v in row) for row in covariance),
        references={"reasoning_effort": "medium", "grader": "model:gpt-4.1-mini"},
        residual_sd=sd,
        r2=None,
        n_jobs=0,
    )


def _build_prior() -> Calibration:
    # Reference run: batch 16, compute_multiplier 1, medium effort, a gpt-4.1-mini model
    # grader, 100 validation examples sampled once. The figures follow the time model that
    # rftcost documents for its simulator (rftcost.simulate.TimeModel: 4 rollouts per example,
    # ~1.5 s of rollout and ~0.6 s of update per sample, 1,200 grader input and 25 output
    # tokens per graded sample): a step takes about 3 minutes, a validation run about 2. They
    # are guesses, not measurements of OpenAI's service, hence the wide spread.
    train = {"batch_size": (0.8, 16.0), "compute_multiplier": (0.8, 1.0)}
    valid = {
        "n_valid_examples": (0.9, 100.0),
        "eval_samples": (0.9, 1.0),
        "compute_multiplier": (0.0, 1.0),
    }
    train_tokens = {"batch_size": (1.0, 16.0), "compute_multiplier": (1.0, 1.0)}
    valid_tokens = {
        "n_valid_examples": (1.0, 100.0),
        "eval_samples": (1.0, 1.0),
        "compute_multiplier": (0.0, 1.0),
    }
    samples = 16 * 4
    components = {
        "train_seconds_per_step": _prior_fit("train_seconds_per_step", math.log(170), train, 0.4),
        "valid_seconds_per_run": _prior_fit("valid_seconds_per_run", math.log(120), valid, 0.4),
        "train_input_tokens_per_step": _prior_fit(
            "train_input_tokens_per_step", math.log(samples * 1200), train_tokens, 0.4
        ),
        "train_output_tokens_per_step": _prior_fit(
            "train_output_tokens_per_step", math.log(samples * 25), train_tokens, 0.4
        ),
        "valid_input_tokens_per_run": _prior_fit(
            "valid_input_tokens_per_run", math.log(100 * 1200), valid_tokens, 0.4
        ),
        "valid_output_tokens_per_run": _prior_fit(
            "valid_output_tokens_per_run", math.log(100 * 25), valid_tokens, 0.4
        ),
    }
    return Calibration(
        calibrated=False,
        created_at="built-in",
        n_jobs=0,
        components=components,
        cached_share={"*": 0.0},
        phase_shares={"rollout": 0.6, "grading": 0.1, "update": 0.3},
        notes=(
            "built-in priors, not fitted on any job: a step of 16 examples ≈ 3 min, a"
            " validation run of 100 examples ≈ 2 min, ~1,200 grader input and ~25 output tokens"
            " per graded sample (×14 output for a reasoning grader), no cached tokens;"
            " run-to-run spread 0.4 (log) plus uncertain slopes, so P10-P90 spans about"
            " ×0.5 to ×2",
        ),
    )


PRIOR: Calibration = _build_prior()
"""Built-in priors (documented guesses, wide range) used without a calibration."""


# --- measuring past jobs ---------------------------------------------------------------------


def job_measurements(bill: Any) -> tuple[Any, dict[str, int]]:
    """Per successful job with settings: steps, runs, seconds and tokens (one row per job).

    Returns the frame and the count of jobs left out, by reason.
    """
    jobs = bill.timeline.jobs
    status = bill.jobs.set_index("job")["status"].reindex(jobs.index)
    skipped: dict[str, int] = {}
    succeeded = status == "succeeded"
    skipped["not succeeded"] = int((~succeeded).sum())
    # An OpenAI export records batch_size and n_epochs (the job object's
    # method.reinforcement.hyperparameters) but no example count: a finished job's steps
    # (its metrics events) stand for it, n_train ≈ steps × batch_size / n_epochs.
    needed = ["batch_size", "n_epochs"]
    has_settings = jobs[needed].notna().all(axis=1)
    skipped["settings not recorded"] = int((succeeded & ~has_settings).sum())
    keep = (succeeded & has_settings).to_numpy(dtype=bool)
    frame = measure_jobs(bill, list(jobs.index[keep]))
    derived = frame["n_train_examples"].isna()
    frame.loc[derived, "n_train_examples"] = (
        frame.loc[derived, "max_step"]
        * frame.loc[derived, "batch_size"]
        / frame.loc[derived, "n_epochs"].clip(lower=1)
    ).round()
    # compute_multiplier "auto" in the job object: the documented default (plan.AUTO_DEFAULTS).
    frame["compute_multiplier"] = frame["compute_multiplier"].fillna(1.0)
    left_out = frame["steps"] <= 0
    skipped["no step_completed events"] = int(left_out.sum())
    # The training fits take the log of these settings (a job's own, for every component): a
    # job with 0 (the log reads accept it) cannot enter them and is left out, named.
    for setting in _NUMERIC_TRAIN:
        unusable = ~left_out & ~_log_usable(frame[setting])
        if unusable.any():  # a reason only where it applies: a clean history's counts as before
            skipped[_not_positive(setting)] = int(unusable.sum())
        left_out |= unusable
    return frame[~left_out].reset_index(drop=True), skipped


def _log_usable(values: Any) -> Any:
    """Whether each value of a setting can enter a fit as a logarithm: finite and above 0."""
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    return np.isfinite(numbers) & (numbers > 0)


def _not_positive(setting: str) -> str:
    """Why a job is left out of every fit (``n_skipped``) for a setting it cannot log."""
    return f"{setting} not a positive finite number"


def measure_jobs(bill: Any, codes: Sequence[int]) -> Any:
    """Steps, validation runs, seconds and grader tokens of the given jobs (codes of ``bill``).

    Training seconds are the union of billable phases other than validation;
    validation seconds what validation adds to that union (R1). Time lost to
    failures and rollbacks is included, as are the steps redone after it.
    """
    import pandas as pd

    timeline = bill.timeline
    if bill.log is None:
        raise CalibrationError("the bill holds no events (bill the logs with rftcost.bill)")
    events = bill.log.events
    billable = bill.jobs["billable_ns"].fillna(0).to_numpy(dtype="int64")
    if (timeline.pieces.empty and bool((billable > 0).any())) or (
        events.empty and bill.log.accepted > 0
    ):
        # A bill made in buckets keeps amounts, not the phases, steps and grader usage
        # event by event measured here: it would measure no time, step or token, silently.
        raise CalibrationError(
            "the bill was made in buckets, which keeps amounts but not the events and time "
            "line measured here; bill the logs at once: rftcost.bill(..., buckets=None, "
            "keep_timeline=True)"
        )
    frame = timeline.jobs.loc[list(codes)].copy()
    step_events = events.loc[events["event"] == "step_completed", ["job_id", "step"]]
    ids = frame["job_id"].astype(str)
    counts = step_events["job_id"].astype(str).value_counts()
    highest = (
        step_events.assign(job_id=step_events["job_id"].astype(str)).groupby("job_id")["step"].max()
    )
    frame["steps"] = counts.reindex(ids).fillna(0).to_numpy(dtype="float64")
    frame["max_step"] = highest.reindex(ids).fillna(0).to_numpy(dtype="float64")

    intervals = timeline.intervals
    intervals = intervals[intervals["billable"] & intervals["job"].isin(frame.index)]
    all_union = _union(intervals, ["job"])
    train_union = _union(intervals[intervals["phase"] != "validation"], ["job"])
    valid_islands = _union(intervals[intervals["phase"] == "validation"], ["job"])
    phase_union = _union(intervals[intervals["phase"].isin(TRAIN_PHASES)], ["job", "phase"])

    def length(frame_: pd.DataFrame, keys: list[str]) -> pd.Series:
        return (frame_["end"] - frame_["start"]).groupby([frame_[k] for k in keys]).sum()

    total_ns = length(all_union, ["job"]).reindex(frame.index, fill_value=0)
    train_ns = length(train_union, ["job"]).reindex(frame.index, fill_value=0)
    frame["train_seconds"] = train_ns.to_numpy() / _NS
    frame["valid_seconds"] = (total_ns - train_ns).to_numpy() / _NS
    runs = valid_islands.groupby("job").size() if len(valid_islands) else pd.Series(dtype="int64")
    frame["valid_runs"] = runs.reindex(frame.index, fill_value=0).to_numpy(dtype="float64")
    phases = (
        length(phase_union, ["job", "phase"]).unstack(fill_value=0) if len(phase_union) else None
    )
    for phase in TRAIN_PHASES:
        values = (
            phases[phase].reindex(frame.index, fill_value=0)
            if phases is not None and phase in phases
            else pd.Series(0, index=frame.index)
        )
        frame[f"{phase}_seconds"] = values.to_numpy() / _NS

    usage = timeline.usage
    usage = usage[usage["job"].isin(frame.index)]
    in_valid = _inside(usage, valid_islands)
    for prefix, mask in (("train", ~in_valid), ("valid", in_valid)):
        part = usage[mask.to_numpy(dtype=bool)]
        sums = part.groupby("job")[["input_tokens", "cached_input_tokens", "output_tokens"]].sum()
        sums = sums.reindex(frame.index, fill_value=0).fillna(0)
        frame[f"{prefix}_input_tokens"] = sums["input_tokens"].to_numpy(dtype="float64")
        frame[f"{prefix}_cached_tokens"] = sums["cached_input_tokens"].to_numpy(dtype="float64")
        frame[f"{prefix}_output_tokens"] = sums["output_tokens"].to_numpy(dtype="float64")
    frame["grader"] = [
        grader_key(t, m) for t, m in zip(frame["grader_type"], frame["grader_model"], strict=True)
    ]
    effort = frame["reasoning_effort"].astype("string").fillna("medium")
    frame["reasoning_effort"] = effort.where(effort != "default", "medium").astype(str)
    defaults = {"n_valid_examples": 0.0, "eval_samples": 1.0}
    for column in (
        "batch_size",
        "compute_multiplier",
        "n_epochs",
        "n_train_examples",
        "n_valid_examples",
        "eval_samples",
        "eval_interval",
    ):
        values = frame[column].astype("Float64")
        if column in defaults:
            values = values.fillna(defaults[column])
        frame[column] = values.astype("float64")
    return frame


def _union(intervals: Any, keys: list[str]) -> Any:
    """Merge overlapping or touching intervals within each key group (R1)."""
    frame = intervals.loc[intervals["end"] > intervals["start"], [*keys, "start", "end"]]
    frame = frame.sort_values([*keys, "start"], kind="stable").reset_index(drop=True)
    if frame.empty:
        return frame
    reach = frame.groupby(keys, sort=False, observed=True)["end"].cummax()
    previous = reach.groupby([frame[k] for k in keys], sort=False, observed=True).shift(1)
    island = (previous.isna() | (frame["start"] > previous)).cumsum()
    merged = frame.groupby(island, sort=False).agg(
        **{k: (k, "first") for k in keys}, start=("start", "min"), end=("end", "max")
    )
    return merged.reset_index(drop=True)


def _inside(usage: Any, islands: Any) -> Any:
    """Whether each usage event lies inside one of its job's islands ``[start, end]``."""
    import pandas as pd

    if usage.empty or islands.empty:
        return pd.Series(False, index=usage.index)
    left = usage[["job", "ts"]].reset_index().sort_values("ts")
    right = islands.sort_values("start")
    merged = pd.merge_asof(
        left, right, left_on="ts", right_on="start", by="job", direction="backward"
    )
    inside = merged["end"].notna() & (merged["ts"] <= merged["end"])
    return pd.Series(inside.to_numpy(), index=merged["index"].to_numpy()).reindex(usage.index)


# --- fitting ---------------------------------------------------------------------------------


def calibrate(
    source: Any,
    *,
    policy: Any = None,
    min_jobs: int = 20,
    allow_constant: bool = False,
    assume_tz: str | None = None,
) -> Calibration:
    """Fit the time and token model on past jobs; raises ``CalibrationError`` if too thin.

    ``source`` is a ``Bill`` or anything ``rftcost.bill`` reads (paths, an
    ``EventLog``, a frame of events). Only successful jobs whose ``job_created``
    records their settings are used (a job whose batch_size or compute_multiplier is not
    above 0 is left out and counted in ``n_skipped``: the fit takes their logs); at least
    ``min_jobs`` are needed, and the settings each fit depends on (``REQUIRED_VARIATION``)
    must vary across them, unless ``allow_constant``: then the prior's slope is used for a
    constant one.
    """
    from rftcost.billing import Bill
    from rftcost.engines import bill

    if isinstance(source, Bill):
        result = source
        sources: tuple[str, ...] = tuple(source.log.files) if source.log is not None else ()
    else:
        # At once, whatever its size: calibration measures events and the time line, which
        # a bill made in buckets does not keep (measure_jobs); memory grows with the history.
        result = bill(source, policy=policy, assume_tz=assume_tz, buckets=None, keep_timeline=True)
        sources = tuple(result.log.files) if result.log is not None else ()
    frame, skipped = job_measurements(result)
    if len(frame) < min_jobs:
        raise CalibrationError(
            f"too little history: {len(frame)} successful job(s) with recorded settings"
            f"{_skipped_text(skipped)}; a calibration needs at least {min_jobs}. "
            "Estimate without --calibration (built-in priors, wide range) or add more logs"
        )
    notes: list[str] = []
    fits: dict[str, ComponentFit] = {}
    residual_columns: list[str] = []
    residual_values: list[FloatArray] = []
    fitted: dict[str, FloatArray] = {}
    for name, (_unit, numeric) in COMPONENTS.items():
        target, rows = _target(frame, name)
        fit, residuals, note, fitted_log = _fit_component(
            name, frame, target, rows, numeric, allow_constant=allow_constant
        )
        if note:
            notes.extend(note)
        if fit is None:
            continue
        fits[name] = fit
        fitted[name] = fitted_log
        residual_columns.append(name)
        residual_values.append(residuals)
    if "train_seconds_per_step" not in fits:
        raise CalibrationError(f"cannot fit training time: {_why_no_training_fit(frame, notes)}")
    for name, fit in PRIOR.components.items():
        if name not in fits:
            fits[name] = fit
            notes.append(f"{name}: no usable history, built-in prior used")
    residual_matrix = (
        np.column_stack(residual_values) if residual_values else np.zeros((len(frame), 0))
    )
    residual_matrix = residual_matrix[~np.isnan(residual_matrix).all(axis=1)]
    if len(residual_matrix) > MAX_RESIDUAL_ROWS:
        # A large history keeps a fixed random sample of its jobs' residual vectors.
        picked = np.random.default_rng(0).choice(
            len(residual_matrix), MAX_RESIDUAL_ROWS, replace=False
        )
        residual_matrix = residual_matrix[np.sort(picked)]
    kept = tuple(
        tuple(None if math.isnan(v) else round(float(v), 5) for v in row) for row in residual_matrix
    )
    quality: dict[str, dict[str, float | None]] = {
        name: {"r2": fit.r2, "residual_sd": fit.residual_sd, "n_jobs": fit.n_jobs}
        for name, fit in fits.items()
        if fit.n_jobs > 0  # fitted, not a prior
    }
    quality["job_billable_seconds"] = dict(_job_level_quality(frame, fitted))
    return Calibration(
        calibrated=True,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        policy=result.policy.name,
        sources=sources,
        n_jobs=len(frame),
        n_skipped={k: v for k, v in skipped.items() if v},
        components=fits,
        residuals=kept,
        residual_columns=tuple(residual_columns),
        cached_share=_cached_shares(frame),
        phase_shares=_phase_shares(frame),
        seen=_seen(frame),
        quality=quality,
        notes=tuple(notes),
    )


def _why_no_training_fit(frame: Any, notes: list[str]) -> str:
    """What kept the training time from a fit: its component's notes (too few jobs for
    the settings that vary, jobs left out), else how few jobs hold steps and time."""
    name = "train_seconds_per_step"
    said = [
        note.removeprefix(f"{name}: ").removesuffix(", prior used")
        for note in notes
        if note.startswith(f"{name}: ")
    ]
    if said:
        return "; ".join(said) + "; add jobs to the history, or estimate without --calibration"
    usable = int(np.count_nonzero(_target(frame, name)[1]))
    if not usable:
        return "no job has both steps and billable time"
    return f"{usable} job(s) with steps and billable time, a fit needs at least 5"


def _target(frame: Any, name: str) -> tuple[FloatArray, Any]:
    """The per-unit quantity of a component and the jobs where it is defined."""
    steps = frame["steps"].to_numpy(dtype="float64")
    runs = frame["valid_runs"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "train_seconds_per_step":
            y = frame["train_seconds"].to_numpy(dtype="float64") / steps
        elif name == "valid_seconds_per_run":
            y = frame["valid_seconds"].to_numpy(dtype="float64") / runs
        else:
            phase, kind = name.split("_")[0], name.split("_")[1]
            units = steps if phase == "train" else runs
            y = frame[f"{phase}_{kind}_tokens"].to_numpy(dtype="float64") / units
    rows = np.isfinite(y) & (y > 0)
    if "tokens" in name:
        rows &= frame["grader"].str.contains(":").to_numpy(dtype=bool)
    return y, rows


def _fit_component(
    name: str,
    frame: Any,
    target: FloatArray,
    rows: Any,
    numeric: Sequence[str],
    *,
    allow_constant: bool,
) -> tuple[ComponentFit | None, FloatArray, list[str], FloatArray]:
    """Least squares of log(target) on the settings; residuals aligned with ``frame``."""
    notes: list[str] = []
    residuals = np.full(len(frame), np.nan)
    fitted = np.full(len(frame), np.nan)
    rows = np.asarray(rows, dtype=bool).copy()
    # A setting entering as a log must be above 0 (a validated job may hold n_valid_examples 0
    # and still validate): such a job is left out of this component only.
    for setting in numeric:
        unusable = ~_log_usable(frame[setting])
        if bool((rows & unusable).any()):
            notes.append(
                f"{name}: {int((rows & unusable).sum())} job(s) left out, their {setting}"
                " is not a positive finite number"
            )
        rows &= ~unusable
    # Levels seen in fewer than _MIN_CATEGORY_JOBS jobs cannot be fitted: leave those jobs out.
    for category in _CATEGORICAL:
        levels = frame[category].astype(str)
        counts = levels[rows].value_counts()
        rare = levels.map(counts).fillna(0).to_numpy() < _MIN_CATEGORY_JOBS
        if bool((rows & rare).any()):
            notes.append(
                f"{name}: {int((rows & rare).sum())} job(s) left out, their {category} has fewer"
                f" than {_MIN_CATEGORY_JOBS} jobs"
            )
        rows &= ~rare
    used = frame[rows]
    n = len(used)
    if n < 5:
        if n:  # some history, too little to fit: said (none at all is said by the caller)
            notes.append(f"{name}: {n} job(s) to fit, at least 5 needed, prior used")
        return None, residuals, notes, fitted
    prior = PRIOR.components[name]
    prior_slopes = dict(zip(prior.features, prior.coefficients, strict=True))
    columns: list[FloatArray] = [np.ones(n)]
    features: list[str] = ["intercept"]
    fixed: dict[str, float] = {}
    offset = np.zeros(n)
    for setting in numeric:
        values = used[setting].to_numpy(dtype="float64")
        logs = np.log(values)
        if np.ptp(logs) < 1e-9:
            required = setting in REQUIRED_VARIATION.get(name, ())
            if required and not allow_constant:
                raise CalibrationError(
                    f"no variation in {setting} (every one of the {n} jobs used {values[0]:g}): "
                    f"the fit cannot tell how {name.replace('_', ' ')} grows with it."
                    " Calibrate on a "
                    f"history where {setting} varies, or pass --allow-constant to use the built-in "
                    f"prior slope ({prior_slopes[f'log_{setting}']:g}) for it"
                )
            slope = prior_slopes[f"log_{setting}"]
            fixed[f"log_{setting}"] = slope
            offset += slope * logs
            if required:
                notes.append(
                    f"{name}: {setting} constant ({values[0]:g}), prior slope {slope:g} used"
                )
            continue
        columns.append(logs)
        features.append(f"log_{setting}")
    work_settings = CURVED.get(name, ()) if n >= _CURVATURE_MIN_JOBS else ()
    work = np.zeros(n)
    center = 0.0
    work_range = (0.0, 0.0)
    if work_settings:
        raw = sum(np.log(used[s].to_numpy(dtype="float64")) for s in work_settings)
        center = float(np.mean(raw))
        work = raw - center
        work_range = (float(work.min()), float(work.max()))
        if np.ptp(work) > 1e-9:
            columns.append(work**2)
            features.append("log_work^2")
        else:
            work_settings = ()
    references: dict[str, str] = {}
    for category in _CATEGORICAL:
        levels = used[category].astype(str)
        counts = levels.value_counts()
        reference = str(counts.index[0])
        references[category] = reference
        for level in sorted(str(v) for v in counts.index):
            if level != reference:
                dummy = (levels == level).to_numpy(dtype="float64")
                columns.append(dummy)
                features.append(f"{category}={level}")
                if work_settings and category == "reasoning_effort":
                    columns.append(dummy * work)
                    features.append(f"{category}={level}*log_work")
    x = np.column_stack(columns)
    y = np.log(target[rows])
    if n <= x.shape[1] + 2:
        notes.append(f"{name}: too few jobs ({n}) for {x.shape[1]} parameters, prior used")
        return None, residuals, notes, fitted
    z = y - offset
    beta, *_ = np.linalg.lstsq(x, z, rcond=None)
    # A work setting never makes a run cheaper: a negative slope (noise) is fixed at 0, refitted.
    negative = [
        i
        for i, f in enumerate(features)
        if f.startswith("log_") and f[4:] in WORK_SETTINGS and beta[i] < 0
    ]
    if negative:
        for i in negative:
            fixed[features[i]] = 0.0
            notes.append(f"{name}: fitted slope of {features[i][4:]} was negative, set to 0")
        keep = [i for i in range(len(features)) if i not in negative]
        features = [features[i] for i in keep]
        x = x[:, keep]
        beta, *_ = np.linalg.lstsq(x, z, rcond=None)
    resid = z - x @ beta
    dof = max(n - x.shape[1], 1)
    sigma2 = float(resid @ resid) / dof
    inverse = np.linalg.pinv(x.T @ x)
    covariance = sigma2 * inverse
    r2 = _r_squared(y, float(resid @ resid))
    # Kept for resampling: residuals / sqrt(1 - leverage), which have the spread of a new
    # job's error (a fitted residual is smaller: the fit leaned towards its own job).
    leverage = np.clip(np.einsum("ij,jk,ik->i", x, inverse, x), 0.0, 0.99)
    fitted[np.flatnonzero(rows)] = y - resid
    modified = resid / np.sqrt(1.0 - leverage)
    residuals[np.flatnonzero(rows)] = modified - modified.mean()
    fit = ComponentFit(
        name=name,
        unit=COMPONENTS[name][0],
        features=tuple(features),
        coefficients=tuple(float(b) for b in beta),
        covariance=tuple(tuple(float(v) for v in row) for row in covariance),
        fixed=fixed,
        work=tuple(work_settings),
        work_center=center,
        work_range=work_range,
        references=references,
        residual_sd=math.sqrt(sigma2),
        r2=r2,
        n_jobs=n,
    )
    return fit, residuals, notes, fitted


def _r_squared(values: FloatArray, residual_sum_of_squares: float) -> float | None:
    """1 - RSS / TSS; ``None`` when the values do not vary beyond rounding noise (R² is
    undefined: identical jobs would otherwise get 1.000 or 0.000 by the noise's sign)."""
    total = float(((values - values.mean()) ** 2).sum())
    scale = float(np.abs(values).max()) if len(values) else 0.0
    if total <= len(values) * (1e-9 * max(scale, 1.0)) ** 2:
        return None
    return 1.0 - residual_sum_of_squares / total


def _job_level_quality(frame: Any, fitted: Mapping[str, FloatArray]) -> dict[str, float]:
    """In-sample fit of each job's billable seconds (steps × per step + runs × per run).

    Jobs that a time fit left out (a rare grader or effort) are not counted.
    """
    runs = frame["valid_runs"].to_numpy(dtype="float64")
    train = fitted["train_seconds_per_step"]
    valid = fitted.get("valid_seconds_per_run", np.full(len(frame), np.nan))
    usable = np.isfinite(train) & ((runs == 0) | np.isfinite(valid))
    if not usable.any():
        return {"r2": math.nan, "median_abs_rel_error": math.nan, "n_jobs": 0}
    guess = frame["steps"].to_numpy(dtype="float64") * np.exp(train)
    guess = guess + np.where(runs > 0, runs * np.exp(np.nan_to_num(valid)), 0.0)
    actual = (frame["train_seconds"] + frame["valid_seconds"]).to_numpy(dtype="float64")
    actual, guess = actual[usable], guess[usable]
    fitted_r2 = _r_squared(actual, float(((actual - guess) ** 2).sum()))
    r2 = math.nan if fitted_r2 is None else fitted_r2
    relative = np.abs(guess - actual) / np.where(actual > 0, actual, 1.0)
    return {"r2": r2, "median_abs_rel_error": float(np.median(relative)), "n_jobs": len(actual)}


def _cached_shares(frame: Any) -> dict[str, float]:
    graded = frame[frame["grader"].str.contains(":")]
    shares: dict[str, float] = {}
    inputs = graded["train_input_tokens"] + graded["valid_input_tokens"]
    cached = graded["train_cached_tokens"] + graded["valid_cached_tokens"]
    total_in = float(inputs.sum())
    shares["*"] = float(cached.sum()) / total_in if total_in > 0 else 0.0
    for key, group in graded.groupby("grader"):
        group_in = float((group["train_input_tokens"] + group["valid_input_tokens"]).sum())
        group_cached = float((group["train_cached_tokens"] + group["valid_cached_tokens"]).sum())
        if group_in > 0:
            shares[str(key)] = group_cached / group_in
    return shares


def _phase_shares(frame: Any) -> dict[str, float]:
    sums = {phase: float(frame[f"{phase}_seconds"].sum()) for phase in TRAIN_PHASES}
    total = sum(sums.values())
    if total <= 0:
        return dict(PRIOR.phase_shares)
    return {phase: value / total for phase, value in sums.items()}


def _seen(frame: Any) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {}
    for column in (
        "batch_size",
        "compute_multiplier",
        "n_valid_examples",
        "eval_samples",
        "eval_interval",
        "n_train_examples",
        "n_epochs",
    ):
        values = frame[column].dropna()
        if len(values):
            seen[column] = [float(values.min()), float(values.max())]
    for column in _CATEGORICAL:
        seen[column] = sorted(str(v) for v in frame[column].dropna().unique())
    return seen
