"""Writes ``listings`` (each local lot's listing on each marketplace, with its last observation
and hold), ``_listing_changes`` (every change marketsync pushes, recorded before it is sent) and
``adjustments`` (on-hand changes that no order explains)."""

from __future__ import annotations

from marketsync.store.base import Store

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator


from marketsync.rules.listings import Listing, Maybe, OwnOrders, given_up
from marketsync.rules.mirror import ReadAs
from marketsync.rules.mirror import read_as as read_of
from marketsync.model import Adjustment, ChangeState, Gone, LinkProblem, RemoteLot, now_iso, parse_iso, utcnow
from marketsync.store.views import cancelled, open_order
from marketsync.store import inventory


@dataclass
class Link:
    """What linking decided for one remote lot."""

    remote_lot_id: str
    inventory_id: int | None
    method: str | None
    problem: LinkProblem | None = None
    detail: str | None = None


MAYBE_STATES = (ChangeState.INTENDED.value, ChangeState.UNKNOWN.value)  # recorded (sent or not), or answer lost
LATE_STATES = (ChangeState.MAYBE_LATE.value,)  # read as not applied, may still land late


def _in(values: Any) -> str:
    return ", ".join("?" for _ in values)


# What a pull reads of each listing (:func:`as_listing`, linking, the missing ones): not every column.
PULL_COLUMNS = ("id", "provider", "remote_lot_id", "inventory_id", "listed", "taken", "placed", "held_at", "gone_at",
                "retain_set", "link_method", "read_as", "gone_kind", "observed_at")
OURS = ("mirror", "relist")  # link_method of a listing marketsync created (mirrored, or relisted)


def listings(store: Store, provider: str | None = None, columns: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The listings (every column, or only ``columns``), by marketplace and remote lot."""
    db, account = store.db, store.account
    where, params = "business_account_id = ?", [account]
    if provider is not None:
        where += " and provider = ?"
        params.append(provider)
    chosen = ", ".join(columns) or "*"
    return list(db.query(f"select {chosen} from listings where {where} order by provider, remote_lot_id", params))


_PULL_KEYS = frozenset(PULL_COLUMNS)


class PullRow(Mapping[str, Any]):
    """One listing as a pull reads it (:data:`PULL_COLUMNS`), read like the dict :func:`listings`
    gives but a fifth of its size: a pull holds one per listing of the store (100,000 and more).
    Its columns are also its attributes (``row.listed``), which hot loops read directly."""

    __slots__ = PULL_COLUMNS
    id: int
    provider: str
    remote_lot_id: str
    inventory_id: int | None
    listed: int | None
    taken: int | None
    placed: int | None
    held_at: str | None
    gone_at: str | None
    retain_set: int | None
    link_method: str | None
    read_as: str | None
    gone_kind: str | None
    observed_at: str | None

    def __init__(self, id: int, provider: str, remote_lot_id: str, inventory_id: int | None,
                 listed: int | None, taken: int | None, placed: int | None, held_at: str | None,
                 gone_at: str | None, retain_set: int | None, link_method: str | None, read_as: str | None,
                 gone_kind: str | None, observed_at: str | None):
        self.id, self.provider, self.remote_lot_id, self.inventory_id = id, provider, remote_lot_id, inventory_id
        self.listed, self.taken, self.placed, self.held_at, self.gone_at = listed, taken, placed, held_at, gone_at
        self.retain_set, self.link_method, self.read_as = retain_set, link_method, read_as
        self.gone_kind, self.observed_at = gone_kind, observed_at

    def __getitem__(self, key: str) -> Any:
        if key not in _PULL_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in _PULL_KEYS else default

    def __contains__(self, key: object) -> bool:
        return key in _PULL_KEYS

    def __iter__(self) -> Iterator[str]:
        return iter(PULL_COLUMNS)

    def __len__(self) -> int:
        return len(PULL_COLUMNS)


def pull_rows(store: Store, provider: str) -> dict[str, PullRow]:
    """remote lot id -> the marketplace's listing as a pull reads it, from the cursor. The texts many
    listings repeat (the marketplace, how each was linked, when a pull observed them all, why they
    went) are one object each, not one per listing."""
    seen: dict[str, str] = {}
    share = seen.setdefault
    rows: dict[str, PullRow] = {}
    for (listing_id, provider_, remote, lot_id, listed, taken, placed, held_at, gone_at, retain_set, method,
         read, gone_kind, observed_at) in store.db.execute(
            f"select {', '.join(PULL_COLUMNS)} from listings where business_account_id = ? and provider = ? "
            "order by remote_lot_id", [store.account, provider]):
        rows[remote] = PullRow(
            listing_id, share(provider_, provider_), remote, lot_id, listed, taken, placed,
            held_at if held_at is None else share(held_at, held_at), gone_at if gone_at is None else share(gone_at, gone_at),
            retain_set, method if method is None else share(method, method), read,
            gone_kind if gone_kind is None else share(gone_kind, gone_kind),
            observed_at if observed_at is None else share(observed_at, observed_at))
    return rows


def restored_at(store: Store) -> str | None:
    """When the backup this database was restored from was taken (None: never restored)."""
    (taken,) = store.db.execute("select max(taken_at) from _backup_marks").fetchone()
    return taken


def observed_lots(store: Store) -> set[int]:
    """Lots with a listing observed on any marketplace (linked, with a figure read)."""
    return {lot for (lot,) in store.db.execute(
        "select distinct inventory_id from listings where business_account_id = ? and inventory_id is not null "
        "and listed is not null", [store.account])}


def linked(store: Store, provider: str) -> Iterator[tuple[int, str, int]]:
    """(listing id, remote lot, lot) of each of the marketplace's listings linked to a lot, by remote
    lot, from the cursor."""
    yield from store.db.execute(
        "select id, remote_lot_id, inventory_id from listings where business_account_id = ? and provider = ? "
        "and inventory_id is not null order by remote_lot_id", [store.account, provider])


def as_listing(row: Mapping[str, Any]) -> Listing:
    if isinstance(row, PullRow):  # its attributes: not 13 look-ups through the Mapping
        return Listing(row.id, row.provider, row.remote_lot_id, row.inventory_id, row.listed, row.taken or 0,
                       row.placed or 0, row.held_at is not None, row.gone_at is not None, bool(row.retain_set),
                       retained=retained(row.read_as), ours=row.link_method in OURS, observed_at=row.observed_at)
    return Listing(row["id"], row["provider"], row["remote_lot_id"], row["inventory_id"], row["listed"],
                   row["taken"] or 0, row["placed"] or 0, row["held_at"] is not None,
                   row.get("gone_at") is not None, bool(row.get("retain_set")),
                   retained=retained(row.get("read_as")), ours=row.get("link_method") in OURS,
                   observed_at=row.get("observed_at"))


# --- what was read of each listing (``read_as``): the terms a relist copies -----------------------
_READ_KEYS = ("color_id", "completeness", "condition", "description", "item_no", "item_type", "note", "price",
              "retained")  # in the order json.dumps(sort_keys=True) writes them
_READ_FORMAT = "{" + ", ".join(f'"{key}": %s' for key in _READ_KEYS) + "}"
_json_text = json.encoder.encode_basestring_ascii  # how json.dumps writes a str (ensure_ascii, the default)
_NOT_RETAINED = ', "retained": false}'  # how a text :func:`_read_json` wrote ends when the lot was not retained


def _read_json(lot: RemoteLot) -> str:
    """The terms read of ``lot`` as JSON text: ``json.dumps`` of them (keys sorted), written here
    directly when every value is a plain text, int, bool or None (each written as json.dumps would),
    through json.dumps otherwise. A pull compares it with the stored text of every lot it reads."""
    # the terms of rules.mirror.read_as(lot), without making one (a pull writes every lot's)
    price = None if lot.price is None else str(lot.price)
    texts = (lot.completeness, lot.condition, lot.description, lot.part_number, lot.item_type, lot.location or "",
             price)
    if (all(value is None or type(value) is str for value in texts) and type(lot.retained) is bool
            and (lot.color_id is None or type(lot.color_id) is int)):
        return _READ_FORMAT % (
            "null" if lot.color_id is None else int.__repr__(lot.color_id),
            *("null" if value is None else _json_text(value) for value in texts),
            "true" if lot.retained else "false")
    read = read_of(lot)
    return json.dumps({"item_no": read.item_no, "item_type": read.item_type, "color_id": read.color_id,
                       "condition": read.condition, "completeness": read.completeness, "price": price,
                       "description": read.description, "note": read.note, "retained": read.retained},
                      sort_keys=True)


def read_as(text: str | None) -> ReadAs | None:
    """``listings.read_as`` back (None: never read, or unreadable)."""
    try:
        data = json.loads(text) if text else None
        if not isinstance(data, dict):
            return None
        price = None if data.get("price") is None else Decimal(str(data["price"]))
        return ReadAs(data.get("item_no"), data.get("item_type"), data.get("color_id"), data.get("condition"),
                      data.get("completeness"), price, data.get("description"), data.get("note") or "",
                      bool(data.get("retained")))
    except (ValueError, TypeError, InvalidOperation):
        return None


def retained(text: str | None) -> bool:
    """``read_as(text).retained`` (False when unreadable), without decoding the text when it ends
    in ``, "retained": false}``: JSON or not, such a text reads as not retained (the last member of
    an object wins; that quote cannot be inside a text, nor close one, after a comma and a space)."""
    if not text or text.endswith(_NOT_RETAINED):
        return False
    read = read_as(text)
    return read is not None and read.retained


def remember_reads(store: Store, rows: Mapping[str, Mapping[str, Any]], lots: list[RemoteLot]) -> None:
    """What was read of each linked listing now (``rows``: by remote lot, with their ``read_as``),
    written only where it changed."""
    changed = []
    for lot in lots:
        row = rows.get(lot.remote_lot_id)
        if row is None or row.get("inventory_id") is None:
            continue
        text = _read_json(lot)
        if row.get("read_as") != text:
            changed.append((text, row["id"]))
    store.db.conn.executemany("update listings set read_as = ? where id = ?", changed)


def remember_pulled_reads(store: Store, provider: str, existing: dict[str, PullRow], lots: list[RemoteLot]) -> None:
    """:func:`remember_reads` after a pull, which read ``existing`` (:func:`pull_rows`) before it
    linked anything: a listing linked then is still linked to that lot with that ``read_as`` (only
    this writes it, and nothing unlinks one in a pull), so only the others are read again."""
    rows: dict[str, Mapping[str, Any]] = {}
    others = set()
    for lot in lots:
        row = existing.get(lot.remote_lot_id)
        if row is not None and row.inventory_id is not None:
            rows[lot.remote_lot_id] = row
        else:
            others.add(lot.remote_lot_id)
    if others:
        for listing_id, remote, lot_id, text in store.db.execute(
                "select id, remote_lot_id, inventory_id, read_as from listings where business_account_id = ? "
                "and provider = ? and inventory_id is not null", [store.account, provider]):
            if remote in others:
                rows[remote] = {"id": listing_id, "inventory_id": lot_id, "read_as": text}
    remember_reads(store, rows, lots)


def replaced(store: Store, provider: str, lot_ids: list[int]) -> None:
    """A listing of each lot linked on ``provider`` now: the listings there that went are replaced
    (never a reason to relist the lot, nor to keep it off that marketplace any more)."""
    store.db.conn.executemany(
        "update listings set gone_kind = ? where business_account_id = ? and provider = ? and inventory_id = ? "
        "and gone_at is not null", [(Gone.REPLACED, store.account, provider, lot_id) for lot_id in set(lot_ids)])


def own_orders(store: Store, provider: str) -> dict[str, OwnOrders]:
    """remote lot id -> what the marketplace's own orders hold on it now."""
    db, account = store.db, store.account
    open_ = open_order("o")
    rows = db.execute(
        f"select l.provider_lot_id, "
        f"sum(case when not ({cancelled('o')}) then l.quantity else 0 end), "
        f"sum(l.quantity), "
        f"sum(case when {open_} then l.quantity else 0 end), "
        f"sum(case when {open_} and (l.inventory_id is null or li.inventory_id is null "
        f"  or l.inventory_id != li.inventory_id) then l.quantity else 0 end) "
        "from order_items l join orders o on o.id = l.order_ref "
        "left join listings li on li.business_account_id = o.business_account_id and li.provider = o.provider "
        "  and li.remote_lot_id = l.provider_lot_id "
        "where o.business_account_id = ? and o.provider = ? and l.provider_lot_id is not null "
        "group by l.provider_lot_id",
        [account, provider],
    )
    return {lot: OwnOrders(taken or 0, placed or 0, open_pieces or 0, elsewhere or 0)
            for lot, taken, placed, open_pieces, elsewhere in rows}


def last_cancelled_order(store: Store, provider: str, remote_lot_id: str) -> str | None:
    """The marketplace's order on this lot that was cancelled last (as synced), if any."""
    row = store.db.execute(
        f"select o.order_id from order_items l join orders o on o.id = l.order_ref where o.business_account_id = ? "
        f"and o.provider = ? and l.provider_lot_id = ? and {cancelled('o')} "
        "order by coalesce(o.date_status_changed, '') desc, o.id desc limit 1",
        [store.account, provider, remote_lot_id]).fetchone()
    return str(row[0]) if row else None


def available(store: Store) -> dict[int, int]:
    db, account = store.db, store.account
    return {lot: quantity - reserved for lot, quantity, reserved in db.execute(
        "select id, quantity, quantity_reserved from inventory where business_account_id = ?", [account])}


def save_links(store: Store, provider: str, links: list[Link]) -> None:
    """Insert new remote lots and update the link of those not linked yet (a linked one keeps its lot)."""
    db, account = store.db, store.account
    now = now_iso()
    db.conn.executemany(
        "insert into listings (business_account_id, provider, remote_lot_id, inventory_id, link_method, link_problem, "
        "link_detail, taken, placed, updated_at) values (?, ?, ?, ?, ?, ?, ?, 0, 0, ?) "
        "on conflict (business_account_id, provider, remote_lot_id) do update set "
        "inventory_id = coalesce(listings.inventory_id, excluded.inventory_id), "
        "link_method = coalesce(listings.link_method, excluded.link_method), "
        "link_problem = case when listings.inventory_id is not null then null else excluded.link_problem end, "
        "link_detail = case when listings.inventory_id is not null then null else excluded.link_detail end, "
        "updated_at = excluded.updated_at",
        [(account, provider, link.remote_lot_id, link.inventory_id, link.method, link.problem, link.detail, now)
         for link in links],
    )
    replaced(store, provider, [link.inventory_id for link in links if link.inventory_id is not None])


def observe(store: Store, observations: list[tuple[int, int, OwnOrders]]) -> None:
    """(listing id, what the marketplace shows, its own orders on the lot) of each listing read."""
    db = store.db
    now = now_iso()
    db.conn.executemany(
        "update listings set listed = ?, taken = ?, placed = ?, observed_at = ?, updated_at = ? where id = ?",
        [(listed, own.taken, own.placed, now, now, listing_id) for listing_id, listed, own in observations])


def set_listed(store: Store, listing_id: int, listed: int) -> None:
    """A confirmed change: the marketplace now shows ``listed`` (the orders' counts are unchanged)."""
    db = store.db
    db.execute("update listings set listed = ?, observed_at = ?, updated_at = ? where id = ?",
               [listed, now_iso(), now_iso(), listing_id])


def mark_gone(store: Store, listing_id: int, reason: str, kind: Gone) -> None:
    """Not for sale any more (sold out and deleted, a stockroom, off sale): kept, with its last
    observation, so that it can come back; nothing is pushed to it meanwhile. ``kind`` says
    whether it sold out (and may be relisted) or was removed."""
    mark_gone_many(store, [(listing_id, reason, kind)])


def mark_back(store: Store, listing_id: int) -> None:
    db = store.db
    db.execute("update listings set gone_at = null, gone_reason = null, gone_kind = null, updated_at = ? where id = ?",
               [now_iso(), listing_id])


def mark_gone_many(store: Store, gone: list[tuple[int, str, Gone | None]]) -> None:
    """:func:`mark_gone` of each (listing id, reason, kind), in one statement."""
    now = now_iso()
    store.db.conn.executemany(
        "update listings set gone_at = ?, gone_reason = ?, gone_kind = ?, held_at = null, held_listed = null, "
        "held_reason = null, updated_at = ? where id = ?",
        [(now, reason, kind, now, listing_id) for listing_id, reason, kind in gone])


def seen_again(store: Store, listing_ids: list[int]) -> None:
    """:func:`release_hold` and :func:`mark_back` of each listing, in one statement each; a listing
    neither held nor gone is not written (a re-pull of 100,000 lots writes only what it changes)."""
    now = now_iso()
    store.db.conn.executemany("update listings set held_at = null, held_listed = null, held_reason = null, "
                              "updated_at = ? where id = ? and (held_at is not null or held_listed is not null "
                              "or held_reason is not null)", [(now, listing_id) for listing_id in listing_ids])
    store.db.conn.executemany("update listings set gone_at = null, gone_reason = null, gone_kind = null, updated_at = ? "
                              "where id = ? and (gone_at is not null or gone_reason is not null or gone_kind is not null)",
                              [(now, listing_id) for listing_id in listing_ids])


def set_retain(store: Store, listing_id: int, retain_set: bool) -> None:
    db = store.db
    db.execute("update listings set retain_set = ?, updated_at = ? where id = ?",
               [int(retain_set), now_iso(), listing_id])


UNLINKED_BY_HAND = "unlinked-by-hand"  # link_method of a listing the seller unlinked: never linked again by itself


def relink(store: Store, listing_id: int, inventory_id: int | None) -> None:
    """Link a listing to a lot by hand (``stock link``), or release it (``stock unlink``): its old
    observation, open changes and hold are forgotten (the caller observes it afresh)."""
    db = store.db
    db.execute("update listings set inventory_id = ?, link_method = ?, link_problem = ?, link_detail = ?, "
               "listed = null, held_at = null, held_listed = null, held_reason = null, gone_at = null, "
               "gone_reason = null, gone_kind = null, updated_at = ? where id = ?",
               [inventory_id, "by-hand" if inventory_id is not None else UNLINKED_BY_HAND,
                None if inventory_id is not None else LinkProblem.UNLINKED,
                None if inventory_id is not None else "unlinked by hand ('marketsync stock link' links it again)",
                now_iso(), listing_id])
    if inventory_id is not None:
        [(provider,)] = db.execute("select provider from listings where id = ?", [listing_id]).fetchall()
        replaced(store, provider, [inventory_id])
    db.execute("update _listing_changes set state = ?, detail = 'the listing was linked again by hand', "
               f"resolved_at = ? where listing_id = ? and state in ({_in(MAYBE_STATES + LATE_STATES)})",
               [ChangeState.SUPERSEDED, now_iso(), listing_id, *MAYBE_STATES, *LATE_STATES])


def keep_only(store: Store, listing_id: int, only: bool) -> None:
    """The seller keeps this listing's lot on its marketplace only (``stock only``): mirroring never
    creates it elsewhere."""
    store.db.execute("update listings set kept_only = ?, updated_at = ? where id = ?",
                     [int(only), now_iso(), listing_id])


def hold(store: Store, listing_id: int, remote: int | None, reason: str) -> None:
    db = store.db
    db.execute("update listings set held_at = ?, held_listed = ?, held_reason = ?, updated_at = ? where id = ?",
               [now_iso(), remote, reason, now_iso(), listing_id])


def release_hold(store: Store, listing_id: int) -> None:
    db = store.db
    db.execute("update listings set held_at = null, held_listed = null, held_reason = null, updated_at = ? "
               "where id = ?", [now_iso(), listing_id])


def find(store: Store, provider: str, remote_lot_id: str) -> dict[str, Any] | None:
    db, account = store.db, store.account
    rows = list(db.query("select * from listings where business_account_id = ? and provider = ? "
                         "and remote_lot_id = ?", [account, provider, remote_lot_id]))
    return rows[0] if rows else None


# --- the journal of changes -----------------------------------------------------------------------
def record_intents(store: Store, provider: str, changes: list[tuple[int, str, int, int]]) -> list[int]:
    """(listing id, remote lot, before, after) of each change about to be sent; their journal ids."""
    db, account = store.db, store.account
    now = now_iso()
    ids = []
    for listing_id, remote_lot_id, before, after in changes:
        cursor = db.execute(
            "insert into _listing_changes (listing_id, business_account_id, provider, remote_lot_id, delta, before, "
            "after, state, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [listing_id, account, provider, remote_lot_id, after - before, before, after, ChangeState.INTENDED, now],
        )
        ids.append(int(cursor.lastrowid or 0))
    return ids


def resolve_change(store: Store, change_id: int, state: ChangeState, detail: str | None = None) -> None:
    db = store.db
    db.execute("update _listing_changes set state = ?, detail = ?, resolved_at = ? where id = ?",
               [state, detail, now_iso(), change_id])


def maybe_changes(store: Store, provider: str | None = None, *, late: bool = True) -> dict[int, list[Maybe]]:
    """listing id -> its changes whose outcome is not known yet (each may or may not be applied):
    the open ones and (``late``) the ones given up on that may still land late."""
    db, account = store.db, store.account
    states = MAYBE_STATES + (LATE_STATES if late else ())
    where, params = f"business_account_id = ? and state in ({_in(states)})", [account, *states]
    if provider is not None:
        where += " and provider = ?"
        params.append(provider)
    found: dict[int, list[Maybe]] = {}
    for change_id, listing_id, delta, state, unseen, created_at in db.execute(
            f"select id, listing_id, delta, state, unseen_reads, created_at from _listing_changes where {where} "
            "order by id", params):
        found.setdefault(listing_id, []).append(
            Maybe(change_id, delta, late=state in LATE_STATES, unseen=unseen or 0, sent_at=parse_iso(created_at)))
    return found


def settle(store: Store, maybes: list[Maybe], applied: tuple[int, ...], detail: str) -> None:
    """Changes whose outcome was not known, judged against a read: the ones an explanation takes
    as applied are applied (a given-up one landed late); the others were not shown by this read --
    maybe late for a while, then not applied (:func:`marketsync.rules.listings.given_up`)."""
    db = store.db
    now = utcnow()
    at = now_iso()
    rows = []
    for m in maybes:
        state = given_up(m, m.id in applied, now)
        why = ("applied late, after it was read as not applied: " + detail if m.late and state == ChangeState.APPLIED
               else detail)
        rows.append((state, why, at, m.unseen + (state != ChangeState.APPLIED), m.id))
    db.conn.executemany("update _listing_changes set state = ?, detail = ?, resolved_at = ?, unseen_reads = ? "
                        "where id = ?", rows)


def supersede(store: Store, maybes: list[Maybe], detail: str) -> None:
    """Open changes nobody can settle any more (the seller's figure was adopted or overridden)."""
    db = store.db
    now = now_iso()
    db.conn.executemany("update _listing_changes set state = ?, detail = ?, resolved_at = ? where id = ?",
                        [(ChangeState.SUPERSEDED, detail, now, m.id) for m in maybes])


def changes(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    db, account = store.db, store.account
    return list(db.query("select * from _listing_changes where business_account_id = ? order by id desc limit ?",
                         [account, limit]))


# --- adjustments ----------------------------------------------------------------------------------
def adjust_on_hand(store: Store, lot_id: int, change: int, reason: Adjustment, detail: str) -> None:
    """On hand moves by ``change`` with a row that says why (caller holds the transaction); the
    lot's on hand counts as established now (an order first seen shipped later only takes its
    pieces off when it was placed after this)."""
    db, account = store.db, store.account
    inventory.mark_stocked(store, [lot_id])
    if not change:
        return
    db.execute("insert into adjustments (business_account_id, inventory_id, quantity, reason, detail, created_at) "
               "values (?, ?, ?, ?, ?, ?)", [account, lot_id, change, reason, detail, now_iso()])
    inventory.move_counters(store, {lot_id: (0, -change)})


def adjust_many(store: Store, changes: list[tuple[int, int, Adjustment, str]]) -> None:
    """:func:`adjust_on_hand` of each (lot, change, reason, detail), in this order, one statement
    each kind (a lot named twice moves twice, each move clamped at 0 as one by one)."""
    db, account = store.db, store.account
    inventory.mark_stocked(store, [lot_id for lot_id, *_ in changes])
    moved = [(lot_id, change, reason, detail) for lot_id, change, reason, detail in changes if change]
    now = now_iso()
    db.conn.executemany(
        "insert into adjustments (business_account_id, inventory_id, quantity, reason, detail, created_at) "
        "values (?, ?, ?, ?, ?, ?)", [(account, lot_id, change, reason, detail, now)
                                      for lot_id, change, reason, detail in moved])
    inventory.move_on_hand(store, [(lot_id, change) for lot_id, change, *_ in moved])


def record_adjustment(store: Store, lot_id: int, change: int, reason: Adjustment, detail: str) -> None:
    """An ``adjustments`` row for a change on hand already made (an import sets the figure itself)."""
    store.db.execute("insert into adjustments (business_account_id, inventory_id, quantity, reason, detail, "
                     "created_at) values (?, ?, ?, ?, ?, ?)", [store.account, lot_id, change, reason, detail, now_iso()])


def shipped_since(store: Store, lot_ids: list[int]) -> dict[int, int]:
    """lot -> pieces shipped from it since its on hand was last established (``stocked_at``)."""
    found: dict[int, int] = {}
    for start in range(0, len(lot_ids), 500):
        part = lot_ids[start:start + 500]
        found.update(store.db.execute(
            "select r.inventory_id, sum(r.consumed) from reservations r join inventory i on i.id = r.inventory_id "
            f"where r.inventory_id in ({', '.join('?' for _ in part)}) and r.consumed > 0 "
            "and r.created_at >= coalesce(i.stocked_at, '') group by r.inventory_id", part).fetchall())
    return found
