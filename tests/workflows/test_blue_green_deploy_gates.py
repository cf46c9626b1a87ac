"""The gate arithmetic of blue_green_deploy: shadow agreement and health problems."""

from __future__ import annotations

from workflows.blue_green_deploy.activities import health_problems, shadow_agreement


def quote(symbol: str, side: int, price: int) -> dict[str, object]:
    return {"symbol": symbol, "side": side, "price": price}


def test_agreement_counts_leader_quotes_matched_by_side_within_the_tolerance() -> None:
    leader = [quote("ETH/USDT", 1, 300_000), quote("ETH/USDT", -1, 300_200)]
    standby = [quote("ETH/USDT", 1, 300_070), quote("ETH/USDT", -1, 301_000),
               quote("BTC/USDT", 1, 6_000_000)]  # fmt: skip

    # 70 ticks on 300,000 is 2.3 bps; 800 ticks is 27 bps
    assert shadow_agreement(leader, standby, tolerance_bps=25) == 0.5
    assert shadow_agreement(leader, standby, tolerance_bps=30) == 1.0
    assert shadow_agreement(leader, standby, tolerance_bps=2) == 0.0


def test_agreement_needs_the_same_side_and_is_undefined_without_leader_quotes() -> None:
    assert shadow_agreement([quote("ETH/USDT", 1, 100)], [quote("ETH/USDT", -1, 100)],
                            tolerance_bps=25) == 0.0  # fmt: skip
    assert shadow_agreement([], [quote("ETH/USDT", 1, 100)], tolerance_bps=25) is None


def test_health_names_a_lowered_state_and_stale_market_data() -> None:
    healthy = {"trading_state": "ACTIVE", "market_data_lag_s": 0.1}
    assert health_problems(healthy, max_lag_s=1.0) == []
    problems = health_problems(
        {"trading_state": "REDUCING", "conditions": {"journal": "REDUCING"},
         "market_data_lag_s": 3.0},
        max_lag_s=1.0,
    )  # fmt: skip
    assert len(problems) == 2
    assert "REDUCING" in problems[0]
    assert "market_data_lag_s" in problems[1]
    assert health_problems(None, max_lag_s=1.0) == ["status unreadable"]
    assert health_problems({"trading_state": "ACTIVE"}, max_lag_s=1.0) != []  # no data yet
