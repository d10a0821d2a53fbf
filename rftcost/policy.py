"""Billing policies: every setting the rules leave open, as data (billing-rules.md "Policy").

A policy is a small TOML file. Presets ship in ``rftcost/data/policies``; a user's
file may start with ``extends = "openai-rft"`` and set only what differs. A policy
is validated on load: an unknown key, a negative rate or an unknown rounding mode
is a ``PolicyError`` naming the file and the key.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rftcost.errors import PolicyError, excerpt, settings_problems
from rftcost.events.schema import DEFAULT_BILLABLE_PHASES, DEFAULT_EXCLUDED_PHASES
from rftcost.money import RoundingMode
from rftcost.prices import (
    PriceTable,
    genai_price_table,
    layer_price_tables,
    load_price_table,
    read_settings_file,
    read_toml,
    resolve_model_family,
)

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES_SCHEMA",
    "POLICY_SCHEMA",
    "CapSettings",
    "CapturedProgress",
    "DiscountSettings",
    "PhaseSettings",
    "Policy",
    "PriceSettings",
    "RoundingScope",
    "RoundingSettings",
    "SafetyEvaluationSettings",
    "list_policies",
    "load_policy",
    "policy_files",
]

DEFAULT_POLICY = "openai-rft"
"""The policy used when none is named."""
POLICY_SCHEMA = "rftcost.policy/v1"
"""The ``schema`` of ``rftcost policy show -f json``: the policy's settings and prices."""
POLICIES_SCHEMA = "rftcost.policies/v1"
"""The ``schema`` of ``rftcost policy list -f json``: the packaged presets."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


_MAX_AMOUNT = Decimal(10) ** 9
"""Largest rate or amount a policy may give: beyond it a value is a typo (or "1e999")."""
_MAX_DECIMALS = 50
"""Most decimals a rate may carry (it is kept exact, rounded once with the amount)."""
_MIN_CAP = Decimal("0.01")
"""Smallest cap: anything less rounds to 0.00 in a two-decimal currency (R15)."""
_CURRENCY = re.compile(r"[A-Z]{3}")


def _exact_decimal(value: Any) -> Decimal:
    shown = excerpt(repr(value))
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        # float: may be inexact already; bool, table, list: not an amount at all.
        raise ValueError(f'write amounts and rates as decimal strings ("100.00"), got {shown}')
    try:
        result = Decimal(value.strip() if isinstance(value, str) else value)
    except decimal.InvalidOperation:
        raise ValueError(
            f'not a decimal number ("100.00", no thousands separators): {shown}'
        ) from None
    if not result.is_finite() or result < 0:
        raise ValueError(f"must be a non-negative number, got {shown}")
    if result > _MAX_AMOUNT:
        raise ValueError(f"more than {_MAX_AMOUNT:f}, got {shown}")
    if -int(result.as_tuple().exponent) > _MAX_DECIMALS:
        raise ValueError(f"more than {_MAX_DECIMALS} decimals, got {shown}")
    return result


class RoundingScope(StrEnum):
    """Where billable time is rounded (R11)."""

    CHARGE = "charge"
    """Each charge's seconds are rounded on their own."""
    JOB = "job"
    """A job's exact seconds are summed and rounded once, all on its last charge."""


class PhaseSettings(BaseModel):
    """Which phase names are billed (R1, R2, R3)."""

    model_config = _FROZEN

    billable: tuple[str, ...] = DEFAULT_BILLABLE_PHASES
    """Phases whose wall-clock union is billed."""
    excluded: tuple[str, ...] = DEFAULT_EXCLUDED_PHASES
    """Phases measured and reported but never billed."""
    aliases: dict[str, str] = Field(default_factory=dict)
    """Extra names a log may use → one of the phases above."""

    @model_validator(mode="after")
    def _consistent(self) -> PhaseSettings:
        both = set(self.billable) & set(self.excluded)
        if both:
            raise ValueError(f"phases both billable and excluded: {sorted(both)}")
        known = set(self.billable) | set(self.excluded)
        # An alias named like a phase would re-map that phase (e.g. rollout → queued) and
        # make billable time free (R1, R3): a name is either a phase or an alias, never both.
        builtin = known | set(DEFAULT_BILLABLE_PHASES) | set(DEFAULT_EXCLUDED_PHASES)
        shadowing = sorted(alias for alias in self.aliases if alias in builtin)
        if shadowing:
            raise ValueError(f"alias shadows the built-in phase {shadowing[0]!r}")
        unknown = {alias: target for alias, target in self.aliases.items() if target not in known}
        if unknown:
            raise ValueError(f"aliases to unknown phases: {unknown}")
        return self

    @property
    def known(self) -> tuple[str, ...]:
        """Every accepted phase name, aliases included."""
        return (*self.billable, *self.excluded, *self.aliases)

    def canonical(self, name: str) -> str:
        """The phase a (possibly aliased) name stands for."""
        return self.aliases.get(name, name)


class RoundingSettings(BaseModel):
    """How seconds, hours and money are rounded (R11, R13)."""

    model_config = _FROZEN

    seconds_mode: RoundingMode = RoundingMode.HALF_UP
    """Exact billable time → whole seconds."""
    hours_decimals: int = Field(default=2, ge=0, le=6)
    """Decimals of billed hours (2: "2.55 hours", a step of 36 s)."""
    hours_mode: RoundingMode = RoundingMode.HALF_UP
    """Seconds / 3600 → hours with ``hours_decimals``."""
    money_mode: RoundingMode = RoundingMode.HALF_UP
    """Exact amounts → cents."""
    scope: RoundingScope = RoundingScope.CHARGE
    """Round per charge or once per job."""


class DiscountSettings(BaseModel):
    """The data-sharing discount (R12)."""

    model_config = _FROZEN

    rate: Decimal = Decimal("0.50")
    """Fraction taken off (0.50 = 50%)."""
    scope: tuple[Literal["compute", "grader"], ...] = ("compute",)
    """Amounts the discount applies to; empty for no training discount."""

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Decimal:
        rate = _exact_decimal(value)
        if rate > 1:
            raise ValueError(f"a discount rate is a fraction between 0 and 1, got {value!r}")
        return rate


class CapSettings(BaseModel):
    """An optional cap per job (Azure pauses a job at $5,000).

    The cap counts training plus grading; the charge that reaches it is cut to it (its
    compute first, then its grader amount) and the job pauses; a resumed job bills with no
    further limit (rules.capped_amounts). The amount is rounded to cents by the policy's
    money mode (never truncated)."""

    model_config = _FROZEN

    per_job_amount: Decimal | None = None
    """Most a job can cost until it first reaches the cap; ``None`` for no cap."""

    @field_validator("per_job_amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal | None:
        if value is None:
            return None
        amount = _exact_decimal(value)
        # A cap below one cent rounds to 0.00 (R13): every job would bill nothing, silently.
        if amount < _MIN_CAP:
            raise ValueError(
                f"a cap must be at least {_MIN_CAP}, got {excerpt(repr(value))}"
                " (omit it for no cap)"
            )
        return amount


class SafetyEvaluationSettings(BaseModel):
    """What a model blocked by its post-training safety evaluation is charged (kind 13)."""

    model_config = _FROZEN

    blocked_model_charged: bool = True
    """``False`` (Azure): "a model blocked by the safety evaluation is not charged for the
    training run". Not applied yet: the canonical event log (event-log.md) has no event
    that says a model was blocked (``safety_eval`` is only a phase), so no bill can tell
    such a job apart; the setting records the vendor's rule for when it can."""


class CapturedProgress(BaseModel):
    """Whether work lost to failures and rollbacks is free (R5, R6)."""

    model_config = _FROZEN

    enabled: bool = True
    """``True``: only captured forward progress is billed."""


class PriceSettings(BaseModel):
    """Which token price table the grader lines use (R9, R10)."""

    model_config = _FROZEN

    table: str = "openai-standard"
    """A packaged table name or a path to a TOML table (relative to the policy file)."""
    base: Literal["genai-prices", "none"] = "genai-prices"
    """The layer under ``table`` for models it does not name: ``genai-prices`` (the
    package's bundled, effective-dated data; no network) or ``none`` (``table`` alone)."""


class Policy(BaseModel):
    """A billing policy: rates, phases, rounding, discount, cap and token prices."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str
    """The name every output shows."""
    description: str = ""
    """One line on what the policy is."""
    extends: str | None = None
    """The policy this one was built on, if any."""
    currency: str = "USD"
    """Currency of every amount (R15)."""
    default_model: str = "o4-mini-2025-04-16"
    """Base model of a job whose ``job_created`` names none."""
    sources: tuple[str, ...] = ()
    """Where the rules and rates come from."""
    hourly_rates: dict[str, Decimal]
    """USD (``currency``) per billable hour, by base model family (R11)."""
    phases: PhaseSettings = PhaseSettings()
    """Billable, excluded and aliased phase names."""
    rounding: RoundingSettings = RoundingSettings()
    """Rounding of seconds, hours and money."""
    captured_progress: CapturedProgress = CapturedProgress()
    """Whether lost work is free."""
    data_sharing_discount: DiscountSettings = DiscountSettings()
    """The data-sharing discount."""
    cap: CapSettings = CapSettings()
    """An optional per-job cap (training plus grading, until the job first reaches it)."""
    safety_evaluation: SafetyEvaluationSettings = SafetyEvaluationSettings()
    """Whether a model blocked by its post-training safety evaluation is charged."""
    prices: PriceSettings = PriceSettings()
    """The token price table."""
    base_dir: str | None = Field(default=None, exclude=True)
    """Folder of the policy file, for a price table path relative to it."""

    @field_validator("hourly_rates", mode="before")
    @classmethod
    def _rates(cls, value: Any) -> dict[str, Decimal]:
        if not isinstance(value, dict) or not value:
            raise ValueError("needs at least one base model and its hourly rate")
        rates = {}
        for model, rate in value.items():  # a few models: name the one that is wrong
            try:
                rates[str(model)] = _exact_decimal(rate)
            except ValueError as exc:
                raise ValueError(f"{excerpt(str(model))!r}: {exc}") from None
        return rates

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        # The currency reaches every output (HTML too): a code, never free text.
        if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
            raise ValueError(
                f"must be an ISO 4217 code, three capital letters (USD, EUR), got "
                f"{excerpt(repr(value))}"
            )
        return value

    def hourly_rate(self, model: str) -> Decimal | None:
        """The training rate for a base model (exact name first, then its family)."""
        if model in self.hourly_rates:
            return self.hourly_rates[model]
        return self.hourly_rates.get(resolve_model_family(model))

    @cached_property
    def price_table(self) -> PriceTable:
        """The token price table this policy names."""
        table = self.prices.table
        if self.base_dir and (table.endswith(".toml") or "/" in table):
            table = str(Path(self.base_dir) / table)
        loaded = load_price_table(table)
        if self.prices.base != "none":
            # Kind 14: every model a grader can run has a price; the table overrides
            # genai-prices.
            loaded = layer_price_tables(loaded, genai_price_table())
        if loaded.currency != self.currency:
            # R15: one currency per bill; grader amounts in another would be added as is.
            raise PolicyError(
                f"the policy's currency is {self.currency}, its price table "
                f"{loaded.price_source} is in {loaded.currency}: give a table in "
                f'{self.currency} (with [prices] base = "none" unless it is USD)'
            )
        return loaded


def _packaged_policy_folder() -> Any:
    return resources.files("rftcost.data").joinpath("policies")


def list_policies() -> list[str]:
    """Names of the presets that ship inside the package."""
    return sorted(
        p.name.removesuffix(".toml")
        for p in _packaged_policy_folder().iterdir()
        if p.name.endswith(".toml")
    )


def load_policy(policy: str | Path | Policy | None = None) -> Policy:
    """A policy by preset name or TOML path (``None``: the default); raises ``PolicyError``."""
    if isinstance(policy, Policy):
        return policy
    raw, source, base_dir = _load_raw(policy or DEFAULT_POLICY, seen=())
    if "models" in raw and "hourly_rates" not in raw:
        raise PolicyError(
            "a price table, not a policy: name it in a policy's [prices] table",
            source=source,
        )
    try:
        loaded = Policy.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as exc:
        raise PolicyError(_describe(exc), source=source) from exc
    # A missing or broken price table is a policy error, found now rather than mid-bill.
    try:
        loaded.price_table  # noqa: B018
    except PolicyError as exc:
        if exc.source is None:  # the policy's own setting: name its file
            raise PolicyError(exc.reason, source=source) from exc
        raise
    return loaded


def policy_files(policy: str | Path) -> tuple[Path, ...]:
    """The files a policy is read from: its own, those it ``extends``, its ``[prices]
    table`` (none for a preset). Read without checking them (``load_policy`` says what is
    wrong with one): for a command that must not write its output over any of them."""
    files: list[Path] = []
    name = str(policy)
    first_dir: Path | None = None
    while _names_a_file(name) or Path(name).exists():
        path = Path(name)
        if not path.is_file() or path in files:
            break
        files.append(path)
        first_dir = first_dir or path.parent
        try:
            raw = read_toml(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError, PolicyError):
            break
        prices = raw.get("prices")
        table = prices.get("table") if isinstance(prices, dict) else None
        if isinstance(table, str) and (table.endswith(".toml") or "/" in table):
            # Relative to the file that names it, or to the policy given (price_table).
            files.extend(folder / table for folder in (path.parent, first_dir))
        parent = raw.get("extends")
        if not isinstance(parent, str):
            break
        name = parent if Path(parent).is_absolute() else str(path.parent / parent)
    return tuple(dict.fromkeys(files))


def _load_raw(
    name_or_path: str | Path, *, seen: tuple[str, ...]
) -> tuple[dict[str, Any], str, str | None]:
    text, source, base_dir = _policy_text(name_or_path)
    if source in seen:
        raise PolicyError(f"policy extends itself: {' → '.join((*seen, source))}", source=source)
    raw = read_toml(text, source)
    parent = raw.get("extends")
    if parent is None:
        return raw, source, base_dir
    if not isinstance(parent, str):
        raise PolicyError("extends must name a policy", source=source)
    if base_dir is not None and _names_a_file(parent) and not Path(parent).is_absolute():
        # As [prices] table: a path is the policy file's neighbour, wherever it is run from.
        parent = str(Path(base_dir) / parent)
    parent_raw, _, parent_dir = _load_raw(parent, seen=(*seen, source))
    merged = _deep_merge(parent_raw, raw)
    if "sources" not in raw and "sources" in parent_raw:
        merged["sources"] = parent_raw["sources"]
    changed = sorted(set(raw) - {"name", "extends", "description", "sources"})
    if "description" not in raw and changed:
        # The parent's words describe the parent ("$100 per billable hour" under a rate of
        # 33.33): say what this policy is instead.
        merged["description"] = f"{parent}, with its {', '.join(changed)} changed"
    return merged, source, base_dir or parent_dir


def _names_a_file(name: str) -> bool:
    """Whether a policy's name is a path (a preset's name has no suffix or slash)."""
    return name.endswith(".toml") or "/" in name or "\\" in name


def _policy_text(name_or_path: str | Path) -> tuple[str, str, str | None]:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return read_settings_file(path, "policy"), str(path), str(path.parent)
    name = str(name_or_path)
    if name not in list_policies():
        raise PolicyError(
            f"unknown policy {name!r}; presets: {', '.join(list_policies())}, or give a .toml path"
        )
    text = _packaged_policy_folder().joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return text, name, None


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(exc: ValidationError) -> str:
    return settings_problems(exc, "<policy>")
