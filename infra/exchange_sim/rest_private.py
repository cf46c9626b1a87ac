"""Signed REST endpoints of the simulator.

Orders, open orders, trades, account, the dead-man's switch, and the userDataStream
listenKey (API key only, no signature, like Binance).
"""

from __future__ import annotations

import structlog
from aiohttp import web

from infra.exchange_sim.engine import NewOrder
from infra.exchange_sim.errors import BadRequestError, missing
from infra.exchange_sim.formats import balances_json, my_trades_json, new_order_json, order_json
from infra.exchange_sim.http import VENUE_KEY, Signed, read_params, signed
from infra.exchange_sim.metrics import METRICS_KEY
from infra.exchange_sim.models import OrderType, Side, TimeInForce
from infra.exchange_sim.venue import Venue

log = structlog.get_logger(__name__)

RESPONSE_TYPES = ("ACK", "RESULT", "FULL")


def _order_ref(call: Signed) -> tuple[int | None, str | None]:
    order_id = call.params.integer("orderId", low=0)
    client_id = call.params.text("origClientOrderId", required=False, max_length=36)
    if order_id is None and client_id is None:
        raise BadRequestError(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    return order_id, client_id


def _new_order(call: Signed, venue: Venue) -> tuple[NewOrder, str]:
    params = call.params
    symbol = params.symbol(venue)
    market = venue.engine.markets[symbol]
    side = params.choice("side", Side)
    order_type = params.choice("type", OrderType)
    quantity = params.decimal("quantity")
    if quantity is None:
        if params.decimal("quoteOrderQty") is not None:
            raise BadRequestError(-1100, "quoteOrderQty is not supported by the simulator.")
        raise missing("quantity")
    price = params.decimal("price")
    tif_default = TimeInForce.GTC if order_type is not OrderType.LIMIT else None
    tif = params.choice("timeInForce", TimeInForce, default=tif_default)
    if order_type is OrderType.MARKET:
        if price is not None:
            raise BadRequestError(-1106, "Parameter 'price' sent when not required.")
    elif price is None:
        raise missing("price")
    resp_type = params.text("newOrderRespType", required=False) or (
        "FULL" if order_type is not OrderType.LIMIT_MAKER else "ACK"
    )
    if resp_type not in RESPONSE_TYPES:
        raise BadRequestError(-1100, "Invalid newOrderRespType.")
    client_id = params.text("newClientOrderId", required=False, max_length=36)
    new = NewOrder(
        account=call.account.name,
        symbol=symbol,
        side=side,
        type=order_type,
        qty=market.lots(quantity),
        price=market.ticks(price) if price is not None else 0,
        time_in_force=tif,
        client_order_id=client_id,
    )
    return new, resp_type


async def post_order(request: web.Request) -> web.StreamResponse:
    """Place an order; with the ``lost_answer`` fault, place it and drop the connection."""
    venue = request.app[VENUE_KEY]
    call = await signed(request)
    new, resp_type = _new_order(call, venue)
    outcome = venue.place(new)
    assert outcome.order is not None
    if venue.faults.take_lost_answer():
        log.warning("order_answer_lost", order_id=outcome.order.order_id)
        request.app[METRICS_KEY].fault_answers.labels(fault="lost_answer").inc()
        # The order stands; the client never learns it (the unknown-outcome case).
        if request.transport is not None:
            request.transport.abort()
        raise asyncio_cancelled()
    market = venue.engine.markets[new.symbol]
    return web.json_response(new_order_json(outcome.order, market, outcome.fills, resp_type))


def asyncio_cancelled() -> BaseException:
    """Return the exception that ends a handler whose connection we aborted."""
    import asyncio

    return asyncio.CancelledError()


async def get_order(request: web.Request) -> web.Response:
    """Query one order by orderId or origClientOrderId."""
    venue = request.app[VENUE_KEY]
    call = await signed(request)
    symbol = call.params.symbol(venue)
    order_id, client_id = _order_ref(call)
    order = venue.engine.find(
        call.account.name, symbol, order_id=order_id, client_order_id=client_id
    )
    if order is None:
        raise venue.engine.order_missing()
    return web.json_response(order_json(order, venue.engine.markets[symbol]))


async def delete_order(request: web.Request) -> web.Response:
    """Cancel one order."""
    venue = request.app[VENUE_KEY]
    call = await signed(request)
    symbol = call.params.symbol(venue)
    order_id, client_id = _order_ref(call)
    outcome = venue.cancel(call.account.name, symbol, order_id=order_id, client_order_id=client_id)
    assert outcome.order is not None
    body = order_json(outcome.order, venue.engine.markets[symbol])
    body["origClientOrderId"] = outcome.order.client_order_id
    return web.json_response(body)


async def get_open_orders(request: web.Request) -> web.Response:
    """List open orders (of one symbol, or all)."""
    venue = request.app[VENUE_KEY]
    call = await signed(request)
    symbol = call.params.symbol(venue) if "symbol" in call.params.values else None
    orders = venue.engine.open_orders(call.account.name, symbol)
    markets = venue.engine.markets
    return web.json_response([order_json(o, markets[o.symbol]) for o in orders])


async def delete_open_orders(request: web.Request) -> web.Response:
    """Cancel every open order of the account on a symbol."""
    venue = request.app[VENUE_KEY]
    call = await signed(request)
    symbol = call.params.symbol(venue)
    outcome = venue.cancel_all(call.account.name, symbol)
    market = venue.engine.markets[symbol]
    answer = []
    for event in outcome.events:
        body = order_json(event.order, market)
        body["origClientOrderId"] = event.order.client_order_id
        answer.append(body)
    return web.json_response(answer)


async def all_orders(request: web.Request) -> web.Response:
    """List the account's orders on a symbol, oldest first, from ``orderId``."""
    venue = request.app[VENUE_KEY]
    call = await signed(request)
    symbol = call.params.symbol(venue)
    from_id = call.params.integer("orderId", low=0)
    limit = call.params.integer("limit", default=500, low=1, high=1000)
    assert limit is not None
    orders = venue.store.orders_of(call.account.name, symbol, from_id=from_id, limit=limit)
    market = venue.engine.markets[symbol]
    return web.json_response([order_json(o, market) for o in orders])


async def my_trades(request: web.Request) -> web.Response:
    """List the account's trades on a symbol, from ``fromId`` or ``startTime``."""
    venue = request.app[VENUE_KEY]
    call = await signed(request)
    symbol = call.params.symbol(venue)
    from_id = call.params.integer("fromId", low=0)
    start = call.params.integer("startTime", low=0)
    limit = call.params.integer("limit", default=500, low=1, high=1000)
    assert limit is not None
    fills = venue.store.trades_of(
        call.account.name, symbol, from_id=from_id, start_ms=start, limit=limit
    )
    market = venue.engine.markets[symbol]
    listed = [entry for f in fills for entry in my_trades_json(f, call.account.name, market)]
    # ``limit`` counts entries, as at Binance: a page may end between a self-trade's sides
    return web.json_response(listed[:limit])


async def account(request: web.Request) -> web.Response:
    """Answer the account's balances."""
    venue = request.app[VENUE_KEY]
    call = await signed(request)
    balances = venue.engine.ledger.account(call.account.name)
    listed = balances_json(balances)
    if call.params.values.get("omitZeroBalances") == "true":
        listed = [b for b in listed if float(b["free"]) or float(b["locked"])]
    maker_bps = int(venue.config.maker_fee * 10_000)
    taker_bps = int(venue.config.taker_fee * 10_000)
    return web.json_response(
        {
            "makerCommission": maker_bps,
            "takerCommission": taker_bps,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": venue.clock(),
            "accountType": "SPOT",
            "balances": listed,
            "permissions": ["SPOT"],
            "uid": 1,
        }
    )


async def countdown_cancel_all(request: web.Request) -> web.Response:
    """Arm, refresh or (countdownTime=0) disarm the dead-man's switch of a symbol."""
    venue = request.app[VENUE_KEY]
    call = await signed(request)
    symbol = call.params.symbol(venue)
    countdown = call.params.integer("countdownTime", low=0, high=24 * 3600 * 1000)
    if countdown is None:
        raise missing("countdownTime")
    venue.set_countdown(call.account.name, symbol, countdown)
    return web.json_response({"symbol": symbol, "countdownTime": str(countdown)})


async def user_data_stream(request: web.Request) -> web.Response:
    """Create (POST), keep alive (PUT) or close (DELETE) the account's listenKey."""
    from infra.exchange_sim.http import AUTH_KEY

    venue = request.app[VENUE_KEY]
    owner = request.app[AUTH_KEY].account_for_key(request.headers.get("X-MBX-APIKEY"))
    hub = venue.hub
    if request.method == "POST":
        return web.json_response({"listenKey": hub.new_listen_key(owner.name)})
    params, _ = await read_params(request)
    key = params.text("listenKey", max_length=128)
    assert key is not None
    if hub.listen_keys.get(key) != owner.name:
        raise BadRequestError(-1125, "This listenKey does not exist.")
    if request.method == "DELETE":
        hub.close_listen_key(key)
    return web.json_response({})


def add_routes(app: web.Application) -> None:
    """Register the signed endpoints."""
    app.router.add_post("/api/v3/order", post_order)
    app.router.add_get("/api/v3/order", get_order)
    app.router.add_delete("/api/v3/order", delete_order)
    app.router.add_get("/api/v3/openOrders", get_open_orders)
    app.router.add_delete("/api/v3/openOrders", delete_open_orders)
    app.router.add_get("/api/v3/allOrders", all_orders)
    app.router.add_get("/api/v3/myTrades", my_trades)
    app.router.add_get("/api/v3/account", account)
    app.router.add_post("/api/v3/countdownCancelAll", countdown_cancel_all)
    for method in ("POST", "PUT", "DELETE"):
        app.router.add_route(method, "/api/v3/userDataStream", user_data_stream)
