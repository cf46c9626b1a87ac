"""A small client of Prometheus's HTTP API (loopback), and the selectors the rules use."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from bot4.settings import Settings
from infra.prometheus.config import RULES_DIR

SELECTOR = re.compile(r"\b(bot4_[a-z0-9_]+|up)\b(\{[^}]*\})?")


def require_prometheus() -> None:
    """Fail (not skip) when Debian's prometheus package is missing: the Makefile installs it."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.fail(
            "prometheus/promtool not installed: install Debian's prometheus package"
            " (apt-get install -y --no-install-recommends prometheus; `make test` does it"
            " when run as root)"
        )


def rule_selectors(rules_dir: Path = RULES_DIR) -> dict[str, set[str]]:
    """Return every series selector of every alert expression, by alert name."""
    found: dict[str, set[str]] = {}
    for path in sorted(rules_dir.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found[rule["alert"]] = {
                    name + (matchers or "") for name, matchers in SELECTOR.findall(rule["expr"])
                }
    return found


class PrometheusApi:
    """``/api/v1`` of one Prometheus."""

    def __init__(self, settings: Settings) -> None:
        self.url = f"http://127.0.0.1:{settings.prometheus.port}"

    async def get(self, path: str, **params: Any) -> Any:
        """Return the ``data`` of a successful answer."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            answer = await http.get(f"/api/v1/{path}", params=params)
        answer.raise_for_status()
        document = answer.json()
        assert document["status"] == "success", document
        return document["data"]

    async def targets(self) -> list[dict[str, Any]]:
        """Return the active scrape targets."""
        data = await self.get("targets", state="active")
        return list(data["activeTargets"])

    async def alerts(self) -> list[dict[str, Any]]:
        """Return the pending and firing alerts."""
        return list((await self.get("alerts"))["alerts"])

    async def series(self, selector: str, *, within_s: float = 300) -> list[dict[str, str]]:
        """Return the series matching ``selector`` seen in the last ``within_s`` seconds."""
        now = time.time()
        return list(
            await self.get("series", **{"match[]": selector, "start": now - within_s, "end": now})
        )


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within_s: float, what: str, quiet: bool = False
) -> Any:
    """Poll ``check`` every half second until it returns something truthy; return it.

    ``quiet``: return the last falsy answer at the deadline instead of failing.
    """
    deadline = time.monotonic() + within_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.5)
    if quiet:
        return last
    raise AssertionError(f"not within {within_s} s: {what} (last: {last!r:.500})")
