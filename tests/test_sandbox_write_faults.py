"""Faults on the sandbox's write endpoints: an ordinary fault means the change was NOT applied;
``applied_reset`` / ``applied_500`` / ``applied_hang`` apply it and then lose the answer."""

from __future__ import annotations

import json

import pytest
import requests
from requests_oauthlib import OAuth1

from marketsync.sandbox import APPLIED_FAULTS, FAULTS, Sandbox

WRITES = [("bricklink", "PUT /inventories/{id}"), ("brickowl", "POST /inventory/update"), ("brickowl", "POST /bulk/batch")]
NOT_APPLIED = ["500", "reset", "html503", "429", "not_json", "auth_in_200", "malformed", "hang", "ip_mismatch", "error_string"]


@pytest.fixture
def sb():
    with Sandbox() as sandbox:
        sandbox.brickowl.rate_limit = None
        yield sandbox
    assert not sandbox.errors, sandbox.errors[0]


class Shop:
    """One lot of 10 on the marketplace under test, and a write that takes one piece off it."""

    def __init__(self, sb: Sandbox, provider: str, endpoint: str):
        self.sb, self.provider, self.endpoint = sb, provider, endpoint
        self.lot: int | str = (sb.bricklink.add_lot("3001", 11, 10) if provider == "bricklink"
                               else sb.brickowl.add_lot("487300-38", 10))

    def quantity(self) -> int:
        if self.provider == "bricklink":
            bl = self.sb.bricklink.get_lot(int(self.lot))
            assert bl is not None
            return bl.quantity
        bo = self.sb.brickowl.get_lot(self.lot)
        assert bo is not None
        return bo.qty

    def write(self, timeout: float = 5) -> requests.Response:
        with requests.Session() as http:  # a fresh connection: nothing pooled, nothing retried
            if self.provider == "bricklink":
                bl = self.sb.bricklink
                auth = OAuth1(bl.consumer_key, bl.consumer_secret, bl.token_value, bl.token_secret)
                return http.put(f"{self.sb.bricklink_url!s}/inventories/{self.lot}", json={"quantity": "-1", "description": ""},
                                auth=auth, timeout=timeout)  # fmt: skip
            form = {"key": self.sb.brickowl.api_key}
            change = {"lot_id": self.lot, "relative_quantity": "-1"}
            if self.endpoint == "POST /bulk/batch":
                form["requests"] = json.dumps({"requests": [{"endpoint": "inventory/update", "request_method": "POST",
                                                             "params": [change]}]})  # fmt: skip
                return http.post(f"{self.sb.brickowl_url}/bulk/batch", data=form, timeout=timeout)
            return http.post(f"{self.sb.brickowl_url}/inventory/update", data={**form, **change}, timeout=timeout)

    def succeeded(self, r: requests.Response) -> bool:
        body = r.json()
        if self.provider == "bricklink":
            return body["meta"]["code"] == 200
        if self.endpoint == "POST /bulk/batch":
            return isinstance(body, list) and [a["code"] for a in body] == [200]
        return body == {"status": "success"}


CASES = [(p, e, f) for p, e in WRITES for f in NOT_APPLIED
         if (f, p) not in (("ip_mismatch", "brickowl"), ("error_string", "bricklink"))]  # fmt: skip


@pytest.mark.parametrize("provider, endpoint, fault", CASES)
def test_an_ordinary_fault_on_a_write_applies_nothing(sb, provider, endpoint, fault):
    shop = Shop(sb, provider, endpoint)
    sb.inject(provider, endpoint, fault, **({"seconds": 0.05} if fault == "hang" else {}))
    if fault in ("reset", "hang"):  # a write that hung is answered with a reset, never applied late
        with pytest.raises(requests.ConnectionError):
            shop.write()
    else:
        r = shop.write()
        expected = {"500": 500, "html503": 503, "429": 429}.get(fault, 200)
        assert r.status_code == expected
        if fault == "malformed":  # the answer the store would have given, cut short
            assert r.headers["Content-Type"].startswith("application/json")
            with pytest.raises(json.JSONDecodeError):
                json.loads(r.text)
        elif fault == "not_json":
            assert r.headers["Content-Type"].startswith("text/html")
        elif fault in ("auth_in_200", "ip_mismatch", "error_string"):
            assert not shop.succeeded(r)
    assert shop.quantity() == 10  # NOT applied
    assert len(sb.writes) == 1 and sb.calls[(provider, endpoint)] == 1
    r = shop.write()  # the fault was consumed: the same write now applies
    assert shop.succeeded(r) and shop.quantity() == 9


@pytest.mark.parametrize("provider, endpoint", WRITES)
def test_applied_reset_applies_then_drops_the_connection(sb, provider, endpoint):
    shop = Shop(sb, provider, endpoint)
    sb.inject(provider, endpoint, "applied_reset")
    with pytest.raises(requests.ConnectionError):
        shop.write()
    assert shop.quantity() == 9  # applied although the client saw no answer


@pytest.mark.parametrize("provider, endpoint", WRITES)
def test_applied_500_applies_then_answers_500(sb, provider, endpoint):
    shop = Shop(sb, provider, endpoint)
    sb.inject(provider, endpoint, "applied_500")
    r = shop.write()
    assert r.status_code == 500
    if provider == "bricklink":
        assert r.json()["meta"]["code"] == 500
    else:
        assert r.headers["Content-Type"].startswith("text/html")
    assert shop.quantity() == 9
    assert shop.succeeded(shop.write()) and shop.quantity() == 8


@pytest.mark.parametrize("provider, endpoint", WRITES)
def test_applied_hang_applies_then_never_answers(sb, provider, endpoint):
    shop = Shop(sb, provider, endpoint)
    sb.inject(provider, endpoint, "applied_hang", seconds=30)
    with pytest.raises(requests.Timeout):
        shop.write(timeout=0.3)
    assert shop.quantity() == 9  # the sandbox's stop() wakes the hung handler


def test_applied_faults_on_star_wait_for_the_next_write(sb):
    shop = Shop(sb, "bricklink", "PUT /inventories/{id}")
    sb.inject("bricklink", "*", "applied_reset")
    bl = sb.bricklink
    auth = OAuth1(bl.consumer_key, bl.consumer_secret, bl.token_value, bl.token_secret)
    r = requests.get(f"{sb.bricklink_url}/inventories/{shop.lot}", auth=auth, timeout=5)
    assert r.status_code == 200 and r.json()["data"]["quantity"] == 10  # reads pass untouched
    with pytest.raises(requests.ConnectionError):
        shop.write()
    assert shop.quantity() == 9


def test_a_fault_on_one_write_endpoint_leaves_the_others_alone(sb):
    batch = Shop(sb, "brickowl", "POST /bulk/batch")
    sb.inject("brickowl", "POST /bulk/batch", "500")
    update = Shop(sb, "brickowl", "POST /inventory/update")
    assert update.succeeded(update.write()) and update.quantity() == 9
    assert batch.write().status_code == 500 and batch.quantity() == 10


def test_write_and_single_lot_endpoints_are_addressable(sb):
    assert APPLIED_FAULTS == {"applied_reset", "applied_500", "applied_hang"} and not APPLIED_FAULTS & FAULTS
    assert set(NOT_APPLIED) == FAULTS  # every ordinary fault is covered on every write endpoint above
    lot = sb.bricklink.add_lot("3001", 11, 10)
    sb.inject("bricklink", "GET /inventories/{id}", "html503")
    bl = sb.bricklink
    auth = OAuth1(bl.consumer_key, bl.consumer_secret, bl.token_value, bl.token_secret)
    url = f"{sb.bricklink_url}/inventories/{lot}"
    assert requests.get(url, auth=auth, timeout=5).status_code == 503
    assert requests.get(url, auth=auth, timeout=5).json()["data"]["quantity"] == 10
    sb.inject("brickowl", "GET /inventory/list", "500")
    r = requests.get(sb.brickowl_url + "/inventory/list", params={"key": sb.brickowl.api_key}, timeout=5)
    assert r.status_code == 500
    for endpoint in ("GET /inventories/{id}", "GET /orders"):
        with pytest.raises(ValueError, match="only exists for write endpoints"):
            sb.inject("bricklink", endpoint, "applied_500")
    with pytest.raises(ValueError, match="only exists for write endpoints"):
        sb.inject("brickowl", "GET /inventory/list", "applied_reset")
    with pytest.raises(ValueError, match="unknown bricklink endpoint"):
        sb.inject("bricklink", "PUT /inventories", "500")
    sb.inject("brickowl", "POST /bulk/batch", "applied_500")  # accepted
    sb.clear_faults()


@pytest.mark.parametrize("provider, endpoint", WRITES)
def test_late_applies_nothing_now_drops_the_answer_and_lands_when_applied(sb, provider, endpoint):
    shop = Shop(sb, provider, endpoint)
    store = sb.bricklink if provider == "bricklink" else sb.brickowl
    sb.inject(provider, endpoint, "late")
    with pytest.raises(requests.ConnectionError):
        shop.write()
    assert shop.quantity() == 10 and store.late_writes == 1  # held back, not applied
    assert shop.succeeded(shop.write()) and shop.quantity() == 9  # the fault was consumed: a retry applies
    [answer] = store.apply_late_writes()  # the held write lands after the retry
    assert answer.status == 200 and shop.quantity() == 8 and store.late_writes == 0
    assert sb.calls[(provider, endpoint)] == 2  # counted once, when it arrived


def test_late_waits_for_a_write_and_exists_only_for_writes(sb):
    shop = Shop(sb, "bricklink", "PUT /inventories/{id}")
    sb.inject("bricklink", "*", "late")
    bl = sb.bricklink
    auth = OAuth1(bl.consumer_key, bl.consumer_secret, bl.token_value, bl.token_secret)
    r = requests.get(f"{sb.bricklink_url}/inventories/{shop.lot}", auth=auth, timeout=5)
    assert r.status_code == 200  # reads pass
    with pytest.raises(requests.ConnectionError):
        shop.write()
    assert shop.quantity() == 10 and sb.apply_late_writes("brickowl") == []
    assert len(sb.apply_late_writes()) == 1 and shop.quantity() == 9
    with pytest.raises(ValueError, match="only exists for write endpoints"):
        sb.inject("bricklink", "GET /inventories/{id}", "late")
