"""Every path gives the same cents: in memory, in hash buckets on disk, and on Spark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
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
    monkeypatch.delenv("RFTCOST_WORKERS")
    assert 1 <= available_workers() <= 4
    assert auto_buckets(["sample_logs"]) is None  # small: in memory


@pytest.fixture(scope="module")
def spark() -> Any:
    pytest.importorskip("pyspark", reason="the Spark engine needs pyspark (rftcost[spark])")
    from rftcost.engines.spark import java_found, spark_session

    if not java_found():
        pytest.skip("the Spark engine needs Java 17: no java on PATH and no JAVA_HOME")

    session = spark_session("local[2]")
    yield session
    session.stop()


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
    with pytest.raises(rftcost.RftcostError, match="keep_intervals"):
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
