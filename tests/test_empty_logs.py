"""Nothing silent: a log that holds nothing is said, never billed as 0.00 unsaid.

Every command that reads logs, on every container (JSON Lines, CSV, Parquet, gzip):
a folder with no event log is refused in one line naming it (exit 2, as a missing
path is); a file with no record (empty, blank lines, a byte-order mark, a CSV header
only, a Parquet file of no row) is named in a warning on stderr, and refused when no
input holds a record. The readers themselves read each such file as zero records, in
memory and in buckets, never with a library's own message ("No columns to parse").
"""

from __future__ import annotations

import contextlib
import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import cli
from shared_cases import SHARED_CASES

import rftcost
from rftcost.errors import UnreadableFileError
from rftcost.events.readers import LOG_SUFFIXES
from rftcost.events.survey import holds_no_record, survey_logs

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_logs"
CASES = SHARED_CASES

HEADER = "job_id,ts,event\n"
EMPTY_TEXT: dict[str, bytes] = {
    "empty.jsonl": b"",
    "blank.jsonl": b"\n  \n\t\r\n",
    "bom.jsonl": b"\xef\xbb\xbf",
    "empty.ndjson": b"",
    "empty.csv": b"",
    "blank.csv": b"\n\n",
    "bom.csv": b"\xef\xbb\xbf",
    "header.csv": HEADER.encode(),
    "header-crlf.csv": b"job_id,ts,event\r\n\r\n  \r\n",
    "header-bom.csv": b"\xef\xbb\xbf" + HEADER.encode(),
}
"""Text files with no record, each also written gzipped (``.gz``)."""


def empty_files(folder: Path) -> list[Path]:
    """One file of every kind that holds no record."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in EMPTY_TEXT.items():
        for suffix, content in (("", data), (".gz", gzip.compress(data))):
            path = folder / (name + suffix)
            path.write_bytes(content)
            paths.append(path)
    schema = pa.schema([("job_id", pa.string()), ("ts", pa.string()), ("event", pa.string())])
    pq.write_table(schema.empty_table(), folder / "no-rows.parquet")
    paths.append(folder / "no-rows.parquet")
    return paths


def commands(logs: str, out: Path) -> dict[str, list[str]]:
    """Every command that reads logs, with what else it needs."""
    invoice = str(SAMPLES / "invoice-clean.csv")
    return {
        "bill": ["bill", logs],
        "bill-buckets": ["bill", logs, "--buckets", "2", "-f", "json"],
        "validate": ["validate", logs],
        "explain": ["explain", logs, "--job", "ftjob-x"],
        "audit": ["audit", "--invoice", invoice, logs],
        "calibrate": ["calibrate", logs],
        "spend": ["spend", logs],
        "chart-spend": ["chart", "spend", logs, "-o", str(out / "spend.png")],
        "chart-waterfall": ["chart", "waterfall", logs, "-o", str(out / "w.png")],
        "export-focus": ["export", "focus", logs, "-o", str(out / "focus.csv")],
        "report": ["report", logs, "-o", str(out / "report.html")],
        "estimate-running": ["estimate", "--running", logs, "--job", "ftjob-x"],
    }


COMMANDS = list(commands("", Path()))


def one_error_line(code: int, out: str, err: str) -> str:
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- folders without a log ------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_without_a_log_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    line = one_error_line(*cli(capsys, *commands(str(folder), out)[command]))
    assert line.startswith(f"error: {folder}: no event log in this folder")
    assert not any(out.iterdir())  # nothing written


def test_a_folder_of_other_files_says_why_they_were_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "budgets.csv").write_text("team,period,amount\nads,2025-06,10\n")
    (folder / "settings.json").write_text('{"theme": "dark"}\n')
    (folder / "notes.txt").write_text("not a log\n")
    for command in ("bill", "validate"):
        line = one_error_line(*cli(capsys, command, str(folder)))
        assert f"{folder}: no event log in this folder" in line
        assert "left out: " in line and "budgets.csv: not an event log" in line
        assert "(and 1 more)" in line  # settings.json; notes.txt is no log kind at all


def test_an_empty_folder_beside_a_log_is_still_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    line = one_error_line(
        *cli(capsys, "bill", str(SAMPLES / "2025-05.jsonl"), str(tmp_path / "empty"))
    )
    assert f"{tmp_path / 'empty'}: no event log in this folder" in line


@pytest.mark.parametrize("buckets", [None, 2])
def test_the_library_refuses_a_folder_without_a_log_too(
    tmp_path: Path, buckets: int | None
) -> None:
    # Not a bill of 0.00: the same refusal as the command's, on every path.
    from rftcost.errors import InputError

    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "budgets.csv").write_text("team,period,amount\nads,2025-06,10\n")
    for folder in ("empty", "other"):
        with pytest.raises(InputError, match="no event log in this folder") as raised:
            rftcost.bill(tmp_path / folder, buckets=buckets)
        assert raised.value.path == str(tmp_path / folder)
    with pytest.raises(InputError, match="no event log"):
        rftcost.bill([SAMPLES / "2025-05.jsonl", tmp_path / "empty"], buckets=buckets)
    with pytest.raises(InputError, match="no event log named"):
        rftcost.bill([], buckets=buckets)  # an empty glob


# --- files without a record -----------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_without_a_record_is_refused_by_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    log = tmp_path / "june.jsonl"
    log.write_text("")
    out = tmp_path / "out"
    out.mkdir()
    line = one_error_line(*cli(capsys, *commands(str(log), out)[command]))
    assert line.startswith(f"error: {log}: holds no record (empty, or a header only)")
    assert not any(out.iterdir())


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_every_kind_of_empty_file_is_refused_when_nothing_holds_a_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    paths = empty_files(tmp_path / "logs")
    for path in paths if kind == "file" else []:
        line = one_error_line(*cli(capsys, "bill", str(path)))
        assert line == f"error: {path}: holds no record (empty, or a header only); nothing to read"
    if kind == "folder":
        # In a folder, a CSV without a header is no event log at all: left out and noted.
        line = one_error_line(*cli(capsys, "validate", str(tmp_path / "logs")))
        assert "files holds a record (empty, or a header only); nothing to read" in line


@pytest.mark.parametrize("command", ["bill", "validate"])
def test_a_file_without_a_record_beside_logs_is_a_warning_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    empty = empty_files(tmp_path / "empty")
    log = str(SAMPLES / "2025-05.jsonl")
    code, alone, err = cli(capsys, command, log, "-f", "json")
    assert err == ""
    named = [str(p) for p in empty[:3]] + [str(empty[-1])]
    code_with, with_empty, warned = cli(capsys, command, log, *named, "-f", "json")
    assert code_with == code
    lines = warned.strip().splitlines()
    assert lines == [
        f"warning: {p}: holds no record (empty, or a header only); it adds nothing" for p in named
    ]
    document, expected = json.loads(with_empty), json.loads(alone)
    if command == "validate":  # the files read are listed; all else is the same
        assert document.pop("files") == [log, *named]
        expected.pop("files")
    assert document == expected


def test_the_warning_keeps_a_name_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "a\nb\x1b[31m.jsonl"
    empty.write_text("")
    code, _, err = cli(capsys, "bill", str(SAMPLES / "2025-05.jsonl"), str(empty))
    assert code == 0 and len(err.strip().splitlines()) == 1 and "\x1b" not in err


# --- the survey never calls a file with a record empty ----------------------------------------


def test_no_file_with_a_record_is_called_empty(tmp_path: Path) -> None:
    """Every sample log and hostile case: the survey calls a file empty only when the
    readers find no record in it (and each empty kind, read, is zero records)."""
    candidates = [p for p in SAMPLES.iterdir() if p.is_file()]
    candidates += [p for p in CASES.rglob("*") if p.is_file()] if CASES.exists() else []
    nearly = {
        "ws.csv": "job_id,ts,event\n\u00a0\n",  # no-break space: a row for pandas
        "vt.csv": "job_id,ts,event\n\x0b\n",
        "commas.csv": "job_id,ts,event\n,,\n",
        "late.csv": "\n\n  \njob_id,ts,event\n\nftjob-a,2025-06-01T00:00:00Z,job_created\n",
        "quote.jsonl": '""\n',
        "double-bom.jsonl": "\ufeff\ufeff\n",  # one mark is the file's, the other text
    }
    # JSON Lines skips them: a no-break space alone; a byte-order mark starting a later line
    # (files joined with cat), as the readers read past it.
    blank = {"nbsp.jsonl": "\u00a0\n", "bom-late.jsonl": "\n\ufeff\n"}
    for name, text in {**nearly, **blank}.items():
        (tmp_path / name).write_text(text, encoding="utf-8", newline="")
        candidates.append(tmp_path / name)
    for path in candidates:
        if not path.name.lower().endswith(LOG_SUFFIXES):
            continue
        if holds_no_record(path):
            assert rftcost.read_events(path).records_read == 0, path
    assert all(holds_no_record(tmp_path / name) for name in blank)
    for name in nearly:
        assert not holds_no_record(tmp_path / name), name
        # The reader reads a record, or says what is wrong ('""' is no JSON object).
        with contextlib.suppress(UnreadableFileError):
            assert rftcost.read_events(tmp_path / name).records_read >= 1, name


@pytest.mark.parametrize("buckets", [None, 2])
def test_every_empty_kind_reads_as_zero_records(tmp_path: Path, buckets: int | None) -> None:
    for path in empty_files(tmp_path / "logs"):
        assert holds_no_record(path), path
        billed = rftcost.bill(path, buckets=buckets)
        assert billed.log is not None and billed.log.counts() == {
            "records_read": 0, "accepted": 0, "duplicates": 0, "rejected": 0
        }, path  # fmt: skip
        assert billed.log.files == (str(path),)


def test_an_unreadable_file_is_left_to_the_readers(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"\x1f\x8b not gzip")
    zero = tmp_path / "zero.parquet"
    zero.write_bytes(b"")
    survey = survey_logs([broken, zero])
    assert survey.files == (broken, zero) and survey.files_without_records == ()
    for path in (broken, zero):
        with pytest.raises(UnreadableFileError, match=path.name):
            rftcost.read_events(path)


def test_the_survey_names_folders_without_logs_and_why(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "b.csv").write_text("")  # no header: no event log
    shutil.copy(SAMPLES / "2025-05.jsonl", tmp_path / "may.jsonl")
    survey = survey_logs([tmp_path / "may.jsonl", folder])
    assert survey.folders_without_logs == (
        (folder, (f"{folder / 'b.csv'}: not an event log (no job_id, ts, event), skipped",)),
    )
    assert survey.files == (tmp_path / "may.jsonl",) and not survey.holds_no_record


def test_a_path_that_is_not_here_is_left_to_the_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``s3://`` or ``table:`` paths are Spark's to list: an empty local file beside one
    is a warning, not "nothing to read"; a missing path is still the reader's error."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    survey = survey_logs([empty, "s3://bucket/rft-events/", "table:events"])
    assert survey.elsewhere == ("s3://bucket/rft-events/", "table:events")
    assert survey.files_without_records == (empty,) and not survey.holds_no_record
    code, out, err = cli(capsys, "bill", str(empty), str(tmp_path / "missing.jsonl"))
    assert code == 2 and out == ""
    assert err.splitlines()[-1] == f"error: {tmp_path / 'missing.jsonl'}: no such file or folder"
