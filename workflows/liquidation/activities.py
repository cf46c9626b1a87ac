"""Activities of the liquidation workflow: the leader's admin actions, the venue's book.

Every order goes through the leading engine (``child_order``): it owns the fenced
journal, so no order or fill is lost or doubled. The activities only read the market
(depth and public trades, straight from the venue) to size and price each child.

Idempotence: ``reduce`` is a set union; a child's client id is fixed by the run and the
slice (``liq-<hash>-<symbol>-<slice>``) and the engine never sends an id it has journaled,
so ``unwind`` may replay slices after a worker or engine crash: a slice already sent
answers its recorded outcome. Remaining quantities are always the leader's journaled
position, never a local count, so a replay cannot oversell either. Heavy imports
(aiohttp, asyncpg, the engine) happen inside the methods: the workflow imports this
module and the sandbox must stay light.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from temporalio import activity
from temporalio.exceptions import ApplicationError

from bot4.settings import ExchangeSettings, Settings
from workflows.heartbeat import heartbeating
from workflows.liquidation import slicing
from workflows.liquidation.models import (
    ChildFills,
    LiquidationInput,
    LiquidationPlan,
    ReduceInput,
    ReduceResult,
    SymbolCheck,
    SymbolPosition,
    SymbolUnwind,
    UnwindInput,
    UnwindResult,
    VerifyInput,
    VerifyResult,
    child_id,
)

KILL_SWITCH: Final = "desk"
RECHECKS: Final = 3  # reads of the leader's positions after "done", each after a settle pause
RECHECK_SETTLE_MS: Final = 1_000


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineEndpoint:
    """One engine's control server."""

    color: str
    url: str


@dataclass(frozen=True, kw_only=True, slots=True)
class LiquidationConfig:
    """What the activities reach: the engines, the venue's market data, PostgreSQL.

    Attributes:
        min_notional: the venue's smallest order notional (quote asset); a remainder
            worth less is dust, reported and left.
    """

    dsn: str
    exchange: ExchangeSettings
    engines: tuple[EngineEndpoint, ...]
    control_token: str
    timeout_s: float = 8.0
    min_notional: float = 5.0
    heartbeat_every_s: float = 0.5
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> LiquidationConfig:
        """Build the config of the worker's settings (both colors, the desk's venue)."""
        from engine.live.run import control_token

        engine = settings.engine
        return cls(
            dsn=settings.db.effective_dsn(),
            exchange=settings.exchange,
            engines=tuple(
                EngineEndpoint(color=color, url=f"http://{engine.host}:{port}")
                for color, port in (
                    ("blue", engine.blue_control_port),
                    ("green", engine.green_control_port),
                )
            ),
            control_token=control_token(settings),
        )


class EngineCallError(Exception):
    """An engine did not answer or could not act now (retried: the leader may be restarting)."""


def refuse(message: str, kind: str = "InvalidInput") -> ApplicationError:
    """Return a non-retryable business refusal."""
    return ApplicationError(message, type=kind, non_retryable=True)


class LiquidationActivities:
    """Holds the config; opens short-lived clients per call."""

    def __init__(self, config: LiquidationConfig) -> None:
        self.config = config

    # --- engines ------------------------------------------------------------------------
    async def _status(self, engine: EngineEndpoint) -> dict[str, Any] | None:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(f"{engine.url}/status") as response,
            ):
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    async def leader(self) -> tuple[str, dict[str, Any]]:
        """Return the leading engine's URL and status.

        Raises:
            EngineCallError: no engine leads right now (retried).
        """
        statuses = await asyncio.gather(*(self._status(e) for e in self.config.engines))
        for engine, status in zip(self.config.engines, statuses, strict=True):
            if status is not None and status.get("role") == "leader":
                return engine.url, status
        raise EngineCallError("no engine leads right now (restarting or taking over?)")

    async def admin(self, url: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Call an admin action; return its result.

        Raises:
            EngineCallError: unreachable, busy or not the leader any more (retried).
            ApplicationError: ``InvalidInput`` when the engine refused the request itself.
        """
        from engine.live.control import ControlUnreachableError, post_admin

        try:
            answer = await post_admin(url, action, token=self.config.control_token,
                                      payload=payload, timeout_s=self.config.timeout_s)  # fmt: skip
        except ControlUnreachableError as e:
            raise EngineCallError(str(e)) from e
        error = str(answer.body.get("error", answer.body))
        if answer.status == 400:
            raise refuse(f"{action} refused by {url}: {error}")
        if answer.status != 200:
            raise EngineCallError(f"{action} at {url}: HTTP {answer.status}: {error}")
        result = answer.body.get("result")
        return result if isinstance(result, dict) else {}

    # --- steps --------------------------------------------------------------------------
    @activity.defn(name="liquidation.plan")
    @heartbeating
    async def plan(self, request: LiquidationInput) -> LiquidationPlan:
        """Resolve the symbols and read their journaled positions; change nothing."""
        url, status = await self.leader()
        traded = tuple(sorted((status.get("positions") or {}).keys()))
        symbols = traded if request.all_symbols else tuple(request.symbols)
        unknown = sorted(set(symbols) - set(traded))
        if unknown:
            raise refuse(f"symbols {unknown}: the leader trades {list(traded)}")
        check = await self.admin(url, "liquidation_check", {"symbols": ",".join(symbols)})
        rows = check.get("symbols") or {}
        positions = tuple(
            SymbolPosition(symbol=s, qty=str(rows.get(s, {}).get("journal_qty", "0")), mid="")
            for s in symbols
        )
        return LiquidationPlan(
            leader=url, symbols=symbols, positions=positions, mode=request.mode,
            deadline_s=request.deadline_s, band_bps=request.band_bps,
            max_participation=request.max_participation,
            slice_interval_ms=request.slice_interval_ms, needs_approval=request.all_symbols,
        )  # fmt: skip

    @activity.defn(name="liquidation.reduce")
    @heartbeating
    async def reduce(self, request: ReduceInput) -> ReduceResult:
        """Take the symbols out of the strategy on the leader; return their positions.

        With ``lift_halt`` (an emergency stop chained into this run) the desk kill switch
        is disengaged first (else it would halt the engines again at once), then the
        leader goes from HALTED to REDUCING with the symbols out of the strategy.
        """
        disengaged = False
        if request.lift_halt:
            await self._disengage_kill_switch(request)
            disengaged = True
        url, _ = await self.leader()
        payload: dict[str, Any] = {"symbols": ",".join(request.symbols), "by": request.by,
                                   "reason": request.reason}  # fmt: skip
        if request.lift_halt:
            payload["lift_halt"] = 1
        result = await self.admin(url, "reduce", payload)
        rows = result.get("positions") or {}
        return ReduceResult(
            leader=url,
            positions=tuple(
                SymbolPosition(symbol=s, qty=str(rows[s]["qty"]), mid=str(rows[s]["mid"]))
                for s in request.symbols
            ),
            kill_switch_disengaged=disengaged,
        )

    async def _disengage_kill_switch(self, request: ReduceInput) -> None:
        import asyncpg

        from engine.live.killswitch import set_kill_switch

        connection = await asyncpg.connect(self.config.dsn, timeout=self.config.timeout_s)
        try:
            reason = f"liquidation after the stop: {request.reason}"
            await set_kill_switch(
                connection, engaged=False, name=KILL_SWITCH, by=request.by, reason=reason
            )
        finally:
            await connection.close()

    @activity.defn(name="liquidation.unwind")
    async def unwind(self, request: UnwindInput) -> UnwindResult:
        """Slice the positions down until flat or the deadline; heartbeat every slice."""
        from engine.execution import open_session

        venue = await open_session(
            self.config.exchange.model_copy(
                update={"symbols": tuple(p.symbol for p in request.positions)}
            )
        )
        try:
            return await _Unwind(self, request, venue).run()
        finally:
            await venue.close()

    @activity.defn(name="liquidation.child_fills")
    @heartbeating
    async def child_fills(self, prefix: str) -> tuple[ChildFills, ...]:
        """Return the run's journaled child fills per symbol (for the report)."""
        fills = await child_fills(self.config.dsn, prefix)
        return tuple(
            ChildFills(symbol=s, qty=str(q), notional=str(n), children=c)
            for s, (q, n, c) in sorted(fills.items())
        )

    @activity.defn(name="liquidation.verify")
    @heartbeating
    async def verify(self, request: VerifyInput) -> VerifyResult:
        """Ask the leader whether the symbols are flat (journal, venue orders, balances)."""
        url, _ = await self.leader()
        check = await self.admin(url, "liquidation_check", {"symbols": ",".join(request.symbols)})
        rows = check.get("symbols") or {}
        return VerifyResult(
            symbols=tuple(
                SymbolCheck(
                    symbol=s,
                    journal_qty=str(rows[s]["journal_qty"]),
                    open_orders=len(rows[s]["open_orders"]),
                    flat=bool(rows[s]["flat"]),
                )
                for s in request.symbols
            ),
            balances_checked=bool(check.get("balances_checked")),
            balance_mismatches=tuple(
                f"{m['asset']}: expected {m['expected']}, venue {m['actual']}"
                for m in check.get("balance_mismatches") or []
            ),
        )


@dataclass(kw_only=True, slots=True)
class _Leg:
    """One symbol's unwind state (kept in the heartbeat)."""

    symbol: str
    index: int
    sell: bool
    start_lots: int
    remaining: int
    arrival_mid2: int
    last_trade_id: int = 0
    last_child_lots: int = 0
    children: int = 0
    slices: int = 0
    max_participation: float | None = None
    mid_value: Decimal = Decimal(0)  # sum of mid at slice time x filled, over the children
    fill_value: Decimal = Decimal(0)  # sum of average fill price x filled
    done: bool = False


class _Unwind:
    """One attempt of the unwind activity (a retry builds a new one from the heartbeat)."""

    def __init__(self, acts: LiquidationActivities, request: UnwindInput, venue: Any) -> None:
        self.acts, self.request, self.venue = acts, request, venue
        self.instruments = venue.instruments
        self.slice = 0
        self.legs: list[_Leg] = []
        self.started = time.monotonic()
        self._last_beat = 0.0
        self._restored = False

    def _beat(self, *, force: bool = False) -> None:
        if not self._restored:  # the state of the last attempt is not read back yet
            activity.heartbeat(*activity.info().heartbeat_details)
            return
        now = time.monotonic()
        if force or now - self._last_beat >= self.acts.config.heartbeat_every_s:
            self._last_beat = now
            activity.heartbeat({
                "slice": self.slice,
                "legs": {leg.symbol: {"last_trade_id": leg.last_trade_id,
                                      "last_child_lots": leg.last_child_lots,
                                      "children": leg.children, "slices": leg.slices,
                                      "max_participation": leg.max_participation,
                                      "mid_value": str(leg.mid_value),
                                      "fill_value": str(leg.fill_value)}
                         for leg in self.legs},
                "remaining": {leg.symbol: leg.remaining for leg in self.legs},
            })  # fmt: skip

    async def run(self) -> UnwindResult:
        # heartbeats go on while a call waits (a venue's Retry-After, an engine restarting):
        # the heartbeat timeout must detect a dead worker, not a slow answer
        beating = asyncio.create_task(self._beat_forever())
        try:
            return await self._run()
        finally:
            beating.cancel()

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.acts.config.heartbeat_every_s)
            self._beat()

    async def _run(self) -> UnwindResult:
        url, _ = await self.acts.leader()
        positions = await self._positions(url)
        saved: dict[str, Any] = {}
        details = activity.info().heartbeat_details
        if details and isinstance(details[0], dict):
            saved = details[0]
            self.slice = int(saved.get("slice", 0))
        for index, p in enumerate(self.request.positions):
            instrument = self.instruments[p.symbol]
            start = instrument.qty_to_lots(Decimal(p.qty))
            mid2 = round(Decimal(p.mid) / instrument.tick_size * 2) if p.mid else 0
            leg = _Leg(symbol=p.symbol, index=index, sell=start > 0, start_lots=abs(start),
                       remaining=abs(positions[p.symbol]), arrival_mid2=int(mid2))  # fmt: skip
            if (positions[p.symbol] > 0) != (start > 0):
                leg.remaining = 0  # never trade through flat
            old = (saved.get("legs") or {}).get(p.symbol)
            if old:
                leg.last_trade_id = int(old["last_trade_id"])
                leg.last_child_lots = int(old["last_child_lots"])
                leg.children, leg.slices = int(old["children"]), int(old["slices"])
                leg.max_participation = old.get("max_participation")
                leg.mid_value = Decimal(old.get("mid_value", "0"))
                leg.fill_value = Decimal(old.get("fill_value", "0"))
            elif self.request.mode == "participation":
                trades = await self._trades(leg)
                leg.last_trade_id = trades[-1].trade_id if trades else 0
            self.legs.append(leg)
        self._restored = True
        activity.logger.info("unwind from slice %d, remaining %s", self.slice,
                             {leg.symbol: leg.remaining for leg in self.legs})  # fmt: skip
        stopped = await self._slice_until_flat(url)
        for _ in range(RECHECKS):
            if stopped != "done" or not await self._still_open(url):
                break
            stopped = await self._slice_until_flat(url)
        self._beat(force=True)
        return self._result(stopped)

    async def _slice_until_flat(self, url: str) -> str:
        """Slice until every leg is flat or dust ("done") or the deadline passes."""
        while any(leg.remaining > 0 and not leg.done for leg in self.legs):
            if self._now() >= self.request.deadline_at:
                return "deadline"
            self._beat(force=True)  # the slice number is durable before its children go
            replayed = [await self._slice(url, leg) for leg in self.legs
                        if leg.remaining > 0 and not leg.done]  # fmt: skip
            self.slice += 1
            self._beat(force=True)
            if not replayed or not all(replayed):  # a replayed slice needs no pacing
                await self._pause()
        return "done"

    async def _still_open(self, url: str) -> bool:
        """Read the leader's positions again after a settle pause; return whether to slice on.

        True when a leg changed and something is left (dust that stayed dust is not sliced
        again). A child's answer gives the position as of its own fill. A fill the leader journals
        later (a desk quote whose cancel failed during a venue outage, filled meanwhile; a
        fill found by the leader's poll) would otherwise be left unsold behind a "done".
        """
        await self._pause(RECHECK_SETTLE_MS)
        positions = await self._positions(url)
        changed = False
        for leg in self.legs:
            position = positions.get(leg.symbol, 0)
            left = abs(position) if position != 0 and (position > 0) == leg.sell else 0
            if left != leg.remaining:
                activity.logger.warning("unwind: %s has %d lots left after its last child (was %d)",
                                        leg.symbol, left, leg.remaining)  # fmt: skip
                leg.remaining, leg.done, changed = left, False, True
        return changed and any(leg.remaining > 0 for leg in self.legs)

    def _now(self) -> datetime:
        return datetime.now(UTC)

    async def _pause(self, ms: int | None = None) -> None:
        """Wait one slice interval or ``ms`` (heartbeating; never past the deadline)."""
        end = time.monotonic() + (self.request.slice_interval_ms if ms is None else ms) / 1000
        while (left := end - time.monotonic()) > 0:
            if self._now() >= self.request.deadline_at:
                return
            await asyncio.sleep(min(left, self.acts.config.heartbeat_every_s))
            self._beat()

    async def _positions(self, url: str) -> dict[str, int]:
        symbols = ",".join(p.symbol for p in self.request.positions)
        result = await self.acts.admin(url, "reduce", {
            "symbols": symbols, "by": self.request.by, "reason": "liquidation unwind"})  # fmt: skip
        return {s: int(v["lots"]) for s, v in (result.get("positions") or {}).items()}

    async def _trades(self, leg: _Leg) -> tuple[Any, ...]:
        from engine.execution import fetch_public_trades

        return tuple(await fetch_public_trades(self.venue.rest, self.instruments[leg.symbol]))

    async def _slice(self, url: str, leg: _Leg) -> bool:
        """Size, price and send this slice's child of ``leg``.

        Return whether the slice was a replay (its child was sent by an earlier attempt
        and the leader answered its recorded outcome); False for anything else.
        """
        from engine.execution import fetch_depth

        instrument = self.instruments[leg.symbol]
        depth = await fetch_depth(self.venue.rest, instrument, limit=50)
        market = slicing.Market(
            best_bid=depth.bids[0][0] if depth.bids else None,
            best_ask=depth.asks[0][0] if depth.asks else None,
            bids=depth.bids, asks=depth.asks,
        )  # fmt: skip
        if market.mid2 is None:
            return False  # no two-sided book: no mid, no band; wait
        limit = slicing.band_limit(market.mid2, sell=leg.sell, band_bps=self.request.band_bps)
        time_left_ms = int((self.request.deadline_at - self._now()).total_seconds() * 1000)
        volume, newest = 0, leg.last_trade_id
        if self.request.mode == "participation":
            trades = await self._trades(leg)
            new = [t for t in trades if t.trade_id > leg.last_trade_id]
            newest = new[-1].trade_id if new else leg.last_trade_id
            volume = max(0, sum(t.lots for t in new) - leg.last_child_lots)  # ours excluded
            lots = slicing.participation_lots(leg.remaining, market_lots=volume,
                                              cap=self.request.max_participation)  # fmt: skip
        else:
            lots = slicing.twap_lots(leg.remaining, time_left_ms=time_left_ms,
                                     interval_ms=self.request.slice_interval_ms)  # fmt: skip
        floor = slicing.min_lots(price_ticks=limit, tick=float(instrument.tick_size),
                                 lot=float(instrument.lot_size),
                                 min_notional=self.acts.config.min_notional)  # fmt: skip
        if leg.remaining < floor:
            leg.done = True  # dust: below the venue's minimum order, reported as remaining
            return False
        capped = self.request.mode == "participation"
        if lots < floor:
            if capped:
                return False  # not enough volume yet: the window grows until the next slice
            lots = min(leg.remaining, floor)
        lots = slicing.leave_no_dust(lots, remaining=leg.remaining, floor=floor, capped=capped)
        if slicing.within_band(market, limit, sell=leg.sell) == 0:
            return False  # nothing inside the band: wait, never cross it
        cid = child_id(self.request.child_prefix, leg.index, self.slice)
        answer = await self.acts.admin(url, "child_order", {
            "client_order_id": cid, "symbol": leg.symbol, "side": "sell" if leg.sell else "buy",
            "qty": format(instrument.lots_to_qty(lots), "f"),
            "limit_price": format(instrument.ticks_to_price(limit), "f"),
            "by": self.request.by, "reason": f"liquidation slice {self.slice}",
        })  # fmt: skip
        position = int(answer.get("position_lots", 0))
        filled = instrument.qty_to_lots(Decimal(str(answer.get("filled", "0"))))
        leg.remaining = abs(position) if (position > 0) == leg.sell and position != 0 else 0
        leg.slices += 1
        if answer.get("status") == "refused":
            activity.logger.warning("child %s refused: %s", cid, answer.get("reason"))
            return False
        leg.children += 1
        if filled and answer.get("avg_price") and answer.get("sent"):
            qty = instrument.lots_to_qty(filled)
            leg.mid_value += instrument.ticks_to_price(market.mid2) / 2 * qty
            leg.fill_value += Decimal(str(answer["avg_price"])) * qty
        if self.request.mode == "participation" and answer.get("sent"):
            leg.last_trade_id, leg.last_child_lots = newest, filled
            if volume > 0:
                share = filled / volume
                leg.max_participation = max(leg.max_participation or 0.0, share)
        activity.logger.info("child %s %s %d lots at %s: filled %d, %d remain (%s)", cid,
                             "sell" if leg.sell else "buy", lots, limit, filled,
                             leg.remaining, answer.get("status"))  # fmt: skip
        return not answer.get("sent")

    def _result(self, stopped: str) -> UnwindResult:
        legs = []
        for leg in self.legs:
            instrument = self.instruments[leg.symbol]
            filled = leg.start_lots - leg.remaining
            legs.append(SymbolUnwind(
                symbol=leg.symbol, side="sell" if leg.sell else "buy",
                start_qty=str(instrument.lots_to_qty(leg.start_lots)),
                filled=str(instrument.lots_to_qty(filled)),
                remaining=str(instrument.lots_to_qty(leg.remaining)),
                notional="", arrival_mid=str(instrument.ticks_to_price(leg.arrival_mid2) / 2),
                children=leg.children, slices=leg.slices,
                max_child_participation=leg.max_participation,
                slippage_bps=_slippage_bps(leg),
            ))  # fmt: skip
        if stopped == "done" and any(leg.remaining for leg in self.legs):
            stopped = "dust"
        return UnwindResult(symbols=tuple(legs), slices=self.slice, stopped=stopped,
                            duration_ms=int((time.monotonic() - self.started) * 1000))  # fmt: skip


def _slippage_bps(leg: _Leg) -> float | None:
    """Return the children's cost against the mid at each slice, bps (positive: a cost)."""
    if leg.mid_value == 0:
        return None
    sign = 1 if leg.sell else -1
    return round(float(sign * (leg.mid_value - leg.fill_value) / leg.mid_value * 10_000), 3)


async def child_fills(dsn: str, prefix: str) -> dict[str, tuple[Decimal, Decimal, int]]:
    """Return (qty, notional, children) of a run's journaled child fills, per symbol."""
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT symbol, sum(qty) AS qty, sum(price * qty) AS notional,"
            " count(DISTINCT client_order_id) AS children FROM fills"
            " WHERE client_order_id LIKE $1 GROUP BY symbol",
            prefix.replace("_", r"\_") + "%",
        )
    finally:
        await connection.close()
    return {r["symbol"]: (Decimal(r["qty"]), Decimal(r["notional"]), int(r["children"]))
            for r in rows}  # fmt: skip
