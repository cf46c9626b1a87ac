"""The order state machine (pure) and the order manager against PostgreSQL and the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import asyncpg
import pytest

from engine.execution import OrderClient, OrderRequest, OrderState, OrderStatus
from engine.execution.models import Side
from engine.journal import FencedError, FillRecord
from engine.live.gate import HALTED, REDUCING
from engine.live.order_table import (
    IllegalTransitionError,
    LocalOrder,
    OrderPhase,
    OrderTable,
)
from engine.live.orders import OrderManager, OrderManagerConfig
from tests.engine.live.harness import (
    Rig,
    clear_faults,
    resting_price,
    rig,
    set_fault,
    venue_client_ids,
)
from tests.stubs.exchange_sim import ThreadedSim, sim_config

P = OrderPhase
REQUEST = OrderRequest(
    client_order_id="blue-1-1", symbol="BTC/USDT", side="buy", type="limit",
    amount=Decimal("0.01"), price=Decimal("50000"),
)  # fmt: skip


def venue_state(status: OrderStatus, filled: str = "0") -> OrderState:
    return OrderState(
        client_order_id="blue-1-1", order_id="7", symbol="BTC/USDT", side="buy", type="limit",
        status=status, price=Decimal("50000"), amount=Decimal("0.01"), filled=Decimal(filled),
        timestamp_ms=1,
    )  # fmt: skip


# --- the state machine ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        [P.IN_FLIGHT, P.ACKED, P.PARTIALLY_FILLED, P.FILLED],
        [P.IN_FLIGHT, P.ACKED, P.CANCELED],
        [P.IN_FLIGHT, P.REJECTED],
        [P.IN_FLIGHT, P.UNKNOWN, P.ACKED],
        [P.IN_FLIGHT, P.UNKNOWN, P.REJECTED],
        [P.REJECTED],  # the gate closed before the send
        [P.UNKNOWN, P.FILLED],  # recovery: a NEW order may have been sent
    ],
)
def test_legal_paths_are_walked(path: list[OrderPhase]) -> None:
    order = LocalOrder(request=REQUEST)
    for phase in path:
        assert order.to(phase)
    assert order.phase is path[-1]


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], P.ACKED),  # never acked without being sent
        ([P.IN_FLIGHT, P.ACKED], P.REJECTED),
        ([P.IN_FLIGHT, P.ACKED, P.FILLED], P.CANCELED),
        ([P.IN_FLIGHT, P.REJECTED], P.ACKED),
        ([P.IN_FLIGHT, P.ACKED, P.CANCELED], P.ACKED),
        ([P.IN_FLIGHT, P.ACKED], P.NEW),
    ],
)
def test_illegal_transitions_raise(path: list[OrderPhase], illegal: OrderPhase) -> None:
    order = LocalOrder(request=REQUEST)
    for phase in path:
        order.to(phase)
    with pytest.raises(IllegalTransitionError, match="blue-1-1"):
        order.to(illegal)


def test_a_late_ack_does_not_move_a_filled_order_back() -> None:
    order = LocalOrder(request=REQUEST, phase=P.IN_FLIGHT)
    assert order.apply_fill(Decimal("0.01"))
    assert not order.apply_venue(venue_state(OrderStatus.OPEN))
    assert order.phase is P.FILLED
    assert order.order_id == "7"


def test_fills_drive_partial_then_filled_and_refuse_overfill() -> None:
    order = LocalOrder(request=REQUEST, phase=P.ACKED)
    order.apply_fill(Decimal("0.004"))
    assert (order.phase, order.filled) == (P.PARTIALLY_FILLED, Decimal("0.004"))
    order.apply_fill(Decimal("0.006"))
    assert (order.phase, order.filled) == (P.FILLED, Decimal("0.01"))
    with pytest.raises(IllegalTransitionError, match="filled"):
        order.apply_fill(Decimal("0.001"))


def test_a_fill_after_the_cancel_is_counted_without_reviving_the_order() -> None:
    order = LocalOrder(request=REQUEST, phase=P.ACKED)
    order.apply_venue(venue_state(OrderStatus.CANCELED))
    order.apply_fill(Decimal("0.002"))
    assert (order.phase, order.filled) == (P.CANCELED, Decimal("0.002"))


def test_venue_contradicting_a_terminal_state_raises() -> None:
    order = LocalOrder(request=REQUEST, phase=P.ACKED)
    order.apply_venue(venue_state(OrderStatus.CLOSED, "0.01"))
    with pytest.raises(IllegalTransitionError):
        order.apply_venue(venue_state(OrderStatus.CANCELED, "0.005"))


def test_table_refuses_a_reused_client_id_and_finds_by_venue_id() -> None:
    table = OrderTable()
    order = table.add(LocalOrder(request=REQUEST))
    with pytest.raises(ValueError, match="client_order_id"):
        table.add(LocalOrder(request=REQUEST))
    assert table.pending("BTC/USDT") == [order]
    order.to(P.IN_FLIGHT)
    order.apply_venue(venue_state(OrderStatus.OPEN))
    table.index(order)
    assert table.by_venue_id("7") is order
    assert table.pending("BTC/USDT") == []


def _order(client_order_id: str, order_id: str) -> LocalOrder:
    request = OrderRequest(
        client_order_id=client_order_id, symbol="BTC/USDT", side="buy", type="limit",
        amount=Decimal("0.01"), price=Decimal("50000"),
    )  # fmt: skip
    return LocalOrder(request=request, phase=P.IN_FLIGHT, order_id=order_id)


def test_ended_orders_leave_memory_after_their_retention_and_children_stay() -> None:
    table = OrderTable()
    quote = table.add(_order("blue-1-1", "1"))
    child = table.add(_order("liq-0123456789-0-0", "2"))
    resting = table.add(_order("blue-1-2", "3"))
    quote.to(P.CANCELED)
    child.to(P.FILLED)
    is_child = lambda order: order.client_order_id.startswith("liq-")  # noqa: E731

    assert table.live() == [resting]  # ended orders are no longer scanned
    assert table.evict_ended(100.0, older_than_s=5.0, keep=is_child) == []  # seen ended at 100
    assert table.evict_ended(104.9, older_than_s=5.0, keep=is_child) == []  # still within
    assert table.get("blue-1-1") is quote  # a late fill still finds its order
    assert table.evict_ended(105.0, older_than_s=5.0, keep=is_child) == ["blue-1-1"]
    assert table.get("blue-1-1") is None
    assert table.by_venue_id("1") is None
    assert "blue-1-1" not in table
    assert table.get("liq-0123456789-0-0") is child  # a retried slice finds its child
    assert table.by_venue_id("2") is child
    assert table.get("blue-1-2") is resting  # live orders are never dropped
    resting.to(P.CANCELED)
    assert table.evict_ended(200.0, older_than_s=5.0, keep=is_child) == []  # first seen now
    assert table.evict_ended(205.0, older_than_s=5.0, keep=is_child) == ["blue-1-2"]
    assert len(table) == 1


# --- the manager, against PostgreSQL and the simulator ---------------------------------


@pytest.fixture
def port() -> Iterator[int]:
    """A fresh, quiet simulator per test: its account history is this test's alone."""
    with ThreadedSim(sim_config()) as sim:
        yield sim.config.port


@pytest.fixture
async def live(dsn: str, port: int) -> AsyncIterator[Rig]:
    async with rig(dsn, port) as r:
        yield r


async def kinds(pool: asyncpg.Pool, cid: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT kind FROM journal_events WHERE client_order_id = $1 ORDER BY seq", cid
    )
    return [r["kind"] for r in rows]


def test_client_ids_are_deterministic_and_fit_binance(live: Rig) -> None:
    manager = live.manager
    ids = [manager.next_client_order_id() for _ in range(3)]
    assert ids == [f"blue-{manager.epoch}-{n}" for n in (1, 2, 3)]
    with pytest.raises(ValueError, match="instance"):
        OrderManager(
            client=live.venue.orders, account=live.venue.account, committer=live.committer,
            gate=live.gate, instruments={}, instance="far-too-long-name", epoch=1,
        )  # fmt: skip


async def test_order_new_is_durable_before_the_venue_sees_the_order(live: Rig) -> None:
    seen: list[tuple[list[str], list[str]]] = []

    class Probe(OrderClient):
        async def create_order(self, request: OrderRequest) -> OrderState:
            journaled = await kinds(live.pool, request.client_order_id)
            at_venue = await venue_client_ids(live.venue, request.symbol)
            seen.append((journaled, at_venue))
            return await super().create_order(request)

    live.manager.client = Probe(live.venue.rest, instruments=live.venue.instruments)
    price = await resting_price(live.venue, "BTC/USDT", side="buy")
    order = await live.manager.submit(
        symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.001"), price=price
    )
    assert seen == [(["order_new"], [])]
    assert order.phase is P.ACKED
    assert await kinds(live.pool, order.client_order_id) == ["order_new", "order_acked"]


async def test_a_lost_answer_ends_neither_lost_nor_duplicated(live: Rig, port: int) -> None:
    price = await resting_price(live.venue, "BTC/USDT", side="buy")
    await set_fault(port, "lost_answer", count=1)
    order = await live.manager.submit(
        symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.001"), price=price
    )
    assert order.phase is P.ACKED
    assert (await venue_client_ids(live.venue, "BTC/USDT")).count(order.client_order_id) == 1
    assert await kinds(live.pool, order.client_order_id) == [
        "order_new", "order_unknown", "order_acked",
    ]  # fmt: skip


async def test_an_unknown_order_resolved_by_two_paths_at_once_is_journaled_once(
    live: Rig, port: int
) -> None:
    price = await resting_price(live.venue, "BTC/USDT", side="buy")
    await set_fault(port, "error_rate", share=1.0)  # 503 before anything: never placed
    try:
        send = asyncio.create_task(live.manager.submit(
            symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.001"), price=price
        ))  # fmt: skip
        unknown: list[LocalOrder] = []
        for _ in range(100):  # the send lost its answer and now resolves it (503s still)
            unknown = [o for o in live.manager.table.live() if o.phase is P.UNKNOWN]
            if unknown:
                break
            await asyncio.sleep(0.05)
        (order,) = unknown
        # meanwhile the poll loop resolves the same order (what poll_once does)
        poll = asyncio.create_task(live.manager.resolve(order))
        await asyncio.sleep(0.2)
    finally:
        await clear_faults(port)
    await asyncio.wait_for(asyncio.gather(send, poll), 30)
    await live.manager.resolve(order)  # and once more afterwards: nothing left to learn
    assert order.phase is P.REJECTED
    assert await kinds(live.pool, order.client_order_id) == [
        "order_new", "order_unknown", "order_rejected",
    ]  # fmt: skip


async def test_a_halt_stops_sends_already_queued(dsn: str, port: int) -> None:
    async with rig(dsn, port, config=OrderManagerConfig(max_in_flight=1)) as live:
        await _halt_while_queued(live, port)


async def _halt_while_queued(live: Rig, port: int) -> None:
    price = await resting_price(live.venue, "BTC/USDT", side="buy")
    await set_fault(port, "latency", ms=150)
    amount = Decimal("0.001")
    sends = [
        asyncio.create_task(
            live.manager.submit(
                symbol="BTC/USDT", side="buy", type="limit", amount=amount, price=price
            )
        )
        for _ in range(5)
    ]
    await asyncio.sleep(0.1)  # the first send is at the venue, the others queue behind it
    live.gate.lower(HALTED, reason="test", by="test")
    orders = await asyncio.gather(*sends)
    rejected = [o for o in orders if o.phase is P.REJECTED]
    assert len(rejected) >= 3
    assert all(o.reason == "trading state HALTED" for o in rejected)
    at_venue = await venue_client_ids(live.venue, "BTC/USDT")
    assert not {o.client_order_id for o in rejected} & set(at_venue)


async def test_a_fill_found_after_its_order_was_forgotten_puts_it_back_not_new(
    dsn: str, port: int
) -> None:
    config = OrderManagerConfig(poll_interval_s=0.05, ended_retention_s=0)  # forget at once
    async with rig(dsn, port, config=config) as live:
        amount = live.venue.instruments["BTC/USDT"].lots_to_qty(30)
        order = await live.manager.submit(
            symbol="BTC/USDT", side="buy", type="market", amount=amount
        )
        assert order.phase is P.FILLED  # ended: its fills not polled yet (a slow fill poll)
        live.manager._forget_ended()
        assert live.manager.table.get(order.client_order_id) is None
        assert live.manager.forgotten == 1

        assert await live.manager.poll_fills() >= 1

        journaled = await kinds(live.pool, order.client_order_id)
        assert journaled.count("order_new") == 1, journaled  # put back, not adopted again
        stored = await live.pool.fetch("SELECT client_order_id, qty FROM fills")
        assert {r["client_order_id"] for r in stored} == {order.client_order_id}
        assert sum(r["qty"] for r in stored) == amount
        back = live.manager.table.get(order.client_order_id)
        assert back is not None
        assert back.filled == amount
        assert await live.manager.poll_fills() == 0


async def test_reducing_state_sends_reduce_only_orders_only(live: Rig) -> None:
    live.gate.lower(REDUCING, reason="test", by="test")
    amount = live.venue.instruments["BTC/USDT"].lots_to_qty(20)
    grow = await live.manager.submit(symbol="BTC/USDT", side="buy", type="market", amount=amount)
    shrink = await live.manager.submit(
        symbol="BTC/USDT", side="sell", type="market", amount=amount, reduce_only=True
    )
    assert (grow.phase, shrink.phase) == (P.REJECTED, P.FILLED)


async def test_fills_are_journaled_once_and_move_positions_with_versions(live: Rig) -> None:
    btc = live.venue.instruments["BTC/USDT"]
    heard: list[FillRecord] = []

    def hear(record: FillRecord, *, maker: bool) -> None:
        heard.append(record)

    live.manager.on_fill = hear
    sides: tuple[tuple[Side, int], ...] = (("buy", 300), ("sell", 100))
    for side, lots in sides:
        await live.manager.submit(
            symbol="BTC/USDT", side=side, type="market", amount=btc.lots_to_qty(lots)
        )
    assert await live.manager.poll_fills() >= 2
    assert await live.manager.poll_fills() == 0
    venue_fills = await live.venue.account.fetch_fills("BTC/USDT", after_trade_id=0)
    stored = await live.pool.fetch("SELECT trade_id, qty FROM fills ORDER BY trade_id::bigint")
    assert [r["trade_id"] for r in stored] == [str(f.trade_id) for f in venue_fills]
    assert [r.trade_id for r in heard] == [r["trade_id"] for r in stored]
    records = await live.pool.fetch("SELECT * FROM fills")
    assert len(records) == len(venue_fills)
    row = await live.pool.fetchrow("SELECT qty, version FROM positions WHERE symbol = 'BTC/USDT'")
    position = live.manager.positions["BTC/USDT"]
    assert row is not None
    assert row["qty"] == position.qty
    assert row["version"] == 1  # one optimistic update per poll that found fills
    assert position.qty == btc.lots_to_qty(200) - sum(f.fee for f in venue_fills if f.side == "buy")
    assert live.manager.snapshot().positions["BTC/USDT"]["qty"] == str(position.qty)
    await live.manager.submit(
        symbol="BTC/USDT", side="sell", type="market", amount=btc.lots_to_qty(100)
    )
    await live.manager.poll_fills()
    row = await live.pool.fetchrow("SELECT qty, version FROM positions WHERE symbol = 'BTC/USDT'")
    assert row is not None
    assert (row["qty"], row["version"]) == (live.manager.positions["BTC/USDT"].qty, 2)


async def test_cancel_all_cancels_every_open_order_of_ours_and_verifies(live: Rig) -> None:
    for symbol in ("BTC/USDT", "ETH/USDT"):
        price = await resting_price(live.venue, symbol, side="buy")
        amount = live.venue.instruments[symbol].lots_to_qty(100)
        for _ in range(2):
            await live.manager.submit(
                symbol=symbol, side="buy", type="limit", amount=amount, price=price
            )
    assert live.manager.snapshot().open_orders == 4
    report = await live.manager.cancel_all()
    assert len(report.canceled) == 4
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert await live.venue.orders.fetch_open_orders(symbol) == []
    assert live.manager.snapshot().open_orders == 0
    canceled = await live.pool.fetchval(
        "SELECT count(*) FROM journal_events WHERE kind = 'order_canceled'"
    )
    assert canceled == 4


async def test_a_fenced_manager_sends_nothing(live: Rig) -> None:
    # another engine took over (a forced takeover: our lease had not expired)
    await live.pool.execute("UPDATE engine_leases SET holder = 'green', epoch = epoch + 1")
    with pytest.raises(FencedError):
        await live.manager.submit(
            symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.001")
        )
    assert await venue_client_ids(live.venue, "BTC/USDT") == []


async def test_a_fill_that_does_not_fit_its_order_still_moves_the_position_once(
    live: Rig,
) -> None:
    """A bug's symptom (a fill beyond its order) must not stop fills being journaled."""
    from datetime import UTC, datetime

    order = await live.manager.submit(
        symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.001")
    )
    await live.manager.poll_fills()
    before = live.manager.positions["BTC/USDT"].qty
    stray = FillRecord(
        venue="binance", trade_id="999999", client_order_id=order.client_order_id,
        symbol="BTC/USDT", side="buy", price=Decimal("50000"), qty=Decimal("0.001"),
        fee=Decimal(0), fee_asset=None, traded_at=datetime.now(UTC),
    )  # fmt: skip
    await live.manager.record_fills([stray])  # the order is filled already: does not fit
    assert live.manager.positions["BTC/USDT"].qty == before + Decimal("0.001")
    rows = await live.pool.fetch("SELECT trade_id FROM fills WHERE trade_id = '999999'")
    assert len(rows) == 1
