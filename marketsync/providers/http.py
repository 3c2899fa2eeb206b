"""One HTTP layer for both marketplaces.

Timeouts on every request, one retry policy for idempotent GETs (capped exponential backoff
with jitter, ``Retry-After`` honoured up to a cap), call accounting, pacing, and one error
hierarchy chosen by status in one place (:func:`error_for_status`). Messages name the
provider and the endpoint path, never a URL query string, so no key can leak through them.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode

import requests

from marketsync import __version__
from marketsync.masking import mask
from marketsync.providers.watchdog import WATCHDOG, WatchedAdapter
from marketsync.errors import (
    AuthError,
    BadResponseError,
    BudgetExhaustedError,
    DeadlineError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitedError,
    RequestRejectedError,
    TransientError,
)

log = logging.getLogger("marketsync.http")

USER_AGENT = f"marketsync/{__version__} (+https://pypi.org/project/marketsync/)"
def error_for_status(provider: str, status: int, message: str, retry_after: float | None = None) -> ProviderError:
    """The one place where a status code (HTTP or BrickLink's ``meta.code``) picks an error class."""
    if status == 401:
        return AuthError(provider, message)
    if status == 403:
        return PermissionDeniedError(provider, message)
    if status == 404:
        return NotFoundError(provider, message)
    if status == 429:
        return RateLimitedError(provider, message, retry_after)
    if status >= 500:
        return TransientError(provider, message)
    if 400 <= status < 500:  # the request itself was refused: asking again changes nothing
        return RequestRejectedError(provider, message)
    return BadResponseError(provider, message)


class CallBudget:
    """A daily call allowance shared by all threads of a run."""

    def __init__(self, provider: str, limit: int | None, used: int = 0):
        self.provider, self.limit, self.used = provider, limit, used
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            if self.limit is not None and self.used >= self.limit:
                raise BudgetExhaustedError(
                    self.provider,
                    f"daily API budget of {self.limit} calls used up; the rest resumes on the next run after 00:00 UTC",
                )
            self.used += 1

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


class Pacer:
    """Spaces requests evenly so a sliding-window rate limit is never hit."""

    def __init__(self, per_minute: float | None, clock: Callable[[], float] = time.monotonic):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock = clock

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


@dataclass
class RetryPolicy:
    retries: int = 4  # further attempts after the first
    backoff: float = 0.5  # first wait, doubled each time
    backoff_cap: float = 8.0
    retry_after_cap: float = 60.0  # far below the 15-minute cron interval
    window: float = 600.0  # no retry waits once a run is this old: the next cron run takes over

    def delay(self, attempt: int, error: ProviderError) -> float:
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.retry_after_cap)
        base = min(self.backoff_cap, self.backoff * (2**attempt))
        return base * random.uniform(0.5, 1.0)


class RunClock:
    """One run's time with the marketplaces, shared by all of them and counted from the first
    request of any: a marketplace that finishes early leaves the rest to the other, and none can
    hold the writer lock past the next cron run."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic):
        self.seconds, self._clock = seconds, clock
        self._ends: float | None = None
        self._lock = threading.Lock()

    def remaining(self) -> float | None:
        if self.seconds is None:
            return None
        with self._lock:
            if self._ends is None:
                self._ends = self._clock() + self.seconds
            return self._ends - self._clock()


class Deadline:
    """One marketplace's view of the run's time: the run's clock (:class:`RunClock`, shared with
    the other marketplaces of the run; its own when none is given), and whether this marketplace
    was given up as sick (a drip or a hang cannot starve the other one, which goes on)."""

    def __init__(self, seconds: float | None = None, clock: Callable[[], float] = time.monotonic, *,
                 run: RunClock | None = None):
        self.run = run if run is not None else RunClock(seconds, clock)
        self.given_up: str | None = None  # why the marketplace is not asked again in this run

    @property
    def seconds(self) -> float | None:
        return self.run.seconds

    def give_up(self, reason: str) -> None:
        """A request used its whole deadline: the marketplace is sick and is not asked again in this
        run (another request would most likely cost the same); the other marketplaces go on."""
        self.given_up = self.given_up or reason

    def remaining(self) -> float | None:
        if self.given_up:
            return 0.0
        return self.run.remaining()


class CallCounter:
    """Calls made in this run, per provider (every attempt sent counts against the quota).

    ``totals`` only grows; ``take_unsaved`` hands over what has not been written to the
    database yet, so each call is persisted exactly once.
    """

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self._unsaved: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, provider: str) -> None:
        with self._lock:
            self.totals[provider] = self.totals.get(provider, 0) + 1
            self._unsaved[provider] = self._unsaved.get(provider, 0) + 1

    def take_unsaved(self) -> dict[str, int]:
        with self._lock:
            unsaved, self._unsaved = self._unsaved, {}
            return unsaved


@dataclass
class Exchange:
    """One request as sent and its answer (None: none came), for ``HttpClient.on_exchange``.
    Nothing here is masked: ``query`` and ``form`` hold BrickOwl's key (``marketsync.app.probe``
    masks what it keeps)."""

    method: str
    path: str
    query: dict[str, Any]
    json_body: Any
    form: dict[str, Any] | None
    response: requests.Response | None


class HttpClient:
    """JSON client for one marketplace; ``decode`` turns a response into data or an error.

    ``get`` retries transient faults (a GET changes nothing); ``write`` never retries: a write
    whose answer was lost may have been applied, and only the caller can find out (by reading
    the lot back)."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        decode: Callable[[str, requests.Response], Any],
        *,
        timeout: float,
        auth: Any = None,
        fixed_params: dict[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        retry: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        budget: CallBudget | None = None,
        counter: CallCounter | None = None,
        pool_size: int = 8,
        request_deadline: float | None = None,
        deadline: Deadline | None = None,
    ):
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.decode = decode
        self.timeout = timeout
        self.fixed_params = fixed_params or {}
        self.secrets = tuple(s for s in secrets if s)
        self.retry = retry or RetryPolicy()
        self.retry_until = time.monotonic() + self.retry.window
        self.pacer = pacer or Pacer(None)
        self.budget = budget
        self.counter = counter
        self.request_deadline = request_deadline  # a whole request, however slowly its bytes arrive
        self.deadline = deadline or Deadline(None)
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        # With trust_env, requests re-reads proxies, the CA bundle and ~/.netrc from the
        # environment on every request (~15% of a call's CPU in a backfill). Read them once:
        # the same proxy (HTTPS_PROXY / NO_PROXY) and CA bundle apply. ~/.netrc is not read:
        # BrickLink signs with OAuth and BrickOwl takes its key as a parameter.
        proxies = requests.utils.get_environ_proxies(self.base_url)
        self.session.trust_env = False
        self.session.proxies.update(proxies)
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle
        adapter = WatchedAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._adapter = adapter
        self.on_exchange: Callable[[Exchange], None] | None = None  # off: nothing is recorded

    def get(self, path: str, params: dict[str, Any] | None = None, *, endpoint: str | None = None,
            decode: Callable[[str, requests.Response], Any] | None = None) -> Any:
        """GET ``path`` (relative to the base URL) and return decoded JSON data, retrying transient faults.

        ``endpoint`` names the call in messages (``GET /orders/{id}``); it defaults to the path.
        ``decode`` replaces the client's own for this call (a long list decoded as it is read).
        """
        label = f"GET {endpoint or path}"
        query = {**(params or {}), **self.fixed_params}
        attempt = 0
        while True:
            try:
                return self._once(path, query, label, decode=decode)
            except ProviderError as error:
                if not error.retryable or attempt >= self.retry.retries:
                    if error.retryable and attempt:
                        error.reword(f"{error.message} (gave up after {attempt + 1} attempts)")
                    error.__context__ = None  # `from None` only hides the requests error (its URL has the key)
                    raise
                wait = self.retry.delay(attempt, error)
                left = self.deadline.remaining()
                if time.monotonic() + wait > self.retry_until or (left is not None and wait >= left):
                    error.reword(f"{error.message} (no time left to retry in this run)")
                    error.__context__ = None
                    raise
                log.info("%s; retrying in %.1fs", mask(error.message, self.secrets), wait)
                time.sleep(wait)
                attempt += 1

    def write(self, method: str, path: str, *, json_body: Any = None, form: dict[str, Any] | None = None,
              endpoint: str | None = None, pacer: Pacer | None = None) -> Any:
        """One PUT or POST, sent once: errors propagate unchanged, never retried here."""
        label = f"{method} {endpoint or path}"
        query: dict[str, Any] = {}
        if form is not None:
            form = {**form, **self.fixed_params}  # BrickOwl takes its key as a form field on POST
        else:
            query = dict(self.fixed_params)
        try:
            return self._once(path, query, label, method=method, json_body=json_body, form=form, pacer=pacer)
        except ProviderError as error:
            error.__context__ = None
            raise

    def _send(self, method: str, url: str, query: dict[str, Any], json_body: Any = None,
              form: dict[str, Any] | None = None, *, connect_timeout: float | None = None) -> requests.Response:
        """One request straight through the connection pool, without the session's per-call cookie
        jars, hooks and settings merges (~12% of a call's CPU). The same headers, auth, proxies
        and CA bundle apply; a redirect (these APIs send none) still gets the session's handling.
        Prepared as ``PreparedRequest.prepare`` does it, less its empty cookie jar (a new jar per
        request, never holding a cookie: the session's are not sent) and its empty hooks."""
        request = requests.PreparedRequest()
        request.prepare_method(method)
        request.prepare_url(with_query(url, query), "")
        request.prepare_headers(self.session.headers)
        request.prepare_body(form, None, json_body)
        request.prepare_auth(self.session.auth, url)
        timeout = self.timeout if connect_timeout is None else (min(connect_timeout, self.timeout), self.timeout)
        response = self._adapter.send(request, timeout=timeout, proxies=self.session.proxies,
                                      verify=True if self.session.verify is None else self.session.verify)
        if response.is_redirect and method == "GET":
            response.close()
            return self.session.get(url, params=query, timeout=timeout)
        _ = response.content  # read it all: the connection goes back to the pool
        return response

    def _once(self, path: str, query: dict[str, Any], label: str, *, method: str = "GET", json_body: Any = None,
              form: dict[str, Any] | None = None, pacer: Pacer | None = None,
              decode: Callable[[str, requests.Response], Any] | None = None) -> Any:
        allowed = self._time_allowed(label)
        if self.budget is not None:
            self.budget.take()
        (pacer or self.pacer).wait()
        if self.counter is not None:
            self.counter.add(self.provider)
        started = time.monotonic()
        response: requests.Response | None = None
        try:
            response = self._send_within(allowed, label, method, f"{self.base_url}{path}", query, json_body, form)
        except requests.Timeout:
            raise TransientError(self.provider, f"{label} timed out after {self.timeout:g}s") from None
        except requests.ConnectionError as exc:
            raise TransientError(self.provider, f"{label} failed: {_connection_reason(exc)}") from None
        except requests.RequestException as exc:
            raise TransientError(self.provider, f"{label} failed: {exc.__class__.__name__}") from None
        except ValueError as exc:  # a URL even urllib3 cannot parse ('http://a..b'): no traceback, no URL
            raise ProviderError(self.provider, f"{label} failed: the API URL is not usable "
                                               f"({exc.__class__.__name__})") from None
        finally:
            if self.on_exchange is not None:
                self.on_exchange(Exchange(method, path, dict(query), json_body, form, response))
        log.debug("%s %s -> %s in %.2fs", self.provider, label, response.status_code, time.monotonic() - started)
        try:
            return (decode or self.decode)(label, response)
        except ProviderError as error:
            error.reword(mask(error.message, self.secrets))
            raise


    def _time_allowed(self, label: str) -> float | None:
        """Seconds this request may take in all: the per-request deadline, cut to what is left of
        the marketplace's share of the run (none left: the request is not sent)."""
        left = self.deadline.remaining()
        if left is not None and left <= 0 and self.deadline.given_up:
            raise DeadlineError(self.provider, f"{label} not sent: {self.deadline.given_up}; the rest waits for "
                                               "the next run")
        if left is not None and left <= 0:
            raise DeadlineError(self.provider, f"{label} not sent: this run's {self.deadline.seconds:g}s for "
                                               f"{self.provider} are used up; the rest waits for the next run")
        candidates = [x for x in (self.request_deadline, left) if x is not None]
        return min(candidates) if candidates else None

    def _send_within(self, allowed: float | None, label: str, *request: Any) -> requests.Response:
        """``_send`` bounded in total time: a per-read timeout never fires for a server that drips a
        byte every half second, so the request is watched (:mod:`marketsync.providers.watchdog`),
        which also keeps its read timeout, and its connection shut down when either is up. An
        answer that comes whole in time is the answer; anything else once the time is up is the
        deadline's (or the read timeout's) doing."""
        if allowed is None:
            return self._send(*request)
        with WATCHDOG.watching(allowed) as watch:
            try:
                response = self._send(*request, connect_timeout=allowed)
            except Exception:
                if not watch.expired:
                    raise
            else:
                if not watch.expired:
                    return response
        if watch.timed_out:  # one read or write waited longer than the timeout: retried like any timeout
            raise TransientError(self.provider, f"{label} timed out after {self.timeout:g}s")
        if self.request_deadline is not None and allowed >= self.request_deadline:
            # never tried again: another try would most likely cost as much (5 x 60 s before)
            reason = f"{label} gave no complete answer within {self.request_deadline:g}s (the request deadline)"
            self.deadline.give_up(reason)
            raise DeadlineError(self.provider, f"{reason}; {self.provider} is not asked again in this run")
        raise DeadlineError(self.provider, f"{label} gave no complete answer before this run's "
                                           f"{self.deadline.seconds:g}s for {self.provider} ran out; "
                                           "the rest waits for the next run")


def with_query(url: str, query: dict[str, Any]) -> str:
    """``url`` with ``query`` encoded as requests encodes ``params`` (None dropped, a list repeated),
    without requests' runtime Protocol checks on every parameter (~5% of a call's CPU)."""
    encoded = urlencode([(k, v) for k, v in query.items() if v is not None], doseq=True)
    return f"{url}{'&' if '?' in url else '?'}{encoded}" if encoded else url


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed without a response"),
        ("Name or service not known", "host not found"),
        ("Temporary failure in name resolution", "host not found"),
        ("timed out", "timed out"),
    ):
        if needle in text:
            return reason
    return "connection error"


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def json_or_none(response: requests.Response) -> Any:
    """The JSON body, or None when the body is not JSON (an HTML maintenance page, a truncated body)."""
    try:
        return response.json()
    except ValueError:
        return None


def describe_non_json(label: str, response: requests.Response) -> str:
    kind = "an HTML page" if "<html" in response.text[:500].lower() else "a body that is not JSON"
    return f"{label} answered HTTP {response.status_code} with {kind}"
