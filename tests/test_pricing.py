"""Issue 12 kinds 7, 9, 13, 14 and issue 13's caps and plan bounds, with exact values.

- Kind 7: Azure's $5,000 cap counts training plus grading, cuts the charge that reaches
  it, and a resumed job bills with no further limit (realworld case 13: $6,000.00).
- Kind 9: the create-job body is checked as the API checks it; hostile plans are one
  clear line with exit 2.
- Kind 13: each model grader of a multi grader is priced at its own model's rates
  (realworld case 26).
- Kind 14: token prices layered over genai-prices, differences listed, the bill names
  its price source.
- Also: calibrate reads OpenAI exports' settings.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from builders import JobLog
from typer.testing import CliRunner

import rftcost
from rftcost.calibration import Calibration
from rftcost.cli import app
from rftcost.errors import PlanError
from rftcost.money import RoundingMode, to_minor_units
from rftcost.plan import load_plan, plan_from_settings, scan_data_file
from rftcost.policy import load_policy
from rftcost.prices import genai_price_table, load_price_table, price_differences

ROOT = Path(__file__).resolve().parent
FIXTURES = ROOT / "fixtures" / "pricing"
OPENAI = ROOT / "fixtures" / "openai"
D = Decimal
runner = CliRunner()


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[list[str]], tuple[int, str, str]]:
    """Run ``rftcost.cli.main`` in process (errors → one line on stderr, exit 2)."""
    from rftcost.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["rftcost", *args])
        with pytest.raises(SystemExit) as done:
            main()
        captured = capsys.readouterr()
        return int(done.value.code or 0), captured.out, captured.err

    return run


# --- kind 7: the Azure cap --------------------------------------------------------------------


def test_azure_cap_then_resume_bills_6000_realworld_13() -> None:
    result = rftcost.bill(FIXTURES / "azure-cap-resume.jsonl", policy="azure-rft")
    job = result.job("ftjob-rw13")
    assert [(c.event, c.billed_hours, c.compute_amount) for c in job.charges] == [
        ("paused", D("50.00"), D("5000.00")),
        ("succeeded", D("10.00"), D("1000.00")),
    ]
    assert job.total_amount == D("6000.00")
    document = result.to_dict()
    assert document["totals"]["total_amount"] == "6000.00"


def _cap_log() -> JobLog:
    log = JobLog("ftjob-cap").created(model="o4-mini-2025-04-16", data_sharing=False)
    log.phase("rollout", hours=30).add("paused").at(hours=1).add("resumed")
    # 10M gpt-4.1 input tokens at $2.00 / 1M in segment 2.
    log.add("phase_start", phase="rollout").at(hours=30)
    log.add("grader_usage", grader_model="gpt-4.1-2025-04-14", input_tokens=10_000_000,
            output_tokens=0)  # fmt: skip
    log.add("phase_end", phase="rollout").add("paused").at(hours=1).add("resumed")
    log.phase("rollout", hours=10).add("succeeded")
    return log


def test_cap_counts_grading_cuts_the_charge_that_reaches_it_then_no_limit() -> None:
    job = rftcost.bill(_cap_log().frame(), policy="azure-rft").job("ftjob-cap")
    # Charge 1: 30 h = $3,000. Charge 2: 30 h = $3,000 + grader 10M × $2.00/M = $20.00;
    # room $2,000 → compute cut to $1,980.00 so training plus grading reach $5,000.00.
    # Charge 3 (after the resume from the cap): 10 h = $1,000.00 in full.
    assert [(c.compute_amount, c.grader_amount, c.capped) for c in job.charges] == [
        (D("3000.00"), D("0.00"), False),
        (D("1980.00"), D("20.00"), True),
        (D("1000.00"), D("0.00"), False),
    ]
    assert job.total_amount == D("6000.00")


def test_cap_is_rounded_by_the_money_mode_not_truncated(tmp_path: Path) -> None:
    for mode, expected in (("half_up", D("3000.00")), ("down", D("2999.99"))):
        policy = tmp_path / f"cap-{mode}.toml"
        policy.write_text(
            f'name = "cap-{mode}"\nextends = "azure-rft"\n[cap]\nper_job_amount = "2999.995"\n'
            f'[rounding]\nmoney_mode = "{mode}"\n',
            encoding="utf-8",
        )
        log = JobLog("ftjob-r").created(model="o4-mini-2025-04-16")
        log.phase("rollout", hours=40).add("succeeded")
        job = rftcost.bill(log.frame(), policy=policy).job("ftjob-r")
        assert job.total_amount == expected
    # Any precision: a 40-digit cap is rounded once, exactly.
    cap = D("1234567890123456789012345678901234567.895")
    assert to_minor_units(cap, RoundingMode.HALF_UP) == 123456789012345678901234567890123456790
    assert to_minor_units(cap, RoundingMode.DOWN) == 123456789012345678901234567890123456789


def test_estimate_cap_applies_until_reached_then_no_limit() -> None:
    from rftcost.estimate import _Already, _capped

    policy = load_policy("azure-rft")
    compute = np.array([400_000, 600_000], dtype="int64")
    grader = np.array([1_000, 1_000], dtype="int64")
    fresh = _capped(compute, grader, policy, _Already(charged_compute_cents=0))
    assert fresh.tolist() == [400_000, 499_000]
    resumed = _capped(compute, grader, policy, _Already(charged_compute_cents=500_000))
    assert resumed.tolist() == [400_000, 600_000]


# --- kind 14: genai-prices under the packaged table -----------------------------------------


def test_prices_differences_list_o3_cached_input_with_both_sources() -> None:
    packaged = load_price_table("openai-standard")
    differences = price_differences(packaged, genai_price_table())
    o3 = [d for d in differences if d.model == "o3"]
    assert len(o3) == 1
    assert (o3[0].rate, o3[0].override, o3[0].base) == ("cached_input", D("2.50"), D("0.5"))
    assert o3[0].effective_from == datetime(2025, 4, 16, tzinfo=UTC)
    assert "launch" in o3[0].override_source
    assert o3[0].base_source.startswith("genai-prices ")
    # The packaged entry is the one in force (override layer).
    table = load_policy("openai-rft").price_table
    assert table.lookup("o3-2025-04-16", datetime(2025, 5, 1, tzinfo=UTC)).cached_input == D("2.50")


def test_policy_show_lists_the_differences_and_the_source() -> None:
    result = runner.invoke(app, ["policy", "show", "openai-rft"])
    assert result.exit_code == 0, result.output
    assert "openai-standard over genai-prices" in result.stdout
    assert "o3 from 2025-04-16 cached_input: 2.50" in result.stdout
    shown = runner.invoke(app, ["policy", "show", "openai-rft", "-f", "json"])
    document = json.loads(shown.stdout)
    assert [(d["model"], d["rate"]) for d in document["price_differences"]] == [
        ("o3", "cached_input")
    ]


def _gpt5_log() -> JobLog:
    log = JobLog("ftjob-gpt5").created(
        model="o4-mini-2025-04-16", grader_type="score_model", grader_model="gpt-5-2025-08-07"
    )
    log.clock = datetime(2025, 9, 1, tzinfo=UTC)
    log.add("phase_start", phase="rollout").at(hours=1)
    log.add(
        "grader_usage",
        grader_model="gpt-5-2025-08-07",
        input_tokens=2_000_000,
        cached_input_tokens=1_000_000,
        output_tokens=100_000,
    )
    return log.add("phase_end", phase="rollout").add("succeeded")


def test_a_gpt5_grader_is_priced_from_genai_prices_and_the_bill_names_it() -> None:
    result = rftcost.bill(_gpt5_log().frame())
    job = result.job("ftjob-gpt5")
    # 1M uncached × $1.25 + 1M cached × $0.125 + 0.1M output × $10.00 = $2.375 → $2.38.
    assert job.status == "succeeded"
    assert job.grader_amount == D("2.38")
    assert job.total_amount == D("102.38")
    source = result.to_dict()["price_source"]
    assert source.startswith("openai-standard over genai-prices 0.")


def test_without_the_base_layer_a_gpt5_grader_has_no_price(tmp_path: Path) -> None:
    policy = tmp_path / "alone.toml"
    policy.write_text(
        'name = "alone"\nextends = "openai-rft"\n[prices]\nbase = "none"\n', encoding="utf-8"
    )
    job = rftcost.bill(_gpt5_log().frame(), policy=policy).job("ftjob-gpt5")
    assert job.status == "invalid" and job.total_amount is None


def test_genai_prices_are_read_without_network() -> None:
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from rftcost.prices import genai_price_table\n"
        "t = genai_price_table()\n"
        "print(t.models['gpt-5-mini'][-1].output, t.provenance)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT.parent
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 genai-prices 0.")


# --- kind 13: multi graders ------------------------------------------------------------------


def _no_spread(monkeypatch: pytest.MonkeyPatch) -> Calibration:
    """The built-in priors with no uncertainty: every draw is the centre."""
    from rftcost import calibration as module

    original = module._prior_ratio
    monkeypatch.setattr(module, "_prior_ratio", lambda *a: (original(*a)[0], 0.0))
    components = {
        name: fit.model_copy(
            update={
                "residual_sd": 0.0,
                "covariance": tuple(tuple(0.0 for _ in row) for row in fit.covariance),
            }
        )
        for name, fit in module.PRIOR.components.items()
    }
    return module.PRIOR.model_copy(update={"components": components})


def test_multi_grader_prices_each_model_at_its_own_rate_realworld_26(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rftcost.estimate import estimate

    calibration = _no_spread(monkeypatch)
    plan = load_plan(FIXTURES / "multi-grader-plan.json", n_train=1600, n_valid=100)
    result = estimate(plan, calibration, draws=20, at=datetime(2025, 7, 1, tzinfo=UTC))
    assert (result.steps, result.validation_runs, result.graded_samples) == (100, 20, 8400)
    by_model = {model: q.p50 for model, q in result.grader_amount_by_model.items()}
    # 8,400 samples × 1,200 in / 25 out tokens each, per model; o3-mini reasons (×14 output).
    # gpt-4o-mini: 10.08M × $0.15 + 0.21M × $0.60 = $1.638 → $1.64;
    # o3-mini: 10.08M × $1.10 + 2.94M × $4.40 = $24.024 → $24.02.
    assert by_model == {"gpt-4o-mini-2024-07-18": D("1.64"), "o3-mini-2025-01-31": D("24.02")}
    assert result.grader_amount.p50 == D("25.66")


def test_multi_grader_estimate_through_the_cli_realworld_26(
    cli: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    code, out, err = cli(
        [
            "estimate",
            str(FIXTURES / "multi-grader-plan.json"),
            "--n-train",
            "1600",
            "--n-valid",
            "100",
            "-f",
            "json",
            "--draws",
            "400",
            "--at",
            "2025-07-01T00:00:00Z",
        ]
    )
    assert code == 0, err
    document = json.loads(out)
    assert (document["steps"], document["validation_runs"], document["graded_samples"]) == (
        100,
        20,
        8400,
    )
    assert sorted(document["grader_amount_by_model"]) == [
        "gpt-4o-mini-2024-07-18",
        "o3-mini-2025-01-31",
    ]
    assert document["price_source"].startswith("openai-standard over genai-prices 0.")
    # Not ≈ $1.7 (every token once at the cheaper model): the centre is $25.66.
    assert D("15") < D(document["grader_amount"]["p50"]) < D("45")


def test_grader_reasoning_effort_scales_a_reasoning_graders_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rftcost.estimate import estimate

    calibration = _no_spread(monkeypatch)
    body = json.loads((FIXTURES / "multi-grader-plan.json").read_text(encoding="utf-8"))
    grader = body["method"]["reinforcement"]["grader"]["graders"][1]
    grader["sampling_params"] = {"reasoning_effort": "high"}
    plan = load_plan(body, n_train=1600, n_valid=100)
    result = estimate(plan, calibration, draws=20, at=datetime(2025, 7, 1, tzinfo=UTC))
    # o3-mini output doubles at high effort: 10.08M × $1.10 + 5.88M × $4.40 = $36.96.
    assert result.grader_amount_by_model["o3-mini-2025-01-31"].p50 == D("36.96")
    assert result.grader_amount_by_model["gpt-4o-mini-2024-07-18"].p50 == D("1.64")
    grader["sampling_params"] = {"reasoning_effort": "extreme"}
    with pytest.raises(PlanError, match="reasoning_effort must be one of none, minimal"):
        load_plan(body, n_train=1600, n_valid=100)


# --- kind 9 / issue 13: the create-job body as the API checks it -----------------------------


def _body() -> dict[str, object]:
    body = json.loads((FIXTURES / "multi-grader-plan.json").read_text(encoding="utf-8"))
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.update(n_gpus=8), "unknown key 'n_gpus'"),
        (lambda b: b["method"].update(extra=1), "unknown key of method 'extra'"),
        (
            lambda b: b["method"]["reinforcement"].update(temperature=1),
            "unknown key of method.reinforcement 'temperature'",
        ),
        (
            lambda b: b["method"]["reinforcement"]["hyperparameters"].update(warmup=3),
            "unknown hyperparameter 'warmup'",
        ),
        (
            lambda b: b["method"]["reinforcement"]["hyperparameters"].update(eval_samples=10**30),
            "eval_samples must be between 1 and 2147483647, got 1.000e+30",
        ),
        (
            lambda b: b["method"]["reinforcement"]["hyperparameters"].update(eval_interval=0),
            "eval_interval must be between 1 and 2147483647, got 0",
        ),
        (
            lambda b: b["method"]["reinforcement"]["hyperparameters"].update(batch_size=257),
            "batch_size must be between 1 and 256",
        ),
        (
            lambda b: b["method"]["reinforcement"]["hyperparameters"].update(n_epochs=51),
            "n_epochs must be between 1 and 50",
        ),
        (
            lambda b: b["method"]["reinforcement"]["hyperparameters"].update(
                compute_multiplier=10.5
            ),
            "compute_multiplier must be greater than",
        ),
        (
            lambda b: b["method"]["reinforcement"]["hyperparameters"].update(
                learning_rate_multiplier=0
            ),
            "learning_rate_multiplier must be",
        ),
        (
            lambda b: b["method"]["reinforcement"]["hyperparameters"].update(
                reasoning_effort="max"
            ),
            "reasoning_effort must be one of default, low, medium, high",
        ),
        (lambda b: b.update(suffix="x" * 65), "suffix must be a string of at most 64"),
        (lambda b: b.update(seed=-1), "seed must be an integer between 0 and 2147483647"),
        (lambda b: b.update(metadata={"team": 5}), "metadata 'team'"),
    ],
)
def test_plan_is_checked_as_the_api_checks_it(change: object, message: str) -> None:
    body = _body()
    assert callable(change)
    change(body)
    with pytest.raises(PlanError, match=re.escape(message)):
        load_plan(body, n_train=100, n_valid=10)


def test_hostile_eval_samples_huge_is_refused_not_under_budget(
    cli: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    code, out, err = cli(["estimate", str(FIXTURES / "hostile" / "eval-samples-huge.json"),
                           "--budget", "50"])  # fmt: skip
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "eval_samples must be between 1 and 2147483647" in err
    assert "Traceback" not in err


def test_a_plan_whose_amounts_overflow_names_its_file_and_counts(
    tmp_path: Path, cli: Callable[[list[str]], tuple[int, str, str]]
) -> None:
    """Settings each within the API's range whose product is beyond 2^63: the error named
    neither the file nor what made it so large."""
    body = json.loads((FIXTURES / "hostile" / "eval-samples-huge.json").read_text())
    body["method"]["reinforcement"]["hyperparameters"].update(
        n_epochs=50, eval_interval=1, eval_samples=2_147_483_647
    )
    body["training_file"], body["validation_file"] = "file-train", "file-valid"
    plan = tmp_path / "huge.json"
    plan.write_text(json.dumps(body), encoding="utf-8")
    code, out, err = cli(["estimate", str(plan), "--n-train", "60", "--n-valid", "20"])
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"{plan}: the settings give amounts too large to compute" in err
    assert "eval_samples 2,147,483,647" in err


def test_hostile_plans_are_one_clear_line(
    tmp_path: Path, cli: Callable[[list[str]], tuple[int, str, str]]
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"a":' * 200_000 + "1" + "}" * 200_000, encoding="utf-8")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    for path, expected in (
        (deep, "JSON nested too deeply"),
        (binary, "not UTF-8 text"),
        (Path("/dev/zero"), "not a regular file"),
    ):
        code, _out, err = cli(["estimate", str(path), "--budget", "50"])
        assert code == 2, (path, err)
        assert err.count("\n") == 1 and expected in err and "Error:" not in err, err


def test_hostile_data_files_are_one_clear_line(tmp_path: Path) -> None:
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\x00\x01\xff\xfe\x00garbage\n")
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    for path, expected in (
        (binary, "not UTF-8 text"),
        (deep, "nested too deeply"),
        (Path("/dev/zero"), "not a regular file"),
    ):
        with pytest.raises(PlanError, match=expected):
            scan_data_file(path)
    body = _body()
    body["training_file"] = "/dev/zero"
    with pytest.raises(PlanError, match="/dev/zero: not a regular file"):
        load_plan(body)


# --- also: calibrate and estimate --running from exports -------------------------------------


def test_calibrate_reads_the_settings_of_exports(
    cli: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    from rftcost.calibration import job_measurements

    frame, skipped = job_measurements(rftcost.bill(OPENAI))
    assert skipped == {
        "not succeeded": 2,
        "settings not recorded": 0,
        "no step_completed events": 0,
    }
    rows = frame.set_index("job_id")
    # ftjob-succeeded1: method.reinforcement.hyperparameters batch 4, 1 epoch, 3 steps → 12.
    assert rows.loc["ftjob-succeeded1", "batch_size"] == 4
    assert rows.loc["ftjob-succeeded1", "n_train_examples"] == 12
    assert rows.loc["ftjob-succeeded1", "train_input_tokens"] == 1_000_000
    code, _, err = cli(["calibrate", str(OPENAI), "-o", "/dev/null"])
    assert code == 2 and "2 successful job(s) with recorded settings" in err


def test_running_settings_from_an_export_derive_the_example_count() -> None:
    plan = plan_from_settings(
        {"batch_size": 4, "n_epochs": 2, "total_steps": 10, "grader_model": "gpt-4.1"}
    )
    assert plan.n_train_examples == 20 and plan.steps == 10
    assert any("total_steps 10" in line for line in plan.assumptions)


def test_estimate_running_works_from_an_export(
    tmp_path: Path, cli: Callable[[list[str]], tuple[int, str, str]]
) -> None:
    """A paused export (events up to the pause): settings from the job object's
    method.reinforcement.hyperparameters, steps from its metrics events (Step N/M)."""
    source = OPENAI / "paused"
    folder = tmp_path / "paused"
    folder.mkdir()
    events = (source / "events.jsonl").read_text(encoding="utf-8").splitlines()
    kept = [line for line in events if json.loads(line)["id"] <= "ftevent-c07"]
    (folder / "events.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    job = json.loads((source / "job.json").read_text(encoding="utf-8"))
    job.update(status="paused", finished_at=None, fine_tuned_model=None)
    (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
    code, out, err = cli(
        ["estimate", "--running", str(folder), "--job", "ftjob-paused1", "-f", "json",
         "--draws", "200", "--at", "2025-07-01T00:00:00Z"]
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert document["steps"] == 4
    assert document["settings"]["batch_size"] == 2 and document["settings"]["n_epochs"] == 2
    assert document["progress"]["steps_done"] == 2
    # Steps 1-2 and the 100 s of step 3 in progress at the pause (R7): 1.03 h.
    assert document["progress"]["charged_amount"] == "103.00"
    assert D(document["total_amount"]["p10"]) >= D("103.00")


def test_multi_grader_bill_prices_each_model_realworld_26() -> None:
    result = rftcost.bill(FIXTURES / "multi-grader-export")
    (job_id,) = result.job_ids()
    job = result.job(job_id)
    lines = {line.grader_model: line.amount for c in job.charges for line in c.grader_lines}
    # gpt-4o-mini 1M in × $0.15 + 0.1M out × $0.60 = $0.21;
    # o3-mini 0.2M in × $1.10 + 0.05M out × $4.40 = $0.44.
    assert lines == {"gpt-4o-mini-2024-07-18": D("0.21"), "o3-mini-2025-01-31": D("0.44")}
    assert (job.compute_amount, job.total_amount) == (D("50.00"), D("50.65"))


def test_a_rejected_plan_value_is_shown_as_a_short_excerpt() -> None:
    body = _body()
    body["method"]["reinforcement"]["hyperparameters"]["batch_size"] = "x" * 100_000  # type: ignore[index]
    with pytest.raises(PlanError) as caught:
        load_plan(body, n_train=100, n_valid=10)
    assert len(str(caught.value)) < 200 and "…" in str(caught.value)


def test_a_dated_and_an_undated_name_of_one_grader_model_are_one_line_rounded_once() -> None:
    """R13 sums per charge and grader model, and a dated name is its family's (the price
    table's note): o3 and o3-2025-04-16 were two lines of 0.025 each, rounded to 0.03 and
    0.03 (gpt-4.1 likewise 0.01 and 0.01): 0.08 where one line per model gives 0.06."""
    log = JobLog("ftjob-dated").created(team="a")
    log.at(hours=24 * 2).add("phase_start", phase="rollout")
    for model in ("o3", "o3-2025-04-16", "gpt-4.1", "gpt-4.1-2025-04-14"):
        log.add("grader_usage", grader_model=model, input_tokens=2500, output_tokens=0)
    log.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    bill = rftcost.bill(log.frame())
    lines = bill.grader_lines.sort_values("grader_model")
    assert lines["grader_model"].tolist() == ["gpt-4.1", "o3"]
    assert lines["amount_cents"].tolist() == [1, 5]
    assert bill.totals().grader_amount == Decimal("0.06")


def test_a_line_of_one_dated_name_keeps_that_name() -> None:
    log = JobLog("ftjob-dated").created(team="a").add("phase_start", phase="rollout")
    log.add("grader_usage", grader_model="gpt-4.1-2025-04-14", input_tokens=1000, output_tokens=0)
    log.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    lines = rftcost.bill(log.frame()).grader_lines
    assert lines["grader_model"].tolist() == ["gpt-4.1-2025-04-14"]
