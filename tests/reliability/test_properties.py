"""Property-based: random histories of marketplace events, every invariant after every step.

Hypothesis drives a state machine over both emulated marketplaces and the real CLI. Each
example starts from an empty store and a fresh database holding a small inventory, then plays a
random sequence of: a new order (either marketplace, any status, a few lines), a status change,
an edit (a batch added, a line removed, a quantity changed), a cancellation, a shipment, an
inventory import with new on-hand counts, a hand release, ``sync`` and ``reserve``.

After every step:
* ``marketsync reserve --check`` passes (every ledger invariant);
* each lot's on-hand count is its last imported count minus the pieces its ledger rows shipped
  since, never below 0, and minus the pieces a shipment taken back made up of a shipment that
  lacked them (so a shipment is taken off the shelf exactly once, never silently);
* no order ever consumed more pieces than it ever held.
After every ``sync``: every order the marketplaces hold is in the database with its current status
(nothing lost), and a second ``sync`` changes nothing and writes no ledger row (idempotent).
After every ``reserve``: a second ``reserve`` writes nothing.

CI runs a fixed, derandomised set of examples (``MAX_EXAMPLES`` x up to ``STEPS`` steps);
``MARKETSYNC_PROPERTY_EXAMPLES`` asks for more locally.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
import pytest

from marketsync.providers.bricklink import unified_status as bricklink_status
from marketsync.providers.brickowl import unified_status as brickowl_status
from marketsync.sandbox import Sandbox
from marketsync.sandbox.brickowl import STATUSES as BO_STATUSES
from marketsync.sandbox.colors import colors

from .helpers import invoke, query, report, snapshot

MAX_EXAMPLES = int(os.environ.get("MARKETSYNC_PROPERTY_EXAMPLES", "60"))
STEPS = 20
EVENTS = ("new order", "status change", "edit", "cancel", "ship", "inventory import", "release", "sync", "reserve")

LOTS = [  # part, BrickLink colour, condition, bin, first on-hand count
    ("3001", 11, "new", "A01", 10),
    ("3001", 11, "new", "A02", 4),  # the same part in a second bin
    ("3003", 5, "new", "B01", 6),
    ("3020", 11, "used", "C01", 3),
    ("3069b", 1, "new", "", 8),  # no bin at all
]
BL_STATUSES = ("PENDING", "PAID", "PROCESSING", "PACKED", "NPB", "SHIPPED", "COMPLETED", "CANCELLED", "PURGED",
               "HOLDING")  # HOLDING: a status nobody has seen before
PLAYED: Counter = Counter()  # events played in this process, by kind (checked, and quoted by figures.py)
LINE = st.tuples(st.integers(0, len(LOTS)), st.integers(1, 6))  # lot index (len(LOTS): a part not stocked), pieces


class Marketplaces(RuleBasedStateMachine):
    sb: Sandbox  # set by the test

    def __init__(self):
        super().__init__()
        sb = self.sb
        sb.clear_faults()
        sb.bricklink.orders.clear()
        sb.brickowl.orders.clear()
        self.dir = Path(tempfile.mkdtemp(prefix="marketsync-prop-"))
        self.db = self.dir / "ms.db"
        self.env = sb.env()
        self.orders: dict[str, list] = {"bricklink": [], "brickowl": []}
        self.max_pieces: dict[tuple[str, str], int] = {}
        self.marks: dict[int, tuple[int, int]] = {}  # lot id -> (last ledger id at its import, count imported)
        self._import([lot[4] for lot in LOTS])

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------------
    def cli(self, *args):
        return invoke(*args, "--db", self.db, env=self.env)

    def _import(self, counts):
        path = self.dir / "stock.csv"
        rows = ["part_number,color_id,condition,location,quantity"]
        rows += [f"{p},{c},{cond},{loc},{n}" for (p, c, cond, loc, _), n in zip(LOTS, counts)]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        result = invoke("inventory", "import", path, "--db", self.db, env=self.env)
        assert result.exit_code == 0, result.output
        last = query(self.db, "select coalesce(max(id), 0) from reservations")[0][0]
        for lot_id, count in query(self.db, "select id, quantity from inventory"):
            self.marks[lot_id] = (last, count)

    def _bl_line(self, lot_index, pieces):
        if lot_index == len(LOTS):
            return {"no": "9999", "color_id": 11, "quantity": pieces, "remarks": "Z99"}
        part, color, cond, loc, _ = LOTS[lot_index]
        return {"no": part, "color_id": color, "new_or_used": "N" if cond == "new" else "U", "quantity": pieces,
                "remarks": loc}

    def _bo_line(self, lot_index, pieces):
        part, color, cond, loc, _ = LOTS[lot_index] if lot_index < len(LOTS) else ("9999", 11, "new", "Z99", 0)
        bo_color = colors().bl_to_bo(color)
        return {"boid": f"{800000 + int(part[:4])}-{bo_color}", "color_id": bo_color, "ordered_quantity": pieces,
                "full_con": "new" if cond == "new" else "usedg", "personal_note": loc,
                "ids": [{"id": part, "type": "ldraw"}]}

    def _pieces(self, provider, order_id) -> int:
        if provider == "bricklink":
            return sum(int(line["quantity"]) for line in self.sb.bricklink.orders[order_id].lines)
        return sum(int(line["ordered_quantity"]) for line in self.sb.brickowl.orders[order_id].lines)

    def _touched(self, provider, order_id):
        key = (provider, str(order_id))
        self.max_pieces[key] = max(self.max_pieces.get(key, 0), self._pieces(provider, order_id))

    def _ledger_rows(self) -> int:
        return query(self.db, "select count(*) from reservations")[0][0]

    # -- marketplace events ---------------------------------------------------------------------
    @rule(provider=st.sampled_from(("bricklink", "brickowl")), status=st.integers(0, 9),
          lines=st.lists(LINE, min_size=1, max_size=3))
    def new_order(self, provider, status, lines):
        PLAYED["new order"] += 1
        if provider == "bricklink":
            order_id = self.sb.bricklink.add_order(status=BL_STATUSES[status % len(BL_STATUSES)],
                                                   lines=[self._bl_line(*l) for l in lines])
        else:
            order_id = self.sb.brickowl.add_order(status=status % len(BO_STATUSES),
                                                  lines=[self._bo_line(*l) for l in lines])
        self.orders[provider].append(order_id)
        self._touched(provider, order_id)

    def _pick(self, data, provider):
        return data.draw(st.sampled_from(self.orders[provider]))

    @precondition(lambda self: self.orders["bricklink"] or self.orders["brickowl"])
    @rule(data=st.data(), status=st.integers(0, 9))
    def status_change(self, data, status):
        PLAYED["status change"] += 1
        provider = data.draw(st.sampled_from([p for p in self.orders if self.orders[p]]))
        order_id = self._pick(data, provider)
        if provider == "bricklink":
            self.sb.bricklink.set_status(order_id, BL_STATUSES[status % len(BL_STATUSES)])
        else:
            self.sb.brickowl.set_status(order_id, status % len(BO_STATUSES))

    @precondition(lambda self: self.orders["bricklink"] or self.orders["brickowl"])
    @rule(data=st.data(), kind=st.sampled_from(("add", "remove", "quantity")), line=LINE)
    def edit(self, data, kind, line):
        PLAYED["edit"] += 1
        provider = data.draw(st.sampled_from([p for p in self.orders if self.orders[p]]))
        order_id = self._pick(data, provider)
        if provider == "bricklink":
            store, order = self.sb.bricklink, self.sb.bricklink.orders[order_id]
            present = [(b, l) for b, batch in enumerate(order.batches, 1) for l in batch]
            if kind == "add" or not present:
                store.add_batch(order_id, [self._bl_line(*line)])
            elif kind == "remove":
                batch, victim = data.draw(st.sampled_from(present))
                store.remove_line(order_id, batch, victim["inventory_id"])
            else:
                _, target = data.draw(st.sampled_from(present))
                target["quantity"] = target["quantity"] + line[1]
        else:
            store, order = self.sb.brickowl, self.sb.brickowl.orders[order_id]
            current = [dict(l) for l in order.lines]
            if kind == "add" or not current:
                current.append(self._bo_line(*line))
            elif kind == "remove":
                current.pop(data.draw(st.integers(0, len(current) - 1)))
            else:
                index = data.draw(st.integers(0, len(current) - 1))
                current[index]["ordered_quantity"] = int(current[index]["ordered_quantity"]) + line[1]
            store.set_lines(order_id, current)
        self._touched(provider, order_id)

    @precondition(lambda self: self.orders["bricklink"] or self.orders["brickowl"])
    @rule(data=st.data())
    def cancel(self, data):
        PLAYED["cancel"] += 1
        provider = data.draw(st.sampled_from([p for p in self.orders if self.orders[p]]))
        order_id = self._pick(data, provider)
        store = self.sb.bricklink if provider == "bricklink" else self.sb.brickowl
        store.set_status(order_id, "CANCELLED" if provider == "bricklink" else "Cancelled")

    @precondition(lambda self: self.orders["bricklink"] or self.orders["brickowl"])
    @rule(data=st.data())
    def ship(self, data):
        PLAYED["ship"] += 1
        provider = data.draw(st.sampled_from([p for p in self.orders if self.orders[p]]))
        order_id = self._pick(data, provider)
        store = self.sb.bricklink if provider == "bricklink" else self.sb.brickowl
        store.set_status(order_id, "SHIPPED" if provider == "bricklink" else "Shipped")

    @rule(counts=st.lists(st.integers(0, 12), min_size=len(LOTS), max_size=len(LOTS)))
    def inventory_import(self, counts):
        PLAYED["inventory import"] += 1
        self._import(counts)

    @precondition(lambda self: self.orders["bricklink"] or self.orders["brickowl"])
    @rule(data=st.data())
    def release(self, data):
        PLAYED["release"] += 1
        provider = data.draw(st.sampled_from([p for p in self.orders if self.orders[p]]))
        order_id = str(self._pick(data, provider))
        held = query(self.db, "select 1 from orders where provider = ? and order_id = ?", [provider, order_id])
        result = self.cli("reserve", "--release", f"{provider}:{order_id}", "--yes")
        assert result.exit_code == (0 if held else 1), result.output

    # -- marketsync ------------------------------------------------------------------------------
    @rule()
    def sync(self):
        PLAYED["sync"] += 1
        result = self.cli("sync")
        assert result.exit_code == 0, result.stderr
        for provider, ids in self.orders.items():  # nothing lost: every order, with its current status
            for order_id in ids:
                if provider == "bricklink":
                    expected = bricklink_status(self.sb.bricklink.orders[order_id].status)
                else:
                    expected = brickowl_status(self.sb.brickowl.orders[order_id].status)
                rows = query(self.db, "select status from orders where provider = ? and order_id = ?",
                             [provider, str(order_id)])
                assert rows == [(expected,)], (provider, order_id, rows, expected)
        before, rows = snapshot(self.db), self._ledger_rows()
        again = self.cli("sync")
        assert again.exit_code == 0, again.stderr
        assert self._ledger_rows() == rows, "a second sync of unchanged marketplaces wrote ledger rows"
        assert snapshot(self.db) == before

    @rule()
    def reserve(self):
        PLAYED["reserve"] += 1
        result = self.cli("reserve")
        assert result.exit_code == 0, result.stderr
        rows = self._ledger_rows()
        again = self.cli("reserve")
        assert again.exit_code == 0 and again.stdout == "", again.stdout
        assert self._ledger_rows() == rows

    # -- after every step --------------------------------------------------------------------------
    @invariant()
    def every_ledger_invariant_holds(self):
        result = self.cli("reserve", "--check")
        assert result.exit_code == 0, result.stdout

    @invariant()
    def shipped_pieces_leave_the_shelf_exactly_once(self):
        for lot_id, (mark, count) in self.marks.items():
            expected = count
            for consumed, taken, reason in query(self.db, "select consumed, taken, reason from reservations "
                                                          "where inventory_id = ? and id > ? order by id", [lot_id, mark]):
                # a shipment's shortfall made up by a shipment taken back: those pieces left with it
                expected = expected - taken if reason == "made-up" else max(0, expected - consumed)
            actual = query(self.db, "select quantity from inventory where id = ?", [lot_id])[0][0]
            assert actual == expected, f"lot {lot_id}: {actual} on hand, the ledger says {expected}"

    @invariant()
    def no_order_ships_more_than_it_ever_held(self):
        for provider, order_id, consumed in query(
                self.db, "select provider, order_id, sum(consumed) from reservations group by provider, order_id"):
            assert consumed <= self.max_pieces.get((provider, order_id), 0), (provider, order_id, consumed)


@pytest.mark.heavy
def test_random_marketplace_histories_keep_every_invariant():
    with Sandbox() as sb:
        sb.brickowl.rate_limit = None
        Marketplaces.sb = sb
        run_state_machine_as_test(Marketplaces, settings=settings(
            max_examples=MAX_EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], database=None,
        ))
        assert not sb.errors, sb.errors[0]
    report("properties", {"examples": MAX_EXAMPLES, "max_steps": STEPS, "played": dict(PLAYED)})
    assert set(PLAYED) == set(EVENTS), PLAYED  # every kind of event really was played
    assert PLAYED["sync"] >= MAX_EXAMPLES, PLAYED
