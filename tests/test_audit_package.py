"""The audit package's own contracts: derived differences, public names, one home per rule."""

from __future__ import annotations

import importlib
import pkgutil
from decimal import Decimal

import pytest
from pydantic import ValidationError

import rftcost.audit as audit
from rftcost.audit import SEVERITIES, SEVERITY_ORDER, Finding


def finding(**fields: object) -> Finding:
    base: dict[str, object] = {
        "kind": "overbilled_time",
        "severity": "error",
        "job_id": "ftjob-1",
        "invoice_line": 3,
        "line_type": "compute",
        "explanation": "why",
    }
    return Finding(**{**base, **fields})  # type: ignore[arg-type]


def test_the_difference_is_billed_minus_expected() -> None:
    made = finding(expected=Decimal("10.00"), billed=Decimal("12.50"))
    assert made.difference == Decimal("2.50")
    assert str(made.difference) == "2.50"
    exact = finding(expected=Decimal("0.000001"), billed=Decimal("0.00"))
    assert exact.difference == Decimal("-0.000001")
    assert made.to_dict()["difference"] == "2.50"


def test_no_difference_without_both_amounts() -> None:
    assert finding(expected=None, billed=Decimal("3.00")).difference is None


def test_a_contradicting_difference_is_refused() -> None:
    assert finding(
        expected=Decimal("1.00"), billed=Decimal("2.00"), difference=Decimal("1.0")
    ).difference == Decimal("1.00")
    with pytest.raises(ValidationError, match="is not billed"):
        finding(expected=Decimal("1.00"), billed=Decimal("2.00"), difference=Decimal("0.50"))


def test_severities_in_reading_order() -> None:
    assert SEVERITIES == ("error", "warning", "info")
    assert SEVERITY_ORDER == {"error": 0, "warning": 1, "info": 2}


def test_every_module_has_a_docstring_and_a_sorted_complete_all() -> None:
    for info in pkgutil.iter_modules(audit.__path__):
        module = importlib.import_module(f"rftcost.audit.{info.name}")
        assert module.__doc__, info.name
        names = module.__all__
        assert len(set(names)) == len(names), info.name
        for name in names:
            assert hasattr(module, name), (info.name, name)
    for name in audit.__all__:
        assert hasattr(audit, name), name


def test_priced_tokens_lives_below_the_audit_and_the_invoice() -> None:
    from rftcost import invoice, rules

    assert audit.priced_tokens is rules.priced_tokens
    assert invoice.priced_tokens is rules.priced_tokens
