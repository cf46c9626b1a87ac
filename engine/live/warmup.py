"""Compile the live path's kernels before the engine trades, and notice any compiled later.

numba compiles a kernel on its first call for each type signature, or loads it from its
on-disk cache when the code has not changed. A new release (new code, a cold cache)
compiled the whole live path inside the first market-data callback instead: the engine's
loop stood still for 25 s on an idle 2-core machine and 40 s on a loaded one, so its
streams went stale, its journal writes timed out, and a takeover's first venue call
(the starting balances) timed out and failed the takeover.

:func:`warm_kernels` runs the live path once on made-up data (a throwaway decider, never
the engine's) through the very functions the feeds and the decider call, so every kernel
meets its live types: a book view of two-column levels and one of three (``[price,
amount, count]``, a strided view: another compilation), trades, a decision under each
trading state, a fill, and a shadowed model scored beside the active one.

:class:`KernelWatch` counts compiled signatures afterwards: a kernel compiled while the
engine trades is a warm-up that missed a type, and the engine logs which.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import engine.kernels
from engine.dtypes import ACTIVE, BUY, HALTED, REDUCING
from engine.execution.book import checked_levels
from engine.execution.instruments import Instrument
from engine.execution.trade_feed import trades_to_records
from engine.live.decide import LiveDecider
from engine.live.release import Release

_WARM_BUFFER_EVENTS = 4_096
_LEVELS = 5
_MID_TICKS = 100_000  # any price on the grid will do; kernels specialise on types only


def warm_kernels(release: Release, instruments: Sequence[Instrument]) -> float:
    """Run every kernel of the live path once on made-up data; return the seconds taken.

    Nothing of the engine's state is touched: the decider here is thrown away.
    """
    started = time.perf_counter()
    decider = LiveDecider(
        release,
        tick_size=tuple(float(i.tick_size) for i in instruments),
        lot_size=tuple(float(i.lot_size) for i in instruments),
        buffer_events=_WARM_BUFFER_EVENTS,
        export_metrics=False,  # made-up denials must not reach the engine's counters
    )
    decider.models.shadow(release.model)  # the candidate scorer: predict called from Python
    depth = release.config.book_depth
    for step, columns in enumerate((2, 3)):  # ccxt levels: [price, amount] or with a count
        for instrument in instruments:
            bids, asks = _book_view(instrument, columns)
            levels, problem = checked_levels(bids, asks, instrument=instrument, depth=depth,
                                             update_id=step + 1, ts_ns=time.time_ns(),
                                             previous_update_id=step or None)  # fmt: skip
            if problem is not None:  # made-up data the feed refuses: a bug of this module
                raise RuntimeError(f"warm-up book of {instrument.symbol} refused: {problem}")
            decider.add_book_view(levels, received_ns=time.monotonic_ns())
            decider.add_trades(trades_to_records(_trades(instrument, step), instrument))
        for state in (ACTIVE, REDUCING, HALTED):
            decider.decide(state)
        decider.desired_quotes()
    decider.apply_fill(symbol_id=0, side=BUY, price_ticks=_MID_TICKS - 1, qty_lots=1,
                       maker=True, ts_ns=time.time_ns())  # fmt: skip
    decider.decide(ACTIVE)
    return time.perf_counter() - started


def _book_view(instrument: Instrument, columns: int) -> tuple[list[list[float]], ...]:
    def level(ticks: int) -> list[float]:
        price = float(instrument.ticks_to_price(ticks))
        amount = float(instrument.lot_size * 3)
        return [price, amount, 1.0][:columns]

    bids = [level(_MID_TICKS - 1 - i) for i in range(_LEVELS)]
    asks = [level(_MID_TICKS + 1 + i) for i in range(_LEVELS)]
    return bids, asks


def _trades(instrument: Instrument, step: int) -> list[dict[str, Any]]:
    price = instrument.ticks_to_price(_MID_TICKS)
    amount = instrument.lot_size * Decimal(2)
    return [
        {"id": str(10 * step + n + 1), "timestamp": 1_700_000_000_000 + n, "price": str(price),
         "amount": str(amount), "side": side}
        for n, side in enumerate(("buy", "sell"))
    ]  # fmt: skip


def _dispatchers() -> dict[str, Any]:
    """Return every numba dispatcher of ``engine.kernels`` by qualified name."""
    found: dict[str, Any] = {}
    for module_info in pkgutil.iter_modules(engine.kernels.__path__):
        module = importlib.import_module(f"engine.kernels.{module_info.name}")
        for name, value in vars(module).items():
            python = getattr(value, "py_func", None)
            # a dispatcher of this module's own, not one imported from another
            own = python is not None and python.__module__ == module.__name__
            if own and hasattr(value, "signatures"):
                found[f"{module_info.name}.{name}"] = value
    return found


class KernelWatch:
    """Counts each kernel's compiled signatures; :meth:`new` names those added since."""

    def __init__(self) -> None:
        self._dispatchers = _dispatchers()
        self._seen = self._counts()

    def _counts(self) -> dict[str, int]:
        return {name: len(d.signatures) for name, d in self._dispatchers.items()}

    def new(self) -> list[str]:
        """Return the kernels compiled (or loaded) since the last call, and remember them."""
        counts = self._counts()
        grown = sorted(name for name, n in counts.items() if n > self._seen.get(name, 0))
        self._seen = counts
        return grown


def warm_default() -> float:
    """Warm the kernels for a made-up two-symbol release (numba keys on types, not values).

    Fills numba's on-disk cache, so every process started afterwards loads the kernels
    instead of compiling them: ``make test`` runs it once before the suite's processes.
    """
    release = Release.from_mapping(
        {"version": "warmup", "symbols": ["BTC/USDT", "ETH/USDT"], "model": {"builtin": "linear"}},
        source="warm-up",
    )
    return warm_kernels(release, made_up_instruments(release.symbols))


def made_up_instruments(symbols: Sequence[str]) -> list[Instrument]:
    """Return instruments of ``symbols`` on a made-up grid (tick 0.01, lot 0.00001)."""
    return [
        Instrument(symbol=s, symbol_id=i, market_id=s.replace("/", ""),
                   tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"))
        for i, s in enumerate(symbols)
    ]  # fmt: skip


if __name__ == "__main__":
    print("compiling the engine's kernels into numba's cache (first run ~30 s) ...", flush=True)
    print(json.dumps({"kernels_warm_s": round(warm_default(), 3)}))
