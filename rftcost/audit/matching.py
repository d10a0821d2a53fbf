"""Invoice lines to the logs' jobs and charges, and what the logs expect of them.

The first steps of a job-basis audit: the invoice's ``total`` lines checked against
its lines; lines that cannot be read (``unreadable_line``); lines for jobs with no events
(``unknown_job``) or unreadable logs (``invalid_job``); jobs with charges and no line
(``unbilled_job``); each line with a ``charge_at`` matched to the nearest billing event
of its job (a job is compared charge by charge only when every line of it matches);
what the logs expect per job or charge (``Expected``); and copies of lines that are
``duplicate_line``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rftcost.audit.context import AuditContext
from rftcost.audit.frames import among, rows_of
from rftcost.audit.model import Evidence, Finding, micro_to_decimal, severity_of
from rftcost.audit.pricing import (
    MICRO_PER_CENT,
    hour_unit_bounds,
    pico_to_micro,
    priced_tokens,
)
from rftcost.audit.wording import (
    at,
    clock,
    duplicate_line,
    duplicate_unchecked_line,
    duration_text,
    invalid_job,
    money_text,
    total_mismatch,
    unbilled_job,
    unknown_job,
    unreadable_line,
)
from rftcost.invoice import LINE_TYPES
from rftcost.rules import hour_units, price_family

__all__ = [
    "DUPLICATE_COLUMNS",
    "Expected",
    "Totals",
    "duplicate_lines",
    "duplicate_unchecked_lines",
    "expected_amounts",
    "invalid_job_findings",
    "match_charges",
    "total_line_findings",
    "typed_families",
    "unbilled_job_findings",
    "unknown_job_findings",
    "unmatched_charge_notes",
    "unmatched_lines",
    "unreadable_jobs",
    "unreadable_line_findings",
]

DUPLICATE_COLUMNS = [
    "job_id",
    "line_type",
    "charge_at",
    "grader_family",
    "token_type",
    "quantity_micro",
    "unit_price_micro",
    "amount_micro",
]
"""Lines equal in all of these are copies of one another."""

_NOTES_SHOWN = 20
"""Lines named one by one in the notes; the rest are counted with their money."""

_MONEY_COLUMNS = [
    "job_id",
    "charge",
    "hour_units",
    "compute_cents",
    "discount_cents",
    "grader_cents",
    "billable_ns",
    "floor_units",
    "ceil_units",
    "charge_units",
    "capped",
    "segment_start",
    "at",
    "n",
]


class Expected(NamedTuple):
    """What the logs expect for the jobs with lines, per charge (charge ≥ 0) or job (-1)."""

    money: pd.DataFrame
    """Hours, compute, discount and grader cents, exact time and its rounding bounds."""
    family: pd.DataFrame
    """Grader cents and tokens per grader model family."""
    tokens: pd.DataFrame
    """Priced tokens per token type and price entry (``priced_tokens``), for typed lines."""


# --- invoice-wide checks ---------------------------------------------------------------------


class Totals(NamedTuple):
    """The invoice's own totals (``total_line_findings``)."""

    findings: list[Finding]
    """``arithmetic_error`` of each total line its lines do not add up to."""
    invoice_micro: int
    """The invoice total: each invoice's stated total where it has one, what its lines add
    up to where it has none."""
    stated_gap_micro: int
    """What to count as billed beyond the lines: the stated totals' gaps to them."""
    known: bool
    """Whether the invoice total is whole: False when a line's amount cannot be read and
    no total line states its invoice's total."""


def _invoice_ids(ids: pd.Series, only: str | None) -> pd.Series:
    """Each line's invoice id; a line without one is the invoice's when the file names one
    invoice only (its total line covers it)."""
    named = ids.fillna("").astype(str)
    return named.where(named != "", only) if only is not None else named


def total_line_findings(ctx: AuditContext, lines: pd.DataFrame) -> Totals:
    """``total`` lines against the lines they state the total of (those of their invoice
    id; a total without an id states the whole file's)."""
    totals = lines[lines["line_type"] == "total"]
    charges = lines[lines["line_type"] != "total"]
    # A line set aside as unreadable is still on the invoice: its amount as written (where
    # that much can be read) is part of what the invoice adds up to.
    rejected = ctx.invoice.rejected
    set_aside = rejected[
        rejected["amount_micro"].notna() & (rejected["line_type"].fillna("") != "total")
    ]
    unread = rejected[rejected["amount_micro"].isna()]
    invoice_micro = int(charges["amount_micro"].sum()) + int(
        set_aside["amount_micro"].astype("int64").sum()
    )
    findings: list[Finding] = []
    if totals.empty:
        return Totals(findings, invoice_micro, 0, unread.empty)
    named = {
        str(i)
        for frame in (totals, charges, rejected)
        for i in frame["invoice_id"].dropna().unique()
        if str(i)
    }
    only = next(iter(named)) if len(named) == 1 else None
    charge_ids = _invoice_ids(charges["invoice_id"], only)
    aside_ids = _invoice_ids(set_aside["invoice_id"], only)
    unread_ids = _invoice_ids(unread["invoice_id"], only)
    total_ids = _invoice_ids(totals["invoice_id"], only)
    gap = 0
    unknown_gap = 0
    for invoice_id, group in totals.groupby(total_ids, sort=True):
        whole_file = not invoice_id
        added = int(
            charges.loc[whole_file | (charge_ids == invoice_id), "amount_micro"].sum()
        ) + int(
            set_aside.loc[whole_file | (aside_ids == invoice_id), "amount_micro"]
            .astype("int64")
            .sum()
        )
        own = charges[whole_file | (charge_ids == invoice_id)]
        said = _stated_total(group, added, own["source_line"])
        gap += said - added
        # A line of this invoice whose amount cannot be read: what its lines add up to is
        # unknown, so the stated total is not checked against them (no arithmetic error),
        # and the gap (that line's amount, unknown) is not counted as billed either.
        if (whole_file | (unread_ids == invoice_id)).any():
            unknown_gap += said - added
        elif said != added:
            # The line of the total checked first (the grand total of several), then the others.
            stating = group["amount_micro"].astype("int64").to_numpy() == said
            numbers = [int(n) for n in group["line"].to_numpy()[stating][::-1]]
            numbers += [int(n) for n in group["line"].to_numpy()[~stating]]
            findings.append(
                Finding(
                    kind="arithmetic_error",
                    severity=severity_of(said - added),
                    job_id=None,
                    invoice_line=numbers[0],
                    invoice_lines=tuple(numbers),
                    line_type="total",
                    expected=micro_to_decimal(added),
                    billed=micro_to_decimal(said),
                    explanation=total_mismatch(said, added, ctx.currency),
                    evidence=tuple(
                        Evidence(type="invoice_line", description=f"total line {n}", invoice_line=n)
                        for n in numbers
                    ),
                )
            )
    stated = set(total_ids)
    known = "" in stated or bool(unread_ids.isin(stated).all())
    # What is charged is each stated total, and the lines of an invoice without one; the
    # gap of a stated total to its lines (those set aside included) counts as billed (and
    # is a finding).
    return Totals(findings, invoice_micro + gap, gap - unknown_gap, known)


def _stated_total(group: pd.DataFrame, added: int, charge_lines: pd.Series) -> int:
    """The total an invoice's ``total`` lines state. One line: its amount. Several: page
    totals when they add up to the lines, or when lines of the invoice come between them
    (their sum, so that a wrong page is the error it is); else totals at the foot (a
    subtotal, then the total; or the total written twice): the last one, the grand total.
    Adding up a subtotal and a total made an amount no line states."""
    ordered = group.sort_values("source_line", kind="stable")
    amounts = ordered["amount_micro"].astype("int64")
    if len(amounts) == 1:
        return int(amounts.iloc[0])
    together = int(amounts.sum())
    first, last = int(ordered["source_line"].iloc[0]), int(ordered["source_line"].iloc[-1])
    between = bool(((charge_lines > first) & (charge_lines < last)).any())
    if together == added or between:
        return together
    return int(amounts.iloc[-1])


def unknown_job_findings(ctx: AuditContext, lines: pd.DataFrame) -> list[Finding]:
    """A finding per line for a job with no events in the logs."""
    n_jobs = len(ctx.jobs)
    findings = []
    for row in lines.pipe(rows_of):
        amount = int(row.amount_micro)
        line = int(row.line)
        described = row.description if isinstance(row.description, str) else row.line_type
        findings.append(
            Finding(
                kind="unknown_job",
                severity=severity_of(amount),
                job_id=str(row.job_id),
                invoice_line=line,
                invoice_lines=(line,),
                line_type=str(row.line_type),
                expected=micro_to_decimal(0),
                billed=micro_to_decimal(amount),
                explanation=unknown_job(
                    line, amount, str(row.line_type), str(row.job_id), n_jobs, ctx.currency
                ),
                evidence=(
                    Evidence(
                        type="invoice_line",
                        description=f"line {line}: {described}",
                        invoice_line=line,
                    ),
                ),
            )
        )
    return findings


def unreadable_jobs(ctx: AuditContext) -> list[str]:
    """Jobs named by a line that cannot be read: their other lines are not checked, for
    a job compared without one of its lines would show a difference that is not there."""
    named = ctx.invoice.rejected["job_id"].dropna()
    return sorted({str(j) for j in named})


def unreadable_line_findings(ctx: AuditContext, held: pd.DataFrame) -> list[Finding]:
    """A finding (error) per line of the invoice that cannot be read: its money is unknown.

    ``held``: the readable lines of those lines' jobs, not checked (named in the finding)."""
    rejected = ctx.invoice.rejected
    findings: list[Finding] = []
    if rejected.empty:
        return findings
    per_job = held.groupby(held["job_id"].astype(object), sort=False)["amount_micro"]
    counts, amounts = per_job.size().to_dict(), per_job.sum().to_dict()
    name = Path(ctx.invoice.source).name
    for row in rejected.pipe(rows_of):
        line = int(row.line)
        job_id = None if row.job_id is pd.NA else str(row.job_id)
        amount = None if row.amount_micro is pd.NA else int(row.amount_micro)
        value = None if row.value is pd.NA else str(row.value)
        where = f"{ctx.invoice.source}:{int(row.source_line)}"
        findings.append(
            Finding(
                kind="unreadable_line",
                severity="error",
                job_id=job_id,
                invoice_line=line,
                invoice_lines=(line,),
                line_type=row.line_type
                if isinstance(row.line_type, str) and row.line_type in LINE_TYPES
                else None,
                expected=None,
                billed=None if amount is None else micro_to_decimal(amount),
                explanation=unreadable_line(
                    f"{line} ({name}:{int(row.source_line)})",
                    str(row.column),
                    value,
                    str(row.reason),
                    amount,
                    job_id,
                    (int(counts.get(job_id, 0)), int(amounts.get(job_id, 0))),
                    ctx.currency,
                ),
                evidence=(
                    Evidence(
                        type="invoice_line",
                        description=f"{where}, column {row.column!s}: "
                        + ("empty" if value is None else repr(value))
                        + f": {row.reason!s}",
                        invoice_line=line,
                    ),
                ),
            )
        )
    return findings


def invalid_job_findings(ctx: AuditContext, lines: pd.DataFrame) -> list[Finding]:
    """A finding per job whose logs cannot be reconstructed: its lines are unchecked.

    An error: money the logs can neither confirm nor dispute must not pass an audit that
    gates a pipeline (invoice-audit.md leaves the severity open; exit 1 as for an
    ``unreadable_line``, whose money is unknown too)."""
    findings: list[Finding] = []
    if lines.empty:
        return findings
    problems = ctx.bill.problems.astype({"job_id": object})
    for job_id, group in lines.groupby("job_id", sort=True):
        reasons = [str(p) for p in problems.loc[problems["job_id"] == job_id, "problem"]]
        amount = int(group["amount_micro"].sum())
        numbers = tuple(int(n) for n in group["line"])
        findings.append(
            Finding(
                kind="invalid_job",
                severity="error",
                job_id=str(job_id),
                invoice_line=numbers[0],
                invoice_lines=numbers,
                line_type=None,
                expected=None,
                billed=micro_to_decimal(amount),
                explanation=invalid_job(str(job_id), reasons, len(numbers), amount, ctx.currency),
                evidence=tuple(Evidence(type="problem", description=r) for r in reasons),
            )
        )
    return findings


def unbilled_job_findings(
    ctx: AuditContext, valid: pd.DataFrame, billed_jobs: set[str]
) -> list[Finding]:
    """A finding per valid job with charges and no line on the invoice."""
    missing = valid[
        ~among(valid.index, list(billed_jobs)) & (valid["total_cents"].astype("int64") != 0)
    ]
    findings = []
    for job_id, row in missing.iterrows():
        total = int(row["total_cents"]) * MICRO_PER_CENT
        n = int(row["n_charges"])
        findings.append(
            Finding(
                kind="unbilled_job",
                severity="warning",
                job_id=str(job_id),
                invoice_line=None,
                line_type=None,
                expected=micro_to_decimal(total),
                billed=micro_to_decimal(0),
                explanation=unbilled_job(str(job_id), str(row["status"]), n, total, ctx.currency),
                evidence=(
                    Evidence(
                        type="billing_event",
                        description=f"{n} billing event(s), last {ctx.last_event(str(job_id))}",
                        job_id=str(job_id),
                    ),
                ),
            )
        )
    return findings


# --- matching ----------------------------------------------------------------------------------


def match_charges(ctx: AuditContext, g: pd.DataFrame) -> pd.DataFrame:
    """Each line's charge (-1: its job is compared as a whole) and billing event time."""
    with_at = g[g["charge_at"].notna()]
    matched = pd.Series(np.nan, index=g.index)
    matched_at = pd.Series(pd.NA, index=g.index, dtype="Int64")
    if not with_at.empty and not ctx.bill.charges.empty:
        found = _nearest_billing_events(ctx, with_at, "charge", tolerance=ctx.window_ns)
        matched = found["charge"].reindex(g.index)
        matched_at = found["event_at"].reindex(g.index)
    every = matched.notna().groupby(g["job_id"]).transform("all")
    return g.assign(
        charge=matched.where(every, -1).astype("int64"),
        event_at=matched_at.where(every),
    )


def _nearest_billing_events(
    ctx: AuditContext, lines: pd.DataFrame, column: str, *, tolerance: int | None = None
) -> pd.DataFrame:
    """Each line's nearest billing event of its job by ``charge_at`` (``t``), its time
    (``event_at``) and its ``column``, indexed by line (none within ``tolerance``: NA)."""
    charges = ctx.bill.charges[["job_id", column, "at"]].astype({"job_id": object})
    left = pd.DataFrame(
        {
            "pos": lines.index,
            "job_id": pd.Series(lines["job_id"].astype(str).to_numpy(), dtype=object),
            "t": lines["charge_at"].astype("int64").to_numpy(),
        }
    ).sort_values("t", kind="stable")
    right = charges.rename(columns={"at": "event_at"}).sort_values("event_at", kind="stable")
    right = right.assign(event_row=np.arange(len(right)))
    merged = pd.merge_asof(
        left,
        right,
        left_on="t",
        right_on="event_at",
        by="job_id",
        direction="nearest",
        tolerance=tolerance,
    ).set_index("pos")
    # A line without a billing event makes the joined times floats, nanoseconds past
    # 2**53 rounded: the times are taken again, exactly, by the event's row.
    rows = merged["event_row"]
    matched = rows.notna().to_numpy()
    event_at = pd.Series(pd.NA, index=merged.index, dtype="Int64")
    event_at[matched] = right["event_at"].to_numpy(dtype="int64")[rows[matched].astype("int64")]
    return merged.assign(event_at=event_at).drop(columns="event_row")


def unmatched_lines(ctx: AuditContext, g: pd.DataFrame) -> pd.DataFrame:
    """The lines whose ``charge_at`` matches no billing event of their job within the
    window, with their nearest billing event (``event``, ``event_at``; NA: the job has
    none), indexed by line: ``unmatched_charge_notes`` says them."""
    columns = ["job_id", "t", "event", "event_at", "line", "line_type", "amount_micro"]
    with_at = g[g["charge_at"].notna()]
    if with_at.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    nearest = _nearest_billing_events(ctx, with_at, "event")
    gap = (nearest["t"] - nearest["event_at"]).abs()
    far = nearest[(nearest["event_at"].isna() | (gap > ctx.window_ns)).fillna(True).astype(bool)]
    return far.assign(
        line=g.loc[far.index, "line"].to_numpy(),
        line_type=g.loc[far.index, "line_type"].to_numpy(),
        amount_micro=g.loc[far.index, "amount_micro"].to_numpy(),
    )[columns]


def unmatched_charge_notes(ctx: AuditContext, far: pd.DataFrame) -> list[str]:
    """A note per line whose ``charge_at`` matches no billing event of its job within the
    window (``unmatched_lines``, in invoice order): its job is compared on its totals
    instead (invoice-audit.md), which a charge billed a day or a month away would
    otherwise pass unsaid."""
    if far.empty:
        return []
    far = far.sort_index()
    notes: list[str] = []
    window = f"{ctx.window_ns // 10**9 // 60} min"
    for row in far.head(_NOTES_SHOWN).pipe(rows_of):
        amount = money_text(int(row.amount_micro), ctx.currency)
        if pd.isna(row.event_at):
            where = "the job has no billing event"
        else:
            event_at, t = int(row.event_at), int(row.t)
            where = (
                f"its nearest billing event is {row.event} at {clock(event_at)} UTC, "
                f"{duration_text(abs(t - event_at))} {'before' if event_at < t else 'after'}"
            )
        notes.append(
            f"Line {int(row.line)} ({row.job_id}, {row.line_type}, {amount}) has "
            f"charge_at {clock(int(row.t))} UTC, which matches no billing event of the job "
            f"within {window} ({where}); the job's lines were compared to its totals, not "
            "charge by charge."
        )
    if len(far) > _NOTES_SHOWN:
        rest = int(far["amount_micro"].iloc[_NOTES_SHOWN:].astype("int64").sum())
        notes.append(
            f"… and {len(far) - _NOTES_SHOWN} more line(s) ({money_text(rest, ctx.currency)}) "
            f"whose charge_at matches no billing event within {window}."
        )
    return notes


def typed_families(g: pd.DataFrame) -> pd.Series:
    """A (job, charge, grader family) is compared by token type when every line has one."""
    grader = g["line_type"] == "grader_tokens"
    has_type = (g["token_type"] != "") | ~grader
    keys = [g["job_id"], g["charge"], g["grader_family"].fillna("")]
    typed: pd.Series = grader & has_type.groupby(keys).transform("all")
    return typed


# --- what the logs expect ----------------------------------------------------------------------


def expected_amounts(ctx: AuditContext, job_ids: set[str], g: pd.DataFrame) -> Expected:
    """What the logs expect for ``job_ids``: per charge for jobs matched charge by charge,
    per job otherwise (every job with lines gets a row, even one without a charge)."""
    bill = ctx.bill
    per_charge_jobs = set(g.loc[g["charge"] >= 0, "job_id"])
    wanted = list(job_ids)
    charges = bill.charges.astype({"job_id": object})
    charges = charges[among(charges["job_id"], wanted)]
    floor, ceil = hour_unit_bounds(charges["billable_ns"].to_numpy(dtype="int64"), ctx.unit_ns)
    # Each charge rounded on its own (scope "charge"), whatever the policy's scope: with
    # the job's whole time rounded once, the two figures a rounding scope can give (R11).
    charge_units = hour_units(charges["billable_ns"].to_numpy(dtype="int64"), ctx.policy)
    charges = charges.assign(floor_units=floor, ceil_units=ceil, charge_units=charge_units, n=1)
    timeline_jobs = bill.timeline.jobs.set_index(bill.timeline.jobs["job_id"].astype(str))
    first_ns = timeline_jobs["first_ns"]
    by_job = charges.groupby("job_id", as_index=False).agg(
        hour_units=("hour_units", "sum"),
        compute_cents=("compute_cents", "sum"),
        discount_cents=("discount_cents", "sum"),
        grader_cents=("grader_cents", "sum"),
        billable_ns=("billable_ns", "sum"),
        floor_units=("floor_units", "sum"),
        ceil_units=("ceil_units", "sum"),
        charge_units=("charge_units", "sum"),
        capped=("capped", "any"),
        at=("at", "max"),
        n=("n", "sum"),
    )
    # Every job with lines gets a row, even one without a billing event (expected 0).
    by_job = by_job.set_index("job_id").reindex(sorted(job_ids)).reset_index()
    last_ns = timeline_jobs["last_ns"]
    no_charge = by_job["n"].isna()
    by_job = by_job.assign(
        at=by_job["at"].where(~no_charge, last_ns.reindex(by_job["job_id"]).to_numpy()),
        capped=by_job["capped"].fillna(False).astype(bool),
    ).fillna(0)
    by_job = by_job.astype(
        {c: "int64" for c in by_job.columns if c not in ("job_id", "capped")}
    ).assign(charge=-1, segment_start=first_ns.reindex(by_job["job_id"]).to_numpy(dtype="int64"))
    per = among(charges["job_id"], per_charge_jobs)
    whole = ~among(by_job["job_id"], per_charge_jobs)
    money = pd.concat(
        [charges.loc[per, _MONEY_COLUMNS], by_job.loc[whole, _MONEY_COLUMNS]], ignore_index=True
    ).astype({"job_id": object})

    lines = bill.grader_lines[bill.grader_lines["charge"] >= 0].astype({"job_id": object})
    lines = lines[among(lines["job_id"], wanted)]
    lines = lines.assign(
        grader_family=price_family(
            lines["grader_model"].astype(str), ctx.policy.price_table.models
        ).astype(object),
        charge=lines["charge"].where(among(lines["job_id"], per_charge_jobs), -1),
        n=1,
    )
    family = (
        lines.assign(tokens=lines["input_tokens"] + lines["output_tokens"])
        .groupby(["job_id", "charge", "grader_family"], as_index=False)
        .agg(amount_cents=("amount_cents", "sum"), n=("n", "sum"), tokens=("tokens", "sum"))
    )
    typed_keys = g.loc[g["typed"], ["job_id", "grader_family"]].drop_duplicates()
    typed_jobs = set(typed_keys["job_id"])
    tokens = priced_tokens(bill, bill.grader_lines[among(bill.grader_lines["job_id"], typed_jobs)])
    if not tokens.empty:
        tokens = tokens.assign(
            charge=tokens["charge"].where(among(tokens["job_id"], per_charge_jobs), -1)
        )
    return Expected(money=money, family=family, tokens=tokens)


# --- duplicates ----------------------------------------------------------------------------------


_UNCHECKED_DUPLICATE_COLUMNS = [
    "invoice_id",
    "job_id",
    "line_type",
    "description",
    "charge_at",
    "quantity_micro",
    "unit_price_micro",
    "amount_micro",
]
"""Lines the logs do not bill (tax, credits, adjustments, other costs) equal in all of
these are copies: within one invoice and with the same description (two invoices each
carry their own tax)."""


def _copy_evidence(first: int | None, line: int) -> tuple[Evidence, Evidence]:
    """The evidence of a ``duplicate_line``: the original line and its copy."""
    return (
        Evidence(
            type="invoice_line", description=f"line {first}: the original", invoice_line=first
        ),
        Evidence(type="invoice_line", description=f"line {line}: the copy", invoice_line=line),
    )


def duplicate_unchecked_lines(ctx: AuditContext, lines: pd.DataFrame) -> list[Finding]:
    """A ``duplicate_line`` warning per copy of a line the logs do not bill: its money is
    unchecked (in no difference), so whether it is billed twice is the vendor's to say."""
    columns = [c for c in _UNCHECKED_DUPLICATE_COLUMNS if c in lines.columns]
    keyed = lines[columns].astype("string").fillna("")
    copies = keyed.duplicated(keep="first")
    if not copies.any():
        return []
    first_line = (
        lines.assign(_key=pd.util.hash_pandas_object(keyed, index=False))
        .groupby("_key", sort=False)["line"]
        .transform("first")
    )
    findings = []
    for index in copies[copies].index:
        row = lines.loc[index]
        line, first = int(row["line"]), int(first_line[index])
        amount = int(row["amount_micro"])
        description = row["description"] if isinstance(row["description"], str) else ""
        findings.append(
            Finding(
                kind="duplicate_line",
                severity="warning",
                job_id=None if pd.isna(row["job_id"]) else str(row["job_id"]),
                invoice_line=line,
                invoice_lines=(line, first),
                line_type=str(row["line_type"]),
                expected=None,
                billed=micro_to_decimal(amount),
                explanation=duplicate_unchecked_line(
                    line, first, str(row["line_type"]), amount, ctx.currency, description
                ),
                evidence=_copy_evidence(first, line),
            )
        )
    return findings


def duplicate_lines(
    ctx: AuditContext, g: pd.DataFrame, expected: Expected
) -> tuple[pd.DataFrame, list[Finding]]:
    """Copies of lines whose removal brings their group closer to the logs: the lines
    without them, and a ``duplicate_line`` finding per copy (two identical charges of a
    paused job are not duplicates)."""
    findings: list[Finding] = []
    copies = g.duplicated(subset=DUPLICATE_COLUMNS, keep="first")
    if not copies.any():
        return g, findings
    real = pd.Series(False, index=g.index)
    group_keys = ["job_id", "charge", "line_type", "grader_family", "token_type"]
    keyed = g.assign(grader_family=g["grader_family"].fillna(""), copy=copies)
    with_copies = keyed[copies][group_keys].drop_duplicates()
    for key in with_copies.pipe(rows_of):
        members = keyed[
            (keyed["job_id"] == key.job_id)
            & (keyed["charge"] == key.charge)
            & (keyed["line_type"] == key.line_type)
            & (keyed["grader_family"] == key.grader_family)
            & (keyed["token_type"] == key.token_type)
        ]
        target = _expected_amount(ctx, key, expected)
        all_lines = int(members["amount_micro"].sum())
        without = int(members.loc[~members["copy"], "amount_micro"].sum())
        if abs(without - target) < abs(all_lines - target):
            real[members.index[members["copy"].to_numpy()]] = True
    for index in real[real].index:
        row = g.loc[index]
        original = g[
            (g[DUPLICATE_COLUMNS].fillna(-1) == row[DUPLICATE_COLUMNS].fillna(-1)).all(axis=1)
            & ~real
        ]
        first = int(original["line"].iloc[0]) if len(original) else None
        amount = int(row["amount_micro"])
        line = int(row["line"])
        findings.append(
            Finding(
                kind="duplicate_line",
                severity=severity_of(amount),
                job_id=str(row["job_id"]),
                invoice_line=line,
                invoice_lines=(line,) if first is None else (line, first),
                line_type=str(row["line_type"]),
                expected=micro_to_decimal(0),
                billed=micro_to_decimal(amount),
                charge_at=None if pd.isna(row["event_at"]) else at(int(row["event_at"])),
                explanation=duplicate_line(
                    line,
                    first,
                    str(row["line_type"]),
                    amount,
                    str(row["job_id"]),
                    ctx.currency,
                    invoices=(
                        str(row["invoice_id"]),
                        str(original["invoice_id"].iloc[0]) if len(original) else "",
                    ),
                    file_lines=(int(row["source_line"]), int(original["source_line"].iloc[0]))
                    if len(original)
                    else None,
                ),
                evidence=_copy_evidence(first, line),
            )
        )
    return g[~real], findings


def _expected_amount(ctx: AuditContext, key: Any, expected: Expected) -> int:
    """What the logs expect of one group of lines (job, charge, line type, family, type)."""
    money = expected.money
    row = money[(money["job_id"] == key.job_id) & (money["charge"] == key.charge)]
    if key.line_type == "compute":
        return int(row["compute_cents"].sum()) * MICRO_PER_CENT
    if key.line_type == "data_sharing_discount":
        return -int(row["discount_cents"].sum()) * MICRO_PER_CENT
    if key.token_type:
        tokens = expected.tokens
        if tokens.empty:
            return 0
        part = tokens[
            (tokens["job_id"] == key.job_id)
            & (tokens["charge"] == key.charge)
            & (tokens["grader_family"] == key.grader_family)
            & (tokens["token_type"] == key.token_type)
        ]
        return pico_to_micro(sum(int(p) for p in part["pico"]), ctx.policy)
    family = expected.family
    part = family[
        (family["job_id"] == key.job_id)
        & (family["charge"] == key.charge)
        & (family["grader_family"] == key.grader_family)
    ]
    return int(part["amount_cents"].sum()) * MICRO_PER_CENT
