"""One real round trip through each component of the stack.

Used by ``bot4 demo`` and the stack's integration tests: each check writes something
through one server and reads it back through another path, so a green check means the
component does its job, not merely that a port answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

import asyncpg
import httpx

from bot4.settings import (
    DatabaseSettings,
    ExchangeSettings,
    PrefectSettings,
    Settings,
    StorageSettings,
    TemporalSettings,
)
from infra.stack.prefect_server import prefect_client_env
from infra.storage import s3_client


@dataclass(frozen=True, kw_only=True, slots=True)
class RoundTrip:
    """The outcome of one check."""

    component: str
    ok: bool
    detail: str
    seconds: float


def standby_dsn(db: DatabaseSettings) -> str:
    """Return a DSN that reaches whichever local node is the standby."""
    return db.local_dsn().replace("target_session_attrs=read-write", "target_session_attrs=standby")


async def postgres_round_trip(db: DatabaseSettings) -> RoundTrip:
    """Write a row on the primary; read it on the standby at once; check the sync state."""
    started = time.perf_counter()
    probe_id = uuid.uuid4()
    payload = secrets.token_hex(16)
    primary = await asyncpg.connect(db.effective_dsn(), timeout=10)
    try:
        await primary.execute(
            "INSERT INTO stack_probe (probe_id, written_by, payload) VALUES ($1, $2, $3)",
            probe_id,
            f"roundtrip pid {os.getpid()}",
            payload,
        )
        states = await primary.fetch("SELECT application_name, sync_state FROM pg_stat_replication")
    finally:
        await primary.close()
    standby = await asyncpg.connect(standby_dsn(db), timeout=10)
    try:
        # synchronous_commit=remote_apply: the acknowledged row is already visible here.
        seen = await standby.fetchval(
            "SELECT payload FROM stack_probe WHERE probe_id = $1", probe_id
        )
        in_recovery = await standby.fetchval("SELECT pg_is_in_recovery()")
    finally:
        await standby.close()
    sync = [r["application_name"] for r in states if r["sync_state"] == "sync"]
    ok = seen == payload and bool(in_recovery) and bool(sync)
    detail = (
        f"row written on primary read on standby; sync standby: {', '.join(sync) or 'none'}"
        if ok
        else f"standby saw {seen!r} (wanted {payload!r}), sync standbys {sync}"
    )
    return RoundTrip(
        component="postgres", ok=ok, detail=detail, seconds=time.perf_counter() - started
    )


async def temporal_round_trip(settings: TemporalSettings) -> RoundTrip:
    """Run the stack_check workflow on a worker of our own, on its own task queue."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    from workflows.stack_check import StackCheckInput, StackCheckWorkflow
    from workflows.stack_check.activities import StackCheckActivities

    started = time.perf_counter()
    client = await Client.connect(settings.effective_address(), namespace=settings.namespace)
    task_queue = f"stack-check-{uuid.uuid4().hex}"
    token = secrets.token_hex(8)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[StackCheckWorkflow],
        activities=[StackCheckActivities().digest],
    ):
        result = await client.execute_workflow(
            StackCheckWorkflow.run,
            StackCheckInput(token=token),
            id=f"stack-check-{uuid.uuid4().hex}",
            task_queue=task_queue,
        )
    ok = result.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    return RoundTrip(
        component="temporal",
        ok=ok,
        detail=f"workflow + activity completed on worker pid {result.worker_pid}",
        seconds=time.perf_counter() - started,
    )


async def prefect_round_trip(settings: PrefectSettings) -> RoundTrip:
    """Run the stack_check flow in a fresh process; read its run back from the server."""
    started = time.perf_counter()
    token = secrets.token_hex(8)
    api_url = settings.effective_api_url()
    with tempfile.TemporaryDirectory(prefix="bot4-prefect-client-") as home:
        env = {**os.environ, **prefect_client_env(api_url=api_url, home=home)}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "flows.stack_check", token],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if done.returncode != 0:
        return RoundTrip(
            component="prefect",
            ok=False,
            detail=f"flow process failed: {done.stderr.strip()[-500:]}",
            seconds=time.perf_counter() - started,
        )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{api_url}/flow_runs/{report['flow_run_id']}")
        response.raise_for_status()
        run = response.json()
    state = run.get("state", {}).get("type")
    ok = (
        state == "COMPLETED"
        and report["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    )
    return RoundTrip(
        component="prefect",
        ok=ok,
        detail=f"flow run {run.get('name')} recorded by the server as {state}",
        seconds=time.perf_counter() - started,
    )


def object_store_round_trip(settings: StorageSettings, *, size: int = 1 << 20) -> RoundTrip:
    """Put a random object to the backup bucket; read it back; compare SHA-256."""
    started = time.perf_counter()
    bucket = settings.backup_bucket()
    if bucket is None:
        return RoundTrip(component="s3", ok=True, detail="backups go to a file:// URI", seconds=0.0)
    client = s3_client(settings)
    key = f"stack-check/{uuid.uuid4().hex}"
    body = secrets.token_bytes(size)
    client.put_object(Bucket=bucket, Key=key, Body=body)
    try:
        read = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    finally:
        client.delete_object(Bucket=bucket, Key=key)
    ok = hashlib.sha256(read).digest() == hashlib.sha256(body).digest()
    return RoundTrip(
        component="s3",
        ok=ok,
        detail=f"{size} bytes put and read back to s3://{bucket}/{key}, SHA-256 equal",
        seconds=time.perf_counter() - started,
    )


async def exchange_round_trip(settings: ExchangeSettings) -> RoundTrip:
    """Through the engine's adapter (ccxt): balances, a resting order placed, found, canceled.

    The order rests 10 % below the best bid, so nothing trades; it is found and canceled by
    its client order id, as the engine does.
    """
    from engine.execution import OrderRequest, fetch_top_of_book, open_session

    started = time.perf_counter()
    symbol = settings.symbols[0]
    venue = await open_session(settings)
    try:
        balances = await venue.account.fetch_balances()
        instrument = venue.instruments[symbol]
        top = await fetch_top_of_book(venue.rest, instrument)
        if top.bid_ticks is None:
            return RoundTrip(
                component="exchange",
                ok=False,
                detail=f"{symbol} has no bids",
                seconds=time.perf_counter() - started,
            )
        price = instrument.ticks_to_price(top.bid_ticks - top.bid_ticks // 10)
        client_order_id = f"stack-check-{uuid.uuid4().hex[:12]}"
        placed = await venue.orders.create_order(
            OrderRequest(
                client_order_id=client_order_id,
                symbol=symbol,
                side="buy",
                type="limit",
                # 1000 lots clears the venue's minimum notional for the listed symbols.
                amount=instrument.lots_to_qty(1000),
                price=price,
            )
        )
        open_ids = [o.client_order_id for o in await venue.orders.fetch_open_orders(symbol)]
        canceled = await venue.orders.cancel_order(client_order_id, symbol)
    finally:
        await venue.close()
    quote = symbol.split("/")[1]
    ok = (
        placed.client_order_id == client_order_id
        and client_order_id in open_ids
        and canceled.status.value == "canceled"
        and quote in balances
    )
    return RoundTrip(
        component="exchange",
        ok=ok,
        detail=(
            f"{symbol} limit buy {client_order_id} placed, seen open, canceled via ccxt;"
            f" {quote} free {balances[quote].free if quote in balances else 'missing'}"
        ),
        seconds=time.perf_counter() - started,
    )


async def api_round_trip(settings: Settings) -> RoundTrip:
    """Ask the control API without a key (401) and with the admin key (200).

    The admin key is bootstrapped on first use, as an operator would; both requests must
    be in the audit log, and its hash chain must verify.
    """
    from bot4.api.bootstrap import bootstrap_admin
    from bot4.api.client import find_key
    from bot4.api.server import audit_key

    started = time.perf_counter()
    base = settings.effective_api_url()
    source = find_key(settings)
    if source is None:
        await bootstrap_admin(
            settings.db.effective_dsn(), path=settings.api.effective_key_file(settings.home),
            name="demo-admin", lifetime_s=settings.api.key_lifetime_s, force=False,
            audit_key=audit_key(settings),
        )  # fmt: skip
        source = find_key(settings)
        assert source is not None, "the bootstrap wrote no key file"
    auth = {"Authorization": f"Bearer {source.key}"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        refused = await http.get("/v1/status/api")
        admitted = await http.get("/v1/status/api", headers=auth)
        ids = {refused.headers.get("x-correlation-id"), admitted.headers.get("x-correlation-id")}
        rows = (await http.get("/v1/audit", params={"limit": 50}, headers=auth)).json()
        verify = (await http.get("/v1/audit/verify", headers=auth)).json()
    logged = {row.get("correlation_id") for row in rows}  # answers wait for their audit row
    ok = (
        refused.status_code == 401
        and admitted.status_code == 200
        and ids <= logged
        and bool(verify.get("ok"))
    )
    detail = (
        f"no key -> {refused.status_code}, admin key -> {admitted.status_code};"
        f" both audited: {ids <= logged}; chain of {verify.get('rows_checked')} rows verifies:"
        f" {verify.get('ok')}"
    )
    return RoundTrip(component="api", ok=ok, detail=detail, seconds=time.perf_counter() - started)


async def prometheus_round_trip(settings: Settings, *, within_s: float = 20.0) -> RoundTrip:
    """Ask Prometheus until every server it scrapes is up and the alert rules are loaded.

    Engines are left out: the demo starts them later, and one color is always idle.
    Target discovery applies its first result after up to 5 s, hence the wait.
    """
    started = time.perf_counter()
    base = f"http://127.0.0.1:{settings.prometheus.port}/api/v1"
    down: list[str] = ["(no answer yet)"]
    up: list[str] = []
    rules = 0
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        while time.perf_counter() - started < within_s:
            targets = (await http.get("/targets", params={"state": "active"})).json()["data"]
            servers = [t for t in targets["activeTargets"] if t["labels"]["job"] != "engine"]
            up = sorted(t["labels"]["job"] for t in servers if t["health"] == "up")
            down = sorted(t["labels"]["job"] for t in servers if t["health"] != "up")
            groups = (await http.get("/rules", params={"type": "alert"})).json()["data"]
            rules = sum(len(group["rules"]) for group in groups["groups"])
            if servers and not down and rules:
                break
            await asyncio.sleep(0.5)
    detail = f"scraping {', '.join(up) or 'nothing'} (up); {rules} alert rules loaded"
    if down:
        detail += f"; not up: {', '.join(down)}"
    return RoundTrip(
        component="prometheus",
        ok=not down and rules > 0,
        detail=detail,
        seconds=time.perf_counter() - started,
    )
