"""The data layer: every SQL statement of marketsync lives in this package, and nothing outside
it imports sqlite-utils. Callers hold a :class:`Store` (one account's view of one file) and the
transaction (``store.atomic()``); one module writes each table (docs/architecture.md has the
map), and nothing here commits by itself, except the few functions that say so.
"""

from typing import TYPE_CHECKING, Any

from marketsync.store.base import Store

if TYPE_CHECKING:
    from marketsync.store.connection import open_db, open_store

__all__ = ["Store", "open_db", "open_store"]


def __getattr__(name: str) -> Any:
    """``open_db`` and ``open_store`` load sqlite-utils when first asked for, not when the package is
    imported: the CLI's start-up (``--help``, a command's options) never needs it."""
    if name in ("open_db", "open_store"):
        from marketsync.store import connection

        return getattr(connection, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
