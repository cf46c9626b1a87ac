"""Soak: the desk trading for a long time under periodic faults and operations.

    .venv/bin/python -m tests.chaos.soak [--minutes 60] [--sample-s 10] [--fault-every-s 60]
                                         [--out var/soak] [--engine-kills]

Starts the chaos desk (:mod:`tests.chaos.rig`: its own PostgreSQL pair, the simulator as
a process with agents trading, a ``bot4 worker``, a ``bot4 api``) and a Temporal dev
server, all on free ports in a throw-away folder; engine blue leads and trades for
``--minutes``. Every ``--fault-every-s`` the next fault of a fixed cycle hits (a venue 5xx
storm, a websocket drop, a 429 storm, a stalled feed, a venue clock jump, ``kill -9`` of
the PostgreSQL primary, of the worker, of the simulator) or an operation runs through
the control API (a DR switchover drill: the engine follows the primary). The engine
itself is never killed by default, since a leak shows in a long-lived process
(``--engine-kills`` adds ``kill -9`` of the engine to the cycle).

Every ``--sample-s`` it samples the engine and the worker: resident memory (``VmRSS``),
open file descriptors (``/proc/<pid>/fd``); from the engine's ``/status``: the journal's
backlog and lag, market-data lag, open and unknown orders; from its ``/metrics``: the
tick-to-order histogram, as the p99 of each sampling window and overall.

Writes ``soak.png`` (every series over time, faults marked) and ``soak.json`` into
``--out`` and prints the JSON: start and end values, the growth checks (over the last
half of the run: engine RSS growth under ``--max-rss-growth-pct``, fd growth under
``--max-fd-growth``, the journal backlog back to a few events), and the invariants of
the chaos suite checked at the end (the engine stopped cleanly first). Exit code 0 when
every check passed, 1 otherwise. Not part of CI (``make soak``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg

from bot4.settings import TemporalSettings
from infra.stack.component import SilentProgress
from infra.stack.paths import StackPaths
from infra.stack.temporal_server import TemporalServer
from tests.chaos.faults import FaultLog, inject
from tests.chaos.invariants import audit_chain, one_leader_at_a_time, venue_and_journal
from tests.chaos.operations import ApiOperator
from tests.chaos.rig import Rig, chaos_rig
from tests.chaos.samples import Sample, Sampler, growth_checks, plot
from tests.chaos.scenarios import Fault, FaultKind, Operation, Scenario
from tests.engine.live.harness import open_venue
from tests.stubs.deploy import RELEASE, Desk
from tests.stubs.ports import free_ports
from tests.stubs.stack import make_home, remove_home, stack_settings

CYCLE: Final = (
    FaultKind.VENUE_5XX,
    FaultKind.WEBSOCKET_DROP,
    Operation.DR,
    FaultKind.VENUE_429,
    FaultKind.FEED_STALL,
    FaultKind.POSTGRES_KILL,
    FaultKind.CLOCK_JUMP,
    FaultKind.WORKER_KILL,
    FaultKind.SIMULATOR_KILL,
)
STRENGTH: Final = {
    FaultKind.VENUE_5XX: 0.8,
    FaultKind.VENUE_429: 2.0,
    FaultKind.WEBSOCKET_DROP: 2.0,
    FaultKind.CLOCK_JUMP: -3000.0,
}


def _say(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


@dataclass(kw_only=True)
class SoakRun:
    """What the soak did: samples, faults and operations with their times."""

    samples: list[Sample] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)


async def _operation(rig: Rig, run: SoakRun, at: float, index: int) -> None:
    """A DR switchover drill through the control API; its outcome goes to the run."""
    operator = ApiOperator(rig)
    try:
        scenario = Scenario(seed=0, index=index, operation=Operation.DR, faults=())
        workflow_id = await operator.start(scenario, rig.home / "unused.json")
        done = await operator.follow(workflow_id)
        result = done.result
        run.operations.append({
            "at_s": round(at, 1), "operation": "dr_switchover_drill", "status": done.status,
            "passed": result.get("passed"), "rto_s": result.get("rto_s"),
            "rpo_events": result.get("rpo_events"), "seconds": round(done.seconds, 1),
        })  # fmt: skip
    finally:
        await operator.close()


async def _faults(rig: Rig, run: SoakRun, *, every_s: float, until: float, kinds: tuple[Any, ...],
                  started: float, stop: asyncio.Event) -> None:  # fmt: skip
    """Hit the desk with the cycle's next fault (or operation) every ``every_s``.

    ``stop`` ends it between faults: a fault under way is always healed first.
    """
    log = FaultLog(started=started)
    n = 0
    while time.monotonic() + every_s < until:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        if stop.is_set():
            break
        kind = kinds[n % len(kinds)]
        at = time.monotonic() - started
        run.events.append((at, str(kind)))
        _say(f"{at:6.0f}s {kind}")
        if isinstance(kind, Operation):
            await _operation(rig, run, at, n)
        else:
            await inject(rig, Fault(kind=kind, at_s=0.0, hold_s=5.0,
                                    strength=STRENGTH.get(kind, 0.0)), log)  # fmt: skip
        n += 1
    if log.harness_errors:
        run.events.append((time.monotonic() - started, f"harness errors: {log.harness_errors}"))


async def soak(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Run the soak; return the report (also written to ``out``)."""
    temporal_home = make_home()
    port, ui_port = free_ports(2)
    temporal = TemporalServer(paths=StackPaths(temporal_home),
                              settings=TemporalSettings(port=port, ui_port=ui_port))  # fmt: skip
    StackPaths(temporal_home).create()
    stack = stack_settings(temporal_home).model_copy(
        update={"temporal": TemporalSettings(port=port, ui_port=ui_port)}
    )
    try:
        await asyncio.to_thread(temporal.ensure_running, SilentProgress())
        async with chaos_rig(stack) as rig:
            return await _trade(rig, args, out)
    finally:
        await asyncio.to_thread(temporal.stop)
        remove_home(temporal_home)


async def _trade(rig: Rig, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    release = rig.home / "release.json"
    release.write_text(json.dumps(RELEASE))
    await asyncio.to_thread(rig.platform.start, "blue", release)
    pool = await asyncpg.create_pool(rig.dsn, min_size=0, max_size=2)
    desk = Desk(settings=rig.settings, platform=rig.platform, pool=pool)
    run = SoakRun()
    try:
        await desk.wait_trading("blue", within=120)
        _say(f"blue trades; soaking {args.minutes} min in {rig.home}")
        started = time.monotonic()
        until = started + args.minutes * 60
        kinds: tuple[Any, ...] = CYCLE + ((FaultKind.ENGINE_KILL,) if args.engine_kills else ())
        sampler = Sampler(rig, started=started)
        stop = _stop_on_signals()  # Ctrl-C or SIGTERM: stop early, still report and clean up
        faults = asyncio.create_task(_faults(rig, run, every_s=args.fault_every_s, until=until,
                                             kinds=kinds, started=started, stop=stop))  # fmt: skip
        while time.monotonic() < until and not stop.is_set():
            run.samples.append(await sampler.sample())
            with contextlib.suppress(TimeoutError):
                pause = max(0.0, args.sample_s - (time.monotonic() % args.sample_s))
                await asyncio.wait_for(stop.wait(), pause)
        if stop.is_set():
            _say("stopped early by a signal: healing the fault under way, then reporting")
        await faults
        run.samples.append(await sampler.sample())
    finally:
        await pool.close()
        await rig.stop_engines()  # cleanly: cancels, journals the last fills, releases
    violations = await _invariants(rig)
    checks = growth_checks(run.samples, max_rss_growth_pct=args.max_rss_growth_pct,
                           max_fd_growth=args.max_fd_growth)  # fmt: skip
    plot(run.samples, run.events, out / "soak.png")
    report = {
        "minutes": args.minutes,
        "samples": len(run.samples),
        "start": run.samples[0].as_json() if run.samples else None,
        "end": run.samples[-1].as_json() if run.samples else None,
        "checks": checks,
        "invariants_violated": violations,
        "ok": all(c["ok"] for c in checks.values()) and not violations,
        "faults": [{"at_s": round(at, 1), "what": what} for at, what in run.events],
        "operations": run.operations,
        "tick_to_order_p99_us": {
            "first_half": _p99_half(run.samples, first=True),
            "last_half": _p99_half(run.samples, first=False),
        },
        "plot": str(out / "soak.png"),
    }
    (out / "soak.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "samples.json").write_text(json.dumps([s.as_json() for s in run.samples]))
    return report


def _stop_on_signals() -> asyncio.Event:
    """Return an event set by SIGINT or SIGTERM (the soak then ends as if its time was up)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def _p99_half(samples: list[Sample], *, first: bool) -> float | None:
    half = len(samples) // 2
    part = samples[:half] if first else samples[half:]
    values = [s.tick_to_order_p99_us for s in part if s.tick_to_order_p99_us is not None]
    return round(statistics.median(values), 1) if values else None


async def _invariants(rig: Rig) -> list[str]:
    venue = await open_venue(rig.sim.port)
    pool = await asyncpg.create_pool(rig.dsn, min_size=0, max_size=2)
    try:
        return [
            *await venue_and_journal(venue, pool),
            *await one_leader_at_a_time(venue, pool),
            *await audit_chain(pool, calls=0),
        ]
    finally:
        await pool.close()
        await venue.close()


def main() -> None:
    """Parse arguments, soak, print the JSON report; exit 1 when a check failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="how long to trade")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--fault-every-s", type=float, default=60.0, help="seconds between faults")
    parser.add_argument("--out", type=Path, default=Path("var/soak"), help="where PNG and JSON go")
    parser.add_argument("--engine-kills", action="store_true", help="kill -9 the engine too")
    parser.add_argument("--max-rss-growth-pct", type=float, default=10.0,
                        help="engine RSS growth allowed over the last half (percent)")  # fmt: skip
    parser.add_argument("--max-fd-growth", type=int, default=8,
                        help="file descriptors the engine may gain over the last half")  # fmt: skip
    args = parser.parse_args()
    if args.minutes <= 0 or args.sample_s <= 0 or args.fault_every_s <= 0:
        parser.error("--minutes, --sample-s and --fault-every-s must be > 0")
    args.out.mkdir(parents=True, exist_ok=True)
    import structlog  # the test helpers log: to stderr, stdout is the report's

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    report = asyncio.run(soak(args, args.out))
    print(json.dumps(report, indent=2, default=str))
    sys.stdout.flush()
    os._exit(0 if report["ok"] else 1)  # temporalio client at exit (sdk-python #300)


if __name__ == "__main__":
    main()
