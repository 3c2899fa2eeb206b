"""Pushing under kill -9: a `sync --push` killed at random instants while it writes to both
marketplaces, then one run to the end, leaves every listing exactly at what is available --
no change applied twice, none lost. Every write is applied and its answer lost, so each run
reads lots back, and a kill lands between a recorded change and its settling."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from .helpers import assert_invariants, kill9, query, start

LOTS = 12
PER_LOT = 30
KILLS = 8
LATENCY = 0.02  # every write is applied, then its answer is lost after this long: read back, settled


def _store(sb) -> None:
    for n in range(LOTS):
        bl = 700 + n
        sb.bricklink.add_lot(f"30{n:02d}", 11, PER_LOT, remarks=f"A{n}", inventory_id=bl)
        sb.brickowl.add_lot(f"77{n:02d}-38", PER_LOT, lot_id=str(9100 + n), personal_note=f"A{n}", external_id=bl)


def _sell(sb, rng: random.Random) -> None:
    for n in range(LOTS):
        if rng.random() < 0.7:
            sb.bricklink.add_order("PAID", lines=[{"inventory_id": 700 + n, "no": f"30{n:02d}", "color_id": 11,
                                                   "quantity": rng.randint(1, 4), "remarks": f"A{n}"}])
        if rng.random() < 0.7:
            sb.brickowl.add_order("Payment Received", lines=[{
                "lot_id": str(9100 + n), "boid": f"77{n:02d}-38", "color_id": 38,
                "ordered_quantity": rng.randint(1, 4), "personal_note": f"A{n}", "bl_lot_id": str(700 + n)}])


def _exact(sb, db) -> None:
    available = {location: quantity - reserved for location, quantity, reserved in
                 query(db, "select location, quantity, quantity_reserved from inventory")}
    for n in range(LOTS):
        want = max(0, available[f"A{n}"])
        assert sb.bricklink.get_lot(700 + n).quantity == want, (n, "bricklink")
        assert sb.brickowl.get_lot(str(9100 + n)).qty == want, (n, "brickowl")


@pytest.mark.heavy
def test_kill_9_during_pushes_ends_with_every_listing_exact(creds, run, tmp_path):
    sb = creds
    _store(sb)
    db = tmp_path / "push.db"
    assert run("inventory", "pull", "--db", db).exit_code == 0
    assert run("sync", "--push", "--db", db).exit_code == 0
    rng = random.Random(11)
    for endpoint in ("PUT /inventories/{id}", "POST /bulk/batch", "POST /inventory/update"):
        sb.inject("bricklink" if endpoint.startswith("PUT") else "brickowl", endpoint, "applied_hang", times=None,
                  seconds=LATENCY)

    kills = 0
    for round_ in range(3):
        _sell(sb, rng)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "marketsync", "sync", "--push", "--db", str(db), "--wait", "5"],
                              capture_output=True, text=True, timeout=120) if round_ == 0 else None
        duration = time.monotonic() - started if done is not None else duration  # noqa: F821 - set in round 0
        if done is not None:
            assert done.returncode == 0, done.stderr
            _exact(sb, db)
            _sell(sb, rng)
        for _ in range(KILLS // 2):
            proc = start("sync", "--push", "--db", db, "--wait", "5", cwd=tmp_path)
            time.sleep(rng.uniform(0.05, max(0.1, duration)))  # the kill instant, not a synchronisation
            kill9(proc)
            kills += 1
            assert_invariants(run, db)
        final = run("sync", "--push", "--db", db)
        assert final.exit_code == 0, final.stderr
        _exact(sb, db)
        intended = query(db, "select count(*) from _listing_changes where state = 'intended'")[0][0]
        assert intended == 0
    assert kills == 3 * (KILLS // 2)
    applied = query(db, "select count(*) from _listing_changes where state = 'applied'")[0][0]
    assert applied > LOTS  # the kills really cut pushes short and later runs finished them
