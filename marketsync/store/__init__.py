"""The data layer: every SQL statement of marketsync lives in this package, and nothing outside
it imports sqlite-utils. Callers hold a :class:`Store` (one account's view of one file) and the
transaction (``store.atomic()``); one module writes each table (docs/architecture.md has the
map), and nothing here commits by itself, except the few functions that say so.
"""

from marketsync.store.base import Store
from marketsync.store.connection import open_db, open_store

__all__ = ["Store", "open_db", "open_store"]
