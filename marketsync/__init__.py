"""marketsync: BrickLink and BrickOwl orders in one SQLite file, with stock reserved through a ledger."""

__version__ = "0.1.0"
