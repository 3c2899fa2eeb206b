"""The figures docs/reliability.md quotes, counted from the reliability suite itself.

    python tests/reliability/figures.py                 # the table, from the suite's case lists
    python tests/reliability/figures.py --write         # ... and put it into docs/reliability.md
    MARKETSYNC_RELIABILITY_REPORT=/tmp/rel pytest tests/reliability
    python tests/reliability/figures.py --report /tmp/rel   # plus what that run measured

Every count comes from the module constants the tests are parametrised with (so a case added
to a test is counted here), never typed by hand. ``test_figures.py`` fails when the table in
the doc is not the one this script prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make `reliability` importable
    sys.path.insert(0, str(HERE.parent))

DOC = HERE.parent.parent / "docs" / "reliability.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def figures() -> dict[str, int]:
    import test_backup as backups  # tests/test_backup.py (tests/ is on the path: see above)
    from reliability import test_bad_input as bad
    import test_status as status  # tests/test_status.py
    import test_everyday as everyday  # tests/test_everyday.py
    from reliability import test_crash as crash
    from reliability import test_deadline as deadline
    from reliability import test_push_crash as push_crash
    from reliability import test_faults as faults
    from reliability import test_generated_input as generated
    from reliability import test_hang as hang
    from reliability import test_overlap as overlap
    from reliability import test_properties as props
    from reliability import test_secrets as secrets

    outcomes = [faults.expected(*case) for case in faults.FAULT_CASES]
    endpoints = {(p, e) for p, e, _, _ in faults.FAULT_CASES} | {("bricklink", "GET /orders/{id}"),
                                                                  ("bricklink", "GET /inventories")}
    fault_kinds = set(faults.TRANSIENT) | {f for fs in faults.REFUSALS.values() for f in fs} | {"hang"}
    f = {
        "fault kinds (every one the sandbox can inject)": len(fault_kinds),
        "endpoints faulted (every one a command calls)": len(endpoints),
        "fault x endpoint x once/persistent scenarios": len(faults.FAULT_CASES) + len(faults.VANISHED_CASES)
        + len(faults.PULL_CASES),
        "— of which retried and recovered": outcomes.count("recovered") + sum(
            1 for fault, mode in faults.VANISHED_CASES + faults.PULL_CASES if fault in faults.TRANSIENT and mode == "once"),
        "— of which failed one provider cleanly": outcomes.count("failed") + sum(
            1 for fault, mode in faults.VANISHED_CASES + faults.PULL_CASES
            if not (fault in faults.TRANSIENT and mode == "once")),
        "— of which degraded (catalog lookups wait, run succeeds)": outcomes.count("degraded"),
        "later-run failures (last_synced_at kept, recovery equals a twin)": len(faults.LATER_SYNC_CASES),
        "half-way failures (poisoned order, daily budget)": len(faults.MIDWAY_CASES) + 1,
        "hung-marketplace scenarios": hang.HANG_SCENARIOS,
        "dripping-marketplace runs (request and run deadlines held, the other marketplace synced)": _cases(deadline),
        "kill -9 points (sync), CI default": crash.DEFAULT_KILL_POINTS,
        "kill -9 points during pushes to both marketplaces (every listing exact after)": 3 * (push_crash.KILLS // 2),
        "lost-credential scenarios (sync loud, status keeps the row)": _cases(status, "credential")
        + _cases(status, "never_set_up"),
        "kill -9 points (inventory import creating a database)": crash.IMPORT_KILL_POINTS,
        "concurrent marketsync processes started": sum(n for n, _ in overlap.CONCURRENT_SYNC_CASES)
        + sum(overlap.SIMULTANEOUS_CASES) + len(overlap.MIXED_WRITERS) + overlap.ALIASED_SYNCS
        + overlap.OTHER_CONCURRENT,
        "bad inventory files": len(bad.BAD_INVENTORY_FILES) + len(bad.ODD_BUT_VALID_INVENTORY_FILES)
        + len(bad.MISSING_INVENTORY_PATHS),
        "bad database files x commands": len(bad.DB_CASES) + len(bad.DIRECTORY_DB_COMMANDS) + 1
        + len(bad.READ_ONLY_READERS) + len(bad.READ_ONLY_WRITERS),
        "bad configuration values": len(bad.BAD_ENV),
        "unknown providers and statuses": len(bad.UNKNOWN_PROVIDER_COMMANDS) + len(bad.UNKNOWN_STATUSES),
        "absurd marketplace payloads": len(bad.ABSURD_PAYLOADS),
        "secret scenarios x verbosity levels": len(secrets.SECRET_CASES),
        "commands given generated command lines (every one but the sandbox server)": len(generated.COMMANDS),
        "— their options and arguments, each given generated values in turn": len(generated.TARGETS),
        "— edge-value command lines (each parameter, each edge value of its kind)": sum(
            len(generated.edge_lines(path, index)) for path, index in generated.TARGETS if path not in generated.FEWER),
        "— generated command lines per parameter, at most (hypothesis, derandomised)": generated.EXAMPLES,
        "output piped into a reader that stops early (head -1, pipefail)": len(bad.PIPE_CASES),
        "backups restored with the documented steps and verified": len(backups.RESTORED),
        "backups that cannot be written (full disk, read-only directory)": len(backups.FAILURES),
        "first-week defects, each a test through the real CLI (tests/test_everyday.py)": _cases(everyday),
        "— option combinations a mode would ignore, refused (exit 2)": len(everyday.IGNORED_COMBINATIONS),
        "— runs killed before their report whose problems the next run says": _cases(everyday, "killed"),
        "— dripping marketplace: requests before it is not asked again in the run": everyday.DRIP_REQUESTS,
        "random event histories (hypothesis, derandomised)": props.MAX_EXAMPLES,
        "— steps per history, at most": props.STEPS,
        "— kinds of event": len(props.EVENTS),
    }
    f["bad inputs in all"] = (f["bad inventory files"] + f["bad database files x commands"]
                              + f["bad configuration values"] + f["unknown providers and statuses"]
                              + f["absurd marketplace payloads"])
    return f


def _cases(module, word: str = "") -> int:
    """The test cases of ``module`` (whose name holds ``word``): each parametrized case counts."""
    count = 0
    for name in dir(module):
        test = getattr(module, name)
        if not name.startswith("test_") or word not in name or not callable(test):
            continue
        marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
        cases = 1
        for mark in marks:
            cases *= len(mark.args[1])
        count += cases
    return count


def table() -> str:
    rows = ["| what the suite tries | count |", "|---|---:|"]
    rows += [f"| {name} | {count:,} |" for name, count in figures().items()]
    return "\n".join(rows)


def measured(report_dir: Path) -> str:
    """What one run recorded (MARKETSYNC_RELIABILITY_REPORT): kills by where they landed, events played."""
    out = []
    kills_file = report_dir / "kills.json"
    if kills_file.exists():
        data = json.loads(kills_file.read_text())
        totals = data["orders"]
        everything = sum(totals.values())
        phases = {"before any order was written": 0, "between BrickLink's commit and BrickOwl's": 0,
                  "part-way through one marketplace's orders": 0, "after every order was written": 0}
        for kill in data["kills"]:
            held = kill["orders_held"]
            if sum(held.values()) == 0:
                phases["before any order was written"] += 1
            elif sum(held.values()) == everything:
                phases["after every order was written"] += 1
            elif held["bricklink"] == totals["bricklink"] and held["brickowl"] == 0:
                phases["between BrickLink's commit and BrickOwl's"] += 1
            else:
                phases["part-way through one marketplace's orders"] += 1
        instants = sorted(k["instant"] for k in data["kills"])
        out.append(f"kill -9: {len(data['kills'])} kills in {data['chains']} chains (seed {data['seed']}), "
                   f"instants {instants[0]:.3f}-{instants[-1]:.3f} s after start "
                   f"(an uninterrupted run took {data['calibrated_run_seconds']:.2f} s)")
        out += [f"  {count:4d} {phase}" for phase, count in phases.items()]
    props_file = report_dir / "properties.json"
    if props_file.exists():
        data = json.loads(props_file.read_text())
        played = data["played"]
        out.append(f"hypothesis: {data['examples']} histories, {sum(played.values())} events played: "
                   + ", ".join(f"{k} {v}" for k, v in sorted(played.items())))
    readers_file = report_dir / "readers.json"
    if readers_file.exists():
        data = json.loads(readers_file.read_text())
        out.append(f"readers: {data['reads_during_one_sync']} reads during one sync, saw the order count go "
                   f"{' -> '.join(str(n) for n in sorted(set(data['orders_seen'])))}")
    return "\n".join(out)


def write_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n{table()}\n{END}{tail}", encoding="utf-8")


def doc_table() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text.partition(START)[2].partition(END)[0].strip()


if __name__ == "__main__":
    args = sys.argv[1:]
    print(table())
    if "--write" in args:
        write_doc()
        print(f"\nwritten to {DOC}")
    if "--report" in args:
        print()
        print(measured(Path(args[args.index("--report") + 1])))
