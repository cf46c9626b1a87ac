"""Schema migrations against the session's real PostgreSQL, each test in its own database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from infra.postgres.migrate import MIGRATIONS_DIR, apply_migrations, load_migrations
from infra.stack.errors import MigrationError
from infra.stack.launcher import Stack


@pytest.fixture
async def scratch_dsn(running_stack: Stack) -> AsyncIterator[str]:
    """A fresh, empty database on the stack's primary, dropped afterwards."""
    db = running_stack.settings.db
    name = f"mig_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(db.local_dsn(database="postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield db.local_dsn(database=name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


def write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(sql)


async def test_shipped_migrations_apply_once_and_rerun_is_a_no_op(scratch_dsn: str) -> None:
    first = await apply_migrations(scratch_dsn)
    second = await apply_migrations(scratch_dsn)
    assert first == [m.name for m in load_migrations(MIGRATIONS_DIR)]
    assert second == []
    assert {"schema_migrations", "stack_probe"} <= await tables(scratch_dsn)


async def test_failed_migration_leaves_schema_unchanged(scratch_dsn: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_good.sql", "CREATE TABLE good (id int);")
    write(tmp_path, "0002_bad.sql", "CREATE TABLE half (id int); SELECT no_such_function();")

    with pytest.raises(
        MigrationError, match=r"(?s)0002_bad\.sql failed.*schema was left unchanged"
    ):
        await apply_migrations(scratch_dsn, folder=tmp_path)

    assert await tables(scratch_dsn) == set()  # not even schema_migrations or 0001


async def test_pending_migrations_apply_after_earlier_ones(
    scratch_dsn: str, tmp_path: Path
) -> None:
    write(tmp_path, "0001_a.sql", "CREATE TABLE a (id int);")
    assert await apply_migrations(scratch_dsn, folder=tmp_path) == ["0001_a.sql"]
    write(tmp_path, "0002_b.sql", "CREATE TABLE b (id int);")
    assert await apply_migrations(scratch_dsn, folder=tmp_path) == ["0002_b.sql"]
    conn = await asyncpg.connect(scratch_dsn)
    try:
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [r["version"] for r in versions] == [1, 2]


async def test_editing_an_applied_migration_is_refused(scratch_dsn: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "CREATE TABLE a (id int);")
    await apply_migrations(scratch_dsn, folder=tmp_path)
    write(tmp_path, "0001_a.sql", "CREATE TABLE a (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply_migrations(scratch_dsn, folder=tmp_path)


async def test_concurrent_migrators_apply_each_file_exactly_once(
    scratch_dsn: str, tmp_path: Path
) -> None:
    # pg_sleep keeps the first migrator inside its transaction while the others queue on
    # the advisory lock; without the lock the others would fail on CREATE TABLE.
    write(tmp_path, "0001_slow.sql", "SELECT pg_sleep(0.5); CREATE TABLE slow (id int);")
    results = await asyncio.gather(
        *(apply_migrations(scratch_dsn, folder=tmp_path) for _ in range(3))
    )
    assert sorted(results) == [[], [], ["0001_slow.sql"]]


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql"])
def test_badly_named_migration_file_is_refused(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, "SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_lowercase_name"):
        load_migrations(tmp_path)


def test_duplicate_version_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "SELECT 1;")
    write(tmp_path, "0001_b.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="version 1 appears twice"):
        load_migrations(tmp_path)


async def test_unreachable_database_says_to_start_the_stack() -> None:
    with pytest.raises(MigrationError, match="bot4 stack up"):
        await apply_migrations("postgresql://postgres@127.0.0.1:1/none")
