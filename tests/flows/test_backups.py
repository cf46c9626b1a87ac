"""Backups against real servers: PostgreSQL pair, moto's S3 server, scratch PostgreSQL."""

from __future__ import annotations

import asyncpg

from flows.backups import apply_retention, restore_backup, restore_test, take_backup
from flows.image import image_of
from flows.objstore import ObjectStore
from flows.scratch_pg import scratch_postgres
from tests.stubs.journal_seed import seed_journal


async def _status(dsn: str, backup_id: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(
            await conn.fetchval("SELECT status FROM flow_backups WHERE backup_id = $1", backup_id)
        )
    finally:
        await conn.close()


async def test_backup_round_trip_restores_the_same_journal(
    dsn: str, backup_store: ObjectStore
) -> None:
    await seed_journal(dsn, events=300, fills=120)
    source = await image_of(dsn)

    backup = await take_backup(dsn=dsn, store=backup_store)
    tested = await restore_test(dsn=dsn, store=backup_store, backup_id=backup.backup_id)

    assert tested.ok, tested.problems
    assert await _status(dsn, backup.backup_id) == "verified"
    assert backup.manifest["image"]["row_counts"]["journal_events"] == 300
    assert backup.manifest["image"]["row_counts"]["fills"] == 120
    assert backup.manifest["lsn"]
    assert backup.manifest["server_version"].startswith("18")
    async with scratch_postgres() as fresh:
        admin = await asyncpg.connect(fresh.dsn())
        await admin.execute("CREATE DATABASE bot4")
        await admin.close()
        restored = await restore_backup(
            store=backup_store, backup_id=backup.backup_id, target_dsn=fresh.dsn("bot4")
        )
        target = await image_of(fresh.dsn("bot4"))
    assert restored.ok, restored.problems
    assert target.digests == source.digests  # journal rows equal, compared by hash
    assert target.row_counts["fills"] == source.row_counts["fills"]


async def test_corrupted_backup_fails_its_restore_test_and_is_never_verified(
    dsn: str, backup_store: ObjectStore
) -> None:
    await seed_journal(dsn, events=50, fills=20)
    backup = await take_backup(dsn=dsn, store=backup_store)
    key = f"{backup.backup_id}/bot4.dump"
    data = bytearray(backup_store.get_bytes(key))
    data[len(data) // 2] ^= 0xFF  # flip bits in the middle of the stored object
    backup_store.put_bytes(bytes(data), key)

    tested = await restore_test(dsn=dsn, store=backup_store, backup_id=backup.backup_id)

    assert not tested.ok
    assert "checksum mismatch" in tested.problems[0]
    assert await _status(dsn, backup.backup_id) == "failed"
    # a fixed object does not make a failed backup verified
    data[len(data) // 2] ^= 0xFF
    backup_store.put_bytes(bytes(data), key)
    await restore_test(dsn=dsn, store=backup_store, backup_id=backup.backup_id)
    assert await _status(dsn, backup.backup_id) == "failed"


async def test_retention_deletes_old_backups_but_never_the_newest_verified(
    dsn: str, backup_store: ObjectStore
) -> None:
    verified = await take_backup(dsn=dsn, store=backup_store)
    assert (await restore_test(dsn=dsn, store=backup_store, backup_id=verified.backup_id)).ok
    later = [await take_backup(dsn=dsn, store=backup_store) for _ in range(2)]
    for b in later:  # newer backups that failed their test
        backup_store.put_bytes(b"garbage", f"{b.backup_id}/bot4.dump")
        assert not (await restore_test(dsn=dsn, store=backup_store, backup_id=b.backup_id)).ok

    report = await apply_retention(dsn=dsn, store=backup_store, keep_daily=1, keep_weekly=0)

    assert report.keep == (verified.backup_id,)
    assert set(report.deleted) == {b.backup_id for b in later}
    assert await _status(dsn, later[0].backup_id) == "deleted"
    assert backup_store.get_bytes(f"{verified.backup_id}/manifest.json")
