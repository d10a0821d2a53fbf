"""Compute findings: each compute line on its own, then each charge's (or job's) hours.

Per line: ``arithmetic_error`` (quantity × unit price ≠ amount) and ``rate_mismatch``
(a price other than the policy's hourly rate). Per charge or job: hours billed beyond
the logs are matched against the job's excluded intervals (``queue_time_billed``)
and lost work (``lost_work_billed``): the exact billable time plus the stretch lies
within one rounding step per charge of the hours billed (R11), else
``overbilled_time``; hours short of them are ``underbilled_time``; a difference only
rounding explains is ``rounding``. The largest compute finding of each job or charge
is its ``cause``: a data-sharing discount that follows it is explained by it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rftcost.audit.context import AuditContext
from rftcost.audit.evidence import Candidate, TimeIndex
from rftcost.audit.frames import among, line_numbers, rows_of
from rftcost.audit.matching import Expected
from rftcost.audit.model import Evidence, Finding, FindingKind, micro_to_decimal, severity_of
from rftcost.audit.pricing import (
    MICRO_PER_CENT,
    NS_PER_MICRO_HOUR,
    cents_of_pico,
    cents_of_time_at_rate,
)
from rftcost.audit.wording import (
    at,
    beyond_cap,
    clock,
    explained_time,
    hours_rounding,
    hours_text,
    job_rounding,
    line_arithmetic,
    micro_hours_text,
    not_charged_yet,
    overbilled_time,
    rate_mismatch,
    span,
    underbilled_time,
)
from rftcost.money import cents_to_decimal, format_amount
from rftcost.prices import resolve_model_family
from rftcost.rules import hour_units

__all__ = ["Causes", "arithmetic_finding", "compute_findings", "remember_cause"]

Causes = dict[tuple[str, int], Finding]
"""The largest compute finding of each (job, charge); charge -1 for a whole job."""


def remember_cause(causes: Causes, job_id: str, charge: int, finding: Finding) -> None:
    """Keep the largest compute finding of a job or charge (a discount may follow it)."""
    known = causes.get((job_id, charge))
    size = abs(finding.difference or Decimal(0))
    if known is None or size > abs(known.difference or Decimal(0)):
        causes[(job_id, charge)] = finding


def arithmetic_finding(
    ctx: AuditContext,
    row: Any,
    line_type: str,
    product: str,
    charge_at: datetime | None,
    **extra: Any,
) -> Finding:
    """arithmetic_error of a line whose ``computed`` cents differ from its amount."""
    line = int(row.line)
    computed = int(row.computed) * MICRO_PER_CENT
    amount = int(row.amount_micro)
    return Finding(
        kind="arithmetic_error",
        severity=severity_of(amount - computed),
        job_id=str(row.job_id),
        invoice_line=line,
        invoice_lines=(line,),
        line_type=line_type,
        expected=micro_to_decimal(computed),
        billed=micro_to_decimal(amount),
        charge_at=charge_at,
        explanation=line_arithmetic(line, product, computed, amount, ctx.currency),
        evidence=(
            Evidence(type="invoice_line", description=f"line {line}: {product}", invoice_line=line),
        ),
        **extra,
    )


def compute_findings(
    ctx: AuditContext, g: pd.DataFrame, expected: Expected
) -> tuple[list[Finding], Causes]:
    """Per line (arithmetic, rate), then per charge or job (hours)."""
    money = expected.money
    capped_jobs = set(money.loc[money["capped"].astype(bool), "job_id"])
    lines = g[g["line_type"] == "compute"]
    q = lines["quantity_micro"].astype("int64").to_numpy().astype(object)
    p = lines["unit_price_micro"].astype("int64").to_numpy().astype(object)
    rate = ctx.rate_units.reindex(lines["job_id"]).to_numpy()
    # The line's own arithmetic: millionths of an hour × millionths per hour = pico-units.
    computed = cents_of_pico(q * p, ctx.policy)
    at_rate = cents_of_time_at_rate(q, rate, ctx.rate_places, ctx.policy)
    amount = lines["amount_micro"].to_numpy(dtype="int64")
    capped = among(lines["job_id"], capped_jobs)
    arithmetic = np.where(capped, 0, amount - computed * MICRO_PER_CENT)
    rate_part = (computed - at_rate) * MICRO_PER_CENT
    per_line = lines.assign(
        computed=computed,
        at_rate=at_rate,
        arithmetic=arithmetic,
        rate_part=rate_part,
        rate=rate,
    )
    findings: list[Finding] = []
    causes: Causes = {}
    _line_findings(ctx, per_line, findings, causes)

    groups = per_line.groupby(["job_id", "charge"], as_index=False).agg(
        quantity=("quantity_micro", "sum"),
        at_rate=("at_rate", "sum"),
        amount=("amount_micro", "sum"),
        rate_part=("rate_part", "sum"),
    )
    jobs_with_lines = set(g["job_id"])
    wanted = money[among(money["job_id"], jobs_with_lines)]
    groups = wanted.merge(groups, on=["job_id", "charge"], how="outer")
    groups = groups.assign(
        quantity=groups["quantity"].fillna(0).astype("int64"),
        at_rate=groups["at_rate"].fillna(0).astype("int64"),
        amount=groups["amount"].fillna(0).astype("int64"),
        rate_part=groups["rate_part"].fillna(0).astype("int64"),
    )
    groups = groups.assign(
        expected_micro=groups["compute_cents"].astype("int64") * MICRO_PER_CENT,
        hours_part=(groups["at_rate"] - groups["compute_cents"].astype("int64")) * MICRO_PER_CENT,
        delta=groups["quantity"] - groups["hour_units"].astype("int64") * ctx.unit_micro_hours,
        capped=groups["capped"].astype(bool) | among(groups["job_id"], capped_jobs),
        job_charges=ctx.jobs["n_charges"].reindex(groups["job_id"]).fillna(0).to_numpy("int64"),
    )
    groups = groups.assign(
        hours_part=groups["hours_part"].where(
            ~groups["capped"], groups["amount"] - groups["rate_part"] - groups["expected_micro"]
        )
    )
    _hours_findings(ctx, groups, per_line[["job_id", "charge", "line"]], findings, causes)
    return findings, causes


def _line_findings(
    ctx: AuditContext, lines: pd.DataFrame, findings: list[Finding], causes: Causes
) -> None:
    policy = ctx.policy
    currency = ctx.currency
    for row in lines[(lines["arithmetic"] != 0) | (lines["rate_part"] != 0)].pipe(rows_of):
        line = int(row.line)
        charge_at = None if pd.isna(row.event_at) else at(int(row.event_at))
        hours = micro_hours_text(int(row.quantity_micro))
        price = Decimal(int(row.unit_price_micro)).scaleb(-6)
        if row.rate_part != 0:
            rate = Decimal(int(row.rate)).scaleb(-ctx.rate_places)
            model = str(ctx.jobs.loc[row.job_id, "model"])
            made = Finding(
                kind="rate_mismatch",
                severity=severity_of(int(row.rate_part)),
                job_id=str(row.job_id),
                invoice_line=line,
                invoice_lines=(line,),
                line_type="compute",
                expected=cents_to_decimal(int(row.at_rate)),
                billed=cents_to_decimal(int(row.computed)),
                charge_at=charge_at,
                explanation=rate_mismatch(
                    line, hours, model, price, policy.name, rate, int(row.rate_part), currency
                ),
                evidence=(
                    Evidence(
                        type="rate",
                        description=(
                            f"policy {policy.name}: {format_amount(rate)} {currency} per "
                            f"billable hour of {resolve_model_family(model)}"
                        ),
                        price=rate,
                        source="; ".join(policy.sources) or policy.name,
                    ),
                    Evidence(
                        type="invoice_line",
                        description=f"line {line}: {hours} at {format_amount(price)}",
                        invoice_line=line,
                        price=price,
                    ),
                ),
            )
            findings.append(made)
            remember_cause(causes, str(row.job_id), int(row.charge), made)
        if row.arithmetic != 0:
            made = arithmetic_finding(
                ctx, row, "compute", f"{hours} × {format_amount(price)} {currency}/h", charge_at
            )
            findings.append(made)
            remember_cause(causes, str(row.job_id), int(row.charge), made)


def _hours_findings(
    ctx: AuditContext,
    groups: pd.DataFrame,
    lines: pd.DataFrame,
    findings: list[Finding],
    causes: Causes,
) -> None:
    """Hours per charge or job: a job whose total only rounding explains gets one finding."""
    if not (groups["hours_part"] != 0).any():
        return
    unit = ctx.unit_micro_hours
    quantity = groups["quantity"]
    last = groups["charge"] == groups.groupby("job_id")["charge"].transform("max")
    groups = groups.assign(
        differing=(groups["hours_part"] != 0).astype("int64"),
        # Each charge between its own exact time rounded down and up (scope "charge"), or
        # every hour on the job's last charge (scope "job", R11).
        in_band=(groups["floor_units"].fillna(0).astype("int64") * unit <= quantity)
        & (quantity <= groups["ceil_units"].fillna(0).astype("int64") * unit),
        on_last=last | (quantity == 0),
        job_hours_part=groups.groupby("job_id")["hours_part"].transform("sum"),
    )
    totals = groups.groupby("job_id").agg(
        quantity=("quantity", "sum"),
        charge_units=("charge_units", "sum"),
        hours_part=("hours_part", "sum"),
        expected=("expected_micro", "sum"),
        differing=("differing", "sum"),
        capped=("capped", "any"),
        billable_ns=("billable_ns", "sum"),
        job_charges=("job_charges", "max"),
        in_band=("in_band", "all"),
        on_last=("on_last", "all"),
    )
    # Only what a different rounding scope explains is rounding (invoice-audit.md): the
    # hours of a job of several charges may lie between its charges rounded one by one and
    # its whole time rounded once (R11, the policy's own rounding mode); a vendor rounding
    # each charge up bills more than either, which is billed time, not rounding. A job of
    # one charge is rounded once under either scope. Compared charge by charge, each
    # charge must lie in its own band (or all hours on the last charge): hours moved from
    # one charge to another are billed at the wrong time, not rounded.
    by_charge = totals["charge_units"].astype("int64")
    once = pd.Series(
        hour_units(totals["billable_ns"].to_numpy(dtype="int64"), ctx.policy),
        index=totals.index,
    )
    totals = totals.assign(once_units=once)
    rounding = (
        (totals["differing"] > 0)
        & (totals["job_charges"] > 1)
        & (totals["in_band"] | totals["on_last"])
        & ~totals["capped"]
        & (np.minimum(by_charge, once) * unit <= totals["quantity"])
        & (totals["quantity"] <= np.maximum(by_charge, once) * unit)
    )
    rounded = totals[rounding & (totals["hours_part"] != 0)]
    job_lines = line_numbers(lines, ["job_id"], rounded.reset_index())
    for job_id, row in rounded.iterrows():
        if int(row["hours_part"]) != 0:
            finding = _job_rounding(ctx, str(job_id), row, job_lines.get((job_id,), ()))
            findings.append(finding)
            for charge in groups.loc[groups["job_id"] == job_id, "charge"]:
                remember_cause(causes, str(job_id), int(charge), finding)
    rest = groups[~among(groups["job_id"], totals.index[rounding]) & (groups["hours_part"] != 0)]
    if rest.empty:
        return
    time = TimeIndex(ctx.bill, set(rest["job_id"]), ctx.code_of)
    charge_lines = line_numbers(lines, ["job_id", "charge"], rest)
    for row in rest.pipe(rows_of):
        numbers = charge_lines.get((row.job_id, row.charge), ())
        finding = _hours_finding(ctx, row, time, numbers)
        findings.append(finding)
        remember_cause(causes, str(row.job_id), int(row.charge), finding)


def _job_rounding(
    ctx: AuditContext, job_id: str, row: pd.Series, lines: tuple[int, ...]
) -> Finding:
    total, expected = int(row["hours_part"]), int(row["expected"])
    policy = ctx.policy
    return Finding(
        kind="rounding",
        severity="info",
        job_id=job_id,
        invoice_line=lines[0] if lines else None,
        invoice_lines=lines,
        line_type="compute",
        expected=micro_to_decimal(expected),
        billed=micro_to_decimal(expected + total),
        explanation=job_rounding(
            job_id,
            int(row["quantity"]),
            int(row["billable_ns"]),
            policy.name,
            ctx.places,
            policy.rounding,
            total,
            ctx.currency,
        ),
        evidence=(
            Evidence(
                type="rounding",
                description=(
                    f"exact billable time {hours_text(int(row['billable_ns']))}; each charge "
                    "rounded on its own: "
                    f"{micro_hours_text(int(row['charge_units']) * ctx.unit_micro_hours)}, the "
                    "job's time rounded once: "
                    f"{micro_hours_text(int(row['once_units']) * ctx.unit_micro_hours)}"
                ),
                seconds=int(row["billable_ns"]) / 1e9,
            ),
        ),
    )


def _hours_finding(ctx: AuditContext, row: Any, time: TimeIndex, lines: tuple[int, ...]) -> Finding:
    job_id, charge = str(row.job_id), int(row.charge)
    hours_part = int(row.hours_part)
    expected = int(row.expected_micro)
    unit = ctx.unit_micro_hours
    billed_hours = int(row.quantity)
    expected_hours = int(row.hour_units) * unit
    delta = int(row.delta)
    window = (int(row.segment_start), int(row.at))
    scope = f"charge at {clock(int(row.at))} UTC" if charge >= 0 else "job"
    currency = ctx.currency
    base: dict[str, Any] = {
        "job_id": job_id,
        "invoice_line": lines[0] if lines else None,
        "invoice_lines": lines,
        "line_type": "compute",
        "expected": micro_to_decimal(expected),
        "billed": micro_to_decimal(expected + hours_part),
        "charge_at": at(int(row.at)) if charge >= 0 else None,
    }
    policy = ctx.policy
    if bool(row.capped):
        cap = policy.cap.per_job_amount
        kind: FindingKind = "overbilled_time" if hours_part > 0 else "underbilled_time"
        return Finding(
            kind=kind,
            severity=severity_of(hours_part),
            explanation=beyond_cap(job_id, policy.name, cap, hours_part, currency),
            evidence=(
                Evidence(type="cap", description=f"compute capped at {cap} per job", price=cap),
            ),
            **base,
        )
    # A charge's own hours differ only by a rounding scope when its job's total does
    # (checked before): here only the amount can, line by line.
    if delta == 0:
        why = "the hours agree; the amount differs by the rounding of each line"
        return Finding(
            kind="rounding",
            severity="info",
            explanation=hours_rounding(
                billed_hours,
                job_id,
                scope,
                expected_hours,
                int(row.billable_ns),
                why,
                hours_part,
                currency,
            ),
            evidence=(
                Evidence(
                    type="rounding",
                    description=(
                        f"exact billable time {hours_text(int(row.billable_ns))}, billed "
                        f"{micro_hours_text(billed_hours)}; policy {policy.name} rounds to "
                        f"{ctx.places} decimals ({policy.rounding.hours_mode}, scope "
                        f"{policy.rounding.scope})"
                    ),
                    seconds=int(row.billable_ns) / 1e9,
                ),
            ),
            **base,
        )
    steps = int(row.n) if policy.rounding.scope == "charge" else 1
    tolerance_ns = max(steps, 1) * ctx.unit_ns
    delta_ns = delta * NS_PER_MICRO_HOUR
    code = ctx.code(job_id)
    mode_name = str(policy.rounding.hours_mode.value).replace("_", " ")
    moved = (
        "; the job's total hours agree with the logs: these hours appear billed on another "
        "of its charges"
        if charge >= 0 and int(row.job_hours_part) == 0
        else ""
    )
    if delta > 0:
        # A stretch of time explains the hours when billing it too gives them: the exact
        # billable time plus the stretch lies within one rounding step (R11) per charge of
        # the hours billed. Measured from the rounded hours instead, a stretch far shorter
        # than the excess (5 s of queue beside 0.01 h too many) would pass for its cause.
        beyond_exact_ns = billed_hours * NS_PER_MICRO_HOUR - int(row.billable_ns)
        candidates = time.over_candidates(code, charge, window)
        matches = sorted(
            (c for c in candidates if abs(beyond_exact_ns - c.ns) < tolerance_ns),
            key=lambda c: (abs(delta_ns - c.ns), c.specificity),
        )
        if matches:
            return _explained(ctx, matches, hours_part, job_id, scope, base)
        if int(row.job_charges) == 0:
            # A running (or never charged) job: its time is accrued, not charged (R8).
            unbilled = ctx.jobs["unbilled_ns"].fillna(0).astype("int64")
            explanation = not_charged_yet(
                billed_hours,
                job_id,
                str(ctx.jobs.loc[job_id, "status"]),
                int(unbilled[job_id]),
                hours_part,
                currency,
            )
        else:
            explanation = overbilled_time(
                delta,
                expected_hours,
                job_id,
                scope,
                window,
                hours_part,
                currency,
                exact=(int(row.billable_ns), mode_name),
                note=moved,
            )
        return Finding(
            kind="overbilled_time",
            severity=severity_of(hours_part),
            explanation=explanation,
            evidence=(
                Evidence(
                    type="billable_time",
                    description=f"{hours_text(int(row.billable_ns))} billable {span(*window)}",
                    start=at(window[0]),
                    end=at(window[1]),
                    seconds=int(row.billable_ns) / 1e9,
                ),
            ),
            **base,
        )
    phases = time.billable_phases(code, window)
    fits = [c for c in phases if abs(-delta_ns - c.ns) < tolerance_ns]
    hint = f"; it matches the {fits[0].text}, as if that phase were not billed" if fits else ""
    hint = moved or hint
    return Finding(
        kind="underbilled_time",
        severity=severity_of(hours_part),
        explanation=underbilled_time(
            delta,
            expected_hours,
            job_id,
            scope,
            hours_part,
            hint,
            currency,
            exact=(int(row.billable_ns), mode_name),
        ),
        evidence=tuple(e for c in fits for e in c.evidence),
        **base,
    )


def _explained(
    ctx: AuditContext,
    matches: list[Candidate],
    hours_part: int,
    job_id: str,
    scope: str,
    base: dict[str, Any],
) -> Finding:
    """The closest stretch of time explains the hours; others that fit are named too."""
    primary = matches[0]
    kinds = [primary.kind, *primary.also]
    others: list[Candidate] = []
    for candidate in matches[1:]:
        if candidate.kind not in kinds:
            kinds.append(candidate.kind)
            others.append(candidate)
    same = [c for c in matches[1:] if c.kind == primary.kind][:2]
    evidence = [*primary.evidence]
    for c in [*same, *others]:
        evidence.extend(c.evidence)
    return Finding(
        kind=primary.kind,
        severity=severity_of(hours_part),
        explanation=explained_time(
            primary.kind,
            primary.text,
            job_id,
            scope,
            hours_part,
            [c.text for c in same],
            [c.text for c in others],
            ctx.currency,
        ),
        evidence=tuple(evidence),
        also=tuple(k for k in kinds[1:]),
        **base,
    )
