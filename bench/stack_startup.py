"""How long the local stack takes to come up cold, to come up warm, and to go down.

    .venv/bin/python -m bench.stack_startup

Runs in a throw-away BOT4_HOME on free ports and prints one JSON document: seconds per
component for a cold start (empty state folder), a warm ``up`` (everything reused), the
round trips of ``bot4 demo``, and ``down``.
"""

from __future__ import annotations

import asyncio
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import free_ports
from bot4.settings import (
    DatabaseSettings,
    ExchangeSettings,
    PrefectSettings,
    Settings,
    StorageSettings,
    TemporalSettings,
)
from infra.stack.launcher import Stack
from infra.stack.roundtrip import (
    exchange_round_trip,
    object_store_round_trip,
    postgres_round_trip,
    prefect_round_trip,
    temporal_round_trip,
)


class Stopwatch:
    """Progress receiver that times each component from begin to done."""

    def __init__(self) -> None:
        self.began: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def begin(self, component: str, action: str) -> None:
        """Start the component's clock (first begin wins)."""
        self.began.setdefault(component, time.perf_counter())

    def waiting(self, component: str, elapsed_s: float) -> None:
        """Ignore."""

    def done(self, component: str, outcome: str) -> None:
        """Stop the component's clock."""
        self.seconds[component] = round(time.perf_counter() - self.began.pop(component), 3)


async def _round_trips(settings: Settings) -> dict[str, float]:
    results = [
        await postgres_round_trip(settings.db),
        await asyncio.to_thread(object_store_round_trip, settings.storage),
        await exchange_round_trip(settings.exchange),
        await temporal_round_trip(settings.temporal),
        await prefect_round_trip(settings.prefect),
    ]
    if not all(r.ok for r in results):
        raise SystemExit(f"round trip failed: {[r for r in results if not r.ok]}")
    return {r.component: round(r.seconds, 3) for r in results}


def main() -> None:
    """Measure and print the JSON report."""
    home = Path(tempfile.mkdtemp(prefix="bot4-bench-", dir="/tmp"))
    home.chmod(0o755)
    pg_a, pg_b, temporal, temporal_ui, prefect, s3, exchange = free_ports(7)
    settings = Settings(
        home=home,
        db=DatabaseSettings(primary_port=pg_a, standby_port=pg_b),
        temporal=TemporalSettings(port=temporal, ui_port=temporal_ui),
        prefect=PrefectSettings(port=prefect),
        storage=StorageSettings(port=s3),
        exchange=ExchangeSettings(port=exchange),
    )
    stack = Stack(settings)
    report: dict[str, object] = {"machine": platform.machine(), "python": platform.python_version()}
    try:
        for phase in ("cold_up", "warm_up"):
            watch = Stopwatch()
            started = time.perf_counter()
            stack.up(watch)
            report[phase] = {
                "total_s": round(time.perf_counter() - started, 3),
                "components_s": watch.seconds,
            }
        report["round_trip_s"] = asyncio.run(_round_trips(settings))
        started = time.perf_counter()
        stack.down()
        report["down_s"] = round(time.perf_counter() - started, 3)
    finally:
        stack.down()
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
