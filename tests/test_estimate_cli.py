"""``rftcost estimate`` and ``rftcost calibrate`` on the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rftcost.cli import app
from rftcost.simulate import RunSettings, Scenario, simulate_jobs, write_events

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "examples" / "plan.json"
CALIBRATION = ROOT / "examples" / "calibration.json"
AT = ["--at", "2025-07-01T00:00:00Z", "--draws", "500"]
runner = CliRunner()


def main(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Run ``rftcost.cli.main`` (which maps errors to exit codes) with ``args``."""
    from rftcost.cli import main as cli_main

    monkeypatch.setattr(sys, "argv", ["rftcost", *args])
    with pytest.raises(SystemExit) as done:
        cli_main()
    return int(done.value.code or 0)


def test_estimate_json_is_the_contract() -> None:
    result = runner.invoke(app, ["estimate", str(PLAN), "-c", str(CALIBRATION), "-f", "json", *AT])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == "rftcost.estimate/v1"
    assert document["steps"] == 15
    assert document["calibrated"] is True
    for key in (
        "billable_hours",
        "compute_amount",
        "grader_amount",
        "total_amount",
        "breakdown",
        "assumptions",
    ):
        assert key in document


def test_estimate_table_says_when_nothing_is_calibrated() -> None:
    result = runner.invoke(app, ["estimate", str(PLAN), *AT])
    assert result.exit_code == 0, result.output
    assert "NOT CALIBRATED" in result.stdout
    assert "total" in result.stdout and "P90" in result.stdout
    assert 'compute_multiplier "auto" → 1.0' in result.stdout


def test_what_if_and_budget() -> None:
    args = [
        "estimate",
        str(PLAN),
        "-c",
        str(CALIBRATION),
        *AT,
        "--vary",
        "eval_interval=5,15",
        "--vary",
        "grader=gpt-4.1-nano,o3",
    ]
    result = runner.invoke(app, [*args, "--budget", "10000"])
    assert result.exit_code == 0, result.output
    assert "What if" in result.stdout and "Within budget" in result.stdout
    over = runner.invoke(app, [*args, "--budget", "1", "-f", "json"])
    assert over.exit_code == 1
    document = json.loads(over.stdout)
    assert len(document["what_if"]) == 4
    assert document["budget"]["over"] is True
    markdown = runner.invoke(app, [*args, "--budget", "1", "-f", "markdown"])
    assert markdown.exit_code == 1
    assert "| eval_interval | grader |" in markdown.stdout
    assert "OVER BUDGET" in markdown.stdout


def test_calibrate_then_estimate(tmp_path: Path) -> None:
    logs = tmp_path / "history.jsonl"
    write_events(simulate_jobs(n_jobs=60, seed=4), logs)
    out = tmp_path / "calibration.json"
    result = runner.invoke(app, ["calibrate", str(logs), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Calibration written to" in result.stdout and "R²" in result.stdout
    assert json.loads(out.read_text())["schema"] == "rftcost.calibration/v1"
    piped = runner.invoke(app, ["calibrate", str(logs)])
    assert json.loads(piped.stdout)["n_jobs"] == json.loads(out.read_text())["n_jobs"]
    estimated = runner.invoke(app, ["estimate", str(PLAN), "-c", str(out), *AT])
    assert estimated.exit_code == 0, estimated.output
    assert "calibrated on past jobs" in estimated.stdout


def test_running_job(tmp_path: Path) -> None:
    settings = RunSettings(n_train_examples=200, batch_size=16, n_epochs=2)
    logs = tmp_path / "live.jsonl"
    write_events(
        simulate_jobs(
            [settings],
            seed=2,
            job_ids=["ftjob-live"],
            scenarios=Scenario(outcome="running", stop_after_step=10),
        ),
        logs,
    )
    result = runner.invoke(
        app,
        ["estimate", "--running", str(logs), "--job", "ftjob-live", "-c", str(CALIBRATION), *AT],
    )
    assert result.exit_code == 0, result.output
    assert "Projection of job ftjob-live (running)" in result.stdout
    assert "Done: 10/25 steps" in result.stdout
    # A budget the job has outrun: the advice is for a next run, what-ifs are fresh runs.
    over = runner.invoke(
        app,
        ["estimate", "--running", str(logs), "--job", "ftjob-live", "-c", str(CALIBRATION),
         "--budget", "1", "--vary", "n_epochs=1", *AT],
    )  # fmt: skip
    assert over.exit_code == 1, over.output
    assert "What if (fresh runs of the job's plan, not this job's projection):" in over.stdout
    assert "next run of this plan" in over.stdout
    assert "Single change that brings P90 under budget" not in over.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["estimate", "missing.json"], "cannot read the plan"),
        (["estimate"], "give a PLAN file"),
        (["estimate", str(PLAN), "--job", "x"], "--running LOGS and --job ID go together"),
        (["estimate", str(PLAN), "--vary", "colour=red"], "unknown setting 'colour'"),
        (["estimate", str(PLAN), "--budget", "lots"], "not an amount"),
        (["estimate", str(PLAN), "--budget", "10000000000000"], "must be below 10^12"),
        (["estimate", str(PLAN), "--budget", "1e400"], "not an amount"),
        (["estimate", str(PLAN), "--budget", "12.345"], "at most two decimals"),
        (["estimate", str(PLAN), "-c", str(PLAN)], "not a calibration file"),
        (["calibrate", str(ROOT / "examples" / "worked_examples.jsonl")], "too little history"),
        # numpy's "ValueError: expected non-negative integer" reached the user
        (["estimate", str(PLAN), "--seed", "-1"], "Invalid value for '--seed': must be at least 0"),
        (["calibrate", str(PLAN), "--min-jobs", "4"], "Invalid value for '--min-jobs'"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(args, monkeypatch)
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    assert message in captured.err
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1


def test_python_dash_m_runs_the_estimator() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rftcost", "estimate", str(PLAN), "-f", "json", *AT],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema"] == "rftcost.estimate/v1"


@pytest.mark.parametrize("setting", ["compute_multiplier", "batch_size"])
def test_calibrate_leaves_out_a_job_whose_setting_is_zero_and_says_so(
    setting: str, tmp_path: Path
) -> None:
    # A job with compute_multiplier 0 (the log reads accept it) printed LAPACK's "DLASCL
    # parameter number 4 had an illegal value", numpy's "divide by zero encountered in log"
    # and "LinAlgError: SVD did not converge": the whole history failed. In a subprocess,
    # so that what LAPACK writes to the process's stderr is seen too.
    events = simulate_jobs(n_jobs=40, seed=7)
    events.loc[events.index[events["event"] == "job_created"][0], setting] = 0
    logs = tmp_path / "history.jsonl"
    write_events(events, logs)
    out = tmp_path / "calibration.json"
    result = subprocess.run(
        [sys.executable, "-m", "rftcost", "calibrate", str(logs), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert f"1 {setting} not a positive finite number" in result.stdout
    saved = json.loads(out.read_text())
    assert saved["n_skipped"][f"{setting} not a positive finite number"] == 1
