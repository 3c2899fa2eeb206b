"""The sync engine: each marketplace's new and changed orders into SQLite, lines matched to
lots, stock reserved through the ledger.

Per provider: list orders (one call when nothing changed), fetch only orders whose
fingerprint changed (open ones first, a few requests in flight), and write each order's
row, lines, ledger entries and lot counters in one transaction. ``last_synced_at`` moves
only after the whole provider run succeeded. One provider failing never stops the other.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterable, Iterator, Protocol

from sqlite_utils import Database

from marketsync import ledger, store
from marketsync.db import utcnow
from marketsync.errors import (
    BadResponseError,
    BudgetExhaustedError,
    MarketsyncError,
    NotFoundError,
    ProviderError,
    RequestRejectedError,
)
from marketsync.matching import LotIndex
from marketsync.providers.http import CallCounter
from marketsync.providers.records import OPEN_STATUSES, Order, OrderLine, OrderSummary

log = logging.getLogger("marketsync.sync")

LIST_OVERLAP = dt.timedelta(hours=1)  # re-read a margin so an order placed mid-list is never missed
BATCH_ORDERS = 100  # orders per write transaction (each order is still all-or-nothing)
BATCH_LINES = 2000  # ... and lines: what a batch holds in memory stays flat however big the orders
BATCH_SECONDS = 0.5
ORDER_ERRORS = (NotFoundError, RequestRejectedError, BadResponseError)  # one order's trouble: skip it, go on


class Progress(Protocol):
    def start(self, provider: str, total: int) -> None: ...
    def advance(self, provider: str) -> None: ...


class NoProgress:
    def start(self, provider: str, total: int) -> None:
        pass

    def advance(self, provider: str) -> None:
        pass


@dataclass
class ProviderResult:
    provider: str
    ok: bool = True
    error: str | None = None
    listed: int = 0
    changed: int = 0
    written: int = 0
    calls: int = 0
    complete: bool = True  # False when some orders may be missing: last_synced_at then stays put
    skipped: int = 0  # orders that could not be fetched or stored this run (retried next run)
    problems: list[str] = field(default_factory=list)  # one line each, for stderr


def line_label(line: OrderLine) -> str:
    what = " ".join(
        str(x) for x in (line.part_number or line.boid or line.name, line.color_id, line.condition) if x is not None
    )
    return f"line {line.line_key} ({what})"


class OrderWriter:
    """Writes fetched orders in small batches of transactions, one order never split."""

    def __init__(self, db: Database, account: str, index: LotIndex, result: ProviderResult,
                 counter: CallCounter, translator=None):
        self.db, self.account, self.index, self.result = db, account, index, result
        self.counter, self.translator = counter, translator
        self.buffer: list[tuple[Order, list[OrderLine]]] = []
        self.buffered_lines = 0
        self.flushed_at = time.monotonic()
        self.oversold_seen = index.oversold_reported  # shared by the run's providers: said once

    def add(self, order: Order, lines: list[OrderLine]) -> None:
        self.buffer.append((order, lines))
        self.buffered_lines += len(lines)
        if (len(self.buffer) >= BATCH_ORDERS or self.buffered_lines >= BATCH_LINES
                or time.monotonic() - self.flushed_at >= BATCH_SECONDS):
            self.flush()

    def flush(self) -> None:
        problems: list[str] = []
        try:
            with self.db.atomic():
                problems = self.write_all(self.buffer)
                if self.translator is not None:
                    self.translator.persist()
                store.add_api_calls(self.db, self.account, self.counter.take_unsaved())
        except BaseException:
            self.index.reload()  # the rolled-back deltas must not linger in memory
            raise
        self.result.written += len(self.buffer)
        self.result.problems += problems
        self.buffer.clear()
        self.buffered_lines = 0
        self.flushed_at = time.monotonic()

    def write_all(self, buffer: list[tuple[Order, list[OrderLine]]]) -> list[str]:
        """The batch with a handful of statements (write_batch); should anything in it fail, the
        batch is rolled back and written order by order, so only a bad order is skipped."""
        if len(buffer) > 1:
            seen = set(self.oversold_seen)
            try:
                with self.db.atomic():
                    return self.write_batch(buffer)
            except sqlite3.OperationalError:
                raise  # locked, full, read-only: the database's trouble, not an order's
            except Exception:  # noqa: BLE001 - found and reported by the order-by-order pass
                log.debug("batch write failed; writing its orders one by one", exc_info=True)
                self.index.reload()
                self.oversold_seen.clear()
                self.oversold_seen.update(seen)
        problems: list[str] = []
        for order, lines in buffer:
            problems += self.write_or_skip(order, lines)
        return problems

    def write_batch(self, buffer: list[tuple[Order, list[OrderLine]]]) -> list[str]:
        """write() for many orders at once: the same rows, ledger entries and lot counters, with a
        few statements per batch instead of a few per order (a third of a backfill's write CPU)."""
        db, account = self.db, self.account
        keys = store.upsert_orders(db, account, [order for order, _ in buffer])
        heads = [(order, lines, *key) for (order, lines), key in zip(buffer, keys)]
        refs = [ref for _, _, ref, _ in heads]
        stored = store.stored_lines_of(db, refs)
        held = ledger.holdings_of(db, refs)
        store.delete_lines(db, [ref for ref in refs if ref in stored])
        rows: list[tuple] = []
        booked: list[tuple[int, str, str, list[ledger.Delta]]] = []
        problems: list[str] = []
        for order, lines, ref, manual_release in heads:
            before = stored.get(ref, {})
            lines = unique_keys(lines)
            matches = [self.index.match(line, before.get(line.line_key, (None, None))[0]) for line in lines]
            rows += store.line_rows(account, ref, lines, matches)
            deltas = ledger.plan(
                order.status, manual_release,
                [ledger.LineTarget(l.line_key, m.inventory_id, l.quantity) for l, m in zip(lines, matches)],
                held.get(ref, {}),
            )
            ledger.move_index(self.index, deltas)  # the next order matches against what this one took
            booked.append((ref, order.provider, order.order_id, deltas))
            problems += self.problems(order, manual_release, lines, matches, before, deltas)
        store.insert_lines(db, rows)
        ledger.apply_many(db, account=account, booked=booked)
        return problems

    def write_or_skip(self, order: Order, lines: list[OrderLine]) -> list[str]:
        """One order in a savepoint: a payload our code chokes on skips that order, not the run."""
        try:
            with self.db.atomic():
                return self.write(order, lines)
        except sqlite3.OperationalError:
            raise  # locked, full, read-only: the database's trouble, not this order's
        except Exception as exc:  # noqa: BLE001 - reported, and the order is retried next run
            log.debug("cannot store %s order %s", order.provider, order.order_id, exc_info=True)
            self.index.reload()  # same connection: sees the batch so far, not the rolled-back order
            self.result.skipped += 1
            return [f"{order.provider} order {order.order_id} could not be stored "
                    f"({exc.__class__.__name__}: {exc}); it is retried next run"]

    def write(self, order: Order, lines: list[OrderLine]) -> list[str]:
        ref, manual_release = store.upsert_order(self.db, self.account, order)
        before = store.stored_lines(self.db, ref)
        lines = unique_keys(lines)
        matches = [self.index.match(line, before.get(line.line_key, (None, None))[0]) for line in lines]
        store.replace_lines(self.db, self.account, ref, lines, matches)
        deltas = ledger.reconcile_order(
            self.db, account=self.account, order_ref=ref, provider=order.provider, order_id=order.order_id,
            status=order.status, manual_release=manual_release,
            targets=[ledger.LineTarget(l.line_key, m.inventory_id, l.quantity) for l, m in zip(lines, matches)],
            index=self.index,
        )
        return self.problems(order, manual_release, lines, matches, before, deltas)

    def problems(self, order: Order, manual_release: bool, lines: list[OrderLine], matches: list,
                 before: dict, deltas: list) -> list[str]:
        """One line per thing the seller should know about a just-written order."""
        problems = []
        if order.status == "unknown":
            problems.append(f"{order.provider} order {order.order_id} has an unknown status "
                            f"{order.provider_status!r}; its stock stays reserved")
        if order.status in OPEN_STATUSES and not manual_release:
            for line, match in zip(lines, matches):
                was = before.get(line.line_key)
                if match.reason and "not in the colour table yet" in match.reason:
                    continue  # reported once per colour, after the table is refreshed
                if match.inventory_id is None and (was is None or was != (None, match.reason)):
                    problems.append(f"{order.provider} order {order.order_id}: {line_label(line)} unmatched: {match.reason}")
        for delta in deltas:
            lot = self.index.by_id.get(delta.inventory_id)
            if delta.quantity > 0 and lot and lot.reserved > lot.quantity and lot.id not in self.oversold_seen:
                self.oversold_seen.add(lot.id)
                problems.append(
                    f"oversold: lot {lot.id} ({lot.part_number} colour {lot.color_id} {lot.condition} at "
                    f"{lot.location or 'no location'}) has {lot.reserved} reserved but {lot.quantity} on hand"
                )
        return problems


def unique_keys(lines: list[OrderLine]) -> list[OrderLine]:
    seen: dict[str, int] = {}
    for line in lines:
        if line.line_key in seen:
            seen[line.line_key] += 1
            line.line_key = f"{line.line_key}#{seen[line.line_key]}"
        else:
            seen[line.line_key] = 1
    return lines


def handed_out(items: list) -> Iterator:
    """The list's items in order, each dropped from the list as it is handed out: a backfill's
    order list (thousands of summaries and their raw JSON) is freed as the run goes."""
    items.reverse()
    while items:
        yield items.pop()


def fetch_order(adapter, head: OrderSummary, translator=None) -> tuple[Order, list[OrderLine]]:
    """Everything done for one order in a fetching thread: the calls, BrickOwl's translation,
    and the payloads serialised for the writer."""
    order, lines = adapter.fetch(head)
    if translator is not None:
        translator.translate(lines)
    store.serialise_payloads(order, lines)
    return order, lines


def fetch_in_order(
    fetch: Callable[[OrderSummary], tuple[Order, list[OrderLine]]],
    heads: Iterable[OrderSummary],
    workers: int,
    on_skip: Callable[[OrderSummary, ProviderError], None],
) -> Iterator[tuple[Order, list[OrderLine]]]:
    """Fetch with a few requests in flight, yielding in the given (priority) order.

    At most ``2 * workers`` orders are held at once, so memory stays flat however many
    orders a backfill has. An error that concerns one order (gone, refused, unreadable)
    skips that order; anything else (auth, outage, budget) ends the run.
    """
    heads = iter(heads)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="fetch") as pool:
        pending = deque((head, pool.submit(fetch, head)) for head in islice(heads, 2 * max(1, workers)))
        try:
            while pending:
                head, future = pending.popleft()
                try:
                    yield future.result()
                except ORDER_ERRORS as error:
                    on_skip(head, error)
                except BudgetExhaustedError as error:
                    # Nothing more is asked for, but orders already fetched were paid for: keep them.
                    yield from _already_fetched(pending, on_skip)
                    raise error
                for more in islice(heads, 1):
                    pending.append((more, pool.submit(fetch, more)))
        finally:
            for _, future in pending:
                future.cancel()


def _already_fetched(pending: deque, on_skip) -> Iterator[tuple[Order, list[OrderLine]]]:
    """The orders still in flight that were fetched whole, in order; the others are dropped."""
    while pending:
        head, future = pending.popleft()
        try:
            yield future.result()
        except ORDER_ERRORS as error:
            on_skip(head, error)
        except ProviderError:
            pass  # refused by the budget too, or failed: fetched again on the next run


def parse_iso(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def refresh_colour_table(db: Database, account: str, adapter, translator) -> list[str]:
    """A line in a colour our table does not know (BrickOwl added one): fetch BrickOwl's table,
    at most weekly; retry_deferred_lines then matches the waiting lines."""
    from marketsync.identity import refresh_colors_if_due

    unknown = set(translator.unknown_colours)
    problem = refresh_colors_if_due(db, account, adapter)
    translator.reload_colors()
    problems = [problem] if problem else []
    for colour in sorted(c for c in unknown if c not in translator.colors):
        problems.append(f"brickowl: colour {colour} is not in the colour table yet; its lines wait unmatched "
                        "until it is (the table is fetched from BrickOwl at most weekly)")
    return problems


def retry_deferred_lines(db: Database, account: str, provider: str, index: LotIndex, translator) -> None:
    """Open lines whose catalog lookup was deferred (an outage, the per-run lookup budget) get
    another try. Their order's fingerprint has not changed, so no listing fetches them again:
    without this their stock would never be reserved."""
    from marketsync import reconcile

    refs = [ref for (ref,) in db.execute(
        "select distinct l.order_ref from order_items l join orders o on o.id = l.order_ref "
        "where o.business_account_id = ? and o.provider = ? and o.manual_release = 0 "
        f"and o.status in ({', '.join('?' for _ in OPEN_STATUSES)}) and l.inventory_id is null "
        "and (l.unmatched_reason like '%id lookup deferred%' or l.unmatched_reason like '%not in the colour table%') "
        "order by l.order_ref",
        [account, provider, *OPEN_STATUSES],
    )]
    for ref in refs:
        if translator.lookup_error:
            break
        reconcile.reconcile(db, account, index, translator, order_ref=ref)


def list_window(db: Database, account: str, provider: str, state: dict) -> tuple[set[str], dt.datetime | None]:
    """The open orders we hold, and the earliest time a changed order could carry."""
    rows = db.execute(
        f"select order_id, date_ordered from orders where business_account_id = ? and provider = ? "
        f"and status in ({', '.join('?' for _ in OPEN_STATUSES)}) and manual_release = 0",
        [account, provider, *OPEN_STATUSES],
    ).fetchall()
    open_ids = {order_id for order_id, _ in rows}
    since = parse_iso(state.get("list_window_start"))
    if since is not None:
        since -= LIST_OVERLAP
        opened = [parse_iso(d) for _, d in rows if d]
        if opened:
            since = min([since, *opened])
    return open_ids, since


def sync_provider(
    db: Database,
    account: str,
    adapter,
    *,
    counter: CallCounter,
    index: LotIndex,
    translator=None,
    full: bool = False,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> ProviderResult:
    provider = adapter.name
    progress = progress or NoProgress()
    result = ProviderResult(provider)
    started = utcnow()
    store.record_attempt(db, account, provider, started)
    state = store.sync_state(db, account, provider)
    open_ids, since = list_window(db, account, provider, state)
    writer = OrderWriter(db, account, index, result, counter, translator)
    calls_before = counter.totals.get(provider, 0)
    try:
        listing = adapter.list_for_sync(first=not state.get("last_synced_at"), open_ids=open_ids, since=since, full=full)
        result.complete = listing.complete
        result.problems += [f"{provider}: {w}" for w in listing.warnings]
        known = store.known_orders(db, account, provider)
        changed = [s for s in listing.summaries if known.get(s.order_id, (None,))[0] != s.fingerprint]
        changed.sort(key=lambda s: (s.status not in OPEN_STATUSES, -(s.date_ordered.timestamp() if s.date_ordered else 0)))
        result.listed, result.changed = len(listing.summaries), len(changed)
        del listing, known  # from here on only the changed summaries are needed, each until fetched
        progress.start(provider, len(changed))

        def fetch(head: OrderSummary):
            return fetch_order(adapter, head, translator)

        def skip(head: OrderSummary, error: ProviderError) -> None:
            if isinstance(error, NotFoundError):
                result.complete = False
                result.problems.append(f"{provider}: order {head.order_id} vanished while syncing; it is retried next run")
            else:
                result.skipped += 1
                detail = error.message.removeprefix(f"{provider}: ")
                result.problems.append(f"{provider}: order {head.order_id} skipped: {detail}; it is retried next run")

        for order, lines in fetch_in_order(fetch, handed_out(changed), concurrency, skip):
            writer.add(order, lines)
            progress.advance(provider)
        writer.flush()
        if translator is not None and translator.unknown_colours:
            result.problems += refresh_colour_table(db, account, adapter, translator)
        if translator is not None and not translator.lookup_error:
            retry_deferred_lines(db, account, provider, index, translator)
        if result.skipped:
            result.ok, result.error = False, f"{provider}: {result.skipped} order(s) could not be synced; the rest were"
        if translator is not None and translator.lookup_error:
            result.problems.append(f"{provider}: catalog lookups paused until the next run: {translator.lookup_error}")
    except MarketsyncError as error:
        result.ok, result.error = False, error.format_message()
        try:
            writer.flush()  # keep what was fetched completely: each order is whole or absent
        except MarketsyncError:
            pass
        if isinstance(error, BudgetExhaustedError) and result.changed:  # counted once all is saved
            result.error += f" ({result.written} orders saved this run)"
    result.calls = counter.totals.get(provider, 0) - calls_before
    if result.ok:
        if result.complete:
            store.record_success(db, account, provider, listed_at=started, calls=result.calls, changed=result.changed)
    else:
        store.record_failure(db, account, provider, result.error, calls=result.calls)
    return result



def run(
    db: Database,
    account: str,
    providers: list[str],
    settings,
    *,
    full: bool = False,
    progress: Progress | None = None,
    environ=None,
) -> list[ProviderResult]:
    """Sync each provider in turn; the caller holds the writer lock."""
    from marketsync.identity import Translator
    from marketsync.providers import build_adapter

    counter = CallCounter()
    index = LotIndex(db, account)
    results = []
    for provider in providers:
        adapter = build_adapter(
            provider, settings, counter=counter, environ=environ,
            calls_today=store.api_calls_on(db, account, provider),
        )
        translator = Translator(db, account, index, adapter) if provider == "brickowl" else None
        results.append(sync_provider(
            db, account, adapter, counter=counter, index=index, translator=translator, full=full,
            concurrency=settings.concurrency, progress=progress,
        ))
    return results
