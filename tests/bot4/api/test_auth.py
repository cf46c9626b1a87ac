"""Who may pass the door, over HTTP against a real ``bot4 api`` process and PostgreSQL.

Every refusal must answer the right status and leave an audit row naming why.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.bot4.api.conftest import Keys, audit_row
from tests.stubs.api import Recorder, RunningApi, api_settings, poll, running_api

pytestmark = pytest.mark.timeout(120)


async def _call(
    recorder: Recorder,
    api: RunningApi,
    path: str,
    *,
    key: str | None = None,
    method: str = "GET",
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, str]:
    """Send one request with a fresh correlation id; return the answer and the id."""
    correlation_id = uuid.uuid4().hex
    async with recorder.client(api, key) as http:
        answer = await http.request(
            method, path, json=json, headers={"X-Correlation-Id": correlation_id, **(headers or {})}
        )
    assert answer.headers["x-correlation-id"] == correlation_id
    return answer, correlation_id


async def _refused_and_audited(
    api: RunningApi, answer: httpx.Response, correlation_id: str, status: int, reason: str
) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert reason in answer.json()["error"]
    row = await audit_row(api.settings.db.effective_dsn(), correlation_id)
    assert row is not None, "no audit row for a refused request"
    assert row["status"] == status
    assert row["outcome"] == ("refused" if status in (401, 403) else "rate_limited")
    assert reason in (row["reason"] or "")
    return row


async def test_request_without_a_key_is_refused_401_and_audited(
    api: RunningApi, recorder: Recorder
):
    answer, cid = await _call(recorder, api, "/v1/status/api")
    row = await _refused_and_audited(api, answer, cid, 401, "no API key")
    assert answer.headers["www-authenticate"] == "Bearer"
    assert (row["key_id"], row["route"], row["method"]) == (None, "/v1/status/api", "GET")


async def test_unknown_and_malformed_keys_are_refused_401_and_audited(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    real = await keys.create("viewer")
    forged = real["key"][:-4] + ("AAAA" if not real["key"].endswith("AAAA") else "BBBB")
    unknown = f"b4_{'0' * 16}_{'x' * 43}"
    for key, reason in ((forged, "unknown API key"), (unknown, "unknown API key"),
                        ("not-a-key", "malformed API key")):  # fmt: skip
        answer, cid = await _call(recorder, api, "/v1/status/api", key=key)
        row = await _refused_and_audited(api, answer, cid, 401, reason)
        assert row["key_id"] is None  # a wrong secret names no key as the caller
    # a forged secret of a real id: the answer does not confirm the id exists
    answer, _ = await _call(recorder, api, "/v1/status/api", key=forged)
    assert answer.json()["error"] == "unknown API key"


async def test_revoked_key_is_refused_401_and_audited(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    victim = await keys.create("operator", name="leaked-operator")
    ok, _ = await _call(recorder, api, "/v1/whoami", key=victim["key"])
    assert ok.status_code == 200
    revoked, _ = await _call(recorder, api, f"/v1/keys/{victim['id']}/revoke", key=keys.admin,
                             method="POST", json={"reason": "leaked in a chat"})  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked"

    answer, cid = await _call(recorder, api, "/v1/whoami", key=victim["key"])
    row = await _refused_and_audited(api, answer, cid, 401, "was revoked")
    assert (row["key_id"], row["role"]) == (victim["id"], "operator")


async def test_expired_key_is_refused_401_and_audited(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    short = await keys.create("viewer", name="short-lived", expires_in_s=2)
    first, _ = await _call(recorder, api, "/v1/whoami", key=short["key"])
    assert first.status_code == 200, first.text

    async def refused() -> tuple[httpx.Response, str] | None:
        answer, cid = await _call(recorder, api, "/v1/whoami", key=short["key"])
        return (answer, cid) if answer.status_code == 401 else None

    answer, cid = await poll(refused, timeout_s=10, interval_s=0.25)
    await _refused_and_audited(api, answer, cid, 401, "expired")


async def test_role_below_the_route_is_refused_403_and_audited(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    viewer = await keys.create("viewer", name="low-viewer")
    trader = await keys.create("trader", name="low-trader")
    before, _ = await _call(recorder, api, "/v1/killswitch", key=viewer["key"])
    for key, method, path, body, needs in (
        (viewer["key"], "POST", "/v1/halt", {"reason": "test"}, "trader"),
        (trader["key"], "POST", "/v1/resume", {"reason": "test"}, "operator"),
        (trader["key"], "GET", "/v1/audit", None, "operator"),
        (trader["key"], "GET", "/v1/keys", None, "admin"),
    ):
        answer, cid = await _call(recorder, api, path, key=key, method=method, json=body)
        row = await _refused_and_audited(api, answer, cid, 403, f"needs role {needs}")
        assert row["route"] == path
    # and the flag was not touched by the refused halt
    after, _ = await _call(recorder, api, "/v1/killswitch", key=viewer["key"])
    assert after.json() == before.json()


async def test_operator_reads_the_audit_log_but_only_an_admin_decrypts(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    operator = await keys.create("operator", name="auditor")
    rows, _ = await _call(recorder, api, "/v1/audit?limit=5", key=operator["key"])
    assert rows.status_code == 200
    assert len(rows.json()) == 5
    answer, cid = await _call(recorder, api, "/v1/audit?decrypt=true", key=operator["key"])
    await _refused_and_audited(api, answer, cid, 403, "needs role admin")


async def test_rotation_keeps_both_keys_valid_for_the_overlap_then_the_old_one_dies(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    old = await keys.create("trader", name="rotating-bot")
    rotated, _ = await _call(recorder, api, f"/v1/keys/{old['id']}/rotate", key=keys.admin,
                             method="POST", json={"overlap_s": 2})  # fmt: skip
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    keys.remember(new)
    assert (new["name"], new["role"], new["rotated_from"]) == ("rotating-bot", "trader", old["id"])
    assert new["replaces"]["state"] == "retiring"

    for key in (old["key"], new["key"]):  # the overlap: both work
        answer, _ = await _call(recorder, api, "/v1/whoami", key=key)
        assert answer.status_code == 200, answer.text

    async def old_refused() -> tuple[httpx.Response, str] | None:
        answer, cid = await _call(recorder, api, "/v1/whoami", key=old["key"])
        return (answer, cid) if answer.status_code == 401 else None

    answer, cid = await poll(old_refused, timeout_s=10, interval_s=0.25)
    await _refused_and_audited(api, answer, cid, 401, f"use its successor {new['id']}")
    after, _ = await _call(recorder, api, "/v1/whoami", key=new["key"])
    assert after.status_code == 200
    again, _ = await _call(recorder, api, f"/v1/keys/{old['id']}/rotate", key=keys.admin,
                           method="POST", json={})  # fmt: skip
    assert again.status_code == 409


async def test_rate_limit_answers_429_with_retry_after_then_recovers(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    viewer = await keys.create("viewer", name="chatty-dashboard")  # 2/s, burst 5
    statuses = []
    for _ in range(30):  # the bucket refills while we send: count, do not assume timing
        answer, cid = await _call(recorder, api, "/v1/status/api", key=viewer["key"])
        statuses.append(answer.status_code)
        if answer.status_code != 200:
            break
    assert statuses[:5] == [200] * 5  # the burst
    row = await _refused_and_audited(api, answer, cid, 429, "rate limit of role viewer")
    assert int(answer.headers["retry-after"]) >= 1
    assert row["key_id"] == viewer["id"]

    async def admitted() -> bool:
        again, _ = await _call(recorder, api, "/v1/status/api", key=viewer["key"])
        return again.status_code == 200

    await poll(admitted, timeout_s=int(answer.headers["retry-after"]) + 5, interval_s=0.25)


async def test_admin_route_from_an_address_outside_the_allow_list_is_refused_403(
    api: RunningApi, recorder: Recorder, keys: Keys, new_home: Any, server_secrets: Any
):
    settings = api_settings(
        new_home(), api.settings.db.effective_dsn(), server_secrets,
        admin_networks=("10.20.0.0/16",),  # the test's 127.0.0.1 is not in it
    )  # fmt: skip
    with running_api(settings) as elsewhere:
        answer, cid = await _call(recorder, elsewhere, "/v1/keys", key=keys.admin)
        row = await _refused_and_audited(elsewhere, answer, cid, 403, "BOT4_API__ADMIN_NETWORKS")
        assert (row["role"], row["client"]) == ("admin", "127.0.0.1")
        # the same key may still use routes that are not admin routes
        ok, _ = await _call(recorder, elsewhere, "/v1/whoami", key=keys.admin)
        assert ok.status_code == 200


async def test_unknown_routes_need_a_key_first_and_oversized_bodies_are_refused(
    api: RunningApi, recorder: Recorder, keys: Keys
):
    anonymous, cid = await _call(recorder, api, "/v1/nowhere")
    await _refused_and_audited(api, anonymous, cid, 401, "no API key")  # no route map for free

    missing, cid = await _call(recorder, api, "/v1/nowhere", key=keys.admin)
    assert missing.status_code == 404
    row = await audit_row(api.settings.db.effective_dsn(), cid)
    assert row is not None
    assert (row["route"], row["outcome"]) == ("/v1/nowhere", "rejected")
    assert row["key_id"] is not None

    huge = {"reason": "x" * 70_000}
    too_big, cid = await _call(recorder, api, "/v1/halt", key=keys.admin, method="POST", json=huge)
    assert too_big.status_code == 413
    row = await audit_row(api.settings.db.effective_dsn(), cid)
    assert row is not None
    assert "body larger than" in (row["reason"] or "")
