"""Small helpers shared by both emulated marketplaces: responses, money, time, text."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable
from urllib.parse import parse_qsl

UTC = dt.timezone.utc

JSON_TYPE = "application/json; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"


@dataclass
class Request:
    """One parsed HTTP request, as the store handlers see it."""

    method: str
    path: str  # relative to the marketplace's base path, e.g. "/orders/12/items"
    query: dict[str, str]  # last value wins for repeated names
    raw_query: str
    headers: Any  # email.message.Message from http.server (case-insensitive .get)
    url: str  # absolute URL the client used, for the OAuth base string
    params: dict[str, str] = field(default_factory=dict)  # path template parameters
    body: bytes = b""  # the raw request body (PUT/POST)
    dry_run: bool = False  # a write handler must answer as if it applied the change, but apply nothing

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() if self.headers else ""

    def form(self) -> dict[str, str] | None:
        """The ``application/x-www-form-urlencoded`` body fields (last value wins), or None when
        the body is not form-encoded."""
        if self.content_type != "application/x-www-form-urlencoded":
            return None
        try:
            return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except (UnicodeDecodeError, ValueError):
            return None

    def json(self) -> Any:
        """The JSON body (raises ValueError when it is not JSON)."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Route:
    method: str
    pattern: Any  # compiled regex over the relative path
    template: str  # "GET /orders/{id}"
    handler: Callable[[Request], Response]

    @property
    def write(self) -> bool:
        """Does this endpoint change the store (faults then distinguish applied / not applied)?"""
        return self.method in ("PUT", "POST", "DELETE", "PATCH")


def json_body(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json_body(obj), JSON_TYPE, dict(headers or {}))


_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    404: "Not Found",
}


def html_page(status: int, title: str | None = None) -> bytes:
    """An nginx-style error page, as seen under load and in maintenance windows (marketplace-apis.md
    "Envelope and errors"; BrickOwl's throttling page: "Rate limits")."""
    title = title or f"{status} {_REASONS.get(status, 'Error')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode("ascii")


def html_response(status: int, headers: dict[str, str] | None = None, title: str | None = None) -> Response:
    return Response(status, html_page(status, title), HTML_TYPE, dict(headers or {}))


def money(value: Any, places: int = 4) -> str:
    """Decimal string with a fixed number of places ("139.9900"; marketplace-apis.md "Money, dates, text")."""
    quantum = Decimal(1).scaleb(-places)
    return f"{Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP):.{places}f}"


def dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def bl_time(moment: dt.datetime) -> str:
    """BrickLink's timestamp format: UTC with milliseconds, "2013-12-01T18:05:46.123Z"."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_ENTITIES = {"&": "&amp;", "(": "&#40;", ")": "&#41;", "'": "&#39;", '"': "&quot;", "<": "&lt;", ">": "&gt;"}


def bl_entities(text: str | None) -> str | None:
    """Encode text the way BrickLink sends names and descriptions (html.unescape reverses it)."""
    if text is None:
        return None
    return "".join(_ENTITIES.get(ch, ch) for ch in text)


_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def bl_entities_once(text: str) -> str:
    """Encode text a client sends BrickLink the way BrickLink serves it, leaving entities already
    there alone: a description sent back exactly as GET returned it stays byte-for-byte the same
    (what BrickSync's round trip relies on: it sends back the description it read, JSON-unescaped
    only -- bricksync bricklink.c/bsapplydiff.c), and plain text gets the entities GET shows."""
    out, position = [], 0
    for match in _ENTITY.finditer(text):
        out.append(bl_entities(text[position:match.start()]) or "")
        out.append(match.group(0))
        position = match.end()
    out.append(bl_entities(text[position:]) or "")
    return "".join(out)


# What a store does with a relative change that would take a lot below 0. Neither marketplace
# documents it (shared/marketplace-apis.md; BrickSync clamps before sending, bssync.c "Negative
# quantity clamped to zero", so it never finds out): a switch, "refuse" by default.
BELOW_ZERO = ("refuse", "clamp")


def below_zero_mode(value: str) -> str:
    if value not in BELOW_ZERO:
        raise ValueError(f"below_zero must be one of {BELOW_ZERO}, not {value!r}")
    return value


class LateWrites:
    """Writes held back by the ``"late"`` fault: the client got no answer (the connection was
    dropped) and nothing changed yet; :meth:`apply_late_writes` applies them now, in the order they
    arrived, as the marketplace would have on its own time."""

    def _init_late(self) -> None:
        self._late: list[Callable[[], Response]] = []
        self._late_lock = threading.Lock()

    def hold_late_write(self, apply: Callable[[], Response]) -> None:
        with self._late_lock:
            self._late.append(apply)

    @property
    def late_writes(self) -> int:
        """How many held-back writes wait to be applied."""
        with self._late_lock:
            return len(self._late)

    def apply_late_writes(self) -> list[Response]:
        """Apply every held-back write (oldest first); returns the answers nobody received."""
        with self._late_lock:
            pending, self._late = self._late, []
        return [apply() for apply in pending]


def drop_nones(obj: Any) -> Any:
    """BrickLink omits null fields: remove them recursively from dicts (marketplace-apis.md
    "Envelope and errors")."""
    if isinstance(obj, dict):
        return {k: drop_nones(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [drop_nones(v) for v in obj]
    return obj


def split_filter(raw: str | None) -> tuple[set[str], set[str]]:
    """A BrickLink comma filter ("paid,-purged"): (included, excluded), upper-cased."""
    include: set[str] = set()
    exclude: set[str] = set()
    for part in (raw or "").split(","):
        part = part.strip().upper()
        if not part:
            continue
        if part.startswith("-"):
            exclude.add(part[1:])
        else:
            include.add(part)
    return include, exclude


def passes(value: Any, include: set[str], exclude: set[str]) -> bool:
    value = str(value).upper()
    return (not include or value in include) and value not in exclude
