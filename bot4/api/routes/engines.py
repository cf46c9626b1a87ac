"""Engine admin actions proxied to the engines' control endpoints, and the desk halt.

Each action's least role follows the desk's rule "anyone may lower risk, only an operator
raises it": halt, pause, drain and reduce need a trader; resume, leadership moves, model
loads, flatten and restore need an operator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from bot4.api.auth import Operator, ServicesDep, Trader, Viewer, actor, route_options
from bot4.api.keys import KeyRecord
from bot4.api.models import Color, HaltBody, LoadModelBody, ReasonBody, ResumeBody, SymbolsBody
from bot4.api.roles import Role
from bot4.api.runtime import Services

router = APIRouter(prefix="/v1", tags=["engines"])

ACTION_ROLES: Final = {
    "halt": Role.TRADER,
    "pause": Role.TRADER,
    "drain": Role.TRADER,
    "resume": Role.OPERATOR,
    "release_leadership": Role.OPERATOR,
    "acquire_leadership": Role.OPERATOR,
    "flatten": Role.OPERATOR,
    "load_model": Role.OPERATOR,
    "reduce": Role.TRADER,  # out of the strategy: lowers risk
    "restore": Role.OPERATOR,  # back into the strategy: raises it
}
ColorPath = Annotated[Color, Path(description="Engine color, or all")]


def _answer(document: dict[str, object], rows: list[dict[str, object]]) -> JSONResponse:
    """200 when every engine did it, 503 when none answered, else 502."""
    reached = [r for r in rows if r["reached"]]
    if rows and all(r["ok"] for r in rows):
        status = 200
    elif not reached:
        status = 503
    else:
        status = 502
    return JSONResponse({**document, "ok": status == 200}, status_code=status)


@router.get("/engines", **route_options(Role.VIEWER))
async def engine_statuses(_key: Viewer, services: ServicesDep) -> list[dict[str, object]]:
    """Return every engine's ``/status``."""
    return await services.engines.statuses()


@router.get("/engines/{color}", **route_options(Role.VIEWER))
async def engine_status(
    color: ColorPath, _key: Viewer, services: ServicesDep
) -> list[dict[str, object]]:
    """Return the ``/status`` of the engine(s) ``color`` names."""
    return await services.engines.statuses(color)


@router.get("/killswitch", **route_options(Role.VIEWER))
async def kill_switch(_key: Viewer, services: ServicesDep) -> dict[str, object]:
    """Return the desk's kill-switch flag."""
    return await services.kill_switch.read()


@router.post("/halt", **route_options(Role.TRADER))
async def desk_halt(body: HaltBody, key: Trader, services: ServicesDep) -> JSONResponse:
    """Engage the kill switch and halt the engines (cancel all, verified).

    Both paths run; the answer is 200 when at least one worked and no engine that answered
    failed to verify its halt (like ``bot4 engine halt``).
    """
    by = actor(key)
    flag = await services.kill_switch.set(engaged=True, reason=body.reason, by=by)
    engines = await services.engines.admin(body.color, "halt", by=by, reason=body.reason)
    return _desk_answer(flag, engines)


@router.post("/resume", **route_options(Role.OPERATOR))
async def desk_resume(body: ResumeBody, key: Operator, services: ServicesDep) -> JSONResponse:
    """Disengage the kill switch; with ``engines``, also resume the engines."""
    by = actor(key)
    flag = await services.kill_switch.set(engaged=False, reason=body.reason, by=by)
    engines = (
        await services.engines.admin(body.color, "resume", by=by, reason=body.reason)
        if body.engines
        else []
    )
    return _desk_answer(flag, engines)


def _desk_answer(flag: dict[str, object], engines: list[dict[str, object]]) -> JSONResponse:
    answered = [e for e in engines if e["reached"]]
    refused = [e for e in answered if not e["ok"]]
    ok = ("error" not in flag or bool(answered)) and not refused
    status = 200 if ok else (503 if "error" in flag and not answered else 502)
    return JSONResponse({"kill_switch": flag, "engines": engines, "ok": ok}, status_code=status)


Action = Callable[..., Awaitable[JSONResponse]]


async def _engine_action(
    action: str, color: str, reason: str, key: KeyRecord, services: Services
) -> JSONResponse:
    rows = await services.engines.admin(color, action, by=actor(key), reason=reason)
    return _answer({"action": action, "engines": rows}, rows)


def _action_route(action: str, role: Role) -> Action:
    # one function per role: annotations are resolved by name, so the role's alias is fixed
    if role is Role.TRADER:

        async def as_trader(
            color: ColorPath, body: ReasonBody, key: Trader, services: ServicesDep
        ) -> JSONResponse:
            return await _engine_action(action, color, body.reason, key, services)

        return as_trader

    async def as_operator(
        color: ColorPath, body: ReasonBody, key: Operator, services: ServicesDep
    ) -> JSONResponse:
        return await _engine_action(action, color, body.reason, key, services)

    return as_operator


async def _load_model(
    color: ColorPath,
    body: LoadModelBody,
    key: Operator,
    services: ServicesDep,
) -> JSONResponse:
    rows = await services.engines.admin(
        color, "load_model", by=actor(key), reason=body.reason, version=body.version
    )
    return _answer({"action": "load_model", "engines": rows}, rows)


async def _symbols_action(
    action: str, color: str, body: SymbolsBody, key: KeyRecord, services: Services
) -> JSONResponse:
    rows = await services.engines.admin(
        color, action, by=actor(key), reason=body.reason, fields={"symbols": ",".join(body.symbols)}
    )
    return _answer({"action": action, "engines": rows}, rows)


async def _reduce(
    color: ColorPath, body: SymbolsBody, key: Trader, services: ServicesDep
) -> JSONResponse:
    return await _symbols_action("reduce", color, body, key, services)


async def _restore(
    color: ColorPath, body: SymbolsBody, key: Operator, services: ServicesDep
) -> JSONResponse:
    return await _symbols_action("restore", color, body, key, services)


_SPECIAL: Final[dict[str, Action]] = {
    "load_model": _load_model,
    "reduce": _reduce,
    "restore": _restore,
}

for _action, _role in ACTION_ROLES.items():
    router.add_api_route(
        f"/engines/{{color}}/{_action}",
        _SPECIAL.get(_action) or _action_route(_action, _role),
        methods=["POST"],
        name=f"engine_{_action}",
        summary=f"{_action.replace('_', ' ').capitalize()} the engine(s) (role {_role.label})",
        **route_options(_role),
    )
