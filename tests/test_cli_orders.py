"""`marketsync orders` and `orders show` over a database filled by a real sync.

The module fixture imports the demo seller's inventory and runs the real `sync` command against
the seeded sandbox marketplaces (30 orders each, every status, unmatched lines, an oversold
lot) once; every test then reads that file through the real CLI.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re

import pytest
from click.testing import CliRunner

from marketsync.cli import cli
from marketsync.model import OPEN_STATUSES, STATUSES
from marketsync.store.queries import ORDER_FIELDS
from marketsync.sandbox import Sandbox, write_demo_inventory_csv
from support import one_line_error

CONFIG_PREFIXES = ("MARKETSYNC_", "BRICKLINK_", "BRICKOWL_")
TABLE_ROW = re.compile(r"^│\s*(bricklink|brickowl)\s*│\s*(\d+)\s*│", re.M)


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """A database filled by `inventory import` + `sync` against the demo sandbox, via the real CLI."""
    home = tmp_path_factory.mktemp("synced")
    db = home / "shop.db"
    write_demo_inventory_csv(home / "stock.csv")
    with Sandbox(demo=True) as sandbox:
        sandbox.brickowl.rate_limit = None
        env = {name: None for name in os.environ if name.startswith(CONFIG_PREFIXES)}
        env.update(sandbox.env(), MARKETSYNC_RETRY_BACKOFF="0.01", BRICKOWL_RATE_LIMIT="1000000")
        cwd = os.getcwd()
        os.chdir(home)  # no stray .env from wherever pytest was started
        try:
            runner = CliRunner()
            for args in (["inventory", "import", "stock.csv"], ["sync"]):
                result = runner.invoke(cli, [*args, "--db", str(db)], env=env, catch_exceptions=False)
                assert result.exit_code == 0, result.stderr
        finally:
            os.chdir(cwd)
    return db


@pytest.fixture
def orders(run, synced):
    """``orders(*args)`` -> the parsed ``orders --json`` list."""

    def query(*args):
        result = run("orders", "--json", "--db", synced, *args)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    return query


@pytest.fixture
def every(orders):
    return orders()


def keys(rows):
    return [(r["provider"], r["order_id"]) for r in rows]


# --- the listing in every format ------------------------------------------------------------
def test_json_lists_every_order_of_both_marketplaces_newest_first(every):
    assert len(every) == 60
    assert sum(r["provider"] == "bricklink" for r in every) == 30
    assert sum(r["provider"] == "brickowl" for r in every) == 30
    assert len(set(keys(every))) == 60
    for row in every:
        assert set(row) == set(ORDER_FIELDS)
        assert row["status"] in STATUSES and row["order_id"]
    dates = [r["date_ordered"] for r in every]
    assert dates == sorted(dates, reverse=True)
    assert {"pending", "paid", "processing", "packed", "shipped", "completed", "cancelled", "disputed"} <= {
        r["status"] for r in every}
    assert any(r["unmatched_lines"] for r in every)


def test_table_shows_the_same_orders_in_the_same_order(run, synced, every):
    result = run("orders", "--db", synced)
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[1]
    positions = [header.index(name) for name in
                 ("Provider", "Order", "Date (UTC)", "Buyer", "Status", "Lots", "Pieces", "Total", "Unmatched")]
    assert positions == sorted(positions)
    assert TABLE_ROW.findall(result.stdout) == keys(every)
    newest = every[0]
    row = next(line for line in result.stdout.splitlines() if f" {newest['order_id']} " in line)
    assert newest["date_ordered"][:16].replace("T", " ") in row and newest["status"] in row
    unmatched = next(r for r in every if r["unmatched_lines"])
    row = next(line for line in result.stdout.splitlines() if f" {unmatched['order_id']} " in line)
    assert row.rstrip(" │").endswith(str(unmatched["unmatched_lines"]))


def test_csv_parses_back_to_the_json_rows(run, synced, every):
    result = run("orders", "--csv", "--db", synced)
    assert result.exit_code == 0, result.stderr
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert tuple(reader.fieldnames) == ORDER_FIELDS
    assert list(reader) == [{k: "" if v is None else str(v) for k, v in row.items()} for row in every]


def test_an_empty_database_lists_no_orders_in_every_format(run, tmp_path):
    (tmp_path / "stock.csv").write_text("part_number,color_id,condition,location,quantity\n3001,5,new,A,1\n")
    assert run("inventory", "import", "stock.csv").exit_code == 0
    assert json.loads(run("orders", "--json").stdout) == []
    assert run("orders", "--csv").stdout == ",".join(ORDER_FIELDS) + "\n"
    table = run("orders")
    assert table.exit_code == 0 and "No orders yet" in table.stdout


# --- filters --------------------------------------------------------------------------------
def test_provider_filter(orders, every):
    rows = orders("--provider", "brickowl")
    assert rows == [r for r in every if r["provider"] == "brickowl"] and len(rows) == 30
    assert orders("-p", "BrickLink") == [r for r in every if r["provider"] == "bricklink"]
    assert orders("-p", "bricklink", "-p", "brickowl") == every


def test_status_filter(orders, every):
    paid = orders("--status", "paid")
    assert paid == [r for r in every if r["status"] == "paid"] and paid
    assert orders("--status", "PAID", "--status", "shipped") == [r for r in every if r["status"] in ("paid", "shipped")]


def test_open_filter_returns_only_orders_whose_stock_is_reserved(orders, every):
    rows = orders("--open")
    assert rows == [r for r in every if r["status"] in OPEN_STATUSES]
    assert rows and len(rows) < len(every)
    assert not {r["status"] for r in rows} & {"shipped", "completed", "cancelled"}


def test_since_a_date(orders, every):
    cutoff = every[len(every) // 2]["date_ordered"][:10]  # a day in the middle of the history
    rows = orders("--since", cutoff)
    assert rows == [r for r in every if r["date_ordered"] >= cutoff + "T00:00:00Z"]
    assert 0 < len(rows) < len(every)
    assert orders("--since", f"{cutoff}T00:00:00Z") == rows


def test_since_an_age(orders, every):
    def cutoff(margin_minutes):
        moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=7, minutes=margin_minutes)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    newest_allowed = cutoff(-1)
    rows = orders("--since", "7d")
    oldest_allowed = cutoff(1)
    assert 0 < len(rows) < len(every)
    assert all(r["date_ordered"] >= oldest_allowed for r in rows)
    assert set(keys(r for r in every if r["date_ordered"] >= newest_allowed)) <= set(keys(rows))
    in_hours = orders("--since", "168h")
    assert set(keys(r for r in every if r["date_ordered"] >= newest_allowed)) <= set(keys(in_hours))
    assert all(r["date_ordered"] >= oldest_allowed for r in in_hours)


def test_filters_combine_and_limit_keeps_the_newest(orders, every):
    rows = orders("--provider", "bricklink", "--open")
    assert rows == [r for r in every if r["provider"] == "bricklink" and r["status"] in OPEN_STATUSES] and rows
    assert orders("--limit", "5") == every[:5]
    assert orders("-n", "0") == every


@pytest.mark.parametrize("args", [
    ("--provider", "ebay"),
    ("--status", "lost"),
    ("--since", "last tuesday"),
    ("--since", "7y"),
    ("--limit", "-1"),
])
def test_bad_filters_are_usage_errors(run, synced, args):
    message = one_line_error(run("orders", "--db", synced, *args), 2)
    assert args[1] in message


# --- one order ------------------------------------------------------------------------------
def show(run, synced, ref, *args):
    result = run("orders", "show", ref, "--db", synced, *args)
    assert result.exit_code == 0, result.stderr
    return result


def test_unmatched_count_agrees_with_the_order_lines(run, synced, every):
    with_unmatched = [r for r in every if r["unmatched_lines"]]
    assert with_unmatched
    for row in with_unmatched + [r for r in every if not r["unmatched_lines"]][:5]:
        detail = json.loads(show(run, synced, f"{row['provider']}:{row['order_id']}", "--json").stdout)
        unmatched = [line for line in detail["lines"] if line["inventory_id"] is None]
        assert len(unmatched) == row["unmatched_lines"]
        assert all(line["unmatched_reason"] for line in unmatched)
        assert len(detail["lines"]) == row["lot_count"]


def test_show_lists_the_bin_to_pick_from_and_why_a_line_is_unmatched(run, synced, every):
    lots = {lot["id"]: lot for lot in json.loads(run("inventory", "list", "--json", "--db", synced).stdout)}
    row = next(r for r in every if r["unmatched_lines"] and r["lot_count"] > 2)
    ref = f"{row['provider']}:{row['order_id']}"
    detail = json.loads(show(run, synced, ref, "--json").stdout)
    matched = [line for line in detail["lines"] if line["inventory_id"] is not None]
    assert matched
    for line in matched:
        assert line["location"] == lots[line["inventory_id"]]["location"] != ""

    table = show(run, synced, ref).stdout
    assert table.splitlines()[0].startswith(f"{row['provider']} order {row['order_id']}")
    assert row["status"] in table.splitlines()[0]
    rows = re.findall(r"^│ (\S+)\s+│ (\S+)\s+│", table, re.M)
    for line in matched:
        assert (line["location"], line["part_number"]) in rows
    flat = " ".join(re.sub(r"[│\s]+", " ", table).split())
    for line in detail["lines"]:
        if line["inventory_id"] is None:
            assert "Unmatched because" in flat  # the reasons have their own column, not the numeric Lot one
            assert all(word in flat for word in line["unmatched_reason"].split())


def test_show_csv_is_the_lines(run, synced, every):
    row = every[0]
    result = show(run, synced, f"{row['provider']}:{row['order_id']}", "--csv")
    lines = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(lines) == row["lot_count"]
    assert {"part_number", "quantity", "location", "inventory_id", "unmatched_reason"} <= set(lines[0])


def test_show_a_missing_order_is_exit_1_one_line(run, synced):
    message = one_line_error(run("orders", "show", "bricklink:99999999", "--db", synced), 1)
    assert "bricklink" in message and "99999999" in message


@pytest.mark.parametrize("ref", ["ebay:123", "bricklink", "bricklink:", ":123", "brickowl 123"])
def test_show_a_bad_reference_is_a_usage_error(run, synced, ref):
    message = one_line_error(run("orders", "show", ref, "--db", synced), 2)
    assert "PROVIDER:ORDER_ID" in message


def test_marketplace_text_is_printed_literally_not_as_markup(run, creds, tmp_path):
    """Buyer names and statuses come from strangers: '[/]' must print, not crash rich."""
    (tmp_path / "stock.csv").write_text("part_number,color_id,condition,location,quantity\n3001,11,new,[b]A1,10\n")
    assert run("inventory", "import", "stock.csv").exit_code == 0
    order_id = creds.bricklink.add_order(status="PAID", buyer_name="ann[/]", lines=[
        {"no": "3001", "color_id": 11, "quantity": 4}])
    assert run("sync").exit_code == 0
    listing = run("orders")
    assert listing.exit_code == 0, listing.stderr
    assert "ann[/]" in listing.stdout
    detail = run("orders", "show", f"bricklink:{order_id}")
    assert detail.exit_code == 0, detail.stderr
    assert "buyer ann[/]" in detail.stdout and "[b]A1" in detail.stdout
