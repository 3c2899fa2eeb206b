"""``marketsync listen``: a long-running foreground process that syncs an order seconds after a
marketplace hints that it arrived (cron stays the net)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import click

from marketsync.app.context import Workspace
from marketsync.cli.common import (
    restock_options,
    chatty,
    chosen_providers,
    db_options,
    http_options,
    logging_options,
    mask_secrets,
    one_line,
    problem,
)
from marketsync.errors import EXIT_USAGE

LISTEN_WAIT = 600.0  # seconds a hint waits for a cron run holding the writer lock
PAUSE_BETWEEN = 0.1  # after each batch, so a waiting cron run gets the lock (it polls every 0.05 s)


@click.command()
@logging_options
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Serve BrickLink's callback at /TOKEN and the local trigger POST /sync on this port.")
@click.option("--bricklink-path", "token", envvar="MARKETSYNC_BRICKLINK_PATH", show_envvar=True, default=None,
              help="The secret path of the callback URL registered with BrickLink (any other path is refused).")
@click.option("--brickowl-port", type=click.IntRange(0, 65535), default=42500, show_default=True,
              help="Serve BrickOwl's GET /brick_owl_order_notify on this port (BrickOwl calls 42500).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (0.0.0.0: every interface, without a proxy in front).")
@click.option("--push/--no-push", envvar="MARKETSYNC_PUSH", show_envvar=True, default=False,
              help="Then bring listings to what is available: every one ('sync'), or on the other marketplaces "
                   "those of the lots the orders touched ('listen').")
@click.option("--wait", type=click.FloatRange(0), default=LISTEN_WAIT, show_default=True,
              help="Seconds a hint waits for a running sync (cron's) before it is tried again.")
@click.option("--register", "register_ip", metavar="IP", default=None,
              help="Tell BrickOwl (POST order/notify) to send its order GET to this IPv4 address, and exit.")
@click.option("--unregister", is_flag=True, help="Tell BrickOwl to send no more order notifications, and exit.")
@db_options
@restock_options
@http_options
def listen(port: int | None, token: str | None, brickowl_port: int, host: str, push: bool, wait: float,
           register_ip: str | None, unregister: bool, ws: Workspace) -> None:
    """Sync an order seconds after a marketplace says it arrived.

    BrickLink POSTs to the callback URL registered with your API consumer: serve it with --port
    and --bricklink-path (a long random TOKEN). BrickOwl sends a GET to port 42500 of the IP
    registered with --register. Any script or mail rule can POST to http://127.0.0.1:PORT/sync
    (loopback only), and SIGUSR1 does the same. Each hint leads to a sync of only the orders it
    names (only an order id is ever taken from a request), then with --push only the lots they
    touched are pushed. Hints that arrive together are served together; a hint during a cron run
    waits for it. Cron stays the safety net: keep it running.

    Off a terminal the listener prints nothing but problems; -v prints one line per hint.
    SIGTERM or Ctrl-C stops it cleanly. Exit codes: 0 stopped, 2 usage or configuration.

    \b
    Examples:
        marketsync listen --port 8800 --bricklink-path "$TOKEN" --push -v
        marketsync listen --register 203.0.113.7
        curl -X POST http://127.0.0.1:8800/sync
    """
    from marketsync.app import listen as use_case

    names = chosen_providers((), ws)
    if register_ip is not None or unregister:
        if register_ip is not None and unregister:
            raise click.UsageError("--register and --unregister go alone")
        done = use_case.register(ws, names, "" if unregister else register_ip or "")
        if chatty():
            what = "off" if unregister else f"to {register_ip}:42500"
            for name in done:
                click.echo(f"{name}: order notifications {what}", err=True)
        if not done:
            raise click.UsageError("no configured marketplace is told by an API call where to send its hints")
        return
    if token is not None and (len(token) < 16 or "/" in token):
        raise click.UsageError("--bricklink-path: a secret of 16 or more characters, without '/'")
    _serve(ws, names, port=port, token=token, brickowl_port=brickowl_port, host=host, push=push, wait=wait)


def _serve(ws: Workspace, names: list[str], *, port: int | None, token: str | None, brickowl_port: int,
           host: str, push: bool, wait: float) -> None:
    from marketsync.app import listen as use_case
    from marketsync.app.listener_server import Listener, Queue, plan_ports
    from marketsync.errors import LockedError, MarketsyncError
    from marketsync.registry import marketplace

    verbose = chatty()

    def log(line: str) -> None:
        if verbose:
            click.echo(one_line(mask_secrets(line)), err=True)

    order_ports = {name: brickowl_port for name in names if (h := marketplace(name).hint) and h.port}
    ports = plan_ports(names, port=port, token=token, order_ports=order_ports)
    if not ports:
        raise click.UsageError("nothing to listen to: give --port (BrickLink's callback, the local trigger) "
                               "or configure a marketplace that sends its own hints")
    store_ids = {name: use_case.known_store_id(ws, name) for name in names}

    def process(work: use_case.Work) -> bool:
        started = time.monotonic()
        try:
            report = use_case.handle(ws, names, work, push=push, wait=wait)
        except LockedError as error:
            problem(f"listen: {error.message}; the hint is tried again")
            return False
        except MarketsyncError as error:
            problem(f"listen: {error.message}")
            return True
        store_ids.update(report.store_ids)
        for result in report.results:
            for line in result.problems + ([result.error] if result.error else []):
                problem(line)
        for line in report.problems + [p for r in report.pushed for p in r.problems + ([r.error] if r.error else [])]:
            problem(line)
        orders = sum(len(r.order_ids) for r in report.results)
        changes = sum(len(r.changes) for r in report.pushed)
        log(f"synced {orders} order(s), {changes} listing change(s) in {time.monotonic() - started:.2f} s")
        time.sleep(PAUSE_BETWEEN)
        return True

    def beat() -> None:
        use_case.heartbeat(ws, names, alive=True)

    try:
        listener = Listener(host, ports, Queue(f"{os.path.realpath(ws.db_path)}.listen-pending"), process, log,
                            store_ids, beat)
    except OSError as exc:
        click.echo(f"Error: cannot listen on {host}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: listener.queue.add(use_case.Work(full=True)))
    callback = {name for name in names if (h := marketplace(name).hint) is not None and h.path is None}
    if token and callback:  # events that arrived while no listener ran (or one killed mid-sync)
        listener.queue.add(use_case.Work(events=callback))
    listener.start()
    log("listening: " + ", ".join(_describe(host, number, routes) for (number, routes) in
                                    zip([a[1] for a in listener.addresses], [r for _, r in ports])))
    try:
        while not stop.wait(0.5):
            pass
    finally:
        log("stopping")
        listener.stop()
        try:
            use_case.heartbeat(ws, names, alive=False, wait=5.0)
        except MarketsyncError:
            pass


def _describe(host: str, port: int, routes: Any) -> str:
    served = []
    if routes.callback_token:
        served.append(f"POST /*** ({', '.join(routes.callback)} callback)")
    if routes.trigger:
        served.append("POST /sync (loopback)")
    served += [f"GET {path} ({name})" for path, name in routes.order_hints.items()]
    return f"http://{host}:{port} " + " ".join(served)
