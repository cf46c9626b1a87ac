from __future__ import annotations

import asyncio
import random
import time

import ccxt
import pytest

from engine.errors import TemporaryError
from engine.execution import ccxt_time
from engine.execution.breaker import BreakerConfig
from engine.execution.errors import CircuitOpenError, OrderRejectedError, RateLimitedError
from engine.execution.gateway import EndpointGroup, GatewayConfig, VenueGateway
from engine.execution.ratelimit import RateLimitConfig, WeightTracker
from engine.execution.retry import RetryPolicy, call_with_retry
from tests.engine.execution.fakes import ManualClock, ScriptedExchange, sample_value

POLICY = RetryPolicy(max_attempts=4, total_s=30.0, base_s=0.5, max_backoff_s=4.0)


def _gateway(exchange: ScriptedExchange, clock: ManualClock, venue: str, **breaker) -> VenueGateway:
    return VenueGateway(
        exchange,
        venue=venue,
        secrets=["k", "s"],
        config=GatewayConfig(
            retry=POLICY, breaker=BreakerConfig(**(breaker or {"failure_threshold": 50}))
        ),
        clock=clock,
        rng=random.Random(1),
    )


async def _fetch(exchange):
    return await exchange.fetch_balance()


async def test_temporary_errors_are_retried_a_bounded_number_of_times():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("fetch_balance", ccxt.ExchangeNotAvailable("503"))
    gateway = _gateway(exchange, clock, "retry_bounded")
    with pytest.raises(TemporaryError) as caught:
        await gateway.request(EndpointGroup.ACCOUNT, "fetch_balance", _fetch)
    assert isinstance(caught.value.__cause__, ccxt.ExchangeNotAvailable)
    assert len(exchange.calls) == POLICY.max_attempts
    labels = {"venue": "retry_bounded", "endpoint_group": "account"}
    assert sample_value("bot4_venue_retries_total", {**labels, "outcome": "retried"}) == 3
    assert sample_value("bot4_venue_retries_total", {**labels, "outcome": "exhausted"}) == 1


async def test_backoff_is_full_jitter_below_the_exponential_ceiling():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("fetch_balance", ccxt.RequestTimeout("t"))
    with pytest.raises(TemporaryError):
        await _gateway(exchange, clock, "jitter").request(
            EndpointGroup.ACCOUNT, "fetch_balance", _fetch
        )
    ceilings = [0.5, 1.0, 2.0]
    assert len(clock.sleeps) == 3
    assert all(0 <= s <= c for s, c in zip(clock.sleeps, ceilings, strict=True))


async def test_recovery_after_a_retry_is_counted_and_returns_the_result():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("fetch_balance", ccxt.RequestTimeout("t"), {"free": {}})
    result = await _gateway(exchange, clock, "recovered").request(
        EndpointGroup.ACCOUNT, "fetch_balance", _fetch
    )
    assert result == {"free": {}}
    labels = {"venue": "recovered", "endpoint_group": "account", "outcome": "recovered"}
    assert sample_value("bot4_venue_retries_total", labels) == 1


async def test_rejections_are_never_retried():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("fetch_balance", ccxt.InvalidOrder("no"))
    with pytest.raises(OrderRejectedError):
        await _gateway(exchange, clock, "rejected").request(
            EndpointGroup.ACCOUNT, "fetch_balance", _fetch
        )
    assert len(exchange.calls) == 1


async def test_retry_after_is_honoured_before_the_next_attempt():
    exchange, clock = ScriptedExchange(), ManualClock()
    gateway = _gateway(exchange, clock, "retry_after")

    def throttled():
        exchange.respond(429, {"Retry-After": "3", "X-MBX-USED-WEIGHT-1M": "10"})
        raise ccxt.RateLimitExceeded("429")

    exchange.plan("fetch_balance", throttled, {"free": {}})
    await gateway.request(EndpointGroup.ACCOUNT, "fetch_balance", _fetch)
    assert sum(clock.sleeps) >= 3.0


async def test_time_budget_stops_retries_before_a_sleep_would_overrun_it():
    clock = ManualClock()
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise RateLimitedError("429", retry_after_s=20.0)

    policy = RetryPolicy(max_attempts=10, total_s=30.0, base_s=0.1, max_backoff_s=1.0)
    with pytest.raises(RateLimitedError):
        await call_with_retry(
            attempt, policy=policy, clock=clock, venue="budget", endpoint_group="x"
        )
    assert calls == 2
    assert clock.now <= 30.0


async def test_open_circuit_fails_fast_without_calling_the_venue():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("fetch_balance", ccxt.RequestTimeout("t"))
    gateway = _gateway(exchange, clock, "fail_fast", failure_threshold=2, cool_down_s=60.0)
    with pytest.raises(CircuitOpenError):
        await gateway.request(EndpointGroup.ACCOUNT, "fetch_balance", _fetch)
    assert len(exchange.calls) == 2  # the third attempt met the open breaker


def test_weight_tracker_slows_down_near_the_limit_and_stops_at_it():
    clock = ManualClock()
    tracker = WeightTracker(venue="weights", config=RateLimitConfig(weight_limit=1000), clock=clock)
    tracker.observe(200, {"X-MBX-USED-WEIGHT-1M": "100"})
    assert tracker.delay_s() == (0.0, "")
    tracker.observe(200, {"x-mbx-used-weight-1m": "900"})
    delay, reason = tracker.delay_s()
    assert reason == "near_weight_limit"
    assert 0 < delay < 1.0
    tracker.observe(200, {"x-mbx-used-weight-1m": "1000"})
    delay, reason = tracker.delay_s()
    assert reason == "weight_limit"
    assert 0 < delay <= 60.0


def test_used_weight_resets_when_the_window_rolls():
    clock = ManualClock(start_ns=0)
    tracker = WeightTracker(venue="weights", config=RateLimitConfig(), clock=clock)
    tracker.observe(200, {"x-mbx-used-weight-1m": "5000"})
    assert tracker.used_weight == 5000
    clock.advance(61.0)
    assert tracker.used_weight == 0


def test_429_without_retry_after_uses_the_default_wait():
    clock = ManualClock()
    tracker = WeightTracker(
        venue="weights", config=RateLimitConfig(default_retry_after_s=2.0), clock=clock
    )
    tracker.observe(429, {})
    assert tracker.delay_s() == (2.0, "retry_after")
    clock.advance(2.5)
    assert tracker.retry_after_s() == 0.0


async def test_a_request_is_stamped_when_its_first_attempt_begins_in_its_own_task():
    # where tick-to-order ends: the order task reads the stamp its own request left
    exchange, clock = ScriptedExchange(), ManualClock()
    at_first_attempt: list[tuple[int, int] | None] = []

    def times_out() -> None:
        at_first_attempt.append(ccxt_time.request_started())
        raise ccxt.RequestTimeout("t")

    exchange.plan("fetch_balance", times_out, {"free": {}})
    gateway = _gateway(exchange, clock, "stamped")

    async def one_request() -> tuple[tuple[int, int] | None, int, int]:
        ccxt_time.begin_request()
        before = time.monotonic_ns()
        await gateway.request(EndpointGroup.ACCOUNT, "fetch_balance", _fetch)  # one retry
        return ccxt_time.request_started(), before, time.monotonic_ns()

    ccxt_time.begin_request()
    stamp, before, after = await asyncio.create_task(one_request())
    assert len(exchange.calls) == 2
    assert stamp is not None
    assert before <= stamp[0] <= after
    assert at_first_attempt == [stamp]  # the retry did not move it
    assert ccxt_time.request_started() is None  # another task's request is not ours


async def test_a_request_refused_by_an_open_breaker_leaves_no_stamp():
    exchange, clock = ScriptedExchange(), ManualClock()
    exchange.plan("fetch_balance", ccxt.ExchangeNotAvailable("503"))
    gateway = _gateway(exchange, clock, "unstamped", failure_threshold=1)
    with pytest.raises(TemporaryError):
        await gateway.request(EndpointGroup.ACCOUNT, "fetch_balance", _fetch, retry=False)
    ccxt_time.begin_request()
    with pytest.raises(CircuitOpenError):
        await gateway.request(EndpointGroup.ACCOUNT, "fetch_balance", _fetch)
    assert ccxt_time.request_started() is None  # it never went towards the venue
