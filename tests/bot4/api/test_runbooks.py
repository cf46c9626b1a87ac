"""Runbooks through the control plane: a real ``bot4 api`` process, the session stack's
Temporal dev server and its ``bot4 worker``, PostgreSQL for keys and the audit log.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.bot4.api.conftest import Keys, audit_row
from tests.bot4.api.test_auth import _call
from tests.stubs.api import Recorder, RunningApi, cli_env, poll, run_bot4

pytestmark = pytest.mark.timeout(120)


async def _status(recorder: Recorder, api: RunningApi, key: str, workflow_id: str) -> Any:
    answer, _ = await _call(recorder, api, f"/v1/runbooks/runs/{workflow_id}", key=key)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_runbooks_are_listed_with_steps_roles_and_their_markdown(
    api: RunningApi, recorder: Recorder, keys: Keys
) -> None:
    viewer = await keys.create("viewer", name="rb-viewer")
    answer, _ = await _call(recorder, api, "/v1/runbooks", key=viewer["key"])
    assert answer.status_code == 200, answer.text
    books = {b["name"]: b for b in answer.json()}
    assert books["emergency_stop"]["run_role"] == "trader"
    assert books["emergency_stop"]["steps"][0] == "halt_engines"
    assert books["stack_check"]["guarded_steps"] == ["stack_check.digest"]
    assert books["blue_green_deploy"]["guarded_steps"] == ["handoff"]
    assert books["blue_green_deploy"]["run_role"] == "operator"
    assert {p["name"] for p in books["stack_check"]["parameters"]} == {"token", "require_approval"}
    shown, _ = await _call(recorder, api, "/v1/runbooks/emergency_stop", key=viewer["key"])
    assert "## Failure and rollback" in shown.json()["markdown"]
    missing, _ = await _call(recorder, api, "/v1/runbooks/no_such_book", key=viewer["key"])
    assert missing.status_code == 404


async def test_guarded_step_needs_a_second_operator_never_the_requester(
    api: RunningApi, recorder: Recorder, keys: Keys
) -> None:
    alice = await keys.create("operator", name="alice")
    bob = await keys.create("operator", name="bob")
    viewer = await keys.create("viewer", name="rb-watcher")
    started, _ = await _call(
        recorder, api, "/v1/runbooks/stack_check/runs", key=alice["key"], method="POST",
        json={"params": {"token": "four-eyes", "require_approval": True}},
    )  # fmt: skip
    assert started.status_code == 201, started.text
    run = started.json()["workflow_id"]

    async def waiting() -> Any:
        status = await _status(recorder, api, viewer["key"], run)
        progress = status.get("progress") or {}
        return status if progress.get("waiting_for_approval") == "stack_check.digest" else None

    await poll(waiting, timeout_s=30, interval_s=0.2)
    own, cid = await _call(recorder, api, f"/v1/runbooks/runs/{run}/approve", key=alice["key"],
                           method="POST", json={"note": "looks fine to me"})  # fmt: skip
    assert own.status_code == 409, own.text
    assert "may not approve" in own.json()["error"]
    row = await audit_row(api.settings.db.effective_dsn(), cid)
    assert row is not None
    assert (row["status"], row["key_name"]) == (409, "alice")
    low, _ = await _call(recorder, api, f"/v1/runbooks/runs/{run}/approve", key=viewer["key"],
                         method="POST", json={})  # fmt: skip
    assert low.status_code == 403
    still = await _status(recorder, api, viewer["key"], run)
    assert still["status"] == "RUNNING"  # neither refused approval counted

    second, _ = await _call(recorder, api, f"/v1/runbooks/runs/{run}/approve", key=bob["key"],
                            method="POST", json={"step": "stack_check.digest"})  # fmt: skip
    assert second.status_code == 200, second.text

    async def completed() -> Any:
        status = await _status(recorder, api, viewer["key"], run)
        return status if status["status"] == "COMPLETED" else None

    done = await poll(completed, timeout_s=30, interval_s=0.2)
    assert done["result"]["approved_by"] == f"bob ({bob['id']})"
    assert done["result"]["token_sha256"]


async def test_abort_ends_a_waiting_run_and_approval_after_it_is_refused(
    api: RunningApi, recorder: Recorder, keys: Keys
) -> None:
    alice = await keys.create("operator", name="alice-abort")
    bob = await keys.create("operator", name="bob-abort")
    started, _ = await _call(
        recorder, api, "/v1/runbooks/stack_check/runs", key=alice["key"], method="POST",
        json={"params": {"token": "t", "require_approval": True}},
    )  # fmt: skip
    run = started.json()["workflow_id"]

    async def aborted() -> Any:
        answer, _ = await _call(recorder, api, f"/v1/runbooks/runs/{run}/abort",
                                key=alice["key"], method="POST",
                                json={"note": "wrong day"})  # fmt: skip
        return answer if answer.status_code == 200 else None  # 409 until it has started

    await poll(aborted, timeout_s=30, interval_s=0.3)

    async def failed() -> Any:
        status = await _status(recorder, api, alice["key"], run)
        return status if status["status"] == "FAILED" else None

    status = await poll(failed, timeout_s=30, interval_s=0.2)
    assert "aborted by alice-abort" in status["failure"]
    late, _ = await _call(recorder, api, f"/v1/runbooks/runs/{run}/approve", key=bob["key"],
                          method="POST", json={})  # fmt: skip
    assert late.status_code == 409


async def test_bad_parameters_and_roles_are_refused_before_anything_starts(
    api: RunningApi, recorder: Recorder, keys: Keys
) -> None:
    viewer = await keys.create("viewer", name="rb-low")
    trader = await keys.create("trader", name="rb-trader")
    bad: tuple[tuple[dict[str, Any], str], ...] = (
        ({"tokn": "x"}, "no parameter 'tokn'"),
        ({"token": "x", "requested_by": "someone else"}, "set by the server"),
        ({}, "token"),  # required
        ({"token": "x", "require_approval": "perhaps"}, "require_approval"),
    )
    path = "/v1/runbooks/stack_check/runs"
    for params, _named in bad:
        answer, _ = await _call(recorder, api, path, key=trader["key"], method="POST",
                                json={"params": params})  # fmt: skip
        # a trader may not run stack_check (operator) at all: the role is checked first
        assert answer.status_code == 403, answer.text
    operator = await keys.create("operator", name="rb-operator")
    for params, named in bad:
        answer, _ = await _call(recorder, api, path, key=operator["key"], method="POST",
                                json={"params": params})  # fmt: skip
        assert answer.status_code == 422, answer.text
        assert named in answer.json()["error"]
    refused, _ = await _call(
        recorder, api, "/v1/runbooks/emergency_stop/runs", key=viewer["key"], method="POST",
        json={"params": {"reason": "x"}, "dry_run": True},
    )  # fmt: skip
    assert refused.status_code == 403


async def test_emergency_stop_dry_run_by_a_trader_returns_the_plan(
    api: RunningApi, recorder: Recorder, keys: Keys
) -> None:
    """A dry run only: the session worker's real stop would act on the session's desk."""
    trader = await keys.create("trader", name="rb-stopper")
    started, _ = await _call(
        recorder, api, "/v1/runbooks/emergency_stop/runs", key=trader["key"], method="POST",
        json={"params": {"reason": "drill: plan only"}, "dry_run": True},
    )  # fmt: skip
    assert started.status_code == 201, started.text
    run = started.json()["workflow_id"]

    async def completed() -> Any:
        status = await _status(recorder, api, trader["key"], run)
        return status if status["status"] == "COMPLETED" else None

    done = await poll(completed, timeout_s=30, interval_s=0.2)
    assert done["result"]["dry_run"] is True
    assert done["result"]["requested_by"] == f"rb-stopper ({trader['id']})"
    assert done["result"]["plan"]["kill_switch"] == "desk"


async def test_cli_lists_runs_with_wait_and_refuses_a_malformed_param(
    api: RunningApi, keys: Keys
) -> None:
    operator = await keys.create("operator", name="rb-cli")
    env = cli_env(api.settings, BOT4_API_KEY=operator["key"])
    listed = await run_bot4(env, "runbook", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {"stack_check", "emergency_stop"} <= {b["name"] for b in json.loads(listed.stdout)}
    ran = await run_bot4(env, "runbook", "run", "stack_check", "--param", "token=cli",
                      "--wait", "--json")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    documents, text, decoder = [], ran.stdout.strip(), json.JSONDecoder()
    while text:  # the start, then the final status: two documents
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].strip()
    assert documents[0]["runbook"] == "stack_check"
    final = documents[-1]
    assert final["status"] == "COMPLETED"
    assert final["result"]["token_sha256"] == hashlib.sha256(b"cli").hexdigest()
    bad = await run_bot4(env, "runbook", "run", "stack_check", "--param", "token")
    assert bad.returncode == 2
    assert "write it as name=value" in bad.stderr
    unknown = await run_bot4(env, "runbook", "run", "stack_check", "--param", "tokn=x")
    assert unknown.returncode == 1
    assert "no parameter 'tokn'" in unknown.stderr


async def test_rollout_of_a_manifest_that_does_not_load_is_refused_before_it_starts(
    api: RunningApi, recorder: Recorder, keys: Keys, tmp_path: Path
) -> None:
    operator = await keys.create("operator", name="rb-deployer")
    broken = tmp_path / "release.json"
    broken.write_text('{"version": "r-broken", "unknown_key": 1}')
    answer, _ = await _call(
        recorder, api, "/v1/runbooks/blue_green_deploy/runs", key=operator["key"],
        method="POST", json={"params": {"release_path": str(broken)}},
    )  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert "blue_green_deploy" in answer.json()["error"]
    env = cli_env(api.settings, BOT4_API_KEY=operator["key"])
    missing = await run_bot4(env, "rollout", "engine", "--release", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    refused = await run_bot4(env, "rollout", "engine", "--release", str(broken))
    assert refused.returncode == 1
    assert "422" in refused.stderr
