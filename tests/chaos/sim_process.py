"""The exchange simulator as its own process, with a venue clock the chaos suite can jump.

``python -m tests.chaos.sim_process PORT STATE_DIR AGENTS_PER_S OFFSET_MS`` serves the
real simulator application (:func:`infra.exchange_sim.server.build_app`, SQLite state in
``STATE_DIR``, so a ``kill -9`` and a restart keep every order, trade and balance), with
two test-only additions:

- its clock is the wall clock plus an offset (``OFFSET_MS`` at start), and
- ``PUT /chaos/clock {"offset_ms": N}`` (admin token) moves that offset at run time.

The simulator reads time only through the ``clock`` it is built with, so this jumps
*everything the venue stamps*: depth-update and trade event times, order and trade
times, ``serverTime``, and the ``recvWindow`` check of signed requests. The engine's own
clocks are not jumped (that needs root or an LD_PRELOAD time shim); it sees the jump the
way it would see a venue whose clock steps: in every venue timestamp, and, for a step
back of more than a second, as signed requests refused "ahead of the server's time"
(-1021).

:class:`SimProcess` starts, kills (SIGKILL), restarts and stops it from a test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.stubs.exchange_sim import ADMIN_TOKEN, sim_config

ADMIN_HEADER = "X-Bot4-Admin-Token"


class JumpableClock:
    """UNIX milliseconds from the wall clock, plus an offset that can step at any time."""

    def __init__(self, offset_ms: int) -> None:
        self.offset_ms = offset_ms

    def now(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


def build_chaos_app(port: int, state_dir: Path, agents: float, offset_ms: int) -> web.Application:
    """Return the simulator's application on a jumpable clock, with ``/chaos/clock``."""
    from infra.exchange_sim.server import build_app

    clock = JumpableClock(offset_ms)
    config = sim_config(state_dir=state_dir, port=port, agent_orders_per_s=agents,
                        depth_interval_ms=100)  # fmt: skip
    app = build_app(config, clock=clock.now)

    async def set_clock(request: web.Request) -> web.Response:
        if request.headers.get(ADMIN_HEADER) != ADMIN_TOKEN:
            return web.json_response({"error": "wrong admin token"}, status=401)
        clock.offset_ms = int((await request.json())["offset_ms"])
        return web.json_response({"offset_ms": clock.offset_ms, "now_ms": clock.now()})

    app.router.add_put("/chaos/clock", set_clock)
    return app


class SimProcess:
    """One simulator subprocess on a fixed port; restarts keep its state folder and clock."""

    def __init__(self, *, port: int, log: Path, agents: float) -> None:
        self.port = port
        self.log = log
        self.agents = agents
        self.state_dir: Path | None = None
        self.offset_ms = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, state_dir: Path | None = None) -> None:
        """Start it (a new state folder when given, else the last one) and wait for ping."""
        if state_dir is not None:
            self.state_dir = state_dir
            self.offset_ms = 0
        assert self.state_dir is not None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "tests.chaos.sim_process", str(self.port),
                str(self.state_dir), str(self.agents), str(self.offset_ms)]  # fmt: skip
        with self.log.open("ab") as out:  # Popen returns at once: it never blocks the loop
            self.process = subprocess.Popen(  # noqa: ASYNC220
                argv, stdout=out, stderr=out, start_new_session=True
            )
        await self._wait_ping(within=60)

    async def _wait_ping(self, *, within: float) -> None:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"simulator exited {self.process.returncode}: {self.tail()}")
                with suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.url}/api/v3/ping") as answer:
                        if answer.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"simulator did not answer ping in {within} s: {self.tail()}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def kill(self) -> None:
        """SIGKILL it, like a lost host: no cleanup, the state folder as it was."""
        if self.process is not None and self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            await asyncio.to_thread(self.process.wait)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 15)
        except subprocess.TimeoutExpired:
            await self.kill()

    async def set_clock_offset(self, offset_ms: int) -> None:
        """Step the venue's clock to wall clock + ``offset_ms`` (kept across restarts)."""
        self.offset_ms = offset_ms
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.put(f"{self.url}/chaos/clock", json={"offset_ms": offset_ms},
                     headers={ADMIN_HEADER: ADMIN_TOKEN}) as answer,
        ):  # fmt: skip
            assert answer.status == 200, await answer.text()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


def main(argv: list[str]) -> None:
    """Serve until SIGTERM."""
    port, state_dir, agents, offset_ms = int(argv[0]), Path(argv[1]), float(argv[2]), int(argv[3])
    app = build_chaos_app(port, state_dir, agents, offset_ms)
    print(json.dumps({"serving": port, "offset_ms": offset_ms}), flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main(sys.argv[1:])
