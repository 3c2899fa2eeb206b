"""``marketsync stock``: every listing of your lots, and the seller's decisions on them."""

from __future__ import annotations

import sys
from typing import Any

import click

from marketsync.app.context import Workspace
from marketsync.cli.common import (
    restock_options,
    PROVIDER,
    chatty,
    chosen_providers,
    db_options,
    http_options,
    logging_options,
    mask_secrets,
    one_line,
    order_ref_arg,
    output_options,
    refuse_group_options,
    report_push,
    report_sync,
    wait_option,
)
from marketsync.errors import EXIT_FAILED
from marketsync.model import ChangeState


@click.group(invoke_without_command=True)
@logging_options
@click.option("--provider", "-p", type=PROVIDER, help="Only this marketplace.")
@click.option("--held", "held_only", is_flag=True, help="Only listings held for your decision.")
@click.option("--unlinked", "unlinked_only", is_flag=True,
              help="Only remote lots linked to no local lot (unlinked, ambiguous) or no longer for sale.")
@output_options
@db_options
@restock_options
@click.pass_context
def stock(ctx: click.Context, provider: str | None, held_only: bool, unlinked_only: bool, fmt: str,
          ws: Workspace) -> None:
    """Each listing of your lots on each marketplace: what it shows, what is available, the change
    the next push makes, and why a listing is held.

    \b
    Examples:
        marketsync stock
        marketsync stock --unlinked
        marketsync stock push --dry-run
        marketsync stock adopt bricklink:501
    """
    refuse_group_options(ctx)
    if ctx.invoked_subcommand is not None:
        return
    from marketsync.app.stock import listing_rows
    from marketsync.cli import render

    rows = listing_rows(ws, provider.lower() if provider else None, held_only, unlinked_only)
    render.emit(rows, fmt, _stock_columns(), title=None if rows else "No listings yet (run 'marketsync sync --push')")


def _stock_columns() -> list[tuple[Any, ...]]:
    return [
        ("Marketplace", "left", lambda r: r["provider"]),
        ("Remote lot", "right", lambda r: r["remote_lot_id"]),
        ("Lot", "right", lambda r: r["inventory_id"] if r["inventory_id"] is not None else ""),
        ("Bin", "left", lambda r: r["location"] or "", "bold"),
        ("Part", "left", lambda r: f"{r['part_number']} c{r['color_id']} {r['condition']}" if r["part_number"] else ""),
        ("Listed", "right", lambda r: _listed(r)),
        ("Available", "right", lambda r: r["available"] if r["available"] is not None else ""),
        ("Pending", "right", lambda r: f"{r['pending_change']:+d}" if r["pending_change"] else ""),
        ("Held / problem / why not", "left", lambda r: r["held_reason"] or r["link_problem"]
         or (f"not for sale: {r['gone_reason']}" if r["gone_at"] else "") or r["pending_reason"]
         or (f"kept on {r['provider']} only" if r.get("kept_only") else ""), "red"),
    ]


def _listed(row: dict) -> str:
    """The figure the listing shows now by its marketplace's orders (the last one read, if another)."""
    if row["held_reason"] and row["held_listed"] is not None:
        return str(row["held_listed"])  # the figure the hold's reason names
    if row["listed"] is None:
        return ""
    now = row.get("listed_now")
    return f"{now} (was {row['listed']})" if now is not None and now != row["listed"] else str(row["listed"])


@stock.command("push")
@logging_options
@click.option("--provider", "-p", "providers", multiple=True, type=PROVIDER,
              help="Push only this marketplace's listings (repeatable). Default: every one with credentials.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--relist/--no-relist", envvar="MARKETSYNC_RELIST", show_envvar=True, default=True,
              help="With the push: create again, exactly as it was, a BrickLink lot buyers sold out (BrickLink deletes "
                   "it) once its lot has pieces available; never one the seller deleted.")
@output_options
@wait_option
@db_options
@restock_options
@http_options
def stock_push(providers: tuple[str, ...], dry_run: bool, relist: bool, fmt: str, wait: float, ws: Workspace) -> None:
    """Bring every listing to what is available, without syncing orders first (the order lists
    are still read once after the listings, so an order placed meanwhile is never put back on sale).

    \b
    Examples:
        marketsync stock push --dry-run
        marketsync stock push --provider brickowl
    """
    from marketsync.app.sync import push_listings

    results, again = push_listings(ws, chosen_providers(providers), dry_run=dry_run, wait=wait, relist=relist)
    report_sync(again, exit_on_failure=False)
    report_push(results, dry_run, fmt)
    if any(not result.ok for result in results) or any(not result.ok for result in again):
        sys.exit(EXIT_FAILED)


@stock.command("mirror")
@logging_options
@click.option("--to", "to", type=PROVIDER, help="Only create lots on this marketplace.")
@click.option("--dry-run", is_flag=True, help="List what would be created and what cannot be; change nothing.")
@click.option("--gaps", "gaps_only", is_flag=True,
              help="Only the table of what the last run could not mirror, with the fix for each (no API call).")
@output_options
@wait_option
@db_options
@http_options
def stock_mirror(to: str | None, dry_run: bool, gaps_only: bool, fmt: str, wait: float, ws: Workspace) -> None:
    """Create each lot for sale on one marketplace and listed on no other there, exactly once, and
    link it: from then on it follows the ledger like any listing. Prices are copied in one
    currency, or converted with MARKETSYNC_PRICE_RATE_<FROM>_<TO> (times
    MARKETSYNC_PRICE_FACTOR_<MARKETPLACE>); what cannot be mirrored (no BrickLink number, no
    colour, no rate, a catalogue refusal) is one table with the fix for each. 'sync --push
    --mirror' (or MARKETSYNC_MIRROR=1) does it after every push.

    \b
    Examples:
        marketsync stock mirror --dry-run
        marketsync stock mirror --to brickowl
        marketsync stock mirror --gaps --json
    """
    from marketsync.app import mirror

    if gaps_only:
        if dry_run or to:
            raise click.UsageError("--gaps goes alone: it shows the last run's table")
        emit_gaps(mirror.stored_gaps(ws), fmt)
        return
    report = mirror.mirror(ws, chosen_providers((), ws), to=to.lower() if to else None, dry_run=dry_run, wait=wait)
    report_mirror(report, fmt)
    if not report.ok:
        sys.exit(EXIT_FAILED)


def emit_gaps(rows: list[Any], fmt: str, title: str | None = None) -> None:
    from marketsync.cli import render

    render.emit([{"target": r.target, "why": r.why, "subject": r.subject, "lots": r.lots, "examples": r.examples,
                  "fix": r.fix} for r in rows], fmt, [
        ("To", "left", lambda r: r["target"]),
        ("Why", "left", lambda r: r["why"], "red"),
        ("What", "left", lambda r: r["subject"]),
        ("Lots", "right", lambda r: r["lots"]),
        ("For example", "left", lambda r: r["examples"]),
        ("Fix", "left", lambda r: r["fix"]),
    ], title=title or (None if rows else "Nothing that cannot be mirrored"))


def report_mirror(report: Any, fmt: str = "table") -> None:
    """A mirror run: in a dry run the lots it would create and the gaps; else problems (one line
    each), a line when the gaps changed, and a summary when chatty."""
    from marketsync.cli import render
    from marketsync.cli.common import problem

    if report.dry_run:
        render.emit([{"to": m.target, "lot": m.lot_id, "from": m.source, "item": m.new.item_no,
                      "type": m.new.item_type, "colour": m.new.color_id, "condition": m.new.condition
                      + (f"/{m.new.completeness}" if m.new.completeness else ""), "quantity": m.new.quantity,
                      "price": str(m.new.price), "note": m.new.note} for m in report.made], fmt, [
            ("To", "left", lambda r: r["to"]), ("Lot", "right", lambda r: r["lot"]),
            ("From", "left", lambda r: r["from"]), ("Item", "left", lambda r: f"{r['type']} {r['item']}"),
            ("Colour", "right", lambda r: "" if r["colour"] is None else r["colour"]),
            ("Condition", "left", lambda r: r["condition"]), ("Qty", "right", lambda r: r["quantity"]),
            ("Price", "right", lambda r: r["price"]), ("Note (bin)", "left", lambda r: r["note"]),
        ], title=None if report.made else "Nothing to create")
        if fmt == "table":
            emit_gaps(report.gaps, fmt, title=None if report.gaps else "Nothing that cannot be mirrored")
    for line in report.problems:
        problem(line)
    if report.gaps_changed is not None:
        new, gone = report.gaps_changed
        problem(f"mirror: {len(report.gaps)} kind(s) of lot cannot be mirrored ({new} new, {gone} fixed); see "
                "'marketsync stock mirror --gaps'")
    if not report.dry_run and chatty():
        created = sum(m.state == ChangeState.APPLIED for m in report.made)
        waiting = ", ".join(f"{n} {why}" for why, n in report.waiting.items())
        click.echo(f"mirror: {created} lot(s) created" + (f"; waiting: {waiting}" if waiting else "")
                   + (f"; {len(report.gaps)} gap(s): see 'marketsync stock mirror --gaps'" if report.gaps else ""),
                   err=True)


@stock.command("only")
@logging_options
@click.argument("listing", metavar="PROVIDER:REMOTE_LOT")
@click.option("--off", is_flag=True, help="Undo it: the lot may be mirrored again.")
@wait_option
@db_options
def stock_only(listing: str, off: bool, wait: float, ws: Workspace) -> None:
    """Keep a listing's lot on its marketplace only: 'stock mirror' never creates it on another.

    \b
    Example:
        marketsync stock only bricklink:349372990
    """
    from marketsync.app.mirror import keep_only

    provider, remote_lot_id = order_ref_arg(listing, "REMOTE_LOT")
    message = keep_only(ws, provider, remote_lot_id, not off, wait=wait)
    if chatty():
        click.echo(message, err=True)


@stock.command("adopt")
@logging_options
@click.argument("listing", metavar="PROVIDER:REMOTE_LOT")
@wait_option
@db_options
@restock_options
@http_options
def stock_adopt(listing: str, wait: float, ws: Workspace) -> None:
    """Take a held listing's figure (the seller's own edit on the marketplace) into on hand,
    recorded as an adjustment; the next push carries it to the other marketplaces.

    \b
    Example:
        marketsync stock adopt bricklink:501
    """
    _decide(listing, "adopt", wait, ws)


@stock.command("override")
@logging_options
@click.argument("listing", metavar="PROVIDER:REMOTE_LOT")
@wait_option
@db_options
@http_options
def stock_override(listing: str, wait: float, ws: Workspace) -> None:
    """Release a held listing and let the next push set it to what marketsync counts available.

    \b
    Example:
        marketsync stock override brickowl:2726913
    """
    _decide(listing, "override", wait, ws)


def _decide(listing: str, decision: str, wait: float, ws: Workspace) -> None:
    from marketsync.app.stock import decide_listing

    provider, remote_lot_id = order_ref_arg(listing, "REMOTE_LOT")
    message, changed = decide_listing(ws, provider, remote_lot_id, decision, wait=wait)
    if chatty() or not changed:  # nothing done is always said
        click.echo(message, err=True)


@stock.command("link")
@logging_options
@click.argument("listing", metavar="PROVIDER:REMOTE_LOT")
@click.argument("lot", metavar="LOT_ID", type=click.IntRange(min=1))
@wait_option
@db_options
@http_options
def stock_link(listing: str, lot: int, wait: float, ws: Workspace) -> None:
    """Link a for-sale listing to a local lot by hand (LOT_ID from 'marketsync inventory list').
    The lot's listings on that marketplace then show what is available, together.

    \b
    Example:
        marketsync stock link bricklink:349372990 12
    """
    from marketsync.app.stock import link_listing

    provider, remote_lot_id = order_ref_arg(listing, "REMOTE_LOT")
    message = link_listing(ws, provider, remote_lot_id, lot, wait=wait)
    if chatty():
        click.echo(message, err=True)


@stock.command("unlink")
@logging_options
@click.argument("listing", metavar="PROVIDER:REMOTE_LOT")
@wait_option
@db_options
def stock_unlink(listing: str, wait: float, ws: Workspace) -> None:
    """Unlink a listing from its local lot: marketsync stops changing it (and never links it again
    by itself; 'marketsync stock link' does).

    \b
    Example:
        marketsync stock unlink brickowl:2726913
    """
    from marketsync.app.stock import unlink_listing

    provider, remote_lot_id = order_ref_arg(listing, "REMOTE_LOT")
    message = unlink_listing(ws, provider, remote_lot_id, wait=wait)
    if chatty():
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
def stock_probe(listing: str, save_path: str | None, yes: bool, wait: float, ws: Workspace) -> None:
    """Check the live store safely on one linked lot: change it by +1, read it back, then by -1 and
    read it back, each change recorded before it is sent. Shows each raw answer (secrets masked)
    and whether marketsync read it right. A lost answer, a refusal or a read-back that disagrees
    stops it (nothing is sent blindly; 'marketsync sync --push' settles what is left open). Lots
    that are held, have open changes, are at 0 or are not for sale are refused.

    \b
    Example:
        marketsync stock probe bricklink:501 --save probe.json
    """
    from marketsync.app import probe
    from marketsync.config import require_credentials, secret_values

    provider, remote_lot_id = order_ref_arg(listing, "REMOTE_LOT")
    if not yes and not probe.on_terminal():
        raise click.UsageError("not on a terminal: 'stock probe' changes a live listing, add --yes to go ahead "
                               "without being asked")
    require_credentials(provider)
    if save_path:
        probe.check_save_path(save_path)
    row = probe.check_listing(ws.read(), provider, remote_lot_id)
    if not yes:
        click.confirm(probe.question(row), abort=True)
    result = probe.probe(ws, provider, remote_lot_id, wait=wait)
    for line in probe.report(result):
        click.echo(one_line(mask_secrets(line)))
    if save_path:
        probe.save(result, save_path, tuple(secret_values()))
        click.echo(f"capture written to {save_path} (owner-only, secrets masked)")
    if not result.ok:
        sys.exit(EXIT_FAILED)
