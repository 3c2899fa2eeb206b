"""Bad input of every kind: each gets one clear line and a non-zero exit, or is stored safely.

* inventory files: wrong header, bad numbers, negative quantities, duplicate keys, wrong encodings,
  empty, binary, hostile XML... refused whole, naming file and line, the database untouched;
* database files: random bytes, truncated, a damaged page, another program's, from a newer
  marketsync, a directory, read-only: one line, the file unchanged;
* configuration: every bad ``.env`` value names its variable, exit 2, nothing contacted;
* unknown providers and statuses;
* absurd marketplace payloads (huge and negative quantities, negative prices, missing fields,
  unicode and control characters in names and locations): stored safely, never a traceback, the
  ledger invariants intact.

The case lists are module constants: ``tests/reliability/figures.py`` counts them.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from marketsync.sandbox import write_demo_inventory_csv

from .helpers import assert_invariants, is_root, query

HEADER = "part_number,color_id,condition,location,quantity\n"


def one_line(result, code: int = 1) -> str:
    """Exactly one line on stderr, 'Error: ...', the expected exit code, no traceback, no stdout."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def digest(path) -> str | None:
    """The database file and its write-ahead log together."""
    path = Path(path)
    if not path.is_file():
        return None
    wal = Path(f"{path}-wal")
    return hashlib.sha256(path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")).hexdigest()


# --- inventory files -----------------------------------------------------------------------------
# name: (file bytes, a fragment the one-line error must contain)
BAD_INVENTORY_FILES = {
    "wrong header": (b"part,colour,cond,bin,qty\n3001,11,new,A01,5\n", "line 1: no header row"),
    "missing column": (b"part_number,color_id,condition,quantity\n3001,11,new,5\n", "location"),
    "quantity not a number": ((HEADER + "3001,11,new,A01,abc\n").encode(), "line 2: quantity 'abc' is not a whole number"),
    "fractional quantity": ((HEADER + "3001,11,new,A01,5.5\n").encode(), "line 2: quantity '5.5' is not a whole number"),
    "thousands separator": ((HEADER + '3001,11,new,A01,"1,000"\n').encode(), "thousands separator"),
    "negative quantity": ((HEADER + "3001,11,new,A01,-5\n").encode(), "line 2: quantity '-5' must not be negative"),
    "absurd quantity": ((HEADER + "3001,11,new,A01,99999999999999999999\n").encode(), "absurdly large"),
    "colour not a number": ((HEADER + "3001,red,new,A01,5\n").encode(), "line 2: color_id 'red'"),
    "unknown condition": ((HEADER + "3001,11,mint,A01,5\n").encode(), "line 2: condition 'mint'"),
    "empty part number": ((HEADER + ",11,new,A01,5\n").encode(), "line 2: part_number is empty"),
    "negative price": (b"part_number,color_id,condition,location,quantity,price\n3001,11,new,A01,5,-1.00\n",
                       "line 2: price '-1.00' must not be negative"),
    "decimal comma price": (b"part_number,color_id,condition,location,quantity,price\n3001,11,new,A01,5,\"1,50\"\n",
                            "decimal separator"),
    "duplicate lot": ((HEADER + "3001,11,new,A01,5\n3001,11,new,A01,6\n").encode(), "line 3: duplicate lot"),
    "too many values": ((HEADER + "3001,11,new,A01,5,extra\n").encode(), "line 2: has 6 values"),
    "too few values": ((HEADER + "3001,11,new\n").encode(), "line 2: has 3 values"),
    "latin-1": ((HEADER + "3001,11,new,Bin Ä,5\n").encode("latin-1"), "not UTF-8 text"),
    "utf-16": ((HEADER + "3001,11,new,A01,5\n").encode("utf-16"), "looks like UTF-16"),
    "empty file": (b"", "empty file"),
    "only blank lines": (b"\n\n  \n", "empty file"),
    "NUL byte": ((HEADER + "3001,11,new,A\x0001,5\n").encode(), "NUL byte"),
    "binary": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not UTF-8 text"),
    "broken XML": (b"<INVENTORY><ITEM><ITEMID>3001</ITEMID>", "not well-formed XML"),
    "XML entity bomb": (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aa"><!ENTITY b "&a;&a;">]><INVENTORY>&b;'
                        b"</INVENTORY>", "DOCTYPE declarations are not allowed"),
}
# accepted, and stored exactly: name -> (file bytes, the lots it must produce)
ODD_BUT_VALID_INVENTORY_FILES = {
    "byte order mark": (b"\xef\xbb\xbf" + (HEADER + "3001,11,new,A01,5\n").encode(), [("3001", 11, "new", "A01", 5)]),
    "CRLF line ends": ((HEADER + "3001,11,new,A01,5\n").replace("\n", "\r\n").encode(), [("3001", 11, "new", "A01", 5)]),
    "unicode location": ((HEADER + "3001,11,new,Regal 🧱 Ä-01,5\n").encode(), [("3001", 11, "new", "Regal 🧱 Ä-01", 5)]),
    "formula-looking part": ((HEADER + "=cmd|calc,11,new,A01,5\n").encode(), [("=cmd|calc", 11, "new", "A01", 5)]),
    "header only": (HEADER.encode(), []),
}


@pytest.fixture
def stocked_db(run, tmp_path):
    """A database already holding a good inventory: a bad import must leave it exactly as it is."""
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "3001,11,new,A01,5\n3002,5,used,B02,7\n", encoding="utf-8")
    db = tmp_path / "ms.db"
    assert run("inventory", "import", good, "--db", db).exit_code == 0
    return db


def lots(db):
    return query(db, "select part_number, color_id, condition, location, quantity from inventory order by id")


@pytest.mark.parametrize("name", list(BAD_INVENTORY_FILES))
def test_bad_inventory_file_is_refused_whole_with_one_line(run, tmp_path, stocked_db, name):
    data, fragment = BAD_INVENTORY_FILES[name]
    path = tmp_path / "stock.csv"
    path.write_bytes(data)
    before = lots(stocked_db)
    line = one_line(run("inventory", "import", path, "--db", stocked_db))
    assert "stock.csv" in line and fragment in line, line
    assert lots(stocked_db) == before


@pytest.mark.parametrize("name", list(ODD_BUT_VALID_INVENTORY_FILES))
def test_odd_but_valid_inventory_file_is_stored_exactly(run, tmp_path, name):
    data, expected = ODD_BUT_VALID_INVENTORY_FILES[name]
    path = tmp_path / "stock.csv"
    path.write_bytes(data)
    result = run("inventory", "import", path, "--db", tmp_path / "ms.db")
    assert result.exit_code == 0, result.stderr
    assert lots(tmp_path / "ms.db") == expected


MISSING_INVENTORY_PATHS = ["no such file", "a directory"]


def test_inventory_path_that_is_missing_or_a_directory(run, tmp_path, stocked_db):
    assert "no such file" in one_line(run("inventory", "import", tmp_path / "nope.csv", "--db", stocked_db))
    (tmp_path / "adir").mkdir()
    assert "is a directory" in one_line(run("inventory", "import", tmp_path / "adir", "--db", stocked_db), code=2)


# --- database files ------------------------------------------------------------------------------
def _damaged(good: bytes, table_root_page: int) -> bytes:
    data = bytearray(good)
    start = (table_root_page - 1) * 4096
    data[start:start + 8] = b"\xab" * 8  # the b-tree page header of that table
    return bytes(data)


# name -> (how to make it from a good, checkpointed database file, fragment of the error)
BAD_DATABASES = {
    "random bytes": (lambda good, path: path.write_bytes(os.urandom(16384)), "file is not a database"),
    "a text file": (lambda good, path: path.write_text("hello, I am not a database\n"), "file is not a database"),
    "truncated to half": (lambda good, path: path.write_bytes(good[: len(good) // 2]), "malformed"),
    "header only": (lambda good, path: path.write_bytes(good[:100]), "malformed"),
    "damaged ledger page": (lambda good, path: path.write_bytes(_damaged(good, _root_page(path, good, "reservations"))),
                            "malformed"),
    "another program's": (lambda good, path: _other_program(path), "another program"),
    "from a newer marketsync": (lambda good, path: _future(path, good), "newer marketsync"),
}
DB_COMMANDS = [("sync",), ("reserve",), ("reserve", "--check"), ("inventory", "import", "STOCK"), ("status",),
               ("orders", "--json"), ("inventory", "list"), ("map", "1", "2")]
# Commands that never read the damaged ledger page may still use the rest of the file (a sync with
# nothing to do among them): for that case only the commands that always read the ledger must fail.
LEDGER_COMMANDS = {("reserve", "--check")}


def _root_page(path, good, table) -> int:
    scratch = path.with_suffix(".scratch")
    scratch.write_bytes(good)
    page = query(scratch, "select rootpage from sqlite_master where name = ?", [table])[0][0]
    scratch.unlink()
    return page


def _other_program(path):
    with sqlite3.connect(path) as conn:
        conn.execute("create table customers (id integer primary key, name text)")


def _future(path, good):
    path.write_bytes(good)
    with sqlite3.connect(path) as conn:
        conn.execute("insert into _sqlite_migrations (migration_set, name, applied_at) "
                     "values ('marketsync', 'm999_from_the_future', '2031-01-01')")
    with sqlite3.connect(path) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")


@pytest.fixture(scope="module")
def good_db_bytes(tmp_path_factory):
    from .helpers import invoke

    tmp = tmp_path_factory.mktemp("good-db")
    csv_path = write_demo_inventory_csv(tmp / "inventory.csv")
    assert invoke("inventory", "import", csv_path, "--db", tmp / "good.db").exit_code == 0
    with sqlite3.connect(tmp / "good.db") as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
    return (tmp / "good.db").read_bytes()


DB_CASES = [(name, command) for name in BAD_DATABASES for command in DB_COMMANDS
            if name != "damaged ledger page" or command in LEDGER_COMMANDS]


@pytest.mark.parametrize(("name", "command"), DB_CASES, ids=[f"{n}-{' '.join(c)}" for n, c in DB_CASES])
def test_unusable_database_is_one_line_and_left_untouched(creds, run, tmp_path, good_db_bytes, name, command):
    make, fragment = BAD_DATABASES[name]
    db = tmp_path / "ms.db"
    make(good_db_bytes, db)
    before = digest(db)
    stock = tmp_path / "stock.csv"
    stock.write_text(HEADER + "3001,11,new,A01,5\n", encoding="utf-8")
    args = [str(stock) if a == "STOCK" else a for a in command]
    line = one_line(run(*args, "--db", db))
    assert fragment in line, line
    assert digest(db) == before, "the command changed a database it refused"
    assert sum(creds.calls.values()) == 0, "a marketplace was called with an unusable database"


DIRECTORY_DB_COMMANDS = [("sync",), ("orders",), ("reserve", "--check")]


def test_database_path_that_is_a_directory(run, tmp_path):
    (tmp_path / "ms.db").mkdir()
    for command in DIRECTORY_DB_COMMANDS:
        assert "is a directory" in one_line(run(*command, "--db", tmp_path / "ms.db"), code=2)


def test_database_in_a_directory_that_does_not_exist(creds, run, tmp_path):
    line = one_line(run("sync", "--db", tmp_path / "nope" / "ms.db"))
    assert "does not exist" in line and "nope" in line
    assert not (tmp_path / "nope").exists()


def _make_read_only(path: Path) -> str:
    """Read-only for real, also for root: the immutable attribute; plain modes for anyone else.
    Returns how, for the message; fails (never skips) when neither is possible."""
    if not is_root():
        os.chmod(path, 0o444)
        return "chmod"
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, f"cannot make {path} read-only as root (chattr: {done.stderr.strip()})"
    return "chattr"


def _undo_read_only(path: Path, how: str) -> None:
    if how == "chattr":
        subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        os.chmod(path, 0o600)


READ_ONLY_READERS = [("orders", "--json"), ("status", "--json"), ("reserve", "--check"), ("inventory", "list")]
READ_ONLY_WRITERS = [("sync",), ("map", "1", "2"), ("inventory", "import", "STOCK")]


def test_read_only_database_is_read_but_never_written(world, run, proc, tmp_path):
    """Separate processes, as cron runs them (an in-process run could reuse a file descriptor
    SQLite opened before the file became read-only)."""
    db = world.fresh_db(tmp_path / "ms.db")
    assert run("sync", "--db", db).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
    before = digest(db)
    how = _make_read_only(db)
    try:
        for reader in READ_ONLY_READERS:
            result = proc(*reader, "--db", db)
            assert result.returncode == 0, f"{reader}: {result.stderr}"
        world.sb.reset_calls()
        world.sb.bricklink.set_status(next(iter(world.sb.bricklink.orders)), "PAID")  # there is work to do
        for writer in READ_ONLY_WRITERS:
            writer = [str(world.template.parent / "inventory.csv") if a == "STOCK" else a for a in writer]
            result = proc(*writer, "--db", db)
            assert result.returncode == 1, (writer, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and ("readonly database" in lines[0] or "read-only" in lines[0]), result.stderr
        assert sum(world.sb.calls.values()) == 0, "sync called a marketplace it could not record"
        assert digest(db) == before
    finally:
        _undo_read_only(db, how)


# --- configuration -------------------------------------------------------------------------------
# a .env line (or a raw byte string) -> (exit code, a fragment of the one-line error)
BAD_ENV = {
    "MARKETSYNC_HTTP_TIMEOUT=abc": (2, "MARKETSYNC_HTTP_TIMEOUT"),
    "MARKETSYNC_HTTP_TIMEOUT=0": (2, "MARKETSYNC_HTTP_TIMEOUT"),
    "MARKETSYNC_HTTP_TIMEOUT=1e9": (2, "MARKETSYNC_HTTP_TIMEOUT"),
    "MARKETSYNC_HTTP_TIMEOUT=nan": (2, "MARKETSYNC_HTTP_TIMEOUT"),
    "MARKETSYNC_RETRY_BACKOFF=nan": (2, "MARKETSYNC_RETRY_BACKOFF"),
    "MARKETSYNC_RETRY_BACKOFF=-1": (2, "MARKETSYNC_RETRY_BACKOFF"),
    "MARKETSYNC_RETRY_BACKOFF=inf": (2, "MARKETSYNC_RETRY_BACKOFF"),
    "MARKETSYNC_HTTP_RETRIES=-1": (2, "MARKETSYNC_HTTP_RETRIES"),
    "MARKETSYNC_HTTP_RETRIES=11": (2, "MARKETSYNC_HTTP_RETRIES"),
    "MARKETSYNC_HTTP_RETRIES=2.5": (2, "MARKETSYNC_HTTP_RETRIES"),
    "MARKETSYNC_CONCURRENCY=9": (2, "MARKETSYNC_CONCURRENCY"),
    "MARKETSYNC_CONCURRENCY=0": (2, "MARKETSYNC_CONCURRENCY"),
    "BRICKOWL_RATE_LIMIT=0": (2, "BRICKOWL_RATE_LIMIT"),
    "BRICKOWL_RATE_LIMIT=nan": (2, "BRICKOWL_RATE_LIMIT"),
    "BRICKLINK_DAILY_BUDGET=0": (2, "BRICKLINK_DAILY_BUDGET"),
    "BRICKLINK_DAILY_BUDGET=lots": (2, "BRICKLINK_DAILY_BUDGET"),
    "BRICKLINK_API_URL=ftp://example.com": (2, "BRICKLINK_API_URL"),
    "BRICKOWL_API_URL=not a url": (2, "BRICKOWL_API_URL"),
    "BRICKOWL_API_URL=http://[::1": (2, "BRICKOWL_API_URL"),
    "BRICKOWL_API_URL=http:///v1": (2, "BRICKOWL_API_URL"),
    "MARKETSYNC_ACCOUNT=   ": (2, "MARKETSYNC_ACCOUNT"),
    "MARKETSYNC_LOG_FILE=/nonexistent/dir/run.log": (2, "MARKETSYNC_LOG_FILE"),
    "this is not a NAME=value line": (2, ".env line"),
    'BRICKOWL_API_KEY="unterminated': (2, ".env line"),
    "export MARKETSYNC_HTTP_RETRIES=x": (2, "MARKETSYNC_HTTP_RETRIES"),
    b"MARKETSYNC_DB=\xff\xfe.db": (2, ".env: cannot read"),
    "BRICKLINK_TOKEN_SECRET=": (2, "missing BRICKLINK_TOKEN_SECRET"),
    "MARKETSYNC_DB=/nonexistent/dir/ms.db": (1, "/nonexistent/dir/ms.db"),
}


@pytest.mark.parametrize("line", list(BAD_ENV), ids=[repr(x)[:60] for x in BAD_ENV])
def test_bad_env_value_is_one_line_naming_it_and_contacts_nothing(creds, proc, tmp_path, line):
    code, fragment = BAD_ENV[line]
    secrets = {k: v for k, v in creds.env().items() if not k.endswith("_URL")}
    lines = [f"{k}={v}".encode() for k, v in creds.env().items()]
    lines.append(line if isinstance(line, bytes) else line.encode())
    (tmp_path / ".env").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / ".env").chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETSYNC_", "BRICKLINK_", "BRICKOWL_"))}
    result = subprocess.run([sys.executable, "-m", "marketsync", "sync"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == code, result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("Error: ") and fragment in errors[0], result.stderr
    assert not any(value in result.stderr + result.stdout for value in secrets.values())
    assert sum(creds.calls.values()) == 0
    assert not (tmp_path / "marketsync.db").exists() or code == 1


# --- unknown providers and statuses ----------------------------------------------------------------
UNKNOWN_PROVIDER_COMMANDS = [
    ("sync", "--provider", "ebay"), ("orders", "--provider", "ebay"), ("orders", "show", "ebay:1"),
    ("reserve", "--release", "ebay:1", "--yes"), ("reserve", "--ledger", "ebay:1"), ("api", "ebay", "/orders"),
    ("inventory", "pull", "--provider", "ebay"), ("orders", "--status", "lost-in-the-post"),
    ("stock", "push", "--provider", "ebay"), ("stock", "adopt", "ebay:1"),
]


@pytest.mark.parametrize("command", UNKNOWN_PROVIDER_COMMANDS, ids=[" ".join(c) for c in UNKNOWN_PROVIDER_COMMANDS])
def test_unknown_provider_or_status_option_is_a_usage_error(creds, run, stocked_db, command):
    line = one_line(run(*command, "--db", stocked_db) if command[0] != "api" else run(*command), code=2)
    assert "ebay" in line or "brickowl" in line or "lost-in-the-post" in line, line
    assert sum(creds.calls.values()) == 0


UNKNOWN_STATUSES = [("bricklink", "AWAITING_PICKUP"), ("bricklink", ""), ("bricklink", "paid "),
                    ("brickowl", "Awaiting Pickup")]


@pytest.mark.parametrize(("provider", "status"), UNKNOWN_STATUSES, ids=[f"{p}-{s!r}" for p, s in UNKNOWN_STATUSES])
def test_unknown_marketplace_status_keeps_stock_reserved_and_warns_once(creds, run, stocked_db, monkeypatch,
                                                                        provider, status):
    import marketsync.sandbox.brickowl as bo_sandbox

    if provider == "bricklink":
        order_id = creds.bricklink.add_order(status=status, lines=[{"no": "3001", "color_id": 11, "quantity": 2,
                                                                    "remarks": "A01"}])
    else:
        monkeypatch.setattr(bo_sandbox, "STATUSES", bo_sandbox.STATUSES + (status,))
        order_id = creds.brickowl.add_order(status=len(bo_sandbox.STATUSES) - 1, lines=[
            {"boid": "487300-38", "ordered_quantity": 2, "personal_note": "A01", "ids": [{"id": "3001", "type": "ldraw"}]}])
    first = run("sync", "--db", stocked_db)
    assert first.exit_code == 0, first.stderr
    expected_status = "paid" if status == "paid " else "unknown"  # BrickLink statuses are trimmed, not guessed
    assert query(stocked_db, "select status from orders where order_id = ?", [str(order_id)]) == [(expected_status,)]
    if expected_status == "unknown":
        warnings = [l for l in first.stderr.splitlines() if f"order {order_id} has an unknown status" in l]
        assert len(warnings) == 1, first.stderr
        again = run("sync", "--db", stocked_db)
        assert again.exit_code == 0 and f"order {order_id}" not in again.stderr  # reported once, not every run
    assert query(stocked_db, "select sum(quantity) from reservations where order_id = ?", [str(order_id)]) == [(2,)]
    assert_invariants(run, stocked_db)


# --- absurd marketplace payloads -------------------------------------------------------------------
def _wrap_wire(store, method_name, edit):
    """Let the emulated marketplace send what it never would: edit each serialised object."""
    original = getattr(store, method_name)

    def wrapped(*args, **kwargs):
        return edit(original(*args, **kwargs))

    setattr(store, method_name, wrapped)


def _bl(sb, **line):
    return sb.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 11, "remarks": "A01", **line}])


def _bo(sb, **line):
    base = {"boid": "487300-38", "ordered_quantity": 2, "personal_note": "A01", "ids": [{"id": "3001", "type": "ldraw"}]}
    return sb.brickowl.add_order(status="Payment Received", lines=[{**base, **line}])


def _drop(keys):
    return lambda obj: {k: v for k, v in obj.items() if k not in keys}


# name -> (set the marketplace up: returns (provider, order id); what must hold afterwards)
ABSURD_PAYLOADS = {
    "huge quantity": (lambda sb: ("bricklink", _bl(sb, quantity=10**15)), "reserved:1000000000000000"),
    "quantity beyond 2**53": (lambda sb: ("bricklink", _bl(sb, quantity=10**20)), "nothing"),
    "quantity beyond 2**64": (lambda sb: ("bricklink", _bl(sb, quantity=2**70)), "nothing"),
    "negative quantity": (lambda sb: ("bricklink", _bl(sb, quantity=-3)), "nothing"),
    "zero quantity": (lambda sb: ("bricklink", _bl(sb, quantity=0)), "nothing"),
    "negative price": (lambda sb: ("bricklink", _bl(sb, quantity=2, unit_price="-5.0000")), "reserved:2"),
    "absurd price": (lambda sb: ("bricklink", _bl(sb, quantity=2, unit_price="1e20")), "reserved:2"),
    "unicode name and bin": (lambda sb: ("bricklink", _bl(sb, quantity=2, remarks="Regal 🧱 Ä-01",
                                                         name="Brick «2 × 4» 积木 ✓")), "reserved:2"),
    "right-to-left and combining text": (lambda sb: ("bricklink", _bl(sb, quantity=2, name="\u202eReversed e\u0301",
                                                                     remarks="A01")), "reserved:2"),
    "control characters in part and bin": (lambda sb: ("bricklink", _bl(sb, quantity=2, no="30\n01\x1b[31m",
                                                                       remarks="Z\r\n99")), "unmatched"),
    "HTML entities": (lambda sb: ("bricklink", _bl(sb, quantity=2, name="Tile &#40;Grille&#41; <b>")), "reserved:2"),
    "item without quantity": (lambda sb: (_wrap_wire(sb.bricklink, "_item", _drop({"quantity"})),
                                          ("bricklink", _bl(sb, quantity=2)))[1], "nothing"),
    "item without part or lot id": (lambda sb: (_wrap_wire(sb.bricklink, "_item", _drop({"item", "inventory_id"})),
                                                ("bricklink", _bl(sb, quantity=2)))[1], "unmatched"),
    "summary without status or cost": (lambda sb: (_wrap_wire(sb.bricklink, "_summary", _drop({"status", "cost"})),
                                                   ("bricklink", _bl(sb, quantity=2)))[1], "reserved:2"),
    "brickowl quantity as text": (lambda sb: (_wrap_wire(sb.brickowl, "_item", lambda o: {**o, "ordered_quantity": "lots"}),
                                              ("brickowl", _bo(sb)))[1], "nothing"),
    "brickowl line without ids": (lambda sb: (_wrap_wire(sb.brickowl, "_item", _drop({"order_item_id", "boid", "ids",
                                                                                     "lot_id"})),
                                              ("brickowl", _bo(sb)))[1], "unmatched"),
    "brickowl refunded more than ordered": (lambda sb: ("brickowl", _bo(sb, refunded_quantity=5)), "nothing"),
    "brickowl list without totals": (lambda sb: (_wrap_wire(sb.brickowl, "_list_entry", _drop(
        {"order_date", "total_quantity", "total_lots", "base_order_total"})),
                                                          ("brickowl", _bo(sb)))[1], "reserved:2"),
    "brickowl unicode note": (lambda sb: ("brickowl", _bo(sb, personal_note="Regal 🧱 Ä-01",
                                                       name="LEGO «Tile» 积木")), "reserved:2"),
}


@pytest.fixture
def unicode_stock(run, tmp_path):
    path = tmp_path / "stock.csv"
    path.write_text(HEADER + "3001,11,new,A01,10\n3001,11,new,Regal 🧱 Ä-01,10\n", encoding="utf-8")
    db = tmp_path / "ms.db"
    assert run("inventory", "import", path, "--db", db).exit_code == 0
    return db


@pytest.mark.parametrize("name", list(ABSURD_PAYLOADS))
def test_absurd_payload_is_stored_safely(creds, run, unicode_stock, name):
    setup, expectation = ABSURD_PAYLOADS[name]
    provider, order_id = setup(creds)
    result = run("sync", "--db", unicode_stock)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert not creds.errors, creds.errors[0]
    # the order is there, nothing was lost
    assert query(unicode_stock, "select count(*) from orders where provider = ? and order_id = ?",
                 [provider, str(order_id)]) == [(1,)]
    reserved = query(unicode_stock, "select coalesce(sum(quantity), 0) from reservations where order_id = ?",
                     [str(order_id)])[0][0]
    if expectation.startswith("reserved:"):
        assert reserved == int(expectation.split(":")[1]), result.stderr
    else:  # "nothing" (no quantity to reserve) or "unmatched" (nothing to reserve it on, with the reason)
        assert reserved == 0
    if expectation == "unmatched":
        reasons = query(unicode_stock, "select unmatched_reason from order_items where order_id = ?", [str(order_id)])
        assert reasons and all(r for (r,) in reasons), reasons
    # every problem is one line: no control character from the payload breaks a line or a terminal
    for line in result.stderr.splitlines():
        assert "\x1b" not in line and "\r" not in line, repr(line)
    problems = [l for l in result.stderr.splitlines() if l]
    assert all(l.startswith(("bricklink", "brickowl", "oversold")) for l in problems), result.stderr
    assert_invariants(run, unicode_stock)
    # what was stored reads back through every reader
    for reader in (("orders", "--json"), ("orders", "--csv"), ("orders", "show", f"{provider}:{order_id}", "--json"),
                   ("status", "--json"), ("reserve", "--ledger", "--json"), ("orders",)):
        shown = run(*reader, "--db", unicode_stock)
        assert shown.exit_code == 0, f"{reader}: {shown.stderr}"
    again = run("sync", "--db", unicode_stock)  # and a second run changes nothing
    assert again.exit_code == 0
    assert query(unicode_stock, "select coalesce(sum(quantity), 0) from reservations where order_id = ?",
                 [str(order_id)])[0][0] == reserved


# --- a reader that stops reading (issue 12, item 10) -----------------------------------------------
PIPE_ORDERS = 4000
# (the table is not among them: rich renders it whole before writing, which for a table this size takes
# seconds, and it always ended well)
PIPE_CASES = [("orders", "--csv"), ("orders", "--json")]


@pytest.fixture(scope="module")
def many_orders(tmp_path_factory) -> Path:
    """A database whose orders table, printed, is far larger than a pipe's buffer."""
    from marketsync.store import open_store

    db_path = tmp_path_factory.mktemp("pipe") / "ms.db"
    store = open_store(db_path, "default")
    db = store.db
    with db.atomic():
        db.conn.executemany(
            "insert into orders (business_account_id, provider, order_id, status, buyer_name, date_ordered, "
            "lot_count, piece_count, grand_total, currency) values ('default', ?, ?, 'paid', ?, ?, 3, 12, '9.99', 'EUR')",
            [("bricklink" if n % 2 else "brickowl", str(10_000 + n), f"Buyer number {n}",
              f"2026-01-{1 + n % 28:02d}T10:00:00Z") for n in range(PIPE_ORDERS)])
    db.conn.close()
    return db_path


@pytest.mark.parametrize("command", PIPE_CASES, ids=" ".join)
def test_output_into_a_pipe_closed_early_exits_0_quietly(many_orders, command):
    """`marketsync orders --csv | head -1` under `set -o pipefail`: a reader that had enough is
    not a failure -- exit 0, nothing on stderr (no 'Broken pipe', no 'Exception ignored')."""
    args = [sys.executable, "-m", "marketsync", *command, "--db", str(many_orders)]
    whole = subprocess.run(args, capture_output=True, timeout=120)
    assert whole.returncode == 0 and len(whole.stdout) > 4 * 65536, "the output must overflow a pipe buffer"

    script = 'set -o pipefail; "$@" 2>stderr.txt | head -1'
    piped = subprocess.run(["bash", "-c", script, "bash", *args], capture_output=True, text=True, timeout=120,
                           cwd=many_orders.parent)
    assert piped.returncode == 0, (piped.returncode, (many_orders.parent / "stderr.txt").read_text())
    assert (many_orders.parent / "stderr.txt").read_text() == ""
    assert piped.stdout == whole.stdout.decode().splitlines(keepends=True)[0]
