"""Provider adapters: the only code that knows the marketplaces' HTTP APIs.

:func:`build_adapter` is the one place an adapter is made: it looks the marketplace up in the
registry (:mod:`marketsync.registry`) and calls its module's ``build``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, Mapping

from marketsync.config import HttpSettings, api_url, require_credentials
from marketsync.registry import marketplace

if TYPE_CHECKING:  # importing requests costs ~60 ms: commands that never go online skip it
    from marketsync.providers.http import CallCounter, Deadline, RetryPolicy, RunClock

PACING_MARGIN = 0.95  # pace a little under the published limit: clocks and networks jitter


def build_adapter(
    provider: str,
    settings: HttpSettings,
    *,
    counter: "CallCounter | None" = None,
    calls_today: int = 0,
    environ: Mapping[str, str] | None = None,
    run_clock: "RunClock | None" = None,
) -> Any:
    """A ready adapter for ``provider`` from the configured credentials and settings, under the
    run's deadline: ``run_clock``, shared by the marketplaces of one run (its own when None)."""
    from marketsync.providers.http import Deadline, RetryPolicy, RunClock

    creds = require_credentials(provider, environ)
    module = importlib.import_module(marketplace(provider).adapter_module)
    retry = RetryPolicy(retries=settings.retries, backoff=settings.backoff, retry_after_cap=settings.retry_after_cap)
    clock = run_clock if run_clock is not None else RunClock(settings.run_deadline or None)
    common = Common(provider, api_url(provider, environ), creds, settings, retry, counter,
                    Deadline(run=clock), calls_today)
    return module.build(common)


def build_adapters(names: list[str], settings: HttpSettings, *, calls_today: Callable[[str], int],
                   environ: Mapping[str, str] | None = None) -> tuple[list[Any], "CallCounter"]:
    """One run's adapters over one call counter and one run deadline, which either may use (a
    marketplace given up as sick stops alone)."""
    from marketsync.providers.http import CallCounter, RunClock

    counter = CallCounter()
    clock = RunClock(settings.run_deadline or None)
    return [build_adapter(name, settings, counter=counter, environ=environ, run_clock=clock,
                          calls_today=calls_today(name)) for name in names], counter


class Common:
    """What every adapter is built from."""

    def __init__(self, provider: str, url: str, creds: dict[str, str], settings: HttpSettings,
                 retry: "RetryPolicy", counter: "CallCounter | None", deadline: "Deadline", calls_today: int):
        self.provider, self.url, self.creds, self.settings = provider, url, creds, settings
        self.retry, self.counter, self.deadline, self.calls_today = retry, counter, deadline, calls_today

    def client_options(self) -> dict[str, Any]:
        return dict(timeout=self.settings.timeout, secrets=tuple(self.creds.values()), retry=self.retry,
                    counter=self.counter, pool_size=max(1, self.settings.concurrency),
                    request_deadline=self.settings.request_deadline, deadline=self.deadline)
