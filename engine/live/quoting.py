"""Make the venue match the strategy: place, replace and cancel quotes; send IOC intents.

After each decision batch the kernel's desired quotes (one per symbol and side, already
risk-checked) are compared with the order resting in that slot:

- nothing resting, a quote wanted → place a GTC limit order at the quote;
- resting at another price, or no quote wanted → cancel it (the next batch places anew);
- resting at the price → nothing.

At most one action per slot is in flight, so a slow venue cannot stack duplicates; every
send goes through the :class:`OrderManager` (journal first, gate checked just before the
send). A refused quote (post-only would cross, insufficient funds, a closed gate) is
dropped from the kernel with a retry delay, so it is not re-sent on every event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

import structlog

from engine.dtypes import BUY
from engine.errors import EngineError
from engine.execution import Instrument
from engine.journal import FencedError
from engine.live import metrics
from engine.live.decide import LiveDecider, Quote, TakerIntent
from engine.live.eager import start_eagerly
from engine.live.order_table import OrderPhase
from engine.live.orders import OrderManager

log = structlog.get_logger(__name__)

RETRY_AFTER_REFUSAL_NS: Final = 1_000_000_000
LATENCY_SAMPLES: Final = 100_000


@dataclass(frozen=True, kw_only=True, slots=True)
class Tick:
    """When the market data behind a decision came, for the latency samples.

    Attributes:
        received_ns: ``time.monotonic_ns()`` when ccxt handed over the decided data.
        decided_ns: ``time.monotonic_ns()`` of the decision (0: unknown).
        ccxt_ns: :func:`ccxt_time.spent_ns` at that hand-over (-1: unknown).
    """

    received_ns: int
    decided_ns: int = 0
    ccxt_ns: int = -1


@dataclass(kw_only=True, slots=True)
class _Slot:
    client_order_id: str | None = None
    busy: bool = False
    placing_at: Decimal | None = None  # the price of a placement under way (no id yet)


class QuoteSync:
    """Keeps one resting order per symbol and side in line with the desired quotes.

    Args:
        manager: the leader's order manager (its epoch's).
        decider: the kernel state (positions, quotes to forget after refusals).
        instruments: by symbol id.
        on_fenced: called when the journal refused our epoch (step down).
    """

    def __init__(
        self,
        manager: OrderManager,
        decider: LiveDecider,
        instruments: Sequence[Instrument],
        *,
        on_fenced: Callable[[FencedError], None],
    ) -> None:
        self.manager = manager
        self.decider = decider
        self.instruments = list(instruments)
        self.on_fenced = on_fenced
        self._slots: dict[tuple[int, int], _Slot] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self.tick_to_order_ns: list[int] = []  # wall time, ccxt's time on the loop included
        self.tick_to_order_engine_ns: list[int] = []  # the same with ccxt's time taken out
        self.decision_to_order_ns: list[int] = []
        self.placed = 0
        self.canceled = 0
        self.refused = 0

    def sync(self, quotes: Sequence[Quote], *, tick: Tick) -> None:
        """Start whatever actions bring the venue in line with ``quotes``.

        ``tick`` says when the decision's market data came: the latency samples.
        """
        for quote in quotes:
            key = (quote.symbol_id, quote.side)
            slot = self._slots.setdefault(key, _Slot())
            if slot.busy:
                continue
            order = None
            if slot.client_order_id is not None:
                order = self.manager.table.get(slot.client_order_id)
                if order is None or order.terminal:
                    slot.client_order_id = None
                    order = None
            if order is not None:
                price = order.request.price
                wanted = self.instruments[quote.symbol_id].ticks_to_price(quote.price_ticks)
                resting = order.phase in (OrderPhase.ACKED, OrderPhase.PARTIALLY_FILLED)
                if resting and (quote.qty_lots == 0 or price != wanted):
                    self._start(slot, self._cancel(slot, order.client_order_id))
            elif quote.qty_lots > 0 and not self._crosses_own_order(quote):
                self._start(slot, self._place(slot, quote, tick))

    def _crosses_own_order(self, quote: Quote) -> bool:
        """Whether ``quote`` would trade against our own order on the other side.

        When the market moves, the new bid can reach the ask still resting from before
        (its cancel is in flight, or starts in this same sync): placing it would be a
        self-trade, which pays fees twice for nothing and which venues police. The quote
        waits for the next decision, by when the stale order is gone.
        """
        other = self._slots.get((quote.symbol_id, -quote.side))
        if other is None:
            return False
        prices = [other.placing_at]
        if other.client_order_id is not None:
            order = self.manager.table.get(other.client_order_id)
            if order is not None and not order.terminal:
                prices.append(order.request.price)
        price = self.instruments[quote.symbol_id].ticks_to_price(quote.price_ticks)
        for theirs in prices:
            if theirs is not None and (price >= theirs if quote.side == BUY else price <= theirs):
                return True
        return False

    def take(self, intents: Sequence[TakerIntent], *, tick: Tick) -> None:
        """Send each accepted IOC intent (taker or stop-loss) once (times as in sync)."""
        for intent in intents:
            task = start_eagerly(self._take(intent, tick))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for every action started so far."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _start(self, slot: _Slot, action: Coroutine[Any, Any, None]) -> None:
        # started at once, not a loop turn later: the order reaches ccxt before whatever
        # else is ready to run (see engine.live.eager)
        slot.busy = True
        task = start_eagerly(action)

        def done(_: asyncio.Future[None]) -> None:
            slot.busy = False
            self._tasks.discard(task)

        self._tasks.add(task)
        task.add_done_callback(done)

    async def _place(self, slot: _Slot, quote: Quote, tick: Tick) -> None:
        instrument = self.instruments[quote.symbol_id]
        side: Literal["buy", "sell"] = "buy" if quote.side == BUY else "sell"
        position = self.decider.position_lots(quote.symbol_id)
        reducing = (quote.side == BUY and position < 0) or (quote.side != BUY and position > 0)
        slot.placing_at = instrument.ticks_to_price(quote.price_ticks)
        try:
            order = await self.manager.submit(
                symbol=instrument.symbol,
                side=side,
                type="limit",
                amount=instrument.lots_to_qty(quote.qty_lots),
                price=instrument.ticks_to_price(quote.price_ticks),
                time_in_force="GTC",
                reduce_only=reducing and quote.qty_lots <= abs(position),
                context=self._arrival(instrument, quote.symbol_id),
            )
        except FencedError as e:
            self.on_fenced(e)
            return
        except (EngineError, ValueError) as e:
            log.warning("quote_not_sent", symbol=instrument.symbol, side=side, error=str(e))
            self._refused(quote.symbol_id, quote.side)
            return
        finally:
            slot.placing_at = None
        self._observe(order.client_order_id, tick)
        slot.client_order_id = order.client_order_id
        self.placed += 1
        if order.phase is OrderPhase.REJECTED:
            self._refused(quote.symbol_id, quote.side)

    async def _cancel(self, slot: _Slot, client_order_id: str) -> None:
        try:
            await self.manager.cancel(client_order_id)
            self.canceled += 1
        except FencedError as e:
            self.on_fenced(e)
        except (EngineError, ValueError) as e:
            # the order may have filled meanwhile: the fill poll and next sync will tell
            log.warning("quote_cancel_failed", client_order_id=client_order_id, error=str(e))

    async def _take(self, intent: TakerIntent, tick: Tick) -> None:
        instrument = self.instruments[intent.symbol_id]
        position = self.decider.position_lots(intent.symbol_id)
        reducing = (intent.side == BUY and position < 0) or (intent.side != BUY and position > 0)
        try:
            order = await self.manager.submit(
                symbol=instrument.symbol,
                side="buy" if intent.side == BUY else "sell",
                type="limit",
                amount=instrument.lots_to_qty(intent.qty_lots),
                price=instrument.ticks_to_price(intent.price_ticks),
                time_in_force="IOC",
                reduce_only=reducing and intent.qty_lots <= abs(position),
                context=self._arrival(instrument, intent.symbol_id),
            )
        except FencedError as e:
            self.on_fenced(e)
            return
        except (EngineError, ValueError) as e:
            log.warning("taker_not_sent", symbol=instrument.symbol, error=str(e))
            return
        self._observe(order.client_order_id, tick)

    def _arrival(self, instrument: Instrument, symbol_id: int) -> dict[str, object]:
        """Return the market the decision saw, journaled with the order.

        The mid of the book the decision was made on (the *arrival mid*) is the benchmark
        of execution quality: a fill's slippage is measured against it, and the mids of
        later orders give the markouts. Absent before the symbol's first valid book.
        """
        mid_ticks = self.decider.mid_ticks(symbol_id)
        if mid_ticks <= 0:
            return {}
        mid = instrument.tick_size * Decimal(repr(mid_ticks))
        return {"arrival_mid": str(mid), "decided_at_ms": time.time_ns() // 1_000_000}

    def _refused(self, symbol_id: int, side: int) -> None:
        self.refused += 1
        self.decider.quote_gone(
            symbol_id, side, retry_after_ns=time.time_ns() + RETRY_AFTER_REFUSAL_NS
        )

    def _observe(self, client_order_id: str, tick: Tick) -> None:
        """Record tick-to-order (data handed over by ccxt → request begun towards ccxt)."""
        started = self.manager.request_started.pop(client_order_id, None)
        if started is None:
            return  # never got that far (gate closed, circuit open)
        sent_ns, ccxt_at_send = started
        latency_ns = sent_ns - tick.received_ns
        if len(self.tick_to_order_ns) < LATENCY_SAMPLES:
            self.tick_to_order_ns.append(latency_ns)
            if tick.decided_ns:
                self.decision_to_order_ns.append(sent_ns - tick.decided_ns)
            if tick.ccxt_ns >= 0:
                self.tick_to_order_engine_ns.append(latency_ns - (ccxt_at_send - tick.ccxt_ns))
        metrics.TICK_TO_ORDER.observe(latency_ns / 1e9)
