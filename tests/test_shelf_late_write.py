"""Defect G of the shelf-truth proof (docs/stock-model.md, "The proof"): a write whose answer was lost,
read back as not applied, sent again -- and then applied late by the marketplace (it sat in a queue).

Through the real CLI against the sandbox's ``late`` fault (docs/sandbox-rules.md, "Faults": a write
applied after the client gave up and read the lot back), on each marketplace: the late landing is
explained by marketsync's own given-up change ("maybe late"), nothing is held, the next push corrects
the listing, on hand never moves, and no write is ever sent blindly."""

from __future__ import annotations

import sqlite3

import pytest

import test_shelf_scenarios as scenarios
from test_shelf_scenarios import BL_LOT, bl_order, bo_order, held, listed, lot_row, onboard, push

shop = scenarios.shop  # the scenario tests' shop: one part in bin A1, listed 20 on both marketplaces

WRITES = {"bricklink": [("bricklink", "PUT /inventories/{id}")],
          "brickowl": [("brickowl", "POST /inventory/update"), ("brickowl", "POST /bulk/batch")]}


def journal(provider: str) -> list[tuple[int, str]]:
    with sqlite3.connect("marketsync.db") as conn:
        return conn.execute("select delta, state from _listing_changes where provider = ? order by id",
                            [provider]).fetchall()


def writes(sb, provider: str) -> int:
    return sum(sb.calls[call] for call in WRITES[provider])


def on(provider: str, pair: tuple[int | None, int | None]) -> int | None:
    return pair[0] if provider == "bricklink" else pair[1]


def sell_elsewhere(sb, provider: str, pieces: int) -> None:
    """A buyer on the other marketplace: marketsync must lower ``provider``'s listing."""
    if provider == "bricklink":
        bo_order(sb, pieces)
    else:
        bl_order(sb, pieces)


def given_up_then_sent_again(run, sb, provider: str) -> None:
    """20 listed, 3 sold on the other marketplace: the -3 is held back by the marketplace (its answer
    lost), read back as 20 (open), read as 20 again by the next run (not applied: maybe late) and sent
    again; then the first -3 lands late."""
    onboard(run, sb)
    sell_elsewhere(sb, provider, 3)
    sb.inject(provider, "*" if provider == "brickowl" else "PUT /inventories/{id}", "late", times=1)
    run("sync", "--push")
    sb.clear_faults()
    assert on(provider, listed(sb)) == 20 and journal(provider) == [(-3, "unknown")]
    push(run)  # read back first: still 20, so the -3 did not land (yet); the change is sent again
    assert on(provider, listed(sb)) == 17 and journal(provider) == [(-3, "maybe_late"), (-3, "applied")]
    assert held() == []
    sb.apply_late_writes()  # the first -3 sat in the marketplace's queue
    assert on(provider, listed(sb)) == 14


@pytest.mark.parametrize("provider", ["bricklink", "brickowl"])
def test_a_given_up_write_that_lands_late_is_explained_and_corrected_not_held(run, shop, provider):
    given_up_then_sent_again(run, shop, provider)
    result = push(run)
    assert held() == [] and "held" not in result.stderr
    assert listed(shop) == (17, 17) and lot_row() == (20, 3)
    assert journal(provider) == [(-3, "applied"), (-3, "applied"), (3, "applied")]
    shop.reset_calls()
    push(run)  # settled: nothing more to send
    assert writes(shop, provider) == 0 and listed(shop) == (17, 17) and held() == []


def test_a_pull_after_a_late_landing_keeps_on_hand(run, shop):
    given_up_then_sent_again(run, shop, "bricklink")
    pulled = run("inventory", "pull", "--provider", "bricklink")
    assert pulled.exit_code == 0, pulled.stderr
    assert lot_row() == (20, 3)  # marketsync's own change, late: not the seller's edit
    push(run)
    assert listed(shop) == (17, 17) and lot_row() == (20, 3) and held() == []


def test_a_given_up_write_becomes_final_after_enough_reads_and_time(run, shop):
    given_up_then_sent_again_without_landing(run, shop)
    for _ in range(2):  # two more reads that do not show it: still within the hour after it was sent
        push(run)
    assert journal("bricklink") == [(-3, "maybe_late"), (-3, "applied")]
    with sqlite3.connect("marketsync.db") as conn:  # the clock: it was sent more than an hour ago
        conn.execute("update _listing_changes set created_at = '2000-01-01T00:00:00Z' where state = 'maybe_late'")
    push(run)
    assert journal("bricklink") == [(-3, "not_applied"), (-3, "applied")]
    assert listed(shop) == (17, 17) and held() == []


def given_up_then_sent_again_without_landing(run, sb) -> None:
    onboard(run, sb)
    bo_order(sb, 3)
    sb.inject("bricklink", "PUT /inventories/{id}", "500", times=1)  # not applied, the answer lost
    run("sync", "--push")
    sb.clear_faults()
    push(run)
    assert listed(sb) == (17, 17) and journal("bricklink") == [(-3, "maybe_late"), (-3, "applied")]


def test_an_override_leaves_a_given_up_write_a_candidate_so_its_late_landing_is_not_held(run, shop):
    onboard(run, shop)
    sell_elsewhere(shop, "bricklink", 3)
    shop.inject("bricklink", "PUT /inventories/{id}", "late", times=1)
    run("sync", "--push")
    shop.clear_faults()
    push(run)  # read back: not landed, maybe late; sent again
    shop.bricklink.set_lot_quantity(BL_LOT, 18)  # meanwhile the seller edits: 17 + 1
    push(run)
    assert held() == [("bricklink", str(BL_LOT))]
    assert run("stock", "override", f"bricklink:{BL_LOT}").exit_code == 0  # not the seller's: push ours
    push(run)
    assert listed(shop)[0] == 17 and held() == []
    shop.apply_late_writes()  # the first -3 lands after all: 14
    push(run)
    assert held() == [] and listed(shop) == (17, 17) and lot_row() == (20, 3)

