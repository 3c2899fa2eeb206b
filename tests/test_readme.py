"""The README tells the truth: its day with the sandbox runs (examples/try-the-sandbox.sh, for real,
in a subprocess), its install and test commands are the ones CI runs, its restore is the one the
suite runs, and every command and environment variable is documented (docs/cli.md, the README)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from marketsync.cli import cli
from marketsync.registry import MARKETPLACES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CLI_DOC = ROOT / "docs" / "cli.md"
SCRIPT = ROOT / "examples" / "try-the-sandbox.sh"
CI = ROOT / ".ci" / "run"

DAY_TIMEOUT = 240  # seconds: the day takes ~15 s (BrickOwl's first sync is paced at 600 requests a minute)
BL_ORDER, BO_ORDER = "23216754", "7919586"  # the sandbox's next order ids (seeded), as the README names them


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of one ``## heading`` section."""
    body = text.split(f"\n{heading}\n", 1)[1]
    return re.split(r"\n## ", body, maxsplit=1)[0]


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)


def day_lines() -> list[str]:
    """The commands of the README's day with the sandbox, comments left off."""
    (block,) = code_blocks(section(readme(), "## A day with the sandbox"))
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def every_command(group: click.Group = cli, path: tuple[str, ...] = ()):
    ctx = click.Context(group, info_name="marketsync")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield path + (name,), command
        if isinstance(command, click.Group):
            yield from every_command(command, path + (name,))


# --- the day with the sandbox ---------------------------------------------------------------------
def run_the_day(directory: Path) -> str:
    """examples/try-the-sandbox.sh in an empty folder, as a user would run it: no marketsync
    settings in the environment, the marketsync of this interpreter first on the PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MARKETSYNC_", "BRICKLINK_", "BRICKOWL_")) and k not in ("COLUMNS", "LINES")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen(["bash", str(SCRIPT)], cwd=directory, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=DAY_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script, the sandbox and any marketsync it started
        output, _ = proc.communicate()
        pytest.fail(f"examples/try-the-sandbox.sh still running after {DAY_TIMEOUT}s:\n{output}")
    assert proc.returncode == 0, output
    return output


def steps(output: str) -> list[tuple[str, list[str]]]:
    """The transcript as (command, the lines it printed): the script prints each command first."""
    out: list[tuple[str, list[str]]] = []
    for line in output.splitlines():
        if line.startswith(("$ ", "sandbox> ")):
            out.append((line, []))
        elif out:
            out[-1][1].append(line)
    return out


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def listed_at_e08(lines: list[str]) -> dict[str, tuple[int, int]]:
    """`marketsync stock | grep E08`: marketplace -> (listed, available)."""
    rows = {}
    for line in lines:
        if "│" in line and "E08" in line:
            row = cells(line)  # Marketplace, Remote lot, Lot, Bin, Part, Listed, Available, Pending, Held
            assert row[3] == "E08" and row[4] == "3001 c85 new", line
            rows[row[0]] = (int(row[5]), int(row[6]))
    assert set(rows) == {"bricklink", "brickowl"}, lines
    return rows


@pytest.mark.heavy
def test_the_day_with_the_sandbox_runs_end_to_end_and_does_what_the_readme_says(tmp_path):
    output = run_the_day(tmp_path)
    transcript = steps(output)
    said = {command: printed for command, printed in transcript}
    stock = [listed_at_e08(printed) for command, printed in transcript if command.endswith("| grep E08")]
    assert len(stock) == 4, output

    # the first sync and push: bin E08 (353 on the shelf, 1 promised to a demo order) listed at 352 on both
    assert stock[0] == {"bricklink": (352, 352), "brickowl": (352, 352)}
    # a BrickLink buyer takes 5: BrickLink took them off itself, the push lowered BrickOwl's listing
    assert said["sandbox> order bricklink 3001 85 5 E08"] == [
        f"bricklink order {BL_ORDER} placed (PAID): 5 x 3001/85 (Dark Bluish Gray) @E08, "
        "taken from lot 349401000, 347 left on it"]
    assert stock[1] == {"bricklink": (347, 347), "brickowl": (347, 347)}
    # a BrickOwl buyer takes 2 of the same lot: now BrickLink's listing is lowered
    assert said["sandbox> order brickowl 417962-50 2 E08"][0].startswith(f"brickowl order {BO_ORDER} placed")
    assert stock[2] == {"bricklink": (345, 345), "brickowl": (345, 345)}
    # ... and cancels: the 2 are released, and both listings go back up (BrickOwl does not restock itself)
    assert said[f"sandbox> status brickowl {BO_ORDER} Cancelled"] == [
        f"brickowl {BO_ORDER}: Payment Received -> Cancelled "
        "(lots unchanged: this BrickOwl store does not restock a cancelled order)"]
    assert stock[3] == {"bricklink": (347, 347), "brickowl": (347, 347)}

    (lot,) = [cells(line) for line in said["$ marketsync inventory list --location E08"] if "│ E08 " in line]
    assert lot[1:5] == ["E08", "3001", "85", "new"] and lot[-3:] == ["353", "6", "347"]  # on hand, reserved, available
    (pick,) = [cells(line) for line in said[f"$ marketsync picklist --order bricklink:{BL_ORDER}"] if "│ E08 " in line]
    assert pick[0:2] == ["E08", "3001"] and pick[-2:] == ["5", f"bricklink:{BL_ORDER} x5"]
    assert said[f"$ marketsync pick bricklink:{BL_ORDER}"] == []
    (order,) = [cells(line) for line in said["$ marketsync orders --open --limit 3"] if f"│ {BL_ORDER} " in line]
    assert order[-1] == "1/1"  # Picked

    assert not (tmp_path / "sandbox.in").exists() and not (tmp_path / "sandbox.out").exists()


def test_the_script_runs_the_readme_day_line_by_line_in_order():
    """Every line of the README's day is a line of the script (a `sandbox>` line typed into the
    sandbox, any other run as it is written), in the README's order; the script does nothing else
    but start the sandbox and read its answers."""
    script = [line.strip() for line in SCRIPT.read_text(encoding="utf-8").splitlines()]
    ran = []
    for line in script:
        if line.startswith("run '") and line.endswith("'"):
            ran.append(line[len("run '"):-1].replace('"$examples"/', "examples/"))
        elif line.startswith("in_sandbox "):
            ran.append("sandbox> " + line[len("in_sandbox "):])
    day = day_lines()
    start = day[0]
    assert start.startswith("marketsync sandbox ") and start.endswith(" > sandbox.env")
    assert any(line.startswith(start + " ") and line.endswith("&") for line in script), start
    assert ran == day[1:]
    assert f"bricklink:{BL_ORDER}" in " ".join(day) and f"brickowl {BO_ORDER}" in " ".join(day)
    assert "(examples/try-the-sandbox.sh)" in section(readme(), "## A day with the sandbox")  # linked


# --- install, tests, CI ---------------------------------------------------------------------------
def test_the_readme_demo_and_test_commands_are_what_ci_runs():
    blocks = [b.strip() for b in code_blocks(section(readme(), "## Try it"))]
    assert blocks == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install . && marketsync demo",
        "python3 -m venv .venv && . .venv/bin/activate && pip install '.[test]' && pytest",
    ]
    ci = [line.strip() for line in CI.read_text(encoding="utf-8").splitlines()
          if line.strip() and not line.strip().startswith(("#", "echo"))]
    assert "python3 -m venv .venv" in ci and ". .venv/bin/activate" in ci
    assert any(shlex.split(line)[-1] == ".[test]" and "install" in line for line in ci)
    assert ci[-1] == "pytest"  # the README's test command, last
    assert "cog --check -I . README.md docs/cli.md docs/schema.md" in ci
    assert "cog -r -I . README.md docs/cli.md docs/schema.md" in readme()


def test_the_readme_is_short():
    assert len(readme().splitlines()) < 400


# --- what the README and docs/cli.md document ------------------------------------------------------
def test_every_command_has_its_help_in_docs_cli_md_and_a_place_in_the_readme():
    doc = CLI_DOC.read_text(encoding="utf-8")
    text = readme()
    everyday = section(text, "## Everyday commands")
    for path, _command in every_command():
        name = " ".join(path)
        assert f"\n## marketsync {name}\n" in doc, f"docs/cli.md has no section for 'marketsync {name}'"
        assert f"Usage: marketsync {name} [OPTIONS]" in doc, f"docs/cli.md has no help for 'marketsync {name}'"
        assert f"(docs/cli.md#marketsync-{'-'.join(path)})" in text, f"the README does not link 'marketsync {name}'"
        if len(path) == 1:
            assert f"marketsync {name}" in everyday, f"the README's everyday commands leave out '{name}'"


def test_every_environment_variable_is_in_the_readme_configuration_table():
    table = section(readme(), "## Configuration")
    names = {p.envvar for _, command in every_command() for p in command.params
             if isinstance(p, click.Option) and isinstance(p.envvar, str)}
    names |= {p.envvar for p in cli.params if isinstance(p, click.Option) and isinstance(p.envvar, str)}
    for marketplace in MARKETPLACES.values():
        names |= {*marketplace.credentials, marketplace.url_var}
    assert {"MARKETSYNC_DB", "MARKETSYNC_PUSH", "MARKETSYNC_MAX_AGE", "BRICKOWL_API_KEY"} <= names
    for name in sorted(names):
        assert re.search(rf"^\|.*`{name}`", table, flags=re.M), f"{name} is not in the README's configuration table"
    example = (ROOT / "examples" / ".env.example").read_text(encoding="utf-8")
    for name in re.findall(r"^([A-Z][A-Z0-9_]+)=", example, flags=re.M):
        assert f"`{name}`" in table, f"examples/.env.example sets {name}, which the README does not document"


def test_the_readme_restore_is_the_restore_the_suite_runs():
    """tests/test_backup.py runs the restore lines of `marketsync backup --help` literally; the
    README's are the same lines."""
    text = CliRunner().invoke(cli, ["backup", "--help"]).stdout
    helped = [line.strip() for line in
              text.split("Restore, with no marketsync running")[1].split("\n\n")[0].splitlines()[1:] if line.strip()]
    backups = section(readme(), "## Setting up your store").split("### Backups and restore", 1)[1]
    restore = [block for block in code_blocks(backups) if "mkdir damaged" in block]
    assert len(restore) == 1
    assert [line.strip() for line in restore[0].splitlines() if line.strip()] == helped


def test_the_exit_codes_table_has_every_code_the_cli_uses():
    from marketsync import errors

    table = section(readme(), "## Exit codes")
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    assert codes == {errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_USAGE, errors.EXIT_LOCKED, 130}
