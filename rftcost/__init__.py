"""rftcost: what reinforcement fine-tuning costs.

Bills from job event logs (R1-R15 of the OpenAI RFT billing rules), invoice
audits, estimates before launch, and spend per team. The public API is this
module's ``__all__``; names load lazily so that ``rftcost --help`` stays instant.

    >>> import rftcost
    >>> bill = rftcost.bill("sample_logs/")          # doctest: +SKIP
    >>> bill.totals().total_amount                    # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from rftcost.version import __version__

_EXPORTS: dict[str, str] = {
    "AuditReport": "rftcost.audit",
    "Bill": "rftcost.billing",
    "BillTotals": "rftcost.billing",
    "Budget": "rftcost.spend",
    "BudgetStatus": "rftcost.spend",
    "Budgets": "rftcost.spend",
    "Calibration": "rftcost.calibration",
    "CalibrationError": "rftcost.errors",
    "Charge": "rftcost.billing",
    "Estimate": "rftcost.estimate",
    "EventLog": "rftcost.events.readers",
    "ExportError": "rftcost.errors",
    "Finding": "rftcost.audit",
    "GraderLine": "rftcost.billing",
    "InputError": "rftcost.errors",
    "InvoiceError": "rftcost.errors",
    "JobBill": "rftcost.billing",
    "Plan": "rftcost.plan",
    "PlanError": "rftcost.errors",
    "Policy": "rftcost.policy",
    "PolicyError": "rftcost.errors",
    "PriceNotFoundError": "rftcost.errors",
    "PriceTable": "rftcost.prices",
    "RftcostError": "rftcost.errors",
    "RoundingMode": "rftcost.money",
    "SpendReport": "rftcost.spend",
    "Timeline": "rftcost.timeline",
    "UnreadableFileError": "rftcost.errors",
    "JobWatch": "rftcost.watch",
    "WatchError": "rftcost.watch",
    "WatchState": "rftcost.watch",
    "audit_invoice": "rftcost.audit",
    "bill": "rftcost.engines",
    "bill_events": "rftcost.billing",
    "build_timeline": "rftcost.timeline",
    "calibrate": "rftcost.calibration",
    "check_budget": "rftcost.estimate",
    "cumulative_figure": "rftcost.charts",
    "estimate": "rftcost.estimate",
    "explain": "rftcost.explain",
    "focus_rows": "rftcost.focus",
    "html_report": "rftcost.report",
    "list_policies": "rftcost.policy",
    "load_budgets": "rftcost.spend",
    "load_plan": "rftcost.plan",
    "load_policy": "rftcost.policy",
    "load_price_table": "rftcost.prices",
    "project_running": "rftcost.estimate",
    "read_events": "rftcost.events.readers",
    "read_invoice": "rftcost.invoice",
    "save_figure": "rftcost.charts",
    "spend": "rftcost.spend",
    "spend_figure": "rftcost.charts",
    "timeline_figure": "rftcost.charts",
    "watch": "rftcost.watch",
    "waterfall_figure": "rftcost.charts",
    "what_if": "rftcost.estimate",
    "write_focus": "rftcost.focus",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rftcost' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from rftcost.audit import AuditReport, Finding, audit_invoice
    from rftcost.billing import Bill, BillTotals, Charge, GraderLine, JobBill, bill_events
    from rftcost.calibration import Calibration, calibrate
    from rftcost.charts import (
        cumulative_figure,
        save_figure,
        spend_figure,
        timeline_figure,
        waterfall_figure,
    )
    from rftcost.errors import (
        CalibrationError,
        ExportError,
        InputError,
        InvoiceError,
        PlanError,
        PolicyError,
        PriceNotFoundError,
        RftcostError,
        UnreadableFileError,
    )
    from rftcost.estimate import Estimate, check_budget, estimate, project_running, what_if
    from rftcost.events.readers import EventLog, read_events
    from rftcost.explain import explain
    from rftcost.focus import focus_rows, write_focus
    from rftcost.invoice import read_invoice
    from rftcost.money import RoundingMode
    from rftcost.plan import Plan, load_plan
    from rftcost.policy import Policy, list_policies, load_policy
    from rftcost.prices import PriceTable, load_price_table
    from rftcost.report import html_report
    from rftcost.spend import Budget, Budgets, BudgetStatus, SpendReport, load_budgets, spend
    from rftcost.timeline import Timeline, build_timeline
    from rftcost.watch import JobWatch, WatchError, WatchState, watch
