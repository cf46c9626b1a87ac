"""Orders at the venue: send with the caller's client order id, resolve lost answers.

The client order id is the order's identity at the venue (Binance ``newClientOrderId``),
so an order can always be found again without its venue id. A send whose answer never
came (timeout, connection cut, 5xx) is an *unknown outcome*: the order may exist. It is
resolved by asking the venue about the client id, never by sending again:

1. ``fetch_order`` with ``origClientOrderId``: found means placed, whatever its state.
2. "Order does not exist" is only believed once the request can no longer arrive late:
   Binance refuses a signed request older than ``recvWindow`` (ccxt: 10 s), so the
   answer is trusted after ``not_found_grace_s`` from the send, and confirmed against the
   open orders before declaring :class:`NotPlaced`.
3. Temporary failures while resolving are polled again, with backoff, within a bounded
   number of polls and time; past that the outcome stays unknown
   (:class:`UnknownOutcomeError`) and the order stays IN_FLIGHT for the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog

from engine.errors import TemporaryError
from engine.execution import metrics
from engine.execution.errors import OrderNotFoundError, UnknownOutcomeError
from engine.execution.gateway import EndpointGroup, VenueGateway
from engine.execution.instruments import Instrument
from engine.execution.models import NotPlaced, OrderRequest, OrderState, order_state

log = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class ResolvePolicy:
    """How an unknown outcome is resolved.

    Attributes:
        max_polls: queries of the venue before giving up (outcome stays unknown).
        poll_interval_s: first wait between polls; doubles up to ``max_interval_s``.
        max_interval_s: cap of the wait between polls.
        not_found_grace_s: time after the send before "not found" is believed (the
            venue's ``recvWindow`` plus a margin for clock skew).
    """

    max_polls: int = 12
    poll_interval_s: float = 0.25
    max_interval_s: float = 4.0
    not_found_grace_s: float = 11.0

    def __post_init__(self) -> None:
        if self.max_polls < 1 or self.poll_interval_s <= 0 or self.not_found_grace_s < 0:
            raise ValueError("need max_polls >= 1, poll_interval_s > 0, not_found_grace_s >= 0")


class OrderClient:
    """Send, cancel, find and resolve orders through a :class:`VenueGateway`.

    Args:
        gateway: the resilient venue access.
        instruments: by symbol; prices and amounts are checked against their grid before
            sending (ccxt would round an off-grid price silently).
        resolve_policy: how unknown outcomes are resolved.
    """

    def __init__(
        self,
        gateway: VenueGateway,
        *,
        instruments: Mapping[str, Instrument],
        resolve_policy: ResolvePolicy | None = None,
    ) -> None:
        self._gateway = gateway
        self._instruments = dict(instruments)
        self._policy = resolve_policy or ResolvePolicy()

    async def create_order(self, request: OrderRequest) -> OrderState:
        """Send ``request`` once (a 429 is retried: the venue refused it unprocessed).

        Raises:
            UnknownOutcomeError: the answer was lost; resolve with :meth:`resolve`.
            OrderRejectedError: the venue refused the order.
            OffGridError: price or amount is not on the instrument's grid.
            EngineError: other translated venue errors.
        """
        instrument = self._instrument(request.symbol)
        instrument.qty_to_lots(request.amount)
        if request.price is not None:
            instrument.price_to_ticks(request.price)
        params: dict[str, Any] = {"newClientOrderId": request.client_order_id}
        if request.time_in_force is not None:
            params["timeInForce"] = request.time_in_force
        price = None if request.price is None else str(request.price)

        async def send(exchange: Any) -> Any:
            return await exchange.create_order(
                request.symbol, request.type, request.side, str(request.amount), price, params
            )

        raw = await self._gateway.request(
            EndpointGroup.ORDERS, "create_order", send, client_order_id=request.client_order_id
        )
        return self._state(raw, request.client_order_id)

    async def submit(self, request: OrderRequest) -> OrderState | NotPlaced:
        """Send ``request``; if the answer is lost, resolve it by client id.

        Raises:
            UnknownOutcomeError: the answer was lost and resolution did not conclude.
            OrderRejectedError: the venue refused the order.
        """
        sent_at = self._gateway.clock.monotonic()
        try:
            return await self.create_order(request)
        except UnknownOutcomeError:
            log.warning(
                "order_outcome_unknown",
                venue=self._gateway.venue,
                client_order_id=request.client_order_id,
                symbol=request.symbol,
            )
            return await self.resolve(request.client_order_id, request.symbol, sent_at=sent_at)

    async def resolve(
        self, client_order_id: str, symbol: str, *, sent_at: float
    ) -> OrderState | NotPlaced:
        """Find out whether an order whose answer was lost exists at the venue.

        Args:
            client_order_id: the id it was sent with.
            symbol: its symbol.
            sent_at: ``clock.monotonic()`` just before the send.

        Returns:
            The order as the venue knows it, or :class:`NotPlaced` when the venue
            confirmed, after the grace period, that it does not know the id.

        Raises:
            UnknownOutcomeError: polls exhausted without a definite answer.
            EngineError: a non-temporary venue error (credentials, protocol).
        """
        clock, venue = self._gateway.clock, self._gateway.venue
        interval = self._policy.poll_interval_s
        for poll in range(1, self._policy.max_polls + 1):
            try:
                order = await self.fetch_order(client_order_id, symbol)
            except OrderNotFoundError:
                if clock.monotonic() - sent_at >= self._policy.not_found_grace_s:
                    found = await self._find_open(client_order_id, symbol)
                    if found is not None:
                        return self._resolved(found, "found_open")
                    metrics.UNKNOWN_OUTCOMES.labels(venue=venue, resolution="not_placed").inc()
                    log.info("order_not_placed", venue=venue, client_order_id=client_order_id)
                    return NotPlaced(client_order_id=client_order_id)
            except TemporaryError as e:
                log.info("order_resolve_retry", venue=venue, poll=poll, error=str(e))
                found = await self._find_open_quietly(client_order_id, symbol)
                if found is not None:
                    return self._resolved(found, "found_open")
            else:
                return self._resolved(order, "found")
            await clock.sleep(interval)
            interval = min(interval * 2, self._policy.max_interval_s)
        metrics.UNKNOWN_OUTCOMES.labels(venue=venue, resolution="unresolved").inc()
        raise UnknownOutcomeError(
            f"{venue}: order {client_order_id} still unknown after {self._policy.max_polls} polls",
            client_order_id=client_order_id,
        )

    async def fetch_order(self, client_order_id: str, symbol: str) -> OrderState:
        """Return the order with this client id.

        Raises:
            OrderNotFoundError: the venue does not know it.
        """
        params = {"origClientOrderId": client_order_id}

        async def fetch(exchange: Any) -> Any:
            return await exchange.fetch_order(None, symbol, params)

        raw = await self._gateway.request(EndpointGroup.ORDERS, "fetch_order", fetch)
        return self._state(raw, client_order_id)

    async def fetch_order_by_venue_id(self, order_id: str, symbol: str) -> OrderState:
        """Return the order the venue numbered ``order_id`` (a trade names only this).

        Raises:
            OrderNotFoundError: the venue does not know it.
        """

        async def fetch(exchange: Any) -> Any:
            return await exchange.fetch_order(order_id, symbol)

        raw = await self._gateway.request(EndpointGroup.ORDERS, "fetch_order", fetch)
        return order_state(raw)

    async def cancel_order(self, client_order_id: str, symbol: str) -> OrderState:
        """Cancel the order with this client id.

        Raises:
            OrderNotFoundError: the venue does not know it (or it is no longer open).
        """
        params = {"origClientOrderId": client_order_id}

        async def cancel(exchange: Any) -> Any:
            return await exchange.cancel_order(None, symbol, params)

        raw = await self._gateway.request(EndpointGroup.ORDERS, "cancel_order", cancel)
        return self._state(raw, client_order_id)

    async def cancel_all(self, symbol: str) -> list[OrderState]:
        """Cancel every open order of ``symbol``; return what was cancelled."""

        async def cancel_all(exchange: Any) -> Any:
            return await exchange.cancel_all_orders(symbol)

        try:
            raw = await self._gateway.request(EndpointGroup.ORDERS, "cancel_all_orders", cancel_all)
        except OrderNotFoundError:
            return []  # Binance answers -2011 "Unknown order" when nothing was open
        return [order_state(o) for o in raw or []]

    async def fetch_open_orders(self, symbol: str) -> list[OrderState]:
        """Return the open orders of ``symbol``."""

        async def fetch(exchange: Any) -> Any:
            return await exchange.fetch_open_orders(symbol)

        raw = await self._gateway.request(EndpointGroup.ORDERS, "fetch_open_orders", fetch)
        return [order_state(o) for o in raw]

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise ValueError(f"symbol {symbol!r} is not a configured instrument") from None

    def _state(self, raw: Any, client_order_id: str) -> OrderState:
        state = order_state(raw)
        if not state.client_order_id:
            # some answers (a cancel ack) omit it; we know which order we asked about
            state = replace(state, client_order_id=client_order_id)
        return state

    def _resolved(self, order: OrderState, how: str) -> OrderState:
        metrics.UNKNOWN_OUTCOMES.labels(venue=self._gateway.venue, resolution=how).inc()
        log.info(
            "order_outcome_resolved",
            venue=self._gateway.venue,
            client_order_id=order.client_order_id,
            status=order.status.value,
            how=how,
        )
        return order

    async def _find_open(self, client_order_id: str, symbol: str) -> OrderState | None:
        for order in await self.fetch_open_orders(symbol):
            if order.client_order_id == client_order_id:
                return order
        return None

    async def _find_open_quietly(self, client_order_id: str, symbol: str) -> OrderState | None:
        try:
            return await self._find_open(client_order_id, symbol)
        except TemporaryError:
            return None
