"""BrickOwl API v1 adapter: the ``key`` parameter, error objects inside 2xx, string numbers."""

from __future__ import annotations

import datetime as dt
import functools
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

import json

from marketsync.errors import (
    BadResponseError,
    BudgetExhaustedError,
    DeadlineError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    TransientError,
)
from marketsync import parse
from marketsync.parse import JsonArray
from marketsync.providers.http import (
    HttpClient,
    Pacer,
    describe_non_json,
    error_for_status,
    json_or_none,
    retry_after_seconds,
)
from marketsync.model import (
    Status,
    is_open,
    ChangeResult,
    Created,
    NewLot,
    Order,
    OrderLine,
    OrderSummary,
    Outcome,
    QuantityChange,
    RemoteLot,
    SyncListing,
)
from marketsync.rules.boid import brickowl_condition, split_boid

if TYPE_CHECKING:
    from marketsync.providers import Common

NAME = "brickowl"
BATCH_LIMIT = 50  # sub-requests per bulk/batch call

# BrickOwl's statuses (by name, and by id for lists that carry only the id) in the unified lifecycle.
STATUS = {
    "pending": "pending",
    "payment submitted": "pending",
    "payment received": "paid",
    "processing": "processing",
    "on hold": "processing",
    "processed": "packed",
    "shipped": "shipped",
    "received": "completed",
    "cancelled": "cancelled",
}
STATUS_IDS = {
    "0": "Pending",
    "1": "Payment Submitted",
    "2": "Payment Received",
    "3": "Processing",
    "4": "Processed",
    "5": "Shipped",
    "6": "Received",
    "7": "On Hold",
    "8": "Cancelled",
}


def unified_status(name: str | None, status_id: Any = None) -> Status:
    unified = STATUS.get((name or "").strip().lower())
    if unified is None and status_id is not None:
        by_id = STATUS_IDS.get(str(status_id).strip())
        unified = STATUS.get(by_id.lower()) if by_id else None
    return Status(unified or Status.UNKNOWN)
LIST_LIMIT = 5000  # the API's maximum; a full answer means the list was cut short

ALT_ID_TYPES = ("ldraw", "peeron_id", "design_id")  # in order of trust for BrickLink numbers
_ALT_RANK = frozenset(ALT_ID_TYPES)


def decode(label: str, response: requests.Response) -> Any:
    body = json_or_none(response)
    if body is None:
        message = describe_non_json(label, response)
        if response.status_code == 429:
            raise error_for_status(NAME, 429, message, retry_after_seconds(response))
        raise TransientError(NAME, message)  # throttling or an outage page
    error = body.get("error") if isinstance(body, dict) else None
    if error is not None or response.status_code >= 300:
        detail = error.get("status") or error.get("message") if isinstance(error, dict) else error
        detail = parse.text(detail) or f"HTTP {response.status_code}"
        status = response.status_code if response.status_code >= 300 else _status_of(detail)
        raise error_for_status(NAME, status, f"{label} refused: {detail}", retry_after_seconds(response))
    return body


# BrickOwl answers most errors with HTTP 200 and an ``error`` text, no code: the text is all there is
# to tell a permission problem from a missing item (first match wins; anything else is a refusal).
_ERROR_WORDS = ((("permission", "denied", "not allowed"), 403), (("not found", "no such"), 404),
                (("key", "auth"), 401))


def _status_of(detail: str) -> int:
    lowered = detail.lower()
    return next((status for words, status in _ERROR_WORDS if any(word in lowered for word in words)), 400)


@dataclass
class OrderList:
    summaries: list[OrderSummary]
    truncated: bool  # the answer held exactly ``limit`` orders: older ones may be missing


class BrickOwl:
    name = NAME

    def __init__(self, client: HttpClient, list_limit: int = LIST_LIMIT, batch_pacer: Pacer | None = None):
        self.client = client
        self.list_limit = list_limit
        self.batch_pacer = batch_pacer  # bulk/batch has its own, lower rate limit

    # --- the seller's lots ---------------------------------------------------------------
    write_batch_size = BATCH_LIMIT
    deletes_empty_lots = False  # a lot at 0 stays (inactive)

    def list_lots(self) -> list[RemoteLot]:
        """Every lot, the empty and not-for-sale ones too (``active_only`` defaults to 1). A 404
        here is an error, never an empty store: it would make every listing look deleted."""
        return self._lots({"active_only": "0"})

    def read_lot(self, remote_lot_id: str) -> RemoteLot | None:
        try:
            lots = self._lots({"active_only": "0", "lot_id": remote_lot_id})
        except NotFoundError:
            return None  # that one lot is gone
        found = [lot for lot in lots if lot.remote_lot_id == remote_lot_id]
        return found[0] if found else None

    def _lots(self, params: dict[str, str]) -> list[RemoteLot]:
        data = self.client.get("/inventory/list", params)
        if isinstance(data, dict):
            data = list(data.values())
        if not isinstance(data, list):
            raise error_for_status(NAME, 502, "GET /inventory/list answered with no lot list")
        return [lot for lot in map(remote_lot, data) if lot is not None]

    def change_quantities(self, changes: list[QuantityChange]) -> list[ChangeResult]:
        """Relative changes (``relative_quantity``: an absolute value would overwrite a sale made a
        moment earlier): one change through ``inventory/update``, more through ``bulk/batch``
        (up to 50 a call, each sub-request with its own answer)."""
        if not changes:
            return []
        if len(changes) > BATCH_LIMIT:
            raise ValueError(f"at most {BATCH_LIMIT} changes per call")
        params = [{"lot_id": c.remote_lot_id, "relative_quantity": str(c.delta)} for c in changes]
        try:
            if len(changes) == 1:
                outcomes = [body_outcome(self.client.write("POST", "/inventory/update", form=params[0]))]
            else:
                requests_json = json.dumps({"requests": [
                    {"endpoint": "inventory/update", "request_method": "POST", "params": [p]} for p in params]})
                data = self.client.write("POST", "/bulk/batch", form={"requests": requests_json},
                                         pacer=self.batch_pacer)
                outcomes = batch_outcomes(data, len(changes))
        except BudgetExhaustedError as error:
            return [ChangeResult(c.remote_lot_id, Outcome.NOT_SENT, error.detail) for c in changes]
        except (RequestRejectedError, NotFoundError, PermissionDeniedError, RateLimitedError) as error:
            return [ChangeResult(c.remote_lot_id, Outcome.REFUSED, error.detail) for c in changes]
        except (TransientError, BadResponseError) as error:
            return [ChangeResult(c.remote_lot_id, Outcome.UNKNOWN, error.detail) for c in changes]
        return [ChangeResult(c.remote_lot_id, *outcome) for c, outcome in zip(changes, outcomes)]

    # --- creating lots (``stock mirror``) -------------------------------------------------
    create_batch_size = BATCH_LIMIT

    def create_lots(self, lots: list[NewLot]) -> list[Created]:
        """``inventory/create`` for one lot, ``bulk/batch`` for up to 50 (paced under the batch
        limit), never retried. Each sub-request is classified as strictly as a quantity change:
        applied only on an explicit success that names the new ``lot_id``; anything else is
        UNKNOWN (find the lot by its ``external_id_1`` before anything is sent again)."""
        if not lots:
            return []
        if len(lots) > BATCH_LIMIT:
            raise ValueError(f"at most {BATCH_LIMIT} creations per call")
        left = self.client.deadline.remaining()
        if left is not None and left <= 0:
            return [Created(lot.ref, Outcome.NOT_SENT, None, "this run's time is used up") for lot in lots]
        params = [created_params(lot) for lot in lots]
        try:
            if len(lots) == 1:
                data = self.client.write("POST", "/inventory/create", form=params[0])
                outcomes, bodies = [body_outcome(data)], [data]
            else:
                requests_json = json.dumps({"requests": [
                    {"endpoint": "inventory/create", "request_method": "POST", "params": [p]} for p in params]})
                data = self.client.write("POST", "/bulk/batch", form={"requests": requests_json},
                                         pacer=self.batch_pacer)
                outcomes, bodies = batch_outcomes(data, len(lots), "inventory/create"), batch_bodies(data, len(lots))
        except BudgetExhaustedError as error:
            return [Created(lot.ref, Outcome.NOT_SENT, None, error.detail) for lot in lots]
        except (RequestRejectedError, NotFoundError, PermissionDeniedError, RateLimitedError) as error:
            return [Created(lot.ref, Outcome.REFUSED, None, error.detail) for lot in lots]
        except (TransientError, BadResponseError, DeadlineError) as error:
            return [Created(lot.ref, Outcome.UNKNOWN, None, error.detail) for lot in lots]
        return [_created(lot, outcome, body) for lot, outcome, body in zip(lots, outcomes, bodies)]

    def budget(self) -> tuple[int, int] | None:
        return None  # a per-minute limit (paced), no daily quota

    def find_created(self, lot: NewLot) -> list[RemoteLot]:
        """The lots whose ``external_id_1`` is the BrickLink lot the creation named, of that item
        and bin, for sale (one call)."""
        if not lot.external_id:
            return []
        found = self._lots({"active_only": "0", "external_id_1": lot.external_id})
        return [x for x in found if x.for_sale and x.bricklink_lot_id == lot.external_id
                and split_boid(x.boid)[0] == lot.item_no and (x.location or "") == lot.note]

    def list_orders(
        self, *, since: dt.datetime | None = None, status: str | None = None, limit: int = LIST_LIMIT
    ) -> OrderList:
        """Orders updated at or after ``since`` (newest first), optionally of one status id."""
        params: dict[str, Any] = {"list_type": "store", "sort_by": "updated", "limit": str(limit)}
        if since is not None:
            params["order_time"] = str(int(since.timestamp()))
        if status is not None:
            params["status"] = status
        listed: OrderList = self.client.get("/order/list", params, decode=functools.partial(decode_orders, limit=limit))
        return listed

    def list_for_sync(self, *, first: bool, open_ids: set[str], since: dt.datetime | None = None,
                      full: bool = False) -> SyncListing:
        """One call in the steady state: orders updated since ``since`` (the window starts at the
        oldest open order, so every open order is in it). A list cut short at the API's limit is
        read again status by status. An open order missing from a complete list is looked up; one
        BrickOwl no longer has is reported on every run until the seller releases it."""
        window, limit = None if first or full else since, self.list_limit
        listing = self.list_orders(since=window, limit=limit)
        by_id = {s.order_id: s for s in listing.summaries}  # the newest, whatever their status
        warnings: list[str] = []
        complete = True
        if listing.truncated:
            for status_id, name in STATUS_IDS.items():
                part = self.list_orders(since=window, status=status_id, limit=limit)
                by_id.update((s.order_id, s) for s in part.summaries)
                if not part.truncated:
                    continue
                # order/list has no paging and no upper time bound: past the newest `limit` of one
                # status nothing can be listed. For a closed status that is history that holds no
                # stock: said, and the window counts as read (else every run re-lists it all). An
                # open status cut short may hide orders that hold stock: the window stays open.
                if is_open(unified_status(name)):
                    complete = False
                    warnings.append(f"more than {limit} {name} orders in the window; older ones were not listed "
                                    "(BrickOwl lists at most that many per status); they are read again next run")
                else:
                    warnings.append(f"more than {limit} {name} orders: BrickOwl lists only the newest {limit} of a "
                                    "status, so older closed ones are not stored (they hold no stock)")
        for order_id in sorted(open_ids - by_id.keys()) if complete else []:
            try:
                view = self.client.get("/order/view", {"order_id": order_id})
            except NotFoundError:
                warnings.append(f"order {order_id} is open here but BrickOwl no longer has it (not listed, view "
                                f"404); its stock stays reserved until you run "
                                f"'marketsync reserve --release brickowl:{order_id}'")
                continue
            if isinstance(view, dict):
                by_id[order_id] = summary({**view, "order_id": order_id})
        return SyncListing(list(by_id.values()), warnings, complete)

    def fetch(self, head: OrderSummary) -> tuple[Order, list[OrderLine]]:
        order = self.fetch_order(head.order_id)
        # The fingerprint kept is the detail's: it describes what is stored. A list that runs ahead
        # of the detail (lists are only eventually consistent) then differs on the next run, and the
        # order is fetched again until the two agree -- never frozen at the list's word.
        if order.fingerprint != head.fingerprint:
            order.listed_as = head.provider_status
        lines = self.fetch_lines(head.order_id)
        for line in lines:
            line.currency = order.currency  # BrickOwl prices lines in the store's base currency
        return order, lines

    def fetch_named(self, order_id: str) -> tuple[Order, list[OrderLine]]:
        """One order a hint named: ``order/view`` and ``order/items`` (two calls; an unknown order
        costs the one view)."""
        order = self.fetch_order(order_id)
        lines = self.fetch_lines(order_id)
        for line in lines:
            line.currency = order.currency
        return order, lines

    def register_notify(self, ip: str) -> None:
        """``POST order/notify``: BrickOwl sends a GET to ``http://IP:42500/brick_owl_order_notify``
        when an order is placed; an empty ``ip`` turns it off. A write: never retried."""
        self.client.write("POST", "/order/notify", form={"ip": ip})

    def fetch_order(self, order_id: str) -> Order:
        data = self.client.get("/order/view", {"order_id": order_id})
        if not isinstance(data, dict):
            raise error_for_status(NAME, 502, f"GET /order/view answered with no order for {order_id}")
        return order_from(order_id, data)

    def fetch_lines(self, order_id: str) -> list[OrderLine]:
        data = self.client.get("/order/items", {"order_id": order_id})
        if isinstance(data, dict):
            data = list(data.values())
        if not isinstance(data, list):
            raise error_for_status(NAME, 502, f"GET /order/items answered with no item list for {order_id}")
        return [line_from(order_id, index, raw) for index, raw in enumerate(data) if isinstance(raw, dict)]

    # --- catalog (used by marketsync.identity) ----------------------------------------------
    def color_list(self) -> dict[int, tuple[str | None, int | None]]:
        """BrickOwl colour id -> (BrickOwl's name, BrickLink colour id or None where BrickLink has
        no equivalent: negative placeholders and nulls in ``bl_ids``)."""
        data = self.client.get("/catalog/color_list")
        rows = list(data.items()) if isinstance(data, dict) else list(enumerate(data)) if isinstance(data, list) else []
        table: dict[int, tuple[str | None, int | None]] = {}
        for key, row in rows:
            if not isinstance(row, dict):
                continue
            colour = parse.integer(row.get("id"))
            if colour is None and isinstance(data, dict):
                colour = parse.integer(key)  # an entry without its own id: the object's key names it
            if colour is None:
                continue
            listed = row.get("bl_ids")
            bl_ids = [parse.integer(v) for v in (listed if isinstance(listed, list) else [listed])]
            usable = [v for v in bl_ids if v is not None and v >= 0]
            table[colour] = (parse.unescaped(row.get("name")), usable[0] if usable else None)
        return table

    def id_lookup(self, bricklink_part: str, item_type: str = "Part") -> list[str]:
        """The BOIDs BrickOwl knows for a BrickLink item number (empty when unknown)."""
        data = self.client.get(
            "/catalog/id_lookup", {"id": bricklink_part, "type": item_type, "id_type": "bl_item_no"}
        )
        boids = data.get("boids") if isinstance(data, dict) else None
        return [str(b) for b in boids or [] if parse.text(b)]


def fingerprint(raw: dict) -> str:
    """What a list entry and an order's detail both say, in one form: the status's name (a list
    may carry only the id, a detail only the name), pieces, lots, total (``23.870`` = ``23.87``)."""
    total = parse.money(raw.get("base_order_total"))
    name = parse.text(raw.get("status")) or STATUS_IDS.get(parse.text(raw.get("status_id")) or "")
    parts = (
        (name or parse.text(raw.get("status_id")) or "").lower(),
        parse.integer(raw.get("total_quantity")),
        parse.integer(raw.get("total_lots")),
        None if total is None else format(total.normalize(), "f"),
    )
    return "|".join("" if p is None else str(p) for p in parts)


def _status(raw: dict) -> tuple[Status, str]:
    provider_status = parse.text(raw.get("status")) or parse.text(raw.get("status_id")) or ""
    status = unified_status(parse.text(raw.get("status")), raw.get("status_id"))
    return status, provider_status


def summary(raw: dict) -> OrderSummary:
    """A compact entry: fetching an order asks for its detail, so nothing else of the entry is kept
    (a first sync holds every entry of the list until its order is fetched)."""
    status, provider_status = _status(raw)
    return OrderSummary(
        provider=NAME,
        order_id=parse.text(raw.get("order_id")) or "",
        status=status,
        provider_status=sys.intern(provider_status),
        fingerprint=fingerprint(raw),
        date_ordered=parse.unix_time(raw.get("order_date")) or parse.unix_time(raw.get("order_time")),
    )


def decode_orders(label: str, response: requests.Response, limit: int) -> OrderList:
    """The entries of an ``order/list`` answer, each decoded and made a compact :class:`OrderSummary`
    as the body is read (a list of 5,000 orders is never 5,000 dicts at once). An answer that is not
    a JSON array -- an error object, a PHP keyed array sent as an object, a body cut short or not
    JSON -- goes through :func:`decode` whole, which raises for an error (nothing of it is kept)."""
    if response.status_code < 300:
        entries = JsonArray(parse.chunks_of(response.content, parse.LIST_CHUNK))
        summaries: list[OrderSummary] = []
        count = 0
        try:
            for raw in entries:
                count += 1
                if isinstance(raw, dict) and parse.text(raw.get("order_id")):
                    summaries.append(summary(raw))
            read = entries.found
        except ValueError:
            read = False  # not JSON, cut short, not an array: decode() below says what it is
        if read:
            return OrderList(summaries, truncated=count >= limit)
    data = decode(label, response)
    if isinstance(data, dict):  # PHP serialises a keyed array as an object
        data = list(data.values())
    if not isinstance(data, list):
        raise error_for_status(NAME, 502, f"{label} answered with no order list")
    summaries = [summary(raw) for raw in data if isinstance(raw, dict) and parse.text(raw.get("order_id"))]
    return OrderList(summaries, truncated=len(data) >= limit)


def order_from(order_id: str, raw: dict) -> Order:
    status, provider_status = _status(raw)
    return Order(
        provider=NAME,
        order_id=parse.text(raw.get("order_id")) or str(order_id),
        status=status,
        provider_status=provider_status,
        fingerprint=fingerprint(raw),
        date_ordered=(parse.unix_time(raw.get("order_time")) or parse.unix_time(raw.get("order_date"))
                      or parse.iso_time(raw.get("iso_order_time"))),
        date_status_changed=parse.unix_time(raw.get("updated_time")),  # absent from some real views: unknown
        buyer_name=parse.text(raw.get("buyer_name")) or parse.text(raw.get("customer_username")),
        buyer_email=parse.text(raw.get("customer_email")),
        lot_count=parse.integer(raw.get("total_lots")),
        piece_count=parse.integer(raw.get("total_quantity")),
        subtotal=parse.money(raw.get("sub_total")),
        grand_total=parse.money(raw.get("base_order_total")),
        currency=parse.text(raw.get("base_currency")),
        shipping_method=parse.text(raw.get("shipping_method") or raw.get("ship_method_name")),
        tracking_number=parse.text(raw.get("tracking_number")),
        store_id=parse.text(raw.get("store_id")),
        raw=raw,
    )


def alternative_ids(ids: Any) -> list[str]:
    """The ``ids`` entries that may be a BrickLink number, most trusted first, each once."""
    if not isinstance(ids, list):
        return []
    by_type: dict[str, list[Any]] = {}  # one pass over the entries (most are of no type we take)
    for entry in ids:
        if isinstance(entry, dict):
            id_type = entry.get("type")
            if isinstance(id_type, str) and id_type in _ALT_RANK:
                by_type.setdefault(id_type, []).append(entry.get("id"))
    alternatives: list[str] = []
    for id_type in ALT_ID_TYPES if by_type else ():
        for raw in by_type.get(id_type, ()):
            value = parse.text(raw)
            if value and value not in alternatives:
                alternatives.append(value)
    return alternatives


def line_from(order_id: str, index: int, raw: dict) -> OrderLine:
    ordered = parse.integer(raw.get("ordered_quantity")) or 0
    refunded = parse.integer(raw.get("refunded_quantity")) or 0
    external = raw.get("external_lot_ids")
    linked = parse.text(raw.get("bl_lot_id")) or (
        parse.text(external.get("other")) if isinstance(external, dict) else None
    )
    alternatives = alternative_ids(raw.get("ids"))
    lot_id = parse.text(raw.get("lot_id"))
    full_con = parse.text(raw.get("full_con")) or parse.text(raw.get("condition"))
    return OrderLine(
        provider=NAME,
        order_id=str(order_id),
        line_key=parse.text(raw.get("order_item_id")) or (f"lot:{lot_id}" if lot_id else f"#{index}"),
        quantity=max(0, ordered - refunded),
        condition=brickowl_condition(full_con),
        location=parse.text(raw.get("personal_note")),
        name=parse.unescaped(raw.get("name")),
        item_type=parse.text(raw.get("type")),
        color_name=parse.text(raw.get("color_name")),
        unit_price=parse.money(raw.get("base_price")),
        provider_lot_id=lot_id,
        bricklink_lot_id=linked,
        boid=parse.text(raw.get("boid")),
        provider_color_id=parse.integer(raw.get("color_id")),
        provider_condition=full_con,
        alt_part_numbers=alternatives,
        raw=raw,
    )


# --- bulk/batch answers ------------------------------------------------------------------------
# The answer's shape is not documented (shared/marketplace-apis.md, "The seller's lots"). Exactly
# three shapes are recognised, those clients model:
#   (a) [{"req_num": n, "code": c, "body": {...}}, ...] numbered from 1 (the only mock found) or 0;
#   (b) {"responses": [{"endpoint": ..., "status_code": c, "body": {...}}, ...]} in request order
#       (BrickOwlSharp's BulkBatchResponse);
#   (c) [{...body...}, ...] in request order ({"status": "success"} or a body with "error").
# Each element is classified strictly: applied only on an explicit 2xx code or a body saying
# "status": "success"; refused on a 4xx code or an "error" body; anything else -- a 5xx, a missing
# element, a shape or element not recognised -- is unknown (the core reads the lot back), never
# applied: a change wrongly taken as applied is never looked at again.
Result = tuple[Outcome, "str | None"]


def batch_outcomes(data: Any, count: int, endpoint: str = "inventory/update") -> list[Result]:
    """One outcome per sub-request, in request order, from a ``bulk/batch`` answer (all its
    sub-requests sent to ``endpoint``)."""
    if isinstance(data, dict) and isinstance(data.get("responses"), list):
        return _in_order(data["responses"], count, lambda item: _response_outcome(item, endpoint), "responses")
    if isinstance(data, list) and data and all(isinstance(x, dict) and "req_num" in x for x in data):
        return _numbered(data, count)
    if isinstance(data, list) and not any(isinstance(x, dict) and "req_num" in x for x in data):
        return _in_order(data, count, body_outcome, "answers")
    kind = type(data).__name__ if not isinstance(data, list) else "array mixing numbered and unnumbered answers"
    return [(Outcome.UNKNOWN, f"bulk/batch answered in a shape not recognised ({kind})")] * count


def _in_order(items: list, count: int, classify: Any, what: str) -> list[Result]:
    """Answers matched to sub-requests by position: only when there is exactly one per change
    (with one missing or one too many, no position can be trusted)."""
    if len(items) != count:
        return [(Outcome.UNKNOWN, f"bulk/batch answered {len(items)} {what} for {count} changes")] * count
    return [classify(item) for item in items]


def _numbered(items: list[dict], count: int) -> list[Result]:
    """Shape (a): matched by ``req_num``, counted from 1 or from 0 (told apart by the smallest
    and largest numbers; an answer that leaves the start ambiguous is unknown throughout)."""
    by_number: dict[int, dict] = {}
    for item in items:
        number = parse.integer(item.get("req_num"))
        if number is None or number in by_number:
            return [(Outcome.UNKNOWN, f"bulk/batch answered a bad or repeated req_num {item.get('req_num')!r}")] * count
        by_number[number] = item
    low, high = min(by_number), max(by_number)
    if low == 0:
        first = 0
    elif high == count:
        first = 1  # counted from 0, no number reaches the count of changes
    else:  # e.g. req_num 1 alone for two changes: the first of 1..2 or the second of 0..1
        return [(Outcome.UNKNOWN, f"bulk/batch answered req_num {low}..{high} for {count} changes: "
                                  "cannot tell which answer is whose")] * count
    if high - first >= count:
        return [(Outcome.UNKNOWN, f"bulk/batch answered req_num {high} for {count} changes")] * count
    return [_code_outcome(by_number[first + i], "code") if first + i in by_number
            else (Outcome.UNKNOWN, "bulk/batch gave no answer for this change") for i in range(count)]


def _response_outcome(item: Any, ours: str = "inventory/update") -> Result:
    """Shape (b)'s element: ``status_code`` and ``body`` (an ``endpoint`` other than ours is unknown)."""
    if not isinstance(item, dict):
        return Outcome.UNKNOWN, f"bulk/batch answered {item!r} for this change"
    endpoint = item.get("endpoint")
    if endpoint is not None and str(endpoint).strip("/") != ours:
        return Outcome.UNKNOWN, f"bulk/batch answered for endpoint {endpoint!r}, not {ours}"
    return _code_outcome(item, "status_code")


def _code_outcome(item: dict, field: str) -> Result:
    """An element carrying an HTTP-like code and a body."""
    code = parse.integer(item.get(field))
    body = item.get("body")
    error = _error_detail(body)
    if field in item and code is None:  # a code that is not a number: not a shape we know
        return Outcome.UNKNOWN, f"answered {field} {item.get(field)!r}" + (f": {error}" if error else "")
    if code is not None and 400 <= code < 500:
        return Outcome.REFUSED, error or f"answered {code}"
    if code is not None and 200 <= code < 300:
        if error is not None:  # BrickOwl puts errors inside 2xx answers
            return Outcome.REFUSED, error
        return Outcome.APPLIED, None
    if code is None:  # no code at all: only the body can say
        return body_outcome(body)
    return Outcome.UNKNOWN, f"answered {item.get(field)!r}" + (f": {error}" if error else "")


def batch_bodies(data: Any, count: int) -> list[Any]:
    """Each sub-request's answer body, aligned as :func:`batch_outcomes` aligns them (read only
    for a sub-request it classified as applied, so only when the alignment was trusted)."""
    if isinstance(data, dict) and isinstance(data.get("responses"), list):
        items = data["responses"]
        return [x.get("body") if isinstance(x, dict) else None for x in items] if len(items) == count else [None] * count
    if isinstance(data, list) and data and all(isinstance(x, dict) and "req_num" in x for x in data):
        numbered = {parse.integer(x.get("req_num")): x for x in data}
        first = 0 if 0 in numbered else 1
        return [(numbered.get(first + i) or {}).get("body") for i in range(count)]
    return list(data) if isinstance(data, list) and len(data) == count else [None] * count


def created_params(lot: NewLot) -> dict[str, str]:
    """An ``inventory/create`` form: the bare BOID, ``color_id`` when the item takes one, the
    price rounded to 3 decimals, the bin as ``personal_note``, the BrickLink lot as ``external_id``."""
    params = {"boid": lot.item_no, "quantity": str(lot.quantity), "price": f"{lot.price:.3f}",
              "condition": lot.condition, "personal_note": lot.note}
    if lot.color_id is not None:
        params["color_id"] = str(lot.color_id)
    if lot.external_id:
        params["external_id"] = lot.external_id
    return params


def _created(lot: NewLot, outcome: Result, body: Any) -> Created:
    state, detail = outcome
    if state != Outcome.APPLIED:
        return Created(lot.ref, state, None, detail)
    lot_id = parse.text(body.get("lot_id")) if isinstance(body, dict) else None
    if lot_id is None:  # a success that names no lot: the lot is found by its external id
        return Created(lot.ref, Outcome.UNKNOWN, None, "the answer named no lot_id")
    return Created(lot.ref, Outcome.APPLIED, lot_id)


def body_outcome(body: Any) -> Result:
    """A body alone (shape (c)'s element, or ``inventory/update``'s answer): ``{"status":
    "success"}`` is applied, one with ``error`` refused, anything else unknown."""
    error = _error_detail(body)
    if error is not None:
        return Outcome.REFUSED, error
    if isinstance(body, dict) and str(body.get("status", "")).strip().lower() == "success":
        return Outcome.APPLIED, None
    return Outcome.UNKNOWN, f"answered {_short(body)}"


def _error_detail(body: Any) -> str | None:
    """The error a body carries (``{"error": {"status": ...}}`` or ``{"error": "..."}``), or None."""
    if not isinstance(body, dict) or body.get("error") is None:
        return None
    error = body["error"]
    detail = (error.get("status") or error.get("message")) if isinstance(error, dict) else error
    return parse.text(detail) or "error"


def _short(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def remote_lot(raw: Any) -> RemoteLot | None:
    lot_id = parse.text(raw.get("lot_id")) if isinstance(raw, dict) else None
    if lot_id is None:
        return None
    external = raw.get("external_lot_ids")
    boid = parse.text(raw.get("boid"))
    full_con = parse.text(raw.get("full_con")) or parse.text(raw.get("con"))
    return RemoteLot(
        provider=NAME,
        remote_lot_id=lot_id,
        quantity=max(0, parse.integer(raw.get("qty")) or 0),
        location=parse.text(raw.get("personal_note")),
        bricklink_lot_id=parse.text(external.get("other")) if isinstance(external, dict) else None,
        name=parse.unescaped(raw.get("name")),
        item_type=parse.text(raw.get("type")),
        price=parse.money(raw.get("price")),
        boid=boid,
        provider_color_id=parse.integer(raw.get("color_id")),
        condition=brickowl_condition(full_con),
        provider_condition=full_con,
        alt_part_numbers=alternative_ids(raw.get("ids")),
        for_sale=parse.flag(raw.get("for_sale")) is not False,  # "1"/"0", 1/0, true/false; missing: for sale
    )


def build(common: "Common") -> BrickOwl:
    """The adapter, from the registry's common parts (:func:`marketsync.providers.build_adapter`);
    requests are paced a little under the per-minute limits."""
    from marketsync.providers import PACING_MARGIN
    from marketsync.providers.http import HttpClient, Pacer

    rate, batch_rate = common.settings.brickowl_rate_limit, common.settings.brickowl_batch_rate_limit
    return BrickOwl(HttpClient(
        common.provider, common.url, decode, fixed_params={"key": common.creds["BRICKOWL_API_KEY"]},
        pacer=Pacer(rate * PACING_MARGIN if rate else None), **common.client_options(),
    ), batch_pacer=Pacer(batch_rate * PACING_MARGIN if batch_rate and rate else None))
