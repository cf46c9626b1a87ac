"""The stack launcher against real servers it starts itself, on free ports."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from bot4.settings import Settings
from infra.platform import Color, LocalPlatform
from infra.stack.component import SilentProgress
from infra.stack.errors import CorruptStateError, MissingBinaryError, PortTakenError
from infra.stack.launcher import Stack
from infra.stack.paths import StackPaths
from infra.stack.prefect_server import prefect_client_env
from infra.stack.roundtrip import api_round_trip, exchange_round_trip, standby_dsn
from infra.stack.temporal_server import TemporalServer
from infra.storage import s3_client
from tests.stubs.processes import process_tree, still_running
from tests.stubs.prometheus import require_prometheus
from tests.stubs.stack import make_home, remove_home, settings_env, stack_settings
from workflows.stack_check import StackCheckInput, StackCheckWorkflow
from workflows.stack_check.activities import StackCheckActivities


def bot4_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh process, configured like ``settings``."""
    return subprocess.run(
        [sys.executable, "-m", "bot4", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def test_row_written_on_primary_is_readable_on_sync_standby(running_stack: Stack) -> None:
    db = running_stack.settings.db
    payload = secrets.token_hex(8)
    probe_id = uuid.uuid4()
    primary = await asyncpg.connect(db.effective_dsn())
    try:
        assert await primary.fetchval("SELECT pg_is_in_recovery()") is False
        await primary.execute(
            "INSERT INTO stack_probe (probe_id, written_by, payload) VALUES ($1, 'test', $2)",
            probe_id,
            payload,
        )
        replication = await primary.fetch(
            "SELECT application_name, state, sync_state FROM pg_stat_replication"
        )
    finally:
        await primary.close()
    standby = await asyncpg.connect(standby_dsn(db))
    try:
        assert await standby.fetchval("SELECT pg_is_in_recovery()") is True
        seen = await standby.fetchval(
            "SELECT payload FROM stack_probe WHERE probe_id = $1", probe_id
        )
    finally:
        await standby.close()
    assert seen == payload  # remote_apply: visible on the standby when the commit returns
    assert [(r["application_name"], r["state"], r["sync_state"]) for r in replication] == [
        ("node_b", "streaming", "sync")
    ]


async def test_temporal_workflow_with_activity_completes(running_stack: Stack) -> None:
    settings = running_stack.settings.temporal
    client = await Client.connect(settings.effective_address(), namespace=settings.namespace)
    task_queue = f"test-{uuid.uuid4().hex}"
    workflow_id = f"stack-check-test-{uuid.uuid4().hex}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[StackCheckWorkflow],
        activities=[StackCheckActivities().digest],
    ):
        result = await client.execute_workflow(
            StackCheckWorkflow.run,
            StackCheckInput(token="abc"),
            id=workflow_id,
            task_queue=task_queue,
        )
    description = await client.get_workflow_handle(workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert result.token_sha256 == hashlib.sha256(b"abc").hexdigest()
    assert result.worker_pid == os.getpid()


async def test_prefect_flow_run_is_recorded_by_the_server(running_stack: Stack) -> None:
    api_url = running_stack.settings.prefect.effective_api_url()
    with tempfile.TemporaryDirectory() as client_home:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "flows.stack_check", "tok"],
            env={**os.environ, **prefect_client_env(api_url=api_url, home=client_home)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    flow_run_id = json.loads(done.stdout.strip().splitlines()[-1])["flow_run_id"]
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        run = (await http.get(f"/flow_runs/{flow_run_id}")).json()
        tasks = (
            await http.post(
                "/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}
            )
        ).json()
    assert run["state"]["type"] == "COMPLETED"
    assert [t["state"]["type"] for t in tasks] == ["COMPLETED"]


def test_object_put_to_s3_reads_back_with_same_sha256(running_stack: Stack) -> None:
    storage = running_stack.settings.storage
    bucket = storage.backup_bucket()
    assert bucket is not None
    client = s3_client(storage)
    body = secrets.token_bytes(3 * 1024 * 1024 + 17)
    client.put_object(Bucket=bucket, Key="test/blob", Body=body)
    read = client.get_object(Bucket=bucket, Key="test/blob")["Body"].read()
    assert hashlib.sha256(read).hexdigest() == hashlib.sha256(body).hexdigest()


def test_status_json_reports_every_component_healthy(running_stack: Stack) -> None:
    require_prometheus()  # part of the stack (skipped, not running, without the binary)
    done = bot4_cli(running_stack.settings, "stack", "status", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    names = [c["name"] for c in document["components"]]
    assert names == [
        "postgres-a", "postgres-b", "s3", "exchange-sim", "temporal", "worker", "prefect",
        "flows", "api", "prometheus",
    ]  # fmt: skip
    assert all(c["healthy"] is True and isinstance(c["pid"], int) for c in document["components"])
    assert document["healthy"] is True
    roles = {c["name"]: c.get("role") for c in document["components"]}
    assert roles["postgres-a"] == "primary"
    assert roles["postgres-b"] == "standby"


def _sleeping_engine(color: Color, release: Path) -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(600)", color, str(release)]


def test_lifecycle_up_reuses_and_down_leaves_no_process() -> None:
    """A stack of its own: up, up again (reused, same pids), status, down, nothing left."""
    require_prometheus()
    home = make_home()
    settings = stack_settings(home)
    try:
        first = bot4_cli(settings, "stack", "up", "--json")
        assert first.returncode == 0, first.stderr
        started = json.loads(first.stdout)
        assert set(started["outcomes"].values()) == {"started"}
        pids_before = {c["name"]: c["pid"] for c in started["components"]}

        second = bot4_cli(settings, "stack", "up", "--json")
        assert second.returncode == 0, second.stderr
        reused = json.loads(second.stdout)
        assert set(reused["outcomes"].values()) == {"reused"}
        assert {c["name"]: c["pid"] for c in reused["components"]} == pids_before

        tree = process_tree(list(pids_before.values()))
        assert len(tree) > len(pids_before)  # the servers' own children are tracked too
        # an engine the worker started during a rollout (a sleeping stand-in) stops first
        engine = LocalPlatform(home, command=_sleeping_engine).start("green", home / "r.json")
        assert engine.pid is not None
        engine_tree = process_tree([engine.pid])

        down = bot4_cli(settings, "stack", "down", "--json")
        assert down.returncode == 0, down.stderr
        report = json.loads(down.stdout)
        assert report["still_running_pids"] == []
        assert report["stopped"][0] == "engine-green"
        assert still_running(tree | engine_tree) == []

        after = bot4_cli(settings, "stack", "status", "--json")
        assert after.returncode == 3
        assert all(c["pid"] is None for c in json.loads(after.stdout)["components"])
    finally:
        Stack(settings).down()
        remove_home(home)


def test_taken_port_is_a_clear_error_naming_component_and_setting() -> None:
    home = make_home()
    settings = stack_settings(home)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", settings.db.primary_port))
    squatter.listen()
    try:
        done = bot4_cli(settings, "stack", "up")
        assert done.returncode == 1
        assert f"postgres-a: port {settings.db.primary_port}" in done.stderr
        assert "BOT4_DB__PRIMARY_PORT" in done.stderr
        assert Stack(settings).pids() == []
        assert not (StackPaths(home).postgres_dir / "node-a" / "PG_VERSION").exists()
    finally:
        squatter.close()
        Stack(settings).down()
        remove_home(home)


def test_taken_port_of_a_later_component_raises_port_taken(running_stack: Stack) -> None:
    """The session's servers hold their ports: a second stack on them must refuse."""
    home = make_home()
    try:
        clash = stack_settings(home).model_copy(
            update={"temporal": running_stack.settings.temporal}
        )
        server = TemporalServer(paths=StackPaths(home), settings=clash.temporal)
        with pytest.raises(PortTakenError, match="BOT4_TEMPORAL__PORT"):
            server.ensure_running(progress=SilentProgress())
    finally:
        remove_home(home)


def test_non_cluster_data_directory_is_reported_as_corrupt_state() -> None:
    home = make_home()
    try:
        node_a = StackPaths(home).postgres_dir / "node-a"
        node_a.mkdir(parents=True)
        (node_a / "leftover.txt").write_text("not a database")
        with pytest.raises(CorruptStateError, match=r"postgres-a: .* \(no PG_VERSION\)"):
            Stack(stack_settings(home)).up()
        assert (node_a / "leftover.txt").read_text() == "not a database"  # nothing destroyed
    finally:
        remove_home(home)


def test_unreadable_pid_file_names_the_component_and_what_to_do() -> None:
    home = make_home()
    try:
        paths = StackPaths(home)
        paths.create()
        paths.pid_file("temporal").write_text("{garbage")
        with pytest.raises(CorruptStateError, match=r"temporal: pid file .* delete"):
            Stack(stack_settings(home)).status()
    finally:
        remove_home(home)


def test_missing_server_binary_says_how_to_install() -> None:
    home = make_home()
    try:
        server = TemporalServer(paths=StackPaths(home), settings=stack_settings(home).temporal)
        server.binary = str(home / "no-such-temporal")
        with pytest.raises(MissingBinaryError, match="uv sync --frozen"):
            server.ensure_running(progress=SilentProgress())
    finally:
        remove_home(home)


async def test_exchange_simulator_trades_through_the_engine_adapter(running_stack: Stack) -> None:
    result = await exchange_round_trip(running_stack.settings.exchange)
    assert result.ok, result.detail


async def test_control_api_refuses_without_key_admits_the_bootstrapped_one_and_audits(
    running_stack: Stack,
) -> None:
    """The demo's check of the API that ``stack up`` started (bootstraps the admin key once)."""
    result = await api_round_trip(running_stack.settings)
    assert result.ok, result.detail
    again = await api_round_trip(running_stack.settings)  # reuses the key file
    assert again.ok, again.detail
