"""Writes and reads BrickOwl's catalogue data: ``_brickowl_colors`` (the colour table as last
fetched), ``_boid_map`` (BOID -> BrickLink part, with the source that established it) and
``_id_lookups`` (cached ``catalog/id_lookup`` answers, per BrickLink number and BrickOwl item type
asked). ``sync_state.catalog_checked_at`` is
written through :mod:`marketsync.store.state`."""

from __future__ import annotations

from marketsync.store.base import Store

import json


from marketsync.model import RANK, Learned, now_iso

_RANK_SQL = "case {col} " + " ".join(f"when '{s}' then {r}" for s, r in RANK.items()) + " else -1 end"

_UPSERT_MAPPING = (
    "insert into _boid_map (business_account_id, boid, part_number, source, created_at) values (?, ?, ?, ?, ?) "
    "on conflict (business_account_id, boid) do update set part_number = excluded.part_number, "
    "source = excluded.source, created_at = excluded.created_at "
    f"where {_RANK_SQL.format(col='excluded.source')} > {_RANK_SQL.format(col='_boid_map.source')} "
    "and _boid_map.source != 'manual'"
)
_UPSERT_LOOKUP = (
    "insert into _id_lookups (business_account_id, part_number, item_type, boids, looked_up_at) "
    "values (?, ?, ?, ?, ?) on conflict (business_account_id, part_number, item_type) do update set "
    "boids = excluded.boids, looked_up_at = excluded.looked_up_at"
)


def colours(store: Store) -> list[tuple[int, str | None, int | None]]:
    """The refreshed colour table: (BrickOwl id, BrickOwl name, BrickLink id or None)."""
    db = store.db
    if not db["_brickowl_colors"].exists():
        return []
    return [(bo, name, bl) for bo, name, bl in db.execute(
        "select brickowl_color_id, brickowl_color_name, bricklink_color_id from _brickowl_colors")]


def replace_colours(store: Store, rows: list[tuple[int, str | None, int | None]]) -> None:
    db = store.db
    now = now_iso()
    with db.atomic():
        db.execute("delete from _brickowl_colors")
        db.conn.executemany(
            "insert into _brickowl_colors (brickowl_color_id, brickowl_color_name, bricklink_color_id, source, "
            "refreshed_at) values (?, ?, ?, 'api', ?)",
            [(bo, name, bl, now) for bo, name, bl in rows],
        )


def lookup_answers(store: Store) -> dict[tuple[str, str], list[str]]:
    """Cached id_lookup answers: (BrickLink part, BrickOwl item type asked) -> BOIDs (unreadable
    ones are left out: asked again)."""
    db, account = store.db, store.account
    answers = {}
    for part, item_type, boids in db.execute(
        "select part_number, item_type, boids from _id_lookups where business_account_id = ?", [account]
    ):
        try:
            answer = json.loads(boids) if boids else []
        except ValueError:
            continue
        if part and item_type and isinstance(answer, list):
            answers[(part, item_type)] = [str(b) for b in answer if b not in (None, "")]
    return answers


def boid_mappings(store: Store) -> list[dict]:
    """Every stored BOID mapping of the account: boid, part_number, source, created_at."""
    db, account = store.db, store.account
    rows = db.execute(
        "select boid, part_number, source, created_at from _boid_map where business_account_id = ? "
        "order by length(boid), boid",
        [account],
    )
    return [dict(zip(("boid", "part_number", "source", "created_at"), row)) for row in rows]


def save(store: Store, learned: Learned) -> None:
    """Store what a run learned (caller holds the transaction); weaker sources never replace stronger."""
    db, account = store.db, store.account
    if learned.answers:
        db.conn.executemany(
            _UPSERT_LOOKUP,
            [(account, part, item_type, json.dumps(list(boids)), at)
             for (part, item_type), (boids, at) in learned.answers.items()],
        )
    if learned.mappings:
        now = now_iso()
        db.conn.executemany(
            _UPSERT_MAPPING, [(account, boid, part, source, now) for boid, (part, source) in learned.mappings.items()]
        )


def pin(store: Store, base_boid: str, part_number: str) -> None:
    db, account = store.db, store.account
    db.execute(
        "insert into _boid_map (business_account_id, boid, part_number, source, created_at) "
        "values (?, ?, ?, 'manual', ?) on conflict (business_account_id, boid) do update set "
        "part_number = excluded.part_number, source = excluded.source, created_at = excluded.created_at",
        [account, base_boid, part_number, now_iso()],
    )


def unpin(store: Store, base_boid: str) -> bool:
    db, account = store.db, store.account
    cursor = db.execute(
        "delete from _boid_map where business_account_id = ? and boid = ? and source = 'manual'",
        [account, base_boid],
    )
    return cursor.rowcount > 0
