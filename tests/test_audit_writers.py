"""The audit's documents written a chunk of findings at a time (issue 16): the same bytes.

``write_audit`` (JSON, findings CSV) and ``write_dispute`` write what ``to_dict``,
``finding_rows`` and ``dispute_rows`` hold, laid out as the whole document would be.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import rftcost
from rftcost.audit import (
    DISPUTE_COLUMNS,
    FINDING_COLUMNS,
    AuditReport,
    write_audit,
    write_dispute,
)
from rftcost.csvsafe import neutralise_csv_row

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_logs"
BROKEN = ROOT / "examples" / "audit" / "broken-job.jsonl"


def _whole_csv(rows: list[dict[str, object]], columns: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(neutralise_csv_row(row) for row in rows)
    return buffer.getvalue()


@pytest.fixture(scope="module", params=["invoice-planted.csv", "invoice-clean.csv", "costs"])
def report(request: pytest.FixtureRequest) -> AuditReport:
    if request.param == "costs":
        return rftcost.audit_invoice(SAMPLES / "costs-api-export.json", SAMPLES)
    return rftcost.audit_invoice(SAMPLES / request.param, [SAMPLES, BROKEN])


@pytest.mark.parametrize("chunk", [1, 2, 1000])
def test_written_in_chunks_the_documents_are_the_same_bytes(
    report: AuditReport, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rftcost.audit.document._CHUNK", chunk)
    out = io.StringIO()
    write_audit(report, out, "json")
    whole = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    assert out.getvalue() == whole
    out = io.StringIO()
    write_audit(report, out, "csv")
    assert out.getvalue() == _whole_csv(report.finding_rows(), FINDING_COLUMNS)
    out = io.StringIO()
    write_dispute(report, out)
    assert out.getvalue() == _whole_csv(report.dispute_rows(), DISPUTE_COLUMNS)
    chunks = list(report.iter_finding_rows())
    assert all(len(rows) <= chunk for rows in chunks)
    assert [row for rows in chunks for row in rows] == report.finding_rows()
