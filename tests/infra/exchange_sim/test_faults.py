"""Each injected fault, set and cleared through the admin routes, observed by a client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from infra.exchange_sim.server import RunningSim
from tests.stubs.exchange_sim import ADMIN_TOKEN

BTC = "BTC/USDT"


async def admin(
    sim: RunningSim,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    token: str = ADMIN_TOKEN,
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            f"http://127.0.0.1:{sim.port}{path}",
            json=body,
            headers={"X-Bot4-Admin-Token": token},
        ) as response,
    ):
        return response.status, await response.json()


async def depth_ws(
    session: aiohttp.ClientSession, sim: RunningSim, stream: str = "btcusdt@depth@100ms"
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"ws://127.0.0.1:{sim.port}/ws")
    await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": [stream], "id": 1}))
    assert await ws.receive_json() == {"result": None, "id": 1}
    return ws


async def test_admin_routes_require_the_token_and_list_faults(sim: RunningSim) -> None:
    status, _ = await admin(sim, "GET", "/admin/faults", token="wrong")
    assert status == 401
    status, body = await admin(sim, "GET", "/admin/faults")
    assert status == 200
    assert body["active"] == []
    assert {entry["name"] for entry in body["catalog"]} >= {"latency", "lost_answer", "halt_symbol"}
    status, body = await admin(sim, "PUT", "/admin/faults/latency", {"ms": "nope"})
    assert status == 400
    assert "ms" in body["error"]
    status, body = await admin(sim, "PUT", "/admin/faults/bogus", {})
    assert status == 400
    assert "unknown fault" in body["error"]


async def test_lost_answer_places_the_order_but_the_request_fails(
    sim: RunningSim, client: Any
) -> None:
    await admin(sim, "PUT", "/admin/faults/lost_answer", {"count": 1})
    with pytest.raises(ccxt.NetworkError):
        await client.create_order(BTC, "limit", "buy", 0.01, 50_000, {"clientOrderId": "lost-1"})
    found = await client.fetch_order(None, BTC, {"origClientOrderId": "lost-1"})
    assert found["status"] == "open"
    _, body = await admin(sim, "GET", "/admin/faults")
    assert body["active"] == []  # consumed


async def test_halted_symbol_rejects_orders_as_market_closed(sim: RunningSim, client: Any) -> None:
    await admin(sim, "PUT", "/admin/faults/halt_symbol", {"symbol": "BTCUSDT"})
    with pytest.raises(ccxt.MarketClosed):
        await client.create_order(BTC, "limit", "buy", 0.01, 50_000)
    await client.create_order("ETH/USDT", "limit", "buy", 0.1, 2_000)
    await admin(sim, "DELETE", "/admin/faults/halt_symbol")
    await client.create_order(BTC, "limit", "buy", 0.01, 50_000)


async def test_error_rate_answers_5xx_until_cleared(sim: RunningSim, client: Any) -> None:
    await admin(sim, "PUT", "/admin/faults/error_rate", {"share": 1.0})
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await client.fetch_balance()
    await admin(sim, "DELETE", "/admin/faults")
    assert (await client.fetch_balance())["total"]["BTC"] == 10


async def test_rate_limit_storm_answers_429_with_retry_after(sim: RunningSim, client: Any) -> None:
    await admin(sim, "PUT", "/admin/faults/rate_limit_storm", {"retry_after_s": 7})
    with pytest.raises(ccxt.DDoSProtection):
        await client.fetch_ticker(BTC)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{sim.port}/api/v3/time") as response,
    ):
        assert response.status == 429
        assert response.headers["Retry-After"] == "7"
    await admin(sim, "DELETE", "/admin/faults/rate_limit_storm")


async def test_latency_delays_but_still_answers(sim: RunningSim, client: Any) -> None:
    _status, body = await admin(sim, "PUT", "/admin/faults/latency", {"ms": 30})
    assert body["active"] == [{"name": "latency", "params": {"ms": 30}}]
    assert await client.fetch_time() > 0


async def test_drop_websockets_closes_every_connection(sim: RunningSim) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await depth_ws(session, sim)
        _status, body = await admin(sim, "PUT", "/admin/faults/drop_websockets", {})
        assert body["dropped"] == 1
        message = await asyncio.wait_for(ws.receive(), 10)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await ws.close()


async def test_stalled_streams_send_nothing_then_resume_in_sequence(
    sim: RunningSim, client: Any
) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await depth_ws(session, sim)
        await client.create_order(BTC, "limit", "buy", 0.01, 50_000)
        before = await asyncio.wait_for(ws.receive_json(), 10)
        await admin(sim, "PUT", "/admin/faults/stall_streams", {})
        await client.create_order(BTC, "limit", "buy", 0.01, 50_100)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.receive_json(), 0.5)
        await admin(sim, "DELETE", "/admin/faults/stall_streams")
        after = await asyncio.wait_for(ws.receive_json(), 10)
        assert after["U"] == before["u"] + 1
        await ws.close()


async def test_sequence_gap_skips_update_ids_once(sim: RunningSim, client: Any) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await depth_ws(session, sim)
        await client.create_order(BTC, "limit", "buy", 0.01, 50_000)
        first = await asyncio.wait_for(ws.receive_json(), 10)
        await admin(sim, "PUT", "/admin/faults/sequence_gap", {"symbol": "BTCUSDT", "skip": 3})
        await client.create_order(BTC, "limit", "buy", 0.01, 50_100)
        gapped = await asyncio.wait_for(ws.receive_json(), 10)
        assert gapped["U"] == first["u"] + 1 + 3
        await client.create_order(BTC, "limit", "buy", 0.01, 50_200)
        following = await asyncio.wait_for(ws.receive_json(), 10)
        assert following["U"] == gapped["u"] + 1
        await ws.close()


async def test_crossed_book_emits_a_bid_above_the_best_ask(sim: RunningSim, client: Any) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await depth_ws(session, sim)
        book = await client.fetch_order_book(BTC, 5)
        await admin(sim, "PUT", "/admin/faults/crossed_book", {"symbol": "BTCUSDT"})
        diff = await asyncio.wait_for(ws.receive_json(), 10)
        assert max(float(price) for price, _ in diff["b"]) > book["asks"][0][0]
        await ws.close()
