"""Ordered SQL migrations, applied once each, all-or-nothing, under an advisory lock.

Files are ``NNNN_name.sql`` in ``migrations/``. Every pending file runs in one transaction
together with its ``schema_migrations`` row, so a failing file leaves the schema exactly as
it was. A checksum of each applied file is kept: editing a migration after it ran is an
error, not a silent drift.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg

from infra.stack.errors import MigrationError

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every migrating process.
ADVISORY_LOCK_KEY: Final = 0x626F7434_6D696772  # "bot4migr"
_NAME: Final = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_TABLE: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Migration:
    """One SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """Return the SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Read the migration files in version order.

    Raises:
        MigrationError: a file name does not follow ``NNNN_name.sql`` or a version repeats.
    """
    migrations: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(
                "migrations",
                f"{path.name} does not follow the NNNN_lowercase_name.sql pattern",
                action="Rename the file.",
            )
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(
                "migrations",
                f"version {version} appears twice ({migrations[version].name}, {path.name})",
                action="Give each migration its own number.",
            )
        migrations[version] = Migration(version=version, name=path.name, sql=path.read_text())
    return [migrations[v] for v in sorted(migrations)]


async def apply_migrations(dsn: str, *, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date).

    Raises:
        MigrationError: a migration failed (nothing of this run is kept), or an applied
            migration's file was changed since.
    """
    migrations = load_migrations(folder)
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (TimeoutError, OSError, asyncpg.PostgresError) as e:
        raise MigrationError(
            "migrations",
            f"cannot connect to the database ({e.__class__.__name__}: {e})",
            action="Start the stack with `bot4 stack up`, or check BOT4_DB__DSN.",
        ) from e
    try:
        async with conn.transaction():
            # Transaction-scoped: released by commit or rollback, even if we die.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
            await conn.execute(_CREATE_TABLE)
            rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
            applied = {r["version"]: r for r in rows}
            pending = []
            for migration in migrations:
                row = applied.get(migration.version)
                if row is None:
                    pending.append(migration)
                elif row["checksum"] != migration.checksum:
                    raise MigrationError(
                        "migrations",
                        f"{migration.name} changed after it was applied as {row['name']}",
                        action="Restore the original file and add a new migration instead.",
                    )
            for migration in pending:
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as e:
                    raise MigrationError(
                        "migrations",
                        f"{migration.name} failed: {e.__class__.__name__}: {e}",
                        action="Fix the migration; the schema was left unchanged.",
                    ) from e
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            return [m.name for m in pending]
    finally:
        await conn.close()


def apply_migrations_sync(dsn: str, *, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Run :func:`apply_migrations` from synchronous code (the launcher, the CLI)."""
    return asyncio.run(apply_migrations(dsn, folder=folder))
