"""Control API: authenticated throughput and latency, and what auth + audit cost.

    .venv/bin/python -m bench.api [--seconds 8] [--concurrency 16] [--sequential 400]

Starts, in a throw-away BOT4_HOME on free ports, PostgreSQL primary + synchronous standby
(``remote_apply``, as the stack runs it), migrated, and ``bot4 api`` as its own process
(as ``stack up`` starts it), bootstraps an admin key and makes a viewer key. Then:

- ``auth_requests_per_s`` / ``auth_p99_ms``: ``GET /v1/status/api`` with the viewer key
  from ``--concurrency`` clients for ``--seconds``: every request authenticated (key
  lookup in PostgreSQL, salted hash), rate-limited, routed, and audited (a hash-chained
  row committed on primary and standby before the answer is released);
- ``unauth_requests_per_s`` / ``unauth_p99_ms``: the same load on ``GET /healthz`` (no key,
  not audited);
- ``auth_overhead_ms``: p50 latency of the status route minus p50 of ``/healthz``, one
  request at a time (``--sequential`` each, interleaved): what auth + audit add to one
  request on an idle server.

The load generator shares the machine (2 cores here) with the API and both PostgreSQL
nodes. Progress goes to stderr; stdout gets one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np

from bench.common import StderrProgress, free_ports
from bot4.api.bootstrap import bootstrap_admin
from bot4.api.server import audit_key
from bot4.settings import ApiSettings, DatabaseSettings, RateLimit, Settings
from infra.postgres.migrate import apply_migrations_sync
from infra.stack.api_server import ApiServer
from infra.stack.paths import StackPaths
from infra.stack.postgres import PostgresPair

UNLIMITED = RateLimit(per_s=1_000_000, burst=1_000_000)
STATUS_ROUTE = "/v1/status/api"


def _say(message: str) -> None:
    print(f"[api {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def running_api() -> Iterator[Settings]:
    """Start PostgreSQL (primary + sync standby, migrated) and the API; stop both."""
    home = Path(tempfile.mkdtemp(prefix="bot4-bench-api-", dir="/tmp"))
    home.chmod(0o755)  # the unprivileged PostgreSQL user must reach it
    pg_a, pg_b, api = free_ports(3)
    limits = dict.fromkeys(("viewer", "trader", "operator", "admin"), UNLIMITED)
    settings = Settings(
        home=home,
        db=DatabaseSettings(primary_port=pg_a, standby_port=pg_b),
        api=ApiSettings(port=api, rate_limits=limits, unauthenticated_rate_limit=UNLIMITED),  # type: ignore[arg-type]
    )
    paths = StackPaths(home)
    paths.create()
    postgres = PostgresPair(paths=paths, settings=settings.db)
    server = ApiServer(paths=paths, settings=settings)
    failed = True
    try:
        progress = StderrProgress(_say)
        postgres.ensure_running(progress)
        _say(f"migrations: {len(apply_migrations_sync(settings.db.effective_dsn()))} applied")
        progress.done(server.name, server.ensure_running(progress))
        yield settings
        failed = False
    finally:
        for stop in (server.stop, postgres.stop):
            try:
                stop()
            except Exception as e:  # stop the rest, then report
                _say(f"stopping failed: {e}")
                failed = True
        if failed:
            _say(f"kept {home} (logs in log/); its servers are stopped")
        else:
            shutil.rmtree(home, ignore_errors=True)


def _viewer_key(settings: Settings) -> str:
    path = settings.api.effective_key_file(settings.home)
    asyncio.run(
        bootstrap_admin(settings.db.effective_dsn(), path=path, name="bench-admin",
                        lifetime_s=0, force=False, audit_key=audit_key(settings))
    )  # fmt: skip
    admin = path.read_text().strip()
    answer = httpx.post(
        f"{settings.effective_api_url()}/v1/keys",
        json={"name": "bench-viewer", "role": "viewer"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    answer.raise_for_status()
    key: str = answer.json()["key"]
    return key


def _sequential(url: str, key: str, count: int) -> dict[str, float]:
    """p50 of each route, one request at a time, interleaved so both see the same machine."""
    samples: dict[str, list[float]] = {"auth": [], "unauth": []}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=10) as http:
        for index in range(count * 2 + 40):
            auth = index % 2 == 0
            started = time.perf_counter()
            answer = http.get(STATUS_ROUTE, headers=headers) if auth else http.get("/healthz")
            elapsed = time.perf_counter() - started
            if answer.status_code != 200:
                raise RuntimeError(f"HTTP {answer.status_code}: {answer.text}")
            if index >= 40:  # warm-up done
                samples["auth" if auth else "unauth"].append(elapsed * 1000)
    auth_p50 = float(np.percentile(samples["auth"], 50))
    unauth_p50 = float(np.percentile(samples["unauth"], 50))
    return {
        "sequential_auth_p50_ms": round(auth_p50, 3),
        "sequential_unauth_p50_ms": round(unauth_p50, 3),
        "auth_overhead_ms": round(auth_p50 - unauth_p50, 3),
    }


async def _load(
    url: str, path: str, key: str | None, *, seconds: float, clients: int
) -> dict[str, float]:
    """Requests per second and latency percentiles of ``clients`` concurrent loops.

    aiohttp, not httpx: the generator shares the cores with the server, so it must be cheap.
    """
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as http:
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with http.get(path, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 200:
                        errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        took = time.perf_counter() - began
    values = np.asarray(latencies)
    return {
        "requests_per_s": round(len(latencies) / took, 1),
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
        "errors": errors,
    }


def measure(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Run the three measurements against a running API."""
    url = settings.effective_api_url()
    key = _viewer_key(settings)
    _say(f"sequential: {args.sequential} requests per route")
    report: dict[str, Any] = {"route": STATUS_ROUTE, **_sequential(url, key, args.sequential)}
    _say(f"load: {args.concurrency} clients, {args.seconds} s on {STATUS_ROUTE}")
    auth = asyncio.run(
        _load(url, STATUS_ROUTE, key, seconds=args.seconds, clients=args.concurrency)
    )
    _say(f"load: {args.concurrency} clients, {args.seconds} s on /healthz")
    unauth = asyncio.run(
        _load(url, "/healthz", None, seconds=args.seconds, clients=args.concurrency)
    )
    report |= {
        "auth_requests_per_s": auth["requests_per_s"],
        "auth_p50_ms": auth["p50_ms"],
        "auth_p99_ms": auth["p99_ms"],
        "auth_errors": auth["errors"],
        "unauth_requests_per_s": unauth["requests_per_s"],
        "unauth_p50_ms": unauth["p50_ms"],
        "unauth_p99_ms": unauth["p99_ms"],
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
    }
    return report


def main() -> None:
    """Measure and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0, help="each load phase")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument(
        "--sequential", type=int, default=400, help="requests per route, one at a time"
    )
    args = parser.parse_args()
    if args.seconds <= 0 or args.concurrency < 1 or args.sequential < 10:
        parser.error("--seconds must be > 0, --concurrency >= 1, --sequential >= 10")
    with running_api() as settings:
        report = measure(settings, args)
    print(json.dumps(report, indent=2), flush=True)


if __name__ == "__main__":
    main()
