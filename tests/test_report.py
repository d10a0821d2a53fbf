"""The HTML report: self-contained, complete, and opened in a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_spend import MONTHLY, SAMPLE_LOGS, mixed_logs
from typer.testing import CliRunner

import rftcost
from rftcost.charts import format_money
from rftcost.cli import app
from rftcost.report import html_report, write_report
from rftcost.spend import Budget, Budgets

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
runner = CliRunner()

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def bill() -> rftcost.Bill:
    return rftcost.bill(mixed_logs())


@pytest.fixture(scope="module")
def budgets() -> Budgets:
    return Budgets(
        items=(
            Budget(team="search", period="2025-06", amount=Decimal("300")),
            Budget(team="ads", period="2025-06", amount=Decimal("1000")),
        ),
        source="budgets.csv",
    )


class FakeAudit:
    """Stands for an ``AuditReport``: the report reads its ``rftcost.audit/v1`` document."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "rftcost.audit/v1",
            "invoice": "INV-2025-06",
            "currency": "USD",
            "policy": "openai-rft",
            "summary": {"expected_total": "100.00", "billed_total": "150.00", "difference": "50.00",
                        "findings": 2, "overbilled": "50.00", "underbilled": "0.00"},
            "findings": [
                {"kind": "rounding", "severity": "info", "job_id": "ftjob-ads",
                 "line_type": "grader_tokens",
                 "expected": "1.00", "billed": "1.01", "difference": "0.01",
                 "explanation": "only rounding <explains> this", "invoice_line": 7},
                {"kind": "queue_time_billed", "severity": "error", "job_id": "ftjob-vision",
                 "line_type": "compute", "expected": "120.00", "billed": "169.99",
                 "difference": "49.99",
                 "explanation": "0.50 h of queue time appears to be billed", "invoice_line": 3},
                {"kind": "unknown_job", "severity": "error", "job_id": "ftjob-ghost",
                 "line_type": "compute", "expected": "0.00", "billed": "0.00", "difference": "0.00",
                 "explanation": "no events for this job", "invoice_line": 9},
            ],
        }  # fmt: skip


def sections(document: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", document)


def test_report_has_every_section_and_the_totals(bill: rftcost.Bill, budgets: Budgets) -> None:
    document = html_report(bill, budgets=budgets, audit=FakeAudit())
    totals = bill.totals()
    assert sections(document) == [
        "Totals", "Spend per team", "Budgets", "From wall clock to total", "Invoice audit",
        "Largest jobs", "Invalid jobs (amount unknown)", "Policy used",
    ]  # fmt: skip
    assert totals.invalid_jobs  # the valid jobs' sum, and the invalid ones' unknown
    assert f'id="total-charged">{format_money(totals.total_amount, "USD")} + unknown<' in document
    assert format_money(totals.compute_amount, "USD") in document
    assert format_money(-totals.discount_amount, "USD") in document
    # Spend per team: every team, unallocated included, with its amount.
    for team in ("ads", "search", "vision", "unallocated"):
        assert f"<td>{team}</td>" in document
    # Budgets: search is over.
    assert '<tr class="over"><td>search</td><td>2025-06</td>' in document
    assert "1 over budget" in document
    # Audit: findings sorted errors first, escaped, with the timelines of known jobs only.
    audit = document[document.index("<h2>Invoice audit</h2>") :]
    assert audit.index("queue_time_billed") < audit.index("rounding")
    assert "only rounding &lt;explains&gt; this" in audit
    assert "Timelines of the jobs with findings" in audit
    assert 'id="job-ftjob-vision"' in audit and 'id="job-ftjob-ads"' in audit
    assert 'id="job-ftjob-ghost"' not in audit
    # The invalid job with its reason, and the policy with its rates; the spend table's
    # total is a lower bound, as rftcost spend says it.
    assert "ftjob-broken" in document
    spend_total = format_money(bill.totals().total_amount, "USD")
    assert f"<strong>{spend_total} + unknown</strong>" in document
    assert "openai-rft" in document and "$100.00/h" in document


def test_report_is_self_contained(bill: rftcost.Bill, budgets: Budgets) -> None:
    document = html_report(bill, budgets=budgets, audit=FakeAudit())
    assert document.startswith("<!DOCTYPE html>")
    assert "<script" not in document.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", document)
    assert "@import" not in document
    assert not re.search(r"url\((?!#)", document)  # only references inside the page
    ids = re.findall(r'\bid="([^"]+)"', document)
    assert len(ids) == len(set(ids))  # several inline SVGs, no id twice
    assert "<link" not in document.lower() and "<img" not in document.lower()
    assert document.count("<svg") >= 5  # spend, cumulative, waterfall, two timelines
    assert "<?xml" not in document


def test_report_without_budgets_or_audit(bill: rftcost.Bill) -> None:
    document = html_report(bill, title="June <RFT>")
    assert "<title>June &lt;RFT&gt;</title>" in document
    assert "Budgets" not in sections(document) and "Invoice audit" not in sections(document)


def test_report_with_a_real_audit(tmp_path: Path, bill: rftcost.Bill) -> None:
    audit_module = pytest.importorskip("rftcost.audit")
    invoice_module = pytest.importorskip("rftcost.invoice")
    lines = invoice_module.invoice_from_bill(bill, invoice_id="INV-TEST")
    index = lines.index[(lines["job_id"] == "ftjob-vision") & (lines["line_type"] == "compute")][0]
    lines.loc[index, ["quantity", "amount"]] = ["1.70", "170.00"]  # 0.50 h more than the logs
    path = invoice_module.write_invoice(lines, tmp_path / "invoice.csv")
    report = audit_module.audit_invoice(path, bill)
    assert report.findings
    document = html_report(bill, audit=report)
    audit = document[document.index("<h2>Invoice audit</h2>") :]
    assert "INV-TEST" in audit
    assert "ftjob-vision" in audit and 'id="job-ftjob-vision"' in audit
    assert format_money(report.summary.difference, "USD") in audit


# --- a real browser -------------------------------------------------------------------------------


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser(*args: str) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    assert binary is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.mark.skipif(
    chromium() is None,
    reason="headless Chromium not installed (Debian: apt-get install -y chromium)",
)
def test_report_renders_in_headless_chromium() -> None:
    from PIL import Image

    if all(p.exists() for p in MONTHLY):
        result = rftcost.bill(MONTHLY)
        budgets: Any = SAMPLE_LOGS / "budgets.csv"
    else:  # pragma: no cover - sample logs are in the repository
        result = rftcost.bill(mixed_logs())
        budgets = None
    audit = None
    try:
        from rftcost.audit import audit_invoice
        from rftcost.invoice import invoice_from_bill, write_invoice
    except ImportError:  # pragma: no cover
        audit_invoice = None  # type: ignore[assignment]
    ARTIFACTS.mkdir(exist_ok=True)
    if audit_invoice is not None:
        lines = invoice_from_bill(result, invoice_id="INV-BROWSER")
        compute = lines.index[lines["line_type"] == "compute"][0]
        hours = Decimal(lines.loc[compute, "quantity"]) + Decimal("0.25")
        rate = Decimal(lines.loc[compute, "unit_price"])
        lines.loc[compute, ["quantity", "amount"]] = [f"{hours:.2f}", f"{hours * rate:.2f}"]
        audit = audit_invoice(write_invoice(lines, ARTIFACTS / "report-invoice.csv"), result)
    page = write_report(
        html_report(result, budgets=budgets, audit=audit), ARTIFACTS / "report.html"
    )
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    shot = browser(f"--screenshot={screenshot}", "--window-size=1280,2000", page.resolve().as_uri())
    assert screenshot.exists(), shot.stderr[-2000:]
    image = Image.open(screenshot).convert("RGB")
    assert image.size == (1280, 2000)
    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 200  # text, cards, a chart: not a blank page
    most = max(count for count, _ in colours)
    assert most < 0.95 * image.size[0] * image.size[1]
    # The Okabe-Ito blue of the total card's border and the charts is on screen.
    assert any(
        abs(r - 0x00) < 30 and abs(g - 0x72) < 30 and abs(b - 0xB2) < 30 for _, (r, g, b) in colours
    )

    dom = browser("--dump-dom", page.resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    totals = result.totals()
    assert f'id="total-charged">{format_money(totals.total_amount, "USD")}</div>' in dom.stdout
    assert "Spend per team" in dom.stdout and "Policy used" in dom.stdout
    assert dom.stdout.count("<svg") >= 3
    if audit is not None:
        assert "INV-BROWSER" in dom.stdout
    (ARTIFACTS / "report.dom.html").write_text(dom.stdout, encoding="utf-8")


# --- command line ---------------------------------------------------------------------------


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    mixed_logs().to_json(path, orient="records", lines=True)
    return path


def test_cli_report(log_file: Path, tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nsearch,2025-06,300\n", encoding="utf-8")
    out = tmp_path / "report.html"
    result = runner.invoke(
        app, ["report", str(log_file), "--budgets", str(budgets), "-o", str(out), "--title", "June"]
    )
    assert result.exit_code == 0, result.output
    document = out.read_text(encoding="utf-8")
    assert "<title>June</title>" in document and "Budgets" in sections(document)
    assert format_money(rftcost.bill(log_file).totals().total_amount, "USD") in document


def test_cli_report_with_an_invoice(log_file: Path, tmp_path: Path) -> None:
    invoice_module = pytest.importorskip("rftcost.invoice")
    lines = invoice_module.invoice_from_bill(rftcost.bill(log_file), invoice_id="INV-CLI")
    invoice = invoice_module.write_invoice(lines, tmp_path / "invoice.csv")
    out = tmp_path / "report.html"
    result = runner.invoke(
        app, ["report", str(log_file), "--invoice", str(invoice), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "audit finding(s)" in result.output
    assert "INV-CLI" in out.read_text(encoding="utf-8")


def test_cli_report_with_a_missing_invoice(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    completed = subprocess.run(
        [sys.executable, "-m", "rftcost", "report", str(log_file), "--invoice",
         str(tmp_path / "none.csv"), "-o", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 2
    assert completed.stderr.startswith("error:") and len(completed.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_report_of_an_empty_bill() -> None:
    frame = pd.DataFrame(
        [{"job_id": "ftjob-x", "ts": "2025-06-01T00:00:00Z", "event": "job_created"}]
    )
    document = html_report(rftcost.bill(frame))
    assert "From wall clock to total" not in sections(document)
    assert "$0.00" in document


def test_the_spend_total_of_a_log_of_invalid_jobs_only_is_unknown() -> None:
    broken = rftcost.bill(mixed_logs().query("job_id == 'ftjob-broken'"))
    document = html_report(broken)
    assert 'id="total-charged">unknown<' in document
    spend = document[document.index("<h2>Spend per team</h2>") :]
    assert "<strong>unknown</strong>" in spend and "<strong>$0.00</strong>" not in spend


def test_a_window_has_a_totals_card_of_its_own(bill: rftcost.Bill) -> None:
    """The cards are the whole log's: the window's spend is a card beside them, not a
    sentence under a total that is not the window's."""
    from rftcost.spend import spend

    document = html_report(bill, window="2025-06-01..2025-07-01")
    june = spend(bill, window="2025-06-01..2025-07-01").totals.total_amount
    cards = document[document.index("<h2>Totals</h2>") : document.index("<h2>Spend per team")]
    assert "Charged in 2025-06-01T00:00:00Z..2025-07-01T00:00:00Z" in cards
    # An invalid job with events in the window (ftjob-broken, 21 June): a lower bound.
    assert f">{format_money(june, 'USD')} + unknown<" in cards
    whole = format_money(bill.totals().total_amount, "USD")
    assert f'id="total-charged">{whole} + unknown<' in cards


def test_a_window_holding_only_an_invalid_job_says_unknown_not_zero(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        "\n".join(
            [
                '{"job_id":"a","ts":"2025-06-02T08:00:00Z","event":"job_created"}',
                '{"job_id":"a","ts":"2025-06-02T08:00:00Z","event":"phase_start","phase":"rollout"}',
                '{"job_id":"a","ts":"2025-06-02T09:00:00Z","event":"phase_end","phase":"rollout"}',
                '{"job_id":"a","ts":"2025-06-02T09:00:00Z","event":"succeeded"}',
                '{"job_id":"b","ts":"2025-06-20T09:00:00Z","event":"job_created"}',
                '{"job_id":"b","ts":"2025-06-20T09:40:00Z","event":"phase_end","phase":"rollout"}',
                '{"job_id":"b","ts":"2025-06-20T10:05:00Z","event":"succeeded"}',
            ]
        ),
        encoding="utf-8",
    )
    document = html_report(rftcost.bill(log), window="2025-06-15..2025-07-01")
    cards = document[document.index("<h2>Totals</h2>") : document.index("<h2>Spend per team")]
    label = "Charged in 2025-06-15T00:00:00Z..2025-07-01T00:00:00Z"
    assert label in cards
    assert re.search(r'id="charged-in-[^"]*">unknown<', cards)
    assert "2025-07-01T00:00:00Z: unknown." in cards


# --- the audit's money the logs do not check ----------------------------------------------

AUDIT_LOGS = pd.DataFrame(
    [
        {"job_id": "good", "ts": "2025-06-01T00:00:00Z", "event": "job_created"},
        {"job_id": "good", "ts": "2025-06-01T00:00:00Z", "event": "phase_start",
         "phase": "rollout"},
        {"job_id": "good", "ts": "2025-06-01T01:00:00Z", "event": "phase_end",
         "phase": "rollout"},
        {"job_id": "good", "ts": "2025-06-01T01:00:00Z", "event": "succeeded"},
        # A phase that ends without having started: the job cannot be reconstructed.
        {"job_id": "bad", "ts": "2025-06-02T00:00:00Z", "event": "job_created"},
        {"job_id": "bad", "ts": "2025-06-02T00:10:00Z", "event": "phase_end",
         "phase": "rollout"},
        {"job_id": "bad", "ts": "2025-06-02T01:10:00Z", "event": "succeeded"},
    ]
)  # fmt: skip

INVOICE_HEADER = (
    "invoice_id,line,job_id,line_type,charge_at,description,grader_model,token_type,"
    "quantity,unit,unit_price,amount,currency\n"
)
GOOD_LINE = "INV-U,1,good,compute,,x,,,1.00,hours,100.00,100.00,USD\n"
GOOD_LOGS = AUDIT_LOGS[AUDIT_LOGS["job_id"] == "good"]
"""Logs the invoice can be checked against entirely: no invalid job."""


def audit_of(tmp_path: Path, *lines: str, logs: pd.DataFrame = AUDIT_LOGS) -> str:
    """The audit section of the report of ``logs`` audited against these invoice lines."""
    from rftcost.audit import audit_invoice

    invoice = tmp_path / "invoice.csv"
    invoice.write_text(INVOICE_HEADER + "".join(lines), encoding="utf-8")
    result = rftcost.bill(logs)
    document = html_report(result, audit=audit_invoice(invoice, result))
    return document[document.index("<h2>Invoice audit</h2>") : document.index("<h2>Largest")]


def audit_cards(audit: str) -> dict[str, tuple[str, str]]:
    """Each card's label → (its class, its value)."""
    found = re.findall(
        r'<div class="card ?([^"]*)"><div class="label">(.*?)</div>'
        r'<div class="value"[^>]*>(.*?)</div>',
        audit,
    )
    return {label: (cls, value) for cls, label, value in found}


def test_tax_and_adjustments_are_shown_as_unchecked_not_as_a_match(tmp_path: Path) -> None:
    audit = audit_of(
        tmp_path,
        GOOD_LINE,
        "INV-U,2,,adjustment,,manual adjustment,,,,,,1000.00,USD\n",
        "INV-U,3,,tax,,VAT,,,,,,220.00,USD\n",
        logs=GOOD_LOGS,
    )
    cards = audit_cards(audit)
    assert cards["Invoice total"] == ("", "$1,320.00")
    assert cards["Billed (lines checked)"] == ("", "$100.00")
    assert cards["Difference"] == ("", "$0.00")
    assert cards["Unchecked"] == ("", "$1,220.00")
    # Outside what the logs bill: said as such, neither a mismatch nor unverified money.
    assert (
        "Unchecked $1,220.00 of the invoice total $1,320.00: credits, adjustments, tax and "
        "other costs, which the logs do not bill; taken as billed, not a difference."
    ) in audit
    assert "Cannot check" not in cards and "NOT VERIFIED" not in audit
    assert "the invoice matches the logs" not in audit
    assert '<span class="badge ok">no findings: the lines checked match the logs</span>' in audit


def test_money_of_an_invalid_job_is_not_verified(tmp_path: Path) -> None:
    audit = audit_of(tmp_path, GOOD_LINE, "INV-U,2,bad,compute,,x,,,5.00,hours,100.00,500.00,USD\n")
    cards = audit_cards(audit)
    # First, in the alarm colour, as prominent as the CLI's "Cannot check … NOT VERIFIED".
    assert next(iter(cards)) == "Cannot check"
    assert cards["Cannot check"] == ("alert", "$500.00")
    assert cards["Invoice total"] == ("", "$600.00")
    assert cards["Unchecked"] == ("", "$500.00")
    assert '<span class="badge over">NOT VERIFIED</span> Cannot check $500.00' in audit
    assert "the invoice matches the logs" not in audit and "match the logs" not in audit
    # The audit's notes, and the invalid job's unknown amounts said as unknown.
    assert "Notes of the audit" in audit
    assert "500.00 USD on 1 line(s) cannot be checked against the logs (jobs bad)" in audit
    row = re.search(r"<tr>.*?invalid_job.*?</tr>", audit)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))
    assert cells[4:7] == ["unknown", "$500.00", "unknown"]


def test_an_invoice_the_logs_check_entirely_matches(tmp_path: Path) -> None:
    audit = audit_of(tmp_path, GOOD_LINE, logs=GOOD_LOGS)
    cards = audit_cards(audit)
    assert cards["Invoice total"] == ("", "$100.00") and cards["Unchecked"] == ("", "$0.00")
    assert '<span class="badge ok">no findings: the invoice matches the logs</span>' in audit
    assert "Cannot check" not in cards and "Unchecked $" not in audit


def test_an_invalid_job_no_line_bills_leaves_the_expected_total_unknown(tmp_path: Path) -> None:
    # "bad" cannot be reconstructed and the invoice bills it nothing: not "matches".
    audit = audit_of(tmp_path, GOOD_LINE)
    assert audit_cards(audit)["Expected (logs)"] == ("", "$100.00 + unknown")
    assert "the invoice matches the logs" not in audit
    assert "the logs leave some charges unknown" in audit
    assert "have no line on the invoice (bad)" in audit


class UnreadableAudit:
    """An audit document with an unreadable line of no amount and no cannot-check total."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "invoice": "INV-X",
            "summary": {"expected_total": "0.00", "billed_total": "0.00", "difference": "0.00",
                        "overbilled": "0.00", "underbilled": "0.00", "invoice_total": "0.00",
                        "unchecked_total": "0.00"},
            "findings": [
                {"kind": "unreadable_line", "severity": "error", "job_id": None,
                 "expected": None, "billed": None, "difference": None,
                 "explanation": "line 2 cannot be read"},
            ],
            "notes": ["a note with <markup>"],
        }  # fmt: skip


def test_money_that_cannot_be_checked_and_has_no_amount_is_unknown(bill: rftcost.Bill) -> None:
    document = html_report(bill, audit=UnreadableAudit())
    audit = document[document.index("<h2>Invoice audit</h2>") :]
    assert audit_cards(audit)["Cannot check"] == ("alert", "unknown")
    assert "NOT VERIFIED</span> Cannot check unknown" in audit
    assert "<li>a note with &lt;markup&gt;</li>" in audit
