"""Admin routes of the simulator: list, set and clear faults at run time.

Guarded by the ``X-Bot4-Admin-Token`` header (ExchangeSettings.sim_admin_token).

- ``GET /admin/faults`` -> ``{"active": [{"name", "params"}],``
  ``"catalog": [{"name", "doc", "params"}]}``
- ``PUT /admin/faults/{name}`` with a JSON object of parameters (may be empty) ->
  ``{"active": [...]}``; ``drop_websockets`` acts at once and answers ``{"dropped": n}`` too.
- ``DELETE /admin/faults/{name}`` -> ``{"cleared": [names]}``; ``DELETE /admin/faults`` clears all.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

import structlog
from aiohttp import web

from infra.exchange_sim.faults import DropWebsockets, FaultError, build_fault, catalog, describe
from infra.exchange_sim.http import VENUE_KEY
from infra.exchange_sim.metrics import METRICS_KEY

log = structlog.get_logger(__name__)

ADMIN_HEADER = "X-Bot4-Admin-Token"


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _authorized(request: web.Request) -> bool:
    token = request.headers.get(ADMIN_HEADER, "")
    expected = request.app[VENUE_KEY].config.admin_token
    return hmac.compare_digest(token.encode(), expected.encode())


def _active(request: web.Request) -> list[dict[str, Any]]:
    return [describe(f) for f in request.app[VENUE_KEY].faults.active.values()]


async def list_faults(request: web.Request) -> web.Response:
    """Answer the active faults and every known fault with its defaults."""
    if not _authorized(request):
        return _refuse(401, f"missing or wrong {ADMIN_HEADER} header")
    return web.json_response({"active": _active(request), "catalog": catalog()})


async def set_fault(request: web.Request) -> web.Response:
    """Activate a fault with the JSON object of parameters in the body."""
    if not _authorized(request):
        return _refuse(401, f"missing or wrong {ADMIN_HEADER} header")
    venue = request.app[VENUE_KEY]
    raw = await request.text()
    try:
        params = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return _refuse(400, "body must be a JSON object of fault parameters")
    if not isinstance(params, dict):
        return _refuse(400, "body must be a JSON object of fault parameters")
    try:
        fault = build_fault(request.match_info["name"], params)
    except FaultError as e:
        return _refuse(400, str(e))
    log.warning("fault_set", fault=describe(fault))
    request.app[METRICS_KEY].faults_set.labels(fault=fault.name).inc()
    if isinstance(fault, DropWebsockets):
        dropped = venue.hub.drop_all()
        return web.json_response({"active": _active(request), "dropped": dropped})
    venue.faults.set(fault)
    return web.json_response({"active": _active(request)})


async def clear_fault(request: web.Request) -> web.Response:
    """Clear one fault by name, or all when no name is given."""
    if not _authorized(request):
        return _refuse(401, f"missing or wrong {ADMIN_HEADER} header")
    name = request.match_info.get("name")
    cleared = request.app[VENUE_KEY].faults.clear(name)
    log.warning("fault_cleared", cleared=cleared)
    return web.json_response({"cleared": cleared, "active": _active(request)})


def add_routes(app: web.Application) -> None:
    """Register the admin routes."""
    app.router.add_get("/admin/faults", list_faults)
    app.router.add_put("/admin/faults/{name}", set_fault)
    app.router.add_post("/admin/faults/{name}", set_fault)
    app.router.add_delete("/admin/faults/{name}", clear_fault)
    app.router.add_delete("/admin/faults", clear_fault)
