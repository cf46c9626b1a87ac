"""Fixtures: an in-process simulator on real TCP and ccxt clients bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from infra.exchange_sim.server import RunningSim
from tests.stubs.exchange_sim import OTHER_KEY, OTHER_SECRET, ccxt_binance, sim_config


@pytest.fixture
async def sim() -> AsyncIterator[RunningSim]:
    running = RunningSim(sim_config())
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def client(sim: RunningSim) -> AsyncIterator[Any]:
    exchange = ccxt_binance(sim.port)
    await exchange.load_markets()
    yield exchange
    await exchange.close()


@pytest.fixture
async def other(sim: RunningSim) -> AsyncIterator[Any]:
    exchange = ccxt_binance(sim.port, key=OTHER_KEY, secret=OTHER_SECRET)
    await exchange.load_markets()
    yield exchange
    await exchange.close()


@pytest.fixture
async def pro(sim: RunningSim) -> AsyncIterator[Any]:
    exchange = ccxt_binance(sim.port, pro=True)
    await exchange.load_markets()
    yield exchange
    await exchange.close()
