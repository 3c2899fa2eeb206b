"""``render.print_table`` and ``render.print_text``: off a terminal, the very bytes rich prints,
written without rich when they can be; rich itself wherever it might print anything else."""

from __future__ import annotations

import io
import string
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.markup import escape
from rich.text import Text

from marketsync.cli import render

# Printable ASCII with plenty of spaces, and what rich reads as markup or emoji codes.
TEXT = st.text(alphabet=string.ascii_letters + string.digits + "      []/:.-()'\"\\", max_size=70)
CELL = st.one_of(TEXT, st.none(), st.integers(-10, 10**6), st.sampled_from(["Déjà vu", "a\tb", "two\nlines", "☃"]))
HEADERS = ["Provider", "Last error", "Calls today", "Open", "X", "Oversell window", "95th pct", "[bold]Hint"]


def columns(headers: list[str], justify: list[str], wraps: list[bool]) -> list[tuple]:
    return [(header, side, (lambda row, n=n: row[n]), None, wrap)
            for n, (header, side, wrap) in enumerate(zip(headers, justify, wraps))]


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[dict], list[list[tuple]]]:
    n = draw(st.integers(1, 6))
    chosen = columns(draw(st.lists(st.sampled_from(HEADERS), min_size=n, max_size=n)),
                     draw(st.lists(st.sampled_from(["left", "right"]), min_size=n, max_size=n)),
                     draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    rows = draw(st.lists(st.fixed_dictionaries({k: CELL for k in range(n)}), min_size=1, max_size=4))
    variants = [chosen] if draw(st.booleans()) else [chosen, chosen[:-1] or chosen, chosen[:1]]
    return rows, variants


def printed(monkeypatch: pytest.MonkeyPatch, width: int, show) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    show()
    return out.getvalue()


@settings(max_examples=200, deadline=None)
@given(table=tables(), width=st.sampled_from([0, 30, 60, 80, 120, 200]))
def test_a_table_off_a_terminal_is_what_rich_prints(table, width):
    rows, variants = table
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FORCE_COLOR", raising=False)
        mp.delenv("TTY_COMPATIBLE", raising=False)
        ours = printed(mp, width, lambda: render.print_table(rows, variants))
        theirs = printed(mp, width, lambda: render.console().print(
            render.fitting_table(rows, variants) if len(variants) > 1 else render.table(rows, variants[0])))
    assert ours == theirs


@settings(max_examples=200, deadline=None)
@given(text=TEXT, width=st.sampled_from([0, 20, 80, 200]))
@example(text="\\[", width=20)  # rich's escape() leaves a backslash before a bracket as markup's
def test_a_line_off_a_terminal_is_what_rich_prints(text, width):
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FORCE_COLOR", raising=False)
        ours = printed(mp, width, lambda: render.print_text(text))
        theirs = printed(mp, width, lambda: render.console().print(text, markup=False))
        assert ours == theirs
        markup = f"[bold red]{escape(text)}[/]!"
        said = Text.from_markup(markup).plain  # what the caller passes as the plain text of the markup
        marked = printed(mp, width, lambda: render.print_text(said, markup))
        assert marked == printed(mp, width, lambda: render.console().print(markup))


def test_the_status_table_is_drawn_as_rich_draws_it(monkeypatch):
    rows = [{"provider": "bricklink", "calls": 12, "error": "401 refused"}, {"provider": "brickowl", "calls": 0,
                                                                           "error": None}]
    cols = [("Provider", "left", lambda r: r["provider"], "bold", False),
            ("Last error", "left", lambda r: r["error"], "red"), ("Calls", "right", lambda r: r["calls"])]
    assert printed(monkeypatch, 200, lambda: render.print_table(rows, [cols])) == (
        "┏━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━┓\n"
        "┃ Provider  ┃ Last error  ┃ Calls ┃\n"
        "┡━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━┩\n"
        "│ bricklink │ 401 refused │    12 │\n"
        "│ brickowl  │             │     0 │\n"
        "└───────────┴─────────────┴───────┘\n")


@pytest.mark.parametrize("setting", [{"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}])
def test_rich_prints_whatever_it_is_asked_to_colour(monkeypatch, setting):
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    rows, cols = [{"a": "x"}], [("A", "left", lambda r: r["a"], "bold")]
    assert render.plain_width() is None
    assert "\x1b[" in printed(monkeypatch, 80, lambda: render.print_table(rows, [cols]))  # escape codes: rich's


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Latin1(io.StringIO):
    encoding = "latin-1"


@pytest.mark.parametrize("stream", [Terminal, Latin1])
def test_a_terminal_or_a_stream_not_utf8_is_rich_s(monkeypatch, stream):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setattr(sys, "stdout", stream())
    assert render.plain_width() is None
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.delenv("COLUMNS", raising=False)
    assert render.plain_width() == 200  # off a terminal: as wide as console() makes it
