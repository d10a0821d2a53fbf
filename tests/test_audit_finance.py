"""The audit as a finance user gating CI on its exit code reads it: rounding that only a
different rounding scope explains, token-type splits, unchecked money, charges billed at
the wrong time, and the wording of each message."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from builders import JobLog, cli, frame_of

import rftcost
from rftcost.audit import AuditReport, audit_invoice
from rftcost.invoice import invoice_from_bill, write_invoice

D = Decimal


def _audit(lines: pd.DataFrame, bill: rftcost.Bill, tmp_path: Path) -> AuditReport:
    return audit_invoice(write_invoice(lines, tmp_path / "invoice.csv"), bill)


def _short_job(job_id: str = "ftjob-short") -> JobLog:
    """One charge of 1,201 s: 0.3336 h, 0.33 h half up (R11)."""
    log = JobLog(job_id).created(team="t", project="p")
    return log.phase("rollout", seconds=1201).add("succeeded")


def _pause_job(job_id: str = "ftjob-pause") -> JobLog:
    """Two charges of 1 h 0 min 17 s: 2 × 1.00 h per charge, 2.01 h per job (R11)."""
    log = JobLog(job_id).created(team="t", project="p")
    log.phase("rollout", hours=1, seconds=17).add("paused").at(hours=3).add("resumed")
    return log.phase("rollout", hours=1, seconds=17).add("succeeded")


def _set_hours(lines: pd.DataFrame, index: int, hours: str) -> None:
    lines.loc[index, ["quantity", "amount"]] = [hours, f"{D(hours) * 100:.2f}"]


# --- 1. rounding is what a different rounding scope explains -----------------------------------


def test_a_single_charge_rounded_up_is_an_overbill(tmp_path: Path) -> None:
    bill = rftcost.bill(frame_of(_short_job()))
    lines = invoice_from_bill(bill, charge_at=True)
    _set_hours(lines, 0, "0.34")
    report = _audit(lines, bill, tmp_path)
    [finding] = report.findings
    assert (finding.kind, finding.severity, finding.difference) == (
        "overbilled_time",
        "error",
        D("1.00"),
    )
    assert report.has_errors
    assert "1,201 s" in finding.explanation and "0.3336 h" in finding.explanation


def test_a_single_charge_rounded_up_without_charge_times_is_an_overbill(tmp_path: Path) -> None:
    bill = rftcost.bill(frame_of(_short_job()))
    lines = invoice_from_bill(bill, charge_at=False)
    _set_hours(lines, 0, "0.34")
    [finding] = _audit(lines, bill, tmp_path).findings
    assert (finding.kind, finding.severity) == ("overbilled_time", "error")


def test_a_single_charge_rounded_down_is_an_underbill(tmp_path: Path) -> None:
    # 1,211 s is 0.3364 h: 0.34 h half up (R11); a vendor rounding down bills 0.33 h.
    log = JobLog("ftjob-short").created(team="t", project="p")
    bill = rftcost.bill(frame_of(log.phase("rollout", seconds=1211).add("succeeded")))
    lines = invoice_from_bill(bill, charge_at=True)
    assert _audit(lines, bill, tmp_path).findings == ()
    _set_hours(lines, 0, "0.33")
    report = _audit(lines, bill, tmp_path)
    [finding] = report.findings
    assert (finding.kind, finding.severity, finding.difference) == (
        "underbilled_time",
        "warning",
        D("-1.00"),
    )


def test_a_job_rounded_once_instead_of_per_charge_is_rounding(tmp_path: Path) -> None:
    # Rounded per job (scope "job"), the two charges give 2.01 h on the last one.
    bill = rftcost.bill(frame_of(_pause_job()))
    lines = invoice_from_bill(bill, charge_at=True)
    compute = lines.index[lines["line_type"] == "compute"]
    _set_hours(lines, int(compute[0]), "0.00")
    _set_hours(lines, int(compute[1]), "2.01")
    report = _audit(lines, bill, tmp_path)
    assert [(f.kind, f.severity, f.difference) for f in report.findings] == [
        ("rounding", "info", D("1.00"))
    ]
    assert not report.has_errors


# --- 2. grader lines split by token type ---------------------------------------------------------

_GRADER_LOG = [
    {"job_id": "ftjob-R", "ts": "2025-07-02T09:00:00Z", "event": "job_created", "team": "ads",
     "project": "ctr", "model": "o4-mini-2025-04-16", "grader_model": "gpt-4.1"},
    {"job_id": "ftjob-R", "ts": "2025-07-02T09:10:00Z", "event": "phase_start", "phase": "rollout"},
    {"job_id": "ftjob-R", "ts": "2025-07-02T09:30:00Z", "event": "grader_usage",
     "grader_model": "gpt-4.1", "input_tokens": 2500, "cached_input_tokens": 0,
     "output_tokens": 625},
    {"job_id": "ftjob-R", "ts": "2025-07-02T10:10:00Z", "event": "phase_end", "phase": "rollout"},
    {"job_id": "ftjob-R", "ts": "2025-07-02T10:10:00Z", "event": "succeeded"},
]  # fmt: skip
_HEADER = (
    "invoice_id,line,job_id,line_type,charge_at,description,grader_model,token_type,quantity,"
    "unit,unit_price,amount,currency\n"
)


def _grader_invoice(tmp_path: Path, input_amount: str, output_amount: str) -> Path:
    path = tmp_path / "grader.csv"
    path.write_text(
        _HEADER
        + "I,1,ftjob-R,compute,,x,,,1.00,hours,100,100.00,USD\n"
        + f"I,2,ftjob-R,grader_tokens,,g,gpt-4.1,input,2500,tokens,2.00,{input_amount},USD\n"
        + f"I,3,ftjob-R,grader_tokens,,g,gpt-4.1,output,625,tokens,8.00,{output_amount},USD\n"
    )
    return path


def test_token_lines_that_split_the_rounded_amount_audit_clean(tmp_path: Path) -> None:
    # 0.005 + 0.005 USD: R13 rounds the model's 0.010 once; the lines share it as 0.01 + 0.00.
    bill = rftcost.bill(pd.DataFrame(_GRADER_LOG))
    for first, second in (("0.01", "0.00"), ("0.00", "0.01")):
        report = audit_invoice(_grader_invoice(tmp_path, first, second), bill)
        assert report.findings == (), [f.explanation for f in report.findings]
        assert report.summary.overbilled == report.summary.underbilled == D("0.00")


def test_token_lines_each_rounded_up_are_rounding_not_arithmetic(tmp_path: Path) -> None:
    bill = rftcost.bill(pd.DataFrame(_GRADER_LOG))
    report = audit_invoice(_grader_invoice(tmp_path, "0.01", "0.01"), bill)
    assert [(f.kind, f.severity, f.expected, f.billed) for f in report.findings] == [
        ("rounding", "info", D("0.01"), D("0.02"))
    ]


def test_a_token_line_more_than_a_cent_off_its_product_is_an_arithmetic_error(
    tmp_path: Path,
) -> None:
    bill = rftcost.bill(pd.DataFrame(_GRADER_LOG))
    report = audit_invoice(_grader_invoice(tmp_path, "0.01", "0.02"), bill)
    kinds = [(f.kind, f.invoice_line) for f in report.findings]
    assert ("arithmetic_error", 3) in kinds and report.has_errors


# --- 3. money the logs cannot check ---------------------------------------------------------------


def _broken_job() -> JobLog:
    """A phase_end with no open phase: the job cannot be reconstructed."""
    log = JobLog("ftjob-broken").created(team="t", project="p")
    return log.add("phase_end", phase="rollout").at(hours=1).add("succeeded")


def test_a_line_of_a_job_with_invalid_logs_fails_the_gate(tmp_path: Path) -> None:
    from rftcost.cli.audit import render_markdown, render_table

    bill = rftcost.bill(frame_of(_broken_job(), _short_job()))
    lines = invoice_from_bill(bill, charge_at=True)
    broken = lines.iloc[[0]].assign(job_id="ftjob-broken", line="9", amount="500.00")
    broken = broken.assign(quantity="5.00")
    report = _audit(pd.concat([lines, broken], ignore_index=True), bill, tmp_path)
    [finding] = report.findings
    assert (finding.kind, finding.severity, finding.billed) == ("invalid_job", "error", D("500.00"))
    assert report.has_errors
    table = render_table(report)
    assert "Cannot check" in table and "500.00" in table.split("Findings:")[0]
    assert "Cannot check" in render_markdown(report)
    assert any("500.00 USD" in note and "ftjob-broken" in note for note in report.notes)


# --- 4. charges billed at the wrong time --------------------------------------------------------


def _paused_job() -> JobLog:
    """Paused at 08:20 after 20 min (0.33 h), resumed 09:00, succeeded 09:40 (0.67 h)."""
    log = JobLog("ftjob-D").created(team="t", project="p")
    log.phase("rollout", minutes=20).add("paused").at(minutes=40).add("resumed")
    return log.phase("rollout", minutes=40).add("succeeded")


def _two_lines(tmp_path: Path, first: tuple[str, str], second: tuple[str, str]) -> Path:
    path = tmp_path / "charges.csv"
    rows = [
        f"I,{n},ftjob-D,compute,{at},x,,,{hours},hours,100,{D(hours) * 100:.2f},USD\n"
        for n, (at, hours) in enumerate((first, second), start=1)
    ]
    path.write_text(_HEADER + "".join(rows))
    return path


def test_hours_swapped_between_charges_are_found(tmp_path: Path) -> None:
    bill = rftcost.bill(frame_of(_paused_job()))
    invoice = _two_lines(
        tmp_path, ("2025-06-01T08:20:00Z", "0.67"), ("2025-06-01T09:40:00Z", "0.33")
    )
    report = audit_invoice(invoice, bill)
    found = sorted((f.kind, f.severity, f.invoice_line, f.difference) for f in report.findings)
    assert found == [
        ("overbilled_time", "error", 1, D("34.00")),
        ("underbilled_time", "warning", 2, D("-34.00")),
    ]
    assert report.has_errors and report.summary.difference == D("0.00")
    assert all("total" in f.explanation for f in report.findings)


def test_a_charge_time_far_from_every_billing_event_is_said_with_its_money(
    tmp_path: Path,
) -> None:
    bill = rftcost.bill(frame_of(_paused_job()))
    for far in ("2025-06-02T09:40:00Z", "2025-07-10T00:00:00Z"):
        invoice = _two_lines(tmp_path, ("2025-06-01T08:20:00Z", "0.33"), (far, "0.67"))
        report = audit_invoice(invoice, bill)
        [note] = [n for n in report.notes if "Line 2" in n]
        assert "67.00 USD" in note and "60 min" in note and "totals" in note
        assert "2025-06-01 09:40" in note  # the nearest billing event


def test_the_whole_job_on_its_last_charge_is_no_finding(tmp_path: Path) -> None:
    # Rounding scope "job" bills every hour on the job's last charge (R11).
    bill = rftcost.bill(frame_of(_paused_job()))
    path = tmp_path / "one.csv"
    path.write_text(
        _HEADER + "I,1,ftjob-D,compute,2025-06-01T09:40:00Z,x,,,1.00,hours,100,100.00,USD\n"
    )
    report = audit_invoice(path, bill)
    assert report.findings == () and report.notes == ()


# --- 5. messages ----------------------------------------------------------------------------------


def _job_b() -> JobLog:
    """1 h of training, data sharing: 100.00 compute, −50.00 discount (R12)."""
    log = JobLog("ftjob-B").created(team="t", project="p", data_sharing=True)
    return log.phase("rollout", hours=1).add("succeeded")


def _invoice_b(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "b.csv"
    path.write_text(_HEADER + "".join(f"{row}\n" for row in rows))
    return path


_B_COMPUTE = "I,1,ftjob-B,compute,,x,,,1.00,hours,100.00,100.00,USD"


def test_a_positive_discount_line_is_said_with_its_sign(tmp_path: Path) -> None:
    bill = rftcost.bill(frame_of(_job_b()))
    invoice = _invoice_b(
        tmp_path, _B_COMPUTE, "I,2,ftjob-B,data_sharing_discount,,d,,,,,,50.00,USD"
    )
    [finding] = audit_invoice(invoice, bill).findings
    assert finding.kind == "missing_discount" and finding.difference == D("100.00")
    assert "+50.00 USD" in finding.explanation and "-50.00 USD is" not in finding.explanation


def test_an_amount_of_three_decimals_is_shown_as_written(tmp_path: Path) -> None:
    bill = rftcost.bill(frame_of(_job_b()))
    invoice = _invoice_b(
        tmp_path,
        "I,1,ftjob-B,compute,,x,,,1.00,hours,100.00,100.004,USD",
        "I,2,ftjob-B,data_sharing_discount,,d,,,,,,-50.00,USD",
    )
    [finding] = [f for f in audit_invoice(invoice, bill).findings if f.kind == "arithmetic_error"]
    assert "the line says 100.004 USD" in finding.explanation


def test_a_line_repeated_under_another_invoice_id_names_both_ids(tmp_path: Path) -> None:
    bill = rftcost.bill(frame_of(_job_b()))
    discount = "I,2,ftjob-B,data_sharing_discount,,d,,,,,,-50.00,USD"
    invoice = _invoice_b(tmp_path, _B_COMPUTE, discount, _B_COMPUTE.replace("I,1,", "J,1,"))
    [finding] = [f for f in audit_invoice(invoice, bill).findings if f.kind == "duplicate_line"]
    assert "invoice J" in finding.explanation and "invoice I" in finding.explanation


def test_a_line_for_a_job_before_its_first_billing_event_says_accrued(tmp_path: Path) -> None:
    log = JobLog("ftjob-run").created(team="t", project="p")
    bill = rftcost.bill(frame_of(log.phase("rollout", minutes=30)))  # still running
    invoice = _invoice_b(tmp_path, "I,1,ftjob-run,compute,,x,,,0.50,hours,100.00,50.00,USD")
    [finding] = audit_invoice(invoice, bill).findings
    assert finding.kind == "overbilled_time" and finding.difference == D("50.00")
    assert "not reached a billing event" in finding.explanation
    assert "accrued, not charged" in finding.explanation and "1,800 s" in finding.explanation


def test_a_few_seconds_billed_zero_show_the_seconds(tmp_path: Path) -> None:
    # 17.5 s: 18 s, 0.005 h, 0.01 h half up (R11); billed 0.00 h.
    log = JobLog("ftjob-A").created(team="t", project="p")
    bill = rftcost.bill(frame_of(log.phase("rollout", seconds=17.5).add("succeeded")))
    invoice = _invoice_b(tmp_path, "I,1,ftjob-A,compute,,x,,,0.00,hours,100.00,0.00,USD")
    [finding] = audit_invoice(invoice, bill).findings
    assert finding.kind == "underbilled_time"
    assert "17.5 s" in finding.explanation and "0.00 h)" not in finding.explanation


def test_a_json_amount_in_exponent_form_is_its_exact_value(tmp_path: Path) -> None:
    from rftcost.invoice import read_invoice

    record = '"invoice_id":"J","job_id":"ftjob-B","line_type":"compute","quantity":1,'
    record += '"unit":"hours","unit_price":100,"amount":1e2,"currency":"USD"'
    for name in ("j.jsonl", "j.json"):
        path = tmp_path / name
        path.write_text("{" + record + "}\n")
        lines = read_invoice(path).lines
        assert int(lines["amount_micro"].iloc[0]) == 100_000_000


def test_reading_errors_name_what_is_wrong(tmp_path: Path) -> None:
    from rftcost.errors import InvoiceError
    from rftcost.invoice import read_invoice

    minutes = tmp_path / "minutes.csv"
    minutes.write_text(_HEADER + "I,1,ftjob-A,compute,,x,,,0.6,minutes,100,1.00,USD\n")
    with pytest.raises(InvoiceError, match="one of h, hour, hours, hrs"):
        read_invoice(minutes)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        _HEADER
        + "I,1,ftjob-A,compute,,x,,,1.00,hours,100,100.00,EUR\n"
        + "".join(f"I,{n},ftjob-A,tax,,x,,,,,,1.00,USD\n" for n in range(2, 6))
    )
    with pytest.raises(InvoiceError) as error:
        read_invoice(mixed)
    assert (error.value.line, error.value.value) == (2, "EUR")
    events = tmp_path / "events.jsonl"
    events.write_text(
        JobLog("ftjob-A").created(data_sharing=False).frame().to_json(orient="records", lines=True)
    )
    with pytest.raises(InvoiceError, match="is an event log"):
        read_invoice(events)


def test_audit_refuses_an_output_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_text(frame_of(_job_b()).to_json(orient="records", lines=True))
    invoice = _invoice_b(
        tmp_path, _B_COMPUTE, "I,2,ftjob-B,data_sharing_discount,,d,,,,,,-50.00,USD"
    )
    out = tmp_path / "a.xlsx"
    code, _out, err = cli(capsys, "audit", "-i", str(invoice), str(logs), "-o", str(out))
    assert code == 2 and not out.exists() and ".xlsx" in err
    assert len(err.strip().splitlines()) == 1
    code, _out, _err = cli(
        capsys, "audit", "-i", str(invoice), str(logs), "-o", str(out), "-f", "csv"
    )
    assert code == 0 and out.exists()
    code, text, _err = cli(capsys, "audit", "--help")
    assert "invalid_job" in text
