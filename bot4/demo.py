"""``bot4 demo``: the stack up, a round trip through every server, an engine trading, down.

If the stack was already running when the demo started, it is left running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot4 import console
from bot4.commands import print_status
from bot4.demo_drill import drill
from bot4.demo_liquidation import liquidate
from bot4.demo_models import prepare_models, roll_out_second
from bot4.demo_rollout import run_rollouts
from bot4.demo_trading import DEMO_RELEASE, demo_platform, run_trading, stop_engines
from bot4.settings import Settings
from flows.demo import run_chores
from infra.stack.errors import StackError
from infra.stack.launcher import Stack
from infra.stack.prometheus_server import PrometheusServer
from infra.stack.roundtrip import (
    RoundTrip,
    api_round_trip,
    exchange_round_trip,
    object_store_round_trip,
    postgres_round_trip,
    prefect_round_trip,
    prometheus_round_trip,
    temporal_round_trip,
)

# what the closing line says for each part of the desk that ran
DONE_PARTS = (
    ("rollouts", "; a release rolled out, a bad one rolled back, a model rolled out"),
    ("liquidation", ", positions liquidated"),
    ("drill", ", the database switched over (drill)"),
    ("chores", "; backup verified, reconciled, report written"),
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
    if PrometheusServer.binary() is not None:  # optional: `stack up` said it skipped it
        checks.append(("prometheus", lambda: prometheus_round_trip(settings)))
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


@dataclass(kw_only=True, slots=True)
class DeskSteps:
    """What the demo did after the round trips: one table row and one JSON part per step."""

    rows: list[list[str]] = field(default_factory=list)
    parts: dict[str, Any] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, *, ok: bool, seconds: float | None, detail: str,
            part: tuple[str, Any]) -> None:  # fmt: skip
        """Record one step's outcome (its figures: the scalar fields of its part)."""
        self.rows.append([name, "ok" if ok else "FAILED",
                          "" if seconds is None else f"{seconds:.2f}", detail])  # fmt: skip
        key, value = part
        figures = (
            {
                k: v
                for k, v in value.items()
                if isinstance(v, int | float | str | bool) and k not in ("ok", "seconds", "detail")
            }
            if isinstance(value, dict)
            else {}
        )
        self.steps.append({"name": name, "ok": ok, "seconds": seconds, "detail": detail,
                           **figures})  # fmt: skip
        self.parts.setdefault(key, [])
        self.parts[key].append(value)
        if not ok:
            self.failed.append(name)


async def run_desk(
    settings: Settings, *, trade_seconds: float, rollouts: bool, quiet: bool
) -> DeskSteps:
    """Blue trades; then (``rollouts``) the release and model rollouts; engines stop; chores.

    Every engine the demo started (or a rollout started for it) is stopped before the
    chores, so the reconciliation compares a journal at rest with the venue.
    """
    steps = DeskSteps()
    platform = demo_platform(settings)
    run_id = time.strftime("demo-%Y%m%dT%H%M%S", time.gmtime())
    try:
        console.say("3/7 training two model versions; the first ships in the demo's release")
        try:
            models = await prepare_models(settings, run_id=run_id)
        except Exception as e:  # the object store or the registry: say which, stop here
            steps.add("models", ok=False, seconds=None, detail=f"{type(e).__name__}: {e}",
                      part=("models", {"ok": False, "error": str(e)}))  # fmt: skip
            return steps
        release = {**DEMO_RELEASE, "model": {"path": str(models.first_path)}}
        console.say(f"4/7 engine blue trades against the simulator for {trade_seconds:g} s")
        trading = await run_trading(
            settings, platform, seconds=trade_seconds, quiet=quiet, release=release
        )
        steps.add("engine", ok=trading.ok, seconds=trading.seconds, detail=trading.detail,
                  part=("trading", trading.as_json()))  # fmt: skip
        if rollouts and trading.ok:
            console.say(
                "5/7 rollouts (a second release, a bad third one, a new model version),"
                " liquidation, a database switchover drill"
            )
            for outcome in await run_rollouts(settings, base=release, run_id=run_id, quiet=quiet):
                seconds = None if outcome.result is None else outcome.result.duration_s
                steps.add(f"rollout {outcome.version}", ok=outcome.ok, seconds=seconds,
                          detail=outcome.detail, part=("rollouts", outcome.as_json()))  # fmt: skip
            models = await roll_out_second(settings, models, quiet=quiet)
            steps.add(f"model {models.second}", ok=models.ok, seconds=models.seconds,
                      detail=models.detail, part=("models", models.as_json()))  # fmt: skip
            console.say("  liquidation of every position, in child orders of the leader")
            symbols = tuple(str(s) for s in DEMO_RELEASE["symbols"])
            flat = await liquidate(settings, symbols=symbols, quiet=quiet)
            steps.add("liquidation", ok=flat.ok, seconds=flat.seconds, detail=flat.detail,
                      part=("liquidation", flat.as_json()))  # fmt: skip
            console.say("  a disaster-recovery drill: PostgreSQL switchover while blue runs")
            drilled = await drill(settings, quiet=quiet)
            steps.add("dr drill", ok=drilled.ok, seconds=drilled.seconds, detail=drilled.detail,
                      part=("drill", drilled.as_json()))  # fmt: skip
    finally:
        stopped = await asyncio.to_thread(stop_engines, platform)
        if stopped:
            console.say(f"  stopped engine {', '.join(stopped)} (orders cancelled, lease released)")
    if rollouts and not steps.failed:
        console.say("6/7 chores: a backup and its restore test, a reconciliation, a report")
        chores = await run_chores(settings)
        steps.add("chores", ok=chores.ok, seconds=chores.seconds, detail=chores.detail,
                  part=("chores", chores.as_json()))  # fmt: skip
    return steps


def print_urls(settings: Settings) -> None:
    """Say where the stack's UIs and endpoints are (the stack was left running)."""
    t, p = settings.temporal, settings.prefect
    console.say(f"  Temporal UI  http://{t.host}:{t.ui_port}")
    console.say(f"  Prefect UI   {p.effective_api_url().removesuffix('/api')}")
    console.say(f"  control API  {settings.effective_api_url()} (console at /)")
    if PrometheusServer.binary() is not None:
        console.say(f"  Prometheus   http://127.0.0.1:{settings.prometheus.port}")


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
    console.say("1/7 bringing the stack up" + (" (reusing what runs)" if was_running else ""))
    results: list[RoundTrip] = []
    desk = DeskSteps()
    steps: list[dict[str, Any]] = []
    try:
        started = time.perf_counter()
        stack.up(progress)
        status = stack.status()
        steps.append({"name": "stack up", "ok": status.healthy,
                      "seconds": round(time.perf_counter() - started, 3),
                      "components": len(status.components)})  # fmt: skip
        if not as_json:
            print_status(status)
        console.say("2/7 round trip through every component")
        results = asyncio.run(run_round_trips(settings, progress))
        if trade_seconds > 0 and all(r.ok for r in results):
            desk = asyncio.run(
                run_desk(settings, trade_seconds=trade_seconds, rollouts=rollouts, quiet=as_json)
            )
    except StackError as e:
        console.error(str(e))
        return 1
    finally:
        if keep_running or was_running:
            console.say("7/7 leaving the stack running (`bot4 stack down` stops it)")
            print_urls(settings)
        else:
            console.say("7/7 bringing the stack down")
            started = time.perf_counter()
            stack.down(progress)
            steps_down = {"name": "stack down", "ok": not stack.status().running,
                          "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    steps += [{"name": f"round trip {r.component}", "ok": r.ok, "seconds": round(r.seconds, 3),
               "detail": r.detail} for r in results]  # fmt: skip
    steps += desk.steps
    if not (keep_running or was_running):
        steps.append(steps_down)
    ok = bool(results) and all(r.ok for r in results) and not desk.failed
    ok = ok and (trade_seconds <= 0 or bool(desk.rows))
    if as_json:
        console.print_json(
            {
                "ok": ok and all(step["ok"] for step in steps),
                "steps": steps,
                "stack": status.as_json(),
                "round_trips": [
                    {"component": r.component, "ok": r.ok, "detail": r.detail, "seconds": r.seconds}
                    for r in results
                ],
                **desk.parts,
            }
        )
    else:
        console.print_table(
            ["component", "outcome", "seconds", "detail"],
            [
                [r.component, "ok" if r.ok else "FAILED", f"{r.seconds:.2f}", r.detail]
                for r in results
            ]
            + desk.rows,
        )
        done = (
            "every component answered"
            + ", the engine traded" * bool(desk.rows)
            + "".join(said for part, said in DONE_PARTS if part in desk.parts)
        )
        console.say(f"demo: {done}" if ok else f"demo: FAILED ({', '.join(desk.failed)})")
    return 0 if ok else 1
