"""The simulated world of tests/test_shelf_truth.py: a tiny shop whose shelf is the truth.

A :class:`ShelfTruth` state machine owns one loopback :class:`~marketsync.sandbox.Sandbox` (both
marketplaces), one SQLite file and a model of the physical world:

* ``shelf[lot]`` -- the pieces really in each bin (the truth every figure must come back to);
* every order the buyers placed: marketplace, id, the remote lot it was bought from, the local
  lot it draws on, its pieces and whether it is open, shipped or cancelled;
* the seller's edits on a marketplace's website that are not adopted yet.

Every marketsync command is the real click command run in-process (``CliRunner``, as the ``run``
fixture does), with the sandbox's credentials and the database in its environment; the kill -9
rule starts ``python -m marketsync sync --push`` as a real process, as cron would.

What the world looks like (drawn per example, see :func:`worlds`): 2-3 local lots, one part each
in its own bin, each listed on BrickLink and on BrickOwl (the BrickOwl lot linked to the BrickLink
lot through ``external_id``, its ``personal_note`` the bin); optionally a second BrickLink lot of
lot 0's part, colour and condition in the same bin at another price (the seller lists lot 0 as
two BrickLink lots whose quantities add up to its shelf); optionally a BrickLink stockroom lot
(status ``S``) of lot 0's part in lot 0's bin, whose pieces are set aside -- not part of the shelf
marketsync manages -- and which must never be touched. Each store's ``restock_on_cancel`` and
whether BrickLink lots are retained at 0 are drawn too; the shop starts from ``inventory pull
--provider bricklink`` or from ``inventory import`` of the shelf, then one ``sync --push``.

What the marketplaces do, as docs/stock-model.md and shared/marketplace-apis.md say: a buyer's
pieces leave the listing when the order is placed; shipping changes no listing; a cancellation
puts them back only when that store restocks; BrickLink deletes a lot that reaches 0 unless it is
retained (and brings it back when a restock refills it).

The rules (each draws the same numbers whatever the state and does nothing when nothing is
possible; see :meth:`ShelfTruth.buyer_orders`):

* ``buyer_orders``: on either marketplace, at most what that listing offers now;
* ``order_paid``, ``order_shipped`` (the seller picks it: shelf - pieces; only what the shelf
  holds), ``order_cancelled`` (open orders), ``shipment_taken_back`` (shipped -> packed: shelf +
  pieces);
* ``seller_adds_stock``: k more pieces in a bin and that listing raised by k on the website (not on
  a listing with a change of marketsync's whose outcome is open, nor while a late write may land,
  nor on one with a raise of marketsync's given up on that may still land late: nobody could tell
  the seller's part from it); ``seller_adopts`` runs ``stock adopt`` for one
  such edit (where adopt says the seller's part cannot be told, the seller counts the bin and
  overrides, as it says);
* ``seller_recounts``: ``sync``, then ``inventory import`` of one bin's count (not a bin with an
  edit waiting: the count and the adoption would both add it);
* ``inventory_pull`` of either marketplace (it adopts the seller's edits there, as documented);
* ``cron_run`` (``sync --push``, exit 0) and ``cron_run_under_fault`` (:data:`FAULT_PLANS`: answers
  lost after or without applying a write, with or without a read-back, 5xx on reads, a lot or
  order list failing for the whole run, a lot list cut short or a maintenance page, a buyer who
  orders while the run reads the lots or right after a write, a late write);
  ``late_writes_land``; ``cron_run_killed`` (slow profile: SIGKILL of a real process);
* ``quiet_and_check``: the invariant below.

The invariant (:meth:`ShelfTruth.quiet_and_check`, a rule, and again at teardown), after late
writes are applied, faults are off, the seller adopted every outstanding edit and two quiet
``sync --push`` runs (the second must exit 0):

* for every lot, on hand (``inventory.quantity``) == ``shelf[lot]``;
* reserved (``quantity_reserved``) == the pieces of the lot's open orders;
* on each marketplace, the quantities of the lot's for-sale listings add up to
  ``max(0, shelf - open pieces)`` (BrickLink: status ``Y`` lots; BrickOwl: lots for sale);
* no listing is held (``listings.held_at``);
* ``marketsync reserve --check`` exits 0;
* the stockroom lot still holds what it held at the start.
"""

from __future__ import annotations


import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from marketsync.cli import cli
from marketsync.sandbox import QUIRKS, Sandbox
from marketsync.sandbox import brickowl as brickowl_sandbox
from marketsync.sandbox import server, wire
from marketsync.sandbox.wire import html_response

PICK = st.integers(0, 255)  # picks one of what is possible now (see ShelfTruth.buyer_orders)


def _batch_lot(req) -> str | None:
    """The first lot a BrickOwl bulk/batch request changes."""
    try:
        return str(json.loads((req.form() or {}).get("requests", ""))["requests"][0]["params"][0]["lot_id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def choose(options: list, pick: int):
    return options[pick % len(options)] if options else None


# the quirks every test meets (tests/conftest.py: TEST_QUIRKS)
WORLD_QUIRKS = frozenset(QUIRKS) - {"no_full_con", "no_type", "no_updated_time", "no_customer_email"}
FAST = {"MARKETSYNC_RETRY_BACKOFF": "0.01", "MARKETSYNC_HTTP_TIMEOUT": "5", "BRICKOWL_RATE_LIMIT": "1000000"}
CONFIG_PREFIXES = ("MARKETSYNC_", "BRICKLINK_", "BRICKOWL_")

# local lots: (BrickLink part, BrickOwl BOID); BrickLink colour 11 (Black) is BrickOwl colour 38
PARTS = [("3001", "771344-38"), ("3003", "771345-38"), ("3020", "771346-38")]
BL_COLOUR, BO_COLOUR = 11, 38
BL_LOT = 500  # + lot index: each lot's BrickLink lot
BL_SECOND = 600  # lot 0's second BrickLink lot (same part, colour, condition and bin; another price)
BL_STOCKROOM = 700  # a stockroom lot of lot 0's part in lot 0's bin
BO_LOT = 9000  # + lot index: each lot's BrickOwl lot
OPEN_STATUSES = {"bricklink": ("PENDING", "PAID"), "brickowl": ("Pending", "Payment Received")}
PAID = {"bricklink": "PAID", "brickowl": "Payment Received"}
SHIPPED = {"bricklink": "SHIPPED", "brickowl": "Shipped"}
TAKEN_BACK = {"bricklink": "PACKED", "brickowl": "Processed"}  # a shipment taken back: packed again
CANCELLED = {"bricklink": "CANCELLED", "brickowl": "Cancelled"}
CANCEL_RESTOCKS = {"bricklink": "MARKETSYNC_BRICKLINK_CANCEL_RESTOCKS", "brickowl": "MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS"}

BL_PUT = ("bricklink", "PUT /inventories/{id}")
BO_WRITES = [("brickowl", "POST /inventory/update"), ("brickowl", "POST /bulk/batch")]
# the sandbox's "late" write fault (not applied now, answer lost, applied by store.apply_late_writes())
LATE = next(iter(sorted(getattr(server, "LATE_FAULTS", ()))), None)
# switches for what no source documents, when the sandbox has them (drawn per example)
BELOW_ZERO = tuple(getattr(wire, "BELOW_ZERO", ()))
BATCH_SHAPES = tuple(getattr(brickowl_sandbox, "BATCH_ANSWER_SHAPES", ()))

# The faults a cron run may meet: name -> [(provider, endpoint, fault, times)]; times None: every
# request of the run. Cleared after the run.
FAULT_PLANS: dict[str, list[tuple[str, str, str, int | None]]] = {
    # lost replies on writes: applied, then the answer is lost
    "bricklink write applied, answer reset": [(*BL_PUT, "applied_reset", 1)],
    "bricklink write applied, answer 500": [(*BL_PUT, "applied_500", 1)],
    "brickowl write applied, answer reset": [("brickowl", "*", "applied_reset", 1)],
    "brickowl write applied, answer 500": [("brickowl", "*", "applied_500", 1)],
    # lost replies on writes: not applied
    "bricklink write not applied (500)": [(*BL_PUT, "500", 1)],
    "bricklink write not applied (reset)": [(*BL_PUT, "reset", 1)],
    "brickowl write not applied (500)": [(*w, "500", 1) for w in BO_WRITES],
    "brickowl write not applied (reset)": [(*w, "reset", 1) for w in BO_WRITES],
    # a lost answer, and the lot cannot be read back in this run
    "bricklink write applied, answer lost, no read-back": [(*BL_PUT, "applied_reset", 1),
                                                          ("bricklink", "GET /inventories/{id}", "500", None)],
    "brickowl write applied, answer lost, no read-back": [("brickowl", "*", "applied_reset", 1),
                                                         ("brickowl", "read-back", "500", None)],
    # 5xx on reads (retried), and reads that fail for the whole run
    "bricklink lot list 503 once": [("bricklink", "GET /inventories", "html503", 1)],
    "brickowl lot list 500 once": [("brickowl", "GET /inventory/list", "500", 1)],
    "bricklink orders 500 once": [("bricklink", "GET /orders", "500", 1)],
    "brickowl order list 503 once": [("brickowl", "GET /order/list", "html503", 1)],
    "bricklink lot list fails": [("bricklink", "GET /inventories", "html503", None)],
    "brickowl lot list fails": [("brickowl", "GET /inventory/list", "500", None)],
    "bricklink orders fail": [("bricklink", "GET /orders", "500", None)],
    "brickowl orders fail": [("brickowl", "GET /order/list", "500", None)],
    "bricklink lot list cut short once": [("bricklink", "GET /inventories", "malformed", 1)],
    "brickowl lot list a maintenance page": [("brickowl", "GET /inventory/list", "not_json", None)],
    # a buyer orders while the run is under way (tests/test_listings.py does the same by hand)
    "bricklink order lands right after the lot list is read": [("bricklink", "order after lot list", "", 1)],
    "brickowl order lands right after the lot list is read": [("brickowl", "order after lot list", "", 1)],
    "bricklink write applied, an order lands, the answer is lost": [("bricklink", "order after write", "", 1)],
    "brickowl write applied, an order lands, the answer is lost": [("brickowl", "order after write", "", 1)],
}
if LATE is not None:
    FAULT_PLANS["bricklink write late"] = [(*BL_PUT, LATE, 1)]
    FAULT_PLANS["brickowl write late"] = [("brickowl", "*", LATE, 1)]
FAULT_NAMES = list(FAULT_PLANS)
LIST_ROUTES = {"bricklink": ["GET /inventories"], "brickowl": ["GET /inventory/list"]}
WRITE_ROUTES = {"bricklink": ["PUT /inventories/{id}"], "brickowl": ["POST /inventory/update", "POST /bulk/batch"]}


@dataclass(frozen=True)
class Lot:
    index: int
    part: str
    boid: str
    bin: str

    @property
    def bl_lot(self) -> int:
        return BL_LOT + self.index

    @property
    def bo_lot(self) -> str:
        return str(BO_LOT + self.index)


@dataclass(frozen=True)
class World:
    shelves: tuple[int, ...]  # the first count of each lot's bin
    second_bricklink_lot: int | None  # lot 0 listed as two BrickLink lots: the second one's share
    stockroom: int | None  # pieces of the stockroom lot in lot 0's bin (None: no stockroom lot)
    stockroom_listed_first: bool  # the stockroom lot comes before the lots for sale in GET /inventories
    bricklink_restocks: bool  # restock_on_cancel of each store
    brickowl_restocks: bool
    bricklink_told: bool  # the seller set MARKETSYNC_<MARKETPLACE>_CANCEL_RESTOCKS (else marketsync learns it)
    brickowl_told: bool
    bricklink_deletes_sold_out: bool  # the BrickLink lots are not retained: one sold to 0 is deleted
    start: str  # "pull": inventory pull --provider bricklink; "import": inventory import of the shelf
    below_zero: tuple[str | None, str | None] = (None, None)  # each store's below_zero switch (None: the sandbox's own)
    batch_answer_shape: str | None = None  # BrickOwl's bulk/batch answer shape (None: the sandbox's own)


@st.composite
def worlds(draw) -> World:
    shelves = draw(st.lists(st.integers(1, 8), min_size=2, max_size=3))
    second = None
    if draw(st.booleans()):
        shelves[0] = max(shelves[0], 2)
        second = draw(st.integers(1, shelves[0] - 1))
    return World(
        shelves=tuple(shelves), second_bricklink_lot=second,
        stockroom=draw(st.none() | st.integers(1, 20)), stockroom_listed_first=draw(st.booleans()),
        bricklink_restocks=draw(st.booleans()), brickowl_restocks=draw(st.booleans()),
        bricklink_told=draw(st.booleans()), brickowl_told=draw(st.booleans()),
        bricklink_deletes_sold_out=draw(st.booleans()), start=draw(st.sampled_from(["pull", "import"])),
        below_zero=(draw(st.sampled_from(BELOW_ZERO)), draw(st.sampled_from(BELOW_ZERO))) if BELOW_ZERO else (None, None),
        batch_answer_shape=draw(st.sampled_from(BATCH_SHAPES)) if BATCH_SHAPES else None,
    )


@dataclass
class Order:
    provider: str
    order_id: str
    lot: int  # the local lot (index)
    remote_lot: str  # the marketplace lot it was bought from
    pieces: int
    state: str = "open"  # open | shipped | cancelled
    taken_back: bool = False  # shipped once, then back to packed

    def __str__(self) -> str:
        return f"{self.provider}:{self.order_id} ({self.pieces} of lot {self.lot} via {self.remote_lot}, {self.state})"


def _steps(fn):
    """Marks the machine unclean while a rule runs: teardown checks only after clean runs."""
    import functools

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        self.clean = False
        fn(self, *args, **kwargs)
        self.clean = True

    return wrapper


class ShelfTruth(RuleBasedStateMachine):
    """See the module docstring. ``KILL`` switches the kill -9 rule on (the slow profile)."""

    KILL = False

    def __init__(self):
        super().__init__()
        self.clean = True
        self.thread = threading.current_thread()
        self.deferred: list[str] = []
        self.sb = Sandbox(demo=False, quirks=WORLD_QUIRKS).start()
        self.sb.brickowl.rate_limit = None
        self.dir = Path(tempfile.mkdtemp(prefix="shelf-truth-"))
        self.db = self.dir / "marketsync.db"
        unset = {name: None for name in os.environ if name.startswith(CONFIG_PREFIXES)}
        self.env = {**unset, **FAST, **self.sb.env(), "MARKETSYNC_DB": str(self.db)}
        self.world: World | None = None
        self.lots: list[Lot] = []
        self.shelf: dict[int, int] = {}
        self.orders: list[Order] = []
        self.edits: set[tuple[str, str]] = set()  # (provider, remote lot) the seller edited, not adopted
        self.created: dict[int, int] = {}  # BrickLink lots marketsync created again (sold out, relisted) -> lot
        self.stockroom_quantity: int | None = None
        self.runs = 0

    # --- plumbing ---------------------------------------------------------------------------------
    @property
    def w(self) -> World:
        assert self.world is not None, "the shop is not open yet"
        return self.world

    def say(self, text: str) -> None:
        """note(), also from a sandbox thread (a buyer who orders while a run is under way): kept
        until the run is over."""
        if threading.current_thread() is self.thread:
            note(text)
        else:
            self.deferred.append("  (during the run) " + text)

    def cli(self, *args: str):
        result = CliRunner().invoke(cli, [str(a) for a in args], env=self.env, catch_exceptions=False)
        for text in self.deferred:
            note(text)
        self.deferred.clear()
        self.runs += 1
        text = (result.stdout + result.stderr).strip()
        note(f"  $ marketsync {' '.join(map(str, args))} -> exit {result.exit_code}"
             + (("\n    " + text.replace("\n", "\n    ")) if text else ""))
        return result

    def store(self, provider: str):
        return self.sb.bricklink if provider == "bricklink" else self.sb.brickowl

    def query(self, sql: str, params=()) -> list[tuple]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def bricklink_listings(self, lot: Lot) -> list[int]:
        """The lot's BrickLink lots, for sale or not: its own, (lot 0) the second one, and every lot
        marketsync created again in their place after buyers sold them out (a new id each time:
        remembered, so that an edit of one still names its bin once it is gone)."""
        opened = {BL_LOT + index for index in range(len(PARTS))} | {BL_SECOND, BL_STOCKROOM}
        for found in self.sb.bricklink.all_lots():
            if found.inventory_id not in opened and (found.no, found.color_id, found.new_or_used, found.remarks) == (
                    lot.part, BL_COLOUR, "N", lot.bin):
                self.created.setdefault(found.inventory_id, lot.index)
        return ([lot.bl_lot] + ([BL_SECOND] if lot.index == 0 and self.w.second_bricklink_lot else [])
                + sorted(remote for remote, index in self.created.items() if index == lot.index))

    def offers(self) -> list[tuple[str, str, int, int]]:
        """(provider, remote lot, local lot, pieces it offers now) of every listing a buyer can buy from."""
        out = []
        for lot in self.lots:
            for remote in self.bricklink_listings(lot):
                found = self.sb.bricklink.get_lot(remote)
                if found is not None and found.status == "Y":
                    out.append(("bricklink", str(remote), lot.index, found.quantity))
            found = self.sb.brickowl.get_lot(lot.bo_lot)
            if found is not None and found.for_sale:
                out.append(("brickowl", lot.bo_lot, lot.index, found.qty))
        return out

    def open_pieces(self, lot: int) -> int:
        return sum(o.pieces for o in self.orders if o.lot == lot and o.state == "open")

    def listed(self, lot: Lot) -> tuple[int, int]:
        """What each marketplace offers of the lot now: its for-sale listings added up."""
        bricklink = sum(x.quantity for x in self.sb.bricklink.all_lots()
                        if x.status == "Y" and (x.no, x.color_id, x.new_or_used, x.remarks) ==
                        (lot.part, BL_COLOUR, "N", lot.bin))
        brickowl = sum(x.qty for x in self.sb.brickowl.all_lots()
                       if x.for_sale and x.boid == lot.boid and x.personal_note == lot.bin)
        return bricklink, brickowl

    def counters(self) -> dict[str, tuple[int, int]]:
        return {location: (quantity, reserved) for location, quantity, reserved in self.query(
            "select location, quantity, quantity_reserved from inventory")}

    def describe(self) -> str:
        counted = self.counters()
        parts = []
        for lot in self.lots:
            bl, bo = self.listed(lot)
            on_hand, reserved = counted.get(lot.bin, (None, None))
            parts.append(f"lot {lot.index} ({lot.bin}): shelf {self.shelf[lot.index]}, open {self.open_pieces(lot.index)}"
                         f" | db on hand {on_hand}, reserved {reserved} | bricklink {bl}, brickowl {bo}")
        if self.w.stockroom is not None:
            room = self.sb.bricklink.get_lot(BL_STOCKROOM)
            parts.append(f"stockroom lot: {room.quantity if room else None} (started {self.stockroom_quantity})")
        if self.edits:
            parts.append(f"seller edits not adopted: {sorted(self.edits)}")
        return "\n    ".join(parts)

    def state_note(self) -> None:
        note("    world: " + self.describe())

    # --- the shop opens ---------------------------------------------------------------------------
    @initialize(world=worlds())
    def open_shop(self, world: World):
        self.clean = False
        self.world = world
        note(f"world: {world}")
        bl, bo = self.sb.bricklink, self.sb.brickowl
        bl.restock_on_cancel, bo.restock_on_cancel = world.bricklink_restocks, world.brickowl_restocks
        for provider, told in (("bricklink", world.bricklink_told), ("brickowl", world.brickowl_told)):
            if told:  # the seller says whether the store restocks cancelled orders; else marketsync learns it
                self._tell(provider)
        for store, mode in zip((bl, bo), world.below_zero):
            if mode is not None:
                store.below_zero = mode
        if world.batch_answer_shape is not None:
            bo.batch_answer_shape = world.batch_answer_shape
        self.lots = [Lot(i, part, boid, f"A{i + 1}") for i, (part, boid) in enumerate(PARTS[:len(world.shelves)])]

        def stockroom():
            if world.stockroom is not None:
                bl.add_lot(PARTS[0][0], BL_COLOUR, world.stockroom, remarks="A1", inventory_id=BL_STOCKROOM,
                           unit_price="0.0800", status="S")
                self.stockroom_quantity = world.stockroom

        if world.stockroom_listed_first:
            stockroom()
        for lot, count in zip(self.lots, world.shelves):
            self.shelf[lot.index] = count
            first = count - (world.second_bricklink_lot or 0) if lot.index == 0 else count
            bl.add_lot(lot.part, BL_COLOUR, first, remarks=lot.bin, inventory_id=lot.bl_lot,
                       is_retain=not world.bricklink_deletes_sold_out)
            if lot.index == 0 and world.second_bricklink_lot:
                bl.add_lot(lot.part, BL_COLOUR, world.second_bricklink_lot, remarks=lot.bin, inventory_id=BL_SECOND,
                           unit_price="0.1500", is_retain=not world.bricklink_deletes_sold_out)
            bo.add_lot(lot.boid, count, lot_id=lot.bo_lot, personal_note=lot.bin, external_id=lot.bl_lot,
                       ids=[{"id": lot.part, "type": "design_id"}, {"id": lot.boid, "type": "boid"}])
            bo.add_id_lookup(lot.part, [lot.boid, lot.boid.split("-")[0]])
        if not world.stockroom_listed_first:
            stockroom()

        if world.start == "pull":
            result = self.cli("inventory", "pull", "--provider", "bricklink")
        else:
            path = self.dir / "shelf.csv"
            rows = ["part_number,color_id,condition,location,quantity,bricklink_lot_id"]
            rows += [f"{lot.part},{BL_COLOUR},new,{lot.bin},{self.shelf[lot.index]},{lot.bl_lot}" for lot in self.lots]
            path.write_text("\n".join(rows) + "\n", encoding="utf-8")
            result = self.cli("inventory", "import", path)
        assert result.exit_code == 0, result.output
        result = self.cli("sync", "--push")
        assert result.exit_code == 0, result.output
        self.state_note()
        self.clean = True

    # --- buyers -----------------------------------------------------------------------------------
    # Every rule draws the same things whatever the state (a number that picks among what is
    # possible now) and does nothing when nothing is possible: the draws never depend on the
    # marketplaces or the database, so a run that a kill -9 or the clock makes take another turn
    # never confuses hypothesis's replay ("inconsistent data generation").
    @rule(pick=PICK, size=PICK, status=st.integers(0, 1))
    @_steps
    def buyer_orders(self, pick, size, status):
        """A buyer orders on either marketplace, at most what that listing offers now; the
        marketplace takes the pieces off that listing."""
        self._place_order(pick, size, status)

    def _place_order(self, pick: int, size: int, status_pick: int, provider: str | None = None,
                     remote: str | None = None) -> None:
        offers = [o for o in self.offers() if o[3] > 0 and provider in (None, o[0]) and remote in (None, o[1])]
        found = choose(offers, pick)
        if found is None:
            return self.say("buyer: no listing offers anything")
        provider, remote, lot, offered = found
        pieces = 1 + size % offered
        status = OPEN_STATUSES[provider][status_pick]
        part, boid, bin_ = self.lots[lot].part, self.lots[lot].boid, self.lots[lot].bin
        if provider == "bricklink":
            order_id = self.sb.bricklink.add_order(status, lines=[{
                "inventory_id": int(remote), "no": part, "color_id": BL_COLOUR, "quantity": pieces, "remarks": bin_}])
        else:
            order_id = self.sb.brickowl.add_order(status, lines=[{
                "lot_id": remote, "boid": boid, "color_id": BO_COLOUR, "ordered_quantity": pieces,
                "personal_note": bin_, "bl_lot_id": str(self.lots[lot].bl_lot)}])
        order = Order(provider, str(order_id), lot, remote, pieces)
        self.orders.append(order)
        self.say(f"buyer orders {order} as {status} (the listing offered {offered})")

    def _orders(self, state: str) -> list[Order]:
        return [o for o in self.orders if o.state == state]

    @rule(pick=PICK)
    @_steps
    def order_paid(self, pick):
        order = choose(self._orders("open"), pick)
        if order is None:
            return note("paid: no open order")
        self.store(order.provider).set_status(order.order_id, PAID[order.provider])
        note(f"order paid: {order}")

    @rule(pick=PICK)
    @_steps
    def order_shipped(self, pick):
        """The seller picks the order from the bin and ships it: the shelf loses its pieces."""
        order = choose([o for o in self._orders("open") if o.pieces <= self.shelf[o.lot]], pick)
        if order is None:
            return note("ship: no open order the shelf can fill")
        self.store(order.provider).set_status(order.order_id, SHIPPED[order.provider])
        order.state = "shipped"
        self.shelf[order.lot] -= order.pieces
        note(f"order shipped: {order}; shelf of lot {order.lot} now {self.shelf[order.lot]}")

    def _cancellable(self) -> list[Order]:
        """Open orders -- but not a shipment taken back that marketsync has not seen back yet:
        shipped -> packed -> cancelled between two runs reads as shipped -> cancelled, which no one
        can tell from a lost parcel refunded (its pieces never came back); nor, while marketsync does
        not know whether that store restocks cancelled orders, one bought from a listing the seller
        edited and has not decided on yet (see :meth:`_editable`)."""
        seen = {(provider, order_id): status for provider, order_id, status in self.query(
            "select provider, order_id, status from orders")}
        return [o for o in self._orders("open")
                if (not o.taken_back or seen.get((o.provider, o.order_id)) in ("pending", "paid", "processing", "packed"))
                and not ((o.provider, o.remote_lot) in self.edits and not self.restocks_known(o.provider))]

    @rule(pick=PICK)
    @_steps
    def order_cancelled(self, pick):
        order = choose(self._cancellable(), pick)
        if order is None:
            return note("cancel: no open order")
        self.store(order.provider).set_status(order.order_id, CANCELLED[order.provider])
        order.state = "cancelled"
        note(f"order cancelled: {order} (the store {'restocks' if self.store(order.provider).restock_on_cancel else 'does not restock'})")

    @rule(pick=PICK)
    @_steps
    def shipment_taken_back(self, pick):
        """A shipped order goes back to packed: the parcel is back in the bin."""
        order = choose(self._orders("shipped"), pick)
        if order is None:
            return note("take back: no shipped order")
        self.store(order.provider).set_status(order.order_id, TAKEN_BACK[order.provider])
        order.state, order.taken_back = "open", True
        self.shelf[order.lot] += order.pieces
        note(f"shipment taken back: {order}; shelf of lot {order.lot} now {self.shelf[order.lot]}")

    # --- the seller -------------------------------------------------------------------------------
    def open_changes(self, provider: str, remote: str) -> int:
        """marketsync's changes to a listing whose outcome it does not know yet (recorded, never
        confirmed: a crash, a lost answer)."""
        return self.query("select count(*) from _listing_changes where provider = ? and remote_lot_id = ? "
                          "and state in ('intended', 'unknown')", [provider, remote])[0][0]

    def given_up_raises(self, provider: str, remote: str) -> int:
        """marketsync's raises of a listing read as not applied that may still land late
        (``maybe_late``, docs/stock-model.md)."""
        return self.query("select count(*) from _listing_changes where provider = ? and remote_lot_id = ? "
                          "and state = 'maybe_late' and delta > 0", [provider, remote])[0][0]

    def _editable(self) -> list[tuple[str, str, int]]:
        """Listings the seller may edit now. Not one with a change of marketsync's whose outcome is
        open, nor on a marketplace where a held-back write may still land: the seller's part of
        the figure could then not be told apart from that change (17 + 1 or 20 - 2?), by anybody;
        docs/stock-model.md has adopt refuse there and the seller count the bin instead. Nor one
        with a raise of marketsync's given up on that may still land late: the seller's raise by as
        much reads as that raise landing (docs/stock-model.md takes it so while it may land). Nor,
        while marketsync does not know whether that store restocks cancelled orders, one with an
        order cancelled since marketsync last read it: a raise by exactly the cancelled pieces is then
        the very figure a restock gives (and the store not restocking what it did), which nobody
        can tell apart either -- docs/stock-model.md: set the setting, or let marketsync read the
        listing first.)"""
        return [(provider, remote, lot) for provider, remote, lot, _ in self.offers()
                if not self.open_changes(provider, remote) and not getattr(self.store(provider), "late_writes", 0)
                and not self.given_up_raises(provider, remote)
                and (self.restocks_known(provider) or not self.unseen_cancellation(provider, remote))]

    # --- whether a store restocks cancelled orders: the seller's setting, or learned ----------------
    def _tell(self, provider: str) -> None:
        """The seller sets MARKETSYNC_<MARKETPLACE>_CANCEL_RESTOCKS to what the store really does."""
        self.env[CANCEL_RESTOCKS[provider]] = "yes" if self.store(provider).restock_on_cancel else "no"
        note(f"seller sets {CANCEL_RESTOCKS[provider]}={self.env[CANCEL_RESTOCKS[provider]]}")

    def restocks_known(self, provider: str) -> bool:
        """marketsync knows whether the store restocks cancelled orders (set, or learned)."""
        return bool(self.env.get(CANCEL_RESTOCKS[provider])) or bool(self.query(
            "select 1 from _cancel_restocks where provider = ?", [provider]))

    def unseen_cancellation(self, provider: str, remote: str) -> bool:
        """An order bought from the listing was cancelled since marketsync last read the listing (its
        cancelled pieces then, placed - taken, are fewer than the store's now)."""
        cancelled = sum(o.pieces for o in self.orders if (o.provider, o.remote_lot, o.state) == (provider, remote, "cancelled"))
        seen = self.query("select coalesce(placed, 0) - coalesce(taken, 0) from listings where provider = ? and "
                          "remote_lot_id = ?", [provider, remote])
        return cancelled > (seen[0][0] if seen else 0)

    @rule(pick=PICK, k=st.integers(1, 4))
    @_steps
    def seller_adds_stock(self, pick, k):
        """The seller puts k more pieces in a bin and raises one listing by k on the website."""
        found = choose(self._editable(), pick)
        if found is None:
            return note("seller: no listing to raise")
        provider, remote, lot = found
        store = self.store(provider)
        now = store.get_lot(int(remote) if provider == "bricklink" else remote)
        current = now.quantity if provider == "bricklink" else now.qty
        store.set_lot_quantity(int(remote) if provider == "bricklink" else remote, current + k)
        self.shelf[lot] += k
        self.edits.add((provider, remote))
        note(f"seller adds {k} to bin {self.lots[lot].bin} and raises {provider} lot {remote} {current} -> {current + k}")

    @rule(pick=PICK)
    @_steps
    def seller_adopts(self, pick):
        edit = choose(sorted(self.edits), pick)
        if edit is None:
            return note("adopt: no edit waits")
        self._adopt(*edit)

    def _adopt(self, provider: str, remote: str) -> None:
        """``stock adopt``. Where marketsync says the seller's part cannot be told (a change of its
        own to the listing has no known outcome) the seller does what it says: counts the bin
        (``inventory import``) and lets marketsync list its count (``stock override``) -- but only
        where such an open change really exists."""
        uncertain = self.open_changes(provider, remote)
        result = self.cli("stock", "adopt", f"{provider}:{remote}")
        if result.exit_code != 0 and CANCEL_RESTOCKS[provider] in result.output and not self.restocks_known(provider):
            self._tell(provider)  # marketsync asks whether the store restocks: the seller knows, and says so
            result = self.cli("stock", "adopt", f"{provider}:{remote}")
        if result.exit_code != 0 and uncertain and "inventory import" in result.output:
            lot = self.lot_of(provider, remote)
            self._recount(self.lots[lot])
            for edited in sorted(e for e in self.edits if self.lot_of(*e) == lot):
                override = self.cli("stock", "override", f"{edited[0]}:{edited[1]}")
                assert override.exit_code == 0, ("stock override failed", override.output)
                self.edits.discard(edited)
            return
        assert result.exit_code == 0, (f"the seller could not adopt their own edit of {provider} lot {remote}",
                                       result.output)
        self.edits.discard((provider, remote))

    def lot_of(self, provider: str, remote: str) -> int:
        """The local lot a marketplace lot lists."""
        for lot in self.lots:
            if (provider == "bricklink" and int(remote) in self.bricklink_listings(lot)
                    or provider == "brickowl" and remote == lot.bo_lot):
                return lot.index
        raise KeyError((provider, remote))

    def _recountable(self) -> list[int]:
        """Bins none of whose listings carry an edit the seller has not decided on yet (a recount
        then would count the same pieces twice, once more on adoption)."""
        edited = {self.lot_of(provider, remote) for provider, remote in self.edits}
        return [lot.index for lot in self.lots if lot.index not in edited]

    @rule(pick=PICK)
    @_steps
    def seller_recounts(self, pick):
        index = choose(self._recountable(), pick)
        if index is None:
            return note("recount: every bin has an edit waiting")
        self._recount(self.lots[index])
        self.state_note()

    def _recount(self, lot: Lot) -> None:
        """The seller syncs the orders, counts a bin and imports the count (a CSV of one row).
        (Syncing first: a shipment the count already misses must not be taken off it again.)"""
        result = self.cli("sync")
        assert result.exit_code == 0, result.output
        path = self.dir / "recount.csv"
        path.write_text("part_number,color_id,condition,location,quantity\n"
                        f"{lot.part},{BL_COLOUR},new,{lot.bin},{self.shelf[lot.index]}\n", encoding="utf-8")
        note(f"seller counts {self.shelf[lot.index]} in bin {lot.bin}")
        result = self.cli("inventory", "import", path)
        assert result.exit_code == 0, result.output

    @rule(provider=st.sampled_from(["bricklink", "brickowl"]))
    @_steps
    def inventory_pull(self, provider):
        """``inventory pull``: takes what that marketplace's listings moved by, the seller's
        edits on it included (it adopts them)."""
        result = self.cli("inventory", "pull", "--provider", provider)
        assert result.exit_code == 0, result.output
        # a figure an open change of marketsync's leaves uncertain moves nothing (and says so): that
        # edit still waits for the seller
        lines = result.output.splitlines()
        self.edits = {(p, r) for p, r in self.edits if p != provider or any(
            line.startswith(f"{p} lot {r} shows") and ("no known outcome" in line or CANCEL_RESTOCKS[p] in line)
            for line in lines)}
        self.state_note()

    # --- cron ---------------------------------------------------------------------------------------
    @rule()
    @_steps
    def cron_run(self):
        """``sync --push`` from cron."""
        result = self.cli("sync", "--push")
        assert result.exit_code == 0, result.output
        self.state_note()

    @rule(fault=st.sampled_from(FAULT_NAMES))
    @_steps
    def cron_run_under_fault(self, fault):
        """``sync --push`` from cron under a fault (cleared after the run)."""
        restore = self._inject(fault)
        try:
            result = self.cli("sync", "--push")
        finally:
            restore()
        assert result.exit_code in (0, 1), result.output
        self.state_note()

    def _inject(self, fault: str):
        """Plays ``fault`` on the sandbox; returns what takes it away again."""
        restores: list = []
        for provider, endpoint, kind, times in FAULT_PLANS[fault]:
            if endpoint == "read-back":
                self._fail_read_back(restores)
            elif endpoint == "order after lot list":
                self._order_after(provider, LIST_ROUTES[provider], restores, lose_answer=False)
            elif endpoint == "order after write":
                self._order_after(provider, WRITE_ROUTES[provider], restores, lose_answer=True)
            else:
                self.sb.inject(provider, endpoint, kind, times=times)

        def restore():
            self.sb.clear_faults()
            for undo in restores:
                undo()

        return restore

    def _wrap(self, provider: str, template: str, make, restores: list) -> None:
        route = next(r for r in self.store(provider).routes if r.template == template)
        original = route.handler
        route.handler = make(original)
        restores.append(lambda: setattr(route, "handler", original))

    def _fail_read_back(self, restores: list) -> None:
        """BrickOwl reads one lot back with ``inventory/list?lot_id=``: that read answers 500."""
        self._wrap("brickowl", "GET /inventory/list", lambda original: lambda req: (
            html_response(500) if req.query.get("lot_id") else original(req)), restores)

    def _order_after(self, provider: str, templates: list[str], restores: list, lose_answer: bool) -> None:
        """Once, right after the marketplace answered a lot list (or applied a write), a buyer
        orders 1 piece (of the lot written to); after a write its answer is then lost (500)."""
        fired: list[int] = []
        store = self.store(provider)

        def make(original):
            def handler(req):
                answer = original(req)
                if fired or answer.status != 200 or (not lose_answer and req.query.get("lot_id")):
                    return answer
                fired.append(1)
                target = (req.params.get("id") or (req.form() or {}).get("lot_id") or _batch_lot(req)
                          if lose_answer else None)
                self._place_order(0, 0, 1, provider=provider, remote=target)
                return store.fault("500", {}) if lose_answer else answer
            return handler

        for template in templates:
            self._wrap(provider, template, make, restores)

    @rule()
    @_steps
    def late_writes_land(self):
        if not self.late_waiting():
            return note("no late write waits")
        self._apply_late_writes()
        self.state_note()

    def late_waiting(self) -> int:
        return sum(getattr(store, "late_writes", 0) for store in (self.sb.bricklink, self.sb.brickowl))

    def _apply_late_writes(self) -> None:
        waiting = self.late_waiting()
        for store in (self.sb.bricklink, self.sb.brickowl):
            if hasattr(store, "apply_late_writes"):
                store.apply_late_writes()
        if waiting:
            note(f"{waiting} late write(s) land")

    @precondition(lambda self: self.KILL)
    @rule(pick=PICK, size=PICK, after=st.floats(0.3, 1.3))
    @_steps
    def cron_run_killed(self, pick, size, after):
        """A buyer orders, then the real ``python -m marketsync sync --push`` that would carry it to
        the other listings is killed with SIGKILL ``after`` seconds in. Every write answers after
        0.3 s (applied, the answer then lost), so the kill often lands between a change recorded
        and its outcome (the process starts in ~0.4 s; a run with two writes takes ~1.1 s)."""
        self._place_order(pick, size, 1)
        for provider, endpoint in (BL_PUT, ("brickowl", "*")):
            self.sb.inject(provider, endpoint, "applied_hang", times=None, seconds=0.3)
        env = {k: v for k, v in {**os.environ, **self.env}.items() if v is not None}
        proc = subprocess.Popen([sys.executable, "-m", "marketsync", "sync", "--push", "--wait", "5"],
                                cwd=self.dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
        try:
            time.sleep(after)
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=60)
        finally:
            self.sb.clear_faults()
        note(f"  $ python -m marketsync sync --push -> {'killed after %.2fs' % after if killed else f'exit {proc.returncode}'}"
             + (f"\n    {err.strip()}" if err.strip() else ""))
        if not killed:
            assert proc.returncode in (0, 1), err
        self.state_note()

    # --- the truth --------------------------------------------------------------------------------
    @rule()
    @_steps
    def quiet_and_check(self):
        self._quiet_and_check()

    def _quiet_and_check(self) -> None:
        """Late writes land, faults are off, the seller adopts every edit, two quiet cron runs:
        then every figure is the shelf's."""
        self._apply_late_writes()
        self.sb.clear_faults()
        for provider, remote in sorted(self.edits):
            self._adopt(provider, remote)
        self.cli("sync", "--push")
        second = self.cli("sync", "--push")
        assert second.exit_code == 0, ("a quiet sync --push failed", second.output)
        self.state_note()
        counted = self.counters()
        on_hand, reserved, listed = [], [], []
        for lot in self.lots:
            shelf, open_ = self.shelf[lot.index], self.open_pieces(lot.index)
            db_on_hand, db_reserved = counted.get(lot.bin, (None, None))
            if db_on_hand != shelf:
                on_hand.append(f"lot {lot.index} ({lot.bin}): on hand {db_on_hand}, the shelf holds {shelf}")
            if db_reserved != open_:
                reserved.append(f"lot {lot.index} ({lot.bin}): reserved {db_reserved}, open orders hold {open_}")
            for provider, shown in zip(("bricklink", "brickowl"), self.listed(lot)):
                if shown != max(0, shelf - open_):
                    listed.append(f"lot {lot.index} ({lot.bin}): {provider} offers {shown}, available is "
                                  f"{max(0, shelf - open_)} (shelf {shelf} - open {open_})")
        held = [f"{provider} lot {remote} is held: {reason}" for provider, remote, reason in self.query(
            "select provider, remote_lot_id, held_reason from listings where held_at is not null")]
        check = self.cli("reserve", "--check")
        stockroom = []
        if self.w.stockroom is not None:
            room = self.sb.bricklink.get_lot(BL_STOCKROOM)
            now = room.quantity if room is not None else None
            if now != self.stockroom_quantity or room.status != "S":
                stockroom.append(f"the stockroom lot {BL_STOCKROOM} holds {now} (status "
                                 f"{room.status if room else '-'}); it held {self.stockroom_quantity}")
        everything = "\n  ".join(["the shelf is not the truth:", *on_hand, *reserved, *listed, *held, *stockroom]
                                 + ([f"reserve --check exits {check.exit_code}"] if check.exit_code else []))
        # one assertion per kind, so that hypothesis reports each kind of defect on its own
        assert not on_hand, everything
        assert not reserved, everything
        assert check.exit_code == 0, everything
        assert not stockroom, everything
        assert not listed, everything
        assert not held, everything

    def teardown(self):
        try:
            if self.clean and self.world is not None:
                self._quiet_and_check()
            assert not self.sb.errors, self.sb.errors[0]
        finally:
            self.sb.stop()
            shutil.rmtree(self.dir, ignore_errors=True)
