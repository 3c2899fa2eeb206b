"""Helpers of the reliability suite (issue 6): the skeptic's proof.

Everything here drives the real command (in-process through click, or ``python -m marketsync`` in
a subprocess where a process must die or overlap) against the loopback sandbox, over real HTTP,
into a real SQLite file. Nothing is mocked.

The top-level ``tests/conftest.py`` fixtures (``clean_env``, ``run``, ``proc``, ``sandbox``,
``creds``, ``demo_sandbox``, ``demo_creds``) are available.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from marketsync.cli import cli
from marketsync.sandbox import Sandbox, write_demo_inventory_csv
from support import wait_for  # noqa: F401 (the reliability tests import it from here)

FAST = {"MARKETSYNC_RETRY_BACKOFF": "0.01", "MARKETSYNC_HTTP_TIMEOUT": "5", "BRICKOWL_RATE_LIMIT": "1000000"}
CONFIG_PREFIXES = ("MARKETSYNC_", "BRICKLINK_", "BRICKOWL_")
# read at import: the clean_env fixture drops MARKETSYNC_* variables before each test
REPORT_DIR = os.environ.get("MARKETSYNC_RELIABILITY_REPORT")


def report(name: str, data) -> None:
    """Record what a test measured (kills, events played...) for figures.py, when asked to."""
    if REPORT_DIR:
        import json

        os.makedirs(REPORT_DIR, exist_ok=True)
        with open(os.path.join(REPORT_DIR, f"{name}.json"), "w") as fh:
            json.dump(data, fh, indent=1)


# --- running the command ---------------------------------------------------------------------
def invoke(*args, env: dict | None = None):
    """The real click command in-process with an explicit environment (for module-scoped setup)."""
    unset = {k: None for k in os.environ if k.startswith(CONFIG_PREFIXES)}
    return CliRunner().invoke(cli, [str(a) for a in args], env={**unset, **FAST, **(env or {})},
                              catch_exceptions=False)


def start(*args, cwd, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """``python -m marketsync ARGS`` in the background, as cron runs it (no terminal)."""
    return subprocess.Popen(
        [sys.executable, "-m", "marketsync", *map(str, args)], cwd=cwd, env=env if env is not None else dict(os.environ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, **kwargs,
    )




def kill9(proc: subprocess.Popen) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    return proc.communicate(timeout=20)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


# --- looking at the database -----------------------------------------------------------------
def query(path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def snapshot(path, provider: str | None = None) -> dict[str, list]:
    """Everything a sync decides, without timestamps or row ids of the ledger.

    Two equal snapshots are the same end state: the same orders with the same lines, matched to
    the same lots, the same stock on hand and reserved, and the same ledger rows (as a multiset,
    so a doubled row shows).
    """
    where, params = ("where provider = ?", [provider]) if provider else ("", [])
    snap = {
        "orders": query(path, "select provider, order_id, status, provider_status, fingerprint, buyer_name, "
                              "lot_count, piece_count, grand_total, currency, is_filed, manual_release "
                              f"from orders {where} order by provider, order_id", params),
        "lines": query(path, "select provider, order_id, line_key, batch, part_number, color_id, condition, location, "
                             "quantity, unit_price, name, inventory_id, match_method, unmatched_reason "
                             f"from order_items {where} order by provider, order_id, line_key", params),
        "ledger": sorted(Counter(query(
            path, "select provider, order_id, line_key, inventory_id, quantity, consumed, reason "
                  f"from reservations {where}", params)).items()),
    }
    if provider is None:
        snap["inventory"] = query(path, "select id, part_number, color_id, condition, location, quantity, "
                                        "quantity_reserved from inventory order by id")
    return snap


def diff(a: dict, b: dict) -> str:
    """A short human description of how two snapshots differ (for assertion messages)."""
    out = []
    for key in a:
        left, right = a[key], b.get(key) or []
        if left != right:
            only_a = [x for x in left if x not in right][:3]
            only_b = [x for x in right if x not in left][:3]
            out.append(f"{key}: {len(left)} vs {len(right)} rows; only left {only_a}; only right {only_b}")
    return "\n".join(out) or "equal"


def ledger_count(path) -> int:
    return query(path, "select count(*) from reservations")[0][0]


def sync_state(path, provider: str) -> dict:
    rows = query(path, "select last_synced_at, last_error, list_window_start from sync_state "
                       "where provider = ?", [provider])
    if not rows:
        return {"last_synced_at": None, "last_error": None, "list_window_start": None}
    return dict(zip(("last_synced_at", "last_error", "list_window_start"), rows[0]))


def assert_invariants(run, db_path) -> None:
    """``marketsync reserve --check``: every ledger invariant holds."""
    result = run("reserve", "--check", "--db", db_path)
    assert result.exit_code == 0, f"invariants violated:\n{result.stdout}{result.stderr}"


def copy_db(src, dest) -> Path:
    """A consistent copy of a (WAL) database file, through SQLite's backup API."""
    dest = Path(dest)
    for suffix in ("", "-wal", "-shm", ".lock"):
        if os.path.exists(f"{dest}{suffix}"):
            os.remove(f"{dest}{suffix}")
    source = sqlite3.connect(src)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    os.chmod(dest, 0o600)
    return dest


def assert_whole_orders(world, db):
    """Every order in the database carries exactly the lines the fault-free run gave it."""
    ref_lines = _lines_by_order(world.reference["lines"])
    got = snapshot(db)
    got_lines = _lines_by_order(got["lines"])
    for order in got["orders"]:
        key = order[:2]
        assert order in world.reference["orders"], f"order {key} differs from the fault-free run"
        # the lines as the marketplace sent them
        assert [_as_sent(x) for x in got_lines.get(key, [])] == [_as_sent(x) for x in ref_lines.get(key, [])], \
            f"order {key} is not whole"


def _as_sent(line):
    """provider, order, line key, batch, quantity, unit price, name: what the marketplace sent
    (part, colour, condition and lot are worked out locally and may legitimately wait)."""
    return tuple(line[i] for i in (0, 1, 2, 3, 8, 9, 10))


def _lines_by_order(lines):
    out: dict[tuple, list] = {}
    for line in lines:
        out.setdefault(line[:2], []).append(line)
    return out


# --- the shared demo world -------------------------------------------------------------------
class DemoWorld:
    """One seeded demo marketplace (30 orders on each side), an inventory database template and the
    state an uninterrupted, fault-free sync reaches from it (``reference``)."""

    def __init__(self, sb: Sandbox, template: Path, reference: dict, reference_calls: Counter, reference_db: Path):
        self.sb, self.template, self.reference = sb, template, reference
        self.reference_calls, self.reference_db = reference_calls, reference_db

    def env(self) -> dict:
        return self.sb.env()

    def fresh_db(self, dest) -> Path:
        return copy_db(self.template, dest)


def build_demo_world(tmp: Path, sb: Sandbox) -> DemoWorld:
    csv_path = write_demo_inventory_csv(tmp / "inventory.csv")
    template = tmp / "template.db"
    result = invoke("inventory", "import", csv_path, "--db", template)
    assert result.exit_code == 0, result.output
    reference_db = copy_db(template, tmp / "reference.db")
    sb.reset_calls()
    result = invoke("sync", "--db", reference_db, env=sb.env())
    assert result.exit_code == 0, result.output
    calls = Counter(sb.calls)
    sb.reset_calls()
    return DemoWorld(sb, template, snapshot(reference_db), calls, reference_db)


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
