"""FinOps FOCUS (1.x) cost and usage rows, so RFT spend flows into FinOps tools.

``focus_rows(bill)`` turns every charge line of a bill into a FOCUS row:

- **compute** (``ChargeCategory`` ``Usage``): one row per charge; priced in
  ``Hours`` (the billed, rounded hours) at the hourly training rate, consumed in
  ``Seconds`` (the exact billable time);
- **data-sharing discount** (``Credit``): one row per charge that has one, with a
  negative ``BilledCost``; its ``ListCost`` is 0 (at list prices there is no
  discount), so ``ListCost − EffectiveCost`` over a dataset is the saving;
- **grader tokens** (``Usage``): one row per charge, grader model, price entry in
  force (R10) and token type (uncached input, cached input, output), priced per
  ``1000000 Tokens``. A grader line of the bill is rounded once to the cent
  (R13); its cents are shared among its rows by largest remainder, so the rows
  of a line add up to the line exactly.

On every row ``PricingQuantity × ListUnitPrice = ListCost`` exactly (money is
kept in integer units: cents, micro-units of prices, pico-units of list costs).
``BilledCost`` sums to the bill's total to the cent. A charge's period lies in
the billing period (calendar month, UTC) of its billing event, the same rule as
``rftcost spend``: it runs from the start of the charge's segment (clipped to the
billing period) to its billing event. Invalid jobs (amount unknown) and accrued
work (not charged yet) have no rows.

Money columns are ``decimal128`` (pyarrow-backed) in the frame and in Parquet,
and exact decimal strings in CSV.

``focus_chunks(bill)`` yields the same rows in chunks of whole charges, in order, and
``write_focus`` writes such chunks one after the other (issue 16): the text of an
export is held a chunk at a time, never whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rftcost.billing import Bill
from rftcost.csvsafe import neutralise_csv_column
from rftcost.errors import InputError
from rftcost.money import divide_round
from rftcost.rules import price_family, price_in_force, rate_places, shrink_shares
from rftcost.textsafe import visible_controls

__all__ = [
    "FOCUS_COLUMNS",
    "FOCUS_VERSION",
    "focus_chunks",
    "focus_rows",
    "write_focus",
]

FOCUS_VERSION = "1.2"
"""The FOCUS version whose columns are written."""

_NS = 1_000_000_000
_PRICE_SCALE = 6  # micro-units: hourly rates and prices per 1M tokens
_LIST_SCALE = 12  # pico-units: quantity (micro) × price (micro)

# Column → (kind, scale). Kinds: decimal, string, datetime.
_SCHEMA: dict[str, tuple[str, int]] = {
    "BilledCost": ("decimal", 2),
    "EffectiveCost": ("decimal", 2),
    "ListCost": ("decimal", _LIST_SCALE),
    "ContractedCost": ("decimal", _LIST_SCALE),
    "BillingCurrency": ("string", 0),
    "ChargeCategory": ("string", 0),
    "ChargeClass": ("string", 0),
    "ChargeDescription": ("string", 0),
    "ChargeFrequency": ("string", 0),
    "ChargePeriodStart": ("datetime", 0),
    "ChargePeriodEnd": ("datetime", 0),
    "BillingPeriodStart": ("datetime", 0),
    "BillingPeriodEnd": ("datetime", 0),
    "ConsumedQuantity": ("decimal", 9),
    "ConsumedUnit": ("string", 0),
    "PricingQuantity": ("decimal", _PRICE_SCALE),
    "PricingUnit": ("string", 0),
    "PricingCategory": ("string", 0),
    "ListUnitPrice": ("decimal", _PRICE_SCALE),
    "ProviderName": ("string", 0),
    "PublisherName": ("string", 0),
    "InvoiceIssuerName": ("string", 0),
    "ServiceName": ("string", 0),
    "ServiceCategory": ("string", 0),
    "ResourceId": ("string", 0),
    "ResourceName": ("string", 0),
    "ResourceType": ("string", 0),
    "SkuId": ("string", 0),
    "Tags": ("string", 0),
    "x_BillableSeconds": ("decimal", 9),
    "x_LostSeconds": ("decimal", 9),
    "x_GraderModel": ("string", 0),
    "x_JobStatus": ("string", 0),
    "x_ChargeNumber": ("integer", 0),
    "x_BillingEvent": ("string", 0),
    # The billing event and segment start as the log has them, to the millisecond (the
    # charge periods above are whole seconds, as FOCUS writes them).
    "x_BillingEventAt": ("datetime", 3),
    "x_SegmentStart": ("datetime", 3),
    "x_TokenType": ("string", 0),
    "x_Policy": ("string", 0),
}

FOCUS_COLUMNS: tuple[str, ...] = tuple(_SCHEMA)
"""Columns of ``focus_rows``, in order (FOCUS columns, then ``x_`` custom columns)."""

_COST_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")

_CHUNK_CHARGES = 25_000
"""Charges per chunk of ``focus_chunks``: a chunk is at most a few rows per charge."""

_ORDER = ["_at", "ResourceId", "x_ChargeNumber"]
"""The order of the rows: by billing event, job and charge (then compute, discount, grader)."""

_TOKEN_TYPES = (
    ("input", "uncached input", "input_pico"),
    ("cached_input", "cached input", "cached_pico"),
    ("output", "output", "output_pico"),
)


def focus_rows(
    bill: Bill,
    *,
    provider: str | None = None,
    service: str | None = None,
) -> pd.DataFrame:
    """FOCUS rows of ``bill``: one per charge line (compute, discount credit, grader tokens).

    ``provider`` (also used as publisher and invoice issuer) and ``service``
    default from the policy: ``Microsoft`` / ``Azure OpenAI`` for an ``azure``
    policy, else ``OpenAI`` / ``OpenAI Reinforcement Fine-Tuning``.
    """
    return pd.concat(list(focus_chunks(bill, provider=provider, service=service)))


def focus_chunks(
    bill: Bill,
    *,
    provider: str | None = None,
    service: str | None = None,
    chunk_charges: int = _CHUNK_CHARGES,
) -> Iterator[pd.DataFrame]:
    """The rows of ``focus_rows`` in chunks of whole charges (``chunk_charges`` at most), in
    order, indexed as in ``focus_rows``; at least one chunk (empty for a bill without
    charges). Memory holds one chunk of rows, not the export."""
    if chunk_charges < 1:
        raise ValueError("chunk_charges must be at least 1")
    policy = bill.policy
    azure = policy.name.lower().startswith("azure")
    provider = provider or ("Microsoft" if azure else "OpenAI")
    service = service or ("Azure OpenAI" if azure else "OpenAI Reinforcement Fine-Tuning")
    # Charges in the order of the rows: a chunk of them is a run of rows, and the rows of a
    # charge (its grader lines' cents are shared within the charge) never straddle chunks.
    charges = _charges(bill).sort_values(_ORDER, kind="stable").reset_index(drop=True)
    chunk = np.arange(len(charges)) // chunk_charges
    sums = _grader_sums(bill, charges, chunk)
    bounds = np.searchsorted(sums["_chunk"].to_numpy(), np.arange(chunk.max(initial=0) + 2))
    first = 0
    for number, start in enumerate(range(0, max(len(charges), 1), chunk_charges)):
        part = charges.iloc[start : start + chunk_charges]
        grader = sums.iloc[bounds[number] : bounds[number + 1]]
        rows = _chunk_rows(part, grader, bill, provider, service)
        rows.index = pd.RangeIndex(first, first + len(rows))
        first += len(rows)
        yield rows


def _chunk_rows(
    charges: pd.DataFrame, sums: pd.DataFrame, bill: Bill, provider: str, service: str
) -> pd.DataFrame:
    """The typed rows of a run of charges (``sums``: their grader token sums)."""
    policy = bill.policy
    compute = _compute_rows(charges, bill)
    discount = _discount_rows(charges, bill)
    grader = _grader_rows(charges, sums, bill)
    units = pd.concat([compute, discount, grader], ignore_index=True)
    units = units.sort_values([*_ORDER, "_order"], kind="stable")
    units = units.reset_index(drop=True)
    constants: dict[str, Any] = {
        "BillingCurrency": policy.currency,
        "ChargeFrequency": "Usage-Based",
        "ProviderName": provider,
        "PublisherName": provider,
        "InvoiceIssuerName": provider,
        "ServiceName": service,
        "ServiceCategory": "AI and Machine Learning",
        "ResourceName": units["ResourceId"],
        "ResourceType": "Fine-tuning job",
        "x_Policy": policy.name,
    }
    return _typed(units.assign(**constants))


# --- the charges and their context ---------------------------------------------------------


def _charges(bill: Bill) -> pd.DataFrame:
    """Charges with job facts, the billing period of their event and their charge period."""
    jobs = bill.jobs.set_index("job")
    charges = bill.charges
    at = charges["at"].astype("int64")
    stamps = pd.to_datetime(at, unit="ns", utc=True).dt.tz_convert(None)
    month = stamps.dt.to_period("M")
    billing_start = month.dt.start_time.astype("datetime64[ns]").astype("int64")
    billing_end = (
        (month.dt.start_time + pd.DateOffset(months=1)).astype("datetime64[ns]").astype("int64")
    )
    start, end = _charge_periods(charges, at, billing_start, billing_end)
    team = jobs["team"].reindex(charges["job"]).to_numpy()
    project = jobs["project"].reindex(charges["job"]).to_numpy()
    return pd.DataFrame(
        {
            "job": charges["job"].to_numpy(dtype="int64"),
            "charge": charges["charge"].to_numpy(dtype="int64"),
            "ResourceId": charges["job_id"].astype(str).to_numpy(),
            "model": jobs["model"].reindex(charges["job"]).astype(str).to_numpy(),
            "x_JobStatus": jobs["status"].reindex(charges["job"]).astype(str).to_numpy(),
            "Tags": _tags(team, project),
            "_at": at.to_numpy(),
            "ChargePeriodStart": start.to_numpy(),
            "ChargePeriodEnd": end.to_numpy(),
            "BillingPeriodStart": billing_start.to_numpy(),
            "BillingPeriodEnd": billing_end.to_numpy(),
            "x_BillingEventAt": at.to_numpy(),
            "x_SegmentStart": charges["segment_start"].astype("int64").to_numpy(),
            "x_BillingEvent": charges["event"].astype(str).to_numpy(),
            "x_ChargeNumber": charges["charge"].to_numpy(dtype="int64") + 1,
            "hour_units": charges["hour_units"].to_numpy(dtype="int64"),
            "billable_ns": charges["billable_ns"].to_numpy(dtype="int64"),
            "lost_ns": charges["lost_ns"].to_numpy(dtype="int64"),
            "compute_cents": charges["compute_cents"].to_numpy(dtype="int64"),
            "discount_cents": charges["discount_cents"].to_numpy(dtype="int64"),
            "rate_units": charges["rate_units"].to_numpy(),
        }
    )


def _floor_seconds(ns: pd.Series) -> pd.Series:
    return ns - ns % _NS


def _ceil_seconds(ns: pd.Series) -> pd.Series:
    return ns + (-ns) % _NS


def _charge_periods(
    charges: pd.DataFrame, at: pd.Series, billing_start: pd.Series, billing_end: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """Each charge's period in whole seconds: the first from its segment's start (rounded
    down), a later one from where the one before it ended, never before its billing
    period; to its billing event (rounded up), and at least a second long, so that a
    job's periods never overlap (charges at one instant follow each other by a second).

    With ``v`` the earliest end a charge may have (its event rounded up, one second after
    its billing period's start, and for the first one second after its start), the end of
    the ``i``-th charge of a job is ``max(v_j - j s for j <= i) + i s``: a running maximum,
    no loop over the charges. A period never leaves its billing period: more charges in
    the last seconds of a month than seconds left share the month's last second."""
    order = np.lexsort((charges["charge"].to_numpy(), charges["job"].to_numpy()))
    job = charges["job"].to_numpy()[order]
    rank = charges["charge"].to_numpy(dtype="int64")[order]
    first = _floor_seconds(charges["segment_start"].astype("int64")).to_numpy()[order]
    month = billing_start.to_numpy(dtype="int64")[order]
    first = np.maximum(first, month)
    earliest = np.maximum(_ceil_seconds(at).to_numpy()[order], month + _NS)
    earliest = np.where(rank == 0, np.maximum(earliest, first + _NS), earliest)
    shifted = pd.Series(earliest - rank * _NS).groupby(job).cummax().to_numpy()
    ends = shifted + rank * _NS
    previous = np.empty_like(ends)
    previous[1:] = ends[:-1]
    starts = np.where(rank == 0, first, np.maximum(previous, month))
    last = billing_end.to_numpy(dtype="int64")[order]
    ends = np.minimum(ends, last)
    starts = np.minimum(starts, ends - _NS)
    start = np.empty_like(starts)
    end = np.empty_like(ends)
    start[order], end[order] = starts, ends
    return pd.Series(start, index=charges.index), pd.Series(end, index=charges.index)


def _tags(team: Any, project: Any) -> np.ndarray[Any, Any]:
    """FOCUS key-value JSON per row: team and project where the job has them.

    The JSON is written once per distinct (team, project) and joined back.
    """
    pairs = pd.DataFrame({"team": team, "project": project}).astype("string")
    unique = pairs.drop_duplicates().reset_index(drop=True)
    unique["Tags"] = [
        json.dumps(
            {k: v for k, v in (("team", t), ("project", p)) if v is not None},
            ensure_ascii=False,
            sort_keys=True,
        )
        for t, p in zip(
            unique["team"].astype(object).where(unique["team"].notna(), None),
            unique["project"].astype(object).where(unique["project"].notna(), None),
            strict=True,
        )
    ]
    joined = pairs.merge(unique, on=["team", "project"], how="left", sort=False)
    return joined["Tags"].to_numpy(dtype=object)


_CONTEXT = [
    "ResourceId", "x_JobStatus", "Tags", "_at", "ChargePeriodStart", "ChargePeriodEnd",
    "BillingPeriodStart", "BillingPeriodEnd", "x_BillingEventAt", "x_SegmentStart",
    "x_BillingEvent", "x_ChargeNumber",
]  # fmt: skip


# --- compute and discount -------------------------------------------------------------------


def _rate_micro(charges: pd.DataFrame, bill: Bill) -> pd.Series:
    """The hourly rate the bill applied to each charge (R11), in micro-units (FOCUS prices).

    Read from the bill, never recomputed: a rate with more decimals than FOCUS prices
    carry here is refused rather than truncated.
    """
    if rate_places(bill.policy) > _PRICE_SCALE:
        raise InputError(f"FOCUS export supports hourly rates with at most {_PRICE_SCALE} decimals")
    return charges["rate_units"].astype("int64")


def _compute_rows(charges: pd.DataFrame, bill: Bill) -> pd.DataFrame:
    places = bill.policy.rounding.hours_decimals
    if places > _PRICE_SCALE:
        raise InputError(f"FOCUS export supports hours with at most {_PRICE_SCALE} decimals")
    quantity = charges["hour_units"] * 10 ** (_PRICE_SCALE - places)  # hours in micro-units
    rate = _rate_micro(charges, bill)
    list_pico = quantity.astype(object) * rate.astype(object)
    hours_text = _units_text(charges["hour_units"], places)
    rate_text = _units_text(rate, _PRICE_SCALE, min_places=2)
    description = (
        "RFT training compute, " + charges["model"] + ": " + hours_text + " h at "
        + rate_text + " " + bill.policy.currency + "/h (" + charges["x_BillingEvent"] + ")"
    )  # fmt: skip
    return charges[_CONTEXT].assign(
        _order=0,
        ChargeCategory="Usage",
        ChargeDescription=description,
        PricingCategory="Standard",
        SkuId="rft-training-" + charges["model"],
        BilledCost=charges["compute_cents"].astype(object),
        EffectiveCost=charges["compute_cents"].astype(object),
        ListCost=list_pico,
        ContractedCost=list_pico,
        ConsumedQuantity=charges["billable_ns"].astype(object),
        ConsumedUnit="Seconds",
        PricingQuantity=quantity.astype(object),
        PricingUnit="Hours",
        ListUnitPrice=rate.astype(object),
        x_BillableSeconds=charges["billable_ns"].astype(object),
        x_LostSeconds=charges["lost_ns"].astype(object),
        x_GraderModel=None,
        x_TokenType=None,
    )


def _discount_rows(charges: pd.DataFrame, bill: Bill) -> pd.DataFrame:
    discounted = charges[charges["discount_cents"] != 0]
    settings = bill.policy.data_sharing_discount
    rate = f"{settings.rate * 100:f}".rstrip("0").rstrip(".")
    scope = " and ".join(settings.scope) or "nothing"
    negative = (-discounted["discount_cents"]).astype(object)
    return discounted[_CONTEXT].assign(
        _order=1,
        ChargeCategory="Credit",
        ChargeDescription=f"Data-sharing discount (R12): {rate}% of {scope}",
        PricingCategory="Standard",
        SkuId="rft-data-sharing-discount",
        BilledCost=negative,
        EffectiveCost=negative,
        ListCost=0,
        ContractedCost=(negative * 10 ** (_LIST_SCALE - 2)).astype(object),
        ConsumedQuantity=None,
        ConsumedUnit=None,
        PricingQuantity=10**_PRICE_SCALE,  # one discount
        PricingUnit="Discount",
        ListUnitPrice=0,
        x_BillableSeconds=None,
        x_LostSeconds=None,
        x_GraderModel=None,
        x_TokenType=None,
    )


# --- grader tokens --------------------------------------------------------------------------


_SUM_KEYS = ["job", "segment", "grader_model", "price_index"]


def _grader_sums(bill: Bill, charges: pd.DataFrame, chunk: np.ndarray[Any, Any]) -> pd.DataFrame:
    """Charged tokens per charge, grader model and price entry, with the chunk (``_chunk``) of
    their charge; ordered by chunk, then as grouped (the order every chunk's rows keep)."""
    tokens = _charged_usage(bill)
    if tokens.empty:
        return pd.DataFrame({"_chunk": pd.Series([], dtype="int64")})
    sums = tokens.groupby(_SUM_KEYS, as_index=False).agg(
        uncached=("uncached", "sum"),
        cached=("cached_input_tokens", "sum"),
        output=("output_tokens", "sum"),
        input_pico=("input_pico", "first"),
        cached_pico=("cached_pico", "first"),
        output_pico=("output_pico", "first"),
    )
    of_charge = pd.Series(
        chunk, index=pd.MultiIndex.from_arrays([charges["job"], charges["charge"]])
    )
    where = of_charge.reindex(pd.MultiIndex.from_arrays([sums["job"], sums["segment"]]))
    # A charge of an invalid job has no row (its index is missing): after every chunk.
    sums = sums.assign(_chunk=where.fillna(np.iinfo("int64").max).astype("int64").to_numpy())
    return sums.sort_values("_chunk", kind="stable").reset_index(drop=True)


def _grader_rows(charges: pd.DataFrame, sums: pd.DataFrame, bill: Bill) -> pd.DataFrame:
    """One row per charge, grader model, price entry and token type; cents by largest remainder."""
    if sums.empty:
        return pd.DataFrame(columns=[*_CONTEXT, "_order"])
    keys = _SUM_KEYS
    parts = []
    for token_type, _label, price_column in _TOKEN_TYPES:
        count = {"input": "uncached", "cached_input": "cached", "output": "output"}[token_type]
        parts.append(
            sums[[*keys, count, price_column]]
            .rename(columns={count: "tokens", price_column: "pico"})
            .assign(x_TokenType=token_type)
        )
    rows = pd.concat(parts, ignore_index=True)
    rows = rows[rows["tokens"] > 0].rename(columns={"segment": "charge"})
    rows = rows.assign(
        list_pico=rows["tokens"].astype(object) * rows["pico"].astype(object),
    )
    rows = _allocate_cents(rows, bill)
    context = charges.set_index(["job", "charge"])[[*_CONTEXT, "model"]]
    joined = rows.join(context, on=["job", "charge"], how="inner")
    price_per_million = joined["pico"].astype("int64")  # pico per token = micro per 1M tokens
    label = joined["x_TokenType"].map({t: lab for t, lab, _ in _TOKEN_TYPES})
    description = (
        "Grader tokens, " + joined["grader_model"].astype(str) + ", " + label + " at "
        + _units_text(price_per_million, _PRICE_SCALE, min_places=2) + " "
        + bill.policy.currency + " per 1M tokens"
    )  # fmt: skip
    family = price_family(joined["grader_model"].astype(str), bill.policy.price_table.models)
    return joined[_CONTEXT].assign(
        _order=2,
        ChargeCategory="Usage",
        ChargeDescription=description,
        PricingCategory="Standard",
        SkuId="rft-grader-" + family + "-" + joined["x_TokenType"],
        BilledCost=joined["cents"].astype(object),
        EffectiveCost=joined["cents"].astype(object),
        ListCost=joined["list_pico"],
        ContractedCost=joined["list_pico"],
        ConsumedQuantity=(joined["tokens"].astype("int64") * _NS).astype(object),
        ConsumedUnit="Tokens",
        PricingQuantity=joined["tokens"].astype(object),  # tokens = micro-units of 1M tokens
        PricingUnit="1000000 Tokens",
        ListUnitPrice=price_per_million.astype(object),
        x_BillableSeconds=None,
        x_LostSeconds=None,
        x_GraderModel=joined["grader_model"].astype(str),
        x_TokenType=joined["x_TokenType"],
    )


def _charged_usage(bill: Bill) -> pd.DataFrame:
    """Grader usage a charge of a valid job pays for, priced as the billing kernel does (R10)."""
    usage = bill.timeline.usage
    n_charges = bill.charges.groupby("job").size()
    charged = (~usage["lost"].astype(bool)) & (
        usage["segment"].to_numpy() < n_charges.reindex(usage["job"], fill_value=0).to_numpy()
    )
    usage = usage[charged.to_numpy()]
    if usage.empty:
        return usage
    usage = usage.assign(
        uncached=usage["input_tokens"].astype("int64")
        - usage["cached_input_tokens"].fillna(0).astype("int64"),
        cached_input_tokens=usage["cached_input_tokens"].fillna(0).astype("int64"),
        output_tokens=usage["output_tokens"].astype("int64"),
    )
    priced = price_in_force(usage, bill.policy.price_table.to_frame())
    found = priced[priced["price_index"].notna()]
    prices = dict.fromkeys(("price_index", "input_pico", "cached_pico", "output_pico"), "int64")
    return found.astype(prices)


def _allocate_cents(rows: pd.DataFrame, bill: Bill) -> pd.DataFrame:
    """Share each grader line's cents among its rows by largest remainder (exact per line).

    The rows first share the line's amount before any per-job cap (its tokens' exact sum
    rounded once, R13), by the remainders of their exact amounts; a line the cap cut
    then has its rows cut with it, in proportion, as the bill cut the line
    (``rules.shrink_shares``), so that the rows add up to the billed line.
    """
    line_keys = ["job", "charge", "grader_model"]
    lines = bill.grader_lines[bill.grader_lines["charge"] >= 0].set_index(line_keys)["amount_cents"]
    per_cent = 10**_LIST_SCALE // 100
    floor = rows["list_pico"] // per_cent
    remainder = (rows["list_pico"] - floor * per_cent).astype("int64")
    rows = rows.assign(_floor=floor.astype("int64"), _remainder=remainder)
    billed = lines.reindex(pd.MultiIndex.from_frame(rows[line_keys]), fill_value=0).to_numpy()
    capped = bool((bill.charges["grader_cut_cents"].to_numpy() > 0).any())
    target = billed
    if capped:
        exact = rows.groupby(line_keys)["list_pico"].transform("sum").to_numpy(dtype=object)
        uncapped = divide_round(exact, per_cent, bill.policy.rounding.money_mode)
        target = np.maximum(np.asarray(uncapped, dtype="int64"), billed)
    missing = target - rows.groupby(line_keys)["_floor"].transform("sum").to_numpy()
    rank = (
        rows.assign(_position=np.arange(len(rows)))
        .sort_values(["_remainder", "_position"], ascending=[False, True])
        .groupby(line_keys)
        .cumcount()
        .reindex(rows.index)
        .to_numpy()
    )
    cents = rows["_floor"].to_numpy() + (rank < missing).astype("int64")
    if capped:
        line_code = rows.groupby(line_keys, sort=False).ngroup().to_numpy()
        cents = shrink_shares(cents, line_code, billed)
    return rows.assign(cents=cents).drop(columns=["_floor", "_remainder"])


# --- types and text -------------------------------------------------------------------------


def _units_text(units: pd.Series, scale: int, *, min_places: int = 0) -> pd.Series:
    """Integer units of 10^-scale → exact decimal strings, zeros trimmed to ``min_places``."""
    values = pd.Series(units)
    try:
        small = values.to_numpy(dtype="int64")
    except (OverflowError, TypeError, ValueError):  # beyond 64 bits: Python integers
        big = values.astype(object)
        text = [_int_text(int(v), scale, min_places) for v in big]
        return pd.Series(text, index=values.index, dtype=object)
    return pd.Series(_int64_text(small, scale, min_places), index=values.index, dtype=object)


def _int64_text(units: np.ndarray[Any, Any], scale: int, min_places: int) -> np.ndarray[Any, Any]:
    """The vectorized form of ``_int_text`` (numpy string ufuncs, no Python loop)."""
    if units.size == 0:
        return np.empty(0, dtype=object)
    negative = units < 0
    magnitude = np.abs(units)  # -2**63 never occurs: amounts are far smaller
    factor = 10**scale
    whole = (magnitude // factor).astype(str)
    if scale:
        fraction = np.strings.rstrip(np.strings.zfill((magnitude % factor).astype(str), scale), "0")
        fraction = np.strings.ljust(fraction, min_places, "0")
        with_point = np.strings.add(np.strings.add(whole, "."), fraction)
        whole = np.where(np.strings.str_len(fraction) == 0, whole, with_point)
    signed = np.where(negative, np.strings.add("-", whole), whole)
    return signed.astype(object)


def _int_text(value: int, scale: int, min_places: int) -> str:
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**scale)
    digits = f"{fraction:0{scale}d}".rstrip("0").ljust(min_places, "0") if scale else ""
    return f"{sign}{whole}" + (f".{digits}" if digits else "")


def _typed(units: pd.DataFrame) -> pd.DataFrame:
    """Integer units → decimal128, nanoseconds → UTC datetimes (seconds), text → strings."""
    import pyarrow as pa

    columns: dict[str, Any] = {}
    for name, (kind, scale) in _SCHEMA.items():
        values = units[name] if name in units else pd.Series(None, index=units.index, dtype=object)
        if kind == "decimal":
            source_scale = {"ConsumedQuantity": 9, "x_BillableSeconds": 9, "x_LostSeconds": 9}.get(
                name, scale
            )
            missing = values.isna().to_numpy(dtype=bool)
            text = _units_text(values.where(~missing, 0), source_scale).to_numpy(dtype=object)
            array = pa.array(text, type=pa.string(), mask=missing).cast(pa.decimal128(38, scale))
            columns[name] = pd.Series(
                array, dtype=pd.ArrowDtype(pa.decimal128(38, scale)), index=units.index
            )
        elif kind == "datetime":
            stamps = pd.to_datetime(values.astype("int64"), unit="ns", utc=True)
            columns[name] = (
                stamps.dt.floor("ms").astype("datetime64[ms, UTC]")
                if scale == 3
                else stamps.dt.floor("s").astype("datetime64[s, UTC]")
            )
        elif kind == "integer":
            columns[name] = values.astype("int64")
        else:
            columns[name] = values.astype("string")
    return pd.DataFrame(columns, index=units.index)


def write_focus(rows: pd.DataFrame | Iterable[pd.DataFrame], path: str | Path) -> Path:
    """Write FOCUS rows as ``.csv`` (exact decimals, ISO 8601 UTC) or ``.parquet`` (decimal128).

    ``rows``: a frame (``focus_rows``) or chunks of one (``focus_chunks``), written one
    after the other so that only a chunk's text is in memory; the bytes are those of the
    whole frame written at once (Parquet: a row group per chunk).

    In CSV a text cell that a spreadsheet would run (``=…``, ``+…``, ``@…``) is
    prefixed with ``'`` (``rftcost.csvsafe``), and a control character (a NUL in a job
    id) is written visibly, ``\\u0000`` (``rftcost.textsafe``), as in every CSV output.
    Parquet keeps every name as it is: its columns are typed data that no tool
    evaluates as a formula, and a FinOps pipeline joins on the exact ids.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError(
            "a FOCUS export is written as .csv or .parquet",
            path=target,
            hint="name the file costs.csv or costs.parquet",
        )
    chunks = [rows] if isinstance(rows, pd.DataFrame) else rows
    if suffix == ".parquet":
        _write_parquet(chunks, target)
        return target
    with target.open("w", encoding="utf-8", newline="") as out:
        written = 0
        for chunk in chunks:
            text = _csv_text(chunk).to_csv(index=False, na_rep="", header=written == 0)
            out.write(visible_controls(text))
            written += 1
    if not written:
        raise ValueError("no chunk of rows to write (an export without rows is an empty frame)")
    return target


def _write_parquet(chunks: Iterable[pd.DataFrame], target: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: Any = None
    try:
        for chunk in chunks:
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                metadata = dict(table.schema.metadata or {})
                metadata[b"focus_version"] = FOCUS_VERSION.encode()
                writer = pq.ParquetWriter(target, table.schema.with_metadata(metadata))
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError("no chunk of rows to write (an export without rows is an empty frame)")


def _csv_text(rows: pd.DataFrame) -> pd.DataFrame:
    """FOCUS rows as the text of their CSV cells."""
    text = pd.DataFrame(index=rows.index)
    for name in rows.columns:
        column = rows[name]
        kind, _ = _SCHEMA.get(name, ("string", 0))
        if kind == "decimal":
            text[name] = _decimal_text(column, min_places=2 if name in _COST_COLUMNS else 0)
        elif kind == "datetime" and _SCHEMA[name][1] == 3:  # milliseconds
            text[name] = column.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z"
        elif kind == "datetime":
            text[name] = column.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:  # names from the logs: no cell a spreadsheet would run as a formula
            text[name] = neutralise_csv_column(column)
    return text


def _decimal_text(column: pd.Series, *, min_places: int) -> pd.Series:
    """decimal128 values → plain exact strings, zeros trimmed to ``min_places`` decimals.

    Reads the unscaled 128-bit integers straight from the Arrow buffer; values
    that fit 64 bits (every amount below ~9 million at pico scale) are formatted
    by numpy string ufuncs, the others one by one through ``Decimal``.
    """
    import pyarrow as pa

    array = pa.array(column)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    scale = array.type.scale
    words = np.frombuffer(array.buffers()[1], dtype="<i8").reshape(-1, 2)
    words = words[array.offset : array.offset + len(array)]
    low, high = words[:, 0], words[:, 1]
    missing = array.is_null().to_numpy(zero_copy_only=False)
    if (high == (low >> 63)).all():
        text = _int64_text(low, scale, min_places)
    else:
        text = np.asarray(
            [
                _int_text(int(Decimal(v).scaleb(scale)), scale, min_places) if v is not None else ""
                for v in array.to_pylist()
            ],
            dtype=object,
        )
    return pd.Series(text, index=column.index, dtype="string").mask(missing)
