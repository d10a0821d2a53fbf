"""The per-job cap ("Policy", azure-rft): the charge that reaches it is cut to the room left,
compute first, then grader, and every output says the same to the cent."""

from __future__ import annotations

import csv
import json
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import JobLog, cli, score_model_plan

import rftcost
from rftcost.audit import audit_invoice
from rftcost.charts import waterfall_steps
from rftcost.estimate import _models_capped
from rftcost.focus import focus_rows
from rftcost.invoice_writers import invoice_from_bill, write_invoice
from rftcost.rules import capped_amounts, shrink_shares


def _grader_log(job_id: str = "ftjob-G") -> JobLog:
    """1 h of training ($100) and 1e9 gpt-4.1 output tokens ($8,000) in one charge."""
    log = JobLog(job_id).created(team="ads", model="o4-mini-2025-04-16")
    log.add("phase_start", phase="rollout").at(minutes=20)
    log.add("grader_usage", grader_model="gpt-4.1", input_tokens=0, output_tokens=1_000_000_000)
    log.at(minutes=40).add("phase_end", phase="rollout").add("paused")
    return log


def _room_log() -> JobLog:
    """49 h ($4,900), paused, resumed; then 3 h ($300) with $200 of grader tokens over two
    models ($150 gpt-4.1 input, $50 gpt-4.1-mini input): $100 of room left for $500."""
    log = JobLog("ftjob-R").created(team="ads", model="o4-mini-2025-04-16")
    log.phase("rollout", hours=49).add("paused").at(hours=1).add("resumed")
    log.add("phase_start", phase="rollout").at(hours=1)
    log.add("grader_usage", grader_model="gpt-4.1", input_tokens=75_000_000, output_tokens=0)
    log.add("grader_usage", grader_model="gpt-4.1-mini", input_tokens=125_000_000, output_tokens=0)
    log.at(hours=2).add("phase_end", phase="rollout").add("paused").at(hours=1).add("resumed")
    log.phase("rollout", hours=1).add("succeeded")
    return log


# --- the rule ----------------------------------------------------------------------------------


def test_the_charge_that_reaches_the_cap_is_cut_compute_first_then_grader() -> None:
    compute = np.array([30_000, 10_000, 0, 400_000, 40_000], dtype="int64")
    grader = np.array([20_000, 800_000, 10, 0, 5_000], dtype="int64")
    before = np.array([490_000, 0, 600_000, 0, 500_000], dtype="int64")
    kept_compute, kept_grader = capped_amounts(compute, grader, before, 500_000)
    # Room 100.00 for 300.00 + 200.00 → 0.00 + 100.00; room 5000.00 for 100.00 + 8000.00 →
    # 0.00 + 5000.00; at or above the cap (resumed): in full; under the cap: untouched.
    assert kept_compute.tolist() == [0, 0, 0, 400_000, 40_000]
    assert kept_grader.tolist() == [10_000, 500_000, 10, 0, 5_000]


def test_shrink_shares_is_proportional_by_largest_remainder_and_exact() -> None:
    shared = shrink_shares([300, 200, 100, 1, 1, 1], [5, 5, 7, 9, 9, 9], [250, 250, 100, 2, 2, 2])
    assert shared.tolist() == [150, 100, 100, 1, 1, 0]  # a tie: the earlier part first
    big = shrink_shares([3 * 10**15, 10**15], [0, 0], [2 * 10**15 + 1] * 2)  # beyond int64
    assert big.tolist() == [1_500_000_000_000_001, 500_000_000_000_000]
    assert shrink_shares(np.zeros(0, dtype="int64"), [], []).tolist() == []


# --- the bill and its documents --------------------------------------------------------------


def test_grader_tokens_reaching_the_cap_are_cut_to_it() -> None:
    result = rftcost.bill(_grader_log().frame(), policy="azure-rft")
    job = result.job("ftjob-G")
    (charge,) = job.charges
    assert (charge.compute_amount, charge.grader_amount, charge.amount) == (
        D("0.00"),
        D("5000.00"),
        D("5000.00"),
    )
    assert charge.capped and (charge.compute_cut, charge.grader_cut) == (D("100.00"), D("3000.00"))
    assert [line.amount for line in charge.grader_lines] == [D("5000.00")]
    assert job.total_amount == result.totals().total_amount == D("5000.00")


def test_room_left_is_shared_among_the_grader_lines_and_later_charges_bill_in_full() -> None:
    result = rftcost.bill(_room_log().frame(), policy="azure-rft")
    job = result.job("ftjob-R")
    first, reaching, resumed = job.charges
    assert first.amount == D("4900.00") and not first.capped
    assert (reaching.compute_amount, reaching.grader_amount, reaching.amount) == (
        D("0.00"),
        D("100.00"),
        D("100.00"),
    )
    # The lines keep their shares of the charge: 150 : 50 of 200 → 75 : 25 of 100.
    assert [(line.grader_model, line.amount) for line in reaching.grader_lines] == [
        ("gpt-4.1", D("75.00")),
        ("gpt-4.1-mini", D("25.00")),
    ]
    assert resumed.amount == D("100.00") and not resumed.capped
    assert job.total_amount == D("5100.00")
    document = result.to_dict()
    (doc_job,) = document["jobs"]
    for doc_charge in doc_job["charges"]:
        lines = sum(D(line["amount"]) for line in doc_charge["grader_lines"])
        assert lines == D(doc_charge["grader_amount"])
        assert D(doc_charge["amount"]) == (
            D(doc_charge["compute_amount"])
            - D(doc_charge["discount_amount"])
            + D(doc_charge["grader_amount"])
        )
    assert doc_job["total_amount"] == document["totals"]["total_amount"] == "5100.00"
    assert sum(result.grader_lines["amount_cents"]) == sum(result.charges["grader_cents"])


def test_buckets_give_the_same_capped_bill(tmp_path: Path) -> None:
    frame = pd.concat([_grader_log().frame(), _room_log().frame()], ignore_index=True)
    path = tmp_path / "log.jsonl"
    frame.to_json(path, orient="records", lines=True)
    at_once = rftcost.bill(path, policy="azure-rft", buckets=None)
    in_buckets = rftcost.bill(path, policy="azure-rft", buckets=2)
    assert at_once.to_dict()["jobs"] == in_buckets.to_dict()["jobs"]
    assert in_buckets.totals().total_amount == D("10100.00")


def test_cli_outputs_bill_the_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "capg.jsonl"
    _grader_log().frame().to_json(path, orient="records", lines=True)
    code, out, _ = cli(capsys, "bill", str(path), "--policy", "azure-rft")
    assert code == 0 and "8000.00" not in out
    assert "Total USD 5000.00 = compute 0.00 − discount 0.00 + grader 5000.00" in out
    for fmt in ("csv", "markdown", "json"):
        code, out, _ = cli(capsys, "bill", str(path), "--policy", "azure-rft", "-f", fmt)
        assert code == 0 and "5000.00" in out and "8000.00" not in out, fmt
    code, out, _ = cli(capsys, "explain", str(path), "--policy", "azure-rft", "-j", "ftjob-G")
    assert code == 0
    assert (
        "1.00 h = 100.00 + grader 8000.00 = 8100.00; the per-job cap cuts 3100.00"
        " (compute 100.00, then grader 3000.00): 0.00 + grader 5000.00 = 5000.00 (capped)"
    ) in out
    code, out, _ = cli(capsys, "spend", str(path), "--policy", "azure-rft")
    assert code == 0 and "Total USD 5000.00" in out
    target = tmp_path / "focus.csv"
    code, _, _ = cli(
        capsys, "export", "focus", str(path), "--policy", "azure-rft", "-o", str(target)
    )
    with target.open(encoding="utf-8", newline="") as handle:
        billed = [D(row["BilledCost"]) for row in csv.DictReader(handle)]
    assert code == 0 and sum(billed) == D("5000.00")
    report = tmp_path / "report.html"
    code, _, _ = cli(capsys, "report", str(path), "--policy", "azure-rft", "-o", str(report))
    text = report.read_text(encoding="utf-8")
    assert code == 0 and 'id="total-charged">$5,000.00<' in text
    assert '<td class="num">$8,000.00</td>' not in text


def test_focus_token_rows_add_up_to_the_capped_lines() -> None:
    result = rftcost.bill(_room_log().frame(), policy="azure-rft")
    rows = focus_rows(result)
    grader = rows[rows["x_GraderModel"].notna()]
    by_model = grader.groupby("x_GraderModel")["BilledCost"].apply(
        lambda costs: sum(D(str(c)) for c in costs)
    )
    assert by_model.to_dict() == {"gpt-4.1": D("75.00"), "gpt-4.1-mini": D("25.00")}
    assert sum(D(str(c)) for c in rows["BilledCost"]) == D("5100.00")


def test_waterfall_notes_the_grader_cut() -> None:
    steps = {
        s.name: s for s in waterfall_steps(rftcost.bill(_grader_log().frame(), policy="azure-rft"))
    }
    assert steps["per-job cap"].amount == D("-100.00")
    assert steps["grader tokens (R9)"].amount == D("5000.00")
    assert "3,000.00" in (steps["grader tokens (R9)"].note or "")
    assert steps["total"].amount == D("5000.00")


# --- the audit -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token_types", [False, True], ids=["amounts", "token-types"])
def test_an_invoice_billing_the_cap_audits_clean(tmp_path: Path, token_types: bool) -> None:
    result = rftcost.bill(_grader_log().frame(), policy="azure-rft")
    lines = invoice_from_bill(result, token_types=token_types)
    assert sum(D(a) for a in lines["amount"]) == D("5000.00")
    report = audit_invoice(write_invoice(lines, tmp_path / "inv.csv"), result)
    assert report.findings == ()


def test_an_invoice_billed_beyond_the_cap_is_an_error(tmp_path: Path) -> None:
    result = rftcost.bill(_grader_log().frame(), policy="azure-rft")
    path = tmp_path / "azg.csv"
    path.write_text(
        "invoice_id,line,job_id,line_type,charge_at,description,grader_model,token_type,"
        "quantity,unit,unit_price,amount,currency\n"
        "I,1,ftjob-G,compute,,x,,,1.00,hours,100,0.00,USD\n"
        "I,2,ftjob-G,grader_tokens,,x,gpt-4.1,,1000000000,tokens,,5000.00,USD\n",
        encoding="utf-8",
    )
    assert audit_invoice(path, result).findings == ()
    path.write_text(path.read_text(encoding="utf-8").replace("5000.00", "8000.00"))
    (finding,) = audit_invoice(path, result).findings
    assert finding.severity == "error" and finding.billed - finding.expected == D("3000.00")
    assert "cap of 5000.00 USD" in finding.explanation


# --- the estimate ------------------------------------------------------------------------------


def _plan(tmp_path: Path) -> Path:
    """Grading dominates: one example a step, 50 epochs, a model grader."""
    return score_model_plan(
        tmp_path,
        grader_model="gpt-4.1-mini-2025-04-14",
        hyperparameters={"batch_size": 1, "n_epochs": 50, "eval_interval": 1000},
    )


def test_estimate_respects_the_cap_when_grading_dominates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["estimate", str(_plan(tmp_path)), "--n-valid", "100", "--policy", "azure-rft"]
    code, out, _ = cli(capsys, *args, "--n-train", "100000", "-f", "json")
    document = json.loads(out)
    assert code == 0
    for key in ("compute_amount", "grader_amount", "total_amount"):
        assert all(D(v) <= D("5000.00") for v in document[key].values()), key
    assert document["total_amount"]["p10"] == "5000.00"
    by_model = document["grader_amount_by_model"]
    assert all(D(v) <= D("5000.00") for q in by_model.values() for v in q.values())
    assumptions = " ".join(document["assumptions"])
    assert "caps a job at 5000.00 USD" in assumptions and "paused" in assumptions
    code, out, _ = cli(capsys, *args, "--n-train", "10")
    assert code == 0 and "caps a job" not in out


def test_estimate_cuts_each_grader_model_with_the_draw() -> None:
    models = [("a", np.array([300, 10], "int64")), ("b", np.array([100, 0], "int64"))]
    cut = _models_capped(models, np.array([200, 10], "int64"))
    assert [(m, c.tolist()) for m, c in cut] == [("a", [150, 10]), ("b", [50, 0])]
