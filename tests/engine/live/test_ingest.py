"""The engine decides market data in the callback that delivered it, timed from ccxt's hand-over.

The engine here is a stand-in holding what ``LiveEngine._ingest`` reads (a real trading
gate; a decision that is recorded or fails on cue): the whole path runs against the
simulator in ``test_engine``; these pin the rule itself.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.execution import ccxt_time
from engine.live.engine import LiveEngine
from engine.live.gate import ACTIVE, HALTED, GateChange, TradingGate


def _engine(decide: object) -> SimpleNamespace:
    return SimpleNamespace(gate=TradingGate(), _decide_now=decide, _last_data_ns=0)


def test_data_is_decided_at_once_with_the_hand_over_as_its_receive_time() -> None:
    decided: list[tuple[int, int]] = []
    added: list[int] = []
    fake = _engine(lambda ccxt_ns: decided.append((len(added), ccxt_ns)))
    stamp = ccxt_time.mark_hand_over()
    LiveEngine._ingest(fake, added.append)  # type: ignore[arg-type]
    assert added == [stamp[0]]  # the latency clock started when ccxt handed the data over
    # decided in the same call, after the data was added, with ccxt's counter at hand-over
    assert decided == [(1, stamp[1])]
    assert fake.gate.effective == ACTIVE


def test_a_failing_decision_halts_the_engine_and_fails_the_feed() -> None:
    def broken(_ccxt_ns: int) -> None:
        raise RuntimeError("kernel state corrupt")

    fake = _engine(broken)
    changes: list[GateChange] = []
    fake.gate.on_change(changes.append)
    with pytest.raises(RuntimeError, match="kernel state corrupt"):
        LiveEngine._ingest(fake, lambda _: None)  # type: ignore[arg-type]
    assert fake.gate.effective == HALTED  # no new orders, every resting one canceled
    assert [(c.reason, c.by) for c in changes] == [("decision failed: kernel state corrupt",
                                                     "engine")]  # fmt: skip
