"""The seller's decision on a held listing: ``adopt`` the marketplace's figure into on hand, or
``override`` it with marketsync's. Either reads the one lot back first."""

from __future__ import annotations

from sqlite_utils import Database

from marketsync import listings as rules
from marketsync.errors import NotFoundLocally
from marketsync.model import Listings
from marketsync.store import listings as stored
from marketsync.store import state
from marketsync.sync import Calls


def decide(db: Database, account: str, adapter: Listings, remote_lot_id: str, decision: str, *, calls: Calls) -> str:
    provider = adapter.name
    row = stored.find(db, account, provider, remote_lot_id)
    if row is None or row["inventory_id"] is None:
        raise NotFoundLocally(f"no {provider} listing {remote_lot_id} linked to a lot in the database "
                              "(see 'marketsync stock')")
    lot = adapter.read_lot(remote_lot_id)
    if lot is None:
        raise NotFoundLocally(f"{provider} lot {remote_lot_id} is not listed any more")
    listing = stored.as_listing(row)
    own = stored.own_orders(db, account, provider).get(remote_lot_id, rules.NO_ORDERS)
    with db.atomic():
        if decision == "adopt" and listing.listed is not None:
            change = lot.quantity - rules.nearest_expected(listing, own, lot.quantity)
            stored.adjust_on_hand(db, account, row["inventory_id"], change, "adopt",
                                  f"{provider} lot {remote_lot_id} lists {lot.quantity}: the seller's figure adopted")
            message = f"{provider} lot {remote_lot_id}: on hand of lot {row['inventory_id']} changed by {change:+d}"
        else:
            message = f"{provider} lot {remote_lot_id}: the next push sets it to what is available"
        stored.observe(db, [(listing.id, lot.quantity, own)])
        stored.release_hold(db, listing.id)
        state.add_api_calls(db, account, calls.take_unsaved())
    return message
