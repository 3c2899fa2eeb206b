"""marketsync benchmarks: every figure of issue 7, each printed as a table of measured vs target.

    python benchmarks/run.py calls      # API calls: idle run, changed orders, nothing fetched twice
    python benchmarks/run.py short      # idle sync: open orders on short lots vs nothing short, lines rewritten
    python benchmarks/run.py backfill   # first sync vs a plain sequential client (requests + executemany),
                                        # on loopback and with 40 ms latency on every answer
    python benchmarks/run.py memory     # peak RSS of the sync process, 1k vs 10k orders
    python benchmarks/run.py pacing     # BrickOwl backfill larger than one window: no 429, time vs the limit
    python benchmarks/run.py deadline   # both marketplaces at once under one run deadline; 5,000 BrickOwl orders at 600/min
    python benchmarks/run.py budget     # BrickLink daily budget: open orders first, clear stop, resume
    python benchmarks/run.py local      # orders on 100k orders, --help/status start-up, write path vs executemany
    python benchmarks/run.py push       # listings: one read each when idle, writes per changed lot, planning 10k
    python benchmarks/run.py pull       # re-pull of 100k known lots vs a plain client: peak RSS, wall time
    python benchmarks/run.py nonces     # the sandbox serves 100k signed BrickLink calls in linear time
    python benchmarks/run.py all        # everything above (about 3 minutes on 2 cores); also with no argument
    python benchmarks/run.py all --write docs/performance.md   # ... and rewrite that page's generated section
    python benchmarks/run.py --small    # everything at a size that takes seconds (CI, .ci/run): exits 1 when a
                                        # benchmark crashes or a count leaves its floor; timings are printed only

Sizes are flags (``python benchmarks/run.py backfill -h``). The sandbox marketplaces run in this
process (threads); every sync runs as a separate ``python -m marketsync`` process, the way cron
runs it, so wall time, CPU and peak RSS are the sync's own (``os.wait4`` rusage per child).
Exit status: 0 when every row passed, 1 otherwise (with ``--small``: every count row; a crashed
benchmark is a failed row).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("marketsync") is None:  # not installed: use this checkout (PYTHONPATH still wins)
    sys.path.insert(0, str(ROOT))

from marketsync.sandbox import Sandbox, generate_store, write_demo_inventory_csv  # noqa: E402

PY = sys.executable
CONFIG_PREFIXES = ("MARKETSYNC_", "BRICKLINK_", "BRICKOWL_")
NO_LIMIT = "1000000"  # client-side BrickOwl pacing off (the sandbox's limit is off too) where pacing is not measured
NO_BUDGET = "100000000"  # the BrickLink daily budget (5000) is measured by 'budget' only


# ------------------------------------------------------------------------------- reporting
GATE_TIMING = True  # False with --small: a timing or ratio row is printed, never failed (too noisy at small sizes)


@dataclass
class Row:
    figure: str
    measured: str
    target: str = ""
    ok: bool | None = None  # None: informational
    timed: bool = False  # a wall/CPU/memory figure or ratio (not a count): gated only at full size

    @property
    def gated(self) -> bool:
        return self.ok is not None and (GATE_TIMING or not self.timed)

    @property
    def result(self) -> str:
        if self.ok is None:
            return ""
        if not self.gated:
            return "pass (timing)" if self.ok else "miss (timing, not gated)"
        return "PASS" if self.ok else "FAIL"


@dataclass
class Report:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: str, measured: object, target: str = "", ok: bool | None = None, *,
            timed: bool = False) -> None:
        self.rows.append(Row(figure, str(measured), target, ok, timed))

    @property
    def failed(self) -> bool:
        return any(row.gated and row.ok is False for row in self.rows)

    def table(self) -> list[str]:
        headers = ("Figure", "Measured", "Target", "Result")
        cells = [(r.figure, r.measured, r.target, r.result) for r in self.rows]
        widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
        out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), "  ".join("-" * w for w in widths)]
        out += ["  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip() for c in cells]
        return out + [f"  note: {note}" for note in self.notes]

    def print(self) -> None:
        print(f"\n== {self.title}")
        print("\n".join(self.table()))
        sys.stdout.flush()

    def markdown(self) -> str:
        return "\n".join([f"### {self.title}", "", "```", *self.table(), "```", ""])


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def machine() -> str:
    cpu = "?"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}")


# ------------------------------------------------------------------------------- processes
@dataclass
class Child:
    code: int
    wall: float
    cpu: float  # user + system seconds of the child
    maxrss_mb: float
    stdout: str
    stderr: str
    sandbox_cpu: float = 0.0  # CPU this process (the sandbox threads) used meanwhile


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def child(args: list[str], env: dict[str, str], cwd: str | Path) -> Child:
    """Run a process to completion. CPU comes from os.wait4 (this child's own rusage). Peak RSS
    comes from /usr/bin/time: a child forked from this process starts with this process's pages
    (the sandbox's stores) counted in its RSS until it execs, so its own ru_maxrss can be this
    process's size, not the sync's; /usr/bin/time forks from a tiny process instead."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        command = [GNU_TIME, "-f", "%M", "-o", rss.name, *args] if GNU_TIME else args
        cpu0 = _cpu_self()
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, cwd=str(cwd), stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sandbox_cpu = _cpu_self() - cpu0
        out.seek(0)
        err.seek(0)
        figures = [x for x in rss.read().split() if x.isdigit()]
        maxrss_kb = int(figures[-1]) if figures else usage.ru_maxrss
        return Child(proc.returncode, wall, usage.ru_utime + usage.ru_stime, maxrss_kb / 1024, out.read(),
                     err.read(), sandbox_cpu)


def clean_environ() -> dict[str, str]:
    """This environment less marketsync's settings, and less PYTHONDONTWRITEBYTECODE: cron runs an
    installed package, whose modules were compiled once (pip compiles them); a checkout run with
    that variable set would compile every module in every timed process (~0.2 s of CPU each)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(CONFIG_PREFIXES) and k != "PYTHONDONTWRITEBYTECODE"}


class Workspace:
    """A temporary directory with a database; runs the CLI against a sandbox as cron would."""

    def __init__(self, sb: Sandbox, name: str = "bench", **settings: str):
        self.dir = Path(tempfile.mkdtemp(prefix=f"marketsync-{name}-"))
        self.db = self.dir / "marketsync.db"
        self.env = {**clean_environ(), **sb.env(), "MARKETSYNC_DB": str(self.db), "BRICKOWL_RATE_LIMIT": NO_LIMIT,
                    "BRICKLINK_DAILY_BUDGET": NO_BUDGET, **settings}

    def cli(self, *args: str, **extra_env: str) -> Child:
        return child([PY, "-m", "marketsync", *args], {**self.env, **extra_env}, self.dir)

    def import_inventory(self) -> None:
        path = write_demo_inventory_csv(self.dir / "inventory.csv")
        result = self.cli("inventory", "import", str(path))
        if result.code:
            raise SystemExit(f"inventory import failed: {result.stderr}")

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def sandbox(rate_limit=None):
    with Sandbox(demo=False) as sb:
        sb.brickowl.rate_limit = rate_limit
        yield sb


def calls_by(sb: Sandbox) -> dict[str, int]:
    return {f"{provider} {endpoint}": n for (provider, endpoint), n in sorted(sb.calls.items())}


def provider_calls(sb: Sandbox, provider: str, catalog: bool = True) -> int:
    return sum(n for (p, endpoint), n in sb.calls.items()
               if p == provider and (catalog or "/catalog/" not in endpoint))


def fetched_twice(sb: Sandbox) -> list[str]:
    """Per-order GETs (items, view, single order) made more than once since the last reset."""
    seen: dict[str, int] = {}
    for provider, _method, path, query in list(sb.requests):
        if provider == "bricklink" and path.startswith("/orders/"):
            key = f"bricklink {path}"
        elif provider == "brickowl" and path in ("/order/view", "/order/items"):
            key = f"brickowl {path}?order_id={query.get('order_id')}"
        elif provider == "brickowl" and path == "/catalog/id_lookup":
            key = f"brickowl {path}?id={query.get('id')}&type={query.get('type')}"
        else:
            continue
        seen[key] = seen.get(key, 0) + 1
    return [k for k, n in seen.items() if n > 1]


def fetched_orders(sb: Sandbox) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {"bricklink": set(), "brickowl": set()}
    for provider, _method, path, query in list(sb.requests):
        if provider == "bricklink" and path.startswith("/orders/"):
            ids["bricklink"].add(path.split("/")[2])
        elif provider == "brickowl" and path in ("/order/view", "/order/items"):
            ids["brickowl"].add(str(query.get("order_id")))
    return ids


def one_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else ""


# ------------------------------------------------------------------------------- calls
def bench_calls(args) -> Report:
    report = Report("API calls (sandbox request log; target: issue 7 call counts)")
    report.notes.append("first sync lists BrickLink twice (unfiled + filed: BrickLink hides filed orders from the "
                        "default list); every later run lists once")
    report.notes.append("BrickOwl catalog/id_lookup calls translate BrickOwl parts (each BrickLink number asked at "
                        "most once ever, cached in the database); they are counted apart from order calls")
    for size in args.sizes:
        with sandbox() as sb:
            generate_store(sb, size, args.lines, seed=1, open_fraction=0.3)
            ws = Workspace(sb, "calls")
            try:
                ws.import_inventory()
                sb.reset_calls()
                first = ws.cli("sync")
                if first.code:
                    report.add(f"[{size}/marketplace] first sync", f"exit {first.code}: {one_line(first.stderr)}",
                               "exit 0", False)
                    continue
                bl, bo = provider_calls(sb, "bricklink"), provider_calls(sb, "brickowl", catalog=False)
                lookups = sb.calls[("brickowl", "GET /catalog/id_lookup")]
                report.add(f"[{size}/marketplace] first sync: BrickLink calls", bl, f"= 2 lists + {size} = {2 + size}",
                           bl == 2 + size)
                report.add(f"[{size}/marketplace] first sync: BrickOwl order calls", bo,
                           f"= 1 + 2x{size} = {1 + 2 * size}", bo == 1 + 2 * size)
                report.add(f"[{size}/marketplace] first sync: BrickOwl id_lookup calls", lookups, "once per part, ever")
                twice = fetched_twice(sb)
                report.add(f"[{size}/marketplace] first sync: fetched twice", len(twice), "0", not twice)

                # idle: nothing changed
                sb.reset_calls()
                idle = ws.cli("sync")
                bl, bo = provider_calls(sb, "bricklink"), provider_calls(sb, "brickowl")
                report.add(f"[{size}/marketplace] idle run: calls per marketplace", f"BL {bl}, BO {bo}",
                           "exactly 1 each", idle.code == 0 and bl == 1 and bo == 1)
                report.add(f"[{size}/marketplace] idle run: wall time", fmt_s(idle.wall))

                # changed: k status changes + k new orders per marketplace
                k = max(1, min(args.changed, size // 2))
                bl_ids = sorted(sb.bricklink.orders)[:k]
                bo_ids = sorted(sb.brickowl.orders)[:k]
                for oid in bl_ids:
                    sb.bricklink.set_status(oid, "SHIPPED" if sb.bricklink.orders[oid].status != "SHIPPED" else "COMPLETED")
                for oid in bo_ids:
                    sb.brickowl.set_status(oid, "Shipped" if sb.brickowl.orders[oid].status_id != 5 else "Received")
                new_bl = [sb.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 2}])
                          for _ in range(k)]
                new_bo = [sb.brickowl.add_order(status="Payment Received",
                                                lines=[{"boid": "771344-38", "ordered_quantity": 2}]) for _ in range(k)]
                sb.reset_calls()
                changed = ws.cli("sync")
                bl, bo = provider_calls(sb, "bricklink"), provider_calls(sb, "brickowl", catalog=False)
                n = 2 * k
                report.add(f"[{size}/marketplace] {k} changed + {k} new: BrickLink calls", bl,
                           f"= 1 + {n} = {1 + n}", changed.code == 0 and bl == 1 + n)
                report.add(f"[{size}/marketplace] {k} changed + {k} new: BrickOwl order calls", bo,
                           f"= 1 + 2x{n} = {1 + 2 * n}", changed.code == 0 and bo == 1 + 2 * n)
                got = fetched_orders(sb)
                want_bl = {str(x) for x in bl_ids + new_bl}
                want_bo = {str(x) for x in bo_ids + new_bo}
                extra = (got["bricklink"] - want_bl) | (got["brickowl"] - want_bo)
                report.add(f"[{size}/marketplace] unchanged orders fetched", len(extra), "0", not extra)
                twice = fetched_twice(sb)
                report.add(f"[{size}/marketplace] changed run: fetched twice", len(twice), "0", not twice)
            finally:
                ws.cleanup()
    return report


# ------------------------------------------------------------------------------- listings
def _linked_store(sb: Sandbox, lots: int, quantity: int) -> None:
    for n in range(lots):
        sb.bricklink.add_lot(f"p{n}", 11, quantity, remarks=f"B{n}", inventory_id=10_000 + n)
        sb.brickowl.add_lot(f"{n + 1}-38", quantity, lot_id=str(50_000 + n), personal_note=f"B{n}",
                            external_id=10_000 + n)


def write_calls(sb: Sandbox, provider: str) -> int:
    return sum(n for (p, endpoint), n in sb.calls.items() if p == provider and endpoint.split()[0] in ("PUT", "POST"))


def bench_push(args) -> Report:
    report = Report("Listings pushed (sandbox request log; target: issue 11)")
    with sandbox() as sb:
        _linked_store(sb, args.lots, 50)
        ws = Workspace(sb, "push")
        try:
            for step in (("inventory", "pull"), ("sync", "--push")):
                done = ws.cli(*step)
                if done.code:
                    raise SystemExit(f"{' '.join(step)} failed: {done.stderr}")
            sb.reset_calls()
            idle = ws.cli("sync", "--push")
            reads = (sb.calls[("bricklink", "GET /inventories")], sb.calls[("brickowl", "GET /inventory/list")])
            report.add(f"[{args.lots} linked lots] idle push: listing reads", f"BL {reads[0]}, BO {reads[1]}",
                       "1 each", idle.code == 0 and reads == (1, 1))
            writes = write_calls(sb, "bricklink") + write_calls(sb, "brickowl")
            report.add(f"[{args.lots} linked lots] idle push: writes", writes, "0", writes == 0)
            report.add(f"[{args.lots} linked lots] idle push: wall time", fmt_s(idle.wall))

            k = min(args.changed, args.lots)
            for n in range(k):  # BrickOwl sales: BrickLink must follow, one PUT per lot
                sb.brickowl.add_order("Payment Received", lines=[{
                    "lot_id": str(50_000 + n), "boid": f"{n + 1}-38", "color_id": 38, "ordered_quantity": 1,
                    "personal_note": f"B{n}", "bl_lot_id": str(10_000 + n)}])
            sb.reset_calls()
            pushed = ws.cli("sync", "--push")
            bl = write_calls(sb, "bricklink")
            report.add(f"{k} lots sold on BrickOwl: BrickLink write calls", bl, f"<= {k}", pushed.code == 0 and bl <= k)
            for n in range(k):  # BrickLink sales: BrickOwl follows in batches of 50
                sb.bricklink.add_order("PAID", lines=[{"inventory_id": 10_000 + n, "no": f"p{n}", "color_id": 11,
                                                       "quantity": 1, "remarks": f"B{n}"}])
            sb.reset_calls()
            pushed = ws.cli("sync", "--push")
            bo = write_calls(sb, "brickowl")
            report.add(f"{k} lots sold on BrickLink: BrickOwl write calls", bo, f"<= ceil({k}/50) = {-(-k // 50)}",
                       pushed.code == 0 and bo <= -(-k // 50))
            exact = all(sb.bricklink.get_lot(10_000 + n).quantity == sb.brickowl.get_lot(str(50_000 + n)).qty
                        for n in range(args.lots))
            report.add("every listing equal on both marketplaces", exact, "True", exact)
        finally:
            ws.cleanup()
    plan_time(args, report)
    return report


class _Rollback(Exception):
    """Raised inside ``store.atomic()`` to undo what a timed round wrote."""


def plan_time(args, report: Report) -> None:
    """Planning (links, settling, judging, deltas: everything but the HTTP) for many linked lots."""
    from marketsync.app import listing_push as push
    from marketsync.model import InventoryLot, RemoteLot
    from marketsync.rules.listings import OwnOrders
    from marketsync.store import listings as stored
    from marketsync.store import open_store
    from marketsync.store.inventory import lot_index, upsert_lots

    tmp = Path(tempfile.mkdtemp(prefix="marketsync-plan-"))
    try:
        store = open_store(tmp / "plan.db", "default")
        n = args.plan_lots
        with store.atomic():
            upsert_lots(store, [InventoryLot(f"p{i}", 11, "new", f"B{i}", 40 - (i % 3), bricklink_lot_id=str(i))
                                for i in range(n)])
            stored.save_links(store, "brickowl", [stored.Link(str(i), i + 1, "external-id") for i in range(n)])
            stored.observe(store, [(row["id"], 40, OwnOrders()) for row in stored.listings(store, "brickowl")])
        for_sale = {str(i): RemoteLot("brickowl", str(i), 40, bricklink_lot_id=str(i)) for i in range(n)}
        index = lot_index(store)
        best, planned = float("inf"), 0
        for _ in range(3):
            try:
                with store.atomic():  # everything planned is rolled back for the next round
                    started = time.perf_counter()
                    rows, _ = push._linked_rows(store, "brickowl", for_sale, index, None, dry_run=False)
                    judgement = push.judge("brickowl", rows, for_sale, stored.own_orders(store, "brickowl"),
                                           stored.maybe_changes(store, "brickowl"), stored.available(store), set())
                    push.record(store, judgement)
                    best = min(best, time.perf_counter() - started)
                    planned = len([p for p in judgement.planned if p.delta])
                    raise _Rollback
            except _Rollback:
                pass
        report.add(f"planning a push of {n} linked lots (read to planned changes)", fmt_s(best), "< 1 s",
                   best < 1, timed=True)
        report.add("  ... of which need a change", planned)
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------- backfill
@dataclass
class Pairs:
    """Back-to-back runs of the sync and the baseline, one pair per fresh sandbox."""

    syncs: list[tuple[Child, int]] = field(default_factory=list)  # (the run, HTTP calls it made)
    bases: list[tuple[Child, int]] = field(default_factory=list)
    rows: tuple[int, int, int, int] = (0, 0, 0, 0)  # orders / lines: sync, then baseline (the last pair)

    def wall_ratios(self) -> list[float]:
        """sync wall / baseline wall of each pair (each pair ran back to back)."""
        return [s.wall / b.wall for (s, _), (b, _) in zip(self.syncs, self.bases)]

    def cpu_ratios(self) -> list[float]:
        return [s.cpu / b.cpu for (s, _), (b, _) in zip(self.syncs, self.bases)]


def _count_rows(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return (conn.execute("select count(*) from orders").fetchone()[0],
                conn.execute("select count(*) from order_items").fetchone()[0])


def backfill_pairs(n: int, lines: int, repeat: int, latency: float = 0.0) -> Pairs:
    """``repeat`` pairs (sync, baseline) of first syncs of ``n`` orders per marketplace, the order
    of each pair alternating; ``latency`` seconds added by the sandbox to every answer."""
    pairs = Pairs()
    for attempt in range(repeat):
        with sandbox() as sb:
            sb.latency = latency
            generate_store(sb, n, lines, seed=1, open_fraction=0.3)
            ws = Workspace(sb, "backfill")
            try:
                ws.import_inventory()
                base_db = ws.dir / "baseline.db"
                shutil.copy(ws.db, base_db)  # the same schema and inventory, nothing synced
                order = (("baseline", "sync") if attempt % 2 == 0 else ("sync", "baseline"))
                for which in order:
                    sb.reset_calls()
                    if which == "baseline":
                        result = child([PY, str(ROOT / "benchmarks" / "baseline_client.py")],
                                       {**ws.env, "BASELINE_DB": str(base_db)}, ws.dir)
                        if result.code:
                            raise SystemExit(f"baseline failed: {result.stderr}")
                        pairs.bases.append((result, sum(sb.calls.values())))
                    else:
                        result = ws.cli("sync")
                        if result.code:
                            raise SystemExit(f"sync failed: {result.stderr[-2000:]}")
                        pairs.syncs.append((result, sum(sb.calls.values())))
                pairs.rows = (*_count_rows(ws.db), *_count_rows(base_db))
            finally:
                ws.cleanup()
    return pairs


def bench_backfill(args) -> Report:
    n, lines = args.orders, args.lines
    report = Report(f"Backfill: first sync of {n} orders/marketplace x {lines} lines vs a plain sequential client")
    report.notes.append("baseline = benchmarks/baseline_client.py: sequential requests GETs of the same endpoints "
                        "(OAuth1 for BrickLink, key for BrickOwl) + sqlite3 executemany of the same orders and "
                        "order_items rows, one transaction per 100 orders; no matching or ledger")
    report.notes.append("the sync also matches every line, writes the reservation ledger and translates BrickOwl "
                        "parts (id_lookup); pacing is off here on both sides (measured by 'pacing')")
    report.notes.append("each pair runs against a fresh sandbox, so both sides of a pair start from the same "
                        "server state (the sandbox's cost per call stays flat: 'nonces'); targets: issue 24")
    pairs = backfill_pairs(n, lines, args.repeat)
    synced, synced_lines, base_orders, base_lines = pairs.rows
    sync_wall = statistics.median(r.wall for r, _ in pairs.syncs)
    base_wall = statistics.median(r.wall for r, _ in pairs.bases)
    walls, cpus = pairs.wall_ratios(), pairs.cpu_ratios()
    wall_ratio, cpu_ratio = statistics.median(walls), statistics.median(cpus)
    rs, calls_s = pairs.syncs[-1]
    rb, calls_b = pairs.bases[-1]
    report.add("rows written (orders / lines): sync", f"{synced} / {synced_lines}")
    report.add("rows written (orders / lines): baseline", f"{base_orders} / {base_lines}", "same",
               (synced, synced_lines) == (base_orders, base_lines))
    report.add("HTTP calls: sync / baseline", f"{calls_s} / {calls_b}")
    report.add(f"baseline wall (median of {len(pairs.bases)})", fmt_s(base_wall),
               ", ".join(fmt_s(r.wall) for r, _ in pairs.bases))
    report.add(f"sync wall (median of {len(pairs.syncs)})", fmt_s(sync_wall),
               ", ".join(fmt_s(r.wall) for r, _ in pairs.syncs))
    report.add("sync wall / baseline wall, median of pairs", f"{wall_ratio:.3f}x (pairs: "
               f"{', '.join(f'{x:.2f}x' for x in walls)})", "<= 0.90x", wall_ratio <= 0.90, timed=True)
    report.add("orders/s: sync / baseline", f"{2 * n / sync_wall:.0f} / {2 * n / base_wall:.0f}")
    report.add("client CPU: sync / baseline, median of pairs", f"{cpu_ratio:.3f}x (pairs: "
               f"{', '.join(f'{x:.2f}x' for x in cpus)})", "<= 1.20x", cpu_ratio <= 1.20, timed=True)
    report.add("client CPU: sync / baseline (last pair)", f"{rs.cpu:.2f} s / {rb.cpu:.2f} s")
    report.add("sandbox CPU during sync / baseline", f"{rs.sandbox_cpu:.2f} s ({rs.sandbox_cpu / rs.wall:.0%}) / "
               f"{rb.sandbox_cpu:.2f} s ({rb.sandbox_cpu / rb.wall:.0%})")
    report.add("peak RSS: sync / baseline", f"{rs.maxrss_mb:.0f} MB / {rb.maxrss_mb:.0f} MB")
    if rs.sandbox_cpu / rs.wall > 0.85:
        report.notes.append("the sandbox process was near 100% of a core: it, not the sync, limits this figure")
    if args.latency_repeat:
        backfill_latency(args, report)
    else:
        report.notes.append("latency rows skipped (--latency-repeat 0)")
    return report


def backfill_latency(args, report: Report) -> None:
    """The same first sync with the sandbox answering every call ``--latency`` seconds late: the
    sequential baseline pays it once per call, the sync a few calls in flight at a time."""
    n, ms = args.latency_orders, args.latency * 1000
    pairs = backfill_pairs(n, args.lines, args.latency_repeat, latency=args.latency)
    walls = pairs.wall_ratios()
    ratio = statistics.median(walls)
    (rs, calls_s), (rb, calls_b) = pairs.syncs[-1], pairs.bases[-1]
    report.add(f"[{ms:.0f} ms latency] {n} orders/marketplace: rows written, sync / baseline",
               f"{pairs.rows[0]} / {pairs.rows[2]}", "same", pairs.rows[:2] == pairs.rows[2:])
    report.add(f"[{ms:.0f} ms latency] HTTP calls: sync / baseline", f"{calls_s} / {calls_b}")
    report.add(f"[{ms:.0f} ms latency] wall: sync / baseline", f"{fmt_s(rs.wall)} / {fmt_s(rb.wall)}")
    report.add(f"[{ms:.0f} ms latency] sync wall / baseline wall, median of {len(walls)}",
               f"{ratio:.3f}x", "<= 0.30x", ratio <= 0.30, timed=True)
    report.notes.append(f"latency rows: the sandbox adds {ms:.0f} ms to every answer (Sandbox.latency), "
                        f"{n} orders/marketplace x {args.lines} lines; the baseline waits for each call in turn")


# ------------------------------------------------------------------------------- idle with short lots
WRITE_COUNTER = """
create table if not exists bench_line_writes (n integer);
insert into bench_line_writes select 0 where not exists (select 1 from bench_line_writes);
create trigger if not exists bench_li after insert on order_items begin update bench_line_writes set n = n + 1; end;
create trigger if not exists bench_lu after update on order_items begin update bench_line_writes set n = n + 1; end;
create trigger if not exists bench_ld after delete on order_items begin update bench_line_writes set n = n + 1; end;
"""


def _line_writes(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("select n from bench_line_writes").fetchone()[0]


def bench_short(args) -> Report:
    """An idle sync of a store whose open orders all sit on short lots (more reserved than on hand,
    no free bin of the part anywhere) against the same idle sync with nothing short."""
    n = args.orders
    report = Report(f"Idle sync, {2 * n} orders: open orders on short lots vs nothing short")
    with sandbox() as sb:
        generate_store(sb, n, args.lines, seed=1, open_fraction=0.3)
        ws = Workspace(sb, "short")
        try:
            ws.import_inventory()
            first = ws.cli("sync")
            if first.code:
                raise SystemExit(f"first sync failed: {one_line(first.stderr)}")
            short_db = ws.dir / "short.db"
            shutil.copy(ws.db, short_db)
            with sqlite3.connect(short_db) as conn:  # every lot short: no bin of any part has a piece free
                conn.execute("update inventory set quantity = 0")
            settle = ws.cli("sync", MARKETSYNC_DB=str(short_db))
            with sqlite3.connect(short_db) as conn:
                conn.executescript(WRITE_COUNTER)
                short_orders = conn.execute(
                    "select count(distinct r.order_ref) from reservations r join inventory i on i.id = r.inventory_id "
                    "where i.quantity_reserved > i.quantity").fetchone()[0]
            with sqlite3.connect(ws.db) as conn:
                conn.executescript(WRITE_COUNTER)
            walls: dict[str, list[float]] = {"none": [], "short": []}
            for _ in range(args.repeat):  # alternating, so load on the machine falls on both alike
                for name, db in (("none", ws.db), ("short", short_db)):
                    sb.reset_calls()
                    run = ws.cli("sync", MARKETSYNC_DB=str(db))
                    if run.code or settle.code:
                        raise SystemExit(f"idle sync failed: {one_line(run.stderr or settle.stderr)}")
                    walls[name].append(run.wall)
                    calls = (provider_calls(sb, "bricklink"), provider_calls(sb, "brickowl"))
                    if calls != (1, 1):
                        report.add(f"idle run ({name}): calls per marketplace", calls, "(1, 1)", False)
            none, short = min(walls["none"]), min(walls["short"])
            report.add("open orders on short lots (short store)", short_orders, "> 0", short_orders > 0)
            report.add(f"idle sync, nothing short (fastest of {args.repeat})", fmt_s(none))
            report.add(f"idle sync, {short_orders} orders short (fastest of {args.repeat})", fmt_s(short))
            report.add("short / nothing short", f"{short / none:.2f}x", "<= 1.10x", short / none <= 1.10, timed=True)
            written = _line_writes(short_db)
            report.add(f"order_items rows written by {args.repeat} idle runs (short store)", written, "0", written == 0)
        finally:
            ws.cleanup()
    return report


# ------------------------------------------------------------------------------- memory
def bench_memory(args) -> Report:
    report = Report("Memory: peak RSS of the sync process (a first sync of both marketplaces)")
    with sandbox() as sb:
        ws = Workspace(sb, "memory")
        idle = ws.cli("--version")
        ws.cleanup()
    report.add("python -m marketsync --version (interpreter + CLI)", f"{idle.maxrss_mb:.1f} MB")

    def peak(orders: int, lines: int) -> float:
        with sandbox() as sb:
            generate_store(sb, orders, lines, seed=1, open_fraction=0.3)
            ws = Workspace(sb, "memory")
            try:
                ws.import_inventory()
                result = ws.cli("sync")
                if result.code:
                    raise SystemExit(f"sync failed: {one_line(result.stderr)}")
                report.add(f"{2 * orders} orders x {lines} lines: peak RSS",
                           f"{result.maxrss_mb:.1f} MB (wall {fmt_s(result.wall)})")
                return result.maxrss_mb
            finally:
                ws.cleanup()

    few, many = peak(args.base, args.lines), peak(args.base, 4 * args.lines)
    report.add(f"4x the lines ({2 * args.base * args.lines} -> {8 * args.base * args.lines})",
               f"{many - few:+.1f} MB ({many / few:.2f}x)", "<= 1.10x (streams)", many / few <= 1.10, timed=True)
    small, large = few, peak(args.large, args.lines)
    per_order = (large - small) * 1024 / (2 * (args.large - args.base))
    report.add(f"{args.large / args.base:g}x the orders ({2 * args.base} -> {2 * args.large})",
               f"{large - small:+.1f} MB ({large / small:.2f}x)",
               "<= 1.25x (flat)", large / small <= 1.25, timed=True)
    report.add("growth per extra order in the store", f"{per_order:.2f} KB")
    report.notes.append("what grows with the store is the order list: BrickLink and BrickOwl answer it in one "
                        "response, whose body is decoded entry by entry (64 KB of text at a time); each listed "
                        "order is held until fetched as a compact summary (~1 KB for BrickLink, its entry kept as "
                        "text for the order row; ~0.3 KB for BrickOwl); everything fetched per order is streamed "
                        "(at most 2 x concurrency orders in flight, their payloads held as text only, a write "
                        "batch of at most 100 orders or 2000 lines)")
    return report


# ------------------------------------------------------------------------------- re-pull
INVENTORY_WRITE_COUNTER = """
create table if not exists bench_lot_writes (n integer);
insert into bench_lot_writes select 0 where not exists (select 1 from bench_lot_writes);
create trigger if not exists bench_ii after insert on inventory begin update bench_lot_writes set n = n + 1; end;
create trigger if not exists bench_iu after update on inventory when old.quantity is not new.quantity
  or old.quantity_reserved is not new.quantity_reserved begin update bench_lot_writes set n = n + 1; end;
create trigger if not exists bench_id after delete on inventory begin update bench_lot_writes set n = n + 1; end;
"""


def _seed_lots(sb: Sandbox, n: int) -> None:
    """n BrickLink lots for sale, each in its own bin, 2,000 parts in 40 colours, a few with a description."""
    for i in range(n):
        sb.bricklink.add_lot(f"{3001 + i % 2000}", 1 + i % 40, 1 + i % 97, "N" if i % 3 else "U",
                             remarks=f"{'ABCDEFGH'[i % 8]}{i // 8:05d}", inventory_id=5_000_000 + i,
                             description="bulk lot" if i % 10 == 0 else "")


def bench_pull(args) -> Report:
    """``inventory pull`` of a store whose lots are all known already (a re-pull: nothing changed)
    against the plain client (``baseline_client.py``, BASELINE_MODE=pull): one GET, ``.json()``,
    one ``executemany`` upsert. Pairs alternate, each against the same sandbox store."""
    n = args.lots
    report = Report(f"Re-pull of {n} BrickLink lots (all known) vs a plain client")
    report.notes.append("plain client = benchmarks/baseline_client.py with BASELINE_MODE=pull: requests GET "
                        "/inventories?status=Y (OAuth1), response.json(), sqlite3 executemany upsert of every lot "
                        "into inventory in one transaction; no orders synced first, no listings, no adjustments")
    report.notes.append("the re-pull first syncs both marketplaces' orders (one list call each: none changed), "
                        "then reads the lots and judges every listing against the stock model; it marks each lot's "
                        "on hand established (stocked_at), which the figures row does not count")
    with sandbox() as sb:
        _seed_lots(sb, n)
        ws = Workspace(sb, "pull")
        try:
            first = ws.cli("inventory", "pull", "--provider", "bricklink")
            if first.code:
                raise SystemExit(f"first pull failed: {one_line(first.stderr)}")
            with sqlite3.connect(ws.db) as conn:
                stored = conn.execute("select count(*) from inventory").fetchone()[0]
            report.add(f"first pull: lots stored (wall {fmt_s(first.wall)}, peak RSS {first.maxrss_mb:.0f} MB)",
                       stored, f"= {n}", stored == n)
            base_db = ws.dir / "baseline.db"
            shutil.copy(ws.db, base_db)  # the same lots, already known
            with sqlite3.connect(ws.db) as conn:
                conn.executescript(INVENTORY_WRITE_COUNTER)
            pulls: list[Child] = []
            bases: list[Child] = []
            for attempt in range(args.repeat):  # alternating, so load on the machine falls on both alike
                for which in (("pull", "plain") if attempt % 2 == 0 else ("plain", "pull")):
                    sb.reset_calls()
                    if which == "plain":
                        result = child([PY, str(ROOT / "benchmarks" / "baseline_client.py")],
                                       {**ws.env, "BASELINE_DB": str(base_db), "BASELINE_MODE": "pull"}, ws.dir)
                        if result.code:
                            raise SystemExit(f"plain client failed: {result.stderr[-2000:]}")
                        bases.append(result)
                        continue
                    result = ws.cli("inventory", "pull", "--provider", "bricklink")
                    if result.code:
                        raise SystemExit(f"re-pull failed: {result.stderr[-2000:]}")
                    calls = (provider_calls(sb, "bricklink"), provider_calls(sb, "brickowl"))
                    pulls.append(result)
            with sqlite3.connect(ws.db) as conn:
                written = conn.execute("select n from bench_lot_writes").fetchone()[0]
                adjusted = conn.execute("select count(*) from adjustments").fetchone()[0]
        finally:
            ws.cleanup()
    report.add("re-pull: calls (BrickLink / BrickOwl)", f"{calls[0]} / {calls[1]}",
               "= 2 (order list + lot list) / 1 (order list)", calls == (2, 1))
    report.add(f"lots whose figures {len(pulls)} re-pulls changed", written, "0 (nothing changed)", written == 0)
    report.add("adjustments recorded", adjusted, "0 (nothing changed)", adjusted == 0)
    ratios = [p.wall / b.wall for p, b in zip(pulls, bases)]
    peak = max(p.maxrss_mb for p in pulls)
    report.add("re-pull: peak RSS (largest)", f"{peak:.0f} MB", "<= 250 MB", peak <= 250, timed=True)
    report.add("plain client: peak RSS (largest)", f"{max(b.maxrss_mb for b in bases):.0f} MB")
    report.add(f"re-pull wall (median of {len(pulls)})", fmt_s(statistics.median(p.wall for p in pulls)),
               ", ".join(fmt_s(p.wall) for p in pulls))
    report.add(f"plain client wall (median of {len(bases)})", fmt_s(statistics.median(b.wall for b in bases)),
               ", ".join(fmt_s(b.wall) for b in bases))
    report.add("re-pull / plain client wall, median of pairs", f"{statistics.median(ratios):.2f}x", "<= 1.50x",
               statistics.median(ratios) <= 1.5, timed=True)
    report.add("each pair", ", ".join(f"{x:.2f}x" for x in ratios))
    report.add("client CPU: re-pull / plain (medians)", f"{statistics.median(p.cpu for p in pulls):.2f} s / "
               f"{statistics.median(b.cpu for b in bases):.2f} s")
    return report


# ------------------------------------------------------------------------------- sandbox nonces
def bench_nonces(args) -> Report:
    """The sandbox serving many signed BrickLink calls: each call's OAuth nonce is remembered (a replay
    is refused), so a table that was rebuilt on every call made the sandbox quadratic. Time of the first
    window of calls against the last, on one keep-alive session (requests + OAuth1, as a client would)."""
    import requests
    from requests_oauthlib import OAuth1

    n, window = args.calls, args.window
    report = Report(f"Sandbox: {n} signed BrickLink calls, first {window} vs last {window}")
    report.notes.append("client and sandbox in this process; CPU is this process's (both sides), wall is "
                        "affected by other load on the machine")
    with sandbox() as sb:
        lot = sb.bricklink.add_lot("3001", 11, 40, remarks="A1")
        env = sb.env()
        session = requests.Session()
        session.auth = OAuth1(env["BRICKLINK_CONSUMER_KEY"], env["BRICKLINK_CONSUMER_SECRET"],
                              env["BRICKLINK_TOKEN_VALUE"], env["BRICKLINK_TOKEN_SECRET"])
        url = f"{env['BRICKLINK_API_URL'].rstrip('/')}/inventories/{lot}"
        walls, cpus, refused = [], [], 0
        for start in range(0, n, window):
            wall0, cpu0 = time.perf_counter(), _cpu_self()
            for _ in range(min(window, n - start)):
                body = session.get(url, timeout=30).json()
                refused += body["meta"]["code"] != 200
            walls.append(time.perf_counter() - wall0)
            cpus.append(_cpu_self() - cpu0)
        remembered = len(sb.bricklink._nonces)
    report.add("calls answered / refused", f"{n - refused} / {refused}", f"{n} / 0", refused == 0)
    report.add("nonces remembered (all within the replay window)", remembered, f"= {n}", remembered == n)
    report.add(f"wall: first / last {window} calls", f"{fmt_s(walls[0])} / {fmt_s(walls[-1])}")
    report.add(f"CPU: first / last {window} calls", f"{fmt_s(cpus[0])} / {fmt_s(cpus[-1])}")
    report.add("each window's CPU (ms per call)", ", ".join(f"{c * 1000 / window:.2f}" for c in cpus))
    report.add("last / first window, CPU", f"{cpus[-1] / cpus[0]:.2f}x", "<= 1.30x (linear)",
               cpus[-1] <= 1.3 * cpus[0], timed=True)
    report.add("last / first window, wall", f"{walls[-1] / walls[0]:.2f}x")
    return report


# ------------------------------------------------------------------------------- pacing
def bench_pacing(args) -> Report:
    count, window = (600, 60.0) if args.real else (args.window_calls, args.window)
    per_minute = count * 60.0 / window
    n = args.orders or int(count * args.windows / 2) + 1
    report = Report(f"BrickOwl pacing: sandbox limit {count} per {window:g} s, client BRICKOWL_RATE_LIMIT="
                    f"{per_minute:g}/min, {n} orders")
    if not args.real:
        report.notes.append(f"scaled: {count} per {window:g} s is {per_minute:g}/min; the real limit is 600 per 60 s "
                            "(--real runs it, about 1-2 minutes)")
    with sandbox(rate_limit=(count, window)) as sb:
        generate_store(sb, n, args.lines, seed=1, open_fraction=0.3)
        ws = Workspace(sb, "pacing", BRICKOWL_RATE_LIMIT=f"{per_minute:g}")
        try:
            sb.brickowl.rate_limit = (count, window)  # an empty window: the run starts fresh
            sb.reset_calls()
            result = ws.cli("sync", "--provider", "brickowl")
            calls = provider_calls(sb, "brickowl")
            allowed = calls / per_minute * 60.0  # the limit's steady rate
            report.add("BrickOwl calls", calls, f"> {count} (more than one window)", calls > count)
            report.add("sync exit", result.code, "0", result.code == 0)
            report.add("throttled (429) answers", sb.brickowl.throttled, "0", sb.brickowl.throttled == 0)
            report.add("time the limit allows (calls / rate)", fmt_s(allowed))
            report.add("sync wall", fmt_s(result.wall), f"<= {fmt_s(allowed * 1.10)} (+10%)",
                       result.wall <= allowed * 1.10, timed=True)
            report.add("sync wall / allowed", f"{result.wall / allowed:.3f}")
            report.notes.append("time the limit allows = calls / the limit's rate; a sliding window would let a first "
                                f"burst of {count} through at once, but even pacing never meets a 429 and leaves the "
                                "window to other tools sharing the key")
        finally:
            ws.cleanup()
    return report



# ------------------------------------------------------------------------------- one run deadline
REAL_RATE, CRON_MINUTES, PACED = 600.0, 15.0, 0.95  # BrickOwl's limit a minute; the cron interval; pacing margin


def bench_deadline(args) -> Report:
    """Both marketplaces backfill at once under one run deadline, the sandbox's BrickOwl rate limit
    on (scaled); then what the real 600 a minute allows, computed from the calls measured."""
    count, window = args.window_calls, args.window
    per_minute = count * 60.0 / window
    n = args.orders
    report = Report(f"One run deadline: both marketplaces backfill {n} orders at once, BrickOwl rate-limited "
                    f"({count} per {window:g} s)")
    with sandbox(rate_limit=(count, window)) as sb:
        generate_store(sb, n, args.lines, seed=1, open_fraction=0.3)
        ws = Workspace(sb, "deadline", BRICKOWL_RATE_LIMIT=f"{per_minute:g}")
        try:
            ws.import_inventory()
            sb.brickowl.rate_limit = (count, window)  # an empty window: the run starts fresh
            sb.reset_calls()
            # BrickOwl's calls, paced: 1 list + 2 per order + the id_lookups of this store's parts (about 25)
            bo_paced = (2 * n + 1 + min(n, 25)) / (per_minute * PACED) * 60.0
            deadline = max(2.0, round(bo_paced / 0.6))  # BrickOwl needs ~60% of it: more than a fixed half
            result = ws.cli("sync", "--run-deadline", f"{deadline:g}")
            with sqlite3.connect(ws.db) as conn:
                stored = dict(conn.execute("select provider, count(*) from orders group by provider").fetchall())
                synced = {row[0] for row in conn.execute(
                    "select provider from sync_state where last_synced_at is not null")}
            bo_calls = provider_calls(sb, "brickowl")
            bo_needs = bo_calls / (per_minute * PACED) * 60.0
            report.add("run deadline (BrickOwl needs ~60% of it)", fmt_s(deadline))
            report.add("BrickOwl calls (orders + id_lookup), paced time", f"{bo_calls}, {fmt_s(bo_needs)}",
                       f"> {fmt_s(deadline / 2)} (a fixed half)", bo_needs > deadline / 2)
            report.add("sync exit; marketplaces completed", f"{result.code}; {', '.join(sorted(synced)) or 'none'}",
                       "0; both", result.code == 0 and synced == {"bricklink", "brickowl"})
            report.add("orders stored: BrickLink / BrickOwl", f"{stored.get('bricklink', 0)} / "
                       f"{stored.get('brickowl', 0)}", f"{n} / {n}",
                       (stored.get("bricklink", 0), stored.get("brickowl", 0)) == (n, n))
            report.add("throttled (429) answers", sb.brickowl.throttled, "0", sb.brickowl.throttled == 0)
            report.add("sync wall (both at once) / BrickOwl's paced time", f"{fmt_s(result.wall)} / {fmt_s(bo_needs)}",
                       "<= 1.25x (BrickLink rides along)", result.wall <= bo_needs * 1.25, timed=True)
        finally:
            ws.cleanup()
    per_order = (bo_calls - 1) / n  # measured: 2 order calls each, and the id_lookups this store needed
    rate = REAL_RATE * PACED
    for orders in (2500, 5000):
        calls = 1 + 2 * orders
        minutes = calls / rate
        if orders == 5000:  # issue 24's target, out of reach at two calls an order: printed, said, not gated
            report.add(f"[real 600/min] {orders} BrickOwl orders: {calls} order calls", f"{minutes:.1f} min",
                       f"<= {CRON_MINUTES:g} min (issue 24): not reachable, see the note")
        else:
            report.add(f"[real 600/min] {orders} BrickOwl orders: {calls} order calls", f"{minutes:.1f} min",
                       "<= 10 min (the run deadline)", minutes <= 10.0)
    most = int((10.0 * rate - 1) // 2)
    report.add("[real 600/min] most BrickOwl orders one run completes (600 s deadline)", f"{most}",
               f"was {int((5.0 * rate - 1) // 2)} with a fixed half")
    report.notes.append(f"measured {per_order:.2f} BrickOwl calls per order here (2 order calls + id_lookups, "
                        "which a store's parts need once ever); the real rows count the 2 order calls alone, paced "
                        f"at {PACED:.0%} of 600/min: a 5,000-order backfill needs 10,001 calls, more than a "
                        "15-minute run allows at 600 a minute (9,000): no concurrency reaches it while BrickOwl "
                        "answers one order in two calls")
    return report

# ------------------------------------------------------------------------------- budget
def bench_budget(args) -> Report:
    n, budget = args.orders, args.budget
    report = Report(f"BrickLink daily budget: {n} orders, BRICKLINK_DAILY_BUDGET={budget}")
    with sandbox() as sb:
        generate_store(sb, n, args.lines, seed=1, open_fraction=0.3)
        open_ids = {str(i) for i, o in sb.bricklink.orders.items()
                    if o.status in ("PENDING", "PAID", "PROCESSING", "READY", "PACKED")}
        ws = Workspace(sb, "budget", BRICKLINK_DAILY_BUDGET=str(budget))
        try:
            ws.import_inventory()
            sb.reset_calls()
            first = ws.cli("sync", "--provider", "bricklink")
            used = provider_calls(sb, "bricklink")
            stderr = [x for x in first.stderr.splitlines() if x.strip()]
            with sqlite3.connect(ws.db) as conn:
                stored = {r[0] for r in conn.execute("select order_id from orders where provider = 'bricklink'")}
            report.add("run 1: calls made", used, f"= budget {budget}", used == budget)
            report.add("run 1: exit code", first.code, "1 (stopped)", first.code == 1)
            budget_lines = [x for x in stderr if "budget" in x]
            report.add("run 1: the stop message", f"{len(budget_lines)} line (of {len(stderr)} on stderr)",
                       "one line naming the budget", len(budget_lines) == 1 and stderr[-1] == budget_lines[0])
            report.notes.append(f"run 1 stderr, last line: {stderr[-1] if stderr else '(none)'}")
            report.add("run 1: open orders saved", f"{len(open_ids & stored)} of {len(open_ids)}",
                       "all open before any closed (budget allowing)",
                       open_ids <= stored if budget - 2 >= len(open_ids) else stored <= open_ids)
            report.add("run 1: orders saved", len(stored), f"= calls - 2 lists = {budget - 2}", len(stored) == budget - 2)
            status = json.loads(ws.cli("status", "--json").stdout or "{}")
            today = {p["provider"]: p["calls_today"] for p in status.get("providers", [])}
            report.add("status --json calls_today (bricklink)", today.get("bricklink"), f"= {used}",
                       today.get("bricklink") == used)

            sb.reset_calls()
            again = ws.cli("sync", "--provider", "bricklink")
            report.add("run 2, same day: calls made", provider_calls(sb, "bricklink"), "0 (budget spent)",
                       provider_calls(sb, "bricklink") == 0 and again.code == 1)

            # the next UTC day: yesterday's count no longer applies
            with sqlite3.connect(ws.db) as conn:
                conn.execute("update _api_calls set day = date(day, '-1 day')")
            runs, refetched = 0, 0
            while True:
                runs += 1
                sb.reset_calls()
                before = stored
                result = ws.cli("sync", "--provider", "bricklink")
                fetched = fetched_orders(sb)["bricklink"]
                refetched += len(fetched & before)
                with sqlite3.connect(ws.db) as conn:
                    stored = {r[0] for r in conn.execute("select order_id from orders where provider = 'bricklink'")}
                    conn.execute("update _api_calls set day = date(day, '-1 day')")
                if result.code == 0 or runs > 2 * n // max(1, budget - 2) + 2:
                    break
            report.add("next days: runs to finish", runs)
            report.add("next days: already-saved orders fetched again", refetched, "0", refetched == 0)
            report.add("next days: all orders stored, last run ok", f"{len(stored)} of {n}, exit {result.code}",
                       f"{n}, exit 0", len(stored) == n and result.code == 0)
        finally:
            ws.cleanup()
    return report


# ------------------------------------------------------------------------------- local
def build_big_db(path: Path, n_orders: int, lines_per_order: int) -> None:
    """A database of n_orders orders (half BrickLink, half BrickOwl, 20% open) written directly."""
    import random

    from marketsync.store import open_db

    db = open_db(path)
    db.conn.close()
    rng = random.Random(7)
    conn = sqlite3.connect(path)
    opened = ("pending", "paid", "paid", "processing", "packed")
    closed = ("shipped", "completed", "completed", "completed", "cancelled")
    base = time.time() - 3 * 365 * 86400
    with conn:
        lots = [(f"p{i}", i % 40, "new", f"B{i:03d}", 100) for i in range(500)]
        conn.executemany("insert into inventory (business_account_id, part_number, color_id, condition, location, "
                         "quantity, quantity_reserved) values ('default', ?, ?, ?, ?, ?, 0)", lots)
        order_rows, line_rows = [], []
        for i in range(1, n_orders + 1):
            provider = "bricklink" if i % 2 else "brickowl"
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + i * (3 * 365 * 86400 / n_orders)))
            # a store's open orders are its newest (the last 1%); older ones are shipped, completed, cancelled
            status = closed[rng.randrange(len(closed))] if i < n_orders * 0.99 else opened[rng.randrange(len(opened))]
            order_rows.append((i, "default", provider, str(10_000_000 + i), status, status.upper(), f"buyer{i % 997}",
                               when, when, lines_per_order, lines_per_order * 3, "10.00", "13.50", "USD", i, "{}"))
            for j in range(lines_per_order):
                lot = rng.randrange(500) if rng.random() > 0.05 else None
                line_rows.append((i, "default", provider, str(10_000_000 + i), f"1:{j}", f"p{j}", 11, "new", 3,
                                  None if lot is None else lot + 1, "{}"))
            if len(order_rows) >= 20_000:
                _flush_big(conn, order_rows, line_rows)
        _flush_big(conn, order_rows, line_rows)
    conn.execute("analyze")
    conn.close()


def _flush_big(conn, order_rows, line_rows) -> None:
    conn.executemany("insert into orders (id, business_account_id, provider, order_id, status, provider_status, "
                     "buyer_name, date_ordered, date_status_changed, lot_count, piece_count, subtotal, grand_total, "
                     "currency, fingerprint, raw) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", order_rows)
    conn.executemany("insert into order_items (order_ref, business_account_id, provider, order_id, line_key, "
                     "part_number, color_id, condition, quantity, inventory_id, raw) "
                     "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", line_rows)
    order_rows.clear()
    line_rows.clear()


def build_open_db(path: Path, n_orders: int, lines_per_order: int, closed: int = 0) -> None:
    """n_orders open orders over 500 lots, every line reserved (a ledger row each), and ``closed``
    older shipped orders whose lines were reserved and then shipped (two ledger rows each): the
    history a pick list must not pay for. The open orders and their rows are the same whatever
    ``closed`` is."""
    import random

    from marketsync.store import open_db

    open_db(path).conn.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany("insert into inventory (business_account_id, part_number, color_id, condition, location, "
                         "quantity, quantity_reserved) values ('default', ?, ?, 'new', ?, 10000, 0)",
                         [(f"p{i}", i % 40, f"{'ABCDEFGH'[i % 8]}{i // 8}") for i in range(500)])
        for first, count, status in ((1, n_orders, "paid"), (n_orders + 1, closed, "shipped")):
            rng = random.Random(3 if status == "paid" else 4)
            orders, lines, ledger = [], [], []
            for i in range(first, first + count):
                provider = "bricklink" if i % 2 else "brickowl"
                placed = "2026-11-01T00:00:00Z" if status == "paid" else "2025-01-01T00:00:00Z"
                orders.append((i, provider, str(20_000_000 + i), status, status.upper(), placed, "{}"))
                for j in range(lines_per_order):
                    lot = rng.randrange(500) + 1
                    lines.append((i, provider, str(20_000_000 + i), f"1:{j}", f"p{lot - 1}", lot, "{}"))
                    ledger.append((lot, i, provider, str(20_000_000 + i), f"1:{j}", 3, 0, "reserve", placed))
                    if status == "shipped":
                        ledger.append((lot, i, provider, str(20_000_000 + i), f"1:{j}", -3, 3, "shipped", placed))
            conn.executemany("insert into orders (id, business_account_id, provider, order_id, status, "
                             "provider_status, date_ordered, raw) values (?, 'default', ?, ?, ?, ?, ?, ?)", orders)
            conn.executemany("insert into order_items (order_ref, business_account_id, provider, order_id, line_key, "
                             "part_number, color_id, condition, quantity, inventory_id, raw) "
                             "values (?, 'default', ?, ?, ?, ?, 11, 'new', 3, ?, ?)", lines)
            conn.executemany("insert into reservations (business_account_id, inventory_id, order_ref, provider, "
                             "order_id, line_key, quantity, consumed, reason, created_at) "
                             "values ('default', ?, ?, ?, ?, ?, ?, ?, ?, ?)", ledger)
        conn.execute("update inventory set quantity_reserved = (select coalesce(sum(quantity), 0) from reservations "
                     "r where r.inventory_id = inventory.id)")
    conn.close()


def pick_list_behind_history(args, tmp: Path, alone: Path, report: Report) -> None:
    """The pick list of the same open orders behind ``--pick-closed`` shipped ones, against none:
    its cost follows the open orders, not the ledger's history (issue 24). The same rows, CPU of
    the fastest of ``repeat`` runs each, alternating."""
    behind = tmp / "history.db"
    build_open_db(behind, args.pick_orders, 5, closed=args.pick_closed)
    outputs, cpu = {}, {}
    for path in (alone, behind):
        env = {**clean_environ(), "MARKETSYNC_DB": str(path)}
        best = timed_cli(env, tmp, ["picklist", "--json"], args.repeat)
        outputs[path], cpu[path] = best.stdout, best.cpu
    with sqlite3.connect(behind) as conn:
        history = conn.execute("select count(*) from reservations r join orders o on o.id = r.order_ref "
                               "where o.status = 'shipped'").fetchone()[0]
    report.add(f"pick list behind {args.pick_closed} shipped orders ({history} ledger rows): same rows",
               outputs[alone] == outputs[behind], "True", outputs[alone] == outputs[behind])
    ratio = cpu[behind] / cpu[alone]
    report.add(f"pick list CPU: behind {args.pick_closed} shipped / none",
               f"{fmt_s(cpu[behind])} / {fmt_s(cpu[alone])} = {ratio:.2f}x", "<= 1.10x", ratio <= 1.10, timed=True)


def timed_cli(env: dict, cwd: Path, args: list[str], repeat: int) -> Child:
    """The fastest of ``repeat`` runs (the least disturbed by other load on the machine)."""
    results = [child([PY, "-m", "marketsync", *args], env, cwd) for _ in range(repeat)]
    for r in results:
        if r.code not in (0, 1) or (r.code and args[0] != "status"):
            raise SystemExit(f"marketsync {' '.join(args)} failed: {r.stderr}")
    return min(results, key=lambda r: r.wall)


def import_time_ms(module: str, repeat: int = 5) -> float:
    """Fastest cumulative -X importtime figure of ``module`` (microseconds -> ms)."""
    figures = []
    for _ in range(repeat):
        out = subprocess.run([PY, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True,
                             env=clean_environ(), cwd=tempfile.gettempdir())
        for text in out.stderr.splitlines():
            parts = [p.strip() for p in text.split("|")]
            if len(parts) == 3 and parts[2] == module:
                figures.append(int(parts[1]) / 1000)
    return min(figures)


def bench_local(args) -> Report:
    report = Report(f"Local work: a {args.db_orders}-order database, start-up, the write path")
    report.notes.append(f"CLI figures: fastest of {args.repeat} runs (wall), with that run's CPU time")
    tmp = Path(tempfile.mkdtemp(prefix="marketsync-local-"))
    try:
        path = tmp / "big.db"
        started = time.perf_counter()
        build_big_db(path, args.db_orders, args.db_lines)
        report.notes.append(f"built {args.db_orders} orders x {args.db_lines} lines (last 1% open) directly with "
                            f"sqlite3 in {time.perf_counter() - started:.1f} s (not part of any figure)")
        env = {**clean_environ(), "MARKETSYNC_DB": str(path)}
        walls: dict[str, float] = {}
        for cmd, target in ((["orders"], 0.5), (["orders", "--open"], 0.5), (["orders", "--status", "paid"], 0.5),
                            (["orders", "--provider", "brickowl", "--since", "30d"], 0.5),
                            (["orders", "--json", "--limit", "100"], 0.5), (["status"], 0.5),
                            (["status", "--json"], 0.5), (["--help"], 0.15), (["sync", "--help"], 0.15)):
            r = timed_cli(env, tmp, cmd, args.repeat)
            walls[" ".join(cmd)] = r.wall
            report.add(f"marketsync {' '.join(cmd)}", f"{fmt_s(r.wall)} (CPU {fmt_s(r.cpu)})", f"< {fmt_s(target)}",
                       r.wall < target, timed=True)
        r = timed_cli(env, tmp, ["orders", "--json", "--limit", "0"], 1)
        report.add(f"marketsync orders --json --limit 0 (all {args.db_orders} rows)", fmt_s(r.wall))
        output_memory(env, tmp, args.db_orders, report)
        r = timed_cli(env, tmp, ["--version"], args.repeat)
        py = min(child([PY, "-c", "pass"], env, tmp).wall for _ in range(args.repeat))
        report.add("python -c pass / marketsync --version", f"{fmt_s(py)} / {fmt_s(r.wall)}")
        for name, most in (("status", 8.0), ("--help", 4.0)):
            report.add(f"marketsync {name} / python -c pass", f"{walls[name] / py:.1f}x", f"<= {most:g}x",
                       walls[name] <= most * py, timed=True)
        ms = import_time_ms("marketsync.cli")
        report.add("import marketsync.cli (-X importtime, cumulative)", f"{ms:.0f} ms", "< 60 ms", ms < 60, timed=True)
        picking = tmp / "open.db"
        build_open_db(picking, args.pick_orders, 5)
        pick_env = {**clean_environ(), "MARKETSYNC_DB": str(picking)}
        for cmd in (["picklist"], ["picklist", "--printable"], ["picklist", "--json"]):
            r = timed_cli(pick_env, tmp, cmd, args.repeat)
            report.add(f"marketsync {' '.join(cmd)} ({args.pick_orders} open orders x 5 lines)",
                       f"{fmt_s(r.wall)} (CPU {fmt_s(r.cpu)})", "< 1 s", r.wall < 1, timed=True)
        pick_list_behind_history(args, tmp, picking, report)
        heavy = [m for m in ("requests", "sqlite_utils", "rich", "marketsync.app.order_sync")
                 if subprocess.run([PY, "-c", f"import sys, marketsync.cli; sys.exit('{m}' in sys.modules)"],
                                   env=clean_environ(), cwd=tempfile.gettempdir()).returncode]
        report.add("heavy modules imported by the CLI module", ", ".join(heavy) or "none", "none", not heavy)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_path(args, report)
    return report


def output_memory(env: dict, cwd: Path, n_orders: int, report: Report) -> None:
    """Peak RSS of ``orders --json`` / ``--csv`` of every order over the same command with ``--limit 1``
    (same imports, same file opened): what the rows themselves cost. Streamed from the cursor, flat."""
    one = timed_cli(env, cwd, ["orders", "--json", "--limit", "1"], 1)
    for flag in ("--json", "--csv"):
        r = timed_cli(env, cwd, ["orders", flag, "--limit", "0"], 1)
        rows = (len(json.loads(r.stdout)) if flag == "--json" else
                sum(1 for _ in csv.reader(io.StringIO(r.stdout))) - 1)
        report.add(f"orders {flag} of all {n_orders}: rows written", rows, f"= {n_orders}", rows == n_orders)
        delta = r.maxrss_mb - one.maxrss_mb
        report.add(f"orders {flag} of all {n_orders}: peak RSS over --limit 1",
                   f"{delta:+.1f} MB ({r.maxrss_mb:.1f} vs {one.maxrss_mb:.1f} MB)", "<= 30 MB (streamed)",
                   delta <= 30, timed=True)


MATCH_COLUMNS = ("inventory_id", "match_method", "unmatched_reason", "location", "part_number", "color_id",
                 "condition", "unmatched_kind", "alt_part_numbers", "provider_location")  # as the sync decided


def _fresh_copy(template: Path, target: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, target)
    return target


def _fetch_records(args, tmp: Path) -> tuple[Path, list]:
    """A prepared database (inventory imported, catalogue learned) and every order of a sandbox
    store fetched the way the sync's fetching threads hand them to the writer."""
    from marketsync.app import catalog
    from marketsync.app.order_sync import fetch_order
    from marketsync.config import HttpSettings
    from marketsync.providers import build_adapter
    from marketsync.store import catalog as stored_catalog
    from marketsync.store import open_store
    from marketsync.store.inventory import lot_index

    with sandbox() as sb:
        generate_store(sb, args.write_orders, args.lines, seed=1, open_fraction=0.3)
        env = sb.env()
        template = tmp / "template.db"
        csv_path = write_demo_inventory_csv(tmp / "inventory.csv")
        r = child([PY, "-m", "marketsync", "inventory", "import", str(csv_path)],
                  {**clean_environ(), "MARKETSYNC_DB": str(template)}, tmp)
        if r.code:
            raise SystemExit(f"inventory import failed: {r.stderr}")
        store = open_store(template, "default")
        index = lot_index(store)
        settings = HttpSettings(brickowl_rate_limit=None)
        fetched = []
        for provider in ("bricklink", "brickowl"):
            adapter = build_adapter(provider, settings, environ=env)
            translator = catalog.translator(store, index, adapter) if provider == "brickowl" else None
            listing = adapter.list_for_sync(first=True, open_ids=set(), since=None)
            for head in listing.summaries:  # what the sync's fetching threads hand the writer
                fetched.append(fetch_order(adapter, head, translator))
            if translator:
                with store.atomic():
                    stored_catalog.save(store, translator.take_learned())  # timed without lookups
        store.close()
    return template, fetched


def _sync_write_cpu(template: Path, target: Path, fetched: list) -> float:
    from marketsync.app.order_sync import OrderWriter, ProviderResult
    from marketsync.providers.http import CallCounter
    from marketsync.store import open_store
    from marketsync.store.inventory import lot_index

    store = open_store(_fresh_copy(template, target), "default")
    writer = OrderWriter(store, lot_index(store), ProviderResult("bench"), CallCounter())
    started = time.process_time()
    for order, lines in fetched:
        writer.add(order, lines)
    writer.flush()
    elapsed = time.process_time() - started
    store.close()
    return elapsed


def _rows_written(path: Path) -> tuple[dict, list[int], dict]:
    """The rows the sync wrote (per table: columns, rows per batch of 100 orders), their counts,
    and each line's match columns."""
    with sqlite3.connect(path) as src:
        tables = {}
        for table in ("orders", "order_items", "reservations"):
            cols = [r[1] for r in src.execute(f"pragma table_info({table})")]
            rows = src.execute(f"select {', '.join(cols)} from {table} order by id").fetchall()
            key = cols.index("id" if table == "orders" else "order_ref")
            batches: dict[int, list] = {}
            for row in rows:
                batches.setdefault((row[key] - 1) // 100, []).append(row)
            tables[table] = (cols, batches)
        counts = [src.execute(f"select count(*) from {t}").fetchone()[0] for t in tables]
        matched = {(p, o, k): rest for p, o, k, *rest in src.execute(
            f"select provider, order_id, line_key, {', '.join(MATCH_COLUMNS)} from order_items")}
    return tables, counts, matched


def _raw_connect(template: Path, target: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(_fresh_copy(template, target))
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _raw_ready(template: Path, target: Path, tables: dict) -> float:
    conn = _raw_connect(template, target)
    started = time.process_time()
    for batch in sorted(tables["orders"][1]):
        with conn:
            for table, (cols, batches) in tables.items():
                conn.executemany(f"insert into {table} ({', '.join(cols)}) values "
                                 f"({', '.join('?' * len(cols))})", batches.get(batch, []))
    elapsed = time.process_time() - started
    conn.close()
    return elapsed


def _order_row(ref: int, o, now: str) -> tuple:
    return (ref, "default", o.provider, o.order_id, o.status, o.provider_status, o.buyer_name, o.buyer_email,
            o.date_ordered and o.date_ordered.isoformat(),
            o.date_status_changed and o.date_status_changed.isoformat(), o.lot_count, o.piece_count,
            None if o.subtotal is None else str(o.subtotal), None if o.grand_total is None else str(o.grand_total),
            o.currency, o.payment_status, o.shipping_method, o.tracking_number, int(o.is_filed), o.fingerprint, now,
            o.raw_json, now)


def _line_row(ref: int, line, matched: dict) -> tuple:
    return (ref, "default", line.provider, line.order_id, line.line_key, line.batch, line.quantity,
            None if line.unit_price is None else str(line.unit_price), line.currency, line.name, line.item_type,
            line.color_name, line.provider_lot_id, line.bricklink_lot_id, line.boid, line.provider_color_id,
            line.provider_condition, line.raw_json, *matched[(line.provider, line.order_id, line.line_key)])


def _raw_from_records(template: Path, target: Path, fetched: list, tables: dict, matched: dict) -> float:
    """The same rows built from the same fetched records (raw payloads already serialised by the
    fetching threads, as the sync's are), money as text, the match columns as the sync decided
    them; then executemany."""
    from marketsync.store.orders import LINE_COLUMNS, ORDER_COLUMNS

    conn = _raw_connect(template, target)
    order_sql = (f"insert into orders (id, {', '.join(ORDER_COLUMNS)}, first_seen_at) "
                 f"values ({', '.join('?' * (len(ORDER_COLUMNS) + 2))})")
    line_cols = [c for c in LINE_COLUMNS if c not in MATCH_COLUMNS] + list(MATCH_COLUMNS)
    line_sql = f"insert into order_items ({', '.join(line_cols)}) values ({', '.join('?' * len(line_cols))})"
    res_cols, res_batches = tables["reservations"]
    res_sql = f"insert into reservations ({', '.join(res_cols)}) values ({', '.join('?' * len(res_cols))})"
    now = "2026-01-01T00:00:00Z"
    started = time.process_time()
    for start in range(0, len(fetched), 100):
        order_rows, line_rows = [], []
        for ref, (o, lines) in enumerate(fetched[start:start + 100], start=start + 1):
            order_rows.append(_order_row(ref, o, now))
            line_rows += [_line_row(ref, line, matched) for line in lines]
        with conn:
            conn.executemany(order_sql, order_rows)
            conn.executemany(line_sql, line_rows)
            conn.executemany(res_sql, res_batches.get(start // 100, []))
    elapsed = time.process_time() - started
    conn.close()
    return elapsed


def write_path(args, report: Report) -> None:
    """The sync's write path (OrderWriter: rows, matching, ledger, lot counters) vs raw executemany of
    the rows it wrote (orders, order_items, reservations), each into a copy of the same prepared
    database (inventory imported), single-threaded, CPU time (fastest of --repeat)."""
    tmp = Path(tempfile.mkdtemp(prefix="marketsync-write-"))
    try:
        from marketsync.app import collector

        template, fetched = _fetch_records(args, tmp)
        n_lines = sum(len(lines) for _, lines in fetched)
        # all three with the cycle collector held back, as the sync writes (order_sync.run_concurrently):
        # else each would pay for walking this process's heap (the sandbox's stores), not its own work
        with collector.paused():
            sync_cpu = min(_sync_write_cpu(template, tmp / "sync.db", fetched) for _ in range(args.repeat))
            tables, counts, matched = _rows_written(tmp / "sync.db")
            ready = min(_raw_ready(template, tmp / "raw.db", tables) for _ in range(args.repeat))
            built = min(_raw_from_records(template, tmp / "raw2.db", fetched, tables, matched)
                        for _ in range(args.repeat))
        report.add(f"write path: {len(fetched)} orders, {n_lines} lines -> rows (orders / items / ledger)",
                   " / ".join(map(str, counts)))
        report.add("write path: raw executemany, rows ready-made (CPU)", fmt_s(ready))
        report.add("write path: raw executemany, rows built from the records (CPU)", fmt_s(built))
        report.add("write path: sync OrderWriter, matching + ledger (CPU)", fmt_s(sync_cpu))
        report.add("write path: sync / raw, rows ready-made", f"{sync_cpu / ready:.2f}x", "<= 2.00x",
                   sync_cpu <= 2 * ready, timed=True)
        report.add("write path: sync / raw, rows built from the records", f"{sync_cpu / built:.2f}x", "<= 2.00x",
                   sync_cpu <= 2 * built, timed=True)
        report.notes.append("'rows ready-made' inserts tuples read back from the sync's database (no tuple "
                            "building); 'built from the records' builds the tuples from the same fetched records. "
                            "In both, and in the sync, the raw payloads arrive serialised: the sync's fetching "
                            "threads do that (order_sync.fetch_order), off the writer's thread")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------- main
def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")  # none: all

    p = sub.add_parser("calls", help="API call counts")
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 1000], help="orders per marketplace (one store each)")
    p.add_argument("--lines", type=int, default=5)
    p.add_argument("--changed", type=int, default=5, help="orders changed (and as many added) per marketplace")

    p = sub.add_parser("backfill", help="first sync vs plain sequential client")
    p.add_argument("--orders", type=int, default=2000, help="orders per marketplace")
    p.add_argument("--lines", type=int, default=30)
    p.add_argument("--repeat", type=int, default=3, help="pairs of runs, back to back (median)")
    p.add_argument("--latency", type=float, default=0.04, help="seconds the sandbox adds to every answer "
                   "(the latency rows)")
    p.add_argument("--latency-orders", type=int, default=150, help="orders per marketplace with latency")
    p.add_argument("--latency-repeat", type=int, default=1, help="pairs of runs with latency (0 skips those rows)")

    p = sub.add_parser("short", help="idle sync with open orders on short lots vs nothing short")
    p.add_argument("--orders", type=int, default=5000, help="orders per marketplace (30%% open)")
    p.add_argument("--lines", type=int, default=5)
    p.add_argument("--repeat", type=int, default=5, help="idle runs of each store, alternating (fastest)")

    p = sub.add_parser("memory", help="peak RSS, small vs large store")
    p.add_argument("--base", type=int, default=500, help="orders per marketplace (the smaller store)")
    p.add_argument("--large", type=int, default=5000, help="orders per marketplace")
    p.add_argument("--lines", type=int, default=20)

    p = sub.add_parser("pacing", help="BrickOwl pacing")
    p.add_argument("--real", action="store_true", help="the real 600 per 60 s (slow)")
    p.add_argument("--window-calls", type=int, default=120)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--windows", type=float, default=1.75, help="how many windows' worth of calls")
    p.add_argument("--orders", type=int, default=0, help="BrickOwl orders (default: from --windows)")
    p.add_argument("--lines", type=int, default=5)

    p = sub.add_parser("budget", help="BrickLink daily budget")
    p.add_argument("--orders", type=int, default=60, help="BrickLink orders")
    p.add_argument("--budget", type=int, default=32)
    p.add_argument("--lines", type=int, default=5)

    p = sub.add_parser("local", help="orders/status/--help on a big database, write path")
    p.add_argument("--db-orders", type=int, default=100_000)
    p.add_argument("--db-lines", type=int, default=3)
    p.add_argument("--write-orders", type=int, default=1000, help="orders per marketplace for the write path")
    p.add_argument("--pick-orders", type=int, default=2000, help="open orders for the pick list")
    p.add_argument("--pick-closed", type=int, default=100_000, help="shipped orders before them (their history)")
    p.add_argument("--lines", type=int, default=30)
    p.add_argument("--repeat", type=int, default=5)

    p = sub.add_parser("push", help="listings: reads, write calls per changed lot, planning time")
    p.add_argument("--lots", type=int, default=200, help="linked lots per marketplace in the sandbox")
    p.add_argument("--changed", type=int, default=120, help="lots sold on each marketplace")
    p.add_argument("--plan-lots", type=int, default=10_000, help="linked lots for the planning time")

    p = sub.add_parser("pull", help="re-pull of known BrickLink lots vs a plain client: peak RSS, wall")
    p.add_argument("--lots", type=int, default=100_000, help="BrickLink lots for sale")
    p.add_argument("--repeat", type=int, default=3, help="pairs of runs, alternating (median)")

    p = sub.add_parser("nonces", help="the sandbox serving many signed BrickLink calls in linear time")
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--window", type=int, default=10_000, help="calls per timed window")

    p = sub.add_parser("deadline", help="both marketplaces at once under one run deadline, BrickOwl rate-limited")
    p.add_argument("--orders", type=int, default=100, help="orders per marketplace")
    p.add_argument("--lines", type=int, default=5)
    p.add_argument("--window-calls", type=int, default=120)
    p.add_argument("--window", type=float, default=10.0)

    sub.add_parser("all", help="every benchmark with its default sizes")
    return parser, sub


# Every benchmark at a size that takes seconds (CI: ``.ci/run``). Counts are gated exactly as at full
# size; timing and ratio rows are printed but not gated (too noisy at these sizes on a shared machine).
SMALL: dict[str, list[str]] = {
    "calls": ["--sizes", "20", "--lines", "3", "--changed", "3"],
    "backfill": ["--orders", "60", "--lines", "5", "--repeat", "1", "--latency-orders", "10"],
    "short": ["--orders", "100", "--lines", "3", "--repeat", "2"],
    "memory": ["--base", "40", "--large", "160", "--lines", "5"],
    "pacing": ["--window-calls", "20", "--window", "2", "--windows", "1.5"],
    "budget": ["--orders", "20", "--budget", "12"],
    "deadline": ["--orders", "20", "--lines", "3", "--window-calls", "20", "--window", "2"],
    "local": ["--db-orders", "3000", "--write-orders", "60", "--pick-orders", "200", "--pick-closed", "3000", "--lines", "5",
              "--repeat", "1"],
    "push": ["--lots", "40", "--changed", "30", "--plan-lots", "1000"],
    "pull": ["--lots", "2000", "--repeat", "1"],
    "nonces": ["--calls", "2000", "--window", "500"],
}
BENCHES = {"calls": bench_calls, "short": bench_short, "backfill": bench_backfill, "memory": bench_memory, "pacing": bench_pacing,
           "deadline": bench_deadline, "budget": bench_budget, "local": bench_local, "push": bench_push,
           "pull": bench_pull, "nonces": bench_nonces}


def _take_flags(argv: list[str]) -> tuple[list[str], bool, str | None]:
    """``--small`` and ``--write PATH`` anywhere on the line (before or after the benchmark's name)."""
    rest, small, write = [], False, None
    items = iter(argv)
    for arg in items:
        if arg == "--small":
            small = True
        elif arg == "--write":
            write = next(items, None)
            if write is None:
                raise SystemExit("--write needs a path (docs/performance.md)")
        elif arg.startswith("--write="):
            write = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return rest, small, write


def run_one(name: str, bench_args: argparse.Namespace) -> Report:
    """One benchmark; a crash is a failed row (with its traceback on stderr), never the end of the run."""
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    try:
        report = BENCHES[name](bench_args)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported as a failed row
        traceback.print_exc()
        report = Report(f"{name}: crashed")
        report.add(f"{name} ran to the end", f"{exc.__class__.__name__}: {exc}"[:300], "no crash", False)
    report.notes.append(f"{name} took {time.perf_counter() - t0:.0f} s; 1-minute load average "
                        f"{load0:.1f} before, {os.getloadavg()[0]:.1f} after (other work on the machine)")
    return report


def main(argv: list[str] | None = None) -> int:
    global GATE_TIMING
    argv, small, write = _take_flags(list(sys.argv[1:] if argv is None else argv))
    parser, sub = build_parser()
    args = parser.parse_args(argv)
    GATE_TIMING = not small
    if write and (small or args.command not in (None, "all")):
        raise SystemExit("--write records a full run: python benchmarks/run.py all --write docs/performance.md")

    print(f"machine: {machine()}{' (--small: counts gated, timings printed)' if small else ''}")
    if args.command in (None, "all"):
        chosen = [(name, sub.choices[name].parse_args(SMALL[name] if small else [])) for name in BENCHES]
    elif small:
        chosen = [(args.command, sub.choices[args.command].parse_args(SMALL[args.command] + argv[1:]))]
    else:
        chosen = [(args.command, args)]
    started = time.perf_counter()
    reports = []
    for name, bench_args in chosen:
        reports.append(run_one(name, bench_args))
        reports[-1].print()
    failed = any(report.failed for report in reports)
    print(f"\n{'FAIL' if failed else 'PASS'} ({time.perf_counter() - started:.0f} s)")
    if write:
        write_generated(Path(write), reports, time.perf_counter() - started)
        print(f"wrote the generated section of {write}")
    return 1 if failed else 0


BEGIN, END = "<!-- generated -->", "<!-- /generated -->"


def generated_section(reports: list[Report], seconds: float) -> str:
    load = os.getloadavg()
    head = [BEGIN,
            "<!-- written by `python benchmarks/run.py all --write docs/performance.md`; do not edit by hand -->",
            "",
            f"Measured {time.strftime('%d %B %Y', time.gmtime())} on {machine()}, "
            f"{os.cpu_count()} cores shared with other work (1-minute load average {load[0]:.1f} at the end); "
            f"the whole run took {seconds:.0f} s. PASS/FAIL compare each figure with its target.",
            ""]
    return "\n".join(head + [r.markdown() for r in reports] + [END])


def write_generated(path: Path, reports: list[Report], seconds: float) -> None:
    """Replace the lines from ``<!-- generated -->`` to ``<!-- /generated -->`` (each a line of its
    own; appended at the end when absent); every other section, delimited or not, is left as it is."""
    text = path.read_text() if path.exists() else ""
    section = generated_section(reports, seconds)
    found = re.search(rf"(?ms)^{re.escape(BEGIN)}$.*?^{re.escape(END)}$", text)
    if found:
        text = text[:found.start()] + section + text[found.end():]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
