"""The engine's control surface: what ``/status`` shows and what admins may do.

Implements :class:`engine.live.control.EngineControl` over a :class:`LiveEngine`.
``status`` and ``ready`` run on the safety thread and only read; the admin coroutines run
on the engine's loop. A halt is not here: it lives on the safety thread
(:mod:`engine.live.safety`) so it works while this loop is stuck.

What a database failover needs (the ``dr_failover`` workflow): ``hold`` / ``unhold`` an
operator condition that keeps the engine at REDUCING while the switchover runs, the
``journal`` object of ``/status`` (health, backlog, outages: the RTO as the engine saw
it) and ``journal_acks`` (what it saw acknowledged: the RPO is what of it is missing on
the new primary).
"""

from __future__ import annotations

import asyncio
from typing import Final, Literal

import structlog

from engine.dtypes import ACTIVE, REDUCING, TRADING_STATE_NAMES
from engine.journal import JournalEvent, JournalKind
from engine.live import children
from engine.live.engine import LiveEngine
from engine.live.gate import ENGINE_CONDITIONS
from engine.live.model_admin import FetchModel, ModelAdmin

log = structlog.get_logger(__name__)

STATUS_OUTAGES: Final = 5
"""Journal outages ``/status`` shows (the latest, the one in progress last)."""


class EngineAdmin(ModelAdmin):
    """The control server's view of one engine (model actions: :class:`ModelAdmin`)."""

    def __init__(self, engine: LiveEngine, *, fetch_model: FetchModel | None = None) -> None:
        self.engine = engine
        self.fetch_model = fetch_model
        self._takeover: asyncio.Future[None] | None = None
        self._children = asyncio.Lock()
        self._journaling: set[asyncio.Task[None]] = set()

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
                "fills_recorded": snapshot.fills_recorded, "in_memory": snapshot.in_memory,
                "forgotten": snapshot.forgotten,
            },
            "decisions": engine.decisions,
            "kernel": engine.decider.counters(),
            # the warm-up's seconds (None: still warming); kernels compiled after it
            "kernels": {"warm_s": engine.kernels_warm_s,
                        "compiled_late": list(engine.kernels_compiled_late)},
            "events": engine.decider.events_decided,
            "shadow_quotes": engine.shadow_quotes if engine.role != "leader" else [],
            "desired_quotes": engine.shadow_quotes,
            "recovery_ok": None if engine.recovery is None else engine.recovery.ok,
            "reduced": sorted(engine.reduced),
            "journal": self._journal_status(),
        }  # fmt: skip

    def _journal_status(self) -> dict[str, object]:
        """Return the journal as this engine sees it (a standby: since it last led)."""
        engine = self.engine
        committer = engine.committer
        outages = engine.journal_outages
        return {
            # a standby writes nothing: healthy unless an outage of its last leadership is open
            "healthy": outages.failing_since is None if committer is None else committer.healthy,
            "backlog": 0 if committer is None else committer.backlog,
            "failing_since": outages.failing_since,
            "outages": [o.as_json() for o in outages.recent(STATUS_OUTAGES)],
            "acked_total": engine.journal_acks.total,
            # the writer task died of a bug: nothing more is written this term
            "died": None if committer is None or committer.died is None else str(committer.died),
        }

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

    # --- database failover (workflows.dr_failover) --------------------------------------
    async def hold(self, condition: str, *, by: str, reason: str) -> dict[str, object]:
        """Hold the engine at REDUCING under ``condition`` until :meth:`unhold` (idempotent).

        Takes effect at once, whatever the journal does; the leader also journals it
        (queued, not waited for: a hold must work while the database is away).

        Raises:
            ValueError: ``condition`` is one the engine manages itself.
        """
        _check_operator_condition(condition)
        changed = self.engine.gate.hold(condition, REDUCING)
        return self._held(condition, held=True, changed=changed, by=by, reason=reason)

    async def unhold(self, condition: str, *, by: str, reason: str) -> dict[str, object]:
        """End the operator hold ``condition`` (idempotent: no such hold is not an error).

        Raises:
            ValueError: ``condition`` is one the engine manages itself.
        """
        _check_operator_condition(condition)
        changed = self.engine.gate.release(condition)
        return self._held(condition, held=False, changed=changed, by=by, reason=reason)

    def _held(
        self, condition: str, *, held: bool, changed: bool, by: str, reason: str
    ) -> dict[str, object]:
        engine = self.engine
        event = "hold" if held else "unhold"
        log.warning(f"operator_{event}", condition=condition, changed=changed, by=by,
                    reason=reason)  # fmt: skip
        body: dict[str, object] = {event: condition, "by": by, "reason": reason}
        if held:
            body["state"] = TRADING_STATE_NAMES[REDUCING]
        journaled = changed and self._journal_soon(body)
        return {
            "condition": condition, "held": held, "changed": changed, "journaled": journaled,
            "trading_state": TRADING_STATE_NAMES[engine.effective_state()],
            "conditions": engine.gate.holds,
        }  # fmt: skip

    def _journal_soon(self, body: dict[str, object]) -> bool:
        """Queue a TRADING_STATE event on the leader's journal; False: not the leader."""
        committer = self.engine.committer
        if committer is None:
            return False
        event = JournalEvent(kind=JournalKind.TRADING_STATE, body=body)
        task = asyncio.create_task(committer.record([event]))
        self._journaling.add(task)
        task.add_done_callback(self._journaled)
        return True

    def _journaled(self, task: asyncio.Task[None]) -> None:
        self._journaling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("operator_hold_not_journaled", error=str(task.exception()))

    async def journal_acks(self, since: float, *, by: str, reason: str) -> dict[str, object]:
        """Return the event ids and fill keys the journal acknowledged at or after ``since``.

        ``since`` is epoch seconds. Acknowledgements outlive a leadership (a failover
        that outlasts the lease makes the engine step down and lead again); a standby that
        never led answers empty lists. ``truncated``: the ring (200,000 entries) had
        already let go of some: the answer is incomplete.
        """
        acked = self.engine.journal_acks.since(since)
        return {
            "event_ids": [str(i) for i in acked.event_ids],
            "fills": [list(key) for key in acked.fills],
            "truncated": acked.truncated,
            "leader": self.engine.role == "leader",
        }


def _check_operator_condition(condition: str) -> None:
    """Raise ValueError if ``condition`` is one of :data:`ENGINE_CONDITIONS`."""
    if condition in ENGINE_CONDITIONS:
        raise ValueError(
            f"condition {condition!r} is the engine's own (it sets and clears"
            f" {sorted(ENGINE_CONDITIONS)} itself); hold under another name"
        )
