"""parse: the tolerant scalars both APIs send (strings, raw numbers and nulls alike). A JSON
string takes a short way; every answer is the one the general way gives."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketsync import parse


class Text(str):
    pass


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("  ", None), (" a b ", "a b"), ("x", "x"), (Text(" y "), "y"), (12, "12"),
    (1.5, "1.5"), (True, "True"), ([], None), ({}, None), (["x"], None),
])
def test_text(value, expected):
    assert parse.text(value) == expected
    assert type(parse.text(value)) in (str, type(None))


@pytest.mark.parametrize("value, expected", [
    ("12", 12), (" 12 ", 12), ("0012", 12), ("-3", -3), ("+5", 5), ("1.0", 1), ("1.5", None), ("1e3", 1000),
    ("1_000", 1000), ("abc", None), ("", None), ("NaN", None), ("inf", None), ("²", None),
    (str(2**53), 2**53), (str(2**53 + 1), None), (str(-2**53 - 1), None), (12, 12), (2**53 + 1, None),
    (1.0, 1), (1.5, None), (True, None), (False, None), (None, None), (Text("7"), 7), (Decimal("2"), 2),
])
def test_integer(value, expected):
    assert parse.integer(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("0.048", Decimal("0.048")), (" 1.50 ", Decimal("1.50")), ("x", None), ("", None), ("NaN", None),
    (2, Decimal("2")), (0.5, Decimal("0.5")), (True, None), (None, None),
])
def test_money(value, expected):
    assert parse.money(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("Brick 1 x 2", "Brick 1 x 2"), ("Tile &#40;Round&#41;", "Tile (Round)"), ("A &amp;amp; B", "A &amp; B"),
    (" &lt;x&gt; ", "<x>"), ("", None), (None, None), (5, "5"),
])
def test_unescaped_decodes_entities_once(value, expected):
    assert parse.unescaped(value) == expected
