"""Circuit breaker per venue endpoint group.

::

    CLOSED --N consecutive failures--> OPEN --cool-down elapsed--> HALF_OPEN
      ^                                  ^                            |
      |                                  +------probe failed----------+
      +-----------------------probe succeeded-------------------------+

While OPEN, calls fail fast with :class:`CircuitOpenError` (nothing is sent). HALF_OPEN
lets exactly one probe through; the others fail fast until the probe's outcome is known.
Only failures that say the venue is unhealthy count (timeouts, 5xx, lost answers); a
rejected order is a healthy venue saying no and counts as a success. Transitions are
logged and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import structlog

from engine.execution import metrics
from engine.execution.clock import Clock
from engine.execution.errors import CircuitOpenError

log = structlog.get_logger(__name__)


class BreakerState(StrEnum):
    """State of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerConfig:
    """When a breaker opens and how long it stays open.

    Attributes:
        failure_threshold: consecutive failures that open the breaker.
        cool_down_s: time OPEN before one probe is let through.
    """

    failure_threshold: int = 5
    cool_down_s: float = 10.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1 (got {self.failure_threshold})")
        if self.cool_down_s <= 0:
            raise ValueError(f"cool_down_s must be > 0 (got {self.cool_down_s})")


class CircuitBreaker:
    """The breaker of one venue endpoint group (e.g. ``binance`` / ``orders``)."""

    def __init__(
        self, *, venue: str, endpoint_group: str, config: BreakerConfig, clock: Clock
    ) -> None:
        self._venue = venue
        self._group = endpoint_group
        self._config = config
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        """Return the current state (OPEN turns HALF_OPEN only when a call asks)."""
        return self._state

    def before_call(self) -> None:
        """Admit a call or fail fast.

        Raises:
            CircuitOpenError: the breaker is open, or half-open with its probe in flight.
        """
        if self._state is BreakerState.OPEN:
            remaining = self._opened_at + self._config.cool_down_s - self._clock.monotonic()
            if remaining > 0:
                raise self._open_error(remaining)
            self._transition(BreakerState.HALF_OPEN)
        if self._state is BreakerState.HALF_OPEN:
            if self._probe_in_flight:
                raise self._open_error(0.0)
            self._probe_in_flight = True

    def record_success(self) -> None:
        """Record a call the venue answered (including a business refusal)."""
        self._probe_in_flight = False
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            self._transition(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """Record a call that failed because the venue (or the path to it) is unhealthy."""
        self._probe_in_flight = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self._config.failure_threshold
        ):
            self._opened_at = self._clock.monotonic()
            self._transition(BreakerState.OPEN)

    def record_abandoned(self) -> None:
        """Forget an admitted call that ended without an answer (e.g. cancelled).

        A half-open breaker lets the next caller probe instead of waiting forever.
        """
        self._probe_in_flight = False

    def _open_error(self, remaining_s: float) -> CircuitOpenError:
        return CircuitOpenError(
            f"{self._venue} {self._group}: circuit {self._state.value} after"
            f" {self._failures} consecutive failures; not sent, retry in {remaining_s:.1f}s",
            retry_after_s=remaining_s,
        )

    def _transition(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        metrics.BREAKER_TRANSITIONS.labels(
            venue=self._venue,
            endpoint_group=self._group,
            from_state=old.value,
            to_state=new.value,
        ).inc()
        metrics.BREAKER_OPEN.labels(venue=self._venue, endpoint_group=self._group).set(
            0 if new is BreakerState.CLOSED else 1
        )
        log.warning(
            "circuit_breaker_transition",
            venue=self._venue,
            endpoint_group=self._group,
            from_state=old.value,
            to_state=new.value,
            consecutive_failures=self._failures,
        )
