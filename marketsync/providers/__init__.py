"""Provider adapters: the only code that knows the marketplaces' HTTP APIs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Union

from marketsync.config import HttpSettings, api_url, require_credentials

if TYPE_CHECKING:  # importing requests costs ~60 ms: commands that never go online skip it
    from marketsync.providers.bricklink import BrickLink
    from marketsync.providers.brickowl import BrickOwl
    from marketsync.providers.http import CallCounter

PACING_MARGIN = 0.95  # pace a little under the published limit: clocks and networks jitter


def build_adapter(
    provider: str,
    settings: HttpSettings,
    *,
    counter: "CallCounter | None" = None,
    calls_today: int = 0,
    environ: Mapping[str, str] | None = None,
    share: int = 1,
) -> Union["BrickLink", "BrickOwl"]:
    """A ready adapter for ``provider`` from the configured credentials and settings; it gets
    1/``share`` of the run's deadline (the marketplaces of one run share it)."""
    from marketsync.providers import bricklink, brickowl
    from marketsync.providers.http import CallBudget, Deadline, HttpClient, Pacer, RetryPolicy

    creds = require_credentials(provider, environ)
    retry = RetryPolicy(retries=settings.retries, backoff=settings.backoff, retry_after_cap=settings.retry_after_cap)
    secrets, pool_size = tuple(creds.values()), max(1, settings.concurrency)
    run = settings.run_deadline
    timing = dict(request_deadline=settings.request_deadline,
                  deadline=Deadline(run / max(1, share) if run else None))
    if provider == "bricklink":
        return bricklink.BrickLink(HttpClient(
            provider, api_url(provider, environ), bricklink.decode, auth=bricklink.BrickLink.auth(creds),
            budget=CallBudget(provider, settings.bricklink_daily_budget, calls_today), timeout=settings.timeout,
            secrets=secrets, retry=retry, counter=counter, pool_size=pool_size, **timing,  # type: ignore[arg-type]
        ))
    rate = settings.brickowl_rate_limit
    batch_rate = settings.brickowl_batch_rate_limit
    return brickowl.BrickOwl(HttpClient(
        provider, api_url(provider, environ), brickowl.decode, fixed_params={"key": creds["BRICKOWL_API_KEY"]},
        pacer=Pacer(rate * PACING_MARGIN if rate else None), timeout=settings.timeout,
        secrets=secrets, retry=retry, counter=counter, pool_size=pool_size, **timing,  # type: ignore[arg-type]
    ), batch_pacer=Pacer(batch_rate * PACING_MARGIN if batch_rate and rate else None))
