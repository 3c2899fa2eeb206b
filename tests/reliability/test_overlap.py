"""Overlap: concurrent syncs, other writers, readers during a sync. Nothing doubles.

Every writer is a real ``python -m marketsync`` process; the sandbox runs in this process, so its
call counters and the lock file show how far a run has got. Synchronisation is by polling a
condition with a deadline, never by sleeping.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from marketsync.store.lock import lock_path

from .helpers import assert_invariants, diff, error_lines, ledger_count, query, report, snapshot, start, wait_for

LATENCY = 0.01  # per answer: a sync of the demo store then takes about a second
HOLD = 2.0  # the first list call of the holder hangs this long: the lock is certainly held meanwhile

# (what runs concurrently, --wait of the latecomers) -> the exit codes expected
CONCURRENT_SYNC_CASES = [(2, "0"), (3, "0"), (2, "30"), (3, "30")]
SIMULTANEOUS_CASES = [2, 3]
MIXED_WRITERS = ["sync", "reserve", "inventory import", "map"]
ALIASED_SYNCS = 2  # two paths (a symlink) to one database
OTHER_CONCURRENT = 2  # the sync under the readers, the sync committing between reserve --check's queries
READERS = [("orders", "--json"), ("status", "--json"), ("reserve", "--check"), ("inventory", "list", "--json"),
           ("reserve", "--ledger", "--json")]


def slow(sb) -> None:
    for provider in ("bricklink", "brickowl"):
        sb.inject(provider, "*", "hang", times=None, seconds=LATENCY)


def holder_pid(db) -> str | None:
    try:
        text = lock_path(db).read_text().strip()
    except FileNotFoundError:
        return None
    return text if text.isdigit() else None


def start_holder(world, db, tmp_path):
    """A sync that certainly holds the lock for HOLD seconds: its first request hangs."""
    world.sb.inject("bricklink", "GET /orders", "hang", times=1, seconds=HOLD)
    slow(world.sb)
    proc = start("sync", "--db", db, cwd=tmp_path)
    wait_for(lambda: holder_pid(db) == str(proc.pid), what="the first sync to take the lock", proc=proc)
    wait_for(lambda: world.sb.calls[("bricklink", "GET /orders")] >= 1, what="its first request", proc=proc)
    return proc


@pytest.mark.parametrize(("runs", "wait"), CONCURRENT_SYNC_CASES, ids=[f"{n}-runs-wait-{w}" for n, w in CONCURRENT_SYNC_CASES])
def test_concurrent_syncs_while_one_holds_the_lock(world, run, tmp_path, runs, wait):
    db = world.fresh_db(tmp_path / "ms.db")
    holder = start_holder(world, db, tmp_path)
    late = [start("sync", "--db", db, "--wait", wait, cwd=tmp_path) for _ in range(runs - 1)]
    outcomes = [(p, *p.communicate(timeout=60)) for p in late]
    if wait == "0":
        assert holder.poll() is None, "the holder finished before the latecomers were refused"
        for proc, out, err in outcomes:
            assert proc.returncode == 75, err
            assert error_lines(err) == [f"Error: another marketsync run (pid {holder.pid}) is writing to {db}; "
                                        "try again later"]
            assert out == ""
    out, err = holder.communicate(timeout=60)
    assert holder.returncode == 0, err
    if wait != "0":
        for proc, _out, err in outcomes:
            assert proc.returncode == 0, err  # they waited their turn and found nothing left to do
    assert snapshot(db) == world.reference, diff(snapshot(db), world.reference)
    assert ledger_count(db) == ledger_count(world.reference_db)
    # the latecomers fetched nothing twice: each order's items were asked for exactly once
    for endpoint in (("bricklink", "GET /orders/{id}/items"), ("brickowl", "GET /order/items")):
        # (as many as one clean run fetches: not every order has items to fetch, a purged one has none)
        assert world.sb.calls[endpoint] == world.reference_calls[endpoint] > 0
    assert_invariants(run, db)


@pytest.mark.parametrize("runs", SIMULTANEOUS_CASES)
def test_syncs_started_at_the_same_instant_equal_one(world, run, tmp_path, runs):
    db = world.fresh_db(tmp_path / "ms.db")
    slow(world.sb)
    procs = [start("sync", "--db", db, "--wait", "30", cwd=tmp_path) for _ in range(runs)]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert snapshot(db) == world.reference, diff(snapshot(db), world.reference)
    assert ledger_count(db) == ledger_count(world.reference_db)
    endpoint = ("bricklink", "GET /orders/{id}/items")
    assert world.sb.calls[endpoint] == world.reference_calls[endpoint] > 0
    assert_invariants(run, db)


def test_every_kind_of_writer_at_once(world, run, tmp_path):
    """sync, reserve, inventory import (of the same file) and map, all started together: each waits
    its turn, all succeed, and the end state is the reference plus the one pinned mapping."""
    db = world.fresh_db(tmp_path / "ms.db")
    csv_path = tmp_path / "inventory.csv"
    from marketsync.sandbox import write_demo_inventory_csv

    write_demo_inventory_csv(csv_path)
    slow(world.sb)
    procs = {
        "sync": start("sync", "--db", db, "--wait", "60", cwd=tmp_path),
        "reserve": start("reserve", "--db", db, "--wait", "60", cwd=tmp_path),
        "inventory import": start("inventory", "import", csv_path, "--db", db, "--wait", "60", cwd=tmp_path),
        "map": start("map", "999999", "3001", "--db", db, cwd=tmp_path),
    }
    assert set(procs) == set(MIXED_WRITERS)
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=90)
        if name == "map" and proc.returncode == 75:  # map waits 0 s by design: refused, cleanly
            assert len(error_lines(err)) == 1
            assert run("map", "999999", "3001", "--db", db).exit_code == 0
            continue
        assert proc.returncode == 0, f"{name}: {err}"
    # a later reserve picks up what the pin newly matches; nothing else may differ
    assert run("reserve", "--db", db).exit_code == 0
    assert run("sync", "--db", db).exit_code == 0
    assert_invariants(run, db)
    got, ref = snapshot(db), world.reference
    assert got["orders"] == ref["orders"]
    pinned = set(query(db, "select order_id, line_key from order_items where boid like '999999-%'"))
    assert pinned
    changed = {line[1:3] for line in got["lines"] if line not in ref["lines"]}
    assert changed == pinned, changed  # only the pinned BOID's lines changed: now matched to part 3001
    assert query(db, "select part_number, source from _boid_map where boid = '999999'") == [("3001", "manual")]


def test_readers_during_a_sync_never_fail_and_always_see_every_invariant_hold(world, run, tmp_path):
    db = world.fresh_db(tmp_path / "ms.db")
    slow(world.sb)
    proc = start("sync", "--db", db, "--concurrency", "1", cwd=tmp_path)
    reads, seen_orders = 0, []
    while proc.poll() is None or reads < len(READERS):
        for args in READERS:
            result = run(*args, "--db", db)
            assert result.exit_code == 0, f"{' '.join(args)} failed during a sync: {result.stdout}{result.stderr}"
            reads += 1
            if args[0] == "orders":
                seen_orders.append(len(json.loads(result.stdout)))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert seen_orders == sorted(seen_orders), "a reader saw orders disappear"
    assert len(set(seen_orders)) >= 2, f"the readers never overlapped the writes: {seen_orders}"
    assert snapshot(db) == world.reference
    report("readers", {"reads_during_one_sync": reads, "orders_seen": seen_orders})


def test_check_reads_one_snapshot_while_a_sync_commits_between_its_queries(world, run, tmp_path, monkeypatch):
    """``reserve --check`` takes no lock. A sync that commits between two of its queries (made to
    happen exactly there) must not look like a violation."""
    import marketsync.store.connection as dbmod

    db = world.fresh_db(tmp_path / "ms.db")
    assert run("sync", "--db", db, "--provider", "bricklink").exit_code == 0
    real_open = dbmod.open_db
    fired = []

    def open_with_a_sync_between_queries(path, **kwargs):
        handle = real_open(path, **kwargs)

        def on_statement(sql: str) -> None:
            if "from order_items l join orders o" in sql and not fired:
                fired.append(subprocess.run(  # a real sync, in another process, commits right now
                    [sys.executable, "-m", "marketsync", "sync", "--db", str(db), "--provider", "brickowl"],
                    capture_output=True, text=True, timeout=60))

        handle.conn.set_trace_callback(on_statement)
        return handle

    monkeypatch.setattr(dbmod, "open_db", open_with_a_sync_between_queries)
    result = run("reserve", "--check", "--db", db)
    assert fired and fired[0].returncode == 0, fired and fired[0].stderr
    assert query(db, "select count(*) from orders where provider = 'brickowl'") == [(30,)]
    assert result.exit_code == 0, result.stdout


def test_two_paths_to_one_database_share_one_lock(world, run, tmp_path):
    """A symlink is another path to the same file: the lock follows the real file, so the second
    sync is refused (exit 75) rather than racing the first."""
    db = world.fresh_db(tmp_path / "ms.db")
    alias = tmp_path / "alias.db"
    alias.symlink_to(db)
    slow(world.sb)
    procs = [start("sync", "--db", path, "--wait", "0", cwd=tmp_path) for path in (db, alias)]
    assert len(procs) == ALIASED_SYNCS
    results = [(p, *p.communicate(timeout=60)) for p in procs]
    codes = sorted(proc.returncode for proc, _, _ in results)
    assert codes in ([0, 0], [0, 75]), results
    for proc, _out, err in results:
        assert "Traceback" not in err
        if proc.returncode == 75:
            assert "another marketsync run" in err
    assert_invariants(run, db)
    assert run("sync", "--db", db).exit_code == 0
    assert snapshot(db) == world.reference, diff(snapshot(db), world.reference)
    assert ledger_count(db) == ledger_count(world.reference_db)
