"""Output: rich tables for people, JSON and CSV for programs. Always to stdout."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

if TYPE_CHECKING:  # rich is imported when a table is printed, never for JSON or CSV
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

Format = Literal["table", "json", "csv"]

STATUS_STYLE = {
    "pending": "yellow", "paid": "bold green", "processing": "cyan", "packed": "blue", "shipped": "dim",
    "completed": "dim", "disputed": "bold red", "cancelled": "dim strike", "unknown": "bold magenta",
}


def money(value: Any, currency: str | None = None) -> str:
    """At least two decimals, and every further one the marketplace gave: a per-piece price of
    ``0.0340`` is ``0.034``, never ``0.03`` (BrickLink prices to 4 decimals, BrickOwl to 3)."""
    if value in (None, ""):
        return ""
    try:
        amount = Decimal(str(value))
        exponent = amount.normalize().as_tuple().exponent
        places = max(2, -exponent) if isinstance(exponent, int) else 2
        text = f"{amount.quantize(Decimal(1).scaleb(-places)):,}"
    except (InvalidOperation, ValueError, TypeError):
        text = str(value)
    return f"{text} {currency}" if currency else text


def when(value: str | None) -> str:
    """``2023-09-29T16:21:57Z`` as ``2023-09-29 16:21`` (UTC) for tables."""
    return value[:16].replace("T", " ") if value else ""


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Off a terminal: 200 columns (a log, a pipe), unless COLUMNS says otherwise.
    wide = None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else 200
    return Console(file=stream, width=wide, soft_wrap=False, highlight=False)


# (header, justify, value-of-row[, style[, wraps]]): a column that does not wrap keeps its words
# whole (a cell too long for it ends in an ellipsis); one that wraps folds long text over lines.
Column = tuple[Any, ...]


def table(rows: Sequence[dict], columns: Sequence[Column], *, title: str | None = None, caption: str | None = None,
          compact: bool = False) -> Table:
    """A rich Table of ``rows``; ``compact``: lighter borders, for narrow terminals."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    out = Table(title=title and escape(title), caption=caption and escape(caption), header_style="bold", expand=False,
                box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD, pad_edge=not compact)
    for column in columns:
        wraps = column[4] if len(column) > 4 else True
        out.add_column(column[0], justify=column[1], style=column[3] if len(column) > 3 else None,
                       no_wrap=not wraps, overflow="fold" if wraps else "ellipsis")
    for row in rows:
        out.add_row(*[_cell(column[2](row)) for column in columns])
    return out


def fitting_table(rows: Sequence[dict], variants: Sequence[Sequence[Column]], *, title: str | None = None,
                  caption: str | None = None) -> Table:
    """The first of ``variants`` (richest first) whose table fits the console's width, tried with
    full then compact borders; the last one otherwise."""
    from rich.measure import Measurement

    out = console()
    unbounded = out.options.update_width(100_000)  # the width the table wants, not what it is given
    last = None
    for compact in (False, True):
        for columns in variants:
            last = table(rows, columns, title=title, caption=caption, compact=compact)
            if Measurement.get(out, unbounded, last).maximum <= out.width:
                return last
    assert last is not None, "fitting_table needs at least one variant"
    return last


# --- the same text without rich, where rich would write plain text ---------------------------------
# Off a terminal rich writes no escape codes: a table of plain cells is then text anyone can draw.
# A read-only command that prints little (``status`` from cron) prints it so, without loading rich;
# anything rich might draw differently (wider than the console, other characters, markup) goes to rich.
_PLAIN = re.compile(r"[ -~]*")  # printable ASCII: one column a character, nothing rich replaces or widens
_EMOJI = re.compile(r":\S*?:")  # what rich may read as an emoji code (":smile:")


def plain_width(environ: dict[str, str] | None = None) -> int | None:
    """The width :func:`console` prints stdout at, when rich would print plain text there (off a
    terminal, nothing forcing colour, a UTF-8 stream, not Windows); None otherwise."""
    environ = dict(os.environ) if environ is None else environ
    stream = sys.stdout
    try:
        on_terminal = stream.isatty()
    except (AttributeError, ValueError):
        return None
    encoding = (getattr(stream, "encoding", "utf-8") or "utf-8").lower()
    if on_terminal or environ.get("FORCE_COLOR") or environ.get("TTY_COMPATIBLE") == "1" \
            or not encoding.startswith("utf") or sys.platform == "win32":
        return None
    columns = environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() else 200
    return width if width > 0 else None  # COLUMNS=0: rich's own way


def _plain_text(value: Any) -> str | None:
    """A cell's text when rich would print it as it is (None: a renderable, or text rich may change)."""
    if value is not None and not isinstance(value, (str, int, float)):
        return None
    text = "" if value is None else str(value)
    return text if _PLAIN.fullmatch(text) else None


def plain_table(rows: Sequence[dict], columns: Sequence[Column], width: int) -> str | bool:
    """What ``console().print(table(rows, columns))`` prints at ``width`` off a terminal: False when
    it is wider than ``width`` (rich would fold it), True when only rich can say."""
    if not rows or any(column[1] not in ("left", "right") or not _PLAIN.fullmatch(column[0])
                       or "[" in column[0] or _EMOJI.search(column[0]) for column in columns):
        return True
    cells: list[list[str]] = [[column[0] for column in columns]]
    for row in rows:
        texts = [_plain_text(column[2](row)) for column in columns]
        if None in texts:
            return True
        cells.append([text for text in texts if text is not None])
    widths = [max(len(line[n]) for line in cells) for n in range(len(columns))]
    if sum(widths) + 3 * len(widths) + 1 > width:
        return False

    def line(texts: list[str], bar: str) -> str:
        return bar + bar.join(f" {text.ljust(w)} " if column[1] == "left" else f" {text.rstrip().rjust(w)} "
                              for text, w, column in zip(texts, widths, columns)) + bar + "\n"

    def rule(left: str, bar: str, middle: str, right: str) -> str:
        return left + middle.join(bar * (w + 2) for w in widths) + right + "\n"

    return (rule("┏", "━", "┳", "┓") + line(cells[0], "┃") + rule("┡", "━", "╇", "┩")
            + "".join(line(texts, "│") for texts in cells[1:]) + rule("└", "─", "┴", "┘"))


def print_table(rows: Sequence[dict], variants: Sequence[Sequence[Column]]) -> None:
    """:func:`fitting_table` of ``variants`` printed (one variant: :func:`table`); off a terminal
    the text rich would print, written without loading rich when it can be."""
    width = plain_width()
    if width is not None:
        for columns in variants:
            drawn = plain_table(rows, columns, width)
            if drawn is True:
                break
            if drawn is not False:
                sys.stdout.write(drawn)
                sys.stdout.flush()
                return
    console().print(fitting_table(rows, variants) if len(variants) > 1 else table(rows, variants[0]))


def print_text(text: str, markup: str | None = None) -> None:
    """One line of ``text`` (printed by rich as ``markup`` when given, else as it is), without
    loading rich off a terminal when rich would print it unchanged."""
    width = plain_width()
    if width is not None and len(text) <= width and _PLAIN.fullmatch(text) and not _EMOJI.search(text):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    if markup is None:
        console().print(text, markup=False)
    else:
        console().print(markup)


def _cell(value: Any) -> Any:
    """Renderables as they are; anything else as plain text (marketplace data may hold '[/]', never markup)."""
    from rich.text import Text

    return value if hasattr(value, "__rich_console__") or hasattr(value, "markup") else Text("" if value is None else str(value))


def styled(value: Any, style: str) -> Text:
    """``value`` as plain text in ``style`` (for cells that need colour)."""
    from rich.text import Text

    return Text(str(value), style=style)


def emit(rows: Iterable[dict], fmt: str, columns: Sequence[Column] = (), *, title: str | None = None,
         caption: str | None = None, fields: Sequence[str] | None = None) -> None:
    """``rows`` as a table, a JSON array or CSV; JSON and CSV take any iterable (a cursor's rows)
    and write each row as it comes, so the whole result set is never held at once."""
    if fmt == "json":
        # One object per line: readable, greppable, and encoded by json's C encoder (indent= would
        # switch to the pure-Python one: 3.4 s instead of well under one for 100,000 orders).
        encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
        write = sys.stdout.write
        write("[")
        separator = "\n  "
        for row in rows:
            write(separator + encode(_plain(row, fields)))
            separator = ",\n  "
        write("]\n" if separator == "\n  " else "\n]\n")
    elif fmt == "csv":
        items = iter(rows)
        first = next(items, None)
        # no rows: the header still (the query's columns, or the fields given)
        keys = list(fields or (first.keys() if first is not None else getattr(rows, "fields", [])))
        writer = csv.DictWriter(sys.stdout, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        if first is not None:
            writer.writerow(first)
            writer.writerows(items)
    else:
        console().print(table(list(rows), columns, title=title, caption=caption))


def _plain(row: dict, fields: Sequence[str] | None) -> dict:
    return {k: row.get(k) for k in fields} if fields else dict(row)


def status_text(status: str) -> Text:
    from rich.text import Text

    return Text(status or "", style=STATUS_STYLE.get(status, ""))
