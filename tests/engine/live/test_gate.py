"""The trading gate: anyone lowers, only operators raise, halts are visible to threads."""

from __future__ import annotations

import threading

import pytest

from engine.live.gate import ACTIVE, HALTED, HISTORY_KEPT, REDUCING, GateChange, TradingGate


def test_lowering_is_one_way_and_raising_needs_the_operator_path() -> None:
    gate = TradingGate()
    seen: list[GateChange] = []
    gate.on_change(seen.append)
    assert gate.lower(REDUCING, reason="journal down", by="journal")
    assert not gate.lower(ACTIVE, reason="journal back", by="journal")  # lower cannot raise
    assert gate.state == REDUCING
    assert gate.allows_reducing_orders()
    assert not gate.allows_new_orders()
    assert gate.lower(HALTED, reason="kill switch", by="operator")
    assert gate.halted.is_set()
    assert not gate.allows_reducing_orders()
    assert gate.raise_to(ACTIVE, reason="all clear", by="alice")
    assert not gate.halted.is_set()
    assert [c.names for c in seen] == [
        ("ACTIVE", "REDUCING"), ("REDUCING", "HALTED"), ("HALTED", "ACTIVE")
    ]  # fmt: skip
    assert seen[1].by == "operator"


def test_a_halt_from_another_thread_is_seen_at_once() -> None:
    gate = TradingGate()
    thread = threading.Thread(target=gate.lower, args=(HALTED,),
                              kwargs={"reason": "x", "by": "safety"})  # fmt: skip
    thread.start()
    assert gate.halted.wait(5.0)
    thread.join()
    assert gate.name == "HALTED"


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="trading state"):
        TradingGate(7)
    with pytest.raises(ValueError, match="trading state"):
        TradingGate().lower(9, reason="x", by="y")


def test_holds_lower_the_effective_state_only_while_they_last() -> None:
    gate = TradingGate()
    assert gate.hold("venue", REDUCING)
    assert not gate.hold("venue", REDUCING)  # already held
    assert gate.effective == REDUCING
    assert gate.state == ACTIVE
    assert not gate.allows_new_orders()
    assert gate.allows_reducing_orders()
    gate.hold("journal", HALTED)
    assert not gate.allows_reducing_orders()
    assert gate.release("journal")
    assert gate.release("venue")
    assert not gate.release("venue")
    assert gate.effective == ACTIVE  # cleared by itself: no operator needed
    assert gate.history == []  # holds are not changes of the state
    with pytest.raises(ValueError, match="hold"):
        gate.hold("x", ACTIVE)


def test_history_keeps_the_last_changes_only() -> None:
    gate = TradingGate()
    for n in range(HISTORY_KEPT + 10):  # a flapping state: one change per call
        gate.raise_to(REDUCING if n % 2 == 0 else ACTIVE, reason=f"flap {n}", by="test")
    assert len(gate.history) == HISTORY_KEPT
    assert gate.history[-1].reason == f"flap {HISTORY_KEPT + 9}"  # the newest are kept
