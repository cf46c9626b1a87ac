"""ccxt's own binance class against the simulator over real TCP."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from infra.exchange_sim.server import RunningSim
from tests.stubs.exchange_sim import ccxt_binance, sim_config

BTC = "BTC/USDT"


async def best(client: Any) -> tuple[float, float]:
    book = await client.fetch_order_book(BTC, 5)
    return book["bids"][0][0], book["asks"][0][0]


async def test_fetch_balance_shows_demo_account(client: Any) -> None:
    balance = await client.fetch_balance()
    assert balance["total"]["USDT"] == 1_000_000
    assert balance["total"]["BTC"] == 10
    assert balance["used"]["BTC"] == 0


async def test_limit_order_locks_quote_and_cancel_releases_it(client: Any) -> None:
    order = await client.create_order(BTC, "limit", "buy", 0.01, 50_000)
    assert order["status"] == "open"
    balance = await client.fetch_balance()
    assert balance["used"]["USDT"] == 500
    assert [o["id"] for o in await client.fetch_open_orders(BTC)] == [order["id"]]
    cancelled = await client.cancel_order(order["id"], BTC)
    assert cancelled["status"] == "canceled"
    balance = await client.fetch_balance()
    assert balance["used"]["USDT"] == 0
    assert balance["free"]["USDT"] == 1_000_000


async def test_market_buy_fills_and_charges_taker_fee_in_base(client: Any) -> None:
    _, ask = await best(client)
    order = await client.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "closed"
    assert order["filled"] == 0.01
    assert order["average"] == ask
    assert order["fee"] == {"currency": "BTC", "cost": 0.00001}
    balance = await client.fetch_balance()
    assert balance["total"]["BTC"] == pytest.approx(10.00999)
    assert balance["total"]["USDT"] == pytest.approx(1_000_000 - 0.01 * ask)


async def test_partial_fill_then_full_fill_between_two_accounts(client: Any, other: Any) -> None:
    bid, ask = await best(client)
    mid = round((bid + ask) / 2, 2)
    resting = await client.create_order(BTC, "limit", "sell", 0.03, mid)
    await other.create_order(BTC, "limit", "buy", 0.01, mid)
    partial = await client.fetch_order(resting["id"], BTC)
    assert (partial["status"], partial["filled"], partial["remaining"]) == ("open", 0.01, 0.02)
    assert partial["info"]["status"] == "PARTIALLY_FILLED"
    await other.create_order(BTC, "limit", "buy", 0.02, mid)
    done = await client.fetch_order(resting["id"], BTC)
    assert (done["status"], done["filled"]) == ("closed", 0.03)
    trades = await client.fetch_my_trades(BTC)
    assert [t["takerOrMaker"] for t in trades] == ["maker", "maker"]
    assert trades[0]["fee"]["currency"] == "USDT"
    assert trades[0]["fee"]["cost"] == pytest.approx(0.01 * mid * 0.001)


async def test_a_self_trade_is_listed_once_per_side_under_one_id(client: Any) -> None:
    bid, ask = await best(client)
    mid = round((bid + ask) / 2, 2)
    resting = await client.create_order(BTC, "limit", "sell", 0.01, mid)
    crossing = await client.create_order(BTC, "limit", "buy", 0.01, mid)  # meets our own
    trades = await client.fetch_my_trades(BTC)
    assert [(t["side"], t["order"]) for t in trades] == [
        ("buy", crossing["id"]),
        ("sell", resting["id"]),
    ]
    assert trades[0]["id"] == trades[1]["id"]
    # ``limit`` counts entries: a page can end between the two sides
    page = await client.fetch_my_trades(BTC, None, 1, {"fromId": trades[0]["id"]})
    assert [t["side"] for t in page] == ["buy"]


async def test_ioc_and_fok_time_in_force(client: Any, other: Any) -> None:
    bid, ask = await best(client)
    mid = round((bid + ask) / 2, 2)
    await client.create_order(BTC, "limit", "sell", 0.01, mid)
    ioc = await other.create_order(BTC, "limit", "buy", 0.03, mid, {"timeInForce": "IOC"})
    assert (ioc["status"], ioc["filled"]) == ("expired", 0.01)
    fok = await other.create_order(BTC, "limit", "buy", 0.03, bid, {"timeInForce": "FOK"})
    assert (fok["status"], fok["filled"]) == ("expired", 0.0)
    assert (await other.fetch_balance())["used"]["USDT"] == 0


async def test_post_only_that_would_cross_is_rejected(client: Any) -> None:
    _, ask = await best(client)
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await client.create_order(BTC, "limit", "buy", 0.01, ask, {"postOnly": True})
    resting = await client.create_order(BTC, "limit", "buy", 0.01, 50_000, {"postOnly": True})
    assert resting["info"]["type"] == "LIMIT_MAKER"
    assert resting["status"] == "open"


async def test_duplicate_client_order_id_of_open_order_is_rejected(client: Any) -> None:
    await client.create_order(BTC, "limit", "buy", 0.01, 50_000, {"clientOrderId": "dup-1"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await client.create_order(BTC, "limit", "buy", 0.01, 50_000, {"clientOrderId": "dup-1"})
    by_client = await client.fetch_order(None, BTC, {"origClientOrderId": "dup-1"})
    assert by_client["clientOrderId"] == "dup-1"


async def test_insufficient_balance_raises_insufficient_funds(client: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        await client.create_order(BTC, "limit", "buy", 100, 50_000)


async def test_wrong_secret_raises_authentication_error(sim: RunningSim) -> None:
    bad = ccxt_binance(sim.port, secret="wrong")
    try:
        await bad.load_markets()
        with pytest.raises(ccxt.AuthenticationError):
            await bad.fetch_balance()
    finally:
        await bad.close()


async def test_unknown_api_key_raises_authentication_error(sim: RunningSim) -> None:
    bad = ccxt_binance(sim.port, key="nobody")
    try:
        await bad.load_markets()
        with pytest.raises(ccxt.AuthenticationError):
            await bad.fetch_balance()
    finally:
        await bad.close()


async def test_unknown_order_raises_order_not_found(client: Any) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        await client.fetch_order("987654", BTC)
    with pytest.raises(ccxt.OrderNotFound):
        await client.cancel_order("987654", BTC)


async def test_filter_failures_and_malformed_params_are_bad_requests(client: Any) -> None:
    with pytest.raises(ccxt.ExchangeError, match="NOTIONAL"):
        await client.create_order(BTC, "limit", "buy", 0.00001, 50_000)
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        await client.private_post_order(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.01", "price": "50000.001"}
        )  # fmt: skip
    with pytest.raises(ccxt.BadRequest):
        await client.private_post_order(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "abc", "price": "1"}
        )
    with pytest.raises(ccxt.BadRequest):
        await client.private_post_order({"symbol": "BTCUSDT", "side": "SIDEWAYS", "type": "LIMIT"})
    with pytest.raises(ccxt.BadSymbol):
        await client.private_get_openorders({"symbol": "NOPEUSDT"})


async def test_my_trades_pages_with_from_id_and_limit(client: Any) -> None:
    for _ in range(3):
        await client.create_order(BTC, "market", "buy", 0.001)
    trades = await client.fetch_my_trades(BTC)
    assert len(trades) == 3
    page = await client.fetch_my_trades(BTC, None, 2, {"fromId": trades[1]["id"]})
    assert [t["id"] for t in page] == [trades[1]["id"], trades[2]["id"]]
    orders = await client.fetch_orders(BTC)
    assert len(orders) == 3
    assert all(o["status"] == "closed" for o in orders)


async def test_public_market_data(client: Any) -> None:
    await client.create_order(BTC, "market", "sell", 0.001)
    ticker = await client.fetch_ticker(BTC)
    bid, ask = await best(client)
    assert ticker["bid"] == bid
    assert ticker["ask"] == ask
    assert ticker["last"] > 0
    trades = await client.fetch_trades(BTC)
    assert trades[-1]["side"] == "sell"
    bids_asks = await client.fetch_bids_asks([BTC])
    assert bids_asks[BTC]["ask"] == ask
    assert await client.fetch_time() > 0


async def test_cancel_all_orders_cancels_only_that_symbol(client: Any) -> None:
    await client.create_order(BTC, "limit", "buy", 0.01, 50_000)
    eth = await client.create_order("ETH/USDT", "limit", "buy", 0.1, 2_000)
    await client.cancel_all_orders(BTC)
    assert await client.fetch_open_orders(BTC) == []
    assert [o["id"] for o in await client.fetch_open_orders("ETH/USDT")] == [eth["id"]]


async def _open_count(client: Any) -> int:
    return len(await client.fetch_open_orders(BTC))


async def test_dead_mans_switch_cancels_orders_when_not_refreshed(client: Any) -> None:
    await client.create_order(BTC, "limit", "buy", 0.01, 50_000)
    answer = await client.request(
        "countdownCancelAll", ["private"], "POST", {"symbol": "BTCUSDT", "countdownTime": 300}
    )
    assert answer == {"symbol": "BTCUSDT", "countdownTime": "300"}
    for _ in range(100):
        if await _open_count(client) == 0:
            break
        await asyncio.sleep(0.05)
    assert await _open_count(client) == 0


async def test_dead_mans_switch_disarmed_with_zero_keeps_orders(
    client: Any, sim: RunningSim
) -> None:
    await client.create_order(BTC, "limit", "buy", 0.01, 50_000)
    await client.request(
        "countdownCancelAll", ["private"], "POST", {"symbol": "BTCUSDT", "countdownTime": 60_000}
    )
    await client.request(
        "countdownCancelAll", ["private"], "POST", {"symbol": "BTCUSDT", "countdownTime": 0}
    )
    assert sim.venue.countdowns == {}
    assert await _open_count(client) == 1


async def test_request_weight_header_and_429_beyond_the_limit() -> None:
    running = RunningSim(sim_config(weight_limit_per_minute=30))
    await running.start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{running.port}/api/v3/exchangeInfo"
            async with session.get(url) as first:
                assert first.status == 200
                assert first.headers["X-MBX-USED-WEIGHT-1M"] == "20"
            async with session.get(url) as second:
                assert second.status == 429
                assert int(second.headers["Retry-After"]) >= 1
                assert (await second.json())["code"] == -1003
    finally:
        await running.stop()
