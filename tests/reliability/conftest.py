"""Fixtures of the reliability suite; the helpers live in ``helpers.py``.

The top-level ``tests/conftest.py`` fixtures (``clean_env``, ``run``, ``proc``, ``sandbox``,
``creds``, ``demo_sandbox``, ``demo_creds``) are available too.
"""

from __future__ import annotations

import pytest

from marketsync.sandbox import Sandbox

from .helpers import build_demo_world


@pytest.fixture(scope="module")
def shared_demo(tmp_path_factory):
    """A demo world shared by a module's tests: they must not change the stores (faults are cleared)."""
    with Sandbox(demo=True) as sb:
        sb.brickowl.rate_limit = None
        world = build_demo_world(tmp_path_factory.mktemp("demo-world"), sb)
        yield world
        assert not sb.errors, sb.errors[0]


@pytest.fixture
def world(shared_demo, monkeypatch):
    """The shared demo world with its credentials in the environment and no faults queued."""
    shared_demo.sb.clear_faults()
    shared_demo.sb.reset_calls()
    for name, value in shared_demo.env().items():
        monkeypatch.setenv(name, value)
    yield shared_demo
    shared_demo.sb.clear_faults()


@pytest.fixture
def own_world(monkeypatch, tmp_path):
    """A demo world of this test's own, free to change the marketplaces."""
    world_dir = tmp_path / "_world"
    world_dir.mkdir()
    with Sandbox(demo=True) as sb:
        sb.brickowl.rate_limit = None
        built = build_demo_world(world_dir, sb)
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield built
