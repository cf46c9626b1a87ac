"""The engine's own table of orders and the state machine each order follows.

::

    NEW ──► IN_FLIGHT ──► ACKED ──► PARTIALLY_FILLED ──► FILLED
     │          │           │              │
     │          ├─► UNKNOWN ┴──────────────┴─────────► CANCELED
     │          │      │                                REJECTED
     └──────────┴──────┴── (any of the terminal states, once the venue says so)

``NEW`` is journaled before anything is sent (write-ahead). ``UNKNOWN`` is a send whose
answer never came: the order may or may not exist, and only the venue, asked by client
order id, can tell (``OrderClient.resolve``). A ``NEW`` order found in the journal after a
crash is ``UNKNOWN`` too, because the crash may have come after the send.

Pure on purpose (no I/O, no clock): the manager and recovery drive it, the tests walk it.
An illegal transition is a bug in the caller and raises :class:`IllegalTransitionError`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from engine.execution.models import OrderRequest, OrderState, OrderStatus


class OrderPhase(StrEnum):
    """Where an order is in its life, as far as the engine knows."""

    NEW = "new"
    IN_FLIGHT = "in_flight"
    UNKNOWN = "unknown"
    ACKED = "acked"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"


TERMINAL: Final = frozenset({OrderPhase.FILLED, OrderPhase.CANCELED, OrderPhase.REJECTED})

_P = OrderPhase
TRANSITIONS: Final[Mapping[OrderPhase, frozenset[OrderPhase]]] = {
    # REJECTED from NEW: the gate closed (or the breaker was open) before the send
    _P.NEW: frozenset({_P.IN_FLIGHT, _P.UNKNOWN, _P.REJECTED}),
    _P.IN_FLIGHT: frozenset(
        {_P.UNKNOWN, _P.ACKED, _P.PARTIALLY_FILLED, _P.FILLED, _P.CANCELED, _P.REJECTED}
    ),
    _P.UNKNOWN: frozenset({_P.ACKED, _P.PARTIALLY_FILLED, _P.FILLED, _P.CANCELED, _P.REJECTED}),
    _P.ACKED: frozenset({_P.PARTIALLY_FILLED, _P.FILLED, _P.CANCELED}),
    _P.PARTIALLY_FILLED: frozenset({_P.FILLED, _P.CANCELED}),
    _P.FILLED: frozenset(),
    _P.CANCELED: frozenset(),
    _P.REJECTED: frozenset(),
}

# How far along a phase is; a venue answer never moves an order backwards (an ack that
# arrives after the fills it preceded is old news, not a transition).
_RANK: Final = {
    _P.NEW: 0, _P.IN_FLIGHT: 1, _P.UNKNOWN: 1, _P.ACKED: 2, _P.PARTIALLY_FILLED: 3,
    _P.FILLED: 4, _P.CANCELED: 4, _P.REJECTED: 4,
}  # fmt: skip


class IllegalTransitionError(RuntimeError):
    """An order was asked to move where its state machine does not go (a bug)."""


@dataclass(kw_only=True, slots=True)
class LocalOrder:
    """One order of ours: what was asked, and what is known of its fate.

    Attributes:
        request: what was (or is to be) sent.
        reduce_only: the order may only shrink a position (allowed while REDUCING).
        phase: the state machine's state.
        order_id: the venue's id, once known.
        filled: quantity of our recorded fills.
        reason: why it was rejected or canceled, if it was.
    """

    request: OrderRequest
    reduce_only: bool = False
    phase: OrderPhase = OrderPhase.NEW
    order_id: str | None = None
    filled: Decimal = Decimal(0)
    reason: str | None = None

    @property
    def client_order_id(self) -> str:
        """Return the client order id."""
        return self.request.client_order_id

    @property
    def symbol(self) -> str:
        """Return the unified symbol."""
        return self.request.symbol

    @property
    def terminal(self) -> bool:
        """Return whether nothing more can happen to the order."""
        return self.phase in TERMINAL

    def to(self, phase: OrderPhase, *, reason: str | None = None) -> bool:
        """Move to ``phase``; return False if already there.

        Raises:
            IllegalTransitionError: the state machine has no such edge.
        """
        if phase == self.phase:
            return False
        if phase not in TRANSITIONS[self.phase]:
            raise IllegalTransitionError(
                f"order {self.client_order_id}: {self.phase.value} -> {phase.value} is not allowed"
            )
        self.phase = phase
        if reason is not None:
            self.reason = reason
        return True

    def advance(self, phase: OrderPhase, *, reason: str | None = None) -> bool:
        """Move forward to ``phase`` if it is further along; return whether it moved.

        For facts that may arrive late or out of order (venue answers, journal replay): an
        older fact is ignored, a NEW order is taken as sent first.

        Raises:
            IllegalTransitionError: ``phase`` contradicts a terminal state.
        """
        if _RANK[phase] < _RANK[self.phase] or phase == self.phase:
            return False
        if self.phase is OrderPhase.NEW and phase not in TRANSITIONS[OrderPhase.NEW]:
            self.to(OrderPhase.IN_FLIGHT)
        return self.to(phase, reason=reason)

    def apply_venue(self, state: OrderState) -> bool:
        """Adopt what the venue says about the order; return whether the phase changed.

        Raises:
            IllegalTransitionError: the venue contradicts a terminal state we recorded.
        """
        if state.order_id:
            self.order_id = state.order_id
        phase = phase_of(state, self.request.amount)
        return self.advance(phase, reason=state.status.value if phase in TERMINAL else None)

    def apply_fill(self, qty: Decimal) -> bool:
        """Count a recorded fill of ``qty``; return whether the phase changed.

        A fill may arrive after the cancel that followed it (the trade poll lags), so a
        CANCELED order keeps its phase and only counts the quantity.

        Raises:
            IllegalTransitionError: the fills exceed the order's amount (a venue bug).
        """
        if qty <= 0:
            raise ValueError(f"fill qty must be > 0 (got {qty})")
        self.filled += qty
        if self.filled > self.request.amount:
            raise IllegalTransitionError(
                f"order {self.client_order_id}: filled {self.filled} > amount {self.request.amount}"
            )
        if self.phase in (OrderPhase.CANCELED, OrderPhase.FILLED):
            return False
        if self.filled == self.request.amount:
            return self.to(OrderPhase.FILLED)
        return self.to(OrderPhase.PARTIALLY_FILLED)


def phase_of(state: OrderState, amount: Decimal) -> OrderPhase:
    """Return the phase the venue's view of an order implies."""
    if state.status is OrderStatus.OPEN:
        return OrderPhase.PARTIALLY_FILLED if state.filled > 0 else OrderPhase.ACKED
    if state.status is OrderStatus.CLOSED:
        return OrderPhase.FILLED
    if state.status is OrderStatus.REJECTED:
        return OrderPhase.REJECTED
    # canceled or expired; an expired order that filled completely is reported closed
    return OrderPhase.FILLED if state.filled >= amount else OrderPhase.CANCELED


def request_body(request: OrderRequest, *, reduce_only: bool) -> dict[str, Any]:
    """Return the ORDER_NEW journal body of a request (decimals as strings)."""
    return {
        "symbol": request.symbol,
        "side": request.side,
        "type": request.type,
        "amount": str(request.amount),
        "price": None if request.price is None else str(request.price),
        "time_in_force": request.time_in_force,
        "reduce_only": reduce_only,
    }


def order_from_body(client_order_id: str, body: Mapping[str, Any]) -> LocalOrder:
    """Rebuild a NEW order from its ORDER_NEW journal body.

    Raises:
        ValueError: the body lacks a field or holds a bad value (named in the message).
    """
    try:
        price = body.get("price")
        request = OrderRequest(
            client_order_id=client_order_id,
            symbol=str(body["symbol"]),
            side=body["side"],
            type=body["type"],
            amount=Decimal(str(body["amount"])),
            price=None if price is None else Decimal(str(price)),
            time_in_force=body.get("time_in_force"),
        )
    except KeyError as e:
        raise ValueError(f"ORDER_NEW of {client_order_id} lacks field {e.args[0]!r}") from e
    return LocalOrder(request=request, reduce_only=bool(body.get("reduce_only", False)))


@dataclass(slots=True)
class OrderTable:
    """Every order the engine knows, by client order id and by venue order id.

    Ended orders do not stay for ever: a long-running engine places tens of thousands of
    orders an hour, and every scan of the table ran over all of them (``live`` is read
    after each send). ``live`` scans only the orders not yet seen ended; the ended ones
    are kept until :meth:`evict_ended` drops them, a retention after they were first seen
    ended (the caller passes the time: the table stays free of clocks).
    """

    _orders: dict[str, LocalOrder] = field(default_factory=dict)
    _by_venue_id: dict[str, str] = field(default_factory=dict)
    _live: dict[str, LocalOrder] = field(default_factory=dict)  # not yet seen terminal
    _newly_ended: list[str] = field(default_factory=list)  # seen terminal, not yet stamped
    _ended: deque[tuple[float, str]] = field(default_factory=deque)  # (seen ended at, id)

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[LocalOrder]:
        return iter(list(self._orders.values()))

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._orders

    def add(self, order: LocalOrder) -> LocalOrder:
        """Add a new order.

        Raises:
            ValueError: the client order id is already in the table.
        """
        if order.client_order_id in self._orders:
            raise ValueError(f"client_order_id {order.client_order_id!r} is already in use")
        self._orders[order.client_order_id] = order
        self._live[order.client_order_id] = order
        self.index(order)
        return order

    def index(self, order: LocalOrder) -> None:
        """Remember the order's venue id (call after it is learnt)."""
        if order.order_id:
            self._by_venue_id[order.order_id] = order.client_order_id

    def get(self, client_order_id: str) -> LocalOrder | None:
        """Return the order with this client id, or None."""
        return self._orders.get(client_order_id)

    def by_venue_id(self, order_id: str) -> LocalOrder | None:
        """Return the order with this venue id, or None."""
        client_order_id = self._by_venue_id.get(order_id)
        return None if client_order_id is None else self._orders.get(client_order_id)

    def live(self, symbol: str | None = None) -> list[LocalOrder]:
        """Return the orders not yet terminal (of one symbol, or all)."""
        found, ended = [], []
        for client_order_id, order in self._live.items():
            if order.terminal:
                ended.append(client_order_id)
            elif symbol is None or order.symbol == symbol:
                found.append(order)
        for client_order_id in ended:  # terminal is final: never live again
            del self._live[client_order_id]
        self._newly_ended += ended
        return found

    def evict_ended(
        self, now: float, *, older_than_s: float, keep: Callable[[LocalOrder], bool]
    ) -> list[str]:
        """Drop orders seen ended more than ``older_than_s`` before ``now``; return their ids.

        ``now`` stamps the orders seen ended since the last call. Orders for which
        ``keep`` is true stay for the process's life (liquidation children: a retried
        slice must find its child to answer its outcome instead of sending it again).
        """
        self.live()  # notice the orders that ended since the last scan
        self._ended.extend((now, client_order_id) for client_order_id in self._newly_ended)
        self._newly_ended.clear()
        evicted = []
        while self._ended and self._ended[0][0] <= now - older_than_s:
            _, client_order_id = self._ended.popleft()
            order = self._orders.get(client_order_id)
            if order is None or keep(order):
                continue
            del self._orders[client_order_id]
            if order.order_id and self._by_venue_id.get(order.order_id) == client_order_id:
                del self._by_venue_id[order.order_id]
            evicted.append(client_order_id)
        return evicted

    def pending(self, symbol: str) -> list[LocalOrder]:
        """Return the orders of ``symbol`` whose venue id is not known yet."""
        return [o for o in self.live(symbol) if o.order_id is None]
