"""BrickOwl's catalogue data as translation needs it: the colour table (packaged, refreshed from
``catalog/color_list`` at most weekly), the seller's pinned BOID mappings and the cached lookups.

The SQL is in :mod:`marketsync.store.catalog`; this module decides what to fetch and which
source wins.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from importlib import resources
from typing import TYPE_CHECKING

from marketsync.store import Store

if TYPE_CHECKING:
    from marketsync.app.context import Workspace

from marketsync import parse
from marketsync.errors import NotFoundError, NotFoundLocally, PermissionDeniedError, RequestRejectedError
from marketsync.model import Catalog, parse_iso, utcnow
from marketsync.store import catalog as stored
from marketsync.store import state
from marketsync.app.translate import NOT_APPLICABLE, Known, Translator, base_boid
from marketsync.rules.matching import LotIndex

COLOR_REFRESH_INTERVAL = dt.timedelta(days=7)


@functools.lru_cache(maxsize=1)
def packaged_colours() -> tuple[tuple[int, str, int | None], ...]:
    """The snapshot shipped with marketsync: (BrickOwl id, BrickOwl name, BrickLink id or None)."""
    text = resources.files("marketsync").joinpath("data/brickowl-colors.csv").read_text(encoding="utf-8")
    rows = []
    for record in csv.DictReader(io.StringIO(text)):
        bo_id = parse.integer(record.get("brickowl_color_id"))
        if bo_id is None:
            continue
        bl_id = parse.integer(record.get("bricklink_color_id"))
        rows.append((bo_id, (record.get("brickowl_color_name") or "").strip(), _bricklink_colour(bl_id)))
    return tuple(rows)


@functools.lru_cache(maxsize=1)
def bricklink_colour_names() -> dict[int, str]:
    """BrickLink colour id -> BrickLink's name (from the packaged table)."""
    text = resources.files("marketsync").joinpath("data/brickowl-colors.csv").read_text(encoding="utf-8")
    names: dict[int, str] = {}
    for record in csv.DictReader(io.StringIO(text)):
        bl_id = parse.integer(record.get("bricklink_color_id"))
        name = (record.get("bricklink_color_name") or "").strip()
        if bl_id is not None and bl_id >= 0 and name:
            names.setdefault(bl_id, name)
    return names


def _bricklink_colour(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None  # negative = placeholder for "none"


def colour_table(store: Store) -> dict[int, int | None]:
    """BrickOwl colour id -> BrickLink colour id (None: BrickLink has no equivalent).

    The packaged table, overlaid by the table last fetched from BrickOwl, which wins wherever it
    has a colour: it is BrickOwl's own current statement, and the snapshot can only grow stale.
    Colour 0 (Not Applicable) is always BrickLink 0.
    """
    table = {bo_id: bl_id for bo_id, _name, bl_id in packaged_colours()}
    for bo_id, _name, bl_id in stored.colours(store):
        table[bo_id] = _bricklink_colour(bl_id)
    if table.get(NOT_APPLICABLE) is None:
        table[NOT_APPLICABLE] = NOT_APPLICABLE
    return table


def known(store: Store) -> Known:
    """What a translator starts from."""
    mappings = [(m["boid"], m["part_number"], m["source"]) for m in stored.boid_mappings(store)]
    return Known(colour_table(store), stored.lookup_answers(store), mappings)


def refresh_colours(store: Store, catalog: Catalog) -> list[str]:
    """Fetch ``catalog/color_list`` and store it; returns one line per colour on which it and the
    packaged table disagree (said once: by the refresh that first finds them).

    BrickOwl's own name is kept for every colour (the packaged name where the answer has none).
    Provider errors (no catalog permission, a bad key...) propagate; an empty answer leaves the
    stored table alone.
    """
    fetched = catalog.color_list()
    packaged = {bo_id: (name, bl_id) for bo_id, name, bl_id in packaged_colours()}
    before = {bo_id: bl_id for bo_id, _name, bl_id in stored.colours(store)}
    rows, disagreements = [], []
    for bo_id, (name, bl_id) in sorted(fetched.items()):
        bl_id = _bricklink_colour(bl_id)
        old_name, old_bl = packaged.get(bo_id, (None, None))
        rows.append((bo_id, name or old_name or None, bl_id))
        already_said = bo_id in before and before[bo_id] == bl_id
        if bo_id in packaged and bl_id != old_bl and not already_said:
            said = f"BrickLink {bl_id}" if bl_id is not None else "no BrickLink colour"
            was = f"BrickLink {old_bl}" if old_bl is not None else "none"
            disagreements.append(f"brickowl: colour {bo_id} ({name or old_name}) is {said} in BrickOwl's table "
                                 f"but {was} in the packaged one; BrickOwl's is used")
    if not rows:
        return ["brickowl: catalog/color_list answered with no colours; keeping the current table"]
    stored.replace_colours(store, rows)
    return disagreements


def refresh_colours_if_due(store: Store, catalog: Catalog) -> list[str]:
    """Fetch BrickOwl's colour table when the last try is a week old; returns problem lines (the
    key may not read the catalog: the packaged table then keeps serving)."""
    checked = parse_iso(state.sync_state(store, catalog.name).get("catalog_checked_at"))
    if checked is not None and checked > utcnow() - COLOR_REFRESH_INTERVAL:
        return []
    try:
        problems = refresh_colours(store, catalog)
    except (PermissionDeniedError, RequestRejectedError, NotFoundError) as exc:
        problems = [f"brickowl: colour table not refreshed ({exc.detail}); using the packaged one"]
    state.record_catalog_check(store, catalog.name)
    return problems


# --- the seller's own mappings ----------------------------------------------------------------
def translator(store: Store, index: LotIndex, catalog: Catalog | None = None, *,
               beyond_inventory: bool = False) -> Translator:
    """The one way a translator is made: from the stored catalogue data, over the account's lots,
    asking ``catalog`` (a marketplace's own catalogue) when what is stored does not answer."""
    return Translator(known(store), index, catalog, beyond_inventory=beyond_inventory)


def pin(store: Store, boid: str, part_number: str) -> None:
    """The seller's own mapping of a BOID (any colour of it) to a BrickLink part number."""
    base, part = base_boid(boid), parse.text(part_number)
    if base is None or part is None:
        raise ValueError("pin needs a BOID and a BrickLink part number")
    with store.atomic():
        stored.pin(store, base, part)


def unpin(store: Store, boid: str) -> bool:
    """Remove a manual mapping; False when the BOID had none (learned mappings are kept)."""
    base = base_boid(boid)
    if base is None:
        return False
    with store.atomic():
        return stored.unpin(store, base)


def mappings(store: Store) -> list[dict]:
    return stored.boid_mappings(store)


def pin_mapping(ws: Workspace, boid: str, part_number: str, *, force: bool = False) -> str:
    """``map BOID PART``: the seller's own mapping, in its own transaction; what was done. A part no
    lot holds is refused without ``force`` (a typo would leave every line of the item unmatched)."""
    from marketsync.errors import NotSafe
    from marketsync.store.inventory import lot_index

    part = (parse.text(part_number) or "").strip()
    with ws.write(create=True) as store, store.atomic():
        pin(store, boid, part_number)  # (a read-only database says so first)
        index = lot_index(store)
        unchecked = not index.by_id  # no lots yet (pinned before the first import or pull): nothing to check
        if not force and not unchecked and not index.has(part):  # the pin rolls back
            raise NotSafe(f"no lot of your inventory holds BrickLink part {part}: check the number ('marketsync "
                          f"inventory list --part {part}'), or add --force to pin BOID {boid} to it anyway")
    return (f"BOID {base_boid(boid)} is BrickLink part {part}" + (" (no lots yet to check it against)" if unchecked
            else "") + "; run 'marketsync reserve' to match the lines waiting for it")


def unpin_mapping(ws: Workspace, boid: str) -> str:
    with ws.write(create=True) as store, store.atomic():
        if not unpin(store, boid):
            raise NotFoundLocally(f"no mapping for BOID {boid}")
    return f"the mapping of BOID {base_boid(boid)} is removed (what marketsync learned by itself is kept)"
