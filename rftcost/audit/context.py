"""What every step of a job-basis audit reads, built once before the first step runs.

``AuditContext`` holds the invoice, the bill, and what the policy and the bill give
once for all (hour decimals and units, the money rounding mode, each job's hourly
rate in millionths, the time line code of each job): a frozen value, so no step can
change what another reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from rftcost.audit.pricing import NS_PER_HOUR, rate_units_by_job, rounding_mode
from rftcost.audit.wording import at, clock
from rftcost.errors import PolicyError
from rftcost.invoice import Invoice
from rftcost.money import RoundingMode
from rftcost.rules import price_family

__all__ = ["AuditContext"]


@dataclass(frozen=True)
class AuditContext:
    """The invoice and bill of a job-basis audit, and what they give once for all."""

    invoice: Invoice
    """The invoice audited."""
    bill: Any
    """The bill of the logs (with its time line)."""
    tolerance: Decimal
    """Differences up to this amount are info."""
    window_ns: int
    """How far a line's ``charge_at`` may be from its billing event."""
    places: int
    """Hour decimals of the policy (at most 6)."""
    unit_micro_hours: int
    """One billed hour unit in millionths of an hour."""
    unit_ns: int
    """One billed hour unit in nanoseconds."""
    mode: RoundingMode
    """The policy's money rounding mode."""
    jobs: pd.DataFrame
    """The bill's jobs, indexed by job id (str)."""
    rate_units: pd.Series
    """Each job's hourly rate in exact rate units (``rate_places`` decimals), by job id."""
    rate_places: int
    """Decimals of the rate units (at least 6: millionths)."""
    code_of: pd.Series
    """Each job's code in the time line frames, by job id."""

    @classmethod
    def build(cls, invoice: Invoice, bill: Any, tolerance: Decimal, window_ns: int) -> AuditContext:
        """The context of auditing ``invoice`` against ``bill``."""
        policy = bill.policy
        places = int(policy.rounding.hours_decimals)
        if places > 6:
            raise PolicyError("the audit supports at most 6 hour decimals")
        rates, places_of_rates = rate_units_by_job(policy, bill.jobs["model"])
        jobs = bill.jobs.assign(job_id=bill.jobs["job_id"].astype(str)).set_index("job_id")
        # The invoice's grader models in the price table's families: a dated snapshot
        # with a row of its own is that row's, as in the bill (R10).
        lines = invoice.lines
        families = price_family(lines["grader_model"], policy.price_table.models)
        return cls(
            invoice=invoice.model_copy(update={"lines": lines.assign(grader_family=families)}),
            bill=bill,
            tolerance=tolerance,
            window_ns=window_ns,
            places=places,
            unit_micro_hours=10 ** (6 - places),
            unit_ns=NS_PER_HOUR // 10**places,
            mode=rounding_mode(policy.rounding.money_mode),
            jobs=jobs,
            rate_units=pd.Series(rates.to_numpy(), index=jobs.index),
            rate_places=places_of_rates,
            code_of=pd.Series(
                bill.timeline.jobs.index, index=bill.timeline.jobs["job_id"].astype(str)
            ),
        )

    @property
    def policy(self) -> Any:
        """The policy the logs were billed under."""
        return self.bill.policy

    @property
    def currency(self) -> str:
        """Currency of every amount."""
        return str(self.bill.policy.currency)

    def code(self, job_id: str) -> int:
        """A job's code in the time line frames."""
        return int(self.code_of[job_id])

    def charge_window(self, job_id: str, charge: int) -> tuple[int, int, datetime | None]:
        """(segment start, billing event, its moment) of a charge; for a whole job (-1), its
        first event to its last billing event, and no moment."""
        charges = self.bill.charges
        rows = charges[charges["job_id"].astype(str) == job_id]
        if charge >= 0:
            row = rows[rows["charge"] == charge].iloc[0]
            return int(row["segment_start"]), int(row["at"]), at(int(row["at"]))
        first = int(self.bill.timeline.jobs.loc[self.code(job_id), "first_ns"])
        return first, int(rows["at"].max()) if len(rows) else first, None

    def last_event(self, job_id: str) -> str:
        """The last billing event of a job in words."""
        charges = self.bill.charges
        rows = charges[charges["job_id"].astype(str) == job_id]
        if rows.empty:
            return "none"
        last = rows.iloc[-1]
        return f"{last['event']} at {clock(int(last['at']))} UTC"
