"""Shared fixtures: a clean environment, the loopback sandbox, and ways to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from marketsync.cli import cli
from marketsync.sandbox import QUIRKS, Sandbox

CONFIG_PREFIXES = ("MARKETSYNC_", "BRICKLINK_", "BRICKOWL_")

# The suite starts hundreds of interpreters (`python -m marketsync` as cron runs it, pytest's
# workers): each compiles every module it imports unless bytecode may be cached, whatever the
# machine's PYTHONDONTWRITEBYTECODE says (set here before the workers start, so they inherit it).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

# Fast but real: retries really happen, just without long waits; BrickOwl pacing is tested on its own.
FAST = {
    "MARKETSYNC_RETRY_BACKOFF": "0.01",
    "MARKETSYNC_HTTP_TIMEOUT": "5",
    "BRICKOWL_RATE_LIMIT": "1000000",
}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core. Many tests wait on the network, a child process or a
    deadline; a second worker per core runs while they wait (on 2 cores: 4 workers)."""
    return 2 * (os.cpu_count() or 1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The heavy tests first: started last, one of them would keep a worker busy long after the
    others ran out of tests (longest first is how a few long jobs spread over workers best)."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """Every test starts in an empty working directory with no marketsync configuration."""
    for name in list(os.environ):
        if name.startswith(CONFIG_PREFIXES) or name in ("COLUMNS", "LINES"):  # widths: set by the tests that test them
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    return tmp_path


# The shapes of real captures (marketsync/sandbox: Sandbox(quirks=...)) that every test meets. Four
# are left to tests/test_real_payloads.py, which switches them on per test: they drop fields whose
# exact values tests/test_brickowl_adapter.py asserts (full_con and type of an item; updated_time
# and customer_email of a view).
PER_TEST_QUIRKS = frozenset({"no_full_con", "no_type", "no_updated_time", "no_customer_email"})
TEST_QUIRKS = frozenset(QUIRKS) - PER_TEST_QUIRKS


@pytest.fixture
def sandbox():
    """Empty BrickLink and BrickOwl stores on 127.0.0.1, answering with real captures' quirks."""
    with Sandbox(demo=False, quirks=TEST_QUIRKS) as sb:
        sb.brickowl.rate_limit = None
        yield sb
    assert not sb.errors, sb.errors[0]  # a bug in the emulator must not pass as a marketplace fault


@pytest.fixture
def demo_sandbox():
    """The seeded demo store (about 30 orders on each marketplace, every status), with quirks."""
    with Sandbox(demo=True, quirks=TEST_QUIRKS) as sb:
        sb.brickowl.rate_limit = None
        yield sb
    assert not sb.errors, sb.errors[0]


@pytest.fixture
def creds(monkeypatch, sandbox):
    """Credentials and URLs of the empty sandbox in the environment."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    return sandbox


@pytest.fixture
def demo_creds(monkeypatch, demo_sandbox):
    for name, value in demo_sandbox.env().items():
        monkeypatch.setenv(name, value)
    return demo_sandbox


class Run:
    """Runs the real click command in-process (fast) and keeps stdout and stderr apart."""

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None):
        runner = CliRunner()
        return runner.invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=False)


@pytest.fixture
def run():
    return Run()


def run_process(*args: str, env: dict | None = None, cwd: str | Path | None = None, timeout: float = 60,
                input: str | None = None) -> subprocess.CompletedProcess:
    """The installed command as cron would run it: a separate process, no terminal."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "marketsync", *map(str, args)], capture_output=True, text=True,
        env=full_env, cwd=cwd, timeout=timeout, input=input,
    )


@pytest.fixture
def proc():
    return run_process
