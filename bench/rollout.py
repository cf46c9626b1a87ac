"""Handoff gap and duration of blue_green_deploy rollouts, on a whole local stack.

    .venv/bin/python -m bench.rollout [--rollouts 10] [--bake-s 3] [--json]

Starts ``bot4 stack up``'s servers (PostgreSQL primary + synchronous standby, Temporal,
the worker, the simulator with agents trading, Prefect, S3, the API) in a throw-away
BOT4_HOME on free ports, starts engine blue leading through LocalPlatform, then runs
``--rollouts`` rollouts one after the other through the stack's own worker (the production
path: ``start_rollout`` on the ``bot4`` task queue), each a new release version, so the
colors alternate: blue → green → blue ...

- ``handoff_gap_p50_ms`` / ``handoff_gap_max_ms``: from the journal, the old leader's last
  ``order_new`` to the new leader's first (``recorded_at``, PostgreSQL's clock), as the
  workflow reports it. It spans the old leader's step-down (settle in-flight sends,
  cancel its orders, record late fills, release the lease), the control calls, the new
  leader's takeover (epoch + 1, reconciliation with the venue) and its first decision.
- ``rollout_total_s``: start of the first rollout to the end of the last;
  ``rollout_p50_s``: one rollout (its warm and bake periods included).

Everything is stopped at the end, also on an error. Progress goes to stderr; stdout gets
one JSON document (``--json``) or a short table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
from pydantic import SecretStr
from temporalio.client import Client

from bench.common import free_ports
from bot4.settings import (
    ApiSettings,
    DatabaseSettings,
    EngineSettings,
    ExchangeSettings,
    PrefectSettings,
    Settings,
    StorageSettings,
    TemporalSettings,
    WorkerSettings,
)
from infra.platform import Color, LocalPlatform
from infra.stack.launcher import Stack
from workflows.blue_green_deploy import RolloutInput, RolloutResult, start_rollout

SYMBOLS: Final = ("BTC/USDT", "ETH/USDT")
RELEASE: Final[dict[str, Any]] = {
    "symbols": list(SYMBOLS),
    "model": {"builtin": "linear"},
    # tight quotes and a short requote, so the agents trade against us all the time
    "strategy": {"quote_lots": 20, "min_half_spread_ticks": 0.5, "base_half_spread_ticks": 0.5,
                 "taker_enabled": False, "requote_ticks": 2, "adverse_pull_ticks": 1500},
    "risk": {"max_order_notional": 100_000, "max_symbol_notional": 1_000_000,
             "max_position_lots": 100_000, "max_portfolio_exposure": 10_000_000,
             "max_depth_fraction": 5.0, "price_band_bps": 500},
    "post_trade": {"stop_loss_ticks": 3000, "latency_arb_move_ticks": 100},
}  # fmt: skip
LEAD_TIMEOUT_S: Final = 90.0


def _say(message: str) -> None:
    print(f"[rollout {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench_settings(home: Path, agent_rate: float) -> Settings:
    """Return settings for a whole stack and both engines on free ports under ``home``."""
    ports = free_ports(11)
    return Settings(
        home=home,
        db=DatabaseSettings(primary_port=ports[0], standby_port=ports[1]),
        temporal=TemporalSettings(port=ports[2], ui_port=ports[3]),
        prefect=PrefectSettings(port=ports[4]),
        storage=StorageSettings(port=ports[5]),
        exchange=ExchangeSettings(
            port=ports[6], symbols=SYMBOLS, sim_agent_orders_per_s=agent_rate
        ),
        api=ApiSettings(port=ports[7]),
        worker=WorkerSettings(metrics_port=ports[8]),
        engine=EngineSettings(
            blue_control_port=ports[9],
            green_control_port=ports[10],
            control_token=SecretStr("bench-rollout-control-token"),
        ),
    )


def write_release(folder: Path, version: str) -> Path:
    """Write the bench release under a new version; return its path."""
    path = folder / f"release-{version}.json"
    path.write_text(json.dumps({"version": version, **RELEASE}))
    return path


async def _wait_leading(settings: Settings) -> None:
    import aiohttp

    url = f"http://127.0.0.1:{settings.engine.blue_control_port}/status"
    deadline = time.monotonic() + LEAD_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
                http.get(url) as answer,
            ):
                if (await answer.json()).get("role") == "leader":
                    return
        except (aiohttp.ClientError, TimeoutError, ValueError):
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError(f"blue did not lead within {LEAD_TIMEOUT_S:.0f} s")


async def measure(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Start blue, run the rollouts, return the report."""
    releases = settings.home / "releases"
    releases.mkdir()
    platform = LocalPlatform(settings.home, env={**os.environ, **settings.to_env()})
    platform.start("blue", write_release(releases, "bench-0"))
    await _wait_leading(settings)
    _say("blue leads; warming up")
    await asyncio.sleep(args.warmup_s)
    client = await Client.connect(
        settings.temporal.effective_address(), namespace=settings.temporal.namespace
    )
    gaps, durations, rolled_back = [], [], []
    stopped_early: str | None = None
    started = time.monotonic()
    for n in range(1, args.rollouts + 1):
        request = RolloutInput(
            release_path=str(write_release(releases, f"bench-{n}")),
            requested_by="bench",
            warm_s=args.warm_s,
            shadow_samples=2,
            bake_s=args.bake_s,
            bake_interval_s=1,
        )
        one = time.monotonic()
        handle = await start_rollout(client, request)
        result: RolloutResult = await handle.result()
        durations.append(time.monotonic() - one)
        gap = result.handoff.gap_ms if result.handoff is not None else None
        new = result.plan.new.color if result.plan is not None else "?"
        if result.rolled_back:
            rolled_back.append(f"bench-{n}: {result.failed_step}: {result.reason}")
        elif gap is not None:
            gaps.append(gap)
        _say(f"rollout {n} to {new}: gap {gap} ms, {durations[-1]:.1f} s"
             + (f", ROLLED BACK ({result.reason})" if result.rolled_back else ""))  # fmt: skip
        halted = [a for a in (result.rollback.actions if result.rollback else ()) if "HALTED" in a]
        if halted:  # the desk needs an operator now: every further rollout would be refused
            stopped_early = f"after rollout {n}: {halted[0]}"
            _say(f"stopping: {stopped_early}")
            break
    total = time.monotonic() - started
    colors: tuple[Color, ...] = ("blue", "green")
    for color in colors:
        await asyncio.to_thread(platform.stop, color)
    return {
        "rollouts": len(durations),
        "stopped_early": stopped_early,
        "completed": len(gaps),
        "rolled_back": rolled_back,
        "handoff_gap_p50_ms": round(float(np.percentile(gaps, 50)), 1) if gaps else None,
        "handoff_gap_max_ms": round(max(gaps), 1) if gaps else None,
        "handoff_gaps_ms": [round(g, 1) for g in gaps],
        "rollout_total_s": round(total, 1),
        "rollout_p50_s": round(float(np.percentile(durations, 50)), 1),
        "bake_s": args.bake_s,
        "warm_s": args.warm_s,
    }


def main() -> None:
    """Parse arguments, run the bench inside a stack, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rollouts", type=int, default=10, help="rollouts, colors alternating")
    parser.add_argument("--bake-s", type=int, default=3, help="bake of each rollout")
    parser.add_argument("--warm-s", type=int, default=2, help="shadow watch of each rollout")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="blue trades first")
    parser.add_argument("--agent-rate", type=float, default=150.0, help="simulator agents")
    parser.add_argument("--keep", action="store_true", help="keep the temp home (logs)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    if args.rollouts < 1:
        parser.error(f"--rollouts must be >= 1 (got {args.rollouts})")
    home = Path(tempfile.mkdtemp(prefix="bot4-bench-rollout-", dir="/tmp"))
    home.chmod(0o755)  # the unprivileged PostgreSQL user must reach it
    settings = bench_settings(home, args.agent_rate)
    stack = Stack(settings)
    failed = True
    try:
        _say(f"stack up in {home}")
        stack.up()
        report = asyncio.run(measure(settings, args))
        failed = args.keep
    finally:
        LocalPlatform(home).stop("blue")
        LocalPlatform(home).stop("green")
        stack.down()
        if failed:
            _say(f"kept {home} (logs in log/ and engines/); its servers are stopped")
        else:
            shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:22} {value}")


if __name__ == "__main__":
    main()
