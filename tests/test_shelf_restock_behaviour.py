"""Whether a marketplace puts a cancelled order's pieces back on the listing (undocumented: the
sandbox's ``restock_on_cancel`` switch) is a per-marketplace fact: the seller's setting, else
learned from a read only one behaviour explains, else unknown -- and then adopt and pull ask
instead of guessing (docs/stock-model.md, defects D and F of "The proof"). Through the real CLI
against the sandbox, under both values of the switch."""

from __future__ import annotations

import json
import sqlite3

import pytest

from test_shelf_scenarios import BL_LOT, BO_LOT, bl_order, bo_order, held, listed, lot_row, onboard, push, shop

__all__ = ["shop"]  # the fixture, shared with tests/test_shelf_scenarios.py

VAR = {"bricklink": "MARKETSYNC_BRICKLINK_CANCEL_RESTOCKS", "brickowl": "MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS"}
CANCELLED = {"bricklink": "CANCELLED", "brickowl": "Cancelled"}
TITLE = {"bricklink": "BrickLink", "brickowl": "BrickOwl"}
BOTH = pytest.mark.parametrize("provider,restocks", [("brickowl", False), ("brickowl", True),
                                                     ("bricklink", False), ("bricklink", True)])


def store(sb, provider: str):
    return sb.bricklink if provider == "bricklink" else sb.brickowl


def remote(provider: str) -> str:
    return str(BL_LOT) if provider == "bricklink" else BO_LOT


def order(sb, provider: str, pieces: int) -> str:
    return str(bl_order(sb, pieces) if provider == "bricklink" else bo_order(sb, pieces))


def cancel(sb, provider: str, order_id: str) -> None:
    store(sb, provider).set_status(int(order_id) if provider == "bricklink" else order_id, CANCELLED[provider])


def shows(sb, provider: str) -> int:
    figure = listed(sb)[0 if provider == "bricklink" else 1]
    assert figure is not None
    return figure


def edit(sb, provider: str, change: int) -> None:
    """The seller changes the bin by ``change`` and the listing with it, on the marketplace's website."""
    lot_id = BL_LOT if provider == "bricklink" else BO_LOT
    store(sb, provider).set_lot_quantity(lot_id, shows(sb, provider) + change)


def cancelled_order(sb, provider: str, restocks: bool, pieces: int = 2) -> str:
    """A buyer orders ``pieces`` and the order is cancelled; the store puts them back or not."""
    store(sb, provider).restock_on_cancel = restocks
    before = shows(sb, provider)
    order_id = order(sb, provider, pieces)
    cancel(sb, provider, order_id)
    assert shows(sb, provider) == (before if restocks else before - pieces)
    return order_id


def pushed(run, env: dict | None = None):
    result = run("sync", "--push", env=env)
    assert result.exit_code == 0, result.stderr
    return result


def setting(provider: str, restocks: bool) -> dict[str, str]:
    return {VAR[provider]: "yes" if restocks else "no"}


def learned_row(provider: str) -> tuple | None:
    with sqlite3.connect("marketsync.db") as conn:
        return conn.execute("select restocks, order_id, remote_lot_id from _cancel_restocks where provider = ?",
                            [provider]).fetchone()


def status_row(run, provider: str, env: dict | None = None) -> dict:
    result = run("status", "--json", env=env)
    return {row["provider"]: row for row in json.loads(result.stdout)["providers"]}[provider]


# --- D: a seller's edit after a cancellation, with the behaviour set -------------------------------------
@BOTH
def test_the_setting_tells_a_sellers_edit_from_a_restock(run, shop, provider, restocks):
    """Listing 20, a buyer orders 2 and cancels, the store restocks or not, the seller changes the
    listing by exactly those 2 pieces (adds 2 where the store does not restock -- which reads as
    the restock; takes 2 where it does -- which reads as no restock). With the setting the figure is
    the seller's: held, adopted, and on hand follows the shelf."""
    onboard(run, shop)
    env = setting(provider, restocks)
    cancelled_order(shop, provider, restocks)
    change = -2 if restocks else 2
    edit(shop, provider, change)
    result = pushed(run, env)
    assert held() == [(provider, remote(provider))] and "held" in result.stderr
    adopt = run("stock", "adopt", f"{provider}:{remote(provider)}", env=env)
    assert adopt.exit_code == 0, adopt.stderr
    assert lot_row() == (20 + change, 0)
    pushed(run, env)
    assert listed(shop) == (20 + change, 20 + change) and held() == []


# --- learning -----------------------------------------------------------------------------------------
@BOTH
def test_a_read_only_one_behaviour_explains_teaches_it_once_and_then_settles_d(run, shop, provider, restocks):
    onboard(run, shop)
    first = cancelled_order(shop, provider, restocks)
    result = push(run)
    said = (f"learned: {TITLE[provider]} {'restocks' if restocks else 'does not restock'} cancelled orders "
            f"(order {first}, lot {remote(provider)}); set {VAR[provider]} if wrong")
    assert said in result.stderr
    assert learned_row(provider) == (int(restocks), first, remote(provider))
    assert "learned:" not in push(run).stderr  # said once
    row = status_row(run, provider)
    assert (row["cancel_restocks"], row["cancel_restocks_source"], row["cancel_restocks_order"]) == (
        restocks, "learned", first)
    assert lot_row() == (20, 0) and listed(shop) == (20, 20)
    # D, now that the behaviour is known: the same history is the seller's edit, not the restock
    cancelled_order(shop, provider, restocks, pieces=3)
    change = -3 if restocks else 3
    edit(shop, provider, change)
    push(run)
    assert held() == [(provider, remote(provider))]
    assert run("stock", "adopt", f"{provider}:{remote(provider)}").exit_code == 0
    push(run)
    assert lot_row() == (20 + change, 0) and listed(shop) == (20 + change, 20 + change) and held() == []


def test_a_figure_both_behaviours_give_teaches_nothing(run, shop):
    onboard(run, shop)
    shop.brickowl.restock_on_cancel = False
    order_id = bo_order(shop, 2)
    push(run)  # the order is seen open: 18 everywhere
    shop.brickowl.set_status(order_id, "Cancelled")  # not restocked: still 18
    shop.brickowl.set_lot_quantity(BO_LOT, 19)  # and the seller adds 1: neither 18 nor 20
    result = push(run)
    assert learned_row("brickowl") is None and "learned:" not in result.stderr
    assert held() == [("brickowl", BO_LOT)]


def test_a_contradiction_of_what_was_learned_is_held_and_reported_not_flipped(run, shop):
    onboard(run, shop)
    first = cancelled_order(shop, "brickowl", restocks=False)
    push(run)
    assert learned_row("brickowl") == (0, first, BO_LOT)
    cancelled_order(shop, "brickowl", restocks=True, pieces=3)  # the store now behaves the other way
    result = push(run)
    assert held() == [("brickowl", BO_LOT)]
    assert (f"learned from order {first} (lot {BO_LOT}) that it does not" in result.stderr
            and "MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS=yes" in result.stderr), result.stderr
    assert learned_row("brickowl") == (0, first, BO_LOT)  # not flipped
    # the seller says so: the figure is explained, the hold clears by itself, nothing is lost
    fixed = run("sync", "--push", env={"MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS": "yes"})
    assert fixed.exit_code == 0 and held() == [] and lot_row() == (20, 0) and listed(shop) == (20, 20)
    assert status_row(run, "brickowl", env={"MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS": "yes"})["cancel_restocks_source"] \
        == "setting"


# --- unknown: adopt and pull ask -----------------------------------------------------------------------
@BOTH
def test_adopt_asks_for_the_setting_where_only_the_behaviour_tells_the_sellers_part(run, shop, provider, restocks):
    """D exactly, before any run has read the listing since the cancellation: adopt refuses in one
    line naming the setting and changes nothing; with the setting it adopts the right part."""
    onboard(run, shop)
    cancelled_order(shop, provider, restocks)
    change = -2 if restocks else 2
    edit(shop, provider, change)
    refused = run("stock", "adopt", f"{provider}:{remote(provider)}")
    assert refused.exit_code != 0
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and VAR[provider] in lines[0] and "cannot be told" in lines[0], refused.stderr
    assert lot_row() == (20, 0) and learned_row(provider) is None
    adopt = run("stock", "adopt", f"{provider}:{remote(provider)}", env=setting(provider, restocks))
    assert adopt.exit_code == 0, adopt.stderr
    assert lot_row() == (20 + change, 0)
    pushed(run, setting(provider, restocks))
    assert listed(shop) == (20 + change, 20 + change) and held() == []


def test_pull_asks_too_and_moves_nothing_until_told(run, shop):
    onboard(run, shop)
    cancelled_order(shop, "brickowl", restocks=False)
    shop.brickowl.set_lot_quantity(BO_LOT, 21)  # the seller adds 3: 18 + 3
    result = run("inventory", "pull", "--provider", "brickowl")
    assert result.exit_code == 0
    assert f"brickowl lot {BO_LOT} shows 21" in result.stderr and "MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS" in result.stderr
    assert lot_row() == (20, 0)
    told = run("inventory", "pull", "--provider", "brickowl", env={"MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS": "no"})
    assert told.exit_code == 0, told.stderr
    assert lot_row() == (23, 0)


def test_pull_learns_from_a_figure_only_one_behaviour_explains(run, shop):
    onboard(run, shop)
    order_id = cancelled_order(shop, "bricklink", restocks=True)
    result = run("inventory", "pull", "--provider", "bricklink")
    assert result.exit_code == 0
    assert f"learned: BrickLink restocks cancelled orders (order {order_id}, lot {BL_LOT})" in result.stderr
    assert learned_row("bricklink") == (1, order_id, str(BL_LOT)) and lot_row() == (20, 0)


# --- the setting itself ----------------------------------------------------------------------------------
def test_the_setting_is_an_option_with_its_variable_and_wins_over_what_was_learned(run, shop):
    for command in (["sync"], ["stock", "adopt"], ["inventory", "pull"], ["status"]):
        shown = run(*command, "--help").stdout
        assert "MARKETSYNC_BRICKLINK_CANCEL_RESTOCKS" in shown and "MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS" in shown
    onboard(run, shop)
    cancelled_order(shop, "brickowl", restocks=False)
    push(run)
    assert status_row(run, "brickowl")["cancel_restocks"] is False
    row = status_row(run, "brickowl", env={"MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS": "yes"})
    assert (row["cancel_restocks"], row["cancel_restocks_source"]) == (True, "setting")
    table = run("status").stdout
    assert "BrickOwl does not put a cancelled order's pieces back" in table
    assert "BrickLink: whether it restocks cancelled orders is not known yet" in table
    bad = run("sync", env={"MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS": "maybe"})
    assert bad.exit_code == 2 and "MARKETSYNC_BRICKOWL_CANCEL_RESTOCKS" in bad.stderr
