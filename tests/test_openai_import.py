"""Importing OpenAI fine-tuning exports (event-log.md, second part) and billing them.

The fixtures in tests/fixtures/openai/ are modelled on the API's documented shapes:

- succeeded/: a job, its events as two list pages (newest first), its checkpoints;
- ftjob-failed1/: the layout `rftcost fetch` writes (job.json, events.json,
  checkpoints.json), a failure after a checkpoint;
- paused/: a paused and resumed job whose events are JSON Lines;
- cancelled/: a cancelled job with data sharing, a multi grader, a step without
  timing, events as a bare JSON array and an empty checkpoint list.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rftcost.billing import Bill
from rftcost.engines import bill
from rftcost.errors import ExportError, UnreadableFileError
from rftcost.events.openai import (
    MESSAGE_RULES,
    STEP_PHASE,
    events_to_jsonl,
    import_openai,
    looks_like_openai_export,
)
from rftcost.events.readers import read_events
from rftcost.events.schema import EVENT_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures" / "openai"

T_SUCCEEDED = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
T_FAILED = datetime(2025, 6, 12, 9, 0, tzinfo=UTC)
T_PAUSED = datetime(2025, 6, 15, 8, 0, tzinfo=UTC)
T_CANCELLED = datetime(2025, 6, 20, 12, 0, tzinfo=UTC)


def at(base: datetime, seconds: float) -> pd.Timestamp:
    return pd.Timestamp(base + timedelta(seconds=seconds))


def of(events: pd.DataFrame, event: str) -> pd.DataFrame:
    return events[events["event"] == event].reset_index(drop=True)


def intervals(events: pd.DataFrame, phase: str) -> list[tuple[pd.Timestamp, pd.Timestamp | None]]:
    """(start, end) of each interval of ``phase``, pairing starts and ends in time order."""
    starts = list(of(events, "phase_start").query("phase == @phase")["ts"])
    ends = list(of(events, "phase_end").query("phase == @phase")["ts"])
    return [(s, ends[i] if i < len(ends) else None) for i, s in enumerate(starts)]


# --- each fixture gives the expected canonical events ----------------------------------


def test_succeeded_job_becomes_phases_steps_usage_and_checkpoints() -> None:
    result = import_openai([FIXTURES / "succeeded"])
    events = result.events
    assert result.problems == () and result.unknown_messages == ()
    assert result.notes == ()
    assert set(events["job_id"]) == {"ftjob-succeeded1"}

    created = of(events, "job_created").iloc[0]
    assert created["ts"] == at(T_SUCCEEDED, 0)
    assert (created["team"], created["project"], created["model"]) == (
        "search",
        "ranker",
        "o4-mini-2025-04-16",
    )
    assert not created["data_sharing"]
    assert (created["grader_type"], created["grader_model"]) == (
        "score_model",
        "gpt-4.1-2025-04-14",
    )
    assert (created["batch_size"], created["n_epochs"], created["eval_interval"]) == (4, 1, 2)
    assert created["compute_multiplier"] == 1.0 and created["reasoning_effort"] == "medium"

    # Status messages → non-billable phases, each ended by the next state change or step.
    assert intervals(events, "validating_files") == [(at(T_SUCCEEDED, 0), at(T_SUCCEEDED, 600))]
    assert intervals(events, "queued") == [(at(T_SUCCEEDED, 600), at(T_SUCCEEDED, 1200))]
    assert intervals(events, "setup") == [(at(T_SUCCEEDED, 1200), at(T_SUCCEEDED, 1800))]
    assert intervals(events, "safety_eval") == [(at(T_SUCCEEDED, 5440), at(T_SUCCEEDED, 6040))]
    # Metrics → one billable interval per step, full_iteration (1206 s) long, ending at the event.
    assert intervals(events, STEP_PHASE) == [
        (at(T_SUCCEEDED, 1800), at(T_SUCCEEDED, 3006)),
        (at(T_SUCCEEDED, 3006), at(T_SUCCEEDED, 4212)),
        (at(T_SUCCEEDED, 4212), at(T_SUCCEEDED, 5418)),
    ]
    steps = of(events, "step_completed")
    assert list(steps["step"]) == [1, 2, 3]
    assert list(steps["ts"]) == [at(T_SUCCEEDED, s) for s in (3006, 4212, 5418)]

    usage = of(events, "grader_usage")
    assert set(usage["grader_model"]) == {"gpt-4.1-2025-04-14"}
    # train + eval: prompt tokens (which include cached ones), cached, completion.
    assert list(usage["input_tokens"]) == [300_000, 400_000, 300_000]
    assert list(usage["cached_input_tokens"]) == [50_000, 100_000, 50_000]
    assert list(usage["output_tokens"]) == [30_000, 40_000, 30_000]

    # A checkpoint dated after its step's metrics event (4215, 5420) is placed at that
    # event (4212, 5418): it keeps its step's work, none of the next step's (R5).
    checkpoints = of(events, "checkpoint_saved")
    assert list(zip(checkpoints["step"], checkpoints["ts"], strict=True)) == [
        (2, at(T_SUCCEEDED, 4212)),
        (3, at(T_SUCCEEDED, 5418)),
    ]
    final = of(events, "succeeded")
    assert list(final["ts"]) == [at(T_SUCCEEDED, 6050)]
    assert list(final["message"]) == ["The job has successfully completed"]
    assert len(of(events, "failed")) == len(of(events, "paused")) == 0


def test_failed_job_keeps_its_checkpoint_and_its_failure() -> None:
    result = import_openai([FIXTURES / "ftjob-failed1"])
    events = result.events
    assert result.problems == () and result.unknown_messages == ()
    assert list(of(events, "failed")["ts"]) == [at(T_FAILED, 7000)]
    assert list(of(events, "failed")["message"]) == ["The job failed due to an internal error"]
    checkpoints = of(events, "checkpoint_saved")
    assert list(zip(checkpoints["step"], checkpoints["ts"], strict=True)) == [
        (2, at(T_FAILED, 4800))
    ]
    assert list(of(events, "step_completed")["step"]) == [1, 2, 3]
    usage = of(events, "grader_usage")
    assert set(usage["grader_model"]) == {"o3-2025-04-16"}
    assert list(usage["cached_input_tokens"]) == [0, 100_000, 0]
    created = of(events, "job_created").iloc[0]
    # "auto" hyperparameters are not settings: they stay empty.
    assert pd.isna(created["batch_size"]) and pd.isna(created["compute_multiplier"])
    assert created["reasoning_effort"] == "low"
    assert [job.status for job in result.jobs] == ["failed"]
    assert result.jobs[0].finished_at == T_FAILED + timedelta(seconds=7000)


def test_paused_job_from_json_lines() -> None:
    result = import_openai([FIXTURES / "paused"])
    events = result.events
    assert result.problems == () and result.unknown_messages == ()
    assert list(of(events, "paused")["ts"]) == [at(T_PAUSED, 4900)]
    assert list(of(events, "resumed")["ts"]) == [at(T_PAUSED, 8500)]
    assert list(of(events, "succeeded")["ts"]) == [at(T_PAUSED, 12500)]
    assert intervals(events, "paused") == [(at(T_PAUSED, 4900), at(T_PAUSED, 8500))]
    # Setup after the start, and again after the resume until the next step starts.
    assert intervals(events, "setup") == [
        (at(T_PAUSED, 600), at(T_PAUSED, 1200)),
        (at(T_PAUSED, 8500), at(T_PAUSED, 8800)),
    ]
    assert list(of(events, "step_completed")["step"]) == [1, 2, 3, 4]
    assert intervals(events, STEP_PHASE)[-1] == (at(T_PAUSED, 10600), at(T_PAUSED, 12418))
    assert of(events, "grader_usage").empty  # a python grader uses no model tokens
    created = of(events, "job_created").iloc[0]
    assert created["team"] == "ads" and pd.isna(created["project"])
    assert created["grader_type"] == "python" and pd.isna(created["grader_model"])


def test_cancelled_job_with_a_step_timed_from_event_times() -> None:
    result = import_openai([FIXTURES / "cancelled"])
    events = result.events
    assert result.problems == () and result.unknown_messages == ()
    assert list(of(events, "cancelled")["ts"]) == [at(T_CANCELLED, 6300)]
    # Step 1 carries full_iteration (2700 s); step 2 none: it runs from step 1's event.
    # Step 3 was in progress when the job was cancelled, 300 s later: R7 bills it.
    assert intervals(events, STEP_PHASE) == [
        (at(T_CANCELLED, 600), at(T_CANCELLED, 3300)),
        (at(T_CANCELLED, 3300), at(T_CANCELLED, 6000)),
        (at(T_CANCELLED, 6000), at(T_CANCELLED, 6300)),
    ]
    assert any("without data.timing.step.full_iteration" in note for note in result.notes)
    assert of(events, "checkpoint_saved").empty  # an empty checkpoint list is an export too
    created = of(events, "job_created").iloc[0]
    assert bool(created["data_sharing"])
    # A multi grader whose model graders use one model names that model.
    assert (created["grader_type"], created["grader_model"]) == ("multi", "gpt-4.1-mini-2025-04-14")


def test_events_have_exactly_the_canonical_columns_and_dtypes() -> None:
    events = import_openai([FIXTURES]).events
    assert tuple(events.columns) == EVENT_COLUMNS
    assert str(events["ts"].dtype) == "datetime64[ns, UTC]"
    for column in ("step", "input_tokens", "cached_input_tokens", "output_tokens", "batch_size"):
        assert str(events[column].dtype) == "Int64"
    assert str(events["data_sharing"].dtype) == "boolean"
    for column in ("job_id", "event", "event_id", "phase", "team", "grader_model", "message"):
        assert isinstance(events[column].dtype, pd.StringDtype)
    assert events["event_id"].notna().all() and events["event_id"].is_unique
    assert events.sort_values(["job_id", "ts"], kind="stable")["ts"].equals(events["ts"])


def test_whole_fixture_folder_gives_four_jobs_and_a_report() -> None:
    result = import_openai(FIXTURES)
    assert result.counts() == {
        "files": 13,
        "jobs": 4,
        "objects_read": 49,
        "duplicates": 0,
        "events": 92,
        "unknown_messages": 0,
        "problems": 0,
        "job_problems": 0,
    }
    assert [job.job_id for job in result.jobs] == [
        "ftjob-cancelled1",
        "ftjob-failed1",
        "ftjob-paused1",
        "ftjob-succeeded1",
    ]


# --- de-duplication and order ------------------------------------------------------------


def test_importing_twice_or_overlapping_exports_deduplicates(tmp_path: Path) -> None:
    once = import_openai([FIXTURES / "succeeded"]).events
    twice = import_openai([FIXTURES / "succeeded", FIXTURES / "succeeded"])
    assert twice.duplicates == twice.objects_read // 2
    pd.testing.assert_frame_equal(twice.events, once)

    # An overlapping export: page 1 again, and both pages merged into one list.
    pages = [
        json.loads((FIXTURES / "succeeded" / f"events-page-{n}.json").read_text()) for n in (1, 2)
    ]
    merged = {"object": "list", "data": pages[0]["data"] + pages[1]["data"], "has_more": False}
    other = tmp_path / "ftjob-succeeded1"
    other.mkdir()
    (other / "all-events.json").write_text(json.dumps(merged))
    overlapping = import_openai([FIXTURES / "succeeded", other])
    assert overlapping.duplicates == len(merged["data"])
    pd.testing.assert_frame_equal(overlapping.events, once)


def test_a_bill_of_exports_accounts_for_their_objects_and_duplicates(tmp_path: Path) -> None:
    """The records a bill counts are the events made from an export: its API objects,
    and the duplicates among them, are said in a note (they were counted nowhere)."""
    copy = tmp_path / "succeeded"
    shutil.copytree(FIXTURES / "succeeded", copy)
    shutil.copy(copy / "events-page-1.json", copy / "events-page-1-again.json")
    imported = import_openai([copy])
    result = bill(copy)
    assert imported.duplicates > 0
    (said,) = [n for n in result.log.notes if n.startswith("OpenAI export counts: ")]
    assert said.startswith(
        f"OpenAI export counts: {imported.objects_read} API objects read, "
        f"{imported.duplicates} of them repeating one read already"
    )
    assert said.endswith(
        f"the records counted are the {len(imported.events)} events made from them"
    )


def test_json_nested_too_deep_is_a_rejected_record_of_its_job_not_a_crash(
    tmp_path: Path,
) -> None:
    """50,000 nested arrays in a job object: "RecursionError" ended every command that
    read the export, naming no file. It is now that file's problem: its job is invalid."""
    copy = tmp_path / "succeeded"
    shutil.copytree(FIXTURES / "succeeded", copy)
    job = copy / "job.json"
    deep = "[" * 50_000 + "]" * 50_000
    job.write_text(job.read_text().replace('"metadata": {', f'"metadata": {{"deep": {deep}, ', 1))
    result = bill(copy)
    assert result.totals().invalid_jobs == 1
    assert any("JSON nested too deep to read" in p for p in result.problems["problem"])


def test_event_ids_come_from_openai_ids() -> None:
    events = import_openai([FIXTURES / "ftjob-failed1"]).events
    ids = set(events["event_id"])
    assert "openai:ftevent-b08:failed" in ids
    assert "openai:ftevent-b05:step_completed" in ids
    assert "openai:ftevent-b05:grader_usage:o3-2025-04-16" in ids
    assert "openai:ftckpt-b2:checkpoint_saved" in ids
    assert any(i.startswith("openai:ftjob-failed1:created:") for i in ids)


def test_record_order_in_the_export_does_not_matter(tmp_path: Path) -> None:
    folder = tmp_path / "paused"
    shutil.copytree(FIXTURES / "paused", folder)
    lines = (folder / "events.jsonl").read_text().splitlines()
    (folder / "events.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    pd.testing.assert_frame_equal(
        import_openai([folder]).events, import_openai([FIXTURES / "paused"]).events
    )


# --- what is not understood is reported, not guessed ----------------------------------------


def event(event_id: str, created_at: int, message: str, **fields: Any) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.event",
        "id": event_id,
        "created_at": created_at,
        "level": fields.pop("level", "info"),
        "message": message,
        "type": fields.pop("type", "message"),
        "data": fields.pop("data", {}),
    }


def page(*items: Any) -> dict[str, Any]:
    return {"object": "list", "data": list(items), "has_more": False}


def write(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return path


START = 1_750_000_000


def test_unknown_messages_are_listed_and_emit_nothing(tmp_path: Path) -> None:
    job = json.loads((FIXTURES / "ftjob-failed1" / "job.json").read_text())
    folder = tmp_path / "ftjob-failed1"
    write(folder / "job.json", {**job, "status": "failed"})
    write(
        folder / "events.json",
        page(
            event("ftevent-3", START + 20, "Error: grader sandbox crashed", level="error"),
            event("ftevent-2", START + 10, "Something the table does not know yet"),
            event("ftevent-1", START, "Validating training file: file-x"),
        ),
    )
    result = import_openai([folder])
    assert [(m.event_id, m.message, m.level) for m in result.unknown_messages] == [
        ("ftevent-2", "Something the table does not know yet", "info"),
        ("ftevent-3", "Error: grader sandbox crashed", "error"),
    ]
    assert result.unknown_messages[0].job_id == "ftjob-failed1"
    assert result.unknown_messages[0].created_at == datetime.fromtimestamp(START + 10, UTC)
    # Kind 11: an error-level event of a job whose object says failed is state evidence,
    # whatever its wording; the note names the evidence used.
    assert list(of(result.events, "failed")["event_id"]) == ["openai:ftevent-3:failed"]
    assert any("from its error-level event ftevent-3" in note for note in result.notes)


def test_a_job_paused_then_cancelled_stopped_working_at_the_pause() -> None:
    # Its last step ends at the pause; the cancel an hour later is no gap of missing steps.
    result = bill([FIXTURES.parent / "openai-paused-then-cancelled"])
    job = result.job("ftjob-rw02")
    assert (job.status, job.total_amount, job.problems) == ("cancelled", Decimal("100.00"), ())


def test_a_new_message_is_one_row_in_the_table() -> None:
    assert all(rule.pattern for rule in MESSAGE_RULES)
    events = {rule.event for rule in MESSAGE_RULES if rule.event}
    assert events == {"succeeded", "failed", "cancelled", "paused", "resumed"}


def test_malformed_objects_are_reported_with_file_position_and_reason(tmp_path: Path) -> None:
    folder = tmp_path / "ftjob-bad1"
    good = event("ftevent-ok", START, "Fine-tuning job started")
    events_file = write(
        folder / "events.json",
        page(
            good,
            {**event("", START, "no id")},
            {**event("ftevent-t", START, "x"), "created_at": "yesterday"},
            event("ftevent-m", START + 5, "Step 1/2", type="metrics", data={"total_steps": 2}),
            event(
                "ftevent-n",
                START + 6,
                "Step 2/2",
                type="metrics",
                data={
                    "step": 2,
                    "model_graders_token_usage": {"gpt-4.1": {"train_prompt_tokens": -5}},
                },
            ),
            {"object": "fine_tuning.job.mystery", "id": "x"},
            "not an object",
        ),
    )
    broken = folder / "broken.json"
    broken.write_text('{"object": "fine_tuning.job.event", "id": ')
    lines = folder / "more.jsonl"
    lines.write_text(
        json.dumps(event("ftevent-l", START + 9, "Fine-tuning job started")) + "\n{oops\n"
    )

    result = import_openai([folder])
    found = {(Path(p.file).name, p.position): p.reason for p in result.problems}
    assert found[("events.json", "data[1]")] == "fine_tuning.job.event without an id: missing 'id'"
    assert "'created_at' is not epoch seconds" in found[("events.json", "data[2]")]
    assert "without 'data.step'" in found[("events.json", "data[3]")]
    assert "train_prompt_tokens is not a whole number ≥ 0" in found[("events.json", "data[4]")]
    assert "unknown object 'fine_tuning.job.mystery'" in found[("events.json", "data[5]")]
    assert "not a JSON object" in found[("events.json", "data[6]")]
    assert found[("broken.json", "file")].startswith("not JSON:")
    assert found[("more.jsonl", "line 2")].startswith("not JSON:")
    assert all(str(events_file.parent) in p.file for p in result.problems)
    # The good events are still imported, for the job the folder names.
    assert set(result.events["job_id"]) == {"ftjob-bad1"}
    assert set(result.events["event_id"]) == {
        "openai:ftevent-ok:phase_start:setup",
        "openai:ftevent-ok:phase_end:setup",  # ended by the next state change
        "openai:ftevent-l:phase_start:setup",
    }
    assert str(result.problems[0]).count(":") >= 2  # "file: position: reason" on one line


def test_a_lone_surrogate_escape_is_a_problem_of_its_object(tmp_path: Path) -> None:
    folder = tmp_path / "ftjob-sur1"
    write(
        folder / "events.json",
        page(
            event("ftevent-ok", START, "Fine-tuning job started"),
            event("ftevent-bad", START + 5, "LONE job started"),
            event("ftevent-pair", START + 6, "PAIR"),
        ),
    )
    text = (folder / "events.json").read_text()
    (folder / "events.json").write_text(
        text.replace("LONE", "\\udc80").replace("PAIR", "\\ud83d\\ude00")
    )
    result = import_openai([folder])
    assert [(p.position, p.reason) for p in result.problems] == [
        (
            "data[1]",
            "fine_tuning.job.event 'ftevent-bad': not valid text: a lone surrogate escape \\udc80",
        )
    ]
    assert not any("\udc80" in e for e in result.events["event_id"])  # nothing unwritable kept
    assert any(e.startswith("openai:ftevent-ok") for e in result.events["event_id"])
    billed = bill(folder)
    assert billed.job("ftjob-sur1").status == "invalid"


def test_events_of_a_job_whose_id_holds_a_lone_surrogate_escape_make_it_invalid(
    tmp_path: Path,
) -> None:
    """The events name no job: they belong to the job.json beside them, whose id (a lone
    surrogate escape) is shown with U+FFFD, as the rejected job object is. Not a raw
    UnicodeEncodeError from a column of job ids."""
    folder = tmp_path / "export"  # no ftjob- id in the names: the job.json tells
    shutil.copytree(FIXTURES / "ftjob-failed1", folder)
    for name in ("job.json", "events.json", "checkpoints.json"):
        text = (folder / name).read_text()
        (folder / name).write_text(text.replace("ftjob-failed1", "ftjob-failed1\\udc80"))
    shown = "ftjob-failed1\ufffd"
    for given in ([folder], [folder / "events.json"]):
        result = import_openai(given)
        assert set(result.events["job_id"]) <= {shown}
        assert shown in {p.job_id for p in result.problems}
    billed = bill(folder)
    assert billed.job_ids() == [shown]
    assert billed.job(shown).status == "invalid"
    json.dumps(billed.to_dict(), ensure_ascii=False).encode()  # writable as UTF-8


def test_a_json_lines_export_line_that_is_not_utf8_is_a_problem_of_that_line(
    tmp_path: Path,
) -> None:
    """One line of an events.jsonl with a byte that is not UTF-8: that line is lost (its
    job invalid), not every event of the file, and the problem names its line."""
    folder = tmp_path / "ftjob-paused1"
    shutil.copytree(FIXTURES / "paused", folder)
    whole = import_openai([folder])
    lines = (folder / "events.jsonl").read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"message": "', b'"message": "\xff', 1)
    (folder / "events.jsonl").write_bytes(b"\n".join(lines))
    result = import_openai([folder])
    assert [(p.position, p.reason, p.line, p.job_id) for p in result.problems] == [
        ("line 2", "not UTF-8 text", 2, "ftjob-paused1")
    ]
    assert len(result.events) > len(whole.events) // 2  # the other lines are read
    assert bill(folder).job("ftjob-paused1").status == "invalid"
    page = folder / "events.json"  # a JSON document is one value: the file, with its line
    page.write_bytes(b'{"object": "list",\n "data": [], "x": "\xff"}')
    problem = next(p for p in import_openai([folder]).problems if p.file == str(page))
    assert (problem.position, problem.line) == ("file", 2)
    assert problem.reason.startswith("not UTF-8 text")


def test_an_export_file_whose_name_is_not_utf8_is_one_error_naming_it(tmp_path: Path) -> None:
    """Each object names its file: a name with a byte that is not UTF-8 (``\\udcff``) is
    refused naming it, not a UnicodeEncodeError from import-openai's file column."""
    folder = tmp_path / "ftjob-paused1"
    shutil.copytree(FIXTURES / "paused", folder)
    try:
        (folder / "events.jsonl").rename(folder / os.fsdecode(b"events\xff.jsonl"))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system holds UTF-8 names only")
    with pytest.raises(UnreadableFileError, match="a file name that is not UTF-8 text") as error:
        import_openai([folder])
    assert error.value.path == str(folder / "events\ufffd.jsonl")


def test_cached_tokens_above_prompt_tokens_are_a_problem(tmp_path: Path) -> None:
    usage = {"gpt-4.1": {"train_prompt_tokens": 10, "train_cached_tokens": 20}}
    write(
        tmp_path / "ftjob-c1" / "events.json",
        page(
            event(
                "ftevent-u",
                START,
                "Step 1/1",
                type="metrics",
                data={"step": 1, "model_graders_token_usage": usage},
            )
        ),
    )
    result = import_openai([tmp_path])
    assert len(result.problems) == 1
    assert "more cached tokens (20) than prompt tokens (10)" in result.problems[0].reason
    # The problem rejects the record (its job invalid, never undercharged); no event is
    # made of it, which would be a second rejected record of the same object.
    assert of(result.events, "grader_usage").empty


@pytest.mark.parametrize(
    ("data", "unknown"),
    [
        # A null prompt count beside a million completion tokens: unknown, not 0 tokens.
        ({"model_graders_token_usage": {"gpt-4.1": {
            "train_prompt_tokens": None, "train_completion_tokens": 1_000_000}}}, True),
        ({"usage": {"graders": [{"model": "gpt-4.1", "train_prompt_tokens_count": None,
                                 "train_completion_tokens_count": 1_000_000}]}}, True),
        # A step without validation: its eval counts null, none used.
        ({"model_graders_token_usage": {"gpt-4.1": {
            "train_prompt_tokens": 10, "train_completion_tokens": 5,
            "eval_prompt_tokens": None, "eval_completion_tokens": None}}}, False),
    ],
)  # fmt: skip
def test_a_null_token_count_beside_counts_of_its_phase_is_unknown(
    tmp_path: Path, data: dict[str, Any], unknown: bool
) -> None:
    write(
        tmp_path / "ftjob-n1" / "events.json",
        page(event("ftevent-u", START, "Step 1/1", type="metrics", data={"step": 1, **data})),
    )
    result = import_openai([tmp_path])
    assert bool(result.problems) == unknown
    if unknown:
        assert "is null beside other counts" in result.problems[0].reason
    else:
        assert of(result.events, "grader_usage")["input_tokens"].tolist() == [10]


def test_events_whose_job_cannot_be_told_are_a_problem(tmp_path: Path) -> None:
    write(
        tmp_path / "export" / "events.json",
        page(event("ftevent-1", START, "Fine-tuning job started")),
    )
    write(
        tmp_path / "export" / "other.json",
        {"object": "fine_tuning.job.checkpoint", "id": "c", "created_at": START, "step_number": 1},
    )
    result = import_openai([tmp_path / "export"])
    assert result.events.empty
    reasons = " ".join(p.reason for p in result.problems)
    assert "cannot tell which job these events belong to" in reasons
    assert "names no job" in reasons


def test_the_created_message_names_the_job_of_its_file(tmp_path: Path) -> None:
    write(
        tmp_path / "events.json",
        page(
            event("ftevent-2", START + 1, "Fine-tuning job started"),
            event("ftevent-1", START, "Created fine-tuning job: ftjob-named1"),
        ),
    )
    assert set(import_openai([tmp_path / "events.json"]).events["job_id"]) == {"ftjob-named1"}


def test_conflicting_duplicates_are_reported_and_the_first_kept(tmp_path: Path) -> None:
    write(
        tmp_path / "ftjob-d1" / "a.json", page(event("ftevent-1", START, "Fine-tuning job started"))
    )
    write(
        tmp_path / "ftjob-d1" / "b.json",
        page(event("ftevent-1", START + 60, "Fine-tuning job started")),
    )
    result = import_openai([tmp_path])
    assert len(result.problems) == 1 and "with other content" in result.problems[0].reason
    assert list(result.events["ts"]) == [pd.Timestamp(START, unit="s", tz="UTC")]


def test_jobs_of_other_methods_are_skipped(tmp_path: Path) -> None:
    job = json.loads((FIXTURES / "ftjob-failed1" / "job.json").read_text())
    folder = tmp_path / "ftjob-failed1"
    shutil.copytree(FIXTURES / "ftjob-failed1", folder)
    write(folder / "job.json", {**job, "method": {"type": "supervised", "supervised": {}}})
    result = import_openai([folder])
    assert result.events.empty and result.jobs == ()
    assert "method supervised, not reinforcement fine-tuning: skipped" in " ".join(result.notes)


def test_nothing_importable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="no such file or folder"):
        import_openai([tmp_path / "missing"])
    other = write(tmp_path / "other.json", {"hello": "world"})
    with pytest.raises(ExportError, match="no OpenAI fine-tuning export found"):
        import_openai([other])
    (tmp_path / "log.jsonl").write_text('{"job_id": "j", "ts": 1, "event": "job_created"}\n')
    with pytest.raises(ExportError, match="no OpenAI fine-tuning export found"):
        import_openai([tmp_path])


def test_looks_like_openai_export() -> None:
    assert looks_like_openai_export(FIXTURES)
    assert looks_like_openai_export(FIXTURES / "ftjob-failed1")
    assert looks_like_openai_export(FIXTURES / "succeeded" / "events-page-1.json")
    assert looks_like_openai_export(FIXTURES / "paused" / "events.jsonl")
    assert looks_like_openai_export(FIXTURES / "cancelled" / "checkpoints.json")  # empty list


def test_looks_like_openai_export_refuses_other_files(tmp_path: Path) -> None:
    canonical = tmp_path / "events.jsonl"
    record = {
        "job_id": "j",
        "ts": 1,
        "event": "job_created",
        "message": '"object": "fine_tuning.job"',
    }
    canonical.write_text(json.dumps(record) + "\n")
    assert not looks_like_openai_export(canonical)
    assert not looks_like_openai_export(write(tmp_path / "x.json", {"object": "list", "data": []}))
    assert not looks_like_openai_export(tmp_path / "missing.json")
    assert not looks_like_openai_export(tmp_path)


# --- canonical JSON Lines ---------------------------------------------------------------------


def test_json_lines_round_trip_through_the_reader(tmp_path: Path) -> None:
    imported = import_openai([FIXTURES])
    text = events_to_jsonl(imported.events)
    first = json.loads(text.splitlines()[0])
    assert first["ts"] == "2025-06-20T12:00:00Z"
    assert "phase" not in first  # empty fields are left out
    path = tmp_path / "events.jsonl"
    path.write_text(text)
    log = read_events(path)
    assert log.counts() == {"records_read": 92, "accepted": 92, "duplicates": 0, "rejected": 0}
    assert bill_totals(bill(log)) == bill_totals(bill(imported.events))


def test_json_lines_keep_sub_second_times() -> None:
    frame = import_openai([FIXTURES / "succeeded"]).events.head(2)
    frame = frame.assign(ts=frame["ts"] + pd.Timedelta(microseconds=250))
    lines = [json.loads(line) for line in events_to_jsonl(frame).splitlines()]
    assert lines[0]["ts"] == "2025-06-01T10:00:00.00025Z"
    assert events_to_jsonl(frame.head(0)) == ""


# --- billing the imported fixtures (billing-rules.md, default policy openai-rft) ----------------


def bill_totals(result: Bill) -> dict[str, tuple[str, Decimal | None]]:
    return {
        job_id: (result.job(job_id).status, result.job(job_id).total_amount)
        for job_id in result.job_ids()
    }


@pytest.fixture(scope="module")
def fixture_bill() -> Bill:
    return bill(import_openai([FIXTURES]).events, policy="openai-rft")


def test_bill_succeeded(fixture_bill: Bill) -> None:
    # Steps of 1206 s, 1206 s, 1206 s (full_iteration) = 3618 s billable; validation,
    # queue, setup and safety eval are excluded (R2). 3618 s = 1.005 h → 1.01 h (half up,
    # R11) × $100 = $101.00. Grader gpt-4.1 ($2.00 / $0.50 cached / $8.00 per 1M):
    # input 1,000,000 of which 200,000 cached, output 100,000:
    # 0.8 × 2 + 0.2 × 0.5 + 0.1 × 8 = $2.50 (R9). No data sharing. Total $103.50.
    job = fixture_bill.job("ftjob-succeeded1")
    assert job.status == "succeeded"
    assert job.billable_seconds == 3618
    assert job.billed_hours == Decimal("1.01")
    assert job.compute_amount == Decimal("101.00")
    assert job.discount_amount == Decimal("0.00")
    assert job.grader_amount == Decimal("2.50")
    assert job.total_amount == Decimal("103.50")
    assert job.excluded_seconds == {
        "validating_files": 600,
        "queued": 600,
        "setup": 600,
        "safety_eval": 600,
    }


def test_bill_failed(fixture_bill: Bill) -> None:
    # Steps 1-2: 1800 s + 1800 s up to the checkpoint of step 2 (at step 2's end);
    # step 3 (1800 s) after the checkpoint is lost at the failure (R5).
    # 3600 s = 1.00 h × $100 = $100.00. Grader o3 on 2025-06-12 (after the 2025-06-10
    # price change: $2.00 / $0.50 / $8.00): step 1: 500,000 in, 50,000 out = 1.00 + 0.40
    # = $1.40; step 2: 400,000 uncached + 100,000 cached in, 50,000 out
    # = 0.80 + 0.05 + 0.40 = $1.25; step 3 is inside the lost interval: not charged.
    # Total 100.00 + 2.65 = $102.65.
    job = fixture_bill.job("ftjob-failed1")
    assert job.status == "failed"
    assert job.billable_seconds == 3600
    assert job.lost_seconds == 1800
    assert job.billed_hours == Decimal("1.00")
    assert job.compute_amount == Decimal("100.00")
    assert job.grader_amount == Decimal("2.65")
    assert job.total_amount == Decimal("102.65")


def test_bill_paused_and_resumed(fixture_bill: Bill) -> None:
    # Charge 1 at the pause: steps 1-2, 1800 s + 1800 s, and the step in progress when it
    # was paused 100 s later (R7: a pause loses nothing) = 3700 s = 1.028 h → 1.03 h → $103.00.
    # Charge 2 at success: steps 3-4, 1800 s + 1818 s = 3618 s = 1.005 h → 1.01 h → $101.00.
    # Each charge is rounded on its own (rounding_scope "charge"). Python grader: $0.
    # Total $204.00.
    job = fixture_bill.job("ftjob-paused1")
    assert job.status == "succeeded"
    assert [(c.event, c.billed_hours, c.amount) for c in job.charges] == [
        ("paused", Decimal("1.03"), Decimal("103.00")),
        ("succeeded", Decimal("1.01"), Decimal("101.00")),
    ]
    assert job.billable_seconds == 7318
    assert job.excluded_seconds["paused"] == 3600
    assert job.grader_amount == Decimal("0.00")
    assert job.total_amount == Decimal("204.00")


def test_bill_cancelled_with_data_sharing(fixture_bill: Bill) -> None:
    # Step 1: 2700 s (full_iteration); step 2 has no timing: 2700 s from step 1's event;
    # step 3 in progress for 300 s at the cancel, which loses nothing (R7).
    # 5700 s = 1.583 h → 1.58 h × $100 = $158.00. Data sharing: −50% of
    # compute = −$79.00 (R12). Grader gpt-4.1-mini ($0.40 / $0.10 / $1.60 per 1M):
    # 500,000 uncached + 500,000 cached in, 250,000 out = 0.20 + 0.05 + 0.40 = $0.65.
    # Total 158.00 − 79.00 + 0.65 = $79.65.
    job = fixture_bill.job("ftjob-cancelled1")
    assert job.status == "cancelled"
    assert job.data_sharing
    assert job.billable_seconds == 5700
    assert job.billed_hours == Decimal("1.58")
    assert job.compute_amount == Decimal("158.00")
    assert job.discount_amount == Decimal("79.00")
    assert job.grader_amount == Decimal("0.65")
    assert job.total_amount == Decimal("79.65")
    assert (job.team, job.project) == ("ads", "bidder")


def test_bill_all_fixtures_totals(fixture_bill: Bill) -> None:
    # 103.50 + 102.65 + 204.00 + 79.65 = $489.80
    assert fixture_bill.totals().total_amount == Decimal("489.80")
    assert fixture_bill.totals().invalid_jobs == 0


def test_the_reader_bills_a_fetched_folder_the_same(fixture_bill: Bill) -> None:
    # The reader imports each .json file of the fetch layout on its own.
    via_reader = bill(FIXTURES / "ftjob-failed1")
    assert via_reader.job("ftjob-failed1").total_amount == Decimal("102.65")


# --- the command ------------------------------------------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    import rftcost.cli.import_openai  # noqa: F401  (registers the command)
    from rftcost.cli import main

    monkeypatch.setattr(sys, "argv", ["rftcost", *args])
    with pytest.raises(SystemExit) as done:
        main()
    return int(done.value.code or 0)


def test_cli_writes_canonical_json_lines_and_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # JSON Lines only: a file named .csv would be read as CSV, every record rejected.
    assert run_cli(monkeypatch, "import-openai", str(FIXTURES), "-o", str(tmp_path / "e.csv")) == 2
    assert "name the output .jsonl" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()
    assert run_cli(monkeypatch, "import-openai", str(FIXTURES), "-o", "-") == 0  # stdout
    assert capsys.readouterr().out == events_to_jsonl(import_openai([FIXTURES]).events)
    out = tmp_path / "events.jsonl"
    assert run_cli(monkeypatch, "import-openai", str(FIXTURES), "-o", str(out)) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Imported 4 job(s), 92 canonical event(s) from 13 file(s)" in captured.err
    assert "Unknown messages: 0; problems: 0" in captured.err
    assert out.read_text() == events_to_jsonl(import_openai([FIXTURES]).events)


def test_cli_lists_unknown_messages_and_strict_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exports = tmp_path / "exports"  # the output is written beside it, never inside an input
    write(
        exports / "ftjob-u1" / "events.json",
        page(event("ftevent-9", START, "A brand new message")),
    )
    assert run_cli(monkeypatch, "import-openai", str(exports), "-o", str(tmp_path / "o.jsonl")) == 0
    assert (
        "ftjob-u1 ftevent-9 2025-06-15T15:06:40Z [info] 'A brand new message'"
        in capsys.readouterr().err
    )
    code = run_cli(
        monkeypatch, "import-openai", str(exports), "--strict", "-o", str(tmp_path / "o.jsonl")
    )
    assert code == 1


def test_cli_without_output_writes_to_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, "import-openai", str(FIXTURES / "cancelled")) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["job_id"] for line in captured.out.splitlines()] == [
        "ftjob-cancelled1"
    ] * 17
    assert "→ stdout" in captured.err


@pytest.mark.parametrize("content", [None, '{"hello": "world"}'])
def test_cli_unusable_input_exits_2_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
) -> None:
    path = tmp_path / "export.json"
    if content is not None:
        path.write_text(content)
    assert run_cli(monkeypatch, "import-openai", str(path), "-o", str(tmp_path / "o.jsonl")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(path) in err


def test_grader_tokens_named_by_an_alias_and_its_dated_model_are_counted_once(
    tmp_path: Path,
) -> None:
    """model_graders_token_usage keyed gpt-4o-2024-08-06, usage.graders naming gpt-4o: the
    same tokens. They were billed twice ($7.00 of grading instead of $3.50)."""
    from rftcost.events.openai.grader_usage import same_model

    grader = {"type": "score_model", "name": "g", "model": "gpt-4o-2024-08-06", "input": []}
    job = {
        "object": "fine_tuning.job", "id": "ftjob-F", "model": "o4-mini-2025-04-16",
        "created_at": 1748854800, "finished_at": 1748857500, "status": "succeeded",
        "method": {"type": "reinforcement", "reinforcement": {"grader": grader}},
        "metadata": {"team": "search"}, "shared_with_openai": False,
    }  # fmt: skip
    tokens = {"train_prompt_tokens": 1_000_000, "train_completion_tokens": 100_000}
    usage = {"model": "gpt-4o", "train_prompt_tokens_count": 1_000_000,
             "train_completion_tokens_count": 100_000}  # fmt: skip
    step = {
        "step": 1, "total_steps": 1, "timing": {"step": {"full_iteration": 1800.0}},
        "model_graders_token_usage": {"gpt-4o-2024-08-06": tokens},
        "usage": {"graders": [usage]},
    }  # fmt: skip
    events = [
        {"id": "e3", "created_at": 1748857500, "type": "message",
         "message": "The job has successfully completed", "data": {}},
        {"id": "e2", "created_at": 1748857200, "type": "metrics", "message": "Step 1/1",
         "data": step},
        {"id": "e1", "created_at": 1748855400, "type": "message",
         "message": "Fine-tuning job started", "data": {}},
        {"id": "e0", "created_at": 1748854800, "type": "message",
         "message": "Created fine-tuning job: ftjob-F", "data": {}},
    ]  # fmt: skip
    for event in events:
        event.update(object="fine_tuning.job.event", level="info")
    (tmp_path / "job.json").write_text(json.dumps(job), encoding="utf-8")
    (tmp_path / "events.json").write_text(
        json.dumps({"object": "list", "has_more": False, "data": events}), encoding="utf-8"
    )
    row = bill(tmp_path).jobs.iloc[0]
    assert (row["grader_cents"], row["total_cents"]) == (350, 5350)  # 1M x 2.50 + 0.1M x 10
    assert same_model("gpt-4o", "gpt-4o-2024-08-06") and same_model("gpt-4o-2024-08-06", "gpt-4o")
    assert not same_model("gpt-4o", "gpt-4o-mini")
    assert not same_model("gpt-4o-2024-05-13", "gpt-4o-2024-08-06")


def _succeeded_with(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the succeeded fixture with ``edit`` applied to each metrics event's data."""
    folder = tmp_path / "succeeded"
    shutil.copytree(FIXTURES / "succeeded", folder)
    for page in folder.glob("events*.json"):
        document = json.loads(page.read_text())
        for event in document["data"]:
            if event.get("type") == "metrics":
                edit(event["data"])
        page.write_text(json.dumps(document))
    return folder


def test_a_step_reporting_no_grader_usage_beside_steps_that_do_is_noted(tmp_path: Path) -> None:
    """The job's step 2 metrics event without its usage: its tokens are in no charge. The
    grader amount may be understated, which the import and the bill now say (it was silent:
    2.50 became 1.53 with no word)."""

    def drop_usage(data: dict[str, Any]) -> None:
        if data["step"] == 2:
            del data["model_graders_token_usage"]

    folder = _succeeded_with(tmp_path, drop_usage)
    result = import_openai([folder])
    (note,) = [n for n in result.notes if "report no grader token usage" in n]
    assert "ftjob-succeeded1" in note and "(step 2)" in note and "understated" in note
    billed = bill([folder])
    assert billed.jobs.iloc[0]["status"] == "succeeded"
    assert any("report no grader token usage" in n for n in billed.log.notes)
    untouched = import_openai([FIXTURES / "succeeded"])
    assert not any("report no grader token usage" in n for n in untouched.notes)


def test_cached_tokens_above_prompt_tokens_reject_their_record_once(tmp_path: Path) -> None:
    """One bad usage object was two rejected records (the metrics event, and the
    grader_usage event made of it): 25 read from an export of 24."""

    def over_cache(data: dict[str, Any]) -> None:
        if data["step"] == 2:
            next(iter(data["model_graders_token_usage"].values()))["train_cached_tokens"] = 999_999

    folder = _succeeded_with(tmp_path, over_cache)
    counts = read_events(folder).counts()
    clean = read_events(FIXTURES / "succeeded").counts()
    assert counts["rejected"] == 1 and counts["records_read"] == clean["records_read"]
    assert bill([folder]).jobs.iloc[0]["status"] == "invalid"


def test_a_failed_job_exported_without_checkpoints_is_said_not_a_silent_zero(
    tmp_path: Path,
) -> None:
    """Its training is lost (R5) and it bills 0.00 of compute, which an export missing its
    checkpoint list reads the same as: said in a note (it was silent)."""
    folder = tmp_path / "failed"
    shutil.copytree(FIXTURES / "ftjob-failed1", folder)
    (folder / "checkpoints.json").unlink()
    billed = bill([folder])
    assert billed.jobs.iloc[0]["status"] == "failed"
    assert int(billed.jobs.iloc[0]["compute_cents"]) == 0
    (note,) = [n for n in billed.log.notes if "no checkpoint in the export" in n]
    assert "ftjob-failed1" in note and "(R5)" in note
    kept = bill([FIXTURES / "ftjob-failed1"])
    assert not any("no checkpoint in the export" in n for n in kept.log.notes)


def test_a_step_timed_longer_than_since_the_step_before_is_not_billed_before_it(
    tmp_path: Path,
) -> None:
    """full_iteration of 10 h on each step: the first step's interval reached back before
    the job existed, and the queue and setup were billed as training (billable above the
    wall clock). Each step now starts no earlier than the step before ended, or training
    started, and a note says so."""

    def ten_hours(data: dict[str, Any]) -> None:
        data.setdefault("timing", {}).setdefault("step", {})["full_iteration"] = 36_000.0

    folder = _succeeded_with(tmp_path, ten_hours)
    events = import_openai([folder]).events
    created = events.loc[events["event"] == "job_created", "ts"].min()
    steps = events[(events["event"] == "phase_start") & (events["phase"] == STEP_PHASE)]
    assert steps["ts"].min() >= created
    billed = bill([folder])
    assert any("full_iteration is longer than the time since" in n for n in billed.log.notes)
    plain = bill([FIXTURES / "succeeded"])
    assert not any("full_iteration is longer" in n for n in plain.log.notes)


def test_a_step_logged_in_the_second_of_the_step_before_keeps_its_timing(tmp_path: Path) -> None:
    """Step 2's metrics event in step 1's second: cut back to that anchor it was a step of
    no time, and its job invalid; it keeps its own timing (the union bills it, R1)."""
    folder = tmp_path / "paused"
    shutil.copytree(FIXTURES / "paused", folder)
    events = folder / "events.jsonl"
    events.write_text(
        events.read_text().replace('"created_at": 1749979200', '"created_at": 1749977400')
    )
    job = bill([folder]).jobs.iloc[0]
    assert job["status"] == "succeeded" and int(job["total_cents"]) == 15_100
