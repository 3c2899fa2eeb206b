"""Provider adapters: the only code that knows the marketplaces' HTTP APIs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketsync.config import HttpSettings, api_url, require_credentials

if TYPE_CHECKING:  # importing requests costs ~60 ms: commands that never go online skip it
    from marketsync.providers.http import CallCounter

PACING_MARGIN = 0.95  # pace a little under the published limit: clocks and networks jitter


def build_adapter(
    provider: str,
    settings: HttpSettings,
    *,
    counter: "CallCounter | None" = None,
    calls_today: int = 0,
    environ=None,
):
    """A ready adapter for ``provider`` from the configured credentials and settings."""
    from marketsync.providers import bricklink, brickowl
    from marketsync.providers.http import CallBudget, HttpClient, Pacer, RetryPolicy

    creds = require_credentials(provider, environ)
    common = dict(
        timeout=settings.timeout,
        secrets=tuple(creds.values()),
        retry=RetryPolicy(retries=settings.retries, backoff=settings.backoff,
                          retry_after_cap=settings.retry_after_cap),
        counter=counter,
        pool_size=max(1, settings.concurrency),
    )
    if provider == "bricklink":
        client = HttpClient(
            provider, api_url(provider, environ), bricklink.decode, auth=bricklink.BrickLink.auth(creds),
            budget=CallBudget(provider, settings.bricklink_daily_budget, calls_today), **common,
        )
        return bricklink.BrickLink(client)
    rate = settings.brickowl_rate_limit
    client = HttpClient(
        provider, api_url(provider, environ), brickowl.decode, fixed_params={"key": creds["BRICKOWL_API_KEY"]},
        pacer=Pacer(rate * PACING_MARGIN if rate else None), **common,
    )
    return brickowl.BrickOwl(client)
