"""Status of the API, the stack and every engine (viewer)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from bot4.api.auth import ServicesDep, Viewer, route_options
from bot4.api.errors import ApiError
from bot4.api.roles import Role

router = APIRouter(prefix="/v1", tags=["status"])
VIEWER = route_options(Role.VIEWER)


@router.get("/status/api", **VIEWER)
async def api_status(key: Viewer, services: ServicesDep) -> dict[str, object]:
    """Return the API's own status and the caller's key (cheap: no other server asked)."""
    now = services.clock.now()
    return {
        "api": {
            "version": "v1",
            "started_at": services.started_at.isoformat(),
            "uptime_s": round((now - services.started_at).total_seconds(), 3),
            "audit_head_seq": services.writer.head_seq,
        },
        "key": {"id": key.id, "name": key.name, "role": key.role.label},
    }


@router.get("/whoami", **VIEWER)
async def whoami(key: Viewer, services: ServicesDep) -> dict[str, object]:
    """Return the caller's own key (no secret)."""
    return key.as_json(services.clock.now())


@router.get("/status", **VIEWER)
async def status(key: Viewer, services: ServicesDep) -> dict[str, object]:
    """Return the stack's components, every engine's status and the kill switch.

    ``healthy`` is the stack's health and a readable kill switch; each engine says whether
    it was reached and, if so, its own status (trading state, role, lags).
    """
    stack_task = asyncio.create_task(_stack(services))
    engines, kill_switch = await asyncio.gather(services.engines.statuses(), _kill_switch(services))
    stack = await stack_task
    # engines are not part of health: most of the time only one color runs
    healthy = bool(stack.get("healthy", False)) and "error" not in kill_switch
    return {
        "healthy": healthy,
        "api": (await api_status(key, services))["api"],
        "stack": stack,
        "engines": engines,
        "kill_switch": kill_switch,
    }


async def _stack(services: ServicesDep) -> dict[str, object]:
    probe = services.stack_probe
    if probe is None:
        return {"healthy": True, "components": [], "note": "no local stack to probe"}
    timeout_s = services.config.status_timeout_s
    try:
        document = await asyncio.wait_for(asyncio.to_thread(probe), timeout_s)
    except TimeoutError:
        return {"healthy": False, "error": f"the stack probe took longer than {timeout_s} s"}
    except Exception as e:  # a probe is best effort; its failure is part of the status
        return {"healthy": False, "error": services.scrubber.text(f"{type(e).__name__}: {e}")}
    cleaned = services.scrubber.value(document)
    return dict(cleaned) if isinstance(cleaned, dict) else {"healthy": False}


async def _kill_switch(services: ServicesDep) -> dict[str, object]:
    try:
        return await services.kill_switch.read()
    except ApiError as e:
        return {"error": e.message}
