"""Token buckets per key (and per client address for requests without a valid key).

A bucket holds up to ``burst`` tokens and refills at ``per_s`` tokens a second; a request
takes one. An empty bucket answers 429 with ``Retry-After``: the whole seconds until one
token is back. Buckets live in the API process: with several API processes behind a
balancer, each enforces the limit on its own share of the traffic.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Final

from bot4.api.clock import Clock
from bot4.api.roles import Role

MAX_BUCKETS: Final = 10_000


@dataclass(frozen=True, kw_only=True, slots=True)
class Limit:
    """Refill rate and bucket size."""

    per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_s <= 0 or self.burst < 1:
            raise ValueError(f"per_s must be > 0 and burst >= 1 (got {self.per_s}, {self.burst})")


class _Bucket:
    __slots__ = ("limit", "tokens", "updated")

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.limit.burst), self.tokens + elapsed * self.limit.per_s)
        self.updated = now


class RateLimiter:
    """Buckets by key id (limit from the key's role) and by client address.

    Args:
        roles: limit of each role.
        unauthenticated: limit per client address for requests without a valid key.
        clock: monotonic time source.
    """

    def __init__(self, roles: Mapping[Role, Limit], *, unauthenticated: Limit, clock: Clock):
        missing = [role.label for role in Role if role not in roles]
        if missing:
            raise ValueError(f"no rate limit for role(s) {missing}")
        self._roles = dict(roles)
        self._unauthenticated = unauthenticated
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}

    def take_for_key(self, key_id: str, role: Role) -> int | None:
        """Take a token for a key; return None if allowed, else seconds to wait."""
        return self._take(("key", key_id), self._roles[role])

    def take_for_address(self, address: str) -> int | None:
        """Take a token for a request without a valid key from ``address``."""
        return self._take(("address", address), self._unauthenticated)

    def _take(self, name: Hashable, limit: Limit) -> int | None:
        now = self._clock.monotonic()
        bucket = self._buckets.get(name)
        if bucket is None or bucket.limit != limit:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[name] = _Bucket(limit, now)
        else:
            bucket.refill(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / limit.per_s))

    def _forget_full(self, now: float) -> None:
        """Drop buckets that refilled: forgetting them changes nothing."""
        for name, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.limit.burst:
                del self._buckets[name]
        if len(self._buckets) >= MAX_BUCKETS:  # a flood of distinct names: start afresh
            self._buckets.clear()
