"""Activities of the model_rollout workflow: the registry, the artifact store, the engine.

Every method is idempotent (a worker killed mid-activity retries it): registry moves are
no-ops when the version is there already, the engine's model actions are idempotent
(shadowing the same version again restarts its statistics, promoting the active version
does nothing, aborting what is not there answers ``undone: null``). Heavy imports happen
inside the methods: the workflow module imports this one.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from temporalio import activity
from temporalio.exceptions import ApplicationError

from bot4.settings import Settings, StorageSettings
from workflows.model_rollout.models import (
    EngineEndpoint,
    ModelPlan,
    ModelRolloutInput,
    Observation,
    ObserveInput,
    RollbackInput,
    RollbackResult,
    StageInput,
    StageResult,
    VerifyInput,
    VerifyResult,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from engine.models.registry import ModelRegistry

LEASE: Final = "trading"


@dataclass(frozen=True, kw_only=True)
class ModelRolloutConfig:
    """What the activities reach: PostgreSQL, the object store, the engines."""

    dsn: str
    storage: StorageSettings
    engines: tuple[EngineEndpoint, ...]
    control_token: str
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRolloutConfig:
        """Build the config of the worker's settings (both colors)."""
        from engine.live.run import control_token

        engine = settings.engine
        return cls(
            dsn=settings.db.effective_dsn(),
            storage=settings.storage,
            engines=tuple(
                EngineEndpoint(color=color, url=f"http://{engine.host}:{port}", instance=color)
                for color, port in (
                    ("blue", engine.blue_control_port),
                    ("green", engine.green_control_port),
                )
            ),
            control_token=control_token(settings),
        )


def refuse(message: str, kind: str) -> ApplicationError:
    """Return a non-retryable business refusal (the workflow rolls back on it)."""
    return ApplicationError(message, type=kind, non_retryable=True)


class ModelRolloutActivities:
    """Holds the config; opens short-lived clients per call."""

    def __init__(self, config: ModelRolloutConfig) -> None:
        self.config = config

    @asynccontextmanager
    async def _registry(self) -> AsyncIterator[ModelRegistry]:
        import asyncpg

        from engine.models.registry import ModelRegistry

        pool = await asyncpg.create_pool(self.config.dsn, min_size=1, max_size=2)
        try:
            yield ModelRegistry(pool)
        finally:
            await pool.close()

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

    async def _admin(
        self, engine: EngineEndpoint, action: str, **payload: object
    ) -> dict[str, Any]:
        """POST an admin action; return its result. Refuses on a 4xx/5xx answer.

        Raises:
            ApplicationError: ``EngineRefused`` (non-retryable) for a refusal, a plain
                (retryable) error when the engine did not answer.
        """
        from engine.live.control import ControlUnreachableError, post_admin

        try:
            answer = await post_admin(
                engine.url,
                action,
                token=self.config.control_token,
                payload=payload,
                timeout_s=self.config.timeout_s,
            )
        except ControlUnreachableError as e:
            raise ApplicationError(f"{engine.color} {action}: unreachable: {e}") from e
        if answer.status != 200:
            error = answer.body.get("error", answer.body)
            raise refuse(f"{engine.color} {action}: HTTP {answer.status}: {error}", "EngineRefused")
        result = answer.body.get("result")
        return result if isinstance(result, dict) else {}

    # --- steps ---------------------------------------------------------------------------
    @activity.defn(name="model_rollout.plan")
    async def plan(self, request: ModelRolloutInput) -> ModelPlan:
        """Find the leading engine and the version's registry row; change nothing.

        Raises:
            ApplicationError: ``NotRegistered``, ``NotRollable`` (not ``registered``),
                ``NoLeader`` (no engine leads: nothing to roll out on).
        """
        from engine.models.registry import UnknownModelError

        async with self._registry() as registry:
            try:
                record = await registry.get(request.version)
            except UnknownModelError as e:
                raise refuse(str(e), "NotRegistered") from e
            active = await registry.active()
            holder = await registry.pool.fetchval(
                "SELECT holder FROM engine_leases WHERE name = $1 AND expires_at > now()", LEASE
            )
        if record.state != "registered" and not request.dry_run:
            raise refuse(
                f"model {request.version} is {record.state}; only a registered version rolls"
                " out (a version rolls out once: train and register a new one)",
                "NotRollable",
            )
        engine = next((e for e in self.config.engines if e.instance == holder), None)
        if engine is None:
            raise refuse(f"no engine leads (lease holder {holder!r})", "NoLeader")
        status = await self._status(engine)
        if status is None:
            raise ApplicationError(f"{engine.color}: status unreadable")
        return ModelPlan(
            version=record.version,
            engine=engine,
            engine_model=str(status.get("model_version")),
            registry_active=None if active is None else active.version,
            sha256=record.sha256,
            artifact_uri=record.artifact_uri,
            state=record.state,
        )

    @activity.defn(name="model_rollout.verify_checksum")
    async def verify_checksum(self, request: VerifyInput) -> VerifyResult:
        """Download the artifact and check its SHA-256 against the registry's.

        Raises:
            ApplicationError: ``ChecksumMismatch`` (non-retryable) for a corrupted,
                replaced or unreadable artifact.
        """
        from engine.models.artifact import ModelArtifactError
        from infra.model_store import model_store

        async with self._registry() as registry:
            record = await registry.get(request.version)
        store = await asyncio.to_thread(model_store, self.config.storage)
        try:
            weights = await asyncio.to_thread(
                store.fetch, record.artifact_uri, sha256=record.sha256
            )
        except ModelArtifactError as e:
            raise refuse(str(e), "ChecksumMismatch") from e
        return VerifyResult(
            sha256=record.sha256,
            artifact_sha256=weights.checksum(),
            artifact_uri=record.artifact_uri,
        )

    @activity.defn(name="model_rollout.start_shadow")
    async def start_shadow(self, request: StageInput) -> StageResult:
        """Registry ``registered → shadow``; the engine fetches and shadows the version."""
        async with self._registry() as registry:
            record = await registry.transition(
                request.version, to="shadow", by=request.by, reason=request.reason
            )
        await self._admin(
            request.engine,
            "model_shadow",
            version=request.version,
            by=request.by,
            reason=request.reason[:500] or "shadow",
        )
        return StageResult(state=record.state)

    @activity.defn(name="model_rollout.start_canary")
    async def start_canary(self, request: StageInput) -> StageResult:
        """Registry ``shadow → canary``; the engine runs the blend (journaled)."""
        async with self._registry() as registry:
            record = await registry.transition(
                request.version, to="canary", by=request.by, reason=request.reason
            )
        result = await self._admin(
            request.engine,
            "model_canary",
            version=request.version,
            fraction=request.fraction,
            by=request.by,
            reason=request.reason[:500] or "canary",
        )
        change = result.get("change") or {}
        return StageResult(
            state=record.state,
            events_decided=change.get("events_decided"),
            journaled=change.get("journaled"),
        )

    @activity.defn(name="model_rollout.promote")
    async def promote(self, request: StageInput) -> StageResult:
        """The engine hot-swaps the candidate in; the registry makes it active."""
        result = await self._admin(
            request.engine,
            "model_promote",
            version=request.version,
            by=request.by,
            reason=request.reason[:500] or "promote",
        )
        # a retried promote finds the version active: the swap's record is its last change
        change = result.get("change") or result.get("last_change") or {}
        async with self._registry() as registry:
            record, retired = await registry.promote(
                request.version, by=request.by, reason=request.reason or "promoted"
            )
        return StageResult(
            state=record.state,
            events_decided=change.get("events_decided"),
            journaled=change.get("journaled"),
            retired=retired,
        )

    @activity.defn(name="model_rollout.observe")
    async def observe(self, request: ObserveInput) -> Observation:
        """Watch the engine for ``period_s`` (heartbeats); stop early at the first problem."""
        first = await self._status(request.engine)
        if first is None:
            return Observation(rounds=0, problems=("status unreadable",))
        events0 = int(first.get("events") or 0)
        orders0 = _orders(first)
        deadline = time.monotonic() + request.period_s
        rounds, status = 0, first
        problems: list[str] = []
        while True:
            rounds += 1
            seen = await self._status(request.engine)
            problems = _problems(seen, request)
            activity.heartbeat(rounds)
            if seen is not None:
                status = seen
            if problems or time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(request.interval_s, max(0.0, deadline - time.monotonic())))
        shadow = (status.get("model") or {}).get("shadow") or {}
        orders1 = _orders(status)
        return Observation(
            rounds=rounds,
            problems=tuple(problems),
            samples=int(shadow.get("samples") or 0),
            agreement=shadow.get("agreement"),
            mean_abs_drift_ticks=shadow.get("mean_abs_drift_ticks"),
            relative_drift=shadow.get("relative_drift"),
            latency_p50_us=shadow.get("latency_p50_us"),
            latency_p99_us=shadow.get("latency_p99_us"),
            events_advanced=int(status.get("events") or 0) - events0,
            orders_during=None if orders0 is None or orders1 is None else orders1 - orders0,
        )

    @activity.defn(name="model_rollout.rollback")
    async def rollback(self, request: RollbackInput) -> RollbackResult:
        """Undo the version on the engine, reject it, and restore the previous active."""
        result = await self._admin(
            request.engine,
            "model_abort",
            version=request.version,
            by=request.by,
            reason=request.reason[:500] or "rollback",
        )
        async with self._registry() as registry:
            record = await registry.get(request.version)
            if record.state != "rejected":
                record = await registry.transition(
                    request.version, to="rejected", by=request.by, reason=request.reason
                )
            restored = None
            if request.restore is not None:
                again = await registry.get(request.restore)
                if again.state == "retired":
                    await registry.transition(
                        request.restore,
                        to="active",
                        by=request.by,
                        reason=f"rollback of {request.version}",
                    )
                    restored = request.restore
        return RollbackResult(
            undone=result.get("undone"),
            engine_model=result.get("active"),
            state=record.state,
            restored=restored,
        )


def _orders(status: dict[str, Any]) -> int | None:
    kernel = status.get("kernel") or {}
    value = kernel.get("orders")
    return None if value is None else int(value)


def _problems(status: dict[str, Any] | None, request: ObserveInput) -> list[str]:
    """Return what is wrong with the engine for this stage (empty: healthy)."""
    if status is None:
        return ["status unreadable"]
    problems = []
    if status.get("role") != "leader":
        problems.append(f"role {status.get('role')} (the engine no longer leads)")
    if status.get("trading_state") != "ACTIVE":
        problems.append(f"trading_state {status.get('trading_state')}")
    lag = status.get("market_data_lag_s")
    if lag is None or float(lag) > request.max_market_data_lag_s:
        problems.append(f"market_data_lag_s {lag} > {request.max_market_data_lag_s}")
    unknown = (status.get("orders") or {}).get("unknown") or 0
    if int(unknown) > request.max_unknown_orders:
        problems.append(f"unknown orders {unknown} > {request.max_unknown_orders}")
    model = status.get("model") or {}
    if request.expect == "candidate" and model.get("candidate") != request.version:
        problems.append(
            f"the engine's candidate is {model.get('candidate')}, not {request.version}"
            " (restarted?)"
        )
    if request.expect == "active" and model.get("active") != request.version:
        problems.append(f"the engine runs {model.get('active')}, not {request.version}")
    return problems
