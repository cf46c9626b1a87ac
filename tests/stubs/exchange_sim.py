"""Builders for exchange simulator tests: configs, in-process servers, ccxt clients."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from infra.exchange_sim.config import DEMO_BALANCES, AccountSpec, SimConfig
from tests.stubs.ports import free_ports

DEMO_KEY = "bot4-demo-key"
DEMO_SECRET = "bot4-demo-secret"
OTHER_KEY = "other-key"
OTHER_SECRET = "other-secret"
ADMIN_TOKEN = "test-admin-token"


def sim_config(state_dir: Path | None = None, **overrides: Any) -> SimConfig:
    """Return a quiet simulator config on a free port with a demo and a second account."""
    values: dict[str, Any] = {
        "port": free_ports(1)[0],
        "state_dir": state_dir,
        "accounts": (
            AccountSpec(name="demo", api_key=DEMO_KEY, api_secret=DEMO_SECRET),
            AccountSpec(
                name="other",
                api_key=OTHER_KEY,
                api_secret=OTHER_SECRET,
                balances=dict(DEMO_BALANCES) | {"USDT": Decimal("500000")},
            ),
        ),
        "admin_token": ADMIN_TOKEN,
        "agent_orders_per_s": 0.0,
        "depth_interval_ms": 20,
    }
    values.update(overrides)
    return SimConfig(**values)


def ccxt_binance(
    port: int, *, pro: bool = False, key: str = DEMO_KEY, secret: str = DEMO_SECRET
) -> Any:
    """Return ccxt's own binance class (async or pro) pointed at a local simulator."""
    if pro:
        import ccxt.pro as module
    else:
        import ccxt.async_support as module
    exchange = module.binance(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": False,
            "timeout": 5000,
            "options": {
                "fetchCurrencies": False,
                "fetchMarkets": {"types": ["spot"]},
                "fetchMargins": False,
            },
        }
    )
    base = f"http://127.0.0.1:{port}/api/v3"
    exchange.urls["api"]["public"] = base
    exchange.urls["api"]["private"] = base
    if pro:
        exchange.urls["api"]["ws"]["spot"] = f"ws://127.0.0.1:{port}/stream/ws"
        exchange.urls["api"]["ws"]["ws-api"]["spot"] = f"ws://127.0.0.1:{port}/ws-api/v3"
    return exchange


def sim_env(home: Path, port: int) -> dict[str, str]:
    """Return the environment of a quiet ``python -m infra.exchange_sim serve``."""
    return {
        **os.environ,
        "BOT4_HOME": str(home),
        "BOT4_EXCHANGE__PORT": str(port),
        "BOT4_EXCHANGE__SIM_AGENT_ORDERS_PER_S": "0",
        "BOT4_EXCHANGE__SIM_ADMIN_TOKEN": ADMIN_TOKEN,
    }


def start_sim_process(home: Path, port: int) -> subprocess.Popen[bytes]:
    """Start the simulator as a subprocess and wait until /api/v3/ping answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.exchange_sim", "serve"],
        env=sim_env(home, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"simulator exited with {process.returncode}: {err}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v3/ping", timeout=1) as r:
                if r.status == 200:
                    return process
        except OSError:
            time.sleep(0.1)
    stop_sim_process(process)
    raise RuntimeError("simulator did not answer /api/v3/ping in 30 s")


def stop_sim_process(process: subprocess.Popen[bytes]) -> int:
    """Stop a simulator subprocess (SIGTERM, then SIGKILL) and return its exit code."""
    process.terminate()
    try:
        code = process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    if process.stderr is not None:
        process.stderr.close()
    return code


class ThreadedSim:
    """An in-process simulator on real TCP, served by its own thread and event loop.

    For synchronous tests (Hypothesis, the CLI) that must not block the server's loop.
    """

    def __init__(self, config: SimConfig) -> None:
        import asyncio
        import threading

        from infra.exchange_sim.server import RunningSim

        self.config = config
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._sim: RunningSim | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._RunningSim = RunningSim

    def _run(self) -> None:
        import asyncio

        asyncio.set_event_loop(self._loop)
        self._sim = self._RunningSim(self.config)
        self._loop.run_until_complete(self._sim.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._sim.stop())
        self._loop.close()

    def __enter__(self) -> ThreadedSim:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    @property
    def base_url(self) -> str:
        """The simulator's HTTP base URL."""
        return f"http://127.0.0.1:{self.config.port}"

    @contextmanager
    def agents_paused(self) -> Iterator[None]:
        """Stop the background agents acting for the block (the book stays as it is).

        Their rate is read on each market step of the server's thread: one float written
        here is enough, and the rate they had comes back after the block.
        """
        assert self._sim is not None, "the simulator is not running"
        market = self._sim.market
        rate = market.orders_per_s
        market.orders_per_s = 0.0
        try:
            yield
        finally:
            market.orders_per_s = rate
