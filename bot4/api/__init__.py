"""The control plane (DESIGN.md §7): ``bot4 api``, the one door for people and automation.

Modules, each one concept:

=============  ===========================================================================
app            ``create_app``: FastAPI routes behind the control-plane middleware
middleware     correlation id, authentication, rate limit and the audit row of every request
auth, roles    per-route least role (viewer < trader < operator < admin), admin allow-list
keys           key format ``b4_<id>_<secret>``, salted hash, lifecycle (expiry, rotation)
ratelimit      token bucket per key (by role) and per address without a key
audit, chain   append-only, hash-chained audit log; its verification
redact         secrets never stored, logged or answered
engines        engine control endpoints and the kill switch behind the API
routes/        ``/v1/...`` routes by area
server         ``bot4 api`` (uvicorn); bootstrap: the first admin key; client: the CLI's
=============  ===========================================================================

Importing this package is cheap: the server side (FastAPI) loads from its modules.
"""

from bot4.api.errors import (
    ApiClientError,
    ApiError,
    ApiRefusedError,
    ApiUnreachableError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
)
from bot4.api.roles import Role

__all__ = [
    "ApiClientError",
    "ApiError",
    "ApiRefusedError",
    "ApiUnreachableError",
    "AuthenticationError",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Role",
    "UnavailableError",
    "UpstreamError",
]
