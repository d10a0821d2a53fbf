"""Effective-dated token price tables (R9, R10).

A table maps a model family to an ordered list of ``(effective_from, rates)``
entries; the latest entry whose ``effective_from`` is at or before the usage
time is in force. Dated model names (``gpt-4.1-2025-04-14``) resolve to their
family. There is no global mutable price state: tables are values, loaded from
the TOML files packaged in ``rftcost/data/prices`` or from a user's file.
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rftcost.errors import PolicyError, PriceNotFoundError

__all__ = [
    "PICO_PER_DOLLAR",
    "PriceEntry",
    "PriceTable",
    "load_price_table",
    "packaged_price_tables",
    "resolve_model_family",
]

PICO_PER_DOLLAR = 10**12
"""Token amounts are summed exactly in pico-dollars (1e-12 USD) before rounding to cents."""

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def resolve_model_family(model: str) -> str:
    """``gpt-4.1-2025-04-14`` → ``gpt-4.1``; a name without a date suffix is unchanged."""
    return _DATE_SUFFIX.sub("", model.strip())


def _decimal_rate(value: Any) -> Decimal:
    if isinstance(value, float):
        raise ValueError('write rates as strings ("2.00"), not floats, so they stay exact')
    rate = Decimal(str(value))
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"a rate must be a non-negative number, got {value!r}")
    exponent = rate.as_tuple().exponent  # an int: the rate is finite
    if isinstance(exponent, int) and exponent < -6:
        raise ValueError(f"a rate per 1M tokens has at most 6 decimals, got {value!r}")
    return rate


class PriceEntry(BaseModel):
    """Rates of one model from a date on, USD per ``unit_tokens`` tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effective_from: datetime
    """First moment (timezone-aware) at which these rates apply."""
    input: Decimal
    """Price of uncached input tokens."""
    cached_input: Decimal
    """Price of cached input tokens."""
    output: Decimal
    """Price of output tokens."""
    source: str
    """Where the rates come from (a page, an announcement)."""

    @field_validator("input", "cached_input", "output", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Decimal:
        return _decimal_rate(value)

    @field_validator("effective_from")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("effective_from needs a timezone offset (e.g. 2025-06-10T00:00:00Z)")
        return value


class PriceTable(BaseModel):
    """Token prices per model family, each an ordered list of dated entries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """The table's name (its file name for packaged tables)."""
    currency: str = "USD"
    """Currency of every rate."""
    unit_tokens: int = Field(default=1_000_000, gt=0)
    """How many tokens a rate is for (1M on OpenAI's pricing page)."""
    models: dict[str, tuple[PriceEntry, ...]]
    """Model family → entries sorted by ``effective_from``."""

    @field_validator("models")
    @classmethod
    def _sorted(cls, value: dict[str, tuple[PriceEntry, ...]]) -> dict[str, tuple[PriceEntry, ...]]:
        return {
            model: tuple(sorted(entries, key=lambda e: e.effective_from))
            for model, entries in value.items()
        }

    def lookup(self, model: str, at: datetime) -> PriceEntry:
        """The entry in force for ``model`` at ``at`` (R10); raises ``PriceNotFoundError``."""
        entries = self.models.get(resolve_model_family(model), ())
        in_force = [e for e in entries if e.effective_from <= at]
        if not in_force:
            raise PriceNotFoundError(model, at.isoformat())
        return in_force[-1]

    def to_frame(self) -> pd.DataFrame:
        """One row per entry: family, ``effective_ns`` and rates in pico-dollars per token.

        The kernel joins usage events to this frame with ``merge_asof`` (R10).
        """
        scale = Decimal(PICO_PER_DOLLAR) / self.unit_tokens
        rows = [
            {
                "grader_family": family,
                "effective_ns": int(pd.Timestamp(entry.effective_from).value),
                "price_index": index,
                "input_pico": int(entry.input * scale),
                "cached_pico": int(entry.cached_input * scale),
                "output_pico": int(entry.output * scale),
            }
            for family, entries in self.models.items()
            for index, entry in enumerate(entries)
        ]
        frame = pd.DataFrame(
            rows,
            columns=[
                "grader_family",
                "effective_ns",
                "price_index",
                "input_pico",
                "cached_pico",
                "output_pico",
            ],
        )
        return frame.astype(
            {
                "grader_family": "string",
                "effective_ns": "int64",
                "price_index": "int64",
                "input_pico": "int64",
                "cached_pico": "int64",
                "output_pico": "int64",
            }
        )


def packaged_price_tables() -> list[str]:
    """Names of the price tables that ship inside the package."""
    folder = resources.files("rftcost.data").joinpath("prices")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_price_table(name_or_path: str | Path) -> PriceTable:
    """Load a packaged table by name, or a TOML file by path; raises ``PolicyError``."""
    text, source = _read_table_text(name_or_path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}", source=source) from exc
    raw.setdefault("name", Path(source).stem)
    try:
        return PriceTable.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(_first_error(exc), source=source) from exc


def _read_table_text(name_or_path: str | Path) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise PolicyError(f"cannot read price table: {exc.strerror}", source=str(path)) from exc
    if str(name_or_path) not in packaged_price_tables():
        raise PolicyError(
            f"unknown price table {str(name_or_path)!r}; "
            f"packaged tables: {', '.join(packaged_price_tables())}"
        )
    resource = resources.files("rftcost.data").joinpath("prices", f"{name_or_path}.toml")
    return resource.read_text(encoding="utf-8"), f"{name_or_path} (packaged)"


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in errors[:3]
    ]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more
