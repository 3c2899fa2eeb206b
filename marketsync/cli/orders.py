"""``marketsync orders``: all orders of both marketplaces in one table, and one order in full."""

from __future__ import annotations

import datetime as dt
import functools
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

import click

from marketsync.app.context import Workspace

from marketsync.cli.common import (
    PROVIDER,
    db_options,
    given,
    logging_options,
    order_ref_arg,
    output_options,
    parse_since,
    refuse_group_options,
)
from marketsync.errors import NotFoundLocally
from marketsync.model import STATUSES
from marketsync.registry import MARKETPLACES

if TYPE_CHECKING:
    from marketsync.store import Store


def _short(provider: str) -> str:
    return MARKETPLACES[provider].short if provider in MARKETPLACES else provider


def _order_columns() -> list[tuple[Any, ...]]:
    return _order_variants()[0]


def _order_variants() -> list[list[tuple]]:
    """The orders table, richest first; each next one gives up the least useful width (the
    marketplace's full name, the time of day, lots, the buyer, the currency) so 80 columns fit."""
    from marketsync.cli import render

    def columns(short: bool, lots: bool, buyer: bool, currency: bool) -> list[tuple]:
        chosen = [
            ("Mkt" if short else "Provider", "left",
             lambda r: _short(r["provider"]) if short else r["provider"], None, False),
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


@click.group(invoke_without_command=True)
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
def orders(ctx: click.Context, providers: tuple[str, ...], statuses: tuple[str, ...], since: str | None,
           open_only: bool, limit: int | None, watch: bool, interval: float, fmt: str, ws: Workspace) -> None:
    """All orders of both marketplaces in one table, newest first.

    \b
    Examples:
        marketsync orders
        marketsync orders --open --provider brickowl
        marketsync orders --status paid --since 7d --json
        marketsync orders show bricklink:23215046
    """
    refuse_group_options(ctx)
    if ctx.invoked_subcommand is not None:
        return
    from marketsync.store import queries

    if not watch and given(ctx, "interval"):
        raise click.UsageError("--interval goes with --watch")
    _check_watch(watch, fmt)
    store = ws.read()
    if limit is None:
        limit = 100 if fmt == "table" else 0
    filters: dict[str, Any] = dict(
        providers=tuple(p.lower() for p in providers), statuses=tuple(s.lower() for s in statuses),
        since=parse_since(since), open_only=open_only, limit=limit or None,
    )
    query = functools.partial(queries.orders, store, **filters)
    if watch:
        return _watch_json(query, interval) if fmt == "json" else _watch(query, interval)
    if fmt != "table":  # JSON and CSV: streamed from the cursor, row by row (flat memory at any size)
        from marketsync.cli import render

        return render.emit(queries.iter_orders(store, **filters), fmt, fields=queries.ORDER_FIELDS)
    _print(store, query, fmt, limit, filtered=bool(providers or statuses or since or open_only))


def _check_watch(watch: bool, fmt: str) -> None:
    if watch and fmt == "csv":
        raise click.UsageError("--watch goes with the table or --json (one JSON line per change), not --csv")
    if watch and fmt == "table" and not sys.stdout.isatty():
        raise click.UsageError("--watch draws a table on a terminal; off one, use --watch --json "
                               "(one JSON line per order that changes)")


def _print(store: "Store", query: Callable[..., list[dict]], fmt: str, limit: int, *, filtered: bool) -> None:
    from marketsync.cli import render
    from marketsync.store import queries

    rows = query()
    if fmt != "table":
        return render.emit(rows, fmt, fields=queries.ORDER_FIELDS)
    matching = query(limit=None, count=True)[0]["count"] if rows and len(rows) == limit else len(rows)
    caption = (f"showing {len(rows)} of {matching}; --limit 0 shows all, --json or --csv for every row"
               if matching > len(rows) else None)
    render.console().print(render.fitting_table(rows, _order_variants(), caption=caption) if rows
                           else _nothing_matched(store, filtered))


def _nothing_matched(store: "Store", filtered: bool) -> str:
    from marketsync.store import queries

    total = queries.orders(store, count=True)[0]["count"]
    if not total:
        return "No orders yet: run 'marketsync sync' (or try 'marketsync demo')"
    return f"No orders match these filters ({total} order{'s' if total != 1 else ''} in all)"


def _watch_json(query: Callable[..., list[dict]], interval: float) -> None:
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


def _watch(query: Callable[..., list[dict]], interval: float) -> None:
    from rich.live import Live

    from marketsync.cli import render

    def view() -> Any:
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
def orders_show(order: str, fmt: str, ws: Workspace) -> None:
    """One order with its lines, each with the bin to pick from.

    \b
    Example:
        marketsync orders show brickowl:9277759
    """
    from marketsync.cli import render
    from marketsync.store import queries

    provider, order_id = order_ref_arg(order)
    store = ws.read()
    detail = queries.order_detail(store, provider, order_id)
    if detail is None:
        raise NotFoundLocally(f"no {provider} order {order_id} in {ws.db_path}")
    from marketsync.store.listener import windows

    detail["oversell_window"] = [  # placed -> seen -> each other marketplace's listing change confirmed
        {k: w[k] for k in ("lowered_on", "placed_at", "seen_at", "seen_by", "confirmed_at", "window_seconds")}
        for w in windows(store, order=(provider, order_id))]
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

    def columns(name: bool, price: bool = True) -> list[tuple]:
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
            *([("Price", "right", lambda r: render.money(r["unit_price"]), None, False)] if price else []),
            ("Lot", "right", lambda r: r["inventory_id"] if r["inventory_id"] is not None else "", None, False),
            ("Line", "left", lambda r: r["line_key"], None, False),  # what 'marketsync pick ORDER LINE' takes
        ]
        if unmatched:
            chosen.append(("Unmatched because", "left", lambda r: r["unmatched_reason"] or "", "red", True))
        return chosen

    out.print(render.fitting_table(detail["lines"], [columns(True), columns(False), columns(False, price=False)]))
    for window in detail["oversell_window"]:
        closed = (f"lowered on {window['lowered_on']} {window['window_seconds']:.1f} s after it was placed"
                  if window["window_seconds"] is not None else f"not yet confirmed lowered on {window['lowered_on']}")
        out.print(f"Oversell window: placed {render.when(window['placed_at'])}, seen by {window['seen_by']} at "
                  f"{render.when(window['seen_at'])}, {closed}")
