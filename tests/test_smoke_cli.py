"""The command exists, answers --help/--version, and the demo works with no credentials."""

import os
import stat

from marketsync import __version__


def test_version_and_help(run):
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.stdout
    for command in (["-h"], ["sync", "-h"], ["orders", "-h"], ["reserve", "-h"], ["inventory", "import", "-h"],
                    ["status", "-h"], ["orders", "show", "-h"], ["map", "-h"], ["api", "-h"], ["demo", "-h"]):
        result = run(*command)
        assert result.exit_code == 0, command
        assert "Usage: marketsync" in result.stdout


def test_python_dash_m_works(proc):
    result = proc("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_demo_syncs_both_marketplaces_without_credentials(proc, tmp_path):
    result = proc("demo")
    assert result.returncode == 0, result.stderr
    assert "bricklink" in result.stdout and "brickowl" in result.stdout
    assert "61 orders in marketsync-demo.db" in result.stdout  # 60 seeded, and the sale that shows a push
    assert "listing(s) brought to what is available" in result.stderr
    assert "then a BrickLink buyer took 2 x" in result.stderr and "on brickowl" in result.stderr
    mode = stat.S_IMODE(os.stat(tmp_path / "marketsync-demo.db").st_mode)
    assert mode == 0o600
