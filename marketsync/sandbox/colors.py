"""The BrickOwl <-> BrickLink colour table shipped in ``marketsync/data/brickowl-colors.csv``."""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class ColorRow:
    bo_id: int
    bo_name: str
    bl_id: int | None  # may be a negative placeholder (-9) for colours BrickLink lacks
    bl_name: str


@dataclass(frozen=True)
class ColorTable:
    rows: tuple[ColorRow, ...]

    @functools.cached_property
    def by_bo(self) -> dict[int, ColorRow]:
        return {r.bo_id: r for r in self.rows}

    @functools.cached_property
    def by_bl(self) -> dict[int, ColorRow]:
        table: dict[int, ColorRow] = {}
        for r in self.rows:
            if r.bl_id is not None and r.bl_id >= 0:
                table.setdefault(r.bl_id, r)
        return table

    def bo_name(self, bo_id: int) -> str:
        row = self.by_bo.get(int(bo_id))
        return row.bo_name if row else f"Colour {bo_id}"

    def bl_name(self, bl_id: int) -> str:
        if int(bl_id) == 0:
            return "(Not Applicable)"
        row = self.by_bl.get(int(bl_id))
        return row.bl_name if row and row.bl_name else f"Color {bl_id}"

    def bl_to_bo(self, bl_id: int) -> int | None:
        row = self.by_bl.get(int(bl_id))
        return row.bo_id if row else None

    def bo_to_bl(self, bo_id: int) -> int | None:
        """The BrickLink colour, or None when BrickLink has no equivalent (negative placeholder)."""
        row = self.by_bo.get(int(bo_id))
        if row is None or row.bl_id is None or row.bl_id < 0:
            return None
        return row.bl_id

    def color_list(self) -> dict[str, dict]:
        """The body of BrickOwl's ``GET /catalog/color_list``."""
        return {
            str(r.bo_id): {
                "id": str(r.bo_id),
                "name": r.bo_name,
                "bl_ids": [str(r.bl_id) if r.bl_id is not None else None],
            }
            for r in self.rows
        }


@functools.lru_cache(maxsize=1)
def colors() -> ColorTable:
    text = resources.files("marketsync").joinpath("data/brickowl-colors.csv").read_text(encoding="utf-8")
    rows = []
    for rec in csv.DictReader(io.StringIO(text)):
        bl = (rec.get("bricklink_color_id") or "").strip()
        rows.append(
            ColorRow(
                bo_id=int(rec["brickowl_color_id"]),
                bo_name=rec["brickowl_color_name"].strip(),
                bl_id=int(bl) if bl else None,
                bl_name=(rec.get("bricklink_color_name") or "").strip(),
            )
        )
    return ColorTable(tuple(rows))
