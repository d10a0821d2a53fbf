"""``rftcost policy list|show``: the policies and price tables in force."""

from __future__ import annotations

from typing import Annotated

import typer

from rftcost.cli.app import app
from rftcost.cli.common import (
    OutputFormat,
    emit,
    json_text,
    markdown_table,
)
from rftcost.cli.common import StdoutFormatOption as FormatOption

__all__ = ["policy_app", "policy_list", "policy_show"]

policy_app = typer.Typer(help="The policies and price tables in force.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("list")
def policy_list(output_format: FormatOption = OutputFormat.table) -> None:
    """The packaged policy presets."""
    from rftcost.policy import DEFAULT_POLICY, POLICIES_SCHEMA, list_policies, load_policy

    policies = [load_policy(name) for name in list_policies()]
    if output_format is OutputFormat.json:
        emit(
            json_text(
                {
                    "schema": POLICIES_SCHEMA,
                    "policies": [
                        {
                            "name": p.name,
                            "description": p.description,
                            "default": p.name == DEFAULT_POLICY,
                        }
                        for p in policies
                    ],
                }
            ),
            None,
        )
        return
    rows = [
        [p.name + (" (default)" if p.name == DEFAULT_POLICY else ""), p.description]
        for p in policies
    ]
    if output_format is OutputFormat.markdown:
        emit(markdown_table(["policy", "description"], rows), None)
    else:
        width = max(len(r[0]) for r in rows)
        emit("\n".join(f"{r[0].ljust(width)}  {r[1]}" for r in rows), None)


@policy_app.command("show")
def policy_show(
    name: Annotated[
        str | None, typer.Argument(help="Preset name or TOML file (default: openai-rft).")
    ] = None,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Every setting of a policy, and its token price table with sources."""
    from rftcost.policy import POLICY_SCHEMA, load_policy
    from rftcost.prices import genai_price_table, price_differences

    policy = load_policy(name)
    table = policy.price_table
    # Kind 14: every rate where the override table and genai-prices disagree, both sources.
    differences = (
        price_differences(table.override_layer(), genai_price_table()) if table.overrides else []
    )
    if output_format is OutputFormat.json:
        document = {"schema": POLICY_SCHEMA, **policy.model_dump(mode="json")}
        document["price_table"] = table.model_dump(mode="json")
        document["price_source"] = table.price_source
        document["price_differences"] = [d.model_dump(mode="json") for d in differences]
        emit(json_text(document), None)
        return
    rounding = policy.rounding
    discount = policy.data_sharing_discount
    lines = [
        f"Policy {policy.name}" + (f" (extends {policy.extends})" if policy.extends else ""),
        f"  {policy.description}",
        f"Currency: {policy.currency}; default model: {policy.default_model}",
        "Hourly rates: " + ", ".join(f"{m} {r}/h" for m, r in policy.hourly_rates.items()),
        "Billable phases: " + ", ".join(policy.phases.billable),
        "Excluded phases: " + ", ".join(policy.phases.excluded),
        "Phase aliases: "
        + (", ".join(f"{a} → {t}" for a, t in policy.phases.aliases.items()) or "none"),
        f"Rounding: seconds {rounding.seconds_mode}; hours to {rounding.hours_decimals} decimals"
        f" {rounding.hours_mode}; money {rounding.money_mode}; scope {rounding.scope}",
        "Captured forward progress (R5, R6): "
        + ("on" if policy.captured_progress.enabled else "off"),
        f"Data-sharing discount: {discount.rate} on "
        + (", ".join(discount.scope) if discount.scope else "nothing (no training discount)"),
        "Cap per job: "
        + (
            f"{policy.cap.per_job_amount} (training plus grading until reached; no limit after"
            " a resume)"
            if policy.cap.per_job_amount is not None
            else "none"
        ),
        "Model blocked by its safety evaluation: "
        + (
            "charged"
            if policy.safety_evaluation.blocked_model_charged
            else "not charged for the training run (recorded; the event log cannot say yet"
            " that a model was blocked)"
        ),
        "Sources:",
        *[f"  - {s}" for s in policy.sources],
        "",
        f"Token prices ({table.price_source}; {table.currency} per {table.unit_tokens:,} tokens):",
    ]
    difference_lines = (
        []
        if not table.overrides
        else [
            "",
            f"Where {table.name} and genai-prices differ ({len(differences)};"
            f" {table.name} is used):",
            *[
                f"  {d.model} from {d.effective_from.date().isoformat()} {d.rate}: {d.override}"
                f" ({d.override_source}) vs {d.base if d.base is not None else 'none'}"
                f" ({d.base_source})"
                for d in differences
            ],
        ]
    )
    rows = [
        [
            model,
            # A price with no start date is in force from the start (held as 1970-01-01).
            "always" if e.effective_from.timestamp() == 0 else e.effective_from.date().isoformat(),
            str(e.input),
            str(e.cached_input),
            str(e.output),
            e.source,
        ]
        for model, entries in table.models.items()
        for e in entries
    ]
    headers = ["model", "from", "input", "cached", "output", "source"]
    if output_format is OutputFormat.markdown:
        emit(
            "\n".join([*lines, "", markdown_table(headers, rows), *difference_lines]),
            None,
        )
        return
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(5)]
    lines += [
        "  " + "  ".join(str(v).ljust(widths[i]) for i, v in enumerate(r[:5])) + "  " + r[5]
        for r in [headers, *rows]
    ]
    emit("\n".join([*lines, *difference_lines]), None)
