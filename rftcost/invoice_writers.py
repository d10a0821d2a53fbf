"""Writing invoices from a bill: what an honest vendor would send (invoice-audit.md).

``invoice_from_bill`` and ``write_invoice`` turn a ``Bill`` into a canonical invoice,
line for line; ``costs_export_from_bill`` and ``dump_costs_export`` into OpenAI Costs API
pages. They are the fixtures of the audit's tests, benchmark and sample invoices.
Reading invoices is ``rftcost.invoice`` (which imports these names too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rftcost.money import units_text
from rftcost.rules import price_family, priced_tokens, shrink_shares

if TYPE_CHECKING:
    from rftcost.billing import Bill

__all__ = [
    "INVOICE_COLUMNS",
    "costs_export_from_bill",
    "dump_costs_export",
    "invoice_from_bill",
    "write_invoice",
]


INVOICE_COLUMNS = (
    "invoice_id",
    "line",
    "job_id",
    "line_type",
    "charge_at",
    "description",
    "grader_model",
    "token_type",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "currency",
)
"""Columns of the canonical invoice, in output order (invoice-audit.md)."""


def _iso_ns(ns: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(ns.astype("int64"), unit="ns", utc=True)
    rest = ns.astype("int64") % 1_000_000_000
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S").astype(str)
    return text.where(rest == 0, text + "." + rest.astype(str).str.zfill(9).str.rstrip("0")) + "Z"


def _price_text(decimals: pd.Series) -> pd.Series:
    """Per-unit prices as given (``Decimal``) → plain strings with at least two decimals."""
    return decimals.map(
        lambda d: f"{d:.2f}" if d == d.quantize(Decimal("0.01")) else f"{d.normalize():f}"
    )


def invoice_from_bill(
    bill: Bill,
    *,
    invoice_id: str = "INV-0001",
    charge_at: bool = True,
    token_types: bool = False,
) -> pd.DataFrame:
    """The canonical invoice an honest vendor would send for ``bill`` (strings, one row a line).

    One ``compute`` line per charge (hours and the policy's rate), one
    ``data_sharing_discount`` line per discounted charge, and per charge and grader
    model either one ``grader_tokens`` line with the amount (``token_types=False``:
    the audit then compares amounts only) or one line per token type and price in
    force (each rounded on its own, as a vendor would; the audit reports the cent
    this may differ from the once-rounded bill as ``rounding``). Charges of $0.00
    get no line. ``charge_at=False`` leaves out the billing event times, so that the
    audit compares each job's lines to its totals.
    """
    from rftcost.money import divide_round

    policy = bill.policy
    places = policy.rounding.hours_decimals
    charges = bill.charges
    jobs = bill.jobs.set_index("job_id")
    models = jobs["model"].reindex(charges["job_id"]).to_numpy()
    rates = {m: policy.hourly_rate(str(m)) for m in pd.unique(models)}
    rate = pd.Series([rates[m] for m in models], index=charges.index, dtype=object)
    at = _iso_ns(charges["at"]) if len(charges) else pd.Series([], dtype=str)
    base = pd.DataFrame(
        {
            "invoice_id": invoice_id,
            "job_id": charges["job_id"].astype(str),
            "charge_at": at if charge_at else "",
            "_at": charges["at"].astype("int64"),
            "_charge": charges["charge"].astype("int64"),
        }
    )
    compute = base.assign(
        line_type="compute",
        description="RFT training " + models.astype(str),
        grader_model="",
        token_type="",
        quantity=units_text(charges["hour_units"], places),
        unit="hours",
        unit_price=_price_text(rate),
        amount=units_text(charges["compute_cents"], 2),
        _order=0,
        _keep=(charges["compute_cents"] != 0) | (charges["hour_units"] != 0),
    )
    discount = base.assign(
        line_type="data_sharing_discount",
        description="Data sharing discount",
        grader_model="",
        token_type="",
        quantity="",
        unit="",
        unit_price="",
        amount=units_text(-charges["discount_cents"], 2),
        _order=1,
        _keep=charges["discount_cents"] != 0,
    )
    frames = [compute, discount]
    grader = bill.grader_lines[bill.grader_lines["charge"] >= 0]
    key = pd.MultiIndex.from_arrays([charges["job_id"].astype(str), charges["charge"]])
    at_of = pd.Series(base["charge_at"].to_numpy(), index=key)
    ns_of = pd.Series(base["_at"].to_numpy(), index=key)
    grader_key = pd.MultiIndex.from_arrays([grader["job_id"].astype(str), grader["charge"]])
    if not token_types:
        tokens = grader["input_tokens"] + grader["output_tokens"]
        frames.append(
            pd.DataFrame(
                {
                    "invoice_id": invoice_id,
                    "job_id": grader["job_id"].astype(str),
                    "charge_at": at_of.reindex(grader_key).to_numpy(),
                    "_at": ns_of.reindex(grader_key).to_numpy(),
                    "_charge": grader["charge"].astype("int64"),
                    "line_type": "grader_tokens",
                    "description": "Grader tokens "
                    + grader["grader_model"].astype(str)
                    + " ("
                    + tokens.astype(str)
                    + " tokens)",
                    "grader_model": grader["grader_model"].astype(str),
                    "token_type": "",
                    "quantity": "",
                    "unit": "",
                    "unit_price": "",
                    "amount": units_text(grader["amount_cents"], 2).to_numpy(),
                    "_order": 2,
                    "_keep": (grader["amount_cents"] != 0).to_numpy(),
                }
            )
        )
    else:
        typed = priced_tokens(bill, grader)
        cents = _capped_type_cents(
            typed,
            grader,
            charges,
            np.asarray(
                divide_round(
                    typed["pico"].to_numpy(dtype=object), 10**10, policy.rounding.money_mode
                ),
                dtype="int64",
            ),
        )
        typed_key = pd.MultiIndex.from_arrays([typed["job_id"].astype(str), typed["charge"]])
        frames.append(
            pd.DataFrame(
                {
                    "invoice_id": invoice_id,
                    "job_id": typed["job_id"].astype(str),
                    "charge_at": at_of.reindex(typed_key).to_numpy(),
                    "_at": ns_of.reindex(typed_key).to_numpy(),
                    "_charge": typed["charge"].astype("int64"),
                    "line_type": "grader_tokens",
                    "description": "Grader tokens "
                    + typed["grader_model"].astype(str)
                    + " "
                    + typed["token_type"].astype(str),
                    "grader_model": typed["grader_model"].astype(str),
                    "token_type": typed["token_type"].astype(str),
                    "quantity": typed["tokens"].astype("int64").astype(str),
                    "unit": "tokens",
                    "unit_price": units_text(typed["price_micro"], 6)
                    .str.rstrip("0")
                    .str.replace(r"\.$", ".00", regex=True)
                    .str.replace(r"\.(\d)$", r".\g<1>0", regex=True),
                    "amount": units_text(np.asarray(cents, dtype="int64"), 2).to_numpy(),
                    "_order": 2 + typed["token_order"].to_numpy(),
                    "_keep": (typed["tokens"] != 0).to_numpy(),
                }
            )
        )
    lines = pd.concat(frames, ignore_index=True)
    lines = lines[lines["_keep"].astype(bool)]
    lines = lines.sort_values(["job_id", "_at", "_order"], kind="stable").reset_index(drop=True)
    lines = lines.assign(line=np.arange(1, len(lines) + 1), currency=policy.currency)
    return lines[list(INVOICE_COLUMNS)]


def _capped_type_cents(
    typed: pd.DataFrame, grader: pd.DataFrame, charges: pd.DataFrame, cents: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Token-type lines of a grader line the per-job cap cut, cut with it ("Policy"): in
    proportion, by largest remainder (``rules.shrink_shares``), down to the billed line.
    Lines the cap did not cut keep their types rounded one by one, as a vendor would."""
    cut = charges[charges["grader_cut_cents"] > 0]
    if cut.empty or typed.empty:
        return cents
    keys = ["job_id", "charge", "grader_model"]
    billed = grader.astype({"job_id": str, "grader_model": str}).set_index(keys)["amount_cents"]
    key = pd.MultiIndex.from_arrays(
        [typed["job_id"].astype(str), typed["charge"], typed["grader_model"].astype(str)]
    )
    capped = pd.MultiIndex.from_arrays([cut["job_id"].astype(str), cut["charge"]])
    of_capped = capped.get_indexer(key.droplevel(2)) >= 0
    line = key.factorize()[0]
    total = pd.Series(cents).groupby(line).transform("sum").to_numpy(dtype="int64")
    wanted = billed.reindex(key).fillna(0).to_numpy(dtype="int64")
    # The types, rounded one by one, may differ by a cent from the line: only a cut below
    # their sum is shared out.
    target = np.where(of_capped, np.minimum(wanted, total), total)
    return shrink_shares(cents, line, target)


def write_invoice(lines: pd.DataFrame, path: str | Path) -> Path:
    """Write canonical invoice lines as CSV (``.csv``) or JSON Lines (``.jsonl``)."""
    target = Path(path)
    frame = lines[[c for c in INVOICE_COLUMNS if c in lines]].astype(str)
    frame = frame.replace({"<NA>": "", "nan": "", "None": ""})
    if target.name.endswith((".jsonl", ".ndjson")):
        records = frame.to_dict("records")
        text = "".join(
            json.dumps({k: v for k, v in r.items() if v != ""}, ensure_ascii=False) + "\n"
            for r in records
        )
        target.write_text(text, encoding="utf-8")
    else:
        frame.to_csv(target, index=False, lineterminator="\n")
    return target


def costs_export_from_bill(
    bill: Bill, *, project_ids: dict[str, str] | None = None, page_size: int = 31
) -> list[dict[str, Any]]:
    """Costs API pages (``bucket_width=1d``, grouped by project and line item) for ``bill``.

    Each charge is placed on its billing event's UTC day, under its job's project
    (``project_ids`` maps project names to ids; default: the name itself). Line
    items: ``fine-tuning training <model>``, ``fine-tuning data sharing discount``,
    ``fine-tuning grader <grader model>``. Amounts are JSON numbers with two decimals.
    """
    charges = bill.charges
    jobs = bill.jobs.set_index("job_id")
    project = jobs["project"].reindex(charges["job_id"]).astype("string").fillna("")
    mapping = project_ids or {}
    projects = project.map(lambda p: mapping.get(p, p)).to_numpy()
    day = (charges["at"].astype("int64") // (86400 * 10**9)).to_numpy()
    model = jobs["model"].reindex(charges["job_id"]).astype(str).to_numpy()
    frames = [
        pd.DataFrame(
            {
                "day": day,
                "project": projects,
                "item": "fine-tuning training " + model,
                "cents": charges["compute_cents"].to_numpy(),
                "quantity": charges["hour_units"].to_numpy(),
                "unit": "hours",
            }
        ),
        pd.DataFrame(
            {
                "day": day,
                "project": projects,
                "item": "fine-tuning data sharing discount",
                "cents": -charges["discount_cents"].to_numpy(),
                "quantity": 0,
                "unit": "",
            }
        ),
    ]
    grader = bill.grader_lines[bill.grader_lines["charge"] >= 0]
    key = pd.MultiIndex.from_arrays([charges["job_id"].astype(str), charges["charge"]])
    grader_key = pd.MultiIndex.from_arrays([grader["job_id"].astype(str), grader["charge"]])
    frames.append(
        pd.DataFrame(
            {
                "day": pd.Series(day, index=key).reindex(grader_key).to_numpy(),
                "project": pd.Series(projects, index=key).reindex(grader_key).to_numpy(),
                "item": "fine-tuning grader "
                + price_family(grader["grader_model"].astype(str), bill.policy.price_table.models)
                .astype(object)
                .to_numpy(),
                "cents": grader["amount_cents"].to_numpy(),
                "quantity": (grader["input_tokens"] + grader["output_tokens"]).to_numpy(),
                "unit": "tokens",
            }
        )
    )
    costs = pd.concat(frames, ignore_index=True)
    costs = costs[costs["cents"] != 0]
    sums = costs.groupby(["day", "project", "item", "unit"], as_index=False)[
        ["cents", "quantity"]
    ].sum()
    sums = sums.sort_values(["day", "project", "item"])
    hours_places = bill.policy.rounding.hours_decimals
    buckets: list[dict[str, Any]] = []
    for day_number, group in sums.groupby("day", sort=True):
        start = _whole(day_number) * 86400
        results = [
            {
                "object": "organization.costs.result",
                "amount": {
                    "value": _json_decimal(int(row.cents), 2),
                    "currency": bill.policy.currency.lower(),
                },
                "line_item": row.item,
                "project_id": row.project or None,
                "quantity": (
                    _json_decimal(int(row.quantity), hours_places)
                    if row.unit == "hours"
                    else (int(row.quantity) if row.unit == "tokens" else None)
                ),
                "quantity_unit": row.unit or None,
            }
            for row in _records(group)
        ]
        buckets.append(
            {"object": "bucket", "start_time": start, "end_time": start + 86400, "results": results}
        )
    pages = []
    for first in range(0, max(len(buckets), 1), page_size):
        chunk = buckets[first : first + page_size]
        more = first + page_size < len(buckets)
        pages.append(
            {
                "object": "page",
                "data": chunk,
                "has_more": more,
                "next_page": f"page_{first // page_size + 2}" if more else None,
            }
        )
    return pages


def _whole(value: Any) -> int:
    return int(value)


def _records(frame: pd.DataFrame) -> Any:
    return frame.itertuples(index=False)


def _json_decimal(units: int, places: int) -> Any:
    """Integer units → decimal text with ``places`` decimals (``dump_costs_export`` writes
    it as a JSON number)."""
    return units_text(pd.Series([units]), places).iloc[0]


def dump_costs_export(pages: Sequence[dict[str, Any]]) -> str:
    """Costs API pages → JSON text on one line, amounts as numbers with their exact digits.

    One line: a folder read of event logs (``rftcost.bill(folder)``) sniffs a file's first
    line and skips this one, which holds no events.
    """
    text = json.dumps(list(pages), separators=(", ", ": "))
    # Amounts and hours were kept as decimal strings; write them as JSON numbers.
    return re.sub(r'"(value|quantity)": "(-?\d+\.\d+)"', r'"\1": \2', text) + "\n"
