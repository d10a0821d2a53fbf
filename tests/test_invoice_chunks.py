"""Canonical invoices read a chunk of records at a time (issue 16): the same ``Invoice``.

``read_invoice`` reads CSV and JSON Lines ``_READ_ROWS`` records at a time and checks each
chunk on its own; what needs every line (a missing column, the first bad line and the count
of the others, one currency, the numbering of lines) is decided over the whole file. With
chunks of a few records, every invoice reads as it does at once.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from rftcost.errors import InvoiceError
from rftcost.invoice import read_invoice, write_invoice

ROOT = Path(__file__).resolve().parents[1]
CLEAN = ROOT / "sample_logs" / "invoice-clean.csv"


@pytest.fixture
def clean() -> pd.DataFrame:
    return pd.read_csv(CLEAN, dtype=str, keep_default_na=False)


def _small_chunks(monkeypatch: pytest.MonkeyPatch, rows: int = 7) -> None:
    monkeypatch.setattr("rftcost.invoice._READ_ROWS", rows)


def _same(a: object, b: object) -> None:
    pd.testing.assert_frame_equal(a.lines, b.lines)  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(a.rejected, b.rejected)  # type: ignore[attr-defined]
    assert (a.invoice_id, a.currency, a.notes) == (b.invoice_id, b.currency, b.notes)  # type: ignore[attr-defined]


@pytest.mark.parametrize("form", [".csv", ".jsonl", ".csv.gz", "bom.csv", ".ndjson.gz"])
def test_read_in_chunks_the_invoice_is_the_same(
    clean: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    lines = clean.drop(columns=["line"])  # numbered by their rows, across chunks
    lines.loc[5, "amount"] = "x"  # a bad line in the first chunk, another in a later one
    lines.loc[40, "charge_at"] = "9999-01-01T00:00:00Z"
    plain = write_invoice(lines, tmp_path / ("i.jsonl" if "json" in form else "i.csv"))
    path = tmp_path / f"invoice{form}" if not form.startswith("bom") else tmp_path / "bom.csv"
    data = plain.read_bytes()
    if form.startswith("bom"):
        path.write_bytes(b"\xef\xbb\xbf" + data)
    elif form.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    whole = read_invoice(path, on_bad_line="set_aside")
    with pytest.raises(InvoiceError) as at_once:
        read_invoice(path)
    _small_chunks(monkeypatch)
    _same(read_invoice(path, on_bad_line="set_aside"), whole)
    with pytest.raises(InvoiceError) as chunked:
        read_invoice(path)
    assert str(chunked.value) == str(at_once.value)
    assert "1 more line(s) with problems" in str(chunked.value)
    assert list(whole.rejected["line"]) == [6, 41] and len(whole) == len(clean) - 2


def test_a_currency_in_a_later_chunk_is_found(
    clean: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = clean.copy()
    lines.loc[50, "currency"] = "EUR"
    path = write_invoice(lines, tmp_path / "i.csv")
    with pytest.raises(InvoiceError, match="several currencies") as at_once:
        read_invoice(path)
    _small_chunks(monkeypatch)
    with pytest.raises(InvoiceError, match="several currencies") as error:
        read_invoice(path)
    assert str(error.value) == str(at_once.value)


def test_a_column_absent_from_a_chunk_is_not_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # JSON Lines leave out empty values: the first chunk's tax lines name no job.
    records = [{"invoice_id": "I", "line_type": "tax", "amount": "1.00"}] * 3 + [
        {"invoice_id": "I", "job_id": "ftjob-a", "line_type": "credit", "amount": "-1.00"}
    ]
    path = tmp_path / "i.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    whole = read_invoice(path)
    _small_chunks(monkeypatch, 2)
    _same(read_invoice(path), whole)
    without = [{k: v for k, v in r.items() if k != "job_id"} for r in records]
    path.write_text("".join(json.dumps(r) + "\n" for r in without))
    with pytest.raises(InvoiceError, match="missing column 'job_id'"):
        read_invoice(path)


def test_a_header_alone_and_blank_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _small_chunks(monkeypatch, 2)
    header = tmp_path / "header.csv"
    header.write_text("invoice_id,job_id,line_type,amount\n")
    assert len(read_invoice(header)) == 0
    for name, text in (("blank.csv", "\n \n"), ("blank.jsonl", "\ufeff\n")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(InvoiceError, match="empty invoice is no invoice"):
            read_invoice(tmp_path / name)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"invoice_id,job_id,line_type,amount\nI,a,tax,1.00\nI,\xff,tax,1.00\n")
    with pytest.raises(InvoiceError, match=r"not UTF-8 text .* at byte 50"):
        read_invoice(bad)
