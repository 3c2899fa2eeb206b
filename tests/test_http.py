"""The one HTTP layer (marketsync/providers/http.py), exercised through real adapters over loopback HTTP.

Adapters are built exactly as the app builds them (``build_adapter``) against the sandbox; only
the retry/timeout numbers are shrunk so the whole file runs in a few seconds.
"""

from __future__ import annotations

import logging
import socket
import time
import traceback

import pytest
import requests

from marketsync.config import HttpSettings
from marketsync.errors import (
    AuthError,
    BudgetExhaustedError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitedError,
    RequestRejectedError,
    TransientError,
)
from marketsync.providers import PACING_MARGIN, build_adapter
from marketsync.providers.http import (
    CallBudget,
    CallCounter,
    RetryPolicy,
    error_for_status,
    mask,
    retry_after_seconds,
    with_query,
)

BL_LINE = {"no": "3001", "color_id": 11, "quantity": 2, "remarks": "A01"}
BO_LINE = {"boid": "487300-38", "color_id": 38, "ordered_quantity": 2, "personal_note": "B02"}


@pytest.fixture
def sb(sandbox):
    return sandbox  # the conftest fixture fails the test on any emulator error


def make(sb, provider, *, retries=2, timeout=5.0, backoff=0.001, cap=0.01, budget=None, rate=None,
         counter=None, calls_today=0, environ=None):
    settings = HttpSettings(timeout=timeout, retries=retries, backoff=backoff, retry_after_cap=cap,
                            bricklink_daily_budget=budget, brickowl_rate_limit=rate)
    return build_adapter(provider, settings, counter=counter if counter is not None else CallCounter(),
                         calls_today=calls_today, environ=environ or sb.env())


def total_calls(sb, provider):
    return sum(n for (p, _), n in sb.calls.items() if p == provider)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------- error hierarchy
@pytest.mark.parametrize("status, cls, retryable", [
    (401, AuthError, False), (403, PermissionDeniedError, False), (404, NotFoundError, False),
    (429, RateLimitedError, True), (500, TransientError, True), (502, TransientError, True),
    (503, TransientError, True), (400, RequestRejectedError, False), (422, RequestRejectedError, False),
    (418, RequestRejectedError, False),
])  # fmt: skip
def test_error_for_status_picks_one_class_per_status(status, cls, retryable):
    error = error_for_status("bricklink", status, "GET /orders refused", retry_after=3)
    assert type(error) is cls
    assert error.retryable is retryable
    assert isinstance(error, ProviderError)
    assert str(error) == "bricklink: GET /orders refused"
    assert "\n" not in str(error)
    if cls is RateLimitedError:
        assert error.retry_after == 3


# ---------------------------------------------------------------------- retry policy (pure)
def test_backoff_is_exponential_capped_and_jittered():
    policy = RetryPolicy(retries=10, backoff=0.5, backoff_cap=8.0)
    error = TransientError("bricklink", "x")
    for attempt, base in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (9, 8.0)]:
        delays = {policy.delay(attempt, error) for _ in range(40)}
        assert all(base * 0.5 <= d <= base for d in delays), (attempt, delays)
        assert len(delays) > 1, "no jitter"


def test_retry_after_is_honoured_and_capped_far_below_the_cron_interval():
    policy = RetryPolicy(backoff=0.5, retry_after_cap=60.0)
    assert policy.delay(0, RateLimitedError("brickowl", "x", retry_after=7)) == 7
    assert policy.delay(3, RateLimitedError("brickowl", "x", retry_after=7)) == 7  # not the backoff
    assert policy.delay(0, RateLimitedError("brickowl", "x", retry_after=3600)) == 60
    assert policy.delay(0, RateLimitedError("brickowl", "x", retry_after=-5)) == 0
    # without Retry-After a 429 backs off like any transient fault
    assert 0.25 <= policy.delay(0, RateLimitedError("brickowl", "x")) <= 0.5
    # the defaults the CLI uses: worst case of one GET stays well inside a 15-minute cron slot
    default = RetryPolicy()
    assert default.retry_after_cap <= 120
    assert default.retries * max(default.retry_after_cap, default.backoff_cap) < 15 * 60 / 2
    assert HttpSettings().retry_after_cap == default.retry_after_cap


@pytest.mark.parametrize("header, expected", [("5", 5.0), ("0.25", 0.25), ("soon", None), (None, None)])
def test_retry_after_header_parsing(header, expected):
    response = requests.Response()
    if header is not None:
        response.headers["Retry-After"] = header
    assert retry_after_seconds(response) == expected


def test_retry_after_http_date_is_seconds_from_now():
    from email.utils import formatdate

    response = requests.Response()
    response.headers["Retry-After"] = formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds(response) <= 31
    response.headers["Retry-After"] = formatdate(time.time() - 3600, usegmt=True)
    assert retry_after_seconds(response) == 0


# ---------------------------------------------------------------------- retries over real HTTP
@pytest.mark.parametrize("provider, endpoint", [("bricklink", "GET /orders"), ("brickowl", "GET /order/list")])
def test_transient_faults_in_a_row_are_retried_until_success(sb, provider, endpoint):
    if provider == "bricklink":
        sb.bricklink.add_order(lines=[BL_LINE])
    else:
        sb.brickowl.add_order(lines=[BO_LINE])
    counter = CallCounter()
    adapter = make(sb, provider, retries=4, counter=counter)
    for fault in ("500", "html503", "reset", "not_json"):  # four different faults, then an answer
        sb.inject(provider, endpoint, fault, times=1)
    result = adapter.list_orders()
    summaries = result if provider == "bricklink" else result.summaries
    assert len(summaries) == 1
    assert sb.calls[(provider, endpoint)] == 5
    assert counter.totals == {provider: 5}  # every attempt sent counts against the quota


def test_retries_zero_means_exactly_one_attempt(sb):
    adapter = make(sb, "bricklink", retries=0)
    sb.inject("bricklink", "GET /orders", "500", times=None)
    with pytest.raises(TransientError) as caught:
        adapter.list_orders()
    assert sb.calls[("bricklink", "GET /orders")] == 1
    assert "gave up" not in str(caught.value)


def test_non_retryable_errors_are_raised_at_once(sb):
    adapter = make(sb, "bricklink", retries=4)
    with pytest.raises(NotFoundError):
        adapter.fetch_order("424242")
    assert sb.calls[("bricklink", "GET /orders/{id}")] == 1
    with pytest.raises(RequestRejectedError):
        adapter.fetch_order("not-a-number")
    assert sb.calls[("bricklink", "GET /orders/{id}")] == 2


def test_backoff_really_waits_between_attempts(sb):
    adapter = make(sb, "bricklink", retries=2, backoff=0.1)
    sb.inject("bricklink", "GET /orders", "500", times=2)
    started = time.monotonic()
    assert adapter.list_orders() == []
    # two waits: >= 0.05 (0.1 jittered) and >= 0.1 (0.2 jittered)
    assert time.monotonic() - started >= 0.15
    assert sb.calls[("bricklink", "GET /orders")] == 3


@pytest.mark.parametrize("provider, endpoint", [("bricklink", "GET /orders"), ("brickowl", "GET /order/list")])
def test_retry_after_is_honoured_on_a_429(sb, provider, endpoint):
    adapter = make(sb, provider, retries=2, backoff=0.001, cap=60)
    sb.inject(provider, endpoint, "429", times=1, retry_after=0.4)
    started = time.monotonic()
    adapter.list_orders()
    assert time.monotonic() - started >= 0.4  # the backoff alone would be ~1 ms
    assert sb.calls[(provider, endpoint)] == 2


@pytest.mark.parametrize("provider, endpoint", [("bricklink", "GET /orders"), ("brickowl", "GET /order/list")])
def test_a_huge_retry_after_is_capped(sb, provider, endpoint):
    adapter = make(sb, provider, retries=2, cap=0.05)
    sb.inject(provider, endpoint, "429", times=2, retry_after=3600)
    started = time.monotonic()
    adapter.list_orders()
    assert time.monotonic() - started < 5
    assert sb.calls[(provider, endpoint)] == 3


def test_rate_limited_gives_up_with_the_attempt_count(sb):
    adapter = make(sb, "brickowl", retries=3, cap=0.01)
    sb.inject("brickowl", "GET /order/list", "429", times=None, retry_after=1)
    with pytest.raises(RateLimitedError) as caught:
        adapter.list_orders()
    assert "gave up after 4 attempts" in str(caught.value)
    assert caught.value.retry_after == 1
    assert sb.calls[("brickowl", "GET /order/list")] == 4


# ---------------------------------------------------------------------- timeouts and dead servers
def test_every_request_has_a_timeout(sb):
    adapter = make(sb, "brickowl", retries=1, timeout=0.3)
    sb.inject("brickowl", "GET /order/list", "hang", times=None, seconds=10)
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        adapter.list_orders()
    elapsed = time.monotonic() - started
    assert str(caught.value) == "brickowl: GET /order/list timed out after 0.3s (gave up after 2 attempts)"
    assert 0.6 <= elapsed < 5  # two 0.3 s timeouts, far less than the 10 s hang
    assert sb.calls[("brickowl", "GET /order/list")] == 2


@pytest.mark.parametrize("provider", ["bricklink", "brickowl"])
def test_connection_refused_is_transient_and_retried(sb, provider):
    env = {**sb.env(), "BRICKLINK_API_URL": f"http://127.0.0.1:{free_port()}/api/store/v1",
           "BRICKOWL_API_URL": f"http://127.0.0.1:{free_port()}/v1"}  # fmt: skip
    counter = CallCounter()
    adapter = make(sb, provider, retries=2, environ=env, counter=counter)
    with pytest.raises(TransientError) as caught:
        adapter.list_orders()
    assert "connection refused" in str(caught.value)
    assert "gave up after 3 attempts" in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)  # no URL (and so no key) in the message
    assert counter.totals == {provider: 3}


def test_a_request_under_a_deadline_is_sent_from_its_callers_thread(sb, monkeypatch):
    """The total deadline is kept by the watchdog, not by handing each request to another thread
    (a thread switch or two per request was a tenth of a backfill's CPU): no thread is started
    per request, and each request is sent from the thread that asked for it."""
    import threading

    from marketsync.providers.watchdog import WatchedAdapter

    adapter = make(sb, "brickowl", retries=0)
    assert adapter.client.request_deadline  # the default 60 s: every request is watched
    caller = threading.current_thread()
    started_here, sent_from = [], []
    start, send = threading.Thread.start, WatchedAdapter.send

    def counting_start(thread):
        if threading.current_thread() is caller:  # the sandbox's own threads start elsewhere
            started_here.append(thread.name)
        start(thread)

    def recording_send(self, *args, **kwargs):
        sent_from.append(threading.current_thread())
        return send(self, *args, **kwargs)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    monkeypatch.setattr(WatchedAdapter, "send", recording_send)
    for _ in range(20):
        adapter.list_orders()
    assert sb.calls[("brickowl", "GET /order/list")] == 20
    assert sent_from == [caller] * 20
    assert set(started_here) <= {"http-watchdog"}, started_here  # the process's one watchdog, at most


@pytest.mark.parametrize("kept_alive", [False, True], ids=["new-connection", "kept-alive-connection"])
def test_a_hung_request_is_cut_at_its_deadline_and_the_next_is_served_at_once(sb, kept_alive):
    """The watchdog shuts the hung request's socket down at its deadline: the caller gets the
    deadline's error then, not when the hang ends, on a new connection as on a kept-alive one."""
    settings = HttpSettings(timeout=30, retries=0, request_deadline=0.5)
    adapter = build_adapter("brickowl", settings, counter=CallCounter(), environ=sb.env())
    if kept_alive:
        adapter.list_orders()  # its connection goes back to the pool and carries the hung request
    sb.inject("brickowl", "GET /order/list", "hang", times=1, seconds=5)
    began = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        adapter.list_orders()
    assert time.monotonic() - began < 3  # the deadline (0.5 s), not the hang (5 s)
    assert "within 0.5s (the request deadline)" in str(caught.value)
    again = build_adapter("brickowl", settings, counter=CallCounter(), environ=sb.env())
    began = time.monotonic()
    assert again.list_orders().summaries == []
    assert time.monotonic() - began < 3


def test_a_watch_ended_in_time_lets_go_of_its_socket():
    """A request that ends in time is never shut down later: its socket may be back in the pool,
    carrying another request."""
    from marketsync.providers.watchdog import Watchdog

    watchdog = Watchdog()
    left, right = socket.socketpair()
    with left, right:
        with watchdog.watching(0.05) as watch:
            watchdog.attach(left)
            assert watch.sock is left
        assert watch.done and watch.sock is None and not watch.expired


def test_the_watchdog_ends_a_blocked_read_at_the_deadline():
    from marketsync.providers.watchdog import Watchdog

    watchdog = Watchdog()
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(10)
        began = time.monotonic()
        with watchdog.watching(0.2) as watch:
            watchdog.attach(left)
            assert left.recv(1) == b""  # shut down: end of stream, long before the 10 s timeout
        assert watch.expired and time.monotonic() - began < 5


def test_a_request_whose_deadline_passed_while_connecting_is_not_sent():
    from marketsync.providers.watchdog import Watchdog

    now = [1000.0]
    watchdog = Watchdog(clock=lambda: now[0])
    left, right = socket.socketpair()
    with left, right:
        with watchdog.watching(5.0) as watch:
            now[0] += 6  # the connect took longer than the request's whole deadline
            with watchdog._lock:
                watchdog.expire_due()
            assert watch.expired
            with pytest.raises(TimeoutError):
                watchdog.attach(left)
        right.settimeout(5)
        assert right.recv(1) == b""  # shut down: nothing more could be sent on it


# ---------------------------------------------------------------------- call accounting
def test_call_counter_counts_every_attempt_and_hands_over_once(sb):
    counter = CallCounter()
    bl = make(sb, "bricklink", counter=counter)
    bo = make(sb, "brickowl", counter=counter)
    sb.inject("bricklink", "GET /orders", "html503", times=2)
    bl.list_orders()
    bo.list_orders()
    bo.list_orders()
    assert counter.totals == {"bricklink": 3, "brickowl": 2}
    assert counter.totals["bricklink"] == total_calls(sb, "bricklink")
    assert counter.take_unsaved() == {"bricklink": 3, "brickowl": 2}
    assert counter.take_unsaved() == {}
    bo.list_orders()
    assert counter.take_unsaved() == {"brickowl": 1}
    assert counter.totals == {"bricklink": 3, "brickowl": 3}  # totals only grow


def test_budget_refuses_the_call_past_the_limit_before_sending_it(sb):
    adapter = make(sb, "bricklink", budget=3)
    for _ in range(3):
        adapter.list_orders()
    with pytest.raises(BudgetExhaustedError) as caught:
        adapter.list_orders()
    assert total_calls(sb, "bricklink") == 3  # the 4th never reached the marketplace
    message = str(caught.value)
    assert message.startswith("bricklink: daily API budget of 3 calls used up")
    assert "next run" in message and "\n" not in message
    assert caught.value.retryable is False
    assert adapter.client.budget.remaining == 0


def test_budget_counts_calls_already_made_today(sb):
    adapter = make(sb, "bricklink", budget=5, calls_today=4)
    adapter.list_orders()
    with pytest.raises(BudgetExhaustedError):
        adapter.fetch_lines("1")
    assert total_calls(sb, "bricklink") == 1


def test_retries_cannot_overrun_the_budget(sb):
    adapter = make(sb, "bricklink", budget=2, retries=4)
    sb.inject("bricklink", "GET /orders", "500", times=None)
    with pytest.raises(BudgetExhaustedError):
        adapter.list_orders()
    assert total_calls(sb, "bricklink") == 2


def test_budget_is_thread_safe_and_unlimited_when_none():
    budget = CallBudget("bricklink", None)
    for _ in range(10_000):
        budget.take()
    assert budget.remaining is None
    import threading

    budget = CallBudget("bricklink", 500)
    refused = []

    def worker():
        for _ in range(100):
            try:
                budget.take()
            except BudgetExhaustedError:
                refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.used == 500 and len(refused) == 300


def test_brickowl_pacer_keeps_under_the_per_minute_limit(sb):
    # the sandbox enforces 5 requests per 0.4 s (750/min: a margin for loopback jitter on a loaded
    # machine); the adapter paces for 600/min, so 6 calls never fit in one window
    sb.brickowl.rate_limit = (5, 0.4)
    counter = CallCounter()
    adapter = make(sb, "brickowl", rate=600, counter=counter)
    assert adapter.client.pacer.interval == pytest.approx(60 / (600 * PACING_MARGIN))
    started = time.monotonic()
    for _ in range(6):
        adapter.list_orders()
    assert time.monotonic() - started >= 0.5  # 5 gaps of ~0.105 s
    assert sb.brickowl.throttled == 0
    assert counter.totals == {"brickowl": 6}


def test_unpaced_brickowl_would_be_throttled(sb):
    """The counterpart of the pacing test: the sandbox limit is real, so pacing is what avoids it."""
    sb.brickowl.rate_limit = (5, 60.0)
    adapter = make(sb, "brickowl", rate=None, retries=0)
    with pytest.raises(RateLimitedError) as caught:
        for _ in range(6):
            adapter.list_orders()
    assert caught.value.retry_after is not None
    assert sb.brickowl.throttled == 1


def test_bricklink_is_not_paced(sb):
    adapter = make(sb, "bricklink", rate=1)  # the BrickOwl rate must not touch BrickLink
    assert adapter.client.pacer.interval == 0
    started = time.monotonic()
    for _ in range(5):
        adapter.list_orders()
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------------- masking
def test_mask_hides_secret_values_and_key_parameters():
    assert mask("GET https://x/v1/order/list?key=ABCDEF&limit=5") == "GET https://x/v1/order/list?key=***&limit=5"
    assert mask("url ?api_key=zzz&oauth_token=ttt&oauth_signature=sss") == "url ?api_key=***&oauth_token=***&oauth_signature=***"
    assert mask("token S3CRET in text", ["S3CRET", ""]) == "token *** in text"
    assert mask("monkey=1&keyboard=2") == "monkey=1&keyboard=2"  # only whole parameter names
    assert mask("'x' is not KEY=VALUE") == "'x' is not KEY=VALUE"  # a usage message, not a parameter


def secrets_of(sb):
    env = sb.env()
    return [v for k, v in env.items() if not k.endswith("_API_URL")]


def assert_clean(text, secrets):
    for secret in secrets:
        assert secret not in text, f"secret leaked: {text!r}"


def every_rendering(exc) -> str:
    chained = []  # what an error reporter walking the chain would see, suppressed or not
    inner = exc.__cause__ or exc.__context__
    while inner is not None:
        chained.append(f"{inner!s} {inner!r}")
        inner = inner.__cause__ or inner.__context__
    return "\n".join([str(exc), repr(exc), exc.message, "".join(traceback.format_exception(exc)),
                      repr(exc.args), *chained])


@pytest.fixture
def debug_log(caplog, monkeypatch):
    """Capture the 'marketsync' loggers at DEBUG, whatever an earlier in-process CLI run configured."""
    logger = logging.getLogger("marketsync")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", True)
    caplog.set_level(logging.DEBUG, logger="marketsync")
    return caplog


def test_brickowl_key_never_leaks_from_any_error_or_debug_log(sb, debug_log):
    key = sb.brickowl.api_key
    secrets = secrets_of(sb)
    adapter = make(sb, "brickowl", retries=1, timeout=0.3)
    sb.brickowl.add_order(lines=[BO_LINE])
    adapter.list_orders()  # a successful call logs at DEBUG too
    errors = []
    for fault, opts in [("500", {}), ("html503", {}), ("429", {"retry_after": 0}), ("reset", {}),
                        ("hang", {"seconds": 3}), ("malformed", {}), ("not_json", {}), ("auth_in_200", {}),
                        ("error_string", {"message": f"key {key} is blocked"})]:  # fmt: skip
        sb.inject("brickowl", "GET /order/list", fault, times=None, **opts)
        with pytest.raises(ProviderError) as caught:
            adapter.list_orders()
        sb.clear_faults()
        errors.append(caught.value)
    with pytest.raises(NotFoundError) as caught:
        adapter.fetch_order("1")
    errors.append(caught.value)
    refused = make(sb, "brickowl", retries=1, environ={**sb.env(), "BRICKOWL_API_URL": f"http://127.0.0.1:{free_port()}/v1"})
    with pytest.raises(TransientError) as caught:
        refused.list_orders()  # requests' own error names the URL, key and all
    errors.append(caught.value)
    bad_key = make(sb, "brickowl", environ={**sb.env(), "BRICKOWL_API_KEY": "WRONG" + key})
    with pytest.raises(AuthError) as caught:
        bad_key.list_orders()
    errors.append(caught.value)
    assert any("***" in str(e) for e in errors)  # the echoed key was there, and it was masked
    for error in errors:
        assert_clean(every_rendering(error), secrets + ["WRONG" + key])
    assert "retrying" in debug_log.text and "GET /order/list -> 200" in debug_log.text
    assert "brickowl: GET /order/list answered HTTP 500 with an HTML page; retrying in" in debug_log.text
    assert "brickowl: brickowl:" not in debug_log.text  # one provider prefix per line
    assert_clean(debug_log.text, secrets)
    for record in debug_log.records:
        assert_clean(record.getMessage(), secrets)
    # the key really was sent (so there was something to leak)
    assert any(q.get("key") == key for p, _, _, q in sb.requests if p == "brickowl")


def test_bricklink_secrets_never_leak_from_any_error_or_debug_log(sb, debug_log):
    secrets = secrets_of(sb)
    adapter = make(sb, "bricklink", retries=1, timeout=0.3)
    adapter.list_orders()
    errors = []
    for fault in ("500", "html503", "429", "reset", "malformed", "not_json", "auth_in_200", "ip_mismatch"):
        sb.inject("bricklink", "GET /orders", fault, times=None, retry_after=0)
        with pytest.raises(ProviderError) as caught:
            adapter.list_orders()
        sb.clear_faults()
        errors.append(caught.value)
    for name in ("BRICKLINK_CONSUMER_KEY", "BRICKLINK_CONSUMER_SECRET", "BRICKLINK_TOKEN_VALUE",
                 "BRICKLINK_TOKEN_SECRET"):
        env = {**sb.env(), name: "X" + sb.env()[name]}
        with pytest.raises(AuthError) as caught:
            make(sb, "bricklink", environ=env).list_orders()
        errors.append(caught.value)
        secrets.append(env[name])
    for error in errors:
        assert_clean(every_rendering(error), secrets)
    assert "retrying" in debug_log.text and "GET /orders -> 200" in debug_log.text
    assert_clean(debug_log.text, secrets)


@pytest.mark.parametrize("status", [400, 402, 405, 406, 410, 413, 414, 415, 418, 422])
def test_every_4xx_but_auth_not_found_and_throttling_is_a_refusal_never_retried(status):
    from marketsync.errors import RequestRejectedError
    from marketsync.providers.http import error_for_status

    error = error_for_status("bricklink", status, "refused")
    assert isinstance(error, RequestRejectedError) and not error.retryable


@pytest.mark.parametrize("url, query", [
    ("http://h/v1/order/list", {"key": "a b&c", "limit": 5000, "gone": None, "ids": ["1", "2"], "u": "é/?="}),
    ("http://h/api?z=1", {"b": "2"}),
    ("http://h/api", {}),
    ("http://h/api", {"only": None}),
])
def test_a_query_is_encoded_exactly_as_requests_encodes_params(url, query):
    expected = requests.PreparedRequest()
    expected.prepare_url(url, query)
    built = requests.PreparedRequest()
    built.prepare_url(with_query(url, query), "")
    assert built.url == expected.url


def test_an_unwatched_socket_takes_every_new_timeout():
    """Outside a watched request a connection's socket is an ordinary one (its timeout set only
    when it changes: urllib3 sets it twice a request)."""
    import ssl

    from marketsync.providers.watchdog import _watched

    plain = socket.socket()
    wrapped = ssl.create_default_context().wrap_socket(socket.socket(), server_hostname="example.com",
                                                       do_handshake_on_connect=False)
    for sock in (plain, wrapped):
        with sock:
            _watched(sock)
            assert type(sock).__name__.startswith("_Watched")
            for value, blocking in ((None, True), (None, True), (0.0, False), (2.5, True), (2.5, True)):
                sock.settimeout(value)
                assert sock.gettimeout() == value and sock.getblocking() is blocking


def test_a_watched_socket_blocks_and_the_watchdog_keeps_its_read_timeout():
    """While watched, a socket blocks plainly (no poll before every read: each system call hands
    the interpreter to another thread) and a read that waits past the timeout is ended."""
    from marketsync.providers.watchdog import WATCHDOG, _watched

    left, right = socket.socketpair()
    with left, right:
        _watched(left)
        began = time.monotonic()
        with WATCHDOG.watching(30) as watch:
            WATCHDOG.attach(left)
            left.settimeout(0.3)
            assert left.gettimeout() is None and watch.read_timeout == 0.3
            right.sendall(b"x")
            assert left.recv(1) == b"x"  # data waiting: read at once
            assert watch.waiting_since is None and not watch.expired
            assert left.recv(1) == b""  # nothing comes: shut down by the watchdog after 0.3 s
        assert watch.expired and watch.timed_out
        assert 0.3 <= time.monotonic() - began < 5  # the read timeout, not the 30 s deadline
