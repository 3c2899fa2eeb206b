"""Online backups of the database file through SQLite's backup API.

A backup is one self-contained SQLite file (rollback journal, no ``-wal`` beside it), owner-only
(0600), complete or absent: it is written to a temporary file in the target's directory, checked
with ``PRAGMA quick_check``, synced, then linked to its name, which it never replaces. The
source is only read (a read-only connection, or the caller's own), so a failed backup (a full
disk, a read-only directory) leaves the database exactly as it was.

Backups made without a path are named after the database and the UTC moment, beside it:
``marketsync.db.backup-20261125T090000Z`` (a ``-2``, ``-3``... suffix when two fall in one
second), and only the newest ``keep`` of them are kept.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import secrets
import sqlite3
from pathlib import Path

from marketsync.errors import DatabaseError
from marketsync.model import now_iso

KEEP = 7  # backups kept beside a database (the newest ones)
INFIX = ".backup-"
STAMP = "%Y%m%dT%H%M%SZ"
_TEMP = re.compile(r"\.tmp-(\d+)-[0-9a-f]+(-journal|-wal|-shm)?$")


def open_source(path: str | os.PathLike) -> sqlite3.Connection:
    """A read-only connection to a marketsync database, for backing it up (never writes to it)."""
    path = Path(path)
    if not path.exists():
        raise DatabaseError(f"database {path} does not exist")
    if path.is_dir():
        raise DatabaseError(f"database {path} is a directory")
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise DatabaseError(f"database {path} cannot be used: {exc}") from None
    try:
        ours = conn.execute("select count(*) from sqlite_master where type = 'table' and name = '_sqlite_migrations'"
                            ).fetchone()[0] and conn.execute(
            "select count(*) from _sqlite_migrations where migration_set = 'marketsync'").fetchone()[0]
    except sqlite3.Error as exc:
        conn.close()
        raise DatabaseError(f"database {path} cannot be used: {exc}") from None
    if not ours:
        conn.close()
        raise DatabaseError(f"{path} is not a marketsync database")
    return conn


def copy(source: sqlite3.Connection, dest: Path) -> None:
    """Copy the database ``source`` is connected to into the new file ``dest``.

    Raises ``FileExistsError`` when ``dest`` exists, ``OSError`` or ``sqlite3.Error`` when the copy
    cannot be written; nothing is left behind then."""
    if os.path.lexists(dest):
        raise FileExistsError(errno.EEXIST, "a backup never replaces a file", str(dest))
    temp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        target = sqlite3.connect(str(temp))
        try:
            source.backup(target)
            _mark(target)
            target.execute("PRAGMA journal_mode = DELETE")  # one file, restorable with cp: no -wal beside it
            problems = [message for (message,) in target.execute("PRAGMA quick_check") if message != "ok"]
            if problems:
                raise sqlite3.DatabaseError(f"the copy fails SQLite's check: {problems[0]}")
        finally:
            target.close()
        _fsync(temp)
        _link(temp, dest)
        _fsync(dest.parent)
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                os.remove(f"{temp}{suffix}")
            except FileNotFoundError:
                pass


def _mark(copy: sqlite3.Connection) -> None:
    """The copy says when it was taken (``_backup_marks``; a database from before that table has
    none): restored, it tells marketsync that its own listing changes since are unknown to it."""
    if copy.execute("select 1 from sqlite_master where type = 'table' and name = '_backup_marks'").fetchone():
        with copy:
            copy.execute("insert or ignore into _backup_marks (taken_at) values (?)", [now_iso()])


def _link(temp: Path, dest: Path) -> None:
    try:
        os.link(temp, dest)  # fails when dest exists: two backups in one second never overwrite
    except FileExistsError:
        raise
    except OSError as exc:  # a filesystem without hard links
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, "a backup never replaces a file", str(dest)) from None
        os.rename(temp, dest)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # a directory on a filesystem that does not sync them
            raise
    finally:
        os.close(fd)


# --- the backups beside a database ---------------------------------------------------------------
def _pattern(db_path: Path) -> re.Pattern:
    return re.compile(re.escape(db_path.name + INFIX) + r"(\d{8}T\d{6}Z)(?:-(\d+))?$")


def backups(db_path: str | os.PathLike) -> list[tuple[dt.datetime, Path]]:
    """The backups made beside the database (by name: when, oldest first)."""
    db_path = Path(db_path)
    pattern = _pattern(db_path)
    found = []
    try:
        names = os.listdir(db_path.parent if str(db_path.parent) else ".")
    except OSError:
        return []
    for name in names:
        match = pattern.match(name)
        if match:
            when = dt.datetime.strptime(match.group(1), STAMP).replace(tzinfo=dt.timezone.utc)
            found.append(((when, int(match.group(2) or 1)), db_path.with_name(name)))
    return [(key[0], path) for key, path in sorted(found)]


def backup_beside(db_path: str | os.PathLike, source: sqlite3.Connection, *, keep: int = KEEP,
                  now: dt.datetime | None = None) -> Path:
    """A new backup beside the database, then only the newest ``keep`` kept; the path written."""
    db_path = Path(db_path)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime(STAMP)
    for number in range(1, 100):
        dest = db_path.with_name(f"{db_path.name}{INFIX}{stamp}" + (f"-{number}" if number > 1 else ""))
        try:
            copy(source, dest)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - a hundred backups in one second
        raise FileExistsError(errno.EEXIST, "too many backups in one second", str(dest))
    prune(db_path, keep)
    return dest


def prune(db_path: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` backups beside the database, and temporary files of
    backups whose process is gone (killed mid-copy); the paths removed."""
    removed = []
    for _, path in backups(db_path)[:-keep] if keep > 0 else []:
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    prefix = db_path.name + INFIX
    try:
        names = os.listdir(db_path.parent if str(db_path.parent) else ".")
    except OSError:
        return removed
    for name in names:
        match = _TEMP.search(name)
        if name.startswith(prefix) and match and not _alive(int(match.group(1))):
            try:
                os.remove(db_path.with_name(name))
                removed.append(db_path.with_name(name))
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def reason(exc: BaseException) -> str:
    """Why a backup could not be written, in a few words (a full disk, a read-only directory)."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def before_upgrade(conn: sqlite3.Connection, db_path: str | os.PathLike) -> Path:
    """The backup ``open_db`` makes before it migrates a database holding data; a failure refuses
    the upgrade (the file is left exactly as it was)."""
    try:
        return backup_beside(db_path, conn)
    except (OSError, sqlite3.Error) as exc:
        raise DatabaseError(f"cannot back up {db_path} before upgrading its schema ({reason(exc)}); "
                            "nothing was changed: free some space or make its directory writable") from None


# --- the integrity check, and the mark a failed one leaves beside the database ------------------
DAMAGED = ".damaged"  # beside the database: the first problem SQLite's check found, until it passes


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """What ``PRAGMA quick_check`` finds wrong with the database (nothing: it is sound)."""
    try:
        rows = [message for (message,) in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:  # so damaged the check itself cannot run
        return [str(exc)]
    lines = [line.strip() for message in rows if message != "ok" for line in message.splitlines()]
    return [line for line in lines if line and not line.startswith("***")]


def damage_mark(db_path: str | os.PathLike) -> str | None:
    """The problem a failed check left beside the database, if one did."""
    try:
        with open(f"{db_path}{DAMAGED}", encoding="utf-8") as mark:
            return mark.read().strip() or "SQLite's integrity check failed"
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"SQLite's integrity check failed ({exc.strerror})"


def mark_damaged(db_path: str | os.PathLike, problem: str) -> None:
    try:
        fd = os.open(f"{db_path}{DAMAGED}", os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as mark:
            mark.write(problem + "\n")
    except OSError:  # a read-only directory: every run checks again anyway while the damage lasts
        pass


def clear_damaged(db_path: str | os.PathLike) -> None:
    try:
        os.remove(f"{db_path}{DAMAGED}")
    except OSError:
        pass
