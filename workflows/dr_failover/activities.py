"""Activities of the dr_failover workflow: the PostgreSQL pair, the engines, the checks.

The pair is driven through :class:`infra.postgres.cluster.PgCluster` (synchronous: the
binaries and psql run in a thread). Every step is idempotent, so a retry after a worker
crash is harmless: stopping a stopped node reads its last checkpoint again, promoting the
primary changes nothing, rejoining a streaming standby only checks it, a hold is a named
gate condition set twice. Heavy imports happen inside the methods (the workflow imports
this module; the sandbox must stay light).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from bot4.settings import DatabaseSettings, Settings, StorageSettings
from workflows.dr_failover.models import (
    FAILOVER_STEPS,
    HOLD_CONDITION,
    SWITCHOVER_STEPS,
    ClusterState,
    DetectInput,
    DetectResult,
    DrFailoverInput,
    DrFailoverResult,
    DrPlan,
    HoldInput,
    HoldResult,
    PromoteResult,
    RejoinInput,
    RejoinResult,
    ReplayInput,
    SteadyState,
    SteadyStateInput,
    StopPrimaryResult,
    VerifyInput,
    VerifyResult,
)
from workflows.engines import EngineCallError, EngineDirectory

if TYPE_CHECKING:
    from infra.postgres.cluster import PgCluster


@dataclass(frozen=True, kw_only=True, slots=True)
class DrFailoverConfig:
    """What the activities reach: the pair's files and ports, its DSN, the engines."""

    home: Path
    db: DatabaseSettings
    dsn: str
    engines: EngineDirectory
    reports_uri: str | None = None
    storage: StorageSettings | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DrFailoverConfig:
        """Build the config of the worker's settings."""
        return cls(
            home=settings.home,
            db=settings.db,
            dsn=settings.db.effective_dsn(),
            engines=EngineDirectory.from_settings(settings),
            reports_uri=settings.flows.reports_uri,
            storage=settings.storage,
        )


def refuse(message: str, kind: str) -> ApplicationError:
    """Return a non-retryable refusal (nothing was changed, or nothing more may be)."""
    return ApplicationError(message, type=kind, non_retryable=True)


class DrFailoverActivities:
    """Holds the config; builds the cluster handle per call (cheap: paths and ports)."""

    def __init__(self, config: DrFailoverConfig) -> None:
        self.config = config

    def _cluster(self) -> PgCluster:
        from infra.postgres.cluster import PgCluster
        from infra.stack.paths import StackPaths
        from infra.stack.postgres import PostgresPair

        pair = PostgresPair(paths=StackPaths(self.config.home), settings=self.config.db)
        return PgCluster(pair)

    async def _state(self, max_lag_bytes: int) -> ClusterState:
        cluster = self._cluster()
        roles, replication, problems = await asyncio.to_thread(
            lambda: (cluster.roles(), cluster.replication(), cluster.preconditions(max_lag_bytes))
        )
        return ClusterState(
            roles=dict(roles),
            primary=replication.primary,
            standby=replication.standby,
            streaming=replication.streaming,
            sync_state=replication.sync_state,
            lag_bytes=replication.lag_bytes,
            problems=tuple(problems),
        )

    @activity.defn(name="dr_failover.plan")
    async def plan(self, request: DrFailoverInput) -> DrPlan:
        """Read the pair and the engines; change nothing."""
        state = await self._state(request.max_lag_bytes)
        statuses = await self.config.engines.statuses()
        leader = next((e.color for e, s in statuses if s and s.get("role") == "leader"), None)
        return DrPlan(
            mode=request.mode,
            steps=SWITCHOVER_STEPS if request.mode == "switchover" else FAILOVER_STEPS,
            cluster=state,
            engines=tuple(e.color for e, s in statuses if s is not None),
            leader=leader,
            started_at_epoch=time.time(),
        )

    @activity.defn(name="dr_failover.preconditions")
    async def preconditions(self, max_lag_bytes: int) -> ClusterState:
        """Check a planned switchover may go ahead; refuse (changing nothing) if not."""
        state = await self._state(max_lag_bytes)
        if state.problems:
            raise refuse("switchover refused, nothing changed: " + "; ".join(state.problems),
                         "PreconditionFailed")  # fmt: skip
        return state

    @activity.defn(name="dr_failover.hold_engines")
    async def hold_engines(self, request: HoldInput) -> HoldResult:
        """Hold (or release) every answering engine at REDUCING under this run's condition.

        An engine that does not answer is reported, not waited for: a switchover must
        not depend on a standby engine, and the leader's own journal condition lowers it
        anyway while the database is away.
        """
        directory = self.config.engines
        action = "hold" if request.hold else "unhold"
        held, unreachable = [], []
        for engine, status in await directory.statuses():
            if status is None:
                unreachable.append(engine.color)
                continue
            try:
                await directory.admin(engine, action, {
                    "condition": HOLD_CONDITION, "by": request.requested_by,
                    "reason": request.reason})  # fmt: skip
            except EngineCallError as e:
                activity.logger.warning("%s %s failed: %s", action, engine.color, e)
                unreachable.append(engine.color)
                continue
            held.append(engine.color)
        return HoldResult(held=tuple(held), unreachable=tuple(unreachable))

    @activity.defn(name="dr_failover.stop_primary")
    async def stop_primary(self, node: str) -> StopPrimaryResult:
        """Stop the primary cleanly (its shutdown checkpoint reaches the standby)."""
        cluster = self._cluster()
        lsn = await asyncio.to_thread(cluster.stop_primary_cleanly, node)
        return StopPrimaryResult(node=node, final_lsn=str(lsn), stopped_at_epoch=time.time())

    @activity.defn(name="dr_failover.start_node")
    async def start_node(self, node: str) -> None:
        """Start a stopped node as what it is (the compensation of an unfinished switchover)."""
        cluster = self._cluster()
        await asyncio.to_thread(cluster.start_node, node)

    @activity.defn(name="dr_failover.wait_replayed")
    async def wait_replayed(self, request: ReplayInput) -> None:
        """Wait until the standby replayed the old primary's last checkpoint."""
        cluster = self._cluster()
        await asyncio.to_thread(cluster.wait_replayed, request.standby, request.lsn,
                                request.timeout_s)  # fmt: skip

    @activity.defn(name="dr_failover.detect")
    async def detect(self, request: DetectInput) -> DetectResult:
        """Confirm the primary down within the bound; refuse a failover of a live one."""
        from infra.postgres.cluster import ClusterError

        cluster = self._cluster()
        try:
            seconds = await asyncio.to_thread(
                cluster.probe_down, request.primary, probes=request.probes,
                interval_s=request.interval_ms / 1000, within_s=request.within_s,
            )  # fmt: skip
        except ClusterError as e:  # it answers: a failover would make two primaries
            raise refuse(str(e), "PrimaryAlive") from e
        return DetectResult(primary=request.primary, detected_in_ms=int(seconds * 1000))

    @activity.defn(name="dr_failover.promote")
    async def promote(self, node: str) -> PromoteResult:
        """Promote the standby (commits alone until the rejoin: the degraded window)."""
        from infra.postgres.cluster import ClusterError

        cluster = self._cluster()
        try:
            seconds = await asyncio.to_thread(cluster.promote, node)
        except ClusterError as e:  # refused (the other node answers as primary, ...)
            raise refuse(f"promotion of {node} refused: {e}", "PromoteRefused") from e
        return PromoteResult(node=node, promote_ms=int(seconds * 1000),
                             promoted_at_epoch=time.time())  # fmt: skip

    @activity.defn(name="dr_failover.verify")
    async def verify(self, request: VerifyInput) -> VerifyResult:
        """Write probe through the desk's DSN, the engine's view, and the RPO count.

        The probe must land on the new primary (the multi-host DSN picks the writable
        node). The engine's journal must be healthy again with nothing queued; its last
        outage is the RTO as it saw it. Every event and fill it saw acknowledged since
        ``acks_since_epoch`` is looked up on the new primary: what is missing is the RPO.
        """
        import asyncpg

        deadline = time.monotonic() + request.timeout_s
        port = await self._probe_write(deadline)
        writable_at = time.time()
        expected = self._port_of(request.new_primary)
        if port != expected:
            raise refuse(f"the write probe reached port {port}, the new primary listens on"
                         f" {expected}: two writable nodes?", "SplitBrain")  # fmt: skip
        engine, status = await self._journal_recovered(deadline)
        acks = await self.config.engines.admin(
            engine, "journal_acks", {"since": request.acks_since_epoch, "by": "dr_failover",
                                     "reason": "rpo count"})  # fmt: skip
        event_ids = [str(i) for i in acks.get("event_ids") or []]
        fills = [tuple(str(x) for x in f) for f in acks.get("fills") or []]
        connection = await asyncpg.connect(self.config.dsn, timeout=10)
        try:
            events_missing = int(await connection.fetchval(
                "SELECT count(*) FROM unnest($1::uuid[]) AS a(id)"
                " WHERE NOT EXISTS (SELECT 1 FROM journal_events e WHERE e.event_id = a.id)",
                event_ids))  # fmt: skip
            fills_missing = int(await connection.fetchval(
                "SELECT count(*) FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
                " AS a(venue, symbol, trade_id, side) WHERE NOT EXISTS (SELECT 1 FROM fills f"
                " WHERE (f.venue, f.symbol, f.trade_id, f.side)"
                " = (a.venue, a.symbol, a.trade_id, a.side))",
                [f[0] for f in fills], [f[1] for f in fills], [f[2] for f in fills],
                [f[3] for f in fills]))  # fmt: skip
        finally:
            await connection.close()
        outage = _last_outage(status, since=request.run_started_epoch)
        return VerifyResult(
            probe_ok=True,
            writable_at_epoch=writable_at,
            engine=engine.color,
            engine_journal_healthy=True,
            rto_s=None if outage is None else round(float(outage["seconds"]), 3),
            outage_started_epoch=None if outage is None else float(outage["started_at"]),
            events_checked=len(event_ids),
            fills_checked=len(fills),
            events_missing=events_missing,
            fills_missing=fills_missing,
            acks_truncated=bool(acks.get("truncated")),
        )

    def _port_of(self, node: str) -> int:
        ports = {n.name: n.node.port for n in self._cluster().pair.nodes}
        if node not in ports:
            raise refuse(f"no node {node!r} in this pair (nodes: {sorted(ports)})", "InvalidInput")
        return ports[node]

    async def _probe_write(self, deadline: float) -> int:
        """Assign a transaction id through the DSN (refused by a standby); return the port."""
        import asyncpg

        while True:
            try:
                connection = await asyncpg.connect(self.config.dsn, timeout=2)
                try:
                    async with connection.transaction():
                        await connection.fetchval("SELECT txid_current()")
                    return int(await connection.fetchval("SELECT inet_server_port()"))
                finally:
                    await connection.close()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                if time.monotonic() > deadline:
                    raise ApplicationError(f"no writable primary through the DSN: {e}",
                                           type="ProbeFailed") from e  # fmt: skip
                activity.heartbeat(f"probe: {type(e).__name__}")
                await asyncio.sleep(0.1)

    async def _journal_recovered(self, deadline: float) -> tuple[Any, dict[str, Any]]:
        """Wait for a leader whose journal is healthy with nothing queued."""
        while True:
            found = await self.config.engines.leader()
            if found is not None:
                journal = found[1].get("journal") or {}
                if journal.get("healthy") and not journal.get("backlog"):
                    return found
            if time.monotonic() > deadline:
                raise ApplicationError(
                    "no engine leads with a healthy journal after the promotion: read the"
                    " engine's log (`bot4 engine status`), it may need a restart",
                    type="EngineNotRecovered",
                )
            activity.heartbeat("waiting for the engine's journal")
            await asyncio.sleep(0.2)

    @activity.defn(name="dr_failover.steady_state")
    async def steady_state(self, request: SteadyStateInput) -> SteadyState:
        """Measure the drill's hypothesis; wait up to ``within_s`` for it to hold."""
        deadline = time.monotonic() + request.within_s
        while True:
            state = await self._steady_state()
            if state.holds or time.monotonic() >= deadline:
                return state
            activity.heartbeat("; ".join(state.problems))
            await asyncio.sleep(0.5)

    async def _steady_state(self) -> SteadyState:
        problems: list[str] = []
        found = await self.config.engines.leader()
        color = trading = None
        journal_healthy = False
        if found is None:
            problems.append("no engine leads")
        else:
            color, status = found[0].color, found[1]
            trading = str(status.get("trading_state"))
            journal_healthy = bool((status.get("journal") or {}).get("healthy"))
            if trading != "ACTIVE":
                problems.append(f"the leader ({color}) is {trading}, not ACTIVE")
            if not journal_healthy:
                problems.append(f"the leader's ({color}) journal is not healthy")
        cluster = self._cluster()
        replication = await asyncio.to_thread(cluster.replication)
        sync = replication.streaming and replication.sync_state == "sync"
        if not sync:
            problems.append(f"replication not synchronous ({replication})")
        return SteadyState(leader=color, trading_state=trading, journal_healthy=journal_healthy,
                           replication_sync=sync, problems=tuple(problems))  # fmt: skip

    @activity.defn(name="dr_failover.kill_node")
    async def kill_node(self, node: str) -> None:
        """SIGKILL a node's postmaster (a drill's injected fault; a dead node stays dead)."""
        cluster = self._cluster()
        await asyncio.to_thread(cluster.kill_primary, node)

    @activity.defn(name="dr_failover.store_report")
    async def store_report(self, report: DrFailoverResult) -> tuple[str, str | None]:
        """Store a drill's report in PostgreSQL and the reports object store.

        The id is derived from the run's start, so a retried store writes the same row
        and object again (upsert), never a second report.
        """
        import dataclasses
        import json

        import asyncpg

        drill_id = report.started_at.strftime("%Y%m%dT%H%M%SZ") + f"-{report.mode}"
        document = json.dumps(dataclasses.asdict(report), default=str, sort_keys=True)
        uri = None
        if self.config.reports_uri and self.config.storage is not None:
            from flows.objstore import ObjectStore

            store = await asyncio.to_thread(ObjectStore.open, self.config.reports_uri,
                                            self.config.storage)  # fmt: skip
            key = f"drills/{drill_id}.json"
            await asyncio.to_thread(store.put_bytes, document.encode(), key,
                                    content_type="application/json")  # fmt: skip
            uri = store.uri_of(key)
        connection = await asyncpg.connect(self.config.dsn, timeout=10)
        try:
            await connection.execute(
                "INSERT INTO dr_drills (drill_id, mode, started_at, passed, rto_s, rpo_events,"
                " report_uri, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)"
                " ON CONFLICT (drill_id) DO UPDATE SET passed = excluded.passed,"
                " rto_s = excluded.rto_s, rpo_events = excluded.rpo_events,"
                " report_uri = excluded.report_uri, report = excluded.report",
                drill_id, report.mode, report.started_at, bool(report.passed), report.rto_s,
                report.rpo_events, uri, document,
            )  # fmt: skip
        finally:
            await connection.close()
        from workflows.dr_failover.gauges import DrillGauges

        DrillGauges(activity.metric_meter()).record(
            rto_s=report.rto_s, rpo_events=report.rpo_events,
            passed_at=report.started_at.timestamp() if report.passed else None,
        )  # fmt: skip
        return drill_id, uri

    @activity.defn(name="dr_failover.rejoin")
    async def rejoin(self, request: RejoinInput) -> RejoinResult:
        """Rebuild the old primary as the synchronous standby of the new one."""
        cluster = self._cluster()
        started = time.monotonic()
        method = await asyncio.to_thread(cluster.rejoin, request.old,
                                         new_primary=request.new_primary)  # fmt: skip
        rejoined = time.monotonic()
        await asyncio.to_thread(cluster.restore_sync, request.new_primary, request.old,
                                request.timeout_s)  # fmt: skip
        return RejoinResult(
            node=request.old,
            method=str(method),
            rejoin_ms=int((rejoined - started) * 1000),
            sync_ms=int((time.monotonic() - rejoined) * 1000),
        )


def _last_outage(status: dict[str, Any], *, since: float) -> dict[str, Any] | None:
    """Return the engine's longest closed journal outage still going on at ``since`` or later.

    A failover starts after the primary died, so its outage began before the run; a
    switchover's begins inside it. Several short ones (a retry that reached the old node
    again): the longest is the one the desk felt.
    """
    outages = [
        o for o in (status.get("journal") or {}).get("outages") or []
        if o.get("ended_at") is not None and float(o["ended_at"]) >= since
    ]  # fmt: skip
    return max(outages, key=lambda o: float(o.get("seconds") or 0), default=None)
