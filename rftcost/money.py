"""The one place that rounds: seconds, hours and money (R11, R13, R14).

Two forms of the same arithmetic live here:

- ``round_decimal`` rounds one ``Decimal`` with a named mode, for code that holds
  a few amounts (an estimate, an audit line);
- ``divide_round`` divides whole arrays of non-negative integers and rounds the
  quotient with a named mode, for the vectorized billing kernel, which keeps
  time in integer nanoseconds and money in integer minor units (cents, or
  pico-dollars for token prices) and never touches a binary float.

Neither relies on the decimal context's default rounding: the mode is always named.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, field_validator

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CENT",
    "CURRENCY_SYMBOLS",
    "MAX_BUDGET",
    "Money",
    "RoundingMode",
    "budget_amount",
    "cents_to_decimal",
    "divide_round",
    "exact_context",
    "format_amount",
    "format_cents",
    "format_money",
    "parse_amount",
    "round_decimal",
    "to_decimal",
    "to_minor_units",
    "units_text",
    "units_to_decimal",
]

CENT = Decimal("0.01")

IntArray = npt.NDArray[np.int64]


class RoundingMode(StrEnum):
    """How a quotient is rounded to its unit."""

    HALF_UP = "half_up"
    """Halves away from zero (0.005 → 0.01): what invoices show."""
    HALF_EVEN = "half_even"
    """Banker's rounding (0.005 → 0.00, 0.015 → 0.02)."""
    UP = "up"
    """Any remainder rounds up (ceiling for non-negative amounts)."""
    DOWN = "down"
    """Any remainder is dropped (floor for non-negative amounts)."""


_DECIMAL_MODES = {
    RoundingMode.HALF_UP: decimal.ROUND_HALF_UP,
    RoundingMode.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    RoundingMode.UP: decimal.ROUND_UP,
    RoundingMode.DOWN: decimal.ROUND_DOWN,
}


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Return ``value`` as a Decimal; a float is refused (it may already be inexact)."""
    if isinstance(value, (bool, float)):
        raise TypeError(f"refusing {value!r}: money and rates are Decimal, int or str")
    if isinstance(value, Decimal):
        return value
    return Decimal(value)


def round_decimal(value: Decimal, places: int, mode: RoundingMode) -> Decimal:
    """Round ``value`` to ``places`` decimals with ``mode``, once, at any precision.

    The default decimal context holds 28 digits: a quantize needing more raises, and
    arithmetic before it would round first. A local context with as many digits as
    the result needs rounds exactly once, by ``mode``.
    """
    quantum = Decimal((0, (1,), -places))
    with decimal.localcontext() as context:
        context.prec = max(context.prec, value.adjusted() + places + 2)
        return value.quantize(quantum, rounding=_DECIMAL_MODES[mode])


def exact_context(*values: Decimal) -> decimal.Context:
    """A decimal context wide enough that ``+``, ``-`` and ``×`` of ``values`` are exact.

    Use with ``decimal.localcontext(exact_context(a, b))`` before arithmetic whose
    result is rounded by ``round_decimal``: never rely on the default 28 digits.
    """
    finite = [v for v in values if v.is_finite()]
    digits = sum(len(v.as_tuple().digits) for v in finite)
    top = max((v.adjusted() for v in finite), default=0)
    bottom = min((int(v.as_tuple().exponent) for v in finite), default=0)
    return decimal.Context(
        prec=max(28, digits + top - bottom + 10), Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN
    )


def divide_round(numerator: Any, denominator: int, mode: RoundingMode) -> Any:
    """Divide non-negative integers by a positive integer and round with ``mode``.

    ``numerator`` is an int, an int64 array or an object array of Python ints
    (used where a product could overflow 64 bits); the result has the same kind.
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient = numerator // denominator
    remainder = numerator - quotient * denominator
    twice = remainder * 2
    if mode == RoundingMode.DOWN:
        bump = remainder * 0
    elif mode == RoundingMode.UP:
        bump = remainder > 0
    elif mode == RoundingMode.HALF_UP:
        bump = twice >= denominator
    else:
        bump = (twice > denominator) | ((twice == denominator) & (quotient % 2 == 1))
    if isinstance(bump, np.ndarray):
        return quotient + bump.astype(quotient.dtype if quotient.dtype != bool else np.int64)
    return quotient + int(bump)


def units_to_decimal(units: int, places: int) -> Decimal:
    """Integer units of ``10**-places`` → the exact Decimal (``12345, 2`` → ``123.45``).

    Exact at any size: a Decimal built from an int holds every digit, and ``scaleb`` of
    a finite Decimal only moves its exponent.
    """
    with decimal.localcontext() as context:
        context.prec = max(context.prec, len(str(abs(int(units)))) + 1)
        return Decimal(int(units)).scaleb(-places)


def cents_to_decimal(cents: int) -> Decimal:
    """Integer cents → a Decimal amount with two decimals."""
    return units_to_decimal(cents, 2)


def units_text(values: Any, places: int) -> pd.Series:
    """Integer units of ``10**-places`` → exact decimal strings, vectorized.

    ``[12345, -5, 0]`` with ``places=2`` → ``["123.45", "-0.05", "0.00"]``: exactly
    ``places`` decimals, no float on the way (hours from hour units, amounts from cents,
    prices from micro-units). ``values`` is a Series (its index is kept), an array or a
    list of integers; a missing value (``NA``/``None``) stays missing. The result is a
    pandas ``string`` Series.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if places < 0:
        raise ValueError("places must be zero or more")
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    # In Arrow's kernels: a tenth of pandas' time on a bill's few rows (2 ms a call, a
    # dozen calls a bill), under half on a million.
    ints = pa.array(series.astype("Int64"), type=pa.int64())
    magnitude = pc.abs(ints)
    whole = pc.divide(magnitude, 10**places)  # integer division: the units before the point
    text = pc.cast(whole, pa.string())
    if places:
        part = pc.cast(pc.subtract(magnitude, pc.multiply(whole, 10**places)), pa.string())
        text = pc.binary_join_element_wise(text, pc.utf8_lpad(part, places, "0"), ".")
    signed = pc.if_else(pc.less(ints, 0), pc.binary_join_element_wise("-", text, ""), text)
    return pd.Series(pd.array(signed, dtype="string"), index=series.index, name=series.name)


def format_cents(cents: int) -> str:
    """Integer cents → ``"-1234.50"`` (exactly two decimals, R15)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{part:02d}"


def format_amount(amount: Decimal) -> str:
    """A Decimal amount → a string with exactly two decimals (R15), half up."""
    return f"{round_decimal(amount, 2, RoundingMode.HALF_UP):.2f}"


def parse_amount(text: str) -> Decimal:
    """Parse ``"12.30"`` into a Decimal; raises ``decimal.InvalidOperation`` if not a number."""
    value = Decimal(text.strip())
    if not value.is_finite():
        raise decimal.InvalidOperation(text)
    return value


MAX_BUDGET = Decimal(10) ** 12
"""Budgets are below this (a trillion in the currency): a larger one is a typo."""


_AMOUNT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def budget_amount(value: Decimal | int | str) -> Decimal:
    """A budget as given (a file's cell, an option): a non-negative amount in whole
    cents, below ``MAX_BUDGET``. Raises ``ValueError`` saying which of these it is not.

    Never rounded: ``12.345`` is refused, not taken as 12.34 or 12.35 (a budget is a
    limit someone wrote; guessing its cents could pass or fail a run by one cent).
    """
    # Digits and a point as written in a file: not Decimal's other spellings (1e3, 1_000,
    # or digits of other scripts, such as fullwidth ones).
    if isinstance(value, str) and not _AMOUNT_TEXT.fullmatch(value.strip()):
        raise ValueError("not an amount (e.g. 500 or 500.00)")
    try:
        amount = to_decimal(value.strip() if isinstance(value, str) else value)
    except (TypeError, ArithmeticError, ValueError):
        raise ValueError("not an amount (e.g. 500 or 500.00)") from None
    if not amount.is_finite():
        raise ValueError("not an amount (e.g. 500 or 500.00)")
    if amount < 0:
        raise ValueError("a budget must not be negative")
    if amount >= MAX_BUDGET:
        raise ValueError("a budget must be below 10^12")
    if amount != round_decimal(amount, 2, RoundingMode.HALF_UP):
        raise ValueError("a budget must have at most two decimals (whole cents)")
    return amount


def to_minor_units(amount: Decimal, mode: RoundingMode, places: int = 2) -> int:
    """A Decimal amount → integer minor units (cents for ``places=2``), rounded with ``mode``.

    For a configured limit such as a per-job cap: ``int(cap * 100)`` would truncate
    (and lose digits past the context's precision), this rounds exactly once.
    """
    value = to_decimal(amount)
    # Enough digits for every digit of the amount: the default 28-digit context would
    # round first (scaleb and quantize both round to the context's precision).
    with decimal.localcontext() as context:
        context.prec = max(28, len(value.as_tuple().digits), value.adjusted() + 1) + places + 2
        scaled = value.scaleb(places)
        return int(scaled.quantize(Decimal(1), rounding=_DECIMAL_MODES[mode]))


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
"""Symbols written before an amount for people (``$1,234.50``); other currencies get the code."""


def format_money(amount: Decimal, currency: str, *, places: int = 2) -> str:
    """``Decimal("-1234.5")`` → ``"−$1,234.50"``: a symbol for USD, EUR, GBP, JPY, else the code.

    For people (reports, charts, terminal headlines); machine outputs use ``format_amount``.
    An amount with more decimals than ``places`` is rounded half up (R15), never by the
    decimal context's half-even.
    """
    shown = round_decimal(amount, places, RoundingMode.HALF_UP)
    sign = "−" if shown < 0 else ""
    text = f"{abs(shown):,.{places}f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


class Money(BaseModel):
    """An exact amount in a currency: a ``Decimal`` (never a float) and an ISO 4217 code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Decimal
    """The amount, exact; built from a string, an int or a Decimal (a float is refused)."""
    currency: str = "USD"
    """ISO 4217 code of the currency."""

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError("a float amount is refused: pass a string or a Decimal")
        return value

    @classmethod
    def from_cents(cls, cents: int, currency: str = "USD") -> Money:
        """Integer minor units (cents) → ``Money`` with two decimals."""
        return cls(amount=cents_to_decimal(cents), currency=currency)

    def rounded(self, mode: RoundingMode = RoundingMode.HALF_UP, places: int = 2) -> Money:
        """The amount rounded once with a named mode (R15: two decimals)."""
        return self.model_copy(update={"amount": round_decimal(self.amount, places, mode)})

    def text(self) -> str:
        """Machine form: ``"-1234.50"``, exactly two decimals (R15)."""
        return format_amount(self.amount)

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)
