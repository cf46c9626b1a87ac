"""The control API application: FastAPI routes behind the control-plane door.

:func:`create_app` returns the ASGI app uvicorn serves: :class:`MetricsMiddleware`
(``GET /metrics``, request counts and latency) around :class:`ConsoleAssets` (the
operations console's static files at ``/`` and ``/console/``, public: they hold no data)
around :class:`ControlPlaneMiddleware` (correlation id, authentication, rate limit,
audit) around FastAPI (routes, role checks, validation). Every error answer is
``{"error": ..., "correlation_id": ...}`` and never echoes the request's input (a secret
sent by mistake would come back otherwise).
"""

from __future__ import annotations

from typing import Final

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot4.api.clock import Clock, SystemClock
from bot4.api.config import ApiConfig
from bot4.api.console import ConsoleAssets
from bot4.api.errors import ApiError
from bot4.api.metrics import MetricsMiddleware
from bot4.api.middleware import ControlPlaneMiddleware
from bot4.api.routes import ROUTERS
from bot4.api.runtime import Services, StackProbe

log = structlog.get_logger(__name__)

API_VERSION: Final = "1.0.0"


def _error(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    # a message may quote the caller's field names: keep it encodable
    message = message.encode("utf-8", "replace").decode("utf-8")
    # the middleware writes this reason into the audit row
    request.state.audit_reason = message
    correlation_id = getattr(request.state, "correlation_id", None)
    return JSONResponse(
        {"error": message, "correlation_id": correlation_id}, status_code=status, headers=headers
    )


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return _error(request, error.status, error.message, error.headers)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = []
    for problem in error.errors()[:10]:
        where = ".".join(str(part) for part in problem.get("loc", ()))
        problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    return _error(request, 422, "invalid request: " + "; ".join(problems))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    message = {404: "no such route", 405: "method not allowed on this route"}.get(
        error.status_code, str(error.detail)
    )
    return _error(request, error.status_code, message, dict(error.headers or {}))


async def _unexpected(request: Request, error: Exception) -> Response:
    log.error("api_route_failed", error_type=type(error).__name__)
    return _error(request, 500, "internal error; the correlation id names it in the logs")


def create_app(
    config: ApiConfig, *, clock: Clock | None = None, stack_probe: StackProbe | None = None
) -> MetricsMiddleware:
    """Return the control API as an ASGI app.

    Args:
        config: the API's configuration.
        clock: time source (tests drive it).
        stack_probe: returns the stack's status document for ``GET /v1/status``.
    """
    services = Services(config, clock=clock or SystemClock(), stack_probe=stack_probe)
    api = FastAPI(
        title="bot4 control API",
        version=API_VERSION,
        description=(
            "The one door for people and automation. Every route but /healthz, /metrics, the"
            " console's static files (/, /console/...) and this document needs"
            " `Authorization: Bearer <API key>`; x-required-role names the least role"
            " (viewer < trader < operator < admin). Every request is audited."
        ),
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=services.lifespan,
    )
    api.state.services = services
    for router in ROUTERS:
        api.include_router(router)

    @api.get("/healthz", tags=["health"], summary="Liveness: no key, not audited")
    async def healthz() -> dict[str, bool]:
        return {"alive": True}

    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(Exception, _unexpected)
    door = ControlPlaneMiddleware(api, services)
    return MetricsMiddleware(ConsoleAssets(door), api=api, metrics=services.metrics)
