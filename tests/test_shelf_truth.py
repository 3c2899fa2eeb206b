"""The shelf is the truth: a stateful property test over the real sandbox and the real CLI.

Hypothesis plays random histories of a tiny shop (tests/shelf_world.py: 2-3 lots, each listed on
BrickLink and BrickOwl; optionally lot 0 listed as two BrickLink lots, and a BrickLink stockroom lot
of the same part in the same bin): buyers order on either marketplace, orders are paid, shipped
(picked from the shelf), cancelled (each store restocking or not), shipments are taken back, the
seller adds stock on a marketplace's website and later adopts it, recounts a bin
(``inventory import``), pulls a marketplace (``inventory pull``), and cron runs ``sync --push``,
sometimes under a fault (answers lost after or without applying a write, 5xx on reads, a lot list
or order list failing for the whole run, a buyer ordering while the run is under way, a write the
marketplace applies late) or, in the slow profile, killed with SIGKILL mid-run.

``quiet_and_check`` (a rule, so mid-run too, and again at teardown): once late writes have landed,
faults are off, the seller has adopted every outstanding edit and two quiet ``sync --push`` runs
are done (the second exiting 0): on hand == the shelf; reserved == the open orders' pieces; each
marketplace's for-sale listings of the lot add up to max(0, available); no listing is held;
``reserve --check`` exits 0; the stockroom lot never changed. Each kind of mismatch is its own
assertion, so hypothesis reports each kind of defect on its own; the notes of a failing example
print every step with the commands run, their output and the figures after each run.

Profiles (measured on the shared 2-core machine, ``-p no:cacheprovider -n 0``, in runs where
every example passes; a failing run stops at its first failure):

* fast (CI, the default run): ``test_the_shelf_is_the_truth`` -- 100 examples x up to 20 steps,
  derandomised, no shrinking (a failure prints the example as found), no kill -9:
  about 31 s (23 s for 60 examples; load average ~1.8).
* slow (``pytest -m slow``): ``test_the_shelf_is_the_truth_long`` -- 200 examples x up to 40 steps,
  random, shrinking on, kill -9 of a real ``python -m marketsync sync --push`` included: 20
  examples took 269 s, so about 45 minutes, plus up to 5 minutes of shrinking per distinct failure
  (a failure that hinges on where a kill landed may come back as Flaky).

``SHELF_TRUTH_EXAMPLES`` / ``SHELF_TRUTH_STEPS`` override either profile's figures locally, and
``SHELF_TRUTH_SHRINK=1`` / ``=0`` switches shrinking on or off.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from shelf_world import ShelfTruth

SUPPRESSED = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


def _settings(examples: int, steps: int, shrink: bool, **extra) -> settings:
    shrink = os.environ.get("SHELF_TRUTH_SHRINK", "1" if shrink else "0") == "1"
    return settings(
        max_examples=int(os.environ.get("SHELF_TRUTH_EXAMPLES", examples)),
        stateful_step_count=int(os.environ.get("SHELF_TRUTH_STEPS", steps)),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, *([Phase.shrink] if shrink else [])],
        deadline=None, database=None, suppress_health_check=SUPPRESSED, **extra,
    )


class ShelfTruthWithKills(ShelfTruth):
    KILL = True


@pytest.mark.heavy
def test_the_shelf_is_the_truth():
    run_state_machine_as_test(ShelfTruth,
                              settings=_settings(100, 20, shrink=False, derandomize=True))


@pytest.mark.slow
def test_the_shelf_is_the_truth_long():
    run_state_machine_as_test(ShelfTruthWithKills, settings=_settings(200, 40, shrink=True))
