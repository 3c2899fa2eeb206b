"""Every fault the sandbox can inject, on every endpoint the adapters call.

* A transient fault (5xx, an HTML page, 429, a reset connection, a truncated or non-JSON body)
  played once is retried: the run exits 0 and ends in exactly the state a fault-free run reaches.
* A fault that persists (or a refusal, which is never retried) fails that provider cleanly: one
  ``Error:`` line naming the provider and the endpoint, exit 1, the other provider synced in full,
  the failed provider's ``last_synced_at`` unmoved, every order it stored whole, every ledger
  invariant intact. Once the marketplace behaves again, one more run reaches the fault-free state.
* BrickOwl's catalog lookups are a helper, not the sync: when they fail the run still succeeds,
  the lines that needed them wait, and a later run matches them.

The lists of cases are module constants: ``tests/reliability/figures.py`` counts them.
"""

from __future__ import annotations

from collections import Counter

import pytest

from marketsync.sandbox import FAULTS

from .helpers import assert_invariants, assert_whole_orders, diff, error_lines, query, snapshot, sync_state

TRANSIENT = ("500", "html503", "429", "reset", "malformed", "not_json")
REFUSALS = {"bricklink": ("auth_in_200", "ip_mismatch"), "brickowl": ("auth_in_200", "error_string")}
MODES = ("once", "persistent")
# What each adapter calls during `sync` (BrickLink's GET /orders/{id} only for an open order that
# left both lists: see VANISHED_CASES) and during `inventory pull` (PULL_CASES).
SYNC_ENDPOINTS = {
    "bricklink": ("GET /orders", "GET /orders/{id}/items"),
    "brickowl": ("GET /order/list", "GET /order/view", "GET /order/items", "GET /catalog/id_lookup"),
}
SOFT_ENDPOINTS = {("brickowl", "GET /catalog/id_lookup")}  # its failure must not fail the run
OTHER = {"bricklink": "brickowl", "brickowl": "bricklink"}
RETRIES, CONCURRENCY = 4, 4  # the defaults these runs use (MARKETSYNC_HTTP_RETRIES, MARKETSYNC_CONCURRENCY)


def faults_for(provider: str) -> tuple[str, ...]:
    return TRANSIENT + REFUSALS[provider]


# "hang" is the one fault not played here: tests/reliability/test_hang.py times it.
assert set(TRANSIENT) | set(REFUSALS["bricklink"]) | set(REFUSALS["brickowl"]) | {"hang"} == set(FAULTS)

FAULT_CASES = [
    (provider, endpoint, fault, mode)
    for provider, endpoints in SYNC_ENDPOINTS.items()
    for endpoint in endpoints
    for fault in faults_for(provider)
    for mode in MODES
]
VANISHED_CASES = [(fault, mode) for fault in faults_for("bricklink") for mode in MODES]
PULL_CASES = [(fault, mode) for fault in faults_for("bricklink") for mode in MODES]
LATER_SYNC_CASES = [(p, e) for p, endpoints in SYNC_ENDPOINTS.items() for e in endpoints if (p, e) not in SOFT_ENDPOINTS]
MIDWAY_CASES = ["bricklink", "brickowl"]


def expected(provider: str, endpoint: str, fault: str, mode: str) -> str:
    """'recovered' (retried, run ok), 'failed' (provider fails cleanly) or 'degraded' (run ok, lines wait)."""
    soft = (provider, endpoint) in SOFT_ENDPOINTS
    if fault in TRANSIENT:
        if mode == "once":
            return "recovered"
        return "degraded" if soft else "failed"
    if soft and fault == "error_string":  # a catalog refusal that is not about the key
        return "degraded"
    return "failed"


def inject(sb, provider, endpoint, fault, mode):
    opts = {"retry_after": 0} if fault == "429" else {}
    sb.inject(provider, endpoint, fault, times=1 if mode == "once" else None, **opts)


def label(endpoint: str) -> str:
    return endpoint  # the error names the endpoint exactly as the sandbox's route template


def assert_failed_cleanly(run, result, world, db, provider, endpoint, *, synced_before=None):
    """The one-line failure of one provider, the other synced in full, nothing half-written."""
    assert result.exit_code == 1, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"Error: {provider}: "), errors[0]
    # the endpoint is named: in the error itself, or in the line of the one order that was skipped
    assert label(endpoint) in errors[0] or any(
        label(endpoint) in line and "skipped" in line for line in result.stderr.splitlines()), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    state = sync_state(db, provider)
    assert state["last_synced_at"] == synced_before, "a failed provider's last_synced_at moved"
    assert state["last_error"] and state["last_error"] == errors[0].removeprefix("Error: ")
    other = OTHER[provider]
    assert sync_state(db, other)["last_synced_at"] is not None
    assert sync_state(db, other)["last_error"] is None
    assert_whole_orders(world, db)
    assert_invariants(run, db)


# --- the matrix ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("provider", "endpoint", "fault", "mode"), FAULT_CASES,
                         ids=[f"{p}-{e.split(' ', 1)[1]}-{f}-{m}" for p, e, f, m in FAULT_CASES])
def test_fault_on_sync_endpoint(world, run, tmp_path, provider, endpoint, fault, mode):
    db = world.fresh_db(tmp_path / "ms.db")
    inject(world.sb, provider, endpoint, fault, mode)
    result = run("sync", "--db", db)
    outcome = expected(provider, endpoint, fault, mode)
    calls = world.sb.calls[(provider, endpoint)]

    if outcome == "recovered":
        assert result.exit_code == 0, result.stderr
        assert not error_lines(result.stderr), result.stderr
        if (provider, endpoint) in SOFT_ENDPOINTS:
            # which catalog lookups a run makes depends on thread timing; the faulty one was asked twice
            # (a lookup is one number asked as one item type: a miss asks the fallback type too)
            asked = Counter((query_["id"], query_.get("type")) for p, _, path, query_ in world.sb.requests
                            if p == provider and path == "/catalog/id_lookup")
            assert max(asked.values()) == 2, asked
        else:
            assert calls == world.reference_calls[(provider, endpoint)] + 1, "the faulty answer was not retried once"
        assert snapshot(db) == world.reference, diff(snapshot(db), world.reference)
        assert_invariants(run, db)
        return

    if outcome == "failed":
        assert_failed_cleanly(run, result, world, db, provider, endpoint)
        listing = endpoint == SYNC_ENDPOINTS[provider][0]
        if fault not in TRANSIENT:  # a refusal is final: never retried
            assert calls == 1 or not listing, calls
        elif listing:  # a persistent transient fault: the first try and exactly RETRIES more
            assert calls == 1 + RETRIES, calls
        else:  # detail calls: at most every order in flight retried up to the cap
            assert calls <= world.reference_calls[(provider, endpoint)] + (1 + RETRIES) * 2 * CONCURRENCY, calls
        other = OTHER[provider]
        assert snapshot(db, other) == snapshot(world.reference_db, other)
    else:  # degraded: the run succeeds, lines that needed the catalog wait
        assert result.exit_code == 0, result.stderr
        assert not error_lines(result.stderr), result.stderr
        assert sync_state(db, provider)["last_synced_at"] is not None
        assert snapshot(db)["orders"] == world.reference["orders"], "an order was lost"
        assert_invariants(run, db)

    # the marketplace behaves again: one more run reaches the fault-free state
    world.sb.clear_faults()
    again = run("sync", "--db", db)
    assert again.exit_code == 0, again.stderr
    assert snapshot(db) == world.reference, diff(snapshot(db), world.reference)
    assert_invariants(run, db)


@pytest.mark.parametrize(("fault", "mode"), VANISHED_CASES, ids=[f"{f}-{m}" for f, m in VANISHED_CASES])
def test_fault_on_bricklink_order_lookup_of_a_vanished_open_order(world, run, tmp_path, fault, mode):
    """An open order that left both of BrickLink's lists is looked up by id (GET /orders/{id})."""
    db = world.fresh_db(tmp_path / "ms.db")
    assert run("sync", "--db", db).exit_code == 0
    before = sync_state(db, "bricklink")["last_synced_at"]
    order_id = query(db, "select order_id from orders where provider = 'bricklink' and status = 'paid' "
                         "order by order_id limit 1")[0][0]
    store = world.sb.bricklink
    order = store.orders.pop(int(order_id))
    try:
        inject(world.sb, "bricklink", "GET /orders/{id}", fault, mode)
        result = run("sync", "--db", db)
        assert world.sb.calls[("bricklink", "GET /orders/{id}")] >= 1
        if fault in TRANSIENT and mode == "once":
            # retried, then BrickLink says 404: the order is kept as it was, with a warning
            assert result.exit_code == 0, result.stderr
            assert (f"order {order_id} is open here but BrickLink no longer has it" in result.stderr
                    and f"marketsync reserve --release bricklink:{order_id}" in result.stderr)
        else:
            assert_failed_cleanly(run, result, world, db, "bricklink", "GET /orders/{id}", synced_before=before)
        assert snapshot(db) == world.reference, diff(snapshot(db), world.reference)
    finally:
        store.orders[int(order_id)] = order
    world.sb.clear_faults()
    assert run("sync", "--db", db).exit_code == 0
    assert snapshot(db) == world.reference
    assert_invariants(run, db)


_PULLED: dict = {}


@pytest.mark.parametrize(("fault", "mode"), PULL_CASES, ids=[f"{f}-{m}" for f, m in PULL_CASES])
def test_fault_on_bricklink_inventory_pull(world, run, tmp_path, fault, mode):
    db = tmp_path / "pull.db"
    if "lots" not in _PULLED:
        clean = run("inventory", "pull", "--db", tmp_path / "clean.db")
        assert clean.exit_code == 0, clean.stderr
        _PULLED["lots"] = query(tmp_path / "clean.db", "select part_number, color_id, condition, location, quantity "
                                                       "from inventory order by 1, 2, 3, 4")
        world.sb.reset_calls()
    inject(world.sb, "bricklink", "GET /inventories", fault, mode)
    result = run("inventory", "pull", "--db", db)
    if fault in TRANSIENT and mode == "once":
        assert result.exit_code == 0, result.stderr
        assert world.sb.calls[("bricklink", "GET /inventories")] == 2
        assert query(db, "select part_number, color_id, condition, location, quantity from inventory "
                         "order by 1, 2, 3, 4") == _PULLED["lots"]
    else:
        assert result.exit_code == 1
        errors = error_lines(result.stderr)
        assert len(errors) == 1 and "bricklink" in errors[0] and "GET /inventories" in errors[0], result.stderr
        assert not db.exists() or query(db, "select count(*) from inventory") == [(0,)]


# --- a later run that fails: last_synced_at keeps its old value ---------------------------------
def _change_the_marketplaces(sb):
    bl, bo = sb.bricklink, sb.brickowl
    paid = [o for o in bl.orders.values() if o.status == "PAID"]
    bl.set_status(paid[0].order_id, "SHIPPED")
    bl.set_status(paid[1].order_id, "CANCELLED")
    bl.add_order(status="PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 3, "remarks": "nowhere"}])
    received = [o for o in bo.orders.values() if o.status_id == 2]
    bo.set_status(received[0].order_id, "Shipped")
    bo.set_status(received[1].order_id, "Cancelled")
    bo.add_order(status="Payment Received", lines=[{"boid": "487300-38", "ordered_quantity": 2}])


@pytest.mark.parametrize(("provider", "endpoint"), LATER_SYNC_CASES, ids=[f"{p}-{e}" for p, e in LATER_SYNC_CASES])
def test_a_later_run_that_fails_keeps_last_synced_at_and_recovers_like_an_uninterrupted_run(
        own_world, run, tmp_path, provider, endpoint):
    from .helpers import copy_db

    db = own_world.fresh_db(tmp_path / "ms.db")
    assert run("sync", "--db", db).exit_code == 0
    before = {p: sync_state(db, p) for p in OTHER}
    _change_the_marketplaces(own_world.sb)
    twin = copy_db(db, tmp_path / "twin.db")  # the same history, synced without faults

    own_world.sb.inject(provider, endpoint, "500", times=None)
    result = run("sync", "--db", db)
    assert result.exit_code == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and errors[0].startswith(f"Error: {provider}: ") and endpoint in errors[0]
    after = sync_state(db, provider)
    assert after["last_synced_at"] == before[provider]["last_synced_at"]
    assert after["list_window_start"] == before[provider]["list_window_start"]
    assert after["last_error"]
    assert_invariants(run, db)
    status = run("status", "--db", db)
    assert status.exit_code == 1 and f"{provider}: last sync failed" in status.stderr

    own_world.sb.clear_faults()
    assert run("sync", "--db", db).exit_code == 0
    assert run("sync", "--db", twin).exit_code == 0
    assert snapshot(db) == snapshot(twin), diff(snapshot(db), snapshot(twin))
    assert sync_state(db, provider)["last_error"] is None


# --- a provider that fails half-way through its orders ------------------------------------------
def _poison(sb, provider):
    """One open order, half-way down the priority list, whose items the marketplace cannot serve:
    HTTP 500 on every try (the route of that one order is wrapped; the others are untouched)."""
    if provider == "bricklink":
        store, template = sb.bricklink, "GET /orders/{id}/items"
        orders = sorted((o for o in store.orders.values() if o.status in ("PAID", "PENDING", "PROCESSING")),
                        key=lambda o: o.date_ordered, reverse=True)
    else:
        store, template = sb.brickowl, "GET /order/items"
        orders = sorted((o for o in store.orders.values() if o.status_id in (0, 1, 2, 3)),
                        key=lambda o: o.order_time, reverse=True)
    victim = str(orders[len(orders) // 2].order_id)
    route = next(r for r in store.routes if r.template == template)
    original = route.handler

    def handler(req):
        asked = req.params.get("id") if provider == "bricklink" else req.query.get("order_id")
        return store.fault("500", {}) if asked == victim else original(req)

    route.handler = handler

    def heal():
        route.handler = original

    return victim, heal


@pytest.mark.parametrize("provider", MIDWAY_CASES)
def test_provider_failing_half_way_keeps_whole_orders_and_finishes_later(own_world, run, tmp_path, provider):
    db = own_world.fresh_db(tmp_path / "ms.db")
    victim, heal = _poison(own_world.sb, provider)
    result = run("sync", "--db", db, "--concurrency", "1")
    assert_failed_cleanly(run, result, own_world, db, provider,
                          "GET /orders/{id}/items" if provider == "bricklink" else "GET /order/items")
    stored = query(db, "select count(*) from orders where provider = ?", [provider])[0][0]
    total = sum(1 for row in own_world.reference["orders"] if row[0] == provider)
    assert 0 < stored < total, (stored, total)  # really half-way: some orders kept, some not yet
    assert not query(db, "select 1 from orders where provider = ? and order_id = ?", [provider, victim])
    heal()
    assert run("sync", "--db", db).exit_code == 0
    assert snapshot(db) == own_world.reference, diff(snapshot(db), own_world.reference)


def test_daily_budget_running_out_half_way_keeps_whole_orders_and_finishes_later(world, run, tmp_path):
    db = world.fresh_db(tmp_path / "ms.db")
    result = run("sync", "--db", db, "--bricklink-budget", "12", "--concurrency", "1")
    assert result.exit_code == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "daily API budget of 12 calls used up" in errors[0], result.stderr
    assert sync_state(db, "bricklink")["last_synced_at"] is None
    assert 0 < query(db, "select count(*) from orders where provider = 'bricklink'")[0][0] < 30
    assert_whole_orders(world, db)
    assert_invariants(run, db)
    assert query(db, "select sum(calls) from _api_calls where provider = 'bricklink'")[0][0] == 12
    assert run("sync", "--db", db).exit_code == 0
    assert snapshot(db) == world.reference, diff(snapshot(db), world.reference)
