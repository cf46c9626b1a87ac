"""Binance's JSON shapes for orders, trades, balances and stream events.

Every integer leaves the simulator through this module as a Binance decimal string.
"""

from __future__ import annotations

from typing import Any

from infra.exchange_sim.ledger import Balances
from infra.exchange_sim.models import Fill, Order, OrderEvent, OrderType, Side
from infra.exchange_sim.units import Market, units_to_str

ZERO = "0.00000000"


def order_json(order: Order, market: Market) -> dict[str, Any]:
    """Return an order as ``GET /api/v3/order`` answers it."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": market.price_str(order.price),
        "origQty": market.qty_str(order.qty),
        "executedQty": market.qty_str(order.filled),
        "cummulativeQuoteQty": units_to_str(order.quote_filled),
        "status": order.status.value,
        "timeInForce": order.time_in_force.value,
        "type": order.type.value,
        "side": order.side.value,
        "stopPrice": ZERO,
        "icebergQty": ZERO,
        "time": order.time_ms,
        "updateTime": order.update_ms,
        "isWorking": order.status.is_open,
        "workingTime": order.time_ms,
        "origQuoteOrderQty": ZERO,
        "selfTradePreventionMode": "NONE",
    }


def fill_fee(fill: Fill, side: Side, market: Market) -> tuple[str, str]:
    """Return (commission, commission asset) of one side of a fill."""
    if side is Side.BUY:
        return units_to_str(fill.buyer_fee), market.spec.base
    return units_to_str(fill.seller_fee), market.spec.quote


def new_order_json(
    order: Order, market: Market, fills: list[Fill], resp_type: str
) -> dict[str, Any]:
    """Return the ``POST /api/v3/order`` answer in the ACK, RESULT or FULL shape."""
    ack = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.update_ms,
    }
    if resp_type == "ACK":
        return ack
    result = order_json(order, market)
    result["transactTime"] = order.update_ms
    if resp_type == "FULL":
        result["fills"] = []
        for fill in fills:
            commission, asset = fill_fee(fill, order.side, market)
            result["fills"].append(
                {
                    "price": market.price_str(fill.price),
                    "qty": market.qty_str(fill.qty),
                    "commission": commission,
                    "commissionAsset": asset,
                    "tradeId": fill.trade_id,
                }
            )
    return result


def my_trades_json(fill: Fill, account: str, market: Market) -> list[dict[str, Any]]:
    """Return one of an account's trades as ``GET /api/v3/myTrades`` lists it.

    A self-trade (the account's buy met its own sell) is listed twice under the same id,
    once as buyer and once as seller, as Binance does: each side moved the balances.
    """
    if fill.buyer_account == fill.seller_account == account:
        return [_my_trade_json(fill, market, is_buyer=True),
                _my_trade_json(fill, market, is_buyer=False)]  # fmt: skip
    return [_my_trade_json(fill, market, is_buyer=fill.buyer_account == account)]


def _my_trade_json(fill: Fill, market: Market, *, is_buyer: bool) -> dict[str, Any]:
    side = Side.BUY if is_buyer else Side.SELL
    commission, asset = fill_fee(fill, side, market)
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.buyer_order_id if is_buyer else fill.seller_order_id,
        "orderListId": -1,
        "price": market.price_str(fill.price),
        "qty": market.qty_str(fill.qty),
        "quoteQty": units_to_str(fill.quote_qty),
        "commission": commission,
        "commissionAsset": asset,
        "time": fill.time_ms,
        "isBuyer": is_buyer,
        "isMaker": fill.buyer_is_maker == is_buyer,
        "isBestMatch": True,
    }


def public_trade_json(fill: Fill, market: Market) -> dict[str, Any]:
    """Return a trade as ``GET /api/v3/trades`` answers it."""
    return {
        "id": fill.trade_id,
        "price": market.price_str(fill.price),
        "qty": market.qty_str(fill.qty),
        "quoteQty": units_to_str(fill.quote_qty),
        "time": fill.time_ms,
        "isBuyerMaker": fill.buyer_is_maker,
        "isBestMatch": True,
    }


def trade_event(fill: Fill, market: Market, now_ms: int) -> dict[str, Any]:
    """Return the ``<symbol>@trade`` stream event of a fill."""
    return {
        "e": "trade",
        "E": now_ms,
        "s": fill.symbol,
        "t": fill.trade_id,
        "p": market.price_str(fill.price),
        "q": market.qty_str(fill.qty),
        "T": fill.time_ms,
        "m": fill.buyer_is_maker,
        "M": True,
    }


def execution_report(event: OrderEvent, market: Market, now_ms: int) -> dict[str, Any]:
    """Return the user stream ``executionReport`` of one order change."""
    order, fill = event.order, event.fill
    commission, asset, last_qty, last_price, last_quote = ZERO, None, ZERO, ZERO, ZERO
    trade_id, is_maker = -1, False
    if fill is not None:
        commission, asset = fill_fee(fill, order.side, market)
        last_qty, last_price = market.qty_str(fill.qty), market.price_str(fill.price)
        last_quote, trade_id = units_to_str(fill.quote_qty), fill.trade_id
        is_maker = fill.maker_order_id == order.order_id
    return {
        "e": "executionReport",
        "E": now_ms,
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side.value,
        "o": order.type.value,
        "f": order.time_in_force.value,
        "q": market.qty_str(order.qty),
        "p": market.price_str(order.price) if order.type is not OrderType.MARKET else ZERO,
        "P": ZERO,
        "F": ZERO,
        "g": -1,
        "C": order.client_order_id if event.execution.value == "CANCELED" else "",
        "x": event.execution.value,
        "X": order.status.value,
        "r": "NONE",
        "i": order.order_id,
        "l": last_qty,
        "z": market.qty_str(order.filled),
        "L": last_price,
        "n": commission,
        "N": asset,
        "T": order.update_ms,
        "t": trade_id,
        "I": order.order_id,
        "w": order.status.is_open,
        "m": is_maker,
        "M": False,
        "O": order.time_ms,
        "Z": units_to_str(order.quote_filled),
        "Y": last_quote,
        "Q": ZERO,
        "W": order.time_ms,
        "V": "NONE",
    }


def balances_json(balances: Balances) -> list[dict[str, str]]:
    """Return an account's balances as ``GET /api/v3/account`` lists them."""
    return [
        {
            "asset": asset,
            "free": units_to_str(balances.free.get(asset, 0)),
            "locked": units_to_str(balances.locked.get(asset, 0)),
        }
        for asset in balances.assets()
    ]


def account_position_event(balances: Balances, now_ms: int) -> dict[str, Any]:
    """Return the user stream ``outboundAccountPosition`` event of an account."""
    return {
        "e": "outboundAccountPosition",
        "E": now_ms,
        "u": now_ms,
        "B": [{"a": b["asset"], "f": b["free"], "l": b["locked"]} for b in balances_json(balances)],
    }
