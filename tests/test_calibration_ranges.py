"""A calibration file's values are range-checked on load: one clear line naming the file, the
field and the value (exit 2), never negative money, hours or pydantic's own words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import cli

from rftcost.calibration import PRIOR, Calibration
from rftcost.errors import CalibrationError


def _document() -> dict[str, Any]:
    document = PRIOR.to_dict()
    document["calibrated"] = True
    document["residual_columns"] = ["train_seconds_per_step"]
    document["residuals"] = [[0.1], [None], [-0.1]]
    return document


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _fit(document: dict[str, Any]) -> dict[str, Any]:
    fit: dict[str, Any] = document["components"]["train_seconds_per_step"]
    return fit


CASES = [
    (
        lambda d: d["cached_share"].update({"*": 7.0}),
        "cached_share.*: 7.0, expected a share between 0 and 1",
    ),
    (
        lambda d: d["cached_share"].update({"model:o3": -0.5}),
        "cached_share.model:o3: -0.5, expected a share between 0 and 1",
    ),
    (
        lambda d: d.update(phase_shares={"rollout": -1.0, "grading": 2.0, "update": 0.0}),
        "phase_shares.rollout: -1.0, expected a share between 0 and 1",
    ),
    (
        lambda d: d.update(phase_shares={"rollout": 0.5, "grading": 0.2, "update": 0.2}),
        "phase_shares: ",
    ),
    (
        lambda d: d.update(phase_shares={"rollout": 0.5, "queued": 0.5}),
        "phase_shares.queued: 0.5, expected a phase among rollout, grading, update",
    ),
    (
        lambda d: _fit(d)["coefficients"].__setitem__(0, float("nan")),
        "components.train_seconds_per_step.coefficients.0: NaN, expected a finite number",
    ),
    (
        lambda d: _fit(d)["coefficients"].__setitem__(0, 500.0),
        "components.train_seconds_per_step.coefficients.0: 500.0, expected a finite number",
    ),
    (
        lambda d: _fit(d)["coefficients"].__setitem__(0, "abc"),
        "components.train_seconds_per_step.coefficients.0: 'abc', expected a number",
    ),
    (
        lambda d: _fit(d)["coefficients"].pop(),
        "components.train_seconds_per_step.coefficients: ",
    ),
    (
        lambda d: _fit(d)["covariance"][0].__setitem__(0, -1.0),
        "components.train_seconds_per_step.covariance.0.0: -1.0, expected a variance ≥ 0",
    ),
    (
        lambda d: _fit(d).update(residual_sd=-0.3),
        "components.train_seconds_per_step.residual_sd: -0.3, expected a spread ≥ 0",
    ),
    (
        lambda d: _fit(d).update(work_range=[1.0, -1.0]),
        "components.train_seconds_per_step.work_range: [1.0, -1.0]",
    ),
    (
        lambda d: d["residuals"].__setitem__(1, [float("inf")]),
        "residuals.1.0: Infinity, expected null or a finite number",
    ),
    (lambda d: d["residuals"].__setitem__(1, [0.1, 0.2]), "residuals.1: [0.1, 0.2]"),
    (lambda d: d.update(n_jobs=-3), "n_jobs: -3, expected a count ≥ 0"),
    # Names the estimator cannot evaluate were a KeyError when estimating, not a load error.
    (
        lambda d: _fit(d)["features"].__setitem__(1, "log_foo"),
        "components.train_seconds_per_step.features.1: 'log_foo', expected intercept",
    ),
    (
        lambda d: _fit(d)["fixed"].update({"log_bar": 0.5}),
        "components.train_seconds_per_step.fixed.log_bar: 0.5, expected log_<setting>",
    ),
    (
        lambda d: _fit(d).update(work=["nonexistent"]),
        'components.train_seconds_per_step.work: ["nonexistent"], expected settings among',
    ),
    (
        lambda d: _fit(d)["references"].update({"foo": "x"}),
        "components.train_seconds_per_step.references.foo: 'x', expected one of",
    ),
    # A residual column of no number was an IndexError when drawing from it.
    (
        lambda d: d.update(residuals=[[None], [None]]),
        "residuals (column train_seconds_per_step): null, expected at least one number",
    ),
]


@pytest.mark.parametrize(("damage", "message"), CASES)
def test_a_value_out_of_range_is_named_with_its_file_and_field(
    tmp_path: Path, damage: Any, message: str
) -> None:
    document = _document()
    Calibration.from_dict(document)  # the undamaged document loads
    damage(document)
    path = _write(tmp_path, document)
    with pytest.raises(CalibrationError) as raised:
        Calibration.load(path)
    text = str(raised.value)
    assert text.startswith(f"{path}: invalid calibration at ")
    assert message in text
    assert "Input should be" not in text and "\n" not in text


def test_the_cli_refuses_a_damaged_calibration_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _document()
    document["cached_share"]["*"] = 7.0
    calibration = _write(tmp_path, document)
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "model": "o4-mini-2025-04-16",
                "training_file": "file-x",
                "method": {
                    "type": "reinforcement",
                    "reinforcement": {
                        "grader": {
                            "type": "score_model",
                            "name": "j",
                            "model": "gpt-4.1",
                            "input": [{"role": "user", "content": "x"}],
                        }
                    },
                },
            }
        ),
        encoding="utf-8",
    )
    args = ["estimate", str(plan), "--n-train", "100", "--calibration", str(calibration)]
    code, out, err = cli(capsys, *args)
    assert code == 2 and out == ""
    assert err == (
        f"error: {calibration}: invalid calibration at cached_share.*: 7.0, expected a share"
        " between 0 and 1 (cached of input tokens)\n"
    )


def test_a_fitted_calibration_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "prior.json"
    PRIOR.save(path)
    assert Calibration.load(path) == PRIOR


def test_a_calibration_whose_whole_job_check_measured_nothing_is_used_and_says_so(
    tmp_path: Path,
) -> None:
    """``calibrate`` writes ``r2: null`` when no job could check the whole-job fit; the
    estimate then failed formatting None. It says the check was not measured."""
    document = _document()
    document["quality"] = {
        "job_billable_seconds": {"r2": None, "median_abs_rel_error": None, "n_jobs": 0}
    }
    lines = Calibration.load(_write(tmp_path, document)).summary_lines()
    assert "job billable time: not measured (no job to check the fit on)" in lines


def test_a_weak_fit_or_a_thin_history_is_said_where_the_estimate_is_read(tmp_path: Path) -> None:
    """A fit of R² 0.03 (median error 57%) on 25 jobs, or a history of 7 jobs, was
    "calibrated on past jobs" with no word; the calibration lines now say which."""
    document = _document()
    document["n_jobs"] = 25
    document["quality"] = {
        "job_billable_seconds": {"r2": 0.028, "median_abs_rel_error": 0.57, "n_jobs": 25}
    }
    weak = Calibration.load(_write(tmp_path, document)).weaknesses()
    assert len(weak) == 1 and weak[0].startswith("WEAK FIT")
    document["quality"]["job_billable_seconds"] = {
        "r2": 0.99,
        "median_abs_rel_error": 0.05,
        "n_jobs": 7,
    }
    document["n_jobs"] = 7
    thin = Calibration.load(_write(tmp_path, document)).weaknesses()
    assert len(thin) == 1 and thin[0].startswith("FEW JOBS: 7")
    assert PRIOR.weaknesses() == []
