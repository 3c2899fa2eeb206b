"""One writer at a time: an advisory lock in a file beside the database.

Overlapping cron runs, a ``sync`` by hand during the cron's, ``reserve`` and ``inventory
import`` all take it; readers (``orders``, ``status``) never need it thanks to WAL. The
kernel drops the lock when the process dies, so a crashed run never leaves it stuck.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from marketsync.errors import DatabaseError, LockedError

POLL_SECONDS = 0.05


def lock_path(db_path: str | os.PathLike) -> Path:
    """Beside the real file, so two paths to one database (a symlink) share one lock."""
    return Path(f"{os.path.realpath(db_path)}.lock")


@contextmanager
def writer_lock(db_path: str | os.PathLike, wait: float = 0.0) -> Iterator[None]:
    path = lock_path(db_path)
    if not path.parent.is_dir():
        raise DatabaseError(f"directory {path.parent} does not exist (for the database {db_path})")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DatabaseError(f"cannot create lock file {path} beside the database {db_path}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder(fd)
                    raise LockedError(
                        f"another marketsync run{holder} is writing to {db_path}; try again later"
                    ) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
