"""rftcost.job_runs: a Parquet log written job by job, billed in runs of whole jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from builders import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import examples, logs

import rftcost
from rftcost.job_runs import plan_job_runs, read_parts
from rftcost.policy import load_policy

SETTINGS = settings(
    max_examples=examples(20, slow=True),  # each example is billed three times
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def write_parquet(
    path: Path, records: list[dict[str, Any]], *, row_group_size: int, typed_times: bool = True
) -> Path:
    """``records`` as a Parquet file, in their order, in row groups of ``row_group_size``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.DataFrame(records)
    frame = frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})
    if typed_times:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def job_records(job_id: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    """A job of ``count`` records: created, rollout pairs, succeeded."""
    records = [{"job_id": job_id, "ts": f"2025-06-01T10:00:{start:02d}Z", "event": "job_created"}]
    for pair in range((count - 2) // 2):
        minute = 1 + pair
        for event, second in (("phase_start", 0), ("phase_end", 30)):
            records.append(
                {
                    "job_id": job_id,
                    "ts": f"2025-06-01T{10 + minute // 60:02d}:{minute % 60:02d}:{second:02d}Z",
                    "event": event,
                    "phase": "rollout",
                }
            )
    records.append({"job_id": job_id, "ts": "2025-06-01T23:00:00Z", "event": "succeeded"})
    return records


def simulated_log(folder: Path, *, n_jobs: int, seed: int, row_group_size: int) -> tuple[Path, Any]:
    """Simulated jobs written job by job to ``folder/events.parquet``: (path, events)."""
    from rftcost.simulate import simulate_jobs

    events = simulate_jobs(n_jobs=n_jobs, seed=seed)
    path = folder / "events.parquet"
    events.to_parquet(path, row_group_size=row_group_size)
    return path, events


def outcome(bill: rftcost.Bill) -> tuple[Any, ...]:
    """What must not change with the path: the document, the counts, every record set aside."""
    assert bill.log is not None
    rejected = sorted(map(tuple, bill.log.rejected[["line", "reason"]].to_numpy().tolist()))
    return bill.to_dict(), bill.log.counts(), rejected, sorted(bill.log.duplicates["line"])


# --- the plan: which files, and where they are cut --------------------------------------------


def test_a_log_of_interleaved_jobs_plans_nothing(tmp_path: Path) -> None:
    a, b = job_records("a", 6), job_records("b", 6)
    mixed = [record for pair in zip(a, b, strict=True) for record in pair]
    path = write_parquet(tmp_path / "mixed.parquet", mixed, row_group_size=100)
    assert plan_job_runs([path], part_rows=4, unit_rows=8) is None


def test_a_job_in_two_files_or_split_by_a_nameless_record_plans_nothing(tmp_path: Path) -> None:
    a, b = job_records("a", 6), job_records("b", 6)
    first = write_parquet(tmp_path / "1.parquet", a[:3] + b, row_group_size=100)
    second = write_parquet(tmp_path / "2.parquet", a[3:], row_group_size=100)
    assert plan_job_runs([first, second], part_rows=4, unit_rows=8) is None
    nameless = {**a[0], "job_id": "  "}  # blank: a record of no job, but between a's
    split = write_parquet(tmp_path / "split.parquet", [*a[:3], nameless, *a[3:]], row_group_size=4)
    assert plan_job_runs([split], part_rows=4, unit_rows=8) is None


def test_text_logs_numeric_job_ids_and_unreadable_files_plan_nothing(tmp_path: Path) -> None:
    records = job_records("a", 6)
    text = tmp_path / "log.jsonl"
    text.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert plan_job_runs([text], part_rows=4, unit_rows=8) is None
    numbers = write_parquet(
        tmp_path / "n.parquet", [{**r, "job_id": 7} for r in records], row_group_size=4
    )
    assert plan_job_runs([numbers], part_rows=4, unit_rows=8) is None
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    assert plan_job_runs([broken], part_rows=4, unit_rows=8) is None


def test_parts_are_whole_jobs_and_cover_every_line(tmp_path: Path) -> None:
    sizes = [6, 30, 4, 12, 8, 50, 6]
    records = [r for i, size in enumerate(sizes) for r in job_records(f"job-{i}", size)]
    path = write_parquet(tmp_path / "log.parquet", records, row_group_size=7)
    units = plan_job_runs([path], part_rows=10, unit_rows=20)
    assert units is not None and len(units) > 1
    lines = [line for unit in units for first, end in unit.parts for line in range(first, end)]
    assert lines == list(range(1, len(records) + 1))  # each line once, in order
    job_of_line = {n + 1: r["job_id"] for n, r in enumerate(records)}
    for unit in units:
        assert list(unit.row_groups) == list(range(unit.row_groups[0], unit.row_groups[-1] + 1))
        for first, end in unit.parts:
            assert first == 1 or job_of_line[first] != job_of_line[first - 1]  # a job start
            assert 7 * unit.row_groups[0] < first and end - 1 <= 7 * (unit.row_groups[-1] + 1)
    # A part ends at the first job start past its ``part_rows``: only its last job, which
    # may be long (job-5: 50 records), takes it further.
    for unit in units:
        for first, end in unit.parts:
            starts = [n for n in range(first, end) if job_of_line.get(n - 1) != job_of_line[n]]
            assert starts[-1] - first < 10


def test_a_job_id_written_with_spaces_is_one_job(tmp_path: Path) -> None:
    a = job_records("a", 8)
    # " a " then "a": two runs of text, one job (the readers strip ids), across row groups.
    spaced = [{**r, "job_id": " a "} if i < 4 else r for i, r in enumerate(a)]
    path = write_parquet(tmp_path / "log.parquet", spaced + job_records("b", 6), row_group_size=3)
    units = plan_job_runs([path], part_rows=1, unit_rows=1)
    assert units is not None
    parts = [part for unit in units for part in unit.parts]
    assert parts[0] == (1, 9)  # a's eight records together, b apart
    everything = plan_job_runs([path], part_rows=1, unit_rows=1, jobs=["b"])
    assert everything is not None
    assert [part for unit in everything for part in unit.parts] == [(9, 15)]
    # The two texts taking turns in one row group: not proven one run, so bucketed.
    mixed = [{**r, "job_id": " a "} if i % 2 else r for i, r in enumerate(a)]
    turns = write_parquet(tmp_path / "turns.parquet", mixed, row_group_size=100)
    assert plan_job_runs([turns], part_rows=1, unit_rows=1) is None


def test_read_parts_gives_each_part_its_records_and_rejections(tmp_path: Path) -> None:
    records = job_records("a", 10) + job_records("b", 10) + job_records("c", 10)
    records[14] = {**records[14], "ts": "not a time"}  # b's, rejected
    path = write_parquet(tmp_path / "log.parquet", records, row_group_size=4, typed_times=False)
    units = plan_job_runs([path], part_rows=10, unit_rows=12)
    assert units is not None
    read = [
        (events, rejected)
        for unit in units
        for events, rejected in read_parts(unit, policy=load_policy())
    ]
    assert [set(events["job_id"].astype(str)) for events, _ in read] == [{"a"}, {"b"}, {"c"}]
    assert [len(events) for events, _ in read] == [10, 9, 10]
    assert [rejected["line"].tolist() for _, rejected in read] == [[], [15], []]


def test_a_part_knows_only_its_own_names(tmp_path: Path) -> None:
    # One row group holds both jobs: b's unknown event is in a's slice's dictionary too.
    records = job_records("a", 6) + job_records("b", 6)
    records[8] = {**records[8], "event": "no_such_event"}
    path = write_parquet(tmp_path / "log.parquet", records, row_group_size=100)
    units = plan_job_runs([path], part_rows=1, unit_rows=100)
    assert units is not None and units[0].parts == ((1, 7), (7, 13))
    (a_events, a_rejected), (b_events, b_rejected) = read_parts(units[0], policy=load_policy())
    assert list(a_events["job_id"].cat.categories) == ["a"]
    assert "no_such_event" not in set(a_events["event"].cat.categories) and a_rejected.empty
    assert b_rejected["line"].tolist() == [9] and len(b_events) == 5
    expected = outcome(rftcost.bill(path, buckets=None))
    assert outcome(rftcost.bill(path, buckets=2)) == expected


# --- the bill: the same as in memory --------------------------------------------------------


@pytest.mark.slow
@SETTINGS
@given(records=logs(max_jobs=5), data=st.data())
def test_a_log_billed_in_job_runs_is_billed_as_in_memory(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]], data: st.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("runs")
    # A duplicate and a conflicting duplicate inside a job, and a rejected record.
    extra = data.draw(st.sampled_from(records))
    records = [*records, {**extra}]
    conflict = data.draw(st.sampled_from(records))
    records.append({**conflict, "ts": "2025-06-01T00:00:00Z"})
    if data.draw(st.booleans()):
        records.append({**data.draw(st.sampled_from(records)), "event": "no_such_event"})
    by_job = sorted(records, key=lambda r: str(r["job_id"]))  # stable: job by job
    path = write_parquet(
        folder / "log.parquet",
        by_job,
        row_group_size=data.draw(st.integers(1, 40)),
        typed_times=data.draw(st.booleans()),
    )
    assert plan_job_runs([path], part_rows=8, unit_rows=16) is not None
    expected = outcome(rftcost.bill(path, buckets=None))
    for buckets in (2, 5):
        assert outcome(rftcost.bill(path, buckets=buckets)) == expected


def test_worker_processes_bill_job_runs_as_one_process(tmp_path: Path) -> None:
    path, _ = simulated_log(tmp_path, n_jobs=40, seed=3, row_group_size=500)
    assert plan_job_runs([path], part_rows=800, unit_rows=1500) is not None
    expected = outcome(rftcost.bill(path, buckets=None))
    assert outcome(rftcost.bill(path, buckets=4, workers=2)) == expected
    assert outcome(rftcost.bill(path, buckets=7, workers=1, keep_timeline=True)) == expected


def test_cli_bills_and_explains_job_runs_as_in_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rftcost.buckets

    path, events = simulated_log(tmp_path, n_jobs=12, seed=5, row_group_size=300)
    job = str(events["job_id"].iloc[-1])
    bill = ["bill", str(path), "-f", "json", "--workers", "1"]
    memory = cli(capsys, *bill, "--buckets", "1")
    assert memory[0] == 0 and memory[1]
    assert cli(capsys, *bill, "--buckets", "3") == memory
    explain = ["explain", str(path), "--job", job, "-f", "json"]
    in_memory = cli(capsys, *explain)
    monkeypatch.setattr(rftcost.buckets, "AUTO_BUCKET_EVENTS", 100)  # explain in job runs
    monkeypatch.setenv("RFTCOST_WORKERS", "1")
    assert in_memory[0] == 0
    assert cli(capsys, *explain) == in_memory


def test_a_failure_midway_leaves_no_half_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rftcost.job_runs
    from rftcost.errors import InputError

    path, events = simulated_log(tmp_path, n_jobs=12, seed=5, row_group_size=300)
    output = tmp_path / "bill.json"
    output.write_text("the bill of last month\n")
    # As the command plans it (4 buckets, 1 worker; parts of half a bucket): the failure
    # comes in the second unit, once the first unit's bill is out.
    units = plan_job_runs([path], part_rows=-(-len(events) // 8), unit_rows=-(-len(events) // 2))
    assert units is not None and len(units) == 2
    first_unit_parts = len(units[0].parts)
    calls = []
    validated = rftcost.job_runs.normalize_chunk

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > first_unit_parts:
            raise InputError("unreadable page", path=path)
        return validated(*args, **kwargs)

    monkeypatch.setattr(rftcost.job_runs, "normalize_chunk", failing)
    command = ["bill", str(path), "--workers", "1", "-f", "json", "-o", str(output)]
    code, _, err = cli(capsys, *command, "--buckets", "4")
    assert code == 2 and "unreadable page" in err
    assert len(calls) == first_unit_parts + 1
    assert output.read_text() == "the bill of last month\n"
    assert {p.name for p in tmp_path.iterdir()} == {"events.parquet", "bill.json"}
    # On stdout, where nothing can be put back: no half document either.
    calls.clear()
    code, out, err = cli(capsys, *command[:-2], "--buckets", "4")
    assert code == 2 and "unreadable page" in err and out == ""
    monkeypatch.setattr(rftcost.job_runs, "normalize_chunk", validated)
    code, _, err = cli(capsys, *command, "--buckets", "4")
    assert code == 0 and json.loads(output.read_text())["schema"] == "rftcost.bill/v1"


def test_a_file_output_through_a_link_replaces_the_file_it_points_at(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "bill-2025-06.json"
    real.write_text("last month\n")
    real.chmod(0o640)
    link = tmp_path / "latest.json"
    link.symlink_to(real.name)
    code, _, _ = cli(capsys, "bill", "sample_logs", "-f", "json", "-o", str(link))
    assert code == 0 and link.is_symlink()
    assert json.loads(real.read_text())["schema"] == "rftcost.bill/v1"
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bill-2025-06.json", "latest.json"]


@pytest.mark.parametrize("output_format", ["json", "csv"])
def test_worker_processes_lay_out_their_jobs_as_one_process_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output_format: str
) -> None:
    # Each worker spools its bill's document text; the command merges the files.
    path, _ = simulated_log(tmp_path, n_jobs=12, seed=6, row_group_size=300)
    sample = Path(__file__).resolve().parents[1] / "sample_logs"
    for log in (str(path), str(sample)):  # job runs, hash buckets
        bill = ["bill", log, "-f", output_format]
        memory = cli(capsys, *bill, "--buckets", "1")
        assert memory[0] == 0 and memory[1]
        assert cli(capsys, *bill, "--buckets", "3", "--workers", "2") == memory, log


def test_a_worker_that_dies_is_one_clear_error_and_ctrl_c_ends_a_worker_quietly() -> None:
    import os
    import signal

    from rftcost.buckets import _mapped
    from rftcost.errors import WorkerError

    # A worker gone (killed, out of memory): an rftcost error, not BrokenProcessPool.
    with pytest.raises(WorkerError, match="worker process ended"):
        list(_mapped(os._exit, [3, 3], 2))
    # Ctrl-C reaches every process of the command: a worker ends there (no traceback of
    # its own, no KeyboardInterrupt sent back as its result).
    with pytest.raises(WorkerError):
        list(_mapped(signal.raise_signal, [signal.SIGINT, signal.SIGINT], 2))
