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
``"ip_mismatch"`` (BrickLink), ``"error_string"`` (BrickOwl, ``message=``), ``"not_json"``.
"""

from marketsync.sandbox.bricklink import BLLot, BLOrder, BrickLinkStore
from marketsync.sandbox.brickowl import BOOrder, BrickOwlStore
from marketsync.sandbox.demo import demo_inventory_rows, generate_store, write_demo_inventory_csv
from marketsync.sandbox.server import FAULTS, Sandbox


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
    "FAULTS",
    "BLLot",
    "BLOrder",
    "BOOrder",
    "BrickLinkStore",
    "BrickOwlStore",
    "Sandbox",
    "demo_inventory_rows",
    "generate_store",
    "serve_forever_cli",
    "write_demo_inventory_csv",
]
