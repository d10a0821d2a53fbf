"""Each billing rule of ``rftcost.rules``, tested directly with exact integers and Decimals."""

from __future__ import annotations

import decimal
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rftcost import rules
from rftcost.money import RoundingMode
from rftcost.policy import Policy, load_policy


def policy_with(**update: object) -> Policy:
    """The default policy with some settings replaced (no file needed)."""
    base = load_policy("openai-rft")
    changed: dict[str, object] = {}
    for name, value in update.items():
        if name in ("seconds_mode", "hours_mode", "money_mode", "hours_decimals", "scope"):
            rounding = changed.get("rounding", base.rounding)
            assert not isinstance(rounding, dict)
            changed["rounding"] = rounding.model_copy(update={name: value})  # type: ignore[attr-defined]
        else:
            changed[name] = value
    return base.model_copy(update=changed)


# --- the hourly rate in force (R11) -------------------------------------------------------------


def test_rate_places_is_six_unless_a_rate_has_more_decimals() -> None:
    assert rules.rate_places(policy_with()) == 6
    long = policy_with(hourly_rates={"o4-mini": Decimal("100.0000005")})
    assert rules.rate_places(long) == 7


def test_hourly_rate_units_is_exact_and_never_truncates() -> None:
    assert rules.hourly_rate_units(Decimal("100"), 6) == 100_000_000
    assert rules.hourly_rate_units(Decimal("100.0000005"), 7) == 1_000_000_005
    assert rules.hourly_rate_units(Decimal("0.5"), 6) == 500_000
    with pytest.raises(ValueError, match="more than 6 decimals"):
        rules.hourly_rate_units(Decimal("100.0000005"), 6)


def test_rate_units_per_row_with_unknown_models_at_zero() -> None:
    policy = policy_with(hourly_rates={"o4-mini": Decimal("100.0000005")})
    models = pd.Series(["o4-mini-2025-04-16", "o4-mini", "gpt-unknown"], index=[5, 6, 7])
    units = rules.rate_units(models, policy)
    assert units.dtype == "int64"
    assert units.to_dict() == {5: 1_000_000_005, 6: 1_000_000_005, 7: 0}
    with pytest.raises(ValueError):
        rules.rate_units(models, policy, places=6)


def test_a_rate_with_many_digits_stays_exact_as_python_integers() -> None:
    rate = Decimal("100.004999999999999999999999999999999")
    policy = policy_with(hourly_rates={"o4-mini": rate})
    units = rules.rate_units(pd.Series(["o4-mini"]), policy)
    assert units.dtype == object
    assert rules.rate_places(policy) == 33
    assert units.iloc[0] == 100_004_999_999_999_999_999_999_999_999_999_999


def test_a_seven_decimal_rate_is_billed_exactly_not_truncated() -> None:
    # 100.0000005/h for 10,000.00 h: 1,000,000.005 → half up 1,000,000.01 (a truncated
    # rate of 100.000000 would give 1,000,000.00).
    policy = policy_with(hourly_rates={"o4-mini": Decimal("100.0000005")})
    rate = rules.rate_units(pd.Series(["o4-mini"]), policy)
    cents = rules.compute_cents(pd.Series([1_000_000]), rate, policy)
    assert int(cents.iloc[0]) == 100_000_001
    exact = Decimal("10000.00") * Decimal("100.0000005")
    expected = exact.quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_UP)
    assert Decimal(int(cents.iloc[0])).scaleb(-2) == expected


# --- seconds → hours → cents (R11) -----------------------------------------------------------


def test_hour_units_rounds_seconds_then_hours_half_up() -> None:
    policy = policy_with()
    ns = pd.Series([3618, 3617, 3600, 0], index=[9, 8, 7, 6]) * rules.NS_PER_SECOND
    units = rules.hour_units(ns, policy)
    assert units.to_dict() == {9: 101, 8: 100, 7: 100, 6: 0}  # worked examples 3 and 4
    assert rules.hour_units(3618 * rules.NS_PER_SECOND, policy) == 101
    array = rules.hour_units(np.array([1_499_999_999, 1_500_000_000], dtype="int64"), policy)
    assert array.tolist() == [0, 0]  # 1 s and 2 s are both 0.00 h


def test_hour_units_rounds_the_half_second() -> None:
    policy = policy_with(hours_decimals=4)
    assert rules.hour_units(1_500_000_000, policy) == 6  # 2 s = 0.000555… h → 0.0006
    assert rules.hour_units(1_499_999_999, policy) == 3  # 1 s = 0.000277… h → 0.0003


def test_compute_cents_of_worked_examples() -> None:
    policy = policy_with()
    rate = rules.rate_units(pd.Series(["o4-mini"] * 3), policy)
    cents = rules.compute_cents(pd.Series([400, 101, 100]), rate, policy)
    assert cents.tolist() == [40_000, 10_100, 10_000]
    array = rules.compute_cents(np.array([180], dtype="int64"), 100_000_000, policy)
    assert array.tolist() == [18_000]  # 1.8 h costs $180


_MODES = {
    RoundingMode.HALF_UP: decimal.ROUND_HALF_UP,
    RoundingMode.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    RoundingMode.UP: decimal.ROUND_UP,
    RoundingMode.DOWN: decimal.ROUND_DOWN,
}


@given(
    ns=st.integers(0, 10**15),
    rate=st.decimals(min_value=0, max_value=10_000, places=8, allow_nan=False),
    decimals=st.integers(0, 6),
    seconds_mode=st.sampled_from(list(RoundingMode)),
    hours_mode=st.sampled_from(list(RoundingMode)),
    money_mode=st.sampled_from(list(RoundingMode)),
)
def test_hours_and_cents_equal_decimal_quantize_in_every_mode(
    ns: int,
    rate: Decimal,
    decimals: int,
    seconds_mode: RoundingMode,
    hours_mode: RoundingMode,
    money_mode: RoundingMode,
) -> None:
    policy = policy_with(
        hourly_rates={"o4-mini": rate},
        hours_decimals=decimals,
        seconds_mode=seconds_mode,
        hours_mode=hours_mode,
        money_mode=money_mode,
    )
    units = rules.hour_units(pd.Series([ns]), policy)
    rates = rules.rate_units(pd.Series(["o4-mini"]), policy)
    cents = rules.compute_cents(units, rates, policy)

    with decimal.localcontext(decimal.Context(prec=100)):
        seconds = (Decimal(ns) / 10**9).quantize(Decimal(1), rounding=_MODES[seconds_mode])
        hours = (seconds / 3600).quantize(Decimal(1).scaleb(-decimals), rounding=_MODES[hours_mode])
        amount = (hours * rate).quantize(Decimal("0.01"), rounding=_MODES[money_mode])
    assert Decimal(int(units.iloc[0])).scaleb(-decimals) == hours
    assert Decimal(int(cents.iloc[0])).scaleb(-2) == amount


def test_time_value_cents_sums_exactly_then_rounds_once() -> None:
    policy = policy_with()
    rate = np.array([100_000_000, 100_000_000], dtype="int64")
    # 18 s + 18 s at $100/h: 0.5 + 0.5 = $1.00 (rounded separately: 0.50 + 0.50 as well,
    # but 9 s + 9 s is 0.25 + 0.25 = 0.50, never 0.25 → 0.25 each rounded and summed).
    ns = np.array([9, 9], dtype="int64") * rules.NS_PER_SECOND
    assert rules.time_value_cents(ns, rate, policy) == 50
    assert rules.time_value_cents(np.array([], dtype="int64"), np.array([]), policy) == 0


# --- the cap ------------------------------------------------------------------------------------


def test_cap_cents_rounds_through_money_not_truncation() -> None:
    assert rules.cap_cents(policy_with()) is None
    azure = load_policy("azure-rft")
    assert rules.cap_cents(azure) == 500_000
    odd = azure.model_copy(
        update={"cap": azure.cap.model_copy(update={"per_job_amount": Decimal("4999.999")})}
    )
    assert rules.cap_cents(odd) == 500_000  # int(cap * 100) would give 499_999


def test_apply_cap_cuts_the_charge_that_reaches_it_and_not_later_ones() -> None:
    azure = load_policy("azure-rft")
    compute = pd.Series([300_000, 300_000, 100_000, 50_000])
    grader = pd.Series([0, 1_000, 0, 0])
    job = pd.Series([1, 1, 1, 2])
    capped, cut = rules.apply_cap(compute, grader, job, azure)
    # Job 1: 3,000 then 2,000 of room with 10 of grader → 1,990 of compute; the third
    # charge starts at the cap (resumed): billed in full. Job 2 is far below the cap.
    assert capped.tolist() == [300_000, 199_000, 100_000, 50_000]
    assert cut.tolist() == [False, True, False, False]
    uncapped, none_cut = rules.apply_cap(compute, grader, job, policy_with())
    assert uncapped.tolist() == compute.tolist()
    assert not none_cut.any()


def test_capped_compute_with_earlier_charges() -> None:
    out = rules.capped_compute(
        np.array([400_000, 400_000]), np.array([0, 0]), np.array([200_000, 600_000]), 500_000
    )
    assert out.tolist() == [300_000, 400_000]


# --- the data-sharing discount (R12) ----------------------------------------------------------


def test_discount_is_half_of_compute_rounded_half_up_where_sharing() -> None:
    policy = policy_with()
    compute = pd.Series([40_000, 10_101, 10_101], index=[3, 4, 5])
    grader = pd.Series([250, 0, 0], index=[3, 4, 5])
    discount = rules.discount_cents(compute, grader, np.array([True, True, False]), policy)
    assert discount.to_dict() == {3: 20_000, 4: 5_051, 5: 0}  # worked example 9; 50.505 → 50.51


def test_discount_scope_grader_and_none() -> None:
    base = policy_with()
    both = base.model_copy(
        update={
            "data_sharing_discount": base.data_sharing_discount.model_copy(
                update={"scope": ("compute", "grader")}
            )
        }
    )
    none = base.model_copy(
        update={
            "data_sharing_discount": base.data_sharing_discount.model_copy(update={"scope": ()})
        }
    )
    compute, grader = np.array([1_000]), np.array([251])
    assert rules.discount_cents(compute, grader, True, both).tolist() == [626]
    assert rules.discount_cents(compute, grader, True, none).tolist() == [0]
    assert rules.discount_cents(1_000, 0, True, base) == 500


def test_a_long_discount_rate_is_exact() -> None:
    base = policy_with()
    third = base.model_copy(
        update={
            "data_sharing_discount": base.data_sharing_discount.model_copy(
                update={"rate": Decimal("0.33333333333333333333333333333")}
            )
        }
    )
    assert rules.discount_cents(np.array([10_000]), np.array([0]), True, third).tolist() == [3_333]


# --- token prices in force (R10) and token amounts (R13) ----------------------------------------


def _ns(text: str) -> int:
    return int(pd.Timestamp(text).value)


def test_price_in_force_takes_the_latest_entry_at_or_before_the_time() -> None:
    prices = load_policy("openai-rft").price_table.to_frame()
    usage = pd.DataFrame(
        {
            "ts": [
                _ns("2025-06-11T00:00:00Z"),
                _ns("2025-06-09T00:00:00Z"),
                _ns("2025-06-10T00:00:00Z"),  # the day of the change: the new price
                _ns("2025-06-09T00:00:00Z"),
                _ns("2020-01-01T00:00:00Z"),  # before any o3 price
            ],
            "grader_model": ["o3", "o3-2025-04-16", "o3", "not-a-model", "o3"],
        },
        index=[10, 20, 30, 40, 50],
    )
    priced = rules.price_in_force(usage, prices)
    assert list(priced.index) == [10, 20, 30, 40, 50]
    assert priced["grader_family"].tolist() == ["o3", "o3", "o3", "not-a-model", "o3"]
    assert priced["input_pico"].tolist()[:3] == [2_000_000, 10_000_000, 2_000_000]
    assert priced["output_pico"].tolist()[:3] == [8_000_000, 40_000_000, 8_000_000]
    assert priced["price_index"].isna().tolist() == [False, False, False, True, True]
    assert priced["effective_ns"].iloc[0] == _ns("2025-06-10T00:00:00Z")
    rows = rules.price_rows_in_force(priced["grader_family"], usage["ts"], prices)
    assert rows.tolist()[3:] == [-1, -1]


def test_price_in_force_agrees_with_the_table_lookup() -> None:
    table = load_policy("openai-rft").price_table
    prices = table.to_frame()
    stamps = pd.date_range("2024-01-01", "2025-12-31", periods=40, tz="UTC")
    models = ["gpt-4.1", "o3", "o4-mini-2025-04-16", "gpt-4o-mini"]
    usage = pd.DataFrame(
        [(int(t.value), m) for t in stamps for m in models], columns=["ts", "grader_model"]
    )
    priced = rules.price_in_force(usage, prices)
    for row in priced.itertuples():
        at = datetime.fromtimestamp(row.ts / 1e9, tz=UTC)
        try:
            entry = table.lookup(str(row.grader_model), at)
        except Exception:
            assert pd.isna(row.price_index)
            continue
        assert row.input_pico == rules.token_price_pico(entry.input, table.unit_tokens)
        assert row.cached_pico == rules.token_price_pico(entry.cached_input, table.unit_tokens)
        assert row.output_pico == rules.token_price_pico(entry.output, table.unit_tokens)


def test_token_pico_of_worked_example_10() -> None:
    # gpt-4.1: 1,000,000 input of which 200,000 cached, 100,000 output → $2.50.
    pico = rules.token_pico(
        pd.Series([1_000_000]),
        pd.Series([200_000]),
        pd.Series([100_000]),
        pd.Series([2_000_000]),
        pd.Series([500_000]),
        pd.Series([8_000_000]),
    )
    assert pico.tolist() == [2_500_000_000_000]
    assert rules.grader_cents(pico, policy_with()).tolist() == [250]


def test_token_pico_beyond_int64_uses_python_integers() -> None:
    big = 2**40
    pico = rules.token_pico(
        np.array([big, big]), np.array([0, 0]), np.array([0, 0]), 40_000_000, 0, 0
    )
    assert pico.dtype == object
    assert [int(p) for p in pico] == [big * 40_000_000] * 2
    assert (
        rules.grader_cents(pico, policy_with()).tolist()
        == [(big * 40_000_000 + rules.PICO_PER_CENT // 2) // rules.PICO_PER_CENT] * 2
    )


def test_grader_cents_rounds_half_up_once() -> None:
    policy = policy_with()
    half = rules.PICO_PER_CENT // 2
    assert rules.grader_cents(np.array([half - 1, half, 0]), policy).tolist() == [0, 1, 0]
    down = policy_with(money_mode=RoundingMode.DOWN)
    assert rules.grader_cents(np.array([rules.PICO_PER_CENT * 2 - 1]), down).tolist() == [1]


def test_token_price_pico() -> None:
    assert rules.token_price_pico(Decimal("0.025"), 1_000_000) == 25_000
    assert rules.token_price_pico(Decimal("2.00"), 1_000) == 2_000_000_000
