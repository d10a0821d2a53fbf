"""Real OpenAI and Azure exports bill right, or say exactly why they cannot (issue 12).

The first part runs the shared cases (``../shared/cases/realworld`` and the hostile
``openai-bad-metric``) through the CLI and asserts their ``expect.md`` result. The
rest tests each kind of fault in general, on exports built here: job state from the
job object, webhooks and error events (kinds 1, 11); snapshots merged (2); grader
usage wherever the API documents it (3, 15); documented non-billing events and
rejected records (4); the vendor's figures as cross-checks (5); conflicting evidence
(8); incomplete exports (10); folders with other ``.json`` files (11); and a property:
an export cut short bills the same as the whole or marks the job unknown.
"""

from __future__ import annotations

import json
import shutil
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_cases import SHARED_CASES
from strategies import examples

from rftcost.engines import bill
from rftcost.events.openai import import_openai

CASES = SHARED_CASES
FIXTURES = Path(__file__).parent / "fixtures" / "openai"
START = 1_750_000_000

needs_cases = pytest.mark.skipif(
    not CASES.is_dir(), reason=f"the shared cases folder {CASES} is not present"
)


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    from rftcost.cli import main

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["rftcost", *args])
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def bill_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any]]:
    code, out, _ = run_cli(monkeypatch, capsys, "bill", "--format", "json", *args)
    return code, json.loads(out)


# --- the shared cases, through the CLI ------------------------------------------------------


@needs_cases
def test_case_02_api_reference_success_wording(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kind 1: "Fine tuning job successfully completed" closes the job: $100.00 charged."""
    code, doc = bill_json(monkeypatch, capsys, str(CASES / "realworld/02-apiref-success-wording"))
    (job,) = doc["jobs"]
    assert code == 0
    assert (job["status"], job["total_amount"], job["accrued_amount"]) == (
        "succeeded",
        "100.00",
        "0.00",
    )
    assert doc["totals"]["total_amount"] == "100.00"


@needs_cases
@pytest.mark.parametrize("variant", ["a-both-usage-fields", "b-usage-graders-only"])
def test_case_04_guide_metrics_event(
    variant: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kind 3: usage.graders[] is read, and never counted twice with the other field."""
    folder = CASES / "realworld/04-guide-metrics-event" / variant
    code, doc = bill_json(monkeypatch, capsys, "--strict", str(folder))
    (job,) = doc["jobs"]
    assert code == 0
    assert (job["compute_amount"], job["grader_amount"], job["total_amount"]) == (
        "20.00",
        "1.04",
        "21.04",
    )
    (line,) = job["charges"][0]["grader_lines"]
    assert (line["input_tokens"], line["output_tokens"]) == (125_561, 72_212)


@needs_cases
def test_case_05_moderation_checks_event_is_a_note(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kind 4: a moderation_checks event is a note: $50.00, validate exit 0."""
    folder = str(CASES / "realworld/05-moderation-checks-event")
    code, doc = bill_json(monkeypatch, capsys, "--strict", folder)
    assert code == 0 and doc["jobs"][0]["total_amount"] == "50.00"
    code, out, _ = run_cli(monkeypatch, capsys, "validate", folder)
    assert code == 0
    assert "0 rejected" in out and "moderation_checks" in out


@needs_cases
def test_case_06_azure_event_stream(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kinds 1, 5: Azure's wording; "Training hours billed" is compared, not billed from."""
    folder = str(CASES / "realworld/06-azure-event-stream")
    for policy in ("openai-rft", "azure-rft"):
        code, doc = bill_json(monkeypatch, capsys, "--strict", "--policy", policy, folder)
        (job,) = doc["jobs"]
        assert code == 0
        assert (job["status"], job["billed_hours"], job["total_amount"]) == (
            "succeeded",
            "0.50",
            "50.00",
        )
        assert any("'Training hours billed: 0.500'" in note for note in doc["notes"])
    code, out, _ = run_cli(monkeypatch, capsys, "validate", folder)
    assert code == 0
    assert "'Training hours billed: 0.500'; the steps measure 0.500 h: they agree" in out
    (imported,) = import_openai([Path(folder)]).jobs
    assert imported.vendor_billed_hours == Decimal("0.500")


@needs_cases
def test_hostile_bad_metric_makes_its_own_job_invalid(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kind 4: the rejected record names file and event id, and its job's amount is unknown."""
    folder = str(CASES / "hostile/openai-bad-metric")
    code, doc = bill_json(monkeypatch, capsys, folder)
    (job,) = doc["jobs"]
    assert job["status"] == "invalid" and job["total_amount"] is None
    assert any("events.json:" in p and "ftevent-a07" in p for p in job["problems"])
    assert not any("events.json:0:" in p for p in job["problems"])
    assert doc["totals"]["invalid_jobs"] == 1
    code, _ = bill_json(monkeypatch, capsys, "--strict", folder)
    assert code == 1
    code, out, _ = run_cli(monkeypatch, capsys, "validate", "--format", "json", folder)
    report = json.loads(out)
    assert code == 1 and report["invalid_jobs"] == 1
    (rejected,) = report["rejected"]
    assert rejected["job_id"] == "ftjob-succeeded1" and rejected["line"] >= 1
    assert "ftevent-a07" in rejected["reason"]


# --- building exports ------------------------------------------------------------------------


def event(event_id: str, at: int, message: str, **fields: Any) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.event",
        "id": event_id,
        "created_at": at,
        "level": fields.pop("level", "info"),
        "message": message,
        "type": fields.pop("type", "message"),
        "data": fields.pop("data", {}),
    }


def metrics(event_id: str, at: int, step: int, total: int, **data: Any) -> dict[str, Any]:
    body = {"step": step, "total_steps": total, "train_mean_reward": 0.5, **data}
    return event(event_id, at, f"Step {step}/{total}", type="metrics", data=body)


def timing(seconds: float) -> dict[str, Any]:
    return {"step": {"full_iteration": seconds}}


def job_object(job_id: str, **fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "object": "fine_tuning.job",
        "id": job_id,
        "model": "o4-mini-2025-04-16",
        "created_at": START,
        "finished_at": None,
        "status": "running",
        "method": {
            "type": "reinforcement",
            "reinforcement": {
                "hyperparameters": {"reasoning_effort": "medium"},
                "grader": {"type": "string_check", "name": "s"},
            },
        },
        "metadata": {"team": "search", "project": "ranker"},
        "shared_with_openai": False,
    }
    job.update(fields)
    return job


def page(*items: Any, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": list(reversed(items)), "has_more": has_more}


def write(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1))
    return path


def two_step_events(job_id: str, tail: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Created, started, two timed 1800 s steps (1.00 h: $100.00), then ``tail``."""
    return [
        event("ev-1", START, f"Created fine-tuning job: {job_id}"),
        event("ev-2", START + 100, "Fine-tuning job started"),
        metrics("ev-3", START + 1900, 1, 2, timing=timing(1800.0)),
        metrics("ev-4", START + 3700, 2, 2, timing=timing(1800.0)),
        *(tail or []),
    ]


def export(folder: Path, job: dict[str, Any] | None, events: list[dict[str, Any]]) -> Path:
    if job is not None:
        write(folder / "job.json", job)
    write(folder / "events.json", page(*events))
    return folder


def only_job(folder: Path) -> Any:
    result = bill(folder)
    (job_id,) = result.job_ids()
    return result, result.job(job_id)


# --- kinds 1 and 11: state from every saved shape of the job --------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("succeeded", "Something new: the run is over"),
        ("failed", "Something new went wrong"),
        ("cancelled", "Something new: stopped"),
    ],
)
def test_job_object_status_closes_the_job_whatever_the_wording(
    tmp_path: Path, status: str, message: str
) -> None:
    job = job_object("ftjob-k1", status=status, finished_at=START + 3800)
    tail = [event("ev-5", START + 3800, message)]
    folder = export(tmp_path / "ftjob-k1", job, two_step_events("ftjob-k1", tail))
    result, billed = only_job(folder)
    assert billed.status == status
    assert billed.charges[0].at == "2025-06-15T16:10:00Z"  # finished_at
    assert billed.accrued_amount == Decimal("0.00")
    notes = " ".join(result.log.notes if result.log else ())
    assert f"{status} at 2025-06-15T16:10:00+00:00 from the job object" in notes


def test_azure_wording_is_known(tmp_path: Path) -> None:
    tail = [
        event("ev-5", START + 3750, "Job succeeded."),
        event("ev-6", START + 3760, "Postprocessing started."),
        event("ev-7", START + 3770, "Completed results file: file-r"),
    ]
    job = job_object("ftjob-az", status="succeeded", finished_at=START + 3800)
    folder = export(tmp_path / "ftjob-az", job, two_step_events("ftjob-az", tail))
    imported = import_openai([folder])
    assert imported.unknown_messages == ()
    _, billed = only_job(folder)
    assert (billed.status, billed.total_amount) == ("succeeded", Decimal("100.00"))


def test_paused_job_object_without_a_time_is_unknown(tmp_path: Path) -> None:
    """The pause response says paused, not when: a stop guessed at the last event could
    leave out steps the export lacks, so the amount is unknown, with the reason."""
    job = job_object("ftjob-p", status="paused")
    folder = export(tmp_path / "ftjob-p", job, two_step_events("ftjob-p"))
    _, billed = only_job(folder)
    assert billed.status == "invalid" and billed.total_amount is None
    assert "says 'paused' but has no finished_at and no event says when" in billed.problems[0]
    tail = [event("ev-5", START + 3800, "Fine-tuning job paused")]
    export(folder, job, two_step_events("ftjob-p", tail))
    _, billed = only_job(folder)
    assert billed.status == "paused" and billed.total_amount == Decimal("100.00")


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_webhook_payload_is_state_evidence(tmp_path: Path, status: str) -> None:
    folder = export(tmp_path / "ftjob-wh", None, two_step_events("ftjob-wh"))
    write(folder / "job.json", job_object("ftjob-wh"))  # an older retrieve: running
    write(
        folder / "webhook.json",
        {
            "id": "evt_1",
            "object": "event",
            "created_at": START + 3800,
            "type": f"fine_tuning.job.{status}",
            "data": {"id": "ftjob-wh"},
        },
    )
    result, billed = only_job(folder)
    assert billed.status == status
    assert billed.charges[0].at == "2025-06-15T16:10:00Z"
    assert "from webhook evt_1" in " ".join(result.log.notes if result.log else ())


def test_error_level_event_fails_the_job_whatever_its_wording(tmp_path: Path) -> None:
    tail = [event("ev-5", START + 3800, "Unexpected grader sandbox crash", level="error")]
    job = job_object("ftjob-e", status="failed", error={"code": "x", "message": "crash"})
    folder = export(tmp_path / "ftjob-e", job, two_step_events("ftjob-e", tail))
    _, billed = only_job(folder)
    assert billed.status == "failed"
    assert billed.charges[0].event == "failed"


# --- kind 2: snapshots merge field by field ----------------------------------------------------


def test_snapshots_merge_field_by_field(tmp_path: Path) -> None:
    folder = tmp_path / "ftjob-m"
    create = job_object("ftjob-m", status="validating_files")
    # The cancel response of the API reference: no method, no metadata.
    cancel = {"object": "fine_tuning.job", "id": "ftjob-m", "created_at": START}
    cancel |= {"status": "cancelled", "finished_at": START + 3800, "model": "o4-mini-2025-04-16"}
    write(folder / "create.json", create)
    write(folder / "cancel.json", cancel)
    write(folder / "events.json", page(*two_step_events("ftjob-m")))
    imported = import_openai([folder])
    (job,) = imported.jobs
    assert (job.status, job.team, job.project, job.grader_type) == (
        "cancelled",
        "search",
        "ranker",
        "string_check",
    )
    assert imported.duplicates == 1
    _, billed = only_job(folder)
    assert (billed.status, billed.team, billed.total_amount) == (
        "cancelled",
        "search",
        Decimal("100.00"),
    )


def test_rft_metrics_make_an_rft_job_without_method(tmp_path: Path) -> None:
    job = job_object("ftjob-nm", status="succeeded", finished_at=START + 3800)
    del job["method"]
    folder = export(tmp_path / "ftjob-nm", job, two_step_events("ftjob-nm"))
    result, billed = only_job(folder)
    assert billed.total_amount == Decimal("100.00")
    notes = " ".join(result.log.notes if result.log else ())
    assert "imported as reinforcement" in notes
    assert "grader is not named either" in notes  # its tokens: only as the events report


def test_a_job_that_cannot_be_told_rft_is_invalid_not_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    job = job_object("ftjob-q", status="succeeded", finished_at=START + 100)
    del job["method"]
    folder = export(tmp_path / "ftjob-q", job, [event("ev-1", START, "Created fine-tuning job")])
    code, doc = bill_json(monkeypatch, capsys, "--strict", str(folder))
    (billed,) = doc["jobs"]
    assert code == 1 and billed["status"] == "invalid" and billed["total_amount"] is None
    assert "names the job's method" in " ".join(billed["problems"])


# --- kinds 3 and 15: grader usage wherever documented; unknown, never $0 ----------------------


def usage_graders(model: str, prompt: int, completion: int) -> dict[str, Any]:
    entry = {"name": "g", "type": "score_model", "model": model}
    entry |= {"train_prompt_tokens_count": prompt, "valid_prompt_tokens_count": 0}
    entry |= {"train_completion_tokens_count": completion, "valid_completion_tokens_count": 0}
    return {"graders": [entry]}


def graded_job(job_id: str) -> dict[str, Any]:
    grader = {"type": "score_model", "name": "g", "model": "gpt-4o-2024-08-06", "input": []}
    method = {"type": "reinforcement", "reinforcement": {"grader": grader}}
    return job_object(job_id, status="succeeded", finished_at=START + 3800, method=method)


def graded_events(job_id: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        event("ev-1", START, f"Created fine-tuning job: {job_id}"),
        event("ev-2", START + 100, "Fine-tuning job started"),
        metrics("ev-3", START + 1900, 1, 1, timing=timing(1800.0), **data),
        event("ev-4", START + 2000, "The job has successfully completed"),
    ]


def test_both_usage_fields_count_once_and_a_disagreement_is_noted(tmp_path: Path) -> None:
    same = {
        "usage": usage_graders("gpt-4o-2024-08-06", 1_000_000, 100_000),
        "model_graders_token_usage": {
            "gpt-4o-2024-08-06": {"train_prompt_tokens": 1_000_000, "train_completion_tokens": 1}
        },
    }
    folder = export(tmp_path / "ftjob-g", graded_job("ftjob-g"), graded_events("ftjob-g", same))
    result, billed = only_job(folder)
    (line,) = billed.charges[0].grader_lines
    # model_graders_token_usage is used (it has cached counts); not added to usage.graders.
    assert (line.input_tokens, line.output_tokens) == (1_000_000, 1)
    assert "data.usage.graders (1000000, 0, 100000)" in " ".join(
        result.log.notes if result.log else ()
    )


def test_model_grader_without_readable_usage_is_unknown_not_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = export(tmp_path / "ftjob-u", graded_job("ftjob-u"), graded_events("ftjob-u", {}))
    code, doc = bill_json(monkeypatch, capsys, "--strict", str(folder))
    (job,) = doc["jobs"]
    assert code == 1
    assert job["status"] == "invalid"
    assert job["grader_amount"] is None and job["total_amount"] is None
    assert "grader amount unknown" in " ".join(job["problems"])
    assert doc["totals"]["invalid_jobs"] == 1 and doc["totals"]["invalid_wall_seconds"] > 0
    code, out, _ = run_cli(monkeypatch, capsys, "validate", str(folder))
    assert code == 1 and "grader amount unknown" in out


def _multi_job(job_id: str, models: tuple[str, str]) -> dict[str, Any]:
    graders = [
        {"type": "label_model", "name": "tone", "model": models[0], "input": [], "labels": []},
        {"type": "score_model", "name": "score", "model": models[1], "input": []},
    ]
    grader = {"type": "multi", "name": "m", "graders": graders, "calculate_output": "tone"}
    method = {"type": "reinforcement", "reinforcement": {"grader": grader}}
    return job_object(job_id, status="succeeded", finished_at=START + 3800, method=method)


@pytest.mark.parametrize(
    ("declared", "reported", "unknown"),
    [
        # Each model of a multi grader runs on every sample: usage of one alone is not all.
        (("gpt-4o-mini-2024-07-18", "o3-mini-2025-01-31"), ("gpt-4o-mini-2024-07-18",), True),
        (("gpt-4o-mini-2024-07-18", "o3-mini-2025-01-31"), ("o3-mini-2025-01-31",), True),
        # Both read, one under the dated snapshot of the alias the grader names.
        (
            ("gpt-4o-mini-2024-07-18", "o3-mini"),
            ("gpt-4o-mini-2024-07-18", "o3-mini-2025-01-31"),
            False,
        ),
    ],
)
def test_a_multi_grader_model_without_usage_is_unknown_not_zero(
    tmp_path: Path, declared: tuple[str, str], reported: tuple[str, ...], unknown: bool
) -> None:
    tokens = {"train_prompt_tokens": 100_000, "train_completion_tokens": 1_000}
    usage = {"model_graders_token_usage": dict.fromkeys(reported, tokens)}
    folder = export(
        tmp_path / "ftjob-m", _multi_job("ftjob-m", declared), graded_events("ftjob-m", usage)
    )
    _, billed = only_job(folder)
    if unknown:
        missing = sorted(set(declared) - set(reported))
        assert billed.status == "invalid" and billed.total_amount is None
        assert f"its grader runs {missing[0]} but no metrics event has token usage of it" in (
            " ".join(billed.problems)
        )
    else:
        assert billed.status == "succeeded"
        assert len(billed.charges[0].grader_lines) == 2


# --- kind 4: documented non-billing events; a rejected record's job ---------------------------


def test_a_rejected_record_makes_its_own_job_invalid_and_names_its_event(tmp_path: Path) -> None:
    events = two_step_events("ftjob-r")
    events[2]["data"]["step"] = "one"
    job = job_object("ftjob-r", status="succeeded", finished_at=START + 3800)
    folder = export(tmp_path / "ftjob-r", job, events)
    other = export(tmp_path / "ftjob-ok", None, two_step_events("ftjob-ok"))
    write(other / "job.json", job_object("ftjob-ok", status="succeeded", finished_at=START + 3800))
    result = bill(tmp_path)
    assert result.job("ftjob-r").status == "invalid"
    assert result.job("ftjob-ok").total_amount == Decimal("100.00")
    problem = result.job("ftjob-r").problems[0]
    assert "'ev-3'" in problem and f"{folder / 'events.json'}:" in problem
    assert ":0:" not in problem


# --- kind 8: conflicting evidence is reported ------------------------------------------------


def test_announced_checkpoint_absent_from_the_list_is_used_and_reported(tmp_path: Path) -> None:
    job = job_object("ftjob-c", status="failed", finished_at=START + 3900)
    tail = [
        event("ev-5", START + 3800, "Checkpoint created at step 2"),
        event("ev-6", START + 3900, "The job failed"),
    ]
    folder = export(tmp_path / "ftjob-c", job, two_step_events("ftjob-c", tail))
    checkpoint = {
        "object": "fine_tuning.job.checkpoint",
        "id": "ftckpt-1",
        "created_at": START + 1900,
        "fine_tuning_job_id": "ftjob-c",
        "step_number": 1,
    }
    write(folder / "checkpoints.json", page(checkpoint))
    imported = import_openai([folder])
    saved = imported.events[imported.events["event"] == "checkpoint_saved"]
    assert list(saved["step"]) == [1, 2]
    assert str(saved["ts"].iloc[1]) == "2025-06-15 16:08:20+00:00"  # step 2's metrics event
    assert any("absent from the checkpoint list" in note for note in imported.notes)
    _, billed = only_job(folder)
    assert billed.total_amount == Decimal("100.00")  # step 2 is not lost work (R5)


def test_snapshots_disagreeing_on_data_sharing_are_reported(tmp_path: Path) -> None:
    folder = export(tmp_path / "ftjob-d", None, two_step_events("ftjob-d"))
    write(folder / "a.json", job_object("ftjob-d", status="running", shared_with_openai=True))
    done = job_object("ftjob-d", status="succeeded", finished_at=START + 3800)
    write(folder / "b.json", done | {"shared_with_openai": False})
    notes = " ".join(import_openai([folder]).notes)
    assert "snapshots disagree on data sharing" in notes and "used False" in notes


def test_snapshots_disagreeing_on_team_and_project_are_reported(tmp_path: Path) -> None:
    """Who pays changed between the create response and a retrieve: the value used (the
    latest snapshot's) is said, with every snapshot's; a snapshot without metadata (the
    cancel response) disagrees with none."""
    folder = export(tmp_path / "ftjob-t", None, two_step_events("ftjob-t"))
    write(folder / "create.json", job_object("ftjob-t", status="validating_files"))
    done = job_object("ftjob-t", status="succeeded", finished_at=START + 3800)
    write(folder / "retrieve.json", done | {"metadata": {"team": "ads", "project": "ranker"}})
    write(folder / "bare.json", {k: v for k, v in done.items() if k != "metadata"})
    result, billed = only_job(folder)
    assert (billed.team, billed.total_amount) == ("ads", Decimal("100.00"))
    notes = [n for n in (result.log.notes if result.log else ()) if "disagree" in n]
    (note,) = notes  # the project agrees
    assert "snapshots disagree on team" in note
    assert f"{folder / 'create.json'}: 'search'" in note
    assert f"{folder / 'retrieve.json'}: 'ads'" in note
    assert f"used 'ads', from the latest snapshot ({folder / 'retrieve.json'}" in note
    write(folder / "retrieve.json", done | {"metadata": {"team": "search", "project": "ads"}})
    notes = " ".join(import_openai([folder]).notes)
    assert "snapshots disagree on project" in notes and "used 'ads'" in notes
    assert "disagree on team" not in notes


def paused_and_resumed(job_id: str) -> list[dict[str, Any]]:
    """Step 1 (0.50 h), paused 100 s into step 2 (R7: billed with the pause), resumed an
    hour later, step 2 (0.50 h): $53.00 charged at the pause (0.53 h), $50.00 accrued."""
    return [
        event("ev-1", START, f"Created fine-tuning job: {job_id}"),
        event("ev-2", START + 100, "Fine-tuning job started"),
        metrics("ev-3", START + 1900, 1, 2, timing=timing(1800.0)),
        event("ev-4", START + 2000, "Fine-tuning job paused"),
        event("ev-5", START + 5600, "Fine-tuning job resumed"),
        metrics("ev-6", START + 7400, 2, 2, timing=timing(1800.0)),
    ]


@pytest.mark.parametrize(
    ("pause", "resume", "paused_at"),
    [("a.json", "b.json", None), ("b.json", "a.json", None), ("b.json", "a.json", START + 2000)],
)
def test_a_pause_its_events_show_resumed_gives_way_to_the_running_snapshot(
    tmp_path: Path, pause: str, resume: str, paused_at: int | None
) -> None:
    """The pause and resume responses carry no time of their own: the resume message after
    the pause orders them, whatever order the files are read in (and the pause's own
    finished_at, if any, is not the job's end). A final status still wins over both,
    whatever its file's place."""
    folder = export(tmp_path / "ftjob-pr", None, paused_and_resumed("ftjob-pr"))
    write(folder / pause, job_object("ftjob-pr", status="paused", finished_at=paused_at))
    write(folder / resume, job_object("ftjob-pr", status="running"))
    result, billed = only_job(folder)
    assert (billed.status, billed.total_amount, billed.accrued_amount) == (
        "running",
        Decimal("53.00"),
        Decimal("50.00"),
    )
    (charge,) = billed.charges
    assert (charge.event, charge.at) == ("paused", "2025-06-15T15:40:00Z")
    notes = " ".join(result.log.notes if result.log else ())
    assert "its events resume it at 2025-06-15T16:40:00+00:00, after the pause" in notes
    assert f"'running' is used ({folder / resume})" in notes
    write(folder / "0.json", job_object("ftjob-pr", status="succeeded", finished_at=START + 7500))
    _, billed = only_job(folder)
    assert (billed.status, billed.total_amount) == ("succeeded", Decimal("103.00"))


def test_a_pause_not_shown_resumed_still_wins_over_running_and_is_reported(
    tmp_path: Path,
) -> None:
    """No message orders a pause response and a running retrieve: the pause (which follows
    running) is used, as before, and the disagreement is said; so is a pause whose own
    finished_at is after the resume message (a later pause)."""
    folder = export(tmp_path / "ftjob-pn", None, two_step_events("ftjob-pn"))
    write(folder / "a.json", job_object("ftjob-pn", status="paused"))
    write(folder / "b.json", job_object("ftjob-pn", status="running"))
    result, billed = only_job(folder)
    assert billed.status == "invalid" and billed.total_amount is None
    notes = " ".join(result.log.notes if result.log else ())
    assert "snapshots disagree on whether the job is paused" in notes
    assert "no message of its events resumes it after a pause" in notes
    export(folder, None, paused_and_resumed("ftjob-pn"))
    write(folder / "a.json", job_object("ftjob-pn", status="paused", finished_at=START + 9000))
    imported = import_openai([folder])
    assert imported.jobs[0].status == "paused"
    notes = " ".join(imported.notes)
    assert "but the paused snapshot's finished_at (2025-06-15T17:36:40+00:00) is later" in notes
    assert "'paused' is used" in notes


def test_a_paused_job_object_after_a_resume_message_is_not_said_to_lack_one(
    tmp_path: Path,
) -> None:
    """The one snapshot says paused, the events end resumed: the note says so, instead of
    claiming no message of the events speaks of a pause."""
    job = job_object("ftjob-pm", status="paused")
    folder = export(tmp_path / "ftjob-pm", job, paused_and_resumed("ftjob-pm"))
    notes = " ".join(import_openai([folder]).notes)
    assert "no message of its events says so" not in notes
    assert "its events end resumed (at 2025-06-15T16:40:00+00:00)" in notes


def test_status_contradicted_by_events_is_reported(tmp_path: Path) -> None:
    tail = [event("ev-5", START + 3800, "The job failed")]
    job = job_object("ftjob-x", status="succeeded", finished_at=START + 3800)
    folder = export(tmp_path / "ftjob-x", job, two_step_events("ftjob-x", tail))
    notes = " ".join(import_openai([folder]).notes)
    assert "the job object says 'succeeded' but its events say 'failed'" in notes


# --- kind 10: an incomplete export says so ------------------------------------------------------


def test_events_page_with_has_more_is_incomplete(tmp_path: Path) -> None:
    job = job_object("ftjob-h", status="succeeded", finished_at=START + 3800)
    folder = tmp_path / "ftjob-h"
    write(folder / "job.json", job)
    tail = [event("ev-5", START + 3800, "The job has successfully completed")]
    write(folder / "events.json", page(*two_step_events("ftjob-h", tail)[2:], has_more=True))
    _, billed = only_job(folder)
    assert billed.status == "invalid" and billed.total_amount is None
    assert "has_more: true" in billed.problems[0]


def test_metrics_from_step_3_of_8_are_incomplete(tmp_path: Path) -> None:
    events = [
        metrics(f"ev-{step}", START + 1800 * step, step, 8, timing=timing(1800.0))
        for step in range(3, 9)
    ] + [event("ev-9", START + 1800 * 8 + 10, "The job has successfully completed")]
    job = job_object("ftjob-s", status="succeeded", finished_at=START + 1800 * 8 + 10)
    folder = export(tmp_path / "ftjob-s", job, events)
    _, billed = only_job(folder)
    assert billed.status == "invalid" and "6 of steps 1–8" in billed.problems[0]


def test_checkpoints_without_events_are_incomplete(tmp_path: Path) -> None:
    folder = tmp_path / "ftjob-k"
    write(folder / "job.json", job_object("ftjob-k", status="succeeded", finished_at=START + 10))
    checkpoint = {
        "object": "fine_tuning.job.checkpoint",
        "id": "ftckpt-9",
        "created_at": START + 5,
        "fine_tuning_job_id": "ftjob-k",
        "step_number": 4,
    }
    write(folder / "checkpoints.json", page(checkpoint))
    _, billed = only_job(folder)
    assert billed.status == "invalid" and billed.total_amount is None
    assert "no events in the export" in billed.problems[0]


def test_a_step_without_timing_or_anchor_is_incomplete(tmp_path: Path) -> None:
    events = [metrics("ev-1", START + 1800, 1, 1)]
    job = job_object("ftjob-t", status="succeeded", finished_at=START + 1900)
    folder = export(tmp_path / "ftjob-t", job, events)
    _, billed = only_job(folder)
    assert billed.status == "invalid" and "no timing" in billed.problems[0]


# --- kind 11: a folder's other .json files are skipped alike ------------------------------------


def test_non_export_json_in_a_folder_is_skipped_by_bill_validate_and_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "exports"
    shutil.copytree(FIXTURES / "ftjob-failed1", folder / "ftjob-failed1")
    write(folder / "settings.json", {"theme": "dark"})
    code, doc = bill_json(monkeypatch, capsys, "--strict", str(folder))
    assert code == 0 and doc["jobs"][0]["total_amount"] == "102.65"
    code, out, _ = run_cli(monkeypatch, capsys, "validate", str(folder))
    assert code == 0 and "settings.json: not an OpenAI export, skipped" in out
    code, _, err = run_cli(monkeypatch, capsys, "import-openai", str(folder))
    assert code == 0 and "settings.json: skipped, not an OpenAI fine-tuning export" in err


@needs_cases
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"<html><body>502 Bad Gateway</body></html>\n", "not JSON: Expecting value"),
        (b"\xff\x00 a page that is not text", "not UTF-8 text"),
        ("a page saved as UTF-16".encode("utf-16"), "not UTF-8 text"),
    ],
    ids=["html", "binary", "utf-16"],
)
def test_an_unreadable_events_page_in_a_folder_is_a_rejected_record_of_its_job(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    reason: str,
) -> None:
    """An events.json that the sniff cannot read (not JSON, not UTF-8 where it looks) is
    not skipped as a file of another kind: its page is one rejected record (file, line,
    reason), counted by validate and bill, and its job stays invalid."""
    folder = tmp_path / "case"
    shutil.copytree(CASES / "realworld/02-apiref-success-wording", folder)
    (folder / "events.json").write_bytes(content)
    billed = bill(folder)
    assert billed.log is not None
    counts = billed.log.counts()
    assert counts["rejected"] == 1
    assert counts["records_read"] == counts["accepted"] + counts["duplicates"] + 1
    (row,) = billed.log.rejected.itertuples()
    assert (row.source, row.line, row.job_id) == (str(folder / "events.json"), 1, "ftjob-rw02")
    assert reason in row.reason and "none of the file's objects" in row.reason
    assert billed.job("ftjob-rw02").status == "invalid"
    code, out, _ = run_cli(monkeypatch, capsys, "validate", str(folder))
    assert code == 1 and "1 rejected" in out and "events.json:1: OpenAI export: " in out
    assert "skipped" not in out
    code, out, _ = run_cli(monkeypatch, capsys, "bill", str(folder))
    assert code == 0 and "+ 1 rejected" in out


def test_import_openai_reports_jobs_it_cannot_bill_and_strict_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = export(tmp_path / "ftjob-u", graded_job("ftjob-u"), graded_events("ftjob-u", {}))
    code, _, err = run_cli(monkeypatch, capsys, "import-openai", str(folder))
    assert code == 1 and "jobs that cannot be billed: 1" in err
    code, _, _ = run_cli(monkeypatch, capsys, "import-openai", "--strict", str(folder))
    assert code == 1


# --- the fixtures still bill as before ------------------------------------------------------------


def test_fixtures_bill_as_before() -> None:
    result = bill(FIXTURES)
    amounts = {j: str(result.job(j).total_amount) for j in result.job_ids()}
    assert amounts == {
        # The cancelled and the paused job: with the step in progress at the stop (R7).
        "ftjob-cancelled1": "79.65",
        "ftjob-failed1": "102.65",
        "ftjob-paused1": "204.00",
        "ftjob-succeeded1": "103.50",
    }
    assert result.problems.empty


# --- the property: an export cut short never bills less as final ----------------------------------


def _events_of(folder: Path) -> tuple[list[Path], list[list[dict[str, Any]]]]:
    files = sorted(p for p in folder.iterdir() if p.name.startswith("events"))
    pages = []
    for file in files:
        if file.suffix == ".jsonl":
            pages.append([json.loads(line) for line in file.read_text().splitlines() if line])
        else:
            value = json.loads(file.read_text())
            pages.append(value["data"] if isinstance(value, dict) else value)
    return files, pages


def _write_events(file: Path, items: list[dict[str, Any]], original: Path) -> None:
    if file.suffix == ".jsonl":
        file.write_text("".join(json.dumps(i) + "\n" for i in items))
        return
    value = json.loads(original.read_text())
    if isinstance(value, dict):
        value["data"] = items
    else:
        value = items
    file.write_text(json.dumps(value))


_WHOLE = {  # job: (total, discount) of the whole export (test_fixtures_bill_as_before)
    "ftjob-succeeded1": (Decimal("103.50"), Decimal("0.00")),
    "ftjob-failed1": (Decimal("102.65"), Decimal("0.00")),
    "ftjob-paused1": (Decimal("204.00"), Decimal("0.00")),
    "ftjob-cancelled1": (Decimal("79.65"), Decimal("79.00")),
}
_FOLDERS = {
    "ftjob-succeeded1": "succeeded",
    "ftjob-failed1": "ftjob-failed1",
    "ftjob-paused1": "paused",
    "ftjob-cancelled1": "cancelled",
}
_JOB_FIELDS = ("status", "finished_at", "method", "metadata", "shared_with_openai", "model")


@pytest.mark.slow
@settings(
    max_examples=examples(10, slow=True),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    job_id=st.sampled_from(sorted(_FOLDERS)),
    oldest=st.integers(min_value=0, max_value=8),
    newest=st.integers(min_value=0, max_value=3),
    dropped=st.sets(st.sampled_from(_JOB_FIELDS), max_size=3),
)
def test_an_export_cut_short_bills_the_same_or_unknown(
    tmp_path_factory: pytest.TempPathFactory,
    job_id: str,
    oldest: int,
    newest: int,
    dropped: set[str],
) -> None:
    """Events dropped from the end of the saved list (oldest, as the API lists newest first)
    or from the newest end, and fields missing from the snapshot: the job bills the same as
    the whole export, or is invalid (amount unknown), never a smaller amount as final."""
    folder = tmp_path_factory.mktemp("cut") / job_id
    shutil.copytree(FIXTURES / _FOLDERS[job_id], folder)
    files, pages = _events_of(folder)
    everything = sorted(
        (
            (item["created_at"], n, i)
            for n, items in enumerate(pages)
            for i, item in enumerate(items)
        ),
    )
    cut = set(everything[:oldest]) | set(everything[len(everything) - newest :])
    for n, (file, items) in enumerate(zip(files, pages, strict=True)):
        kept = [item for i, item in enumerate(items) if (item["created_at"], n, i) not in cut]
        _write_events(file, kept, file)
    job = json.loads((folder / "job.json").read_text())
    (folder / "job.json").write_text(json.dumps({k: v for k, v in job.items() if k not in dropped}))

    whole, discount = _WHOLE[job_id]
    try:
        result = bill(folder)
    except Exception as exc:
        pytest.fail(f"billing a cut export raised {exc!r}")
    if job_id not in result.job_ids():
        pytest.fail(f"job {job_id} dropped from the bill")
    cut_bill = result.job(job_id)
    if cut_bill.status == "invalid":
        assert cut_bill.total_amount is None and cut_bill.problems
        return
    assert cut_bill.total_amount is not None and cut_bill.accrued_amount is not None
    if cut_bill.status == "running":
        # Not final (R8): the evidence left shows the work so far. With the events that
        # ended the job cut off, nothing tells it from a job still running at its last
        # event, so it may show less than the whole, but as accrued, never as final, and
        # never more than the whole (a dropped discount field is an upper bound).
        so_far = cut_bill.total_amount + cut_bill.accrued_amount
        if not ("shared_with_openai" in dropped and discount):
            assert so_far <= whole, cut_bill
        return
    # A missing shared_with_openai drops the discount (an upper bound); nothing else may
    # change the amount.
    if "shared_with_openai" in dropped and discount:
        assert cut_bill.total_amount >= whole
    else:
        assert cut_bill.total_amount == whole, cut_bill


# --- calibrate and estimate --running from exports -----------------------------------------------


def test_exports_feed_calibrate_and_estimate_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Settings from method.reinforcement.hyperparameters, steps and time from metrics
    events (the estimator takes the total steps from them)."""
    from rftcost.calibration import job_measurements

    measured, _ = job_measurements(bill(FIXTURES))
    assert sorted(measured["job_id"]) == ["ftjob-paused1", "ftjob-succeeded1"]
    assert list(measured.sort_values("job_id")["steps"]) == [4, 3]

    job = json.loads((FIXTURES / "paused" / "job.json").read_text())
    job |= {"id": "ftjob-run1", "status": "running", "finished_at": None}
    lines = (FIXTURES / "paused" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line]
    first = min(e["created_at"] for e in events)
    events = [e for e in events if e["created_at"] - first < 4900]  # up to step 2 of 4
    for item in events:
        item["message"] = item["message"].replace("ftjob-paused1", "ftjob-run1")
    folder = tmp_path / "ftjob-run1"
    write(folder / "job.json", job)
    write(folder / "events.json", page(*events))
    code, out, _ = run_cli(
        monkeypatch, capsys, "estimate", "--running", str(folder), "--job", "ftjob-run1"
    )
    assert code == 0 and "2 of 4 steps" in out


def test_vendor_hours_that_differ_are_reported_with_both_figures(tmp_path: Path) -> None:
    """Kind 5: Azure's "Training hours billed" is compared with the steps' hours."""
    tail = [
        event("ev-5", START + 3750, "Job succeeded."),
        event("ev-6", START + 3760, "Training hours billed: 1.250"),
    ]
    job = job_object("ftjob-v", status="succeeded", finished_at=START + 3800)
    folder = export(tmp_path / "ftjob-v", job, two_step_events("ftjob-v", tail))
    imported = import_openai([folder])
    assert imported.jobs[0].vendor_billed_hours == Decimal("1.250")
    assert any(
        "'Training hours billed: 1.250'; the steps measure 1.000 h: they DIFFER" in note
        for note in imported.notes
    )


@pytest.mark.parametrize(
    ("said", "hours", "note"),
    [
        ("1,000.5", Decimal("1000.5"), "'Training hours billed: 1000.5'; the steps measure"),
        ("1e3", None, "'Training hours billed: 1e3' holds no number of hours"),
        ("-1", None, "'Training hours billed: -1' holds no number of hours"),
        ("1.25 hours", Decimal("1.25"), "'Training hours billed: 1.25'; the steps measure"),
        ("1.25\nCost: 125 USD", Decimal("1.25"), "'Training hours billed: 1.25'; the steps"),
    ],
)
def test_vendor_hours_are_read_whole_or_said_unreadable(
    tmp_path: Path, said: str, hours: Decimal | None, note: str
) -> None:
    """ "1,000.5" was quoted as 1 (the pattern stopped at the comma), "-1" or "abc" dropped
    without a word."""
    tail = [
        event("ev-5", START + 3750, "Job succeeded."),
        event("ev-6", START + 3760, f"Training hours billed: {said}"),
    ]
    job = job_object("ftjob-v", status="succeeded", finished_at=START + 3800)
    folder = export(tmp_path / "ftjob-v", job, two_step_events("ftjob-v", tail))
    imported = import_openai([folder])
    assert imported.jobs[0].vendor_billed_hours == hours
    assert any(note in text for text in imported.notes), imported.notes


# --- fix-import: wrong money, crashes, silent $0, zero step time ----------------------------


def _bad_jobs(tmp_path: Path) -> dict[str, str]:
    """One job per bad value, each in its folder, and a good one: job id → what it shows."""
    built: dict[str, str] = {}

    def add(text: str, job: dict[str, Any], events: list[dict[str, Any]]) -> None:
        job_id = f"ftjob-b{len(built)}"
        job["id"] = job_id
        events[0]["message"] = f"Created fine-tuning job: {job_id}"
        export(tmp_path / job_id, job, events)
        built[job_id] = text

    def timed() -> dict[str, Any]:
        return job_object("", status="succeeded", finished_at=START + 3800)

    for value in ("true", 1, "yes"):  # item 1: only a JSON boolean is read
        add(
            f"'shared_with_openai' is not a JSON boolean true/false (value {value!r})",
            {**timed(), "shared_with_openai": value},
            two_step_events(""),
        )
    counts = (2**63, 1e30, 2**53, 1.5, -1)
    for value in counts:  # item 2: counts an int64 column cannot hold, or not counts
        usage = {"gpt-4o": {"train_prompt_tokens": value}}
        add(repr(value), graded_job(""), graded_events("", {"model_graders_token_usage": usage}))
        graders = [{"model": "gpt-4o", "train_prompt_tokens_count": value}]
        add(repr(value), graded_job(""), graded_events("", {"usage": {"graders": graders}}))
    for field, value in [("step", 2**63), ("total_steps", 1e300), ("step", 2.5)]:
        events = two_step_events("")
        events[2]["data"][field] = value
        add(repr(value), timed(), events)
    for value in (1e300, float("nan"), -1.0, 2**70):
        events = two_step_events("")
        events[2]["data"]["timing"] = timing(value)
        add("full_iteration", timed(), events)
    for field, value in [
        ("created_at", 2**63),
        ("finished_at", 1e30),
        ("created_at", 10**10),
        ("finished_at", float("nan")),
        ("created_at", -5),
    ]:
        add(field, {**timed(), field: value}, two_step_events(""))
    for key, value in (("team", 42), ("project", ["ml"]), ("team", {"name": "ml"})):
        # Who pays, not text: never billed to no team without a word.
        add(
            f"metadata {key!r} is not text (value {value!r})",
            {**timed(), "metadata": {key: value}},
            two_step_events(""),
        )
    for value in ("team=search", ["team", "search"], 42):
        # Metadata that is no object: taken as none, the job went to no team without a word.
        add(
            f"'metadata' is not a JSON object (value {value!r})",
            {**timed(), "metadata": value},
            two_step_events(""),
        )
    for value in (12, {"name": "o4-mini"}):
        # A model that is no text: billed at the default model's rate without a word.
        add(
            f"'model' is not text (value {value!r})",
            {**timed(), "model": value},
            two_step_events(""),
        )
    return built


def test_bad_values_make_their_own_job_invalid_never_a_crash(tmp_path: Path) -> None:
    """Items 1, 2: a non-boolean data sharing, a huge or fractional count, step, timing or
    epoch is a problem tied to its job (amount unknown, reason with file, field and value)."""
    bad = _bad_jobs(tmp_path / "bad")
    export(tmp_path / "bad" / "ftjob-ok", None, two_step_events("ftjob-ok"))
    ok = job_object("ftjob-ok", status="succeeded", finished_at=START + 3800)
    write(tmp_path / "bad" / "ftjob-ok" / "job.json", ok)
    imported = import_openai(tmp_path / "bad")
    reasons: dict[str, list[str]] = {}
    for problem in (*imported.problems, *imported.job_problems):
        reasons.setdefault(str(problem.job_id), []).append(str(problem))
    for job_id, text in bad.items():
        said = " ".join(reasons.get(job_id, []))
        assert text in said and str(tmp_path / "bad" / job_id) in said, (job_id, said)
    assert "too large (more than 9007199254740991)" in " ".join(reasons["ftjob-b3"])
    result = bill(tmp_path / "bad")
    for job_id in bad:
        billed = result.job(job_id)
        assert billed.status == "invalid" and billed.total_amount is None, job_id
    assert result.job("ftjob-ok").total_amount == Decimal("100.00")


def test_absent_or_null_data_sharing_keeps_todays_reading(tmp_path: Path) -> None:
    job = job_object("ftjob-n", status="succeeded", finished_at=START + 3800)
    job["shared_with_openai"] = None
    folder = export(tmp_path / "ftjob-n", job, two_step_events("ftjob-n"))
    imported = import_openai(folder)
    assert not imported.problems and imported.jobs[0].data_sharing is None


def test_huge_counts_through_the_cli_never_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = graded_events(
        "ftjob-h", {"model_graders_token_usage": {"gpt-4o": {"train_prompt_tokens": 2**63}}}
    )
    folder = export(tmp_path / "ftjob-h", graded_job("ftjob-h"), events)
    code, doc = bill_json(monkeypatch, capsys, str(folder))
    assert code == 0 and doc["jobs"][0]["total_amount"] is None  # exit 1 only under --strict
    out = tmp_path / "out.jsonl"
    code, _, err = run_cli(monkeypatch, capsys, "import-openai", str(folder), "-o", str(out))
    assert code == 1 and "9007199254740991" in err and "Traceback" not in err


def test_import_openai_exits_1_when_a_job_amount_is_unknown_and_leaves_its_events_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 3: the written events cannot say "amount unknown", so a bill of them alone
    would look complete and understate the job (the attacker pass billed such an import
    $68.74 as succeeded): its events are left out unless --keep-unknown, and exit 1."""
    folder = export(tmp_path / "ftjob-u", graded_job("ftjob-u"), graded_events("ftjob-u", {}))
    out = tmp_path / "out.jsonl"
    code, _, err = run_cli(monkeypatch, capsys, "import-openai", str(folder), "-o", str(out))
    assert code == 1 and "ftjob-u" not in out.read_text()
    (warning,) = [line for line in err.splitlines() if line.startswith("Warning:")]
    assert "ftjob-u" in warning and "amount unknown" in warning and "left out" in warning
    kept = tmp_path / "kept.jsonl"
    code, _, err = run_cli(
        monkeypatch, capsys, "import-openai", str(folder), "--keep-unknown", "-o", str(kept)
    )
    assert code == 1 and "ftjob-u" in kept.read_text()


def test_a_step_of_zero_or_missing_time_is_incomplete(tmp_path: Path) -> None:
    """Item 4: ``full_iteration: 0`` (or an untimed step at its anchor's time) must not
    shorten the bill: the job's time is incomplete; an untimed step with an earlier
    anchor is still timed from it."""
    cases: dict[str, Any] = {"ftjob-z0": 0, "ftjob-z1": 1e-9, "ftjob-zs": "same", "ftjob-zn": None}
    for job_id, seconds in cases.items():
        events = two_step_events(job_id)
        if seconds is None or seconds == "same":
            del events[3]["data"]["timing"]
            if seconds == "same":
                events[3]["created_at"] = events[2]["created_at"]
        else:
            events[3]["data"]["timing"] = timing(seconds)
        job = job_object(job_id, status="succeeded", finished_at=START + 3800)
        export(tmp_path / job_id, job, events)
    result = bill(tmp_path)
    for job_id in ("ftjob-z0", "ftjob-z1", "ftjob-zs"):
        billed = result.job(job_id)
        assert billed.status == "invalid" and billed.total_amount is None, job_id
        assert "step 2 takes no time" in " ".join(billed.problems)
    assert result.job("ftjob-zn").total_amount == Decimal("100.00")


@pytest.mark.parametrize(
    ("total_steps", "amount"),
    [(4, Decimal("147.00")), (2, Decimal("100.00"))],
)
def test_the_step_in_progress_at_a_cancel_is_billed(
    tmp_path: Path, total_steps: int, amount: Decimal
) -> None:
    """R7: a cancel loses nothing. Steps 1 and 2 of 4 (1800 s each) end; the job is
    cancelled 1700 s later, within step 3: 5300 s, 1.47 h (it billed 1.00 h, the rest as
    idle). After the last step (2 of 2), no step was in progress: nothing is added."""
    events = [
        event("ev-1", START, "Created fine-tuning job: ftjob-c"),
        event("ev-2", START + 100, "Fine-tuning job started"),
        metrics("ev-3", START + 1900, 1, total_steps, timing=timing(1800.0)),
        metrics("ev-4", START + 3700, 2, total_steps, timing=timing(1800.0)),
        event("ev-5", START + 5400, "Fine-tuning job cancelled"),
    ]
    job = job_object("ftjob-c", status="cancelled", finished_at=START + 5400)
    _, billed = only_job(export(tmp_path / "ftjob-c", job, events))
    assert (billed.status, billed.total_amount) == ("cancelled", amount)


def test_a_cancel_while_paused_bills_no_step_in_progress_again(tmp_path: Path) -> None:
    """Paused 100 s into step 2 (billed with the pause, R7), then cancelled while paused:
    the cancel stopped no work, so nothing more is billed (the pause is never billed)."""
    events = [
        event("ev-1", START, "Created fine-tuning job: ftjob-pc"),
        event("ev-2", START + 100, "Fine-tuning job started"),
        metrics("ev-3", START + 1900, 1, 4, timing=timing(1800.0)),
        event("ev-4", START + 2000, "Fine-tuning job paused"),
        event("ev-5", START + 2500, "Fine-tuning job cancelled"),
    ]
    job = job_object("ftjob-pc", status="cancelled", finished_at=START + 2500)
    _, billed = only_job(export(tmp_path / "ftjob-pc", job, events))
    assert billed.status == "cancelled"
    assert [(c.event, c.amount) for c in billed.charges] == [
        ("paused", Decimal("53.00")),
        ("cancelled", Decimal("0.00")),
    ]


def test_snapshots_of_one_status_disagreeing_on_data_sharing_make_the_job_invalid(
    tmp_path: Path,
) -> None:
    """Two succeeded snapshots, one sharing and one not: the bill was 103.50 or 53.00 by
    the order the files were named in. Nothing says which is right: amount unknown."""
    folder = export(tmp_path / "ftjob-d", None, two_step_events("ftjob-d"))
    done = job_object("ftjob-d", status="succeeded", finished_at=START + 3800)
    write(folder / "a.json", done | {"shared_with_openai": True})
    write(folder / "b.json", done | {"shared_with_openai": False})
    for order in ([folder], [folder / "b.json", folder / "a.json", folder / "events.json"]):
        imported = import_openai(order)
        (problem,) = [p for p in imported.job_problems if p.job_id == "ftjob-d"]
        assert "snapshots disagree on data sharing" in problem.reason
