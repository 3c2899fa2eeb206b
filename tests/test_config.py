"""Configuration: environment, ``.env`` in the working directory, flags; and the errors they cause.

Precedence: a flag beats the real environment, which beats ``.env``, which beats the default.
Every configuration mistake is one line on stderr, exit 2, with nothing created; secrets never
appear in any output.
"""

from __future__ import annotations

import json
import os

import click
import pytest

from marketsync.cli import cli
from support import HEADER
from support import one_line_error as _one_line_error

BRICKLINK_VARS = ("BRICKLINK_CONSUMER_KEY", "BRICKLINK_CONSUMER_SECRET", "BRICKLINK_TOKEN_VALUE",
                  "BRICKLINK_TOKEN_SECRET")


def one_line_error(result, code: int = 2) -> str:
    return _one_line_error(result, code)


def dotenv(tmp_path, *lines: str) -> None:
    (tmp_path / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / ".env").chmod(0o600)  # as the README says


@pytest.fixture
def stock(tmp_path):
    path = tmp_path / "stock.csv"
    path.write_text(f"{HEADER}\n3001,5,new,A01,10\n", encoding="utf-8")
    return path


def databases(tmp_path) -> list[str]:
    return sorted(p.name for p in tmp_path.glob("*.db"))


# --- where the database is -------------------------------------------------------------------
def test_dotenv_is_used_when_the_variable_is_not_in_the_environment(run, tmp_path, stock):
    dotenv(tmp_path, "# the shop's settings", "", "export MARKETSYNC_DB='from dotenv.db'")
    assert run("inventory", "import", stock).exit_code == 0
    assert databases(tmp_path) == ["from dotenv.db"]
    assert len(json.loads(run("inventory", "list", "--json").stdout)) == 1


def test_the_real_environment_wins_over_dotenv(run, tmp_path, stock, monkeypatch):
    dotenv(tmp_path, "MARKETSYNC_DB=dotenv.db")
    monkeypatch.setenv("MARKETSYNC_DB", "real.db")
    assert run("inventory", "import", stock).exit_code == 0
    assert databases(tmp_path) == ["real.db"]


def test_the_db_flag_wins_over_environment_and_dotenv(run, tmp_path, stock, monkeypatch):
    dotenv(tmp_path, "MARKETSYNC_DB=dotenv.db")
    monkeypatch.setenv("MARKETSYNC_DB", "real.db")
    assert run("inventory", "import", stock, "--db", "flag.db").exit_code == 0
    assert databases(tmp_path) == ["flag.db"]


def test_the_default_database_is_in_the_working_directory(run, tmp_path, stock):
    assert run("inventory", "import", stock).exit_code == 0
    assert databases(tmp_path) == ["marketsync.db"]


def test_the_installed_command_reads_dotenv_too(proc, tmp_path, stock):
    dotenv(tmp_path, "MARKETSYNC_DB=proc.db")
    result = proc("inventory", "import", stock)
    assert result.returncode == 0, result.stderr
    assert databases(tmp_path) == ["proc.db"]


# --- a broken .env -----------------------------------------------------------------------------
@pytest.mark.parametrize("bad_line", ["this is not a setting", "MARKETSYNC_DB='never closed"])
def test_malformed_dotenv_line_is_a_usage_error_naming_the_line(run, tmp_path, stock, bad_line):
    dotenv(tmp_path, "# settings", "MARKETSYNC_DB=shop.db", bad_line, "MARKETSYNC_ACCOUNT=a")
    for command in (["orders"], ["inventory", "import", "stock.csv"]):
        message = one_line_error(run(*command), 2)
        assert ".env line 3" in message and "NAME=value" in message
        assert "***" not in message  # the message itself must survive secret masking
    assert databases(tmp_path) == []


def test_a_bad_timeout_in_dotenv_names_the_variable(run, tmp_path, monkeypatch):
    monkeypatch.delenv("MARKETSYNC_HTTP_TIMEOUT")  # the test default would win over .env
    dotenv(tmp_path, "MARKETSYNC_HTTP_TIMEOUT=abc")
    message = one_line_error(run("sync"), 2)
    assert "MARKETSYNC_HTTP_TIMEOUT" in message and "'abc'" in message
    assert databases(tmp_path) == []


def test_a_bad_timeout_in_the_environment_or_flag(run, tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETSYNC_HTTP_TIMEOUT", "0")
    message = one_line_error(run("sync"), 2)
    assert message.startswith("Error: MARKETSYNC_HTTP_TIMEOUT:")
    message = one_line_error(run("sync", "--http-timeout", "soon"), 2)
    assert "--http-timeout" in message and "'soon'" in message


# --- the business account ----------------------------------------------------------------------
@pytest.mark.parametrize("where, value", [
    ("environment", ""), ("environment", "   "), ("dotenv", ""), ("dotenv", "' '"), ("flag", ""),
])
def test_an_empty_account_is_a_clear_error(run, tmp_path, stock, monkeypatch, where, value):
    args = ["inventory", "import", "stock.csv"]
    if where == "environment":
        monkeypatch.setenv("MARKETSYNC_ACCOUNT", value)
    elif where == "dotenv":
        dotenv(tmp_path, f"MARKETSYNC_ACCOUNT={value}")
    else:
        args += ["--account", value]
    message = one_line_error(run(*args), 2)
    assert "MARKETSYNC_ACCOUNT" in message and "empty" in message
    assert databases(tmp_path) == []


def test_an_explicit_account_flag_beats_an_empty_environment(run, tmp_path, stock, monkeypatch):
    monkeypatch.setenv("MARKETSYNC_ACCOUNT", "")
    assert run("inventory", "import", stock, "--account", "shop-a").exit_code == 0


def test_accounts_keep_their_inventory_apart(run, tmp_path, stock, monkeypatch):
    monkeypatch.setenv("MARKETSYNC_ACCOUNT", "shop-a")
    assert run("inventory", "import", stock).exit_code == 0
    (tmp_path / "b.csv").write_text(f"{HEADER}\n3001,5,new,A01,77\n3002,1,used,Z9,1\n", encoding="utf-8")
    assert run("inventory", "import", "b.csv", "--account", "shop-b").exit_code == 0

    def lots(*args):
        return {(r["part_number"], r["quantity"]) for r in json.loads(run("inventory", "list", "--json", *args).stdout)}

    assert lots() == {("3001", 10)}  # the same lot key, separate rows per account
    assert lots("--account", "shop-b") == {("3001", 77), ("3002", 1)}
    monkeypatch.setenv("MARKETSYNC_ACCOUNT", "default")
    assert lots() == set()
    assert databases(tmp_path) == ["marketsync.db"]


def test_accounts_keep_their_orders_apart(run, demo_creds, monkeypatch):
    monkeypatch.setenv("MARKETSYNC_ACCOUNT", "shop-a")
    assert run("sync").exit_code == 0
    rows = json.loads(run("orders", "--json").stdout)
    assert len(rows) == 60
    assert json.loads(run("orders", "--json", "--account", "shop-b").stdout) == []
    ref = f"{rows[0]['provider']}:{rows[0]['order_id']}"
    assert run("orders", "show", ref).exit_code == 0
    message = one_line_error(run("orders", "show", ref, "--account", "shop-b"), 1)
    assert rows[0]["order_id"] in message


# --- credentials ---------------------------------------------------------------------------------
def test_sync_without_any_credentials_names_every_variable(run, tmp_path):
    message = one_line_error(run("sync"), 2)
    for name in (*BRICKLINK_VARS, "BRICKOWL_API_KEY"):
        assert name in message
    assert os.listdir(tmp_path) == []


def test_sync_of_a_marketplace_without_its_credentials_names_them(run, tmp_path, monkeypatch):
    monkeypatch.setenv("BRICKOWL_API_KEY", "owl-secret-123456")
    message = one_line_error(run("sync", "--provider", "bricklink"), 2)
    assert all(name in message for name in BRICKLINK_VARS)
    assert "owl-secret-123456" not in message and "BRICKOWL" not in message
    assert os.listdir(tmp_path) == []


def test_half_set_bricklink_credentials_name_the_missing_ones_and_hide_the_set_ones(run, tmp_path, monkeypatch):
    monkeypatch.setenv("BRICKLINK_CONSUMER_KEY", "ck-secret-abcdef")
    monkeypatch.setenv("BRICKLINK_TOKEN_SECRET", "ts-secret-abcdef")
    result = run("sync")
    message = one_line_error(result, 2)
    assert "BRICKLINK_CONSUMER_SECRET" in message and "BRICKLINK_TOKEN_VALUE" in message
    assert "BRICKLINK_CONSUMER_KEY" not in message
    assert "ck-secret-abcdef" not in result.stderr + result.stdout
    assert "ts-secret-abcdef" not in result.stderr + result.stdout


def test_an_unknown_provider_is_a_usage_error(run, tmp_path):
    message = one_line_error(run("sync", "--provider", "ebay"), 2)
    assert "'ebay'" in message and "bricklink" in message and "brickowl" in message
    assert os.listdir(tmp_path) == []


def test_a_bad_api_url_is_a_usage_error_before_any_file_is_made(run, tmp_path, monkeypatch):
    monkeypatch.setenv("BRICKOWL_API_KEY", "owl-secret-123456")
    monkeypatch.setenv("BRICKOWL_API_URL", "ftp://api.brickowl.com/v1")
    message = one_line_error(run("sync"), 2)
    assert "BRICKOWL_API_URL" in message
    assert os.listdir(tmp_path) == []


def test_credentials_from_dotenv_are_used(run, sandbox, tmp_path):
    order_id = sandbox.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 5, "quantity": 2}])
    dotenv(tmp_path, *(f"{name}={value}" for name, value in sandbox.env().items()))
    result = run("sync")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(run("orders", "--json").stdout)
    assert [(r["provider"], r["order_id"]) for r in rows] == [("bricklink", str(order_id))]


def test_real_environment_credentials_win_over_dotenv(run, sandbox, tmp_path, monkeypatch):
    env = sandbox.env()
    dotenv(tmp_path, f"BRICKOWL_API_URL={env['BRICKOWL_API_URL']}", "BRICKOWL_API_KEY=stale-dotenv-key-0000")
    monkeypatch.setenv("BRICKOWL_API_KEY", env["BRICKOWL_API_KEY"])
    result = run("sync")
    assert result.exit_code == 0, result.stderr

    monkeypatch.setenv("BRICKOWL_API_KEY", "wrong-environment-key-1111")
    dotenv(tmp_path, f"BRICKOWL_API_URL={env['BRICKOWL_API_URL']}", f"BRICKOWL_API_KEY={env['BRICKOWL_API_KEY']}")
    result = run("sync")
    assert result.exit_code == 1  # the environment's wrong key was used, not .env's right one
    assert "Traceback" not in result.stderr and "brickowl" in result.stderr
    assert "wrong-environment-key-1111" not in result.stderr + result.stdout


def test_secrets_never_reach_stdout_stderr_or_the_log(run, demo_creds, tmp_path):
    secrets = [v for k, v in demo_creds.env().items() if not k.endswith("_URL")]
    result = run("-vv", "--log-file", "run.log", "sync")
    assert result.exit_code == 0, result.stderr
    log = (tmp_path / "run.log").read_text()
    assert "bricklink:" in log and "brickowl:" in log and "GET /orders" in result.stderr
    for command in (["orders"], ["status", "--json"], ["-vv", "api", "brickowl", "/order/list"],
                    ["-vv", "api", "bricklink", "/orders"]):
        other = run(*command)
        assert other.exit_code == 0, (command, other.stderr)
        for secret in secrets:
            assert secret not in other.stdout + other.stderr, command
    for secret in secrets:
        assert secret not in result.stdout + result.stderr + log


# --- the command surface --------------------------------------------------------------------------
def _commands(command=cli, path=()):
    yield path, command
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):  # the top group loads its commands lazily
            yield from _commands(command.get_command(context, name), (*path, name))


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=lambda p: " ".join(p) or "marketsync")
def test_every_command_has_help_with_an_example(run, path):
    for flag in ("-h", "--help"):
        result = run(*path, flag)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith(f"Usage: marketsync {' '.join(path)}".rstrip())
        assert "Example" in result.stdout


def test_a_world_readable_env_file_gets_one_warning_line(run, tmp_path):
    env = tmp_path / ".env"
    env.write_text("MARKETSYNC_ACCOUNT=shop\n")
    env.chmod(0o644)
    result = run("orders", "--json")
    assert result.stderr.splitlines()[0] == (f"warning: {env} can be read by other users and holds your "
                                             f"marketplace keys; run: chmod 600 {env}")
    env.chmod(0o600)
    assert "warning" not in run("orders", "--json").stderr
