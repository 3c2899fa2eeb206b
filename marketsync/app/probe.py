"""``stock probe``: check the live store safely, on one lot the seller chooses.

The lot is read, changed by +1 and read back, then by -1 and read back again, each change through
the journal push uses (``_listing_changes``: recorded as ``intended`` and committed before it is
sent, resolved after). What each write was answered (status and body, every secret masked) is
shown with whether the adapter read it right: its outcome against the figure the read-back shows.
Nothing is ever sent blindly: a lost answer, a refusal or a read-back that disagrees stops the probe
with the change left as the journal says (an open one, ``unknown``, is settled by the next push
with everything else, docs/stock-model.md "Exactly once").

Refused before anything is sent: a listing not linked, held, with open changes, not observed yet or
no longer for sale; a lot buyers cannot see, at 0 (BrickLink deletes a lot that reaches 0 unless
``is_retain`` is set, which the probe never touches), or whose figure moved since marketsync last
confirmed it (``sync --push`` judges that first).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from marketsync.app.context import Workspace
from marketsync.store import Store

from marketsync import __version__
from marketsync.rules import listings as rules
from marketsync.config import secret_values
from marketsync.errors import ConfigError, MarketsyncError, NotFoundLocally, NotSafe
from marketsync.masking import mask
from marketsync.model import ChangeState, ChangeResult, Listings, Outcome, QuantityChange, RemoteLot, now_iso
from marketsync.store import listings as stored
from marketsync.store import state
from marketsync.app.order_sync import Calls

CHANGES = (+1, -1)
HEADERS = ("Content-Type", "Content-Length", "Retry-After", "Date")  # the answer's headers a capture keeps
SECRET_FIELDS = frozenset({"key", "api_key", "oauth_signature", "oauth_token", "oauth_consumer_key"})


def on_terminal() -> bool:
    """Whether a person can be asked (the command refuses to change a live lot unasked off a terminal)."""
    return sys.stdin.isatty()


# --- the exchanges, masked as they are recorded ---------------------------------------------------
class Recorder:
    """``HttpClient.on_exchange``: keeps every request and its answer with each secret masked
    (BrickOwl's key travels in query strings and form bodies; BrickLink's credentials sign the
    Authorization header, which is not kept)."""

    def __init__(self, secrets: tuple[str, ...]):
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        self.exchanges: list[dict[str, Any]] = []
        self.stage = "read"

    def __call__(self, exchange: Any) -> None:
        request: dict[str, Any] = {"method": exchange.method, "path": self.scrub(exchange.path),
                                   "query": self.scrub(exchange.query)}
        if exchange.json_body is not None:
            request["json"] = self.scrub(exchange.json_body)
        if exchange.form is not None:
            request["form"] = self.scrub(exchange.form)
        response = exchange.response
        answer = None if response is None else {
            "status": response.status_code,
            "headers": {name: self.scrub(response.headers[name]) for name in HEADERS if name in response.headers},
            "body": self.scrub(response.text),
        }
        self.exchanges.append({"stage": self.stage, "request": request, "response": answer})

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return mask(value, self.secrets)
        if isinstance(value, dict):
            return {str(k): "***" if str(k).lower() in SECRET_FIELDS and v not in (None, "") else self.scrub(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub(v) for v in value]
        return value


# --- what happened -------------------------------------------------------------------------------
@dataclass
class Step:
    """One change: what was sent, what the adapter made of the answer, what the lot showed after."""

    delta: int
    before: int
    after: int
    change_id: int
    outcome: str  # the adapter's (model.Outcome)
    detail: str | None
    exchanges: list[dict[str, Any]]  # the write's, masked
    shown: int | None = None  # read back (None: gone, or the read failed)
    read_error: str | None = None
    description: str | None = None  # the lot's description as read back
    state: ChangeState = ChangeState.INTENDED  # the journal's, after
    read_right: bool | None = None  # None: cannot be told (no answer, or no read-back)
    verdict: str = ""

    @property
    def confirmed(self) -> bool:
        return self.state == ChangeState.APPLIED


@dataclass
class ProbeResult:
    provider: str
    remote_lot_id: str
    inventory_id: int
    start: int
    description: str | None
    steps: list[Step] = field(default_factory=list)
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""

    @property
    def ok(self) -> bool:
        return len(self.steps) == len(CHANGES) and all(s.confirmed and s.read_right for s in self.steps)


# --- the checks ----------------------------------------------------------------------------------
def check_listing(store: Store, provider: str, remote_lot_id: str) -> dict[str, Any]:
    """The listing, if the probe may change it as far as the database knows (nothing is sent)."""
    what = f"{provider} lot {remote_lot_id}"
    row = stored.find(store, provider, remote_lot_id)
    if row is None or row["inventory_id"] is None:
        raise NotFoundLocally(f"{what} is not linked to a local lot; link it first with "
                              f"'marketsync stock link {provider}:{remote_lot_id} LOT_ID' (nothing sent)")
    if row["held_at"] is not None:
        raise NotSafe(f"{what} is held ({row['held_reason']}); decide first with 'marketsync stock adopt "
                      f"{provider}:{remote_lot_id}' or 'marketsync stock override {provider}:{remote_lot_id}' "
                      "(nothing sent)")
    if row.get("gone_at") is not None:
        raise NotSafe(f"{what} is no longer for sale ({row.get('gone_reason')}): the probe never touches a lot "
                      "buyers cannot see (nothing sent)")
    open_changes = stored.maybe_changes(store, provider, late=False).get(row["id"], [])
    if open_changes:
        sent = ", ".join(f"{m.delta:+d}" for m in open_changes)
        raise NotSafe(f"{what} has {len(open_changes)} change(s) of marketsync's with no known outcome ({sent}); "
                      "run 'marketsync sync --push' to settle them first (nothing sent)")
    if row["listed"] is None:
        raise NotSafe(f"{what} has not been observed yet; run 'marketsync sync --push' first (nothing sent)")
    return row


def question(row: dict[str, Any]) -> str:
    listed = row["listed"]
    return (f"Change {row['provider']} lot {row['remote_lot_id']} (local lot {row['inventory_id']}, listed {listed}) "
            f"on the live store to {listed + 1} and back to {listed}? Buyers may see {listed + 1} for a moment")


def _check_lot(provider: str, remote_lot_id: str, lot: RemoteLot | None, listing: rules.Listing,
               own: rules.OwnOrders) -> RemoteLot:
    what = f"{provider} lot {remote_lot_id}"
    if lot is None:
        raise NotFoundLocally(f"{what} is not listed any more (nothing sent)")
    if not lot.for_sale:
        raise NotSafe(f"{what} is not for sale (a stockroom, unavailable or off sale): the probe never touches a lot "
                      "buyers cannot see (nothing sent)")
    if lot.quantity <= 0:
        raise NotSafe(f"{what} lists 0: the probe only changes a lot with stock (BrickLink deletes a lot that "
                      "reaches 0 unless 'retain' is set, which the probe never changes) (nothing sent)")
    orders_since = own.taken != listing.taken or own.placed != listing.placed
    if lot.quantity != listing.listed or orders_since:
        raise NotSafe(f"{what} lists {lot.quantity} where marketsync last confirmed {listing.listed}"
                      + (", and orders on it were synced since" if orders_since else "")
                      + "; run 'marketsync sync --push' first, so that the probe starts from a settled figure "
                        "(nothing sent)")
    return lot


# --- the probe -----------------------------------------------------------------------------------
def run(store: Store, adapter: Listings, remote_lot_id: str, *, calls: Calls) -> ProbeResult:
    """Read the lot, +1, read back, -1, read back (caller holds the writer lock)."""
    client = getattr(adapter, "client", None)
    recorder = Recorder((*getattr(client, "secrets", ()), *secret_values()))
    if client is not None:
        client.on_exchange = recorder
    try:
        return _probe(store, adapter, remote_lot_id, recorder)
    finally:
        if client is not None:
            client.on_exchange = None
        with store.atomic():
            state.add_api_calls(store, calls.take_unsaved())


def _probe(store: Store, adapter: Listings, remote_lot_id: str, recorder: Recorder) -> ProbeResult:
    provider = adapter.name
    row = check_listing(store, provider, remote_lot_id)  # again, under the lock
    listing = stored.as_listing(row)
    lot = adapter.read_lot(remote_lot_id)
    own = stored.own_orders(store, provider).get(remote_lot_id, rules.NO_ORDERS)
    lot = _check_lot(provider, remote_lot_id, lot, listing, own)
    result = ProbeResult(provider, remote_lot_id, row["inventory_id"], lot.quantity, lot.description,
                         exchanges=recorder.exchanges)
    figure, description = lot.quantity, lot.description
    for delta in CHANGES:
        step = _change(store, adapter, listing, figure, delta, description, recorder)
        result.steps.append(step)
        if not (step.confirmed and step.read_right):
            break  # never the next change blindly: the journal holds what is known
        figure = step.after
        if step.description is not None:  # BrickLink's, sent back with the next change as it is now
            description = step.description
    result.summary = _summary(result)
    return result


def _change(store: Store, adapter: Listings, listing: rules.Listing, before: int, delta: int,
            description: str | None, recorder: Recorder) -> Step:
    provider, remote_lot_id = adapter.name, listing.remote_lot_id
    after = before + delta
    with store.atomic():  # recorded (and committed) before it is sent
        [change_id] = stored.record_intents(store, provider, [(listing.id, remote_lot_id, before, after)])
    recorder.stage = f"{delta:+d}"
    first = len(recorder.exchanges)
    try:
        [answer] = adapter.change_quantities([QuantityChange(remote_lot_id, delta, description=description)])
    except MarketsyncError as error:  # an auth failure, the run's deadline: what was applied is not known
        answer = ChangeResult(remote_lot_id, Outcome.UNKNOWN, error.message)
    step = Step(delta, before, after, change_id, answer.outcome, answer.detail, recorder.exchanges[first:])
    if answer.outcome == Outcome.NOT_SENT:
        step.state, step.verdict = ChangeState.NOT_SENT, f"not sent: {answer.detail}"
    else:
        recorder.stage = f"read back after {delta:+d}"
        try:
            lot = adapter.read_lot(remote_lot_id)
            step.shown = lot.quantity if lot is not None else None
            step.description = lot.description if lot is not None else None
        except MarketsyncError as error:
            step.read_error = error.message
        _judge(step, provider)
    with store.atomic():
        stored.resolve_change(store, change_id, step.state, step.verdict)
        if step.state == ChangeState.APPLIED:
            stored.set_listed(store, listing.id, after)
    return step


def _judge(step: Step, provider: str) -> None:
    """The journal's state for the change and whether the adapter read its answer right."""
    shows = (f"the read-back failed ({step.read_error})" if step.read_error is not None
             else "the lot is gone" if step.shown is None else f"the lot shows {step.shown}")
    if step.outcome == Outcome.APPLIED:
        if step.read_error is None and rules.confirmed(step.before, step.after, step.shown):
            step.state, step.read_right = ChangeState.APPLIED, True
            step.verdict = f"read right: the adapter read it as applied and the lot shows {step.after}"
        elif step.read_error is not None:
            step.state = ChangeState.UNKNOWN
            step.verdict = (f"the adapter read it as applied, but {shows}: not confirmed; left open for the next "
                            "push to settle")
        else:
            step.state, step.read_right = ChangeState.UNKNOWN, False
            step.verdict = (f"NOT read right (or an order raced it): the adapter read it as applied, but {shows} "
                            f"where {step.after} was expected; left open for the next push to settle")
    elif step.outcome == Outcome.REFUSED:
        if step.read_error is None and step.shown == step.after:
            step.state, step.read_right = ChangeState.UNKNOWN, False
            step.verdict = (f"NOT read right: the adapter read it as refused ({step.detail}), but {shows}; left "
                            "open for the next push to settle")
        else:
            step.state = ChangeState.REFUSED
            if step.read_error is None and step.shown == step.before:
                step.read_right = True
            step.verdict = f"refused by {provider}: {step.detail}; {shows}"
    else:  # the answer was lost: maybe applied
        landed = " (the change seems to have landed)" if step.shown == step.after and step.read_error is None else ""
        step.state = ChangeState.UNKNOWN
        step.verdict = (f"no answer ({step.detail}): {shows}{landed}; nothing more is sent, the change is left open "
                        "for the next push to settle")


def _summary(result: ProbeResult) -> str:
    what = f"{result.provider} lot {result.remote_lot_id}"
    if result.ok:
        return (f"{what}: {', '.join(f'{s.delta:+d}' for s in result.steps)} applied and confirmed by reading the lot "
                f"back; it lists {result.start} again, as before")
    last = result.steps[-1]
    return (f"{what}: the probe stopped at {last.delta:+d} ({last.state}); nothing more was sent. "
            + ("Run 'marketsync sync --push': it settles the open change and brings the lot back to what is available"
               if any(s.state in stored.MAYBE_STATES for s in result.steps) or any(s.confirmed for s in result.steps)
               else "Nothing changed on the lot"))


# --- output --------------------------------------------------------------------------------------
def report(result: ProbeResult) -> list[str]:
    """What the probe did, a few lines per change: the request, the raw answer, the verdict."""
    lines = [f"{result.provider} lot {result.remote_lot_id} (local lot {result.inventory_id}) listed {result.start}"
             + (f", description {json.dumps(result.description, ensure_ascii=False)}"
                if result.description is not None else "")]
    for step in result.steps:
        lines.append(f"{step.delta:+d}: {step.before} -> {step.after}")
        for exchange in step.exchanges:
            request = exchange["request"]
            sent = request.get("json", request.get("form"))
            lines.append(f"  sent:   {request['method']} {request['path']}"
                         + (f" {json.dumps(sent, ensure_ascii=False)}" if sent is not None else ""))
            answer = exchange["response"]
            lines.append(f"  answer: HTTP {answer['status']} {answer['body']}" if answer is not None
                         else "  answer: none (the connection gave no answer)")
        if not step.exchanges:
            lines.append("  sent:   nothing")
        lines.append(f"  adapter: {step.outcome}" + (f" ({step.detail})" if step.detail else "")
                     + (f"; read back: {step.shown}" if step.read_error is None and step.outcome != Outcome.NOT_SENT
                        else ""))
        lines.append(f"  verdict: {step.verdict} [journal #{step.change_id}: {step.state}]")
    lines.append(result.summary)
    return lines


def capture(result: ProbeResult) -> dict[str, Any]:
    return {
        "marketsync": __version__,
        "command": "stock probe",
        "at": now_iso(),
        "provider": result.provider,
        "remote_lot_id": result.remote_lot_id,
        "local_lot": result.inventory_id,
        "lot_before": {"quantity": result.start, "description": result.description},
        "steps": [{
            "change": f"{s.delta:+d}", "before": s.before, "after": s.after, "adapter_outcome": s.outcome,
            "adapter_detail": s.detail, "read_back": s.shown, "read_back_error": s.read_error,
            "read_right": s.read_right, "journal_id": s.change_id, "journal_state": s.state, "verdict": s.verdict,
        } for s in result.steps],
        "exchanges": result.exchanges,
        "ok": result.ok,
        "summary": result.summary,
    }


def check_save_path(path: str) -> None:
    """Before anything is sent: a capture that cannot be written would be lost after the changes."""
    where = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(where) or not os.access(where, os.W_OK) or os.path.isdir(path):
        raise ConfigError(f"--save: cannot write {path} (directory {where} is missing or not writable, or it is a "
                          "directory); nothing sent")


def save(result: ProbeResult, path: str, secrets: tuple[str, ...] = ()) -> None:
    """The capture as JSON, owner-only (0600, an existing file too); every secret masked once more."""
    text = mask(json.dumps(capture(result), indent=2, ensure_ascii=False), (*secrets, *secret_values()))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        pass  # not ours to change (a shared file): O_CREAT made a new one 0600 anyway
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")


def probe(ws: Workspace, provider: str, remote_lot_id: str, *, wait: float = 0.0) -> ProbeResult:
    """``stock probe``: +1 then -1 on one lot through the journal, each answer recorded."""
    with ws.write(wait) as store:
        marketplaces = ws.marketplaces(store, [provider])
        return run(store, marketplaces.adapter(provider), remote_lot_id, calls=marketplaces.counter)
