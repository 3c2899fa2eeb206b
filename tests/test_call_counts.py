"""What a sync costs the marketplaces (issue 7), counted on the sandbox's request log.

The fast CI version of ``python benchmarks/run.py calls`` and ``budget``: the real CLI runs
in-process against the empty sandbox, filled with ``generate_store`` or a few explicit orders.
No inventory is imported, so BrickOwl lines never need catalog lookups and every count is exact.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import Counter

import pytest

from marketsync.sandbox import generate_store

DB = "marketsync.db"
BL_LIST, BL_ITEMS, BL_ORDER = ("bricklink", "GET /orders"), ("bricklink", "GET /orders/{id}/items"), \
    ("bricklink", "GET /orders/{id}")
BO_LIST, BO_VIEW, BO_ITEMS = ("brickowl", "GET /order/list"), ("brickowl", "GET /order/view"), \
    ("brickowl", "GET /order/items")


def stored(provider: str) -> set[str]:
    with sqlite3.connect(DB) as conn:
        return {r[0] for r in conn.execute("select order_id from orders where provider = ?", [provider])}


def fetched(sb) -> Counter:
    """(provider, order id) -> how many per-order GETs it cost since the last reset_calls()."""
    counts: Counter = Counter()
    for provider, _method, path, query in list(sb.requests):
        if provider == "bricklink" and path.startswith("/orders/"):
            counts[("bricklink", path.split("/")[2], path)] += 1
        elif provider == "brickowl" and path in ("/order/view", "/order/items"):
            counts[("brickowl", query["order_id"], path)] += 1
    return counts


def fetched_ids(sb, provider: str) -> set[str]:
    return {order_id for p, order_id, _ in fetched(sb) if p == provider}


def sync(run, *args):
    result = run("sync", *args)
    assert result.exit_code == 0, result.stderr
    return result


@pytest.mark.parametrize("size", [2, 150])
def test_an_idle_run_costs_exactly_one_call_per_marketplace_at_any_store_size(creds, run, size):
    generate_store(creds, size, 3, seed=size)
    creds.reset_calls()
    sync(run)
    assert creds.calls[BL_LIST] == 2 and creds.calls[BL_ITEMS] == size  # first sync: unfiled + filed
    assert creds.calls[BO_LIST] == 1 and creds.calls[BO_VIEW] == creds.calls[BO_ITEMS] == size
    assert max(fetched(creds).values()) == 1  # nothing fetched twice

    for _ in range(2):
        creds.reset_calls()
        sync(run)
        assert dict(creds.calls) == {BL_LIST: 1, BO_LIST: 1}


def test_changed_and_new_orders_cost_exactly_their_details_and_nothing_else(creds, run):
    ids = generate_store(creds, 40, 4, seed=3)
    sync(run)

    changed_bl = [str(i) for i in ids["bricklink"][:3]]
    changed_bo = ids["brickowl"][:3]
    for order_id in changed_bl:
        status = creds.bricklink.orders[int(order_id)].status
        creds.bricklink.set_status(int(order_id), "COMPLETED" if status == "SHIPPED" else "SHIPPED")
    for order_id in changed_bo:
        status = creds.brickowl.orders[order_id].status_id
        creds.brickowl.set_status(order_id, "Received" if status == 5 else "Shipped")
    new_bl = [str(creds.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2}]))
              for _ in range(2)]
    new_bo = [creds.brickowl.add_order(status="Payment Received", lines=[{"boid": "771344-38"}]) for _ in range(2)]

    creds.reset_calls()
    sync(run)
    # BrickLink: the list carries the order row, so one items call per new or changed order.
    # BrickOwl: list + view + items per new or changed order.
    assert dict(creds.calls) == {BL_LIST: 1, BL_ITEMS: 5, BO_LIST: 1, BO_VIEW: 5, BO_ITEMS: 5}
    assert fetched_ids(creds, "bricklink") == set(changed_bl + new_bl)
    assert fetched_ids(creds, "brickowl") == set(changed_bo + new_bo)
    assert max(fetched(creds).values()) == 1
    with sqlite3.connect(DB) as conn:
        assert conn.execute("select status from orders where order_id = ?", [new_bl[0]]).fetchone() == ("paid",)

    creds.reset_calls()
    sync(run)
    assert dict(creds.calls) == {BL_LIST: 1, BO_LIST: 1}


def test_status_json_shows_the_calls_made_today(creds, run):
    generate_store(creds, 6, 2, seed=4)
    sync(run)
    sync(run)
    report = json.loads(run("status", "--json").stdout)
    today = {row["provider"]: row["calls_today"] for row in report["providers"]}
    assert today == {"bricklink": 2 + 6 + 1, "brickowl": 1 + 2 * 6 + 1}
    assert {row["provider"]: row["last_run_calls"] for row in report["providers"]} == {"bricklink": 1, "brickowl": 1}


def add_bricklink_orders(sb, run, open_count: int, closed_count: int) -> tuple[list[str], list[str]]:
    with open("inventory.csv", "w") as fh:  # a lot for the line: no unmatched-line problem on stderr
        fh.write("part_number,color_id,condition,location,quantity\n3001,11,new,A01,500\n")
    assert run("inventory", "import", "inventory.csv").exit_code == 0
    now = dt.datetime.now(dt.timezone.utc)
    line = [{"no": "3001", "color_id": 11, "quantity": 1}]
    # open orders are the oldest: only the open-first priority puts them ahead of newer closed ones
    open_ids = [str(sb.bricklink.add_order(status="PAID", lines=line, date_ordered=now - dt.timedelta(days=30 + i)))
                for i in range(open_count)]
    closed_ids = [str(sb.bricklink.add_order(status="COMPLETED", lines=line, date_ordered=now - dt.timedelta(hours=i)))
                  for i in range(closed_count)]
    return open_ids, closed_ids


def test_a_backfill_over_the_daily_budget_does_open_orders_first_stops_and_resumes(creds, run, monkeypatch):
    open_ids, closed_ids = add_bricklink_orders(creds, run, 5, 15)
    monkeypatch.setenv("BRICKLINK_DAILY_BUDGET", "11")  # 2 lists + 9 orders

    creds.reset_calls()
    first = run("sync", "--provider", "bricklink")
    assert first.exit_code == 1
    lines = first.stderr.strip().splitlines()
    assert len(lines) == 1, first.stderr
    assert "daily API budget of 11 calls used up" in lines[0] and "resumes" in lines[0]
    assert "(9 orders saved this run)" in lines[0]
    assert sum(creds.calls.values()) == 11 and creds.calls[BL_LIST] == 2
    saved = stored("bricklink")
    assert set(open_ids) <= saved and len(saved) == 9
    status = json.loads(run("status", "--json").stdout)
    assert {r["provider"]: r["calls_today"] for r in status["providers"]}["bricklink"] == 11
    assert "budget" in status["problems"][0]

    creds.reset_calls()
    again = run("sync", "--provider", "bricklink")  # the same day: refused before any call
    assert again.exit_code == 1 and "budget" in again.stderr
    assert sum(creds.calls.values()) == 0

    items = len(saved)  # the first run fetched each saved order once
    for _day, (code, saved_by_then) in enumerate([(1, 18), (0, 20)], start=2):
        with sqlite3.connect(DB) as conn:  # the next UTC day: yesterday's calls no longer count
            conn.execute("update _api_calls set day = date(day, '-1 day')")
        before = stored("bricklink")
        creds.reset_calls()
        result = run("sync", "--provider", "bricklink")
        assert result.exit_code == code, result.stderr
        assert not fetched_ids(creds, "bricklink") & before  # what is stored is never fetched again
        assert creds.calls[BL_LIST] == 2  # still a first sync: unfiled and filed
        items += creds.calls[BL_ITEMS]
        assert len(stored("bricklink")) == saved_by_then
    assert items == 20 and stored("bricklink") == set(open_ids + closed_ids)

    creds.reset_calls()
    sync(run, "--provider", "bricklink")
    assert dict(creds.calls) == {BL_LIST: 1}


def test_the_budget_counts_calls_of_earlier_runs_the_same_day(creds, run, monkeypatch):
    open_ids, closed_ids = add_bricklink_orders(creds, run, 2, 2)
    sync(run, "--provider", "bricklink")  # 2 lists + 4 items
    creds.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 1}])
    monkeypatch.setenv("BRICKLINK_DAILY_BUDGET", "7")
    creds.reset_calls()
    result = run("sync", "--provider", "bricklink")  # the list fits the budget, the new order does not
    assert result.exit_code == 1 and "daily API budget of 7 calls used up" in result.stderr
    assert dict(creds.calls) == {BL_LIST: 1}


def test_orders_fetched_before_the_budget_ran_out_are_kept_even_when_a_thread_raced_ahead():
    """A worker thread may take the last unit of budget out of priority order: whatever was
    fetched (and paid for) is still handed over, and only then does the run stop."""
    import threading

    from marketsync.errors import BudgetExhaustedError
    from marketsync.app.order_sync import fetch_in_order

    gate = threading.Event()

    def fetch(head):
        if head == 0:
            gate.wait(5)  # the first order's thread is slow: later ones take the budget first
            raise BudgetExhaustedError("bricklink", "daily API budget of 3 calls used up")
        if head == 3:
            gate.set()
        return head, []

    got, skipped = [], []
    with pytest.raises(BudgetExhaustedError):
        for order, _lines in fetch_in_order(fetch, range(4), 4, lambda head, error: skipped.append(head)):
            got.append(order)
    assert got == [1, 2, 3] and not skipped
