"""The command line: parse options and wire the pieces together. No HTTP, no SQL here."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import sqlite3
import sys
import time
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from marketsync import __version__
from marketsync.config import (
    CREDENTIAL_VARS,
    DEFAULT_ACCOUNT,
    DEFAULT_BRICKLINK_DAILY_BUDGET,
    DEFAULT_BRICKOWL_RATE_LIMIT,
    DEFAULT_DB,
    DEFAULT_HTTP_DEADLINE,
    DEFAULT_HTTP_TIMEOUT,
    DEFAULT_RUN_DEADLINE,
    HttpSettings,
    api_url,
    configured_providers,
    load_dotenv_file,
    require_credentials,
    secret_values,
)
from marketsync.errors import EXIT_FAILED, EXIT_USAGE, ConfigError, MarketsyncError, NotFoundLocally
from marketsync.model import OPEN_STATUSES, PROVIDERS, STATUSES

if TYPE_CHECKING:
    from marketsync.store import Store

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
PROVIDER = click.Choice(PROVIDERS, case_sensitive=False)
log = logging.getLogger("marketsync")


class MarketsyncGroup(click.Group):
    """Loads ``.env`` before options are read, and turns every error into one line."""

    def main(self, args=None, prog_name=None, **extra):
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
        except click.Abort:
            _fail("aborted", 130)
        except click.UsageError as exc:
            if exc.ctx is not None and _asked_for_help(exc):  # `marketsync`, `marketsync inventory`
                click.echo(exc.ctx.get_help())
                sys.exit(0)
            _fail(_usage_message(exc), EXIT_USAGE)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except MarketsyncError as exc:
            _fail(exc.message, exc.exit_code)
        except sqlite3.Error as exc:
            _fail(f"database error: {exc}", EXIT_FAILED)
        except UnicodeError as exc:  # bytes that are not UTF-8 in an argument reach SQLite or a file
            _fail(f"not valid UTF-8 text in an argument or a file name ({exc})", EXIT_USAGE)
        except OSError as exc:
            if exc.errno == 32:  # EPIPE: output piped into `head`
                _pipe_closed(stdout)
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_FAILED)
        except KeyboardInterrupt:
            _fail("interrupted", 130)


def _pipe_closed(stdout) -> None:
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


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {cut_long_words(one_line(mask_secrets(message)))}", err=True)
    sys.exit(code)


def cut_long_words(text: str, limit: int = 200) -> str:
    """An overlong argument echoed in a message is cut, so the one line stays readable."""
    import re

    return re.sub(r"\S{%d,}" % (limit + 1), lambda m: f"{m.group(0)[:limit - 20]}...({len(m.group(0))} chars)", text)


def one_line(text: str) -> str:
    """Marketplace text (part numbers, bins, error strings) can hold newlines and escape codes:
    shown escaped, so every problem stays one line and no terminal or log is steered."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def mask_secrets(text: str) -> str:
    if not text:
        return text  # nothing to hide, and no need to import requests (status masks every row)
    from marketsync.masking import mask

    return mask(text, secret_values())


# --- shared options -------------------------------------------------------------------------
def _given_to_group(ctx: click.Context, name: str) -> object | None:
    """A shared option given before the subcommand (``marketsync --db x orders``), if it was."""
    return ctx.find_root().meta.get(f"marketsync.{name}")


def _keep_for_subcommands(ctx: click.Context, param: click.Parameter, value: object) -> object:
    if value is not None and ctx.get_parameter_source(param.name or "") == ParameterSource.COMMANDLINE:
        ctx.find_root().meta[f"marketsync.{param.name}"] = value
    return value


def _logging_option(ctx: click.Context, param: click.Parameter, value: object) -> None:
    """-v and --log-file work after the subcommand as well as before it: both count."""
    meta = ctx.find_root().meta
    if param.name == "verbose":
        meta["marketsync.verbose"] = meta.get("marketsync.verbose", 0) + int(value or 0)  # type: ignore[call-overload]
    elif value is not None:
        meta["marketsync.log_file"] = value
    if not ctx.resilient_parsing:
        setup_logging(meta.get("marketsync.verbose", 0), meta.get("marketsync.log_file"))


def logging_options(func):
    """-v/--verbose and --log-file, on the group and on every command."""
    func = click.option("-v", "--verbose", count=True, expose_value=False, callback=_logging_option,
                        help="More detail on stderr (-vv: every HTTP request).")(func)
    return click.option("--log-file", envvar="MARKETSYNC_LOG_FILE", show_envvar=True, expose_value=False,
                        type=click.Path(dir_okay=False), callback=_logging_option,
                        help="Append a timestamped line per run and per problem to this file (created owner-only).")(func)


def wait_option(func):
    return click.option("--wait", type=click.FloatRange(0), default=10.0, show_default=True,
                        help="Seconds to wait for another running sync or command before giving up (exit 75).")(func)


def budget_option(func):
    return click.option("--bricklink-budget", envvar="BRICKLINK_DAILY_BUDGET", default=DEFAULT_BRICKLINK_DAILY_BUDGET,
                        show_default=True, show_envvar=True, type=click.IntRange(1),
                        help="BrickLink calls allowed per UTC day; a run stops there and resumes later.")(func)


def db_options(func):
    @click.option("--db", "db_path", envvar="MARKETSYNC_DB", default=DEFAULT_DB, show_default=True,
                  show_envvar=True, type=click.Path(dir_okay=False), help="The SQLite database file.")
    @click.option("--account", envvar="MARKETSYNC_ACCOUNT", default=DEFAULT_ACCOUNT, show_default=True,
                  show_envvar=True, help="Business account id stored on every row.")
    @functools.wraps(func)
    def wrapper(*args, account, db_path, **kwargs):
        ctx = click.get_current_context()
        for name in ("account", "db_path"):  # given before the subcommand, unless given after it too
            if ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE and _given_to_group(ctx, name):
                if name == "account":
                    account = _given_to_group(ctx, name)
                else:
                    db_path = _given_to_group(ctx, name)
        # click treats an empty MARKETSYNC_ACCOUNT as unset; silently using 'default' would mix accounts
        from_env = os.environ.get("MARKETSYNC_ACCOUNT")
        if not account.strip() or (from_env is not None and not from_env.strip()
                                   and ctx.get_parameter_source("account") == ParameterSource.DEFAULT):
            raise ConfigError("MARKETSYNC_ACCOUNT / --account must not be empty")
        return func(*args, account=account.strip(), db_path=db_path, **kwargs)

    return wrapper


def http_options(func):
    @click.option("--http-timeout", envvar="MARKETSYNC_HTTP_TIMEOUT", default=DEFAULT_HTTP_TIMEOUT,
                  show_default=True, show_envvar=True, type=click.FloatRange(0.1, 300),
                  help="Seconds to wait for any one read of an HTTP answer.")
    @click.option("--http-deadline", envvar="MARKETSYNC_HTTP_DEADLINE", default=DEFAULT_HTTP_DEADLINE,
                  show_default=True, show_envvar=True, type=click.FloatRange(1, 3600),
                  help="Seconds one HTTP request may take in all, however slowly its answer arrives.")
    @click.option("--run-deadline", envvar="MARKETSYNC_RUN_DEADLINE", default=DEFAULT_RUN_DEADLINE,
                  show_default=True, show_envvar=True, type=click.FloatRange(1, 86400),
                  help="Seconds a run may spend with the marketplaces, shared between them; the rest "
                       "waits for the next run.")
    @click.option("--retries", envvar="MARKETSYNC_HTTP_RETRIES", default=4, show_default=True, show_envvar=True,
                  type=click.IntRange(0, 10), help="Further attempts for a GET that failed transiently.")
    @click.option("--retry-backoff", envvar="MARKETSYNC_RETRY_BACKOFF", default=0.5, show_default=True,
                  show_envvar=True, type=click.FloatRange(0, 60),
                  help="First wait before a retry in seconds, doubled each time (capped at 8s).")
    @click.option("--concurrency", envvar="MARKETSYNC_CONCURRENCY", default=4, show_default=True, show_envvar=True,
                  type=click.IntRange(1, 5), help="Requests in flight per marketplace (BrickLink fails above ~5).")
    @budget_option
    @click.option("--brickowl-rate", envvar="BRICKOWL_RATE_LIMIT", default=DEFAULT_BRICKOWL_RATE_LIMIT,
                  show_default=True, show_envvar=True, type=click.FloatRange(1),
                  help="BrickOwl requests per minute to stay under.")
    @functools.wraps(func)
    def wrapper(*args, http_timeout, http_deadline, run_deadline, retries, retry_backoff, concurrency, bricklink_budget,
                brickowl_rate, **kwargs):
        for name, value in (("--http-timeout / MARKETSYNC_HTTP_TIMEOUT", http_timeout),
                            ("--http-deadline / MARKETSYNC_HTTP_DEADLINE", http_deadline),
                            ("--run-deadline / MARKETSYNC_RUN_DEADLINE", run_deadline),
                            ("--retry-backoff / MARKETSYNC_RETRY_BACKOFF", retry_backoff),
                            ("--brickowl-rate / BRICKOWL_RATE_LIMIT", brickowl_rate)):
            if value != value:  # NaN passes click's range checks and ends in a traceback
                raise ConfigError(f"{name}: {value} is not a number")
        settings = HttpSettings(
            timeout=http_timeout, retries=retries, backoff=retry_backoff, concurrency=concurrency,
            bricklink_daily_budget=bricklink_budget, brickowl_rate_limit=brickowl_rate,
            request_deadline=max(http_deadline, http_timeout), run_deadline=run_deadline,
        )
        return func(*args, settings=settings, **kwargs)

    return wrapper


def output_options(func):
    @click.option("--json", "as_json", is_flag=True, help="Output JSON.")
    @click.option("--csv", "as_csv", is_flag=True, help="Output CSV.")
    @functools.wraps(func)
    def wrapper(*args, as_json, as_csv, **kwargs):
        if as_json and as_csv:
            raise click.UsageError("--json and --csv go one at a time")
        return func(*args, fmt="json" if as_json else "csv" if as_csv else "table", **kwargs)

    return wrapper


def open_database(db_path: str, account: str = "", *, create: bool = False) -> "Store":
    from marketsync.store.connection import open_store

    return open_store(db_path, account, create=create)


def writer(db_path: str, wait: float = 0.0):
    from marketsync.lock import writer_lock

    return writer_lock(db_path, wait)


def order_ref_arg(value: str) -> tuple[str, str]:
    provider, sep, order_id = value.partition(":")
    provider = provider.strip().lower()
    if not sep or provider not in PROVIDERS or not order_id.strip():
        raise click.BadParameter(f"{value!r} is not PROVIDER:ORDER_ID (provider: {', '.join(PROVIDERS)})")
    return provider, order_id.strip()


def parse_since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    import re

    text = value.strip().lower()
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    age = re.fullmatch(r"([0-9]+)([mhdw])", text)
    try:
        if age:
            return dt.datetime.now(dt.timezone.utc) - dt.timedelta(**{units[age[2]]: int(age[1])})
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    except OverflowError:  # 99999999d, or year 1 east of UTC: before the first date there is
        raise click.BadParameter(f"{value!r} reaches back before the year 1") from None
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a date (2024-05-01) nor an age (7d, 12h)") from None


RUN_LOG = logging.getLogger("marketsync.run")  # one line per run and per problem, to --log-file only


def setup_logging(verbose: int, log_file: str | None) -> None:
    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            # imported on the first record, not at start-up: providers.http brings requests (~60 ms)
            from marketsync.masking import mask

            record.msg = mask(record.getMessage(), secret_values())
            record.args = ()
            return True

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redact())
    root = logging.getLogger("marketsync")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING - 10 * min(verbose, 2) if verbose else logging.ERROR)
    root.propagate = False
    RUN_LOG.handlers[:] = [logging.NullHandler()]  # no file: never logging's last-resort echo on stderr
    RUN_LOG.propagate = False
    if log_file:
        try:
            os.close(os.open(log_file, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
            info = os.stat(log_file)
            if info.st_uid == os.geteuid() and info.st_mode & 0o077:  # one made by hand: owner-only too
                os.chmod(log_file, info.st_mode & 0o700)
            file_handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            where = os.path.dirname(os.path.abspath(log_file))
            reason = f"directory {where} does not exist" if not os.path.isdir(where) else exc.strerror
            raise ConfigError(f"--log-file / MARKETSYNC_LOG_FILE: cannot write {log_file}: {reason}") from None
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        formatter.converter = time.gmtime
        file_handler.setFormatter(formatter)
        file_handler.addFilter(Redact())
        RUN_LOG.addHandler(file_handler)
        RUN_LOG.setLevel(logging.INFO)


# --- the commands ----------------------------------------------------------------------------
@click.group(cls=MarketsyncGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="marketsync")
@logging_options
@click.option("--db", "db_path", type=click.Path(dir_okay=False), expose_value=False, callback=_keep_for_subcommands,
              help="The SQLite database file (also accepted after the command).")
@click.option("--account", expose_value=False, callback=_keep_for_subcommands,
              help="Business account id (also accepted after the command).")
def cli():
    """Sync BrickLink and BrickOwl orders into one SQLite file, match every line to your own
    inventory lot (part + colour + condition + location) and reserve that stock, so nothing
    is sold twice.

    Configuration comes from the environment and a .env file in the working directory.

    \b
    Example (no credentials needed, runs against a built-in sandbox):
        marketsync demo
    """


@cli.command()
@logging_options
@click.option("--provider", "-p", "providers", multiple=True, type=PROVIDER,
              help="Sync only this marketplace (repeatable). Default: every one with credentials.")
@click.option("--full", is_flag=True, help="Re-list everything (BrickLink filed orders, BrickOwl's whole history).")
@click.option("--push/--no-push", envvar="MARKETSYNC_PUSH", show_envvar=True, default=False,
              help="Then bring every listing on every marketplace to what is available (see 'marketsync stock').")
@click.option("--dry-run", is_flag=True, help="With --push: show the listing changes; change no listing.")
@wait_option
@db_options
@http_options
def sync(providers, full, push, dry_run, wait, db_path, account, settings):
    """Pull new and changed orders and reserve their stock.

    Credentials come from BRICKLINK_CONSUMER_KEY, BRICKLINK_CONSUMER_SECRET, BRICKLINK_TOKEN_VALUE,
    BRICKLINK_TOKEN_SECRET and BRICKOWL_API_KEY; BRICKLINK_API_URL and BRICKOWL_API_URL point
    the adapters elsewhere.

    Off a terminal a clean run prints nothing; each problem is one line on stderr.
    Exit codes: 0 ok, 1 a provider failed, 2 usage or configuration, 75 another sync is running.

    \b
    Examples:
        marketsync sync
        marketsync sync --provider bricklink
        marketsync sync --push
    """
    if dry_run and not push:
        raise click.UsageError("--dry-run goes with --push")
    chosen = _chosen_providers(providers, db_path, account)
    with writer(db_path, wait):
        _daily_backup(db_path)
        store = open_database(db_path, account, create=True)
        silent = [] if providers else _lost_credentials(store)
        for line in silent:
            _problem(line)
        wiring = _Wiring(store, chosen, settings)
        results = wiring.sync(full=full)
        pushed, again = wiring.push(dry_run=dry_run) if push and all(r.ok for r in results) else ([], [])
        from marketsync.store.queries import oversold

        oversold_now = len(oversold(store))  # as the run leaves them, not as any order found them
    _report_sync(results + again, exit_on_failure=False)
    _report_push(pushed, dry_run)
    if _chatty() and oversold_now:
        click.echo(f"{oversold_now} lot(s) oversold at the end of the run: see 'marketsync inventory list --oversold'",
                   err=True)
    if silent or any(not result.ok for result in results + again + pushed):
        sys.exit(EXIT_FAILED)


def _lost_credentials(store: Store) -> list[str]:
    from marketsync import health
    from marketsync.store import queries

    history = queries.providers_with_history(store)
    open_orders = {row["provider"]: row["open_orders"] for row in queries.status(store, tuple(history), "")}
    return health.unconfigured(history, configured_providers(), open_orders)


def _report_sync(results, exit_on_failure: bool = True) -> None:
    said: set[str] = set()  # a run that syncs twice (--push reads the orders again) says each problem once
    for result in results:
        for problem in result.problems:
            problem = one_line(mask_secrets(problem))
            if problem in said:
                continue
            said.add(problem)
            click.echo(problem, err=True)
            RUN_LOG.warning(problem)
        if not result.ok:
            click.echo(f"Error: {one_line(mask_secrets(result.error or result.provider + ' failed'))}", err=True)
            RUN_LOG.error(one_line(result.error or ""))
        else:
            RUN_LOG.info("%s: %d listed, %d new or changed, %d API calls",
                         result.provider, result.listed, result.changed, result.calls)
    if _chatty():
        for result in results:
            if result.ok:
                click.echo(f"{result.provider}: {result.listed} listed, {result.changed} new or changed, "
                           f"{result.calls} API calls", err=True)
    if exit_on_failure and any(not result.ok for result in results):
        sys.exit(EXIT_FAILED)


class _progress:
    """A rich progress display on stderr when it is a terminal; nothing otherwise."""

    def __enter__(self):
        from marketsync.sync import NoProgress

        if not sys.stderr.isatty():
            return NoProgress()
        from rich.progress import Progress

        from marketsync.render import console

        self.bar = Progress(console=console(stderr=True), transient=True)
        self.tasks = {}
        self.bar.start()
        return self

    def start(self, provider: str, total: int) -> None:
        self.tasks[provider] = self.bar.add_task(f"{provider}: orders", total=total)

    def advance(self, provider: str) -> None:
        self.bar.advance(self.tasks[provider])

    def __exit__(self, *exc):
        if hasattr(self, "bar"):
            self.bar.stop()
        return False


# --- orders ----------------------------------------------------------------------------------
SHORT_PROVIDER = {"bricklink": "BL", "brickowl": "BO"}


def _order_columns():
    return _order_variants()[0]


def _order_variants() -> list[list[tuple]]:
    """The orders table, richest first; each next one gives up the least useful width (the
    marketplace's full name, the time of day, lots, the buyer, the currency) so 80 columns fit."""
    from marketsync import render

    def columns(short: bool, lots: bool, buyer: bool, currency: bool) -> list[tuple]:
        chosen = [
            ("Mkt" if short else "Provider", "left",
             lambda r: SHORT_PROVIDER.get(r["provider"], r["provider"]) if short else r["provider"], None, False),
            ("Order", "right", lambda r: r["order_id"], "bold", False),
            ("Date" if short else "Date (UTC)", "left",
             lambda r: render.when(r["date_ordered"])[:10 if short else 16], None, False),
        ]
        if buyer:
            chosen.append(("Buyer", "left", lambda r: r["buyer_name"], None, True))
        chosen.append(("Status", "left", lambda r: render.status_text(r["status"]), None, False))
        if lots:
            chosen.append(("Lots", "right", lambda r: r["lot_count"], None, False))
        chosen += [
            ("Pieces", "right", lambda r: r["piece_count"], None, False),
            ("Total", "right", lambda r: render.money(r["grand_total"], r["currency"] if currency else None), None,
             False),
            ("Unmatched" if not short else "Unm.", "right", lambda r: r["unmatched_lines"] or "", "bold red", False),
        ]
        if not short:
            chosen.append(("Picked", "right", lambda r: f"{r['picked_lines']}/{r['line_count']}"
                           if r.get("picked_lines") else "", None, False))
        return chosen

    return [columns(False, True, True, True), columns(True, True, True, True), columns(True, False, True, True),
            columns(True, False, True, False), columns(True, False, False, False)]


@cli.group(invoke_without_command=True)
@logging_options
@click.option("--provider", "-p", "providers", multiple=True, type=PROVIDER, help="Only this marketplace (repeatable).")
@click.option("--status", "-s", "statuses", multiple=True, type=click.Choice(STATUSES, case_sensitive=False),
              help="Only orders in this unified status (repeatable).")
@click.option("--since", help="Only orders placed since a date (2024-05-01) or an age (7d, 12h).")
@click.option("--open", "open_only", is_flag=True, help="Only orders whose stock is still reserved.")
@click.option("--limit", "-n", type=click.IntRange(0, 10**9), default=None,
              help="At most this many orders, newest first (table default 100; 0 for all).")
@click.option("--watch", is_flag=True, help="Keep the table on screen, refreshed as syncs land.")
@click.option("--interval", type=click.FloatRange(0.2), default=2.0, show_default=True, help="Seconds between refreshes with --watch.")
@output_options
@db_options
@click.pass_context
def orders(ctx, providers, statuses, since, open_only, limit, watch, interval, fmt, db_path, account):
    """All orders of both marketplaces in one table, newest first.

    \b
    Examples:
        marketsync orders
        marketsync orders --open --provider brickowl
        marketsync orders --status paid --since 7d --json
        marketsync orders show bricklink:23215046
    """
    if ctx.invoked_subcommand is not None:
        return
    from marketsync import render
    from marketsync.store import queries

    if watch and fmt == "csv":
        raise click.UsageError("--watch goes with the table or --json (one JSON line per change), not --csv")
    if watch and fmt == "table" and not sys.stdout.isatty():
        raise click.UsageError("--watch draws a table on a terminal; off one, use --watch --json "
                               "(one JSON line per order that changes)")
    store = open_database(db_path, account)
    if limit is None:
        limit = 100 if fmt == "table" else 0
    query = functools.partial(
        queries.orders, store, providers=tuple(p.lower() for p in providers),
        statuses=tuple(s.lower() for s in statuses), since=parse_since(since), open_only=open_only, limit=limit or None,
    )
    if watch:
        return _watch_json(query, interval) if fmt == "json" else _watch(query, interval)
    rows = query()
    if fmt != "table":
        return render.emit(rows, fmt, fields=queries.ORDER_FIELDS)
    matching = query(limit=None, count=True)[0]["count"] if rows and len(rows) == limit else len(rows)
    caption = (f"showing {len(rows)} of {matching}; --limit 0 shows all, --json or --csv for every row"
               if matching > len(rows) else None)
    render.console().print(render.fitting_table(rows, _order_variants(), caption=caption) if rows
                           else _nothing_matched(store, bool(providers or statuses or since or open_only)))


def _nothing_matched(store: Store, filtered: bool) -> str:
    from marketsync.store import queries

    total = queries.orders(store, count=True)[0]["count"]
    if not total:
        return "No orders yet: run 'marketsync sync' (or try 'marketsync demo')"
    return f"No orders match these filters ({total} order{'s' if total != 1 else ''} in all)"


def _watch_json(query, interval: float) -> None:
    """One JSON line per order that appears or changes, polled every ``interval`` seconds: what
    `orders --watch` shows, for a pipe or a log."""
    import json

    seen: dict[tuple[str, str], dict] = {}
    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
    try:
        while True:
            for row in reversed(query()):
                key = (row["provider"], row["order_id"])
                if seen.get(key) != row:
                    seen[key] = row
                    sys.stdout.write(encode(row) + "\n")
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


def _watch(query, interval: float) -> None:
    from rich.live import Live

    from marketsync import render

    def view():
        rows = query()
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%H:%M:%S UTC")
        return render.table(rows, _order_columns(), caption=f"{len(rows)} orders; refreshed {stamp}; Ctrl-C to stop")

    with Live(view(), console=render.console(), auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(view(), refresh=True)
        except KeyboardInterrupt:
            pass


@orders.command("show")
@logging_options
@click.argument("order", metavar="PROVIDER:ORDER_ID")
@output_options
@db_options
def orders_show(order, fmt, db_path, account):
    """One order with its lines, each with the bin to pick from.

    \b
    Example:
        marketsync orders show brickowl:9277759
    """
    from marketsync import render
    from marketsync.store import queries

    provider, order_id = order_ref_arg(order)
    store = open_database(db_path, account)
    detail = queries.order_detail(store, provider, order_id)
    if detail is None:
        raise NotFoundLocally(f"no {provider} order {order_id} in {db_path}")
    if fmt == "json":
        import json

        click.echo(json.dumps(detail, ensure_ascii=False, default=str, indent=2))
        return
    if fmt == "csv":
        return render.emit(detail["lines"], fmt)
    from rich.markup import escape  # buyer names and statuses come from the marketplace, never markup

    out = render.console()
    out.print(f"[bold]{provider} order {escape(order_id)}[/]  {render.when(detail['date_ordered'])}  "
              f"buyer {escape(detail['buyer_name'] or '?')}  ", render.status_text(detail["status"]),
              f" ({escape(str(detail['provider_status']))})  total {render.money(detail['grand_total'], detail['currency'])}"
              + ("  [red]released by hand[/]" if detail["manual_release"] else ""))
    unmatched = any(line["inventory_id"] is None for line in detail["lines"])

    def columns(name: bool) -> list[tuple]:
        chosen = [
            ("Bin", "left", lambda r: r["location"] or "", "bold", False),
            ("Part", "left", lambda r: r["part_number"] or r["boid"] or "", None, False),
            ("Colour", "left", lambda r: r["color_name"] or r["color_id"], None, True),
            ("Cond", "left", lambda r: r["condition"] or "", None, False),
        ]
        if name:
            chosen.append(("Name", "left", lambda r: r["name"], None, True))
        chosen += [
            ("Qty", "right", lambda r: r["quantity"], None, False),
            ("Reserved", "right", lambda r: r["reserved"], None, False),
            ("In bins", "left", lambda r: r["reserved_in"] or "", None, True),
            ("Price", "right", lambda r: render.money(r["unit_price"]), None, False),
            ("Lot", "right", lambda r: r["inventory_id"] if r["inventory_id"] is not None else "", None, False),
        ]
        if unmatched:
            chosen.append(("Unmatched because", "left", lambda r: r["unmatched_reason"] or "", "red", True))
        return chosen

    out.print(render.fitting_table(detail["lines"], [columns(True), columns(False)]))


# --- pick list -------------------------------------------------------------------------------
@cli.command()
@logging_options
@click.option("--provider", "-p", "providers", multiple=True, type=PROVIDER, help="Only this marketplace (repeatable).")
@click.option("--status", "-s", "statuses", multiple=True,
              type=click.Choice([s for s in STATUSES if s in OPEN_STATUSES], case_sensitive=False),
              help="Only orders in this status (repeatable).")
@click.option("--order", "orders_wanted", multiple=True, metavar="PROVIDER:ORDER_ID", help="Only this order (repeatable).")
@click.option("--printable", is_flag=True, help="A plain-text page to print and tick off, bin by bin.")
@click.option("--limit", "-n", type=click.IntRange(0, 1_000_000_000), default=100, show_default=True,
              help="At most this many rows in the table (0 for all); --printable, --json and --csv have them all.")
@output_options
@db_options
def picklist(providers, statuses, orders_wanted, printable, limit, fmt, db_path, account):
    """What to pick for every open order, bin by bin in shelf order, with the orders to drop the
    pieces into.

    \b
    Examples:
        marketsync picklist
        marketsync picklist --provider brickowl --status paid
        marketsync picklist --printable > picklist.txt
        marketsync picklist --csv
    """
    from marketsync import picklist as picking
    from marketsync import render
    from marketsync.catalog import bricklink_colour_names
    from marketsync.store import queries

    if printable and fmt != "table":
        raise click.UsageError("--printable goes with neither --json nor --csv")
    store = open_database(db_path, account)
    rows = queries.pick_list(store, providers=tuple(p.lower() for p in providers),
                             statuses=tuple(s.lower() for s in statuses),
                             orders=tuple(order_ref_arg(o) for o in orders_wanted))
    picks = picking.group(rows, bricklink_colour_names())
    if printable:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(picking.printable(picks, f"Pick list, {stamp}"), nl=False)
    elif fmt == "json":
        render.emit([p.as_dict() for p in picks], "json")
    elif fmt == "csv":
        render.emit([{**{k: v for k, v in p.as_dict().items() if k != "orders"}, **o}
                     for p in picks for o in p.as_dict()["orders"]], "csv",
                    fields=("bin", "part_number", "color_id", "color_name", "condition", "provider", "order_id",
                            "quantity", "total"))
    else:
        shown = picks[:limit] if limit else picks
        render.emit([p.as_dict() for p in shown], "table", [
            ("Bin", "left", lambda r: r["bin"], "bold"),
            ("Part", "left", lambda r: r["part_number"]),
            ("Colour", "left", lambda r: r["color_name"]),
            ("Cond", "left", lambda r: r["condition"]),
            ("Total", "right", lambda r: r["total"], "bold"),
            ("Into orders", "left", lambda r: _first_orders(r["orders"])),
        ], title=None if picks else "Nothing to pick: no open order holds stock",
            caption=(f"showing {len(shown)} of {len(picks)} rows; --limit 0 shows all" if len(shown) < len(picks)
                     else "every order of a bin: --printable, --json or --csv") if picks else None)


def _first_orders(orders: list[dict], shown: int = 3) -> str:
    """The first orders of a pick, and how many more (a table cell stays one line; the printable
    page and the exports carry them all)."""
    text = ", ".join(f"{o['provider']}:{o['order_id']} x{o['quantity']}" for o in orders[:shown])
    return text + (f" +{len(orders) - shown} more" if len(orders) > shown else "")


@cli.command()
@logging_options
@click.argument("order", metavar="PROVIDER:ORDER_ID")
@click.argument("lines", nargs=-1, metavar="[LINE_KEY]...")
@click.option("--undo", is_flag=True, help="Put the lines back on the pick list.")
@click.option("--short", "missing", type=click.IntRange(1, 1_000_000), metavar="N",
              help="The bin had N pieces fewer than recorded: on hand goes down by N (recorded), and the "
                   "line takes the rest from other bins. Needs exactly one LINE_KEY.")
@wait_option
@db_options
def pick(order, lines, undo, missing, wait, db_path, account):
    """Mark an order's lines picked (all of them without LINE_KEY): they leave the pick list, and
    their pieces are never moved to another bin again.

    \b
    Examples:
        marketsync pick bricklink:23215046
        marketsync pick brickowl:9277759 433711 --undo
        marketsync pick bricklink:23215046 1:349372975 --short 2
    """
    from marketsync import pick as picking
    from marketsync.store.inventory import lot_index

    provider, order_id = order_ref_arg(order)
    if missing is not None and (undo or len(lines) != 1):
        raise click.UsageError("--short takes exactly one LINE_KEY, and not --undo")
    open_database(db_path)  # a missing database fails before a lock file is left beside it
    with writer(db_path, wait):
        store = open_database(db_path, account)
        if missing is not None:
            for change in picking.short(store, lot_index(store), provider, order_id, lines[0], missing):
                click.echo(str(change))
            return
        count = picking.pick(store, provider, order_id, list(lines), undo=undo)
    if _chatty():
        click.echo(f"{provider} order {order_id}: {count} line(s) {'back on the pick list' if undo else 'picked'}",
                   err=True)


# --- reserve ---------------------------------------------------------------------------------
@cli.command()
@logging_options
@click.option("--check", is_flag=True, help="Verify every ledger invariant; exit 1 listing violations.")
@click.option("--release", "release_order", metavar="PROVIDER:ORDER_ID", help="Release an order's stock by hand.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --release.")
@click.option("--unrelease", "unrelease_order", metavar="PROVIDER:ORDER_ID",
              help="Undo --release: clear the mark and reserve the order's stock again if it is open.")
@click.option("--repair", is_flag=True,
              help="Set every lot's reserved count to the sum of its ledger rows (one line per lot changed), then reserve.")
@click.option("--ledger", "ledger_order", is_flag=False, flag_value="*", default=None, metavar="[PROVIDER:ORDER_ID]",
              help="Show the ledger (of one order).")
@wait_option
@output_options
@db_options
def reserve(check, release_order, yes, unrelease_order, repair, ledger_order, wait, fmt, db_path, account):
    """Reconcile reservations with the current inventory.

    Re-matches lines that were unmatched (after an inventory import, say), writes only the
    differences to the ledger and prints what changed. Running it twice changes nothing.

    When a lot's reserved count disagrees with its ledger rows (see --check), nothing is booked
    until --repair has set the counts to what the ledger says. A shipped, completed or cancelled
    order holds no stock: --release leaves it alone and says so.

    \b
    Examples:
        marketsync reserve
        marketsync reserve --check
        marketsync reserve --release bricklink:23215046 --yes
        marketsync reserve --unrelease bricklink:23215046
        marketsync reserve --repair
        marketsync reserve --ledger brickowl:9277759
    """
    from marketsync import render, reserve as reservations
    from marketsync.store import queries

    if sum(bool(x) for x in (check, release_order, unrelease_order, repair, ledger_order)) > 1:
        raise click.UsageError("use one of --check, --release, --unrelease, --repair and --ledger at a time")
    if check:
        store = open_database(db_path, account)
        problems = reservations.check(store)
        if fmt == "json":
            import json

            click.echo(json.dumps({"ok": not problems, "problems": problems}, indent=2))
        else:
            for problem in problems:
                click.echo(problem)
        if problems:
            raise MarketsyncError(f"{len(problems)} invariant violation(s)")
        if sys.stdout.isatty():
            click.echo("all invariants hold", err=True)
        return
    if ledger_order:
        store = open_database(db_path, account)
        provider = order_id = None
        if ledger_order != "*":
            provider, order_id = order_ref_arg(ledger_order)
        rows = queries.ledger(store, provider, order_id)
        render.emit(rows, fmt, [
            ("When (UTC)", "left", lambda r: render.when(r["created_at"])),
            ("Order", "left", lambda r: f"{r['provider']}:{r['order_id']}"),
            ("Line", "left", lambda r: r["line_key"]),
            ("Lot", "right", lambda r: r["inventory_id"]),
            ("Part", "left", lambda r: f"{r['part_number']} c{r['color_id']} {r['condition']}"),
            ("Bin", "left", lambda r: r["location"]),
            ("Change", "right", lambda r: f"{r['quantity']:+d}"),
            ("Shipped", "right", lambda r: r["consumed"] or ""),
            ("Reason", "left", lambda r: r["reason"]),
        ])
        return
    from marketsync import catalog
    from marketsync.store.inventory import lot_index
    from marketsync.translate import Translator

    open_database(db_path)  # a missing or unusable database fails before a lock file is left beside it
    note = None
    with writer(db_path, wait):
        store = open_database(db_path, account)
        if repair:
            for fix in reservations.repair(store):
                click.echo(str(fix))
        else:
            reservations.require_no_drift(store)
        index = lot_index(store)
        if release_order:
            provider, order_id = order_ref_arg(release_order)
            reservations.find_order(store, provider, order_id)
            if not yes:
                if not sys.stdin.isatty():
                    raise click.UsageError("--release needs --yes when not run interactively")
                click.confirm(f"Release all stock reserved by {provider} order {order_id}?", abort=True)
            changes, note = reservations.release(store, index, provider, order_id)
        elif unrelease_order:
            provider, order_id = order_ref_arg(unrelease_order)
            changes, note = reservations.unrelease(store, index, provider, order_id)
        else:
            changes = reservations.rematch(store, index, Translator(catalog.known(store), index))
    for change in changes:
        click.echo(str(change))
    if note:
        _problem(note)


# --- status ----------------------------------------------------------------------------------
@cli.command()
@logging_options
@click.option("--max-age", type=click.IntRange(1), default=None, envvar="MARKETSYNC_MAX_AGE", show_envvar=True,
              help="Exit 1 when a configured provider's last successful sync is older than this many minutes.")
@budget_option
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@db_options
def status(max_age, bricklink_budget, as_json, db_path, account):
    """Health of each marketplace: last sync, errors, API calls today, open orders, problems.

    Exits 1 when a provider's last sync failed (or is older than --max-age), so monitoring can call it.

    \b
    Example:
        marketsync status --max-age 60
    """
    from marketsync import health, render
    from marketsync.model import now_iso
    from marketsync.store import queries

    store = open_database(db_path, account)
    configured = configured_providers()
    shown = [p for p in PROVIDERS if p in configured or p in queries.providers_with_history(store)]
    report = queries.status(store, tuple(shown) or PROVIDERS, now_iso()[:10])
    oversold = queries.oversold(store)
    unhealthy = health.unhealthy(report, configured, max_age)
    for row in report:
        row["daily_budget"] = bricklink_budget if row["provider"] == "bricklink" else None
    if as_json:
        import json

        click.echo(json.dumps({"providers": report, "oversold_lots": oversold, "problems": unhealthy}, indent=2))
    else:
        render.console().print(render.table(report, [
            ("Provider", "left", lambda r: r["provider"], "bold"),
            ("Last sync (UTC)", "left", lambda r: render.when(r["last_synced_at"]) or "never"),
            ("Last attempt", "left", lambda r: render.when(r["last_attempt_at"])),
            ("Last error", "left", lambda r: mask_secrets(r["last_error"] or ""), "red"),
            ("Calls today", "right", lambda r: f"{r['calls_today']}" + (f" / {r['daily_budget']}" if r["daily_budget"] else "")),
            ("Open orders", "right", lambda r: r["open_orders"]),
            ("Unmatched lines", "right", lambda r: r["unmatched_open_lines"]),
        ]))
        if oversold:
            render.console().print(f"[bold red]{len(oversold)} oversold lot(s)[/]: see 'marketsync inventory list --oversold'")
    for problem in unhealthy:
        click.echo(problem, err=True)
    if unhealthy:
        sys.exit(EXIT_FAILED)


# --- backup ----------------------------------------------------------------------------------
@cli.command()
@logging_options
@click.argument("path", required=False, type=click.Path())
@db_options
def backup(path, db_path, account):
    """Copy the database into one owner-only file while it is in use (SQLite's backup API: a
    consistent copy even while a sync writes). The database is only read.

    Without PATH the copy goes beside the database as DB.backup-YYYYMMDDTHHMMSSZ and the newest 7
    of those are kept; 'sync' makes one there at most once a day, and a schema upgrade makes one
    before it changes anything. With PATH (a new file, or a directory to put one in) the copy goes
    there. A backup never replaces a file. Prints the path written.

    \b
    Restore, with no marketsync running (stop cron first), in the database's directory:
        mkdir damaged
        for f in marketsync.db marketsync.db-wal marketsync.db-shm; do [ ! -e $f ] || mv $f damaged/; done
        cp -p marketsync.db.backup-20261125T090000Z marketsync.db
        marketsync reserve --check && marketsync sync --full

    The -wal and -shm files must leave with the old database (SQLite would apply them to the
    restored one). 'sync --full' fetches every order that changed since the backup; inventory
    imports and pins made since then must be made again.

    \b
    Examples:
        marketsync backup
        marketsync backup /mnt/usb/shop-backup.db
    """
    from marketsync import backup as backups

    click.echo(str(backups.make(db_path, path)))


def _daily_backup(db_path: str) -> None:
    """sync's backup beside the database, at most once a day: a failure is one problem line."""
    from marketsync import backup as backups

    problem = backups.daily(db_path)
    if problem:
        _problem(problem)


# --- inventory -------------------------------------------------------------------------------
@cli.group()
@logging_options
def inventory():
    """Your own stock: import it, list it, pull it from BrickLink.

    \b
    Example:
        marketsync inventory import examples/inventory.csv && marketsync inventory list
    """


@inventory.command("import")
@logging_options
@click.argument("file", type=click.Path(dir_okay=False))
@wait_option
@db_options
def inventory_import(file, wait, db_path, account):
    """Import lots from a CSV or a BrickLink inventory XML file (detected by content).

    CSV header: part_number,color_id,condition,location,quantity (optional: name, item_type,
    price, bricklink_lot_id). Lots are updated by part + colour + condition + location.
    All or nothing: one bad row imports nothing and names the line.

    \b
    Examples:
        marketsync inventory import examples/inventory.csv
        marketsync inventory import my-bricklink-store.xml
    """
    from marketsync.inventory_files import read_inventory_file
    from marketsync.store.inventory import upsert_lots

    lots = read_inventory_file(file)
    with writer(db_path, wait):
        store = open_database(db_path, account, create=True)
        with store.atomic():
            inserted, changed, unchanged = upsert_lots(store, lots)
    if _chatty():
        click.echo(f"{file}: {inserted} lots added, {changed} changed, {unchanged} unchanged", err=True)


INVENTORY_FIELDS = ("id", "part_number", "color_id", "condition", "location", "quantity", "quantity_reserved",
                    "available", "name", "item_type", "price", "bricklink_lot_id")


@inventory.command("list")
@logging_options
@click.option("--part", help="Only this BrickLink part number.")
@click.option("--color", "color_id", type=click.IntRange(0, 2**31 - 1), help="Only this BrickLink colour id.")
@click.option("--condition", type=click.Choice(["new", "used"], case_sensitive=False), help="Only new or only used lots.")
@click.option("--location", help="Only this bin.")
@click.option("--reserved", "reserved_only", is_flag=True, help="Only lots with reserved stock.")
@click.option("--oversold", "oversold_only", is_flag=True, help="Only lots with more reserved than on hand.")
@output_options
@db_options
def inventory_list(part, color_id, condition, location, reserved_only, oversold_only, fmt, db_path, account):
    """List lots with on-hand, reserved and available stock.

    \b
    Examples:
        marketsync inventory list --location A01
        marketsync inventory list --oversold --csv
    """
    from marketsync import render
    from marketsync.store import queries

    store = open_database(db_path, account)
    rows = queries.inventory(store, part=part, color_id=color_id,
                             condition=condition.lower() if condition else None, location=location,
                             reserved_only=reserved_only, oversold_only=oversold_only)
    render.emit(rows, fmt, [
        ("Lot", "right", lambda r: r["id"]),
        ("Bin", "left", lambda r: r["location"], "bold"),
        ("Part", "left", lambda r: r["part_number"]),
        ("Colour", "right", lambda r: r["color_id"]),
        ("Cond", "left", lambda r: r["condition"]),
        ("Name", "left", lambda r: r["name"] or ""),
        ("On hand", "right", lambda r: r["quantity"]),
        ("Reserved", "right", lambda r: r["quantity_reserved"] or ""),
        ("Available", "right", lambda r: render.styled(r["available"], "red") if r["available"] < 0 else r["available"]),
    ], fields=INVENTORY_FIELDS)


@inventory.command("pull")
@logging_options
@click.option("--provider", "-p", type=click.Choice(PROVIDERS, case_sensitive=False), default="bricklink",
              show_default=True, help="The marketplace whose listing of your store to pull.")
@click.option("--zero-missing", is_flag=True, help="Set lots the marketplace no longer lists to 0 on hand.")
@wait_option
@db_options
@http_options
def inventory_pull(provider, zero_missing, wait, db_path, account, settings):
    """Take your store's lots from a marketplace's listing into the local inventory.

    Syncs that marketplace's orders first: a listing leaves out the pieces of open orders, which
    are still on the shelf, so on hand = listed + those pieces. Pulling again changes on hand only
    where the listing moved in a way no order and no push of marketsync's explains. The bin is
    BrickLink's private remarks or BrickOwl's personal note.

    \b
    Examples:
        marketsync inventory pull --provider bricklink
        marketsync inventory pull --provider brickowl --zero-missing
    """
    from marketsync import catalog, pull, reserve as reservations
    from marketsync.store.inventory import lot_index
    from marketsync.translate import Translator

    provider = provider.lower()
    require_credentials(provider)
    with writer(db_path, wait):
        store = open_database(db_path, account, create=True)
        # Every marketplace's orders first: what the listing shows is judged against all of them.
        wiring = _Wiring(store, sorted(set(configured_providers()) | {provider}), settings)
        results = wiring.sync()
        lots = next(a for a in wiring.adapters if a.name == provider).list_lots()
        index = lot_index(store)
        translator = (Translator(catalog.known(store), index, wiring.catalog, beyond_inventory=True)
                      if provider == "brickowl" else None)
        pulled = pull.pull(store, provider, lots, index, translator, calls=wiring.counter.take_unsaved(),
                           zero_missing=zero_missing)
        reservations.rematch(store, index, Translator(catalog.known(store), index))
    _report_sync(results, exit_on_failure=False)
    for problem in pulled.problems:
        _problem(problem)
    if _chatty():
        click.echo(f"{provider}: {pulled.inserted} lots added, {pulled.updated} changed, {pulled.adjusted} adjusted",
                   err=True)
    if any(not result.ok for result in results):
        sys.exit(EXIT_FAILED)


# --- listings --------------------------------------------------------------------------------
class _Wiring:
    """One run's adapters over one call counter, and the engine jobs that use them."""

    def __init__(self, store: "Store", providers: list[str], settings: HttpSettings,
                 environ: dict[str, str] | None = None):
        from marketsync.providers import build_adapter
        from marketsync.providers.brickowl import BrickOwl
        from marketsync.providers.http import CallCounter
        from marketsync.store.state import api_calls_on

        self.store, self.settings = store, settings
        self.counter = CallCounter()
        self.adapters = [build_adapter(provider, settings, counter=self.counter, environ=environ, share=len(providers),
                                       calls_today=api_calls_on(store, provider)) for provider in providers]
        self.catalog = next((a for a in self.adapters if isinstance(a, BrickOwl)), None)

    def sync(self, full: bool = False) -> list:
        from marketsync import sync as engine

        with _progress() as progress:
            return engine.run(self.store, list(self.adapters), self.counter, full=full,
                              concurrency=self.settings.concurrency, progress=progress)

    def push(self, *, dry_run: bool, resync: bool = True) -> tuple[list, list]:
        """The listings pushed (after the orders synced again for the bracket); (push results, resync results)."""
        from marketsync import catalog, push
        from marketsync.store import catalog as stored_catalog
        from marketsync.store.inventory import lot_index
        from marketsync.store.state import add_api_calls
        from marketsync.translate import Translator

        again: list = []

        def sync_again() -> tuple[set[tuple[str, str]], set[str]]:
            again.extend(self.sync())
            return (set().union(*(result.touched for result in again)),
                    {result.provider for result in again if not result.ok})

        index = lot_index(self.store)
        translator = Translator(catalog.known(self.store), index, self.catalog) if self.catalog else None
        results = push.run(self.store, list(self.adapters), index, translator=translator,
                           resync=sync_again if resync else None, dry_run=dry_run)
        with self.store.atomic():
            if translator is not None and not dry_run:
                stored_catalog.save(self.store, translator.take_learned())
            add_api_calls(self.store, self.counter.take_unsaved())
        return results, again


def _chatty() -> bool:
    """Summaries go to a terminal, or anywhere with -v (cron's mail, a log): off a terminal a
    clean run is silent unless asked."""
    ctx = click.get_current_context(silent=True)
    return sys.stderr.isatty() or bool(ctx and ctx.find_root().meta.get("marketsync.verbose"))


def _problem(line: str) -> None:
    line = one_line(mask_secrets(line))
    click.echo(line, err=True)
    RUN_LOG.warning(line)


def _report_push(results, dry_run: bool, fmt: str = "table") -> None:
    from marketsync import render

    if dry_run:
        rows = [{"provider": c.provider, "remote_lot_id": c.remote_lot_id, "inventory_id": c.inventory_id,
                 "listed": c.before, "would_list": c.after, "change": c.after - c.before}
                for result in results for c in result.changes]
        render.emit(rows, fmt, [
            ("Marketplace", "left", lambda r: r["provider"]),
            ("Remote lot", "right", lambda r: r["remote_lot_id"]),
            ("Lot", "right", lambda r: r["inventory_id"]),
            ("Listed", "right", lambda r: r["listed"]),
            ("Would list", "right", lambda r: r["would_list"]),
            ("Change", "right", lambda r: f"{r['change']:+d}"),
        ], title=None if rows else "Nothing to change")
    for result in results:
        for problem in result.problems:
            _problem(problem)
        if not result.ok:
            click.echo(f"Error: {one_line(mask_secrets(result.error or result.provider + ' failed'))}", err=True)
            RUN_LOG.error(one_line(result.error or ""))
        elif not dry_run:
            applied = sum(1 for c in result.changes if c.outcome == "applied")
            RUN_LOG.info("%s: %d lots read, %d listing changes applied", result.provider, result.lots_read, applied)
            if _chatty():
                click.echo(f"{result.provider}: {result.lots_read} lots read, {applied} listing change(s) applied",
                           err=True)


@cli.group(invoke_without_command=True)
@logging_options
@click.option("--provider", "-p", type=click.Choice(PROVIDERS, case_sensitive=False), help="Only this marketplace.")
@click.option("--held", "held_only", is_flag=True, help="Only listings held for your decision.")
@click.option("--unlinked", "unlinked_only", is_flag=True,
              help="Only remote lots linked to no local lot (unlinked, ambiguous) or no longer for sale.")
@output_options
@db_options
@click.pass_context
def stock(ctx, provider, held_only, unlinked_only, fmt, db_path, account):
    """Each listing of your lots on each marketplace: what it shows, what is available, the change
    the next push makes, and why a listing is held.

    \b
    Examples:
        marketsync stock
        marketsync stock --unlinked
        marketsync stock push --dry-run
        marketsync stock adopt bricklink:501
    """
    if ctx.invoked_subcommand is not None:
        return
    from marketsync import render
    from marketsync.store import queries

    store = open_database(db_path, account)
    from marketsync.stock import with_pending

    rows = with_pending(queries.stock(store, provider.lower() if provider else None, held_only, unlinked_only))
    render.emit(rows, fmt, _stock_columns(), title=None if rows else "No listings yet (run 'marketsync sync --push')")


def _stock_columns():
    from marketsync import render

    return [
        ("Marketplace", "left", lambda r: r["provider"]),
        ("Remote lot", "right", lambda r: r["remote_lot_id"]),
        ("Lot", "right", lambda r: r["inventory_id"] if r["inventory_id"] is not None else ""),
        ("Bin", "left", lambda r: r["location"] or "", "bold"),
        ("Part", "left", lambda r: f"{r['part_number']} c{r['color_id']} {r['condition']}" if r["part_number"] else ""),
        ("Listed", "right", lambda r: r["listed"] if r["listed"] is not None else ""),
        ("Available", "right", lambda r: r["available"] if r["available"] is not None else ""),
        ("Pending", "right", lambda r: f"{r['pending_change']:+d}" if r["pending_change"] else ""),
        ("Held / problem", "left", lambda r: r["held_reason"] or r["link_problem"]
         or (f"not for sale: {r['gone_reason']}" if r["gone_at"] else ""), "red"),
    ]


@stock.command("push")
@logging_options
@click.option("--provider", "-p", "providers", multiple=True, type=PROVIDER,
              help="Push only this marketplace's listings (repeatable). Default: every one with credentials.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@output_options
@wait_option
@db_options
@http_options
def stock_push(providers, dry_run, fmt, wait, db_path, account, settings):
    """Bring every listing to what is available, without syncing orders first (the order lists
    are still read once after the listings, so an order placed meanwhile is never put back on sale).

    \b
    Examples:
        marketsync stock push --dry-run
        marketsync stock push --provider brickowl
    """
    chosen = _chosen_providers(providers)
    with writer(db_path, wait):
        store = open_database(db_path, account, create=True)
        results, again = _Wiring(store, chosen, settings).push(dry_run=dry_run)
    _report_sync(again, exit_on_failure=False)
    _report_push(results, dry_run, fmt)
    if any(not result.ok for result in results + again):
        sys.exit(EXIT_FAILED)


@stock.command("adopt")
@logging_options
@click.argument("listing", metavar="PROVIDER:REMOTE_LOT")
@wait_option
@db_options
@http_options
def stock_adopt(listing, wait, db_path, account, settings):
    """Take a held listing's figure (the seller's own edit on the marketplace) into on hand,
    recorded as an adjustment; the next push carries it to the other marketplaces.

    \b
    Example:
        marketsync stock adopt bricklink:501
    """
    _decide(listing, "adopt", wait, db_path, account, settings)


@stock.command("override")
@logging_options
@click.argument("listing", metavar="PROVIDER:REMOTE_LOT")
@wait_option
@db_options
@http_options
def stock_override(listing, wait, db_path, account, settings):
    """Release a held listing and let the next push set it to what marketsync counts available.

    \b
    Example:
        marketsync stock override brickowl:2726913
    """
    _decide(listing, "override", wait, db_path, account, settings)


@stock.command("link")
@logging_options
@click.argument("listing", metavar="PROVIDER:REMOTE_LOT")
@click.argument("lot", metavar="LOT_ID", type=click.IntRange(min=1))
@wait_option
@db_options
@http_options
def stock_link(listing, lot, wait, db_path, account, settings):
    """Link a for-sale listing to a local lot by hand (LOT_ID from 'marketsync inventory list').
    The lot's listings on that marketplace then show what is available, together.

    \b
    Example:
        marketsync stock link bricklink:349372990 12
    """
    from marketsync import stock as decisions

    provider, remote_lot_id = order_ref_arg(listing)
    require_credentials(provider)
    open_database(db_path)
    with writer(db_path, wait):
        store = open_database(db_path, account)
        wiring = _Wiring(store, [provider], settings)
        message = decisions.link_by_hand(store, wiring.adapters[0], remote_lot_id, lot, calls=wiring.counter)
    if _chatty():
        click.echo(message, err=True)


@stock.command("unlink")
@logging_options
@click.argument("listing", metavar="PROVIDER:REMOTE_LOT")
@wait_option
@db_options
def stock_unlink(listing, wait, db_path, account):
    """Unlink a listing from its local lot: marketsync stops changing it (and never links it again
    by itself; 'marketsync stock link' does).

    \b
    Example:
        marketsync stock unlink brickowl:2726913
    """
    from marketsync import stock as decisions

    provider, remote_lot_id = order_ref_arg(listing)
    open_database(db_path)
    with writer(db_path, wait):
        message = decisions.unlink_by_hand(open_database(db_path, account), provider, remote_lot_id)
    if _chatty():
        click.echo(message, err=True)


@stock.command("probe")
@logging_options
@click.argument("listing", metavar="PROVIDER:REMOTE_LOT")
@click.option("--save", "save_path", type=click.Path(dir_okay=False),
              help="Also write every request, answer and verdict as JSON to this file (owner-only, secrets "
                   "masked), for a bug report.")
@click.option("--yes", "-y", is_flag=True, help="Go ahead without asking (needed off a terminal).")
@wait_option
@db_options
@http_options
def stock_probe(listing, save_path, yes, wait, db_path, account, settings):
    """Check the live store safely on one linked lot: change it by +1, read it back, then by -1 and
    read it back, each change recorded before it is sent. Shows each raw answer (secrets masked)
    and whether marketsync read it right. A lost answer, a refusal or a read-back that disagrees
    stops it (nothing is sent blindly; 'marketsync sync --push' settles what is left open). Lots
    that are held, have open changes, are at 0 or are not for sale are refused.

    \b
    Example:
        marketsync stock probe bricklink:501 --save probe.json
    """
    from marketsync import probe

    provider, remote_lot_id = order_ref_arg(listing)
    if not yes and not probe.on_terminal():
        raise click.UsageError("not on a terminal: 'stock probe' changes a live listing, add --yes to go ahead "
                               "without being asked")
    require_credentials(provider)
    if save_path:
        probe.check_save_path(save_path)
    row = probe.check_listing(open_database(db_path, account), provider, remote_lot_id)
    if not yes:
        click.confirm(probe.question(row), abort=True)
    with writer(db_path, wait):
        store = open_database(db_path, account)
        wiring = _Wiring(store, [provider], settings)
        result = probe.run(store, wiring.adapters[0], remote_lot_id, calls=wiring.counter)
    for line in probe.report(result):
        click.echo(one_line(mask_secrets(line)))
    if save_path:
        probe.save(result, save_path, tuple(secret_values()))
        click.echo(f"capture written to {save_path} (owner-only, secrets masked)")
    if not result.ok:
        sys.exit(EXIT_FAILED)


def _decide(listing: str, decision: str, wait: float, db_path: str, account: str, settings: HttpSettings) -> None:
    from marketsync import stock as decisions

    provider, remote_lot_id = order_ref_arg(listing)
    require_credentials(provider)
    open_database(db_path)
    with writer(db_path, wait):
        store = open_database(db_path, account)
        wiring = _Wiring(store, [provider], settings)
        message = decisions.decide(store, wiring.adapters[0], remote_lot_id, decision,
                                   calls=wiring.counter)
    if _chatty():
        click.echo(message, err=True)


def _chosen_providers(providers, db_path: str | None = None, account: str | None = None) -> list[str]:
    chosen = list(dict.fromkeys(p.lower() for p in providers)) or configured_providers()
    if not chosen and db_path is not None and account is not None and os.path.exists(db_path):
        from marketsync.store import queries

        history = queries.providers_with_history(open_database(db_path, account))
        if history:
            raise ConfigError(f"no marketplace credentials set, but {db_path} has synced {', '.join(history)} before; "
                              f"set {', '.join(v for p in history for v in CREDENTIAL_VARS[p])}")
    if not chosen:
        raise ConfigError(
            "no marketplace credentials set; set " + ", ".join(v for vs in CREDENTIAL_VARS.values() for v in vs)
            + " (or try 'marketsync demo')"
        )
    for provider in chosen:
        require_credentials(provider)
        api_url(provider)  # a bad URL is a configuration error before any file is created
    return chosen


# --- BrickOwl part mapping -------------------------------------------------------------------
@cli.command("map")
@logging_options
@click.argument("boid", required=False)
@click.argument("part_number", required=False)
@click.option("--remove", is_flag=True, help="Remove the pinned mapping of BOID.")
@output_options
@db_options
def map_command(boid, part_number, remove, fmt, db_path, account):
    """Pin a BrickOwl item (BOID) to a BrickLink part number, or list the mappings.

    BrickOwl order lines carry no BrickLink part number; marketsync works most of them out
    (linked lots, BrickOwl's catalog, the item's other ids). Pin the rest here, then run
    'marketsync reserve' to match the waiting lines.

    \b
    Examples:
        marketsync map 487300 3069b
        marketsync map
        marketsync map 487300 --remove
    """
    from marketsync import catalog, render

    if boid is None:
        store = open_database(db_path, account)
        rows = catalog.mappings(store)
        return render.emit(rows, fmt, [
            ("BOID", "left", lambda r: r["boid"], "bold"),
            ("BrickLink part", "left", lambda r: r["part_number"]),
            ("Source", "left", lambda r: r["source"]),
            ("Since (UTC)", "left", lambda r: render.when(r["created_at"])),
        ])
    if not boid.strip():
        raise click.BadParameter("the BOID is blank", param_hint="BOID")
    import re

    if not re.fullmatch(r"\d+(-\d+)?", boid.strip()):
        raise click.BadParameter(f"{boid.strip()!r} is not a BrickOwl item id (digits, as 487300 or 487300-38)",
                                 param_hint="BOID")
    if not remove and not (part_number or "").strip():
        raise click.UsageError("give the BrickLink PART_NUMBER to pin BOID to" if part_number is None
                               else "the BrickLink PART_NUMBER is blank")
    with writer(db_path):
        store = open_database(db_path, account, create=True)
        if remove:
            with store.atomic():
                if not catalog.unpin(store, boid):
                    raise NotFoundLocally(f"no mapping for BOID {boid}")
            return
        with store.atomic():
            catalog.pin(store, boid, part_number)


# --- debugging -------------------------------------------------------------------------------
@cli.command()
@logging_options
@click.argument("provider", type=PROVIDER)
@click.argument("path")
@click.argument("params", nargs=-1, metavar="[KEY=VALUE]...")
@http_options
def api(provider, path, params, settings):
    """Make one authenticated GET and print the JSON (secrets masked).

    \b
    Examples:
        marketsync api bricklink /orders direction=in
        marketsync api brickowl /order/view order_id=9277759
    """
    import json

    from marketsync.providers import build_adapter

    query = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{param!r} is not KEY=VALUE", param_hint="PARAMS")
        query[key] = value
    adapter = build_adapter(provider.lower(), settings)
    data = adapter.client.get("/" + path.lstrip("/"), query)
    click.echo(mask_secrets(json.dumps(data, indent=2, ensure_ascii=False)))


# --- the sandbox -----------------------------------------------------------------------------
@cli.command()
@logging_options
@click.option("--db", "db_path", default="marketsync-demo.db", show_default=True, type=click.Path(dir_okay=False),
              help="The demo database (recreated on every run; any other file is refused).")
@click.option("--force", is_flag=True, help="Replace --db even if it is not a demo database.")
def demo(db_path, force):
    """Sync a seeded demo store from the built-in sandbox marketplaces, push the listings, and
    show the orders.

    Needs no credentials and no network: both marketplaces are emulated on 127.0.0.1. After the
    orders, every listing is brought to what is available (what one marketplace sold, the other
    stops offering); one sale is then placed on BrickLink to show it reach BrickOwl.

    \b
    Example:
        marketsync demo && marketsync orders --db marketsync-demo.db --open
    """
    from marketsync import demo as demo_store
    from marketsync import render
    from marketsync.sandbox import Sandbox
    from marketsync.store.queries import orders as list_orders

    account = DEFAULT_ACCOUNT
    demo_store.refuse_unless_demo(db_path, force)  # before a lock file is left beside someone's file
    with writer(db_path):
        with Sandbox(demo=True) as sandbox:
            sandbox.brickowl.rate_limit = None  # a demo need not wait out BrickOwl's per-minute pacing
            store = demo_store.recreate(db_path, account, force=force)
            settings = HttpSettings(timeout=10, backoff=0.1, brickowl_rate_limit=None)
            wiring = _Wiring(store, list(PROVIDERS), settings, environ=sandbox.env())
            results = wiring.sync()
            pushed, _ = wiring.push(dry_run=False)
            sale = demo_store.sell_one_on_bricklink(sandbox, store)
            followed, _ = wiring.push(dry_run=False) if sale else ([], [])
    rows = list_orders(store)
    render.console().print(render.table(
        rows, _order_columns(),
        caption=f"{len(rows)} orders in {db_path}; try: marketsync orders show PROVIDER:ORDER_ID --db {db_path}"))
    for result in results:
        click.echo(f"{result.provider}: {result.changed} orders synced with {result.calls} API calls", err=True)
    for result in pushed:
        applied = sum(1 for c in result.changes if c.outcome == "applied")
        click.echo(f"{result.provider}: {applied} listing(s) brought to what is available", err=True)
    for result in followed:
        for change in result.changes:
            click.echo(f"then {sale}: {change} on {result.provider}", err=True)
    _report_sync(results)  # the demo store has unmatched lines and an oversold lot on purpose


@cli.command()
@logging_options
@click.option("--bricklink-port", type=click.IntRange(0, 65535), default=8801, show_default=True,
              help="Port of the emulated BrickLink API on 127.0.0.1 (0: any free port).")
@click.option("--brickowl-port", type=click.IntRange(0, 65535), default=8802, show_default=True,
              help="Port of the emulated BrickOwl API on 127.0.0.1 (0: any free port).")
@click.option("--empty", is_flag=True, help="Start with empty stores instead of the demo store.")
@click.option("--quirks", is_flag=True,
              help="Answer with the messier shapes of real captured payloads (nulls, missing fields...).")
def sandbox(bricklink_port, brickowl_port, empty, quirks):
    """Run the sandbox marketplaces in the foreground and print the .env lines to use them.

    While it serves, it reads one command per line on standard input (a terminal or a pipe) and
    answers each on one line of standard output (of standard error when the output goes to a
    file), so you can play the marketplaces' part and watch 'marketsync sync' reserve, release
    and consume stock. The end of the input stops the commands, not the marketplaces: they serve
    until Ctrl-C.

    \b
    Commands:
        orders [PROVIDER]                   the sandbox's orders: id, status, lines
        lots PROVIDER [PART|BOID]           the marketplace's store lots
        order bricklink PART COLOUR QTY [BIN]   place a paid order (BIN: the remarks)
        order brickowl BOID [COLOUR] QTY [BIN]  the same on BrickOwl
        status PROVIDER ORDER_ID STATUS     e.g. status bricklink 23216046 SHIPPED,
                                            status brickowl 9277759 Cancelled
        delete PROVIDER ORDER_ID            the order vanishes (not listed, detail 404)
        help                                list the commands

    \b
    Examples:
        marketsync sandbox > sandbox.env
        marketsync sandbox --empty --bricklink-port 0 --brickowl-port 0
    """
    from marketsync.sandbox import serve_forever_cli

    serve_forever_cli(bricklink_port, brickowl_port, demo=not empty, quirks=quirks)


if __name__ == "__main__":  # pragma: no cover
    cli()
