"""The listing model's pure rules (marketsync.rules.listings): what explains a figure, and what a push changes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from marketsync.rules.listings import (
    LEARNED,
    SETTING,
    UNKNOWN,
    Kind,
    Listing,
    LotListings,
    Maybe,
    OwnOrders,
    Restocking,
    confirmed,
    explain,
    explanations,
    figures_now,
    judge,
    nearest,
    plan,
    proves,
    restocking,
    sellers_parts,
    with_retain,
)


def listing(listed: int | None = 20, taken: int = 0, placed: int = 0, id: int = 1, **kw) -> Listing:
    return Listing(id, "bricklink", str(id), 7, listed, taken, placed, **kw)


def test_an_order_explains_its_pieces_with_either_restock_behaviour():
    sold = OwnOrders(taken=3, placed=3)
    assert explain(listing(), sold, 17) is not None
    cancelled_restocked = OwnOrders(taken=0, placed=3)  # taken falls back, placed stays
    assert explain(listing(listed=17, taken=3, placed=3), cancelled_restocked, 20) is not None
    assert explain(listing(listed=17, taken=3, placed=3), cancelled_restocked, 17) is not None
    assert explain(listing(), sold, 18) is None


def test_an_open_change_counts_as_maybe_and_the_explanation_says_which():
    open_change = [Maybe(11, -3)]
    applied = explain(listing(), OwnOrders(), 17, open_change)
    not_applied = explain(listing(), OwnOrders(), 20, open_change)
    assert applied is not None and applied.applied == (11,)
    assert not_applied is not None and not_applied.applied == ()
    assert explain(listing(), OwnOrders(), 18, open_change) is None


def test_open_changes_and_orders_combine():
    both = [Maybe(1, -3), Maybe(2, -2)]
    found = explain(listing(), OwnOrders(taken=4, placed=4), 20 - 3 - 4, both)
    assert found is not None and found.applied == (1,)


def test_a_figure_never_goes_below_zero():
    assert figures_now(listing(listed=2), OwnOrders(taken=5, placed=5)) == [0]


def test_orders_taking_more_than_was_listed_mean_the_seller_raised_it():
    # Buyers never take more than a listing shows: listed 7, buyers took 11, so it was raised by 4.
    own = OwnOrders(taken=11, placed=11)
    assert explain(listing(listed=7), own, 0) is None
    verdict = judge(listing(listed=7), own, 0, [], suspect=False)
    assert verdict.kind is Kind.UNEXPLAINED and "took 4 more" in (verdict.reason or "")
    assert nearest(listing(listed=7), own, 0) == -4  # the seller's part: 0 - (-4) = 4
    assert explain(listing(listed=7), OwnOrders(taken=7, placed=7), 0) is not None  # sold out exactly
    # ... but a decrease of marketsync's that raced a sale may meet the floor: 7 - 3, 5 sold -> 0
    found = explain(listing(listed=7), OwnOrders(taken=5, placed=5), 0, [Maybe(1, -3)])
    assert found is not None and found.applied == (1,)


def test_judge_kinds():
    assert judge(listing(), OwnOrders(), 20, [], suspect=True).kind is Kind.SKIP
    assert judge(listing(listed=None), OwnOrders(), 9, [], suspect=False).kind is Kind.OBSERVE
    assert judge(listing(), OwnOrders(), 23, [], suspect=False).kind is Kind.UNEXPLAINED
    sold_out = judge(listing(listed=3), OwnOrders(taken=3, placed=3), None, [], suspect=False)
    assert sold_out.kind is Kind.GONE and sold_out.reason == "sold out"
    deleted = judge(listing(listed=3), OwnOrders(), None, [], suspect=False)
    assert deleted.kind is Kind.GONE and deleted.reason != "sold out"


def test_nearest_takes_the_sellers_part_only():
    assert nearest(listing(), OwnOrders(taken=3, placed=3), 18) == 17  # the seller added 1
    assert nearest(listing(listed=None), OwnOrders(), 9) == 0  # never observed: all of it is the seller's


def test_an_increase_goes_to_the_first_listing_and_a_decrease_off_the_fullest():
    a, b = listing(id=1), listing(id=2)
    up = plan(LotListings(30, [(b, 5), (a, 20)]))
    assert [(p.listing.id, p.before, p.after) for p in up] == [(1, 20, 25)]
    down = plan(LotListings(10, [(a, 8), (b, 7)]))
    assert [(p.listing.id, p.after) for p in down] == [(1, 3)]
    all_gone = plan(LotListings(-4, [(a, 8), (b, 7)]))
    assert sorted((p.listing.id, p.after) for p in all_gone) == [(1, 0), (2, 0)]


def test_raising_waits_while_pieces_are_reserved_nowhere_but_lowering_never_does():
    a = listing()
    assert plan(LotListings(30, [(a, 20)], may_raise=False)) == []
    assert [p.after for p in plan(LotListings(10, [(a, 20)], may_raise=False))] == [10]


def test_retain_is_set_at_zero_and_put_back_with_stock():
    to_zero = plan(LotListings(0, [(listing(), 20)]))[0]
    assert with_retain(to_zero, retained_now=False, deletes_empty_lots=True).retain is True
    assert with_retain(plan(LotListings(0, [(listing(), 20)]))[0], retained_now=True,
                       deletes_empty_lots=True).retain is None  # the seller's own setting: left alone
    assert with_retain(plan(LotListings(0, [(listing(), 20)]))[0], retained_now=False,
                       deletes_empty_lots=False).retain is None
    back = plan(LotListings(5, [(listing(retain_set=True), 0)]))[0]
    assert with_retain(back, retained_now=True, deletes_empty_lots=True).retain is False


def test_a_read_back_confirms_only_the_exact_figure():
    assert confirmed(20, 17, 17)
    assert not confirmed(20, 17, 20) and not confirmed(20, 17, 15)
    assert confirmed(3, 0, None) and not confirmed(3, 1, None)


@given(available=st.integers(-30, 60), figures=st.lists(st.integers(0, 40), min_size=1, max_size=4))
def test_a_plan_always_lands_on_max_zero_available_and_never_below_zero(available, figures):
    shown = [(listing(id=n + 1), f) for n, f in enumerate(figures)]
    planned = {p.listing.id: p.after for p in plan(LotListings(available, shown))}
    after = [planned.get(l.id, f) for l, f in shown]
    assert sum(after) == max(0, available)
    assert all(a >= 0 for a in after)


# --- whether cancellations restock: known, learned, unknown (docs/stock-model.md, D and F) -----------------
def test_a_known_restock_behaviour_leaves_one_explanation_of_a_cancellation():
    # observed 5 with nothing sold; a buyer ordered 2, then cancelled (placed 2, taken 0)
    before, cancelled = listing(listed=5), OwnOrders(taken=0, placed=2)
    assert {e.figure for e in explanations(before, cancelled)} == {5, 3}  # unknown: both
    assert [e.figure for e in explanations(before, cancelled, restocks=True)] == [5]
    assert [e.figure for e in explanations(before, cancelled, restocks=False)] == [3]
    # D: the store did not restock (3) and the seller added 2 (5): only the known behaviour tells
    assert explain(before, cancelled, 5, restocks=False) is None
    assert nearest(before, cancelled, 5, restocks=False) == 3
    assert nearest(before, cancelled, 5) == 5  # unknown: the nearest explanation swallows the seller's 2


def test_a_read_proves_a_behaviour_only_when_nothing_else_is_uncertain():
    before, cancelled = listing(listed=5), OwnOrders(taken=0, placed=2)
    assert proves(before, cancelled, 3) is False and proves(before, cancelled, 5) is True
    assert proves(before, cancelled, 4) is None  # neither: somebody else's edit as well
    assert proves(before, cancelled, 3, [Maybe(1, -1)]) is None  # an open change of marketsync's
    assert proves(listing(listed=5, held=True), cancelled, 3) is None  # a figure nobody explained before
    assert proves(before, OwnOrders(taken=2, placed=2), 3) is None  # no cancellation: both agree
    # 1 if restocked, else 1 - 2 floored at 0: buyers took 2 of 1 -- it was raised meanwhile, so 0 proves nothing
    assert proves(listing(listed=1), OwnOrders(taken=0, placed=2), 0) is None
    assert proves(listing(listed=1), OwnOrders(taken=0, placed=2), 1) is True
    assert proves(listing(listed=1), OwnOrders(taken=2, placed=4), 0) is None  # both 0: nothing to learn
    assert proves(before, cancelled, None) is None
    # an order cancelled while it was open at the observation (observed 3 with 2 taken)
    assert proves(listing(listed=3, taken=2, placed=2), OwnOrders(taken=0, placed=2), 5) is True


def test_judge_learns_only_while_unknown_and_flags_a_contradiction():
    before, cancelled = listing(listed=5), OwnOrders(taken=0, placed=2)
    assert judge(before, cancelled, 3, [], suspect=False).learned is False
    assert judge(before, cancelled, 3, [], suspect=False, restocks=False).learned is None  # known already
    contradicted = judge(before, cancelled, 5, [], suspect=False, restocks=False)
    assert contradicted.kind is Kind.UNEXPLAINED and contradicted.contradicts
    edited = judge(before, cancelled, 6, [], suspect=False, restocks=False)
    assert edited.kind is Kind.UNEXPLAINED and not edited.contradicts


def test_the_sellers_part_is_asked_for_only_while_the_behaviour_matters_and_is_unknown():
    before, cancelled = listing(listed=5), OwnOrders(taken=0, placed=2)
    assert sellers_parts(before, cancelled, 7, None) == (2, 4)
    assert sellers_parts(before, cancelled, 7, False) is None
    assert sellers_parts(before, OwnOrders(taken=2, placed=2), 7, None) is None
    assert sellers_parts(listing(listed=None), cancelled, 7, None) is None


def test_the_setting_wins_over_what_was_learned():
    learned = Restocking(False, LEARNED, "77", "9001")
    assert restocking(True, learned) == Restocking(True, SETTING)
    assert restocking(None, learned) == learned
    assert restocking(None, None) == UNKNOWN and UNKNOWN.restocks is None
