"""Blocks of whole lines, a line's length bounded (``events.line_blocks``)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import rftcost
from rftcost.events.line_blocks import MAX_LINE_BYTES, line_blocks


@given(
    st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=40),
    st.booleans(),
    st.integers(min_value=1, max_value=50),
)
def test_blocks_are_the_file_in_whole_lines(lines: list[bytes], final: bool, block: int) -> None:
    data = b"\n".join(lines) + (b"\n" if final else b"")
    blocks = list(line_blocks(io.BytesIO(data), block, max_line=1000))
    assert b"".join(b for b, _ in blocks) == data
    assert not any(cut for _, cut in blocks)
    assert all(b.endswith(b"\n") for b, _ in blocks[:-1])


def test_a_line_longer_than_the_bound_is_cut_and_the_rest_of_it_skipped() -> None:
    data = b"a\n" + b"x" * 100 + b"\nb\nc"
    blocks = list(line_blocks(io.BytesIO(data), 7, max_line=20))
    assert [cut for _, cut in blocks if cut] == [True]
    (long,) = [b for b, cut in blocks if cut]
    assert long == b"x" * 20
    assert b"".join(b for b, cut in blocks if not cut) == b"a\nb\nc"


def test_a_gzipped_line_of_a_gibibyte_is_one_rejected_record_not_memory(tmp_path: Path) -> None:
    """A 1 MB ``.jsonl.gz`` whose one line expands to more than ``MAX_LINE_BYTES``
    (spaces in a team's name): 4.3 GB resident before; now that line is one rejected
    record of its job, every other line read."""
    path = tmp_path / "bomb.jsonl.gz"
    good = b'{"job_id": "ftjob-a", "ts": "2025-06-02T08:00:00Z", "event": "job_created"}\n'
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(good)
        out.write(b'{"job_id": "ftjob-x", "ts": "2025-06-02T08:00:00Z", "event": "job_created", ')
        out.write(b'"team": "' + b" " * (MAX_LINE_BYTES + 1) + b'"}\n')
        out.write(good.replace(b"ftjob-a", b"ftjob-z"))
    log = rftcost.read_events(path)
    assert log.counts()["records_read"] == 3 and log.counts()["accepted"] == 2
    (reason,) = log.rejected["reason"].tolist()
    assert reason == "a line of more than 64 MiB: not read"
    assert log.rejected["job_id"].tolist() == ["ftjob-x"] and log.rejected["line"].tolist() == [2]


def test_a_gzipped_csv_line_of_more_than_the_bound_is_refused_naming_it(tmp_path: Path) -> None:
    """One field of spaces in a 0.5 MB ``.csv.gz`` held 2.7 GB: the file is now refused
    before pandas reads it, naming the line (exit 2)."""
    from rftcost.errors import UnreadableFileError

    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        # A quote in text first: the file is read row by row, which has no bound of its own.
        out.write(b'job_id,ts,event,team\nftjob-a,2025-06-02T08:00:00Z,job_created,"s"x\n')
        out.write(b'ftjob-x,2025-06-02T08:00:00Z,job_created,"' + b" " * (MAX_LINE_BYTES + 1))
        out.write(b'"\n')
    try:
        rftcost.read_events(path)
    except UnreadableFileError as error:
        assert error.line == 3 and "a line of more than 64 MiB" in str(error)
    else:
        raise AssertionError("a line of more than 64 MiB was read")


@given(
    st.lists(
        st.one_of(st.integers(min_value=0, max_value=12), st.integers(min_value=21, max_value=60)),
        max_size=12,
    ),
    st.booleans(),
    st.integers(min_value=1, max_value=20),
)
def test_every_line_comes_whole_or_cut_alone_in_order(
    lengths: list[int], final: bool, block: int
) -> None:
    """Lines of up to 12 bytes and of 21-60 (over the bound of 20), in any order: each
    short line comes back whole, each long one cut alone, none swallowed into another."""
    lines = [bytes([97 + n % 26]) * length for n, length in enumerate(lengths)]
    data = b"\n".join(lines) + (b"\n" if final else b"")
    got: list[bytes] = []
    for chunk, cut in line_blocks(io.BytesIO(data), block, max_line=20):
        if cut:
            got.append(chunk)
        else:
            got += chunk.split(b"\n")[: -1 if chunk.endswith(b"\n") else None]
    whole = data.split(b"\n")[: -1 if data.endswith(b"\n") else None] if data else []
    assert got == [line[:20] for line in whole]
