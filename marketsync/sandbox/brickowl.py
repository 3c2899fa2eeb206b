"""An emulated BrickOwl API v1 store: data, key check, rate limit and GET handlers.

Bare JSON (no envelope), numbers mostly as strings with the odd raw number or null
(``"color_id": 0``, ``"lot_id": null``), ``external_lot_ids`` ``[]`` when empty, errors as
``{"error": {"status": ...}}``. See ``shared/marketplace-apis.md``.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import random
import re
import secrets
import threading
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

from marketsync.sandbox.colors import colors
from marketsync.sandbox.wire import Request, Response, Route, dec, html_response, json_response, money

PREFIX = "/v1"
LONDON = ZoneInfo("Europe/London")

STATUSES = (
    "Pending", "Payment Submitted", "Payment Received", "Processing", "Processed",
    "Shipped", "Received", "On Hold", "Cancelled",
)  # fmt: skip
# (the index of a name is its status_id)
_PROCESSED = {4, 5, 6}

CONDITIONS = {
    "new": "New", "news": "New (Sealed)", "newc": "New (Complete)", "newi": "New (Incomplete)",
    "usedc": "Used (Complete)", "usedi": "Used (Incomplete)", "usedn": "Used (Like New)",
    "usedg": "Used (Good)", "useda": "Used (Acceptable)", "other": "Other",
}  # fmt: skip

MAX_LIMIT = 5000
DEFAULT_LIMIT = 500


def status_id(name_or_id: Any) -> int:
    """Resolve a status given by name (any case) or id (int or numeric string)."""
    text = str(name_or_id).strip()
    if text.isdigit() and int(text) < len(STATUSES):
        return int(text)
    for index, name in enumerate(STATUSES):
        if name.lower() == text.lower():
            return index
    raise ValueError(f"unknown BrickOwl status: {name_or_id!r}")


def _unix(value: Any) -> int:
    if value is None:
        return int(time.time())
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    return int(value)


def _iso_london(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, LONDON).isoformat()


def err(message: Any, status: int = 200) -> Response:
    return json_response({"error": message}, status)


def err_status(text: str, status: int) -> Response:
    return json_response({"error": {"status": text}}, status)


def normalize_line(line: dict) -> dict:
    """The stored form of a line; ``order_item_id`` and ``lot_id`` (may be None) must be given."""
    boid = str(line.get("boid", "487300-38"))
    color = line.get("color_id")
    if color is None:
        color = int(boid.rsplit("-", 1)[1]) if "-" in boid else 0
    color = int(color)
    bl_lot = line.get("bl_lot_id")
    return {
        "order_item_id": str(line["order_item_id"]),
        "lot_id": None if line["lot_id"] is None else str(line["lot_id"]),
        "boid": boid,
        "type": line.get("type", "Part"),
        "name": line.get("name") or f"LEGO {colors().bo_name(color)} Part {boid}",
        "color_id": color,
        "full_con": line.get("full_con", "new"),
        "ordered_quantity": int(line.get("ordered_quantity", 1)),
        "refunded_quantity": int(line.get("refunded_quantity", 0)),
        "remaining_quantity": int(line.get("remaining_quantity", 50)),
        "base_price": dec(line.get("base_price", "0.100")),
        "weight": dec(line.get("weight", "0.820")),
        "personal_note": line.get("personal_note", ""),
        "public_note": line.get("public_note", ""),
        "bl_lot_id": None if bl_lot in (None, "") else str(bl_lot),
        "ids": list(line.get("ids") or [{"id": boid, "type": "boid"}]),
    }


@dataclass(eq=False)
class BOOrder:
    """A BrickOwl order. Lazy (benchmark) orders regenerate lines from ``factory``."""

    order_id: str
    status_id: int
    order_time: int
    updated_time: int
    processed_time: int | None = None
    buyer_name: str = "Brick Fan"
    customer_username: str = "brickfan"
    customer_email: str = "brickfan@example.com"
    base_currency: str = "USD"
    payment_currency: str = "USD"
    payment_method: str = "PayPal"
    ship_total: Decimal = Decimal("4.50")
    ship_method_name: str = "Royal Mail Tracked"
    ship_country_code: str = "GB"
    tracking_number: str = ""
    buyer_note: str = ""
    seller_note: str = ""
    _lines: list[dict] | None = field(default=None, repr=False)
    factory: Callable[[], list[dict]] | None = field(default=None, repr=False)
    _lazy_totals: tuple | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        return STATUSES[self.status_id]

    @property
    def lines(self) -> list[dict]:
        if self._lines is None:
            self._lines = self.factory() if self.factory else []
            self.factory = None
        return self._lines

    @lines.setter
    def lines(self, value: list[dict]) -> None:
        self._lines = value
        self.factory = None

    def current_lines(self) -> list[dict]:
        if self._lines is not None:
            return self._lines
        return self.factory() if self.factory else []

    def totals(self) -> tuple[int, int, Decimal, Decimal]:
        """(total_quantity, total_lots, sub_total, weight in grams), from the lines."""
        if self._lines is None and self._lazy_totals is not None:
            return self._lazy_totals
        lines = self.current_lines()
        result = (
            sum(int(x["ordered_quantity"]) for x in lines),
            len(lines),
            sum((dec(x["base_price"]) * int(x["ordered_quantity"]) for x in lines), Decimal(0)),
            sum((dec(x["weight"]) * int(x["ordered_quantity"]) for x in lines), Decimal(0)),
        )
        if self._lines is None:
            self._lazy_totals = result
        return result


class BrickOwlStore:
    provider = "brickowl"
    prefix = PREFIX

    def __init__(self, seed: int = 1):
        self.lock = threading.RLock()
        self.api_key = secrets.token_hex(16).upper()
        self.auth_error_status = 200  # HTTP status of a bad/missing key answer
        self.throttled = 0  # requests answered 429 by the rate limiter
        self.extra_colors: dict[int, tuple[str, int | None]] = {}
        self.orders: dict[str, BOOrder] = {}
        self.id_lookup: dict[str, list[str]] = {}
        self._rng = random.Random(f"brickowl-ids:{seed}")
        self._next_item_id = 433711
        self._next_lot_id = 2726913
        self._window: collections.deque[float] = collections.deque()
        self._rate_limit: tuple[int, float] | None = (600, 60.0)
        self.routes = [
            Route("GET", re.compile(r"/order/list"), "GET /order/list", self._order_list),
            Route("GET", re.compile(r"/order/view"), "GET /order/view", self._order_view),
            Route("GET", re.compile(r"/order/items"), "GET /order/items", self._order_items),
            Route("GET", re.compile(r"/catalog/color_list"), "GET /catalog/color_list", self._color_list),
            Route("GET", re.compile(r"/catalog/id_lookup"), "GET /catalog/id_lookup", self._id_lookup),
        ]

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """(requests, window_seconds) of the sliding window, or None for no limit."""
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, value: tuple[int, float] | None) -> None:
        with self.lock:
            self._rate_limit = value
            self._window.clear()

    # ------------------------------------------------------------------ seeding API
    def add_order(
        self,
        status: Any = "Payment Received",
        buyer_name: str = "Brick Fan",
        lines: Iterable[dict] = (),
        order_id: str | None = None,
        order_time: Any = None,
        **extra: Any,
    ) -> str:
        """Add an order; ``order_time`` is a datetime or Unix seconds. ``extra`` sets other
        :class:`BOOrder` fields (updated_time, customer_email, ship_total, factory...)."""
        with self.lock:
            if order_id is None:
                order_id = self._new_order_id()
            order_id = str(order_id)
            placed = _unix(order_time)
            sid = status_id(status)
            username = re.sub(r"\W+", "", buyer_name.lower()) or "buyer"
            extra.setdefault("customer_username", username)
            extra.setdefault("customer_email", f"{username}@example.com")
            extra.setdefault("updated_time", placed)
            if sid in _PROCESSED:
                extra.setdefault("processed_time", extra["updated_time"])
            factory = extra.pop("factory", None)
            order = BOOrder(order_id=order_id, status_id=sid, order_time=placed, buyer_name=buyer_name, **extra)
            if factory is not None:
                order.factory = factory
            else:
                order.lines = [self.make_line(line) for line in lines]
            self.orders[order_id] = order
            return order_id

    def make_line(self, line: dict) -> dict:
        """Normalise a test-supplied line, allocating order_item_id / lot_id when absent."""
        line = dict(line)
        if "order_item_id" not in line:
            line["order_item_id"], self._next_item_id = self._next_item_id, self._next_item_id + 1
        if "lot_id" not in line:
            line["lot_id"], self._next_lot_id = self._next_lot_id, self._next_lot_id + 1
        return normalize_line(line)

    def set_status(self, order_id: str, name_or_id: Any) -> None:
        with self.lock:
            order = self.orders[str(order_id)]
            order.status_id = status_id(name_or_id)
            order.updated_time = max(int(time.time()), order.updated_time + 1)
            if order.status_id in _PROCESSED and order.processed_time is None:
                order.processed_time = order.updated_time

    def set_lines(self, order_id: str, lines: Iterable[dict]) -> None:
        with self.lock:
            order = self.orders[str(order_id)]
            order.lines = [self.make_line(line) for line in lines]
            order.updated_time = max(int(time.time()), order.updated_time + 1)

    def add_id_lookup(self, bl_item_no: str, boids: Iterable[str]) -> None:
        with self.lock:
            self.id_lookup[str(bl_item_no)] = [str(b) for b in boids]

    def _new_order_id(self) -> str:
        """Random 7-digit ids: deliberately not chronological."""
        while True:
            candidate = str(self._rng.randint(1_000_000, 9_999_999))
            if candidate not in self.orders:
                return candidate

    # ------------------------------------------------------------------ HTTP
    def handle(self, req: Request, route: Route | None) -> Response:
        throttled = self._throttle()
        if throttled is not None:
            return throttled
        if req.query.get("key") != self.api_key:
            return err_status("Invalid API key", self.auth_error_status)
        if route is None:
            return err_status("Invalid method", 404)
        with self.lock:
            return route.handler(req)

    def fault(self, kind: str, opts: dict) -> Response | None:
        if kind == "500":
            return html_response(500)
        if kind == "auth_in_200":
            return err_status("Invalid API key", 200)
        if kind == "error_string":
            return err(opts.get("message", "Some plain string"), 200)
        return None

    def unknown_path(self) -> Response:
        return err_status("Invalid method", 404)


    def _throttle(self) -> Response | None:
        with self.lock:
            if self._rate_limit is None:
                return None
            count, window = self._rate_limit
            now = time.monotonic()
            while self._window and now - self._window[0] >= window:
                self._window.popleft()
            if len(self._window) >= count:
                self.throttled += 1
                wait = window - (now - self._window[0]) if self._window else window
                return html_response(429, {"Retry-After": str(max(1, math.ceil(wait)))})
            self._window.append(now)
            return None

    # ------------------------------------------------------------------ handlers
    def _order_list(self, req: Request) -> Response:
        """``GET /order/list``.

        ``order_time`` keeps orders whose *timestamp* is ``>=`` it. With ``sort_by=updated``
        that timestamp is ``updated_time`` (filter and newest-first sort on it); otherwise
        (``created``, the default) it is ``order_time``. ``limit`` keeps the newest ``limit``
        (default 500, capped at 5000). ``list_type=customer`` (purchases) is always empty.
        """
        q = req.query
        orders = list(self.orders.values())
        if q.get("status", "") != "":
            try:
                wanted = status_id(q["status"])
            except ValueError:
                return err_status("Invalid status", 400)
            orders = [o for o in orders if o.status_id == wanted]
        sort_by = q.get("sort_by", "created") or "created"
        if sort_by not in ("created", "updated"):
            return err_status("Invalid sort_by", 400)
        stamp = (lambda o: o.updated_time) if sort_by == "updated" else (lambda o: o.order_time)
        if q.get("order_time", "") != "":
            try:
                since = int(q["order_time"])
            except ValueError:
                return err_status("Invalid order_time", 400)
            orders = [o for o in orders if stamp(o) >= since]
        try:
            limit = int(q.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            return err_status("Invalid limit", 400)
        limit = max(1, min(limit, MAX_LIMIT))
        if q.get("list_type", "store") == "customer":
            orders = []
        orders.sort(key=lambda o: (stamp(o), o.order_time, o.order_id), reverse=True)
        return json_response([self._list_entry(o) for o in orders[:limit]])

    def _list_entry(self, o: BOOrder) -> dict:
        quantity, lots, sub_total, _ = o.totals()
        return {
            "order_id": o.order_id,
            "order_date": str(o.order_time),
            "total_quantity": str(quantity),
            "total_lots": str(lots),
            "base_order_total": money(sub_total + o.ship_total, 2),
            "status": o.status,
            "status_id": str(o.status_id),
        }

    def _order_from(self, req: Request) -> BOOrder | Response:
        order_id = req.query.get("order_id", "")
        if not order_id:
            return err_status("Missing order_id", 400)
        order = self.orders.get(order_id)
        if order is None:
            return err_status("Order not found", 404)
        return order

    def _order_view(self, req: Request) -> Response:
        o = self._order_from(req)
        if isinstance(o, Response):
            return o
        quantity, lots, sub_total, grams = o.totals()
        total = money(sub_total + o.ship_total, 2)
        first, _, last = o.buyer_name.partition(" ")
        address = {
            "first_name": first, "last_name": last, "name": o.buyer_name, "company": "",
            "street_1": "221B Baker Street", "street_2": "", "city": "London", "post_code": "NW1 6XE",
            "region": "", "country_code": o.ship_country_code, "country": "United Kingdom", "phone": "",
        }  # fmt: skip
        view: dict[str, Any] = {
            "order_id": o.order_id,
            "store_id": "81234",
            "status": o.status,
            "status_id": str(o.status_id),
            "order_time": str(o.order_time),
            "iso_order_time": _iso_london(o.order_time),
            "updated_time": str(o.updated_time),
            "processed_time": None if o.processed_time is None else str(o.processed_time),
            "iso_processed_time": _iso_london(o.processed_time or 0),
            "buyer_name": o.buyer_name,
            "customer_username": o.customer_username,
            "customer_email": o.customer_email,
            "customer_id": str(100000 + zlib.crc32(o.customer_username.encode()) % 900000),
            "sub_total": money(sub_total, 2),
            "ship_total": money(o.ship_total, 2),
            "tax_total": "0.00",
            "coupon_total": "0.00",
            "combined_shipping_discount": "0.00",
            "base_order_total": total,
            "base_currency": o.base_currency,
            "payment_total": total,
            "payment_currency": o.payment_currency,
            "payment_method": o.payment_method,
            "payment_method_type": "paypal",
            "total_quantity": str(quantity),
            "total_lots": str(lots),
            "weight": money(grams, 2),
            "ship_method_name": o.ship_method_name,
            "tracking_number": o.tracking_number,
            "tracking_advice": "",
            "buyer_note": o.buyer_note,
            "seller_note": o.seller_note,
            "affiliate_name": None,
            "refund_total": "0.00",
        }
        for prefix in ("ship", "billing"):
            view.update({f"{prefix}_{k}": v for k, v in address.items()})
        return json_response(view)

    def _order_items(self, req: Request) -> Response:
        o = self._order_from(req)
        if isinstance(o, Response):
            return o
        return json_response([self._item(line) for line in o.current_lines()])

    def _item(self, line: dict) -> dict:
        color = int(line["color_id"])
        bl_lot = line.get("bl_lot_id")
        return {
            "order_item_id": line["order_item_id"],
            "lot_id": line["lot_id"],
            "boid": line["boid"],
            "type": line["type"],
            "name": line["name"],
            "color_id": 0 if color == 0 else str(color),  # the documented raw-number quirk
            "color_name": colors().bo_name(color),
            "condition": CONDITIONS.get(line["full_con"], line["full_con"]),
            "full_con": line["full_con"],
            "ordered_quantity": str(line["ordered_quantity"]),
            "refunded_quantity": str(line["refunded_quantity"]),
            "remaining_quantity": str(line["remaining_quantity"]),
            "base_price": money(line["base_price"], 3),
            "weight": money(line["weight"], 3),
            "personal_note": line["personal_note"],
            "public_note": line["public_note"],
            "bl_lot_id": bl_lot,
            "external_lot_ids": {"other": bl_lot} if bl_lot else [],
            "ids": line["ids"],
        }

    def add_color(self, bo_id: int, name: str, bl_id: int | None) -> None:
        """A colour BrickOwl added after the packaged table was taken (served by color_list)."""
        with self.lock:
            self.extra_colors[bo_id] = (name, bl_id)

    def _color_list(self, req: Request) -> Response:
        table = colors().color_list()
        with self.lock:
            for bo_id, (name, bl_id) in self.extra_colors.items():
                table[str(bo_id)] = {"id": str(bo_id), "name": name, "bl_ids": [None if bl_id is None else str(bl_id)]}
        return json_response(table)

    def _id_lookup(self, req: Request) -> Response:
        ident = req.query.get("id", "")
        if not ident:
            return err_status("Missing id", 400)
        if req.query.get("id_type", "bl_item_no") != "bl_item_no":
            return json_response({"boids": []})
        return json_response({"boids": list(self.id_lookup.get(ident, []))})
