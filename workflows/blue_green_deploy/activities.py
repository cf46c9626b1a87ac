"""Activities of the blue_green_deploy workflow: the platform, the engines, the journal.

Every method is idempotent, because a worker killed mid-activity retries it:
``start_standby`` asks the platform first and reuses a process already running the same
release; ``handoff`` reads the lease row first and only releases or acquires what is not
done yet, so the epoch moves once; ``rollback`` checks each engine's role before acting;
``retire_old`` stops a color that may already be stopped. Heavy imports (aiohttp,
asyncpg, the engine) happen inside the methods: the workflow module imports this one.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from temporalio import activity
from temporalio.exceptions import ApplicationError

from bot4.settings import Settings
from infra.platform import Color, LocalPlatform, Platform
from workflows.blue_green_deploy.models import (
    STEPS,
    BakeCheck,
    BakeCheckInput,
    EngineEndpoint,
    HandoffInput,
    HandoffResult,
    HealthInput,
    HealthResult,
    RetireInput,
    RollbackInput,
    RollbackResult,
    RolloutInput,
    RolloutPlan,
    StartStandbyInput,
    StartStandbyResult,
    WarmInput,
    WarmResult,
)

LEASE: Final = "trading"
COLORS: Final[tuple[Color, Color]] = ("blue", "green")
TAKEOVER_S: Final = 60.0  # acquire → leader includes reconciliation with the venue
POLL_S: Final = 0.05


@dataclass(frozen=True, kw_only=True, slots=True)
class DeployConfig:
    """What the activities reach: PostgreSQL, the engines' control servers, the platform.

    Attributes:
        engine_env: the engines' environment (``Settings.to_env()`` over os.environ).
    """

    dsn: str
    home: Path
    engines: tuple[EngineEndpoint, ...]
    control_token: str
    engine_env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DeployConfig:
        """Build the config of the worker's settings (both colors, the state folder)."""
        from engine.live.run import control_token

        engine = settings.engine
        return cls(
            dsn=settings.db.effective_dsn(),
            home=settings.home,
            engines=tuple(
                EngineEndpoint(color=color, url=f"http://{engine.host}:{port}", instance=color)
                for color, port in (
                    ("blue", engine.blue_control_port),
                    ("green", engine.green_control_port),
                )
            ),
            control_token=control_token(settings),
            engine_env={**os.environ, **settings.to_env()},
        )

    def endpoint(self, color: str) -> EngineEndpoint:
        """Return the endpoint of ``color``."""
        return next(e for e in self.engines if e.color == color)


def refuse(message: str, kind: str) -> ApplicationError:
    """Return a non-retryable business refusal (the workflow rolls back on it)."""
    return ApplicationError(message, type=kind, non_retryable=True)


def _color(name: str) -> Color:
    if name not in COLORS:
        raise refuse(f"color must be blue or green (got {name!r})", "InvalidInput")
    return "blue" if name == "blue" else "green"


def shadow_agreement(
    leader: list[dict[str, Any]], standby: list[dict[str, Any]], *, tolerance_bps: float
) -> float | None:
    """Return the share of the leader's desired quotes the standby matches.

    A leader quote (symbol, side, price) is matched when the standby wants the same symbol
    and side at a price within ``tolerance_bps`` of the leader's. None when the leader
    wants nothing (paused, or no quote passes its risk checks): nothing to compare.
    """
    if not leader:
        return None
    wanted = {(q["symbol"], q["side"]): int(q["price"]) for q in standby}
    matched = 0
    for q in leader:
        price = wanted.get((q["symbol"], q["side"]))
        if price is not None and abs(price - q["price"]) * 1e4 <= tolerance_bps * q["price"]:
            matched += 1
    return matched / len(leader)


def _named_quotes(status: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Return the quotes under ``key`` with symbol names (releases may order symbols apart)."""
    symbols = list((status.get("release") or {}).get("symbols") or [])
    named = []
    for q in status.get(key) or []:
        sid = int(q["symbol_id"])
        symbol = symbols[sid] if sid < len(symbols) else str(sid)
        named.append({"symbol": symbol, "side": q["side"], "price": int(q["price"])})
    return named


def health_problems(status: dict[str, Any] | None, *, max_lag_s: float) -> list[str]:
    """Return what is wrong with an engine's status for trading (empty: healthy)."""
    if status is None:
        return ["status unreadable"]
    problems = []
    state = status.get("trading_state")
    if state != "ACTIVE":
        problems.append(f"trading_state {state} ({status.get('conditions') or status.get('gate')})")
    lag = status.get("market_data_lag_s")
    if lag is None or float(lag) > max_lag_s:
        problems.append(f"market_data_lag_s {lag} > {max_lag_s}")
    return problems


class DeployActivities:
    """Holds the config and the platform; opens short-lived clients per call."""

    def __init__(self, config: DeployConfig, *, platform: Platform | None = None) -> None:
        self.config = config
        self.platform: Platform = platform or LocalPlatform(config.home, env=config.engine_env)

    # --- engine HTTP -------------------------------------------------------------------
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

    async def _ready(self, engine: EngineEndpoint) -> bool:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(f"{engine.url}/readyz") as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _admin(self, engine: EngineEndpoint, action: str, reason: str) -> int:
        """POST an admin action; return the HTTP status (0: unreachable or timed out)."""
        from engine.live.control import ControlUnreachableError, post_admin

        try:
            answer = await post_admin(
                engine.url,
                action,
                token=self.config.control_token,
                payload={"by": "blue_green_deploy", "reason": reason[:500]},
                timeout_s=max(self.config.timeout_s, 10.0),
            )
        except ControlUnreachableError as e:
            activity.logger.warning("%s %s unreachable: %s", engine.color, action, e)
            return 0
        if answer.status != 200:
            activity.logger.warning(
                "%s %s: HTTP %s %s", engine.color, action, answer.status, answer.body
            )
        return answer.status

    async def _wait_role(self, engine: EngineEndpoint, role: str, *, within_s: float) -> bool:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            status = await self._status(engine)
            if status is not None and status.get("role") == role:
                return True
            activity.heartbeat(f"{engine.color} waiting for {role}")
            await asyncio.sleep(POLL_S)
        return False

    # --- PostgreSQL ----------------------------------------------------------------------
    async def _lease(self) -> tuple[str | None, int, bool]:
        """Return (holder, epoch, held) of the trading lease."""
        import asyncpg

        connection = await asyncpg.connect(self.config.dsn, timeout=self.config.timeout_s)
        try:
            row = await connection.fetchrow(
                "SELECT holder, epoch, expires_at > now() AS held FROM engine_leases"
                " WHERE name = $1",
                LEASE,
            )
        finally:
            await connection.close()
        if row is None:
            return None, 0, False
        return row["holder"], int(row["epoch"]), bool(row["held"])

    async def _order_edge(self, instance: str, epoch: int, *, last: bool) -> tuple[Any, Any]:
        """Return (client_order_id, recorded_at) of the first or last order_new of an epoch."""
        import asyncpg

        order = "DESC" if last else "ASC"
        connection = await asyncpg.connect(self.config.dsn, timeout=self.config.timeout_s)
        try:
            row = await connection.fetchrow(
                "SELECT client_order_id, recorded_at FROM journal_events"
                " WHERE kind = 'order_new' AND instance = $1 AND epoch = $2"
                f" ORDER BY seq {order} LIMIT 1",
                instance,
                epoch,
            )
        finally:
            await connection.close()
        return (None, None) if row is None else (row["client_order_id"], row["recorded_at"])

    # --- steps ---------------------------------------------------------------------------
    @activity.defn(name="blue_green_deploy.plan")
    async def plan(self, request: RolloutInput) -> RolloutPlan:
        """Find the leading color and the idle one; validate the release; change nothing.

        Raises:
            ApplicationError: ``InvalidRelease`` (the manifest does not load),
                ``NoLeader`` (no color leads: nothing to hand over from),
                ``IdleColorBusy`` (the other color already runs: finish or stop it first).
        """
        from engine.live.release import Release, ReleaseError

        try:
            release = Release.load(Path(request.release_path))
        except (ReleaseError, OSError) as e:
            raise refuse(f"release {request.release_path}: {e}", "InvalidRelease") from e
        statuses = await asyncio.gather(*(self._status(e) for e in self.config.engines))
        leaders = [
            (engine, status)
            for engine, status in zip(self.config.engines, statuses, strict=True)
            if status is not None and status.get("role") == "leader"
        ]
        if len(leaders) != 1:
            raise refuse(
                f"expected exactly one leading color, found {[e.color for e, _ in leaders]}:"
                " start the desk's engine (bot4 engine run) before deploying",
                "NoLeader",
            )
        old, old_status = leaders[0]
        new = next(e for e in self.config.engines if e.color != old.color)
        idle = self.platform.status(_color(new.color))
        if idle.running:
            raise refuse(
                f"engine {new.color} already runs (pid {idle.pid}, release {idle.release_path}):"
                " stop it, or let the rollout that started it finish",
                "IdleColorBusy",
            )
        return RolloutPlan(
            version=release.version,
            release_path=request.release_path,
            old=EngineEndpoint(
                color=old.color,
                url=old.url,
                instance=str(old_status.get("instance") or old.instance),
            ),
            new=new,
            old_release=str((old_status.get("release") or {}).get("version")),
            old_epoch=int(old_status.get("epoch") or 0),
            steps=STEPS,
        )

    @activity.defn(name="blue_green_deploy.start_standby")
    async def start_standby(self, request: StartStandbyInput) -> StartStandbyResult:
        """Start the new color as a standby, unless it already runs this release.

        Raises:
            ApplicationError: ``IdleColorBusy`` when it runs another release.
        """
        color = _color(request.color)
        wanted = Path(request.release_path)
        current = self.platform.status(color)
        if current.running and current.pid is not None:
            if current.release_path == wanted:
                return StartStandbyResult(pid=current.pid, reused=True)
            raise refuse(
                f"engine {color} runs release {current.release_path}, not {wanted}",
                "IdleColorBusy",
            )
        started = self.platform.start(color, wanted, standby=True)
        assert started.pid is not None
        return StartStandbyResult(pid=started.pid, reused=False)

    @activity.defn(name="blue_green_deploy.warm_standby")
    async def warm_standby(self, request: WarmInput) -> WarmResult:
        """Wait until the standby is ready and deciding, then sample shadow agreement.

        Raises:
            ApplicationError: ``StandbyDied`` (the process exited), ``StandbyNotReady``
                (not ready, or the wrong release, within the timeout).
        """
        started = time.monotonic()
        deadline = started + request.timeout_s
        color = _color(request.new.color)
        last: dict[str, Any] | None = None
        while True:
            if not self.platform.status(color).running:
                raise refuse(
                    f"engine {color} exited while warming; see {self.platform.logs(color)}",
                    "StandbyDied",
                )
            last = await self._status(request.new)
            if (
                last is not None
                and last.get("role") == "standby"
                and int(last.get("decisions") or 0) > 0
                and await self._ready(request.new)
            ):
                break
            if time.monotonic() > deadline:
                raise refuse(
                    f"engine {color} not a ready standby within {request.timeout_s} s"
                    f" (last status role={None if last is None else last.get('role')})",
                    "StandbyNotReady",
                )
            activity.heartbeat("waiting for the standby")
            await asyncio.sleep(0.25)
        running = (last.get("release") or {}).get("version")
        if running != request.version:
            raise refuse(
                f"engine {color} runs release {running}, expected {request.version}",
                "StandbyNotReady",
            )
        ready_after = time.monotonic() - started
        agreements: list[float] = []
        pause = request.warm_s / max(request.samples, 1)
        for n in range(request.samples):
            await asyncio.sleep(pause)
            leader, standby = await asyncio.gather(
                self._status(request.old), self._status(request.new)
            )
            sample = None
            if leader is not None and standby is not None:
                sample = shadow_agreement(
                    _named_quotes(leader, "desired_quotes"),
                    _named_quotes(standby, "shadow_quotes"),
                    tolerance_bps=request.tolerance_bps,
                )
            elif standby is None:
                sample = 0.0  # a standby that stops answering agrees with nothing
            if sample is not None:
                agreements.append(sample)
            activity.heartbeat(f"shadow sample {n + 1}")
        return WarmResult(ready_after_s=round(ready_after, 3), agreements=tuple(agreements))

    @activity.defn(name="blue_green_deploy.health_gate")
    async def health_gate(self, request: HealthInput) -> HealthResult:
        """Check the standby: ready, role standby, ACTIVE, market data fresh (no changes)."""
        status = await self._status(request.new)
        problems = health_problems(status, max_lag_s=request.max_market_data_lag_s)
        if status is not None and status.get("role") != "standby":
            problems.append(f"role {status.get('role')}, expected standby")
        if not await self._ready(request.new):
            problems.append("/readyz is not 200")
        return HealthResult(problems=tuple(problems))

    @activity.defn(name="blue_green_deploy.handoff")
    async def handoff(self, request: HandoffInput) -> HandoffResult:
        """Fenced handoff: the old leader stops, cancels and releases; the new takes epoch+1.

        Reads the lease first, so a retry finishes the handoff instead of repeating it.

        Raises:
            ApplicationError: ``HandoffFailed`` (someone else leads, or the new color did
                not lead in time); a temporary failure is raised plainly and retried.
        """
        started = time.monotonic()
        holder, epoch, held = await self._lease()
        expected_new = request.old_epoch + 1
        if held and holder == request.old.instance and epoch == request.old_epoch:
            code = await self._admin(request.old, "release_leadership", request.reason)
            holder, epoch, held = await self._lease()
            if held and holder == request.old.instance:
                raise RuntimeError(f"{request.old.color} kept the lease (HTTP {code}); retrying")
        elif held and not (holder == request.new.instance and epoch == expected_new):
            raise refuse(
                f"the lease is held by {holder} at epoch {epoch}; expected {request.old.instance}"
                f" at {request.old_epoch} or {request.new.instance} at {expected_new}",
                "HandoffFailed",
            )
        if not (held and holder == request.new.instance):
            if epoch != request.old_epoch:
                raise refuse(
                    f"the lease moved to epoch {epoch} (holder {holder}) meanwhile", "HandoffFailed"
                )
            await self._admin(request.new, "acquire_leadership", request.reason)
        if not await self._wait_role(request.new, "leader", within_s=TAKEOVER_S):
            raise refuse(f"{request.new.color} did not lead within {TAKEOVER_S} s", "HandoffFailed")
        holder, new_epoch, held = await self._lease()
        if holder != request.new.instance or new_epoch != expected_new:
            raise refuse(
                f"after the handoff the lease is {holder} at epoch {new_epoch},"
                f" expected {request.new.instance} at {expected_new}",
                "HandoffFailed",
            )
        duration_ms = int((time.monotonic() - started) * 1000)
        deadline = time.monotonic() + request.first_order_timeout_s
        first: tuple[Any, Any] = (None, None)
        while time.monotonic() < deadline:
            first = await self._order_edge(request.new.instance, new_epoch, last=False)
            if first[0] is not None:
                break
            activity.heartbeat("waiting for the first order")
            await asyncio.sleep(0.1)
        last = await self._order_edge(request.old.instance, request.old_epoch, last=True)
        gap = None
        if first[1] is not None and last[1] is not None:
            gap = round((first[1] - last[1]).total_seconds() * 1000, 3)
        return HandoffResult(
            old_epoch=request.old_epoch,
            new_epoch=new_epoch,
            duration_ms=duration_ms,
            gap_ms=gap,
            old_last_order=last[0],
            new_first_order=first[0],
            old_last_order_at=last[1],
            new_first_order_at=first[1],
        )

    @activity.defn(name="blue_green_deploy.bake_check")
    async def bake_check(self, request: BakeCheckInput) -> BakeCheck:
        """Read the new leader's health and both colors' PnL (no changes)."""
        new, old = await asyncio.gather(self._status(request.new), self._status(request.old))
        problems = health_problems(new, max_lag_s=request.max_market_data_lag_s)
        if new is not None:
            if new.get("role") != "leader" or new.get("epoch") != request.new_epoch:
                problems.append(
                    f"role {new.get('role')} epoch {new.get('epoch')},"
                    f" expected leader at {request.new_epoch}"
                )
            journal_lag = new.get("journal_lag_s")
            if journal_lag is not None and float(journal_lag) > request.max_journal_lag_s:
                problems.append(f"journal_lag_s {journal_lag} > {request.max_journal_lag_s}")
            unknown = int((new.get("orders") or {}).get("unknown") or 0)
            if unknown > request.max_unknown_orders:
                problems.append(f"{unknown} unknown orders > {request.max_unknown_orders}")
            if new.get("recovery_ok") is False:
                problems.append("startup reconciliation mismatch")
        return BakeCheck(
            problems=tuple(problems),
            new_pnl=None if new is None else float(new.get("pnl") or 0.0),
            old_pnl=None if old is None else float(old.get("pnl") or 0.0),
        )

    @activity.defn(name="blue_green_deploy.retire_old")
    async def retire_old(self, request: RetireInput) -> bool:
        """Stop the old color (a standby by now); return whether it was running."""
        return await asyncio.to_thread(self.platform.stop, _color(request.color))

    async def _resume_after_takeover(self, request: RollbackInput) -> list[str]:
        """Resume the old color unless its reconciliation found a mismatch.

        A mismatch starts a leader HALTED on purpose: an operator must reconcile first,
        and a rollback must not raise that gate behind their back.
        """
        status = await self._status(request.old) or {}
        if status.get("recovery_ok") is False:
            return [f"{request.old.color} leads HALTED: its reconciliation found a mismatch;"
                    " reconcile, then bot4 engine resume"]  # fmt: skip
        if status.get("trading_state") == "ACTIVE" and not status.get("paused"):
            return []
        code = await self._admin(request.old, "resume", f"rollback: {request.reason}")
        return [f"{request.old.color} resumed"] if code == 200 else []

    @activity.defn(name="blue_green_deploy.rollback")
    async def rollback(self, request: RollbackInput) -> RollbackResult:
        """Give the lease back to the old color, resume it, stop the new color.

        Each stage checks first, so a retry or a rollback before the handoff does only
        what is needed.

        Raises:
            RuntimeError: the old color did not lead again (retried; the operator is paged
                by the workflow's failure when retries run out).
        """
        actions = []
        new_status = await self._status(request.new)
        if new_status is not None and new_status.get("role") == "leader":
            await self._admin(request.new, "release_leadership", f"rollback: {request.reason}")
            actions.append(f"{request.new.color} released the lease")
            await self._wait_role(request.new, "standby", within_s=30)
        old_status = await self._status(request.old)
        if old_status is None:
            raise RuntimeError(f"{request.old.color} is unreachable; cannot take the lease back")
        if old_status.get("role") != "leader":
            await self._admin(request.old, "acquire_leadership", f"rollback: {request.reason}")
            if not await self._wait_role(request.old, "leader", within_s=TAKEOVER_S):
                raise RuntimeError(f"{request.old.color} did not lead again within {TAKEOVER_S} s")
            actions.append(f"{request.old.color} acquired the lease")
            actions.extend(await self._resume_after_takeover(request))
        stopped = await asyncio.to_thread(self.platform.stop, _color(request.new.color))
        if stopped:
            actions.append(f"{request.new.color} stopped")
        old_status = await self._status(request.old)
        holder, epoch, held = await self._lease()
        return RollbackResult(
            old_leads=bool(
                old_status and old_status.get("role") == "leader" and holder == request.old.instance
            ),
            old_epoch=epoch if held else None,
            new_stopped=not self.platform.status(_color(request.new.color)).running,
            actions=tuple(actions),
        )
