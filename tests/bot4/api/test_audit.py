"""The audit log: append-only in PostgreSQL, hash-chained, verified by ``bot4 audit verify``,
sensitive parameters encrypted at rest."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from bot4.api.audit import AuditEntry, AuditWriter, verify_chain
from tests.bot4.api.conftest import Keys, audit_row
from tests.stubs.api import Recorder, RunningApi, cli_env

pytestmark = pytest.mark.timeout(120)


async def _bot4(api: RunningApi, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot4", *args],
        env=cli_env(api.settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET status = 200 WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
        "TRUNCATE audit_log",
        "UPDATE audit_chain_head SET seq = 0",
        "DELETE FROM audit_chain_head",
    ],
)
async def test_audit_log_refuses_every_change_even_to_its_owner(
    api: RunningApi, keys: Keys, statement: str
):
    connection = await asyncpg.connect(api.settings.db.effective_dsn())  # a superuser
    try:
        with pytest.raises(asyncpg.PostgresError, match=r"append-only|only moves forward") as e:
            await connection.execute(statement)
        assert e.value.sqlstate == "BT002"
    finally:
        await connection.close()


async def test_verify_passes_on_the_intact_log_and_names_the_tampered_row(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    async with recorder.client(api, keys.admin) as http:
        for _ in range(3):
            assert (await http.get("/v1/whoami")).status_code == 200
    intact = await _bot4(api, "audit", "verify", "--json")
    assert intact.returncode == 0, intact.stderr
    report = json.loads(intact.stdout)
    assert report["ok"] is True
    assert report["rows_checked"] == report["head_seq"] >= 4

    dsn = api.settings.db.effective_dsn()
    connection = await asyncpg.connect(dsn)
    target = report["head_seq"] - 1
    original = await connection.fetchval("SELECT status FROM audit_log WHERE seq = $1", target)
    try:
        # what an intruder with superuser rights could do: switch the triggers off
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute("UPDATE audit_log SET status = 299 WHERE seq = $1", target)
        broken = await _bot4(api, "audit", "verify")
        assert broken.returncode == 3, broken.stderr
        assert f"audit chain broken at row seq {target}" in broken.stderr
        assert "was changed" in broken.stderr
    finally:
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(
                "UPDATE audit_log SET status = $2 WHERE seq = $1", target, original
            )
        await connection.close()
    restored = await _bot4(api, "audit", "verify", "--json")
    assert json.loads(restored.stdout)["ok"] is True


async def test_deleting_the_newest_rows_is_found(api: RunningApi, keys: Keys):
    connection = await asyncpg.connect(api.settings.db.effective_dsn())
    head_seq = await connection.fetchval("SELECT seq FROM audit_chain_head")
    try:
        # drop the newest row in a transaction that is undone; verify sees it inside
        async with connection.transaction(isolation="repeatable_read"):
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute("DELETE FROM audit_log WHERE seq = $1", head_seq)
            report = await verify_chain(connection)
            raise _UndoError
    except _UndoError:
        pass
    finally:
        await connection.close()
    assert report.ok is False
    assert report.broken_seq == head_seq
    assert "newest rows were deleted" in (report.problem or "")


class _UndoError(Exception):
    pass


async def test_concurrent_writers_never_fork_the_chain(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    dsn = api.settings.db.effective_dsn()
    pools = [await asyncpg.create_pool(dsn, min_size=1, max_size=2) for _ in range(2)]
    writers = [AuditWriter(pool, max_batch=7) for pool in pools]
    for writer in writers:
        writer.start()
    marker = uuid.uuid4().hex

    def entry(n: int) -> AuditEntry:
        return AuditEntry(
            at=datetime.now(UTC), correlation_id=f"{marker}-{n}", client="test", key_id=None,
            key_name=None, role=None, method="TEST", route="/test", params="{}", status=200,
            outcome="ok", reason=None, duration_us=n,
        )  # fmt: skip

    try:
        async with recorder.client(api, keys.admin) as http:
            api_calls = [http.get("/v1/whoami") for _ in range(20)]
            appended = [writers[n % 2].append(entry(n)) for n in range(200)]
            results = await asyncio.gather(*appended, *api_calls)
        seqs = results[:200]
        assert len(set(seqs)) == 200
        connection = await asyncpg.connect(dsn)
        try:
            report = await verify_chain(connection)
            count = await connection.fetchval("SELECT count(*) FROM audit_log")
        finally:
            await connection.close()
        assert report.ok, report.problem
        assert report.rows_checked == report.head_seq == count
    finally:
        for writer in writers:
            await writer.stop()
        for pool in pools:
            await pool.close()


async def test_sensitive_parameters_are_stored_encrypted_and_decrypted_for_an_admin(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    trader = await keys.create("trader", name="night-desk")
    reason = f"counterparty {uuid.uuid4().hex} is insolvent"
    async with recorder.client(api, trader["key"]) as http:
        answer = await http.post("/v1/engines/blue/pause", json={"reason": reason})
    cid = answer.headers["x-correlation-id"]
    row = await audit_row(api.settings.db.effective_dsn(), cid)
    assert row is not None
    assert reason not in row["params"]  # at rest: ciphertext only
    stored: dict[str, Any] = json.loads(row["params"])
    assert set(stored["body"]["reason"]) == {"$encrypted"}
    assert stored["path"] == {"color": "blue"}

    async with recorder.client(api, keys.admin) as http:
        plain = (
            await http.get("/v1/audit", params={"correlation_id": cid, "decrypt": True})
        ).json()
        hidden = (await http.get("/v1/audit", params={"correlation_id": cid})).json()
    assert plain[0]["params"]["body"]["reason"] == reason
    assert "$encrypted" in hidden[0]["params"]["body"]["reason"]
    assert (plain[0]["key_name"], plain[0]["role"], plain[0]["route"]) == (
        "night-desk", "trader", "/v1/engines/{color}/pause",
    )  # fmt: skip
