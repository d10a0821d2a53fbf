"""Invoices as users get them (issues 12 and 13): Costs API exports and the dashboard's CSV,
the vendor's own quantities, project ids, and hostile invoice and budget files."""

from __future__ import annotations

import csv
import functools
import io
import json
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from builders import JobLog
from shared_cases import SHARED_CASES
from typer.testing import CliRunner

import rftcost
from rftcost.audit import audit_invoice
from rftcost.cli import app
from rftcost.cli import main as cli_main
from rftcost.csvsafe import neutralise_csv_cell
from rftcost.errors import InputError, InvoiceError
from rftcost.invoice import (
    costs_export_from_bill,
    dump_costs_export,
    invoice_from_bill,
    load_project_map,
    read_invoice,
    write_invoice,
)
from rftcost.spend import load_budgets

D = Decimal
CASES = SHARED_CASES
REALWORLD = CASES / "realworld"
HOSTILE = CASES / "hostile"
runner = CliRunner()


def _case(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared case {path} is not on this machine")
    return path


def _audit_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["audit", *args, "-f", "json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def _cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


@dataclass
class _Run:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """The CLI's real entry point in process (errors → one line, exit 2), without a subprocess."""

    def run(*args: str) -> _Run:
        monkeypatch.setattr(sys, "argv", ["rftcost", *args])
        with pytest.raises(SystemExit) as done:
            cli_main()
        out = capsys.readouterr()
        return _Run(int(done.value.code or 0), out.out, out.err)

    return run


def _one_error_line(result: _Run) -> str:
    """Exit 2, one line on stderr, no exception class name."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert not any(name in lines[0] for name in ("OutOfBounds", "Overflow", "ValueError"))
    return lines[0]


# --- realworld 12: Costs API exports ----------------------------------------------------------


def _compute(document: dict[str, Any]) -> dict[str, Any]:
    (cell,) = document["comparisons"]
    return dict(cell)


def test_case12a_ungrouped_export_compares_the_days_total_and_says_how_to_regroup() -> None:
    folder = _case(REALWORLD / "12-costs-api-export")
    code, doc = _audit_json("--invoice", str(folder / "a-ungrouped.json"), str(folder / "logs"))
    assert code == 0 and doc["findings"] == []
    assert (doc["summary"]["expected_total"], doc["summary"]["billed_total"]) == ("50.00", "50.00")
    cell = _compute(doc)
    assert (cell["day"], cell["line_type"], cell["expected"], cell["billed"]) == (
        "2025-06-02",
        None,
        "50.00",
        "50.00",
    )
    note = " ".join(doc["notes"])
    assert "cannot be told apart" in note and "group_by=line_item,project_id" in note
    assert "No compute cost is reported" not in json.dumps(doc)


def test_case12b_duration_hours_line_is_compute_and_its_hours_agree() -> None:
    folder = _case(REALWORLD / "12-costs-api-export")
    code, doc = _audit_json(
        "--invoice", str(folder / "b-duration-hours.json"), str(folder / "logs")
    )
    assert code == 0 and doc["findings"] == []
    cell = _compute(doc)
    assert (cell["line_type"], cell["expected"], cell["billed"]) == ("compute", "50.00", "50.00")
    assert (cell["billed_quantity"], cell["expected_quantity"], cell["quantity_unit"]) == (
        "0.5",
        "0.50",
        "hours",
    )
    assert any("0.5 h" in n and "0.50 h" in n and "agrees" in n for n in doc["notes"])


def test_case12c_unmatched_project_id_says_why_and_how_to_map_it() -> None:
    folder = _case(REALWORLD / "12-costs-api-export")
    invoice, logs = str(folder / "c-by-project.json"), str(folder / "logs")
    code, doc = _audit_json("--invoice", invoice, logs)
    unknown = next(f for f in doc["findings"] if f["kind"] == "unknown_job")
    assert unknown["project"] == "proj_example" and unknown["severity"] == "warning"
    assert "ftjob-rw05" in unknown["explanation"]
    assert "--project-map proj_example=" in unknown["explanation"]
    assert "metadata.project" in unknown["explanation"]
    assert code == 0  # unverifiable, not an overbilling
    # The fix it names works: mapped to the jobs without a project, the export agrees.
    code, doc = _audit_json("--invoice", invoice, logs, "--project-map", "proj_example=")
    assert code == 0 and doc["findings"] == []
    cell = _compute(doc)
    assert (cell["expected"], cell["billed"], cell["billed_quantity"]) == ("50.00", "50.00", "0.5")


def test_case12d_overbilled_hours_in_money_and_hours() -> None:
    folder = _case(REALWORLD / "12-costs-api-export")
    code, doc = _audit_json(
        "--invoice", str(folder / "d-overbilled-hours.json"), str(folder / "logs")
    )
    assert code == 1
    (finding,) = doc["findings"]
    assert (finding["kind"], finding["difference"], finding["day"]) == (
        "overbilled_time",
        "10.00",
        "2025-06-02",
    )
    assert "0.6 h" in finding["explanation"] and "0.50 h" in finding["explanation"]
    assert "0.10 h more" in finding["explanation"]
    cell = _compute(doc)
    assert (cell["billed_quantity"], cell["expected_quantity"]) == ("0.6", "0.50")


def _broken_job(path: Path, day: str, job_id: str = "ftjob-bad") -> Path:
    """A job of that day whose logs cannot be reconstructed (an end that closes nothing)."""
    records = [
        ("08:00", "job_created", None),
        ("08:00", "phase_start", "rollout"),
        ("09:00", "phase_end", "rollout"),
        ("09:00", "phase_end", "rollout"),
        ("09:00", "succeeded", None),
    ]
    path.write_text(
        "".join(
            json.dumps(
                {"job_id": job_id, "ts": f"{day}T{at}:00Z", "event": event, "event_id": f"b{n}"}
                | ({"phase": phase} if phase else {})
            )
            + "\n"
            for n, (at, event, phase) in enumerate(records)
        )
    )
    return path


@pytest.mark.parametrize(
    ("export", "billed"), [("a-ungrouped.json", "50.00"), ("d-overbilled-hours.json", "60.00")]
)
def test_case12_a_day_an_invalid_job_may_be_charged_on_cannot_be_checked(
    tmp_path: Path, export: str, billed: str
) -> None:
    """Not "matches" (a), nor a definite overbilling of 10.00 (d): the invalid job of that
    day may account for any of it. An error, its money in neither total."""
    folder = _case(REALWORLD / "12-costs-api-export")
    broken = _broken_job(tmp_path / "broken.jsonl", "2025-06-02")
    code, doc = _audit_json("--invoice", str(folder / export), str(folder / "logs"), str(broken))
    assert code == 1
    (finding,) = doc["findings"]
    assert (finding["kind"], finding["severity"], finding["job_id"]) == (
        "invalid_job",
        "error",
        "ftjob-bad",
    )
    assert (finding["expected"], finding["billed"], finding["difference"]) == (None, billed, None)
    assert "cannot be checked" in finding["explanation"]
    assert "with no open phase" in " ".join(e["description"] for e in finding["evidence"])
    summary = doc["summary"]
    assert (summary["expected_total"], summary["billed_total"]) == ("0.00", "0.00")
    assert summary["unchecked_total"] == billed
    assert any("cannot be checked against the logs" in note for note in doc["notes"])
    # An invalid job of another day leaves 2025-06-02 as it was.
    elsewhere = _broken_job(tmp_path / "other.jsonl", "2025-06-05")
    code, doc = _audit_json("--invoice", str(folder / export), str(folder / "logs"), str(elsewhere))
    assert [f["kind"] for f in doc["findings"]] == (
        [] if export.startswith("a") else ["overbilled_time"]
    )
    # Unless a record of it could not be read: its days (a billing event's) are unknown.
    unreadable = tmp_path / "unreadable.jsonl"
    unreadable.write_text(
        elsewhere.read_text()
        + '{"job_id": "ftjob-bad", "ts": "2025-13-45T00:00:00Z", "event": "succeeded"}\n'
    )
    code, doc = _audit_json(
        "--invoice", str(folder / export), str(folder / "logs"), str(unreadable)
    )
    assert code == 1 and [f["kind"] for f in doc["findings"]] == ["invalid_job"]


def test_a_cell_billed_below_the_valid_jobs_alone_says_the_definite_underbilling(
    tmp_path: Path,
) -> None:
    """Charges are never negative: billed 20.00 where the valid jobs alone come to 50.00 is
    at least 30.00 underbilled, whatever the invalid job's share; the cell stays unchecked."""
    folder = _case(REALWORLD / "12-costs-api-export")
    broken = _broken_job(tmp_path / "broken.jsonl", "2025-06-02")
    export = json.loads((folder / "a-ungrouped.json").read_text())
    export["data"][0]["results"][0]["amount"]["value"] = 20.0
    invoice = tmp_path / "costs.json"
    invoice.write_text(json.dumps(export))
    code, doc = _audit_json("--invoice", str(invoice), str(folder / "logs"), str(broken))
    assert code == 1
    (finding,) = doc["findings"]
    assert (finding["kind"], finding["billed"], finding["expected"]) == (
        "invalid_job",
        "20.00",
        None,
    )
    assert "Billed 30.00 USD below those alone" in finding["explanation"]
    assert "underbilled by at least" in finding["explanation"]
    # Billed at or above the valid jobs' charges: nothing definite to say.
    code, doc = _audit_json(
        "--invoice", str(folder / "a-ungrouped.json"), str(folder / "logs"), str(broken)
    )
    assert "underbilled" not in doc["findings"][0]["explanation"]


# --- realworld 21: the dashboard's cost CSV ------------------------------------------------


def test_case21_dashboard_cost_csv_audits_per_day() -> None:
    folder = _case(REALWORLD / "21-dashboard-cost-export-csv")
    code, doc = _audit_json("--invoice", str(folder / "costs-export.csv"), str(folder / "logs"))
    assert code == 0 and doc["findings"] == [] and doc["basis"] == "project_day"
    cell = _compute(doc)
    assert (cell["day"], cell["expected"], cell["billed"]) == ("2025-06-02", "50.00", "50.00")
    assert any("2 row(s) without an amount" in n for n in doc["notes"])
    assert doc["lines"] == 1


def test_dashboard_csv_amounts_round_to_the_millionth_and_bad_cells_name_their_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "costs.csv"
    header = "start_time,end_time,start_time_iso,end_time_iso,amount_value,amount_currency,"
    header += "line_item,project_id,organization_id,organization_name\n"
    path.write_text(
        header
        + "1748822400,1748908800,,,0.5617712500000000,usd,,proj_a,org-x,X\n"
        + ",,2025-06-03T00:00:00+00:00,2025-06-04T00:00:00+00:00,1.25,usd,,proj_a,org-x,X\n"
    )
    invoice = read_invoice(path)
    assert list(invoice.lines["amount_micro"]) == [561771, 1250000]
    assert list(invoice.lines["day"]) == ["2025-06-02", "2025-06-03"]
    assert invoice.currency == "USD" and list(invoice.lines["source_line"]) == [2, 3]
    path.write_text(header + "1748822400,1748908800,,,12abc,usd,,,,\n")
    with pytest.raises(InvoiceError) as error:
        read_invoice(path)
    assert (error.value.line, error.value.column, error.value.value) == (2, "amount_value", "12abc")
    path.write_text(header + "100000000000000000000,1748908800,,,1.00,usd,,,,\n")
    with pytest.raises(InvoiceError) as error:
        read_invoice(path)
    assert (error.value.line, error.value.column) == (2, "start_time")


# --- older Costs pages and generated clients -----------------------------------------------


def _page(result: dict[str, Any], **bucket: Any) -> dict[str, Any]:
    return {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": 1748822400,
                "end_time": 1748908800,
                "results": [result],
                **bucket,
            }
        ],
        "has_more": False,
        "next_page": None,
    }


_RESULT = {
    "object": "organization.costs.result",
    "amount": {"value": 50.0, "currency": "usd"},
    "line_item": "fine-tuning training o4-mini",
    "project_id": None,
}


def test_older_page_shapes_are_accepted_and_said(tmp_path: Path) -> None:
    path = tmp_path / "costs.json"
    page = _page(_RESULT)
    bucket = page["data"][0]
    bucket["result"] = bucket.pop("results")
    del page["object"]
    path.write_text(json.dumps(page))
    invoice = read_invoice(path)
    assert list(invoice.lines["amount_micro"]) == [50_000_000]
    assert any("'result' instead of 'results'" in n for n in invoice.notes)
    # A bucket saved alone (page.data[0]), with ISO times from a client.
    alone = dict(bucket, start_time="2025-06-02T00:00:00Z", end_time="2025-06-03T00:00:00Z")
    path.write_text(json.dumps(alone))
    assert list(read_invoice(path).lines["day"]) == ["2025-06-02"]
    # Another object is named exactly.
    path.write_text(json.dumps({"object": "list", "data": [bucket]}))
    with pytest.raises(InvoiceError, match="its object is 'list'"):
        read_invoice(path)


@pytest.mark.parametrize(
    ("field", "value", "column"),
    [
        ("amount", {"value": 10**30, "currency": "usd"}, "amount.value"),
        ("amount", {"value": 184467440737095516160, "currency": "usd"}, "amount.value"),
        ("quantity", 10**25, "quantity"),
        ("quantity", -1, "quantity"),
        ("amount", {"value": True, "currency": "usd"}, "amount.value"),
    ],
)
def test_costs_numbers_that_do_not_fit_are_named(
    tmp_path: Path, field: str, value: Any, column: str
) -> None:
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(_page({**_RESULT, field: value, "quantity_unit": "tokens"})))
    with pytest.raises(InvoiceError) as error:
        read_invoice(path)
    assert error.value.column == f"[0].data[0].results[0].{column}"
    assert error.value.value is not None


def test_costs_bucket_times_in_milliseconds_are_named(tmp_path: Path) -> None:
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(_page(_RESULT, start_time=1748822400000)))
    with pytest.raises(InvoiceError, match="looks like milliseconds"):
        read_invoice(path)


@pytest.mark.parametrize("start", [10**20, -5, 2**63, "9999-01-01T00:00:00Z"])
def test_costs_bucket_times_out_of_range_are_named(tmp_path: Path, start: Any) -> None:
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(_page(_RESULT, start_time=start)))
    with pytest.raises(InvoiceError) as error:
        read_invoice(path)
    assert error.value.column == "[0].data[0].start_time"


# --- the vendor's figures: grader tokens ---------------------------------------------------


@functools.cache
def _o3_bill() -> rftcost.Bill:
    log = JobLog("ftjob-o3", clock=datetime(2025, 6, 12, 8, tzinfo=UTC))
    log.created(team="search", project="ranker", grader_model="o3")
    log.add("phase_start", phase="rollout").at(minutes=30)
    log.add(
        "grader_usage",
        grader_model="o3",
        input_tokens=1_000_000,
        cached_input_tokens=0,
        output_tokens=100_000,
    )
    log.at(minutes=30).add("phase_end", phase="rollout").add("succeeded")
    return rftcost.bill(log.frame())


def test_costs_grader_tokens_at_the_logs_count_and_another_price_name_the_price_entry(
    tmp_path: Path,
) -> None:
    bill = _o3_bill()
    pages = costs_export_from_bill(bill)
    grader = next(r for r in pages[0]["data"][0]["results"] if "grader" in r["line_item"])
    assert grader["quantity"] == 1_100_000 and grader["amount"]["value"] == "2.80"
    grader["amount"]["value"] = "14.00"  # o3's price before 2025-06-10: 10.00 / 40.00 per 1M
    path = tmp_path / "costs.json"
    path.write_text(dump_costs_export(pages))
    report = audit_invoice(path, bill)
    (finding,) = report.findings
    assert finding.kind == "grader_price_mismatch" and finding.difference == D("11.20")
    assert "1,100,000 tokens" in finding.explanation
    assert "from 2025-04-16" in finding.explanation and "from 2025-06-10" in finding.explanation
    assert "cannot be told apart" not in finding.explanation
    assert any(e.type == "price_entry" for e in finding.evidence)


def test_costs_grader_tokens_that_differ_are_a_tokens_mismatch(tmp_path: Path) -> None:
    bill = _o3_bill()
    pages = costs_export_from_bill(bill)
    grader = next(r for r in pages[0]["data"][0]["results"] if "grader" in r["line_item"])
    grader["quantity"] = 2_200_000
    grader["amount"]["value"] = "5.60"
    path = tmp_path / "costs.json"
    path.write_text(dump_costs_export(pages))
    (finding,) = audit_invoice(path, bill).findings
    assert finding.kind == "grader_tokens_mismatch"
    assert "2,200,000 tokens" in finding.explanation and "1,100,000 tokens" in finding.explanation


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("costs.json", '{"object": "page", "data": [], "has_more": false}'),
        ("costs.json", '[{"object": "page", "data": []}, {"object": "page", "data": []}]'),
        ("costs.csv", "start_time,end_time,amount_value,amount_currency,line_item,project_id\n"),
    ],
)
def test_a_costs_export_of_no_day_is_no_invoice(tmp_path: Path, name: str, text: str) -> None:
    """Pages without a bucket, or the dashboard CSV's header alone, cover no day: audited
    as a $0.00 invoice, exit 0 (an empty invoice is no invoice)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvoiceError, match="an empty invoice is no invoice"):
        audit_invoice(path, _o3_bill())


def test_costs_training_in_tokens_is_another_cost_not_rft_compute(tmp_path: Path) -> None:
    """A token-priced training line (supervised fine-tuning) beside the RFT job's: it was
    added to the day's RFT compute, an overbilling of its amount."""
    bill = _o3_bill()
    pages = costs_export_from_bill(bill)
    results = pages[0]["data"][0]["results"]
    results.append(
        {
            **results[0],
            "line_item": "fine-tuning training gpt-4.1-mini-2025-04-14",
            "quantity": 1_500_000,
            "quantity_unit": "tokens",
            "amount": {"value": "7.50", "currency": "usd"},
        }
    )
    path = tmp_path / "costs.json"
    path.write_text(dump_costs_export(pages))
    report = audit_invoice(path, bill)
    assert report.findings == ()
    assert report.summary.unchecked_total == D("7.50")


def test_ungrouped_export_that_differs_is_a_warning_with_the_regroup_hint(tmp_path: Path) -> None:
    bill = _o3_bill()
    total = bill.totals().total_amount
    path = tmp_path / "costs.json"
    result = {**_RESULT, "line_item": None, "amount": {"value": str(total + 7), "currency": "usd"}}
    path.write_text(
        json.dumps(_page(result, start_time=1749686400, end_time=1749772800), default=str)
    )
    (finding,) = audit_invoice(path, bill).findings
    assert finding.severity == "warning" and finding.line_type is None
    assert finding.difference == D("7.00") and "group_by=line_item,project_id" in (
        finding.explanation
    )


# --- project ids ------------------------------------------------------------------------------


def test_project_map_values_and_files(tmp_path: Path) -> None:
    as_json = tmp_path / "map.json"
    as_json.write_text('{"proj_a": "ranker"}')
    as_csv = tmp_path / "map.csv"
    as_csv.write_text("project_id,project\nproj_b,search\n\nproj_c,\n")
    assert load_project_map(["proj_x=ranker", as_json, str(as_csv)]) == {
        "proj_x": "ranker",
        "proj_a": "ranker",
        "proj_b": "search",
        "proj_c": "",
    }
    with pytest.raises(InvoiceError, match="mapped to 'a' and to 'b'"):
        load_project_map(["p=a", "p=b"])
    with pytest.raises(InvoiceError, match="no such file"):
        load_project_map(["nothing-here"])
    as_csv.write_text("proj_b,search,extra\n")
    with pytest.raises(InvoiceError) as error:
        load_project_map([as_csv])
    assert error.value.line == 1


def test_project_map_maps_export_ids_to_the_logs_projects(tmp_path: Path) -> None:
    bill = _o3_bill()
    path = tmp_path / "costs.json"
    path.write_text(dump_costs_export(costs_export_from_bill(bill, project_ids={"ranker": "p1"})))
    findings = audit_invoice(path, bill).findings
    assert {f.kind for f in findings} == {"unknown_job", "unbilled_job"}
    # Both name the mapping that places them; an unmatched id is unverifiable, not an error.
    assert all("--project-map p1=ranker" in f.explanation for f in findings)
    assert all(f.severity == "warning" for f in findings)
    assert audit_invoice(path, bill, project_map={"p1": "ranker"}).findings == ()


# --- hostile invoices (issue 13) -----------------------------------------------------------


def test_hostile_charge_9999_rejects_that_line_with_file_line_column_value(main: Any) -> None:
    """The hostile README: that line rejected with its value, the audit going on (it used to
    refuse the whole invoice, exit 2); its amount is unknown, so the audit finds an error."""
    invoice = _case(HOSTILE / "invoice" / "charge-9999.csv")
    done = main("audit", "--invoice", str(invoice), str(HOSTILE / "baseline.jsonl"))
    assert done.exit_code == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "unreadable_line" in done.stdout
    assert "charge-9999.csv:2" in done.stdout and "charge_at" in done.stdout
    assert "9999-06-02" in done.stdout


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00Z",
        "1677-01-01T00:00:00Z",
        "2263-01-01T00:00:00Z",
        "9999-12-31T23:59:59+02:00",
        "100000000000000000000",
        "9223372037",
    ],
)
def test_invoice_times_out_of_range_are_rejected_with_their_value(
    tmp_path: Path, stamp: str
) -> None:
    path = tmp_path / "invoice.csv"
    path.write_text(
        "invoice_id,job_id,line_type,charge_at,quantity,unit,unit_price,amount,currency\n"
        f"INV,ftjob-a,compute,{stamp},1.00,hours,100.00,100.00,USD\n"
    )
    with pytest.raises(InvoiceError) as error:
        read_invoice(path)
    assert (error.value.line, error.value.column, error.value.value) == (2, "charge_at", stamp)
    assert "out of range" in str(error.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [("empty-costs.json", ""), ("blank.json", "  \n\n"), ("blank.csv", "\n"), ("e.jsonl", "")],
)
def test_an_empty_invoice_is_no_invoice(tmp_path: Path, main: Any, name: str, text: str) -> None:
    shared = HOSTILE / "invoice" / "empty-costs.json"
    path = shared if name == "empty-costs.json" and shared.exists() else tmp_path / name
    if path != shared:
        path.write_text(text)
    line = _one_error_line(main("audit", "--invoice", str(path), str(_baseline(tmp_path))))
    assert "empty invoice is no invoice" in line


def test_a_header_without_lines_is_an_invoice_of_nothing(tmp_path: Path) -> None:
    # An honest invoice for a period without charges: a header, no line (not an empty file).
    path = tmp_path / "invoice.csv"
    path.write_text("invoice_id,job_id,line_type,amount\n")
    assert len(read_invoice(path)) == 0


def _baseline(tmp_path: Path) -> Path:
    shared = HOSTILE / "baseline.jsonl"
    if shared.exists():
        return shared
    log = JobLog("ftjob-a").created(team="t").phase("rollout", hours=1).add("succeeded")
    path = tmp_path / "baseline.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in log.frame().to_dict("records")))
    return path


def test_dispute_csv_has_no_cell_a_spreadsheet_runs(tmp_path: Path) -> None:
    invoice = _case(HOSTILE / "injection" / "invoice.csv")
    dispute = tmp_path / "dispute.csv"
    result = _cli(
        "audit", "--invoice", str(invoice), str(_baseline(tmp_path)), "--dispute", str(dispute)
    )
    assert result.exit_code == 1, result.output
    rows = list(csv.reader(io.StringIO(dispute.read_text())))
    assert len(rows) > 5
    for row in rows[1:]:
        for cell in row:
            assert not cell or cell[0] not in "=+-@\t\r" or _is_number(cell), cell
    text = dispute.read_text()
    assert "'=HYPERLINK" in text and "'@SUM(1+1)" in text and "'+cmd" in text


def _is_number(cell: str) -> bool:
    try:
        D(cell)
    except ArithmeticError:
        return False
    return True


def test_neutralise_csv_cell_keeps_numbers_and_is_idempotent() -> None:
    assert neutralise_csv_cell("-12.50") == "-12.50"
    assert neutralise_csv_cell("-2+3") == "'-2+3"
    assert neutralise_csv_cell("\tx") == "'\tx"
    assert neutralise_csv_cell(neutralise_csv_cell("=1+1")) == "'=1+1"
    assert neutralise_csv_cell("ftjob-a") == "ftjob-a"


def test_dispute_never_overwrites_an_input(tmp_path: Path, main: Any) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "log.jsonl"
    shutil.copy(_baseline(tmp_path), log)
    invoice = tmp_path / "costs.json"
    invoice.write_text(dump_costs_export(costs_export_from_bill(rftcost.bill(log))))
    before = invoice.read_bytes(), log.read_bytes()
    for target in (invoice, log, folder / "dispute.csv"):
        result = main("audit", "--invoice", str(invoice), str(folder), "--dispute", str(target))
        line = _one_error_line(result)
        assert "never overwrites its input" in line
    assert (invoice.read_bytes(), log.read_bytes()) == before
    assert not (folder / "dispute.csv").exists()


def test_why_lines_are_never_cut_mid_sentence() -> None:
    folder = _case(REALWORLD / "12-costs-api-export")
    result = _cli("audit", "--invoice", str(folder / "c-by-project.json"), str(folder / "logs"))
    whys = [line for line in result.stdout.splitlines() if line.startswith(("  1.", "  2."))]
    assert len(whys) == 2
    assert all(line.rstrip().endswith(".") and len(line) > 160 for line in whys)


# --- budgets (issue 13) ---------------------------------------------------------------------


def test_budget_with_thousands_separator_is_rejected_unless_quoted(tmp_path: Path) -> None:
    shared = HOSTILE / "budgets" / "thousands.csv"
    path = tmp_path / "budgets.csv"
    if shared.exists():
        shutil.copy(shared, path)
    else:
        path.write_text("team,period,amount\nsearch,2025-06,1,000.00\n")
    with pytest.raises(InputError) as error:
        load_budgets(path)
    assert error.value.line == 2 and "1,000.00" in str(error.value)
    path.write_text('team,period,amount\nsearch,2025-06,"1,000.00"\nads,2025-06,"12,345,678.5"\n')
    budgets = load_budgets(path)
    assert [b.amount for b in budgets.items] == [D("1000.00"), D("12345678.5")]


@pytest.mark.parametrize("amount", ["1e999", "1e30", "1,00.00", "NaN", "-0.01", "1.001"])
def test_budget_amounts_that_are_not_budgets_name_their_line(tmp_path: Path, amount: str) -> None:
    path = tmp_path / "budgets.csv"
    path.write_text(f'team,period,amount\nsearch,2025-06,"{amount}"\n')
    with pytest.raises(InputError) as error:
        load_budgets(path)
    assert (error.value.line, error.value.column, error.value.value) == (2, "amount", amount)


@pytest.mark.parametrize("period", ["9999-06", "0001-01-01", "2263-W01"])
def test_budget_periods_out_of_range_name_their_line(tmp_path: Path, period: str) -> None:
    path = tmp_path / "budgets.csv"
    path.write_text(f"team,period,amount\nsearch,{period},10.00\n")
    with pytest.raises(InputError) as error:
        load_budgets(path)
    assert (error.value.line, error.value.column) == (2, "period")


def _untyped_grader_invoice(tmp_path: Path, quantity: str, amount: str) -> Path:
    lines = invoice_from_bill(_o3_bill(), invoice_id="INV-O3")
    grader = lines["line_type"] == "grader_tokens"
    lines.loc[grader, ["quantity", "unit", "amount"]] = [quantity, "tokens", amount]
    return write_invoice(lines, tmp_path / "invoice.csv")


def test_invoice_grader_line_at_the_logs_count_names_the_price_entry(tmp_path: Path) -> None:
    path = _untyped_grader_invoice(tmp_path, "1100000", "14.00")
    (finding,) = audit_invoice(path, _o3_bill()).findings
    assert finding.kind == "grader_price_mismatch" and finding.difference == D("11.20")
    assert finding.job_id == "ftjob-o3" and "cannot be told apart" not in finding.explanation
    assert "earlier price" in finding.explanation
    assert any(e.type == "price_entry" and "(in force)" in e.description for e in finding.evidence)
    # A price no entry gives: still the price (the count agrees), with every entry's amount.
    path = _untyped_grader_invoice(tmp_path, "1100000", "9.99")
    (finding,) = audit_invoice(path, _o3_bill()).findings
    assert finding.kind == "grader_price_mismatch" and "the difference is in the" in (
        finding.explanation
    )
    assert "No o3 price entry gives the billed amount" in finding.explanation
    assert {e.description.split(" gives ")[1] for e in finding.evidence} == {
        "14.00 USD",
        "2.80 USD (in force)",
    }


def test_invoice_grader_line_with_another_count_is_a_tokens_mismatch(tmp_path: Path) -> None:
    path = _untyped_grader_invoice(tmp_path, "1500000", "3.50")
    (finding,) = audit_invoice(path, _o3_bill()).findings
    assert finding.kind == "grader_tokens_mismatch"
    assert "1,500,000" in finding.explanation and "1,100,000" in finding.explanation


# --- the invoice readers' other hostile kinds ------------------------------------------------

_HEADER = "invoice_id,job_id,line_type,quantity,unit,unit_price,amount,currency\n"
_ROW = "INV,ftjob-{},compute,1.00,hours,100.00,100.00,USD\n"


@pytest.mark.parametrize("long_first", [True, False])
def test_invoice_row_with_extra_fields_is_refused_with_its_line(
    tmp_path: Path, long_first: bool
) -> None:
    rows = [_ROW.format("a").replace("\n", ",extra\n"), _ROW.format("b")]
    path = tmp_path / "invoice.csv"
    path.write_text(_HEADER + "".join(rows if long_first else rows[::-1]))
    with pytest.raises(InvoiceError, match="more fields") as error:
        read_invoice(path)
    assert error.value.line == (2 if long_first else 3)


@pytest.mark.parametrize(
    ("key", "value"), [("job_id", True), ("job_id", {"a": 1}), ("grader_model", False)]
)
def test_invoice_names_are_strings(tmp_path: Path, key: str, value: Any) -> None:
    record = {"invoice_id": "INV", "job_id": "ftjob-a", "line_type": "compute", "quantity": 1}
    record |= {"unit_price": "100.00", "amount": "100.00", key: value}
    for name in ("invoice.jsonl", "invoice.json"):
        path = tmp_path / name
        path.write_text(json.dumps(record) + "\n")
        with pytest.raises(InvoiceError, match="string or a number") as error:
            read_invoice(path)
        assert (error.value.line, error.value.column) == (1, key)


@pytest.mark.parametrize("value", [True, {"a": 1}, [100]])
def test_a_line_with_a_value_not_a_string_or_number_is_set_aside_in_an_audit(
    tmp_path: Path, value: Any
) -> None:
    """As a line whose amount is null or not a number: one unreadable_line finding and the
    audit goes on (the whole invoice was refused for ``"amount": true``)."""
    good = {"invoice_id": "INV", "job_id": "ftjob-b", "line_type": "compute", "quantity": 2}
    good |= {"unit_price": "100.00", "amount": "200.00", "currency": "USD"}
    bad = good | {"job_id": "ftjob-a", "quantity": 1, "amount": value}
    for name in ("invoice.jsonl", "invoice.json"):
        path = tmp_path / name
        records = [bad, good]
        path.write_text(
            "".join(json.dumps(r) + "\n" for r in records)
            if name.endswith(".jsonl")
            else json.dumps(records)
        )
        read = read_invoice(path, on_bad_line="set_aside")
        assert list(read.lines["job_id"]) == ["ftjob-b"]
        (rejected,) = read.rejected.itertuples()
        assert (rejected.source_line, rejected.column) == (1, "amount")
        assert rejected.reason == "a value must be a string or a number"
        assert str(rejected.value)[0] == json.dumps(value)[0]  # shown as JSON: true, {…}, […]


@pytest.mark.parametrize("key", ["project_id", "line_item", "quantity_unit"])
def test_costs_names_are_strings(tmp_path: Path, key: str) -> None:
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(_page({**_RESULT, key: {"a": 1}})))
    with pytest.raises(InvoiceError, match="not a string") as error:
        read_invoice(path)
    assert error.value.column == f"[0].data[0].results[0].{key}"


def test_a_lone_surrogate_escape_refuses_the_invoice_naming_its_line(tmp_path: Path) -> None:
    record = {"invoice_id": "INV", "job_id": "ftjob-a", "line_type": "compute", "quantity": 1}
    record |= {"unit_price": "100.00", "amount": "100.00", "description": "DESC"}
    canonical = tmp_path / "invoice.jsonl"
    canonical.write_text(
        (json.dumps(record) + "\n") * 2 + json.dumps(record).replace("DESC", "\\udc80") + "\n"
    )
    costs = tmp_path / "costs.json"
    costs.write_text(
        json.dumps(_page({**_RESULT, "project_id": "PROJ"}), indent=1).replace("PROJ", "\\ud800x")
    )
    for path, line in ((canonical, 3), (costs, None)):
        with pytest.raises(InvoiceError, match=r"lone surrogate escape \\ud(c80|800)$") as error:
            read_invoice(path)
        if line is None:  # pretty-printed: the line the escape is written on
            line = 1 + costs.read_text().split("\\ud800")[0].count("\n")
        assert error.value.line == line
    pair = tmp_path / "pair.jsonl"
    pair.write_text(json.dumps(record).replace("DESC", "\\ud83d\\ude00") + "\n")
    assert len(read_invoice(pair).lines) == 1


def test_invoice_files_that_are_not_invoices(tmp_path: Path) -> None:
    with pytest.raises(InvoiceError, match="not a regular file"):
        read_invoice("/dev/zero" if Path("/dev/zero").exists() else tmp_path)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvoiceError):
        read_invoice(deep)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(InvoiceError, match="not UTF-8"):
        read_invoice(binary)


def test_budget_files_that_are_not_budgets(tmp_path: Path) -> None:
    binary = tmp_path / "budgets.csv"
    binary.write_bytes(b"team,period,amount\n\xff\xfe,2025-06,1.00\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load_budgets(binary)
    if Path("/dev/zero").exists():
        with pytest.raises(InputError, match="not a regular file"):
            load_budgets("/dev/zero")


def test_costs_export_cut_short_says_so(tmp_path: Path) -> None:
    page = _page(_RESULT)
    page |= {"has_more": True, "next_page": "page_AAA"}
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(page))
    assert any("has_more: true" in n and "page_AAA" in n for n in read_invoice(path).notes)


def test_findings_csv_has_no_cell_a_spreadsheet_runs(tmp_path: Path) -> None:
    invoice = _case(HOSTILE / "injection" / "invoice.csv")
    result = _cli("audit", "--invoice", str(invoice), str(_baseline(tmp_path)), "-f", "csv")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert len(rows) > 5
    assert all(not c or c[0] not in "=+-@\t\r" or _is_number(c) for row in rows for c in row)


def test_a_rejected_value_is_shown_as_a_short_excerpt(tmp_path: Path) -> None:
    path = tmp_path / "invoice.csv"
    path.write_text(_HEADER + _ROW.format("a").replace("100.00,USD", "9" * 5000 + "x,USD"))
    with pytest.raises(InvoiceError) as error:
        read_invoice(path)
    assert error.value.line == 2 and len(str(error.value)) < 300


def test_a_bucket_saved_twice_is_read_once_and_a_span_twice_is_said(tmp_path: Path) -> None:
    """Two copies of one page (saved twice, or overlapping exports) billed the day twice
    and reported it as overbilled; the copy is one charge."""
    page = _page(_RESULT)
    path = tmp_path / "costs.json"
    path.write_text(json.dumps([page, page]))
    once = read_invoice(tmp_path / "costs.json")
    path.write_text(json.dumps([page]))
    assert list(once.lines["amount_micro"]) == list(read_invoice(path).lines["amount_micro"])
    assert any("repeat an earlier bucket exactly" in note for note in once.notes)
    other = _page({**_RESULT, "amount": {"value": 1.0, "currency": "usd"}})
    path.write_text(json.dumps([page, other]))
    both = read_invoice(path)
    assert len(both.lines) == 2
    assert any("appear more than once with different results" in n for n in both.notes)
