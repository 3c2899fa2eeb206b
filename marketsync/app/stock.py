"""The seller's decisions on listings: ``adopt`` a held figure into on hand, ``override`` it with
marketsync's, ``link`` a listing to a lot by hand or ``unlink`` it. Each reads the one lot back
first and judges it with the same model as push and pull (:mod:`marketsync.rules.listings`): a figure an
open change of marketsync's has made uncertain is settled first, or the command refuses."""

from __future__ import annotations

from marketsync.store import Store

from marketsync.rules import listings as rules
from marketsync.app.context import Workspace
from marketsync.config import require_credentials
from marketsync.errors import NotFoundLocally, NotSafe
from marketsync.model import Adjustment, LinkProblem, Listings, RemoteLot
from marketsync.store import inventory
from marketsync.store import listings as stored
from marketsync.store import state
from marketsync.app.order_sync import Calls


def _read(adapter: Listings, remote_lot_id: str) -> RemoteLot:
    lot = adapter.read_lot(remote_lot_id)
    if lot is None:
        raise NotFoundLocally(f"{adapter.name} lot {remote_lot_id} is not listed any more")
    if not lot.for_sale:
        raise NotSafe(f"{adapter.name} lot {remote_lot_id} is not for sale (a stockroom, unavailable or off sale): "
                      "marketsync never links or changes a lot buyers cannot see")
    return lot


def _linked(store: Store, provider: str, remote_lot_id: str) -> dict:
    row = stored.find(store, provider, remote_lot_id)
    if row is None or row["inventory_id"] is None:
        raise NotFoundLocally(f"no {provider} listing {remote_lot_id} linked to a lot in the database "
                              "(see 'marketsync stock --unlinked')")
    return row


def decide(store: Store, adapter: Listings, remote_lot_id: str, decision: str, *, calls: Calls) -> str:
    provider = adapter.name
    row = _linked(store, provider, remote_lot_id)
    lot = _read(adapter, remote_lot_id)
    listing = stored.as_listing(row)
    own = stored.own_orders(store, provider).get(remote_lot_id, rules.NO_ORDERS)
    open_changes = stored.maybe_changes(store, provider).get(listing.id, [])
    with store.atomic():
        if decision == "adopt":
            change = _sellers_part(provider, remote_lot_id, listing, own, lot.quantity, open_changes)
            if open_changes:
                found = rules.explain(listing, own, lot.quantity, open_changes)
                stored.settle(store, open_changes, found.applied if found else (), "settled by adopt")
            stored.adjust_on_hand(store, row["inventory_id"], change, Adjustment.ADOPT,
                                  f"{provider} lot {remote_lot_id} lists {lot.quantity}: the seller's figure adopted")
            message = (f"{provider} lot {remote_lot_id}: on hand of lot {row['inventory_id']} changed by {change:+d}"
                       if change else f"{provider} lot {remote_lot_id}: its figure is explained; on hand unchanged")
        else:
            stored.supersede(store, open_changes, "overridden by the seller")
            message = f"{provider} lot {remote_lot_id}: the next push sets it to what is available"
        stored.observe(store, [(listing.id, lot.quantity, own)])
        stored.release_hold(store, listing.id)
        stored.mark_back(store, listing.id)
        state.add_api_calls(store, calls.take_unsaved())
    return message


def _sellers_part(provider: str, remote_lot_id: str, listing: rules.Listing, own: rules.OwnOrders, remote: int,
                  open_changes: list[rules.Maybe]) -> int:
    """What the seller added or took on the marketplace: the figure less what orders and
    marketsync's changes explain. A listing never observed is the seller's whole (with the pieces
    of its open orders, which are on the shelf too)."""
    if listing.listed is None:
        return remote + own.open
    if open_changes:
        if rules.explain(listing, own, remote, open_changes) is not None:
            return 0
        sent = ", ".join(f"{m.delta:+d}" for m in open_changes)
        raise NotSafe(f"{provider} lot {remote_lot_id} shows {remote}, but marketsync's change {sent} to it has no "
                      "known outcome, so the seller's part of that figure cannot be told: count the bin and run "
                      "'marketsync inventory import', or 'marketsync stock override "
                      f"{provider}:{remote_lot_id}' to list what marketsync counts available")
    return remote - rules.nearest(listing, own, remote)


def link_by_hand(store: Store, adapter: Listings, remote_lot_id: str, inventory_id: int, *,
                 calls: Calls) -> str:
    """Link a for-sale listing to a local lot; it is observed as it is now (the next push brings the
    lot's listings on that marketplace to what is available)."""
    provider = adapter.name
    if not inventory.has_lot(store, inventory_id):
        raise NotFoundLocally(f"no local lot {inventory_id} (see 'marketsync inventory list')")
    lot = _read(adapter, remote_lot_id)
    own = stored.own_orders(store, provider).get(remote_lot_id, rules.NO_ORDERS)
    with store.atomic():
        row = stored.find(store, provider, remote_lot_id)
        if row is None:
            stored.save_links(store, provider, [stored.Link(remote_lot_id, None, None, LinkProblem.UNLINKED, "new")])
            row = stored.find(store, provider, remote_lot_id)
        assert row is not None
        stored.relink(store, row["id"], inventory_id)
        stored.observe(store, [(row["id"], lot.quantity, own)])
        state.add_api_calls(store, calls.take_unsaved())
    return f"{provider} lot {remote_lot_id} linked to local lot {inventory_id} (it lists {lot.quantity})"


def unlink_by_hand(store: Store, provider: str, remote_lot_id: str) -> str:
    row = _linked(store, provider, remote_lot_id)
    with store.atomic():
        stored.relink(store, row["id"], None)
    return (f"{provider} lot {remote_lot_id} unlinked from local lot {row['inventory_id']}; marketsync no longer "
            "changes it")


def with_pending(rows: list[dict]) -> list[dict]:
    """The change the next push would make to each listing, by the push's own rule (a lot's listings
    on one marketplace together show what is available); None where it makes none: held, not
    observed yet, or no longer for sale (``stock`` rows, as :func:`store.queries.stock` reads them)."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        row["pending_change"] = None
        if row["inventory_id"] is not None and row["gone_at"] is None:
            groups.setdefault((row["provider"], row["inventory_id"]), []).append(row)
    for group in groups.values():
        if any(row["held_reason"] or row["listed"] is None for row in group):
            continue
        shown = [(rules.Listing(row["id"], row["provider"], row["remote_lot_id"], row["inventory_id"], row["listed"],
                                0, 0), row["listed"]) for row in group]
        planned = {p.listing.id: p.delta for p in rules.plan(rules.LotListings(group[0]["available"], shown))}
        for row in group:
            row["pending_change"] = planned.get(row["id"]) or None
    return rows


# --- the use cases (the CLI's, a listener's): the lock, the store, the one marketplace ---------------
def decide_listing(ws: Workspace, provider: str, remote_lot_id: str, decision: str, *, wait: float = 0.0) -> str:
    """``stock adopt`` / ``stock override``."""
    require_credentials(provider, ws.environ)
    with ws.write(wait) as store:
        marketplaces = ws.marketplaces(store, [provider])
        return decide(store, marketplaces.adapter(provider), remote_lot_id, decision, calls=marketplaces.counter)


def link_listing(ws: Workspace, provider: str, remote_lot_id: str, inventory_id: int, *, wait: float = 0.0) -> str:
    require_credentials(provider, ws.environ)
    with ws.write(wait) as store:
        marketplaces = ws.marketplaces(store, [provider])
        return link_by_hand(store, marketplaces.adapter(provider), remote_lot_id, inventory_id,
                            calls=marketplaces.counter)


def unlink_listing(ws: Workspace, provider: str, remote_lot_id: str, *, wait: float = 0.0) -> str:
    with ws.write(wait) as store:
        return unlink_by_hand(store, provider, remote_lot_id)


def listing_rows(ws: Workspace, provider: str | None, held_only: bool, unlinked_only: bool) -> list[dict]:
    """``stock``: each listing, with the change the next push would make."""
    from marketsync.store import queries

    return with_pending(queries.stock(ws.read(), provider, held_only, unlinked_only))
