"""The billing kernel's public functions on small frames: bill_events, Bill, sum_totals."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from builders import JobLog, frame_of

import rftcost
from rftcost import rules
from rftcost.billing import Bill, BillTotals, bill_events, sum_totals
from rftcost.contracts import BILL_CONTRACTS, check_frame
from rftcost.events.readers import deduplicate, normalize_records
from rftcost.policy import Policy, load_policy


def events_of(frame: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    raw = frame.assign(line=range(1, len(frame) + 1))
    events, rejected = normalize_records(raw, source="<test>", assume_tz=None, policy=policy)
    assert rejected.empty
    events, _, _ = deduplicate(events)
    return events


def small_log() -> pd.DataFrame:
    a = JobLog("a").created(team="research").phase("rollout", hours=1, seconds=18).add("paused")
    # Usage at the pause's own time belongs to the paused segment: resume a minute later.
    a.add("resumed").at(minutes=1).add("phase_start", phase="rollout")
    a.add("grader_usage", grader_model="gpt-4.1", input_tokens=1_000_000, output_tokens=100_000)
    a.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    b = JobLog("b").created(data_sharing=True).phase("rollout", hours=2).add("cancelled")
    return frame_of(a, b)


def test_bill_events_on_a_small_frame() -> None:
    policy = load_policy()
    bill = bill_events(events_of(small_log(), policy), policy)
    assert isinstance(bill, Bill)
    assert bill.job_ids() == ["a", "b"]
    for name, contract in BILL_CONTRACTS.items():
        check_frame(getattr(bill, name), contract)

    a = bill.job("a")
    assert [c.billed_hours for c in a.charges] == [Decimal("1.01"), Decimal("1.00")]
    assert [c.compute_amount for c in a.charges] == [Decimal("101.00"), Decimal("100.00")]
    # gpt-4.1: 1M input at $2 + 100k output at $8 = $2.80 on the second charge (R9, R13).
    assert a.charges[1].grader_amount == Decimal("2.80")
    assert a.total_amount == Decimal("203.80")
    b = bill.job("b")
    assert (b.compute_amount, b.discount_amount, b.total_amount) == (
        Decimal("200.00"),
        Decimal("100.00"),
        Decimal("100.00"),
    )


def test_charges_carry_the_rate_applied_and_lines_the_price_entry() -> None:
    policy = load_policy()
    bill = bill_events(events_of(small_log(), policy), policy)
    assert set(bill.charges["rate_places"]) == {rules.rate_places(policy)}
    assert set(bill.charges["rate_units"]) == {100_000_000}  # $100.00/h at 6 places
    line = bill.grader_lines.iloc[0]
    entry = policy.price_table.lookup("gpt-4.1", pd.Timestamp("2025-06-01", tz="UTC"))
    assert line["grader_family"] == "gpt-4.1"
    assert line["price_entries"] == 1
    assert line["price_source"] == entry.source
    assert line["price_effective_ns"] == pd.Timestamp(entry.effective_from).value
    assert policy.price_table.models["gpt-4.1"][int(line["price_index"])] == entry


def test_a_line_straddling_a_price_change_names_its_latest_entry() -> None:
    log = JobLog("o3", clock=pd.Timestamp("2025-06-09T23:00:00Z").to_pydatetime()).created()
    log.add("phase_start", phase="rollout")
    log.add("grader_usage", grader_model="o3", input_tokens=1_000_000, output_tokens=0)
    log.at(hours=2)
    log.add("grader_usage", grader_model="o3", input_tokens=1_000_000, output_tokens=0)
    log.add("phase_end", phase="rollout").add("succeeded")
    bill = rftcost.bill(log.frame())
    line = bill.grader_lines.iloc[0]
    assert line["price_entries"] == 2
    assert line["price_effective_ns"] == pd.Timestamp("2025-06-10T00:00:00Z").value
    # $10 before 2025-06-10, $2 after: one line, each part at its own price (R10).
    assert line["amount_cents"] == 1_200


def test_a_rate_with_seven_decimals_is_billed_exactly() -> None:
    policy = load_policy().model_copy(update={"hourly_rates": {"o4-mini": Decimal("100.0000005")}})
    log = JobLog("j").created().phase("rollout", hours=10_000).add("succeeded")
    bill = rftcost.bill(log.frame(), policy=policy)
    charge = bill.charges.iloc[0]
    assert (charge["rate_units"], charge["rate_places"]) == (1_000_000_005, 7)
    assert bill.job("j").compute_amount == Decimal("1000000.01")  # not 1,000,000.00


def test_an_unknown_grader_price_makes_the_job_invalid_with_a_reason() -> None:
    log = JobLog("x").created().add("phase_start", phase="rollout")
    log.add("grader_usage", grader_model="no-such-model", input_tokens=1, output_tokens=1)
    log.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    bill = rftcost.bill(log.frame())
    assert bill.job("x").status == "invalid"
    assert "no token price for grader model 'no-such-model'" in bill.problems["problem"].iloc[0]
    assert bill.charges.empty and bill.grader_lines.empty


def test_sum_totals_adds_bills_of_disjoint_jobs() -> None:
    policy = load_policy()
    events = events_of(small_log(), policy)
    whole = bill_events(events, policy).totals()
    parts = [
        bill_events(events[events["job_id"].astype(str) == job], policy).totals()
        for job in ("a", "b")
    ]
    assert sum_totals(parts) == whole
    assert isinstance(whole, BillTotals)
    assert whole.total_amount == Decimal("303.80")


@pytest.mark.parametrize("start_ms", [1, 15, 22, 29, 123, 997])
def test_millisecond_times_are_billed_to_the_nanosecond(tmp_path: Path, start_ms: int) -> None:
    """A rollout of exactly 17.500 s between millisecond timestamps is 17.5 s, which R11
    rounds half up to 18 s, 0.005 h → 0.01 h: $1.00. Piece ends once went through float64
    (steps of 256 ns at today's epoch), which made it 17.499999936 s → 17 s → $0.00."""
    t0 = pd.Timestamp("2025-06-02T08:00:00Z") + pd.Timedelta(milliseconds=start_ms)
    t1 = t0 + pd.Timedelta(milliseconds=17_500)
    records = [
        {"job_id": "ftjob-ms", "ts": t0.isoformat(), "event": "job_created", "team": "t"},
        {"job_id": "ftjob-ms", "ts": t0.isoformat(), "event": "phase_start", "phase": "rollout"},
        {"job_id": "ftjob-ms", "ts": t1.isoformat(), "event": "phase_end", "phase": "rollout"},
        {"job_id": "ftjob-ms", "ts": t1.isoformat(), "event": "succeeded"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    result = rftcost.bill(path)
    assert int(result.charges["billable_ns"].iloc[0]) == 17_500_000_000
    assert result.jobs_table()["billable_seconds"].tolist() == [17.5]
    assert result.totals().compute_amount == Decimal("1.00")
