"""matching.LotIndex: which lot a line lands on, and why one does not. Pure: lots come from a loader."""

from __future__ import annotations

from marketsync.rules.ledger import Booking, Delta, move_index
from marketsync.rules.matching import Lot, LotIndex
from marketsync.model import OrderLine, Unmatched

# id, part, colour, condition, location, quantity, reserved, BrickLink lot
ROWS = [
    (1, "3001", 5, "new", "A1", 10, 0, None),
    (2, "3001", 5, "new", "A2", 10, 0, None),  # same key as lot 1, younger
    (3, "3001", 5, "new", "A3", 4, 0, None),
    (4, "3001", 5, "used", "U1", 20, 0, None),
    (5, "3069b", 11, "new", "B1", 2, 0, "55984791"),
    (6, "3069b", 11, "new", "B2", 50, 0, None),
    (7, "2412b", 0, "new", "C1", 1, 0, "777"),
]


def index(rows=ROWS) -> LotIndex:
    return LotIndex(lambda: [Lot(*row) for row in rows])  # fresh objects per load, as the database gives


def line(part="3001", colour=5, condition="new", location=None, link=None, **extra) -> OrderLine:
    return OrderLine("bricklink", "1", "k", 1, part_number=part, color_id=colour, condition=condition,
                     location=location, bricklink_lot_id=link, **extra)


def test_the_location_names_the_lot():
    m = index().match(line(location="A3"))
    assert (m.inventory_id, m.method, m.location, m.kind) == (3, "location", "A3", None)


def test_the_location_wins_over_the_lot_link_and_the_previous_lot():
    m = index().match(line(part="3069b", colour=11, location="B2", link="55984791"), previous_lot=5)
    assert (m.inventory_id, m.method) == (6, "location")


def test_a_location_of_another_part_is_ignored():
    m = index().match(line(location="U1"))  # U1 holds 3001 *used*; the line is new
    assert (m.inventory_id, m.method) == (1, "best-stock")


def test_the_lot_link_wins_over_best_stock():
    m = index().match(line(part="3069b", colour=11, link="55984791"))
    assert (m.inventory_id, m.method, m.location) == (5, "lot-link", "B1")  # B2 has far more stock


def test_the_lot_link_alone_matches_a_line_without_part_colour_or_condition():
    m = index().match(line(part=None, colour=None, condition=None, link="777"))
    assert (m.inventory_id, m.method) == (7, "lot-link")


def test_a_lot_link_to_another_part_is_not_followed():
    m = index().match(line(part="3069b", colour=11, link="777"))
    assert (m.inventory_id, m.method) == (6, "best-stock")


def test_an_unknown_lot_link_falls_back_to_best_stock():
    m = index().match(line(part="3069b", colour=11, link="nope"))
    assert (m.inventory_id, m.method) == (6, "best-stock")


def test_best_stock_picks_the_most_available_lot():
    lots = index()
    lots.by_id[1].reserved = 7  # lot 1: 3 available, lot 2: 10, lot 3: 4
    m = lots.match(line())
    assert (m.inventory_id, m.method, m.location) == (2, "best-stock", "A2")


def test_best_stock_ties_go_to_the_older_lot():
    assert index().match(line()).inventory_id == 1  # lots 1 and 2 both have 10 available
    reversed_rows = list(reversed(ROWS))  # load order does not decide: the lower id does
    assert index(reversed_rows).match(line()).inventory_id == 1


def test_the_previous_lot_is_kept_while_it_qualifies():
    lots = index()
    assert lots.match(line(), previous_lot=3).inventory_id == 3  # 4 available, others 10
    lots.by_id[3].reserved = 50  # even oversold it still qualifies: reservations do not hop
    m = lots.match(line(), previous_lot=3)
    assert (m.inventory_id, m.method) == (3, "best-stock")


def test_a_previous_lot_that_no_longer_qualifies_is_left():
    assert index().match(line(), previous_lot=4).inventory_id == 1  # lot 4 is used, the line new
    assert index().match(line(), previous_lot=99).inventory_id == 1  # lot 99 is gone
    assert index(ROWS[1:]).match(line(), previous_lot=1).inventory_id == 2


def test_no_part_number_is_unmatched_no_part():
    m = index().match(line(part=None))
    assert (m.inventory_id, m.method, m.kind, m.reason) == (None, None, Unmatched.NO_PART, "no BrickLink part number")


def test_the_line_s_own_unmatched_kind_and_reason_are_kept():
    m = index().match(line(part=None, colour=None, unmatched_kind=Unmatched.COLOUR_UNKNOWN,
                           unmatched_reason="BrickOwl colour 999 is not in the colour table yet"))
    assert (m.inventory_id, m.kind, m.reason) == (
        None, Unmatched.COLOUR_UNKNOWN, "BrickOwl colour 999 is not in the colour table yet")


def test_no_condition_or_colour_is_unmatched_condition_unknown():
    for missing in ({"condition": None}, {"colour": None}):
        m = index().match(line(**missing))
        assert (m.inventory_id, m.kind, m.reason) == (
            None, Unmatched.CONDITION_UNKNOWN, "no BrickLink colour or condition")


def test_no_such_lot_is_unmatched_no_lot():
    m = index().match(line(part="3001", colour=11))
    assert (m.inventory_id, m.method, m.kind) == (None, None, Unmatched.NO_LOT)
    assert m.reason == "no inventory lot for 3001 colour 11 new"


def test_has_answers_by_part_or_by_part_colour_and_condition():
    lots = index()
    assert lots.has("3001") and not lots.has("3002")
    assert lots.has("3001", 5, "used") and not lots.has("3001", 11, "used")


def test_move_index_follows_the_deltas_and_reload_restores_the_stored_lots():
    lots = index()
    move_index(lots, Booking(1, "bricklink", "1", [Delta(1, "k", 8, 0, "reserve"), Delta(2, "k", 0, 8, "shipped"),
                                                   Delta(99, "k", 5, 0, "gone")]))
    assert (lots.by_id[1].reserved, lots.by_id[1].quantity) == (8, 10)
    assert (lots.by_id[2].reserved, lots.by_id[2].quantity) == (0, 2)
    assert lots.match(line()).inventory_id == 3  # available now: lot 1 2, lot 2 2, lot 3 4
    lots.add(Lot(8, "3001", 5, "new", "A9", 100, 0, "888"))
    assert lots.match(line()).inventory_id == 8

    lots.reload()
    assert (lots.by_id[1].reserved, lots.by_id[2].quantity) == (0, 10)
    assert 8 not in lots.by_id and "888" not in lots.by_link
    assert lots.match(line()).inventory_id == 1


def test_consumption_never_takes_a_lot_below_zero():
    lots = index()
    move_index(lots, Booking(1, "bricklink", "1", [Delta(7, "k", 0, 5, "shipped")]))
    assert lots.by_id[7].quantity == 0


def test_a_lazy_index_reads_the_lots_when_first_used_and_then_as_an_eager_one():
    loads: list[int] = []
    rows = list(ROWS)

    def load() -> list[Lot]:
        loads.append(1)
        return [Lot(*row) for row in rows]

    for use in (lambda i: i.by_id[5], lambda i: i.by_key[("3001", 5, "new")], lambda i: i.by_link["777"],
                lambda i: i.part_numbers, lambda i: i.match(line(location="A2")), lambda i: i.has("3001"),
                lambda i: i.candidates("3001", 5, "used"), lambda i: i.allocate(1, 3, {}, {}),
                lambda i: i.ensure_loaded()):
        loads.clear()
        lazy = LotIndex(load, lazy=True)
        assert not loads and not lazy.loaded
        rows.append((8, "3005", 1, "new", "D1", 3, 0, "888"))  # what the file holds when it is first used
        use(lazy)
        use(lazy)
        eager = LotIndex(load)
        assert len(loads) == 2 and lazy.loaded
        assert lazy.by_id == eager.by_id and dict(lazy.by_key) == dict(eager.by_key)
        assert lazy.by_link == eager.by_link and lazy.part_numbers == eager.part_numbers == {"3001", "3069b", "2412b", "3005"}
        rows.pop()
        lazy.reload()  # always reads again, at once
        assert len(loads) == 3 and 8 not in lazy.by_id
    added = LotIndex(load, lazy=True)
    added.add(Lot(9, "3010", 1, "new", "E1", 1, 0, None))  # the lots first, then the new one
    assert set(added.by_id) == {1, 2, 3, 4, 5, 6, 7, 9} and added.has("3010", 1, "new")


def test_a_forgotten_index_reads_the_lots_again_when_next_used():
    loads: list[int] = []
    rows = list(ROWS)

    def load() -> list[Lot]:
        loads.append(1)
        return [Lot(*row) for row in rows]

    index = LotIndex(load)
    index.by_id[1].quantity -= 3  # a move the ledger made in memory
    index.forget()
    assert len(loads) == 1 and not index.loaded
    rows[0] = (1, "3001", 5, "new", "A1", 6, 2, None)  # what the file holds by then
    assert index.by_id[1].quantity == 6 and index.by_id[1].reserved == 2 and len(loads) == 2
    assert index.match(line(location="A1")).inventory_id == 1 and len(loads) == 2
