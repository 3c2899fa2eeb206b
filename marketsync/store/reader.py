"""Opening the SQLite file with plain sqlite3: the checks every opening makes, and the store of a
command that only reads.

Every opening checks the same things (:func:`marketsync.store.connection.open_db` too): a missing
or empty file, one we may not read, one of another program, one a newer marketsync wrote, group
and other access taken away. A command that only reads (``status``) opens the file here and does
not load sqlite-utils: a file that is current is read through :class:`Reader`; one that needs
anything written first (migrations, views out of date) is opened by ``open_db``, as before.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator, Sequence

from marketsync.errors import DatabaseError
from marketsync.store import views
from marketsync.store.base import Store

if TYPE_CHECKING:  # a Reader stands in for the read side of sqlite-utils' Database
    from sqlite_utils import Database as _ReadSide
else:
    _ReadSide = object

BUSY_TIMEOUT_MS = 10_000
MIGRATION_SET = "marketsync"
MIGRATIONS_TABLE = "_sqlite_migrations"  # sqlite-utils' table of the migrations applied
# The migrations of store/schema.py, in order (tests/test_database.py checks the two agree). A file
# whose record is anything else goes to open_db, which migrates it or says what is wrong.
MIGRATIONS = (
    "m001_initial", "m002_catalog_checked_at", "m003_lines_without_raw_payloads", "m004_listings",
    "m005_pick_list", "m006_id_lookups_per_item_type", "m007_reservations_taken",
    "m008_datasette_money_and_views", "m009_picks", "m010_shelf_truth", "m011_listener", "m012_mirror",
    "m013_everyday", "m014_cancel_restocks", "m015_relist_sold_out", "m016_late_writes", "m017_backup_marks",
)


class Reader(_ReadSide):
    """What the read side of the store asks of sqlite-utils' ``Database`` (``conn``, ``execute``,
    ``query``, ``close``), over a plain connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence | dict[str, Any] | None = None) -> sqlite3.Cursor:
        return self.conn.execute(sql) if parameters is None else self.conn.execute(sql, parameters)

    def query(self, sql: str, params: Sequence | dict[str, Any] | None = None) -> Generator[dict, None, None]:
        cursor = self.execute(sql, params)
        keys = [column[0] for column in cursor.description]
        return (dict(zip(keys, row)) for row in cursor)

    def close(self) -> None:
        self.conn.close()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"a store opened for reading has no {name!r}: open it with open_store to write")


def open_reader(path: str | os.PathLike, account: str) -> Store:
    """One account's store of an existing file, for reading; opened by ``open_store`` (migrated,
    views rebuilt) when the file needs that first."""
    path = Path(path)
    check_file(path, create=False)
    conn = connect(path)
    try:
        tables, have_views = schema(conn)
        names = applied(conn, tables)
        current = names == list(MIGRATIONS) and not (views.stale(have_views) and os.access(path, os.W_OK))
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DatabaseError(f"database {path} cannot be used: {exc}") from None
    if current:
        return Store(Reader(conn), account, str(path))
    conn.close()  # from a newer marketsync, of another program, to migrate: the full opening says or does it
    from marketsync.store.connection import open_store

    return open_store(path, account, create=False)


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the file, with the settings every opening gives it (``-wal`` and ``-shm``
    owner-only first)."""
    owner_only(path, Path(f"{path}-wal"), Path(f"{path}-shm"))
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA recursive_triggers = on")  # what sqlite-utils sets on every connection
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"database {path} cannot be used: {exc}") from None
    return conn


def check_file(path: Path, create: bool) -> None:
    """The file is there and readable, or (``create``) made owner-only (0600) before SQLite touches
    it; a reader refuses an empty file rather than write a schema into it."""
    if path.exists():
        if not os.access(path, os.R_OK):
            raise DatabaseError(f"database {path} is not readable")
        if not create and path.is_file() and path.stat().st_size == 0:
            raise DatabaseError(f"database {path} is empty (0 bytes), not a marketsync database yet (run "
                                "'marketsync inventory import' or 'marketsync sync' first)")
        return
    if not create:
        raise DatabaseError(f"database {path} does not exist (run 'marketsync inventory import' or "
                            "'marketsync sync' first)")
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise DatabaseError(f"cannot create database {path}: {exc.strerror}") from None


def owner_only(*paths: Path) -> None:
    """Take group and other access away from files of ours that have it (a database restored
    from a backup, a log file made by hand): they hold buyers' names and addresses. A read-only
    file stays read-only; a file of another user, or one we may not chmod, is left alone."""
    for path in paths:
        try:
            info = os.stat(path)
            if info.st_uid == os.geteuid() and info.st_mode & 0o077:
                os.chmod(path, info.st_mode & 0o700)
        except OSError:
            pass


def schema(conn: sqlite3.Connection) -> tuple[set[str], dict[str, str]]:
    """The file's table names, and its views' SQL by name."""
    rows = conn.execute("select type, name, sql from sqlite_master where type in ('table', 'view')").fetchall()
    return {name for kind, name, _ in rows if kind == "table"}, {name: sql for kind, name, sql in rows if kind == "view"}


def applied(conn: sqlite3.Connection, tables: set[str]) -> list[str]:
    """Names of our migrations applied to the file, in the order they were applied."""
    if MIGRATIONS_TABLE not in tables:
        return []
    return [row[0] for row in conn.execute(
        f"select name from [{MIGRATIONS_TABLE}] where migration_set = ? order by rowid", [MIGRATION_SET])]


def check_ours(path: Path, tables: set[str], applied: list[str], known: set[str]) -> None:
    """Refuse a file a newer marketsync wrote, and one of another program (a file holding only
    sqlite-utils' migrations table is ours, killed while being created)."""
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise DatabaseError(
            f"database {path} was written by a newer marketsync (unknown migration {unknown[0]}); upgrade marketsync"
        )
    if not applied and tables - {MIGRATIONS_TABLE}:
        raise DatabaseError(f"{path} is an SQLite database of another program, not marketsync's; "
                            "use another --db path")
