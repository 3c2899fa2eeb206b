"""The seller's decisions on listings: ``adopt`` a held figure into on hand, ``override`` it with
marketsync's, ``link`` a listing to a lot by hand or ``unlink`` it. Each reads the one lot back
first and judges it with the same model as push and pull (:mod:`marketsync.rules.listings`): a figure an
open change of marketsync's has made uncertain is settled first, or the command refuses."""

from __future__ import annotations

from marketsync.store import Store

from marketsync.rules import listings as rules
from marketsync.app import on_hand
from marketsync.app.context import Marketplaces, Workspace
from marketsync.config import require_credentials
from marketsync.errors import NotFoundLocally, NotSafe
from marketsync.model import Adjustment, LinkProblem, Listings, RemoteLot
from marketsync.store import inventory
from marketsync.store import listings as stored
from marketsync.store import state
from marketsync.store.state import known_restocks
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


def decide(store: Store, adapter: Listings, remote_lot_id: str, decision: str, *, calls: Calls,
           restocking: rules.Restocking = rules.UNKNOWN) -> tuple[str, bool]:
    """``adopt`` / ``override`` one listing: (what was done, whether anything changed). A listing
    that is not held and whose figure needs no decision is nothing to do: said, nothing written.
    Adopt asks instead of guessing where the seller's part hangs on a restock behaviour nobody
    knows yet (``restocking``): a cancellation since the last read, put back or not."""
    provider = adapter.name
    restocks = restocking.restocks
    row = _linked(store, provider, remote_lot_id)
    listing = stored.as_listing(row)
    open_changes = stored.maybe_changes(store, provider).get(listing.id, [])  # with the given-up ones (maybe late)
    if decision == "override" and not listing.held and not rules.open_only(open_changes):
        return (f"{provider} lot {remote_lot_id} is not held: nothing to override, nothing was changed (the next push "
                "brings it to what is available)"), False
    own = stored.own_orders(store, provider).get(remote_lot_id, rules.NO_ORDERS)
    if decision == "adopt" and adapter.read_lot(remote_lot_id) is None and rules.shortfall(listing, own):
        return _adopt_sold_out(store, provider, remote_lot_id, row, listing, own, calls), True
    lot = _read(adapter, remote_lot_id)
    parts = rules.sellers_parts(listing, own, lot.quantity, restocks)
    if decision == "adopt" and not rules.open_only(open_changes) and parts is not None:
        from marketsync.app.listing_push import restock_unknown

        with store.atomic():
            state.add_api_calls(store, calls.take_unsaved())
        raise NotSafe(restock_unknown(provider, remote_lot_id, lot.quantity, parts) + ", then adopt again (or count "
                      "the bin and run 'marketsync inventory import'); nothing was changed")
    if (decision == "adopt" and not listing.held and not rules.open_only(open_changes) and listing.listed is not None
            and rules.explain(listing, own, lot.quantity, open_changes, restocks) is not None):
        with store.atomic():
            state.add_api_calls(store, calls.take_unsaved())
        return (f"{provider} lot {remote_lot_id} is not held and its marketplace's orders explain its figure "
                f"({lot.quantity}): nothing to adopt, nothing was changed"), False
    with store.atomic():
        if decision == "adopt":
            change = _sellers_part(provider, remote_lot_id, listing, own, lot.quantity, open_changes, restocks)
            if open_changes:
                found = rules.explain(listing, own, lot.quantity, open_changes, restocks)
                stored.settle(store, open_changes, found.applied if found else (), "settled by adopt")
            made_up = on_hand.adjust(store, [(row["inventory_id"], change, Adjustment.ADOPT,
                                              f"{provider} lot {remote_lot_id} lists {lot.quantity}: the seller's "
                                              "figure adopted")])
            message = (f"{provider} lot {remote_lot_id}: on hand of lot {row['inventory_id']} changed by {change:+d}"
                       f"{_made_up(made_up)}"
                       if change else f"{provider} lot {remote_lot_id}: its figure is explained; on hand unchanged")
        else:
            # a change given up on may still land late: it stays a candidate, the open ones end here
            stored.supersede(store, rules.open_only(open_changes), "overridden by the seller")
            message = f"{provider} lot {remote_lot_id}: the next push sets it to what is available"
        stored.observe(store, [(listing.id, lot.quantity, own)])
        stored.release_hold(store, listing.id)
        stored.mark_back(store, listing.id)
        state.add_api_calls(store, calls.take_unsaved())
    return message, True


def _adopt_sold_out(store: Store, provider: str, remote_lot_id: str, row: dict, listing: rules.Listing,
                    own: rules.OwnOrders, calls: Calls) -> str:
    """A listing the seller raised on the marketplace that then sold out (and was deleted): its
    orders took more than marketsync last saw listed, so the seller had added exactly the rest."""
    added = rules.shortfall(listing, own)
    with store.atomic():
        made_up = on_hand.adjust(store, [(row["inventory_id"], added, Adjustment.ADOPT,
                                          f"{provider} lot {remote_lot_id} sold out after the seller raised it by "
                                          f"{added}")])
        stored.observe(store, [(listing.id, 0, own)])  # its orders now explain its 0: adopted once
        stored.release_hold(store, listing.id)
        state.add_api_calls(store, calls.take_unsaved())
    return (f"{provider} lot {remote_lot_id} sold out after it was raised by {added} on the marketplace: on hand of "
            f"lot {row['inventory_id']} changed by {added:+d}{_made_up(made_up)}")


def _made_up(pieces: int) -> str:
    return (f" ({pieces} of them made up what shipments since the last count took beyond on hand: "
            "they had left the bin already)") if pieces else ""


def _sellers_part(provider: str, remote_lot_id: str, listing: rules.Listing, own: rules.OwnOrders, remote: int,
                  open_changes: list[rules.Maybe], restocks: bool | None) -> int:
    """What the seller added or took on the marketplace: the figure less what orders and
    marketsync's changes explain. A listing never observed is the seller's whole (with the pieces
    of its open orders, which are on the shelf too)."""
    if listing.listed is None:
        return remote + own.open
    if open_changes and rules.explain(listing, own, remote, open_changes, restocks) is not None:
        return 0  # marketsync's own changes (one given up on may have landed late)
    if rules.open_only(open_changes):
        sent = ", ".join(f"{m.delta:+d}" for m in rules.open_only(open_changes))
        raise NotSafe(f"{provider} lot {remote_lot_id} shows {remote}, but marketsync's change {sent} to it has no "
                      "known outcome, so the seller's part of that figure cannot be told: count the bin and run "
                      "'marketsync inventory import', or 'marketsync stock override "
                      f"{provider}:{remote_lot_id}' to list what marketsync counts available")
    return remote - rules.nearest(listing, own, remote, restocks)


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


def with_pending(store: Store, rows: list[dict], settings: dict[str, bool] | None = None) -> list[dict]:
    """The change the next push would make to each listing, and why it makes none where the listing
    does not show what is available (``pending_change``, ``pending_reason``; ``listed_now``: the
    figure the marketplace shows now by its own orders since it was read). Judged by the push's
    own function (:func:`marketsync.app.listing_push.judge`) on the figures the orders explain --
    nothing is read from the marketplaces, so a figure that cannot be told without reading it
    (never read, a cancellation that may or may not restock, an open change) is named as such."""
    from marketsync.app.listing_push import judge

    for row in rows:
        row.update(listed_now=None, pending_change=None, pending_reason=None)
    if hasattr(rows, "fields"):  # an empty CSV's header
        rows.fields += ["listed_now", "pending_change", "pending_reason"]
    wanted = {row["id"]: row for row in rows}
    settings = settings or {}
    available = stored.available(store)
    for provider in sorted({row["provider"] for row in rows}):
        own, maybes = stored.own_orders(store, provider), stored.maybe_changes(store, provider)
        restocking = known_restocks(store, provider, settings.get(provider))
        linked = [row for row in stored.listings(store, provider)
                  if row["inventory_id"] is not None and row["gone_at"] is None]
        figures: dict[str, int] = {}
        unknown: dict[int, str] = {}
        for row in linked:
            listing = stored.as_listing(row)
            now = rules.figures_now(listing, own.get(listing.remote_lot_id, rules.NO_ORDERS),
                                    maybes.get(listing.id, []), restocking.restocks)
            if listing.held:
                figures[row["remote_lot_id"]] = row["held_listed"] if row["held_listed"] is not None else row["listed"]
            elif len(now) == 1:
                figures[row["remote_lot_id"]] = now[0]
            else:
                unknown[row["inventory_id"]] = (
                    "never read yet: the next push reads it, then lists what is available" if not now else
                    f"it shows {' or '.join(map(str, now))} (a cancelled order may or may not have restocked it, or "
                    "a change of marketsync's has no known outcome): the next push reads it")
        judgement = judge(provider, {row["remote_lot_id"]: row for row in linked if row["inventory_id"] not in unknown},
                          {lot: RemoteLot(provider, lot, quantity) for lot, quantity in figures.items()},
                          own, maybes, available, set(), restocking=restocking)
        by_remote = {row["remote_lot_id"]: row for row in linked}
        for row in linked:
            if row["id"] in wanted:
                wanted[row["id"]]["listed_now"] = figures.get(row["remote_lot_id"])
                wanted[row["id"]]["pending_reason"] = unknown.get(row["inventory_id"])
        for planned in judgement.planned:
            row = by_remote[planned.listing.remote_lot_id]
            if row["id"] in wanted and planned.delta:
                wanted[row["id"]]["pending_change"] = planned.delta
        for waiting in judgement.waiting:
            row = by_remote[waiting.remote_lot_id]
            if row["id"] in wanted:
                wanted[row["id"]]["pending_reason"] = waiting.reason
    return rows


# --- the use cases (the CLI's, a listener's): the lock, the store, the one marketplace ---------------
def decide_listing(ws: Workspace, provider: str, remote_lot_id: str, decision: str, *,
                   wait: float = 0.0) -> tuple[str, bool]:
    """``stock adopt`` / ``stock override``."""
    require_credentials(provider, ws.environ)
    with ws.write(wait) as store:
        marketplaces = ws.marketplaces(store, [provider])
        _orders_first(marketplaces)
        return decide(store, marketplaces.adapter(provider), remote_lot_id, decision, calls=marketplaces.counter,
                      restocking=known_restocks(store, provider, marketplaces.cancel_restocks.get(provider)))


def _orders_first(marketplaces: Marketplaces) -> None:
    """The marketplace's orders, synced before its figure is judged: an order it has taken off the
    listing but marketsync has not seen would otherwise pass for the seller's own edit (or hide it)."""
    failed = [result for result in marketplaces.sync() if not result.ok]
    if failed:
        raise NotSafe(f"{failed[0].provider}: its orders could not be read first ({failed[0].error}); nothing "
                      "was decided (run it again when the marketplace answers)")


def link_listing(ws: Workspace, provider: str, remote_lot_id: str, inventory_id: int, *, wait: float = 0.0) -> str:
    require_credentials(provider, ws.environ)
    with ws.write(wait) as store:
        marketplaces = ws.marketplaces(store, [provider])
        _orders_first(marketplaces)
        return link_by_hand(store, marketplaces.adapter(provider), remote_lot_id, inventory_id,
                            calls=marketplaces.counter)


def unlink_listing(ws: Workspace, provider: str, remote_lot_id: str, *, wait: float = 0.0) -> str:
    with ws.write(wait) as store:
        return unlink_by_hand(store, provider, remote_lot_id)


def listing_rows(ws: Workspace, provider: str | None, held_only: bool, unlinked_only: bool) -> list[dict]:
    """``stock``: each listing, with the change the next push would make."""
    from marketsync.store import queries

    store = ws.read()
    return with_pending(store, queries.stock(store, provider, held_only, unlinked_only), ws.restock_settings())
