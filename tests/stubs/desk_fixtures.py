"""Fixtures of a desk's outside world: a living simulator and the test release manifest.

Imported by the test modules that use them (``from tests.stubs.desk_fixtures import
market, release``), so no test module imports another.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stubs.deploy import RELEASE
from tests.stubs.exchange_sim import ThreadedSim, sim_config


@pytest.fixture
def market() -> Iterator[int]:
    """A simulator with background agents, so books move and quotes get filled."""
    with ThreadedSim(sim_config(agent_orders_per_s=150.0)) as sim:
        yield sim.config.port


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """The test release manifest (``tests.stubs.deploy.RELEASE``) as a file."""
    path = tmp_path / "release.json"
    path.write_text(json.dumps(RELEASE))
    return path
