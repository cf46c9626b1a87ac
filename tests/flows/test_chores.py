"""The chores end to end, as the demo and the CLI run them: real Prefect server, real
PostgreSQL, moto's S3 server, the simulator; flow runs recorded by the server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from bot4.settings import Settings
from flows.scratch_pg import scratch_postgres
from infra.stack.launcher import Stack
from tests.stubs.exchange_sim import ThreadedSim, sim_config

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def sim_port() -> Iterator[int]:
    with ThreadedSim(sim_config()) as sim:
        yield sim.config.port


def _settings(stack: Stack, dsn: str, sim_port: int) -> Settings:
    s = stack.settings
    return s.model_copy(update={
        "db": s.db.model_copy(update={"dsn": SecretStr(dsn)}),
        "exchange": s.exchange.model_copy(update={"port": sim_port, "symbols": ("BTC/USDT",)}),
    })  # fmt: skip


async def test_run_chores_backs_up_reconciles_and_reports(
    running_stack: Stack, dsn: str, sim_port: int
) -> None:
    settings = _settings(running_stack, dsn, sim_port)

    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "flows.demo"],
        env={**os.environ, **settings.to_env()},
        capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backup"]["restore_test"]["ok"]
    assert result["reconciliation"]["breaks"] == []
    assert result["report"]["html_uri"].startswith("s3://")
    api = settings.prefect.effective_api_url()
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{api}/flows/filter", json={"limit": 50})
    assert {"backup", "reconcile", "report"} <= {f["name"] for f in answer.json()}


async def test_cli_backup_list_and_restore_into_a_fresh_instance(
    running_stack: Stack, dsn: str, sim_port: int
) -> None:
    env = {**os.environ, **_settings(running_stack, dsn, sim_port).to_env()}

    def bot4(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot4", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    made = await asyncio.to_thread(bot4, "backup", "--json")
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["backup"]["backup_id"]
    listed = await asyncio.to_thread(bot4, "backup", "list", "--json")
    assert [r["status"] for r in json.loads(listed.stdout)] == ["verified"]
    async with scratch_postgres() as fresh:
        admin = await asyncpg.connect(fresh.dsn())
        await admin.execute("CREATE DATABASE bot4")
        await admin.close()
        restored = await asyncio.to_thread(
            bot4, "restore", "--backup", backup_id, "--target", fresh.dsn("bot4"), "--json"
        )
        again = await asyncio.to_thread(
            bot4, "restore", "--backup", backup_id, "--target", fresh.dsn("bot4")
        )
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["ok"]
    assert again.returncode == 1  # not empty any more: refused, nothing half-written
    assert "empty" in again.stderr
    bad = await asyncio.to_thread(bot4, "restore", "--backup", "nope", "--target", "x")
    assert bad.returncode == 2
    reconciled = await asyncio.to_thread(bot4, "reconcile", "--json")
    assert reconciled.returncode == 0, reconciled.stderr
    assert json.loads(reconciled.stdout)["breaks"] == []
    reported = await asyncio.to_thread(bot4, "report", "daily", "--json")
    assert reported.returncode == 0, reported.stderr
    listed_reports = await asyncio.to_thread(bot4, "report", "list", "--json")
    assert [r["report_id"] for r in json.loads(listed_reports.stdout)] == [
        json.loads(reported.stdout)["report_id"]
    ]
