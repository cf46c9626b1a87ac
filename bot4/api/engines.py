"""The engines behind the API: their control endpoints and the desk's kill switch.

Engines listen on the control ports of their color (``BOT4_ENGINE__*_CONTROL_PORT``), the
same addresses ``bot4 engine halt`` reaches directly. Admin actions are proxied with the
engines' bearer token, the caller's key named as ``by``; the kill switch is the row every
engine polls (:mod:`engine.live.killswitch`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Final, cast

import asyncpg
import httpx
import structlog

from bot4.api.errors import NotFoundError
from bot4.api.keys import database
from bot4.api.redact import Scrubber
from engine.live.control import ControlUnreachableError, post_admin
from engine.live.killswitch import read_kill_switch, set_kill_switch

COLORS: Final = ("blue", "green")


def traced(reason: str, *, limit: int) -> str:
    """Return ``reason`` with the request's correlation id.

    The engine's log lines and the kill-switch row then lead back to the audit row (the
    middleware binds the id to the request's context).
    """
    correlation_id = structlog.contextvars.get_contextvars().get("correlation_id")
    if not correlation_id:
        return reason[:limit]
    suffix = f" [correlation id {correlation_id}]"
    return reason[: limit - len(suffix)] + suffix


class Engines:
    """Status and admin actions of the engines, by color.

    Args:
        endpoints: control base URL of each color.
        token: the engines' admin bearer token ("" when none is configured).
        timeout_s: bound of one call.
        scrubber: cleans what engines answer before it is passed on.
    """

    def __init__(
        self, endpoints: Mapping[str, str], *, token: str, timeout_s: float, scrubber: Scrubber
    ) -> None:
        self._endpoints = dict(endpoints)
        self._token = token
        self._timeout_s = timeout_s
        self._scrubber = scrubber

    def colors(self, color: str) -> list[str]:
        """Return the colors ``color`` names (``all``: every one).

        Raises:
            NotFoundError: no engine of that color is configured.
        """
        if color == "all":
            return list(self._endpoints)
        if color not in self._endpoints:
            raise NotFoundError(f"no engine {color!r}; engines are {sorted(self._endpoints)}")
        return [color]

    async def status(self, color: str) -> dict[str, object]:
        """Return one engine's ``/status`` (or why it could not be read)."""
        url = self._endpoints[color]
        row: dict[str, object] = {"color": color, "url": url, "reached": False}
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as http:
                answer = await http.get(f"{url}/status")
        except httpx.HTTPError as e:
            return row | {"error": f"not reachable ({type(e).__name__})"}
        try:
            document = answer.json()
        except ValueError:
            document = {"error": f"HTTP {answer.status_code}, not JSON"}
        return row | {"reached": True, "status": self._scrubber.value(document)}

    async def statuses(self, color: str = "all") -> list[dict[str, object]]:
        """Return the status of every engine ``color`` names."""
        return list(await asyncio.gather(*(self.status(c) for c in self.colors(color))))

    async def admin(
        self,
        color: str,
        action: str,
        *,
        by: str,
        reason: str,
        version: str | None = None,
        fields: Mapping[str, object] | None = None,
    ) -> list[dict[str, object]]:
        """Run an admin action on every engine ``color`` names; one row per engine.

        ``fields`` are the action's own (checked by the API's body model and again by the
        engine's control server).
        """
        # what engines receive, they log: no secret may ride along in free text
        payload: dict[str, object] = {
            "by": self._scrubber.text(by)[:100],
            "reason": traced(self._scrubber.text(reason), limit=500),
        }
        if version is not None:
            payload["version"] = version
        payload |= dict(fields or {})

        async def call(engine: str) -> dict[str, object]:
            url = self._endpoints[engine]
            row: dict[str, object] = {"color": engine, "url": url, "reached": False, "ok": False}
            if not self._token:
                return row | {
                    "error": "the API has no engine control token (BOT4_ENGINE__CONTROL_TOKEN"
                    " or <home>/engine/control.token)"
                }
            try:
                answer = await post_admin(
                    url, action, token=self._token, payload=payload, timeout_s=self._timeout_s
                )
            except ControlUnreachableError:
                return row | {"error": "not reachable (not running, or timed out)"}
            body = self._scrubber.value(answer.body)
            row |= {"reached": True, "status": answer.status, "answer": body}
            if answer.status == 200:
                return row | {"ok": True}
            detail = answer.body.get("error", "") if isinstance(answer.body, dict) else ""
            return row | {"error": f"HTTP {answer.status}: {self._scrubber.text(str(detail))}"}

        return list(await asyncio.gather(*(call(c) for c in self.colors(color))))


class KillSwitch:
    """The desk's kill-switch flag in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, *, scrubber: Scrubber) -> None:
        self._pool = pool
        self._scrubber = scrubber

    async def read(self) -> dict[str, object]:
        """Return the flag.

        Raises:
            UnavailableError: PostgreSQL cannot be reached.
        """
        async with database("read the kill switch"), self._pool.acquire() as connection:
            return (await read_kill_switch(cast(asyncpg.Connection, connection))).as_json()

    async def set(self, *, engaged: bool, reason: str, by: str) -> dict[str, object]:
        """Engage or disengage the flag; return it as written, or the error.

        Never raises for database trouble: a halt reports it and still calls the engines.
        """
        reason, by = traced(self._scrubber.text(reason), limit=500), self._scrubber.text(by)
        try:
            async with database("set the kill switch"), self._pool.acquire() as connection:
                state = await set_kill_switch(
                    cast(asyncpg.Connection, connection), engaged=engaged, reason=reason, by=by
                )
        except Exception as e:  # reported to the caller; the engine path may still work
            return {"error": str(e)}
        return state.as_json()
