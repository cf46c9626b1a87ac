"""The live engine process: market data → kernels → orders, under a fenced lease.

One asyncio loop runs the stages:

1. **feeds** (ccxt.pro books and trades, one task each) turn what ccxt hands over (one
   book view, or the trades since the last call: a burst arrives as one) into events in
   the decider's bounded event buffer;
2. **decision** runs the kernels over the pending events in one call, right there in the
   feed's callback (no task to wake: that cost a loop turn behind whatever else was
   ready), then hands the desired quotes and IOC intents to :class:`QuoteSync` (leader
   only), which starts each send eagerly (:mod:`engine.live.eager`), so the order reaches
   ccxt in the same turn;
3. **orders**: the order manager journals, gate-checks and sends; its poll task records
   fills, which flow back into the kernel's positions.

Around them: the leadership task (acquire, renew, step down), the housekeeping task
(journal backlog, market-data lag, metrics) and the safety thread (control HTTP, kill
switch, halt) that keeps answering when this loop is stuck.

A non-leader is a warm standby: same market data, same decisions (``shadow``), nothing
sent. Its desired quotes are on ``/status`` so an operator can compare two colors.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, Literal

import asyncpg
import structlog

from engine.dtypes import HALTED, REDUCING
from engine.errors import TemporaryError
from engine.execution import (
    BookFeed,
    BookFeedConfig,
    BreakerState,
    EndpointGroup,
    StreamWatchdog,
    SystemClock,
    TradeFeed,
    VenueSession,
    ccxt_time,
    open_session,
)
from engine.journal import (
    AckLog,
    FencedError,
    FillRecord,
    GroupCommitter,
    Journal,
    JournalEvent,
    JournalUnavailableError,
    OutageLog,
)
from engine.journal.models import JournalKind
from engine.leadership import Lease, LeaseLostError
from engine.live import metrics
from engine.live.baseline import journal_has_fills, load_baseline, record_baseline
from engine.live.decide import LiveDecider, Quote
from engine.live.gate import (
    JOURNAL_CONDITION,
    LEADERSHIP_START_CONDITION,
    MARKET_DATA_CONDITION,
    VENUE_CONDITION,
    GateChange,
    TradingGate,
)
from engine.live.orders import INSTANCE_PATTERN, OrderManager, OrderManagerConfig
from engine.live.quoting import QuoteSync, Tick
from engine.live.recovery import RecoveryReport, recover
from engine.live.release import Release
from engine.live.warmup import KernelWatch, warm_kernels

log = structlog.get_logger(__name__)
_DEBUG = logging.getLogger(__name__)  # the stdlib logger behind ``log``: its level check

Role = Literal["starting", "standby", "leader", "stopping"]
JOURNAL_WAIT_LIMIT_S: Final = 2.0
FEED_RESTART_FIRST_S: Final = 1.0
FEED_RESTART_MAX_S: Final = 30.0
FEED_HEALTHY_AFTER_S: Final = 10.0  # a restarted feed running this long counts as recovered
DB_COMMAND_TIMEOUT_S: Final = 5.0
STEP_DOWN_BUDGET_S: Final = 15.0
KERNEL_WATCH_EVERY: Final = 16  # housekeeping ticks (0.25 s) between looks for late compiles
_BREAKER_LEVEL: Final = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineConfig:
    """How one engine process runs.

    Attributes:
        instance: lease holder name and client-order-id prefix (1-12 of A-Z a-z 0-9 _ .).
        color: blue or green (which deploy slot this engine is).
        dsn: the journal's PostgreSQL DSN (primary and standby, read-write target).
        lease_ttl_s: how long the lease lasts without renewal (takeover bound).
        lead: contend for the lease at start (False: stay a shadow until told).
        fill_poll_s: period of the order manager's fill and order poll. Each round costs
            request weight per symbol (Binance: myTrades 20, openOrders 6); at 0.25 s
            two symbols used ~6,000 of the 6,000/min budget and orders got paced.
        send_before_durable: let an order leave while its ORDER_NEW is being committed,
            when the lease has more than half its TTL certainly left and the journal is
            healthy (saves one synchronous-replica commit, milliseconds, per order);
            otherwise, and always when False, the send waits for the commit. See
            :class:`engine.live.orders.OrderManager`.
        ended_order_retention_s: how long an ended order stays in memory
            (``OrderManagerConfig.ended_retention_s``; ``BOT4_ENGINE__ENDED_ORDER_RETENTION_S``).
    """

    instance: str
    color: Literal["blue", "green"]
    dsn: str
    lease_ttl_s: float = 3.0
    lead: bool = True
    fill_poll_s: float = 1.0
    send_before_durable: bool = True
    ended_order_retention_s: float = 300.0

    def __post_init__(self) -> None:
        if not INSTANCE_PATTERN.fullmatch(self.instance):
            raise ValueError(f"instance {self.instance!r}: 1-12 characters of A-Z a-z 0-9 _ .")
        if self.lease_ttl_s <= 0.3:
            raise ValueError(f"lease_ttl_s must be > 0.3 (got {self.lease_ttl_s})")


class LiveEngine:
    """One engine: owns the decider, the venue session, the lease and the leader's parts."""

    def __init__(self, config: EngineConfig, release: Release, session: VenueSession,
                 pool: asyncpg.Pool, *, gate: TradingGate | None = None) -> None:  # fmt: skip
        self.config = config
        self.release = release
        self.session = session
        self.pool = pool
        self.gate = gate or TradingGate()
        self.instruments = [session.instruments[s] for s in release.symbols]
        self.decider = LiveDecider(
            release,
            tick_size=tuple(float(i.tick_size) for i in self.instruments),
            lot_size=tuple(float(i.lot_size) for i in self.instruments),
        )
        self.role: Role = "starting"
        self.epoch: int | None = None
        self.lease = Lease(pool, instance=config.instance, ttl_s=config.lease_ttl_s)
        self.paused = False
        self.want_lead = config.lead
        self.recovery: RecoveryReport | None = None
        self.manager: OrderManager | None = None
        self.quotes: QuoteSync | None = None
        self._committer: GroupCommitter | None = None
        self._journal_retries_seen: tuple[GroupCommitter | None, int] = (None, 0)
        # the journal as this engine saw it, over every leadership (see engine.journal.tracking)
        self.journal_outages = OutageLog()
        self.journal_acks = AckLog()
        self._manager_stop = asyncio.Event()
        self._manager_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._last_data_ns = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._failed_feeds: set[str] = set()  # feeds that gave up and are being restarted
        self.watchdog = StreamWatchdog(venue=session.streams.venue, clock=SystemClock())
        self._desired_quotes: list[Quote] = []  # of the last decision (replaced, never changed)
        self.reduced: frozenset[str] = frozenset()  # symbols out of the strategy (liquidation)
        self.decisions = 0
        self.kernels_warm_s: float | None = None  # how long the warm-up took (None: not yet)
        self.kernels_compiled_late: list[str] = []  # kernels the warm-up missed (logged)
        self._kernel_watch: KernelWatch | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._step_down_task: asyncio.Task[None] | None = None
        # one takeover at a time: the leadership loop and an operator's acquire could
        # otherwise both take the lease (each bumping the epoch) and build two leaders'
        # parts; a release waits for a takeover under way instead of cutting it in half
        self._leadership = asyncio.Lock()
        self.gate.on_change(self._gate_changed)

    # --- lifecycle ----------------------------------------------------------------------
    async def run(self) -> None:
        """Run until :meth:`stop`; feeds, decisions, leadership and housekeeping."""
        self._loop = asyncio.get_running_loop()
        # before any stream or takeover: compiling on the loop stalled it for 25-40 s
        # (see engine.live.warmup); a thread keeps the loop free for a stop meanwhile
        self.kernels_warm_s = await asyncio.to_thread(warm_kernels, self.release,
                                                      self.instruments)  # fmt: skip
        self._kernel_watch = KernelWatch()
        log.info("kernels_warm", seconds=round(self.kernels_warm_s, 3))
        self.role = "standby"
        _freeze_heap()
        self._spawn(self._leadership_loop(), "leadership")
        self._spawn(self._housekeeping_loop(), "housekeeping")
        self._spawn(self.watchdog.run(), "watchdog")
        for instrument in self.instruments:
            depth = BookFeedConfig(depth=self.release.config.book_depth)
            book = BookFeed(self.session.streams, instrument=instrument,
                            on_levels=self._on_levels, watchdog=self.watchdog,
                            config=depth)  # fmt: skip
            trades = TradeFeed(self.session.streams, instrument=instrument,
                               on_trades=self._on_trades, watchdog=self.watchdog)  # fmt: skip
            self._spawn(self._keep_feeding(book.run, f"book:{instrument.symbol}"),
                        f"book:{instrument.symbol}")  # fmt: skip
            self._spawn(self._keep_feeding(trades.run, f"trades:{instrument.symbol}"),
                        f"trades:{instrument.symbol}")  # fmt: skip
        try:
            await self._stop.wait()
        finally:
            await self._shutdown()

    def stop(self) -> None:
        """Ask :meth:`run` to return (cancels resting orders if leader)."""
        self._stop.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        # a fresh context: an operator's correlation id (an admin call that started this
        # work) must not tag everything the engine does from then on
        task = asyncio.create_task(coro, name=name, context=contextvars.Context())
        task.add_done_callback(self._task_ended)
        self._tasks.append(task)

    async def _keep_feeding(self, run: Callable[[], Awaitable[None]], name: str) -> None:
        """Run a market-data feed for the process's life, starting it again if it gives up.

        A feed gives up after too many failed reconnects or resyncs (a venue down for a
        while). The engine then holds REDUCING (condition ``market_data``: no new risk on a
        book it cannot trust) and starts the feed again after a pause that doubles up to
        :data:`FEED_RESTART_MAX_S`; the hold clears once every feed has run
        :data:`FEED_HEALTHY_AFTER_S` without failing. Before, a feed that gave up stayed
        dead and the engine REDUCING until someone restarted it.
        """
        pause = FEED_RESTART_FIRST_S
        loop = asyncio.get_running_loop()
        while True:
            started = time.monotonic()
            recovered = (
                loop.call_later(FEED_HEALTHY_AFTER_S, self._feed_recovered, name)
                if name in self._failed_feeds else None
            )  # fmt: skip
            try:
                await run()
                return
            except Exception as e:  # any failure: a dead feed must not stay dead
                if recovered is not None:
                    recovered.cancel()
                if time.monotonic() - started > FEED_HEALTHY_AFTER_S:
                    pause = FEED_RESTART_FIRST_S
                self._failed_feeds.add(name)
                if self.gate.hold(MARKET_DATA_CONDITION, REDUCING):
                    log.warning("market_data_unhealthy", feeds=sorted(self._failed_feeds))
                log.error("feed_gave_up_restarting", feed=name, error=f"{type(e).__name__}: {e}",
                          restart_in_s=pause)  # fmt: skip
                await asyncio.sleep(pause)
                pause = min(pause * 2, FEED_RESTART_MAX_S)

    def _feed_recovered(self, name: str) -> None:
        self._failed_feeds.discard(name)
        if not self._failed_feeds and self.gate.release(MARKET_DATA_CONDITION):
            log.info("market_data_healthy", feed=name)

    def _task_ended(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # a feed that gave up means a book we cannot trust: stop opening risk
            log.error("engine_task_failed", task=task.get_name(), error=str(error))
            self.gate.lower(REDUCING, reason=f"{task.get_name()} failed: {error}", by="engine")

    async def _shutdown(self) -> None:
        self.role = "stopping"
        if self.epoch is not None:
            await self._step_down("shutdown", release=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- market data --------------------------------------------------------------------
    def _on_levels(self, levels: Any) -> None:
        self._ingest(lambda received: self.decider.add_book_view(levels, received_ns=received))

    def _on_trades(self, trades: Any) -> None:
        self._ingest(lambda received: self.decider.add_trades(trades, received_ns=received))

    def _ingest(self, add: Callable[[int], None]) -> None:
        # Decided here, in the callback that delivered the data, not by a task woken for
        # it: that wake waited a loop turn behind every ready callback (other feeds, the
        # committer's encoding, order answers), p50 0.4 ms of tick-to-order. A decision
        # costs ~0.1 ms, and a burst is still decided at once: ccxt hands it over as one
        # book view or one list of trades.
        self._last_data_ns = time.monotonic_ns()
        # the latency clock starts when ccxt handed the feed this data, before the feed
        # converted and checked it
        received_ns, received_ccxt_ns = ccxt_time.last_hand_over()
        add(received_ns or self._last_data_ns)
        try:
            self._decide_now(received_ccxt_ns)
        except Exception as e:
            # the engine's own bug, not the venue's: no decision can be trusted any more,
            # so stop and cancel everything (an operator resumes after a fix); the feed
            # that delivered the data then restarts like one that failed
            if self.gate.lower(HALTED, reason=f"decision failed: {e}", by="engine"):
                log.exception("decision_failed")
            raise

    def effective_state(self) -> int:
        """Return the state the kernel decides under: the gate with its holds, and pause."""
        state = self.gate.effective
        return max(state, REDUCING) if self.paused else state

    def _decide_now(self, received_ccxt_ns: int) -> None:
        """Decide the pending data; ``received_ccxt_ns``: ccxt's counter when it came."""
        if self.decider.pending == 0:
            return
        started = time.monotonic_ns()
        decision = self.decider.decide(self.effective_state())
        decided_ns = time.monotonic_ns()
        self.decisions += 1
        if decision.kernel_state > self.gate.state:  # the drawdown switch lowered it
            self.gate.lower(decision.kernel_state, reason="drawdown switch", by="kernel")
        quotes = self.decider.desired_quotes()
        takers = decision.takers
        if self.reduced:  # out of the strategy: no quote rests there, no taker goes there
            out = {i for i, s in enumerate(self.release.symbols) if s in self.reduced}
            quotes = [q._replace(price_ticks=0, qty_lots=0) if q.symbol_id in out else q
                      for q in quotes]  # fmt: skip
            takers = tuple(t for t in takers if t.symbol_id not in out)
        if self.role == "leader" and self.quotes is not None:
            tick = Tick(received_ns=decision.oldest_receive_ns, decided_ns=decided_ns,
                        ccxt_ns=received_ccxt_ns)  # fmt: skip
            self.quotes.sync(quotes, tick=tick)
            if takers:
                self.quotes.take(takers, tick=tick)
        # Bookkeeping after the orders are on their way, so none of it delays them. Every
        # role keeps its desired quotes: a deploy compares a standby's with the leader's.
        self._desired_quotes = quotes
        metrics.TICK_TO_DECISION.observe((decided_ns - decision.oldest_receive_ns) / 1e9)
        if _DEBUG.isEnabledFor(logging.DEBUG):  # structlog's own check cost ~7 µs a decision
            log.debug("decided", events=decision.events, ns=time.monotonic_ns() - started)

    @property
    def shadow_quotes(self) -> list[dict[str, int]]:
        """Return the desired quotes of the last decision (any role), as ``/status`` shows them."""
        return [
            {"symbol_id": q.symbol_id, "side": q.side, "price": q.price_ticks,
             "qty": q.qty_lots} for q in self._desired_quotes if q.qty_lots
        ]  # fmt: skip

    # --- leadership ---------------------------------------------------------------------
    async def _leadership_loop(self) -> None:
        interval = self.config.lease_ttl_s / 3
        while True:
            try:
                if self.epoch is None:
                    if self.want_lead and self.role != "stopping":
                        await self.try_to_lead()
                else:
                    await self.lease.renew()
            except (LeaseLostError, FencedError) as e:
                await self._step_down(f"lease lost: {e}", release=False)
            except Exception as e:
                # cannot renew: past the TTL another engine may lead, so stop sending now.
                # Any error: one this loop does not survive leaves a "leader" that renews
                # nothing (asyncpg's InternalClientError from a connection dying mid-query,
                # "cannot switch to state", is not an InterfaceError).
                known = isinstance(
                    e, OSError | asyncpg.PostgresError | asyncpg.InterfaceError | TemporaryError
                )
                (log.warning if known else log.error)(
                    "lease_renew_failed", error=f"{type(e).__name__}: {e}"
                )
                if self.epoch is not None and not await self._lease_still_ours():
                    await self._step_down(f"lease unreachable: {e}", release=False)
            await asyncio.sleep(interval)

    async def _lead_or_give_up(self, epoch: int) -> None:
        """Become leader; if startup fails, give the lease back so another engine can lead."""
        try:
            await self._become_leader(epoch)
        except (LeaseLostError, FencedError):
            raise
        except Exception as e:
            log.exception("leadership_start_failed", epoch=epoch)
            # a hold, not a lowering of the gate: the leadership loop tries again, and a
            # takeover that then starts (its recovery checked against the venue) trades.
            # As a lowering, one venue timeout at startup left the next leader REDUCING
            # with nothing but an operator's resume to lift it.
            self.gate.hold(LEADERSHIP_START_CONDITION, REDUCING)
            self.epoch = self.epoch or epoch
            await self._step_down(f"startup failed: {e}", release=True)

    def _may_send_before_durable(self, committer: GroupCommitter, epoch: int) -> bool:
        """Whether an order of ``epoch`` may leave before its record is durable (see config)."""
        return (
            self.config.send_before_durable
            and self.epoch == epoch
            and self.lease.epoch == epoch
            and committer is self._committer
            and committer.healthy
            # more than half the TTL left: one renewal may fail before we fall back
            and self.lease.remaining_s() > self.config.lease_ttl_s / 2
        )

    async def _lease_still_ours(self) -> bool:
        with contextlib.suppress(Exception):
            status = await self.lease.status()
            return status.holder == self.config.instance and status.epoch == self.epoch
        return False

    async def _become_leader(self, epoch: int) -> None:
        self.epoch = epoch
        metrics.EPOCH.set(epoch)
        journal = Journal(self.pool, instance=self.config.instance)
        committer = GroupCommitter(journal, epoch=lambda: epoch, outages=self.journal_outages,
                                   acks=self.journal_acks)  # fmt: skip
        committer.start()
        self._committer = committer
        manager = OrderManager(
            client=self.session.orders, account=self.session.account, committer=committer,
            gate=self.gate, instruments=self.session.instruments,
            instance=self.config.instance, epoch=epoch,
            config=OrderManagerConfig(venue=self.session.rest.venue,
                                      poll_interval_s=self.config.fill_poll_s,
                                      ended_retention_s=self.config.ended_order_retention_s),
            send_before_durable=lambda: self._may_send_before_durable(committer, epoch),
        )  # fmt: skip
        manager.on_fill = self._on_fill
        await committer.record([JournalEvent(
            kind=JournalKind.LEADERSHIP, body={"event": "acquired", "epoch": epoch,
                                               "color": self.config.color,
                                               "release": self.release.describe(),
                                               "instruments": self._instrument_steps()},
        )])  # fmt: skip
        baseline = await load_baseline(self.pool)
        if baseline is None and not await journal_has_fills(self.pool):
            # first leader of an empty journal: today's balances are the starting point
            baseline = await record_baseline(committer, self.session.account,
                                             by=self.config.instance)  # fmt: skip
        self.recovery = await recover(manager, baseline=baseline)
        metrics.RESYNCS.labels(subject="positions", reason="takeover").inc()
        await self._load_positions()
        self.reduced = await load_reduced(self.pool)
        if not self.recovery.ok:
            self.gate.lower(HALTED, reason="startup reconciliation mismatch", by="recovery")
        self.manager = manager
        self.quotes = QuoteSync(manager, self.decider, self.instruments,
                                on_fenced=self._fenced)  # fmt: skip
        self._manager_stop = asyncio.Event()
        self._manager_task = asyncio.create_task(
            manager.run(self._manager_stop), context=contextvars.Context()
        )
        self.role = "leader"
        self.gate.release(LEADERSHIP_START_CONDITION)  # an earlier takeover failed to start
        log.info("leader", instance=self.config.instance, epoch=epoch,
                 recovery_ok=self.recovery.ok)  # fmt: skip

    def _instrument_steps(self) -> dict[str, dict[str, str]]:
        """Return each symbol's tick and lot size (reports turn lot limits into quantities)."""
        return {i.symbol: {"tick_size": str(i.tick_size), "lot_size": str(i.lot_size)}
                for i in self.instruments}  # fmt: skip

    async def _load_positions(self) -> None:
        """Set the kernel's positions to the journal's traded quantities (fees aside).

        The kernel counts lots traded; fees paid in the base asset are off the lot grid
        and belong to the balance check, not to the strategy's inventory.
        """
        rows = await self.pool.fetch(
            "SELECT symbol, sum(CASE WHEN side = 'buy' THEN qty ELSE -qty END) AS qty,"
            " sum(price * qty) / nullif(sum(qty), 0) AS avg_price FROM fills GROUP BY symbol"
        )
        for row in rows:
            if row["symbol"] not in self.release.symbols:
                continue
            sid = self.release.symbols.index(row["symbol"])
            instrument = self.instruments[sid]
            avg = row["avg_price"]
            self.decider.set_position(
                sid,
                qty_lots=instrument.qty_to_lots(row["qty"]),
                avg_price_ticks=0.0 if avg is None else float(avg / instrument.tick_size),
            )

    def _fenced(self, error: FencedError) -> None:
        asyncio.get_running_loop().create_task(self._step_down(f"fenced: {error}", release=False))

    async def _step_down(self, reason: str, *, release: bool) -> None:
        """Stop sending, cancel our resting orders, give up (or lose) the lease.

        The work runs as its own task, shielded: whoever asked (an admin call with a
        timeout, the leadership loop) may give up waiting, but a step-down is never cut
        half way, which would leave orders resting, late fills unjournaled and the lease
        held until it expires. A second request while one runs waits for that one.
        """
        task = self._step_down_task
        if task is None or task.done():
            if self.epoch is None:
                if release:
                    await self._release_lease()  # an earlier step-down that did not release
                return
            task = asyncio.ensure_future(self._stand_down(reason, release=release))
            self._step_down_task = task
        await asyncio.shield(task)
        if release:
            await self._release_lease()

    async def _release_lease(self) -> None:
        if self.lease.epoch is None:
            return
        with contextlib.suppress(Exception):  # unreachable: it expires after its TTL anyway
            await asyncio.wait_for(self.lease.release(), 2.0)

    async def _stand_down(self, reason: str, *, release: bool) -> None:
        """The step-down itself, bounded by :data:`STEP_DOWN_BUDGET_S` whatever is down.

        With the journal unreachable, cancels still go to the venue, and what cannot be
        journaled any more is left to the next leader's recovery (it reads the venue).
        """
        log.warning("stepping_down", reason=reason, epoch=self.epoch)
        started = time.monotonic()
        deadline = started + STEP_DOWN_BUDGET_S
        stages: dict[str, float] = {}

        def lap(stage: str) -> None:
            stages[stage] = round(time.monotonic() - started - sum(stages.values()), 3)

        epoch, manager, quotes, committer = self.epoch, self.manager, self.quotes, self._committer
        self.role = "standby" if self.role != "stopping" else "stopping"
        self.quotes = None  # no new actions from here on
        try:
            if quotes is not None:
                # Let sends already under way finish: a send cancelled mid-request may
                # still reach the venue after the cancel-all below has looked, and rest.
                await _within(quotes.settle(), deadline, 5.0)
            lap("settle")
            self._manager_stop.set()
            task = self._manager_task
            if task is not None and not await _within(asyncio.shield(task), deadline, 3.0):
                task.cancel()
            lap("poller")
            if manager is not None:
                await _within(manager.cancel_all(), deadline, 10.0)
                lap("cancel_all")
                # fills that raced the cancels: record them while our epoch may still
                # write (once deposed, the next leader's recovery records them instead)
                await _within(manager.poll_fills(), deadline, 5.0)
                lap("fills")
            if committer is not None and not await _within(committer.stop(), deadline, 5.0):
                committer.abandon(JournalUnavailableError("stepped down before the write"))
            lap("journal")
            if release:
                # its own 2 s even when the stages above used the whole budget: a lease
                # left held blocks the next leader until its TTL runs out
                await _within(self.lease.release(), time.monotonic() + 2.0, 2.0)
                lap("release")
        finally:
            self.epoch = None
            self.manager = None
            self._committer = None
            self._manager_task = None
        log.info("stepped_down", epoch=epoch, released=release, stages_s=stages)

    def _gate_changed(self, change: GateChange) -> None:
        """Journal a trading-state change (called on whichever thread changed it)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        body = {"from": change.names[0], "to": change.names[1], "reason": change.reason,
                "by": change.by, "at_ns": change.at_ns}  # fmt: skip
        loop.call_soon_threadsafe(self._record_state, body)

    def _record_state(self, body: dict[str, object]) -> None:
        committer = self._committer
        if committer is None:
            log.info("trading_state_not_journaled", reason="not the leader", **body)
            return
        event = JournalEvent(kind=JournalKind.TRADING_STATE, body=body)
        task = asyncio.create_task(committer.record([event]))
        task.add_done_callback(_log_failure)

    async def journal(self, kind: JournalKind, body: dict[str, object]) -> bool:
        """Record one event of the leader's epoch, durably; False when not the leader."""
        committer = self._committer
        if committer is None:
            return False
        await committer.record([JournalEvent(kind=kind, body=body)])
        return True

    def _on_fill(self, record: FillRecord, *, maker: bool) -> None:
        metrics.FILLS.labels(symbol=record.symbol, side=record.side,
                             liquidity=record.liquidity or "unknown").inc()  # fmt: skip
        sid = self.release.symbols.index(record.symbol)
        instrument = self.instruments[sid]
        self.decider.apply_fill(
            symbol_id=sid,
            side=1 if record.side == "buy" else -1,
            price_ticks=instrument.price_to_ticks(record.price),
            qty_lots=instrument.qty_to_lots(record.qty),
            maker=maker,
            ts_ns=int(record.traded_at.timestamp() * 1e9),
        )

    # --- housekeeping -------------------------------------------------------------------
    async def _housekeeping_loop(self) -> None:
        ticks = 0
        while True:
            ticks += 1
            if ticks % KERNEL_WATCH_EVERY == 0:
                self._check_kernels()
            self._check_journal()
            self._check_venue()
            metrics.TRADING_STATE.set(self.effective_state())
            metrics.PNL.labels(kind="mark_to_market").set(self.decider.equity())
            metrics.EPOCH.set(self.epoch or 0)
            lag = self.market_data_lag_s()
            if lag is not None:
                metrics.MARKET_DATA_LAG.set(lag)
            metrics.JOURNAL_LAG.set(self.journal_lag_s() or 0.0)
            for name, lots in self.decider.positions_lots().items():
                metrics.POSITION.labels(symbol=name).set(lots)
            self._export_journal_retries()
            await asyncio.sleep(0.25)

    def _check_kernels(self) -> None:
        """Log a kernel compiled after the warm-up: it stalled the loop while it compiled."""
        if self._kernel_watch is None:
            return
        late = self._kernel_watch.new()
        if late:
            self.kernels_compiled_late = sorted({*self.kernels_compiled_late, *late})
            log.warning("kernels_compiled_late", kernels=late,
                        hint="the warm-up (engine.live.warmup) misses their types")  # fmt: skip

    def _export_journal_retries(self) -> None:
        """Add the committer's retries since the last look to the retries counter."""
        committer = self._committer
        if committer is None:
            return
        seen_of, seen = self._journal_retries_seen
        if seen_of is not committer:  # a new term's committer counts from zero
            seen = 0
        if committer.retries > seen:
            metrics.RETRIES.labels(operation="journal_write").inc(committer.retries - seen)
        self._journal_retries_seen = (committer, committer.retries)

    def _check_venue(self) -> None:
        """Lower to REDUCING while the venue's order or account endpoints are failing.

        An open breaker means sends fail fast; quoting on would only pile up refusals and
        leave quotes we cannot manage. The condition clears with the breaker, so a
        transient venue fault lowers the state and recovers without an operator; a
        halt or a drawdown stop (the gate) still needs one.
        """
        failing = [
            group.value
            for group in (EndpointGroup.ORDERS, EndpointGroup.ACCOUNT)
            if self.session.rest.breaker(group).state is not BreakerState.CLOSED
        ]
        for group in (EndpointGroup.ORDERS, EndpointGroup.ACCOUNT):
            metrics.CIRCUIT_BREAKER_STATE.labels(endpoint_group=group.value).set(
                _BREAKER_LEVEL[self.session.rest.breaker(group).state]
            )
        if failing:
            if self.gate.hold(VENUE_CONDITION, REDUCING):
                log.warning("venue_unhealthy", failing=failing)
        elif self.gate.release(VENUE_CONDITION):
            log.info("venue_healthy")

    def _check_journal(self) -> None:
        """Lower to REDUCING while the journal does not keep up; clear when it does.

        Not keeping up means a record has waited more than :data:`JOURNAL_WAIT_LIMIT_S`
        to be committed. A backlog that was merely never empty when looked at is not
        that: a trading engine always has fresh records queued behind the write under
        way, and on a loaded machine (commits of 100-400 ms) such a backlog could hold the
        engine REDUCING while every record was committed within half a second.

        A committer that died of a bug records nothing more (each record fails at once,
        so nothing waits): that holds the condition for the rest of the term.
        """
        committer = self._committer
        if committer is not None and committer.died is not None:
            self.gate.hold(JOURNAL_CONDITION, REDUCING)
            return
        if committer is None or committer.oldest_wait_s <= JOURNAL_WAIT_LIMIT_S:
            self.gate.release(JOURNAL_CONDITION)
            return
        self.gate.hold(JOURNAL_CONDITION, REDUCING)

    async def set_reduced(self, symbols: frozenset[str], *, by: str, reason: str) -> None:
        """Take ``symbols`` (and only them) out of the strategy, journaled for a successor.

        Their desired quotes read as none from the next decision on (so resting quotes
        are canceled) and their IOC intents are dropped; only liquidation children trade
        them. A new leader reads the set back (:func:`load_reduced`).

        Raises:
            ValueError: not the leader (the set would not be journaled).
        """
        committer = self._committer
        if committer is None:
            raise ValueError("not the leader: only the leader changes what it trades")
        await committer.record([JournalEvent(kind=JournalKind.TRADING_STATE, body={
            "reduced": sorted(symbols), "by": by, "reason": reason})])  # fmt: skip
        self.reduced = symbols

    # --- what the control surface reads -----------------------------------------------
    @property
    def committer(self) -> GroupCommitter | None:
        """Return the leader's journal committer (None: not the leader)."""
        return self._committer

    def market_data_lag_s(self) -> float | None:
        """Return seconds since the last market-data message (None before the first)."""
        if not self._last_data_ns:
            return None
        return (time.monotonic_ns() - self._last_data_ns) / 1e9

    def journal_lag_s(self) -> float | None:
        """Return how long the oldest uncommitted record has waited (None: not the leader)."""
        committer = self._committer
        return None if committer is None else round(committer.oldest_wait_s, 3)

    async def step_down(self, reason: str, *, release: bool) -> None:
        """Stop sending, cancel, and release (or just lose) the lease.

        Waits for a takeover under way to finish first, so it never tears down a leader
        half built (which would leave parts sending under a released lease).
        """
        async with self._leadership:
            await self._step_down(reason, release=release)

    async def try_to_lead(self) -> None:
        """Take the lease now if it is free, and lead (one takeover at a time)."""
        async with self._leadership:
            if self.epoch is not None or self.role == "stopping":
                return  # led meanwhile (the other path got there first), or shutting down
            epoch = await self.lease.try_acquire()
            if epoch is not None:
                await self._lead_or_give_up(epoch)


async def load_reduced(pool: asyncpg.Pool) -> frozenset[str]:
    """Return the symbols the journal last recorded as out of the strategy."""
    body = await pool.fetchval(
        "SELECT body FROM journal_events WHERE kind = $1 AND body ? 'reduced'"
        " ORDER BY seq DESC LIMIT 1",
        JournalKind.TRADING_STATE.value,
    )
    if body is None:
        return frozenset()
    return frozenset(str(s) for s in json.loads(body)["reduced"])


async def _within(work: Awaitable[Any], deadline: float, most_s: float) -> bool:
    """Await ``work`` for at most ``most_s`` and never past ``deadline``; return if it ended.

    Failures are logged, not raised: a step-down goes on with its next stage regardless.
    """
    budget = max(0.0, min(most_s, deadline - time.monotonic()))
    try:
        await asyncio.wait_for(work, budget)
    except TimeoutError:
        log.warning("step_down_stage_timed_out", seconds=round(budget, 2))
        return False
    except Exception as e:
        log.warning("step_down_stage_failed", error=f"{type(e).__name__}: {e}")
        return False
    return True


def _freeze_heap() -> None:
    """Keep what exists at start (modules, ccxt's markets, kernels) out of the cyclic GC.

    A full collection traverses every tracked object: ~340,000 in a trading engine, a
    120 ms pause of the loop measured in the live bench, landing on whatever market data
    and orders were under way. Objects that live as long as the process only make those
    pauses longer, so they move to the permanent generation; the young generations run
    as before. Garbage frozen with them would never be collected, hence the collection
    first (once, before trading). Not repeated after a takeover: that collection would
    delay the new leader's first orders, and what recovery loads is evicted later anyway.
    """
    gc.collect()
    gc.freeze()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("journal_write_failed", error=str(task.exception()))


async def open_engine(config: EngineConfig, release: Release, exchange: Any,
                      *, pool_size: int = 6) -> tuple[LiveEngine, asyncpg.Pool]:  # fmt: skip
    """Connect the journal and the venue, and build the engine (not running yet).

    Raises:
        EngineError: the venue could not be reached.
        OSError: PostgreSQL could not be reached.
    """
    # A statement left without an answer (a connection cut by a server restart) must
    # fail as temporary and be retried, not hang the journal or the lease for ever.
    pool = await asyncpg.create_pool(config.dsn, min_size=1, max_size=pool_size,
                                     command_timeout=DB_COMMAND_TIMEOUT_S)  # fmt: skip
    try:
        settings = exchange.model_copy(update={"symbols": release.symbols})
        session = await open_session(settings)
    except BaseException:
        await pool.close()
        raise
    return LiveEngine(config, release, session, pool), pool
