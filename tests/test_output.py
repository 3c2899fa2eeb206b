"""What sellers read: prices at the marketplace's precision."""

from __future__ import annotations

import json

from marketsync.cli.render import money


def test_money_keeps_every_decimal_the_marketplace_gave():
    assert money("0.0340", "USD") == "0.034 USD"  # BrickLink's 4 decimals: never 0.03
    assert money("0.104") == "0.104"  # BrickOwl's 3
    assert money("23.1500", "GBP") == "23.15 GBP" and money("10") == "10.00" and money("1234.5") == "1,234.50"
    assert money(None) == "" and money("not a number") == "not a number"


def test_orders_show_prints_per_piece_prices_as_sellers_read_them(run, creds):
    order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 100,
                                                       "unit_price": "0.0340", "remarks": "A1"}])
    assert run("sync").exit_code == 0
    shown = run("orders", "show", f"bricklink:{order}")
    assert shown.exit_code == 0 and "0.034" in shown.stdout and "0.03 " not in shown.stdout
    lines = json.loads(run("orders", "show", f"bricklink:{order}", "--json").stdout)
    detail = lines[0] if isinstance(lines, list) else lines
    assert detail["lines"][0]["unit_price"] == "0.0340"  # stored exactly as sent


def test_json_and_csv_together_is_a_usage_error(run, creds):
    assert run("sync").exit_code == 0
    for command in (("orders",), ("inventory", "list"), ("stock",), ("picklist",)):
        result = run(*command, "--json", "--csv")
        assert result.exit_code == 2 and "--json and --csv go one at a time" in result.stderr, command


def test_orders_show_json_is_one_object(run, creds):
    order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 1}])
    assert run("sync").exit_code == 0
    detail = json.loads(run("orders", "show", f"bricklink:{order}", "--json").stdout)
    assert isinstance(detail, dict) and detail["order_id"] == str(order) and len(detail["lines"]) == 1


def test_empty_results_say_what_they_mean(run, creds):
    empty = run("orders")
    assert empty.exit_code == 1  # no database yet: one line
    assert run("sync").exit_code == 0
    assert "No orders yet" in run("orders").stdout
    creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 1}])
    creds.bricklink.add_order("SHIPPED", lines=[{"no": "3001", "color_id": 11, "quantity": 1}])
    assert run("sync").exit_code == 0
    none = run("orders", "--status", "cancelled")
    assert "No orders match these filters (2 orders in all)" in none.stdout
    cut = run("orders", "--limit", "1")
    assert "showing 1 of 2" in cut.stdout and "--limit 0" in cut.stdout


def test_the_orders_table_fits_the_terminal(run, creds, monkeypatch):
    for n in range(3):
        creds.bricklink.add_order("PAID", buyer_name="a-rather-long-buyer-name", lines=[
            {"no": "3001", "color_id": 11, "quantity": n + 1}])
        creds.brickowl.add_order("Payment Received", lines=[{"boid": "771344-38", "ordered_quantity": 1}])
    assert run("sync").exit_code == 0
    for width in (80, 100, 200):
        monkeypatch.setenv("COLUMNS", str(width))
        lines = run("orders").stdout.splitlines()
        assert max(len(line) for line in lines) <= width, width
        text = "\n".join(lines)
        assert "brickl\n" not in text and "a-rather-long-buyer-name" in text.replace("\n", "") or width == 80
        if width == 80:
            assert " BL " in text and " BO " in text  # abbreviated, never cut mid-word
        if width == 200:
            assert "bricklink" in text and "USD" in text


def test_verbose_prints_the_run_summary_off_a_terminal(run, creds):
    quiet = run("sync")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    loud = run("sync", "-v")
    assert loud.exit_code == 0
    assert "bricklink: 0 listed, 0 new or changed, 1 API calls" in loud.stderr


def test_re_importing_an_unchanged_file_says_0_changed(run, tmp_path):
    path = tmp_path / "inv.csv"
    path.write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A1,5\n3002,11,new,A2,5\n")
    first = run("-v", "inventory", "import", path)
    assert f"{path}: 2 lots added, 0 changed, 0 unchanged" in first.stderr
    again = run("inventory", "import", path, "-v")
    assert f"{path}: 0 lots added, 0 changed, 2 unchanged" in again.stderr
    path.write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A1,6\n3002,11,new,A2,5\n")
    assert f"{path}: 0 lots added, 1 changed, 1 unchanged" in run("inventory", "import", path, "-v").stderr


def test_the_first_command_prints_the_help(run):
    for args in ((), ("inventory",), ("stock", "--help")):
        result = run(*args)
        assert result.exit_code == 0 and result.stdout.startswith("Usage: marketsync") and "\\n" not in result.stdout
        assert result.stderr == ""


def test_a_choice_error_is_one_readable_line(run):
    result = run("api")
    assert result.exit_code == 2
    assert result.stderr == ("Error: Missing argument '{bricklink|brickowl}'. Choose from: bricklink, brickowl "
                             "(see 'marketsync api -h')\n")


def test_the_database_answers_sellers_questions_for_datasette(run, creds):
    import sqlite3

    creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2, "unit_price": "0.0340"},
                                             {"no": "9999", "color_id": 11, "quantity": 1}])
    (creds_csv := __import__("pathlib").Path("inv.csv")).write_text(
        "part_number,color_id,condition,location,quantity,price\n3001,11,new,A1,10,0.05\n")
    assert run("inventory", "import", creds_csv).exit_code == 0
    assert run("sync").exit_code == 0
    with sqlite3.connect("marketsync.db") as conn:
        total, summed = conn.execute("select grand_total, grand_total_amount from orders").fetchone()
        assert isinstance(summed, float) and summed == float(total)
        assert conn.execute("select sum(unit_price_amount) from order_items").fetchone()[0] > 0
        assert conn.execute("select pieces_reserved, unmatched_lines from open_orders").fetchone() == (2, 1)
        assert conn.execute("select bin, on_hand, reserved, available, should_list from lot_stock").fetchall() == [
            ("A1", 10, 2, 8, 8)]
        assert conn.execute("select part_number, unmatched_kind from unmatched_lines").fetchall() == [("9999", "no_lot")]


def test_errors_name_the_file_and_cut_overlong_arguments(run, tmp_path):
    missing = tmp_path / "nowhere" / "shop.db"
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A1,5\n")
    result = run("inventory", "import", "inv.csv", "--db", missing)
    assert result.stderr == f"Error: directory {missing.parent} does not exist (for the database {missing})\n"
    logged = run("--log-file", tmp_path / "nowhere" / "log", "orders")
    assert logged.stderr.startswith("Error: --log-file / MARKETSYNC_LOG_FILE: cannot write")
    assert "does not exist" in logged.stderr
    assert run("inventory", "import", "inv.csv").exit_code == 0
    long = run("orders", "show", "bricklink:" + "9" * 5000)
    assert long.exit_code in (1, 2) and len(long.stderr) < 400 and "(5000 chars)" in long.stderr


def test_reserve_check_json_and_a_malformed_boid(run, creds):
    assert run("sync").exit_code == 0
    assert json.loads(run("reserve", "--check", "--json").stdout) == {"ok": True, "problems": []}
    bad = run("map", "abc", "3001")
    assert bad.exit_code == 2 and "'abc' is not a BrickOwl item id" in bad.stderr
    assert run("map", "487300-38", "3069b", "--force").exit_code == 0  # no lot holds 3069b: on purpose


def test_the_summarys_oversold_figure_is_the_figure_at_the_end_of_the_run(run, creds, tmp_path):
    (tmp_path / "inv.csv").write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A1,2\n")
    assert run("inventory", "import", tmp_path / "inv.csv").exit_code == 0
    first = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 3, "remarks": "A1"}])
    creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 1, "remarks": "A1"}])
    assert "1 lot(s) oversold at the end of the run" in run("sync", "-v").stderr
    creds.bricklink.set_status(first, "CANCELLED")
    assert "oversold at the end of the run" not in run("sync", "-v").stderr  # the cancel cleared it


def test_watch_json_streams_one_line_per_change_off_a_terminal(run, creds, proc, tmp_path):
    import os
    import subprocess
    import sys

    creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 1}])
    assert run("sync").exit_code == 0
    refused = run("orders", "--watch")
    assert refused.exit_code == 2 and "--watch --json" in refused.stderr
    watcher = subprocess.Popen([sys.executable, "-m", "marketsync", "orders", "--watch", "--json", "--interval", "0.2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               env={**os.environ})
    try:
        first = json.loads(watcher.stdout.readline())
        assert first["provider"] == "bricklink" and first["status"] == "paid"
        order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2}])
        assert run("sync").exit_code == 0
        second = json.loads(watcher.stdout.readline())  # the new order, and nothing else repeated
        assert second["order_id"] == str(order)
    finally:
        watcher.kill()
        watcher.communicate(timeout=10)
