"""The domain model at the centre of marketsync: plain records, the unified order lifecycle,
the kinds of unmatched line, and the protocols the marketplace adapters implement.

This module imports nothing of marketsync's; everything else may import it.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol


class Text(str, enum.Enum):
    """A state stored and printed as its text (``Status.PAID == "paid"``; rows read back are text)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


# --- the unified order lifecycle (shared/marketplace-apis.md, "Mapping both onto one order lifecycle")
class Status(Text):
    PENDING = "pending"
    PAID = "paid"
    PROCESSING = "processing"
    PACKED = "packed"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    DISPUTED = "disputed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # a status nobody has seen before: keeps its stock reserved, reported


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
# The open-order rule, stated once: an order in one of these statuses, not released by hand, holds
# stock. (The data layer builds its SQL and the views from this tuple when a database opens.)
OPEN_STATUSES: tuple[str, ...] = tuple(s.value for s in (Status.PENDING, Status.PAID, Status.PROCESSING,
                                                          Status.PACKED, Status.DISPUTED, Status.UNKNOWN))
SHIPPED_STATUSES: tuple[str, ...] = (Status.SHIPPED.value, Status.COMPLETED.value)
# Open statuses an order can only be in before it ships: one that comes back to them after shipping
# had its shipment taken back. (disputed and unknown can follow a shipment: they take nothing back.)
PRE_SHIPMENT_STATUSES: tuple[str, ...] = tuple(s.value for s in (Status.PENDING, Status.PAID, Status.PROCESSING,
                                                                  Status.PACKED))
CANCELLED_STATUSES: tuple[str, ...] = (Status.CANCELLED.value,)


def is_open(status: str, manual_release: bool = False) -> bool:
    """Does an order in ``status`` hold stock? The one statement of the rule (SQL callers use
    OPEN_STATUSES and ``manual_release = 0`` with the same meaning)."""
    return status in OPEN_STATUSES and not manual_release


def is_shipped(status: str, manual_release: bool = False) -> bool:
    """Have an order's pieces left the building?"""
    return status in SHIPPED_STATUSES and not manual_release


# --- why a line has no lot: logic is keyed on these codes, never on the message text ------------
class Unmatched:
    NO_PART = "no_part"  # no BrickLink part number (BrickOwl line not translatable)
    COLOUR_UNKNOWN = "colour_unknown"  # BrickOwl colour newer than our table: retried after a refresh
    COLOUR_NONE = "colour_none"  # BrickLink has no equivalent colour
    CONDITION_UNKNOWN = "condition_unknown"  # BrickOwl 'other' and the like
    LOOKUP_DEFERRED = "lookup_deferred"  # the catalog lookup could not be made this run: retried
    NO_LOT = "no_lot"  # translated, but the inventory holds no such lot
    UNREADABLE = "unreadable"  # the payload could not be read at all

    ALL = (NO_PART, COLOUR_UNKNOWN, COLOUR_NONE, CONDITION_UNKNOWN, LOOKUP_DEFERRED, NO_LOT, UNREADABLE)
    RETRIED = (COLOUR_UNKNOWN, LOOKUP_DEFERRED)  # kinds a later run tries again by itself


# --- what translation knows of a marketplace's catalogue (stored by the data layer) --------------
# Sources of a BOID -> part mapping, weakest first. A stronger source replaces a weaker one;
# equal or weaker never replaces (first answer wins, no flip-flopping), and 'manual' only ever
# changes through `marketsync map`.
SOURCES = ("ids", "id_lookup", "lot-link", "manual")
RANK = {source: rank for rank, source in enumerate(SOURCES)}


@dataclass(frozen=True)
class Mapping:
    part_number: str
    source: str


@dataclass
class Learned:
    """What translation learned in a run and has not stored yet."""

    mappings: dict[str, tuple[str, str]] = field(default_factory=dict)  # base BOID -> (part, source)
    # (BrickLink part, BrickOwl type asked) -> (BOIDs, when)
    answers: dict[tuple[str, str], tuple[tuple[str, ...], str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.mappings or self.answers)


@dataclass
class Known:
    """The stored catalogue data a translator starts from."""

    colours: dict[int, int | None]  # BrickOwl colour -> BrickLink colour (None: no equivalent)
    # (BrickLink part, BrickOwl type asked) -> BOIDs (cached catalog/id_lookup answers)
    answers: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    mappings: list[tuple[str, str, str]] = field(default_factory=list)  # (base BOID, part, source)


# --- time: timezone-aware UTC everywhere, stored as ISO-8601 text ---------------------------------
def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(value: dt.datetime | None) -> str | None:
    """UTC ISO-8601 with a ``Z``, second precision: sorts as text and reads well."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso(utcnow()) or ""


def parse_iso(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- records ------------------------------------------------------------------------------------
@dataclass(slots=True)
class OrderSummary:
    """One entry of a marketplace's order list: enough to decide whether to fetch more, and no more.
    A first sync holds every entry of the list until its order is fetched, so an entry is compact:
    no dict per entry, and the entry's JSON kept (as text) only where the order row is made from it."""

    provider: str
    order_id: str
    status: Status  # unified
    provider_status: str
    fingerprint: str  # changes whenever anything we store about the order changes
    date_ordered: dt.datetime | None
    is_filed: bool = False  # BrickLink: listed by the filed=true list
    details_gone: bool = False  # the marketplace deleted the order's details (BrickLink PURGED)
    raw_json: str | None = field(repr=False, default=None)  # the entry as listed, when fetching needs it (BrickLink)

    @property
    def raw(self) -> dict[str, Any]:
        """The entry as listed (decoded afresh from :attr:`raw_json`; empty when it was not kept)."""
        raw = json.loads(self.raw_json) if self.raw_json else {}
        return raw if isinstance(raw, dict) else {}


@dataclass
class Order:
    provider: str
    order_id: str
    status: Status
    provider_status: str
    fingerprint: str
    date_ordered: dt.datetime | None = None
    date_status_changed: dt.datetime | None = None
    buyer_name: str | None = None
    buyer_email: str | None = None
    lot_count: int | None = None
    piece_count: int | None = None
    subtotal: Decimal | None = None
    grand_total: Decimal | None = None
    currency: str | None = None
    payment_status: str | None = None
    shipping_method: str | None = None
    tracking_number: str | None = None
    is_filed: bool = False
    listed_as: str | None = None  # the list's status, when the list entry and the detail disagree
    details_gone: bool = False  # nothing more can be fetched: a stored order keeps what it has
    store_id: str | None = None  # the seller's store on that marketplace, where the order says (a hint is checked against it)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    raw_json: str | None = field(repr=False, default=None)  # ``raw`` serialised, off the writer's thread


@dataclass
class OrderLine:
    """One line of an order, keyed the BrickLink way where the marketplace allows it.

    ``line_key`` identifies the line durably within its order: BrickLink has no item id, so
    it is ``"<batch>:<inventory_id>"``; BrickOwl's is its ``order_item_id``.
    """

    provider: str
    order_id: str
    line_key: str
    quantity: int
    part_number: str | None = None  # BrickLink item number (None when not translatable yet)
    color_id: int | None = None  # BrickLink colour id
    condition: str | None = None  # 'new' | 'used' | None (BrickOwl 'other')
    location: str | None = None  # BrickLink remarks / BrickOwl personal_note
    name: str | None = None
    item_type: str | None = None
    color_name: str | None = None
    unit_price: Decimal | None = None
    currency: str | None = None
    batch: int | None = None
    provider_lot_id: str | None = None  # BrickLink inventory_id / BrickOwl lot_id
    bricklink_lot_id: str | None = None  # the BrickLink lot this line's lot is linked to
    # BrickOwl identity, kept for translation (see marketsync/translate.py)
    boid: str | None = None
    provider_color_id: int | None = None
    provider_condition: str | None = None
    alt_part_numbers: list[str] = field(default_factory=list)  # ldraw, peeron_id, design_id
    unmatched_reason: str | None = None
    unmatched_kind: str | None = None  # one of Unmatched.ALL when unmatched_reason is set
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    raw_json: str | None = field(repr=False, default=None)

    def unmatched(self, kind: str, reason: str) -> None:
        self.unmatched_kind, self.unmatched_reason = kind, reason


@dataclass
class InventoryLot:
    """A lot of the seller's own store, as a file or a marketplace lists it."""

    part_number: str
    color_id: int
    condition: str
    location: str
    quantity: int
    bricklink_lot_id: str | None = None
    name: str | None = None
    item_type: str | None = None
    price: Decimal | None = None


@dataclass
class SyncListing:
    """What a marketplace lists for one sync run, with anything the seller should know."""

    summaries: list[OrderSummary]
    warnings: list[str] = field(default_factory=list)
    complete: bool = True  # False when the marketplace may have left orders out


# --- what the core asks of the adapters -------------------------------------------------------------
class Adapter(Protocol):
    """A marketplace's orders, as both adapters serve them."""

    name: str

    def list_for_sync(self, *, first: bool, open_ids: set[str], since: dt.datetime | None,
                      full: bool = False) -> SyncListing: ...

    def fetch(self, head: OrderSummary) -> tuple[Order, list[OrderLine]]: ...


@dataclass(frozen=True)
class Notification:
    """One event a marketplace lists for a listener (BrickLink's ``GET /notifications``): only ever
    a hint; the same event is told apart from another by all three fields."""

    event_type: str  # "Order", "Message", "Feedback"
    resource_id: str  # the order id for an Order event
    timestamp: str


class Notified(Protocol):
    """What a marketplace with the NOTIFICATIONS capability serves a listener: one named order,
    fetched whole (the hint names it; nothing else of the hint is trusted)."""

    name: str

    def fetch_named(self, order_id: str) -> tuple[Order, list[OrderLine]]: ...


class NotificationList(Notified, Protocol):
    """A marketplace whose hint is content-free: the events are listed by a call of their own."""

    def notifications(self) -> list[Notification]: ...


class NotifyRegistration(Notified, Protocol):
    """A marketplace that is told by an API call where to send its hints (an empty ip: nowhere)."""

    def register_notify(self, ip: str) -> None: ...


class Catalog(Protocol):
    """A marketplace's own catalogue, which translation asks (registry capability CATALOG)."""

    name: str

    def color_list(self) -> dict[int, tuple[str | None, int | None]]: ...

    def id_lookup(self, bricklink_part: str, item_type: str = "Part") -> list[str]: ...


class MarketplaceAdapter(Adapter, Protocol):
    """What every adapter serves: its orders and the seller's lots (the Listings protocol below)."""

    write_batch_size: int
    deletes_empty_lots: bool

    def list_lots(self) -> list[RemoteLot]: ...

    def read_lot(self, remote_lot_id: str) -> RemoteLot | None: ...

    def change_quantities(self, changes: list[QuantityChange]) -> list[ChangeResult]: ...


# --- the seller's listings on the marketplaces ------------------------------------------------------
@dataclass(slots=True)
class RemoteLot:
    """One lot of the seller's store as a marketplace lists it (quantity = what it offers now).
    Slotted: a pull holds one per lot of the store (100,000 and more)."""

    provider: str
    remote_lot_id: str
    quantity: int
    part_number: str | None = None  # BrickLink's own lots only; BrickOwl's are translated
    color_id: int | None = None  # BrickLink colour
    condition: str | None = None
    location: str | None = None  # BrickLink remarks / BrickOwl personal_note
    bricklink_lot_id: str | None = None  # BrickLink's own id / the BrickLink lot a BrickOwl lot is linked to
    name: str | None = None
    item_type: str | None = None
    price: Decimal | None = None
    boid: str | None = None
    provider_color_id: int | None = None
    provider_condition: str | None = None
    alt_part_numbers: list[str] = field(default_factory=list)
    description: str | None = None  # BrickLink's public description exactly as read (entities and all)
    retained: bool = False  # BrickLink's is_retain: kept in the store at quantity 0
    for_sale: bool = True  # buyers can see it (BrickLink status Y and not a stockroom; BrickOwl for_sale)
    completeness: str | None = None  # BrickLink sets: C complete, B incomplete, S sealed


@dataclass
class QuantityChange:
    """A relative change of one listing: ``delta`` pieces (signed). ``description`` is the lot's
    own public description as read (BrickLink refuses a quantity change without one, and an empty
    one wipes it); ``retain`` True keeps a lot that reaches 0 listed (BrickLink deletes it
    otherwise), False puts the seller's setting back, None leaves it alone."""

    remote_lot_id: str
    delta: int
    retain: bool | None = None
    description: str | None = None


class Outcome(Text):
    """What became of one change sent to a marketplace, as its adapter read the answer."""

    APPLIED = "applied"
    REFUSED = "refused"  # the marketplace said no: nothing changed
    UNKNOWN = "unknown"  # the answer was lost: maybe applied; read the lot back before anything else
    NOT_SENT = "not_sent"  # never sent (the daily budget ran out first)


class ChangeState(Text):
    """A recorded change's state in the journal (``_listing_changes.state``)."""

    INTENDED = "intended"  # recorded and committed before it is sent (maybe sent: a crash)
    UNKNOWN = "unknown"  # sent, the answer lost, the read-back inconclusive: maybe applied
    APPLIED = "applied"  # confirmed: answered, read back, or a read showed it (in time or late)
    MAYBE_LATE = "maybe_late"  # read as not applied, but it may still land: explains a figure for a while
    NOT_APPLIED = "not_applied"  # final: read as not applied, and no longer expected to land
    REFUSED = "refused"
    NOT_SENT = "not_sent"
    SUPERSEDED = "superseded"  # the seller's decision (adopt, override, link) took its place
    UNEXPLAINED = "unexplained"  # (older databases) read back as neither before nor after


class Reason(Text):
    """Why a ledger row moved a reservation (``reservations.reason``)."""

    RESERVE = "reserve"
    SHIPPED = "shipped"  # released, and its pieces taken off on hand
    UNSHIPPED = "unshipped"  # a shipment taken back: its pieces return to on hand
    MADE_UP = "made-up"  # an oversold shipment's pieces its lot lacked, made up by a shipment taken back
    CANCELLED = "cancelled"
    MANUAL_RELEASE = "manual-release"
    LINE_REMOVED = "line-removed"
    REMATCHED = "rematched"  # the line moved to another lot
    ADJUSTED = "adjusted"  # the line's quantity changed
    UNMATCHED = "unmatched"  # the line lost its lot


class Adjustment(Text):
    """Why on hand moved without an order (``adjustments.reason``)."""

    ADOPT = "adopt"  # the seller's figure on a marketplace, adopted
    PULL = "pull"  # a pull found the listing moved by the seller's hand
    SHORT_PICK = "short-pick"  # the bin held fewer pieces than recorded
    IMPORT = "import"  # an import put back pieces that shipped since the lot was last counted


class LinkProblem(Text):
    """Why a remote lot has no local lot."""

    UNLINKED = "unlinked"  # no local lot of that part, colour, condition and bin
    AMBIGUOUS = "ambiguous"  # several local lots of it, none in that bin


class Gone(Text):
    """Why a listing is no longer for sale (``listings.gone_kind``), as far as that decides whether
    marketsync may create it again (docs/stock-model.md, "Sold out and deleted")."""

    SOLD_OUT = "sold_out"  # its own orders took it to 0 and its marketplace deleted it (not retained): relisted
    REMOVED = "removed"  # deleted or taken off sale by somebody (the seller): never created again
    REPLACED = "replaced"  # another listing of the lot on that marketplace linked in its place since


@dataclass
class ChangeResult:
    remote_lot_id: str
    outcome: Outcome
    detail: str | None = None


class Listings(Protocol):
    """A marketplace's view of the seller's own store, which both adapters serve."""

    name: str
    write_batch_size: int  # changes one write call carries
    deletes_empty_lots: bool  # a lot at 0 vanishes unless retained (BrickLink's is_retain)

    def list_lots(self) -> list[RemoteLot]: ...

    def read_lot(self, remote_lot_id: str) -> RemoteLot | None: ...

    def change_quantities(self, changes: list[QuantityChange]) -> list[ChangeResult]: ...


# --- creating lots: a lot of one marketplace mirrored onto the other (``stock mirror``) ----------------
@dataclass
class NewLot:
    """A lot to create on a marketplace, in that marketplace's own terms. ``ref`` is the creation's
    id in marketsync's journal (recorded before it is sent): it matches each answer to its lot."""

    ref: str
    item_no: str  # BrickLink item number / BrickOwl base BOID
    item_type: str  # BrickLink's (PART, SET...) / BrickOwl's (Part, Set...)
    color_id: int | None  # the marketplace's own colour (None: an item sent without one)
    condition: str  # BrickLink ``new_or_used`` (N, U) / BrickOwl's condition code (new, usedg...)
    quantity: int
    price: Decimal
    note: str  # the bin: BrickLink ``remarks`` / BrickOwl ``personal_note``
    completeness: str | None = None  # BrickLink sets: C, B, S
    external_id: str | None = None  # BrickOwl: the BrickLink lot it mirrors (``external_id_1``)
    description: str | None = None  # BrickLink: the public description, exactly as read (a relisted lot's)


@dataclass
class Created:
    """What became of one creation: APPLIED with the new lot's id, REFUSED (nothing created),
    UNKNOWN (the answer was lost: look for the lot before anything is sent again) or NOT_SENT."""

    ref: str
    outcome: Outcome
    remote_lot_id: str | None = None
    detail: str | None = None


class Creations(Protocol):
    """A marketplace on which marketsync creates lots (both adapters). Creations are writes: never
    retried; a lost answer is UNKNOWN and settled by :meth:`find_created`."""

    name: str
    create_batch_size: int  # creations one call carries

    def create_lots(self, lots: list[NewLot]) -> list[Created]: ...

    def find_created(self, lot: NewLot) -> list[RemoteLot]: ...

    def list_lots(self) -> list[RemoteLot]: ...

    def budget(self) -> tuple[int, int] | None: ...  # (the day's call limit, calls used today); None: no quota
