"""rftcost.buckets: jobs hashed to buckets on disk, billed one bucket at a time, combined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from builders import JobLog, frame_of

from rftcost.buckets import (
    AUTO_BUCKET_EVENTS,
    auto_buckets,
    bucket_of,
    combine_bills,
    estimated_events,
    iter_bucket_bills,
    partition_events,
    slim_bill,
)
from rftcost.engines import bill
from rftcost.policy import Policy, load_policy

IDS = ["ftjob-a", "ftjob-b", "ftjob-c", "ftjob-abc123", "x"]


def records() -> list[dict[str, Any]]:
    """Ten jobs of every kind: pauses, failures after a checkpoint, grader tokens, data
    sharing, an invalid job; a duplicate record and a record that is rejected."""
    logs = []
    for i in range(10):
        job = JobLog(f"ftjob-{i}").created(team=["ads", "search"][i % 2], data_sharing=i % 3 == 0)
        job.phase("queued", minutes=5 + i).add("phase_start", phase="rollout").at(minutes=17 * i)
        job.add("checkpoint_saved", step=i).add(
            "grader_usage", grader_model="o3-2025-04-16", input_tokens=1000 * i, output_tokens=7
        )
        job.at(seconds=1234 + i).add("phase_end", phase="rollout")
        if i % 4 == 1:
            job.add("paused").at(minutes=10).add("resumed").phase("grading", minutes=i)
        job.add(["succeeded", "failed", "cancelled"][i % 3])
        logs.append(job)
    logs.append(JobLog("ftjob-broken").created().add("phase_end", phase="rollout"))
    rows = frame_of(*logs).to_dict("records")
    rows = [{k: v for k, v in r.items() if v == v} for r in rows]  # no NaN fields
    return [*rows, rows[3], {"job_id": "ftjob-0", "ts": "yesterday", "event": "paused"}]


@pytest.fixture(scope="module")
def log_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("logs")
    rows = records()
    half = len(rows) // 2
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:half]))
    pd.DataFrame(rows[half:]).to_csv(folder / "b.csv", index=False)
    return folder


def four_decimals() -> Policy:
    policy = load_policy()
    rounding = policy.rounding.model_copy(update={"hours_decimals": 4})
    return policy.model_copy(update={"name": "four", "rounding": rounding})


# --- bucket_of --------------------------------------------------------------------------------


def test_bucket_of_is_a_stable_hash_of_the_id() -> None:
    # Pinned: a job must land in the same bucket on every run, machine and version.
    assert bucket_of(pd.Series(IDS), 8).tolist() == [5, 2, 6, 4, 5]
    assert bucket_of(pd.Series(IDS), 3).tolist() == [0, 0, 0, 0, 2]


def test_bucket_of_depends_on_the_id_alone() -> None:
    expected = dict(zip(IDS, bucket_of(pd.Series(IDS), 8), strict=True))
    many = pd.Series([IDS[i % 5] for i in range(100)] + ["other", "more"], dtype="string")
    for series in (many, many.iloc[::-1], many.astype("category"), many.astype(object)):
        got = bucket_of(series.reset_index(drop=True), 8)
        for job, bucket in zip(series, got, strict=True):
            if job in expected:
                assert bucket == expected[job]
    assert bucket_of(pd.Series([], dtype="string"), 8).tolist() == []


# --- partition and combine: the same bill as in memory ----------------------------------------


@pytest.mark.parametrize("policy", [load_policy(), four_decimals()], ids=["default", "hours4"])
def test_partition_and_combine_give_the_in_memory_bill(
    log_folder: Path, tmp_path: Path, policy: Policy
) -> None:
    expected = bill(log_folder, policy=policy, buckets=None)
    # ftjob-broken, and ftjob-0 whose rejected record makes its amount unknown.
    assert expected.totals().invalid_jobs == 2 and expected.totals().jobs == 11
    partition = partition_events([log_folder], tmp_path / "parts", 3, policy=policy)
    assert partition.buckets == 3 and len(partition.rejected) == 1
    assert partition.accepted == len(records()) - 1  # every record written or rejected
    parts = list(iter_bucket_bills(partition, policy))
    assert 1 < len(parts) <= 3
    assert sum(len(p.jobs) for p in parts) == len(expected.jobs)  # disjoint jobs
    combined = combine_bills(parts)
    assert combined.totals() == expected.totals()
    document, memory = combined.to_dict(), expected.to_dict()
    for key in ("totals", "jobs", "policy"):
        assert document[key] == memory[key], key


def test_a_slim_bill_keeps_the_amounts_and_drops_the_pieces(log_folder: Path) -> None:
    full = bill(log_folder, buckets=None, keep_timeline=True)
    slim = slim_bill(full, keep_intervals=False)
    assert slim.totals() == full.totals()
    assert slim.timeline.pieces.empty and slim.timeline.intervals.empty
    assert not full.timeline.pieces.empty
    assert not slim_bill(full, keep_intervals=True).timeline.intervals.empty


def test_combine_needs_a_bill() -> None:
    with pytest.raises(ValueError, match="nothing to combine"):
        combine_bills([])


# --- how many buckets ---------------------------------------------------------------------------


def test_a_small_log_is_billed_in_memory(log_folder: Path) -> None:
    assert 0 < estimated_events([log_folder]) < AUTO_BUCKET_EVENTS
    assert auto_buckets([log_folder]) is None


def test_a_large_log_gets_buckets(monkeypatch: pytest.MonkeyPatch, log_folder: Path) -> None:
    import rftcost.buckets

    monkeypatch.setattr(rftcost.buckets, "estimated_events", lambda paths: 10_000_000)
    assert auto_buckets([log_folder]) == 8  # about 1.25M events a bucket
    assert auto_buckets([log_folder], workers=2) == 16  # each worker holds a bucket


# --- repeats: set aside chunk by chunk, accounted for as in memory ----------------------------


@pytest.mark.parametrize("name", ["log.jsonl.gz", "log.csv"])
def test_repeated_records_are_not_spooled_and_bill_as_in_memory(tmp_path: Path, name: str) -> None:
    """A log made mostly of the same records repeated (and a conflict, an event id reused
    with other content): each chunk spools one copy of a record, its repeats go to a
    small file of (source, line, job_id, event_id); the bill, the counts and the very
    duplicate records are those of the in-memory reading."""
    import gzip

    from rftcost.events.readers import read_events

    rows = records()
    step = {"job_id": "ftjob-1", "ts": "2025-06-01T01:00:05Z", "event": "step_completed",
            "event_id": "evt-step", "step": 1}  # fmt: skip
    conflict = {**step, "step": 2}
    log = [*rows[:5], *[step] * 400, *rows[5:], *[rows[7]] * 300, conflict, *[step] * 50]
    path = tmp_path / name
    if name.endswith(".csv"):
        pd.DataFrame(log).to_csv(path, index=False)
    else:
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in log).encode()))
    memory = read_events(path)
    partition = partition_events([path], tmp_path / "parts", 3, policy=load_policy(),
                                 chunk_rows=128)  # fmt: skip
    assert partition.accepted == len(log) - 1  # the record with ts "yesterday" is rejected
    spooled = sum(
        len(pd.read_parquet(part)) for part in (tmp_path / "parts").rglob("part-*.parquet")
    )
    assert spooled < len(log) - 700  # the repeats are not in the buckets' events
    bills = list(iter_bucket_bills(partition, load_policy()))
    combined = bill(path, buckets=3)
    assert combined.log is not None
    assert combined.log.counts() == memory.counts()
    assert combined.log.counts()["duplicates"] >= 748
    assert sum(b.log.counts()["duplicates"] for b in bills if b.log) == len(memory.duplicates)
    columns = ["source", "line", "job_id", "event_id"]

    def records_of(frame: pd.DataFrame) -> list[tuple[str, ...]]:
        return sorted(map(tuple, frame[columns].astype(str).values.tolist()))

    assert records_of(combined.log.duplicates) == records_of(memory.duplicates)
    assert records_of(combined.log.rejected.assign(event_id="")) == records_of(
        memory.rejected.assign(event_id="")
    )
    in_memory = bill(path, buckets=None)
    assert combined.to_dict() == in_memory.to_dict()
    for frame in (b.log.duplicates for b in bills if b.log):  # in reading order per bucket
        assert frame["line"].is_monotonic_increasing


@pytest.mark.parametrize("output_format", ["table", "markdown"])
def test_invalid_jobs_are_listed_in_job_order_on_every_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output_format: str
) -> None:
    from builders import cli

    records = []
    for name in ("e", "a", "z9", "c", "m", "b", "d"):  # ends a phase it never started
        records += [
            {"job_id": f"ftjob-{name}", "ts": "2025-06-01T08:00:00Z", "event": "job_created"},
            {
                "job_id": f"ftjob-{name}",
                "ts": "2025-06-01T08:10:00Z",
                "event": "phase_end",
                "phase": "rollout",
            },
        ]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    at_once = cli(capsys, "bill", str(log), "-f", output_format)
    assert at_once[0] == 0 and at_once[1].index("ftjob-a:") < at_once[1].index("ftjob-z9:")
    for buckets in ("2", "3", "7"):
        assert cli(capsys, "bill", str(log), "-f", output_format, "--buckets", buckets) == at_once
