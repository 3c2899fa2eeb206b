"""Relisting a lot sold out and deleted, the pure rules: why a listing went
(marketsync.rules.listings.gone_kind), which listing a lot is created again from and in which terms
(marketsync.rules.mirror.relist_source, relisted), and mirroring leaving a marketplace alone where a
lot's listing went."""

from __future__ import annotations

from decimal import Decimal

from marketsync.model import Gone, RemoteLot
from marketsync.rules import mirror as rules
from marketsync.rules.listings import Listing, Maybe, OwnOrders, gone_kind
from marketsync.rules.mirror import Listed, LocalLot, Plan, ReadAs

READ = ReadAs("3001", "PART", 11, "new", None, Decimal("0.2500"), "Tan &amp;amp; clean", "A1")


def listing(listed: int | None = 5, taken: int = 0, placed: int = 0, **kw) -> Listing:
    return Listing(1, "bricklink", "501", 1, listed, taken, placed, **kw)


def lot(available: int = 4, item_type: str | None = "PART") -> LocalLot:
    return LocalLot(1, "3001", 11, "new", "A1", item_type, available)


def row(id: int = 1, provider: str = "bricklink", gone: bool = True, kind: str | None = Gone.SOLD_OUT,
        read: ReadAs | None = READ, remote: str | None = None) -> Listed:
    return Listed(id, provider, remote or str(500 + id), 1, gone=gone, gone_kind=kind if gone else None, read_as=read)


# --- why a listing went ----------------------------------------------------------------------------------
def test_a_lot_its_own_orders_took_to_zero_on_a_marketplace_that_deletes_it_sold_out():
    assert gone_kind(listing(5), OwnOrders(taken=5, placed=5), deletes_empty_lots=True) == Gone.SOLD_OUT
    # an order that took it out and was then cancelled without a restock explains the 0 too
    assert gone_kind(listing(5), OwnOrders(taken=0, placed=5), deletes_empty_lots=True) == Gone.SOLD_OUT
    # as does a change of marketsync's whose outcome is open, applied
    assert gone_kind(listing(5), OwnOrders(taken=3, placed=3), [Maybe(7, -2)], deletes_empty_lots=True) == Gone.SOLD_OUT


def test_a_lot_gone_while_it_still_had_pieces_was_removed():
    assert gone_kind(listing(5), OwnOrders(taken=2, placed=2), deletes_empty_lots=True) == Gone.REMOVED


def test_a_retained_lot_never_sells_out_into_deletion():
    for kept in ({"retained": True}, {"retain_set": True}):  # by the seller as read, or by marketsync
        assert gone_kind(listing(5, **kept), OwnOrders(taken=5, placed=5), deletes_empty_lots=True) == Gone.REMOVED


def test_a_marketplace_that_keeps_lots_at_zero_and_a_lot_never_observed_are_removed():
    assert gone_kind(listing(5), OwnOrders(taken=5, placed=5), deletes_empty_lots=False) == Gone.REMOVED
    assert gone_kind(listing(None), OwnOrders(taken=5, placed=5), deletes_empty_lots=True) == Gone.REMOVED


# --- which listing a lot is created again from -----------------------------------------------------------
def test_a_lot_whose_listings_all_sold_out_is_relisted_from_the_one_linked_first():
    assert rules.relist_source([row(2), row(1)], "bricklink", 1) == row(1)


def test_one_listing_still_for_sale_or_one_removed_keeps_the_lot_as_it_is():
    assert rules.relist_source([row(1), row(2, gone=False)], "bricklink", 1) is None
    assert rules.relist_source([row(1), row(2, kind=Gone.REMOVED)], "bricklink", 1) is None
    assert rules.relist_source([row(1, kind=None)], "bricklink", 1) is None  # gone before marketsync kept why


def test_a_listing_replaced_since_counts_for_nothing():
    assert rules.relist_source([row(1, kind=Gone.REPLACED), row(2)], "bricklink", 1) == row(2)
    assert rules.relist_source([row(1, kind=Gone.REMOVED), row(2, kind=Gone.REPLACED)], "bricklink", 1) is None
    assert rules.relist_source([row(1, kind=Gone.REPLACED)], "bricklink", 1) is None


def test_only_that_marketplace_and_that_lot_count_and_a_listing_never_read_gives_no_terms():
    assert rules.relist_source([row(1, provider="brickowl")], "bricklink", 1) is None
    assert rules.relist_source([row(1)], "bricklink", 2) is None
    assert rules.relist_source([row(1, read=None)], "bricklink", 1) is None


def test_a_relisted_lot_bought_out_before_it_was_read_is_relisted_in_the_terms_it_was_created_with():
    # found by the simulation: 501 sold out and was relisted as 502, which sold out before any run read it
    assert rules.relist_source([row(1, kind=Gone.REPLACED), row(2, read=None)], "bricklink", 1) == row(1, kind=Gone.REPLACED)


# --- in which terms -------------------------------------------------------------------------------------
def test_it_is_created_exactly_as_it_was_read_with_what_is_available():
    new = rules.relisted(lot(4), READ)
    assert not isinstance(new, str)
    assert (new.item_no, new.item_type, new.color_id, new.condition, new.quantity, new.price, new.note,
            new.description, new.completeness) == ("3001", "PART", 11, "N", 4, Decimal("0.2500"), "A1",
                                                   "Tan &amp;amp; clean", None)
    used_set = ReadAs("6020-1", "SET", 0, "used", "B", Decimal("12"), "", "S3")
    made = rules.relisted(lot(1), used_set)
    assert not isinstance(made, str) and (made.condition, made.completeness, made.color_id) == ("U", "B", 0)


def test_never_a_guessed_price_item_or_condition_nor_an_empty_lot():
    assert isinstance(rules.relisted(lot(0), READ), str)
    for broken in (ReadAs("3001", "PART", 11, "new", None, None, "", "A1"),
                   ReadAs("3001", "PART", 11, "new", None, Decimal("0"), "", "A1"),
                   ReadAs(None, "PART", 11, "new", None, Decimal("1"), "", "A1"),
                   ReadAs("3001", "PART", 11, None, None, Decimal("1"), "", "A1")):
        assert isinstance(rules.relisted(lot(3), broken), str), broken


def test_what_is_read_of_a_lot_is_what_a_relist_copies():
    read = rules.read_as(RemoteLot("bricklink", "501", 3, part_number="3001", color_id=11, condition="new",
                                   location="A1", item_type="PART", price=Decimal("0.25"), description="x &amp; y",
                                   retained=True))
    assert read == ReadAs("3001", "PART", 11, "new", None, Decimal("0.25"), "x &amp; y", "A1", True)


# --- mirroring leaves a marketplace alone where a lot's listing went ------------------------------------
def test_mirroring_never_creates_a_lot_where_its_listing_went_unless_replaced():
    lots = {1: lot(5)}
    brickowl = Listed(10, "brickowl", "9001", 1)
    for kind in (Gone.SOLD_OUT, Gone.REMOVED, None):  # relisted in its own terms, or left deleted
        assert rules.candidates(lots, [brickowl, row(1, kind=kind)], ["bricklink"], set(), Plan()) == []
    [candidate] = rules.candidates(lots, [brickowl, row(1, kind=Gone.REPLACED)], ["bricklink"], set(), Plan())
    assert (candidate.source, candidate.target) == ("brickowl", "bricklink")
