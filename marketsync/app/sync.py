"""The ``sync`` use case (what cron runs): pull new and changed orders from each marketplace, book
them, and with ``push`` bring every listing to what is available; and ``stock push`` alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from marketsync.app.context import Workspace

if TYPE_CHECKING:
    from marketsync.app.listing_push import PushResult
    from marketsync.app.mirror import MirrorReport
    from marketsync.app.order_sync import Progress, ProviderResult
    from marketsync.store import Store


@dataclass
class SyncReport:
    results: list[ProviderResult] = field(default_factory=list)  # the order sync, per marketplace
    again: list[ProviderResult] = field(default_factory=list)  # the orders read again for the push's bracket
    pushed: list[PushResult] = field(default_factory=list)
    mirrored: MirrorReport | None = None  # with ``mirror``: the lots created on the other marketplaces
    silent: list[str] = field(default_factory=list)  # marketplaces synced before that have no credentials now
    backup_problem: str | None = None
    leftover: list[str] = field(default_factory=list)  # problems a run interrupted before its report left
    oversold: int = 0  # lots oversold as the run leaves them

    @property
    def ok(self) -> bool:
        return (not self.silent and all(r.ok for r in self.results) and all(r.ok for r in self.again)
                and all(r.ok for r in self.pushed) and (self.mirrored is None or self.mirrored.ok))


def sync(ws: Workspace, names: list[str], *, full: bool = False, push: bool = False, dry_run: bool = False,
         wait: float = 0.0, check_credentials: bool = True, progress: Progress | None = None,
         mirror: bool = False, new_account: bool = False, relist: bool = True) -> SyncReport:
    """One run: the writer lock, the daily backup, the orders of ``names``, then (``push``) the
    listings -- only when every marketplace's orders synced (``relist``: and create again the lots
    buyers sold out that the marketplace deleted, app/relist.py)."""
    from marketsync.app import backup
    from marketsync.store import queries

    report = SyncReport()
    with ws.write(wait, create=True, before_open=lambda: setattr(report, "backup_problem",
                                                                  backup.daily(ws.db_path))) as store:
        if not new_account:
            refuse_new_account(store)
        from marketsync.store import problems as stored_problems

        report.leftover, leftover_lots = stored_problems.begin(store)  # what an interrupted run never said
        report.silent = lost_credentials(store) if check_credentials else []
        marketplaces = ws.marketplaces(store, names)
        report.results = marketplaces.sync(full=full, progress=progress, report_oversold=False)
        if push and all(result.ok for result in report.results):
            report.pushed, report.again = marketplaces.push(dry_run=dry_run, progress=progress, report_oversold=False,
                                                            relist=relist)
            if mirror and all(result.ok for result in report.pushed):  # creations wait behind orders and pushes
                from marketsync.app import mirror as mirroring
                from marketsync.config import mirror_settings

                report.mirrored = mirroring.run(store, marketplaces, dry_run=dry_run, settings=mirror_settings(ws.environ),
                                                reads={r.provider: r.lots for r in report.pushed if r.lots is not None})
        if report.results:
            report.results[0].oversold |= leftover_lots
        marketplaces.report_oversold(report.results + report.again)  # at the end, with the figures it leaves
        report.oversold = len(queries.oversold(store))
        stored_problems.reported(store)  # the report is complete: returned to be said at once
    return report


def push_listings(ws: Workspace, names: list[str], *, dry_run: bool = False, wait: float = 0.0,
                  relist: bool = True) -> tuple[list[PushResult], list[ProviderResult]]:
    """``stock push``: the listings without syncing the orders first (the order lists are still
    read once after the lots, so an order placed meanwhile is never put back on sale)."""
    with ws.write(wait, create=True) as store:
        return ws.marketplaces(store, names).push(dry_run=dry_run, relist=relist)


def refuse_new_account(store: Store) -> None:
    """An account with nothing in a file that holds another account's business is most likely a
    typo in MARKETSYNC_ACCOUNT / --account: syncing into it would book every order a second time."""
    from marketsync.errors import ConfigError
    from marketsync.store import queries

    if queries.holds_anything(store):
        return
    others = queries.other_accounts(store)
    if others:
        raise ConfigError(f"account {store.account!r} has nothing in {store.path}, which holds the business of "
                          f"account(s) {', '.join(map(repr, others))}: a typo in MARKETSYNC_ACCOUNT / --account? "
                          "Nothing was synced; --new-account starts a new account in this file on purpose")


def lost_credentials(store: Store) -> list[str]:
    """A marketplace this database synced before whose credentials are gone: cron must not go quiet."""
    from marketsync.app import status
    from marketsync.config import configured_providers
    from marketsync.store import queries

    history = queries.providers_with_history(store)
    open_orders = {row["provider"]: row["open_orders"] for row in queries.status(store, tuple(history), "")}
    return status.unconfigured(history, configured_providers(), open_orders)
