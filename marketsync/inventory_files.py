"""Read and write the seller's inventory files: CSV, and BrickLink / BrickStore XML.

``read_inventory_file`` validates the whole file before returning anything: it either
returns every lot or raises ``InputFileError`` whose message is one line naming the file,
the line and the problem (``inventory.csv line 7: quantity 'abc' is not a whole number``).
No malformed input ever ends in a traceback.

The format is detected by content: a file whose first non-blank character (after an
optional UTF-8 BOM) is ``<`` is BrickLink inventory XML, anything else is CSV.

``write_inventory_csv`` writes the canonical CSV that ``read_inventory_file`` reads back
into equal lots.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
from decimal import Decimal
from typing import IO, Iterable, NoReturn
from xml.parsers import expat

from .errors import InputFileError
from .model import InventoryLot

__all__ = [
    "CSV_COLUMNS",
    "ITEM_TYPES",
    "MAX_QUANTITY",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "read_inventory_file",
    "write_inventory_csv",
]

REQUIRED_COLUMNS = ("part_number", "color_id", "condition", "location", "quantity")
OPTIONAL_COLUMNS = ("name", "item_type", "price", "bricklink_lot_id")
CSV_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

MAX_QUANTITY = 1_000_000_000  # more than this in one lot is a typo, not a store
MAX_PRICE = Decimal(1_000_000_000)
MAX_COLOR_ID = 2**31 - 1
MAX_FILE_BYTES = 256 * 1024 * 1024

# BrickLink's one-letter item types (inventory XML <ITEMTYPE>) -> the API's names.
ITEM_TYPES = {
    "P": "PART",
    "S": "SET",
    "M": "MINIFIG",
    "B": "BOOK",
    "G": "GEAR",
    "C": "CATALOG",
    "I": "INSTRUCTION",
    "O": "ORIGINAL_BOX",
    "U": "UNSORTED_LOT",
}

_CONDITIONS = {"new": "new", "n": "new", "used": "used", "u": "used"}
_DELIMITERS = (",", ";", "\t")
_BOM = b"\xef\xbb\xbf"

_INTEGER = re.compile(r"([+-]?)([0-9]+)", re.ASCII)
_DECIMAL = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_THOUSANDS = re.compile(r"[+-]?[0-9]{1,3}(?:[,'\u00a0 ][0-9]{3})+", re.ASCII)
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]*,[0-9]+", re.ASCII)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FORBIDDEN_XML = re.compile(r"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


# --- messages -----------------------------------------------------------------------
def _escape(value: str, limit: int = 40) -> str:
    """``value`` made safe for a one-line message: control characters escaped, long cut."""
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    if value.isprintable():
        return value
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value)


def _show(value: str) -> str:
    """A value quoted for a message: ``'abc'``."""
    return f"'{_escape(value)}'"


def _display_name(path: str | os.PathLike) -> str:
    if str(path) == "-":
        return "standard input"
    try:
        name = os.fspath(path)
    except TypeError:
        name = str(path)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "backslashreplace")
    return _escape(name, limit=500)


class _FieldError(Exception):
    """A problem with one value; the caller adds the file name and line."""


def _fail(name: str, line: int | None, message: str) -> NoReturn:
    where = f"{name} line {line}" if line is not None else name
    raise InputFileError(f"{where}: {message}")


class _Problems:
    """Collects per-line problems so the first one can be reported with a count of the rest."""

    def __init__(self, name: str):
        self.name = name
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        self.items.sort(key=lambda item: item[0])  # stable: same line keeps its order
        line, message = self.items[0]
        more = len(self.items) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''} in the file)"
        _fail(self.name, line, message)


# --- value validation shared by both formats -------------------------------------
def _whole_number(label: str, raw: str | None, *, maximum: int, too_big: str) -> int:
    value = (raw or "").strip()
    if not value:
        raise _FieldError(f"{label} is empty")
    match = _INTEGER.fullmatch(value)
    if not match:
        if _THOUSANDS.fullmatch(value):
            raise _FieldError(
                f"{label} {_show(value)} is not a whole number (write it without a thousands separator)"
            )
        raise _FieldError(f"{label} {_show(value)} is not a whole number")
    sign, digits = match.groups()
    digits = digits.lstrip("0") or "0"
    if len(digits) > len(str(maximum)):  # also keeps int() away from huge digit strings
        number = maximum + 1
    else:
        number = int(digits)
    if sign == "-" and number != 0:
        raise _FieldError(f"{label} {_show(value)} must not be negative")
    if number > maximum:
        raise _FieldError(f"{label} {_show(value)} {too_big}")
    return number


def _quantity(label: str, raw: str | None) -> int:
    return _whole_number(
        label, raw, maximum=MAX_QUANTITY, too_big=f"is absurdly large (more than {MAX_QUANTITY:,})"
    )


def _color_id(label: str, raw: str | None) -> int:
    return _whole_number(label, raw, maximum=MAX_COLOR_ID, too_big="is not a BrickLink colour id")


def _condition(label: str, raw: str | None) -> str:
    value = (raw or "").strip()
    if not value:
        raise _FieldError(f"{label} is empty (must be new, used, N or U)")
    condition = _CONDITIONS.get(value.lower())
    if condition is None:
        raise _FieldError(f"{label} {_show(value)} is not new, used, N or U")
    return condition


def _price(label: str, raw: str | None) -> Decimal | None:
    value = (raw or "").strip()
    if not value:
        return None
    match = _DECIMAL.fullmatch(value)
    if not match:
        if _DECIMAL_COMMA.fullmatch(value):
            raise _FieldError(f"{label} {_show(value)} is not a number (use a dot as decimal separator)")
        raise _FieldError(f"{label} {_show(value)} is not a number")
    sign, digits = match.groups()
    if len(digits.split(".")[0].lstrip("0")) > 12:
        raise _FieldError(f"{label} {_show(value)} is absurdly large")
    number = Decimal(value)
    if sign == "-" and number != 0:
        raise _FieldError(f"{label} {_show(value)} must not be negative")
    if number > MAX_PRICE:
        raise _FieldError(f"{label} {_show(value)} is absurdly large")
    return number


def _required_text(label: str, raw: str | None) -> str:
    value = (raw or "").strip()
    if not value:
        raise _FieldError(f"{label} is empty")
    return value


def _optional_text(raw: str | None) -> str | None:
    value = (raw or "").strip()
    return value or None


def _check_duplicates(lots: list[tuple[int, InventoryLot]], problems: _Problems) -> None:
    first_seen: dict[tuple[str, int, str, str], int] = {}
    for line, lot in lots:
        key = (lot.part_number, lot.color_id, lot.condition, lot.location)
        if key in first_seen:
            where = f"at {_escape(lot.location)}" if lot.location else "with no location"
            problems.add(
                line,
                f"duplicate lot {_escape(lot.part_number)} colour {lot.color_id} {lot.condition} "
                f"{where} (first on line {first_seen[key]})",
            )
        else:
            first_seen[key] = line


# --- reading ------------------------------------------------------------------------
def read_inventory_file(path: str | os.PathLike) -> list[InventoryLot]:
    """Every lot of an inventory CSV or BrickLink/BrickStore XML file, or ``InputFileError``."""
    name = _display_name(path)
    data = _read_bytes(path, name)
    text = _decode(data, name)
    if not text.strip():
        _fail(name, None, "empty file")
    nul = text.find("\x00")
    if nul >= 0:
        _fail(name, _line_of(text, nul), "contains a NUL byte (is this a binary file?)")
    if text.lstrip().startswith("<"):
        return _read_xml(text, name)
    return _read_csv(text, name)


def _read_bytes(path: str | os.PathLike, name: str) -> bytes:
    try:
        if str(path) == "-":  # standard input: `... | marketsync inventory import -`
            import sys

            data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            with open(path, "rb") as stream:
                data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        _fail(name, None, "no such file")
    except IsADirectoryError:
        _fail(name, None, "is a directory, not a file")
    except PermissionError:
        _fail(name, None, "permission denied")
    except OSError as exc:
        _fail(name, None, f"cannot read the file ({_escape(exc.strerror or str(exc), 200)})")
    except (ValueError, TypeError) as exc:  # embedded NUL in the name, not a path at all
        _fail(name, None, f"not a usable file name ({_escape(str(exc), 200)})")
    if len(data) > MAX_FILE_BYTES:
        _fail(name, None, f"file is too large (more than {MAX_FILE_BYTES // (1024 * 1024)} MiB)")
    return data


_XML_ENCODING = re.compile(rb"""\A\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _decode(data: bytes, name: str) -> str:
    skip = len(_BOM) if data.startswith(_BOM) else 0
    declared = _XML_ENCODING.match(data[skip:])
    if declared and declared.group(1).decode("ascii").lower().replace("_", "-") not in ("utf-8", "utf8"):
        encoding = declared.group(1).decode("ascii")  # BrickStore and older exports say ISO-8859-1
        try:
            return data[skip:].decode(encoding)
        except LookupError:
            _fail(name, 1, f"the XML declares an unknown encoding {_escape(encoding, 40)!r}")
        except UnicodeDecodeError as exc:
            _fail(name, None, f"not {encoding} text as the XML declares (byte 0x{data[exc.start + skip]:02x} "
                              f"at offset {exc.start + skip})")
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
        hint = ""
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = "; it looks like UTF-16, save it as UTF-8"
        _fail(name, None, f"not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset}{hint})")


def _line_of(text: str, index: int) -> int:
    return len(_LINE_BREAK.findall(text, 0, index)) + 1


# --- CSV ----------------------------------------------------------------------------
def _detect_delimiter(text: str) -> tuple[str, int | None]:
    """(delimiter, line of an Excel ``sep=`` line or None), judged from the header line.

    The header must name known columns, so the delimiter is the one of ``,;\\t`` that splits
    the first non-blank line into the most known column names (comma on a tie). That is
    more reliable than ``csv.Sniffer``, which guesses from character frequencies.
    """
    lines = io.StringIO(text, newline="").readlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        raw = line.rstrip("\r\n")
        if raw[:4].lower() == "sep=" and raw[4:] in _DELIMITERS:  # Excel's delimiter hint
            return raw[4:], number
        best, best_count = ",", 0
        for candidate in _DELIMITERS:
            try:
                fields = next(csv.reader([line], delimiter=candidate, skipinitialspace=True), [])
            except csv.Error:
                continue
            count = sum(1 for field in fields if field.strip().lower() in CSV_COLUMNS)
            if count > best_count:
                best, best_count = candidate, count
        return best, None
    return ",", None


def _read_csv(text: str, name: str) -> list[InventoryLot]:
    delimiter, sep_line = _detect_delimiter(text)
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True, strict=True
    )
    problems = _Problems(name)
    columns: dict[str, int] | None = None
    width = 0
    lots: list[tuple[int, InventoryLot]] = []
    while True:
        line = reader.line_num + 1  # physical line where this record starts
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            message = f"malformed CSV ({exc})"
            if "unexpected end of data" in str(exc):
                message = "malformed CSV (a quote opened here is never closed)"
            problems.add(line, message)
            break
        if line == sep_line or all(not field.strip() for field in row):
            continue
        if columns is None:
            columns = _parse_header(row, line, name)
            width = len(row)
            continue
        try:
            lots.append((line, _csv_row_to_lot(row, columns, width)))
        except _FieldError as exc:
            problems.add(line, str(exc))
    if columns is None:  # only blank lines: caught as "empty file" before, kept for safety
        _fail(name, None, "empty file")
    _check_duplicates(lots, problems)
    problems.raise_if_any()
    return [lot for _, lot in lots]


def _parse_header(row: list[str], line: int, name: str) -> dict[str, int]:
    columns: dict[str, int] = {}
    unknown: list[str] = []
    for index, raw in enumerate(row):
        column = raw.strip().lower()
        if not column:
            continue  # an unnamed column may only hold blanks (checked per row)
        if column in columns:
            _fail(name, line, f"column {column} appears twice in the header")
        if column in CSV_COLUMNS:
            columns[column] = index
        else:
            unknown.append(_escape(raw.strip()))
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    required = ",".join(REQUIRED_COLUMNS)
    if not columns:
        _fail(name, line, f"no header row (the first line must name the columns {required})")
    messages = []
    if missing:
        messages.append(f"missing column(s) {', '.join(missing)} (header must include {required})")
    if unknown:
        messages.append(
            f"unknown column(s) {', '.join(unknown)} (allowed: {', '.join(CSV_COLUMNS)})"
        )
    if messages:
        _fail(name, line, "; ".join(messages))
    return columns


def _csv_row_to_lot(row: list[str], columns: dict[str, int], width: int) -> InventoryLot:
    if any(index >= len(row) for index in columns.values()):  # short rows may only lack unnamed columns
        raise _FieldError(f"has {len(row)} values but the header names {width} columns")
    named = set(columns.values())
    for index, value in enumerate(row):
        if index not in named and value.strip():
            if index >= width:
                raise _FieldError(f"has {len(row)} values but the header names {width} columns")
            raise _FieldError(f"value {_show(value.strip())} in column {index + 1}, which has no header")

    def get(column: str) -> str | None:
        index = columns.get(column)
        return row[index] if index is not None else None

    return InventoryLot(
        part_number=_required_text("part_number", get("part_number")),
        color_id=_color_id("color_id", get("color_id")),
        condition=_condition("condition", get("condition")),
        location=(get("location") or "").strip(),
        quantity=_quantity("quantity", get("quantity")),
        name=_optional_text(get("name")),
        item_type=_optional_text(get("item_type")),
        price=_price("price", get("price")),
        bricklink_lot_id=_optional_text(get("bricklink_lot_id")),
    )


# --- BrickLink / BrickStore XML ---------------------------------------------------
_INVENTORY_ROOTS = ("inventory", "brickstorexml")


class _XmlItem:
    __slots__ = ("line", "depth", "fields", "problem")

    def __init__(self, line: int, depth: int):
        self.line = line
        self.depth = depth
        self.fields: dict[str, str] = {}
        self.problem: str | None = None


class _XmlInventory:
    """Collects every ITEM element (any depth, any case) with its direct children's text."""

    def __init__(self, line_offset: int):
        self.line_offset = line_offset
        self.parser = expat.ParserCreate(encoding="UTF-8")
        self.parser.buffer_text = True
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text
        self.parser.StartDoctypeDeclHandler = self._refuse_doctype
        self.parser.EntityDeclHandler = self._refuse_entity
        self.root: str | None = None
        self.items: list[_XmlItem] = []
        self._depth = 0
        self._item: _XmlItem | None = None
        self._child: str | None = None
        self._child_tag = ""
        self._buffer: list[str] = []

    @property
    def line(self) -> int:
        return self.parser.CurrentLineNumber + self.line_offset

    def _refuse_doctype(self, *args: object) -> None:
        raise _XmlRefused(self.line, "DOCTYPE declarations are not allowed in an inventory XML")

    def _refuse_entity(self, *args: object) -> None:
        raise _XmlRefused(self.line, "ENTITY declarations are not allowed in an inventory XML")

    def _start(self, tag: str, attributes: dict[str, str]) -> None:
        self._depth += 1
        lowered = tag.lower()
        if self.root is None:
            self.root = lowered
        item = self._item
        if lowered == "item":
            if item is not None:
                raise _XmlRefused(self.line, f"<{_escape(tag)}> inside another <ITEM> (line {item.line})")
            self._item = _XmlItem(self.line, self._depth)
        elif item is not None and self._depth == item.depth + 1:
            self._child = lowered
            self._child_tag = tag
            self._buffer = []

    def _text(self, data: str) -> None:
        if self._child is not None and self._item is not None and self._depth == self._item.depth + 1:
            self._buffer.append(data)

    def _end(self, tag: str) -> None:
        item = self._item
        if item is not None:
            if self._depth == item.depth:
                self.items.append(item)
                self._item = None
            elif self._depth == item.depth + 1 and self._child is not None:
                if self._child in item.fields:
                    if item.problem is None:
                        item.problem = f"<{_escape(self._child_tag.upper())}> appears twice in one <ITEM>"
                else:
                    item.fields[self._child] = "".join(self._buffer)
                self._child = None
        self._depth -= 1


class _XmlRefused(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def _read_xml(text: str, name: str) -> list[InventoryLot]:
    document = text.lstrip()
    line_offset = _line_of(text, len(text) - len(document)) - 1
    forbidden = _FORBIDDEN_XML.search(document)
    if forbidden:
        kind = forbidden.group(0)[2:].upper()
        _fail(
            name,
            _line_of(document, forbidden.start()) + line_offset,
            f"{kind} declarations are not allowed in an inventory XML",
        )
    reader = _XmlInventory(line_offset)
    try:
        reader.parser.Parse(document.encode("utf-8"), True)
    except _XmlRefused as exc:
        _fail(name, exc.line, exc.message)
    except expat.ExpatError as exc:
        _fail(name, exc.lineno + line_offset, f"not well-formed XML ({expat.ErrorString(exc.code)})")
    if not reader.items and reader.root not in _INVENTORY_ROOTS:
        _fail(name, None, "no <ITEM> elements found (is this a BrickLink inventory XML?)")
    problems = _Problems(name)
    lots: list[tuple[int, InventoryLot]] = []
    for item in reader.items:
        try:
            if item.problem:
                raise _FieldError(item.problem)
            lots.append((item.line, _xml_item_to_lot(item.fields)))
        except _FieldError as exc:
            problems.add(item.line, str(exc))
    _check_duplicates(lots, problems)
    problems.raise_if_any()
    return [lot for _, lot in lots]


def _item_type(raw: str | None) -> str | None:
    value = (raw or "").strip().upper()
    if not value:
        return None
    if value in ITEM_TYPES:
        return ITEM_TYPES[value]
    normalised = value.replace(" ", "_")
    if normalised in ITEM_TYPES.values():
        return normalised
    raise _FieldError(f"<ITEMTYPE> {_show((raw or '').strip())} is not one of {', '.join(ITEM_TYPES)}")


def _xml_item_to_lot(fields: dict[str, str]) -> InventoryLot:
    if "itemid" not in fields:
        raise _FieldError("<ITEM> has no <ITEMID>")
    if "condition" not in fields:
        raise _FieldError("<ITEM> has no <CONDITION>")
    if "qty" not in fields:
        raise _FieldError("<ITEM> has no <QTY>")
    # BrickStore writes <ItemTypeID> and <ColorID> where BrickLink writes ITEMTYPE and COLOR
    color = fields.get("color", fields.get("colorid"))
    name = _optional_text(fields.get("itemname"))
    return InventoryLot(
        part_number=_required_text("<ITEMID>", fields["itemid"]),
        color_id=_color_id("<COLOR>", color) if color and color.strip() else 0,
        condition=_condition("<CONDITION>", fields["condition"]),
        location=html.unescape(fields.get("remarks") or "").strip(),
        quantity=_quantity("<QTY>", fields["qty"]),
        name=_optional_text(html.unescape(name)) if name else None,
        item_type=_item_type(fields.get("itemtype", fields.get("itemtypeid"))),
        price=_price("<PRICE>", fields.get("price")),
        bricklink_lot_id=_optional_text(fields.get("lotid")),
    )


# --- writing ------------------------------------------------------------------------
def write_inventory_csv(lots: Iterable[InventoryLot], stream: IO[str]) -> None:
    """Write ``lots`` as the canonical CSV (header ``CSV_COLUMNS``) to a text stream.

    Open files with ``newline=""``. ``read_inventory_file`` reads the result back into equal
    lots (for lots as it returns them: stripped text, ``None`` rather than ``""``).
    """
    plain = csv.writer(stream, lineterminator="\n")
    # A lone "\r" is not quoted when the line terminator is "\n"; quote such rows fully.
    quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
    plain.writerow(CSV_COLUMNS)
    for lot in lots:
        row = [
            lot.part_number,
            str(lot.color_id),
            lot.condition,
            lot.location or "",
            str(lot.quantity),
            lot.name or "",
            lot.item_type or "",
            _format_price(lot.price),
            lot.bricklink_lot_id or "",
        ]
        (quoted if any("\r" in value for value in row) else plain).writerow(row)


def _format_price(price: Decimal | None) -> str:
    if price is None:
        return ""
    price = Decimal(price)
    return format(price, "f") if price.is_finite() else str(price)
