"""Chaos scenarios: one operation and the faults that hit it, drawn from a printed seed.

A scenario is drawn from ``random.Random("bot4-chaos:<seed>:<index>")`` alone, so scenario
7 of seed S is the same whether it runs among a hundred others or by itself
(``BOT4_CHAOS_SEED=S BOT4_CHAOS_ONLY=7``). Which operation and which *first* fault a
scenario gets rotate through permutations drawn from the seed, so any 9 consecutive
scenarios inject every fault kind and any 3 run every operation; the other faults, their
order, times and strengths are random.

Settings (environment):

- ``BOT4_CHAOS_SEED``: the seed (default :data:`DEFAULT_SEED`, the CI suite's).
- ``BOT4_CHAOS_SCENARIOS``: how many scenarios (default 10).
- ``BOT4_CHAOS_ONLY``: run only these indices (``7`` or ``3,7``).
- ``BOT4_CHAOS_MINUTES``: a time budget; scenarios that would start after it are skipped.
- ``BOT4_CHAOS_KEEP=1``: keep the desk's state folder (every process's log) afterwards.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

DEFAULT_SEED: Final = 20261127
DEFAULT_SCENARIOS: Final = 10


class Operation(StrEnum):
    """What the desk is doing when the faults hit (each through the control API)."""

    ROLLOUT = "blue_green_rollout"
    LIQUIDATION = "liquidation"
    DR = "dr_failover"


class FaultKind(StrEnum):
    """What goes wrong."""

    ENGINE_KILL = "kill_9_engine"
    WORKER_KILL = "kill_9_worker"
    POSTGRES_KILL = "kill_9_postgres_primary"
    SIMULATOR_KILL = "kill_9_simulator"
    VENUE_5XX = "venue_5xx_storm"
    VENUE_429 = "venue_429_storm"
    WEBSOCKET_DROP = "websocket_drop"
    FEED_STALL = "stalled_feed"
    CLOCK_JUMP = "venue_clock_jump"


OPERATIONS: Final = tuple(Operation)
FAULT_KINDS: Final = tuple(FaultKind)

# when faults may start, seconds after the operation started: roughly its length here
WINDOW_S: Final = {Operation.ROLLOUT: 8.0, Operation.LIQUIDATION: 5.0, Operation.DR: 3.0}


@dataclass(frozen=True, kw_only=True, slots=True)
class Fault:
    """One fault: what, when (after the operation started), how long, how hard.

    ``strength`` means: the share of REST calls answered 503 (5xx storm), Retry-After
    seconds (429 storm), how many drops (websocket drop), the clock step in milliseconds
    (clock jump); unused for kills, whose ``hold_s`` is the time down before the restart.
    """

    kind: FaultKind
    at_s: float
    hold_s: float
    strength: float = 0.0

    def describe(self) -> str:
        extra = {
            FaultKind.VENUE_5XX: f" share={self.strength:.2f}",
            FaultKind.VENUE_429: f" retry_after={self.strength:.0f}s",
            FaultKind.WEBSOCKET_DROP: f" drops={self.strength:.0f}",
            FaultKind.CLOCK_JUMP: f" step={self.strength / 1000:+.1f}s",
        }.get(self.kind, "")
        return f"{self.kind}@{self.at_s:.1f}s for {self.hold_s:.1f}s{extra}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Scenario:
    """An operation and its faults, in the order they start."""

    seed: int
    index: int
    operation: Operation
    faults: tuple[Fault, ...]

    @property
    def kinds(self) -> frozenset[FaultKind]:
        return frozenset(f.kind for f in self.faults)

    def describe(self) -> str:
        operation = str(self.operation)
        if self.operation is Operation.DR:
            mode = "failover" if FaultKind.POSTGRES_KILL in self.kinds else "switchover"
            mode += " drill"
            operation = f"{operation} ({mode})"
        faults = ", ".join(f.describe() for f in self.faults)
        return f"#{self.index} {operation}: {faults}"

    def reproduce(self) -> str:
        return f"BOT4_CHAOS_SEED={self.seed} BOT4_CHAOS_ONLY={self.index} pytest tests/chaos"


def _fault(kind: FaultKind, rng: random.Random, operation: Operation) -> Fault:
    at_s = round(rng.uniform(0.0, WINDOW_S[operation]), 1)
    if kind is FaultKind.POSTGRES_KILL and operation is Operation.DR:
        at_s = 0.0  # a failover drill: its own inject_fault step kills the primary
    hold_s = round(rng.uniform(0.5, 4.0), 1)
    strength = {
        FaultKind.VENUE_5XX: round(rng.uniform(0.5, 1.0), 2),
        FaultKind.VENUE_429: float(rng.randint(1, 3)),
        FaultKind.WEBSOCKET_DROP: float(rng.randint(1, 3)),
        # back by more than a second: the venue refuses our signed requests as "ahead of
        # its time" (-1021); forward within recvWindow: only its timestamps move
        FaultKind.CLOCK_JUMP: float(rng.choice((-1, 1)) * rng.randint(2_000, 9_000)),
    }.get(kind, 0.0)
    return Fault(kind=kind, at_s=at_s, hold_s=hold_s, strength=strength)


def draw(seed: int, index: int) -> Scenario:
    """Return scenario ``index`` of ``seed`` (deterministic, independent of the others)."""
    rotation = random.Random(f"bot4-chaos:{seed}")  # test data, not security
    operations = rotation.sample(OPERATIONS, len(OPERATIONS))
    firsts = rotation.sample(FAULT_KINDS, len(FAULT_KINDS))
    rng = random.Random(f"bot4-chaos:{seed}:{index}")
    operation = operations[index % len(operations)]
    first = firsts[index % len(firsts)]
    others = [k for k in FAULT_KINDS if k is not first]
    kinds = [first, *rng.sample(others, rng.choice((0, 1, 1, 2)))]
    faults = sorted((_fault(k, rng, operation) for k in kinds), key=lambda f: f.at_s)
    return Scenario(seed=seed, index=index, operation=operation, faults=tuple(faults))


@dataclass(frozen=True, kw_only=True, slots=True)
class ChaosSettings:
    """What to run, from the environment."""

    seed: int
    count: int
    only: tuple[int, ...] | None
    minutes: float | None

    @classmethod
    def from_env(cls) -> ChaosSettings:
        """Read ``BOT4_CHAOS_*``; a bad value names the variable.

        Raises:
            ValueError: a variable is not a number (or a list of them).
        """
        try:
            seed = int(os.environ.get("BOT4_CHAOS_SEED", DEFAULT_SEED))
            count = int(os.environ.get("BOT4_CHAOS_SCENARIOS", DEFAULT_SCENARIOS))
            only_text = os.environ.get("BOT4_CHAOS_ONLY", "").strip()
            only = tuple(int(i) for i in only_text.split(",")) if only_text else None
            minutes_text = os.environ.get("BOT4_CHAOS_MINUTES", "").strip()
            minutes = float(minutes_text) if minutes_text else None
        except ValueError as e:
            raise ValueError(f"BOT4_CHAOS_SEED/SCENARIOS/ONLY/MINUTES must be numbers: {e}") from e
        if count < 1:
            raise ValueError(f"BOT4_CHAOS_SCENARIOS must be >= 1, got {count}")
        return cls(seed=seed, count=count, only=only, minutes=minutes)

    def indices(self) -> list[int]:
        return list(self.only) if self.only is not None else list(range(self.count))
