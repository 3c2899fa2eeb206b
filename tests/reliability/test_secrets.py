"""Secrets never leak: not to stdout, stderr, the log file, exceptions or the database, at any
verbosity, on any failure path. The BrickOwl key travels in every URL; BrickLink's four OAuth
strings sign every request. The files marketsync creates are owner-only even under umask 000.

Every scenario runs the real command with ``--log-file`` at verbosity 0, -v and -vv; after each,
all five credential values (and the wrong ones a scenario puts in) are searched for in its
output, in the log file, and in every byte of the database, its WAL and its lock file.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import error_lines

VERBOSITY = ("", "-v", "-vv")
WRONG = {"BRICKOWL_API_KEY": "0123WRONGOWLKEY4567", "BRICKLINK_TOKEN_SECRET": "0123WRONGTOKENSECRET4567"}


def _inject_all(sb, fault, **opts):
    for provider in ("bricklink", "brickowl"):
        if fault in ("ip_mismatch",) and provider == "brickowl":
            continue
        if fault in ("error_string",) and provider == "bricklink":
            continue
        sb.inject(provider, "*", fault, times=None, **opts)


def _echo_key(sb):
    key = sb.brickowl.api_key
    sb.inject("brickowl", "*", "error_string", times=None,
              message=f"Invalid request GET /v1/order/list?key={key}&limit=5 (key {key} unknown)")


# name -> how to set the scenario up (sandbox, environment dict to update), the command to run
SCENARIOS = {
    "clean sync": (None, ("sync",)),
    "500 everywhere": (lambda sb, env: _inject_all(sb, "500"), ("sync",)),
    "HTML 503 everywhere": (lambda sb, env: _inject_all(sb, "html503"), ("sync",)),
    "429 everywhere": (lambda sb, env: _inject_all(sb, "429", retry_after=0), ("sync",)),
    "connection resets": (lambda sb, env: _inject_all(sb, "reset"), ("sync",)),
    "truncated JSON": (lambda sb, env: _inject_all(sb, "malformed"), ("sync",)),
    "not JSON": (lambda sb, env: _inject_all(sb, "not_json"), ("sync",)),
    "auth error inside HTTP 200": (lambda sb, env: _inject_all(sb, "auth_in_200"), ("sync",)),
    "token bound to another IP": (lambda sb, env: _inject_all(sb, "ip_mismatch"), ("sync",)),
    "error string echoing the key and URL": (lambda sb, env: _echo_key(sb), ("sync",)),
    "hung marketplace": (lambda sb, env: (_inject_all(sb, "hang", seconds=30),
                                          env.update(MARKETSYNC_HTTP_TIMEOUT="0.2", MARKETSYNC_HTTP_RETRIES="1")),
                         ("sync",)),
    "wrong BrickOwl key": (lambda sb, env: env.update(BRICKOWL_API_KEY=WRONG["BRICKOWL_API_KEY"]), ("sync",)),
    "wrong BrickLink token secret": (lambda sb, env: env.update(BRICKLINK_TOKEN_SECRET=WRONG["BRICKLINK_TOKEN_SECRET"]),
                                     ("sync",)),
    "marketplace unreachable": (lambda sb, env: env.update(BRICKOWL_API_URL="http://127.0.0.1:9/v1",
                                                           BRICKLINK_API_URL="http://127.0.0.1:9/api",
                                                           MARKETSYNC_HTTP_RETRIES="1"), ("sync",)),
    "API URL nobody can parse": (lambda sb, env: env.update(BRICKOWL_API_URL="http://a..b/v1"), ("sync",)),
    "partial BrickLink credentials": (lambda sb, env: env.pop("BRICKLINK_TOKEN_VALUE"), ("sync",)),
    "api command, both marketplaces": (None, ("api", "brickowl", "/order/list")),
    "api command, unknown endpoint": (None, ("api", "brickowl", "/no/such/thing")),
    "api command, BrickLink refusal": (lambda sb, env: _inject_all(sb, "auth_in_200"), ("api", "bricklink", "/orders")),
    "inventory pull refused": (lambda sb, env: _inject_all(sb, "auth_in_200"), ("inventory", "pull")),
    "status after failures": (lambda sb, env: _echo_key(sb), ("status",)),
    "status --json after failures": (lambda sb, env: _echo_key(sb), ("status", "--json")),
    "orders --json": (None, ("orders", "--json")),
    "ledger --json": (None, ("reserve", "--ledger", "--json")),
}
SECRET_CASES = [(name, v) for name in SCENARIOS for v in VERBOSITY]


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory):
    """One database and one log file for the whole module: every scenario writes into them, and
    they are searched after every scenario (so a secret written by an earlier one is caught too)."""
    return tmp_path_factory.mktemp("secrets")


def _secret_values(sb) -> list[str]:
    env = sb.env()
    return [v for k, v in env.items() if not k.endswith("_URL")] + list(WRONG.values())


def _leaks(text: str, values: list[str]) -> list[str]:
    found = [v[:6] + "..." for v in values if v in text]
    for marker in ("key=", "oauth_signature=", "oauth_token="):
        start = 0
        while (at := text.find(marker, start)) >= 0:
            if not text.startswith(marker + "***", at):
                found.append(text[at:at + 40])
            start = at + 1
    return found


def test_the_leak_detector_finds_what_it_looks_for():
    values = ["ABCDEF0123456789"]
    assert _leaks("GET /v1/order/list?key=ABCDEF0123456789&x=1", values)  # the value itself
    assert _leaks("GET /v1/order/list?key=somethingelse", values)  # any unmasked key=
    assert _leaks("Authorization: OAuth oauth_token=abc", values)
    assert not _leaks("GET /v1/order/list?key=***&x=1", values)


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.is_file()]


@pytest.mark.parametrize(("name", "verbosity"), SECRET_CASES, ids=[f"{n}{v}" for n, v in SECRET_CASES])
def test_no_secret_anywhere(world, secrets_dir, name, verbosity):
    setup, command = SCENARIOS[name]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETSYNC_", "BRICKLINK_", "BRICKOWL_"))}
    env.update(world.env(), MARKETSYNC_RETRY_BACKOFF="0.01", MARKETSYNC_HTTP_TIMEOUT="5", BRICKOWL_RATE_LIMIT="1000000",
               MARKETSYNC_LOG_FILE=str(secrets_dir / "run.log"), MARKETSYNC_DB=str(secrets_dir / "ms.db"))
    if not (secrets_dir / "ms.db").exists():
        assert subprocess.run([sys.executable, "-m", "marketsync", "inventory", "import",
                               str(world.template.parent / "inventory.csv")], env=env, cwd=secrets_dir,
                              capture_output=True).returncode == 0
    if setup is not None:
        setup(world.sb, env)
    args = [verbosity] if verbosity else []
    result = subprocess.run([sys.executable, "-m", "marketsync", *args, *command], env=env, cwd=secrets_dir,
                            capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    values = _secret_values(world.sb)
    assert not _leaks(result.stdout + result.stderr, values), (result.stdout + result.stderr)[-2000:]
    for path in _files(secrets_dir):
        data = path.read_bytes()
        leaked = [v[:6] for v in values if v.encode() in data]
        assert not leaked, f"{path.name} holds a credential"
        if path.suffix in (".log",):
            assert not _leaks(data.decode("utf-8", "replace"), values)
    if name != "clean sync" and command[0] == "sync":  # a failure path really was taken
        assert error_lines(result.stderr) and result.returncode != 0, result.stderr
    if verbosity == "-vv" and command[0] == "sync" and name == "clean sync":
        assert "GET /order/list" in result.stderr  # -vv really logs every request, masked


def test_files_marketsync_creates_are_owner_only_even_under_umask_000(world, tmp_path):
    env = {**os.environ, "MARKETSYNC_LOG_FILE": str(tmp_path / "run.log")}
    result = subprocess.run([sys.executable, "-m", "marketsync", "sync", "--db", str(tmp_path / "new.db")],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            preexec_fn=lambda: os.umask(0))
    assert result.returncode == 0, result.stderr
    created = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir() if p.is_file()}
    assert {"new.db", "new.db.lock", "run.log"} <= set(created), created
    assert all(mode == 0o600 for mode in created.values()), {n: oct(m) for n, m in created.items()}


def test_loose_files_of_ours_are_made_owner_only(world, tmp_path):
    """A database restored from a backup, a log file made by hand with the default 0644."""
    db = world.fresh_db(tmp_path / "ms.db")
    log = tmp_path / "run.log"
    log.write_text("")
    os.chmod(db, 0o644)
    os.chmod(log, 0o664)
    result = subprocess.run([sys.executable, "-m", "marketsync", "--log-file", str(log), "sync", "--db", str(db)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text().strip(), "the run was logged"
