"""The sample invoices: reproduced by their script, and audited as sample_logs/README.md says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

import rftcost

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = ROOT / "sample_logs"
BROKEN = ROOT / "examples" / "audit" / "broken-job.jsonl"

pytestmark = pytest.mark.skipif(
    not (SAMPLE_LOGS / "invoice-planted.csv").exists(), reason="sample invoices not written"
)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_invoices", SAMPLE_LOGS / "make_invoices.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_invoices_are_reproduced_by_their_script(tmp_path: Path) -> None:
    written = _script().main(tmp_path, tmp_path / "broken-job.jsonl")
    assert [p.name for p in written] == [
        "invoice-clean.csv", "invoice-planted.csv", "costs-api-export.json", "broken-job.jsonl"
    ]  # fmt: skip
    for path in written[:3]:
        assert path.read_bytes() == (SAMPLE_LOGS / path.name).read_bytes(), path.name
    assert written[3].read_bytes() == BROKEN.read_bytes()


def test_the_planted_invoice_shows_every_finding_kind_once() -> None:
    from rftcost.audit import FINDING_KINDS

    report = rftcost.audit_invoice(SAMPLE_LOGS / "invoice-planted.csv", [SAMPLE_LOGS, BROKEN])
    kinds = [f.kind for f in report.findings]
    assert sorted(kinds) == sorted(FINDING_KINDS)
    assert report.has_errors and report.invoice == "INV-2025-0731"
    total = sum(f.difference for f in report.findings if f.difference is not None)
    assert total == report.summary.difference


def test_clean_and_costs_api_samples_audit_clean() -> None:
    bill = rftcost.bill(SAMPLE_LOGS)
    clean = rftcost.audit_invoice(SAMPLE_LOGS / "invoice-clean.csv", bill)
    assert clean.findings == ()
    assert clean.invoice == "INV-2025-0730"  # each sample invoice has its own number
    costs = rftcost.audit_invoice(SAMPLE_LOGS / "costs-api-export.json", bill)
    assert costs.findings == () and costs.basis == "project_day"


def test_a_folder_read_of_the_sample_logs_skips_the_invoices() -> None:
    bill = rftcost.bill(SAMPLE_LOGS)
    assert bill.log is not None
    assert not any("invoice" in f or "costs-api" in f for f in bill.log.files)


@pytest.mark.parametrize("lines_per_part", [1, 7])
def test_an_audit_in_parts_of_jobs_is_the_audit_whole(
    monkeypatch: pytest.MonkeyPatch, lines_per_part: int
) -> None:
    from rftcost.audit import api

    bill = rftcost.bill([SAMPLE_LOGS, BROKEN], keep_timeline=True)
    planted = SAMPLE_LOGS / "invoice-planted.csv"
    whole = rftcost.audit_invoice(planted, bill).to_dict()
    monkeypatch.setattr(api, "_LINES_PER_PART", lines_per_part)
    assert rftcost.audit_invoice(planted, bill).to_dict() == whole


def test_lines_matching_no_billing_event_are_noted_in_invoice_order_across_parts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pandas as pd

    from rftcost.audit import api
    from rftcost.invoice import invoice_from_bill, write_invoice

    bill = rftcost.bill(SAMPLE_LOGS, keep_timeline=True)
    lines = invoice_from_bill(bill)
    moved = pd.to_datetime(lines["charge_at"], utc=True) + pd.Timedelta(hours=3)
    late = write_invoice(
        lines.assign(charge_at=moved.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")), tmp_path / "late.csv"
    )
    whole = rftcost.audit_invoice(late, bill)
    unmatched = [n for n in whole.notes if "matches no billing event" in n]
    assert len(unmatched) == 21 and unmatched[0].startswith("Line 1 ")
    # A few moved charges land within the window of the same job's next billing event.
    assert unmatched[-1].startswith("… and 74 more line(s)"), unmatched[-1]
    monkeypatch.setattr(api, "_LINES_PER_PART", 5)
    assert rftcost.audit_invoice(late, bill).to_dict() == whole.to_dict()


def test_charge_times_of_findings_are_exact_whatever_else_the_part_holds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A line without ``charge_at`` made every matched time a float (nanoseconds past
    2**53: 19:54:11.313999 for .314), so a finding's time hung on its neighbours."""
    import pandas as pd

    from rftcost.audit import api
    from rftcost.invoice import write_invoice

    bill = rftcost.bill(SAMPLE_LOGS, keep_timeline=True)
    lines = pd.read_csv(SAMPLE_LOGS / "invoice-clean.csv", dtype=str, keep_default_na=False)
    copied = lines[lines["line_type"] == "compute"].index[0]
    lines.loc[lines.index[-1], "charge_at"] = ""  # another job's line, no charge_at
    copy = lines.loc[[copied]].assign(line="999")
    path = write_invoice(pd.concat([lines, copy], ignore_index=True), tmp_path / "i.csv")
    whole = rftcost.audit_invoice(path, bill)
    (duplicate,) = [f for f in whole.findings if f.kind == "duplicate_line"]
    assert duplicate.charge_at == pd.Timestamp(lines.loc[copied, "charge_at"]).to_pydatetime()
    monkeypatch.setattr(api, "_LINES_PER_PART", 1)
    assert rftcost.audit_invoice(path, bill).to_dict() == whole.to_dict()
