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

# command -> module:attribute (the module under marketsync/cli/)
COMMANDS = {
    "sync": "sync:sync",
    "orders": "orders:orders",
    "picklist": "picking:picklist",
    "pick": "picking:pick",
    "reserve": "reserve:reserve",
    "status": "status:status",
    "backup": "backup:backup",
    "inventory": "inventory:inventory",
    "stock": "stock:stock",
    "map": "catalog:map_command",
    "api": "api:api",
    "demo": "demo:demo",
    "sandbox": "demo:sandbox",
    "listen": "listen:listen",
}


class MarketsyncGroup(click.Group):
    """Loads ``.env`` before options are read, turns every error into one line, and imports a
    command's module only when that command is run (or its help shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, _, name = where.partition(":")
        command = getattr(importlib.import_module(f"marketsync.cli.{module}"), name)
        assert isinstance(command, click.Command)
        return command

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
