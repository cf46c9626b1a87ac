"""Pieces the benches share: free ports, stack progress, the simulator, settings, status."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot4.settings import (
    DatabaseSettings,
    EngineSettings,
    ExchangeSettings,
    Settings,
    TemporalSettings,
    WorkerSettings,
)


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free ports on 127.0.0.1 (all held at once while picked)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class StderrProgress:
    """Stack progress as one line per finished step, through the bench's ``say``."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say

    def begin(self, component: str, action: str) -> None:
        """Ignore (the outcome line follows)."""

    def waiting(self, component: str, elapsed_s: float) -> None:
        """Ignore."""

    def done(self, component: str, outcome: str) -> None:
        """Print the outcome."""
        self._say(f"{component}: {outcome}")


class InProcessSim:
    """The simulator on its own thread and loop (seeded; the demo account, maybe a second)."""

    def __init__(
        self, port: int, *, seed: int, agents: float, other: tuple[str, str] | None = None
    ) -> None:
        from infra.exchange_sim.config import AccountSpec, SimConfig

        self.config = SimConfig(
            port=port, seed=seed, agent_orders_per_s=agents, depth_interval_ms=50,
            accounts=(AccountSpec(name="demo", api_key="bot4-demo-key",
                                  api_secret="bot4-demo-secret"),
                      *([] if other is None else
                        [AccountSpec(name="other", api_key=other[0], api_secret=other[1])])),
        )  # fmt: skip
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from infra.exchange_sim.server import RunningSim

        asyncio.set_event_loop(self._loop)
        sim = RunningSim(self.config)
        self._loop.run_until_complete(sim.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(sim.stop())
        self._loop.close()

    def __enter__(self) -> InProcessSim:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def bench_settings(home: Path, seed: int, *, symbols: tuple[str, ...], token: str) -> Settings:
    """Return settings for the stack's servers and engine blue on free ports under ``home``."""
    ports = free_ports(8)
    return Settings(
        home=home,
        db=DatabaseSettings(primary_port=ports[0], standby_port=ports[1]),
        temporal=TemporalSettings(port=ports[2], ui_port=ports[3]),
        exchange=ExchangeSettings(port=ports[4], symbols=symbols, sim_seed=seed),
        worker=WorkerSettings(metrics_port=ports[5]),
        engine=EngineSettings(
            blue_control_port=ports[6], green_control_port=ports[7], control_token=SecretStr(token)
        ),
    )


async def engine_status(url: str) -> dict[str, Any] | None:
    """Return an engine's ``/status`` (None when it does not answer)."""
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            http.get(f"{url}/status") as answer,
        ):
            return dict(await answer.json())
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
