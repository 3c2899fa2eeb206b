"""ledger.plan: what each line of one order should hold, as deltas. Pure: no SQL, no HTTP."""

from __future__ import annotations

import copy

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from marketsync.rules.ledger import Booking, Delta, Holding, LineTarget, Short, move_index, plan
from marketsync.rules.matching import Lot, LotIndex
from marketsync.model import STATUSES, is_open, is_shipped, PRE_SHIPMENT_STATUSES


def T(key: str, lot: int | None, quantity: int) -> LineTarget:  # noqa: N802 - reads like a row
    return LineTarget(key, lot, quantity)


def apply(state: dict[str, Holding], deltas: list[Delta]) -> dict[str, Holding]:
    """The holdings store.ledger.holdings() reads back once the deltas are recorded: a line with any
    ledger row has a Holding; lots whose rows sum to zero are left out of ``held`` and ``consumed_on``."""
    state = copy.deepcopy(state)
    for d in deltas:
        holding = state.setdefault(d.line_key, Holding({}, 0))
        holding.held[d.inventory_id] = holding.held.get(d.inventory_id, 0) + d.quantity
        if not holding.held[d.inventory_id]:
            del holding.held[d.inventory_id]
        holding.consumed_on[d.inventory_id] = holding.consumed_on.get(d.inventory_id, 0) + d.consumed
        if not holding.consumed_on[d.inventory_id]:
            del holding.consumed_on[d.inventory_id]
        holding.consumed += d.consumed
    return state


# --- a new order ---------------------------------------------------------------------------------
def test_a_new_open_order_reserves_each_matched_line_once():
    deltas = plan("paid", False, [T("a", 1, 3), T("b", 2, 1)], {})
    assert deltas == [Delta(1, "a", 3, 0, "reserve"), Delta(2, "b", 1, 0, "reserve")]


def test_an_unmatched_line_reserves_nothing():
    assert plan("pending", False, [T("a", None, 3), T("b", 2, 4)], {}) == [Delta(2, "b", 4, 0, "reserve")]


def test_an_open_order_already_holding_its_pieces_plans_nothing():
    assert plan("paid", False, [T("a", 1, 3)], {"a": Holding({1: 3}, 0)}) == []


def test_a_new_order_seen_cancelled_or_released_reserves_nothing():
    assert plan("cancelled", False, [T("a", 1, 3)], {}) == []
    assert plan("paid", True, [T("a", 1, 3)], {}) == []


# --- releases ------------------------------------------------------------------------------------
def test_cancelled_releases_with_reason_cancelled():
    state = {"a": Holding({1: 3}, 0), "b": Holding({2: 1}, 0)}
    assert plan("cancelled", False, [T("a", 1, 3), T("b", 2, 1)], state) == [
        Delta(1, "a", -3, 0, "cancelled"), Delta(2, "b", -1, 0, "cancelled")]


def test_manual_release_releases_with_reason_manual_release():
    assert plan("paid", True, [T("a", 1, 3)], {"a": Holding({1: 3}, 0)}) == [Delta(1, "a", -3, 0, "manual-release")]
    assert plan("cancelled", True, [T("a", 1, 3)], {"a": Holding({1: 3}, 0)}) == [
        Delta(1, "a", -3, 0, "manual-release")]
    assert plan("paid", True, [T("a", 1, 3)], {"a": Holding({}, 0)}) == []  # released before: stays released


def test_a_hand_released_order_that_ships_anyway_consumes_its_pieces_once():
    """Current behaviour (a working-tree change of ledger.plan at the time of writing; before it, the
    release won and nothing was consumed): pieces that ship leave the building, released or not."""
    held = {"a": Holding({1: 3}, 0)}
    assert plan("shipped", True, [T("a", 1, 3)], held) == [Delta(1, "a", -3, 3, "shipped")]
    released = {"a": Holding({}, 0)}  # reserved, then released by hand: followed, nothing held
    deltas = plan("shipped", True, [T("a", 1, 3)], released)
    assert deltas == [Delta(1, "a", 0, 3, "shipped")]
    assert plan("completed", True, [T("a", 1, 3)], apply(released, deltas)) == []


def test_a_removed_line_releases_with_reason_line_removed():
    state = {"a": Holding({1: 3}, 0), "b": Holding({2: 2}, 0)}
    assert plan("paid", False, [T("a", 1, 3)], state) == [Delta(2, "b", -2, 0, "line-removed")]


def test_a_line_that_lost_its_lot_releases_with_reason_unmatched():
    assert plan("paid", False, [T("a", None, 3)], {"a": Holding({1: 3}, 0)}) == [Delta(1, "a", -3, 0, "unmatched")]


# --- changes of an open line ---------------------------------------------------------------------
def test_a_rematch_moves_the_reservation_to_the_new_lot():
    deltas = plan("paid", False, [T("a", 2, 3)], {"a": Holding({1: 3}, 0)})
    assert deltas == [Delta(1, "a", -3, 0, "rematched"), Delta(2, "a", 3, 0, "reserve")]
    assert sum(d.quantity for d in deltas) == 0


def test_a_rematch_to_a_lower_lot_id_is_the_same_move():
    assert plan("paid", False, [T("a", 1, 2)], {"a": Holding({5: 2}, 0)}) == [
        Delta(1, "a", 2, 0, "reserve"), Delta(5, "a", -2, 0, "rematched")]


def test_a_quantity_change_adjusts_the_reservation():
    assert plan("paid", False, [T("a", 1, 5)], {"a": Holding({1: 3}, 0)}) == [Delta(1, "a", 2, 0, "reserve")]
    assert plan("paid", False, [T("a", 1, 1)], {"a": Holding({1: 3}, 0)}) == [Delta(1, "a", -2, 0, "adjusted")]


def test_a_quantity_of_zero_releases_the_line():
    assert plan("paid", False, [T("a", 1, 0)], {"a": Holding({1: 3}, 0)}) == [Delta(1, "a", -3, 0, "unmatched")]


# --- shipping ------------------------------------------------------------------------------------
def test_a_followed_order_that_ships_consumes_its_pieces_once():
    state = {"a": Holding({1: 3}, 0), "b": Holding({2: 2}, 0)}
    targets = [T("a", 1, 3), T("b", 2, 2)]
    deltas = plan("shipped", False, targets, state)
    assert deltas == [Delta(1, "a", -3, 3, "shipped"), Delta(2, "b", -2, 2, "shipped")]
    after = apply(state, deltas)
    assert after == {"a": Holding({}, 3, {1: 3}), "b": Holding({}, 2, {2: 2})}  # consumed == quantity, nothing held
    assert plan("shipped", False, targets, after) == []  # shipping again plans nothing
    assert plan("completed", False, targets, after) == []  # ... nor does completing it


def test_shipping_releases_more_than_it_consumes_when_the_line_shrank():
    assert plan("shipped", False, [T("a", 1, 2)], {"a": Holding({1: 5}, 0)}) == [Delta(1, "a", -5, 2, "shipped")]


def test_an_order_first_seen_shipped_consumes_nothing():
    assert plan("shipped", False, [T("a", 1, 3)], {}) == []
    assert plan("completed", False, [T("a", 1, 3), T("b", None, 1)], {}) == []


def test_a_batch_added_and_shipped_between_runs_consumes_from_the_matched_lot():
    # line "a" was followed (reserved on lot 1); line "b" was added and the order shipped before a run saw it
    state = {"a": Holding({1: 3}, 0)}
    deltas = plan("shipped", False, [T("a", 1, 3), T("b", 2, 4)], state)
    assert deltas == [Delta(1, "a", -3, 3, "shipped"), Delta(2, "b", 0, 4, "shipped")]
    assert plan("shipped", False, [T("a", 1, 3), T("b", 2, 4)], apply(state, deltas)) == []


def test_a_grown_line_ships_its_reserved_pieces_then_the_rest_from_the_matched_lot():
    deltas = plan("shipped", False, [T("a", 2, 5)], {"a": Holding({1: 3}, 0)})
    assert deltas == [Delta(1, "a", -3, 3, "shipped"), Delta(2, "a", 0, 2, "shipped")]


def test_a_shipped_line_removed_later_releases_without_consuming():
    state = {"a": Holding({1: 3}, 0), "b": Holding({2: 1}, 0)}
    assert plan("shipped", False, [T("a", 1, 3)], state) == [
        Delta(1, "a", -3, 3, "shipped"), Delta(2, "b", -1, 0, "line-removed")]


def test_a_shipment_taken_back_returns_its_pieces_to_their_lots_and_reserves_them_again():
    """Current behaviour (since "a shipment taken back returns its pieces and reserves them again";
    until then shipped pieces were never re-reserved): back to open, the consumed pieces go back on
    hand on the lots they left, and the line is reserved again as a new one would be."""
    shipped = {"a": Holding({}, 3, {1: 3})}
    deltas = plan("paid", False, [T("a", 1, 3)], shipped)
    assert deltas == [Delta(1, "a", 0, -3, "unshipped"), Delta(1, "a", 3, 0, "reserve")]
    after = apply(shipped, deltas)
    assert after == {"a": Holding({1: 3}, 0)}
    assert plan("paid", False, [T("a", 1, 3)], after) == []
    # shipped again, the pieces are consumed again: once per shipment
    assert plan("shipped", False, [T("a", 1, 3)], after) == [Delta(1, "a", -3, 3, "shipped")]


def test_a_shipment_taken_back_returns_to_the_lots_it_left_whatever_the_line_matches_now():
    shipped = {"a": Holding({}, 5, {1: 3, 2: 2})}
    assert plan("packed", False, [T("a", 3, 4)], shipped) == [
        Delta(1, "a", 0, -3, "unshipped"), Delta(2, "a", 0, -2, "unshipped"), Delta(3, "a", 4, 0, "reserve")]
    # unmatched now: the pieces still return, nothing is reserved
    assert plan("paid", False, [T("a", None, 4)], shipped) == [
        Delta(1, "a", 0, -3, "unshipped"), Delta(2, "a", 0, -2, "unshipped")]


def test_a_removed_or_released_shipped_line_gets_nothing_back():
    shipped = {"a": Holding({}, 3, {1: 3}), "b": Holding({}, 1, {2: 1})}
    assert plan("paid", False, [T("a", 1, 3)], shipped) == [
        Delta(1, "a", 0, -3, "unshipped"), Delta(1, "a", 3, 0, "reserve")]  # "b" is gone: stays shipped
    assert plan("paid", True, [T("a", 1, 3), T("b", 2, 1)], shipped) == []


def test_an_order_cancelled_after_shipping_gets_nothing_back():
    assert plan("cancelled", False, [T("a", 1, 3)], {"a": Holding({}, 3, {1: 3})}) == []


# --- idempotency and invariants over random histories ----------------------------------------------
LOTS = st.one_of(st.none(), st.integers(1, 3))
KEYS = ("a", "b", "c", "d")


@st.composite
def runs(draw):
    """One run's view of an order: a status, a manual release flag and a set of lines."""
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=len(KEYS)))
    targets = [T(k, draw(LOTS), draw(st.integers(0, 6))) for k in keys]
    return draw(st.sampled_from(STATUSES)), draw(st.booleans()), targets


@settings(max_examples=100, deadline=None)
@given(history=st.lists(runs(), min_size=1, max_size=6))
def test_planning_again_from_what_the_deltas_leave_plans_nothing(history):
    state: dict[str, Holding] = {}
    for status, manual_release, targets in history:
        deltas = plan(status, manual_release, targets, state)
        assert all(d.quantity or d.consumed for d in deltas)  # no empty ledger rows
        assert all(d.consumed >= 0 or d.reason == "unshipped" for d in deltas)
        state = apply(state, deltas)
        assert plan(status, manual_release, targets, state) == []

        # what the order holds afterwards is what its status asks for
        for key, holding in state.items():
            assert all(held > 0 for held in holding.held.values())
            target = next((t for t in targets if t.line_key == key), None)
            wanted = 0
            if target is not None and target.inventory_id is not None and is_open(status, manual_release):
                wanted = max(0, target.quantity - holding.consumed)
            if is_shipped(status, manual_release) and target is not None:
                wanted = 0
            assert sum(holding.held.values()) == wanted, (key, holding, target, status)
            if target is not None and is_open(status, manual_release) and status in PRE_SHIPMENT_STATUSES:
                assert holding.consumed == 0  # a shipment taken back returned every piece
            assert holding.consumed == sum(holding.consumed_on.values()) >= 0
            assert set(holding.held) <= ({target.inventory_id} if target is not None else set())


@settings(max_examples=60, deadline=None)
@given(open_run=runs(), quantities=st.lists(st.integers(0, 6), min_size=4, max_size=4))
def test_a_followed_order_consumes_each_line_quantity_once(open_run, quantities):
    _, _, targets = open_run
    state = apply({}, plan("paid", False, targets, {}))
    assume(state)  # something reserved: the order was followed
    shipped_targets = [T(t.line_key, t.inventory_id, q) for t, q in zip(targets, quantities)]
    state = apply(state, plan("shipped", False, shipped_targets, state))
    for target in shipped_targets:
        holding = state.get(target.line_key, Holding({}, 0))
        assert holding.held == {}
        expected = target.quantity if target.inventory_id is not None else 0
        assert holding.consumed == expected
    assert plan("shipped", False, shipped_targets, state) == []


def test_a_dispute_after_a_shipment_takes_nothing_back():
    shipped = {"a": Holding({}, 3, {1: 3}, {1: 3})}
    assert plan("disputed", False, [LineTarget("a", 1, 3)], shipped) == []
    assert plan("unknown", False, [LineTarget("a", 1, 3)], shipped) == []
    back = plan("packed", False, [LineTarget("a", 1, 3)], shipped)
    assert [(d.reason, d.quantity, d.consumed, d.taken) for d in back] == [("unshipped", 0, -3, -3), ("reserve", 3, 0, 0)]


def test_a_shipment_taken_back_returns_only_what_it_took():
    """Shipped from an oversold lot, 3 pieces were consumed but only 1 left on hand: taking the
    shipment back returns 1, never creating stock."""
    shipped = {"a": Holding({}, 3, {1: 3}, {1: 1})}
    back = plan("paid", False, [LineTarget("a", 1, 3)], shipped)
    assert back[0].reason == "unshipped" and (back[0].consumed, back[0].taken) == (-3, -1)


def test_an_order_followed_while_open_consumes_when_it_ships_even_if_nothing_was_matched_then():
    targets = [LineTarget("a", 1, 2)]
    assert plan("shipped", False, targets, {}) == []  # first seen shipped: history
    deltas = plan("shipped", False, targets, {}, was_open=True)
    assert [(d.reason, d.consumed) for d in deltas] == [("shipped", 2)]


# --- a shipment taken back next to an oversold one (defect H of issue #20) -----------------------------
def one_lot(on_hand: int, reserved: int = 0) -> LotIndex:
    return LotIndex(lambda: [Lot(1, "3001", 11, "new", "A1", on_hand, reserved, None)])


def book(index: LotIndex, shorts: dict, ref: int, status: str, quantity: int, holding: Holding | None) -> list:
    """Plan one order of one line on lot 1 and move the index: (its deltas, the made-up bookings)."""
    deltas = plan(status, False, [LineTarget("a", 1, quantity)], {"a": holding} if holding else {}, was_open=True)
    booking = Booking(ref, "bricklink", f"O{ref}", deltas)
    return [deltas, move_index(index, booking, shorts)]


def shipped(pieces: int, taken: int) -> Holding:
    return Holding({}, pieces, {1: pieces}, {1: taken})


def test_a_shipment_taken_back_makes_up_the_one_that_left_an_empty_lot_first():
    """The bin held 3 and O1 took them. In one run O2 (3, oversold) shipped and O1 was taken back:
    O2 can only have left with O1's returned pieces, so the bin is empty whichever is booked first."""
    index, shorts = one_lot(0, reserved=3), {}
    deltas, extra = book(index, shorts, 2, "shipped", 3, Holding({1: 3}, 0))
    assert [(d.consumed, d.taken) for d in deltas] == [(3, 0)] and extra == []
    assert shorts[1] == [Short(2, "bricklink", "O2", "a", 3)]
    deltas, extra = book(index, shorts, 1, "paid", 3, shipped(3, 3))
    assert [(d.reason, d.consumed, d.taken) for d in deltas] == [("unshipped", -3, -3), ("reserve", 0, 0)]
    assert [(b.order_ref, [(d.inventory_id, d.line_key, d.quantity, d.consumed, d.reason, d.taken) for d in b.deltas])
            for b in extra] == [(2, [(1, "a", 0, 0, "made-up", 3)])]
    assert (index.by_id[1].quantity, index.by_id[1].reserved) == (0, 3) and shorts[1] == []


def test_booked_the_other_way_round_the_take_back_leaves_nothing_to_make_up():
    index, shorts = one_lot(0, reserved=3), {}
    assert book(index, shorts, 1, "paid", 3, shipped(3, 3))[1] == []
    deltas, extra = book(index, shorts, 2, "shipped", 3, Holding({1: 3}, 0))
    assert [(d.consumed, d.taken) for d in deltas] == [(3, 3)] and extra == [] and not any(shorts.values())
    assert (index.by_id[1].quantity, index.by_id[1].reserved) == (0, 3)


def test_what_a_take_back_returns_beyond_the_shortfalls_goes_back_on_hand():
    index, shorts = one_lot(1), {}
    book(index, shorts, 2, "shipped", 3, Holding({1: 3}, 0))  # took 1, 2 short
    _, extra = book(index, shorts, 1, "paid", 5, shipped(5, 5))
    assert [d.taken for b in extra for d in b.deltas] == [2]
    assert index.by_id[1].quantity == 3  # 1 - 3 + 5


def test_a_shipment_taken_back_makes_up_no_shortfall_of_its_own():
    """It returns what it took; the pieces it lacked came from nowhere it can return them to."""
    index = one_lot(0)
    shorts = {1: [Short(1, "bricklink", "O1", "a", 2), Short(3, "brickowl", "O3", "a", 4)]}
    _, extra = book(index, shorts, 1, "paid", 3, shipped(3, 1))
    assert [(b.order_ref, b.deltas[0].taken) for b in extra] == [(3, 1)]
    assert index.by_id[1].quantity == 0 and shorts[1] == [Short(3, "brickowl", "O3", "a", 3)]


@settings(max_examples=200, deadline=None)
@given(on_hand=st.integers(0, 6), events=st.lists(st.tuples(st.booleans(), st.integers(1, 5)), max_size=6),
       order=st.randoms(use_true_random=False))
def test_a_runs_shipments_and_take_backs_leave_on_hand_the_same_in_any_order(on_hand, events, order):
    """Shipments (True) of orders held open and take-backs (False) of shipments that took all their
    pieces, booked in any order: on hand ends at max(0, on hand - shipped + returned), no line takes
    more than it shipped, and every ledger row together moves on hand by exactly that."""
    shuffled = list(enumerate(events))
    order.shuffle(shuffled)
    index, shorts = one_lot(on_hand), {}
    rows = []
    for ref, (ships, pieces) in shuffled:
        deltas, extra = book(index, shorts, ref, "shipped" if ships else "paid", pieces,
                             Holding({1: pieces}, 0) if ships else shipped(pieces, pieces))
        rows += [(ref, d) for d in deltas] + [(b.order_ref, d) for b in extra for d in b.deltas]
    moved = sum(pieces if ships else -pieces for ships, pieces in events)
    assert index.by_id[1].quantity == max(0, on_hand - moved)
    assert on_hand - sum(d.taken or 0 for _, d in rows) == index.by_id[1].quantity
    for ref, (ships, pieces) in enumerate(events):
        if ships:  # its own row and what others made up: never more than it shipped
            assert 0 <= sum(d.taken or 0 for r, d in rows if r == ref) <= pieces
