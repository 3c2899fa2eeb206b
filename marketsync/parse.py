"""Tolerant scalar parsing: both APIs (and files, and stored rows) send numbers as strings, raw numbers and
nulls alike."""

from __future__ import annotations

import codecs
import datetime as dt
import html
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Iterator


def text(value: Any) -> str | None:
    if value.__class__ is str:  # nearly always: a JSON string (the same answer as below, sooner)
        value = value.strip()
        return value or None
    if value is None or isinstance(value, (list, dict)):
        return None
    value = str(value).strip()
    return value or None


def unescaped(value: Any) -> str | None:
    """Decode BrickLink's HTML entities (``&#40;`` ...) exactly once."""
    value = text(value)
    if value is None or "&" not in value:  # nothing to decode (html.unescape would hand it back)
        return value
    return html.unescape(value)


MAX_INTEGER = 2**53  # beyond this a "quantity" is garbage, and SQLite would overflow at 2**63


def integer(value: Any) -> int | None:
    if value.__class__ is str and value.isdigit() and value.isascii():  # "12": what both APIs mostly send
        whole = int(value)
        return whole if whole <= MAX_INTEGER else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) <= MAX_INTEGER else None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number != number.to_integral_value() or abs(number) > MAX_INTEGER:
        return None
    return int(number)


def money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(value.strip() if value.__class__ is str else str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def flag(value: Any) -> bool | None:
    """A yes/no sent as a JSON boolean, a number or a string ("1", "true", "Y", "0", "false")."""
    if isinstance(value, bool):
        return value
    word = (text(value) or "").lower()
    if word in ("1", "true", "yes", "y"):
        return True
    if word in ("0", "false", "no", "n"):
        return False
    return None


def bricklink_time(value: Any) -> dt.datetime | None:
    """``2013-12-01T18:05:46.123Z`` (UTC, milliseconds) to an aware datetime."""
    return iso_time(value)


def iso_time(value: Any) -> dt.datetime | None:
    """An ISO-8601 instant (``Z`` or an offset such as BrickOwl's ``+01:00``) in UTC; a time
    without an offset is taken as UTC."""
    value = text(value)
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def unix_time(value: Any) -> dt.datetime | None:
    """BrickOwl's Unix seconds (as a string or number); 0 and nulls mean 'not yet'."""
    seconds = integer(value)
    if not seconds or seconds < 0:
        return None
    try:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def obj(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else (null, a PHP empty array ``[]``)."""
    return value if isinstance(value, dict) else {}


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_DELIMITERS = frozenset(" \t\n\r,]}")


class JsonArray:
    """The elements of one JSON array in a body, decoded one at a time from its ``chunks`` (bytes, UTF-8):
    the body's own top-level array (``key`` None), or the array under ``key`` of its top-level object,
    whose other members are kept in :attr:`head` (BrickLink's ``meta``). A list of 100,000 lots never
    exists as 100,000 dicts at once: each element is handed over, and can be dropped, before the next
    is decoded. :attr:`found` says whether the array was there (``key`` absent or not an array: False,
    and nothing is yielded). Raises ``ValueError`` (``json.JSONDecodeError``) for a body that is not
    JSON, is cut short, or has another shape."""

    def __init__(self, chunks: Iterable[bytes | memoryview], key: str | None = None):
        self.key = key
        self.head: dict[str, Any] = {}
        self.found = False
        self._chunks = iter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text, self._at, self._ended = "", 0, False

    def __iter__(self) -> Iterator[Any]:
        if self.key is None:
            yield from self._array()
        else:
            yield from self._members()
        if self._peek():
            raise json.JSONDecodeError("extra data after the JSON value", self._text, self._at)

    def _members(self) -> Iterator[Any]:
        self._expect("{")
        if self._peek() == "}":
            self._at += 1
            return
        while True:
            name = self._value()
            if not isinstance(name, str):
                raise json.JSONDecodeError("an object key is not a string", self._text, self._at)
            self._expect(":")
            if name == self.key and self._peek() == "[":
                yield from self._array()
            else:
                self.head[name] = self._value()
            if self._peek() == ",":
                self._at += 1
                continue
            self._expect("}")
            return

    def _array(self) -> Iterator[Any]:
        self._expect("[")
        self.found = True
        if self._peek() == "]":
            self._at += 1
            return
        while True:
            yield self._value()
            if self._peek() == ",":
                self._at += 1
                continue
            self._expect("]")
            return

    def _more(self) -> None:
        """The next chunk's text after what is left of the current one (at the end: nothing more)."""
        for chunk in self._chunks:
            text = self._utf8.decode(chunk)
            if text:
                self._text, self._at = self._text[self._at:] + text, 0
                return
        self._text, self._at = self._text[self._at:] + self._utf8.decode(b"", final=True), 0
        self._ended = True

    def _peek(self) -> str:
        """The next character that is not white space ('' at the end of the body)."""
        while True:
            self._at = _WHITESPACE.match(self._text, self._at).end()  # type: ignore[union-attr]
            if self._at < len(self._text) or self._ended:
                return self._text[self._at:self._at + 1]
            self._more()

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise json.JSONDecodeError(f"expected {char!r}", self._text, self._at)
        self._at += 1

    def _value(self) -> Any:
        """One whole value. A number may go on in the next chunk (``1`` of ``1.5``), so it is taken
        only once a delimiter follows it, or at the end of the body."""
        self._peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self._text, self._at)
                if self._ended or (end < len(self._text) and (
                        self._text[end] in _DELIMITERS or not isinstance(value, (int, float)))):
                    self._at = end
                    return value
            except json.JSONDecodeError:
                if self._ended:
                    raise
            self._more()


LIST_CHUNK = 1 << 16  # an order list is decoded from pieces this size: its text is never held whole


def chunks_of(body: bytes, size: int = 1 << 20) -> Iterator[memoryview]:
    """``body`` in pieces of ``size`` bytes, without copying it."""
    view = memoryview(body)
    for start in range(0, len(view), size):
        yield view[start:start + size]
