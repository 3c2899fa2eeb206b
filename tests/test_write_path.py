"""OrderWriter's batched write (a few statements per batch) leaves exactly what writing the same
orders one by one leaves: lines, ledger rows, lot counters, problems; a bad order still only
skips itself."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from marketsync.app import catalog
from marketsync.config import HttpSettings
from marketsync.store import open_store
from marketsync.store.inventory import lot_index, upsert_lots
from marketsync.app.translate import Translator
from marketsync.providers import build_adapter
from marketsync.providers.http import CallCounter
from marketsync.sandbox import demo_inventory_rows, generate_store
from marketsync.model import InventoryLot
from marketsync.app.order_sync import OrderWriter, ProviderResult

VOLATILE = {"synced_at", "first_seen_at", "created_at", "updated_at"}


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    """Forty orders per marketplace (8 lines, a third open) fetched once from the sandbox."""
    from marketsync.sandbox import Sandbox

    with Sandbox() as sb:
        sb.brickowl.rate_limit = None
        generate_store(sb, 40, 8, seed=5, open_fraction=0.4)
        env = sb.env()
        store = open_store(tmp_path_factory.mktemp("fetch") / "fetch.db", "default")
        db = store.db
        with db.atomic():
            upsert_lots(store, [InventoryLot(**row) for row in demo_inventory_rows(5)])
        index = lot_index(store)
        orders = []
        for provider in ("bricklink", "brickowl"):
            adapter = build_adapter(provider, HttpSettings(brickowl_rate_limit=None, retries=0), environ=env)
            translator = Translator(catalog.known(store), index, adapter) if provider == "brickowl" else None
            for head in adapter.list_for_sync(first=True, open_ids=set(), since=None).summaries:
                order, lines = adapter.fetch(head)
                if translator:
                    translator.translate(lines)
                orders.append((order, lines))
    return orders


def database(tmp_path, name):
    store = open_store(tmp_path / name, "default")
    with store.atomic():
        upsert_lots(store, [InventoryLot(**row) for row in demo_inventory_rows(5)])
    return store


def write(db, orders, batched: bool) -> list[str]:
    result = ProviderResult("test")
    writer = OrderWriter(db, lot_index(db), result, CallCounter())
    with db.atomic():
        if batched:
            problems = writer.write_all([(o, copy.deepcopy(l)) for o, l in orders])
        else:
            problems = [p for o, l in orders for p in writer.write_or_skip([(o, copy.deepcopy(l))])]
    return problems + [f"skipped {result.skipped}"]


def dump(db) -> dict:
    tables = {}
    for table in ("orders", "order_items", "reservations", "inventory"):
        # a line's rowid is not kept across runs (its lines are replaced): compare lines in order
        key, drop = ("order_ref, id", {"id"}) if table == "order_items" else ("id", set())
        rows = [{k: v for k, v in row.items() if k not in VOLATILE | drop}
                for row in db.db.query(f"select * from {table} order by {key}")]
        tables[table] = rows
    return tables


def with_status(orders, change: dict[str, str]):
    return [(dataclasses.replace(o, status=change.get(o.status, o.status)), l) for o, l in orders]


def test_a_batch_writes_what_order_by_order_writes(fetched, tmp_path):
    one_by_one, batched = database(tmp_path, "a.db"), database(tmp_path, "b.db")
    assert write(batched, fetched, True) == write(one_by_one, fetched, False)
    assert dump(batched) == dump(one_by_one)
    assert dump(batched)["reservations"]  # the comparison did cover ledger rows

    # a later run: open orders ship or are cancelled, shipped ones complete (holdings, consumption)
    later = with_status(fetched, {"paid": "shipped", "pending": "cancelled", "processing": "shipped",
                                  "packed": "completed", "shipped": "completed"})
    assert write(batched, later, True) == write(one_by_one, later, False)
    assert dump(batched) == dump(one_by_one)


def test_a_bad_order_in_a_batch_skips_only_itself(fetched, tmp_path):
    orders = list(fetched[:10])
    bad_order, bad_lines = orders[3]
    bad_lines = copy.deepcopy(bad_lines)
    bad_lines[0].quantity = None  # order_items.quantity is NOT NULL: the batch insert fails
    orders[3] = (bad_order, bad_lines)
    db = database(tmp_path, "c.db")
    problems = write(db, orders, True)
    assert problems[-1] == "skipped 1"
    assert any(f"order {bad_order.order_id} could not be stored" in p for p in problems)
    stored = {r["order_id"] for r in db.db.query("select order_id from orders")}
    assert stored == {o.order_id for o, _ in orders} - {bad_order.order_id}
    reserved = db.db.execute("select coalesce(sum(quantity), 0) from reservations").fetchone()[0]
    assert reserved == db.db.execute("select sum(quantity_reserved) from inventory").fetchone()[0]


def test_payloads_serialised_for_the_writer_are_held_once_and_written_as_they_were(fetched, tmp_path):
    """Serialised in the fetching thread, an order's payload dicts are let go: an order waiting for
    the writer holds its payloads as text only, and that text is what is stored."""
    from marketsync.store.orders import serialise_payloads, to_json

    order, lines = copy.deepcopy(fetched[0])
    expected = to_json(order.raw), [to_json(line.raw) for line in lines]
    assert order.raw and all(line.raw for line in lines)
    serialise_payloads(order, lines)
    assert order.raw == {} and all(line.raw == {} for line in lines)
    assert (order.raw_json, [line.raw_json for line in lines]) == expected
    db = database(tmp_path, "held-once.db")
    write(db, [(order, lines)], batched=False)
    assert [row["raw"] for row in db.db.query("select raw from orders")] == [expected[0]]
    assert [row["raw"] for row in db.db.query("select raw from order_items order by id")] == expected[1]


def test_a_sync_holds_the_collector_back_while_it_writes_and_leaves_it_as_it_was(tmp_path, monkeypatch):
    """The cycle collector walks every object alive now and then: a backfill's orders are freed by
    reference counting, so the run pauses it, collecting young cycles after each batch."""
    import gc

    from marketsync.app import order_sync
    from marketsync.sandbox import Sandbox

    states = []
    flush = OrderWriter.flush

    def recording_flush(self):
        states.append(gc.isenabled())
        flush(self)

    monkeypatch.setattr(OrderWriter, "flush", recording_flush)
    with Sandbox() as sb:
        generate_store(sb, 5, 3, seed=5, open_fraction=0.4)
        store = database(tmp_path, "paused.db")
        adapter = build_adapter("bricklink", HttpSettings(retries=0), environ=sb.env())
        assert gc.isenabled()
        result = order_sync.sync_provider(store, adapter, counter=CallCounter(), index=lot_index(store))
    assert result.ok and result.written == 5
    assert states and not any(states)  # every batch written with the collector held back
    assert gc.isenabled()
