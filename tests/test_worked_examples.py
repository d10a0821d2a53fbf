"""The twelve worked examples of billing-rules.md, as golden tests with exact Decimals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from builders import JobLog, frame_of, guide_prelude

import rftcost


def bill_one(log: JobLog, policy: str | rftcost.Policy = "openai-rft") -> rftcost.JobBill:
    return rftcost.bill(log.frame(), policy=policy).job(log.job_id)


def test_example_01_successful_run() -> None:
    log = guide_prelude(JobLog("ex1").created())
    log.phase("rollout", hours=4).phase("safety_eval", minutes=30).add("succeeded")
    job = bill_one(log)
    assert job.wall_seconds == 6 * 3600
    assert job.billed_hours == Decimal("4.00")
    assert job.total_amount == Decimal("400.00")
    assert job.excluded_seconds == {
        "validating_files": 600.0,
        "safety_check": 1200.0,
        "queued": 1800.0,
        "setup": 1800.0,
        "safety_eval": 1800.0,
    }


def test_example_02_failed_run_keeps_work_up_to_the_checkpoint() -> None:
    log = guide_prelude(JobLog("ex2").created())
    log.add("phase_start", phase="rollout").at(hours=2).add("checkpoint_saved", step=5)
    log.at(hours=1).add("failed")
    job = bill_one(log)
    assert job.status == "failed"
    assert job.billed_hours == Decimal("2.00")
    assert job.total_amount == Decimal("200.00")
    assert job.lost_seconds == 3600


def _training(log: JobLog, **duration: float) -> JobLog:
    return log.phase("rollout", **duration)


def test_example_03_rounding_up() -> None:
    log = _training(JobLog("ex3").created(), hours=1, seconds=18).add("succeeded")
    job = bill_one(log)
    assert job.billed_hours == Decimal("1.01")
    assert job.total_amount == Decimal("101.00")


def test_example_04_rounding_down() -> None:
    log = _training(JobLog("ex4").created(), hours=1, seconds=17).add("succeeded")
    job = bill_one(log)
    assert job.billed_hours == Decimal("1.00")
    assert job.total_amount == Decimal("100.00")


def _pause_resume() -> JobLog:
    log = _training(JobLog("ex5").created(), hours=1, seconds=17).add("paused")
    log.at(hours=3).add("resumed")
    return _training(log, hours=1, seconds=17).add("succeeded")


def test_example_05_pause_and_resume_two_charges() -> None:
    job = bill_one(_pause_resume())
    assert [c.event for c in job.charges] == ["paused", "succeeded"]
    assert [c.amount for c in job.charges] == [Decimal("100.00"), Decimal("100.00")]
    assert job.total_amount == Decimal("200.00")
    assert job.excluded_seconds == {"paused": 3 * 3600.0}


def test_example_05_with_job_rounding_scope() -> None:
    policy = rftcost.load_policy().model_copy(
        update={
            "rounding": rftcost.load_policy().rounding.model_copy(update={"scope": "job"}),
        }
    )
    job = bill_one(_pause_resume(), policy)
    assert [c.billed_hours for c in job.charges] == [Decimal("0.00"), Decimal("2.01")]
    assert job.total_amount == Decimal("201.00")


def test_example_06_overlapping_phases_count_once() -> None:
    log = JobLog("ex6").created()
    start = log.clock
    log.add("phase_start", phase="rollout").at(minutes=30).add("phase_start", phase="grading")
    log.at(minutes=30).add("phase_end", phase="rollout")
    log.at(minutes=30).add("phase_end", phase="grading").add("phase_start", phase="update")
    log.at(minutes=30).add("phase_end", phase="update").add("succeeded")
    assert (log.clock - start).total_seconds() == 2 * 3600
    job = bill_one(log)
    assert job.billed_hours == Decimal("2.00")
    assert job.total_amount == Decimal("200.00")


def test_example_07_cancel_bills_all_work() -> None:
    log = JobLog("ex7").created().add("phase_start", phase="rollout").at(hours=3).add("cancelled")
    job = bill_one(log)
    assert job.status == "cancelled"
    assert job.total_amount == Decimal("300.00")
    assert job.lost_seconds == 0


def test_example_08_failure_without_checkpoint_in_segment() -> None:
    log = JobLog("ex8").created().add("checkpoint_saved", step=0)
    _training(log, hours=1).add("paused").at(minutes=10).add("resumed")
    log.add("phase_start", phase="rollout").at(hours=2).add("failed")
    job = bill_one(log)
    assert [c.amount for c in job.charges] == [Decimal("100.00"), Decimal("0.00")]
    assert job.charges[1].lost_seconds == 2 * 3600
    assert job.total_amount == Decimal("100.00")


def test_example_09_data_sharing_discount() -> None:
    log = guide_prelude(JobLog("ex9").created(data_sharing=True))
    log.phase("rollout", hours=4).phase("safety_eval", minutes=30).add("succeeded")
    job = bill_one(log)
    assert job.compute_amount == Decimal("400.00")
    assert job.discount_amount == Decimal("200.00")
    assert job.total_amount == Decimal("200.00")


def test_example_09_no_training_discount_policy() -> None:
    log = _training(JobLog("ex9b").created(data_sharing=True), hours=4).add("succeeded")
    job = bill_one(log, rftcost.load_policy("openai-rft-no-training-discount"))
    assert job.discount_amount == Decimal("0.00")
    assert job.total_amount == Decimal("400.00")


def test_example_10_grader_tokens() -> None:
    log = JobLog("ex10").created(grader_model="gpt-4.1").add("phase_start", phase="rollout")
    log.at(minutes=30).add(
        "grader_usage",
        grader_model="gpt-4.1",
        input_tokens=1_000_000,
        cached_input_tokens=200_000,
        output_tokens=100_000,
    )
    log.at(minutes=30).add("succeeded")
    job = bill_one(log)
    assert job.grader_amount == Decimal("2.50")
    assert job.total_amount == Decimal("102.50")
    (line,) = job.charges[0].grader_lines
    assert (line.input_tokens, line.cached_input_tokens, line.output_tokens) == (
        1_000_000,
        200_000,
        100_000,
    )


@pytest.mark.parametrize(
    ("day", "expected"),
    # 0.8M uncached × $10 + 0.2M cached × $2.50 + 0.15M output × $40 = $14.50 before
    # 2025-06-10; × $2 / $0.50 / $8 = $2.90 after (R10).
    [(9, Decimal("14.50")), (11, Decimal("2.90"))],
)
def test_example_11_price_in_force_at_the_usage_time(day: int, expected: Decimal) -> None:
    log = JobLog(f"ex11-{day}", clock=datetime(2025, 6, day, 8, tzinfo=UTC))
    log.created(grader_model="o3").add("phase_start", phase="rollout").at(minutes=30)
    log.add(
        "grader_usage",
        grader_model="o3-2025-04-16",
        input_tokens=1_000_000,
        cached_input_tokens=200_000,
        output_tokens=150_000,
    )
    log.at(minutes=30).add("succeeded")
    assert bill_one(log).grader_amount == expected


def test_example_11_costs_five_times_less_after_the_change() -> None:
    amounts = []
    for day in (9, 11):
        log = JobLog(f"o3-{day}", clock=datetime(2025, 6, day, 8, tzinfo=UTC))
        log.created().add("phase_start", phase="rollout").at(minutes=30)
        log.add("grader_usage", grader_model="o3", input_tokens=1_000_000, output_tokens=100_000)
        log.at(minutes=30).add("succeeded")
        amounts.append(bill_one(log).grader_amount)
    assert amounts == [Decimal("14.00"), Decimal("2.80")]
    assert amounts[0] == amounts[1] * 5


def test_example_12_rollback_loses_work_since_the_checkpoint() -> None:
    log = JobLog("ex12").created().add("phase_start", phase="rollout").at(hours=1)
    log.add("checkpoint_saved", step=10).at(minutes=30).add("rollback", step=10)
    log.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    job = bill_one(log)
    assert job.billed_hours == Decimal("2.00")
    assert job.total_amount == Decimal("200.00")
    assert job.lost_seconds == 1800


def test_all_examples_in_one_frame_bill_as_they_do_alone() -> None:
    first = guide_prelude(JobLog("a").created()).phase("rollout", hours=4).add("succeeded")
    second = _pause_resume()
    together = rftcost.bill(frame_of(first, second))
    assert together.job("a").total_amount == Decimal("400.00")
    assert together.job("ex5").total_amount == Decimal("200.00")
    assert together.totals().total_amount == Decimal("600.00")


def test_zero_length_phase_pairs_with_its_own_start() -> None:
    # event-log.md "Pairing": at one moment an end closes an interval opened earlier;
    # with none open, an end of a phase that is not billable closes the start of that
    # same moment (a zero-length phase, which costs nothing either way).
    log = JobLog("zero").created().add("phase_start", phase="rollout").at(hours=1)
    log.add("phase_end", phase="rollout").add("phase_start", phase="rollout")
    log.add("phase_start", phase="queued").add("phase_end", phase="queued")
    log.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    job = bill_one(log)
    assert job.status == "succeeded"
    assert job.total_amount == Decimal("200.00")


def test_a_billable_phase_left_open_across_a_pause_is_not_billed_while_paused() -> None:
    """R2 over R1: a paused job does no work, whatever phase its log leaves open."""
    log = JobLog("span").created().add("phase_start", phase="rollout").at(hours=1)
    log.add("paused").at(hours=1).add("resumed").at(hours=1)
    log.add("phase_end", phase="rollout").add("succeeded")
    bill = rftcost.bill(log.frame())
    job = bill.job("span")
    assert [c.amount for c in job.charges] == [Decimal("100.00"), Decimal("100.00")]
    assert job.total_amount == Decimal("200.00")
    explained = rftcost.explain(bill, "span")
    assert [s.status for s in explained.stretches] == ["billed", "excluded", "billed"]
    assert "paused" in explained.stretches[1].phases


def test_a_paused_phase_marked_over_a_billable_one_is_not_billed() -> None:
    log = JobLog("marked").created().add("phase_start", phase="rollout")
    log.at(minutes=30).add("phase_start", phase="paused").at(minutes=30)
    log.add("phase_end", phase="paused").at(hours=1).add("phase_end", phase="rollout")
    job = bill_one(log.add("succeeded"))
    assert job.billable_seconds == 1.5 * 3600 and job.total_amount == Decimal("150.00")


def test_an_end_and_a_start_of_a_billable_phase_at_one_moment_with_none_open_is_invalid() -> None:
    """A log that lost its head: the start opens work that runs on, or a zero-length
    phase; the end closes nothing, so the amount is unknown, not $0 (event-log.md,
    "Pairing": at equal times an end comes before a start)."""
    log = JobLog("headless").created().at(hours=1).add("phase_end", phase="rollout")
    log.add("phase_start", phase="rollout").at(hours=1).add("succeeded")
    job = bill_one(log)
    assert job.status == "invalid" and job.total_amount is None
    assert any("phase_end of 'rollout'" in p for p in job.problems)


def test_a_pause_starting_at_the_moment_of_the_last_resume_is_its_own() -> None:
    """paused 10:30, resumed 11:00, paused 11:00, resumed 12:00: the second pause runs to
    12:00 (it took the 11:00 resume, closing nothing, and billed the hour)."""
    log = JobLog("twice").created().add("phase_start", phase="rollout").at(minutes=30)
    log.add("paused").at(minutes=30).add("resumed").add("paused").at(hours=1).add("resumed")
    log.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    job = bill_one(log)
    assert job.billable_seconds == 1.5 * 3600 and job.total_amount == Decimal("150.00")


@pytest.mark.parametrize(
    "events", [("paused", "succeeded"), ("failed", "paused"), ("cancelled", "paused")]
)
def test_billing_events_at_one_moment_bill_alike_in_any_record_order(
    events: tuple[str, str],
) -> None:
    """Two billing events at one moment are ordered by kind, not by the records' order."""
    outcomes = set()
    for order in (events, events[::-1]):
        log = JobLog("same").created().add("phase_start", phase="rollout").at(hours=1)
        log.add("phase_end", phase="rollout")
        for event in order:
            log.add(event)
        job = bill_one(log)
        outcomes.add((job.status, job.total_amount, tuple(job.problems)))
    assert len(outcomes) == 1, outcomes
