"""Mirroring's pure rules (marketsync.rules.mirror): which lots, in which terms, and the gaps."""

from __future__ import annotations

from decimal import Decimal

from marketsync.config import MirrorSettings
from marketsync.model import NewLot, RemoteLot
from marketsync.rules import mirror as rules
from marketsync.rules.mirror import Candidate, Knowledge, Listed, LocalLot, Plan, Side, Why

USD = MirrorSettings(currencies={}, used_grade=None)
COLOURS: dict[int, int | None] = {38: 11, 0: 0, 86: 85, 999: 85}  # BrickOwl -> BrickLink; 86 and 999 both BrickLink 85


def lot(id: int = 1, part: str = "3001", colour: int = 11, condition: str = "new", available: int = 5,
        item_type: str | None = "PART") -> LocalLot:
    return LocalLot(id, part, colour, condition, "A1", item_type, available)


def bl_lot(remote: str = "501", price: str = "0.25", condition: str = "new", completeness: str | None = None,
           item_type: str = "PART", **kw) -> RemoteLot:
    return RemoteLot("bricklink", remote, 5, part_number="3001", color_id=11, condition=condition, location="A1",
                     bricklink_lot_id=remote, item_type=item_type, price=Decimal(price), completeness=completeness, **kw)


def bo_lot(remote: str = "9001", full_con: str = "usedg", item_type: str = "Part", price: str = "0.5") -> RemoteLot:
    return RemoteLot("brickowl", remote, 5, location="A1", boid="771344-38", item_type=item_type,
                     price=Decimal(price), condition="new" if full_con.startswith("new") else "used",
                     provider_condition=full_con)


def sides(bl: list[RemoteLot] | None = None, bo: list[RemoteLot] | None = None, bl_cur: str | None = "USD",
          bo_cur: str | None = "USD") -> dict[str, Side]:
    return {"bricklink": Side("bricklink", False, bl_cur, {x.remote_lot_id: x for x in (bl or [])}),
            "brickowl": Side("brickowl", True, bo_cur, {x.remote_lot_id: x for x in (bo or [])})}


def to_bo(local: LocalLot | None = None) -> Candidate:
    return Candidate(local or lot(), "bricklink", "501", "brickowl")


def planned(found: list[Candidate], s: dict[str, Side], knowledge: Knowledge | None = None,
            settings: MirrorSettings = USD) -> Plan:
    knowledge = knowledge or Knowledge(COLOURS, {}, {("3001", "Part"): ("771344-38", "771344")})
    return rules.plan(found, s, knowledge, settings, {})


def test_candidates_are_lots_listed_on_one_marketplace_and_not_on_another():
    lots = {1: lot(1), 2: lot(2), 3: lot(3), 4: lot(4)}
    listings = [Listed(1, "bricklink", "501", 1), Listed(2, "bricklink", "502", 2), Listed(3, "brickowl", "9", 2),
                Listed(4, "bricklink", "503", 3, only=True), Listed(5, "bricklink", "504", 4, gone=True),
                Listed(6, "brickowl", "10", None, detail="no local lot")]
    plan = Plan()
    found = rules.candidates(lots, listings, ["bricklink", "brickowl"], set(), plan)
    assert [(c.lot.id, c.source, c.source_lot_id, c.target) for c in found] == [(1, "bricklink", "501", "brickowl")]
    assert plan.kept == [(3, "bricklink:503")]
    assert rules.candidates(lots, listings, ["brickowl"], {(1, "brickowl")}, Plan()) == []  # an open creation


def test_to_the_catalogue_marketplace_item_colour_condition_price_note_and_external_id():
    [creation] = planned([to_bo()], sides([bl_lot()])).creations
    assert creation.new == NewLot("", "771344", "Part", 38, "new", 5, Decimal("0.250"), "A1", external_id="501")
    unread = sides([bl_lot()])
    unread["brickowl"].lots = None  # nothing is created where nobody could look first
    assert planned([to_bo()], unread).waiting[0][1] == "brickowl's lots were not read"


def test_a_pin_wins_and_several_items_or_none_are_gaps():
    s = sides([bl_lot()])
    pinned = Knowledge(COLOURS, {"3001": ["112233"]}, {})
    assert planned([to_bo()], s, pinned).creations[0].new.item_no == "112233"
    several = Knowledge(COLOURS, {}, {("3001", "Part"): ("771344-38", "771345-38")})
    assert [g.why for g in planned([to_bo()], s, several).gaps] == [Why.AMBIGUOUS]
    none = Knowledge(COLOURS, {}, {("3001", "Part"): (), ("3001", "Minibuild"): ()})
    [gap] = planned([to_bo()], s, none).gaps
    assert gap.why == Why.NO_ITEM and gap.fix == "pin it: marketsync map BOID 3001"
    unknown = Knowledge(COLOURS, {}, {})
    assert planned([to_bo()], s, unknown).waiting[0][1].startswith("the catalogue's answer")
    assert rules.lookups_needed([to_bo()], s, unknown) == [rules.Lookup("3001", "Part")]
    after_empty = Knowledge(COLOURS, {}, {("3001", "Part"): ()})
    assert rules.lookups_needed([to_bo()], s, after_empty) == [rules.Lookup("3001", "Minibuild")]


def test_colours_through_the_table_several_told_apart_by_the_catalogue_else_a_gap():
    s = sides([bl_lot()])
    grey = to_bo(lot(colour=85))
    told = Knowledge(COLOURS, {}, {("3001", "Part"): ("771344-86",)})
    assert planned([grey], s, told).creations[0].new.color_id == 86
    [gap] = planned([grey], s, Knowledge(COLOURS, {}, {("3001", "Part"): ("771344",)})).gaps
    assert gap.why == Why.NO_COLOUR and "86, 999" in gap.subject and "stock only bricklink:501" in gap.fix
    [gap] = planned([to_bo(lot(colour=12345))], s).gaps
    assert gap.why == Why.NO_COLOUR


def test_conditions_are_stated_never_guessed():
    used = sides([bl_lot(condition="used")])
    [gap] = planned([to_bo(lot(condition="used"))], used).gaps
    assert gap.why == Why.NO_CONDITION and "MARKETSYNC_MIRROR_USED_GRADE" in gap.fix
    graded = MirrorSettings(used_grade="useda")
    assert planned([to_bo(lot(condition="used"))], used, settings=graded).creations[0].new.condition == "useda"
    sealed = sides([bl_lot(item_type="SET", completeness="S")])
    known = Knowledge(COLOURS, {}, {("3001", "Set"): ("771344",)})
    new = planned([to_bo(lot(colour=0, item_type="SET"))], sealed, known).creations[0].new
    assert (new.condition, new.color_id, new.item_type) == ("news", None, "Set")
    used_sealed = sides([bl_lot(item_type="SET", completeness="S", condition="used")])
    assert [g.why for g in planned([to_bo(lot(colour=0, item_type="SET"))], used_sealed, known).gaps] == [
        Why.NO_CONDITION]
    # BrickOwl -> BrickLink: every used grade is used; a set's code its completeness; 'other' has none
    for code, expected in (("usedg", ("U", None)), ("news", ("N", None)), ("new", ("N", None))):
        assert rules.inventory_condition(bo_lot(full_con=code), "PART") == expected
    assert rules.inventory_condition(bo_lot(full_con="usedi", item_type="Set"), "SET") == ("U", "B")
    assert rules.inventory_condition(RemoteLot("brickowl", "1", 1, provider_condition="other"), "PART") is None


def test_to_the_inventory_marketplace_the_lots_own_number_and_the_bin_as_remarks():
    s = sides(bo=[bo_lot()])
    candidate = Candidate(lot(condition="used"), "brickowl", "9001", "bricklink")
    [creation] = planned([candidate], s).creations
    assert creation.new == NewLot("", "3001", "PART", 11, "U", 5, Decimal("0.5000"), "A1")
    minibuild = sides(bo=[bo_lot(item_type="Minibuild")])
    assert [g.why for g in planned([candidate], minibuild).gaps] == [Why.NO_TYPE]


def test_prices_copied_converted_with_the_sellers_rate_or_a_gap():
    eur = sides([bl_lot(price="1")], bo_cur="EUR")
    [gap] = planned([to_bo()], eur).gaps
    assert (gap.why, gap.subject, gap.fix) == (Why.NO_RATE, "USD to EUR", "set MARKETSYNC_PRICE_RATE_USD_EUR (1 USD in EUR)")
    rated = MirrorSettings(rates={("USD", "EUR"): Decimal("0.9")}, factors={"brickowl": Decimal("1.05")})
    assert planned([to_bo()], eur, settings=rated).creations[0].new.price == Decimal("0.945")
    unknown = sides([bl_lot()], bo_cur=None)
    assert planned([to_bo()], unknown).gaps[0].fix == "set MARKETSYNC_CURRENCY_BRICKOWL"
    assert planned([to_bo()], sides([bl_lot(price="0.0001")])).gaps[0].why == Why.NO_PRICE


def test_a_lot_already_there_unlinked_is_not_created_again_and_a_refused_one_not_sent_again():
    there = RemoteLot("brickowl", "77", 3, location="A1", boid="771344-38", bricklink_lot_id="501")
    [gap] = planned([to_bo()], sides([bl_lot()], [there])).gaps
    assert gap.why == Why.EXISTS and gap.fix == "marketsync stock link brickowl:77 1"
    knowledge = Knowledge(COLOURS, {}, {("3001", "Part"): ("771344-38",)})
    first = planned([to_bo()], sides([bl_lot()]), knowledge).creations[0].new
    again = rules.plan([to_bo()], sides([bl_lot()]), knowledge, USD, {}, {(1, "brickowl"): (first, "Invalid boid")})
    assert [g.why for g in again.gaps] == [Why.REFUSED] and again.creations == []


def test_a_created_lot_is_found_again_by_what_identifies_it():
    new = NewLot("1", "771344", "Part", 38, "new", 5, Decimal("0.25"), "A1", external_id="501")
    mine = RemoteLot("brickowl", "77", 5, location="A1", boid="771344-38", bricklink_lot_id="501")
    other_bin = RemoteLot("brickowl", "78", 5, location="A2", boid="771344-38", bricklink_lot_id="501")
    assert rules.found_again(new, [mine, other_bin], True, {}, "brickowl", 1) == [mine]
    assert rules.found_again(new, [mine], True, {("brickowl", "77"): 9}, "brickowl", 1) == []  # another lot's
    bl = NewLot("2", "3001", "PART", 11, "U", 5, Decimal("0.5"), "B7")
    listed = RemoteLot("bricklink", "5", 5, part_number="3001", color_id=11, condition="used", location="B7")
    assert rules.found_again(bl, [listed], False, {}, "bricklink", 1) == [listed]


def test_the_daily_budget_share_and_the_gaps_table():
    assert rules.creations_allowed(None, 10) is None
    assert rules.creations_allowed(5000, 300) == rules.PER_RUN
    assert rules.creations_allowed(5000, 3900) == 100 and rules.creations_allowed(5000, 4500) == 0
    gaps = [rules.Gap("brickowl", Why.NO_RATE, "USD to EUR", "set X", f"bricklink:{n} (lot {n})") for n in range(5)]
    [row] = rules.table(gaps + gaps[:1])
    assert row.lots == 5 and row.examples.endswith("+2")


def test_planning_ten_thousand_lots_creates_each_lot_once():
    # How long it takes is benchmarks/mirror.py's to measure (docs/performance.md), not a unit test's.
    lots = {n: lot(n, f"p{n % 500}", 11) for n in range(1, 10_001)}
    listings = [Listed(n, "bricklink", str(n), n) for n in lots]
    read = sides([bl_lot(str(n)) for n in lots])
    knowledge = Knowledge(COLOURS, {}, {(f"p{n}", "Part"): (f"77{n}-38",) for n in range(500)})
    found = rules.candidates(lots, listings, ["bricklink", "brickowl"], set(), Plan())
    plan = rules.plan(found, read, knowledge, USD, {})
    created = sorted(c.candidate.lot.id for c in plan.creations)
    assert created == sorted(lots) and {c.candidate.target for c in plan.creations} == {"brickowl"}
