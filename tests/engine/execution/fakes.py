"""Test doubles for the adapter: a manual clock and a scripted ccxt-like exchange.

FAKE CLOCK: tests drive time; ``sleep`` advances it at once (and yields to the loop), so
backoffs and cool-downs are exercised without waiting, and no test asserts timings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class ManualClock:
    """A fake clock: monotonic and wall time move only when told (or on sleep)."""

    def __init__(self, *, start_ns: int = 1_700_000_000 * 1_000_000_000) -> None:
        self.now = 0.0
        self.start_ns = start_ns
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time_ns(self) -> int:
        return self.start_ns + int(self.now * 1e9)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class ScriptedExchange:
    """Stands in for a ccxt client: each call pops the next scripted result or error."""

    precisionMode = 4  # noqa: N815 - ccxt's attribute name

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.script: dict[str, list[Any]] = {}
        self.closed = False

    def on_rest_response(self, *args: Any) -> Any:
        return args[5]

    def respond(self, status: int, headers: dict[str, str]) -> None:
        """Simulate ccxt seeing a response (feeds the gateway's hook)."""
        self.on_rest_response(status, "", "url", "GET", headers, "{}")

    def plan(self, name: str, *outcomes: Any) -> None:
        self.script.setdefault(name, []).extend(outcomes)

    def _next(self, name: str, args: tuple[Any, ...]) -> Any:
        self.calls.append((name, args))
        outcome = (
            self.script[name].pop(0)
            if len(self.script.get(name, [])) > 1
            else (self.script[name][0])
        )
        if isinstance(outcome, BaseException):
            raise outcome
        if callable(outcome):
            return outcome(*args)
        return outcome

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def method(*args: Any) -> Any:
            return self._next(name, args)

        return method

    async def close(self) -> None:
        self.closed = True


def sample_value(metric: str, labels: dict[str, str]) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(metric, labels) or 0.0
