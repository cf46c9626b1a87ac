from __future__ import annotations

import pytest

from engine.execution.breaker import BreakerConfig, BreakerState, CircuitBreaker
from engine.execution.errors import CircuitOpenError
from tests.engine.execution.fakes import ManualClock, sample_value


def _breaker(clock: ManualClock, group: str = "unit") -> CircuitBreaker:
    return CircuitBreaker(
        venue="unit",
        endpoint_group=group,
        config=BreakerConfig(failure_threshold=3, cool_down_s=10.0),
        clock=clock,
    )


def test_breaker_opens_after_threshold_consecutive_failures():
    breaker = _breaker(ManualClock())
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state.value == "open"


def test_success_resets_the_consecutive_failure_count():
    breaker = _breaker(ManualClock())
    for outcome in ("f", "f", "s", "f", "f"):
        breaker.before_call()
        breaker.record_failure() if outcome == "f" else breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_open_breaker_fails_fast_until_cool_down():
    clock = ManualClock()
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(5.0)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_call()
    assert caught.value.retry_after_s == pytest.approx(5.0)


def test_half_open_admits_one_probe_and_closes_on_success():
    clock = ManualClock()
    breaker = _breaker(clock, "probe_success")
    for _ in range(3):
        breaker.record_failure()
    clock.advance(10.0)
    breaker.before_call()
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # a second caller while the probe is in flight
    breaker.record_success()
    assert breaker.state.value == "closed"
    labels = {"venue": "unit", "endpoint_group": "probe_success"}
    assert (
        sample_value(
            "bot4_venue_circuit_transitions_total",
            {**labels, "from_state": "half_open", "to_state": "closed"},
        )
        == 1
    )


def test_failed_probe_reopens_for_another_cool_down():
    clock = ManualClock()
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(10.0)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()


def test_abandoned_probe_lets_the_next_caller_probe():
    clock = ManualClock()
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(10.0)
    breaker.before_call()
    breaker.record_abandoned()
    breaker.before_call()
    assert breaker.state is BreakerState.HALF_OPEN
