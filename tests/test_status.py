"""`marketsync status`: the health of each marketplace, for people (table) and monitoring (exit code, JSON)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from test_sync_lifecycle import STOCK, BrickLinkMarket, BrickOwlMarket, Shop

DB = "marketsync.db"
KEYS = {
    "provider", "last_synced_at", "last_attempt_at", "last_error", "last_error_at", "last_run_calls", "calls_today",
    "open_orders", "unmatched_open_lines", "configured", "daily_budget",
    "listener_seen_at", "last_hint_at", "last_hint", "last_hint_sync_at",  # marketsync listen
    "cancel_restocks", "cancel_restocks_source", "cancel_restocks_order", "cancel_restocks_lot",  # docs/stock-model.md
}


@pytest.fixture
def shop(creds, run, tmp_path):
    shop = Shop(creds, run, tmp_path)
    shop.import_lots(*STOCK)
    return shop


def status(run, *args: str) -> tuple[int, dict, str]:
    result = run("status", "--json", *args)
    return result.exit_code, json.loads(result.stdout), result.stderr


def set_last_synced(provider: str, minutes_ago: float) -> None:
    when = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with sqlite3.connect(DB) as conn:
        conn.execute("update sync_state set last_synced_at = ? where provider = ?", [when, provider])


def test_json_report_after_a_sync(shop, creds, run):
    bl, bo = BrickLinkMarket(creds), BrickOwlMarket(creds)
    bl.add_order("paid", [("3001", 11, 3, "A1"), ("3626", 11, 1)])
    bl.add_order("shipped", [("3626", 11, 1)])  # closed: its unmatched line is no problem
    bo.add_order("pending", [("3004", 1, 2, "C1")])
    bo.add_order("paid", [("3004", 1, 9, "C1")])  # 11 reserved on 8: oversold
    shop.sync()

    code, report, stderr = status(run)

    assert (code, stderr) == (0, "")
    assert set(report) == {"providers", "oversold_lots", "oversell_window", "problems"}
    assert report["problems"] == []
    providers = {row["provider"]: row for row in report["providers"]}
    assert list(providers) == ["bricklink", "brickowl"]
    assert all(set(row) == KEYS for row in providers.values())
    bl_row, bo_row = providers["bricklink"], providers["brickowl"]
    assert bl_row["last_synced_at"] and bl_row["last_synced_at"].endswith("Z")
    assert bl_row["last_error"] is None and bl_row["configured"] is True
    assert (bl_row["open_orders"], bl_row["unmatched_open_lines"]) == (1, 1)
    assert (bo_row["open_orders"], bo_row["unmatched_open_lines"]) == (2, 0)
    assert (bl_row["last_run_calls"], bl_row["calls_today"], bl_row["daily_budget"]) == (4, 4, 5000)
    assert (bo_row["last_run_calls"], bo_row["calls_today"], bo_row["daily_budget"]) == (5, 5, None)
    assert [(lot["location"], lot["quantity"], lot["quantity_reserved"]) for lot in report["oversold_lots"]] == [
        ("C1", 8, 11)
    ]

    creds.reset_calls()
    shop.sync()
    _, report, _ = status(run)
    assert [row["calls_today"] for row in report["providers"]] == [5, 6]
    assert [row["last_run_calls"] for row in report["providers"]] == [1, 1]


def test_table_report(shop, run):
    shop.sync()
    result = run("status")
    assert result.exit_code == 0, result.output
    assert "bricklink" in result.stdout and "brickowl" in result.stdout
    assert "/ 5000" in result.stdout  # BrickLink calls against the daily budget


def test_failed_provider_sync_makes_status_fail_until_a_sync_succeeds(shop, creds, run):
    shop.sync()
    creds.inject("bricklink", "GET /orders", "auth_in_200")
    shop.sync(code=1)

    code, report, stderr = status(run)

    assert code == 1
    (problem,) = report["problems"]
    assert problem.startswith("bricklink: last sync failed: bricklink: GET /orders refused")
    assert stderr.splitlines() == [problem]
    bl_row, bo_row = report["providers"]
    assert "SIGNATURE_INVALID" in bl_row["last_error"] and bl_row["last_error_at"]
    assert bo_row["last_error"] is None
    table = run("status")
    assert table.exit_code == 1 and "SIGNATURE_INVALID" in table.stdout

    shop.sync()
    code, report, stderr = status(run)
    assert (code, report["problems"], stderr) == (0, [], "")
    assert report["providers"][0]["last_error"] is None


def test_first_sync_failing_is_unhealthy(shop, creds, run):
    creds.inject("brickowl", "GET /order/list", "error_string", message="Invalid API key")
    shop.sync(code=1)
    code, report, _ = status(run)
    assert code == 1
    assert [p.split(":")[0] for p in report["problems"]] == ["brickowl"]
    assert report["providers"][1]["last_synced_at"] is None


def test_max_age(shop, run, monkeypatch):
    shop.sync()
    assert status(run, "--max-age", "15")[0] == 0

    set_last_synced("brickowl", 20)
    code, report, stderr = status(run, "--max-age", "15")
    assert code == 1
    assert report["problems"] == ["brickowl: no successful sync in the last 15 minutes"]
    assert stderr == "brickowl: no successful sync in the last 15 minutes\n"
    assert status(run, "--max-age", "30")[0] == 0
    assert status(run)[0] == 0  # without --max-age an old sync is no failure

    monkeypatch.setenv("MARKETSYNC_MAX_AGE", "15")
    assert status(run)[0] == 1
    shop.sync()
    assert status(run)[0] == 0


def test_max_age_counts_a_configured_provider_that_never_synced(shop, run):
    shop.sync("--provider", "bricklink")
    code, report, _ = status(run, "--max-age", "60")
    assert code == 1
    assert report["problems"] == ["brickowl: no successful sync in the last 60 minutes"]


def test_max_age_ignores_marketplaces_without_credentials(shop, run, monkeypatch):
    shop.sync("--provider", "bricklink")
    monkeypatch.delenv("BRICKOWL_API_KEY")
    code, report, _ = status(run, "--max-age", "60")
    assert code == 0
    assert [row["provider"] for row in report["providers"]] == ["bricklink"]


def test_status_without_a_database_fails_clearly(creds, run):
    result = run("status")
    assert result.exit_code == 1
    assert "does not exist" in result.stderr and len(result.stderr.splitlines()) == 1


def test_status_off_a_terminal_as_cron_runs_it(shop, proc):
    shop.sync()
    result = proc("status", "--max-age", "60")
    assert result.returncode == 0 and result.stderr == ""
    set_last_synced("bricklink", 90)
    result = proc("status", "--max-age", "60")
    assert result.returncode == 1
    assert result.stderr == "bricklink: no successful sync in the last 60 minutes\n"


def test_a_lost_credential_is_loud_in_sync_and_status(run, creds, monkeypatch):
    """Remove BRICKOWL_API_KEY while BrickOwl orders are open in the database: sync says so and
    fails, status keeps the row and fails --max-age; a marketplace never set up stays silent."""
    creds.brickowl.add_order("Payment Received", lines=[{"boid": "771344-38", "ordered_quantity": 1}])
    assert run("sync").exit_code == 0
    monkeypatch.delenv("BRICKOWL_API_KEY")
    result = run("sync")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "brickowl: not configured (no credentials), but the database holds its orders (1 open); it was not synced"]
    status = run("status", "--json", "--max-age", "60")
    assert status.exit_code == 1
    rows = {r["provider"]: r for r in json.loads(status.stdout)["providers"]}
    assert rows["brickowl"]["configured"] is False and rows["bricklink"]["configured"] is True
    assert "brickowl: not configured" in status.stderr
    monkeypatch.delenv("BRICKLINK_CONSUMER_KEY")
    for name in ("BRICKLINK_CONSUMER_SECRET", "BRICKLINK_TOKEN_VALUE", "BRICKLINK_TOKEN_SECRET"):
        monkeypatch.delenv(name)
    nothing = run("sync")
    assert nothing.exit_code == 2 and "has synced bricklink, brickowl before" in nothing.stderr


def test_a_marketplace_never_set_up_stays_silent(run, creds, monkeypatch):
    monkeypatch.delenv("BRICKOWL_API_KEY")
    assert run("sync").exit_code == 0
    result = run("sync")
    assert result.exit_code == 0 and result.stderr == ""
    assert run("status", "--max-age", "60").exit_code == 0
