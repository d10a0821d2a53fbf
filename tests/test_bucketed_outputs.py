"""What is made from a bill billed in buckets equals what is made from the bill made at once.

A bill made in buckets (above 2M events, the command line's default) keeps amounts and
per-job time, not the time line event by event: every output made from it must either
come out the same or refuse, never come out short (found by an attacker pass: FOCUS rows
left out every grader token charge above 2M events).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import rftcost
from rftcost.calibration import calibrate
from rftcost.errors import CalibrationError
from rftcost.focus import focus_rows
from rftcost.invoice_writers import invoice_from_bill
from rftcost.simulate import simulate_jobs, write_events


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 simulated jobs (graders, failures, pauses), written job by job."""
    path = tmp_path_factory.mktemp("bucketed") / "jobs.parquet"
    return write_events(simulate_jobs(n_jobs=300, seed=3), path)


@pytest.fixture(scope="module")
def at_once(log: Path) -> rftcost.Bill:
    return rftcost.bill(log, buckets=None)


@pytest.fixture(scope="module")
def in_buckets(log: Path) -> rftcost.Bill:
    return rftcost.bill(log, buckets=3)


def test_focus_rows_of_a_bill_in_buckets_are_those_of_the_bill_at_once(
    at_once: rftcost.Bill, in_buckets: rftcost.Bill
) -> None:
    whole, bucketed = focus_rows(at_once), focus_rows(in_buckets)
    assert whole["x_TokenType"].notna().sum() > 100  # grader token rows, the ones once lost
    assert bucketed["BilledCost"].sum() == in_buckets.totals().total_amount
    pd.testing.assert_frame_equal(
        bucketed.reset_index(drop=True), whole.reset_index(drop=True), check_exact=True
    )


def test_an_invoice_by_token_type_of_a_bill_in_buckets_is_that_of_the_bill_at_once(
    at_once: rftcost.Bill, in_buckets: rftcost.Bill
) -> None:
    whole = invoice_from_bill(at_once, token_types=True)
    assert (whole["line_type"] == "grader_tokens").any()
    pd.testing.assert_frame_equal(invoice_from_bill(in_buckets, token_types=True), whole)


def test_calibration_refuses_a_bill_made_in_buckets_and_bills_its_logs_whole(
    log: Path, in_buckets: rftcost.Bill, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CalibrationError, match="made in buckets"):
        calibrate(in_buckets, min_jobs=5, allow_constant=True)
    expected = calibrate(log, min_jobs=5, allow_constant=True)
    # Logs that would be billed in buckets (above the threshold) are billed with their
    # time line kept: the same calibration, not one measured on no time and no token.
    monkeypatch.setattr("rftcost.buckets.AUTO_BUCKET_EVENTS", 1_000)
    again = calibrate(log, min_jobs=5, allow_constant=True)
    # created_at is the wall clock to the second: two calibrations may straddle a second.
    assert again.model_copy(update={"created_at": expected.created_at}) == expected
