"""Time × policy → charges, lines and bills (R9-R15).

The money half of the billing kernel. Like ``timeline`` it works on every job at
once: amounts are integer cents (token amounts integer pico-dollars, summed
exactly as Python integers where a product could exceed 64 bits) and every
rounding goes through ``money.divide_round`` with the policy's named mode. The
``Bill`` keeps the frames; ``Bill.job`` and ``Bill.to_dict`` turn them into
``Decimal`` values and the ``rftcost.bill/v1`` document at the edge.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from rftcost.errors import UnknownJobError
from rftcost.events.readers import EventLog
from rftcost.money import cents_to_decimal, units_text
from rftcost.policy import Policy, RoundingScope
from rftcost.rules import (
    cap_charges,
    compute_cents,
    discount_cents,
    grader_cents,
    hour_units,
    price_family,
    price_in_force,
    rate_places,
    rate_units,
    shrink_shares,
    token_pico,
)
from rftcost.time import iso_series
from rftcost.timeline import Timeline, build_timeline

__all__ = [
    "BILL_SCHEMA",
    "DOCUMENT_CHUNK_JOBS",
    "Bill",
    "BillTotals",
    "Charge",
    "GraderLine",
    "JobBill",
    "bill_events",
    "bill_head",
    "document_notes",
    "job_sums",
    "orphan_records",
    "sum_totals",
    "totals_document",
    "totals_from_sums",
    "zero_sums",
]

BILL_SCHEMA = "rftcost.bill/v1"
_NS_PER_SECOND = 1_000_000_000

DOCUMENT_CHUNK_JOBS = 10_000
"""Jobs presented at a time when a document is written job by job: memory then grows
with the chunk (and the largest job), not with the log."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class GraderLine(BaseModel):
    """Tokens of one grader model in one charge, and their amount (R9, R13)."""

    model_config = _FROZEN

    grader_model: str
    """The grader model as the log names it."""
    input_tokens: int
    """Charged input tokens, cached included."""
    cached_input_tokens: int
    """Charged cached input tokens."""
    output_tokens: int
    """Charged output tokens."""
    lost_input_tokens: int = 0
    """Input tokens used in lost work, not charged."""
    lost_output_tokens: int = 0
    """Output tokens used in lost work, not charged."""
    amount: Decimal
    """Amount of the charged tokens, rounded once to the cent (after any per-job cap)."""


class Charge(BaseModel):
    """One charge: the work of one segment, issued at a billing event (R4)."""

    model_config = _FROZEN

    at: str
    """Time of the billing event, ISO 8601 UTC."""
    event: str
    """The billing event: succeeded, paused, cancelled or failed."""
    billable_seconds: float
    """Exact billable seconds of the segment (not rounded)."""
    lost_seconds: float
    """Billable-phase seconds lost to failures and rollbacks (R5, R6)."""
    billed_hours: Decimal
    """Hours charged, rounded as the policy says (R11)."""
    compute_amount: Decimal
    """Hours × hourly rate."""
    discount_amount: Decimal
    """Data-sharing discount, positive, subtracted (R12)."""
    grader_amount: Decimal
    """Sum of the grader lines."""
    amount: Decimal
    """compute − discount + grader."""
    capped: bool = False
    """True when the policy's per-job cap cut the charge (its compute, then its grader)."""
    compute_cut: Decimal = Decimal("0.00")
    """What the per-job cap cut from the compute amount (hours × rate − compute_amount)."""
    grader_cut: Decimal = Decimal("0.00")
    """What the per-job cap cut from the grader tokens' amount (its lines are cut with it)."""
    grader_lines: tuple[GraderLine, ...] = ()
    """One line per grader model."""


class JobBill(BaseModel):
    """The bill of one job: its time, its charges and its totals."""

    model_config = _FROZEN

    job_id: str
    """The job."""
    team: str | None
    """Who pays (``None``: unallocated)."""
    project: str | None
    """The job's project."""
    model: str | None
    """Base model billed (``None``: unknown, for an invalid job none of whose records
    could be read)."""
    status: str
    """succeeded, failed, cancelled, paused, running or invalid."""
    data_sharing: bool
    """Created with data sharing."""
    wall_seconds: float
    """First to last event."""
    billable_seconds: float | None
    """Charged billable seconds (exact)."""
    lost_seconds: float | None
    """Billable-phase seconds lost and not charged."""
    unbilled_seconds: float | None
    """Billable seconds after the last billing event (R8)."""
    excluded_seconds: dict[str, float]
    """Per non-billable phase, its measured time (R2)."""
    billed_hours: Decimal | None
    """Sum of the charges' hours."""
    compute_amount: Decimal | None
    """Sum of compute amounts (``None`` when the job is invalid)."""
    discount_amount: Decimal | None
    """Sum of discounts."""
    grader_amount: Decimal | None
    """Sum of grader amounts."""
    total_amount: Decimal | None
    """compute − discount + grader."""
    accrued_amount: Decimal | None
    """Provisional amount of unbilled work (R8), not in the total."""
    charges: tuple[Charge, ...]
    """The charges, in time order."""
    problems: tuple[str, ...]
    """Why the job is invalid, if it is."""


class BillTotals(BaseModel):
    """Totals over the valid jobs of a bill (R14: the sum of the jobs, to the cent)."""

    model_config = _FROZEN

    jobs: int
    """Jobs in the bill."""
    invalid_jobs: int
    """Jobs whose amount is unknown."""
    invalid_wall_seconds: float
    """Wall-clock time of the invalid jobs."""
    billed_hours: Decimal
    """Hours charged."""
    compute_amount: Decimal
    """Compute charged."""
    discount_amount: Decimal
    """Discounts granted."""
    grader_amount: Decimal
    """Grader tokens charged."""
    total_amount: Decimal
    """What the valid jobs cost."""
    accrued_amount: Decimal
    """Provisional, not charged yet."""


class Bill(BaseModel):
    """Charges of every job in a log, as frames (amounts in integer cents).

    ``jobs``, ``charges`` and ``grader_lines`` are the whole result; ``job()``,
    ``totals()`` and ``to_dict()`` present it with ``Decimal`` amounts.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    policy: Policy
    """The policy in force."""
    jobs: pd.DataFrame
    """One row per job; amounts ``*_cents`` (nullable: NA for invalid jobs)."""
    charges: pd.DataFrame
    """One row per charge of a valid job."""
    grader_lines: pd.DataFrame
    """One row per charge and grader model (``charge`` = -1 for accrued usage)."""
    excluded: pd.DataFrame
    """job_id, phase, seconds."""
    problems: pd.DataFrame
    """job_id, problem."""
    timeline: Timeline
    """The time behind the money (for explain, audit and charts)."""
    log: EventLog | None = None
    """What was read, when the bill was made from files."""

    def job_ids(self) -> list[str]:
        """Job ids in the bill, sorted."""
        return [str(j) for j in self.jobs["job_id"]]

    def job(self, job_id: str) -> JobBill:
        """One job's bill with Decimal amounts; ``UnknownJobError`` (an ``InputError`` and a
        ``KeyError``) if the job is not in the log."""
        rows = self.jobs[self.jobs["job_id"] == job_id]
        if rows.empty:
            raise UnknownJobError(job_id, known=len(self.jobs))
        return _job_bill(
            rows.iloc[0],
            self.charges[self.charges["job_id"] == job_id],
            self.grader_lines[self.grader_lines["job_id"] == job_id],
            self.excluded[self.excluded["job_id"] == job_id],
            self.problems[self.problems["job_id"] == job_id],
            self.policy,
        )

    def totals(self) -> BillTotals:
        """Sums over the valid jobs."""
        return totals_from_sums(job_sums(self.jobs), self.policy)

    def orphan_records(self) -> int:
        """Rejected records whose job could not be read (no id, or an id that is not
        text): they may belong to any job, or none, so an amount beyond the invalid jobs'
        is unknown, and every total says so rather than stand as the whole bill."""
        return orphan_records(self.log)

    def to_dict(self) -> dict[str, Any]:
        """The ``rftcost.bill/v1`` document (built in one pass over the frames).

        ``documents.write_bill`` writes the same document job by job; both are made
        of ``bill_head``, ``iter_job_documents`` and ``totals_document``.
        """
        return {
            **bill_head(self.policy),
            "jobs": [job for chunk in self.iter_job_documents() for job in chunk],
            # What reading chose or could not map (an OpenAI export's evidence used for a
            # job's state, conflicts): added to rftcost.bill/v1, which allows new fields.
            "notes": document_notes(self.log),
            "totals": totals_document(self.totals(), orphan_records=self.orphan_records()),
        }

    def jobs_table(self) -> pd.DataFrame:
        """One row per job with amounts as two-decimal strings (CSV, tables)."""
        return _jobs_table(self.jobs, self.policy)

    def iter_jobs_tables(self, chunk_jobs: int = DOCUMENT_CHUNK_JOBS) -> Iterator[pd.DataFrame]:
        """``jobs_table`` in pieces of ``chunk_jobs`` rows, in order (for streamed writing)."""
        for start in range(0, len(self.jobs), chunk_jobs):
            yield _jobs_table(self.jobs.iloc[start : start + chunk_jobs], self.policy)

    def iter_job_documents(
        self, chunk_jobs: int = DOCUMENT_CHUNK_JOBS
    ) -> Iterator[list[dict[str, Any]]]:
        """The ``rftcost.bill/v1`` objects of the jobs, ``chunk_jobs`` at a time, in order.

        Each frame is put in job order once (a stable sort, so a job's charges and lines
        keep their order) and cut at the chunks' bounds: a chunk costs its own jobs'
        rows, never a filter over the whole log.
        """
        jobs = self.jobs
        job_ids = _arrow_text(jobs["job_id"])
        lines = self.grader_lines[self.grader_lines["charge"] >= 0]
        by_job = [
            _in_job_order(frame, job_ids)
            for frame in (self.charges, lines, self.excluded, self.problems)
        ]
        for start in range(0, len(jobs), chunk_jobs):
            stop = min(start + chunk_jobs, len(jobs))
            charges, chunk_lines, excluded, problems = (
                frame.iloc[slice(*np.searchsorted(positions, [start, stop]))]
                for frame, positions in by_job
            )
            yield _job_documents(
                jobs.iloc[start:stop], charges, chunk_lines, excluded, problems, self.policy
            )


def orphan_records(log: EventLog | None) -> int:
    """Records of ``log`` rejected before their job could be read (``Bill.orphan_records``)."""
    if log is None or log.rejected.empty:
        return 0
    return int(log.rejected["job_id"].isna().sum())


def document_notes(log: EventLog | None) -> list[str]:
    """The ``notes`` of a bill document: what reading noted, and, when records were
    rejected before their job could be read, that some amount is unknown (the totals
    cover the jobs that were read; such a record may belong to any job, or none)."""
    if log is None:
        return []
    notes = list(log.notes)
    orphans = orphan_records(log)
    if orphans:
        records = "record" if orphans == 1 else "records"
        notes.append(
            f"{orphans} rejected {records} of no known job: an amount unknown is not in "
            "the totals (see the rejected records)"
        )
    return notes


def bill_head(policy: Policy) -> dict[str, Any]:
    """The keys of a ``rftcost.bill/v1`` document before its jobs, in order."""
    return {
        "schema": BILL_SCHEMA,
        "policy": policy.name,
        # Additive to bill/v1: the token prices' layers and versions (kind 14).
        "price_source": policy.price_table.price_source,
        "currency": policy.currency,
    }


def totals_document(totals: BillTotals, *, orphan_records: int = 0) -> dict[str, Any]:
    """The ``totals`` object of a ``rftcost.bill/v1`` document.

    Hours keep the policy's ``hours_decimals`` (the Decimal's own exponent, R11);
    amounts have two decimals. They are the sums of the valid jobs; where no job is valid
    but some job or record could not be billed (``invalid_jobs``, ``orphan_records``),
    there is no sum and they are ``null``, as an invalid job's amounts are: unknown, not
    0.00.
    """
    unknown = bool(totals.invalid_jobs or orphan_records) and totals.jobs == totals.invalid_jobs

    def amount(value: Decimal) -> str | None:
        return None if unknown else _fmt(value)

    return {
        "jobs": totals.jobs,
        "invalid_jobs": totals.invalid_jobs,
        "invalid_wall_seconds": totals.invalid_wall_seconds,
        "orphan_records": orphan_records,
        "billed_hours": None if unknown else _fmt_hours(totals.billed_hours),
        "compute_amount": amount(totals.compute_amount),
        "discount_amount": amount(totals.discount_amount),
        "grader_amount": amount(totals.grader_amount),
        "total_amount": amount(totals.total_amount),
        "accrued_amount": amount(totals.accrued_amount),
    }


_SUMMED = (
    "hour_units",
    "compute_cents",
    "discount_cents",
    "grader_cents",
    "total_cents",
    "accrued_cents",
)


def job_sums(jobs: pd.DataFrame) -> dict[str, int]:
    """Exact integer sums of a ``Bill.jobs`` frame: the totals' raw material (R14).

    Sums of disjoint sets of jobs (buckets) add up key by key to the sums of their
    union, so a bill written bucket by bucket has the totals of the bill made at once.
    """
    invalid = (jobs["status"] == "invalid").to_numpy(dtype=bool)
    valid = jobs[~invalid]
    sums = {column: int(valid[column].sum()) for column in _SUMMED}
    sums["jobs"] = len(jobs)
    sums["invalid_jobs"] = int(invalid.sum())
    sums["invalid_wall_ns"] = int(jobs["wall_ns"][invalid].sum())
    return sums


def zero_sums() -> dict[str, int]:
    """``job_sums`` of no job."""
    return dict.fromkeys((*_SUMMED, "jobs", "invalid_jobs", "invalid_wall_ns"), 0)


def totals_from_sums(sums: dict[str, int], policy: Policy) -> BillTotals:
    """``BillTotals`` from ``job_sums`` (added up over buckets, or of one bill)."""
    places = policy.rounding.hours_decimals
    return BillTotals(
        jobs=sums["jobs"],
        invalid_jobs=sums["invalid_jobs"],
        invalid_wall_seconds=float(sums["invalid_wall_ns"]) / _NS_PER_SECOND,
        billed_hours=Decimal(sums["hour_units"]).scaleb(-places),
        compute_amount=cents_to_decimal(sums["compute_cents"]),
        discount_amount=cents_to_decimal(sums["discount_cents"]),
        grader_amount=cents_to_decimal(sums["grader_cents"]),
        total_amount=cents_to_decimal(sums["total_cents"]),
        accrued_amount=cents_to_decimal(sums["accrued_cents"]),
    )


def sum_totals(parts: Sequence[BillTotals]) -> BillTotals:
    """Totals of several bills of disjoint jobs (bucket by bucket), to the cent.

    ``invalid_wall_seconds`` is a float sum here; ``job_sums`` keeps it exact.
    """
    fields = BillTotals.model_fields
    return BillTotals(**{name: sum(getattr(p, name) for p in parts) for name in fields})


def bill_events(
    events: pd.DataFrame,
    policy: Policy,
    *,
    reader_problems: pd.DataFrame | None = None,
    log: EventLog | None = None,
) -> Bill:
    """The billing kernel: canonical events of any number of complete jobs → a ``Bill``.

    Every rule's arithmetic (rate and price in force, hours, cents, cap, discount, token
    amounts) is a function of ``rftcost.rules``; the frames keep the column contracts
    of ``rftcost.contracts``, and carry the rate and price entry applied so later
    stages read them instead of computing a rule again.
    """
    timeline = build_timeline(events, policy, reader_problems)
    jobs = _job_frame(timeline, policy)
    rate_problems = _rate_problems(jobs, policy)
    usage, price_problems = _priced_usage(timeline.usage, policy)
    problems = pd.concat(
        [timeline.problems, rate_problems, price_problems], ignore_index=True
    ).drop_duplicates()
    invalid = jobs.index.isin(problems["job"])
    jobs = jobs.assign(status=jobs["status"].where(~invalid, "invalid"))

    lines = _mark_accrued(_grader_lines(usage, policy), timeline.charges)
    charges = _charge_amounts(timeline.charges, jobs, lines, policy)
    lines = _capped_lines(lines, charges)
    accrued = _accrued_amounts(timeline.accrued, jobs, lines, policy)
    jobs = _job_totals(jobs, charges, accrued, timeline)

    jobs = _with_unseen_jobs(jobs, reader_problems)
    valid_job = ~jobs["status"].eq("invalid")
    keep = valid_job.reindex(charges["job"]).to_numpy()
    # Names in the contracts' dtype (rftcost.contracts): pandas ``string`` in every frame,
    # taken as such from the jobs' column (not cast frame by frame).
    job_ids = jobs["job_id"].astype("string")
    charges = charges[keep].assign(job_id=job_ids.reindex(charges["job"][keep]).array)
    lines = lines[valid_job.reindex(lines["job"]).to_numpy()]
    lines = lines.assign(job_id=job_ids.reindex(lines["job"]).array)
    excluded = timeline.excluded.assign(
        job_id=job_ids.reindex(timeline.excluded["job"]).array,
        seconds=timeline.excluded["ns"] / _NS_PER_SECOND,
    )
    problem_frame = pd.DataFrame(
        {
            "job_id": job_ids.reindex(problems["job"]).to_numpy(),
            "problem": problems["problem"].to_numpy(),
        }
    )
    if reader_problems is not None and len(reader_problems):
        unseen = ~pd.Series(reader_problems["job_id"], dtype="string").isin(problem_frame["job_id"])
        if unseen.any():
            problem_frame = pd.concat(
                [problem_frame, reader_problems[unseen.to_numpy()]], ignore_index=True
            )
    names = {"job_id": "string"}
    return Bill(
        policy=policy,
        jobs=jobs.reset_index(drop=True),
        charges=charges.reset_index(drop=True),
        grader_lines=lines.reset_index(drop=True),
        excluded=excluded[["job_id", "phase", "seconds"]]
        .reset_index(drop=True)
        .astype({"phase": "string"}),
        problems=problem_frame.astype({**names, "problem": "string"}),
        timeline=timeline,
        log=log,
    )


def _with_unseen_jobs(jobs: pd.DataFrame, reader_problems: pd.DataFrame | None) -> pd.DataFrame:
    """Jobs whose every record was rejected are still reported, as invalid (never dropped)."""
    if reader_problems is None or reader_problems.empty:
        return jobs
    unseen = pd.Index(reader_problems["job_id"].dropna().unique()).difference(jobs["job_id"])
    if unseen.empty:
        return jobs
    codes = -1 - np.arange(len(unseen))
    ghosts = pd.DataFrame(
        {
            "job": codes,
            "job_id": pd.array(list(unseen), dtype="string"),
            "status": "invalid",
            "data_sharing": False,
            "wall_ns": 0,
            "n_charges": 0,
        },
        index=codes,
    )
    return pd.concat([jobs, ghosts]).sort_values("job_id")


# --- jobs and rates -------------------------------------------------------------------


def _job_frame(timeline: Timeline, policy: Policy) -> pd.DataFrame:
    jobs = timeline.jobs
    return pd.DataFrame(
        {
            "job": jobs.index,
            "job_id": jobs["job_id"].astype("string"),
            "team": jobs["team"].astype("string"),
            "project": jobs["project"].astype("string"),
            "model": jobs["model"].astype("string").fillna(policy.default_model),
            "status": jobs["status"].astype("string"),
            "data_sharing": jobs["data_sharing"].astype("boolean").fillna(False).astype(bool),
            "wall_ns": (jobs["last_ns"] - jobs["first_ns"]).astype("int64"),
        },
        index=jobs.index,
    )


def _rate_problems(jobs: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    models = jobs["model"].unique()
    unknown = [str(m) for m in models if policy.hourly_rate(str(m)) is None]
    missing = jobs[jobs["model"].isin(unknown)]
    return pd.DataFrame(
        {
            "job": missing["job"].to_numpy(),
            "problem": (
                "no hourly training rate for base model '"
                + missing["model"].astype(str).to_numpy()
                + f"' in policy {policy.name}"
            ),
        }
    )


# --- grader tokens (R9, R10, R13) -------------------------------------------------------


def _priced_usage(usage: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Grader usage with the token price entry in force (R10), and the usage without one."""
    prices = policy.price_table.to_frame()
    # In time order: a problem names the first usage of a model without a price.
    priced = price_in_force(usage.sort_values("ts"), prices).reset_index(drop=True)
    unpriced = priced["price_index"].isna()
    found = priced[~unpriced]
    exact = dict.fromkeys(
        ("price_index", "effective_ns", "input_pico", "cached_pico", "output_pico"), "int64"
    )
    if not unpriced.any():  # the usual log: every grader model has a price
        problems = pd.DataFrame(
            {"job": np.zeros(0, dtype="int64"), "problem": np.zeros(0, dtype=object)}
        )
        return found.astype(exact), problems
    missing = priced[unpriced].drop_duplicates(["job", "grader_model"])

    problems = pd.DataFrame(
        {
            "job": missing["job"].to_numpy(),
            "problem": (
                "no token price for grader model '"
                + missing["grader_model"].astype(str).to_numpy()
                + "' at "
                + iso_series(missing["ts"]).to_numpy()
                + f" in price table {policy.price_table.name} (R10)"
            ),
        }
    )
    return found.astype(exact), problems


_LINE_COLUMNS = {
    "job": "int64",
    "charge": "int64",
    "grader_model": "string",
    "input_tokens": "int64",
    "cached_input_tokens": "int64",
    "output_tokens": "int64",
    "lost_input_tokens": "int64",
    "lost_output_tokens": "int64",
    "amount_cents": "int64",
    "grader_family": "string",
    "price_index": "Int64",
    "price_entries": "int64",
    "price_effective_ns": "Int64",
    "price_source": "string",
}


def _grader_lines(usage: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One line per job, segment and grader model; tokens in lost work are not charged.

    Each line carries the price entry applied to its charged tokens (R10): the latest
    one when its segment straddles a price change (``price_entries`` > 1), none when
    every token was lost.

    On arrays: usage sorted by line (job, segment, model name) and price entry, so a
    line and an entry are runs of rows and their sums are sums over runs (a bill of a
    few hundred events would otherwise pay mostly for a dozen group-bys and joins).
    """
    columns = list(_LINE_COLUMNS)
    # R13 per grader model, a dated name resolved to its family (``o3-2025-04-16`` and
    # ``o3`` are one model: their tokens are summed before the one rounding).
    family = usage["grader_family"].astype("string")
    model_codes, models = pd.factorize(family.fillna(usage["grader_model"].astype("string")))
    usage = usage[model_codes >= 0]  # a usage without a model has no line (as a group-by)
    if usage.empty:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in _LINE_COLUMNS.items()})
    model_codes = model_codes[model_codes >= 0]
    name_codes, written = pd.factorize(usage["grader_model"])
    names = np.asarray(models, dtype=object).astype(str)
    name_rank = np.argsort(np.argsort(names, kind="stable"), kind="stable")
    job = usage["job"].to_numpy(dtype="int64")
    segment = usage["segment"].to_numpy(dtype="int64")
    price_index = usage["price_index"].to_numpy(dtype="int64")
    order = np.lexsort((price_index, name_rank[model_codes], segment, job))
    job, segment, model_codes, price_index = (
        a[order] for a in (job, segment, model_codes, price_index)
    )

    def in_line_order(column: pd.Series, dtype: Any = "int64") -> np.ndarray:
        values: np.ndarray = column.to_numpy(dtype=dtype)[order]
        return values

    charged = ~in_line_order(usage["lost"], bool)
    input_tokens = in_line_order(usage["input_tokens"])
    cached_tokens = in_line_order(usage["cached_input_tokens"].fillna(0))
    output_tokens = in_line_order(usage["output_tokens"])

    new_line = _run_starts(job) | _run_starts(segment) | _run_starts(model_codes)
    line_starts = np.flatnonzero(new_line)
    line_of_row = np.cumsum(new_line) - 1
    n_lines = len(line_starts)

    def line_sums(values: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        sums: np.ndarray = np.add.reduceat(np.where(chosen, values, 0), line_starts)
        return sums

    # Entries: the charged rows of a line priced at one entry (R10), a run of rows too.
    rows = np.flatnonzero(charged)
    entry_line = line_of_row[rows]
    entry_starts = np.flatnonzero(_run_starts(entry_line) | _run_starts(price_index[rows]))
    first_rows = rows[entry_starts]
    if len(rows):
        entry_tokens = [
            np.add.reduceat(t[rows], entry_starts)
            for t in (input_tokens, cached_tokens, output_tokens)
        ]
    else:
        entry_tokens = [np.zeros(0, dtype="int64")] * 3
    rate_columns = ("input_pico", "cached_pico", "output_pico")
    rates = [in_line_order(usage[column])[first_rows] for column in rate_columns]
    pico = token_pico(*entry_tokens, *rates)
    # Per line: the sum of its entries' amounts, how many entries, and the latest one.
    lined = entry_line[entry_starts]
    line_firsts = np.flatnonzero(_run_starts(lined))
    line_ends = np.append(line_firsts, len(lined))
    with_entry = lined[line_firsts]
    pico_values = np.zeros(n_lines, dtype=object if pico.dtype == object else "int64")
    if len(lined):
        pico_values[with_entry] = np.add.reduceat(pico, line_firsts)
    entries = np.zeros(n_lines, dtype="int64")
    entries[with_entry] = np.diff(line_ends)
    latest_rows = first_rows[line_ends[1:] - 1]
    no_entry = np.ones(n_lines, dtype=bool)
    no_entry[with_entry] = False
    latest_index = np.zeros(n_lines, dtype="int64")
    latest_index[with_entry] = price_index[latest_rows]
    latest_effective = np.zeros(n_lines, dtype="int64")
    latest_effective[with_entry] = in_line_order(usage["effective_ns"])[latest_rows]
    latest_family = np.full(n_lines, None, dtype=object)
    # Only the latest rows' names as Python objects (not every usage row's).
    latest_family[with_entry] = (
        usage["grader_family"].array.take(order[latest_rows]).to_numpy(dtype=object)
    )

    # A line shows the name its usage gives, or its family where it gives two spellings.
    name_codes = name_codes[order]
    one_name = np.minimum.reduceat(name_codes, line_starts) == np.maximum.reduceat(
        name_codes, line_starts
    )
    shown = np.where(
        one_name,
        np.asarray(written, dtype=object).astype(str)[name_codes[line_starts]],
        names[model_codes[line_starts]],
    )
    grader_model = pd.Series(pd.array(shown, dtype="string"))
    lines = pd.DataFrame(
        {
            "job": job[line_starts],
            "charge": segment[line_starts],
            "grader_model": grader_model,
            "input_tokens": line_sums(input_tokens, charged),
            "cached_input_tokens": line_sums(cached_tokens, charged),
            "output_tokens": line_sums(output_tokens, charged),
            "lost_input_tokens": line_sums(input_tokens, ~charged),
            "lost_output_tokens": line_sums(output_tokens, ~charged),
            "amount_cents": grader_cents(pico_values, policy),
            "grader_family": price_family(grader_model, policy.price_table.models),
            "price_index": pd.arrays.IntegerArray(latest_index, no_entry),
            "price_entries": entries,
            "price_effective_ns": pd.arrays.IntegerArray(latest_effective, no_entry),
            "price_source": _entry_sources(latest_family, latest_index, no_entry, policy),
        }
    )
    return lines.astype(_LINE_COLUMNS)[columns]


def _run_starts(keys: np.ndarray) -> np.ndarray:
    """Whether each row starts a run of equal keys (the first row does)."""
    new_run = np.ones(len(keys), dtype=bool)
    new_run[1:] = keys[1:] != keys[:-1]
    return new_run


def _entry_sources(
    family: np.ndarray, index: np.ndarray, no_entry: np.ndarray, policy: Policy
) -> pd.Series:
    """The source of each line's latest price entry (R10), NA where it has none."""
    sources = policy.price_table.entry_sources
    table = pd.MultiIndex.from_arrays(
        [sources["grader_family"].to_numpy(dtype=object), sources["price_index"].to_numpy()]
    )
    at = table.get_indexer(pd.MultiIndex.from_arrays([family, index]))
    at[no_entry] = -1
    return pd.Series(sources["price_source"].array.take(at, allow_fill=True))


def _mark_accrued(lines: pd.DataFrame, charges: pd.DataFrame) -> pd.DataFrame:
    """Lines of the segment after a job's last billing event get ``charge = -1`` (R8)."""
    line_job = lines["job"].to_numpy(dtype="int64")
    charge_job = charges["job"].to_numpy(dtype="int64")
    # Charges per job counted by job code (codes are 0, 1, ...), looked up by each line's.
    size = int(max(line_job.max(initial=-1), charge_job.max(initial=-1))) + 1
    if min(line_job.min(initial=0), charge_job.min(initial=0)) >= 0:
        of_line = np.bincount(charge_job, minlength=size)[line_job]
    else:
        n_charges = charges.groupby("job").size()
        of_line = n_charges.reindex(lines["job"], fill_value=0).to_numpy()
    after_last = lines["charge"].to_numpy() >= of_line
    return lines.assign(charge=np.where(after_last, -1, lines["charge"]))


# --- compute, discount, cap (R11, R12) ---------------------------------------------------


def _charge_amounts(
    charges: pd.DataFrame, jobs: pd.DataFrame, lines: pd.DataFrame, policy: Policy
) -> pd.DataFrame:
    charges = charges.copy()
    if policy.rounding.scope == RoundingScope.JOB:
        # R11, scope "job": exact seconds summed per job, rounded once on the last charge.
        job_ns = charges.groupby("job")["billable_ns"].transform("sum")
        is_last = charges["charge"] == charges.groupby("job")["charge"].transform("max")
        rounded_ns = job_ns.where(is_last, 0)
    else:
        rounded_ns = charges["billable_ns"]
    hours = hour_units(rounded_ns.astype("int64"), policy)
    rate = rate_units(jobs["model"].reindex(charges["job"]).reset_index(drop=True), policy)
    rate.index = charges.index
    compute = compute_cents(hours, rate, policy)
    grader = pd.Series(_charge_grader_cents(lines, charges), index=charges.index)
    kept_compute, kept_grader, capped = cap_charges(
        compute.astype("int64"), grader, charges["job"], policy
    )
    sharing = jobs["data_sharing"].reindex(charges["job"]).to_numpy(dtype=bool)
    discount = discount_cents(kept_compute, kept_grader, sharing, policy)
    return _with_columns(
        charges,
        hour_units=hours,
        compute_cents=kept_compute.astype("int64"),
        discount_cents=discount.astype("int64"),
        grader_cents=kept_grader.astype("int64"),
        amount_cents=(kept_compute - discount + kept_grader).astype("int64"),
        capped=capped.astype(bool),
        compute_cut_cents=(compute - kept_compute).astype("int64"),
        grader_cut_cents=(grader - kept_grader).astype("int64"),
        rate_units=rate,
        rate_places=rate_places(policy),
    )


def _capped_lines(lines: pd.DataFrame, charges: pd.DataFrame) -> pd.DataFrame:
    """The grader lines of a charge whose grader amount the per-job cap cut ("Policy"),
    cut with it so that they still add up to the charge: the charge's grader cents kept
    are shared among its lines in proportion to their amounts, by largest remainder
    in cents (``rules.shrink_shares``; the earlier line in the charge first on a tie)."""
    cut = charges["grader_cut_cents"].to_numpy() > 0
    if not cut.any():
        return lines
    capped = pd.MultiIndex.from_arrays([charges["job"][cut], charges["charge"][cut]])
    of_line = capped.get_indexer(pd.MultiIndex.from_arrays([lines["job"], lines["charge"]]))
    chosen = of_line >= 0
    kept = charges["grader_cents"].to_numpy(dtype="int64")[cut][of_line[chosen]]
    amounts = lines["amount_cents"].to_numpy(dtype="int64").copy()
    amounts[chosen] = shrink_shares(amounts[chosen], of_line[chosen], kept)
    return lines.assign(amount_cents=amounts)


def _charge_grader_cents(lines: pd.DataFrame, charges: pd.DataFrame) -> np.ndarray:
    """Per charge, the cents of its segment's grader lines (R9): exact integer sums by
    (job, charge) packed into one integer, found by a binary search; a group-by when
    the numbers do not pack."""
    chosen = lines["charge"].to_numpy() >= 0
    line_job = lines["job"].to_numpy(dtype="int64")[chosen]
    line_charge = lines["charge"].to_numpy(dtype="int64")[chosen]
    charge_job = charges["job"].to_numpy(dtype="int64")
    charge = charges["charge"].to_numpy(dtype="int64")
    width = int(max(line_charge.max(initial=0), charge.max(initial=0))) + 1
    n_jobs = int(max(line_job.max(initial=0), charge_job.max(initial=0))) + 1
    lowest = min(line_job.min(initial=0), charge_job.min(initial=0), charge.min(initial=0))
    if lowest < 0 or n_jobs * width >= 2**62:
        summed = lines[chosen].groupby(["job", "charge"])["amount_cents"].sum()
        wanted = pd.MultiIndex.from_arrays([charges["job"], charges["charge"]])
        found: np.ndarray = summed.reindex(wanted, fill_value=0).to_numpy(dtype="int64")
        return found
    keys, line_key = np.unique(line_job * width + line_charge, return_inverse=True)
    if not len(keys):
        return np.zeros(len(charges), dtype="int64")
    sums = np.zeros(len(keys), dtype="int64")
    np.add.at(sums, line_key.reshape(-1), lines["amount_cents"].to_numpy(dtype="int64")[chosen])
    charge_key = charge_job * width + charge
    at = np.minimum(np.searchsorted(keys, charge_key), len(keys) - 1)
    per_charge: np.ndarray = np.where(keys[at] == charge_key, sums[at], 0)
    return per_charge


def _with_columns(frame: pd.DataFrame, **columns: Any) -> pd.DataFrame:
    """``frame.assign(**columns)`` for new columns, built as one frame (adding columns one
    by one costs a copy of the column labels each)."""
    if set(columns) & set(frame.columns) or not frame.columns.is_unique:
        return frame.assign(**columns)
    values: dict[Any, Any] = {c: frame[c] for c in frame.columns}
    for name, column in columns.items():
        aligned = not isinstance(column, pd.Series) or column.index.equals(frame.index)
        values[name] = column if aligned else column.reindex(frame.index)
    return pd.DataFrame(values, index=frame.index)


def _accrued_amounts(
    accrued: pd.DataFrame, jobs: pd.DataFrame, lines: pd.DataFrame, policy: Policy
) -> pd.DataFrame:
    """Provisional amounts of the work after the last billing event (R8)."""
    hours = hour_units(accrued["billable_ns"].astype("int64"), policy)
    rate = rate_units(jobs["model"].reindex(accrued["job"]).reset_index(drop=True), policy)
    rate.index = accrued.index
    compute = compute_cents(hours, rate, policy).astype("int64")
    grader = pd.Series(_accrued_grader_cents(lines, accrued), index=accrued.index)
    sharing = jobs["data_sharing"].reindex(accrued["job"]).to_numpy(dtype=bool)
    discount = discount_cents(compute, grader, sharing, policy)
    return accrued.assign(accrued_cents=(compute - discount + grader).astype("int64"))


def _accrued_grader_cents(lines: pd.DataFrame, accrued: pd.DataFrame) -> np.ndarray:
    """Per accrued row, the cents of its job's lines after the last billing event (R8):
    exact integer sums by job code (codes are 0, 1, ...), a group-by for any other."""
    chosen = lines["charge"].to_numpy() < 0
    line_job = lines["job"].to_numpy(dtype="int64")[chosen]
    accrued_job = accrued["job"].to_numpy(dtype="int64")
    if min(line_job.min(initial=0), accrued_job.min(initial=0)) < 0:
        by_job = lines[chosen].groupby("job")["amount_cents"].sum()
        summed: np.ndarray = by_job.reindex(accrued["job"], fill_value=0).to_numpy(dtype="int64")
        return summed
    total = np.zeros(int(max(line_job.max(initial=-1), accrued_job.max(initial=-1))) + 1, "int64")
    np.add.at(total, line_job, lines["amount_cents"].to_numpy(dtype="int64")[chosen])
    per_row: np.ndarray = total[accrued_job]
    return per_row


def _job_totals(
    jobs: pd.DataFrame, charges: pd.DataFrame, accrued: pd.DataFrame, timeline: Timeline
) -> pd.DataFrame:
    """Per job, the sums of its charges and its accrued work (R8, R14); NA amounts for an
    invalid job (its amount is unknown). Sums by job position, on arrays."""
    n_jobs = len(jobs)
    charge_job = jobs.index.get_indexer(pd.Index(charges["job"]))

    def summed(column: str) -> np.ndarray:
        total = np.zeros(n_jobs, dtype="int64")
        np.add.at(total, charge_job, charges[column].to_numpy(dtype="int64"))
        return total

    # One accrued row per job; a last 0 for a job without one (-1).
    accrued_row = pd.Index(accrued["job"]).get_indexer(jobs.index)

    def accrued_of(column: str) -> np.ndarray:
        values: np.ndarray = np.append(accrued[column].to_numpy(dtype="int64"), 0)[accrued_row]
        return values

    invalid = (jobs["status"] == "invalid").to_numpy(dtype=bool)

    def known(values: np.ndarray) -> pd.arrays.IntegerArray:
        return pd.arrays.IntegerArray(values, invalid.copy())

    n_charges = np.bincount(charge_job, minlength=n_jobs).astype("int64")
    return _with_columns(
        jobs,
        billable_ns=known(summed("billable_ns")),
        lost_ns=known(summed("lost_ns") + accrued_of("lost_ns")),
        unbilled_ns=known(accrued_of("billable_ns")),
        hour_units=known(summed("hour_units")),
        compute_cents=known(summed("compute_cents")),
        discount_cents=known(summed("discount_cents")),
        grader_cents=known(summed("grader_cents")),
        total_cents=known(summed("amount_cents")),
        accrued_cents=known(accrued_of("accrued_cents")),
        n_charges=np.where(invalid, 0, n_charges),
    )


# --- presenting: Decimal values and the JSON document ---------------------------------


def _fmt(amount: Decimal | None) -> str | None:
    return None if amount is None else f"{amount:.2f}"


def _fmt_hours(hours: Decimal | None) -> str | None:
    return None if hours is None else str(hours)


def _dec(value: Any, places: int = 2) -> Decimal | None:
    if value is pd.NA or value is None:
        return None
    return Decimal(int(value)).scaleb(-places)


def _seconds(value: Any) -> float | None:
    if value is pd.NA or value is None:
        return None
    return int(value) / _NS_PER_SECOND


def _rows(frame: pd.DataFrame) -> Iterator[Any]:
    """A frame's rows as named tuples (one job's charges and lines, never a whole log).

    Typed ``Any``: each field's type follows its column's dtype, which the stubs
    cannot know.
    """
    return frame.itertuples(index=False)


def _job_bill(
    row: pd.Series,
    charges: pd.DataFrame,
    lines: pd.DataFrame,
    excluded: pd.DataFrame,
    problems: pd.DataFrame,
    policy: Policy,
) -> JobBill:

    places = policy.rounding.hours_decimals
    at = iso_series(charges["at"]).tolist() if len(charges) else []
    charge_models = []
    for position, charge in enumerate(_rows(charges)):
        charge_lines = lines[lines["charge"] == charge.charge]
        charge_models.append(
            Charge(
                at=at[position],
                event=str(charge.event),
                billable_seconds=charge.billable_ns / _NS_PER_SECOND,
                lost_seconds=charge.lost_ns / _NS_PER_SECOND,
                billed_hours=Decimal(int(charge.hour_units)).scaleb(-places),
                compute_amount=cents_to_decimal(charge.compute_cents),
                discount_amount=cents_to_decimal(charge.discount_cents),
                grader_amount=cents_to_decimal(charge.grader_cents),
                amount=cents_to_decimal(charge.amount_cents),
                capped=bool(charge.capped),
                compute_cut=cents_to_decimal(charge.compute_cut_cents),
                grader_cut=cents_to_decimal(charge.grader_cut_cents),
                grader_lines=tuple(
                    GraderLine(
                        grader_model=str(line.grader_model),
                        input_tokens=int(line.input_tokens),
                        cached_input_tokens=int(line.cached_input_tokens),
                        output_tokens=int(line.output_tokens),
                        lost_input_tokens=int(line.lost_input_tokens),
                        lost_output_tokens=int(line.lost_output_tokens),
                        amount=cents_to_decimal(line.amount_cents),
                    )
                    for line in _rows(charge_lines)
                ),
            )
        )
    return JobBill(
        job_id=str(row["job_id"]),
        team=None if pd.isna(row["team"]) else str(row["team"]),
        project=None if pd.isna(row["project"]) else str(row["project"]),
        # A job whose every record was rejected has no model to read (not "<NA>").
        model=None if pd.isna(row["model"]) else str(row["model"]),
        status=str(row["status"]),
        data_sharing=bool(row["data_sharing"]),
        wall_seconds=int(row["wall_ns"]) / _NS_PER_SECOND,
        billable_seconds=_seconds(row["billable_ns"]),
        lost_seconds=_seconds(row["lost_ns"]),
        unbilled_seconds=_seconds(row["unbilled_ns"]),
        excluded_seconds={
            str(phase): float(seconds)
            for phase, seconds in zip(excluded["phase"], excluded["seconds"], strict=True)
        },
        billed_hours=_dec(row["hour_units"], places),
        compute_amount=_dec(row["compute_cents"]),
        discount_amount=_dec(row["discount_cents"]),
        grader_amount=_dec(row["grader_cents"]),
        total_amount=_dec(row["total_cents"]),
        accrued_amount=_dec(row["accrued_cents"]),
        charges=tuple(charge_models),
        problems=tuple(str(p) for p in problems["problem"]),
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts of plain Python values, NA as ``None`` (what
    ``to_dict("records")`` gives, column by column instead of cell by cell)."""
    keys = [str(column) for column in frame.columns]
    columns = []
    for column in frame.columns:
        values = frame[column].tolist()
        if frame[column].hasnans:
            values = [None if value is pd.NA else value for value in values]
        columns.append(values)
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def _jobs_table(jobs: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """``Bill.jobs_table`` of some rows of ``Bill.jobs``."""
    places = policy.rounding.hours_decimals
    table = pd.DataFrame(
        {
            "job_id": jobs["job_id"],
            "team": jobs["team"],
            "project": jobs["project"],
            "model": jobs["model"],
            "status": jobs["status"],
            "data_sharing": jobs["data_sharing"],
            "wall_seconds": jobs["wall_ns"] / _NS_PER_SECOND,
            "billable_seconds": jobs["billable_ns"] / _NS_PER_SECOND,
            "lost_seconds": jobs["lost_ns"] / _NS_PER_SECOND,
            "unbilled_seconds": jobs["unbilled_ns"] / _NS_PER_SECOND,
            "billed_hours": units_text(jobs["hour_units"], places),
            "compute_amount": units_text(jobs["compute_cents"], 2),
            "discount_amount": units_text(jobs["discount_cents"], 2),
            "grader_amount": units_text(jobs["grader_cents"], 2),
            "total_amount": units_text(jobs["total_cents"], 2),
            "accrued_amount": units_text(jobs["accrued_cents"], 2),
            "charges": jobs["n_charges"],
        }
    )
    return table.reset_index(drop=True)


def _arrow_text(ids: pd.Series) -> Any:
    """``ids`` as an Arrow string array (no Python string per row when they are Arrow's)."""
    import pyarrow as pa

    return pa.array(ids.astype(str))


def _in_job_order(frame: pd.DataFrame, job_ids: Any) -> tuple[pd.DataFrame, np.ndarray]:
    """``frame`` (with a ``job_id`` column) sorted stably by its job's row in ``Bill.jobs``
    (whose ids are ``job_ids``), and those rows, sorted (-1, first: a job not in the bill,
    which no chunk takes). Looked up in Arrow: a pandas index of a million ids would make
    a Python string of each (the peak of such a bill's document)."""
    import pyarrow.compute as pc

    found = pc.index_in(_arrow_text(frame["job_id"]), value_set=job_ids)
    rows = found.fill_null(-1).to_numpy().astype("int64", copy=False)
    if len(rows) and bool((np.diff(rows) >= 0).all()):
        return frame, rows  # already in job order (a bill made at once): no copy
    order = np.argsort(rows, kind="stable")
    return frame.take(order), rows[order]


def _job_documents(
    jobs: pd.DataFrame,
    charges: pd.DataFrame,
    lines: pd.DataFrame,
    excluded: pd.DataFrame,
    problems: pd.DataFrame,
    policy: Policy,
) -> list[dict[str, Any]]:
    """Jobs as their ``rftcost.bill/v1`` objects: one linear pass per frame, no per-job
    filter (the frames hold these jobs' rows; ``lines`` only charged ones)."""

    places = policy.rounding.hours_decimals
    line_records = _records(
        pd.DataFrame(
            {
                "grader_model": lines["grader_model"].astype(str),
                "input_tokens": lines["input_tokens"].astype("int64"),
                "cached_input_tokens": lines["cached_input_tokens"].astype("int64"),
                "output_tokens": lines["output_tokens"].astype("int64"),
                "amount": units_text(lines["amount_cents"], 2),
            }
        )
    )
    lines_of: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for key, record in zip(
        zip(
            lines["job_id"].astype(str).tolist(), lines["charge"].astype(int).tolist(), strict=True
        ),
        line_records,
        strict=True,
    ):
        lines_of.setdefault(key, []).append(record)

    charge_records = _records(
        pd.DataFrame(
            {
                "at": iso_series(charges["at"]) if len(charges) else pd.Series([], dtype=str),
                "event": charges["event"].astype(str),
                "billable_seconds": charges["billable_ns"] / _NS_PER_SECOND,
                "lost_seconds": charges["lost_ns"] / _NS_PER_SECOND,
                "billed_hours": units_text(charges["hour_units"], places),
                "compute_amount": units_text(charges["compute_cents"], 2),
                "discount_amount": units_text(charges["discount_cents"], 2),
                "grader_amount": units_text(charges["grader_cents"], 2),
                "amount": units_text(charges["amount_cents"], 2),
                "capped": charges["capped"].astype(bool),
            }
        )
    )
    charges_of: dict[str, list[dict[str, Any]]] = {}
    for job_id, charge, record in zip(
        charges["job_id"].astype(str).tolist(),
        charges["charge"].astype(int).tolist(),
        charge_records,
        strict=True,
    ):
        record["grader_lines"] = lines_of.get((job_id, charge), [])
        charges_of.setdefault(job_id, []).append(record)

    excluded_of: dict[str, dict[str, float]] = {}
    for job_id, phase, seconds in zip(
        excluded["job_id"].astype(str).tolist(),
        excluded["phase"].astype(str).tolist(),
        excluded["seconds"].astype(float).tolist(),
        strict=True,
    ):
        excluded_of.setdefault(job_id, {})[phase] = seconds
    problems_of: dict[str, list[str]] = {}
    for job_id, problem in zip(
        problems["job_id"].astype(str).tolist(),
        problems["problem"].astype(str).tolist(),
        strict=True,
    ):
        problems_of.setdefault(job_id, []).append(problem)

    table = _jobs_table(jobs, policy).astype({"data_sharing": bool})
    # The columns in the document's key order, those filled below included: each record
    # comes out of ``_records`` with its keys in order (no second dict per job).
    placed = table.assign(excluded_seconds=None, charges=None, problems=None)[list(_JOB_KEYS)]
    records = _records(placed)
    for record in records:
        job_id = record["job_id"]
        record["excluded_seconds"] = excluded_of.get(job_id, {})
        record["charges"] = charges_of.get(job_id, [])
        record["problems"] = problems_of.get(job_id, [])
        if record["status"] == "invalid":
            for column in ("billable_seconds", "lost_seconds", "unbilled_seconds"):
                record[column] = None
    return records


_JOB_KEYS = (
    "job_id",
    "team",
    "project",
    "model",
    "status",
    "data_sharing",
    "wall_seconds",
    "billable_seconds",
    "lost_seconds",
    "unbilled_seconds",
    "excluded_seconds",
    "billed_hours",
    "compute_amount",
    "discount_amount",
    "grader_amount",
    "total_amount",
    "accrued_amount",
    "charges",
    "problems",
)
