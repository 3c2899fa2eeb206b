"""BrickLink Store API v1 adapter: OAuth 1.0a, the ``meta`` envelope, array-of-arrays items."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import functools
import hashlib
import hmac
import html
import io
import json
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit

import requests

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
    describe_non_json,
    error_for_status,
    json_or_none,
    retry_after_seconds,
)
from marketsync.model import (
    Status,
    ChangeResult,
    Created,
    NewLot,
    Notification,
    Order,
    OrderLine,
    OrderSummary,
    Outcome,
    QuantityChange,
    RemoteLot,
    SyncListing,
)

if TYPE_CHECKING:
    from marketsync.providers import Common

NAME = "bricklink"
CONDITIONS = {"N": "new", "U": "used"}

# BrickLink's statuses in the unified lifecycle (marketsync.model); anything new is 'unknown'.
STATUS = {
    "PENDING": "pending",
    "UPDATED": "pending",
    "PAID-PENDING": "pending",
    "PAID": "paid",
    "PROCESSING": "processing",
    "READY": "processing",
    "PACKED": "packed",
    "SHIPPED": "shipped",
    "RECEIVED": "completed",
    "COMPLETED": "completed",
    "OCR": "disputed",
    "NPB": "disputed",
    "NPX": "disputed",
    "NRS": "disputed",
    "NSS": "disputed",
    "CANCELLED": "cancelled",
    "PURGED": "cancelled",
}


def unified_status(raw: str | None) -> Status:
    return Status(STATUS.get((raw or "").strip().upper(), Status.UNKNOWN))

_AUTH_HINTS = {
    "TOKEN_IP_MISMATCHED": (
        "the access token is bound to another IP address; on BrickLink's API registration page "
        "register this machine's IP, or IP 0.0.0.0 with mask 0.0.0.0 to allow any address"
    ),
    "SIGNATURE_INVALID": "the OAuth signature was rejected; check the four BRICKLINK_* credentials",
    "CONSUMER_KEY_UNKNOWN": "BrickLink does not know this consumer key; check the BRICKLINK_CONSUMER_KEY credential",
    "TOKEN_VALUE_UNKNOWN": "BrickLink does not know this access token; check the BRICKLINK_TOKEN_VALUE credential",
    "TIMESTAMP_REJECTED": "the request timestamp was rejected; check this machine's clock",
}


def decode(label: str, response: requests.Response) -> Any:
    body = json_or_none(response)
    if not isinstance(body, dict) or not isinstance(body.get("meta"), dict):
        raise _not_enveloped(label, response, body)
    meta = body["meta"]
    code = parse.integer(meta.get("code")) or response.status_code
    if response.status_code >= 400 and 200 <= code < 300:
        code = response.status_code
    if 200 <= code < 300:
        return body.get("data")
    raise error_for_status(NAME, code, _refusal(label, meta, code), retry_after_seconds(response))


def _not_enveloped(label: str, response: requests.Response, body: Any) -> Exception:
    """An answer without BrickLink's envelope: an outage page (transient), or a shape we cannot read."""
    if body is None:
        message = describe_non_json(label, response)
        if response.status_code == 429:
            return error_for_status(NAME, 429, message, retry_after_seconds(response))
        return TransientError(NAME, message)
    return error_for_status(NAME, response.status_code if response.status_code >= 400 else 502,
                            f"{label} answered without the meta envelope")


def _refusal(label: str, meta: dict, code: int) -> str:
    description = parse.text(meta.get("description")) or ""
    reason = parse.text(meta.get("message")) or ""
    detail = " / ".join(x for x in (reason, description) if x) or f"code {code}"
    # The code word leads; real descriptions may append detail ("TOKEN_IP_MISMATCHED: consumer: ...").
    word = re.match(r"[A-Z_]+", description.strip().upper())
    hint = _AUTH_HINTS.get(word.group(0)) if word else None
    return f"{label} refused: {detail}" + (f": {hint}" if hint else "")


# BrickLink PUTs in flight at once: BrickSync queues at most this many BrickLink queries, updates
# included (bricksync.h BS_BRICKLINK_PIPELINED_FETCH 4, at most 8; bsapplydiff.c stops queueing at
# bricklink.pipelinequeuesize), and more than ~5 parallel requests provoked nginx 503s
# (marketplace-apis.md "Envelope and errors").
PUTS_IN_FLIGHT = 4
_Record = TypeVar("_Record")


def _escape(value: str) -> str:
    """RFC 5849 section 3.6 (oauthlib's ``utils.escape``)."""
    return quote(value, safe="~")


class OAuthSigner:
    """OAuth 1.0a, HMAC-SHA1, in the Authorization header: requests_oauthlib's ``OAuth1`` signing,
    with the same header, parameters and nonces. A request without a body whose query needs no
    decoding (every GET: ``?direction=in&filed=false``) is signed here directly, from what
    stays the same between requests (the key, the fixed parameters, the address's base string)
    -- ``OAuth1`` spends ~0.2 ms a request rebuilding them; any other request goes to ``OAuth1``."""

    def __init__(self, consumer_key: str, consumer_secret: str, token: str, token_secret: str):
        from requests_oauthlib import OAuth1

        self.full = OAuth1(consumer_key, consumer_secret, token, token_secret, signature_method="HMAC-SHA1",
                           signature_type="AUTH_HEADER")
        self.consumer_key, self.token = consumer_key, token
        self.key = f"{_escape(consumer_secret or '')}&{_escape(token_secret or '')}".encode()
        self._origins: dict[tuple[str, str], str] = {}  # (scheme, netloc) -> its base string URI

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = request.url or ""
        parts = urlsplit(url)
        if (request.body is not None or "Content-Type" in request.headers or not self.token
                or not _PLAIN_PATH.fullmatch(parts.path) or not _PLAIN_QUERY.fullmatch(parts.query)):
            return self.full(request)
        from oauthlib.common import generate_nonce, generate_timestamp

        origin = self._origins.get((parts.scheme, parts.netloc))
        if origin is None:
            from oauthlib.oauth1.rfc5849.signature import base_string_uri

            origin = self._origins[(parts.scheme, parts.netloc)] = base_string_uri(f"{parts.scheme}://{parts.netloc}")[:-1]
        oauth = [("oauth_nonce", generate_nonce()), ("oauth_timestamp", generate_timestamp()),
                 ("oauth_version", "1.0"), ("oauth_signature_method", "HMAC-SHA1"),
                 ("oauth_consumer_key", self.consumer_key), ("oauth_token", self.token)]
        params = sorted((_escape(k), _escape(v)) for k, v in [*parse_qsl(parts.query, keep_blank_values=True), *oauth])
        base = "&".join((_escape((request.method or "GET").upper()), _escape(origin + (parts.path or "/")),
                         _escape("&".join(f"{k}={v}" for k, v in params))))
        signature = base64.b64encode(hmac.new(self.key, base.encode(), hashlib.sha1).digest()).decode()
        header = "OAuth " + ", ".join(f'{_escape(k)}="{_escape(v)}"' for k, v in [*oauth, ("oauth_signature", signature)])
        request.headers["Authorization"] = header.encode()  # type: ignore[assignment]  # bytes, as OAuth1 sets it
        return request


# What OAuthSigner signs itself: a path of plain characters and a query needing no decoding (the
# characters oauthlib's urldecode takes, less '%'); anything else is signed by OAuth1 as it was.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/_.~-]*")
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9_.~=&;:+,*@!()/?'$-]*")


class BrickLink:
    name = NAME

    def __init__(self, client: HttpClient):
        self.client = client
        self._puts: ThreadPoolExecutor | None = None  # the PUTs in flight (made at the first batch)
        self._puts_lock = threading.Lock()

    @staticmethod
    def auth(creds: dict[str, str]) -> Any:
        return OAuthSigner(creds["BRICKLINK_CONSUMER_KEY"], creds["BRICKLINK_CONSUMER_SECRET"],
                           creds["BRICKLINK_TOKEN_VALUE"], creds["BRICKLINK_TOKEN_SECRET"])

    # --- orders ----------------------------------------------------------------------
    def list_orders(self, *, filed: bool = False) -> list[OrderSummary]:
        """Orders received as seller; ``filed=True`` lists only the filed ones (BrickLink hides them)."""
        summaries: list[OrderSummary] = self.client.get(
            "/orders", {"direction": "in", "filed": "true" if filed else "false"}, endpoint="/orders",
            decode=functools.partial(decode_orders, filed=filed),
        )
        return summaries

    def list_for_sync(self, *, first: bool, open_ids: set[str], since: dt.datetime | None = None,
                      full: bool = False) -> SyncListing:
        """One call when nothing vanished: the unfiled list. Filed orders are listed too on a first
        or full sync, or when an open order we hold has left the unfiled list (it was filed).
        BrickLink's list has no date filter: ``since`` is not needed."""
        summaries = {s.order_id: s for s in self.list_orders(filed=False)}
        if first or full or open_ids - summaries.keys():
            for s in self.list_orders(filed=True):
                summaries.setdefault(s.order_id, s)
        warnings = []
        for order_id in sorted(open_ids - summaries.keys()):
            try:
                raw = self.client.get(f"/orders/{order_id}", endpoint="/orders/{id}")
            except NotFoundError:
                warnings.append(f"order {order_id} is open here but BrickLink no longer has it (not listed, "
                                f"GET /orders/{order_id} 404); its stock stays reserved until you run "
                                f"'marketsync reserve --release bricklink:{order_id}'")
                continue
            if isinstance(raw, dict) and raw.get("order_id") is not None:
                summaries[order_id] = summary(raw)
        return SyncListing(list(summaries.values()), warnings)

    def fetch(self, head: OrderSummary) -> tuple[Order, list[OrderLine]]:
        """The summary already carries everything the order row needs: one call for the items."""
        order = order_from(head.raw, head.is_filed)  # the entry as listed, decoded again for its order row
        if head.details_gone:
            return order, []  # its items are gone: a stored order keeps its lines (see sync.OrderWriter)
        return order, self.fetch_lines(head.order_id)

    def fetch_named(self, order_id: str) -> tuple[Order, list[OrderLine]]:
        """One order a hint named: ``GET /orders/{id}`` and its items (two calls)."""
        data = self.client.get(f"/orders/{order_id}", endpoint="/orders/{id}")
        if not isinstance(data, dict) or data.get("order_id") is None:
            raise error_for_status(NAME, 502, f"GET /orders/{order_id} answered with no order")
        return self.fetch(summary(data))

    def notifications(self) -> list[Notification]:
        """``GET /notifications``: the unread events (a hint only; whether reading marks them read
        is unconfirmed, so the caller deduplicates by all three fields)."""
        data = self.client.get("/notifications", endpoint="/notifications")
        if not isinstance(data, list):
            raise error_for_status(NAME, 502, "GET /notifications answered with no event list")
        events = []
        for raw in data:
            if not isinstance(raw, dict):
                continue
            kind, resource, moment = (parse.text(raw.get(k)) for k in ("event_type", "resource_id", "timestamp"))
            if kind and resource and moment:
                events.append(Notification(kind, resource, moment))
        return events

    def fetch_order(self, order_id: str) -> Order:
        data = self.client.get(f"/orders/{order_id}", endpoint="/orders/{id}")
        if not isinstance(data, dict):
            raise error_for_status(NAME, 502, f"GET /orders/{order_id} answered with no order")
        return order_from(data)

    def fetch_lines(self, order_id: str) -> list[OrderLine]:
        data = self.client.get(f"/orders/{order_id}/items", endpoint="/orders/{id}/items")
        if not isinstance(data, list):
            raise error_for_status(NAME, 502, f"GET /orders/{order_id}/items answered with no item list")
        return lines_from(order_id, data)

    # --- the seller's lots ---------------------------------------------------------------
    # BrickLink has no batch update: one PUT per lot, but a batch's changes (journaled together
    # before any is sent) go out a few in flight, as BrickSync queues them (PUTS_IN_FLIGHT)
    write_batch_size = PUTS_IN_FLIGHT
    deletes_empty_lots = True  # a lot at 0 vanishes unless is_retain is set

    def list_lots(self) -> list[RemoteLot]:
        """The lots buyers can see (one call; BrickLink has no paging): ``status=Y`` only, as
        BrickSync reads it. Without the filter stockroom, unavailable and reserved lots come back
        looking like lots for sale. Lots at 0 that are not retained do not exist any more."""
        lots: list[RemoteLot] = self.client.get("/inventories", {"status": "Y"}, endpoint="/inventories",
                                                decode=decode_lots)
        return lots

    def read_lot(self, remote_lot_id: str) -> RemoteLot | None:
        try:
            data = self.client.get(f"/inventories/{remote_lot_id}", endpoint="/inventories/{id}")
        except NotFoundError:
            return None  # sold to 0 without is_retain: BrickLink deleted it
        return remote_lot(data)

    def change_quantities(self, changes: list[QuantityChange]) -> list[ChangeResult]:
        """``PUT /inventories/{id}`` with a signed quantity (BrickLink reads every quantity as a
        change, "+3" / "-2"), one lot per PUT, up to :data:`PUTS_IN_FLIGHT` at once, always with
        the lot's own description exactly as read (since 2024-02-01 BrickLink refuses a quantity
        change without one, and ``""`` wipes it): a change that carries none costs one
        ``GET /inventories/{id}`` first. ``retain`` True sets ``is_retain``, False sends it false,
        None leaves it out. The results are in the order of ``changes``; an error that stops the
        run (auth, the run's deadline) is raised once every change in flight has its answer."""
        if len(changes) <= 1:
            return [self._change_one(change) for change in changes]
        with self._puts_lock:
            if self._puts is None:
                self._puts = ThreadPoolExecutor(max_workers=PUTS_IN_FLIGHT, thread_name_prefix="bricklink-put")
        futures = [self._puts.submit(self._change_one, change) for change in changes]
        errors = [future.exception() for future in futures]  # waits for every one
        stop = next((error for error in errors if error is not None), None)
        if stop is not None:
            raise stop
        return [future.result() for future in futures]

    def _change_one(self, change: QuantityChange) -> ChangeResult:
        lot_id = change.remote_lot_id
        description = change.description
        if description is None:
            try:
                description = self._description_for(change)
            except BudgetExhaustedError as error:
                return ChangeResult(lot_id, Outcome.NOT_SENT, error.detail)
            except _NotSent as refusal:
                return ChangeResult(lot_id, Outcome.REFUSED, str(refusal))
        # a change of 0 (only is_retain to set or put back) sends no quantity at all; the
        # description goes with every PUT, as BrickSync sends it since 2024-02-02
        body: dict[str, Any] = {"quantity": f"{change.delta:+d}"} if change.delta else {}
        body["description"] = description
        if change.retain is not None:
            body["is_retain"] = change.retain
        try:
            self.client.write("PUT", f"/inventories/{lot_id}", json_body=body, endpoint="/inventories/{id}")
        except BudgetExhaustedError as error:  # refused before it was sent: nothing left today
            return ChangeResult(lot_id, Outcome.NOT_SENT, error.detail)
        except (RequestRejectedError, NotFoundError, PermissionDeniedError, RateLimitedError) as error:
            return ChangeResult(lot_id, Outcome.REFUSED, error.detail)
        except (TransientError, BadResponseError) as error:
            return ChangeResult(lot_id, Outcome.UNKNOWN, error.detail)
        return ChangeResult(lot_id, Outcome.APPLIED)

    # --- creating lots (``stock mirror``) -------------------------------------------------
    create_batch_size = 1  # one object per POST: only then does the answer carry the new lot's id

    def create_lots(self, lots: list[NewLot]) -> list[Created]:
        """``POST /inventories``, one lot per call, never retried: a lost answer is UNKNOWN (find
        the lot with :meth:`find_created` before anything is sent again); the daily budget or the
        run's time running out leaves the rest NOT_SENT."""
        results: list[Created] = []
        for number, lot in enumerate(lots):
            left = self.client.deadline.remaining()
            if left is not None and left <= 0:
                results += [Created(x.ref, Outcome.NOT_SENT, None, "this run's time is used up")
                            for x in lots[number:]]
                break
            try:
                data = self.client.write("POST", "/inventories", json_body=created_body(lot), endpoint="/inventories")
            except BudgetExhaustedError as error:
                results += [Created(x.ref, Outcome.NOT_SENT, None, error.detail) for x in lots[number:]]
                break
            except (RequestRejectedError, NotFoundError, PermissionDeniedError, RateLimitedError) as error:
                results.append(Created(lot.ref, Outcome.REFUSED, None, error.detail))
            except (TransientError, BadResponseError, DeadlineError) as error:
                results.append(Created(lot.ref, Outcome.UNKNOWN, None, error.detail))
            else:
                lot_id = parse.text(data.get("inventory_id")) if isinstance(data, dict) else None
                results.append(Created(lot.ref, Outcome.APPLIED, lot_id, None) if lot_id else
                               Created(lot.ref, Outcome.UNKNOWN, None, "the answer named no inventory_id"))
        return results

    def budget(self) -> tuple[int, int] | None:
        """(the day's call limit, calls used today, this run's included)."""
        budget = self.client.budget
        return (budget.limit, budget.used) if budget is not None and budget.limit is not None else None

    def find_created(self, lot: NewLot) -> list[RemoteLot]:
        """The for-sale lots of that item, colour, condition and bin (``remarks``): BrickLink
        filters its list by type and colour, the rest is matched here (one call)."""
        data = self.client.get("/inventories", {"item_type": lot.item_type, "color_id": str(lot.color_id or 0)},
                               endpoint="/inventories")
        if not isinstance(data, list):
            raise error_for_status(NAME, 502, "GET /inventories answered with no lot list")
        condition = CONDITIONS.get(lot.condition)
        return [found for found in map(remote_lot, data) if found is not None and found.for_sale
                and found.part_number == lot.item_no and (found.color_id or 0) == (lot.color_id or 0)
                and found.condition == condition and (found.location or "") == lot.note]

    def _description_for(self, change: QuantityChange) -> str:
        """The lot's description as BrickLink serves it, read now; raises :class:`_NotSent` (with
        why) when the change must not be sent, BudgetExhaustedError when the budget ran out."""
        lot_id = change.remote_lot_id
        try:
            data = self.client.get(f"/inventories/{lot_id}", endpoint="/inventories/{id}")
        except NotFoundError:
            raise _NotSent(f"not sent: lot {lot_id} is gone from BrickLink (GET /inventories/{lot_id} 404: "
                           "sold out and not retained, or deleted)") from None
        except (RequestRejectedError, PermissionDeniedError, RateLimitedError, TransientError,
                BadResponseError) as error:  # auth failures and the run's deadline stop the run, as for the PUT
            raise _NotSent(f"not sent: its description could not be read first ({error.detail}); BrickLink "
                           "refuses a quantity change without it") from None
        lot = remote_lot(data)
        if lot is None:
            raise _NotSent(f"not sent: GET /inventories/{lot_id} answered with no lot")
        if not lot.for_sale:
            raise _NotSent(f"not sent: lot {lot_id} is in a stockroom (buyers cannot see it)")
        if lot.quantity + change.delta < 0:
            raise _NotSent(f"not sent: lot {lot_id} holds {lot.quantity}, a change of {change.delta:+d} would "
                           "take it below 0")
        return lot.description or ""


class _NotSent(Exception):
    """A change the adapter did not send (nothing changed); the message says why."""


def created_body(lot: NewLot) -> dict[str, Any]:
    """A ``POST /inventories`` resource: one object creates one lot and answers it with its new
    ``inventory_id`` (an array answers no ids); ``remarks`` is the bin."""
    body: dict[str, Any] = {
        "item": {"no": lot.item_no, "type": lot.item_type}, "color_id": lot.color_id or 0,
        "quantity": lot.quantity, "unit_price": f"{lot.price:.4f}", "new_or_used": lot.condition,
        "remarks": lot.note,
    }
    if lot.completeness:
        body["completeness"] = lot.completeness
    if lot.description is not None:  # a relisted lot's, exactly as it was read (entities and all)
        body["description"] = lot.description
    return body


def fingerprint(raw: dict) -> str:
    cost = parse.obj(raw.get("cost"))
    parts = (
        raw.get("status"), raw.get("date_status_changed"), raw.get("total_count"),
        raw.get("unique_count"), parse.money(cost.get("grand_total")),
    )
    return "|".join("" if p is None else str(p) for p in parts)


# an entry kept for its order row, as compact text (the store writes it as it writes every payload)
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def summary(raw: dict, filed: bool | None = None, *, keep_raw: bool = True) -> OrderSummary:
    """``filed``: which list the entry came from (the list's entries carry no ``is_filed``; a
    full order does). The entry is kept as compact JSON text (``keep_raw``): the order row is
    made from it when the order is fetched, and a dict per listed order would cost ~4x as much."""
    provider_status = sys.intern(parse.text(raw.get("status")) or "")
    is_filed = bool(parse.flag(raw.get("is_filed"))) if filed is None else filed
    return OrderSummary(
        provider=NAME,
        order_id=str(raw["order_id"]),
        status=unified_status(provider_status),
        provider_status=provider_status,
        # filing changes what is stored (is_filed); an unfiled order's fingerprint stays as it was
        fingerprint=fingerprint(raw) + ("|filed" if is_filed else ""),
        date_ordered=parse.bricklink_time(raw.get("date_ordered")),
        is_filed=is_filed,
        details_gone=provider_status.upper() == "PURGED",  # ~6 months on: items deleted, nothing to fetch
        raw_json=_COMPACT.encode(raw) if keep_raw else None,
    )


def order_from(raw: dict, filed: bool | None = None) -> Order:
    """An order row from a summary or a full order (the summary carries all the row needs)."""
    head = summary(raw, filed, keep_raw=False)
    cost = parse.obj(raw.get("cost"))
    payment = parse.obj(raw.get("payment"))
    shipping = parse.obj(raw.get("shipping"))
    return Order(
        provider=NAME,
        order_id=head.order_id,
        status=head.status,
        provider_status=head.provider_status,
        fingerprint=head.fingerprint,
        date_ordered=head.date_ordered,
        date_status_changed=parse.bricklink_time(raw.get("date_status_changed")),
        buyer_name=parse.unescaped(raw.get("buyer_name")),
        buyer_email=parse.text(raw.get("buyer_email")),
        lot_count=parse.integer(raw.get("unique_count")),
        piece_count=parse.integer(raw.get("total_count")),
        subtotal=parse.money(cost.get("subtotal")),
        grand_total=parse.money(cost.get("grand_total")),
        currency=parse.text(cost.get("currency_code")) or parse.text(payment.get("currency_code")),
        payment_status=parse.text(payment.get("status")),
        shipping_method=parse.unescaped(shipping.get("method")),
        tracking_number=tracking_number(shipping),
        is_filed=head.is_filed,
        details_gone=head.details_gone,
        raw=raw,
    )


# query parameters that carry the parcel number in carriers' tracking links (lower case)
_TRACKING_PARAMS = ("tracking_no", "tracking_number", "trackingnumber", "trackingnumbers", "tracknum", "tracknums",
                    "tlabels", "inquirynumber1", "trackingid", "parcelnumber", "awb", "nums", "id")
_PARCEL = re.compile(r"(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{8,40}")


def tracking_number(shipping: dict) -> str | None:
    """``tracking_no``; failing that (a shipment entered as a link only) the number the
    ``tracking_link`` carries, or the link itself when no number can be told apart in it."""
    number = parse.text(shipping.get("tracking_no"))
    if number:
        return number
    link = parse.unescaped(shipping.get("tracking_link"))
    if not link:
        return None
    return number_in_link(link) or link


def number_in_link(link: str) -> str | None:
    """The parcel number in a carrier's tracking link: a known query parameter, else the last
    path or fragment segment that looks like one (8-40 letters and digits, at least one digit)."""
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    fragment_path, _, fragment_query = parts.fragment.partition("?")
    if "=" in fragment_path and not fragment_query:
        fragment_path, fragment_query = "", fragment_path  # "#nums=LX123456789CN"
    for query in (parts.query, fragment_query):
        for name, value in parse_qsl(query):
            if name.lower() in _TRACKING_PARAMS and value.strip():
                return value.split(",")[0].strip()
    segments = [*parts.path.split("/"), *fragment_path.split("/")]
    for segment in reversed(segments):
        if _PARCEL.fullmatch(segment.strip()):
            return segment.strip()
    return None


@functools.lru_cache(maxsize=1)
def colour_names() -> dict[int, str]:
    """BrickLink colour id -> BrickLink's name, from the packaged colour table: for lines and
    lots that come without ``color_name`` (seen in real captures)."""
    text = resources.files("marketsync").joinpath("data/brickowl-colors.csv").read_text(encoding="utf-8")
    names = {0: "(Not Applicable)"}
    for record in csv.DictReader(io.StringIO(text)):
        colour = parse.integer(record.get("bricklink_color_id"))
        name = parse.text(record.get("bricklink_color_name"))
        if colour is not None and colour > 0 and name:
            names.setdefault(colour, name)
    return names


def lines_from(order_id: str, batches: list) -> list[OrderLine]:
    lines = []
    for batch_no, batch in enumerate(batches, start=1):
        items = batch if isinstance(batch, list) else [batch]
        for index, raw in enumerate(items):
            if isinstance(raw, dict):
                lines.append(line_from(order_id, batch_no, index, raw))
    return lines


def line_from(order_id: str, batch: int, index: int, raw: dict) -> OrderLine:
    item = parse.obj(raw.get("item"))
    lot_id = parse.text(raw.get("inventory_id"))
    color_id = parse.integer(raw.get("color_id")) or 0
    return OrderLine(
        provider=NAME,
        order_id=str(order_id),
        line_key=f"{batch}:{lot_id if lot_id else f'#{index}'}",
        batch=batch,
        quantity=parse.integer(raw.get("quantity")) or 0,
        part_number=parse.unescaped(item.get("no")),
        color_id=color_id,
        condition=CONDITIONS.get((parse.text(raw.get("new_or_used")) or "").upper()),
        location=parse.unescaped(raw.get("remarks")),
        name=parse.unescaped(item.get("name")),
        item_type=parse.text(item.get("type")),
        color_name=parse.unescaped(raw.get("color_name")) or colour_names().get(color_id),
        unit_price=parse.money(raw.get("unit_price_final") or raw.get("unit_price")),
        currency=parse.text(raw.get("currency_code")),
        provider_lot_id=lot_id,
        bricklink_lot_id=lot_id,
        raw=raw,
    )


def remote_lot(raw: Any) -> RemoteLot | None:
    if not isinstance(raw, dict) or parse.text(raw.get("inventory_id")) is None:
        return None
    item = parse.obj(raw.get("item"))
    lot_id = str(parse.text(raw.get("inventory_id")))
    return RemoteLot(
        provider=NAME,
        remote_lot_id=lot_id,
        quantity=max(0, parse.integer(raw.get("quantity")) or 0),
        part_number=parse.unescaped(item.get("no")),
        color_id=parse.integer(raw.get("color_id")) or 0,
        condition=CONDITIONS.get((parse.text(raw.get("new_or_used")) or "").upper()),
        location=parse.unescaped(raw.get("remarks")) or "",
        bricklink_lot_id=lot_id,
        name=parse.unescaped(item.get("name")),
        item_type=parse.text(item.get("type")),
        price=parse.money(raw.get("unit_price")),
        description=raw_text(raw.get("description")),
        retained=parse.flag(raw.get("is_retain")) is True,
        for_sale=parse.flag(raw.get("is_stock_room")) is not True,  # a stockroom lot is the seller's alone
        completeness=(parse.text(raw.get("completeness")) or "").upper() or None,
    )


def decode_lots(label: str, response: requests.Response) -> list[RemoteLot]:
    """The lots for sale of a ``GET /inventories`` answer (a store of 100,000 lots is never 100,000
    dicts at once; a stockroom lot is never for sale, whatever the filter let through)."""
    def for_sale() -> Callable[[Any], RemoteLot | None]:
        read = LotReader()
        return lambda raw: lot if (lot := read(raw)) is not None and lot.for_sale else None

    return _decode_list(label, response, "lot", for_sale, 1 << 20)


def decode_orders(label: str, response: requests.Response, filed: bool) -> list[OrderSummary]:
    """The entries of a ``GET /orders`` answer as compact :class:`OrderSummary` records (a list of
    10,000 orders is never 10,000 dicts at once)."""
    def entry() -> Callable[[Any], OrderSummary | None]:
        return lambda raw: summary(raw, filed) if isinstance(raw, dict) and raw.get("order_id") is not None else None

    return _decode_list(label, response, "order", entry, parse.LIST_CHUNK)


def _decode_list(label: str, response: requests.Response, what: str,
                 reader: Callable[[], Callable[[Any], _Record | None]], chunk: int) -> list[_Record]:
    """The records ``reader()`` makes of the entries of an answer's ``data`` array, each made as the
    body is read (``chunk`` bytes at a time); an answer that is not such a list in BrickLink's envelope
    goes through :func:`decode` whole, which says what it is (a refusal, an outage page, a body cut
    short: nothing of it is kept)."""
    if response.status_code < 300:
        entries = JsonArray(parse.chunks_of(response.content, chunk), "data")
        try:
            found = [record for record in map(reader(), entries) if record is not None]
        except ValueError:
            found = None  # not JSON, cut short: decode() below names it
        meta = entries.head.get("meta")
        if found is not None and entries.found and isinstance(meta, dict) and \
                200 <= (parse.integer(meta.get("code")) or response.status_code) < 300:
            return found
    data = decode(label, response)  # raises for a refusal, an outage page, a body that is not JSON
    if not isinstance(data, list):
        raise error_for_status(NAME, 502, f"{label} answered with no {what} list")
    return [record for record in map(reader(), data) if record is not None]


class LotReader:
    """:func:`remote_lot` of each lot of one list, faster: the values lots repeat (part, name, type,
    colour, condition, price, description: a few thousand distinct in a store of 100,000 lots) are
    read once and shared by the lots that send them, and a value of the type BrickLink sends (a
    text, a number, a boolean) is read without the general parsers' checks for the other types.
    A lot that is not a JSON object, or whose id is not a number, is read by :func:`remote_lot`."""

    def __init__(self) -> None:
        self._unescaped: dict[str, str | None] = {}
        self._texts: dict[str, str | None] = {}
        self._conditions: dict[str, str | None] = {}
        self._completeness: dict[str, str | None] = {}
        self._prices: dict[str, Decimal | None] = {}
        self._descriptions: dict[str, str] = {}
        self._shared = _sharing()  # for the lots remote_lot reads

    def __call__(self, raw: Any) -> RemoteLot | None:
        lot_id = raw.get("inventory_id") if type(raw) is dict else None
        item = raw.get("item") if type(raw) is dict else None
        if type(lot_id) is not int or type(item) is not dict:
            found = remote_lot(raw)
            return None if found is None else self._shared(found)
        remote = str(lot_id)
        quantity, color_id = raw.get("quantity"), raw.get("color_id")
        remarks, price, description = raw.get("remarks"), raw.get("unit_price"), raw.get("description")
        return RemoteLot(
            provider=NAME,
            remote_lot_id=remote,
            quantity=((max(0, quantity) if abs(quantity) <= parse.MAX_INTEGER else 0) if type(quantity) is int
                      else max(0, parse.integer(quantity) or 0)),
            part_number=self._unescape(item.get("no")),
            color_id=(((color_id if abs(color_id) <= parse.MAX_INTEGER else None) or 0) if type(color_id) is int
                      else (parse.integer(color_id) or 0)),
            condition=self._cached(self._conditions, raw.get("new_or_used"), _condition),
            location=(html.unescape(remarks.strip()) if type(remarks) is str else parse.unescaped(remarks)) or "",
            bricklink_lot_id=remote,
            name=self._unescape(item.get("name")),
            item_type=self._cached(self._texts, item.get("type"), parse.text),
            price=self._cached(self._prices, price, parse.money),
            description=(self._descriptions.setdefault(description, description) if type(description) is str
                         else raw_text(description)),
            retained=_is_true(raw.get("is_retain")),
            for_sale=not _is_true(raw.get("is_stock_room")),  # a stockroom lot is the seller's alone
            completeness=self._cached(self._completeness, raw.get("completeness"), _completeness),
        )

    def _unescape(self, value: Any) -> str | None:
        return self._cached(self._unescaped, value, parse.unescaped)

    @staticmethod
    def _cached(cache: dict[str, Any], value: Any, read: Callable[[Any], Any]) -> Any:
        """``read(value)``, once per distinct text."""
        if type(value) is not str:
            return read(value)
        try:
            return cache[value]
        except KeyError:
            found = cache[value] = read(value)
            return found


def _condition(value: Any) -> str | None:
    return CONDITIONS.get((parse.text(value) or "").upper())


def _completeness(value: Any) -> str | None:
    return (parse.text(value) or "").upper() or None


def _is_true(value: Any) -> bool:
    """``parse.flag(value) is True``: a JSON boolean as it is, anything else through parse.flag."""
    return value if type(value) is bool else parse.flag(value) is True


def _sharing() -> Callable[[RemoteLot], RemoteLot]:
    """A lot with its repeated values (part, name, type, price, description: a few thousand distinct
    in a store of 100,000 lots) shared with the lots of the same list read before it."""
    seen: dict[Any, Any] = {}

    def share(lot: RemoteLot) -> RemoteLot:
        lot.part_number = seen.setdefault(lot.part_number, lot.part_number)
        lot.name = seen.setdefault(lot.name, lot.name)
        lot.item_type = seen.setdefault(lot.item_type, lot.item_type)
        lot.description = seen.setdefault(lot.description, lot.description)
        lot.price = seen.setdefault(("price", str(lot.price)), lot.price)  # 0.1 and 0.10 stay apart
        return lot

    return share


def raw_text(value: Any) -> str:
    """A text field exactly as BrickLink sent it: no unescaping, no stripping (``""`` when absent).
    BrickLink's description is sent back in every quantity change, so it must survive unchanged."""
    if value is None or isinstance(value, (list, dict)):
        return ""
    return value if isinstance(value, str) else str(value)


def build(common: "Common") -> BrickLink:
    """The adapter, from the registry's common parts (:func:`marketsync.providers.build_adapter`)."""
    from marketsync.providers.http import CallBudget, HttpClient

    return BrickLink(HttpClient(
        common.provider, common.url, decode, auth=BrickLink.auth(common.creds),
        budget=CallBudget(common.provider, common.settings.bricklink_daily_budget, common.calls_today),
        **common.client_options(),
    ))
