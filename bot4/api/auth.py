"""Who is asking, and may they use this route: the per-route part of authorization.

The middleware (:mod:`bot4.api.middleware`) authenticates every request that is not
public and rate-limits it before any route runs; a route then declares the least role it
needs with :func:`require`, which also keeps admin routes to the allow-listed networks
and documents the bearer scheme and the role in the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from bot4.api.errors import AuthenticationError, PermissionDeniedError
from bot4.api.keys import KeyRecord
from bot4.api.roles import Role
from bot4.api.runtime import Services

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer b4_...`")


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    error: str
    correlation_id: str | None


def _refusal(text: str) -> dict[str, Any]:
    return {"description": text, "model": ErrorBody}


_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: _refusal("No key, or a malformed, unknown, revoked, expired or retired key"),
    403: _refusal("The key's role is too low, or an admin route from an unlisted address"),
    422: _refusal("The request's parameters or body are invalid (the input is not echoed)"),
    429: _refusal("Rate limit reached; see Retry-After"),
    503: _refusal("PostgreSQL or the audit log is unavailable"),
}


def services(request: Request) -> Services:
    """Return the running API's services."""
    found: Services = request.app.state.services
    return found


def require(role: Role, *, admin: bool = False) -> Callable[..., Awaitable[KeyRecord]]:
    """Return a dependency that admits keys of ``role`` or higher (admin: allow-listed too).

    The dependency raises :class:`PermissionDeniedError` (403) for a lower role or, on an
    admin route, a client address outside ``api.admin_networks``.
    """

    async def dependency(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> KeyRecord:
        key = getattr(request.state, "key", None)
        if not isinstance(key, KeyRecord):  # the middleware admits no request without a key
            raise AuthenticationError(
                "no API key: send Authorization: Bearer <key>", reason="missing"
            )
        if key.role < role:
            raise PermissionDeniedError(
                f"this route needs role {role.label} or higher; key {key.id} has role"
                f" {key.role.label}"
            )
        if admin:
            address = request.client.host if request.client else ""
            if not services(request).config.admin_address_allowed(address):
                raise PermissionDeniedError(
                    f"admin routes accept only clients in BOT4_API__ADMIN_NETWORKS;"
                    f" {address or 'this client'} is not in them"
                )
        return key

    return dependency


def route_options(role: Role, *, admin: bool = False) -> dict[str, Any]:
    """Return the decorator options every protected route shares (docs of the refusals)."""
    return {
        "responses": dict(_REFUSALS),
        "openapi_extra": {"x-required-role": role.label, "x-admin-networks-only": admin},
    }


Viewer = Annotated[KeyRecord, Depends(require(Role.VIEWER))]
Trader = Annotated[KeyRecord, Depends(require(Role.TRADER))]
Operator = Annotated[KeyRecord, Depends(require(Role.OPERATOR))]
Admin = Annotated[KeyRecord, Depends(require(Role.ADMIN, admin=True))]
ServicesDep = Annotated[Services, Depends(services)]


def actor(key: KeyRecord) -> str:
    """Return how a key is named as the actor (``by``) of what it asks for."""
    return f"{key.name} ({key.id})"
