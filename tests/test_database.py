"""The SQLite file: owner-only modes, WAL, the migrated schema, and one clear line for every bad file.

Tests run as root, for whom chmod does not make a file unreadable or read-only; the
read-only cases therefore run the installed command as the unprivileged user ``nobody``
in a subprocess (skipped when not root). Other unusable files are made for real: random
bytes, a truncated database, a directory, a ``-wal`` that SQLite cannot open.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile

import pytest
from support import HEADER, one_line_error



def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def stock(tmp_path):
    path = tmp_path / "stock.csv"
    path.write_text(f"{HEADER}\n3001,5,new,A01,10\n3002,5,new,A02,20\n", encoding="utf-8")
    return path


@pytest.fixture
def open_umask():
    """A umask that lets everyone read everything: modes must come from marketsync itself."""
    old = os.umask(0)
    yield
    os.umask(old)


def inventory_rows(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select part_number, quantity from inventory order by id").fetchall()


# --- creation --------------------------------------------------------------------------------
def test_new_database_lock_and_wal_files_are_owner_only(run, tmp_path, stock, open_umask):
    result = run("inventory", "import", stock)
    assert result.exit_code == 0, result.stderr
    db = tmp_path / "marketsync.db"
    assert mode(db) == 0o600
    assert mode(tmp_path / "marketsync.db.lock") == 0o600
    with sqlite3.connect(db) as conn:  # a reader: WAL mode means -wal and -shm beside the file
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
        conn.execute("select count(*) from inventory").fetchone()
        for suffix in ("-wal", "-shm"):
            assert (tmp_path / f"marketsync.db{suffix}").exists()
            assert mode(tmp_path / f"marketsync.db{suffix}") == 0o600


@pytest.mark.parametrize("how", ["option", "environment"])
def test_log_file_is_owner_only(run, tmp_path, stock, open_umask, monkeypatch, how):
    assert run("inventory", "import", stock).exit_code == 0
    if how == "option":
        result = run("--log-file", "logs.txt", "inventory", "list")
    else:
        monkeypatch.setenv("MARKETSYNC_LOG_FILE", str(tmp_path / "logs.txt"))
        result = run("inventory", "list")
    assert result.exit_code == 0, result.stderr
    assert mode(tmp_path / "logs.txt") == 0o600


def test_unwritable_log_file_is_a_configuration_error(run, tmp_path):
    message = one_line_error(run("--log-file", tmp_path / "no-such-dir" / "x.log", "orders"), 2)
    assert "MARKETSYNC_LOG_FILE" in message and "x.log" in message


def test_schema_tables_columns_and_unique_keys(run, tmp_path, stock):
    assert run("inventory", "import", stock, "--db", "shop.db").exit_code == 0
    conn = sqlite3.connect(tmp_path / "shop.db")

    def columns(table):
        return {row[1] for row in conn.execute(f"pragma table_info({table})")}

    def unique_keys(table):
        keys = set()
        for _, name, unique, *_ in conn.execute(f"pragma index_list({table})"):
            if unique:
                keys.add(tuple(row[2] for row in conn.execute(f"pragma index_info({name})")))
        return keys

    assert {"id", "business_account_id", "part_number", "color_id", "condition", "location", "quantity",
            "quantity_reserved", "bricklink_lot_id", "name", "item_type", "price"} <= columns("inventory")
    assert {"id", "business_account_id", "provider", "order_id", "status", "provider_status", "buyer_name",
            "date_ordered", "lot_count", "piece_count", "grand_total", "currency"} <= columns("orders")
    assert {"id", "order_ref", "business_account_id", "provider", "order_id", "line_key", "part_number",
            "color_id", "condition", "location", "quantity", "inventory_id",
            "unmatched_reason"} <= columns("order_items")
    assert {"id", "business_account_id", "inventory_id", "order_ref", "provider", "order_id", "line_key",
            "quantity", "reason", "created_at"} <= columns("reservations")
    assert {"business_account_id", "provider", "last_synced_at", "last_error"} <= columns("sync_state")

    assert ("business_account_id", "part_number", "color_id", "condition", "location") in unique_keys("inventory")
    assert ("business_account_id", "provider", "order_id") in unique_keys("orders")
    assert ("order_ref", "line_key") in unique_keys("order_items")
    assert [r[1] for r in conn.execute("pragma table_info(sync_state)") if r[5]] == ["business_account_id",
                                                                                       "provider"]
    applied = conn.execute("select migration_set, name from _sqlite_migrations").fetchall()
    assert applied == [("marketsync", "m001_initial"), ("marketsync", "m002_catalog_checked_at"),
                       ("marketsync", "m003_lines_without_raw_payloads"), ("marketsync", "m004_listings"),
                       ("marketsync", "m005_pick_list"), ("marketsync", "m006_id_lookups_per_item_type"),
                       ("marketsync", "m007_reservations_taken"), ("marketsync", "m008_datasette_money_and_views"),
                       ("marketsync", "m009_picks"), ("marketsync", "m010_shelf_truth"),
                       ("marketsync", "m011_listener"), ("marketsync", "m012_mirror"), ("marketsync", "m013_everyday"),
                       ("marketsync", "m014_cancel_restocks"), ("marketsync", "m015_relist_sold_out"),
                       ("marketsync", "m016_late_writes"), ("marketsync", "m017_backup_marks")]
    conn.close()

    assert run("inventory", "list", "--db", "shop.db").exit_code == 0  # reopening applies nothing again
    with sqlite3.connect(tmp_path / "shop.db") as again:
        assert again.execute("select count(*) from _sqlite_migrations").fetchone()[0] == len(applied)


# --- a database that is not there ----------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["orders"], ["orders", "--json"], ["orders", "show", "bricklink:1"], ["inventory", "list"],
    ["status"], ["reserve"], ["reserve", "--check"], ["map"],
], ids=" ".join)
def test_missing_database_is_one_line_naming_it_and_creates_nothing(run, tmp_path, command):
    message = one_line_error(run(*command, "--db", "shop/orders.db"), 1)
    assert "shop/orders.db" in message and "does not exist" in message
    assert os.listdir(tmp_path) == []


def test_missing_default_database_is_named_too(run, tmp_path):
    message = one_line_error(run("orders"), 1)
    assert "marketsync.db does not exist" in message
    assert os.listdir(tmp_path) == []


def test_import_into_a_directory_that_does_not_exist_is_a_plain_failure(run, tmp_path, stock):
    message = one_line_error(run("inventory", "import", stock, "--db", "nowhere/shop.db"), 1)  # not 75
    assert "nowhere/shop.db" in message
    assert not (tmp_path / "nowhere").exists()


# --- files SQLite cannot use ------------------------------------------------------------------
READERS = [["orders"], ["orders", "--csv"], ["inventory", "list", "--json"], ["status"], ["reserve", "--check"]]


@pytest.mark.parametrize("command", READERS + [["inventory", "import", "stock.csv"]], ids=" ".join)
def test_random_bytes_are_one_line_and_left_untouched(run, tmp_path, stock, command):
    junk = os.urandom(8192)
    (tmp_path / "marketsync.db").write_bytes(junk)
    message = one_line_error(run(*command), 1)
    assert "marketsync.db" in message and "not a database" in message
    assert (tmp_path / "marketsync.db").read_bytes() == junk
    assert not (tmp_path / "marketsync.db-wal").exists()


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_truncated_database_is_one_line(run, tmp_path, stock, command):
    assert run("inventory", "import", stock, "--db", "whole.db").exit_code == 0
    with sqlite3.connect(tmp_path / "whole.db") as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
    data = (tmp_path / "whole.db").read_bytes()
    (tmp_path / "cut.db").write_bytes(data[: len(data) // 3])
    message = one_line_error(run(*command, "--db", "cut.db"), 1)
    assert "cut.db" in message and "malformed" in message


def test_database_path_that_is_a_directory_is_a_usage_error(run, tmp_path, monkeypatch):
    (tmp_path / "shop.db").mkdir()
    message = one_line_error(run("orders", "--db", "shop.db"), 2)
    assert "shop.db" in message and "directory" in message
    monkeypatch.setenv("MARKETSYNC_DB", "shop.db")
    message = one_line_error(run("inventory", "list"), 2)
    assert "MARKETSYNC_DB" in message and "directory" in message


def standalone_db(run, tmp_path, stock, dest) -> None:
    """A database made by the real CLI, checkpointed and copied to ``dest`` with no -wal or -shm beside it."""
    made = tmp_path / "made.db"
    assert run("inventory", "import", stock, "--db", made).exit_code == 0
    conn = sqlite3.connect(made)
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()
    shutil.copyfile(made, dest)


def test_database_sqlite_cannot_open_is_one_line(run, tmp_path, stock):
    """A ``-wal`` that is a directory: the file is fine, SQLite still cannot open it."""
    standalone_db(run, tmp_path, stock, tmp_path / "marketsync.db")
    (tmp_path / "marketsync.db-wal").mkdir()
    for command in (["orders"], ["inventory", "import", "stock.csv"]):
        message = one_line_error(run(*command), 1)
        assert "marketsync.db" in message and "unable to open" in message


def test_a_database_with_a_clashing_schema_is_one_line_and_not_half_migrated(run, tmp_path):
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("create table orders (x)")
    message = one_line_error(run("orders", "--db", "other.db"), 1)
    assert "other.db" in message and "another program" in message
    with sqlite3.connect(tmp_path / "other.db") as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
    assert "inventory" not in tables and "reservations" not in tables


# --- a database written by a newer marketsync -------------------------------------------------
@pytest.fixture
def future_db(run, tmp_path, stock):
    assert run("inventory", "import", stock).exit_code == 0
    with sqlite3.connect(tmp_path / "marketsync.db") as conn:
        conn.execute("insert into _sqlite_migrations (migration_set, name, applied_at) "
                     "values ('marketsync', 'm099_from_the_future', '2099-01-01')")
    return tmp_path / "marketsync.db"


@pytest.mark.parametrize("command", READERS + [["inventory", "import", "more.csv"], ["map", "487300", "3069b"]],
                         ids=" ".join)
def test_database_from_a_newer_marketsync_says_upgrade(run, tmp_path, future_db, command):
    (tmp_path / "more.csv").write_text(f"{HEADER}\n3003,5,new,A03,30\n", encoding="utf-8")
    before = inventory_rows(future_db)
    message = one_line_error(run(*command), 1)
    assert "newer marketsync" in message and "m099_from_the_future" in message and "upgrade" in message
    assert inventory_rows(future_db) == before


def test_sync_into_a_database_from_a_newer_marketsync_writes_nothing(run, creds, future_db):
    creds.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 5, "quantity": 1}])
    message = one_line_error(run("sync"), 1)
    assert "upgrade" in message
    with sqlite3.connect(future_db) as conn:
        assert conn.execute("select count(*) from orders").fetchone()[0] == 0


# --- read-only files, for real: as an unprivileged user ---------------------------------------
NOBODY = 65534


def cannot_run_as_nobody() -> str | None:
    """Why marketsync cannot be run as ``nobody`` here, or None when it can (root can always)."""
    return None if os.geteuid() == 0 else "needs root to run marketsync as another user"


@pytest.fixture
def shared_dir():
    reason = cannot_run_as_nobody()
    if reason:
        pytest.skip(reason)
    path = tempfile.mkdtemp(prefix="marketsync-ro-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def as_nobody(*args, cwd) -> subprocess.CompletedProcess:
    """Run the real marketsync command as ``nobody`` (root reads and writes anything).

    A forked child drops to uid/gid 65534 and runs the already imported CLI, so it works
    wherever the checkout lives, even in a folder ``nobody`` may not read."""
    import click  # noqa: F401 - everything the command may import lazily, imported while still root
    import importlib, pkgutil, marketsync  # noqa: E401

    for module in pkgutil.walk_packages(marketsync.__path__, "marketsync."):  # commands import lazily
        if ".sandbox" not in module.name:
            importlib.import_module(module.name)
    import rich.console, rich.table, sqlite_utils, dotenv  # noqa: E401,F401
    from marketsync.cli import cli

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 70
        try:
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            os.chdir(cwd)
            for name in [n for n in os.environ if n.startswith(("MARKETSYNC_", "BRICKLINK_", "BRICKOWL_"))]:
                del os.environ[name]
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                cli.main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(out_w)
    os.close(err_w)
    with open(out_r) as out, open(err_r) as err:
        stdout, stderr = out.read(), err.read()
    _, status = os.waitpid(pid, 0)
    return subprocess.CompletedProcess(args, os.waitstatus_to_exitcode(status), stdout, stderr)


def proc_error(result, code: int = 1) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _read_only_db(run, tmp_path, shared_dir, stock) -> str:
    db = os.path.join(shared_dir, "shop.db")
    standalone_db(run, tmp_path, stock, db)
    os.chmod(db, 0o444)
    with open(os.path.join(shared_dir, "more.csv"), "w") as fh:
        fh.write(f"{HEADER}\n3001,5,new,A01,99\n")
    os.chmod(os.path.join(shared_dir, "more.csv"), 0o644)
    return db


def test_read_only_database_can_be_listed_but_not_imported_into(run, tmp_path, shared_dir, stock):
    db = _read_only_db(run, tmp_path, shared_dir, stock)
    os.chmod(shared_dir, 0o777)  # the directory is writable, the file is not
    listed = as_nobody("inventory", "list", "--json", "--db", "shop.db", cwd=shared_dir)
    assert listed.returncode == 0, listed.stderr
    assert [(r["part_number"], r["quantity"]) for r in json.loads(listed.stdout)] == [("3001", 10), ("3002", 20)]

    imported = as_nobody("inventory", "import", "more.csv", "--db", "shop.db", cwd=shared_dir)
    assert "readonly database" in proc_error(imported, 1)
    assert inventory_rows(db) == [("3001", 10), ("3002", 20)]


def test_read_only_database_in_a_read_only_directory(run, tmp_path, shared_dir, stock):
    db = _read_only_db(run, tmp_path, shared_dir, stock)
    message = proc_error(as_nobody("orders", "--db", "shop.db", cwd=shared_dir), 1)
    assert "shop.db" in message  # SQLite needs a -shm file it cannot create: said in one line
    imported = as_nobody("inventory", "import", "more.csv", "--db", "shop.db", cwd=shared_dir)
    message = proc_error(imported, 1)
    assert "shop.db.lock" in message and "Permission denied" in message  # exit 1, not 75 ("try later")
    assert inventory_rows(db) == [("3001", 10), ("3002", 20)]


def test_a_new_file_gets_exactly_the_schema_the_migrations_build(tmp_path):
    """A new database is made by replaying what the migrations built in memory; it must equal a
    file the migrations were run on one by one (tables, indexes, triggers, views, the records)."""
    from sqlite_utils import Database

    from marketsync.store import views
    from marketsync.store.connection import open_db
    from marketsync.store.schema import migrations

    made = open_db(tmp_path / "new.db")
    migrated = Database(sqlite3.connect(tmp_path / "migrated.db"))
    migrations.apply(migrated)
    views.ensure(migrated)
    schema = "select type, name, tbl_name, sql from sqlite_master order by type, name"
    records = "select migration_set, name from _sqlite_migrations order by id"
    assert made.execute(schema).fetchall() == migrated.execute(schema).fetchall()
    assert made.execute(records).fetchall() == migrated.execute(records).fetchall()
    assert len(made.execute(records).fetchall()) == len(migrations._migrations)
    assert made.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_file_killed_while_being_created_is_migrated_not_replayed(tmp_path):
    """Only sqlite-utils' migrations table (a creation killed after it): the migrations finish it."""
    from marketsync.store.connection import open_db
    from marketsync.store.schema import migrations

    path = tmp_path / "half.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table _sqlite_migrations (id integer primary key, migration_set text, name text, "
                     "applied_at text)")
    db = open_db(path)
    names = [row[0] for row in db.execute("select name from _sqlite_migrations order by id")]
    assert names == [m.name for m in migrations._migrations]
    assert "orders" in db.table_names()


# --- the read path: `status` opens the file with plain sqlite3, and checks what every opening checks
def imported_modules(stderr: str) -> set[str]:
    """The modules a ``python -X importtime`` run imported."""
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [[], ["--json"]], ids=["table", "json"])
def test_status_reads_a_current_file_without_sqlite_utils_or_rich(run, tmp_path, stock, args):
    assert run("inventory", "import", stock).exit_code == 0
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "marketsync", "status", *args],
                            capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    loaded = imported_modules(result.stderr)
    assert "marketsync.store.reader" in loaded and "marketsync.store.queries" in loaded
    assert {m for m in loaded if m.split(".")[0] in ("sqlite_utils", "rich")} == set()
    assert ("┃ Provider" in result.stdout) == (args == [])  # off a terminal, the table all the same


def test_status_of_an_empty_file_is_one_line_and_writes_nothing(run, tmp_path):
    (tmp_path / "marketsync.db").write_bytes(b"")
    message = one_line_error(run("status"), 1)
    assert "marketsync.db is empty (0 bytes)" in message and "inventory import" in message
    assert (tmp_path / "marketsync.db").read_bytes() == b""
    assert not (tmp_path / "marketsync.db-wal").exists()


def test_status_of_another_programs_database_is_one_line_and_migrates_nothing(run, tmp_path):
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("create table orders (x)")
    message = one_line_error(run("status", "--db", "other.db"), 1)
    assert "other.db is an SQLite database of another program" in message
    with sqlite3.connect(tmp_path / "other.db") as conn:
        assert [r[0] for r in conn.execute("select name from sqlite_master")] == ["orders"]


def test_status_of_a_directory_is_a_usage_error(run, tmp_path):
    (tmp_path / "shop.db").mkdir()
    message = one_line_error(run("status", "--db", "shop.db"), 2)
    assert "shop.db" in message and "directory" in message


def test_status_makes_a_loose_database_owner_only(run, tmp_path, stock):
    assert run("inventory", "import", stock).exit_code == 0
    os.chmod(tmp_path / "marketsync.db", 0o644)
    assert run("status").exit_code == 0
    assert mode(tmp_path / "marketsync.db") == 0o600


def test_status_of_an_older_file_migrates_it_first(run, tmp_path):
    """A file a released marketsync wrote (a migration short): opened as every command opens it."""
    from sqlite_utils import Database

    from marketsync.store.reader import MIGRATIONS
    from marketsync.store.schema import migrations

    old = Database(sqlite3.connect(tmp_path / "marketsync.db"))
    migrations.apply(old, stop_before=MIGRATIONS[-1])
    old.close()
    result = run("status", "--json")
    assert result.exit_code == 0, result.stderr
    with sqlite3.connect(tmp_path / "marketsync.db") as conn:
        assert [r[0] for r in conn.execute("select name from _sqlite_migrations order by id")] == list(MIGRATIONS)


def test_status_rebuilds_a_view_that_differs_from_the_code(run, tmp_path, stock):
    from marketsync.store.views import VIEWS

    assert run("inventory", "import", stock).exit_code == 0
    with sqlite3.connect(tmp_path / "marketsync.db") as conn:
        conn.execute("drop view open_orders")
        conn.execute("create view open_orders as select 1 as stale")
    assert run("status").exit_code == 0
    with sqlite3.connect(tmp_path / "marketsync.db") as conn:
        (sql,) = conn.execute("select sql from sqlite_master where name = 'open_orders'").fetchone()
    assert sql == VIEWS["open_orders"]


def test_status_of_a_read_only_file_and_of_one_it_may_not_read(run, tmp_path, shared_dir, stock):
    db = _read_only_db(run, tmp_path, shared_dir, stock)
    os.chmod(shared_dir, 0o777)  # SQLite may make its -shm beside a file it only reads
    shown = as_nobody("status", "--json", "--db", "shop.db", cwd=shared_dir)
    assert shown.returncode == 0, shown.stderr
    assert [row["open_orders"] for row in json.loads(shown.stdout)["providers"]] == [0, 0]
    os.chmod(db, 0o600)  # root's, and nobody's no more
    message = proc_error(as_nobody("status", "--db", "shop.db", cwd=shared_dir), 2)
    assert "shop.db" in message and "is not readable" in message


def test_the_read_path_knows_every_migration():
    """A file whose record differs from this list is opened the slow way (migrated, or refused):
    a migration missing here would make every read-only command load sqlite-utils."""
    from marketsync.store.reader import MIGRATIONS
    from marketsync.store.schema import migrations

    assert list(MIGRATIONS) == [m.name for m in migrations._migrations]


def test_a_store_opened_for_reading_has_no_write_side(run, tmp_path, stock):
    from marketsync.store.reader import Reader, open_reader

    assert run("inventory", "import", stock).exit_code == 0
    store = open_reader(tmp_path / "marketsync.db", "default")
    try:
        assert isinstance(store.db, Reader)
        assert [row["part_number"] for row in store.db.query("select part_number from inventory order by id")] == [
            "3001", "3002"]
        with pytest.raises(AttributeError, match="open it with open_store"):
            store.db.table("inventory")
    finally:
        store.close()
