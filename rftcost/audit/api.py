"""The front door of the audit: ``audit_invoice``, and the job-basis audit's steps in order.

``audit_invoice`` reads the invoice, bills the logs (or takes a ``Bill``), and runs
the comparison its basis asks for: per job and charge (``audit_jobs``: matching,
then compute, discount and grader findings) or per project and UTC day for a Costs
API export (``costs.ProjectDayAudit``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rftcost.audit.compute import compute_findings
from rftcost.audit.context import AuditContext
from rftcost.audit.costs import ProjectDayAudit
from rftcost.audit.discount import discount_findings
from rftcost.audit.document import AuditReport, build_report
from rftcost.audit.grader import grader_findings
from rftcost.audit.matching import (
    duplicate_lines,
    duplicate_unchecked_lines,
    expected_amounts,
    invalid_job_findings,
    match_charges,
    total_line_findings,
    typed_families,
    unbilled_job_findings,
    unknown_job_findings,
    unmatched_charge_notes,
    unmatched_lines,
    unreadable_jobs,
    unreadable_line_findings,
)
from rftcost.audit.model import Finding, micro_to_decimal
from rftcost.audit.pricing import MICRO_PER_CENT
from rftcost.errors import InvoiceError, PolicyError
from rftcost.invoice import CHECKED_LINE_TYPES, Invoice, read_invoice
from rftcost.money import format_amount

__all__ = ["audit_invoice", "audit_jobs"]


def audit_invoice(
    invoice: str | Path | Invoice,
    source: Any,
    *,
    policy: Any = None,
    tolerance: Decimal | str | int = Decimal("0.00"),
    assume_tz: str | None = None,
    match_window: timedelta = timedelta(hours=1),
    project_map: Mapping[str, str] | None = None,
) -> AuditReport:
    """Audit an invoice against the event logs.

    ``invoice``: a canonical invoice (CSV / JSON Lines), a Costs API export, or an
    ``Invoice``. ``source``: a ``Bill``, or anything ``rftcost.bill`` reads (paths,
    an ``EventLog``, a frame of events). ``policy`` (name, path or ``Policy``; default
    the bill's, else ``openai-rft``). ``tolerance``: findings whose difference is at
    most this amount get severity ``info``. ``assume_tz``: zone of times written
    without an offset, in the logs and the invoice. ``match_window``: how far a
    line's ``charge_at`` may be from its billing event. ``project_map``: a Costs API
    export's project ids (``proj_…``) → the logs' project names (``""``: the jobs without a
    project); ids not in it are compared as they are.
    """
    from rftcost.billing import Bill
    from rftcost.engines import bill

    if isinstance(tolerance, float):
        raise TypeError("tolerance is a Decimal, int or str, not a float")
    tolerance = Decimal(tolerance)
    if tolerance < 0:
        raise ValueError("tolerance must not be negative")
    # A line that cannot be read is set aside and reported (unreadable_line); the others
    # are audited.
    read = (
        invoice
        if isinstance(invoice, Invoice)
        else read_invoice(invoice, assume_tz=assume_tz, on_bad_line="set_aside")
    )
    if isinstance(source, Bill):
        billed = source
        if policy is not None:
            from rftcost.policy import load_policy

            wanted = load_policy(policy)
            if wanted != source.policy:
                if source.log is None:
                    raise PolicyError(
                        f"the bill was made under {source.policy.name!r} and holds no log to "
                        f"bill again under {wanted.name!r}; pass the logs instead"
                    )
                billed = bill(source.log, policy=wanted)
    else:
        # The findings' kinds and evidence come from the time line: keep it whole.
        billed = bill(source, policy=policy, assume_tz=assume_tz, keep_timeline=True)
    if read.currency is not None and read.currency != billed.policy.currency.upper():
        raise InvoiceError(
            f"invoice in {read.currency} but policy {billed.policy.name!r} bills in "
            f"{billed.policy.currency}",
            path=read.source,
            hint="audit under a policy in the invoice's currency",
        )
    if read.basis == "project_day":
        return ProjectDayAudit(
            read, billed, tolerance, project_map=dict(project_map or {})
        ).report()
    window_ns = int(match_window.total_seconds() * 10**9)
    return audit_jobs(AuditContext.build(read, billed, tolerance, window_ns))


def _comparison(ctx: AuditContext) -> str:
    return (
        "per job: lines with a charge_at are matched to the nearest billing event of their "
        f"job (within {ctx.window_ns // 10**9 // 60} min) and compared charge by charge; "
        "the other jobs' lines are compared to the job's totals"
    )


def audit_jobs(ctx: AuditContext) -> AuditReport:
    """The job-basis audit (invoice-audit.md): invoice-wide checks, matching, duplicates,
    then compute, discount and grader findings, in that order."""
    jobs = ctx.jobs
    lines = ctx.invoice.lines.assign(job_id=ctx.invoice.lines["job_id"].astype("string"))
    findings: list[Finding] = []
    stated = total_line_findings(ctx, lines)
    findings.extend(stated.findings)
    invoice_micro, billed_micro = stated.invoice_micro, stated.stated_gap_micro
    lines = lines[lines["line_type"] != "total"]
    found = pd.Index(np.asarray(jobs.index, dtype=object), dtype=object).get_indexer(
        np.asarray(lines["job_id"], dtype=object)
    )
    # ``found`` is -1 for a line of no known job (masked below): with no job at all, there
    # must still be something to take.
    statuses = jobs["status"].to_numpy(dtype=object) if len(jobs) else np.array([None], object)
    status = pd.Series(np.where(found >= 0, statuses[found], None), index=lines.index, dtype=object)
    checked = lines["line_type"].isin(CHECKED_LINE_TYPES)
    unchecked = ~checked
    invalid = checked & (status == "invalid")
    # The jobs of lines that cannot be read are not checked: their money is unknown.
    unreadable = unreadable_jobs(ctx)
    held = checked & ~invalid & lines["job_id"].isin(unreadable).fillna(False).astype(bool)
    unknown = checked & status.isna() & ~held
    good = checked & status.notna() & (status != "invalid") & ~held
    # Lines set aside as unreadable are unchecked too, by the amount written where it can
    # be read: the invoice total is then the billed total plus the unchecked one.
    rejected = ctx.invoice.rejected
    rejected = rejected[rejected["line_type"].fillna("") != "total"]
    rejected_micro = (
        int(rejected["amount_micro"].dropna().astype("int64").sum()) if len(rejected) else 0
    )
    unchecked_micro = int(lines.loc[unchecked | invalid | held, "amount_micro"].sum())
    unchecked_micro += rejected_micro
    unchecked_lines = int((unchecked | invalid | held).sum()) + len(rejected)
    unverifiable = (invalid | held, rejected, rejected_micro)
    billed_micro += int(lines.loc[good | unknown, "amount_micro"].sum())
    findings.extend(duplicate_unchecked_lines(ctx, lines[unchecked]))
    findings.extend(unreadable_line_findings(ctx, lines[held]))
    findings.extend(unknown_job_findings(ctx, lines[unknown]))
    findings.extend(invalid_job_findings(ctx, lines[invalid]))

    valid = jobs[(jobs["status"] != "invalid") & ~jobs.index.isin(unreadable)]
    expected_micro = int(valid["total_cents"].astype("int64").sum()) * MICRO_PER_CENT
    checked_lines = lines[good]
    findings.extend(
        unbilled_job_findings(ctx, valid, set(checked_lines["job_id"].astype(str).unique()))
    )
    far: list[pd.DataFrame] = []
    for part in _parts_by_job(checked_lines):
        made, unmatched = _audit_lines(ctx, part)
        findings.extend(made)
        far.append(unmatched)
    del checked_lines
    unmatched_notes = unmatched_charge_notes(ctx, pd.concat(far) if far else pd.DataFrame())
    note, unverifiable_micro = _unverifiable_note(ctx, lines, *unverifiable)
    # Invalid jobs no checked line bills (a credit or tax line names no charge): their
    # charges are unknown, so is whether nothing is right.
    invalid_ids = set(jobs.index[jobs["status"] == "invalid"].astype(str))
    priced = set(lines.loc[invalid.to_numpy(), "job_id"].astype(str))
    unpriced = sorted(invalid_ids - priced)
    return build_report(
        invoice=ctx.invoice,
        bill=ctx.bill,
        tolerance=ctx.tolerance,
        comparison=_comparison(ctx),
        findings=findings,
        totals=(expected_micro, billed_micro, invoice_micro, unchecked_micro),
        notes=(*unmatched_notes, *note),
        unverifiable=unverifiable_micro,
        unpriced_jobs=unpriced,
        unchecked_lines=unchecked_lines,
        invoice_total_known=stated.known,
    )


_LINES_PER_PART = 200_000
"""Lines audited at a time, a job's lines never split: the matching and the findings of
one part are freed before the next, so a 1,000,000-line invoice's audit stays within a
bounded memory (issue 16)."""


def _parts_by_job(lines: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """``lines`` in parts of about ``_LINES_PER_PART`` lines, each holding every line of
    its jobs (each job's findings need only its own lines and charges)."""
    n_parts = -(-len(lines) // _LINES_PER_PART)
    if n_parts <= 1:
        yield lines
        return
    codes, jobs = pd.factorize(lines["job_id"], use_na_sentinel=False)
    part_of = codes.astype("int64") * n_parts // max(len(jobs), 1)
    for _, part in lines.groupby(part_of, sort=True):
        yield part


def _audit_lines(ctx: AuditContext, lines: pd.DataFrame) -> tuple[list[Finding], pd.DataFrame]:
    """The findings of the checked lines of some jobs (every line of each): matching,
    duplicates, then compute, discount and grader findings; and the lines whose
    ``charge_at`` matches no billing event (``unmatched_lines``)."""
    g = lines.astype(
        {"job_id": object, "grader_family": object, "token_type": object, "line_type": object}
    )
    far = unmatched_lines(ctx, g)
    if g.empty:
        return [], far
    g = match_charges(ctx, g)
    g = g.assign(typed=typed_families(g))
    expected = expected_amounts(ctx, set(g["job_id"]), g)
    g, findings = duplicate_lines(ctx, g, expected)
    compute, causes = compute_findings(ctx, g, expected)
    findings.extend(compute)
    findings.extend(discount_findings(ctx, g, expected, causes))
    findings.extend(grader_findings(ctx, g, expected))
    return findings, far


def _unverifiable_note(
    ctx: AuditContext,
    lines: pd.DataFrame,
    mask: pd.Series,
    rejected: pd.DataFrame,
    rejected_micro: int,
) -> tuple[tuple[str, ...], int]:
    """What the logs should check and cannot (lines of invalid jobs, unreadable lines and
    their jobs' other lines: ``rejected``, the set-aside lines other than totals), said once
    so that it stands out beside the totals."""
    part = lines[mask]
    total = int(part["amount_micro"].sum()) + rejected_micro
    n_lines = len(part) + len(rejected)
    if n_lines == 0:
        return (), 0
    jobs = sorted({str(j) for j in part["job_id"].dropna()} | set(unreadable_jobs(ctx)))
    named = ", ".join(jobs[:5]) + (f" and {len(jobs) - 5} more" if len(jobs) > 5 else "")
    amount = f"{format_amount(micro_to_decimal(total))} {ctx.currency}"
    if len(rejected) and bool(rejected["amount_micro"].isna().any()):
        # A line whose amount cannot be read: this money is a known part and an unknown one.
        amount = f"{amount} + unknown" if total else "An unknown amount"
    return (
        f"{amount} on {n_lines} line(s) cannot be checked against the logs"
        + (f" (jobs {named})" if named else "")
        + ": their logs are invalid or a line cannot be read; this money is in neither "
        "the expected nor the billed total, and each case is an error finding.",
    ), total
