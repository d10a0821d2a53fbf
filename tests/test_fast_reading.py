"""The fast paths of reading give what the general path gives, record for record.

- A typed Parquet table checked in Arrow (``events.typed_tables``) yields the same
  frame as ``normalize_records`` on its pandas form: columns, dtypes, categories.
- JSON Lines read in blocks (plain or gzipped) yield the same log as one block.
- Repeats set aside chunk by chunk are the duplicates ``deduplicate`` finds, in order.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import JobLog

import rftcost
from rftcost.events import readers
from rftcost.events.typed_tables import normalize_table, own_dictionaries
from rftcost.policy import load_policy
from rftcost.simulate import simulate_jobs

SAMPLES = Path(__file__).resolve().parents[1] / "sample_logs"


def _same_frame(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    for column in fast.columns:
        assert fast[column].dtype == slow[column].dtype, column
        if isinstance(fast[column].dtype, pd.CategoricalDtype):
            assert list(fast[column].cat.categories) == list(slow[column].cat.categories)


def _typed_table(tmp_path: Path, frame: pd.DataFrame) -> pa.Table:
    path = tmp_path / "log.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    at = table.schema.get_field_index("ts")
    table = table.set_column(at, "ts", table["ts"].cast(pa.timestamp("us", tz="UTC")))
    pq.write_table(table, path, row_group_size=700)
    names = pq.read_schema(path).names
    dictionary = [c for c in readers.CATEGORY_COLUMNS if c in names]
    return pq.read_table(path, read_dictionary=dictionary)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_typed_table_normalizes_as_the_general_path(tmp_path: Path, seed: int) -> None:
    table = _typed_table(tmp_path, simulate_jobs(n_jobs=20, seed=seed))
    policy = load_policy(None)
    fast = normalize_table(table, source="log.parquet", first_line=1, policy=policy)
    assert fast is not None
    slow, rejected = readers.normalize_records(
        table.to_pandas().assign(line=np.arange(1, table.num_rows + 1)),
        source="log.parquet",
        assume_tz=None,
        policy=policy,
    )
    assert rejected.empty
    _same_frame(fast, slow)


def test_the_sample_parquet_log_normalizes_as_the_general_path() -> None:
    path = SAMPLES / "2025-07.parquet"
    policy = load_policy(None)
    (table,) = readers._read_parquet(path, None)
    fast = readers._normalize_typed(table, source=str(path), policy=policy)
    assert fast is not None
    slow, _ = readers.normalize_records(
        table.to_pandas(), source=str(path), assume_tz=None, policy=policy
    )
    _same_frame(fast, slow)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("window", [(0, 5000), (650, 200), (1390, 700), (3, 1), (-400, 398)])
def test_a_slice_normalizes_with_its_own_categories_as_its_owned_table(
    tmp_path: Path, seed: int, window: tuple[int, int]
) -> None:
    """A slice of row groups (a part of a job run, in pieces of batches) checked with its
    own categories gives the frame of its table with unused dictionary values dropped,
    including a name that is a blank or a repeat once stripped only in other rows."""
    frame = simulate_jobs(n_jobs=20, seed=seed)
    frame = frame.assign(
        team=frame["team"].where(frame.index != len(frame) - 1, "  "),
        model=frame["model"].where(frame.index != len(frame) - 2, " gpt "),
        grader_type=frame["grader_type"].where(frame["event"] != "job_created", None),
    )
    table = _typed_table(tmp_path, frame)
    start = window[0] % table.num_rows  # from the end when negative: not the last 2 rows
    pieces = pa.Table.from_batches(table.to_batches(max_chunksize=300)).slice(start, window[1])
    policy = load_policy(None)
    own = normalize_table(pieces, source="x", first_line=1, policy=policy, own_categories=True)
    owned = normalize_table(own_dictionaries(pieces), source="x", first_line=1, policy=policy)
    assert (own is None) == (owned is None) == (window[0] == 0)
    if own is not None and owned is not None:
        _same_frame(own, owned)
        for column in own.columns:
            if isinstance(own[column].dtype, pd.CategoricalDtype):
                assert own[column].cat.codes.dtype == owned[column].cat.codes.dtype


@pytest.mark.parametrize(
    "spoil",
    [
        lambda f: f.assign(event=f["event"].where(f.index != 3, "exploded")),
        lambda f: f.assign(step=f["step"].where(f.index != 5, -1)),
        lambda f: f.assign(job_id=f["job_id"].where(f.index != 2, None)),
        lambda f: f.assign(job_id=f["job_id"].where(f.index != 2, "  ")),
        lambda f: f.assign(phase=f["phase"].where(f["event"] != "phase_start", "warmup")),
        lambda f: f.assign(compute_multiplier=f["compute_multiplier"].where(f.index != 0, -2.0)),
    ],
)
def test_a_record_to_reject_leaves_the_fast_path(tmp_path: Path, spoil: object) -> None:
    frame = simulate_jobs(n_jobs=3, seed=2)
    table = _typed_table(tmp_path, spoil(frame))  # type: ignore[operator]
    fast = normalize_table(table, source="x", first_line=1, policy=load_policy(None))
    assert fast is None


def test_a_spoiled_parquet_log_is_read_as_before(tmp_path: Path) -> None:
    frame = simulate_jobs(n_jobs=3, seed=3)
    frame = frame.assign(step=frame["step"].where(frame.index != 7, -4))
    path = tmp_path / "log.parquet"
    frame.assign(ts=pd.to_datetime(frame["ts"], utc=True)).to_parquet(path)
    log = rftcost.read_events(path)
    assert log.rejected[["line", "column", "reason"]].to_dict("records") == [
        {"line": 8, "column": "step", "reason": "step is negative"}
    ]
    assert log.records_read == len(frame)


def _jsonl_log(tmp_path: Path) -> tuple[Path, int]:
    jobs = [JobLog(f"ftjob-{i}").created(team="t").phase("rollout", hours=1) for i in range(30)]
    lines = []
    for i, job in enumerate(jobs):
        for record in job.add("succeeded").frame().to_dict("records"):
            lines.append(json.dumps({k: v for k, v in record.items() if pd.notna(v)}))
        if i % 7 == 0:
            lines.append(lines[-1])  # a repeat: a duplicate
            lines.append("")  # a blank line still counts
        if i == 11:
            lines.append('{"job_id": "ftjob-11", "ts": ')  # cut short: rejected
    data = ("\r\n".join(lines) + "\n").encode()
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    return path, sum(1 for line in lines if line.strip())


def test_json_lines_in_small_blocks_read_as_one_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, records = _jsonl_log(tmp_path)
    whole = rftcost.read_events(path)
    whole_totals = rftcost.bill(path).totals()
    monkeypatch.setattr(readers, "_TEXT_BLOCK_BYTES", 300)
    assert len(list(readers._text_chunks(path))) > 10
    small = rftcost.read_events(path)
    assert small.counts() == whole.counts()
    assert small.records_read == records
    assert len(small.duplicates) == 5
    assert small.rejected.to_dict("records") == whole.rejected.to_dict("records")
    columns = ["source", "line", "job_id", "event_id"]
    assert small.duplicates[columns].astype(str).to_dict("records") == (
        whole.duplicates[columns].astype(str).to_dict("records")
    )
    key = ["job_id", "ts", "event", "line"]
    assert small.events[key].astype(str).to_dict("records") == (
        whole.events[key].astype(str).to_dict("records")
    )
    assert rftcost.bill(path).totals() == whole_totals


def test_repeats_set_aside_in_pieces_are_the_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = _jsonl_log(tmp_path)
    monkeypatch.setattr(readers, "_TEXT_BLOCK_BYTES", 500)
    log = rftcost.read_events(path)
    # What deduplicate finds on the whole log, without setting repeats aside first.
    chunks = readers.read_file_chunks(path, assume_tz=None, policy=load_policy(None))
    events = readers.concat_events([frame for frame, _ in chunks])
    kept, duplicates, conflicts = readers.deduplicate(events)
    columns = ["source", "line", "job_id", "event_id"]
    assert log.duplicates[columns].astype(str).to_dict("records") == (
        duplicates[columns].astype(str).to_dict("records")
    )
    assert len(log.events) == len(kept) and conflicts.empty


def test_a_csv_is_read_in_chunks_with_its_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = simulate_jobs(n_jobs=4, seed=5)
    path = tmp_path / "log.csv.gz"
    frame.to_csv(path, index=False, compression="gzip")
    whole = rftcost.read_events(path)
    whole_totals = rftcost.bill(path).totals()
    monkeypatch.setattr(readers, "_CSV_CHUNK_ROWS", 50)
    chunked = rftcost.read_events(path)
    assert chunked.counts() == whole.counts()
    assert chunked.events["line"].tolist() == whole.events["line"].tolist()
    assert rftcost.bill(path).totals() == whole_totals


def test_a_categorical_event_id_is_read_as_before(tmp_path: Path) -> None:
    frame = simulate_jobs(n_jobs=3, seed=4)
    path = tmp_path / "log.parquet"
    frame.assign(
        ts=pd.to_datetime(frame["ts"], utc=True), event_id=frame["event_id"].astype("category")
    ).to_parquet(path)
    (table,) = readers._read_parquet(path, None)
    assert readers._normalize_typed(table, source=str(path), policy=load_policy(None)) is None
    assert rftcost.read_events(path).accepted == len(frame)


def test_a_line_of_spaces_before_a_long_row_is_not_read_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pandas skips a line of spaces; the row-by-row reader, taking over after a long row
    in a later chunk, skips the records pandas read: it must count that line as pandas
    does, or it reads the last record of a chunk again (a duplicate the file does not hold)."""
    frame = simulate_jobs(n_jobs=4, seed=5)
    path = tmp_path / "log.csv"
    lines = frame.to_csv(index=False).splitlines()
    lines.insert(3, "   ")  # spaces alone, early
    lines.append(lines[-1] + ",extra,fields")  # a row longer than the header, late
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(readers, "_CSV_CHUNK_ROWS", 50)
    counts = rftcost.read_events(path).counts()
    assert counts["records_read"] == len(frame) + 1
    assert (counts["duplicates"], counts["rejected"]) == (0, 1)
