"""The engines' control servers as activities see them: who leads, status, admin calls.

Activities of several workflows talk to the same two engines (blue and green) through
their control servers. Heavy imports (aiohttp, the engine) happen inside the methods: a
workflow module imports its activities, and the sandbox must stay light.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from temporalio.exceptions import ApplicationError

from bot4.settings import Settings


@dataclass(frozen=True, kw_only=True, slots=True)
class Engine:
    """One engine's control server."""

    color: str
    url: str


class EngineCallError(Exception):
    """An engine did not answer or could not act now (retried: it may be restarting)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineDirectory:
    """Both colors' control servers, the admin token and a per-call timeout."""

    engines: tuple[Engine, ...]
    token: str
    timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout_s: float = 5.0) -> EngineDirectory:
        """Return the directory of the worker's settings (blue and green)."""
        from engine.live.run import control_token

        engine = settings.engine
        return cls(
            engines=tuple(
                Engine(color=color, url=f"http://{engine.host}:{port}")
                for color, port in (
                    ("blue", engine.blue_control_port),
                    ("green", engine.green_control_port),
                )
            ),
            token=control_token(settings),
            timeout_s=timeout_s,
        )

    async def status(self, engine: Engine) -> dict[str, Any] | None:
        """Return an engine's ``/status`` (None when it does not answer)."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(f"{engine.url}/status") as response,
            ):
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    async def statuses(self) -> list[tuple[Engine, dict[str, Any] | None]]:
        """Return every engine with its status (None: not answering), asked at once."""
        answers = await asyncio.gather(*(self.status(e) for e in self.engines))
        return list(zip(self.engines, answers, strict=True))

    async def leader(self) -> tuple[Engine, dict[str, Any]] | None:
        """Return the leading engine and its status (None when none leads right now)."""
        for engine, status in await self.statuses():
            if status is not None and status.get("role") == "leader":
                return engine, status
        return None

    async def admin(self, engine: Engine, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Call an admin action; return its result.

        Raises:
            EngineCallError: unreachable, busy or not able to act now (retry).
            ApplicationError: ``InvalidInput`` (non-retryable) when the engine refused
                the request itself (HTTP 400).
        """
        from engine.live.control import ControlUnreachableError, post_admin

        try:
            answer = await post_admin(engine.url, action, token=self.token, payload=payload,
                                      timeout_s=self.timeout_s)  # fmt: skip
        except ControlUnreachableError as e:
            raise EngineCallError(str(e)) from e
        error = str(answer.body.get("error", answer.body))
        if answer.status == 400:
            raise ApplicationError(f"{action} refused by {engine.color}: {error}",
                                   type="InvalidInput", non_retryable=True)  # fmt: skip
        if answer.status != 200:
            raise EngineCallError(f"{action} at {engine.color}: HTTP {answer.status}: {error}")
        result = answer.body.get("result")
        return result if isinstance(result, dict) else {}
