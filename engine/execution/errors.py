"""Errors of the exchange adapter: the venue leaves of the engine's error tree.

::

    EngineError                              (engine/errors.py)
     ├── TemporaryError                      retry with backoff
     │    ├── RateLimitedError               wait retry_after_s first, then retry
     │    ├── CircuitOpenError               fail fast: the endpoint group is cooling down
     │    └── SequenceGapError               the stream skipped updates: resync the book
     ├── RequestRejectedError                do not retry this request as is
     │    ├── OrderRejectedError             the venue refused the order
     │    │    └── InsufficientFundsError    ... because the account lacks the funds
     │    └── OrderNotFoundError             the venue does not know this order
     ├── UnknownOutcomeError                 a send whose answer never came: resolve it by
     │                                       client order id, never by sending again
     └── OperationalError                    halt, page someone
          ├── AuthenticationFailedError      keys wrong, expired or lacking permission
          └── VenueProtocolError             the venue broke its contract (a bug somewhere)

ccxt's exceptions are translated into this tree in one place only
(``engine/execution/translate.py``), always chained with ``raise ... from e``. Messages
never carry secrets: the translation boundary redacts them.
"""

from __future__ import annotations

from engine.errors import (
    EngineError,
    OperationalError,
    RequestRejectedError,
    TemporaryError,
)


class RateLimitedError(TemporaryError):
    """The venue throttled us (HTTP 429/418 or its rate-limit error code).

    Attributes:
        retry_after_s: how long the venue asked us to wait (its ``Retry-After``), or our
            default when it did not say.
    """

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CircuitOpenError(TemporaryError):
    """The circuit breaker of this venue endpoint group is open: the call was not sent.

    Attributes:
        retry_after_s: time left until the breaker lets one probe through.
    """

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SequenceGapError(TemporaryError):
    """A market-data stream skipped updates (Binance ``U != previous u + 1``): resync."""


class OrderRejectedError(RequestRejectedError):
    """The venue refused the order (filters, price band, unknown symbol...)."""


class InsufficientFundsError(OrderRejectedError):
    """The venue refused the order because the account lacks the funds."""


class OrderNotFoundError(RequestRejectedError):
    """The venue does not know the order (by venue id or client order id)."""


class UnknownOutcomeError(EngineError):
    """A request was sent but its answer never came: it may or may not have taken effect.

    The order stays IN_FLIGHT; resolve it by client order id
    (:meth:`engine.execution.OrderClient.resolve`), never by sending it again.

    Attributes:
        client_order_id: the id the order was sent with.
    """

    def __init__(self, message: str, *, client_order_id: str) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id


class AuthenticationFailedError(OperationalError):
    """The venue refused our credentials or their permissions."""


class VenueProtocolError(OperationalError):
    """The venue broke its contract, or we called it wrongly (not supported, bad arguments)."""
