from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.exchange_sim.config import DEFAULT_SPECS
from infra.exchange_sim.engine import MatchingEngine, NewOrder
from infra.exchange_sim.errors import FilterError, OrderRejectedError, UnknownOrderError, VenueError
from infra.exchange_sim.ledger import FEE_ACCOUNT
from infra.exchange_sim.models import OrderStatus, OrderType, Side, TimeInForce

BTC = "BTCUSDT"
UNIT = 10**8


def engine() -> MatchingEngine:
    eng = MatchingEngine(
        DEFAULT_SPECS.values(),
        maker_fee=Decimal("0.001"),
        taker_fee=Decimal("0.002"),
        clock=lambda: 1,
    )
    for name in ("a", "b", "c"):
        eng.ledger.credit(name, "USDT", 1_000_000 * UNIT)
        eng.ledger.credit(name, "BTC", 10 * UNIT)
    return eng


def limit(
    account: str,
    side: Side,
    price: int,
    qty: int,
    *,
    time_in_force: TimeInForce = TimeInForce.GTC,
    client_order_id: str | None = None,
) -> NewOrder:
    return NewOrder(
        account=account,
        symbol=BTC,
        side=side,
        type=OrderType.LIMIT,
        price=price,
        qty=qty,
        time_in_force=time_in_force,
        client_order_id=client_order_id,
    )


def test_resting_buy_locks_quote_and_cancel_releases_it() -> None:
    eng = engine()
    out = eng.place(limit("a", Side.BUY, 5_000_000, 100))  # 0.001 BTC at 50000.00
    assert out.order is not None
    assert out.order.status is OrderStatus.NEW
    assert eng.ledger.account("a").locked["USDT"] == 50 * UNIT
    eng.cancel("a", BTC, order_id=out.order.order_id, client_order_id=None)
    assert eng.ledger.account("a").locked["USDT"] == 0
    assert eng.ledger.account("a").free["USDT"] == 1_000_000 * UNIT


def test_price_time_priority_fills_oldest_order_at_best_price_first() -> None:
    eng = engine()
    first = eng.place(limit("a", Side.SELL, 6_000_000, 100)).order
    second = eng.place(limit("b", Side.SELL, 6_000_000, 100)).order
    better = eng.place(limit("c", Side.SELL, 5_999_999, 100)).order
    assert first is not None
    assert second is not None
    assert better is not None
    out = eng.place(limit("c", Side.BUY, 6_000_000, 150))
    assert [f.maker_order_id for f in out.fills] == [better.order_id, first.order_id]
    assert first.status is OrderStatus.PARTIALLY_FILLED
    assert second.status is OrderStatus.NEW


def test_taker_buy_pays_maker_price_and_fees_in_received_asset() -> None:
    eng = engine()
    eng.place(limit("b", Side.SELL, 6_000_000, 100))
    out = eng.place(limit("a", Side.BUY, 6_100_000, 100))
    fill = out.fills[0]
    assert fill.price == 6_000_000
    assert fill.buyer_fee == 100_000 * 2 // 1000  # taker 0.2% of 0.001 BTC, in BTC units
    assert fill.seller_fee == 60 * UNIT // 1000  # maker 0.1% of 60 USDT
    a = eng.ledger.account("a")
    assert a.free["USDT"] == (1_000_000 - 60) * UNIT
    assert a.locked["USDT"] == 0
    assert a.free["BTC"] == 10 * UNIT + 100_000 - fill.buyer_fee


def test_post_only_that_would_cross_is_rejected() -> None:
    eng = engine()
    eng.place(limit("b", Side.SELL, 6_000_000, 100))
    with pytest.raises(OrderRejectedError, match="immediately match"):
        eng.place(
            NewOrder(
                account="a",
                symbol=BTC,
                side=Side.BUY,
                type=OrderType.LIMIT_MAKER,
                price=6_000_000,
                qty=100,
            )
        )


def test_ioc_fills_what_it_can_and_expires_the_rest() -> None:
    eng = engine()
    eng.place(limit("b", Side.SELL, 6_000_000, 100))
    out = eng.place(limit("a", Side.BUY, 6_000_000, 300, time_in_force=TimeInForce.IOC))
    assert out.order is not None
    assert (out.order.filled, out.order.status) == (100, OrderStatus.EXPIRED)
    assert eng.ledger.account("a").locked["USDT"] == 0


def test_fok_without_enough_liquidity_expires_without_trading() -> None:
    eng = engine()
    eng.place(limit("b", Side.SELL, 6_000_000, 100))
    out = eng.place(limit("a", Side.BUY, 6_000_000, 300, time_in_force=TimeInForce.FOK))
    assert out.order is not None
    assert out.order.status is OrderStatus.EXPIRED
    assert not out.fills
    full = eng.place(limit("a", Side.BUY, 6_000_000, 100, time_in_force=TimeInForce.FOK))
    assert full.order is not None
    assert full.order.status is OrderStatus.FILLED


def test_market_buy_walks_the_book_and_expires_unfilled_rest() -> None:
    eng = engine()
    eng.place(limit("b", Side.SELL, 6_000_000, 100))
    eng.place(limit("b", Side.SELL, 6_000_100, 100))
    out = eng.place(
        NewOrder(account="a", symbol=BTC, side=Side.BUY, type=OrderType.MARKET, qty=300)
    )
    assert out.order is not None
    assert [f.price for f in out.fills] == [6_000_000, 6_000_100]
    assert out.order.status is OrderStatus.EXPIRED
    assert out.order.filled == 200


def test_duplicate_client_id_of_open_order_is_rejected_but_reusable_after_close() -> None:
    eng = engine()
    out = eng.place(limit("a", Side.BUY, 5_000_000, 100, client_order_id="x1"))
    with pytest.raises(OrderRejectedError, match="Duplicate order sent"):
        eng.place(limit("a", Side.BUY, 5_000_000, 100, client_order_id="x1"))
    eng.place(limit("b", Side.BUY, 5_000_000, 100, client_order_id="x1"))  # other account
    assert out.order is not None
    eng.cancel("a", BTC, order_id=None, client_order_id="x1")
    eng.place(limit("a", Side.BUY, 5_000_000, 100, client_order_id="x1"))


def test_insufficient_balance_and_filters_refuse_without_changes() -> None:
    eng = engine()
    with pytest.raises(OrderRejectedError, match="insufficient balance"):
        eng.place(limit("a", Side.BUY, 5_000_000, 10_000_000))
    with pytest.raises(FilterError, match="NOTIONAL"):
        eng.place(limit("a", Side.BUY, 100, 1))
    with pytest.raises(FilterError, match="LOT_SIZE"):
        eng.place(limit("a", Side.BUY, 5_000_000, 0))
    assert eng.ledger.account("a").locked.get("USDT", 0) == 0
    assert not eng.orders


def test_cancel_of_unknown_or_closed_order_is_unknown_order() -> None:
    eng = engine()
    with pytest.raises(UnknownOrderError):
        eng.cancel("a", BTC, order_id=42, client_order_id=None)


def test_halted_symbol_refuses_orders() -> None:
    eng = engine()
    eng.halted = {BTC}
    with pytest.raises(FilterError, match="Market is closed"):
        eng.place(limit("a", Side.BUY, 5_000_000, 100))


orders = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(list(Side)),
        st.sampled_from(list(OrderType)),
        st.sampled_from(list(TimeInForce)),
        st.integers(5_990_000, 6_010_000),
        st.integers(1, 3_000),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(orders)
def test_matching_keeps_book_uncrossed_balances_conserved_and_fills_bounded(
    commands: list[tuple[str, Side, OrderType, TimeInForce, int, int, bool]],
) -> None:
    eng = engine()
    totals = {asset: eng.ledger.total(asset) for asset in ("USDT", "BTC")}
    for account, side, otype, tif, price, qty, cancel_first in commands:
        if cancel_first and eng.open_orders(account, BTC):
            victim = eng.open_orders(account, BTC)[0]
            eng.cancel(account, BTC, order_id=victim.order_id, client_order_id=None)
        with contextlib.suppress(VenueError):
            eng.place(
                NewOrder(
                    account=account,
                    symbol=BTC,
                    side=side,
                    type=otype,
                    price=price,
                    qty=qty,
                    time_in_force=tif,
                )
            )
        assert not eng.books[BTC].crossed()
        for order in eng.orders.values():
            assert 0 <= order.filled <= order.qty
    for asset, total in totals.items():
        assert eng.ledger.total(asset) == total
    for name, balances in eng.ledger.accounts.items():
        assert all(v >= 0 for v in balances.free.values()), name
        expected_locked = sum(o.locked for o in eng.open_orders(name, BTC) if (o.side is Side.BUY))
        assert balances.locked.get("USDT", 0) == expected_locked
    assert eng.ledger.account(FEE_ACCOUNT).free.get("USDT", 0) >= 0


def test_trade_ids_count_per_symbol_like_binance() -> None:
    """Clients detect missed trades per symbol stream, so ids must be consecutive per symbol."""
    eng = engine()
    ids: dict[str, list[int]] = {}
    for spec in list(DEFAULT_SPECS.values()) * 2:
        for name in ("a", "b"):
            eng.ledger.credit(name, spec.base, 1_000 * UNIT)
        price = 100_000  # 1000.00 on every default symbol's 0.01 tick grid
        qty = int(Decimal("0.1") / spec.step_size)
        for account, side in (("a", Side.SELL), ("b", Side.BUY)):
            out = eng.place(
                NewOrder(
                    account=account,
                    symbol=spec.symbol,
                    side=side,
                    type=OrderType.LIMIT,
                    price=price,
                    qty=qty,
                    time_in_force=TimeInForce.GTC,
                )
            )
        ids.setdefault(spec.symbol, []).extend(f.trade_id for f in out.fills)
    assert len(ids) == 3
    assert all(trade_ids == [1, 2] for trade_ids in ids.values()), ids
