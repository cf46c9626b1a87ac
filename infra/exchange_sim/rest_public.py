"""Public REST endpoints: ping, time, exchangeInfo, depth, trades, tickers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from infra.exchange_sim.faults import HaltSymbol
from infra.exchange_sim.http import VENUE_KEY, read_params
from infra.exchange_sim.store import stats_since
from infra.exchange_sim.units import Market, units_to_str
from infra.exchange_sim.venue import Venue

DAY_MS = 86_400_000


def _plain(value: Decimal) -> str:
    return f"{value:.8f}"


def symbol_info(market: Market, *, halted: bool) -> dict[str, Any]:
    """Return one symbol of ``exchangeInfo`` (the fields ccxt's load_markets reads)."""
    spec = market.spec
    return {
        "symbol": spec.symbol,
        "status": "HALT" if halted else "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": False,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _plain(spec.min_price),
                "maxPrice": _plain(spec.max_price),
                "tickSize": _plain(spec.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": _plain(spec.min_qty),
                "maxQty": _plain(spec.max_qty),
                "stepSize": _plain(spec.step_size),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": _plain(spec.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


async def ping(request: web.Request) -> web.Response:
    """Answer ``{}`` (the health check)."""
    return web.json_response({})


async def server_time(request: web.Request) -> web.Response:
    """Answer the server's clock."""
    return web.json_response({"serverTime": request.app[VENUE_KEY].clock()})


async def exchange_info(request: web.Request) -> web.Response:
    """Answer the listed symbols, their filters and the rate limits."""
    venue = request.app[VENUE_KEY]
    params, _ = await read_params(request)
    wanted = params.text("symbol", required=False)
    halt = venue.faults.get(HaltSymbol)
    halted = {halt.symbol} if halt is not None else set()
    symbols = [
        symbol_info(market, halted=symbol in halted)
        for symbol, market in venue.engine.markets.items()
        if wanted is None or symbol == wanted
    ]
    if wanted is not None and not symbols:
        venue.engine.market(wanted)
    return web.json_response(
        {
            "timezone": "UTC",
            "serverTime": venue.clock(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": venue.config.weight_limit_per_minute,
                }
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }
    )


async def depth(request: web.Request) -> web.Response:
    """Answer the book's top levels with ``lastUpdateId`` (the diff stream's sequence)."""
    venue = request.app[VENUE_KEY]
    params, _ = await read_params(request)
    symbol = params.symbol(venue)
    limit = params.integer("limit", default=100, low=1, high=5000)
    assert limit is not None
    book, market = venue.engine.books[symbol], venue.engine.markets[symbol]
    return web.json_response(
        {
            "lastUpdateId": book.update_id,
            "bids": [[market.price_str(p), market.qty_str(q)] for p, q in book.bids.depth(limit)],
            "asks": [[market.price_str(p), market.qty_str(q)] for p, q in book.asks.depth(limit)],
        }
    )


async def trades(request: web.Request) -> web.Response:
    """Answer a symbol's most recent trades, oldest first."""
    from infra.exchange_sim.formats import public_trade_json

    venue = request.app[VENUE_KEY]
    params, _ = await read_params(request)
    symbol = params.symbol(venue)
    limit = params.integer("limit", default=500, low=1, high=1000)
    assert limit is not None
    market = venue.engine.markets[symbol]
    recent = list(venue.recent[symbol])[-limit:]
    return web.json_response([public_trade_json(fill, market) for fill in recent])


async def agg_trades(request: web.Request) -> web.Response:
    """Answer recent trades in the aggTrades shape (one trade per aggregate)."""
    venue = request.app[VENUE_KEY]
    params, _ = await read_params(request)
    symbol = params.symbol(venue)
    limit = params.integer("limit", default=500, low=1, high=1000)
    assert limit is not None
    market = venue.engine.markets[symbol]
    recent = list(venue.recent[symbol])[-limit:]
    return web.json_response(
        [
            {
                "a": fill.trade_id,
                "p": market.price_str(fill.price),
                "q": market.qty_str(fill.qty),
                "f": fill.trade_id,
                "l": fill.trade_id,
                "T": fill.time_ms,
                "m": fill.buyer_is_maker,
                "M": True,
            }
            for fill in recent
        ]
    )


def _book_ticker(venue: Venue, symbol: str) -> dict[str, Any]:
    book, market = venue.engine.books[symbol], venue.engine.markets[symbol]
    bid, ask = book.bids.best(), book.asks.best()
    return {
        "symbol": symbol,
        "bidPrice": market.price_str(bid or 0),
        "bidQty": market.qty_str(book.bids.quantity_at(bid) if bid else 0),
        "askPrice": market.price_str(ask or 0),
        "askQty": market.qty_str(book.asks.quantity_at(ask) if ask else 0),
    }


async def book_ticker(request: web.Request) -> web.Response:
    """Answer best bid and ask of one symbol (or of all)."""
    venue = request.app[VENUE_KEY]
    params, _ = await read_params(request)
    if params.text("symbol", required=False) is None:
        return web.json_response([_book_ticker(venue, s) for s in venue.engine.markets])
    return web.json_response(_book_ticker(venue, params.symbol(venue)))


def _ticker_24h(venue: Venue, symbol: str) -> dict[str, Any]:
    now = venue.clock()
    market = venue.engine.markets[symbol]
    stats = stats_since(venue.store, symbol, now - DAY_MS)
    ticker = _book_ticker(venue, symbol)
    open_p, high, low, last, lots, quote, first_id, last_id, count = stats or (0,) * 6 + (-1, -1, 0)
    change = Decimal(last - open_p) * market.spec.tick_size
    percent = (Decimal(last - open_p) * 100 / open_p) if open_p else Decimal(0)
    avg = Decimal(quote) / (Decimal(lots) * market.spec.step_size) * Decimal("1e-8") if lots else 0
    ticker.update(
        {
            "priceChange": f"{change:.8f}",
            "priceChangePercent": f"{percent:.3f}",
            "weightedAvgPrice": f"{avg:.8f}",
            "prevClosePrice": market.price_str(open_p),
            "lastPrice": market.price_str(last),
            "lastQty": market.qty_str(venue.recent[symbol][-1].qty if venue.recent[symbol] else 0),
            "openPrice": market.price_str(open_p),
            "highPrice": market.price_str(high),
            "lowPrice": market.price_str(low),
            "volume": market.qty_str(lots),
            "quoteVolume": units_to_str(quote),
            "openTime": now - DAY_MS,
            "closeTime": now,
            "firstId": first_id,
            "lastId": last_id,
            "count": count,
        }
    )
    return ticker


async def ticker_24h(request: web.Request) -> web.Response:
    """Answer 24-hour statistics of one symbol (or of all)."""
    venue = request.app[VENUE_KEY]
    params, _ = await read_params(request)
    if params.text("symbol", required=False) is None:
        return web.json_response([_ticker_24h(venue, s) for s in venue.engine.markets])
    return web.json_response(_ticker_24h(venue, params.symbol(venue)))


def add_routes(app: web.Application) -> None:
    """Register the public endpoints."""
    app.router.add_get("/api/v3/ping", ping)
    app.router.add_get("/api/v3/time", server_time)
    app.router.add_get("/api/v3/exchangeInfo", exchange_info)
    app.router.add_get("/api/v3/depth", depth)
    app.router.add_get("/api/v3/trades", trades)
    app.router.add_get("/api/v3/aggTrades", agg_trades)
    app.router.add_get("/api/v3/ticker/bookTicker", book_ticker)
    app.router.add_get("/api/v3/ticker/24hr", ticker_24h)
