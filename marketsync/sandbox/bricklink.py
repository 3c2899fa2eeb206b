"""An emulated BrickLink Store API v1 store: data, OAuth 1.0a checks, GET and PUT handlers.

Formats follow ``shared/marketplace-apis.md``: the ``{"meta": ..., "data": ...}`` envelope,
omitted nulls, money as 4-decimal strings, items as an array of arrays (one per batch),
HTML entities in names and descriptions (the store keeps plain text, encodes on output).

Store lots and orders interact like on the real marketplace: placing an order (``add_order``,
``add_batch``) removes each line's pieces from the lot it was bought from (the line's
``inventory_id``; clamped at what the lot holds); a lot that reaches 0 disappears unless it is
retained (``is_retain``). Cancelling an order puts the pieces back when ``restock_on_cancel`` is
true (the default; a sold-out lot that vanished comes back); removing a line puts that line's
pieces back. Shipping changes no lot. Lazy (``factory``) benchmark orders never touch lots.

``PUT /inventories/{id}`` takes a JSON body whose ``quantity`` is always a *change* (``"+3"``,
``"-2"``, or a plain ``17`` that adds 17). A quantity change without ``description`` (or with a
null one) is refused: 400 ``PARAMETER_MISSING_OR_INVALID`` "String input must not be null", as
BrickLink has done since 2024-02-01. A description that is sent replaces the lot's (``""`` wipes
it); sent back exactly as GET returned it, GET returns it byte-for-byte unchanged. A change that
would go below 0 follows ``store.below_zero``: ``"refuse"`` (default: 400, nothing changes) or
``"clamp"`` (the lot ends at 0). ``is_retain`` true/false is stored; a lot at 0 without it goes.

``POST /inventories`` creates lots of catalogue items (``catalog``: every item of a lot or an order
line, plus ``add_catalog_item``): one JSON object answers the new lot with its ``inventory_id``, an
array answers an empty ``data``. Buyer-side order events (placed, a status change ``by_buyer``,
items added or removed) are listed by ``GET /notifications`` and POSTed to ``callback_url``.
Nonces are remembered for :data:`NONCE_WINDOW` seconds, in O(1) amortised per request.

Every rule below names its source in a comment; ``docs/sandbox-rules.md`` lists them all.

``delete_order`` makes an order vanish: it is listed no more (filed or not) and
``GET /orders/{id}`` and its items answer 404 ``RESOURCE_NOT_FOUND``; its lots are left alone.

Quirks (``store.quirks``, see :data:`QUIRKS`) add the shapes of real captured payloads that the
documented format leaves out. Whatever the quirks, sets carry ``completeness`` and names and
descriptions carry HTML entities (``&#39;``, ``&#40;``), as every real capture does.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime as dt
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable

from marketsync.sandbox import oauth1
from marketsync.sandbox.colors import colors
from marketsync.sandbox.notify import Notifying
from marketsync.sandbox.wire import (
    LateWrites,
    Request,
    Response,
    Route,
    below_zero_mode,
    bl_entities,
    bl_entities_once,
    bl_time,
    dec,
    drop_nones,
    json_response,
    money,
    passes,
    split_filter,
    utcnow,
)

PREFIX = "/api/store/v1"

# marketplace-apis.md "Order statuses"; PAID-PENDING since 2025 (BrickSync commit 6458b9f)
ORDER_STATUSES = (
    "PENDING", "UPDATED", "PROCESSING", "READY", "PAID", "PACKED", "SHIPPED", "RECEIVED",
    "COMPLETED", "OCR", "NPB", "NPX", "NRS", "NSS", "CANCELLED", "PURGED", "PAID-PENDING",
)  # fmt: skip

_PAID = ("Received", "Completed", "Clearing")  # payment states that carry a date_paid
_PAYMENT_STATUS = {
    "PENDING": "None", "UPDATED": "None", "PAID-PENDING": "Clearing", "NPB": "None", "NPX": "None",
    "CANCELLED": "None", "PURGED": "None", "COMPLETED": "Completed",
}  # fmt: skip
# any other status: payment "Received"

TIMESTAMP_TOLERANCE = 300  # seconds; clock skew is refused (marketplace-apis.md "Authentication"; the width is assumed)
# A nonce is remembered this long: a replay arriving later carries a timestamp outside the tolerance
# (it was signed with the first request's), so it is refused all the same.
NONCE_WINDOW = 2 * TIMESTAMP_TOLERANCE

# item.type values (BrickLink's inventory resource; marketplace-apis.md "GET /orders/{order_id}/items")
ITEM_TYPES = ("MINIFIG", "PART", "SET", "BOOK", "GEAR", "CATALOG", "INSTRUCTION", "UNSORTED_LOT", "ORIGINAL_BOX")

# Switch values (docs/sandbox-rules.md, "Behaviours no source confirms")
NOTIFY_BODIES = ("empty", "events", "event")  # the callback POST's body
ARRAY_ON_ERROR = ("create_none", "create_valid")  # POST /inventories array with a refused element
UNKNOWN_ITEM_STATUSES = (400, 404)  # POST /inventories with an item not in the catalogue
CREATED_CODES = (200, 201)  # POST /inventories success code

# Shapes seen in real captures that the plain sandbox does not send (shared/marketplace-apis.md,
# "Lessons from the field"); ``Sandbox(quirks=...)`` switches them on by name.
QUIRKS = {
    "category_id_camel": "items and lots name their category `categoryID` (camelCase), not `category_id`",
    "no_color_name": "items and lots carry no `color_name`",
    "no_final_total": "`cost` and `disp_cost` carry no `final_total`",
    "tracking_link_only": "a shipment's `shipping` has a `tracking_link` and no `tracking_no`",
    "error_without_data": "an error answer is `meta` alone, with no `data`",
}


# Every answer is {"meta": {"description", "message", "code"}, "data"} (marketplace-apis.md "Envelope and
# errors"; the captures in BrickSync's bricklink.c above blParseMeta, an error one without "data").
def _envelope(code: int, message: str, description: str, data: Any = None, with_data: bool = True) -> dict:
    body: dict[str, Any] = {"meta": {"description": description, "message": message, "code": code}}
    if with_data:
        body["data"] = {} if data is None else data
    return body


def ok(data: Any) -> Response:
    return json_response(_envelope(200, "OK", "OK", drop_nones(data)))


def error(code: int, message: str, description: str, http_status: int | None = None, with_data: bool = True) -> Response:
    return json_response(_envelope(code, message, description, with_data=with_data), http_status or code)


@dataclass
class BLLot:
    """One lot of the seller's store (``GET /inventories``); the bin code lives in ``remarks``."""

    inventory_id: int
    no: str
    color_id: int
    quantity: int
    new_or_used: str = "N"
    unit_price: Decimal = Decimal("0.1000")
    remarks: str | None = ""
    name: str = ""
    type: str = "PART"
    category_id: int = 0
    description: str = ""  # plain text (encoded on output) ...
    description_wire: str | None = None  # ... unless a PUT set it: then served exactly as stored
    status: str = "Y"  # Y available, S/B/C stockroom, N unavailable, R reserved
    completeness: str | None = None
    date_created: dt.date = dt.date(2023, 1, 15)
    my_cost: Decimal = Decimal("0")
    is_retain: bool = False  # kept in the store (not deleted) when its quantity reaches 0
    bulk: int = 1
    sale_rate: int = 0
    tiers: tuple[tuple[int, Decimal], ...] = ()  # up to three (quantity, price) tier-price pairs

    def to_json(self) -> dict:
        # the inventory resource of BrickLink's API docs (copy: 1benisin/brickops docs/external-documentation/
        # api-bricklink/inventory.md); names and descriptions carry HTML entities (marketplace-apis.md capture;
        # BrickSync issue #1's log shows "&#40;21016/6112603&#41;"); no status field, only is_stock_room
        stock_room = self.status in ("S", "B", "C")
        # date_created is a date at US-Eastern midnight (05:00Z, or 04:00Z in summer).
        eastern_offset = 4 if 3 <= self.date_created.month <= 10 else 5
        created = dt.datetime.combine(self.date_created, dt.time(eastern_offset), dt.timezone.utc)
        return {
            "inventory_id": self.inventory_id,
            "item": {"no": self.no, "name": bl_entities(self.name), "type": self.type, "category_id": self.category_id},
            "color_id": self.color_id,
            "color_name": colors().bl_name(self.color_id),
            "quantity": self.quantity,
            "new_or_used": self.new_or_used,
            "completeness": self.completeness,
            "unit_price": money(self.unit_price),
            "bind_id": 0,
            "description": self.description_wire if self.description_wire is not None
            else bl_entities(self.description),
            "remarks": self.remarks,
            "bulk": self.bulk,
            "is_retain": self.is_retain,
            "is_stock_room": stock_room,
            "stock_room_id": {"S": "A", "B": "B", "C": "C"}[self.status] if stock_room else None,
            "date_created": bl_time(created),
            "my_cost": money(self.my_cost),
            "sale_rate": self.sale_rate,
            **{f"tier_{name}{n}": value for n, (quantity, price) in enumerate(self._tiers(), 1)
               for name, value in (("quantity", quantity), ("price", money(price)))},
        }  # fmt: skip

    def _tiers(self) -> list[tuple[int, Decimal]]:
        return [*self.tiers, *[(0, Decimal(0))] * (3 - len(self.tiers))][:3]


Batches = list[list[dict]]


@dataclass(eq=False)
class BLOrder:
    """A received order. Lines are stored per batch; totals are always derived from them.

    Benchmark orders are *lazy*: ``factory`` regenerates the same batches on demand, so the
    store holds no line dicts for them until something mutates the order.
    """

    order_id: int
    status: str
    date_ordered: dt.datetime
    date_status_changed: dt.datetime
    buyer_name: str | None = None
    buyer_email: str | None = None
    is_filed: bool = False
    currency: str = "USD"
    payment_method: str = "PayPal (Onsite)"
    shipping_cost: Decimal = Decimal("3.5000")
    shipping_method: str = "USPS First Class Package"
    shipping_method_id: int = 8471
    tracking_no: str | None = None
    remarks: str | None = None
    country_code: str = "US"
    address: dict = field(default_factory=dict)
    buyer_order_count: int = 1
    date_paid: dt.datetime | None = None
    # pieces this order removed from store lots: inventory_id -> pieces (what a restock gives back)
    taken: dict[int, int] = field(default_factory=dict, repr=False)
    restocked: bool = False  # cancelled and its pieces given back
    _batches: Batches | None = field(default=None, repr=False)
    factory: Callable[[], Batches] | None = field(default=None, repr=False)
    _lazy_totals: tuple | None = field(default=None, repr=False)

    @property
    def batches(self) -> Batches:
        """The stored batches (materialises a lazy order; mutate freely)."""
        if self._batches is None:
            self._batches = self.factory() if self.factory else [[]]
            self.factory = None
        return self._batches

    @batches.setter
    def batches(self, value: Batches) -> None:
        self._batches = value
        self.factory = None

    @property
    def lines(self) -> list[dict]:
        return [line for batch in self.batches for line in batch]

    def current_batches(self) -> Batches:
        if self._batches is not None:
            return self._batches
        return self.factory() if self.factory else [[]]

    def totals(self) -> tuple[int, int, Decimal, Decimal]:
        """(total_count, unique_count, subtotal, total_weight), recomputed from the lines."""
        if self._batches is None and self._lazy_totals is not None:
            return self._lazy_totals
        lines = [line for batch in self.current_batches() for line in batch]
        result = (
            sum(int(line["quantity"]) for line in lines),
            len(lines),
            sum((dec(line["unit_price"]) * int(line["quantity"]) for line in lines), Decimal(0)),
            sum((dec(line["weight"]) * int(line["quantity"]) for line in lines), Decimal(0)),
        )
        if self._batches is None:
            self._lazy_totals = result
        return result

    @property
    def payment_status(self) -> str:
        return _payment_status(self.status)


class BrickLinkStore(LateWrites, Notifying):
    provider = "bricklink"
    prefix = PREFIX

    def __init__(self, seed: int = 1):
        self.lock = threading.RLock()
        self.consumer_key = secrets.token_hex(16).upper()
        self.consumer_secret = secrets.token_hex(16).upper()
        self.token_value = secrets.token_hex(16).upper()
        self.token_secret = secrets.token_hex(16).upper()
        self.seller_name = "sandboxbricks"
        self.store_name = "Sandbox Bricks"
        # HTTP status of auth failures (meta.code stays 401): 200 in field reports, sometimes the code
        # itself (marketplace-apis.md "Envelope and errors"); both are tested
        self.auth_error_status = 200
        self.check_timestamps = True
        # a cancelled order's pieces go back to their lots: undocumented (marketplace-apis.md "Changing a
        # lot"), a switch; True here, False on the BrickOwl store, so the default world has both
        self.restock_on_cancel = True
        self.quirks: frozenset[str] = frozenset()  # names from QUIRKS (Sandbox(quirks=...) sets them)
        self._below_zero = "refuse"  # see the below_zero property
        self._init_late()
        self._init_notify("bricklink", seed)
        self.latency = 0.0  # seconds added to every answer (Sandbox.latency sets both stores)
        self.orders: dict[int, BLOrder] = {}
        self.lots: dict[int, BLLot] = {}
        self._vanished: dict[int, BLLot] = {}  # lots deleted at quantity 0 (a restock brings one back)
        # The unread events GET /notifications returns: {"event_type": "Order", "resource_id", "timestamp"}
        # for buyer-side order events (marketplace-apis.md "Notifications"; BrickLink's "Get Notifications").
        self.notifications: list[dict] = []
        # Whether GET /notifications marks what it returns as read (unconfirmed: a switch, False keeps them)
        self.notifications_mark_read = False
        # The callback URL registered with the API consumer (None: no callback); each event POSTs to it
        self.callback_url: str | None = None
        self._notify_body = "empty"  # see the notify_body property
        self._last_event = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        # POST /inventories switches (docs/sandbox-rules.md)
        self._unknown_item_status = 400
        self._created_code = 200
        self._array_on_error = "create_none"
        # The BrickLink catalogue the sandbox knows: (item no, item type) -> name. Every item of a lot or
        # an order line is in it; add_catalog_item adds more. POST /inventories creates only these
        # (BrickLink's "Create Store Inventories": "only with items in the BL Catalog").
        self.catalog: dict[tuple[str, str], str] = {}
        # nonce -> when it was seen, and the same in arrival order (pruned from the front)
        self._nonces: dict[str, float] = {}
        self._nonce_order: collections.deque[tuple[float, str]] = collections.deque()
        self._next_order_id = 23215046 + seed % 1000 * 1000
        self._next_inventory_id = 349372975 + seed % 1000 * 10000
        self.routes = [
            Route("GET", re.compile(r"/orders"), "GET /orders", self._get_orders),
            Route("GET", re.compile(r"/orders/(?P<id>[^/]+)"), "GET /orders/{id}", self._get_order),
            Route("GET", re.compile(r"/orders/(?P<id>[^/]+)/items"), "GET /orders/{id}/items", self._get_items),
            Route("GET", re.compile(r"/inventories"), "GET /inventories", self._get_inventories),
            Route("GET", re.compile(r"/inventories/(?P<id>[^/]+)"), "GET /inventories/{id}", self._get_inventory),
            Route("PUT", re.compile(r"/inventories/(?P<id>[^/]+)"), "PUT /inventories/{id}", self._put_inventory),
            Route("POST", re.compile(r"/inventories/?"), "POST /inventories", self._post_inventories),
            Route("GET", re.compile(r"/notifications"), "GET /notifications", self._get_notifications),
        ]

    @property
    def below_zero(self) -> str:
        """A ``PUT`` whose change would take a lot below 0: ``"refuse"`` (400, nothing changes;
        the default) or ``"clamp"`` (the lot ends at 0). BrickLink does not document it."""
        return self._below_zero

    @below_zero.setter
    def below_zero(self, value: str) -> None:
        self._below_zero = below_zero_mode(value)

    @property
    def notify_body(self) -> str:
        """The body of a callback POST: ``"empty"`` (default: what arrives in practice), ``"events"``
        (the documented JSON list of events) or ``"event"`` (one event object, as a client parses it)."""
        return self._notify_body

    @notify_body.setter
    def notify_body(self, value: str) -> None:
        if value not in NOTIFY_BODIES:
            raise ValueError(f"notify_body must be one of {NOTIFY_BODIES}, not {value!r}")
        self._notify_body = value

    @property
    def unknown_item_status(self) -> int:
        """``POST /inventories`` with an item the catalogue lacks: 400 ``PARAMETER_MISSING_OR_INVALID``
        (default) or 404 ``RESOURCE_NOT_FOUND``. BrickLink only says it must be a catalogue item."""
        return self._unknown_item_status

    @unknown_item_status.setter
    def unknown_item_status(self, value: int) -> None:
        if value not in UNKNOWN_ITEM_STATUSES:
            raise ValueError(f"unknown_item_status must be one of {UNKNOWN_ITEM_STATUSES}, not {value!r}")
        self._unknown_item_status = value

    @property
    def created_code(self) -> int:
        """The code (HTTP status and ``meta.code``) of a successful ``POST /inventories``: 200
        ``OK`` (default) or 201 ``OK_CREATED`` (listed among BrickLink's result codes)."""
        return self._created_code

    @created_code.setter
    def created_code(self, value: int) -> None:
        if value not in CREATED_CODES:
            raise ValueError(f"created_code must be one of {CREATED_CODES}, not {value!r}")
        self._created_code = value

    @property
    def array_on_error(self) -> str:
        """A ``POST /inventories`` array with a refused element: ``"create_none"`` (default: the
        whole array is refused, nothing created) or ``"create_valid"`` (the others are created, the
        answer is still the refusal). Undocumented."""
        return self._array_on_error

    @array_on_error.setter
    def array_on_error(self, value: str) -> None:
        if value not in ARRAY_ON_ERROR:
            raise ValueError(f"array_on_error must be one of {ARRAY_ON_ERROR}, not {value!r}")
        self._array_on_error = value

    def add_catalog_item(self, no: str, type: str = "PART", name: str | None = None) -> None:
        """Make an item known to the sandbox's BrickLink catalogue (``POST /inventories`` creates
        only known items; every item of a lot or an order line is known already)."""
        kind = str(type).upper()
        if kind not in ITEM_TYPES:
            raise ValueError(f"unknown BrickLink item type {type!r}; expected one of {ITEM_TYPES}")
        with self.lock:
            self.catalog[(str(no), kind)] = name or self.catalog.get((str(no), kind)) or f"Part {no}"

    def _in_catalog(self, no: str, kind: str) -> bool:
        """Is (no, type) a catalogue item: added, on a lot, or on a line of an order (lines set
        directly on ``order.batches`` are looked for here; lazy benchmark orders are not)."""
        if (no, kind) in self.catalog:
            return True
        for order in self.orders.values():
            for line in order.lines if order.factory is None else ():
                if line.get("no") == no and str(line.get("type", "PART")).upper() == kind:
                    self._know(no, kind, line.get("name"))
                    return True
        return False

    def _know(self, no: str, kind: str, name: str | None) -> None:
        if (no, kind) not in self.catalog or (name and self.catalog[(no, kind)] == f"Part {no}"):
            self.catalog[(no, kind)] = name or f"Part {no}"

    # ------------------------------------------------------------------ seeding API
    def add_lot(
        self,
        no: str,
        color_id: int,
        quantity: int,
        new_or_used: str = "N",
        remarks: str | None = "",
        unit_price: Any = "0.1000",
        inventory_id: int | None = None,
        name: str | None = None,
        type: str = "PART",
        category_id: int = 0,
        description: str = "",
        status: str = "Y",
        is_retain: bool = False,
    ) -> int:
        """Add a lot to the seller's store (a seller action, not an API call); returns its id."""
        if int(quantity) < 0:
            raise ValueError("a lot's quantity cannot be negative")
        with self.lock:
            if inventory_id is None:
                inventory_id = self._new_inventory_id()
            self._vanished.pop(int(inventory_id), None)
            self.lots[int(inventory_id)] = BLLot(
                inventory_id=int(inventory_id), no=str(no), color_id=int(color_id), quantity=int(quantity),
                new_or_used=new_or_used, unit_price=dec(unit_price), remarks=remarks, name=name or f"Part {no}",
                type=type, category_id=category_id, description=description, status=status,
                completeness="C" if type == "SET" else None, is_retain=bool(is_retain),
            )  # fmt: skip
            self._know(str(no), str(type).upper(), name)
            return int(inventory_id)

    def get_lot(self, inventory_id: int) -> BLLot | None:
        """The lot as the store holds it now (None when absent or vanished at quantity 0)."""
        with self.lock:
            return self.lots.get(int(inventory_id))

    def all_lots(self) -> list[BLLot]:
        """Every lot in the store, retained lots at quantity 0 included (vanished ones are gone)."""
        with self.lock:
            return list(self.lots.values())

    def set_lot_quantity(self, inventory_id: int, quantity: int) -> None:
        """The seller edits a lot's quantity on the website (an absolute value, no API call).

        At 0 the lot disappears unless it is retained. Raises KeyError for an unknown lot.
        """
        if int(quantity) < 0:
            raise ValueError("a lot's quantity cannot be negative")
        with self.lock:
            lot = self.lots.get(int(inventory_id))
            if lot is None:
                raise KeyError(f"no lot {inventory_id} in the BrickLink store")
            lot.quantity = int(quantity)
            self._vanish_if_empty(lot)

    def set_lot_retain(self, inventory_id: int, retain: bool = True) -> None:
        """The seller ticks (or unticks) "retain" on a lot; unticking at quantity 0 deletes it."""
        with self.lock:
            lot = self.lots.get(int(inventory_id))
            if lot is None:
                raise KeyError(f"no lot {inventory_id} in the BrickLink store")
            lot.is_retain = bool(retain)
            self._vanish_if_empty(lot)

    # A lot at 0 disappears unless is_retain (marketplace-apis.md "Changing a lot"; BrickLink's docs:
    # is_retain "retains in inventory after it is sold out").
    def _vanish_if_empty(self, lot: BLLot) -> None:
        if lot.quantity == 0 and not lot.is_retain:
            self.lots.pop(lot.inventory_id, None)
            self._vanished[lot.inventory_id] = lot

    # ------------------------------------------------------------------ orders act on lots
    def _take(self, order: BLOrder, lines: Iterable[dict]) -> None:
        """Remove ``lines``' pieces from their lots (what the marketplace does on placement:
        marketplace-apis.md "Changing a lot", the listing is on hand minus open orders' pieces)."""
        for line in lines:
            inv = int(line.get("inventory_id") or 0)
            lot = self.lots.get(inv)
            if lot is None:
                continue  # a lot the store does not (or no longer) list
            pieces = min(int(line.get("quantity") or 0), lot.quantity)
            if pieces <= 0:
                continue
            lot.quantity -= pieces
            order.taken[inv] = order.taken.get(inv, 0) + pieces
            self._vanish_if_empty(lot)

    def _give_back(self, order: BLOrder, amounts: dict[int, int]) -> None:
        for inv, pieces in amounts.items():
            pieces = min(pieces, order.taken.get(inv, 0))
            if pieces <= 0:
                continue
            lot = self.lots.get(inv)
            if lot is None and inv in self._vanished:
                lot = self.lots[inv] = self._vanished.pop(inv)  # a sold-out lot comes back
            if lot is not None:
                lot.quantity += pieces
            order.taken[inv] -= pieces
            if not order.taken[inv]:
                del order.taken[inv]

    def place(self, order_id: int) -> None:
        """Remove an order's pieces from the store lots (``add_order`` does this by default;
        for an order added with ``reduce_stock=False`` or whose batches were set by hand)."""
        with self.lock:
            order = self.orders[int(order_id)]
            self._take(order, order.lines)

    def add_order(
        self,
        status: str = "PAID",
        buyer_name: str | None = "brickfan",
        lines: Iterable[dict] = (),
        order_id: int | None = None,
        date_ordered: dt.datetime | None = None,
        is_filed: bool = False,
        currency: str = "USD",
        reduce_stock: bool = True,
        notify: bool = True,
        **extra: Any,
    ) -> int:
        """Place a received order with one batch of ``lines`` (see module doc for line keys).

        Each line's pieces leave the lot named by its ``inventory_id`` (``reduce_stock=False``:
        leave the lots alone, e.g. for history whose pieces are already gone). An order added
        as ``CANCELLED`` is placed and cancelled: its pieces come back if ``restock_on_cancel``.
        ``extra`` sets any other :class:`BLOrder` field (buyer_email, shipping_cost, remarks,
        tracking_no, date_paid, factory for lazy lines...).

        A new order is a notified event (``GET /notifications``, the callback URL);
        ``notify=False`` places it silently (history seeded before the test, the demo's orders).
        """
        with self.lock:
            if order_id is None:
                order_id = self._next_order_id
            order_id = int(order_id)
            self._next_order_id = max(self._next_order_id, order_id + 1)
            when = date_ordered or utcnow()
            extra.setdefault("buyer_email", f"{buyer_name.lower()}@example.com" if buyer_name else None)
            extra.setdefault("address", _address(buyer_name))
            if _payment_status(status) in _PAID:
                extra.setdefault("date_paid", when + dt.timedelta(minutes=7))
            factory = extra.pop("factory", None)
            order = BLOrder(
                order_id=order_id, status=status, date_ordered=when, date_status_changed=when,
                buyer_name=buyer_name, is_filed=is_filed, currency=currency, **extra,
            )  # fmt: skip
            if factory is not None:
                order.factory = factory
            else:
                order.batches = [[self.make_line(line, currency) for line in lines]]
                if reduce_stock:
                    self._take(order, order.lines)
                    if _is_cancelled(status) and self.restock_on_cancel:
                        self._give_back(order, dict(order.taken))
                        order.restocked = True
            self.orders[order_id] = order
            if notify:
                self._order_event(order_id)
            return order_id

    place_order = add_order

    def make_line(self, line: dict, currency: str = "USD") -> dict:
        """Normalise a test-supplied line, filling defaults from a matching store lot."""
        no = str(line.get("no", "3001"))
        color_id = int(line.get("color_id", 0))
        cond = line.get("new_or_used", "N")
        lot = None
        if "inventory_id" in line:
            lot = self.lots.get(int(line["inventory_id"]))
        else:
            lot = next((x for x in self.lots.values() if (x.no, x.color_id, x.new_or_used) == (no, color_id, cond)), None)
        type_ = line.get("type", lot.type if lot else "PART")
        self._know(no, str(type_).upper(), line.get("name"))
        return {
            "inventory_id": int(line["inventory_id"]) if "inventory_id" in line else (lot.inventory_id if lot else self._new_inventory_id()),
            "no": no,
            "name": line.get("name", lot.name if lot else f"Part {no}"),
            "type": type_,
            "category_id": int(line.get("category_id", lot.category_id if lot else 0)),
            "color_id": color_id,
            "quantity": int(line.get("quantity", 1)),
            "new_or_used": cond,
            "completeness": line.get("completeness", "C" if type_ == "SET" else None),
            "unit_price": dec(line.get("unit_price", lot.unit_price if lot else "0.1000")),
            "description": line.get("description", lot.description if lot else ""),
            "remarks": line.get("remarks", lot.remarks if lot else None),
            "weight": dec(line.get("weight", "0.82")),
            "currency_code": line.get("currency_code", currency),
        }  # fmt: skip

    def set_status(self, order_id: int, status: str, by_buyer: bool = False) -> None:
        """Change an order's status. Cancelling gives its pieces back when ``restock_on_cancel``;
        leaving CANCELLED again takes them again. Shipping changes no lot.

        ``by_buyer=True``: the buyer changed it, a notified event; the seller's own changes (the
        default) are not notified (BrickLink's "Get Notifications": "Buyer updates an order status")."""
        with self.lock:
            order = self.orders[int(order_id)]
            was_cancelled = _is_cancelled(order.status)
            order.status = status
            order.date_status_changed = _bump(order.date_status_changed)
            if _payment_status(status) in _PAID and order.date_paid is None:
                order.date_paid = order.date_status_changed
            if by_buyer:
                self._order_event(order.order_id)
            if order.factory is not None:
                return  # lazy benchmark orders never touch lots
            if _is_cancelled(status) and not was_cancelled and self.restock_on_cancel:
                self._give_back(order, dict(order.taken))
                order.restocked = True
            elif was_cancelled and not _is_cancelled(status) and order.restocked:
                order.restocked = False
                self._take(order, order.lines)

    def add_batch(self, order_id: int, lines: Iterable[dict], notify: bool = True) -> int:
        """The buyer adds items: a new inner array. As on BrickLink, the order becomes UPDATED,
        its payment is cleared (status "None", no date_paid), and ``date_ordered`` and
        ``date_status_changed`` both reset to now. The new pieces leave their lots.
        (marketplace-apis.md "GET /orders/{order_id}/items" and "date_ordered is not immutable";
        the cleared payment is assumed from UPDATED's meaning.) Items added are a notified event
        (``notify=False``: silently)."""
        with self.lock:
            order = self.orders[int(order_id)]
            batch = [self.make_line(line, order.currency) for line in lines]
            order.batches.append(batch)
            if not order.restocked:
                self._take(order, batch)
            moment = max(utcnow(), order.date_ordered + _MS, order.date_status_changed + _MS)
            order.date_ordered = order.date_status_changed = moment
            order.status = "UPDATED"
            order.date_paid = None
            if notify:
                self._order_event(order.order_id)
            return len(order.batches)

    def remove_line(self, order_id: int, batch: int, inventory_id: int, notify: bool = True) -> None:
        """Remove a line by (1-based batch, inventory_id); an emptied batch stays (as ``[]``).

        The summary follows (counts and costs are derived from the lines) and
        ``date_status_changed`` moves; the line's pieces go back to their lot. Items removed are a
        notified event.
        """
        with self.lock:
            order = self.orders[int(order_id)]
            lines = order.batches[batch - 1]
            kept = [line for line in lines if line["inventory_id"] != int(inventory_id)]
            if len(kept) == len(lines):
                raise KeyError(f"no line {batch}:{inventory_id} in order {order_id}")
            removed = [line for line in lines if line["inventory_id"] == int(inventory_id)]
            lines[:] = kept
            if not order.restocked:
                back: dict[int, int] = {}
                for line in removed:
                    back[int(line["inventory_id"])] = back.get(int(line["inventory_id"]), 0) + int(line["quantity"])
                self._give_back(order, back)
            order.date_status_changed = _bump(order.date_status_changed)
            if notify:
                self._order_event(order.order_id)

    def set_filed(self, order_id: int, filed: bool = True) -> None:
        with self.lock:
            self.orders[int(order_id)].is_filed = filed

    def delete_order(self, order_id: int) -> None:
        """The order vanishes from the store: no list shows it (filed or not) and
        ``GET /orders/{id}`` and ``GET /orders/{id}/items`` answer 404 ``RESOURCE_NOT_FOUND``.
        Its lots stay as they are. KeyError for an unknown order."""
        with self.lock:
            if self.orders.pop(int(order_id), None) is None:
                raise KeyError(f"no order {order_id} in the BrickLink store")

    # ------------------------------------------------------------------ notifications
    def _order_event(self, order_id: int) -> None:
        """Record an unread Order event and, with a callback URL, POST to it (on the delivery
        thread). Timestamps strictly increase, so (type, id, timestamp) tells events apart."""
        moment = max(utcnow(), self._last_event + _MS)
        self._last_event = moment
        event = {"event_type": "Order", "resource_id": int(order_id), "timestamp": bl_time(moment)}
        self.notifications.append(event)
        if self.callback_url:
            # The documented body is the list of events; in practice it arrives empty (marketplace-apis.md
            # "Notifications"; geekrant.org 2021-02-15); a client project parses one event object: a switch.
            if self._notify_body == "empty":
                self._notify_send("POST", self.callback_url, b"")
            else:
                payload = [event] if self._notify_body == "events" else event
                self._notify_send("POST", self.callback_url, json.dumps(payload).encode("utf-8"),
                                  {"Content-Type": "application/json"})  # fmt: skip

    def _new_inventory_id(self) -> int:
        while self._next_inventory_id in self.lots or self._next_inventory_id in self._vanished:
            self._next_inventory_id += 1
        self._next_inventory_id += 1
        return self._next_inventory_id - 1

    # ------------------------------------------------------------------ HTTP
    def handle(self, req: Request, route: Route | None) -> Response:
        return self._shape_error(self._handle(req, route))

    def _handle(self, req: Request, route: Route | None) -> Response:
        denied = self.authenticate(req)
        if denied is not None:
            return denied
        if route is None:
            return error(400, "INVALID_URI", f"Invalid URI: {req.method} {req.path}")
        with self.lock:
            return route.handler(req)

    def fault(self, kind: str, opts: dict) -> Response | None:
        if kind == "500":
            return self._shape_error(error(500, "INTERNAL_SERVER_ERROR", "An unexpected error occurred"))
        if kind == "auth_in_200":
            return error(401, "BAD_OAUTH_REQUEST", "SIGNATURE_INVALID", http_status=200, with_data=False)
        if kind == "ip_mismatch":
            return self._shape_error(error(401, "BAD_OAUTH_REQUEST", "TOKEN_IP_MISMATCHED", http_status=200))
        return None

    def unknown_path(self) -> Response:
        return self._shape_error(error(400, "INVALID_URI", "Invalid URI"))

    def _shape_error(self, response: Response) -> Response:
        """The ``error_without_data`` quirk: an error envelope loses its ``data``."""
        if "error_without_data" not in self.quirks or len(response.body) > 4096:
            return response  # (error envelopes are small: a large body is data)
        try:
            body = json.loads(response.body)
        except ValueError:
            return response
        meta = body.get("meta") if isinstance(body, dict) else None
        if not isinstance(meta, dict) or meta.get("code") == 200 or "data" not in body:
            return response
        del body["data"]
        return json_response(body, response.status, response.headers)

    @staticmethod
    def parsed_body(req: Request) -> Any:
        """A write's body as recorded in ``Sandbox.writes``: the JSON value, or None."""
        try:
            return req.json()
        except ValueError:
            return None


    # ------------------------------------------------------------------ OAuth 1.0a
    # Auth failures: 401 BAD_OAUTH_REQUEST, the reason in description (marketplace-apis.md "Envelope and errors").
    def _deny(self, description: str) -> Response:
        return error(401, "BAD_OAUTH_REQUEST", description, http_status=self.auth_error_status)

    def authenticate(self, req: Request) -> Response | None:
        # OAuth 1.0a, two-legged, HMAC-SHA1 in the Authorization header, query parameters signed
        # (marketplace-apis.md "Authentication"); timestamps and nonces checked (same section).
        header = req.headers.get("Authorization") or ""
        if not header.startswith("OAuth "):
            return self._deny("BAD_OAUTH_REQUEST")
        try:  # RFC 5849, checked by sandbox/oauth1.py (not by oauthlib, which signs the client's requests)
            oauth = oauth1.parse_header(header)
            base = oauth1.base_string(req.method, req.url, req.raw_query, oauth)
        except (ValueError, TypeError, KeyError):
            return self._deny("BAD_OAUTH_REQUEST")
        if oauth.get("oauth_signature_method") != "HMAC-SHA1":
            return self._deny("SIGNATURE_METHOD_UNSUPPORTED")
        if oauth.get("oauth_consumer_key") != self.consumer_key:
            return self._deny("CONSUMER_KEY_UNKNOWN")
        if oauth.get("oauth_token") != self.token_value:
            return self._deny("TOKEN_VALUE_UNKNOWN")
        try:
            stamp = int(oauth.get("oauth_timestamp", ""))
        except ValueError:
            return self._deny("TIMESTAMP_REJECTED")
        now = time.time()
        if self.check_timestamps and abs(now - stamp) > TIMESTAMP_TOLERANCE:
            return self._deny("TIMESTAMP_REJECTED")
        expected = oauth1.hmac_sha1(base, self.consumer_secret, self.token_secret)
        given = oauth.get("oauth_signature", "")
        if not hmac.compare_digest(expected.encode(), given.encode()):
            return self._deny("SIGNATURE_INVALID")
        # A JSON body is not part of the OAuth signature (requests-oauthlib signs method, URL and
        # query only); when a client adds oauth_body_hash it must match the body sent (the OAuth
        # body-hash extension; whether BrickLink checks it is not documented: assumed).
        body_hash = oauth.get("oauth_body_hash")
        if body_hash is not None:
            actual = base64.b64encode(hashlib.sha1(req.body).digest()).decode("ascii")
            if not hmac.compare_digest(actual.encode(), body_hash.encode()):
                return self._deny("SIGNATURE_INVALID")
        nonce = oauth.get("oauth_nonce", "")
        if not nonce or not self.remember_nonce(nonce, now):
            return self._deny("NONCE_USED")
        return None

    def remember_nonce(self, nonce: str, now: float | None = None) -> bool:
        """Record a nonce seen at ``now`` (``time.time()``): False when it was already seen within
        :data:`NONCE_WINDOW`. O(1) amortised: nonces are kept in arrival order and those older than
        the window are dropped from the front (a replay that old has a refused timestamp anyway)."""
        now = time.time() if now is None else now
        with self.lock:
            order, seen = self._nonce_order, self._nonces
            horizon = now - NONCE_WINDOW
            while order and order[0][0] <= horizon:
                stamp, old = order.popleft()
                if seen.get(old) == stamp:
                    del seen[old]
            if nonce in seen:
                return False
            seen[nonce] = now
            order.append((now, nonce))
            return True

    # ------------------------------------------------------------------ handlers
    def _get_orders(self, req: Request) -> Response:
        # direction in (default) / out, status comma list with "-" excludes, filed hides filed orders,
        # no date filter, no paging (marketplace-apis.md "GET /orders")
        direction = req.query.get("direction", "in").lower()
        if direction not in ("in", "out"):
            return error(400, "PARAMETER_MISSING_OR_INVALID", "direction must be 'in' or 'out'")
        # filed: "true"/"false", default false (marketplace-apis.md "GET /orders"); the live API also
        # takes "True"/"False", which python bricklink_api sends (Python bools as params: BrickBytes/
        # bricklink_api order.py + helper.py) -- accepted, any case. Anything else: refused (assumed).
        filed = req.query.get("filed", "false").lower()
        if filed not in ("true", "false"):
            return error(400, "PARAMETER_MISSING_OR_INVALID", "filed must be 'true' or 'false'")
        include, exclude = split_filter(req.query.get("status"))
        if direction == "out":
            return ok([])  # the sandbox seller never buys
        wanted = filed == "true"
        orders = [
            o for o in self.orders.values() if o.is_filed == wanted and passes(o.status, include, exclude)
        ]
        orders.sort(key=lambda o: (o.date_ordered, o.order_id), reverse=True)
        return ok([self._summary(o) for o in orders])

    def _order_or_404(self, req: Request) -> BLOrder | Response:
        raw = req.params["id"]
        if not raw.isdigit():
            return error(400, "PARAMETER_MISSING_OR_INVALID", f"Invalid order id: {raw}")
        order = self.orders.get(int(raw))
        if order is None:
            return error(404, "RESOURCE_NOT_FOUND", f"Order not found: {raw}")
        return order

    def _get_order(self, req: Request) -> Response:
        order = self._order_or_404(req)
        return order if isinstance(order, Response) else ok(self._full(order))

    # items: an array of arrays, one per batch (marketplace-apis.md "GET /orders/{order_id}/items", capture)
    def _get_items(self, req: Request) -> Response:
        order = self._order_or_404(req)
        if isinstance(order, Response):
            return order
        return ok([[self._item(line, order) for line in batch] for batch in order.current_batches()])

    # GET /inventories: item_type, status (Y, S/B/C, N, R), category_id, color_id, comma lists with "-"
    # excludes; without status every status comes back (BrickLink's "Get Store Inventories" page; copy
    # in 1benisin/brickops docs/external-documentation/api-bricklink/inventory.md). No paging.
    def _get_inventories(self, req: Request) -> Response:
        filters = {name: split_filter(req.query.get(name)) for name in ("item_type", "status", "category_id", "color_id")}
        lots = [
            lot
            for lot in self.lots.values()
            if passes(lot.type, *filters["item_type"])
            and passes(lot.status, *filters["status"])
            and passes(lot.category_id, *filters["category_id"])
            and passes(lot.color_id, *filters["color_id"])
        ]
        return ok([self._lot_json(lot) for lot in lots])

    # one lot, stockroom ones too; 404 RESOURCE_NOT_FOUND once deleted (marketplace-apis.md "Changing a lot")
    def _get_inventory(self, req: Request) -> Response:
        raw = req.params["id"]
        lot = self.lots.get(int(raw)) if raw.isdigit() else None
        if lot is None:
            return error(404, "RESOURCE_NOT_FOUND", f"Inventory not found: {raw}")
        return ok(self._lot_json(lot))

    def _put_inventory(self, req: Request) -> Response:
        """``PUT /inventories/{id}``: ``quantity`` is a change; at 0 the lot goes unless retained."""
        raw = req.params["id"]
        lot = self.lots.get(int(raw)) if raw.isdigit() else None
        if lot is None:
            return error(404, "RESOURCE_NOT_FOUND", f"Inventory not found: {raw}")
        # a JSON body (marketplace-apis.md "Changing a lot"; 415 and INVALID_REQUEST_BODY are listed in
        # "Envelope and errors", the latter captured in BrickSync's bricklink.c)
        if req.content_type != "application/json":
            return error(415, "UNSUPPORTED_MEDIA_TYPE", f"Unsupported media type: {req.content_type or 'none'}")
        try:
            body = req.json()
        except ValueError:
            return error(400, "INVALID_REQUEST_BODY", "The request body is not valid JSON")
        if not isinstance(body, dict):
            return error(400, "INVALID_REQUEST_BODY", "The request body must be a JSON object")
        # Since 2024-02-01 a quantity change without a description is refused, with exactly this
        # answer (BrickSync issues #40/#41, fixed by commit 810de3b "always send the description");
        # "must not be null": a null one too.
        if ("quantity" in body and "description" not in body) or ("description" in body and body["description"] is None):
            return error(400, "PARAMETER_MISSING_OR_INVALID", "String input must not be null")
        changes: dict[str, Any] = {}
        try:
            for name, convert in _LOT_FIELDS.items():
                if name in body:
                    changes[name] = convert(body[name])
        except (ValueError, TypeError, ArithmeticError) as exc:
            return error(400, "PARAMETER_MISSING_OR_INVALID", str(exc))
        if "description" in changes:
            # What is sent replaces the description ("" wipes it: marketplace-apis.md, BrickSync #40);
            # entities already there are kept, so what GET returned comes back byte-for-byte.
            wire = bl_entities_once(changes.pop("description"))
            changes.update(description_wire=wire, description=html.unescape(wire))
        # quantity is always a change (BrickLink's update-inventory page; BrickSync sends "%d")
        delta = changes.pop("quantity", 0)
        if lot.quantity + delta < 0:
            # undocumented (marketplace-apis.md; BrickSync clamps before sending): the below_zero switch
            if self.below_zero == "refuse":
                return error(400, "PARAMETER_MISSING_OR_INVALID",
                             f"quantity: {lot.quantity} {delta:+d} would go below 0")  # fmt: skip
            delta = -lot.quantity
        stock_room = changes.pop("is_stock_room", None)
        room = changes.pop("stock_room_id", None)
        if stock_room is True or (stock_room is None and room is not None and lot.status in ("S", "B", "C")):
            changes["status"] = {"A": "S", "B": "B", "C": "C"}[room or "A"]
        elif stock_room is False:
            changes["status"] = "Y"
        updated = dataclasses.replace(lot, quantity=lot.quantity + delta, **changes)
        if not req.dry_run:
            self.lots[lot.inventory_id] = updated
            self._vanish_if_empty(updated)
        return ok(self._lot_json(updated))

    # ------------------------------------------------------------------ POST /inventories
    def _post_inventories(self, req: Request) -> Response:
        """``POST /inventories``: one inventory resource creates one lot and answers it, with its
        new ``inventory_id``, in ``data``; an array creates each and answers an empty ``data``
        (BrickLink's "Create Store Inventory" / "Create Store Inventories"; marketplace-apis.md
        "Creating a lot"). Only items of the catalogue (``catalog``, ``add_catalog_item``)."""
        # a JSON body, like PUT (marketplace-apis.md "Envelope and errors": 415, INVALID_REQUEST_BODY)
        if req.content_type != "application/json":
            return error(415, "UNSUPPORTED_MEDIA_TYPE", f"Unsupported media type: {req.content_type or 'none'}")
        try:
            body = req.json()
        except ValueError:
            return error(400, "INVALID_REQUEST_BODY", "The request body is not valid JSON")
        if isinstance(body, dict):
            lot = self._new_lot(body)
            if isinstance(lot, Response):
                return lot
            lot.inventory_id = self._new_inventory_id()
            if not req.dry_run:
                self.lots[lot.inventory_id] = lot
            return self._created(self._lot_json(lot))
        if not isinstance(body, list):
            return error(400, "INVALID_REQUEST_BODY", "The request body must be an inventory object or an array of them")
        if not body:
            return error(400, "PARAMETER_MISSING_OR_INVALID", "No inventory to create: the array is empty")
        made = [self._new_lot(element, index) for index, element in enumerate(body)]
        refused = next((x for x in made if isinstance(x, Response)), None)
        # whether the valid elements of a refused array are created is undocumented: a switch
        if refused is not None and self.array_on_error == "create_none":
            return refused
        for lot in made:
            if isinstance(lot, BLLot):
                lot.inventory_id = self._new_inventory_id()
                if not req.dry_run:
                    self.lots[lot.inventory_id] = lot
        # an array answers an empty data: no ids (BrickLink's "Create Store Inventories": "returns an empty
        # data"); an object, as the envelope's data always is (BrickSync sends an array of one and reads
        # data.inventory_id only when present: bsapplydiff.c bsBrickLinkApplyDiffCreate, bricklink.c blReadLotID)
        return refused or self._created({})

    def _created(self, data: Any) -> Response:
        if self.created_code == 201:  # OK_CREATED, among BrickLink's result codes: the created_code switch
            return json_response(_envelope(201, "OK_CREATED", "OK_CREATED", drop_nones(data)), 201)
        return ok(data)

    def _new_lot(self, body: Any, index: int | None = None) -> BLLot | Response:
        """Validate one inventory resource of a ``POST /inventories``; the lot it would create
        (``inventory_id`` 0 until stored) or the refusal."""
        where = "" if index is None else f"inventory [{index}]: "

        def bad(text: str) -> Response:
            return error(400, "PARAMETER_MISSING_OR_INVALID", where + text)

        if not isinstance(body, dict):
            return error(400, "INVALID_REQUEST_BODY", where + "an inventory must be a JSON object")
        # item{no, type}: required, and only items of the BrickLink catalogue (BrickLink's "Create Store
        # Inventories": "you can create an inventory only with items in the BL Catalog"); how an unknown
        # item is refused is undocumented: unknown_item_status (400 PARAMETER_MISSING_OR_INVALID / 404)
        item = body.get("item")
        if not isinstance(item, dict) or not isinstance(item.get("no"), str) or not item["no"]:
            return bad("item.no is required")
        kind = item.get("type")
        if not isinstance(kind, str) or kind.upper() not in ITEM_TYPES:
            return bad(f"item.type: {kind!r} is not one of {', '.join(ITEM_TYPES)}")
        no, kind = item["no"], kind.upper()
        if not self._in_catalog(no, kind):
            if self.unknown_item_status == 404:
                return error(404, "RESOURCE_NOT_FOUND", where + f"Item not found: {kind} {no}")
            return bad(f"item: {kind} {no} is not in the BrickLink catalog")
        fields: dict[str, Any] = {}
        try:
            # color_id: one of BrickLink's colours (the packaged table; 0 is "(Not Applicable)")
            color = body.get("color_id", 0)
            if isinstance(color, bool) or not isinstance(color, int) or color not in colors().by_bl:
                raise ValueError(f"color_id: {color!r} is not a BrickLink colour")
            # quantity: a whole number of pieces, > 0 (a new lot's quantity is a value, not a change)
            quantity = body.get("quantity")
            if isinstance(quantity, str) and quantity.strip().isdigit():
                quantity = int(quantity)
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                raise ValueError(f"quantity: {body.get('quantity')!r} is not a whole number > 0")
            if "unit_price" not in body:
                raise ValueError("unit_price is required")
            price = _price("unit_price")(body["unit_price"])
            if price <= 0:
                raise ValueError(f"unit_price: {body['unit_price']!r} is not > 0")
            condition = _choice("new_or_used", ("N", "U"))(body.get("new_or_used"))
            # completeness only for sets (BrickLink's create pages: "only when item.type is set")
            completeness = body.get("completeness")
            if kind == "SET":
                completeness = _choice("completeness", ("C", "B", "S"))(completeness or "C")
            elif completeness is not None:
                raise ValueError(f"completeness is only for sets, not a {kind}")
            for name in ("my_cost", "remarks", "description", "is_retain", "bulk", "sale_rate"):
                if name in body:
                    fields[name] = _LOT_FIELDS[name](body[name])
            # stock_room_id only with is_stock_room true (BrickLink's create pages); A when not given
            stock_room = _flag("is_stock_room")(body["is_stock_room"]) if "is_stock_room" in body else False
            room = _choice("stock_room_id", ("A", "B", "C"))(body["stock_room_id"]) if body.get("stock_room_id") is not None else None
            if room is not None and not stock_room:
                raise ValueError("stock_room_id is only for a lot created in a stockroom (is_stock_room true)")
            # tier prices: all six fields or none (BrickLink's create pages)
            tier_names = [f"tier_{kind_}{n}" for n in (1, 2, 3) for kind_ in ("quantity", "price")]
            given = [name for name in tier_names if name in body]
            tiers: tuple[tuple[int, Decimal], ...] = ()
            if given and len(given) != len(tier_names):
                raise ValueError("tier prices: send all six tier_quantity/tier_price fields or none")
            if given:
                tiers = tuple((_count(f"tier_quantity{n}", 0, 1_000_000)(body[f"tier_quantity{n}"]),
                               _price(f"tier_price{n}")(body[f"tier_price{n}"])) for n in (1, 2, 3))  # fmt: skip
        except (ValueError, TypeError, ArithmeticError) as exc:
            return bad(str(exc))
        description = fields.pop("description", None) or ""
        wire = bl_entities_once(description)
        return BLLot(
            inventory_id=0, no=no, color_id=color, quantity=quantity, new_or_used=condition, unit_price=price,
            remarks=fields.pop("remarks", None), name=self.catalog[(no, kind)], type=kind,
            category_id=next((x.category_id for x in self.lots.values() if x.no == no), 0),
            description=html.unescape(wire), description_wire=wire,
            status={"A": "S", "B": "B", "C": "C"}[room or "A"] if stock_room else "Y",
            completeness=completeness, date_created=utcnow().date(), tiers=tiers, **fields,
        )  # fmt: skip

    # unread events, a hint only (marketplace-apis.md "Notifications"; BrickLink's "Get Notifications":
    # "returns a list of unread push notifications"). Whether reading marks them read is unconfirmed:
    # notifications_mark_read (False: they stay listed, as before; True: each is returned once).
    def _get_notifications(self, req: Request) -> Response:
        events = list(self.notifications)
        if self.notifications_mark_read and not req.dry_run:
            self.notifications.clear()
        return ok(events)

    # ------------------------------------------------------------------ serialisation
    def _lot_json(self, lot: BLLot) -> dict:
        return self._item_quirks(lot.to_json())

    def _item_quirks(self, data: dict) -> dict:
        """The quirks of an order item or a store lot (both carry ``item`` and ``color_name``)."""
        if "category_id_camel" in self.quirks:
            item = data["item"]
            data["item"] = {("categoryID" if k == "category_id" else k): v for k, v in item.items()}
        if "no_color_name" in self.quirks:
            data.pop("color_name", None)
        return data

    def _cost(self, order: BLOrder, full: bool) -> dict:
        _, _, subtotal, _ = order.totals()
        grand = subtotal + order.shipping_cost
        cost: dict[str, Any] = {"currency_code": order.currency, "subtotal": money(subtotal),
                                "grand_total": money(grand), "final_total": money(grand)}  # fmt: skip
        if "no_final_total" in self.quirks:
            del cost["final_total"]
        if full:
            cost.update(
                etc1="0.0000", etc2="0.0000", insurance="0.0000", shipping=money(order.shipping_cost),
                credit="0.0000", coupon="0.0000", vat_rate="0.00", vat_amount="0.0000",
            )  # fmt: skip
        return cost

    def _summary(self, order: BLOrder, full: bool = False) -> dict:
        count, unique, _, _ = order.totals()
        paid = order.payment_status in _PAID
        return {
            "order_id": order.order_id,
            "date_ordered": bl_time(order.date_ordered),
            "date_status_changed": bl_time(order.date_status_changed),
            "seller_name": self.seller_name,
            "store_name": self.store_name,
            "buyer_name": order.buyer_name,
            "buyer_email": order.buyer_email if full else None,
            "buyer_order_count": order.buyer_order_count if full else None,
            "require_insurance": False if full else None,
            "status": order.status,
            "is_invoiced": True if full else None,
            "remarks": order.remarks if full else None,
            "total_count": count,
            "unique_count": unique,
            "total_weight": money(order.totals()[3], 2) if full else None,
            "is_filed": order.is_filed,
            "drive_thru_sent": False if full else None,
            "salesTax_collected_by_bl": False,
            "vat_collected_by_bl": False,
            "payment": {
                "method": order.payment_method,
                "currency_code": order.currency,
                "date_paid": bl_time(order.date_paid or order.date_ordered + dt.timedelta(minutes=7)) if paid else None,
                "status": order.payment_status,
            },
            "cost": self._cost(order, full),
            "disp_cost": self._cost(order, full),
        }

    def _full(self, order: BLOrder) -> dict:
        data = self._summary(order, full=True)
        shipped = order.status.upper() in ("SHIPPED", "RECEIVED", "COMPLETED")
        data["shipping"] = {
            "method": order.shipping_method,
            "method_id": order.shipping_method_id,
            "tracking_no": None if "tracking_link_only" in self.quirks else order.tracking_no,
            "tracking_link": tracking_link(order.tracking_no) if order.tracking_no else None,
            "date_shipped": bl_time(order.date_status_changed) if shipped else None,
            "address": order.address,
        }
        # keep "payment"/"cost"/"disp_cost" last, as the real full order does
        for key in ("payment", "cost", "disp_cost"):
            data[key] = data.pop(key)
        return data

    def _item(self, line: dict, order: BLOrder) -> dict:
        price = money(line["unit_price"])
        currency = line.get("currency_code") or order.currency
        return self._item_quirks({
            "inventory_id": line["inventory_id"],
            "item": {"no": line["no"], "name": bl_entities(line["name"]), "type": line["type"],
                     "category_id": line["category_id"]},  # fmt: skip
            "color_id": line["color_id"],
            "color_name": colors().bl_name(line["color_id"]),
            "quantity": line["quantity"],
            "new_or_used": line["new_or_used"],
            "completeness": line.get("completeness"),
            "unit_price": price,
            "description": bl_entities(line.get("description")),
            "remarks": line.get("remarks"),
            "disp_unit_price": price,
            "disp_unit_price_final": price,
            "unit_price_final": price,
            "order_cost": "0.0000",
            "currency_code": currency,
            "disp_currency_code": currency,
            "weight": money(dec(line["weight"]) * int(line["quantity"]), 2),
        })


def tracking_link(number: str) -> str:
    """The carrier's tracking page for a parcel, as BrickLink links it."""
    if number.isdigit() and number.startswith("94"):
        return f"https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"
    if number.upper().endswith("GB"):
        return f"https://www.royalmail.com/track-your-item#/tracking-results/{number}"
    return f"https://www.ups.com/track?loc=en_US&tracknum={number}"


_MS = dt.timedelta(milliseconds=1)


def _delta(value: Any) -> int:
    """BrickLink's quantity change: "+3", "-2", "17" or a JSON integer (which adds)."""
    if isinstance(value, bool):
        raise ValueError(f"quantity: {value!r} is not a quantity change")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError(f"quantity: {value!r} is not a quantity change (send \"+3\" or \"-2\")")


def _flag(name: str) -> Callable[[Any], bool]:
    def convert(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}: {value!r} is not true or false")
        return value

    return convert


def _price(name: str) -> Callable[[Any], Decimal]:
    def convert(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"{name}: {value!r} is not an amount")
        try:
            amount = Decimal(str(value).strip())
        except ArithmeticError:
            raise ValueError(f"{name}: {value!r} is not an amount") from None
        if not amount.is_finite() or amount < 0:
            raise ValueError(f"{name}: {value!r} is not an amount")
        return amount

    return convert


def _text(name: str) -> Callable[[Any], str | None]:
    def convert(value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name}: {value!r} is not text")
        return value

    return convert


def _choice(name: str, allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        return value

    return convert


def _count(name: str, low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name}: {value!r} is not a whole number from {low} to {high}")
        return value

    return convert


# The lot fields a PUT may change (BrickLink's "Update Store Inventory" page lists them; anything else
# in the body is ignored: assumed). is_retain true sets it, false puts it back.
_LOT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "quantity": _delta,
    "unit_price": _price("unit_price"),
    "my_cost": _price("my_cost"),
    "remarks": _text("remarks"),
    "description": _text("description"),
    "is_retain": _flag("is_retain"),
    "is_stock_room": _flag("is_stock_room"),
    "stock_room_id": _choice("stock_room_id", ("A", "B", "C")),
    "new_or_used": _choice("new_or_used", ("N", "U")),
    "completeness": _choice("completeness", ("C", "B", "S")),
    "bulk": _count("bulk", 1, 1_000_000),
    "sale_rate": _count("sale_rate", 0, 100),
}


def _payment_status(status: str) -> str:
    return _PAYMENT_STATUS.get(str(status).upper(), "Received")


def _is_cancelled(status: str) -> bool:
    return str(status).upper() == "CANCELLED"


def _bump(previous: dt.datetime) -> dt.datetime:
    """Now, but strictly later than ``previous`` so a change is always visible."""
    return max(utcnow(), previous + dt.timedelta(milliseconds=1))


def _address(buyer_name: str | None) -> dict:
    name = (buyer_name or "Brick Fan").title()
    return {
        "name": {"full": name},
        "full": f"{name}\n12 Stud Street\nBillund Falls, OR 97000\nUS",
        "address1": "12 Stud Street",
        "city": "Billund Falls",
        "state": "OR",
        "postal_code": "97000",
        "country_code": "US",
    }
