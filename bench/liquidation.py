"""Implementation shortfall and slice throughput of the liquidation workflow.

    .venv/bin/python -m bench.liquidation [--lots 800] [--interval-ms 0] [--seed 7] [--json]

Starts what a liquidation needs in a throw-away BOT4_HOME on free ports: PostgreSQL
(primary + synchronous standby), Temporal and the bot4 worker (``bot4 stack up``'s own
servers), the exchange simulator in this process (fixed ``--seed``, agents trading, a
second account), engine blue leading through LocalPlatform. The second account sells into
blue's bid until blue is long ``--lots`` of BTC/USDT; the symbol is taken out of the
strategy (engine action ``reduce``), then ``liquidation`` runs through the worker on the
``bot4`` task queue (the production path), TWAP, ``--interval-ms`` between slices.

- ``shortfall_bps``: implementation shortfall of the children's journaled fills against
  the arrival mid (the mid when the unwind began), bps of the arrival notional; positive
  is a cost.
- ``slippage_vs_slice_mid_bps``: the children's cost against the mid at each slice: the
  execution cost alone, without the market's drift during the unwind that the shortfall
  also carries (the simulator's walk moves ~10 bps a second).
- ``slices_per_s``: slices of the unwind activity per second of the unwind (each slice: a
  depth snapshot, a child through the leader's ``child_order`` — journaled write-ahead,
  sent, its fills journaled before the answer). With ``--interval-ms 0`` this is the
  throughput of the slice loop; children are then the venue's minimum order.

Progress goes to stderr; stdout gets one JSON document. Everything is stopped at the end.
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
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from temporalio.client import Client

from bench.common import InProcessSim, StderrProgress, bench_settings, engine_status
from bot4.settings import (
    Settings,
)
from infra.platform import LocalPlatform
from infra.stack.launcher import Stack

SYMBOLS: Final = ("BTC/USDT", "ETH/USDT")
SYMBOL: Final = "BTC/USDT"
LOT: Final = Decimal("0.00001")
TOKEN: Final = "bench-liquidation-control-token"
OTHER: Final = ("bench-other-key", "bench-other-secret")
NEEDED: Final = ("temporal", "worker")  # besides PostgreSQL; the simulator runs here
RELEASE: Final[dict[str, Any]] = {
    "version": "bench-liq",
    "symbols": list(SYMBOLS),
    "model": {"builtin": "linear"},
    "strategy": {"quote_lots": 200, "min_half_spread_ticks": 0.5, "base_half_spread_ticks": 0.5,
                 "taker_enabled": False, "requote_ticks": 2, "adverse_pull_ticks": 1500},
    "risk": {"max_order_notional": 100_000, "max_symbol_notional": 1_000_000,
             "max_position_lots": 1_000_000, "max_portfolio_exposure": 10_000_000,
             "max_depth_fraction": 5.0, "price_band_bps": 500},
    "post_trade": {"stop_loss_ticks": 10_000_000, "latency_arb_move_ticks": 100},
}  # fmt: skip


def _say(message: str) -> None:
    print(f"[liquidation {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _build_long(url: str, port: int, lots: int) -> int:
    """Sell into blue's bid from the second account until long ``lots``; freeze; return it."""
    import ccxt.async_support as ccxt  # the bench is a client of the venue, like bench.exchange

    from engine.live.control import post_admin

    other = ccxt.binance({"apiKey": OTHER[0], "secret": OTHER[1], "enableRateLimit": False,
                          "options": {"fetchCurrencies": False, "fetchMarkets": {"types": ["spot"]},
                                      "fetchMargins": False}})  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v3"
    other.urls["api"]["public"] = other.urls["api"]["private"] = base
    try:
        await other.load_markets()
        for _ in range(600):
            status = await engine_status(url)
            held = int((status or {}).get("positions", {}).get(SYMBOL, 0))
            if held >= lots:
                break
            await other.create_order(SYMBOL, "market", "sell", float(LOT * 200))
            await asyncio.sleep(0.25)
        else:
            raise RuntimeError(f"blue never got long {lots} lots")
    finally:
        await other.close()
    payload = {"symbols": SYMBOL, "by": "bench", "reason": "bench"}
    answer = await post_admin(url, "reduce", token=TOKEN, payload=payload)
    if answer.status != 200:
        raise RuntimeError(f"reduce: {answer.body}")
    result: Any = answer.body["result"]
    return int(result["positions"][SYMBOL]["lots"])


async def measure(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Start blue, build the position, liquidate it, return the report."""
    from workflows.liquidation import LiquidationInput, LiquidationWorkflow, workflow_id

    release = settings.home / "release.json"
    release.write_text(json.dumps(RELEASE))
    platform = LocalPlatform(settings.home, env={**os.environ, **settings.to_env()})
    platform.start("blue", release)
    url = f"http://127.0.0.1:{settings.engine.blue_control_port}"
    try:
        for _ in range(180):
            if ((await engine_status(url)) or {}).get("role") == "leader":
                break
            await asyncio.sleep(0.5)
        _say("blue leads; building the position")
        lots = await _build_long(url, settings.exchange.port, args.lots)
        _say(f"long {lots} lots of {SYMBOL}; liquidating")
        client = await Client.connect(settings.temporal.effective_address())
        request = LiquidationInput(symbols=(SYMBOL,), deadline_s=args.deadline_s,
                                   slice_interval_ms=args.interval_ms, band_bps=args.band_bps,
                                   requested_by="bench", reason="bench")  # fmt: skip
        started = time.monotonic()
        handle = await client.start_workflow(
            LiquidationWorkflow.run,
            request,
            id=workflow_id(request),
            task_queue=settings.temporal.task_queue,
        )
        result = await handle.result()
        wall = time.monotonic() - started
    finally:
        await asyncio.to_thread(platform.stop, "blue")
    unwind = result.unwind
    assert unwind is not None
    (leg,) = unwind.symbols
    seconds = unwind.duration_ms / 1000
    return {
        "shortfall_bps": result.shortfall_bps,
        "slices_per_s": round(unwind.slices / seconds, 2) if seconds else None,
        "slippage_vs_slice_mid_bps": leg.slippage_bps,
        "children": leg.children,
        "slices": unwind.slices,
        "start_lots": lots,
        "filled_qty": leg.filled,
        "remaining_qty": leg.remaining,
        "flat": result.flat,
        "stopped": unwind.stopped,
        "unwind_s": round(seconds, 2),
        "workflow_s": round(wall, 2),
        "arrival_mid": leg.arrival_mid,
        "seed": args.seed,
        "interval_ms": args.interval_ms,
        "band_bps": args.band_bps,
        "agent_rate": args.agent_rate,
    }


def main() -> None:
    """Parse arguments, run the bench, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lots", type=int, default=800, help="BTC/USDT lots to unwind")
    parser.add_argument("--interval-ms", type=int, default=0, help="time between slices")
    parser.add_argument("--deadline-s", type=int, default=120, help="the unwind's deadline")
    parser.add_argument("--band-bps", type=float, default=50.0, help="price band")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument("--agent-rate", type=float, default=60.0, help="simulator agents")
    parser.add_argument("--keep", action="store_true", help="keep the temp home (logs)")
    parser.add_argument("--json", action="store_true", help="(the output is always JSON)")
    args = parser.parse_args()
    if args.lots < 20:
        parser.error(f"--lots must be >= 20 (got {args.lots})")
    import structlog  # the in-process simulator logs: to stderr, stdout is the report's

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    home = Path(tempfile.mkdtemp(prefix="bot4-bench-liquidation-", dir="/tmp"))
    home.chmod(0o755)  # the unprivileged PostgreSQL user must reach it
    settings = bench_settings(home, args.seed, symbols=SYMBOLS, token=TOKEN)
    stack = Stack(settings)
    stack.servers = [s for s in stack.servers if s.name in NEEDED]
    failed = True
    try:
        with InProcessSim(
            settings.exchange.port, seed=args.seed, agents=args.agent_rate, other=OTHER
        ):
            _say(f"stack up in {home}")
            stack.up(StderrProgress(_say))
            report = asyncio.run(measure(settings, args))
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
