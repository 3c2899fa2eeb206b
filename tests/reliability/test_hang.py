"""A hung marketplace never hangs cron.

The marketplace accepts the connection and then says nothing (the sandbox's "hang" fault, held
for far longer than any bound below). Every run is a real ``python -m marketsync`` process with a
hard deadline of its own, so a hang in marketsync fails the test instead of hanging the suite.
The bound each run must meet is computed from the settings it was given: per request
``timeout``, ``retries`` further attempts and the capped backoff between them.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from .helpers import error_lines, query, sync_state

TIMEOUT = 0.3  # MARKETSYNC_HTTP_TIMEOUT for these runs
RETRIES = 2  # MARKETSYNC_HTTP_RETRIES
BACKOFF = 0.01  # MARKETSYNC_RETRY_BACKOFF (doubled per retry, capped at 8 s)
HANG = 120.0  # how long the marketplace stays silent: far beyond every bound
STARTUP = 4.0  # interpreter start, imports, database and its daily backup, the other marketplace's sync


def per_request_bound(timeout=TIMEOUT, retries=RETRIES, backoff=BACKOFF, cap=8.0) -> float:
    """The longest one GET can take: every attempt times out, every backoff at its maximum."""
    return (retries + 1) * timeout + sum(min(cap, backoff * 2**attempt) for attempt in range(retries))


# (provider, endpoint) hung for good; "*" hangs every endpoint of that marketplace.
HUNG_ENDPOINTS = [
    ("bricklink", "GET /orders"),
    ("bricklink", "GET /orders/{id}/items"),
    ("brickowl", "GET /order/list"),
    ("brickowl", "GET /order/view"),
    ("brickowl", "GET /order/items"),
    ("brickowl", "GET /catalog/id_lookup"),
    ("bricklink", "*"),
    ("brickowl", "*"),
]
HANG_ONCE_ENDPOINTS = [("bricklink", "GET /orders"), ("brickowl", "GET /order/items")]
HANG_SCENARIOS = len(HUNG_ENDPOINTS) + len(HANG_ONCE_ENDPOINTS) + 2  # + both hung, + Retry-After


def timed_sync(db, *args, deadline: float):
    env_args = ["--http-timeout", str(TIMEOUT), "--retries", str(RETRIES), "--retry-backoff", str(BACKOFF)]
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", "marketsync", "sync", "--db", str(db), *env_args, *args],
                                capture_output=True, text=True, timeout=deadline, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"sync still running after {deadline:.1f}s: it hangs with the marketplace")
    return result, time.monotonic() - started


@pytest.mark.parametrize(("provider", "endpoint"), HUNG_ENDPOINTS, ids=[f"{p}-{e}" for p, e in HUNG_ENDPOINTS])
def test_a_hung_endpoint_ends_the_run_within_the_configured_bound(world, tmp_path, provider, endpoint):
    db = world.fresh_db(tmp_path / "ms.db")
    world.sb.inject(provider, endpoint, "hang", times=None, seconds=HANG)
    detail = endpoint not in ("GET /orders", "GET /order/list", "*")
    # a hung detail endpoint: the requests already in flight finish their own retries too
    bound = per_request_bound() * (2 if detail else 1) + STARTUP
    result, elapsed = timed_sync(db, deadline=bound + 10)
    assert elapsed < bound, f"took {elapsed:.1f}s, bound {bound:.1f}s"
    other = "brickowl" if provider == "bricklink" else "bricklink"
    assert sync_state(db, other)["last_synced_at"] is not None  # the other marketplace synced meanwhile
    if endpoint == "GET /catalog/id_lookup":  # a helper: the run succeeds, the lines wait
        assert result.returncode == 0, result.stderr
        assert "catalog lookups paused" in result.stderr and f"timed out after {TIMEOUT:g}s" in result.stderr
        return
    assert result.returncode == 1, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and errors[0].startswith(f"Error: {provider}: "), result.stderr
    assert f"timed out after {TIMEOUT:g}s (gave up after {RETRIES + 1} attempts)" in errors[0]
    assert sync_state(db, provider)["last_synced_at"] is None


@pytest.mark.parametrize(("provider", "endpoint"), HANG_ONCE_ENDPOINTS, ids=[f"{p}-{e}" for p, e in HANG_ONCE_ENDPOINTS])
def test_one_hung_request_is_retried_and_the_run_completes(world, tmp_path, provider, endpoint):
    db = world.fresh_db(tmp_path / "ms.db")
    world.sb.inject(provider, endpoint, "hang", times=1, seconds=HANG)
    bound = per_request_bound() * 2 + STARTUP
    result, elapsed = timed_sync(db, deadline=bound + 10)
    assert result.returncode == 0, result.stderr
    assert elapsed < bound
    assert query(db, "select count(*) from orders")[0][0] == len(world.reference["orders"])


def test_both_marketplaces_hung_fail_with_one_line_each_within_the_bound(world, tmp_path):
    db = world.fresh_db(tmp_path / "ms.db")
    for provider in ("bricklink", "brickowl"):
        world.sb.inject(provider, "*", "hang", times=None, seconds=HANG)
    bound = 2 * per_request_bound() + STARTUP
    result, elapsed = timed_sync(db, deadline=bound + 10)
    assert elapsed < bound
    assert result.returncode == 1
    errors = error_lines(result.stderr)
    assert [e.split(":")[1].strip() for e in errors] == ["bricklink", "brickowl"], result.stderr
    assert query(db, "select count(*) from orders") == [(0,)]
    assert all(sync_state(db, p)["last_synced_at"] is None for p in ("bricklink", "brickowl"))
    # and the next cron run is not stuck behind it: the lock went with the process
    world.sb.clear_faults()
    again, _ = timed_sync(db, "--wait", "0", deadline=30)
    assert again.returncode == 0, again.stderr


def test_retry_after_is_honoured(world, tmp_path):
    """A 429 with Retry-After: 1 waits that second (not the 0.01 s backoff), then succeeds."""
    db = world.fresh_db(tmp_path / "ms.db")
    world.sb.inject("bricklink", "GET /orders", "429", times=1, retry_after=1)
    result, elapsed = timed_sync(db, deadline=30)
    assert result.returncode == 0, result.stderr
    assert elapsed >= 1.0
    assert world.sb.calls[("bricklink", "GET /orders")] == world.reference_calls[("bricklink", "GET /orders")] + 1
