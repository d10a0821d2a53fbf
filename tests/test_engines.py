"""Every path gives the same cents: in memory, in hash buckets on disk, and on Spark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import logs

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


@settings(
    max_examples=15,
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
def spark() -> Any:
    pytest.importorskip("pyspark", reason="the Spark engine needs pyspark (rftcost[spark])")
    from rftcost.engines.spark import spark_session

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
    expected = rftcost.bill(folder, buckets=None).to_dict()
    for buckets in (1, 4):
        assert rftcost.bill(folder, engine="spark", buckets=buckets).to_dict() == expected


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
