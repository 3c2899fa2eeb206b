"""``marketsync --help`` lists every command with its own summary, without importing a module per
command (start-up is a cost every cron run and every `--help` pays: docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from marketsync.cli import COMMANDS, cli, summary


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_summary_is_the_commands_own(name):
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    for limit in (30, 45, 80, 300):
        assert summary(name).get_short_help_str(limit) == command.get_short_help_str(limit), limit


def test_the_top_level_help_lists_every_command_and_imports_none_of_them():
    code = ("import sys\nfrom marketsync.cli import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('marketsync.cli.', 'marketsync.app'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *help_lines, loaded = done.stdout.strip().splitlines()
    assert loaded == "['marketsync.cli.common']"
    listed = [line.split()[0] for line in help_lines[help_lines.index("Commands:") + 1:] if line.startswith("  ")]
    assert listed == sorted(COMMANDS)
