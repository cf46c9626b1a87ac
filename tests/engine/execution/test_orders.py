from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from engine.errors import OffGridError
from engine.execution.errors import UnknownOutcomeError
from engine.execution.gateway import GatewayConfig, VenueGateway
from engine.execution.instruments import Instrument
from engine.execution.models import NotPlaced, OrderRequest, OrderStatus
from engine.execution.orders import OrderClient, ResolvePolicy
from engine.execution.retry import RetryPolicy
from tests.engine.execution.fakes import ManualClock, ScriptedExchange

BTC = Instrument(
    symbol="BTC/USDT",
    symbol_id=0,
    market_id="BTCUSDT",
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.00001"),
)
REQUEST = OrderRequest(
    client_order_id="blue-1-42",
    symbol="BTC/USDT",
    side="buy",
    type="limit",
    amount=Decimal("0.01"),
    price=Decimal("20000.01"),
)
ORDER = {
    "id": "9",
    "clientOrderId": "blue-1-42",
    "symbol": "BTC/USDT",
    "side": "buy",
    "type": "limit",
    "status": "open",
    "price": 20000.01,
    "amount": 0.01,
    "filled": 0.0,
    "timestamp": 1,
}


def _client(exchange: ScriptedExchange, clock: ManualClock) -> OrderClient:
    gateway = VenueGateway(
        exchange,
        venue="orders_unit",
        secrets=[],
        config=GatewayConfig(retry=RetryPolicy(max_attempts=2, base_s=0.1, max_backoff_s=0.2)),
        clock=clock,
    )
    policy = ResolvePolicy(max_polls=6, poll_interval_s=1.0, not_found_grace_s=3.0)
    return OrderClient(gateway, instruments={"BTC/USDT": BTC}, resolve_policy=policy)


async def test_create_order_always_sends_the_client_order_id():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("create_order", ORDER)
    state = await _client(exchange, clock).create_order(REQUEST)
    assert state.client_order_id == "blue-1-42"
    _name, args = exchange.calls[0]
    assert args[:5] == ("BTC/USDT", "limit", "buy", "0.01", "20000.01")
    assert args[5]["newClientOrderId"] == "blue-1-42"


async def test_off_grid_price_is_refused_before_sending():
    exchange, clock = ScriptedExchange(), ManualClock()
    request = OrderRequest(
        client_order_id="c-1", symbol="BTC/USDT", side="buy", type="limit",
        amount=Decimal("0.01"), price=Decimal("20000.015"),
    )  # fmt: skip
    with pytest.raises(OffGridError):
        await _client(exchange, clock).create_order(request)
    assert exchange.calls == []


async def test_lost_answer_is_resolved_by_client_id_without_resending():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("create_order", ccxt.RequestTimeout("timeout"))
    exchange.plan("fetch_order", ORDER)
    result = await _client(exchange, clock).submit(REQUEST)
    assert not isinstance(result, NotPlaced)
    assert result.status is OrderStatus.OPEN
    assert [c[0] for c in exchange.calls].count("create_order") == 1
    assert exchange.calls[-1][1][2] == {"origClientOrderId": "blue-1-42"}


async def test_not_found_is_only_believed_after_the_grace_period_and_open_orders_check():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("create_order", ccxt.RequestTimeout("timeout"))
    exchange.plan("fetch_order", ccxt.OrderNotFound("-2013"))
    exchange.plan("fetch_open_orders", [])
    result = await _client(exchange, clock).submit(REQUEST)
    assert result == NotPlaced(client_order_id="blue-1-42")
    assert clock.now >= 3.0
    assert [c[0] for c in exchange.calls].count("create_order") == 1


async def test_order_that_appears_late_is_found_not_declared_missing():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("create_order", ccxt.ExchangeNotAvailable("reset"))
    exchange.plan("fetch_order", ccxt.OrderNotFound("-2013"), ORDER)
    result = await _client(exchange, clock).submit(REQUEST)
    assert not isinstance(result, NotPlaced)


async def test_outcome_stays_unknown_when_the_venue_never_answers():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("create_order", ccxt.RequestTimeout("timeout"))
    exchange.plan("fetch_order", ccxt.RequestTimeout("timeout"))
    exchange.plan("fetch_open_orders", ccxt.RequestTimeout("timeout"))
    with pytest.raises(UnknownOutcomeError) as caught:
        await _client(exchange, clock).submit(REQUEST)
    assert caught.value.client_order_id == "blue-1-42"
    assert [c[0] for c in exchange.calls].count("create_order") == 1


def test_client_order_id_must_be_one_binance_accepts():
    with pytest.raises(ValueError, match="client_order_id"):
        OrderRequest(
            client_order_id="has spaces", symbol="BTC/USDT", side="buy", type="market",
            amount=Decimal(1),
        )  # fmt: skip
