"""The unwind reads the leader's positions again before it calls a symbol done.

The leader here is scripted (``ScriptedLeader``): it stands in for an engine that journals
a fill *after* the unwind's last child answered (a desk quote whose cancel failed in a
venue outage, filled meanwhile). A real engine cannot be made to do that on cue, and the
race is what this test is about. Everything else is real: the activity runs in
Temporal's activity environment (heartbeats and all), and sizes and prices each child on
the live book of a real exchange simulator read through ccxt.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from bot4.settings import ExchangeSettings
from tests.stubs.exchange_sim import ThreadedSim, sim_config
from tests.stubs.liquidation import LOT, SYMBOL
from workflows.liquidation.activities import LiquidationActivities, LiquidationConfig
from workflows.liquidation.models import SymbolPosition, UnwindInput, UnwindResult

pytestmark = pytest.mark.timeout(120)
LEADER = "http://leader.invalid"


class ScriptedLeader(LiquidationActivities):
    """A leader long ``lots`` that fills every child in full and, once, journals
    ``late_lots`` more after the position first reached zero."""

    def __init__(self, config: LiquidationConfig, *, lots: int, late_lots: int) -> None:
        super().__init__(config)
        self.lots, self.late_lots = lots, late_lots
        self.children: list[tuple[str, int, int]] = []  # (client id, lots, position after)
        self.reads: list[int] = []

    async def leader(self) -> tuple[str, dict[str, Any]]:
        return LEADER, {"role": "leader"}

    async def admin(self, url: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert url == LEADER
        if action == "reduce":
            self.reads.append(self.lots)
            return {"positions": {SYMBOL: {"lots": self.lots}}}
        assert action == "child_order", action
        assert payload["side"] == "sell"
        lots = int(Decimal(payload["qty"]) / LOT)
        assert 0 < lots <= self.lots, (lots, self.lots)  # reduce-only: never through flat
        self.lots -= lots
        self.children.append((payload["client_order_id"], lots, self.lots))
        if self.lots == 0 and self.late_lots:
            self.lots, self.late_lots = self.late_lots, 0  # journaled after the answer below
            position = 0
        else:
            position = self.lots
        return {"position_lots": position, "filled": str(LOT * lots), "sent": True,
                "status": "filled", "avg_price": payload["limit_price"]}  # fmt: skip


@pytest.fixture
def market() -> Iterator[int]:
    with ThreadedSim(sim_config(agent_orders_per_s=20.0)) as sim:
        yield sim.config.port


async def _unwind(leader: ScriptedLeader, lots: int) -> UnwindResult:
    request = UnwindInput(
        child_prefix="liq-0123456789", by="test", mode="twap", max_participation=0.1,
        positions=(SymbolPosition(symbol=SYMBOL, qty=str(LOT * lots), mid=""),),
        deadline_at=datetime.now(UTC) + timedelta(seconds=60), band_bps=500,
        slice_interval_ms=20,
    )  # fmt: skip
    result: UnwindResult = await ActivityEnvironment().run(leader.unwind, request)
    return result


def _config(port: int) -> LiquidationConfig:
    return LiquidationConfig(
        dsn="postgresql://unused.invalid/bot4", control_token="unused", engines=(),
        exchange=ExchangeSettings(port=port, symbols=(SYMBOL,)),
        min_notional=0.0, heartbeat_every_s=0.2,
    )  # fmt: skip


async def test_a_fill_journaled_after_the_last_child_is_sold_before_done(market: int) -> None:
    leader = ScriptedLeader(_config(market), lots=20, late_lots=15)

    result = await _unwind(leader, 20)

    assert result.stopped == "done", result
    (leg,) = result.symbols
    assert Decimal(leg.remaining) == 0
    assert sum(lots for _, lots, _ in leader.children) == 35  # the 20, then the late 15
    assert leader.lots == 0
    assert leader.reads[-1] == 0  # the last read found it flat
    ids = [cid for cid, _, _ in leader.children]
    assert len(ids) == len(set(ids))  # a new client id for every child


async def test_a_flat_leader_is_read_once_more_and_nothing_else_is_sent(market: int) -> None:
    leader = ScriptedLeader(_config(market), lots=12, late_lots=0)

    result = await _unwind(leader, 12)

    assert result.stopped == "done", result
    assert sum(lots for _, lots, _ in leader.children) == 12
    assert leader.reads == [12, 0]  # the start, then the check after the settle pause
