"""Checks of the command line as typed, before the parser reads it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["repeated_option"]


def repeated_option(command: Any, args: Sequence[str]) -> str | None:
    """The first option of one value given twice to one command, as the user typed it
    (``"-i/--invoice"``), or ``None``.

    The parser keeps the last of two values without a word: ``audit -i a.csv -i b.csv``
    would audit ``b.csv`` alone and pass a CI gate on ``a.csv``'s errors unseen. Options
    that take several values (``multiple``) or count, and flags, may repeat. ``command``
    is the click command tree Typer builds (its groups, commands and parameters are
    read by name, as both click and Typer's own copy of it spell them). Tokens are read
    as the parser reads them: an option's value (``-i FILE``, ``--invoice=FILE``,
    ``-iFILE``) is skipped, a subcommand's name starts its own options, ``--`` ends the
    options and ``--help`` is left to the parser.
    """
    if "--help" in args:
        return None
    current = command
    options = _single_value_options(current)
    seen: set[int] = set()
    tokens = list(args)
    at = 0
    while at < len(tokens):
        token = tokens[at]
        at += 1
        if token == "--":
            return None
        subcommands = getattr(current, "commands", None)
        if isinstance(subcommands, dict) and token in subcommands:
            current = subcommands[token]
            options, seen = _single_value_options(current), set()
            continue
        if not token.startswith("-") or token == "-":
            continue  # an argument (``-``: standard input)
        name, inline = _option_name(token, options)
        found = options.get(name)
        if found is None:
            continue  # a flag, an option that repeats, or one the parser will refuse
        param, values = found
        if id(param) in seen:
            return "/".join(sorted(param.opts, key=len))
        seen.add(id(param))
        if not inline:
            at += values  # the option's value(s): never read as options
    return None


def _single_value_options(command: Any) -> dict[str, tuple[Any, int]]:
    """Each spelling (``-i``, ``--invoice``) of ``command``'s options that keep one value,
    with the option and how many tokens its value takes."""
    found: dict[str, tuple[Any, int]] = {}
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") != "option":
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        if getattr(param, "multiple", False):
            continue
        values = max(1, int(getattr(param, "nargs", 1) or 1))
        for spelling in (*param.opts, *getattr(param, "secondary_opts", ())):
            found[spelling] = (param, values)
    return found


def _option_name(token: str, options: dict[str, tuple[Any, int]]) -> tuple[str, bool]:
    """The option a token names and whether it holds its value (``--a=1``, ``-a1``)."""
    if token in options:
        return token, False
    if token.startswith("--"):
        name, equals, _ = token.partition("=")
        return name, bool(equals)
    return token[:2], len(token) > 2
