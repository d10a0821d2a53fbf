"""rftcost.money: the one place that rounds, formats and parses money."""

from __future__ import annotations

import decimal
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from strategies import examples

from rftcost.money import (
    CENT,
    CURRENCY_SYMBOLS,
    Money,
    RoundingMode,
    cents_to_decimal,
    divide_round,
    exact_context,
    format_amount,
    format_cents,
    format_money,
    parse_amount,
    round_decimal,
    to_decimal,
    to_minor_units,
    units_text,
    units_to_decimal,
)

DECIMAL_MODES = {
    RoundingMode.HALF_UP: decimal.ROUND_HALF_UP,
    RoundingMode.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    RoundingMode.UP: decimal.ROUND_UP,
    RoundingMode.DOWN: decimal.ROUND_DOWN,
}


def quantized(numerator: int, denominator: int, mode: RoundingMode) -> int:
    """The reference: exact Decimal division, then ``quantize`` to a unit with ``mode``."""
    digits = len(str(numerator)) + len(str(denominator)) + 10
    with decimal.localcontext(decimal.Context(prec=digits)):
        quotient = Decimal(numerator) / Decimal(denominator)
        return int(quotient.quantize(Decimal(1), rounding=DECIMAL_MODES[mode]))


# --- divide_round against Decimal.quantize, in every mode -----------------------------------

MODES = st.sampled_from(list(RoundingMode))
WIDE = st.integers(min_value=0, max_value=10**40)
POSITIVE_WIDE = st.integers(min_value=1, max_value=10**30)
# int64 arrays: the remainder is doubled inside, so denominators stay below 2**62.
INT64 = st.integers(min_value=0, max_value=2**62)
POSITIVE_INT64 = st.integers(min_value=1, max_value=2**61)


@settings(max_examples=examples(300))
@given(
    numerator=st.one_of(st.integers(0, 1000), WIDE),
    denominator=st.one_of(st.integers(1, 100), POSITIVE_WIDE),
    mode=MODES,
)
def test_divide_round_is_decimal_division_and_quantize_for_python_ints(
    numerator: int, denominator: int, mode: RoundingMode
) -> None:
    assert divide_round(numerator, denominator, mode) == quantized(numerator, denominator, mode)


@settings(max_examples=examples(100))
@given(
    numerators=st.lists(st.one_of(st.integers(0, 10_000), INT64), min_size=0, max_size=30),
    denominator=st.one_of(st.integers(1, 1000), POSITIVE_INT64),
    mode=MODES,
)
def test_divide_round_is_decimal_division_and_quantize_for_int64_arrays(
    numerators: list[int], denominator: int, mode: RoundingMode
) -> None:
    got = divide_round(np.array(numerators, dtype=np.int64), denominator, mode)
    assert got.dtype == np.int64
    assert got.tolist() == [quantized(n, denominator, mode) for n in numerators]


@settings(max_examples=examples(100))
@given(
    numerators=st.lists(WIDE, min_size=1, max_size=20),
    denominator=POSITIVE_WIDE,
    mode=MODES,
)
def test_divide_round_is_decimal_division_and_quantize_for_object_arrays(
    numerators: list[int], denominator: int, mode: RoundingMode
) -> None:
    got = divide_round(np.array(numerators, dtype=object), denominator, mode)
    assert [int(v) for v in got] == [quantized(n, denominator, mode) for n in numerators]


@pytest.mark.parametrize(
    ("numerator", "mode", "expected"),
    [
        (5, RoundingMode.HALF_UP, 1),  # 0.5 → 1
        (5, RoundingMode.HALF_EVEN, 0),  # 0.5 → 0
        (15, RoundingMode.HALF_EVEN, 2),  # 1.5 → 2
        (1, RoundingMode.UP, 1),
        (9, RoundingMode.DOWN, 0),
        (0, RoundingMode.UP, 0),
    ],
)
def test_divide_round_halves_and_edges(numerator: int, mode: RoundingMode, expected: int) -> None:
    assert divide_round(numerator, 10, mode) == expected


def test_divide_round_refuses_a_denominator_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        divide_round(1, 0, RoundingMode.HALF_UP)


# --- round_decimal, exact_context, to_minor_units --------------------------------------------


@settings(max_examples=examples(200))
@given(
    value=st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-(10**30),
                      max_value=10**30),
    places=st.integers(0, 6),
    mode=MODES,
)  # fmt: skip
def test_round_decimal_rounds_once_with_the_named_mode(
    value: Decimal, places: int, mode: RoundingMode
) -> None:
    got = round_decimal(value, places, mode)
    with decimal.localcontext(decimal.Context(prec=100)):
        assert got == value.quantize(Decimal(1).scaleb(-places), rounding=DECIMAL_MODES[mode])
    assert got.as_tuple().exponent == -places


def test_round_decimal_beyond_28_digits_does_not_raise() -> None:
    value = Decimal("12345678901234567890123456789.125")
    assert round_decimal(value, 2, RoundingMode.HALF_EVEN) == Decimal(
        "12345678901234567890123456789.12"
    )


def test_exact_context_keeps_every_digit_of_a_product() -> None:
    a, b = Decimal("123456789012345678901234567890.123"), Decimal("0.000000000000000001")
    with decimal.localcontext(exact_context(a, b)) as context:
        product = a * b
        assert not context.flags[decimal.Inexact]
    assert product == Decimal("123456789012.345678901234567890123")


def test_to_minor_units_rounds_once_and_never_truncates() -> None:
    assert to_minor_units(Decimal("12.345"), RoundingMode.HALF_UP) == 1235
    assert to_minor_units(Decimal("12.345"), RoundingMode.HALF_EVEN) == 1234
    assert to_minor_units(Decimal("12.341"), RoundingMode.UP) == 1235
    assert to_minor_units(Decimal("12.349"), RoundingMode.DOWN) == 1234
    assert to_minor_units(Decimal("1.5"), RoundingMode.HALF_UP, places=0) == 2
    assert to_minor_units("0.0000015", RoundingMode.HALF_UP, places=6) == 2  # type: ignore[arg-type]
    big = Decimal("9" * 40 + ".995")
    assert to_minor_units(big, RoundingMode.HALF_UP) == int("1" + "0" * 42)
    with pytest.raises(TypeError):
        to_minor_units(1.5, RoundingMode.HALF_UP)  # type: ignore[arg-type]


# --- conversions and text --------------------------------------------------------------------


def test_to_decimal_refuses_floats_and_bools() -> None:
    assert to_decimal("1.10") == Decimal("1.10") and to_decimal(3) == Decimal(3)
    value = Decimal("2.5")
    assert to_decimal(value) is value
    for bad in (1.1, True):
        with pytest.raises(TypeError, match="refusing"):
            to_decimal(bad)  # type: ignore[arg-type]


def test_cents_and_units_to_decimal_are_exact() -> None:
    assert cents_to_decimal(-123456) == Decimal("-1234.56")
    assert str(cents_to_decimal(5)) == "0.05"
    assert units_to_decimal(123, 4) == Decimal("0.0123")
    assert units_to_decimal(10**40 + 1, 6) == Decimal("10000000000000000000000000000000000.000001")
    assert units_to_decimal(7, 0) == 7
    assert Decimal("0.01") == CENT


def test_format_cents_and_format_amount_have_two_decimals() -> None:
    assert format_cents(123450) == "1234.50"
    assert format_cents(-5) == "-0.05"
    assert format_cents(0) == "0.00"
    assert format_amount(Decimal("1234.5")) == "1234.50"
    assert format_amount(Decimal("0.005")) == "0.01"  # half up, never the context's half even
    assert format_amount(Decimal("-2")) == "-2.00"


def test_format_money_for_people() -> None:
    assert format_money(Decimal("-1234.5"), "USD") == "−$1,234.50"
    assert format_money(Decimal("1234567.891"), "EUR", places=3) == "€1,234,567.891"
    assert format_money(Decimal("3"), "CHF") == "3.00 CHF"
    assert format_money(Decimal("-0.00"), "GBP") == "£0.00"
    assert set(CURRENCY_SYMBOLS) == {"USD", "EUR", "GBP", "JPY"}


def test_parse_amount() -> None:
    assert parse_amount(" 12.30 ") == Decimal("12.30")
    for bad in ("NaN", "Infinity", "12,30", ""):
        with pytest.raises(decimal.InvalidOperation):
            parse_amount(bad)


def test_units_text_is_exact_and_vectorized() -> None:
    got = units_text(pd.Series([12345, -5, 0, None], index=[3, 4, 5, 6], dtype="Int64"), 2)
    assert got.tolist()[:3] == ["123.45", "-0.05", "0.00"] and got.isna().tolist()[3]
    assert list(got.index) == [3, 4, 5, 6]
    assert units_text(np.array([1, 2_000_001]), 6).tolist() == ["0.000001", "2.000001"]
    assert units_text([7, -7], 0).tolist() == ["7", "-7"]
    assert units_text([], 2).tolist() == []
    with pytest.raises(ValueError):
        units_text([1], -1)


@settings(max_examples=examples(100))
@given(values=st.lists(st.integers(-(2**62), 2**62), max_size=20), places=st.integers(0, 9))
def test_units_text_equals_the_decimal_of_each_value(values: list[int], places: int) -> None:
    expected = [f"{Decimal(v).scaleb(-places):.{places}f}" for v in values]
    assert units_text(values, places).tolist() == expected


# --- Money -----------------------------------------------------------------------------------


def test_money_is_exact_frozen_and_refuses_floats() -> None:
    price = Money(amount="1234.5", currency="EUR")  # type: ignore[arg-type]
    assert price.amount == Decimal("1234.5") and str(price) == "€1,234.50"
    assert price.text() == "1234.50"
    with pytest.raises(ValidationError, match="float"):
        Money(amount=1.1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Money(amount=Decimal(1), colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        price.amount = Decimal(2)  # type: ignore[misc]


def test_money_from_cents_and_rounded() -> None:
    assert Money.from_cents(-250, "GBP") == Money(amount=Decimal("-2.50"), currency="GBP")
    assert Money(amount=Decimal("0.125")).rounded().amount == Decimal("0.13")
    assert Money(amount=Decimal("0.125")).rounded(RoundingMode.HALF_EVEN).amount == Decimal("0.12")
    assert Money(amount=Decimal("1.23456")).rounded(places=3).amount == Decimal("1.235")
