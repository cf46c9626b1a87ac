"""Token buckets per key and per address, driven by a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot4.api.ratelimit import Limit, RateLimiter
from bot4.api.roles import Role


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def monotonic(self) -> float:
        return self.t


def _limiter(clock: FakeClock) -> RateLimiter:
    roles = {role: Limit(per_s=2.0 * role, burst=3) for role in Role}
    return RateLimiter(roles, unauthenticated=Limit(per_s=0.5, burst=1), clock=clock)


def test_burst_then_refused_with_whole_seconds_to_wait_then_refilled():
    clock = FakeClock()
    limiter = _limiter(clock)
    assert [limiter.take_for_key("k", Role.VIEWER) for _ in range(3)] == [None] * 3
    assert limiter.take_for_key("k", Role.VIEWER) == 1  # 2/s: half a second, rounded up
    clock.t += 0.5
    assert limiter.take_for_key("k", Role.VIEWER) is None
    assert limiter.take_for_key("k", Role.VIEWER) == 1


def test_buckets_are_per_key_and_per_address():
    clock = FakeClock()
    limiter = _limiter(clock)
    for _ in range(3):
        assert limiter.take_for_key("a", Role.ADMIN) is None
    assert limiter.take_for_key("a", Role.ADMIN) == 1
    assert limiter.take_for_key("b", Role.ADMIN) is None
    assert limiter.take_for_address("10.0.0.1") is None
    assert limiter.take_for_address("10.0.0.1") == 2  # 0.5/s
    assert limiter.take_for_address("10.0.0.2") is None


def test_a_bucket_never_holds_more_than_its_burst():
    clock = FakeClock()
    limiter = _limiter(clock)
    limiter.take_for_key("k", Role.TRADER)
    clock.t += 3600
    assert [limiter.take_for_key("k", Role.TRADER) for _ in range(4)] == [None, None, None, 1]


def test_every_role_needs_a_limit():
    with pytest.raises(ValueError, match="no rate limit for role"):
        RateLimiter({Role.VIEWER: Limit(per_s=1, burst=1)}, unauthenticated=Limit(per_s=1,
                    burst=1), clock=FakeClock())  # fmt: skip
