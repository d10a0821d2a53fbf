"""Estimates: P10/P50/P90 amounts, what-if tables, budgets, jobs in progress (rftcost.estimate)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

import rftcost
from rftcost.calibration import Calibration, calibrate
from rftcost.engines import bill
from rftcost.errors import PlanError
from rftcost.estimate import (
    Estimate,
    check_budget,
    estimate,
    parse_vary,
    project_running,
    what_if,
)
from rftcost.plan import Plan, load_plan, plan_from_settings
from rftcost.policy import load_policy
from rftcost.simulate import RunSettings, Scenario, simulate_jobs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
AT = datetime(2025, 7, 1, tzinfo=UTC)
DRAWS = 1000


@pytest.fixture(scope="module")
def calibration() -> Calibration:
    return calibrate(simulate_jobs(n_jobs=200, seed=21))


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_from_settings(
        RunSettings(
            n_train_examples=240,
            n_valid_examples=40,
            batch_size=16,
            n_epochs=2,
            eval_interval=5,
            eval_samples=2,
            grader_type="score_model",
            grader_model="gpt-4.1-mini-2025-04-14",
        ).model_dump()
    )


def run(plan: Plan, calibration: Calibration | None = None, **kwargs: object) -> Estimate:
    return estimate(plan, calibration, draws=DRAWS, at=AT, **kwargs)  # type: ignore[arg-type]


def test_without_calibration_the_output_says_so_and_is_wide(plan: Plan) -> None:
    result = run(plan)
    assert not result.calibrated
    assert any("no calibration" in a for a in result.assumptions)
    assert result.total_amount.p90 > 2 * result.total_amount.p10
    assert result.calibration == (
        "built-in priors (no calibration): rough guesses with a wide range",
    )


def test_a_history_of_identical_jobs_still_gives_a_range() -> None:
    """Six copies of one job calibrate with every residual 0: P10 = P50 = P90 claimed a
    certainty six jobs cannot hold. The spread is at least the prior's, shrunk by the
    history's size (sd / sqrt(6))."""
    one = simulate_jobs([RunSettings()], seed=3, scenarios=Scenario())
    copies = [one.assign(job_id=one["job_id"] + f"-{n}") for n in range(6)]
    import pandas as pd

    history = pd.concat(copies, ignore_index=True)
    if "event_id" in history:
        history = history.assign(event_id=history["event_id"] + "-" + history["job_id"])
    fitted = calibrate(history, min_jobs=5, allow_constant=True)
    assert fitted.components["train_seconds_per_step"].residual_sd < 1e-9
    # The same run again, a Python grader (no tokens): it was 127.00 / 127.00 / 127.00.
    total = run(plan_from_settings(RunSettings().model_dump()), fitted).total_amount
    assert total.p10 < total.p50 < total.p90


def test_calibrated_estimate_is_narrower(plan: Plan, calibration: Calibration) -> None:
    prior = run(plan)
    fitted = run(plan, calibration)
    assert fitted.calibrated
    assert fitted.total_amount.p10 < fitted.total_amount.p50 < fitted.total_amount.p90
    width = fitted.total_amount.p90 / fitted.total_amount.p10
    assert width < prior.total_amount.p90 / prior.total_amount.p10
    assert width < Decimal("1.6")


def test_amounts_are_priced_with_the_policy_rounding(plan: Plan, calibration: Calibration) -> None:
    result = run(plan, calibration)
    rate = load_policy().hourly_rate(plan.model)
    assert rate == Decimal("100.00")
    for q in ("p10", "p50", "p90"):
        hours = getattr(result.billable_hours, q)
        assert hours == hours.quantize(Decimal("0.01"))  # hours to the hundredth (R11)
        assert getattr(result.compute_amount, q) == hours * rate
        for figure in (result.compute_amount, result.grader_amount, result.total_amount):
            value = getattr(figure, q)
            assert isinstance(value, Decimal) and value == value.quantize(Decimal("0.01"))
    assert result.discount_amount.p50 == 0
    assert result.grader_amount.p50 > 0


def test_data_sharing_discount_and_policies(plan: Plan, calibration: Calibration) -> None:
    sharing = plan.with_changes(data_sharing=True)
    result = run(sharing, calibration)
    # the discount is a monotone function of each draw's compute: its quantiles match (R12)
    assert result.discount_amount.p50 == (result.compute_amount.p50 / 2).quantize(Decimal("0.01"))
    assert any("discount 50%" in a for a in result.assumptions)
    none = run(sharing, calibration, policy="openai-rft-no-training-discount")
    assert none.discount_amount.p90 == 0
    assert none.policy == "openai-rft-no-training-discount"


def test_python_grader_costs_no_tokens(plan: Plan, calibration: Calibration) -> None:
    result = run(plan.with_changes(grader_type="python"), calibration)
    assert result.grader_amount.p90 == 0
    assert result.total_amount == result.compute_amount
    assert any("python grader: no grader tokens" in a for a in result.assumptions)


def test_azure_cap_limits_compute(calibration: Calibration) -> None:
    huge = plan_from_settings(
        RunSettings(
            n_train_examples=5000,
            n_epochs=10,
            batch_size=64,
            compute_multiplier=3.0,
            reasoning_effort="high",
        ).model_dump()
    )
    result = run(huge, calibration, policy="azure-rft")
    assert result.compute_amount.p90 <= Decimal("5000.00")
    assert result.compute_amount.p10 == Decimal("5000.00")


def test_json_document_matches_the_contract(plan: Plan, calibration: Calibration) -> None:
    document = run(plan, calibration).to_dict()
    assert document["schema"] == "rftcost.estimate/v1"
    assert document["steps"] == plan.steps == 30
    for key in ("billable_hours", "compute_amount", "grader_amount", "total_amount"):
        assert set(document[key]) == {"p10", "p50", "p90"}
        for value in document[key].values():
            assert isinstance(value, str) and len(value.split(".")[1]) == 2
    assert set(document["breakdown"]) == {"rollout", "grading", "update", "validation"}
    assert all(isinstance(v, str) for v in document["breakdown"].values())
    assert isinstance(document["assumptions"], list)
    assert document["validation_runs"] == 6
    assert document["graded_samples"] == 30 * 16 * 4 + 6 * 40 * 2


def test_same_seed_same_figures(plan: Plan, calibration: Calibration) -> None:
    assert run(plan, calibration) == run(plan, calibration)


def test_more_eval_samples_never_cheaper(plan: Plan, calibration: Calibration) -> None:
    previous = None
    for samples in (1, 2, 4, 8):
        result = run(plan.with_changes(eval_samples=samples), calibration)
        if previous is not None:
            for q in ("p10", "p50", "p90"):
                assert getattr(result.total_amount, q) >= getattr(previous.total_amount, q)
                assert getattr(result.billable_hours, q) >= getattr(previous.billable_hours, q)
        previous = result


def test_more_validation_never_cheaper(plan: Plan, calibration: Calibration) -> None:
    sparse = run(plan.with_changes(eval_interval=10), calibration)
    dense = run(plan.with_changes(eval_interval=1), calibration)
    bigger = run(plan.with_changes(n_valid_examples=200), calibration)
    base = run(plan, calibration)
    for q in ("p10", "p50", "p90"):
        assert getattr(dense.total_amount, q) >= getattr(base.total_amount, q)
        assert getattr(base.total_amount, q) >= getattr(sparse.total_amount, q)
        assert getattr(bigger.total_amount, q) >= getattr(base.total_amount, q)


def test_slower_grader_never_cheaper(plan: Plan, calibration: Calibration) -> None:
    # Ordered from fastest and cheapest to slowest (the simulator's o3 grader is ~10× slower
    # per sample than gpt-4.1-nano, and dearer per token).
    order = ["gpt-4.1-nano-2025-04-14", "gpt-4.1-2025-04-14", "o3-2025-04-16"]
    results = [run(plan.with_changes(grader_model=m), calibration) for m in order]
    for faster, slower in itertools.pairwise(results):
        for q in ("p10", "p50", "p90"):
            assert getattr(slower.total_amount, q) >= getattr(faster.total_amount, q)
    assert results[-1].breakdown["validation"].p50 > results[0].breakdown["validation"].p50


def test_unseen_grader_uses_the_prior_and_says_so(plan: Plan, calibration: Calibration) -> None:
    result = run(plan.with_changes(grader_model="gpt-4o-mini"), calibration)
    assert any("model:gpt-4o-mini has no term of its own" in a for a in result.assumptions)


def test_settings_outside_the_history_are_flagged(plan: Plan, calibration: Calibration) -> None:
    result = run(plan.with_changes(batch_size=256), calibration)
    assert any("batch_size 256 is outside the calibration history" in a for a in result.assumptions)


def test_unknown_model_is_a_plan_error(plan: Plan) -> None:
    with pytest.raises(PlanError, match="no hourly training rate for base model 'gpt-9'"):
        run(plan.with_changes(model="gpt-9"))


def test_what_if_has_one_row_per_combination(plan: Plan, calibration: Calibration) -> None:
    vary = parse_vary(["eval_interval=1,5,20", "grader=gpt-4.1-nano,o3", "data_sharing=false,true"])
    rows = what_if(plan, vary, calibration, draws=DRAWS, at=AT)
    assert len(rows) == 12
    assert rows[0].changes == {
        "eval_interval": "1",
        "grader": "gpt-4.1-nano",
        "data_sharing": "false",
    }
    by = {tuple(r.changes.values()): r for r in rows}
    assert by[("1", "o3", "false")].total_amount.p50 > by[("20", "o3", "false")].total_amount.p50
    assert by[("5", "o3", "true")].total_amount.p50 < by[("5", "o3", "false")].total_amount.p50
    assert by[("5", "gpt-4.1-nano", "false")].validation_runs == 6


def test_vary_specs_are_checked(plan: Plan) -> None:
    with pytest.raises(PlanError, match="unknown setting 'colour'"):
        parse_vary(["colour=red"])
    with pytest.raises(PlanError, match="write NAME=V1,V2"):
        parse_vary(["eval_interval"])
    with pytest.raises(PlanError, match="not a valid value for batch_size"):
        what_if(plan, {"batch_size": ["big"]}, draws=DRAWS, at=AT)


def test_hours_are_shown_with_the_policy_decimals(
    plan: Plan, calibration: Calibration, tmp_path: Path
) -> None:
    # A policy billing thousandths of an hour: the estimate shows the hours it priced,
    # as a bill does, so that compute = hours × rate can be checked on the page.
    policy = tmp_path / "thousandths.toml"
    policy.write_text(
        'name = "thousandths"\nextends = "openai-rft"\n'
        '[hourly_rates]\n"o4-mini" = "33.333"\n[rounding]\nhours_decimals = 3\n'
    )
    result = run(plan, calibration, policy=policy)
    document = result.to_dict()
    for q in ("p10", "p50", "p90"):
        hours = document["billable_hours"][q]
        assert len(hours.partition(".")[2]) == 3
        compute = Decimal(hours) * Decimal("33.333")
        assert Decimal(document["compute_amount"][q]) == compute.quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
    assert all(len(h.partition(".")[2]) == 3 for h in document["breakdown"].values())


def test_budget_check_names_the_change_that_fits(plan: Plan, calibration: Calibration) -> None:
    result = run(plan, calibration)
    within = check_budget(plan, result.total_amount.p90 + 1, calibration, draws=DRAWS, at=AT)
    assert not within.over and within.suggestion is None
    budget = result.total_amount.p90 * Decimal("0.9")
    over = check_budget(plan, budget, calibration, draws=DRAWS, at=AT)
    assert over.over
    assert over.suggestion is not None and over.suggestion_p90 is not None
    assert over.suggestion_p90 <= budget
    assert over.candidates and dict(over.candidates)[over.suggestion] == over.suggestion_p90
    hopeless = check_budget(plan, Decimal("1"), calibration, draws=DRAWS, at=AT)
    assert hopeless.over and hopeless.suggestion is None


def test_budget_check_passes_over_graders_not_priced_at_the_date(plan: Plan) -> None:
    # gpt-4o is priced from 2024-08-06, the suggested cheaper graders only later: on a
    # date between, the check says over budget and suggests what it can price.
    early = datetime(2024, 9, 1, tzinfo=UTC)
    older = plan.with_changes(grader_model="gpt-4o-2024-08-06")
    over = check_budget(older, Decimal("1"), draws=DRAWS, at=early)
    assert over.over
    assert over.candidates
    assert not any("grader model" in label for label, _ in over.candidates)


def test_projects_a_job_in_progress(calibration: Calibration) -> None:
    settings = RunSettings(
        n_train_examples=320,
        n_valid_examples=30,
        batch_size=16,
        n_epochs=2,
        eval_interval=5,
        grader_type="score_model",
        grader_model="gpt-4.1-mini-2025-04-14",
    )
    events = simulate_jobs(
        [settings, settings],
        seed=8,
        job_ids=["ftjob-live", "ftjob-done"],
        scenarios=[Scenario(outcome="running", stop_after_step=12, pause_after_step=6), Scenario()],
    )
    logs = bill(events)
    projection = project_running(logs, "ftjob-live", calibration, draws=DRAWS, at=AT)
    assert projection.progress is not None
    assert projection.progress.steps_done == 12
    assert projection.progress.status == "running"
    assert projection.progress.charged_amount == logs.job("ftjob-live").total_amount  # the pause
    assert projection.total_amount.p10 > projection.progress.charged_amount
    assert projection.steps == settings.steps
    assert "progress" in projection.to_dict()
    # a finished twin of the job lands near the projection
    done = logs.job("ftjob-done").total_amount
    assert done is not None
    assert abs(projection.total_amount.p50 - done) / done < Decimal("0.25")
    assert not any("more work done" in note for note in projection.assumptions)
    contradicted = project_running(
        logs, "ftjob-live", calibration, draws=DRAWS, at=AT, settings_given={"n_train_examples": 16}
    )  # 12 steps done of the 2 that 16 examples make: said, not silently capped
    assert any("more work done (12 steps" in note for note in contradicted.assumptions)
    with pytest.raises(PlanError, match="has finished \\(succeeded\\)"):
        project_running(logs, "ftjob-done", calibration)
    with pytest.raises(PlanError, match="not in the logs"):
        project_running(logs, "ftjob-nope", calibration)


def test_the_package_exports_the_estimator() -> None:
    exported = {name: getattr(rftcost, name) for name in ("estimate", "Estimate")}
    assert callable(exported["estimate"])  # the module is callable as the function
    plan = load_plan(EXAMPLES / "plan.json")
    result = exported["estimate"](plan, draws=300, at=AT)
    assert isinstance(result, exported["Estimate"])
    for name in (
        "Calibration",
        "Plan",
        "calibrate",
        "load_plan",
        "what_if",
        "check_budget",
        "project_running",
    ):
        assert name in rftcost.__all__


def test_example_calibration_estimates_the_example_plan() -> None:
    plan = load_plan(EXAMPLES / "plan.json")
    result = estimate(plan, EXAMPLES / "calibration.json", draws=DRAWS, at=AT)
    assert result.calibrated
    assert Decimal("10") < result.total_amount.p50 < Decimal("200")


def test_a_job_far_slower_than_the_model_is_forecast_at_its_own_pace() -> None:
    """Five steps of exactly 30 minutes, ten times the built-in model's pace: the five left
    cost about as much again (the forecast stayed at the model's pace before, its P90 far
    below the final cost, and a watch never paused on it)."""
    from builders import JobLog

    log = JobLog("ftjob-slow").created(
        n_train_examples=160, batch_size=16, n_epochs=1, n_valid_examples=0, grader_type="python"
    )
    for step in range(1, 6):
        log.add("phase_start", phase="rollout").at(minutes=30).add("phase_end", phase="rollout")
        log.add("step_completed", step=step)
    logs = bill(log.frame())
    assert logs.job("ftjob-slow").accrued_amount == Decimal("250.00")
    projection = project_running(logs, "ftjob-slow", draws=DRAWS, at=AT)
    final = Decimal("500.00")  # ten steps at the pace so far
    assert projection.total_amount.p10 <= final <= projection.total_amount.p90
    assert abs(projection.total_amount.p50 - final) / final < Decimal("0.15")


def _sharing_job_in_progress() -> rftcost.Bill:
    from builders import JobLog

    log = JobLog("ftjob-ds").created(
        n_train_examples=320,
        batch_size=16,
        n_epochs=1,
        n_valid_examples=0,
        grader_type="python",
        data_sharing=True,
    )
    for step in range(1, 6):
        log.add("phase_start", phase="rollout").at(minutes=3).add("phase_end", phase="rollout")
        log.add("step_completed", step=step)
    return bill(log.frame())


def test_a_job_in_progress_keeps_the_data_sharing_it_was_created_with() -> None:
    """A plan (data sharing off by default) dropped the discount of a job created sharing
    its data: P50 99.54 instead of 50.04, with no word. The job's record wins (R12)."""
    logs = _sharing_job_in_progress()
    plan = load_plan(EXAMPLES / "plan.json", n_train=320)
    alone = project_running(logs, "ftjob-ds", draws=DRAWS, at=AT)
    with_plan = project_running(logs, "ftjob-ds", plan=plan, draws=DRAWS, at=AT)
    for projection in (alone, with_plan):
        assert projection.plan.data_sharing
        assert projection.discount_amount.p50 > 0
    assert any("data sharing on, as the job was created" in a for a in with_plan.assumptions)


def test_options_stand_for_the_settings_of_a_job_in_progress_without_a_plan() -> None:
    """--n-train with --running and no plan was ignored (the job's 320 examples used)."""
    logs = _sharing_job_in_progress()
    given = project_running(
        logs, "ftjob-ds", settings_given={"n_train_examples": 640}, draws=DRAWS, at=AT
    )
    assert given.plan.n_train_examples == 640 and given.steps == 40


def test_varying_the_grader_keeps_what_still_applies(tmp_path: Path) -> None:
    """--vary grader=<same model> dropped the grader's reasoning effort (a cheaper row for
    the same plan), grader=multi dropped every model (grader $0), and label_model was
    taken for a model's name (no price)."""
    from builders import score_model_plan

    body = score_model_plan(
        tmp_path, grader_model="o3-2025-04-16", sampling_params={"reasoning_effort": "high"}
    )
    plan = load_plan(body, n_train=60, n_valid=0)
    base = estimate(plan, draws=DRAWS, at=AT).total_amount
    (same,) = what_if(plan, {"grader": ["o3-2025-04-16"]}, draws=DRAWS, at=AT)
    assert same.total_amount == base
    multi = plan.with_changes(grader_type="multi")
    assert multi.grader.models == ("o3-2025-04-16",)
    assert multi.grader.efforts_per_model() == ("high",)
    assert estimate(multi, draws=DRAWS, at=AT).grader_amount.p50 > 0
    with pytest.raises(PlanError, match="runs only inside a multi grader"):
        what_if(plan, {"grader": ["label_model"]}, draws=DRAWS, at=AT)
