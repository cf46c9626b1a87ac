"""One symbol's limit order book: price levels in price-time priority.

Each level is a FIFO of resting orders. Every change bumps the book's update id and marks
the level as changed, which is what the ``@depth`` diff stream publishes (absolute level
quantities, Binance's semantics).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator

from infra.exchange_sim.models import Order, Side


class BookSide:
    """Resting orders of one side, levels kept sorted by price (ascending)."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.prices: list[int] = []
        self.levels: dict[int, deque[Order]] = {}
        self.quantities: dict[int, int] = {}

    def best(self) -> int | None:
        """Return the best price (highest bid, lowest ask), or None when empty."""
        if not self.prices:
            return None
        return self.prices[-1] if self.side is Side.BUY else self.prices[0]

    def add(self, order: Order) -> None:
        """Append an order at the back of its level's queue."""
        level = self.levels.get(order.price)
        if level is None:
            bisect.insort(self.prices, order.price)
            level = self.levels[order.price] = deque()
            self.quantities[order.price] = 0
        level.append(order)
        self.quantities[order.price] += order.remaining

    def reduce(self, price: int, lots: int) -> None:
        """Take ``lots`` off a level's total (a fill of an order at that level)."""
        self.quantities[price] -= lots

    def remove(self, order: Order) -> None:
        """Remove an order (filled or cancelled) from its level."""
        level = self.levels[order.price]
        level.remove(order)
        self.quantities[order.price] -= order.remaining
        if not level:
            self._drop_level(order.price)

    def pop_front(self, price: int) -> None:
        """Drop the fully filled order at the front of a level."""
        level = self.levels[price]
        level.popleft()
        if not level:
            self._drop_level(price)

    def _drop_level(self, price: int) -> None:
        del self.levels[price]
        del self.quantities[price]
        self.prices.pop(bisect.bisect_left(self.prices, price))

    def depth(self, limit: int) -> list[tuple[int, int]]:
        """Return up to ``limit`` (price, lots) levels, best first."""
        ordered = reversed(self.prices) if self.side is Side.BUY else iter(self.prices)
        out: list[tuple[int, int]] = []
        for price in ordered:
            if len(out) >= limit:
                break
            out.append((price, self.quantities[price]))
        return out

    def walk(self) -> Iterator[tuple[int, deque[Order]]]:
        """Yield (price, queue) from the best level outwards."""
        ordered = list(reversed(self.prices)) if self.side is Side.BUY else list(self.prices)
        for price in ordered:
            yield price, self.levels[price]

    def quantity_at(self, price: int) -> int:
        """Return the lots resting at ``price`` (0 if none)."""
        return self.quantities.get(price, 0)


class OrderBook:
    """Both sides of one symbol plus the update id the depth stream numbers diffs with."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)
        self.update_id = 0
        # Levels changed since the depth publisher last drained them.
        self.changed: set[tuple[Side, int]] = set()
        self.first_pending_id: int | None = None

    def side(self, side: Side) -> BookSide:
        """Return the side orders of ``side`` rest on."""
        return self.bids if side is Side.BUY else self.asks

    def opposite(self, side: Side) -> BookSide:
        """Return the side an order of ``side`` trades against."""
        return self.asks if side is Side.BUY else self.bids

    def touch(self, side: Side, price: int) -> None:
        """Record a change of one level: a new update id for the diff stream."""
        self.update_id += 1
        if self.first_pending_id is None:
            self.first_pending_id = self.update_id
        self.changed.add((side, price))

    def crossed(self) -> bool:
        """Whether best bid >= best ask (never true after matching)."""
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid >= ask

    def drain_changes(self) -> tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]] | None:
        """Return (first id, last id, bid levels, ask levels) changed since the last drain.

        Levels carry their absolute quantity now, 0 for a removed level.
        """
        if self.first_pending_id is None:
            return None
        bids = sorted(
            ((p, self.bids.quantity_at(p)) for s, p in self.changed if s is Side.BUY),
            reverse=True,
        )
        asks = sorted((p, self.asks.quantity_at(p)) for s, p in self.changed if s is Side.SELL)
        first, last = self.first_pending_id, self.update_id
        self.changed.clear()
        self.first_pending_id = None
        return first, last, bids, asks
