"""Python's cycle collector, held back where a run makes many objects that reference counting
frees on its own, or keeps them all to its end (a pull: one object per lot and per listing).

A backfill decodes tens of thousands of order lines, each a few dicts and a record; every 700 new
objects the collector walks the young ones, and now and then everything alive (the lot index
included) -- ~10% of a backfill's CPU, for garbage that is nearly all freed without it. Paused,
the cycles made meanwhile are found at the points the run names (:func:`collect_young`, after
each written batch) and once it resumes.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector paused meanwhile, and resumed (as it was) after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def collect_young() -> None:
    """While paused: the cycles among the objects made since the last collection (not a walk of
    everything alive), so a long run's memory stays bounded by its batches."""
    if not gc.isenabled():
        gc.collect(1)
