"""Is each marketplace's sync healthy? The rule ``marketsync status`` (and monitoring) applies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marketsync.model import iso, utcnow


def unhealthy(report: list[dict[str, Any]], configured: list[str], max_age_minutes: int | None) -> list[str]:
    """One line per marketplace whose last sync failed, or (configured ones, with a maximum age)
    whose last successful sync is too old. Annotates each row with ``configured``."""
    problems = []
    for row in report:
        row["configured"] = row["provider"] in configured
        if row["last_error"] and (row["last_error_at"] or "") >= (row["last_synced_at"] or ""):
            problems.append(f"{row['provider']}: last sync failed: {row['last_error']}")
        elif max_age_minutes and row["configured"]:
            limit = iso(utcnow() - dt.timedelta(minutes=max_age_minutes)) or ""
            if not row["last_synced_at"] or row["last_synced_at"] < limit:
                problems.append(f"{row['provider']}: no successful sync in the last {max_age_minutes} minutes")
    return problems
