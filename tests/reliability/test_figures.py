"""docs/reliability.md quotes the figures this suite counts, not numbers typed by hand."""

from __future__ import annotations

from . import figures


def test_the_doc_quotes_the_current_figures():
    assert figures.doc_table() == figures.table(), (
        "docs/reliability.md is stale: run `python tests/reliability/figures.py --write`")


def test_every_count_is_positive():
    assert all(count > 0 for count in figures.figures().values())
