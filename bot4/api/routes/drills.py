"""Disaster-recovery drills: the stored reports (viewer).

Running one is the ``dr_failover`` runbook (``POST /v1/runbooks/dr_failover/runs`` with
``drill: true``, or ``bot4 drill failover``).
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from bot4.api.auth import ServicesDep, Viewer, route_options
from bot4.api.roles import Role

router = APIRouter(prefix="/v1", tags=["drills"])


@router.get("/drills", **route_options(Role.VIEWER))
async def drills(
    _key: Viewer, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, object]]:
    """Return the stored drill reports, newest first: passed, RTO, RPO, why not passed."""
    rows = await services.pool.fetch(
        "SELECT drill_id, mode, started_at, stored_at, passed, rto_s, rpo_events, report_uri,"
        " report->'failures' AS failures FROM dr_drills ORDER BY started_at DESC LIMIT $1",
        limit,
    )
    return [
        {**dict(r), "started_at": r["started_at"].isoformat(),
         "stored_at": r["stored_at"].isoformat(),
         "failures": json.loads(r["failures"]) if r["failures"] else []}
        for r in rows
    ]  # fmt: skip
