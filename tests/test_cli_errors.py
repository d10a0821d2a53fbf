"""Every way a command can be refused: one line on stderr, exit 2, never a raw exception.

Each case runs the real entry point (``rftcost.cli.main``, which maps an ``RftcostError``
to one line and exit 2) in this process, so that the walk stays fast. The line must say
what is wrong in words: no Python exception class name, no traceback.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rftcost.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOOD_LOG = ROOT / "examples" / "audit" / "broken-job.jsonl"  # small, readable
PLAN = ROOT / "examples" / "plan.json"

# A Python exception class name at the start of a line or after "error: ", or a traceback.
_RAW = re.compile(
    r"Traceback|(?:^|error: )[A-Z][A-Za-z]*(?:Error|Exception|Warning)\b|"
    r"\b(?:KeyError|ValueError|TypeError|OverflowError|OutOfBoundsDatetime|ParserError|"
    r"ArrowInvalid|ArrowTypeError|JSONDecodeError|UnicodeDecodeError|ZoneInfoNotFoundError|"
    r"InvalidOperation|RecursionError|AttributeError|IndexError)\b"
)


def _files(tmp: Path) -> dict[str, Path]:
    """The bad inputs, written once per test into its temporary folder."""
    files = {
        "not_json": ("plan.json", "this is not JSON {"),
        "plan_list": ("plan-list.json", "[1, 2, 3]"),
        "policy_unknown_key": ("policy.toml", 'name = "x"\nextends = "openai-rft"\nfoo = 1\n'),
        "policy_not_toml": ("broken.toml", "name = = =\n"),
        "policy_bad_rate": (
            "rate.toml",
            'name = "x"\nextends = "openai-rft"\n[training]\nhourly_rate = "abc"\n',
        ),
        "policy_cap_zero": (
            "cap0.toml",
            'extends = "openai-rft"\n[cap]\nper_job_amount = "0"\n',
        ),
        "policy_cap_below_a_cent": (
            "cap.toml",
            'extends = "openai-rft"\n[cap]\nper_job_amount = "0.004"\n',
        ),
        "policy_alias_shadows": (
            "alias.toml",
            'extends = "openai-rft"\n[phases.aliases]\nrollout = "queued"\n',
        ),
        "budgets_bad_week": ("budgets-week.csv", "team,period,amount\nsearch,2025-W99,100\n"),
        "invoice_bad_amount": (
            "invoice.csv",
            "invoice_id,line,job_id,line_type,charge_at,description,quantity,unit,unit_price,"
            "amount,currency\nINV-1,1,ftjob-demo-broken-log,compute,2025-06-20T10:05:00Z,"
            "RFT,1.00,hours,100.00,abc,USD\n",
        ),
        "invoice_not_an_invoice": ("notes.csv", "a,b\n1,2\n"),
        "budgets_bad_amount": ("budgets.csv", "team,period,amount\nsearch,2025-06,lots\n"),
        "budgets_bad_period": ("budgets-period.csv", "team,period,amount\nsearch,2025-13,10\n"),
        "budgets_no_header": ("budgets-header.csv", "search;2025-06;10\n"),
        "calibration_not_json": ("calibration.json", "{not json"),
        "calibration_wrong": ("calibration-wrong.json", json.dumps({"schema": "nope"})),
        "export_not_json": ("export.json", '{"object": "fine_tuning.job", "id": '),
        "binary": ("binary.jsonl", "\x00\x01\x02 not text"),
    }
    paths = {}
    for key, (name, text) in files.items():
        path = tmp / name
        path.write_text(text, encoding="utf-8")
        paths[key] = path
    return paths


# (id, arguments: (files, tmp) -> argv, expected words in the line (a regex)).
Case = tuple[str, Callable[[dict[str, Path], Path], list[str]], str]
LOG = str(GOOD_LOG)

CASES: list[Case] = [
    # bill / validate / explain: files, policies, zones
    ("bill-missing-file", lambda f, t: ["bill", str(t / "nope.jsonl")], "no such file"),
    ("bill-unknown-policy", lambda f, t: ["bill", LOG, "--policy", "nope"], "nope"),
    # an option of one value given twice: the parser would keep the last, unsaid
    (
        "audit-two-invoices",
        lambda f, t: ["audit", "-i", str(t / "a.csv"), "--invoice", str(t / "b.csv"), LOG],
        "-i/--invoice given twice",
    ),
    (
        "bill-two-policies",
        lambda f, t: ["bill", LOG, "--policy", "openai-rft", "--policy=azure-rft"],
        "--policy given twice",
    ),
    (
        "export-focus-two-outputs",
        lambda f, t: ["export", "focus", LOG, "-o", str(t / "a.csv"), "-o", str(t / "b.csv")],
        "-o/--output given twice",
    ),
    (
        "bill-policy-unknown-key",
        lambda f, t: ["bill", LOG, "--policy", str(f["policy_unknown_key"])],
        "foo",
    ),
    ("bill-policy-not-toml", lambda f, t: ["bill", LOG, "--policy", str(f["policy_not_toml"])], ""),
    (
        "bill-policy-rate-not-decimal",
        lambda f, t: ["bill", LOG, "--policy", str(f["policy_bad_rate"])],
        "abc|rate",
    ),
    (
        "bill-unknown-zone",
        lambda f, t: ["bill", LOG, "--assume-tz", "Mars/Olympus_Mons"],
        "Mars/Olympus_Mons",
    ),
    (
        "bill-policy-cap-zero",
        lambda f, t: ["bill", LOG, "--policy", str(f["policy_cap_zero"])],
        r"cap0\.toml.*per_job_amount.*at least 0\.01.*'0'",
    ),
    (
        "bill-policy-cap-below-a-cent",
        lambda f, t: ["bill", LOG, "--policy", str(f["policy_cap_below_a_cent"])],
        r"cap\.toml.*per_job_amount.*at least 0\.01.*0\.004",
    ),
    (
        "bill-policy-alias-shadows-a-phase",
        lambda f, t: ["bill", LOG, "--policy", str(f["policy_alias_shadows"])],
        r"alias\.toml.*alias shadows the built-in phase 'rollout'",
    ),
    (
        "bill-too-many-buckets",
        lambda f, t: ["bill", LOG, "--buckets", "100000000"],
        r"--buckets: at most 10,000.*100000000",
    ),
    (
        "bill-too-many-workers",
        lambda f, t: ["bill", LOG, "--buckets", "2", "--workers", "1000000"],
        r"--workers: at most 64.*1000000",
    ),
    (
        "bill-workdir-missing",
        lambda f, t: ["bill", LOG, "--buckets", "2", "--workdir", str(t / "nope")],
        r"nope.*--workdir.*no such folder",
    ),
    (
        "bill-workdir-a-file",
        lambda f, t: ["bill", LOG, "--buckets", "2", "--workdir", LOG],
        r"--workdir.*not a folder",
    ),
    ("validate-missing-file", lambda f, t: ["validate", str(t / "nope")], "no such file"),
    (
        "explain-unknown-zone",
        lambda f, t: ["explain", LOG, "--job", "x", "--assume-tz", "Nowhere/City"],
        "Nowhere/City",
    ),
    ("explain-unknown-job", lambda f, t: ["explain", LOG, "--job", "ftjob-nope"], "ftjob-nope"),
    (
        "explain-chart-bad-suffix",
        lambda f, t: [
            "explain",
            LOG,
            "--job",
            "ftjob-demo-broken-log",
            "--chart",
            str(t / "c.jpg"),
        ],
        "png|svg",
    ),
    # audit: invoices and tolerances
    (
        "audit-missing-invoice",
        lambda f, t: ["audit", "--invoice", str(t / "nope.csv"), LOG],
        "nope.csv",
    ),
    (
        "audit-invoice-bad-amount",
        lambda f, t: ["audit", "--invoice", str(f["invoice_bad_amount"]), LOG],
        "abc|amount",
    ),
    (
        "audit-not-an-invoice",
        lambda f, t: ["audit", "--invoice", str(f["invoice_not_an_invoice"]), LOG],
        "",
    ),
    (
        "audit-bad-tolerance",
        lambda f, t: ["audit", "--invoice", str(f["invoice_bad_amount"]), LOG, "--tolerance", "x"],
        "",
    ),
    # estimate / calibrate: plans, calibrations, amounts
    ("estimate-missing-plan", lambda f, t: ["estimate", str(t / "nope.json")], "nope.json"),
    ("estimate-plan-not-json", lambda f, t: ["estimate", str(f["not_json"])], "JSON"),
    ("estimate-plan-not-an-object", lambda f, t: ["estimate", str(f["plan_list"])], ""),
    (
        "estimate-calibration-not-json",
        lambda f, t: ["estimate", str(PLAN), "-c", str(f["calibration_not_json"])],
        "",
    ),
    (
        "estimate-calibration-wrong-schema",
        lambda f, t: ["estimate", str(PLAN), "-c", str(f["calibration_wrong"])],
        "",
    ),
    (
        "estimate-too-many-draws",
        lambda f, t: ["estimate", str(PLAN), "--draws", "100000000"],
        r"--draws.*at most 100,000.*100,000,000",
    ),
    ("estimate-bad-budget", lambda f, t: ["estimate", str(PLAN), "--budget", "lots"], "lots"),
    ("estimate-bad-vary", lambda f, t: ["estimate", str(PLAN), "--vary", "nonsense"], "nonsense"),
    ("estimate-bad-at", lambda f, t: ["estimate", str(PLAN), "--at", "yesterday"], "yesterday"),
    ("calibrate-missing-file", lambda f, t: ["calibrate", str(t / "nope")], "no such file"),
    # spend / chart / report / export: budgets, windows, months, output suffixes
    (
        "spend-budgets-bad-amount",
        lambda f, t: ["spend", LOG, "--budgets", str(f["budgets_bad_amount"])],
        "lots",
    ),
    (
        "spend-budgets-bad-period",
        lambda f, t: ["spend", LOG, "--budgets", str(f["budgets_bad_period"])],
        "2025-13",
    ),
    (
        "spend-budgets-no-header",
        lambda f, t: ["spend", LOG, "--budgets", str(f["budgets_no_header"])],
        "",
    ),
    (
        "spend-budgets-bad-week",
        lambda f, t: ["spend", LOG, "--budgets", str(f["budgets_bad_week"])],
        r"budgets-week\.csv:2: no such ISO week.*2025-W99",
    ),
    (
        "spend-window-beyond-timestamps",
        lambda f, t: ["spend", LOG, "--window", "0001-01-01..9999-01-01"],
        r"--window.*0001-01-01.*out of range",
    ),
    (
        "spend-window-end-beyond-timestamps",
        lambda f, t: ["spend", LOG, "--window", "..9999-01-01"],
        r"--window.*9999-01-01.*out of range",
    ),
    (
        "chart-cumulative-month-beyond-timestamps",
        lambda f, t: ["chart", "cumulative", LOG, "-o", str(t / "c.png"), "--month", "9999-01"],
        r"--month.*out of range",
    ),
    ("spend-budgets-missing", lambda f, t: ["spend", LOG, "--budgets", str(t / "b.csv")], ""),
    (
        "spend-window-month-13",
        lambda f, t: ["spend", LOG, "--window", "2025-13-01..2025-14-01"],
        "2025-13",
    ),
    (
        "chart-cumulative-month-13",
        lambda f, t: ["chart", "cumulative", LOG, "--month", "2025-13", "-o", str(t / "c.png")],
        "2025-13",
    ),
    ("chart-spend-bad-suffix", lambda f, t: ["chart", "spend", LOG, "-o", str(t / "c.jpg")], ""),
    (
        "chart-timeline-unknown-job",
        lambda f, t: ["chart", "timeline", LOG, "--job", "ftjob-nope", "-o", str(t / "t.png")],
        "ftjob-nope",
    ),
    (
        "report-bad-budgets",
        lambda f, t: [
            "report",
            LOG,
            "-o",
            str(t / "r.html"),
            "--budgets",
            str(f["budgets_bad_amount"]),
        ],
        "lots",
    ),
    ("export-bad-suffix", lambda f, t: ["export", "focus", LOG, "-o", str(t / "costs.txt")], ""),
    # OpenAI exports, policies
    ("import-openai-not-json", lambda f, t: ["import-openai", str(f["export_not_json"])], ""),
    ("import-openai-missing", lambda f, t: ["import-openai", str(t / "nope.json")], "nope.json"),
    ("policy-show-unknown", lambda f, t: ["policy", "show", "nope"], "nope"),
    ("policy-show-not-toml", lambda f, t: ["policy", "show", str(f["policy_not_toml"])], ""),
    # the parser's own refusals: one line too, with where the help is
    ("usage-bad-choice", lambda f, t: ["spend", LOG, "--period", "fortnight"], "--period.*--help"),
    ("usage-below-one", lambda f, t: ["bill", LOG, "--buckets", "0"], "--buckets.*--help"),
    ("usage-unknown-option", lambda f, t: ["bill", LOG, "--nope"], "--nope"),
    ("usage-no-logs", lambda f, t: ["bill"], "LOGS"),
    ("usage-missing-value", lambda f, t: ["bill", LOG, "-o"], "'-o' requires.*--help"),
    ("usage-not-a-number", lambda f, t: ["bill", LOG, "--workers", "x"], "not a whole number"),
    ("report-not-html", lambda f, t: ["report", LOG, "-o", str(t / "r.pdf")], "as .html"),
    ("usage-unknown-command", lambda f, t: ["bil"], "bil"),
    # outputs
    (
        "bill-output-folder-missing",
        lambda f, t: ["bill", LOG, "-o", str(t / "no" / "such" / "bill.csv")],
        "",
    ),
]


def _params() -> list[object]:
    return [pytest.param(argv, words, id=name) for name, argv, words in CASES]


def run_main(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["rftcost", *argv])
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


@pytest.mark.parametrize(("argv", "words"), _params())
def test_every_refusal_is_one_line_and_exit_2(
    argv: Callable[[dict[str, Path], Path], list[str]],
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    arguments = argv(_files(tmp_path), tmp_path)
    code, out, err = run_main(arguments, capsys, monkeypatch)
    lines = err.splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert not _RAW.search(err + out), err
    if words:
        assert re.search(words, lines[0], re.IGNORECASE), lines[0]


def test_debug_shows_the_traceback_instead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rftcost.errors import RftcostError

    monkeypatch.setattr(sys, "argv", ["rftcost", "bill", str(tmp_path / "nope"), "--debug"])
    with pytest.raises(RftcostError):
        main()


def test_spark_without_java_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyspark", reason="the Spark engine needs pyspark (rftcost[spark])")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    code, _, err = run_main(["bill", LOG, "--engine", "spark"], capsys, monkeypatch)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "Java 17" in err and not _RAW.search(err)


@pytest.mark.parametrize("log_text", ["not json\n", '{"job_id": "ftjob-x", "ts": \n'])
def test_an_audit_against_logs_of_no_readable_job_reports_every_line(
    log_text: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Records read, none of them a job: every invoice line is of an unknown job (exit 1),
    not a library exception."""
    log = tmp_path / "bad.jsonl"
    log.write_text(log_text)
    invoice = Path(__file__).parent.parent / "sample_logs" / "invoice-clean.csv"
    code, out, err = run_main(["audit", "--invoice", str(invoice), str(log)], capsys, monkeypatch)
    assert code == 1, (code, err)
    assert not _RAW.search(err + out), err
    assert "unknown_job" in out


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@pytest.mark.parametrize(
    ("name", "text", "option"),
    [
        # A key (a TOML escape may spell any control) named in the refusal.
        ("policy.toml", 'extends = "openai-rft"\n"foo\\u0000\\n\\u001b[2J" = 1\n', "--policy"),
        # A currency quoted as it is in the refusal.
        (
            "invoice.jsonl",
            '{"invoice_id": "I", "job_id": "ftjob-demo-broken-log", "line_type": "compute",'
            ' "quantity": "1", "unit_price": "1.00", "amount": "1.00",'
            ' "currency": "USD\\u0000\\n\\u001b[2J"}\n',
            "--invoice",
        ),
    ],
)
def test_a_refusal_quoting_a_control_character_is_still_one_visible_line(
    name: str,
    text: str,
    option: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A NUL, ESC or newline from a file reaches the error line written visibly (\\u0000),
    as in every other output: never raw on the terminal, never a second line."""
    path = tmp_path / name
    path.write_text(text)
    command = "audit" if option == "--invoice" else "bill"
    code, out, err = run_main([command, str(GOOD_LOG), option, str(path)], capsys, monkeypatch)
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and not _CONTROL.search(err), repr(err)
    assert "\\u0000" in err and "\\u001b" in err, err


def test_the_import_report_shows_a_control_character_in_a_job_id_visibly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """import-openai's report on stderr names jobs from the export: a NUL or ESC in an id
    is written visibly there, as in the bill's table."""
    folder = tmp_path / "export"
    folder.mkdir()
    fixture = ROOT / "tests" / "fixtures" / "openai" / "ftjob-failed1" / "job.json"
    text = fixture.read_text().replace('"ftjob-failed1"', '"ftjob-failed1\\u0000\\u001b[2J"')
    (folder / "job.json").write_text(text)
    code, _out, err = run_main(["import-openai", str(folder)], capsys, monkeypatch)
    assert code == 1, err  # a job object alone: its amount is unknown
    assert "ftjob-failed1\\u0000\\u001b[2J" in err and not _CONTROL.search(err), repr(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["report", str(GOOD_LOG), "-o", "r.html", "--title", "t\udcff"],
        ["explain", str(GOOD_LOG), "-j", "ftjob-\udcff"],
        ["export", "focus", str(GOOD_LOG), "-o", "f.csv", "--provider", "p\udcff"],
        ["bill", str(GOOD_LOG) + "\udcff"],
    ],
)
def test_an_argument_that_is_not_utf8_is_one_line(
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bytes that are not UTF-8 in an argument (kept as ``\\udcff``): refused naming it, not
    a UnicodeEncodeError wherever the title, id or name is written."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(argv, capsys, monkeypatch)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("error: an argument that is not UTF-8 text: ") and "\\udcff" in err
    assert not _RAW.search(err) and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("argv", "repeated"),
    [
        (["audit", "-ia.csv", "-ib.csv", "log"], "-i/--invoice"),
        (["bill", "log", "-o", "-o"], None),  # the second -o is the first one's value
        (["bill", "log", "-o", "a", "--", "-o"], None),  # after --: arguments
        (["bill", "a.jsonl", "b.jsonl", "--strict", "--strict"], None),  # a flag
        (["estimate", "plan.json", "--vary", "n_epochs=2", "--vary", "n_epochs=3"], None),
        (["audit", "-i", "a", "--help", "-i", "b"], None),  # help, as the parser gives it
        (["chart", "spend", "log", "-o", "a.png", "--output=b.png"], "-o/--output"),
    ],
)
def test_repeated_option_reads_tokens_as_the_parser_does(
    argv: list[str], repeated: str | None
) -> None:
    import typer

    from rftcost.cli import app
    from rftcost.cli.argv import repeated_option

    assert repeated_option(typer.main.get_command(app), argv) == repeated


def _gzip_files(folder: Path) -> dict[str, Path]:
    """A log's gzip data three ways broken: plain text named .gz, cut short, damaged."""
    import gzip

    data = gzip.compress(Path(LOG).read_bytes())
    damaged = bytearray(data)
    middle = slice(len(data) // 3, len(data) // 3 + 40)
    damaged[middle] = bytes(b ^ 0x55 for b in damaged[middle])
    files = {
        "plain": Path(LOG).read_bytes(),
        "truncated": data[: len(data) // 2],
        "damaged": bytes(damaged),
        "bad-crc": data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:],
    }
    for name, content in files.items():
        (folder / f"{name}.jsonl.gz").write_bytes(content)
    return {name: folder / f"{name}.jsonl.gz" for name in files}


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("plain", "not gzip data, although its name ends in .gz"),
        ("truncated", "its gzip data ends early: the file is truncated"),
        ("damaged", "its gzip data is damaged"),
        ("bad-crc", "its gzip data is damaged"),
    ],
)
@pytest.mark.parametrize("as_invoice", [False, True], ids=["log", "invoice"])
def test_broken_gzip_is_named_in_our_words(
    kind: str,
    words: str,
    as_invoice: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = _gzip_files(tmp_path)[kind]
    argv = ["audit", "-i", str(broken), LOG] if as_invoice else ["bill", str(broken)]
    code, _, err = run_main(argv, capsys, monkeypatch)
    assert code == 2
    assert err.startswith(f"error: {broken}: cannot read ") and words in err, err
    assert err.count("\n") == 1 and "Error -3" not in err and "end-of-stream" not in err
