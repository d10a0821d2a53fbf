"""estimate's errors name where the setting came from (the plan file or a --vary change),
and --vary accepts "auto" as a plan does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import cli, score_model_plan


def test_an_unpriced_grader_in_vary_names_the_option_and_the_time_to_the_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "estimate",
        str(score_model_plan(tmp_path)),
        "--n-train",
        "100",
        "--vary",
        "grader=nosuchmodel",
    ]
    code, out, err = cli(capsys, *args, "--at", "2026-12-01T01:31:46.815810Z")
    assert code == 2 and out == ""
    assert err.startswith(
        "error: --vary grader=nosuchmodel: no token price for grader model 'nosuchmodel'"
        " at 2026-12-01T01:31:46Z"
    )
    assert err.count("\n") == 1 and ".815810" not in err


def test_an_unknown_base_model_names_the_plan_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = score_model_plan(tmp_path, model="gpt-9")
    code, out, err = cli(capsys, "estimate", str(plan), "--n-train", "100")
    assert code == 2 and out == ""
    assert err == (
        f"error: {plan}: no hourly training rate for base model 'gpt-9' in policy openai-rft;"
        " known: o4-mini\n"
    )
    code, _, err = cli(
        capsys,
        "estimate",
        str(score_model_plan(tmp_path)),
        "--n-train",
        "100",
        "--vary",
        "model=gpt-9",
    )
    assert code == 2 and err.startswith("error: --vary model=gpt-9: no hourly training rate")


def test_vary_accepts_auto_as_a_plan_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["estimate", str(score_model_plan(tmp_path)), "--n-train", "160", "-f", "json"]
    code, out, err = cli(capsys, *args, "--vary", "batch_size=auto,8", "--vary", "n_epochs=auto")
    assert code == 0, err
    rows = json.loads(out)["what_if"]
    # "auto" is rftcost's default batch size (16): 160 examples × 1 epoch / 16 = 10 steps.
    assert [(r["changes"]["batch_size"], r["steps"]) for r in rows] == [("auto", 10), ("8", 20)]
