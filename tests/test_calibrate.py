"""Calibration: fitting time and tokens on past jobs' bills (rftcost.calibration)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rftcost.billing import Bill
from rftcost.calibration import PRIOR, Calibration, calibrate, grader_key, job_measurements
from rftcost.engines import bill
from rftcost.errors import CalibrationError
from rftcost.simulate import RunSettings, Scenario, random_settings, simulate_jobs

SAMPLE_LOGS = Path(__file__).resolve().parents[1] / "sample_logs"


@pytest.fixture(scope="module")
def history() -> Bill:
    return bill(simulate_jobs(n_jobs=200, seed=11))


@pytest.fixture(scope="module")
def fitted(history: Bill) -> Calibration:
    return calibrate(history)


def test_measures_steps_runs_time_and_tokens_of_successful_jobs(history: Bill) -> None:
    frame, skipped = job_measurements(history)
    succeeded = int((history.jobs["status"] == "succeeded").sum())
    assert len(frame) == succeeded
    assert skipped["not succeeded"] == len(history.jobs) - succeeded
    assert (frame["steps"] > 0).all()
    # every simulated job validates at least at its last step
    assert (frame["valid_runs"] >= 1).all()
    assert (frame["train_seconds"] > 0).all() and (frame["valid_seconds"] > 0).all()
    # training + validation time is the job's billable union (R1), lost work included
    billable = (
        history.jobs.set_index("job_id")["billable_ns"]
        + history.jobs.set_index("job_id")["lost_ns"]
    )
    measured = frame.set_index("job_id")
    expected = billable.reindex(measured.index).astype("float64") / 1e9
    assert np.allclose(measured["train_seconds"] + measured["valid_seconds"], expected, rtol=1e-9)
    model_graded = frame["grader"].str.contains(":")
    assert (frame.loc[model_graded, "train_input_tokens"] > 0).all()
    assert (frame.loc[~model_graded, "train_input_tokens"] == 0).all()


def test_grader_keys_pool_score_and_label_graders_of_one_model() -> None:
    assert grader_key("score_model", "gpt-4.1-2025-04-14") == "model:gpt-4.1"
    assert grader_key("label_model", "gpt-4.1") == "model:gpt-4.1"
    assert grader_key("multi", "o3-2025-04-16") == "multi:o3"
    assert grader_key("python", None) == "python"


def test_fit_reports_its_quality(fitted: Calibration) -> None:
    assert fitted.calibrated
    assert fitted.n_jobs > 150
    train = fitted.components["train_seconds_per_step"]
    assert train.r2 is not None and train.r2 > 0.9
    assert 0.03 < train.residual_sd < 0.3
    assert fitted.quality["job_billable_seconds"]["median_abs_rel_error"] < 0.15
    assert set(fitted.residual_columns) == set(fitted.components)
    assert len(fitted.residuals) == fitted.n_jobs
    lines = fitted.summary_lines()
    assert any("R²" in line for line in lines)
    assert abs(sum(fitted.phase_shares.values()) - 1) < 1e-9
    # the simulator caches 20-60% of grader input tokens
    assert 0.2 < fitted.cached_share["*"] < 0.6


def test_fitted_slopes_are_physical(fitted: Calibration) -> None:
    train = dict(
        zip(
            fitted.components["train_seconds_per_step"].features,
            fitted.components["train_seconds_per_step"].coefficients,
            strict=True,
        )
    )
    valid = dict(
        zip(
            fitted.components["valid_seconds_per_run"].features,
            fitted.components["valid_seconds_per_run"].coefficients,
            strict=True,
        )
    )
    tokens = dict(
        zip(
            fitted.components["train_input_tokens_per_step"].features,
            fitted.components["train_input_tokens_per_step"].coefficients,
            strict=True,
        )
    )
    assert 0.5 < train["log_batch_size"] < 1.1
    assert train["reasoning_effort=high"] > 0 > train["reasoning_effort=low"]
    assert 0.4 < valid["log_eval_samples"] < 1.1
    assert valid["grader=model:o3"] > valid.get("grader=model:gpt-4.1-nano", 0.0)
    # grader tokens are proportional to the samples graded
    assert abs(tokens["log_batch_size"] - 1) < 0.05
    assert abs(tokens["log_compute_multiplier"] - 1) < 0.05


def test_save_and_load_round_trip(fitted: Calibration, tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    fitted.save(path)
    document = json.loads(path.read_text())
    assert document["schema"] == "rftcost.calibration/v1"
    assert Calibration.load(path) == fitted


def test_loading_something_else_is_a_calibration_error(tmp_path: Path) -> None:
    other = tmp_path / "bill.json"
    other.write_text(json.dumps({"schema": "rftcost.bill/v1"}))
    with pytest.raises(CalibrationError, match=r"not a calibration file.*rftcost calibrate"):
        Calibration.load(other)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(CalibrationError, match=r"broken.json:1: not JSON"):
        Calibration.load(broken)
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(tmp_path / "missing.json")
    damaged = PRIOR.to_dict()
    damaged["n_jobs"] = "many"
    with pytest.raises(CalibrationError, match="invalid calibration at n_jobs"):
        Calibration.from_dict(damaged)


def test_a_calibration_that_is_not_text_is_a_calibration_error(tmp_path: Path) -> None:
    """Not the codec's words, a RecursionError, or estimate's output unwritable."""
    text = json.dumps(PRIOR.to_dict(), indent=1)
    path = tmp_path / "calibration.json"
    path.write_bytes(
        text.replace('"rftcost.calibration/v1"', '"rftcost.calibration/v1\xff"').encode("latin-1")
    )
    with pytest.raises(CalibrationError, match=r"calibration.json: not UTF-8 text"):
        Calibration.load(path)
    path.write_text("[" * 100_000)
    with pytest.raises(CalibrationError, match=r"calibration.json: not JSON \(nested too deep\)"):
        Calibration.load(path)
    damaged = PRIOR.to_dict() | {"notes": ["NOTE"]}
    text = json.dumps(damaged, indent=1)
    path.write_text(text.replace("NOTE", "\\udc80"))
    line = 1 + text.split("NOTE")[0].count("\n")
    with pytest.raises(CalibrationError, match=rf"json:{line}: not valid text: a lone surrogate"):
        Calibration.load(path)
    path.write_text(text.replace("NOTE", "\\ud83d\\ude00"))  # a pair is one character
    assert Calibration.load(path).notes == ("\U0001f600",)


def test_refuses_a_thin_history() -> None:
    events = simulate_jobs(n_jobs=12, seed=3)
    with pytest.raises(
        CalibrationError, match=r"too little history: \d+ successful job\(s\).*at least 20"
    ):
        calibrate(events)


def test_refuses_when_a_needed_setting_never_varies() -> None:
    rng = np.random.default_rng(5)
    settings = [s.model_copy(update={"batch_size": 16}) for s in random_settings(rng, 60)]
    events = simulate_jobs(settings, seed=5, scenarios=Scenario())
    with pytest.raises(CalibrationError, match=r"no variation in batch_size.*--allow-constant"):
        calibrate(events)
    relaxed = calibrate(events, allow_constant=True)
    train = relaxed.components["train_seconds_per_step"]
    assert "log_batch_size" in train.fixed
    assert any("batch_size constant" in note for note in relaxed.notes)


def test_r_squared_of_a_history_that_never_varies_is_not_a_number() -> None:
    """Identical jobs: nothing to explain, so R² is n/a (it was 1.000 or 0.000 by the
    sign of rounding noise, component by component)."""
    one = simulate_jobs([RunSettings()], seed=1, scenarios=Scenario())
    copies = [
        one.assign(job_id=f"ftjob-copy{i}", event_id=one["event_id"] + f"-{i}") for i in range(25)
    ]
    result = calibrate(pd.concat(copies, ignore_index=True), min_jobs=5, allow_constant=True)
    assert {fit.r2 for fit in result.components.values() if fit.n_jobs} == {None}
    assert result.quality["job_billable_seconds"]["r2"] is None or math.isnan(
        result.quality["job_billable_seconds"]["r2"]
    )
    lines = result.summary_lines()
    assert any("job billable time: R² n/a" in line for line in lines)
    assert not any("R² 1.000" in line or "R² 0.000" in line for line in lines)


def test_too_few_jobs_for_the_settings_that_vary_is_the_error_said() -> None:
    """Five good jobs (``--min-jobs 5``) with two settings varying: too few for three
    parameters, said so (it was "no job has both steps and billable time")."""
    settings = [
        RunSettings(batch_size=batch, compute_multiplier=multiplier)
        for batch, multiplier in ((8, 1.0), (16, 2.0), (32, 0.5), (8, 2.0), (16, 1.0))
    ]
    events = simulate_jobs(settings, seed=5, scenarios=Scenario())
    with pytest.raises(
        CalibrationError,
        match=r"cannot fit training time: too few jobs \(5\) for \d+ parameters; add jobs",
    ):
        calibrate(events, min_jobs=5, allow_constant=True)


def test_jobs_without_settings_are_skipped_not_guessed() -> None:
    events = simulate_jobs([RunSettings()] * 3, seed=1, scenarios=Scenario())
    events.loc[events["event"] == "job_created", "batch_size"] = None
    frame, skipped = job_measurements(bill(events))
    assert frame.empty
    assert skipped["settings not recorded"] == 3


def test_calibrates_from_the_sample_logs() -> None:
    result = calibrate([SAMPLE_LOGS, SAMPLE_LOGS.parent / "examples" / "worked_examples.jsonl"])
    assert result.n_jobs >= 30
    assert result.sources
    assert result.n_skipped.get("settings not recorded", 0) > 0  # the hand-built worked examples


@pytest.mark.parametrize("setting", ["compute_multiplier", "batch_size"])
def test_a_job_whose_setting_cannot_be_logged_is_left_out_and_named(setting: str) -> None:
    # The log reads accept 0 for either; the fit takes its log (it failed in LAPACK, with
    # "divide by zero" and "SVD did not converge", and sank the whole history).
    events = simulate_jobs(n_jobs=40, seed=7)
    created = events.index[events["event"] == "job_created"]
    first = events.loc[created[0], "job_id"]
    events.loc[created[0], setting] = 0
    history = bill(events)
    assert history.jobs.set_index("job_id").loc[first, "status"] == "succeeded"
    result = calibrate(history)  # pytest turns any numpy warning into an error
    reason = f"{setting} not a positive finite number"
    assert result.n_skipped[reason] == 1
    assert result.n_jobs == int((history.jobs["status"] == "succeeded").sum()) - 1
    assert reason in result.summary_lines()[0]


def test_too_few_usable_jobs_left_is_the_thin_history_error() -> None:
    events = simulate_jobs(n_jobs=40, seed=7)
    events.loc[events["event"] == "job_created", "compute_multiplier"] = 0.0
    with pytest.raises(
        CalibrationError,
        match=r"too little history: 0 successful job\(s\) .*\d+ compute_multiplier not a positive",
    ):
        calibrate(events)


def test_a_job_validating_with_no_validation_examples_leaves_the_validation_fits_only() -> None:
    events = simulate_jobs(n_jobs=40, seed=7)
    created = events.index[events["event"] == "job_created"]
    events.loc[created[0], "n_valid_examples"] = 0
    frame, _ = job_measurements(bill(events))
    assert frame.loc[frame["job_id"] == events.loc[created[0], "job_id"], "valid_runs"].item() > 0
    result = calibrate(events)
    assert not result.n_skipped.get("n_valid_examples not a positive finite number")
    assert "valid_seconds_per_run: 1 job(s) left out, their n_valid_examples is not a" in (
        " ".join(result.notes)
    )
    baseline = calibrate(simulate_jobs(n_jobs=40, seed=7))
    train, valid = "train_seconds_per_step", "valid_seconds_per_run"
    assert result.components[train].n_jobs == baseline.components[train].n_jobs
    assert result.components[valid].n_jobs == baseline.components[valid].n_jobs - 1
