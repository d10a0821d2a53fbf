"""FOCUS rows written chunk by chunk (issue 16): the same rows and the same bytes as whole.

``focus_chunks`` yields the rows of ``focus_rows`` in runs of whole charges; ``write_focus``
writes them one after the other. Whatever the chunk size, the rows, the CSV bytes and the
Parquet table are those of the export written at once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from shared_cases import SHARED_CASES

import rftcost
from rftcost.focus import focus_chunks, focus_rows, write_focus

ROOT = Path(__file__).resolve().parents[1]
REALWORLD = SHARED_CASES / "realworld"
POLICIES = ["openai-rft", "openai-rft-no-training-discount", "azure-rft"]


def _sources() -> list[Path]:
    found = [ROOT / "sample_logs"]
    multi = REALWORLD / "26-multi-grader-two-models"
    return found + ([multi] if multi.exists() else [])


@pytest.fixture(scope="module", params=[(s, p) for s in _sources() for p in POLICIES])
def bill(request: pytest.FixtureRequest) -> rftcost.Bill:
    source, policy = request.param
    return rftcost.bill(source, policy=policy)


@pytest.mark.parametrize("size", [1, 2, 7])
def test_chunks_are_the_rows_in_runs_of_whole_charges(bill: rftcost.Bill, size: int) -> None:
    whole = focus_rows(bill)
    chunks = list(focus_chunks(bill, chunk_charges=size))
    assert len(chunks) == max(1, -(-len(bill.charges[bill.charges["charge"] >= 0]) // size))
    pd.testing.assert_frame_equal(pd.concat(chunks), whole)
    for chunk in chunks:  # a charge's rows never straddle two chunks
        charges = chunk[["ResourceId", "x_ChargeNumber"]].drop_duplicates()
        assert len(charges) <= size


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_written_in_chunks_the_file_is_the_same(
    bill: rftcost.Bill, tmp_path: Path, suffix: str
) -> None:
    whole = write_focus(focus_rows(bill), tmp_path / f"whole{suffix}")
    chunked = write_focus(focus_chunks(bill, chunk_charges=3), tmp_path / f"chunked{suffix}")
    if suffix == ".csv":
        assert chunked.read_bytes() == whole.read_bytes()
    else:  # a row group per chunk; the same table and metadata
        a, b = pq.read_table(whole), pq.read_table(chunked)
        assert a.equals(b) and a.schema.metadata == b.schema.metadata
    # The default chunk (the CLI's) holds these small logs whole: the very same bytes.
    default = write_focus(focus_chunks(bill), tmp_path / f"default{suffix}")
    assert default.read_bytes() == whole.read_bytes()


def test_no_chunk_is_refused(tmp_path: Path) -> None:
    for suffix in (".csv", ".parquet"):
        with pytest.raises(ValueError, match="no chunk"):
            write_focus(iter(()), tmp_path / f"none{suffix}")


def test_chunk_size_must_be_positive(bill: rftcost.Bill) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        next(focus_chunks(bill, chunk_charges=0))
