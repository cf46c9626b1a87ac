"""Websocket streams driven by ccxt.pro's binance class and by raw frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from infra.exchange_sim.server import RunningSim
from tests.stubs.api import poll
from tests.stubs.exchange_sim import DEMO_KEY

BTC = "BTC/USDT"


async def next_json(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(ws.receive_json(), 10)
        event = message.get("event", message)
        if event.get("e") == kind or (kind == "answer" and "id" in message):
            return dict(message)


async def test_watch_order_book_stays_in_sync_with_rest_depth(pro: Any, client: Any) -> None:
    book = await pro.watch_order_book(BTC)
    for price in (50_000, 50_100, 50_200):
        await client.create_order(BTC, "limit", "buy", 0.01, price)
    await client.create_order(BTC, "market", "buy", 0.05)
    rest = await client.fetch_order_book(BTC, 1000)
    while book["nonce"] < rest["nonce"]:
        book = await pro.watch_order_book(BTC)
    assert book["nonce"] == rest["nonce"]
    assert [list(level) for level in book["bids"]] == [list(level) for level in rest["bids"]]
    assert [list(level) for level in book["asks"]] == [list(level) for level in rest["asks"]]


async def test_watch_orders_and_balance_through_websocket_api(
    sim: RunningSim, pro: Any, client: Any
) -> None:
    watching = asyncio.ensure_future(pro.watch_orders(BTC))

    async def subscribed() -> bool:
        return sim.venue.hub.has_user("demo")

    # an order placed before the user data subscription lands is never streamed (a fixed
    # pause lost that race on a loaded CI)
    await poll(subscribed, timeout_s=10, interval_s=0.05)
    placed = await client.create_order(BTC, "limit", "buy", 0.01, 50_000)
    orders = await asyncio.wait_for(watching, 10)
    assert orders[-1]["id"] == placed["id"]
    assert orders[-1]["status"] == "open"
    balance_watch = asyncio.ensure_future(pro.watch_balance())
    await asyncio.sleep(0.2)  # let watch_balance register (the connection is already subscribed)
    await client.cancel_order(placed["id"], BTC)
    balance = await asyncio.wait_for(balance_watch, 10)
    assert balance["USDT"]["used"] == 0


async def test_listen_key_stream_delivers_execution_reports(sim: RunningSim, client: Any) -> None:
    base = f"http://127.0.0.1:{sim.port}"
    headers = {"X-MBX-APIKEY": DEMO_KEY}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/v3/userDataStream", headers=headers) as response:
            key = (await response.json())["listenKey"]
        async with session.ws_connect(f"{base}/ws/{key}") as ws:
            await client.create_order(BTC, "market", "buy", 0.001)
            new = await next_json(ws, "executionReport")
            assert (new["x"], new["X"]) == ("NEW", "NEW")
            trade = await next_json(ws, "executionReport")
            assert (trade["x"], trade["X"], trade["N"]) == ("TRADE", "FILLED", "BTC")
            position = await next_json(ws, "outboundAccountPosition")
            assert {b["a"] for b in position["B"]} >= {"BTC", "USDT"}
            async with session.put(
                f"{base}/api/v3/userDataStream", headers=headers, data={"listenKey": key}
            ) as r:
                assert r.status == 200
            async with session.delete(
                f"{base}/api/v3/userDataStream", headers=headers, data={"listenKey": key}
            ) as r:
                assert r.status == 200
            closed = await asyncio.wait_for(ws.receive(), 10)
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{base}/ws/{key}")
        assert refused.value.status == 400


async def test_trade_stream_and_subscribe_protocol(sim: RunningSim, client: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"ws://127.0.0.1:{sim.port}/stream/ws/7") as ws,
    ):
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 5}))
        assert await next_json(ws, "answer") == {"result": None, "id": 5}
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 6}))
        assert await next_json(ws, "answer") == {"result": ["btcusdt@trade"], "id": 6}
        await client.create_order(BTC, "market", "sell", 0.001)
        trade = await next_json(ws, "trade")
        assert trade["s"] == "BTCUSDT"
        assert trade["m"] is True
        await ws.send_str("not json")
        error = await ws.receive_json()
        assert error["error"]["code"] == 3
        await ws.send_str(
            json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 8})
        )
        assert await next_json(ws, "answer") == {"result": None, "id": 8}
