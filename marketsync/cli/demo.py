"""``marketsync demo`` and ``marketsync sandbox``: the built-in marketplaces, no credentials needed."""

from __future__ import annotations


import click

from marketsync.cli.common import (
    logging_options,
    report_sync,
)
from marketsync.model import ChangeState


@click.command()
@logging_options
@click.option("--db", "db_path", default="marketsync-demo.db", show_default=True, type=click.Path(dir_okay=False),
              help="The demo database (recreated on every run; any other file is refused).")
@click.option("--force", is_flag=True, help="Replace --db even if it is not a demo database.")
def demo(db_path: str, force: bool) -> None:
    """Sync a seeded demo store from the built-in sandbox marketplaces, push the listings, and
    show the orders.

    Needs no credentials and no network: both marketplaces are emulated on 127.0.0.1. After the
    orders, every listing is brought to what is available (what one marketplace sold, the other
    stops offering); one sale is then placed on BrickLink to show it reach BrickOwl.

    \b
    Example:
        marketsync demo && marketsync orders --db marketsync-demo.db --open
    """
    from marketsync.app import demo as demo_store
    from marketsync.cli import render
    from marketsync.cli.orders import _order_columns

    if not db_path.strip():
        raise click.BadParameter("must not be empty", param_hint="--db")
    report = demo_store.run(db_path, force=force)
    rows = report.orders
    render.console().print(render.table(
        rows, _order_columns(),
        caption=f"{len(rows)} orders in {db_path}; try: marketsync orders show PROVIDER:ORDER_ID --db {db_path}"))
    for result in report.results:
        click.echo(f"{result.provider}: {result.changed} orders synced with {result.calls} API calls", err=True)
    for pushed in report.pushed:
        applied = sum(1 for c in pushed.changes if c.outcome == ChangeState.APPLIED)
        click.echo(f"{pushed.provider}: {applied} listing(s) brought to what is available", err=True)
    for pushed in report.followed:
        for change in pushed.changes:
            click.echo(f"then {report.sale}: {change} on {pushed.provider}", err=True)
    report_sync(report.results)  # the demo store has unmatched lines and an oversold lot on purpose


@click.command()
@logging_options
@click.option("--bricklink-port", type=click.IntRange(0, 65535), default=8801, show_default=True,
              help="Port of the emulated BrickLink API on 127.0.0.1 (0: any free port).")
@click.option("--brickowl-port", type=click.IntRange(0, 65535), default=8802, show_default=True,
              help="Port of the emulated BrickOwl API on 127.0.0.1 (0: any free port).")
@click.option("--empty", is_flag=True, help="Start with empty stores instead of the demo store.")
@click.option("--quirks", is_flag=True,
              help="Answer with the messier shapes of real captured payloads (nulls, missing fields...).")
def sandbox(bricklink_port: int, brickowl_port: int, empty: bool, quirks: bool) -> None:
    """Run the sandbox marketplaces in the foreground and print the .env lines to use them.

    While it serves, it reads one command per line on standard input (a terminal or a pipe) and
    answers each on one line of standard output (of standard error when the output goes to a
    file), so you can play the marketplaces' part and watch 'marketsync sync' reserve, release
    and consume stock. The end of the input stops the commands, not the marketplaces: they serve
    until Ctrl-C.

    \b
    Commands:
        orders [PROVIDER]                   the sandbox's orders: id, status, lines
        lots PROVIDER [PART|BOID]           the marketplace's store lots
        order bricklink PART COLOUR QTY [BIN]   place a paid order (BIN: the remarks)
        order brickowl BOID [COLOUR] QTY [BIN]  the same on BrickOwl
        status PROVIDER ORDER_ID STATUS     e.g. status bricklink 23216046 SHIPPED,
                                            status brickowl 9277759 Cancelled
        delete PROVIDER ORDER_ID            the order vanishes (not listed, detail 404)
        help                                list the commands

    \b
    Examples:
        marketsync sandbox > sandbox.env
        marketsync sandbox --empty --bricklink-port 0 --brickowl-port 0
    """
    import errno

    from marketsync.errors import MarketsyncError
    from marketsync.sandbox import serve_forever_cli

    try:
        serve_forever_cli(bricklink_port, brickowl_port, demo=not empty, quirks=quirks)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        busy = [f"--{name}-port {port}" for name, port in (("bricklink", bricklink_port), ("brickowl", brickowl_port))
                if port and _in_use(port)] or ["a port it asked for"]
        raise MarketsyncError(f"{' and '.join(busy)}: the port is in use on 127.0.0.1 (another sandbox?); "
                              "give another port, or 0 for any free one") from None


def _in_use(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
