"""``marketsync map``: pin a BrickOwl item to a BrickLink part number."""

from __future__ import annotations


import click

from marketsync.app.context import Workspace

from marketsync.cli.common import (
    db_options,
    logging_options,
    output_options,
)


@click.command("map")
@logging_options
@click.argument("boid", required=False)
@click.argument("part_number", required=False)
@click.option("--remove", is_flag=True, help="Remove the pinned mapping of BOID.")
@click.option("--force", is_flag=True, help="Pin a part no lot of your inventory holds (refused without it).")
@output_options
@db_options
def map_command(boid: str | None, part_number: str | None, remove: bool, force: bool, fmt: str,
                ws: Workspace) -> None:
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
    from marketsync.cli import render
    from marketsync.app import catalog

    if boid is None and (remove or part_number or force):
        raise click.UsageError("--remove needs the BOID to remove")
    if boid is not None and fmt != "table":
        raise click.UsageError("--json and --csv go with the list of mappings ('marketsync map' alone)")
    if remove and part_number is not None:
        raise click.UsageError("--remove takes the BOID alone, no PART_NUMBER")
    if boid is None:
        store = ws.read()
        rows = catalog.mappings(store)
        return render.emit(rows, fmt, [
            ("BOID", "left", lambda r: r["boid"], "bold"),
            ("BrickLink part", "left", lambda r: r["part_number"]),
            ("Source", "left", lambda r: r["source"]),
            ("Since (UTC)", "left", lambda r: render.when(r["created_at"])),
        ], fields=("boid", "part_number", "source", "created_at"))
    if not boid.strip():
        raise click.BadParameter("the BOID is blank", param_hint="BOID")
    import re

    if not re.fullmatch(r"\d+(-\d+)?", boid.strip()):
        raise click.BadParameter(f"{boid.strip()!r} is not a BrickOwl item id (digits, as 487300 or 487300-38)",
                                 param_hint="BOID")
    if not remove and not (part_number or "").strip():
        raise click.UsageError("give the BrickLink PART_NUMBER to pin BOID to" if part_number is None
                               else "the BrickLink PART_NUMBER is blank")
    if force and remove:
        raise click.UsageError("--force goes with pinning a part, not --remove")
    done = catalog.unpin_mapping(ws, boid) if remove else catalog.pin_mapping(ws, boid, part_number or "", force=force)
    click.echo(done, err=True)  # what it did, always: a mapping changes how every line of the item matches
