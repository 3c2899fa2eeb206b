"""``marketsync backup``: a consistent copy of the database while it is in use."""

from __future__ import annotations


import click

from marketsync.app.context import Workspace

from marketsync.cli.common import (
    db_options,
    logging_options,
)


@click.command()
@logging_options
@click.argument("path", required=False, type=click.Path())
@db_options
def backup(path: str | None, ws: Workspace) -> None:
    """Copy the database into one owner-only file while it is in use (SQLite's backup API: a
    consistent copy even while a sync writes). The database is only read.

    Without PATH the copy goes beside the database as DB.backup-YYYYMMDDTHHMMSSZ and the newest 7
    of those are kept; 'sync' makes one there at most once a day, and a schema upgrade makes one
    before it changes anything. With PATH (a new file, or a directory to put one in) the copy goes
    there. A backup never replaces a file. Prints the path written.

    \b
    Restore, with no marketsync running (stop cron first), in the database's directory:
        mkdir damaged
        for f in marketsync.db marketsync.db-wal marketsync.db-shm; do [ ! -e $f ] || mv $f damaged/; done
        cp -p marketsync.db.backup-20261125T090000Z marketsync.db
        marketsync reserve --check && marketsync sync --full

    The -wal and -shm files must leave with the old database (SQLite would apply them to the
    restored one). 'sync --full' fetches every order that changed since the backup; inventory
    imports and pins made since then must be made again.

    \b
    Examples:
        marketsync backup
        marketsync backup /mnt/usb/shop-backup.db
    """
    from marketsync.app import backup as backups

    click.echo(str(backups.make(ws.db_path, path)))
