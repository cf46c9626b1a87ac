"""No secret leaves the control plane: not in logs, answers, the audit log or the key table.

Runs last in the package (files run in name order): it first pushes secrets at the API the
ways a careless client would, then greps every log file of every API server of the package
(and of the CLI runs against them) and every answer any test of the package received.
"""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import pytest

from bot4.api.keys import KEY_PATTERN
from tests.bot4.api.conftest import Keys
from tests.stubs.api import Recorder, RunningApi, ServerSecrets

pytestmark = pytest.mark.timeout(120)


async def _careless_requests(
    api: RunningApi, recorder: Recorder, keys: Keys, secrets: ServerSecrets
) -> None:
    victim = await keys.create("trader", name="careless-bot")
    key, exchange = victim["key"], secrets.exchange_secret
    async with recorder.client(api, key) as http:
        await http.post("/v1/halt", json={"reason": f"rotate {exchange}", "api_key": key})
        await http.post("/v1/engines/blue/pause", json={"reason": f"pasted {key} and {exchange}"})
        await http.get("/v1/audit", params={"route": key, "correlation_id": exchange})
        await http.get("/v1/nowhere", params={"token": exchange, "note": key})
        await http.get(f"/v1/keys/{key}/{exchange}")
        await http.post("/v1/resume", content=f"{key} {exchange}".encode())
        await http.get("/v1/whoami", headers={"X-Correlation-Id": exchange})
        await http.post("/v1/keys", json={"name": key, "role": "viewer", "secret": exchange})
    async with recorder.client(api, exchange) as http:  # a venue secret used as an API key
        await http.get("/v1/whoami")
    async with recorder.client(api, key + "x") as http:
        await http.get("/v1/whoami", params={"password": exchange})
        await http.get(f"/{exchange}/{key}")
    async with recorder.client(api, keys.admin) as http:  # and the admin reads it all back
        await http.get("/v1/audit", params={"limit": 1000, "decrypt": True})
        await http.get("/v1/status")


def _log_files(homes: list[Path]) -> list[Path]:
    return [path for home in homes for path in (home / "log").rglob("*") if path.is_file()]


async def test_no_secret_in_any_log_file_answer_or_stored_row(
    api: RunningApi,
    recorder: Recorder,
    keys: Keys,
    server_secrets: ServerSecrets,
    homes: list[Path],
):
    await _careless_requests(api, recorder, keys, server_secrets)
    key_secrets = [KEY_PATTERN.fullmatch(key).group(2) for key in keys.issued]  # type: ignore[union-attr]
    never = server_secrets.values()

    logs = _log_files(homes)
    assert any(path.name == "bot4.log" for path in logs)
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in [*never, *key_secrets]:
            assert secret not in text, f"a secret is in {path}"

    # run with the package, this holds the answers of every test of it (fuzzing included)
    assert len(recorder.answers) > 10
    shown: dict[str, list[str]] = {}
    for answer in recorder.answers:
        for secret in never:
            assert secret not in answer.text, (
                f"a configured secret in the answer to {answer.request}"
            )
        for match in KEY_PATTERN.finditer(answer.text):
            shown.setdefault(match.group(2), []).append(answer.request)
            creation = re.fullmatch(r"POST /v1/keys(/[0-9a-f]{16}/rotate)?( \[admin\])?",
                                    answer.request)  # fmt: skip
            assert creation, f"a key in the answer to {answer.request}"
            assert answer.status == 201, f"a key in a failed answer to {answer.request}"
    for requests in shown.values():
        assert len(requests) == 1, f"a key was shown {len(requests)} times: {requests}"
    assert set(shown) <= set(key_secrets)  # and every key shown was one a test tracked

    connection = await asyncpg.connect(api.settings.db.effective_dsn())
    try:
        stored = [
            str(dict(row))
            for table in ("audit_log", "api_keys", "kill_switch")
            for row in await connection.fetch(f"SELECT * FROM {table}")
        ]
    finally:
        await connection.close()
    assert len(stored) > 10
    for row in stored:
        for secret in [*never, *key_secrets]:
            assert secret not in row, "a secret is stored in PostgreSQL"
