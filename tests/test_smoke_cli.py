"""The command exists, answers --help/--version, and the demo works with no credentials."""

import os
import sqlite3
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


def test_demo_refuses_to_replace_a_file_that_is_not_a_demo_database(run, tmp_path):
    (tmp_path / "notes.txt").write_text("my notes\n")
    assert run("inventory", "import", "--db", "real.db", str(write_inventory(tmp_path))).exit_code == 0
    for name in ("notes.txt", "real.db"):
        result = run("demo", "--db", name)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1
        assert f"{name} is not a marketsync demo database" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"
    assert not (tmp_path / "notes.txt.lock").exists()
    assert sqlite3.connect(tmp_path / "real.db").execute("select count(*) from inventory").fetchone()[0] == 1
    assert run("demo", "--db", "fresh.db").exit_code == 0
    assert run("demo", "--db", "fresh.db").exit_code == 0  # a demo database is replaced
    forced = run("demo", "--db", "notes.txt", "--force")
    assert forced.exit_code == 0


def write_inventory(tmp_path):
    path = tmp_path / "inv.csv"
    path.write_text("part_number,color_id,condition,location,quantity\n3001,11,new,A1,5\n")
    return path
