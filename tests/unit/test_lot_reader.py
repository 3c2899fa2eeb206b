"""``bricklink.LotReader``: each lot of a list read as ``remote_lot`` reads it, field for field,
whatever the type of each value; the values lots repeat are one object each."""

from __future__ import annotations

import dataclasses
import itertools
import random
from decimal import Decimal

from marketsync.providers.bricklink import LotReader, remote_lot

VALUES = [None, True, False, 0, 1, -4, 7, 2**53, 2**53 + 1, -(2**60), 1.0, 2.5, -0.0, "", "  ", "0", "12", " 12 ",
          "1.0", "1.5", "1e2", "-3", "abc", "N", " u ", "n", "Y", "y", "yes", "false", "1", "c", " b ", "0.1000",
          "0.10", "NaN", "Infinity", "3001", " 3001 ", "Brick &#40;1 x 2&#41; &amp;", "A&B", "é ☃", [], [1], {},
          {"no": 1}, "٣", "1_000"]


class Text(str):
    pass


def fields(lot):
    return None if lot is None else [(f.name, repr(getattr(lot, f.name))) for f in dataclasses.fields(lot)]


def test_every_field_is_what_remote_lot_reads():
    rng = random.Random(3)
    keys = ["quantity", "color_id", "new_or_used", "remarks", "unit_price", "description", "is_retain",
            "is_stock_room", "completeness"]
    item_keys = ["no", "name", "type"]
    reader = LotReader()
    checked = 0
    for _ in range(4000):
        raw = {key: rng.choice(VALUES) for key in keys if rng.random() < 0.9}
        raw["inventory_id"] = rng.choice([5000001, 7, 0, -1, 2**60, True, "12", " 12 ", "", None, 1.5, Text("9")])
        item = {key: rng.choice(VALUES + [Text(" x ")]) for key in item_keys if rng.random() < 0.9}
        raw["item"] = rng.choice([item, item, item, None, [], "3001"])
        assert fields(reader(raw)) == fields(remote_lot(raw)), raw
        checked += reader(raw) is not None
    assert checked > 1000
    for raw in (None, [], "x", 5, {}, {"item": {}}):
        assert reader(raw) is None and remote_lot(raw) is None


def test_the_values_lots_repeat_are_shared():
    reader = LotReader()
    lots = [reader({"inventory_id": 100 + n, "item": {"no": "300" + str(n % 2), "name": "Brick &amp; plate",
                                                       "type": "PART"}, "unit_price": "0.1000", "description": "bulk",
                    "quantity": n, "color_id": 11, "new_or_used": "N", "remarks": f"A{n}"}) for n in range(6)]
    for a, b in itertools.combinations([lot for lot in lots if lot is not None], 2):
        assert a.name is b.name and a.item_type is b.item_type and a.price is b.price
        assert a.description is b.description
        assert (a.part_number is b.part_number) == (a.part_number == b.part_number)
    assert lots[0] is not None and lots[0].price == Decimal("0.1") and str(lots[0].price) == "0.1000"
    assert lots[0].name == "Brick & plate" and lots[0].condition == "new" and lots[0].location == "A0"
