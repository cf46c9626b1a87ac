"""Records of the matching engine: orders, fills and the events an order change emits.

Prices are integer ticks, quantities integer lots and balances integer asset units
(:data:`infra.exchange_sim.config.ASSET_UNIT`); Decimal appears only at the API edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    """Order side."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """Order types the simulator accepts."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"
    LIMIT_MAKER = "LIMIT_MAKER"


class TimeInForce(StrEnum):
    """How long a limit order works."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    """Binance's order statuses."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"

    @property
    def is_open(self) -> bool:
        """Whether an order in this status still rests in the book."""
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class ExecutionType(StrEnum):
    """Why an execution report was sent (Binance's ``x`` field)."""

    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


@dataclass(slots=True)
class Order:
    """An order and its mutable state; the engine owns and mutates it."""

    order_id: int
    account: str
    symbol: str
    client_order_id: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price: int  # ticks; 0 for market orders
    qty: int  # lots
    time_ms: int
    filled: int = 0  # lots
    quote_filled: int = 0  # quote units
    status: OrderStatus = OrderStatus.NEW
    locked: int = 0  # units of the locked asset still held for this order
    update_ms: int = 0

    @property
    def remaining(self) -> int:
        """Lots still to fill."""
        return self.qty - self.filled

    def snapshot(self) -> Order:
        """Return an independent copy (for events and persistence)."""
        return Order(
            order_id=self.order_id,
            account=self.account,
            symbol=self.symbol,
            client_order_id=self.client_order_id,
            side=self.side,
            type=self.type,
            time_in_force=self.time_in_force,
            price=self.price,
            qty=self.qty,
            time_ms=self.time_ms,
            filled=self.filled,
            quote_filled=self.quote_filled,
            status=self.status,
            locked=self.locked,
            update_ms=self.update_ms,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One trade between a maker and a taker order."""

    trade_id: int
    symbol: str
    price: int  # ticks
    qty: int  # lots
    quote_qty: int  # quote units
    time_ms: int
    maker_order_id: int
    taker_order_id: int
    buyer_account: str
    seller_account: str
    buyer_order_id: int
    seller_order_id: int
    buyer_is_maker: bool
    buyer_fee: int  # base units, charged in the base the buyer receives
    seller_fee: int  # quote units, charged in the quote the seller receives


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent:
    """One change of one order: what an ``executionReport`` tells its owner."""

    order: Order  # snapshot after the change
    execution: ExecutionType
    fill: Fill | None = None


@dataclass(slots=True, kw_only=True)
class Outcome:
    """What one engine command did: the events to persist and publish, in order."""

    order: Order | None = None
    events: list[OrderEvent]
    fills: list[Fill]
    accounts: set[str]
    symbols: set[str]
