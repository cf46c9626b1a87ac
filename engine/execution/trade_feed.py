"""The public-trade feed of one symbol, with REST backfill after reconnects and gaps.

Binance trade ids are consecutive per symbol, so the feed knows when it missed trades:
after a websocket reconnect, or when a batch starts past ``last_trade_id + 1``. Either
way it fetches the missed trades over REST through the gateway (breaker, pacing, retries),
emits them first, then the live batch, so the engine sees each trade exactly once and in
id order.

Backfill reads the venue's recent trades (``GET /api/v3/trades``, the newest
:data:`BACKFILL_PAGE`), not ``historicalTrades`` by ``fromId``: the recent list is what
both Binance and the simulator serve, and a reconnect gap is seconds of trades. A gap
wider than that window cannot be closed: when the oldest trade returned is still past
``last_trade_id + 1`` the missing trades are counted and logged as lost
(``trades_lost``), so downstream state built from the tape can be marked incomplete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import structlog

from engine.dtypes import Trades, empty_trades
from engine.errors import EngineError, TemporaryError
from engine.execution import metrics
from engine.execution.backoff import Backoff, BackoffPolicy
from engine.execution.ccxt_time import mark_hand_over, restore_hand_over, timed
from engine.execution.gateway import EndpointGroup, VenueGateway
from engine.execution.instruments import Instrument, off_grid_error
from engine.execution.watchdog import StreamWatchdog
from engine.kernels.market_nb import trade_records

log = structlog.get_logger(__name__)

BACKFILL_PAGE: Final = 1000


@dataclass(frozen=True, kw_only=True, slots=True)
class TradeFeedConfig:
    """Settings of a trade feed."""

    stale_after_s: float = 60.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)


def trades_to_records(trades: Iterable[Mapping[str, Any]], instrument: Instrument) -> Trades:
    """Convert ccxt trade structures to :data:`engine.dtypes.PUBLIC_TRADE` records.

    Raises:
        OffGridError: a price or amount is off the instrument's grid.
    """
    rows = list(trades)
    out = empty_trades(len(rows))
    if not rows:
        return out
    # two flat lists and one kernel: a list, an array and a field write per column cost
    # ~25 µs for a message of three trades
    floats = np.array(
        [(float(t["price"]), float(t["amount"]), 1.0 if t["side"] == "buy" else 0.0) for t in rows],
        dtype=np.float64,
    )
    ints = np.array([(int(t["timestamp"]), int(t["id"])) for t in rows], dtype=np.int64)
    bad = trade_records(floats, ints, instrument.symbol_id, instrument.tick_float,
                        instrument.lot_float, out)  # fmt: skip
    if bad >= 0:
        raise off_grid_error(instrument, bad, floats, fields=("trade price", "trade amount"))
    return out


class TradeFeed:
    """Streams one symbol's public trades to ``on_trades``, gap-free.

    Args:
        gateway: wraps a ccxt.pro client.
        instrument: the symbol and its grid.
        on_trades: receives batches of trade records, in id order, each id once.
        watchdog: staleness watchdog.
        config: staleness, backoff, backfill bound.
        last_trade_id: resume after this id (e.g. from the journal).
    """

    def __init__(
        self,
        gateway: VenueGateway,
        *,
        instrument: Instrument,
        on_trades: Callable[[Trades], None],
        watchdog: StreamWatchdog,
        config: TradeFeedConfig | None = None,
        last_trade_id: int | None = None,
    ) -> None:
        self._gateway = gateway
        self._instrument = instrument
        self._on_trades = on_trades
        self._watchdog = watchdog
        self._config = config or TradeFeedConfig()
        self._backoff = Backoff(self._config.backoff, clock=gateway.clock)
        self.stream = f"trades:{instrument.symbol}"
        self.last_trade_id = last_trade_id
        self.backfilled = 0
        self.lost = 0
        watchdog.register(self.stream, stale_after_s=self._config.stale_after_s)

    async def run(self) -> None:
        """Stream trades until cancelled.

        Raises:
            EngineError: a non-temporary venue error.
        """
        exchange = self._gateway.exchange
        reconnected = self.last_trade_id is not None
        while True:
            try:
                if reconnected:
                    await self.backfill(until_trade_id=None)
                    reconnected = False
                batch = await timed(exchange.watch_trades(self._instrument.symbol))
                handed_over = mark_hand_over()
            except Exception as e:
                # the backfill raises the engine's own errors (already translated, e.g. an
                # open breaker while the venue is down): temporary ones are retried too
                error = (
                    e if isinstance(e, EngineError) else self._gateway.translate(e, "watch_trades")
                )
                if error is None:
                    raise
                if not isinstance(error, TemporaryError):
                    raise error from e
                metrics.WEBSOCKET_RECONNECTS.labels(
                    venue=self._gateway.venue, stream=self.stream
                ).inc()
                log.warning("trade_stream_reconnect", stream=self.stream, error=str(error))
                reconnected = True
                await self._backoff.failed()
                continue
            self._backoff.reset()
            self._watchdog.touch(self.stream)
            await self._deliver(sorted(batch, key=lambda t: int(t["id"])), handed_over)

    async def _deliver(self, batch: list[Mapping[str, Any]], handed_over: tuple[int, int]) -> None:
        fresh = [
            t for t in batch if self.last_trade_id is None or int(t["id"]) > self.last_trade_id
        ]
        if not fresh:
            return
        first = int(fresh[0]["id"])
        if self.last_trade_id is not None and first > self.last_trade_id + 1:
            await self.backfill(until_trade_id=first - 1)
            fresh = [t for t in fresh if int(t["id"]) > (self.last_trade_id or 0)]
            restore_hand_over(handed_over)  # other feeds stamped while the backfill waited
        self._emit(fresh)

    async def backfill(self, *, until_trade_id: int | None) -> int:
        """Fetch and emit the trades after ``last_trade_id`` over REST.

        Args:
            until_trade_id: stop after this id; None takes all the venue has.

        Returns:
            How many trades were emitted.

        Raises:
            EngineError: the translated venue error, after the gateway's retries.
        """
        if self.last_trade_id is None:
            return 0
        known = self.last_trade_id
        params = {"fetchTradesMethod": "publicGetTrades"}

        async def fetch(exchange: Any) -> Any:
            return await exchange.fetch_trades(self._instrument.symbol, None, BACKFILL_PAGE, params)

        page = await self._gateway.request(EndpointGroup.MARKET_DATA, "fetch_trades", fetch)
        ids = [int(t["id"]) for t in page]
        rows = sorted(
            (
                t
                for t in page
                if int(t["id"]) > known
                and (until_trade_id is None or int(t["id"]) <= until_trade_id)
            ),
            key=lambda t: int(t["id"]),
        )
        if len(page) >= BACKFILL_PAGE and min(ids) > known + 1:
            self._lost(from_id=known + 1, to_id=min(ids) - 1)
        if rows:
            self._emit(rows)
            self.backfilled += len(rows)
            metrics.TRADES_BACKFILLED.labels(
                venue=self._gateway.venue, symbol=self._instrument.symbol
            ).inc(len(rows))
            log.info("trades_backfilled", stream=self.stream, count=len(rows))
        return len(rows)

    def _lost(self, *, from_id: int, to_id: int) -> None:
        """Count trades older than the venue's recent window: they cannot be fetched."""
        count = to_id - from_id + 1
        self.lost += count
        metrics.TRADES_LOST.labels(venue=self._gateway.venue, symbol=self._instrument.symbol).inc(
            count
        )
        log.warning("trades_lost", stream=self.stream, from_trade_id=from_id, to_trade_id=to_id)

    def _emit(self, rows: list[Mapping[str, Any]]) -> None:
        records = trades_to_records(rows, self._instrument)
        self.last_trade_id = int(records["trade_id"][-1])
        self._on_trades(records)
