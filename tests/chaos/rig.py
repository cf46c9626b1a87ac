"""The chaos desk: the processes every scenario shares, and a clean slate between scenarios.

Shared (started once per module, restarted only when a fault killed them): a PostgreSQL
primary and synchronous standby of this suite alone (the session's are never killed), a
``bot4 worker`` process on a task queue of its own, a ``bot4 api`` process, and the
simulator's port. Per scenario: the journal database ``chaos`` dropped and created again
(migrated), the simulator restarted on a fresh state folder, an admin key bootstrapped,
and no engine running. The session's Temporal server runs the workflows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot4.api.bootstrap import bootstrap_admin
from bot4.settings import (
    ApiSettings,
    DatabaseSettings,
    EngineSettings,
    ExchangeSettings,
    Settings,
)
from infra.platform import Color, LocalPlatform
from infra.postgres.cluster import PgCluster
from infra.postgres.migrate import apply_migrations
from tests.chaos.sim_process import SimProcess
from tests.engine.live.harness import SYMBOLS
from tests.stubs.api import FAST, cli_env, running_api
from tests.stubs.engine_control import TOKEN
from tests.stubs.exchange_sim import ADMIN_TOKEN
from tests.stubs.pg_pair import own_pair
from tests.stubs.ports import free_ports
from tests.stubs.worker_process import WorkerProcess

DATABASE = "chaos"
COLORS: tuple[Color, ...] = ("blue", "green")
# fewer than the engine tests' 150: the whole desk shares two cores with the rest of CI
AGENT_ORDERS_PER_S = 60.0
STANDBY_RECONNECT_S = 15.0


@dataclass(kw_only=True)
class Rig:
    """What the scenarios share; see the module docstring."""

    home: Path
    settings: Settings
    cluster: PgCluster
    sim: SimProcess
    worker: WorkerProcess
    platform: LocalPlatform

    @property
    def dsn(self) -> str:
        return self.settings.db.local_dsn()

    @property
    def api_url(self) -> str:
        return self.settings.effective_api_url()

    @property
    def key_file(self) -> Path:
        return self.settings.api.effective_key_file(self.home)

    def engine_url(self, color: Color) -> str:
        engine = self.settings.engine
        port = engine.blue_control_port if color == "blue" else engine.green_control_port
        return f"http://127.0.0.1:{port}"

    async def stop_engines(self) -> None:
        for color in COLORS:
            await asyncio.to_thread(self.platform.stop, color)

    async def reset(self, label: str) -> str:
        """Give the next scenario a clean desk: no engine, a healthy pair, an empty
        journal, a fresh venue, a worker, an admin key; return what the pair needed."""
        await self.stop_engines()
        healed = await heal_pair(self.cluster)
        await asyncio.gather(self._fresh_journal(), self._fresh_venue(label))
        self.key_file.unlink(missing_ok=True)
        api = self.settings.api
        assert api.audit_key is not None
        audit_key = api.audit_key.get_secret_value().encode()
        await bootstrap_admin(self.dsn, path=self.key_file, name="chaos-admin", lifetime_s=0,
                              force=False, audit_key=audit_key)  # fmt: skip
        if not self.worker.running():
            await self.worker.start()
        return healed

    async def _fresh_journal(self) -> None:
        admin = await asyncpg.connect(self.settings.db.local_dsn(database="postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await admin.close()
        await apply_migrations(self.dsn)

    async def _fresh_venue(self, label: str) -> None:
        await self.sim.stop()
        runs = (
            len(list((self.home / "exchange").glob("*")))
            if (self.home / "exchange").exists()
            else 0
        )
        await self.sim.start(self.home / "exchange" / f"{runs:03d}-{label}")  # never reused


async def heal_pair(cluster: PgCluster) -> str:
    """Bring the pair back to one primary and a synchronous standby; return what it took.

    Empty when it was healthy. Never promotes (that could lose acknowledged writes): a
    stopped primary is started again, a lost standby rejoined (pg_rewind, else a base
    backup), synchronous replication restored.

    Raises:
        AssertionError: both nodes answer as primary, or no node can be made primary.
    """
    state = await asyncio.to_thread(cluster.replication)
    deadline = time.monotonic() + STANDBY_RECONNECT_S
    while state.primary is not None and not state.streaming and time.monotonic() < deadline:
        # a standby whose primary restarted reconnects by itself (its walreceiver retries
        # every 5 s): rejoining it before that would rewind a healthy node
        await asyncio.sleep(0.5)
        state = await asyncio.to_thread(cluster.replication)
    if state.primary is not None and state.streaming and state.sync_state == "sync":
        return ""
    done = []
    primaries = [n for n, role in state.roles.items() if role == "primary"]
    assert len(primaries) < 2, f"split brain: both nodes answer as primary {state.roles}"
    if not primaries:
        for name, role in state.roles.items():
            if role == "down":
                with contextlib.suppress(Exception):  # a fenced node starts as a standby
                    await asyncio.to_thread(cluster.start_node, name)
                    done.append(f"started {name}")
        state = await asyncio.to_thread(cluster.replication)
    primary = state.primary
    assert primary is not None, f"no primary after starting the nodes: {state.roles}"
    standby = cluster.other(primary).name
    if not state.streaming:
        method = await asyncio.to_thread(cluster.rejoin, standby, new_primary=primary)
        done.append(f"rejoined {standby} ({method})")
    if (await asyncio.to_thread(cluster.replication)).sync_state != "sync":
        await asyncio.to_thread(cluster.restore_sync, primary, standby)
        done.append("restored sync")
    return ", ".join(done)


def desk_settings(stack: Settings, home: Path, db: DatabaseSettings) -> Settings:
    """Settings of the chaos desk: its pair, venue port, engine ports, queue and API."""
    blue, green, metrics, api, venue = free_ports(5)
    return stack.model_copy(
        update={
            "home": home,
            "db": db,
            "exchange": ExchangeSettings(
                port=venue, symbols=SYMBOLS, sim_admin_token=SecretStr(ADMIN_TOKEN)
            ),
            "engine": EngineSettings(
                blue_control_port=blue, green_control_port=green, control_token=SecretStr(TOKEN)
            ),
            "worker": stack.worker.model_copy(update={"metrics_port": metrics}),
            "temporal": stack.temporal.model_copy(
                update={"task_queue": f"chaos-{uuid.uuid4().hex[:10]}"}
            ),
            "api": ApiSettings(
                port=api,
                audit_key=SecretStr(Fernet.generate_key().decode()),
                rate_limits={"viewer": FAST, "trader": FAST, "operator": FAST, "admin": FAST},
                unauthenticated_rate_limit=FAST,
                engine_timeout_s=5.0,
                status_timeout_s=10.0,
            ),
            "flows": stack.flows.model_copy(update={"reports_uri": f"file://{home}/reports"}),
        }
    )


@contextlib.asynccontextmanager
async def chaos_rig(stack: Settings) -> AsyncIterator[Rig]:
    """Start the shared parts; stop every process it started, also on failure."""
    keep = os.environ.get("BOT4_CHAOS_KEEP", "") not in ("", "0")
    async with own_pair(database=DATABASE, keep=keep) as pg:
        # the pair's state folder is the desk's home: the worker's dr_failover finds the
        # nodes there, as the stack's worker finds the stack's
        settings = desk_settings(stack, pg.home, pg.settings)
        env = cli_env(settings)
        rig = Rig(
            home=pg.home,
            settings=settings,
            cluster=pg.cluster,
            sim=SimProcess(
                port=settings.exchange.port,
                log=pg.home / "simulator.log",
                agents=AGENT_ORDERS_PER_S,
            ),
            worker=WorkerProcess(env, settings.temporal.task_queue, pg.home / "worker.log"),
            platform=LocalPlatform(pg.home, env=env, stop_timeout_s=30.0),
        )
        try:
            await rig.reset("setup")
            with running_api(settings):
                yield rig
        finally:
            with contextlib.suppress(Exception):
                await rig.stop_engines()
            await rig.worker.stop()
            await rig.sim.stop()
