"""``marketsync picklist``: one walk along the shelves for every open order.

Rows of the ``pick_list`` view (reserved pieces per order line and lot) grouped by bin, bins in
natural order (``A2`` before ``A10``; ``B-3-02`` sorted by its parts), and within a bin by part,
colour and condition, with the pieces per order and in total.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_PART = re.compile(r"\d+|[^\W\d_]+")


def natural_key(text: str | None) -> tuple:
    """``A2`` < ``A10`` < ``B-3-02`` < ``B-10-1``; the empty bin last."""
    if not text:
        return ((2, ""),)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in _PART.findall(text)) or ((1, 0, text),)


@dataclass
class Pick:
    bin: str
    part_number: str
    color_id: int
    color_name: str
    condition: str
    name: str | None
    orders: dict[tuple[str, str], int] = field(default_factory=dict)  # (provider, order id) -> pieces
    short: dict[tuple[str, str], int] = field(default_factory=dict)  # the pieces of an order the bin cannot give
    lines: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # the order's line keys ('pick' takes them)

    @property
    def total(self) -> int:
        return sum(self.orders.values())

    @property
    def total_short(self) -> int:
        return sum(self.short.values())

    def shortage(self) -> str:
        """``3 short: bricklink:1 (2), brickowl:9 (1)`` -- the orders this bin cannot fill; '' when it can."""
        if not self.total_short:
            return ""
        return f"{self.total_short} short: " + ", ".join(f"{p}:{o} ({n})" for (p, o), n in self.short.items() if n)

    def as_dict(self) -> dict[str, Any]:
        return {"bin": self.bin, "part_number": self.part_number, "color_id": self.color_id,
                "color_name": self.color_name, "condition": self.condition, "name": self.name, "total": self.total,
                "short": self.total_short,
                "orders": [{"provider": p, "order_id": o, "quantity": q, "short": self.short.get((p, o), 0),
                            "line_keys": self.lines.get((p, o), [])} for (p, o), q in self.orders.items()]}


def group(rows: list[dict[str, Any]], colour_names: dict[int, str]) -> list[Pick]:
    picks: dict[tuple, Pick] = {}
    for row in rows:
        key = (row["bin"] or "", row["part_number"], row["color_id"], row["condition"])
        pick = picks.get(key)
        if pick is None:
            pick = picks[key] = Pick(row["bin"] or "", row["part_number"], row["color_id"],
                                     colour_names.get(row["color_id"], f"colour {row['color_id']}"),
                                     row["condition"], row["name"])
        order = (row["provider"], row["order_id"])
        pick.orders[order] = pick.orders.get(order, 0) + row["quantity"]
        if row.get("line_key") and row["line_key"] not in pick.lines.setdefault(order, []):
            pick.lines[order].append(row["line_key"])
        if row.get("short"):
            pick.short[order] = pick.short.get(order, 0) + row["short"]
    return sorted(picks.values(), key=lambda p: (natural_key(p.bin), p.part_number, p.color_id, p.condition))


def printable(picks: list[Pick], title: str) -> str:
    """A plain-text page to print and tick off, one bin after the other."""
    lines = [title, "=" * len(title), ""]
    current = None
    for pick in picks:
        if pick.bin != current:
            current = pick.bin
            lines += ["", f"Bin {pick.bin or '(no bin)'}"]
        into = ", ".join(f"{q} -> {p}:{o}" + (f" (line {' '.join(pick.lines[(p, o)])})" if pick.lines.get((p, o)) else "")
                         for (p, o), q in pick.orders.items())
        lines.append(f"  [ ] {pick.total:>4} x {pick.part_number} {pick.color_name} ({pick.condition})"
                     f"{f' {pick.name}' if pick.name else ''}")
        lines.append(f"        {into}")
        if pick.total_short:
            lines.append(f"        ! {pick.shortage()}: the bin cannot fill them")
    total = sum(p.total for p in picks)
    lines += ["", f"{len(picks)} lots, {total} pieces, {len({o for p in picks for o in p.orders})} orders"]
    short = sum(p.total_short for p in picks)
    if short:
        lines.append(f"{short} pieces short: marked '!' above")
    return "\n".join(lines) + "\n"
