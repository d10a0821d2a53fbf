"""Every path gives the same cents: in memory, in hash buckets on disk, and on Spark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from shared_cases import SHARED_CASES
from strategies import examples, logs

import rftcost
from rftcost.buckets import bucket_of, partition_events
from rftcost.policy import load_policy


def write_log(folder: Path, records: list[dict[str, Any]]) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    half = len(records) // 2
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:half]))
    pd.DataFrame(records[half:]).to_csv(folder / "b.csv", index=False)
    return folder


@pytest.mark.slow
@settings(
    max_examples=examples(15, slow=True),  # each example is billed four times
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(records=logs(max_jobs=6))
def test_bucketed_bill_equals_the_in_memory_bill(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    folder = write_log(tmp_path / "logs", records)
    expected = rftcost.bill(folder, buckets=None).to_dict()
    for buckets in (2, 3, 7):
        assert rftcost.bill(folder, buckets=buckets).to_dict() == expected


def test_every_event_of_a_job_lands_in_one_bucket(tmp_path: Path) -> None:
    ids = pd.Series([f"ftjob-{i % 50}" for i in range(1000)], dtype="string")
    first, second = bucket_of(ids, 8), bucket_of(ids.iloc[::-1].reset_index(drop=True), 8)
    frame = pd.DataFrame({"job": ids, "bucket": first})
    assert frame.groupby("job")["bucket"].nunique().max() == 1
    assert sorted(first) == sorted(second)


def test_partition_accounts_for_every_record(tmp_path: Path) -> None:
    records = [
        {"job_id": "a", "ts": "2025-06-01T10:00:00Z", "event": "job_created"},
        {"job_id": "a", "ts": "2025-06-01T10:00:00", "event": "succeeded"},
        {"job_id": "b", "ts": "2025-06-01T10:00:00Z", "event": "job_created"},
    ]
    folder = write_log(tmp_path / "logs", records)
    partition = partition_events([folder], tmp_path / "buckets", 4, policy=load_policy())
    assert partition.accepted == 2
    assert len(partition.rejected) == 1
    bill = rftcost.bill(folder, buckets=4)
    assert bill.log is not None
    assert bill.log.counts() == {"records_read": 3, "accepted": 2, "duplicates": 0, "rejected": 1}
    assert bill.job("a").status == "invalid"


@pytest.fixture(scope="module")
def parquet_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated jobs in a Parquet file of many row groups, with a duplicate and a bad
    record far from the start (their lines must survive being read in pieces)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rftcost.simulate import simulate_jobs

    events = simulate_jobs(n_jobs=60, seed=8)
    events = pd.concat([events, events.iloc[[5]]], ignore_index=True)  # a duplicate
    events["event"] = events["event"].astype("string")
    events.loc[len(events) - 40, "event"] = "no_such_event"
    path = tmp_path_factory.mktemp("parquet") / "events.parquet"
    table = pa.Table.from_pandas(events, preserve_index=False)
    # Microsecond timestamps: Spark does not read Parquet's nanosecond ones.
    pq.write_table(table, path, row_group_size=700, coerce_timestamps="us")
    return path


def test_worker_processes_and_row_group_units_give_the_same_bill(
    parquet_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rftcost.buckets

    def outcome(bill: rftcost.Bill) -> tuple[Any, ...]:
        assert bill.log is not None
        rejected = bill.log.rejected[["line", "reason"]].to_dict("records")
        duplicates = bill.log.duplicates["line"].tolist()
        return bill.to_dict(), bill.log.counts(), rejected, duplicates

    expected = outcome(rftcost.bill(parquet_log, buckets=None))
    assert expected[1]["rejected"] == 1
    assert expected[1]["duplicates"] == 1
    assert expected[2][0]["line"] > 700  # not in the first row group
    # Units of a few row groups, and few rows per row group written: many pieces.
    monkeypatch.setattr(rftcost.buckets, "_UNIT_ROWS", 2000)
    monkeypatch.setattr(rftcost.buckets, "_GROUP_ROWS", 1500)
    assert len(rftcost.buckets._units([parquet_log], 2000)) > 3
    assert outcome(rftcost.bill(parquet_log, buckets=3)) == expected
    assert outcome(rftcost.bill(parquet_log, buckets=5, workers=2)) == expected


def test_a_bucket_holds_only_its_own_job_ids(parquet_log: Path, tmp_path: Path) -> None:
    from rftcost.buckets import _read_bucket

    partition = partition_events([parquet_log], tmp_path / "b", 4, policy=load_policy())
    for number in range(4):
        events = _read_bucket(sorted((tmp_path / "b" / f"{number:05d}").glob("*.parquet")))
        ids = events["job_id"]
        # Every job id of a chunk in every bucket's dictionary made each bucket as large
        # as the whole log's set of jobs.
        assert set(ids.cat.categories) == set(ids.astype(str))
        assert (bucket_of(ids, 4) == number).all()
    assert partition.accepted == pq_rows(parquet_log) - 1


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def test_workers_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from rftcost.buckets import auto_buckets, available_workers

    monkeypatch.setenv("RFTCOST_WORKERS", "3")
    assert available_workers() == 3
    monkeypatch.setenv("RFTCOST_WORKERS", "many")
    with pytest.raises(rftcost.RftcostError, match="RFTCOST_WORKERS"):
        available_workers()
    for setting in ("0", "-3"):  # as --workers: one process or more
        monkeypatch.setenv("RFTCOST_WORKERS", setting)
        with pytest.raises(rftcost.RftcostError, match="RFTCOST_WORKERS"):
            available_workers()
    monkeypatch.delenv("RFTCOST_WORKERS")
    assert 1 <= available_workers() <= 4
    assert auto_buckets(["sample_logs"]) is None  # small: in memory


@pytest.mark.parametrize(
    "options",
    [
        {"workers": 0},
        {"workers": -1},
        {"workers": "2"},
        {"buckets": 0},
        {"buckets": True},
        {"buckets": 2.5},
        {"engine": "duckdb"},
        {"engine": "PANDAS"},
    ],
)
def test_options_bill_cannot_use_are_refused_naming_them(options: dict[str, Any]) -> None:
    from rftcost.errors import InputError

    with pytest.raises(InputError, match=next(iter(options))):
        rftcost.bill(Path(__file__).parent.parent / "sample_logs", **options)


def test_spark_bill_equals_the_in_memory_bill(spark: Any, tmp_path: Path) -> None:
    from hypothesis import find
    from hypothesis import strategies as st

    # A handful of random logs in one Spark session keeps Spark time well under a minute.
    samples = [find(logs(max_jobs=6), lambda r, n=n: len(r) > 10 * n) for n in range(1, 4)]
    records = [
        {
            **record,
            "job_id": f"{record['job_id']}-{index}",
            "event_id": f"{index}-{record['event_id']}",
        }
        for index, sample in enumerate(samples)
        for record in sample
    ]
    del st
    folder = write_log(tmp_path / "logs", records)
    (folder / "budgets.csv").write_text("team,period,amount\nsearch,2025-06,10\n")
    local = rftcost.bill(folder, buckets=None)
    expected = local.to_dict()
    for buckets in (1, 4):
        remote = rftcost.bill(folder, engine="spark", buckets=buckets)
        assert remote.to_dict() == expected
        # The file a folder scan skips is noted on every path.
        assert remote.log is not None and local.log is not None
        assert remote.log.notes == local.log.notes and len(local.log.notes) == 1


def test_missing_pyspark_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pyspark(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pyspark"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    from rftcost.engines.spark import spark_session

    with pytest.raises(rftcost.RftcostError, match=r"pip install 'rftcost\[spark\]'"):
        spark_session()


def test_cli_streams_buckets_with_the_same_results(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rftcost.cli import app

    runner = CliRunner()
    sample = Path(__file__).parent.parent / "sample_logs"
    whole = json.loads(runner.invoke(app, ["bill", str(sample), "-f", "json"]).output)
    streamed = json.loads(
        runner.invoke(app, ["bill", str(sample), "-f", "json", "--buckets", "3"]).output
    )
    assert streamed["totals"] == whole["totals"]
    assert streamed["records"] == whole["records"]
    assert sorted(streamed["jobs"], key=lambda j: j["job_id"]) == whole["jobs"]
    whole_csv = runner.invoke(app, ["bill", str(sample), "-f", "csv"]).output.splitlines()
    bucket_csv = runner.invoke(app, ["bill", str(sample), "-f", "csv", "--buckets", "4"]).output
    lines = bucket_csv.splitlines()
    assert lines[0] == whole_csv[0]
    assert sorted(lines[1:]) == sorted(whole_csv[1:])


def test_explain_on_a_log_billed_in_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import rftcost.buckets
    from rftcost.cli import app

    runner = CliRunner()
    sample = str(Path(__file__).parent.parent / "sample_logs")
    job = "ftjob-demo-pause-resume"
    whole = runner.invoke(app, ["explain", sample, "--job", job, "-f", "json"])
    assert whole.exit_code == 0, whole.output
    # As if the log were large: only the job's bucket is billed, with its intervals.
    monkeypatch.setattr(rftcost.buckets, "AUTO_BUCKET_EVENTS", 10)
    monkeypatch.setenv("RFTCOST_WORKERS", "1")
    bucketed = runner.invoke(app, ["explain", sample, "--job", job, "-f", "json"])
    assert bucketed.exit_code == 0, bucketed.output
    assert json.loads(bucketed.output) == json.loads(whole.output)
    missing = runner.invoke(app, ["explain", sample, "--job", "ftjob-nope"])
    assert missing.exit_code == 2
    # A slim bill has no intervals: explain says so instead of showing idle time.
    slim = rftcost.bill(sample, buckets=3)
    with pytest.raises(rftcost.RftcostError, match=r"rftcost.bill\(\.\.\., keep_timeline=True\)"):
        rftcost.explain(slim, job)


def test_an_error_in_a_worker_reaches_the_caller_intact(parquet_log: Path, tmp_path: Path) -> None:
    from rftcost.errors import UnreadableFileError

    bad = tmp_path / "budget.csv"
    bad.write_text("team,amount\nsearch,100\n")
    with pytest.raises(UnreadableFileError) as caught:
        rftcost.bill([parquet_log, bad], buckets=2, workers=2)
    assert caught.value.path == str(bad)
    assert str(caught.value).startswith(f"{bad}: not an event log")


def test_errors_survive_pickling() -> None:
    import pickle

    from rftcost import errors

    samples = [
        errors.UnreadableFileError("cannot parse file", path="a.csv", line=4, value="x"),
        errors.InvoiceError("bad amount", path="inv.csv", line=2, column="amount", value="1,0"),
        errors.PolicyError("unknown key", source="p.toml"),
        errors.PriceNotFoundError("gpt-4o", "2025-01-01T00:00:00Z"),
        errors.PlanError("bad plan"),
    ]
    for error in samples:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.__dict__ == error.__dict__


def test_spark_reads_parquet_with_the_same_lines(spark: Any, parquet_log: Path) -> None:
    local = rftcost.bill(parquet_log, buckets=None)
    remote = rftcost.bill(parquet_log, engine="spark", buckets=3)
    assert remote.to_dict() == local.to_dict()
    assert local.log is not None and remote.log is not None
    assert remote.log.counts() == local.log.counts()
    columns = ["source", "line", "reason"]
    assert (
        remote.log.rejected[columns].values.tolist() == local.log.rejected[columns].values.tolist()
    )
    assert remote.log.duplicates["line"].tolist() == local.log.duplicates["line"].tolist()


def test_an_audit_of_a_log_billed_in_buckets_finds_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rftcost.buckets
    from rftcost.audit import audit_invoice

    root = Path(__file__).parent.parent
    logs = [root / "sample_logs", root / "examples/audit/broken-job.jsonl"]
    invoice = root / "sample_logs/invoice-planted.csv"

    def findings(report: Any) -> list[tuple[str, str, str]]:
        return sorted((f.kind, f.job_id or "", str(f.difference)) for f in report.findings)

    expected = findings(audit_invoice(invoice, rftcost.bill(logs, buckets=None)))
    assert {kind for kind, _, _ in expected} >= {"queue_time_billed", "lost_work_billed"}
    # As if the logs were large: audit_invoice bills them in buckets, keeping the time line.
    monkeypatch.setattr(rftcost.buckets, "AUTO_BUCKET_EVENTS", 10)
    assert findings(audit_invoice(invoice, logs)) == expected


# --- every path reads as in memory: OpenAI exports, hostile logs, reading notes ----------

CASES = SHARED_CASES
FIXTURES = Path(__file__).parent / "fixtures"
needs_cases = pytest.mark.skipif(
    not CASES.is_dir(), reason=f"the shared cases folder {CASES} is not present"
)


def export_folders() -> list[Path]:
    """Folders of OpenAI exports: real-world cases (issue 12), fixtures, a hostile one."""
    realworld = sorted(
        p
        for p in (CASES / "realworld").glob("*")
        if p.is_dir() and any(f.suffix == ".json" for f in p.rglob("*.json"))
    )
    found = [
        *realworld,
        *sorted((FIXTURES / "openai").glob("*")),
        CASES / "hostile/openai-bad-metric",
    ]
    return [p for p in found if p.is_dir()]


def hostile_logs(folder: Path) -> list[Path]:
    """The hostile canonical logs of cases/hostile (issue 13), and more of each kind
    written here: a truncated JSON line, a line and a CSV row that are not UTF-8, names
    that are not text, a CSV with a byte-order mark and a row longer than its header."""
    folder.mkdir(parents=True, exist_ok=True)
    shared = sorted(
        p
        for kind in ("csv", "timestamps", "names", "injection")
        for p in (CASES / "hostile" / kind).glob("*")
        if p.suffix in (".jsonl", ".csv") and p.name != "invoice.csv"
    )
    base = [
        {
            "job_id": "j1",
            "ts": "2025-06-02T08:00:00Z",
            "event": "job_created",
            "team": "a",
            "model": "o4-mini-2025-04-16",
        },
        {"job_id": "j1", "ts": "2025-06-02T08:00:00Z", "event": "phase_start", "phase": "rollout"},
        {"job_id": "j1", "ts": "2025-06-02T09:00:00Z", "event": "phase_end", "phase": "rollout"},
        {"job_id": "j1", "ts": "2025-06-02T09:00:00Z", "event": "succeeded"},
    ]
    lines = [json.dumps(r).encode() for r in base]
    for job in ("j2", "j3", "j4"):
        lines += [json.dumps({**r, "job_id": job}).encode() for r in base]
    lines.insert(5, b'{"job_id": "j2", "ts": "2025-06-02T08:30:00Z", "event": "phase_st')
    lines.insert(9, b'{"job_id": "j3", "ts": "2025-06-02T08:30:00Z", "event": "caf\xe9"}')
    lines.append(json.dumps({**base[0], "job_id": True}).encode())
    lines.append(json.dumps({**base[0], "job_id": "j5", "team": {"a": 1}}).encode())
    mixed = folder / "mixed.jsonl"
    mixed.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    rows = pd.DataFrame([{**r, "job_id": job} for job in ("c1", "c2") for r in base])
    text = rows.to_csv(index=False).encode().splitlines()
    text.insert(3, text[2] + b",extra,fields")
    text.insert(5, text[4].replace(b"c1", b"c\xe91"))
    long_rows = folder / "long-rows.csv"
    long_rows.write_bytes(b"\xef\xbb\xbf" + b"\n".join(text) + b"\n")
    return [*shared, mixed, long_rows]


def reading(bill: rftcost.Bill) -> tuple[Any, ...]:
    """What a path made of a log: the bill document, the counts, the rejected records and
    the jobs' reading problems."""
    assert bill.log is not None
    columns = ["source", "line", "reason"]
    rejected = sorted(map(tuple, bill.log.rejected[columns].astype(str).values.tolist()))
    problems = sorted(map(tuple, bill.log.problems.astype(str).values.tolist()))
    return bill.to_dict(), bill.log.counts(), rejected, problems


@pytest.mark.parametrize("folder", export_folders(), ids=lambda p: p.name)
def test_openai_exports_bill_the_same_in_buckets(folder: Path) -> None:
    # Exports are imported together in buckets too: a job's snapshots merge across
    # files, and the import's reasons (incomplete export, unreadable grader usage) make
    # the job's amount unknown on this path as well (issue 12, kind 15).
    local = rftcost.bill(folder, buckets=None)
    assert reading(rftcost.bill(folder, buckets=2)) == reading(local)


@needs_cases
def test_a_rejected_export_record_makes_its_job_unknown_in_buckets() -> None:
    bill = rftcost.bill(CASES / "hostile/openai-bad-metric", buckets=3)
    assert bill.log is not None and bill.log.counts()["rejected"] == 1
    assert bill.totals().invalid_jobs == 1


@needs_cases
def test_hostile_logs_bill_the_same_in_buckets(tmp_path: Path) -> None:
    for path in hostile_logs(tmp_path / "hostile"):
        local = rftcost.bill(path, buckets=None)
        assert reading(rftcost.bill(path, buckets=2)) == reading(local), path
    paris = CASES / "hostile/timestamps/date-only.jsonl"
    expected = reading(rftcost.bill(paris, buckets=None, assume_tz="Europe/Paris"))
    assert reading(rftcost.bill(paris, buckets=2, assume_tz="Europe/Paris")) == expected


def notes_folder(tmp_path: Path) -> Path:
    """A folder with a log, a budget, a .json that is no export, and a link out of it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "other.jsonl").write_text(
        (CASES / "hostile/baseline.jsonl").read_text().replace("ftjob-", "ftjob-linked-")
    )
    folder = tmp_path / "logs"
    folder.mkdir()
    shutil.copy(CASES / "hostile/baseline.jsonl", folder / "baseline.jsonl")
    (folder / "budgets.csv").write_text("team,period,amount\nsearch,2025-06,10\n")
    (folder / "settings.json").write_text('{"theme": "dark"}\n')
    (folder / "link.jsonl").symlink_to(outside / "other.jsonl")
    return folder


@needs_cases
def test_buckets_carry_the_same_reading_notes(tmp_path: Path) -> None:
    folder = notes_folder(tmp_path)
    local = rftcost.bill(folder, buckets=None)
    assert local.log is not None
    assert any("a link out of the folder, not followed" in n for n in local.log.notes)
    assert any("not an OpenAI export, skipped" in n for n in local.log.notes)
    assert reading(rftcost.bill(folder, buckets=2)) == reading(local)
    followed = rftcost.bill(folder, buckets=None, follow_links=True)
    assert len(followed.jobs) == 2 * len(local.jobs)
    assert reading(rftcost.bill(folder, buckets=2, follow_links=True)) == reading(followed)


@needs_cases
def test_cli_streamed_buckets_give_the_same_document_for_exports(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rftcost.cli import app

    runner = CliRunner()
    logs = [str(CASES / "realworld/04-guide-metrics-event"), str(CASES / "hostile/baseline.jsonl")]
    whole = runner.invoke(app, ["bill", *logs, "-f", "json"])
    streamed = runner.invoke(app, ["bill", *logs, "-f", "json", "--buckets", "2", "--workers", "2"])
    assert whole.exit_code == streamed.exit_code == 0, streamed.output
    expected, found = json.loads(whole.output), json.loads(streamed.output)
    found["jobs"] = sorted(found["jobs"], key=lambda job: job["job_id"])
    expected["jobs"] = sorted(expected["jobs"], key=lambda job: job["job_id"])
    assert found == expected
    assert expected["totals"]["invalid_jobs"] >= 1  # the export's job: amount unknown


@needs_cases
def test_follow_links_on_every_command_that_reads_logs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rftcost.cli import app

    runner = CliRunner()
    commands = [
        ["bill"],
        ["validate"],
        ["explain"],
        ["audit"],
        ["spend"],
        ["chart", "spend"],
        ["report"],
        ["export", "focus"],
        ["calibrate"],
    ]
    for command in commands:
        shown = runner.invoke(app, [*command, "--help"], terminal_width=200)
        assert "--follow-links" in shown.output, command
    folder = notes_folder(tmp_path)
    left = json.loads(runner.invoke(app, ["bill", str(folder), "-f", "json"]).output)
    followed = runner.invoke(app, ["bill", str(folder), "-f", "json", "--follow-links"])
    assert followed.exit_code == 0, followed.output
    document = json.loads(followed.output)
    assert len(document["jobs"]) == 2 * len(left["jobs"])
    assert any("a link out of the folder" in n for n in left["notes"])
    assert not any("a link out of the folder" in n for n in document["notes"])
    checked = runner.invoke(app, ["validate", str(folder), "--follow-links", "-f", "json"])
    assert checked.exit_code == 0, checked.output
    assert (
        json.loads(checked.output)["records"]["records_read"] == 2 * left["records"]["records_read"]
    )


@needs_cases
def test_spark_reads_exports_and_hostile_logs_as_in_memory(spark: Any, tmp_path: Path) -> None:
    # One Spark session for every kind: exports (imported together on the driver),
    # hostile JSON Lines and CSV (parsed by the local reader in Spark tasks), and a
    # folder's reading notes.
    exports = [CASES / "hostile/openai-bad-metric", CASES / "realworld/04-guide-metrics-event"]
    exports += [FIXTURES / "openai/paused"]
    for path in [*exports, *hostile_logs(tmp_path / "hostile"), notes_folder(tmp_path)]:
        local = rftcost.bill(path, buckets=None)
        assert reading(rftcost.bill(path, engine="spark", buckets=3)) == reading(local), path
    paris = CASES / "hostile/timestamps/date-only.jsonl"
    expected = reading(rftcost.bill(paris, buckets=None, assume_tz="Europe/Paris"))
    found = rftcost.bill(paris, engine="spark", buckets=2, assume_tz="Europe/Paris")
    assert reading(found) == expected
    # A location Spark lists itself (s3://…; here file://) is read as bytes by the same
    # reader, its records named by that location.
    mixed = tmp_path / "hostile/mixed.jsonl"
    local = rftcost.bill(mixed, buckets=None)
    remote = rftcost.bill(mixed.as_uri(), engine="spark", buckets=2)
    assert remote.log is not None and local.log is not None
    assert (remote.totals(), remote.log.counts()) == (local.totals(), local.log.counts())
    assert set(remote.log.rejected["line"]) == set(local.log.rejected["line"])
    with pytest.raises(rftcost.RftcostError, match=r"nope\.jsonl: Spark cannot read it"):
        rftcost.bill((tmp_path / "nope.jsonl").as_uri(), engine="spark")
    corrupt = CASES / "hostile/csv/corrupt.parquet"
    with pytest.raises(rftcost.RftcostError, match=r"corrupt\.parquet: not a readable Parquet"):
        rftcost.bill(corrupt, engine="spark")


@pytest.mark.parametrize("source", [None, 123, [pd.DataFrame()], ["a.jsonl", 1]])
def test_bill_refuses_what_it_cannot_read_naming_it(source: object) -> None:
    with pytest.raises(rftcost.InputError, match=r"reads paths .* not "):
        rftcost.bill(source)  # type: ignore[arg-type]


def test_an_unknown_job_is_an_input_error_and_a_key_error() -> None:
    from rftcost.errors import UnknownJobError

    bill = rftcost.bill(Path(__file__).parent.parent / "sample_logs" / "2025-05.jsonl")
    with pytest.raises(UnknownJobError) as raised:
        bill.job("ftjob-nope")
    assert isinstance(raised.value, KeyError) and isinstance(raised.value, rftcost.InputError)
    assert str(raised.value) == (
        f"job 'ftjob-nope' is not in the logs ({len(bill.jobs)} jobs read);"
        " Bill.job_ids() lists them"
    )
