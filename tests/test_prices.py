"""rftcost.prices: effective-dated token price tables, model families, layers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from rftcost import prices
from rftcost.errors import PolicyError, PriceNotFoundError
from rftcost.prices import (
    GENAI_PRICES,
    PICO_PER_DOLLAR,
    PriceDifference,
    PriceEntry,
    PriceTable,
    genai_openai_prices,
    genai_price_table,
    layer_price_tables,
    load_price_table,
    packaged_price_tables,
    price_differences,
    resolve_model_family,
)

CUT = datetime(2025, 6, 10, tzinfo=UTC)  # o3's price cut in the packaged table


def entry(day: str, rate: str, source: str = "test") -> PriceEntry:
    return PriceEntry(
        effective_from=datetime.fromisoformat(day).replace(tzinfo=UTC),
        input=rate,  # type: ignore[arg-type]
        cached_input=rate,  # type: ignore[arg-type]
        output=rate,  # type: ignore[arg-type]
        source=source,
    )


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("o3-2025-04-16", "o3"),
        ("o4-mini", "o4-mini"),
        (" o3 ", "o3"),
        ("gpt-4o-2024-08-06-ft", "gpt-4o-2024-08-06-ft"),  # a date not at the end stays
    ],
)
def test_a_model_resolves_to_its_family(model: str, family: str) -> None:
    assert resolve_model_family(model) == family


def test_the_packaged_table() -> None:
    assert packaged_price_tables() == ["openai-standard"]
    table = load_price_table("openai-standard")
    assert table.name == "openai-standard" and table.currency == "USD"
    assert table.unit_tokens == 1_000_000 and table.price_source == "openai-standard"
    assert {"gpt-4.1", "o3", "o4-mini"} <= set(table.models)
    assert all(e.source for entries in table.models.values() for e in entries)


def test_the_entry_in_force_by_date() -> None:
    table = load_price_table("openai-standard")
    before = table.lookup("o3-2025-04-16", CUT - timedelta(microseconds=1))
    at = table.lookup("o3", CUT)
    assert (before.input, before.cached_input, before.output) == (
        Decimal("10.00"), Decimal("2.50"), Decimal("40.00"),
    )  # fmt: skip
    assert (at.input, at.output) == (Decimal("2.00"), Decimal("8.00"))  # from the first instant
    # The same instant in another zone is the same entry.
    assert table.lookup("o3", CUT.astimezone(timezone(timedelta(hours=-7)))) == at
    with pytest.raises(PriceNotFoundError) as caught:
        table.lookup("o3", datetime(2025, 1, 1, tzinfo=UTC))  # before o3's first price
    assert caught.value.model == "o3" and caught.value.at.startswith("2025-01-01")
    with pytest.raises(PriceNotFoundError):
        table.lookup("no-such-model", CUT)  # never a silent $0


def test_entries_are_sorted_by_date_whatever_the_file_order() -> None:
    table = PriceTable(name="t", models={"m": (entry("2025-03-01", "3"), entry("2025-01-01", "1"))})
    assert [e.input for e in table.models["m"]] == [Decimal(1), Decimal(3)]
    assert table.lookup("m", datetime(2025, 2, 1, tzinfo=UTC)).input == Decimal(1)
    assert table.lookup("m-2025-09-09", datetime(2025, 4, 1, tzinfo=UTC)).input == Decimal(3)


def test_to_frame_in_pico_dollars_per_token() -> None:
    table = PriceTable(
        name="t",
        models={"m": (entry("2025-01-01", "1.5"), entry("2025-02-01", "0.000001"))},
    )
    frame = table.to_frame()
    assert frame["input_pico"].tolist() == [1_500_000, 1]  # $1.5 / 1M tokens = 1.5e6 pico
    assert frame["price_index"].tolist() == [0, 1]
    assert frame["effective_ns"].tolist() == [
        int(datetime(2025, m, 1, tzinfo=UTC).timestamp()) * 10**9 for m in (1, 2)
    ]
    assert str(frame["grader_family"].dtype) == "string"
    assert PICO_PER_DOLLAR == 10**12


def test_an_entry_refuses_floats_negative_rates_too_many_decimals_and_naive_dates() -> None:
    good = {"effective_from": CUT, "input": "1", "cached_input": "1", "output": "1", "source": "s"}
    PriceEntry.model_validate(good)
    for key, value in (
        ("input", 1.5),
        ("output", "-1"),
        ("cached_input", "0.0000001"),
        ("input", "NaN"),
        ("effective_from", datetime(2025, 6, 10)),
    ):
        with pytest.raises(ValueError):
            PriceEntry.model_validate({**good, key: value})


def test_a_table_file_and_its_refusals(tmp_path: Path) -> None:
    path = tmp_path / "contract.toml"
    path.write_text(
        '[[models."o3"]]\neffective_from = "2025-01-01T00:00:00+02:00"\ninput = "1"\n'
        'cached_input = "0.25"\noutput = "4"\nsource = "our contract"\n',
        encoding="utf-8",
    )
    table = load_price_table(path)
    assert table.name == "contract"  # the file's name when the table names none
    assert table.lookup("o3", datetime(2024, 12, 31, 22, tzinfo=UTC)).source == "our contract"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[models."o3"]]\ninput = "1"\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="effective_from"):
        load_price_table(bad)
    bad.write_text("models = [", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_price_table(bad)
    with pytest.raises(PolicyError, match="cannot read"):
        load_price_table(tmp_path / "missing.toml")
    with pytest.raises(PolicyError, match="unknown price table"):
        load_price_table("nonesuch")
    # A rate that is no number, a date beyond the kernel's years, TOML nested 500 deep:
    # each one line naming the file (they were InvalidOperation, OverflowError and
    # RecursionError); a byte-order mark before the table is read past.
    entry_text = '[[models."o3"]]\neffective_from = "{at}"\ninput = "{rate}"\n'
    for at, rate, message in (
        ("2025-01-01T00:00:00Z", "abc", "a rate must be a number, got 'abc'"),
        ("9999-04-14T00:00:00Z", "1", "effective_from must be in the years 1970-2261"),
        ("2025-01-01T00:00:00Z", "1E+30", "a rate above 1,000,000 per 1M tokens"),
    ):
        bad.write_text(entry_text.format(at=at, rate=rate), encoding="utf-8")
        with pytest.raises(PolicyError, match=re.escape(message)):
            load_price_table(bad)
    bad.write_text("x = " + "[" * 500 + "]" * 500 + "\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="nested too deeply"):
        load_price_table(bad)
    path.write_text("\ufeff" + path.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_price_table(path).name == "contract"


def test_layers_and_their_differences() -> None:
    override = PriceTable(name="ours", models={"o3": (entry("2025-01-01", "1", "contract"),)})
    base = PriceTable(
        name="base",
        models={
            "o3": (entry("2025-01-01", "1"), entry("2025-03-01", "2", "page")),
            "gpt-5": (entry("2025-01-01", "5"),),
        },
    )
    layered = layer_price_tables(override, base)
    assert layered.overrides == ("o3",) and set(layered.models) == {"o3", "gpt-5"}
    assert layered.models["o3"] == override.models["o3"]  # the override alone prices o3
    assert layered.override_layer().models == override.models
    assert "ours" in layered.price_source and "base" in layered.price_source
    differences = price_differences(override, base)
    assert differences and all(isinstance(d, PriceDifference) for d in differences)
    assert {d.rate for d in differences} == {"input", "cached_input", "output"}
    assert {d.effective_from for d in differences} == {datetime(2025, 3, 1, tzinfo=UTC)}
    assert {d.override for d in differences} == {Decimal(1)}
    assert {d.base for d in differences} == {Decimal(2)}


def test_the_genai_prices_layer() -> None:
    table = genai_price_table()
    assert GENAI_PRICES in table.price_source
    assert "o4-mini" in table.models and table.currency == "USD"
    policy_table = layer_price_tables(load_price_table("openai-standard"), table)
    assert policy_table.lookup("o3", CUT).input == Decimal("2.00")  # the override wins


_SNAPSHOT = Path(prices.__file__).parent / "data" / "genai" / "openai.json"


def _snapshot_is_current() -> None:
    """Skip when the installed genai-prices is not the one the packaged copy was read from:
    the copy is then not used (a command is only slower), which the other tests cover."""
    snapshot = json.loads(_SNAPSHOT.read_text(encoding="utf-8"))
    if snapshot.get("fingerprint") != prices.genai_fingerprint():
        pytest.skip(
            "genai-prices is not the release the packaged copy was read from; regenerate it: "
            "python -c 'import json; from rftcost.prices import genai_openai_prices;"
            " print(json.dumps(genai_openai_prices(), indent=1))' > rftcost/data/genai/openai.json"
        )


def test_the_packaged_genai_snapshot_is_what_the_installed_genai_prices_holds() -> None:
    # Stale, it is only slower (genai-prices is read itself); kept current, it is used.
    _snapshot_is_current()
    assert json.loads(_SNAPSHOT.read_text(encoding="utf-8")) == genai_openai_prices(), (
        "regenerate it: python -c 'import json; from rftcost.prices import genai_openai_prices;"
        " print(json.dumps(genai_openai_prices(), indent=1))' > rftcost/data/genai/openai.json"
    )


def test_the_genai_layer_read_from_the_package_is_the_one_read_from_the_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from_snapshot = genai_price_table.__wrapped__()
    monkeypatch.setattr(prices, "genai_fingerprint", lambda: "another genai-prices")
    from_package = genai_price_table.__wrapped__()
    assert from_package.model_dump_json() == from_snapshot.model_dump_json()
    assert from_package == from_snapshot and len(from_package.models) > 50


def test_the_genai_layer_does_not_import_genai_prices_when_the_snapshot_matches() -> None:
    _snapshot_is_current()
    code = (
        "import sys\n"
        "from rftcost.prices import genai_price_table\n"
        "table = genai_price_table()\n"
        "print(sorted(m for m in ('genai_prices', 'httpx2', 'asyncio') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_dated_snapshot_with_a_row_of_its_own_is_priced_at_that_row(tmp_path: Path) -> None:
    """gpt-4o-2024-05-13 is priced apart from gpt-4o (5 / 15 per 1M, not 2.50 / 10): a name
    the table knows as it is stays itself; other dated names resolve to their family."""
    from builders import JobLog

    import rftcost
    from rftcost.audit import audit_invoice
    from rftcost.focus import focus_rows
    from rftcost.invoice_writers import invoice_from_bill

    table = rftcost.load_policy("openai-rft").price_table
    at = datetime(2025, 7, 1, tzinfo=UTC)
    assert table.lookup("gpt-4o-2024-05-13", at).input == Decimal("5")
    assert table.lookup("gpt-4o-2024-11-20", at).input == Decimal("2.50")
    log = JobLog("snap").created().add("phase_start", phase="rollout").at(minutes=10)
    log.add(
        "grader_usage", grader_model="gpt-4o-2024-05-13", input_tokens=10**6, output_tokens=10**6
    )
    bill = rftcost.bill(
        log.at(minutes=50).add("phase_end", phase="rollout").add("succeeded").frame()
    )
    assert bill.job("snap").grader_amount == Decimal("20.00")
    assert focus_rows(bill)["BilledCost"].sum() == Decimal("120.00")
    for token_types in (False, True):
        invoice = invoice_from_bill(bill, token_types=token_types)
        assert invoice["amount"].map(Decimal).sum() == Decimal("120.00")
        path = tmp_path / f"invoice-{token_types}.csv"
        invoice.to_csv(path, index=False)
        assert audit_invoice(path, bill).findings == ()
    # Billed at gpt-4o's rates: 7.50 short, found.
    at_family = invoice_from_bill(bill).replace({"amount": {"20.00": "12.50"}})
    at_family.to_csv(tmp_path / "family.csv", index=False)
    (finding,) = audit_invoice(tmp_path / "family.csv", bill).findings
    assert finding.difference == Decimal("-7.50")
