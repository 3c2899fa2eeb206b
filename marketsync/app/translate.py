"""Translating BrickOwl order lines into the BrickLink terms the seller's inventory is keyed by.

BrickOwl order lines carry BrickOwl's own identities: a BOID (``487300-38`` = item ``487300`` in
BrickOwl colour ``38``), a BrickOwl colour id and a condition code, plus a few alternative ids
(``ldraw``, ``peeron_id``, ``design_id``) and, when the seller's lots are linked, the BrickLink
lot id. No BrickLink item number appears anywhere (shared/marketplace-apis.md, "Mapping BrickOwl
lines onto a BrickLink-keyed inventory").

Per line, :class:`Translator` works out

* the BrickLink colour, through the BrickOwl -> BrickLink colour table (:mod:`marketsync.app.catalog`);
* the condition, from BrickOwl's condition code, else its display text (:func:`brickowl_condition`;
  ``other`` has none: flagged, never guessed);
* the BrickLink part number, by these routes in order:

  0. ``manual``    a seller's pin for the base BOID (``marketsync map``) wins over everything;
  1. ``lot-link``  the line's ``bricklink_lot_id`` names a lot of the inventory: that lot's part
                   (and its colour and condition: the link is the seller's own statement);
  2. the cached BOID map (``_boid_map``; also rebuilt from cached ``_id_lookups`` answers);
  3. ``id_lookup`` BrickOwl's ``catalog/id_lookup`` for the inventory part numbers plausible for
                   the line (its alternative ids themselves, then inventory parts that extend one
                   of them, ``3069`` -> ``3069b``);
  4. ``ids``       the first alternative id the inventory holds in the line's colour and
                   condition (cached only because the inventory confirms it);
  5. ``stock``     when neither names a part: candidates from the seller's own stock, each
                   confirmed by ``catalog/id_lookup`` (its answer must name the line's BOID; a
                   candidate is never taken on trust): first the lots in the line's bin (its
                   personal note) in the line's colour and condition, then the inventory's other
                   parts in that colour and condition; in each, most likely first: parts no other
                   BOID is mapped to, then numbers sharing the most leading characters (at least
                   three) with one of the line's ids or a number in its name, then the most pieces
                   in stock. A part BrickOwl was already asked about is never asked again.

``catalog/id_lookup`` is asked with the line's own BrickOwl item type (``Part``, ``Minifigure``,
``Set``...; ``Part`` when the line has none) and, when BrickOwl knows nothing of that type under
the number, with the fallback types BrickSync uses (:data:`TYPE_FALLBACKS`: Part and Minifigure
-> Minibuild, Set <-> Gear). Every answer is cached per (BrickLink number, type asked) in
``_id_lookups`` and asked at most once ever; every BOID an answer names is mapped, so one call
serves many lines.

Bounds on the stock route (route 5), in calls of ``catalog/id_lookup`` (a fallback type is a
call too): at most :data:`STOCK_LOOKUPS_PER_LINE` per line and :data:`STOCK_LOOKUPS_PER_RUN` per
translator (one sync run), both within the translator's overall ``lookup_budget`` (200 by
default). A line whose candidates run out, or that spent its share, waits unmatched until the
seller pins its BOID (re-matching it from the database searches no further); one that met the
run's bound is retried on the next run. Lines of the same BOID, bin, colour and condition are
searched once per run.

A line no route translates says in its reason what fixes it (``marketsync map BOID
PART_NUMBER``); :meth:`Translator.first_report` lets the unmatched report say it once per run per
BOID rather than once per line.

The translator has no SQL: it starts from a :class:`Known` snapshot of the stored catalogue data
and hands what it learned to the caller (:meth:`Translator.take_learned`), who stores it in the
same transaction as the lines. ``translate`` is thread-safe: fetching threads call it while the
main thread writes.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from marketsync import parse
from marketsync.errors import NotFoundError, PermissionDeniedError, ProviderError, RequestRejectedError
from marketsync.rules.boid import (  # noqa: F401 (the translator's vocabulary, re-exported)
    DEFAULT_ITEM_TYPE,
    ITEM_TYPES,
    NEW_CODES,
    TYPE_FALLBACKS,
    USED_CODES,
    base_boid,
    brickowl_condition,
    brickowl_item_type,
    lookup_types,
    split_boid,
)
from marketsync.rules.matching import Lot, LotIndex
from marketsync.model import (  # noqa: F401 (the catalogue records, re-exported)
    RANK,
    SOURCES,
    Catalog,
    Known,
    Learned,
    Mapping,
    OrderLine,
    Unmatched,
    now_iso,
)
from marketsync.registry import MARKETPLACES, Capability

log = logging.getLogger("marketsync.app.translate")

NOT_APPLICABLE = 0  # BrickOwl colour 0 "Not Applicable" is BrickLink colour 0 (colourless items)
MAX_PREFIX_CANDIDATES = 6  # inventory parts extending one alternative id, per id (closest first)
STOCK_LOOKUPS_PER_LINE = 5  # catalog/id_lookup calls one line may spend on candidates from the seller's stock
STOCK_LOOKUPS_PER_RUN = 50  # ... and all the lines of one translator (one run) together





# --- BOIDs ----------------------------------------------------------------------------------
def _translated(line: Any) -> bool:
    """Lines of a marketplace that names items in its own catalogue are translated; others are
    in the inventory's terms already."""
    name = getattr(line, "provider", None)
    return name in MARKETPLACES and MARKETPLACES[name].can(Capability.CATALOG)


# What one attempt to have a candidate confirmed came to.
FOUND = "found"  # the line's BOID is mapped now
ANSWERED = "answered"  # BrickOwl's answer for a (number, type) is known (it may name other items)
OTHER = "other"  # BrickOwl's answer for the candidate does not name the line's BOID
UNAVAILABLE = "unavailable"  # no lookup possible now (budget, outage, refusal, the run's stock bound)
LINE_SPENT = "line-spent"  # the line spent its share of stock lookups

_NUMBER = re.compile(r"[0-9][0-9a-z]*")
MIN_CLOSENESS = 3  # leading characters shared with one of the line's numbers before it counts


@dataclass
class _Allowance:
    """Stock lookups one line may still make."""

    left: int


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


# (part, route, unmatched kind, reason): how a line's part number was found, or why not
_PartFound = tuple[str | None, str | None, str | None, str | None]


def _condition(line: OrderLine) -> tuple[str | None, str | None]:
    """(BrickLink condition, reason when there is none)."""
    cond = brickowl_condition(line.provider_condition)
    if cond is not None:
        return cond, None
    raw = parse.text(line.provider_condition)
    return None, (f"BrickOwl condition {raw!r} has no BrickLink equivalent" if raw
                  else "BrickOwl line has no condition")


def _follow_link(line: OrderLine, linked: Lot, color: int | None, cond: str | None) -> tuple[int, str]:
    """The linked lot's colour and condition: the link is the seller's own statement about this lot."""
    if (color, cond) != (linked.color_id, linked.condition) and color is not None and cond is not None:
        log.info("brickowl line %s/%s: linked lot %s is colour %s %s, the line says colour %s %s; "
                 "following the link", line.order_id, line.line_key, linked.bricklink_lot_id, linked.color_id,
                 linked.condition, color, cond)
    return linked.color_id, linked.condition


def _unmatched_kind(color_kind: str | None, part_kind: str | None, condition_unknown: bool) -> str:
    """The first kind that a later run can fix by itself decides; then the others, in order."""
    kinds = [k for k in (color_kind, part_kind) if k]
    retried = next((k for k in kinds if k in Unmatched.RETRIED), None)
    if retried:
        return retried
    if kinds:
        return kinds[0]
    return Unmatched.CONDITION_UNKNOWN if condition_unknown else Unmatched.NO_PART


def _hints(line: OrderLine, alts: list[str]) -> list[str]:
    """The numbers a stock candidate's part number may resemble: the line's ids, and those in its name."""
    return [h.lower() for h in alts] + [h for h in _NUMBER.findall((line.name or "").lower()) if len(h) >= 3]


def _likelihood(hints: list[str], claimed: set[str], pieces: Counter[str]) -> Callable[[str], tuple[Any, ...]]:
    """The sort key of stock candidates, most likely first: parts no other BOID is mapped to, then
    the closest to a hint, then the most pieces in stock."""
    def key(part: str) -> tuple[Any, ...]:
        close = max((_shared_prefix(part.lower(), hint) for hint in hints), default=0)
        return (part in claimed, -(close if close >= MIN_CLOSENESS else 0), -pieces.get(part, 0), len(part), part)
    return key


class Translator:
    """Translates BrickOwl lines for one account during one run (thread-safe ``translate``)."""

    def __init__(self, known: Known, index: LotIndex, catalog: Catalog | None = None, *, lookup_budget: int = 200,
                 beyond_inventory: bool = False, stock_lookups_per_line: int | None = None,
                 stock_lookups_per_run: int | None = None):
        self.index, self.catalog = index, catalog
        # Ask about alternative ids the inventory does not hold yet (a pull filling an empty
        # inventory); every answer is still BrickOwl's own confirmation, never a guess.
        self.beyond_inventory = beyond_inventory
        self.lookup_budget = max(0, int(lookup_budget))
        self.stock_per_line = max(0, int(STOCK_LOOKUPS_PER_LINE if stock_lookups_per_line is None
                                         else stock_lookups_per_line))
        self.stock_per_run = max(0, int(STOCK_LOOKUPS_PER_RUN if stock_lookups_per_run is None
                                        else stock_lookups_per_run))
        self.lookups_made = 0  # catalog/id_lookup calls made by this translator
        self.stock_lookups_made = 0  # ... of them for candidates from the seller's stock
        self.lookups_deferred = 0  # lines left for a later run because lookups were unavailable
        self.lookup_error: str | None = None  # why lookups stopped early in this run, if they did
        self.routes: Counter[str] = Counter()  # translated lines per part-number route
        self.colors = dict(known.colours)
        self.unknown_colours: set[int] = set()  # seen on lines, absent from the table
        self.unknown_boids: set[str] = set()  # base BOIDs of lines no route could translate in this run
        # A snapshot: reading the live set while another thread adds to it could fail.
        self._parts = sorted(index.part_numbers)
        self._part_set = frozenset(self._parts)
        self._lock = threading.Lock()
        self._map: dict[str, Mapping] = {}
        # (BrickLink part, BrickOwl type asked) -> BOIDs (cached id_lookup answers)
        self._answers: dict[tuple[str, str], tuple[str, ...]] = {}
        self._inflight: dict[tuple[str, str], threading.Event] = {}
        self._lookups_stopped = False
        self._stock: dict[tuple[int, str], Counter[str]] | None = None  # (colour, condition) -> part -> pieces
        self._bins: dict[tuple[str, int, str], list[str]] = {}  # (bin, colour, condition) -> parts
        self._searched: set[tuple[str, str, str, int, str]] = set()  # stock searches that found nothing
        self._reported: dict[str, tuple[str, str]] = {}  # unknown BOID -> the line that named it in this run
        self._pending = Learned()
        self._load(known)

    def use_colours(self, colours: dict[int, int | None]) -> None:
        """Take up a freshly refreshed colour table."""
        self.colors = dict(colours)
        self.unknown_colours.clear()

    def _load(self, known: Known) -> None:
        for (part, item_type), boids in known.answers.items():
            self._answers[(part, item_type)] = tuple(str(b) for b in boids if parse.text(b))
        for (part, _type), answer in self._answers.items():
            self._learn_answer(part, answer, pending=False)
        for boid, part, source in known.mappings:
            if boid and part:
                source = source if source in RANK else "ids"
                self._map[boid] = Mapping(part, source)  # the stored row wins over rebuilt answers

    # -- the public entry points -------------------------------------------------------------
    def translate(self, lines: Iterable[OrderLine]) -> None:
        """Fill part_number / color_id (BrickLink) of BrickOwl lines, or their unmatched_reason.

        Never raises for odd data; only a persistent provider error of ``catalog/id_lookup``
        (bad key, no permission, daily budget) propagates.
        """
        for line in lines:
            if not _translated(line):
                continue
            try:
                self._translate(line)
            except ProviderError:
                raise
            except Exception as exc:  # odd data must never stop a sync
                log.exception("brickowl: cannot translate line %s of order %s", line.line_key, line.order_id)
                line.part_number, line.color_id = None, None
                line.unmatched(Unmatched.UNREADABLE,
                               f"BrickOwl line cannot be translated ({exc.__class__.__name__}: {exc})")

    def first_report(self, line: OrderLine) -> bool:
        """Should the unmatched report name this line? A line waiting for a BOID that no route
        could translate is named once per run per BOID (its reason says how to pin the BOID);
        every other line always."""
        if not _translated(line) or line.unmatched_kind != Unmatched.NO_PART:
            return True
        base = base_boid(line.boid)
        this = (str(line.order_id), str(line.line_key))
        with self._lock:
            if base is None or base not in self.unknown_boids:
                return True
            # Asking again about the line named first says yes again (a batch written again order by order).
            return self._reported.setdefault(base, this) == this

    def take_learned(self) -> Learned:
        """The mappings and lookup answers learned since the last call, for the caller to store;
        should storing fail, :meth:`keep_learned` hands them back."""
        with self._lock:
            learned, self._pending = self._pending, Learned()
        return learned

    def keep_learned(self, learned: Learned) -> None:
        with self._lock:
            for boid, mapping in learned.mappings.items():
                self._pending.mappings.setdefault(boid, mapping)
            for key, answer in learned.answers.items():
                self._pending.answers.setdefault(key, answer)

    # -- one line ------------------------------------------------------------------------------
    def _translate(self, line: OrderLine) -> None:
        color, color_kind, color_reason = self._color(line)
        cond, cond_reason = _condition(line)
        base = base_boid(line.boid)
        alts = self._alternatives(line)
        with self._lock:
            known = self._map.get(base) if base else None
        linked_id = parse.text(line.bricklink_lot_id)
        linked = self.index.by_link.get(linked_id) if linked_id else None
        part, route, part_kind, part_reason = self._part(line, base, alts, known, linked, color, cond)
        if linked is not None and part == linked.part_number:
            color, cond = _follow_link(line, linked, color, cond)

        line.part_number, line.color_id, line.condition = part, color, cond
        if part is not None and color is not None and cond is not None:
            line.unmatched_reason = line.unmatched_kind = None
            with self._lock:
                self.routes[route or "ids"] += 1
            return
        reasons = [r for r in (color_reason, cond_reason, part_reason) if r]
        line.unmatched(_unmatched_kind(color_kind, part_kind, cond_reason is not None),
                       "; ".join(reasons) or "BrickOwl line cannot be translated")

    def _part(self, line: OrderLine, base: str | None, alts: list[str], known: Mapping | None, linked: Lot | None,
              color: int | None, cond: str | None) -> _PartFound:
        """(part, route, unmatched kind, reason) through routes 0 to 2, else the searching ones."""
        if known is not None and known.source == "manual":
            return known.part_number, "manual", None, None
        if linked is not None:
            if base:
                self._remember(base, Mapping(linked.part_number, "lot-link"))
            return linked.part_number, "lot-link", None, None
        if known is not None:
            return known.part_number, known.source, None, None
        return self._find_part(line, base, alts, color, cond)

    def _color(self, line: OrderLine) -> tuple[int | None, str | None, str | None]:
        """(BrickLink colour, unmatched kind, reason)."""
        bo_colour = parse.integer(line.provider_color_id)
        if bo_colour is None:
            base, suffix = split_boid(line.boid)
            if suffix is not None:
                bo_colour = suffix
            elif base is not None:
                bo_colour = NOT_APPLICABLE  # a bare BOID is a colourless item
            else:
                return None, Unmatched.COLOUR_NONE, "BrickOwl line has no colour"
        bl_colour = self.colors.get(bo_colour)
        if bl_colour is None:
            name = parse.text(line.color_name)
            label = f"BrickOwl colour {bo_colour}" + (f" ({name})" if name else "")
            if bo_colour not in self.colors:  # newer than our table: worth asking BrickOwl's
                with self._lock:
                    self.unknown_colours.add(bo_colour)
                return None, Unmatched.COLOUR_UNKNOWN, f"{label} is not in the colour table yet"
            return None, Unmatched.COLOUR_NONE, f"{label} has no BrickLink equivalent"
        return bl_colour, None, None

    @staticmethod
    def _alternatives(line: OrderLine) -> list[str]:
        values = line.alt_part_numbers if isinstance(line.alt_part_numbers, (list, tuple)) else []
        alts: list[str] = []
        for value in values:
            text = parse.text(value)
            if text and text not in alts:
                alts.append(text)
        return alts

    # -- routes 3, 4 and 5 --------------------------------------------------------------------
    def _find_part(self, line: OrderLine, base: str | None, alts: list[str], color: int | None,
                   cond: str | None) -> _PartFound:
        """(part, route, unmatched kind, reason) through id_lookup, the alternative ids, then the
        seller's stock."""
        types = lookup_types(line.item_type)
        deferred = False
        if base and self.catalog is not None:
            deferred = self._ask_about_alternatives(base, alts, types)
            found = self._mapped(base)
            if found is not None:
                return found.part_number, found.source, None, None

        contradicted: list[str] = []
        if color is not None and cond is not None:
            part, contradicted = self._held_alternative(base, alts, types, color, cond)
            if part is not None:
                return part, "ids", None, None
            # A line given up on when it was first translated (re-matched from the database) is not
            # searched again: its share was spent then, and its BOID waits for the seller's pin.
            if (base and not deferred and self.catalog is not None
                    and line.unmatched_kind != Unmatched.NO_PART):
                part, deferred = self._from_stock(line, base, types, alts, color, cond)
                if part is not None:
                    return part, "stock", None, None
        return self._not_found(base, alts, contradicted, deferred)

    def _ask_about_alternatives(self, base: str, alts: list[str], types: tuple[str, ...]) -> bool:
        """Route 3: ask BrickOwl about the line's plausible part numbers until an answer maps
        ``base``; True when lookups stopped being possible first (the line waits for a later run)."""
        for candidate in self._candidates(alts):
            outcome = self._confirm(candidate, types, base)
            if outcome != OTHER:
                return outcome != FOUND
        return False

    def _held_alternative(self, base: str | None, alts: list[str], types: tuple[str, ...], color: int,
                          cond: str) -> tuple[str | None, list[str]]:
        """Route 4: (the first alternative id the inventory holds in the line's colour and
        condition, the held ones BrickOwl's cached answers say are other items)."""
        contradicted: list[str] = []
        for alt in alts:
            if not self.index.has(alt, color, cond):
                continue
            answer = self._known_answer(alt, types)
            if base and answer and base not in {base_boid(b) for b in answer}:
                contradicted.append(alt)
                continue
            if base:
                self._remember(base, Mapping(alt, "ids"))
            return alt, contradicted
        return None, contradicted

    def _from_stock(self, line: OrderLine, base: str, types: tuple[str, ...], alts: list[str], color: int,
                    cond: str) -> tuple[str | None, bool]:
        """Route 5: (the part a stock candidate confirmed, whether the search waits for a later run)."""
        outcome = self._search_stock(line, base, types, alts, color, cond)
        found = self._mapped(base) if outcome == FOUND else None
        if found is not None:
            return found.part_number, False
        return None, outcome == UNAVAILABLE

    def _not_found(self, base: str | None, alts: list[str], contradicted: list[str], deferred: bool) -> _PartFound:
        """No route named a part: the reason says what fixes it."""
        ids = f" (ids {', '.join(alts)})" if alts else " (no alternative ids)"
        item = f"BrickOwl item {base}" if base else "BrickOwl line without a BOID"
        reason = f"{item}{ids} has no BrickLink part number in the inventory"
        if contradicted:
            reason += f"; BrickOwl maps {', '.join(contradicted)} to other items"
        if deferred:
            with self._lock:
                self.lookups_deferred += 1
            return None, None, Unmatched.LOOKUP_DEFERRED, reason + "; id lookup deferred to a later run"
        if base:
            with self._lock:
                self.unknown_boids.add(base)
            reason += f"; pin it with 'marketsync map {base} PART_NUMBER'"
        return None, None, Unmatched.NO_PART, reason

    def _mapped(self, base: str) -> Mapping | None:
        with self._lock:
            return self._map.get(base)

    def _candidates(self, alts: list[str]) -> list[str]:
        """Inventory part numbers plausible for the line: its alternative ids, then their extensions."""
        found = [alt for alt in alts if alt in self._part_set or self.beyond_inventory]
        for alt in alts:
            start = bisect.bisect_left(self._parts, alt)
            extensions = []
            for part in self._parts[start:]:
                if not part.startswith(alt):
                    break
                # '3069' -> '3069b', '3069bpr0001'; never '30690' (another part altogether)
                if len(part) > len(alt) and not part[len(alt)].isdigit():
                    extensions.append(part)
            extensions.sort(key=lambda p: (len(p), p))
            for part in extensions[:MAX_PREFIX_CANDIDATES]:
                if part not in found:
                    found.append(part)
        return found

    # -- route 5: candidates from the seller's stock --------------------------------------------
    def _search_stock(self, line: OrderLine, base: str, types: tuple[str, ...], alts: list[str], color: int,
                      cond: str) -> str:
        """Ask BrickOwl about the seller's own parts in the line's bin, then in its colour and
        condition, until one answer names the line's BOID (FOUND), the candidates or the line's
        share run out (OTHER), or no lookup is possible now (UNAVAILABLE)."""
        key = (base, types[0], line.location or "", color, cond)
        with self._lock:
            if key in self._searched:
                return OTHER
            if (self._lookups_stopped or self.lookups_made >= self.lookup_budget
                    or self.stock_lookups_made >= self.stock_per_run):
                return UNAVAILABLE  # every answer already cached is mapped: only a new call could help
        allowance = _Allowance(self.stock_per_line)
        for part in self._stock_candidates(line, base, types, alts, color, cond, allowance.left):
            outcome = self._confirm(part, types, base, allowance)
            if outcome == FOUND:
                return FOUND
            if outcome == LINE_SPENT:
                break
            if outcome == UNAVAILABLE:
                return UNAVAILABLE
        with self._lock:
            self._searched.add(key)
        return OTHER

    def _stock_candidates(self, line: OrderLine, base: str, types: tuple[str, ...], alts: list[str], color: int,
                          cond: str, limit: int) -> list[str]:
        """Up to ``limit`` parts BrickOwl has not yet been asked about for lines of these types:
        those in the line's bin, then the others, in the line's colour and condition, each tier
        most likely first. (A part already asked about is left out: had its answer named the
        line's BOID, the BOID would be mapped.)"""
        with self._lock:
            stock, bins = self._stock_tables()
            pieces = stock.get((color, cond), Counter())
            in_bin = bins.get((line.location, color, cond), []) if line.location else []
            claimed = {m.part_number for boid, m in self._map.items() if boid != base}
            first = [part for part in in_bin if self._cached_answer(part, types) is None]
            rest = [part for part in pieces if part not in in_bin and self._cached_answer(part, types) is None]
        likelihood = _likelihood(_hints(line, alts), claimed, pieces)
        ranked = heapq.nsmallest(limit, first, key=likelihood)
        return ranked + heapq.nsmallest(max(0, limit - len(ranked)), rest, key=likelihood)

    def _stock_tables(self) -> tuple[dict[tuple[int, str], Counter[str]], dict[tuple[str, int, str], list[str]]]:
        """(colour, condition) -> part -> pieces and (bin, colour, condition) -> parts, built on
        first use (the caller holds the lock)."""
        if self._stock is None:
            stock: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
            bins: dict[tuple[str, int, str], list[str]] = defaultdict(list)
            for lot in list(self.index.by_id.values()):  # a copy: the writer may add lots meanwhile
                stock[(lot.color_id, lot.condition)][lot.part_number] += max(0, lot.quantity)
                if lot.location and lot.part_number not in bins[(lot.location, lot.color_id, lot.condition)]:
                    bins[(lot.location, lot.color_id, lot.condition)].append(lot.part_number)
            self._stock, self._bins = dict(stock), dict(bins)
        return self._stock, self._bins

    # -- asking BrickOwl --------------------------------------------------------------------------
    def _confirm(self, part: str, types: tuple[str, ...], base: str, allowance: _Allowance | None = None) -> str:
        """Does BrickOwl name ``base`` for ``part``? Asked with the line's type, then each
        fallback type while the answers are empty (a miss)."""
        for item_type in types:
            if self._mapped(base) is not None:
                return FOUND
            outcome = self._ensure_answer(part, item_type, allowance)
            if outcome != ANSWERED:
                return outcome
            with self._lock:
                if base in self._map:
                    return FOUND
                if self._answers[(part, item_type)]:
                    return OTHER  # BrickOwl knows the number as another item of this type: no fallback
        return OTHER

    def _known_answer(self, part: str, types: tuple[str, ...]) -> tuple[str, ...] | None:
        with self._lock:
            return self._cached_answer(part, types)

    def _cached_answer(self, part: str, types: tuple[str, ...]) -> tuple[str, ...] | None:
        """BrickOwl's cached word on ``part`` for a line of these types: the first non-empty answer
        in order, ``()`` when every type answered empty, None while one is still to be asked
        (the caller holds the lock)."""
        for item_type in types:
            answer = self._answers.get((part, item_type))
            if answer is None:
                return None
            if answer:
                return answer
        return ()

    def _ensure_answer(self, part: str, item_type: str, allowance: _Allowance | None = None) -> str:
        """Make sure BrickOwl's answer for ``part`` asked as ``item_type`` is known (ANSWERED);
        UNAVAILABLE when no lookup is possible now, LINE_SPENT when the line's share of stock
        lookups is spent. A lookup for the stock route (``allowance`` given) counts against the
        line's share and the run's."""
        key = (part, item_type)
        while True:
            with self._lock:
                if key in self._answers:
                    return ANSWERED
                waiting = self._inflight.get(key)
                if waiting is None:
                    if self._lookups_stopped or self.lookups_made >= self.lookup_budget:
                        return UNAVAILABLE
                    if allowance is not None:
                        if allowance.left <= 0:
                            return LINE_SPENT
                        if self.stock_lookups_made >= self.stock_per_run:
                            return UNAVAILABLE
                        allowance.left -= 1
                        self.stock_lookups_made += 1
                    self.lookups_made += 1
                    done = self._inflight[key] = threading.Event()
            if waiting is not None:
                waiting.wait()
                continue  # answered, or failed: look again
            try:
                boids = self._lookup(part, item_type)
            finally:
                with self._lock:
                    self._inflight.pop(key, None)
                done.set()
            return ANSWERED if boids is not None else UNAVAILABLE

    def _lookup(self, part: str, item_type: str) -> tuple[str, ...] | None:
        try:
            answer = self.catalog.id_lookup(part, item_type)  # type: ignore[union-attr]  # set: see _find_part
        except NotFoundError as exc:
            log.debug("brickowl: id_lookup %s (%s): %s (no answer)", part, item_type, exc)
            answer = []
        except RequestRejectedError as exc:  # BrickOwl's plain-string errors too: not an answer, never cached
            log.debug("brickowl: id_lookup %s (%s) refused (%s); asked again on a later run", part, item_type, exc)
            return None
        except ProviderError as exc:
            with self._lock:
                self._lookups_stopped = True  # waiting threads must not repeat a failing call
                self.lookup_error = str(exc)
            if not exc.retryable and not isinstance(exc, PermissionDeniedError):
                raise  # bad key, daily budget: the caller must hear it
            # A key without catalog permission still syncs orders; pinned maps and lot links still work.
            log.warning("brickowl: id_lookup failing (%s); remaining lookups wait for the next run", exc)
            return None
        boids = tuple(str(b) for b in answer if parse.text(b))
        with self._lock:
            self._answers[(part, item_type)] = boids
            self._pending.answers[(part, item_type)] = (boids, now_iso())
            self._learn_answer(part, boids, pending=True)
        return boids

    # -- the in-memory map (callers of _learn_answer hold the lock) -----------------------------
    def _learn_answer(self, part: str, boids: Iterable[str], *, pending: bool) -> None:
        for boid in boids:
            base = base_boid(boid)
            if base:
                self._set(base, Mapping(part, "id_lookup"), pending)

    def _remember(self, base: str, mapping: Mapping) -> None:
        with self._lock:
            self._set(base, mapping, True)

    def _set(self, base: str, mapping: Mapping, pending: bool) -> None:
        current = self._map.get(base)
        if current is not None and (current.source == "manual" or RANK[mapping.source] <= RANK[current.source]):
            return
        self._map[base] = mapping
        if pending:
            self._pending.mappings[base] = (mapping.part_number, mapping.source)
