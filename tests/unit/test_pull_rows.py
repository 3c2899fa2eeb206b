"""The pull's fast paths over the listings it reads: ``PullRow`` reads like the dict it replaces,
``read_as`` texts are written and read back as ``json`` does, and a listing that did not move is
what the stock model makes of it."""

from __future__ import annotations

import itertools
import json
import random
from decimal import Decimal

import pytest

from marketsync.app.listing_pull import _unmoved
from marketsync.model import RemoteLot
from marketsync.rules import listings as rules
from marketsync.store import listings as stored
from marketsync.store.listings import PULL_COLUMNS, PullRow

VALUES = (7, "bricklink", "5000001", 12, 20, 3, 4, None, "2026-01-01T00:00:00Z", 1, "pull",
          '{"retained": true}', "sold-out", "2026-01-02T00:00:00Z")


def test_a_pull_row_reads_like_the_dict_of_its_columns():
    row, plain = PullRow(*VALUES), dict(zip(PULL_COLUMNS, VALUES))
    assert list(row) == list(plain) and len(row) == len(plain) and dict(row) == plain and row == plain
    for key, value in plain.items():
        assert row[key] == value and row.get(key) == value and row.get(key, "x") == value and key in row
        assert getattr(row, key) == value
    for unknown in ("nope", "ID", 3, None):
        with pytest.raises(KeyError):
            row[unknown]
        assert row.get(unknown) is None and row.get(unknown, "x") == "x" and unknown not in row
    assert list(row.items()) == list(plain.items()) and list(row.values()) == list(plain.values())


def test_a_pull_row_makes_the_listing_the_dict_makes():
    for read in (None, "", '{"retained": true}', '{"retained": 0}', "not json", '{"note": "A1", "retained": false}'):
        for gone, held, method in ((None, None, "pull"), ("x", "y", "mirror"), (None, "y", None)):
            values = dict(zip(PULL_COLUMNS, VALUES), read_as=read, gone_at=gone, held_at=held, link_method=method,
                          taken=None, retain_set=0)
            assert stored.as_listing(PullRow(*values.values())) == stored.as_listing(values)


def _reference_json(lot: RemoteLot) -> str:
    """``_read_json`` as it was: json.dumps of the terms, keys sorted."""
    from marketsync.rules.mirror import read_as

    read = read_as(lot)
    return json.dumps({"item_no": read.item_no, "item_type": read.item_type, "color_id": read.color_id,
                       "condition": read.condition, "completeness": read.completeness,
                       "price": None if read.price is None else str(read.price), "description": read.description,
                       "note": read.note, "retained": read.retained}, sort_keys=True)


class Text(str):
    pass


def _texts(rng: random.Random) -> list:
    alphabet = ["a", "Z", "0", " ", '"', "\\", "/", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "☃", "𝄞", "&#40;", "'"]
    return [None, "", Text("sub"), *("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
                                     for _ in range(6))]


def test_read_as_text_is_what_json_dumps_writes():
    rng = random.Random(5)
    texts = _texts(rng)
    for _ in range(3000):
        lot = RemoteLot("bricklink", "1", 1, part_number=rng.choice(texts), item_type=rng.choice(texts),
                        color_id=rng.choice([None, 0, 11, -3, 2**60, True]), condition=rng.choice(texts),
                        completeness=rng.choice(texts), location=rng.choice(texts),
                        price=rng.choice([None, Decimal("0.1000"), Decimal("1E+2"), Decimal("-0"), Decimal("12.5")]),
                        description=rng.choice(texts), retained=rng.choice([True, False]))
        assert stored._read_json(lot) == _reference_json(lot)


def test_retained_is_what_the_text_reads_as():
    rng = random.Random(7)
    texts = [
        None, "", "[]", "null", "not json", '{"retained": true}', '{"retained": 1}', '{"retained": false}',
        '{"a": 1, "retained": false}', '{"retained": true, "retained": false}', '{"retained": false, "retained": true}',
        '{"retained": true, "x\\"retained": false}', '{"retained": true, "x": "\\", "retained": false}',
        ', "retained": false}', '{"retained": true , "retained": false} ', '{"a": {"b": 1, "retained": false}}',
        '{"retained": true, "a": [1, "retained": false}',
    ]
    for _ in range(300):
        lot = RemoteLot("bricklink", "1", 1, part_number=rng.choice(["3001", '"retained": false}', None]),
                        description=rng.choice(['x", "retained": false}', "\\", None]), retained=rng.choice([True, False]))
        texts.append(stored._read_json(lot))
    for text in texts:
        read = stored.read_as(text)
        assert stored.retained(text) is (read is not None and read.retained), text
    assert stored.retained(stored._read_json(RemoteLot("bricklink", "1", 1, retained=True))) is True


def test_an_unmoved_listing_is_what_the_stock_model_makes_of_it():
    """Wherever the fast path takes a listing as unmoved, the model finds no seller's part, nothing
    to learn, and no change; it never takes one with a change of marketsync's open."""
    taken_any = 0
    for listed, taken, placed, own_taken, own_placed, remote, held in itertools.product(
            (0, 1, 5), (None, 0, 2), (None, 0, 3), (0, 2, 3), (0, 3, 4), (0, 1, 5), (None, "h")):
        values = dict(zip(PULL_COLUMNS, VALUES), listed=listed, taken=taken, placed=placed, held_at=held)
        row, mine = PullRow(*values.values()), rules.OwnOrders(own_taken, own_placed, 1)
        maybe = rules.Maybe(1, -1)
        assert not _unmoved(row, mine, [maybe], remote)
        if not _unmoved(row, mine, [], remote):
            continue
        taken_any += 1
        listing = stored.as_listing(row)
        assert rules.sellers_parts(listing, mine, remote, None) is None
        for restocks in (None, True, False):
            assert rules.proves(listing, mine, remote) is None
            assert rules.nearest(listing, mine, remote, restocks) == remote
    assert taken_any


def test_the_collector_is_paused_for_the_pull_and_left_as_it_was():
    import gc

    from marketsync.app.collector import paused as _collector_paused

    assert gc.isenabled()
    with _collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with _collector_paused():
            raise RuntimeError("a failed pull")
    assert gc.isenabled()
    gc.disable()
    try:
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # not the pull's to turn on
    finally:
        gc.enable()


def test_while_paused_the_young_cycles_are_collected_when_asked():
    """A sync holds the collector back and collects young cycles after each batch it writes: a
    cycle made meanwhile is found then, not left to the end of a long run."""
    import weakref

    from marketsync.app.collector import collect_young, paused

    class Node:
        other: object = None

    with paused():
        first, second = Node(), Node()
        first.other, second.other = second, first
        gone = weakref.ref(first)
        del first, second
        assert gone() is not None  # a cycle: reference counting alone never frees it
        collect_young()
        assert gone() is None


def test_rematch_makes_the_translator_it_is_given_the_means_of_only_for_an_order(tmp_path):
    from marketsync.app import reserve
    from marketsync.store import open_store
    from marketsync.store.inventory import lot_index

    store = open_store(tmp_path / "t.db", "acct")
    index = lot_index(store, lazy=True)
    made: list[int] = []

    def translator():
        made.append(1)
        raise AssertionError("no order to translate")

    assert reserve.rematch(store, index, translator) == [] and not made
    assert not index.loaded  # nothing matched: the lots were never read
