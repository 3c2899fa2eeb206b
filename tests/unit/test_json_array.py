"""``parse.JsonArray``: the elements of a long JSON array decoded as the body is read, in any chunks."""

from __future__ import annotations

import json

import pytest

from marketsync.parse import JsonArray, chunks_of

ENVELOPED = {"meta": {"code": 200, "message": "OK", "list": [1, 2]},
             "data": [{"inventory_id": 1, "item": {"no": "3001"}, "remarks": "é☃ \"x\""}, 12345, -2.25e-7, 1.5,
                      "text", [1, {"b": None}], True, False, None, 0, {}, []]}


def pieces(body: str, size: int) -> list[bytes]:
    raw = body.encode()
    return [raw[i:i + size] for i in range(0, len(raw), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
def test_every_element_and_the_rest_of_the_envelope_in_any_chunks(size, indent):
    body = json.dumps(ENVELOPED, indent=indent, ensure_ascii=False)
    found = JsonArray(pieces(body, size), "data")
    assert list(found) == ENVELOPED["data"]
    assert found.found and found.head == {"meta": ENVELOPED["meta"]}


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_a_top_level_array_and_members_in_any_order(size):
    assert list(JsonArray(pieces("[1, 22, 333, 4.5, {\"x\": \"y\"}]", size))) == [1, 22, 333, 4.5, {"x": "y"}]
    late = JsonArray(pieces('{"data": [1], "meta": {"code": 200}}', size), "data")
    assert list(late) == [1] and late.head == {"meta": {"code": 200}}


@pytest.mark.parametrize("body", ['{"meta": {"code": 401}}', '{"data": {"not": "a list"}}', '{}'])
def test_no_array_under_the_key_yields_nothing_and_says_so(body):
    found = JsonArray(pieces(body, 3), "data")
    assert list(found) == [] and not found.found
    assert found.head == {k: v for k, v in json.loads(body).items()}


@pytest.mark.parametrize("body", ['{"data": [1, 2', '{"data": [1 2]}', '<html>503</html>', '', '{"data": [1]} x',
                                  '[1,]', '[1x]', '{"data": [1.]}', '{"data": [{"a": 1}'])
@pytest.mark.parametrize("size", [1, 4, 1000])
def test_a_body_cut_short_or_not_json_raises(body, size):
    with pytest.raises(ValueError):
        list(JsonArray(pieces(body, size), "data" if body.startswith("{") else None))


def test_chunks_of_a_body_cover_it_without_copying():
    body = bytes(range(256)) * 10
    parts = list(chunks_of(body, 1000))
    assert [len(p) for p in parts] == [1000, 1000, 560] and b"".join(parts) == body
    assert list(JsonArray(chunks_of(b'{"data":[1,2,3]}', 2), "data")) == [1, 2, 3]
