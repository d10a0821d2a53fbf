"""One writer per document (rftcost.documents): the same bytes on every path.

The bill (``rftcost.bill/v1`` JSON and the CSV) is written by one writer whether the
log was billed in memory, in hash buckets on disk or on Spark, under every shipped
policy and under a policy that rounds hours to four decimals (whose totals a
hand-made streamed document once cut to two).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import rftcost
from rftcost.billing import Bill
from rftcost.cli import app
from rftcost.documents import BillJsonWriter, write_bill
from rftcost.json_layout import laid_out
from rftcost.policy import Policy, list_policies, load_policy

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_logs"
WORKED = ROOT / "examples" / "worked_examples.jsonl"
BILL_SCHEMA_FILE = ROOT / "schemas" / "bill-v1.schema.json"
FOUR_PLACES = """\
name = "openai-rft-hours4"
extends = "openai-rft"
description = "openai-rft with hours rounded to four decimals"
sources = ["tests/test_documents.py"]

[rounding]
hours_decimals = 4
"""


@pytest.fixture(scope="module")
def four_places(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "hours4.toml"
    path.write_text(FOUR_PLACES)
    return path


def policy_paths(four_places: Path) -> list[str]:
    return [*list_policies(), str(four_places)]


def written(bill: Bill, output_format: str) -> str:
    stream = io.StringIO()
    write_bill(bill, stream, "json" if output_format == "json" else "csv")
    return stream.getvalue()


def test_a_policy_with_four_hour_decimals_is_written_with_four(four_places: Path) -> None:
    bill = rftcost.bill(SAMPLE, policy=four_places, buckets=None)
    document = json.loads(written(bill, "json"))
    assert bill.policy.rounding.hours_decimals == 4
    hours = [document["totals"]["billed_hours"]] + [j["billed_hours"] for j in document["jobs"]]
    assert all(len(h.split(".")[1]) == 4 for h in hours)
    # Not a multiple of 0.01 h: two decimals would change it.
    assert not document["totals"]["billed_hours"].endswith("00")


@pytest.mark.parametrize("policy_index", range(len(list_policies()) + 1))
def test_the_bill_is_the_same_document_in_memory_and_in_buckets(
    policy_index: int, four_places: Path
) -> None:
    policy = policy_paths(four_places)[policy_index]
    whole = rftcost.bill(SAMPLE, policy=policy, buckets=None)
    json_text, csv_text = written(whole, "json"), written(whole, "csv")
    # The writer lays out Bill.to_dict (plus what was read) as json.dumps(indent=2) does.
    assert whole.log is not None
    expected = {**whole.to_dict(), "records": whole.log.counts()}
    assert json_text == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    assert csv_text.splitlines()[0].endswith(",charges,policy,currency")
    assert len(csv_text.splitlines()) == len(whole.jobs) + 1
    for buckets in (2, 3):
        part = rftcost.bill(SAMPLE, policy=policy, buckets=buckets)
        assert written(part, "json") == json_text, buckets
        assert written(part, "csv") == csv_text, buckets


def test_the_command_writes_the_same_bill_streamed_in_buckets(four_places: Path) -> None:
    # The command streams buckets through the same writer, merged back into job order.
    runner = CliRunner()

    def run(*options: str) -> str:
        arguments = ["bill", str(SAMPLE), "--policy", str(four_places), *options]
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, result.output
        return result.output

    whole_bill = rftcost.bill(SAMPLE, policy=four_places, buckets=None)
    whole, whole_csv = run("-f", "json"), run("-f", "csv")
    assert whole == written(whole_bill, "json") and whole_csv == written(whole_bill, "csv")
    assert run("-f", "json", "--buckets", "2", "--workers", "1") == whole
    assert run("-f", "csv", "--buckets", "3", "--workers", "1") == whole_csv


def test_totals_of_bills_written_one_after_another_are_exact(four_places: Path) -> None:
    bill = rftcost.bill(SAMPLE, policy=four_places, buckets=None)
    half = len(bill.jobs) // 2
    stream = io.StringIO()
    writer = BillJsonWriter(stream, bill.policy)
    for rows in (slice(0, half), slice(half, None)):
        writer.add(bill.model_copy(update={"jobs": bill.jobs.iloc[rows]}))
    assert writer.totals() == bill.totals()


def test_an_empty_bill_is_a_whole_document() -> None:
    bill = rftcost.bill(SAMPLE, buckets=None)
    empty = bill.model_copy(update={"jobs": bill.jobs.iloc[0:0]})
    document = json.loads(written(empty, "json"))
    assert document["jobs"] == [] and document["totals"]["jobs"] == 0
    assert (
        written(empty, "json")
        == json.dumps(
            {**empty.to_dict(), "records": bill.log.counts() if bill.log else {}},
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    assert written(empty, "csv").splitlines() == [written(bill, "csv").splitlines()[0]]


_ODD_IDS = [
    "line\nbreak",
    "tab\tand \x1b escape",
    "été",
    "=HYPERLINK(1)",
    'quote " and \\',
    "ftjob-a",
    "ftjob-b",
    "inner \u2028 separator",
    "z" * 300,
]


@pytest.mark.parametrize("output_format", ["json", "csv"])
@pytest.mark.parametrize("order", ["in order", "interleaved", "reversed"])
def test_jobs_spooled_apart_are_written_as_the_bill_made_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output_format: str, order: str
) -> None:
    """A worker lays out its bill's jobs (``spool_jobs``); the writer takes the files in
    whatever order, and merges them only when their jobs interleave."""
    import rftcost.documents as documents
    from rftcost.documents import bill_writer, spool_jobs
    from rftcost.simulate import simulate_jobs

    events = simulate_jobs(n_jobs=len(_ODD_IDS), seed=3)
    names = dict(zip(sorted(events["job_id"].astype(str).unique()), _ODD_IDS, strict=True))
    events["job_id"] = events["job_id"].astype(str).map(names)
    events.to_parquet(tmp_path / "events.parquet")
    bill = rftcost.bill(tmp_path / "events.parquet", buckets=None)
    assert sorted(bill.job_ids()) == sorted(_ODD_IDS)
    spools = tmp_path / "spools"
    spools.mkdir()
    fmt = "json" if output_format == "json" else "csv"
    expected = written(bill, output_format)
    rows = {
        "in order": [slice(0, 0), slice(0, 3), slice(3, 7), slice(7, None)],
        "interleaved": [slice(0, None, 2), slice(0, 0), slice(1, None, 2)],
        "reversed": [slice(6, None), slice(3, 6), slice(0, 3)],
    }[order]
    if order == "in order":  # ids in order: the files are copied one after the other
        monkeypatch.setattr(documents.heapq, "merge", None)
    stream = io.StringIO()
    writer = bill_writer(fmt, stream, bill.policy)
    for part in rows:
        jobs = bill.model_copy(update={"jobs": bill.jobs.iloc[part]})
        writer.adopt(spool_jobs(jobs, spools, output_format=fmt))
    writer.finish(bill.log)
    assert stream.getvalue() == expected
    assert writer.totals() == bill.totals()
    assert not list(spools.iterdir())  # the spool files are gone


def sample_documents() -> Iterator[dict[str, Any]]:
    for policy in list_policies():
        yield json.loads(written(rftcost.bill(SAMPLE, policy=policy, buckets=None), "json"))
    yield json.loads(written(rftcost.bill(WORKED, buckets=None), "json"))


def test_bill_documents_validate_against_the_published_schema() -> None:
    schema = json.loads(BILL_SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for document in sample_documents():
        jsonschema.validate(document, schema)
    assert schema["properties"]["schema"]["const"] == rftcost.billing.BILL_SCHEMA


def test_the_bill_is_the_same_document_on_spark(spark: Any, four_places: Path) -> None:
    # One Spark run per policy (Spark is slow), on the smallest sample log.
    log = SAMPLE / "2025-05.jsonl"
    for policy in policy_paths(four_places):
        resolved: Policy = load_policy(policy)
        whole = rftcost.bill(log, policy=resolved, buckets=None)
        remote = rftcost.bill(log, policy=resolved, engine="spark", buckets=2)
        assert written(remote, "json") == written(whole, "json"), policy
        assert written(remote, "csv") == written(whole, "csv"), policy


def test_estimate_documents_validate_against_the_published_schema() -> None:
    schema = json.loads((ROOT / "schemas" / "estimate-v1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    plan = ROOT / "examples" / "plan.json"
    for budget in ("1", "100000"):  # over (with candidates) and within
        arguments = ["estimate", str(plan), "-f", "json", "--draws", "400", "--budget", budget]
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code in (0, 1), result.output
        document = json.loads(result.output)
        jsonschema.validate(document, schema)
        assert document["budget"]["over"] is (result.exit_code == 1)


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond 64 bits too: orjson refuses
    st.floats(allow_nan=False, allow_infinity=False),  # below 1e-4 orjson writes 0.00001
    st.text(),  # control characters, lone surrogates, U+2028
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(_JSON_VALUES, st.sampled_from(["", "  ", "    "]))
def test_the_fast_layout_writes_what_json_dumps_writes(value: Any, margin: str) -> None:
    expected = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + margin)
    assert laid_out(value, margin) == expected


def test_small_floats_and_what_orjson_refuses_are_laid_out_as_json_does() -> None:
    for value in (
        {"seconds": 1e-05, "n": [4.9305051314766004e-05, -1.7e-09, 0.0001, 0.0]},
        {"id": "\ud800", "big": 2**64},
        {"note": "0.00001 e-5", "x": ["0.00001", 1e-07]},
    ):
        assert laid_out(value, "    ") == json.dumps(value, indent=2, ensure_ascii=False).replace(
            "\n", "\n    "
        )
