"""``bot4 engine halt`` / ``resume``: the kill-switch flag and the control endpoints.

The CLI runs as a subprocess against real servers: the session's PostgreSQL (a scratch
database), the exchange simulator (subprocess) and a safety thread serving a control
endpoint in this process for a minimal test engine (``StubEngine`` of
tests/stubs/engine_control.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from bot4.settings import ExchangeSettings
from engine.dtypes import HALTED
from engine.live.killswitch import read_kill_switch
from engine.live.safety import SafetyThread
from tests.stubs.engine_control import (
    TOKEN,
    EngineLoop,
    StubEngine,
    open_order_count,
    place_resting_orders,
    running_safety,
    simulator,
    venue_client,
)
from tests.stubs.ports import free_ports

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def exchange() -> Iterator[ExchangeSettings]:
    with simulator() as settings:
        yield settings


@pytest.fixture
def safety(exchange: ExchangeSettings, dsn: str) -> Iterator[SafetyThread]:
    with EngineLoop() as loop, running_safety(exchange, StubEngine(), loop, dsn=dsn) as running:
        yield running


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "control-token"
    path.write_text(TOKEN + "\n")
    return path


def _env(tmp_path: Path, *, dsn: str, blue_port: int) -> dict[str, str]:
    (green_port,) = free_ports(1)  # no green engine runs
    return {
        "BOT4_HOME": str(tmp_path),
        "BOT4_DB__DSN": dsn,
        "BOT4_ENGINE__BLUE_CONTROL_PORT": str(blue_port),
        "BOT4_ENGINE__GREEN_CONTROL_PORT": str(green_port),
    }


async def _bot4(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot4", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _flag(dsn: str) -> bool:
    connection = await asyncpg.connect(dsn)
    try:
        return (await read_kill_switch(connection)).engaged
    finally:
        await connection.close()


async def test_halt_engages_the_flag_and_halts_the_running_engine_verified(
    safety: SafetyThread, exchange: ExchangeSettings, dsn: str, token_file: Path,
    tmp_path: Path,
):  # fmt: skip
    env = _env(tmp_path, dsn=dsn, blue_port=int(safety.url.rsplit(":", 1)[1]))
    async with venue_client(exchange) as client:
        await place_resting_orders(client, per_symbol=1)
        done = await _bot4(
            "engine", "halt", "--json", "--reason", "cli test", "--by", "erin",
            "--token-file", str(token_file), env=env,
        )  # fmt: skip
        left = await open_order_count(client)

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is True
    assert document["kill_switch"]["engaged"] is True
    assert document["kill_switch"]["changed_by"] == "erin"
    blue, green = document["engines"]
    assert (blue["color"], blue["ok"], blue["answer"]["verified"]) == ("blue", True, True)
    assert green["reached"] is False  # not running: reported, not a failure
    assert left == 0
    assert safety.gate.state == HALTED
    assert await _flag(dsn) is True


async def test_resume_disengages_the_flag(safety: SafetyThread, dsn: str, tmp_path: Path):
    env = _env(tmp_path, dsn=dsn, blue_port=int(safety.url.rsplit(":", 1)[1]))
    halted = await _bot4("engine", "halt", "--json", env=env)
    assert halted.returncode == 0, halted.stderr  # the flag alone is enough
    assert await _flag(dsn) is True

    done = await _bot4("engine", "resume", "--json", "--reason", "incident over", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["kill_switch"]["engaged"] is False
    assert await _flag(dsn) is False


async def test_halt_exits_1_when_neither_the_flag_nor_an_engine_was_reached(tmp_path: Path):
    dead_db, dead_blue = free_ports(2)
    env = _env(tmp_path, dsn=f"postgresql://postgres@127.0.0.1:{dead_db}/bot4", blue_port=dead_blue)
    done = await _bot4("engine", "halt", "--json", "--timeout", "2", env=env)
    assert done.returncode == 1
    assert "nothing was halted" in done.stderr
    assert "cancel the orders at the venue directly" in done.stderr
    assert json.loads(done.stdout)["ok"] is False


async def test_halt_exits_1_when_an_engine_refuses_the_token(
    safety: SafetyThread, dsn: str, tmp_path: Path
):
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token-0123456789")
    env = _env(tmp_path, dsn=dsn, blue_port=int(safety.url.rsplit(":", 1)[1]))
    done = await _bot4("engine", "halt", "--token-file", str(wrong), env=env)
    assert done.returncode == 1
    assert "engine blue" in done.stderr
    assert "HTTP 401" in done.stderr
    assert await _flag(dsn) is True  # the flag path still worked


async def test_unreadable_token_file_is_bad_usage(tmp_path: Path):
    env = {"BOT4_HOME": str(tmp_path)}
    done = await _bot4("engine", "halt", "--token-file", str(tmp_path / "missing"), env=env)
    assert done.returncode == 2
    assert "--token-file" in done.stderr
