"""What sellers read: prices at the marketplace's precision."""

from __future__ import annotations

import json

from marketsync.render import money


def test_money_keeps_every_decimal_the_marketplace_gave():
    assert money("0.0340", "USD") == "0.034 USD"  # BrickLink's 4 decimals: never 0.03
    assert money("0.104") == "0.104"  # BrickOwl's 3
    assert money("23.1500", "GBP") == "23.15 GBP" and money("10") == "10.00" and money("1234.5") == "1,234.50"
    assert money(None) == "" and money("not a number") == "not a number"


def test_orders_show_prints_per_piece_prices_as_sellers_read_them(run, creds):
    order = creds.bricklink.add_order("PAID", lines=[{"no": "3001", "color_id": 11, "quantity": 100,
                                                       "unit_price": "0.0340", "remarks": "A1"}])
    assert run("sync").exit_code == 0
    shown = run("orders", "show", f"bricklink:{order}")
    assert shown.exit_code == 0 and "0.034" in shown.stdout and "0.03 " not in shown.stdout
    lines = json.loads(run("orders", "show", f"bricklink:{order}", "--json").stdout)
    detail = lines[0] if isinstance(lines, list) else lines
    assert detail["lines"][0]["unit_price"] == "0.0340"  # stored exactly as sent
