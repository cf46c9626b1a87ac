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
