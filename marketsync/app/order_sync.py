"""The sync engine: each marketplace's new and changed orders into SQLite, lines matched to
lots, stock reserved through the ledger.

Per provider: list orders (one call when nothing changed), fetch only orders whose
fingerprint changed (open ones first, a few requests in flight), and write each order's
row, lines, ledger entries and lot counters in one transaction. The providers are asked at
the same time, each from its own thread, while every write happens on the caller's thread
(the store's one connection). ``last_synced_at`` moves only after the whole provider run
succeeded. One provider failing never stops the other.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Protocol, cast

from marketsync.store import Store

from marketsync.app import booking, collector
from marketsync.errors import (
    BadResponseError,
    BudgetExhaustedError,
    MarketsyncError,
    NotFoundError,
    ProviderError,
    RequestRejectedError,
)
from marketsync.rules.matching import LotIndex
from marketsync.model import (
    Adapter,
    Catalog,
    Notified,
    Order,
    OrderLine,
    OrderSummary,
    Status,
    Unmatched,
    is_open,
    iso,
    parse_iso,
    utcnow,
)
from marketsync.registry import Capability, marketplace
from marketsync.store import catalog as stored_catalog
from marketsync.store import orders as stored_orders
from marketsync.store import problems as stored_problems
from marketsync.store import listener as stored_listener
from marketsync.store import state
from marketsync.app.translate import Translator

log = logging.getLogger("marketsync.app.order_sync")

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
    touched: set[tuple[str, str]] = field(default_factory=set)  # (provider, its lot id) of lines written
    order_ids: set[str] = field(default_factory=set)  # the orders written
    store_id: str | None = None  # the seller's store id, as the orders written name it
    problems: list[str] = field(default_factory=list)  # one line each, for stderr
    oversold: set[int] = field(default_factory=set)  # lots its orders took past on hand (said at the run's end)
    unmatched: dict[str, tuple[str, str]] = field(default_factory=dict)  # problem line -> (order id, line key)


def line_label(line: OrderLine) -> str:
    what = " ".join(
        str(x) for x in (line.part_number or line.boid or line.name, line.color_id, line.condition) if x is not None
    )
    return f"line {line.line_key} ({what})"


class Calls(Protocol):
    """Counts a run's calls per marketplace (the HTTP layer's CallCounter)."""

    totals: dict[str, int]

    def take_unsaved(self) -> dict[str, int]: ...


class OrderWriter:
    """Writes fetched orders in small batches of transactions, one order never split."""

    def __init__(self, store: Store, index: LotIndex, result: ProviderResult,
                 counter: Calls, translator: Translator | None = None, seen_by: str | None = None):
        self.store, self.index, self.result = store, index, result
        self.counter, self.translator = counter, translator
        self.seen_by = seen_by  # who sees new open orders first ("sync", "listener"); None: a backfill, not timed
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
        learned = self.translator.take_learned() if self.translator is not None else None
        oversold_before = set(self.result.oversold)
        try:
            with self.store.atomic():
                problems = self.write_all(self.buffer)
                # kept with the orders that caused them: a run killed before its report leaves them to the next
                stored_problems.keep(self.store, problems, self.result.oversold - oversold_before)
                if learned:
                    stored_catalog.save(self.store, learned)
                state.add_api_calls(self.store, self.counter.take_unsaved())
        except BaseException:
            self.index.reload()  # the rolled-back deltas must not linger in memory
            if learned and self.translator is not None:
                self.translator.keep_learned(learned)
            raise
        self.result.written += len(self.buffer)
        self.result.problems += problems
        self.buffer.clear()
        self.buffered_lines = 0
        self.flushed_at = time.monotonic()
        collector.collect_young()  # the batch's cycles, if any, while the run holds the collector back

    def write_all(self, buffer: list[tuple[Order, list[OrderLine]]]) -> list[str]:
        """The batch in one savepoint; should anything in it fail, it is rolled back and written
        again order by order (each a batch of one), so only a bad order is skipped."""
        if len(buffer) == 1:
            return self.write_or_skip(buffer)
        seen = set(self.oversold_seen)
        try:
            with self.store.atomic():
                return self.write(buffer)
        except sqlite3.OperationalError:
            raise  # locked, full, read-only: the database's trouble, not an order's
        except Exception:  # noqa: BLE001 - found and reported by the order-by-order pass
            log.debug("batch write failed; writing its orders one by one", exc_info=True)
            self.index.reload()
            self.oversold_seen.clear()
            self.oversold_seen.update(seen)
        problems: list[str] = []
        for one in buffer:
            problems += self.write_or_skip([one])
        return problems

    def write_or_skip(self, one: list[tuple[Order, list[OrderLine]]]) -> list[str]:
        """One order in a savepoint: a payload our code chokes on skips that order, not the run."""
        try:
            with self.store.atomic():
                return self.write(one)
        except sqlite3.OperationalError:
            raise  # locked, full, read-only: the database's trouble, not this order's
        except Exception as exc:  # noqa: BLE001 - reported, and the order is retried next run
            order = one[0][0]
            log.debug("cannot store %s order %s", order.provider, order.order_id, exc_info=True)
            self.index.reload()  # same connection: sees the batch so far, not the rolled-back order
            self.result.skipped += 1
            return [f"{order.provider} order {order.order_id} could not be stored "
                    f"({exc.__class__.__name__}: {exc}); it is retried next run"]

    def write(self, buffer: list[tuple[Order, list[OrderLine]]]) -> list[str]:
        kept = stored_orders.mark_details_gone(self.store, [o for o, _ in buffer if o.details_gone])
        buffer = [(o, lines) for o, lines in buffer if not (o.details_gone and o.order_id in kept)]
        if not buffer:
            return []
        was_open = stored_orders.stored_open(self.store, [order for order, _ in buffer])
        new = (stored_listener.new_order_ids(self.store, buffer[0][0].provider, [o.order_id for o, _ in buffer])
               if self.seen_by else set())
        keys = stored_orders.upsert_orders(self.store, [order for order, _ in buffer])
        self._first_seen(buffer, keys, new)
        self.result.touched.update((line.provider, line.provider_lot_id) for _, lines in buffer for line in lines
                                   if line.provider_lot_id)
        states = [booking.OrderState(ref, order.provider, order.order_id, order.status, manual_release, lines,
                                     was_open=(order.provider, order.order_id) in was_open,
                                     date_ordered=iso(order.date_ordered))
                  for (order, lines), (ref, manual_release) in zip(buffer, keys)]
        problems: list[str] = []
        for (order, _), booked in zip(buffer, booking.book(self.store, self.index, states)):
            problems += self.problems(order, booked)
        return problems

    def _first_seen(self, buffer: list[tuple[Order, list[OrderLine]]], keys: list[tuple[int, bool]],
                    new: set[str]) -> None:
        """The oversell window's start (new open orders, when and by which path first seen) and the
        seller's store id where the orders name it."""
        self.result.order_ids.update(order.order_id for order, _ in buffer)
        if new and self.seen_by:
            stored_listener.seen(self.store, [ref for (order, _), (ref, _) in zip(buffer, keys)
                                              if order.order_id in new and is_open(order.status)], self.seen_by)
        store_ids = {order.store_id for order, _ in buffer if order.store_id}
        if len(store_ids) == 1 and self.result.store_id != next(iter(store_ids)):
            self.result.store_id = next(iter(store_ids))
            state.record_store_id(self.store, self.result.provider, self.result.store_id)

    def problems(self, order: Order, booked: booking.Booked) -> list[str]:
        """One line per thing the seller should know about a just-written order (a lot it oversold
        is said once, at the end of the run, with the figures the run leaves: :func:`oversold_lines`)."""
        self.result.oversold.update(_newly_oversold(booked, self.oversold_seen))
        problems = order_problems(order.provider, order.order_id, order.status, order.provider_status, booked,
                                  self.oversold_seen,
                                  self.translator.first_report if self.translator is not None else None)
        if not problems:
            return problems
        for line, match in zip(booked.order.lines, booked.matches):  # which line each unmatched line's problem names
            if match.inventory_id is None:
                prefix = f"{order.provider} order {order.order_id}: {line_label(line)} unmatched: "
                self.result.unmatched.update({text: (order.order_id, line.line_key) for text in problems
                                              if text.startswith(prefix)})
        return problems


def order_problems(provider: str, order_id: str, status: str, provider_status: str, booked: booking.Booked,
                   oversold_seen: set[int], first_report: Callable[[OrderLine], bool] | None = None) -> list[str]:
    problems = []
    if status == "unknown":
        problems.append(f"{provider} order {order_id} has an unknown status {provider_status!r}; "
                        "its stock stays reserved")
    returned = sum(-d.consumed for d in booked.deltas if d.reason == "unshipped")
    if returned:
        problems.append(f"{provider} order {order_id} is {status} again after it shipped: its {returned} shipped "
                        "piece(s) are back on hand and reserved again")
    if is_open(status, booked.order.manual_release):
        problems += [f"{provider} order {order_id}: {line_label(line)} unmatched: {reason}"
                     for line, reason in _newly_unmatched(booked, first_report)]
    return problems


def _newly_unmatched(booked: booking.Booked, first_report: Callable[[OrderLine], bool] | None
                     ) -> Iterator[tuple[OrderLine, str | None]]:
    """The order's lines (and why) left unmatched that were not, or not for that reason, before."""
    for line, match in zip(booked.order.lines, booked.matches):
        was = booked.before.get(line.line_key)
        if match.kind == Unmatched.COLOUR_UNKNOWN:
            continue  # reported once per colour, after the table is refreshed
        if match.inventory_id is None and (was is None or was != (None, match.reason)):
            if first_report is not None and not first_report(line):
                continue  # an unknown BOID is named once per run, with its fix (Translator.first_report)
            yield line, match.reason


def _newly_oversold(booked: booking.Booked, oversold_seen: set[int]) -> set[int]:
    """The lots the order oversold that no order of the run did yet (``oversold_seen`` grows)."""
    new = {lot.id for lot in booked.oversold} - oversold_seen
    oversold_seen.update(new)
    return new


def oversold_lines(store: Store, results: list[ProviderResult], said: set[int]) -> None:
    """Each lot the results' orders oversold that is still oversold now, said once (``said`` grows),
    with the figures it has now: a line on the result whose order oversold it first."""
    from marketsync.store.queries import oversold

    now = {row["id"]: row for row in oversold(store)}
    for result in results:
        for lot_id in sorted(result.oversold - said):
            said.add(lot_id)
            lot = now.get(lot_id)
            if lot is not None:
                result.problems.append(
                    f"oversold: lot {lot_id} ({lot['part_number']} colour {lot['color_id']} {lot['condition']} at "
                    f"{lot['location'] or 'no location'}) has {lot['quantity_reserved']} reserved but "
                    f"{lot['quantity']} on hand")


def handed_out(items: list) -> Iterator:
    """The list's items in order, each dropped from the list as it is handed out: a backfill's
    order list (thousands of summaries and their raw JSON) is freed as the run goes."""
    items.reverse()
    while items:
        yield items.pop()


def fetch_order(adapter: Adapter, head: OrderSummary,
                translator: Translator | None = None) -> tuple[Order, list[OrderLine]]:
    """Everything done for one order in a fetching thread: the calls, BrickOwl's translation,
    and the payloads serialised for the writer."""
    order, lines = adapter.fetch(head)
    if translator is not None:
        translator.translate(lines)
    stored_orders.serialise_payloads(order, lines)
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


def _already_fetched(pending: deque, on_skip: Callable[[OrderSummary, ProviderError], None]
                     ) -> Iterator[tuple[Order, list[OrderLine]]]:
    """The orders still in flight that were fetched whole, in order; the others are dropped."""
    while pending:
        head, future = pending.popleft()
        try:
            yield future.result()
        except ORDER_ERRORS as error:
            on_skip(head, error)
        except ProviderError:
            pass  # refused by the budget too, or failed: fetched again on the next run


def refresh_colour_table(store: Store, catalog: Catalog, translator: Translator) -> list[str]:
    """A line in a colour our table does not know (BrickOwl added one): fetch BrickOwl's table,
    at most weekly; retry_waiting_lines then matches the waiting lines."""
    from marketsync.app import catalog as catalogue

    unknown = set(translator.unknown_colours)
    problems = catalogue.refresh_colours_if_due(store, catalog)
    translator.use_colours(catalogue.colour_table(store))
    for colour in sorted(c for c in unknown if c not in translator.colors):
        problems.append(f"brickowl: colour {colour} is not in the colour table yet; its lines wait unmatched "
                        "until it is (the table is fetched from BrickOwl at most weekly)")
    return problems


def retry_waiting_lines(store: Store, provider: str, index: LotIndex, translator: Translator) -> None:
    """Open lines whose catalog lookup was deferred (an outage, the per-run lookup budget) or whose
    colour was newer than the table get another try. Their order's fingerprint has not changed,
    so no listing fetches them again: without this their stock would never be reserved."""
    from marketsync.app import reserve

    for ref in stored_orders.orders_to_retry(store, provider):
        if translator.lookup_error:
            break
        reserve.rematch(store, index, translator, order_ref=ref)


def list_window(store: Store, provider: str, sync_state: dict) -> tuple[set[str], dt.datetime | None]:
    """The open orders we hold, and the earliest time a changed order could carry."""
    rows = stored_orders.open_orders(store, provider)
    open_ids = {order_id for order_id, _ in rows}
    since = parse_iso(sync_state.get("list_window_start"))
    if since is not None:
        since -= LIST_OVERLAP
        opened = [d for d in (parse_iso(d) for _, d in rows) if d is not None]
        if opened:
            since = min([since, *opened])
    return open_ids, since


class ProviderRun:
    """One marketplace's part of a sync run. Its HTTP work -- the order list, the orders fetched a
    few in flight, BrickOwl's translation -- runs in a thread of its own (:meth:`produce`), so the
    marketplaces of a run are asked at the same time under one run deadline; everything that
    touches the database (the state read first, each batch of orders, the outcome recorded last)
    runs on the caller's thread, the one connection's (:meth:`receive`, :meth:`finish`)."""

    def __init__(self, store: Store, adapter: Adapter, *, counter: Calls, index: LotIndex,
                 translator: Translator | None = None, catalog: Catalog | None = None, full: bool = False,
                 concurrency: int = 4, progress: Progress | None = None):
        self.store, self.adapter, self.counter, self.index = store, adapter, counter, index
        self.translator, self.catalog, self.full, self.concurrency = translator, catalog, full, concurrency
        self.progress = progress or NoProgress()
        self.provider = provider = adapter.name
        self.result = result = ProviderResult(provider)
        self.started = utcnow()
        state.record_attempt(store, provider, self.started)
        sync_state = state.sync_state(store, provider)
        self.open_ids, self.since = list_window(store, provider, sync_state)
        self.first = not sync_state.get("last_synced_at")
        self.writer = OrderWriter(store, index, result, counter, translator, seen_by=None if self.first else "sync")
        result.store_id = sync_state.get("store_id")
        self.known: dict[str, tuple] | None = stored_orders.known_orders(store, provider)
        self.fingerprints: dict[str, str] = {}  # the changed orders' stored fingerprints (those stored)
        self.calls_before = counter.totals.get(provider, 0)
        self.stop = threading.Event()  # set: the producer sends nothing more
        self.failed: MarketsyncError | None = None  # met while writing: the rest of this run is not written

    # --- the producing thread: HTTP only, no database -------------------------------------------
    def produce(self, put: Callable[..., bool]) -> None:
        """List, then fetch the changed orders; each message goes to the writing thread through
        ``put(kind, payload)``, which answers False once this marketplace is to stop. Always ends
        with ``done`` (the error that ended it, or None) or ``crash`` (a bug, raised there)."""
        error: MarketsyncError | None = None
        try:
            self._produce(put)
        except MarketsyncError as exc:
            error = exc
        except BaseException as exc:  # noqa: BLE001 - raised again on the writing thread
            put("crash", exc, force=True)
            return
        put("done", error, force=True)

    def _produce(self, put: Callable[..., bool]) -> None:
        listed = self._changed_orders()
        changed = listed[0]
        if not put("listed", listed[1:]):
            return
        def skip(head: OrderSummary, error: ProviderError) -> None:
            put("skip", (head, error))

        fetch = partial(fetch_order, self.adapter, translator=self.translator)
        for fetched in fetch_in_order(fetch, handed_out(changed), self.concurrency, skip):
            if not put("order", fetched):
                return

    def _changed_orders(self) -> tuple[list[OrderSummary], bool, list[str], int, int, dict[str, str]]:
        """The listed orders whose fingerprint changed, open ones first, newest first; whether the
        list is complete, its warnings, its length, how many changed, and the fingerprints stored for
        the changed ones that have one (none on a first sync). The listing itself goes when this
        returns: from here on only the changed summaries are needed, each until fetched."""
        listing = self.adapter.list_for_sync(first=self.first, open_ids=self.open_ids, since=self.since,
                                             full=self.full)
        known, self.known = self.known or {}, None
        changed = [s for s in listing.summaries if known.get(s.order_id, (None,))[0] != s.fingerprint]
        changed.sort(key=lambda s: (not is_open(s.status), -(s.date_ordered.timestamp() if s.date_ordered else 0)))
        stored = ((s.order_id, known.get(s.order_id, (None,))[0]) for s in changed)
        fingerprints = {order_id: fingerprint for order_id, fingerprint in stored if fingerprint is not None}
        return changed, listing.complete, list(listing.warnings), len(listing.summaries), len(changed), fingerprints

    # --- the writing thread ---------------------------------------------------------------------
    def receive(self, kind: str, payload: object) -> bool:
        """One message from the producer, on the writing thread; True once the run is finished."""
        if kind == "done":
            self.finish(cast("MarketsyncError | None", payload))
            return True
        if self.failed is not None:
            return False  # the producer is stopping: what it still sends is fetched again next run
        try:
            if kind == "listed":
                self._listed(cast(tuple, payload))
            elif kind == "order":
                order, lines = cast("tuple[Order, list[OrderLine]]", payload)
                _write_one(order, lines, self.fingerprints, self.writer, self.progress)
            elif kind == "skip":
                _report_skip(self.result, *cast("tuple[OrderSummary, ProviderError]", payload))
        except MarketsyncError as error:
            self.failed = error
            self.stop.set()
        return False

    def _listed(self, payload: tuple) -> None:
        complete, warnings, listed, changed, self.fingerprints = payload
        result = self.result
        result.complete = complete
        result.problems += [f"{self.provider}: {w}" for w in warnings]
        result.listed, result.changed = listed, changed
        self.progress.start(self.provider, result.changed)

    def finish(self, error: MarketsyncError | None) -> None:
        """The rest written, the lines waiting for a lookup retried, and the outcome recorded:
        ``last_synced_at`` moves only after a complete success."""
        error = self.failed or error
        if error is None:
            try:
                self.writer.flush()
                _after_orders(self.store, self.index, self.translator, self.catalog, self.result)
            except MarketsyncError as exc:
                error = exc
        if error is not None:
            _fail(self.writer, error)
        self.result.calls = self.counter.totals.get(self.provider, 0) - self.calls_before
        _record_outcome(self.store, self.result, self.started)


QUEUED_PER_MARKETPLACE = 8  # fetched orders waiting for the writer, per marketplace: memory stays flat


def run_concurrently(runs: list[ProviderRun]) -> None:
    """Each marketplace's producer in its own thread (its own adapter and HTTP session); their
    orders written on this thread as they arrive, each marketplace in its own batches. Should
    writing fail (the database's trouble), every producer is stopped and the error raised."""
    messages: queue.Queue = queue.Queue(maxsize=QUEUED_PER_MARKETPLACE * max(1, len(runs)))

    def putter(run: ProviderRun) -> Callable[..., bool]:
        def put(kind: str, payload: object, force: bool = False) -> bool:
            while force or not run.stop.is_set():
                try:
                    messages.put((run, kind, payload), timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False
        return put

    threads = [threading.Thread(target=run.produce, args=(putter(run),), name=f"sync-{run.provider}", daemon=True)
               for run in runs]
    live = len(runs)
    try:
        with collector.paused():  # a backfill's objects are freed by reference counting; batches collect the rest
            for thread in threads:
                thread.start()
            while live:
                run, kind, payload = messages.get()
                if kind == "crash":
                    raise cast(BaseException, payload)
                live -= run.receive(kind, payload)
    finally:
        for run in runs:
            run.stop.set()
        while True:  # a producer blocked on a full queue sees its stop at once
            try:
                messages.get_nowait()
            except queue.Empty:
                break


def sync_provider(store: Store, adapter: Adapter, **options: Any) -> ProviderResult:
    """One marketplace's orders (:class:`ProviderRun`): the run of one."""
    one = ProviderRun(store, adapter, **options)
    run_concurrently([one])
    return one.result


def sync_named(
    store: Store,
    adapter: Notified,
    order_ids: Iterable[str],
    *,
    counter: Calls,
    index: LotIndex,
    translator: Translator | None = None,
    catalog: Catalog | None = None,
    concurrency: int = 4,
    seen_by: str = "listener",
) -> ProviderResult:
    """Only the orders named (a listener's hint): each fetched whole by its id and written through
    the same writer as a listed sync. An order the marketplace does not have costs its one call and
    changes nothing. ``last_synced_at`` does not move: only a listed sync proves nothing was missed."""
    provider = adapter.name
    result = ProviderResult(provider)
    result.store_id = state.sync_state(store, provider).get("store_id")
    writer = OrderWriter(store, index, result, counter, translator, seen_by=seen_by)
    calls_before = counter.totals.get(provider, 0)
    heads = [OrderSummary(provider, order_id, Status.UNKNOWN, "", "", None) for order_id in sorted(set(order_ids))]
    result.listed = result.changed = len(heads)

    def fetch(head: OrderSummary) -> tuple[Order, list[OrderLine]]:
        order, lines = adapter.fetch_named(head.order_id)
        if translator is not None:
            translator.translate(lines)
        stored_orders.serialise_payloads(order, lines)
        return order, lines

    def skip(head: OrderSummary, error: ProviderError) -> None:
        if isinstance(error, NotFoundError):
            result.problems.append(f"{provider}: order {head.order_id} named by a hint does not exist; nothing changed")
        else:
            _report_skip(result, head, error)

    try:
        _write_fetched(fetch_in_order(fetch, heads, concurrency, skip), {}, writer, NoProgress())
        writer.flush()
        _after_orders(store, index, translator, catalog, result)
    except MarketsyncError as error:
        _fail(writer, error)
    result.calls = counter.totals.get(provider, 0) - calls_before
    return result


def _report_skip(result: ProviderResult, head: OrderSummary, error: ProviderError) -> None:
    """An order that could not be fetched: it is retried next run."""
    provider = result.provider
    if isinstance(error, NotFoundError):
        result.complete = False
        result.problems.append(f"{provider}: order {head.order_id} vanished while syncing; it is retried next run")
    else:
        result.skipped += 1
        result.problems.append(f"{provider}: order {head.order_id} skipped: {error.detail}; "
                               "it is retried next run")


def _write_fetched(fetched: Iterable[tuple[Order, list[OrderLine]]], stored_fingerprints: dict[str, str],
                   writer: OrderWriter, progress: Progress) -> None:
    """Hand each fetched order to the writer (:func:`_write_one`)."""
    for order, lines in fetched:
        _write_one(order, lines, stored_fingerprints, writer, progress)


def _write_one(order: Order, lines: list[OrderLine], stored_fingerprints: dict[str, str],
               writer: OrderWriter, progress: Progress) -> None:
    """Hand one fetched order to the writer, naming one whose list and detail disagree."""
    result = writer.result
    if order.listed_as is not None and stored_fingerprints.get(order.order_id) == order.fingerprint:
        result.problems.append(
            f"{result.provider}: order {order.order_id} is listed as {order.listed_as!r} but its detail still says "
            f"{order.provider_status!r}; it is fetched again every run until the two agree")
    writer.add(order, lines)
    progress.advance(result.provider)


def _after_orders(store: Store, index: LotIndex, translator: Translator | None, catalog: Catalog | None,
                  result: ProviderResult) -> None:
    """Once the orders are written: a newer colour table, the lines waiting for a lookup, and the
    run's verdict on skipped orders and paused lookups."""
    provider = result.provider
    if translator is not None and catalog is not None and translator.unknown_colours:
        result.problems += refresh_colour_table(store, catalog, translator)
    if translator is not None and not translator.lookup_error:
        retry_waiting_lines(store, provider, index, translator)
    if result.skipped:
        result.ok, result.error = False, f"{provider}: {result.skipped} order(s) could not be synced; the rest were"
    if translator is not None and translator.lookup_error:
        result.problems.append(f"{provider}: catalog lookups paused until the next run: {translator.lookup_error}")


def _fail(writer: OrderWriter, error: MarketsyncError) -> None:
    """The run stopped: keep what was fetched completely (each order is whole or absent)."""
    result = writer.result
    result.ok, result.error = False, error.message
    try:
        writer.flush()
    except MarketsyncError:
        pass
    if isinstance(error, BudgetExhaustedError) and result.changed:  # counted once all is saved
        result.error += f" ({result.written} orders saved this run)"


def _record_outcome(store: Store, result: ProviderResult, started: dt.datetime) -> None:
    """``last_synced_at`` moves only after a complete success; a failure is recorded as one."""
    if result.ok:
        if result.complete:
            state.record_success(store, result.provider, listed_at=started, calls=result.calls,
                                 changed=result.changed)
    else:
        state.record_failure(store, result.provider, result.error or f"{result.provider} failed", calls=result.calls)


def run(store: Store,
    adapters: list[Adapter],
    counter: Calls,
    *,
    full: bool = False,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> list[ProviderResult]:
    """Sync the marketplaces at the same time, each asked from its own thread under the run's one
    deadline, their orders written here (:func:`run_concurrently`); the caller holds the writer lock
    and built the adapters (BrickOwl's also serves as the catalogue for translation)."""
    from marketsync.app import catalog as catalogue
    from marketsync.store.inventory import lot_index

    index = lot_index(store)
    runs = []
    for adapter in adapters:
        catalog = cast(Catalog, adapter) if marketplace(adapter.name).can(Capability.CATALOG) else None
        translator = catalogue.translator(store, index, catalog) if catalog is not None else None
        runs.append(ProviderRun(store, adapter, counter=counter, index=index, translator=translator, catalog=catalog,
                                full=full, concurrency=concurrency, progress=progress))
    run_concurrently(runs)
    results = [one.result for one in runs]
    replan_short_lines(store, index)
    return results


def replan_short_lines(store: Store, index: LotIndex) -> None:
    """Lines left short on an oversold lot get another plan once the run's releases are in: they
    take the rest from another bin of the part where one has it (a cancelled order freed it).
    Only orders a bin of their part has pieces for are re-planned, all in one transaction (each
    order still its own savepoint), and only the lines that change are written: an idle run with
    thousands of short orders writes nothing."""
    from marketsync.app import reserve
    from marketsync.store.queries import orders_short_with_stock_elsewhere

    refs = orders_short_with_stock_elsewhere(store)
    if not refs:
        return
    try:
        with store.atomic():
            for ref in refs:
                reserve.rematch(store, index, order_ref=ref)
    except BaseException:
        index.reload()  # the rolled-back deltas must not linger in memory
        raise
