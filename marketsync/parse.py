"""Tolerant scalar parsing: both APIs (and files, and stored rows) send numbers as strings, raw numbers and
nulls alike."""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal, InvalidOperation
from typing import Any


def text(value: Any) -> str | None:
    if value is None or isinstance(value, (list, dict)):
        return None
    value = str(value).strip()
    return value or None


def unescaped(value: Any) -> str | None:
    """Decode BrickLink's HTML entities (``&#40;`` ...) exactly once."""
    value = text(value)
    return html.unescape(value) if value is not None else None


MAX_INTEGER = 2**53  # beyond this a "quantity" is garbage, and SQLite would overflow at 2**63


def integer(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) <= MAX_INTEGER else None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number != number.to_integral_value() or abs(number) > MAX_INTEGER:
        return None
    return int(number)


def money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def flag(value: Any) -> bool | None:
    """A yes/no sent as a JSON boolean, a number or a string ("1", "true", "Y", "0", "false")."""
    if isinstance(value, bool):
        return value
    word = (text(value) or "").lower()
    if word in ("1", "true", "yes", "y"):
        return True
    if word in ("0", "false", "no", "n"):
        return False
    return None


def bricklink_time(value: Any) -> dt.datetime | None:
    """``2013-12-01T18:05:46.123Z`` (UTC, milliseconds) to an aware datetime."""
    return iso_time(value)


def iso_time(value: Any) -> dt.datetime | None:
    """An ISO-8601 instant (``Z`` or an offset such as BrickOwl's ``+01:00``) in UTC; a time
    without an offset is taken as UTC."""
    value = text(value)
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def unix_time(value: Any) -> dt.datetime | None:
    """BrickOwl's Unix seconds (as a string or number); 0 and nulls mean 'not yet'."""
    seconds = integer(value)
    if not seconds or seconds < 0:
        return None
    try:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def obj(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else (null, a PHP empty array ``[]``)."""
    return value if isinstance(value, dict) else {}
