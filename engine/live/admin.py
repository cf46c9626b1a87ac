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
from engine.live.engine import LiveEngine

log = structlog.get_logger(__name__)


class EngineAdmin:
    """The control server's view of one engine."""

    def __init__(self, engine: LiveEngine) -> None:
        self.engine = engine
        self._takeover: asyncio.Future[None] | None = None

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
            "model_version": engine.release.model.version,
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

    async def load_model(self, version: str, *, by: str, reason: str) -> dict[str, object]:
        """Refuse: model rollouts go through a new release (issue 8 adds the registry)."""
        raise ValueError(
            f"model {version!r}: this engine loads models only through a release manifest;"
            " deploy a release that names it"
        )

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
