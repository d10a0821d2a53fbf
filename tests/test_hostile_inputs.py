"""Hostile and broken canonical logs and policies (issue 13): no crash, no silent wrong bill.

Each test holds a whole kind (every container: JSON Lines, CSV, Parquet, gzip), with
the right value asserted; the CLI tests run the real entry point on the files of
``cases/hostile`` and assert the exit code, the one line naming file, line or key
and value, and the bill.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import JobLog, cli
from shared_cases import SHARED_CASES

import rftcost
from rftcost.errors import InputError, PolicyError, UnreadableFileError
from rftcost.events.readers import read_file_chunks
from rftcost.money import RoundingMode, exact_context, round_decimal

HOSTILE = SHARED_CASES / "hostile"
needs_cases = pytest.mark.skipif(not HOSTILE.exists(), reason="hostile cases not present")


def write_jsonl(path: Path, records: list[dict[str, Any]], *, prefix: str = "") -> Path:
    text = prefix + "".join(json.dumps(r) + "\n" for r in records)
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def one_hour(job_id: str = "j", **created: Any) -> list[dict[str, Any]]:
    log = JobLog(job_id).created(**created).phase("rollout", hours=1).add("succeeded")
    return log.events


def rejected(log: rftcost.EventLog) -> list[tuple[int, str | None, str | None, str]]:
    frame = log.rejected
    return [
        (int(r.line), None if pd.isna(r.job_id) else r.job_id, r.column, r.reason)
        for r in frame.itertuples()
    ]


def bill_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = cli(capsys, "bill", *args, "-f", "json")
    assert code != 2, err
    return code, json.loads(out)


# --- byte-order marks ----------------------------------------------------------------


def test_a_byte_order_mark_is_not_part_of_the_first_record(tmp_path: Path) -> None:
    names = ["log.jsonl", "log.jsonl.gz", "log.csv", "log.csv.gz"]
    plain, marked = tmp_path / "plain", tmp_path / "marked"
    for folder, prefix in ((plain, ""), (marked, "\ufeff")):
        folder.mkdir()
        for name in names:  # one job per container
            records = one_hour(name, team="support", data_sharing=True)
            if ".csv" in name:
                data = (prefix + pd.DataFrame(records).to_csv(index=False)).encode("utf-8")
                (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
            else:
                write_jsonl(folder / name, records, prefix=prefix)
    # Read through the folder scan: a marked CSV header must still look like a log.
    bills = [rftcost.bill(folder) for folder in (plain, marked)]
    assert [b.log.counts()["rejected"] for b in bills if b.log] == [0, 0]
    for bill in bills:
        assert {(bill.job(n).team, bill.job(n).total_amount) for n in names} == {
            ("support", Decimal("50.00"))
        }


# --- lines that cannot be read -------------------------------------------------------


def test_a_csv_row_longer_than_the_header_is_rejected_and_shifts_nothing(tmp_path: Path) -> None:
    frame = pd.DataFrame(one_hour("a") + one_hour("b"))
    lines = frame.to_csv(index=False).splitlines()
    lines[4] += ",extra"  # record 4 of the file (job a's succeeded), one field too many
    lines[6] += ",x,y,z"  # job b's phase_start, three too many
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n")
    for chunk_rows in (None, 2):
        chunks = list(
            read_file_chunks(
                path, assume_tz=None, policy=rftcost.load_policy(None), chunk_rows=chunk_rows
            )
        )
        events = pd.concat([c[0] for c in chunks], ignore_index=True)
        bad = pd.concat([c[1] for c in chunks], ignore_index=True)
        assert sorted(zip(bad["line"], bad["job_id"], strict=True)) == [(5, "a"), (7, "b")]
        assert set(events["job_id"].astype(str)) == {"a", "b"}
        assert set(events["event"].astype(str)) <= {"job_created", "phase_start", "phase_end"} | {
            "succeeded"
        }
        assert sorted(events["line"]) == [2, 3, 4, 6, 8, 9]
    bill = rftcost.bill(path)
    assert bill.job("a").status == "invalid" and bill.job("a").total_amount is None
    assert bill.job("b").status == "invalid"


@pytest.mark.parametrize("name", ["log.jsonl", "log.jsonl.gz"])
def test_a_truncated_json_line_makes_its_job_invalid(tmp_path: Path, name: str) -> None:
    good = one_hour("a") + one_hour("b")
    path = tmp_path / name
    text = "".join(json.dumps(r) + "\n" for r in good)
    text += '{"job_id": "b", "ts": "2025-06-01T09:30:00Z", "event": "grader_us\n'
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    log = rftcost.read_events(path)
    assert rejected(log) == [(9, "b", None, rejected(log)[0][3])]
    assert rejected(log)[0][3].startswith("not JSON")
    bill = rftcost.bill(log)
    assert bill.job("a").total_amount == Decimal("100.00")
    assert bill.job("b").status == "invalid" and bill.job("b").total_amount is None


# --- timestamps ----------------------------------------------------------------------


def test_a_date_without_time_is_rejected_even_with_a_zone(tmp_path: Path) -> None:
    """A date names no time of day: --assume-tz names a zone, not a time. It was read as
    that day's midnight, which billed 24.00 h between two dates (an invented bill)."""
    records = [
        {"job_id": "j", "ts": "2025-06-02", "event": "phase_start", "phase": "rollout"},
        {"job_id": "j", "ts": "2025-06-03", "event": "phase_end", "phase": "rollout"},
        {"job_id": "j", "ts": "2025-06-03", "event": "succeeded"},
        {"job_id": "j", "ts": "2025-W23", "event": "succeeded"},
    ]
    path = write_jsonl(tmp_path / "d.jsonl", records)
    for zone in (None, "Europe/Paris"):
        log = rftcost.read_events(path, assume_tz=zone)
        assert [r[2] for r in rejected(log)] == ["ts"] * 4
        assert {r[3] for r in rejected(log)} == {"a date without a time of day"}
        assert rftcost.bill(log).job("j").status == "invalid"
    # A time of day, even midnight, is a time: with a zone it is read.
    records = [{**r, "ts": f"{r['ts']}T00:00:00"} for r in records[:3]]
    zoned = rftcost.read_events(write_jsonl(tmp_path / "t.jsonl", records), assume_tz="UTC")
    assert zoned.counts()["rejected"] == 0


def test_a_parquet_date32_column_is_a_date_without_time(tmp_path: Path) -> None:
    table = pa.table(
        {
            "job_id": ["j", "j", "j"],
            "ts": pa.array([dt.date(2025, 6, 2), dt.date(2025, 6, 3)] * 1 + [dt.date(2025, 6, 3)]),
            "event": ["phase_start", "phase_end", "succeeded"],
            "phase": ["rollout", "rollout", None],
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    assert rftcost.read_events(tmp_path / "d.parquet").counts()["rejected"] == 3
    zoned = rftcost.read_events(tmp_path / "d.parquet", assume_tz="UTC")
    assert zoned.counts()["rejected"] == 3


def test_a_timestamp_beyond_nanoseconds_is_rejected_and_the_run_goes_on(tmp_path: Path) -> None:
    stamps: list[object] = [
        "0001-06-02T08:00:00Z",
        "1677-01-01T00:00:00Z",
        "2263-01-01T00:00:00+02:00",
        "9999-12-31T23:59:59Z",
        "1677-01-01T00:00:00.123456789Z",
        10**20,
        -(10**20),
        1e20,
        "100000000000000000000",
        "99999999999",
    ]
    records = one_hour("ok")
    for number, ts in enumerate(stamps):
        records += [{"job_id": f"bad-{number}", "ts": ts, "event": "job_created"}]
        records += one_hour(f"bad-{number}")
    log = rftcost.read_events(write_jsonl(tmp_path / "t.jsonl", records))
    assert [(r[0], r[1], r[2]) for r in rejected(log)] == [
        (5 + 5 * n, f"bad-{n}", "ts") for n in range(len(stamps))
    ]
    assert all("out of range" in r[3] for r in rejected(log))
    bill = rftcost.bill(log)
    assert bill.job("ok").total_amount == Decimal("100.00")
    assert {bill.job(f"bad-{n}").status for n in range(len(stamps))} == {"invalid"}


def test_parquet_timestamps_beyond_nanoseconds_are_rejected(tmp_path: Path) -> None:
    stamps = [dt.datetime(1, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 1, 1, tzinfo=dt.UTC)]
    table = pa.table(
        {
            "job_id": ["j", "j"],
            "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "event": ["job_created", "succeeded"],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    log = rftcost.read_events(tmp_path / "t.parquet")
    assert [r[2] for r in rejected(log)] == ["ts", "ts"]
    assert all("out of range" in r[3] for r in rejected(log))


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_parquet_timestamps_beyond_the_years_python_writes_are_rejected(
    tmp_path: Path, unit: str
) -> None:
    """Years 33658 and -1199 in a zoned column: rejecting them failed to write the value
    (pandas cannot format it) and ended the run with NotImplementedError."""
    per_second = {"s": 1, "ms": 10**3, "us": 10**6}[unit]
    table = pa.table(
        {
            "job_id": ["j", "j", "j", "j"],
            "ts": pa.array(
                [0, 10**12 * per_second, -(10**11) * per_second, None],
                pa.timestamp(unit, tz="UTC"),
            ),
            "event": ["job_created", "succeeded", "cancelled", "paused"],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    log = rftcost.read_events(tmp_path / "t.parquet")
    reasons = [(r[2], "out of range" in r[3]) for r in rejected(log)]
    assert reasons == [("ts", True), ("ts", True), ("ts", False)]
    values = log.rejected["value"]
    assert values.iloc[:2].str.contains(" since 1970-01-01").all()
    assert pd.isna(values.iloc[2]) or values.iloc[2] == ""  # missing: no count shown


# --- numbers -------------------------------------------------------------------------


def test_a_count_beyond_64_bits_is_too_large_not_negative(tmp_path: Path) -> None:
    cases = [("input_tokens", 10**30), ("output_tokens", 2**64), ("step", 2**63)]
    cases += [("input_tokens", 1e30), ("cached_input_tokens", 2**53 + 1)]
    usage = {
        "job_id": "j",
        "ts": "2025-06-01T08:30:00Z",
        "event": "grader_usage",
        "grader_model": "gpt-4.1",
        "input_tokens": 10,
        "output_tokens": 1,
        "step": 1,
    }
    records = [*one_hour()] + [{**usage, column: value} for column, value in cases]
    log = rftcost.read_events(write_jsonl(tmp_path / "n.jsonl", records))
    assert [(r[0], r[2]) for r in rejected(log)] == [(5 + n, c) for n, (c, _) in enumerate(cases)]
    assert all("too large" in r[3] for r in rejected(log))


def test_a_parquet_uint64_count_beyond_int64_is_too_large(tmp_path: Path) -> None:
    table = pa.table(
        {
            "job_id": ["j"],
            "ts": ["2025-06-01T08:00:00Z"],
            "event": ["grader_usage"],
            "grader_model": ["gpt-4.1"],
            "input_tokens": pa.array([2**64 - 1], pa.uint64()),
            "output_tokens": pa.array([1], pa.uint64()),
        }
    )
    pq.write_table(table, tmp_path / "u.parquet")
    log = rftcost.read_events(tmp_path / "u.parquet")
    assert [(r[2], "too large" in r[3]) for r in rejected(log)] == [("input_tokens", True)]


# --- names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [("job_id", {"a": 1}), ("job_id", True), ("team", {"a": 1}), ("model", False), ("team", [1])],
)
def test_a_name_that_is_not_text_is_rejected(tmp_path: Path, column: str, value: object) -> None:
    records = one_hour()
    records[0] = {**records[0], column: value}
    log = rftcost.read_events(write_jsonl(tmp_path / "n.jsonl", records))
    assert [(r[0], r[2]) for r in rejected(log)] == [(1, column)]
    assert "not a name" in rejected(log)[0][3]
    names = set(log.events["job_id"].astype(str)) | set(log.events["team"].dropna().astype(str))
    assert not names & {"{'a': 1}", "True", "False", "[1]"}
    # The job's own record is lost: the job is invalid (unless the id itself was bad,
    # then the record belongs to no job and the job has no job_created at all).
    status = rftcost.bill(log).job("j").status
    assert status == ("invalid" if column != "job_id" else "succeeded")


def test_a_binary_parquet_job_id_is_decoded_or_rejected(tmp_path: Path) -> None:
    table = pa.table(
        {
            "job_id": pa.array([b"ftjob-a", b"\xff\xfe", b"ftjob-a"], pa.binary()),
            "ts": ["2025-06-01T08:00:00Z", "2025-06-01T08:00:00Z", "2025-06-01T09:00:00Z"],
            "event": ["phase_start", "phase_start", "succeeded"],
            "phase": ["rollout", "rollout", None],
        }
    )
    pq.write_table(table, tmp_path / "b.parquet")
    log = rftcost.read_events(tmp_path / "b.parquet")
    assert [(r[0], r[1], r[2]) for r in rejected(log)] == [(2, None, "job_id")]
    assert set(log.events["job_id"].astype(str)) == {"ftjob-a"}


# --- job_created that disagree -------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "first", "second"),
    [("data_sharing", True, False), ("model", "o4-mini", "o3"), ("team", "search", "ads")],
)
def test_job_created_records_that_disagree_make_the_job_invalid(
    column: str, first: object, second: object
) -> None:
    log = JobLog("j").created(**{column: first}).at(minutes=1).created(**{column: second})
    log.phase("rollout", hours=1).add("succeeded")
    job = rftcost.bill(log.frame()).job("j")
    assert job.status == "invalid" and job.total_amount is None
    assert any(column in p and str(first) in p and str(second) in p for p in job.problems)


def test_job_created_records_that_complete_each_other_are_one_job() -> None:
    log = JobLog("j").created(team="search").at(minutes=1).created(data_sharing=True)
    log.phase("rollout", hours=1).add("succeeded")
    job = rftcost.bill(log.frame()).job("j")
    assert (job.status, job.team, job.total_amount) == ("succeeded", "search", Decimal("50.00"))


# --- a job restarted after a failure (R4, R5) ----------------------------------------


def test_a_job_resumed_after_a_failure_bills_each_segment() -> None:
    log = JobLog("j").created()
    log.add("phase_start", phase="rollout").at(hours=1).add("checkpoint_saved", step=5)
    log.at(minutes=30).add(
        "grader_usage",
        grader_model="gpt-4.1",
        input_tokens=1_000_000,
        cached_input_tokens=200_000,
        output_tokens=100_000,
    )
    log.at(minutes=30).add("failed")  # 2 h, checkpoint after 1 h: 1 h lost with its tokens
    log.at(hours=1).add("resumed").add("phase_start", phase="rollout").at(minutes=30)
    log.add(
        "grader_usage",
        grader_model="gpt-4.1",
        input_tokens=1_000_000,
        cached_input_tokens=200_000,
        output_tokens=100_000,
    )
    log.at(hours=1).add("phase_end", phase="rollout").add("succeeded")
    job = rftcost.bill(log.frame()).job("j")
    assert job.status == "succeeded"
    assert [(c.event, c.billed_hours, c.amount) for c in job.charges] == [
        ("failed", Decimal("1.00"), Decimal("100.00")),
        ("succeeded", Decimal("1.50"), Decimal("152.50")),  # 150.00 compute + 2.50 tokens
    ]
    assert job.total_amount == Decimal("252.50")
    assert job.lost_seconds == 3600


def test_a_job_resumed_after_a_failure_and_still_running_is_running() -> None:
    log = JobLog("j").created().phase("rollout", hours=1).add("failed")
    log.at(minutes=10).add("resumed").phase("rollout", hours=1)
    job = rftcost.bill(log.frame()).job("j")
    assert job.status == "running"
    assert job.total_amount == Decimal("0.00")  # no checkpoint: the failed segment is lost
    assert job.accrued_amount == Decimal("100.00")


def test_a_billing_event_after_a_failure_without_resume_is_still_invalid() -> None:
    log = JobLog("j").created().phase("rollout", hours=1).add("failed")
    log.phase("rollout", hours=1).add("succeeded")
    assert rftcost.bill(log.frame()).job("j").status == "invalid"


# --- exact decimals ------------------------------------------------------------------


def _policy(tmp_path: Path, body: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(f'name = "p"\nextends = "openai-rft"\n{body}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("rate", "mode", "expected"),
    [
        ("100.004999999999999999999999999999999", "half_up", "100.00"),
        ("100.005000000000000000000000000000001", "half_up", "100.01"),
        ("100.005", "half_even", "100.00"),
        ("100.000000000000000000000000000000001", "up", "100.01"),
    ],
)
def test_a_long_rate_is_rounded_once_by_the_policy(
    tmp_path: Path, rate: str, mode: str, expected: str
) -> None:
    policy = _policy(
        tmp_path, f'[hourly_rates]\n"o4-mini" = "{rate}"\n[rounding]\nmoney_mode = "{mode}"'
    )
    job = rftcost.bill(pd.DataFrame(one_hour()), policy=policy).job("j")
    assert (job.billed_hours, job.compute_amount) == (Decimal("1.00"), Decimal(expected))


def test_a_long_discount_rate_is_exact(tmp_path: Path) -> None:
    policy = _policy(tmp_path, '[data_sharing_discount]\nrate = "0.33333333333333333333333333333"')
    job = rftcost.bill(pd.DataFrame(one_hour(data_sharing=True)), policy=policy).job("j")
    assert job.discount_amount == Decimal("33.33")


def test_round_decimal_needs_no_default_context() -> None:
    long = Decimal("100.004999999999999999999999999999999")
    assert round_decimal(long, 2, RoundingMode.HALF_UP) == Decimal("100.00")
    huge = Decimal("1" * 40 + ".005")
    assert round_decimal(huge, 2, RoundingMode.HALF_UP) == Decimal("1" * 40 + ".01")
    with decimal.localcontext(exact_context(long, Decimal("1.00"))):
        assert long * Decimal("1.00") == Decimal("100.00499999999999999999999999999999900")


# --- policies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "shown"),
    [
        ('[hourly_rates]\n"o4-mini" = "abc"', "hourly_rates", "'abc'"),
        ('[hourly_rates]\n"o4-mini" = "1,000.00"', "hourly_rates", "'1,000.00'"),
        ('[hourly_rates]\n"o4-mini" = true', "hourly_rates", "True"),
        ('[hourly_rates]\n"o4-mini" = "1e999"', "hourly_rates", "'1e999'"),
        ('[hourly_rates]\n"o4-mini" = "NaN"', "hourly_rates", "'NaN'"),
        ('[cap]\nper_job_amount = "five"', "cap.per_job_amount", "'five'"),
        ('[data_sharing_discount]\nrate = "x"', "data_sharing_discount.rate", "'x'"),
        ('currency = "<b>"', "currency", "'<b>'"),
        ('currency = "usd"', "currency", "'usd'"),
        ('currency = "' + "A" * 500 + '"', "currency", "AAA…"),
    ],
)
def test_a_bad_policy_value_is_one_error_naming_file_key_and_value(
    tmp_path: Path, body: str, key: str, shown: str
) -> None:
    path = _policy(tmp_path, body)
    with pytest.raises(PolicyError) as caught:
        rftcost.load_policy(path)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400
    assert str(path) in message and key in message and shown in message


def test_a_policy_that_is_not_utf8_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(PolicyError, match=r"latin\.toml: not UTF-8"):
        rftcost.load_policy(path)


def test_every_packaged_policy_still_loads() -> None:
    for name in rftcost.list_policies():
        assert len(rftcost.load_policy(name).currency) == 3


# --- files, folders, zones -----------------------------------------------------------


def test_an_unknown_zone_is_one_input_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "l.jsonl", one_hour())
    with pytest.raises(InputError, match=r"--assume-tz: unknown time zone.*Mars/Olympus"):
        rftcost.read_events(path, assume_tz="Mars/Olympus")


def test_a_corrupt_parquet_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UnreadableFileError, match=r"broken\.parquet"):
        rftcost.read_events(path)


def test_a_folder_scan_does_not_follow_a_link_out_of_the_folder(tmp_path: Path) -> None:
    outside = write_jsonl(tmp_path / "elsewhere.jsonl", one_hour("secret"))
    folder = tmp_path / "logs"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", one_hour("a"))
    (folder / "link.jsonl").symlink_to(outside)
    write_jsonl(folder / "inside-target.jsonl", one_hour("b"))
    (folder / "inside-link.jsonl").symlink_to(folder / "inside-target.jsonl")
    log = rftcost.read_events(folder)
    assert set(log.events["job_id"].astype(str)) == {"a", "b"}
    assert any("link.jsonl" in n and "not followed" in n for n in log.notes)
    followed = rftcost.read_events(folder, follow_links=True)
    assert "secret" in set(followed.events["job_id"].astype(str))


@pytest.mark.parametrize(("name", "kind"), [("may.jsonl", "gzip"), ("may.csv", "gzip"),
                                           ("may.jsonl", "Parquet")])  # fmt: skip
def test_gzip_or_parquet_data_named_as_text_is_one_clear_error(
    tmp_path: Path, name: str, kind: str
) -> None:
    """Every line was a rejected record: total unknown, exit 0, and a header 'not UTF-8'."""
    frame = pd.DataFrame(one_hour("g"))
    path = tmp_path / name
    if kind == "gzip":
        text = (
            frame.to_csv(index=False)
            if name.endswith(".csv")
            else frame.to_json(orient="records", lines=True)
        )
        path.write_bytes(gzip.compress(text.encode()))
    else:
        frame.to_parquet(path)
    with pytest.raises(UnreadableFileError, match=f"{kind} data in a file named as text"):
        rftcost.read_events(path)


def test_a_link_to_a_folder_is_noted_or_followed_never_silently_left(tmp_path: Path) -> None:
    """rglob never entered a linked folder and said nothing: its logs vanished from the
    bill, validate said OK, and --follow-links did not read them either."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_jsonl(elsewhere / "x.jsonl", one_hour("secret"))
    folder = tmp_path / "logs"
    (folder / "sub").mkdir(parents=True)
    write_jsonl(folder / "sub" / "a.jsonl", one_hour("a"))
    (folder / "ext").symlink_to(elsewhere)
    (folder / "again").symlink_to(folder / "sub")  # inside: its files are read once
    (elsewhere / "loop").symlink_to(elsewhere)  # a loop ends
    log = rftcost.read_events(folder)
    assert set(log.events["job_id"].astype(str)) == {"a"}
    assert any(n.endswith("ext: a link out of the folder, not followed") for n in log.notes)
    followed = rftcost.read_events(folder, follow_links=True)
    assert set(followed.events["job_id"].astype(str)) == {"a", "secret"}
    assert followed.counts()["duplicates"] == 0


def test_a_broken_link_in_a_folder_is_noted_and_fails_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", one_hour("a"))
    (folder / "dangling.jsonl").symlink_to(folder / "nonexist")
    (folder / "loop.jsonl").symlink_to(folder / "loop.jsonl")
    note = "a link that cannot be read, skipped"
    for follow in (False, True):
        log = rftcost.read_events(folder, follow_links=follow)
        assert set(log.events["job_id"].astype(str)) == {"a"}
        assert sorted(n for n in log.notes if n.endswith(note)) == [
            f"{folder / 'dangling.jsonl'}: {note}",
            f"{folder / 'loop.jsonl'}: {note}",
        ]
    # Every path that bills says it: in memory and in buckets.
    for extra in ((), ("--buckets", "2")):
        code, doc = bill_json(capsys, str(folder), *extra)
        assert code == 0 and sum(n.endswith(note) for n in doc["notes"]) == 2, doc["notes"]
    code, out, _ = cli(capsys, "validate", str(folder))
    assert code == 1 and "dangling.jsonl: " + note in out and "OK:" not in out


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes")
def test_a_log_that_is_not_a_regular_file_is_refused_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(UnreadableFileError, match="not a regular file"):
            rftcost.read_events(path)
        for command in ("bill", "validate"):
            code, _, err = cli(capsys, command, str(path))
            assert code == 2 and err.count("\n") == 1 and str(path) in err, err
            assert "not a regular file" in err


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('[cap]\nper_job_amount = "0"', r"cap\.per_job_amount: a cap must be at least 0\.01"),
        ('[cap]\nper_job_amount = "0.004"', r"at least 0\.01, got '0\.004'"),
        ('[cap]\nper_job_amount = "0.00"', r"at least 0\.01"),
        ('[cap]\nper_job_amount = "-5"', r"cap\.per_job_amount: must be a non-negative"),
        ('[phases.aliases]\nrollout = "queued"', "alias shadows the built-in phase 'rollout'"),
        ('[phases.aliases]\nqueued = "rollout"', "alias shadows the built-in phase 'queued'"),
    ],
)
def test_a_policy_that_would_make_money_vanish_is_refused(
    tmp_path: Path, table: str, words: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f'extends = "openai-rft"\n{table}\n')
    with pytest.raises(PolicyError, match=words) as error:
        rftcost.load_policy(path)
    assert str(path) in str(error.value)


def test_the_smallest_cap_and_a_new_alias_still_load(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        'extends = "openai-rft"\n[cap]\nper_job_amount = "0.01"\n'
        '[phases.aliases]\nsampling = "rollout"\n'
    )
    policy = rftcost.load_policy(path)
    assert policy.cap.per_job_amount == Decimal("0.01")
    assert policy.phases.canonical("sampling") == "rollout"


def test_a_rejected_value_is_a_short_excerpt(tmp_path: Path) -> None:
    records = one_hour()
    records[1] = {**records[1], "phase": "x" * 10_000}
    text = "".join(json.dumps(r) + "\n" for r in records) + '{"job_id": "j", ' + "y" * 5000 + "\n"
    path = tmp_path / "l.jsonl"
    path.write_text(text)
    log = rftcost.read_events(path)
    values = log.rejected["value"].tolist()
    assert len(values) == 2 and all(len(v) <= 80 and v.endswith("…") for v in values)


# --- the command line on the hostile cases -------------------------------------------


@needs_cases
def test_cli_bom_and_no_bom_bill_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    results = [bill_json(capsys, str(HOSTILE / "csv" / n)) for n in ("bom.jsonl", "nobom.jsonl")]
    assert [code for code, _ in results] == [0, 0]
    jobs = [doc["jobs"] for _, doc in results]
    assert jobs[0] == jobs[1]
    assert jobs[0][0]["total_amount"] == "52.50" and jobs[0][0]["team"] == "support"
    assert [doc["records"]["rejected"] for _, doc in results] == [0, 0]


def test_a_byte_order_mark_starting_a_later_line_is_read_past(tmp_path: Path) -> None:
    """Two files with byte-order marks joined with ``cat``: the second's first record was
    rejected ("Unexpected UTF-8 BOM") and its job made invalid."""
    one = "".join(json.dumps(r) + "\n" for r in one_hour())
    other = one.replace('"j"', '"k"')
    path = tmp_path / "joined.jsonl"
    path.write_text("\ufeff" + one + "\ufeff" + other, encoding="utf-8")
    bill = rftcost.bill(path)
    assert bill.log is not None and bill.log.counts()["rejected"] == 0
    assert bill.job("j").total_amount == bill.job("k").total_amount is not None


@needs_cases
def test_cli_long_csv_row_is_rejected_with_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = HOSTILE / "csv" / "long-rows.csv"
    code, doc = bill_json(capsys, str(path), "--strict")
    assert code == 1
    assert [j["job_id"] for j in doc["jobs"]] == ["ftjob-a"]  # no job named after an event
    job = doc["jobs"][0]
    assert job["status"] == "invalid" and job["total_amount"] is None
    assert job["problems"] == [f"record rejected at {path}:2: 17 fields, the header has 15"]
    assert doc["records"] == {"records_read": 5, "accepted": 4, "duplicates": 0, "rejected": 1}
    # Billed in buckets, the file is read in chunks: the same bill.
    code, bucketed = bill_json(capsys, str(path), "--strict", "--buckets", "2")
    assert code == 1 and bucketed["jobs"] == doc["jobs"]
    code, out, _ = cli(capsys, "validate", str(path))
    assert code == 1 and f"{path}:2" in out and "ftjob-a,2025-06-02T08:00:00Z" in out


@needs_cases
def test_cli_corrupt_parquet_is_one_line_naming_the_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = HOSTILE / "csv" / "corrupt.parquet"
    for command in ("bill", "validate"):
        code, out, err = cli(capsys, command, str(path))
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and str(path) in err and "Arrow" not in err


@needs_cases
def test_cli_date_only_is_rejected_even_with_a_zone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = HOSTILE / "timestamps" / "date-only.jsonl"
    code, doc = bill_json(capsys, str(path), "--strict")
    assert code == 1 and doc["records"]["rejected"] == 5
    # Every record of the job rejected: the job is known, its amount is not.
    assert [(j["job_id"], j["status"], j["total_amount"]) for j in doc["jobs"]] == [
        ("ftjob-a", "invalid", None)
    ]
    code, out, _ = cli(capsys, "validate", str(path))
    assert f"{path}:1" in out and "'2025-06-02'" in out and "a date without a time of day" in out
    assert "--assume-tz" not in out  # a zone would not give it a time
    code, doc = bill_json(capsys, str(path), "--assume-tz", "UTC")
    assert doc["records"]["rejected"] == 5 and doc["jobs"][0]["total_amount"] is None
    code, out, err = cli(capsys, "bill", str(path), "--assume-tz", "Mars/Olympus")
    assert code == 2 and err.count("\n") == 1 and "--assume-tz" in err and "Mars/Olympus" in err


@needs_cases
@pytest.mark.parametrize(
    ("name", "value"),
    [("year0001.jsonl", "0001-06-02T08:00:00Z"), ("epoch-1e20.csv", "100000000000000000000")],
)
def test_cli_timestamps_beyond_range_are_rejected_and_the_run_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, value: str
) -> None:
    path = HOSTILE / "timestamps" / name
    healthy = tmp_path / "healthy.jsonl"
    healthy.write_text((HOSTILE / "baseline.jsonl").read_text().replace("ftjob-a", "ftjob-b"))
    code, doc = bill_json(capsys, str(path), str(healthy))
    assert code == 0 and doc["records"]["rejected"] == 5
    # The healthy log beside it bills as it does alone; the job of the rejected records
    # is invalid, its amount unknown (all its records are rejected).
    assert [(j["job_id"], j["total_amount"]) for j in doc["jobs"]] == [
        ("ftjob-a", None),
        ("ftjob-b", "102.50"),
    ]
    code, out, _ = cli(capsys, "validate", str(path))
    first_line = 1 if name.endswith(".jsonl") else 2
    assert f"{path}:{first_line}" in out and value in out and "out of range" in out


@needs_cases
@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("rate-abc.toml", "hourly_rates", "'abc'"),
        ("currency-markup.toml", "currency", "<img src=x"),
    ],
)
def test_cli_bad_policy_is_one_line_naming_file_key_and_value(
    capsys: pytest.CaptureFixture[str], name: str, key: str, value: str
) -> None:
    policy = HOSTILE / "policy" / name
    code, out, err = cli(capsys, "bill", str(HOSTILE / "baseline.jsonl"), "--policy", str(policy))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(policy) in err and key in err and value in err
    assert "InvalidOperation" not in err and "Error" not in err.split(":")[0]


@pytest.mark.parametrize("name", ["log.jsonl", "log.csv"])
def test_a_line_that_is_not_utf8_is_rejected_with_its_job(tmp_path: Path, name: str) -> None:
    records = one_hour("a") + one_hour("b")
    if name.endswith(".csv"):
        data = pd.DataFrame(records).to_csv(index=False).encode()
    else:
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
    lines = data.split(b"\n")
    line = 6 if name.endswith(".jsonl") else 7  # job b's phase_start (CSV: after the header)
    lines[line - 1] = lines[line - 1].replace(b"rollout", b"roll\xffout")
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines))
    log = rftcost.read_events(path)
    assert [(r[0], r[1], r[3]) for r in rejected(log)] == [(line, "b", "not UTF-8 text")]
    bill = rftcost.bill(log)
    assert bill.job("a").total_amount == Decimal("100.00")
    assert bill.job("b").status == "invalid"


@pytest.mark.parametrize("name", ["log.csv", "log.csv.gz"])
@pytest.mark.parametrize("byte", [b"\xff", b"\xed\xb2\x80"])  # a stray byte; a surrogate's bytes
def test_a_csv_header_that_is_not_utf8_is_one_error_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, byte: bytes
) -> None:
    """Not the codec's words ("surrogates not allowed") from pandas' column index."""
    data = pd.DataFrame(one_hour("a", team="search")).to_csv(index=False).encode()
    data = data.replace(b"team", b"te" + byte + b"am", 1)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(UnreadableFileError, match="not UTF-8") as error:
        rftcost.read_events(path)
    assert error.value.line == 1 and "\ufffd" in str(error.value.value)
    code, out, err = cli(capsys, "bill", str(path))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"{path}:1: the header holds a column name that is not UTF-8 text" in err
    assert "codec" not in err and "surrogates" not in err


@pytest.mark.parametrize(
    ("field", "escape", "job"),
    [
        ("team", "\\udc80", "b"),  # a lone low half in any text: the record, its job invalid
        ("team", "\\ud83d", "b"),  # a lone high half
        ("job_id", "\\udc80", "b\ufffd"),  # in the id: that job, named writably, invalid
    ],
)
def test_a_lone_surrogate_escape_rejects_its_record_not_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, escape: str, job: str
) -> None:
    records = one_hour("a") + one_hour("b", team="TEAM")
    lines = [json.dumps(r) for r in records]
    at = next(i for i, r in enumerate(records) if r["job_id"] == "b")  # b's job_created
    spelled = {"team": f'"team": "{escape}TEAM"', "job_id": f'"job_id": "b{escape}"'}
    lines[at] = lines[at].replace(spelled[field].replace(escape, ""), spelled[field])
    assert escape in lines[at]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n")
    log = rftcost.read_events(path)
    reason = f"not valid text: a lone surrogate escape {escape}"
    assert rejected(log) == [(at + 1, job, None, reason)]
    bill = rftcost.bill(log)
    assert bill.job("a").total_amount == Decimal("100.00")
    assert bill.job(job).status == "invalid"
    code, out, err = cli(capsys, "bill", str(path))
    assert code == 0 and "a lone surrogate escape" in out and "Traceback" not in err


def test_a_surrogate_pair_escape_is_one_character(tmp_path: Path) -> None:
    records = one_hour(team="TEAM")
    path = tmp_path / "l.jsonl"
    text = "".join(json.dumps(r) + "\n" for r in records)
    path.write_text(text.replace("TEAM", "\\ud83d\\ude00"))
    bill = rftcost.bill(path)
    assert bill.job("j").team == "\U0001f600"
    assert bill.job("j").total_amount == Decimal("100.00")


def test_a_json_string_with_a_unicode_line_separator_is_one_record(tmp_path: Path) -> None:
    records = one_hour(team="line\u2028separated")
    path = tmp_path / "l.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    bill = rftcost.bill(path)
    assert bill.job("j").team == "line\u2028separated"
    assert bill.job("j").total_amount == Decimal("100.00")


@pytest.mark.parametrize("name", ["log.jsonl", "log.csv"])
def test_a_utf16_file_is_one_error_naming_it(tmp_path: Path, name: str) -> None:
    records = one_hour()
    text = (
        pd.DataFrame(records).to_csv(index=False)
        if name.endswith(".csv")
        else "".join(json.dumps(r) + "\n" for r in records)
    )
    path = tmp_path / name
    path.write_bytes(text.encode("utf-16"))  # with its byte-order mark
    with pytest.raises(UnreadableFileError, match=rf"{name}: UTF-16 or UTF-32 text"):
        rftcost.read_events(path)


def test_a_repeated_column_is_refused_in_one_line_naming_it(tmp_path: Path) -> None:
    """A CSV header with data_sharing twice billed by the first copy alone (202.50 or 102.50
    by the columns' order, validate OK); a Parquet file said Arrow's own words."""
    path = tmp_path / "dup.csv"
    path.write_text(
        "job_id,ts,event,job_id\n"
        "a,2025-06-02T08:00:00Z,job_created,b,extra\n"  # a long row: the slow path
        "a,2025-06-02T08:00:00Z,succeeded,b\n"
    )
    with pytest.raises(UnreadableFileError, match="names column 'job_id' twice") as caught:
        rftcost.read_events(path)
    assert caught.value.line == 1
    table = pa.Table.from_arrays(
        [pa.array(["a"]), pa.array(["2025-06-02T08:00:00Z"]), pa.array(["x"]), pa.array(["b"])],
        names=["job_id", "ts", "event", "job_id"],
    )
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(UnreadableFileError, match="names column 'job_id' twice") as caught:
        rftcost.read_events(tmp_path / "dup.parquet")
    assert "dup.parquet" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("year", ["1725", "1825", "1925", "1969"])
def test_a_typed_year_before_1970_is_a_rejected_record_not_a_negative_bill(
    tmp_path: Path, year: str
) -> None:
    """One phase_start with a typo'd year: 300 years of nanoseconds overflowed int64 and
    billed about -$249 million (validate said OK). Times before 1970 are now rejected, so
    the job is invalid and its amount unknown, on every path."""
    records = one_hour("a")
    start = next(r for r in records if r["event"] == "phase_start")
    start["ts"] = year + start["ts"][4:]
    path = write_jsonl(tmp_path / "typo.jsonl", records)
    for buckets in (None, 2):
        bill = rftcost.bill(path, buckets=buckets)
        assert bill.job("a").status == "invalid"
        assert bill.job("a").total_amount is None
        assert bill.totals().total_amount == Decimal("0.00")  # nothing known, nothing summed
    assert "out of range (years 1970-2262)" in rejected(rftcost.read_events(path))[0][3]


def test_a_job_spanning_more_than_two_years_is_not_billed(tmp_path: Path) -> None:
    """A typo'd later year (2125 for 2025) made a job of a century, billed as such."""
    records = one_hour("a")
    end = next(r for r in records if r["event"] == "phase_end")
    end["ts"] = "2125" + end["ts"][4:]
    bill = rftcost.bill(write_jsonl(tmp_path / "century.jsonl", records))
    assert bill.job("a").status == "invalid"
    assert any("more than two years" in problem for problem in bill.job("a").problems)


def test_grader_tokens_that_add_up_beyond_int64_make_the_job_invalid(tmp_path: Path) -> None:
    """Each record within its bound (2**53 - 1 tokens), 1,100 of them: the int64 sums
    wrapped and the job billed -$4.6 million as succeeded."""
    records = one_hour("a", grader_model="gpt-4.1")
    start = next(r for r in records if r["event"] == "phase_start")
    usage = {
        "job_id": "a",
        "ts": start["ts"],
        "event": "grader_usage",
        "grader_model": "gpt-4.1",
        "input_tokens": 2**53 - 1,
        "output_tokens": 2**53 - 1,
    }
    records = [*records, *({**usage, "event_id": f"u{n}"} for n in range(1_100))]
    path = write_jsonl(tmp_path / "tokens.jsonl", records)
    for buckets in (None, 2):
        bill = rftcost.bill(path, buckets=buckets)
        assert bill.job("a").status == "invalid"
        assert any("2**62" in problem for problem in bill.job("a").problems)
        assert bill.job("a").total_amount is None


@pytest.mark.parametrize("ts", ["-0.5", "-1", -0.5, -1, "1969-12-31T23:59:59.999Z"])
def test_a_time_just_before_1970_is_rejected(tmp_path: Path, ts: object) -> None:
    records = [{"job_id": "a", "ts": ts, "event": "job_created"}, *one_hour("a")[1:]]
    log = rftcost.read_events(write_jsonl(tmp_path / "early.jsonl", records))
    assert [(line, column) for line, _, column, _ in rejected(log)] == [(1, "ts")]


def test_a_log_whose_file_name_is_not_utf8_is_one_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file name with a byte that is not UTF-8 (kept as a surrogate, ``\\udcff``) names
    every record of the file: refused with the name, not a UnicodeEncodeError from the
    records' source column (every command, a folder or the file named)."""
    name = os.fsdecode(b"log\xff.jsonl")
    try:
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in one_hour()))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system holds UTF-8 names only")
    with pytest.raises(UnreadableFileError, match="a file name that is not UTF-8 text") as error:
        rftcost.read_events(tmp_path)
    assert error.value.path == str(tmp_path / "log\ufffd.jsonl")
    code, out, err = cli(capsys, "bill", str(tmp_path))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "not UTF-8 text" in err and "codec" not in err and "Unicode" not in err


def test_a_parquet_text_column_that_is_not_utf8_rejects_its_records(tmp_path: Path) -> None:
    """Parquet does not check that a string column is UTF-8: such a value rejects its own
    record (its job invalid), not the file with the codec's words from Arrow."""
    frame = pd.DataFrame(one_hour("a", team="search") + one_hour("b", team="search"))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    at = frame.index[(frame["job_id"] == "b") & (frame["event"] == "job_created")][0]
    raw = [t.encode() if isinstance(t, str) else None for t in frame["team"]]
    raw[at] = b"sea\xffrch"  # b's team: bytes that are not UTF-8 in a string column
    as_bytes = pa.array(raw, pa.binary())
    not_utf8 = pa.Array.from_buffers(pa.string(), len(as_bytes), as_bytes.buffers())
    path = tmp_path / "log.parquet"
    pq.write_table(table.set_column(table.column_names.index("team"), "team", not_utf8), path)
    log = rftcost.read_events(path)
    assert [(r[0], r[1], r[3]) for r in rejected(log)] == [
        (at + 1, "b", "bytes that are not UTF-8 text, not a name")
    ]
    bill = rftcost.bill(log)
    assert bill.job("a").total_amount == Decimal("100.00")
    assert bill.job("b").status == "invalid"
