"""The model registry, read-only (viewer): versions, their lifecycle and history.

Training and registering are ``bot4 model train`` (local: it needs the event file);
rolling a version out is the ``model_rollout`` runbook (``POST /v1/runbooks/model_rollout/runs``,
operator).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from bot4.api.auth import ServicesDep, Viewer, route_options
from bot4.api.errors import NotFoundError
from bot4.api.roles import Role
from engine.models.registry import ModelRegistry, UnknownModelError

router = APIRouter(prefix="/v1/models", tags=["models"])
VIEWER = route_options(Role.VIEWER)
VersionPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Model version")]


@router.get("", **VIEWER)
async def models(
    _key: Viewer, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, object]]:
    """Return the registered versions, newest first."""
    return [r.as_json() for r in await ModelRegistry(services.pool).versions(limit=limit)]


@router.get("/{version}", **VIEWER)
async def model(version: VersionPath, _key: Viewer, services: ServicesDep) -> dict[str, object]:
    """Return one version with its lifecycle history."""
    registry = ModelRegistry(services.pool)
    try:
        record = await registry.get(version)
    except UnknownModelError as e:
        raise NotFoundError(str(e)) from e
    history = [t.as_json() for t in await registry.history(version)]
    return {**record.as_json(), "history": history}
