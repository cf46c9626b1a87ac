"""What the operations console needs to know about its caller and the desk (viewer).

The console shows and offers what the signed-in key's role allows. Rather than keep a
second copy of the role rules in JavaScript, ``GET /v1/console/config`` answers, for each
action the console offers, whether this key may take it, read from the least role each
route declares (``x-required-role`` in the OpenAPI document): the routes stay the one
place the rules live, and the API still checks every call.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request

from bot4.api.auth import ServicesDep, Viewer, route_options
from bot4.api.roles import Role

router = APIRouter(prefix="/v1/console", tags=["console"])

POLL_INTERVAL_S: Final = 2
"""How often the overview refreshes the engines (the chart's resolution)."""

ACTIONS: Final = {
    "halt": ("post", "/v1/halt"),
    "resume": ("post", "/v1/resume"),
    "run_runbooks": ("post", "/v1/runbooks/{name}/runs"),
    "approve": ("post", "/v1/runbooks/runs/{workflow_id}/approve"),
    "abort": ("post", "/v1/runbooks/runs/{workflow_id}/abort"),
    "run_flows": ("post", "/v1/flows/{name}/runs"),
    "audit": ("get", "/v1/audit"),
}
"""Each action the console offers, and the route that carries it out."""


def least_roles(schema: dict[str, Any]) -> dict[str, Role]:
    """Return the least role of each console action, from the routes' declarations.

    Raises:
        KeyError: an action's route is missing (a renamed route: the test names it).
    """
    return {
        action: Role.parse(schema["paths"][path][method]["x-required-role"])
        for action, (method, path) in ACTIONS.items()
    }


@router.get("/config", **route_options(Role.VIEWER))
async def console_config(request: Request, key: Viewer, services: ServicesDep) -> dict[str, object]:
    """Return the caller's key, what it may do in the console, and the desk's UI links."""
    config = services.config
    roles = least_roles(request.app.openapi())
    temporal_ui = config.temporal_ui_url.rstrip("/")
    workflow_url = (
        f"{temporal_ui}/namespaces/{config.temporal_namespace}/workflows/{{workflow_id}}"
        if temporal_ui
        else None
    )
    return {
        "key": {"id": key.id, "name": key.name, "role": key.role.label},
        "permissions": {action: key.role >= role for action, role in roles.items()},
        "least_roles": {action: role.label for action, role in roles.items()},
        "roles": [role.label for role in Role],
        "temporal_ui_url": temporal_ui or None,
        "temporal_workflow_url": workflow_url,
        "prefect_ui_url": config.prefect_api_url.rstrip("/").removesuffix("/api"),
        "poll_interval_s": POLL_INTERVAL_S,
    }
