"""Grader findings: grader token lines against the tokens and prices in the logs (R9, R10, R13).

Lines without token types are compared by amount per job or charge and grader
family, and a difference is traced to lost work, tokens billed twice, an earlier
price entry, or the invoice's own token count. Lines with token types are checked
one by one (``arithmetic_error``, ``grader_price_mismatch``: a price not in force on
the usage date), then per type (``grader_tokens_mismatch``), and what is left per
family is ``rounding`` (lines rounded one by one where the bill rounds their sum).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rftcost.audit.compute import arithmetic_finding
from rftcost.audit.context import AuditContext
from rftcost.audit.evidence import UsageIndex
from rftcost.audit.frames import among, as_int, exact_sums, line_numbers, rows_of
from rftcost.audit.matching import Expected
from rftcost.audit.model import (
    Evidence,
    Finding,
    FindingKind,
    Severity,
    micro_to_decimal,
    severity_of,
)
from rftcost.audit.pricing import (
    MICRO,
    MICRO_PER_CENT,
    PICO_PER_CENT,
    cents_of_pico,
    rounded,
    rounding_allowance,
)
from rftcost.audit.wording import (
    at,
    beyond_cap,
    clock,
    count_not_price,
    earlier_price_billed,
    grader_causes,
    grader_rounding,
    grader_unexplained,
    lost_tokens_billed,
    no_grader_line,
    no_grader_usage,
    price_not_count,
    price_text,
    token_count_mismatch,
    token_price_mismatch,
    tokens_billed_twice,
    typed_rounding,
    typed_unexplained,
)
from rftcost.money import cents_to_decimal, divide_round

__all__ = ["grader_findings"]

_FAMILY_KEYS = ["job_id", "charge", "grader_family"]
_TYPE_KEYS = ["job_id", "charge", "grader_family", "token_type"]


def grader_findings(ctx: AuditContext, g: pd.DataFrame, expected: Expected) -> list[Finding]:
    """Grader lines without token types by amount, then lines with token types by type."""
    findings: list[Finding] = []
    lines = g[g["line_type"] == "grader_tokens"]
    family = expected.family
    typed = lines[lines["typed"]]
    untyped = lines[~lines["typed"]]
    typed_keys = typed[_FAMILY_KEYS].drop_duplicates()
    # Untyped (and expected families with no line): amounts only.
    # The lines' own token count (quantity), when every line of the group gives one.
    billed = (
        untyped.assign(
            _q=untyped["quantity_micro"].fillna(0).astype("int64") // MICRO,
            _q_missing=untyped["quantity_micro"].isna(),
            _rounded=rounded(untyped["amount_micro"]),
        )
        .groupby(_FAMILY_KEYS, as_index=False)
        .agg(
            billed=("amount_micro", "sum"),
            billed_q=("_q", "sum"),
            q_missing=("_q_missing", "any"),
            rounded=("_rounded", "sum"),
        )
    )
    wanted = family[among(family["job_id"], set(g["job_id"]))]
    wanted = wanted.merge(typed_keys.assign(_typed=True), on=_FAMILY_KEYS, how="left")
    wanted = wanted[wanted["_typed"].isna()].drop(columns="_typed")
    groups = wanted.merge(billed, on=_FAMILY_KEYS, how="outer")
    groups = groups.assign(
        billed=groups["billed"].fillna(0).astype("int64"),
        expected=groups["amount_cents"].fillna(0).astype("int64") * MICRO_PER_CENT,
        n=groups["n"].fillna(1).astype("int64"),
        tokens=groups["tokens"].fillna(0).astype("int64"),
        billed_q=groups["billed_q"].fillna(0).astype("int64"),
        q_missing=groups["q_missing"].astype("boolean").fillna(True).astype(bool),
        rounded=groups["rounded"].fillna(0).astype("int64"),
    )
    differing = groups[groups["billed"] != groups["expected"]]
    if not differing.empty:
        usage = UsageIndex(ctx.bill, set(differing["job_id"]), ctx.code_of)
        numbers = line_numbers(untyped, _FAMILY_KEYS, differing)
        capped = _capped_charges(expected, differing)
        for row, cut in zip(differing.pipe(rows_of), capped, strict=True):
            found = numbers.get((row.job_id, row.charge, row.grader_family), ())
            diff = int(row.billed) - int(row.expected)
            if cut and abs(diff) > _allowance(ctx, row):
                _start, _end, charge_at = ctx.charge_window(str(row.job_id), int(row.charge))
                findings.append(_beyond_cap(ctx, row, diff, found, charge_at))
                continue
            findings.append(_untyped_finding(ctx, row, usage, found))
    if not typed.empty:
        findings.extend(_typed(ctx, typed, expected))
    return findings


def _scope(ctx: AuditContext, job_id: str, charge: int) -> tuple[str, datetime | None]:
    _start, end, charge_at = ctx.charge_window(job_id, charge)
    return (f"charge at {clock(end)} UTC" if charge >= 0 else "job"), charge_at


def _untyped_finding(
    ctx: AuditContext, row: Any, usage: UsageIndex, lines: tuple[int, ...]
) -> Finding:
    job_id, charge, fam = str(row.job_id), int(row.charge), str(row.grader_family)
    billed, expected = int(row.billed), int(row.expected)
    diff = billed - expected
    scope, charge_at = _scope(ctx, job_id, charge)
    currency = ctx.currency
    common: dict[str, Any] = {
        "job_id": job_id,
        "invoice_line": lines[0] if lines else None,
        "invoice_lines": lines,
        "line_type": "grader_tokens",
        "expected": micro_to_decimal(expected),
        "billed": micro_to_decimal(billed),
        "charge_at": charge_at,
        "grader_model": fam,
    }
    tolerance = _allowance(ctx, row)
    if abs(diff) <= tolerance and expected != 0 and billed != 0:
        return Finding(
            kind="rounding",
            severity="info",
            explanation=grader_rounding(fam, job_id, scope, diff, currency),
            **common,
        )
    code = ctx.code(job_id)
    lost_cost, lost_evidence = usage.lost_cost(code, fam, charge, ctx.bill)
    old_cost, old_evidence = usage.previous_price_cost(code, fam, charge, ctx.bill)
    causes: list[tuple[FindingKind, str, list[Evidence]]] = []
    if lost_cost and abs(diff - lost_cost) <= tolerance:
        causes.append(
            ("grader_tokens_mismatch", lost_tokens_billed(lost_cost, fam, currency), lost_evidence)
        )
    if expected and abs(diff - expected) <= tolerance:
        causes.append(("grader_tokens_mismatch", tokens_billed_twice(fam), []))
    if old_cost is not None and abs(diff - (old_cost - expected)) <= tolerance and diff != 0:
        causes.append(
            ("grader_price_mismatch", earlier_price_billed(fam, old_cost, currency), old_evidence)
        )
    counted = not bool(row.q_missing) and billed != 0
    billed_q, tokens = int(row.billed_q), int(row.tokens)
    if counted and billed_q == tokens and tokens > 0:
        # The invoice's token count is the logs': the difference is in the price.
        causes = [c for c in causes if c[0] == "grader_price_mismatch"]
        if not causes:
            said, evidence = usage.price_entries(code, fam, charge, billed, ctx.bill)
            causes.append(
                (
                    "grader_price_mismatch",
                    price_not_count(billed_q, fam, billed, expected, said, currency),
                    evidence,
                )
            )
    elif counted and billed_q != tokens:
        causes = [c for c in causes if c[0] != "grader_price_mismatch"]
        if not causes:
            causes.append(("grader_tokens_mismatch", count_not_price(billed_q, fam, tokens), []))
    if billed == 0:
        return Finding(
            kind="grader_tokens_mismatch",
            severity=severity_of(diff),
            explanation=no_grader_line(fam, job_id, scope, expected, currency),
            **common,
        )
    if expected == 0 and not causes:
        return Finding(
            kind="grader_tokens_mismatch",
            severity=severity_of(diff),
            explanation=no_grader_usage(billed, fam, job_id, scope, currency),
            **common,
        )
    if causes:
        kind = causes[0][0]
        return Finding(
            kind=kind,
            severity=severity_of(diff),
            explanation=grader_causes(job_id, scope, [c[1] for c in causes], diff, currency),
            evidence=tuple(e for c in causes for e in c[2]),
            also=tuple(dict.fromkeys(c[0] for c in causes[1:] if c[0] != kind)),
            **common,
        )
    return Finding(
        kind="grader_tokens_mismatch",
        severity=severity_of(diff),
        explanation=grader_unexplained(fam, job_id, scope, billed, expected, currency),
        **common,
    )


def _allowance(ctx: AuditContext, row: Any) -> int:
    """What rounding can explain of a family's untyped lines: the logs' roundings (a charge
    each, R13) and the invoice's (a line each, where its amount is whole cents; a hundred
    lines of 0.0349 were never rounded), half a cent each under a half mode."""
    return rounding_allowance(int(row.n) + int(row.rounded), ctx.mode)


def _empty_tokens() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "job_id": pd.Series([], dtype=object),
            "charge": pd.Series([], dtype="int64"),
            "grader_family": pd.Series([], dtype=object),
            "token_type": pd.Series([], dtype=object),
            "price_index": pd.Series([], dtype="int64"),
            "price_micro": pd.Series([], dtype="int64"),
            "tokens": pd.Series([], dtype="int64"),
            "pico": pd.Series([], dtype=object),
        }
    )


def _typed(ctx: AuditContext, lines: pd.DataFrame, expected: Expected) -> list[Finding]:
    """Grader lines by token type: per line (arithmetic, price), per type (tokens); the
    rest is rounding."""
    findings: list[Finding] = []
    keys = _TYPE_KEYS
    tokens = expected.tokens
    if tokens.empty:
        tokens = _empty_tokens()
    tokens = tokens.merge(lines[_FAMILY_KEYS].drop_duplicates(), on=_FAMILY_KEYS)
    lines, per_token = _prices_per_token(ctx, lines, tokens)
    findings.extend(per_token)
    per_type = tokens.groupby(keys, as_index=False)["tokens"].sum()
    per_type = per_type.set_axis([*keys, "expected_tokens"], axis="columns").merge(
        exact_sums(tokens, keys, "pico"), on=keys
    )
    q = lines["quantity_micro"].astype("int64").to_numpy() // MICRO
    p = lines["unit_price_micro"].astype("int64").to_numpy()
    computed = cents_of_pico(q.astype(object) * p.astype(object), ctx.policy)
    # A line's price is in force when usage of its type was priced at it (R10).
    prices = tokens[[*keys, "price_micro"]].drop_duplicates().assign(in_force=True)
    lines = (
        lines.assign(tokens=q, computed=computed)
        .merge(per_type, on=keys, how="left")
        .merge(
            prices,
            left_on=[*keys, "unit_price_micro"],
            right_on=[*keys, "price_micro"],
            how="left",
        )
    )
    amount = lines["amount_micro"].to_numpy(dtype="int64")
    # A token line's amount may be its exact product rounded down or up to the cent: a
    # vendor that shares a model's once-rounded amount (R13) among its token types writes
    # 0.01 + 0.00 for two products of 0.005. The lines' sum is checked against R13 below.
    pico = q.astype(object) * p.astype(object)
    shared = _within_a_cent(pico, amount)
    expected_tokens = lines["expected_tokens"].fillna(0).astype("int64")
    own = lines["in_force"].fillna(False).astype(bool) | (expected_tokens == 0)
    # Otherwise the line's tokens at the price in force (blended if it changed in the charge).
    blend = lines.index[~own]
    at_force = pd.Series(computed, index=lines.index, dtype="int64")
    for i in blend:  # only lines priced wrongly: findings
        at_force[i] = int(
            divide_round(
                int(q[i]) * as_int(lines.at[i, "pico"]),
                int(expected_tokens[i]) * PICO_PER_CENT,
                ctx.mode,
            )
        )
    # A charge the per-job cap cut bills its token types below tokens × price ("Policy"):
    # no arithmetic to check per line there (as for a capped compute line), only its sum.
    capped = _capped_charges(expected, lines)
    lines = lines.assign(
        arithmetic=np.where(capped | shared, 0, amount - computed * MICRO_PER_CENT),
        at_force=at_force,
        price_part=(computed - at_force.to_numpy()) * MICRO_PER_CENT,
    )
    for row in lines[(lines["arithmetic"] != 0) | (lines["price_part"] != 0)].pipe(rows_of):
        charge_at = None if pd.isna(row.event_at) else at(int(row.event_at))
        price = Decimal(int(row.unit_price_micro)).scaleb(-6)
        product = (
            f"{int(row.tokens):,} {row.grader_family} {row.token_type} tokens × "
            f"{price_text(price)} per 1M"
        )
        extra = {"grader_model": str(row.grader_family), "token_type": str(row.token_type)}
        if row.price_part != 0:
            findings.append(_price_finding(ctx, row, price, charge_at, tokens, extra))
        if row.arithmetic != 0:
            findings.append(
                arithmetic_finding(ctx, row, "grader_tokens", product, charge_at, **extra)
            )

    # Per type: tokens. Per family: what is left is rounding.
    billed = lines.groupby(keys, as_index=False).agg(
        billed_tokens=("tokens", "sum"),
        at_force=("at_force", "sum"),
        arithmetic=("arithmetic", "sum"),
        price_part=("price_part", "sum"),
    )
    groups = per_type.merge(billed, on=keys, how="outer")
    pico = groups["pico"].where(groups["pico"].notna(), 0).to_numpy(dtype=object)
    groups = groups.assign(
        expected_tokens=groups["expected_tokens"].fillna(0).astype("int64"),
        billed_tokens=groups["billed_tokens"].fillna(0).astype("int64"),
        at_force=groups["at_force"].fillna(0).astype("int64"),
        expected_cents=cents_of_pico(pico, ctx.policy),
    )
    groups = groups.assign(
        token_part=(groups["at_force"] - groups["expected_cents"]) * MICRO_PER_CENT
    )
    differing = (groups["billed_tokens"] != groups["expected_tokens"]) & (groups["token_part"] != 0)
    token_groups = groups[differing]
    if not token_groups.empty:
        usage = UsageIndex(ctx.bill, set(token_groups["job_id"]), ctx.code_of)
        numbers = line_numbers(lines, keys, token_groups)
        for _, row in token_groups.iterrows():
            found = numbers.get(tuple(row[k] for k in keys), ())
            findings.append(_token_finding(ctx, row, usage, found))
    groups = groups.assign(
        explained=groups["token_part"].where(differing, 0)
        + groups["price_part"].fillna(0).astype("int64")
        + groups["arithmetic"].fillna(0).astype("int64")
    )
    fam = (
        lines.groupby(_FAMILY_KEYS)[["amount_micro"]]
        .sum()
        .join(groups.groupby(_FAMILY_KEYS)["explained"].sum())
        .reset_index()
        .merge(expected.family[[*_FAMILY_KEYS, "amount_cents"]], how="left", on=_FAMILY_KEYS)
    )
    fam = fam.assign(expected=fam["amount_cents"].fillna(0).astype("int64") * MICRO_PER_CENT)
    fam = fam.assign(rest=fam["amount_micro"] - fam["expected"] - fam["explained"])
    rests = fam[fam["rest"] != 0]
    numbers = line_numbers(lines, _FAMILY_KEYS, rests)
    capped_families = set(
        zip(lines.loc[capped, "job_id"], lines.loc[capped, "charge"], strict=True)
    )
    for row in rests.pipe(rows_of):
        lines_of = numbers.get((row.job_id, row.charge, row.grader_family), ())
        job_id, charge = str(row.job_id), int(row.charge)
        _, _end, charge_at = ctx.charge_window(job_id, charge)
        rest = int(row.rest)
        if (job_id, charge) in capped_families and abs(rest) > len(lines_of) * MICRO_PER_CENT:
            findings.append(_beyond_cap(ctx, row, rest, lines_of, charge_at))
            continue
        if abs(rest) > len(lines_of) * MICRO_PER_CENT:
            # Beyond a cent a line, rounding cannot explain it: with prices each in force for
            # part of the usage (R10), the tokens billed at a price are not those priced at it.
            findings.append(_unexplained_family(ctx, row, rest, lines_of, charge_at, tokens))
            continue
        explanation = typed_rounding(str(row.grader_family), job_id, rest, ctx.currency)
        findings.append(
            _family_finding(
                row, rest, lines_of, charge_at, "rounding", "info", explanation=explanation
            )
        )
    return findings


def _unexplained_family(
    ctx: AuditContext,
    row: Any,
    rest: int,
    lines: tuple[int, ...],
    charge_at: datetime | None,
    tokens: pd.DataFrame,
) -> Finding:
    """A family's token lines whose sum is off by more than their rounding: each line's
    price in force for some usage, but not for as many tokens as it bills at it (R10)."""
    used = tokens[
        (tokens["job_id"] == row.job_id)
        & (tokens["charge"] == row.charge)
        & (tokens["grader_family"] == row.grader_family)
    ]
    per_price = used.groupby(["token_type", "price_micro"], sort=True)["tokens"].sum()
    priced = "; ".join(
        f"{int(count):,} {token_type} at {price_text(Decimal(int(price)).scaleb(-6))} per 1M"
        for (token_type, price), count in per_price.items()
    )
    several = used.groupby("token_type")["price_micro"].nunique().max() > 1
    explanation = typed_unexplained(
        str(row.grader_family), str(row.job_id), rest, len(lines), priced, ctx.currency
    )
    return _family_finding(
        row,
        rest,
        lines,
        charge_at,
        "grader_price_mismatch" if several else "grader_tokens_mismatch",
        severity_of(rest),
        explanation=explanation,
    )


def _capped_charges(expected: Expected, lines: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Whether each line's charge (or job, compared whole) was cut by the per-job cap."""
    money = expected.money
    cut = money[money["capped"].astype(bool)]
    keys = pd.MultiIndex.from_arrays([cut["job_id"].astype(str), cut["charge"]])
    of_line = pd.MultiIndex.from_arrays([lines["job_id"].astype(str), lines["charge"]])
    found: np.ndarray[Any, Any] = keys.get_indexer(of_line) >= 0
    return found


def _beyond_cap(
    ctx: AuditContext, row: Any, rest: int, lines: tuple[int, ...], charge_at: datetime | None
) -> Finding:
    """Token lines of a capped charge that bill more (or less) than the cap leaves them."""
    policy = ctx.policy
    cap = policy.cap.per_job_amount
    return _family_finding(
        row,
        rest,
        lines,
        charge_at,
        "grader_tokens_mismatch",
        severity_of(rest),
        explanation=beyond_cap(str(row.job_id), policy.name, cap, rest, ctx.currency),
        evidence=(
            Evidence(
                type="cap",
                description=f"training plus grading capped at {cap} per job",
                price=cap,
            ),
        ),
    )


def _family_finding(
    row: Any,
    rest: int,
    lines: tuple[int, ...],
    charge_at: datetime | None,
    kind: FindingKind,
    severity: Severity,
    *,
    explanation: str,
    evidence: tuple[Evidence, ...] = (),
) -> Finding:
    """A finding on a grader family's token lines of one charge: billed ``rest`` micro-units
    away from the ``expected`` of ``row``."""
    return Finding(
        kind=kind,
        severity=severity,
        job_id=str(row.job_id),
        invoice_line=lines[0] if lines else None,
        invoice_lines=lines,
        line_type="grader_tokens",
        expected=micro_to_decimal(int(row.expected)),
        billed=micro_to_decimal(int(row.expected) + rest),
        charge_at=charge_at,
        grader_model=str(row.grader_family),
        explanation=explanation,
        evidence=evidence,
    )


def _within_a_cent(pico: Any, amount: Any) -> Any:
    """Whether each amount (millionths) is its exact product (pico-units, Python ints)
    rounded down or up to the cent."""
    floor_micro = (pico // PICO_PER_CENT).astype("int64") * MICRO_PER_CENT
    ceil_micro = (-((-pico) // PICO_PER_CENT)).astype("int64") * MICRO_PER_CENT
    return (floor_micro <= amount) & (amount <= ceil_micro)


def _prices_per_token(
    ctx: AuditContext, lines: pd.DataFrame, tokens: pd.DataFrame
) -> tuple[pd.DataFrame, list[Finding]]:
    """Lines whose unit price is written per token (0.000002) where the format asks per 1M
    tokens (2.00): their price × 1M is the price in force and their amount is the tokens at
    it. Read at the price per 1M, with an info finding: the amount is right (read as written,
    one line made an arithmetic error and a price mismatch that cancel out)."""
    price = lines["unit_price_micro"].astype("int64")
    small = (price > 0) & (price < MICRO)  # below 1.00: 1M times it is still a price
    if not small.any():
        return lines, []
    scaled = price.where(small, 0) * MICRO
    in_force = tokens[[*_TYPE_KEYS, "price_micro"]].drop_duplicates()
    hit = (
        lines[_TYPE_KEYS]
        .assign(price_micro=scaled.to_numpy())
        .merge(in_force.assign(_hit=True), on=[*_TYPE_KEYS, "price_micro"], how="left")["_hit"]
        .fillna(False)
        .astype(bool)
        .to_numpy()
        & small.to_numpy()
    )
    q = lines["quantity_micro"].astype("int64").to_numpy() // MICRO
    pico = q.astype(object) * scaled.to_numpy().astype(object)
    amount = lines["amount_micro"].to_numpy(dtype="int64")
    hit &= _within_a_cent(pico, amount)
    if not hit.any():
        return lines, []
    findings = []
    for row, per_1m in zip(lines[hit].pipe(rows_of), scaled.to_numpy()[hit].tolist(), strict=True):
        line = int(row.line)
        written = Decimal(int(row.unit_price_micro)).scaleb(-6)
        meant = Decimal(int(per_1m)).scaleb(-6)
        findings.append(
            Finding(
                kind="arithmetic_error",
                severity="info",
                job_id=str(row.job_id),
                invoice_line=line,
                invoice_lines=(line,),
                line_type="grader_tokens",
                expected=micro_to_decimal(int(row.amount_micro)),
                billed=micro_to_decimal(int(row.amount_micro)),
                grader_model=str(row.grader_family),
                token_type=str(row.token_type),
                explanation=(
                    f"Line {line}'s unit price {price_text(written)} is per token: per 1M"
                    f" tokens (as the invoice format gives prices) it is {price_text(meant)},"
                    f" the price in force, and its amount is right. Read at"
                    f" {price_text(meant)} per 1M."
                ),
                evidence=(
                    Evidence(
                        type="invoice_line",
                        description=f"line {line}: unit price {price_text(written)} per token",
                        invoice_line=line,
                    ),
                ),
            )
        )
    fixed = lines["unit_price_micro"].astype("int64").where(~hit, scaled)
    return lines.assign(unit_price_micro=fixed), findings


def _price_finding(
    ctx: AuditContext,
    row: Any,
    price: Decimal,
    charge_at: datetime | None,
    tokens: pd.DataFrame,
    extra: dict[str, Any],
) -> Finding:
    """grader_price_mismatch of one token line: its price against the entries in force."""
    line = int(row.line)
    family = str(row.grader_family)
    token_type = str(row.token_type)
    entries = ctx.policy.price_table.models.get(family, ())
    used = tokens[
        (tokens["job_id"] == row.job_id)
        & (tokens["charge"] == row.charge)
        & (tokens["grader_family"] == row.grader_family)
        & (tokens["token_type"] == row.token_type)
    ]
    in_force = [entries[i] for i in sorted(set(used["price_index"])) if 0 <= i < len(entries)]
    field_name = {"input": "input", "cached_input": "cached_input", "output": "output"}[token_type]
    matching = [e for e in entries if getattr(e, field_name) == price]
    evidence = [
        Evidence(
            type="price_entry",
            description=(
                f"{family} {token_type} {price_text(getattr(e, field_name))} per 1M from "
                f"{e.effective_from.date()} (in force for this usage)"
            ),
            price=getattr(e, field_name),
            effective_from=e.effective_from,
            source=e.source,
            grader_model=family,
            token_type=token_type,
        )
        for e in in_force
    ]
    old = ""
    for e in matching:
        later = [x for x in entries if x.effective_from > e.effective_from]
        until = f", replaced on {later[0].effective_from.date()}" if later else ""
        old = f"; {price_text(price)} is the entry from {e.effective_from.date()}{until}"
        evidence.append(
            Evidence(
                type="price_entry",
                description=(
                    f"{family} {token_type} {price_text(price)} per 1M from "
                    f"{e.effective_from.date()}{until}"
                ),
                price=price,
                effective_from=e.effective_from,
                source=e.source,
                grader_model=family,
                token_type=token_type,
            )
        )
    in_force_text = " / ".join(f"{price_text(getattr(e, field_name))}" for e in in_force) or "?"
    diff = int(row.price_part)
    return Finding(
        kind="grader_price_mismatch",
        severity=severity_of(diff),
        job_id=str(row.job_id),
        invoice_line=line,
        invoice_lines=(line,),
        line_type="grader_tokens",
        expected=cents_to_decimal(int(row.at_force)),
        billed=cents_to_decimal(int(row.computed)),
        charge_at=charge_at,
        explanation=token_price_mismatch(
            line, int(row.tokens), family, token_type, price, in_force_text, old, diff, ctx.currency
        ),
        evidence=tuple(evidence),
        **extra,
    )


def _token_finding(
    ctx: AuditContext, row: pd.Series, usage: UsageIndex, lines: tuple[int, ...]
) -> Finding:
    """grader_tokens_mismatch of one token type: the count billed against the logs'."""
    job_id, charge, family, token_type = (
        str(row["job_id"]),
        int(row["charge"]),
        str(row["grader_family"]),
        str(row["token_type"]),
    )
    scope, charge_at = _scope(ctx, job_id, charge)
    billed_tokens, expected_tokens = int(row["billed_tokens"]), int(row["expected_tokens"])
    delta = billed_tokens - expected_tokens
    diff = int(row["token_part"])
    lost, lost_evidence = usage.lost_tokens(ctx.code(job_id), family, charge, token_type, ctx.bill)
    reasons = []
    evidence: list[Evidence] = [
        Evidence(
            type="tokens",
            description=f"logs: {expected_tokens:,} charged {family} {token_type} tokens ({scope})",
            grader_model=family,
            token_type=token_type,
            tokens=expected_tokens,
        )
    ]
    if lost and delta == lost:
        reasons.append(
            f"they equal the {lost:,} {token_type} tokens used in lost work (R9: not charged)"
        )
        evidence.extend(lost_evidence)
    if expected_tokens and billed_tokens == 2 * expected_tokens:
        reasons.append("the tokens appear to be counted twice")
    if expected_tokens == 0 and billed_tokens:
        reasons.append("the logs show no charged usage of this kind")
    because = ("; " + " or ".join(reasons)) if reasons else ""
    return Finding(
        kind="grader_tokens_mismatch",
        severity=severity_of(diff),
        job_id=job_id,
        invoice_line=lines[0] if lines else None,
        invoice_lines=lines,
        line_type="grader_tokens",
        expected=cents_to_decimal(int(row["expected_cents"])),
        billed=micro_to_decimal(int(row["expected_cents"]) * MICRO_PER_CENT + diff),
        charge_at=charge_at,
        grader_model=family,
        token_type=token_type,
        explanation=token_count_mismatch(
            billed_tokens,
            family,
            token_type,
            job_id,
            scope,
            expected_tokens,
            diff,
            because,
            ctx.currency,
        ),
        evidence=tuple(evidence),
    )
