"""One run deadline for both marketplaces, which either may use whole, and both asked at the same
time (issue 24, item 3): the drips and hangs of ``test_deadline.py`` still end a sick marketplace
alone."""

from __future__ import annotations

import time

from .helpers import query


def _orders(sb, n: int) -> None:
    for _ in range(n):
        sb.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 1, "new_or_used": "N"}])
        sb.brickowl.add_order("Payment Received", lines=[{"boid": "771344-38", "ordered_quantity": 1}])


def test_the_marketplaces_are_asked_at_the_same_time(creds, run, tmp_path):
    """A run asks both marketplaces at once: their requests interleave in the sandbox's log
    (marketplace after marketplace, BrickLink's would all come before BrickOwl's or after)."""
    _orders(creds, 6)
    creds.latency = 0.05  # a network: each request takes a moment, so the two overlap
    result = run("sync")
    assert result.exit_code == 0, result.stderr
    providers = [provider for provider, *_ in creds.requests]
    switches = sum(1 for a, b in zip(providers, providers[1:]) if a != b)
    assert switches >= 3, providers  # sequential: exactly 1
    counts = query(tmp_path / "marketsync.db", "select provider, count(*) from orders group by provider order by 1")
    assert counts == [("bricklink", 6), ("brickowl", 6)]


def test_one_marketplace_may_use_the_whole_run_deadline_the_other_left(creds, run, tmp_path, monkeypatch):
    """BrickLink is done in a moment; BrickOwl, paced, needs ~6 s of a 10 s run deadline -- more
    than a fixed half (5 s) would give it -- and completes in this one run."""
    _orders(creds, 5)  # BrickOwl: 1 list + 2 per order = 11 calls, 10 pacing intervals
    monkeypatch.setenv("BRICKOWL_RATE_LIMIT", f"{60 / 0.6 / 0.95:.4f}")  # paced at 95%: one call every 0.6 s
    started = time.monotonic()
    result = run("sync", "--run-deadline", "10", "--retries", "0")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    assert 5.5 <= elapsed < 10, elapsed  # past the half it used to have, within the whole
    synced = query(tmp_path / "marketsync.db", "select provider from sync_state where last_synced_at is not null "
                                               "order by 1")
    assert synced == [("bricklink",), ("brickowl",)]
    assert query(tmp_path / "marketsync.db", "select count(*) from orders where provider = 'brickowl'") == [(5,)]
