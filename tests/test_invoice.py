"""rftcost.invoice: every invoice shape it reads, its refusals, and its writers."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from builders import JobLog, frame_of
from shared_cases import SHARED_CASES

from rftcost.billing import Bill
from rftcost.engines import bill
from rftcost.errors import InvoiceError
from rftcost.invoice import (
    INVOICE_COLUMNS,
    LINE_TYPES,
    Invoice,
    costs_export_from_bill,
    dump_costs_export,
    invoice_from_bill,
    load_project_map,
    read_invoice,
    write_invoice,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_logs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CASES = SHARED_CASES


def _case(*parts: str) -> Path:
    """A shared case (``../shared/cases``), the test skipped where it is not at hand (a
    missing file would be refused too, and pass the refusal tests for the wrong reason)."""
    path = CASES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared case {path} is not on this machine")
    return path


@pytest.fixture(scope="module")
def small_bill() -> Bill:
    ads = JobLog("ftjob-ads").created(team="ads", project="answers", data_sharing=True)
    ads.phase("rollout", hours=1).add(
        "grader_usage", grader_model="o3-2025-04-16", input_tokens=1000, output_tokens=100
    )
    ads.at(minutes=1).add("succeeded")
    search = JobLog("ftjob-search").created(team="search", project="lookup")
    search.phase("rollout", minutes=90).add("succeeded")
    return bill(frame_of(ads, search))


def amounts(invoice: Invoice) -> list[int]:
    return invoice.lines["amount_micro"].astype("int64").tolist()


# --- the shapes ---------------------------------------------------------------------------------


def test_a_canonical_csv_invoice() -> None:
    invoice = read_invoice(SAMPLES / "invoice-clean.csv")
    assert (invoice.basis, invoice.invoice_id, invoice.currency) == ("job", "INV-2025-0730", "USD")
    assert len(invoice) == 97 and invoice.total() == Decimal("6186.09")
    assert set(invoice.lines["line_type"]) <= set(LINE_TYPES)
    first = invoice.lines.iloc[0]
    assert (first["job_id"], first["line_type"], first["quantity_micro"]) == (
        "ftjob-7fr1fme71oSzZnxokAiqVshA", "compute", 290_000,
    )  # fmt: skip
    assert (first["unit_price_micro"], first["amount_micro"]) == (100_000_000, 29_000_000)
    assert first["charge_at"] == pd.Timestamp("2025-07-11T11:06:54.237Z").value
    planted = read_invoice(SAMPLES / "invoice-planted.csv")
    assert planted.invoice_id == "INV-2025-0731" and len(planted) == 103


def test_a_costs_api_export() -> None:
    invoice = read_invoice(SAMPLES / "costs-api-export.json")
    assert (invoice.basis, invoice.invoice_id, invoice.currency) == ("project_day", None, "USD")
    # The same month as the canonical invoice, from the vendor's other door: the same total.
    assert invoice.total() == read_invoice(SAMPLES / "invoice-clean.csv").total()
    assert {"compute", "data_sharing_discount", "grader_tokens"} == set(invoice.lines["line_type"])
    assert (invoice.lines["project"] != "").all() and (invoice.lines["job_id"].isna().all())


@pytest.mark.parametrize(
    ("name", "line_type", "total"),
    [
        ("a-ungrouped.json", "unknown", "50"),
        ("b-duration-hours.json", "compute", "50"),
        ("c-by-project.json", "compute", "50"),
        ("d-overbilled-hours.json", "compute", "60"),
    ],
)
def test_costs_api_exports_of_every_grouping(name: str, line_type: str, total: str) -> None:
    invoice = read_invoice(_case("realworld", "12-costs-api-export", name))
    assert invoice.basis == "project_day" and invoice.total() == Decimal(total)
    assert invoice.lines["line_type"].tolist() == [line_type]


def test_the_dashboards_cost_csv() -> None:
    invoice = read_invoice(_case("realworld", "21-dashboard-cost-export-csv", "costs-export.csv"))
    assert invoice.basis == "project_day" and invoice.total() == Decimal(50)
    assert any("dashboard" in note for note in invoice.notes)
    assert any("without an amount" in note for note in invoice.notes)  # skipped, and said


def test_a_frame_csv_gz_and_json_lines_read_alike(tmp_path: Path, small_bill: Bill) -> None:
    lines = invoice_from_bill(small_bill, invoice_id="INV-X")
    assert list(lines.columns) == list(INVOICE_COLUMNS)
    csv = write_invoice(lines, tmp_path / "invoice.csv")
    jsonl = write_invoice(lines, tmp_path / "invoice.jsonl")
    packed = tmp_path / "invoice.csv.gz"
    packed.write_bytes(gzip.compress(csv.read_bytes()))
    read = [read_invoice(p) for p in (csv, jsonl, packed)] + [read_invoice(lines)]
    assert {r.invoice_id for r in read} == {"INV-X"} and {r.basis for r in read} == {"job"}
    assert all(amounts(r) == amounts(read[0]) for r in read)
    # Compute, discount (a data-sharing job) and grader lines; the bill's total exactly.
    assert set(read[0].lines["line_type"]) == {"compute", "data_sharing_discount", "grader_tokens"}
    assert read[0].total() == small_bill.totals().total_amount
    assert read[3].source == "<frame>"


def test_token_type_lines(small_bill: Bill) -> None:
    lines = invoice_from_bill(small_bill, token_types=True)
    invoice = read_invoice(lines)
    tokens = invoice.lines[invoice.lines["line_type"] == "grader_tokens"]
    assert set(tokens["token_type"]) <= {"input", "cached_input", "output"}
    assert set(tokens["grader_family"]) == {"o3"}


def test_a_costs_export_written_from_a_bill(tmp_path: Path, small_bill: Bill) -> None:
    pages = costs_export_from_bill(small_bill, project_ids={"answers": "proj_answers"})
    path = tmp_path / "costs.json"
    path.write_text(dump_costs_export(pages), encoding="utf-8")
    invoice = read_invoice(path)
    assert invoice.basis == "project_day" and invoice.total() == small_bill.totals().total_amount
    assert set(invoice.lines["project"]) == {"proj_answers", "lookup"}


def test_a_project_map(tmp_path: Path) -> None:
    path = tmp_path / "projects.csv"
    path.write_text("project_id,project\nproj_1,answers\n", encoding="utf-8")
    assert load_project_map([str(path)]) == {"proj_1": "answers"}
    assert load_project_map(["proj_2=lookup", "proj_3="]) == {"proj_2": "lookup", "proj_3": ""}
    with pytest.raises(InvoiceError, match="without a project id"):
        load_project_map(["=lookup"])


# --- refusals -----------------------------------------------------------------------------------


def test_what_cannot_be_an_invoice(tmp_path: Path) -> None:
    with pytest.raises(InvoiceError, match="no such invoice file"):
        read_invoice(tmp_path / "missing.csv")
    with pytest.raises(InvoiceError, match="not a regular file"):
        read_invoice(tmp_path)
    (tmp_path / "invoice.xlsx").write_bytes(b"PK")
    with pytest.raises(InvoiceError, match="unsupported invoice file type"):
        read_invoice(tmp_path / "invoice.xlsx")
    (tmp_path / "empty.csv").write_text("\n", encoding="utf-8")
    with pytest.raises(InvoiceError):
        read_invoice(tmp_path / "empty.csv")


def test_hostile_invoices_are_refused_with_the_line(tmp_path: Path) -> None:
    with pytest.raises(InvoiceError) as far:
        read_invoice(_case("hostile", "invoice", "charge-9999.csv"))
    assert "9999" in str(far.value)
    with pytest.raises(InvoiceError):
        read_invoice(_case("hostile", "invoice", "empty-costs.json"))
    bad = tmp_path / "bad.csv"
    bad.write_text(
        ",".join(INVOICE_COLUMNS) + "\n"
        "INV,1,ftjob-a,compute,2025-06-01T00:00:00Z,x,,,1.00,hours,100.00,1.5e2,USD\n",
        encoding="utf-8",
    )
    with pytest.raises(InvoiceError) as caught:
        read_invoice(bad)
    assert "amount" in str(caught.value) and "1.5e2" in str(caught.value)


def test_the_injection_fixture_is_read_as_text() -> None:
    invoice = read_invoice(FIXTURES / "hostile" / "injection" / "invoice.csv")
    assert invoice.basis == "job" and invoice.invoice_id == "=1+1"


def test_a_jsonl_invoice_line_holding_a_unicode_line_separator_is_one_line(
    tmp_path: Path,
) -> None:
    """U+2028 is text inside a JSON string; str.splitlines broke the line there and the
    whole invoice was refused as 'not JSON'."""
    import json

    from rftcost.invoice import read_invoice

    line = {
        "invoice_id": "INV-1", "line": 1, "job_id": "ftjob-a", "line_type": "compute",
        "charge_at": "2025-07-11T11:06:54Z", "description": "RFT\u2028(June)\u0085",
        "quantity": "0.29", "unit": "hours", "unit_price": "100.00", "amount": "29.00",
        "currency": "USD",
    }  # fmt: skip
    text = "\n".join(json.dumps(dict(line, line=n), ensure_ascii=False) for n in (1, 2)) + "\n"
    for name in ("invoice.jsonl", "invoice.json"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        invoice = read_invoice(path)
        assert len(invoice.lines) == 2
        assert invoice.lines["source_line"].tolist() == [1, 2]
