"""What the journal records: events (orders, acks, states...) and fills."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal


def time_ordered_uuid() -> uuid.UUID:
    """Return a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Event ids that grow with time land at the right edge of the unique index instead of
    anywhere in it: far fewer index pages touched per insert than with random UUIDv4.
    """
    millis = time.time_ns() // 1_000_000
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


class JournalKind(StrEnum):
    """Every kind of fact the engine records."""

    ORDER_NEW = "order_new"
    ORDER_SENT = "order_sent"
    ORDER_ACKED = "order_acked"
    ORDER_REJECTED = "order_rejected"
    ORDER_UNKNOWN = "order_unknown"
    ORDER_CANCELED = "order_canceled"
    ORDER_FILLED = "order_filled"
    TRADING_STATE = "trading_state"
    MODEL_CHANGE = "model_change"
    LEADERSHIP = "leadership"


@dataclass(frozen=True, kw_only=True, slots=True)
class JournalEvent:
    """One fact. ``event_id`` makes a retried write idempotent (ON CONFLICT DO NOTHING)."""

    kind: JournalKind
    body: dict[str, Any]
    client_order_id: str | None = None
    event_id: uuid.UUID = field(default_factory=time_ordered_uuid)


@dataclass(frozen=True, kw_only=True, slots=True)
class FillRecord:
    """One venue fill; ``(venue, symbol, trade_id, side)`` is unique: recorded exactly once.

    Venues number trades per symbol (Binance does), so the trade id alone is not a key;
    a self-trade is one trade id with both sides on our account, hence the side.
    """

    venue: str
    trade_id: str
    client_order_id: str
    symbol: str
    side: Literal["buy", "sell"]
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str | None
    traded_at: datetime
    #: whether our order was the resting side (maker) or took liquidity (taker); None when
    #: the venue did not say (and for fills journaled before migration 0010)
    liquidity: Literal["maker", "taker"] | None = None

    def __post_init__(self) -> None:
        if self.price <= 0 or self.qty <= 0:
            raise ValueError(
                f"fill {self.venue}/{self.trade_id}: price and qty must be > 0"
                f" (got {self.price}, {self.qty})"
            )
