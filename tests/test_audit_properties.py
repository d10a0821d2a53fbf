"""Properties of the invoice audit (hypothesis).

- An invoice written from rftcost's own bill audits clean under every shipped policy
  and rounding scope, with or without charge times and token types.
- Any single perturbed line (hours, rate, discount, tokens, a duplicated or a dropped
  line) is flagged with the right kind and the exact difference.
- Whatever the invoice, the findings' differences add up to the summary's difference.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from strategies import examples, logs

import rftcost
from rftcost.audit import AuditReport, audit_invoice
from rftcost.invoice import invoice_from_bill, write_invoice

D = Decimal
SETTINGS = settings(
    max_examples=int(os.environ.get("RFTCOST_AUDIT_EXAMPLES", "0")) or examples(40, slow=True),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # RFTCOST_AUDIT_EXAMPLES=500 RFTCOST_AUDIT_NO_SHRINK=1: a quick hunt for counterexamples.
    phases=[Phase.explicit, Phase.reuse, Phase.generate]
    if os.environ.get("RFTCOST_AUDIT_NO_SHRINK")
    else list(Phase),
)
POLICIES = rftcost.list_policies()


def _policy(name: str, scope: str) -> rftcost.Policy:
    policy = rftcost.load_policy(name)
    return policy.model_copy(
        update={"rounding": policy.rounding.model_copy(update={"scope": scope})}
    )


def _audit(lines: pd.DataFrame, bill: rftcost.Bill) -> AuditReport:
    with TemporaryDirectory() as folder:
        path = write_invoice(lines, Path(folder) / "invoice.csv")
        return audit_invoice(path, bill)


def _adds_up(report: AuditReport) -> None:
    total = sum((f.difference for f in report.findings if f.difference is not None), D(0))
    assert total == report.summary.difference
    assert report.summary.billed_total - report.summary.expected_total == report.summary.difference


@pytest.mark.slow
@SETTINGS
@given(
    records=logs(max_jobs=3),
    policy=st.sampled_from(POLICIES),
    scope=st.sampled_from(["charge", "job"]),
    charge_at=st.booleans(),
    token_types=st.booleans(),
)
def test_an_invoice_written_from_the_bill_audits_clean(
    records: list[dict[str, Any]], policy: str, scope: str, charge_at: bool, token_types: bool
) -> None:
    bill = rftcost.bill(pd.DataFrame(records), policy=_policy(policy, scope))
    lines = invoice_from_bill(bill, charge_at=charge_at, token_types=token_types)
    report = _audit(lines, bill)
    if token_types:
        # Token lines rounded one by one may differ from the once-rounded bill by a cent (R13).
        assert {f.kind for f in report.findings} <= {"rounding"}
        assert all(abs(f.difference or 0) <= D("0.02") for f in report.findings)
    else:
        assert report.findings == ()
    assert not report.has_errors
    assert report.summary.expected_total == bill.totals().total_amount
    _adds_up(report)


# --- one perturbed line ---------------------------------------------------------------------


def _money(text: str) -> D:
    return D(text)


def _cents(value: D) -> str:
    return f"{value.quantize(D('0.01'), rounding='ROUND_HALF_UP'):.2f}"


def _unique_token_lines(lines: pd.DataFrame) -> pd.Index:
    """Grader lines alone in their (job, charge, model, token type): one price entry."""
    grader = lines[lines["line_type"] == "grader_tokens"]
    keys = ["job_id", "charge_at", "grader_model", "token_type"]
    counts = grader.groupby(keys)["line"].transform("size")
    return grader.index[counts == 1]


PERTURBATIONS = ("hours", "rate", "discount", "tokens", "duplicate", "drop")


@pytest.mark.slow
@SETTINGS
@given(
    records=logs(max_jobs=3),
    policy=st.sampled_from(POLICIES),
    scope=st.sampled_from(["charge", "job"]),
    how=st.sampled_from(PERTURBATIONS),
    data=st.data(),
)
def test_a_single_perturbed_line_is_flagged_with_its_kind_and_exact_difference(
    records: list[dict[str, Any]], policy: str, scope: str, how: str, data: st.DataObject
) -> None:
    bill = rftcost.bill(pd.DataFrame(records), policy=_policy(policy, scope))
    lines = invoice_from_bill(bill, token_types=True)
    baseline = {(f.kind, f.job_id, f.difference) for f in _audit(lines, bill).findings}
    n_charges = bill.jobs.set_index("job_id")["n_charges"]

    if how in ("hours", "rate"):
        candidates = lines.index[lines["line_type"] == "compute"]
    elif how == "discount":
        candidates = lines.index[lines["line_type"] == "data_sharing_discount"]
    elif how == "tokens":
        candidates = _unique_token_lines(lines)
    elif how == "drop":
        # Compute lines of a few hundredths of an hour may go unbilled by rounding alone.
        unique = set(_unique_token_lines(lines))
        candidates = pd.Index(
            [
                i
                for i, r in lines.iterrows()
                if (r["line_type"] != "grader_tokens" or i in unique)
                and (
                    r["line_type"] != "compute"
                    or D(r["quantity"]) * 100 > int(n_charges[r["job_id"]]) + 1
                )
            ]
        )
    else:
        candidates = lines.index
    assume(len(candidates) > 0)
    i = data.draw(st.sampled_from(list(candidates)), label="line")
    row = lines.loc[i]
    job_id = row["job_id"]
    old = _money(row["amount"])
    changed = lines.copy()

    if how == "hours":
        units = data.draw(st.integers(int(n_charges[job_id]) + 2, 400), label="units")
        sign = data.draw(st.sampled_from([1, -1]), label="sign")
        hours = D(row["quantity"]) + sign * D(units) / 100
        assume(hours >= 0)
        new = D(_cents(hours * D(row["unit_price"])))
        changed.loc[i, ["quantity", "amount"]] = [f"{hours:.2f}", _cents(new)]
        kinds = (
            {"overbilled_time", "queue_time_billed", "lost_work_billed"}
            if sign > 0
            else {"underbilled_time"}
        )
    elif how == "rate":
        price = D(data.draw(st.integers(1, 50_000), label="price")) / 100
        assume(price != D(row["unit_price"]))
        new = D(_cents(D(row["quantity"]) * price))
        assume(new != old)
        changed.loc[i, ["unit_price", "amount"]] = [f"{price:.2f}", _cents(new)]
        kinds = {"rate_mismatch"}
    elif how == "discount":
        delta = D(data.draw(st.integers(2, 5000), label="cents")) / 100
        new = old + data.draw(st.sampled_from([1, -1]), label="sign") * delta
        changed.loc[i, "amount"] = _cents(new)
        kinds = {"missing_discount"}
    elif how == "tokens":
        tokens = int(row["quantity"]) + data.draw(st.integers(-(10**6), 10**7), label="tokens")
        assume(tokens >= 0 and tokens != int(row["quantity"]))
        exact = D(tokens) * D(row["unit_price"]) / 10**6
        new = D(_cents(exact))
        assume(new != old)
        changed.loc[i, ["quantity", "amount"]] = [str(tokens), _cents(new)]
        kinds = {"grader_tokens_mismatch"}
    elif how == "duplicate":
        assume(old != 0)
        copy = lines.loc[[i]].assign(line=str(len(lines) + 1))
        changed = pd.concat([lines, copy], ignore_index=True)
        new = old + old
        kinds = {"duplicate_line"}
    else:
        assume(old != 0)
        changed = lines.drop(index=i)
        new = D(0)
        only_line = (lines["job_id"] == job_id).sum() == 1
        kinds = (
            {"unbilled_job"}
            if only_line
            else {
                "compute": {"underbilled_time"},
                "data_sharing_discount": {"missing_discount"},
                "grader_tokens": {"grader_tokens_mismatch"},
            }[row["line_type"]]
        )

    report = _audit(changed, bill)
    _adds_up(report)
    fresh = [f for f in report.findings if (f.kind, f.job_id, f.difference) not in baseline]
    assert len(fresh) == 1, [(f.kind, f.difference, f.explanation) for f in report.findings]
    finding = fresh[0]
    assert finding.kind in kinds, finding.explanation
    assert finding.job_id == job_id
    assert finding.difference == new - old, finding.explanation
    assert finding.severity == ("error" if new > old else "warning")


@pytest.mark.parametrize("policy", POLICIES)
def test_every_shipped_policy_is_covered(policy: str) -> None:
    assert rftcost.load_policy(policy).name == policy
