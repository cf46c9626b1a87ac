"""The operations a chaos scenario runs, each started and followed through the control API.

Every call goes through ``bot4 api`` with the scenario's admin key, so each start and
each status poll is a row of the hash-chained audit log (checked afterwards). The
liquidation is ``bot4 liquidate --all`` (every symbol; a second operator approves it
through the API while the faults hit): a liquidation of named symbols cannot be started
through the API (its parameter model takes no lists, the workflow's input no string: a
bug reported with the chaos suite). A status
poll that fails while the database moves (503) is asked again; a run that has not ended
by its deadline is reported (and terminated, so the next scenario's business ids are
free).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
from temporalio.client import Client

from tests.chaos.rig import Rig
from tests.chaos.scenarios import FaultKind, Operation, Scenario

OPERATION_DEADLINE_S: Final = 180.0

_RUNBOOKS: Final = {
    Operation.ROLLOUT: "blue_green_deploy",
    Operation.LIQUIDATION: "liquidation",
    Operation.DR: "dr_failover",
}


@dataclass(kw_only=True)
class Run:
    """One operation's run as the API reported it."""

    workflow_id: str
    document: dict[str, Any]
    seconds: float
    api_calls: int

    @property
    def status(self) -> str:
        return str(self.document.get("status"))

    @property
    def result(self) -> dict[str, Any]:
        return dict(self.document.get("result") or {})


def params(scenario: Scenario, release: Path) -> dict[str, Any]:
    """Return the runbook parameters of the scenario's operation (short periods)."""
    if scenario.operation is Operation.ROLLOUT:
        return {"release_path": str(release), "warm_s": 1, "shadow_samples": 2, "bake_s": 3,
                "bake_interval_s": 1, "warm_timeout_s": 90, "first_order_timeout_s": 60,
                "reason": f"chaos {scenario.index}"}  # fmt: skip
    if scenario.operation is Operation.LIQUIDATION:
        return {"all_symbols": True, "deadline_s": 45, "slice_interval_ms": 300,
                "band_bps": 50.0, "reason": f"chaos {scenario.index}"}  # fmt: skip
    # with the primary killed, the drill kills it (its inject_fault step): an unplanned
    # failover cannot be started through the API once the primary is gone (the API
    # authenticates and audits in that database and answers 503)
    mode = "failover" if FaultKind.POSTGRES_KILL in scenario.kinds else "switchover"
    return {"mode": mode, "drill": True, "max_rto_s": 30.0, "detect_interval_ms": 100,
            "reason": f"chaos {scenario.index}"}  # fmt: skip


class ApiOperator:
    """An operator at the control API with the scenario's admin key."""

    def __init__(self, rig: Rig) -> None:
        bearer = {"Authorization": f"Bearer {rig.key_file.read_text().strip()}"}
        self.http = httpx.AsyncClient(base_url=rig.api_url, headers=bearer, timeout=30)
        self.rig = rig
        self.calls = 0
        self.approver: httpx.AsyncClient | None = None

    async def close(self) -> None:
        await self.http.aclose()
        if self.approver is not None:
            await self.approver.aclose()

    async def _call(
        self, method: str, path: str, *, http: httpx.AsyncClient | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request, asked again while the API answers 503 or does not answer."""
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = await (http or self.http).request(method, path, **kwargs)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            else:
                if answer.status_code != 503:
                    self.calls += 1  # answered: its audit row was committed first
                    return answer
                if time.monotonic() > deadline:
                    return answer
            await asyncio.sleep(0.5)

    async def start(self, scenario: Scenario, release: Path) -> str:
        """Start the scenario's runbook; return its workflow id."""
        body = {"params": params(scenario, release)}
        answer = await self._call("POST", f"/v1/runbooks/{_RUNBOOKS[scenario.operation]}/runs",
                                  json=body)  # fmt: skip
        assert answer.status_code == 201, f"runbook refused to start: {answer.text}"
        return str(answer.json()["workflow_id"])

    async def follow(
        self,
        workflow_id: str,
        *,
        within: float = OPERATION_DEADLINE_S,
        on_step: Callable[[str], None] | None = None,
    ) -> Run:
        """Poll the run's status until it ended or ``within`` passed; return the last.

        ``on_step`` hears each new step the run reports (its progress query), in order.
        """
        started = time.monotonic()
        document: dict[str, Any] = {}
        step = ""
        while time.monotonic() - started < within:
            answer = await self._call("GET", f"/v1/runbooks/runs/{workflow_id}")
            if answer.status_code == 200:
                document = answer.json()
                if document.get("status") != "RUNNING":
                    break
                progress = document.get("progress") or {}
                if on_step is not None and progress.get("step") not in (None, step):
                    step = str(progress["step"])
                    on_step(step)
                if progress.get("waiting_for_approval"):
                    await self._approve(workflow_id, str(progress["waiting_for_approval"]))
            await asyncio.sleep(0.5)
        else:
            await self._terminate(workflow_id)
        return Run(workflow_id=workflow_id, document=document,
                   seconds=time.monotonic() - started, api_calls=self.calls)  # fmt: skip

    async def _approve(self, workflow_id: str, step: str) -> None:
        """Approve ``step`` as a second operator (a key the admin creates for it)."""
        if self.approver is None:
            answer = await self._call("POST", "/v1/keys", json={
                "name": "chaos-approver", "role": "operator", "expires_in_s": 0})  # fmt: skip
            assert answer.status_code == 201, f"approver key refused: {answer.text}"
            bearer = {"Authorization": f"Bearer {answer.json()['key']}"}
            self.approver = httpx.AsyncClient(base_url=self.rig.api_url, headers=bearer,
                                              timeout=30)  # fmt: skip
        decision = {"step": step, "note": "chaos"}
        answer = await self._call("POST", f"/v1/runbooks/runs/{workflow_id}/approve",
                                  http=self.approver, json=decision)  # fmt: skip
        assert answer.status_code in (200, 409), f"approval refused: {answer.text}"

    async def _terminate(self, workflow_id: str) -> None:
        """End a stuck run (the next scenario may need its business id)."""
        temporal = self.rig.settings.temporal
        client = await Client.connect(temporal.effective_address(), namespace=temporal.namespace)
        await client.get_workflow_handle(workflow_id).terminate(reason="chaos: stuck run")
