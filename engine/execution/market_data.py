"""REST market-data queries that the engine needs outside the websocket feeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.execution.gateway import EndpointGroup, VenueGateway
from engine.execution.instruments import Instrument


@dataclass(frozen=True, kw_only=True, slots=True)
class TopOfBook:
    """Best bid and ask in ticks (None for an empty side)."""

    bid_ticks: int | None
    ask_ticks: int | None


async def fetch_top_of_book(gateway: VenueGateway, instrument: Instrument) -> TopOfBook:
    """Return the best bid and ask from a REST depth snapshot, on the instrument's grid.

    Raises:
        EngineError: the venue call failed (translated), or a price is off the tick grid.
    """

    async def fetch(exchange: Any) -> Any:
        return await exchange.fetch_order_book(instrument.symbol, 5)

    book = await gateway.request(EndpointGroup.MARKET_DATA, "fetch_order_book", fetch)
    bids, asks = book.get("bids") or [], book.get("asks") or []
    # repr of the float ccxt parsed gives back the venue's shortest decimal text.
    return TopOfBook(
        bid_ticks=instrument.price_to_ticks(repr(bids[0][0])) if bids else None,
        ask_ticks=instrument.price_to_ticks(repr(asks[0][0])) if asks else None,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class DepthSnapshot:
    """A REST depth snapshot on the instrument's grid: (price ticks, lots), best first."""

    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]


async def fetch_depth(
    gateway: VenueGateway, instrument: Instrument, *, limit: int = 100
) -> DepthSnapshot:
    """Return the top ``limit`` levels of each side.

    Raises:
        EngineError: the venue call failed (translated), or a value is off the grid.
    """

    async def fetch(exchange: Any) -> Any:
        return await exchange.fetch_order_book(instrument.symbol, limit)

    book = await gateway.request(EndpointGroup.MARKET_DATA, "fetch_order_book", fetch)

    def side(levels: Any) -> tuple[tuple[int, int], ...]:
        return tuple(
            (instrument.price_to_ticks(repr(p)), instrument.qty_to_lots(repr(q)))
            for p, q, *_ in levels or []
        )

    return DepthSnapshot(bids=side(book.get("bids")), asks=side(book.get("asks")))


@dataclass(frozen=True, kw_only=True, slots=True)
class PublicTrade:
    """One public trade of the market (anyone's), on the instrument's grid."""

    trade_id: int
    price_ticks: int
    lots: int
    timestamp_ms: int


async def fetch_public_trades(
    gateway: VenueGateway, instrument: Instrument, *, limit: int = 1000
) -> tuple[PublicTrade, ...]:
    """Return the market's most recent public trades, oldest first.

    Raises:
        EngineError: the venue call failed (translated), or a value is off the grid.
    """

    async def fetch(exchange: Any) -> Any:
        return await exchange.fetch_trades(instrument.symbol, None, limit)

    raw = await gateway.request(EndpointGroup.MARKET_DATA, "fetch_trades", fetch)
    trades = [
        PublicTrade(
            trade_id=int(t["id"]),
            price_ticks=instrument.price_to_ticks(repr(t["price"])),
            lots=instrument.qty_to_lots(repr(t["amount"])),
            timestamp_ms=int(t.get("timestamp") or 0),
        )
        for t in raw
    ]
    return tuple(sorted(trades, key=lambda t: t.trade_id))
