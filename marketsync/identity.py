"""Translating BrickOwl order lines into the BrickLink terms the seller's inventory is keyed by.

BrickOwl order lines carry BrickOwl's own identities: a BOID (``487300-38`` = item ``487300`` in
BrickOwl colour ``38``), a BrickOwl colour id and a condition code, plus a few alternative ids
(``ldraw``, ``peeron_id``, ``design_id``) and, when the seller's lots are linked, the BrickLink
lot id. No BrickLink item number appears anywhere (shared/marketplace-apis.md, "Mapping BrickOwl
lines onto a BrickLink-keyed inventory").

Per line, :class:`Translator` works out

* the BrickLink colour, through the BrickOwl -> BrickLink colour table (``_brickowl_colors`` when
  refreshed from the API, else the packaged ``data/brickowl-colors.csv``);
* the condition, as the adapter mapped it (BrickOwl ``other`` has none: flagged, never guessed);
* the BrickLink part number, by these routes in order:

  0. ``manual``    a seller's pin for the base BOID (:func:`pin`) wins over everything;
  1. ``lot-link``  the line's ``bricklink_lot_id`` names a lot of the inventory: that lot's part
                   (and its colour and condition: the link is the seller's own statement);
  2. the cached BOID map (``_boid_map``; also rebuilt from cached ``_id_lookups`` answers);
  3. ``id_lookup`` BrickOwl's ``catalog/id_lookup`` for the inventory part numbers plausible for
                   the line (its alternative ids themselves, then inventory parts that extend one
                   of them, ``3069`` -> ``3069b``). Each BrickLink number is asked about at most
                   once ever; every BOID of an answer is mapped, so one call serves many lines;
  4. ``ids``       the first alternative id the inventory holds in the line's colour and
                   condition (cached only because the inventory confirms it).

Learned mappings stay in memory until :meth:`Translator.persist` writes them (the caller holds
the transaction). ``translate`` never touches the database, so worker threads can call it while
the main thread writes.
"""

from __future__ import annotations

import bisect
import datetime as dt
import csv
import functools
import io
import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterable

from sqlite_utils import Database

from marketsync.db import iso, now_iso, utcnow
from marketsync.errors import NotFoundError, PermissionDeniedError, ProviderError, RequestRejectedError
from marketsync.matching import LotIndex
from marketsync.providers import parse
from marketsync.providers.brickowl import condition as brickowl_condition
from marketsync.providers.records import OrderLine

log = logging.getLogger("marketsync.identity")

PROVIDER = "brickowl"
NOT_APPLICABLE = 0  # BrickOwl colour 0 "Not Applicable" is BrickLink colour 0 (colourless items)

# Sources of a BOID -> part mapping, weakest first. A stronger source replaces a weaker one;
# equal or weaker never replaces (first answer wins, no flip-flopping), and 'manual' only ever
# changes through pin() / unpin().
SOURCES = ("ids", "id_lookup", "lot-link", "manual")
RANK = {source: rank for rank, source in enumerate(SOURCES)}
_RANK_SQL = "case {col} " + " ".join(f"when '{s}' then {r}" for s, r in RANK.items()) + " else -1 end"

MAX_PREFIX_CANDIDATES = 6  # inventory parts extending one alternative id, per id (closest first)

_UPSERT_MAPPING = (
    "insert into _boid_map (business_account_id, boid, part_number, source, created_at) values (?, ?, ?, ?, ?) "
    "on conflict (business_account_id, boid) do update set part_number = excluded.part_number, "
    "source = excluded.source, created_at = excluded.created_at "
    f"where {_RANK_SQL.format(col='excluded.source')} > {_RANK_SQL.format(col='_boid_map.source')} "
    "and _boid_map.source != 'manual'"
)
_UPSERT_LOOKUP = (
    "insert into _id_lookups (business_account_id, part_number, boids, looked_up_at) values (?, ?, ?, ?) "
    "on conflict (business_account_id, part_number) do update set boids = excluded.boids, "
    "looked_up_at = excluded.looked_up_at"
)


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


# --- colours --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _packaged_colors() -> tuple[tuple[int, str, int | None], ...]:
    text = resources.files("marketsync").joinpath("data/brickowl-colors.csv").read_text(encoding="utf-8")
    rows = []
    for record in csv.DictReader(io.StringIO(text)):
        bo_id = parse.integer(record.get("brickowl_color_id"))
        if bo_id is None:
            continue
        bl_id = parse.integer(record.get("bricklink_color_id"))
        rows.append((bo_id, (record.get("brickowl_color_name") or "").strip(), _bricklink_colour(bl_id)))
    return tuple(rows)


def _bricklink_colour(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None  # negative = placeholder for "none"


def color_table(db: Database) -> dict[int, int | None]:
    """BrickOwl colour id -> BrickLink colour id (None: BrickLink has no equivalent).

    The packaged table, overlaid by the rows refreshed from the API (``_brickowl_colors``), which
    win wherever they exist. Colour 0 (Not Applicable) is always BrickLink 0.
    """
    table = {bo_id: bl_id for bo_id, _name, bl_id in _packaged_colors()}
    if db["_brickowl_colors"].exists():
        for bo_id, bl_id in db.execute("select brickowl_color_id, bricklink_color_id from _brickowl_colors"):
            bo_id = parse.integer(bo_id)
            if bo_id is not None:
                table[bo_id] = _bricklink_colour(parse.integer(bl_id))
    if table.get(NOT_APPLICABLE) is None:
        table[NOT_APPLICABLE] = NOT_APPLICABLE
    return table


def refresh_colors(db: Database, adapter) -> int:
    """Fetch ``catalog/color_list`` and store it in ``_brickowl_colors`` (source 'api').

    Returns the number of rows stored. Provider errors (no catalog permission, a bad key...)
    propagate; an empty answer leaves the stored table alone.
    """
    fetched = adapter.color_list()
    rows = []
    names = {bo_id: name for bo_id, name, _bl in _packaged_colors()}
    now = now_iso()
    for bo_id, bl_id in (fetched or {}).items():
        bo_id = parse.integer(bo_id)
        if bo_id is None:
            continue
        rows.append((bo_id, names.get(bo_id) or None, _bricklink_colour(parse.integer(bl_id)), "api", now))
    if not rows:
        log.warning("brickowl: catalog/color_list answered with no colours; keeping the current table")
        return 0
    with db.atomic():
        db.execute("delete from _brickowl_colors")
        db.conn.executemany(
            "insert into _brickowl_colors (brickowl_color_id, brickowl_color_name, bricklink_color_id, source, "
            "refreshed_at) values (?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


COLOR_REFRESH_INTERVAL = dt.timedelta(days=7)


def refresh_colors_if_due(db: Database, account: str, adapter) -> str | None:
    """Fetch BrickOwl's colour table when the last try is a week old; returns a problem line
    when the key may not read the catalog (the packaged table then keeps serving)."""
    row = db.execute(
        "select catalog_checked_at from sync_state where business_account_id = ? and provider = 'brickowl'",
        [account],
    ).fetchone()
    if row and row[0] and row[0] > iso(utcnow() - COLOR_REFRESH_INTERVAL):
        return None
    problem = None
    try:
        refresh_colors(db, adapter)
    except (PermissionDeniedError, RequestRejectedError, NotFoundError) as exc:
        problem = f"brickowl: colour table not refreshed ({exc.message.removeprefix('brickowl: ')}); using the packaged one"
    with db.atomic():
        db.execute(
            "insert into sync_state (business_account_id, provider, catalog_checked_at) values (?, 'brickowl', ?) "
            "on conflict (business_account_id, provider) do update set catalog_checked_at = excluded.catalog_checked_at",
            [account, now_iso()],
        )
    return problem


# --- manual mappings ------------------------------------------------------------------------
def pin(db: Database, account: str, boid: str, part_number: str) -> None:
    """The seller's own mapping of a BOID (any colour of it) to a BrickLink part number."""
    base = base_boid(boid)
    part = parse.text(part_number)
    if base is None or part is None:
        raise ValueError("pin needs a BOID and a BrickLink part number")
    with db.atomic():
        db.execute(
            "insert into _boid_map (business_account_id, boid, part_number, source, created_at) "
            "values (?, ?, ?, 'manual', ?) on conflict (business_account_id, boid) do update set "
            "part_number = excluded.part_number, source = excluded.source, created_at = excluded.created_at",
            [account, base, part, now_iso()],
        )


def unpin(db: Database, account: str, boid: str) -> bool:
    """Remove a manual mapping; False when the BOID had none (learned mappings are kept)."""
    base = base_boid(boid)
    if base is None:
        return False
    with db.atomic():
        cursor = db.execute(
            "delete from _boid_map where business_account_id = ? and boid = ? and source = 'manual'",
            [account, base],
        )
        return cursor.rowcount > 0


def mappings(db: Database, account: str) -> list[dict]:
    """Every stored BOID mapping of the account: boid, part_number, source, created_at."""
    rows = db.execute(
        "select boid, part_number, source, created_at from _boid_map where business_account_id = ? "
        "order by length(boid), boid",
        [account],
    )
    return [dict(zip(("boid", "part_number", "source", "created_at"), row)) for row in rows]


# --- translation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Mapping:
    part_number: str
    source: str


class Translator:
    """Translates BrickOwl lines for one account during one run (thread-safe ``translate``)."""

    def __init__(self, db: Database, account: str, index: LotIndex, adapter=None, *, lookup_budget: int = 200):
        self.db, self.account, self.index, self.adapter = db, account, index, adapter
        self.lookup_budget = max(0, int(lookup_budget))
        self.lookups_made = 0  # catalog/id_lookup calls made by this translator
        self.lookups_deferred = 0  # lines left for a later run because lookups were unavailable
        self.lookup_error: str | None = None  # why lookups stopped early in this run, if they did
        self.routes: Counter[str] = Counter()  # translated lines per part-number route
        self.colors = color_table(db)
        self.unknown_colours: set[int] = set()  # seen on lines, absent from the table
        # A snapshot: reading the live set while another thread adds to it could fail.
        self._parts = sorted(index.part_numbers)
        self._part_set = frozenset(self._parts)
        self._lock = threading.Lock()
        self._map: dict[str, Mapping] = {}
        self._answers: dict[str, tuple[str, ...]] = {}  # BrickLink part -> BOIDs (cached id_lookup answers)
        self._inflight: dict[str, threading.Event] = {}
        self._lookups_stopped = False
        self._pending_map: dict[str, Mapping] = {}
        self._pending_answers: dict[str, tuple[tuple[str, ...], str]] = {}
        self._load()

    def reload_colors(self) -> None:
        """Take up a freshly refreshed colour table."""
        self.colors = color_table(self.db)
        self.unknown_colours.clear()

    def _load(self) -> None:
        for part, boids in self.db.execute(
            "select part_number, boids from _id_lookups where business_account_id = ?", [self.account]
        ):
            try:
                answer = json.loads(boids) if boids else []
            except ValueError:
                continue  # unreadable: asked again when needed
            if part and isinstance(answer, list):
                self._answers[part] = tuple(str(b) for b in answer if parse.text(b))
        for part, boids in self._answers.items():
            self._learn_answer(part, boids, pending=False)
        for boid, part, source in self.db.execute(
            "select boid, part_number, source from _boid_map where business_account_id = ?", [self.account]
        ):
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
                line.unmatched_reason = f"BrickOwl line cannot be translated ({exc.__class__.__name__}: {exc})"

    def persist(self) -> None:
        """Write the mappings and lookup answers learned since the last call (caller holds the transaction)."""
        with self._lock:
            mapped, self._pending_map = self._pending_map, {}
            answers, self._pending_answers = self._pending_answers, {}
        if not mapped and not answers:
            return
        try:
            now = now_iso()
            if answers:
                self.db.conn.executemany(
                    _UPSERT_LOOKUP,
                    [(self.account, part, json.dumps(list(boids)), at) for part, (boids, at) in answers.items()],
                )
            if mapped:
                self.db.conn.executemany(
                    _UPSERT_MAPPING,
                    [(self.account, boid, m.part_number, m.source, now) for boid, m in mapped.items()],
                )
        except BaseException:
            with self._lock:  # keep them for the next attempt
                for boid, m in mapped.items():
                    self._pending_map.setdefault(boid, m)
                for part, answer in answers.items():
                    self._pending_answers.setdefault(part, answer)
            raise

    # -- one line ------------------------------------------------------------------------------
    def _translate(self, line: OrderLine) -> None:
        color, color_reason = self._color(line)
        cond = line.condition if line.condition in ("new", "used") else brickowl_condition(line.provider_condition)
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

        part_reason = None
        if known is not None and known.source == "manual":
            part, route = known.part_number, "manual"
        elif linked is not None:
            part, route = linked.part_number, "lot-link"
            if base:
                self._remember(base, Mapping(part, "lot-link"))
        elif known is not None:
            part, route = known.part_number, known.source
        else:
            part, route, part_reason = self._find_part(base, alts, color, cond)

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
            line.unmatched_reason = None
            with self._lock:
                self.routes[route] += 1
        else:
            line.unmatched_reason = "; ".join(reasons) or "BrickOwl line cannot be translated"

    def _color(self, line: OrderLine) -> tuple[int | None, str | None]:
        bo_colour = parse.integer(line.provider_color_id)
        if bo_colour is None:
            base, suffix = split_boid(line.boid)
            if suffix is not None:
                bo_colour = suffix
            elif base is not None:
                bo_colour = NOT_APPLICABLE  # a bare BOID is a colourless item
            else:
                return None, "BrickOwl line has no colour"
        bl_colour = self.colors.get(bo_colour)
        if bl_colour is None:
            name = parse.text(line.color_name)
            label = f"BrickOwl colour {bo_colour}" + (f" ({name})" if name else "")
            if bo_colour not in self.colors:  # newer than our table: worth asking BrickOwl's
                with self._lock:
                    self.unknown_colours.add(bo_colour)
                return None, f"{label} is not in the colour table yet"
            return None, f"{label} has no BrickLink equivalent"
        return bl_colour, None

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
    def _find_part(self, base: str | None, alts: list[str], color: int | None, cond: str | None):
        """(part, route, reason) through id_lookup, then the alternative ids."""
        deferred = False
        if base and self.adapter is not None:
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
                return known.part_number, known.source, None

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
                return alt, "ids", None

        ids = f" (ids {', '.join(alts)})" if alts else " (no alternative ids)"
        item = f"BrickOwl item {base}" if base else "BrickOwl line without a BOID"
        reason = f"{item}{ids} has no BrickLink part number in the inventory"
        if contradicted:
            reason += f"; BrickOwl maps {', '.join(contradicted)} to other items"
        if deferred:
            with self._lock:
                self.lookups_deferred += 1
            reason += "; id lookup deferred to a later run"
        return None, None, reason

    def _candidates(self, alts: list[str]) -> list[str]:
        """Inventory part numbers plausible for the line: its alternative ids, then their extensions."""
        found = [alt for alt in alts if alt in self._part_set]
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
            answer = self.adapter.id_lookup(part)
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
            self._pending_answers[part] = (boids, now_iso())
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
            self._pending_map[base] = mapping
