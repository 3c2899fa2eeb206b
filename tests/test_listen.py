"""`marketsync listen` as a real process against the sandbox's notifications: a hint from either
marketplace syncs that order and lowers the other marketplace's listing within seconds; duplicate,
dropped, forged and oversized hints change nothing wrongly; a hint during a cron run waits for it;
a dropped hint is caught by the next cron run; kill -9 mid-sync loses nothing.

Every wait polls a condition with a bound (support.wait_for, Sandbox.wait_notifications), never a
sleep: the listener prints a readiness line (``listening: ...``) and one line per hint with -v."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import FAST
from support import wait_for

BL_LOT, BO_LOT = 501, "9001"
IDS = [{"id": "3001", "type": "design_id"}, {"id": "771344-38", "type": "boid"}]
TOKEN = "t0ken-for-the-callback-path"
DB = "marketsync.db"


class Listener:
    """``python -m marketsync listen ... -v`` as a subprocess; its stderr lines are collected."""

    def __init__(self, sb, *extra: str, cwd: Path):
        self.env = {**os.environ, **FAST, **sb.env()}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "marketsync", "listen", "--port", "0", "--bricklink-path", TOKEN,
             "--brickowl-port", "0", "--push", "-v", *extra],
            env=self.env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        ready = wait_for(lambda: next((line for line in self.lines if line.startswith("listening:")), None),
                         what="the listener's readiness line", proc=self.proc)
        self.port, self.bo_port = (int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", ready))
        sb.bricklink.callback_url = f"http://127.0.0.1:{self.port}/{TOKEN}"
        sb.brickowl.notify_ip, sb.brickowl.notify_host, sb.brickowl.notify_port = "127.0.0.1", "127.0.0.1", self.bo_port
        self.wait_synced(1)  # the catch-up read of BrickLink's events at start

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def count(self, prefix: str) -> int:
        return sum(line.startswith(prefix) for line in self.lines)

    def wait_synced(self, batches: int) -> None:
        wait_for(lambda: self.count("synced ") >= batches, what=f"{batches} synced batch(es): {self.lines}",
                 proc=self.proc)

    def url(self, path: str, bo: bool = False) -> str:
        return f"http://127.0.0.1:{self.bo_port if bo else self.port}{path}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(20) == 0, self.lines

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(20)


@pytest.fixture
def shop(run, creds):
    """One part in bin A1, listed 20 on both marketplaces, linked and pushed once by cron."""
    creds.bricklink.add_lot("3001", 11, 20, remarks="A1", inventory_id=BL_LOT)
    creds.brickowl.add_lot("771344-38", 20, lot_id=BO_LOT, personal_note="A1", external_id=BL_LOT, ids=IDS)
    assert run("inventory", "pull").exit_code == 0
    assert run("sync", "--push").exit_code == 0
    return creds


@pytest.fixture
def listener(shop, tmp_path):
    started: list[Listener] = []

    def start(*extra: str) -> Listener:
        started.append(Listener(shop, *extra, cwd=tmp_path))
        return started[-1]

    yield start
    for one in started:
        if one.proc.poll() is None:
            one.stop()


def bl_order(sb, pieces: int) -> int:
    return sb.bricklink.add_order("PAID", lines=[{"inventory_id": BL_LOT, "no": "3001", "color_id": 11,
                                                   "quantity": pieces, "remarks": "A1"}])


def bo_order(sb, pieces: int, notify: bool = True) -> str:
    return sb.brickowl.add_order("Payment Received", notify=notify, lines=[{
        "lot_id": BO_LOT, "boid": "771344-38", "color_id": 38, "ordered_quantity": pieces, "personal_note": "A1",
        "bl_lot_id": str(BL_LOT)}])


def listed(sb) -> tuple[int, int]:
    return sb.bricklink.get_lot(BL_LOT).quantity, sb.brickowl.get_lot(BO_LOT).qty


def reserved() -> int:
    with sqlite3.connect(DB) as conn:
        return conn.execute("select quantity_reserved from inventory where location = 'A1'").fetchone()[0]


def orders_held() -> int:
    with sqlite3.connect(DB) as conn:
        return conn.execute("select count(*) from orders").fetchone()[0]


def calls(sb) -> dict[str, int]:
    return {f"{p} {e}": n for (p, e), n in sb.calls.items() if n}


# --- the path: a hint from either marketplace, the other listing lowered in seconds -------------------
def test_a_hint_from_either_marketplace_lowers_the_other_listing_within_seconds(run, shop, listener):
    listening = listener()
    shop.reset_calls()
    started = time.monotonic()
    bl_order(shop, 3)
    wait_for(lambda: listed(shop) == (17, 17), timeout=10, what="BrickOwl lowered after a BrickLink sale")
    assert time.monotonic() - started < 5
    assert reserved() == 3
    listening.wait_synced(2)
    # BrickLink: the events, the order, its items; BrickOwl: its lot read, one write
    assert calls(shop) == {"bricklink GET /notifications": 1, "bricklink GET /orders/{id}": 1,
                           "bricklink GET /orders/{id}/items": 1, "brickowl GET /inventory/list": 1,
                           "brickowl POST /inventory/update": 1}

    shop.reset_calls()
    started = time.monotonic()
    bo_order(shop, 5)
    wait_for(lambda: listed(shop) == (12, 12), timeout=10, what="BrickLink lowered after a BrickOwl sale")
    assert time.monotonic() - started < 5
    listening.wait_synced(3)
    assert calls(shop) == {"brickowl GET /order/view": 1, "brickowl GET /order/items": 1,
                           "bricklink GET /inventories/{id}": 1, "bricklink PUT /inventories/{id}": 1}
    assert reserved() == 8
    assert any(line.startswith("hint: brickowl order") for line in listening.lines)
    listening.stop()

    assert run("reserve", "--check").exit_code == 0
    assert run("sync", "--push").exit_code == 0  # cron after it: nothing left to change
    assert listed(shop) == (12, 12)
    # the window, measured: status per direction, orders show per order, the view
    status = json.loads(run("status", "--json").stdout)
    directions = {(w["sold_on"], w["lowered_on"]) for w in status["oversell_window"] if w["days"] == 7}
    assert directions == {("bricklink", "brickowl"), ("brickowl", "bricklink")}
    assert all(w["orders"] == 1 and w["pending"] == 0 and w["worst_seconds"] < 10 for w in status["oversell_window"])
    rows = {r["provider"]: r for r in status["providers"]}
    assert rows["brickowl"]["last_hint"].startswith("order ") and rows["bricklink"]["last_hint"] == "callback"
    assert rows["bricklink"]["last_hint_sync_at"] and rows["bricklink"]["listener_seen_at"] is None  # stopped cleanly
    with sqlite3.connect(DB) as conn:
        bo_id = conn.execute("select order_id from orders where provider = 'brickowl'").fetchone()[0]
        assert conn.execute("select count(*) from oversell_windows where seen_by = 'listener' "
                            "and window_seconds is not null").fetchone()[0] == 2
    shown = json.loads(run("orders", "show", f"brickowl:{bo_id}", "--json").stdout)
    assert [w["lowered_on"] for w in shown["oversell_window"]] == ["bricklink"]
    assert shown["oversell_window"][0]["window_seconds"] < 10
    assert "Oversell window" in run("orders", "show", f"brickowl:{bo_id}").stdout


# --- hints that must change nothing wrongly -----------------------------------------------------------
def test_duplicate_hints_sync_the_order_once_and_change_the_listing_once(run, shop, listener):
    listening = listener()
    shop.bricklink.notify_duplicate_next = 1
    shop.brickowl.notify_duplicate_next = 1
    bl_order(shop, 2)
    bo_order(shop, 1)
    assert shop.wait_notifications(10)
    wait_for(lambda: listed(shop) == (17, 17), timeout=10, what="both sales carried over")
    for _ in range(3):  # the same events again and again: nothing more happens
        assert requests.post(listening.url(f"/{TOKEN}"), timeout=5).status_code == 200
    wait_for(lambda: listening.count("hint: bricklink callback") >= 5, what="the extra callbacks")
    listening.stop()  # the batch under way finishes first
    assert listed(shop) == (17, 17) and reserved() == 3 and orders_held() == 2
    writes = sum(n for (p, e), n in shop.calls.items() if e.split()[0] in ("PUT", "POST"))
    assert writes == 2
    assert run("reserve", "--check").exit_code == 0


def test_forged_unknown_and_oversized_hints_change_nothing(run, shop, listener):
    listening = listener()
    shop.reset_calls()
    with sqlite3.connect(DB) as conn:  # the store id was learned from order/view when orders synced
        conn.execute("update sync_state set store_id = '81234' where provider = 'brickowl'")
    # the listener learned it at start only if a BrickOwl order was synced: restart it to read it
    listening.stop()
    listening = listener()
    shop.reset_calls()
    hint = listening.url("/brick_owl_order_notify", bo=True)
    wrong_store = requests.get(hint, params={"order_id": "1234567", "store_id": "99999"}, timeout=5)
    assert wrong_store.status_code == 403
    bad_id = requests.get(hint, params={"order_id": "1; drop table orders", "store_id": "81234"}, timeout=5)
    assert bad_id.status_code == 400
    assert calls(shop) == {}  # refused without any API call
    unknown = requests.get(hint, params={"order_id": "7654321", "store_id": "81234"}, timeout=5)
    assert unknown.status_code == 200
    listening.wait_synced(2)
    assert calls(shop) == {"brickowl GET /order/view": 1}  # at most one call
    assert orders_held() == 0 and listed(shop) == (20, 20)

    big = requests.post(listening.url(f"/{TOKEN}"), data=b"x" * 100_000, timeout=5)
    assert big.status_code == 413
    assert requests.post(listening.url("/not-the-token"), timeout=5).status_code == 404
    assert requests.get(listening.url(f"/{TOKEN}"), timeout=5).status_code == 405
    forwarded = requests.post(listening.url("/sync"), headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5)
    assert forwarded.status_code == 403
    assert listening.count("hint: bricklink callback") == 0
    listening.stop()
    assert orders_held() == 0 and listed(shop) == (20, 20)
    assert any("refused" in line and "99999" in line for line in listening.lines)


# --- cron and the listener: one writer --------------------------------------------------------------
def test_a_hint_during_a_cron_run_is_served_after_it(run, shop, listener, tmp_path):
    from marketsync.store.lock import writer_lock

    listening = listener()
    with writer_lock(tmp_path / DB):  # a cron run holds the writer lock
        bo_order(shop, 4)
        assert shop.wait_notifications(10)
        wait_for(lambda: listening.count("hint: brickowl order") == 1, what="the hint")
        assert orders_held() == 0 and listed(shop) == (20, 16)  # waiting: nothing written meanwhile
    wait_for(lambda: listed(shop) == (16, 16), timeout=10, what="the hint served after the cron run")
    assert reserved() == 4
    listening.stop()


def test_cron_waits_for_the_listener_rather_than_exiting_75(run, shop, listener):
    listening = listener()
    shop.inject("brickowl", "GET /order/items", "hang", seconds=1.5)  # a slow listener sync
    bo_order(shop, 2)
    wait_for(lambda: listening.count("hint: brickowl order") == 1, what="the hint")
    result = run("sync", "--push")  # default --wait: waits out the listener's short sync
    assert result.exit_code == 0, result.stderr
    listening.wait_synced(2)
    listening.stop()
    assert listed(shop) == (18, 18) and reserved() == 2


def test_a_dropped_hint_is_caught_by_the_next_cron_run(run, shop, listener):
    listening = listener()
    shop.brickowl.notify_drop_next = 1
    shop.bricklink.notify_drop_next = 1
    bo_order(shop, 3)
    bl_order(shop, 1)
    assert shop.wait_notifications(10)
    assert [d.result for d in shop.brickowl.notify_log] == ["dropped"]
    assert orders_held() == 0
    assert run("sync", "--push").exit_code == 0  # cron: the safety net
    assert listed(shop) == (16, 16) and reserved() == 4
    listening.stop()


def test_kill_9_mid_sync_loses_nothing(run, shop, listener):
    listening = listener()
    shop.inject("brickowl", "GET /order/items", "hang", seconds=30)
    bo_order(shop, 6)
    wait_for(lambda: shop.calls[("brickowl", "GET /order/items")] >= 1, what="the listener mid-sync")
    listening.kill()
    shop.clear_faults()
    assert orders_held() == 0
    again = listener()  # the hint was kept in the spool: the new listener does it
    wait_for(lambda: listed(shop) == (14, 14), timeout=15, what="the order synced after the restart")
    assert reserved() == 6
    again.stop()
    assert run("reserve", "--check").exit_code == 0


def test_the_local_trigger_and_sigusr1_sync_both_marketplaces(run, shop, listener):
    listening = listener()
    bo_order(shop, 2, notify=False)  # no hint at all, as for a mail rule
    assert requests.post(listening.url("/sync"), timeout=5).status_code == 202
    wait_for(lambda: listed(shop) == (18, 18), timeout=10, what="the trigger's sync and push")
    bo_order(shop, 1, notify=False)
    listening.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: listed(shop) == (17, 17), timeout=10, what="SIGUSR1's sync and push")
    listening.stop()


def test_status_max_age_fails_when_a_running_listener_goes_quiet(run, shop, listener):
    listening = listener()
    listening.kill()  # killed: it never said it stopped
    with sqlite3.connect(DB) as conn:
        conn.execute("update sync_state set listener_seen_at = '2020-01-01T00:00:00Z'")
    result = run("status", "--max-age", "60")
    assert result.exit_code == 1
    assert "the listener has been quiet" in result.stderr


def test_register_and_unregister_brickowl_notifications(run, creds):
    result = run("listen", "--register", "127.0.0.1")
    assert result.exit_code == 0, result.stderr
    assert creds.brickowl.notify_ip == "127.0.0.1"
    assert run("listen", "--unregister").exit_code == 0
    assert creds.brickowl.notify_ip is None


@pytest.mark.parametrize("mark_read", [False, True])
@pytest.mark.parametrize("body", ["empty", "events", "event"])
def test_bricklink_callbacks_under_every_body_and_mark_read_switch(run, shop, listener, body, mark_read):
    shop.bricklink.notify_body = body
    shop.bricklink.notifications_mark_read = mark_read
    listening = listener()
    for pieces in (2, 3):
        bl_order(shop, pieces)
    wait_for(lambda: listed(shop) == (15, 15), timeout=10, what="both sales carried over to BrickOwl")
    assert shop.wait_notifications(10)
    listening.stop()
    assert reserved() == 5 and orders_held() == 2
    assert shop.calls[("bricklink", "GET /orders/{id}/items")] == 2  # each order fetched once, whatever the body


def test_a_burst_of_hints_is_served_in_one_batch(run, shop, listener, tmp_path):
    from marketsync.store.lock import writer_lock

    listening = listener()
    batches = listening.count("synced ")
    with writer_lock(tmp_path / DB):  # the worker is held while the burst arrives
        for _ in range(5):
            bo_order(shop, 1)
        assert shop.wait_notifications(10)
        wait_for(lambda: listening.count("hint: brickowl order") == 5, what="five hints")
    wait_for(lambda: listed(shop) == (15, 15), timeout=10, what="the burst served")
    listening.wait_synced(batches + 1)
    listening.stop()
    assert listening.count("synced ") <= batches + 2  # the one held, and at most one more
    assert shop.calls[("bricklink", "PUT /inventories/{id}")] <= 2
