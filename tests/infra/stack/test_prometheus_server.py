"""Prometheus as a stack server: skipped with advice when missing, reloaded on a change."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot4.commands import print_status
from bot4.settings import ApiSettings
from infra.stack.component import SilentProgress
from infra.stack.launcher import Stack, StackStatus
from infra.stack.paths import StackPaths
from infra.stack.process import is_alive, read_pid_file
from infra.stack.prometheus_server import PrometheusServer
from infra.stack.roundtrip import prometheus_round_trip
from tests.stubs.ports import free_ports
from tests.stubs.prometheus import require_prometheus
from tests.stubs.stack import make_home, remove_home, stack_settings


@pytest.fixture
def home() -> Iterator[Path]:
    made = make_home()
    yield made
    remove_home(made)


def test_without_the_binary_it_is_skipped_and_says_how_to_install(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(home))  # nothing there
    server = PrometheusServer(paths=StackPaths(home), settings=stack_settings(home))

    outcome = server.ensure_running(SilentProgress())
    status = server.status()

    assert outcome == "skipped"
    assert "apt-get install -y --no-install-recommends prometheus" in str(server.skipped_because())
    assert status.healthy  # an optional server: the stack is healthy without it
    assert status.pid is None
    assert "not installed" in str(status.details["skipped"])
    print_status(StackStatus(home=str(home), components=(status,)))
    assert "skipped" in capsys.readouterr().out


def targets(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/api/v1/targets", timeout=5) as answer:
        document = json.load(answer)
    return {t["scrapeUrl"] for t in document["data"]["activeTargets"]}


def scraped(url: str, target: str) -> bool:
    """Wait until ``target`` is among the active targets (discovery applies every 5 s)."""
    deadline = time.monotonic() + 15
    while target not in targets(url):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_starts_on_its_port_reloads_a_changed_config_and_stops_cleanly(home: Path) -> None:
    require_prometheus()
    settings = stack_settings(home)
    paths = StackPaths(home)
    paths.create()
    server = PrometheusServer(paths=paths, settings=settings)
    try:
        assert server.ensure_running(SilentProgress()) == "started"
        assert server.healthy()
        api = f"http://127.0.0.1:{settings.api.port}/metrics"
        assert scraped(server.url(), api)

        moved = settings.model_copy(update={"api": ApiSettings(port=free_ports(1)[0])})
        again = PrometheusServer(paths=paths, settings=moved)
        assert again.ensure_running(SilentProgress()) == "reused"
        new_api = f"http://127.0.0.1:{moved.api.port}/metrics"
        assert scraped(server.url(), new_api)  # SIGHUP: the same process, the new config
        assert api not in targets(server.url())
    finally:
        record = read_pid_file(server.pid_file, component="prometheus")
        assert server.stop()
    assert record is not None
    assert not is_alive(record)
    assert (home / "prometheus" / "data").is_dir()  # its TSDB lives in the state folder


async def test_the_round_trip_sees_every_server_up_and_the_rules_loaded(
    running_stack: Stack,
) -> None:
    require_prometheus()

    result = await prometheus_round_trip(running_stack.settings)

    assert result.ok, result.detail
    assert "api, exchange-sim, flows, prometheus, worker (up)" in result.detail
