"""Write the sample invoices next to this file (deterministic: the same bytes on every run).

    python sample_logs/make_invoices.py

From rftcost's own bill of ``sample_logs/`` (every log in the folder, default policy):

- ``invoice-clean.csv``: the invoice an honest vendor sends (one compute line per
  charge, one discount line per discounted charge, one grader line per charge and
  grader model); ``rftcost audit`` finds nothing;
- ``invoice-planted.csv``: the same invoice with one planted case of every finding
  kind (README.md, "Sample invoices", lists them), plus a line for the broken job of
  ``examples/audit/broken-job.jsonl`` (written here too: the sample logs have no
  invalid job, and a broken log inside ``sample_logs/`` would be read with them);
- ``costs-api-export.json``: the same charges as OpenAI Costs API pages (one bucket
  per UTC day, results per project and line item), written on one line so that a
  folder read of ``sample_logs/`` skips it.

The script audits what it wrote and stops if a planted case is not found as planted.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

import rftcost
from rftcost.invoice_writers import (
    costs_export_from_bill,
    dump_costs_export,
    invoice_from_bill,
    write_invoice,
)

HERE = Path(__file__).resolve().parent
BROKEN = HERE.parent / "examples" / "audit" / "broken-job.jsonl"
# Each invoice its own number, as a vendor's are (the notebook's invoice is INV-2025-0732).
CLEAN_ID = "INV-2025-0730"
INVOICE_ID = "INV-2025-0731"
CENT = Decimal("0.01")
NS_PER_HOUR = 3600 * 10**9

# One planted case per finding kind: (kind, job, what was done).
PLANTED: list[tuple[str, str, str]] = []


def _broken_job() -> list[dict[str, object]]:
    """A job whose log cannot be reconstructed: a phase_end with no open phase."""
    job = "ftjob-demo-broken-log"
    return [
        {"job_id": job, "ts": "2025-06-20T09:00:00Z", "event": "job_created", "team": "legal",
         "project": "contracts"},
        {"job_id": job, "ts": "2025-06-20T09:10:00Z", "event": "phase_start", "phase": "rollout"},
        {"job_id": job, "ts": "2025-06-20T09:40:00Z", "event": "phase_end", "phase": "rollout"},
        {"job_id": job, "ts": "2025-06-20T10:05:00Z", "event": "phase_end", "phase": "rollout"},
        {"job_id": job, "ts": "2025-06-20T10:05:00Z", "event": "succeeded"},
    ]  # fmt: skip


def _units(ns: int) -> int:
    """Exact nanoseconds → hundredths of an hour, as the default policy rounds (R11)."""
    seconds = (ns + 500_000_000) // 1_000_000_000
    return (seconds * 100 + 1800) // 3600


def _money(value: Decimal) -> str:
    return f"{value.quantize(CENT, ROUND_HALF_UP):.2f}"


class _Lines:
    """The honest invoice, and edits that each plant one finding."""

    def __init__(self, bill: rftcost.Bill) -> None:
        self.bill = bill
        untyped = invoice_from_bill(bill, invoice_id=INVOICE_ID)
        typed = invoice_from_bill(bill, invoice_id=INVOICE_ID, token_types=True)
        # Token types where a planted grader case needs them; amounts only elsewhere.
        self.typed = typed
        self.frame = untyped
        self.type_tokens("ftjob-demo-o3-across")

    def type_tokens(self, job_id: str) -> None:
        """The job's grader lines one per token type, each rounded on its own."""
        untyped, typed = self.frame, self.typed
        grader = untyped["line_type"] == "grader_tokens"
        keep = untyped[~(grader & (untyped["job_id"] == job_id))]
        extra = typed[(typed["line_type"] == "grader_tokens") & (typed["job_id"] == job_id)]
        order = {"compute": 0, "data_sharing_discount": 1, "grader_tokens": 2}
        self.frame = (
            pd.concat([keep, extra], ignore_index=True)
            .assign(_o=lambda f: f["line_type"].map(order))
            .sort_values(["job_id", "charge_at", "_o", "token_type"], kind="stable")
            .drop(columns="_o")
            .reset_index(drop=True)
        )
        self.renumber()

    def renumber(self) -> None:
        self.frame["line"] = [str(n) for n in range(1, len(self.frame) + 1)]

    def index(self, job_id: str, line_type: str, token_type: str = "", nth: int = 0) -> int:
        f = self.frame
        mask = (f["job_id"] == job_id) & (f["line_type"] == line_type)
        if token_type:
            mask &= f["token_type"] == token_type
        return int(f.index[mask][nth])

    def set_hours(self, i: int, units: int, rate: Decimal | None = None) -> None:
        rate = Decimal(self.frame.at[i, "unit_price"]) if rate is None else rate
        hours = Decimal(units) / 100
        self.frame.loc[i, ["quantity", "unit_price", "amount"]] = [
            f"{hours:.2f}",
            f"{rate:.2f}",
            _money(hours * rate),
        ]

    def set_tokens(self, i: int, tokens: int | None = None, price: Decimal | None = None) -> None:
        tokens = int(self.frame.at[i, "quantity"]) if tokens is None else tokens
        price = Decimal(self.frame.at[i, "unit_price"]) if price is None else price
        self.frame.loc[i, ["quantity", "unit_price", "amount"]] = [
            str(tokens),
            f"{price:.2f}",
            _money(Decimal(tokens) * price / 10**6),
        ]


def _charge(bill: rftcost.Bill, job_id: str, nth: int = 0) -> pd.Series:
    return bill.charges[bill.charges["job_id"] == job_id].iloc[nth]


def _plant(lines: _Lines, bill: rftcost.Bill) -> pd.DataFrame:
    timeline = bill.timeline
    code = {j: c for c, j in timeline.jobs["job_id"].items()}

    # queue_time_billed: the queue of ftjob-demo-success billed as if it were training.
    job = "ftjob-demo-success"
    queued = timeline.intervals[
        (timeline.intervals["job"] == code[job]) & (timeline.intervals["phase"] == "queued")
    ].iloc[0]
    charge = _charge(bill, job)
    lines.set_hours(
        lines.index(job, "compute"),
        _units(int(charge["billable_ns"]) + int(queued["end"] - queued["start"])),
    )
    PLANTED.append(("queue_time_billed", job, "its queued phase billed as training time"))

    # lost_work_billed: the work lost after checkpoint step 5 billed (R5).
    job = "ftjob-demo-failed-checkpoint"
    charge = _charge(bill, job)
    lines.set_hours(
        lines.index(job, "compute"), _units(int(charge["billable_ns"]) + int(charge["lost_ns"]))
    )
    PLANTED.append(("lost_work_billed", job, "the work lost to its failure billed"))

    # grader_tokens_mismatch: the same job's gpt-4.1 tokens of the lost steps billed (R9).
    usage = timeline.usage[(timeline.usage["job"] == code[job]) & timeline.usage["lost"]]
    price = bill.policy.price_table.models["gpt-4.1"][0]
    cached = int(usage["cached_input_tokens"].sum())
    lost = (
        (int(usage["input_tokens"].sum()) - cached) * price.input
        + cached * price.cached_input
        + int(usage["output_tokens"].sum()) * price.output
    )
    typed = lines.typed[(lines.typed["job_id"] == job) & (lines.typed["token_type"] != "")]
    pairs = zip(typed["quantity"], typed["unit_price"], strict=True)
    charged = sum((Decimal(str(q)) * Decimal(str(p)) for q, p in pairs), Decimal(0))
    i = lines.index(job, "grader_tokens")
    lines.frame.loc[i, "amount"] = _money((charged + lost) / 10**6)
    PLANTED.append(("grader_tokens_mismatch", job, "tokens of the lost steps billed (R9)"))

    # grader_price_mismatch: the job paused across o3's price change; its second charge's
    # output tokens (used after 2025-06-10) at the old $40 per 1M instead of $8 (R10).
    job = "ftjob-demo-o3-across"
    lines.set_tokens(lines.index(job, "grader_tokens", "output", nth=1), price=Decimal("40.00"))
    PLANTED.append(
        ("grader_price_mismatch", job, "second charge's o3 output tokens at the old price")
    )

    # overbilled_time: 0.65 h more than the logs, matching no excluded or lost interval.
    job = "ftjob-demo-month-end"
    lines.set_hours(lines.index(job, "compute"), int(_charge(bill, job)["hour_units"]) + 65)
    PLANTED.append(("overbilled_time", job, "0.65 h more than its billable time"))

    # underbilled_time: 0.10 h less than the logs.
    job = "ftjob-demo-cancelled"
    lines.set_hours(lines.index(job, "compute"), int(_charge(bill, job)["hour_units"]) - 10)
    PLANTED.append(("underbilled_time", job, "0.10 h less than its billable time"))

    # missing_discount: the data-sharing job's discount line left out (R12).
    job = "ftjob-demo-data-sharing"
    lines.frame = lines.frame.drop(index=lines.index(job, "data_sharing_discount"))
    PLANTED.append(("missing_discount", job, "no data-sharing discount line"))

    # rate_mismatch: the first charge of the paused job at $110.00/h.
    job = "ftjob-demo-pause-resume"
    i = lines.index(job, "compute")
    lines.set_hours(i, int(Decimal(lines.frame.at[i, "quantity"]) * 100), rate=Decimal("110.00"))
    PLANTED.append(("rate_mismatch", job, "its first charge at 110.00 USD/h"))

    # arithmetic_error: hours × rate ≠ amount.
    job = "ftjob-demo-rollback"
    i = lines.index(job, "compute")
    lines.frame.loc[i, "amount"] = _money(Decimal(lines.frame.at[i, "amount"]) + 10)
    PLANTED.append(("arithmetic_error", job, "the amount is 10.00 more than hours × rate"))

    # rounding: the grader tokens billed a line per token type, each rounded to the cent on
    # its own, where R13 rounds the model's amount once: a cent more, only rounding scope.
    job = "ftjob-8lqcdidSNOLMmDzFXMGFJu4n"
    lines.type_tokens(job)
    PLANTED.append(("rounding", job, "grader tokens a line per token type, each rounded"))

    # unbilled_job: the job without a team has no line.
    job = "ftjob-demo-no-team"
    lines.frame = lines.frame[lines.frame["job_id"] != job]
    PLANTED.append(("unbilled_job", job, "no line at all"))

    frame = lines.frame
    # duplicate_line: the compute line of the o3 job after the price change twice.
    job = "ftjob-demo-o3-after"
    copy = frame[(frame["job_id"] == job) & (frame["line_type"] == "compute")]
    # unknown_job: a line for a job with no events.
    ghost = copy.assign(job_id="ftjob-not-in-the-logs", description="RFT training o4-mini")
    # invalid_job: a line for the broken job of examples/audit/broken-job.jsonl.
    broken = copy.assign(
        job_id="ftjob-demo-broken-log",
        charge_at="2025-06-20T10:05:00Z",
        quantity="0.92",
        amount="92.00",
    )
    PLANTED.append(("duplicate_line", job, "its compute line twice"))
    PLANTED.append(("unknown_job", "ftjob-not-in-the-logs", "a job with no events"))
    PLANTED.append(("invalid_job", "ftjob-demo-broken-log", "a job whose log is broken"))
    lines.frame = pd.concat([frame, copy, ghost, broken], ignore_index=True)
    lines.renumber()
    return lines.frame


def main(folder: Path = HERE, broken: Path = BROKEN) -> list[Path]:
    """Write the three invoices into ``folder`` and the broken log; return the four paths."""
    folder.mkdir(parents=True, exist_ok=True)
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("".join(json.dumps(r) + "\n" for r in _broken_job()), encoding="utf-8")
    bill = rftcost.bill(HERE)
    clean = write_invoice(
        invoice_from_bill(bill, invoice_id=CLEAN_ID), folder / "invoice-clean.csv"
    )
    PLANTED.clear()
    planted = write_invoice(_plant(_Lines(bill), bill), folder / "invoice-planted.csv")
    costs = folder / "costs-api-export.json"
    costs.write_text(dump_costs_export(costs_export_from_bill(bill)), encoding="utf-8")
    _check(bill, clean, planted, costs, broken)
    return [clean, planted, costs, broken]


def _check(bill: rftcost.Bill, clean: Path, planted: Path, costs: Path, broken: Path) -> None:
    for path in (clean, costs):
        report = rftcost.audit_invoice(path, bill)
        if report.findings:
            raise SystemExit(f"{path.name} does not audit clean: {report.findings[0].explanation}")
    report = rftcost.audit_invoice(planted, [HERE, broken])
    found = {(f.kind, f.job_id) for f in report.findings}
    missing = [(k, j) for k, j, _ in PLANTED if (k, j) not in found]
    extra = found - {(k, j) for k, j, _ in PLANTED}
    if missing or extra:
        raise SystemExit(f"planted cases not found as planted: missing {missing}, extra {extra}")


if __name__ == "__main__":
    for written in main():
        print(written)
