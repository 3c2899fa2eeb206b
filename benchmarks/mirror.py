"""Mirroring 10,000 lots (``stock mirror``), against the sandbox:

* BrickLink -> BrickOwl: the BrickOwl calls it costs (``bulk/batch`` creations: at most
  ceil(N / 50); catalogue lookups: one per distinct part, cached for good);
* BrickOwl -> BrickLink: one ``POST /inventories`` per lot, never past 80% of the daily budget
  (5,000) nor 250 a run: the cron runs (every 15 minutes) and days it takes; a day ends when a run
  creates nothing more (the day's calls are then moved back a day, as midnight would);
* the planning alone (the pure rules over the stored lots and the lots as read): under a second.

    python benchmarks/mirror.py                 # 10,000 lots each way
    python benchmarks/mirror.py --lots 1000     # smaller
    python benchmarks/mirror.py --write docs/performance.md   # ... and rewrite its <!-- mirror --> section
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from marketsync.app.catalog import packaged_colours  # noqa: E402
from marketsync.cli import cli  # noqa: E402
from marketsync.sandbox import Sandbox  # noqa: E402

PARTS = 500  # distinct part numbers; colours make up the rest


def unique_colours(count: int) -> list[tuple[int, int]]:
    """(BrickLink colour, its one BrickOwl colour) pairs, BrickLink colours with a single BrickOwl one."""
    by_bl: dict[int, list[int]] = {}
    for bo, _name, bl in packaged_colours():
        if bl:
            by_bl.setdefault(bl, []).append(bo)
    return [(bl, bos[0]) for bl, bos in sorted(by_bl.items()) if len(bos) == 1][:count]


def cli_run(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"marketsync {' '.join(args)} failed: {result.stderr}")
    return result.stderr


def environment(sb: Sandbox, db: Path) -> dict[str, str]:
    env = {k: "" for k in os.environ if k.startswith(("MARKETSYNC_", "BRICKLINK_", "BRICKOWL_"))}
    return {**env, **sb.env(), "MARKETSYNC_DB": str(db), "MARKETSYNC_CURRENCY_BRICKLINK": "USD",
            "MARKETSYNC_CURRENCY_BRICKOWL": "USD", "BRICKOWL_RATE_LIMIT": "1000000", "MARKETSYNC_RUN_DEADLINE": "3600"}


def to_brickowl(lots: int, work: Path) -> dict[str, float]:
    colours = unique_colours(math.ceil(lots / PARTS))
    with Sandbox(demo=False) as sb:
        sb.brickowl.rate_limit = None
        for n in range(lots):
            part, (bl, _bo) = f"b{n % PARTS}", colours[n // PARTS]
            sb.bricklink.add_lot(part, bl, 5, remarks=f"A{n}", unit_price="0.12", inventory_id=1_000_000 + n)
        for p in range(PARTS):
            sb.brickowl.add_id_lookup(f"b{p}", [f"{700000 + p}"])
        env = environment(sb, work / "to-brickowl.db")
        cli_run(env, "inventory", "pull", "--provider", "bricklink")
        cli_run(env, "sync", "--push")
        sb.reset_calls()
        started = time.perf_counter()
        cli_run(env, "stock", "mirror", "--to", "brickowl")
        elapsed = time.perf_counter() - started
        created = sum(1 for lot in sb.brickowl.all_lots() if lot.for_sale)
        return {"lots": lots, "created": created, "batches": sb.calls[("brickowl", "POST /bulk/batch")],
                "lookups": sb.calls[("brickowl", "GET /catalog/id_lookup")], "seconds": elapsed}


def to_bricklink(lots: int, work: Path) -> dict[str, float]:
    colours = unique_colours(math.ceil(lots / PARTS))
    db = work / "to-bricklink.db"
    with Sandbox(demo=False) as sb:
        sb.brickowl.rate_limit = None
        for n in range(lots):
            p, (_bl, bo) = n % PARTS, colours[n // PARTS]
            sb.brickowl.add_lot(f"{700000 + p}-{bo}", 5, personal_note=f"A{n}", price="0.12", full_con="usedg")
        for p in range(PARTS):
            sb.bricklink.add_catalog_item(f"b{p}")
        env = environment(sb, db)
        from marketsync.store import open_store

        open_store(str(db), "default", create=True).close()
        with sqlite3.connect(db) as conn:  # the seller's pins (marketsync map), written at once
            conn.executemany("insert into _boid_map (business_account_id, boid, part_number, source, created_at) "
                             "values ('default', ?, ?, 'manual', '2026-01-01T00:00:00Z')",
                             [(str(700000 + p), f"b{p}") for p in range(PARTS)])
        cli_run(env, "inventory", "pull", "--provider", "brickowl")
        cli_run(env, "sync", "--push")
        sb.reset_calls()
        runs = days = 0
        started = time.perf_counter()
        while len(sb.bricklink.lots) < lots and days < 30:
            before = len(sb.bricklink.lots)
            cli_run(env, "stock", "mirror", "--to", "bricklink")
            runs += 1
            if len(sb.bricklink.lots) == before:  # the day's share is used: midnight
                days += 1
                with sqlite3.connect(db) as conn:
                    conn.execute("update _api_calls set day = ? where provider = 'bricklink' and day > '2001'",
                                 [f"2000-01-{days:02d}"])
        elapsed = time.perf_counter() - started
        return {"lots": lots, "created": len(sb.bricklink.lots), "posts": sb.calls[("bricklink", "POST /inventories")],
                "runs": runs, "days": days + 1, "seconds": elapsed}


def planning(lots: int, work: Path) -> float:
    """The pure planning over the stored lots and a read of that size (as the use case calls it)."""
    from decimal import Decimal

    from marketsync.config import MirrorSettings
    from marketsync.model import RemoteLot
    from marketsync.rules import mirror as rules
    from marketsync.store import open_store
    from marketsync.store import mirror as stored

    store = open_store(str(work / "to-brickowl.db"), "default", create=False)
    local, listed = stored.local_lots(store), stored.listed(store)
    read = {row.remote_lot_id: RemoteLot("bricklink", row.remote_lot_id, 5, part_number=local[row.inventory_id].part_number,
                                         color_id=local[row.inventory_id].color_id, condition="new",
                                         location=local[row.inventory_id].location, item_type="PART",
                                         price=Decimal("0.12"))
            for row in listed if row.provider == "bricklink" and row.inventory_id is not None}
    sides = {"bricklink": rules.Side("bricklink", False, "USD", read), "brickowl": rules.Side("brickowl", True, "USD", {})}
    knowledge = rules.Knowledge({bo: bl for bo, _n, bl in packaged_colours()}, {},
                                {(f"b{p}", "Part"): (f"{700000 + p}",) for p in range(PARTS)})
    listed = [row for row in listed if row.provider == "bricklink"]  # as before the creations
    started = time.perf_counter()
    found = rules.candidates(local, listed, ["brickowl"], set(), rules.Plan())
    plan = rules.plan(found, sides, knowledge, MirrorSettings(), {})
    elapsed = time.perf_counter() - started
    assert len(plan.creations) == lots, (len(plan.creations), plan.gaps[:3])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lots", type=int, default=10_000)
    parser.add_argument("--write", metavar="PAGE", help="rewrite the <!-- mirror --> section of this page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        owl = to_brickowl(args.lots, work)
        plan_seconds = planning(args.lots, work)
        link = to_bricklink(args.lots, work)
    batches_max = math.ceil(args.lots / 50)
    rows = [
        ("BrickLink -> BrickOwl: lots created", f"{owl['created']:,}", f"{args.lots:,}", owl["created"] == args.lots),
        ("  `bulk/batch` calls", f"{owl['batches']:,}", f"<= {batches_max:,}", owl["batches"] <= batches_max),
        ("  `catalog/id_lookup` calls (one per distinct part, cached)", f"{owl['lookups']:,}", f"<= {PARTS}",
         owl["lookups"] <= PARTS),
        ("  wall time of the run", f"{owl['seconds']:.1f} s", "", True),
        ("BrickOwl -> BrickLink: lots created", f"{link['created']:,}", f"{args.lots:,}", link["created"] == args.lots),
        ("  `POST /inventories` calls", f"{link['posts']:,}", f"{args.lots:,}", link["posts"] == args.lots),
        ("  cron runs / days (<= 80% of 5,000 calls a day, <= 250 a run)", f"{link['runs']} / {link['days']}",
         f"days >= {math.ceil(args.lots / 4000)}", True),
        ("Planning (candidates, terms, prices, gaps)", f"{plan_seconds * 1000:.0f} ms", "< 1 s", plan_seconds < 1.0),
    ]
    lines = ["| measure | measured | target | ok |", "|---|---|---|---|"]
    lines += [f"| {name} | {got} | {want} | {'yes' if good else 'NO'} |" for name, got, want, good in rows]
    table = "\n".join(lines)
    print(table)
    if args.write:
        page = Path(args.write)
        text = page.read_text(encoding="utf-8")
        section = (f"<!-- mirror -->\n### Mirroring {args.lots:,} lots (`python benchmarks/mirror.py`)\n\n{table}\n"
                   "<!-- /mirror -->")
        if "<!-- mirror -->" in text:
            text = re.sub(r"<!-- mirror -->.*?<!-- /mirror -->", lambda _: section, text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        page.write_text(text, encoding="utf-8")
    sys.exit(0 if all(good for *_, good in rows) else 1)


if __name__ == "__main__":
    main()
