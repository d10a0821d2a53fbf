"""Spend per team, project, model or job, per day, week or month, against budgets.

``spend(bill, by="team", period="month")`` sums the bill's charges into one row
per period and group. A charge belongs to the period of its billing event
(``bill.charges.at``, UTC), never to the time its work was done: that is when
the money was charged (R4). Jobs without a team appear under ``unallocated``.

Everything is a group-by over ``bill.charges`` in integer cents; ``Decimal``
values and two-decimal strings appear only when the report is presented.
Invalid jobs have no charges (their amount is unknown, not $0): the report
lists them so that a reader knows spend may be missing.

Period labels: a day is ``2025-06-01``, a week its ISO week ``2025-W23``
(Monday to Monday, UTC), a month ``2025-06``. Budgets (``team,period,amount``)
use the same labels; a budget is checked against the charges of its own period
whatever granularity the report shows.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from rftcost._callable import make_module_callable
from rftcost.billing import Bill
from rftcost.errors import InputError
from rftcost.job_settings import puts_payer_in_doubt
from rftcost.money import (
    RoundingMode,
    budget_amount,
    cents_to_decimal,
    divide_round,
    format_cents,
    to_minor_units,
)
from rftcost.time import iso_seconds, iso_seconds_from_ns

__all__ = [
    "SPEND_SCHEMA",
    "UNALLOCATED",
    "Budget",
    "BudgetStatus",
    "Budgets",
    "PeriodKind",
    "SpendGroup",
    "SpendReport",
    "SpendTotals",
    "Window",
    "invalid_job_spans",
    "load_budgets",
    "period_bounds",
    "spend",
    "timeless_invalid_jobs",
]

SPEND_SCHEMA = "rftcost.spend/v1"
UNALLOCATED = "unallocated"
"""Group label of charges whose job has no team (or project)."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class SpendGroup(StrEnum):
    """What spend is grouped by."""

    team = "team"
    project = "project"
    model = "model"
    job = "job"


class PeriodKind(StrEnum):
    """Calendar periods in UTC."""

    day = "day"
    week = "week"
    month = "month"


# --- periods and windows ----------------------------------------------------------------

_LABEL_PATTERNS = {
    PeriodKind.day: re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII),
    PeriodKind.week: re.compile(r"^(\d{4})-W(\d{2})$", re.ASCII),
    PeriodKind.month: re.compile(r"^(\d{4})-(\d{2})$", re.ASCII),
}


def period_bounds(label: str) -> tuple[PeriodKind, datetime, datetime]:
    """``"2025-06"`` → (month, 2025-06-01T00:00Z, 2025-07-01T00:00Z); else ``ValueError``."""
    text = label.strip()
    for kind, pattern in _LABEL_PATTERNS.items():
        match = pattern.match(text)
        if not match:
            continue
        numbers = [int(g) for g in match.groups()]
        try:
            if kind is PeriodKind.day:
                start = date(numbers[0], numbers[1], numbers[2])
                end = start + timedelta(days=1)
            elif kind is PeriodKind.week:
                start = date.fromisocalendar(numbers[0], numbers[1], 1)
                end = start + timedelta(days=7)
            else:
                start = date(numbers[0], numbers[1], 1)
                end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        except (ValueError, OverflowError):  # 2025-W99, 2025-02-30, 2025-13: said in words
            raise ValueError(f"no such {_KIND_WORDS[kind]}: {label!r}") from None
        if not _FIRST_MOMENT <= _midnight(start) < _midnight(end) <= _LAST_MOMENT:
            raise ValueError(f"{label!r} is out of range (1677-09-22 to 2262-04-11)")
        return kind, _midnight(start), _midnight(end)
    raise ValueError(
        f"{label!r} is not a period: use a day (2025-06-01), an ISO week (2025-W23)"
        " or a month (2025-06)"
    )


_KIND_WORDS = {PeriodKind.day: "day", PeriodKind.week: "ISO week", PeriodKind.month: "month"}

# Times a nanosecond timestamp holds (charges' times are nanoseconds): pandas' own bounds.
_FIRST_MOMENT = datetime(1677, 9, 22, tzinfo=UTC)
_LAST_MOMENT = datetime(2262, 4, 11, tzinfo=UTC)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _period_starts(at_ns: pd.Series, kind: PeriodKind) -> pd.Series:
    """Start (ns, UTC) of the period each instant falls in; vectorized."""
    stamps = pd.to_datetime(at_ns.astype("int64"), unit="ns", utc=True).dt.tz_convert(None)
    days = stamps.dt.floor("D")
    if kind is PeriodKind.day:
        starts = days
    elif kind is PeriodKind.week:
        starts = days - pd.to_timedelta(stamps.dt.day_of_week, unit="D")
    else:
        starts = days - pd.to_timedelta(stamps.dt.day - 1, unit="D")
    return starts.astype("datetime64[ns]").astype("int64")


def _label_of(start_ns: int, kind: PeriodKind) -> str:
    start = datetime.fromtimestamp(start_ns // 1_000_000_000, tz=UTC)
    if kind is PeriodKind.day:
        return start.strftime("%Y-%m-%d")
    if kind is PeriodKind.week:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.strftime("%Y-%m")


def _ns(moment: datetime) -> int:
    return int(pd.Timestamp(moment).value)


class Window(BaseModel):
    """A half-open time window ``[start, end)`` in UTC; either bound may be open."""

    model_config = _FROZEN

    start: datetime | None = None
    """Inclusive start (UTC), or None for no lower bound."""
    end: datetime | None = None
    """Exclusive end (UTC), or None for no upper bound."""

    @classmethod
    def parse(cls, text: str) -> Window:
        """``"2025-06-01..2025-07-01"`` (dates or ISO datetimes; a side may be empty)."""
        if ".." not in text:
            raise InputError(
                "a window is START..END",
                path="--window",
                value=text,
                hint="for example 2025-06-01..2025-07-01 (either side may be empty)",
            )
        left, right = text.split("..", 1)
        start = _parse_moment(left, text) if left.strip() else None
        end = _parse_moment(right, text) if right.strip() else None
        if start is not None and end is not None and start >= end:
            raise InputError(
                "the window's start must be before its end", path="--window", value=text
            )
        return cls(start=start, end=end)

    def bounds_ns(self) -> tuple[int | None, int | None]:
        """The bounds in nanoseconds since the epoch."""
        return (
            None if self.start is None else _ns(self.start),
            None if self.end is None else _ns(self.end),
        )

    def mask(self, at_ns: pd.Series) -> pd.Series:
        """Which instants fall inside the window."""
        start, end = self.bounds_ns()
        inside = pd.Series(True, index=at_ns.index)
        if start is not None:
            inside &= at_ns >= start
        if end is not None:
            inside &= at_ns < end
        return inside

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether ``[start, end)`` meets the window."""
        return (self.end is None or start < self.end) and (self.start is None or end > self.start)

    def covers(self, start_ns: int, end_ns: int) -> bool:
        """Whether ``[start_ns, end_ns)`` lies wholly inside the window."""
        start, end = self.bounds_ns()
        return (start is None or start <= start_ns) and (end is None or end_ns <= end)

    def meets(self, first_ns: pd.Series, last_ns: pd.Series) -> pd.Series:
        """Which spans ``[first_ns, last_ns]`` meet the window."""
        start, end = self.bounds_ns()
        meets = pd.Series(True, index=first_ns.index)
        if end is not None:
            meets &= first_ns < end
        if start is not None:
            meets &= last_ns >= start
        return meets

    def label(self) -> str:
        """``2025-06-01T00:00:00Z..2025-07-01T00:00:00Z`` (open sides empty)."""
        return f"{iso_seconds(self.start) or ''}..{iso_seconds(self.end) or ''}"


def _parse_moment(text: str, whole: str) -> datetime:
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"cannot read {value!r} as a date or an ISO 8601 time",
            path="--window",
            value=whole,
            hint="for example 2025-06-01..2025-07-01",
        ) from None
    if moment.tzinfo is None:  # a date or a time without offset: UTC, as every period
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00: before year 1 in UTC
        moment = _FIRST_MOMENT - timedelta(days=1)
    if not _FIRST_MOMENT <= moment <= _LAST_MOMENT:
        raise InputError(
            f"{value!r} is out of range (1677-09-22 to 2262-04-11)", path="--window", value=whole
        )
    return moment


# --- budgets ----------------------------------------------------------------------------


class Budget(BaseModel):
    """One budget: what a team may spend in a period."""

    model_config = _FROZEN

    team: str
    """The team (``unallocated`` for jobs without a team)."""
    period: str
    """A day, ISO week or month label (``2025-06``)."""
    amount: Decimal
    """The budget, in the policy's currency (whole cents)."""
    line: int | None = None
    """Line of the budgets file it came from."""
    currency: str | None = None
    """The currency the file names for it (a ``currency`` column), if any: it must be
    the bill's, as budgets and charges are compared with no conversion."""

    @field_validator("amount", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Decimal:
        if isinstance(value, (bool, float)):  # refused: it may already be inexact
            raise ValueError(f"refusing {value!r}: a budget is a Decimal, int or str")
        return budget_amount(value)


class Budgets(BaseModel):
    """Budgets read from a file (or built in code)."""

    model_config = _FROZEN

    items: tuple[Budget, ...]
    """The budgets, in file order."""
    source: str | None = None
    """The file they came from."""

    def check_currency(self, currency: str) -> None:
        """Refuse a budget the file says is in another currency than ``currency`` (the
        bill's): an amount in EUR compared with charges in USD would say nothing true."""
        for item in self.items:
            if item.currency is not None and item.currency != currency:
                raise InputError(
                    f"a budget in {item.currency} where the charges are in {currency}"
                    " (budgets are compared with no conversion)",
                    path=self.source or "budgets",
                    line=item.line,
                    column="currency",
                    value=item.currency,
                    hint=f"give the budgets in {currency}, or bill under a policy in"
                    f" {item.currency}",
                )

    def frame(self) -> pd.DataFrame:
        """team, period, kind, start_ns, end_ns, budget_cents."""
        rows = []
        for item in self.items:
            kind, start, end = period_bounds(item.period)
            rows.append(
                {
                    "team": item.team,
                    "period": item.period,
                    "kind": kind.value,
                    "start_ns": _ns(start),
                    "end_ns": _ns(end),
                    "budget_cents": to_minor_units(item.amount, RoundingMode.HALF_UP),
                }
            )
        columns = ["team", "period", "kind", "start_ns", "end_ns", "budget_cents"]
        return pd.DataFrame(rows, columns=columns).astype(
            {"start_ns": "int64", "end_ns": "int64", "budget_cents": "int64"}
        )


def _budget_row(raw: str, source: Path, number: int) -> list[str]:
    """One line of a budgets file as cells: a record is one line (a quoted field cannot
    hold a line break, which would misnumber every later line)."""
    try:
        return next(csv.reader([raw], strict=True), [])
    except csv.Error:
        raise InputError(
            "a quoted field that does not end on its line",
            path=source,
            line=number,
            value=raw[:60],
            hint="a team or period cannot hold a line break; close the quote on its line",
        ) from None


def load_budgets(path: str | Path) -> Budgets:
    """Read a budgets CSV (``team,period,amount``); every problem names its line.

    ``period`` is a day (``2025-06-01``), ISO week (``2025-W23``) or month
    (``2025-06``); ``amount`` a non-negative decimal with at most two decimals.
    Comment lines start with ``#``. An optional ``currency`` column names each amount's
    currency, checked against the bill's where the budgets are used
    (``Budgets.check_currency``); a file with a header and no budget is refused, as an
    empty one is (a budget check over no budget would pass, unsaid).
    """
    source = Path(path)
    if source.exists() and not source.is_dir() and not source.is_file():
        # A device such as /dev/zero never ends.
        raise InputError("the budgets file is not a regular file", path=source)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise InputError(
            f"cannot read the budgets file: {error.strerror or error}", path=source
        ) from None
    except UnicodeDecodeError as error:
        raise InputError(
            f"the budgets file is not UTF-8 text ({error.reason} at byte {error.start})",
            path=source,
        ) from None
    # Lines end at a line break alone (read_text made every one "\n"), not at the other
    # characters str.splitlines breaks on (U+2028 in a team's name); blank lines and
    # comments, before the header too, are no rows.
    lines = [
        (n, raw)
        for n, raw in enumerate(text.split("\n"), start=1)
        if raw.strip() and not raw.lstrip().startswith("#")
    ]
    rows = [_budget_row(raw, source, number) for number, raw in lines]
    if not rows:
        raise InputError(
            "the budgets file is empty", path=source, hint="expected a header team,period,amount"
        )
    header = [h.strip().lower() for h in rows[0]]
    required = ["team", "period", "amount"]
    missing = [c for c in required if c not in header]
    # A repeated column: which copy holds the budget is not known (the first, unsaid).
    twice = [name for name in [*required, "currency"] if header.count(name) > 1]
    if missing or twice:
        raise InputError(
            f"the budgets file lacks column(s) {', '.join(missing)}"
            if missing
            else f"the budgets file names column {twice[0]} twice",
            path=source,
            line=lines[0][0],
            hint="expected a header team,period,amount"
            if missing
            else "keep one column of each name",
        )
    position = {name: header.index(name) for name in [*required, "currency"] if name in header}
    items: list[Budget] = []
    seen: dict[tuple[str, str], int] = {}
    for (number, _), row in zip(lines[1:], rows[1:], strict=True):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            # Never shift or drop cells: an unquoted 1,000.00 is two fields, not 1.00.
            raise InputError(
                f"a row with more fields ({len(row)}) than the header ({len(header)})",
                path=source,
                line=number,
                value=",".join(row)[:60],
                hint='an amount with a thousands separator must be quoted ("1,000.00") '
                "or written 1000.00",
            )
        cells = {name: (row[i].strip() if i < len(row) else "") for name, i in position.items()}
        items.append(_budget(cells, source, number))
        key = (items[-1].team, items[-1].period)
        if key in seen:
            raise InputError(
                f"a second budget for team {key[0]!r} and period {key[1]!r}"
                f" (first on line {seen[key]})",
                path=source,
                line=number,
            )
        seen[key] = number
    if not items:
        raise InputError(
            "the budgets file holds no budget (a header and no row)",
            path=source,
            hint="add a row team,period,amount (e.g. search,2025-06,5000.00)",
        )
    return Budgets(items=tuple(items), source=str(source))


_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# Periods whose bounds nanosecond timestamps hold (the charges' times are nanoseconds).
_FIRST_PERIOD = datetime(1678, 1, 1, tzinfo=UTC)
_LAST_PERIOD = datetime(2262, 1, 1, tzinfo=UTC)


def _budget(cells: dict[str, str], source: Path, line: int) -> Budget:
    if not cells["team"]:
        raise InputError("empty team", path=source, line=line, column="team", value="")
    try:
        _, start, end = period_bounds(cells["period"])
    except ValueError as error:
        raise InputError(
            str(error), path=source, line=line, column="period", value=cells["period"][:60]
        ) from None
    if start < _FIRST_PERIOD or end > _LAST_PERIOD:
        raise InputError(
            "a period out of range (1678 to 2261)",
            path=source,
            line=line,
            column="period",
            value=cells["period"][:60],
        )
    text = cells["amount"]
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")  # a quoted "1,000.00": its separators are only grouping
    try:
        amount = budget_amount(text)
    except ValueError as error:
        raise InputError(
            str(error), path=source, line=line, column="amount", value=cells["amount"][:60]
        ) from None
    # OpenAI's own exports write "usd": the code in either case, as invoices read it.
    currency = cells.get("currency", "").upper() or None
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        raise InputError(
            "a currency is an ISO 4217 code, three capital letters (USD, EUR)",
            path=source,
            line=line,
            column="currency",
            value=currency[:60],
        )
    return Budget(
        team=cells["team"], period=cells["period"], amount=amount, line=line, currency=currency
    )


class BudgetStatus(BaseModel):
    """A budget against what its team spent in its period."""

    model_config = _FROZEN

    team: str
    """The team."""
    period: str
    """The budget's period label."""
    start: datetime
    """Period start (UTC, inclusive)."""
    end: datetime
    """Period end (UTC, exclusive)."""
    amount: Decimal
    """The budget."""
    spent: Decimal
    """Charges of the team in the period (inside the report's window, if any)."""
    remaining: Decimal | None
    """amount − spent (negative when over); None when a job's amount is unknown
    (``unknown_jobs``)."""
    used_percent: Decimal | None
    """spent / amount in percent, two decimals, half up (None for a zero budget, or when a
    job's amount is unknown)."""
    over: bool
    """spent > amount."""
    unknown_jobs: tuple[str, ...] = ()
    """Invalid jobs of the team with events in the period (and the window): their amount
    is unknown, so whether the budget holds is unknown unless it is over already."""
    unknown_records: int = 0
    """Rejected records of no known job (``SpendReport.orphan_records``): of any team and
    time, so they may be charges of this budget's, as ``unknown_jobs``."""
    whole_period: bool = True
    """False when the report's window covers only part of the period: ``spent`` is the
    window's part of it alone."""
    team_in_logs: bool = True
    """Whether any job of the logs is of this team (names match exactly, case included):
    a budget of a team the logs never name holds ``0.00`` spent, most likely a misspelt
    team (``Search`` for ``search``) whose spending goes unchecked."""

    @property
    def status(self) -> str:
        """``over``, ``unknown`` (not over, but a job's amount is unknown) or ``ok``."""
        return "over" if self.over else "unknown" if self.in_doubt else "ok"

    @property
    def in_doubt(self) -> bool:
        """Whether charges of unknown amount may count against it (``unknown_jobs``,
        ``unknown_records``): what is spent is then a known part."""
        return bool(self.unknown_jobs or self.unknown_records)


# --- the report -------------------------------------------------------------------------


class SpendTotals(BaseModel):
    """Sums over every row of a spend report (equal to the bill's totals without a window)."""

    model_config = _FROZEN

    charges: int
    """Charges counted."""
    jobs: int
    """Distinct jobs with a charge."""
    billed_hours: Decimal
    """Hours charged."""
    compute_amount: Decimal
    """Compute charged."""
    discount_amount: Decimal
    """Discounts granted (positive, subtracted)."""
    grader_amount: Decimal
    """Grader tokens charged."""
    total_amount: Decimal
    """compute − discount + grader."""


_AMOUNTS = ("compute_cents", "discount_cents", "grader_cents", "total_cents")


class SpendReport(BaseModel):
    """Spend per period and group, with budgets; amounts in integer cents in ``table``.

    ``table`` has one row per (period, group): ``period`` (label), ``period_start``
    and ``period_end`` (ns, UTC), ``group``, ``compute_cents``, ``discount_cents``,
    ``grader_cents``, ``total_cents``, ``hour_units``, ``jobs``, ``charges``,
    ``budget_cents`` (nullable: only where a budget of the same period applies) and
    ``unknown_jobs`` (invalid jobs of the group with records in the period: their amounts
    are unknown, so the row's sums are those of its other jobs only).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    by: SpendGroup
    """What rows are grouped by."""
    period: PeriodKind
    """The rows' period."""
    window: Window | None
    """The window charges were restricted to."""
    policy: str
    """Policy of the bill."""
    currency: str
    """Currency of every amount."""
    hours_decimals: int
    """Decimals of billed hours (policy rounding)."""
    table: pd.DataFrame
    """The rows, amounts in integer cents."""
    budgets: tuple[BudgetStatus, ...] = ()
    """Every budget given (inside the window), against its team's spend."""
    totals: SpendTotals
    """Sums over the rows."""
    invalid_jobs: tuple[str, ...] = ()
    """Jobs whose amount is unknown: in no row's sums; each is counted in ``unknown_jobs``
    of its group's rows in the periods its records fall in. With a window, those with
    records in it or of no readable time (a job wholly outside leaves the totals known)."""
    orphan_records: int = 0
    """Rejected records whose job could not be read (``Bill.orphan_records``): an amount
    of some group, or none, is unknown beyond the invalid jobs'."""

    @property
    def over_budget(self) -> tuple[BudgetStatus, ...]:
        """Budgets whose team spent more than the budget."""
        return tuple(b for b in self.budgets if b.over)

    @property
    def unknown_budgets(self) -> tuple[BudgetStatus, ...]:
        """Budgets not over, whose team has a job of unknown amount in the period."""
        return tuple(b for b in self.budgets if b.status == "unknown")

    def groups(self) -> list[str]:
        """Group labels in row order (``unallocated`` last)."""
        return _ordered_groups(self.table["group"])

    def periods(self) -> list[str]:
        """Period labels in time order."""
        table = self.table.drop_duplicates("period").sort_values("period_start")
        return [str(p) for p in table["period"]]

    def period_range(self) -> list[str]:
        """Every period label from the first row's to the last row's, gaps included."""
        labels = self.periods()
        if not labels:
            return []
        last = period_bounds(labels[-1])[1]
        current, filled = labels[0], []
        while True:
            filled.append(current)
            _, start, end = period_bounds(current)
            if start >= last or len(filled) > 10_000:
                return filled
            current = _label_of(_ns(end), self.period)

    def rows(self) -> list[dict[str, Any]]:
        """Rows of the ``rftcost.spend/v1`` document (amounts as two-decimal strings)."""
        return self._rows(self.table)

    def iter_rows(self, chunk_rows: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """``rows()`` a chunk at a time, in order (for a document written row by row)."""
        for start in range(0, len(self.table), chunk_rows):
            yield self._rows(self.table.iloc[start : start + chunk_rows])

    def row_keys(self) -> list[str]:
        """The keys of each row, in order (the CSV's columns)."""
        return [
            "period", self.by.value, "period_start", "period_end", "compute_amount",
            "discount_amount", "grader_amount", "total_amount", "jobs", "billed_hours",
            "budget", "budget_used", "over_budget", "unknown_jobs",
        ]  # fmt: skip

    def _rows(self, table: pd.DataFrame) -> list[dict[str, Any]]:
        key = self.by.value
        # A row whose budget a job of unknown amount may break is not said within it, and
        # its share used is unknown (over already or not).
        unknown = {(b.team, b.period) for b in self.budgets if b.in_doubt}
        records = []
        for row in _tuples(table):
            budget = None if pd.isna(row.budget_cents) else int(row.budget_cents)
            over = None if budget is None else int(row.total_cents) > budget
            in_doubt = bool(row.unknown_jobs) or (str(row.group), str(row.period)) in unknown
            if over is False and in_doubt:
                over = None
            # As the totals: a row whose only jobs have unknown amounts has no sum (null,
            # not 0.00); with known jobs its sum is theirs, and the share used unknown.
            no_sum = in_doubt and int(row.jobs) == 0
            records.append(
                {
                    "period": str(row.period),
                    key: str(row.group),
                    "period_start": iso_seconds_from_ns(int(row.period_start)),
                    "period_end": iso_seconds_from_ns(int(row.period_end)),
                    "compute_amount": None if no_sum else format_cents(int(row.compute_cents)),
                    "discount_amount": None if no_sum else format_cents(int(row.discount_cents)),
                    "grader_amount": None if no_sum else format_cents(int(row.grader_cents)),
                    "total_amount": None if no_sum else format_cents(int(row.total_cents)),
                    "jobs": int(row.jobs),
                    "billed_hours": None
                    if no_sum
                    else _hours_text(int(row.hour_units), self.hours_decimals),
                    "budget": None if budget is None else format_cents(budget),
                    "budget_used": None
                    if budget is None or in_doubt
                    else _percent_text(int(row.total_cents), budget),
                    "over_budget": over,
                    "unknown_jobs": int(row.unknown_jobs),
                }
            )
        return records

    def to_dict(self, *, rows: bool = True) -> dict[str, Any]:
        """The ``rftcost.spend/v1`` document (its ``rows`` left empty with ``rows=False``:
        ``documents.write_spend`` writes them a chunk at a time). With no valid job and
        some that could not be billed, the totals' amounts are ``null``: unknown, not 0.00."""
        totals = self.totals
        unknown = bool(self.invalid_jobs or self.orphan_records) and not totals.jobs
        return {
            "schema": SPEND_SCHEMA,
            "policy": self.policy,
            "currency": self.currency,
            "by": self.by.value,
            "period": self.period.value,
            "window": None
            if self.window is None
            else {"start": iso_seconds(self.window.start), "end": iso_seconds(self.window.end)},
            "budget_used_unit": "percent",
            "rows": self.rows() if rows else [],
            "budgets": [
                {
                    "team": b.team,
                    "period": b.period,
                    "budget": f"{b.amount:.2f}",
                    "spent": f"{b.spent:.2f}",
                    "remaining": None if b.remaining is None else f"{b.remaining:.2f}",
                    "budget_used": None if b.used_percent is None else f"{b.used_percent:.2f}",
                    "over_budget": None if b.status == "unknown" else b.over,
                    "status": b.status,
                    "unknown_jobs": list(b.unknown_jobs),
                    "unknown_records": b.unknown_records,
                    "whole_period": b.whole_period,
                    "team_in_logs": b.team_in_logs,
                }
                for b in self.budgets
            ],
            "totals": {
                "charges": totals.charges,
                "jobs": totals.jobs,
                "billed_hours": _known(totals.billed_hours, self.hours_decimals, unknown),
                "compute_amount": _known(totals.compute_amount, 2, unknown),
                "discount_amount": _known(totals.discount_amount, 2, unknown),
                "grader_amount": _known(totals.grader_amount, 2, unknown),
                "total_amount": _known(totals.total_amount, 2, unknown),
            },
            "invalid_jobs": list(self.invalid_jobs),
            "orphan_records": self.orphan_records,
        }


def _known(value: Decimal, places: int, unknown: bool) -> str | None:
    """An amount or hours as text, ``None`` where there is no sum (unknown, not 0.00)."""
    return None if unknown else f"{value:.{places}f}"


def _hours_text(units: int, places: int) -> str:
    return f"{Decimal(units).scaleb(-places):.{places}f}"


def _percent(spent_cents: int, budget_cents: int) -> Decimal | None:
    if budget_cents <= 0:
        return None
    sign = -1 if spent_cents < 0 else 1
    hundredths = divide_round(abs(spent_cents) * 10_000, budget_cents, RoundingMode.HALF_UP)
    return Decimal(sign * int(hundredths)).scaleb(-2)


def _percent_text(spent_cents: int, budget_cents: int) -> str | None:
    value = _percent(spent_cents, budget_cents)
    return None if value is None else f"{value:.2f}"


def _tuples(frame: pd.DataFrame) -> Iterator[Any]:
    """Rows as named tuples, typed loosely (their fields are the frame's columns)."""
    return iter(frame.itertuples(index=False))


def _ordered_groups(groups: Iterable[Any]) -> list[str]:
    names = sorted({str(g) for g in groups})
    return [n for n in names if n != UNALLOCATED] + ([UNALLOCATED] if UNALLOCATED in names else [])


# --- computing it -------------------------------------------------------------------------


def spend(
    bill: Bill,
    *,
    by: SpendGroup | str = SpendGroup.team,
    period: PeriodKind | str = PeriodKind.month,
    window: Window | str | None = None,
    budgets: Budgets | str | Path | Sequence[Budget] | None = None,
) -> SpendReport:
    """Sum ``bill``'s charges per period (of the billing event, UTC) and group.

    ``window`` restricts charges to ``[start, end)`` (a ``Window`` or
    ``"2025-06-01..2025-07-01"``); ``budgets`` (a ``Budgets``, a CSV path or a
    list of ``Budget``) adds each budget's status and, when grouping by team,
    the budget of each row whose period is the budget's period.
    """
    group_by = SpendGroup(by)
    kind = PeriodKind(period)
    win = Window.parse(window) if isinstance(window, str) else window
    plan = _as_budgets(budgets)
    if plan is not None:
        plan.check_currency(bill.policy.currency)

    charges = _labelled_charges(bill, group_by)
    if win is not None:
        charges = charges[win.mask(charges["at"]).to_numpy()]
    charges = charges.assign(period_start=_period_starts(charges["at"], kind))

    unknown = invalid_job_spans(bill, win)
    table = _with_unknown_jobs(
        _rows(charges, kind), _unknown_counts(unknown, bill, group_by, kind, win), kind
    )
    statuses: tuple[BudgetStatus, ...] = ()
    if plan is not None:
        frame = plan.frame()
        if win is not None:
            inside = [win.overlaps(*period_bounds(p)[1:]) for p in frame["period"]]
            frame = frame[np.asarray(inside, dtype=bool)]
        statuses = _budget_statuses(frame, bill, win, unknown)
        if group_by is SpendGroup.team:
            table = _with_row_budgets(table, frame[frame["kind"] == kind.value], kind)
    table = _sorted(table)
    return SpendReport(
        by=group_by,
        period=kind,
        window=win,
        policy=bill.policy.name,
        currency=bill.policy.currency,
        hours_decimals=bill.policy.rounding.hours_decimals,
        table=table.reset_index(drop=True),
        budgets=statuses,
        totals=_totals(charges, bill.policy.rounding.hours_decimals),
        invalid_jobs=_invalid_jobs_in(bill, win, unknown),
        orphan_records=bill.orphan_records(),
    )


def _rejected_job_ids(bill: Bill) -> pd.Series:
    """The job ids of the records reading rejected (NA where no job could be read)."""
    return bill.log.rejected["job_id"] if bill.log is not None else pd.Series([], dtype=str)


def _invalid_jobs_in(bill: Bill, win: Window | None, spans: pd.DataFrame) -> tuple[str, ...]:
    """The invalid jobs whose unknown amounts a report of ``win`` may hold: every one
    without a window; within one, those with events in it (``spans``), and those with a
    record that could not be read (its time, perhaps in the window, is unknown). A job whose
    records were all read, all outside the window, leaves its total known."""
    invalid = bill.jobs.loc[bill.jobs["status"] == "invalid", "job_id"].astype(str)
    if win is None:
        return tuple(invalid)
    rejected = _rejected_job_ids(bill)
    may = set(spans["job_id"].astype(str)) | set(rejected.dropna().astype(str))
    may |= set(timeless_invalid_jobs(bill, spans)["job_id"])
    return tuple(invalid[invalid.isin(may)])


def _as_budgets(budgets: Budgets | str | Path | Sequence[Budget] | None) -> Budgets | None:
    if budgets is None or isinstance(budgets, Budgets):
        return budgets
    if isinstance(budgets, str | Path):
        return load_budgets(budgets)
    return Budgets(items=tuple(budgets))


def _labelled_charges(bill: Bill, by: SpendGroup) -> pd.DataFrame:
    """The bill's charges with their group label (``unallocated`` where missing)."""
    charges = bill.charges
    if by is SpendGroup.job:
        labels = charges["job_id"].astype(str)
    else:
        column = bill.jobs.set_index("job")[by.value]
        labels = column.reindex(charges["job"]).astype("string").fillna(UNALLOCATED).astype(str)
    return pd.DataFrame(
        {
            "job": charges["job"].to_numpy(dtype="int64"),
            "at": charges["at"].to_numpy(dtype="int64"),
            "group": labels.to_numpy(),
            "hour_units": charges["hour_units"].to_numpy(dtype="int64"),
            "compute_cents": charges["compute_cents"].to_numpy(dtype="int64"),
            "discount_cents": charges["discount_cents"].to_numpy(dtype="int64"),
            "grader_cents": charges["grader_cents"].to_numpy(dtype="int64"),
            "total_cents": charges["amount_cents"].to_numpy(dtype="int64"),
        }
    )


_ROW_COLUMNS = [
    "period",
    "period_start",
    "period_end",
    "group",
    "compute_cents",
    "discount_cents",
    "grader_cents",
    "total_cents",
    "hour_units",
    "jobs",
    "charges",
    "budget_cents",
    "unknown_jobs",
]
_ZERO_COLUMNS = [
    c
    for c in _ROW_COLUMNS
    if c not in ("period", "period_start", "period_end", "group", "budget_cents")
]
"""A row's counts and sums: 0 in a row added for a budget or a job of unknown amount."""


def _rows(charges: pd.DataFrame, kind: PeriodKind) -> pd.DataFrame:
    if charges.empty:
        return _empty_rows()
    sums = (
        charges.groupby(["period_start", "group"], sort=True)
        .agg(
            compute_cents=("compute_cents", "sum"),
            discount_cents=("discount_cents", "sum"),
            grader_cents=("grader_cents", "sum"),
            total_cents=("total_cents", "sum"),
            hour_units=("hour_units", "sum"),
            jobs=("job", "nunique"),
            charges=("job", "size"),
        )
        .reset_index()
    )
    return _with_period_labels(sums, kind).assign(
        budget_cents=pd.array([pd.NA] * len(sums), dtype="Int64"), unknown_jobs=0
    )[_ROW_COLUMNS]


def _with_period_labels(frame: pd.DataFrame, kind: PeriodKind) -> pd.DataFrame:
    starts = frame["period_start"].astype("int64")
    labels = {int(s): _label_of(int(s), kind) for s in starts.unique()}
    ends = {int(s): _ns(period_bounds(label)[2]) for s, label in labels.items()}
    return frame.assign(
        period=starts.map(labels).astype(str),
        period_end=starts.map(ends).astype("int64"),
    )


def _empty_rows() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype="int64") for c in _ROW_COLUMNS})
    return frame.astype({"period": str, "group": str, "budget_cents": "Int64"})


def _with_row_budgets(table: pd.DataFrame, budgets: pd.DataFrame, kind: PeriodKind) -> pd.DataFrame:
    """Budgets of the rows' own period kind: attached to their row, or a zero row added."""
    if budgets.empty:
        return table
    keyed = budgets.rename(columns={"team": "group", "start_ns": "period_start"})[
        ["period_start", "group", "budget_cents"]
    ]
    return _merged_rows(table, keyed, kind)


def _merged_rows(table: pd.DataFrame, keyed: pd.DataFrame, kind: PeriodKind) -> pd.DataFrame:
    """``table`` with ``keyed``'s column (by period start and group) in place of its own,
    and a row of zero sums for a key no row has."""
    (column,) = [c for c in keyed.columns if c not in ("period_start", "group")]
    merged = table.drop(columns=[column]).merge(keyed, on=["period_start", "group"], how="outer")
    merged[_ZERO_COLUMNS] = merged[_ZERO_COLUMNS].fillna(0).astype("int64")
    merged = _with_period_labels(merged.drop(columns=["period", "period_end"]), kind)
    return merged.astype({"budget_cents": "Int64"})[_ROW_COLUMNS]


def _unknown_counts(
    spans: pd.DataFrame, bill: Bill, by: SpendGroup, kind: PeriodKind, window: Window | None
) -> pd.DataFrame:
    """Invalid jobs per (period_start, group): each job in every period its records span
    inside the window (``invalid_job_spans``), under the label its group's rows use
    (``unallocated`` where no record names one)."""
    if spans.empty:
        return pd.DataFrame({"period_start": [], "group": [], "unknown_jobs": []})
    if by is SpendGroup.job:
        labels = spans["job_id"].astype(str)
    elif by is SpendGroup.team:
        labels = spans["team"].astype(str)
    else:
        column = bill.jobs.assign(job_id=bill.jobs["job_id"].astype(str)).set_index("job_id")
        labels = column[by.value].reindex(spans["job_id"]).astype("string")
        labels = labels.fillna(UNALLOCATED).astype(str)
    first = spans["first_ns"].to_numpy(dtype="int64")
    last = spans["last_ns"].to_numpy(dtype="int64")
    start, end = window.bounds_ns() if window is not None else (None, None)
    if start is not None:
        first = np.maximum(first, start)
    if end is not None:
        last = np.minimum(last, end - 1)
    current = _period_starts(pd.Series(first), kind).to_numpy(dtype="int64")
    last_start = _period_starts(pd.Series(last), kind).to_numpy(dtype="int64")
    groups = labels.to_numpy(dtype=object)
    starts, names = [current], [groups]
    # One step per period the longest span meets (each step on every span still open).
    open_ = current < last_start
    while open_.any():
        current = current[open_] + _PERIOD_STEP_NS[kind]
        if kind is PeriodKind.month:  # a month's start + 31 days lies in the next month
            current = _period_starts(pd.Series(current), kind).to_numpy(dtype="int64")
        groups, last_start = groups[open_], last_start[open_]
        starts.append(current)
        names.append(groups)
        open_ = current < last_start
    touched = pd.DataFrame({"period_start": np.concatenate(starts), "group": np.concatenate(names)})
    return (
        touched.groupby(["period_start", "group"], sort=True)
        .size()
        .rename("unknown_jobs")
        .reset_index()
    )


_PERIOD_STEP_NS = {
    PeriodKind.day: 86_400 * 10**9,
    PeriodKind.week: 7 * 86_400 * 10**9,
    PeriodKind.month: 31 * 86_400 * 10**9,
}


def _with_unknown_jobs(table: pd.DataFrame, counts: pd.DataFrame, kind: PeriodKind) -> pd.DataFrame:
    """``unknown_jobs`` of each row, and a row (sums 0, shown as unknown) for a group and
    period whose only jobs are of unknown amount."""
    if counts.empty:
        return table
    return _merged_rows(table, counts.astype({"period_start": "int64", "group": str}), kind)


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    return (
        table.assign(_last=table["group"] == UNALLOCATED)
        .sort_values(["period_start", "_last", "group"], kind="stable")
        .drop(columns=["_last"])
    )


def _budget_statuses(
    budgets: pd.DataFrame, bill: Bill, window: Window | None, unknown: pd.DataFrame
) -> tuple[BudgetStatus, ...]:
    """Each budget against its team's charges in the budget's own period (and the window)."""
    if budgets.empty:
        return ()
    charges = _labelled_charges(bill, SpendGroup.team)
    if window is not None:
        charges = charges[window.mask(charges["at"]).to_numpy()]
    spent = pd.Series(0, index=budgets.index, dtype="int64")
    for kind in budgets["kind"].unique():
        mine = budgets["kind"] == kind
        sums = (
            charges.assign(period_start=_period_starts(charges["at"], PeriodKind(kind)))
            .groupby(["group", "period_start"])["total_cents"]
            .sum()
        )
        keys = pd.MultiIndex.from_arrays([budgets.loc[mine, "team"], budgets.loc[mine, "start_ns"]])
        spent[mine] = sums.reindex(keys, fill_value=0).to_numpy(dtype="int64")
    orphans = bill.orphan_records()
    timeless = timeless_invalid_jobs(bill, unknown)
    teams = set(bill.jobs["team"].astype("string").fillna(UNALLOCATED).astype(str).unique())
    statuses = []
    for row, spent_cents in zip(_tuples(budgets), spent, strict=True):
        amount = int(row.budget_cents)
        touching = unknown[
            ((unknown["team"] == row.team) | unknown["any_team"])
            & (unknown["first_ns"] < int(row.end_ns))
            & (unknown["last_ns"] >= int(row.start_ns))
        ]
        # A job of no readable time may have run in any period (and, of no readable
        # team, for any team): every budget it may touch is in doubt.
        touching = pd.concat(
            [touching, timeless[timeless["team"].isna() | (timeless["team"] == row.team)]]
        )
        statuses.append(
            BudgetStatus(
                team=str(row.team),
                period=str(row.period),
                start=datetime.fromtimestamp(int(row.start_ns) // 1_000_000_000, tz=UTC),
                end=datetime.fromtimestamp(int(row.end_ns) // 1_000_000_000, tz=UTC),
                amount=cents_to_decimal(amount),
                spent=cents_to_decimal(int(spent_cents)),
                # Known charges only: what is left, or used, is unknown beside them.
                remaining=None
                if len(touching) or orphans
                else cents_to_decimal(amount - int(spent_cents)),
                used_percent=None
                if len(touching) or orphans
                else _percent(int(spent_cents), amount),
                over=int(spent_cents) > amount,
                unknown_jobs=tuple(touching["job_id"]),
                unknown_records=orphans,
                whole_period=window is None or window.covers(int(row.start_ns), int(row.end_ns)),
                team_in_logs=str(row.team) in teams,
            )
        )
    return tuple(statuses)


def timeless_invalid_jobs(bill: Bill, spans: pd.DataFrame) -> pd.DataFrame:
    """Invalid jobs of no readable time (every record rejected), beside ``spans`` (of
    ``invalid_job_spans``): ``job_id`` and ``team`` (missing when no record said it)."""
    invalid = bill.jobs.loc[bill.jobs["status"] == "invalid", ["job_id", "team"]]
    times = bill.timeline.jobs[["job_id", "first_ns", "last_ns"]].dropna()
    timed = set(times["job_id"].astype(str)) | set(spans["job_id"].astype(str))
    timeless = invalid[~invalid["job_id"].astype(str).isin(timed)]
    return pd.DataFrame(
        {
            "job_id": timeless["job_id"].astype(str).to_numpy(dtype=object),
            "team": timeless["team"].astype("object").where(timeless["team"].notna(), None),
        }
    ).reset_index(drop=True)


def invalid_job_spans(bill: Bill, window: Window | None) -> pd.DataFrame:
    """Invalid jobs (job_id, team label, first and last event, ``any_team``): the amounts
    a budget of their team cannot count. A job without a team is ``unallocated``, unless
    a record of it was rejected (its ``job_created`` perhaps): then its team is unknown
    and it counts against every team's budget (``any_team``). A job with no readable
    record has no time: no row counts it (the totals and notes do), and every budget is
    in doubt of it (``timeless_invalid_jobs``)."""
    invalid = bill.jobs.loc[bill.jobs["status"] == "invalid", ["job_id", "team"]]
    times = bill.timeline.jobs[["job_id", "first_ns", "last_ns"]].astype({"job_id": str})
    spans = invalid.astype({"job_id": str}).merge(times, on="job_id")
    spans = spans.dropna(subset=["first_ns", "last_ns"])
    rejected = _rejected_job_ids(bill)
    problems = bill.problems
    disputed = problems.loc[puts_payer_in_doubt(problems["problem"]), "job_id"].astype(str)
    team = spans["team"].astype("string")
    unreadable = team.isna() & spans["job_id"].isin(rejected.dropna().astype(str))
    spans = spans.assign(
        team=team.fillna(UNALLOCATED).astype(str),
        # Its team unknown (unreadable, or two named): every team's budget, whatever the order.
        any_team=(unreadable | spans["job_id"].isin(disputed)).to_numpy(),
    )
    spans = spans.astype({"first_ns": "int64", "last_ns": "int64"})
    if window is not None:
        spans = spans[window.meets(spans["first_ns"], spans["last_ns"]).to_numpy()]
    return spans


def _totals(charges: pd.DataFrame, places: int) -> SpendTotals:
    return SpendTotals(
        charges=len(charges),
        jobs=int(charges["job"].nunique()),
        billed_hours=Decimal(int(charges["hour_units"].sum())).scaleb(-places),
        compute_amount=cents_to_decimal(int(charges["compute_cents"].sum())),
        discount_amount=cents_to_decimal(int(charges["discount_cents"].sum())),
        grader_amount=cents_to_decimal(int(charges["grader_cents"].sum())),
        total_amount=cents_to_decimal(int(charges["total_cents"].sum())),
    )


# ``rftcost.spend`` is both this module and the function (see ``rftcost._callable``).
make_module_callable(__name__, spend)
