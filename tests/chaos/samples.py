"""What the soak samples over time, the growth checks on it, and its plot.

A sample reads the engine and the worker the way an operator's node exporter would:
``VmRSS`` and the entries of ``/proc/<pid>/fd``; and the engine's own ``/status`` (journal
backlog and lag, market-data lag, open and unknown orders) and ``/metrics`` (the
tick-to-order histogram: the p99 of the window since the previous sample, from the
difference of its cumulative buckets, and of the whole run).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.chaos.rig import Rig
from tests.stubs.deploy import engine_status

TICK_TO_ORDER = "bot4_engine_tick_to_order_seconds"
MIN_TRADING_SHARE = 0.3  # faults lower the state for a while; a stuck desk scores ~0


@dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    """One look at the desk, ``at_s`` seconds into the soak."""

    at_s: float
    engine_pid: int | None
    engine_rss_mb: float | None
    engine_fds: int | None
    worker_rss_mb: float | None
    worker_fds: int | None
    journal_backlog: int | None
    journal_lag_s: float | None
    market_data_lag_s: float | None
    open_orders: int | None
    unknown_orders: int | None
    orders_in_memory: int | None  # the engine's order table, ended orders in retention too
    trading_state: str | None
    tick_to_order_p99_us: float | None  # this window's
    tick_to_order_p99_total_us: float | None
    orders_in_window: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _fds(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return None


def _p99(buckets: list[tuple[float, float]]) -> float | None:
    """The 99th percentile (µs) of cumulative (le, count) buckets, interpolated linearly
    inside its bucket as Prometheus's ``histogram_quantile`` does."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = 0.99 * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return round(lower * 1e6, 1)  # beyond the last finite bound: that bound
            share = (rank - below) / (count - below) if count > below else 1.0
            return round((lower + (bound - lower) * share) * 1e6, 1)
        lower, below = bound, count
    return None


async def _histogram(url: str) -> list[tuple[float, float]]:
    """Cumulative (le, count) of the engine's tick-to-order histogram (empty if none)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
            http.get(f"{url}/metrics") as answer,
        ):
            text = await answer.text()
    except (aiohttp.ClientError, TimeoutError):
        return []
    for family in text_string_to_metric_families(text):
        if family.name == TICK_TO_ORDER:
            return sorted(
                (float(s.labels["le"]), s.value)
                for s in family.samples
                if s.name.endswith("_bucket")
            )
    return []


class Sampler:
    """Samples the desk; keeps the previous histogram for window percentiles."""

    def __init__(self, rig: Rig, *, started: float) -> None:
        self.rig = rig
        self.started = started
        self._previous: tuple[int | None, list[tuple[float, float]]] = (None, [])

    async def sample(self) -> Sample:
        rig = self.rig
        engine = rig.platform.status("blue")
        pid = engine.pid if engine.running else None
        port = rig.settings.engine.blue_control_port
        url = f"http://127.0.0.1:{port}"
        status = await engine_status(url) or {}
        buckets = await _histogram(url)
        last_pid, last = self._previous
        # a restarted engine starts its histogram from zero: its window is all of it
        base = dict(last) if last_pid == pid else {}
        window = [(le, count - base.get(le, 0.0)) for le, count in buckets]
        self._previous = (pid, buckets)
        journal = status.get("journal") or {}
        orders = status.get("orders") or {}
        worker = rig.worker.process.pid if rig.worker.running() and rig.worker.process else None
        return Sample(
            at_s=round(time.monotonic() - self.started, 1),
            engine_pid=pid,
            engine_rss_mb=_rss_mb(pid),
            engine_fds=_fds(pid),
            worker_rss_mb=_rss_mb(worker),
            worker_fds=_fds(worker),
            journal_backlog=journal.get("backlog"),
            journal_lag_s=status.get("journal_lag_s"),
            market_data_lag_s=status.get("market_data_lag_s"),
            open_orders=orders.get("open"),
            unknown_orders=orders.get("unknown"),
            orders_in_memory=orders.get("in_memory"),
            trading_state=status.get("trading_state"),
            tick_to_order_p99_us=_p99(window),
            tick_to_order_p99_total_us=_p99(buckets),
            orders_in_window=int(window[-1][1]) if window else 0,
        )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def growth_checks(
    samples: list[Sample], *, max_rss_growth_pct: float, max_fd_growth: int
) -> dict[str, dict[str, Any]]:
    """Compare the middle of the run with its end (medians of a few samples each).

    Over the last half: engine RSS growth in percent, engine fd growth, whether the
    journal's backlog came back down (a backlog growing to the end is a stuck writer), and
    how much of it the engine spent ACTIVE and sending orders (a desk stuck in REDUCING
    after a fault passes every other check: the first hour-long soak did).
    """
    engine = [s for s in samples if s.engine_pid is not None]
    width = max(1, len(engine) // 10)
    middle = engine[len(engine) // 2 - width // 2 : len(engine) // 2 + width // 2 + 1]
    end = engine[-width:]

    def med(part: list[Sample], attr: str) -> float | None:
        return _median([float(v) for s in part if (v := getattr(s, attr)) is not None])

    rss_mid, rss_end = med(middle, "engine_rss_mb"), med(end, "engine_rss_mb")
    fds_mid, fds_end = med(middle, "engine_fds"), med(end, "engine_fds")
    same = bool(middle) and bool(end) and middle[0].engine_pid == end[-1].engine_pid
    rss_pct = None if not rss_mid or rss_end is None else round(100 * (rss_end / rss_mid - 1), 2)
    fd_growth = None if fds_mid is None or fds_end is None else round(fds_end - fds_mid, 1)
    backlog_end = med(end, "journal_backlog")
    last_half = engine[len(engine) // 2 :]
    trading = [s for s in last_half if s.trading_state == "ACTIVE" and s.orders_in_window > 0]
    trading_share = round(len(trading) / len(last_half), 3) if last_half else None
    return {
        "engine_rss_growth_last_half_pct": {
            "middle_mb": rss_mid, "end_mb": rss_end, "value": rss_pct, "same_process": same,
            "limit": max_rss_growth_pct,
            "ok": rss_pct is not None and rss_pct < max_rss_growth_pct,
        },
        "engine_fd_growth_last_half": {
            "middle": fds_mid, "end": fds_end, "value": fd_growth, "limit": max_fd_growth,
            "ok": fd_growth is not None and fd_growth <= max_fd_growth,
        },
        "journal_backlog_at_end": {
            "value": backlog_end, "limit": 100,
            "ok": backlog_end is not None and backlog_end <= 100,
        },
        "trading_share_last_half": {  # samples ACTIVE with orders sent in their window
            "value": trading_share, "limit": MIN_TRADING_SHARE,
            "ok": trading_share is not None and trading_share >= MIN_TRADING_SHARE,
        },
    }  # fmt: skip


def plot(samples: list[Sample], events: list[tuple[float, str]], path: Path) -> None:
    """Write every series over time to one PNG, faults and operations as vertical lines."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    panels: list[tuple[str, list[tuple[str, str]]]] = [
        ("resident memory (MB)", [("engine_rss_mb", "engine"), ("worker_rss_mb", "worker")]),
        ("open file descriptors", [("engine_fds", "engine"), ("worker_fds", "worker")]),
        ("queues", [("journal_backlog", "journal backlog (events)"),
                    ("open_orders", "open orders"), ("unknown_orders", "unknown orders"),
                    ("orders_in_memory", "orders in the engine's memory")]),
        ("lags (s)", [("journal_lag_s", "journal"), ("market_data_lag_s", "market data")]),
        ("tick-to-order p99 (µs)", [("tick_to_order_p99_us", "window"),
                                    ("tick_to_order_p99_total_us", "whole run")]),
    ]  # fmt: skip
    figure = Figure(figsize=(10, 2.4 * len(panels)), dpi=100)
    axes_list = figure.subplots(len(panels), 1, sharex=True)
    times = [s.at_s / 60 for s in samples]
    for axes, (title, series) in zip(axes_list, panels, strict=True):
        for attr, label in series:
            values = [getattr(s, attr) for s in samples]
            axes.plot(times, [float("nan") if v is None else v for v in values], label=label)
        for at, _ in events:
            axes.axvline(at / 60, color="#c44", linewidth=0.6, alpha=0.5)
        if "µs" in title:
            axes.set_yscale("log")  # a journal outage's sends wait for the commit: 100x
        axes.set_title(title, fontsize="small")
        axes.legend(loc="upper left", fontsize="x-small")
    axes_list[-1].set_xlabel("minutes (red lines: faults and operations)")
    figure.tight_layout()
    figure.savefig(path, format="png")
