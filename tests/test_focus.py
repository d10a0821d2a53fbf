"""FOCUS rows: columns and types, ListCost = PricingQuantity × ListUnitPrice, periods, totals."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import JobLog
from test_spend import MONTHLY, at, mixed_logs
from typer.testing import CliRunner

import rftcost
from rftcost.cli import app
from rftcost.errors import InputError
from rftcost.focus import FOCUS_COLUMNS, focus_rows, write_focus

runner = CliRunner()

REQUIRED = [
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodStart", "ChargePeriodEnd",
    "BillingPeriodStart", "BillingPeriodEnd", "ConsumedQuantity", "ConsumedUnit",
    "PricingQuantity", "PricingUnit", "ListUnitPrice", "ProviderName", "PublisherName",
    "ServiceName", "ServiceCategory", "ResourceId", "SkuId", "Tags", "x_BillableSeconds",
    "x_LostSeconds", "x_GraderModel", "x_JobStatus",
]  # fmt: skip
DECIMALS = ["BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity",
            "PricingQuantity", "ListUnitPrice", "x_BillableSeconds", "x_LostSeconds"]  # fmt: skip
DATETIMES = ["ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"]


@pytest.fixture(scope="module")
def bill() -> rftcost.Bill:
    return rftcost.bill(mixed_logs())


@pytest.fixture(scope="module")
def rows(bill: rftcost.Bill) -> pd.DataFrame:
    return focus_rows(bill)


def decimals(column: pd.Series) -> list[Decimal | None]:
    return [None if v is None or v is pd.NA else Decimal(v) for v in column.array]


def test_required_columns_present_and_typed(rows: pd.DataFrame) -> None:
    assert list(rows.columns) == list(FOCUS_COLUMNS)
    assert set(REQUIRED) <= set(rows.columns)
    for name in DECIMALS:
        dtype = rows[name].dtype
        assert isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype), name
    for name in DATETIMES:
        assert str(rows[name].dtype) == "datetime64[s, UTC]", name
    for name in ("BillingCurrency", "ChargeCategory", "ResourceId", "SkuId", "Tags", "x_JobStatus"):
        assert pd.api.types.is_string_dtype(rows[name]), name
    # Mandatory columns that may not be null.
    for name in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency",
                 "ChargeCategory", "ChargeDescription", "ProviderName", "PublisherName",
                 "ServiceName", "ServiceCategory", "PricingQuantity", "ListUnitPrice",
                 "PricingUnit",
                 *DATETIMES):  # fmt: skip
        assert rows[name].notna().all(), name
    assert rows["ChargeClass"].isna().all()  # no corrections
    assert set(rows["ChargeCategory"]) == {"Usage", "Credit"}
    assert set(rows["BillingCurrency"]) == {"USD"}
    assert set(rows["ServiceCategory"]) == {"AI and Machine Learning"}
    assert set(rows["ProviderName"]) == {"OpenAI"}


def test_list_cost_is_pricing_quantity_times_list_unit_price_on_every_row(
    rows: pd.DataFrame,
) -> None:
    for quantity, price, list_cost in zip(
        decimals(rows["PricingQuantity"]),
        decimals(rows["ListUnitPrice"]),
        decimals(rows["ListCost"]),
        strict=True,
    ):
        assert quantity is not None and price is not None and list_cost is not None
        assert quantity * price == list_cost


def test_periods_start_before_end_in_utc_inside_the_billing_month(rows: pd.DataFrame) -> None:
    assert (rows["ChargePeriodStart"] < rows["ChargePeriodEnd"]).all()
    assert (rows["BillingPeriodStart"] < rows["BillingPeriodEnd"]).all()
    assert (rows["BillingPeriodStart"] <= rows["ChargePeriodStart"]).all()
    assert (rows["ChargePeriodEnd"] <= rows["BillingPeriodEnd"]).all()
    assert (rows["BillingPeriodStart"].dt.day == 1).all()
    assert (rows["BillingPeriodStart"].dt.hour == 0).all()
    for name in DATETIMES:
        assert str(rows[name].dt.tz) == "UTC"
    # The billing period is the month of the billing event (the rule of rftcost spend).
    event = rows["x_BillingEventAt"]
    assert ((rows["BillingPeriodStart"] <= event) & (event < rows["BillingPeriodEnd"])).all()


def test_a_charge_across_a_month_is_in_the_month_of_its_billing_event(rows: pd.DataFrame) -> None:
    july = rows[(rows["ResourceId"] == "ftjob-search-2") & (rows["x_ChargeNumber"] == 2)].iloc[0]
    assert july["BillingPeriodStart"] == pd.Timestamp("2025-07-01T00:00:00Z")
    assert july["ChargePeriodStart"] == pd.Timestamp("2025-07-01T00:00:00Z")  # clipped to July
    assert july["x_SegmentStart"] == pd.Timestamp("2025-06-30T23:30:00Z")  # the paused event
    assert july["ChargePeriodEnd"] == pd.Timestamp("2025-07-01T01:30:00Z")


def test_totals_equal_the_bill(bill: rftcost.Bill, rows: pd.DataFrame) -> None:
    totals = bill.totals()
    billed = decimals(rows["BilledCost"])
    assert sum(b for b in billed if b is not None) == totals.total_amount
    assert sum(decimals(rows["EffectiveCost"])) == totals.total_amount  # type: ignore[arg-type]
    credit = rows["ChargeCategory"] == "Credit"
    assert -sum(decimals(rows.loc[credit, "BilledCost"])) == totals.discount_amount  # type: ignore[arg-type]
    compute = rows["PricingUnit"] == "Hours"
    assert sum(decimals(rows.loc[compute, "BilledCost"])) == totals.compute_amount  # type: ignore[arg-type]
    assert sum(decimals(rows.loc[compute, "PricingQuantity"])) == totals.billed_hours  # type: ignore[arg-type]
    grader = rows["x_GraderModel"].notna()
    assert sum(decimals(rows.loc[grader, "BilledCost"])) == totals.grader_amount  # type: ignore[arg-type]
    # Per job too, and no row for the invalid job.
    per_job = rows.assign(cost=decimals(rows["BilledCost"])).groupby("ResourceId")["cost"].sum()
    for job_id, cost in per_job.items():
        assert bill.job(str(job_id)).total_amount == cost
    assert "ftjob-broken" not in set(rows["ResourceId"])
    # Savings: ListCost − EffectiveCost is the discount (no rounding or cap here).
    assert sum(decimals(rows["ListCost"])) - sum(decimals(rows["EffectiveCost"])) == pytest.approx(  # type: ignore[arg-type]
        totals.discount_amount, abs=Decimal("0.01") * len(rows)
    )


def test_grader_rows_split_each_line_exactly(bill: rftcost.Bill, rows: pd.DataFrame) -> None:
    grader = rows[rows["x_GraderModel"].notna()]
    assert set(grader["x_TokenType"]) == {"input", "cached_input", "output"}
    assert set(grader["PricingUnit"]) == {"1000000 Tokens"} and set(grader["ConsumedUnit"]) == {
        "Tokens"
    }
    lines = bill.grader_lines[bill.grader_lines["charge"] >= 0]
    for line in lines.itertuples():
        mine = grader[
            (grader["ResourceId"] == line.job_id)
            & (grader["x_ChargeNumber"] == line.charge + 1)
            & (grader["x_GraderModel"] == line.grader_model)
        ]
        assert sum(decimals(mine["BilledCost"])) == Decimal(int(line.amount_cents)).scaleb(-2)  # type: ignore[arg-type]
        tokens = dict(zip(mine["x_TokenType"], decimals(mine["ConsumedQuantity"]), strict=False))
        consumed = mine.groupby("x_TokenType")["ConsumedQuantity"].apply(lambda c: sum(decimals(c)))  # type: ignore[arg-type]
        assert int(consumed.get("output", 0)) == int(line.output_tokens)
        assert int(consumed.get("cached_input", 0)) == int(line.cached_input_tokens)
        assert int(consumed.get("input", 0)) == int(line.input_tokens) - int(
            line.cached_input_tokens
        )
        assert tokens  # at least one row per line
    # The o3 job used o3 before and after the 2025-06-10 price cut: two prices, each in force.
    ads = grader[(grader["ResourceId"] == "ftjob-ads") & (grader["x_TokenType"] == "output")]
    assert sorted(decimals(ads["ListUnitPrice"])) == [Decimal(8), Decimal(40)]  # type: ignore[type-var]


def test_compute_and_credit_rows(bill: rftcost.Bill, rows: pd.DataFrame) -> None:
    search = rows[rows["ResourceId"] == "ftjob-search-1"]
    compute = search[search["PricingUnit"] == "Hours"].iloc[0]
    assert Decimal(compute["PricingQuantity"]) == Decimal("3.01")
    assert Decimal(compute["ListUnitPrice"]) == Decimal(100)
    assert Decimal(compute["BilledCost"]) == Decimal("301.00")
    assert Decimal(compute["ConsumedQuantity"]) == Decimal(3 * 3600 + 18)  # exact billable seconds
    assert (
        compute["ConsumedUnit"] == "Seconds"
        and compute["SkuId"] == "rft-training-o4-mini-2025-04-16"
    )
    assert json.loads(compute["Tags"]) == {"team": "search", "project": "ranker"}
    credit = search[search["ChargeCategory"] == "Credit"].iloc[0]
    assert Decimal(credit["BilledCost"]) == Decimal("-150.50")
    assert Decimal(credit["ListCost"]) == 0 and Decimal(credit["ListUnitPrice"]) == 0
    assert pd.isna(credit["ConsumedQuantity"]) and pd.isna(credit["ConsumedUnit"])
    vision = rows[(rows["ResourceId"] == "ftjob-vision")].iloc[0]
    assert Decimal(vision["x_LostSeconds"]) == Decimal(40 * 60)
    assert vision["x_JobStatus"] == "failed"
    orphan = rows[rows["ResourceId"] == "ftjob-orphan"].iloc[0]
    assert json.loads(orphan["Tags"]) == {}


def test_capped_compute_keeps_the_list_identity() -> None:
    log = JobLog("ftjob-long").created(team="a").phase("rollout", hours=51).add("succeeded")
    result = rftcost.bill(log.frame(), policy="azure-rft")
    rows = focus_rows(result)
    row = rows.iloc[0]
    assert Decimal(row["BilledCost"]) == Decimal("5000.00")
    assert (
        Decimal(row["ListCost"])
        == Decimal("5100")
        == Decimal(row["PricingQuantity"]) * Decimal(row["ListUnitPrice"])
    )
    assert row["ProviderName"] == "Microsoft" and row["ServiceName"] == "Azure OpenAI"


def test_csv_is_exact_and_reads_back(
    tmp_path: Path, bill: rftcost.Bill, rows: pd.DataFrame
) -> None:
    path = write_focus(rows, tmp_path / "costs.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert list(records[0]) == list(FOCUS_COLUMNS)
    assert sum(Decimal(r["BilledCost"]) for r in records) == bill.totals().total_amount
    for record in records:
        assert Decimal(record["PricingQuantity"]) * Decimal(record["ListUnitPrice"]) == Decimal(
            record["ListCost"]
        )
        assert "E" not in record["ListCost"] and "e" not in record["ListCost"]
        assert len(record["BilledCost"].split(".")[1]) == 2
        assert (
            record["ChargePeriodStart"].endswith("Z")
            and record["ChargePeriodStart"] < record["ChargePeriodEnd"]
        )
    credit = next(r for r in records if r["ChargeCategory"] == "Credit")
    assert credit["ConsumedQuantity"] == "" and credit["ListCost"] == "0.00"


def test_parquet_keeps_decimal128(tmp_path: Path, bill: rftcost.Bill, rows: pd.DataFrame) -> None:
    path = write_focus(rows, tmp_path / "costs.parquet")
    table = pq.read_table(path)
    assert pa.types.is_decimal(table.schema.field("BilledCost").type)
    assert table.schema.field("ListCost").type == pa.decimal128(38, 12)
    assert pa.types.is_timestamp(table.schema.field("ChargePeriodStart").type)
    assert table.schema.field("ChargePeriodStart").type.tz == "UTC"
    assert table.schema.metadata[b"focus_version"] == b"1.2"
    billed = table.column("BilledCost").to_pylist()
    assert sum(billed) == bill.totals().total_amount
    with pytest.raises(InputError, match=r"\.csv or \.parquet"):
        write_focus(rows, tmp_path / "costs.xlsx")


def test_no_rows_for_running_or_invalid_jobs() -> None:
    running = JobLog("ftjob-running", clock=at("2025-06-01T00:00:00Z")).created()
    running.add("phase_start", phase="rollout").at(hours=1).add("step_completed", step=1)
    rows = focus_rows(rftcost.bill(running.frame()))
    assert rows.empty and list(rows.columns) == list(FOCUS_COLUMNS)


def test_sample_logs_export_adds_up() -> None:
    if not all(p.exists() for p in MONTHLY):
        pytest.skip("sample_logs/ not generated")
    result = rftcost.bill(MONTHLY)
    rows = focus_rows(result)
    assert sum(decimals(rows["BilledCost"])) == result.totals().total_amount  # type: ignore[arg-type]
    for quantity, price, list_cost in zip(
        decimals(rows["PricingQuantity"]),
        decimals(rows["ListUnitPrice"]),
        decimals(rows["ListCost"]),
        strict=True,
    ):
        assert quantity * price == list_cost  # type: ignore[operator]


# --- command line ---------------------------------------------------------------------------------


def test_cli_export_focus(tmp_path: Path) -> None:
    logs = tmp_path / "events.jsonl"
    mixed_logs().to_json(logs, orient="records", lines=True)
    out = tmp_path / "costs.csv"
    result = runner.invoke(app, ["export", "focus", str(logs), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "FOCUS rows" in result.output and "1 invalid job(s) not exported" in result.output
    assert out.read_text(encoding="utf-8").startswith("BilledCost,EffectiveCost,ListCost")
    parquet = tmp_path / "costs.parquet"
    assert (
        runner.invoke(
            app, ["export", "focus", str(logs), "-o", str(parquet), "--provider", "Acme"]
        ).exit_code
        == 0
    )
    assert set(pq.read_table(parquet).column("ProviderName").to_pylist()) == {"Acme"}
    bad = runner.invoke(app, ["export", "focus", str(logs), "-o", str(tmp_path / "costs.json")])
    assert bad.exit_code == 2 and ".csv or .parquet" in bad.output


def test_charge_periods_of_a_job_never_overlap_and_its_event_keeps_its_milliseconds(
    tmp_path: Path,
) -> None:
    """A pause at 15:08:01.305 ends the first charge's period at 15:08:02 and begins the
    second's there (it began at 15:08:01, one second inside the first); the event itself is
    written to the millisecond in CSV and Parquet alike."""
    from rftcost.focus import focus_rows, write_focus

    log = JobLog("ftjob-pr").created(team="a").at(hours=1)
    log.phase("rollout", minutes=68).at(seconds=1.305).add("paused").at(hours=1).add("resumed")
    log.phase("rollout", hours=1).add("succeeded")
    rows = focus_rows(rftcost.bill(log.frame()))
    periods = rows.drop_duplicates("x_ChargeNumber").sort_values("x_ChargeNumber")
    assert len(periods) == 2
    first, second = periods.iloc[0], periods.iloc[1]
    assert second["ChargePeriodStart"] == first["ChargePeriodEnd"]
    for path in (tmp_path / "f.csv", tmp_path / "f.parquet"):
        write_focus(rows, path)
        read = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        stamps = pd.to_datetime(read["x_BillingEventAt"], utc=True)
        assert (stamps.dt.microsecond // 1000).isin([305]).any(), read["x_BillingEventAt"]


def test_charges_at_one_instant_get_periods_that_follow_each_other() -> None:
    """Paused at its creation, then paused and resumed within one second: the first period
    was pushed to a second long and the next began inside it. Every period of a job now
    starts where the one before it ended, and none is empty."""
    from rftcost.focus import focus_rows

    log = JobLog("ftjob-o").created(team="o").add("paused").at(minutes=10).add("resumed")
    log.add("phase_start", phase="rollout").at(seconds=0.2).add("paused")
    log.at(seconds=0.3).add("resumed").at(hours=1).add("phase_end", phase="rollout")
    log.add("succeeded")
    rows = focus_rows(rftcost.bill(log.frame()))
    periods = rows.drop_duplicates("x_ChargeNumber").sort_values("x_ChargeNumber")
    assert len(periods) == 3
    starts, ends = periods["ChargePeriodStart"].tolist(), periods["ChargePeriodEnd"].tolist()
    assert all(start < end for start, end in zip(starts, ends, strict=True))
    assert starts[1:] == ends[:-1]


def test_many_charges_in_a_months_last_seconds_stay_in_their_billing_period() -> None:
    """Four pauses within a second before midnight on 31 May: the periods that follow each
    other by a second ran into June, past their billing period and their own events."""
    from rftcost.focus import focus_rows

    log = JobLog("ftjob-m", clock=datetime(2025, 5, 31, 23, 0, tzinfo=UTC)).created(team="m")
    log.add("phase_start", phase="rollout").at(minutes=59, seconds=58.1)
    for _ in range(4):
        log.add("paused").at(seconds=0.1).add("resumed").at(seconds=0.1)
    log.at(seconds=0.2).add("phase_end", phase="rollout").add("succeeded")
    rows = focus_rows(rftcost.bill(log.frame()))
    periods = rows.drop_duplicates("x_ChargeNumber")
    assert len(periods) == 5
    assert (periods["ChargePeriodEnd"] <= periods["BillingPeriodEnd"]).all()
    assert (periods["ChargePeriodStart"] >= periods["BillingPeriodStart"]).all()
    assert (periods["ChargePeriodStart"] < periods["ChargePeriodEnd"]).all()


def test_cli_export_focus_with_no_job_of_known_amount_says_unknown(tmp_path: Path) -> None:
    """Every job invalid: a file of no rows, and its sum said unknown, not "USD 0.00"."""
    logs = tmp_path / "events.jsonl"
    logs.write_text(
        '{"job_id":"j1","ts":"2025-06-01T00:00:00Z","event":"job_created"}\n'
        '{"job_id":"j1","ts":"2025-06-01T01:00:00Z","event":"phase_end","phase":"rollout"}\n'
        '{"job_id":"j1","ts":"2025-06-01T02:00:00Z","event":"succeeded"}\n'
    )
    result = runner.invoke(app, ["export", "focus", str(logs), "-o", str(tmp_path / "f.csv")])
    assert result.exit_code == 0
    assert "BilledCost USD unknown over 0 jobs" in result.stderr
    assert "0.00" not in result.stderr
