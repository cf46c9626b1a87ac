"""Live decisions: venue market data in, the replay kernels run, order actions out.

The live engine runs the very kernels of replay (``engine.kernels.replay_nb``) with
``P_LIVE`` set: the fill model is off, fills come from the venue (:meth:`apply_fill`).
Market data is batched: feeds append events to a bounded buffer and one kernel call
decides them all, so the cost of crossing into numba is paid per batch, not per message.

What the kernel decides comes out two ways:

- **desired quotes**: per symbol and side, the price and size the strategy wants resting
  (``SI_Q_PX``/``SI_Q_QTY``; 0 = none). Every quote there passed the risk kernel. The
  order manager makes the venue match them (place, replace, cancel).
- **IOC intents**: taker and stop-loss orders, read from the intent log after each batch.

Each book view from the feed (top N levels, already integrity-checked) becomes a snapshot
(``SNAPSHOT_BEGIN``, one delta per level, ``SNAPSHOT_END``); trades become ``TRADE``
events. Sequence numbers are assigned here per symbol, so the kernel's gap check guards
this module's own bookkeeping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np

from engine.data.format import EventHeader
from engine.data.writer import EventWriter
from engine.dtypes import (
    ACTIVE,
    BUY,
    EVENT_DTYPE,
    HALTED,
    SELL,
    BookLevels,
    Trades,
)
from engine.kernels.layout import (
    G_DENY_BASE,
    G_INTENTS,
    G_TRADING_STATE,
    GF_EQUITY,
    P_LIVE,
    SF_MID,
    SI_Q_PX,
    SI_Q_QTY,
    SI_RETRY_NS,
    SI_VALID,
)
from engine.kernels.market_nb import book_view_events, trade_events
from engine.kernels.quote_nb import accepted_iocs
from engine.kernels.replay_nb import live_fill
from engine.kernels.risk_nb import DENY_REASON_NAMES
from engine.live import metrics
from engine.live.model_slot import ModelSlot
from engine.live.release import Release
from engine.replay.state import EngineState

DEFAULT_BUFFER_EVENTS: Final = 65_536
INTENT_LOG: Final = 4_096
FILL_LOG: Final = 1_024
_QUOTE_COLUMNS: Final = [SI_Q_PX, SI_Q_PX + 1, SI_Q_QTY, SI_Q_QTY + 1]  # bid, ask price; qty


class Quote(NamedTuple):
    """What the strategy wants resting on one side of one symbol (qty 0: nothing).

    A named tuple, not a frozen dataclass: four are built on every decision, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost ~2 µs each.
    """

    symbol_id: int
    side: int  # BUY or SELL
    price_ticks: int
    qty_lots: int


@dataclass(frozen=True, kw_only=True, slots=True)
class TakerIntent:
    """An accepted immediate-or-cancel order (taker or stop-loss)."""

    symbol_id: int
    side: int
    price_ticks: int  # limit price
    qty_lots: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """The outcome of one batch."""

    events: int
    takers: tuple[TakerIntent, ...]
    kernel_state: int  # the kernel's own lowering so far (drawdown switch), sticky
    lost_intents: int  # IOC intents past the log's capacity (not sent; counted)
    oldest_receive_ns: int  # time.monotonic_ns() of the earliest message in the batch


class LiveDecider:
    """Owns the kernel state of one live engine and the buffer of pending events.

    Not thread-safe: every call comes from the engine's event loop.
    """

    def __init__(self, release: Release, *, tick_size: tuple[float, ...],
                 lot_size: tuple[float, ...],
                 buffer_events: int = DEFAULT_BUFFER_EVENTS,
                 export_metrics: bool = True) -> None:  # fmt: skip
        self.release = release
        self._export_metrics = export_metrics  # off for a throwaway decider (the warm-up)
        n = len(release.symbols)
        if len(tick_size) != n or len(lot_size) != n:
            raise ValueError(f"need a tick and lot size for each of the {n} symbols")
        self.state = EngineState.create(
            symbols=release.symbols,
            tick_size=tick_size,
            lot_size=lot_size,
            config=release.config,
            weights=release.model,
            fill_capacity=FILL_LOG,
            intent_capacity=INTENT_LOG,
        )
        self.state.params[P_LIVE] = 1.0
        self.models = ModelSlot(self.state, release.model)  # hot swaps, shadow scoring
        self._ticks, self._lots = tuple(tick_size), tuple(lot_size)
        self._depth = release.config.book_depth
        self._buffer = np.zeros(buffer_events, dtype=EVENT_DTYPE)
        self._pending = 0
        self._denials_seen = [0.0] * (len(DENY_REASON_NAMES) - 1)
        self._takers = np.zeros((INTENT_LOG, 4), dtype=np.int64)  # accepted_iocs' output
        self._seq = np.zeros(n, dtype=np.int64)
        self._oldest_receive_ns = 0
        self.events_decided = 0
        self.batches = 0
        self._recorder: EventWriter | None = None
        self._recorded_ts = 0
        self._kernel_state = ACTIVE  # the kernel's own lowering (drawdown), sticky

    # --- recording ----------------------------------------------------------------------
    def record_to(self, path: Path) -> None:
        """Record every decided event to ``path`` in the replay file format."""
        header = EventHeader(
            symbols=self.release.symbols,
            tick_size=self._ticks,
            lot_size=self._lots,
        )
        self._recorder = EventWriter(path, header)

    def close_recording(self) -> None:
        """Finish the recording file (make it visible under its name)."""
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None

    def _record(self, events: np.ndarray) -> None:
        if self._recorder is None:
            return
        rows = events.copy()
        # Feeds stamp venue times, and books and trades interleave: replay files must be
        # time-ordered, so a late stamp is raised to the last one written (never reordered).
        rows["ts_ns"] = np.maximum.accumulate(np.maximum(rows["ts_ns"], self._recorded_ts))
        self._recorded_ts = int(rows["ts_ns"][-1])
        self._recorder.append(rows)

    # --- market data in ---------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Return how many events wait for the next :meth:`decide`."""
        return self._pending

    def room(self) -> int:
        """Return how many more events fit before :meth:`decide` must run."""
        return self._buffer.shape[0] - self._pending

    def add_book_view(self, levels: BookLevels, *, received_ns: int | None = None) -> None:
        """Queue one book view (all levels of one symbol) as a snapshot.

        Raises:
            BufferError: the buffer is full; call :meth:`decide` first.
        """
        if levels.shape[0] == 0:
            return
        s = int(levels["symbol_id"][0])
        first_seq = int(self._seq[s]) + 1
        count = book_view_events(levels, self._depth, self._buffer, self._pending, first_seq)
        self._claimed(count, received_ns)
        self._seq[s] += count

    def add_trades(self, trades: Trades, *, received_ns: int | None = None) -> None:
        """Queue public trades (in trade id order).

        Raises:
            BufferError: the buffer is full; call :meth:`decide` first.
        """
        if trades.shape[0] == 0:
            return
        self._claimed(trade_events(trades, self._buffer, self._pending, self._seq), received_ns)

    def _claimed(self, count: int, received_ns: int | None) -> None:
        """Count ``count`` rows a kernel wrote after the pending ones (-1: they did not fit)."""
        if count < 0:
            raise BufferError(
                f"event buffer full ({self._pending} pending of {self._buffer.shape[0]})"
            )
        if self._pending == 0:
            self._oldest_receive_ns = received_ns or time.monotonic_ns()
        self._pending += count

    # --- decisions out ----------------------------------------------------------------
    def decide(self, trading_state: int) -> Decision:
        """Run the kernels over every pending event under ``trading_state``.

        The kernel may lower the state further (drawdown switch); the returned
        ``kernel_state`` says so, and the caller lowers the trading gate to match.
        """
        g = self.state.g
        # the caller's state (gate, pause, conditions that clear by themselves) applies to
        # this batch only; the kernel's own lowering is kept. Keeping the caller's state
        # too would turn a passing condition into a lasting "drawdown switch".
        imposed = max(self._kernel_state, trading_state)
        g[G_TRADING_STATE] = imposed
        g[G_INTENTS] = 0
        events = self._pending
        if events:
            self._record(self._buffer[:events])
            self.state.run(self._buffer, 0, events)
            self.models.score()  # a shadowed candidate, on the same feature rows
        if int(g[G_TRADING_STATE]) > imposed:  # the drawdown switch lowered it
            self._kernel_state = int(g[G_TRADING_STATE])
        logged = min(int(g[G_INTENTS]), INTENT_LOG)
        # most intents are quotes: the accepted IOCs are picked out in a kernel
        found = accepted_iocs(self.state.intents, logged, self._takers)
        takers = tuple(
            TakerIntent(symbol_id=symbol, side=side, price_ticks=price, qty_lots=qty)
            for symbol, side, price, qty in self._takers[:found].tolist()
        )
        decision = Decision(
            events=events,
            takers=takers,
            kernel_state=self._kernel_state,
            lost_intents=int(g[G_INTENTS]) - logged,
            oldest_receive_ns=self._oldest_receive_ns,
        )
        self._pending = 0
        if self._export_metrics:
            self._count_denials()
        self.events_decided += events
        self.batches += 1
        return decision

    def _count_denials(self) -> None:
        """Add the kernel's new risk denials, by reason, to ``bot4_engine_denials_total``."""
        # compared as lists: numpy's subtract-and-any on ten counters cost ~8 µs a decision
        counts = self.state.g[G_DENY_BASE + 1 : G_DENY_BASE + len(DENY_REASON_NAMES)].tolist()
        if counts != self._denials_seen:
            for i, (now, seen) in enumerate(zip(counts, self._denials_seen, strict=True)):
                if now > seen:
                    metrics.DENIALS.labels(reason=DENY_REASON_NAMES[i + 1]).inc(now - seen)
            self._denials_seen = counts

    def reset_trading_state(self, state: int) -> None:
        """Set the kernel's trading state outright (an operator raised the gate)."""
        self.state.g[G_TRADING_STATE] = state
        self._kernel_state = state

    def desired_quotes(self) -> list[Quote]:
        """Return every symbol's desired bid and ask (qty 0 where none is wanted)."""
        si = self.state.sym_i
        halted = int(self.state.g[G_TRADING_STATE]) >= HALTED
        # the four columns read at once: element reads of a 2-D array cost ~0.5 µs each
        rows = si[:, _QUOTE_COLUMNS].tolist()
        out = []
        for s, (bid_px, ask_px, bid_wanted, ask_wanted) in enumerate(rows):
            bid_qty, ask_qty = (0, 0) if halted else (bid_wanted, ask_wanted)
            out.append(Quote(s, BUY, bid_px if bid_qty else 0, bid_qty))
            out.append(Quote(s, SELL, ask_px if ask_qty else 0, ask_qty))
        return out

    def quote_gone(self, symbol_id: int, side: int, *, retry_after_ns: int = 0) -> None:
        """Forget the desired quote on one side (the venue canceled or refused it)."""
        j = 0 if side == BUY else 1
        si = self.state.sym_i
        si[symbol_id, SI_Q_PX + j] = 0
        si[symbol_id, SI_Q_QTY + j] = 0
        if retry_after_ns:
            si[symbol_id, SI_RETRY_NS + j] = retry_after_ns

    def apply_fill(self, *, symbol_id: int, side: int, price_ticks: int, qty_lots: int,
                   maker: bool, ts_ns: int) -> None:  # fmt: skip
        """Book one venue fill of ours into the kernel state."""
        st = self.state
        live_fill(st.positions, st.fills, st.g, st.sym_i, st.sym_f, st.ring, st.limits,
                  st.params, symbol_id, side, price_ticks, qty_lots, maker, ts_ns)  # fmt: skip

    def set_position(self, symbol_id: int, *, qty_lots: int, avg_price_ticks: float) -> None:
        """Load a position rebuilt from the journal (startup, before any decision)."""
        p = self.state.positions[symbol_id]
        p["qty"] = qty_lots
        p["avg_price"] = avg_price_ticks

    # --- status -----------------------------------------------------------------------
    def counters(self) -> dict[str, object]:
        """Return the kernel's counters: orders decided, denials by reason, book codes."""
        summary = self.state.summary()
        keys = ("orders", "taker_orders", "cancels", "denials", "book_integrity", "stops",
                "latency_arb_fills", "max_drawdown", "trading_state")  # fmt: skip
        return {key: summary[key] for key in keys if key in summary}

    def book_valid(self, symbol_id: int) -> bool:
        """Return whether the kernel holds a valid book for the symbol."""
        return bool(self.state.sym_i[symbol_id, SI_VALID] == 1)

    def mid_ticks(self, symbol_id: int) -> float:
        """Return the symbol's last mid in ticks (0 before its first valid book)."""
        return float(self.state.sym_f[symbol_id, SF_MID])

    def position_lots(self, symbol_id: int) -> int:
        """Return one symbol's kernel position in lots."""
        return int(self.state.positions["qty"][symbol_id])

    def positions_lots(self) -> dict[str, int]:
        """Return each symbol's kernel position in lots."""
        p = self.state.positions
        return {name: int(p[i]["qty"]) for i, name in enumerate(self.release.symbols)}

    def equity(self) -> float:
        """Return the kernel's mark-to-market equity (quote currency, since start)."""
        return float(self.state.gf[GF_EQUITY])
