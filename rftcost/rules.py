"""One function per billing rule (R10-R13, the cap): the arithmetic every stage shares.

The billing kernel, the audit, the estimate, the FOCUS export and the charts call
these functions; none of them computes a rule again, so a fix to a rule lands here
once. Every function is pure (no state, no I/O) and vectorized: it takes whole
arrays or ``Series`` and returns the same kind, never looping per row or per job.

Units, all integers (R14: no binary float touches an amount):

- time: nanoseconds (``NS_PER_SECOND``, ``NS_PER_HOUR``);
- billed hours: *hour units* of ``10^-hours_decimals`` hours (the policy's decimals);
- an hourly rate: *rate units* of ``10^-rate_places(policy)`` of the currency per hour,
  exact for every rate of the policy (at least 6 places: micro-units; more when a
  rate is written with more decimals, so ``100.0000005`` is never truncated);
- money: cents (minor units); token amounts and token prices: pico-units of the
  currency (``10^-12``), summed exactly and rounded once to the cent.

Every rounding goes through ``money.divide_round`` (or ``money.to_minor_units`` for a
configured amount) with the policy's named mode.

``priced_tokens`` reads a ``Bill``'s grader lines and splits their charged tokens by
token type and price entry (R9, R10, R13): what an invoice with token lines bills and
what the audit expects of one. ``invoice`` and ``audit`` both read it here.
"""

from __future__ import annotations

from collections.abc import Container
from decimal import Decimal
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from rftcost.money import divide_round, to_minor_units
from rftcost.policy import Policy
from rftcost.prices import PICO_PER_DOLLAR, resolve_model_family, token_price_pico

__all__ = [
    "MIN_RATE_PLACES",
    "NS_PER_HOUR",
    "NS_PER_SECOND",
    "PICO_PER_CENT",
    "PRICED_TOKEN_COLUMNS",
    "TOKEN_PARTS",
    "apply_cap",
    "cap_cents",
    "cap_charges",
    "capped_amounts",
    "capped_compute",
    "compute_cents",
    "discount_cents",
    "grader_cents",
    "hour_units",
    "hourly_rate_units",
    "price_family",
    "price_in_force",
    "price_index_at",
    "price_rows_in_force",
    "priced_tokens",
    "rate_places",
    "rate_units",
    "shrink_shares",
    "time_value_cents",
    "token_pico",
    "token_price_pico",
]

NS_PER_SECOND = 1_000_000_000
"""Nanoseconds per second: time is kept in integer nanoseconds."""
NS_PER_HOUR = 3600 * NS_PER_SECOND
"""Nanoseconds per hour."""
PICO_PER_CENT = PICO_PER_DOLLAR // 100
"""Pico-units of the currency per cent (token amounts are summed in pico-units)."""
MIN_RATE_PLACES = 6
"""Rate units are at least micro-units of the currency per hour."""

_SECONDS_PER_HOUR = 3600
_INT64_SAFE = 2**62
"""Below this, a product or a sum of a few of them cannot overflow int64."""

_IntArray = npt.NDArray[np.int64]


# --- the hourly rate in force (R11) ------------------------------------------------------------


def rate_places(policy: Policy) -> int:
    """Decimals that hold every hourly rate of ``policy`` exactly (at least 6) (R11, R14).

    Rate units are ``10^-rate_places`` of the currency per hour: ``100`` per hour is
    ``100_000_000`` units at 6 places, ``100.0000005`` is ``1_000_000_005`` at 7.
    """
    exponents = [int(rate.as_tuple().exponent) for rate in policy.hourly_rates.values()]
    return max([MIN_RATE_PLACES, *(-e for e in exponents)])


def hourly_rate_units(rate: Decimal, places: int) -> int:
    """An hourly rate → exact integer units of ``10^-places`` of the currency (R11, R14).

    Never truncates: a rate with more decimals than ``places`` raises ``ValueError``
    (``int(rate * 1_000_000)`` would silently drop the seventh decimal).
    """
    numerator, denominator = rate.as_integer_ratio()
    scaled: int = numerator * 10**places
    if scaled % denominator:
        raise ValueError(f"hourly rate {rate} has more than {places} decimals")
    return scaled // denominator


def rate_units(models: pd.Series, policy: Policy, places: int | None = None) -> pd.Series:
    """The hourly rate in force for each row's base model, in exact rate units (R11).

    ``places`` defaults to ``rate_places(policy)`` (every rate exact); a smaller
    ``places`` that cannot hold a rate raises ``ValueError``. A model without a rate, or no model,
    gets 0 (its job is invalid). The result is int64, or Python ints (object) when a
    rate written with many digits passes 2^62 units.
    """
    scale = rate_places(policy) if places is None else places
    # By codes of the distinct models: a map of the text would make a Python string of
    # every row (the peak of a bill of a million jobs).
    codes, known = pd.factorize(models)
    rates = [
        hourly_rate_units(policy.hourly_rate(str(model)) or Decimal(0), scale) for model in known
    ]
    big = max(rates, default=0) >= _INT64_SAFE
    table = np.array([*rates, 0], dtype=object if big else "int64")  # code -1: no model
    return pd.Series(table[codes], index=models.index, name=models.name)


# --- seconds → hours → cents (R11) ---------------------------------------------------------------


@overload
def hour_units(ns: pd.Series, policy: Policy) -> pd.Series: ...
@overload
def hour_units(ns: _IntArray, policy: Policy) -> _IntArray: ...
@overload
def hour_units(ns: int, policy: Policy) -> int: ...
def hour_units(ns: Any, policy: Policy) -> Any:
    """Exact nanoseconds → whole seconds → billed hours in hour units (R11).

    Seconds are rounded with the policy's ``seconds_mode``, then hours = seconds / 3600
    to ``hours_decimals`` with its ``hours_mode`` (the invoice's "2.55 hours").
    """
    rounding = policy.rounding
    values = ns.to_numpy(dtype="int64") if isinstance(ns, pd.Series) else ns
    seconds = divide_round(values, NS_PER_SECOND, rounding.seconds_mode)
    units = divide_round(
        seconds * 10**rounding.hours_decimals, _SECONDS_PER_HOUR, rounding.hours_mode
    )
    if isinstance(ns, pd.Series):
        return pd.Series(units, index=ns.index, dtype="int64")
    if isinstance(ns, np.ndarray):
        return np.asarray(units, dtype="int64")
    return int(units)


@overload
def compute_cents(
    hours: pd.Series, rates: pd.Series | int, policy: Policy, *, places: int | None = None
) -> pd.Series: ...
@overload
def compute_cents(
    hours: _IntArray, rates: _IntArray | int, policy: Policy, *, places: int | None = None
) -> _IntArray: ...
def compute_cents(hours: Any, rates: Any, policy: Policy, *, places: int | None = None) -> Any:
    """Hour units × rate units → cents, rounded once with the policy's money mode (R11).

    cents = hours × rate × 100 = (units / 10^d) × (rate units / 10^p) × 100, with ``d``
    the policy's hour decimals and ``p`` the rate places (``rate_places(policy)`` by
    default). The product is exact (Python integers when it could pass 64 bits); an
    amount beyond int64 raises ``OverflowError``.
    """
    scale = rate_places(policy) if places is None else places
    denominator = 10 ** (policy.rounding.hours_decimals + scale - 2)
    units = hours.to_numpy(dtype="int64") if isinstance(hours, pd.Series) else np.asarray(hours)
    rate = rates.to_numpy() if isinstance(rates, pd.Series) else np.asarray(rates)
    largest = int(np.abs(units).max(initial=0)) * int(np.abs(rate).max(initial=0))
    mode = policy.rounding.money_mode
    if rate.dtype == object or largest >= _INT64_SAFE:
        # Exact Python integers when the product could pass 64 bits (a long rate).
        exact = units.astype(object) * rate.astype(object)
        cents = np.asarray(divide_round(exact, denominator, mode), dtype="int64")
    else:
        cents = np.asarray(divide_round(units * rate.astype("int64"), denominator, mode))
    if isinstance(hours, pd.Series):
        return pd.Series(cents, index=hours.index)
    return cents


def time_value_cents(ns: Any, rates: Any, policy: Policy, *, places: int | None = None) -> int:
    """Exact time valued at its hourly rate, summed, rounded once to the cent.

    ``ns`` and ``rates`` (rate units) are aligned arrays or Series; the sum of
    ``ns × rate`` is exact (Python integers) and is rounded with the policy's money
    mode, without the hour rounding of R11: the value of time *before* it is billed,
    which explanations (a waterfall) compare with the billed amount.
    """
    scale = rate_places(policy) if places is None else places
    times = np.asarray(ns, dtype="int64").astype(object)
    values = np.asarray(rates).astype(object)
    exact = int((times * values).sum()) if len(times) else 0
    denominator = NS_PER_HOUR * 10 ** (scale - 2)
    return int(divide_round(exact, denominator, policy.rounding.money_mode))


# --- the per-job cap ("Policy": azure-rft's $5,000) ------------------------------------------


def cap_cents(policy: Policy) -> int | None:
    """The policy's per-job cap in cents, rounded once by its money mode (never truncated).

    ``None`` when the policy has no cap. ``int(cap * 100)`` would truncate a cap with
    more than two decimals; ``money.to_minor_units`` rounds it with a named mode.
    """
    cap = policy.cap.per_job_amount
    return None if cap is None else to_minor_units(cap, policy.rounding.money_mode)


def capped_amounts(compute: Any, grader: Any, before: Any, cap: int) -> tuple[Any, Any]:
    """The compute and grader cents left once a per-job cap applies ("Policy": the Azure cap).

    ``before`` is what the job was charged (compute + grader) before each charge.
    Azure counts training plus grading towards the cap and pauses the job when it is
    reached; "if you resume, billing continues with no further price limits". So a
    charge that starts below the cap is cut to the room left, its compute first, then
    its grader tokens (the job's charges then add up to the cap exactly, never more); a
    charge that starts at or above it bills in full. Arrays (or Series) of int64 cents
    in, two int64 arrays out: the compute and the grader cents kept.
    """
    gross = compute + grader
    in_force = before < cap
    room = np.maximum(cap - before, 0)
    over = np.where(in_force, np.maximum(gross - room, 0), 0)
    compute_cut = np.minimum(compute, over)
    kept_compute = np.asarray(compute - compute_cut).astype("int64")
    kept_grader = np.asarray(grader - (over - compute_cut)).astype("int64")
    return kept_compute, kept_grader


def capped_compute(compute: Any, grader: Any, before: Any, cap: int) -> Any:
    """The compute cents left once a per-job cap applies (``capped_amounts``' compute)."""
    return capped_amounts(compute, grader, before, cap)[0]


def cap_charges(
    compute: pd.Series, grader: pd.Series, job: pd.Series, policy: Policy
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """The policy's per-job cap over every charge of every job, in time order per job.

    Returns the compute and the grader cents after the cap (``capped_amounts``) and
    whether each charge was cut. Before the cap is reached no charge was cut, so the
    uncapped running sum of each job's earlier charges is exact.
    """
    cap = cap_cents(policy)
    if cap is None:
        return compute, grader, pd.Series(False, index=compute.index)
    gross = compute + grader
    before = gross.groupby(job).cumsum() - gross
    kept_compute, kept_grader = capped_amounts(
        compute.to_numpy(dtype="int64"),
        grader.to_numpy(dtype="int64"),
        before.to_numpy(dtype="int64"),
        cap,
    )
    limited = pd.Series(kept_compute, index=compute.index)
    graded = pd.Series(kept_grader, index=grader.index)
    return limited, graded, (limited < compute) | (graded < grader)


def apply_cap(
    compute: pd.Series, grader: pd.Series, job: pd.Series, policy: Policy
) -> tuple[pd.Series, pd.Series]:
    """The compute cents after the per-job cap and whether each charge was cut
    (``cap_charges`` without the grader cents)."""
    limited, _graded, cut = cap_charges(compute, grader, job, policy)
    return limited, cut


def shrink_shares(amounts: Any, groups: Any, targets: Any) -> _IntArray:
    """Each group's non-negative cents cut to its target, shared in proportion (the cap).

    When the per-job cap cuts a charge's grader amount ("Policy"), the parts that make
    it up (its grader lines; a line's token types) are cut with it, so that they still
    add up to the charge to the cent: each part keeps ``floor(amount × target / total)``
    of its group, and the cents still missing go one each to the parts with the
    largest remainders (the earlier part first on a tie): the largest-remainder method.
    ``amounts``, ``groups`` (any integer codes) and ``targets`` (the group's target on
    each of its rows, at most the group's total) are aligned; a group whose target is
    its total keeps its amounts unchanged. Vectorized; exact Python integers only where
    a product could pass 64 bits.
    """
    values = np.asarray(amounts, dtype="int64")
    if not len(values):
        return values
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
    wanted = np.asarray(targets, dtype="int64")
    totals = np.zeros(int(codes.max()) + 1, dtype="int64")
    np.add.at(totals, codes, values)
    total = np.maximum(totals[codes], 1)
    big = int(values.max(initial=0)) * int(wanted.max(initial=0)) >= _INT64_SAFE
    if big:
        product = values.astype(object) * wanted.astype(object)
        exact_floor = product // total.astype(object)
        floor = exact_floor.astype("int64")
        remainder = (product - exact_floor * total.astype(object)).astype("int64")
    else:
        product = values * wanted
        floor = product // total
        remainder = product - floor * total
    given = np.zeros(len(totals), dtype="int64")
    np.add.at(given, codes, floor)
    missing = wanted - given[codes]
    position = np.arange(len(values))
    order = np.lexsort((position, -remainder, codes))
    starts = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]])
    rank = np.empty(len(values), dtype="int64")
    rank[order] = position - np.repeat(starts, np.diff(np.r_[starts, len(values)]))
    shared: _IntArray = floor + (rank < missing).astype("int64")
    return shared


# --- the data-sharing discount (R12) ---------------------------------------------------------


def discount_cents(compute: Any, grader: Any, sharing: Any, policy: Policy) -> Any:
    """The data-sharing discount of each charge, in cents, positive (R12).

    discount = (the amounts in the policy's scope: compute, grader) × rate, rounded
    once with the money mode, where ``sharing`` (a bool or an aligned array) is true.
    ``compute`` and ``grader`` are aligned int64 arrays or Series (or ints); the
    result is of ``compute``'s kind.
    """
    settings = policy.data_sharing_discount
    cents = _int64(compute)
    base = cents * 0
    if "compute" in settings.scope:
        base = base + cents
    if "grader" in settings.scope:
        base = base + _int64(grader)
    numerator, denominator = settings.rate.as_integer_ratio()
    mode = policy.rounding.money_mode
    if max(int(np.abs(base).max(initial=0)), 1) * numerator >= _INT64_SAFE:
        # A rate written with many digits: exact Python integers, rounded once (R14).
        exact = divide_round(base.astype(object) * numerator, denominator, mode)
        discount = np.asarray(exact, dtype="int64")
    else:
        discount = np.asarray(divide_round(base * numerator, denominator, mode), dtype="int64")
    result = np.where(np.asarray(sharing, dtype=bool), discount, 0).astype("int64")
    if isinstance(compute, pd.Series):
        return pd.Series(result, index=compute.index)
    if isinstance(compute, np.ndarray):
        return result
    return int(result)


# --- token prices in force (R10) and token amounts (R9, R13) ---------------------------------


def price_family(models: pd.Series, known: Container[str] = ()) -> pd.Series:
    """Each grader model's price family (``gpt-4.1-2025-04-14`` → ``gpt-4.1``) (R10); a
    name ``known`` to the price table as it is (a dated snapshot's own row) stays.

    Resolved once per distinct name; NA stays NA. Pandas ``string`` dtype.
    """
    if isinstance(models.dtype, pd.CategoricalDtype):
        # Coded already: resolve the few categories, take them by code (NA last).
        of_category = [resolve_model_family(str(m), known) for m in models.cat.categories]
        by_code = pd.array([*of_category, None], dtype="string")
        codes = models.cat.codes.to_numpy()
        taken = by_code.take(np.where(codes < 0, len(of_category), codes))
        return pd.Series(taken, index=models.index, name=models.name)
    families = {m: resolve_model_family(str(m), known) for m in pd.unique(models.dropna())}
    return models.map(families).astype("string")


def price_rows_in_force(families: pd.Series, ns: Any, prices: pd.DataFrame) -> _IntArray:
    """Row position in ``prices`` of the entry in force for each (family, time); -1: none (R10).

    ``prices`` is ``PriceTable.to_frame()``. The entry in force is the latest whose
    ``effective_ns`` is at or before the time, among the family's entries (the last
    listed wins a tie). Rows keep their order: no sort of the usage, one binary
    search per family present.
    """
    times = np.asarray(ns, dtype="int64")
    found = np.full(len(times), -1, dtype="int64")
    # Text factorized as it is (a cast of every row to Python objects costs more).
    codes, present = pd.factorize(pd.Series(families), use_na_sentinel=True)
    table_family = prices["grader_family"].astype(object).to_numpy()
    effective = prices["effective_ns"].to_numpy(dtype="int64")
    for code, family in enumerate(present):
        rows = np.flatnonzero(table_family == family)
        if not len(rows):
            continue
        rows = rows[np.argsort(effective[rows], kind="stable")]
        mine = np.flatnonzero(codes == code)
        position = np.searchsorted(effective[rows], times[mine], side="right") - 1
        found[mine] = np.where(position >= 0, rows[np.maximum(position, 0)], -1)
    return found


_PRICE_COLUMNS = ("price_index", "effective_ns", "input_pico", "cached_pico", "output_pico")


def price_in_force(
    usage: pd.DataFrame,
    prices: pd.DataFrame,
    *,
    time: str = "ts",
    model: str = "grader_model",
) -> pd.DataFrame:
    """``usage`` with the token price entry in force at each row's time (R10).

    Adds ``grader_family`` (string) and, from ``prices`` (``PriceTable.to_frame()``),
    ``price_index`` (the entry's position in its family's list), ``effective_ns`` and
    the rates ``input_pico``, ``cached_pico``, ``output_pico`` (pico-units per token),
    all nullable ``Int64``: NA where no entry is in force (an input error the caller
    reports, never a silent $0). Rows, order and index are kept.
    """
    family = price_family(usage[model], frozenset(prices["grader_family"].astype(str)))
    rows = price_rows_in_force(family, usage[time], prices)
    none = rows < 0
    taken = np.maximum(rows, 0)
    columns: dict[str, pd.Series] = {"grader_family": family}
    for column in _PRICE_COLUMNS:
        values = prices[column].to_numpy(dtype="int64")
        picked = values[taken] if len(values) else np.zeros(len(rows), dtype="int64")
        columns[column] = pd.Series(pd.arrays.IntegerArray(picked, none), index=usage.index)
    return usage.assign(**columns)


def token_pico(
    input_tokens: Any,
    cached_input_tokens: Any,
    output_tokens: Any,
    input_pico: Any,
    cached_pico: Any,
    output_pico: Any,
) -> Any:
    """Exact pico-units of token counts at their rates (R9, R13).

    Uncached input (input − cached, as ``input_tokens`` includes the cached ones) at
    the input rate, cached input at the cached rate, output at the output rate.
    Aligned Series or arrays (a rate may be one int); int64 when the amounts cannot
    overflow even once summed over every row, else exact Python integers (object).
    """
    uncached = input_tokens - cached_input_tokens
    parts = [
        (uncached, input_pico),
        (cached_input_tokens, cached_pico),
        (output_tokens, output_pico),
    ]
    zero = uncached * 0
    if len(np.atleast_1d(np.asarray(uncached))) == 0:
        return zero
    bound = sum(int(np.max(tokens)) * int(np.max(price)) for tokens, price in parts)
    if bound * max(len(np.atleast_1d(np.asarray(uncached))), 1) < _INT64_SAFE:
        return sum((tokens * price for tokens, price in parts), start=zero)
    # Token sums × rates can exceed 64 bits: exact Python integers (rare, slower).
    exact = sum((_objects(tokens) * _objects(price) for tokens, price in parts), start=0)
    if isinstance(uncached, pd.Series):
        return pd.Series(exact, index=uncached.index, dtype=object)
    return np.asarray(exact, dtype=object)


def grader_cents(pico: Any, policy: Policy) -> _IntArray:
    """Exact pico-unit amounts (one per charge and grader model) → cents, rounded once (R13)."""
    values = pico.to_numpy() if isinstance(pico, pd.Series) else np.asarray(pico)
    if values.dtype != object:
        values = values.astype("int64")
    return np.asarray(
        divide_round(values, PICO_PER_CENT, policy.rounding.money_mode), dtype="int64"
    )


def _int64(values: Any) -> _IntArray:
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype="int64")
    return np.asarray(values, dtype="int64")


def _objects(values: Any) -> Any:
    if isinstance(values, pd.Series):
        return values.astype(object)
    if isinstance(values, np.ndarray):
        return values.astype(object)
    return int(values)


# --- grader tokens at the entries in force, for invoices and the audit (R9, R10, R13) ---

TOKEN_PARTS = (
    ("input", 0, "uncached", "input_pico"),
    ("cached_input", 1, "cached_input_tokens", "cached_pico"),
    ("output", 2, "output_tokens", "output_pico"),
)
"""(token type, output order, token column, price column): uncached input is priced at the
input rate, cached input and output at theirs (R9)."""

PRICED_TOKEN_COLUMNS = (
    "job_id",
    "charge",
    "grader_model",
    "grader_family",
    "token_type",
    "token_order",
    "price_index",
    "price_micro",
    "tokens",
    "pico",
)
"""Columns of ``priced_tokens``."""


def price_index_at(
    families: pd.Series, ns: pd.Series, prices: pd.DataFrame
) -> np.ndarray[Any, Any]:
    """Index of the price entry in force for each (family, time) in its family's list; -1
    where none (R10: ``rules.price_rows_in_force``)."""
    rows = price_rows_in_force(families.astype(str), ns.to_numpy(dtype="int64"), prices)
    index = prices["price_index"].to_numpy(dtype="int64")
    if not len(index):
        return np.full(len(rows), -1, dtype="int64")
    return np.where(rows >= 0, index[np.maximum(rows, 0)], -1).astype("int64")


def priced_tokens(bill: Any, grader_lines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Charged grader tokens per job, charge, grader model, token type and price entry.

    ``input`` is uncached input (input − cached), priced at the input rate;
    ``cached_input`` and ``output`` at theirs (R9). A charge whose segment lies
    within one price entry takes its tokens from the bill's grader lines; a segment
    that straddles a price change is priced usage event by usage event (R10).
    Columns: job_id, charge, grader_model, grader_family, token_type, token_order,
    price_index, price_micro (per 1M tokens, in millionths = pico-units per token),
    tokens, pico (object ints: exact amount in 10^-12 of the currency).
    """
    policy = bill.policy
    lines = bill.grader_lines if grader_lines is None else grader_lines
    lines = lines[lines["charge"] >= 0]
    prices = policy.price_table.to_frame()
    columns = list(PRICED_TOKEN_COLUMNS)
    if lines.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    charges = bill.charges[["job_id", "charge", "segment_start", "at"]].astype({"job_id": object})
    lines = lines.astype({"job_id": object}).merge(charges, on=["job_id", "charge"], how="left")
    family = price_family(lines["grader_model"].astype(str), policy.price_table.models)
    lines = lines.assign(grader_family=family.astype(object))
    at_start = price_index_at(family, lines["segment_start"], prices)
    at_end = price_index_at(family, lines["at"], prices)
    single = at_start == at_end
    within = lines[single]
    # From the selected rows alone: a column from the whole frame given to an empty
    # selection would give it the whole frame's rows (pandas adopts that index).
    simple = within.assign(
        price_index=at_end[single],
        uncached=within["input_tokens"] - within["cached_input_tokens"],
    )
    keyed_prices = prices.astype({"grader_family": object})
    simple = simple.merge(keyed_prices, on=["grader_family", "price_index"], how="left")
    parts = [simple]
    if not single.all():
        parts.append(_straddling(bill, lines[~single], keyed_prices))
    priced = pd.concat(parts, ignore_index=True)
    frames = []
    for token_type, order, tokens, price in TOKEN_PARTS:
        count = priced[tokens].astype("int64")
        rate = priced[price].astype("int64")
        frames.append(
            pd.DataFrame(
                {
                    "job_id": priced["job_id"].astype(str),
                    "charge": priced["charge"].astype("int64"),
                    "grader_model": priced["grader_model"].astype(str),
                    "grader_family": priced["grader_family"].astype(str),
                    "token_type": token_type,
                    "token_order": order,
                    "price_index": priced["price_index"].astype("int64"),
                    "price_micro": rate,
                    "tokens": count,
                    # R13: exact pico-amounts (Python ints), rounded to cents once per sum.
                    "pico": count.astype(object) * rate.astype(object),
                }
            )
        )
    typed = pd.concat(frames, ignore_index=True)
    typed = typed[typed["tokens"] != 0].astype(
        {"job_id": object, "grader_model": object, "grader_family": object, "token_type": object}
    )
    return typed.sort_values(
        ["job_id", "charge", "grader_model", "token_order", "price_index"]
    ).reset_index(drop=True)[columns]


def _straddling(bill: Any, lines: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Grader lines whose segment straddles a price change, priced per usage event."""
    timeline = bill.timeline
    job_ids = timeline.jobs["job_id"].astype(str)
    usage = timeline.usage[~timeline.usage["lost"]]
    usage = usage.assign(job_id=job_ids.reindex(usage["job"]).to_numpy(), charge=usage["segment"])
    wanted = lines[["job_id", "charge", "grader_model"]].astype({"grader_model": object})
    usage = usage.astype({"grader_model": object}).merge(
        wanted, on=["job_id", "charge", "grader_model"]
    )
    family = price_family(usage["grader_model"], bill.policy.price_table.models).astype(object)
    usage = usage.assign(
        grader_family=family,
        price_index=price_index_at(family, usage["ts"], prices),
        input_tokens=usage["input_tokens"].astype("int64"),
        cached_input_tokens=usage["cached_input_tokens"].fillna(0).astype("int64"),
        output_tokens=usage["output_tokens"].astype("int64"),
    )
    sums = usage.groupby(
        ["job_id", "charge", "grader_model", "grader_family", "price_index"], as_index=False
    )[["input_tokens", "cached_input_tokens", "output_tokens"]].sum()
    sums = sums.assign(uncached=sums["input_tokens"] - sums["cached_input_tokens"])
    priced: pd.DataFrame = sums.merge(prices, on=["grader_family", "price_index"], how="left")
    return priced
