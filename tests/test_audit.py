"""Invoice audit: one constructed case per finding kind, the readers, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from builders import JobLog, frame_of
from typer.testing import CliRunner

import rftcost
from rftcost.audit import FINDING_KINDS, AuditReport, Finding, audit_invoice
from rftcost.cli import app
from rftcost.errors import InvoiceError
from rftcost.invoice import (
    costs_export_from_bill,
    dump_costs_export,
    invoice_from_bill,
    read_invoice,
    write_invoice,
)

D = Decimal


# --- the constructed logs: one job per situation ------------------------------------------------


def _queue_job() -> JobLog:
    """45 min queued, 20 min setup, 4 h of training, succeeded."""
    log = JobLog("ftjob-queue").created(team="search", project="ranker")
    log.phase("queued", minutes=45).phase("setup", minutes=20)
    return log.phase("rollout", hours=4).add("succeeded")


def _lost_job() -> JobLog:
    """2 h training, checkpoint step 5, 1 h more with gpt-4.1 grader usage, failed (R5)."""
    log = JobLog("ftjob-lost").created(team="search", project="ranker", grader_model="gpt-4.1")
    log.add("phase_start", phase="rollout").at(hours=1)
    log.add(
        "grader_usage",
        grader_model="gpt-4.1",
        input_tokens=1_000_000,
        cached_input_tokens=200_000,
        output_tokens=100_000,
    )
    log.at(hours=1).add("checkpoint_saved", step=5).at(minutes=30)
    log.add(
        "grader_usage",
        grader_model="gpt-4.1",
        input_tokens=500_000,
        cached_input_tokens=0,
        output_tokens=50_000,
    )
    return log.at(minutes=30).add("failed")


def _plain_job(job_id: str, hours: float = 2, **created: Any) -> JobLog:
    log = JobLog(job_id).created(team="support", project="triage", **created)
    return log.phase("rollout", hours=hours).add("succeeded")


def _o3_job() -> JobLog:
    """o3 grader usage on 2025-06-12, after o3's price fell (R10)."""
    log = JobLog("ftjob-o3", clock=pd.Timestamp("2025-06-12T08:00:00Z").to_pydatetime())
    log.created(team="research", project="agents", grader_model="o3")
    log.add("phase_start", phase="rollout").at(minutes=30)
    log.add(
        "grader_usage",
        grader_model="o3-2025-04-16",
        input_tokens=1_000_000,
        cached_input_tokens=200_000,
        output_tokens=150_000,
    )
    return log.at(minutes=30).add("phase_end", phase="rollout").add("succeeded")


def _pause_job() -> JobLog:
    """Worked example 5: two charges of 1 h 0 min 17 s."""
    log = JobLog("ftjob-pause").created(team="search", project="ranker")
    log.phase("rollout", hours=1, seconds=17).add("paused").at(hours=3).add("resumed")
    return log.phase("rollout", hours=1, seconds=17).add("succeeded")


def _invalid_job() -> JobLog:
    """A phase_end with no open phase: the job cannot be reconstructed."""
    log = JobLog("ftjob-invalid").created(team="legal", project="contracts")
    log.add("phase_end", phase="rollout").at(hours=1).add("succeeded")
    return log


def _logs() -> pd.DataFrame:
    return frame_of(
        _queue_job(),
        _lost_job(),
        _plain_job("ftjob-plain"),
        _plain_job("ftjob-shared", data_sharing=True),
        _o3_job(),
        _pause_job(),
        _invalid_job(),
    )


@pytest.fixture(scope="module")
def bill() -> rftcost.Bill:
    return rftcost.bill(_logs())


@pytest.fixture(scope="module")
def clean(bill: rftcost.Bill) -> pd.DataFrame:
    """The honest invoice: grader lines by token type, every line with its charge_at."""
    return invoice_from_bill(bill, invoice_id="INV-TEST", token_types=True)


def _audit(lines: pd.DataFrame, bill: rftcost.Bill, tmp_path: Path, **options: Any) -> AuditReport:
    path = write_invoice(lines, tmp_path / "invoice.csv")
    return audit_invoice(path, bill, **options)


def _only(report: AuditReport, kind: str | None = None) -> Finding:
    findings = [f for f in report.findings if f.severity != "info" or f.kind == kind]
    assert len(findings) == 1, [(f.kind, f.explanation) for f in report.findings]
    if kind is not None:
        assert findings[0].kind == kind
    return findings[0]


def _row(lines: pd.DataFrame, job_id: str, line_type: str, token_type: str = "") -> int:
    mask = (lines["job_id"] == job_id) & (lines["line_type"] == line_type)
    if token_type:
        mask &= lines["token_type"] == token_type
    index = lines.index[mask]
    assert len(index) >= 1
    return int(index[0])


def _sums_up(report: AuditReport) -> None:
    total = sum((f.difference for f in report.findings if f.difference is not None), D(0))
    assert total == report.summary.difference
    assert report.summary.overbilled - report.summary.underbilled == report.summary.difference
    s = report.summary
    if s.invoice_total_known and not s.unreadable_amounts:
        assert s.billed_total + s.unchecked_total == s.invoice_total


# --- the clean invoice ------------------------------------------------------------------------


def test_the_honest_invoice_audits_clean_except_invalid_jobs(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    report = _audit(clean, bill, tmp_path)
    assert [f.kind for f in report.findings] == []
    assert report.summary.difference == D("0.00")
    assert (
        report.summary.expected_total == report.summary.billed_total == bill.totals().total_amount
    )
    assert report.policy == "openai-rft" and report.basis == "job"


def test_every_finding_kind_is_covered_below() -> None:
    covered = {
        "queue_time_billed", "lost_work_billed", "overbilled_time", "underbilled_time",
        "missing_discount", "rate_mismatch", "grader_tokens_mismatch", "grader_price_mismatch",
        "arithmetic_error", "duplicate_line", "unknown_job", "unbilled_job", "rounding",
        "invalid_job",
    }  # fmt: skip
    assert covered == set(FINDING_KINDS)


# --- one test per finding kind ------------------------------------------------------------------


def test_queue_time_billed_names_the_queue_interval(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    i = _row(lines, "ftjob-queue", "compute")
    lines.loc[i, ["quantity", "amount"]] = ["4.75", "475.00"]
    report = _audit(lines, bill, tmp_path)
    finding = _only(report, "queue_time_billed")
    assert (finding.job_id, finding.line_type) == ("ftjob-queue", "compute")
    assert (finding.expected, finding.billed, finding.difference) == (
        D("400.00"),
        D("475.00"),
        D("75.00"),
    )
    assert finding.severity == "error" and finding.invoice_line == int(lines.loc[i, "line"])
    interval = finding.evidence[0]
    assert interval.type == "excluded_interval" and interval.phase == "queued"
    assert interval.seconds == 2700.0
    assert interval.start is not None and interval.start.isoformat() == "2025-06-01T08:00:00+00:00"
    assert "0.75 h of queue time between 2025-06-01 08:00 and 08:45 UTC" in finding.explanation
    assert "appears to be billed" in finding.explanation
    _sums_up(report)


def test_lost_work_billed_names_the_loss_and_its_checkpoint(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    i = _row(lines, "ftjob-lost", "compute")
    lines.loc[i, ["quantity", "amount"]] = ["3.00", "300.00"]
    finding = _only(_audit(lines, bill, tmp_path), "lost_work_billed")
    assert (finding.job_id, finding.expected, finding.billed) == (
        "ftjob-lost",
        D("200.00"),
        D("300.00"),
    )
    assert finding.difference == D("100.00")
    loss, checkpoint = finding.evidence[:2]
    assert loss.type == "lost_interval" and loss.cause == "failure" and loss.seconds == 3600.0
    assert checkpoint.type == "checkpoint" and checkpoint.checkpoint_step == 5
    assert "after checkpoint step 5" in finding.explanation


def test_two_causes_of_the_same_difference_are_both_named(
    bill: rftcost.Bill, tmp_path: Path
) -> None:
    # ftjob-example-like job: 30 min queued, 2 h training, checkpoint, 30 min lost: a bill of
    # 0.50 h more is queue time or lost work.
    log = JobLog("ftjob-both").created().phase("queued", minutes=30)
    log.add("phase_start", phase="rollout").at(hours=2).add("checkpoint_saved", step=3)
    log.at(minutes=30).add("failed")
    both = rftcost.bill(log.frame())
    lines = invoice_from_bill(both)
    lines.loc[0, ["quantity", "amount"]] = ["2.50", "250.00"]
    finding = _only(_audit(lines, both, tmp_path))
    assert {finding.kind, *finding.also} == {"queue_time_billed", "lost_work_billed"}
    assert {e.type for e in finding.evidence} >= {"excluded_interval", "lost_interval"}
    assert "also explained by" in finding.explanation


def test_overbilled_time_without_a_cause(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    i = _row(lines, "ftjob-plain", "compute")
    lines.loc[i, ["quantity", "amount"]] = ["2.37", "237.00"]
    finding = _only(_audit(lines, bill, tmp_path), "overbilled_time")
    assert (finding.job_id, finding.difference, finding.severity) == (
        "ftjob-plain",
        D("37.00"),
        "error",
    )
    assert "0.37 h billed beyond the 2.00 h" in finding.explanation


@pytest.mark.parametrize(
    ("queued_seconds", "kind"), [(5, "overbilled_time"), (40, "queue_time_billed")]
)
def test_excluded_time_explains_an_overbill_only_when_billing_it_gives_the_hours(
    tmp_path: Path, queued_seconds: int, kind: str
) -> None:
    """17.5 s of training is 0.01 h under R11 (18 s, half up); 0.02 h billed is one step
    more. 5 s of queue billed too gives 22.5 s, still 0.01 h: it cannot be the cause, the
    hours are billed beyond the logs. 40 s of queue gives 57.5 s, 0.02 h: it can."""
    log = JobLog("ftjob-r").created(team="search").phase("queued", seconds=queued_seconds)
    job = rftcost.bill(frame_of(log.phase("rollout", seconds=17.5).add("succeeded")))
    assert job.job("ftjob-r").billed_hours == D("0.01")
    lines = invoice_from_bill(job, invoice_id="INV-R")
    i = _row(lines, "ftjob-r", "compute")
    lines.loc[i, ["quantity", "amount"]] = ["0.02", "2.00"]
    finding = _only(_audit(lines, job, tmp_path), kind)
    assert (finding.expected, finding.billed, finding.severity) == (D("1.00"), D("2.00"), "error")
    if kind == "overbilled_time":
        assert "no excluded or lost interval of the job explains it" in finding.explanation


def test_underbilled_time_is_a_warning(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    i = _row(lines, "ftjob-plain", "compute")
    lines.loc[i, ["quantity", "amount"]] = ["1.50", "150.00"]
    report = _audit(lines, bill, tmp_path)
    finding = _only(report, "underbilled_time")
    assert (finding.difference, finding.severity) == (D("-50.00"), "warning")
    assert report.summary.underbilled == D("50.00") and not report.has_errors


def test_missing_discount_of_a_data_sharing_job(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.drop(index=_row(clean, "ftjob-shared", "data_sharing_discount"))
    finding = _only(_audit(lines, bill, tmp_path), "missing_discount")
    assert finding.job_id == "ftjob-shared" and finding.line_type == "data_sharing_discount"
    assert (finding.expected, finding.billed, finding.difference) == (
        D("-100.00"),
        D("0.00"),
        D("100.00"),
    )
    assert (
        finding.evidence[0].type == "discount"
        and "data_sharing=true" in finding.evidence[0].description
    )


# -99.99: half of 200.00 is exactly 100.00, so no rounding gives 99.99 (it was "rounding").
@pytest.mark.parametrize(("amount", "difference"), [("-60.00", "40.00"), ("-99.99", "0.01")])
def test_a_wrong_discount_is_a_missing_discount_finding(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path, amount: str, difference: str
) -> None:
    lines = clean.copy()
    lines.loc[_row(lines, "ftjob-shared", "data_sharing_discount"), "amount"] = amount
    finding = _only(_audit(lines, bill, tmp_path), "missing_discount")
    assert finding.difference == D(difference) and finding.severity == "error"
    assert amount not in finding.explanation


def test_lines_never_rounded_to_the_cent_are_no_rounding(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    """A discount or an untyped grader amount split into 100 lines of 4 decimals passed as
    rounding within a cent a line (0.99 each): lines not in whole cents were never rounded."""
    shared = _row(clean, "ftjob-shared", "data_sharing_discount")
    discount = clean.loc[[shared] * 100].assign(amount="-0.9901")
    grader = clean[(clean["job_id"] == "ftjob-o3") & (clean["line_type"] == "grader_tokens")]
    total = sum(D(a) for a in grader["amount"])
    parts = [D(k) / 10_000 for k in range(1, 100)]  # distinct: no copy of another line
    parts.append(total + D("0.99") - sum(parts))
    untyped = grader.iloc[[0] * 100].assign(
        token_type="", quantity="", unit="", unit_price="", amount=[f"{a}" for a in parts]
    )
    lines = pd.concat(
        [clean.drop(index=[shared, *grader.index]), discount, untyped], ignore_index=True
    )
    lines = lines.assign(line=[str(n) for n in range(1, len(lines) + 1)])
    report = _audit(lines, bill, tmp_path)
    kinds = {(f.kind, f.job_id, f.difference) for f in report.findings}
    assert kinds == {
        ("missing_discount", "ftjob-shared", D("0.99")),
        ("grader_tokens_mismatch", "ftjob-o3", D("0.99")),
    }


def test_discount_under_the_no_training_discount_policy(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    path = write_invoice(clean, tmp_path / "invoice.csv")
    report = audit_invoice(path, _logs(), policy="openai-rft-no-training-discount")
    assert report.policy == "openai-rft-no-training-discount"
    finding = _only(report, "missing_discount")
    assert finding.difference == D("-100.00") and finding.severity == "warning"
    assert "no training discount" in finding.explanation


def test_rate_mismatch_names_the_policy_rate(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    i = _row(lines, "ftjob-plain", "compute")
    lines.loc[i, ["unit_price", "amount"]] = ["110.00", "220.00"]
    finding = _only(_audit(lines, bill, tmp_path), "rate_mismatch")
    assert (finding.expected, finding.billed, finding.difference) == (
        D("200.00"),
        D("220.00"),
        D("20.00"),
    )
    rate = finding.evidence[0]
    assert (
        rate.type == "rate"
        and rate.price == D("100.00")
        and "help.openai.com" in (rate.source or "")
    )


def test_grader_tokens_mismatch_when_lost_tokens_are_billed(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    i = _row(lines, "ftjob-lost", "grader_tokens", "output")
    assert lines.loc[i, "quantity"] == "100000"
    lines.loc[i, ["quantity", "amount"]] = ["150000", "1.20"]
    finding = _only(_audit(lines, bill, tmp_path), "grader_tokens_mismatch")
    assert (finding.job_id, finding.token_type, finding.grader_model) == (
        "ftjob-lost",
        "output",
        "gpt-4.1",
    )
    assert (finding.expected, finding.billed, finding.difference) == (
        D("0.80"),
        D("1.20"),
        D("0.40"),
    )
    lost = [e for e in finding.evidence if "lost work" in e.description]
    assert lost and lost[0].tokens == 50_000


def test_grader_price_mismatch_names_both_price_entries(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    i = _row(lines, "ftjob-o3", "grader_tokens", "output")
    # o3 output at the price before 2025-06-10 ($40 / 1M) instead of $8.
    lines.loc[i, ["unit_price", "amount"]] = ["40.00", "6.00"]
    finding = _only(_audit(lines, bill, tmp_path), "grader_price_mismatch")
    assert (finding.expected, finding.billed, finding.difference) == (
        D("1.20"),
        D("6.00"),
        D("4.80"),
    )
    in_force, old = finding.evidence
    assert in_force.price == D("8.00") and str(in_force.effective_from)[:10] == "2025-06-10"
    assert old.price == D("40.00") and str(old.effective_from)[:10] == "2025-04-16"
    assert in_force.source and old.source
    assert "replaced on 2025-06-10" in finding.explanation


def test_arithmetic_error_on_a_line(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    i = _row(lines, "ftjob-plain", "compute")
    lines.loc[i, "amount"] = "210.00"
    finding = _only(_audit(lines, bill, tmp_path), "arithmetic_error")
    assert (finding.expected, finding.billed, finding.difference) == (
        D("200.00"),
        D("210.00"),
        D("10.00"),
    )
    assert "2.00 h × 100.00 USD/h = 200.00 USD" in finding.explanation


def test_arithmetic_error_when_lines_do_not_add_up_to_the_total(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    total = sum(D(a) for a in clean["amount"])
    stated = pd.DataFrame(
        [{"invoice_id": "INV-TEST", "line": "999", "line_type": "total", "amount": f"{total + 5}"}]
    )
    report = _audit(pd.concat([clean, stated], ignore_index=True).fillna(""), bill, tmp_path)
    finding = _only(report, "arithmetic_error")
    assert (finding.line_type, finding.invoice_line, finding.difference) == (
        "total",
        999,
        D("5.00"),
    )
    assert report.summary.invoice_total == total + 5
    _sums_up(report)


@pytest.mark.parametrize(
    ("stated", "billed", "error"),
    [
        (["+0", "+0"], "0", None),  # the total written twice is one total
        (["-10", "+0"], "0", None),  # a subtotal before tax, then the total
        (["*0.4", "*0.6"], "0", None),  # page totals
        (["-10", "+7"], "7", 999),  # neither: the last, the grand total, is checked
    ],
)
def test_an_invoice_with_several_total_lines_states_one_total(
    bill: rftcost.Bill,
    clean: pd.DataFrame,
    tmp_path: Path,
    stated: list[str],
    billed: str,
    error: int | None,
) -> None:
    """Several ``total`` lines of one invoice were added up: a subtotal and a total made an
    amount no line states, and an overbilling of that much."""
    total = sum(D(a) for a in clean["amount"])

    def amount(rule: str) -> D:
        value = total * D(rule[1:]) if rule[0] == "*" else total + D(rule)
        return value.quantize(D("0.01"))

    rows = [
        {"invoice_id": "INV-TEST", "line": str(998 + i), "line_type": "total", "amount": amount(r)}
        for i, r in enumerate(stated)
    ]
    if stated[0][0] == "*":  # page totals add up to the lines exactly
        rows[1]["amount"] = total - rows[0]["amount"]
    lines = pd.concat([clean, pd.DataFrame(rows).astype(str)], ignore_index=True).fillna("")
    report = _audit(lines, bill, tmp_path)
    assert report.summary.billed_total == total + D(billed)
    errors = [f for f in report.findings if f.kind == "arithmetic_error"]
    assert [f.invoice_line for f in errors] == ([] if error is None else [error])
    _sums_up(report)


@pytest.mark.parametrize(
    ("rows", "billed", "difference"),
    [
        # A subtotal that matches the lines, then a grand total above them: the total at
        # the foot is checked (the subtotal hid a 50.00 overbilling).
        (["1,ok,compute,,RFT,,,1.00,hours,100.00,100.00",
          "2,ok2,compute,,RFT,,,2.00,hours,100.00,200.00", "3,,total,,Subtotal,,,,,,300.00",
          "4,,total,,Total,,,,,,350.00"], "350.00", "50.00"),
        # Page totals, one page's 1.00 too high: summed, an overbilling of 1.00 (the last
        # page's total was taken as the invoice's: an underbilling of 99.00).
        (["1,ok,compute,,RFT,,,1.00,hours,100.00,100.00", "2,,total,,Page 1,,,,,,100.00",
          "3,ok2,compute,,RFT,,,2.00,hours,100.00,200.00", "4,,total,,Page 2,,,,,,201.00"],
         "301.00", "1.00"),
        # Equal page totals: summed (the same amount twice is not one total here).
        (["1,ok,compute,,RFT,,,1.00,hours,100.00,100.00", "2,,total,,Page 1,,,,,,100.00",
          "3,ok2,compute,,RFT,,,1.00,hours,100.00,100.00", "4,,total,,Page 2,,,,,,100.00"],
         "200.00", "-100.00"),
    ],
)  # fmt: skip
def test_page_totals_and_foot_totals(
    tmp_path: Path, rows: list[str], billed: str, difference: str
) -> None:
    log = _two_hours_ok2(tmp_path)
    invoice = _canonical_invoice(tmp_path, *(f"INV-1,{row},USD\n" for row in rows))
    report = audit_invoice(invoice, rftcost.bill(log))
    assert (report.summary.billed_total, report.summary.difference) == (D(billed), D(difference))
    _sums_up(report)


def test_a_total_line_of_one_invoice_leaves_another_invoices_lines_billed(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    """Two invoices in one file, a total line for the first only: the second's lines were
    dropped from what is billed (billed 0, "matches the logs", totals not adding up)."""
    first = clean["job_id"] != "ftjob-queue"
    total = sum(D(a) for a in clean.loc[first, "amount"])
    stated = pd.DataFrame(
        [{"invoice_id": "INV-TEST", "line": "999", "line_type": "total", "amount": f"{total}"}]
    )
    lines = clean.assign(invoice_id=clean["invoice_id"].where(first, "INV-OTHER"))
    report = _audit(pd.concat([lines, stated], ignore_index=True).fillna(""), bill, tmp_path)
    assert report.findings == _audit(clean, bill, tmp_path).findings
    assert report.summary.invoice_total == sum(D(a) for a in clean["amount"])
    assert report.summary.billed_total == report.summary.invoice_total
    _sums_up(report)


def _two_hours_ok2(tmp_path: Path) -> Path:
    """Jobs ``ok`` (1 h, 100.00) and ``ok2`` (2 h, ending at 10:00 on 2 June, 200.00)."""
    two = [{**e, "job_id": "ok2"} for e in _ONE_HOUR_OK]
    two = [{**e, "ts": e["ts"].replace("06-02T09", "06-02T10")} for e in two]
    return _log_of(tmp_path, [*_ONE_HOUR_OK, *two])


def test_lines_without_an_invoice_id_belong_to_the_one_invoice_named(tmp_path: Path) -> None:
    """A total line of INV-7 beside lines with no invoice id: billed 600.00 (the lines once
    as an invoice without a total, once as INV-7's gap)."""
    log = _two_hours_ok2(tmp_path)
    invoice = _canonical_invoice(
        tmp_path,
        ",1,ok,compute,2025-06-02T09:00:00Z,RFT,,,1.00,hours,100.00,100.00,USD\n",
        ",2,ok2,compute,2025-06-02T10:00:00Z,RFT,,,2.00,hours,100.00,200.00,USD\n",
        "INV-7,3,,total,,Total,,,,,,300.00,USD\n",
    )
    report = audit_invoice(invoice, rftcost.bill(log))
    assert report.findings == ()
    assert report.summary.billed_total == report.summary.invoice_total == D("300.00")


def test_an_invoice_without_a_total_and_an_unreadable_amount_leaves_the_total_unknown(
    tmp_path: Path,
) -> None:
    """INV-A states its total; INV-B has an amount that cannot be read and no total line:
    the invoice total was given as 100.00, known."""
    log = _two_hours_ok2(tmp_path)
    invoice = _canonical_invoice(
        tmp_path,
        "INV-A,1,ok,compute,2025-06-02T09:00:00Z,RFT,,,1.00,hours,100.00,100.00,USD\n",
        "INV-A,2,,total,,Total,,,,,,100.00,USD\n",
        "INV-B,1,ok2,compute,2025-06-02T10:00:00Z,RFT,,,2.00,hours,100.00,2OO.00,USD\n",
    )
    document = audit_invoice(invoice, rftcost.bill(log)).to_dict()
    assert document["summary"]["invoice_total"] is None


def test_an_unreadable_line_with_an_amount_is_in_the_unchecked_total(tmp_path: Path) -> None:
    """A compute line in minutes (unreadable) billing 100.00 beside a grader line of its job:
    the summary's unchecked total was 2.50, the 100.00 in none of its fields."""
    log = _two_hours_ok2(tmp_path)
    invoice = _canonical_invoice(
        tmp_path,
        "INV-1,1,ok,compute,,RFT,,,60,minutes,100.00,100.00,USD\n",
        "INV-1,2,ok2,compute,,RFT,,,2.00,hours,100.00,200.00,USD\n",
    )
    report = audit_invoice(invoice, rftcost.bill(log))
    s = report.summary
    assert (s.invoice_total, s.unchecked_total, s.unchecked_lines) == (D("300.00"), D("100.00"), 1)
    assert s.billed_total == D("200.00")
    _sums_up(report)


def test_duplicate_line(bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path) -> None:
    i = _row(clean, "ftjob-queue", "compute")
    copy = clean.loc[[i]].assign(line=str(len(clean) + 1))
    report = _audit(pd.concat([clean, copy], ignore_index=True), bill, tmp_path)
    finding = _only(report, "duplicate_line")
    assert (finding.job_id, finding.difference, finding.invoice_line) == (
        "ftjob-queue",
        D("400.00"),
        len(clean) + 1,
    )
    assert finding.invoice_lines == (len(clean) + 1, int(clean.loc[i, "line"]))


def test_a_grader_price_written_per_token_is_read_per_million(tmp_path: Path) -> None:
    """0.000002 per token is 2.00 per 1M, the price in force, and the amount is right: it
    was an arithmetic error and a price mismatch that cancel (exit 1 on a right invoice)."""
    log = _log_of(
        tmp_path,
        [
            {"job_id": "g", "ts": "2025-06-02T08:00:00Z", "event": "phase_start",
             "phase": "rollout"},
            {"job_id": "g", "ts": "2025-06-02T08:30:00Z", "event": "grader_usage",
             "grader_model": "gpt-4.1", "input_tokens": 1_000_000,
             "cached_input_tokens": 200_000, "output_tokens": 100_000},
            {"job_id": "g", "ts": "2025-06-02T09:00:00Z", "event": "phase_end",
             "phase": "rollout"},
            {"job_id": "g", "ts": "2025-06-02T09:00:00Z", "event": "succeeded"},
        ],
    )  # fmt: skip
    rows = [
        "INV-1,1,g,compute,,RFT,,,1.00,hours,100.00,100.00,USD\n",
        "INV-1,2,g,grader_tokens,,g,gpt-4.1,input,800000,tokens,{price},1.60,USD\n",
        "INV-1,3,g,grader_tokens,,g,gpt-4.1,cached_input,200000,tokens,0.50,0.10,USD\n",
        "INV-1,4,g,grader_tokens,,g,gpt-4.1,output,100000,tokens,8.00,0.80,USD\n",
    ]
    written = [r.replace("{price}", "0.000002") for r in rows]
    report = audit_invoice(_canonical_invoice(tmp_path, *written), rftcost.bill(log))
    (finding,) = report.findings
    assert (finding.kind, finding.severity, finding.difference) == (
        "arithmetic_error",
        "info",
        D("0.00"),
    )
    assert "is per token" in finding.explanation and not report.has_errors
    # A price per token that is not the one in force stays two findings.
    wrong = [r.replace("{price}", "0.000003").replace("1.60", "2.40") for r in rows]
    report = audit_invoice(_canonical_invoice(tmp_path, *wrong), rftcost.bill(log))
    assert report.has_errors
    _sums_up(report)


def test_a_tax_line_written_twice_is_a_duplicate_warning(tmp_path: Path) -> None:
    """Lines the logs do not bill, repeated: said (a warning, out of the difference); the
    same tax on two invoices is not a copy."""
    log = _two_hours_ok2(tmp_path)
    invoice = _canonical_invoice(
        tmp_path,
        "INV-1,1,ok,compute,,RFT,,,1.00,hours,100.00,100.00,USD\n",
        "INV-1,2,,tax,,VAT,,,,,,20.00,USD\n",
        "INV-1,3,,tax,,VAT,,,,,,20.00,USD\n",
        "INV-2,1,ok2,compute,,RFT,,,2.00,hours,100.00,200.00,USD\n",
        "INV-2,2,,tax,,VAT,,,,,,20.00,USD\n",
    )
    report = audit_invoice(invoice, rftcost.bill(log))
    (finding,) = report.findings
    assert (finding.kind, finding.severity, finding.invoice_lines) == (
        "duplicate_line",
        "warning",
        (3, 2),
    )
    assert finding.difference is None and not report.has_errors
    assert "VAT" in finding.explanation
    _sums_up(report)


def test_identical_charges_of_a_paused_job_are_not_duplicates(
    bill: rftcost.Bill, tmp_path: Path
) -> None:
    # Without charge_at, ftjob-pause's two charges are two identical lines of 1.00 h.
    lines = invoice_from_bill(bill, charge_at=False)
    pause = lines[(lines["job_id"] == "ftjob-pause")]
    assert len(pause) == 2 and pause.drop(columns="line").duplicated().iloc[1]
    report = _audit(lines, bill, tmp_path)
    assert report.findings == ()


def test_unknown_job(bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path) -> None:
    ghost = clean.loc[[_row(clean, "ftjob-plain", "compute")]].assign(
        job_id="ftjob-ghost", line="77"
    )
    finding = _only(
        _audit(pd.concat([clean, ghost], ignore_index=True), bill, tmp_path), "unknown_job"
    )
    assert (finding.job_id, finding.invoice_line, finding.difference) == (
        "ftjob-ghost",
        77,
        D("200.00"),
    )
    assert "no events in the logs" in finding.explanation


def test_unbilled_job(bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path) -> None:
    report = _audit(clean[clean["job_id"] != "ftjob-queue"], bill, tmp_path)
    finding = _only(report, "unbilled_job")
    assert (finding.job_id, finding.expected, finding.billed) == (
        "ftjob-queue",
        D("400.00"),
        D("0.00"),
    )
    assert finding.difference == D("-400.00") and finding.severity == "warning"


def test_a_vendor_that_rounds_each_charge_up_bills_time_not_rounding(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    # 1 h 0 min 17 s is 1.00 h half up; a vendor rounding up bills 1.01 h on each charge.
    # No rounding scope gives 2.02 h (each charge: 2.00 h; the job's 2 h 0 min 34 s once:
    # 2.01 h), so it is billed time (invoice-audit.md counts only what a scope explains):
    # it was "rounding", info, exit 0, and 20 charges of 17 s passed as $20 of rounding.
    lines = clean.copy()
    for i in lines.index[(lines["job_id"] == "ftjob-pause") & (lines["line_type"] == "compute")]:
        lines.loc[i, ["quantity", "amount"]] = ["1.01", "101.00"]
    report = _audit(lines, bill, tmp_path)
    assert [(f.kind, f.severity, f.job_id, f.difference) for f in report.findings] == [
        ("overbilled_time", "error", "ftjob-pause", D("1.00")),
        ("overbilled_time", "error", "ftjob-pause", D("1.00")),
    ]
    assert report.has_errors
    _sums_up(report)


def test_a_vendor_that_rounds_the_job_once_is_rounding(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    # The job's 2 h 0 min 34 s rounded once is 2.01 h: within what a scope explains.
    lines = clean.copy()
    first = lines.index[(lines["job_id"] == "ftjob-pause") & (lines["line_type"] == "compute")]
    lines.loc[first[-1], ["quantity", "amount"]] = ["1.01", "101.00"]
    report = _audit(lines, bill, tmp_path)
    assert [(f.kind, f.severity, f.job_id, f.difference) for f in report.findings] == [
        ("rounding", "info", "ftjob-pause", D("1.00"))
    ]
    assert not report.has_errors
    _sums_up(report)


def test_rounding_a_different_rounding_scope(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    # The invoice rounds each charge (2 × 1.00 h); under rounding scope "job" the logs give 2.01 h.
    policy = rftcost.load_policy()
    job_scope = policy.model_copy(
        update={"rounding": policy.rounding.model_copy(update={"scope": "job"})}
    )
    path = write_invoice(clean, tmp_path / "invoice.csv")
    report = audit_invoice(path, _logs(), policy=job_scope)
    finding = _only(report, "rounding")
    assert (finding.job_id, finding.difference, finding.severity) == (
        "ftjob-pause",
        D("-1.00"),
        "info",
    )
    assert "scope job" in finding.explanation


def test_invalid_job_is_never_guessed(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    line = pd.DataFrame(
        [{"invoice_id": "INV-TEST", "line": "50", "job_id": "ftjob-invalid", "line_type": "compute",
          "quantity": "1.00", "unit": "hours", "unit_price": "100.00", "amount": "100.00"}]
    )  # fmt: skip
    report = _audit(pd.concat([clean, line], ignore_index=True).fillna(""), bill, tmp_path)
    finding = _only(report, "invalid_job")
    assert (finding.job_id, finding.expected, finding.difference) == ("ftjob-invalid", None, None)
    assert finding.billed == D("100.00") and finding.evidence[0].type == "problem"
    assert "phase_end" in finding.explanation
    assert report.summary.unchecked_total == D("100.00") and report.summary.difference == D("0.00")
    assert report.dispute_rows() == []


def test_tolerance_turns_small_differences_into_info(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    lines.loc[_row(lines, "ftjob-plain", "compute"), "amount"] = "200.03"
    strict = _audit(lines, bill, tmp_path)
    assert strict.has_errors
    lenient = _audit(lines, bill, tmp_path, tolerance=D("0.05"))
    assert not lenient.has_errors and lenient.findings[0].severity == "info"
    assert "tolerance" in lenient.findings[0].explanation


# --- the JSON document --------------------------------------------------------------------------


def test_to_dict_keeps_the_audit_v1_contract(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    lines.loc[_row(lines, "ftjob-queue", "compute"), ["quantity", "amount"]] = ["4.75", "475.00"]
    document = _audit(lines, bill, tmp_path).to_dict()
    assert document["schema"] == "rftcost.audit/v1"
    assert document["invoice"] == "INV-TEST" and document["currency"] == "USD"
    assert document["policy"] == "openai-rft"
    summary = document["summary"]
    for key in (
        "expected_total",
        "billed_total",
        "difference",
        "findings",
        "overbilled",
        "underbilled",
    ):
        assert key in summary
    assert summary["difference"] == "75.00" and summary["findings"] == 1
    finding = document["findings"][0]
    for key in (
        "kind", "severity", "job_id", "line_type", "expected", "billed", "difference",
        "explanation", "invoice_line",
    ):  # fmt: skip
        assert key in finding
    assert (finding["expected"], finding["billed"], finding["difference"]) == (
        "400.00",
        "475.00",
        "75.00",
    )
    assert isinstance(finding["invoice_line"], int)
    assert finding["evidence"][0]["start"] == "2025-06-01T08:00:00Z"
    json.dumps(document)


def test_findings_are_sorted_by_severity_then_money(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.copy()
    lines.loc[_row(lines, "ftjob-plain", "compute"), ["quantity", "amount"]] = ["1.50", "150.00"]
    lines.loc[_row(lines, "ftjob-queue", "compute"), ["quantity", "amount"]] = ["4.75", "475.00"]
    lines.loc[_row(lines, "ftjob-shared", "compute"), "amount"] = "201.00"
    report = _audit(lines, bill, tmp_path)
    assert [(f.severity, f.difference) for f in report.findings] == [
        ("error", D("75.00")), ("error", D("1.00")), ("warning", D("-50.00"))
    ]  # fmt: skip


# --- readers ------------------------------------------------------------------------------------


def test_json_lines_invoice_reads_like_the_csv(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    from_csv = read_invoice(write_invoice(clean, tmp_path / "i.csv"))
    from_jsonl = read_invoice(write_invoice(clean, tmp_path / "i.jsonl"))
    columns = [c for c in from_csv.lines.columns if c != "source_line"]
    pd.testing.assert_frame_equal(from_csv.lines[columns], from_jsonl.lines[columns])
    assert audit_invoice(tmp_path / "i.jsonl", bill).findings == ()


def test_json_numbers_are_read_exactly(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    path.write_text(
        '{"invoice_id": "X", "job_id": "j", "line_type": "compute", "quantity": 0.1, '
        '"unit_price": 100, "amount": 10.000001}\n'
    )
    invoice = read_invoice(path)
    assert invoice.lines.loc[0, "amount_micro"] == 10_000_001
    assert invoice.lines.loc[0, "quantity_micro"] == 100_000
    assert invoice.total() == D("10.000001")


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("amount", "12,50", "not a number"),
        ("amount", "1.0000001", "more than 6 decimals"),
        ("line_type", "fee", "unknown line type"),
        ("token_type", "cached", "unknown token type"),
        ("quantity", "", "a compute line needs its hours"),
        ("charge_at", "2025-06-01T10:00:00", "without an offset"),
        ("job_id", "", "needs a job_id"),
    ],
)
def test_bad_invoice_lines_name_file_line_column_and_value(
    clean: pd.DataFrame, tmp_path: Path, column: str, value: str, reason: str
) -> None:
    lines = clean.copy()
    i = _row(lines, "ftjob-plain", "compute")
    lines.loc[i, column] = value
    path = write_invoice(lines, tmp_path / "bad.csv")
    with pytest.raises(InvoiceError) as caught:
        read_invoice(path)
    error = caught.value
    assert error.path == str(path) and error.line == i + 2  # the header is line 1
    assert reason in str(error)
    assert error.column == ("quantity" if column == "quantity" else column)


def test_naive_charge_at_with_assume_tz(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    lines = clean.assign(charge_at=clean["charge_at"].str.replace("Z", "", regex=False))
    path = write_invoice(lines, tmp_path / "naive.csv")
    assert audit_invoice(path, bill, assume_tz="UTC").findings == ()


def test_currency_mismatch_is_an_invoice_error(
    bill: rftcost.Bill, clean: pd.DataFrame, tmp_path: Path
) -> None:
    path = write_invoice(clean.assign(currency="EUR"), tmp_path / "eur.csv")
    with pytest.raises(InvoiceError, match="EUR"):
        audit_invoice(path, bill)


# --- Costs API exports ----------------------------------------------------------------------------


def test_costs_api_export_audits_clean_per_project_and_day(
    bill: rftcost.Bill, tmp_path: Path
) -> None:
    path = tmp_path / "costs.json"
    path.write_text(dump_costs_export(costs_export_from_bill(bill, page_size=1)))
    report = audit_invoice(path, bill)
    assert report.basis == "project_day" and "per project and UTC day" in report.comparison
    assert report.findings == ()
    assert report.summary.billed_total == bill.totals().total_amount


def test_costs_api_export_difference_names_project_and_day(
    bill: rftcost.Bill, tmp_path: Path
) -> None:
    pages = costs_export_from_bill(bill)
    result = next(
        r for page in pages for b in page["data"] for r in b["results"]
        if r["project_id"] == "ranker" and "training" in r["line_item"]
    )  # fmt: skip
    result["amount"]["value"] = f"{D(result['amount']['value']) + 50:.2f}"
    path = tmp_path / "costs.json"
    path.write_text(dump_costs_export(pages))
    finding = _only(audit_invoice(path, bill), "overbilled_time")
    assert (finding.project, finding.day, finding.difference) == (
        "ranker",
        "2025-06-01",
        D("50.00"),
    )
    assert finding.job_id is None and "names no job" in finding.explanation
    assert {e.job_id for e in finding.evidence} >= {"ftjob-queue"}


def test_costs_api_export_that_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "costs.json"
    path.write_text('{"object": "list", "data": []}')
    with pytest.raises(InvoiceError, match="Costs API page"):
        read_invoice(path)


# --- the CLI ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audit-cli")
    logs = folder / "logs.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in _logs().to_dict("records")))
    bill = rftcost.bill(logs)
    clean = invoice_from_bill(bill, invoice_id="INV-CLI")
    planted = clean.copy()
    i = _row(planted, "ftjob-queue", "compute")
    planted.loc[i, ["quantity", "amount"]] = ["4.75", "475.00"]
    small = clean.copy()
    small.loc[_row(small, "ftjob-plain", "compute"), ["quantity", "amount"]] = ["1.50", "150.00"]
    return {
        "logs": logs,
        "clean": write_invoice(clean, folder / "clean.csv"),
        "planted": write_invoice(planted, folder / "planted.csv"),
        "under": write_invoice(small, folder / "under.csv"),
        "folder": folder,
    }


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["audit", *args])


def test_cli_clean_invoice_exits_0(files: dict[str, Path]) -> None:
    result = _cli("--invoice", str(files["clean"]), str(files["logs"]))
    assert result.exit_code == 0, result.output
    assert "No differences" in result.output and "policy openai-rft" in result.output
    assert "per job" in result.output


def test_cli_error_finding_exits_1_and_table_leads_with_the_summary(files: dict[str, Path]) -> None:
    result = _cli("--invoice", str(files["planted"]), str(files["logs"]))
    assert result.exit_code == 1, result.output
    text = result.output
    assert (
        text.index("Expected")
        < text.index("Billed")
        < text.index("Difference")
        < text.index("queue_time_billed")
    )
    assert "overbilled 75.00" in text and "0.75 h of queue time" in text


def test_cli_warnings_only_exit_0(files: dict[str, Path]) -> None:
    result = _cli("--invoice", str(files["under"]), str(files["logs"]))
    assert result.exit_code == 0 and "underbilled_time" in result.output


def test_cli_json_is_the_audit_document(files: dict[str, Path]) -> None:
    result = _cli("--invoice", str(files["planted"]), str(files["logs"]), "--format", "json")
    document = json.loads(result.stdout)
    assert document["schema"] == "rftcost.audit/v1" and document["summary"]["overbilled"] == "75.00"
    assert document["findings"][0]["kind"] == "queue_time_billed"


def test_cli_csv_and_markdown(files: dict[str, Path]) -> None:
    csv = _cli("--invoice", str(files["planted"]), str(files["logs"]), "-f", "csv")
    rows = pd.read_csv(__import__("io").StringIO(csv.stdout), dtype=str)
    assert list(rows["kind"]) == ["queue_time_billed"] and rows.loc[0, "difference"] == "75.00"
    markdown = _cli("--invoice", str(files["planted"]), str(files["logs"]), "-f", "markdown")
    assert (
        markdown.stdout.startswith("## Invoice audit")
        and "| error | queue_time_billed |" in markdown.stdout
    )


def test_cli_dispute_csv(files: dict[str, Path], tmp_path: Path) -> None:
    dispute = tmp_path / "dispute.csv"
    result = _cli("--invoice", str(files["planted"]), str(files["logs"]), "--dispute", str(dispute))
    assert result.exit_code == 1
    rows = pd.read_csv(dispute, dtype=str)
    assert list(rows.columns[:6]) == [
        "invoice",
        "invoice_line",
        "job_id",
        "line_type",
        "kind",
        "severity",
    ]
    assert rows.loc[0, "kind"] == "queue_time_billed" and rows.loc[0, "difference"] == "75.00"
    assert "queued between" in rows.loc[0, "evidence"]


def test_cli_tolerance_and_bad_tolerance(files: dict[str, Path]) -> None:
    lenient = _cli("--invoice", str(files["planted"]), str(files["logs"]), "--tolerance", "100")
    assert lenient.exit_code == 0
    bad = _cli("--invoice", str(files["planted"]), str(files["logs"]), "--tolerance", "lots")
    assert bad.exit_code == 2


def test_cli_an_unusable_invoice_line_is_rejected_and_the_audit_goes_on(
    files: dict[str, Path],
) -> None:
    """A line of an unknown type among good ones is one unreadable line (exit 1, named with
    its file line and value), no longer a refusal of the whole invoice (exit 2)."""
    lines = pd.read_csv(files["clean"], dtype=str, keep_default_na=False)
    lines.loc[1, "line_type"] = "fee"
    bad = write_invoice(lines, files["folder"] / "bad.csv")
    done = subprocess.run(
        [sys.executable, "-m", "rftcost", "audit", "--invoice", str(bad), str(files["logs"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "unreadable_line" in done.stdout and "fee" in done.stdout
    assert "Traceback" not in done.stderr


def test_cli_table_and_json_round_a_sub_cent_invoice_amount_alike(tmp_path: Path) -> None:
    """An invoice amount of 1.005 once read 1.00 in the table (Python's format rounds half
    to even) and 1.01 in the JSON (R15, half up): every output now says 1.01."""
    logs = Path(__file__).parent.parent / "sample_logs"
    lines = pd.read_csv(logs / "invoice-clean.csv", dtype=str, keep_default_na=False)
    written = lines.loc[0, "amount"]
    assert written.endswith("0")  # an even cent: half to even would round x.xx5 down
    lines.loc[0, "amount"] = written + "5"  # 29.00 → 29.005, which R15 rounds to 29.01
    half_up = str(Decimal(written) + Decimal("0.01"))
    invoice = write_invoice(lines, tmp_path / "sub-cent.csv")

    def audit(*options: str) -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "rftcost",
                "audit",
                "--invoice",
                str(invoice),
                str(logs),
                *options,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout

    document = json.loads(audit("-f", "json"))
    (finding,) = [f for f in document["findings"] if f["billed"] == half_up]
    rows = [row.split() for row in audit().splitlines() if f" {finding['invoice_line']} " in row]
    assert any(finding["kind"] in row and half_up in row for row in rows), rows


def _canonical_invoice(tmp_path: Path, *rows: str) -> Path:
    """A canonical CSV invoice of ``rows`` (each a line of text) under its header."""
    invoice = tmp_path / "invoice.csv"
    invoice.write_text(
        "invoice_id,line,job_id,line_type,charge_at,description,grader_model,token_type,"
        "quantity,unit,unit_price,amount,currency\n" + "".join(rows),
        encoding="utf-8",
    )
    return invoice


def _log_of(tmp_path: Path, events: list[dict[str, Any]]) -> Path:
    """``events`` as a JSON Lines log in ``tmp_path``."""
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return log


_ONE_HOUR_OK = [
    {"job_id": "ok", "ts": "2025-06-02T08:00:00Z", "event": "job_created"},
    {"job_id": "ok", "ts": "2025-06-02T08:00:00Z", "event": "phase_start", "phase": "rollout"},
    {"job_id": "ok", "ts": "2025-06-02T09:00:00Z", "event": "phase_end", "phase": "rollout"},
    {"job_id": "ok", "ts": "2025-06-02T09:00:00Z", "event": "succeeded"},
]
"""Job ``ok``: one hour of rollout, succeeded at 09:00 (100.00)."""


def test_an_invalid_job_no_line_bills_is_said_unknown_never_a_job_of_zero(tmp_path: Path) -> None:
    """Its charge is unknown: the audit said "No differences: the invoice matches the logs"
    with no note. It stays no finding (the invoice may rightly bill it nothing), but the
    expected total says unknown, and a note names the job."""
    events = [
        *_ONE_HOUR_OK,
        {"job_id": "bad", "ts": "2025-06-02T08:00:00Z", "event": "job_created"},
        {"job_id": "bad", "ts": "2025-06-02T09:00:00Z", "event": "phase_end", "phase": "rollout"},
        {"job_id": "bad", "ts": "2025-06-02T09:00:00Z", "event": "succeeded"},
    ]
    log = _log_of(tmp_path, events)
    invoice = _canonical_invoice(
        tmp_path,
        "INV,1,ok,compute,2025-06-02T09:00:00Z,RFT,,,1.00,hours,100.00,100.00,USD\n",
    )
    report = audit_invoice(invoice, rftcost.bill(log))
    assert report.findings == () and report.unpriced_jobs == ("bad",)
    assert any("(bad)" in note and "unknown" in note for note in report.notes)
    table = CliRunner().invoke(app, ["audit", "--invoice", str(invoice), str(log)])
    assert table.exit_code == 0
    assert "100.00 + unknown" in table.stdout
    assert "the invoice matches the logs" not in table.stdout
    markdown = CliRunner().invoke(
        app, ["audit", "--invoice", str(invoice), str(log), "-f", "markdown"]
    )
    assert "100.00 + unknown" in markdown.stdout
    # A pipeline reads it too: the JSON said 100.00 with only a note in prose.
    document = json.loads(
        CliRunner().invoke(app, ["audit", "--invoice", str(invoice), str(log), "-f", "json"]).stdout
    )
    assert document["summary"]["expected_unknown"] is True
    assert (document["unpriced_jobs"], document["orphan_records"]) == (["bad"], 0)


def test_a_credit_line_naming_an_invalid_job_leaves_its_charge_unknown(tmp_path: Path) -> None:
    """A credit, tax or adjustment line is not checked: it names no charge of the job. The
    invalid job's charge stayed unknown, yet the audit said the invoice matches."""
    events = [
        *_ONE_HOUR_OK,
        {"job_id": "bad", "ts": "2025-06-02T08:00:00Z", "event": "job_created"},
        {"job_id": "bad", "ts": "2025-06-02T09:00:00Z", "event": "phase_end", "phase": "rollout"},
    ]
    log = _log_of(tmp_path, events)
    invoice = _canonical_invoice(
        tmp_path,
        "INV,1,ok,compute,2025-06-02T09:00:00Z,RFT,,,1.00,hours,100.00,100.00,USD\n"
        "INV,2,bad,credit,,Goodwill,,,,,,0.00,USD\n",
    )
    report = audit_invoice(invoice, rftcost.bill(log))
    assert report.unpriced_jobs == ("bad",) and report.expected_unknown


def test_credit_and_tax_lines_that_net_to_zero_are_still_unchecked(tmp_path: Path) -> None:
    """A credit of -10.00 and a tax of 10.00 made the unchecked total 0.00, and the audit
    said "the invoice matches the logs" in every format."""
    log = _log_of(tmp_path, _ONE_HOUR_OK)
    invoice = _canonical_invoice(
        tmp_path,
        "INV,1,ok,compute,2025-06-02T09:00:00Z,RFT,,,1.00,hours,100.00,100.00,USD\n"
        "INV,2,,credit,,Goodwill,,,,,,-10.00,USD\n"
        "INV,3,,tax,,VAT,,,,,,10.00,USD\n",
    )
    report = audit_invoice(invoice, rftcost.bill(log))
    assert report.findings == () and report.summary.unchecked_lines == 2
    assert report.to_dict()["summary"]["unchecked_lines"] == 2
    for fmt in ("table", "markdown"):
        shown = CliRunner().invoke(app, ["audit", "--invoice", str(invoice), str(log), "-f", fmt])
        assert shown.exit_code == 0
        assert "the invoice matches the logs" not in shown.stdout
        assert "No differences in the lines checked" in shown.stdout
        assert "Unchecked" in shown.stdout
    html = tmp_path / "report.html"
    made = CliRunner().invoke(
        app, ["report", str(log), "--invoice", str(invoice), "--output", str(html)]
    )
    assert made.exit_code in (0, 1), made.output
    page = html.read_text(encoding="utf-8")
    assert "the invoice matches the logs" not in page and "the lines checked match" in page


def _two_jobs(tmp_path: Path, *extra: str) -> Path:
    """ftjob-a (search, ranker, 1 h on 2 June: 100.00) and ftjob-b (2 h on 3 June, data
    sharing: 100.00), then ``extra`` lines as they are."""
    lines = [
        '{"job_id":"ftjob-a","ts":"2025-06-02T08:00:00Z","event":"job_created",'
        '"team":"search","project":"ranker"}',
        '{"job_id":"ftjob-a","ts":"2025-06-02T08:00:00Z","event":"phase_start","phase":"rollout"}',
        '{"job_id":"ftjob-a","ts":"2025-06-02T09:00:00Z","event":"phase_end","phase":"rollout"}',
        '{"job_id":"ftjob-a","ts":"2025-06-02T09:00:00Z","event":"succeeded"}',
        '{"job_id":"ftjob-b","ts":"2025-06-03T08:00:00Z","event":"job_created",'
        '"team":"search","project":"ranker","data_sharing":true}',
        '{"job_id":"ftjob-b","ts":"2025-06-03T08:00:00Z","event":"phase_start","phase":"rollout"}',
        '{"job_id":"ftjob-b","ts":"2025-06-03T10:00:00Z","event":"phase_end","phase":"rollout"}',
        *extra,
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return log


_COSTS_EXPORT = {
    "object": "page",
    "has_more": False,
    "data": [
        {
            "object": "bucket",
            "start_time": 1748822400,  # 2025-06-02
            "end_time": 1748908800,
            "results": [
                {
                    "object": "organization.costs.result",
                    "amount": {"value": 100.0, "currency": "usd"},
                    "line_item": "fine-tuning training o4-mini-2025-04-16",
                    "project_id": "ranker",
                    "quantity": 1.0,
                    "quantity_unit": "hours",
                }
            ],
        }
    ],
}


def test_a_record_of_no_known_job_leaves_the_audits_expected_total_unknown(
    tmp_path: Path,
) -> None:
    """ftjob-b's succeeded record has no readable job id: the bill says "+ unknown"; the
    audit said "the invoice matches the logs" (exit 0) for an invoice billing ftjob-a."""
    log = _two_jobs(tmp_path, '{"jobid":"ftjob-b","ts":"2025-06-03T10:00:00Z","event":"succeeded"}')
    invoice = _canonical_invoice(
        tmp_path,
        "INV,1,ftjob-a,compute,,RFT,,,1.00,hours,100.00,100.00,USD\n",
    )
    report = audit_invoice(invoice, rftcost.bill(log))
    assert report.findings == () and report.orphan_records == 1 and report.expected_unknown
    assert any("rejected before their job could be read" in note for note in report.notes)
    table = CliRunner().invoke(app, ["audit", "--invoice", str(invoice), str(log)])
    assert table.exit_code == 0
    assert "100.00 + unknown" in table.stdout
    assert "matches the logs" not in table.stdout
    as_csv = CliRunner().invoke(app, ["audit", "--invoice", str(invoice), str(log), "-f", "csv"])
    assert "expected total + unknown" in as_csv.stderr  # not a silent empty sheet
    # A Costs API export: the same, on the other basis.
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps(_COSTS_EXPORT), encoding="utf-8")
    by_day = audit_invoice(costs, rftcost.bill(log))
    assert by_day.orphan_records == 1 and by_day.expected_unknown


def test_a_costs_export_with_no_cell_for_an_invalid_job_says_its_charges_are_unknown(
    tmp_path: Path,
) -> None:
    """ftjob-c (invalid) ran on 4 June, a day the export bills nothing: it said "the invoice
    matches the logs", where the per-job audit says "+ unknown" and names the job."""
    log = _two_jobs(
        tmp_path,
        '{"job_id":"ftjob-b","ts":"2025-06-03T10:00:00Z","event":"succeeded"}',
        '{"job_id":"ftjob-c","ts":"2025-06-04T08:00:00Z","event":"job_created",'
        '"team":"search","project":"ranker"}',
        '{"job_id":"ftjob-c","ts":"2025-06-04T09:00:00Z","event":"phase_end","phase":"rollout"}',
        '{"job_id":"ftjob-c","ts":"2025-06-04T09:00:00Z","event":"succeeded"}',
    )
    export = json.loads(json.dumps(_COSTS_EXPORT))
    export["data"].append(
        {
            "object": "bucket",
            "start_time": 1748908800,  # 2025-06-03
            "end_time": 1748995200,
            "results": [
                {
                    "object": "organization.costs.result",
                    "amount": {"value": 200.0, "currency": "usd"},
                    "line_item": "fine-tuning training o4-mini-2025-04-16",
                    "project_id": "ranker",
                    "quantity": 2.0,
                    "quantity_unit": "hours",
                },
                {
                    "object": "organization.costs.result",
                    "amount": {"value": -100.0, "currency": "usd"},
                    "line_item": "fine-tuning data sharing discount",
                    "project_id": "ranker",
                    "quantity": None,
                    "quantity_unit": None,
                },
            ],
        }
    )
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps(export), encoding="utf-8")
    report = audit_invoice(costs, rftcost.bill(log))
    assert report.findings == () and report.unpriced_jobs == ("ftjob-c",)
    assert any("(ftjob-c)" in note for note in report.notes)
    table = CliRunner().invoke(app, ["audit", "--invoice", str(costs), str(log)])
    assert table.exit_code == 0 and "200.00 + unknown" in table.stdout
    assert "matches the logs" not in table.stdout


def test_two_lines_with_one_number_are_named_by_their_file_lines(tmp_path: Path) -> None:
    log = _two_jobs(
        tmp_path, '{"job_id":"ftjob-b","ts":"2025-06-03T10:00:00Z","event":"succeeded"}'
    )
    row = "INV,1,ftjob-a,compute,,RFT,,,1.00,hours,100.00,100.00,USD\n"
    invoice = _canonical_invoice(tmp_path, row, row)
    (finding,) = [f for f in audit_invoice(invoice, rftcost.bill(log)).findings
                  if f.kind == "duplicate_line"]  # fmt: skip
    assert finding.explanation.startswith("Line 1 (file line 3) repeats line 1 (file line 2)")


def test_a_charge_over_a_price_change_with_typed_token_lines_is_audited(tmp_path: Path) -> None:
    """One charge whose o3 usage lies on both sides of the 2025-06-10 price cut, and an
    invoice with a line per token type and price: the audit failed with a pandas error
    (every usage straddled, so the frame of the others was empty)."""
    log = tmp_path / "log.jsonl"
    usage = '"event":"grader_usage","grader_model":"o3","input_tokens":1000000,'
    usage += '"cached_input_tokens":0,"output_tokens":100000}'
    log.write_text(
        '{"job_id":"j","ts":"2025-06-09T08:00:00Z","event":"job_created","grader_model":"o3"}\n'
        '{"job_id":"j","ts":"2025-06-09T08:00:00Z","event":"phase_start","phase":"rollout"}\n'
        '{"job_id":"j","ts":"2025-06-09T20:00:00Z",' + usage + "\n"
        '{"job_id":"j","ts":"2025-06-10T04:00:00Z",' + usage + "\n"
        '{"job_id":"j","ts":"2025-06-10T08:00:00Z","event":"phase_end","phase":"rollout"}\n'
        '{"job_id":"j","ts":"2025-06-10T08:00:00Z","event":"succeeded"}\n',
        encoding="utf-8",
    )
    invoice = _canonical_invoice(
        tmp_path,
        "I,1,j,compute,,t,,,24.00,hours,100.00,2400.00,USD\n",
        "I,2,j,grader_tokens,,g,o3,input,1000000,tokens,10.00,10.00,USD\n",
        "I,3,j,grader_tokens,,g,o3,input,1000000,tokens,2.00,2.00,USD\n",
        "I,4,j,grader_tokens,,g,o3,output,100000,tokens,40.00,4.00,USD\n",
        "I,5,j,grader_tokens,,g,o3,output,100000,tokens,8.00,0.80,USD\n",
    )
    report = audit_invoice(invoice, rftcost.bill(log))
    assert report.summary.expected_total == Decimal("2416.80") and report.findings == ()


def test_token_lines_at_a_price_in_force_for_only_part_of_the_usage_are_no_rounding(
    tmp_path: Path,
) -> None:
    """Worked example 11 (o3's price cut inside the charge) billed all tokens at the old
    prices, lines without charge_at: each price was in force for some usage, so 11.60 USD
    passed as info "rounding" (exit 0); rounding three lines explains at most 0.03."""
    examples = Path(__file__).resolve().parents[1] / "examples" / "worked_examples.jsonl"
    log = tmp_path / "w11.jsonl"
    log.write_text(
        "".join(line for line in examples.read_text().splitlines(True) if "example-11" in line)
    )
    invoice = _canonical_invoice(
        tmp_path,
        "I,1,ftjob-example-11,compute,,t,,,2.00,hours,100.00,200.00,USD\n",
        "I,2,ftjob-example-11,grader_tokens,,g,o3,input,1600000,tokens,10.00,16.00,USD\n",
        "I,3,ftjob-example-11,grader_tokens,,g,o3,cached_input,400000,tokens,2.50,1.00,USD\n",
        "I,4,ftjob-example-11,grader_tokens,,g,o3,output,300000,tokens,40.00,12.00,USD\n",
    )
    report = audit_invoice(invoice, rftcost.bill(log))
    (finding,) = report.findings
    assert (finding.kind, finding.severity) == ("grader_price_mismatch", "error")
    assert finding.billed - finding.expected == Decimal("11.60") and report.has_errors


def test_unchecked_lines_are_never_said_to_match(tmp_path: Path) -> None:
    """A +1000.00 adjustment beside an honest line: "No differences: the invoice matches
    the logs", exit 0. The lines checked match; the adjustment is said to be unchecked."""
    log = _log_of(tmp_path, _ONE_HOUR_OK)
    invoice = _canonical_invoice(
        tmp_path,
        "INV,1,ok,compute,2025-06-02T09:00:00Z,RFT,,,1.00,hours,100.00,100.00,USD\n"
        "INV,2,ok,adjustment,,extra,,,,,,1000.00,USD\n",
    )
    table = CliRunner().invoke(app, ["audit", "--invoice", str(invoice), str(log)])
    assert "the invoice matches the logs" not in table.stdout
    assert (
        "1000.00 on lines the logs do not bill (credits, adjustments, tax, other costs)"
        in table.stdout
    )
