"""``bot4 demo``: the stack up, a round trip through every server, an engine trading, down.

If the stack was already running when the demo started, it is left running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bot4 import console
from bot4.commands import print_status
from bot4.demo_rollout import RolloutOutcome, run_rollouts
from bot4.demo_trading import (
    DEMO_RELEASE,
    TradingResult,
    demo_platform,
    run_trading,
    stop_engines,
)
from bot4.settings import Settings
from infra.stack.errors import StackError
from infra.stack.launcher import Stack
from infra.stack.roundtrip import (
    RoundTrip,
    api_round_trip,
    exchange_round_trip,
    object_store_round_trip,
    postgres_round_trip,
    prefect_round_trip,
    temporal_round_trip,
)


async def run_round_trips(settings: Settings, progress: console.ConsoleProgress) -> list[RoundTrip]:
    """Run every component's round trip, one after the other, reporting progress."""
    results = []
    checks: list[tuple[str, Callable[[], Awaitable[RoundTrip]]]] = [
        ("postgres", lambda: postgres_round_trip(settings.db)),
        ("s3", lambda: asyncio.to_thread(object_store_round_trip, settings.storage)),
        ("exchange", lambda: exchange_round_trip(settings.exchange)),
        ("temporal", lambda: temporal_round_trip(settings.temporal)),
        ("prefect", lambda: prefect_round_trip(settings.prefect)),
        ("api", lambda: api_round_trip(settings)),
    ]
    for name, check in checks:
        progress.begin(name, "round trip")
        started = time.perf_counter()
        try:
            result = await check()
        except Exception as e:
            result = RoundTrip(
                component=name,
                ok=False,
                detail=f"{e.__class__.__name__}: {e}",
                seconds=time.perf_counter() - started,
            )
        progress.done(name, "ok" if result.ok else "FAILED")
        results.append(result)
    return results


async def run_desk(
    settings: Settings, *, trade_seconds: float, rollouts: bool, quiet: bool
) -> tuple[TradingResult, list[RolloutOutcome]]:
    """Blue trades, then (``rollouts``) a good and a bad rollout; every engine is stopped."""
    platform = demo_platform(settings)
    outcomes: list[RolloutOutcome] = []
    try:
        console.say(f"3/5 engine blue trades against the simulator for {trade_seconds:g} s")
        trading = await run_trading(settings, platform, seconds=trade_seconds, quiet=quiet)
        if rollouts and trading.ok:
            console.say("4/5 blue-green rollout of a second release, then of a bad third one")
            run_id = time.strftime("demo-%Y%m%dT%H%M%S", time.gmtime())
            outcomes = await run_rollouts(settings, base=DEMO_RELEASE, run_id=run_id, quiet=quiet)
    finally:
        stopped = await asyncio.to_thread(stop_engines, platform)
        if stopped:
            console.say(f"  stopped engine {', '.join(stopped)} (orders cancelled, lease released)")
    return trading, outcomes


def run_demo(
    settings: Settings,
    *,
    as_json: bool,
    keep_running: bool,
    trade_seconds: float = 20.0,
    rollouts: bool = True,
) -> int:
    """Run the demo and return the exit code."""
    stack = Stack(settings)
    progress = console.ConsoleProgress()
    was_running = stack.status().running
    console.say(f"bot4 demo (BOT4_HOME={settings.home})")
    console.say("1/5 bringing the stack up" + (" (reusing what runs)" if was_running else ""))
    results: list[RoundTrip] = []
    trading: TradingResult | None = None
    outcomes: list[RolloutOutcome] = []
    try:
        stack.up(progress)
        status = stack.status()
        if not as_json:
            print_status(status)
        console.say("2/5 round trip through every component")
        results = asyncio.run(run_round_trips(settings, progress))
        if trade_seconds > 0 and all(r.ok for r in results):
            trading, outcomes = asyncio.run(
                run_desk(settings, trade_seconds=trade_seconds, rollouts=rollouts, quiet=as_json)
            )
    except StackError as e:
        console.error(str(e))
        return 1
    finally:
        if keep_running or was_running:
            console.say("5/5 leaving the stack running (`bot4 stack down` stops it)")
        else:
            console.say("5/5 bringing the stack down")
            stack.down(progress)
    ok = bool(results) and all(r.ok for r in results)
    ok = ok and (trade_seconds <= 0 or (trading is not None and trading.ok))
    ok = ok and (
        trade_seconds <= 0 or not rollouts or (len(outcomes) == 2 and all(o.ok for o in outcomes))
    )
    if as_json:
        console.print_json(
            {
                "ok": ok,
                "stack": status.as_json(),
                "round_trips": [
                    {"component": r.component, "ok": r.ok, "detail": r.detail, "seconds": r.seconds}
                    for r in results
                ],
                "trading": None if trading is None else trading.as_json(),
                "rollouts": [o.as_json() for o in outcomes],
            }
        )
    else:
        console.print_table(
            ["component", "round trip", "seconds", "detail"],
            [
                [r.component, "ok" if r.ok else "FAILED", f"{r.seconds:.2f}", r.detail]
                for r in results
            ]
            + (
                []
                if trading is None
                else [
                    [
                        "engine",
                        "ok" if trading.ok else "FAILED",
                        f"{trading.seconds:.2f}",
                        trading.detail,
                    ]
                ]
            )
            + [
                [
                    f"rollout {o.version}",
                    "ok" if o.ok else "FAILED",
                    "" if o.result is None else f"{o.result.duration_s:.2f}",
                    o.detail,
                ]
                for o in outcomes
            ],
        )
        done = "every component answered"
        if trading is not None:
            done += ", the engine traded"
        if outcomes:
            done += ", a rollout completed and a bad release was rolled back"
        console.say(f"demo: {done}" if ok else "demo: FAILED (see above)")
    return 0 if ok else 1
