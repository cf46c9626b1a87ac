"""Scratch databases on the session's real PostgreSQL, migrated, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from bot4.settings import DatabaseSettings
from infra.postgres.migrate import apply_migrations


@asynccontextmanager
async def scratch_database(db: DatabaseSettings, *, migrate: bool = True) -> AsyncIterator[str]:
    """Create an empty database (migrated unless told not to); yield its DSN; drop it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(db.local_dsn(database="postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = db.local_dsn(database=name)
        if migrate:
            await apply_migrations(dsn)
        yield dsn
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
