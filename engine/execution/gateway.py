"""The gateway: every REST call to the venue goes through :meth:`VenueGateway.request`.

One attempt is: circuit breaker admits it → pace against the venue's weight → call ccxt →
translate whatever ccxt raised into the engine's tree (once, here) → tell the breaker.
Attempts are wrapped in the retry policy, so only temporary errors are retried, with
backoff and full jitter, within bounded attempts and time.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import structlog

from engine.errors import EngineError, TemporaryError
from engine.execution import metrics
from engine.execution.breaker import BreakerConfig, CircuitBreaker
from engine.execution.ccxt_time import mark_request_start, timed
from engine.execution.clock import Clock, SystemClock
from engine.execution.errors import CircuitOpenError, RateLimitedError, UnknownOutcomeError
from engine.execution.ratelimit import RateLimitConfig, WeightTracker
from engine.execution.retry import RetryPolicy, call_with_retry
from engine.execution.translate import Redactor, translate

log = structlog.get_logger(__name__)

T = TypeVar("T")


class EndpointGroup(StrEnum):
    """Endpoints that fail together share one circuit breaker."""

    MARKET_DATA = "market_data"
    ORDERS = "orders"
    ACCOUNT = "account"


@dataclass(frozen=True, kw_only=True, slots=True)
class GatewayConfig:
    """Resilience settings of a gateway."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)


class VenueGateway:
    """Typed, resilient access to one ccxt client.

    Args:
        exchange: a ccxt async client (REST or ccxt.pro); the gateway closes it.
        venue: ccxt id, for labels and messages.
        secrets: strings never to let into a message (API key and secret).
        config: retry, breaker and rate-limit settings.
        clock: time source.
        rng: jitter source (tests pass a seeded one).
    """

    def __init__(
        self,
        exchange: Any,
        *,
        venue: str,
        secrets: Iterable[str],
        config: GatewayConfig | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.exchange = exchange
        self.venue = venue
        self.config = config or GatewayConfig()
        self.clock: Clock = clock or SystemClock()
        self.redact = Redactor(secrets)
        self.weights = WeightTracker(venue=venue, config=self.config.rate_limit, clock=self.clock)
        self._rng = rng
        self._breakers = {
            group: CircuitBreaker(
                venue=venue,
                endpoint_group=group.value,
                config=self.config.breaker,
                clock=self.clock,
            )
            for group in EndpointGroup
        }
        self._hook_responses()

    def breaker(self, group: EndpointGroup) -> CircuitBreaker:
        """Return the circuit breaker of ``group``."""
        return self._breakers[group]

    async def close(self) -> None:
        """Close the ccxt client (its HTTP session and websockets)."""
        await self.exchange.close()

    def translate(
        self, error: BaseException, operation: str, *, client_order_id: str | None = None
    ) -> EngineError | None:
        """Translate a ccxt exception (REST or websocket) into the engine's tree.

        Returns None for exceptions that are not the venue's (bugs, cancellation).
        """
        return translate(
            error,
            venue=self.venue,
            operation=operation,
            redact=self.redact,
            retry_after_s=self.weights.retry_after_s()
            or self.config.rate_limit.default_retry_after_s,
            client_order_id=client_order_id,
        )

    async def request(
        self,
        group: EndpointGroup,
        operation: str,
        call: Callable[[Any], Awaitable[T]],
        *,
        retry: bool = True,
        client_order_id: str | None = None,
    ) -> T:
        """Call ccxt through breaker, pacing, translation and (optionally) retries.

        Args:
            group: endpoint group (selects the circuit breaker).
            operation: name for messages and logs, e.g. ``fetch_open_orders``.
            call: receives the ccxt client and makes one request.
            retry: retry temporary errors with the gateway's policy.
            client_order_id: set for an order send: a lost answer then raises
                :class:`UnknownOutcomeError` (never retried).

        Raises:
            EngineError: the translated venue error (chained to ccxt's).
        """
        policy = self.config.retry if retry else _single_attempt(self.config.retry)

        async def attempt() -> T:
            return await self._attempt(group, operation, call, client_order_id)

        return await call_with_retry(
            attempt,
            policy=policy,
            clock=self.clock,
            venue=self.venue,
            endpoint_group=group.value,
            rng=self._rng,
        )

    async def _attempt(
        self,
        group: EndpointGroup,
        operation: str,
        call: Callable[[Any], Awaitable[T]],
        client_order_id: str | None,
    ) -> T:
        breaker = self._breakers[group]
        try:
            breaker.before_call()
        except CircuitOpenError:
            self._count(group, "circuit_open")
            raise
        mark_request_start()
        try:
            await self.weights.pace()
            result = await timed(call(self.exchange))
        except BaseException as e:
            error = self.translate(e, operation, client_order_id=client_order_id)
            if error is None:
                breaker.record_abandoned()  # a bug or a cancellation: not the venue's fault
                raise
            self._record(breaker, group, operation, error)
            raise error from e
        breaker.record_success()
        self._count(group, "ok")
        return result

    def _record(
        self, breaker: CircuitBreaker, group: EndpointGroup, operation: str, error: EngineError
    ) -> None:
        if isinstance(error, RateLimitedError):
            breaker.record_abandoned()  # the venue is healthy, we are too fast
            outcome = "rate_limited"
        elif isinstance(error, UnknownOutcomeError):
            breaker.record_failure()
            outcome = "unknown_outcome"
        elif isinstance(error, TemporaryError):
            breaker.record_failure()
            outcome = "temporary"
        else:
            breaker.record_success()  # the venue answered; it said no
            outcome = type(error).__name__
        self._count(group, outcome)
        log.info(
            "venue_request_failed",
            venue=self.venue,
            endpoint_group=group.value,
            operation=operation,
            error=type(error).__name__,
            message=str(error),
        )

    def _count(self, group: EndpointGroup, outcome: str) -> None:
        metrics.REQUESTS.labels(venue=self.venue, endpoint_group=group.value, outcome=outcome).inc()

    def _hook_responses(self) -> None:
        """Feed every REST response's headers to the weight tracker, errors included.

        ccxt calls ``on_rest_response`` for each response before it raises on the status,
        so 429s and their ``Retry-After`` are seen too.
        """
        original = self.exchange.on_rest_response
        weights = self.weights

        def on_rest_response(*args: Any) -> Any:
            # ccxt's signature: (code, reason, url, method, headers, body, ...)
            code, headers = args[0], args[4]
            try:
                weights.observe(int(code or 0), headers or {})
            except Exception:  # bookkeeping must never break a request
                log.exception("venue_weight_observe_failed", venue=weights_venue)
            return original(*args)

        weights_venue = self.venue
        self.exchange.on_rest_response = on_rest_response


def _single_attempt(policy: RetryPolicy) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=1,
        total_s=policy.total_s,
        base_s=policy.base_s,
        max_backoff_s=policy.max_backoff_s,
    )
