"""Translating BrickOwl order lines into the BrickLink terms the seller's inventory is keyed by.

BrickOwl order lines carry BrickOwl's own identities: a BOID (``487300-38`` = item ``487300`` in
BrickOwl colour ``38``), a BrickOwl colour id and a condition code, plus a few alternative ids
(``ldraw``, ``peeron_id``, ``design_id``) and, when the seller's lots are linked, the BrickLink
lot id. No BrickLink item number appears anywhere (shared/marketplace-apis.md, "Mapping BrickOwl
lines onto a BrickLink-keyed inventory").

Per line, :class:`Translator` works out

* the BrickLink colour, through the BrickOwl -> BrickLink colour table (:mod:`marketsync.catalog`);
* the condition, from BrickOwl's condition code, else its display text (:func:`brickowl_condition`;
  ``other`` has none: flagged, never guessed);
* the BrickLink part number, by these routes in order:

  0. ``manual``    a seller's pin for the base BOID (``marketsync map``) wins over everything;
  1. ``lot-link``  the line's ``bricklink_lot_id`` names a lot of the inventory: that lot's part
                   (and its colour and condition: the link is the seller's own statement);
  2. the cached BOID map (``_boid_map``; also rebuilt from cached ``_id_lookups`` answers);
  3. ``id_lookup`` BrickOwl's ``catalog/id_lookup`` for the inventory part numbers plausible for
                   the line (its alternative ids themselves, then inventory parts that extend one
                   of them, ``3069`` -> ``3069b``). Each BrickLink number is asked about at most
                   once ever; every BOID of an answer is mapped, so one call serves many lines;
  4. ``ids``       the first alternative id the inventory holds in the line's colour and
                   condition (cached only because the inventory confirms it).

The translator has no SQL: it starts from a :class:`Known` snapshot of the stored catalogue data
and hands what it learned to the caller (:meth:`Translator.take_learned`), who stores it in the
same transaction as the lines. ``translate`` is thread-safe: fetching threads call it while the
main thread writes.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from marketsync import parse
from marketsync.errors import NotFoundError, PermissionDeniedError, ProviderError, RequestRejectedError
from marketsync.matching import LotIndex
from marketsync.model import Catalog, OrderLine, Unmatched, now_iso

log = logging.getLogger("marketsync.translate")

PROVIDER = "brickowl"
NOT_APPLICABLE = 0  # BrickOwl colour 0 "Not Applicable" is BrickLink colour 0 (colourless items)
MAX_PREFIX_CANDIDATES = 6  # inventory parts extending one alternative id, per id (closest first)

# Sources of a BOID -> part mapping, weakest first. A stronger source replaces a weaker one;
# equal or weaker never replaces (first answer wins, no flip-flopping), and 'manual' only ever
# changes through `marketsync map`.
SOURCES = ("ids", "id_lookup", "lot-link", "manual")
RANK = {source: rank for rank, source in enumerate(SOURCES)}

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


# --- BOIDs ----------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Mapping:
    part_number: str
    source: str


@dataclass
class Learned:
    """What translation learned in a run and has not stored yet."""

    mappings: dict[str, tuple[str, str]] = field(default_factory=dict)  # base BOID -> (part, source)
    answers: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)  # part -> (BOIDs, when)

    def __bool__(self) -> bool:
        return bool(self.mappings or self.answers)


@dataclass
class Known:
    """The stored catalogue data a translator starts from."""

    colours: dict[int, int | None]  # BrickOwl colour -> BrickLink colour (None: no equivalent)
    answers: dict[str, list[str]] = field(default_factory=dict)  # BrickLink part -> BOIDs (id_lookup)
    mappings: list[tuple[str, str, str]] = field(default_factory=list)  # (base BOID, part, source)


class Translator:
    """Translates BrickOwl lines for one account during one run (thread-safe ``translate``)."""

    def __init__(self, known: Known, index: LotIndex, catalog: Catalog | None = None, *, lookup_budget: int = 200,
                 beyond_inventory: bool = False):
        self.index, self.catalog = index, catalog
        # Ask about alternative ids the inventory does not hold yet (a pull filling an empty
        # inventory); every answer is still BrickOwl's own confirmation, never a guess.
        self.beyond_inventory = beyond_inventory
        self.lookup_budget = max(0, int(lookup_budget))
        self.lookups_made = 0  # catalog/id_lookup calls made by this translator
        self.lookups_deferred = 0  # lines left for a later run because lookups were unavailable
        self.lookup_error: str | None = None  # why lookups stopped early in this run, if they did
        self.routes: Counter[str] = Counter()  # translated lines per part-number route
        self.colors = dict(known.colours)
        self.unknown_colours: set[int] = set()  # seen on lines, absent from the table
        # A snapshot: reading the live set while another thread adds to it could fail.
        self._parts = sorted(index.part_numbers)
        self._part_set = frozenset(self._parts)
        self._lock = threading.Lock()
        self._map: dict[str, Mapping] = {}
        self._answers: dict[str, tuple[str, ...]] = {}  # BrickLink part -> BOIDs (cached id_lookup answers)
        self._inflight: dict[str, threading.Event] = {}
        self._lookups_stopped = False
        self._pending = Learned()
        self._load(known)

    def use_colours(self, colours: dict[int, int | None]) -> None:
        """Take up a freshly refreshed colour table."""
        self.colors = dict(colours)
        self.unknown_colours.clear()

    def _load(self, known: Known) -> None:
        for part, boids in known.answers.items():
            self._answers[part] = tuple(str(b) for b in boids if parse.text(b))
        for part, answer in self._answers.items():
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
            if getattr(line, "provider", None) != PROVIDER:
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
            for part, answer in learned.answers.items():
                self._pending.answers.setdefault(part, answer)

    # -- one line ------------------------------------------------------------------------------
    def _translate(self, line: OrderLine) -> None:
        color, color_kind, color_reason = self._color(line)
        cond = brickowl_condition(line.provider_condition)
        cond_reason = None
        if cond is None:
            raw = parse.text(line.provider_condition)
            cond_reason = (f"BrickOwl condition {raw!r} has no BrickLink equivalent" if raw
                           else "BrickOwl line has no condition")
        base = base_boid(line.boid)
        alts = self._alternatives(line)
        with self._lock:
            known = self._map.get(base) if base else None
        linked_id = parse.text(line.bricklink_lot_id)
        linked = self.index.by_link.get(linked_id) if linked_id else None

        part_reason, part_kind = None, None
        part: str | None
        route: str | None
        if known is not None and known.source == "manual":
            part, route = known.part_number, "manual"
        elif linked is not None:
            part, route = linked.part_number, "lot-link"
            if base:
                self._remember(base, Mapping(part, "lot-link"))
        elif known is not None:
            part, route = known.part_number, known.source
        else:
            part, route, part_kind, part_reason = self._find_part(base, alts, color, cond)

        if linked is not None and part == linked.part_number:
            # The link is the seller's own statement about this lot: it settles colour and condition.
            if (color, cond) != (linked.color_id, linked.condition) and color is not None and cond is not None:
                log.info("brickowl line %s/%s: linked lot %s is colour %s %s, the line says colour %s %s; "
                         "following the link", line.order_id, line.line_key, linked_id, linked.color_id,
                         linked.condition, color, cond)
            color, cond = linked.color_id, linked.condition

        line.part_number, line.color_id, line.condition = part, color, cond
        reasons = [r for r in (color_reason, cond_reason, part_reason) if r]
        if part is not None and color is not None and cond is not None:
            line.unmatched_reason = line.unmatched_kind = None
            with self._lock:
                self.routes[route or "ids"] += 1
        else:
            # The first kind that a later run can fix by itself decides; then the others, in order.
            kinds = [k for k in (color_kind, part_kind) if k]
            kind = next((k for k in kinds if k in Unmatched.RETRIED), None) or (
                kinds[0] if kinds else Unmatched.CONDITION_UNKNOWN if cond_reason else Unmatched.NO_PART)
            line.unmatched(kind, "; ".join(reasons) or "BrickOwl line cannot be translated")

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

    # -- routes 3 and 4 -----------------------------------------------------------------------
    def _find_part(self, base: str | None, alts: list[str], color: int | None,
                   cond: str | None) -> tuple[str | None, str | None, str | None, str | None]:
        """(part, route, unmatched kind, reason) through id_lookup, then the alternative ids."""
        deferred = False
        if base and self.catalog is not None:
            for candidate in self._candidates(alts):
                with self._lock:
                    known = self._map.get(base)
                if known is not None:
                    break
                if not self._ensure_answer(candidate):
                    deferred = True
                    break
            with self._lock:
                known = self._map.get(base)
            if known is not None:
                return known.part_number, known.source, None, None

        contradicted: list[str] = []
        if color is not None and cond is not None:
            for alt in alts:
                if not self.index.has(alt, color, cond):
                    continue
                with self._lock:
                    answer = self._answers.get(alt)
                if base and answer and base not in {base_boid(b) for b in answer}:
                    contradicted.append(alt)  # BrickOwl's catalog says this number is another item
                    continue
                if base:
                    self._remember(base, Mapping(alt, "ids"))
                return alt, "ids", None, None

        ids = f" (ids {', '.join(alts)})" if alts else " (no alternative ids)"
        item = f"BrickOwl item {base}" if base else "BrickOwl line without a BOID"
        reason = f"{item}{ids} has no BrickLink part number in the inventory"
        if contradicted:
            reason += f"; BrickOwl maps {', '.join(contradicted)} to other items"
        if deferred:
            with self._lock:
                self.lookups_deferred += 1
            reason += "; id lookup deferred to a later run"
        return None, None, Unmatched.LOOKUP_DEFERRED if deferred else Unmatched.NO_PART, reason

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

    def _ensure_answer(self, part: str) -> bool:
        """Make sure BrickOwl's answer for ``part`` is known; False when no lookup is possible now."""
        while True:
            with self._lock:
                if part in self._answers:
                    return True
                waiting = self._inflight.get(part)
                if waiting is None:
                    if self._lookups_stopped or self.lookups_made >= self.lookup_budget:
                        return False
                    self.lookups_made += 1
                    done = self._inflight[part] = threading.Event()
            if waiting is not None:
                waiting.wait()
                continue  # answered, or failed: look again
            try:
                boids = self._lookup(part)
            finally:
                with self._lock:
                    self._inflight.pop(part, None)
                done.set()
            return boids is not None

    def _lookup(self, part: str) -> tuple[str, ...] | None:
        try:
            answer = self.catalog.id_lookup(part)  # type: ignore[union-attr]  # set: see _find_part
        except NotFoundError as exc:
            log.debug("brickowl: id_lookup %s: %s (no answer)", part, exc)
            answer = []
        except RequestRejectedError as exc:  # BrickOwl's plain-string errors too: not an answer, never cached
            log.debug("brickowl: id_lookup %s refused (%s); asked again on a later run", part, exc)
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
            self._answers[part] = boids
            self._pending.answers[part] = (boids, now_iso())
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
