"""Safe outputs: no CSV cell a spreadsheet runs, no HTML the input made, no Markdown table a
name breaks, and no output that overwrites an input (hostile/injection, hostile/policy)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from builders import JobLog
from hypothesis import given, settings
from hypothesis import strategies as st
from test_report import CHROMIUM_FLAGS, chromium

import rftcost
from rftcost.cli.common import markdown_table, markdown_text
from rftcost.csvsafe import (
    FORMULA_TRIGGERS,
    neutralise_csv_cell,
    neutralise_csv_column,
    neutralise_csv_frame,
)
from rftcost.policy import load_policy
from rftcost.report import html_report
from rftcost.spend import Budget, Budgets

HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"
INJECTION = HOSTILE / "injection" / "log.jsonl"
INVOICE = HOSTILE / "injection" / "invoice.csv"
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

MARKUP = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '"><svg onload=alert(3)>',
    "'><iframe src=javascript:alert(4)>",
    "--><script>alert(5)</script><!--",
    "]]><script>alert(6)</script>",
    "$^$ & <b>bold</b>",
]


def main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the real entry point in process (errors mapped to one line and exit 2)."""
    from rftcost.cli import main as cli_main

    monkeypatch.setattr(sys, "argv", ["rftcost", *args])
    with pytest.raises(SystemExit) as done:
        cli_main()
    return int(done.value.code or 0)


def runs_as_formula(cell: str) -> bool:
    return bool(cell) and cell[0] in FORMULA_TRIGGERS and not NUMBER.fullmatch(cell)


def csv_cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- CSV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://127.0.0.1/x","click")', '\'=HYPERLINK("http://127.0.0.1/x","click")'),
        ('+cmd|" /C calc"!A0', '\'+cmd|" /C calc"!A0'),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("-1+1", "'-1+1"),  # not a number: a spreadsheet computes it
        ("\t=2+3", "'\t=2+3"),
        ("\r=3+4", "'\r=3+4"),
        ("-", "'-"),
        ("-12.50", "-12.50"),  # numbers keep their sign
        ("+3", "+3"),
        ("-1e-05", "-1e-05"),
        ("ftjob-abc", "ftjob-abc"),
        ("", ""),
        ("'=already", "'=already"),
    ],
)
def test_neutralise_csv_cell(cell: str, safe: str) -> None:
    assert neutralise_csv_cell(cell) == safe


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("=+-@\t\r'0123456789.eE ab|\"")), max_size=8))
def test_neutralised_cells_never_run_and_keep_their_text(cell: str) -> None:
    safe = neutralise_csv_cell(cell)
    assert not runs_as_formula(safe)
    assert safe in (cell, "'" + cell)
    assert neutralise_csv_cell(safe) == safe  # idempotent
    frame = pd.DataFrame({"name": [cell, None], "n": [-1.5, 2.0]})
    fixed = neutralise_csv_frame(frame)
    assert fixed["name"].iloc[0] == safe and pd.isna(fixed["name"].iloc[1])
    assert fixed["n"].tolist() == [-1.5, 2.0]


def test_neutralise_csv_frame_is_by_column_and_leaves_numbers() -> None:
    frame = pd.DataFrame(
        {
            "job_id": ["=1+1", "ok", "-2"],
            "amount": ["-12.50", "0.00", "3.00"],
            "seconds": [-1.0, 2.0, 3.0],
            "count": [1, -2, 3],
        }
    )
    fixed = neutralise_csv_frame(frame)
    assert fixed["job_id"].tolist() == ["'=1+1", "ok", "-2"]
    assert fixed["amount"].tolist() == ["-12.50", "0.00", "3.00"]
    assert fixed["seconds"].tolist() == [-1.0, 2.0, 3.0] and fixed["count"].tolist() == [1, -2, 3]
    assert frame["job_id"].iloc[0] == "=1+1"  # a copy: the caller's frame is unchanged
    clean = pd.DataFrame({"a": ["x", "y"]})
    assert neutralise_csv_frame(clean) is clean
    assert neutralise_csv_column(pd.Series(["@a"], dtype="string")).tolist() == ["'@a"]


def assert_no_formula(text: str) -> list[dict[str, str]]:
    rows = csv_cells(text)
    assert rows
    for row in rows:
        for key, cell in row.items():
            assert not runs_as_formula(cell or ""), (key, cell)
    return rows


def test_cli_bill_csv_neutralises_names(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(monkeypatch, "bill", str(INJECTION), "-f", "csv") == 0
    rows = assert_no_formula(capsys.readouterr().out)
    jobs = {row["job_id"]: row for row in rows}
    assert set(jobs) == {
        '\'=HYPERLINK("http://127.0.0.1/x","click")',
        "'@SUM(1+1)",
        "ftjob-<script>alert(1)</script>",
        "ftjob-ok",
        "ftjob-pipe|x|y",
    }
    hyperlink = jobs['\'=HYPERLINK("http://127.0.0.1/x","click")']
    assert hyperlink["team"] == '\'+cmd|" /C calc"!A0' and hyperlink["project"] == "'-1+1"
    assert jobs["'@SUM(1+1)"]["project"] == "'=1+1"
    # (the reader trims the tab and CR around names; what is left would still run)
    assert jobs["ftjob-ok"]["team"] == "'=2+3" and jobs["ftjob-ok"]["project"] == "'=3+4"
    assert jobs["ftjob-pipe|x|y"]["team"] == "a|b\nc"  # quoted by CSV, not changed
    assert {row["total_amount"] for row in rows} == {"102.50"}


def test_cli_bill_csv_in_buckets_neutralises_names(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "bill.csv"
    code = main(
        monkeypatch, "bill", str(INJECTION), "--buckets", "2", "--workers", "1", "-o", str(out)
    )
    assert code == 0
    rows = assert_no_formula(out.read_text(encoding="utf-8"))
    assert len(rows) == 5 and "'@SUM(1+1)" in {row["job_id"] for row in rows}


def test_cli_spend_csv_neutralises_names(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for by, expected in (("team", "'@SUM(A1:A2)"), ("project", "'-1+1"), ("job", "'@SUM(1+1)")):
        assert main(monkeypatch, "spend", str(INJECTION), "--by", by, "-f", "csv") == 0
        rows = assert_no_formula(capsys.readouterr().out)
        assert expected in {row[by] for row in rows}


def test_cli_export_focus_csv_neutralises_names_parquet_keeps_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "focus.csv"
    assert main(monkeypatch, "export", "focus", str(INJECTION), "-o", str(out)) == 0
    rows = assert_no_formula(out.read_text(encoding="utf-8"))
    assert "'@SUM(1+1)" in {row["ResourceId"] for row in rows}
    # Parquet is typed data no tool runs as a formula: the exact ids are kept for joins.
    parquet = tmp_path / "focus.parquet"
    assert main(monkeypatch, "export", "focus", str(INJECTION), "-o", str(parquet)) == 0
    assert "@SUM(1+1)" in set(pd.read_parquet(parquet)["ResourceId"])


def test_cli_validate_and_audit_csv_neutralise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        INJECTION.read_text(encoding="utf-8")
        + '{"job_id": "=2+2", "ts": "2025-06-07T08:00:00Z", "event": "=cmd"}\n',
        encoding="utf-8",
    )
    assert main(monkeypatch, "validate", str(log), "-f", "csv") == 1
    assert_no_formula(capsys.readouterr().out)
    dispute, findings = tmp_path / "dispute.csv", tmp_path / "findings.csv"
    code = main(
        monkeypatch, "audit", "--invoice", str(INVOICE), str(INJECTION),
        "--dispute", str(dispute), "-o", str(findings),
    )  # fmt: skip
    assert code == 1
    assert_no_formula(dispute.read_text(encoding="utf-8"))
    rows = assert_no_formula(findings.read_text(encoding="utf-8"))  # -o .csv: CSV
    assert "'-2+3" in {row["job_id"] for row in rows}
    assert any(row["difference"].startswith("-") for row in rows)  # a number keeps its sign


# --- Markdown ----------------------------------------------------------------------------------


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row (split on unescaped pipes)."""
    return [row for table in tables(text) for row in table]


def tables(text: str) -> list[list[list[str]]]:
    """Each Markdown table of ``text``: its rows' cells (split on unescaped pipes)."""
    found: list[list[list[str]]] = []
    previous = False
    for line in text.splitlines():
        is_row = line.startswith("|")
        if is_row and not line.startswith("|---"):
            if not previous:
                found.append([])
            found[-1].append(re.split(r"(?<!\\)\|", line)[1:-1])
        previous = is_row
    return found


def test_markdown_text_escapes_structure() -> None:
    assert markdown_text("a|b\nc") == "a\\|b c"
    assert markdown_text("<script>`x`</script>") == "\\<script\\>\\`x\\`\\</script\\>"
    assert markdown_text("[pay](http://evil)") == "\\[pay\\](http\\://evil)"
    assert markdown_text("-12.50") == "-12.50"
    table = markdown_table(["a", "b"], [["x|y\r\nz", None]])
    assert table_rows(table) == [[" a ", " b "], [" x\\|y z ", "  "]]


@pytest.mark.parametrize(
    "args",
    [
        ["bill", str(INJECTION), "-f", "markdown"],
        ["spend", str(INJECTION), "--by", "project", "-f", "markdown"],
        ["spend", str(INJECTION), "--by", "job", "-f", "markdown"],
        ["validate", str(INJECTION), "-f", "markdown"],
        ["audit", "--invoice", str(INVOICE), str(INJECTION), "-f", "markdown"],
        ["explain", str(INJECTION), "--job", "ftjob-pipe|x|y", "-f", "markdown"],
    ],
)
def test_cli_markdown_tables_hold_their_shape(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(monkeypatch, *args) in (0, 1)
    text = capsys.readouterr().out
    found = tables(text)
    if args[0] != "validate":
        assert found
    for table in found:  # no name adds or removes a cell
        assert len({len(row) for row in table}) == 1, table
    for line in text.splitlines():  # no newline from a name starts a line of its own
        assert not line.startswith(("c |", "line2", "c ")), line
    assert not re.search(r"(?<!\\)[<>`]", text)  # no HTML or code span from a name
    assert "line1\nline2" not in text and not re.search(r"a(?<!\\)\|b", text)


# --- HTML --------------------------------------------------------------------------------------

ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "footer", "section", "h1", "h2",
    "h3", "p", "strong", "code", "div", "span", "table", "thead", "tbody", "tr", "th", "td",
    "figure", "figcaption",
    # matplotlib's inline SVG
    "svg", "metadata", "rdf:rdf", "cc:work", "dc:type", "dc:date", "dc:format", "dc:creator",
    "cc:agent", "dc:title", "defs", "g", "path", "use", "clippath", "text", "tspan", "rect",
    "pattern", "polyline", "line", "circle", "ellipse", "polygon", "lineargradient", "stop",
}  # fmt: skip


class Walker(HTMLParser):
    """Every element, attribute and text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def walk(page: str) -> Walker:
    walker = Walker()
    walker.feed(page)
    return walker


def assert_nothing_made_by_input(page: str) -> Walker:
    walker = walk(page)
    for tag, attrs in walker.tags:
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            assert "javascript:" not in (value or "").lower(), (tag, name, value)
            assert "alert(" not in (value or ""), (tag, name, value)
    assert not any("alert(" in comment for comment in walker.comments)
    return walker


def hostile_bill() -> rftcost.Bill:
    logs = []
    for number, name in enumerate(MARKUP):
        log = JobLog(f"ftjob-{number}{name}").created(team=name, project=name, model=name)
        logs.append(log.phase("rollout", hours=1).add("failed" if number % 2 else "succeeded"))
    broken = JobLog("<b>broken</b>").created(team="<i>t</i>").add("phase_end", phase="rollout")
    logs.append(broken.add("succeeded"))
    frame = pd.concat([log.frame() for log in logs], ignore_index=True)
    base = load_policy(None)
    policy = base.model_copy(
        update={
            "name": "<script>alert('policy')</script>",
            "description": "<img src=x onerror=alert('description')>",
            "extends": '"><svg onload=alert(1)>',
            "sources": ("<a href=javascript:alert(1)>source</a>",),
            "currency": "<img src=x onerror=\"document.title='PWNED'\">",
            "hourly_rates": {**base.hourly_rates, **{name: Decimal(100) for name in MARKUP}},
        }
    )
    return rftcost.bill(frame, policy=policy)


class HostileAudit:
    """An audit document whose every text is markup."""

    def to_dict(self) -> dict[str, Any]:
        finding = {
            "kind": "<script>alert('kind')</script>", "severity": '"><svg onload=alert(1)>',
            "job_id": "ftjob-0<script>alert(1)</script>", "line_type": "<b>x</b>",
            "expected": "1.00", "billed": "2.00", "difference": "1.00",
            "explanation": "<img src=x onerror=alert('why')>", "invoice_line": "<i>3</i>",
        }  # fmt: skip
        return {
            "schema": "rftcost.audit/v1", "invoice": "<script>alert('invoice')</script>",
            "currency": "USD", "policy": "<b>p</b>",
            "summary": {"expected_total": "1.00", "billed_total": "2.00", "difference": "1.00",
                        "findings": 1, "overbilled": "1.00", "underbilled": "0.00"},
            "findings": [finding],
        }  # fmt: skip


@pytest.fixture(scope="module")
def hostile_page() -> str:
    bill = hostile_bill()
    budgets = Budgets(
        items=(Budget(team=MARKUP[0], period="2025-06", amount=Decimal("1")),),
        source="<script>alert('budgets')</script>",
    )
    return html_report(
        bill, budgets=budgets, audit=HostileAudit(), title="<script>alert('title')</script>"
    )


def test_report_escapes_every_text_from_logs_policy_audit_and_title(hostile_page: str) -> None:
    walker = assert_nothing_made_by_input(hostile_page)
    text = "".join(walker.text)
    # Each hostile text is on the page as text (escaped), from every source.
    for name in MARKUP:
        assert name in text, name
    for source in ("policy", "description", "invoice", "budgets", "title", "kind", "why"):
        assert f"alert('{source}')" in text, source
    assert "<img src=x onerror=\"document.title='PWNED'\">" in text  # the currency
    assert "<a href=javascript:alert(1)>source</a>" in text
    assert "Content-Security-Policy" in hostile_page and "script-src" not in hostile_page


def test_report_of_the_hostile_cases_from_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    assert main(monkeypatch, "report", str(INJECTION), "-o", str(out)) == 0
    walker = assert_nothing_made_by_input(out.read_text(encoding="utf-8"))
    assert "ftjob-<script>alert(1)</script>" in "".join(walker.text)


@pytest.mark.skipif(
    chromium() is None,
    reason="headless Chromium not installed (Debian: apt-get install -y chromium)",
)
def test_hostile_report_in_headless_chromium_creates_nothing(
    hostile_page: str, tmp_path: Path
) -> None:
    import subprocess

    page = tmp_path / "hostile.html"
    page.write_text(hostile_page, encoding="utf-8")
    binary = chromium()
    assert binary is not None
    dom = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    walker = assert_nothing_made_by_input(dom.stdout)
    tags = [tag for tag, _ in walker.tags]
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
    # The document's title is the escaped text (an onerror handler would have set 'PWNED').
    title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S)
    assert title is not None and "PWNED" not in title.group(1)
    assert "alert('title')" in title.group(1)
    assert "<script>alert(1)</script>" in "".join(walker.text)


# --- never overwrite an input; -o picks the format --------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "log.jsonl"
    log.write_text(INJECTION.read_text(encoding="utf-8"), encoding="utf-8")
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nx,2025-06,10\n", encoding="utf-8")
    invoice = tmp_path / "invoice.csv"
    invoice.write_text(INVOICE.read_text(encoding="utf-8"), encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text('name = "p"\nextends = "openai-rft"\n', encoding="utf-8")
    # A policy reads the files it extends and its price table: outputs never write over them.
    prices = tmp_path / "prices.toml"
    prices.write_bytes(
        (Path(rftcost.__file__).parent / "data/prices/openai-standard.toml").read_bytes()
    )
    child = tmp_path / "child.toml"
    child.write_text(
        'name = "c"\nextends = "policy.toml"\n[prices]\ntable = "prices.toml"\n', encoding="utf-8"
    )
    project_map = tmp_path / "map.csv"
    project_map.write_text("proj_x,p\n", encoding="utf-8")
    symlink, hardlink = tmp_path / "symlink.jsonl", tmp_path / "hardlink.jsonl"
    symlink.symlink_to(log)
    hardlink.hardlink_to(log)
    return {
        "folder": folder, "log": log, "budgets": budgets, "invoice": invoice, "policy": policy,
        "symlink": symlink, "hardlink": hardlink, "prices": prices, "child": child,
        "map": project_map,
    }  # fmt: skip


def refused_cases(w: dict[str, Path]) -> list[list[str]]:
    log, folder = str(w["log"]), str(w["folder"])
    return [
        ["bill", log, "-o", log],
        ["bill", folder, "-f", "csv", "-o", str(w["folder"] / "bill.csv")],
        ["bill", log, "--policy", str(w["policy"]), "-o", str(w["policy"])],
        ["validate", log, "-o", log],
        ["spend", log, "--budgets", str(w["budgets"]), "-o", str(w["budgets"])],
        ["audit", "--invoice", str(w["invoice"]), log, "--dispute", str(w["invoice"])],
        ["audit", "--invoice", str(w["invoice"]), log, "-o", str(w["invoice"])],
        ["audit", "--invoice", str(w["invoice"]), log, "-o", "a.csv", "--dispute", "a.csv"],
        ["chart", "spend", folder, "-o", str(w["folder"] / "s.png")],
        ["report", log, "--invoice", str(w["invoice"]), "-o", str(w["invoice"])],
        ["export", "focus", folder, "-o", str(w["folder"] / "focus.csv")],
        ["import-openai", folder, "-o", log],
        ["calibrate", log, "-o", log],
        ["explain", log, "--job", "ftjob-ok", "--chart", "x.svg", "-o", "x.svg"],
        ["explain", log, "--job", "ftjob-ok", "-o", log],
        ["bill", log, "--policy", str(w["child"]), "-o", str(w["policy"])],  # extended
        ["spend", log, "--policy", str(w["child"]), "-f", "csv", "-o", str(w["prices"])],
        ["audit", "--invoice", str(w["invoice"]), log, "--project-map", str(w["map"]),
         "-o", str(w["map"])],
        ["audit", "--invoice", str(w["invoice"]), log, "--project-map", str(w["map"]),
         "--dispute", str(w["map"])],
        ["bill", log, "-o", str(w["symlink"])],  # the same file through a symbolic link
        ["bill", log, "-f", "csv", "-o", str(w["hardlink"])],  # or a hard link
    ]  # fmt: skip


def test_an_output_never_overwrites_an_input(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    workspace: dict[str, Path],
) -> None:
    import rftcost.engines

    def no_work(*_: Any, **__: Any) -> Any:
        raise AssertionError("the output must be checked before the work")

    monkeypatch.setattr(rftcost.engines, "bill", no_work)
    monkeypatch.chdir(workspace["folder"].parent)
    before = {p: p.read_bytes() for p in workspace.values() if p.is_file()}
    for args in refused_cases(workspace):
        assert main(monkeypatch, *args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1, (args, err)
        assert "never overwrites" in err or "two outputs" in err, (args, err)
        assert "Error" not in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in workspace["folder"].iterdir()) == ["log.jsonl"]


def test_a_file_of_an_input_folder_under_another_name_is_never_overwritten(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A hard link to a log of the folder, and a file a link in the folder reaches (read
    with --follow-links): both were written over with the bill table, exit 0."""
    folder = tmp_path / "logs"
    folder.mkdir()
    lines = INJECTION.read_text(encoding="utf-8")
    log = folder / "a.jsonl"
    log.write_text(lines, encoding="utf-8")
    outside = tmp_path / "other.jsonl"
    outside.write_text(lines, encoding="utf-8")
    (folder / "link.jsonl").symlink_to(outside)
    (tmp_path / "hard.jsonl").hardlink_to(log)
    for output, more in (("hard.jsonl", []), ("other.jsonl", ["--follow-links"])):
        assert main(monkeypatch, "bill", str(folder), *more, "-o", str(tmp_path / output)) == 2
        assert "never overwrites its input" in capsys.readouterr().err
    assert log.read_text(encoding="utf-8") == outside.read_text(encoding="utf-8") == lines


def test_an_output_into_a_folder_a_followed_link_leads_to_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """With --follow-links the folder a link leads to is read as the input's: a new file
    written there would be read by the next run (it was written, exit 0)."""
    folder, outside = tmp_path / "logs", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "a.jsonl").write_text(INJECTION.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "more").symlink_to(outside, target_is_directory=True)
    out = outside / "bill.csv"
    args = ["bill", str(folder), "-o", str(out)]
    assert main(monkeypatch, *args, "--follow-links") == 2
    assert "never overwrites its input" in capsys.readouterr().err and not out.exists()
    assert main(monkeypatch, *args) == 0  # the link not followed: not read, may be written


def test_an_output_through_a_loop_of_links_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """It ended with Python's own words: ``RuntimeError: Symlink loop from ...``."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for output in (tmp_path / "a", tmp_path / "a" / "bill.txt"):
        assert main(monkeypatch, "bill", str(INJECTION), "-o", str(output)) == 2
        err = capsys.readouterr().err
        assert f"{output}: leads into a loop of links" in err and "RuntimeError" not in err


def test_an_output_into_a_missing_folder_is_refused_before_the_work(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    workspace: dict[str, Path],
    tmp_path: Path,
) -> None:
    import rftcost.engines

    monkeypatch.setattr(rftcost.engines, "bill", None)  # any call would fail
    missing = tmp_path / "no" / "such"
    log = str(workspace["log"])
    for args in (
        ["bill", log, "-o", str(missing / "bill.csv")],
        ["spend", log, "-o", str(missing / "spend.md")],
        ["chart", "spend", log, "-o", str(missing / "spend.png")],
        ["report", log, "-o", str(missing / "report.html")],
        ["export", "focus", log, "-o", str(missing / "focus.parquet")],
        ["bill", log, "-o", str(tmp_path)],  # a folder is no file
    ):
        assert main(monkeypatch, *args) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert "does not exist" in err or "is a folder" in err, err
    assert not missing.parent.exists()
    # A link whose target's folder is missing: that folder is named, not the link's.
    (tmp_path / "link.json").symlink_to(missing / "bill.json")
    assert main(monkeypatch, "bill", log, "-o", str(tmp_path / "link.json")) == 2
    err = capsys.readouterr().err
    assert f"the folder {missing} does not exist (where the link" in err, err


@pytest.mark.parametrize(
    ("suffix", "check"),
    [
        (".csv", lambda text: csv_cells(text)[0]["job_id"] != ""),
        (".json", lambda text: json.loads(text)["schema"] == "rftcost.bill/v1"),
        (".md", lambda text: text.startswith("## RFT bill") and "|---|" in text),
        (".txt", lambda text: "Total USD" in text and "|---|" not in text),
    ],
)
def test_the_output_suffix_picks_the_format(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, suffix: str, check: Any
) -> None:
    out = tmp_path / f"bill{suffix}"
    assert main(monkeypatch, "bill", str(INJECTION), "-o", str(out)) == 0
    assert check(out.read_text(encoding="utf-8"))


def test_format_option_wins_over_the_suffix_and_other_commands_follow_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "bill.csv"
    assert main(monkeypatch, "bill", str(INJECTION), "-f", "json", "-o", str(out)) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["schema"] == "rftcost.bill/v1"
    spend_out = tmp_path / "spend.json"
    assert main(monkeypatch, "spend", str(INJECTION), "-o", str(spend_out)) == 0
    assert json.loads(spend_out.read_text(encoding="utf-8"))["schema"] == "rftcost.spend/v1"
    validate_out = tmp_path / "validate.json"
    assert main(monkeypatch, "validate", str(INJECTION), "-o", str(validate_out)) == 0
    assert json.loads(validate_out.read_text(encoding="utf-8"))["schema"] == "rftcost.validate/v1"
    explain_out = tmp_path / "explain.csv"
    code = main(monkeypatch, "explain", str(INJECTION), "-j", "@SUM(1+1)", "-o", str(explain_out))
    assert code == 0
    stretches = assert_no_formula(explain_out.read_text(encoding="utf-8"))
    assert {row["status"] for row in stretches} >= {"billed"}
    # estimate writes no CSV: a .csv output is refused, not filled with a text table.
    plan = Path(__file__).resolve().parents[1] / "examples" / "plan.json"
    estimate_out = tmp_path / "estimate.csv"
    assert main(monkeypatch, "estimate", str(plan), "-o", str(estimate_out)) == 2
    assert "does not write CSV" in capsys.readouterr().err and not estimate_out.exists()


@pytest.mark.parametrize("command", ["bill", "validate", "spend", "audit"])
@pytest.mark.parametrize("suffix", [".parquet", ".html", ".jsonl"])
def test_a_suffix_of_a_format_no_text_command_writes_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    suffix: str,
) -> None:
    """``bill -o x.parquet`` wrote the text table under that name: a later bill of the
    folder then stopped at a Parquet file that is not one."""
    out = tmp_path / f"out{suffix}"
    args = [command, str(INJECTION), "-o", str(out)]
    if command == "audit":
        args[1:1] = ["--invoice", str(INVOICE)]
    assert main(monkeypatch, *args) == 2
    err = capsys.readouterr().err
    assert f"does not write {suffix} files" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


# --- text on a terminal ------------------------------------------------------------------------


def test_table_output_shows_markup_and_control_characters_as_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "log.jsonl"
    job = JobLog("ftjob-\x1b[2J\x1b]0;pwned\x07\x9bx").created(team="[/bold][red]t")
    job.phase("rollout", hours=1).add("succeeded").frame().to_json(
        log, orient="records", lines=True
    )
    for args in (["bill", str(log)], ["spend", str(log)], ["validate", str(log)]):
        assert main(monkeypatch, *args) == 0, args  # rich markup in a name is no error
        out = capsys.readouterr().out
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", out), (args, out)
        if args[0] != "validate":
            assert "[/bold][red]t" in out
    assert main(monkeypatch, "bill", str(log), "-f", "json") == 0
    document = json.loads(capsys.readouterr().out)  # JSON keeps the exact name
    # (should a reader come to reject control characters in ids, there is no job to show)
    assert [j["job_id"] for j in document["jobs"]] in (
        ["ftjob-\x1b[2J\x1b]0;pwned\x07\x9bx"],
        [],
    )


def test_a_bell_or_backspace_in_a_name_is_shown_in_tables_not_dropped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """rich drops BEL and backspace from what it prints: the id shown would not be the id."""
    log = tmp_path / "log.jsonl"
    job = JobLog("ftjob-\x07\x08").created(team="t\x07")
    job.add("phase_end", phase="rollout").add("succeeded")  # invalid: in spend's notes too
    job.frame().to_json(log, orient="records", lines=True)
    for args in (["bill", str(log)], ["spend", str(log)], ["explain", str(log), "-j", job.job_id]):
        main(monkeypatch, *args)
        out = capsys.readouterr().out
        assert "ftjob-\\u0007\\u0008" in out, (args, out)
        assert args[0] == "spend" or "t\\u0007" in out, (args, out)


# Every interpolation into HTML in rftcost/report.py, vetted: markup the module built from
# escaped parts, numbers, or constants. Anything else must go through _e (or _slug).
VETTED_HTML_INTERPOLATIONS = {
    "_CSP", "_CSS", "body", "moment", "counts['accepted']", "counts['duplicates']",
    "counts['records_read']", "counts['rejected']", "cls", "html_cards", "UNALLOCATED",
    "len(over)", "badge", "len(findings) - _MAX_FINDINGS", "len(jobs) - _MAX_TIMELINES",
    "len(jobs)", "len(top)", "svg", "head", "cells",
}  # fmt: skip


def test_every_html_interpolation_in_the_report_is_escaped() -> None:
    """Walks the report's templates (its f-strings that make HTML): each value is escaped."""
    import ast

    import rftcost.report

    source = Path(rftcost.report.__file__).read_text(encoding="utf-8")
    unvetted = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.JoinedStr):
            continue
        literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        if not any(c in literal for c in '<>"'):
            continue  # plain text, escaped where it is used
        for part in node.values:
            if not isinstance(part, ast.FormattedValue):
                continue
            value = part.value
            escaped = (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id in ("_e", "_slug")
            )
            if not escaped and ast.unparse(value) not in VETTED_HTML_INTERPOLATIONS:
                unvetted.append(f"report.py:{node.lineno}: {ast.unparse(value)}")
    assert not unvetted, unvetted


def test_report_with_the_currency_markup_policy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """hostile/policy/currency-markup.toml: refused as a policy (a currency is an ISO 4217
    code) or, if read, its currency is text on the page, never an element."""
    out = tmp_path / "report.html"
    policy = HOSTILE / "policy" / "currency-markup.toml"
    code = main(monkeypatch, "report", str(INJECTION), "--policy", str(policy), "-o", str(out))
    if code == 2:
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "currency" in err
        assert not out.exists()
        return
    assert code == 0
    walker = assert_nothing_made_by_input(out.read_text(encoding="utf-8"))
    assert "<img src=x onerror=\"document.title='PWNED'\">" in "".join(walker.text)


def test_validate_shows_a_short_excerpt_of_a_long_rejected_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        json.dumps({"job_id": "j", "ts": "2025-06-02T08:00:00Z", "event": "A" * 5000}) + "\n",
        encoding="utf-8",
    )
    assert main(monkeypatch, "validate", str(log)) == 1
    out = capsys.readouterr().out
    assert "A" * 70 in out and "A" * 100 not in out and "…" in out
    assert main(monkeypatch, "validate", str(log), "-f", "json") == 1
    assert json.loads(capsys.readouterr().out)["rejected"][0]["value"].startswith("A" * 50)


def test_estimate_never_overwrites_its_plan_or_the_plans_data(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import shutil

    examples = Path(__file__).resolve().parents[1] / "examples"
    shutil.copytree(examples / "data", tmp_path / "data")
    plan = shutil.copy(examples / "plan.json", tmp_path / "plan.json")
    train = tmp_path / "data" / "train.jsonl"
    before = train.read_bytes()
    for target in (plan, train):
        assert main(monkeypatch, "estimate", str(plan), "-f", "json", "-o", str(target)) == 2
        err = capsys.readouterr().err
        assert "never overwrites" in err and len(err.strip().splitlines()) == 1
    assert train.read_bytes() == before
    assert json.loads(Path(plan).read_text(encoding="utf-8"))["model"] == "o4-mini-2025-04-16"


def test_a_newline_in_a_name_never_splits_a_terminal_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "log.jsonl"
    job = JobLog("ftjob-a\nforged  | 1 | 2 |").created(team="t\r\nx")
    job.phase("rollout", hours=1).add("succeeded").frame().to_json(
        log, orient="records", lines=True
    )
    for args in (["bill", str(log)], ["spend", str(log), "--by", "job"]):
        assert main(monkeypatch, *args) == 0, args
        out = capsys.readouterr().out
        assert not any(line.startswith("forged") for line in out.splitlines()), (args, out)
        assert "\\n" in out, (args, out)


def test_markdown_escapes_dollar_signs_so_github_draws_no_math() -> None:
    assert markdown_text("$^$ and $\\sqrt{x}$") == "\\$^\\$ and \\$\\\\sqrt{x}\\$"


def test_billable_hours_are_shown_as_r11_rounds_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # 6030 s = 1.675 h: a float shows 1.67; R11 rounds half up to 1.68, as the charge does.
    log = tmp_path / "log.jsonl"
    JobLog("ftjob-r11").created(team="t").phase("rollout", seconds=6030).add(
        "succeeded"
    ).frame().to_json(log, orient="records", lines=True)
    assert main(monkeypatch, "bill", str(log)) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "ftjob-r11" in line)
    assert row.split()[3:5] == ["1.68", "1.68"], row


def test_direction_marks_are_shown_not_obeyed() -> None:
    """U+202E would show a name reversed on a terminal (``exe.txt`` for ``txt.exe``)."""
    from rftcost.cli.common import visible_controls

    for mark in ("\u202e", "\u202a", "\u2066", "\u2069", "\u200f", "\u061c", "\x9b"):
        shown = visible_controls(f"a{mark}b")
        assert mark not in shown and shown == f"a\\u{ord(mark):04x}b"


@given(st.text(alphabet=st.characters(max_codepoint=0x2100), max_size=40))
def test_controls_are_shown_the_same_on_the_ascii_fast_path(text: str) -> None:
    from rftcost.textsafe import CONTROL_CHARACTERS, visible_controls

    by_pattern = CONTROL_CHARACTERS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    assert visible_controls(text) == by_pattern


def test_a_name_with_a_line_break_cannot_forge_a_line_of_the_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The invalid-jobs list and the rejected records of bill and validate: one line each.
    from builders import cli

    forged = "a\nRecords: 0 read, all good"
    records = [
        {"job_id": forged, "ts": "2025-06-01T08:00:00Z", "event": "job_created"},
        {"job_id": forged, "ts": "not a time", "event": "succeeded"},
        {"job_id": "b\u2028c\rd", "ts": "2025-06-01T08:00:00Z", "event": "nonsense"},
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    for command in (
        ["bill", str(log)],
        ["validate", str(log)],
        ["validate", str(log), "-f", "markdown"],
    ):
        code, out, _ = cli(capsys, *command)
        assert code in (0, 1), out
        lines = out.splitlines()
        assert not any(line.startswith(("Records: 0", "c", "d")) for line in lines), command
        assert "\r" not in out and "\u2028" not in out, command


def test_files_written_show_a_control_character_in_a_name_visibly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A NUL (or ESC) in a job id or team reaches the HTML report, the FOCUS CSV and the
    dispute CSV written as ``\\u0000``, as on the terminal and in ``bill -f csv``: never a
    raw NUL, which ends a C string in the tool reading the file or is a parse error in a
    page."""
    job = "ftjob-\x00\x1b[2Jx"
    log = tmp_path / "log.jsonl"
    JobLog(job).created(team="t\x00eam").phase("rollout", hours=1).add("succeeded").frame().to_json(
        log, orient="records", lines=True
    )
    invoice = tmp_path / "invoice.csv"
    header = "invoice_id,line,job_id,line_type,quantity,unit,unit_price,amount,currency"
    # Two hours billed for one: a finding worth disputing.
    line = ["INV", "1", job, "compute", "2.00", "hours", "100.00", "200.00", "USD"]
    with invoice.open("w", newline="") as handle:
        csv.writer(handle).writerows([header.split(","), line])
    report, focus, dispute = tmp_path / "r.html", tmp_path / "f.csv", tmp_path / "d.csv"
    assert main(monkeypatch, "report", str(log), "-o", str(report)) == 0
    assert main(monkeypatch, "export", "focus", str(log), "-o", str(focus)) == 0
    code = main(monkeypatch, "audit", str(log), "-i", str(invoice), "--dispute", str(dispute))
    assert code == 1, capsys.readouterr().err
    for path in (report, focus, dispute):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", text), path
        assert "ftjob-\\u0000\\u001b[2Jx" in text, path


def test_markdown_names_that_look_like_web_addresses_make_no_live_link() -> None:
    """GitHub makes ``https://…`` and ``www.…`` in text a link: a team named so was a
    clickable link in a CI summary. The scheme's colon and www's dot are escaped (they
    render as themselves, and GitHub autolinks only unescaped ones)."""
    from rftcost.cli.common import markdown_text

    assert markdown_text("https://evil.example/login") == "https\\://evil.example/login"
    assert markdown_text("go www.evil.example") == "go www\\.evil.example"
    assert markdown_text("team:search") == "team:search"  # no scheme: left as it is
