"""Reconnect and resync backoff: exponential with full jitter, optionally bounded."""

from __future__ import annotations

import random
from dataclasses import dataclass

from engine.execution.clock import Clock


@dataclass(frozen=True, kw_only=True, slots=True)
class BackoffPolicy:
    """Waits between reconnects or resyncs.

    Attributes:
        base_s: ceiling of the first wait (the wait is uniform below the ceiling).
        max_s: largest ceiling.
        max_attempts: consecutive failures allowed before giving up; None never gives up.
    """

    base_s: float = 0.5
    max_s: float = 30.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.max_s < self.base_s:
            raise ValueError("need 0 < base_s <= max_s")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1 (got {self.max_attempts})")


class Backoff:
    """Consecutive-failure counter that sleeps with full jitter between attempts."""

    def __init__(
        self, policy: BackoffPolicy, *, clock: Clock, rng: random.Random | None = None
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.failures = 0

    @property
    def exhausted(self) -> bool:
        """Tell whether the consecutive failures reached the policy's bound."""
        bound = self._policy.max_attempts
        return bound is not None and self.failures >= bound

    def reset(self) -> None:
        """Forget past failures (call after a success)."""
        self.failures = 0

    async def failed(self) -> None:
        """Count a failure and sleep ``uniform(0, min(max_s, base_s * 2**(n-1)))``."""
        self.failures += 1
        ceiling = min(self._policy.max_s, self._policy.base_s * 2 ** (self.failures - 1))
        await self._clock.sleep(self._rng.uniform(0.0, ceiling))
