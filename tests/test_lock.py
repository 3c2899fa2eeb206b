"""The writer lock: one writer per database file, however the file is named."""

import os

import pytest

from marketsync.errors import EXIT_LOCKED, LockedError
from marketsync.store.lock import lock_path, writer_lock


def test_second_writer_is_refused_with_the_holders_pid(tmp_path):
    db = tmp_path / "shop.db"
    with writer_lock(db):
        with pytest.raises(LockedError) as refused:
            with writer_lock(db, wait=0):
                pass
    assert f"pid {os.getpid()}" in refused.value.message
    assert refused.value.exit_code == EXIT_LOCKED
    with writer_lock(db, wait=0):  # released on exit
        pass


def test_a_symlink_to_the_database_shares_its_lock(tmp_path):
    real = tmp_path / "shop.db"
    real.touch()
    link = tmp_path / "link.db"
    link.symlink_to(real)
    assert lock_path(link) == lock_path(real)
    with writer_lock(real):
        with pytest.raises(LockedError):
            with writer_lock(link, wait=0):
                pass


def test_lock_file_is_owner_only(tmp_path):
    old = os.umask(0)
    try:
        with writer_lock(tmp_path / "shop.db"):
            pass
    finally:
        os.umask(old)
    assert oct(os.stat(tmp_path / "shop.db.lock").st_mode & 0o777) == "0o600"
