"""Export shapes that billed wrong or silently (tests/fixtures/openai-shapes/).

Each folder is one job as the API (or Azure's) returns it; the bill expected is worked
out by hand from the rules:

- id-in-file-names: ``ftjob-<id>.json`` and ``ftjob-<id>-events.json`` (no "Created
  fine-tuning job" event, as Azure's exports): one job, ``ads``, data sharing, 1.00 h:
  100.00 - 50.00 (R12), not a second job named ``ftjob-<id>-events``;
- error-then-more-steps: an error-level "retrying" event after step 1, then steps 2 and
  3, a checkpoint at step 3 and ``failed`` with ``finished_at``: failed at
  ``finished_at``, 1.50 h kept to the checkpoint (R5), not failed at the error;
- checkpoint-before-its-metrics: a failed job whose step-1 checkpoint is stamped 2 s
  before step 1's metrics event: the step's grader tokens (2.50) are kept with it;
- azure-pending-snapshot: a final snapshot (``succeeded``) beside Azure's create
  response (``pending``): succeeded, 100.00;
- azure-canceled: Azure's spelling ``canceled``: cancelled at ``finished_at``, 1.17 h;
- usage-after-cancel: step 3's metrics event (with its grader usage) logged 5 s after
  the cancel: its tokens are charged with the cancel (R7), 3 x 2.80, nothing accrued;
- error-then-a-moderation-event: no job object; an error-level event, then only a
  moderation-checks event (no work): the error is the failure, 1.00 h kept;
- checkpoint-then-pause: a checkpoint at step 3 just before a pause, step 3's metrics
  (and usage) logged after the resume, then a failure with no new checkpoint: those
  tokens stay in the segment the failure loses (R5), not moved into the pause's charge.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from rftcost.engines import bill
from rftcost.events.openai import import_openai

SHAPES = Path(__file__).parent / "fixtures" / "openai-shapes"


@pytest.mark.parametrize(
    ("shape", "job_id", "status", "compute", "discount", "grader"),
    [
        ("id-in-file-names", "ftjob-0a0b0c0d0e0f4a5b8c9d0e1f2a3b4c5e", "succeeded", "100.00",
         "50.00", "0.00"),
        ("error-then-more-steps", "ftjob-f1", "failed", "150.00", "0.00", "0.00"),
        ("checkpoint-before-its-metrics", "ftjob-g1", "failed", "50.00", "0.00", "2.50"),
        ("azure-pending-snapshot", "ftjob-b1", "succeeded", "100.00", "0.00", "0.00"),
        ("azure-canceled", "ftjob-b4", "cancelled", "117.00", "0.00", "0.00"),
        ("usage-after-cancel", "ftjob-k1", "cancelled", "150.00", "0.00", "8.40"),
        ("error-then-a-moderation-event", "ftjob-g9", "failed", "100.00", "0.00", "0.00"),
        ("checkpoint-then-pause", "ftjob-p1", "failed", "150.00", "0.00", "5.60"),
    ],
)  # fmt: skip
def test_an_export_shape_bills_one_job_as_worked_out_by_hand(
    shape: str, job_id: str, status: str, compute: str, discount: str, grader: str
) -> None:
    result = bill(SHAPES / shape)
    assert list(result.jobs["job_id"]) == [job_id]
    job = result.job(job_id)
    assert job.status == status
    assert (job.compute_amount, job.discount_amount, job.grader_amount) == (
        Decimal(compute),
        Decimal(discount),
        Decimal(grader),
    )
    assert job.accrued_amount == Decimal("0.00")
    assert result.totals().invalid_jobs == 0


def test_a_job_id_in_a_file_name_is_the_known_job_not_the_whole_name() -> None:
    imported = import_openai([SHAPES / "id-in-file-names"])
    assert set(imported.events["job_id"]) == {"ftjob-0a0b0c0d0e0f4a5b8c9d0e1f2a3b4c5e"}


def test_names_without_a_job_object_keep_their_whole_ids(tmp_path: Path) -> None:
    """No job object to match: an id is what the name holds, ``-`` and ``_`` included
    (two folders ``ftjob-team_run-7`` and ``-8`` are two jobs, not one ``ftjob-team``)."""
    events = next((SHAPES / "id-in-file-names").glob("*-events.json")).read_bytes()
    for run in ("7", "8"):
        folder = tmp_path / f"ftjob-team_run-{run}"
        folder.mkdir()
        (folder / "events.json").write_bytes(events)
    imported = import_openai([tmp_path])
    assert set(imported.events["job_id"]) == {"ftjob-team_run-7", "ftjob-team_run-8"}


def test_an_error_the_job_went_on_after_is_not_its_failure() -> None:
    imported = import_openai([SHAPES / "error-then-more-steps"])
    failed = imported.events[imported.events["event"] == "failed"]
    assert [ts.isoformat() for ts in failed["ts"]] == ["2025-06-01T11:45:00+00:00"]
    assert any("from the job object (status and finished_at)" in n for n in imported.notes)


def test_usage_logged_after_the_cancel_is_noted_and_charged_with_it() -> None:
    imported = import_openai([SHAPES / "usage-after-cancel"])
    usage = imported.events[imported.events["event"] == "grader_usage"]
    cancelled = imported.events.loc[imported.events["event"] == "cancelled", "ts"].iloc[0]
    assert (usage["ts"] <= cancelled).all()
    assert any("logged after the job cancelled" in note for note in imported.notes)


def test_a_status_that_is_not_an_end_is_named_in_the_reason(tmp_path: Path) -> None:
    """A job object with ``finished_at`` and a status the importer does not know as an end:
    invalid, and the reason names the status (it did not say "no status")."""
    source = SHAPES / "azure-canceled"
    for path in source.iterdir():
        text = path.read_text(encoding="utf-8").replace('"canceled"', '"halted"')
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    result = bill(tmp_path)
    problems = " ".join(result.problems["problem"].astype(str))
    assert "its status 'halted' is not an end" in problems
