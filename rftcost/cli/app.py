"""The Typer application object shared by every command module."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(
    name="rftcost",
    help="What reinforcement fine-tuning costs: bills, audits, estimates and spend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
