"""The Typer application object shared by every command module."""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["HELP_MARKUP", "app"]

HELP_MARKUP: Any = None
"""Help text is plain text, not Rich markup: ``rftcost[spark]`` must print as written, and
plain help lays each option on its own line, so a list of choices never wraps mid-word.
Every ``typer.Typer`` of the CLI passes it as ``rich_markup_mode``."""

app = typer.Typer(
    name="rftcost",
    help="What reinforcement fine-tuning costs: bills, audits, estimates and spend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=HELP_MARKUP,
)


def _print_version(value: bool) -> None:
    if value:
        from rftcost.version import __version__

        typer.echo(f"rftcost {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print rftcost's version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """What reinforcement fine-tuning costs: bills, audits, estimates and spend."""
    from rftcost.allocator import prefer_jemalloc, prefer_small_pages

    prefer_jemalloc()  # before any command reads: the smaller peak of memory (see allocator)
    prefer_small_pages()  # fresh arrays without the kernel's compaction stalls (allocator)


# Names a person reads in help, in place of the Python type names recent Typer prints
# (``<list[Path]>``, ``<bool>``, ``<str>``): what click always printed.
_TYPE_NAMES = {
    "str": "TEXT",
    "int": "INTEGER",
    "int range": "INTEGER",
    "float": "NUMBER",
    "float range": "NUMBER",
    "Decimal": "AMOUNT",
    "path": "PATH",
    "Path": "PATH",
    "file": "FILE",
    "directory": "DIRECTORY",
    "datetime": "TIME",
}


def _help_type(param: Any, label: str | None) -> str | None:
    """What the help shows after an option (or beside an argument) for its value."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None  # a flag takes no value: nothing to show (never ``<bool>``)
    if param.param_type_name == "argument":
        return None  # the argument's name (LOGS..., PLAN) already says what it is
    if param.metavar is not None:
        return str(param.metavar)
    if not label:
        return None
    bare = label.strip("<>").removesuffix("...")
    bare = bare.removeprefix("list[").removesuffix("]") if bare.startswith("list[") else bare
    if "|" in bare:
        return "[" + bare + "]"  # choices, as click writes them
    return _TYPE_NAMES.get(bare, bare.upper())


def _plain_type_names() -> None:
    """Route Typer's type display through ``_help_type`` (only where Typer has it: older
    Typer formats help with click, which already prints these names)."""
    from typer import core

    for name in ("TyperArgument", "TyperOption"):
        cls = getattr(core, name, None)
        original = getattr(cls, "display_type_rich", None)
        if cls is None or original is None or getattr(original, "_rftcost", False):
            continue

        def display(self: Any, ctx: Any, _original: Any = original) -> str | None:
            return _help_type(self, _original(self, ctx))

        display._rftcost = True  # type: ignore[attr-defined]
        cls.display_type_rich = display


_plain_type_names()
