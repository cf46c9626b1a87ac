"""The safety thread: the halt path that does not need the strategy loop.

"Halt" means: no new orders, cancel all, verified. The strategy loop can be stuck (a long
synchronous call, a bug), so everything a halt needs lives on a dedicated thread with its
own asyncio loop: the control server, the kill-switch poller, and a venue REST client of
its own (a ccxt instance bound to this loop; the engine's clients belong to the engine
loop and cannot be used here). The gate is thread-safe, so lowering it here stops the
engine's order path at once, whatever its loop is doing.

The engine process calls::

    safety = SafetyThread(gate=gate, control=engine, engine_loop=loop, exchange=...,
                          control_config=ControlConfig(port=..., token=...), dsn=...)
    safety.start()          # raises if the server, venue or database path cannot start
    ...
    safety.halt_from_engine(reason="drawdown", by="risk")   # from any thread
    safety.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import REGISTRY, CollectorRegistry

from bot4.settings import ExchangeSettings
from engine.dtypes import HALTED
from engine.errors import EngineError
from engine.execution import (
    GatewayConfig,
    OrderClient,
    RetryPolicy,
    VenueGateway,
    create_rest_client,
    load_instruments,
)
from engine.execution.breaker import BreakerConfig
from engine.live import metrics
from engine.live.control import ControlConfig, ControlServer, EngineControl
from engine.live.gate import TradingGate
from engine.live.killswitch import KillSwitchConfig, KillSwitchPoller, KillSwitchState
from engine.live.loop_watch import LoopWatch

log = structlog.get_logger(__name__)

# Fail fast: a halt must finish within a second; the poller retries a failed one anyway.
HALT_GATEWAY: GatewayConfig = GatewayConfig(
    retry=RetryPolicy(max_attempts=3, total_s=0.8, base_s=0.02, max_backoff_s=0.1),
    breaker=BreakerConfig(failure_threshold=5, cool_down_s=0.5),
)


@dataclass(kw_only=True, slots=True)
class HaltReport:
    """What one halt did, and whether the venue confirmed it."""

    reason: str
    by: str
    path: str
    trading_state: str
    cancelled: dict[str, int] = field(default_factory=dict)
    open_orders: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def verified(self) -> bool:
        """Return whether every symbol was checked and none had an open order left."""
        return not self.errors and not any(self.open_orders.values())

    def as_json(self) -> dict[str, object]:
        """Return the report as a JSON-ready dict."""
        return {
            "halted": self.trading_state == "HALTED",
            "verified": self.verified,
            "trading_state": self.trading_state,
            "reason": self.reason,
            "by": self.by,
            "path": self.path,
            "cancelled": self.cancelled,
            "open_orders": self.open_orders,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 4),
        }


class Halter:
    """Lower the gate to HALTED, cancel all at the venue, verify none is left open.

    Args:
        gate: the engine's gate.
        orders: an order client on the safety loop's own venue client.
        symbols: every symbol the engine may have orders in.
    """

    def __init__(self, gate: TradingGate, orders: OrderClient, *, symbols: tuple[str, ...]) -> None:
        self._gate = gate
        self._orders = orders
        self._symbols = symbols
        self._lock = asyncio.Lock()
        self.last: HaltReport | None = None

    async def halt(self, reason: str, by: str, *, path: str = "control") -> HaltReport:
        """Halt now; never raises for venue trouble (the report says what failed)."""
        started = time.monotonic()
        # The gate first and outside the lock: new orders stop even if a halt is running.
        self._gate.lower(HALTED, reason=reason, by=by)
        async with self._lock:
            report = HaltReport(reason=reason, by=by, path=path, trading_state=self._gate.name)
            await asyncio.gather(*(self._cancel(symbol, report) for symbol in self._symbols))
            report.elapsed_s = time.monotonic() - started
        metrics.HALT_DURATION.labels(path=path).observe(report.elapsed_s)
        outcome = "verified" if report.verified else "unverified"
        metrics.HALTS.labels(path=path, outcome=outcome).inc()
        (log.warning if report.verified else log.error)("halt_done", **report.as_json())
        self.last = report
        return report

    async def _cancel(self, symbol: str, report: HaltReport) -> None:
        # Cancel, then look: an order the engine sent just before the gate closed may land
        # after the cancel-all, so what is still open is cancelled once more and re-checked.
        try:
            cancelled = len(await self._orders.cancel_all(symbol))
            left = await self._orders.fetch_open_orders(symbol)
            if left:
                cancelled += len(await self._orders.cancel_all(symbol))
                left = await self._orders.fetch_open_orders(symbol)
        except EngineError as e:
            report.errors.append(f"{symbol}: {type(e).__name__}: {e}")
            return
        report.cancelled[symbol] = cancelled
        report.open_orders[symbol] = [o.client_order_id for o in left]


@dataclass(frozen=True, kw_only=True, slots=True)
class SafetyConfig:
    """The safety thread's settings.

    Attributes:
        control: control server address and token.
        kill_switch: polling of the PostgreSQL flag.
        gateway: resilience of the safety venue client (fail fast).
        venue_timeout_ms: ccxt timeout of one cancel or check request.
        start_timeout_s: bound of :meth:`SafetyThread.start`.
    """

    control: ControlConfig
    kill_switch: KillSwitchConfig = field(default_factory=KillSwitchConfig)
    gateway: GatewayConfig = HALT_GATEWAY
    venue_timeout_ms: int = 800
    start_timeout_s: float = 30.0


class SafetyThread:
    """Hosts the control server, the kill-switch poller and the halter on one thread.

    Args:
        gate: the engine's gate.
        control: the engine (status, readiness, admin coroutines).
        engine_loop: the engine's event loop (for admin coroutines).
        exchange: the venue; a REST client of its own is opened on this thread.
        config: server, poller and venue settings.
        dsn: the journal's PostgreSQL DSN; None runs without the kill-switch poller.
        registry: what ``/metrics`` exposes.
    """

    def __init__(
        self,
        *,
        gate: TradingGate,
        control: EngineControl,
        engine_loop: asyncio.AbstractEventLoop,
        exchange: ExchangeSettings,
        config: SafetyConfig,
        dsn: str | None,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.gate = gate
        self.config = config
        self._control = control
        self._engine_loop = engine_loop
        self._exchange = exchange
        self._dsn = dsn
        self._registry = registry
        self._thread = threading.Thread(target=self._run, name="bot4-safety", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self.halter: Halter | None = None
        self.server: ControlServer | None = None
        self.poller: KillSwitchPoller | None = None
        self.loop_watch = LoopWatch(engine_loop)

    @property
    def url(self) -> str:
        """Return the control server's base URL (after :meth:`start`)."""
        if self.server is None:
            raise RuntimeError("the safety thread is not started")
        return self.server.url

    def start(self) -> None:
        """Start the thread; return once the server listens and the venue is loaded.

        Raises:
            OSError: the control port cannot be bound.
            EngineError: the venue could not be reached to load its markets.
            TimeoutError: startup took longer than ``start_timeout_s``.
        """
        metrics.track_gate(self.gate)
        self._thread.start()
        if not self._started.wait(self.config.start_timeout_s):
            raise TimeoutError(f"safety thread not started in {self.config.start_timeout_s} s")
        if self._startup_error is not None:
            self._thread.join(self.config.start_timeout_s)
            raise self._startup_error

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server and the poller, close the venue client, join the thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout_s)

    def halt_from_engine(self, *, reason: str, by: str) -> concurrent.futures.Future[HaltReport]:
        """Run a halt on the safety loop from any thread (e.g. the engine's drawdown stop).

        The gate is lowered before this returns; the future resolves to the report.
        """
        loop, halter = self._loop, self.halter
        if loop is None or halter is None:
            raise RuntimeError("the safety thread is not started")
        self.gate.lower(HALTED, reason=reason, by=by)
        return asyncio.run_coroutine_threadsafe(halter.halt(reason, by, path="engine"), loop)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        gateway: VenueGateway | None = None
        poller_task: asyncio.Task[None] | None = None
        watch_task = asyncio.create_task(self.loop_watch.run(self._stopping), name="loop-watch")
        try:
            gateway = await self._open_venue()
            self.server = self._server()
            await self.server.start()
            if self._dsn is not None:
                self.poller = KillSwitchPoller(
                    self._dsn,
                    gate=self.gate,
                    on_engaged=self._halt_for_kill_switch,
                    config=self.config.kill_switch,
                )
                poller_task = asyncio.create_task(self.poller.run(), name="kill-switch-poller")
        except BaseException as e:
            self._startup_error = e
        self._started.set()
        try:
            if self._startup_error is None:
                await self._stopping.wait()
        finally:
            self._stopping.set()  # a failed startup returns here without stop(): end the watch
            await asyncio.gather(watch_task, return_exceptions=True)
            if self.poller is not None and poller_task is not None:
                self.poller.stop()
                await asyncio.gather(poller_task, return_exceptions=True)
            if self.server is not None:
                await self.server.stop()
            if gateway is not None:
                await gateway.close()

    async def _open_venue(self) -> VenueGateway:
        settings = self._exchange
        gateway = VenueGateway(
            create_rest_client(settings),
            venue=settings.venue,
            secrets=(settings.api_key.get_secret_value(), settings.api_secret.get_secret_value()),
            config=self.config.gateway,
        )
        try:
            instruments = await load_instruments(gateway, settings.symbols)
        except BaseException:
            await gateway.close()
            raise
        # Markets load once with the default timeout (a real venue's list is megabytes);
        # cancels and checks then fail fast, since a halt has one second.
        gateway.exchange.timeout = self.config.venue_timeout_ms
        orders = OrderClient(gateway, instruments=instruments)
        self.halter = Halter(self.gate, orders, symbols=settings.symbols)
        return gateway

    def _server(self) -> ControlServer:
        assert self.halter is not None  # opened just before
        halter = self.halter

        async def halt(reason: str, by: str) -> HaltReport:
            return await halter.halt(reason, by, path="control")

        return ControlServer(
            self.config.control,
            control=self._control,
            engine_loop=self._engine_loop,
            gate=self.gate,
            halt=halt,
            kill_switch_engaged=lambda: self.poller is not None and self.poller.engaged,
            extra_status=self._status,
            registry=self._registry,
        )

    def _status(self) -> dict[str, object]:
        poller, halter = self.poller, self.halter
        kill_switch: dict[str, Any] = {"polled": poller is not None}
        if poller is not None and poller.last_state is not None:
            kill_switch |= poller.last_state.as_json()
        last_halt = None if halter is None or halter.last is None else halter.last.as_json()
        return {"kill_switch": kill_switch, "last_halt": last_halt,
                "loop": self.loop_watch.status()}  # fmt: skip

    async def _halt_for_kill_switch(self, state: KillSwitchState) -> bool:
        assert self.halter is not None  # the poller starts after the halter
        by = state.changed_by or "kill_switch"
        report = await self.halter.halt(f"kill switch: {state.reason}", by, path="kill_switch")
        return report.verified
