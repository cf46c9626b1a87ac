"""PgCluster against a real primary and synchronous standby, each test with its own pair.

Every test starts a pair on free ports in a throw-away BOT4_HOME (like ``own_postgres``
of the engine fault tests: the session's PostgreSQL is shared and must never be failed
over), drives it the way the dr_failover workflow does (through ``asyncio.to_thread``),
and checks the data, the roles and ``pg_stat_replication`` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from bot4.settings import DatabaseSettings
from infra.postgres.cluster import PROBE_TIMEOUT_S, ClusterError, PgCluster
from infra.stack.component import SilentProgress
from infra.stack.paths import StackPaths
from infra.stack.postgres import SYNC_STANDBY_NAMES, PostgresPair
from tests.stubs.ports import free_ports
from tests.stubs.stack import make_home, remove_home

A, B = "postgres-a", "postgres-b"
BOUND = 1 << 20  # replay lag a switchover accepts in these tests


@dataclass(frozen=True, kw_only=True, slots=True)
class OwnPair:
    """A pair of this test alone and the cluster handle over it."""

    cluster: PgCluster
    settings: DatabaseSettings

    @property
    def dsn(self) -> str:
        """The desk's multi-host DSN: reaches whichever node is writable."""
        return self.settings.local_dsn()

    def port(self, name: str) -> int:
        return self.cluster.node(name).node.port


@pytest.fixture
async def own_pair() -> AsyncIterator[OwnPair]:
    home = make_home()
    primary_port, standby_port = free_ports(2)
    settings = DatabaseSettings(primary_port=primary_port, standby_port=standby_port)
    paths = StackPaths(home)
    paths.create()
    pair = PostgresPair(paths=paths, settings=settings)
    try:
        await asyncio.to_thread(pair.ensure_running, SilentProgress())
        yield OwnPair(cluster=PgCluster(pair), settings=settings)
    finally:
        await asyncio.to_thread(pair.stop)
        remove_home(home)


async def fetch(dsn_or_port: str | int, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run one query on the DSN, or on one node by port."""
    if isinstance(dsn_or_port, str):
        connection = await asyncpg.connect(dsn_or_port, timeout=5)
    else:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=dsn_or_port, user="postgres", database="bot4", timeout=5
        )
    try:
        # a bound: a commit waiting for a missing synchronous standby fails, not hangs
        return await connection.fetch(query, *args, timeout=5)
    finally:
        await connection.close()


async def insert(own: OwnPair, ids: range) -> int:
    """Insert ``ids`` through the DSN, one commit each; return the port that took them."""
    rows = await fetch(own.dsn, "INSERT INTO t SELECT unnest($1::int[])"
                       " RETURNING inet_server_port()", list(ids))  # fmt: skip
    assert {r[0] for r in rows} == {rows[0][0]}
    return int(rows[0][0])


async def count(port: int) -> int:
    return int((await fetch(port, "SELECT count(*) FROM t"))[0][0])


async def setting(port: int, name: str) -> str:
    return str((await fetch(port, "SELECT current_setting($1)", name))[0][0])


async def test_planned_switchover_there_and_back_keeps_every_row_and_sync_replication(
    own_pair: OwnPair,
) -> None:
    cluster = own_pair.cluster
    await fetch(own_pair.dsn, "CREATE TABLE t (id int PRIMARY KEY)")
    await insert(own_pair, range(100))
    assert await asyncio.to_thread(cluster.roles) == {A: "primary", B: "standby"}

    rows = 100
    for old, new in ((A, B), (B, A)):
        assert await asyncio.to_thread(cluster.preconditions, BOUND) == []
        lsn = await asyncio.to_thread(cluster.stop_primary_cleanly, old)
        assert await asyncio.to_thread(cluster.stop_primary_cleanly, old) == lsn  # a retry
        await asyncio.to_thread(cluster.wait_replayed, new, lsn, 10)
        await asyncio.to_thread(cluster.promote, new)
        await asyncio.to_thread(cluster.promote, new)  # a retry changes nothing

        assert await asyncio.to_thread(cluster.roles) == {old: "down", new: "primary"}
        assert await count(own_pair.port(new)) == rows
        # degraded window: the new primary commits alone (it would hang on a sync wait)
        assert await setting(own_pair.port(new), "synchronous_standby_names") == ""
        assert await insert(own_pair, range(rows, rows + 50)) == own_pair.port(new)

        assert await asyncio.to_thread(cluster.rejoin, old, new_primary=new) == "rewind"
        await asyncio.to_thread(cluster.restore_sync, new, old, 30)
        state = await asyncio.to_thread(cluster.replication)
        assert (state.primary, state.standby, state.streaming, state.sync_state) == (
            new, old, True, "sync")  # fmt: skip
        assert state.roles == {new: "primary", old: "standby"}
        assert await setting(own_pair.port(new), "synchronous_standby_names") == (
            SYNC_STANDBY_NAMES
        )
        # synchronous with remote_apply: acknowledged means already visible on the standby
        assert await insert(own_pair, range(rows + 50, rows + 100)) == own_pair.port(new)
        rows += 100
        assert await count(own_pair.port(old)) == rows
    assert await asyncio.to_thread(cluster.preconditions, BOUND) == []


async def test_unplanned_failover_loses_no_acknowledged_commit_and_the_old_primary_rejoins(
    own_pair: OwnPair,
) -> None:
    cluster = own_pair.cluster
    await fetch(own_pair.dsn, "CREATE TABLE t (id int PRIMARY KEY)")
    acknowledged: list[int] = []
    enough = asyncio.Event()
    connection = await asyncpg.connect(
        host="127.0.0.1", port=own_pair.port(A), user="postgres", database="bot4"
    )

    async def burst() -> None:
        for i in range(1_000_000):
            await connection.execute("INSERT INTO t VALUES ($1)", i)
            acknowledged.append(i)  # the commit returned: remote_apply on B is confirmed
            if len(acknowledged) == 200:
                enough.set()

    writer = asyncio.create_task(burst())
    try:
        await asyncio.wait_for(enough.wait(), 30)
        await asyncio.to_thread(cluster.kill_primary, A)  # mid-burst
        # which error depends on where the commit was (asyncpg's internal one included)
        lost = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
        with pytest.raises(lost):
            await writer
    finally:
        writer.cancel()
        with contextlib.suppress(BaseException):
            await connection.close(timeout=1)

    probes, interval_s = 3, 0.1
    detected = await asyncio.to_thread(
        cluster.probe_down, A, probes=probes, interval_s=interval_s, within_s=5
    )
    assert detected <= probes * (interval_s + PROBE_TIMEOUT_S)
    await asyncio.to_thread(cluster.promote, B)
    on_b = {r[0] for r in await fetch(own_pair.port(B), "SELECT id FROM t")}
    assert set(acknowledged) <= on_b  # RPO 0 for acknowledged commits
    assert len(on_b - set(acknowledged)) <= 1  # at most the one in flight

    # straight from the crashed files: pg_rewind recovers them in single-user mode first
    assert await asyncio.to_thread(cluster.rejoin, A, new_primary=B) in ("rewind", "basebackup")
    await asyncio.to_thread(cluster.restore_sync, B, A, 30)
    state = await asyncio.to_thread(cluster.replication)
    assert (state.primary, state.standby, state.streaming, state.sync_state) == (
        B, A, True, "sync")  # fmt: skip
    assert await insert(own_pair, range(-10, 0)) == own_pair.port(B)
    assert await count(own_pair.port(A)) == await count(own_pair.port(B)) == len(on_b) + 10


async def test_preconditions_refuse_a_lagging_async_or_stopped_standby_and_change_nothing(
    own_pair: OwnPair,
) -> None:
    cluster = own_pair.cluster
    a_port, b_port = own_pair.port(A), own_pair.port(B)
    await fetch(own_pair.dsn, "CREATE TABLE t (id int PRIMARY KEY)")
    assert await asyncio.to_thread(cluster.preconditions, BOUND) == []
    before = {A: "primary", B: "standby"}

    # a live primary is neither confirmed down nor replaced
    with pytest.raises(ClusterError, match="not confirmed down"):
        await asyncio.to_thread(cluster.probe_down, A, probes=2, interval_s=0.05, within_s=0.5)
    with pytest.raises(ClusterError, match="two writable primaries"):
        await asyncio.to_thread(cluster.promote, B)
    with pytest.raises(ClusterError, match="answers as a standby"):
        await asyncio.to_thread(cluster.kill_primary, B)
    assert await asyncio.to_thread(cluster.roles) == before

    # asynchronous and behind: A commits alone while B's replay is paused
    await fetch(a_port, "ALTER SYSTEM SET synchronous_standby_names = ''")
    await fetch(a_port, "SELECT pg_reload_conf()")
    for _ in range(100):  # the reload is asynchronous
        if await setting(a_port, "synchronous_standby_names") == "":
            break
        await asyncio.sleep(0.05)
    await fetch(b_port, "SELECT pg_wal_replay_pause()")
    await insert(own_pair, range(1000))
    problems = await asyncio.to_thread(cluster.preconditions, 1024)
    assert len(problems) == 2, problems
    assert f"{B} is async, not sync" in problems[0]
    assert "replay lag" in problems[1]
    assert await asyncio.to_thread(cluster.roles) == before
    assert await setting(a_port, "synchronous_standby_names") == ""  # untouched

    await fetch(b_port, "SELECT pg_wal_replay_resume()")
    await asyncio.to_thread(cluster.restore_sync, A, B, 30)
    assert await asyncio.to_thread(cluster.preconditions, 1024) == []

    # stopped standby
    assert await asyncio.to_thread(cluster.node(B).stop)
    assert await asyncio.to_thread(cluster.preconditions, BOUND) == [
        f"{B} is down, not a running standby"
    ]
    assert await asyncio.to_thread(cluster.roles) == {A: "primary", B: "down"}
    assert await setting(a_port, "synchronous_standby_names") == SYNC_STANDBY_NAMES


async def test_a_node_pg_rewind_cannot_rewind_rejoins_with_a_fresh_base_backup(
    own_pair: OwnPair,
) -> None:
    cluster = own_pair.cluster
    await fetch(own_pair.dsn, "CREATE TABLE t (id int PRIMARY KEY)")
    await insert(own_pair, range(100))
    await asyncio.to_thread(cluster.kill_primary, A)
    await asyncio.to_thread(cluster.promote, B)

    # the deposed primary, restarted by anyone, comes back read-only (fenced on disk)
    await asyncio.to_thread(cluster.start_node, A)
    assert await asyncio.to_thread(cluster.roles) == {A: "standby", B: "primary"}
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await fetch(own_pair.port(A), "INSERT INTO t VALUES (-1)")

    # pg_rewind fails without the target's control file
    assert await asyncio.to_thread(cluster.node(A).stop)
    (cluster.node(A).node.data_dir / "global" / "pg_control").unlink()
    assert await asyncio.to_thread(cluster.rejoin, A, new_primary=B) == "basebackup"
    assert await asyncio.to_thread(cluster.rejoin, A, new_primary=B) == "unchanged"  # a retry
    await asyncio.to_thread(cluster.restore_sync, B, A, 30)
    state = await asyncio.to_thread(cluster.replication)
    assert (state.primary, state.standby, state.streaming, state.sync_state) == (
        B, A, True, "sync")  # fmt: skip
    await insert(own_pair, range(100, 150))
    assert await count(own_pair.port(A)) == 150
