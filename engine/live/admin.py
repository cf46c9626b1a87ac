"""The engine's control surface: what ``/status`` shows and what admins may do.

Implements :class:`engine.live.control.EngineControl` over a :class:`LiveEngine`.
``status`` and ``ready`` run on the safety thread and only read; the admin coroutines run
on the engine's loop. A halt is not here: it lives on the safety thread
(:mod:`engine.live.safety`) so it works while this loop is stuck.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import structlog

from engine.dtypes import ACTIVE, TRADING_STATE_NAMES
from engine.live import children
from engine.live.engine import LiveEngine
from engine.live.model_admin import FetchModel, ModelAdmin

log = structlog.get_logger(__name__)


class EngineAdmin(ModelAdmin):
    """The control server's view of one engine (model actions: :class:`ModelAdmin`)."""

    def __init__(self, engine: LiveEngine, *, fetch_model: FetchModel | None = None) -> None:
        self.engine = engine
        self.fetch_model = fetch_model
        self._takeover: asyncio.Future[None] | None = None
        self._children = asyncio.Lock()

    def status(self) -> dict[str, object]:
        """Return the status snapshot (called from the safety thread: reads only)."""
        engine = self.engine
        lag = engine.market_data_lag_s()
        manager = engine.manager
        snapshot = manager.snapshot() if manager is not None else None
        return {
            "instance": engine.config.instance,
            "color": engine.config.color,
            "release": engine.release.describe(),
            "role": engine.role,
            "epoch": engine.epoch,
            "trading_state": TRADING_STATE_NAMES[engine.effective_state()],
            "gate": engine.gate.name,
            "gate_changes": [
                {"from": c.names[0], "to": c.names[1], "reason": c.reason, "by": c.by}
                for c in engine.gate.history[-5:]
            ],
            "paused": engine.paused,
            "conditions": engine.gate.holds,
            "model_version": engine.decider.models.active.version,
            "model": engine.decider.models.status(),
            "positions": engine.decider.positions_lots(),
            "pnl": round(engine.decider.equity(), 6),
            "market_data_lag_s": None if lag is None else round(lag, 3),
            "journal_lag_s": engine.journal_lag_s(),
            "orders": None if snapshot is None else {
                "open": snapshot.open_orders, "unknown": snapshot.unknown_orders,
                "fills_recorded": snapshot.fills_recorded,
            },
            "decisions": engine.decisions,
            "kernel": engine.decider.counters(),
            "events": engine.decider.events_decided,
            "shadow_quotes": engine.shadow_quotes if engine.role != "leader" else [],
            "desired_quotes": engine.shadow_quotes,
            "recovery_ok": None if engine.recovery is None else engine.recovery.ok,
            "reduced": sorted(engine.reduced),
        }  # fmt: skip

    def ready(self) -> bool:
        """Return whether every symbol has a valid book (warm)."""
        return all(self.engine.decider.book_valid(i) for i in range(len(self.engine.instruments)))

    async def pause(self, *, by: str, reason: str) -> dict[str, object]:
        """Stop opening risk (quotes withdrawn); positions and the lease are kept."""
        self.engine.paused = True
        log.info("paused", by=by, reason=reason)
        return {"paused": True}

    async def resume(self, *, by: str, reason: str) -> dict[str, object]:
        """Unpause and raise the gate to ACTIVE (an operator's decision)."""
        self.engine.paused = False
        self.engine.gate.raise_to(ACTIVE, reason=reason, by=by)
        self.engine.decider.reset_trading_state(ACTIVE)
        return {"paused": False, "trading_state": self.engine.gate.name}

    async def drain(self, *, by: str, reason: str) -> dict[str, object]:
        """Pause, cancel resting orders and wait for in-flight sends to settle."""
        self.engine.paused = True
        if self.engine.quotes is not None:
            await self.engine.quotes.settle()
        canceled: tuple[str, ...] = ()
        if self.engine.manager is not None:
            canceled = (await self.engine.manager.cancel_all()).canceled
        return {"paused": True, "canceled": list(canceled)}

    async def release_leadership(self, *, by: str, reason: str) -> dict[str, object]:
        """Hand the lease over: stop sending, cancel, release; stay a shadow."""
        self.engine.want_lead = False
        await self.engine.step_down(f"released by {by}: {reason}", release=True)
        return {"role": self.engine.role}

    async def acquire_leadership(self, *, by: str, reason: str) -> dict[str, object]:
        """Contend for the lease again (takes it at once when it is free)."""
        self.engine.want_lead = True
        # shielded: a control call that times out (reconciliation can be slow) must not
        # cancel a takeover halfway, with the lease taken and the leader's parts half built
        self._takeover = asyncio.ensure_future(self.engine.try_to_lead())  # keeps a reference
        await asyncio.shield(self._takeover)
        return {"role": self.engine.role, "epoch": self.engine.epoch}

    async def flatten(self, *, by: str, reason: str) -> dict[str, object]:
        """Close every position with reduce-only IOC orders at the touch."""
        if self.engine.manager is None:
            raise ValueError("not the leader: only the leader trades")
        self.engine.paused = True
        sent = []
        for sid, instrument in enumerate(self.engine.instruments):
            lots = self.engine.decider.positions_lots()[instrument.symbol]
            mid = self.engine.decider.mid_ticks(sid)
            if lots == 0 or mid <= 0:
                continue
            side: Literal["buy", "sell"] = "sell" if lots > 0 else "buy"
            band = int(mid * 0.005) + 1  # cross the spread by up to 50 bps to get done
            price = int(mid) - band if lots > 0 else int(mid) + band
            order = await self.engine.manager.submit(
                symbol=instrument.symbol, side=side, type="limit",
                amount=instrument.lots_to_qty(abs(lots)),
                price=instrument.ticks_to_price(price), time_in_force="IOC",
                reduce_only=True,
            )  # fmt: skip
            sent.append(order.client_order_id)
        return {"paused": True, "orders": sent}

    # --- liquidation (engine.live.children) ---------------------------------------------
    async def reduce(
        self, symbols: str, *, lift_halt: int = 0, by: str, reason: str
    ) -> dict[str, object]:
        """Take symbols (comma-separated, ``*`` all) out of the strategy; their positions."""
        chosen = children.parse_symbols(self.engine, symbols)
        return await children.reduce(
            self.engine, chosen, lift_halt=bool(lift_halt), by=by, reason=reason
        )

    async def restore(self, symbols: str, *, by: str, reason: str) -> dict[str, object]:
        """Give symbols back to the strategy."""
        chosen = children.parse_symbols(self.engine, symbols)
        return await children.restore(self.engine, chosen, by=by, reason=reason)

    async def child_order(
        self,
        client_order_id: str,
        symbol: str,
        side: str,
        qty: str,
        limit_price: str,
        *,
        by: str,
        reason: str,
    ) -> dict[str, object]:
        """Send one reduce-only IOC child with the given id (idempotent by that id)."""
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be buy or sell (got {side!r})")
        return await children.child_order(
            self.engine, self._children, client_order_id=client_order_id, symbol=symbol,
            side="buy" if side == "buy" else "sell", qty=qty, limit_price=limit_price,
        )  # fmt: skip

    async def liquidation_check(self, symbols: str, *, by: str, reason: str) -> dict[str, object]:
        """Report whether symbols are flat in the journal and at the venue."""
        chosen = children.parse_symbols(self.engine, symbols)
        return await children.liquidation_check(self.engine, chosen)
