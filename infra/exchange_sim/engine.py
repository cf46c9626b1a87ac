"""The matching engine: price-time priority, balance locking, fees. Pure: no I/O, no clock.

Design choices, stated once:

- Every command is synchronous and atomic: it either raises a :class:`VenueError` having
  changed nothing, or returns an :class:`Outcome` listing every order change and fill.
- A buy locks ``limit price x quantity`` of quote (a market buy locks the exact cost of
  walking the book, which is what it then pays); a sell locks its base quantity. Leftover
  locks (price improvement, cancel, expiry) return to free when the order closes.
- Fees are charged in the asset received (Binance's default without BNB) and credited to
  :data:`FEE_ACCOUNT`, so the total of each asset over all accounts is conserved exactly.
- Self-trades are allowed (Binance's ``selfTradePreventionMode=NONE``): the background
  market and a lone test account may trade with themselves; balances stay consistent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from infra.exchange_sim.book import OrderBook
from infra.exchange_sim.config import SymbolSpec
from infra.exchange_sim.errors import (
    DUPLICATE_ORDER,
    MARKET_CLOSED,
    ORDER_MISSING,
    UNKNOWN_ORDER,
    WOULD_TAKE,
    BadRequestError,
    FilterError,
    OrderRejectedError,
    UnknownOrderError,
)
from infra.exchange_sim.ledger import FEE_ACCOUNT, Ledger
from infra.exchange_sim.models import (
    ExecutionType,
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Outcome,
    Side,
    TimeInForce,
)
from infra.exchange_sim.units import Market

PPM = 1_000_000


@dataclass(frozen=True, kw_only=True, slots=True)
class NewOrder:
    """A new-order command, already in ticks and lots."""

    account: str
    symbol: str
    side: Side
    type: OrderType
    qty: int
    price: int = 0
    time_in_force: TimeInForce = TimeInForce.GTC
    client_order_id: str | None = None


class MatchingEngine:
    """Books, orders and balances of every account; one command at a time."""

    def __init__(
        self,
        specs: Iterable[SymbolSpec],
        *,
        maker_fee: Decimal,
        taker_fee: Decimal,
        clock: Callable[[], int],
    ) -> None:
        self.markets = {spec.symbol: Market(spec) for spec in specs}
        self.books = {symbol: OrderBook(symbol) for symbol in self.markets}
        self.ledger = Ledger()
        self.orders: dict[int, Order] = {}
        self.halted: set[str] = set()
        self.next_order_id = 1
        # Binance numbers trades per symbol; clients detect gaps per symbol stream.
        self.next_trade_ids = dict.fromkeys(self.markets, 1)
        self._maker_ppm = int(maker_fee * PPM)
        self._taker_ppm = int(taker_fee * PPM)
        self._clock = clock
        self._open_by_client: dict[tuple[str, str, str], int] = {}
        self._last_by_client: dict[tuple[str, str, str], int] = {}

    # -- queries -------------------------------------------------------------------------

    def market(self, symbol: str) -> Market:
        """Return a listed market.

        Raises:
            BadRequestError: the symbol is not listed (-1121).
        """
        market = self.markets.get(symbol)
        if market is None:
            raise BadRequestError(-1121, "Invalid symbol.")
        return market

    def find(
        self, account: str, symbol: str, *, order_id: int | None, client_order_id: str | None
    ) -> Order | None:
        """Return an account's order by id or client id (the newest with that client id)."""
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is None or order.account != account or order.symbol != symbol:
                return None
            return order
        if client_order_id is not None:
            found = self._last_by_client.get((account, symbol, client_order_id))
            return None if found is None else self.orders[found]
        return None

    def open_orders(self, account: str, symbol: str | None = None) -> list[Order]:
        """Return an account's open orders, oldest first."""
        return [
            self.orders[i]
            for (acct, sym, _), i in sorted(self._open_by_client.items(), key=lambda kv: kv[1])
            if acct == account and (symbol is None or sym == symbol)
        ]

    # -- commands ------------------------------------------------------------------------

    def place(self, new: NewOrder) -> Outcome:
        """Validate, lock, match and (for GTC limits) rest a new order.

        Raises:
            VenueError: the order is refused; nothing changed.
        """
        market = self.market(new.symbol)
        if new.symbol in self.halted:
            raise FilterError(MARKET_CLOSED)
        book = self.books[new.symbol]
        market.check_filters(new.type, new.price, new.qty, book.opposite(new.side).best())
        if new.client_order_id is not None and (
            (new.account, new.symbol, new.client_order_id) in self._open_by_client
        ):
            raise OrderRejectedError(DUPLICATE_ORDER)
        opposite = book.opposite(new.side)
        best = opposite.best()
        if new.type is OrderType.LIMIT_MAKER and best is not None and self._crosses(new, best):
            raise OrderRejectedError(WOULD_TAKE)
        lock_asset, lock_units = self._lock_for(new, market)
        self.ledger.lock(new.account, lock_asset, lock_units)

        order_id = self.next_order_id
        self.next_order_id += 1
        now = self._clock()
        order = Order(
            order_id=order_id,
            account=new.account,
            symbol=new.symbol,
            client_order_id=new.client_order_id or f"sim-{order_id}",
            side=new.side,
            type=new.type,
            time_in_force=new.time_in_force,
            price=new.price if new.type is not OrderType.MARKET else 0,
            qty=new.qty,
            time_ms=now,
            locked=lock_units,
            update_ms=now,
        )
        self.orders[order_id] = order
        key = (order.account, order.symbol, order.client_order_id)
        self._last_by_client[key] = order_id
        outcome = Outcome(order=order, events=[], fills=[], accounts={order.account}, symbols=set())
        outcome.events.append(OrderEvent(order=order.snapshot(), execution=ExecutionType.NEW))

        if new.time_in_force is TimeInForce.FOK and self._fillable(order) < order.qty:
            self._close(order, OrderStatus.EXPIRED, outcome)
            return outcome
        self._match(order, market, book, outcome)
        if order.remaining == 0:
            self._close(order, OrderStatus.FILLED, outcome, event=False)
        elif order.type is OrderType.MARKET or order.time_in_force is not TimeInForce.GTC:
            self._close(order, OrderStatus.EXPIRED, outcome)
        else:
            book.side(order.side).add(order)
            book.touch(order.side, order.price)
            self._open_by_client[key] = order_id
            outcome.symbols.add(order.symbol)
        return outcome

    def cancel(
        self, account: str, symbol: str, *, order_id: int | None, client_order_id: str | None
    ) -> Outcome:
        """Cancel one open order.

        Raises:
            UnknownOrderError: no such open order (-2011).
        """
        self.market(symbol)
        order = self.find(account, symbol, order_id=order_id, client_order_id=client_order_id)
        if order is None or not order.status.is_open:
            raise UnknownOrderError(-2011, UNKNOWN_ORDER)
        outcome = Outcome(order=order, events=[], fills=[], accounts={account}, symbols={symbol})
        self._cancel(order, outcome)
        return outcome

    def cancel_all(self, account: str, symbol: str) -> Outcome:
        """Cancel every open order of an account on a symbol (none is fine)."""
        self.market(symbol)
        outcome = Outcome(events=[], fills=[], accounts={account}, symbols={symbol})
        for order in self.open_orders(account, symbol):
            self._cancel(order, outcome)
        return outcome

    def restore(self, order: Order) -> None:
        """Put a persisted order back (open ones into the book); used on restart."""
        self.orders[order.order_id] = order
        key = (order.account, order.symbol, order.client_order_id)
        self._last_by_client[key] = order.order_id
        if order.status.is_open:
            book = self.books[order.symbol]
            book.side(order.side).add(order)
            book.touch(order.side, order.price)
            self._open_by_client[key] = order.order_id
        self.next_order_id = max(self.next_order_id, order.order_id + 1)

    def order_missing(self) -> UnknownOrderError:
        """Return the error a query for an unknown order gets (-2013)."""
        return UnknownOrderError(-2013, ORDER_MISSING)

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _crosses(order: NewOrder | Order, best: int) -> bool:
        return best <= order.price if order.side is Side.BUY else best >= order.price

    def _lock_for(self, new: NewOrder, market: Market) -> tuple[str, int]:
        spec = market.spec
        if new.side is Side.SELL:
            return spec.base, new.qty * market.base_per_lot
        if new.type is not OrderType.MARKET:
            return spec.quote, new.price * new.qty * market.quote_per_tick_lot
        # A market buy locks exactly what walking the book will cost it.
        cost, left = 0, new.qty
        for price, level in self.books[new.symbol].asks.walk():
            take = min(left, sum(o.remaining for o in level))
            cost += price * take * market.quote_per_tick_lot
            left -= take
            if left == 0:
                break
        return spec.quote, cost

    def _fillable(self, order: Order) -> int:
        lots = 0
        for price, level in self.books[order.symbol].opposite(order.side).walk():
            if not self._crosses(order, price):
                break
            lots += sum(o.remaining for o in level)
            if lots >= order.qty:
                break
        return lots

    def _match(self, taker: Order, market: Market, book: OrderBook, outcome: Outcome) -> None:
        opposite = book.opposite(taker.side)
        while taker.remaining > 0:
            best = opposite.best()
            if best is None or (
                taker.type is not OrderType.MARKET and not self._crosses(taker, best)
            ):
                return
            maker = opposite.levels[best][0]
            lots = min(taker.remaining, maker.remaining)
            fill = self._settle(taker, maker, market, price=best, lots=lots)
            opposite.reduce(best, lots)
            book.touch(opposite.side, best)
            outcome.fills.append(fill)
            outcome.accounts.update((maker.account, FEE_ACCOUNT))
            outcome.symbols.add(taker.symbol)
            if maker.remaining == 0:
                opposite.pop_front(best)
                del self._open_by_client[(maker.account, maker.symbol, maker.client_order_id)]
                self._close(maker, OrderStatus.FILLED, outcome, event=False)
            else:
                maker.status = OrderStatus.PARTIALLY_FILLED
            taker.status = (
                OrderStatus.FILLED if taker.remaining == 0 else OrderStatus.PARTIALLY_FILLED
            )
            for order in (maker, taker):
                outcome.events.append(
                    OrderEvent(order=order.snapshot(), execution=ExecutionType.TRADE, fill=fill)
                )

    def _settle(self, taker: Order, maker: Order, market: Market, *, price: int, lots: int) -> Fill:
        spec = market.spec
        base_units = lots * market.base_per_lot
        quote_units = price * lots * market.quote_per_tick_lot
        buyer, seller = (taker, maker) if taker.side is Side.BUY else (maker, taker)
        buyer_ppm = self._maker_ppm if buyer is maker else self._taker_ppm
        seller_ppm = self._maker_ppm if seller is maker else self._taker_ppm
        buyer_fee = base_units * buyer_ppm // PPM
        seller_fee = quote_units * seller_ppm // PPM
        ledger = self.ledger
        ledger.spend_locked(buyer.account, spec.quote, quote_units)
        buyer.locked -= quote_units
        ledger.credit(buyer.account, spec.base, base_units - buyer_fee)
        ledger.credit(FEE_ACCOUNT, spec.base, buyer_fee)
        ledger.spend_locked(seller.account, spec.base, base_units)
        seller.locked -= base_units
        ledger.credit(seller.account, spec.quote, quote_units - seller_fee)
        ledger.credit(FEE_ACCOUNT, spec.quote, seller_fee)
        now = self._clock()
        for order in (maker, taker):
            order.filled += lots
            order.quote_filled += quote_units
            order.update_ms = now
        trade_id = self.next_trade_ids[taker.symbol]
        self.next_trade_ids[taker.symbol] = trade_id + 1
        return Fill(
            trade_id=trade_id,
            symbol=taker.symbol,
            price=price,
            qty=lots,
            quote_qty=quote_units,
            time_ms=now,
            maker_order_id=maker.order_id,
            taker_order_id=taker.order_id,
            buyer_account=buyer.account,
            seller_account=seller.account,
            buyer_order_id=buyer.order_id,
            seller_order_id=seller.order_id,
            buyer_is_maker=buyer is maker,
            buyer_fee=buyer_fee,
            seller_fee=seller_fee,
        )

    def _cancel(self, order: Order, outcome: Outcome) -> None:
        book = self.books[order.symbol]
        book.side(order.side).remove(order)
        book.touch(order.side, order.price)
        del self._open_by_client[(order.account, order.symbol, order.client_order_id)]
        self._close(order, OrderStatus.CANCELED, outcome)

    def _close(
        self, order: Order, status: OrderStatus, outcome: Outcome, *, event: bool = True
    ) -> None:
        """Give a closing order its final status and return its leftover lock."""
        if order.locked:
            market = self.markets[order.symbol]
            asset = market.spec.quote if order.side is Side.BUY else market.spec.base
            self.ledger.unlock(order.account, asset, order.locked)
            order.locked = 0
        order.status = status
        order.update_ms = self._clock()
        outcome.accounts.add(order.account)
        if event:
            execution = ExecutionType(status.value)
            outcome.events.append(OrderEvent(order=order.snapshot(), execution=execution))
