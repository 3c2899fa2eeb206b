"""translate: BrickOwl lines into BrickLink part / colour / condition, over an in-memory lot index and
a fake catalog. Pure: no HTTP, no SQL."""

from __future__ import annotations

from typing import Any

from collections import Counter

from dataclasses import replace

import pytest

from marketsync.errors import AuthError, NotFoundError, PermissionDeniedError, RequestRejectedError
from marketsync.rules.matching import Lot, LotIndex
from marketsync.model import OrderLine, Unmatched
from marketsync.app.translate import (Known, Learned, Translator, base_boid, brickowl_condition, brickowl_item_type,
                                  lookup_types, split_boid)


# --- conditions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["new", "news", "newc", "newi", "NEW", " newc "])
def test_new_condition_codes(code):
    assert brickowl_condition(code) == "new"


@pytest.mark.parametrize("code", ["usedc", "usedi", "usedn", "usedg", "useda", "USEDG"])
def test_used_condition_codes(code):
    assert brickowl_condition(code) == "used"


@pytest.mark.parametrize("code", ["other", "Other", "", None, "   ", "mint", "newish", "usedx", 5, ["new"]])
def test_other_and_unknown_conditions_have_no_bricklink_equivalent(code):
    assert brickowl_condition(code) is None


@pytest.mark.parametrize("text, expected", [
    ("Used (Good)", "used"), ("Used (Complete)", "used"), ("used (acceptable)", "used"), ("Used", "used"),
    ("New", "new"), ("New (Sealed)", "new"), ("new(sealed)", "new"), ("Other", None), ("Like New", None),
])
def test_condition_display_text(text, expected):
    assert brickowl_condition(text) == expected


# --- BOIDs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("boid, expected", [
    ("487300-38", ("487300", 38)),
    ("487300", ("487300", None)),
    (" 487300-0 ", ("487300", 0)),
    (487300, ("487300", None)),
    ("12-34-5", ("12-34", 5)),  # only the last dash separates the colour
    ("487300-x", ("487300-x", None)),
    ("-38", ("-38", None)),
    ("487300-", ("487300-", None)),
    (None, (None, None)),
    ("", (None, None)),
])
def test_split_boid(boid, expected):
    assert split_boid(boid) == expected
    assert base_boid(boid) == expected[0]


# --- the translator ------------------------------------------------------------------------------
LOTS = [
    Lot(1, "3069b", 11, "new", "B02", 50, 0, "55984791"),
    Lot(2, "3001", 85, "used", "C01", 40, 0, None),
    Lot(3, "3001", 85, "new", "C02", 30, 0, None),
    Lot(4, "2412b", 5, "new", "D01", 25, 0, None),
    Lot(5, "3020", 86, "new", "E01", 10, 0, None),
    Lot(6, "30690", 85, "used", "F01", 10, 0, None),  # not an extension of 3069: another part
]
COLOURS = {0: 0, 38: 11, 50: 85, 81: 5, 86: 86, 162: None}  # BrickOwl -> BrickLink (162: no equivalent)


class FakeCatalog:
    """BrickOwl's catalog in memory, per item type as BrickOwl answers, counting what it is asked.
    ``answers`` keys are a BrickLink number (a Part) or (number, BrickOwl type)."""

    def __init__(self, answers: dict | None = None, error: Exception | None = None):
        self.answers = {(k, "Part") if isinstance(k, str) else k: v for k, v in (answers or {}).items()}
        self.error = error
        self.lookups: Counter[str] = Counter()  # per BrickLink number
        self.asked: list[tuple[str, str]] = []  # (number, type) in order
        self.colour_calls = 0

    def color_list(self):
        self.colour_calls += 1
        return {colour: (None, bl) for colour, bl in COLOURS.items()}

    def id_lookup(self, bricklink_part: str, item_type: str = "Part") -> list[str]:
        self.lookups[bricklink_part] += 1
        self.asked.append((bricklink_part, item_type))
        if self.error is not None:
            raise self.error
        return list(self.answers.get((bricklink_part, item_type), []))


def translator(known: Known | None = None, catalog: Any = None, **kwargs) -> Translator:
    return Translator(known or Known(dict(COLOURS)), LotIndex(lambda: [replace(lot) for lot in LOTS]), catalog,
                      **kwargs)


def bo_line(boid="771344-50", colour=50, condition="usedg", alts=("3001",), link=None, key="1", **extra) -> OrderLine:
    return OrderLine("brickowl", "BO-1", key, 2, boid=boid, provider_color_id=colour, provider_condition=condition,
                     alt_part_numbers=list(alts), bricklink_lot_id=link, **extra)


def translated(line: OrderLine) -> tuple:
    return line.part_number, line.color_id, line.condition, line.unmatched_kind


def test_a_manual_pin_wins_over_the_lot_link_and_the_catalog():
    catalog = FakeCatalog({"3001": ["487300-38"]})
    t = translator(Known(dict(COLOURS), answers={("3069b", "Part"): ["487300-38"]},
                         mappings=[("487300", "3001", "manual")]),
                   catalog)
    line = bo_line(boid="487300-50", colour=50, condition="new", link="55984791")
    t.translate([line])
    assert translated(line) == ("3001", 85, "new", None)  # the link's part differs: its colour is not taken
    assert t.routes == Counter({"manual": 1})
    assert catalog.lookups == Counter()
    assert not t.take_learned()


def test_the_lot_link_settles_part_colour_and_condition_and_is_learned():
    catalog = FakeCatalog()
    t = translator(catalog=catalog)
    line = bo_line(boid="487300-38", colour=38, condition="usedn", alts=("3069",), link="55984791")
    t.translate([line])
    assert translated(line) == ("3069b", 11, "new", None)  # the lot is new: the seller's link wins
    assert t.routes == Counter({"lot-link": 1})
    assert catalog.lookups == Counter()
    assert t.take_learned().mappings == {"487300": ("3069b", "lot-link")}


def test_a_lot_link_the_inventory_lacks_is_not_followed():
    t = translator()
    line = bo_line(boid="487300-38", colour=38, condition="new", alts=(), link="nope")
    t.translate([line])
    assert translated(line) == (None, 11, "new", Unmatched.NO_PART)


def test_cached_answers_map_every_boid_of_the_answer_without_a_call():
    catalog = FakeCatalog()
    known = Known(dict(COLOURS), answers={("3001", "Part"): ["771344-50", "771344", "880001-86"]})
    t = translator(known, catalog)
    lines = [bo_line(boid="771344-50", key="1", alts=()), bo_line(boid="880001-50", key="2", alts=()),
             bo_line(boid="771344", colour=None, key="3", alts=(), condition="new")]
    t.translate(lines)
    assert [translated(l) for l in lines] == [("3001", 85, "used", None), ("3001", 85, "used", None),
                                              ("3001", 0, "new", None)]  # a bare BOID is colour 0
    assert t.routes == Counter({"id_lookup": 3})
    assert catalog.lookups == Counter()
    assert not t.take_learned()  # what was stored already is not handed back to be stored again


def test_a_stored_mapping_wins_over_a_rebuilt_answer():
    t = translator(Known(dict(COLOURS), answers={("3001", "Part"): ["771344-50"]},
                         mappings=[("771344", "3001x", "ids")]))
    line = bo_line()
    t.translate([line])
    assert line.part_number == "3001x"


def test_id_lookup_is_asked_once_per_part_and_its_answer_reused():
    catalog = FakeCatalog({"3001": ["771344-50", "771344"]})
    t = translator(catalog=catalog)
    first, second, other = bo_line(key="1"), bo_line(boid="771344-86", colour=86, condition="new", key="2"), \
        bo_line(boid="999999-50", key="3")
    t.translate([first, second])
    t.translate([other])
    assert translated(first) == ("3001", 85, "used", None)
    assert translated(second) == ("3001", 86, "new", None)
    # BrickOwl's answer for 3001 names other items: the alternative id is not trusted for this one;
    # the other part in stock in that colour and condition (30690) is asked about and, BrickOwl not
    # naming 999999 for it (an empty answer: the Minibuild fallback is asked too), not taken either
    assert translated(other) == (None, 85, "used", Unmatched.NO_PART)
    assert "BrickOwl maps 3001 to other items" in other.unmatched_reason
    assert catalog.lookups == Counter({"3001": 1, "30690": 2})
    assert catalog.asked[1:] == [("30690", "Part"), ("30690", "Minibuild")]
    assert (t.lookups_made, t.stock_lookups_made) == (3, 2)
    learned = t.take_learned()
    assert learned.mappings == {"771344": ("3001", "id_lookup")}
    assert learned.answers[("3001", "Part")][0] == ("771344-50", "771344")
    assert set(learned.answers) == {("3001", "Part"), ("30690", "Part"), ("30690", "Minibuild")}


def test_id_lookup_tries_inventory_parts_extending_an_alternative_id():
    catalog = FakeCatalog({"3069b": ["487300-38"]})
    t = translator(catalog=catalog)
    line = bo_line(boid="487300-38", colour=38, condition="new", alts=("3069",))
    t.translate([line])
    assert translated(line) == ("3069b", 11, "new", None)
    assert catalog.lookups == Counter({"3069b": 1})  # never 30690, another part altogether


def test_an_empty_answer_is_cached_too():
    catalog = FakeCatalog({"2412b": []})
    t = translator(catalog=catalog)
    lines = [bo_line(boid="999001-81", colour=81, condition="new", alts=("2412b",), key=k) for k in "12"]
    t.translate(lines)
    assert [translated(l) for l in lines] == [("2412b", 5, "new", None)] * 2  # the ids route, confirmed by stock
    assert t.routes == Counter({"ids": 2})
    assert catalog.asked == [("2412b", "Part"), ("2412b", "Minibuild")]  # a miss asks the fallback type once
    assert t.take_learned().mappings == {"999001": ("2412b", "ids")}


def test_an_exhausted_lookup_budget_defers_the_line():
    catalog = FakeCatalog({"3001": ["771344-50"], "3020": ["555555-81"]})
    t = translator(catalog=catalog, lookup_budget=1)
    looked_up = bo_line(key="1")
    deferred = bo_line(boid="555555-81", colour=81, condition="new", alts=("3020",), key="2")
    t.translate([looked_up, deferred])
    assert translated(looked_up) == ("3001", 85, "used", None)
    assert translated(deferred) == (None, 5, "new", Unmatched.LOOKUP_DEFERRED)
    assert deferred.unmatched_reason.endswith("id lookup deferred to a later run")
    assert catalog.lookups == Counter({"3001": 1})
    assert (t.lookups_made, t.lookups_deferred) == (1, 1)


def test_a_catalog_without_permission_stops_asking_and_defers_what_the_inventory_cannot_confirm():
    catalog = FakeCatalog(error=PermissionDeniedError("brickowl", "no catalog access"))
    t = translator(catalog=catalog)
    confirmed = bo_line(key="1")
    waiting = bo_line(boid="555555-81", colour=81, condition="new", alts=("3020",), key="2")
    t.translate([confirmed, waiting])
    # 3001 used in colour 85 is in stock: the alternative id is taken, the lookup being impossible
    assert translated(confirmed) == ("3001", 85, "used", None) and t.routes == Counter({"ids": 1})
    assert translated(waiting) == (None, 5, "new", Unmatched.LOOKUP_DEFERRED)  # no 3020 in colour 5
    assert catalog.lookups == Counter({"3001": 1})  # the second line's part is not asked about
    assert t.lookup_error == "brickowl: no catalog access"


def test_a_bad_key_propagates():
    t = translator(catalog=FakeCatalog(error=AuthError("brickowl", "bad key")))
    with pytest.raises(AuthError):
        t.translate([bo_line()])


def test_a_refused_lookup_is_not_cached_and_a_missing_item_is():
    def two_items():
        return [bo_line(boid="771344-50", key="1"), bo_line(boid="771399-50", key="2")]

    refused = FakeCatalog(error=RequestRejectedError("brickowl", "Invalid ID"))
    t = translator(catalog=refused)
    t.translate(two_items())
    assert refused.lookups == Counter({"3001": 2}) and not t.take_learned().answers

    missing = FakeCatalog(error=NotFoundError("brickowl", "no such item"))
    t = translator(catalog=missing)
    t.translate(two_items())
    assert missing.asked == [("3001", "Part"), ("3001", "Minibuild")]  # a miss, then the fallback type
    assert {key: boids for key, (boids, _when) in t.take_learned().answers.items()} == \
        {("3001", "Part"): (), ("3001", "Minibuild"): ()}


def test_an_unknown_colour_is_unmatched_colour_unknown_and_recorded():
    t = translator()
    line = bo_line(boid="771344-999", colour=999, link=None)
    t.translate([line])
    assert translated(line) == (None, None, "used", Unmatched.COLOUR_UNKNOWN)
    assert "BrickOwl colour 999 is not in the colour table yet" in line.unmatched_reason
    assert t.unknown_colours == {999}
    t.use_colours({**COLOURS, 999: 85})
    assert t.unknown_colours == set()
    t.translate([line])
    assert translated(line) == ("3001", 85, "used", None)


def test_a_colour_without_a_bricklink_equivalent_is_colour_none():
    t = translator()
    line = bo_line(boid="771344-162", colour=162, color_name="Glitter Trans-Clear")
    t.translate([line])
    assert (line.color_id, line.unmatched_kind) == (None, Unmatched.COLOUR_NONE)
    assert "BrickOwl colour 162 (Glitter Trans-Clear) has no BrickLink equivalent" in line.unmatched_reason
    assert t.unknown_colours == set()


def test_the_colour_comes_from_the_boid_when_the_line_has_none():
    t = translator()
    line = bo_line(boid="771344-50", colour=None)
    t.translate([line])
    assert translated(line) == ("3001", 85, "used", None)
    nothing = bo_line(boid=None, colour=None, alts=())
    t.translate([nothing])
    assert nothing.unmatched_kind == Unmatched.COLOUR_NONE and "has no colour" in nothing.unmatched_reason


def test_a_condition_without_equivalent_is_condition_unknown():
    t = translator(catalog=FakeCatalog({"3001": ["771344-50"]}))
    line = bo_line(condition="other")
    t.translate([line])
    assert translated(line) == ("3001", 85, None, Unmatched.CONDITION_UNKNOWN)
    assert line.unmatched_reason == "BrickOwl condition 'other' has no BrickLink equivalent"


def test_without_a_catalog_a_condition_without_equivalent_also_hides_the_part():
    """Current behaviour: the alternative ids are only tried with a colour *and* a condition, so the
    kind reported is NO_PART although the condition is what blocks the line (both reasons are kept)."""
    t = translator()
    line = bo_line(condition="other")
    t.translate([line])
    assert translated(line) == (None, 85, None, Unmatched.NO_PART)
    assert line.unmatched_reason.startswith("BrickOwl condition 'other' has no BrickLink equivalent; ")


def test_a_retried_kind_decides_over_the_others():
    t = translator(catalog=FakeCatalog(), lookup_budget=0)
    line = bo_line(boid="555555-999", colour=999, condition="other", alts=("3020",))
    t.translate([line])
    assert line.unmatched_kind == Unmatched.COLOUR_UNKNOWN
    assert line.unmatched_reason.count(";") >= 1  # every reason is kept for people


def test_lines_of_other_marketplaces_are_left_alone():
    t = translator()
    line = OrderLine("bricklink", "1", "1:1", 1, part_number="3001", color_id=5, condition="new")
    t.translate([line])
    assert translated(line) == ("3001", 5, "new", None)


def test_take_learned_empties_and_keep_learned_hands_back():
    t = translator(catalog=FakeCatalog({"3001": ["771344-50"]}))
    t.translate([bo_line(key="1"), bo_line(boid="487300-38", colour=38, condition="new", link="55984791", key="2")])
    learned = t.take_learned()
    assert learned.mappings == {"771344": ("3001", "id_lookup"), "487300": ("3069b", "lot-link")}
    assert set(learned.answers) == {("3001", "Part")}
    assert isinstance(learned, Learned) and learned
    assert not t.take_learned()  # emptied

    t.keep_learned(learned)  # storing failed: handed back, taken again by the next attempt
    again = t.take_learned()
    assert again.mappings == learned.mappings and again.answers == learned.answers
    assert not t.take_learned()


def test_keep_learned_does_not_overwrite_what_was_learned_since():
    t = translator()
    t.translate([bo_line(boid="487300-38", colour=38, condition="new", link="55984791")])
    newer = t.take_learned()
    t.keep_learned(Learned({"487300": ("old", "ids"), "111": ("1", "ids")}))
    t.keep_learned(newer)
    assert t.take_learned().mappings == {"487300": ("old", "ids"), "111": ("1", "ids")}


# --- item types ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("Part", ("Part", "Minibuild")), (None, ("Part", "Minibuild")), ("  ", ("Part", "Minibuild")),
    ("Minifigure", ("Minifigure", "Minibuild")), ("MINIFIGURE", ("Minifigure", "Minibuild")),
    ("Set", ("Set", "Gear")), ("gear", ("Gear", "Set")), ("Sticker", ("Sticker",)), ("Minibuild", ("Minibuild",)),
    ("Hologram", ("Hologram",)),  # newer than our list: asked as BrickOwl named it, no fallback
])
def test_lookup_types(value, expected):
    assert lookup_types(value) == expected
    assert brickowl_item_type(value) == expected[0]


def test_a_hit_of_the_line_type_asks_no_fallback_even_when_it_names_another_item():
    catalog = FakeCatalog({("3001", "Minifigure"): ["555555"], ("3001", "Minibuild"): ["771344"]})
    t = translator(catalog=catalog, stock_lookups_per_line=0)
    line = bo_line(boid="771344", colour=0, condition="new", alts=("3001",), item_type="Minifigure")
    t.translate([line])
    assert catalog.asked == [("3001", "Minifigure")]  # a hit, although of another item: no Minibuild call
    assert line.part_number is None


# --- route 5: candidates from the seller's stock -------------------------------------------------
STOCK_LOTS = [
    Lot(11, "3024", 11, "new", "B07", 80, 0, None),
    Lot(12, "3023", 11, "new", "B07", 60, 0, None),
    Lot(13, "3023", 11, "used", "B07", 60, 0, None),  # the bin, but another condition
    Lot(14, "3710", 11, "new", "B08", 500, 0, None),
    Lot(15, "3623", 11, "new", "B09", 5, 0, None),
    Lot(16, "4070", 11, "new", "B10", 50, 0, None),
    Lot(17, "3022", 1, "new", "B07", 50, 0, None),  # the bin, another colour
]


def stock_translator(catalog, known=None, **kwargs) -> Translator:
    return Translator(known or Known(dict(COLOURS)), LotIndex(lambda: [replace(lot) for lot in STOCK_LOTS]),
                      catalog, **kwargs)


def plate(boid="771500-38", bin_="B07", alts=("28653",), name="Plate", key="1", **extra) -> OrderLine:
    return bo_line(boid=boid, colour=38, condition="new", alts=alts, location=bin_, name=name, key=key, **extra)


def test_the_bin_is_asked_first_and_only_a_confirming_answer_is_taken():
    catalog = FakeCatalog({"3024": ["771600-38"], "3023": ["771500-38", "771500"], "3710": ["771500-38"]})
    t = stock_translator(catalog)
    line = plate()
    t.translate([line])
    assert translated(line) == ("3023", 11, "new", None)
    # the bin's black new parts, more pieces first; 3024's answer names another item: not taken
    assert catalog.asked == [("3024", "Part"), ("3023", "Part")]
    assert t.routes == Counter({"stock": 1}) and t.stock_lookups_made == 2
    assert t.take_learned().mappings == {"771600": ("3024", "id_lookup"), "771500": ("3023", "id_lookup")}


def test_then_the_other_parts_in_that_colour_and_condition_most_likely_first():
    catalog = FakeCatalog({"3623": ["771500-38"]})
    known = Known(dict(COLOURS), mappings=[("999000", "3710", "manual")])  # 3710 is another item's
    t = stock_translator(catalog, known, stock_lookups_per_line=20)
    line = plate(bin_="nowhere", name="LEGO Black Plate 1 x 3 (3623 / 4211)")
    t.translate([line])
    assert translated(line) == ("3623", 11, "new", None)
    assert catalog.asked[0] == ("3623", "Part")  # the name's number first, although it has the fewest pieces

    catalog = FakeCatalog()
    t = stock_translator(catalog, known, stock_lookups_per_line=20)
    t.translate([plate(bin_="nowhere")])
    # no hint: most pieces first, a part another BOID is mapped to last; only black new parts
    assert [part for part, kind in catalog.asked if kind == "Part"] == ["3024", "3023", "4070", "3623", "3710"]


def test_a_wrong_candidate_is_never_taken_and_the_line_says_how_to_pin_it():
    catalog = FakeCatalog({"3024": ["771600-38"], "3023": ["771700-38"]})
    t = stock_translator(catalog)
    line = plate(alts=())
    t.translate([line])
    assert translated(line) == (None, 11, "new", Unmatched.NO_PART)
    assert line.unmatched_reason == ("BrickOwl item 771500 (no alternative ids) has no BrickLink part number in the "
                                     "inventory; pin it with 'marketsync map 771500 PART_NUMBER'")
    assert "771500" not in t.take_learned().mappings
    assert t.unknown_boids == {"771500"}


def test_the_line_bound():
    catalog = FakeCatalog({"3624": []})
    t = stock_translator(catalog, stock_lookups_per_line=3)
    line = plate(alts=())
    t.translate([line])
    # 3024 and 3023 are unknown (a miss: Part, then Minibuild): the third call ends the line's share
    assert catalog.asked == [("3024", "Part"), ("3024", "Minibuild"), ("3023", "Part")]
    assert line.unmatched_kind == Unmatched.NO_PART and t.stock_lookups_made == 3


def test_the_run_bound_defers_and_a_later_run_goes_on_without_asking_twice():
    catalog = FakeCatalog()
    t = stock_translator(catalog, stock_lookups_per_line=4, stock_lookups_per_run=5)
    lines = [plate(boid=f"77150{n}-38", key=str(n), alts=()) for n in range(3)]
    t.translate(lines)
    assert [l.unmatched_kind for l in lines] == [Unmatched.NO_PART, Unmatched.LOOKUP_DEFERRED,
                                                 Unmatched.LOOKUP_DEFERRED]
    assert lines[1].unmatched_reason.endswith("id lookup deferred to a later run")
    assert "marketsync map" not in lines[1].unmatched_reason
    assert t.stock_lookups_made == len(catalog.asked) == 5 and t.lookups_deferred == 2

    learned = t.take_learned()
    later = stock_translator(catalog, Known(dict(COLOURS), answers={k: list(v) for k, (v, _) in learned.answers.items()}),
                             stock_lookups_per_line=4, stock_lookups_per_run=5)
    later.translate(lines)  # as re-matched from the database: the first line was given up, it is not searched
    # the second line spends its share, the third what is left of the run's: the five black new
    # parts are then asked about as both types, and nothing was asked twice
    assert [l.unmatched_kind for l in lines] == [Unmatched.NO_PART] * 3
    assert later.stock_lookups_made == 5
    assert len(catalog.asked) == len(set(catalog.asked)) == 10


def test_the_overall_budget_bounds_the_stock_route_too():
    catalog = FakeCatalog()
    t = stock_translator(catalog, lookup_budget=1)
    line = plate(alts=())
    t.translate([line])
    assert len(catalog.asked) == 1 and line.unmatched_kind == Unmatched.LOOKUP_DEFERRED


def test_lines_of_one_item_bin_colour_and_condition_are_searched_once_per_run():
    catalog = FakeCatalog()
    t = stock_translator(catalog, stock_lookups_per_line=2)
    first, second = plate(key="1", alts=()), plate(key="2", alts=())
    t.translate([first, second])
    assert len(catalog.asked) == 2  # the second line does not spend a share of its own
    assert first.unmatched_reason == second.unmatched_reason and second.unmatched_kind == Unmatched.NO_PART
    other_bin = plate(key="3", bin_="B08", alts=())
    t.translate([other_bin])
    assert len(catalog.asked) == 4


def test_no_stock_search_without_a_colour_a_condition_or_a_catalog():
    catalog = FakeCatalog({"3023": ["771500-38"]})
    t = stock_translator(catalog)
    t.translate([bo_line(boid="771500-38", colour=38, condition="other", alts=(), location="B07"),
                 bo_line(boid="771500-999", colour=999, condition="new", alts=(), location="B07")])
    assert catalog.asked == []
    offline = stock_translator(None)
    line = plate()
    offline.translate([line])
    assert line.unmatched_kind == Unmatched.NO_PART and offline.lookups_made == 0


# --- the unmatched report ------------------------------------------------------------------------
def test_first_report_names_an_unknown_boid_once_per_run():
    t = stock_translator(FakeCatalog())
    a1, a2 = plate(key="1", alts=()), plate(key="2", alts=(), bin_="B09")
    b = plate(boid="771999-38", key="3", alts=())
    deferred = plate(boid="772000-38", key="4", alts=())
    other = bo_line(boid="771344-999", colour=999, key="5")  # unknown colour: not about the BOID
    t.translate([a1, a2, b])
    t.lookup_budget = t.lookups_made  # the catalog is out of calls for the next line
    t.translate([deferred, other])
    assert deferred.unmatched_kind == Unmatched.LOOKUP_DEFERRED
    assert [t.first_report(line) for line in (a1, a2, b, deferred, other)] == [True, False, True, True, True]
    assert t.first_report(a1) and not t.first_report(a2)  # asked again (a batch written again): same answer
    bricklink = OrderLine("bricklink", "1", "1:1", 1, unmatched_kind=Unmatched.NO_PART)
    assert t.first_report(bricklink)
