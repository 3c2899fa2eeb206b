"""The seeded demo store (``Sandbox(demo=True)``) and bulk stores for benchmarks.

Everything is deterministic from the seed except absolute times, which are relative to "now"
so that a first sync with a look-back window sees the orders.

The demo world is one seller inventory (written as the inventory CSV, and also listed by
BrickLink's ``GET /inventories``) plus orders on both marketplaces that exercise every
matching route: exact lot matches, a fallback when the remark names no known bin, unmatched
parts, BrickOwl lot links (``bl_lot_id``), ``catalog/id_lookup`` BOIDs, ``ids``-only parts and
a few untranslatable lines.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import random
import re
import time
import zlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketsync.sandbox.brickowl import STATUSES as BO_STATUSES
from marketsync.sandbox.brickowl import normalize_line
from marketsync.sandbox.colors import colors
from marketsync.sandbox.wire import utcnow

if TYPE_CHECKING:
    from marketsync.sandbox.server import Sandbox

CSV_HEADER = ("part_number", "color_id", "condition", "location", "quantity", "name", "bricklink_lot_id", "price")

# part number: (name, category_id, unit weight in grams, typical new price)
PARTS: dict[str, tuple[str, int, str, str]] = {
    "3001": ("Brick 2 x 4", 5, "2.32", "0.150"),
    "3003": ("Brick 2 x 2", 5, "1.17", "0.090"),
    "3004": ("Brick 1 x 2", 5, "0.80", "0.060"),
    "3005": ("Brick 1 x 1", 5, "0.43", "0.045"),
    "3622": ("Brick 1 x 3", 5, "1.10", "0.080"),
    "3062b": ("Brick, Round 1 x 1 Open Stud", 20, "0.34", "0.040"),
    "3020": ("Plate 2 x 4", 26, "1.09", "0.090"),
    "3023": ("Plate 1 x 2", 26, "0.38", "0.030"),
    "3024": ("Plate 1 x 1", 26, "0.20", "0.025"),
    "3710": ("Plate 1 x 4", 26, "0.70", "0.060"),
    "3666": ("Plate 1 x 6", 26, "1.02", "0.080"),
    "4073": ("Plate, Round 1 x 1 Straight Side", 21, "0.15", "0.030"),
    "6141": ("Plate, Round 1 x 1 (Alternate Mould)", 21, "0.15", "0.030"),
    "3069b": ("Tile 1 x 2 with Groove", 37, "0.39", "0.104"),
    "3068b": ("Tile 2 x 2 with Groove", 37, "0.91", "0.120"),
    "2412b": ("Tile, Modified 1 x 2 Grille with Bottom Groove / Lip", 15, "0.34", "0.060"),
    "98138": ("Tile, Round 1 x 1", 37, "0.17", "0.050"),
    "3040b": ("Slope 45 2 x 1", 31, "0.72", "0.070"),
    "54200": ("Slope 30 1 x 1 x 2/3 (Cheese Slope)", 31, "0.18", "0.040"),
    "15068": ("Slope, Curved 2 x 2 x 2/3", 31, "0.87", "0.110"),
    "2780": ("Technic, Pin with Friction Ridges Lengthwise and Center Slots", 139, "0.18", "0.020"),
    "32062": ("Technic, Axle 2 Notched", 46, "0.16", "0.030"),
    "6124": ("Minifigure, Utensil Magic Wand (Wizard's)", 27, "0.10", "0.250"),
}
SOLID = (11, 1, 5, 7, 3, 86, 85, 2, 88, 6)  # BrickLink: Black, White, Red, Blue, Yellow, LBG, DBG, Tan, RB, Green
TRANS = (12, 17, 15, 19)  # Trans-Clear, Trans-Red, Trans-Light Blue, Trans-Yellow
ROUND_PARTS = ("4073", "6141", "98138", "54200")
IDS_ONLY_PARTS = ("2412b", "3040b", "3062b")  # no catalog/id_lookup answer: match through `ids`
BOID_OVERRIDES = {"3069b": 487300}  # the documented example
DESCRIPTIONS = {"3040b": "Don't mix with old grey (pre-2004)", "6124": "Wizard's wand, slight wear"}

BL_DEMO_STATUSES = (
    "PENDING", "UPDATED", "PAID-PENDING", "PAID", "PROCESSING", "READY", "PACKED", "SHIPPED", "RECEIVED",
    "COMPLETED", "OCR", "NPB", "NPX", "NRS", "NSS", "CANCELLED", "PURGED", "HOLDING",
    "PAID", "PAID", "PAID", "PENDING", "PROCESSING", "PACKED", "SHIPPED", "SHIPPED",
    "COMPLETED", "COMPLETED", "COMPLETED", "READY",
)  # fmt: skip
# "HOLDING" is made up: it exercises the unknown-status path
BL_RECENT = {"PENDING", "UPDATED", "PAID-PENDING", "PAID", "PROCESSING", "READY", "PACKED", "HOLDING"}
BL_OPEN = ("PENDING", "PAID", "PROCESSING", "READY", "PACKED")
BL_CLOSED = ("SHIPPED", "RECEIVED", "COMPLETED", "CANCELLED")
# demo orders in these states hold no listed pieces: shipped ones already left the on-hand
# quantity the lots are listed at, cancelled ones were given back (every other status is open)
BL_NOT_HOLDING = {"SHIPPED", "RECEIVED", "COMPLETED", "CANCELLED", "PURGED"}
BO_NOT_HOLDING = {5, 6, 8}
BO_DEMO_STATUSES = tuple(range(9)) * 3 + (2, 3, 5)
BO_RECENT = {0, 1, 2, 3, 7}
BO_OPEN = (0, 1, 2, 3, 4, 7)
BO_CLOSED = (5, 6, 8)
BUYERS = (
    "jaggerous", "brickmaster77", "Anna K", "plate_collector", "mocsmith", "tilelover", "Joe's Bricks",
    "greeblegirl", "studs_up", "Ben O'Neil", None,
)  # fmt: skip
USED_CONS = ("usedg", "usedn", "useda", "usedc")


@dataclass(frozen=True)
class DemoLot:
    """One inventory row plus what the sandbox needs to serve it."""

    part_number: str
    color_id: int
    condition: str  # 'new' | 'used'
    location: str
    quantity: int
    name: str
    bricklink_lot_id: str | None  # recorded in the CSV (the seller linked this lot)
    price: str
    inventory_id: int  # the BrickLink lot id, recorded or not
    index: int

    @property
    def category_id(self) -> int:
        return PARTS[self.part_number][1] if self.part_number in PARTS else 0

    @property
    def weight(self) -> str:
        return PARTS[self.part_number][2] if self.part_number in PARTS else "1.00"

    @property
    def new_or_used(self) -> str:
        return "N" if self.condition == "new" else "U"

    def row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CSV_HEADER}


# ---------------------------------------------------------------------- inventory
@functools.lru_cache(maxsize=8)
def demo_lots(seed: int = 1) -> tuple[DemoLot, ...]:
    rng = random.Random(f"demo-inventory:{seed}")
    bins = [f"{letter}{n:02d}" for letter in "ABCDEFGH" for n in range(1, 13)] + [f"SB{n:02d}" for n in range(1, 9)]
    rng.shuffle(bins)
    specs: list[tuple[str, int, str]] = []
    for part in PARTS:
        palette = TRANS + SOLID[:3] if part in ROUND_PARTS else SOLID
        for color in rng.sample(palette, rng.choice((2, 3, 3, 3, 4))):
            specs.append((part, color, "used" if rng.random() < 0.15 else "new"))
    specs += rng.sample(specs, 5)  # some parts stored in two locations
    linked = set(rng.sample(range(len(specs)), 8))
    lots = []
    for index, (part, color, cond) in enumerate(specs):
        base_price = Decimal(PARTS[part][3]) * (Decimal("0.6") if cond == "used" else 1)
        price = (base_price * Decimal(rng.randint(80, 130)) / 100).quantize(Decimal("0.001"), ROUND_HALF_UP)
        bl_lot = str(rng.randint(55_000_000, 59_999_999)) if index in linked else None
        lots.append(
            DemoLot(
                part_number=part, color_id=color, condition=cond, location=bins[index],
                quantity=rng.randint(5, 60) if cond == "used" else rng.randint(20, 400),
                name=PARTS[part][0], bricklink_lot_id=bl_lot, price=str(price),
                inventory_id=int(bl_lot) if bl_lot else 349_400_000 + seed % 1000 * 1000 + index, index=index,
            )  # fmt: skip
        )
    return tuple(lots)


def demo_inventory_rows(seed: int = 1) -> list[dict[str, Any]]:
    """The demo seller's inventory, one dict per lot with the CSV header's keys.

    ``color_id`` and ``quantity`` are ints, ``price`` a decimal string, ``bricklink_lot_id``
    a string or None.
    """
    return [lot.row() for lot in demo_lots(seed)]


def write_demo_inventory_csv(path: str | Path, seed: int = 1) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_HEADER)
        writer.writeheader()
        for row in demo_inventory_rows(seed):
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


# ---------------------------------------------------------------------- BrickOwl identity
def boid_base(part: str) -> int:
    """A stable BrickOwl item number for a BrickLink part number."""
    return BOID_OVERRIDES.get(part, 100_000 + zlib.crc32(part.encode()) % 800_000)


def design_id(part: str) -> str:
    m = re.match(r"\d+", part)
    return m.group(0) if m else part


def bo_ids(part: str, boid: str, bo_color: int) -> list[dict[str, str]]:
    """The ``ids`` of a BrickOwl line. ``ids``-only parts carry ldraw/peeron ids equal to the
    BrickLink number (with the usual duplicate); the others only a design id and element id."""
    ids = [{"id": design_id(part), "type": "design_id"}, {"id": f"{design_id(part)}{bo_color % 100:02d}", "type": "item_no"}]
    if part in IDS_ONLY_PARTS:
        ids += [{"id": part, "type": "ldraw"}, {"id": part, "type": "peeron_id"}, {"id": part, "type": "ldraw"}]
    return ids + [{"id": boid, "type": "boid"}]


def bo_lot_id(lot: DemoLot) -> str:
    """The BrickOwl lot listing the same pieces as ``lot`` (order lines name it as ``lot_id``)."""
    return str(2_700_000 + lot.index)


def _install_inventory(sb: "Sandbox", lots: tuple[DemoLot, ...]) -> None:
    """List every inventory lot on both marketplaces at its on-hand quantity (orders placed
    afterwards take their pieces). The BrickOwl lots of the lots the seller linked carry
    ``external_lot_ids.other`` = the BrickLink lot id. The BrickLink lots are retained (a seller
    listing on two marketplaces keeps sold-out lots so a restock can bring them back), so
    ``GET /inventories`` lists every inventory lot even where open orders took all its pieces
    (the demo oversells one lot on purpose)."""
    bl, bo = sb.bricklink, sb.brickowl
    for lot in lots:
        if lot.inventory_id not in bl.lots:
            bl.add_lot(
                lot.part_number, lot.color_id, lot.quantity, new_or_used=lot.new_or_used, remarks=lot.location,
                unit_price=lot.price, inventory_id=lot.inventory_id, name=lot.name, category_id=lot.category_id,
                description=DESCRIPTIONS.get(lot.part_number, ""), is_retain=True,
            )  # fmt: skip
        if bo_lot_id(lot) not in bo.lots:
            bo_color = colors().bl_to_bo(lot.color_id) or 0
            boid = f"{boid_base(lot.part_number)}-{bo_color}"
            bo.add_lot(
                boid, lot.quantity, lot_id=bo_lot_id(lot), type="Part", price=lot.price,
                full_con="new" if lot.condition == "new" else USED_CONS[lot.index % len(USED_CONS)],
                personal_note=lot.location, external_id=lot.bricklink_lot_id,
                ids=bo_ids(lot.part_number, boid, bo_color),
            )  # fmt: skip
    by_part: dict[str, set[int]] = {}
    for lot in lots:
        by_part.setdefault(lot.part_number, set()).add(lot.color_id)
    for part, bl_colors in by_part.items():
        if part in IDS_ONLY_PARTS:
            continue
        base = boid_base(part)
        bo_colors = sorted({c for c in (colors().bl_to_bo(x) for x in bl_colors) if c is not None}) + [162]
        bo.add_id_lookup(part, [f"{base}-{c}" for c in bo_colors] + [str(base)])


# ---------------------------------------------------------------------- line builders
def bl_line(lot: DemoLot, quantity: int, **overrides: Any) -> dict:
    """A BrickLink order line (normalised form, as BrickLinkStore stores it) for ``lot``."""
    line = {
        "inventory_id": lot.inventory_id, "no": lot.part_number, "name": lot.name, "type": "PART",
        "category_id": lot.category_id, "color_id": lot.color_id, "quantity": quantity,
        "new_or_used": lot.new_or_used, "completeness": None, "unit_price": Decimal(lot.price),
        "description": DESCRIPTIONS.get(lot.part_number, ""), "remarks": lot.location,
        "weight": Decimal(lot.weight), "currency_code": "USD",
    }  # fmt: skip
    line.update(overrides)
    return line


def bo_line(lot: DemoLot, quantity: int, rng: random.Random, link: bool = False, **overrides: Any) -> dict:
    """A BrickOwl order line (test-input form, as BrickOwlStore.add_order takes it) for ``lot``."""
    bo_color = colors().bl_to_bo(lot.color_id) or 0
    boid = f"{boid_base(lot.part_number)}-{bo_color}"
    full_con = overrides.pop("full_con", None) or ("new" if lot.condition == "new" else rng.choice(USED_CONS))
    line = {
        "boid": boid, "color_id": bo_color, "full_con": full_con,
        "ordered_quantity": quantity, "personal_note": lot.location, "base_price": lot.price,
        "bl_lot_id": lot.bricklink_lot_id if link else None,
        "ids": bo_ids(lot.part_number, boid, bo_color),
        "name": f"LEGO {colors().bo_name(bo_color)} {lot.name} ({design_id(lot.part_number)})",
        "type": "Part", "lot_id": bo_lot_id(lot), "remaining_quantity": lot.quantity,
        "weight": f"{Decimal(lot.weight):.3f}",
    }  # fmt: skip
    line.update(overrides)
    return line


# ---------------------------------------------------------------------- the demo store
def load_demo(sb: "Sandbox", seed: int = 1) -> None:
    lots = demo_lots(seed)
    _install_inventory(sb, lots)
    _demo_bricklink(sb, lots, seed)
    _demo_brickowl(sb, lots, seed)


def _age_hours(rng: random.Random, recent: bool) -> float:
    return rng.uniform(1, 72) if recent else rng.uniform(72, 24 * 40)


def _demo_bricklink(sb: "Sandbox", lots: tuple[DemoLot, ...], seed: int) -> None:
    rng = random.Random(f"demo-bricklink:{seed}")
    moment = utcnow()
    now = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    by_key = {(x.part_number, x.color_id, x.condition): x for x in lots}
    specs = [(status, _age_hours(rng, status in BL_RECENT)) for status in BL_DEMO_STATUSES]
    specs.sort(key=lambda s: -s[1])  # BrickLink ids are chronological
    first: dict[str, int] = {}
    for position, (status, _) in enumerate(specs):
        first.setdefault(status, position)
    store = sb.bricklink
    for position, (status, age) in enumerate(specs):
        picked = rng.sample(lots, rng.randint(1, 5))
        batch = [bl_line(lot, rng.randint(1, min(10, lot.quantity))) for lot in picked]
        extra: dict[str, Any] = {}
        if position == first["PAID"]:  # entities in the name: "(Cheese Slope)"
            cheese = next(x for x in lots if x.part_number == "54200")
            if cheese not in picked:
                batch.append(bl_line(cheese, 3))
        if position == first["HOLDING"]:  # apostrophe: "Wizard's"
            wand = next(x for x in lots if x.part_number == "6124")
            if wand not in picked:
                batch.append(bl_line(wand, 1))
        if position == first["PROCESSING"]:  # a part the seller does not stock
            batch.append(bl_line(_phantom("3626cpb0001", 3, "Minifigure, Head Standard Grin Pattern"), 2, category_id=238, remarks=None))
        if position == first["PENDING"]:  # a set: colour 0, completeness
            batch.append(bl_line(_phantom("40179-1", 0, "Personalised Mosaic Portrait"), 1, type="SET", completeness="C", category_id=65, remarks=None))
        if position == first["PACKED"]:  # stocked part, unstocked colour
            color = next(c for c in (4, 10, 69) if ("3001", c, "new") not in by_key)
            batch.append(bl_line(_phantom("3001", color, PARTS["3001"][0]), 4))
        if position == first["PAID-PENDING"]:  # remark names no known bin: fall back to part+colour
            batch[0] = dict(batch[0], remarks="Z99")
        if position == first["READY"]:  # no remark at all (omitted on the wire)
            batch[0] = dict(batch[0], remarks=None)
        if position == first["UPDATED"]:
            extra["remarks"] = "Please combine with my other order :)"
        if status in ("SHIPPED", "RECEIVED", "COMPLETED"):
            extra["tracking_no"] = f"9400{rng.randint(10**17, 10**18 - 1)}"
        when = now - dt.timedelta(hours=age)
        buyer = BUYERS[rng.randrange(len(BUYERS))] if position else None  # first order: no buyer name
        order_id = store.add_order(
            status=status, buyer_name=buyer, order_id=store._next_order_id + rng.randint(1, 40),
            date_ordered=when, is_filed=position == first["COMPLETED"], notify=False, **extra,
        )  # fmt: skip
        order = store.orders[order_id]
        order.batches = [batch]
        order.date_status_changed = when + dt.timedelta(hours=age / 3) if status not in ("PENDING",) else when
        order.buyer_order_count = rng.randint(1, 30)
        if position == first["PAID"]:  # the multi-batch order: the buyer came back for more
            extra_lots = [x for x in rng.sample(lots, 3) if x not in picked][:2]
            order.batches.append([bl_line(lot, rng.randint(1, 6)) for lot in extra_lots])
        if status not in BL_NOT_HOLDING:  # an open order's pieces are off the listing
            store.place(order_id)


def _phantom(part: str, color: int, name: str) -> DemoLot:
    """A lot that is not in the inventory (for unmatched lines)."""
    ident = 340_000_000 + zlib.crc32(f"{part}:{color}".encode()) % 1_000_000
    return DemoLot(part, color, "new", "", 10, name, None, "0.500", ident, 9999)


def _demo_brickowl(sb: "Sandbox", lots: tuple[DemoLot, ...], seed: int) -> None:
    rng = random.Random(f"demo-brickowl:{seed}")
    now = int(time.time())
    store = sb.brickowl
    linked = [x for x in lots if x.bricklink_lot_id]
    ids_only = [x for x in lots if x.part_number in IDS_ONLY_PARTS]
    lookup = [x for x in lots if x.part_number not in IDS_ONLY_PARTS]
    seen: set[int] = set()
    for position, sid in enumerate(BO_DEMO_STATUSES):
        picked = rng.sample(lots, rng.randint(1, 4))
        # make sure every route shows up: a linked lot, an ids-only part, an id_lookup part
        forced = (linked, ids_only, lookup)[position % 3]
        extra_lot = rng.choice(forced)
        if extra_lot not in picked:
            picked.append(extra_lot)
        lines = [bo_line(x, rng.randint(1, min(8, x.quantity)), rng, link=bool(x.bricklink_lot_id) and rng.random() < 0.8) for x in picked[:5]]
        if position == 4:  # unknown BOID: nothing maps it
            lines.append(_unknown_boid_line())
        if position == 7:  # a BrickOwl colour BrickLink lacks (bl_ids ["-9"])
            lot = next(x for x in lookup if x.part_number == "98138")
            lines.append(bo_line(lot, 2, rng, boid=f"{boid_base(lot.part_number)}-162", color_id=162, name=f"LEGO Transparent Fire Yellow {lot.name}"))
        if position == 10:  # condition with no BrickLink equivalent
            lines.append(bo_line(lookup[1], 1, rng, full_con="other"))
        placed = now - int(_age_hours(rng, sid in BO_RECENT) * 3600)
        updated = placed if sid == 0 else placed + rng.randint(60, max(61, (now - placed) // 2))
        buyer = BUYERS[rng.randrange(len(BUYERS) - 1)] or "Brick Fan"
        note = "Thanks!" if position % 5 == 0 else ""
        store.add_order(status=sid, buyer_name=buyer, lines=lines, order_time=placed, updated_time=updated,
                        buyer_note=note, reduce_stock=sid not in BO_NOT_HOLDING, notify=False)  # fmt: skip
        seen.add(sid)
    assert seen == set(range(len(BO_STATUSES)))


def _unknown_boid_line() -> dict:
    return {
        "boid": "999999-38", "color_id": 38, "full_con": "new", "ordered_quantity": 1, "personal_note": "",
        "base_price": "1.250", "bl_lot_id": None, "name": "LEGO Black Mystery Part (99999)", "type": "Part",
        "ids": [{"id": "99999", "type": "design_id"}, {"id": "999999-38", "type": "boid"}],
    }  # fmt: skip


# ---------------------------------------------------------------------- benchmarks
def generate_store(
    sb: "Sandbox", n_orders_per_provider: int, lines_per_order: int, seed: int = 1, open_fraction: float = 0.3
) -> dict[str, list]:
    """Fill both stores with ``n_orders_per_provider`` orders of ``lines_per_order`` lines.

    Lines are not stored: each order regenerates them deterministically from (seed, order)
    when its items are requested (stable across calls). Lines match the demo inventory of
    ``seed`` (also installed in the BrickLink store, with id_lookup answers); when an order
    needs more lines than there are lots, the rest are unmatched parts. A fraction
    ``open_fraction`` of orders is open (to reserve), the rest shipped/completed/cancelled.
    Returns the new order ids per provider. Remember ``sb.brickowl.rate_limit`` (600/min).
    """
    lots = demo_lots(seed)
    _install_inventory(sb, lots)
    rng = random.Random(f"bench:{seed}")
    now = time.time()

    def age() -> tuple[float, bool]:
        recent = rng.random() < open_fraction
        return (rng.uniform(60, 3 * 86400) if recent else rng.uniform(3 * 86400, 180 * 86400)), recent

    bl_ids: list[int] = []
    specs = sorted((age() for _ in range(n_orders_per_provider)), key=lambda s: -s[0])
    for seconds, recent in specs:
        status = rng.choice(BL_OPEN if recent else BL_CLOSED)
        when = dt.datetime.fromtimestamp(now - seconds, dt.timezone.utc)
        oid = sb.bricklink._next_order_id
        factory = functools.partial(_bench_bl_batches, lots, seed, oid, lines_per_order)
        bl_ids.append(sb.bricklink.add_order(status=status, buyer_name=f"buyer{oid % 997}", order_id=oid,
                                             date_ordered=when, factory=factory, notify=False))  # fmt: skip
    bo_ids_: list[str] = []
    for index in range(n_orders_per_provider):
        seconds, recent = age()
        sid = rng.choice(BO_OPEN if recent else BO_CLOSED)
        placed = int(now - seconds)
        bo_factory = functools.partial(_bench_bo_lines, lots, seed, index, lines_per_order)
        bo_ids_.append(sb.brickowl.add_order(status=sid, buyer_name=f"Buyer {index % 997}", order_time=placed,
                                             updated_time=placed + int(seconds // 4), factory=bo_factory,
                                             notify=False))  # fmt: skip
    return {"bricklink": bl_ids, "brickowl": bo_ids_}


def _bench_lots(lots: tuple[DemoLot, ...], rng: random.Random, count: int) -> list[DemoLot]:
    picked = rng.sample(lots, min(count, len(lots)))
    for extra in range(count - len(picked)):
        picked.append(_phantom(f"bench{extra}", 11, f"Benchmark Part {extra}"))
    return picked


@functools.lru_cache(maxsize=8192)
def _bl_template(lot: DemoLot) -> dict:
    return bl_line(lot, 0)


@functools.lru_cache(maxsize=8192)
def _bo_template(lot: DemoLot) -> dict:
    full_con = "new" if lot.condition == "new" else USED_CONS[lot.index % len(USED_CONS)]
    raw = bo_line(lot, 0, random.Random(0), link=bool(lot.bricklink_lot_id), full_con=full_con)
    return normalize_line(dict(raw, order_item_id=0))


def _bench_bl_batches(lots: tuple[DemoLot, ...], seed: int, order_id: int, count: int) -> list[list[dict]]:
    rng = random.Random(f"bench-bl:{seed}:{order_id}")
    return [[dict(_bl_template(lot), quantity=rng.randint(1, 5)) for lot in _bench_lots(lots, rng, count)]]


def _bench_bo_lines(lots: tuple[DemoLot, ...], seed: int, index: int, count: int) -> list[dict]:
    rng = random.Random(f"bench-bo:{seed}:{index}")
    first_id = 50_000_000 + index * (count + 1)
    return [
        dict(template, order_item_id=str(first_id + number), ordered_quantity=rng.randint(1, 5), ids=list(template["ids"]))
        for number, template in enumerate(_bo_template(lot) for lot in _bench_lots(lots, rng, count))
    ]
