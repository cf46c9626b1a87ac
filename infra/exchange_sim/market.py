"""A living market: correlated random-walk fundamentals and background agents.

Liquidity providers quote ladders around each fundamental and re-quote as it moves; noise
traders send market orders across the spread. Both go through the same venue (and so the
same matching engine, store and streams) as any client. Everything random comes from one
seeded generator, so a seed gives the same sequence of agent decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from decimal import Decimal
from typing import Final

import numpy as np
import structlog

from infra.exchange_sim.engine import NewOrder
from infra.exchange_sim.errors import VenueError
from infra.exchange_sim.models import OrderType, Side, TimeInForce
from infra.exchange_sim.venue import Venue

log = structlog.get_logger(__name__)

LP_ACCOUNT: Final = "agent-liquidity"
NOISE_ACCOUNT: Final = "agent-noise"
STEP_S: Final = 0.1
LEVELS: Final = 10
HALF_SPREAD: Final = 0.0002  # 2 bps each side of the fundamental
LEVEL_GAP: Final = 0.0002
CORRELATION: Final = 0.75
YEAR_S: Final = 365 * 24 * 3600
AGENT_BALANCE: Final = Decimal("1000000000")


class LivingMarket:
    """Fundamentals and agents of every symbol of a venue."""

    def __init__(self, venue: Venue, *, seed: int, orders_per_s: float) -> None:
        self.venue = venue
        self.orders_per_s = orders_per_s
        self.rng = np.random.default_rng(seed)
        self.symbols = [spec.symbol for spec in venue.config.symbols]
        specs = venue.config.symbols
        self.fundamental = np.array([float(spec.start_price) for spec in specs])
        self.volatility = np.array([spec.volatility for spec in specs])
        n = len(specs)
        corr = np.full((n, n), CORRELATION) + np.eye(n) * (1 - CORRELATION)
        self.cholesky = np.linalg.cholesky(corr)
        self._carry = 0.0

    def ensure_agents(self) -> None:
        """Fund agent accounts and quote initial ladders where the agents have none."""
        ledger = self.venue.engine.ledger
        if LP_ACCOUNT not in ledger.accounts:
            assets = {spec.base for spec in self.venue.config.symbols}
            assets |= {spec.quote for spec in self.venue.config.symbols}
            for account in (LP_ACCOUNT, NOISE_ACCOUNT):
                self.venue.fund(account, dict.fromkeys(sorted(assets), AGENT_BALANCE))
        for index, symbol in enumerate(self.symbols):
            if not self.venue.engine.open_orders(LP_ACCOUNT, symbol):
                for level in range(LEVELS):
                    for side in (Side.BUY, Side.SELL):
                        self._quote(index, side, level)

    def _quote(self, index: int, side: Side, level: int) -> None:
        symbol = self.symbols[index]
        market = self.venue.engine.markets[symbol]
        offset = HALF_SPREAD + LEVEL_GAP * level
        sign = -1 if side is Side.BUY else 1
        price = self.fundamental[index] * (1 + sign * offset)
        tick = float(market.spec.tick_size)
        ticks = math.floor(price / tick) if side is Side.BUY else math.ceil(price / tick)
        # Never cross: a quote the fundamental would put through the book joins it instead,
        # so the ladder refills both sides whatever the walk did.
        best = self.venue.engine.books[symbol].opposite(side).best()
        if best is not None:
            ticks = min(ticks, best - 1) if side is Side.BUY else max(ticks, best + 1)
        notional = float(self.rng.uniform(2_000, 40_000))
        lots = max(market.min_lots, int(notional / price / float(market.spec.step_size)))
        self._submit(
            NewOrder(
                account=LP_ACCOUNT,
                symbol=symbol,
                side=side,
                type=OrderType.LIMIT_MAKER,
                qty=lots,
                price=ticks,
                time_in_force=TimeInForce.GTC,
            )
        )

    def _submit(self, new: NewOrder) -> None:
        try:
            self.venue.place(new)
        except VenueError as e:
            # A quote that would cross or a halted symbol is part of market life.
            log.debug("agent_order_refused", symbol=new.symbol, code=e.code, reason=e.msg)

    def walk(self, dt_s: float) -> None:
        """Advance every fundamental one correlated log-normal step."""
        shocks = self.cholesky @ self.rng.standard_normal(len(self.symbols))
        # Scaled up so prices visibly move within a test or demo run.
        sigma = self.volatility * math.sqrt(dt_s / YEAR_S) * 10
        self.fundamental *= np.exp(sigma * shocks - 0.5 * sigma**2)

    def act(self) -> None:
        """Let one agent act: add a quote (replacing the oldest when full), or cross."""
        index = int(self.rng.integers(len(self.symbols)))
        symbol = self.symbols[index]
        if self.rng.random() < 0.7:
            mine = self.venue.engine.open_orders(LP_ACCOUNT, symbol)
            # Cancel the oldest only when the ladder is full: market orders eat levels,
            # and a re-quote that always replaced one would let them empty the book.
            if len(mine) >= 2 * LEVELS:
                oldest = mine[0]
                with contextlib.suppress(VenueError):
                    self.venue.cancel(
                        LP_ACCOUNT, symbol, order_id=oldest.order_id, client_order_id=None
                    )
            # Re-quote the thinner side, so noise traders cannot empty one side for good.
            bids = sum(1 for o in mine if o.side is Side.BUY)
            side = Side.BUY if bids * 2 < len(mine) else Side.SELL
            if bids * 2 == len(mine):
                side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
            self._quote(index, side, int(self.rng.integers(LEVELS)))
            return
        market = self.venue.engine.markets[symbol]
        notional = float(self.rng.uniform(50, 3_000))
        lots = max(
            market.min_lots,
            int(notional / self.fundamental[index] / float(market.spec.step_size)),
        )
        side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
        self._submit(
            NewOrder(
                account=NOISE_ACCOUNT, symbol=symbol, side=side, type=OrderType.MARKET, qty=lots
            )
        )

    def tick(self) -> int:
        """Advance the market one step; return how many agent actions ran."""
        self.walk(STEP_S)
        self._carry += self.orders_per_s * STEP_S
        actions = int(self._carry)
        self._carry -= actions
        for _ in range(actions):
            self.act()
        return actions

    async def run(self) -> None:
        """Tick forever (cancelled on shutdown)."""
        while True:
            await asyncio.sleep(STEP_S)
            self.tick()
