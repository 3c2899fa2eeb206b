"""The guarantees of `marketsync sync`: idempotent, crash-safe, no overlap, cron-friendly.

Crash and overlap tests run the installed command as cron does (``python -m marketsync`` in a
subprocess, no terminal) against the loopback sandbox, which runs in this process: its call
counters show how far a run has got. Synchronisation is always by polling a condition with a
deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from marketsync.sandbox import generate_store, write_demo_inventory_csv
from support import wait_for

DB = "marketsync.db"
BL_LIST = ("bricklink", "GET /orders")
BL_ITEMS = ("bricklink", "GET /orders/{id}/items")
BO_LIST = ("brickowl", "GET /order/list")
BO_VIEW = ("brickowl", "GET /order/view")
BO_ITEMS = ("brickowl", "GET /order/items")


# --- helpers -----------------------------------------------------------------------------------
def start(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """``python -m marketsync ARGS`` in the background, with this test's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "marketsync", *args], cwd=cwd, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )




def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)


def query(path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(path, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def snapshot(path) -> dict[str, list]:
    """Everything a sync decides, without timestamps: two equal snapshots are the same end state."""
    return {
        "inventory": query(path, "select id, part_number, color_id, condition, location, quantity, "
                                 "quantity_reserved from inventory order by id"),
        "orders": query(path, "select provider, order_id, status, provider_status, fingerprint, manual_release "
                              "from orders order by provider, order_id"),
        "lines": query(path, "select provider, order_id, line_key, inventory_id, quantity, match_method, "
                             "unmatched_reason from order_items order by provider, order_id, line_key"),
        "line_sums": query(path, "select provider, order_id, line_key, inventory_id, sum(quantity), sum(consumed) "
                                 "from reservations group by 1, 2, 3, 4 order by 1, 2, 3, 4"),
        # every ledger row, as a multiset: "exactly once" means no row more, no row less
        "ledger": sorted(query(path, "select provider, order_id, line_key, inventory_id, quantity, consumed, reason "
                                     "from reservations")),
    }


def ledger_count(path=DB) -> int:
    return query(path, "select count(*) from reservations")[0][0]


def build_store(sb, run, tmp_path, orders: int, lines: int, seed: int) -> dict[str, list]:
    """A generated store on both marketplaces (open, shipped, cancelled orders; matched and not),
    its inventory imported into ./marketsync.db and into ./reference.db, which one clean,
    uninterrupted sync brings to the expected end state: returns that state's snapshot."""
    generate_store(sb, orders, lines, seed=seed)
    inventory = write_demo_inventory_csv(tmp_path / "inventory.csv", seed=seed)
    for db in (DB, "reference.db"):
        result = run("inventory", "import", inventory, "--db", db)
        assert result.exit_code == 0, result.output
    result = run("sync", "--db", "reference.db")
    assert result.exit_code == 0, result.stderr
    check(run, "reference.db")
    reference = snapshot(tmp_path / "reference.db")
    assert len(reference["orders"]) == 2 * orders
    assert any(r[-1] == "reserve" for r in reference["ledger"])
    sb.reset_calls()
    return reference


@pytest.fixture
def store(creds, run, tmp_path):
    creds.reference = build_store(creds, run, tmp_path, 60, 5, seed=7)
    return creds


def check(run, db=DB) -> None:
    result = run("reserve", "--check", "--db", db)
    assert result.exit_code == 0, result.output


# --- idempotency -------------------------------------------------------------------------------
def test_repeated_syncs_of_an_unchanged_store_write_nothing(demo_creds, run, tmp_path):
    run("inventory", "import", write_demo_inventory_csv(tmp_path / "inv.csv"))
    run("sync")
    check(run)
    first = snapshot(tmp_path / DB)
    assert first["ledger"]
    synced = dict(query(DB, "select provider, last_synced_at from sync_state"))
    for _ in range(3):
        demo_creds.reset_calls()
        result = run("sync")
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""  # problems were reported when they appeared
        assert snapshot(tmp_path / DB) == first
        assert dict(demo_creds.calls) == {BL_LIST: 1, BO_LIST: 1}
        check(run)
    assert query(DB, "select max(id) from reservations") == [(len(first["ledger"]),)]
    now = dict(query(DB, "select provider, last_synced_at from sync_state"))
    assert set(now) == {"bricklink", "brickowl"} and all(now[p] >= synced[p] for p in now)


def test_full_resync_rereads_everything_yet_writes_nothing(demo_creds, run, tmp_path):
    run("inventory", "import", write_demo_inventory_csv(tmp_path / "inv.csv"))
    run("sync")
    before = snapshot(tmp_path / DB)
    demo_creds.reset_calls()
    result = run("sync", "--full")
    assert result.exit_code == 0, result.stderr
    assert demo_creds.calls[BL_LIST] == 2  # unfiled and filed
    assert snapshot(tmp_path / DB) == before


def test_steady_state_costs_one_call_per_marketplace_and_changes_cost_their_details(store, run):
    run("sync")
    store.reset_calls()
    run("sync")
    assert dict(store.calls) == {BL_LIST: 1, BO_LIST: 1}

    bl_open = [int(o) for (o,) in query(DB, "select order_id from orders where provider = 'bricklink' "
                                            "and status in ('paid', 'pending', 'processing') limit 3")]
    bo_open = [o for (o,) in query(DB, "select order_id from orders where provider = 'brickowl' "
                                       "and status in ('paid', 'pending', 'processing') limit 2")]
    for order_id in bl_open:
        store.bricklink.set_status(order_id, "PACKED")
    for order_id in bo_open:
        store.brickowl.set_status(order_id, "Processed")
    store.reset_calls()
    result = run("sync")
    assert result.exit_code == 0, result.stderr
    assert dict(store.calls) == {BL_LIST: 1, BL_ITEMS: 3, BO_LIST: 1, BO_VIEW: 2, BO_ITEMS: 2}
    assert query(DB, "select count(*) from orders where status = 'packed' and order_id in (%s)"
                 % ",".join("?" * 5), [*map(str, bl_open), *bo_open]) == [(5,)]
    calls = dict(query(DB, "select provider, last_run_calls from sync_state"))
    assert calls == {"bricklink": 4, "brickowl": 5}

    store.reset_calls()
    run("sync")
    assert dict(store.calls) == {BL_LIST: 1, BO_LIST: 1}


def test_random_store_edits_each_sync_once_and_a_second_sync_writes_nothing(creds, run, tmp_path):
    """A random walk of status changes and edits; after every step the ledger checks out and an
    immediate second sync changes nothing."""
    generate_store(creds, 12, 3, seed=11, open_fraction=0.8)
    run("inventory", "import", write_demo_inventory_csv(tmp_path / "inv.csv", seed=11))
    run("sync")
    rng = random.Random(2024)
    bl, bo = creds.bricklink, creds.brickowl
    bl_statuses = ["PENDING", "PAID", "PACKED", "SHIPPED", "COMPLETED", "CANCELLED", "NPB", "HOLDING"]
    bo_statuses = ["Pending", "Payment Received", "Processing", "Processed", "Shipped", "Received", "Cancelled"]
    for step in range(12):
        for _ in range(3):
            if rng.random() < 0.5:
                order = bl.orders[rng.choice(sorted(bl.orders))]
                if rng.random() < 0.6:
                    bl.set_status(order.order_id, rng.choice(bl_statuses))
                elif order.lines:
                    with bl.lock:
                        line = rng.choice(order.lines)
                        line["quantity"] = rng.randint(1, 6)
            else:
                order_id = rng.choice(sorted(bo.orders))
                if rng.random() < 0.6:
                    bo.set_status(order_id, rng.choice(bo_statuses))
                else:
                    lines = [dict(line) for line in bo.orders[order_id].lines]
                    if lines and rng.random() < 0.5:
                        lines.pop(rng.randrange(len(lines)))
                    elif lines:
                        rng.choice(lines)["ordered_quantity"] = rng.randint(1, 6)
                    bo.set_lines(order_id, lines)
        result = run("sync")
        assert result.exit_code == 0, result.stderr
        check(run)
        after = snapshot(tmp_path / DB)
        creds.reset_calls()
        again = run("sync")
        assert again.exit_code == 0 and again.stderr == ""
        assert snapshot(tmp_path / DB) == after, f"step {step}: a second sync changed something"
        assert dict(creds.calls) == {BL_LIST: 1, BO_LIST: 1}
    shipped = query(DB, "select count(*) from reservations where reason = 'shipped'")[0][0]
    assert shipped > 0  # the walk did exercise consumption


# --- crash safety ------------------------------------------------------------------------------
def assert_whole_orders(now: dict, reference: dict) -> None:
    """Every stored order has exactly the lines and ledger rows the uninterrupted run gave it."""
    def by_order(rows):
        grouped: dict[tuple, list] = {}
        for row in rows:
            grouped.setdefault(row[:2], []).append(row)
        return grouped

    lines, ledger = by_order(reference["lines"]), by_order(reference["ledger"])
    now_lines, now_ledger = by_order(now["lines"]), by_order(now["ledger"])
    for provider, order_id, *_ in now["orders"]:
        key = (provider, order_id)
        assert now_lines.get(key, []) == lines.get(key, []), key
        assert sorted(now_ledger.get(key, [])) == sorted(ledger.get(key, [])), key
    stored = {row[:2] for row in now["orders"]}
    assert all(row[:2] in stored for row in now["ledger"])


ORDERS = 250  # per marketplace: BrickLink commits after 100, 200 and 250 orders, BrickOwl too


@pytest.mark.heavy
def test_kill_9_at_random_points_then_one_more_run_equals_an_uninterrupted_run(creds, run, tmp_path):
    reference = build_store(creds, run, tmp_path, ORDERS, 2, seed=5)
    rng = random.Random(7)
    orders = lambda: query(DB, "select count(*) from orders")[0][0]  # noqa: E731
    plan = ["start", "commit", "calls", "commit", "hang", "commit", "calls", "calls", "commit", "calls"]
    seen = []  # (how, orders in the database after the kill)
    for how in plan:
        creds.reset_calls()
        before = orders()
        if how == "hang":  # a wide window: hung on a BrickOwl order view, BrickLink finished
            creds.inject("brickowl", "GET /order/view", "hang", seconds=60)
        proc = start("sync", cwd=tmp_path)
        if how == "start":  # as early as we can: while Python starts or the database opens
            pass
        elif how == "commit":  # right after this run committed a batch of orders
            wait_for(lambda: proc.poll() is not None or orders() > before, what="a commit")  # noqa: B023
        elif how == "hang":
            wait_for(lambda: creds.calls[BO_VIEW] >= 1 or proc.poll() is not None,  # noqa: B023
                     what="the hung BrickOwl view")
        else:  # anywhere: after a random number of API calls
            target = rng.randint(1, 300)
            wait_for(lambda: proc.poll() is not None or sum(creds.calls.values()) >= target,  # noqa: B023
                     what="API calls")
        kill(proc)
        creds.clear_faults()
        check(run)  # consistent whatever the instant
        assert_whole_orders(snapshot(tmp_path / DB), reference)
        seen.append((how, orders()))

    counts = [n for _, n in seen]
    assert counts == sorted(counts)  # nothing committed is ever lost
    assert len(set(counts)) >= 4, f"the kills landed at too few distinct points: {seen}"
    assert counts[0] < ORDERS and any(ORDERS <= n < 2 * ORDERS for n in counts), seen
    result = run("sync")
    assert result.exit_code == 0, result.stderr
    check(run)
    assert snapshot(tmp_path / DB) == reference  # every order, line and ledger row exactly once

    creds.reset_calls()
    run("sync")
    assert dict(creds.calls) == {BL_LIST: 1, BO_LIST: 1}


# --- no overlap --------------------------------------------------------------------------------
@pytest.fixture
def hung_sync(creds, run, tmp_path):
    """A synced store with new work, and a sync subprocess holding the lock while it hangs on
    BrickLink's order list."""
    creds.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2}])
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A1,10\n")
    run("inventory", "import", tmp_path / "inv.csv")
    assert run("sync").exit_code == 0
    creds.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 3}])
    creds.reset_calls()
    creds.inject("bricklink", "GET /orders", "hang", seconds=300)  # woken when the sandbox stops
    proc = start("sync", cwd=tmp_path, env={"MARKETSYNC_HTTP_TIMEOUT": "300"})
    # both marketplaces are asked at once: BrickOwl (nothing new) is done while BrickLink hangs
    wait_for(lambda: creds.calls[BL_LIST] >= 1 and creds.calls[BO_LIST] >= 1, what="the hung sync", proc=proc)
    yield proc
    kill(proc)


def test_second_sync_while_one_runs_exits_75_with_one_line(hung_sync, creds, run, tmp_path):
    ledger = ledger_count()
    calls = sum(creds.calls.values())

    result = run("sync", "--wait", "0")

    assert result.exit_code == 75
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: another marketsync run (pid {hung_sync.pid}) is writing to {DB}; try again later"
    ]
    assert ledger_count() == ledger
    assert sum(creds.calls.values()) == calls  # it never even asked a marketplace
    assert hung_sync.poll() is None
    assert (tmp_path / f"{DB}.lock").read_text().strip() == str(hung_sync.pid)  # the lock is beside the database


def test_second_sync_waits_up_to_wait_seconds(hung_sync, run):
    started = time.monotonic()
    result = run("sync", "--wait", "0.5")
    waited = time.monotonic() - started
    assert result.exit_code == 75
    assert 0.5 <= waited < 10


def test_other_writers_are_refused_too_while_a_sync_runs(hung_sync, run, tmp_path):
    assert run("reserve", "--wait", "0").exit_code == 75
    assert run("reserve", "--release", f"bricklink:{query(DB, 'select order_id from orders')[0][0]}", "--yes",
               "--wait", "0").exit_code == 75
    assert run("inventory", "import", tmp_path / "inv.csv", "--wait", "0").exit_code == 75
    assert query(DB, "select quantity_reserved from inventory") == [(2,)]


def test_reads_keep_working_during_a_sync(hung_sync, run):
    order_id = query(DB, "select order_id from orders")[0][0]
    orders = run("orders", "--json")
    assert orders.exit_code == 0 and f'"{order_id}"' in orders.stdout
    assert run("orders", "show", f"bricklink:{order_id}").exit_code == 0
    assert run("status", "--json").exit_code == 0
    assert run("reserve", "--check").exit_code == 0
    assert run("reserve", "--ledger").exit_code == 0
    assert run("inventory", "list").exit_code == 0
    assert hung_sync.poll() is None


def test_orders_watch_keeps_showing_orders_and_picks_up_the_sync_when_it_lands(hung_sync, creds, run, tmp_path):
    import pty
    import select

    stored = query(DB, "select order_id from orders")[0][0]
    new = str(max(creds.bricklink.orders))
    primary, secondary = pty.openpty()  # --watch is for a terminal
    watch = subprocess.Popen(
        [sys.executable, "-m", "marketsync", "orders", "--watch", "--interval", "0.2"], cwd=tmp_path,
        stdin=secondary, stdout=secondary, stderr=secondary, env={**os.environ, "COLUMNS": "160"},
    )
    os.close(secondary)
    screen = bytearray()

    def shows(text: str) -> bool:
        while select.select([primary], [], [], 0)[0]:
            try:
                screen.extend(os.read(primary, 65536))
            except OSError:
                break
        return text.encode() in screen

    try:
        wait_for(lambda: shows(stored), what="the stored order on the watch screen", proc=watch)
        assert not shows(new)
        kill(hung_sync)
        creds.clear_faults()
        assert run("sync", "--wait", "0").exit_code == 0
        wait_for(lambda: shows(new), what="the newly synced order on the watch screen", proc=watch)
        watch.send_signal(signal.SIGINT)  # Ctrl-C ends it cleanly
        assert watch.wait(timeout=10) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        os.close(primary)


def test_check_during_a_running_sync_never_sees_half_an_order(store, run, tmp_path):
    """`reserve --check` takes no lock: whatever a concurrent sync has committed so far, it must
    read one consistent state."""
    proc = start("sync", "--concurrency", "1", cwd=tmp_path)
    checks_while_running = 0
    while proc.poll() is None:
        result = run("reserve", "--check")
        assert result.exit_code == 0, result.output
        checks_while_running += proc.poll() is None
    assert proc.returncode == 0, proc.communicate()[1]
    assert checks_while_running >= 1
    assert snapshot(tmp_path / DB) == store.reference


def test_lock_is_free_again_after_the_holder_is_killed(hung_sync, creds, run):
    kill(hung_sync)
    creds.clear_faults()
    result = run("sync", "--wait", "0")
    assert result.exit_code == 0, result.stderr
    assert query(DB, "select quantity_reserved from inventory") == [(5,)]
    check(run)


def test_a_waiting_sync_runs_after_the_first_and_finds_nothing_to_do(creds, run, tmp_path):
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A1,10\n")
    run("inventory", "import", tmp_path / "inv.csv")
    creds.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2}])
    creds.inject("bricklink", "GET /orders/{id}/items", "hang", seconds=1)
    first = start("sync", cwd=tmp_path)
    wait_for(lambda: creds.calls[BL_ITEMS] >= 1, what="the first sync to hang", proc=first)
    second = start("sync", "--wait", "30", cwd=tmp_path)
    out2, err2 = second.communicate(timeout=30)
    out1, err1 = first.communicate(timeout=30)
    assert (first.returncode, out1, err1) == (0, "", "")
    assert (second.returncode, out2, err2) == (0, "", "")
    assert query(DB, "select quantity, quantity_reserved from inventory") == [(10, 2)]
    assert ledger_count() == 1
    assert creds.calls[BL_ITEMS] == 1  # the second run saw the order already stored


def test_three_concurrent_syncs_equal_one(store, tmp_path, run):
    procs = [start("sync", "--wait", "30", cwd=tmp_path) for _ in range(3)]
    results = [(p.communicate(timeout=60), p.returncode) for p in procs]
    for (out, err), code in results:
        assert code == 0, err
        assert out == ""
    check(run)
    assert snapshot(tmp_path / DB) == store.reference
    # one run did the work; the others listed once per marketplace and stopped
    assert store.calls[BL_LIST] == 2 + 1 + 1
    assert store.calls[BO_LIST] == 3


# --- cron-friendliness -------------------------------------------------------------------------
def test_clean_run_off_a_terminal_prints_nothing(creds, run, proc, tmp_path):
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A1,10\n")
    assert proc("inventory", "import", "inv.csv").stderr == ""
    creds.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2}])
    for _ in range(2):
        result = proc("sync")
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert query(DB, "select quantity_reserved from inventory") == [(2,)]


def test_problems_print_one_line_each_to_stderr(creds, proc, tmp_path):
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A1,1\n")
    proc("inventory", "import", "inv.csv")
    order_id = creds.bricklink.add_order(status="PAID", lines=[
        {"no": "3001", "color_id": 11, "quantity": 2, "remarks": "A1"},
        {"no": "3626", "color_id": 11, "quantity": 1},
        {"no": "3626", "color_id": 5, "quantity": 1},
    ])  # fmt: skip
    result = proc("sync")
    assert result.returncode == 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 3, lines
    assert sum(f"bricklink order {order_id}: line" in line and "unmatched" in line for line in lines) == 2
    assert sum(line.startswith("oversold: lot 1 ") for line in lines) == 1


def test_exit_codes(creds, proc, tmp_path, monkeypatch):
    assert proc("sync").returncode == 0
    creds.inject("brickowl", "GET /order/list", "auth_in_200")
    failed = proc("sync")
    assert failed.returncode == 1
    assert failed.stdout == "" and len(failed.stderr.splitlines()) == 1 and "brickowl" in failed.stderr
    assert proc("sync", "--concurrency", "99").returncode == 2
    assert proc("sync", "--no-such-option").returncode == 2
    for name in [n for n in os.environ if n.startswith(("BRICKLINK_", "BRICKOWL_"))]:
        monkeypatch.delenv(name)
    no_creds = proc("sync")
    assert no_creds.returncode == 2 and len(no_creds.stderr.splitlines()) == 1


def test_a_lock_file_that_cannot_be_created_is_no_temporary_failure(creds, run, tmp_path):
    """Exit 75 tells cron "another sync is running, try later"; a path that can never work is an error."""
    result = run("sync", "--db", tmp_path / "no-such-dir" / "shop.db")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1 and "no-such-dir" in result.stderr
