"""The demo's trading step: engine blue trades against the simulator.

The engine runs exactly as in production (``bot4 engine run`` started through the local
platform, as the stack's worker starts engines during a rollout): it takes the lease,
reconciles, quotes, gets filled by the simulator's background agents and journals
everything in PostgreSQL. The demo shows its ``/status`` as it goes and reads the journal
at the end; the rollouts that follow (:mod:`bot4.demo_rollout`) take over from it.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import asyncpg

from bot4 import console
from bot4.settings import Settings
from infra.platform import Color, LocalPlatform

COLORS: Final[tuple[Color, ...]] = ("blue", "green")

DEMO_RELEASE: Final = {
    "version": "demo-1",
    "symbols": ["BTC/USDT", "ETH/USDT"],
    "model": {"builtin": "mlp"},
    "strategy": {"quote_lots": 20, "min_half_spread_ticks": 0.5, "base_half_spread_ticks": 0.5,
                 "taker_enabled": False, "requote_ticks": 2, "adverse_pull_ticks": 1500},
    "risk": {"max_order_notional": 100_000, "max_symbol_notional": 1_000_000,
             "max_position_lots": 100_000, "max_portfolio_exposure": 10_000_000,
             "max_depth_fraction": 5.0, "price_band_bps": 500},
    # ticks of 0.01 on prices in the thousands: protections sized in dollars, not cents
    "post_trade": {"stop_loss_ticks": 3000, "latency_arb_move_ticks": 100},
}  # fmt: skip
"""Tight quotes, so the simulator's agents trade against them within seconds."""


@dataclass(kw_only=True, slots=True)
class TradingResult:
    """What the demo's engine did."""

    ok: bool
    detail: str
    seconds: float
    status: dict[str, Any] = field(default_factory=dict)
    journal: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return {"ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 2),
                "status": self.status, "journal": self.journal}  # fmt: skip


async def run_trading(
    settings: Settings,
    platform: LocalPlatform,
    *,
    seconds: float,
    quiet: bool,
    release: dict[str, Any] | None = None,
) -> TradingResult:
    """Start engine blue through ``platform``, let it trade ``seconds``, report; leave it on.

    The caller stops the engines (:func:`stop_engines`), after any rollout that follows.
    """
    folder = settings.home / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    running = [c for c in COLORS if platform.status(c).running]
    if running:
        return TradingResult(
            ok=False,
            detail=f"engine {running[0]} already runs under {settings.home}: stop it first"
            " (`bot4 stack down` stops the engines with the stack)",
            seconds=0.0,
        )
    manifest = folder / "release.json"
    manifest.write_text(json.dumps(release or DEMO_RELEASE, indent=2) + "\n", encoding="utf-8")
    started = time.monotonic()
    before = await _journal_counts(settings)  # the journal is the desk's: it accumulates
    await asyncio.to_thread(platform.start, "blue", manifest)
    url = f"http://{settings.engine.host}:{settings.engine.blue_control_port}/status"
    status: dict[str, Any] = {}
    try:
        status = await _wait_for_leader(url, platform, deadline=time.monotonic() + 90)
        end = time.monotonic() + seconds
        while time.monotonic() < end and platform.status("blue").running:
            await asyncio.sleep(min(2.0, max(0.0, end - time.monotonic())))
            status = await _status(url) or status
            if not quiet:
                _say_progress(status)
    except TimeoutError as e:
        return TradingResult(ok=False, detail=f"{e} (see {platform.logs('blue')})",
                             seconds=time.monotonic() - started, status=status)  # fmt: skip
    after = await _journal_counts(settings)
    journal = {kind: after[kind] - before.get(kind, 0) for kind in after}
    alive = platform.status("blue").running
    ok = alive and journal.get("order_new", 0) > 0
    detail = f"{journal.get('order_new', 0)} orders, {journal.get('fills', 0)} fills journaled"
    if not alive:
        detail += f"; engine blue EXITED (see {platform.logs('blue')})"
    return TradingResult(ok=ok, detail=detail, seconds=time.monotonic() - started,
                         status=status, journal=journal)  # fmt: skip


def demo_platform(settings: Settings) -> LocalPlatform:
    """Return the local platform the stack's worker also uses, with this demo's settings."""
    return LocalPlatform(settings.home, env=_python_env() | settings.to_env())


def stop_engines(platform: LocalPlatform) -> list[str]:
    """Stop every engine color (SIGTERM: cancel, release the lease); return those stopped."""
    return [color for color in COLORS if platform.stop(color)]


def _python_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("BOT4_")}


async def _status(url: str) -> dict[str, Any] | None:
    try:
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as answer:
            return dict(await answer.json())
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


async def _wait_for_leader(url: str, platform: LocalPlatform, *, deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        if not platform.status("blue").running:
            raise TimeoutError("engine blue exited before leading")
        status = await _status(url)
        if status is not None and status.get("role") == "leader":
            return status
        await asyncio.sleep(0.3)
    raise TimeoutError("the engine did not take the lease within 90 s")


def _say_progress(status: dict[str, Any]) -> None:
    orders = status.get("orders") or {}
    console.say(
        f"  trading: state {status.get('trading_state')}, epoch {status.get('epoch')},"
        f" open orders {orders.get('open', 0)}, fills {orders.get('fills_recorded', 0)},"
        f" positions {status.get('positions')}, pnl {status.get('pnl')}"
    )


async def _journal_counts(settings: Settings) -> dict[str, int]:
    try:
        connection = await asyncpg.connect(settings.db.effective_dsn(), timeout=10)
    except (OSError, asyncpg.PostgresError) as e:
        console.error(f"could not read the journal: {e}")
        return {}
    try:
        rows = await connection.fetch(
            "SELECT kind, count(*) AS n FROM journal_events GROUP BY kind"
        )
        counts = {row["kind"]: int(row["n"]) for row in rows}
        counts["fills"] = int(await connection.fetchval("SELECT count(*) FROM fills"))
        return counts
    finally:
        await connection.close()
