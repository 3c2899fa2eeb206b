"""Commands a running sandbox reads on standard input, one per line (``marketsync sandbox``).

So a newcomer can play the marketplaces' part by hand: place an order, cancel or ship it, and
watch ``marketsync sync`` reserve, release and consume the stock. Every command answers on one
line (``orders`` and ``lots`` answer one line per order or lot, then a count line); an error
is one line starting with ``error:``, never a traceback. Blank lines and ``#`` comments are
ignored.
"""

from __future__ import annotations

import os
import shlex
import stat
from typing import TYPE_CHECKING, Any, Callable, Iterable, TextIO

from marketsync.sandbox.bricklink import ORDER_STATUSES as BL_STATUSES
from marketsync.sandbox.brickowl import STATUSES as BO_STATUSES
from marketsync.sandbox.brickowl import status_id
from marketsync.sandbox.colors import colors

if TYPE_CHECKING:
    from marketsync.sandbox.server import Sandbox

PROVIDERS = ("bricklink", "brickowl")
BL_SHIPPED = ("SHIPPED", "RECEIVED", "COMPLETED")
BO_SHIPPED = ("Shipped", "Received")

HELP = (
    "commands: orders [PROVIDER] | lots PROVIDER [PART|BOID] | "
    "order bricklink PART COLOUR QTY [BIN] | order brickowl BOID [COLOUR] QTY [BIN] | "
    "status PROVIDER ORDER_ID STATUS | delete PROVIDER ORDER_ID | help"
)


class CommandError(Exception):
    """A command that cannot be carried out: its message is the one line answered."""


def reads_commands(stream: Any) -> bool:
    """Is ``stream`` something to read commands from: a terminal this process owns (not a
    background job, which reading would stop), a pipe, a socket or a file? ``/dev/null``, a
    closed or missing stdin are not."""
    try:
        fd = stream.fileno()
        if os.isatty(fd):
            return os.tcgetpgrp(fd) == os.getpgrp()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISREG(mode)


def answers_to(stdout: TextIO, stderr: TextIO) -> TextIO:
    """Where answers go: standard output, unless it is a file (``marketsync sandbox >
    sandbox.env``: the .env lines stay alone in it), then standard error."""
    try:
        fd = stdout.fileno()
        if os.isatty(fd):
            return stdout
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return stdout  # not a real file (a test runner's buffer): keep it
    return stdout if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else stderr


def serve_commands(sb: "Sandbox", stdin: TextIO, stdout: TextIO) -> None:
    """Answer one command per line of ``stdin`` until its end (the sandbox keeps serving)."""
    for line in stdin:
        for answer in answer_lines(sb, line):
            print(answer, file=stdout, flush=True)


def answer_lines(sb: "Sandbox", line: str) -> list[str]:
    """The answer to one command line (no line for a blank line or a ``#`` comment)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        return [f"error: {exc}"]
    if not words:
        return []
    name, args = words[0].lower(), words[1:]
    command = COMMANDS.get(name)
    if command is None:
        return [f"error: unknown command {name!r}; try 'help'"]
    try:
        return command(sb, args)
    except CommandError as exc:
        return [f"error: {exc}"]
    except Exception as exc:  # a sandbox bug must not end the session: one line, then carry on
        return [f"error: {name} failed: {type(exc).__name__}: {exc}"]


# ---------------------------------------------------------------------- the commands
def _help(sb: "Sandbox", args: list[str]) -> list[str]:
    return [HELP]


def _orders(sb: "Sandbox", args: list[str]) -> list[str]:
    wanted = _providers(args[0] if args else None, len(args) <= 1, "orders [PROVIDER]")
    out = []
    if "bricklink" in wanted:
        with sb.bricklink.lock:
            for bl in sorted(sb.bricklink.orders.values(), key=lambda o: o.order_id):
                items = [f"{x['quantity']} x {x['no']}/{x['color_id']}{_bin(x.get('remarks'))}"
                         for batch in bl.current_batches() for x in batch]  # fmt: skip
                out.append(f"bricklink {bl.order_id} {bl.status}{' (filed)' if bl.is_filed else ''} {_lines(items)}")
    if "brickowl" in wanted:
        with sb.brickowl.lock:
            for bo in sorted(sb.brickowl.orders.values(), key=lambda o: o.order_time):
                items = [f"{x['ordered_quantity']} x {x['boid']}{_bin(x.get('personal_note'))}"
                         for x in bo.current_lines()]  # fmt: skip
                out.append(f"brickowl {bo.order_id} {bo.status} {_lines(items)}")
    return [*out, _count(len(out), "order")]


def _lots(sb: "Sandbox", args: list[str]) -> list[str]:
    if not 1 <= len(args) <= 2:
        raise CommandError("usage: lots PROVIDER [PART|BOID]")
    provider = _provider(args[0])
    only = args[1] if len(args) > 1 else None
    out = []
    if provider == "bricklink":
        for bl in sorted(sb.bricklink.all_lots(), key=lambda x: x.inventory_id):
            if only is None or bl.no == only:
                cond = "new" if bl.new_or_used == "N" else "used"
                out.append(f"bricklink lot {bl.inventory_id}: {bl.no}/{bl.color_id} {cond} x {bl.quantity}{_bin(bl.remarks)}")
    else:
        for bo in sorted(sb.brickowl.all_lots(), key=lambda x: x.lot_id):
            if only is None or bo.boid == only or bo.boid.split("-")[0] == only:
                link = f", linked to BrickLink lot {bo.external_id}" if bo.external_id else ""
                out.append(f"brickowl lot {bo.lot_id}: {bo.boid} {bo.full_con} x {bo.qty}{_bin(bo.personal_note)}{link}")
    return [*out, _count(len(out), "lot")]


def _order(sb: "Sandbox", args: list[str]) -> list[str]:
    if not args:
        raise CommandError("usage: order bricklink PART COLOUR QTY [BIN] | order brickowl BOID [COLOUR] QTY [BIN]")
    provider = _provider(args[0])
    return [_order_bricklink(sb, args[1:]) if provider == "bricklink" else _order_brickowl(sb, args[1:])]


def _order_bricklink(sb: "Sandbox", args: list[str]) -> str:
    if len(args) not in (3, 4):
        raise CommandError("usage: order bricklink PART COLOUR QTY [BIN]  (e.g. order bricklink 3001 11 2 A01)")
    part, colour, quantity = args[0], _whole(args[1], "COLOUR", 0), _whole(args[2], "QTY", 1)
    where = args[3] if len(args) > 3 else None
    store = sb.bricklink
    with store.lock:
        same = [x for x in store.all_lots() if (x.no, x.color_id) == (part, colour)]
        lot = next((x for x in same if where is not None and x.remarks == where), None) or (same[0] if same else None)
        line: dict[str, Any] = {"no": part, "color_id": colour, "quantity": quantity}
        if lot is not None:
            line.update(inventory_id=lot.inventory_id, new_or_used=lot.new_or_used)
        if where is not None:
            line["remarks"] = where
        order_id = store.add_order(status="PAID", lines=[line])
        placed = store.orders[order_id].lines[0]
        after = store.get_lot(lot.inventory_id) if lot is not None else None
    what = f"{quantity} x {part}/{colour} ({colors().bl_name(colour)}){_bin(placed.get('remarks'))}"
    taken = _taken(lot and lot.inventory_id, after.quantity if after is not None else 0)
    return f"bricklink order {order_id} placed (PAID): {what}, {taken}"


def _order_brickowl(sb: "Sandbox", args: list[str]) -> str:
    usage = "usage: order brickowl BOID [COLOUR] QTY [BIN]  (e.g. order brickowl 487300-38 2 A01)"
    if not args:
        raise CommandError(usage)
    boid, rest = args[0], args[1:]
    if "-" not in boid and len(rest) >= 2 and rest[0].isdigit() and rest[1].isdigit():
        boid, rest = f"{boid}-{rest[0]}", rest[1:]  # BOID COLOUR QTY: the coloured BOID
    if len(rest) not in (1, 2):
        raise CommandError(usage)
    quantity = _whole(rest[0], "QTY", 1)
    where = rest[1] if len(rest) > 1 else None
    store = sb.brickowl
    with store.lock:
        same = [x for x in store.all_lots() if x.boid == boid]
        lot = next((x for x in same if where is not None and x.personal_note == where), None) or (same[0] if same else None)
        line: dict[str, Any] = {"boid": boid, "ordered_quantity": quantity, "personal_note": where or ""}
        if lot is not None:
            line.update(lot_id=lot.lot_id, type=lot.type, full_con=lot.full_con, base_price=lot.price, ids=lot.ids,
                        bl_lot_id=lot.external_id, personal_note=where if where is not None else lot.personal_note)
        order_id = store.add_order(status="Payment Received", lines=[line])
        after = store.get_lot(lot.lot_id) if lot is not None else None
    note = store.orders[order_id].lines[0]["personal_note"]
    what = f"{quantity} x {boid}{_bin(note)}"
    taken = _taken(lot and lot.lot_id, after.qty if after is not None else 0)
    return f"brickowl order {order_id} placed (Payment Received): {what}, {taken}"


def _status(sb: "Sandbox", args: list[str]) -> list[str]:
    if len(args) < 3:
        raise CommandError("usage: status PROVIDER ORDER_ID STATUS  (e.g. status bricklink 23216046 SHIPPED, "
                           "status brickowl 9277759 Cancelled)")
    provider, order_id, wanted = _provider(args[0]), args[1], " ".join(args[2:])
    store: Any
    key: Any
    if provider == "bricklink":
        status = wanted.upper()
        if not status.replace("-", "").isalpha():
            raise CommandError(f"{wanted!r} is not a BrickLink status; one of {', '.join(BL_STATUSES)}")
        store, key, shipped = sb.bricklink, int(order_id) if order_id.isdigit() else None, status in BL_SHIPPED
        note = "" if status in BL_STATUSES else \
            "; not a BrickLink status today: marketsync sees it as unknown and keeps its stock reserved"
    else:
        try:
            status = BO_STATUSES[status_id(wanted)]
        except ValueError:
            raise CommandError(f"{wanted!r} is not a BrickOwl status; one of {', '.join(BO_STATUSES)}") from None
        store, key, shipped, note = sb.brickowl, order_id, status in BO_SHIPPED, ""
    with store.lock:
        order = store.orders.get(key)
        if order is None:
            raise CommandError(f"no order {order_id} in the {_label(provider)} store; see 'orders {provider}'")
        before, held = order.status, sum(order.taken.values())
        store.set_status(key, status)
        moved = held - sum(order.taken.values())
        cancelled = order.status.lower() == "cancelled"
    if moved > 0:
        effect = f"{_count(moved, 'piece')} went back on their lots"
    elif moved < 0:
        effect = f"{_count(-moved, 'piece')} taken off their lots again"
    elif cancelled and held and not store.restock_on_cancel:
        effect = f"lots unchanged: this {_label(provider)} store does not restock a cancelled order"
    elif shipped:
        effect = "lots unchanged: the pieces left with the parcel"
    else:
        effect = "lots unchanged"
    return [f"{provider} {order_id}: {before} -> {status} ({effect}{note})"]


def _delete(sb: "Sandbox", args: list[str]) -> list[str]:
    if len(args) != 2:
        raise CommandError("usage: delete PROVIDER ORDER_ID")
    provider, order_id = _provider(args[0]), args[1]
    try:
        if provider == "bricklink":
            if not order_id.isdigit():
                raise KeyError(order_id)
            sb.bricklink.delete_order(int(order_id))
        else:
            sb.brickowl.delete_order(order_id)
    except KeyError:
        raise CommandError(f"no order {order_id} in the {_label(provider)} store; see 'orders {provider}'") from None
    return [f"{provider} {order_id} deleted: no longer listed, its detail answers 404 (its lots are unchanged)"]


COMMANDS: dict[str, Callable[["Sandbox", list[str]], list[str]]] = {
    "help": _help,
    "orders": _orders,
    "lots": _lots,
    "order": _order,
    "status": _status,
    "delete": _delete,
}


# ---------------------------------------------------------------------- helpers
def _label(provider: str) -> str:
    return "BrickLink" if provider == "bricklink" else "BrickOwl"


def _provider(word: str) -> str:
    provider = word.lower()
    if provider not in PROVIDERS:
        raise CommandError(f"unknown marketplace {word!r}; expected bricklink or brickowl")
    return provider


def _providers(word: str | None, ok: bool, usage: str) -> tuple[str, ...]:
    if not ok:
        raise CommandError(f"usage: {usage}")
    return PROVIDERS if word is None else (_provider(word),)


def _whole(word: str, name: str, low: int) -> int:
    if not word.isdigit() or int(word) < low:
        raise CommandError(f"{name} must be a whole number of at least {low}, not {word!r}")
    return int(word)


def _bin(where: Any) -> str:
    return f" @{where}" if where else ""


def _lines(items: Iterable[str]) -> str:
    items = list(items)
    return f"{len(items)} line{'s' if len(items) != 1 else ''}" + (": " + ", ".join(items) if items else "")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def _taken(lot_id: Any, left: int) -> str:
    """What placing the order did to the lot it was bought from (None: no such lot)."""
    if lot_id is None:
        return "no such lot in the store: no stock taken"
    return f"taken from lot {lot_id}, {left} left on it"


