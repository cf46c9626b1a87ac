"""The door every request passes: correlation id, authentication, rate limit, audit row.

Pure ASGI around the FastAPI app, so it sees every request, including the ones FastAPI
never routes (unknown paths, refusals) and the ones that fail. For each request that is
not public (``/healthz``, the OpenAPI document):

1. take or make the correlation id (``X-Correlation-Id``), bind it to every log line;
2. read the body (at most ``max_body_bytes``) and keep the parameters for the audit row;
3. authenticate the key (401), take a token from its bucket (429) — requests without a
   valid key take from their address's bucket, so guessing is throttled too; both
   refusals are counted by reason (:mod:`bot4.api.metrics`);
4. run the route (which checks the role and, for admin routes, the client network);
5. append the audit row and only then release the answer; if the row cannot be written
   the answer becomes 503.
"""

from __future__ import annotations

import json
import re
import time
from typing import Final
from urllib.parse import parse_qsl

import structlog
from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import Message, Receive, Scope, Send

from bot4.api.audit import AuditEntry
from bot4.api.errors import ApiError, AuthenticationError, RateLimitedError, UnavailableError
from bot4.api.keys import KeyRecord, parse_key
from bot4.api.runtime import Services
from bot4.logs import new_correlation_id

log = structlog.get_logger(__name__)

PUBLIC_PATHS: Final = frozenset({"/healthz", "/v1/openapi.json"})
_CORRELATION_ID: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_UNPRINTABLE: Final = re.compile(r"[\x00-\x1f\x7f]")


def error_body(message: str, correlation_id: str | None) -> bytes:
    """Return the JSON body of every error answer."""
    return json.dumps({"error": message, "correlation_id": correlation_id}).encode()


def outcome_of(status: int) -> str:
    """Return the audit outcome of an HTTP status."""
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "refused"
    if status == 429:
        return "rate_limited"
    return "rejected" if status < 500 else "failed"


class ControlPlaneMiddleware:
    """Wraps the FastAPI app; see the module docstring for what it does per request."""

    def __init__(self, app: FastAPI, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: public paths and lifespan pass straight through."""
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        await _Exchange(self, scope, receive, send).run()


class _Exchange:
    """One request through the door."""

    def __init__(
        self, door: ControlPlaneMiddleware, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.app = door.app
        self.services = door.services
        self.scope = scope
        self.receive = receive
        self.send = send
        self.started = time.perf_counter()
        self.at = self.services.clock.now()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.headers = headers
        given = headers.get("x-correlation-id", "")
        # a caller's id is kept (it follows their operation) unless it carries a secret
        usable = _CORRELATION_ID.match(given) and self.services.scrubber.text(given) == given
        self.correlation_id = given if usable else new_correlation_id()
        client = scope.get("client")
        self.client = _clean(str(client[0])) if client else "unknown"
        self.key: KeyRecord | None = None
        self.refused_key: tuple[str | None, str | None] = (None, None)
        self.reason: str | None = None
        self.messages: list[Message] = []
        self.body = b""
        self._replayed = False

    async def run(self) -> None:
        """Admit, route, audit and answer the request."""
        state = self.scope.setdefault("state", {})
        state["correlation_id"] = self.correlation_id
        with structlog.contextvars.bound_contextvars(correlation_id=self.correlation_id):
            try:
                await self._admit_and_route(state)
            except Exception:  # a bug: the answer is a bare 500, the row still gets written
                log.exception("api_request_failed", route=self._route())
                if not self._answered():
                    self.reason = self.reason or "internal error"
                    self._error(500, "internal error; the correlation id names it in the logs")
            await self._audit_then_answer()

    async def _admit_and_route(self, state: dict[str, object]) -> None:
        if not await self._read_body():
            self.reason = f"body larger than {self.services.config.max_body_bytes} bytes"
            self._error(
                413, f"request body larger than {self.services.config.max_body_bytes} bytes"
            )
            return
        try:
            self.key = await self._authenticate()
            self._take_token(self.key)
        except ApiError as e:
            self.reason = e.message
            cause = e.__cause__ if isinstance(e, RateLimitedError) else e
            if isinstance(cause, AuthenticationError):
                self.refused_key = (cause.key_id, cause.role)
                self.services.metrics.auth_failed(cause.reason)
            if isinstance(e, RateLimitedError):
                bucket = self.key.role.label if self.key else "unauthenticated"
                self.services.metrics.refused_by_rate_limit(bucket)
            self._refuse(e)
            return
        state["key"] = self.key
        await self.app(self.scope, self._replay, self._capture)
        if self._status() == 403:  # the route's role check or the admin allow-list
            self.services.metrics.auth_failed("forbidden")
        reason = state.get("audit_reason")
        self.reason = str(reason) if reason is not None else None

    async def _authenticate(self) -> KeyRecord:
        services = self.services
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthenticationError(
                    "no API key: send Authorization: Bearer <key>", reason="missing"
                )
            key = await services.keys.authenticate(token.strip())
        except AuthenticationError as e:
            wait = services.limiter.take_for_address(self.client)
            if wait is not None:
                raise RateLimitedError(
                    f"too many requests without a valid key from {self.client}; retry in {wait} s",
                    retry_after_s=wait,
                ) from e
            material = parse_key(token.strip())
            if material is not None and e.message == "unknown API key":
                e.message = f"unknown API key (claimed id {material.id})"
            raise
        return key

    def _take_token(self, key: KeyRecord) -> None:
        wait = self.services.limiter.take_for_key(key.id, key.role)
        if wait is not None:
            raise RateLimitedError(
                f"rate limit of role {key.role.label} reached for key {key.id}; retry in {wait} s",
                retry_after_s=wait,
            )

    async def _read_body(self) -> bool:
        limit = self.services.config.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await self.receive()
            if message["type"] != "http.request":
                break  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return False
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        self.body = b"".join(chunks)
        return True

    async def _replay(self) -> Message:
        if self._replayed:
            return await self.receive()  # after the body there is only the disconnect
        self._replayed = True
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def _capture(self, message: Message) -> None:
        self.messages.append(message)

    def _answered(self) -> bool:
        return any(m["type"] == "http.response.start" for m in self.messages)

    def _refuse(self, error: ApiError) -> None:
        public = error.message
        if isinstance(error, AuthenticationError) and public.startswith("unknown API key"):
            public = "unknown API key"  # the claimed id goes to the audit row only
        self._error(error.status, public, error.headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = error_body(message, self.correlation_id)
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        self.messages = [
            {"type": "http.response.start", "status": status, "headers": raw},
            {"type": "http.response.body", "body": body, "more_body": False},
        ]

    def _status(self) -> int:
        for message in self.messages:
            if message["type"] == "http.response.start":
                return int(message["status"])
        return 500

    def _route(self) -> str:
        route = self.scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        for candidate in self.app.router.routes:
            match, _ = candidate.matches(self.scope)
            if match is Match.FULL:
                return str(getattr(candidate, "path", self.scope["path"]))
        # an unknown path is the caller's text: it may hold anything, a key included
        return _clean(self.services.scrubber.text(self.scope["path"]))[:200]

    def _params(self) -> dict[str, object]:
        params: dict[str, object] = {}
        path_params = self.scope.get("path_params")
        if isinstance(path_params, dict) and path_params:
            params["path"] = dict(path_params)
        query: dict[str, list[str]] = {}
        raw = self.scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(raw, keep_blank_values=True):
            query.setdefault(name, []).append(value)
        if query:
            params["query"] = {n: v[0] if len(v) == 1 else v for n, v in query.items()}
        if self.body:
            try:
                params["body"] = json.loads(self.body)
            except (ValueError, RecursionError):  # not JSON, or nested past the parser
                params["body"] = f"[{len(self.body)} bytes, not JSON]"
        return params

    def _entry(self, status: int) -> AuditEntry:
        services, key = self.services, self.key
        key_id, role = (key.id, key.role.label) if key else self.refused_key
        try:
            params = services.codec.encode(self._params())
        except Exception:  # a bug must not cost the row: record that parameters are missing
            log.exception("audit_params_unrecordable")
            params = json.dumps({"unrecordable": True})
        return AuditEntry(
            at=self.at,
            correlation_id=self.correlation_id,
            client=self.client,
            key_id=key_id,
            key_name=key.name if key else None,
            role=role,
            method=_clean(self.scope["method"])[:16],
            route=self._route(),
            params=params,
            status=status,
            outcome=outcome_of(status),
            reason=self._reason(),
            duration_us=int((time.perf_counter() - self.started) * 1e6),
        )

    def _reason(self) -> str | None:
        """Return why (our message; it may quote the caller's field names), cleaned."""
        if self.reason is None:
            return None
        return _clean(self.services.scrubber.text(self.reason))[:500]

    async def _audit_then_answer(self) -> None:
        status = self._status()
        try:
            await self.services.writer.append(self._entry(status))
        except UnavailableError as e:
            log.error("audit_row_not_written", status=status, route=self._route(), error=str(e))
            self._error(
                503,
                f"the audit log is unavailable, so this answer (HTTP {status}) is withheld;"
                " the request may have taken effect: check before retrying",
            )
        if status >= 500 or status in (401, 403, 429):
            event = "api_request_refused" if status < 500 else "api_request_failed"
            key_id = self.key.id if self.key else None
            log.warning(event, status=status, route=self._route(), key_id=key_id,
                        reason=self._reason())  # fmt: skip
        await self._answer()

    async def _answer(self) -> None:
        cid = (b"x-correlation-id", self.correlation_id.encode())
        for message in self.messages:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), cid]
                await self.send({**message, "headers": headers})
            else:
                await self.send(message)


def _clean(text: str) -> str:
    """Return ``text`` storable as PostgreSQL text.

    No control characters (NUL is refused) and valid UTF-8 (a lone surrogate from a JSON
    escape would make the audit row unwritable).
    """
    printable = _UNPRINTABLE.sub("?", text)
    return printable.encode("utf-8", "replace").decode("utf-8")
