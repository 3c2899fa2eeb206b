"""``marketsync status``: each marketplace's health, for a person or for monitoring."""

from __future__ import annotations

import sys
from typing import Any

import click

from marketsync.app.context import Workspace

from marketsync.cli.common import (
    restock_options,
    budget_option,
    db_options,
    logging_options,
    mask_secrets,
)
from marketsync.errors import EXIT_FAILED
from marketsync.registry import MARKETPLACES, NAMES, Capability


def _variants() -> list[list[tuple]]:
    """The status table, richest first, then narrower ones that still fit 80 and 60 columns: words
    are never broken, the error wraps (and shows in full on stderr when it fails the check)."""
    from marketsync.cli import render

    def columns(attempt: bool, wide: bool) -> list[tuple]:
        chosen: list[tuple] = [("Provider", "left", lambda r: r["provider"], "bold", False),
                               ("Last sync (UTC)" if wide else "Last sync", "left",
                                lambda r: render.when(r["last_synced_at"]) or "never", None, False)]
        if attempt:
            chosen.append(("Last attempt", "left", lambda r: render.when(r["last_attempt_at"]), None, False))
        chosen += [
            ("Last error", "left", lambda r: mask_secrets(r["last_error"] or ""), "red"),
            ("Calls today" if wide else "Calls", "right", lambda r: f"{r['calls_today']}"
             + (f" / {r['daily_budget']}" if r["daily_budget"] and wide else ""), None, False),
            ("Open orders" if wide else "Open", "right", lambda r: r["open_orders"], None, False),
            ("Unmatched lines" if wide else "Unm.", "right", lambda r: r["unmatched_open_lines"], None, False),
        ]
        return chosen

    return [columns(True, True), columns(False, True), columns(False, False)]


@click.command()
@logging_options
@click.option("--max-age", type=click.IntRange(1), default=None, envvar="MARKETSYNC_MAX_AGE", show_envvar=True,
              help="Exit 1 when a configured provider's last successful sync is older than this many minutes.")
@budget_option
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@db_options
@restock_options
def status(max_age: int | None, bricklink_budget: int, as_json: bool, ws: Workspace) -> None:
    """Health of each marketplace: last sync, errors, API calls today, open orders, problems.

    Exits 1 when a provider's last sync failed (or is older than --max-age), so monitoring can call it.

    \b
    Example:
        marketsync status --max-age 60
    """
    from marketsync.cli import render
    from marketsync.app import status as health
    from marketsync.model import now_iso
    from marketsync.store import queries

    store = ws.read_only()
    from marketsync.config import configured_providers

    configured = configured_providers()
    shown = [p for p in NAMES if p in configured or p in queries.providers_with_history(store)]
    report = queries.status(store, tuple(shown) or NAMES, now_iso()[:10])
    oversold = queries.oversold(store)
    unhealthy = health.unhealthy(report, configured, max_age)
    from marketsync.app.backup import damaged

    damage = damaged(ws.db_path)  # a failed integrity check, until the database is repaired
    unhealthy = ([damage] if damage else []) + unhealthy
    for row in report:
        row["daily_budget"] = (bricklink_budget if row["provider"] in MARKETPLACES
                               and MARKETPLACES[row["provider"]].can(Capability.DAILY_BUDGET) else None)
    _restocking(store, report, ws.restock_settings())
    windows = _listener(store, report)
    unhealthy += health.quiet_listeners(report, max_age)
    if as_json:
        import json

        for row in report:
            row.pop("cancel_restocks_said", None)
        click.echo(json.dumps({"providers": report, "oversold_lots": oversold, "oversell_window": windows,
                               "problems": unhealthy}, indent=2))
    else:
        render.print_table(report, _variants())  # off a terminal (cron) without loading rich
        if oversold:
            render.print_text(f"{len(oversold)} oversold lot(s): 'marketsync inventory list --oversold'",
                              f"[bold red]{len(oversold)} oversold lot(s)[/]: 'marketsync inventory list --oversold'")
        _print_listener(report, windows)
        for row in report:
            if row.get("cancel_restocks_said"):
                render.print_text(row.pop("cancel_restocks_said"))
    for problem in unhealthy:
        click.echo(problem, err=True)
    if unhealthy:
        sys.exit(EXIT_FAILED)


def _restocking(store: Any, report: list[dict[str, Any]], settings: dict[str, bool]) -> None:
    """Whether each marketplace with listings puts a cancelled order's pieces back, and how marketsync
    knows it (the seller's setting, learned from an order, or not yet): JSON columns and a line."""
    from marketsync.store.state import known_restocks

    for row in report:
        declared = MARKETPLACES.get(row["provider"])
        if declared is None or not declared.can(Capability.LISTINGS):
            continue
        known = known_restocks(store, row["provider"], settings.get(row["provider"]))
        row.update(cancel_restocks=known.restocks, cancel_restocks_source=known.source,
                   cancel_restocks_order=known.order_id, cancel_restocks_lot=known.remote_lot_id)
        does = {True: "puts a cancelled order's pieces back on the listing",
                False: "does not put a cancelled order's pieces back on the listing"}
        how = (f"set by {declared.cancel_restocks_var}" if known.source == "setting" else
               f"learned from order {known.order_id}, lot {known.remote_lot_id}; set {declared.cancel_restocks_var} "
               "if wrong" if known.source == "learned" else
               f"learned from the first cancellation a listing shows, or set {declared.cancel_restocks_var}")
        row["cancel_restocks_said"] = (f"{declared.title} {does[known.restocks]} ({how})" if known.restocks is not None
                                       else f"{declared.title}: whether it restocks cancelled orders is not known yet "
                                            f"({how})")


def _listener(store: Any, report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The listener's columns on each row, and the oversell window over the last 7 and 30 days."""
    import datetime as dt

    from marketsync.app import status as health
    from marketsync.model import utcnow
    from marketsync.store import listener as stored

    states = stored.listener_state(store)
    for row in report:
        row.update(states.get(row["provider"], dict.fromkeys(stored.LISTENER_COLUMNS)))
    rows = stored.windows(store, since=utcnow() - dt.timedelta(days=30))
    return health.window_summary(rows, 7) + health.window_summary(rows, 30)


def _print_listener(report: list[dict[str, Any]], windows: list[dict[str, Any]]) -> None:
    from marketsync.cli import render

    heard = [r for r in report if r.get("last_hint_at") or r.get("listener_seen_at")]
    if heard:
        render.print_table(heard, [[
            ("Listener", "left", lambda r: r["provider"], "bold"),
            ("Running", "left", lambda r: render.when(r["listener_seen_at"]) or "no"),
            ("Last hint", "left", lambda r: f"{render.when(r['last_hint_at']) or 'never'} {r['last_hint'] or ''}"),
            ("Last hint sync", "left", lambda r: render.when(r["last_hint_sync_at"]) or "never"),
        ]])
    if windows:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} s"

        render.print_table(windows, [[
            ("Oversell window", "left", lambda r: f"{r['sold_on']} -> {r['lowered_on']}", "bold"),
            ("Days", "right", lambda r: r["days"]),
            ("Orders", "right", lambda r: r["orders"]),
            ("Median", "right", lambda r: seconds(r["median_seconds"])),
            ("95th pct", "right", lambda r: seconds(r["p95_seconds"])),
            ("Worst", "right", lambda r: seconds(r["worst_seconds"])),
            ("Waiting", "right", lambda r: r["pending"]),
        ]])
