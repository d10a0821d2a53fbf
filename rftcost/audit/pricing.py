"""Every billing rule the audit recomputes, in one place (R10, R11, R12, R13).

The audit checks an invoice by pricing what the logs support: the policy's hourly
rate as integer millionths, billable time in hour units rounded down and up (R11),
the data-sharing discount of an amount (R12), token amounts in pico-units rounded
to cents once (R13), and token counts priced at a price entry (R10). Each is a
small function here, so that a rule has one home in the audit and switching it to
the library's shared rule functions is a change to this module only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rftcost.money import RoundingMode, divide_round
from rftcost.token_pricing import price_index_at, priced_tokens

__all__ = [
    "MICRO",
    "MICRO_PER_CENT",
    "NS_PER_DAY",
    "NS_PER_HOUR",
    "NS_PER_MICRO_HOUR",
    "PICO_PER_CENT",
    "cents_of_pico",
    "discount_micro",
    "entry_pico",
    "hour_unit_bounds",
    "pico_to_micro",
    "price_index_at",
    "priced_tokens",
    "rate_micro_by_job",
    "rounding_mode",
    "signed_round_div",
]

MICRO = 10**6
"""Amounts and quantities are compared in millionths (of the currency, hour or token)."""
MICRO_PER_CENT = 10**4
PICO_PER_CENT = 10**10
NS_PER_HOUR = 3600 * 10**9
NS_PER_MICRO_HOUR = NS_PER_HOUR // MICRO
NS_PER_DAY = 86400 * 10**9


def rounding_mode(name: str) -> RoundingMode:
    """A policy's rounding mode by name."""
    return RoundingMode(name)


def rate_micro_by_job(policy: Any, models: pd.Series) -> pd.Series:
    """The policy's hourly rate of each job's model in integer millionths (0: no rate)."""
    rates = {m: policy.hourly_rate(str(m)) for m in models.unique()}
    return models.map({m: int(r * MICRO) if r is not None else 0 for m, r in rates.items()}).astype(
        "int64"
    )


def hour_unit_bounds(
    billable_ns: np.ndarray[Any, Any], unit_ns: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Exact billable time in hour units rounded down and up (R11): what any rounding of
    the charge may bill."""
    return (
        divide_round(billable_ns, unit_ns, RoundingMode.DOWN),
        divide_round(billable_ns, unit_ns, RoundingMode.UP),
    )


def cents_of_pico(pico: np.ndarray[Any, Any], mode: RoundingMode) -> np.ndarray[Any, Any]:
    """Exact non-negative pico-amounts (object ints) → int64 cents, rounded with ``mode`` (R13)."""
    if len(pico) == 0:
        return np.zeros(0, dtype="int64")
    return np.asarray(divide_round(pico, PICO_PER_CENT, mode), dtype="int64")


def pico_to_micro(pico: int, mode: RoundingMode) -> int:
    """One exact pico-amount rounded to cents with ``mode`` (R13), in millionths."""
    return int(divide_round(pico, PICO_PER_CENT, mode)) * MICRO_PER_CENT


def signed_round_div(numerator: int, denominator: int, mode: RoundingMode) -> int:
    """Round a signed integer quotient with a named mode (symmetric around zero)."""
    if numerator < 0:
        return -int(divide_round(-numerator, denominator, mode))
    return int(divide_round(numerator, denominator, mode))


def discount_micro(base_micro: int, rate: Decimal, mode: RoundingMode) -> int:
    """The data-sharing discount of an amount (R12), as a negative amount in millionths."""
    numerator, denominator = rate.as_integer_ratio()
    return (
        -signed_round_div(base_micro * numerator, denominator * MICRO_PER_CENT, mode)
        * MICRO_PER_CENT
    )


def entry_pico(entry: Any, unit_tokens: Any, uncached: int, cached: int, output: int) -> int:
    """Token counts priced at one price entry, in pico-units (rates are per ``unit_tokens``)."""
    return int(
        (entry.input * uncached + entry.cached_input * cached + entry.output * output)
        * (Decimal(10**12) / unit_tokens)
    )
