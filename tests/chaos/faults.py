"""Fault injectors: each one breaks one thing at its time, holds, and undoes what it broke.

A killed process is started again after ``hold_s``, as a supervisor would restart it
(``kill -9`` of the engine, the worker, the simulator; the PostgreSQL primary restarts
through crash recovery; in a DR scenario the failover drill kills it itself). Venue
faults go through the simulator's own fault injection (``/admin/faults``: 503 answers,
429 storms with Retry-After, dropped or stalled websockets) and are cleared after
``hold_s``; a clock jump steps the simulator's clock and steps it back (see
:mod:`tests.chaos.sim_process` for exactly what moves).

What each injector did goes to the scenario's log. An injector that finds its target
gone (the simulator killed by another fault, say) logs it and skips; any other error is
the harness's and is reported as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from infra.platform import Color
from infra.stack.process import is_alive, read_pid_file
from tests.chaos.rig import COLORS, Rig
from tests.chaos.scenarios import Fault, FaultKind
from tests.engine.live.harness import set_fault
from tests.stubs.deploy import engine_status
from tests.stubs.exchange_sim import ADMIN_TOKEN

SUPERVISE_S = 60.0  # how long a killed engine's supervisor keeps restarting it


@dataclass(kw_only=True)
class FaultLog:
    """What the injectors did, with times relative to the operation's start."""

    started: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    harness_errors: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.lines.append(f"{time.monotonic() - self.started:6.1f}s {text}")


async def _clear(port: int, name: str) -> None:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.delete(f"http://127.0.0.1:{port}/admin/faults/{name}",
                    headers={"X-Bot4-Admin-Token": ADMIN_TOKEN}) as answer,
    ):  # fmt: skip
        assert answer.status == 200, await answer.text()


async def _leading_color(rig: Rig) -> tuple[Color | None, bool]:
    """The color holding the trading lease, else any running color; and whether it leads."""
    with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
        connection = await asyncpg.connect(rig.dsn, timeout=3)
        try:
            holder = await connection.fetchval("SELECT holder FROM engine_leases")
        finally:
            await connection.close()
        for color in COLORS:
            if holder == color and rig.platform.status(color).running:
                return color, True
    return next((c for c in COLORS if rig.platform.status(c).running), None), False


async def kill_engine(rig: Rig, fault: Fault, log: FaultLog) -> None:
    """SIGKILL the leading engine; after ``hold_s`` supervise its restart.

    The supervisor restarts the color with its release, as a standby only if it was one
    when killed (a new color a rollout started with ``--standby`` and then promoted is
    the leader now: restarted as a standby, nobody would lead), and starts it again when
    it exits (its first venue calls fail while the simulator is down, say) as a
    ``Restart=on-failure`` unit would. It leaves the color alone once something else (a
    rollback, a retirement) stopped or restarted it.
    """
    color, leading = await _leading_color(rig)
    if color is None:
        log.note("kill -9 engine: no engine runs, skipped")
        return
    pid_file = rig.platform.folder(color) / "engine.pid"
    record = read_pid_file(pid_file, component=f"engine {color}")
    if record is None or not is_alive(record):
        log.note(f"kill -9 engine: {color} already gone, skipped")
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, signal.SIGKILL)
    log.note(f"kill -9 engine {color} (pid {record.pid}{', the leader' if leading else ''})")
    await asyncio.sleep(fault.hold_s)
    release = Path(record.argv[record.argv.index("--release") + 1])
    standby = "--standby" in record.argv and not leading
    ours = record.pid
    deadline = time.monotonic() + SUPERVISE_S
    while time.monotonic() < deadline:
        now = read_pid_file(pid_file, component=f"engine {color}")
        if now is None or now.pid != ours:
            log.note(f"engine {color} was stopped or restarted by the operation: left alone")
            return
        if not is_alive(now):
            started = await asyncio.to_thread(rig.platform.start, color, release, standby=standby)
            assert started.pid is not None
            ours = started.pid
            log.note(f"engine {color} (re)started{' as standby' if standby else ''}")
        elif await engine_status(rig.engine_url(color)) is not None:
            return  # up and answering
        await asyncio.sleep(0.5)
    log.note(f"engine {color} did not stay up within {SUPERVISE_S:.0f} s")


async def kill_worker(rig: Rig, fault: Fault, log: FaultLog) -> None:
    """SIGKILL the whole worker process; start it again after ``hold_s``."""
    await rig.worker.kill()
    log.note("kill -9 worker")
    await asyncio.sleep(fault.hold_s)
    await rig.worker.start()
    log.note("worker restarted")


async def kill_postgres_primary(rig: Rig, fault: Fault, log: FaultLog) -> None:
    """SIGKILL the primary's postmaster and backends; start it again after ``hold_s``
    (crash recovery: the same node is primary again, its standby reconnects)."""
    state = await asyncio.to_thread(rig.cluster.replication)
    if state.primary is None:
        log.note(f"kill -9 postgres primary: no primary ({dict(state.roles)}), skipped")
        return
    await asyncio.to_thread(rig.cluster.kill_primary, state.primary)
    log.note(f"kill -9 postgres primary {state.primary}")
    await asyncio.sleep(fault.hold_s)
    await asyncio.to_thread(rig.cluster.start_node, state.primary)
    log.note(f"postgres {state.primary} restarted (crash recovery)")


async def kill_simulator(rig: Rig, fault: Fault, log: FaultLog) -> None:
    """SIGKILL the venue; restart it after ``hold_s`` on its state folder and clock."""
    await rig.sim.kill()
    log.note("kill -9 simulator")
    await asyncio.sleep(fault.hold_s)
    await rig.sim.start()
    log.note("simulator restarted")


async def venue_fault(rig: Rig, fault: Fault, log: FaultLog, name: str, **params: object) -> None:
    """Set one of the simulator's faults for ``hold_s``, then clear it."""
    await set_fault(rig.sim.port, name, **params)
    log.note(f"venue fault {name} {params}")
    await asyncio.sleep(fault.hold_s)
    await _clear(rig.sim.port, name)
    log.note(f"venue fault {name} cleared")


async def drop_websockets(rig: Rig, fault: Fault, log: FaultLog) -> None:
    """Close every websocket of the venue, ``strength`` times over ``hold_s``."""
    drops = max(1, int(fault.strength))
    for n in range(drops):
        await set_fault(rig.sim.port, "drop_websockets")
        log.note(f"websockets dropped ({n + 1}/{drops})")
        await asyncio.sleep(fault.hold_s / drops)


async def jump_clock(rig: Rig, fault: Fault, log: FaultLog) -> None:
    """Step the venue's clock by ``strength`` ms for ``hold_s``, then step it back."""
    await rig.sim.set_clock_offset(int(fault.strength))
    log.note(f"venue clock stepped {fault.strength / 1000:+.1f}s")
    await asyncio.sleep(fault.hold_s)
    await rig.sim.set_clock_offset(0)
    log.note("venue clock stepped back")


async def inject(rig: Rig, fault: Fault, log: FaultLog) -> None:
    """Wait for the fault's time, inject it, undo it; never raise (errors are logged)."""
    await asyncio.sleep(fault.at_s)
    try:
        match fault.kind:
            case FaultKind.ENGINE_KILL:
                await kill_engine(rig, fault, log)
            case FaultKind.WORKER_KILL:
                await kill_worker(rig, fault, log)
            case FaultKind.POSTGRES_KILL:
                await kill_postgres_primary(rig, fault, log)
            case FaultKind.SIMULATOR_KILL:
                await kill_simulator(rig, fault, log)
            case FaultKind.VENUE_5XX:
                await venue_fault(rig, fault, log, "error_rate", share=fault.strength)
            case FaultKind.VENUE_429:
                await venue_fault(rig, fault, log, "rate_limit_storm",
                                  retry_after_s=int(fault.strength))  # fmt: skip
            case FaultKind.WEBSOCKET_DROP:
                await drop_websockets(rig, fault, log)
            case FaultKind.FEED_STALL:
                await venue_fault(rig, fault, log, "stall_streams")
            case FaultKind.CLOCK_JUMP:
                await jump_clock(rig, fault, log)
    except aiohttp.ClientConnectionError as e:  # killed by another fault at that moment
        log.note(f"{fault.kind}: venue unreachable ({type(e).__name__}), skipped")
    except Exception as e:
        log.harness_errors.append(f"{fault.describe()}: {type(e).__name__}: {e}")
        log.note(f"{fault.kind}: harness error {type(e).__name__}: {e}")
