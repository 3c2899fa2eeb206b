"""The baseline: a plain sequential client doing the same GETs a first sync does and writing
the same ``orders`` / ``order_items`` rows with sqlite3 ``executemany``.

No threads, no matching, no ledger: one ``requests.Session`` per marketplace (keep-alive, OAuth
1.0a for BrickLink, ``key=`` for BrickOwl), one GET after another, rows buffered and written with
``executemany`` in one transaction per 100 orders. The database must already hold the schema
(the benchmark copies a prepared file). Configuration comes from the environment the sandbox
prints (BRICKLINK_* / BRICKOWL_* / *_API_URL) plus ``BASELINE_DB``.

Run by ``benchmarks/run.py backfill`` as a separate process; prints one JSON line of counts.

``BASELINE_MODE=pull`` is the plain client of ``benchmarks/run.py pull``: one ``GET /inventories?status=Y``
(OAuth 1.0a), ``response.json()``, and every lot upserted into ``inventory`` by its key with one
``executemany`` in one transaction: the simplest correct re-pull of a BrickLink store.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import sys
import time
from typing import Mapping

import requests
from requests_oauthlib import OAuth1

BATCH = 100
ORDER_COLUMNS = (
    "id", "business_account_id", "provider", "order_id", "status", "provider_status", "buyer_name", "buyer_email",
    "date_ordered", "date_status_changed", "lot_count", "piece_count", "subtotal", "grand_total", "currency",
    "payment_status", "shipping_method", "tracking_number", "is_filed", "fingerprint", "synced_at", "raw",
    "first_seen_at",
)
LINE_COLUMNS = (
    "order_ref", "business_account_id", "provider", "order_id", "line_key", "batch", "part_number", "color_id",
    "condition", "location", "quantity", "unit_price", "currency", "name", "item_type", "color_name",
    "provider_lot_id", "bricklink_lot_id", "boid", "provider_color_id", "provider_condition", "inventory_id",
    "match_method", "unmatched_reason", "raw",
)
INSERT_ORDER = f"insert into orders ({', '.join(ORDER_COLUMNS)}) values ({', '.join('?' * len(ORDER_COLUMNS))})"
INSERT_LINE = f"insert into order_items ({', '.join(LINE_COLUMNS)}) values ({', '.join('?' * len(LINE_COLUMNS))})"


def dumps(raw) -> str:
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"))


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Writer:
    def __init__(self, path: str):
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.next_id = (self.conn.execute("select coalesce(max(id), 0) from orders").fetchone()[0]) + 1
        self.orders: list[tuple] = []
        self.lines: list[tuple] = []
        self.written = 0
        self.line_rows = 0

    def add(self, order: tuple, lines: list[tuple]) -> None:
        ref = self.next_id
        self.next_id += 1
        self.orders.append((ref, *order))
        self.lines += [(ref, *line) for line in lines]
        if len(self.orders) >= BATCH:
            self.flush()

    def flush(self) -> None:
        with self.conn:
            self.conn.executemany(INSERT_ORDER, self.orders)
            self.conn.executemany(INSERT_LINE, self.lines)
        self.written += len(self.orders)
        self.line_rows += len(self.lines)
        self.orders.clear()
        self.lines.clear()


def bricklink(env: Mapping[str, str], writer: Writer) -> int:
    session = requests.Session()
    session.auth = OAuth1(env["BRICKLINK_CONSUMER_KEY"], env["BRICKLINK_CONSUMER_SECRET"],
                          env["BRICKLINK_TOKEN_VALUE"], env["BRICKLINK_TOKEN_SECRET"])
    base = env["BRICKLINK_API_URL"].rstrip("/")
    calls = 0

    def get(path, params=None):
        nonlocal calls
        calls += 1
        response = session.get(base + path, params=params, timeout=20)
        response.raise_for_status()
        body = response.json()
        if body["meta"]["code"] != 200:
            raise RuntimeError(f"bricklink {path}: {body['meta']}")
        return body["data"]

    heads = get("/orders", {"direction": "in", "filed": "false"}) + get("/orders", {"direction": "in", "filed": "true"})
    for head in heads:
        order_id = str(head["order_id"])
        batches = get(f"/orders/{order_id}/items")
        cost, payment = head.get("cost") or {}, head.get("payment") or {}
        stamp = now()
        order = ("default", "bricklink", order_id, head.get("status", "").lower(), head.get("status"),
                 head.get("buyer_name"), head.get("buyer_email"), head.get("date_ordered"),
                 head.get("date_status_changed"), head.get("unique_count"), head.get("total_count"),
                 cost.get("subtotal"), cost.get("grand_total"), cost.get("currency_code"), payment.get("status"),
                 None, None, int(bool(head.get("is_filed"))), head.get("date_status_changed"), stamp, dumps(head), stamp)
        lines = []
        for batch_no, batch in enumerate(batches, start=1):
            for raw in batch:
                item = raw.get("item") or {}
                lines.append(("default", "bricklink", order_id, f"{batch_no}:{raw.get('inventory_id')}", batch_no,
                              item.get("no"), raw.get("color_id"), raw.get("new_or_used"), raw.get("remarks"),
                              raw.get("quantity"), raw.get("unit_price_final"), raw.get("currency_code"),
                              item.get("name"), item.get("type"), raw.get("color_name"), str(raw.get("inventory_id")),
                              str(raw.get("inventory_id")), None, None, None, None, None, None, dumps(raw)))
        writer.add(order, lines)
    return calls


def brickowl(env: Mapping[str, str], writer: Writer) -> int:
    session = requests.Session()
    base = env["BRICKOWL_API_URL"].rstrip("/")
    key = env["BRICKOWL_API_KEY"]
    calls = 0

    def get(path, params):
        nonlocal calls
        calls += 1
        response = session.get(base + path, params={**params, "key": key}, timeout=20)
        response.raise_for_status()
        return response.json()

    heads = get("/order/list", {"list_type": "store", "sort_by": "updated", "limit": "5000"})
    for head in heads:
        order_id = head["order_id"]
        view = get("/order/view", {"order_id": order_id})
        items = get("/order/items", {"order_id": order_id})
        stamp = now()
        order = ("default", "brickowl", order_id, view.get("status", "").lower(), view.get("status"),
                 view.get("buyer_name"), view.get("customer_email"), view.get("order_time"),
                 view.get("updated_time"), view.get("total_lots"), view.get("total_quantity"), view.get("sub_total"),
                 view.get("base_order_total"), view.get("base_currency"), None, view.get("ship_method_name"),
                 view.get("tracking_number"), 0, view.get("status_id"), stamp, dumps(view), stamp)
        lines = [
            ("default", "brickowl", order_id, raw.get("order_item_id"), None, None, None, raw.get("full_con"),
             raw.get("personal_note"), raw.get("ordered_quantity"), raw.get("base_price"), None, raw.get("name"),
             raw.get("type"), raw.get("color_name"), raw.get("lot_id"), raw.get("bl_lot_id"), raw.get("boid"),
             raw.get("color_id"), raw.get("full_con"), None, None, None, dumps(raw))
            for raw in items
        ]
        writer.add(order, lines)
    return calls


UPSERT_LOT = (
    "insert into inventory (business_account_id, part_number, color_id, condition, location, quantity, "
    "quantity_reserved, bricklink_lot_id, name, item_type, price, created_at, updated_at) "
    "values ('default', ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?) "
    "on conflict (business_account_id, part_number, color_id, condition, location) do update set "
    "quantity = excluded.quantity, bricklink_lot_id = excluded.bricklink_lot_id, name = excluded.name, "
    "item_type = excluded.item_type, price = excluded.price, updated_at = excluded.updated_at "
    "where quantity is not excluded.quantity")


def pull(env: Mapping[str, str]) -> None:
    """Read the store's lots for sale and upsert them into ``inventory``."""
    session = requests.Session()
    session.auth = OAuth1(env["BRICKLINK_CONSUMER_KEY"], env["BRICKLINK_CONSUMER_SECRET"],
                          env["BRICKLINK_TOKEN_VALUE"], env["BRICKLINK_TOKEN_SECRET"])
    started = time.perf_counter()
    response = session.get(env["BRICKLINK_API_URL"].rstrip("/") + "/inventories", params={"status": "Y"}, timeout=60)
    response.raise_for_status()
    body = response.json()
    if body["meta"]["code"] != 200:
        raise RuntimeError(f"bricklink /inventories: {body['meta']}")
    stamp = now()
    conditions = {"N": "new", "U": "used"}
    rows = [(raw["item"]["no"], raw["color_id"], conditions[raw["new_or_used"]], raw.get("remarks") or "",
             raw["quantity"], str(raw["inventory_id"]), raw["item"].get("name"), raw["item"].get("type"),
             raw.get("unit_price"), stamp, stamp) for raw in body["data"] if not raw.get("is_stock_room")]
    conn = sqlite3.connect(env["BASELINE_DB"])
    conn.execute("PRAGMA synchronous = NORMAL")
    with conn:
        conn.executemany(UPSERT_LOT, rows)
    conn.close()
    print(json.dumps({"seconds": time.perf_counter() - started, "calls": {"bricklink": 1}, "lots": len(rows)}))
    sys.stdout.flush()


def main() -> None:
    env = os.environ
    if env.get("BASELINE_MODE") == "pull":
        pull(env)
        return
    providers = (env.get("BASELINE_PROVIDERS") or "bricklink,brickowl").split(",")
    writer = Writer(env["BASELINE_DB"])
    started = time.perf_counter()
    calls = {}
    if "bricklink" in providers:
        calls["bricklink"] = bricklink(env, writer)
    if "brickowl" in providers:
        calls["brickowl"] = brickowl(env, writer)
    writer.flush()
    print(json.dumps({"seconds": time.perf_counter() - started, "calls": calls, "orders": writer.written,
                      "lines": writer.line_rows}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
