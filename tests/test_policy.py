"""rftcost.policy: presets, a TOML file that extends one, and what is refused."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from rftcost.errors import PolicyError
from rftcost.money import RoundingMode
from rftcost.policy import (
    DEFAULT_POLICY,
    CapSettings,
    CapturedProgress,
    DiscountSettings,
    PhaseSettings,
    Policy,
    PriceSettings,
    RoundingScope,
    RoundingSettings,
    SafetyEvaluationSettings,
    list_policies,
    load_policy,
)


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- presets ---------------------------------------------------------------------------------


def test_the_presets_that_ship() -> None:
    assert list_policies() == ["azure-rft", "openai-rft", "openai-rft-no-training-discount"]
    assert DEFAULT_POLICY in list_policies()


def test_the_default_policy() -> None:
    policy = load_policy()
    assert policy == load_policy(DEFAULT_POLICY) and policy.name == "openai-rft"
    assert policy.currency == "USD" and policy.hourly_rates == {"o4-mini": Decimal("100.00")}
    assert policy.rounding == RoundingSettings(
        seconds_mode=RoundingMode.HALF_UP, hours_decimals=2, scope=RoundingScope.CHARGE
    )
    assert policy.data_sharing_discount == DiscountSettings(rate=Decimal("0.50"))
    assert policy.cap == CapSettings() and policy.cap.per_job_amount is None
    assert policy.captured_progress == CapturedProgress(enabled=True)
    assert policy.safety_evaluation == SafetyEvaluationSettings(blocked_model_charged=True)
    assert policy.prices == PriceSettings(table="openai-standard", base="genai-prices")
    assert "rollout" in policy.phases.billable and "queued" in policy.phases.excluded
    assert policy.sources  # where the rules and rates come from
    assert load_policy(policy) is policy  # a Policy passes through


def test_presets_that_extend_the_default() -> None:
    azure = load_policy("azure-rft")
    assert azure.extends == "openai-rft" and azure.cap.per_job_amount == Decimal("5000.00")
    assert azure.safety_evaluation.blocked_model_charged is False
    assert azure.hourly_rates == load_policy().hourly_rates  # inherited
    assert len(azure.sources) == 3  # its own sources replace the parent's
    plain = load_policy("openai-rft-no-training-discount")
    assert plain.data_sharing_discount.scope == ()
    assert plain.sources == load_policy().sources  # none of its own: the parent's


def test_a_rate_by_exact_model_or_family() -> None:
    policy = load_policy()
    assert policy.hourly_rate("o4-mini") == Decimal("100.00")
    assert policy.hourly_rate("o4-mini-2025-04-16") == Decimal("100.00")
    assert policy.hourly_rate("gpt-4o") is None


def test_phase_names_and_aliases() -> None:
    phases = PhaseSettings(aliases={"train": "rollout"})
    assert phases.canonical("train") == "rollout" and phases.canonical("grading") == "grading"
    assert "train" in phases.known


# --- a TOML file -------------------------------------------------------------------------------


def test_a_file_that_extends_a_preset(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'name = "team"\nextends = "openai-rft"\n[rounding]\nhours_decimals = 4\n'
        'hours_mode = "up"\n[hourly_rates]\n"o3" = "250.5"\n',
    )
    policy = load_policy(path)
    assert policy.name == "team" and policy.extends == "openai-rft"
    assert policy.rounding.hours_decimals == 4 and policy.rounding.hours_mode == RoundingMode.UP
    assert policy.rounding.money_mode == RoundingMode.HALF_UP  # the rest from the preset
    # Tables merge key by key: the preset's rate stays, the file's is added.
    assert policy.hourly_rates == {"o4-mini": Decimal("100.00"), "o3": Decimal("250.5")}
    assert load_policy(str(path)) == policy


def test_a_file_that_extends_another_file_and_names_its_own_price_table(tmp_path: Path) -> None:
    (tmp_path / "prices.toml").write_text(
        'name = "mine"\n[[models."o3"]]\neffective_from = "2025-01-01T00:00:00Z"\n'
        'input = "1"\ncached_input = "0.5"\noutput = "4"\nsource = "contract"\n',
        encoding="utf-8",
    )
    write(
        tmp_path,
        'name = "base"\nextends = "openai-rft"\n[prices]\ntable = "prices.toml"\nbase = "none"\n',
        "base.toml",
    )
    child = write(tmp_path, f'name = "child"\nextends = "{tmp_path / "base.toml"}"\n')
    policy = load_policy(child)
    assert policy.price_table.name == "mine" and list(policy.price_table.models) == ["o3"]


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\nextends = "openai-rft"\ncolour = "red"\n', "colour: unknown key"),
        ('name = "x"\nextends = "openai-rft"\n[hourly_rates]\n"o3" = -1\n', "o3"),
        ('name = "x"\nextends = "openai-rft"\n[hourly_rates]\n"o3" = 1.5\n', "o3"),
        ('name = "x"\nextends = "openai-rft"\n[rounding]\nhours_mode = "sideways"\n', "hours_mode"),
        ('name = "x"\nextends = "openai-rft"\n[rounding]\nhours_decimals = 9\n', "hours_decimals"),
        ('name = "x"\nextends = "openai-rft"\ncurrency = "dollars"\n', "ISO 4217"),
        ('name = "x"\nextends = "openai-rft"\n[data_sharing_discount]\nrate = "1.5"\n', "rate"),
        ('name = "x"\nextends = "openai-rft"\n[cap]\nper_job_amount = "0.001"\n', "cap"),
        ('name = "x"\nextends = "openai-rft"\n[phases]\nexcluded = ["rollout"]\n', "both"),
        (
            'name = "x"\nextends = "openai-rft"\n[phases.aliases]\nrollout = "queued"\n',
            "shadows",
        ),
        ('name = "x"\nextends = "openai-rft"\n[prices]\ntable = "nowhere"\n', "price table"),
        ('name = "x"\nextends = "nonesuch"\n', "unknown policy 'nonesuch'"),
        ('name = "x"\nextends = 3\n', "extends must name a policy"),
        ("name = \n", "not valid TOML"),
        ('name = "x"\n', "hourly_rates: required, not given"),
        (
            'name = "x"\nextends = "openai-rft"\n[rounding]\nhours_mode = "sideways"\n',
            "must be one of 'half_up', 'half_even', 'up' or 'down' (got 'sideways')",
        ),
        ('name = "x"\nextends = "openai-rft"\ncurrency = "EUR"\n', "price table"),
        ('name = "mine"\n[[models."o3"]]\n', "a price table, not a policy"),
    ],
)
def test_a_file_is_refused_with_the_key_and_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert message in str(caught.value)
    if message not in ("price table", "unknown policy 'nonesuch'"):
        assert caught.value.source == str(path)  # the file that is wrong


def test_a_policy_that_extends_itself(tmp_path: Path) -> None:
    path = tmp_path / "loop.toml"
    path.write_text(f'name = "loop"\nextends = "{path}"\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="extends itself"):
        load_policy(path)


def test_an_unknown_preset_and_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="presets: azure-rft"):
        load_policy("nonesuch")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(binary)


def test_a_policy_is_frozen_and_refuses_floats() -> None:
    policy = load_policy()
    with pytest.raises(ValueError):
        policy.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        Policy(name="p", hourly_rates={"o4-mini": 1.5})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        Policy(name="p", hourly_rates={})


def test_a_policy_that_changes_its_parent_does_not_keep_the_parents_description(
    tmp_path: Path,
) -> None:
    """The parent's words describe the parent: "$100 per billable hour" under a rate of
    33.33 would be false in every output that names the policy."""
    changed = tmp_path / "mine.toml"
    changed.write_text(
        'name = "mine"\nextends = "openai-rft"\n[hourly_rates]\n"o4-mini" = "33.33"\n'
    )
    policy = load_policy(changed)
    assert policy.description == "openai-rft, with its hourly_rates changed"
    assert "$100" not in policy.description
    renamed = tmp_path / "renamed.toml"
    renamed.write_text('name = "renamed"\nextends = "azure-rft"\n')
    assert load_policy(renamed).description == load_policy("azure-rft").description
    own = tmp_path / "own.toml"
    own.write_text('extends = "openai-rft"\ndescription = "ours"\n[rounding]\nscope = "job"\n')
    assert load_policy(own).description == "ours"


def test_a_policy_and_its_price_table_in_one_currency(tmp_path: Path) -> None:
    """R15: grader amounts in EUR were added to USD charges (and USD rates shown as EUR)."""
    write(
        tmp_path,
        'name = "eur"\ncurrency = "EUR"\n[[models."o3"]]\neffective_from = "2025-01-01T00:00:00Z"\n'
        'input = "1"\ncached_input = "0.5"\noutput = "4"\nsource = "contract"\n',
        "eur-prices.toml",
    )
    in_usd = write(
        tmp_path,
        'name = "x"\nextends = "openai-rft"\n[prices]\ntable = "eur-prices.toml"\nbase = "none"\n',
    )
    with pytest.raises(
        PolicyError, match="currency is USD, its price table eur is in EUR"
    ) as caught:
        load_policy(in_usd)
    assert caught.value.source == str(in_usd)
    in_eur = write(
        tmp_path,
        'name = "x"\nextends = "openai-rft"\ncurrency = "EUR"\n[hourly_rates]\n"o4-mini" = "90"\n'
        '[prices]\ntable = "eur-prices.toml"\nbase = "none"\n',
        "eur.toml",
    )
    assert load_policy(in_eur).price_table.currency == "EUR"


def test_two_price_entries_taking_effect_at_one_time_are_refused(tmp_path: Path) -> None:
    entry = 'input = "{}"\ncached_input = "0.5"\noutput = "8"\nsource = "me"\n'
    when = '[[models."gpt-4.1"]]\neffective_from = "2025-04-14T00:00:00Z"\n'
    write(tmp_path, 'name = "t"\n' + when + entry.format(2) + when + entry.format(3), "t.toml")
    policy = write(
        tmp_path, 'name = "x"\nextends = "openai-rft"\n[prices]\ntable = "t.toml"\nbase = "none"\n'
    )
    with pytest.raises(
        PolicyError, match=r"gpt-4\.1: two entries take effect at 2025-04-14T00:00:00Z"
    ):
        load_policy(policy)


def test_extends_names_a_file_beside_the_policy_wherever_it_is_run_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", 'name = "mid"\nextends = "openai-rft"\n', "mid.toml")
    top = write(tmp_path, 'name = "top"\nextends = "sub/mid.toml"\n', "top.toml")
    monkeypatch.chdir("/")
    assert load_policy(top).name == "top"


def test_a_policy_or_price_table_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    """/dev/zero would be read forever."""
    with pytest.raises(PolicyError, match="not a regular file"):
        load_policy("/dev/zero")
    extends = write(tmp_path, 'name = "x"\nextends = "/dev/zero"\n')
    with pytest.raises(PolicyError, match="not a regular file"):
        load_policy(extends)
    table = write(
        tmp_path, 'name = "x"\nextends = "openai-rft"\n[prices]\ntable = "/dev/zero"\n', "t.toml"
    )
    with pytest.raises(PolicyError, match="not a regular file"):
        load_policy(table)
