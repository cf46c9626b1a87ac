"""The trading gate: the one trading state every part of the live engine obeys.

Thread-safe on purpose: the control server and the kill-switch poller run on their own
thread (so they answer while the strategy loop is stuck), and they must be able to stop
order sending on the loop's thread without waiting for it. Lowering is allowed to anyone
(any component that sees trouble); raising only through :meth:`TradingGate.raise_to`,
which the operator paths call.

Besides the state there are *holds*: named conditions that lower the effective state only
while they last and clear by themselves (the venue's breakers open, the journal behind,
the kill-switch flag unreadable). They are not lowerings of the state: when the cause
goes away trading resumes without an operator, while a halt or a drawdown stop stays.
The engine's own conditions are named in :data:`ENGINE_CONDITIONS`; an operator may hold
under any other name (``hold`` / ``unhold`` admin actions: a database switchover holds
the engine at REDUCING under its own condition while it runs), never under these.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from engine.dtypes import ACTIVE, HALTED, REDUCING, TRADING_STATE_NAMES

__all__ = [
    "ACTIVE",
    "ENGINE_CONDITIONS",
    "HALTED",
    "JOURNAL_CONDITION",
    "KILL_SWITCH_UNREADABLE_CONDITION",
    "LEADERSHIP_START_CONDITION",
    "MARKET_DATA_CONDITION",
    "REDUCING",
    "VENUE_CONDITION",
    "GateChange",
    "TradingGate",
]

HISTORY_KEPT: Final = 1_000  # state changes kept in memory (/status shows the last 5)
JOURNAL_CONDITION: Final = "journal"
"""Held while the journal backlog waits (the engine's housekeeping)."""
VENUE_CONDITION: Final = "venue"
"""Held while the venue's order or account breakers are open (the engine's housekeeping)."""
KILL_SWITCH_UNREADABLE_CONDITION: Final = "kill_switch_unreadable"
"""Held while the desk kill-switch flag cannot be read (the safety thread's poller)."""
MARKET_DATA_CONDITION: Final = "market_data"
"""Held while a market-data feed that gave up waits to be started again (the engine's)."""
LEADERSHIP_START_CONDITION: Final = "leadership_start"
"""Held from a takeover that failed to start until one succeeds (the engine's)."""
ENGINE_CONDITIONS: Final = frozenset(
    {JOURNAL_CONDITION, VENUE_CONDITION, KILL_SWITCH_UNREADABLE_CONDITION, MARKET_DATA_CONDITION,
     LEADERSHIP_START_CONDITION}
)  # fmt: skip
"""Conditions the engine sets and clears itself: an operator may neither hold nor lift them."""


@dataclass(frozen=True, kw_only=True, slots=True)
class GateChange:
    """One change of the trading state, for the journal and the audit trail."""

    before: int
    after: int
    reason: str
    by: str
    at_ns: int

    @property
    def names(self) -> tuple[str, str]:
        """Return the before/after states by name."""
        return TRADING_STATE_NAMES[self.before], TRADING_STATE_NAMES[self.after]


class TradingGate:
    """ACTIVE / REDUCING / HALTED, plus the reasons that hold it down.

    ``allows_new_orders`` and ``allows_reducing_orders`` are what the order path checks
    right before each send; ``halted`` is an event so a sender blocked elsewhere can see
    a halt without polling.
    """

    def __init__(self, state: int = ACTIVE) -> None:
        if state not in (ACTIVE, REDUCING, HALTED):
            raise ValueError(f"trading state must be one of {TRADING_STATE_NAMES} (got {state})")
        self._lock = threading.Lock()
        self._state = state
        self.halted = threading.Event()
        if state == HALTED:
            self.halted.set()
        self._listeners: list[Callable[[GateChange], None]] = []
        self._holds: dict[str, int] = {}
        self.history: list[GateChange] = []

    @property
    def state(self) -> int:
        """Return the current state (an int of engine.dtypes)."""
        return self._state

    @property
    def name(self) -> str:
        """Return the current state's name."""
        return TRADING_STATE_NAMES[self._state]

    @property
    def effective(self) -> int:
        """Return the state orders obey: the state, lowered further by any hold."""
        holds = list(self._holds.values())  # a copy: holds change on other threads
        return max([self._state, *holds])

    @property
    def holds(self) -> dict[str, int]:
        """Return the current holds by name."""
        return dict(self._holds)

    def hold(self, name: str, state: int) -> bool:
        """Lower the effective state to ``state`` while ``name`` lasts; return if new."""
        if state not in (REDUCING, HALTED):
            raise ValueError(f"a hold lowers to REDUCING or HALTED (got {state})")
        with self._lock:
            new = name not in self._holds
            self._holds[name] = state
        return new

    def release(self, name: str) -> bool:
        """End the hold ``name``; return whether there was one."""
        with self._lock:
            return self._holds.pop(name, None) is not None

    def allows_new_orders(self) -> bool:
        """Return whether an order that may grow a position can be sent now."""
        return self.effective == ACTIVE

    def allows_reducing_orders(self) -> bool:
        """Return whether an order that only shrinks a position can be sent now."""
        return self.effective != HALTED

    def on_change(self, listener: Callable[[GateChange], None]) -> None:
        """Call ``listener`` (on the changing thread) after every change."""
        self._listeners.append(listener)

    def lower(self, state: int, *, reason: str, by: str) -> bool:
        """Lower the state to ``state`` if that is lower; return whether it changed."""
        return self._set(state, reason=reason, by=by, only_lower=True)

    def raise_to(self, state: int, *, reason: str, by: str) -> bool:
        """Set any state (operator paths only); return whether it changed."""
        return self._set(state, reason=reason, by=by, only_lower=False)

    def _set(self, state: int, *, reason: str, by: str, only_lower: bool) -> bool:
        if state not in (ACTIVE, REDUCING, HALTED):
            raise ValueError(f"trading state must be one of {TRADING_STATE_NAMES} (got {state})")
        with self._lock:
            before = self._state
            if state == before or (only_lower and state < before):
                return False
            self._state = state
            if state == HALTED:
                self.halted.set()
            else:
                self.halted.clear()
            change = GateChange(
                before=before, after=state, reason=reason, by=by, at_ns=time.time_ns()
            )
            self.history.append(change)
            if len(self.history) > HISTORY_KEPT:  # a flapping state must not grow it for ever
                del self.history[:-HISTORY_KEPT]
        for listener in self._listeners:
            listener(change)
        return True
