"""``marketsync api``: one authenticated GET, for debugging."""

from __future__ import annotations


import click

from marketsync.config import HttpSettings

from marketsync.cli.common import (
    PROVIDER,
    http_options,
    logging_options,
    mask_secrets,
)


@click.command()
@logging_options
@click.argument("provider", type=PROVIDER)
@click.argument("path")
@click.argument("params", nargs=-1, metavar="[KEY=VALUE]...")
@http_options
def api(provider: str, path: str, params: tuple[str, ...], settings: HttpSettings) -> None:
    """Make one authenticated GET and print the JSON (secrets masked).

    \b
    Examples:
        marketsync api bricklink /orders direction=in
        marketsync api brickowl /order/view order_id=9277759
    """
    import json

    from marketsync.providers import build_adapter

    query = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{param!r} is not KEY=VALUE", param_hint="PARAMS")
        query[key] = value
    adapter = build_adapter(provider.lower(), settings)
    data = adapter.client.get("/" + path.lstrip("/"), query)
    click.echo(mask_secrets(json.dumps(data, indent=2, ensure_ascii=False)))
