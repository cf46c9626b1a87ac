"""Stored drill reports through the control API (viewer) and ``bot4 drill list``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from tests.bot4.api.conftest import Keys
from tests.stubs.api import Recorder, ServerSecrets, api_settings, cli_env, run_bot4, running_api

pytestmark = pytest.mark.timeout(120)


async def test_viewer_lists_stored_drills_newest_first_and_the_cli_prints_them(
    new_home: Any, api_dsn: str, server_secrets: ServerSecrets, recorder: Recorder, keys: Keys
) -> None:
    connection = await asyncpg.connect(api_dsn)
    try:
        for day, passed, failures in ((1, True, []), (2, False, ["RTO 12.0 s over the 10 s"])):
            started = datetime(2026, 11, day, 3, tzinfo=UTC)
            report = {"passed": passed, "failures": failures, "mode": "switchover"}
            await connection.execute(
                "INSERT INTO dr_drills (drill_id, mode, started_at, passed, rto_s, rpo_events,"
                " report) VALUES ($1, 'switchover', $2, $3, $4, 0, $5::jsonb)"
                " ON CONFLICT (drill_id) DO NOTHING",
                started.strftime("%Y%m%dT%H%M%SZ") + "-switchover", started, passed,
                0.4 if passed else 12.0, json.dumps(report),
            )  # fmt: skip
    finally:
        await connection.close()
    viewer = (await keys.create("viewer", name="drills-viewer"))["key"]
    settings = api_settings(new_home(), api_dsn, server_secrets)
    with running_api(settings) as api:
        async with recorder.client(api, viewer) as http:
            listed = await http.get("/v1/drills")
            bad = await http.get("/v1/drills", params={"limit": 0})
        async with recorder.client(api, None) as http:
            anonymous = await http.get("/v1/drills")
        printed = await run_bot4(cli_env(api.settings, BOT4_API_KEY=viewer), "drill", "list")

    assert listed.status_code == 200, listed.text
    rows = [r for r in listed.json() if r["drill_id"].startswith("202611")]
    assert [r["drill_id"][:8] for r in rows][:2] == ["20261102", "20261101"]  # newest first
    assert rows[0]["passed"] is False
    assert rows[0]["failures"] == ["RTO 12.0 s over the 10 s"]
    assert rows[1]["rto_s"] == 0.4
    assert bad.status_code == 422
    assert anonymous.status_code == 401
    assert printed.returncode == 0, printed.stderr
    assert "20261102T030000Z-switchover" in printed.stdout
    assert "RTO 12.0 s over the 10 s" in printed.stdout
