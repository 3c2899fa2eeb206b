"""``marketsync inventory``: your own stock -- import it, list it, pull it from a marketplace."""

from __future__ import annotations

import sys

import click

from marketsync.app.context import Workspace
from marketsync.cli.common import (
    restock_options,
    PROVIDER,
    chatty,
    db_options,
    http_options,
    logging_options,
    output_options,
    problem,
    report_sync,
    wait_option,
)
from marketsync.errors import EXIT_FAILED
from marketsync.registry import NAMES


@click.group()
@logging_options
def inventory() -> None:
    """Your own stock: import it, list it, pull it from BrickLink.

    \b
    Example:
        marketsync inventory import examples/inventory.csv && marketsync inventory list
    """


@inventory.command("import")
@logging_options
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@wait_option
@db_options
def inventory_import(file: str, wait: float, ws: Workspace) -> None:
    """Import lots from a CSV or a BrickLink inventory XML file (detected by content); FILE '-'
    reads standard input.

    CSV header: part_number,color_id,condition,location,quantity (optional: name, item_type,
    price, bricklink_lot_id). Lots are updated by part + colour + condition + location.
    All or nothing: one bad row imports nothing and names the line.

    \b
    Examples:
        marketsync inventory import examples/inventory.csv
        marketsync inventory import my-bricklink-store.xml
    """
    from marketsync.app.inventory import import_file

    done = import_file(ws, file, wait=wait)
    inserted, changed, unchanged = done.inserted, done.changed, done.unchanged
    for line in done.warnings:  # always: the import left something the seller should look at
        problem(line)
    if chatty():
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
def inventory_list(part: str | None, color_id: int | None, condition: str | None, location: str | None,
                   reserved_only: bool, oversold_only: bool, fmt: str, ws: Workspace) -> None:
    """List lots with on-hand, reserved and available stock.

    \b
    Examples:
        marketsync inventory list --location A01
        marketsync inventory list --oversold --csv
    """
    from marketsync.cli import render
    from marketsync.store import queries

    read = queries.inventory if fmt == "table" else queries.iter_inventory  # JSON, CSV: streamed row by row
    rows = read(ws.read(), part=part, color_id=color_id,
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
@click.option("--provider", "-p", type=PROVIDER, default=NAMES[0], show_default=True,
              help="The marketplace whose listing of your store to pull.")
@click.option("--zero-missing", is_flag=True, help="Set lots the marketplace no longer lists to 0 on hand.")
@click.option("--new-account", is_flag=True,
              help="Start the account (--account) in a file that holds another account's business.")
@wait_option
@db_options
@restock_options
@http_options
def inventory_pull(provider: str, zero_missing: bool, new_account: bool, wait: float, ws: Workspace) -> None:
    """Take your store's lots from a marketplace's listing into the local inventory.

    Syncs every configured marketplace's orders first: a listing leaves out the pieces of open
    orders, which are still on the shelf, so on hand = listed + those pieces. Pulling again changes
    on hand only where the listing moved in a way no order and no change of marketsync's explains.
    Only lots for sale are pulled (not stockrooms). The bin is BrickLink's private remarks or
    BrickOwl's personal note.

    \b
    Examples:
        marketsync inventory pull --provider bricklink
        marketsync inventory pull --provider brickowl --zero-missing
    """
    from marketsync.app.inventory import pull

    report = pull(ws, provider.lower(), zero_missing=zero_missing, wait=wait, new_account=new_account)
    report_sync(report.results, exit_on_failure=False)
    pulled = report.pulled
    for line in pulled.problems if pulled else []:
        problem(line)
    if chatty() and pulled:
        click.echo(f"{provider.lower()}: {pulled.inserted} lots added, {pulled.updated} changed, "
                   f"{pulled.adjusted} adjusted", err=True)
    if not report.ok:
        sys.exit(EXIT_FAILED)
