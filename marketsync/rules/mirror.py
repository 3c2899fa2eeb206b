"""Mirroring, the pure part: which local lots are created on which marketplace, in that
marketplace's own terms (item, colour, condition, price), and what cannot be (the gaps, each with
its fix). No SQL, no HTTP: :mod:`marketsync.app.mirror` reads, looks up, journals and sends.

A local lot is **mirrored** onto a marketplace when it is linked to a listing for sale on another
one, has no listing for sale there and none that went (a listing the seller deleted there stays
deleted; one that sold out and was deleted is *relisted* in its own terms, :func:`relisted`), is
not kept on one marketplace only (``stock only``), has pieces available and no creation of it is
still open. Two kinds of marketplace:

* one that names items in **its own catalogue** (registry capability CATALOG, BrickOwl): the item is
  the BOID its catalogue names for the lot's part number (a seller's pin first, then
  ``catalog/id_lookup`` per item type), the colour its own colour for the lot's (the colour table),
  the condition its code, the bin its ``personal_note``, the lot it mirrors its ``external_id``;
* one keyed like **the inventory** (BrickLink): the lot's own part number (known: the listing it
  mirrors was linked to the lot through it), colour and new/used, sets with their completeness,
  the bin as ``remarks``.

Prices are stated, never guessed: copied when both marketplaces use one currency, else converted
with the seller's rate, times the seller's factor for the marketplace; conditions map only where a
mapping is stated (a BrickOwl used grade is BrickLink used; BrickLink used becomes the grade the
seller names; set completeness maps both ways). Anything else is a gap.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from marketsync.config import MirrorSettings
from marketsync.model import Gone, NewLot, RemoteLot
from marketsync.rules.boid import NEW_CODES, base_boid, brickowl_item_type, lookup_types, split_boid

# The inventory's item types (BrickLink's) and the catalogue's (BrickOwl's), both ways; a type
# without a counterpart is a gap. (BrickOwl stickers are BrickLink parts.)
TO_CATALOG = {"PART": "Part", "MINIFIG": "Minifigure", "SET": "Set", "GEAR": "Gear", "INSTRUCTION": "Instructions",
              "ORIGINAL_BOX": "Packaging"}
TO_INVENTORY = {"Part": "PART", "Sticker": "PART", "Minifigure": "MINIFIG", "Set": "SET", "Gear": "GEAR",
                "Instructions": "INSTRUCTION", "Packaging": "ORIGINAL_BOX"}
SET_TYPES = ("SET",)  # BrickLink's completeness is only for sets
COLOURED = ("Part",)  # the catalogue needs a colour for these ...
COLOUR_OPTIONAL = ("Gear", "Minibuild")  # ... takes one for these, and refuses one for the others
NOT_APPLICABLE = 0  # colour 0 on both sides: an item without a colour
# completeness (BrickLink) <-> condition code (BrickOwl), per new/used
SET_CONDITIONS = {("new", "S"): "news", ("new", "C"): "newc", ("new", "B"): "newi",
                  ("used", "C"): "usedc", ("used", "B"): "usedi"}
COMPLETENESS = {code: completeness for (_, completeness), code in SET_CONDITIONS.items()}
BUDGET_SHARE = 0.8  # creations never take a budgeted marketplace's calls past this share of the day's budget
PER_RUN = 250  # ... nor past this many in one run (a cron run stays short; the rest waits for the next)


class Why:
    """Why a lot cannot be mirrored (a gap's kind)."""

    NO_NUMBER = "no number"  # the marketplace's lot names no item the inventory knows
    UNLINKED = "no local lot"  # ... or one no local lot holds
    NO_ITEM = "no catalogue item"  # the catalogue names no item for the part number
    AMBIGUOUS = "several items"  # ... or several
    NO_COLOUR = "no colour"
    NO_TYPE = "no item type"
    NO_CONDITION = "no condition"
    NO_CURRENCY = "no currency"
    NO_RATE = "no rate"
    NO_PRICE = "no price"
    REFUSED = "refused"  # the marketplace refused the creation (its catalogue, most often)
    EXISTS = "already there"  # a lot for sale there looks like it, linked to no local lot


@dataclass(frozen=True)
class LocalLot:
    id: int
    part_number: str
    color_id: int
    condition: str  # new | used
    location: str
    item_type: str | None
    available: int


@dataclass(frozen=True)
class Listed:
    """One row of ``listings`` as mirroring sees it."""

    id: int
    provider: str
    remote_lot_id: str
    inventory_id: int | None
    gone: bool = False
    only: bool = False  # the seller keeps this lot on this marketplace only
    detail: str | None = None  # why it is linked to no lot
    by_hand: bool = False  # unlinked by the seller: left alone
    gone_kind: str | None = None  # why it is no longer for sale (model.Gone; None: not gone, or gone before it was kept)
    read_as: ReadAs | None = None  # what was read of it when last seen for sale


@dataclass(frozen=True)
class ReadAs:
    """What was read of a listing when it was last seen for sale: the terms a relisted lot copies
    (in its marketplace's own words; ``description`` exactly as read, entities and all)."""

    item_no: str | None
    item_type: str | None
    color_id: int | None
    condition: str | None  # new | used
    completeness: str | None
    price: Decimal | None
    description: str | None
    note: str  # the bin: BrickLink remarks / BrickOwl personal_note
    retained: bool = False


def read_as(lot: RemoteLot) -> ReadAs:
    return ReadAs(lot.part_number, lot.item_type, lot.color_id, lot.condition, lot.completeness, lot.price,
                  lot.description, lot.location or "", lot.retained)


@dataclass
class Side:
    """One marketplace as mirroring sees it in a run."""

    name: str
    catalog: bool  # names items in its own catalogue: BOIDs, its colours, its condition codes
    currency: str | None = None
    lots: dict[str, RemoteLot] | None = None  # its lots as read in this run (None: not read)

    @property
    def price_places(self) -> int:
        return 3 if self.catalog else 4  # BrickOwl rounds prices to 3 decimals, BrickLink keeps 4


@dataclass
class Knowledge:
    """What the catalogue marketplace's terms are known from (stored, or asked in this run)."""

    colours: dict[int, int | None] = field(default_factory=dict)  # catalogue colour -> inventory colour
    pins: dict[str, list[str]] = field(default_factory=dict)  # part number -> base BOIDs the seller pinned to it
    answers: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # (part, type asked) -> BOIDs


@dataclass(frozen=True)
class Candidate:
    lot: LocalLot
    source: str
    source_lot_id: str
    target: str


@dataclass
class Creation:
    """A lot to create: where from, where to, and the lot in the target's terms (``new.ref`` is
    set when the creation is journaled)."""

    candidate: Candidate
    new: NewLot


@dataclass(frozen=True)
class Gap:
    target: str
    why: str
    subject: str  # what it is about: the item, the colour, the currencies
    fix: str
    example: str  # one lot it stops, e.g. "bricklink:501 (lot 7)"


@dataclass
class Plan:
    creations: list[Creation] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    waiting: list[tuple[Candidate, str]] = field(default_factory=list)  # not now, by itself later: why
    kept: list[tuple[int, str]] = field(default_factory=list)  # (lot, "provider:remote lot") kept there only


@dataclass(frozen=True)
class Lookup:
    """A catalogue answer the plan needs and nobody has asked for yet."""

    part_number: str
    item_type: str


# --- which lots ----------------------------------------------------------------------------------------
def candidates(lots: dict[int, LocalLot], listings: list[Listed], targets: list[str],
               open_creations: set[tuple[int, str]], plan: Plan) -> list[Candidate]:
    """Local lots linked to a for-sale listing on one marketplace and to none on a target; lots
    kept on one marketplace only go to ``plan.kept``."""
    active: dict[int, dict[str, list[Listed]]] = defaultdict(lambda: defaultdict(list))
    only: dict[int, Listed] = {}
    went: set[tuple[int, str]] = set()  # (lot, marketplace) whose listing there went (relisted, or left gone)
    for row in sorted(listings, key=lambda r: r.id):
        if row.inventory_id is None:
            continue
        if row.only:
            only.setdefault(row.inventory_id, row)
        if not row.gone:
            active[row.inventory_id][row.provider].append(row)
        elif row.gone_kind != Gone.REPLACED:
            went.add((row.inventory_id, row.provider))
    found = []
    for lot_id, by_provider in sorted(active.items()):
        lot = lots.get(lot_id)
        if lot is None:
            continue
        if lot_id in only:
            plan.kept.append((lot_id, f"{only[lot_id].provider}:{only[lot_id].remote_lot_id}"))
            continue
        for target in targets:
            if by_provider.get(target) or (lot_id, target) in open_creations or (lot_id, target) in went:
                continue
            sources = sorted(p for p, rows in by_provider.items() if rows and p != target)
            if sources:
                found.append(Candidate(lot, sources[0], by_provider[sources[0]][0].remote_lot_id, target))
    return found


def lookups_needed(found: list[Candidate], sides: dict[str, Side], knowledge: Knowledge) -> list[Lookup]:
    """The catalogue answers the candidates for a catalogue marketplace need, each once (the first
    type not answered yet of each part; a fallback type is asked only after an empty answer)."""
    needed: dict[tuple[str, str], Lookup] = {}
    for candidate in found:
        if not sides[candidate.target].catalog or candidate.lot.part_number in knowledge.pins:
            continue
        source = _source_lot(candidate, sides)
        kind = catalog_type(source.item_type if source else None, candidate.lot.item_type)
        if kind is None:
            continue
        for asked in lookup_types(kind):
            answer = knowledge.answers.get((candidate.lot.part_number, asked))
            if answer is None:
                needed.setdefault((candidate.lot.part_number, asked), Lookup(candidate.lot.part_number, asked))
                break
            if answer:
                break
    return list(needed.values())


# --- the plan ---------------------------------------------------------------------------------------------
def plan(found: list[Candidate], sides: dict[str, Side], knowledge: Knowledge, settings: MirrorSettings,
         linked: dict[tuple[str, str], int], refused: dict[tuple[int, str], tuple[NewLot, str]] | None = None,
         into: Plan | None = None) -> Plan:
    """Each candidate as a creation, a gap or a wait. ``linked``: (provider, remote lot) -> local
    lot of every linked listing; ``refused``: (lot, target) -> the creation last refused and why
    (the same lot is not sent again: it is a gap until something about it changes)."""
    out = into or Plan()
    refused = refused or {}
    reverse = _reverse_colours(knowledge.colours)
    for candidate in found:
        lot, target = candidate.lot, candidate.target
        example = f"{candidate.source}:{candidate.source_lot_id} (lot {lot.id})"
        if lot.available <= 0:
            out.waiting.append((candidate, "nothing available"))
            continue
        source = _source_lot(candidate, sides)
        if source is None:
            out.waiting.append((candidate, f"{candidate.source} lot {candidate.source_lot_id} was not read"))
            continue
        if sides[target].lots is None:  # nothing is created where nobody could look first
            out.waiting.append((candidate, f"{target}'s lots were not read"))
            continue
        made = translate(candidate, source, sides, knowledge, reverse, settings)
        if isinstance(made, Gap):
            out.gaps.append(Gap(made.target, made.why, made.subject, made.fix, example))
            continue
        if isinstance(made, str):
            out.waiting.append((candidate, made))
            continue
        last = refused.get((lot.id, target))
        if last is not None and same_lot(last[0], made):
            out.gaps.append(Gap(target, Why.REFUSED, f"{describe(made)}: {last[1]}",
                                refused_fix(target, made, sides[target].catalog, lot), example))
            continue
        there = [x for x in _for_sale(sides[target]) if matches(made, x, sides[target].catalog)
                 and linked.get((target, x.remote_lot_id)) in (None, lot.id)]
        if there:
            first = there[0].remote_lot_id
            out.gaps.append(Gap(target, Why.EXISTS, f"{target} lot {first} ({describe(made)})",
                                f"marketsync stock link {target}:{first} {lot.id}", example))
            continue
        out.creations.append(Creation(candidate, made))
    return out


def translate(candidate: Candidate, source: RemoteLot, sides: dict[str, Side], knowledge: Knowledge,
              reverse: dict[int, list[int]], settings: MirrorSettings) -> NewLot | Gap | str:
    """The lot in the target's terms, a gap, or why it waits (a catalogue answer not had yet)."""
    target = sides[candidate.target]
    price = target_price(candidate, source, sides, settings)
    if not isinstance(price, Decimal):
        return price
    if target.catalog:
        return _to_catalog(candidate, source, knowledge, reverse, settings, price, sides[candidate.source].catalog)
    return _to_inventory(candidate, source, price)


def _to_catalog(candidate: Candidate, source: RemoteLot, knowledge: Knowledge, reverse: dict[int, list[int]],
                settings: MirrorSettings, price: Decimal, origin_catalog: bool) -> NewLot | Gap | str:
    lot, target = candidate.lot, candidate.target
    kind = catalog_type(source.item_type, lot.item_type)
    if kind is None:
        return Gap(target, Why.NO_TYPE, f"item type {source.item_type or lot.item_type}",
                   f"keep it on {candidate.source} only: marketsync stock only {candidate.source}:{candidate.source_lot_id}",
                   "")
    item = catalog_item(lot.part_number, kind, knowledge)
    if not isinstance(item, tuple):
        return item if isinstance(item, str) else Gap(target, item.why, item.subject, item.fix, "")
    base, answer = item
    colour = catalog_colour(lot.color_id, kind, base, answer, reverse)
    if isinstance(colour, Gap):
        return Gap(target, colour.why, colour.subject, colour.fix.replace("{keep}", _keep(candidate)), "")
    condition = catalog_condition(source, kind, settings.used_grade)
    if condition is None:
        return Gap(target, Why.NO_CONDITION, _condition_subject(source, "BrickLink"),
                   "set MARKETSYNC_MIRROR_USED_GRADE (usedn, usedg or useda) for BrickLink used lots" if
                   source.condition == "used" and not source.completeness else f"{_keep(candidate)}", "")
    return NewLot("", base, kind, colour, condition, lot.available, price, lot.location,
                  external_id=None if origin_catalog else candidate.source_lot_id)


def _to_inventory(candidate: Candidate, source: RemoteLot, price: Decimal) -> NewLot | Gap:
    lot, target = candidate.lot, candidate.target
    kind = inventory_type(source.item_type, lot.item_type)
    if kind is None:
        return Gap(target, Why.NO_TYPE, f"item type {source.item_type or lot.item_type}", _keep(candidate), "")
    mapped = inventory_condition(source, kind)
    if mapped is None:
        return Gap(target, Why.NO_CONDITION, _condition_subject(source, "BrickOwl"), _keep(candidate), "")
    new_or_used, completeness = mapped
    return NewLot("", lot.part_number, kind, lot.color_id, new_or_used, lot.available, price, lot.location,
                  completeness=completeness)


def _keep(candidate: Candidate) -> str:
    return f"keep it on {candidate.source} only: marketsync stock only {candidate.source}:{candidate.source_lot_id}"


def _condition_subject(source: RemoteLot, other: str) -> str:
    said = source.provider_condition or source.condition or "none"
    if source.completeness:
        said += f" (completeness {source.completeness})"
    return f"condition {said} has no {other} equivalent" if other == "BrickOwl" else f"condition {said}"


def refused_fix(target: str, made: NewLot, catalog: bool, lot: LocalLot) -> str:
    if catalog:
        return (f"pin the right item: marketsync map BOID {lot.part_number} (or keep the lot on one "
                "marketplace: marketsync stock only PROVIDER:LOT)")
    return (f"correct the part number of lot {lot.id} ({lot.part_number}) with 'marketsync inventory import', or "
            "keep it on one marketplace: marketsync stock only PROVIDER:LOT")


# --- terms -------------------------------------------------------------------------------------------------
def catalog_type(*values: str | None) -> str | None:
    """The catalogue's item type for the first type given (either side's spelling); Part when none is."""
    for value in values:
        if not value:
            continue
        upper = value.strip().upper()
        if upper in TO_CATALOG:
            return TO_CATALOG[upper]
        named = brickowl_item_type(value)
        return named if named in TO_INVENTORY or named in COLOUR_OPTIONAL else None
    return "Part"


def inventory_type(*values: str | None) -> str | None:
    """The inventory's item type for the first type given (either side's spelling); PART when none is."""
    for value in values:
        if not value:
            continue
        upper = value.strip().upper()
        if upper in TO_CATALOG:
            return upper
        return TO_INVENTORY.get(brickowl_item_type(value))
    return "PART"


def catalog_item(part: str, kind: str, knowledge: Knowledge) -> tuple[str, tuple[str, ...]] | Gap | str:
    """(base BOID, the catalogue's answer) for a part: the seller's pin, else the catalogue's one
    item of the first type that names any; a gap when it names none or several; why it waits when
    an answer is still to be had."""
    pinned = knowledge.pins.get(part, [])
    if len(pinned) == 1:
        return pinned[0], ()
    if len(pinned) > 1:
        return Gap("", Why.AMBIGUOUS, f"{part}: pinned to BOIDs {', '.join(sorted(pinned))}",
                   "keep one pin: marketsync map --remove BOID for the others", "")
    for asked in lookup_types(kind):
        answer = knowledge.answers.get((part, asked))
        if answer is None:
            return f"the catalogue's answer for {part} ({asked}) is not known yet"
        bases = sorted({b for b in map(base_boid, answer) if b})
        if len(bases) == 1:
            return bases[0], answer
        if bases:
            return Gap("", Why.AMBIGUOUS, f"{part}: the catalogue names {', '.join(bases)}",
                       f"pin one: marketsync map BOID {part}", "")
    return Gap("", Why.NO_ITEM, f"{part} ({kind}): the catalogue names no item",
               f"pin it: marketsync map BOID {part}", "")


def catalog_colour(colour: int, kind: str, base: str, answer: tuple[str, ...],
                   reverse: dict[int, list[int]]) -> int | None | Gap:
    """The catalogue's colour for an inventory colour (None: an item sent without one). Several
    catalogue colours for one inventory colour: the one the catalogue lists the item in, else a gap."""
    if kind not in COLOURED and (kind not in COLOUR_OPTIONAL or colour == NOT_APPLICABLE):
        return None
    options = reverse.get(colour, [])
    if len(options) > 1:
        listed = {c for boid in answer for b, c in [split_boid(boid)] if b == base and c is not None}
        options = [c for c in options if c in listed] or options
    if len(options) == 1:
        return options[0]
    if not options:
        return Gap("", Why.NO_COLOUR, f"BrickLink colour {colour} has no BrickOwl colour", "{keep}", "")
    return Gap("", Why.NO_COLOUR, f"BrickLink colour {colour} is BrickOwl colours "
                                  f"{', '.join(map(str, sorted(options)))}", "{keep}", "")


def catalog_condition(source: RemoteLot, kind: str, used_grade: str | None) -> str | None:
    """BrickOwl's condition code for a BrickLink lot: new; a set's completeness as its code; used
    as the grade the seller names. None: no stated mapping."""
    if source.condition not in ("new", "used"):
        return None
    if kind == "Set" and source.completeness:
        return SET_CONDITIONS.get((source.condition, source.completeness))
    return "new" if source.condition == "new" else used_grade


def inventory_condition(source: RemoteLot, kind: str) -> tuple[str, str | None] | None:
    """(BrickLink new_or_used, completeness) for a BrickOwl lot: every new code is N, every used
    grade U; a set's complete/incomplete/sealed code its completeness. None: no mapping (``other``)."""
    code = (source.provider_condition or "").strip().lower()
    if source.condition not in ("new", "used"):
        return None
    new_or_used = "N" if source.condition == "new" or code in NEW_CODES else "U"
    return new_or_used, COMPLETENESS.get(code) if kind in SET_TYPES else None


def target_price(candidate: Candidate, source: RemoteLot, sides: dict[str, Side],
                 settings: MirrorSettings) -> Decimal | Gap:
    """The source lot's unit price in the target's currency: copied, or converted with the
    seller's rate; times the seller's factor for the target; rounded as the target keeps it."""
    target, origin = sides[candidate.target], sides[candidate.source]
    keep = _keep(candidate)
    if source.price is None or source.price <= 0:
        return Gap(target.name, Why.NO_PRICE, f"{origin.name} lot without a price", keep, "")
    for side in (origin, target):
        if side.currency is None:
            return Gap(target.name, Why.NO_CURRENCY, f"{side.name}'s currency is not known (no order seen yet)",
                       f"set MARKETSYNC_CURRENCY_{side.name.upper()}", "")
    assert origin.currency is not None and target.currency is not None
    price = source.price
    if origin.currency != target.currency:
        rate = settings.rates.get((origin.currency, target.currency))
        if rate is None:
            return Gap(target.name, Why.NO_RATE, f"{origin.currency} to {target.currency}",
                       f"set MARKETSYNC_PRICE_RATE_{origin.currency}_{target.currency} (1 {origin.currency} in "
                       f"{target.currency})", "")
        price *= rate
    price *= settings.factors.get(target.name, Decimal(1))
    price = price.quantize(Decimal(1).scaleb(-target.price_places), rounding=ROUND_HALF_UP)
    if price <= 0:
        return Gap(target.name, Why.NO_PRICE, f"{source.price} {origin.currency} rounds to 0 {target.currency}", keep,
                   "")
    return price


def _reverse_colours(colours: dict[int, int | None]) -> dict[int, list[int]]:
    reverse: dict[int, list[int]] = defaultdict(list)
    for catalog_colour_id, inventory_colour in sorted(colours.items()):
        if inventory_colour is not None:
            reverse[inventory_colour].append(catalog_colour_id)
    return reverse


def _source_lot(candidate: Candidate, sides: dict[str, Side]) -> RemoteLot | None:
    lots = sides[candidate.source].lots
    return None if lots is None else lots.get(candidate.source_lot_id)


def _for_sale(side: Side) -> list[RemoteLot]:
    return [lot for lot in (side.lots or {}).values() if lot.for_sale]


def unlinked_gaps(listings: list[Listed], sides: dict[str, Side], targets: list[str]) -> list[Gap]:
    """Lots for sale on a marketplace that are linked to no local lot (so nothing can mirror them):
    one gap each, with what links them (a pin when the item's number is not known)."""
    gaps = []
    for row in listings:
        lot = (sides[row.provider].lots or {}).get(row.remote_lot_id) if row.provider in sides else None
        if row.inventory_id is not None or row.gone or row.by_hand or row.only or lot is None or not lot.for_sale:
            continue
        for target in [t for t in targets if t != row.provider]:
            detail = row.detail or "linked to no local lot"
            pin = "marketsync map" in detail
            fix = (f"pin the BrickLink number as it says, then 'marketsync inventory pull --provider {row.provider}'"
                   if pin else f"'marketsync inventory pull --provider {row.provider}' stocks it, or "
                               f"'marketsync stock link {row.provider}:{row.remote_lot_id} LOT_ID'")
            gaps.append(Gap(target, Why.NO_NUMBER if pin else Why.UNLINKED,
                            detail, fix, f"{row.provider}:{row.remote_lot_id}"))
    return gaps


# --- relisting a lot sold out and deleted ------------------------------------------------------------
def relist_source(listings: list[Listed], provider: str, lot_id: int) -> Listed | None:
    """The listing a lot with nothing for sale on ``provider`` is created again from: its listings
    there that went and were not replaced since must all have **sold out** (one deleted or taken
    off sale on purpose, or gone before marketsync kept why, keeps the lot off that marketplace),
    and the one linked first that was read for sale gives the terms -- or, when none was read (a
    relisted lot bought out before any run read it), the newest that was: the relisted lot was
    created with its terms. None: nothing to relist."""
    mine = [row for row in listings if row.provider == provider and row.inventory_id == lot_id]
    if not mine or any(not row.gone for row in mine):
        return None
    went = [row for row in sorted(mine, key=lambda r: r.id) if row.gone_kind != Gone.REPLACED]
    if not went or any(row.gone_kind != Gone.SOLD_OUT for row in went):
        return None
    read = next((row for row in went if row.read_as is not None), None)
    return read or next((row for row in sorted(mine, key=lambda r: -r.id) if row.read_as is not None), None)


def relisted(lot: LocalLot, source: ReadAs) -> NewLot | str:
    """The lot to create again, exactly as it was read (item, colour, condition, completeness,
    price, description, bin), with what is available now; or why it cannot be (never a guessed
    price or item)."""
    if lot.available <= 0:
        return "nothing available"
    if not source.item_no or source.condition not in ("new", "used"):
        return "its item or condition was not read"
    if source.price is None or source.price <= 0:
        return "it was read without a price"
    kind = inventory_type(source.item_type, lot.item_type)
    if kind is None:
        return f"item type {source.item_type} is not one BrickLink creates"
    return NewLot("", source.item_no, kind, source.color_id or 0, "N" if source.condition == "new" else "U",
                  lot.available, source.price, source.note,
                  completeness=source.completeness if kind in SET_TYPES else None, description=source.description)


# --- finding a created lot again --------------------------------------------------------------------
def matches(new: NewLot, lot: RemoteLot, catalog: bool) -> bool:
    """Is ``lot`` (as a marketplace lists it) the lot ``new`` creates? The catalogue marketplace's
    by the BrickLink lot it names, its BOID and its bin; the other's by item, colour, condition and bin."""
    if not lot.for_sale or (lot.location or "") != new.note:
        return False
    if catalog:
        return bool(new.external_id) and lot.bricklink_lot_id == new.external_id and base_boid(lot.boid) == new.item_no
    return (lot.part_number == new.item_no and (lot.color_id or 0) == (new.color_id or 0)
            and (lot.condition or "")[:1].upper() == new.condition)


def found_again(new: NewLot, lots: list[RemoteLot], catalog: bool, linked: dict[tuple[str, str], int],
                provider: str, lot_id: int) -> list[RemoteLot]:
    """The listed lots a creation may have made: matching it, linked to no other local lot."""
    return [x for x in lots if matches(new, x, catalog) and linked.get((provider, x.remote_lot_id)) in (None, lot_id)]


def same_lot(a: NewLot, b: NewLot) -> bool:
    """Would ``b`` be sent as ``a`` was (quantity and price aside)?"""
    return (a.item_no, a.item_type, a.color_id, a.condition, a.completeness) == (
        b.item_no, b.item_type, b.color_id, b.condition, b.completeness)


def describe(new: NewLot) -> str:
    colour = "" if new.color_id is None else f" colour {new.color_id}"
    completeness = f"/{new.completeness}" if new.completeness else ""
    return f"{new.item_type} {new.item_no}{colour} {new.condition}{completeness}"


# --- the daily budget and the gaps table -----------------------------------------------------------------
def creations_allowed(limit: int | None, used: int, *, share: float = BUDGET_SHARE, per_run: int = PER_RUN) -> int | None:
    """How many creations a budgeted marketplace may take in this run: never past ``share`` of the
    day's budget (orders and pushes come first, in this run and the day's later ones), never more
    than ``per_run``; None: no budget."""
    if limit is None:
        return None
    return max(0, min(per_run, int(limit * share) - used))


@dataclass(frozen=True)
class GapRow:
    target: str
    why: str
    subject: str
    fix: str
    lots: int
    examples: str

    @property
    def key(self) -> str:
        return f"{self.target}|{self.why}|{self.subject}"


def table(gaps: list[Gap], limit: int = 3) -> list[GapRow]:
    """One row per (marketplace, why, subject, fix): how many lots it stops, and a few of them."""
    grouped: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for gap in gaps:
        examples = grouped[(gap.target, gap.why, gap.subject, gap.fix)]
        if gap.example not in examples:
            examples.append(gap.example)
    rows = []
    for (target, why, subject, fix), examples in sorted(grouped.items()):
        shown = ", ".join(examples[:limit]) + (f" +{len(examples) - limit}" if len(examples) > limit else "")
        rows.append(GapRow(target, why, subject, fix, len(examples), shown))
    return rows
