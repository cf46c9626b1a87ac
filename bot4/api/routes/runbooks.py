"""Runbooks: list, read, run, follow, approve and abort.

Listing, reading and following (one run, or the latest runs) need a viewer; running,
the runbook's own least role; approving a guarded step or aborting, an operator — never
the requester's own approval (the workflow's validator refuses it).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Path, Query

from bot4.api.auth import Operator, ServicesDep, Trader, Viewer, actor, route_options
from bot4.api.errors import PermissionDeniedError
from bot4.api.models import DecisionBody, RunbookRunBody
from bot4.api.roles import Role
from bot4.api.runbooks import WORKFLOW_ID_PATTERN, build_input, runbook
from workflows.approvals import Decision
from workflows.runbooks import RUNBOOKS

router = APIRouter(prefix="/v1/runbooks", tags=["runbooks"])
NAME_PATTERN: Final = r"^[a-z][a-z0-9_]{0,63}$"
NamePath = Annotated[str, Path(pattern=NAME_PATTERN)]
RunPath = Annotated[str, Path(pattern=WORKFLOW_ID_PATTERN)]


def _describe(name: str) -> dict[str, object]:
    book = runbook(name)
    return {
        "name": book.name,
        "workflow": book.workflow,
        "run_role": book.run_role,
        "steps": list(book.steps),
        "guarded_steps": list(book.guarded_steps),
        "summary": book.summary(),
        "parameters": book.parameters(),
    }


@router.get("", **route_options(Role.VIEWER))
async def list_runbooks(_key: Viewer) -> list[dict[str, object]]:
    """Return every runbook: steps, guarded steps, least role to run, parameters."""
    return [_describe(name) for name in sorted(RUNBOOKS)]


# before "/{name}": "runs" would otherwise be taken for a runbook's name
@router.get("/runs", **route_options(Role.VIEWER))
async def list_runs(
    _key: Viewer,
    services: ServicesDep,
    name: Annotated[str | None, Query(alias="runbook", pattern=NAME_PATTERN)] = None,
    state: Annotated[Literal["all", "running", "closed"], Query()] = "all",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, object]]:
    """Return the latest runs on this desk's queue, newest first, with progress or result."""
    workflow = runbook(name).workflow if name is not None else None
    return await services.runbooks.recent(runbook=workflow, state=state, limit=limit)


@router.get("/{name}", **route_options(Role.VIEWER))
async def show_runbook(name: NamePath, _key: Viewer) -> dict[str, object]:
    """Return one runbook with its markdown."""
    return {**_describe(name), "markdown": runbook(name).markdown()}


@router.post("/{name}/runs", status_code=201, **route_options(Role.TRADER))
async def run_runbook(
    name: NamePath, body: RunbookRunBody, key: Trader, services: ServicesDep
) -> dict[str, object]:
    """Start a run (or a dry run: the plan, no side effects); 409 if it already runs."""
    book = runbook(name)
    needed = Role.parse(book.run_role)
    if key.role < needed:
        raise PermissionDeniedError(
            f"runbook {name} needs role {needed.label} or higher; key {key.id} has role"
            f" {key.role.label}"
        )
    request = build_input(book, body.params, requested_by=actor(key), dry_run=body.dry_run)
    return {**await services.runbooks.start(book, request), "dry_run": body.dry_run}


@router.get("/runs/{workflow_id}", **route_options(Role.VIEWER))
async def run_status(
    workflow_id: RunPath, _key: Viewer, services: ServicesDep
) -> dict[str, object]:
    """Return a run's status, progress (step, approval awaited) and result or failure."""
    return await services.runbooks.status(workflow_id)


@router.post("/runs/{workflow_id}/approve", **route_options(Role.OPERATOR))
async def approve_run(
    workflow_id: RunPath, body: DecisionBody, key: Operator, services: ServicesDep
) -> dict[str, object]:
    """Approve the step the run waits for; 409 for the requester's own approval."""
    decision = Decision(by=actor(key), step=body.step or "", note=body.note or "")
    return await services.runbooks.decide(workflow_id, "approve", decision)


@router.post("/runs/{workflow_id}/abort", **route_options(Role.OPERATOR))
async def abort_run(
    workflow_id: RunPath, body: DecisionBody, key: Operator, services: ServicesDep
) -> dict[str, object]:
    """Abort a run: it stops (and rolls back, where it has something to undo)."""
    decision = Decision(by=actor(key), note=body.note or "")
    return await services.runbooks.decide(workflow_id, "abort", decision)
