"""Every billing rule the audit recomputes, in one place (R10, R11, R12, R13).

The audit checks an invoice by pricing what the logs support: the policy's hourly
rate in exact rate units and hours × rate → cents (R11), token amounts in pico-units
rounded to cents once (R13), token counts priced at a price entry (R10): these call
``rftcost.rules``, the library's one function per rule, as the billing kernel does.
Two computations are the audit's own, and live here: the exact billable time in
hour units rounded down *and* up (the bounds any rounding of a charge may bill,
not R11's one rounding), and the data-sharing discount of an invoice's amounts in
millionths (R12 on what the invoice bills, which may hold fractions of a cent).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rftcost.money import RoundingMode, divide_round
from rftcost.rules import (
    grader_cents,
    price_index_at,
    priced_tokens,
    rate_places,
    rate_units,
    token_pico,
    token_price_pico,
)

__all__ = [
    "MICRO",
    "MICRO_PER_CENT",
    "NS_PER_DAY",
    "NS_PER_HOUR",
    "NS_PER_MICRO_HOUR",
    "PICO_PER_CENT",
    "cents_of_pico",
    "cents_of_time_at_rate",
    "discount_micro",
    "entry_pico",
    "hour_unit_bounds",
    "pico_to_micro",
    "price_index_at",
    "priced_tokens",
    "rate_units_by_job",
    "rounded",
    "rounding_allowance",
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


def rounding_allowance(roundings: int, mode: RoundingMode) -> int:
    """The most ``roundings`` roundings to the cent can move a sum, in millionths: half a
    cent each under a half mode, just under a cent each under a directed one."""
    each = MICRO_PER_CENT // 2 if mode.name.startswith("HALF") else MICRO_PER_CENT - 1
    return max(roundings, 1) * each


def rounded(amounts: pd.Series) -> pd.Series:
    """Whether each amount (millionths) is whole cents (1) or not (0): a line of 0.0349 was
    never rounded to the cent, so its rounding explains nothing."""
    return (amounts.astype("int64") % MICRO_PER_CENT == 0).astype("int64")


def rounding_mode(name: str) -> RoundingMode:
    """A policy's rounding mode by name."""
    return RoundingMode(name)


def rate_units_by_job(policy: Any, models: pd.Series) -> tuple[pd.Series, int]:
    """The policy's hourly rate of each job's model in exact rate units, and their places
    (R11: ``rules.rate_units``; at least millionths, never truncated; 0: no rate)."""
    places = rate_places(policy)
    return rate_units(models.fillna("").astype(object), policy, places), places


def cents_of_time_at_rate(
    micro_hours: np.ndarray[Any, Any], rates: np.ndarray[Any, Any], places: int, policy: Any
) -> np.ndarray[Any, Any]:
    """Quantities in millionths of an hour × rates in rate units → cents, rounded once with
    the policy's money mode (R11). The product is in ``10^-(6 + places)`` of the currency
    (an invoice's quantity may have more decimals than the policy's hours, so this is not
    ``rules.compute_cents``, whose hours are the policy's hour units)."""
    if len(micro_hours) == 0:
        return np.zeros(0, dtype="int64")
    exact = np.asarray(micro_hours).astype(object) * np.asarray(rates).astype(object)
    mode = rounding_mode(policy.rounding.money_mode)
    return np.asarray(divide_round(exact, 10 ** (places + 4), mode), dtype="int64")


def hour_unit_bounds(
    billable_ns: np.ndarray[Any, Any], unit_ns: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Exact billable time in hour units rounded down and up (R11): what any rounding of
    the charge may bill."""
    return (
        divide_round(billable_ns, unit_ns, RoundingMode.DOWN),
        divide_round(billable_ns, unit_ns, RoundingMode.UP),
    )


def cents_of_pico(pico: np.ndarray[Any, Any], policy: Any) -> np.ndarray[Any, Any]:
    """Exact non-negative pico-amounts (object ints) → int64 cents, rounded once with the
    policy's money mode (R13: ``rules.grader_cents``)."""
    if len(pico) == 0:
        return np.zeros(0, dtype="int64")
    return grader_cents(np.asarray(pico, dtype=object), policy)


def pico_to_micro(pico: int, policy: Any) -> int:
    """One exact pico-amount rounded to cents (R13), in millionths."""
    return int(cents_of_pico(np.asarray([pico], dtype=object), policy)[0]) * MICRO_PER_CENT


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
    """Token counts priced at one price entry, in exact pico-units (R9, R13: ``rules``)."""
    return int(
        token_pico(
            uncached + cached,
            cached,
            output,
            token_price_pico(entry.input, unit_tokens),
            token_price_pico(entry.cached_input, unit_tokens),
            token_price_pico(entry.output, unit_tokens),
        )
    )
