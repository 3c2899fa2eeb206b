"""``marketsync picklist`` and ``marketsync pick``: what to pick, bin by bin, and what was picked."""

from __future__ import annotations

import datetime as dt

from typing import Any

import click

from marketsync.app.context import Workspace

from marketsync.cli.common import (
    PROVIDER,
    chatty,
    db_options,
    given,
    logging_options,
    order_ref_arg,
    output_options,
    wait_option,
)
from marketsync.model import OPEN_STATUSES, STATUSES


@click.command()
@logging_options
@click.option("--provider", "-p", "providers", multiple=True, type=PROVIDER, help="Only this marketplace (repeatable).")
@click.option("--status", "-s", "statuses", multiple=True,
              type=click.Choice([s for s in STATUSES if s in OPEN_STATUSES], case_sensitive=False),
              help="Only orders in this status (repeatable).")
@click.option("--order", "orders_wanted", multiple=True, metavar="PROVIDER:ORDER_ID", help="Only this order (repeatable).")
@click.option("--printable", is_flag=True, help="A plain-text page to print and tick off, bin by bin.")
@click.option("--limit", "-n", type=click.IntRange(0, 1_000_000_000), default=100, show_default=True,
              help="At most this many rows (0 for all); without it the table shows 100, --printable, --json and "
                   "--csv all.")
@output_options
@db_options
def picklist(providers: tuple[str, ...], statuses: tuple[str, ...], orders_wanted: tuple[str, ...], printable: bool,
             limit: int, fmt: str, ws: Workspace) -> None:
    """What to pick for every open order, bin by bin in shelf order, with the orders to drop the
    pieces into.

    \b
    Examples:
        marketsync picklist
        marketsync picklist --provider brickowl --status paid
        marketsync picklist --printable > picklist.txt
        marketsync picklist --csv
    """
    from marketsync.app import picklist as picking
    from marketsync.app.reserve import find_order
    from marketsync.cli import render
    from marketsync.app.catalog import bricklink_colour_names
    from marketsync.store import queries

    if printable and fmt != "table":
        raise click.UsageError("--printable goes with neither --json nor --csv")
    store = ws.read()
    wanted = tuple(order_ref_arg(o) for o in orders_wanted)
    for provider, order_id in wanted:  # an order that is not in the database is not an empty pick list
        find_order(store, provider, order_id)
    rows = queries.pick_list(store, providers=tuple(p.lower() for p in providers),
                             statuses=tuple(s.lower() for s in statuses), orders=wanted)
    picks = picking.group(rows, bricklink_colour_names())
    if (printable or fmt != "table") and given(click.get_current_context(), "limit") and limit:
        picks = picks[:limit]  # the table's default limit is the table's; one given limits every output
    if printable:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(picking.printable(picks, f"Pick list, {stamp}"), nl=False)
    elif fmt == "json":
        render.emit([p.as_dict() for p in picks], "json")
    elif fmt == "csv":
        render.emit([{**{k: v for k, v in p.as_dict().items() if k != "orders"}, **o,
                      "line_keys": " ".join(o["line_keys"])} for p in picks for o in p.as_dict()["orders"]], "csv",
                    fields=("bin", "part_number", "color_id", "color_name", "condition", "provider", "order_id",
                            "quantity", "total", "short", "line_keys"))
    else:
        _table(picks, limit)


def _table(picks: list[Any], limit: int) -> None:
    from marketsync.cli import render

    shown = picks[:limit] if limit else picks
    caption = None
    if picks:
        caption = (f"showing {len(shown)} of {len(picks)} rows; --limit 0 shows all" if len(shown) < len(picks)
                   else "every order of a bin: --printable, --json or --csv")
    rows = [{**p.as_dict(), "shortage": p.shortage()} for p in shown]
    if not rows:
        render.console().print("Nothing to pick: no open order holds stock")
        return

    def columns(shown_orders: int, wide: bool) -> list[tuple]:  # never a broken word; narrower ones after
        return [
            ("Bin", "left", lambda r: r["bin"], "bold", False),
            ("Part", "left", lambda r: r["part_number"] if wide else f"{r['part_number']} {r['condition'][0]}",
             None, False),
            ("Colour", "left", lambda r: r["color_name"] if wide else f"c{r['color_id']}", None, False),
            *([("Cond", "left", lambda r: r["condition"], None, False)] if wide else []),
            ("Total", "right", lambda r: r["total"], "bold", False),
            *([("Into orders", "left", lambda r: _first_orders(r["orders"], shown_orders))] if shown_orders else []),
            *([("Short", "left", lambda r: r["shortage"] if wide else (f"{r['short']} short" if r["short"] else ""),
                "bold red")] if any(row["short"] for row in rows) else []),  # only when a bin falls short
        ]

    render.console().print(render.fitting_table(rows, [columns(3, True), columns(1, True), columns(1, False),
                                                       columns(0, False)], caption=caption))


def _first_orders(orders: list[dict], shown: int = 3) -> str:
    """The first orders of a pick, and how many more (a table cell stays one line; the printable
    page and the exports carry them all)."""
    text = ", ".join(f"{o['provider']}:{o['order_id']} x{o['quantity']}" for o in orders[:shown])
    return text + (f" +{len(orders) - shown} more" if len(orders) > shown else "")


@click.command()
@logging_options
@click.argument("order", metavar="PROVIDER:ORDER_ID")
@click.argument("lines", nargs=-1, metavar="[LINE_KEY]...")
@click.option("--undo", is_flag=True, help="Put the lines back on the pick list.")
@click.option("--short", "missing", type=click.IntRange(1, 1_000_000), metavar="N",
              help="The bin had N pieces fewer than recorded: on hand goes down by N (recorded), and the "
                   "line takes the rest from other bins. Needs exactly one LINE_KEY.")
@wait_option
@db_options
def pick(order: str, lines: tuple[str, ...], undo: bool, missing: int | None, wait: float, ws: Workspace) -> None:
    """Mark an order's lines picked (all of them without LINE_KEY): they leave the pick list, and
    their pieces are never moved to another bin again.

    \b
    Examples:
        marketsync pick bricklink:23215046
        marketsync pick brickowl:9277759 433711 --undo
        marketsync pick bricklink:23215046 1:349372975 --short 2
    """
    from marketsync.app import pick as picking

    provider, order_id = order_ref_arg(order)
    if missing is not None and (undo or len(lines) != 1):
        raise click.UsageError("--short takes exactly one LINE_KEY, and not --undo")
    if missing is not None:
        done = picking.short_pick(ws, provider, order_id, lines[0], missing, wait=wait)
        for change in done.changes:
            click.echo(str(change))
        if chatty():
            click.echo(str(done), err=True)
        return
    count, nothing = picking.pick_lines(ws, provider, order_id, list(lines), undo=undo, wait=wait)
    if nothing:
        click.echo(nothing, err=True)
    elif chatty():
        click.echo(f"{provider} order {order_id}: {count} line(s) {'back on the pick list' if undo else 'picked'}",
                   err=True)
