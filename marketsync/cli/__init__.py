"""The command line: parse options, call one use case of :mod:`marketsync.app`, print. One
module per command group; a command's module is imported only when it runs, so ``--help`` and a
cron run import only what they use."""

from __future__ import annotations

import importlib
import os
import sqlite3
import sys
from typing import Any

import click
from click.core import ParameterSource

from marketsync import __version__
from marketsync.cli.common import _fail, _keep_for_subcommands, logging_options, one_line
from marketsync.config import load_dotenv_file
from marketsync.errors import EXIT_FAILED, EXIT_USAGE, MarketsyncError

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# command -> (module:attribute under marketsync/cli/, the first paragraph of its help). The summary
# lists the commands in `marketsync --help` without importing a module per command;
# tests/test_cli_help.py checks that each is the command's own.
COMMANDS = {
    "sync": ("sync:sync", "Pull new and changed orders and reserve their stock."),
    "orders": ("orders:orders", "All orders of both marketplaces in one table, newest first."),
    "picklist": ("picking:picklist", "What to pick for every open order, bin by bin in shelf order, with the orders "
                                     "to drop the pieces into."),
    "pick": ("picking:pick", "Mark an order's lines picked (all of them without LINE_KEY): they leave the pick list, "
                             "and their pieces are never moved to another bin again."),
    "reserve": ("reserve:reserve", "Reconcile reservations with the current inventory."),
    "status": ("status:status", "Health of each marketplace: last sync, errors, API calls today, open orders, "
                                "problems."),
    "backup": ("backup:backup", "Copy the database into one owner-only file while it is in use (SQLite's backup "
                                "API: a consistent copy even while a sync writes). The database is only read."),
    "inventory": ("inventory:inventory", "Your own stock: import it, list it, pull it from BrickLink."),
    "stock": ("stock:stock", "Each listing of your lots on each marketplace: what it shows, what is available, the "
                             "change the next push makes, and why a listing is held."),
    "map": ("catalog:map_command", "Pin a BrickOwl item (BOID) to a BrickLink part number, or list the mappings."),
    "api": ("api:api", "Make one authenticated GET and print the JSON (secrets masked)."),
    "demo": ("demo:demo", "Sync a seeded demo store from the built-in sandbox marketplaces, push the listings, and "
                          "show the orders."),
    "sandbox": ("demo:sandbox", "Run the sandbox marketplaces in the foreground and print the .env lines to use them."),
    "listen": ("listen:listen", "Sync an order seconds after a marketplace says it arrived."),
}


class MarketsyncGroup(click.Group):
    """Loads ``.env`` before options are read, turns every error into one line, and imports a
    command's module only when that command is run (or its help shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, name = COMMANDS[cmd_name][0].partition(":")
        command = getattr(importlib.import_module(f"marketsync.cli.{module}"), name)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their summaries, as click lists them, without importing their modules."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary(name).get_short_help_str(limit)) for name in names])

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        stdout = sys.stdout
        try:
            for warning in load_dotenv_file():
                click.echo(one_line(warning), err=True)
            result = super().main(args=args, prog_name="marketsync", standalone_mode=False, **extra)
            sys.stdout.flush()  # a reader gone before our last bytes: EPIPE here, not at exit
            return result
        except SystemExit as exc:
            # click turns a closed pipe into exit 1 after swapping stdout for a quiet wrapper; a
            # reader that stopped reading (`marketsync orders --csv | head -1`) is a success
            if exc.code == 1 and (sys.stdout is not stdout or isinstance(exc.__context__, BrokenPipeError)):
                _pipe_closed(stdout)
            raise
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            if exc.ctx is not None and _asked_for_help(exc):  # `marketsync`, `marketsync inventory`
                click.echo(exc.ctx.get_help())
                sys.exit(0)
            _fail(_usage_message(exc), EXIT_USAGE)
        except OSError as exc:
            if exc.errno == 32:  # EPIPE: output piped into `head`
                _pipe_closed(stdout)
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_FAILED)
        except (click.Abort, click.ClickException, MarketsyncError, sqlite3.Error, UnicodeError,
                KeyboardInterrupt) as exc:
            _fail(*_one_line_for(exc))


def summary(name: str) -> click.Command:
    """A stand-in for a command that only knows its summary (shortened as click shortens it)."""
    return click.Command(name, help=COMMANDS[name][1])


def _one_line_for(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit code an error ends a command with (the CLI alone decides them)."""
    if isinstance(exc, click.Abort):
        return "aborted", 130
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(exc, click.ClickException):
        return exc.format_message(), exc.exit_code
    if isinstance(exc, MarketsyncError):
        return exc.message, exc.exit_code
    if isinstance(exc, sqlite3.Error):
        return f"database error: {exc}", EXIT_FAILED
    # bytes that are not UTF-8 in an argument reach SQLite or a file
    return f"not valid UTF-8 text in an argument or a file name ({exc})", EXIT_USAGE


def _pipe_closed(stdout: Any) -> None:
    """Whoever read our output went away: whatever is still buffered goes to /dev/null (so
    nothing fails when Python flushes at exit), and the run exits 0, quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (click's test runner)
        pass
    sys.exit(0)


def _asked_for_help(exc: click.UsageError) -> bool:
    """A group given no command at all (the newcomer's first command): click 8.2+ says so with its
    own error; 8.1 printed the help by itself."""
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", None)
    return no_args is not None and isinstance(exc, no_args)


def _usage_message(exc: click.UsageError) -> str:
    message = " ".join(exc.format_message().split())  # click's multi-line messages ("Choose from:\n\t...")
    param = getattr(exc, "param", None)
    ctx = exc.ctx
    if param is not None and ctx is not None and getattr(param, "envvar", None):
        if ctx.get_parameter_source(param.name) == ParameterSource.ENVIRONMENT:
            message = f"{param.envvar}: {message}"
    command = ctx.command_path if ctx is not None else "marketsync"
    return f"{message} (see '{command} -h')"


@click.group(cls=MarketsyncGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="marketsync")
@logging_options
@click.option("--db", "db_path", type=click.Path(dir_okay=False), expose_value=False, callback=_keep_for_subcommands,
              help="The SQLite database file (also accepted after the command).")
@click.option("--account", expose_value=False, callback=_keep_for_subcommands,
              help="Business account id (also accepted after the command).")
def cli() -> None:
    """Sync BrickLink and BrickOwl orders into one SQLite file, match every line to your own
    inventory lot (part + colour + condition + location) and reserve that stock, so nothing
    is sold twice.

    Configuration comes from the environment and a .env file in the working directory.

    \b
    Example (no credentials needed, runs against a built-in sandbox):
        marketsync demo
    """



__all__ = ["cli"]
