"""The data layer: every SQL statement of marketsync lives in this package.

One module writes each table (docs/architecture.md has the map); callers hold the
transaction (``db.atomic()``) and nothing here commits by itself, except the few functions
that say so.
"""

from marketsync.store.connection import open_db

__all__ = ["open_db"]
