"""``marketsync reserve``: reconcile reservations, check the ledger's invariants, release by hand."""

from __future__ import annotations

import sys

import click
from click.core import ParameterSource

from marketsync.app.context import Workspace

from marketsync.cli.common import (
    db_options,
    logging_options,
    order_ref_arg,
    problem,
    output_options,
    wait_option,
)
from marketsync.errors import MarketsyncError


@click.command()
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
def reserve(check: bool, release_order: str | None, yes: bool, unrelease_order: str | None, repair: bool,
            ledger_order: str | None, wait: float, fmt: str, ws: Workspace) -> None:
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
    if sum(bool(x) for x in (check, release_order, unrelease_order, repair, ledger_order)) > 1:
        raise click.UsageError("use one of --check, --release, --unrelease, --repair and --ledger at a time")
    if yes and not release_order:
        raise click.UsageError("--yes goes with --release")
    ctx = click.get_current_context()
    if (check or ledger_order) and ctx.get_parameter_source("wait") != ParameterSource.DEFAULT:
        raise click.UsageError("--wait goes with a mode that writes (--check and --ledger only read: they never wait)")
    if check:
        return _check(ws, fmt)
    if ledger_order:
        return _ledger(ws, ledger_order, fmt)
    _reconcile(ws, release_order, unrelease_order, repair=repair, yes=yes, wait=wait, fmt=fmt)


def _check(ws: Workspace, fmt: str) -> None:
    from marketsync.app import reserve as reservations
    from marketsync.cli import render

    problems = reservations.check(ws.read())
    if fmt == "json":
        import json

        click.echo(json.dumps({"ok": not problems, "problems": problems}, indent=2))
    elif fmt == "csv":
        render.emit([{"problem": violation} for violation in problems], "csv", fields=("problem",))
    else:
        for violation in problems:
            click.echo(violation)
    if problems:
        raise MarketsyncError(f"{len(problems)} invariant violation(s)")
    if sys.stdout.isatty():
        click.echo("all invariants hold", err=True)


def _ledger(ws: Workspace, ledger_order: str, fmt: str) -> None:
    from marketsync.cli import render
    from marketsync.store import queries

    from marketsync.app.reserve import find_order

    provider = order_id = None
    store = ws.read()
    if ledger_order != "*":
        provider, order_id = order_ref_arg(ledger_order)
        find_order(store, provider, order_id)  # an order not in the database is not an empty ledger
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


def _reconcile(ws: Workspace, release_order: str | None, unrelease_order: str | None, *, repair: bool, yes: bool,
               wait: float, fmt: str) -> None:
    from marketsync.app import reserve as reservations

    def confirm(provider: str, order_id: str) -> None:
        if yes:
            return
        if not sys.stdin.isatty():
            raise click.UsageError("--release needs --yes when not run interactively")
        click.confirm(f"Release all stock reserved by {provider} order {order_id}?", abort=True)

    done = reservations.reconcile(ws, repair_counters=repair, wait=wait, confirm=confirm,
                                  release_order=order_ref_arg(release_order) if release_order else None,
                                  unrelease_order=order_ref_arg(unrelease_order) if unrelease_order else None)
    if fmt == "table":
        for fix in done.fixes:
            click.echo(str(fix))
        for change in done.changes:
            click.echo(str(change))
    else:  # one row per counter set (--repair) and per reservation change, in that order
        from dataclasses import asdict

        from marketsync.cli import render

        render.emit([{"kind": "counter", **asdict(fix)} for fix in done.fixes]
                    + [{"kind": "reservation", **asdict(change)} for change in done.changes], fmt, fields=RECONCILED)
    if done.note:
        problem(done.note)


RECONCILED = ("kind", "inventory_id", "part_number", "color_id", "condition", "location", "before", "after",
              "provider", "order_id", "line_key", "quantity", "reason")
