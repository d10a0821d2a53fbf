"""Where CSV records start: the line a person finds a rejected record on.

pandas counts records; a quoted field over several lines or a blank line shifts every
number after it unless the lines are found in the file itself (``csv_lines``).
"""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rftcost import csv_lines
from rftcost.cli import app
from rftcost.csv_lines import record_lines

_BREAK = re.compile(r"\r\n|\r|\n")

plain_text = st.text(alphabet="abcxyz019 -_.:", min_size=0, max_size=6).map(str.strip)
quoted_text = st.text(alphabet='ab ,"\n\r', min_size=0, max_size=8)


@st.composite
def fields(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(plain_text)
    return '"' + draw(quoted_text).replace('"', '""') + '"'


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, list[int]]:
    """A CSV text and the line each data record starts on, counted as it is written."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    width = draw(st.integers(2, 4))
    text = "\ufeff" if draw(st.booleans()) else ""
    lines: list[int] = []
    line = 1

    def add(piece: str) -> None:
        nonlocal text, line
        text += piece
        line += len(_BREAK.findall(piece))

    for _ in range(draw(st.integers(0, 2))):  # blank lines before the header
        add(draw(st.sampled_from(["", " ", "\t"])) + newline)
    add(",".join(f"c{i}" for i in range(width)) + newline)
    records = draw(st.integers(0, 12))
    for number in range(records):
        for _ in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 0):
            add(draw(st.sampled_from(["", "  ", "\t", " \t "])) + newline)
        row = [draw(fields()) for _ in range(width)]
        if not "".join(row).strip(" \t"):
            row[0] = "x"  # a record of blanks alone is a blank line, not a record
        lines.append(line)
        last = number == records - 1
        add(",".join(row) + ("" if last and draw(st.booleans()) else newline))
    return text, lines


def _write(path: Path, text: str) -> Path:
    data = text.encode("utf-8")
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@settings(max_examples=300, deadline=None)
@given(
    written=csv_files(),
    block=st.sampled_from([1, 2, 3, 5, 8, 64, 1 << 22]),
    gzipped=st.booleans(),
)
def test_record_lines_are_the_lines_records_start_on(
    tmp_path_factory: pytest.TempPathFactory,
    written: tuple[str, list[int]],
    block: int,
    gzipped: bool,
) -> None:
    text, expected = written
    path = _write(tmp_path_factory.mktemp("csv") / ("log.csv.gz" if gzipped else "log.csv"), text)
    # pandas reads as many records as were written: the numbering is of its records.
    frame = pd.read_csv(
        io.BytesIO(text.encode("utf-8")),
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
        index_col=False,
    )
    assert len(frame) == len(expected)
    original = csv_lines._BLOCK_BYTES
    csv_lines._BLOCK_BYTES = block  # blocks of a few bytes: every cut is crossed
    try:
        found = record_lines(path).of(0, len(expected)).tolist()
    finally:
        csv_lines._BLOCK_BYTES = original
    assert found == expected
    # Python's csv module, a row at a time, agrees (the way irregular files are read).
    assert csv_lines._lines_by_row(path).of(0, len(expected)).tolist() == expected


def test_a_file_of_one_line_per_record_keeps_no_table(tmp_path: Path) -> None:
    rows = "".join(f"j{i},2025-01-01T00:00:00Z,job_created\n" for i in range(1000))
    path = _write(tmp_path / "log.csv", "job_id,ts,event\n" + rows)
    lines = record_lines(path)
    assert not lines.irregular
    assert lines.of(998, 2).tolist() == [1000, 1001]


def test_a_quote_used_as_csv_does_not_use_it_is_read_as_python_reads_it(tmp_path: Path) -> None:
    # `5" screen` is text with a quote in it; the quote opens no field (pandas agrees).
    text = 'c0,c1\na,5" screen\nb,"two\nlines"\n\nc,d\n'
    path = _write(tmp_path / "log.csv", text)
    assert len(pd.read_csv(path, dtype=str)) == 3
    assert record_lines(path).of(0, 3).tolist() == [2, 3, 6]


_HEADER = "job_id,ts,event,phase,step,message\n"


def _rejected_lines(path: Path) -> list[int]:
    result = CliRunner().invoke(app, ["validate", str(path), "--format", "json"])
    assert result.exit_code == 1, result.output  # a job made invalid by its record
    return [r["line"] for r in json.loads(result.stdout)["rejected"]]


def test_validate_names_the_line_after_a_message_of_two_lines_and_a_blank_line(
    tmp_path: Path,
) -> None:
    text = (
        _HEADER
        + "j1,2025-01-01T00:00:00Z,job_created,,,\n"
        + 'j1,2025-01-01T00:01:00Z,phase_start,rollout,,"a message\nover two lines"\n'
        + "\n"
        + "j1,2025-01-01T00:02:00Z,phase_end,rollout,,\n"
        + "j1,2025-01-01T00:03:00Z,bogus_event,,,\n"
    )
    for name in ("log.csv", "log.csv.gz"):
        path = _write(tmp_path / name, text)
        assert _rejected_lines(path) == [7]  # line 7 in an editor; record 5 of the file


def test_a_row_longer_than_its_header_is_named_by_its_line_too(tmp_path: Path) -> None:
    # Such a row sends the file down the row-by-row path; its lines are the file's too.
    text = (
        _HEADER
        + "j1,2025-01-01T00:00:00Z,job_created,,,\n"
        + "\n"
        + 'j1,2025-01-01T00:01:00Z,phase_start,rollout,,"a\nb"\n'
        + "j1,2025-01-01T00:02:00Z,phase_end,rollout,,,,,,\n"
        + "j1,2025-01-01T00:03:00Z,bogus_event,,,\n"
    )
    path = _write(tmp_path / "log.csv", text)
    assert _rejected_lines(path) == [6, 7]


def test_an_invoice_line_is_named_by_the_line_it_starts_on(tmp_path: Path) -> None:
    from rftcost.errors import InvoiceError
    from rftcost.invoice import read_invoice

    header = (
        "invoice_id,line,job_id,line_type,charge_at,description,grader_model,"
        "token_type,quantity,unit,unit_price,amount,currency\n"
    )
    good = (
        'INV-1,1,ftjob-a,compute,2025-07-11T11:06:54Z,"RFT training\nof o4-mini",'
        ",,0.29,hours,100.00,29.00,USD\n"
    )
    bad = "INV-1,2,ftjob-b,compute,2025-07-11T11:06:54Z,RFT,,,0.29,hours,100.00,lots,USD\n"
    path = _write(tmp_path / "invoice.csv", header + good + "\n" + bad)
    with pytest.raises(InvoiceError, match=r"invoice\.csv:5: not a number"):
        read_invoice(path)  # line 5 in an editor: the second line of the invoice
    assert read_invoice(path, on_bad_line="set_aside").rejected["source_line"].tolist() == [5]


def _bill(path: Path) -> object:
    from rftcost import bill

    return bill(path)


_EVENTS = "job_id,ts,event,phase,grader_model,input_tokens,output_tokens,message\n"
_J1 = (
    "j1,2025-06-02T08:00:00Z,job_created,,,,,\n"
    "j1,2025-06-02T08:00:00Z,phase_start,rollout,,,,\n"
    "j1,2025-06-02T09:00:00Z,phase_end,rollout,,,,\n"
    'j1,2025-06-02T09:00:00Z,grader_usage,,o3-2025-04-16,1000000,100000,"batch 7" retried\n'
    "j1,2025-06-02T09:00:00Z,succeeded,,,,,\n"
)
_LONG_ROW = "j2,2025-06-02T09:00:00Z,job_created,,,,,,extra\n"


def _job(result: object, job_id: str) -> dict[str, object]:
    jobs = result.jobs  # type: ignore[attr-defined]
    row = jobs[jobs["job_id"] == job_id].iloc[0]
    return {"status": row["status"], "cents": row["total_cents"]}


def test_a_row_longer_than_its_header_changes_no_other_record(tmp_path: Path) -> None:
    # The long row sends the file down the row-by-row path: the quote after which text
    # follows is read there as pandas reads it, not rejected (j1's grader charge kept).
    alone = _write(tmp_path / "alone.csv", _EVENTS + _J1)
    with_long = _write(tmp_path / "long.csv", _EVENTS + _J1 + _LONG_ROW)
    assert _job(_bill(with_long), "j1") == _job(_bill(alone), "j1")
    assert _job(_bill(alone), "j1") == {"status": "succeeded", "cents": 11400}


def test_a_field_over_128_kib_is_read_on_the_row_by_row_path(tmp_path: Path) -> None:
    big = _J1.replace('"batch 7" retried', '"' + "x" * 140_000 + '"')
    alone = _write(tmp_path / "alone.csv", _EVENTS + big)
    with_long = _write(tmp_path / "long.csv", _EVENTS + big + _LONG_ROW)
    assert (
        _job(_bill(with_long), "j1")
        == _job(_bill(alone), "j1")
        == {
            "status": "succeeded",
            "cents": 11400,
        }
    )


def test_a_quote_never_closed_makes_its_own_job_invalid(tmp_path: Path) -> None:
    text = _EVENTS + _J1.replace("succeeded,,,,,", 'failed,,,,,"disk full')
    path = _write(tmp_path / "log.csv", text)
    result = _bill(path)
    problems = result.problems  # type: ignore[attr-defined]
    assert "j1" in set(problems["job_id"])  # its amount unknown, never billed as running


def test_records_are_counted_alike_on_both_paths_whatever_a_line_holds(tmp_path: Path) -> None:
    # A line of a form feed, a no-break space or "" is a record to pandas (rejected: no
    # job); only spaces and tabs make a blank line. Read in chunks of 3, the row-by-row
    # path skips exactly the records pandas read before the long row.
    from rftcost.events.readers import read_file_chunks
    from rftcost.policy import load_policy

    odd = '\x0c\n\u00a0\n""\n \t \n'
    first, rest = _J1.split("\n", 1)
    text = _EVENTS + first + "\n" + odd + rest + "j1,2025-06-02T09:00:00Z,paused,,,,,\n" + _LONG_ROW
    path = _write(tmp_path / "log.csv", text)
    chunks = list(read_file_chunks(path, assume_tz=None, policy=load_policy(None), chunk_rows=3))
    used = pd.concat([c for c, _ in chunks])
    rejected = pd.concat([r for _, r in chunks])
    assert len(used) + len(rejected) == 10  # 6 of j1's, 3 odd lines, the long row
    assert sorted(rejected["line"].tolist()) == [3, 4, 5, 12]
    assert sorted(used["line"].tolist()) == [2, 7, 8, 9, 10, 11]


def test_a_blank_line_before_the_header_on_the_row_by_row_path(tmp_path: Path) -> None:
    text = "\n \n" + _EVENTS + _J1 + _LONG_ROW
    path = _write(tmp_path / "log.csv", text)
    assert _rejected_lines(path) == [9]


_INVOICE_HEADER = (
    "invoice_id,line,job_id,line_type,charge_at,description,grader_model,"
    "token_type,quantity,unit,unit_price,amount,currency\n"
)
_INVOICE_LINE = "INV-1,,ftjob-a,compute,2025-06-02T09:00:00Z,RFT,,,1.00,hours,100.00,100.00,USD\n"


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        # A long row after a description over two lines: named where it starts.
        (
            _INVOICE_LINE.replace("RFT", '"RFT\ntraining"')
            + _INVOICE_LINE.replace(",USD", ",USD,extra"),
            5,
            r"more fields \(14\) than the header \(13\)",
        ),
        # A quote never closed: its line, not pandas' "EOF inside string".
        (_INVOICE_LINE + "\n" + _INVOICE_LINE.replace("RFT", '"RFT'), 5, "quote never closed"),
        # Closed on the next line with text after it: the line between would be one field.
        (
            _INVOICE_LINE.replace("RFT", '"RFT') + _INVOICE_LINE.replace("RFT", 'RFT"x'),
            3,
            "closed on a later line with text after it",
        ),
    ],
)
def test_an_invoice_that_cannot_be_read_names_the_line_the_row_starts_on(
    tmp_path: Path, body: str, line: int, words: str
) -> None:
    from rftcost.errors import InvoiceError
    from rftcost.invoice import read_invoice

    path = _write(tmp_path / "invoice.csv", "\n" + _INVOICE_HEADER + body)
    with pytest.raises(InvoiceError, match=rf"invoice\.csv:{line}: .*{words}"):
        read_invoice(path)


def test_a_quote_never_closed_loses_no_other_job(tmp_path: Path) -> None:
    """The stray quote's line is its job's rejected record; every line after it is read:
    another job's records are not lost in one field (its bill unchanged)."""
    j2 = (
        "j2,2025-06-02T08:00:00Z,job_created,,,,,\n"
        "j2,2025-06-02T08:00:00Z,phase_start,rollout,,,,\n"
        "j2,2025-06-02T08:30:00Z,phase_end,rollout,,,,\n"
        "j2,2025-06-02T08:30:00Z,succeeded,,,,,\n"
    )
    stray = _J1.replace("job_created,,,,,", 'job_created,,,,,"started by ops')
    alone = _write(tmp_path / "alone.csv", _EVENTS + j2)
    both = _write(tmp_path / "both.csv", _EVENTS + stray + j2)
    result = _bill(both)
    assert _job(result, "j2") == _job(_bill(alone), "j2") == {"status": "succeeded", "cents": 5000}
    assert set(result.problems["job_id"]) == {"j1"}  # type: ignore[attr-defined]
    assert _rejected_lines(both) == [2]
