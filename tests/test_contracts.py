"""Every frame of a Bill and its Timeline keeps its column contract, in memory and in buckets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from builders import JobLog, frame_of, guide_prelude
from hypothesis import HealthCheck, given, settings
from strategies import examples, logs

import rftcost
from rftcost.billing import Bill
from rftcost.contracts import (
    BILL_CHARGES,
    BILL_CONTRACTS,
    BILL_JOBS,
    TIMELINE_CONTRACTS,
    Column,
    ContractError,
    FrameContract,
    check_frame,
)

SAMPLES = Path(__file__).resolve().parent.parent / "sample_logs"


def check_bill(bill: Bill, *, whole_timeline: bool = True) -> None:
    """Every Bill frame against its contract; the timeline's too (a bucketed bill keeps
    empty pieces and usage, still of the declared columns)."""
    for name, contract in BILL_CONTRACTS.items():
        check_frame(getattr(bill, name), contract)
    for name, contract in TIMELINE_CONTRACTS.items():
        frame = getattr(bill.timeline, name)
        if whole_timeline or len(frame):
            check_frame(frame, contract)


def worked_examples() -> pd.DataFrame:
    """The worked examples' situations in one log, plus an invalid and a running job."""
    success = guide_prelude(JobLog("ex01").created(data_sharing=True))
    success.phase("rollout", hours=4).phase("safety_eval", minutes=30).add("succeeded")
    failed = guide_prelude(JobLog("ex02").created())
    failed.add("phase_start", phase="rollout").at(hours=2).add("checkpoint_saved", step=5)
    failed.at(hours=1).add("failed")
    paused = JobLog("ex05").created().phase("rollout", hours=1, seconds=17).add("paused")
    paused.add("resumed").phase("rollout", hours=1, seconds=17).add("succeeded")
    overlap = JobLog("ex06").created().add("phase_start", phase="rollout")
    overlap.at(minutes=30).add("phase_start", phase="grading").at(minutes=30)
    overlap.add("phase_end", phase="rollout").at(minutes=30).add("phase_end", phase="grading")
    overlap.phase("update", minutes=30).add("succeeded")
    graders = JobLog("ex10").created().add("phase_start", phase="rollout")
    graders.add(
        "grader_usage",
        grader_model="gpt-4.1",
        input_tokens=1_000_000,
        cached_input_tokens=200_000,
        output_tokens=100_000,
    )
    graders.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    rollback = JobLog("ex12").created().add("phase_start", phase="rollout").at(hours=1)
    rollback.add("checkpoint_saved", step=1).at(minutes=30).add("rollback", step=1)
    rollback.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    no_price = JobLog("invalid").created().add("phase_start", phase="rollout")
    no_price.add("grader_usage", grader_model="no-such-model", input_tokens=5, output_tokens=1)
    no_price.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    running = JobLog("running").created().add("phase_start", phase="rollout").at(hours=1)
    running.add("grader_usage", grader_model="o3", input_tokens=10, output_tokens=2)
    return frame_of(success, failed, paused, overlap, graders, rollback, no_price, running)


def test_worked_examples_keep_the_contracts() -> None:
    bill = rftcost.bill(worked_examples())
    check_bill(bill)
    statuses = dict(zip(bill.jobs["job_id"], bill.jobs["status"], strict=True))
    assert statuses["invalid"] == "invalid"
    assert statuses["running"] == "running"
    assert (bill.grader_lines["charge"] == -1).any()


def test_worked_examples_in_buckets_keep_the_contracts(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    records = [
        {k: v for k, v in r.items() if not pd.isna(v)} for r in worked_examples().to_dict("records")
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    in_memory = rftcost.bill(path, buckets=1)
    assert (in_memory.jobs["status"] == "invalid").sum() == 1
    check_bill(rftcost.bill(path, buckets=2), whole_timeline=False)
    check_bill(rftcost.bill(path, buckets=2, keep_timeline=True), whole_timeline=False)


def test_an_empty_log_keeps_the_contracts(tmp_path: Path) -> None:
    from rftcost.billing import bill_events
    from rftcost.events.readers import empty_events

    check_bill(bill_events(empty_events(), rftcost.load_policy()))


def test_a_job_seen_only_in_rejected_records_keeps_the_contracts(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(
        json.dumps({"job_id": "ghost", "ts": "2025-06-01T00:00:00Z", "event": "not-an-event"})
        + "\n"
        + json.dumps({"job_id": "ok", "ts": "2025-06-01T00:00:00Z", "event": "job_created"})
        + "\n"
    )
    bill = rftcost.bill(path, buckets=1)
    check_bill(bill)
    assert "ghost" in set(bill.jobs["job_id"])


@pytest.mark.parametrize("buckets", [1, 2])
@pytest.mark.parametrize(
    "source", ["2025-05.jsonl", "2025-06.csv.gz", "2025-07.parquet", "."], ids=str
)
def test_every_sample_log_keeps_the_contracts(source: str, buckets: int) -> None:
    bill = rftcost.bill(SAMPLES / source, buckets=buckets)
    check_bill(bill, whole_timeline=buckets == 1)
    assert len(bill.charges)


@pytest.mark.parametrize("policy", ["openai-rft", "azure-rft", "openai-rft-no-training-discount"])
def test_the_sample_logs_keep_the_contracts_under_every_policy(policy: str) -> None:
    check_bill(rftcost.bill(SAMPLES, policy=policy, buckets=1))


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(records=logs())
def test_generated_logs_keep_the_contracts(
    tmp_path_factory: Any, records: list[dict[str, Any]]
) -> None:
    check_bill(rftcost.bill(pd.DataFrame(records)))
    path = tmp_path_factory.mktemp("contracts") / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    check_bill(rftcost.bill(path, buckets=2), whole_timeline=False)


# --- the checker itself --------------------------------------------------------------------------


def test_check_frame_names_the_column_and_the_fault() -> None:
    contract = FrameContract(
        name="T.x",
        description="test",
        columns=(
            Column(name="a", dtype="int64", unit="ns", description="a"),
            Column(name="b", dtype="string", description="b", nullable=True),
        ),
    )
    good = pd.DataFrame({"a": [1, 2], "b": pd.array(["x", None], dtype="string")})
    check_frame(good, contract)
    with pytest.raises(ContractError) as missing:
        check_frame(good[["a"]], contract)
    assert (missing.value.frame, missing.value.column) == ("T.x", "b")
    with pytest.raises(ContractError, match=r"T\.x\.c: column not in the contract"):
        check_frame(good.assign(c=1), contract)
    with pytest.raises(ContractError, match=r"T\.x\.a: dtype float64, expected int64") as wrong:
        check_frame(good.assign(a=[1.0, 2.0]), contract)
    assert wrong.value.problem == "dtype float64, expected int64"
    strict = contract.model_copy(
        update={
            "columns": (
                contract.columns[0],
                contract.column("b").model_copy(update={"nullable": False}),
            )
        }
    )
    with pytest.raises(ContractError, match=r"T\.x\.b: 1 missing value"):
        check_frame(good, strict)


def test_ids_have_one_dtype_across_the_bill() -> None:
    dtypes = {
        contract.column("job_id").dtype
        for contract in BILL_CONTRACTS.values()
        if "job_id" in contract.names
    }
    assert dtypes == {"string"}
    assert BILL_JOBS.column("job_id").dtype == BILL_CHARGES.column("job_id").dtype


def test_every_column_declares_a_unit_or_is_a_name() -> None:
    for contract in (*BILL_CONTRACTS.values(), *TIMELINE_CONTRACTS.values()):
        for column in contract.columns:
            assert column.description
            if column.name.endswith(("_ns", "_cents")):
                assert column.unit in ("ns", "cents"), (contract.name, column.name)
