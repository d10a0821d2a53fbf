"""The HTML report's templates: autoescape on, nothing marked safe but the charts' SVG."""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_spend import mixed_logs

import rftcost.report
from rftcost.billing import Bill
from rftcost.engines import bill
from rftcost.report import html_report

TEMPLATES = Path(rftcost.report.__file__).resolve().parent / "templates"


@pytest.fixture(scope="module")
def small_bill() -> Bill:
    return bill(mixed_logs())


def test_the_templates_escape_every_value() -> None:
    environment = rftcost.report._environment()
    assert environment.autoescape is True  # every file, whatever its name
    names = sorted(p.name for p in TEMPLATES.iterdir())
    assert "report.html.j2" in names and environment.list_templates() == names
    for path in TEMPLATES.glob("*.j2"):
        source = re.sub(r"\{#.*?#\}", "", path.read_text(encoding="utf-8"), flags=re.S)
        assert not re.search(r"\|\s*safe\b", source), path.name
        assert "autoescape" not in source, path.name  # no {% autoescape false %} block
        assert "Markup" not in source, path.name


def test_the_module_builds_no_html_and_marks_only_the_charts_safe() -> None:
    source = Path(rftcost.report.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not re.search(r"<[a-zA-Z/!]", node.value), node.value[:80]
    markups = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Markup"
    ]
    assert len(markups) == 1
    argument = markups[0].args[0]
    assert isinstance(argument, ast.Call) and ast.unparse(argument.func) == "figure_svg"


class OddAudit:
    """An audit document whose amounts are not all numbers, in no particular order."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "invoice": "INV-ODD",
            "summary": {"expected_total": "10.00", "billed_total": "not a number",
                        "difference": None, "overbilled": "NaN", "underbilled": "0.00"},
            "findings": [
                {"kind": "rounding", "severity": "info", "job_id": "ftjob-ads",
                 "expected": "1.00", "billed": "1.01", "difference": "0.01",
                 "explanation": "first info"},
                {"kind": "rate_mismatch", "severity": "warning", "job_id": "ftjob-ads",
                 "expected": "x", "billed": "2.00", "difference": "oops",
                 "explanation": "a warning"},
                {"kind": "unknown_job", "severity": "error", "job_id": "ftjob-ghost",
                 "expected": "0.00", "billed": "5.00", "difference": "5.00",
                 "explanation": "small error"},
                {"kind": "queue_time_billed", "severity": "error", "job_id": "ftjob-vision",
                 "expected": "1.00", "billed": "50.00", "difference": "49.00",
                 "explanation": "large error"},
            ],
        }  # fmt: skip


def test_an_amount_that_is_not_a_number_is_unknown_never_zero(small_bill: Bill) -> None:
    document = html_report(small_bill, audit=OddAudit())
    audit = document[document.index("<h2>Invoice audit</h2>") :]
    cards = dict(re.findall(r'<div class="label">(.*?)</div><div class="value">(.*?)</div>', audit))
    assert cards == {
        "Invoice total": "—",
        "Expected (logs)": "$10.00",
        "Billed (lines checked)": "unknown",
        "Difference": "—",
        "Overbilled": "unknown",
        "Underbilled": "$0.00",
        "Unchecked": "—",
    }
    warning = re.search(r"<tr>.*?rate_mismatch.*?</tr>", audit)
    assert warning is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", warning.group(0))
    assert cells[4:7] == ["unknown", "$2.00", "unknown"]


def test_findings_keep_the_audits_order_within_a_severity(small_bill: Bill) -> None:
    document = html_report(small_bill, audit=OddAudit())
    audit = document[document.index("<h2>Invoice audit</h2>") :]
    order = [
        audit.index(text) for text in ("small error", "large error", "a warning", "first info")
    ]
    assert order == sorted(order)  # severities first; within one, the document's own order


def test_a_missing_cents_value_is_a_dash(small_bill: Bill) -> None:
    assert rftcost.report._money_cents(None, "USD") == "—"
    assert rftcost.report._money_cents(12345, "USD") == "$123.45"
    assert rftcost.report._money_text("-0.00", "USD", negate=True) == "$0.00"
    assert rftcost.report._money_text(Decimal("1.5"), "EUR", negate=True) == "−€1.50"
