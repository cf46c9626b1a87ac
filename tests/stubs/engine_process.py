"""One ``bot4 engine run`` subprocess and its control endpoint, as an operator starts it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import aiohttp

from tests.stubs.engine_control import TOKEN
from tests.stubs.ports import free_ports


class EngineProcess:
    """One ``bot4 engine run`` subprocess and its control endpoint."""

    def __init__(self, home: Path, dsn: str, market: int, release: Path, *, color: str,
                 instance: str, lease_ttl: float = 2.0,
                 env: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.port = free_ports(1)[0]
        self.home = home
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "BOT4_HOME": str(home),
            "BOT4_DB__DSN": dsn,
            "BOT4_EXCHANGE__PORT": str(market),
            "BOT4_ENGINE__CONTROL_TOKEN": TOKEN,
            **(env or {}),
        }
        self.log = (home / f"{instance}.log").open("wb")
        self.args = [sys.executable, "-m", "bot4", "engine", "run", "--color", color,
                     "--release", str(release), "--instance", instance,
                     "--control-port", str(self.port), "--lease-ttl", str(lease_ttl)]  # fmt: skip
        self.env = env
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> EngineProcess:
        self.process = await asyncio.create_subprocess_exec(
            *self.args, env=self.env, stdout=self.log, stderr=self.log
        )
        return self

    async def status(self) -> dict[str, Any] | None:
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{self.url}/status", timeout=aiohttp.ClientTimeout(total=2)) as answer,
            ):
                return dict(await answer.json())
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def wait_for(self, predicate: Any, *, within: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"engine exited {self.process.returncode}: {self.tail()}")
            status = await self.status()
            if status is not None and predicate(status):
                return status
            await asyncio.sleep(0.2)
        # the status names the conditions holding the state down; the log, what happened
        raise AssertionError(
            f"engine never reached: {what}; last {await self.status()}\n{self.tail()}"
        )

    def tail(self) -> str:
        self.log.flush()
        log = self.home / "log" / "bot4.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        problems = [line for line in lines if '"warning"' in line or '"error"' in line]
        output = Path(self.log.name).read_text(errors="replace")[-2000:]
        return "\n".join([output, *problems[-10:]])

    async def kill(self) -> None:
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def terminate(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                await self.kill()
        self.log.close()
        return int(self.process.returncode or 0)
