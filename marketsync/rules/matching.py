"""Matching order lines to the seller's inventory lots.

Rules, in order (a line keeps the lot it already holds while that lot still qualifies, so
reservations do not hop between bins from one run to the next):
1. the line's location (BrickLink ``remarks`` / BrickOwl ``personal_note``) names a lot exactly;
2. the line is linked to a BrickLink lot (``bricklink_lot_id``) the inventory holds;
3. part + colour + condition, the lot with the most available stock (ties: the older lot).
Otherwise the line stays unmatched, with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable

from marketsync.model import OrderLine, Unmatched


@dataclass(slots=True)
class Lot:  # slotted: the index holds one per lot of the store
    id: int
    part_number: str
    color_id: int
    condition: str
    location: str
    quantity: int
    reserved: int
    bricklink_lot_id: str | None
    stocked_at: str | None = None  # when on hand was last established (ISO UTC)

    @property
    def available(self) -> int:
        return self.quantity - self.reserved


@dataclass
class Match:
    inventory_id: int | None
    method: str | None  # 'location' | 'lot-link' | 'best-stock'
    reason: str | None = None  # why unmatched, for people
    location: str | None = None  # the bin to pick from
    kind: str | None = None  # why unmatched, for code (model.Unmatched)


class LotIndex:
    """An account's lots in memory for one run: O(1) matching without a query per line.

    The ledger keeps ``quantity`` / ``reserved`` current as it writes deltas; after a rolled
    back transaction call :meth:`reload`, which asks ``load`` for the lots again. A ``lazy`` index
    asks for them when first used (a run that may need none of them: a re-pull of known lots); its
    owner calls :meth:`ensure_loaded` before writing lots it must see as they were.
    """

    def __init__(self, load: Callable[[], Iterable[Lot]], *, lazy: bool = False):
        self.load = load
        self.oversold_reported: set[int] = set()  # lots a run has already called oversold
        self._loaded = False
        self._by_id: dict[int, Lot] = {}
        self._by_key: dict[tuple, list[Lot]] = defaultdict(list)
        self._by_link: dict[str, Lot] = {}
        self._part_numbers: set[str] = set()
        if not lazy:
            self.reload()

    def reload(self) -> None:
        self._by_id = {}
        self._by_key = defaultdict(list)
        self._by_link = {}
        self._part_numbers = set()
        self._loaded = True
        for lot in self.load():
            self._add(lot)

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.reload()

    def forget(self) -> None:
        """Drop the lots: the next use reads them again (:meth:`reload`, when nothing may use them)."""
        self._loaded = False
        self._by_id, self._by_key, self._by_link, self._part_numbers = {}, defaultdict(list), {}, set()

    @property
    def loaded(self) -> bool:
        return self._loaded

    def _ready(self) -> LotIndex:
        """This index with its lots read (on first use, or again after :meth:`forget`)."""
        if not self._loaded:
            self.reload()
        return self

    @property
    def by_id(self) -> dict[int, Lot]:
        return self._ready()._by_id

    @property
    def by_key(self) -> dict[tuple, list[Lot]]:
        return self._ready()._by_key

    @property
    def by_link(self) -> dict[str, Lot]:
        return self._ready()._by_link

    @property
    def part_numbers(self) -> set[str]:
        return self._ready()._part_numbers

    def add(self, lot: Lot) -> None:
        self.ensure_loaded()
        self._add(lot)

    def _add(self, lot: Lot) -> None:
        self._by_id[lot.id] = lot
        self._by_key[(lot.part_number, lot.color_id, lot.condition)].append(lot)
        self._part_numbers.add(lot.part_number)
        if lot.bricklink_lot_id:
            self._by_link[lot.bricklink_lot_id] = lot

    def candidates(self, part_number: str, color_id: int, condition: str) -> list[Lot]:
        return self.by_key.get((part_number, color_id, condition), [])

    def has(self, part_number: str, color_id: int | None = None, condition: str | None = None) -> bool:
        if color_id is None or condition is None:
            return part_number in self.part_numbers
        return bool(self.candidates(part_number, color_id, condition))

    def allocate(self, primary: int, need: int, holds: dict[int, int], claimed: dict[int, int]) -> dict[int, int]:
        """Where a line's ``need`` pieces come from: the lot it names up to what that lot has
        available, then the lots it already holds, then the other lots of the same part, colour and
        condition, most available first (ties: the older lot) -- so a line never oversells a bin
        while another holds the pieces. What cannot be covered stays on the named lot (oversold
        only when the whole stock of that part is short). ``holds``: what the line holds now (its
        own pieces count as available to it); ``claimed``: what earlier lines of the same order
        took in this plan."""
        lot = self.by_id.get(primary)
        if lot is None or need <= 0:
            return {primary: need} if need > 0 else {}

        def free(candidate: Lot) -> int:
            return max(0, candidate.available + holds.get(candidate.id, 0) - claimed.get(candidate.id, 0))

        if free(lot) >= need:  # the named lot has them all (most lines): no sibling is asked
            return {lot.id: need}
        siblings = [c for c in self.candidates(lot.part_number, lot.color_id, lot.condition) if c.id != lot.id]
        siblings.sort(key=lambda c: (c.id not in holds, -free(c), c.id))
        plan: dict[int, int] = {}
        remaining = need
        for candidate in [lot, *siblings]:
            take = min(remaining, free(candidate))
            if take:
                plan[candidate.id] = take
                remaining -= take
            if not remaining:
                break
        if remaining:
            plan[lot.id] = plan.get(lot.id, 0) + remaining
        return plan

    def match(self, line: OrderLine, previous_lot: int | None = None) -> Match:
        """The lot for ``line`` by the module's rules, in order; ``previous_lot``: the lot it holds now."""
        linked = self.by_link.get(line.bricklink_lot_id) if line.bricklink_lot_id else None
        untranslated = _untranslated(line, linked)
        if untranslated is not None:
            return untranslated
        lots = self._lots_for(line)
        found = (_at_location(line, lots) or _linked(line, linked) or _kept(lots, previous_lot)
                 or _most_available(lots))
        return found or Match(
            None, None,
            f"no inventory lot for {line.part_number} colour {line.color_id} {line.condition}", kind=Unmatched.NO_LOT,
        )

    def _lots_for(self, line: OrderLine) -> list[Lot]:
        """The lots of the line's part, colour and condition (none while one of them is unknown)."""
        if line.part_number and line.color_id is not None and line.condition:
            return self.candidates(line.part_number, line.color_id, line.condition)
        return []


# --- the rules of LotIndex.match, each a Match or None -------------------------------------
def _untranslated(line: OrderLine, linked: Lot | None) -> Match | None:
    """Unmatched before any rule: no part, colour or condition to look for, and no lot link."""
    if line.part_number is None and linked is None:
        return Match(None, None, line.unmatched_reason or "no BrickLink part number",
                     kind=line.unmatched_kind or Unmatched.NO_PART)
    if linked is None and (line.color_id is None or line.condition is None):
        return Match(None, None, line.unmatched_reason or "no BrickLink colour or condition",
                     kind=line.unmatched_kind or Unmatched.CONDITION_UNKNOWN)
    return None


def _at_location(line: OrderLine, lots: list[Lot]) -> Match | None:
    """Rule 1: the lot in the bin the line names."""
    if line.location:
        for lot in lots:
            if lot.location == line.location:
                return Match(lot.id, "location", location=lot.location)
    return None


def _linked(line: OrderLine, linked: Lot | None) -> Match | None:
    """Rule 2: the BrickLink lot the line is linked to, unless the line names another part."""
    if linked is not None and (line.part_number in (None, linked.part_number)):
        return Match(linked.id, "lot-link", location=linked.location)
    return None


def _kept(lots: list[Lot], previous_lot: int | None) -> Match | None:
    """Rule 3, first: the lot the line already holds, while it still qualifies."""
    if previous_lot is not None:
        for lot in lots:
            if lot.id == previous_lot:
                return Match(lot.id, "best-stock", location=lot.location)
    return None


def _most_available(lots: list[Lot]) -> Match | None:
    """Rule 3: the lot with the most available stock (ties: the older lot)."""
    if lots:
        best = max(lots, key=lambda lot: (lot.available, -lot.id))
        return Match(best.id, "best-stock", location=best.location)
    return None
