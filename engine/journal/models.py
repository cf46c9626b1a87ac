"""What the journal records: events (orders, acks, states...) and fills."""

from __future__ import annotations

import os
import re
import time
import uuid
from contextvars import ContextVar
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


#: the operation that caused what is being journaled: the control server sets it for the
#: length of each admin call (from the caller's ``X-Correlation-ID``: an API request, a
#: workflow's activity), so the rows that call causes carry it; None for the engine's
#: own decisions. Long-lived tasks start in a fresh context, so it never leaks into them.
CORRELATION_ID: ContextVar[str | None] = ContextVar("bot4_correlation_id", default=None)
#: what a correlation id may look like (the control API's rule too)
VALID_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


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
    correlation_id: str | None = field(default_factory=CORRELATION_ID.get)


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
