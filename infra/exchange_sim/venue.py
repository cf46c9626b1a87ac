"""The venue: engine, store and streams behind one door.

Every change is persisted and published the same way whether a client or a background
agent caused it.

It also runs the dead-man's switch (``countdownCancelAll``): a per account and symbol
deadline that, when not refreshed in time, cancels that account's open orders there.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from decimal import Decimal

import structlog

from infra.exchange_sim.config import SimConfig
from infra.exchange_sim.engine import MatchingEngine, NewOrder
from infra.exchange_sim.faults import FaultBoard, HaltSymbol
from infra.exchange_sim.formats import (
    account_position_event,
    execution_report,
    trade_event,
)
from infra.exchange_sim.ledger import FEE_ACCOUNT
from infra.exchange_sim.models import Fill, Outcome
from infra.exchange_sim.store import Store
from infra.exchange_sim.streams import Hub
from infra.exchange_sim.units import str_to_units

log = structlog.get_logger(__name__)

RECENT_TRADES = 1000


class Venue:
    """State of the exchange and the operations that change it."""

    def __init__(self, config: SimConfig, *, clock: Callable[[], int], hub: Hub) -> None:
        self.config = config
        self.clock = clock
        self.hub = hub
        self.faults = FaultBoard()
        self.engine = MatchingEngine(
            config.symbols, maker_fee=config.maker_fee, taker_fee=config.taker_fee, clock=clock
        )
        self.store = Store(config.state_dir)
        self.recent: dict[str, collections.deque[Fill]] = {
            spec.symbol: collections.deque(maxlen=RECENT_TRADES) for spec in config.symbols
        }
        self.countdowns: dict[tuple[str, str], int] = {}
        self._load()

    def _load(self) -> None:
        if self.store.is_empty():
            for account in self.config.accounts:
                self.fund(account.name, account.balances)
            log.info("exchange_sim_state_created", state_dir=str(self.config.state_dir))
        else:
            self.store.load_into(self.engine)
            log.info(
                "exchange_sim_state_loaded",
                next_order_id=self.engine.next_order_id,
                next_trade_ids=self.engine.next_trade_ids,
            )
        for symbol, recent in self.recent.items():
            recent.extend(self.store.recent_trades(symbol, RECENT_TRADES))

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def fund(self, account: str, balances: dict[str, Decimal]) -> None:
        """Credit an account (initial balances of demo and agent accounts)."""
        for asset, amount in balances.items():
            self.engine.ledger.credit(account, asset, str_to_units(amount))
        self.store.save_balances(self.engine, {account})

    # -- commands ------------------------------------------------------------------------

    def place(self, new: NewOrder) -> Outcome:
        """Place an order (refused on a halted symbol), persist and publish the outcome.

        Raises:
            VenueError: the order is refused.
        """
        halt = self.faults.get(HaltSymbol)
        self.engine.halted = {halt.symbol} if halt is not None else set()
        outcome = self.engine.place(new)
        self._commit(outcome)
        return outcome

    def cancel(
        self, account: str, symbol: str, *, order_id: int | None, client_order_id: str | None
    ) -> Outcome:
        """Cancel one order, persist and publish.

        Raises:
            VenueError: unknown order.
        """
        outcome = self.engine.cancel(
            account, symbol, order_id=order_id, client_order_id=client_order_id
        )
        self._commit(outcome)
        return outcome

    def cancel_all(self, account: str, symbol: str) -> Outcome:
        """Cancel an account's open orders on a symbol, persist and publish."""
        outcome = self.engine.cancel_all(account, symbol)
        self._commit(outcome)
        return outcome

    def set_countdown(self, account: str, symbol: str, countdown_ms: int) -> None:
        """Arm, refresh or (with 0) disarm the dead-man's switch of an account and symbol."""
        key = (account, symbol)
        if countdown_ms == 0:
            self.countdowns.pop(key, None)
        else:
            self.countdowns[key] = self.clock() + countdown_ms

    def fire_countdowns(self) -> list[tuple[str, str]]:
        """Cancel open orders of every switch whose deadline passed; return which fired."""
        now = self.clock()
        fired = [key for key, deadline in self.countdowns.items() if deadline <= now]
        for account, symbol in fired:
            del self.countdowns[(account, symbol)]
            outcome = self.cancel_all(account, symbol)
            log.warning(
                "countdown_cancel_all_fired",
                account=account,
                symbol=symbol,
                cancelled=len(outcome.events),
            )
        return fired

    # -- publishing ----------------------------------------------------------------------

    def _commit(self, outcome: Outcome) -> None:
        self.store.save(self.engine, outcome)
        now = self.clock()
        markets = self.engine.markets
        for fill in outcome.fills:
            self.recent[fill.symbol].append(fill)
            symbol = fill.symbol.lower()
            self.hub.publish_market(f"{symbol}@trade", trade_event(fill, markets[fill.symbol], now))
        for event in outcome.events:
            market = markets[event.order.symbol]
            self.hub.publish_user(event.order.account, execution_report(event, market, now))
        for account in outcome.accounts - {FEE_ACCOUNT}:
            if self.hub.has_user(account):
                balances = self.engine.ledger.account(account)
                self.hub.publish_user(account, account_position_event(balances, now))
