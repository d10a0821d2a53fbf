"""What a new user meets first: help, version, headlines, explain and its chart, notes."""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from builders import JobLog
from typer.testing import CliRunner

import rftcost
from rftcost.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, *logs: JobLog) -> Path:
    path.write_text(
        "".join(json.dumps(e) + "\n" for log in logs for e in log.events), encoding="utf-8"
    )
    return path


def broken(job_id: str = "ftjob-broken") -> JobLog:
    """Billable time, then a phase_end with no open phase: the job is invalid."""
    log = JobLog(job_id).created(team="search").phase("rollout", minutes=30)
    return log.at(minutes=5).add("phase_end", phase="rollout").add("succeeded")


def good(job_id: str = "ftjob-good") -> JobLog:
    return JobLog(job_id).created(team="ads").phase("rollout", hours=1).add("succeeded")


# --- help and version ---------------------------------------------------------------------------


def test_help_prints_text_as_written_and_types_a_person_reads() -> None:
    result = runner.invoke(app, ["bill", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "rftcost[spark]" in text  # not eaten as markup
    assert not re.search(r"<(list\[|bool>|str>|path>|int)", text), text
    assert "[table|json|csv|markdown]" in text  # the choices on one line, never cut mid-word
    assert "--strict " in text and "--policy TEXT" in text and "--assume-tz ZONE" in text


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"rftcost {rftcost.__version__}"


# --- the headline when an amount is unknown -----------------------------------------------------


def test_a_log_of_only_invalid_jobs_has_an_unknown_total(tmp_path: Path) -> None:
    path = write(tmp_path / "log.jsonl", broken())
    table = runner.invoke(app, ["bill", str(path)]).output
    assert "Total USD unknown (1 invalid job" in table and "USD 0.00" not in table
    markdown = runner.invoke(app, ["bill", str(path), "-f", "markdown"]).output
    assert "**Total USD unknown (1 invalid job" in markdown
    # JSON keeps its schema: the sums are over valid jobs, with the invalid ones counted.
    document = json.loads(runner.invoke(app, ["bill", str(path), "-f", "json"]).output)
    assert document["totals"]["invalid_jobs"] == 1 and document["jobs"][0]["total_amount"] is None
    spend = runner.invoke(app, ["spend", str(path)]).output
    assert "Total USD unknown (1 invalid job" in spend


def test_a_total_with_invalid_jobs_says_plus_unknown(tmp_path: Path) -> None:
    path = write(tmp_path / "log.jsonl", broken(), good())
    table = runner.invoke(app, ["bill", str(path)]).output
    assert "Total USD 100.00 + unknown (1 invalid job) = compute 100.00" in table
    spend = runner.invoke(app, ["spend", str(path), "-f", "markdown"]).output
    assert "Total USD 100.00 + unknown (1 invalid job)" in spend


def test_a_rejected_record_of_no_known_job_makes_the_total_unknown(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(
        write(tmp_path / "good.jsonl", good()).read_text()
        + "garbage\n"
        + '{"jobid": "x", "ts": "2025-06-01T01:00:00Z", "event": "succeeded"}\n'
    )
    table = runner.invoke(app, ["bill", str(path)]).output
    assert "Total USD 100.00 + unknown (2 rejected records of no known job" in table
    alone = tmp_path / "alone.jsonl"
    alone.write_text("garbage\n")
    markdown = runner.invoke(app, ["bill", str(alone), "-f", "markdown"]).output
    assert "unknown (1 rejected record of no known job" in markdown and "0.00" in markdown


# --- explain ------------------------------------------------------------------------------------


def test_explain_of_an_invalid_job_shows_its_billable_time_as_unknown(tmp_path: Path) -> None:
    path = write(tmp_path / "log.jsonl", broken())
    text = runner.invoke(app, ["explain", str(path), "--job", "ftjob-broken"]).output
    assert "BILLED" not in text and "charged in charge" not in text
    assert re.search(r"0:30:00\s+UNKNOWN\s+rollout\s+billable phase of an invalid job", text)
    document = json.loads(
        runner.invoke(app, ["explain", str(path), "-j", "ftjob-broken", "-f", "json"]).output
    )
    statuses = {s["status"] for s in document["stretches"]}
    assert "unknown" in statuses and "billed" not in statuses


def test_the_timeline_of_an_invalid_job_draws_unknown_time_and_its_whole_title(
    tmp_path: Path,
) -> None:
    from rftcost.charts import timeline_figure
    from rftcost.explain import explain

    long_name = "ftjob-" + "x" * 150  # a long id: the title wraps, nothing is cut off
    bill = rftcost.bill(write(tmp_path / "log.jsonl", broken(long_name)))
    fig = timeline_figure(explain(bill, long_name))
    fig.canvas.draw()  # type: ignore[attr-defined]
    ax = fig.axes[0]
    labels = {c.get_label() for c in ax.containers}
    assert "unknown" in labels and "billed" not in labels
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "billed (charged)" not in legend
    assert any("amount unknown" in t for t in legend)
    title = ax.get_title(loc="left")
    assert "INVALID: amount unknown" in title
    assert all(len(line) <= 110 for line in title.splitlines()[1:])
    assert "with no open phase" in title.replace("\n", " ")


def test_explain_durations_are_the_shown_to_minus_the_shown_from(tmp_path: Path) -> None:
    log = JobLog("ftjob-ms").created()
    log.at(milliseconds=900).phase("queued", milliseconds=1200)  # 00.900 → 02.100
    log.phase("rollout", seconds=61, milliseconds=400).at(milliseconds=300).add("succeeded")
    path = write(tmp_path / "log.jsonl", log)
    text = runner.invoke(app, ["explain", str(path), "--job", "ftjob-ms"]).output
    # Fractions of a second shown where there are some (they were cut from the clocks and
    # rounded half to even in the durations: rows not adding up to the wall clock).
    clock = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)Z"
    rows = re.findall(rf"^{clock}\s+{clock}\s+(\d+):(\d\d):(\d\d(?:\.\d+)?)", text, re.MULTILINE)
    assert len(rows) >= 3, text
    assert any("." in start for start, *_ in rows)
    for start, end, h, m, s in rows:
        shown = datetime.fromisoformat(end) - datetime.fromisoformat(start)
        assert Decimal(str(shown.total_seconds())) == int(h) * 3600 + int(m) * 60 + Decimal(s)
    wall = re.search(r"wall clock (\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    assert wall is not None
    first, last = rows[0][0], rows[-1][1]
    total = datetime.fromisoformat(last) - datetime.fromisoformat(first)
    assert Decimal(str(total.total_seconds())) == (
        int(wall[1]) * 3600 + int(wall[2]) * 60 + Decimal(wall[3])
    )


def test_explain_time_line_adds_up_to_the_wall_clock(tmp_path: Path) -> None:
    """A safety check inside the rollout is billed (R1), and the half hour before the
    success is idle: the Time line gave billed 1:00:00 and, under it, the safety check's
    0:30:00 as if that were the rest. It now names excluded and idle time."""
    log = JobLog("ftjob-l").created()
    log.add("phase_start", phase="rollout").add("phase_start", phase="safety_check")
    log.at(minutes=30).add("phase_end", phase="safety_check").at(minutes=30)
    log.add("phase_end", phase="rollout").at(minutes=30).add("succeeded")
    path = write(tmp_path / "log.jsonl", log)
    text = runner.invoke(app, ["explain", str(path), "--job", "ftjob-l"]).output
    assert "wall clock 1:30:00; billable, charged 1:00:00;" in text
    assert "excluded 0:00:00; idle 0:30:00" in text
    assert "where a billable phase overlaps one, that time is billed" in text
    # An invalid job: its stretches of unknown status are a total of their own.
    log = JobLog("ftjob-i").created().add("phase_start", phase="rollout").at(minutes=30)
    log.add("phase_end", phase="rollout").add("phase_end", phase="grading").at(minutes=10)
    log.add("succeeded")
    path = write(tmp_path / "invalid.jsonl", log)
    text = runner.invoke(app, ["explain", str(path), "--job", "ftjob-i"]).output
    assert "Time: wall clock 0:40:00; excluded 0:00:00; idle 0:10:00; unknown 0:30:00" in text


# --- notes on reading on every path ---------------------------------------------------------------


def test_bucketed_bill_keeps_the_notes_on_skipped_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RFTCOST_WORKERS", "1")  # no worker processes to spawn for two jobs
    folder = tmp_path / "logs"
    folder.mkdir()
    write(folder / "a.jsonl", good("ftjob-a"), good("ftjob-b"))
    (folder / "budgets.csv").write_text("team,period,amount\nads,2025-06,10\n")
    whole = runner.invoke(app, ["bill", str(folder)]).output
    bucketed = runner.invoke(app, ["bill", str(folder), "--buckets", "2"]).output
    note = "budgets.csv: not an event log (no job_id, ts, event), skipped"
    assert "Notes on reading (1):" in whole and note in whole
    assert "Notes on reading (1):" in bucketed and note in bucketed
    assert rftcost.bill(folder, buckets=3).log.notes == rftcost.bill(folder).log.notes  # type: ignore[union-attr]


# --- the waterfall against the bill -------------------------------------------------------------


def test_the_waterfall_says_why_its_accrued_step_differs_from_the_bill() -> None:
    from rftcost.charts import waterfall_figure, waterfall_steps

    running = JobLog("ftjob-run").created(team="ads", grader_model="gpt-4.1")
    running.add("phase_start", phase="rollout").at(minutes=20)
    running.add(
        "grader_usage", grader_model="gpt-4.1", input_tokens=1_000_000, output_tokens=100_000
    )
    running.at(minutes=6, seconds=40).add("step_completed", step=1)
    bill = rftcost.bill(running.frame())
    job = bill.job("ftjob-run")
    steps = {s.name: s for s in waterfall_steps(bill)}
    accrued = steps["accrued, not charged yet (R8)"]
    assert -accrued.amount != job.accrued_amount  # exact time vs rounded hours + grader
    assert accrued.note is not None and f"${job.accrued_amount}" in accrued.note
    fig = waterfall_figure(bill)
    assert f"${job.accrued_amount}" in fig.axes[0].get_xlabel()


@pytest.mark.parametrize("name", ["out/timeline.png", "out/dispute.csv", "out/report.html"])
def test_the_quick_start_writes_into_the_ignored_out_folder(name: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme[readme.index("## Quick start") : readme.index("## Commands")]
    assert name in quick and "mkdir -p out" in quick
    assert "out/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_library_section_of_the_readme_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its code blocks, as a newcomer pastes them (in a folder with the sample logs)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The library") : readme.index("## Performance")]
    blocks = section.split("```python\n")[1:]
    assert blocks
    (tmp_path / "sample_logs").symlink_to(ROOT / "sample_logs")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block.split("```")[0], "README.md", "exec"), {"print": lambda *a: None})
    assert (tmp_path / "out" / "big.parquet").stat().st_size > 0
