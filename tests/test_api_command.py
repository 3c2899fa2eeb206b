"""`marketsync api PROVIDER PATH [KEY=VALUE...]`: one authenticated GET, JSON out, secrets masked."""

from __future__ import annotations

import json
import time

import pytest

BL_LINE = {"no": "3001", "color_id": 11, "quantity": 2, "remarks": "A01"}
BO_LINE = {"boid": "487300-38", "color_id": 38, "ordered_quantity": 2, "personal_note": "B02"}


def secrets_of(sb) -> list[str]:
    return [v for k, v in sb.env().items() if not k.endswith("_API_URL")]


def assert_clean(sb, *texts):
    for text in texts:
        for secret in secrets_of(sb):
            assert secret not in text, f"secret leaked: {text!r}"


def test_bricklink_orders_prints_the_json(creds, run):
    oid = creds.bricklink.add_order(status="PAID", lines=[BL_LINE])
    result = run("api", "bricklink", "/orders", "direction=in")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [o["order_id"] for o in data] == [oid] and data[0]["status"] == "PAID"
    assert creds.requests[-1][2:] == ("/orders", {"direction": "in"})
    assert_clean(creds, result.stdout, result.stderr)


def test_signed_query_with_commas_and_minus(creds, run):
    creds.bricklink.add_order(status="PAID", lines=[BL_LINE])
    creds.bricklink.add_order(status="PURGED", lines=[BL_LINE])
    result = run("api", "bricklink", "orders", "direction=in", "status=-purged,-cancelled", "filed=false")
    assert result.exit_code == 0, result.stderr
    assert [o["status"] for o in json.loads(result.stdout)] == ["PAID"]


def test_brickowl_view_prints_json_with_the_key_masked(creds, run):
    key = creds.brickowl.api_key
    oid = creds.brickowl.add_order(lines=[BO_LINE], buyer_note=f"my key is {key}, oops")
    result = run("api", "brickowl", "/order/view", f"order_id={oid}")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["order_id"] == oid
    assert data["buyer_note"] == "my key is ***, oops"  # even a secret echoed in the data is masked
    assert_clean(creds, result.stdout, result.stderr)
    assert creds.requests[-1][3] == {"order_id": oid, "key": key}  # the key was really sent


def test_non_ascii_json_is_printed_as_is(creds, run):
    creds.brickowl.add_order(buyer_name="Zoë Ångström", lines=[BO_LINE])
    result = run("api", "brickowl", "/order/list")
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["status"] == "Payment Received"
    oid = json.loads(result.stdout)[0]["order_id"]
    view = run("api", "brickowl", "/order/view", f"order_id={oid}")
    assert "Zoë Ångström" in view.stdout


@pytest.mark.parametrize("bad", ["direction", "=in", ""])
def test_a_bad_key_value_is_a_usage_error(creds, run, bad):
    result = run("api", "bricklink", "/orders", bad)
    assert result.exit_code == 2
    assert f"{bad!r} is not KEY=VALUE" in result.stderr and result.stdout == ""
    assert sum(creds.calls.values()) == 0


def test_an_unknown_provider_is_a_usage_error(creds, run):
    result = run("api", "ebay", "/orders")
    assert result.exit_code == 2
    assert "ebay" in result.stderr and "bricklink" in result.stderr and "brickowl" in result.stderr
    assert sum(creds.calls.values()) == 0


@pytest.mark.parametrize("provider, names", [
    ("bricklink", ["BRICKLINK_CONSUMER_KEY", "BRICKLINK_CONSUMER_SECRET", "BRICKLINK_TOKEN_VALUE",
                   "BRICKLINK_TOKEN_SECRET"]),
    ("brickowl", ["BRICKOWL_API_KEY"]),
])  # fmt: skip
def test_missing_credentials_exit_2_naming_the_variables(run, provider, names):
    result = run("api", provider, "/orders")
    assert result.exit_code == 2
    assert all(name in result.stderr for name in names)
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_partial_credentials_name_the_missing_ones(run, monkeypatch):
    monkeypatch.setenv("BRICKLINK_CONSUMER_KEY", "abcd")
    monkeypatch.setenv("BRICKLINK_TOKEN_VALUE", "efgh")
    result = run("api", "bricklink", "/orders")
    assert result.exit_code == 2
    assert "BRICKLINK_CONSUMER_SECRET" in result.stderr and "BRICKLINK_TOKEN_SECRET" in result.stderr
    assert "BRICKLINK_CONSUMER_KEY" not in result.stderr
    assert "abcd" not in result.stderr


def test_provider_errors_are_one_masked_line_exit_1(creds, run):
    key = creds.brickowl.api_key
    creds.inject("brickowl", "GET /order/list", "error_string", times=None, message=f"key {key} is suspended")
    result = run("api", "brickowl", "/order/list")
    assert result.exit_code == 1
    assert result.stderr == "Error: brickowl: GET /order/list refused: key *** is suspended\n"
    assert result.stdout == ""
    assert creds.calls[("brickowl", "GET /order/list")] == 1


def test_ip_mismatch_is_explained(creds, run):
    creds.inject("bricklink", "GET /orders", "ip_mismatch", times=None)
    result = run("api", "bricklink", "/orders")
    assert result.exit_code == 1
    assert "TOKEN_IP_MISMATCHED" in result.stderr and "0.0.0.0" in result.stderr
    assert_clean(creds, result.stderr)


def test_wrong_bricklink_secret_is_an_auth_error_without_the_secret(creds, run, monkeypatch):
    wrong = creds.bricklink.consumer_secret[::-1]
    monkeypatch.setenv("BRICKLINK_CONSUMER_SECRET", wrong)
    result = run("api", "bricklink", "/orders")
    assert result.exit_code == 1
    assert "SIGNATURE_INVALID" in result.stderr and "credentials" in result.stderr
    assert wrong not in result.stderr
    assert_clean(creds, result.stderr)


def test_transient_faults_are_retried_by_the_command(creds, run):
    creds.inject("bricklink", "GET /orders", "html503", times=2)
    result = run("api", "bricklink", "/orders")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert creds.calls[("bricklink", "GET /orders")] == 3


def test_retries_option_caps_attempts(creds, run):
    creds.inject("brickowl", "GET /order/list", "500", times=None)
    result = run("api", "brickowl", "/order/list", env={"MARKETSYNC_HTTP_RETRIES": "1"})
    assert result.exit_code == 1
    assert "gave up after 2 attempts" in result.stderr
    assert creds.calls[("brickowl", "GET /order/list")] == 2


def test_the_timeout_comes_from_marketsync_http_timeout(creds, run):
    creds.inject("bricklink", "GET /orders", "hang", times=None, seconds=10)
    started = time.monotonic()
    result = run("api", "bricklink", "/orders", env={"MARKETSYNC_HTTP_TIMEOUT": "0.3", "MARKETSYNC_HTTP_RETRIES": "0"})
    assert time.monotonic() - started < 5  # not the 10 s hang
    assert result.exit_code == 1
    assert result.stderr == "Error: bricklink: GET /orders timed out after 0.3s\n"


def test_verbose_in_process_logs_requests_but_no_secret(creds, run):
    creds.inject("brickowl", "GET /order/list", "500", times=1)
    result = run("-vv", "api", "brickowl", "/order/list", "limit=5")
    assert result.exit_code == 0, result.stderr
    assert "brickowl GET /order/list -> 500" in result.stderr
    assert "retrying" in result.stderr
    assert "brickowl GET /order/list -> 200" in result.stderr
    assert_clean(creds, result.stdout, result.stderr)


def test_verbose_subprocess_masks_everything(creds, proc):
    """As cron runs it: a separate process talking to the sandbox over loopback."""
    creds.brickowl.add_order(lines=[BO_LINE])
    creds.inject("brickowl", "GET /order/list", "html503", times=1)
    ok = proc("-vv", "api", "brickowl", "/order/list", "limit=5")
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)) == 1
    assert "GET /order/list -> 503" in ok.stderr and "GET /order/list -> 200" in ok.stderr
    assert_clean(creds, ok.stdout, ok.stderr)

    creds.inject("bricklink", "GET /orders", "auth_in_200", times=None)
    failed = proc("-vv", "api", "bricklink", "/orders", "direction=in")
    assert failed.returncode == 1
    assert "SIGNATURE_INVALID" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert_clean(creds, failed.stdout, failed.stderr)

    key = creds.brickowl.api_key
    creds.inject("brickowl", "GET /order/view", "error_string", times=None, message=f"bad key={key}")
    leaked = proc("-vv", "api", "brickowl", "/order/view", "order_id=1")
    assert leaked.returncode == 1 and "key=***" in leaked.stderr
    assert_clean(creds, leaked.stdout, leaked.stderr)
