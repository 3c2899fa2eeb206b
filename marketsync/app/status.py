"""Is each marketplace's sync healthy? The rule ``marketsync status`` (and monitoring) applies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marketsync.model import iso, utcnow


def unconfigured(history: list[str], configured: list[str], open_orders: dict[str, int]) -> list[str]:
    """One line per marketplace the database holds orders of but that has no credentials now (a
    blanked .env line, a cron environment without the variable): it would go quiet otherwise."""
    return [f"{provider}: not configured (no credentials), but the database holds its orders "
            f"({open_orders.get(provider, 0)} open); it was not synced" for provider in history if provider not in configured]


def unhealthy(report: list[dict[str, Any]], configured: list[str], max_age_minutes: int | None) -> list[str]:
    """One line per marketplace whose last sync failed, or (with a maximum age) whose last
    successful sync is too old or that is not configured any more. Annotates each row with
    ``configured``."""
    problems = []
    for row in report:
        row["configured"] = row["provider"] in configured
        if max_age_minutes and not row["configured"]:
            problems.append(f"{row['provider']}: not configured (no credentials); its last successful sync was "
                            f"{row['last_synced_at'] or 'never'}")
        elif row["last_error"] and (row["last_error_at"] or "") >= (row["last_synced_at"] or ""):
            problems.append(f"{row['provider']}: last sync failed: {row['last_error']}")
        elif max_age_minutes and row["configured"]:
            limit = iso(utcnow() - dt.timedelta(minutes=max_age_minutes)) or ""
            if not row["last_synced_at"] or row["last_synced_at"] < limit:
                problems.append(f"{row['provider']}: no successful sync in the last {max_age_minutes} minutes")
    return problems
