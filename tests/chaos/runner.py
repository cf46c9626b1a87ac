"""Run one chaos scenario end to end and report every promise it broke.

1. a clean desk (:meth:`Rig.reset`); blue leads and trades on the simulator (for a
   liquidation, a second account sells into blue's bid until it is long);
2. the operation is started through the control API and, at their times, the faults
   hit (each undoes itself: a killed process is started again, a venue fault cleared);
3. once the run ended and the faults are undone, the *aftermath* (pair roles, running
   engines) is noted: what the workflow left behind;
4. settle: whatever a fault may still have left broken is repaired (never by promoting),
   and the desk must have a leader whose startup reconciliation passed (who leads, and
   whether the harness had to start an engine for it, completes the aftermath);
5. the engines stop cleanly (standbys first, then the leader: it cancels, journals its
   last fills and releases the lease), and the invariants are checked.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import asyncpg

from infra.platform import Color
from tests.chaos.faults import FaultLog, inject
from tests.chaos.invariants import (
    Aftermath,
    audit_chain,
    one_leader_at_a_time,
    venue_and_journal,
    workflow_outcome,
)
from tests.chaos.operations import ApiOperator, Run
from tests.chaos.rig import COLORS, Rig, heal_pair
from tests.chaos.scenarios import FaultKind, Operation, Scenario
from tests.engine.live.harness import clear_faults, open_venue
from tests.stubs.deploy import RELEASE, Desk, engine_status
from tests.stubs.liquidation import build_long

LEADER_WITHIN_S: Final = 120.0
LONG_LOTS: Final = 100


@dataclass(kw_only=True)
class ScenarioReport:
    """What happened in one scenario, and what it broke."""

    scenario: Scenario
    log: FaultLog = field(default_factory=FaultLog)
    run: Run | None = None
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    engine_logs: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    _mark: float = field(default_factory=time.monotonic)

    def phase(self, name: str) -> None:
        """Note how long the phase that ends now took (where a scenario's time goes)."""
        now = time.monotonic()
        self.phases[name] = round(now - self._mark, 1)
        self._mark = now

    @property
    def outcome(self) -> str:
        if self.run is None:
            return "not started"
        result = self.run.result
        if self.scenario.operation is Operation.ROLLOUT and result:
            return "completed" if result.get("completed") else "rolled back"
        if self.scenario.operation is Operation.LIQUIDATION and result:
            return "flat" if result.get("flat") else "remainder"
        if self.scenario.operation is Operation.DR and result:
            return f"{result.get('mode')} rto={result.get('rto_s')} rpo={result.get('rpo_events')}"
        return self.run.status.lower()

    def summary(self) -> str:
        verdict = "ok" if not self.violations else f"{len(self.violations)} VIOLATED"
        phases = " ".join(f"{k} {v:.0f}" for k, v in self.phases.items())
        return (f"{self.scenario.describe()} -> {self.outcome}, {self.seconds:.0f}s ({phases}),"
                f" {verdict}")  # fmt: skip

    def text(self) -> str:
        scenario = self.scenario
        lines = [
            f"chaos scenario {scenario.index} of seed {scenario.seed} broke"
            f" {len(self.violations)} promise(s) in {self.seconds:.0f}s; reproduce:"
            f" {scenario.reproduce()}",
            f"scenario: {scenario.describe()}",
            "violated:",
            *(f"  - {v}" for v in self.violations),
            "faults:",
            *(f"  {line}" for line in self.log.lines),
        ]
        if self.run is not None:
            lines.append(f"run {self.run.workflow_id}: {self.run.status} in {self.run.seconds:.0f}s"
                         f" {json.dumps(self.run.document, default=str)[:1500]}")  # fmt: skip
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join([*lines, self.engine_logs])


def _release(rig: Rig, scenario: Scenario, suffix: str) -> Path:
    """A release manifest of this scenario (a version deploys once: unique per run)."""
    document = json.loads(json.dumps(RELEASE))
    document["version"] = f"chaos-{scenario.seed}-{scenario.index}-{suffix}-{time.time_ns()}"
    if scenario.operation is Operation.LIQUIDATION:
        # quotes of 100 lots, no stop-loss: a position that stays until it is unwound
        document["strategy"]["quote_lots"] = 100
        document["post_trade"]["stop_loss_ticks"] = 10_000_000
    folder = rig.home / "releases"
    folder.mkdir(exist_ok=True)
    path = folder / f"{document['version']}.json"
    path.write_text(json.dumps(document))
    return path


async def aftermath(rig: Rig) -> Aftermath:
    """Note what the operation left behind (before the harness repairs anything)."""
    state = await asyncio.to_thread(rig.cluster.replication)
    running = frozenset(c for c in COLORS if rig.platform.status(c).running)
    return Aftermath(
        primaries=tuple(n for n, role in state.roles.items() if role == "primary"),
        pair_sync=state.sync_state == "sync",
        running=running,
    )


async def settle(rig: Rig, release: Path, report: ScenarioReport) -> tuple[Color | None, bool]:
    """Repair what faults left broken; return the color that leads with its reconciliation
    passed (None, with the violation recorded, when none does) and whether the harness
    had to start blue for it."""
    if not rig.sim.running():
        await rig.sim.start()
        report.notes.append("simulator was down after the faults: started")
    await clear_faults(rig.sim.port)
    if rig.sim.offset_ms:
        await rig.sim.set_clock_offset(0)
    if not rig.worker.running():
        await rig.worker.start()
    healed = await heal_pair(rig.cluster)
    if healed:
        report.notes.append(f"pair repaired after the scenario: {healed}")
    deadline = time.monotonic() + LEADER_WITHIN_S
    started_blue = False
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for color in COLORS:
            status = await engine_status(rig.engine_url(color)) or {}
            last[color] = {k: status.get(k) for k in ("role", "trading_state", "recovery_ok")}
            if status.get("role") == "leader" and status.get("recovery_ok") is not None:
                if status["recovery_ok"] is False:
                    report.violations.append(
                        f"positions not reconciled: {color} led after the faults with its"
                        f" startup reconciliation failed ({status.get('gate_changes')})"
                    )
                return color, started_blue
        waited = LEADER_WITHIN_S - (deadline - time.monotonic())
        if waited > 20 and not started_blue and not rig.platform.status("blue").running:
            await asyncio.to_thread(rig.platform.start, "blue", release)
            report.notes.append("no engine led 20 s after the faults: blue started")
            started_blue = True
        await asyncio.sleep(0.5)
    report.violations.append(f"no engine led within {LEADER_WITHIN_S:.0f} s: {last}")
    return None, started_blue


async def stop_desk(rig: Rig, leader: Color | None) -> None:
    """Stop standbys first (else one would take the lease), then the leader."""
    order = [c for c in COLORS if c != leader] + ([leader] if leader else [])
    for color in order:
        await asyncio.to_thread(rig.platform.stop, color)


def _engine_logs(rig: Rig) -> str:
    problems = []
    log = rig.home / "log" / "bot4.log"
    if log.exists():
        for line in log.read_text(errors="replace").splitlines()[-4000:]:
            if '"error"' in line or '"critical"' in line:
                problems.append(line[:400])
    return "last errors in bot4.log:\n" + "\n".join(problems[-15:])


async def run_scenario(rig: Rig, scenario: Scenario) -> ScenarioReport:
    """Run ``scenario`` on ``rig``; return its report (violations empty: every promise kept)."""
    report = ScenarioReport(scenario=scenario)
    started = time.monotonic()
    healed = await rig.reset(f"s{scenario.seed}-{scenario.index}")
    if healed:
        report.notes.append(f"pair repaired before the scenario: {healed}")
    report.phase("reset")
    pool = await asyncpg.create_pool(rig.dsn, min_size=0, max_size=2)
    operator = ApiOperator(rig)
    tasks: list[asyncio.Task[None]] = []
    try:
        release = _release(rig, scenario, "old")
        desk = Desk(settings=rig.settings, platform=rig.platform, pool=pool)
        await asyncio.to_thread(rig.platform.start, "blue", release)
        await desk.wait_trading("blue", within=LEADER_WITHIN_S)
        if scenario.operation is Operation.LIQUIDATION:
            lots = await build_long(desk, rig.sim.port, LONG_LOTS, freeze=False)
            report.notes.append(f"blue long {lots} lots before the liquidation")
        report.phase("trading")
        target = _release(rig, scenario, "new")
        report.log = FaultLog()
        failover = scenario.operation is Operation.DR and FaultKind.POSTGRES_KILL in scenario.kinds
        workflow_id = await operator.start(scenario, target)
        report.log.note(f"{scenario.operation} started: {workflow_id}")
        if failover:
            report.log.note("kill -9 postgres primary: by the failover drill's inject_fault")
        tasks = [
            asyncio.create_task(inject(rig, fault, report.log))
            for fault in scenario.faults
            if not (failover and fault.kind is FaultKind.POSTGRES_KILL)
        ]
        report.run = await operator.follow(
            workflow_id, on_step=lambda step: report.log.note(f"step {step}")
        )
        report.log.note(f"{scenario.operation} ended: {report.run.status}")
        await asyncio.gather(*tasks)
        report.phase("operation")
        left = await aftermath(rig)
        leader, started_blue = await settle(rig, release, report)
        left = replace(left, leader=leader, harness_started=started_blue)
        report.notes.append(f"aftermath: {left}")
        report.phase("settle")
        await stop_desk(rig, leader)
        report.phase("stop")
        report.violations += [f"harness: {e}" for e in report.log.harness_errors]
        report.violations += await _check(rig, scenario, report.run, left, operator.calls)
        report.phase("check")
    except Exception as e:  # the report (seed, index, what happened) must reach the test
        where = traceback.format_exc(limit=-3)
        report.violations.append(f"scenario aborted: {type(e).__name__}: {e}\n{where}")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await rig.stop_engines()
        await operator.close()
        await pool.close()
        report.seconds = time.monotonic() - started
        if report.violations:
            report.engine_logs = _engine_logs(rig)
    return report


async def _check(rig: Rig, scenario: Scenario, run: Run, left: Aftermath, calls: int) -> list[str]:
    venue = await open_venue(rig.sim.port)
    pool = await asyncpg.create_pool(rig.dsn, min_size=0, max_size=2)
    try:
        return [
            *await venue_and_journal(venue, pool),
            *await one_leader_at_a_time(venue, pool),
            *await workflow_outcome(scenario, run, left, pool),
            *await audit_chain(pool, calls=calls),
        ]
    finally:
        await pool.close()
        await venue.close()
