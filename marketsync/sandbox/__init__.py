"""A loopback emulation of the BrickLink Store API and the BrickOwl API.

Used by the tests, by ``marketsync demo`` and by the benchmarks::

    from marketsync.sandbox import Sandbox

    with Sandbox(demo=True, seed=1) as sb:       # demo=False: empty stores
        sb.env()                                  # credentials + BRICKLINK_API_URL / BRICKOWL_API_URL
        sb.bricklink.add_order(status="PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 4}])
        sb.inject("bricklink", "GET /orders", "html503", times=2)
        ...
        sb.calls[("bricklink", "GET /orders")]

Wire formats follow ``shared/marketplace-apis.md``. Faults: ``"500"``, ``"html503"``, ``"429"``
(``retry_after=``), ``"reset"``, ``"hang"`` (``seconds=``), ``"malformed"``, ``"auth_in_200"``,
``"ip_mismatch"`` (BrickLink), ``"error_string"`` (BrickOwl, ``message=``), ``"not_json"``; on a
write endpoint (``"PUT /inventories/{id}"``, ``"POST /inventories"``, ``"POST /inventory/update"``,
``"POST /inventory/create"``, ``"POST /bulk/batch"``, ``"POST /order/notify"``)
each of those means the change was NOT applied, while ``"applied_reset"``, ``"applied_500"`` and
``"applied_hang"`` (``seconds=``) apply it and then lose the answer; ``"late"`` applies nothing
now, drops the connection, and the store applies the write when ``sb.bricklink.apply_late_writes()``
/ ``sb.brickowl.apply_late_writes()`` (or ``sb.apply_late_writes()``) is called. ``"drip"`` sends the real
answer one byte every ``interval=`` seconds (default 0.5; the body only, or from the status line
on with ``headers_too=True``) until the sandbox stops. ``sb.writes`` records every write's parsed
body.

Quirks: ``Sandbox(quirks=True)`` (or names from ``QUIRKS``; ``sb.quirks = ...`` at any time)
makes both stores send the messier shapes of real captures: BrickOwl items without ``full_con``,
``type`` or ``refunded_quantity``, views without ``updated_time`` or ``customer_email``, nulls,
raw numbers and ``[]`` among the strings, a payment in another currency, colour placeholders,
mixed ``id_lookup`` answers; BrickLink ``categoryID``, no ``color_name``, no ``final_total``, a
tracking link without a number, error envelopes without ``data``. Off by default; the test
fixtures switch them on.

``sb.bricklink.delete_order(id)`` / ``sb.brickowl.delete_order(id)``: the order vanishes (not
listed, its detail answers 404), as when a marketplace removes one.

Switches for what no source documents (``docs/sandbox-rules.md``): ``store.below_zero`` on both
stores (``"refuse"``, the default, or ``"clamp"``: a relative change that would go below 0 leaves
the lot at 0), and ``sb.brickowl.batch_answer_shape`` (``"req_num_1"``, the default, ``"req_num_0"``,
``"responses"`` or ``"bare"``: the shape of a ``bulk/batch`` answer).

BrickLink refuses a ``PUT /inventories/{id}`` quantity change without ``description`` (400
``PARAMETER_MISSING_OR_INVALID`` "String input must not be null"); a description sent replaces
the lot's.

Store lots (seller actions, no API call)::

    inv = sb.bricklink.add_lot("3001", 11, 10, remarks="A01", is_retain=False)
    sb.bricklink.get_lot(inv); sb.bricklink.all_lots(); sb.bricklink.set_lot_quantity(inv, 25)
    lot = sb.brickowl.add_lot("487300-38", 10, external_id=inv, personal_note="A01")
    sb.brickowl.get_lot(lot); sb.brickowl.all_lots(); sb.brickowl.set_lot_quantity(lot, 0)

Creating lots (docs/sandbox-rules.md)::

    sb.bricklink.add_catalog_item("3001", "PART", name="Brick 2 x 4")   # POST /inventories takes catalogue items only
    sb.brickowl.add_catalog_item("487300", "Part")                      # POST /inventory/create takes known BOIDs only

BrickLink ``POST /inventories``: one object answers the new lot (``inventory_id``) in ``data``, an
array answers an empty ``data``; every item of a lot or an order line is in the catalogue already.
Switches: ``sb.bricklink.unknown_item_status`` (400 default / 404), ``created_code`` (200 / 201),
``array_on_error`` (``"create_none"`` / ``"create_valid"``). BrickOwl ``POST /inventory/create``
answers ``{"status": "success", "lot_id": "..."}`` and works inside ``bulk/batch``.

Notifications (docs/sandbox-rules.md)::

    sb.bricklink.callback_url = "http://127.0.0.1:PORT/push"   # POST per event (empty body by default)
    sb.bricklink.add_order(...)                                # placed: an event
    sb.bricklink.set_status(order_id, "RECEIVED", by_buyer=True)   # buyer-side: an event (seller-side: none)
    sb.bricklink.add_batch(...), sb.bricklink.remove_line(...)    # items changed: events
    sb.brickowl.notify_port, sb.brickowl.notify_host = PORT, "127.0.0.1"   # after POST /order/notify ip=...
    sb.wait_notifications(5)                                   # every queued delivery done: True
    sb.bricklink.notify_log                                    # [Delivery(url, 200 | "dropped" | "error: ...")]

BrickLink ``GET /notifications`` lists the events; ``notifications_mark_read`` (False default / True)
decides whether reading clears them; ``notify_body`` (``"empty"`` default / ``"events"`` / ``"event"``)
shapes the callback's body. BrickOwl's GET goes to ``/brick_owl_order_notify?order_id=&store_id=``
on ``notify_port`` (42500); ``notify_status_changes`` (False / True) adds status changes. Delivery
switches on both stores: ``notify_drop`` / ``notify_duplicate`` (seeded probabilities, 0 default),
``notify_drop_next`` / ``notify_duplicate_next`` (the next N), ``notify_delay`` (seconds, 0),
``notify_timeout`` (2 s). Deliveries run on a background thread, only to loopback, and never raise.
``add_order(..., notify=False)`` seeds an order silently (the demo's orders are silent).

``sb.latency = 0.05`` adds that many seconds to every answer of both marketplaces (default 0; each
store's ``latency`` may differ).

Orders act on lots: ``add_order`` / ``place_order`` (``reduce_stock=True``) and ``add_batch``
take the lines' pieces off their lots (BrickLink: ``inventory_id``; BrickOwl: ``lot_id``);
``set_status(..., cancelled)`` gives them back when the store's ``restock_on_cancel`` is true
(BrickLink default True, BrickOwl default False); shipping changes nothing. A BrickLink lot
reaching 0 disappears unless retained; a BrickOwl lot stays (inactive).
"""

from marketsync.sandbox.bricklink import BLLot, BLOrder, BrickLinkStore
from marketsync.sandbox.brickowl import BOLot, BOOrder, BrickOwlStore
from marketsync.sandbox.demo import demo_inventory_rows, generate_store, write_demo_inventory_csv
from marketsync.sandbox.brickowl import BATCH_ANSWER_SHAPES
from marketsync.sandbox.notify import Delivery
from marketsync.sandbox.server import APPLIED_FAULTS, FAULTS, LATE_FAULTS, QUIRKS, SLOW_FAULTS, Sandbox
from marketsync.sandbox.wire import BELOW_ZERO


def serve_forever_cli(bricklink_port: int = 0, brickowl_port: int = 0, demo: bool = True, seed: int = 1,
                      quirks: bool = False, commands: bool = True) -> None:
    """Run a sandbox in the foreground, print its environment, then (``commands``) answer the
    commands read on standard input (see :mod:`marketsync.sandbox.commands`) until it ends, and
    serve until Ctrl-C."""
    import sys
    import threading

    from marketsync.sandbox.commands import answers_to, reads_commands, serve_commands

    sb = Sandbox(demo=demo, seed=seed, quirks=quirks).start(bricklink_port=bricklink_port, brickowl_port=brickowl_port)
    try:
        for name, value in sb.env().items():
            print(f"{name}={value}", flush=True)
        if commands and reads_commands(sys.stdin):
            print("# sandbox running; type 'help' for commands; Ctrl-C to stop", file=sys.stderr, flush=True)
            serve_commands(sb, sys.stdin, answers_to(sys.stdout, sys.stderr))
        else:
            print("# sandbox running; Ctrl-C to stop", file=sys.stderr, flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()


__all__ = [
    "APPLIED_FAULTS",
    "BATCH_ANSWER_SHAPES",
    "BELOW_ZERO",
    "FAULTS",
    "LATE_FAULTS",
    "QUIRKS",
    "SLOW_FAULTS",
    "BLLot",
    "BLOrder",
    "BOLot",
    "BOOrder",
    "BrickLinkStore",
    "Delivery",
    "BrickOwlStore",
    "Sandbox",
    "demo_inventory_rows",
    "generate_store",
    "serve_forever_cli",
    "write_demo_inventory_csv",
]
