"""The one door to the database: a :class:`Store` is one account's view of one SQLite file.

Everything outside ``marketsync/store/`` holds a ``Store`` and calls the table modules with it;
none of it touches SQL, sqlite-utils or the connection.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI's start-up imports Store; sqlite-utils (and its plugins) only when a file opens
    from sqlite_utils import Database


@dataclass
class Store:
    db: Database
    account: str
    path: str = ""
    run: str | None = None  # set by a run that keeps its problems until it has reported them (store/problems.py)

    def atomic(self) -> AbstractContextManager[Any]:
        """One transaction (a savepoint when nested): everything in it commits together or not at all."""
        return self.db.atomic()

    def close(self) -> None:
        self.db.close()
