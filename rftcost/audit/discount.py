"""Discount findings: the data-sharing discount of each job or charge against R12.

A discount that differs only because it follows a compute finding (a discount on
hours billed too many) takes that finding's kind; a difference of at most a cent per
line is ``rounding``; anything else is ``missing_discount`` (no discount, a discount
not due, or another amount than the policy gives).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

from rftcost.audit.compute import Causes
from rftcost.audit.context import AuditContext
from rftcost.audit.frames import among, line_numbers, rows_of
from rftcost.audit.matching import Expected
from rftcost.audit.model import Evidence, Finding, micro_to_decimal, severity_of
from rftcost.audit.pricing import MICRO_PER_CENT, discount_micro, rounded, rounding_allowance
from rftcost.audit.wording import at, discount_follows, discount_rounding, missing_discount

__all__ = ["discount_findings"]


def discount_findings(
    ctx: AuditContext, g: pd.DataFrame, expected: Expected, causes: Causes
) -> list[Finding]:
    """The data-sharing discount billed per job or charge, against what the logs give."""
    findings: list[Finding] = []
    money = expected.money
    policy = ctx.policy
    settings = policy.data_sharing_discount
    lines = g[g["line_type"] == "data_sharing_discount"]
    billed = (
        lines.assign(rounded=rounded(lines["amount_micro"]))
        .groupby(["job_id", "charge"], as_index=False)
        .agg(billed=("amount_micro", "sum"), rounded=("rounded", "sum"))
    )
    compute_billed = (
        g[g["line_type"] == "compute"].groupby(["job_id", "charge"])["amount_micro"].sum()
    )
    grader_billed = (
        g[g["line_type"] == "grader_tokens"].groupby(["job_id", "charge"])["amount_micro"].sum()
    )
    wanted = money[among(money["job_id"], set(g["job_id"]))]
    groups = wanted.merge(billed, on=["job_id", "charge"], how="outer")
    groups = groups.assign(
        billed=groups["billed"].fillna(0).astype("int64"),
        expected=-groups["discount_cents"].fillna(0).astype("int64") * MICRO_PER_CENT,
    )
    groups = groups[groups["billed"] != groups["expected"]]
    if groups.empty:
        return findings
    numbers = line_numbers(lines, ["job_id", "charge"], groups)
    rate_text = f"{(settings.rate * 100).normalize():f}%"
    scope_text = " and ".join(settings.scope) or "nothing"
    for row in groups.pipe(rows_of):
        job_id, charge = str(row.job_id), int(row.charge)
        sharing = bool(ctx.jobs.loc[job_id, "data_sharing"])
        base_micro = 0
        if "compute" in settings.scope:
            base_micro += int(compute_billed.get((job_id, charge), 0))
        if "grader" in settings.scope:
            base_micro += int(grader_billed.get((job_id, charge), 0))
        # The discount R12 gives on what the invoice bills (not on what the logs give).
        follows = discount_micro(base_micro, settings.rate, ctx.mode) if sharing else 0
        billed_micro, expected_micro = int(row.billed), int(row.expected)
        diff = billed_micro - expected_micro
        found = numbers.get((row.job_id, row.charge), ())
        # Rounding explains at most the invoice's roundings (a line each, where its amount
        # is whole cents) of R12's exact discount of the logs' amounts: the discount of a
        # whole-dollar charge is exact, and a hundred lines of 0.4901 were never rounded.
        logs_base = 0
        if "compute" in settings.scope and not pd.isna(row.compute_cents):
            logs_base += int(row.compute_cents)
        if "grader" in settings.scope and not pd.isna(row.grader_cents):
            logs_base += int(row.grader_cents)
        exact = Decimal(logs_base * MICRO_PER_CENT) * settings.rate
        roundings = 0 if pd.isna(row.rounded) else int(row.rounded)
        by_rounding = abs(billed_micro + exact) <= rounding_allowance(roundings, ctx.mode)
        common: dict[str, Any] = {
            "job_id": job_id,
            "invoice_line": found[0] if found else None,
            "invoice_lines": found,
            "line_type": "data_sharing_discount",
            "expected": micro_to_decimal(expected_micro),
            "billed": micro_to_decimal(billed_micro),
            "charge_at": at(int(row.at)) if charge >= 0 and not pd.isna(row.at) else None,
        }
        policy_evidence = Evidence(
            type="discount",
            description=(
                f"policy {policy.name}: {rate_text} off {scope_text} for data-sharing jobs; "
                f"job {job_id} was created with data_sharing={str(sharing).lower()}"
            ),
            price=settings.rate,
            source=policy.name,
        )
        cause = causes.get((job_id, charge))
        if sharing and follows == billed_micro and follows != expected_micro and cause is not None:
            findings.append(
                Finding(
                    kind=cause.kind,
                    severity=cause.severity,
                    explanation=discount_follows(job_id, rate_text, cause.kind, diff, ctx.currency),
                    evidence=(policy_evidence,),
                    also=cause.also,
                    **common,
                )
            )
        elif by_rounding and expected_micro != 0:
            findings.append(
                Finding(
                    kind="rounding",
                    severity="info",
                    explanation=discount_rounding(job_id, rate_text, diff, ctx.currency),
                    evidence=(policy_evidence,),
                    **common,
                )
            )
        else:
            findings.append(
                Finding(
                    kind="missing_discount",
                    severity=severity_of(diff),
                    explanation=missing_discount(
                        job_id,
                        policy.name,
                        rate_text,
                        scope_text,
                        sharing,
                        expected_micro,
                        billed_micro,
                        ctx.currency,
                    ),
                    evidence=(policy_evidence,),
                    **common,
                )
            )
    return findings
