"""Builders for control-API tests: settings, a real ``bot4 api`` process, recording clients."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot4.settings import (
    ApiSettings,
    DatabaseSettings,
    EngineSettings,
    ExchangeSettings,
    RateLimit,
    Settings,
    TemporalSettings,
)
from tests.stubs.ports import free_ports

FAST: RateLimit = RateLimit(per_s=10_000, burst=10_000)


@dataclass(frozen=True, kw_only=True)
class ServerSecrets:
    """Secrets of one test server: none of them may ever leave it."""

    exchange_key: str = field(default_factory=lambda: "exk-" + secrets.token_hex(12))
    exchange_secret: str = field(default_factory=lambda: "exs-" + secrets.token_hex(16))
    sim_admin_token: str = field(default_factory=lambda: "sim-" + secrets.token_hex(12))
    engine_token: str = field(default_factory=lambda: "eng-" + secrets.token_hex(16))
    audit_key: str = field(default_factory=lambda: Fernet.generate_key().decode())

    def values(self) -> list[str]:
        return [self.exchange_key, self.exchange_secret, self.sim_admin_token,
                self.engine_token, self.audit_key]  # fmt: skip


def api_settings(
    home: Path,
    dsn: str,
    server_secrets: ServerSecrets,
    *,
    engine_ports: tuple[int, int] | None = None,
    temporal: TemporalSettings | None = None,
    **api: Any,
) -> Settings:
    """Return settings of an API on a free port over ``dsn`` (no engines unless ports given)."""
    blue, green = engine_ports or tuple(free_ports(2))
    values: dict[str, Any] = {
        "port": free_ports(1)[0],
        "rate_limits": {"viewer": FAST, "trader": FAST, "operator": FAST, "admin": FAST},
        "unauthenticated_rate_limit": FAST,
        "audit_key": SecretStr(server_secrets.audit_key),
        "engine_timeout_s": 2.0,
        "status_timeout_s": 10.0,
    }
    values.update(api)
    return Settings(
        home=home,
        db=DatabaseSettings(dsn=SecretStr(dsn)),
        temporal=temporal or TemporalSettings(),
        api=ApiSettings(**values),
        engine=EngineSettings(
            blue_control_port=blue,
            green_control_port=green,
            control_token=SecretStr(server_secrets.engine_token),
        ),
        exchange=ExchangeSettings(
            api_key=SecretStr(server_secrets.exchange_key),
            api_secret=SecretStr(server_secrets.exchange_secret),
            sim_admin_token=SecretStr(server_secrets.sim_admin_token),
        ),
    )


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Return a clean environment (no BOT4_* of the caller) that rebuilds ``settings``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("BOT4_")}
    return {**base, **settings.to_env(), **extra}


@dataclass(frozen=True, kw_only=True)
class RunningApi:
    """A ``bot4 api`` process serving on loopback."""

    settings: Settings
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return self.settings.effective_api_url()

    @property
    def home(self) -> Path:
        return self.settings.home


@contextlib.contextmanager
def running_api(settings: Settings, *, timeout_s: float = 30.0) -> Iterator[RunningApi]:
    """Start ``python -m bot4 api`` with ``settings``; wait for /healthz; stop it afterwards."""
    log_dir = settings.home / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "api-process.log").open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot4", "api"],
            env=cli_env(settings),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(settings.effective_api_url(), process, log_dir, timeout_s)
        yield RunningApi(settings=settings, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], log_dir: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (log_dir / "api-process.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"bot4 api exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"bot4 api did not answer {url}/healthz within {timeout_s} s")


@dataclass(frozen=True)
class Recorded:
    """One answer as the client saw it."""

    request: str
    status: int
    headers: str
    body: str

    @property
    def text(self) -> str:
        """What the API sent: headers and body (not the request line the test wrote)."""
        return f"{self.headers}\n{self.body}"


@dataclass
class Recorder:
    """Keeps every answer the tests received from any API, for the secret grep."""

    answers: list[Recorded] = field(default_factory=list)

    def add(self, request: str, status: int, headers: Any, body: str) -> None:
        lines = "\n".join(f"{k}: {v}" for k, v in dict(headers).items())
        self.answers.append(Recorded(request=request, status=status, headers=lines, body=body))

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        request = f"{response.request.method} {response.request.url.path}"
        self.add(request, response.status_code, response.headers, response.text)

    def client(self, api: RunningApi, key: str | None = None) -> httpx.AsyncClient:
        """Return an async client of ``api`` (with ``key``) whose answers are recorded."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(
            base_url=api.url, headers=headers, timeout=30, event_hooks={"response": [self.hook]}
        )


async def poll(check: Any, *, timeout_s: float, interval_s: float = 0.1) -> Any:
    """Await ``check()`` until it returns something truthy; return it, or fail at timeout."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s (last: {result!r})")
        await asyncio.sleep(interval_s)


async def run_bot4(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot4 ARGS`` with ``env`` (off the event loop); never raises on exit."""
    import asyncio
    import sys

    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot4", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
