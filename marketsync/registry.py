"""The marketplaces marketsync knows, each declared once: its name, credentials, API address,
capabilities, the module that builds its adapter, and the sandbox that emulates it.

Nothing else in the core names a marketplace: code asks a :class:`Marketplace` what it can do.
Adding a marketplace is its adapter module, its sandbox and one entry here. Importing this module
costs nothing (no HTTP library): ``--help`` and read-only commands use it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Capability(enum.Enum):
    ORDERS = "orders"  # lists orders, with details and lines (the Adapter protocol)
    LISTINGS = "listings"  # lists and changes the seller's lots (the Listings protocol)
    CATALOG = "catalog"  # names items in its own catalogue: lines and lots are translated through it
    NOTIFICATIONS = "notifications"  # tells a listener when an order arrives
    DAILY_BUDGET = "daily_budget"  # its calls count against a daily quota


@dataclass(frozen=True)
class Hint:
    """How a marketplace with NOTIFICATIONS tells a listener that an order arrived
    (marketplace-apis.md "Notifications", "Order notification"); only ever a hint."""

    method: str  # the HTTP method of the request it sends
    path: str | None  # its fixed path, or None: a secret path of the seller's own (a registered callback URL)
    port: int | None  # its fixed port, or None: the listener's --port
    names_order: bool  # the request names the order (``order_id``, ``store_id``); else its events are listed


@dataclass(frozen=True)
class Marketplace:
    name: str  # as on the command line and in every table's ``provider`` column
    title: str  # as people spell it
    short: str  # two letters for narrow tables
    credentials: tuple[str, ...]  # environment variables, all of them needed
    url_var: str  # environment variable that points the adapter elsewhere (the sandbox)
    default_url: str
    capabilities: frozenset[Capability]
    adapter_module: str  # its ``build(...)`` makes the adapter (imported only when one is built)
    sandbox: str  # the attribute of marketsync.sandbox.Sandbox that emulates it
    hint: Hint | None = None  # how it notifies a listener (capability NOTIFICATIONS)

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    @property
    def cancel_restocks_var(self) -> str:
        """The seller's setting (yes / no): whether this marketplace puts a cancelled order's pieces
        back on the listing -- undocumented, so the seller says, or marketsync learns it."""
        return f"MARKETSYNC_{self.name.upper()}_CANCEL_RESTOCKS"


MARKETPLACES: dict[str, Marketplace] = {m.name: m for m in (
    Marketplace(
        "bricklink", "BrickLink", "BL",
        ("BRICKLINK_CONSUMER_KEY", "BRICKLINK_CONSUMER_SECRET", "BRICKLINK_TOKEN_VALUE", "BRICKLINK_TOKEN_SECRET"),
        "BRICKLINK_API_URL", "https://api.bricklink.com/api/store/v1",
        frozenset({Capability.ORDERS, Capability.LISTINGS, Capability.NOTIFICATIONS, Capability.DAILY_BUDGET}),
        "marketsync.providers.bricklink", "bricklink",
        Hint("POST", None, None, names_order=False),  # a POST, empty in practice: then GET /notifications
    ),
    Marketplace(
        "brickowl", "BrickOwl", "BO", ("BRICKOWL_API_KEY",),
        "BRICKOWL_API_URL", "https://api.brickowl.com/v1",
        frozenset({Capability.ORDERS, Capability.LISTINGS, Capability.CATALOG, Capability.NOTIFICATIONS}),
        "marketsync.providers.brickowl", "brickowl",
        Hint("GET", "/brick_owl_order_notify", 42500, names_order=True),  # after POST order/notify with an IP
    ),
)}
NAMES: tuple[str, ...] = tuple(MARKETPLACES)


def marketplace(name: str) -> Marketplace:
    return MARKETPLACES[name]


def having(capability: Capability) -> tuple[str, ...]:
    return tuple(name for name, m in MARKETPLACES.items() if m.can(capability))
