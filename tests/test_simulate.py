"""The simulator: deterministic, schema-true frames whose jobs behave as their scenarios say."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

import rftcost
from rftcost.events.schema import (
    BOOL_COLUMNS,
    EVENT_COLUMNS,
    FINAL_EVENTS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    STRING_COLUMNS,
)
from rftcost.simulate import (
    RunSettings,
    Scenario,
    TimeModel,
    random_scenario,
    random_settings,
    simulate_jobs,
    write_events,
)

SETTINGS = RunSettings(
    team="search",
    n_train_examples=96,
    batch_size=16,
    n_epochs=2,
    eval_interval=4,
    grader_type="score_model",
    grader_model="o3-2025-04-16",
)  # 12 steps


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    """Random settings and a random mix of scenarios."""
    return simulate_jobs(n_jobs=400, seed=11)


def one_job(scenario: Scenario, settings: RunSettings = SETTINGS, seed: int = 0) -> pd.DataFrame:
    return simulate_jobs([settings], scenarios=scenario, seed=seed)


def events_of(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame[frame["event"] == name]


# --- determinism and schema -------------------------------------------------------------


def test_same_seed_same_frame() -> None:
    pd.testing.assert_frame_equal(
        simulate_jobs(n_jobs=50, seed=3), simulate_jobs(n_jobs=50, seed=3)
    )


def test_other_seed_other_frame() -> None:
    assert not simulate_jobs(n_jobs=50, seed=3).equals(simulate_jobs(n_jobs=50, seed=4))


def test_random_helpers_are_deterministic() -> None:
    first = random_settings(np.random.default_rng(1), 20)
    assert first == random_settings(np.random.default_rng(1), 20)
    scenarios = [random_scenario(np.random.default_rng(i), 30) for i in range(20)]
    assert scenarios == [random_scenario(np.random.default_rng(i), 30) for i in range(20)]


def test_columns_and_dtypes_follow_the_schema(mixed: pd.DataFrame) -> None:
    assert tuple(mixed.columns) == EVENT_COLUMNS
    assert mixed["ts"].dtype == "datetime64[ns, UTC]"
    for column in STRING_COLUMNS:
        assert mixed[column].dtype == pd.StringDtype(), column
    for column in INT_COLUMNS:
        assert mixed[column].dtype == "Int64", column
    for column in FLOAT_COLUMNS:
        assert mixed[column].dtype == "Float64", column
    for column in BOOL_COLUMNS:
        assert mixed[column].dtype == "boolean", column
    assert mixed.index.equals(pd.RangeIndex(len(mixed)))


def test_job_and_event_counts_are_sane(mixed: pd.DataFrame) -> None:
    created = events_of(mixed, "job_created")
    assert len(created) == 400
    assert created["job_id"].is_unique
    assert created["job_id"].str.fullmatch(r"ftjob-[A-Za-z0-9]{24}").all()
    per_job = mixed.groupby("job_id").size()
    assert per_job.min() >= 10  # the prelude and at least the start of a step
    assert 50 <= per_job.mean() <= 400
    assert mixed["event_id"].is_unique
    assert mixed["job_id"].notna().all() and mixed["event"].notna().all()


def test_settings_are_on_job_created_only(mixed: pd.DataFrame) -> None:
    others = mixed[mixed["event"] != "job_created"]
    for column in ("team", "model", "grader_type", "batch_size", "data_sharing", "n_epochs"):
        assert others[column].isna().all(), column
    created = events_of(mixed, "job_created")
    assert created["model"].notna().all() and created["batch_size"].notna().all()
    assert created["team"].isna().any()  # a few jobs have no team (unallocated)
    assert created["data_sharing"].any() and not created["data_sharing"].all()


# --- time order -------------------------------------------------------------------------


def test_timestamps_never_decrease_within_a_job(mixed: pd.DataFrame) -> None:
    step = mixed.groupby("job_id", sort=False)["ts"].diff().dropna()
    assert (step >= pd.Timedelta(0)).all()


def test_jobs_are_grouped_and_in_creation_order(mixed: pd.DataFrame) -> None:
    ids = mixed["job_id"].to_numpy()
    job_change = np.r_[True, ids[1:] != ids[:-1]]
    assert job_change.sum() == mixed["job_id"].nunique()
    assert (mixed.loc[job_change, "event"] == "job_created").all()
    assert mixed.loc[job_change, "ts"].is_monotonic_increasing


def test_steps_and_checkpoints_only_go_back_after_a_rollback(mixed: pd.DataFrame) -> None:
    epoch = (mixed["event"] == "rollback").astype(int).groupby(mixed["job_id"]).cumsum()
    for event in ("step_completed", "checkpoint_saved"):
        rows = mixed[mixed["event"] == event].assign(epoch=epoch)
        previous = rows.groupby(["job_id", "epoch"])["step"].shift()
        assert ((rows["step"] > previous) | previous.isna()).all(), event
    assert (events_of(mixed, "rollback")["step"] >= 1).all()


def test_jobs_take_hours_and_steps_minutes(mixed: pd.DataFrame) -> None:
    finished = mixed.groupby("job_id")["event"].transform(lambda e: (e == "succeeded").any())
    spans = mixed[finished].groupby("job_id")["ts"].agg(["min", "max"])
    hours = (spans["max"] - spans["min"]).dt.total_seconds() / 3600
    assert 0.5 < hours.median() < 6
    steps = events_of(mixed, "step_completed")
    gaps = steps.groupby("job_id")["ts"].diff().dropna().dt.total_seconds()
    assert 20 < gaps.median() < 900


def test_rollout_and_grading_overlap() -> None:
    job = one_job(Scenario())
    phases = job[job["phase"].isin(["rollout", "grading"])]
    starts = phases[phases["event"] == "phase_start"].groupby("phase")["ts"].apply(list)
    ends = phases[phases["event"] == "phase_end"].groupby("phase")["ts"].apply(list)
    for r_start, r_end, g_start, g_end in zip(
        starts["rollout"], ends["rollout"], starts["grading"], ends["grading"], strict=True
    ):
        assert r_start < g_start < r_end <= g_end


# --- scenarios ---------------------------------------------------------------------------


def test_success_runs_every_step_then_safety_eval() -> None:
    job = one_job(Scenario(checkpoint_interval=5))
    assert job["event"].iloc[-1] == "succeeded"
    assert events_of(job, "step_completed")["step"].tolist() == list(range(1, 13))
    assert events_of(job, "checkpoint_saved")["step"].tolist() == [5, 10, 12]
    validations = events_of(job, "phase_start")["phase"] == "validation"
    assert validations.sum() == 3  # after steps 4, 8 and 12
    phases = set(job["phase"].dropna())
    assert {"validating_files", "safety_check", "queued", "setup", "safety_eval"} <= phases
    assert not set(job["event"]) & {"failed", "cancelled", "paused", "rollback"}


def test_failure_is_the_last_event_during_the_next_step() -> None:
    job = one_job(Scenario(outcome="failed", stop_after_step=7, checkpoint_interval=5))
    assert job["event"].iloc[-1] == "failed"
    assert len(events_of(job, "failed")) == 1
    assert events_of(job, "step_completed")["step"].max() == 7
    assert events_of(job, "checkpoint_saved")["step"].tolist() == [5]
    starts = events_of(job, "phase_start")
    assert starts["phase"].iloc[-1] in {"rollout", "grading"}  # left open: closed by the failure


def test_cancel_and_running_end_as_expected() -> None:
    cancelled = one_job(Scenario(outcome="cancelled", stop_after_step=2))
    assert cancelled["event"].iloc[-1] == "cancelled"
    running = one_job(Scenario(outcome="running", stop_after_step=4))
    assert not running["event"].isin(FINAL_EVENTS).any()
    assert events_of(running, "step_completed")["step"].max() == 4


def test_pause_has_paused_then_resumed() -> None:
    job = one_job(Scenario(pause_after_step=6, pause_seconds=7200))
    paused, resumed = events_of(job, "paused"), events_of(job, "resumed")
    assert len(paused) == 1 and len(resumed) == 1
    gap = resumed["ts"].iloc[0] - paused["ts"].iloc[0]
    assert gap == pd.Timedelta(hours=2)
    after_step = events_of(job, "step_completed")
    assert (after_step[after_step["ts"] < paused["ts"].iloc[0]]["step"].max()) == 6


def test_rollback_returns_to_a_saved_checkpoint() -> None:
    job = one_job(Scenario(rollback_after_steps=(7, 11), checkpoint_interval=3))
    rollbacks = events_of(job, "rollback")
    assert rollbacks["step"].tolist() == [6, 9]
    for _, rollback in rollbacks.iterrows():
        saved = events_of(job, "checkpoint_saved")
        assert rollback["step"] in set(saved[saved["ts"] <= rollback["ts"]]["step"])
    steps = events_of(job, "step_completed")["step"].tolist()
    assert steps == [*range(1, 8), *range(7, 12), *range(10, 13)]
    assert job["event"].iloc[-1] == "succeeded"


def test_scenarios_that_do_not_fit_are_adjusted() -> None:
    job = one_job(
        Scenario(
            outcome="failed",
            stop_after_step=50,  # past the end: clipped to steps - 1
            pause_after_step=12,  # after the stop: dropped
            rollback_after_steps=(2,),  # before the first checkpoint: dropped
            checkpoint_interval=5,
        )
    )
    assert events_of(job, "step_completed")["step"].max() == 11
    assert not job["event"].isin(["paused", "rollback"]).any()


def test_failure_without_a_checkpoint_in_its_segment_loses_the_segment() -> None:
    job = one_job(
        Scenario(outcome="failed", stop_after_step=6, pause_after_step=5, checkpoint_interval=5)
    )
    bill = rftcost.bill(job).job(job["job_id"].iloc[0])
    assert [c.event for c in bill.charges] == ["paused", "failed"]
    assert bill.charges[1].amount == 0
    assert bill.charges[1].lost_seconds > 0


def test_random_mix_covers_every_outcome(mixed: pd.DataFrame) -> None:
    present = set(mixed["event"])
    assert {"succeeded", "failed", "cancelled", "paused", "resumed", "rollback"} <= present
    finals = mixed[mixed["event"].isin(FINAL_EVENTS)].groupby("job_id").size()
    assert (finals == 1).all()
    assert mixed["job_id"].nunique() > len(finals)  # some jobs are still running


def test_every_simulated_job_bills_as_valid(mixed: pd.DataFrame) -> None:
    bill = rftcost.bill(mixed)
    assert bill.totals().invalid_jobs == 0
    assert bill.problems.empty
    assert bill.log is not None and bill.log.counts()["rejected"] == 0


# --- graders and the time model -----------------------------------------------------------


def test_model_graders_report_token_usage(mixed: pd.DataFrame) -> None:
    usage = events_of(mixed, "grader_usage")
    assert usage["grader_model"].notna().all()
    assert (usage["cached_input_tokens"] <= usage["input_tokens"]).all()
    assert (usage["output_tokens"] > 0).all()
    graders = events_of(mixed, "job_created").set_index("job_id")["grader_type"]
    used_by = graders.loc[usage["job_id"].unique()]
    assert used_by.isin(["score_model", "label_model", "multi"]).all()
    assert {"o3-2025-04-16", "gpt-4.1-2025-04-14", "gpt-4.1-nano-2025-04-14"} <= set(
        usage["grader_model"]
    )


def test_usage_grows_with_graded_samples() -> None:
    small = one_job(Scenario(), SETTINGS.model_copy(update={"batch_size": 8}))
    large = one_job(Scenario(), SETTINGS.model_copy(update={"batch_size": 64}))

    def per_step(job: pd.DataFrame) -> float:
        usage = events_of(job, "grader_usage")
        return float(usage["input_tokens"].median())

    assert per_step(large) > 3 * per_step(small)


def test_reasoning_graders_are_about_ten_times_slower() -> None:
    model = TimeModel()
    o3 = model.grader_seconds_per_sample("score_model", "o3-2025-04-16")
    nano = model.grader_seconds_per_sample("score_model", "gpt-4.1-nano")
    python = model.grader_seconds_per_sample("python", None)
    assert 8 <= o3 / model.grader_seconds_per_sample("score_model", "gpt-4.1") <= 20
    assert o3 > nano > python


def test_median_seconds_grow_with_the_settings() -> None:
    model = TimeModel()
    base = model.median_seconds(SETTINGS)
    bigger = model.median_seconds(SETTINGS.model_copy(update={"compute_multiplier": 2.0}))
    harder = model.median_seconds(SETTINGS.model_copy(update={"reasoning_effort": "high"}))
    assert bigger.rollout > base.rollout and bigger.update > base.update
    assert harder.rollout > base.rollout and harder.update == base.update
    assert base.samples_per_step == 16 * model.rollouts_per_prompt


def test_settings_validate_their_grader() -> None:
    assert SETTINGS.steps == 12
    with pytest.raises(ValidationError, match="needs grader_model"):
        RunSettings(grader_type="score_model")
    with pytest.raises(ValidationError, match="calls no model"):
        RunSettings(grader_type="python", grader_model="o3")
    with pytest.raises(ValidationError):
        RunSettings(batch_size=0)


def test_given_ids_and_creation_times_are_used() -> None:
    frame = simulate_jobs(
        [SETTINGS, SETTINGS],
        scenarios=Scenario(),
        job_ids=["ftjob-a", "ftjob-b"],
        created_at=["2025-06-09T08:00:00Z", "2025-06-11T08:00:00Z"],
    )
    created = events_of(frame, "job_created")
    assert created["job_id"].tolist() == ["ftjob-a", "ftjob-b"]
    assert created["ts"].tolist() == [
        pd.Timestamp("2025-06-09T08:00:00Z"),
        pd.Timestamp("2025-06-11T08:00:00Z"),
    ]
    with pytest.raises(ValueError, match="scenarios"):
        simulate_jobs([SETTINGS], scenarios=[Scenario(), Scenario()])


# --- writing --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet"])
def test_written_files_read_back_to_the_same_bill(
    tmp_path: Path, mixed: pd.DataFrame, suffix: str
) -> None:
    frame = mixed[mixed["job_id"].isin(mixed["job_id"].unique()[:40])]
    path = write_events(frame, tmp_path / f"events{suffix}")
    log = rftcost.read_events(path)
    assert log.counts() == {
        "records_read": len(frame),
        "accepted": len(frame),
        "duplicates": 0,
        "rejected": 0,
    }
    expected = rftcost.bill(frame).jobs_table()
    pd.testing.assert_frame_equal(rftcost.bill(log).jobs_table(), expected)


def test_jsonl_omits_missing_values_and_writes_utc_z(tmp_path: Path) -> None:
    frame = one_job(Scenario())
    path = write_events(frame, tmp_path / "one.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == len(frame)
    assert records[1].keys() == {"job_id", "ts", "event", "event_id", "phase"}
    assert all(r["ts"].endswith("Z") for r in records)
    assert records[0]["batch_size"] == 16 and records[0]["data_sharing"] is False


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    frame = one_job(Scenario())
    first = write_events(frame, tmp_path / "a.csv.gz").read_bytes()
    second = write_events(frame, tmp_path / "b.csv.gz").read_bytes()
    assert first == second
    assert gzip.decompress(first).startswith(b'"job_id","ts"')


def test_strings_are_escaped_in_jsonl(tmp_path: Path) -> None:
    frame = one_job(Scenario()).head(2).assign(message=['say "hi"\\\n', "tab\there\x01"])
    path = write_events(frame, tmp_path / "odd.jsonl")
    messages = [json.loads(line)["message"] for line in path.read_text().splitlines()]
    assert messages == ['say "hi"\\\n', "tab\there\x01"]


# --- the sample logs ------------------------------------------------------------------------

SAMPLE_LOGS = Path(__file__).resolve().parent.parent / "sample_logs"
WORKED_EXAMPLES = SAMPLE_LOGS.parent / "examples" / "worked_examples.jsonl"


def test_sample_logs_are_reproduced_by_their_generator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("generate", SAMPLE_LOGS / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "generate", generate)  # dataclasses look their module up
    spec.loader.exec_module(generate)
    written = generate.main(tmp_path, tmp_path / "examples")
    assert [p.name for p in written] == [
        "2025-05.jsonl", "2025-06.csv.gz", "2025-07.parquet", "worked_examples.jsonl"
    ]  # fmt: skip
    for path in written[:3]:
        assert path.read_bytes() == (SAMPLE_LOGS / path.name).read_bytes(), path.name
    assert written[3].read_bytes() == WORKED_EXAMPLES.read_bytes()
    # The folder a new user bills first holds the realistic log only (no worked examples).
    assert not (SAMPLE_LOGS / "worked_examples.jsonl").exists()


def test_sample_worked_examples_bill_as_the_spec_says() -> None:
    bill = rftcost.bill(WORKED_EXAMPLES)
    totals = {f"ftjob-example-{i:02d}": bill.job(f"ftjob-example-{i:02d}") for i in range(1, 13)}
    assert {job_id: str(job.total_amount) for job_id, job in totals.items()} == {
        "ftjob-example-01": "400.00",
        "ftjob-example-02": "200.00",
        "ftjob-example-03": "101.00",
        "ftjob-example-04": "100.00",
        "ftjob-example-05": "200.00",
        "ftjob-example-06": "200.00",
        "ftjob-example-07": "300.00",
        "ftjob-example-08": "100.00",
        "ftjob-example-09": "200.00",
        "ftjob-example-10": "102.50",
        "ftjob-example-11": "217.40",
        "ftjob-example-12": "200.00",
    }
    grader = [line.amount for c in totals["ftjob-example-11"].charges for line in c.grader_lines]
    assert [str(amount) for amount in grader] == ["14.50", "2.90"]


def test_sample_logs_cover_every_situation() -> None:
    bill = rftcost.bill(SAMPLE_LOGS)
    assert bill.totals().invalid_jobs == 0
    statuses = bill.jobs.set_index("job_id")["status"]
    assert set(statuses) == {"succeeded", "failed", "cancelled", "running"}
    assert bill.log is not None
    events = bill.log.events
    sources = events.groupby("job_id")["source"].nunique()
    assert sources["ftjob-demo-month-end"] == 2
    teams = events.loc[events["event"] == "job_created", "team"]
    assert teams.nunique() == 4 and teams.isna().any()
    o3 = events[(events["event"] == "grader_usage") & events["grader_model"].str.startswith("o3")]
    june_10 = pd.Timestamp("2025-06-10T00:00:00Z").value
    assert (o3["ts"] < june_10).any() and (o3["ts"] >= june_10).any()
