"""Chaos: faults while the desk trades and an operation runs, then every promise checked.

Each test is one scenario drawn from the seed (``scenarios.py``): an operation (a
blue-green rollout, a liquidation, or a DR switchover drill / failover) started through
the control API, and faults at random times (kill -9 of the engine, the worker, the
PostgreSQL primary or the simulator; venue 5xx and 429 storms; websocket drops; a stalled
feed; a venue clock jump). Afterwards ``invariants.py`` checks the venue against the
journal, the epochs, the workflow's outcome and the audit chain. A failure prints the
seed and the index that reproduce it.

``make test`` runs the bounded form (10 scenarios of the fixed seed); ``make chaos`` runs
many more (``BOT4_CHAOS_SCENARIOS``, ``BOT4_CHAOS_MINUTES``, ``BOT4_CHAOS_SEED``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.chaos.report import PROPERTY
from tests.chaos.rig import Rig
from tests.chaos.runner import run_scenario
from tests.chaos.scenarios import ChaosSettings, draw

CHAOS = ChaosSettings.from_env()
STARTED = time.monotonic()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("index", CHAOS.indices())
async def test_scenario_keeps_every_promise(
    index: int, rig: Rig, record_property: Callable[[str, object], None]
) -> None:
    if CHAOS.minutes is not None and time.monotonic() - STARTED > CHAOS.minutes * 60:
        pytest.skip(f"the chaos time budget of {CHAOS.minutes} minutes is spent")
    scenario = draw(CHAOS.seed, index)
    report = await run_scenario(rig, scenario)
    record_property(PROPERTY, report.summary())
    print(report.text())  # shown with -s or -rA: what happened, also when all was kept
    assert report.violations == [], report.text()
