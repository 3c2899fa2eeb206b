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
write endpoint (``"PUT /inventories/{id}"``, ``"POST /inventory/update"``, ``"POST /bulk/batch"``)
each of those means the change was NOT applied, while ``"applied_reset"``, ``"applied_500"`` and
``"applied_hang"`` (``seconds=``) apply it and then lose the answer. ``sb.writes`` records every
write's parsed body.

Store lots (seller actions, no API call)::

    inv = sb.bricklink.add_lot("3001", 11, 10, remarks="A01", is_retain=False)
    sb.bricklink.get_lot(inv); sb.bricklink.all_lots(); sb.bricklink.set_lot_quantity(inv, 25)
    lot = sb.brickowl.add_lot("487300-38", 10, external_id=inv, personal_note="A01")
    sb.brickowl.get_lot(lot); sb.brickowl.all_lots(); sb.brickowl.set_lot_quantity(lot, 0)

Orders act on lots: ``add_order`` / ``place_order`` (``reduce_stock=True``) and ``add_batch``
take the lines' pieces off their lots (BrickLink: ``inventory_id``; BrickOwl: ``lot_id``);
``set_status(..., cancelled)`` gives them back when the store's ``restock_on_cancel`` is true
(BrickLink default True, BrickOwl default False); shipping changes nothing. A BrickLink lot
reaching 0 disappears unless retained; a BrickOwl lot stays (inactive).
"""

from marketsync.sandbox.bricklink import BLLot, BLOrder, BrickLinkStore
from marketsync.sandbox.brickowl import BOLot, BOOrder, BrickOwlStore
from marketsync.sandbox.demo import demo_inventory_rows, generate_store, write_demo_inventory_csv
from marketsync.sandbox.server import APPLIED_FAULTS, FAULTS, Sandbox


def serve_forever_cli(bricklink_port: int = 0, brickowl_port: int = 0, demo: bool = True, seed: int = 1) -> None:
    """Run a sandbox in the foreground, print its environment, serve until Ctrl-C."""
    import sys
    import threading

    sb = Sandbox(demo=demo, seed=seed).start(bricklink_port=bricklink_port, brickowl_port=brickowl_port)
    try:
        for name, value in sb.env().items():
            print(f"{name}={value}", flush=True)
        print("# sandbox running; Ctrl-C to stop", file=sys.stderr, flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()


__all__ = [
    "APPLIED_FAULTS",
    "FAULTS",
    "BLLot",
    "BLOrder",
    "BOLot",
    "BOOrder",
    "BrickLinkStore",
    "BrickOwlStore",
    "Sandbox",
    "demo_inventory_rows",
    "generate_store",
    "serve_forever_cli",
    "write_demo_inventory_csv",
]
