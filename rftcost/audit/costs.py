"""The project/day audit of OpenAI Costs API exports (``basis = "project_day"``).

A Costs API export names no job: its costs are compared per project (the logs'
``project``, through ``project_map``) and UTC day (the day of each charge's billing
event), per category (compute, data-sharing discount, grader tokens); an export
without line items is compared per day's total. Every cell compared is a
``Comparison``; cells that differ are findings, cells that agree may leave a note
(the vendor's own quantity agrees or not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rftcost.audit.document import AuditReport, Comparison, build_report
from rftcost.audit.frames import among, rows_of
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
    NS_PER_DAY,
    entry_pico,
    pico_to_micro,
)
from rftcost.audit.wording import (
    billed_quantity_text,
    cell_day_total,
    cell_invalid,
    cell_mismatch,
    cell_price,
    cell_quantities,
    cell_rounding,
    cell_unbilled,
    cell_unknown_project,
    day_total_agrees,
    money_text,
    price_entry_evidence,
    quantity_note,
    quantity_text,
    which_entry_gives,
)
from rftcost.invoice import Invoice, is_hour_unit, is_token_unit
from rftcost.prices import resolve_model_family

__all__ = ["ProjectDayAudit"]

_CATEGORIES = ("compute", "data_sharing_discount", "grader_tokens")
_DAY_TOTAL = "day_total"
"""Cell of a project and day whose export lines name no line item: only the total compares."""


@dataclass
class ProjectDayAudit:
    """The comparison of a Costs API export, per project, UTC day and category."""

    invoice: Invoice
    bill: Any
    tolerance: Decimal
    project_map: dict[str, str] = field(default_factory=dict)
    _expected_micro: int = 0
    _billed_micro: int = 0
    _invoice_micro: int = 0
    _unchecked_micro: int = 0
    _unchecked_lines: int = 0
    _unverifiable_micro: int = 0
    """Of the unchecked money, the cells invalid jobs may have charges in (errors)."""
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    _known: set[str] = field(default_factory=set)
    _unplaced: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    _export_projects: tuple[str, ...] = ()
    _day_totals: bool = False
    _unpriced: list[str] = field(default_factory=list)
    _by_project: bool = False

    def comparison(self) -> str:
        return (
            "per project and UTC day: the Costs API export names no jobs, so each charge is placed "
            "on its billing event's day (UTC) under its job's project and compared per category "
            "(compute, data-sharing discount, grader tokens)"
            + (
                "; where the export names no line item (no group_by=line_item), the day's total "
                "is compared"
                if self._day_totals
                else ""
            )
        )

    @property
    def currency(self) -> str:
        return str(self.bill.policy.currency)

    def report(self) -> AuditReport:
        """Run the comparison and report it."""
        self.run()
        return build_report(
            invoice=self.invoice,
            bill=self.bill,
            tolerance=self.tolerance,
            comparison=self.comparison(),
            findings=self.findings,
            totals=(
                self._expected_micro,
                self._billed_micro,
                self._invoice_micro,
                self._unchecked_micro,
            ),
            notes=self.notes,
            comparisons=self.comparisons,
            unverifiable=self._unverifiable_micro,
            unnamed_project="(none)" if self._by_project else "(all)",
            unpriced_jobs=self._unpriced,
            unchecked_lines=self._unchecked_lines,
        )

    def _lines(self) -> pd.DataFrame:
        """The export's lines, with its project ids mapped to the logs' project names."""
        lines = self.invoice.lines
        if self.project_map:
            project = lines["project"].astype(object)
            mapped = project.map(lambda p: self.project_map.get(p, p) if isinstance(p, str) else p)
            lines = lines.assign(project=mapped.astype("string"))
        return lines

    def _expected(self, by_project: bool) -> pd.DataFrame:
        """Charges of the logs per project, day, category and job, with hours and tokens."""
        bill = self.bill
        charges = bill.charges.astype({"job_id": object})
        jobs = bill.jobs.assign(job_id=bill.jobs["job_id"].astype(str)).set_index("job_id")
        project = jobs["project"].reindex(charges["job_id"]).astype("string").fillna("").to_numpy()
        day = (
            pd.to_datetime(
                (charges["at"].astype("int64") // NS_PER_DAY) * NS_PER_DAY, unit="ns", utc=True
            )
            .dt.strftime("%Y-%m-%d")
            .to_numpy()
        )
        self._known = {str(p) for p in project}
        if not by_project:
            project = np.full(len(charges), "", dtype=object)
        places = int(bill.policy.rounding.hours_decimals)
        grader = bill.grader_lines[bill.grader_lines["charge"] >= 0].astype({"job_id": object})
        tokens = (
            grader.assign(tokens=grader["input_tokens"] + grader["output_tokens"])
            .groupby(["job_id", "charge"])["tokens"]
            .sum()
        )
        key = pd.MultiIndex.from_arrays([charges["job_id"], charges["charge"]])
        charge_tokens = tokens.reindex(key).fillna(0).astype("int64").to_numpy()
        base = {
            "project": project,
            "day": day,
            "job_id": charges["job_id"].to_numpy(),
            "charge": charges["charge"].astype("int64").to_numpy(),
        }
        expected = pd.concat(
            [
                pd.DataFrame(
                    {
                        **base,
                        "line_type": category,
                        "micro": sign * charges[column].astype("int64").to_numpy() * MICRO_PER_CENT,
                        "quantity": quantity,
                    }
                )
                for category, column, sign, quantity in (
                    (
                        "compute",
                        "compute_cents",
                        1,
                        charges["hour_units"].astype("int64").to_numpy() * 10 ** (6 - places),
                    ),
                    ("data_sharing_discount", "discount_cents", -1, 0),
                    ("grader_tokens", "grader_cents", 1, charge_tokens * MICRO),
                )
            ],
            ignore_index=True,
        )
        expected = expected[(expected["micro"] != 0) | (expected["quantity"] != 0)]
        return expected

    def run(self) -> None:
        lines = self._lines()
        self._invoice_micro = int(lines["amount_micro"].sum())
        checked = lines["line_type"].isin([*_CATEGORIES, "unknown"])
        self._unchecked_micro = int(lines.loc[~checked, "amount_micro"].sum())
        self._unchecked_lines = int((~checked).sum())
        lines = lines[checked]
        self._billed_micro = int(lines["amount_micro"].sum())
        by_project = bool(lines["project"].notna().any())
        self._by_project = by_project
        expected = self._expected(by_project)
        self._expected_micro = int(expected["micro"].sum())
        billed_lines = lines.assign(
            project=lines["project"].fillna("").astype(str),
            day=lines["day"].astype(str),
            line_type=lines["line_type"].astype(str),
        )
        # An export without line items (no group_by=line_item) cannot tell compute, grader
        # tokens and discounts apart: its project's day is compared as one total.
        whole = billed_lines.loc[billed_lines["line_type"] == "unknown", ["project", "day"]]
        whole_keys = set(zip(whole["project"], whole["day"], strict=True))
        self._day_totals = bool(whole_keys)
        if whole_keys:
            fold = pd.Series(
                [k in whole_keys for k in zip(expected["project"], expected["day"], strict=True)],
                index=expected.index,
                dtype=bool,
            )
            expected = expected.assign(
                line_type=expected["line_type"].mask(fold, _DAY_TOTAL),
                quantity=expected["quantity"].mask(fold, 0),
            )
            fold_lines = pd.Series(
                [
                    k in whole_keys
                    for k in zip(billed_lines["project"], billed_lines["day"], strict=True)
                ],
                index=billed_lines.index,
                dtype=bool,
            )
            billed_lines = billed_lines.assign(
                line_type=billed_lines["line_type"].mask(fold_lines, _DAY_TOTAL)
            )
        hours = is_hour_unit(billed_lines["unit"])
        tokens = is_token_unit(billed_lines["unit"])
        # The vendor's own quantity (R-independent cross-check): hours for compute lines given
        # in hours, tokens for grader lines given in tokens; unknown when a line lacks one.
        fits = billed_lines["quantity_micro"].notna() & (
            ((billed_lines["line_type"] == "compute") & hours)
            | ((billed_lines["line_type"] == "grader_tokens") & tokens)
        )
        billed_lines = billed_lines.assign(
            q=billed_lines["quantity_micro"].where(fits, 0).astype("int64"),
            q_missing=~fits,
        )
        keys = ["project", "day", "line_type"]
        exp = expected.groupby(keys, as_index=False).agg(
            expected=("micro", "sum"),
            expected_q=("quantity", "sum"),
            jobs=("job_id", lambda j: tuple(sorted(set(j)))),
            n=("micro", "size"),
        )
        got = billed_lines.groupby(keys, as_index=False).agg(
            billed=("amount_micro", "sum"),
            billed_q=("q", "sum"),
            q_missing=("q_missing", "any"),
            lines=("line", list),
            descriptions=("description", lambda d: tuple(sorted({str(x) for x in d}))),
        )
        cells = exp.merge(got, on=keys, how="outer")
        cells = cells.assign(
            expected=cells["expected"].fillna(0).astype("int64"),
            billed=cells["billed"].fillna(0).astype("int64"),
            expected_q=cells["expected_q"].fillna(0).astype("int64"),
            billed_q=cells["billed_q"].fillna(0).astype("int64"),
            q_missing=cells["q_missing"].astype("boolean").fillna(True).astype(bool),
        ).sort_values(keys)
        # Jobs that a by-project export cannot place: the logs give them no project.
        self._export_projects = tuple(
            sorted({p for p in billed_lines["project"] if p and p not in self._known})
        )
        if by_project:
            # Jobs whose project (or lack of one) is none of the export's: a mapping may place
            # them (--project-map).
            exported = set(billed_lines["project"])
            loose = expected[~among(expected["project"], exported)]
            self._unplaced = {
                str(d): tuple(sorted(set(zip(g["job_id"], g["project"], strict=True))))
                for d, g in loose.groupby("day")
            }
        per_job = expected.groupby(["project", "day", "line_type", "job_id"])["micro"].sum()
        places = int(self.bill.policy.rounding.hours_decimals)
        unknown_in = _invalid_jobs_by_cell(self.bill, cells, by_project)
        comparisons = []
        for row, invalid in zip(cells.pipe(rows_of), unknown_in, strict=True):
            comparisons.append(self._comparison(row, places))
            if invalid:
                self._unknown_cell(row, invalid)
            elif int(row.expected) != int(row.billed):
                self._cell_finding(row, per_job, places, expected)
            elif str(row.line_type) == _DAY_TOTAL:
                self.notes.append(
                    day_total_agrees(
                        self._where(row), int(row.billed), int(row.expected), self.currency
                    )
                )
            else:
                self._quantity_note(row, places)
        self.comparisons = comparisons
        # Invalid jobs in no cell of the export: their charges are unknown, and whether the
        # export rightly bills them nothing cannot be said (as per job: ``unpriced_jobs``).
        placed = {job for invalid in unknown_in for job in invalid}
        invalid_ids = self.bill.jobs.loc[self.bill.jobs["status"] == "invalid", "job_id"]
        self._unpriced = sorted({str(job) for job in invalid_ids} - placed)
        if self._unverifiable_micro:
            unknown_cells = sum(f.kind == "invalid_job" for f in self.findings)
            self.notes.append(
                f"{money_text(self._unverifiable_micro, self.currency)} billed for "
                f"{unknown_cells} cell(s) of project, day and category cannot be checked against"
                " the logs: invalid jobs (amount unknown) may have charges there; this money is"
                " in neither the expected nor the billed total, and each case is an error finding."
            )

    def _unknown_cell(self, row: Any, invalid: tuple[str, ...]) -> None:
        """A cell an invalid job may have charges in: an ``invalid_job`` error, its billed
        amount unchecked and out of both totals (as an invalid job's invoice lines are)."""
        billed, expected = int(row.billed), int(row.expected)
        self._billed_micro -= billed
        self._expected_micro -= expected
        self._unchecked_micro += billed
        self._unverifiable_micro += billed
        problems = self.bill.problems.astype({"job_id": str})
        reasons = problems[problems["job_id"].isin(invalid)]
        lines = tuple(int(n) for n in row.lines) if isinstance(row.lines, list) else ()
        self._unchecked_lines += len(lines)
        line_type = str(row.line_type)
        self.findings.append(
            Finding(
                kind="invalid_job",
                severity="error",
                job_id=invalid[0] if len(invalid) == 1 else None,
                invoice_line=lines[0] if lines else None,
                invoice_lines=lines,
                line_type=None if line_type == _DAY_TOTAL else line_type,
                expected=None,
                billed=micro_to_decimal(billed),
                project=str(row.project) or None,
                day=str(row.day),
                explanation=cell_invalid(
                    self._where(row),
                    "cost" if line_type == _DAY_TOTAL else line_type,
                    billed,
                    expected,
                    invalid,
                    self.currency,
                ),
                evidence=tuple(
                    Evidence(type="problem", description=f"{job}: {problem}", job_id=job)
                    for job, problem in zip(
                        reasons["job_id"], reasons["problem"].astype(str), strict=True
                    )
                ),
            )
        )

    def _where(self, row: Any) -> str:
        # Grouped by project, no project is the jobs (and lines) of none; ungrouped, all.
        unnamed = "(none)" if self._by_project else "(all)"
        return f"project {row.project or unnamed} on {row.day} (UTC)"

    def _comparison(self, row: Any, places: int) -> Comparison:
        unit = {"compute": "hours", "grader_tokens": "tokens"}.get(str(row.line_type))
        expected_q = billed_q = None
        if unit is not None:
            expected_q = Decimal(int(row.expected_q)).scaleb(-6)
            if unit == "hours":
                expected_q = expected_q.quantize(Decimal(1).scaleb(-places))
            if not bool(row.q_missing):
                billed_q = Decimal(int(row.billed_q)).scaleb(-6).normalize()
        jobs = row.jobs if isinstance(row.jobs, tuple) else ()
        return Comparison(
            project=str(row.project) or None,
            day=str(row.day),
            line_type=None if str(row.line_type) == _DAY_TOTAL else str(row.line_type),
            expected=micro_to_decimal(int(row.expected)),
            billed=micro_to_decimal(int(row.billed)),
            expected_quantity=expected_q,
            billed_quantity=billed_q,
            quantity_unit=unit,
            jobs=tuple(str(j) for j in jobs),
        )

    def _quantity_note(self, row: Any, places: int) -> None:
        """Amounts agree: say whether the vendor's own quantity agrees too, with both figures."""
        unit = {"compute": "hours", "grader_tokens": "tokens"}.get(str(row.line_type))
        if unit is None or bool(row.q_missing) or not isinstance(row.lines, list):
            return
        billed = billed_quantity_text(int(row.billed_q), unit)
        logs = quantity_text(int(row.expected_q), unit, places)
        same = int(row.billed_q) == int(row.expected_q)
        self.notes.append(
            quantity_note(
                self._where(row),
                str(row.line_type),
                int(row.billed),
                billed,
                int(row.expected),
                logs,
                same,
                self.currency,
            )
        )

    def _cell_finding(
        self, row: Any, per_job: pd.Series, places: int, expected: pd.DataFrame
    ) -> None:
        diff = int(row.billed) - int(row.expected)
        lines = tuple(int(n) for n in row.lines) if isinstance(row.lines, list) else ()
        jobs = row.jobs if isinstance(row.jobs, tuple) else ()
        line_type = str(row.line_type)
        category = "cost" if line_type == _DAY_TOTAL else line_type
        where = self._where(row)
        evidence = [
            Evidence(
                type="project_day",
                description=(
                    f"{job}: {money_text(int(per_job.get((row.project, row.day, line_type, job), 0)), self.currency)}"  # noqa: E501
                    f" of {category} charged on {row.day}"
                ),
                job_id=str(job),
            )
            for job in jobs[:20]
        ]
        unit = {"compute": "hours", "grader_tokens": "tokens"}.get(line_type)
        quantities = ""
        if unit is not None and lines and not bool(row.q_missing):
            q_diff = int(row.billed_q) - int(row.expected_q)
            billed_q = billed_quantity_text(int(row.billed_q), unit)
            expected_q = quantity_text(int(row.expected_q), unit, places)
            quantities = cell_quantities(billed_q, expected_q, q_diff, unit, places)
            evidence.append(
                Evidence(
                    type="quantity",
                    description=f"billed {billed_q} against {expected_q} in the logs",
                )
            )
        common: dict[str, Any] = {
            "job_id": None,
            "invoice_line": lines[0] if lines else None,
            "invoice_lines": lines,
            "line_type": None if line_type == _DAY_TOTAL else line_type,
            "expected": micro_to_decimal(int(row.expected)),
            "billed": micro_to_decimal(int(row.billed)),
            "project": str(row.project) or None,
            "day": str(row.day),
        }
        n = max(int(row.n) if not pd.isna(row.n) else 1, 1)
        kind: FindingKind
        severity: Severity | None = None
        unplaced = self._unplaced.get(str(row.day), ())
        billed, expected_micro = int(row.billed), int(row.expected)
        if row.project and row.project not in self._known and expected_micro == 0:
            kind = "unknown_job"
            if unplaced:
                # Not a charge for nothing: the logs' jobs of that day cannot be placed.
                severity = "warning"
            text = cell_unknown_project(
                billed, category, str(row.project), str(row.day), unplaced, self.currency
            )
        elif not lines:
            kind = "unbilled_job"
            placeable = bool(self._export_projects) and any(
                p == str(row.project) for _, p in self._unplaced.get(str(row.day), ())
            )
            text = cell_unbilled(
                category,
                where,
                expected_micro,
                jobs,
                str(row.project),
                self._export_projects if placeable else None,
                self.currency,
            )
        elif abs(diff) <= n * MICRO_PER_CENT and expected_micro != 0:
            kind = "rounding"
            text = cell_rounding(category, where, diff, self.currency)
        elif line_type == _DAY_TOTAL:
            kind = "overbilled_time" if diff > 0 else "underbilled_time"
            # The day's total includes every cost of the project (other APIs too): a
            # difference cannot be pinned on fine-tuning, so it is not an error.
            severity = "warning"
            text = cell_day_total(billed, where, expected_micro, jobs, self.currency)
        elif (
            line_type == "grader_tokens"
            and not bool(row.q_missing)
            and int(row.billed_q) == int(row.expected_q)
            and int(row.expected_q) > 0
        ):
            kind = "grader_price_mismatch"
            explained, price_evidence = _price_explanation(self.bill, row, expected)
            evidence.extend(price_evidence)
            text = cell_price(
                billed, where, int(row.billed_q), expected_micro, explained, self.currency
            )
            quantities = ""
        else:
            kind = {
                "compute": "overbilled_time" if diff > 0 else "underbilled_time",
                "data_sharing_discount": "missing_discount",
                "grader_tokens": "grader_tokens_mismatch",
            }[line_type]
            text = cell_mismatch(billed, line_type, where, expected_micro, jobs, self.currency)
        if kind not in ("unknown_job", "unbilled_job"):
            text += quantities
        if severity is None:
            severity = (
                "info"
                if kind == "rounding"
                else ("warning" if kind == "unbilled_job" else severity_of(diff))
            )
        self.findings.append(
            Finding(
                kind=kind, severity=severity, explanation=text, evidence=tuple(evidence), **common
            )
        )


def _invalid_jobs_by_cell(
    bill: Any, cells: pd.DataFrame, by_project: bool
) -> list[tuple[str, ...]]:
    """Per cell, the invalid jobs of the logs that may have charges in it: of its project
    (any project when theirs is unknown) and with events on its day, from their first
    to their last (a charge falls on some billing event's day between); any day when a
    record of the job could not be read (its time, a billing event's, is unknown). Such
    a cell's expected amount is unknown: it cannot be checked, never "matches" nor
    "overbilled" on the valid jobs alone."""
    jobs = bill.jobs.loc[bill.jobs["status"] == "invalid", ["job_id", "project"]]
    times = bill.timeline.jobs[["job_id", "first_ns", "last_ns"]].astype({"job_id": str})
    spans = jobs.astype({"job_id": str}).merge(times, on="job_id", how="left")
    if by_project:
        spans = spans.assign(project=spans["project"].astype("string"))
    else:
        spans = spans.assign(project="")
    if spans.empty or cells.empty:
        return [()] * len(cells)
    rejected = bill.log.rejected["job_id"] if bill.log is not None else pd.Series([])
    undated = spans["first_ns"].isna() | spans["job_id"].isin(rejected.dropna().astype(str))
    dated = spans[~undated]
    first = dated["first_ns"].astype("int64").to_numpy() // NS_PER_DAY
    days = dated["last_ns"].astype("int64").to_numpy() // NS_PER_DAY - first + 1
    row = np.repeat(np.arange(len(dated)), days)
    offset = np.arange(len(row)) - np.repeat(np.cumsum(days) - days, days)
    touched = pd.DataFrame(
        {
            "job_id": dated["job_id"].to_numpy()[row],
            "project": dated["project"].to_numpy()[row],
            "day": pd.to_datetime((first[row] + offset) * NS_PER_DAY, unit="ns", utc=True)
            .strftime("%Y-%m-%d")
            .to_numpy(),
        }
    )
    anyday = spans.loc[undated, ["job_id", "project"]].assign(day=pd.NA)
    touched = pd.concat([touched, anyday], ignore_index=True)
    where = cells[["project", "day"]].drop_duplicates()
    found = pd.concat(
        # What is unknown of a job (its project, its days) matches every cell.
        [
            touched[mask].drop(columns=unknown).merge(where, on=keys, how=how)
            for mask, unknown, keys, how in (
                (
                    touched["project"].notna() & touched["day"].notna(),
                    [],
                    ["project", "day"],
                    "inner",
                ),
                (
                    touched["project"].notna() & touched["day"].isna(),
                    ["day"],
                    ["project"],
                    "inner",
                ),
                (
                    touched["project"].isna() & touched["day"].notna(),
                    ["project"],
                    ["day"],
                    "inner",
                ),
                (
                    touched["project"].isna() & touched["day"].isna(),
                    ["project", "day"],
                    None,
                    "cross",
                ),
            )
        ],
        ignore_index=True,
    ).drop_duplicates()
    by_cell = found.sort_values("job_id").groupby(["project", "day"])["job_id"].agg(tuple)
    keys = pd.MultiIndex.from_frame(cells[["project", "day"]])
    return [jobs if isinstance(jobs, tuple) else () for jobs in by_cell.reindex(keys)]


def _price_explanation(bill: Any, row: Any, expected: pd.DataFrame) -> tuple[str, list[Evidence]]:
    """Token counts agree and amounts differ: which price entry gives the billed amount."""
    cell = expected[
        (expected["project"] == row.project)
        & (expected["day"] == row.day)
        & (expected["line_type"] == "grader_tokens")
    ]
    grader = bill.grader_lines[bill.grader_lines["charge"] >= 0].astype({"job_id": object})
    used = grader.merge(cell[["job_id", "charge"]].drop_duplicates(), on=["job_id", "charge"])
    table = bill.policy.price_table
    families = sorted({resolve_model_family(str(m), table.models) for m in used["grader_model"]})
    if len(families) != 1:
        return (
            "Several grader models share the day, so the entry cannot be singled out.",
            [],
        )
    family = families[0]
    entries = table.models.get(family, ())
    uncached = int((used["input_tokens"] - used["cached_input_tokens"]).sum())
    cached = int(used["cached_input_tokens"].sum())
    output = int(used["output_tokens"].sum())
    day_start = datetime.fromisoformat(str(row.day)).replace(tzinfo=UTC)
    in_force = [e for e in entries if e.effective_from <= day_start + timedelta(days=1)]
    evidence = []
    match = None
    for entry in entries:
        micro = pico_to_micro(
            entry_pico(entry, table.unit_tokens, uncached, cached, output), bill.policy
        )
        if abs(micro - int(row.billed)) <= MICRO_PER_CENT:
            match = entry
        evidence.append(
            price_entry_evidence(
                family,
                entry,
                micro,
                str(bill.policy.currency),
                in_force=bool(in_force) and entry is in_force[-1],
            )
        )
    current = in_force[-1] if in_force else None
    if match is not None and match is not current:
        return (
            which_entry_gives(family, match, current, on_day=str(row.day)),
            evidence,
        )
    return (
        f"No {family} price entry gives the billed amount for these tokens.",
        evidence,
    )
