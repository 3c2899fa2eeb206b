"""Opening the SQLite file: owner-only, WAL, migrated, and clear errors for bad files."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path
from typing import Callable

from sqlite_utils import Database

from marketsync.errors import DatabaseError
from marketsync.store import backup, views
from marketsync.store.base import Store
from marketsync.store.reader import applied, check_file, check_ours, connect, schema
from marketsync.store.schema import migrations


def open_db(path: str | os.PathLike, *, create: bool = True) -> Database:
    """Open (and if ``create``, create) the database, migrated to the current schema.

    A new file is created owner-only (0600) before SQLite touches it; SQLite gives the
    ``-wal`` and ``-shm`` files the same mode.
    """
    path = Path(path)
    check_file(path, create)
    conn = connect(path)
    try:
        db = Database(conn, execute_plugins=False)  # no entry-point scan: marketsync uses no sqlite-utils plugin
        # Two reads of the schema instead of sqlite-utils' per-question queries: every command opens the file
        tables, have_views = schema(conn)
        names = applied(conn, tables)
        check_ours(path, tables, names, {m.name for m in migrations._migrations})
        if {m.name for m in migrations._migrations} - set(names):
            _migrate(db, path)
            have_views = schema(conn)[1]
        if views.stale(have_views) and os.access(path, os.W_OK):  # the views follow the code's rule, never a copy
            _in_write_transaction(db, views.ensure)
        db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DatabaseError(f"database {path} cannot be used: {exc}") from None
    return db


def _migrate(db: Database, path: Path) -> None:
    if not os.access(path, os.W_OK):
        raise DatabaseError(f"database {path} is read-only and needs upgrading")
    if migrations.applied(db):  # a database with data: copied beside it first (store/backup.py)
        backup.before_upgrade(db.conn, path)
    if db.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.enable_wal()
    # Under a write lock, so a reader opening a brand-new file while `sync` creates it waits and
    # then finds nothing left to migrate.
    _in_write_transaction(db, _bring_up_to_date)


def _bring_up_to_date(db: Database) -> None:
    if schema(db.conn)[0]:  # read under the lock: another process may have created it meanwhile
        migrations.apply(db)
        return
    # An empty file gets what the migrations build, replayed: built once per process in memory (a
    # command creating many databases -- the tests, a demo -- pays for the migrations once)
    statements, names = _current_schema()
    for sql in statements:
        db.execute(sql)
    now = str(dt.datetime.now(dt.timezone.utc))
    db.conn.executemany(f"insert into [{migrations.migrations_table}] (migration_set, name, applied_at) "
                        "values (?, ?, ?)", [(migrations.name, name, now) for name in names])


_built: list[tuple[list[str], list[str]]] = []


def _current_schema() -> tuple[list[str], list[str]]:
    """The statements of the schema the migrations build (in the order SQLite recorded them) and
    the migrations' names, from one in-memory database per process."""
    if not _built:
        memory = Database(sqlite3.connect(":memory:"), execute_plugins=False)
        migrations.apply(memory)
        statements = [sql for (sql,) in memory.execute(
            "select sql from sqlite_master where sql is not null and name not like 'sqlite_%' order by rowid")]
        _built.append((statements, applied(memory.conn, schema(memory.conn)[0])))
        memory.conn.close()
    return _built[0]


def _in_write_transaction(db: Database, work: Callable[[Database], object]) -> None:
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        work(db)
        db.conn.execute("COMMIT")
    except BaseException:
        db.conn.rollback()
        raise


def open_store(path: str | os.PathLike, account: str, *, create: bool = True) -> Store:
    """:func:`open_db` as one account's :class:`Store`."""
    return Store(open_db(path, create=create), account, str(path))


def writable_check(db: Database, path: str | os.PathLike) -> None:
    if not os.access(path, os.W_OK):
        raise DatabaseError(f"database {path} is read-only")


DEMO_APPLICATION_ID = 0x6D734465  # "msDe": the header mark of a database `marketsync demo` made


def mark_demo(store: Store) -> None:
    store.db.execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")


def is_demo_database(path: str | os.PathLike) -> bool:
    """Does ``path`` hold a database `marketsync demo` made (and may therefore replace)?"""
    try:
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
        try:
            return conn.execute("PRAGMA application_id").fetchone()[0] == DEMO_APPLICATION_ID
        finally:
            conn.close()
    except sqlite3.Error:
        return False
