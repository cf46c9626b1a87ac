"""A PostgreSQL primary and synchronous standby of one test (or module) alone.

The session's PostgreSQL is shared by every test: never kill, restart or promote it.
Tests that do start their own pair on free ports in a throw-away state folder, migrated,
and stop it (and delete its files) afterwards, also on failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot4.settings import DatabaseSettings
from infra.postgres.cluster import PgCluster
from infra.postgres.migrate import apply_migrations
from infra.stack.component import SilentProgress
from infra.stack.paths import StackPaths
from infra.stack.postgres import PostgresPair
from tests.stubs.ports import free_ports
from tests.stubs.stack import make_home, remove_home


@dataclass(frozen=True, kw_only=True, slots=True)
class OwnPair:
    """A running pair: its state folder, settings, nodes, cluster steps and DSN."""

    home: Path
    settings: DatabaseSettings
    pair: PostgresPair
    cluster: PgCluster
    dsn: str

    async def restart_primary(self, *, down_s: float) -> float:
        """Stop the primary (fast shutdown), wait, start it again; return the outage."""
        primary = self.pair.primary()
        started = time.monotonic()
        assert await asyncio.to_thread(primary.stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(primary.start)
        return time.monotonic() - started


@asynccontextmanager
async def own_pair(*, database: str = "bot4", keep: bool = False) -> AsyncIterator[OwnPair]:
    """Start a pair on free ports with ``database`` migrated; stop it after, and delete its
    state folder unless ``keep`` (to read the logs of a failed run)."""
    home = make_home()
    primary_port, standby_port = free_ports(2)
    settings = DatabaseSettings(
        primary_port=primary_port, standby_port=standby_port, database=database
    )
    paths = StackPaths(home)
    paths.create()
    pair = PostgresPair(paths=paths, settings=settings)
    try:
        await asyncio.to_thread(pair.ensure_running, SilentProgress())
        await apply_migrations(settings.local_dsn())
        yield OwnPair(home=home, settings=settings, pair=pair, cluster=PgCluster(pair),
                      dsn=settings.local_dsn())  # fmt: skip
    finally:
        await asyncio.to_thread(pair.stop)
        if not keep:
            remove_home(home)
