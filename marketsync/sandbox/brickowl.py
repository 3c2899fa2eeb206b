"""An emulated BrickOwl API v1 store: data, key check, rate limits, GET and POST handlers.

Bare JSON (no envelope), numbers mostly as strings with the odd raw number or null
(``"color_id": 0``, ``"lot_id": null``), ``external_lot_ids`` ``[]`` when empty, errors as
``{"error": {"status": ...}}``. See ``shared/marketplace-apis.md``.

The seller's lots (``inventory/list``, ``inventory/update``, ``bulk/batch``): placing an order
removes each line's pieces from the lot named by its ``lot_id`` (clamped at what the lot holds);
lots at quantity 0 stay in the store, just inactive (``active_only=1``, the default, hides them).
Cancelling gives the pieces back only when ``restock_on_cancel`` is true: it defaults to
**False** here (BrickLink's store defaults to True), so the default sandbox world shows both
behaviours the marketplaces leave undocumented; a test flips either switch to cover the other.
Shipping changes no lot. Lazy (``factory``) benchmark orders never touch lots.

POSTs are form-encoded and carry ``key`` as a form field (a key in the query string of a POST
is not accepted).

``bulk/batch``'s answer has no documented shape: ``store.batch_answer_shape`` picks one of the three
that clients model (:data:`BATCH_ANSWER_SHAPES`): ``"req_num_1"`` (default: an array of
``{"req_num", "code", "body"}`` numbered from 1, as the only mock found), ``"req_num_0"`` (the same
from 0), ``"responses"`` (``{"responses": [{"endpoint", "status_code", "body"}]}``) or ``"bare"``
(the bodies alone, in request order). A relative change that would go below 0 follows
``store.below_zero``: ``"refuse"`` (default) or ``"clamp"`` (the lot ends at 0).

``inventory/create`` (form, or inside ``bulk/batch``) creates a lot of a known BOID (``boid_types``:
those of id_lookup answers, lots and order lines, plus ``add_catalog_item``) and answers
``{"status": "success", "lot_id": "..."}``. ``order/notify`` registers the IP BrickOwl calls with a
plain GET when an order is placed (``notify_port``, ``notify_host`` for loopback tests).

Every rule below names its source in a comment; ``docs/sandbox-rules.md`` lists them all.

``delete_order`` makes an order vanish: ``order/list`` leaves it out and ``order/view`` and
``order/items`` answer 404 ``{"error": {"status": "Order not found"}}``; its lots are left alone.

Quirks (``store.quirks``, see :data:`QUIRKS`) add the shapes of real captured payloads that the
documented format leaves out: missing fields, nulls and raw numbers among the strings, a payment
in another currency, colour placeholders, mixed ``id_lookup`` answers.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import ipaddress
import json
import math
import random
import re
import secrets
import threading
import time
import zlib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Iterable
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from marketsync.sandbox.colors import colors
from marketsync.sandbox.notify import Notifying
from marketsync.sandbox.wire import (
    LateWrites,
    Request,
    Response,
    Route,
    below_zero_mode,
    dec,
    html_response,
    json_response,
    money,
)

PREFIX = "/v1"
LONDON = ZoneInfo("Europe/London")

# marketplace-apis.md "GET /order/list" (id: name, British spelling)
STATUSES = (
    "Pending", "Payment Submitted", "Payment Received", "Processing", "Processed",
    "Shipped", "Received", "On Hold", "Cancelled",
)  # fmt: skip
# (the index of a name is its status_id)
_PROCESSED = {4, 5, 6}
_CANCELLED = 8

# marketplace-apis.md "Conditions"; BrickSync bsapplydiff.c sends usedn/usedg/useda
CONDITIONS = {
    "new": "New", "news": "New (Sealed)", "newc": "New (Complete)", "newi": "New (Incomplete)",
    "usedc": "Used (Complete)", "usedi": "Used (Incomplete)", "usedn": "Used (Like New)",
    "usedg": "Used (Good)", "useda": "Used (Acceptable)", "other": "Other",
}  # fmt: skip

MAX_LIMIT = 5000
DEFAULT_LIMIT = 500
MAX_BATCH = 50  # sub-requests per bulk/batch (BrickOwl's API page: "Batch up to 50 requests in one go")
NOTIFY_PORT = 42500  # order/notify's fixed port (BrickOwl's API page: "http://IP_ADDR:42500/brick_owl_order_notify")
# inventory/create: color_id is "required for Parts, optional for Gear/Minibuild, and not allowed for other
# item types" (BrickOwl's API page)
_COLOR_OPTIONAL = ("Gear", "Minibuild")

# bulk/batch answer shapes (undocumented; marketplace-apis.md "The seller's lots"):
# "req_num_1"/"req_num_0": [{"req_num", "code", "body"}] numbered from 1 (the only mock found) or 0;
# "responses": {"responses": [{"endpoint", "status_code", "body"}]} (BrickOwlSharp's
# BulkBatchResponse / BulkBatchResponseItem); "bare": the bodies alone (brickops' storeClient.ts).
BATCH_ANSWER_SHAPES = ("req_num_1", "req_num_0", "responses", "bare")

# BrickOwl catalog item types (catalog/id_lookup filters on them)
ITEM_TYPES = ("Part", "Set", "Minifigure", "Gear", "Sticker", "Minibuild", "Instructions", "Packaging")

# Shapes seen in real captures that the plain sandbox does not send (shared/marketplace-apis.md,
# "Lessons from the field"); ``Sandbox(quirks=...)`` switches them on by name.
QUIRKS = {
    "no_full_con": "order items carry only the condition's display text (`condition`), no `full_con`",
    "no_type": "order items carry no `type`",
    "no_refunded_quantity": "order items with nothing refunded carry no `refunded_quantity`",
    "no_updated_time": "order/view carries no `updated_time`",
    "no_customer_email": "order/view carries no `customer_email`",
    "nulls": "`null` where the plain sandbox sends an empty string",
    "raw_numbers": "quantities, ids and weights as raw JSON numbers; some empty text fields as `[]`",
    "payment_currency": "the buyer paid in another currency: `payment_currency` is not `base_currency`",
    "color_list_placeholders": "catalog/color_list adds colours whose `bl_ids` hold negatives other than -9 and `[null]`",
    "id_lookup_mixed": "catalog/id_lookup answers lead with the bare BOID among the colour-suffixed ones",
}
# Colours catalog/color_list adds under the ``color_list_placeholders`` quirk (BrickLink has none
# of them): BrickOwl id -> (name, bl_ids as served)
PLACEHOLDER_COLORS: dict[int, tuple[str, list[str | None]]] = {
    9001: ("Speckle Black-Gold", [None]),
    9002: ("Satin Trans-Purple", ["-13"]),
    9003: ("Opal Trans-Dark Blue", ["-2", None]),
}
# (currency paid in, units of it per unit of the store's currency) under ``payment_currency``
PAID_IN = {"USD": ("EUR", Decimal("0.92")), "GBP": ("EUR", Decimal("1.17")), "EUR": ("USD", Decimal("1.09"))}
# ``raw_numbers``: the fields served as raw JSON numbers, and the empty text fields served as []
_RAW_INT_ITEM = ("ordered_quantity", "refunded_quantity", "remaining_quantity", "color_id")
_RAW_INT_VIEW = ("store_id", "customer_user_id", "status_id", "total_quantity", "total_lots")
_RAW_INT_LIST = ("total_quantity", "total_lots", "status_id")
_EMPTY_AS_ARRAY = ("public_note", "payment_method_note", "payment_transaction_id", "ship_phone", "billing_phone",
                   "ship_tax", "billing_tax")


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


def _whole(value: Any, signed: bool) -> int:
    """A quantity from a form field ("+3", "-2", "7") or a JSON number inside a batch."""
    if isinstance(value, bool):
        raise ValueError(f"Invalid quantity {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    else:
        raise ValueError(f"Invalid quantity {value!r}")
    if number < 0 and not signed:
        raise ValueError(f"Invalid quantity {value!r}")
    return number


def _as_ints(data: dict, names: Iterable[str]) -> None:
    """The ``raw_numbers`` quirk: these whole-number strings become JSON numbers."""
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value.isdigit():
            data[name] = int(value)


def _number(value: Any) -> Any:
    """A decimal string as a raw JSON number ("0.820" -> 0.82, "10.000" -> 10)."""
    if not isinstance(value, str):
        return value
    number = Decimal(value)
    return int(number) if number == number.to_integral_value() else float(number)


# Errors are {"error": {"status": ...}}, or a plain string; their HTTP status is not documented
# (marketplace-apis.md "Authentication and errors"): lot errors answer 4xx here, auth errors
# auth_error_status (200 by default; both are tested).
def err(message: Any, status: int = 200) -> Response:
    return json_response({"error": message}, status)


def err_status(text: str, status: int) -> Response:
    return json_response({"error": {"status": text}}, status)


def item_type(name: str) -> str:
    """The canonical BrickOwl item type for ``name`` (any case); ValueError when unknown."""
    for known in ITEM_TYPES:
        if known.lower() == str(name).strip().lower():
            return known
    raise ValueError(f"unknown BrickOwl item type {name!r}; expected one of {ITEM_TYPES}")


def short_con(full_con: str) -> str:
    """``con`` of an inventory lot: "new" / "used" (``full_con`` carries the detail)."""
    if full_con.startswith("new"):
        return "new"
    if full_con.startswith("used"):
        return "used"
    return full_con


@dataclass
class BOLot:
    """One lot of the seller's BrickOwl store; ``external_id`` is ``external_lot_ids.other``
    (the BrickLink lot it is linked to)."""

    lot_id: str
    boid: str
    qty: int
    type: str = "Part"
    full_con: str = "new"
    price: Decimal = Decimal("0.100")
    for_sale: bool = True
    personal_note: str = ""
    public_note: str = ""
    external_id: str | None = None
    ids: list[dict] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.qty > 0 and self.for_sale

    def to_json(self) -> dict:
        # inventory/list's lot (marketplace-apis.md "The seller's lots"; a capture in BrickSync's
        # brickowl.c): no color_id, no name, qty and for_sale as strings, external_lot_ids [] when empty
        return {
            "lot_id": self.lot_id,
            "boid": self.boid,
            "type": self.type,
            "con": short_con(self.full_con),
            "full_con": self.full_con,
            "qty": str(self.qty),
            "price": money(self.price, 3),
            "for_sale": "1" if self.for_sale else "0",
            "personal_note": self.personal_note,
            "public_note": self.public_note,
            "external_lot_ids": {"other": self.external_id} if self.external_id else [],
            "ids": [dict(x) for x in self.ids],
        }


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
    # pieces this order removed from store lots: lot_id -> pieces (what a restock gives back)
    taken: dict[str, int] = field(default_factory=dict, repr=False)
    restocked: bool = False  # cancelled and its pieces given back
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


class BrickOwlStore(LateWrites, Notifying):
    provider = "brickowl"
    prefix = PREFIX

    def __init__(self, seed: int = 1):
        self.lock = threading.RLock()
        self.api_key = secrets.token_hex(16).upper()
        self.auth_error_status = 200  # HTTP status of a bad/missing key answer (undocumented: both tested)
        self.throttled = 0  # requests answered 429 by the rate limiter
        self.extra_colors: dict[int, tuple[str, int | None]] = {}
        self.orders: dict[str, BOOrder] = {}
        self.lots: dict[str, BOLot] = {}
        self.restock_on_cancel = False  # undocumented (marketplace-apis.md): a switch; see the module docstring
        self.quirks: frozenset[str] = frozenset()  # names from QUIRKS (Sandbox(quirks=...) sets them)
        self._below_zero = "refuse"  # see the below_zero property
        self._batch_answer_shape = "req_num_1"  # see the batch_answer_shape property
        self._init_late()
        self._init_notify("brickowl", seed)
        self.latency = 0.0  # seconds added to every answer (Sandbox.latency sets both stores)
        self.store_id = "81234"  # the seller's store (order/view's store_id; order/notify's store_id)
        # order/notify: the registered IP (None: off), the port BrickOwl calls (42500; a test's own port
        # here), and notify_host, the address actually called instead of the IP (loopback tests)
        self.notify_ip: str | None = None
        self.notify_port = NOTIFY_PORT
        self.notify_host: str | None = None
        # whether a status change notifies too (BrickOwl's page says "when an order is placed"; status
        # changes unconfirmed, marketplace-apis.md "Order notification"): a switch, False by default
        self.notify_status_changes = False
        self.catalog: dict[tuple[str, str], list[str]] = {}  # (BrickLink item no, BrickOwl type) -> BOIDs
        # every BOID the sandbox knows (without a colour suffix) -> its item type: inventory/create takes
        # only these (id_lookup's answers, lots, order lines, add_catalog_item)
        self.boid_types: dict[str, str] = {}
        self._rng = random.Random(f"brickowl-ids:{seed}")
        self._next_item_id = 433711
        self._next_lot_id = 2726913
        self._window: collections.deque[float] = collections.deque()
        # 600 requests a minute; bulk/batch its own 100 (the safe side of 100-200) (marketplace-apis.md
        # "Rate limits"; the throttled answer's format is not documented: an HTML 429 with Retry-After)
        self._rate_limit: tuple[int, float] | None = (600, 60.0)
        self._batch_window: collections.deque[float] = collections.deque()
        self._batch_rate_limit: tuple[int, float] | None = (100, 60.0)
        self.routes = [
            Route("GET", re.compile(r"/order/list"), "GET /order/list", self._order_list),
            Route("GET", re.compile(r"/order/view"), "GET /order/view", self._order_view),
            Route("GET", re.compile(r"/order/items"), "GET /order/items", self._order_items),
            Route("GET", re.compile(r"/catalog/color_list"), "GET /catalog/color_list", self._color_list),
            Route("GET", re.compile(r"/catalog/id_lookup"), "GET /catalog/id_lookup", self._id_lookup),
            Route("GET", re.compile(r"/inventory/list"), "GET /inventory/list", self._inventory_list),
            Route("POST", re.compile(r"/inventory/update"), "POST /inventory/update", self._inventory_update),
            Route("POST", re.compile(r"/bulk/batch"), "POST /bulk/batch", self._bulk_batch),
            Route("POST", re.compile(r"/inventory/create"), "POST /inventory/create", self._inventory_create),
            Route("POST", re.compile(r"/order/notify"), "POST /order/notify", self._order_notify),
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

    @property
    def below_zero(self) -> str:
        """A ``relative_quantity`` that would take a lot below 0: ``"refuse"`` (an error answer,
        nothing changes; the default) or ``"clamp"`` (the lot ends at 0). BrickOwl does not document it."""
        return self._below_zero

    @below_zero.setter
    def below_zero(self, value: str) -> None:
        self._below_zero = below_zero_mode(value)

    @property
    def batch_answer_shape(self) -> str:
        """How ``bulk/batch`` answers (one of :data:`BATCH_ANSWER_SHAPES`; default ``"req_num_1"``)."""
        return self._batch_answer_shape

    @batch_answer_shape.setter
    def batch_answer_shape(self, value: str) -> None:
        if value not in BATCH_ANSWER_SHAPES:
            raise ValueError(f"batch_answer_shape must be one of {BATCH_ANSWER_SHAPES}, not {value!r}")
        self._batch_answer_shape = value

    @property
    def batch_rate_limit(self) -> tuple[int, float] | None:
        """``bulk/batch``'s own, lower limit (default 100 per minute), independent of ``rate_limit``."""
        return self._batch_rate_limit

    @batch_rate_limit.setter
    def batch_rate_limit(self, value: tuple[int, float] | None) -> None:
        with self.lock:
            self._batch_rate_limit = value
            self._batch_window.clear()

    @property
    def id_lookup(self) -> dict[str, list[str]]:
        """BrickLink item no -> BOIDs over every item type (a read-only snapshot of ``catalog``)."""
        with self.lock:
            merged: dict[str, list[str]] = {}
            for (no, _), boids in self.catalog.items():
                known = merged.setdefault(no, [])
                for boid in boids:
                    if boid not in known:
                        known.append(boid)
            return merged

    # ------------------------------------------------------------------ seeding API: lots
    def add_lot(
        self,
        boid: str,
        qty: int,
        lot_id: str | int | None = None,
        type: str = "Part",
        full_con: str = "new",
        price: Any = "0.100",
        for_sale: bool = True,
        personal_note: str = "",
        public_note: str = "",
        external_id: str | int | None = None,
        ids: Iterable[dict] | None = None,
    ) -> str:
        """Add a lot to the seller's store (a seller action, not an API call); returns its lot_id.

        ``external_id`` is the linked BrickLink lot (``external_lot_ids.other``).
        """
        if int(qty) < 0:
            raise ValueError("a lot's quantity cannot be negative")
        with self.lock:
            if lot_id is None:
                while str(self._next_lot_id) in self.lots:
                    self._next_lot_id += 1
                lot_id, self._next_lot_id = self._next_lot_id, self._next_lot_id + 1
            lot = BOLot(
                lot_id=str(lot_id), boid=str(boid), qty=int(qty), type=item_type(type), full_con=full_con,
                price=dec(price), for_sale=bool(for_sale), personal_note=personal_note, public_note=public_note,
                external_id=None if external_id in (None, "") else str(external_id),
                ids=[dict(x) for x in ids] if ids is not None else [{"id": str(boid), "type": "boid"}],
            )  # fmt: skip
            self._know_boid(lot.boid, lot.type)
            self.lots[lot.lot_id] = lot
            return lot.lot_id

    def get_lot(self, lot_id: str | int) -> BOLot | None:
        with self.lock:
            return self.lots.get(str(lot_id))

    def all_lots(self) -> list[BOLot]:
        """Every lot, inactive ones (quantity 0, not for sale) included."""
        with self.lock:
            return list(self.lots.values())

    def set_lot_quantity(self, lot_id: str | int, qty: int) -> None:
        """The seller edits a lot's quantity on the website (absolute; the lot stays at 0)."""
        if int(qty) < 0:
            raise ValueError("a lot's quantity cannot be negative")
        with self.lock:
            lot = self.lots.get(str(lot_id))
            if lot is None:
                raise KeyError(f"no lot {lot_id} in the BrickOwl store")
            lot.qty = int(qty)

    def set_lot_for_sale(self, lot_id: str | int, for_sale: bool) -> None:
        with self.lock:
            lot = self.lots.get(str(lot_id))
            if lot is None:
                raise KeyError(f"no lot {lot_id} in the BrickOwl store")
            lot.for_sale = bool(for_sale)

    # ------------------------------------------------------------------ orders act on lots
    @staticmethod
    def _needs(lines: Iterable[dict]) -> dict[str, int]:
        need: dict[str, int] = {}
        for line in lines:
            if line.get("lot_id") is not None:
                lot_id = str(line["lot_id"])
                need[lot_id] = need.get(lot_id, 0) + int(line.get("ordered_quantity") or 0)
        return need

    # placing an order takes its pieces off the lots (marketplace-apis.md "The seller's lots": "Sold pieces
    # leave a BrickOwl lot when the order is placed"); a lot at 0 stays, inactive (same section)
    def _take(self, order: BOOrder, need: dict[str, int]) -> None:
        for lot_id, wanted in need.items():
            lot = self.lots.get(lot_id)
            if lot is None:
                continue  # a lot the store does not list
            pieces = min(wanted, lot.qty)
            if pieces > 0:
                lot.qty -= pieces
                order.taken[lot_id] = order.taken.get(lot_id, 0) + pieces

    def _give_back(self, order: BOOrder, amounts: dict[str, int]) -> None:
        for lot_id, pieces in amounts.items():
            pieces = min(pieces, order.taken.get(lot_id, 0))
            if pieces <= 0:
                continue
            lot = self.lots.get(lot_id)
            if lot is not None:
                lot.qty += pieces
            order.taken[lot_id] -= pieces
            if not order.taken[lot_id]:
                del order.taken[lot_id]

    def place(self, order_id: str) -> None:
        """Remove an order's pieces from the store lots (``add_order`` does this by default)."""
        with self.lock:
            order = self.orders[str(order_id)]
            self._take(order, self._needs(order.lines))

    # ------------------------------------------------------------------ seeding API: orders
    def add_order(
        self,
        status: Any = "Payment Received",
        buyer_name: str = "Brick Fan",
        lines: Iterable[dict] = (),
        order_id: str | None = None,
        order_time: Any = None,
        reduce_stock: bool = True,
        notify: bool = True,
        **extra: Any,
    ) -> str:
        """Place an order; ``order_time`` is a datetime or Unix seconds. ``extra`` sets other
        :class:`BOOrder` fields (updated_time, customer_email, ship_total, factory...).

        Each line's pieces leave the lot named by its ``lot_id`` (``reduce_stock=False``: leave
        the lots alone). An order added as Cancelled is placed and cancelled: its pieces come
        back if ``restock_on_cancel``. With an address registered by ``order/notify`` the placed
        order is notified (``notify=False``: silently, for history seeded before a test)."""
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
                if reduce_stock:
                    self._take(order, self._needs(order.lines))
                    if sid == _CANCELLED and self.restock_on_cancel:
                        self._give_back(order, dict(order.taken))
                        order.restocked = True
            self.orders[order_id] = order
            if notify:
                self._order_notify_event(order_id)
            return order_id

    place_order = add_order

    def make_line(self, line: dict) -> dict:
        """Normalise a test-supplied line, allocating order_item_id / lot_id when absent."""
        line = dict(line)
        if "order_item_id" not in line:
            line["order_item_id"], self._next_item_id = self._next_item_id, self._next_item_id + 1
        if "lot_id" not in line:
            line["lot_id"], self._next_lot_id = self._next_lot_id, self._next_lot_id + 1
        normal = normalize_line(line)
        self._know_boid(normal["boid"], normal["type"])
        return normal

    def set_status(self, order_id: str, name_or_id: Any) -> None:
        """Change an order's status. Cancelling gives its pieces back only when
        ``restock_on_cancel``; leaving Cancelled again takes them again. Shipping changes no lot."""
        with self.lock:
            order = self.orders[str(order_id)]
            was_cancelled = order.status_id == _CANCELLED
            order.status_id = status_id(name_or_id)
            order.updated_time = max(int(time.time()), order.updated_time + 1)
            if order.status_id in _PROCESSED and order.processed_time is None:
                order.processed_time = order.updated_time
            if self.notify_status_changes:
                self._order_notify_event(order.order_id)
            if order.factory is not None:
                return  # lazy benchmark orders never touch lots
            cancelled = order.status_id == _CANCELLED
            if cancelled and not was_cancelled and self.restock_on_cancel:
                self._give_back(order, dict(order.taken))
                order.restocked = True
            elif was_cancelled and not cancelled and order.restocked:
                order.restocked = False
                self._take(order, self._needs(order.lines))

    def set_lines(self, order_id: str, lines: Iterable[dict]) -> None:
        """Replace an order's lines (items added, removed or refunded): lots follow the change."""
        with self.lock:
            order = self.orders[str(order_id)]
            before = self._needs(order.lines) if order.factory is None else None
            order.lines = [self.make_line(line) for line in lines]
            order.updated_time = max(int(time.time()), order.updated_time + 1)
            if before is None or order.restocked:
                return
            after = self._needs(order.lines)
            more = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
            fewer = {k: v - after.get(k, 0) for k, v in before.items() if v > after.get(k, 0)}
            self._give_back(order, fewer)
            self._take(order, more)

    def delete_order(self, order_id: str) -> None:
        """The order vanishes from the store: ``order/list`` leaves it out and ``order/view`` and
        ``order/items`` answer 404 "Order not found". Its lots stay as they are. KeyError for an
        unknown order."""
        with self.lock:
            if self.orders.pop(str(order_id), None) is None:
                raise KeyError(f"no order {order_id} in the BrickOwl store")

    def add_id_lookup(self, bl_item_no: str, boids: Iterable[str], type: str = "Part") -> None:
        """Register a catalog item: ``catalog/id_lookup?id=<bl_item_no>&type=<type>`` answers
        ``boids``; asked with another type it answers ``{"boids": []}`` like BrickOwl."""
        with self.lock:
            kind = item_type(type)
            self.catalog[(str(bl_item_no), kind)] = [str(b) for b in boids]
            for boid in boids:
                self._know_boid(str(boid), kind)

    def add_catalog_item(self, boid: str, type: str = "Part") -> None:
        """Make a BOID known to the sandbox's BrickOwl catalogue (``inventory/create`` takes only
        known BOIDs; those of id_lookup answers, lots and order lines are known already)."""
        with self.lock:
            self._know_boid(str(boid), item_type(type))

    def _know_boid(self, boid: str, kind: str) -> None:
        self.boid_types.setdefault(boid.split("-", 1)[0], kind)

    def _order_notify_event(self, order_id: str) -> None:
        """With an address registered (``order/notify``), send the plain, unsigned GET BrickOwl
        sends when an order is placed: ``http://IP:42500/brick_owl_order_notify?order_id=&store_id=``
        (BrickOwl's API page "Notify"; marketplace-apis.md "Order notification"), to ``notify_host``
        instead of the IP when set, on ``notify_port``; on the delivery thread."""
        if self.notify_ip is None:
            return
        host = self.notify_host or self.notify_ip
        if ":" in host:
            host = f"[{host}]"
        query = urlencode({"order_id": order_id, "store_id": self.store_id})
        self._notify_send("GET", f"http://{host}:{self.notify_port}/brick_owl_order_notify?{query}")

    def _new_order_id(self) -> str:
        """Random 7-digit ids: not chronological (marketplace-apis.md "GET /order/list")."""
        while True:
            candidate = str(self._rng.randint(1_000_000, 9_999_999))
            if candidate not in self.orders:
                return candidate

    # ------------------------------------------------------------------ HTTP
    def handle(self, req: Request, route: Route | None) -> Response:
        batch = route is not None and route.template == "POST /bulk/batch"
        throttled = self._throttle(batch)
        if throttled is not None:
            return throttled
        # the key: a query parameter on GET, a form field on POST, never the query string of a POST
        # (marketplace-apis.md "Authentication and errors"; BrickSync: "GET /v1/inventory/list?key=" in
        # bsfetchinv.c, "key=...&lot_id=..." in the POST bodies of bsapplydiff.c)
        if req.method == "GET":
            key = req.query.get("key")
        else:
            key = (req.form() or {}).get("key")
        if key != self.api_key:
            return err_status("Invalid API key", self.auth_error_status)
        if route is None:
            return err_status("Invalid method", 404)
        with self.lock:
            return route.handler(req)

    @staticmethod
    def parsed_body(req: Request) -> Any:
        """A write's body as recorded in ``Sandbox.writes``: the form fields (None if not a form)."""
        return req.form()

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


    def _throttle(self, batch: bool = False) -> Response | None:
        """A sliding window per limit: ``bulk/batch`` counts against its own, lower one."""
        with self.lock:
            limit, calls = (self._batch_rate_limit, self._batch_window) if batch else (self._rate_limit, self._window)
            if limit is None:
                return None
            count, window = limit
            now = time.monotonic()
            while calls and now - calls[0] >= window:
                calls.popleft()
            if len(calls) >= count:
                self.throttled += 1
                wait = window - (now - calls[0]) if calls else window
                return html_response(429, {"Retry-After": str(max(1, math.ceil(wait)))})
            calls.append(now)
            return None

    # ------------------------------------------------------------------ handlers
    def _order_list(self, req: Request) -> Response:
        """``GET /order/list`` (marketplace-apis.md "GET /order/list": status by name or id,
        ``order_time``, ``limit`` 500 / 5000, ``sort_by``, ``list_type``, no paging, newest first).

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
        entry = {
            "order_id": o.order_id,
            "order_date": str(o.order_time),
            "total_quantity": str(quantity),
            "total_lots": str(lots),
            "base_order_total": money(sub_total + o.ship_total, 2),
            "status": o.status,
            "status_id": str(o.status_id),
        }
        if "raw_numbers" in self.quirks:
            _as_ints(entry, _RAW_INT_LIST)
        return entry

    def _order_from(self, req: Request) -> BOOrder | Response:
        order_id = req.query.get("order_id", "")
        if not order_id:
            return err_status("Missing order_id", 400)
        order = self.orders.get(order_id)
        if order is None:
            return err_status("Order not found", 404)
        return order

    def _order_view(self, req: Request) -> Response:
        """``GET /order/view``: the real view's flat fields (names as captured by BrickOwl
        clients: ``customer_user_id``, ``tax_amount``, ``coupon_discount``, flat ``ship_*`` /
        ``billing_*`` address fields); nothing the real one lacks (marketplace-apis.md "GET
        /order/view": Unix seconds as strings, a Europe/London ``iso_order_time``)."""
        o = self._order_from(req)
        if isinstance(o, Response):
            return o
        quantity, lots, sub_total, grams = o.totals()
        total = money(sub_total + o.ship_total, 2)
        paid_in, paid = o.payment_currency, total
        if "payment_currency" in self.quirks and paid_in == o.base_currency:
            paid_in, rate = PAID_IN.get(o.base_currency, ("USD", Decimal("1.10")))
            paid = money((sub_total + o.ship_total) * rate, 2)
        first, _, last = o.buyer_name.partition(" ")
        address = {
            "first_name": first, "last_name": last, "street_1": "221B Baker Street", "street_2": "",
            "city": "London", "region": "", "post_code": "NW1 6XE", "country_code": o.ship_country_code,
            "country": "United Kingdom", "phone": "", "tax": "",
        }  # fmt: skip
        view: dict[str, Any] = {
            "order_id": o.order_id,
            "store_id": self.store_id,
            "status": o.status,
            "status_id": str(o.status_id),
            "order_time": str(o.order_time),
            "iso_order_time": _iso_london(o.order_time),
            "updated_time": str(o.updated_time),
            "processed_time": None if o.processed_time is None else str(o.processed_time),
            "iso_processed_time": _iso_london(o.processed_time or 0),
            "buyer_name": o.buyer_name,
            "customer_user_id": str(100000 + zlib.crc32(o.customer_username.encode()) % 900000),
            "customer_username": o.customer_username,
            "customer_email": o.customer_email,
            "sub_total": money(sub_total, 2),
            "ship_total": money(o.ship_total, 2),
            "coupon_discount": "0.00",
            "tax_rate": "0",
            "tax_amount": "0.00",
            "tax_scheme_id": None,
            "base_order_total": total,
            "base_currency": o.base_currency,
            "payment_total": paid,
            "payment_currency": paid_in,
            "payment_method_type": "paypal",
            "payment_method_note": "",
            "payment_transaction_id": "",
            "total_quantity": str(quantity),
            "total_lots": str(lots),
            "weight": money(grams, 2),
            "ship_method_name": o.ship_method_name,
            "ship_method_id": "1",
            "tracking_number": o.tracking_number,
            "buyer_note": o.buyer_note,
            "seller_note": o.seller_note,
            "combine_with": None,
            "refund_subtotal": "0.00",
            "refund_shipping": "0.00",
            "refund_adjustment": "0.00",
            "refund_total": "0.00",
            "refund_note": None,
            "customer_feedback_left": None,
            "store_feedback_left": None,
            "my_cost_total": "0.00",
            "affiliate_fee": "0.00",
            "brickowl_fee": "0.00",
            "message_count": "0",
            "utm_source": None,
            "utm_medium": None,
        }
        for prefix in ("ship", "billing"):
            view.update({f"{prefix}_{k}": v for k, v in address.items()})
        if "no_updated_time" in self.quirks:
            del view["updated_time"]
        if "no_customer_email" in self.quirks:
            del view["customer_email"]
        if "raw_numbers" in self.quirks:
            _as_ints(view, _RAW_INT_VIEW)
            view["weight"] = _number(view["weight"])
        return json_response(self._text_quirks(view))

    def _order_items(self, req: Request) -> Response:
        o = self._order_from(req)
        if isinstance(o, Response):
            return o
        return json_response([self._item_quirks(self._item(line)) for line in o.current_lines()])

    def _item_quirks(self, item: dict) -> dict:
        """The quirks of one order item (applied to what ``_item`` serves)."""
        quirks = self.quirks
        if not quirks:
            return item
        if "no_full_con" in quirks:
            item.pop("full_con", None)
        if "no_type" in quirks:
            item.pop("type", None)
        if "no_refunded_quantity" in quirks and str(item.get("refunded_quantity")) == "0":
            del item["refunded_quantity"]
        if "raw_numbers" in quirks:
            _as_ints(item, _RAW_INT_ITEM)
            if "weight" in item:
                item["weight"] = _number(item["weight"])
        return self._text_quirks(item)

    def _text_quirks(self, data: dict) -> dict:
        """Empty text as ``[]`` (``raw_numbers``) for a few fields, then as ``null`` (``nulls``)."""
        if "raw_numbers" in self.quirks:
            for name in _EMPTY_AS_ARRAY:
                if data.get(name) == "":
                    data[name] = []
        if "nulls" in self.quirks:
            for name, value in data.items():
                if value == "":
                    data[name] = None
        return data

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
            "color_name": self._colour_name(color),
            "condition": CONDITIONS.get(line["full_con"], line["full_con"]),
            "full_con": line["full_con"],
            "ordered_quantity": str(line["ordered_quantity"]),
            "refunded_quantity": str(line["refunded_quantity"]),
            "remaining_quantity": str(self.lots[line["lot_id"]].qty if line["lot_id"] in self.lots else line["remaining_quantity"]),
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

    def _colour_name(self, bo_id: int) -> str:
        if bo_id in self.extra_colors:
            return self.extra_colors[bo_id][0]
        if bo_id in PLACEHOLDER_COLORS and bo_id not in colors().by_bo:
            return PLACEHOLDER_COLORS[bo_id][0]
        return colors().bo_name(bo_id)

    # marketplace-apis.md "Mapping BrickOwl lines", step 1: keyed by BrickOwl id, bl_ids as strings
    def _color_list(self, req: Request) -> Response:
        table = colors().color_list()
        with self.lock:
            if "color_list_placeholders" in self.quirks:
                for bo_id, (name, bl_ids) in PLACEHOLDER_COLORS.items():
                    table.setdefault(str(bo_id), {"id": str(bo_id), "name": name, "bl_ids": list(bl_ids)})
            for bo_id, (name, bl_id) in self.extra_colors.items():
                table[str(bo_id)] = {"id": str(bo_id), "name": name, "bl_ids": [None if bl_id is None else str(bl_id)]}
        return json_response(table)

    def _id_lookup(self, req: Request) -> Response:
        """``GET /catalog/id_lookup``: per item type, like BrickOwl (a Minifigure is not found
        when asked as a Part; marketplace-apis.md "Mapping BrickOwl lines", step 3)."""
        ident = req.query.get("id", "")
        if not ident:
            return err_status("Missing id", 400)
        if not req.query.get("type"):
            return err_status("Missing type", 400)
        try:
            wanted = item_type(req.query["type"])
        except ValueError:
            return err_status("Invalid type", 400)
        if req.query.get("id_type", "bl_item_no") != "bl_item_no":
            return json_response({"boids": []})
        boids = list(self.catalog.get((ident, wanted), []))
        if "id_lookup_mixed" in self.quirks:
            bare = [b.rsplit("-", 1)[0] for b in boids if "-" in b]
            boids = list(dict.fromkeys([*bare, *boids]))  # the bare item first, each once
        return json_response({"boids": boids})

    # ------------------------------------------------------------------ the seller's lots
    def _inventory_list(self, req: Request) -> Response:
        """``GET /inventory/list``: ``active_only`` defaults to 1 (lots at 0 or not for sale are
        left out); ``lot_id=`` / ``external_id_1=`` / ``type=`` narrow the list (marketplace-apis.md
        "The seller's lots"; BrickSync asks ``active_only=0`` only to reuse emptied lots, bsfetchinv.c;
        BrickOwlSharp's GetInventoryAsync takes active_only, external_id_1 and lot_id)."""
        q = req.query
        active_only = q.get("active_only", "1") not in ("0", "false")
        lots = list(self.lots.values())
        if q.get("lot_id", "") != "":
            lots = [x for x in lots if x.lot_id == q["lot_id"]]
        if q.get("external_id_1", "") != "":
            lots = [x for x in lots if x.external_id == q["external_id_1"]]
        if q.get("type", "") != "":
            lots = [x for x in lots if x.type.lower() == q["type"].lower()]
        if active_only:
            lots = [x for x in lots if x.active]
        return json_response([self._lot_json(x) for x in lots])

    def _lot_json(self, lot: BOLot) -> dict:
        data = lot.to_json()
        if "raw_numbers" in self.quirks:
            _as_ints(data, ("qty", "for_sale"))
        return self._text_quirks(data)

    def _inventory_update(self, req: Request) -> Response:
        """``POST /inventory/update`` (form): one identifier, at least one change; answers
        ``{"status": "success"}`` (marketplace-apis.md "The seller's lots")."""
        form = req.form() or {}
        result = self._update(form, {})
        if isinstance(result, Response):
            return result
        if not req.dry_run:
            self.lots.update(result)
        return json_response({"status": "success"})

    def _bulk_batch(self, req: Request) -> Response:
        """``POST /bulk/batch``: up to 50 sub-requests, each answered on its own (others still
        apply when one fails), in the shape ``batch_answer_shape`` names."""
        raw = (req.form() or {}).get("requests", "")
        try:
            parsed = json.loads(raw)
        except ValueError:
            return err_status("Invalid requests: not JSON", 400)
        subs = parsed.get("requests") if isinstance(parsed, dict) else None
        if not isinstance(subs, list):
            return err_status('Invalid requests: expected {"requests": [...]}', 400)
        # form field "requests" = {"requests": [{"endpoint", "request_method", "params": [{...}]}]}, at most
        # 50 (BrickOwl's API page, copy in 1benisin/brickops docs/external-documentation/api-brickowl/
        # bulk-requests.md); each sub-request answered on its own (marketplace-apis.md)
        if len(subs) > MAX_BATCH:
            return err_status(f"Too many requests: {len(subs)} (at most {MAX_BATCH} per batch)", 400)
        changed: dict[str, BOLot] = {}
        answers = [self._sub_request(sub, changed) for sub in subs]
        if not req.dry_run:
            self.lots.update(changed)
        shape = self.batch_answer_shape
        if shape == "bare":
            return json_response([body for _, body in answers])
        if shape == "responses":
            return json_response({"responses": [
                {"endpoint": str(sub.get("endpoint", "")) if isinstance(sub, dict) else "", "status_code": code,
                 "body": body} for sub, (code, body) in zip(subs, answers)]})
        first = 1 if shape == "req_num_1" else 0
        return json_response([{"req_num": first + number, "code": code, "body": body}
                              for number, (code, body) in enumerate(answers)])

    def _sub_request(self, sub: Any, changed: dict[str, BOLot]) -> tuple[int, Any]:
        if not isinstance(sub, dict):
            return 400, {"error": {"status": "Invalid request"}}
        endpoint = str(sub.get("endpoint", "")).strip("/")
        method = str(sub.get("request_method", "")).upper()
        if endpoint not in ("inventory/update", "inventory/create"):
            return 404, {"error": {"status": "Invalid method"}}
        if method != "POST":
            return 405, {"error": {"status": f"{endpoint} needs request_method POST, not {method or 'none'}"}}
        params = sub.get("params")
        if not (isinstance(params, list) and len(params) == 1 and isinstance(params[0], dict)):
            return 400, {"error": {"status": "params must be a list holding one object"}}
        if endpoint == "inventory/create":  # works inside bulk/batch too (marketplace-apis.md "Creating a lot")
            created = self._create(params[0], changed)
            if isinstance(created, Response):
                return created.status, json.loads(created.body)
            changed[created.lot_id] = created
            return 200, {"status": "success", "lot_id": created.lot_id}
        result = self._update(params[0], changed)
        if isinstance(result, Response):
            return result.status, json.loads(result.body)
        changed.update(result)
        return 200, {"status": "success"}

    def _inventory_create(self, req: Request) -> Response:
        """``POST /inventory/create`` (form): a new lot; answers ``{"status": "success", "lot_id"}``
        (the lot id as three clients read it -- BrickSync, BrickOwlSharp, brickops -- not a
        documented capture)."""
        created = self._create(req.form() or {}, {})
        if isinstance(created, Response):
            return created
        if not req.dry_run:
            self.lots[created.lot_id] = created
        return json_response({"status": "success", "lot_id": created.lot_id})

    def _create(self, params: dict, changed: dict[str, BOLot]) -> BOLot | Response:
        """Validate one ``inventory/create`` (BrickOwl's API page "Create"; marketplace-apis.md
        "Creating a lot"); the new lot, not stored yet, or the refusal (HTTP 400, assumed like the
        other lot errors)."""

        def given(name: str) -> bool:
            return params.get(name) not in (None, "")

        if not given("boid"):
            return err_status("Missing boid", 400)
        # a BOID the catalogue knows; BrickSync sends the bare one and the colour as color_id
        # (bsapplydiff.c bsBrickOwlApplyDiffCreate). A colour-suffixed BOID is taken as the same (assumed).
        base, _, suffix = str(params["boid"]).strip().partition("-")
        kind = self.boid_types.get(base)
        if kind is None or (suffix and not suffix.isdigit()):
            return err_status(f"Invalid boid {params['boid']!r}: not in the catalog", 400)
        color: int | None = None
        if given("color_id"):
            text = str(params["color_id"]).strip()
            if not text.isdigit():
                return err_status(f"Invalid color_id {params['color_id']!r}", 400)
            color = int(text)
        if suffix:
            if color is not None and color != int(suffix):
                return err_status(f"color_id {color} does not match the BOID's colour {suffix}", 400)
            color = int(suffix)
        # color_id: required for Parts, optional for Gear/Minibuild, not allowed for other types
        if kind == "Part" and color is None:
            return err_status("color_id is required for Parts", 400)
        if color is not None and kind != "Part" and kind not in _COLOR_OPTIONAL:
            return err_status(f"color_id is not allowed for a {kind}", 400)
        if color is not None and color not in colors().by_bo and color not in self.extra_colors:
            return err_status(f"Invalid color_id {color}", 400)
        # quantity: "a whole number greater than zero"; price: "a positive number, ... rounded to 3
        # digits"; condition: one of the condition ids (BrickOwl's API page)
        try:
            quantity = _whole(params.get("quantity"), signed=False)
            if quantity <= 0:
                raise ValueError(f"Invalid quantity {params.get('quantity')!r}: a whole number greater than zero")
            if not given("price"):
                raise ValueError("Missing price")
            try:
                price = dec(str(params["price"]).strip())
            except ArithmeticError:
                raise ValueError(f"Invalid price {params['price']!r}") from None
            if not price.is_finite():
                raise ValueError(f"Invalid price {params['price']!r}")
            price = price.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
            if price <= 0:
                raise ValueError(f"Invalid price {params['price']!r}: must be positive")
        except (ValueError, ArithmeticError) as exc:
            return err_status(str(exc) or "Invalid value", 400)
        condition = str(params.get("condition") or "")
        if condition not in CONDITIONS:
            return err_status(f"Invalid condition {condition!r}: one of {', '.join(CONDITIONS)}", 400)
        while str(self._next_lot_id) in self.lots or str(self._next_lot_id) in changed:
            self._next_lot_id += 1
        lot_id, self._next_lot_id = str(self._next_lot_id), self._next_lot_id + 1
        boid = base if color is None else f"{base}-{color}"
        return BOLot(
            lot_id=lot_id, boid=boid, qty=quantity, type=kind, full_con=condition, price=price,
            # external_id (optional: the BrickLink lot, found again by inventory/list?external_id_1=);
            # personal_note / public_note: not on the create page, sent by brickops (accepted: assumed)
            external_id=str(params["external_id"]).strip() if given("external_id") else None,
            personal_note=str(params.get("personal_note") or ""), public_note=str(params.get("public_note") or ""),
            ids=[{"id": boid, "type": "boid"}],
        )  # fmt: skip

    def _order_notify(self, req: Request) -> Response:
        """``POST /order/notify`` (form ``ip``): register the IPv4 address BrickOwl calls when an
        order is placed; an empty ``ip`` turns it off (BrickOwl's API page "Notify": "To remove the
        notification, submit an empty string for the ip parameter"; marketplace-apis.md "Order
        notification": an IP address, no name, no path)."""
        form = req.form() or {}
        if "ip" not in form:
            return err_status("Missing ip", 400)
        ip = form["ip"].strip()
        address: str | None = None
        if ip:
            try:
                address = str(ipaddress.IPv4Address(ip))
            except ValueError:
                return err_status(f"Invalid ip {ip!r}: an IPv4 address", 400)
        if not req.dry_run:
            self.notify_ip = address
        return json_response({"status": "success"})

    def _update(self, params: dict, changed: dict[str, BOLot]) -> dict[str, BOLot] | Response:
        """Validate one ``inventory/update`` against the lots (``changed`` overrides the store
        for earlier sub-requests of a batch); returns the updated lot without storing it."""

        def given(name: str) -> bool:
            return params.get(name) not in (None, "")

        # exactly one identifier, at least one field; relative or absolute, not both (marketplace-apis.md
        # "The seller's lots")
        idents = [name for name in ("lot_id", "external_id") if given(name)]
        if len(idents) != 1:
            return err_status("Exactly one of lot_id or external_id is required", 400)
        view = {**self.lots, **changed}
        if idents[0] == "lot_id":
            matches = [view[str(params["lot_id"])]] if str(params["lot_id"]) in view else []
        else:
            matches = [x for x in view.values() if x.external_id == str(params["external_id"])]
        if not matches:
            return err_status("Lot not found", 404)
        if len(matches) > 1:
            return err_status("external_id matches more than one lot", 400)
        lot = matches[0]
        values = ("relative_quantity", "absolute_quantity", "for_sale", "price")
        if not any(given(name) for name in values) and not any(n in params for n in ("personal_note", "public_note")):
            return err_status("Nothing to update: send relative_quantity, absolute_quantity, for_sale, "
                              "price, personal_note or public_note", 400)  # fmt: skip
        if given("relative_quantity") and given("absolute_quantity"):
            return err_status("Send relative_quantity or absolute_quantity, not both", 400)
        changes: dict[str, Any] = {}
        try:
            if given("relative_quantity"):  # signed (BrickOwl's API page; BrickSync sends "%d")
                qty = lot.qty + _whole(params["relative_quantity"], signed=True)
                if qty < 0:
                    # undocumented (marketplace-apis.md; BrickSync clamps before sending): a switch
                    if self.below_zero == "refuse":
                        return err_status(f"Quantity cannot go below 0 (lot {lot.lot_id} has {lot.qty})", 400)
                    qty = 0
                changes["qty"] = qty
            if given("absolute_quantity"):
                changes["qty"] = _whole(params["absolute_quantity"], signed=False)
            if given("for_sale"):
                flag = str(params["for_sale"]).strip().lower()
                if flag not in ("0", "1", "true", "false"):
                    raise ValueError("for_sale must be 1 or 0")
                changes["for_sale"] = flag in ("1", "true")
            if given("price"):
                price = dec(str(params["price"]).strip())
                if not price.is_finite() or price < 0:
                    raise ValueError("Invalid price")
                changes["price"] = price
            for note in ("personal_note", "public_note"):
                if note in params:
                    changes[note] = "" if params[note] is None else str(params[note])
        except ValueError as exc:
            return err_status(str(exc) or "Invalid value", 400)
        except ArithmeticError:  # decimal's own messages name nothing ("[<class 'decimal.ConversionSyntax'>]")
            return err_status("Invalid value: not a number", 400)
        return {lot.lot_id: dataclasses.replace(lot, **changes)}
