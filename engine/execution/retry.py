"""Retry policy: exponential backoff with full jitter, for temporary errors only.

Full jitter (sleep ``uniform(0, min(cap, base * 2**attempt))``) spreads the retries of
many clients that failed together, so they do not hit a recovering venue in lockstep.
Attempts and total time are both bounded; a sleep that would overrun the time budget is
not taken, the last error is raised instead. A :class:`RateLimitedError` waits at least
the venue's ``Retry-After``. A :class:`CircuitOpenError` is never retried here: the
breaker said "fail fast", and spinning on it would defeat that. Everything else that is
not a :class:`TemporaryError` (rejections, unknown outcomes, operational errors) is raised
at once.
"""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from engine.errors import TemporaryError
from engine.execution import metrics
from engine.execution.clock import Clock
from engine.execution.errors import CircuitOpenError, RateLimitedError

# One jitter source for every call: a Random() per call seeded itself from os.urandom
# (~10 µs of every venue request, retried or not). Reseeded in a forked child, so two
# processes do not retry in step.
_JITTER = random.Random()  # noqa: S311 - jitter, not cryptography
os.register_at_fork(after_in_child=_JITTER.seed)

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a temporary failure.

    Attributes:
        max_attempts: attempts in all, the first one included.
        total_s: time budget from the first attempt; no sleep may cross it.
        base_s: backoff of the first retry (before jitter).
        max_backoff_s: cap of one backoff (before jitter).
    """

    max_attempts: int = 4
    total_s: float = 15.0
    base_s: float = 0.2
    max_backoff_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1 (got {self.max_attempts})")
        if self.total_s <= 0 or self.base_s <= 0 or self.max_backoff_s < self.base_s:
            raise ValueError("need total_s > 0 and 0 < base_s <= max_backoff_s")

    def backoff_s(self, retry_number: int, rng: random.Random) -> float:
        """Return the full-jitter sleep before retry ``retry_number`` (1-based)."""
        ceiling = min(self.max_backoff_s, self.base_s * 2 ** (retry_number - 1))
        return rng.uniform(0.0, ceiling)


def is_retryable(error: BaseException) -> bool:
    """Tell whether ``error`` may be retried: temporary, and not a fail-fast breaker."""
    return isinstance(error, TemporaryError) and not isinstance(error, CircuitOpenError)


async def call_with_retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    venue: str,
    endpoint_group: str,
    rng: random.Random | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or the budget is spent.

    Args:
        attempt: one try; raises engine errors (translated already).
        policy: attempts, time budget and backoff.
        clock: time source; its ``sleep`` is used between attempts.
        venue: label of the retry counter.
        endpoint_group: label of the retry counter.
        rng: jitter source (tests pass a seeded one).

    Raises:
        EngineError: the last error, when it is not retryable or the budget is spent.
    """
    jitter = rng or _JITTER
    started = clock.monotonic()

    def counted(outcome: str) -> None:
        metrics.RETRIES.labels(venue=venue, endpoint_group=endpoint_group, outcome=outcome).inc()

    def delay_after(attempt_number: int, error: BaseException | None) -> float:
        delay = policy.backoff_s(attempt_number, jitter)
        if isinstance(error, RateLimitedError):
            delay = max(delay, error.retry_after_s)
        return delay

    def last(attempt_number: int, upcoming_sleep: float) -> bool:
        spent = clock.monotonic() - started
        return attempt_number >= policy.max_attempts or spent + upcoming_sleep > policy.total_s

    # The first attempt runs bare: nearly every call succeeds at once, and tenacity's
    # bookkeeping per call (its iteration state is rebuilt each time) took ~8 % of the
    # engine loop's busy time in the live bench's profile. Retries go through tenacity.
    try:
        return await attempt()
    except Exception as error:
        if not is_retryable(error):
            raise
        delay = delay_after(1, error)
        if last(1, delay):
            counted("exhausted")
            raise
        counted("retried")
    await clock.sleep(delay)

    # tenacity numbers its own attempts from 1; they are attempts 2, 3 ... of the call
    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return delay_after(state.attempt_number + 1, error)

    def stop(state: RetryCallState) -> bool:
        return last(state.attempt_number + 1, state.upcoming_sleep)

    def before_sleep(_state: RetryCallState) -> None:
        counted("retried")

    def give_up(state: RetryCallState) -> T:
        counted("exhausted")
        assert state.outcome is not None  # tenacity calls this only after an attempt
        return state.outcome.result()  # type: ignore[no-any-return]  # re-raises the error

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        wait=wait,
        stop=stop,
        sleep=clock.sleep,
        before_sleep=before_sleep,
        retry_error_callback=give_up,
    )
    result: T = await retrying(attempt)
    counted("recovered")
    return result
