"""The ``rftcost`` command line: parse, call the library, render, exit.

Each command lives in its own module and registers itself on ``app``; heavy
modules (pandas, matplotlib) are imported inside the commands so that
``rftcost --help`` stays instant.
"""

from __future__ import annotations

import copy
import os
import sys
from typing import NoReturn

import typer

from rftcost.cli import audit as _audit  # noqa: F401
from rftcost.cli import bill as _bill  # noqa: F401  (registers commands)
from rftcost.cli import chart as _chart  # noqa: F401
from rftcost.cli import estimate as _estimate  # noqa: F401
from rftcost.cli import explain as _explain  # noqa: F401
from rftcost.cli import export as _export  # noqa: F401
from rftcost.cli import fetch as _fetch  # noqa: F401
from rftcost.cli import import_openai as _import_openai  # noqa: F401
from rftcost.cli import policy as _policy  # noqa: F401
from rftcost.cli import report as _report  # noqa: F401
from rftcost.cli import spend as _spend  # noqa: F401
from rftcost.cli import watch as _watch  # noqa: F401
from rftcost.cli.app import app
from rftcost.cli.argv import repeated_option
from rftcost.cli.common import EXIT_USAGE, one_line, visible_controls
from rftcost.errors import excerpt
from rftcost.events.json_text import holds_surrogate

__all__ = ["app", "main", "run"]


def main() -> None:
    """Entry point: run the app; an ``RftcostError`` becomes one line on stderr and exit 2."""
    from rftcost.errors import RftcostError

    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    not_text = next((given for given in sys.argv[1:] if holds_surrogate(given)), None)
    if not_text is not None:
        # Bytes that are not UTF-8 (kept as surrogates): a job id, title or file name no
        # output can hold, refused here once rather than failing wherever it is written.
        typer.echo(
            f"error: an argument that is not UTF-8 text: {excerpt(repr(not_text))}; give "
            "names and file names in UTF-8 (rename such a file)",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    if sys.argv[1:2] != ["watch"]:  # a command that ends; watch runs for days
        from rftcost.allocator import keep_freed_memory

        keep_freed_memory()
    command = typer.main.get_command(_app_for(sys.argv[1:]))
    repeated = repeated_option(command, sys.argv[1:])
    if repeated is not None:
        # The parser would keep the last value and say nothing (one invoice of two
        # audited, the other's errors unseen by a CI gate).
        typer.echo(
            f"error: {repeated} given twice: give it once (the command would use only the last)",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    try:
        code = command(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except RftcostError as error:
        if debug:
            raise
        # One line, and no control character from a value that reached the message
        # (a NUL or ESC in a currency, a key, a file name).
        typer.echo(f"error: {one_line(visible_controls(str(error)))}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as error:  # usage errors of the (vendored) click parser, and the unexpected
        if type(error).__name__ == "NoArgsIsHelpError" and hasattr(error, "show"):
            error.show()  # a command given nothing: its help
            sys.exit(EXIT_USAGE)
        if hasattr(error, "format_message") and hasattr(error, "exit_code"):
            # One line, as every other error: what is wrong, and where the help is.
            context = getattr(error, "ctx", None)
            where = context.command_path if context is not None else "rftcost"
            message = one_line(visible_controls(error.format_message()))
            for theirs, ours in _USAGE_WORDS:
                message = message.replace(theirs, ours)
            typer.echo(f"error: {message} (see {where} --help)", err=True)
            sys.exit(EXIT_USAGE)
        if type(error).__name__ == "Abort":
            sys.exit(EXIT_USAGE)
        if debug:
            raise
        message = one_line(visible_controls(str(error)))
        typer.echo(
            f"error: {type(error).__name__}: {message} (run with --debug for details)", err=True
        )
        sys.exit(EXIT_USAGE)


def _app_for(args: list[str]) -> typer.Typer:
    """``app``, or, when ``args`` start with one of its commands, ``app`` holding that command
    alone: Typer builds the parser of every command it holds, reading each one's
    signature (a tenth of ``rftcost bill``'s 0.5 s on a small log), for one to run."""
    chosen = [info for info in app.registered_commands if args and info.name == args[0]]
    if not chosen:
        return app  # the group's help, a subgroup, a typo: every command, as before
    alone = copy.copy(app)
    alone.registered_commands = chosen
    alone.registered_groups = []
    return alone


_USAGE_WORDS = (
    ("Value error, ", ""),
    ("Input should be greater than or equal to", "must be at least"),
    ("Input should be greater than", "must be above"),
    ("Input should be less than or equal to", "must be at most"),
    ("Input should be less than", "must be below"),
    ("Input should be a valid integer, unable to parse string as an integer", "not a whole number"),
    ("Input should be a valid number, unable to parse string as a number", "not a number"),
)
"""The option parser's validation words (pydantic's), in ours."""


def run() -> NoReturn:
    """The ``rftcost`` script: ``main``, then an exit that skips the interpreter's teardown.

    Every output is written and closed before ``main`` returns; what is left is freeing
    the command's objects one by one, 0.1-0.2 s after a bill of 1.7M events (measured),
    which the process spares itself once its standard streams are flushed.
    """
    try:
        main()
        code = 0
    except SystemExit as done:
        code = _exit_status(done.code)
    if "pyspark" in sys.modules:
        sys.exit(code)  # Spark's driver stops its JVM at the interpreter's exit
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(code)  # a closed pipe: the interpreter's own exit reports it, as before
    os._exit(code)


def _exit_status(code: object) -> int:
    """The process status ``SystemExit(code)`` stands for, as the interpreter reads it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
