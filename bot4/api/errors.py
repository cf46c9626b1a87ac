"""Errors of the control plane, each with the HTTP status the caller sees.

Server side (raised by the API's own code, answered by the app's handlers)::

    ApiError                      base: an HTTP status and a message the caller can act on
    ├── AuthenticationError       401  no key, malformed, unknown, revoked, expired, retired
    ├── PermissionDeniedError     403  role too low; admin route from an unlisted address
    ├── RateLimitedError          429  the key's token bucket is empty (Retry-After)
    ├── NotFoundError             404  no such key / engine
    ├── ConflictError             409  the state forbids it (key already revoked...)
    ├── UpstreamError             502  an engine answered with an error
    └── UnavailableError          503  PostgreSQL, the audit log or an engine unreachable

Client side (the CLI's :mod:`bot4.api.client`)::

    ApiClientError                base
    ├── ApiUnreachableError       nothing answered at the API URL (a halt may fall back)
    └── ApiRefusedError           the API answered with an error status
"""

from __future__ import annotations


class ApiError(Exception):
    """A request failed in a way the caller can act on; ``status`` is its HTTP status."""

    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class AuthenticationError(ApiError):
    """The request carries no valid key.

    ``reason`` is one word for metrics (missing, malformed, unknown, revoked, expired,
    retired). ``key_id`` and ``role`` name the key when its secret was right but it may not
    be used any more (revoked, expired, retired): the audit row then says whose key it was.
    """

    status = 401

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        key_id: str | None = None,
        role: str | None = None,
    ) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})
        self.reason = reason
        self.key_id = key_id
        self.role = role


class PermissionDeniedError(ApiError):
    """The key is valid but may not use this route (from here)."""

    status = 403


class RateLimitedError(ApiError):
    """The key sent more requests than its role's token bucket allows."""

    status = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


class NotFoundError(ApiError):
    """The named object does not exist."""

    status = 404


class ConflictError(ApiError):
    """The object's state does not allow the operation."""

    status = 409


class UpstreamError(ApiError):
    """A server behind the API (an engine) answered with an error."""

    status = 502


class UnavailableError(ApiError):
    """A server the API needs (PostgreSQL, an engine) cannot be reached."""

    status = 503


class ApiClientError(Exception):
    """A call of the CLI's API client failed."""


class ApiUnreachableError(ApiClientError):
    """Nothing answered at the API's URL (not running, wrong URL, timed out)."""


class ApiRefusedError(ApiClientError):
    """The API answered with an error status."""

    def __init__(self, status: int, message: str, *, correlation_id: str | None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.correlation_id = correlation_id
