"""``GET /metrics`` of the simulator: requests by endpoint and status, faults and their answers."""

from __future__ import annotations

from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.exchange_sim.server import RunningSim
from tests.infra.exchange_sim.test_faults import admin

BTC = "BTC/USDT"


async def scrape(sim: RunningSim) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{sim.port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


async def test_a_5xx_storm_shows_as_fault_answers_and_5xx_by_endpoint(
    sim: RunningSim, client: Any
) -> None:
    quiet = await scrape(sim)
    assert quiet[key("bot4_exchange_sim_fault_active", fault="error_rate")] == 0
    assert quiet[key("bot4_exchange_sim_fault_answers_total", fault="error_rate")] == 0

    await admin(sim, "PUT", "/admin/faults/error_rate", {"share": 1.0})
    for _ in range(3):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await client.fetch_balance()
    storm = await scrape(sim)
    await admin(sim, "DELETE", "/admin/faults")
    after = await scrape(sim)

    assert storm[key("bot4_exchange_sim_fault_active", fault="error_rate")] == 1
    assert storm[key("bot4_exchange_sim_faults_set_total", fault="error_rate")] == 1
    assert storm[key("bot4_exchange_sim_fault_answers_total", fault="error_rate")] == 3
    requests = key("bot4_exchange_sim_requests_total", method="GET",
                   endpoint="/api/v3/account", status="503")  # fmt: skip
    assert storm[requests] == 3
    assert after[key("bot4_exchange_sim_fault_active", fault="error_rate")] == 0


async def test_an_unknown_path_is_counted_as_unmatched(sim: RunningSim) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{sim.port}/api/v3/no-such-thing-42") as response,
    ):
        assert response.status == 404

    samples = await scrape(sim)

    assert samples[key("bot4_exchange_sim_requests_total", method="GET",
                       endpoint="unmatched", status="404")] == 1  # fmt: skip
    assert not any("no-such-thing" in str(labels) for _, labels in samples)
