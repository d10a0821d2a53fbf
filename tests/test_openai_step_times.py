"""What an export's dates may not decide: a checkpoint keeps the work up to its step,
whatever its date says (R5); a step cannot start before its job was created or queued
(R2); a job id with a dot is one job. Each export is written here, small, by hand."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rftcost.engines import bill
from rftcost.events.openai import import_openai

CREATED = 1748854800  # 2025-06-02T09:00:00Z
STARTED = CREATED + 600
GRADER = {"type": "string_check", "name": "g", "input": "x", "reference": "y", "operation": "eq"}


def job(job_id: str, status: str, finished_at: int, **fields: Any) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job",
        "id": job_id,
        "model": "o4-mini-2025-04-16",
        "created_at": CREATED,
        "finished_at": finished_at,
        "status": status,
        "method": {"type": "reinforcement", "reinforcement": {"grader": GRADER}},
        "shared_with_openai": False,
        **fields,
    }


def message(event_id: str, created_at: int, text: str, level: str = "info") -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.event",
        "id": event_id,
        "created_at": created_at,
        "level": level,
        "message": text,
        "type": "message",
        "data": {},
    }


def step(event_id: str, created_at: int, number: int, total: int, seconds: int) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.event",
        "id": event_id,
        "created_at": created_at,
        "level": "info",
        "message": f"Step {number}/{total}",
        "type": "metrics",
        "data": {
            "step": number,
            "total_steps": total,
            "timing": {"step": {"full_iteration": seconds}},
        },
    }


def export(
    folder: Path, the_job: dict[str, Any], events: list[Any], checkpoints: list[Any]
) -> Path:
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps(the_job), encoding="utf-8")
    lines = "".join(json.dumps(e) + "\n" for e in events)
    (folder / "events.jsonl").write_text(lines, encoding="utf-8")
    if checkpoints:
        listed = "".join(json.dumps(c) + "\n" for c in checkpoints)
        (folder / "checkpoints.jsonl").write_text(listed, encoding="utf-8")
    return folder


def one_step_run(
    created: str, succeeded: str = "The job has successfully completed"
) -> list[dict[str, Any]]:
    """Created, started, one 1800 s step, succeeded: 0.50 h."""
    return [
        message("e1", CREATED, created),
        message("e2", STARTED, "Fine-tuning job started"),
        step("s1", STARTED + 1800, 1, 1, 1800),
        message("e4", STARTED + 1900, succeeded),
    ]


def failed_after_three_steps(folder: Path, checkpoint_dated: int | None) -> Path:
    """Three 1800 s steps from 09:10, a checkpoint of step 2 (dated as given), a failure
    at 11:20 before step 4: steps 1-2 are kept (1.00 h), step 3 is lost (R5)."""
    events = [
        message("e1", CREATED, "Created fine-tuning job: ftjob-c1"),
        message("e2", STARTED, "Fine-tuning job started"),
        *(step(f"s{n}", STARTED + 1800 * n, n, 4, 1800) for n in (1, 2, 3)),
        message("e6", CREATED + 7200, "Fine-tuning job failed", level="error"),
    ]
    checkpoints = (
        []
        if checkpoint_dated is None
        else [
            {
                "object": "fine_tuning.job.checkpoint",
                "id": "ftckpt-1",
                "created_at": checkpoint_dated,
                "fine_tuning_job_id": "ftjob-c1",
                "step_number": 2,
            }
        ]
    )
    return export(
        folder / "ftjob-c1", job("ftjob-c1", "failed", CREATED + 7200), events, checkpoints
    )


@pytest.mark.parametrize(
    "dated",
    [
        STARTED + 3600,  # at step 2's metrics event
        STARTED + 3605,  # a few seconds after it
        STARTED + 6000,  # after step 3 ended, before the failure
        CREATED + 7300,  # after the failure
    ],
)
def test_a_checkpoint_keeps_the_work_up_to_its_step_whatever_its_date(
    tmp_path: Path, dated: int
) -> None:
    result = bill(failed_after_three_steps(tmp_path, dated))
    charged = result.job("ftjob-c1")
    assert charged.status == "failed"
    assert (charged.billed_hours, charged.compute_amount) == (Decimal("1.00"), Decimal("100.00"))


def test_a_checkpoint_dated_after_a_later_step_or_the_end_is_said(tmp_path: Path) -> None:
    late = import_openai(failed_after_three_steps(tmp_path / "a", CREATED + 7300))
    assert any("ftckpt-1 of step 2" in n and "after the job ended" in n for n in late.notes)
    later = import_openai(failed_after_three_steps(tmp_path / "b", STARTED + 6000))
    assert any("after the metrics event of a later step" in n for n in later.notes)
    close = import_openai(failed_after_three_steps(tmp_path / "c", STARTED + 3605))
    assert not any("ftckpt-1" in n for n in close.notes)


def test_a_checkpoint_announced_past_the_last_metrics_step_makes_the_job_unknown(
    tmp_path: Path,
) -> None:
    """Step 3's time is not in the export: the amount is unknown, not the two steps'."""
    events = [
        message("e1", CREATED, "Created fine-tuning job: ftjob-c2"),
        message("e2", STARTED, "Fine-tuning job started"),
        *(step(f"s{n}", STARTED + 1800 * n, n, 4, 1800) for n in (1, 2)),
        message("e5", CREATED + 7200, "Checkpoint created at step 3"),
        message("e6", CREATED + 7200, "Fine-tuning job failed", level="error"),
    ]
    folder = export(tmp_path / "ftjob-c2", job("ftjob-c2", "failed", CREATED + 7200), events, [])
    result = bill(folder)
    assert result.totals().invalid_jobs == 1
    assert result.job("ftjob-c2").total_amount is None
    imported = import_openai(folder)
    assert any("no metrics event of that step" in n for n in imported.notes)


def test_a_step_longer_than_the_job_has_been_queued_is_timed_from_the_queue(
    tmp_path: Path,
) -> None:
    """A 5000 s step ending 1500 s after the job was queued (no start message): no
    time before the queue is billed (R2), 1500 s (0.42 h) at most."""
    queued = CREATED + 300
    events = [
        message("e1", CREATED, "Created fine-tuning job: ftjob-p1"),
        message("e2", queued, "Files validated, moving job to queued state"),
        step("s1", queued + 1500, 1, 1, 5000),
        message("e4", queued + 1600, "The job has successfully completed"),
    ]
    folder = export(tmp_path / "ftjob-p1", job("ftjob-p1", "succeeded", queued + 1600), events, [])
    charged = bill(folder).job("ftjob-p1")
    assert (charged.billed_hours, charged.compute_amount) == (Decimal("0.42"), Decimal("42.00"))
    assert any("created, validated or queued" in n for n in import_openai(folder).notes)


def test_a_step_is_not_timed_from_before_its_job_was_created(tmp_path: Path) -> None:
    """No message at all but the step: the job object's creation is the bound."""
    events = [step("s1", CREATED + 1800, 1, 1, 5000)]
    the_job = job("ftjob-p2", "succeeded", CREATED + 1800)
    charged = bill(export(tmp_path / "ftjob-p2", the_job, events, [])).job("ftjob-p2")
    assert (charged.billed_hours, charged.compute_amount) == (Decimal("0.50"), Decimal("50.00"))


def test_a_job_id_with_a_dot_is_one_job_with_its_team_and_discount(tmp_path: Path) -> None:
    events = one_step_run(
        "Created fine-tuning job: ftjob-a.b", "The job has successfully completed."
    )
    the_job = job(
        "ftjob-a.b",
        "succeeded",
        STARTED + 1900,
        shared_with_openai=True,
        metadata={"team": "search"},
    )
    result = bill(export(tmp_path / "ftjob-a.b", the_job, events, []))
    assert list(result.jobs["job_id"]) == ["ftjob-a.b"]
    charged = result.job("ftjob-a.b")
    assert (charged.team, charged.compute_amount, charged.discount_amount) == (
        "search",
        Decimal("50.00"),
        Decimal("25.00"),
    )


def test_a_full_stop_after_an_id_in_a_message_is_not_part_of_it(tmp_path: Path) -> None:
    events = one_step_run("Created fine-tuning job: ftjob-c3.")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), "utf-8")
    assert set(import_openai(folder).events["job_id"]) == {"ftjob-c3"}


def test_azure_queue_and_start_messages_time_an_untimed_step(tmp_path: Path) -> None:
    """Azure's REST reference shows "Job enqueued. Waiting for jobs ahead to complete."
    then "Job started.": the queue is not billed (R2) and a step without timing runs from
    the start (it was invalid: no start message known)."""
    untimed = step("s1", STARTED + 1800, 1, 1, 0)
    del untimed["data"]["timing"]
    events = [
        message("e1", CREATED + 60, "Job enqueued. Waiting for jobs ahead to complete."),
        message("e2", STARTED, "Job started."),
        untimed,
        message("e4", STARTED + 1900, "Job succeeded."),
    ]
    folder = export(tmp_path / "ftjob-z1", job("ftjob-z1", "succeeded", STARTED + 1900), events, [])
    imported = import_openai(folder)
    assert imported.unknown_messages == ()
    result = bill(folder)
    charged = result.job("ftjob-z1")
    assert (charged.billed_hours, charged.compute_amount) == (Decimal("0.50"), Decimal("50.00"))
    assert charged.excluded_seconds["queued"] == 540.0


def test_a_step_logged_after_the_success_is_charged_not_accrued(tmp_path: Path) -> None:
    """Step 2 of 2 is logged 600 s after "The job has successfully completed": the job
    ran both steps (1.00 h), so the success is taken at step 2's end, with a note; it
    left 600 s as accrued work of an ended job, never charged ($83 + $17 accrued)."""
    events = [
        message("e1", CREATED, "Created fine-tuning job: ftjob-t1"),
        message("e2", STARTED, "Fine-tuning job started"),
        step("s1", STARTED + 1800, 1, 2, 1800),
        message("e3", STARTED + 3000, "The job has successfully completed"),
        step("s2", STARTED + 3600, 2, 2, 1800),
    ]
    folder = export(tmp_path / "ftjob-t1", job("ftjob-t1", "succeeded", STARTED + 3000), events, [])
    charged = bill(folder).job("ftjob-t1")
    assert (charged.status, charged.compute_amount, charged.accrued_amount) == (
        "succeeded",
        Decimal("100.00"),
        Decimal("0.00"),
    )
    assert any("a step is logged after its success" in n for n in import_openai(folder).notes)


def test_a_dotted_id_is_one_job_across_pages_without_a_job_object(tmp_path: Path) -> None:
    """The page with "Created fine-tuning job: ftjob-a.b" names the job; the other page
    is told by its folder's name, ``ftjob-a.b`` too (it was cut to ``ftjob-a``: two jobs)."""
    folder = tmp_path / "ftjob-a.b"
    folder.mkdir()
    first = [
        message("e1", CREATED, "Created fine-tuning job: ftjob-a.b"),
        message("e2", STARTED, "Fine-tuning job started"),
    ]
    later = [
        step("s1", STARTED + 1800, 1, 2, 1800),
        step("s2", STARTED + 3600, 2, 2, 1800),
        message("e3", STARTED + 3700, "The job has successfully completed"),
    ]
    for name, events, more in (("events-page-1", later, True), ("events-page-2", first, False)):
        page = {"object": "list", "data": events[::-1], "has_more": more}
        (folder / f"{name}.json").write_text(json.dumps(page), encoding="utf-8")
    result = bill(tmp_path)
    assert list(result.jobs["job_id"]) == ["ftjob-a.b"]
    assert result.job("ftjob-a.b").compute_amount == Decimal("100.00")
