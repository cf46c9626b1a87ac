"""The scenario draw: reproducible from the seed and index alone, covering every fault."""

from __future__ import annotations

import pytest

from tests.chaos.scenarios import (
    DEFAULT_SCENARIOS,
    DEFAULT_SEED,
    FAULT_KINDS,
    OPERATIONS,
    ChaosSettings,
    draw,
)


def test_a_scenario_is_the_same_drawn_alone_or_among_others() -> None:
    among = [draw(DEFAULT_SEED, i) for i in range(12)]
    assert draw(DEFAULT_SEED, 7) == among[7]
    assert draw(DEFAULT_SEED + 1, 7) != among[7]


def test_the_bounded_suite_runs_every_operation_and_injects_every_fault() -> None:
    scenarios = [draw(DEFAULT_SEED, i) for i in range(DEFAULT_SCENARIOS)]
    assert {s.operation for s in scenarios} == set(OPERATIONS)
    assert set().union(*(s.kinds for s in scenarios)) == set(FAULT_KINDS)
    for seed in range(50):  # whatever the seed: 9 in a row inject every kind, 3 run every op
        assert set().union(*(draw(seed, i).kinds for i in range(9, 18))) == set(FAULT_KINDS)
        assert {draw(seed, i).operation for i in range(4, 7)} == set(OPERATIONS)


def test_faults_start_in_time_order_with_a_failover_triggered_first() -> None:
    for i in range(200):
        scenario = draw(DEFAULT_SEED, i)
        times = [f.at_s for f in scenario.faults]
        assert times == sorted(times)
        assert len(scenario.kinds) == len(scenario.faults)  # a kind at most once
        assert scenario.reproduce() == (
            f"BOT4_CHAOS_SEED={DEFAULT_SEED} BOT4_CHAOS_ONLY={i} pytest tests/chaos"
        )


def test_settings_come_from_the_environment_and_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOT4_CHAOS_SEED", "5")
    monkeypatch.setenv("BOT4_CHAOS_ONLY", "3,7")
    chaos = ChaosSettings.from_env()
    assert (chaos.seed, chaos.indices()) == (5, [3, 7])
    monkeypatch.setenv("BOT4_CHAOS_SCENARIOS", "many")
    with pytest.raises(ValueError, match="BOT4_CHAOS_SEED/SCENARIOS/ONLY/MINUTES"):
        ChaosSettings.from_env()
