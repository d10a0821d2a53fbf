"""Plans: the create-job request a user is about to send, read and checked (estimator.md "Input").

A plan is the JSON body of OpenAI's ``POST /v1/fine_tuning/jobs`` for a
reinforcement fine-tuning job::

    {"model": "o4-mini-2025-04-16",
     "training_file": "data/train.jsonl",          # a local path in place of a file id
     "validation_file": "data/valid.jsonl",
     "method": {"type": "reinforcement",
                "reinforcement": {"grader": {"type": "score_model", "model": "gpt-4.1-mini", ...},
                                  "hyperparameters": {"batch_size": "auto", "eval_interval": 5}}},
     "metadata": {"team": "search", "project": "ranker"}}

``load_plan`` checks it the way the API would (grader types, hyperparameter
types and ranges from OpenAI's OpenAPI description), counts examples and prompt
tokens in the local JSONL files, checks that they are RFT data (each line a
``messages`` list ending with a ``user`` message), and resolves every ``"auto"``
to the default documented in ``AUTO_DEFAULTS``. Every resolution is recorded in
``Plan.assumptions`` so that an estimate can say what it assumed.

Ranges (OpenAI OpenAPI ``FineTuneReinforcementHyperparameters``): ``batch_size``
integer 1-256, ``n_epochs`` integer 1-50, ``learning_rate_multiplier`` > 0,
``compute_multiplier`` in (0.00001, 10], ``eval_interval`` and ``eval_samples``
integers ≥ 1, ``reasoning_effort`` one of default, low, medium, high. The
description gives ``eval_interval`` and ``eval_samples`` no maximum; rftcost bounds
them (and every integer of the body) at 2,147,483,647, the largest integer the API
documents for this request (``seed``'s maximum), so that an ``eval_samples`` of 1e30
is refused instead of estimated. The request's top-level keys are those of
``CreateFineTuningJobRequest`` (model, training_file, validation_file, suffix ≤ 64
characters, seed 0-2,147,483,647, integrations, metadata ≤ 16 string pairs, method,
and the deprecated top-level hyperparameters); any other key, and any unknown key of
``method``, ``method.reinforcement`` or its hyperparameters, is refused by name, as
the API refuses it. The reinforcement method's grader is one of string_check,
text_similarity, python, score_model or multi (label_model only inside a multi
grader); a model grader's ``sampling_params.reasoning_effort`` is one of the API's
``ReasoningEffort`` values and feeds the grader token prior.

Reading is bounded (issue 13): a plan file over ``MAX_PLAN_BYTES``, a data file that is
not a regular file (``/dev/zero``, a pipe), a line over ``MAX_LINE_BYTES``, bytes that are
not UTF-8 text and JSON nested too deep are each one ``PlanError`` naming the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from rftcost.errors import PlanError
from rftcost.events.json_text import lone_surrogate, lone_surrogate_in

__all__ = [
    "AUTO_DEFAULTS",
    "GRADER_TYPES",
    "GRADER_TYPE_NAMES",
    "HYPERPARAMETERS",
    "DataFileSummary",
    "GraderSpec",
    "Plan",
    "load_plan",
    "parse_grader",
    "plan_from_settings",
    "scan_data_file",
]

GRADER_TYPES: tuple[str, ...] = (
    "string_check",
    "text_similarity",
    "python",
    "score_model",
    "multi",
)
"""Grader types the reinforcement method accepts at the top level."""

_INNER_GRADER_TYPES = (*GRADER_TYPES, "label_model")
"""Grader types allowed inside a multi grader."""
GRADER_TYPE_NAMES = _INNER_GRADER_TYPES
"""Every grader type's name (what a ``--vary grader=`` value names, rather than a model)."""

_MODEL_GRADER_TYPES = ("score_model", "label_model")

REASONING_EFFORTS: tuple[str, ...] = ("low", "medium", "high")
"""Reasoning efforts after ``default`` is resolved."""

AUTO_DEFAULTS: dict[str, Any] = {
    "batch_size": 16,
    "n_epochs": 1,
    "compute_multiplier": 1.0,
    "eval_interval": 10,
    "eval_samples": 1,
    "reasoning_effort": "medium",
}
"""What ``"auto"`` (or an absent hyperparameter) resolves to.

OpenAI does not publish the values its service picks for ``"auto"``; these are
rftcost's documented defaults (and ``"default"`` reasoning effort is o4-mini's
``medium``). An estimate lists each one it used among its assumptions; pass the
values explicitly for a tighter estimate.
"""

HYPERPARAMETERS: tuple[str, ...] = (
    "batch_size",
    "n_epochs",
    "compute_multiplier",
    "eval_interval",
    "eval_samples",
    "reasoning_effort",
    "learning_rate_multiplier",
)
"""Hyperparameters of the reinforcement method."""

API_INT_MAX = 2_147_483_647
"""Largest integer the create-job request documents (``seed``); bounds the open ranges."""
_INT_RANGES: dict[str, tuple[int, int | None]] = {
    "batch_size": (1, 256),
    "n_epochs": (1, 50),
    "eval_interval": (1, API_INT_MAX),
    "eval_samples": (1, API_INT_MAX),
}
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "model",
    "training_file",
    "validation_file",
    "suffix",
    "seed",
    "integrations",
    "metadata",
    "method",
    "hyperparameters",
)
"""Keys of OpenAI's ``CreateFineTuningJobRequest`` (``hyperparameters`` is deprecated)."""
_METHOD_KEYS = ("type", "supervised", "dpo", "reinforcement")
_REINFORCEMENT_KEYS = ("grader", "hyperparameters")
GRADER_REASONING_EFFORTS: tuple[str, ...] = (
    "none",
    "minimal",
    "low",
    "medium",
    "high",
    "xhigh",
    "max",
)
"""The API's ``ReasoningEffort`` values, for a model grader's ``sampling_params``."""
MAX_PLAN_BYTES = 10 * 1024 * 1024
"""A create-job body is small; a larger plan file is refused before it is parsed."""
MAX_LINE_BYTES = 16 * 1024 * 1024
"""Longest data line read (a line with no end, e.g. ``/dev/zero``, is refused)."""
_COMPUTE_MULTIPLIER_RANGE = (0.00001, 10.0)
_MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_CHARS_PER_TOKEN = 4
"""Prompt tokens are approximated as characters / 4 (no tokenizer is bundled)."""
_FROZEN = ConfigDict(frozen=True, extra="forbid")


class GraderSpec(BaseModel):
    """What the estimator needs to know about a grader."""

    model_config = _FROZEN

    type: str
    """Top-level grader type (string_check, text_similarity, python, score_model, multi)."""
    models: tuple[str, ...] = ()
    """Models of the model graders it runs (score_model / label_model, also inside multi)."""
    inner_types: tuple[str, ...] = ()
    """Types of the graders inside a multi grader."""
    prompt_tokens: int = 0
    """Approximate tokens of the model graders' own prompt templates."""
    reasoning_effort: str | None = None
    """``sampling_params.reasoning_effort`` of a model grader, when set."""
    model_efforts: tuple[str | None, ...] = ()
    """Per model in ``models``, its grader's ``sampling_params.reasoning_effort`` (a multi
    grader's graders each have their own); empty: ``reasoning_effort`` for all."""

    def efforts_per_model(self) -> tuple[str | None, ...]:
        """``sampling_params.reasoning_effort`` of the grader running each of ``models``."""
        return self.model_efforts or (self.reasoning_effort,) * len(self.models)

    @property
    def model(self) -> str | None:
        """The (first) grader model, or ``None`` for graders that use no model."""
        return self.models[0] if self.models else None

    @property
    def label(self) -> str:
        """``score_model:gpt-4.1`` style label for tables (``multi:gpt-4o-mini+o3-mini``:
        every model a multi grader runs, each priced at its own rates)."""
        names = dict.fromkeys(self.models)  # in order, once each
        return f"{self.type}:{'+'.join(names)}" if names else self.type


class DataFileSummary(BaseModel):
    """What a local JSONL data file holds."""

    model_config = _FROZEN

    path: str
    """The file."""
    examples: int
    """Lines holding an example."""
    prompt_tokens: int
    """Approximate prompt tokens over all examples (characters / 4)."""

    @property
    def mean_prompt_tokens(self) -> float:
        """Approximate prompt tokens per example."""
        return self.prompt_tokens / self.examples if self.examples else 0.0


class Plan(BaseModel):
    """A run about to be launched, with every ``"auto"`` resolved."""

    model_config = _FROZEN

    model: str
    """Base model to fine-tune."""
    n_train_examples: int
    """Training examples."""
    n_valid_examples: int
    """Validation examples (0: no validation runs)."""
    batch_size: int
    """Examples per step."""
    n_epochs: int
    """Passes over the training set."""
    compute_multiplier: float
    """Multiplier on exploration compute (a setting, never money)."""
    eval_interval: int
    """Steps between validation runs."""
    eval_samples: int
    """Samples per validation example and run."""
    reasoning_effort: str
    """low, medium or high."""
    grader: GraderSpec
    """The grader."""
    data_sharing: bool = False
    """The organisation shares training data (R12 discount)."""
    team: str | None = None
    """From ``metadata.team``."""
    project: str | None = None
    """From ``metadata.project``."""
    train_prompt_tokens: float | None = None
    """Approximate prompt tokens per training example, when the file was read."""
    valid_prompt_tokens: float | None = None
    """Approximate prompt tokens per validation example, when the file was read."""
    source: str | None = None
    """The plan file."""
    assumptions: tuple[str, ...] = ()
    """Each ``"auto"`` or default resolved, each count taken from an option."""

    @property
    def grader_type(self) -> str:
        """Top-level grader type."""
        return self.grader.type

    @property
    def grader_model(self) -> str | None:
        """Grader model (``None`` for string_check, python, ...)."""
        return self.grader.model

    @property
    def steps(self) -> int:
        """Training steps: ceil(n_train_examples × n_epochs / batch_size)."""
        return -(-(self.n_train_examples * self.n_epochs) // self.batch_size)

    @property
    def validation_runs(self) -> int:
        """Validation runs: every ``eval_interval`` steps and after the last step (none
        without validation data): ceil(steps / eval_interval)."""
        if self.n_valid_examples <= 0:
            return 0
        return -(-self.steps // self.eval_interval)

    def with_changes(self, **changes: Any) -> Plan:
        """A copy with settings changed (what-if tables); values are checked like a plan's."""
        data = self.model_dump()
        grader_model = changes.pop("grader_model", None)
        grader_type = changes.pop("grader_type", None)
        grader = self.grader
        if grader_type is not None:
            grader = _grader_of_type(str(grader_type), grader)
        if grader_model is not None:
            grader = _grader_with_model(str(grader_model), grader)
        data["grader"] = grader
        for key, value in changes.items():
            if key not in data:
                raise PlanError(f"unknown setting {_excerpt(key)}")
            data[key] = value
        checked = _check_settings(data, where="what-if")
        return Plan.model_validate(checked)

    def settings(self) -> dict[str, Any]:
        """The run's settings as ``job_created`` columns (event-log.md)."""
        return {
            "model": self.model,
            "team": self.team,
            "project": self.project,
            "data_sharing": self.data_sharing,
            "grader_type": self.grader_type,
            "grader_model": self.grader_model,
            "n_train_examples": self.n_train_examples,
            "n_valid_examples": self.n_valid_examples,
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
            "compute_multiplier": self.compute_multiplier,
            "eval_interval": self.eval_interval,
            "eval_samples": self.eval_samples,
            "reasoning_effort": self.reasoning_effort,
        }


# --- loading --------------------------------------------------------------------------------


def load_plan(
    source: str | Path | Mapping[str, Any],
    *,
    n_train: int | None = None,
    n_valid: int | None = None,
    data_sharing: bool | None = None,
    base_dir: str | Path | None = None,
) -> Plan:
    """Read and check a create-job request; raises ``PlanError`` naming what is wrong.

    ``source`` is a path to the JSON file or the parsed body. Local data files
    are resolved relative to the plan file (or ``base_dir``); ``n_train`` and
    ``n_valid`` replace counting examples in the files (use them when the
    request names uploaded file ids, or to try other sizes).
    """
    where = "<plan>"
    if isinstance(source, Mapping):
        body: Any = dict(source)
        folder = Path(base_dir) if base_dir is not None else Path.cwd()
        _refuse_lone_surrogate(body, where)
    else:
        path = Path(source)
        where = str(path)
        text = _read_plan_text(path)
        body = _parse_json(text, where, what="a plan is the JSON body of POST /v1/fine_tuning/jobs")
        folder = Path(base_dir) if base_dir is not None else path.parent
        found = lone_surrogate_in(text, body)
        if found:
            raise _lone_surrogate_error(f"{where}:{found[1]}", found[0])
    if not isinstance(body, dict):
        raise PlanError(f"{where}: a plan is a JSON object (the create-job request body)")
    _refuse_unknown(body, TOP_LEVEL_KEYS, where, "key")
    assumptions: list[str] = _check_request_fields(body, where)

    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise PlanError(f"{where}: 'model' is required (e.g. \"o4-mini-2025-04-16\")")
    method = body.get("method")
    if not isinstance(method, dict):
        raise PlanError(
            f"{where}: 'method' is required:"
            ' {"type": "reinforcement", "reinforcement": {...}}'
        )
    if method.get("type") != "reinforcement":
        raise PlanError(
            f"{where}: method.type is {_excerpt(method.get('type'))}; rftcost estimates"
            " reinforcement "
            'fine-tuning jobs (method.type = "reinforcement")'
        )
    _refuse_unknown(method, _METHOD_KEYS, where, "key of method")
    reinforcement = method.get("reinforcement")
    if not isinstance(reinforcement, dict):
        raise PlanError(f"{where}: method.reinforcement is required (with its grader)")
    _refuse_unknown(reinforcement, _REINFORCEMENT_KEYS, where, "key of method.reinforcement")
    if "grader" not in reinforcement:
        raise PlanError(f"{where}: method.reinforcement.grader is required")
    grader = parse_grader(reinforcement["grader"], where=f"{where}: method.reinforcement.grader")
    hyper = _object_or_empty(reinforcement.get("hyperparameters"))
    if not isinstance(hyper, dict):
        raise PlanError(f"{where}: method.reinforcement.hyperparameters must be an object")
    unknown = sorted(set(hyper) - set(HYPERPARAMETERS))
    if unknown:
        raise PlanError(
            f"{where}: unknown hyperparameter {_excerpt(unknown[0])}; known:"
            f" {', '.join(HYPERPARAMETERS)}"
        )

    settings: dict[str, Any] = {"model": model.strip(), "grader": grader}
    for name in ("batch_size", "n_epochs", "compute_multiplier", "eval_interval", "eval_samples"):
        value = hyper.get(name, "auto")
        if value == "auto" or value is None:
            settings[name] = AUTO_DEFAULTS[name]
            assumptions.append(f'{name} "auto" → {AUTO_DEFAULTS[name]} (rftcost default)')
        else:
            settings[name] = value
    effort = hyper.get("reasoning_effort", "default")
    if effort in ("default", "auto", None):
        settings["reasoning_effort"] = AUTO_DEFAULTS["reasoning_effort"]
        assumptions.append(
            f'reasoning_effort "{effort or "default"}" → {AUTO_DEFAULTS["reasoning_effort"]}'
            " (o4-mini's default)"
        )
    else:
        settings["reasoning_effort"] = effort
    lr = hyper.get("learning_rate_multiplier", "auto")
    if lr not in ("auto", None) and (
        isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf
    ):
        raise PlanError(
            f'{where}: hyperparameter learning_rate_multiplier must be "auto" or a number > 0,'
            f" got {_excerpt(lr)}"
        )

    train_summary, n_train_value = _examples(
        body.get("training_file"), n_train, "training_file", "--n-train", folder, where
    )
    valid_summary, n_valid_value = _examples(
        body.get("validation_file"),
        n_valid,
        "validation_file",
        "--n-valid",
        folder,
        where,
        required=False,
    )
    if n_train is not None:
        assumptions.append(f"{n_train} training examples (from --n-train)")
    if n_valid is not None:
        assumptions.append(f"{n_valid} validation examples (from --n-valid)")
    elif valid_summary is None and body.get("validation_file") is None:
        assumptions.append("no validation_file: no validation runs")
    settings["n_train_examples"] = n_train_value
    settings["n_valid_examples"] = n_valid_value
    if train_summary is not None:
        settings["train_prompt_tokens"] = train_summary.mean_prompt_tokens
    if valid_summary is not None:
        settings["valid_prompt_tokens"] = valid_summary.mean_prompt_tokens

    metadata = _object_or_empty(body.get("metadata"))
    if not isinstance(metadata, dict):
        raise PlanError(f"{where}: metadata must be an object of strings")
    settings["team"] = _optional_str(metadata.get("team"))
    settings["project"] = _optional_str(metadata.get("project"))
    settings["data_sharing"] = bool(data_sharing) if data_sharing is not None else False
    settings["source"] = None if isinstance(source, Mapping) else str(source)
    settings["assumptions"] = tuple(assumptions)
    return Plan.model_validate(_check_settings(settings, where=where))


def _excerpt(value: Any, limit: int = 40) -> str:
    """``repr`` of a rejected value, cut short: a hostile value never floods the screen."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_plan_text(path: Path) -> str:
    """The plan file's text, read with a bound (a device or a huge file is refused)."""
    where = str(path)
    try:
        if path.exists() and not path.is_file():
            raise PlanError(f"{where}: not a regular file; a plan is a JSON file")
        with path.open("rb") as handle:
            data = handle.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanError(f"{where}: cannot read the plan: {exc.strerror or exc}") from exc
    if len(data) > MAX_PLAN_BYTES:
        raise PlanError(
            f"{where}: larger than {MAX_PLAN_BYTES // (1024 * 1024)} MiB; a plan is the small"
            " JSON body of POST /v1/fine_tuning/jobs"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"{where}: not UTF-8 text (byte {exc.start}); a plan is a JSON file"
        ) from exc


def _refuse_lone_surrogate(body: Any, where: str) -> None:
    """A lone surrogate escape (``\\udc80``) parses to no text: a name or setting holding
    one could be written nowhere (``events.json_text``), so the plan is refused."""
    lone = lone_surrogate(body)
    if lone:
        raise _lone_surrogate_error(where, lone)


def _lone_surrogate_error(where: str, lone: str) -> PlanError:
    return PlanError(
        f"{where}: not valid text: a lone surrogate escape {lone}; a plan is the JSON "
        "body of POST /v1/fine_tuning/jobs"
    )


def _parse_json(text: str, where: str, *, what: str) -> Any:
    """``json.loads`` with its failures as one ``PlanError`` (nesting too deep included)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"{where}:{exc.lineno}: not valid JSON ({exc.msg}); {what}") from exc
    except RecursionError as exc:
        raise PlanError(f"{where}: JSON nested too deeply to read; {what}") from exc


def _object_or_empty(value: Any) -> Any:
    """An object as given, ``null`` as an empty one; anything else (``false``, ``0``,
    ``""``, ``[]``) is returned for the caller's "must be an object" refusal, as the
    API refuses it, rather than read as every setting omitted."""
    return {} if value is None else value


def _refuse_unknown(body: Mapping[str, Any], known: tuple[str, ...], where: str, what: str) -> None:
    unknown = sorted(str(k) for k in body if k not in known)
    if unknown:
        raise PlanError(
            f"{where}: unknown {what} {_excerpt(unknown[0])} (the API refuses it); known:"
            f" {', '.join(known)}"
        )


def _check_request_fields(body: Mapping[str, Any], where: str) -> list[str]:
    """The request's fields that do not feed the estimate, checked as the API checks them."""
    notes: list[str] = []
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
        raise PlanError(f"{where}: suffix must be a string of at most 64 characters")
    seed = body.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= API_INT_MAX
    ):
        raise PlanError(f"{where}: seed must be an integer between 0 and {API_INT_MAX}")
    integrations = body.get("integrations")
    if integrations is not None and not isinstance(integrations, list):
        raise PlanError(f"{where}: integrations must be a list")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or len(metadata) > 16:
            raise PlanError(f"{where}: metadata must be an object of at most 16 string pairs")
        for key, value in metadata.items():
            if len(str(key)) > 64 or not isinstance(value, str) or len(value) > 512:
                raise PlanError(
                    f"{where}: metadata {_excerpt(str(key))}: keys are at most 64 characters and"
                    " values strings of at most 512"
                )
    if body.get("hyperparameters") is not None:
        notes.append(
            "top-level hyperparameters (deprecated) not read: reinforcement fine-tuning reads"
            " method.reinforcement.hyperparameters"
        )
    return notes


def plan_from_settings(settings: Mapping[str, Any], *, source: str | None = None) -> Plan:
    """A plan from ``job_created``-style settings (a job in progress, a simulated run).

    Missing settings resolve like ``"auto"`` and are listed among the assumptions.
    """
    assumptions: list[str] = []
    data: dict[str, Any] = {}

    def value(name: str) -> Any:
        raw = settings.get(name)
        if raw is None or (isinstance(raw, float) and math.isnan(raw)) or _is_na(raw):
            return None
        return raw

    data["model"] = str(value("model") or "o4-mini-2025-04-16")
    for name in (
        "batch_size",
        "n_epochs",
        "compute_multiplier",
        "eval_interval",
        "eval_samples",
        "reasoning_effort",
    ):
        raw = value(name)
        if raw is None or raw in ("auto", "default"):
            data[name] = AUTO_DEFAULTS[name]
            assumptions.append(f"{name} not recorded → {AUTO_DEFAULTS[name]} (rftcost default)")
        else:
            data[name] = (
                float(raw)
                if name == "compute_multiplier"
                else (str(raw) if name == "reasoning_effort" else int(raw))
            )
    n_train = value("n_train_examples")
    total_steps = value("total_steps")
    if n_train is None and total_steps is not None:
        # An OpenAI export: metrics events give total_steps, the job object batch_size and
        # n_epochs; the example count is what makes that many steps.
        n_train = int(total_steps) * data["batch_size"] // max(int(data["n_epochs"]), 1)
        assumptions.append(
            f"n_train_examples not recorded → {n_train} (total_steps {int(total_steps)}"
            f" × batch_size {data['batch_size']} / n_epochs {data['n_epochs']})"
        )
    if n_train is None:
        raise PlanError(
            f"{source or 'settings'}: n_train_examples is not recorded; give a plan or --n-train"
        )
    data["n_train_examples"] = int(n_train)
    n_valid = value("n_valid_examples")
    data["n_valid_examples"] = int(n_valid) if n_valid is not None else 0
    if n_valid is None:
        assumptions.append("n_valid_examples not recorded → 0 (no validation runs)")
    grader_type = str(
        value("grader_type") or ("score_model" if value("grader_model") else "python")
    )
    if value("grader_type") is None:
        assumptions.append(f"grader_type not recorded → {grader_type}")
    grader_model = value("grader_model")
    data["grader"] = GraderSpec(
        type=grader_type,
        models=(str(grader_model),) if grader_model is not None else (),
    )
    data["data_sharing"] = bool(value("data_sharing") or False)
    data["team"] = _optional_str(value("team"))
    data["project"] = _optional_str(value("project"))
    data["source"] = source
    data["assumptions"] = tuple(assumptions)
    return Plan.model_validate(_check_settings(data, where=source or "settings"))


def _is_na(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict) else False
    except (TypeError, ValueError):
        return False


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


# --- checking settings ----------------------------------------------------------------------


def _check_settings(data: dict[str, Any], *, where: str) -> dict[str, Any]:
    """Types and ranges of the hyperparameters (OpenAI's OpenAPI description); PlanError if not."""
    for name, (low, high) in _INT_RANGES.items():
        value = data.get(name)
        if isinstance(value, float) and value.is_integer() and abs(value) <= API_INT_MAX:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PlanError(
                f'{where}: hyperparameter {name} must be "auto" or an integer,'
                f" got {_excerpt(value)}"
            )
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            shown = str(value) if len(str(value)) <= 24 else f"{value:.3e}"
            raise PlanError(f"{where}: hyperparameter {name} must be {bounds}, got {shown}")
        data[name] = value
    multiplier = data.get("compute_multiplier")
    if isinstance(multiplier, bool) or not isinstance(multiplier, int | float):
        raise PlanError(
            f'{where}: hyperparameter compute_multiplier must be "auto" or a number,'
            f" got {_excerpt(multiplier)}"
        )
    cm_low, cm_high = _COMPUTE_MULTIPLIER_RANGE
    if not (cm_low < float(multiplier) <= cm_high):
        raise PlanError(
            f"{where}: hyperparameter compute_multiplier must be greater than {cm_low} and at"
            f" most {cm_high:g}, got {multiplier}"
        )
    data["compute_multiplier"] = float(multiplier)
    effort = data.get("reasoning_effort")
    if effort not in REASONING_EFFORTS:
        raise PlanError(
            f"{where}: hyperparameter reasoning_effort must be one of default, low, medium, high;"
            f" got {_excerpt(effort)}"
        )
    for name in ("n_train_examples", "n_valid_examples"):
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PlanError(
                f"{where}: {name} must be a non-negative integer, got {_excerpt(value)}"
            )
    if data["n_train_examples"] < 1:
        raise PlanError(f"{where}: the training set has no examples")
    return data


# --- graders --------------------------------------------------------------------------------


def parse_grader(grader: Any, *, where: str, inner: bool = False) -> GraderSpec:
    """Check a grader object and extract its type, models and prompt size."""
    allowed = _INNER_GRADER_TYPES if inner else GRADER_TYPES
    if not isinstance(grader, dict):
        raise PlanError(f"{where}: a grader is an object with a 'type'")
    kind = grader.get("type")
    if kind not in allowed:
        hint = ""
        if kind == "label_model":
            hint = " (label_model is accepted only inside a multi grader)"
        raise PlanError(
            f"{where}: unknown grader type {_excerpt(kind)}{hint}; known: {', '.join(allowed)}"
        )
    if kind in _MODEL_GRADER_TYPES:
        model = grader.get("model")
        if not isinstance(model, str) or not model.strip():
            raise PlanError(f"{where}: a {kind} grader needs a 'model' (e.g. \"gpt-4.1-mini\")")
        sampling = _object_or_empty(grader.get("sampling_params"))
        if not isinstance(sampling, dict):
            raise PlanError(f"{where}: sampling_params must be an object")
        effort = sampling.get("reasoning_effort")
        if effort is not None and effort not in GRADER_REASONING_EFFORTS:
            raise PlanError(
                f"{where}: sampling_params.reasoning_effort must be one of"
                f" {', '.join(GRADER_REASONING_EFFORTS)}; got {_excerpt(effort)}"
            )
        return GraderSpec(
            type=str(kind),
            models=(model.strip(),),
            prompt_tokens=_approx_tokens(grader.get("input")),
            reasoning_effort=str(effort) if effort is not None else None,
        )
    if kind == "multi":
        inner_graders = grader.get("graders")
        if isinstance(inner_graders, dict) and "type" in inner_graders:
            members = [("graders", inner_graders)]
        elif isinstance(inner_graders, dict):
            members = list(inner_graders.items())
        elif isinstance(inner_graders, list):
            members = [(str(i), g) for i, g in enumerate(inner_graders)]
        else:
            raise PlanError(f"{where}: a multi grader needs 'graders' (an object of named graders)")
        if not members:
            raise PlanError(f"{where}: a multi grader needs at least one grader")
        specs = [
            parse_grader(g, where=f"{where}.graders.{name}", inner=True) for name, g in members
        ]
        models = tuple(m for spec in specs for m in spec.models)
        efforts = [s.reasoning_effort for s in specs if s.reasoning_effort]
        return GraderSpec(
            type="multi",
            models=models,
            inner_types=tuple(s.type for s in specs),
            prompt_tokens=sum(s.prompt_tokens for s in specs),
            reasoning_effort=efforts[0] if efforts else None,
            model_efforts=tuple(e for spec in specs for e in spec.efforts_per_model()),
        )
    if kind == "python" and not isinstance(grader.get("source"), str):
        raise PlanError(f"{where}: a python grader needs its 'source'")
    return GraderSpec(type=str(kind))


def _grader_of_type(kind: str, current: GraderSpec) -> GraderSpec:
    """The plan's grader as another type, keeping what still applies: its model(s), their
    reasoning efforts and prompt (a multi grader runs the current model graders)."""
    if kind not in GRADER_TYPES:
        inner = " (it runs only inside a multi grader)" if kind in _INNER_GRADER_TYPES else ""
        raise PlanError(
            f"unknown grader type {_excerpt(kind)}{inner}; known: {', '.join(GRADER_TYPES)}"
        )
    if kind == current.type:
        return current
    if kind in _MODEL_GRADER_TYPES:
        model = current.model or "gpt-4.1-mini"
        return GraderSpec(
            type=kind,
            models=(model,),
            prompt_tokens=current.prompt_tokens,
            reasoning_effort=current.efforts_per_model()[0] if current.models else None,
        )
    if kind == "multi":
        return GraderSpec(
            type="multi",
            models=current.models,
            inner_types=current.inner_types or ((current.type,) if current.models else ()),
            prompt_tokens=current.prompt_tokens,
            reasoning_effort=current.reasoning_effort,
            model_efforts=current.model_efforts,
        )
    return GraderSpec(type=kind)


def _grader_with_model(model: str, current: GraderSpec) -> GraderSpec:
    """The plan's grader running ``model`` (its first model grader's), its reasoning effort
    and the other graders kept."""
    kind = current.type if current.type in (*_MODEL_GRADER_TYPES, "multi") else "score_model"
    efforts = current.efforts_per_model() if current.models else (None,)
    return GraderSpec(
        type=kind,
        models=(model, *current.models[1:]),
        inner_types=current.inner_types,
        prompt_tokens=current.prompt_tokens,
        reasoning_effort=current.reasoning_effort,
        model_efforts=current.model_efforts and (efforts[0], *current.model_efforts[1:]),
    )


def _approx_tokens(value: Any) -> int:
    """Characters / 4 of every string inside ``value``."""
    return math.ceil(_chars(value) / _CHARS_PER_TOKEN)


def _chars(value: Any) -> int:
    """Characters of every string inside ``value`` (iterative: any depth is safe)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


# --- data files -----------------------------------------------------------------------------


def _examples(
    reference: Any,
    count: int | None,
    field: str,
    option: str,
    folder: Path,
    where: str,
    *,
    required: bool = True,
) -> tuple[DataFileSummary | None, int]:
    if count is not None:
        if count < 0 or (required and count < 1):
            raise PlanError(
                f"{option} must be {'positive' if required else 'non-negative'}, got {count}"
            )
        return None, count
    if reference is None:
        if required:
            raise PlanError(
                f"{where}: '{field}' is required (a local JSONL path, or give {option})"
            )
        return None, 0
    if not isinstance(reference, str) or not reference.strip():
        raise PlanError(
            f"{where}: '{field}' must be a file path or file id, got {_excerpt(reference)}"
        )
    path = Path(reference)
    if not path.is_absolute():
        path = folder / path
    if not path.exists():
        if reference.startswith("file-"):
            raise PlanError(
                f"{where}: {field} {_excerpt(reference)} is an uploaded file id, not a local file; "
                f"put the local JSONL path in the plan or give {option}"
            )
        raise PlanError(
            f"{where}: {field} {_excerpt(reference)}: no such file ({path}); or give {option}"
        )
    summary = scan_data_file(path)
    return summary, summary.examples


def scan_data_file(path: str | Path) -> DataFileSummary:
    """Count examples and approximate prompt tokens; ``PlanError`` if it is not RFT data.

    Each non-empty line must be a JSON object with a non-empty ``messages`` list
    of ``{"role", "content"}`` messages whose last one is from the ``user`` (the
    model answers it during training); other keys are reference fields for the
    grader.
    """
    file = Path(path)
    examples = 0
    tokens = 0
    try:
        if not file.is_file():
            # A device (/dev/zero) or a pipe has no end: refused, never read.
            raise PlanError(f"{file}: not a regular file; RFT data is a JSONL file")
        handle = file.open("rb")
    except OSError as exc:
        raise PlanError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    with handle:
        number = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise PlanError(
                    f"{file}:{number}: a line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB;"
                    " RFT data has one JSON object per line"
                )
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise PlanError(
                    f"{file}:{number}: not UTF-8 text (byte {exc.start}); RFT data is JSON Lines"
                ) from exc
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PlanError(
                    f"{file}:{number}: not JSON Lines ({exc.msg});"
                    " RFT data has one JSON object per line"
                ) from exc
            except RecursionError as exc:
                raise PlanError(f"{file}:{number}: JSON nested too deeply to read") from exc
            tokens += _check_example(record, file, number)
            examples += 1
    if examples == 0:
        raise PlanError(f"{file}: no examples (the file is empty)")
    return DataFileSummary(path=str(file), examples=examples, prompt_tokens=tokens)


def _check_example(record: Any, file: Path, number: int) -> int:
    where = f"{file}:{number}"
    if not isinstance(record, dict):
        raise PlanError(
            f"{where}: not RFT training data: each line is a JSON object with 'messages'"
        )
    if "messages" not in record:
        if "input" in record and "preferred_output" in record:
            raise PlanError(
                f"{where}: not RFT training data: this is DPO preference data "
                "('input', 'preferred_output'); RFT lines have 'messages' and grader fields"
            )
        if "prompt" in record and "completion" in record:
            raise PlanError(
                f"{where}: not RFT training data: this is prompt/completion data; RFT lines have "
                "'messages' and grader fields"
            )
        raise PlanError(f"{where}: not RFT training data: no 'messages' list")
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise PlanError(f"{where}: not RFT training data: 'messages' must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _MESSAGE_ROLES:
            raise PlanError(
                f"{where}: not RFT training data: messages[{index}] needs a 'role' among "
                f"{', '.join(_MESSAGE_ROLES)}"
            )
    last = messages[-1].get("role")
    if last != "user":
        hint = (
            " (it looks like supervised fine-tuning data: in RFT the model writes the answer, "
            "and the reference goes in a separate field for the grader)"
            if last == "assistant"
            else ""
        )
        raise PlanError(
            f"{where}: not RFT training data: the last message must be from the user, "
            f"not {_excerpt(last)}{hint}"
        )
    return _approx_tokens([m.get("content") for m in messages])
