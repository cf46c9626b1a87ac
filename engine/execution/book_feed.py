"""The order-book feed of one symbol: watch, check, emit records, resync on trouble.

Loop: ``watch_order_book`` (ccxt.pro: diffs anchored on a REST snapshot, U/u continuity,
see :mod:`.book`) → our integrity checks → records to the engine. Trouble and what it
does:

* gap (ccxt ``ChecksumError``) or a failed integrity check → the book is INVALID, a
  resync is counted and forced (unsubscribe; if the venue will not, close the
  connection), then the next watch re-anchors on a fresh snapshot;
* a dropped connection → INVALID too (diffs were missed), counted as a reconnect;
* each consecutive failure backs off with full jitter; past ``max_consecutive_failures``
  the feed stops with :class:`OperationalError` (the book cannot be trusted: halt);
* no message for ``stale_after_s`` → the watchdog reports it STALE (log, counter,
  status); the next message makes it VALID again;
* no message for ``resync_after_silent_s`` → the feed stops waiting, forces a resync
  (a silent subscription is as untrustworthy as a gap) and counts it as a failure, so a
  stream that stays silent is retried with backoff and, past the bound, fails the feed.

ccxt.pro answers the venue's pings itself; this loop owns reconnects and their backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog

from engine.dtypes import BookLevels
from engine.errors import OperationalError, TemporaryError
from engine.execution import metrics
from engine.execution.backoff import Backoff, BackoffPolicy
from engine.execution.book import GAP, STALE, checked_levels
from engine.execution.ccxt_time import mark_hand_over, timed
from engine.execution.errors import SequenceGapError
from engine.execution.gateway import VenueGateway
from engine.execution.instruments import Instrument
from engine.execution.watchdog import StreamWatchdog

log = structlog.get_logger(__name__)


class BookStatus(StrEnum):
    """Whether the engine may use a symbol's book."""

    SYNCING = "syncing"
    VALID = "valid"
    INVALID = "invalid"
    STALE = "stale"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True, slots=True)
class BookFeedConfig:
    """Settings of a book feed.

    Attributes:
        depth: levels per side sent to the engine.
        stale_after_s: silence after which the stream counts as stale.
        backoff: waits between resyncs and reconnects.
        max_consecutive_failures: failures in a row before the feed gives up.
        resync_after_silent_s: silence after which the feed resubscribes on its own
            (None: only report staleness, never act on it).
    """

    depth: int = 20
    stale_after_s: float = 5.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    max_consecutive_failures: int = 8
    resync_after_silent_s: float | None = 15.0

    def __post_init__(self) -> None:
        if self.resync_after_silent_s is not None and self.resync_after_silent_s <= 0:
            raise ValueError(
                f"resync_after_silent_s must be > 0 or None (got {self.resync_after_silent_s})"
            )


class BookFeed:
    """Keeps one symbol's book valid and sends each version to ``on_levels``.

    Args:
        gateway: wraps a ccxt.pro client (websocket + REST snapshots).
        instrument: the symbol and its grid.
        on_levels: receives each valid batch of :data:`engine.dtypes.BOOK_LEVEL`.
        watchdog: staleness watchdog (this feed registers its stream on it).
        config: depth, staleness, backoff.
        on_status: told of every status change (new status, reason), after it happened;
            a resync can pass through INVALID and back to VALID within milliseconds, so
            observers that must see every transition listen here rather than poll.
    """

    def __init__(
        self,
        gateway: VenueGateway,
        *,
        instrument: Instrument,
        on_levels: Callable[[BookLevels], None],
        watchdog: StreamWatchdog,
        config: BookFeedConfig | None = None,
        on_status: Callable[[BookStatus, str], None] | None = None,
    ) -> None:
        self._gateway = gateway
        self._on_status = on_status
        self._instrument = instrument
        self._on_levels = on_levels
        self._watchdog = watchdog
        self._config = config or BookFeedConfig()
        self._backoff = Backoff(self._config.backoff, clock=gateway.clock)
        self.stream = f"book:{instrument.symbol}"
        self.status = BookStatus.SYNCING
        self.last_update_id: int | None = None
        self.resyncs = 0
        watchdog.register(self.stream, stale_after_s=self._config.stale_after_s)

    def on_stale_change(self, stream: str, stale: bool) -> None:
        """Watchdog callback: mark the book STALE while its stream is silent."""
        if stream == self.stream and stale and self.status is BookStatus.VALID:
            self._set_status(BookStatus.STALE, reason=STALE)

    async def run(self) -> None:
        """Maintain the book until cancelled.

        Raises:
            OperationalError: too many consecutive resyncs or reconnects failed, or the
                venue refused the subscription for good.
        """
        exchange = self._gateway.exchange
        symbol = self._instrument.symbol
        while True:
            silence = asyncio.timeout(self._config.resync_after_silent_s)
            try:
                async with silence:
                    book = await timed(exchange.watch_order_book(symbol))
                mark_hand_over()
            except Exception as e:
                if silence.expired():
                    await self.force_resync()
                    await self._failed(STALE, "no message: resubscribing")
                    continue
                error = self._gateway.translate(e, "watch_order_book")
                if error is None:
                    raise
                if not isinstance(error, TemporaryError):
                    self._set_status(BookStatus.FAILED, reason=type(error).__name__)
                    raise error from e
                reason = GAP if isinstance(error, SequenceGapError) else "reconnect"
                if reason == "reconnect":
                    metrics.WEBSOCKET_RECONNECTS.labels(
                        venue=self._gateway.venue, stream=self.stream
                    ).inc()
                await self._failed(reason, str(error))
                continue
            self._watchdog.touch(self.stream)
            problem = self._accept(book)
            if problem is not None:
                await self.force_resync()
                await self._failed(problem, "integrity check failed")

    def _accept(self, book: Any) -> str | None:
        """Check a view and pass it on; return the integrity problem if it has one."""
        nonce = book.get("nonce")
        timestamp_ms = book.get("timestamp")
        ts_ns = int(timestamp_ms) * 1_000_000 if timestamp_ms else self._gateway.clock.time_ns()
        levels, problem = checked_levels(
            book["bids"],
            book["asks"],
            instrument=self._instrument,
            depth=self._config.depth,
            update_id=int(nonce or 0),
            ts_ns=ts_ns,
            previous_update_id=self.last_update_id,
        )
        if problem is not None:
            return problem
        self.last_update_id = int(nonce or 0)
        self._backoff.reset()
        if self.status is not BookStatus.VALID:
            self._set_status(BookStatus.VALID, reason="synced")
        self._on_levels(levels)
        return None

    async def _failed(self, reason: str, detail: str) -> None:
        self._set_status(BookStatus.INVALID, reason=reason, detail=detail)
        self.last_update_id = None  # the next snapshot may carry any id
        self.resyncs += 1
        metrics.BOOK_RESYNCS.labels(
            venue=self._gateway.venue, symbol=self._instrument.symbol, reason=reason
        ).inc()
        if self._backoff.failures >= self._config.max_consecutive_failures:
            self._set_status(BookStatus.FAILED, reason=reason)
            raise OperationalError(
                f"{self._gateway.venue} {self._instrument.symbol}: order book failed to"
                f" resync {self._backoff.failures} times in a row (last: {reason})"
            )
        await self._backoff.failed()

    async def force_resync(self) -> None:
        """Drop ccxt's book so the next watch re-anchors on a fresh REST snapshot."""
        exchange = self._gateway.exchange
        try:
            await exchange.un_watch_order_book(self._instrument.symbol)
        except Exception as e:  # any failure: fall back to a new connection
            log.warning(
                "book_unsubscribe_failed",
                venue=self._gateway.venue,
                symbol=self._instrument.symbol,
                error=self._gateway.redact(repr(e)),
            )
            await exchange.close()

    def _set_status(self, status: BookStatus, *, reason: str, detail: str = "") -> None:
        if status is self.status:
            return
        log_method = log.info if status is BookStatus.VALID else log.warning
        log_method(
            "book_status",
            venue=self._gateway.venue,
            symbol=self._instrument.symbol,
            from_status=self.status.value,
            to_status=status.value,
            reason=reason,
            detail=detail,
        )
        self.status = status
        if self._on_status is not None:
            self._on_status(status, reason)
