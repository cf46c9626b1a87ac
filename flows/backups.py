"""Backups: pg_dump → object store with a manifest; restore tests; real restores; retention.

A backup is ``<backup_uri>/<id>/bot4.dump`` (pg_dump custom format, from the embedded
binaries of the server's major version) and ``<id>/manifest.json`` beside it: size,
SHA-256, server version, WAL LSN, and the :class:`~flows.image.DatabaseImage` (row
counts of every table, digests of the journal tables) of **the same snapshot** pg_dump
copied (exported with ``pg_export_snapshot`` and handed to ``pg_dump --snapshot``), so
the counts are exact even while the engine writes. The ``flow_backups`` row is the
authority on the checksum: a dump whose bytes changed in the store fails its restore
test before anything is restored, and is marked ``failed`` for good.

A restore test downloads the dump, checks its SHA-256, restores it into a scratch
PostgreSQL (:mod:`flows.scratch_pg`), and compares the restored image and the journal's
append-only triggers with the manifest; only then is the backup ``verified``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import asyncpg
import structlog

from flows.image import DatabaseImage, database_image, image_of, missing_triggers
from flows.objstore import ObjectStore
from flows.retention import BackupEntry, plan_retention
from flows.scratch_pg import PgToolError, binary, run_tool, scratch_postgres

log = structlog.get_logger(__name__)

DUMP_NAME: Final = "bot4.dump"
MANIFEST_NAME: Final = "manifest.json"
RESTORE_JOBS: Final = 2


class BackupError(Exception):
    """A backup, restore test or restore could not be done; the message says why."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BackupReport:
    """One backup taken."""

    backup_id: str
    uri: str
    size_bytes: int
    sha256: str
    dump_s: float
    manifest: dict[str, Any]

    def as_json(self) -> dict[str, object]:
        """Return the report as JSON."""
        return {
            "backup_id": self.backup_id, "uri": self.uri, "size_bytes": self.size_bytes,
            "sha256": self.sha256, "dump_s": round(self.dump_s, 3),
            "row_counts": self.manifest["image"]["row_counts"],
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class RestoreReport:
    """A restore (test or real) and what it found."""

    backup_id: str
    target: str
    ok: bool
    restore_s: float
    verify_s: float
    problems: tuple[str, ...] = ()
    row_counts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """Return the report as JSON."""
        return {
            "backup_id": self.backup_id, "target": self.target, "ok": self.ok,
            "restore_s": round(self.restore_s, 3), "verify_s": round(self.verify_s, 3),
            "problems": list(self.problems), "row_counts": self.row_counts,
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class RetentionReport:
    """What retention kept and deleted."""

    keep: tuple[str, ...]
    deleted: tuple[str, ...]
    dry_run: bool

    def as_json(self) -> dict[str, object]:
        """Return the report as JSON."""
        return {"keep": list(self.keep), "deleted": list(self.deleted), "dry_run": self.dry_run}


def new_backup_id(now: datetime) -> str:
    """Return a sortable backup id: UTC time and 6 random hex digits."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def take_backup(*, dsn: str, store: ObjectStore, database: str = "bot4") -> BackupReport:
    """Dump the database, upload dump and manifest, record the backup as ``uploaded``.

    Raises:
        BackupError: pg_dump failed, or the object store refused the upload.
    """
    started_at = datetime.now(UTC)
    backup_id = new_backup_id(started_at)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        with tempfile.TemporaryDirectory(prefix="bot4-backup-") as folder:
            dump = Path(folder) / DUMP_NAME
            started = time.perf_counter()
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
                lsn = str(await conn.fetchval("SELECT pg_current_wal_lsn()"))
                server_version = str(await conn.fetchval("SHOW server_version"))
                dumping = asyncio.create_task(
                    run_tool(binary("pg_dump"), "--format=custom", "--compress=1",
                             f"--snapshot={snapshot}", f"--file={dump}", f"--dbname={dsn}")
                )  # fmt: skip
                try:
                    image = await database_image(conn)  # same snapshot, while pg_dump runs
                finally:
                    try:
                        await dumping
                    except PgToolError as e:
                        raise BackupError(f"backup {backup_id}: {e}") from e
            dump_s = time.perf_counter() - started
            size, sha = dump.stat().st_size, await asyncio.to_thread(file_sha256, dump)
            manifest = {
                "backup_id": backup_id, "database": database, "format": "pg_dump custom",
                "created_at": started_at.isoformat(), "server_version": server_version,
                "lsn": lsn, "size_bytes": size, "sha256": sha, "dump_s": round(dump_s, 3),
                "image": image.as_json(),
            }  # fmt: skip
            try:
                await asyncio.to_thread(store.put_file, dump, f"{backup_id}/{DUMP_NAME}")
                body = json.dumps(manifest, indent=2).encode()
                await asyncio.to_thread(store.put_bytes, body, f"{backup_id}/{MANIFEST_NAME}")
            except Exception as e:
                # best effort: a half-uploaded backup has no row and would never be deleted
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(store.delete_prefix, f"{backup_id}/")
                raise BackupError(f"backup {backup_id}: upload failed: {e}") from e
        uri = store.uri_of(backup_id)
        await conn.execute(
            "INSERT INTO flow_backups (backup_id, uri, created_at, size_bytes, sha256, manifest)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            backup_id, uri, started_at, size, sha, json.dumps(manifest),
        )  # fmt: skip
    finally:
        await conn.close()
    log.info("backup_taken", backup_id=backup_id, size_bytes=size, dump_s=round(dump_s, 3))
    return BackupReport(
        backup_id=backup_id, uri=uri, size_bytes=size, sha256=sha, dump_s=dump_s,
        manifest=manifest,
    )  # fmt: skip


async def _restore_into(
    *, store: ObjectStore, manifest: dict[str, Any], sha256: str, target_dsn: str, folder: Path
) -> tuple[float, list[str], DatabaseImage | None]:
    """Download, check, restore and compare; return (restore_s, problems, image)."""
    backup_id = manifest["backup_id"]
    dump = folder / DUMP_NAME
    await asyncio.to_thread(store.get_file, f"{backup_id}/{DUMP_NAME}", dump)
    actual = await asyncio.to_thread(file_sha256, dump)
    if actual != sha256:
        return 0.0, [f"checksum mismatch: expected {sha256}, the stored dump has {actual}"], None
    started = time.perf_counter()
    try:
        await run_tool(binary("pg_restore"), "--no-owner", "--exit-on-error",
                       f"--jobs={RESTORE_JOBS}", f"--dbname={target_dsn}", str(dump))  # fmt: skip
    except PgToolError as e:
        return time.perf_counter() - started, [str(e)], None
    restore_s = time.perf_counter() - started
    image = await image_of(target_dsn)
    expected = DatabaseImage(
        row_counts=manifest["image"]["row_counts"], digests=manifest["image"]["digests"]
    )
    problems = expected.differences(image)
    conn = await asyncpg.connect(target_dsn, timeout=10)
    try:
        problems += [f"journal trigger {t} missing" for t in await missing_triggers(conn)]
    finally:
        await conn.close()
    return restore_s, problems, image


async def _backup_row(conn: asyncpg.Connection, backup_id: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM flow_backups WHERE backup_id = $1", backup_id)
    if row is None:
        raise BackupError(f"no backup {backup_id!r} (list them with `bot4 backup list`)")
    if row["status"] == "deleted":
        raise BackupError(f"backup {backup_id} was deleted by retention on {row['deleted_at']}")
    return row


async def restore_test(*, dsn: str, store: ObjectStore, backup_id: str) -> RestoreReport:
    """Restore ``backup_id`` into a scratch server, compare, and record the outcome.

    A failed test marks the backup ``failed`` (never verified afterwards).

    Raises:
        BackupError: the backup is unknown or deleted, or the scratch server failed.
    """
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        row = await _backup_row(conn, backup_id)
        manifest = json.loads(row["manifest"])
        started = time.perf_counter()
        try:
            async with scratch_postgres() as server:
                admin = await asyncpg.connect(server.dsn(), timeout=10)
                try:
                    await admin.execute("CREATE DATABASE restored")
                finally:
                    await admin.close()
                with tempfile.TemporaryDirectory(prefix="bot4-restore-") as folder:
                    restore_s, problems, image = await _restore_into(
                        store=store, manifest=manifest, sha256=row["sha256"],
                        target_dsn=server.dsn("restored"), folder=Path(folder),
                    )  # fmt: skip
        except PgToolError as e:
            raise BackupError(f"restore test of {backup_id}: scratch server: {e}") from e
        except Exception as e:  # a store that cannot serve the dump fails the test
            restore_s, problems, image = 0.0, [f"{type(e).__name__}: {e}"], None
        verify_s = time.perf_counter() - started
        ok = not problems
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO flow_restore_tests (backup_id, ok, restore_s, problems)"
                " VALUES ($1, $2, $3, $4)",
                backup_id, ok, restore_s, json.dumps(problems),
            )  # fmt: skip
            # a backup that failed once stays failed: its bytes or its manifest are bad
            await conn.execute(
                "UPDATE flow_backups SET status = CASE WHEN $2 AND status <> 'failed'"
                " THEN 'verified' ELSE 'failed' END,"
                " verified_at = CASE WHEN $2 AND status <> 'failed' THEN now() END,"
                " restore_s = $3, failure = $4 WHERE backup_id = $1",
                backup_id, ok, restore_s, "; ".join(problems) or None,
            )  # fmt: skip
    finally:
        await conn.close()
    log.info("restore_test", backup_id=backup_id, ok=ok, restore_s=round(restore_s, 3))
    return RestoreReport(
        backup_id=backup_id, target="scratch", ok=ok, restore_s=restore_s, verify_s=verify_s,
        problems=tuple(problems), row_counts=image.row_counts if image else {},
    )  # fmt: skip


async def restore_backup(*, store: ObjectStore, backup_id: str, target_dsn: str) -> RestoreReport:
    """Restore ``backup_id`` for real into the empty database at ``target_dsn``; verify it.

    Works from the object store alone (the source database may be gone): the manifest
    beside the dump gives checksum, counts and digests.

    Raises:
        BackupError: the manifest cannot be read, or the target database is not empty.
    """
    try:
        manifest = json.loads(
            await asyncio.to_thread(store.get_bytes, f"{backup_id}/{MANIFEST_NAME}")
        )
    except Exception as e:
        raise BackupError(f"backup {backup_id}: cannot read its manifest: {e}") from e
    conn = await asyncpg.connect(target_dsn, timeout=10)
    try:
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    if tables:
        raise BackupError(
            f"the target database holds {tables} tables; restore only into an empty database"
            " of a fresh instance"
        )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bot4-restore-") as folder:
        restore_s, problems, image = await _restore_into(
            store=store, manifest=manifest, sha256=manifest["sha256"], target_dsn=target_dsn,
            folder=Path(folder),
        )  # fmt: skip
    log.info("restored", backup_id=backup_id, ok=not problems, restore_s=round(restore_s, 3))
    return RestoreReport(
        backup_id=backup_id, target="target", ok=not problems, restore_s=restore_s,
        verify_s=time.perf_counter() - started, problems=tuple(problems),
        row_counts=image.row_counts if image else {},
    )  # fmt: skip


async def apply_retention(
    *, dsn: str, store: ObjectStore, keep_daily: int, keep_weekly: int, dry_run: bool = False
) -> RetentionReport:
    """Delete the backups the retention policy does not keep (objects, then mark the row)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT backup_id, created_at, status FROM flow_backups WHERE status <> 'deleted'"
        )
        plan = plan_retention(
            [BackupEntry(backup_id=r["backup_id"], created_at=r["created_at"],
                         verified=r["status"] == "verified", failed=r["status"] == "failed")
             for r in rows],
            keep_daily=keep_daily, keep_weekly=keep_weekly,
        )  # fmt: skip
        if not dry_run:
            for backup_id in plan.delete:
                await asyncio.to_thread(store.delete_prefix, f"{backup_id}/")
                await conn.execute(
                    "UPDATE flow_backups SET status = 'deleted', deleted_at = now()"
                    " WHERE backup_id = $1",
                    backup_id,
                )
    finally:
        await conn.close()
    log.info("backup_retention", kept=len(plan.keep), deleted=len(plan.delete), dry_run=dry_run)
    return RetentionReport(keep=plan.keep, deleted=plan.delete, dry_run=dry_run)


async def list_backups(dsn: str, *, limit: int = 100) -> list[dict[str, object]]:
    """Return the recorded backups, newest first."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT backup_id, uri, created_at, size_bytes, sha256, status, verified_at,"
            " restore_s, failure FROM flow_backups ORDER BY created_at DESC LIMIT $1",
            limit,
        )
    finally:
        await conn.close()
    return [backup_json(r) for r in rows]


def backup_json(row: asyncpg.Record) -> dict[str, object]:
    """Return a ``flow_backups`` row as JSON."""
    return {
        "backup_id": row["backup_id"], "uri": row["uri"],
        "created_at": row["created_at"].isoformat(), "size_bytes": row["size_bytes"],
        "sha256": row["sha256"], "status": row["status"],
        "verified_at": row["verified_at"].isoformat() if row["verified_at"] else None,
        "restore_s": row["restore_s"], "failure": row["failure"],
    }  # fmt: skip


async def newest_verified_age_s(conn: asyncpg.Connection | asyncpg.Pool) -> float | None:
    """Return the age in seconds of the newest verified backup (None: there is none)."""
    value = await conn.fetchval(
        "SELECT extract(epoch FROM now() - max(created_at))::float8 FROM flow_backups"
        " WHERE status = 'verified'"
    )
    return None if value is None else float(value)
