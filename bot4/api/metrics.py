"""Prometheus metrics of the control API, and the ASGI layer that serves ``/metrics``.

:class:`MetricsMiddleware` is the outermost layer: it times every HTTP request (public
routes and refusals included) and serves ``GET /metrics`` itself, without a key, like
every other bot4 process: it tells counts, never who or what was asked (labels are route
templates, status codes and refusal reasons; no key ids, no client addresses), and the
API binds loopback unless an operator chooses otherwise. The door
(:mod:`bot4.api.middleware`) counts authentication failures and rate-limit refusals,
where their reasons are known.

Each app has its own registry, so several apps in one process (tests) never mix counts.
"""

from __future__ import annotations

import time
from typing import Final

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRICS_PATH: Final = "/metrics"
UNMATCHED: Final = "unmatched"
"""The route label of a path no route knows (the path itself is the caller's text)."""

AUTH_FAILURE_REASONS: Final = (
    "missing", "malformed", "unknown", "revoked", "expired", "retired", "forbidden",
)  # fmt: skip
"""Why a request was refused for its key: 401 reasons of the key store, 403 forbidden."""

RATE_LIMIT_BUCKETS: Final = ("viewer", "trader", "operator", "admin", "unauthenticated")


class ApiMetrics:
    """The API's counters and histogram, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bot4_api_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "bot4_api_request_duration_seconds",
            "From a request's arrival to its answer (audit row included), by route template.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "bot4_api_auth_failures_total",
            "Requests refused for their key (401: missing, malformed, unknown, revoked,"
            " expired, retired; 403: forbidden), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "bot4_api_rate_limit_refusals_total",
            "Requests refused with 429, by token bucket (the key's role, or unauthenticated).",
            ["bucket"],
            registry=self.registry,
        )
        # known label values start at 0, so a rate() over them exists before the first event
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason=reason)
        for bucket in RATE_LIMIT_BUCKETS:
            self.rate_limited.labels(bucket=bucket)

    def auth_failed(self, reason: str) -> None:
        """Count a refusal for the key (an unknown reason counts as ``unknown``)."""
        known = reason if reason in AUTH_FAILURE_REASONS else "unknown"
        self.auth_failures.labels(reason=known).inc()

    def refused_by_rate_limit(self, bucket: str) -> None:
        """Count a 429 of ``bucket``."""
        self.rate_limited.labels(bucket=bucket).inc()

    def exposition(self) -> bytes:
        """Return the Prometheus text of the registry."""
        return generate_latest(self.registry)


class RouteTemplates:
    """Maps a request path to its route's template (``/v1/engines/{color}``).

    Built from the OpenAPI document's paths: FastAPI's public description of every
    route, whatever its router nesting (its internal route objects changed shape across
    versions). A path no route knows is ``unmatched``: the path itself is the caller's
    text and would mint a new series per guess.
    """

    def __init__(self, api: FastAPI) -> None:
        templates: list[str] = [*api.openapi()["paths"], str(api.openapi_url)]
        self._patterns = [(compile_path(t)[0], t) for t in templates]

    def __call__(self, path: str) -> str:
        """Return the template of ``path``, or ``unmatched``."""
        for pattern, template in self._patterns:
            if pattern.match(path):
                return template
        if path == "/" or path.startswith("/console/"):
            return "/console"  # the operations console's static files: one series
        return UNMATCHED


class MetricsMiddleware:
    """Times and counts every HTTP request; answers ``GET /metrics`` itself."""

    def __init__(self, app: ASGIApp, *, api: FastAPI, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.route_template = RouteTemplates(api)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection; lifespan and websockets pass straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH and scope["method"] in ("GET", "HEAD"):
            await self._serve(send)
            return
        started = time.perf_counter()
        status = 500  # an app that dies before answering: the server answers 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = self.route_template(scope["path"])
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.duration.labels(method=method, route=route).observe(
                time.perf_counter() - started
            )

    async def _serve(self, send: Send) -> None:
        body = self.metrics.exposition()
        headers = [
            (b"content-type", CONTENT_TYPE_LATEST.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


# a method label from the caller's text would let anyone mint new series
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
