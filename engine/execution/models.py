"""Typed values the adapter hands to the engine instead of ccxt's dicts.

Decimals here, at the venue edge; the engine converts to ticks and lots with its
instruments. ccxt parses the wire's decimal strings into floats; ``repr`` of such a float
is the shortest string that reads back to it, which is the venue's original decimal for
every value with fewer than 16 significant digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Literal

from engine.execution.errors import VenueProtocolError

CLIENT_ORDER_ID: Final = re.compile(r"^[.A-Za-z0-9:/_-]{1,36}$")
"""Client order ids Binance accepts (and our ``<instance>-<epoch>-<seq>`` ids match)."""

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]


class OrderStatus(StrEnum):
    """ccxt's unified order status."""

    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRequest:
    """An order to send. ``client_order_id`` makes a resend idempotent at the venue."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None = None
    time_in_force: Literal["GTC", "IOC", "FOK"] | None = None

    def __post_init__(self) -> None:
        if not CLIENT_ORDER_ID.fullmatch(self.client_order_id):
            raise ValueError(
                f"client_order_id {self.client_order_id!r}: 1-36 characters of"
                " A-Z a-z 0-9 . : / _ -"
            )
        if self.amount <= 0:
            raise ValueError(f"amount must be > 0 (got {self.amount})")
        if (self.type == "limit") != (self.price is not None):
            raise ValueError("price is required for limit orders and forbidden for market orders")
        if self.price is not None and self.price <= 0:
            raise ValueError(f"price must be > 0 (got {self.price})")


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderState:
    """An order as the venue knows it."""

    client_order_id: str
    order_id: str
    symbol: str
    side: Side
    type: str
    status: OrderStatus
    price: Decimal | None
    amount: Decimal
    filled: Decimal
    timestamp_ms: int | None


@dataclass(frozen=True, kw_only=True, slots=True)
class NotPlaced:
    """The venue confirmed it never accepted an order with this client id."""

    client_order_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Fill:
    """One of our trades (a fill of one of our orders)."""

    trade_id: int
    order_id: str
    symbol: str
    side: Side
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str | None
    is_maker: bool | None
    timestamp_ms: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Balance:
    """One asset of the account."""

    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        """Return free plus locked."""
        return self.free + self.locked


def decimal(value: object, *, field: str) -> Decimal:
    """Return ``value`` (float, int or str from ccxt) as a Decimal.

    Raises:
        VenueProtocolError: the value is missing or not a number.
    """
    if value is None or isinstance(value, bool):
        raise VenueProtocolError(f"venue answer lacks a number for {field}")
    text = repr(value) if isinstance(value, float) else str(value)
    try:
        return Decimal(text)
    except ArithmeticError as e:
        raise VenueProtocolError(f"venue answer has {field}={text!r}, not a number") from e


def order_state(order: Mapping[str, Any]) -> OrderState:
    """Build an :class:`OrderState` from a ccxt order structure.

    Raises:
        VenueProtocolError: a required field is missing or malformed.
    """
    try:
        status = OrderStatus(order.get("status") or "open")
        side = order["side"]
        if side not in ("buy", "sell"):
            raise ValueError(side)
        price = order.get("price")
        return OrderState(
            client_order_id=str(order.get("clientOrderId") or ""),
            order_id=str(order["id"]),
            symbol=str(order["symbol"]),
            side=side,
            type=str(order.get("type") or ""),
            status=status,
            price=decimal(price, field="price") if price else None,
            amount=decimal(order.get("amount"), field="amount"),
            filled=decimal(order.get("filled") or 0, field="filled"),
            timestamp_ms=order.get("timestamp"),
        )
    except (KeyError, ValueError) as e:
        raise VenueProtocolError(f"malformed order from the venue: {e!r}") from e


def fill(trade: Mapping[str, Any]) -> Fill:
    """Build a :class:`Fill` from a ccxt trade structure.

    Raises:
        VenueProtocolError: a required field is missing or malformed.
    """
    try:
        fee = trade.get("fee") or {}
        side = trade["side"]
        if side not in ("buy", "sell"):
            raise ValueError(side)
        maker = trade.get("takerOrMaker")
        return Fill(
            trade_id=int(trade["id"]),
            order_id=str(trade.get("order") or ""),
            symbol=str(trade["symbol"]),
            side=side,
            price=decimal(trade.get("price"), field="price"),
            amount=decimal(trade.get("amount"), field="amount"),
            fee=decimal(fee.get("cost") or 0, field="fee"),
            fee_currency=fee.get("currency"),
            is_maker=None if maker is None else maker == "maker",
            timestamp_ms=int(trade["timestamp"]),
        )
    except (KeyError, ValueError, TypeError) as e:
        raise VenueProtocolError(f"malformed trade from the venue: {e!r}") from e
