"""Rate-limit awareness: the venue's used request weight and its 429 back-off orders.

ccxt's own throttle is off (``enableRateLimit=False``): it guesses costs and adds latency.
Instead we read what the venue says. Binance returns ``X-MBX-USED-WEIGHT-1M`` on every
REST response (weight used in the current calendar minute) and ``Retry-After`` (seconds)
with a 429 or 418. :class:`WeightTracker` turns that into a delay before the next request:

* after a 429/418: wait until ``Retry-After`` has passed (venue-wide: the ban is per IP);
* at or above the limit: wait until the next window starts;
* above ``slow_down_fraction`` of the limit: a delay growing linearly up to
  ``max_pacing_delay_s`` as the used weight approaches the limit.

The tracker is fed by a hook on ccxt's per-response callback rather than by reading
``exchange.last_response_headers`` after the call: that attribute is shared by all
concurrent requests, so it may hold another request's headers by the time we look.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import structlog

from engine.execution import metrics
from engine.execution.clock import Clock

log = structlog.get_logger(__name__)

_NS_PER_S: Final = 1_000_000_000


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimitConfig:
    """The venue's request-weight budget and how we pace against it.

    Attributes:
        weight_header: response header carrying the used weight (case-insensitive).
        weight_limit: weight allowed per window.
        window_s: length of the venue's window (Binance: one calendar minute).
        slow_down_fraction: fraction of the limit above which requests are paced.
        max_pacing_delay_s: pacing delay just below the limit.
        default_retry_after_s: wait after a 429 that carried no ``Retry-After``.
    """

    weight_header: str = "x-mbx-used-weight-1m"
    weight_limit: int = 6000
    window_s: int = 60
    slow_down_fraction: float = 0.8
    max_pacing_delay_s: float = 1.0
    default_retry_after_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.slow_down_fraction <= 1.0:
            raise ValueError(
                f"slow_down_fraction must be in (0, 1] (got {self.slow_down_fraction})"
            )
        if self.weight_limit < 1 or self.window_s < 1:
            raise ValueError("weight_limit and window_s must be >= 1")


class WeightTracker:
    """Track one venue's used weight and throttling orders from its response headers."""

    def __init__(self, *, venue: str, config: RateLimitConfig, clock: Clock) -> None:
        self._venue = venue
        self._config = config
        self._clock = clock
        self._used = 0
        self._window = -1  # index of the venue window `_used` belongs to
        self._blocked_until = 0.0  # monotonic seconds

    @property
    def used_weight(self) -> int:
        """Return the weight used in the current window (0 once the window rolled)."""
        return self._used if self._window == self._current_window() else 0

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Take in one REST response's status and headers."""
        lowered = {k.lower(): v for k, v in headers.items()}
        raw = lowered.get(self._config.weight_header)
        if raw is not None:
            try:
                used = int(raw)
            except ValueError:
                log.warning("venue_weight_header_unreadable", venue=self._venue, value=raw)
            else:
                self._used, self._window = used, self._current_window()
                metrics.USED_WEIGHT.labels(venue=self._venue).set(used)
        if status in (418, 429):
            wait = self._parse_retry_after(lowered.get("retry-after"))
            self._blocked_until = max(self._blocked_until, self._clock.monotonic() + wait)
            log.warning("venue_rate_limited", venue=self._venue, status=status, retry_after_s=wait)

    def retry_after_s(self) -> float:
        """Return how long the venue asked us to stay away (0 when it did not)."""
        return max(0.0, self._blocked_until - self._clock.monotonic())

    def delay_s(self) -> tuple[float, str]:
        """Return the wait before the next request and why (``""`` when none)."""
        blocked = self.retry_after_s()
        if blocked > 0:
            return blocked, "retry_after"
        used, limit = self.used_weight, self._config.weight_limit
        if used >= limit:
            window_ns = self._config.window_s * _NS_PER_S
            return (window_ns - self._clock.time_ns() % window_ns) / _NS_PER_S, "weight_limit"
        threshold = self._config.slow_down_fraction * limit
        if used > threshold:
            share = (used - threshold) / max(1.0, limit - threshold)
            return share * self._config.max_pacing_delay_s, "near_weight_limit"
        return 0.0, ""

    async def pace(self) -> None:
        """Sleep as long as :meth:`delay_s` says; count why."""
        delay, reason = self.delay_s()
        if delay > 0:
            metrics.RATE_LIMIT_DELAYS.labels(venue=self._venue, reason=reason).inc()
            await self._clock.sleep(delay)

    def _parse_retry_after(self, raw: str | None) -> float:
        if raw is not None:
            try:
                return max(0.0, float(raw))
            except ValueError:
                pass  # an HTTP-date form; Binance never sends one
        return self._config.default_retry_after_s

    def _current_window(self) -> int:
        return self._clock.time_ns() // (self._config.window_s * _NS_PER_S)
