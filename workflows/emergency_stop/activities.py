"""Activities of the emergency_stop workflow: the flag, the engines, the venue.

Every method is idempotent, so a retry after a worker crash is harmless: the flag is an
upsert, ``POST /admin/halt`` on a halted engine halts it again, ``cancel_all`` with
nothing open cancels nothing. Heavy imports (ccxt, aiohttp) happen inside the methods:
the workflow module imports this one, and the sandbox must stay light.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio import activity

from bot4.settings import ExchangeSettings, Settings
from workflows.emergency_stop.models import (
    CancelOrdersResult,
    EmergencyStopInput,
    EmergencyStopPlan,
    EngineEndpoint,
    EngineHalt,
    HaltEnginesInput,
    HaltEnginesResult,
    SymbolCount,
    VerifyInput,
    VerifyResult,
)
from workflows.heartbeat import heartbeating

KILL_SWITCH = "desk"
HALTED = "HALTED"


@dataclass(frozen=True, kw_only=True, slots=True)
class EmergencyStopConfig:
    """What the activities reach: PostgreSQL, the engines' control servers, the venue."""

    dsn: str
    exchange: ExchangeSettings
    engines: tuple[EngineEndpoint, ...]
    control_token: str
    timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> EmergencyStopConfig:
        """Build the config of the worker's settings (blue and green, the desk's venue)."""
        from engine.live.run import control_token

        engine = settings.engine
        engines = tuple(
            EngineEndpoint(color=color, url=f"http://{engine.host}:{port}")
            for color, port in (
                ("blue", engine.blue_control_port),
                ("green", engine.green_control_port),
            )
        )
        return cls(
            dsn=settings.db.effective_dsn(),
            exchange=settings.exchange,
            engines=engines,
            control_token=control_token(settings),
        )


class EmergencyStopActivities:
    """Holds the config; opens short-lived clients per call (a stop is rare)."""

    def __init__(self, config: EmergencyStopConfig) -> None:
        self.config = config

    @activity.defn(name="emergency_stop.plan")
    @heartbeating
    async def plan(self, request: EmergencyStopInput) -> EmergencyStopPlan:
        """Describe what a stop would touch; change nothing."""
        del request  # the plan depends on the worker's configuration only
        return EmergencyStopPlan(
            engines=self.config.engines,
            symbols=self.config.exchange.symbols,
            venue=self.config.exchange.venue,
            kill_switch=KILL_SWITCH,
        )

    @activity.defn(name="emergency_stop.halt_engines")
    @heartbeating
    async def halt_engines(self, request: HaltEnginesInput) -> HaltEnginesResult:
        """Engage the kill-switch flag and POST halt to every engine, all at once.

        A failed flag write is reported, not raised: the engines' halts and the venue
        cancel must still happen, and ``verify`` insists on the flag afterwards.
        """
        flag, engines = await asyncio.gather(
            self._engage_flag(request),
            asyncio.gather(*(self._halt(e, request) for e in self.config.engines)),
        )
        return HaltEnginesResult(
            kill_switch_engaged=flag == "", kill_switch_error=flag, engines=tuple(engines)
        )

    async def _engage_flag(self, request: HaltEnginesInput) -> str:
        import asyncpg

        from engine.live.killswitch import set_kill_switch

        try:
            connection = await asyncpg.connect(self.config.dsn, timeout=self.config.timeout_s)
            try:
                await set_kill_switch(
                    connection,
                    engaged=True,
                    reason=request.reason,
                    by=request.requested_by,
                    name=KILL_SWITCH,
                )
            finally:
                await connection.close()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            activity.logger.warning("kill switch not written: %s", e)
            return f"{type(e).__name__}: {e}"
        return ""

    async def _halt(self, engine: EngineEndpoint, request: HaltEnginesInput) -> EngineHalt:
        from engine.live.control import ControlUnreachableError, post_admin

        payload = {"reason": request.reason, "by": request.requested_by}
        try:
            answer = await post_admin(
                engine.url,
                "halt",
                token=self.config.control_token,
                payload=payload,
                timeout_s=self.config.timeout_s,
            )
        except ControlUnreachableError as e:
            return EngineHalt(color=engine.color, url=engine.url, reached=False, halted=False,
                              detail=str(e))  # fmt: skip
        halted = answer.status == 200
        detail = "" if halted else f"HTTP {answer.status}: {answer.body.get('error', answer.body)}"
        return EngineHalt(
            color=engine.color, url=engine.url, reached=True, halted=halted, detail=detail
        )

    @activity.defn(name="emergency_stop.cancel_venue_orders")
    async def cancel_venue_orders(self) -> CancelOrdersResult:
        """Cancel every open order of every configured symbol at the venue."""
        from engine.execution import open_session

        venue = await open_session(self.config.exchange)
        try:
            canceled = []
            for symbol in self.config.exchange.symbols:
                orders = await venue.orders.cancel_all(symbol)
                canceled.append(SymbolCount(symbol=symbol, orders=len(orders)))
                activity.heartbeat(symbol)
        finally:
            await venue.close()
        return CancelOrdersResult(canceled=tuple(canceled))

    @activity.defn(name="emergency_stop.verify")
    @heartbeating
    async def verify(self, request: VerifyInput) -> VerifyResult:
        """Read the venue's open orders, the engines' states and the flag (no changes)."""
        import asyncpg

        from engine.execution import open_session
        from engine.live.killswitch import read_kill_switch

        venue = await open_session(self.config.exchange)
        try:
            open_orders = [
                SymbolCount(symbol=s, orders=len(await venue.orders.fetch_open_orders(s)))
                for s in self.config.exchange.symbols
            ]
        finally:
            await venue.close()
        states = await asyncio.gather(*(self._trading_state(e) for e in request.engines))
        not_halted = tuple(
            f"{e.color}: {state}" for e, state in zip(request.engines, states, strict=True)
            if state != HALTED
        )  # fmt: skip
        try:
            connection = await asyncpg.connect(self.config.dsn, timeout=self.config.timeout_s)
            try:
                flag = await read_kill_switch(connection, name=KILL_SWITCH)
            finally:
                await connection.close()
            engaged = flag.engaged
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            engaged = False
        return VerifyResult(
            open_orders=tuple(open_orders),
            engines_not_halted=not_halted,
            kill_switch_engaged=engaged,
        )

    async def _trading_state(self, engine: EngineEndpoint) -> str:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(f"{engine.url}/status") as response,
            ):
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            return f"unreadable ({type(e).__name__})"
        return str(document.get("trading_state")) if isinstance(document, dict) else "unreadable"
