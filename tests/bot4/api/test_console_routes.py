"""The read routes the operations console needs, through a real ``bot4 api`` process.

``/v1/console/config`` (what the key may do, the Temporal UI link), ``/v1/runbooks/runs``
(the latest runs of this desk's queue, with results), ``/v1/reconciliation/runs`` and
``/v1/alerts`` (the local Prometheus's, or none with a note). Each is role-checked and
audited like every route.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.stack.launcher import Stack
from tests.bot4.api.conftest import Keys, audit_row
from tests.bot4.api.test_auth import _call
from tests.stubs.api import Recorder, RunningApi, ServerSecrets, api_settings, poll, running_api
from tests.stubs.chores_seed import seed_chores
from tests.stubs.ports import free_ports
from tests.stubs.prometheus import require_prometheus

pytestmark = pytest.mark.timeout(120)

ACTIONS = ("halt", "resume", "run_runbooks", "approve", "abort", "run_flows", "audit")
MAY = {
    "viewer": set(),
    "trader": {"halt", "run_runbooks"},
    "operator": set(ACTIONS),
    "admin": set(ACTIONS),
}


async def test_console_config_says_what_each_role_may_do_as_the_routes_declare(
    api: RunningApi, recorder: Recorder, keys: Keys, running_stack: Stack
) -> None:
    tokens = {role: (await keys.create(role, name=f"console-{role}"))["key"]
              for role in ("viewer", "trader", "operator")}  # fmt: skip
    tokens["admin"] = keys.admin
    async with recorder.client(api) as http:  # public: no key, no audit row
        paths = (await http.get("/v1/openapi.json")).json()["paths"]
    for role, token in tokens.items():
        answer, correlation_id = await _call(recorder, api, "/v1/console/config", key=token)
        assert answer.status_code == 200, answer.text
        config = answer.json()
        assert config["key"]["role"] == role
        assert {a for a, allowed in config["permissions"].items() if allowed} == MAY[role], role
        row = await audit_row(api.settings.db.effective_dsn(), correlation_id)
        assert row is not None
        assert (row["route"], row["key_id"], row["status"]) == (
            "/v1/console/config", config["key"]["id"], 200)  # fmt: skip
    # the least roles are the routes' own declarations, not a second copy of the rules
    assert config["least_roles"]["halt"] == paths["/v1/halt"]["post"]["x-required-role"]
    assert config["least_roles"]["audit"] == paths["/v1/audit"]["get"]["x-required-role"]
    temporal = running_stack.settings.temporal
    assert config["temporal_workflow_url"] == (
        f"http://{temporal.host}:{temporal.ui_port}/namespaces/default/workflows/{{workflow_id}}"
    )
    assert config["roles"] == ["viewer", "trader", "operator", "admin"]
    anonymous, _ = await _call(recorder, api, "/v1/console/config")
    assert anonymous.status_code == 401


async def test_runbook_runs_lists_the_latest_runs_with_progress_and_results(
    api: RunningApi, recorder: Recorder, keys: Keys
) -> None:
    operator = (await keys.create("operator", name="runs-operator"))["key"]
    viewer = (await keys.create("viewer", name="runs-viewer"))["key"]
    started = {}
    for name, body in (
        ("dry", {"params": {"token": "listed"}, "dry_run": True}),
        ("real", {"params": {"token": "listed"}}),
        ("guarded", {"params": {"token": "listed", "require_approval": True}}),
    ):
        answer, _ = await _call(recorder, api, "/v1/runbooks/stack_check/runs", key=operator,
                                method="POST", json=body)  # fmt: skip
        assert answer.status_code == 201, answer.text
        started[name] = answer.json()["workflow_id"]

    async def listed() -> Any:
        answer, _ = await _call(recorder, api, "/v1/runbooks/runs?runbook=stack_check&limit=200",
                                key=viewer)  # fmt: skip
        assert answer.status_code == 200, answer.text
        runs = {r["workflow_id"]: r for r in answer.json()}
        if not all(i in runs for i in started.values()):
            return None  # visibility lags the start by a moment
        real, guarded = runs[started["real"]], runs[started["guarded"]]
        waiting = (guarded.get("progress") or {}).get("waiting_for_approval")
        return (answer.json(), runs) if real["status"] == "COMPLETED" and waiting else None

    document, runs = await poll(listed, timeout_s=30, interval_s=0.5)
    starts = [r["started_at"] for r in document]
    assert starts == sorted(starts, reverse=True)  # newest first
    assert {r["runbook"] for r in document} == {"stack_check"}
    assert runs[started["dry"]]["result"]["dry_run"] is True
    digest = hashlib.sha256(b"listed").hexdigest()
    assert runs[started["real"]]["result"]["token_sha256"] == digest
    assert runs[started["guarded"]]["status"] == "RUNNING"

    running, _ = await _call(recorder, api, "/v1/runbooks/runs?state=running", key=viewer)
    assert started["guarded"] in {r["workflow_id"] for r in running.json()}
    assert started["real"] not in {r["workflow_id"] for r in running.json()}
    aborted, _ = await _call(recorder, api, f"/v1/runbooks/runs/{started['guarded']}/abort",
                             key=operator, method="POST", json={"note": "listed"})  # fmt: skip
    assert aborted.status_code == 200, aborted.text

    unknown, _ = await _call(recorder, api, "/v1/runbooks/runs?runbook=no_such_book", key=viewer)
    assert unknown.status_code == 404
    bad, cid = await _call(recorder, api, "/v1/runbooks/runs?limit=0", key=viewer)
    assert bad.status_code == 422
    row = await audit_row(api.settings.db.effective_dsn(), cid)
    assert row is not None
    assert (row["route"], row["status"]) == ("/v1/runbooks/runs", 422)
    # "runs" is not taken for a runbook's name
    anonymous, _ = await _call(recorder, api, "/v1/runbooks/runs")
    assert anonymous.status_code == 401


async def test_reconciliation_runs_are_listed_newest_first_with_their_breaks(
    api: RunningApi, recorder: Recorder, keys: Keys, api_dsn: str
) -> None:
    seeded = await seed_chores(api_dsn, now=datetime(2025, 1, 15, 12, tzinfo=UTC))
    viewer = (await keys.create("viewer", name="recon-viewer"))["key"]
    answer, _ = await _call(recorder, api, "/v1/reconciliation/runs", key=viewer)
    assert answer.status_code == 200, answer.text
    runs = answer.json()
    starts = [r["started_at"] for r in runs]
    assert starts == sorted(starts, reverse=True)
    ours = next(r for r in runs if r["run_id"] == seeded.reconciliation_run_id)
    assert (ours["breaks"], ours["fills_checked"], ours["summary"]) == (1, 42, {"balance_drift": 1})
    bad, _ = await _call(recorder, api, "/v1/reconciliation/runs?limit=0", key=viewer)
    assert bad.status_code == 422


async def test_alerts_come_from_the_local_prometheus_or_say_there_is_none(
    new_home: Any, api_dsn: str, server_secrets: ServerSecrets, running_stack: Stack,
    recorder: Recorder, keys: Keys,
) -> None:  # fmt: skip
    require_prometheus()
    viewer = (await keys.create("viewer", name="alerts-viewer"))["key"]
    silent = api_settings(new_home(), api_dsn, server_secrets)
    silent = silent.model_copy(update={"prometheus": silent.prometheus.model_copy(
        update={"port": free_ports(1)[0]})})  # fmt: skip
    with running_api(silent) as api:
        none, cid = await _call(recorder, api, "/v1/alerts", key=viewer)
        anonymous, _ = await _call(recorder, api, "/v1/alerts")
        row = await audit_row(api_dsn, cid)
    assert none.status_code == 200, none.text
    assert none.json()["available"] is False
    assert none.json()["alerts"] == []
    assert "does not answer" in none.json()["note"]
    assert anonymous.status_code == 401
    assert row is not None
    assert (row["route"], row["status"]) == ("/v1/alerts", 200)

    watched = api_settings(new_home(), api_dsn, server_secrets)
    watched = watched.model_copy(update={"prometheus": running_stack.settings.prometheus})
    with running_api(watched) as api:
        some, _ = await _call(recorder, api, "/v1/alerts", key=viewer)
    assert some.status_code == 200, some.text
    document = some.json()
    assert document["available"] is True, document
    assert document["source"].endswith(f":{running_stack.settings.prometheus.port}")
    for alert in document["alerts"]:
        assert alert["state"] in ("pending", "firing")
        assert alert["name"].startswith("Bot4")
        assert alert["runbook_url"]
    states = [a["state"] for a in document["alerts"]]
    assert states == sorted(states, key=lambda s: s != "firing")  # firing first
