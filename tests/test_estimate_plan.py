"""Plans: reading and checking a create-job request (rftcost.plan)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from rftcost.errors import PlanError
from rftcost.plan import AUTO_DEFAULTS, load_plan, plan_from_settings, scan_data_file
from rftcost.simulate import RunSettings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _line(content: str = "What is 2 + 2?", **extra: Any) -> str:
    return json.dumps(
        {
            "messages": [
                {"role": "developer", "content": "Answer."},
                {"role": "user", "content": content},
            ],
            **extra,
        }
    )


def _body(**hyper: Any) -> dict[str, Any]:
    return {
        "model": "o4-mini-2025-04-16",
        "training_file": "train.jsonl",
        "validation_file": "valid.jsonl",
        "method": {
            "type": "reinforcement",
            "reinforcement": {
                "grader": {
                    "type": "score_model",
                    "name": "judge",
                    "model": "gpt-4.1-mini-2025-04-14",
                    "input": [{"role": "user", "content": "Score {{sample.output_text}}"}],
                },
                "hyperparameters": hyper,
            },
        },
        "metadata": {"team": "search", "project": "ranker"},
    }


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "train.jsonl").write_text(
        "\n".join(_line(f"question {i}", reference_answer=str(i)) for i in range(50)) + "\n"
    )
    (tmp_path / "valid.jsonl").write_text("\n".join(_line(f"q {i}") for i in range(12)) + "\n\n")
    return tmp_path


def _write(folder: Path, body: dict[str, Any]) -> Path:
    path = folder / "plan.json"
    path.write_text(json.dumps(body))
    return path


def test_reads_a_create_job_request_and_counts_the_data(data: Path) -> None:
    plan = load_plan(_write(data, _body(batch_size=8, n_epochs=3, eval_interval=4, eval_samples=2)))
    assert plan.n_train_examples == 50
    assert plan.n_valid_examples == 12  # the blank line is not an example
    assert (plan.batch_size, plan.n_epochs, plan.eval_interval, plan.eval_samples) == (8, 3, 4, 2)
    assert plan.grader_type == "score_model"
    assert plan.grader_model == "gpt-4.1-mini-2025-04-14"
    assert plan.grader.prompt_tokens > 0
    assert (plan.team, plan.project) == ("search", "ranker")
    assert plan.train_prompt_tokens is not None and plan.train_prompt_tokens > 0
    # 50 examples × 3 epochs / 8 per step, rounded up; validation every 4 steps and at the end.
    assert plan.steps == 19
    assert plan.validation_runs == 5


def test_steps_match_the_simulator() -> None:
    for n_train, epochs, batch in ((200, 2, 16), (25, 1, 64), (499, 3, 32), (7, 2, 8)):
        settings = RunSettings(n_train_examples=n_train, n_epochs=epochs, batch_size=batch)
        assert plan_from_settings(settings.model_dump()).steps == settings.steps


def test_auto_resolves_to_documented_defaults_and_says_so(data: Path) -> None:
    plan = load_plan(_write(data, _body(batch_size="auto", reasoning_effort="default")))
    assert plan.batch_size == AUTO_DEFAULTS["batch_size"]
    assert plan.compute_multiplier == AUTO_DEFAULTS["compute_multiplier"]
    assert plan.reasoning_effort == "medium"
    text = " ".join(plan.assumptions)
    for name in (
        "batch_size",
        "n_epochs",
        "compute_multiplier",
        "eval_interval",
        "eval_samples",
        "reasoning_effort",
    ):
        assert name in text


def test_counts_from_options_replace_file_ids(tmp_path: Path) -> None:
    body = _body()
    body["training_file"] = "file-abc123"
    body["validation_file"] = "file-def456"
    with pytest.raises(PlanError, match=r"uploaded file id.*--n-train"):
        load_plan(_write(tmp_path, body))
    plan = load_plan(_write(tmp_path, body), n_train=300, n_valid=30, data_sharing=True)
    assert (plan.n_train_examples, plan.n_valid_examples, plan.data_sharing) == (300, 30, True)
    assert any("--n-train" in a for a in plan.assumptions)


def test_without_validation_file_there_are_no_validation_runs(data: Path) -> None:
    body = _body(eval_interval=2)
    del body["validation_file"]
    plan = load_plan(_write(data, body))
    assert plan.n_valid_examples == 0
    assert plan.validation_runs == 0


def test_multi_grader_collects_its_models(data: Path) -> None:
    body = _body()
    body["method"]["reinforcement"]["grader"] = {
        "type": "multi",
        "name": "combo",
        "calculate_output": "0.5 * judge + 0.5 * exact",
        "graders": {
            "judge": {
                "type": "label_model",
                "name": "judge",
                "model": "gpt-4.1-nano",
                "input": [],
                "labels": ["ok", "bad"],
                "passing_labels": ["ok"],
            },
            "exact": {
                "type": "string_check",
                "name": "exact",
                "input": "{{sample.output_text}}",
                "reference": "{{item.answer}}",
                "operation": "eq",
            },
        },
    }
    plan = load_plan(_write(data, body))
    assert plan.grader_type == "multi"
    assert plan.grader.models == ("gpt-4.1-nano",)
    assert plan.grader.inner_types == ("label_model", "string_check")


@pytest.mark.parametrize(
    ("hyper", "message"),
    [
        ({"batch_size": 0}, "batch_size must be between 1 and 256"),
        ({"batch_size": 512}, "batch_size must be between 1 and 256"),
        ({"batch_size": 2.5}, 'batch_size must be "auto" or an integer'),
        ({"n_epochs": 51}, "n_epochs must be between 1 and 50"),
        ({"compute_multiplier": 0}, "compute_multiplier must be greater than 1e-05"),
        ({"compute_multiplier": 11}, "at most 10"),
        ({"compute_multiplier": "lots"}, 'compute_multiplier must be "auto" or a number'),
        ({"eval_interval": 0}, "eval_interval must be between 1 and 2147483647"),
        ({"eval_samples": -1}, "eval_samples must be between 1 and 2147483647"),
        ({"reasoning_effort": "max"}, "reasoning_effort must be one of default, low, medium, high"),
        ({"learning_rate_multiplier": -1}, "learning_rate_multiplier"),
        ({"temperature": 1}, "unknown hyperparameter 'temperature'"),
    ],
)
def test_out_of_range_hyperparameters_are_plan_errors(
    data: Path, hyper: dict[str, Any], message: str
) -> None:
    with pytest.raises(PlanError, match=message.replace("(", r"\(")):
        load_plan(_write(data, _body(**hyper)))


@pytest.mark.parametrize("value", [False, 0, "", []])
def test_objects_given_as_other_falsy_values_are_refused(data: Path, value: object) -> None:
    # Not read as "every setting omitted": the API refuses them, so does the plan.
    body = _body()
    body["method"]["reinforcement"]["hyperparameters"] = value
    with pytest.raises(PlanError, match="hyperparameters must be an object"):
        load_plan(_write(data, body))
    body = _body()
    body["metadata"] = value
    with pytest.raises(PlanError, match="metadata must be an object"):
        load_plan(_write(data, body))
    body = _body()
    body["method"]["reinforcement"]["grader"]["sampling_params"] = value
    with pytest.raises(PlanError, match="sampling_params must be an object"):
        load_plan(_write(data, body))
    body = _body()
    body["method"]["reinforcement"]["hyperparameters"] = None
    body["metadata"] = None
    assert load_plan(_write(data, body)).batch_size == AUTO_DEFAULTS["batch_size"]


def test_unknown_grader_type_is_a_plan_error(data: Path) -> None:
    body = _body()
    body["method"]["reinforcement"]["grader"] = {"type": "vibes_check", "name": "x"}
    with pytest.raises(PlanError, match="unknown grader type 'vibes_check'; known: string_check"):
        load_plan(_write(data, body))
    body["method"]["reinforcement"]["grader"] = {"type": "label_model", "model": "gpt-4.1"}
    with pytest.raises(PlanError, match="label_model is accepted only inside a multi grader"):
        load_plan(_write(data, body))
    body["method"]["reinforcement"]["grader"] = {"type": "score_model", "name": "x"}
    with pytest.raises(PlanError, match="needs a 'model'"):
        load_plan(_write(data, body))


def test_a_plan_that_is_not_reinforcement_is_refused(data: Path) -> None:
    body = _body()
    body["method"] = {"type": "supervised", "supervised": {}}
    with pytest.raises(PlanError, match=r"method.type is 'supervised'"):
        load_plan(_write(data, body))
    with pytest.raises(PlanError, match="'model' is required"):
        load_plan(_write(data, {k: v for k, v in _body().items() if k != "model"}))
    (data / "plan.json").write_text("{not json")
    with pytest.raises(PlanError, match=r"plan.json:1: not valid JSON"):
        load_plan(data / "plan.json")


@pytest.mark.parametrize("escape", ["\\udc80", "\\ud83d"])
@pytest.mark.parametrize("value", ["search", "judge", "Score {{sample.output_text}}"])
def test_a_lone_surrogate_escape_in_a_plan_is_a_plan_error_naming_its_line(
    data: Path, value: str, escape: str
) -> None:
    """A team (or grader name, prompt) that parses to no text: refused with its line, not
    written as bytes that are not UTF-8 (or a UnicodeEncodeError) by ``estimate -f json``."""
    text = json.dumps(_body(), indent=1)
    assert text.count(f'"{value}"') == 1
    path = data / "plan.json"
    path.write_text(text.replace(f'"{value}"', f'"{value}{escape}"'))
    line = 1 + text.split(f'"{value}"')[0].count("\n")
    with pytest.raises(PlanError, match=rf"plan.json:{line}: not valid text: a lone surrogate"):
        load_plan(path)
    body = json.loads(path.read_text())
    with pytest.raises(PlanError, match=r"<plan>: not valid text: a lone surrogate escape"):
        load_plan(body, base_dir=data)  # a parsed body, as a notebook passes it
    path.write_text(text.replace('"search"', '"search\\ud83d\\ude00"'))  # a pair is text
    assert load_plan(path).team == "search\U0001f600"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "hi"},
                        {"role": "assistant", "content": "hello"},
                    ]
                }
            ),
            "last message must be from the user, not 'assistant' .*supervised fine-tuning data",
        ),
        (
            json.dumps(
                {"input": {"messages": []}, "preferred_output": [], "non_preferred_output": []}
            ),
            "DPO preference data",
        ),
        (json.dumps({"prompt": "a", "completion": "b"}), "prompt/completion data"),
        (json.dumps({"text": "hello"}), "no 'messages' list"),
        (json.dumps({"messages": []}), "non-empty list"),
        (json.dumps({"messages": [{"content": "x"}]}), r"messages\[0\] needs a 'role'"),
        ("[1, 2]", "each line is a JSON object"),
        ("{broken", "not JSON Lines"),
    ],
)
def test_a_file_that_is_not_rft_data_is_a_plan_error(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(_line() + "\n" + line + "\n")
    with pytest.raises(PlanError, match=f"train.jsonl:2: .*{message}"):
        scan_data_file(path)


def test_missing_and_empty_data_files(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no such file"):
        load_plan(_write(tmp_path, _body()))
    (tmp_path / "train.jsonl").write_text("\n")
    with pytest.raises(PlanError, match="no examples"):
        scan_data_file(tmp_path / "train.jsonl")


def test_what_if_changes_are_checked_like_a_plan(data: Path) -> None:
    plan = load_plan(_write(data, _body(batch_size=8)))
    assert plan.with_changes(eval_samples=3).eval_samples == 3
    assert plan.with_changes(grader_model="o3").grader_model == "o3"
    assert plan.with_changes(grader_type="python").grader_model is None
    with pytest.raises(PlanError, match="batch_size must be between 1 and 256"):
        plan.with_changes(batch_size=1000)
    with pytest.raises(PlanError, match="unknown grader type"):
        plan.with_changes(grader_type="nope")


def test_the_example_plan_loads() -> None:
    plan = load_plan(EXAMPLES / "plan.json")
    assert plan.steps == 15
    assert plan.validation_runs == 3
    assert plan.grader_model == "gpt-4.1-mini-2025-04-14"


def test_plan_from_a_dict_resolves_paths_from_base_dir(data: Path) -> None:
    plan = load_plan(copy.deepcopy(_body()), base_dir=data)
    assert plan.n_train_examples == 50
    assert plan.source is None
