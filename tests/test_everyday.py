"""The defects a new seller hits in the first week: every message true, nothing lost quietly.
Each test runs the real CLI."""

from __future__ import annotations

import json
import sqlite3

from support import HEADER, one_line_error


def shelf(tmp_path, run, rows: str) -> None:
    (tmp_path / "inv.csv").write_text(HEADER + "\n" + rows)
    result = run("inventory", "import", tmp_path / "inv.csv")
    assert result.exit_code == 0, result.stderr


def line_keys(run, ref: str) -> dict[str, str]:
    """part number -> line key of an order's lines."""
    shown = json.loads(run("orders", "show", ref, "--json").stdout)
    return {line["part_number"]: line["line_key"] for line in shown["lines"]}


def stock(run) -> dict[str, tuple[int, int]]:
    return {r["location"]: (r["quantity"], r["quantity_reserved"])
            for r in json.loads(run("inventory", "list", "--json").stdout)}


# --- 1. a short pick larger than the bin ------------------------------------------------------------
def test_a_short_pick_larger_than_the_bin_is_refused_and_one_that_fits_says_what_it_did(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,3\n3001,11,new,B7,10\n")
    order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2, "remarks": "A1"}])
    assert run("sync").exit_code == 0
    ref = f"bricklink:{order}"
    key = line_keys(run, ref)["3001"]

    refused = run("pick", ref, key, "--short", "5")
    line = one_line_error(refused, 1)
    assert "bin A1 holds on record (3 on hand)" in line and "--short 3" in line
    assert stock(run) == {"A1": (3, 2), "B7": (10, 0)}  # nothing changed
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select count(*) from adjustments").fetchone()[0] == 0

    done = run("pick", ref, key, "--short", "3", "-v")
    assert done.exit_code == 0, done.stderr
    assert "bin A1 (lot 1) on hand 3 -> 0 (3 short)" in done.stderr
    assert stock(run) == {"A1": (0, 0), "B7": (10, 2)}  # the line moved to the other bin
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select quantity, reason from adjustments").fetchall() == [(-3, "short-pick")]
    assert run("reserve", "--check").exit_code == 0


# --- 10. pick on an order that is no longer open ---------------------------------------------------------
def test_picking_a_shipped_order_writes_nothing_and_says_so(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,3\n")
    order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2, "remarks": "A1"}])
    assert run("sync").exit_code == 0
    creds.bricklink.set_status(order, "SHIPPED")
    assert run("sync").exit_code == 0
    ref = f"bricklink:{order}"
    result = run("pick", ref)
    assert result.exit_code == 0 and "is shipped: nothing to pick" in result.stderr
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select count(*) from picks").fetchone()[0] == 0
    short = run("pick", ref, line_keys(run, ref)["3001"], "--short", "1")
    assert "is shipped" in one_line_error(short, 1)


# --- 2. a damaged database ------------------------------------------------------------------------------
def damage(path: str, table: str = "picks") -> None:
    """Break one page's header: the file opens and most queries work, SQLite's check fails."""
    with sqlite3.connect(path) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
        root = conn.execute("select rootpage from sqlite_master where name = ?", [table]).fetchone()[0]
        size = conn.execute("pragma page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as db:
        db.seek((root - 1) * size + 1)
        db.write(b"\x0f\xf0")


def test_a_damaged_database_stops_the_sync_before_anything_is_written_and_status_fails_until_restored(
        run, creds, tmp_path):
    import shutil

    shelf(tmp_path, run, "3001,11,new,A1,30\n")
    assert run("sync").exit_code == 0
    assert run("backup", tmp_path / "good.db").exit_code == 0
    damage("marketsync.db")
    for made in tmp_path.glob("marketsync.db.backup-*"):  # a day later: the daily backup (and its check) is due
        made.rename(tmp_path / "marketsync.db.backup-20000101T000000Z")
    with sqlite3.connect("marketsync.db") as conn:
        mark = conn.execute("select last_synced_at from sync_state").fetchall()
    creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2, "remarks": "A1"}])
    for _ in range(2):  # the second run too: the damage is not forgotten
        line = one_line_error(run("sync"), 1)
        assert "is damaged" in line and "nothing was written" in line
        assert "'marketsync backup'" in line and "Backups and restore" in line
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select last_synced_at from sync_state").fetchall() == mark
        assert conn.execute("select count(*) from orders").fetchone()[0] == 0
    assert run("inventory", "import", tmp_path / "inv.csv").exit_code == 1  # no other writer either
    status = run("status", "--max-age", "60")
    assert status.exit_code == 1 and "is damaged" in status.stderr

    for suffix in ("", "-wal", "-shm"):  # the README's restore
        (tmp_path / f"marketsync.db{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "good.db", "marketsync.db")
    assert run("status", "--max-age", "60").exit_code == 0
    assert run("sync").exit_code == 0
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select count(*) from orders").fetchone()[0] == 1


# --- 3. stock, stock push --dry-run and the push: one rule, and the reason for what they leave -------
def test_stock_shows_what_the_push_does_and_why_it_leaves_a_listing(run, creds):
    from test_listings import BL_LOT, bo_order, listed

    creds.bricklink.add_lot("3001", 11, 20, remarks="A1", inventory_id=BL_LOT)
    creds.brickowl.add_lot("771344-38", 20, lot_id="9001", personal_note="A1", external_id=BL_LOT,
                           ids=[{"id": "3001", "type": "design_id"}, {"id": "771344-38", "type": "boid"}])
    assert run("inventory", "pull", "--provider", "bricklink").exit_code == 0
    assert run("sync", "--push").exit_code == 0
    bought = bo_order(creds, 5)  # matched: 5 reserved
    creds.bricklink.add_order("PAID", lines=[{"inventory_id": BL_LOT, "no": "9999", "color_id": 5, "quantity": 5,
                                              "remarks": "A1"}])  # unmatched, on the same listing
    assert run("sync").exit_code == 0
    rows = {r["provider"]: r for r in json.loads(run("stock", "--json").stdout)}
    # BrickLink took its 5 off the listing itself: it shows 15 = available, nothing to push
    assert rows["bricklink"]["listed_now"] == 15 and rows["bricklink"]["pending_change"] is None
    assert rows["brickowl"]["listed_now"] == 15 and rows["brickowl"]["pending_change"] is None
    dry = run("stock", "push", "--dry-run", "--json")
    assert dry.exit_code == 0 and json.loads(dry.stdout) == []

    creds.brickowl.set_status(bought, "Cancelled")  # 20 available: raising BrickLink's listing must wait
    assert run("sync").exit_code == 0
    bl = next(r for r in json.loads(run("stock", "--json").stdout) if r["provider"] == "bricklink")
    assert bl["pending_change"] is None and "raising to 20 waits: 5 piece(s)" in bl["pending_reason"]
    assert "raising to 20 waits" in run("stock").stdout
    dry = json.loads(run("stock", "push", "--dry-run", "--json").stdout)
    waits = [r for r in dry if r["provider"] == "bricklink"]
    assert [(r["change"], r["not_changed_because"][:20]) for r in waits] == [(0, "raising to 20 waits:")]
    pushed = run("sync", "--push", "-v")
    assert pushed.exit_code == 0 and f"bricklink lot {BL_LOT} (lot 1) stays at 15: raising to 20 waits" in pushed.stderr
    assert listed(creds)[0] == 15


# --- 4. an oversold lot is said once, at the end of the run, with the figures the run leaves ---------
def test_an_oversold_lot_is_reported_once_with_the_figures_the_run_leaves(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,14\n")
    line = {"no": "3001", "color_id": 11, "remarks": "A1"}
    earlier = creds.bricklink.add_order("PAID", lines=[{**line, "quantity": 5}])
    assert run("sync").exit_code == 0
    creds.bricklink.add_order("PAID", lines=[{**line, "quantity": 12}])  # 17 on 14 while it is written...
    creds.bricklink.set_status(earlier, "CANCELLED")  # ... and 12 once the cancellation is in
    result = run("sync")
    assert result.exit_code == 0 and "oversold" not in result.stderr, result.stderr
    creds.bricklink.add_order("PAID", lines=[{**line, "quantity": 4}])
    creds.bricklink.add_order("PAID", lines=[{**line, "quantity": 3}])
    result = run("sync", "--push")
    assert [x for x in result.stderr.splitlines() if "oversold" in x] == [
        "oversold: lot 1 (3001 colour 11 new at A1) has 19 reserved but 14 on hand"]
    assert "oversold" not in run("sync").stderr  # said in the run that found it, not every 15 minutes


# --- 5. every option works in every mode, or the combination is refused (exit 2) -----------------------
def test_reserve_outputs_every_mode_in_json_and_csv(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,10\n")
    order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2, "remarks": "A1"}])
    assert run("sync").exit_code == 0
    check = run("reserve", "--check", "--csv")
    assert check.exit_code == 0 and check.stdout == "problem\n"
    released = run("reserve", "--release", f"bricklink:{order}", "--yes", "--json")
    assert released.exit_code == 0, released.stderr
    [row] = json.loads(released.stdout)
    assert (row["kind"], row["order_id"], row["quantity"], row["inventory_id"]) == ("reservation", str(order), -2, 1)
    back = run("reserve", "--unrelease", f"bricklink:{order}", "--csv")
    assert back.stdout.splitlines()[0].startswith("kind,inventory_id,") and ",2," in back.stdout.splitlines()[1]
    repaired = run("reserve", "--repair", "--csv")
    assert repaired.exit_code == 0 and repaired.stdout.startswith("kind,inventory_id,")
    assert json.loads(run("reserve", "--json").stdout) == []


# option combinations a mode would ignore: each refused, exit 2 (counted by tests/reliability/figures.py)
IGNORED_COMBINATIONS = (
    ("reserve", "--yes"), ("reserve", "--check", "--wait", "5"), ("reserve", "--ledger", "--wait", "1"),
    ("stock", "--json", "push", "--dry-run"), ("stock", "--provider", "bricklink", "push"),
    ("orders", "--interval", "1"), ("orders", "--open", "show", "bricklink:1"),
    ("map", "487300", "3069b", "--json"), ("map", "--remove"), ("map", "487300", "3069b", "--remove"),
    ("map", "--force"), ("map", "487300", "--remove", "--force"),
)


def test_options_that_a_mode_would_ignore_are_refused(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,10\n")
    for args in IGNORED_COMBINATIONS:
        result = run(*args)
        assert result.exit_code == 2, (args, result.stderr)
        one_line_error(result, 2)


def test_a_limit_given_limits_every_pick_list_output(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,10\n3004,11,new,A2,10\n")
    creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2, "remarks": "A1"},
                                             {"no": "3004", "color_id": 11, "quantity": 2, "remarks": "A2"}])
    assert run("sync").exit_code == 0
    assert len(json.loads(run("picklist", "--json").stdout)) == 2
    assert len(json.loads(run("picklist", "--json", "--limit", "1").stdout)) == 1
    assert len(run("picklist", "--csv", "--limit", "1").stdout.splitlines()) == 2


# --- 12. an empty CSV still has its header -------------------------------------------------------------
def test_an_empty_csv_still_has_its_header(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,10\n")
    for args, first in ((("inventory", "list", "--location", "Z9"), "id,part_number,"),
                        (("stock",), "id,provider,remote_lot_id,"), (("reserve", "--ledger"), "id,created_at,"),
                        (("map",), "boid,part_number,source,created_at"), (("orders",), "provider,"),
                        (("picklist",), "bin,part_number,"), (("reserve", "--check"), "problem")):
        result = run(*args, "--csv")
        assert result.exit_code == 0, (args, result.stderr)
        assert result.stdout.startswith(first) and len(result.stdout.splitlines()) == 1, (args, result.stdout)
    dry = run("stock", "push", "--dry-run", "--csv")
    assert dry.stdout == "provider,remote_lot_id,inventory_id,listed,would_list,change,not_changed_because\n"


# --- 10. one rule: not found is exit 1, nothing to do is exit 0 and says so, a bad value is exit 2 --------
def test_not_found_nothing_to_do_and_bad_values_follow_one_rule(run, creds, tmp_path, monkeypatch):
    from test_listings import BL_LOT

    shelf(tmp_path, run, "3001,11,new,A1,20\n")
    creds.bricklink.add_lot("3001", 11, 20, remarks="A1", inventory_id=BL_LOT)
    assert run("sync", "--push").exit_code == 0
    for args in (("orders", "show", "bricklink:404"), ("picklist", "--order", "bricklink:404"),
                 ("reserve", "--ledger", "bricklink:404"), ("pick", "bricklink:404"),
                 ("reserve", "--release", "bricklink:404", "--yes"), ("stock", "adopt", "bricklink:404")):
        assert "404" in one_line_error(run(*args), 1), args
    assert "is not PROVIDER:REMOTE_LOT" in one_line_error(run("stock", "adopt", "foo:1"), 2)
    assert "must not be empty" in one_line_error(run("orders", "--db", ""), 2)
    assert "must not be empty" in one_line_error(run("--db", "", "orders"), 2)
    monkeypatch.setenv("MARKETSYNC_DB", "")
    assert "must not be empty" in one_line_error(run("status"), 2)
    monkeypatch.delenv("MARKETSYNC_DB")

    for decision in ("adopt", "override"):  # a listing that is not held: nothing to decide
        result = run("stock", decision, f"bricklink:{BL_LOT}")
        assert result.exit_code == 0 and f"nothing to {decision}, nothing was changed" in result.stderr
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select count(*) from adjustments").fetchone()[0] == 0


# --- 7. the first pull reports only the lines still unmatched once the lots are in ------------------------
def test_the_first_pull_reports_only_lines_the_lots_do_not_match(run, creds):
    creds.bricklink.add_lot("3001", 11, 20, remarks="A1", inventory_id=501)
    creds.bricklink.add_lot("3004", 11, 10, remarks="A2", inventory_id=502)
    creds.bricklink.add_order("PAID", lines=[{"inventory_id": 501, "no": "3001", "color_id": 11, "quantity": 2,
                                              "remarks": "A1"},
                                             {"inventory_id": 502, "no": "3004", "color_id": 11, "quantity": 1,
                                              "remarks": "A2"},
                                             {"no": "9999", "color_id": 5, "quantity": 1, "remarks": "Z9"}])
    result = run("inventory", "pull", "--provider", "bricklink")
    assert result.exit_code == 0, result.stderr
    unmatched = [line for line in result.stderr.splitlines() if "unmatched" in line]
    assert len(unmatched) == 1 and "(9999 5 new) unmatched" in unmatched[0], result.stderr
    assert stock(run) == {"A1": (20, 2), "A2": (10, 1)}  # on hand = listed + the open order's pieces


# --- 9. a typo in MARKETSYNC_ACCOUNT does not start a second business --------------------------------------
def test_syncing_into_an_empty_account_of_a_busy_file_is_refused_unless_asked(run, creds, tmp_path, monkeypatch):
    shelf(tmp_path, run, "3001,11,new,A1,20\n")
    creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2, "remarks": "A1"}])
    assert run("sync").exit_code == 0
    monkeypatch.setenv("MARKETSYNC_ACCOUNT", "defualt")
    for args in (("sync",), ("inventory", "pull", "--provider", "bricklink")):
        line = one_line_error(run(*args), 2)
        assert "account 'defualt' has nothing in" in line and "'default'" in line and "--new-account" in line
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select distinct business_account_id from orders").fetchall() == [("default",)]
    assert run("sync", "--new-account").exit_code == 0  # on purpose
    assert run("sync").exit_code == 0  # from then on it is an account like any other
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select count(*) from orders where business_account_id = 'defualt'").fetchone()[0] == 1


# --- 11. a request that used its whole deadline is not tried again; the other marketplace syncs ------------
DRIP_REQUESTS = 1  # what a dripping marketplace is asked in one run (counted by tests/reliability/figures.py)

def test_a_dripping_marketplace_costs_one_request_deadline_and_the_other_still_syncs(creds, run, monkeypatch):
    import time

    from reliability.test_deadline import DripServer

    creds.brickowl.add_order("Payment Received", lines=[{"boid": "771344-38", "ordered_quantity": 1}])
    with DripServer() as drip:
        monkeypatch.setenv("BRICKLINK_API_URL", drip.url)
        monkeypatch.setenv("MARKETSYNC_HTTP_TIMEOUT", "1")
        started = time.monotonic()
        result = run("sync", "--http-deadline", "2", "--run-deadline", "600", "--retries", "4",
                     "--retry-backoff", "0")
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: bricklink: GET /orders gave no complete answer within 2s (the request deadline); "
                      "bricklink is not asked again in this run"], result.stderr
    assert drip.requests == DRIP_REQUESTS and elapsed < 5, (drip.requests, elapsed)  # not 5 x 2 s
    with sqlite3.connect("marketsync.db") as conn:
        synced = conn.execute("select provider from sync_state where last_synced_at is not null").fetchall()
        assert synced == [("brickowl",)]
        assert conn.execute("select count(*) from orders where provider = 'brickowl'").fetchone()[0] == 1


# --- 8. an interrupted run's problems are reported by the next run ------------------------------------
def test_problems_of_a_run_killed_before_its_report_are_said_by_the_next_run(creds, run, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from support import wait_for

    shelf(tmp_path, run, "3001,11,new,A1,1\n")
    creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 3, "remarks": "A1"},
                                             {"no": "9999", "color_id": 5, "quantity": 1}])
    creds.inject("brickowl", "*", "hang", times=None, seconds=60)  # the run stops in BrickOwl's turn...
    env = {**os.environ, **creds.env()}
    proc = subprocess.Popen([sys.executable, "-m", "marketsync", "sync"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def kept() -> int:
        try:
            with sqlite3.connect("marketsync.db") as conn:
                return conn.execute("select count(*) from orders").fetchone()[0]
        except sqlite3.Error:
            return 0
    wait_for(kept, what="BrickLink's orders written", proc=proc)
    proc.send_signal(signal.SIGKILL)  # ... and is killed there, before its report
    proc.communicate()
    creds.clear_faults()
    result = run("sync")
    assert result.exit_code == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "interrupted before its report" in line]
    assert any("(9999 5 new) unmatched" in line for line in said), result.stderr
    assert any(line.startswith("oversold: lot 1 ") for line in result.stderr.splitlines()), result.stderr
    assert run("sync").stderr == ""  # said once


# --- 6. the pick list says which order a bin cannot fill --------------------------------------------------
def test_the_pick_list_marks_what_a_bin_cannot_fill_in_every_output(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,3\n3004,11,new,A2,5\n")
    line = {"no": "3001", "color_id": 11, "remarks": "A1"}
    first = creds.bricklink.add_order("PAID", lines=[{**line, "quantity": 2}])
    assert run("sync").exit_code == 0
    second = creds.bricklink.add_order("PAID", lines=[{**line, "quantity": 2},
                                                      {"no": "3004", "color_id": 11, "quantity": 1, "remarks": "A2"}])
    assert run("sync").exit_code == 0
    picks = {p["bin"]: p for p in json.loads(run("picklist", "--json").stdout)}
    assert picks["A1"]["short"] == 1 and picks["A2"]["short"] == 0
    assert {o["order_id"]: o["short"] for o in picks["A1"]["orders"]} == {str(first): 0, str(second): 1}
    rows = [r for r in run("picklist", "--csv").stdout.splitlines()]
    assert rows[0].endswith(",total,short,line_keys") and any(r.startswith("A1,") and ",1," in r for r in rows)
    page = run("picklist", "--printable").stdout
    assert f"! 1 short: bricklink:{second} (1): the bin cannot fill them" in page
    assert f"1 short: bricklink:{second} (1)" in run("picklist").stdout
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select order_id, short from pick_list where short > 0").fetchall() == [(str(second), 1)]
    assert run("pick", f"bricklink:{first}").exit_code == 0  # picked lines take their pieces from the bin first
    picks = {p["bin"]: p for p in json.loads(run("picklist", "--json").stdout)}
    assert picks["A1"]["short"] == 1


# --- 12. status and picklist fit 60 and 80 columns, words whole ---------------------------------------------
def test_status_and_the_pick_list_fit_60_and_80_columns(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,3\n3004,85,used,B-10-2,5\n")
    for _ in range(4):
        creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 1, "remarks": "A1"},
                                                 {"no": "3004", "color_id": 85, "quantity": 1, "new_or_used": "U",
                                                  "remarks": "B-10-2"}])
    assert run("sync").exit_code == 0
    for width in (60, 80):
        for args, words in ((("status",), ("Provider", "bricklink")), (("picklist",), ("Bin", "Total", "short"))):
            out = run(*args, env={"COLUMNS": str(width)}).stdout
            assert max(len(line) for line in out.splitlines()) <= width, (args, width, out)
            assert all(word in out for word in words), (args, width, out)


# --- 12. smaller ones, each through the CLI ------------------------------------------------------------------
def test_map_says_what_it_did_and_refuses_a_part_no_lot_holds(run, tmp_path):
    shelf(tmp_path, run, "3069b,11,new,A1,5\n")
    done = run("map", "487300", "3069b")
    assert done.exit_code == 0 and "BOID 487300 is BrickLink part 3069b" in done.stderr
    refused = one_line_error(run("map", "487301", "3069c"), 1)
    assert "no lot of your inventory holds BrickLink part 3069c" in refused and "--force" in refused
    assert [m["boid"] for m in json.loads(run("map", "--json").stdout)] == ["487300"]
    assert run("map", "487301", "3069c", "--force").exit_code == 0
    removed = run("map", "487301", "--remove")
    assert removed.exit_code == 0 and "mapping of BOID 487301 is removed" in removed.stderr


def test_the_sandbox_on_a_busy_port_names_it(proc):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = proc("sandbox", "--bricklink-port", port, "--brickowl-port", "0", input="", timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"Error: --bricklink-port {port}: the port is in use on 127.0.0.1 (another "
                                     "sandbox?); give another port, or 0 for any free one")


def test_a_read_command_never_writes_a_schema_into_an_empty_file(run, tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    for args in (("orders",), ("status",), ("picklist",), ("stock",), ("inventory", "list"), ("reserve", "--check")):
        assert "is empty (0 bytes)" in one_line_error(run(*args, "--db", "empty.db"), 1), args
        assert (tmp_path / "empty.db").stat().st_size == 0
    assert run("inventory", "import", "--db", "empty.db", tmp_path / "inv.csv").exit_code == 1  # no such file...
    shelf(tmp_path, run, "3001,11,new,A1,5\n")
    assert run("inventory", "import", "--db", "empty.db", tmp_path / "inv.csv").exit_code == 0  # a writer may


def test_a_dotenv_line_without_equals_is_named(run, tmp_path):
    (tmp_path / ".env").write_text("MARKETSYNC_ACCOUNT=shop\nMARKETSYNC_PUSH\n")
    (tmp_path / ".env").chmod(0o600)
    assert one_line_error(run("orders"), 2).endswith(".env line 2: not a NAME=value line")


def test_inventory_import_reads_standard_input(run):
    result = run("inventory", "import", "-", input=HEADER + "\n3001,11,new,A1,5\n")
    assert result.exit_code == 0, result.stderr
    assert stock(run) == {"A1": (5, 0)}
    assert "standard input line 2" in one_line_error(run("inventory", "import", "-", input=HEADER + "\nx,y\n"), 1)


def test_stock_held_shows_the_figure_its_reason_names_and_push_says_each_summary_once(run, creds):
    from test_listings import BL_LOT

    creds.bricklink.add_lot("3001", 11, 20, remarks="A1", inventory_id=BL_LOT)
    assert run("inventory", "pull", "--provider", "bricklink").exit_code == 0
    pushed = run("sync", "--push", "-v")
    summaries = [line for line in pushed.stderr.splitlines() if line.startswith("bricklink: ")]
    assert len(summaries) == len(set(summaries)), pushed.stderr
    creds.bricklink.set_lot_quantity(BL_LOT, 30)  # the seller's edit on the website
    assert "held" in run("sync", "--push").stderr
    [held] = json.loads(run("stock", "--held", "--json").stdout)
    assert held["held_listed"] == 30 and "listed 30" in held["held_reason"]
    table = run("stock", "--held").stdout
    row = next(line for line in table.splitlines() if str(BL_LOT) in line)
    assert " 30 " in row and "listed 30 where marketsync expected 20" in table


def test_inventory_import_warns_of_an_oversold_lot_and_records_pieces_it_puts_back(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,20\n")
    order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 5, "remarks": "A1"}])
    assert run("sync").exit_code == 0
    creds.bricklink.set_status(order, "SHIPPED")
    assert run("sync").exit_code == 0
    assert stock(run) == {"A1": (15, 0)}
    again = run("inventory", "import", tmp_path / "inv.csv")  # the old count: 20, from before the shipment
    assert again.exit_code == 0
    assert "putting back 5 of the 5 piece(s) that shipped since it was last counted" in again.stderr
    with sqlite3.connect("marketsync.db") as conn:
        assert conn.execute("select quantity, reason from adjustments").fetchall() == [(5, "import")]
    creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 3, "remarks": "A1"}])
    assert run("sync").exit_code == 0
    (tmp_path / "low.csv").write_text(HEADER + "\n3001,11,new,A1,2\n")
    low = run("inventory", "import", tmp_path / "low.csv")
    assert low.exit_code == 0
    assert low.stderr.strip() == "oversold: lot 1 (3001 colour 11 new at A1) has 3 reserved but 2 on hand after the import"


def test_the_line_keys_pick_needs_are_shown_in_orders_show_and_the_pick_list(run, creds, tmp_path):
    shelf(tmp_path, run, "3001,11,new,A1,10\n")
    order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2, "remarks": "A1"}])
    assert run("sync").exit_code == 0
    key = line_keys(run, f"bricklink:{order}")["3001"]
    assert key in run("orders", "show", f"bricklink:{order}").stdout
    [pick] = json.loads(run("picklist", "--json").stdout)
    assert pick["orders"][0]["line_keys"] == [key]
    assert f"2 -> bricklink:{order} (line {key})" in run("picklist", "--printable").stdout
    assert run("picklist", "--csv").stdout.splitlines()[1].endswith(f",{key}")
    assert run("pick", f"bricklink:{order}", key).exit_code == 0  # the key shown is the one pick takes
