"""Crash safety: ``kill -9`` at random instants, every invariant after every kill, and the end
state of the interrupted history equal to that of one uninterrupted run.

The marketplace is the seeded demo store (30 orders on each marketplace, every status), slowed to
a realistic pace by a small latency on every request so that a run spends most of its life
fetching and writing. Kills come in chains: a chain starts from the inventory-only database, and
each run of the chain (``sync --wait 0``, a real ``python -m marketsync`` process) resumes where
the previous one died and is itself killed at a random instant; after every kill the database
must pass ``marketsync reserve --check``, hold only whole orders, and show ``last_synced_at``
only for a marketplace whose every order it holds. Then one run completes and the database must
equal the reference (the same orders, lines, lots, stock and ledger rows, none doubled).

``MARKETSYNC_KILL_POINTS`` (default 25) sets how many kills; ``MARKETSYNC_KILL_SEED`` the random
seed (default 6). With ``MARKETSYNC_RELIABILITY_REPORT=dir`` every kill (instant, calls made,
orders held) is written to ``dir/kills.json`` for ``tests/reliability/figures.py``.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from .helpers import (
    assert_invariants,
    assert_whole_orders,
    diff,
    kill9,
    query,
    report,
    snapshot,
    start,
    sync_state,
    wait_for,
)

DEFAULT_KILL_POINTS = 25
KILL_POINTS = int(os.environ.get("MARKETSYNC_KILL_POINTS", DEFAULT_KILL_POINTS))
KILL_SEED = int(os.environ.get("MARKETSYNC_KILL_SEED", "6"))
KILLS_PER_CHAIN = 5
LATENCY = 0.01  # seconds added to every marketplace answer
CONCURRENCY = "1"
IMPORT_KILL_POINTS = 10  # kills of `inventory import` creating a new database (schema + lots)


def sync_args(db):
    return ["sync", "--db", db, "--wait", "0", "--concurrency", CONCURRENCY]


def _calls(sb) -> int:
    return sum(sb.calls.values())


@pytest.mark.heavy
def test_kill_9_at_random_instants_then_one_run_equals_an_uninterrupted_run(world, run, tmp_path):
    sb = world.sb
    for provider in ("bricklink", "brickowl"):
        sb.inject(provider, "*", "hang", times=None, seconds=LATENCY)
    rng = random.Random(KILL_SEED)

    # calibrate: how long does an uninterrupted run of this store take here?
    calibration = world.fresh_db(tmp_path / "calibration.db")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "marketsync", *map(str, sync_args(calibration))],
                          capture_output=True, text=True, timeout=120)
    duration = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert snapshot(calibration) == world.reference, diff(snapshot(calibration), world.reference)

    kills: list[dict] = []
    chain = 0
    totals = {p: sum(1 for o in world.reference["orders"] if o[0] == p) for p in ("bricklink", "brickowl")}
    while len(kills) < KILL_POINTS:
        chain += 1
        db = world.fresh_db(tmp_path / f"chain{chain}.db")
        runs_in_chain = 0
        while runs_in_chain < KILLS_PER_CHAIN and len(kills) < KILL_POINTS:
            instant = rng.uniform(0.0, duration)
            calls_before = _calls(sb)
            proc = start(*sync_args(db), cwd=tmp_path)
            try:
                proc.wait(timeout=instant)  # the kill instant; returns early if the run finished
            except subprocess.TimeoutExpired:
                pass
            out, err = kill9(proc)
            if proc.returncode != -9:  # the run completed before its instant: not a kill; the chain is done
                assert proc.returncode == 0, err
                break
            runs_in_chain += 1
            held = {p: query(db, "select count(*) from orders where provider = ?", [p])[0][0] for p in totals}
            kills.append({"chain": chain, "instant": round(instant, 3), "calls": _calls(sb) - calls_before,
                          "orders_held": held})
            # after every kill: every invariant, whole orders only, an honest last_synced_at
            assert_invariants(run, db)
            assert_whole_orders(world, db)
            for provider, total in totals.items():
                if sync_state(db, provider)["last_synced_at"] is not None:
                    assert held[provider] == total, f"{provider} marked synced with orders missing"
        final = subprocess.run([sys.executable, "-m", "marketsync", *map(str, sync_args(db))],
                               capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert final.returncode == 0, final.stderr  # the lock went with the killed process
        assert snapshot(db) == world.reference, f"chain {chain}:\n" + diff(snapshot(db), world.reference)
        assert_invariants(run, db)

    assert len(kills) == KILL_POINTS
    mid_run = [k for k in kills if 0 < sum(k["orders_held"].values()) < sum(totals.values())]
    assert mid_run, "no kill landed while orders were being written: the kill instants prove nothing"
    report("kills", {"kill_points": KILL_POINTS, "seed": KILL_SEED, "kills": kills, "chains": chain,
                     "calibrated_run_seconds": round(duration, 3), "orders": totals})


def test_kill_9_while_creating_a_database_never_leaves_it_unusable(world, run, tmp_path):
    """``inventory import`` into a new file: creating it, migrating the schema, importing the lots.
    A kill at any instant leaves either no usable state or a complete one, never a broken file."""
    rng = random.Random(KILL_SEED + 1)
    csv_path = tmp_path / "inventory.csv"
    from marketsync.sandbox import write_demo_inventory_csv

    write_demo_inventory_csv(csv_path)
    lots = query(world.template, "select count(*) from inventory")[0][0]
    killed = 0
    for attempt in range(IMPORT_KILL_POINTS):
        db = tmp_path / f"new{attempt}.db"
        proc = start("inventory", "import", csv_path, "--db", db, cwd=tmp_path)
        wait_for(lambda: db.exists() or proc.poll() is not None, timeout=20,  # noqa: B023 (called at once)
                 what="the database file to appear")
        try:
            proc.wait(timeout=rng.uniform(0, 0.05))
        except subprocess.TimeoutExpired:
            pass
        kill9(proc)
        killed += proc.returncode == -9
        # the next run makes it whole: import again, sync, and it is the reference
        again = run("inventory", "import", csv_path, "--db", db)
        assert again.exit_code == 0, again.stderr
        assert query(db, "select count(*) from inventory")[0][0] == lots
        assert_invariants(run, db)
    assert killed >= IMPORT_KILL_POINTS // 2, f"only {killed} imports were still running when killed"
    assert run("sync", "--db", db).exit_code == 0
    assert snapshot(db) == world.reference, diff(snapshot(db), world.reference)
