"""BrickOwl's catalogue vocabulary (pure): its condition codes and item types, and BOIDs
(``487300-38`` = item 487300 in BrickOwl colour 38). The adapter reads lines and lots with it; the
translator asks BrickOwl's catalogue with it."""

from __future__ import annotations

from typing import Any

from marketsync import parse

# BrickOwl's catalog item types; catalog/id_lookup answers per type. On a miss (an empty answer)
# the fallback types are asked in turn, as BrickSync does.
ITEM_TYPES = ("Part", "Minifigure", "Set", "Gear", "Sticker", "Minibuild", "Instructions", "Packaging")
DEFAULT_ITEM_TYPE = "Part"
TYPE_FALLBACKS = {"Part": ("Minibuild",), "Minifigure": ("Minibuild",), "Set": ("Gear",), "Gear": ("Set",)}

NEW_CODES = {"new", "news", "newc", "newi"}
USED_CODES = {"usedc", "usedi", "usedn", "usedg", "useda", "used"}


def brickowl_condition(value: Any) -> str | None:
    """BrickOwl's condition code (``full_con``), or failing that its display text ("Used (Good)"),
    as 'new' / 'used'; 'other' and anything unknown has no BrickLink equivalent."""
    text = (parse.text(value) or "").lower()
    if text in NEW_CODES:
        return "new"
    if text in USED_CODES:
        return "used"
    word = text.split("(", 1)[0].split()[:1]
    return {"new": "new", "used": "used"}.get(word[0]) if word else None


def brickowl_item_type(value: Any) -> str:
    """A line's BrickOwl item type as the catalog is asked with it: BrickOwl's spelling, ``Part``
    when the line has none; a type newer than :data:`ITEM_TYPES` is passed on as BrickOwl named it."""
    text = parse.text(value)
    if text is None:
        return DEFAULT_ITEM_TYPE
    return next((known for known in ITEM_TYPES if known.lower() == text.lower()), text)


def lookup_types(value: Any) -> tuple[str, ...]:
    """The types ``catalog/id_lookup`` is asked with for a line of type ``value``, in order."""
    item_type = brickowl_item_type(value)
    return (item_type, *TYPE_FALLBACKS.get(item_type, ()))


def split_boid(boid: Any) -> tuple[str | None, int | None]:
    """``'487300-38'`` -> ``('487300', 38)``; a bare ``'487300'`` -> ``('487300', None)``."""
    text = parse.text(boid)
    if text is None:
        return None, None
    base, dash, suffix = text.rpartition("-")
    if dash and base and suffix.isdigit():
        return base, int(suffix)
    return text, None


def base_boid(boid: Any) -> str | None:
    return split_boid(boid)[0]
