"""No traceback, ever (issue 12, item 8): generated values at every option and argument of every
command.

The click command tree of ``marketsync.cli.cli`` is walked, so a command or option added later is
covered without touching this file. Each parameter of each command (the group's own options
included) is taken in turn: first given each edge value of its kind on a command line of its
own (numbers beyond 64 bits, NaN and infinities, blank, a newline, an escape sequence, bytes that
are not UTF-8 as the OS hands them over -- surrogate-escaped --, missing and unusable paths, ages
reaching before the year 1, malformed order references), then hypothesis builds command lines
where it holds a generated value of its type and the other parameters are left out, valid, or
now and then generated too. They run in-process against a database holding synced orders of
both marketplaces, without credentials. Every run must end in success or in one ``Error:`` line
(the last line of stderr) with exit 1, 2 or 75; an exception other than ``SystemExit`` is a
traceback and fails the test.

Not run: ``sandbox`` (serves until interrupted) and ``orders --watch`` (refreshes until
interrupted). ``demo`` starts its own loopback marketplaces and syncs a whole store: one
generated command line per parameter, no edge lines. CI plays a fixed (derandomised) set;
``MARKETSYNC_GENERATED_EXAMPLES`` asks for more per parameter (40 found nothing more).
"""

from __future__ import annotations

import os
import shutil
import traceback
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketsync.cli import cli
from marketsync.sandbox import Sandbox, write_demo_inventory_csv

from .helpers import invoke

EXAMPLES = int(os.environ.get("MARKETSYNC_GENERATED_EXAMPLES", "5"))  # command lines per parameter
FEWER = {("demo",): 1}  # each one syncs and pushes a whole demo store: one command line per parameter
NOT_RUN = {("sandbox",): "serves until interrupted"}
NOT_GENERATED = {("orders", "--watch"): "refreshes until interrupted"}
EXIT_CODES = {1, 2, 75}


def walk(group: click.Group, path: tuple[str, ...] = ()):
    context = click.Context(group)
    for name in group.list_commands(context):  # the top group loads its commands lazily
        command = group.get_command(context, name)
        assert command is not None
        yield path + (name,), command
        if isinstance(command, click.Group):
            yield from walk(command, path + (name,))


def parameters(path: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Parameter]]:
    """Every parameter a command line of ``path`` can hold: the group's (before the command),
    the command's options, then its arguments in order -- each with the path it belongs to."""
    command = TREE[path]
    return ([((), p) for p in cli.params if p.name != "version"]
            + [(path, p) for p in command.params if isinstance(p, click.Option)]
            + [(path, p) for p in command.params if isinstance(p, click.Argument)])


def generated_here(where: tuple[str, ...], param: click.Parameter) -> bool:
    names = list(getattr(param, "opts", [])) + list(getattr(param, "secondary_opts", []))
    return not any(where + (name,) in NOT_GENERATED for name in names)


TREE = dict(walk(cli))
COMMANDS = [path for path in TREE if path not in NOT_RUN]
TARGETS = [(path, index) for path in COMMANDS for index, (where, param) in enumerate(parameters(path))
           if generated_here(where, param)]  # each (command, parameter) given generated values in turn


# --- values ----------------------------------------------------------------------------------------
def _undecodable(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")  # what Python makes of argv bytes that are not UTF-8


CHARS = st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")  # argv never holds NUL
TEXT = st.one_of(
    st.text(CHARS, max_size=16),
    st.binary(min_size=1, max_size=8).filter(lambda b: b"\x00" not in b).map(_undecodable),
    st.sampled_from(["", " ", "\t", "-", "--", "\n", "\x1b[31m", "é", "🧱", "A01", "3001", "9" * 30, "0", "-1",
                     "nan", "inf", "1e309", "%s", "'; drop table orders; --", "../..", "~"]),
)
ORDER_REFS = st.one_of(
    st.sampled_from(["bricklink:1", "brickowl:1", "bricklink:", ":1", "BrickLink:  7 ", "ebay:1", "bricklink::1"]),
    st.tuples(st.sampled_from(["bricklink", "brickowl", "x"]), TEXT).map(":".join),
)
AGES = st.one_of(
    st.tuples(st.one_of(st.integers(0, 10**30), st.integers(10**6, 10**12)), st.sampled_from("mhdwyMs")).map(
        lambda t: f"{t[0]}{t[1]}"),
    st.sampled_from(["0d", "7d", "2024-05-01", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                     "2024-13-01", "2024-05-01T25:00", "²d", "١٢d", "1e9d", "-5d", "d", "7 d"]),
)
INTS = st.one_of(st.integers(-(2**70), 2**70).map(str), st.sampled_from(["-0", "1_000", "0x10", " 5", "5 ", "½"]))
FLOATS = st.one_of(INTS, st.floats().map(repr), st.sampled_from(["nan", "-nan", "inf", "-inf", "1e309", "1e-320"]))
SAFE_NAME = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00/"), min_size=1,
                    max_size=12).filter(lambda s: s not in (".", ".."))
PATHS = st.one_of(
    st.sampled_from(["marketsync.db", "ms.db", "new.db", "nope/ms.db", "", ".", "adir", "stock.csv", "bad.csv",
                     "garbage.db", "ms.db-wal", "dangling", "adir/", "./ms.db"]),
    SAFE_NAME,
    st.binary(min_size=1, max_size=8).filter(lambda b: b"\x00" not in b and b"/" not in b
                                             and b not in (b".", b"..")).map(_undecodable),
)
SPECIAL_STRINGS = {"since": AGES, "order": ORDER_REFS, "listing": ORDER_REFS, "release_order": ORDER_REFS,
                   "unrelease_order": ORDER_REFS, "ledger_order": ORDER_REFS, "orders_wanted": ORDER_REFS}


def values(param: click.Parameter) -> st.SearchStrategy[str]:
    kind = param.type
    if isinstance(kind, click.Choice):
        choices = [str(c) for c in kind.choices]
        return st.one_of(st.sampled_from(choices), st.sampled_from([c.upper() for c in choices]), TEXT)
    if isinstance(kind, (click.types.IntParamType, click.IntRange)):
        return st.one_of(INTS, TEXT)
    if isinstance(kind, (click.types.FloatParamType, click.FloatRange)):
        return st.one_of(FLOATS, TEXT)
    if isinstance(kind, click.Path):
        return PATHS
    special = SPECIAL_STRINGS.get(param.name or "")
    return st.one_of(special, TEXT) if special is not None else TEXT


# values every parameter of a kind is given first, each on a command line of its own
EDGES = {
    "int": ["99999999999999999999999", "-9223372036854775809", "9223372036854775808", "nan", "\udcff"],
    "float": ["nan", "inf", "-inf", "1e309", "-1e309"],
    "choice": ["", "\udcff", "\n"],
    "path": ["", "nope/x.db", "adir", "garbage.db", "dangling", "\udcff"],
    "text": ["", " ", "\n", "\udcff", "\x1b[2J", "9" * 40],
    "since": ["99999999d", "999999999999999999999999w", "0001-01-01T00:00:00+01:00", "²d"],
    "order": ["bricklink:\udcff", "bricklink: ", "ebay:1", "brickowl:" + "9" * 40],
}


def edges(param: click.Parameter) -> list[str]:
    kind = param.type
    if isinstance(kind, click.Choice):
        return EDGES["choice"]
    if isinstance(kind, (click.types.IntParamType, click.IntRange)):
        return EDGES["int"]
    if isinstance(kind, (click.types.FloatParamType, click.FloatRange)):
        return EDGES["float"]
    if isinstance(kind, click.Path):
        return EDGES["path"]
    if param.name == "since":
        return EDGES["since"] + EDGES["text"]
    if param.name in SPECIAL_STRINGS:
        return EDGES["order"] + EDGES["text"]
    return EDGES["text"]


def edge_lines(path: tuple[str, ...], target: int) -> list[list[str]]:
    """One command line per edge value of parameter number ``target``, every other one left out
    (the arguments before it given valid values)."""
    every = parameters(path)
    where, param = every[target]
    if isinstance(param, click.Option):
        given = [[param.opts[0]]] if param.is_flag or param.count else [[param.opts[0], v] for v in edges(param)]
        return [(option + list(path)) if not where else (list(path) + option) for option in given]
    before = [PLAIN.get(p.name or "", ["A01"])[0] if not isinstance(p.type, click.Choice) else str(p.type.choices[0])
              for _, p in every[:target] if isinstance(p, click.Argument)]
    return [list(path) + ["--"] + before + [v] for v in edges(param)]


# what a parameter is given when another one is the one under test: valid, so the generated value
# of that one is what the command has to deal with
PLAIN = {"db_path": ["ms.db", "marketsync.db"], "log_file": ["run.log"], "file": ["stock.csv"], "path": ["copy.db"],
         "since": ["7d", "2024-05-01"], "account": ["default"], "part": ["3001"], "location": ["A01"],
         "boid": ["487300"], "part_number": ["3069b"], "params": ["direction=in"]}


def plain(param: click.Parameter) -> st.SearchStrategy[str]:
    kind = param.type
    if isinstance(kind, click.Choice):
        return st.sampled_from([str(c) for c in kind.choices])
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        low = kind.min if kind.min is not None else 0
        return st.sampled_from([str(low), str(kind.max if kind.max is not None else low + 1)])
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        return st.just("1")
    if (param.name or "") in SPECIAL_STRINGS and param.name != "since":
        return st.sampled_from(["bricklink:1", "brickowl:1"])
    return st.sampled_from(PLAIN.get(param.name or "", ["A01"]))


def parameter(path: tuple[str, ...], param: click.Parameter, value=values) -> st.SearchStrategy[list[str]]:
    """The parameter given on a command line, with a generated value (never left out)."""
    if isinstance(param, click.Option):
        names = list(param.opts) + list(param.secondary_opts)
        if any(path + (name,) in NOT_GENERATED for name in names):
            return st.just([])
        if param.is_flag or param.count:
            return st.lists(st.sampled_from(names), min_size=1, max_size=2)
        given_value = st.tuples(st.sampled_from(param.opts), value(param)).map(list)
        if param.multiple:
            given_value = st.lists(given_value, min_size=1, max_size=3).map(
                lambda pairs: [a for pair in pairs for a in pair])
        if param._flag_needs_value:  # --ledger [PROVIDER:ORDER_ID]: the name alone is a value too
            return st.one_of(st.sampled_from(param.opts).map(lambda name: [name]), given_value)
        return given_value
    if param.nargs == -1:
        return st.lists(value(param), min_size=1, max_size=3)
    return value(param).map(lambda v: [v])


def command_lines(path: tuple[str, ...], target: int) -> st.SearchStrategy[list[str]]:
    """Command lines of ``path`` whose parameter number ``target`` has a generated value; each of
    the others is left out or given a valid value (so the generated one is what the command
    meets, not an earlier refusal) -- except now and then, when they are generated too."""
    every = parameters(path)
    generated = [parameter(where, p) for where, p in every]
    valid = [parameter(where, p, plain) for where, p in every]
    root = sum(1 for where, _ in every if where == ())
    first_argument = next((i for i, (_, p) in enumerate(every) if isinstance(p, click.Argument)), len(every))

    @st.composite
    def build(draw) -> list[str]:
        wild = draw(st.integers(0, 9)) == 0

        def given(index: int) -> list[str]:
            if index == target or (wild and draw(st.booleans())):
                return draw(generated[index])
            return draw(valid[index]) if draw(st.integers(0, 3)) == 0 else []

        line = [a for i in range(root) for a in given(i)] + list(path)
        options = [given(i) for i in range(root, first_argument)]
        order = draw(st.permutations(range(len(options)))) if options else []
        line += [a for i in order for a in options[i]]
        if first_argument < len(every) and draw(st.booleans()):
            line.append("--")  # what follows is arguments even when it starts with a dash
        for i in range(first_argument, len(every)):  # positional: a later one needs the earlier ones
            if i == target:
                line += draw(generated[i])
            elif i < target or draw(st.booleans()):
                line += draw(valid[i])
            else:
                break
        return line

    return build()


# --- the database the commands work on ---------------------------------------------------------------
@pytest.fixture(scope="module")
def synced_db(tmp_path_factory) -> Path:
    """Synced orders of both marketplaces (every status), their reservations and the inventory."""
    tmp = tmp_path_factory.mktemp("generated")
    csv_path = write_demo_inventory_csv(tmp / "inventory.csv")
    db = tmp / "template.db"
    with Sandbox(demo=True) as sb:
        sb.brickowl.rate_limit = None
        assert invoke("inventory", "import", csv_path, "--db", db).exit_code == 0
        result = invoke("sync", "--db", db, env=sb.env())
        assert result.exit_code == 0, result.output
    return db


@pytest.fixture
def workdir(clean_env, synced_db) -> Path:
    for name in ("marketsync.db", "ms.db"):
        shutil.copyfile(synced_db, clean_env / name)
    (clean_env / "adir").mkdir()
    (clean_env / "stock.csv").write_text("part_number,color_id,condition,location,quantity\n3001,11,new,Z9,5\n")
    (clean_env / "bad.csv").write_text("part_number,color_id\n3001,eleven\n")
    (clean_env / "garbage.db").write_bytes(os.urandom(4096))
    (clean_env / "dangling").symlink_to(clean_env / "nowhere" / "x")
    return clean_env


# --- the property ---------------------------------------------------------------------------------
def outcome_is_clean(path: tuple[str, ...], args: list[str], result) -> None:
    shown = f"marketsync {' '.join(map(repr, args))}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"{shown} raised a traceback:\n{trace}")
    assert "Traceback" not in result.stdout + result.stderr, shown
    if result.exit_code == 0:
        return
    assert result.exit_code in EXIT_CODES, (shown, result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    if path == ("status",) and not errors:  # status exits 1 listing unhealthy marketplaces, one line each
        assert lines and all(line.startswith(("bricklink: ", "brickowl: ")) for line in lines), (shown, result.stderr)
        return
    assert len(errors) == 1 and lines[-1] == errors[0], (shown, result.stderr)


# Found before this test existed (issue 12): each ended in a traceback. Played first, every run.
FOUND = {
    ("orders",): [["orders", "--since", "99999999d"], ["orders", "--since", "0001-01-01T00:00:00+01:00"],
                  ["orders", "--since", "²d"]],
    ("inventory", "list"): [["inventory", "list", "--color", "99999999999999999999999"],
                            ["inventory", "list", "--part", _undecodable(b"\xff")]],
    ("map",): [["map", "  ", "3001"], ["map", "487300", " "], ["map", _undecodable(b"\xff"), "3001"]],
    ("orders", "show"): [["orders", "show", "bricklink:" + _undecodable(b"\xfe")]],
    ("reserve",): [["reserve", "--release", "brickowl:" + _undecodable(b"\xff"), "--yes"]],
}


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_generated_command_lines_end_in_success_or_one_error_line(workdir, path):
    runner = CliRunner()
    for args in FOUND.get(path, []):
        outcome_is_clean(path, args, runner.invoke(cli, args, catch_exceptions=True))
    runs = 0
    for target in [index for p, index in TARGETS if p == path]:
        for args in edge_lines(path, target) if path not in FEWER else []:
            outcome_is_clean(path, args, runner.invoke(cli, args, catch_exceptions=True))
        @settings(max_examples=FEWER.get(path, EXAMPLES), deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(args=command_lines(path, target))
        def one_command_line(args):
            nonlocal runs
            runs += 1
            outcome_is_clean(path, args, runner.invoke(cli, args, catch_exceptions=True))

        one_command_line()
    assert runs >= len([1 for p, _ in TARGETS if p == path])  # every parameter really was given values


def test_every_command_and_option_is_walked():
    """The walk sees the commands the README documents, and each with its options."""
    assert {("sync",), ("orders",), ("orders", "show"), ("reserve",), ("backup",), ("inventory", "list"),
            ("map",), ("api",), ("stock", "push"), ("demo",)} <= set(COMMANDS)
    assert ("sandbox",) not in COMMANDS
    reserve = {opt for p in TREE[("reserve",)].params for opt in getattr(p, "opts", [])}
    assert {"--release", "--unrelease", "--repair", "--check", "--ledger", "--db"} <= reserve
    assert len(TARGETS) > 100
    assert (("orders",), next(i for i, (_, p) in enumerate(parameters(("orders",))) if p.name == "watch")) not in TARGETS
