"""RTO and RPO of the dr_failover workflow, planned and unplanned, with an engine trading.

    .venv/bin/python -m bench.failover [--runs 5] [--seed 7] [--json]

Starts what a failover needs in a throw-away BOT4_HOME on free ports: PostgreSQL (primary
+ synchronous standby), Temporal and the bot4 worker (``bot4 stack up``'s own servers),
the exchange simulator in this process (agents trading), engine blue leading through
LocalPlatform and quoting. Then, ``--runs`` times each, through the worker on the
``bot4`` task queue (the production path):

- a **switchover** (the primary stopped cleanly, the standby promoted, the old primary
  rewound and rejoined as the synchronous standby: the next run switches back);
- an **unplanned failover**: ``kill -9`` of the primary's postmaster while the engine
  trades, then the workflow (detection by 3 probes 100 ms apart, promotion, rejoin).

RTO is the engine's own figure: first failed journal write to the first successful one
after it (``/status`` → ``journal.outages``). RPO is counted by the workflow: events and
fills the engine saw acknowledged, looked up on the new primary. Progress goes to stderr;
stdout gets one JSON document. Everything is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Final

from temporalio.client import Client

from bench.common import InProcessSim, StderrProgress, bench_settings, engine_status
from bot4.settings import Settings
from infra.platform import LocalPlatform
from infra.stack.launcher import Stack

SYMBOLS: Final = ("BTC/USDT", "ETH/USDT")
TOKEN: Final = "bench-failover-control-token"
NEEDED: Final = ("temporal", "worker")  # besides PostgreSQL; the simulator runs here
RELEASE: Final[dict[str, Any]] = {
    "version": "bench-failover",
    "symbols": list(SYMBOLS),
    "model": {"builtin": "linear"},
    "strategy": {"quote_lots": 20, "min_half_spread_ticks": 0.5, "base_half_spread_ticks": 0.5,
                 "taker_enabled": False, "requote_ticks": 2, "adverse_pull_ticks": 1500},
    "risk": {"max_order_notional": 100_000, "max_symbol_notional": 1_000_000,
             "max_position_lots": 100_000, "max_portfolio_exposure": 10_000_000,
             "max_depth_fraction": 5.0, "price_band_bps": 500},
    "post_trade": {"stop_loss_ticks": 3000, "latency_arb_move_ticks": 100},
}  # fmt: skip


def _say(message: str) -> None:
    print(f"[failover {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _wait_active(url: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        status = await engine_status(url) or {}
        if (status.get("role") == "leader" and status.get("trading_state") == "ACTIVE"
                and not status.get("conditions")):  # fmt: skip
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"blue not leading ACTIVE within {within_s} s: {status}")


async def _one(client: Client, settings: Settings, mode: str) -> dict[str, Any]:
    from infra.postgres.cluster import PgCluster
    from infra.stack.paths import StackPaths
    from infra.stack.postgres import PostgresPair
    from workflows.dr_failover import DrFailoverInput, DrFailoverWorkflow

    if mode == "failover":
        cluster = PgCluster(PostgresPair(paths=StackPaths(settings.home), settings=settings.db))
        primary = (await asyncio.to_thread(cluster.replication)).primary
        if primary is None:
            raise RuntimeError("no primary to kill: the pair is not healthy")
        await asyncio.to_thread(cluster.kill_primary, primary)
    request = DrFailoverInput(mode=mode, detect_interval_ms=100, requested_by="bench",
                              reason="bench")  # fmt: skip
    started = time.monotonic()
    result = await client.execute_workflow(
        DrFailoverWorkflow.run, request, id=f"dr-bench-{uuid.uuid4().hex[:8]}",
        task_queue=settings.temporal.task_queue,
    )  # fmt: skip
    assert result.verify is not None
    return {
        "mode": mode,
        "rto_s": result.rto_s,
        "rto_source": result.rto_source,
        "db_unwritable_s": result.db_unwritable_s,
        "rpo_events": result.rpo_events,
        "events_checked": result.verify.events_checked,
        "fills_checked": result.verify.fills_checked,
        "rejoin": None if result.rejoin is None else result.rejoin.method,
        "degraded_ms": result.degraded_ms,
        "workflow_s": round(time.monotonic() - started, 2),
        "steps_ms": {s.step: s.ms for s in result.steps},
    }


async def measure(settings: Settings, runs: int) -> dict[str, Any]:
    """Start blue, then run the switchovers and failovers; return the report."""
    release = settings.home / "release.json"
    release.write_text(json.dumps(RELEASE))
    platform = LocalPlatform(settings.home, env={**os.environ, **settings.to_env()})
    platform.start("blue", release)
    url = f"http://127.0.0.1:{settings.engine.blue_control_port}"
    done: list[dict[str, Any]] = []
    try:
        await _wait_active(url, 90)
        client = await Client.connect(settings.temporal.effective_address())
        for mode in ("switchover", "failover"):
            for n in range(runs):
                await asyncio.sleep(2)  # trade a little between runs: facts to check
                run = await _one(client, settings, mode)
                _say(f"{mode} {n + 1}/{runs}: RTO {run['rto_s']} s, RPO {run['rpo_events']},"
                     f" rejoin {run['rejoin']}, {run['workflow_s']} s")  # fmt: skip
                done.append(run)
                await _wait_active(url, 60)
    finally:
        await asyncio.to_thread(platform.stop, "blue")
    return _report(done, runs)


def _report(done: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    def rto(mode: str) -> list[float]:
        return [float(r["rto_s"]) for r in done if r["mode"] == mode and r["rto_s"] is not None]

    switch, fail = rto("switchover"), rto("failover")
    return {
        "switchover_rto_p50_s": round(statistics.median(switch), 3) if switch else None,
        "switchover_rto_max_s": max(switch, default=None),
        "failover_rto_p50_s": round(statistics.median(fail), 3) if fail else None,
        "failover_rto_max_s": max(fail, default=None),
        "rpo_events_max": max((int(r["rpo_events"]) for r in done), default=None),
        "runs_per_mode": runs,
        "rto_unmeasured": sum(1 for r in done if r["rto_s"] is None),
        "runs": done,
    }


def main() -> None:
    """Parse arguments, run the bench, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="runs of each mode (>= 1)")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument("--agent-rate", type=float, default=150.0, help="simulator agents")
    parser.add_argument("--keep", action="store_true", help="keep the temp home (logs)")
    parser.add_argument("--json", action="store_true", help="(the output is always JSON)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be >= 1 (got {args.runs})")
    import structlog  # the in-process simulator logs: to stderr, stdout is the report's

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    home = Path(tempfile.mkdtemp(prefix="bot4-bench-failover-", dir="/tmp"))
    home.chmod(0o755)  # the unprivileged PostgreSQL user must reach it
    settings = bench_settings(home, args.seed, symbols=SYMBOLS, token=TOKEN)
    stack = Stack(settings)
    stack.servers = [s for s in stack.servers if s.name in NEEDED]
    failed = True
    try:
        with InProcessSim(settings.exchange.port, seed=args.seed, agents=args.agent_rate):
            _say(f"stack up in {home}")
            stack.up(StderrProgress(_say))
            report = asyncio.run(measure(settings, args.runs))
            failed = args.keep
    finally:
        LocalPlatform(home).stop("blue")
        stack.down()
        if failed:
            _say(f"kept {home} (logs in log/ and engines/); its servers are stopped")
        else:
            shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(report, indent=2, default=str))
    sys.stdout.flush()
    os._exit(0)  # temporalio client at exit (sdk-python #300)


if __name__ == "__main__":
    main()
