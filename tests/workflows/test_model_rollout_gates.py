"""The model_rollout gates: every measure reported with its limit, each bound enforced."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workflows.model_rollout.models import ModelRolloutInput, Observation, judge

SEEN = Observation(
    rounds=3,
    problems=(),
    samples=50,
    agreement=0.95,
    relative_drift=0.1,
    mean_abs_drift_ticks=4.0,
    latency_p50_us=1.0,
    latency_p99_us=3.0,
    events_advanced=900,
)
REQUEST = ModelRolloutInput(version="v1")


def test_a_healthy_candidate_passes_and_every_measure_is_reported() -> None:
    gate = judge("shadow", SEEN, REQUEST, scores=True)

    assert gate.passed
    assert {m.name: m.value for m in gate.measures} == {
        "events_advanced": 900,
        "samples": 50,
        "agreement": 0.95,
        "relative_drift": 0.1,
        "mean_abs_drift_ticks": 4.0,
        "latency_p99_us": 3.0,
    }
    assert gate.seen == SEEN


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"agreement": 0.5}, "agreement"),
        ({"relative_drift": 0.9}, "relative_drift"),
        ({"latency_p99_us": 5000.0}, "latency_p99_us"),
        ({"samples": 3}, "samples"),
        ({"events_advanced": 0}, "events_advanced"),
        ({"agreement": None}, "agreement"),
    ],
)
def test_each_bound_fails_the_gate_naming_its_measure(
    change: dict[str, object], failing: str
) -> None:
    gate = judge("canary", replace(SEEN, **change), REQUEST, scores=True)  # type: ignore[arg-type]

    assert not gate.passed
    assert [m.name for m in gate.measures if not m.passed] == [failing]
    assert any(p.startswith(failing) for p in gate.problems)


def test_a_health_problem_fails_the_bake_which_does_not_judge_scores() -> None:
    gate = judge(
        "bake",
        replace(SEEN, problems=("trading_state REDUCING",), samples=0),
        REQUEST,
        scores=False,
    )

    assert not gate.passed
    assert [m.name for m in gate.measures] == ["events_advanced"]
    assert gate.problems == ("trading_state REDUCING",)
