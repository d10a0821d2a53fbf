"""Grader tokens priced at the entries in force (R9, R10, R13), for invoices and the audit.

``priced_tokens`` splits a bill's charged grader tokens by token type and price
entry: what an invoice with token lines bills, and what the audit expects of one.
``price_index_at`` finds the price entry in force for each usage (R10, through
``rules.price_rows_in_force``). This module
sits below ``invoice`` and ``audit`` (both read it; it reads neither), and reads a
``Bill`` through its public frames only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rftcost.prices import resolve_model_family
from rftcost.rules import price_rows_in_force

__all__ = ["PRICED_TOKEN_COLUMNS", "TOKEN_PARTS", "price_index_at", "priced_tokens"]

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
    family = (
        lines["grader_model"]
        .astype(str)
        .map({m: resolve_model_family(m) for m in lines["grader_model"].astype(str).unique()})
    )
    lines = lines.assign(grader_family=family)
    at_start = price_index_at(family, lines["segment_start"], prices)
    at_end = price_index_at(family, lines["at"], prices)
    single = at_start == at_end
    simple = lines[single].assign(
        price_index=at_end[single],
        uncached=lines["input_tokens"] - lines["cached_input_tokens"],
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
    family = usage["grader_model"].map(
        {m: resolve_model_family(m) for m in usage["grader_model"].unique()}
    )
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
