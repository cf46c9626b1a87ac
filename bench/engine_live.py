"""Latency, journal throughput and memory of the live engine against real servers.

    .venv/bin/python -m bench.engine_live [--minutes 10] [--json]

Starts, in a throw-away BOT4_HOME on free ports, what ``bot4 engine run`` talks to in
production: PostgreSQL primary + synchronous standby (``remote_apply``), migrated, and the
exchange simulator as its own process with background agents trading (so books move and
our quotes get filled). Everything is stopped at the end, also on Ctrl-C or an error.
The servers stand in for other machines, so they run ``SCHED_BATCH`` (their wake-ups do
not preempt the engine; ``--servers-preempt`` keeps them on the normal policy, and the
report's ``servers_sched_batch`` says which applied), and while the engine trades they
run on the last CPU and the engine on the others, as a production engine has its cores
to itself (``--share-cores`` lets them share; the report's ``engine_cpus`` says which
applied). The journal phases run on the whole machine.

**Trading phase.** One :class:`LiveEngine` runs in this process (no safety thread), leads,
quotes the release below and is measured for ``--minutes`` after a short warm-up:

- ``tick_to_order_p50_us`` / ``_p99_us``: from the moment ccxt.pro handed a feed the
  market data behind the decision (its watch call returned, before the engine converted
  and checked the data) to the moment the venue adapter began the order's request (after
  the order manager, the order client's translation, the retry wrapper and the circuit
  breaker; before the venue-weight pacing, which waits only when the venue's request
  budget runs low and is counted in ``venue_pacing_delays``, and ccxt's call),
  **excluding ccxt's own time** as specified: the time the loop spent running ccxt calls
  in between (:mod:`engine.execution.ccxt_time`; mostly the requests of the orders the
  same decision handed off before this one) is taken out. It includes the conversion and
  checks of the data, the kernels, quote sync, the other orders of the same decision
  (their engine-side work), GC pauses and the OS's scheduling. The data is decided in
  the feed's callback and each order started eagerly, so no other task runs in between.
  The ORDER_NEW commit (primary + synchronous standby) runs beside the send while the
  lease is certainly ours and the journal healthy (the engine's
  ``send_before_durable``); otherwise it is waited for and counts here too.
- ``tick_to_order_wall_p50_us`` / ``_p99_us``: the same interval with nothing taken out.
  ``decision_to_order_p50_us`` / ``_p99_us``: its part after the decision (wall).
- ``ccxt_p99_us``: hand-off to the venue client → its answer, for every order send: the
  adapter (breaker, translation, and its request-weight pacing when the venue's 6000/min
  budget runs low: see ``venue_pacing_delays``), ccxt (signing, request, parsing),
  loopback HTTP, the simulator's matching, and the event loop's delay in resuming.
- ``rss_mb``: resident memory of this process (the engine's) at the end of the window.

``last_order_at_s`` says when in the window the engine last sent an order: the engine
only quotes a two-sided book, and the simulator's agents thin theirs out over time.

**Journal phases** (after trading, the engine stopped): a dedicated
:class:`GroupCommitter` on the same database under its own lease epoch, fed by
coroutines that each record batches of ``--batch`` realistic order events and wait for
each to be durable before the next (a closed loop: the load offered is the number of
producers). Twice:

- *capacity*, ``--producers`` (1,024) of them, enough to keep two batches of
  ``--max-batch`` under way: ``journal_events_per_s`` committed, and
  ``journal_commit_p50_ms`` / ``_p99_ms`` from a ``record()`` call to its return
  (queueing + one transaction + the synchronous standby) at that load;
- *light*, ``--light-producers`` (64), nearer an engine's own load:
  ``journal_light_events_per_s`` and ``journal_light_commit_p50_ms`` / ``_p99_ms``.

Progress goes to stderr; stdout gets one JSON document (``--json``) or a short table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import asyncpg
import numpy as np
from prometheus_client import REGISTRY

from bench.common import StderrProgress, free_ports
from bot4.logs import configure_logging
from bot4.settings import DatabaseSettings, ExchangeSettings, Settings
from engine.dtypes import TRADING_STATE_NAMES
from engine.journal import GroupCommitter, Journal, JournalEvent, JournalKind
from engine.leadership import Lease
from engine.live.engine import EngineConfig, LiveEngine, open_engine
from engine.live.quoting import QuoteSync
from engine.live.release import Release
from infra.postgres.migrate import apply_migrations_sync
from infra.postgres.node_ops import child_pids
from infra.stack.exchange_sim_server import ExchangeSimServer
from infra.stack.paths import StackPaths
from infra.stack.postgres import PostgresPair

RELEASE: Final = {
    "version": "bench-live-1",
    "symbols": ["BTC/USDT", "ETH/USDT"],
    "model": {"builtin": "linear"},
    # Tight quotes and a short requote, so the agents trade against us all the time; the
    # adverse-selection pull and the stop-loss are out of reach, else the simulator's
    # informed agents make the strategy stand aside for most of the run.
    "strategy": {"quote_lots": 20, "min_half_spread_ticks": 0.5, "base_half_spread_ticks": 0.5,
                 "taker_enabled": False, "requote_ticks": 2, "adverse_multiplier": 0.0,
                 "adverse_pull_ticks": 1e9},
    "post_trade": {"stop_loss_ticks": 1e9},
    "risk": {"max_order_notional": 100_000, "max_symbol_notional": 1_000_000,
             "max_position_lots": 100_000, "max_portfolio_exposure": 10_000_000,
             "max_depth_fraction": 5.0, "price_band_bps": 500},
}  # fmt: skip
ENGINE_INSTANCE: Final = "bench"
JOURNAL_INSTANCE: Final = "benchjournal"
WARMUP_S: Final = 5.0
PROGRESS_EVERY_S: Final = 10.0
LEAD_TIMEOUT_S: Final = 60.0


def _say(message: str) -> None:
    print(f"[engine_live {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _rss_mb() -> tuple[float, float]:
    """Return (current, peak) resident set size of this process in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _metric_total(name: str) -> float:
    """Return the sum of a Prometheus metric's samples in this process (0 when absent)."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name == name
    )


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _server_threads(postgres: PostgresPair, simulator: ExchangeSimServer) -> list[int]:
    """Return the thread ids of the simulator and of every PostgreSQL process running now."""
    processes = list(simulator.pids())
    for component in postgres.nodes:
        postmaster = int((component.node.data_dir / "postmaster.pid").read_text().split()[0])
        processes += [postmaster, *child_pids(postmaster)]
    return [tid for pid in processes for tid in _process_threads(pid)]


def yield_to_the_engine(postgres: PostgresPair, simulator: ExchangeSimServer) -> bool:
    """Run the co-located servers SCHED_BATCH: their wake-ups no longer preempt the engine.

    In production the venue and the database are other machines. Here they share the
    engine's two cores, and each request the engine sends wakes one of them, which the
    scheduler often runs at once on the engine's core, pausing the engine in the middle
    of a tick. Measured with the engine's thread CPU time: the engine was switched out
    involuntarily ~110 times a second, and 28 % of ticks spent over 50 µs off the CPU
    between the market data and the order (p90 1 ms); with the servers batch, ~12 times
    a second and 11-14 % (p90 0.3-0.5 ms). Batch threads get the same share of the CPU
    but do not preempt on wake-up. Backends the postmasters fork later inherit the
    policy. Return False (and say so) where the system refuses.
    """
    try:
        for tid in _server_threads(postgres, simulator):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setscheduler(tid, os.SCHED_BATCH, os.sched_param(0))
    except (OSError, ValueError) as e:
        _say(f"servers keep the normal scheduling policy ({e}); expect more preemption")
        return False
    return True


def _process_threads(pid: int | str) -> list[int]:
    with contextlib.suppress(FileNotFoundError):  # a process that ended meanwhile
        return [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    return []


def give_the_engine_its_cores(
    postgres: PostgresPair, simulator: ExchangeSimServer
) -> list[int] | None:
    """Pin the servers to the last CPU and this process (the engine) to the others.

    The servers stand in for other machines; with the engine alone on its core, a burst
    of its own orders (each waking the simulator and PostgreSQL) no longer queues the
    engine behind them at the next scheduler tick. Backends the postmasters fork later
    inherit the pinning. Return the engine's CPUs; None (and say so) with fewer than two
    CPUs or where the system refuses.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        _say("one CPU: the engine shares it with the servers")
        return None
    engine_cpus, server_cpus = set(cpus[:-1]), {cpus[-1]}
    try:
        for tid in _server_threads(postgres, simulator):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(tid, server_cpus)
        for tid in _process_threads("self"):
            os.sched_setaffinity(tid, engine_cpus)
    except OSError as e:
        _say(f"the servers share the engine's CPUs ({e})")
        share_the_cores(postgres, simulator)
        return None
    return sorted(engine_cpus)


def share_the_cores(postgres: PostgresPair, simulator: ExchangeSimServer) -> None:
    """Let the servers and this process run on every CPU again (undoes the pinning)."""
    everything = set(range(os.cpu_count() or 1))
    for tid in [*_server_threads(postgres, simulator), *_process_threads("self")]:
        with contextlib.suppress(OSError):  # ended meanwhile, or never pinned
            os.sched_setaffinity(tid, everything)


@contextlib.contextmanager
def running_servers(
    agent_rate: float, *, keep: bool = False
) -> Iterator[tuple[Settings, PostgresPair, ExchangeSimServer]]:
    """Start PostgreSQL (primary + sync standby, migrated) and the simulator; stop both."""
    home = Path(tempfile.mkdtemp(prefix="bot4-bench-live-", dir="/tmp"))
    home.chmod(0o755)  # the unprivileged PostgreSQL user must reach it
    pg_a, pg_b, exchange = free_ports(3)
    settings = Settings(
        home=home,
        db=DatabaseSettings(primary_port=pg_a, standby_port=pg_b),
        exchange=ExchangeSettings(
            port=exchange, symbols=tuple(RELEASE["symbols"]), sim_agent_orders_per_s=agent_rate
        ),
    )
    paths = StackPaths(home)
    paths.create()
    postgres = PostgresPair(paths=paths, settings=settings.db)
    simulator = ExchangeSimServer(paths=paths, settings=settings)
    failed = True
    try:
        progress = StderrProgress(_say)
        postgres.ensure_running(progress)
        applied = apply_migrations_sync(settings.db.effective_dsn())
        _say(f"migrations: {len(applied)} applied")
        progress.done(simulator.name, simulator.ensure_running(progress))
        yield settings, postgres, simulator
        failed = keep
    finally:
        for stop in (simulator.stop, postgres.stop):
            try:
                stop()
            except Exception as e:  # stop the rest, then report
                _say(f"stopping failed: {e}")
                failed = True
        if failed:
            _say(f"kept {home} (logs in log/); its servers are stopped")
        else:
            shutil.rmtree(home, ignore_errors=True)


# --- trading phase ----------------------------------------------------------------------


async def _wait_for_leadership(engine: LiveEngine, run: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + LEAD_TIMEOUT_S
    while engine.role != "leader" or engine.quotes is None or engine.manager is None:
        if run.done():
            run.result()  # raises what ended it
            raise RuntimeError("engine stopped before leading")
        if time.monotonic() > deadline:
            raise RuntimeError(f"engine did not lead within {LEAD_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.05)


def _latencies(quotes: QuoteSync, first: int, first_engine: int,
               first_after_decision: int) -> dict[str, float | None]:  # fmt: skip
    """Return the tick-to-order percentiles (µs) of the samples taken in the window."""
    samples = {
        "tick_to_order": quotes.tick_to_order_engine_ns[first_engine:],
        "tick_to_order_wall": quotes.tick_to_order_ns[first:],
        "decision_to_order": quotes.decision_to_order_ns[first_after_decision:],
    }
    return {
        f"{name}_p{q}_us": _round(_percentile([ns / 1e3 for ns in values], q))
        for name, values in samples.items()
        for q in (50, 99)
    }


async def measure_trading(settings: Settings, minutes: float) -> dict[str, Any]:
    """Run one engine as leader for ``minutes`` (after a warm-up) and read its samples."""
    release = Release.from_mapping(RELEASE, source="bench.engine_live")
    config = EngineConfig(instance=ENGINE_INSTANCE, color="blue",
                          dsn=settings.db.effective_dsn())  # fmt: skip
    engine, pool = await open_engine(config, release, settings.exchange)
    run = asyncio.create_task(engine.run(), name="engine")
    try:
        await _wait_for_leadership(engine, run)
        quotes, manager = engine.quotes, engine.manager
        assert quotes is not None
        assert manager is not None
        _say(f"engine leads (epoch {engine.epoch}); warming up {WARMUP_S:.0f} s")
        await asyncio.sleep(WARMUP_S)
        window = max(minutes * 60.0, 0.0)
        started = time.monotonic()
        first_sample = len(quotes.tick_to_order_ns)
        first_engine_sample = len(quotes.tick_to_order_engine_ns)
        first_after_decision = len(quotes.decision_to_order_ns)
        placed, canceled, refused = quotes.placed, quotes.canceled, quotes.refused
        fills, events = manager.fills_recorded, engine.decider.events_decided
        decisions = engine.decisions
        paced = _metric_total("bot4_venue_rate_limit_delays_total")
        max_weight = 0.0
        while (elapsed := time.monotonic() - started) < window:
            await asyncio.sleep(min(PROGRESS_EVERY_S, window - elapsed))
            if engine.quotes is not quotes or run.done():
                raise RuntimeError(f"engine lost leadership or stopped (role {engine.role})")
            max_weight = max(max_weight, _metric_total("bot4_venue_used_weight"))
            _say(
                f"trading {time.monotonic() - started:5.0f}/{window:.0f} s: "
                f"{quotes.placed - placed} orders, {manager.fills_recorded - fills} fills, "
                f"{len(quotes.tick_to_order_ns) - first_sample} samples, "
                f"{engine.decider.events_decided - events} events decided"
            )
        elapsed = time.monotonic() - started
        rss, peak = _rss_mb()
        sends = [(sent, answered) for sent, answered in manager.send_times if sent >= started]
        ccxt_us = [(answered - sent) * 1e6 for sent, answered in sends]
        last_send_s = round(sends[-1][0] - started, 1) if sends else None
        if elapsed - (last_send_s or 0.0) > 30.0:
            _say(f"no order sent in the last {elapsed - (last_send_s or 0.0):.0f} s of the window")
        return {
            **_latencies(quotes, first_sample, first_engine_sample, first_after_decision),
            "ccxt_p50_us": _round(_percentile(ccxt_us, 50)),
            "ccxt_p99_us": _round(_percentile(ccxt_us, 99)),
            "rss_mb": round(rss, 1),
            "rss_peak_mb": round(peak, 1),
            "minutes": round(elapsed / 60.0, 3),
            "warmup_s": WARMUP_S,
            "orders": quotes.placed - placed,
            "order_sends": len(ccxt_us),
            "cancels": quotes.canceled - canceled,
            "refused": quotes.refused - refused,
            "fills": manager.fills_recorded - fills,
            "events_decided": engine.decider.events_decided - events,
            "decisions": engine.decisions - decisions,
            "tick_to_order_samples": len(quotes.tick_to_order_engine_ns) - first_engine_sample,
            "ccxt_samples": len(ccxt_us),
            "last_order_at_s": last_send_s,
            "trading_state": TRADING_STATE_NAMES[engine.effective_state()],
            "venue_pacing_delays": round(
                _metric_total("bot4_venue_rate_limit_delays_total") - paced
            ),
            "venue_max_used_weight_1m": round(max_weight),
        }
    finally:
        engine.stop()
        try:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run, 30.0)  # leader: cancels its orders, releases
        finally:
            try:
                await engine.session.close()
            finally:
                await pool.close()


# --- journal phase ----------------------------------------------------------------------


def _order_events(producer: int, seq: int, count: int, epoch: int) -> list[JournalEvent]:
    """Return ``count`` events of orders' lives, with the bodies the order manager writes.

    Alternating ORDER_NEW (the write-ahead request) and ORDER_ACKED; each has a fresh
    event id, as every real event does. Built with dict literals: the producers stand
    for the engine's order tasks and should cost little next to the journal itself.
    """
    events = []
    for k in range(count):
        cid = f"{JOURNAL_INSTANCE}-{epoch}-{producer}.{seq}.{k // 2}"
        if k % 2 == 0:
            kind = JournalKind.ORDER_NEW
            body: dict[str, Any] = {
                "symbol": "BTC/USDT", "side": "buy" if seq % 2 else "sell", "type": "limit",
                "amount": "0.020", "price": f"{64000 + seq % 500}.50", "time_in_force": "GTC",
                "reduce_only": False, "epoch": epoch, "phase": "new", "reason": None,
            }  # fmt: skip
        else:
            kind = JournalKind.ORDER_ACKED
            body = {"order_id": str(producer * 10**9 + seq), "status": "open", "filled": "0",
                    "phase": "acked", "reason": None}  # fmt: skip
        events.append(JournalEvent(kind=kind, client_order_id=cid, body=body))
    return events


async def _acquire(lease: Lease) -> int:
    deadline = time.monotonic() + 30.0
    while (epoch := await lease.try_acquire()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the trading lease stayed held (did the engine release it?)")
        await asyncio.sleep(0.2)
    return epoch


async def measure_journal(dsn: str, *, seconds: float, producers: int, batch: int,
                          max_batch: int) -> dict[str, Any]:  # fmt: skip
    """Drive one group committer with ``producers`` concurrent recorders for ``seconds``."""
    async with asyncpg.create_pool(dsn, min_size=3, max_size=3) as pool:
        lease = Lease(pool, instance=JOURNAL_INSTANCE, ttl_s=seconds + 120.0)
        epoch = await _acquire(lease)
        committer = GroupCommitter(Journal(pool, instance=JOURNAL_INSTANCE),
                                   epoch=lambda: epoch, max_batch=max_batch)  # fmt: skip
        committer.start()
        latencies_ms: list[float] = []
        committed = 0
        warm_until = time.monotonic() + min(2.0, seconds / 5)
        end = warm_until + seconds

        async def produce(index: int) -> None:
            nonlocal committed
            for seq in itertools.count():
                now = time.monotonic()
                if now >= end:
                    return
                events = _order_events(index, seq, batch, epoch)
                began = time.perf_counter()
                await committer.record(events)
                if now >= warm_until:
                    latencies_ms.append((time.perf_counter() - began) * 1e3)
                    committed += len(events)

        async def report() -> None:
            while True:
                await asyncio.sleep(PROGRESS_EVERY_S)
                elapsed = time.monotonic() - warm_until
                if elapsed > 0:
                    _say(f"journal {elapsed:4.0f}/{seconds:.0f} s: "
                         f"{committed / elapsed:,.0f} events/s")  # fmt: skip

        _say(f"journal phase: {producers} producers x {batch} events, epoch {epoch}")
        reporter = asyncio.create_task(report())
        batches_before = committer.batches
        try:
            await asyncio.gather(*(produce(i) for i in range(producers)))
        finally:
            reporter.cancel()
            await committer.stop()
            await lease.release()
        wall = time.monotonic() - warm_until
        transactions = committer.batches - batches_before
    return {
        "journal_events_per_s": round(committed / wall),
        "journal_commit_p50_ms": _round(_percentile(latencies_ms, 50), 3),
        "journal_commit_p99_ms": _round(_percentile(latencies_ms, 99), 3),
        "journal_events": committed,
        "journal_records": len(latencies_ms),
        "journal_seconds": round(wall, 2),
        "journal_producers": producers,
        "journal_events_per_record": batch,
        "journal_events_per_transaction": round(committed / max(transactions, 1), 1),
        "journal_max_batch": max_batch,
    }


# --- entry point ------------------------------------------------------------------------


async def _measure(
    settings: Settings, args: argparse.Namespace, after_trading: Callable[[], None]
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    report.update(await measure_trading(settings, args.minutes))
    after_trading()  # the journal phases measure the database on the whole machine
    for producers, prefix in (
        (args.producers, "journal_"),
        (args.light_producers, "journal_light_"),
    ):
        figures = await measure_journal(
            settings.db.effective_dsn(),
            seconds=args.journal_seconds,
            producers=producers,
            batch=args.batch,
            max_batch=args.max_batch,
        )
        report.update({prefix + key.removeprefix("journal_"): v for key, v in figures.items()})
    return report


def _table(report: dict[str, Any]) -> str:
    width = max(len(k) for k in report)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in report.items())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the servers like Ctrl-C does


def main() -> None:
    """Measure and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="trading window")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--agent-rate", type=float, default=150.0,
                        help="simulator background agents' orders per second")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temp home (logs)")
    parser.add_argument("--servers-preempt", action="store_true",
                        help="leave PostgreSQL and the simulator on the normal scheduling"
                             " policy (they then preempt the engine on wake-up)")  # fmt: skip
    parser.add_argument("--share-cores", action="store_true",
                        help="let the servers share the engine's CPUs while it trades"
                             " (default: the servers get the last CPU)")  # fmt: skip
    parser.add_argument("--journal-seconds", type=float, default=15.0)
    parser.add_argument("--producers", type=int, default=1024,
                        help="journal recorders of the capacity phase")  # fmt: skip
    parser.add_argument("--light-producers", type=int, default=64,
                        help="journal recorders of the light phase")  # fmt: skip
    parser.add_argument("--batch", type=int, default=4, help="events per record() call")
    parser.add_argument("--max-batch", type=int, default=2000,
                        help="GroupCommitter max_batch (events per transaction)")  # fmt: skip
    args = parser.parse_args()
    if (args.minutes < 0 or args.journal_seconds <= 0 or args.batch < 1
            or min(args.producers, args.light_producers) < 1):  # fmt: skip
        parser.error("--minutes must be >= 0; --journal-seconds, --*producers, --batch > 0")
    signal.signal(signal.SIGTERM, _interrupt)
    report: dict[str, Any] = {"agent_orders_per_s": args.agent_rate, "cpus": os.cpu_count()}
    try:
        with running_servers(args.agent_rate, keep=args.keep) as (settings, postgres, simulator):
            report["servers_sched_batch"] = not args.servers_preempt and yield_to_the_engine(
                postgres, simulator
            )
            report["engine_cpus"] = (
                None if args.share_cores else give_the_engine_its_cores(postgres, simulator)
            )
            # the engine's structured logs go to the bench home's log/, as in production
            configure_logging(log_dir=settings.home / "log", level=logging.INFO)
            report.update(asyncio.run(_measure(
                settings, args, lambda: share_the_cores(postgres, simulator))))  # fmt: skip
    except KeyboardInterrupt:
        _say("interrupted; servers stopped")
        raise SystemExit(130) from None
    print(json.dumps(report, indent=2) if args.json else _table(report), flush=True)


if __name__ == "__main__":
    main()
