"""Mirroring under kill -9: ``stock mirror`` killed at random instants while it creates lots on both
marketplaces (every creation is applied, then its answer lost or slow), then runs to the end:
every lot exists exactly once on each marketplace, linked, at what is available -- never created
twice, none lost."""

from __future__ import annotations

import os
import random
import time

import pytest

from .helpers import kill9, query, start, wait_for

LOTS = 8
KILLS = 6
LATENCY = 0.05  # every creation is applied, then its answer comes this late: a kill lands in between


def creations_sent(sb) -> int:
    return sum(sb.calls[key] for key in (("bricklink", "POST /inventories"), ("brickowl", "POST /inventory/create"),
                                         ("brickowl", "POST /bulk/batch")))


@pytest.mark.heavy
def test_kill_9_while_mirroring_never_creates_a_lot_twice(creds, run, tmp_path, monkeypatch):
    sb = creds
    env = {**os.environ, "MARKETSYNC_CURRENCY_BRICKLINK": "USD", "MARKETSYNC_CURRENCY_BRICKOWL": "USD"}
    for name in ("MARKETSYNC_CURRENCY_BRICKLINK", "MARKETSYNC_CURRENCY_BRICKOWL"):
        monkeypatch.setenv(name, "USD")
    for n in range(LOTS):  # half on BrickLink only, half on BrickOwl only (their numbers pinned)
        if n % 2:
            sb.bricklink.add_lot(f"30{n:02d}", 11, 10 + n, remarks=f"A{n}", unit_price="0.2", inventory_id=700 + n)
            sb.brickowl.add_id_lookup(f"30{n:02d}", [f"77{n:02d}-38"])
        else:
            sb.brickowl.add_lot(f"77{n:02d}-38", 10 + n, lot_id=str(9100 + n), personal_note=f"A{n}", price="0.3")
            sb.bricklink.add_catalog_item(f"30{n:02d}")
            assert run("map", f"77{n:02d}", f"30{n:02d}", "--db", tmp_path / "m.db").exit_code == 0
    db = tmp_path / "m.db"
    for provider in ("bricklink", "brickowl"):
        assert run("inventory", "pull", "--provider", provider, "--db", db).exit_code == 0
    assert run("sync", "--push", "--db", db).exit_code == 0
    for endpoint in ("POST /inventories", "POST /inventory/create", "POST /bulk/batch"):
        sb.inject("bricklink" if endpoint == "POST /inventories" else "brickowl", endpoint, "applied_hang",
                  times=None, seconds=LATENCY)
    rng = random.Random(7)
    for _ in range(KILLS):
        before = creations_sent(sb)
        proc = start("stock", "mirror", "--db", db, "--wait", "5", cwd=tmp_path, env=env)
        # Once a creation reaches the marketplace (it is applied at once, its answer comes LATENCY
        # later), the kill lands at a random instant before or after that answer.
        wait_for(lambda: creations_sent(sb) > before or proc.poll() is not None,  # noqa: B023
                 what="a creation sent")
        time.sleep(rng.uniform(0, 2 * LATENCY))  # the kill instant
        kill9(proc)
    sb.clear_faults()
    final = run("stock", "mirror", "--db", db)
    assert final.exit_code == 0, final.stderr
    assert run("sync", "--push", "--db", db).exit_code == 0
    for n in range(LOTS):
        bl = [lot for lot in sb.bricklink.lots.values() if lot.no == f"30{n:02d}"]
        bo = [lot for lot in sb.brickowl.all_lots() if lot.boid == f"77{n:02d}-38" and lot.for_sale]
        assert (len(bl), len(bo)) == (1, 1), n
        assert bl[0].quantity == bo[0].qty == 10 + n, n
    assert query(db, "select count(*) from _mirror_creations where state in ('intended', 'unknown')") == [(0,)]
    journal = query(db, "select state, detail from _mirror_creations where state = 'applied'")
    found = [detail for _, detail in journal if detail and "found" in detail]  # applied, answer lost: found
    assert len(journal) == LOTS and found and all(detail is None or "found" in detail for _, detail in journal)
    linked = query(db, "select provider, count(*) from listings where inventory_id is not null group by provider")
    assert linked == [("bricklink", LOTS), ("brickowl", LOTS)]
