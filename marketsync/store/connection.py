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
from marketsync.store.schema import migrations

BUSY_TIMEOUT_MS = 10_000


def open_db(path: str | os.PathLike, *, create: bool = True) -> Database:
    """Open (and if ``create``, create) the database, migrated to the current schema.

    A new file is created owner-only (0600) before SQLite touches it; SQLite gives the
    ``-wal`` and ``-shm`` files the same mode.
    """
    path = Path(path)
    _make_or_check(path, create)
    owner_only(path, Path(f"{path}-wal"), Path(f"{path}-shm"))
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        db = Database(conn, execute_plugins=False)  # no entry-point scan: marketsync uses no sqlite-utils plugin
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        # Two reads of the schema instead of sqlite-utils' per-question queries: every command opens the file
        tables, have_views = _schema(db)
        applied = _applied(db, tables)
        _check_not_from_future(applied, path)
        # (a file holding only sqlite-utils' migrations table is ours, killed while being created)
        if not applied and tables - {migrations.migrations_table}:
            raise DatabaseError(f"{path} is an SQLite database of another program, not marketsync's; "
                                "use another --db path")
        if {m.name for m in migrations._migrations} - set(applied):
            _migrate(db, path)
            have_views = _schema(db)[1]
        if views.stale(have_views) and os.access(path, os.W_OK):  # the views follow the code's rule, never a copy
            _in_write_transaction(db, views.ensure)
        db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"database {path} cannot be used: {exc}") from None
    return db


def _make_or_check(path: Path, create: bool) -> None:
    if path.exists():
        if not os.access(path, os.R_OK):
            raise DatabaseError(f"database {path} is not readable")
        if not create and path.is_file() and path.stat().st_size == 0:  # a reader never writes a schema into it
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
    if _schema(db)[0]:  # read under the lock: another process may have created it meanwhile
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
        _built.append((statements, _applied(memory, _schema(memory)[0])))
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


def _schema(db: Database) -> tuple[set[str], dict[str, str]]:
    """The file's table names, and its views' SQL by name."""
    rows = db.execute("select type, name, sql from sqlite_master where type in ('table', 'view')").fetchall()
    return {name for kind, name, _ in rows if kind == "table"}, {name: sql for kind, name, sql in rows if kind == "view"}


def _applied(db: Database, tables: set[str]) -> list[str]:
    """Names of our migrations applied to the file, in the order they were applied."""
    if migrations.migrations_table not in tables:
        return []
    return [row[0] for row in db.execute(
        f"select name from [{migrations.migrations_table}] where migration_set = ? order by rowid", [migrations.name])]


def _check_not_from_future(applied: list[str], path: Path) -> None:
    known = {m.name for m in migrations._migrations}
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise DatabaseError(
            f"database {path} was written by a newer marketsync (unknown migration {unknown[0]}); upgrade marketsync"
        )


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
