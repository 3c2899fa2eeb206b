"""A change given up on may land late (marketsync.rules.listings: ``given_up``, ``Maybe.late``): it explains
a figure it moves by exactly its change for a bounded number of reads and time, then becomes final."""

from __future__ import annotations

import datetime as dt

from hypothesis import assume, given
from hypothesis import strategies as st

from marketsync.model import ChangeState
from marketsync.rules.listings import (
    LATE_READS,
    LATE_WINDOW,
    Kind,
    Listing,
    Maybe,
    OwnOrders,
    explain,
    figures_now,
    given_up,
    judge,
    open_only,
)

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def listing(listed: int = 17) -> Listing:
    return Listing(1, "bricklink", "501", 7, listed, 0, 0)


def late(delta: int = -3, unseen: int = 1, ago: dt.timedelta = dt.timedelta(minutes=5), id: int = 11) -> Maybe:
    return Maybe(id, delta, late=True, unseen=unseen, sent_at=NOW - ago)


def test_a_given_up_change_that_lands_late_explains_the_figure_it_moves_by_exactly_its_change():
    # 20 listed; -3 given up (read as 20), sent again and applied: 17 confirmed; then the first -3 lands: 14
    found = explain(listing(17), OwnOrders(), 14, [late(-3)])
    assert found is not None and found.applied == (11,)
    assert judge(listing(17), OwnOrders(), 14, [late(-3)], suspect=False).kind is Kind.OBSERVE
    assert explain(listing(17), OwnOrders(), 14) is None  # without it: somebody else's edit (the defect)
    assert explain(listing(17), OwnOrders(), 15, [late(-3)]) is None  # only exactly its change


def test_a_given_up_change_combines_with_orders_and_open_changes():
    sold = OwnOrders(taken=2, placed=2)
    found = explain(listing(17), sold, 17 - 3 - 2 - 1, [late(-3), Maybe(12, -1)])
    assert found is not None and set(found.applied) == {11, 12}


def test_landing_late_is_the_last_explanation_taken():
    # 17 fits "the open -3 applied" and "the given-up -3 landed late": the open one is the likelier
    found = explain(listing(20), OwnOrders(), 17, [late(-3, id=11), Maybe(12, -3)])
    assert found is not None and found.applied == (12,)
    not_landed = explain(listing(17), OwnOrders(), 17, [late(-3)])
    assert not_landed is not None and not_landed.applied == ()


def test_a_given_up_change_is_not_expected_without_a_read():
    assert figures_now(listing(17), OwnOrders(), [late(-3)]) == [17]
    assert figures_now(listing(17), OwnOrders(), [Maybe(12, -3)]) == [14, 17]
    assert open_only([late(-3), Maybe(12, -1)]) == [Maybe(12, -1)]


def test_a_read_that_shows_a_change_applies_it_late_or_not():
    assert given_up(Maybe(12, -3), True, NOW) is ChangeState.APPLIED
    assert given_up(late(unseen=LATE_READS + 5, ago=LATE_WINDOW * 10), True, NOW) is ChangeState.APPLIED


def test_a_change_not_shown_is_maybe_late_until_enough_reads_and_time_then_final():
    first = Maybe(12, -3, sent_at=NOW - LATE_WINDOW * 10)  # open, read as not applied for the first time
    assert given_up(first, False, NOW) is ChangeState.MAYBE_LATE
    enough_reads = late(unseen=LATE_READS - 1)  # this read is the LATE_READS-th: but sent a moment ago
    assert given_up(enough_reads, False, NOW) is ChangeState.MAYBE_LATE
    long_ago = late(unseen=0, ago=LATE_WINDOW * 100)  # a laptop asleep: the time passed, the reads did not
    assert given_up(long_ago, False, NOW) is ChangeState.MAYBE_LATE
    assert given_up(late(unseen=LATE_READS - 1, ago=LATE_WINDOW), False, NOW) is ChangeState.NOT_APPLIED


@given(listed=st.integers(0, 40), delta=st.integers(-10, 10).filter(bool), sold=st.integers(0, 10),
       seller=st.integers(-5, 5))
def test_a_late_landing_is_explained_and_never_preferred(listed, delta, sold, seller):
    assume(sold <= listed + max(0, delta))  # buyers never take more than the listing ever showed
    own = OwnOrders(taken=sold, placed=sold)
    maybe = [late(delta)]
    landed = max(0, listed + delta - sold)
    found = explain(listing(listed), own, landed, maybe)
    assert found is not None  # a late landing is never held
    remote = max(0, listed - sold + seller)
    if explain(listing(listed), own, remote) is not None:  # whatever orders alone explain takes no late landing
        assert explain(listing(listed), own, remote, maybe).applied == ()
