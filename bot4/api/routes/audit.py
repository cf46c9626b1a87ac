"""Audit-log queries and the chain check (operator; decrypted parameters: admin)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query, Request

from bot4.api.audit import AuditQuery
from bot4.api.auth import Operator, ServicesDep, require, route_options
from bot4.api.keys import KEY_ID_PATTERN
from bot4.api.roles import Role

router = APIRouter(prefix="/v1/audit", tags=["audit"])
OPERATOR = route_options(Role.OPERATOR)
MAX_SEQ: Final = 2**62


@router.get("", **OPERATOR)
async def audit_rows(
    *,
    request: Request,
    _key: Operator,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_seq: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
    since_seq: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
    key_id: Annotated[str | None, Query(pattern=KEY_ID_PATTERN)] = None,
    route: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9/{}_.:-]{1,200}$")] = None,
    correlation_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    decrypt: Annotated[
        bool, Query(description="Show sensitive parameters in clear text (admin only)")
    ] = False,
) -> list[dict[str, object]]:
    """Return audit rows, newest first."""
    if decrypt:
        # the same check as an admin route: role and allow-listed network
        await require(Role.ADMIN, admin=True)(request, None)
    query = AuditQuery(limit=limit, before_seq=before_seq, since_seq=since_seq, key_id=key_id,
                       route=route, correlation_id=correlation_id, status=status)  # fmt: skip
    return await services.audit.rows(query, decrypt=decrypt)


@router.get("/verify", **OPERATOR)
async def verify(_key: Operator, services: ServicesDep) -> dict[str, object]:
    """Walk the hash chain; report the first broken link (``ok`` false) if any."""
    return (await services.audit.verify()).as_json()
