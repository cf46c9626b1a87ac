"""Prometheus metrics of the simulator, served at ``GET /metrics`` (no token: counts only).

What a venue's own dashboard would show about its clients, and what a test or an
operator injected: requests by endpoint and status (a 5xx storm is visible from the
venue's side, beside the engine's ``bot4_venue_*``), which faults are active, and how
many answers each fault produced. Each app has its own registry, so several simulators
in one process (tests) keep their own counts.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from infra.exchange_sim.faults import FAULT_TYPES, FaultBoard

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNMATCHED: Final = "unmatched"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"})


class _ActiveFaults(Collector):
    """``bot4_exchange_sim_fault_active``: read from the fault board at scrape time."""

    def __init__(self, faults: FaultBoard) -> None:
        self._faults = faults

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "bot4_exchange_sim_fault_active",
            "1 while a fault is set (one-shot faults clear themselves once they acted).",
            labels=["fault"],
        )
        active = set(self._faults.active)
        for name in FAULT_TYPES:
            gauge.add_metric([name], 1.0 if name in active else 0.0)
        yield gauge


class SimMetrics:
    """The simulator's counters, histogram and fault gauge, in their own registry."""

    def __init__(self, faults: FaultBoard) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bot4_exchange_sim_requests_total",
            "HTTP requests answered, by method, endpoint (route template) and status code.",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "bot4_exchange_sim_request_duration_seconds",
            "Time to answer a REST request (injected latency included), by endpoint.",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.fault_answers = Counter(
            "bot4_exchange_sim_fault_answers_total",
            "REST answers a fault produced or changed (503, 429, delayed, dropped), by fault.",
            ["fault"],
            registry=self.registry,
        )
        self.faults_set = Counter(
            "bot4_exchange_sim_faults_set_total",
            "Faults set through the admin routes, by fault.",
            ["fault"],
            registry=self.registry,
        )
        for name in FAULT_TYPES:  # known label values exist at 0 from the start
            self.fault_answers.labels(fault=name)
            self.faults_set.labels(fault=name)
        self.registry.register(_ActiveFaults(faults))

    async def serve(self, _request: web.Request) -> web.Response:
        """Answer ``GET /metrics``."""
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


METRICS_KEY: Final = web.AppKey("metrics", SimMetrics)


def _endpoint(request: web.Request) -> str:
    # the route template, never the raw path (the caller's text would mint new series)
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def make_metrics_middleware() -> Middleware:
    """Return the outermost middleware: it counts every answer, fault answers included."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        metrics = request.app[METRICS_KEY]
        started = time.perf_counter()
        # no answer at all: the connection was dropped (lost_answer) or the client left
        status = "aborted"
        try:
            response = await handler(request)
            status = str(response.status)
            return response
        except web.HTTPException as e:
            status = str(e.status)
            raise
        finally:
            endpoint = _endpoint(request)
            method = request.method if request.method in _METHODS else "other"
            metrics.requests.labels(method=method, endpoint=endpoint, status=status).inc()
            if status != "101":  # a websocket's time is its connection's lifetime
                metrics.duration.labels(endpoint=endpoint).observe(time.perf_counter() - started)

    return middleware
