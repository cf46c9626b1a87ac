"""The chores: run a served flow now (operator); list backups, reconciliations, reports (viewer).

A run asked here is a run of the deployment ``<flow>/scheduled`` that ``bot4 flows
serve`` serves: Prefect records it, the runner executes it, the Prefect UI shows it. One
run per flow at a time: while one is due, pending or running, another is refused (409).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import httpx
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from bot4.api.auth import Operator, ServicesDep, Viewer, route_options
from bot4.api.errors import ApiError, ConflictError, UnavailableError, UpstreamError
from bot4.api.roles import Role
from flows.backups import backup_json
from flows.report_index import fetch_reports

router = APIRouter(prefix="/v1", tags=["flows"])
VIEWER = route_options(Role.VIEWER)
DEPLOYMENT: Final = "scheduled"
FlowPath = Annotated[str, Path(pattern=r"^(backup|reconcile|report)$", description="Flow")]


class InvalidParameterError(ApiError):
    """A parameter the asked flow does not take."""

    status = 422


class FlowRunBody(BaseModel):
    """Parameters of a run; each flow takes its own (others are refused)."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool | None = Field(default=None, description="backup, report: change nothing")
    repair: bool | None = Field(default=None, description="reconcile: journal missing fills")
    day: str | None = Field(
        default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="report: YYYY-MM-DD"
    )


_ALLOWED: Final = {"backup": {"dry_run"}, "reconcile": {"repair"}, "report": {"day", "dry_run"}}


@router.post("/flows/{name}/runs", status_code=201, **route_options(Role.OPERATOR))
async def run_flow(
    name: FlowPath, body: FlowRunBody, _key: Operator, services: ServicesDep
) -> dict[str, object]:
    """Start a run of the served deployment now; return its Prefect id and UI link."""
    parameters = body.model_dump(exclude_none=True)
    extra = set(parameters) - _ALLOWED[name]
    if extra:
        raise InvalidParameterError(f"flow {name} takes no parameter {sorted(extra)}")
    api = services.config.prefect_api_url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            found = await http.get(f"{api}/deployments/name/{name}/{DEPLOYMENT}")
            if found.status_code == 404:
                raise UnavailableError(
                    f"no deployment {name}/{DEPLOYMENT}: is `bot4 flows serve` running?"
                )
            found.raise_for_status()
            deployment_id = found.json()["id"]
            running = await _active_run(http, api, deployment_id)
            if running is not None:
                raise ConflictError(
                    f"{name} already has a run under way ({running['name']}, state"
                    f" {running.get('state_type')}, id {running['id']}); wait for it to finish"
                )
            made = await http.post(
                f"{api}/deployments/{deployment_id}/create_flow_run",
                json={"parameters": parameters},
            )
            made.raise_for_status()
    except httpx.TransportError as e:
        raise UnavailableError(f"Prefect is unreachable ({type(e).__name__})") from e
    except httpx.HTTPStatusError as e:
        raise UpstreamError(f"Prefect answered {e.response.status_code}") from e
    run: dict[str, Any] = made.json()
    ui = api.removesuffix("/api")
    return {"flow": name, "deployment": f"{name}/{DEPLOYMENT}", "flow_run_id": run["id"],
            "flow_run_name": run["name"], "parameters": parameters,
            "ui_url": f"{ui}/runs/flow-run/{run['id']}"}  # fmt: skip


async def _active_run(
    http: httpx.AsyncClient, api: str, deployment_id: str
) -> dict[str, Any] | None:
    """Return a run of the deployment that is due, pending or running, if any.

    One at a time: a double click must not start two backups.
    """
    soon = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()
    answer = await http.post(f"{api}/flow_runs/filter", json={
        "flow_runs": {"deployment_id": {"any_": [deployment_id]},
                      "state": {"type": {"any_": ["SCHEDULED", "PENDING", "RUNNING"]}},
                      "expected_start_time": {"before_": soon}},
        "limit": 1,
    })  # fmt: skip
    answer.raise_for_status()
    runs: list[dict[str, Any]] = answer.json()
    return runs[0] if runs else None


@router.get("/backups", **VIEWER)
async def backups(
    _key: Viewer, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, object]]:
    """Return the backups, newest first, with their restore-test status."""
    rows = await services.pool.fetch(
        "SELECT * FROM flow_backups ORDER BY created_at DESC LIMIT $1", limit
    )
    return [backup_json(r) for r in rows]


@router.get("/reconciliation/breaks", **VIEWER)
async def breaks(_key: Viewer, services: ServicesDep) -> dict[str, object]:
    """Return the latest reconciliation run and its breaks."""
    run = await services.pool.fetchrow(
        "SELECT * FROM reconciliation_runs ORDER BY started_at DESC LIMIT 1"
    )
    if run is None:
        return {"run": None, "breaks": []}
    rows = await services.pool.fetch(
        "SELECT kind, break_key, symbol, asset, expected, actual, detail, consecutive_runs,"
        " escalated, repaired FROM reconciliation_breaks WHERE run_id = $1 ORDER BY seq",
        run["run_id"],
    )
    return {
        "run": {"run_id": str(run["run_id"]), "venue": run["venue"],
                "started_at": run["started_at"].isoformat(), "breaks": run["breaks"],
                "escalated": run["escalated"], "repaired": run["repaired"],
                "fills_checked": run["fills_checked"]},
        "breaks": [{**dict(r), "detail": json.loads(r["detail"])} for r in rows],
    }  # fmt: skip


@router.get("/reconciliation/runs", **VIEWER)
async def reconciliation_runs(
    _key: Viewer, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, object]]:
    """Return the reconciliation runs, newest first, with their break counts and summary."""
    rows = await services.pool.fetch(
        "SELECT run_id, venue, started_at, finished_at, fills_checked, breaks, escalated,"
        " repaired, summary FROM reconciliation_runs ORDER BY started_at DESC LIMIT $1",
        limit,
    )
    return [{**dict(r), "run_id": str(r["run_id"]), "started_at": r["started_at"].isoformat(),
             "finished_at": r["finished_at"].isoformat(), "summary": json.loads(r["summary"])}
            for r in rows]  # fmt: skip


@router.get("/reports", **VIEWER)
async def reports(
    _key: Viewer, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, object]]:
    """Return the stored reports, newest day first."""
    return await fetch_reports(services.pool, limit=limit)
