"""``marketsync stock probe``: +1 and -1 on one live lot through the journal, each raw answer shown
with the adapter's reading of it, through the real CLI against the sandbox."""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest

from marketsync.model import ChangeResult, Outcome
from marketsync.providers.brickowl import BrickOwl

BL_LOT, BO_LOT = 501, "9001"
IDS = [{"id": "3001", "type": "design_id"}, {"id": "771344-38", "type": "boid"}]
WRITES = {"bricklink": "PUT /inventories/{id}", "brickowl": "POST /inventory/update"}
LOTS = {"bricklink": str(BL_LOT), "brickowl": BO_LOT}


@pytest.fixture
def shop(run, creds):
    """One part in bin A1 listed 20 on both marketplaces, linked after a pull and a push."""
    creds.bricklink.add_lot("3001", 11, 20, remarks="A1", inventory_id=BL_LOT, description="Tan &amp; clean (B)")
    creds.brickowl.add_lot("771344-38", 20, lot_id=BO_LOT, personal_note="A1", external_id=BL_LOT, ids=IDS)
    assert run("inventory", "pull").exit_code == 0
    push(run)
    assert listed(creds) == (20, 20)
    return creds


def push(run):
    result = run("sync", "--push")
    assert result.exit_code == 0, result.stderr
    return result


def listed(sb) -> tuple[int | None, int | None]:
    bl, bo = sb.bricklink.get_lot(BL_LOT), sb.brickowl.get_lot(BO_LOT)
    return (bl.quantity if bl else None), (bo.qty if bo else None)


def query(sql: str, *params):
    with sqlite3.connect("marketsync.db") as conn:
        return conn.execute(sql, params).fetchall()


def journal(provider: str) -> list[tuple[int, str]]:
    return query("select delta, state from _listing_changes where provider = ? order by id", provider)


def confirmed_figure(provider: str) -> int:
    return query("select listed from listings where provider = ? and remote_lot_id = ?", provider,
                 LOTS[provider])[0][0]


def held() -> list[tuple[str, str]]:
    return query("select provider, remote_lot_id from listings where held_at is not null")


def api_calls(provider: str) -> int:
    return sum(n for (n,) in query("select calls from _api_calls where provider = ?", provider))


def writes(sb, provider: str) -> list[dict]:
    return [body for name, _, _, body in sb.writes if name == provider]


def probe(run, provider: str, *extra: str, **kw):
    return run("stock", "probe", f"{provider}:{LOTS[provider]}", *extra, **kw)


def assert_no_secret(sb, *texts: str) -> None:
    for name, value in sb.env().items():
        for text in texts:
            assert value not in text, f"{name} leaked"


def refused_with_nothing_sent(sb, result, provider: str, *words: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "nothing sent" in lines[0]
    for word in words:
        assert word in lines[0]
    assert result.stdout == ""


# --- a probe that goes through ----------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["bricklink", "brickowl"])
def test_probe_changes_plus_one_then_minus_one_and_leaves_the_lot_as_it_was(run, shop, provider, tmp_path):
    description = shop.bricklink.get_lot(BL_LOT).to_json()["description"]
    calls = api_calls(provider)
    before_journal = journal(provider)
    capture_path = tmp_path / "probe.json"

    result = probe(run, provider, "--yes", "--save", capture_path)

    assert result.exit_code == 0, result.output
    assert listed(shop) == (20, 20)
    assert shop.bricklink.get_lot(BL_LOT).to_json()["description"] == description
    assert journal(provider) == before_journal + [(1, "applied"), (-1, "applied")]
    assert confirmed_figure(provider) == 20
    sent = writes(shop, provider)[-2:]
    if provider == "bricklink":
        assert sent == [{"quantity": "+1", "description": description}, {"quantity": "-1", "description": description}]
    else:
        assert [w["relative_quantity"] for w in sent] == ["1", "-1"]
    assert api_calls(provider) - calls == 5  # read, +1, read back, -1, read back
    # both raw answers, each with the adapter's verdict
    out = result.stdout
    assert out.count("answer: HTTP 200 ") == 2
    assert out.count("verdict: read right: the adapter read it as applied") == 2
    assert "lot shows 21" in out and "lot shows 20" in out
    assert f"capture written to {capture_path}" in out
    assert_no_secret(shop, result.stdout, result.stderr, capture_path.read_text())
    if provider == "brickowl":
        assert '"key": "***"' in out  # the key travels in the form: shown masked

    assert stat.S_IMODE(os.stat(capture_path).st_mode) == 0o600
    saved = json.loads(capture_path.read_text())
    assert saved["ok"] is True and saved["provider"] == provider
    assert [s["change"] for s in saved["steps"]] == ["+1", "-1"]
    assert all(s["adapter_outcome"] == "applied" and s["read_right"] and s["journal_state"] == "applied"
               for s in saved["steps"])
    assert [s["read_back"] for s in saved["steps"]] == [21, 20]
    stages = [x["stage"] for x in saved["exchanges"]]
    assert stages == ["read", "+1", "read back after +1", "-1", "read back after -1"]
    answer = saved["exchanges"][1]["response"]
    assert answer["status"] == 200 and "Content-Type" in answer["headers"] and answer["body"]
    request = saved["exchanges"][1]["request"]
    assert request["method"] == WRITES[provider].split()[0]
    if provider == "brickowl":
        assert request["form"]["key"] == "***" and saved["exchanges"][0]["request"]["query"]["key"] == "***"


def test_save_makes_an_existing_file_owner_only(run, shop, tmp_path):
    path = tmp_path / "old.json"
    path.write_text("old")
    os.chmod(path, 0o644)
    result = probe(run, "brickowl", "--yes", "--save", path)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())["ok"] is True


# --- refusals: nothing sent ------------------------------------------------------------------------
def test_a_brickowl_lot_taken_off_sale_is_refused(run, shop):
    shop.brickowl.set_lot_for_sale(BO_LOT, False)
    sent = len(writes(shop, "brickowl"))
    result = probe(run, "brickowl", "--yes")
    refused_with_nothing_sent(shop, result, "brickowl", "not for sale")
    assert len(writes(shop, "brickowl")) == sent and journal("brickowl") == []
    assert shop.brickowl.get_lot(BO_LOT).qty == 20


def test_a_bricklink_lot_moved_to_a_stockroom_is_refused(run, shop):
    shop.bricklink.get_lot(BL_LOT).status = "S"
    sent = len(writes(shop, "bricklink"))
    result = probe(run, "bricklink", "--yes")
    refused_with_nothing_sent(shop, result, "bricklink", "not for sale")
    assert len(writes(shop, "bricklink")) == sent and journal("bricklink") == []


def test_a_held_listing_is_refused(run, shop):
    shop.bricklink.set_lot_quantity(BL_LOT, 25)  # the seller's own edit on the website
    push(run)
    assert held() == [("bricklink", str(BL_LOT))]
    sent = len(writes(shop, "bricklink"))
    result = probe(run, "bricklink", "--yes")
    refused_with_nothing_sent(shop, result, "bricklink", "held", f"marketsync stock adopt bricklink:{BL_LOT}")
    assert len(writes(shop, "bricklink")) == sent
    assert shop.bricklink.get_lot(BL_LOT).quantity == 25


def test_a_listing_not_linked_is_refused_naming_stock_link(run, shop):
    assert run("stock", "unlink", f"brickowl:{BO_LOT}").exit_code == 0
    calls = sum(shop.calls.values())
    result = probe(run, "brickowl", "--yes")
    refused_with_nothing_sent(shop, result, "brickowl", f"marketsync stock link brickowl:{BO_LOT}")
    unknown = run("stock", "probe", "bricklink:777", "--yes")
    refused_with_nothing_sent(shop, unknown, "bricklink", "marketsync stock link bricklink:777")
    assert sum(shop.calls.values()) == calls  # refused from the database alone


def test_a_lot_at_zero_is_refused(run, shop):
    shop.brickowl.add_order("Payment Received", lines=[{"lot_id": BO_LOT, "boid": "771344-38", "color_id": 38,
                                                        "ordered_quantity": 20, "personal_note": "A1",
                                                        "bl_lot_id": str(BL_LOT)}])
    push(run)
    assert listed(shop) == (0, 0)
    sent = len(writes(shop, "bricklink"))
    result = probe(run, "bricklink", "--yes")
    refused_with_nothing_sent(shop, result, "bricklink", "lists 0", "retain")
    assert len(writes(shop, "bricklink")) == sent


def test_a_lot_whose_figure_moved_since_the_last_push_is_refused(run, shop):
    shop.bricklink.add_order("PAID", lines=[{"inventory_id": BL_LOT, "no": "3001", "color_id": 11, "quantity": 3,
                                             "remarks": "A1"}])  # not synced yet: the lot lists 17
    sent = len(writes(shop, "bricklink"))
    result = probe(run, "bricklink", "--yes")
    refused_with_nothing_sent(shop, result, "bricklink", "lists 17", "marketsync sync --push")
    assert len(writes(shop, "bricklink")) == sent and journal("bricklink") == []


def test_off_a_terminal_without_yes_it_refuses_before_anything(run, shop):
    calls = sum(shop.calls.values())
    result = probe(run, "bricklink")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--yes" in result.stderr
    assert sum(shop.calls.values()) == calls and journal("bricklink") == []


def test_on_a_terminal_it_asks_first(run, shop, monkeypatch):
    monkeypatch.setattr("marketsync.app.probe.on_terminal", lambda: True)
    sent = len(writes(shop, "bricklink"))
    no = probe(run, "bricklink", input="n\n")
    assert no.exit_code == 130 and "aborted" in no.stderr
    assert "to 21 and back to 20?" in no.stdout
    assert len(writes(shop, "bricklink")) == sent and journal("bricklink") == []
    yes = probe(run, "bricklink", input="y\n")
    assert yes.exit_code == 0, yes.output
    assert journal("bricklink") == [(1, "applied"), (-1, "applied")] and listed(shop) == (20, 20)


# --- answers lost, refused or misread: never the -1 blindly ----------------------------------------
def test_a_lost_answer_on_the_plus_one_sends_no_minus_one_and_the_next_push_settles_it(run, shop, tmp_path):
    description = shop.bricklink.get_lot(BL_LOT).to_json()["description"]
    shop.inject("bricklink", "PUT /inventories/{id}", "applied_reset", times=1)
    puts = shop.calls[("bricklink", "PUT /inventories/{id}")]
    capture_path = tmp_path / "lost.json"
    result = probe(run, "bricklink", "--yes", "--save", capture_path)
    assert result.exit_code == 1
    assert shop.calls[("bricklink", "PUT /inventories/{id}")] == puts + 1  # the +1 only
    assert shop.bricklink.get_lot(BL_LOT).quantity == 21  # it landed; nobody knows for sure
    assert journal("bricklink") == [(1, "unknown")]
    assert confirmed_figure("bricklink") == 20
    assert "answer: none" in result.stdout and "no answer" in result.stdout and "sync --push" in result.stdout
    saved = json.loads(capture_path.read_text())
    assert saved["ok"] is False and saved["exchanges"][1]["response"] is None
    assert [s["journal_state"] for s in saved["steps"]] == ["unknown"]
    assert_no_secret(shop, result.stdout, result.stderr, capture_path.read_text())

    again = probe(run, "bricklink", "--yes")  # an open change: refused until a push settles it
    refused_with_nothing_sent(shop, again, "bricklink", "no known outcome")

    push(run)
    assert listed(shop) == (20, 20) and held() == []
    assert journal("bricklink") == [(1, "applied"), (-1, "applied")]
    assert shop.bricklink.get_lot(BL_LOT).to_json()["description"] == description


def test_a_refused_plus_one_stops_and_the_echoed_key_is_masked(run, shop, tmp_path):
    key = shop.brickowl.api_key
    shop.inject("brickowl", "POST /inventory/update", "error_string", message=f"Lot locked for {key}")
    capture_path = tmp_path / "refused.json"
    sent = len(writes(shop, "brickowl"))
    result = probe(run, "brickowl", "--yes", "--save", capture_path)
    assert result.exit_code == 1
    assert [w["relative_quantity"] for w in writes(shop, "brickowl")[sent:]] == ["1"]  # no -1 after a refusal
    assert journal("brickowl") == [(1, "refused")]
    assert shop.brickowl.get_lot(BO_LOT).qty == 20
    assert "Lot locked for ***" in result.stdout and "refused by brickowl" in result.stdout
    assert "Nothing changed on the lot" in result.stdout
    assert_no_secret(shop, result.stdout, result.stderr, capture_path.read_text())
    assert "Lot locked for ***" in json.loads(capture_path.read_text())["exchanges"][1]["response"]["body"]


def test_an_adapter_that_misreads_a_refusal_as_applied_is_caught_by_the_read_back(run, shop, monkeypatch):
    """The probe's reason to exist: a lenient reading (anything without a code counted as applied)
    is shown for what it is, and the change stays open instead of confirmed."""
    original = BrickOwl.change_quantities

    def lenient(self, changes):
        return [ChangeResult(r.remote_lot_id, Outcome.APPLIED) for r in original(self, changes)]

    monkeypatch.setattr(BrickOwl, "change_quantities", lenient)
    shop.inject("brickowl", "POST /inventory/update", "error_string", message="Lot locked")
    result = probe(run, "brickowl", "--yes")
    assert result.exit_code == 1
    assert "NOT read right" in result.stdout and "lot shows 20 where 21 was expected" in result.stdout
    assert [w["relative_quantity"] for w in writes(shop, "brickowl")] == ["1"]  # no -1 sent
    assert journal("brickowl") == [(1, "unknown")] and confirmed_figure("brickowl") == 20
    push(run)
    assert journal("brickowl") == [(1, "maybe_late")]  # read as not applied; it may still land late for a while
    assert listed(shop) == (20, 20) and held() == []


def test_a_save_path_that_cannot_be_written_is_refused_before_anything_is_sent(run, shop, tmp_path):
    calls = sum(shop.calls.values())
    result = probe(run, "bricklink", "--yes", "--save", tmp_path / "missing" / "probe.json")
    assert result.exit_code == 2 and "--save" in result.stderr and "nothing sent" in result.stderr
    assert sum(shop.calls.values()) == calls and journal("bricklink") == []


def test_the_recorder_masks_the_key_wherever_it_travels():
    """The first of the layers (the report and the file are masked again): query, form, JSON
    body and the answer's body and headers."""
    import requests

    from marketsync.app.probe import Recorder
    from marketsync.providers.http import Exchange

    secret = "D466D25B7EB6289EDA4FCC0D9C26C1EB"
    answer = requests.Response()
    answer.status_code, answer._content = 400, f'{{"error": "bad key {secret}", "url": "/x?key={secret}"}}'.encode()
    answer.headers["Content-Type"] = "application/json"
    answer.headers["Set-Cookie"] = f"session={secret}"
    recorder = Recorder((secret,))
    recorder(Exchange("POST", "/inventory/update", {"key": "other-key-value"}, {"note": f"x {secret}"},
                      {"lot_id": "1", "key": "yet-another"}, answer))
    recorder(Exchange("GET", "/inventory/list", {"lot_id": "1", "key": secret}, None, None, None))
    text = json.dumps(recorder.exchanges)
    for value in (secret, "other-key-value", "yet-another"):
        assert value not in text
    first = recorder.exchanges[0]
    assert first["request"]["query"] == {"key": "***"} and first["request"]["form"] == {"lot_id": "1", "key": "***"}
    assert first["response"]["status"] == 400 and "Set-Cookie" not in first["response"]["headers"]
    assert first["response"]["body"] == '{"error": "bad key ***", "url": "/x?key=***"}'
    assert recorder.exchanges[1]["response"] is None
