"""Spend per team, project, model and job; periods of the billing event (UTC); budgets."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from builders import JobLog, frame_of, guide_prelude
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import examples, job_events
from typer.testing import CliRunner

import rftcost
from rftcost.cli import app
from rftcost.errors import InputError
from rftcost.spend import (
    SPEND_SCHEMA,
    UNALLOCATED,
    Budget,
    Budgets,
    PeriodKind,
    SpendGroup,
    Window,
    load_budgets,
    period_bounds,
    spend,
)

runner = CliRunner()
SAMPLE_LOGS = Path(__file__).resolve().parent.parent / "sample_logs"
MONTHLY = [
    SAMPLE_LOGS / "2025-05.jsonl",
    SAMPLE_LOGS / "2025-06.csv.gz",
    SAMPLE_LOGS / "2025-07.parquet",
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def mixed_logs() -> pd.DataFrame:
    """Jobs of three teams and none, across days, an ISO week and a month boundary.

    - ``ftjob-search-1``: search/ranker, data sharing, gpt-4.1 grader, 1 June.
    - ``ftjob-search-2``: search, paused on 30 June (charge in June), resumed and done on
      1 July (charge in July).
    - ``ftjob-ads``: ads/ctr, o3 grader used before and after the 10 June price change,
      ends 2025-06-10.
    - ``ftjob-vision``: vision, fails after a checkpoint on 15 June.
    - ``ftjob-orphan``: no team, 20 June.
    - ``ftjob-broken``: search, invalid (a phase_end with no open phase).
    """
    search_1 = guide_prelude(
        JobLog("ftjob-search-1", clock=at("2025-06-01T08:00:00Z")).created(
            team="search", project="ranker", data_sharing=True, grader_model="gpt-4.1"
        )
    )
    search_1.add("phase_start", phase="rollout").at(hours=2).add(
        "grader_usage",
        grader_model="gpt-4.1",
        input_tokens=1_000_000,
        cached_input_tokens=200_000,
        output_tokens=100_000,
    )
    search_1.at(hours=1, seconds=18).add("succeeded")

    search_2 = JobLog("ftjob-search-2", clock=at("2025-06-30T21:00:00Z")).created(team="search")
    search_2.phase("rollout", hours=2, minutes=30).add("paused").at(hours=1).add("resumed")
    search_2.phase("rollout", hours=1).add("succeeded")

    ads = JobLog("ftjob-ads", clock=at("2025-06-09T20:00:00Z")).created(team="ads", project="ctr")
    ads.add("phase_start", phase="rollout").at(hours=1).add(
        "grader_usage", grader_model="o3", input_tokens=123_457, output_tokens=9_877
    )
    ads.at(hours=3).add(
        "grader_usage",
        grader_model="o3",
        input_tokens=500_001,
        cached_input_tokens=1_234,
        output_tokens=33_333,
    )
    ads.at(minutes=17, seconds=41).add("succeeded")

    vision = JobLog("ftjob-vision", clock=at("2025-06-15T10:00:00Z")).created(team="vision")
    vision.add("phase_start", phase="rollout").at(hours=1, minutes=12).add(
        "checkpoint_saved", step=3
    )
    vision.at(minutes=40).add("failed")

    orphan = JobLog("ftjob-orphan", clock=at("2025-06-20T12:00:00Z")).created()
    orphan.phase("rollout", hours=3).add("cancelled")

    broken = JobLog("ftjob-broken", clock=at("2025-06-21T12:00:00Z")).created(team="search")
    broken.add("phase_end", phase="rollout").at(hours=1).add("succeeded")
    return frame_of(search_1, search_2, ads, vision, orphan, broken)


@pytest.fixture(scope="module")
def bill() -> rftcost.Bill:
    return rftcost.bill(mixed_logs())


# --- totals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("by", list(SpendGroup))
@pytest.mark.parametrize("period", list(PeriodKind))
def test_spend_totals_equal_the_bill_to_the_cent(
    bill: rftcost.Bill, by: SpendGroup, period: PeriodKind
) -> None:
    report = spend(bill, by=by, period=period)
    totals = bill.totals()
    table = report.table
    assert Decimal(int(table["total_cents"].sum())).scaleb(-2) == totals.total_amount
    assert Decimal(int(table["compute_cents"].sum())).scaleb(-2) == totals.compute_amount
    assert Decimal(int(table["discount_cents"].sum())).scaleb(-2) == totals.discount_amount
    assert Decimal(int(table["grader_cents"].sum())).scaleb(-2) == totals.grader_amount
    assert Decimal(int(table["hour_units"].sum())).scaleb(-2) == totals.billed_hours
    assert report.totals.total_amount == totals.total_amount
    assert report.totals.compute_amount == totals.compute_amount
    assert report.totals.billed_hours == totals.billed_hours
    # The rows as strings add up too; a row of only invalid jobs has no sum (unknown).
    rows = [r for r in report.rows() if r["total_amount"] is not None]
    assert sum(Decimal(r["total_amount"]) for r in rows) == totals.total_amount
    assert all(
        r["total_amount"].count(".") == 1 and len(r["total_amount"].split(".")[1]) == 2
        for r in rows
    )
    unknown = [r for r in report.rows() if r["total_amount"] is None]
    assert all(r["jobs"] == 0 and r["unknown_jobs"] > 0 for r in unknown)
    assert sum(r["unknown_jobs"] for r in report.rows()) >= len(report.invalid_jobs)
    # Every row: total = compute − discount + grader.
    assert (
        table["compute_cents"] - table["discount_cents"] + table["grader_cents"]
        == table["total_cents"]
    ).all()


def test_each_job_in_its_own_row_when_grouped_by_job(bill: rftcost.Bill) -> None:
    report = spend(bill, by="job", period="month")
    known = report.table[report.table["jobs"] > 0]
    per_job = known.groupby("group")["total_cents"].sum()
    jobs = bill.jobs.set_index("job_id")
    for job_id, cents in per_job.items():
        assert int(jobs.loc[job_id, "total_cents"]) == int(cents)
    assert "ftjob-broken" not in per_job.index
    assert report.invalid_jobs == ("ftjob-broken",)
    # Its own row says its amount is unknown: null sums, counted in unknown_jobs.
    (broken,) = [r for r in report.rows() if r["job"] == "ftjob-broken"]
    assert (broken["jobs"], broken["unknown_jobs"], broken["total_amount"]) == (0, 1, None)


def test_jobs_without_a_team_are_unallocated(bill: rftcost.Bill) -> None:
    report = spend(bill, by="team", period="month")
    assert report.groups()[-1] == UNALLOCATED
    row = report.table[report.table["group"] == UNALLOCATED].iloc[0]
    assert int(row["total_cents"]) == 30_000  # 3 h cancelled: all charged (R7)
    by_project = spend(bill, by="project", period="month")
    assert set(by_project.groups()) == {"ranker", "ctr", UNALLOCATED}


# --- periods ----------------------------------------------------------------------------------


def test_a_charge_belongs_to_the_period_of_its_billing_event(bill: rftcost.Bill) -> None:
    """ftjob-search-2 works 30 June 21:00-23:30 (paused: June) and 1 July 00:30-01:30 (July)."""
    report = spend(bill, by="job", period="month")
    rows = report.table[report.table["group"] == "ftjob-search-2"].set_index("period")
    assert rows["total_cents"].to_dict() == {"2025-06": 25_000, "2025-07": 10_000}
    daily = spend(bill, by="job", period="day").table
    days = daily[daily["group"] == "ftjob-search-2"].set_index("period")["total_cents"].to_dict()
    assert days == {"2025-06-30": 25_000, "2025-07-01": 10_000}
    weekly = spend(bill, by="job", period="week").table
    weeks = weekly[weekly["group"] == "ftjob-search-2"].set_index("period")["total_cents"]
    assert weeks.to_dict() == {"2025-W27": 35_000}  # Monday 30 June - Sunday 6 July


def test_periods_are_utc_whatever_the_log_offset() -> None:
    """A billing event at 2025-07-01 01:30+02:00 is 30 June 23:30 UTC: June, not July."""
    log = JobLog("ftjob-offset").created(team="search", ts=at("2025-06-30T21:00:00Z"))
    events = log.frame()
    extra = pd.DataFrame(
        [
            {"job_id": "ftjob-offset", "ts": "2025-06-30T23:00:00+02:00", "event": "phase_start",
             "phase": "rollout"},
            {"job_id": "ftjob-offset", "ts": "2025-07-01T01:30:00+02:00", "event": "phase_end",
             "phase": "rollout"},
            {"job_id": "ftjob-offset", "ts": "2025-07-01T01:30:00+02:00", "event": "succeeded"},
        ]
    )  # fmt: skip
    result = rftcost.bill(pd.concat([events, extra], ignore_index=True))
    report = spend(result, by="team", period="day")
    assert report.periods() == ["2025-06-30"]
    assert report.rows()[0]["period_start"] == "2025-06-30T00:00:00Z"


def test_a_billing_event_at_midnight_opens_the_new_period() -> None:
    log = JobLog("ftjob-midnight", clock=at("2025-06-30T22:00:00Z")).created(team="a")
    log.phase("rollout", hours=2).add("succeeded")  # at 2025-07-01T00:00:00Z
    report = spend(rftcost.bill(log.frame()), by="team", period="month")
    assert report.periods() == ["2025-07"]


def test_period_labels_and_bounds() -> None:
    assert period_bounds("2025-06") == (
        PeriodKind.month,
        at("2025-06-01T00:00:00Z"),
        at("2025-07-01T00:00:00Z"),
    )
    assert period_bounds("2025-12")[2] == at("2026-01-01T00:00:00Z")
    assert period_bounds("2025-W27")[1:] == (at("2025-06-30T00:00:00Z"), at("2025-07-07T00:00:00Z"))
    assert period_bounds("2025-06-30")[1:] == (
        at("2025-06-30T00:00:00Z"),
        at("2025-07-01T00:00:00Z"),
    )
    with pytest.raises(ValueError, match="not a period"):
        period_bounds("June")


def test_period_range_fills_gaps(bill: rftcost.Bill) -> None:
    report = spend(bill, by="team", period="week")
    assert report.period_range() == [
        "2025-W22",
        "2025-W23",
        "2025-W24",
        "2025-W25",
        "2025-W26",
        "2025-W27",
    ]


# --- windows -----------------------------------------------------------------------------------


def test_window_is_half_open_in_utc(bill: rftcost.Bill) -> None:
    june = spend(bill, by="team", period="month", window="2025-06-01..2025-07-01")
    july = spend(bill, by="team", period="month", window="2025-07-01..")
    everything = spend(bill, by="team", period="month")
    assert june.periods() == ["2025-06"] and july.periods() == ["2025-07"]
    assert june.totals.total_amount + july.totals.total_amount == everything.totals.total_amount
    assert june.to_dict()["window"] == {
        "start": "2025-06-01T00:00:00Z",
        "end": "2025-07-01T00:00:00Z",
    }
    # The search-2 pause charge at 23:30 UTC on 30 June is inside; the 01:30 one is not.
    exact = spend(bill, by="job", period="day", window="2025-06-30T23:30:00Z..2025-07-01T01:30:00Z")
    assert exact.table["total_cents"].tolist() == [25_000]


def test_a_window_counts_only_the_invalid_jobs_that_may_be_in_it(bill: rftcost.Bill) -> None:
    """ftjob-broken (invalid, 21 June) leaves June's total a lower bound, not July's: the
    July report said "+ unknown" for a job wholly outside it."""
    june = spend(bill, by="team", period="month", window="2025-06-01..2025-07-01")
    july = spend(bill, by="team", period="month", window="2025-07-01..")
    assert june.invalid_jobs == ("ftjob-broken",)
    assert july.invalid_jobs == ()
    assert july.to_dict()["totals"]["total_amount"] is not None
    assert spend(bill, by="team", period="month").invalid_jobs == ("ftjob-broken",)


def test_window_parsing_errors() -> None:
    with pytest.raises(InputError, match=r"START\.\.END"):
        Window.parse("2025-06-01")
    with pytest.raises(InputError, match="before its end"):
        Window.parse("2025-07-01..2025-06-01")
    with pytest.raises(InputError, match="cannot read"):
        Window.parse("yesterday..today")
    window = Window.parse("2025-06-01T02:00:00+02:00..")
    assert window.start == at("2025-06-01T00:00:00Z") and window.end is None


# --- budgets -----------------------------------------------------------------------------------


def test_budgets_from_csv(tmp_path: Path, bill: rftcost.Bill) -> None:
    path = tmp_path / "budgets.csv"
    path.write_text(
        "team,period,amount\n"
        "search,2025-06,300.00\n"  # spent 200.00 (search-1 after discount) + 250.00: over
        "search,2025-07,100\n"  # spent exactly 100.00: not over
        "ads,2025-06,1000.5\n"
        "vision,2025-W24,10\n"  # a weekly budget, checked against that week
        "legal,2025-06,50\n",  # no spend at all
        encoding="utf-8",
    )
    budgets = load_budgets(path)
    assert [b.amount for b in budgets.items] == [
        Decimal("300.00"), Decimal("100"), Decimal("1000.5"), Decimal("10"), Decimal("50")
    ]  # fmt: skip
    report = spend(bill, by="team", period="month", budgets=budgets)
    status = {(b.team, b.period): b for b in report.budgets}
    search = bill.jobs.set_index("job_id").loc["ftjob-search-1", "total_cents"]
    assert status["search", "2025-06"].spent == Decimal(int(search) + 25_000).scaleb(-2)
    assert status["search", "2025-06"].over
    assert status["search", "2025-07"].spent == Decimal("100.00")
    assert not status["search", "2025-07"].over
    assert status["search", "2025-07"].used_percent == Decimal("100.00")
    assert status["vision", "2025-W24"].period == "2025-W24" and status["vision", "2025-W24"].over
    assert status["legal", "2025-06"].spent == Decimal("0.00")
    assert {(b.team, b.period) for b in report.over_budget} == {
        ("search", "2025-06"),
        ("vision", "2025-W24"),
    }
    # Rows of the same period carry their budget; a budgeted team without spend gets a zero row.
    rows = {(r["period"], r["team"]): r for r in report.rows()}
    assert rows["2025-06", "search"]["budget"] == "300.00"
    assert rows["2025-06", "search"]["over_budget"] is True
    assert rows["2025-06", "legal"]["total_amount"] == "0.00"
    assert rows["2025-06", "legal"]["budget_used"] == "0.00"
    assert rows["2025-06", "vision"]["budget"] is None  # its budget is weekly
    assert report.totals.total_amount == bill.totals().total_amount


def test_budget_used_percent_rounds_half_up() -> None:
    log = JobLog("ftjob-x").created(team="t").phase("rollout", hours=1).add("succeeded")
    report = spend(
        rftcost.bill(log.frame()),
        budgets=[Budget(team="t", period="2025-06", amount=Decimal("800.00"))],
    )
    assert report.budgets[0].used_percent == Decimal("12.50")
    odd = spend(
        rftcost.bill(log.frame()),
        budgets=[Budget(team="t", period="2025-06", amount=Decimal("300.00"))],
    )
    assert odd.budgets[0].used_percent == Decimal("33.33")
    assert odd.to_dict()["budgets"][0]["budget_used"] == "33.33"


def test_a_budget_is_exact_money() -> None:
    from pydantic import ValidationError

    assert Budget(team="a", period="2025-06", amount="10.50").amount == Decimal("10.50")
    assert Budget(team="a", period="2025-06", amount=3).amount == Decimal(3)
    with pytest.raises(ValidationError, match=r"refusing 10\.5"):
        Budget(team="a", period="2025-06", amount=10.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="two decimals"):
        Budget(team="a", period="2025-06", amount="0.001")


def test_budgets_in_a_window_only_count_inside_it(bill: rftcost.Bill) -> None:
    budgets = Budgets(
        items=(
            Budget(team="search", period="2025-06", amount=Decimal(1000)),
            Budget(team="search", period="2025-05", amount=Decimal(1)),
        )
    )
    report = spend(bill, window="2025-06-15..2025-07-15", budgets=budgets)
    assert [b.period for b in report.budgets] == ["2025-06"]
    assert report.budgets[0].spent == Decimal("250.00")  # search-1 on 1 June is outside


def test_a_budget_with_an_invalid_job_of_its_team_in_its_period_is_unknown(
    bill: rftcost.Bill,
) -> None:
    budgets = [
        Budget(team="search", period="2025-06", amount=Decimal(100000)),
        Budget(team="search", period="2025-07", amount=Decimal(100000)),
        Budget(team="search", period="2025-06-01", amount=Decimal(1)),
        Budget(team="vision", period="2025-06", amount=Decimal(100000)),
    ]
    statuses = {(b.team, b.period): b for b in spend(bill, budgets=budgets).budgets}
    june = statuses[("search", "2025-06")]
    assert june.status == "unknown" and june.unknown_jobs == ("ftjob-broken",)
    assert statuses[("search", "2025-07")].status == "ok"  # the broken job is in June
    assert statuses[("search", "2025-06-01")].status == "over"  # over already, whatever else
    assert statuses[("vision", "2025-06")].status == "ok"


def test_an_invalid_job_without_a_team_or_with_its_team_unreadable_makes_budgets_unknown(
    tmp_path: Path,
) -> None:
    """No team: the unallocated budget. Its job_created rejected: every team's budget (the
    payer is unknown). The JSON says null, not false, for over_budget."""
    no_team = JobLog("ftjob-nt", clock=at("2025-06-05T08:00:00Z")).created()
    no_team.add("phase_end", phase="rollout").at(hours=1).add("succeeded")
    path = tmp_path / "log.jsonl"
    no_team.frame().to_json(path, orient="records", lines=True)
    budgets = [
        Budget(team="unallocated", period="2025-06", amount=Decimal(10)),
        Budget(team="search", period="2025-06", amount=Decimal(10)),
    ]
    statuses = spend(rftcost.bill(path), budgets=budgets).budgets
    assert [b.status for b in statuses] == ["unknown", "ok"]
    with path.open("a") as log:  # a second job whose job_created (team search) is unreadable
        log.write('{"job_id":"ftjob-rc","ts":"2025-06-06T08:00:00","event":"job_created",'
                  '"team":"search"}\n')  # fmt: skip
        log.write('{"job_id":"ftjob-rc","ts":"2025-06-06T09:00:00Z","event":"succeeded"}\n')
    report = spend(rftcost.bill(path), budgets=budgets)
    assert [b.status for b in report.budgets] == ["unknown", "unknown"]
    document = report.to_dict()
    assert [b["over_budget"] for b in document["budgets"]] == [None, None]
    # Rows of those budgets: no known job, so no sum (null, not 0.00), the share unknown.
    sums = ("compute_amount", "discount_amount", "grader_amount", "total_amount", "billed_hours")
    for row in document["rows"]:
        assert [row[key] for key in (*sums, "budget_used", "over_budget")] == [None] * 7
        assert row["jobs"] == 0 and row["budget"] == "10.00"


def test_a_row_with_known_jobs_and_one_of_unknown_amount_keeps_its_sum(
    bill: rftcost.Bill,
) -> None:
    budgets = [Budget(team="search", period="2025-06", amount=Decimal(100000))]
    report = spend(bill, budgets=budgets)
    (row,) = [r for r in report.rows() if r["budget"] is not None]
    assert row["jobs"] > 0 and row["total_amount"] is not None  # the sum of the known jobs
    assert (row["budget_used"], row["over_budget"]) == (None, None)  # ftjob-broken's unknown
    (status,) = report.budgets  # spent: the known charges; what is left, or used, unknown
    assert status.spent > 0 and (status.remaining, status.used_percent) == (None, None)
    over = spend(bill, budgets=[Budget(team="search", period="2025-06", amount=Decimal(1))])
    (row,) = [r for r in over.rows() if r["budget"] is not None]
    assert (row["over_budget"], row["budget_used"]) == (
        True,
        None,
    )  # over already, by how much not known


def test_a_job_whose_team_is_in_dispute_counts_against_every_team_in_any_order(
    tmp_path: Path,
) -> None:
    created = [
        '{"job_id":"j","ts":"2025-06-02T00:00:00Z","event":"job_created","team":"search"}',
        '{"job_id":"j","ts":"2025-06-02T00:00:00Z","event":"job_created","team":"ads"}',
    ]
    rest = '{"job_id":"j","ts":"2025-06-02T01:00:00Z","event":"succeeded"}'
    budgets = [
        Budget(team="ads", period="2025-06", amount=Decimal(10)),
        Budget(team="search", period="2025-06", amount=Decimal(10)),
    ]
    for order in (created, created[::-1]):
        path = tmp_path / "log.jsonl"
        path.write_text("\n".join([*order, rest]) + "\n", encoding="utf-8")
        statuses = spend(rftcost.bill(path), budgets=budgets).budgets
        assert [b.status for b in statuses] == ["unknown", "unknown"]


def test_a_window_that_cuts_a_budget_period_says_so(bill: rftcost.Bill) -> None:
    budgets = [Budget(team="ads", period="2025-06", amount=Decimal(100000))]
    cut = spend(bill, window="2025-06-10..2025-06-20", budgets=budgets).budgets[0]
    whole = spend(bill, window="2025-06-01..2025-07-01", budgets=budgets).budgets[0]
    assert not cut.whole_period and whole.whole_period


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("team,amount\nsearch,1\n", "lacks column", 1),
        ("team,period,amount\nsearch,June,1\n", "not a period", 2),
        ("team,period,amount\nsearch,2025-06,-1\n", "must not be negative", 2),
        ("team,period,amount\nsearch,2025-06,1.005\n", "two decimals", 2),
        ("team,period,amount\nsearch,2025-06,ten\n", "not an amount", 2),
        ("team,period,amount\nsearch,2025-06,1" + "0" * 31 + "\n", r"below 10\^12", 2),
        ("team,period,amount\n,2025-06,1\n", "empty team", 2),
        ("team,period,amount,team\nsearch,2025-06,1,ads\n", "names column team twice", 1),
        ("team,period,amount\nsearch,2025-06,1\nsearch,2025-06,2\n", "second budget", 3),
        ("", "empty", None),
        ("team,period,amount\n", "holds no budget", None),  # a check over nothing
        ("team,period,amount,currency\nsearch,2025-06,1,dollars\n", "ISO 4217", 2),
        ('team,period,amount\n"a\nb",2025-06,50\n', "does not end on its line", 2),
        # Decimal's other spellings and other scripts' digits are not amounts in a file.
        ("team,period,amount\nsearch,2025-06,1e3\n", "not an amount", 2),
        ("team,period,amount\nsearch,2025-06,1_000\n", "not an amount", 2),
        ("team,period,amount\nsearch,2025-06,\uff15\n", "not an amount", 2),
        # Fullwidth digits are not a period: "２０２５-０５" passed as a second May budget.
        ("team,period,amount\nsearch,\uff12\uff10\uff12\uff15-\uff10\uff15,5\n", "not a period", 2),
    ],
)
def test_bad_budget_files_name_the_line(
    tmp_path: Path, text: str, message: str, line: int | None
) -> None:
    path = tmp_path / "budgets.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message) as raised:
        load_budgets(path)
    assert raised.value.line == line
    assert raised.value.path == str(path)


def test_a_budget_in_doubt_is_not_also_said_to_have_no_job(tmp_path: Path) -> None:
    """A job whose job_created (team search) was rejected may be search's: its budget is
    "unknown"; it was also said to be of a team no job names, with 0.00 spent."""
    log = tmp_path / "log.jsonl"
    rows = [
        {"job_id": "x", "ts": "2025-06-02T08:00:00Z", "event": "job_created", "team": "search",
         "data_sharing": 2},
        {"job_id": "x", "ts": "2025-06-02T08:00:00Z", "event": "phase_start", "phase": "rollout"},
        {"job_id": "x", "ts": "2025-06-02T09:00:00Z", "event": "phase_end", "phase": "rollout"},
        {"job_id": "x", "ts": "2025-06-02T09:00:00Z", "event": "succeeded"},
    ]  # fmt: skip
    log.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nsearch,2025-06,50.00\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["spend", str(log), "--budgets", str(budgets)])
    assert "Budget of search 2025-06 unknown" in result.output
    assert "No job of the logs is of team" not in result.output


def test_a_budget_of_a_team_the_logs_never_name_is_said(
    tmp_path: Path, bill: rftcost.Bill, log_file: Path
) -> None:
    """``Search`` for ``search``: 0.00 spent, "ok", and the real team unchecked; said in
    the JSON, the notes and the report (names match exactly, case included)."""
    budgets = [
        Budget(team="Search", period="2025-06", amount=Decimal(1000)),
        Budget(team="search", period="2025-06", amount=Decimal(100000)),
    ]
    report = spend(bill, budgets=budgets)
    assert [(b.team, b.team_in_logs) for b in report.budgets] == [
        ("Search", False),
        ("search", True),
    ]
    assert [b["team_in_logs"] for b in report.to_dict()["budgets"]] == [False, True]
    path = tmp_path / "budgets.csv"
    path.write_text("team,period,amount\nSearch,2025-06,1000.00\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["spend", str(log_file), "--budgets", str(path)])
    assert "No job of the logs is of team 'Search'" in result.output
    (row,) = [line for line in result.output.splitlines() if line.startswith("Search")]
    assert row.rstrip().endswith("no job of this team")
    from rftcost.report import html_report

    assert "no job of this team" in html_report(bill, budgets=Budgets(items=tuple(budgets)))


def test_sample_budgets_flag_the_over_spending_teams() -> None:
    if not all(p.exists() for p in MONTHLY):
        pytest.skip("sample_logs/ not generated")
    result = rftcost.bill(MONTHLY)
    report = spend(result, budgets=SAMPLE_LOGS / "budgets.csv")
    assert report.totals.total_amount == result.totals().total_amount
    assert {b.team for b in report.budgets} == {"search", "support", "legal", "research"}
    # Spent per team and month, summed here straight from the charges.
    charges = result.charges.assign(
        team=result.jobs.set_index("job")["team"].reindex(result.charges["job"]).to_numpy(),
        month=pd.to_datetime(result.charges["at"], unit="ns", utc=True).dt.strftime("%Y-%m"),
    )
    spent = charges.groupby(["team", "month"])["amount_cents"].sum()
    for status in report.budgets:
        cents = int(spent.get((status.team, status.period), 0))
        assert status.spent == Decimal(cents).scaleb(-2)
        assert status.over == (cents > int(status.amount * 100))
    # The sample budgets show both cases.
    assert report.over_budget and len(report.over_budget) < len(report.budgets)


# --- the document ------------------------------------------------------------------------------


def test_spend_json_document(bill: rftcost.Bill) -> None:
    document = spend(bill, by="team", period="month").to_dict()
    assert document["schema"] == SPEND_SCHEMA == "rftcost.spend/v1"
    assert document["policy"] == "openai-rft" and document["currency"] == "USD"
    row = document["rows"][0]
    for key in ("period", "team", "compute_amount", "discount_amount", "grader_amount",
                "total_amount", "jobs", "billed_hours", "budget", "budget_used"):  # fmt: skip
        assert key in row
    assert isinstance(row["jobs"], int)
    assert document["invalid_jobs"] == ["ftjob-broken"]
    assert document["totals"]["total_amount"] == f"{bill.totals().total_amount:.2f}"
    json.dumps(document)  # plain JSON


def test_empty_window_gives_an_empty_report(bill: rftcost.Bill) -> None:
    report = spend(bill, window="2024-01-01..2024-02-01")
    assert report.rows() == [] and report.totals.total_amount == Decimal("0.00")


# --- a property: whatever the jobs, spend adds up to the bill -----------------------------------


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    jobs=st.lists(st.integers(0, 10_000), min_size=1, max_size=5, unique=True).flatmap(
        lambda ids: st.tuples(*[job_events(f"ftjob-{i}") for i in ids])
    ),
    by=st.sampled_from(list(SpendGroup)),
    period=st.sampled_from(list(PeriodKind)),
)
def test_spend_always_adds_up_to_the_bill(
    jobs: tuple[list[dict[str, object]], ...], by: SpendGroup, period: PeriodKind
) -> None:
    events = pd.DataFrame([event for job in jobs for event in job])
    result = rftcost.bill(events)
    report = spend(result, by=by, period=period)
    assert report.totals.total_amount == result.totals().total_amount
    assert int(report.table["total_cents"].sum()) == int(result.charges["amount_cents"].sum())
    starts = report.table["period_start"].to_numpy()
    ends = report.table["period_end"].to_numpy()
    assert (starts < ends).all()


# --- command line ----------------------------------------------------------------------------


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    mixed_logs().to_json(path, orient="records", lines=True)
    return path


@pytest.fixture
def budgets_file(tmp_path: Path) -> Path:
    path = tmp_path / "budgets.csv"
    path.write_text("team,period,amount\nsearch,2025-06,300\nads,2025-06,10000\n", encoding="utf-8")
    return path


def test_cli_spend_table(log_file: Path, budgets_file: Path) -> None:
    result = runner.invoke(app, ["spend", str(log_file), "--budgets", str(budgets_file)])
    assert result.exit_code == 0, result.output
    assert "Spend per team and month" in result.output
    assert "unallocated" in result.output
    assert "OVER" in result.output
    assert f"Total USD {rftcost.bill(log_file).totals().total_amount:.2f}" in result.output
    assert "1 invalid job(s) not in the sums" in result.output
    assert "+ 1 invalid" in result.output  # the row of its team and month says so


def test_cli_spend_json_csv_markdown(log_file: Path) -> None:
    as_json = runner.invoke(
        app, ["spend", str(log_file), "--by", "model", "--period", "week", "-f", "json"]
    )
    document = json.loads(as_json.stdout)
    assert document["schema"] == "rftcost.spend/v1" and document["by"] == "model"
    assert all("model" in row for row in document["rows"])
    as_csv = runner.invoke(app, ["spend", str(log_file), "--by", "project", "-f", "csv"])
    header = as_csv.stdout.splitlines()[0].split(",")
    assert header[:2] == ["period", "project"] and header[-2:] == ["policy", "currency"]
    as_md = runner.invoke(app, ["spend", str(log_file), "-f", "markdown"])
    assert as_md.stdout.startswith("## RFT spend per team and month")
    assert "| period | team |" in as_md.stdout
    # The log's invalid job is in no row's sums: a CSV (or JSON) says so in its team's row
    # (unknown_jobs) and beside it on stderr; never a silent sheet of known sums.
    invalid = rftcost.bill(log_file).jobs.query("status == 'invalid'")["job_id"].tolist()
    assert invalid
    for kind in ("csv", "json"):
        written = runner.invoke(app, ["spend", str(log_file), "-f", kind])
        assert written.exit_code == 0
        assert f"{len(invalid)} invalid job(s) in no row's sums" in written.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert sum(int(row["unknown_jobs"]) for row in rows) == len(invalid)


def test_cli_spend_window_and_output(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "spend.json"
    result = runner.invoke(
        app,
        [
            "spend",
            str(log_file),
            "--window",
            "2025-07-01..2025-08-01",
            "-f",
            "json",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0
    document = json.loads(out.read_text())
    assert [r["period"] for r in document["rows"]] == ["2025-07"]
    assert document["totals"]["total_amount"] == "100.00"


def rftcost_main(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rftcost", *args], capture_output=True, text=True, check=False
    )


def test_cli_fail_over_budget_exit_codes(
    log_file: Path, budgets_file: Path, tmp_path: Path
) -> None:
    over = rftcost_main(
        "spend", str(log_file), "--budgets", str(budgets_file), "--fail-over-budget"
    )
    assert over.returncode == 1
    within = tmp_path / "within.csv"
    within.write_text("team,period,amount\nads,2025-06,100000\n", encoding="utf-8")
    ok = rftcost_main("spend", str(log_file), "--budgets", str(within), "--fail-over-budget")
    assert ok.returncode == 0, ok.stderr
    # search has an invalid job in June: its budget may be broken, unknown, not "ok".
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("team,period,amount\nsearch,2025-06,100000\n", encoding="utf-8")
    found = rftcost_main("spend", str(log_file), "--budgets", str(unknown), "--fail-over-budget")
    assert found.returncode == 1
    assert "Budget of search 2025-06 unknown" in found.stdout and "ftjob-broken" in found.stdout
    # Over budget without the flag is still exit 0: the table says so.
    assert rftcost_main("spend", str(log_file), "--budgets", str(budgets_file)).returncode == 0


def test_cli_usage_errors(log_file: Path, tmp_path: Path) -> None:
    no_budgets = rftcost_main("spend", str(log_file), "--fail-over-budget")
    assert no_budgets.returncode == 2 and "needs --budgets" in no_budgets.stderr
    window = rftcost_main("spend", str(log_file), "--window", "2025-07-01..2025-06-01")
    assert window.returncode == 2 and "before its end" in window.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("team,period,amount\nsearch,2025-06,-5\n", encoding="utf-8")
    budgets = rftcost_main("spend", str(log_file), "--budgets", str(bad))
    assert budgets.returncode == 2
    assert f"{bad}:2" in budgets.stderr and "must not be negative" in budgets.stderr
    assert len(budgets.stderr.strip().splitlines()) == 1


def test_build_window_from_datetimes(bill: rftcost.Bill) -> None:
    window = Window(
        start=datetime(2025, 6, 30, tzinfo=UTC),
        end=datetime(2025, 6, 30, tzinfo=UTC) + timedelta(days=1),
    )
    report = spend(bill, by="team", period="day", window=window)
    assert report.periods() == ["2025-06-30"]


@pytest.mark.parametrize("valid_jobs", [0, 1])
def test_records_of_no_known_job_make_every_total_unknown_not_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], valid_jobs: int
) -> None:
    from builders import cli

    records = [{"job_id": " ", "ts": "2025-06-01T08:00:00Z", "event": "job_created"}]  # no id
    if valid_jobs:
        records += JobLog("j").created(team="t").phase("rollout", hours=1).add("succeeded").events
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    reason = "1 rejected record of no known job: see rftcost validate"

    code, out, _ = cli(capsys, "spend", str(log))
    expected = "Total USD 100.00 + unknown (" if valid_jobs else "Total USD unknown ("
    assert code == 0 and f"{expected}{reason}" in out
    code, out, _ = cli(capsys, "spend", str(log), "-f", "json")
    assert json.loads(out)["orphan_records"] == 1
    code, _, err = cli(capsys, "export", "focus", str(log), "-o", str(tmp_path / "f.csv"))
    assert code == 0 and "1 rejected record(s) of no known job not exported" in err
    code, _, err = cli(capsys, "report", str(log), "-o", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text()
    charged = "$100.00 + unknown" if valid_jobs else "unknown"
    assert f'id="total-charged">{charged}<' in page
    assert "1 rejected record(s) of no known job: amount unknown (not $0)" in page
    code, _, err = cli(capsys, "chart", "spend", str(log), "-o", str(tmp_path / "c.svg"))
    assert code == 0 and "1 rejected record(s) of no known job" in err


def test_budgets_in_another_currency_are_refused_not_compared(
    tmp_path: Path, bill: rftcost.Bill
) -> None:
    """A ``currency`` column is read: EUR budgets against USD charges would say nothing
    true (955.73% used); the bill's own currency, or none named, is compared as before."""
    path = tmp_path / "budgets.csv"
    path.write_text(
        "team,period,amount,currency\nsearch,2025-06,300.00,USD\nads,2025-06,10,EUR\n",
        encoding="utf-8",
    )
    budgets = load_budgets(path)
    assert [b.currency for b in budgets.items] == ["USD", "EUR"]
    with pytest.raises(InputError, match="a budget in EUR where the charges are in USD") as raised:
        spend(bill, budgets=budgets)
    assert (raised.value.line, raised.value.path) == (3, str(path))
    same = load_budgets(
        _written(tmp_path / "usd.csv", "team,period,amount,currency\nads,2025-06,10,USD\n")
    )
    assert spend(bill, budgets=same).budgets[0].amount == Decimal("10")


def _written(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_budgets_after_blank_lines_and_comments_with_a_line_separator_in_a_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "budgets.csv"
    path.write_text(
        "\n# budgets\n\nteam,period,amount\nml\u2028ops,2025-06,10.00\n\nb,2025-06,5\n",
        encoding="utf-8",
    )
    budgets = load_budgets(path)
    assert [(b.team, b.line) for b in budgets.items] == [("ml\u2028ops", 5), ("b", 7)]


def _log_with_an_invalid_job_over_two_months(tmp_path: Path) -> Path:
    """ftjob-ok (search, June, $100) and ftjob-bad (search, project ranker, 30 June to
    1 July), whose last record has a time without a zone: rejected, the job invalid."""
    lines = [
        '{"job_id":"ftjob-ok","ts":"2025-06-10T00:00:00Z","event":"job_created",'
        '"team":"search","model":"o4-mini"}',
        '{"job_id":"ftjob-ok","ts":"2025-06-10T00:00:00Z","event":"phase_start","phase":"rollout"}',
        '{"job_id":"ftjob-ok","ts":"2025-06-10T01:00:00Z","event":"phase_end","phase":"rollout"}',
        '{"job_id":"ftjob-ok","ts":"2025-06-10T01:00:00Z","event":"succeeded"}',
        '{"job_id":"ftjob-bad","ts":"2025-06-30T23:00:00Z","event":"job_created",'
        '"team":"search","project":"ranker","model":"o4-mini"}',
        '{"job_id":"ftjob-bad","ts":"2025-06-30T23:00:00Z","event":"phase_start","phase":"rollout"}',
        '{"job_id":"ftjob-bad","ts":"2025-07-01T01:00:00Z","event":"phase_end","phase":"rollout"}',
        '{"job_id":"ftjob-bad","ts":"2025-07-01T01:00:00","event":"succeeded"}',
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_invalid_job_is_counted_in_the_rows_of_every_period_it_spans(tmp_path: Path) -> None:
    bill = rftcost.bill(_log_with_an_invalid_job_over_two_months(tmp_path))
    assert bill.jobs.set_index("job_id").loc["ftjob-bad", "status"] == "invalid"
    rows = {(r["period"], r["team"]): r for r in spend(bill).rows()}
    june, july = rows["2025-06", "search"], rows["2025-07", "search"]
    # June: the known job's sum, and the invalid job beside it (a lower bound).
    assert (june["total_amount"], june["jobs"], june["unknown_jobs"]) == ("100.00", 1, 1)
    # July: only the invalid job: no sum (null), not 0.00.
    assert (july["total_amount"], july["compute_amount"], july["billed_hours"]) == (None,) * 3
    assert (july["jobs"], july["unknown_jobs"]) == (0, 1)
    by_project = {(r["period"], r["project"]): r for r in spend(bill, by="project").rows()}
    assert by_project["2025-07", "ranker"]["unknown_jobs"] == 1
    assert by_project["2025-06", UNALLOCATED]["unknown_jobs"] == 0  # ftjob-ok: no project
    by_day = {r["period"]: r["unknown_jobs"] for r in spend(bill, period="day").rows()}
    assert by_day == {"2025-06-10": 0, "2025-06-30": 1, "2025-07-01": 1}
    # A window keeps the periods it meets.
    inside = spend(bill, window="2025-07-01..2025-08-01").rows()
    assert [(r["period"], r["unknown_jobs"], r["total_amount"]) for r in inside] == [
        ("2025-07", 1, None)
    ]
    assert spend(bill, window="2025-06-01..2025-06-30").rows()[0]["unknown_jobs"] == 0


def test_cli_spend_rows_say_unknown_in_every_format(tmp_path: Path) -> None:
    log = _log_with_an_invalid_job_over_two_months(tmp_path)
    as_csv = runner.invoke(app, ["spend", str(log), "-f", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    rows = {row["period"]: row for row in csv.DictReader(io.StringIO(as_csv.stdout))}
    assert (rows["2025-07"]["total_amount"], rows["2025-07"]["unknown_jobs"]) == ("", "1")
    assert (rows["2025-06"]["total_amount"], rows["2025-06"]["unknown_jobs"]) == ("100.00", "1")
    table = runner.invoke(app, ["spend", str(log)]).stdout
    (june,) = [line for line in table.splitlines() if line.startswith("2025-06")]
    (july,) = [line for line in table.splitlines() if line.startswith("2025-07")]
    assert "1 + 1 invalid" in june and "100.00 + unknown" in june
    assert "0 + 1 invalid" in july and "unknown" in july and "0.00" not in july


def test_spend_chart_never_writes_zero_over_a_row_of_unknown_amount(tmp_path: Path) -> None:
    from rftcost.charts import spend_figure

    figure = spend_figure(spend(rftcost.bill(_log_with_an_invalid_job_over_two_months(tmp_path))))
    labels = [text.get_text() for text in figure.axes[0].texts]
    assert "unknown" in labels and "$100.00\n+ unknown" in labels
    assert not any(re.fullmatch(r"(US)?\$0(\.00)?", label) for label in labels)


def _log_with_a_record_of_no_known_job(tmp_path: Path) -> Path:
    """ftjob-ok alone (search, June, $100) and a record whose job id cannot be read."""
    log = _log_with_an_invalid_job_over_two_months(tmp_path)
    lines = log.read_text().splitlines()[:4]
    log.write_text(
        "\n".join([*lines, '{"jobid":"x","ts":"2025-06-11T00:00:00Z","event":"succeeded"}']) + "\n"
    )
    return log


def test_a_record_of_no_known_job_leaves_every_budget_in_doubt(tmp_path: Path) -> None:
    """A record whose job id cannot be read may be a charge of any team at any time: a
    budget 68% used said "ok" and --fail-over-budget exited 0; now it is unknown (exit 1)."""
    log = _log_with_a_record_of_no_known_job(tmp_path)
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nsearch,2025-06,150\n")
    (status,) = spend(rftcost.bill(log), budgets=budgets).budgets
    assert (status.status, status.unknown_records, status.used_percent) == ("unknown", 1, None)
    result = runner.invoke(
        app, ["spend", str(log), "--budgets", str(budgets), "--fail-over-budget"]
    )
    assert result.exit_code == 1
    assert "100.00 + unknown" in result.stdout and "1 rejected record(s)" in result.stdout


def test_a_job_whose_every_record_was_rejected_leaves_every_budget_in_doubt(
    tmp_path: Path,
) -> None:
    """A job of 48 h whose every time lacked an offset had no readable time: it reached no
    budget, which said "ok" at 50% (--fail-over-budget exit 0). Its time and team are
    unknown, so every budget is in doubt of it, as of a record of no known job."""
    log = tmp_path / "lost.jsonl"
    rows = [
        ("j-ok", "2025-06-10T10:00:00Z", "job_created", {"team": "alpha"}),
        ("j-ok", "2025-06-10T10:00:00Z", "phase_start", {"phase": "rollout"}),
        ("j-ok", "2025-06-10T11:00:00Z", "phase_end", {"phase": "rollout"}),
        ("j-ok", "2025-06-10T11:00:00Z", "succeeded", {}),
        ("j-lost", "2025-06-12T10:00:00", "job_created", {"team": "alpha"}),
        ("j-lost", "2025-06-12T10:00:00", "phase_start", {"phase": "rollout"}),
        ("j-lost", "2025-06-14T10:00:00", "phase_end", {"phase": "rollout"}),
        ("j-lost", "2025-06-14T10:00:00", "succeeded", {}),
    ]
    log.write_text(
        "".join(
            json.dumps({"job_id": job, "ts": ts, "event": event, **extra}) + "\n"
            for job, ts, event, extra in rows
        )
    )
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nalpha,2025-06,200\n")
    (status,) = spend(rftcost.bill(log), budgets=budgets).budgets
    assert (status.status, status.unknown_jobs, status.used_percent) == (
        "unknown",
        ("j-lost",),
        None,
    )
    result = runner.invoke(
        app, ["spend", str(log), "--budgets", str(budgets), "--fail-over-budget"]
    )
    assert result.exit_code == 1 and "100.00 + unknown" in result.stdout


def test_cumulative_chart_never_labels_a_team_of_unknown_amount_zero(tmp_path: Path) -> None:
    from rftcost.charts import cumulative_figure

    bill = rftcost.bill(_log_with_an_invalid_job_over_two_months(tmp_path))
    figure = cumulative_figure(bill, month="2025-07")
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert "search: unknown" in legend
    # Nor drawn along $0: its line has no point.
    (line,) = [line for line in figure.axes[0].get_lines() if line.get_label() == "search"]
    assert len(line.get_xdata()) == 0


def test_a_budget_in_doubt_is_never_charted_as_zero_and_an_over_row_says_over(
    tmp_path: Path,
) -> None:
    """A record of no known job puts every budget in doubt: the row of a team with no job
    was drawn "$0" and a row already over showed only "unknown"."""
    from rftcost.charts import spend_figure

    log = _log_with_a_record_of_no_known_job(tmp_path)
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nsearch,2025-06,50\nlegal,2025-06,10\n")
    report = spend(rftcost.bill(log), budgets=budgets)
    labels = [t.get_text() for t in spend_figure(report).axes[0].texts]
    assert sorted(labels) == ["$100.00\n+ unknown", "unknown"]
    table = runner.invoke(app, ["spend", str(log), "--budgets", str(budgets)]).stdout
    (search,) = [line for line in table.splitlines() if line.startswith("2025-06   search")]
    assert search.rstrip().endswith("OVER")


def test_the_note_on_invalid_jobs_says_when_no_row_counts_them(tmp_path: Path) -> None:
    log = _log_with_an_invalid_job_over_two_months(tmp_path)
    outside = runner.invoke(app, ["spend", str(log), "--window", "2025-07-02..2025-08-01"])
    assert "in no row of this report" in outside.stdout
    inside = runner.invoke(app, ["spend", str(log)])
    assert "counted in unknown_jobs of the rows of their periods" in inside.stdout
