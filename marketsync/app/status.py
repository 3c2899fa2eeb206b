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
            limit = _minutes_ago(max_age_minutes)
            if not row["last_synced_at"] or row["last_synced_at"] < limit:
                problems.append(f"{row['provider']}: no successful sync in the last {max_age_minutes} minutes")
    return problems


def _minutes_ago(minutes: int) -> str:
    """The moment ``minutes`` ago (ISO UTC); '' when that reaches back before the year 1 (--max-age 10**12)."""
    try:
        return iso(utcnow() - dt.timedelta(minutes=minutes)) or ""
    except OverflowError:
        return ""


# --- the listener and the oversell window (marketsync listen) --------------------------------------
QUIET_FLOOR_MINUTES = 3  # the listener beats every minute: a shorter limit would cry wolf


def quiet_listeners(report: list[dict[str, Any]], max_age_minutes: int | None) -> list[str]:
    """One line per marketplace whose listener is running as far as the file knows (it stopped
    without saying so: killed, hung, the machine gone) but has not been heard of within the limit."""
    if not max_age_minutes:
        return []
    minutes = max(max_age_minutes, QUIET_FLOOR_MINUTES)
    limit = _minutes_ago(minutes)
    return [f"{row['provider']}: the listener has been quiet since {row['listener_seen_at']} (nothing in the last "
            f"{minutes} minutes); is 'marketsync listen' still running?"
            for row in report if row.get("listener_seen_at") and row["listener_seen_at"][:19] < limit[:19]]


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted ``values``."""
    rank = max(1, min(len(values), int(-(-fraction * len(values) // 1))))
    return values[rank - 1]


def window_summary(rows: list[dict[str, Any]], days: int, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Per direction (sold on one marketplace, lowered on another): how many orders, the median,
    95th percentile and worst window in seconds over the last ``days`` days, and how many orders
    still wait for their listing change to be confirmed."""
    since = iso((now or utcnow()) - dt.timedelta(days=days)) or ""
    directions: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if (row.get("seen_at") or "") >= since:
            directions.setdefault((row["sold_on"], row["lowered_on"]), []).append(row)
    out = []
    for (sold_on, lowered_on), group in sorted(directions.items()):
        values = sorted(float(r["window_seconds"]) for r in group if r.get("window_seconds") is not None)
        out.append({
            "days": days, "sold_on": sold_on, "lowered_on": lowered_on, "orders": len(values),
            "pending": len(group) - len(values),
            "median_seconds": percentile(values, 0.5) if values else None,
            "p95_seconds": percentile(values, 0.95) if values else None,
            "worst_seconds": values[-1] if values else None,
        })
    return out
