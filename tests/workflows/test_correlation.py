"""One correlation id from an API call to the journal rows it caused, and ``bot4 trace``.

Real parts only: a ``bot4 api`` process, a ``bot4 worker`` process polling a task queue of
this test on the session's Temporal, a ``bot4 engine run`` leading on a scratch database
against a simulator of its own. All three share one ``BOT4_HOME`` (one log file, as in
a stack). The operator's request is the emergency stop runbook: API → workflow →
``halt_engines`` activity → the engine's ``/admin/halt`` → its journaled HALTED state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from bot4.api.bootstrap import bootstrap_admin
from infra.stack.launcher import Stack
from tests.stubs.api import cli_env, poll, run_bot4, running_api
from tests.stubs.deploy import RELEASE
from tests.stubs.desk import desk_settings, running_worker
from tests.stubs.engine_process import EngineProcess
from tests.stubs.exchange_sim import ThreadedSim, sim_config

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def market() -> Iterator[int]:
    with ThreadedSim(sim_config(agent_orders_per_s=50.0)) as sim:
        yield sim.config.port


@pytest.fixture
def worker() -> Iterator[Any]:
    """Starts a ``bot4 worker`` for given settings; stops it at the end."""
    with contextlib.ExitStack() as workers:
        yield lambda settings: workers.enter_context(running_worker(settings))


async def test_one_id_from_the_api_call_to_the_journal_rows_and_trace_shows_it(
    running_stack: Stack, dsn: str, market: int, tmp_path: Path, worker: Any
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    release = tmp_path / "release.json"
    release.write_text(json.dumps(RELEASE))
    engine = EngineProcess(home, dsn, market, release, color="blue", instance="blue")
    settings = desk_settings(
        running_stack.settings, home, dsn, market, engine.port, queue="correlation-test"
    )
    os.environ.pop("BOT4_TEMPORAL__TASK_QUEUE", None)
    await engine.start()
    try:
        await engine.wait_for(lambda s: s.get("role") == "leader", within=60, what="leader")
        worker(settings)
        key_file = settings.api.effective_key_file(home)
        await bootstrap_admin(dsn, path=key_file, name="ops-admin", lifetime_s=0, force=False,
                              audit_key=settings.api.audit_key.get_secret_value().encode())  # type: ignore[union-attr]  # fmt: skip
        correlation_id = f"trace-{uuid.uuid4().hex[:12]}"
        with running_api(settings) as api:
            bearer = {"Authorization": f"Bearer {key_file.read_text().strip()}"}
            async with httpx.AsyncClient(base_url=api.url, timeout=30, headers=bearer) as http:
                answer = await http.post(
                    "/v1/runbooks/emergency_stop/runs",
                    json={"params": {"reason": "correlation test"}},
                    headers={"X-Correlation-ID": correlation_id},
                )
                assert answer.status_code in (200, 201, 202), answer.text
                assert answer.headers["X-Correlation-ID"] == correlation_id
                run = answer.json()

                async def ended() -> dict[str, Any] | None:
                    status = await http.get(f"/v1/runbooks/runs/{run['workflow_id']}")
                    document: dict[str, Any] = status.json()
                    return document if document.get("status") != "RUNNING" else None

                final = await poll(ended, timeout_s=90, interval_s=0.5)
        assert final["status"] == "COMPLETED", final

        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            rows = await pool.fetch(
                "SELECT kind, instance, body FROM journal_events WHERE correlation_id = $1",
                correlation_id,
            )
            untagged_quotes = await pool.fetchval(
                "SELECT count(*) FROM journal_events WHERE kind = 'order_new'"
                " AND correlation_id IS NOT NULL"
            )
        finally:
            await pool.close()
        halted = [json.loads(r["body"]) for r in rows if r["kind"] == "trading_state"]
        assert [b["to"] for b in halted] == ["HALTED"], rows
        assert {r["instance"] for r in rows} == {"blue"}
        # the engine's own decisions never carry an operator's id
        assert untagged_quotes == 0

        traced = await run_bot4(cli_env(settings), "trace", correlation_id, "--json")
        assert traced.returncode == 0, traced.stderr
        entries = json.loads(traced.stdout)["entries"]
        sources = {e["source"] for e in entries}
        assert "audit" in sources
        assert {"log api", "log worker", "log engine-run-blue", "journal blue"} <= sources, sources
        events = [e["what"].split()[0] for e in entries]
        # API call, then the workflow's activity, then the engine's action, then its row
        order = [events.index(name) for name in
                 ("runbook_started", "admin_action", "trading_state")]  # fmt: skip
        assert order == sorted(order), events
        activity_lines = [e for e in entries if e["source"] == "log worker"]
        assert all(e["detail"].get("workflow_id") == run["workflow_id"] for e in activity_lines)

        nothing = await run_bot4(cli_env(settings), "trace", "no-such-id")
        assert nothing.returncode == 1
        assert "nothing carries correlation id no-such-id" in nothing.stderr
        malformed = await run_bot4(cli_env(settings), "trace", "bad id!")
        assert malformed.returncode == 2
    finally:
        await engine.terminate()
        await asyncio.sleep(0)
