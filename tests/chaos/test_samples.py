"""The soak's arithmetic: histogram percentiles and the growth checks over its samples."""

from __future__ import annotations

from pathlib import Path

from tests.chaos.samples import Sample, _p99, growth_checks, plot


def sample(at_s: float, *, rss: float, fds: int, backlog: int = 0, pid: int = 7,
           state: str = "ACTIVE") -> Sample:  # fmt: skip
    return Sample(at_s=at_s, engine_pid=pid, engine_rss_mb=rss, engine_fds=fds,
                  worker_rss_mb=200.0, worker_fds=18, journal_backlog=backlog,
                  journal_lag_s=0.0, market_data_lag_s=0.1, open_orders=2, unknown_orders=0,
                  orders_in_memory=40,
                  trading_state=state, tick_to_order_p99_us=900.0,
                  tick_to_order_p99_total_us=900.0,
                  orders_in_window=10 if state == "ACTIVE" else 0)  # fmt: skip


def test_the_p99_is_interpolated_inside_its_bucket_like_histogram_quantile() -> None:
    buckets = [(0.001, 0.0), (0.005, 50.0), (0.01, 100.0), (float("inf"), 100.0)]
    assert _p99(buckets) == 9900.0  # 99th of 100 lies 98 % of the way through (5, 10] ms
    assert _p99([(0.001, 0.0), (float("inf"), 0.0)]) is None  # no order in the window
    assert _p99([(0.001, 0.0), (0.005, 10.0), (float("inf"), 100.0)]) == 5000.0


def test_a_flat_run_passes_and_a_leaking_one_fails_its_growth_checks() -> None:
    flat = [sample(t, rss=300.0 + (t < 10) * 20, fds=26) for t in range(40)]
    assert all(c["ok"] for c in growth_checks(flat, max_rss_growth_pct=10,
                                              max_fd_growth=8).values())  # fmt: skip
    leaking = [sample(t, rss=300.0 + 5 * t, fds=26 + t, backlog=t * 10) for t in range(40)]
    checks = growth_checks(leaking, max_rss_growth_pct=10, max_fd_growth=8)
    assert not checks["engine_rss_growth_last_half_pct"]["ok"]
    assert checks["engine_rss_growth_last_half_pct"]["value"] > 10
    assert not checks["engine_fd_growth_last_half"]["ok"]
    assert not checks["journal_backlog_at_end"]["ok"]


def test_a_desk_stuck_reducing_after_a_fault_fails_the_soak() -> None:
    stuck = [sample(t, rss=300.0, fds=26, state="ACTIVE" if t < 12 else "REDUCING")
             for t in range(40)]  # fmt: skip
    checks = growth_checks(stuck, max_rss_growth_pct=10, max_fd_growth=8)
    assert checks["trading_share_last_half"] == {"value": 0.0, "limit": 0.3, "ok": False}
    assert checks["engine_rss_growth_last_half_pct"]["ok"]  # every other check passes


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    samples = [sample(t * 5, rss=300.0, fds=26) for t in range(10)]
    plot(samples, [(12.0, "venue_5xx_storm")], tmp_path / "soak.png")
    assert (tmp_path / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
