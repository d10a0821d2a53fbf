"""The command line: every billing command, format and exit code."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from builders import JobLog, guide_prelude
from typer.testing import CliRunner

from rftcost.cli import app

runner = CliRunner()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Two valid jobs and one invalid one, in a folder."""
    good = guide_prelude(JobLog("ftjob-good").created(team="search", project="ranker"))
    good.phase("rollout", hours=4).add("succeeded")
    shared = JobLog("ftjob-shared").created(data_sharing=True).phase("rollout", hours=1)
    shared.add("succeeded")
    broken = JobLog("ftjob-broken").created().add("phase_end", phase="rollout").add("succeeded")
    folder = tmp_path / "logs"
    folder.mkdir()
    for log in (good, shared, broken):
        log.frame().to_json(folder / f"{log.job_id}.jsonl", orient="records", lines=True)
    return folder


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real entry point (exit codes and stderr mapping included)."""
    return subprocess.run(
        [sys.executable, "-m", "rftcost", *args], capture_output=True, text=True, check=False
    )


def test_bill_table_names_policy_totals_and_invalid_jobs(logs: Path) -> None:
    result = runner.invoke(app, ["bill", str(logs)])
    assert result.exit_code == 0, result.output
    assert "policy openai-rft (USD)" in result.output
    assert "ftjob-good" in result.output and "400.00" in result.output
    assert "Total USD 450.00" in result.output
    assert "1 invalid job(s), amount unknown" in result.output
    assert "ftjob-broken: phase_end of 'rollout'" in result.output


def test_bill_json_follows_the_schema(logs: Path) -> None:
    result = runner.invoke(app, ["bill", str(logs), "--format", "json"])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["schema"] == "rftcost.bill/v1"
    assert document["policy"] == "openai-rft" and document["currency"] == "USD"
    jobs = {job["job_id"]: job for job in document["jobs"]}
    good = jobs["ftjob-good"]
    assert list(good) == [
        "job_id",
        "team",
        "project",
        "model",
        "status",
        "data_sharing",
        "wall_seconds",
        "billable_seconds",
        "lost_seconds",
        "unbilled_seconds",
        "excluded_seconds",
        "billed_hours",
        "compute_amount",
        "discount_amount",
        "grader_amount",
        "total_amount",
        "accrued_amount",
        "charges",
        "problems",
    ]
    assert good["billed_hours"] == "4.00" and good["total_amount"] == "400.00"
    assert good["excluded_seconds"]["queued"] == 1800.0
    charge = good["charges"][0]
    assert charge["at"] == "2025-06-01T13:30:00Z" and charge["amount"] == "400.00"
    assert jobs["ftjob-shared"]["discount_amount"] == "50.00"
    broken = jobs["ftjob-broken"]
    assert broken["status"] == "invalid" and broken["total_amount"] is None
    assert broken["problems"]
    assert document["totals"] == {
        "jobs": 3,
        "invalid_jobs": 1,
        "invalid_wall_seconds": 0.0,
        "orphan_records": 0,
        "billed_hours": "5.00",
        "compute_amount": "500.00",
        "discount_amount": "50.00",
        "grader_amount": "0.00",
        "total_amount": "450.00",
        "accrued_amount": "0.00",
    }
    assert document["records"]["records_read"] == sum(
        len(p.read_text().splitlines()) for p in logs.iterdir()
    )


def test_bill_csv_and_markdown(logs: Path, tmp_path: Path) -> None:
    out = tmp_path / "bill.csv"
    assert runner.invoke(app, ["bill", str(logs), "-f", "csv", "-o", str(out)]).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["job_id"]: r["total_amount"] for r in rows} == {
        "ftjob-broken": "",
        "ftjob-good": "400.00",
        "ftjob-shared": "50.00",
    }
    assert all(r["policy"] == "openai-rft" for r in rows)
    markdown = runner.invoke(app, ["bill", str(logs), "-f", "markdown"]).output
    assert markdown.startswith("## RFT bill")
    assert "| ftjob-good | search | succeeded |" in markdown


def test_strict_exits_1_on_invalid_jobs(logs: Path, tmp_path: Path) -> None:
    strict = run("bill", str(logs), "--strict", "-o", str(tmp_path / "bill.json"))
    assert strict.returncode == 1  # and says why, the bill being in a file
    assert "strict: 1 invalid job(s), 0 rejected record(s)" in strict.stderr
    focus = ["export", "focus", str(logs), "-o", str(tmp_path / "focus.csv")]
    for command in (["spend", str(logs)], focus):  # a job left out fails a pipeline
        assert runner.invoke(app, command).exit_code == 0
        assert runner.invoke(app, [*command, "--strict"]).exit_code == 1
    (logs / "ftjob-broken.jsonl").unlink()
    assert run("bill", str(logs), "--strict").returncode == 0
    for command in (["spend", str(logs)], focus):
        assert runner.invoke(app, [*command, "--strict"]).exit_code == 0


def test_unreadable_input_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run("bill", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "missing.jsonl: no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_policy_exits_2(logs: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nextends = "openai-rft"\n[rounding]\nhours_mode = "sideways"\n')
    result = run("bill", str(logs), "--policy", str(bad))
    assert result.returncode == 2
    assert "rounding.hours_mode" in result.stderr
    unknown_key = tmp_path / "typo.toml"
    unknown_key.write_text('name = "x"\nextends = "openai-rft"\nhourly_rate = 3\n')
    assert "unknown key" in run("bill", str(logs), "--policy", str(unknown_key)).stderr
    assert run("bill", str(logs), "--policy", "no-such-policy").returncode == 2


def test_bad_arguments_exit_2(logs: Path) -> None:
    assert run("bill").returncode == 2
    assert run("bill", str(logs), "--format", "yaml").returncode == 2


def test_validate_reports_and_exits_1_on_problems(logs: Path) -> None:
    result = runner.invoke(app, ["validate", str(logs)])
    assert result.exit_code == 1
    assert "Jobs: 3, invalid: 1" in result.output
    document = json.loads(runner.invoke(app, ["validate", str(logs), "-f", "json"]).output)
    assert document["schema"] == "rftcost.validate/v1"
    assert document["invalid_jobs"] == 1
    # The CSV lists rejected records (none here): the invalid job is said on stderr.
    table = run("validate", str(logs), "-f", "csv")
    assert (
        table.returncode == 1 and table.stdout.strip() == "source,line,job_id,column,value,reason"
    )
    assert "1 invalid job(s), their reasons in `rftcost validate -f json`: ftjob-broken" in (
        table.stderr
    )
    (logs / "ftjob-broken.jsonl").unlink()
    clean = runner.invoke(app, ["validate", str(logs)])
    assert clean.exit_code == 0 and "OK" in clean.output


def test_validate_lists_rejected_records_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"job_id": "j", "ts": "2025-06-01T10:00:00Z", "event": "job_created"}\n'
        '{"job_id": "j", "ts": "2025-06-01T10:00:00", "event": "succeeded"}\n'
    )
    result = runner.invoke(app, ["validate", str(path), "-f", "csv"])
    assert result.exit_code == 1  # the invalid job said on stderr, the CSV on stdout
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["source"], row["line"], row["column"]) == (str(path), "2", "ts")
    assert runner.invoke(app, ["validate", str(path), "--assume-tz", "UTC"]).exit_code == 0


def test_explain_marks_billed_excluded_and_lost(tmp_path: Path) -> None:
    log = guide_prelude(JobLog("ftjob-f").created())
    log.add("phase_start", phase="rollout").at(hours=2).add("checkpoint_saved", step=5)
    log.at(hours=1).add("failed")
    path = tmp_path / "f.jsonl"
    log.frame().to_json(path, orient="records", lines=True)
    result = runner.invoke(app, ["explain", str(path), "--job", "ftjob-f"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "EXCLUDED  queued" in text
    assert "2:00:00   BILLED" in text
    assert "1:00:00   LOST" in text
    assert "checkpoint step 5" in text
    assert "Total 200.00" in text
    document = json.loads(
        runner.invoke(app, ["explain", str(path), "-j", "ftjob-f", "-f", "json"]).output
    )
    assert document["schema"] == "rftcost.explain/v1"  # every JSON output names its schema
    assert [s["status"] for s in document["stretches"]] == ["excluded"] * 4 + ["billed", "lost"]
    assert run("explain", str(path), "--job", "nope").returncode == 2


def test_explain_an_invalid_job_says_unknown_not_zero(logs: Path) -> None:
    result = runner.invoke(app, ["explain", str(logs), "--job", "ftjob-broken"])
    assert "INVALID: amount unknown, not $0" in result.output


def test_a_job_whose_every_record_was_rejected_is_explained_and_drawn(tmp_path: Path) -> None:
    path = tmp_path / "rejected.jsonl"
    path.write_text(
        '{"job_id": "j", "ts": "0001-01-01T00:00:00Z", "event": "job_created"}\n'
        + "".join(json.dumps(e) + "\n" for e in JobLog("k").created().phase("rollout").events)
    )
    explained = runner.invoke(app, ["explain", str(path), "--job", "j"])
    assert explained.exit_code == 0, explained.output
    assert "INVALID: amount unknown, not $0" in explained.output
    assert "timestamp out of range" in explained.output
    document = json.loads(
        runner.invoke(app, ["explain", str(path), "--job", "j", "-f", "json"]).output
    )
    assert document["job"]["total_amount"] is None and document["stretches"] == []
    drawn = runner.invoke(
        app, ["chart", "timeline", str(path), "--job", "j", "-o", str(tmp_path / "t.svg")]
    )
    assert drawn.exit_code == 0, drawn.output


def test_explain_of_a_job_whose_every_record_was_rejected_says_unknown(tmp_path: Path) -> None:
    """Its model, team, project and time cannot be established: ``unknown``, never ``<NA>``,
    ``unallocated`` or a wall clock of 0:00:00; the JSON says null, as bill does."""
    path = tmp_path / "rejected.jsonl"
    path.write_text(
        '{"job_id": "j", "ts": "2025-06-01T10:30:00", "event": "job_created", "team": "s"}\n'
        '{"job_id": "j", "ts": "not a time", "event": "phase_start", "phase": "rollout"}\n'
    )
    for output_format in ("table", "markdown"):
        explained = runner.invoke(app, ["explain", str(path), "--job", "j", "-f", output_format])
        assert explained.exit_code == 0, explained.output
        text = explained.output
        assert "<NA>" not in text and "unallocated" not in text and "0:00:00" not in text
        assert "team unknown  project unknown  model unknown  status invalid" in text
        assert "Time: unknown" in text and "no record of this job could be read" in text
        assert "not an ISO 8601 timestamp" in text
    document = json.loads(
        runner.invoke(app, ["explain", str(path), "--job", "j", "-f", "json"]).output
    )
    assert document["job"]["model"] is None and document["job"]["team"] is None
    assert document["first_event_at"] is None and document["last_event_at"] is None
    billed = json.loads(runner.invoke(app, ["bill", str(path), "-f", "json"]).output)
    assert billed["jobs"][0]["model"] is None


def test_policy_list_and_show() -> None:
    listed = runner.invoke(app, ["policy", "list"])
    assert listed.exit_code == 0
    assert "openai-rft (default)" in listed.output and "azure-rft" in listed.output
    shown = runner.invoke(app, ["policy", "show", "azure-rft"])
    assert "Cap per job: 5000.00" in shown.output
    assert "o3" in shown.output and "2025-06-10" in shown.output
    document = json.loads(runner.invoke(app, ["policy", "show", "-f", "json"]).output)
    assert (document["schema"], document["name"]) == ("rftcost.policy/v1", "openai-rft")
    presets = json.loads(runner.invoke(app, ["policy", "list", "-f", "json"]).output)
    assert presets["schema"] == "rftcost.policies/v1"
    assert any(p["name"] == "openai-rft" and p["default"] for p in presets["policies"])
    assert document["price_table"]["models"]["gpt-4.1"][0]["input"] == "2.00"


def test_help_is_instant_and_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("bill", "validate", "explain", "policy"):
        assert command in result.stdout


def test_output_dash_is_stdout_not_a_file_named_dash(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["bill", str(logs), "-f", "json", "-o", "-"])
    assert result.exit_code == 0 and json.loads(result.output)["totals"]["jobs"] == 3
    assert not (tmp_path / "-").exists()


def test_the_script_ends_with_every_output_written_and_its_status(
    logs: Path, tmp_path: Path
) -> None:
    """``run`` ends the process without the interpreter's teardown: what was written to a
    pipe or a file with buffering on is all there, and the status is the command's."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    command = [sys.executable, "-m", "rftcost", "bill", str(logs), "-f", "json"]
    piped = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["totals"]["jobs"] == 3
    strict = subprocess.run(
        [*command, "--strict", "-o", str(tmp_path / "bill.json")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert strict.returncode == 1  # an invalid job, found
    assert json.loads((tmp_path / "bill.json").read_text())["totals"]["jobs"] == 3
    missing = subprocess.run(
        [sys.executable, "-m", "rftcost", "bill", str(tmp_path / "absent.jsonl")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: ") and "absent.jsonl" in missing.stderr


@pytest.mark.parametrize(
    ("code", "status", "said"), [(None, 0, ""), (0, 0, ""), (3, 3, ""), ("gone", 1, "gone\n")]
)
def test_exit_status_reads_system_exit_as_the_interpreter_does(
    code: object, status: int, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from rftcost.cli import _exit_status

    assert _exit_status(code) == status
    assert capsys.readouterr().err == said


def test_bill_table_says_unknown_for_the_team_of_a_job_of_no_readable_record(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"job_id":"j-free","ts":"2025-06-01T00:00:00Z","event":"job_created"}\n'
        '{"job_id":"j-free","ts":"2025-06-01T02:00:00Z","event":"succeeded"}\n'
        '{"job_id":"j-lost","ts":"nope","event":"job_created","team":"b"}\n'
    )
    for output_format in ("table", "markdown"):
        result = runner.invoke(app, ["bill", str(log), "-f", output_format])
        rows = [line for line in result.output.splitlines() if "rejected" not in line]
        free = next(line for line in rows if "j-free" in line)
        lost = next(line for line in rows if "j-lost" in line)
        assert "unallocated" in free and "unknown" not in free, result.output
        assert "unknown" in lost and "unallocated" not in lost, result.output


def test_json_totals_of_invalid_jobs_only_are_null_not_zero(tmp_path: Path) -> None:
    """No valid job: there is no sum; 0.00 would read as a real figure to jq and scripts."""
    broken = JobLog("ftjob-broken").created().add("phase_end", phase="rollout").add("succeeded")
    log = tmp_path / "broken.jsonl"
    broken.frame().to_json(log, orient="records", lines=True)
    for extra in ([], ["--buckets", "2"]):
        bill_totals = json.loads(
            runner.invoke(app, ["bill", str(log), "-f", "json", *extra]).output
        )["totals"]
        assert bill_totals["invalid_jobs"] == 1
        assert bill_totals["total_amount"] is None and bill_totals["compute_amount"] is None
    spend_totals = json.loads(runner.invoke(app, ["spend", str(log), "-f", "json"]).stdout)
    assert spend_totals["totals"]["total_amount"] is None
    assert spend_totals["invalid_jobs"] == ["ftjob-broken"]


def test_explain_json_writes_times_as_the_bill_does() -> None:
    """Milliseconds as the log has them, no padding to microseconds: one instant, one text."""
    sample = Path(__file__).parent.parent / "sample_logs" / "2025-05.jsonl"
    bill = json.loads(runner.invoke(app, ["bill", str(sample), "-f", "json"]).output)
    job = bill["jobs"][0]
    explained = json.loads(
        runner.invoke(app, ["explain", str(sample), "-j", job["job_id"], "-f", "json"]).output
    )
    times = [s["start"] for s in explained["stretches"]] + [explained["first_event_at"]]
    assert times and all(t.endswith("Z") and not t.endswith("000Z") for t in times)
    assert explained["billing_events"][-1][0] == job["charges"][-1]["at"]


def test_validate_lists_rejected_records_in_line_order(tmp_path: Path) -> None:
    lines = [
        '{"job_id":"a","ts":"2025-01-01T00:00:00Z","event":"job_created","event_id":"1"}',
        '{"job_id":"a","ts":"bad","event":"phase_start","phase":"rollout","event_id":"2"}',
        "not json",
        '{"job_id":"a","ts":"2025-01-01T00:02:00Z","event":"bogus","event_id":"4"}',
    ]
    path = tmp_path / "v.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    listed = [line.split(":")[1] for line in result.output.splitlines() if "v.jsonl:" in line]
    assert listed[:3] == ["2", "3", "4"]


def test_an_unknown_phase_is_named_where_the_job_is_said_invalid(tmp_path: Path) -> None:
    """R3: the message names the phase, not only the known names, in bill as in validate."""
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"job_id":"a","ts":"2025-01-01T00:00:00Z","event":"job_created"}\n'
        '{"job_id":"a","ts":"2025-01-01T00:00:00Z","event":"phase_start","phase":"training"}\n'
    )
    document = json.loads(runner.invoke(app, ["bill", str(path), "-f", "json"]).output)
    (problem,) = document["jobs"][0]["problems"]
    assert "unknown phase" in problem and problem.endswith("(value 'training')")


def test_explain_under_job_scope_says_the_hours_are_the_jobs_rounded_once(
    tmp_path: Path,
) -> None:
    """Worked example 5 under rounding scope job: "3617 s → 0.00 h" then "3617 s →
    2.01 h" did not add up without saying that the job's seconds are rounded once."""
    examples = Path(__file__).resolve().parents[1] / "examples" / "worked_examples.jsonl"
    log = tmp_path / "w05.jsonl"
    log.write_text("".join(x for x in examples.read_text().splitlines(True) if "example-05" in x))
    policy = tmp_path / "jobscope.toml"
    policy.write_text('name = "jobscope"\nextends = "openai-rft"\n[rounding]\nscope = "job"\n')
    result = runner.invoke(
        app, ["explain", str(log), "--job", "ftjob-example-05", "--policy", str(policy)]
    )
    assert result.exit_code == 0, result.output
    assert "the job's 7234 s are rounded once, to 2.01 h" in result.stdout


def test_validate_names_jobs_without_their_job_created(tmp_path: Path) -> None:
    """A month's file of a job created the month before billed it unallocated, without its
    discount, and validate said "OK" alone: it now says which jobs and how they are billed."""
    log = tmp_path / "june.jsonl"
    rows = [
        {"job_id": "j", "ts": "2025-06-01T00:00:00Z", "event": "phase_start", "phase": "rollout"},
        {"job_id": "j", "ts": "2025-06-01T01:00:00Z", "event": "phase_end", "phase": "rollout"},
        {"job_id": "j", "ts": "2025-06-01T01:00:00Z", "event": "succeeded"},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["validate", str(log)])
    assert result.exit_code == 0
    assert "1 job(s) with no job_created record in these files (j)" in result.stdout
    assert "every job can be billed (see the notes)." in result.stdout


@pytest.mark.parametrize(
    "late",
    [
        [{"event": "grader_usage", "grader_model": "gpt-4.1", "input_tokens": 1_000_000,
          "output_tokens": 0}],
        [{"event": "phase_start", "phase": "rollout"},
         {"event": "phase_end", "phase": "rollout", "ts": "2025-06-01T01:30:00Z"}],
    ],
)  # fmt: skip
def test_validate_notes_work_logged_after_a_jobs_final_event(
    tmp_path: Path, late: list[dict[str, object]]
) -> None:
    """Tokens or a phase logged after ``succeeded`` are accrued (R8) and never charged:
    validate said "OK" alone."""
    log = tmp_path / "late.jsonl"
    rows = [
        {"job_id": "j", "ts": "2025-06-01T00:00:00Z", "event": "job_created"},
        {"job_id": "j", "ts": "2025-06-01T00:00:00Z", "event": "phase_start", "phase": "rollout"},
        {"job_id": "j", "ts": "2025-06-01T01:00:00Z", "event": "phase_end", "phase": "rollout"},
        {"job_id": "j", "ts": "2025-06-01T01:00:00Z", "event": "succeeded"},
        *({"job_id": "j", "ts": "2025-06-01T01:01:00Z", **record} for record in late),
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["validate", str(log)])
    assert result.exit_code == 0
    assert "1 ended job(s) with work or grader tokens logged after their final event (j)" in (
        result.stdout
    )
    assert "every job can be billed (see the notes)." in result.stdout
