"""The reader's guarantees (event-log.md): formats, timestamps, accounting, bad input."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from builders import JobLog

import rftcost
from rftcost.errors import UnreadableFileError


def simple_job(job_id: str = "ftjob-a") -> JobLog:
    log = JobLog(job_id).created(team="search", project="ranker")
    return log.phase("rollout", hours=1).add("succeeded")


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet"])
def test_every_container_bills_the_same(tmp_path: Path, suffix: str) -> None:
    frame = simple_job().frame()
    path = tmp_path / f"log{suffix}"
    if suffix.startswith(".jsonl"):
        text = frame.to_json(orient="records", lines=True)
        data = text.encode()
        path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    elif suffix.startswith(".csv"):
        frame.to_csv(path, index=False, compression="gzip" if suffix.endswith(".gz") else None)
    else:
        frame.assign(ts=pd.to_datetime(frame["ts"], utc=True)).to_parquet(path)
    bill = rftcost.bill(path)
    assert bill.job("ftjob-a").total_amount == Decimal("100.00")
    assert bill.log is not None and bill.log.counts()["rejected"] == 0


def test_folder_reads_every_supported_file_in_sorted_order(tmp_path: Path) -> None:
    events = simple_job().events
    write_jsonl(tmp_path / "b.jsonl", events[2:])
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "sub" / "a.jsonl", events[:2])
    (tmp_path / "notes.txt").write_text("ignored")
    log = rftcost.read_events(tmp_path)
    assert [Path(f).name for f in log.files] == ["b.jsonl", "a.jsonl"]
    assert rftcost.bill(log).job("ftjob-a").total_amount == Decimal("100.00")


def test_epoch_seconds_and_offsets_are_the_same_instant(tmp_path: Path) -> None:
    records = [
        {"job_id": "j", "ts": "2025-06-01T10:00:00+02:00", "event": "job_created"},
        {"job_id": "j", "ts": 1748764800, "event": "phase_start", "phase": "rollout"},
        {"job_id": "j", "ts": "1748768400.000", "event": "phase_end", "phase": "rollout"},
        {"job_id": "j", "ts": "2025-06-01T09:00:00Z", "event": "succeeded"},
    ]
    log = rftcost.read_events(write_jsonl(tmp_path / "l.jsonl", records))
    assert log.events["ts"].iloc[0] == log.events["ts"].iloc[1]
    assert rftcost.bill(log).job("j").billed_hours == Decimal("1.00")


def test_fractional_epoch_numbers_are_exact_to_the_microsecond(tmp_path: Path) -> None:
    """1748851200.75 as a JSON number (or a Parquet double) was off by up to 128 ns: a
    float of nanoseconds is past 2**53. 3617.5 s bills 1.01 h as text, ISO and CSV give it
    (R11), and a copy of a record written as a number in one export and as text in another
    is one record (event-log.md)."""
    start, end = 1748851200.75, 1748854818.25
    records = [
        {"job_id": "ep", "ts": start, "event": "job_created"},
        {"job_id": "ep", "ts": start, "event": "phase_start", "phase": "rollout"},
        {"job_id": "ep", "ts": end, "event": "phase_end", "phase": "rollout"},
        {"job_id": "ep", "ts": end, "event": "succeeded"},
        {"job_id": "ep", "ts": 1748853000.25, "event": "grader_usage", "grader_model": "gpt-4.1",
         "input_tokens": 1_000_000, "output_tokens": 0},
    ]  # fmt: skip
    numbers = write_jsonl(tmp_path / "numbers.jsonl", records)
    text = write_jsonl(tmp_path / "text.jsonl", [{**r, "ts": str(r["ts"])} for r in records])
    parquet = tmp_path / "doubles.parquet"
    pd.DataFrame(records).to_parquet(parquet)
    for sources in ([numbers], [text], [parquet], [numbers, text, parquet]):
        bill = rftcost.bill(sources)
        assert bill.job("ep").billed_hours == Decimal("1.01"), sources
        assert bill.job("ep").total_amount == Decimal("103.00"), sources
    assert rftcost.read_events([numbers, text]).counts()["duplicates"] == len(records)


def test_csv_files_joined_with_their_headers(tmp_path: Path) -> None:
    """``cat may.csv june.csv``: the second header was an invalid job named "job_id" (total
    unknown); in another column order, the rows after it were read in the wrong columns
    (the job billed without its end, as records of jobs named by their times)."""
    first = "job_id,ts,event,phase\nj1,2025-06-02T08:00:00Z,job_created,\n"
    first += "j1,2025-06-02T08:00:00Z,phase_start,rollout\n"
    same = tmp_path / "same.csv"
    same.write_text(
        first + "job_id,ts,event,phase\nj1,2025-06-02T09:00:00Z,phase_end,rollout\n"
        "j1,2025-06-02T09:00:00Z,succeeded,\n",
        encoding="utf-8",
    )
    for buckets in (None, 2):
        bill = rftcost.bill(same, buckets=buckets)
        assert bill.job("j1").total_amount == Decimal("100.00")
        assert bill.job_ids() == ["j1"]
    log = rftcost.read_events(same)
    assert log.counts() == {"records_read": 4, "accepted": 4, "duplicates": 0, "rejected": 0}
    # The second file kept its byte-order mark and quoted its names.
    bom = tmp_path / "bom.csv"
    bom.write_text(
        first + '\ufeff"job_id","ts","event","phase"\nj1,2025-06-02T09:00:00Z,phase_end,rollout\n'
        "j1,2025-06-02T09:00:00Z,succeeded,\n",
        encoding="utf-8",
    )
    assert rftcost.bill(bom).job_ids() == ["j1"]
    reordered = tmp_path / "reordered.csv"
    reordered.write_text(
        first + "ts,job_id,event,phase\n2025-06-02T09:00:00Z,j1,phase_end,rollout\n",
        encoding="utf-8",
    )
    with pytest.raises(UnreadableFileError) as refused:
        rftcost.read_events(reordered)
    assert refused.value.line == 4 and "another order" in str(refused.value)
    fewer = tmp_path / "fewer.csv"  # another file's header, of other columns
    fewer.write_text(
        first + "job_id,event,ts\nj1,phase_end,2025-06-02T09:00:00Z\n", encoding="utf-8"
    )
    with pytest.raises(UnreadableFileError, match="other columns"):
        rftcost.read_events(fewer)
    stray = tmp_path / "stray.csv"  # a row holding a name or two is a record, rejected
    stray.write_text(first + ",,team,\n", encoding="utf-8")
    assert rftcost.read_events(stray).counts()["rejected"] == 1


def test_lower_case_t_and_z_of_rfc_3339_are_read(tmp_path: Path) -> None:
    """RFC 3339 section 5.6 allows "t" and "z": such records were rejected."""
    records = [
        {"job_id": "l", "ts": "2025-06-02t08:00:00z", "event": "job_created"},
        {"job_id": "l", "ts": "2025-06-02T08:00:00z", "event": "phase_start", "phase": "rollout"},
        {"job_id": "l", "ts": "2025-06-02t09:00:00Z", "event": "phase_end", "phase": "rollout"},
        {"job_id": "l", "ts": "2025-06-02t09:00:00+00:00", "event": "succeeded"},
    ]
    bill = rftcost.bill(write_jsonl(tmp_path / "lower.jsonl", records))
    assert bill.job("l").total_amount == Decimal("100.00")
    assert bill.log is not None and bill.log.counts()["rejected"] == 0
    from rftcost.invoice_values import parse_times

    parsed, reasons = parse_times(pd.Series(["2025-06-02t09:00:00z"], dtype="string"), None)
    assert reasons.isna().all()
    assert parsed.iloc[0] == pd.Timestamp("2025-06-02T09:00:00Z").value
    # A date alone: its "-01" was read as a UTC offset, 2025-06 as midnight on 1 June.
    for dated in ("2025-06-01", "2025-06", "2025-7-11"):
        parsed, reasons = parse_times(pd.Series([dated], dtype="string"), "UTC")
        assert parsed.isna().all() and reasons.iloc[0] == "a date without a time of day"


def test_naive_timestamp_is_rejected_unless_a_zone_is_named(tmp_path: Path) -> None:
    records = [
        {"job_id": "j", "ts": "2025-06-01T10:00:00", "event": "phase_start", "phase": "rollout"},
        {"job_id": "j", "ts": "2025-06-01T11:00:00", "event": "succeeded"},
    ]
    path = write_jsonl(tmp_path / "naive.jsonl", records)
    log = rftcost.read_events(path)
    assert len(log.rejected) == 2
    first = log.rejected.iloc[0]
    assert (first["line"], first["column"], first["value"]) == (1, "ts", "2025-06-01T10:00:00")
    assert "--assume-tz" in first["reason"]
    bill = rftcost.bill(path)
    assert bill.job("j").status == "invalid"
    assert bill.job("j").total_amount is None
    zoned = rftcost.read_events(path, assume_tz="Europe/Paris")
    assert len(zoned.rejected) == 0
    assert zoned.events["ts"].iloc[0] == pd.Timestamp("2025-06-01T08:00:00Z").value


@pytest.mark.parametrize(
    ("record", "column", "reason"),
    [
        ({"event": "exploded"}, "event", "unknown event"),
        ({"event": "phase_start", "phase": "warmup"}, "phase", "unknown phase"),
        ({"event": "checkpoint_saved", "step": -1}, "step", "negative"),
        ({"event": "checkpoint_saved", "step": "x"}, "step", "not an integer"),
        ({"event": "checkpoint_saved"}, "step", "needs step"),
        (
            {
                "event": "grader_usage",
                "grader_model": "gpt-4.1",
                "input_tokens": -5,
                "output_tokens": 1,
            },
            "input_tokens",
            "negative",
        ),
        (
            {
                "event": "grader_usage",
                "grader_model": "gpt-4.1",
                "input_tokens": 5,
                "cached_input_tokens": 6,
                "output_tokens": 1,
            },
            "cached_input_tokens",
            "exceeds",
        ),
        ({"event": "job_created", "data_sharing": "maybe"}, "data_sharing", "true or false"),
        ({"event": "succeeded", "ts": "yesterday"}, "ts", "ISO 8601"),
        ({"event": "succeeded", "ts": 1748764800000}, "ts", "milliseconds"),
        ({"event": "succeeded", "job_id": ""}, "job_id", "missing job_id"),
    ],
)
def test_bad_records_are_rejected_with_file_line_and_reason(
    tmp_path: Path, record: dict[str, object], column: str, reason: str
) -> None:
    good = {"job_id": "j", "ts": "2025-06-01T10:00:00Z", "event": "job_created"}
    bad = {"job_id": "j", "ts": "2025-06-01T10:30:00Z", **record}
    path = write_jsonl(tmp_path / "bad.jsonl", [good, bad])
    log = rftcost.read_events(path)
    assert log.counts() == {"records_read": 2, "accepted": 1, "duplicates": 0, "rejected": 1}
    rejected = log.rejected.iloc[0]
    assert rejected["source"] == str(path)
    assert rejected["line"] == 2
    assert rejected["column"] == column
    assert reason in rejected["reason"]
    if bad["job_id"]:
        assert rftcost.bill(path).job("j").status == "invalid"


def test_unknown_phase_mapped_by_a_policy_alias(tmp_path: Path) -> None:
    policy_file = tmp_path / "p.toml"
    policy_file.write_text(
        'extends = "openai-rft"\nname = "mine"\n[phases.aliases]\nsampling = "rollout"\n'
    )
    log = JobLog("j").created().phase("sampling", hours=1).add("succeeded")
    bill = rftcost.bill(log.frame(), policy=policy_file)
    assert bill.policy.name == "mine"
    assert bill.job("j").total_amount == Decimal("100.00")


def test_unmatched_phase_end_makes_the_job_invalid() -> None:
    log = JobLog("j").created().add("phase_end", phase="rollout").at(hours=1).add("succeeded")
    job = rftcost.bill(log.frame()).job("j")
    assert job.status == "invalid"
    assert job.total_amount is None
    assert any("no open phase" in p for p in job.problems)


def test_step_going_backwards_without_rollback_is_invalid() -> None:
    log = JobLog("j").created().add("phase_start", phase="rollout")
    log.at(minutes=1).add("step_completed", step=2).at(minutes=1).add("step_completed", step=1)
    log.at(minutes=1).add("succeeded")
    job = rftcost.bill(log.frame()).job("j")
    assert job.status == "invalid"
    assert any("goes backwards" in p for p in job.problems)


def test_step_may_go_back_after_a_rollback() -> None:
    log = JobLog("j").created().add("phase_start", phase="rollout")
    log.at(minutes=1).add("checkpoint_saved", step=1).at(minutes=1).add("step_completed", step=2)
    log.at(minutes=1).add("rollback", step=1).add("step_completed", step=2)
    log.at(minutes=1).add("succeeded")
    assert rftcost.bill(log.frame()).job("j").status == "succeeded"


def test_billing_event_after_the_final_one_is_invalid() -> None:
    log = simple_job("j").at(minutes=5).add("cancelled")
    job = rftcost.bill(log.frame()).job("j")
    assert job.status == "invalid"
    assert any("after the job's final event" in p for p in job.problems)


def test_rollback_to_a_step_without_checkpoint_is_invalid() -> None:
    log = JobLog("j").created().add("phase_start", phase="rollout").at(hours=1)
    log.add("rollback", step=7).at(hours=1).add("succeeded")
    job = rftcost.bill(log.frame()).job("j")
    assert job.status == "invalid"


def test_duplicates_by_event_id_and_by_content(tmp_path: Path) -> None:
    events = simple_job().events
    with_ids = [{**e, "event_id": f"e{i}"} for i, e in enumerate(events)]
    write_jsonl(tmp_path / "a.jsonl", with_ids)
    write_jsonl(tmp_path / "b.jsonl", with_ids[1:])  # an overlapping export
    # No ids: full content, here that of a.jsonl's first record (which keeps its id).
    write_jsonl(tmp_path / "c.jsonl", [events[0], events[0]])
    log = rftcost.read_events(tmp_path)
    counts = log.counts()
    assert counts["duplicates"] == len(events) - 1 + 2
    assert log.events["event_id"].notna().all()
    assert counts["records_read"] == counts["accepted"] + counts["duplicates"] + counts["rejected"]
    assert rftcost.bill(log).job("ftjob-a").total_amount == Decimal("100.00")


def test_conflicting_duplicate_makes_the_job_invalid(tmp_path: Path) -> None:
    events = [{**e, "event_id": f"e{i}"} for i, e in enumerate(simple_job().events)]
    changed = {**events[-1], "ts": "2025-06-01T12:00:00Z"}
    path = write_jsonl(tmp_path / "a.jsonl", [*events, changed])
    bill = rftcost.bill(path)
    job = bill.job("ftjob-a")
    assert job.status == "invalid"
    assert any("conflicting duplicate" in p for p in job.problems)
    assert bill.log is not None and bill.log.counts()["rejected"] == 1


def test_malformed_json_line_is_rejected_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    lines = [json.dumps(e) for e in simple_job().events]
    lines.insert(1, '{"job_id": "ftjob-a", "ts": ')
    path.write_text("\n".join(lines) + "\n")
    log = rftcost.read_events(path)
    assert log.rejected.iloc[0]["line"] == 2
    assert "not JSON" in log.rejected.iloc[0]["reason"]
    assert len(log.events) == len(lines) - 1


@pytest.mark.parametrize(
    ("name", "content"),
    [("gone.jsonl", None), ("bad.parquet", b"not parquet"), ("bad.jsonl.gz", b"not gzip")],
)
def test_unreadable_files_raise_with_the_path(
    tmp_path: Path, name: str, content: bytes | None
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UnreadableFileError) as caught:
        rftcost.read_events(path)
    assert str(path) in str(caught.value)


def test_a_job_known_only_from_rejected_records_is_still_reported() -> None:
    frame = pd.DataFrame(
        [
            {"job_id": "ok", "ts": "2025-06-01T10:00:00Z", "event": "job_created"},
            {"job_id": "ghost", "ts": "not a time", "event": "succeeded"},
        ]
    )
    bill = rftcost.bill(frame)
    assert bill.log is not None
    assert bill.log.problems["job_id"].tolist() == ["ghost"]


def test_a_file_without_the_event_columns_is_not_an_event_log(tmp_path: Path) -> None:
    path = tmp_path / "budgets.csv"
    path.write_text("# a comment\nteam,period,amount\nsearch,2025-06,100\n")
    with pytest.raises(UnreadableFileError, match="not an event log: no event, job_id, ts"):
        rftcost.read_events(path)
    # Beside logs in a folder, such a file is skipped, and the skip is said.
    simple_job().frame().to_json(tmp_path / "log.jsonl", orient="records", lines=True)
    log = rftcost.read_events(tmp_path)
    assert log.counts()["rejected"] == 0
    assert any("budgets.csv: not an event log" in note for note in log.notes)


def test_a_rejected_whole_number_shows_as_the_file_wrote_it(tmp_path: Path) -> None:
    """JSON Lines numbers with gaps are read as floats: -3 is shown -3, not -3.0."""
    path = tmp_path / "neg.jsonl"
    path.write_text(
        '{"job_id":"j1","ts":"2025-06-01T00:00:00Z","event":"job_created","batch_size":-3}\n'
        '{"job_id":"j1","ts":"2025-06-01T00:00:01Z","event":"job_created","batch_size":2.5}\n'
        '{"job_id":"j1","ts":"2025-06-01T00:00:02Z","event":"step_completed","step":1}\n'
    )
    rejected = rftcost.read_events(path).rejected
    assert list(zip(rejected["line"], rejected["value"], strict=True)) == [(1, "-3"), (2, "2.5")]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_number_given_as_a_name_is_its_digits_whatever_the_other_rows(
    tmp_path: Path, suffix: str
) -> None:
    """A team given as the number 42 on one record (the others have none, so the column
    is read as floats) pays as team "42", the name a budget gives it, never "42.0"."""
    rows = [
        {
            "job_id": "j1",
            "ts": "2025-06-01T00:00:00Z",
            "event": "job_created",
            "team": 42,
            "project": 7.5,
        },
        {"job_id": "j1", "ts": "2025-06-01T00:00:00Z", "event": "phase_start", "phase": "rollout"},
        {"job_id": "j1", "ts": "2025-06-01T01:00:00Z", "event": "phase_end", "phase": "rollout"},
        {"job_id": "j1", "ts": "2025-06-01T01:00:00Z", "event": "succeeded"},
    ]
    path = tmp_path / f"log{suffix}"
    if suffix == ".parquet":
        frame = pd.DataFrame(rows)
        assert frame["team"].dtype == "float64"
        frame.to_parquet(path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    events = rftcost.read_events(path).events
    assert events["team"].dropna().astype(str).tolist() == ["42"]
    assert events["project"].dropna().astype(str).tolist() == ["7.5"]
    table = rftcost.bill(path).jobs_table()
    assert table[["team", "project", "status"]].values.tolist() == [["42", "7.5", "succeeded"]]


def test_a_csv_quote_never_closed_is_a_rejected_record_not_the_rest_of_the_file_lost(
    tmp_path: Path,
) -> None:
    """A stray quote in a message ran to the end of the file: five records vanished into one
    field and the job billed $0.00 as running. Now the quote's line is a rejected record,
    its job invalid (amount unknown), and the lines after it are read as records again."""
    path = tmp_path / "quote.csv"
    path.write_text(
        "job_id,ts,event,phase,message\n"
        'q1,2025-06-01T00:00:00Z,job_created,,"oops\n'
        "q1,2025-06-01T00:00:00Z,phase_start,rollout,\n"
        "q1,2025-06-01T01:00:00Z,phase_end,rollout,\n"
        "q1,2025-06-01T01:00:00Z,succeeded,,\n"
    )
    log = rftcost.read_events(path)
    assert (log.counts()["records_read"], log.counts()["rejected"]) == (4, 1)
    (reason,) = log.rejected["reason"].tolist()
    assert "quote never closed on file line 2" in reason
    assert log.rejected["job_id"].tolist() == ["q1"] and log.rejected["line"].tolist() == [2]
    bill = rftcost.bill(path)
    assert bill.orphan_records() == 0 and set(bill.problems["job_id"]) == {"q1"}
    assert bill.totals().invalid_jobs == 1  # the total is unknown, never $0.00


def test_a_stray_quote_closed_by_a_later_one_does_not_swallow_records(tmp_path: Path) -> None:
    """The lines between an unclosed quote and the next quote were one message: three of
    the job's records lost, $0.00 billed as running, "OK". That record is now rejected,
    its job invalid; a message of several lines that are not records stays a message."""
    path = tmp_path / "stray.csv"
    path.write_text(
        "job_id,ts,event,phase,message\n"
        'j1,2025-06-02T10:00:00Z,job_created,,"created by ops\n'
        "j1,2025-06-02T10:10:00Z,phase_start,rollout,\n"
        "j1,2025-06-02T12:40:00Z,phase_end,rollout,\n"
        'j1,2025-06-02T12:41:00Z,succeeded,,"done"\n'
        'j2,2025-06-02T10:00:00Z,job_created,,"a note\nover two lines, with a comma"\n'
        "j2,2025-06-02T10:10:00Z,phase_start,rollout,\n"
        "j2,2025-06-02T10:40:00Z,phase_end,rollout,\n"
        "j2,2025-06-02T10:41:00Z,succeeded,,\n"
    )
    log = rftcost.read_events(path)
    (reason,) = log.rejected["reason"].tolist()
    # The quote closes on line 5 with text after it: line 2 is rejected, lines 3-5 read.
    assert "closes on line 5 with text after it" in reason
    assert log.rejected["job_id"].tolist() == ["j1"] and log.counts()["accepted"] == 7
    table = rftcost.bill(path).jobs_table().set_index("job_id")
    assert table.loc["j1", "status"] == "invalid"
    assert (table.loc["j2", "status"], table.loc["j2", "total_amount"]) == ("succeeded", "50.00")


def test_a_quote_closed_on_the_next_line_with_text_after_it_swallows_no_record(
    tmp_path: Path,
) -> None:
    """``"unclosed,`` closed by ``"search"-emea`` on the next line: that line, another
    job's ``job_created``, was inside ftjob-r's team (ftjob-q billed 100.00 without its
    team and discount, "OK"). Line 2 is now rejected, line 3 read on its own."""
    path = tmp_path / "quote.csv"
    path.write_text(
        "job_id,ts,event,phase,team,data_sharing\n"
        'ftjob-r,2025-06-02T07:00:00Z,job_created,,"unclosed,\n'
        'ftjob-q,2025-06-02T08:00:00Z,job_created,,"search"-emea,true\n'
        "ftjob-q,2025-06-02T08:00:00Z,phase_start,rollout,,\n"
        "ftjob-q,2025-06-02T09:00:00Z,phase_end,rollout,,\n"
        "ftjob-q,2025-06-02T09:00:00Z,succeeded,,,\n"
    )
    log = rftcost.read_events(path)
    assert log.counts()["records_read"] == 5
    assert log.rejected["line"].tolist() == [2] and log.rejected["job_id"].tolist() == ["ftjob-r"]
    table = rftcost.bill(path).jobs_table().set_index("job_id")
    assert table.loc["ftjob-r", "status"] == "invalid"
    assert (table.loc["ftjob-q", "team"], table.loc["ftjob-q", "total_amount"]) == (
        "search-emea",
        "50.00",
    )


@pytest.mark.parametrize(
    "message",
    [
        '"hello\nworld","search"-emea',  # a message over two lines, then a quote in text
        '"hello\nworld" ,search',  # a space after the closing quote
    ],
)
def test_a_message_over_two_lines_with_a_quote_in_text_after_it_is_read(
    tmp_path: Path, message: str
) -> None:
    """Its second line is no record (no field before its quote): read as pandas reads
    it, as before, not rejected with a job made of ``world"``."""
    path = tmp_path / "message.csv"
    path.write_text(
        "job_id,ts,event,phase,message,team\n"
        f"ftjob-a,2025-06-02T08:00:00Z,job_created,,{message}\n"
        "ftjob-a,2025-06-02T08:00:00Z,phase_start,rollout,,\n"
        "ftjob-a,2025-06-02T09:00:00Z,phase_end,rollout,,\n"
        "ftjob-a,2025-06-02T09:00:00Z,succeeded,,,\n"
    )
    log = rftcost.read_events(path)
    assert log.rejected.empty and log.counts()["accepted"] == 4
    assert rftcost.bill(path).jobs["job_id"].tolist() == ["ftjob-a"]


def test_a_quote_in_a_header_name_is_read_as_text_not_a_crash(tmp_path: Path) -> None:
    """``"ev"ent`` in the header: read as pandas reads it (it raised ``UnboundLocalError``
    on the path that reads a row at a time)."""
    path = tmp_path / "header.csv"
    path.write_text('job_id,ts,"ev"ent\nftjob-q,2025-06-02T08:00:00Z,job_created\n')
    assert rftcost.read_events(path).counts()["accepted"] == 1


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        # The quote opens the job id and is never closed: the line's job is its first field.
        ('"jv5,2025-06-02T00:30:00Z,grader_usage,gpt-4.1,1000000\n', "quote never closed"),
        # Closed by the quote of the next line's id, text after it: the line alone is
        # rejected, the next read on its own (a phase_end without a phase: rejected too).
        ('"jv5,2025-06-02T00:30:00Z,grader_usage,gpt-4.1,1000000\n"jv5"', "closes on line 5"),
    ],
)
def test_a_quote_opened_before_a_job_id_makes_that_job_invalid(
    tmp_path: Path, broken: str, reason: str
) -> None:
    """A quote opened before the job id made a job of the whole line (and of the next one's
    id), while the real job was billed 100.00 without its grader tokens. The record is
    rejected as its first line's job's: that job is invalid, no other job is made."""
    path = tmp_path / "open.csv"
    tail = ",2025-06-02T01:00:00Z,phase_end,,,\n" if broken.endswith('"jv5"') else ""
    rest = "" if tail else "jv5,2025-06-02T01:00:00Z,phase_end,rollout,,\n"
    path.write_text(
        "job_id,ts,event,phase,grader_model,input_tokens\n"
        "jv5,2025-06-02T00:00:00Z,job_created,,,\n"
        "jv5,2025-06-02T00:00:00Z,phase_start,rollout,,\n"
        + broken
        + tail
        + rest
        + "jv5,2025-06-02T01:00:00Z,succeeded,,,\n"
    )
    log = rftcost.read_events(path)
    assert set(log.rejected["job_id"]) == {"jv5"}
    assert reason in log.rejected["reason"].iloc[0]
    bill = rftcost.bill(path)
    assert bill.jobs["job_id"].tolist() == ["jv5"]
    assert bill.totals().invalid_jobs == 1


def test_a_quote_never_closed_after_the_job_id_keeps_the_line_s_own_job(tmp_path: Path) -> None:
    """The fields before the quote's own stand: re-read with quotes as text, a message
    "done, ok" moved the columns and made a job "ok" while ftjob-x billed 200.00."""
    path = tmp_path / "order.csv"
    path.write_text(
        "ts,event,message,job_id,phase\n"
        "2025-06-01T00:00:00Z,job_created,created,ftjob-x,\n"
        '2025-06-01T00:00:00Z,phase_start,"start, go",ftjob-x,rollout\n'
        '2025-06-01T01:00:00Z,phase_end,"done, ok",ftjob-x,"rollout\n'
        "2025-06-01T01:00:00Z,succeeded,fine,ftjob-x,\n"
    )
    log = rftcost.read_events(path)
    assert log.rejected["job_id"].tolist() == ["ftjob-x"]
    bill = rftcost.bill(path)
    assert bill.jobs["job_id"].tolist() == ["ftjob-x"] and bill.totals().invalid_jobs == 1


@pytest.mark.parametrize("line", ["42", "null", "true", "[1]", "1.5"])
def test_a_json_lines_line_that_is_not_an_object_is_one_rejected_record(
    tmp_path: Path, line: str
) -> None:
    """A number, null, true or [1] on a line refused the whole file ("'int' object is not
    iterable", no line): it is that line's problem, and the rest is read."""
    path = tmp_path / "scalar.jsonl"
    good = {"job_id": "j", "ts": "2025-06-01T00:00:00Z", "event": "job_created"}
    path.write_text(json.dumps(good) + "\n" + line + "\n")
    log = rftcost.read_events(path)
    assert (log.counts()["records_read"], len(log.events), len(log.rejected)) == (2, 1, 1)
    assert log.rejected["reason"].tolist() == ["not a JSON object"]
    assert log.rejected["line"].tolist() == [2]


@pytest.mark.parametrize(
    ("local", "reason"),
    [
        ("2025-11-02T01:30:00", "an ambiguous local time in America/New_York (it happens twice"),
        ("2025-03-09T02:30:00", "a local time that does not exist in America/New_York"),
    ],
)
def test_a_local_time_the_clocks_skip_or_repeat_is_rejected_saying_which(
    tmp_path: Path, local: str, reason: str
) -> None:
    """Both were "not a valid local time": a repeated hour is not invalid, it is ambiguous."""
    path = tmp_path / "dst.jsonl"
    path.write_text(json.dumps({"job_id": "j", "ts": local, "event": "job_created"}) + "\n")
    log = rftcost.read_events(path, assume_tz="America/New_York")
    (said,) = log.rejected["reason"].tolist()
    assert said.startswith(reason)


def test_a_number_too_large_for_a_float_is_not_a_name(tmp_path: Path) -> None:
    """Team numbers above 2^53 in a column read as floats lose digits: 9007199254740993 and
    ...992 became one team, its budget said "ok". Such a record is rejected instead."""
    path = tmp_path / "big.jsonl"
    rows = [
        {"job_id": "j1", "ts": "2025-06-01T00:00:00Z", "event": "job_created",
         "team": 2**53 + 1},
        {"job_id": "j1", "ts": "2025-06-01T01:00:00Z", "event": "succeeded"},
        {"job_id": "j2", "ts": "2025-06-01T00:00:00Z", "event": "job_created", "team": 42},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    log = rftcost.read_events(path)
    assert log.rejected["job_id"].tolist() == ["j1"]
    assert "too large to read exactly as a name" in log.rejected["reason"].iloc[0]
    assert log.events["team"].dropna().astype(str).tolist() == ["42"]


def test_a_pipe_in_a_folder_of_logs_is_said_not_passed_over(tmp_path: Path) -> None:
    """A named pipe called ``b.jsonl`` beside a log: never read (it would hang), and said
    in the notes (it was passed over without a word)."""
    import os

    (tmp_path / "a.jsonl").write_text(
        '{"job_id": "j", "ts": "2025-06-02T08:00:00Z", "event": "job_created"}\n'
    )
    os.mkfifo(tmp_path / "b.jsonl")
    log = rftcost.read_events(tmp_path)
    assert f"{tmp_path / 'b.jsonl'}: not a regular file (a pipe, a socket, a device), skipped" in (
        log.notes
    )
