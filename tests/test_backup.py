"""Backups (issue 12, item 7): `marketsync backup`, the daily one `sync` makes, the one before every
schema upgrade, and the restore `marketsync backup --help` documents -- run literally, then
verified. A full disk or a read-only directory is one line, the database untouched.

``RESTORED`` and ``FAILURES`` are counted by tests/reliability/figures.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlite_utils import Database
from support import one_line_error

from marketsync.store.schema import migrations
from test_sync_lifecycle import STOCK, BrickLinkMarket, BrickOwlMarket, Shop

DB = "marketsync.db"
NAME = re.compile(r"^marketsync\.db\.backup-(\d{8}T\d{6}Z)(-\d+)?$")

# how each backup was made -> restored with the documented steps and verified (figures.py counts them)
RESTORED = ["backup command", "backup to a given path", "sync, daily", "before a schema upgrade",
            "during a running sync"]
# what cannot be written -> one line, the database untouched (figures.py counts them)
FAILURES = ["full disk: backup", "full disk: before a schema upgrade", "full disk: sync's daily backup",
            "read-only directory: backup to it", "read-only directory: the database's own"]


@pytest.fixture
def shop(creds, run, tmp_path):
    return Shop(creds, run, tmp_path)


def digest(path) -> str:
    """The database and its write-ahead log together."""
    path = Path(path)
    wal = Path(f"{path}-wal")
    return hashlib.sha256(path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")).hexdigest()


def contents(path) -> dict[str, list]:
    """Every row of every table, as a reader sees it (the file's bytes may differ: WAL vs not) --
    but the moment a copy was taken, the one thing a backup adds (:func:`marks`)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [name for (name,) in conn.execute("select name from sqlite_master where type = 'table' "
                                                   "and name != '_backup_marks' order by name")]
        return {table: conn.execute(f'select * from "{table}" order by rowid').fetchall() for table in tables}
    finally:
        conn.close()


def marks(path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return [taken for (taken,) in conn.execute("select taken_at from _backup_marks")]


def backups_beside(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if NAME.match(name))


def restore_steps() -> list[str]:
    """The restore lines of `marketsync backup --help`, the check and the sync left out."""
    from click.testing import CliRunner

    from marketsync.cli import cli

    text = CliRunner().invoke(cli, ["backup", "--help"]).stdout
    block = text.split("Restore, with no marketsync running")[1].split("\n\n")[0].splitlines()[1:]
    steps = [line.strip() for line in block if line.strip()]
    assert steps[-1] == "marketsync reserve --check && marketsync sync --full"
    return steps[:-1]


def restore(directory: Path, backup: str) -> None:
    """The documented restore, run literally in the database's directory."""
    for step in restore_steps():
        done = subprocess.run(["bash", "-c", step.replace("marketsync.db.backup-20261125T090000Z", backup)],
                              cwd=directory, capture_output=True, text=True)
        assert done.returncode == 0, (step, done.stderr)


def verify_restored(run, directory: Path, expected: dict) -> None:
    assert contents(directory / DB) == expected
    assert not (directory / f"{DB}-wal").exists() or (directory / f"{DB}-wal").stat().st_size == 0
    assert run("reserve", "--check").exit_code == 0
    with sqlite3.connect(directory / DB) as conn:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)


def assert_is_a_backup(path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-journal").exists()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        assert conn.execute("pragma journal_mode").fetchone() == ("delete",)  # one file, restorable by cp
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)


def synced_shop(shop, creds):
    """Stock and two orders, synced; without the backup that first sync made (see the daily test)."""
    shop.import_lots(*STOCK)
    bl, bo = BrickLinkMarket(creds), BrickOwlMarket(creds)
    shop.bl_order = bl.add_order("paid", [("3001", 11, 3, "A1")])
    bo.add_order("packed", [("3004", 1, 2, "C1")])
    shop.sync()
    for name in backups_beside(shop.tmp_path):
        os.remove(shop.tmp_path / name)
    return shop


# --- marketsync backup ------------------------------------------------------------------------------
def test_backup_beside_the_database_then_the_documented_restore(shop, creds, run, tmp_path):
    synced_shop(shop, creds)
    before = contents(tmp_path / DB)

    result = run("backup")

    assert (result.exit_code, result.stderr) == (0, "")
    name = result.stdout.strip()
    assert NAME.match(name) and backups_beside(tmp_path) == [name]
    assert_is_a_backup(tmp_path / name)
    assert contents(tmp_path / name) == before
    assert len(marks(tmp_path / name)) == 1 and marks(tmp_path / DB) == []  # restored, it knows it is a copy

    BrickLinkMarket(creds).set_status(shop.bl_order, "shipped")  # life goes on, then the file is lost
    shop.sync()
    assert contents(tmp_path / DB) != before
    (tmp_path / DB).write_bytes(b"\0" * 4096)

    restore(tmp_path, name)
    verify_restored(run, tmp_path, before)
    assert (tmp_path / "damaged" / DB).read_bytes() == b"\0" * 4096  # the damaged file kept aside
    shop.sync()  # and the next sync catches up with what changed since the backup
    assert shop.lot("A1") == (7, 0)


def test_backup_to_a_given_path_or_directory_and_never_over_a_file(shop, creds, run, tmp_path):
    synced_shop(shop, creds)
    before = contents(tmp_path / DB)
    (tmp_path / "usb").mkdir()

    to_file = run("backup", tmp_path / "usb" / "shop.db")
    to_dir = run("backup", tmp_path / "usb")

    assert to_file.exit_code == 0 and to_file.stdout.strip() == str(tmp_path / "usb" / "shop.db")
    assert to_dir.exit_code == 0 and NAME.match(Path(to_dir.stdout.strip()).name)
    for written in (to_file.stdout.strip(), to_dir.stdout.strip()):
        assert_is_a_backup(Path(written))
        assert contents(written) == before
    assert backups_beside(tmp_path) == []  # a given path is not part of the rotation beside the database

    (tmp_path / "keep.db").write_text("not to be replaced")
    line = one_line_error(run("backup", tmp_path / "keep.db"), 1)
    assert "keep.db exists" in line and (tmp_path / "keep.db").read_text() == "not to be replaced"
    line = one_line_error(run("backup", tmp_path / DB), 1)  # never over the database itself
    assert contents(tmp_path / DB) == before

    (tmp_path / DB).rename(tmp_path / "live.db")
    restore(tmp_path, "usb/shop.db")
    verify_restored(run, tmp_path, before)


def test_only_the_newest_backups_are_kept(shop, creds, run, tmp_path):
    synced_shop(shop, creds)
    old = [f"{DB}.backup-2026010{day}T000000Z" for day in range(1, 10)]
    for name in old:
        (tmp_path / name).write_bytes(b"an old backup")
    (tmp_path / f"{DB}.backup-20260101T000000Z.tmp-999999999-abcd").write_bytes(b"left by a killed backup")

    made = run("backup").stdout.strip()

    assert backups_beside(tmp_path) == sorted(old[-6:] + [made])  # the newest 7
    assert not list(tmp_path.glob("*.tmp-*"))


def test_backup_of_a_missing_or_foreign_database_is_one_line(run, tmp_path):
    assert "does not exist" in one_line_error(run("backup"), 1)
    (tmp_path / "junk.db").write_bytes(os.urandom(4096))
    assert "junk.db" in one_line_error(run("backup", "--db", "junk.db"), 1)
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("create table customers (id)")
    assert "not a marketsync database" in one_line_error(run("backup", "--db", "other.db"), 1)
    assert backups_beside(tmp_path) == [] and not list(tmp_path.glob("*.backup-*"))


# --- sync: at most once a day -----------------------------------------------------------------------
def test_sync_backs_up_at_most_once_a_day(shop, creds, run, tmp_path):
    shop.import_lots(*STOCK)
    BrickLinkMarket(creds).add_order("paid", [("3001", 11, 3, "A1")])
    before = contents(tmp_path / DB)

    shop.sync()
    (first,) = backups_beside(tmp_path)
    assert contents(tmp_path / first) == before  # made before the sync wrote anything
    assert_is_a_backup(tmp_path / first)
    shop.sync()
    assert backups_beside(tmp_path) == [first]

    yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=25)).strftime("%Y%m%dT%H%M%SZ")
    (tmp_path / first).rename(tmp_path / f"{DB}.backup-{yesterday}")
    shop.sync()
    assert len(backups_beside(tmp_path)) == 2

    restore(tmp_path, backups_beside(tmp_path)[-1])
    verify_restored(run, tmp_path, contents(tmp_path / backups_beside(tmp_path)[-1]))


def test_a_backup_taken_while_a_sync_writes_is_consistent(demo_creds, run, proc, tmp_path):
    from support import wait_for

    for provider in ("bricklink", "brickowl"):
        demo_creds.inject(provider, "*", "hang", times=None, seconds=0.02)  # every answer 20 ms late
    sync = subprocess.Popen([sys.executable, "-m", "marketsync", "sync"], cwd=tmp_path, env={**os.environ},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def some_orders_stored() -> bool:
            try:
                with sqlite3.connect(f"file:{tmp_path / DB}?mode=ro", uri=True, timeout=5) as conn:
                    return conn.execute("select count(*) from orders").fetchone()[0] > 0
            except sqlite3.Error:
                return False

        wait_for(some_orders_stored, timeout=60, what="the first orders stored", proc=sync)
        result = run("backup", tmp_path / "during.db")
        assert result.exit_code == 0, result.stderr
        still_running = sync.poll() is None
    finally:
        out, err = sync.communicate(timeout=120)
    assert sync.returncode == 0, err
    assert still_running, "the sync ended before the backup: nothing was tested"
    assert_is_a_backup(tmp_path / "during.db")
    check = run("reserve", "--check", "--db", tmp_path / "during.db")
    assert check.exit_code == 0, check.stdout  # every order in it is whole, every invariant holds
    partial = contents(tmp_path / "during.db")
    assert 0 < len(partial["orders"]) < len(contents(tmp_path / DB)["orders"])

    restore(tmp_path, "during.db")
    verify_restored(run, tmp_path, partial)


# --- before a schema upgrade -----------------------------------------------------------------------
def old_database(path: Path) -> None:
    """A database of the previous marketsync (every migration but the last), holding one lot."""
    db = Database(path)
    db.enable_wal()
    migrations.apply(db, stop_before=migrations._migrations[-1].name)
    db.execute("insert into inventory (business_account_id, part_number, color_id, condition, location, quantity) "
               "values ('default', '3001', 11, 'new', 'A1', 10)")
    db.conn.commit()
    db.close()


def test_a_schema_upgrade_is_preceded_by_a_backup_of_the_old_file(run, tmp_path):
    old_database(tmp_path / DB)
    before = contents(tmp_path / DB)

    listed = run("inventory", "list", "--json")

    assert listed.exit_code == 0 and '"part_number": "3001"' in listed.stdout
    (backup,) = backups_beside(tmp_path)
    assert_is_a_backup(tmp_path / backup)
    assert contents(tmp_path / backup) == before  # the old schema, as it was
    assert run("inventory", "list").exit_code == 0 and backups_beside(tmp_path) == [backup]  # once

    restore(tmp_path, backup)
    assert contents(tmp_path / DB) == before
    assert run("reserve", "--check").exit_code == 0  # upgraded again (and backed up again) on opening


# --- a full disk, a read-only directory ---------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB filesystem of its own (tmpfs), so that it can really fill up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem that can fill up needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"cannot mount a small filesystem as root: {done.stderr.strip()}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path, leave: int) -> None:
    """Fill the filesystem of ``directory`` until ``leave`` bytes are free."""
    info = os.statvfs(directory)
    free = info.f_bavail * info.f_frsize
    with open(directory / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    info = os.statvfs(directory)
    assert info.f_bavail * info.f_frsize <= leave + 8192


def no_leftovers(directory: Path) -> None:
    assert backups_beside(directory) == [] and not list(directory.glob("*.tmp-*"))


def test_a_full_disk_is_one_line_and_the_database_untouched(shop, creds, run, tmp_path, small_disk):
    synced_shop(shop, creds)
    db = small_disk / DB
    assert run("backup", db).exit_code == 0  # the shop's database, onto the small disk
    (small_disk / f"{DB}.lock").touch()
    size = db.stat().st_size
    fill(small_disk, leave=size // 2)
    before = digest(db)

    line = one_line_error(run("backup", "--db", db), 1)

    assert "No space left on device" in line or "disk is full" in line, line
    assert "untouched" in line
    assert digest(db) == before
    no_leftovers(small_disk)


def test_a_full_disk_refuses_the_schema_upgrade_and_leaves_the_file_as_it_was(run, small_disk):
    old_database(small_disk / DB)
    size = (small_disk / DB).stat().st_size
    fill(small_disk, leave=size // 2)
    before = digest(small_disk / DB)

    line = one_line_error(run("inventory", "list", "--db", small_disk / DB), 1)

    assert "before upgrading its schema" in line and ("No space left" in line or "disk is full" in line), line
    assert digest(small_disk / DB) == before
    no_leftovers(small_disk)
    (small_disk / "filler").unlink()  # space again: the upgrade goes ahead, backed up first
    assert run("inventory", "list", "--db", small_disk / DB).exit_code == 0
    assert len(backups_beside(small_disk)) == 1


def test_a_full_disk_makes_the_daily_backup_one_line_and_the_sync_goes_on(shop, creds, run, small_disk):
    synced_shop(shop, creds)
    db = small_disk / DB
    assert run("backup", db).exit_code == 0
    with sqlite3.connect(db) as conn:  # in WAL mode, as a database of ours is
        conn.execute("pragma journal_mode = wal")
    fill(small_disk, leave=db.stat().st_size * 3 // 4)  # room for a sync of one order, not for a copy
    order = BrickLinkMarket(creds).add_order("paid", [("3001", 11, 1, "A1")])

    result = run("sync", "--db", db)

    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("backup: cannot back up") and "the sync went on" in lines[0], \
        result.stderr
    assert result.exit_code == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from orders where order_id = ?", [order]).fetchone() == (1,)
    assert run("reserve", "--check", "--db", db).exit_code == 0
    no_leftovers(small_disk)


def read_only(directory: Path):
    """Make ``directory`` read-only for real (root: the immutable attribute); returns the undo."""
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, text=True)
        assert done.returncode == 0, f"cannot make {directory} read-only as root: {done.stderr.strip()}"
        return lambda: subprocess.run(["chattr", "-i", str(directory)], check=True)
    os.chmod(directory, 0o555)
    return lambda: os.chmod(directory, 0o755)


def test_a_read_only_directory_is_one_line_and_the_database_untouched(shop, creds, run, tmp_path):
    synced_shop(shop, creds)
    before = digest(tmp_path / DB)
    (tmp_path / "ro").mkdir()
    undo = read_only(tmp_path / "ro")
    try:
        line = one_line_error(run("backup", tmp_path / "ro" / "copy.db"), 1)
        assert "ro" in line and ("Operation not permitted" in line or "Permission denied" in line), line
        assert os.listdir(tmp_path / "ro") == []
    finally:
        undo()
    undo = read_only(tmp_path)
    try:
        line = one_line_error(run("backup"), 1)  # beside the database, in its read-only directory
        assert DB in line and ("Operation not permitted" in line or "Permission denied" in line), line
    finally:
        undo()
    assert digest(tmp_path / DB) == before
    no_leftovers(tmp_path)
