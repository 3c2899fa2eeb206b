"""What every command shares: the options, how problems and summaries are printed, one-line
errors. The commands themselves live one group a module beside this one."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

import click
from click.core import ParameterSource

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
    require_credentials,
    secret_values,
)
from marketsync.errors import EXIT_FAILED, ConfigError
from marketsync.registry import MARKETPLACES, NAMES, Capability

if TYPE_CHECKING:
    from marketsync.app.context import Workspace
    from marketsync.app.listing_push import PushResult
    from marketsync.app.order_sync import ProviderResult

Command = Callable[..., Any]


PROVIDER = click.Choice(NAMES, case_sensitive=False)


log = logging.getLogger("marketsync")


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


def logging_options(func: Command) -> Command:
    """-v/--verbose and --log-file, on the group and on every command."""
    func = click.option("-v", "--verbose", count=True, expose_value=False, callback=_logging_option,
                        help="More detail on stderr (-vv: every HTTP request).")(func)
    return click.option("--log-file", envvar="MARKETSYNC_LOG_FILE", show_envvar=True, expose_value=False,
                        type=click.Path(dir_okay=False), callback=_logging_option,
                        help="Append a timestamped line per run and per problem to this file (created owner-only).")(func)


def wait_option(func: Command) -> Command:
    return wait_option_of(10.0)(func)


def wait_option_of(seconds: float) -> Callable[[Command], Command]:
    """``--wait`` with its own default (``sync`` waits out a listener's short sync)."""
    def option(func: Command) -> Command:
        return click.option("--wait", type=click.FloatRange(0), default=seconds, show_default=True,
                            help="Seconds to wait for another running sync or command before giving up "
                                 "(exit 75).")(func)
    return option


def budget_option(func: Command) -> Command:
    return click.option("--bricklink-budget", envvar="BRICKLINK_DAILY_BUDGET", default=DEFAULT_BRICKLINK_DAILY_BUDGET,
                        show_default=True, show_envvar=True, type=click.IntRange(1),
                        help="BrickLink calls allowed per UTC day; a run stops there and resumes later.")(func)


def restock_options(func: Command) -> Command:
    """``--<marketplace>-cancel-restocks yes|no`` (``MARKETSYNC_<MARKETPLACE>_CANCEL_RESTOCKS``) for
    each marketplace with listings: whether it puts a cancelled order's pieces back on the listing.
    The workspace carries them (db_options sits outside this)."""
    declared = [m for m in MARKETPLACES.values() if m.can(Capability.LISTINGS)]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        chosen = {m.name: kwargs.pop(f"{m.name}_cancel_restocks") for m in declared}
        kwargs["ws"].cancel_restocks = {name: value.lower() == "yes" for name, value in chosen.items()
                                        if value is not None}
        return func(*args, **kwargs)

    for m in reversed(declared):
        wrapper = click.option(
            f"--{m.name}-cancel-restocks", f"{m.name}_cancel_restocks", envvar=m.cancel_restocks_var,
            show_envvar=True, type=click.Choice(["yes", "no"], case_sensitive=False), default=None,
            help=f"Whether {m.title} puts a cancelled order's pieces back on the listing (undocumented). "
                 "Unset: learned from the first listing that shows it ('marketsync status').")(wrapper)
    return wrapper


def db_options(func: Command) -> Command:
    @click.option("--db", "db_path", envvar="MARKETSYNC_DB", default=DEFAULT_DB, show_default=True,
                  show_envvar=True, type=click.Path(dir_okay=False), help="The SQLite database file.")
    @click.option("--account", envvar="MARKETSYNC_ACCOUNT", default=DEFAULT_ACCOUNT, show_default=True,
                  show_envvar=True, help="Business account id stored on every row.")
    @functools.wraps(func)
    def wrapper(*args: Any, account: str, db_path: str, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        for name in ("account", "db_path"):  # given before the subcommand, unless given after it too
            if ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE and _given_to_group(ctx, name) is not None:
                if name == "account":
                    account = str(_given_to_group(ctx, name))
                else:
                    db_path = str(_given_to_group(ctx, name))
        db_from_env = os.environ.get("MARKETSYNC_DB")
        if not db_path.strip() or (db_from_env is not None and not db_from_env.strip()
                                   and ctx.get_parameter_source("db_path") == ParameterSource.DEFAULT):
            raise ConfigError("--db / MARKETSYNC_DB must not be empty")
        # click treats an empty MARKETSYNC_ACCOUNT as unset; silently using 'default' would mix accounts
        from_env = os.environ.get("MARKETSYNC_ACCOUNT")
        if not account.strip() or (from_env is not None and not from_env.strip()
                                   and ctx.get_parameter_source("account") == ParameterSource.DEFAULT):
            raise ConfigError("MARKETSYNC_ACCOUNT / --account must not be empty")
        from marketsync.app.context import Workspace  # here: '--help' and option parsing never load the app

        return func(*args, ws=Workspace(db_path, account.strip()), **kwargs)

    return wrapper


def http_options(func: Command) -> Command:
    @click.option("--http-timeout", envvar="MARKETSYNC_HTTP_TIMEOUT", default=DEFAULT_HTTP_TIMEOUT,
                  show_default=True, show_envvar=True, type=click.FloatRange(0.1, 300),
                  help="Seconds to wait for any one read of an HTTP answer.")
    @click.option("--http-deadline", envvar="MARKETSYNC_HTTP_DEADLINE", default=DEFAULT_HTTP_DEADLINE,
                  show_default=True, show_envvar=True, type=click.FloatRange(1, 3600),
                  help="Seconds one HTTP request may take in all, however slowly its answer arrives; a "
                       "marketplace that takes them all is not asked again in that run.")
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
    def wrapper(*args: Any, http_timeout: float, http_deadline: float, run_deadline: float, retries: int,
                retry_backoff: float, concurrency: int, bricklink_budget: int, brickowl_rate: float,
                **kwargs: Any) -> Any:
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
        if "ws" in kwargs:  # the workspace carries them (db_options sits outside http_options)
            kwargs["ws"].settings = settings
            return func(*args, **kwargs)
        return func(*args, settings=settings, **kwargs)

    return wrapper


def output_options(func: Command) -> Command:
    @click.option("--json", "as_json", is_flag=True, help="Output JSON.")
    @click.option("--csv", "as_csv", is_flag=True, help="Output CSV.")
    @functools.wraps(func)
    def wrapper(*args: Any, as_json: bool, as_csv: bool, **kwargs: Any) -> Any:
        if as_json and as_csv:
            raise click.UsageError("--json and --csv go one at a time")
        return func(*args, fmt="json" if as_json else "csv" if as_csv else "table", **kwargs)

    return wrapper


def given(ctx: click.Context, *names: str) -> list[str]:
    """The options among ``names`` given on the command line (not defaults, not the environment)."""
    return [next(p.opts[0] for p in ctx.command.params if p.name == name) for name in names
            if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE]


def refuse_group_options(ctx: click.Context) -> None:
    """A group's own options given before its subcommand would be ignored by the subcommand: refused."""
    if ctx.invoked_subcommand is None:
        return
    names = [p.name for p in ctx.command.params if isinstance(p, click.Option) and p.name and p.expose_value]
    shown = given(ctx, *names)
    if shown:
        raise click.UsageError(f"{', '.join(shown)} belong(s) to '{ctx.command_path}' alone; give the options of "
                               f"'{ctx.command_path} {ctx.invoked_subcommand}' after it")


def order_ref_arg(value: str, what: str = "ORDER_ID") -> tuple[str, str]:
    """``PROVIDER:ID`` (an order, or with ``what`` a remote lot) as (provider, id)."""
    provider, sep, order_id = value.partition(":")
    provider = provider.strip().lower()
    if not sep or provider not in NAMES or not order_id.strip():
        raise click.BadParameter(f"{value!r} is not PROVIDER:{what} (provider: {', '.join(NAMES)})")
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


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # imported on the first record, not at start-up: providers.http brings requests (~60 ms)
        from marketsync.masking import mask

        record.msg = mask(record.getMessage(), secret_values())
        record.args = ()
        return True


class _Stderr(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment a record is emitted (click's test runner swaps it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr


_configured: list[object] = []  # the (verbose, log_file) the loggers were last set up for


def setup_logging(verbose: int, log_file: str | None) -> None:
    root = logging.getLogger("marketsync")
    level = logging.WARNING - 10 * min(verbose, 2) if verbose else logging.ERROR
    # Set up once per process and level: every option callback calls this, and each setLevel makes
    # logging walk all its loggers. A log file is opened (and checked) every time it is named.
    if not log_file and _configured == [level, None] and root.handlers and isinstance(root.handlers[0], _Stderr):
        return
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Redact())
    root.handlers[:] = [handler]
    if root.level != level:
        root.setLevel(level)
    root.propagate = False
    RUN_LOG.handlers[:] = [logging.NullHandler()]  # no file: never logging's last-resort echo on stderr
    RUN_LOG.propagate = False
    _configured[:] = [level, log_file]
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
        file_handler.addFilter(_Redact())
        RUN_LOG.addHandler(file_handler)
        RUN_LOG.setLevel(logging.INFO)


def chatty() -> bool:
    """Summaries go to a terminal, or anywhere with -v (cron's mail, a log): off a terminal a
    clean run is silent unless asked."""
    ctx = click.get_current_context(silent=True)
    return sys.stderr.isatty() or bool(ctx and ctx.find_root().meta.get("marketsync.verbose"))


def problem(line: str) -> None:
    line = one_line(mask_secrets(line))
    click.echo(line, err=True)
    RUN_LOG.warning(line)


def report_sync(results: list[ProviderResult], exit_on_failure: bool = True) -> None:
    said: set[str] = set()  # a run that syncs twice (--push reads the orders again) says each problem once
    for result in results:
        for text in result.problems:
            line = one_line(mask_secrets(text))
            if line in said:
                continue
            said.add(line)
            click.echo(line, err=True)
            RUN_LOG.warning(line)
        if not result.ok:
            click.echo(f"Error: {one_line(mask_secrets(result.error or result.provider + ' failed'))}", err=True)
            RUN_LOG.error(one_line(result.error or ""))
        else:
            RUN_LOG.info("%s: %d listed, %d new or changed, %d API calls",
                         result.provider, result.listed, result.changed, result.calls)
    if chatty():  # one summary per marketplace: a push's second read of the orders adds to the first
        totals: dict[str, list[int]] = {}
        for result in results:
            if result.ok:
                listed, changed, calls = totals.setdefault(result.provider, [0, 0, 0])
                totals[result.provider] = [max(listed, result.listed), changed + result.changed, calls + result.calls]
        for provider, (listed, changed, calls) in totals.items():
            click.echo(f"{provider}: {listed} listed, {changed} new or changed, {calls} API calls", err=True)
    if exit_on_failure and any(not result.ok for result in results):
        sys.exit(EXIT_FAILED)


def report_push(results: list[PushResult], dry_run: bool, fmt: str = "table") -> None:
    from marketsync.cli import render

    if dry_run:  # what would change, and the listings left as they are with why (the push's own rule)
        rows = [{"provider": c.provider, "remote_lot_id": c.remote_lot_id, "inventory_id": c.inventory_id,
                 "listed": c.before, "would_list": c.after, "change": c.after - c.before, "not_changed_because": None}
                for result in results for c in result.changes]
        rows += [{"provider": w.provider, "remote_lot_id": w.remote_lot_id, "inventory_id": w.inventory_id,
                  "listed": w.listed, "would_list": w.listed, "change": 0, "not_changed_because": w.reason}
                 for result in results for w in result.waiting]
        render.emit(rows, fmt, [
            ("Marketplace", "left", lambda r: r["provider"]),
            ("Remote lot", "right", lambda r: r["remote_lot_id"]),
            ("Lot", "right", lambda r: r["inventory_id"]),
            ("Listed", "right", lambda r: r["listed"]),
            ("Would list", "right", lambda r: r["would_list"]),
            ("Change", "right", lambda r: f"{r['change']:+d}" if r["change"] else ""),
            ("Not changed because", "left", lambda r: r["not_changed_because"] or ""),
        ], title=None if rows else "Nothing to change",
            fields=("provider", "remote_lot_id", "inventory_id", "listed", "would_list", "change", "not_changed_because"))
    from marketsync.model import ChangeState  # here: '--help' never loads the model

    for result in results:
        for line in result.problems:
            problem(line)
        if not result.ok:
            click.echo(f"Error: {one_line(mask_secrets(result.error or result.provider + ' failed'))}", err=True)
            RUN_LOG.error(one_line(result.error or ""))
        elif not dry_run:
            applied = sum(1 for c in result.changes if c.outcome == ChangeState.APPLIED)
            RUN_LOG.info("%s: %d lots read, %d listing changes applied", result.provider, result.lots_read, applied)
            if chatty():
                click.echo(f"{result.provider}: {result.lots_read} lots read, {applied} listing change(s) applied",
                           err=True)
                for waiting in result.waiting:
                    click.echo(one_line(str(waiting)), err=True)


class progress:
    """A rich progress display on stderr when it is a terminal; nothing otherwise."""

    def __enter__(self) -> Any:
        from marketsync.app.order_sync import NoProgress

        if not sys.stderr.isatty():
            return NoProgress()
        from rich.progress import Progress

        from marketsync.cli.render import console

        self.bar = Progress(console=console(stderr=True), transient=True)
        self.tasks: dict[str, Any] = {}
        self.bar.start()
        return self

    def start(self, provider: str, total: int) -> None:
        self.tasks[provider] = self.bar.add_task(f"{provider}: orders", total=total)

    def advance(self, provider: str) -> None:
        self.bar.advance(self.tasks[provider])

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "bar"):
            self.bar.stop()
        return None


def chosen_providers(providers: tuple[str, ...], ws: Workspace | None = None) -> list[str]:
    """The marketplaces a command works with: those named, else every one with credentials."""
    chosen = list(dict.fromkeys(p.lower() for p in providers)) or configured_providers()
    if not chosen and ws is not None and os.path.exists(ws.db_path):
        from marketsync.store import queries

        history = queries.providers_with_history(ws.read())
        if history:
            raise ConfigError(f"no marketplace credentials set, but {ws.db_path} has synced {', '.join(history)} before; "
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
