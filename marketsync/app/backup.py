"""``marketsync backup`` and the backup ``sync`` makes at most once a day.

Both copy the database online (SQLite's backup API: a consistent copy while other commands read
and write it) into one owner-only file. Without a path the copy goes beside the database as
``DB.backup-YYYYMMDDTHHMMSSZ`` and only the newest few are kept (:mod:`marketsync.store.backup`,
which also makes the copy ``open_db`` takes before every schema upgrade).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

from marketsync.errors import DatabaseError
from marketsync.store import backup as stored

DAILY = dt.timedelta(hours=24)
KEEP = stored.KEEP


def make(db_path: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Back the database up to ``dest`` (a new file, or a directory to put one in), or beside it
    (keeping the newest few); the path written. The database is only read."""
    source = stored.open_source(db_path)
    try:
        if dest is None:
            target = Path(db_path)
            try:
                return stored.backup_beside(target, source)
            except (OSError, sqlite3.Error) as exc:
                raise _failed(db_path, target.parent, exc) from None
        path = Path(dest)
        if path.is_dir():
            stamp = dt.datetime.now(dt.timezone.utc).strftime(stored.STAMP)
            path = path / f"{Path(db_path).name}{stored.INFIX}{stamp}"
        try:
            stored.copy(source, path)
        except FileExistsError:
            raise DatabaseError(f"{path} exists; a backup never replaces a file (give a new path)") from None
        except (OSError, sqlite3.Error) as exc:
            raise _failed(db_path, path, exc) from None
        return path
    finally:
        source.close()


def due(db_path: str | os.PathLike, now: dt.datetime | None = None) -> bool:
    """No backup beside the database was made in the last 24 hours."""
    made = stored.backups(db_path)
    now = now or dt.datetime.now(dt.timezone.utc)
    return not made or abs(now - made[-1][0]) >= DAILY


def daily(db_path: str | os.PathLike) -> str | None:
    """``sync``'s backup, at most once a day; the problem line when it could not be made.

    The database is checked first (SQLite's ``quick_check``): a damaged one raises
    :class:`DatabaseError` before anything is written, and is checked again on every write until
    it passes (:func:`refuse_if_damaged`). A database that does not exist yet or cannot be opened
    is left to the sync to report. A backup that cannot be written is one line, and never a reason
    not to sync."""
    if not os.path.isfile(db_path) or not (due(db_path) or stored.damage_mark(db_path)):
        return None
    try:
        source = stored.open_source(db_path)
    except DatabaseError:
        return None
    try:
        _verify(db_path, source)
        if not due(db_path):
            return None
        stored.backup_beside(db_path, source)
    except (OSError, sqlite3.Error) as exc:
        return f"backup: {_failed(db_path, Path(db_path).parent, exc).message}; the sync went on"
    finally:
        source.close()
    return None


def refuse_if_damaged(db_path: str | os.PathLike) -> None:
    """A database a check found damaged is refused for writing until the check passes (restored)."""
    if not stored.damage_mark(db_path) or not os.path.isfile(db_path):
        return
    source = stored.open_source(db_path)
    try:
        _verify(db_path, source)
    finally:
        source.close()


def damaged(db_path: str | os.PathLike) -> str | None:
    """Why the database is damaged, for ``status``: a check that failed before and fails still."""
    if not stored.damage_mark(db_path):
        return None
    try:
        source = stored.open_source(db_path)
    except DatabaseError as exc:
        return exc.message
    try:
        problems = stored.integrity_problems(source)
    finally:
        source.close()
    return _damaged_message(db_path, problems[0]) if problems else None


def _verify(db_path: str | os.PathLike, source: sqlite3.Connection) -> None:
    problems = stored.integrity_problems(source)
    if not problems:
        stored.clear_damaged(db_path)
        return
    stored.mark_damaged(db_path, problems[0])
    raise DatabaseError(_damaged_message(db_path, problems[0]) + "; nothing was written")


def _damaged_message(db_path: str | os.PathLike, problem: str) -> str:
    made = stored.backups(db_path)
    newest = made[-1][1].name if made else f"{Path(db_path).name}{stored.INFIX}YYYYMMDDTHHMMSSZ"
    return (f"database {db_path} is damaged (SQLite's integrity check: {problem}): restore the newest backup "
            f"({newest}, made by sync or 'marketsync backup') as the README's 'Backups and restore' shows, "
            "then run 'marketsync reserve --check' and 'marketsync sync --full'")


def _failed(db_path: str | os.PathLike, where: Path, exc: BaseException) -> DatabaseError:
    place = str(where) if str(where) not in ("", ".") else "its directory"
    return DatabaseError(f"cannot back up {db_path} to {place}: {stored.reason(exc)}; the database is untouched")
