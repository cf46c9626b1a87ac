"""Throughput and latency of the engine's replay path.

    .venv/bin/python -m bench.engine_replay [--events N] [--seed S]

Generates a synthetic file (not timed), replays it through book + features + model + risk +
strategy + fills, and prints one JSON document: events, wall_s, events_per_s, ns_per_event,
decision_p50_ns / decision_p99_ns (one event decided by a call from Python with the packed
state: ``replay_packed``), risk_check_ns and
inference_ns (mean, measured in a compiled loop), peak_rss_mb (whole process).
"""

# ruff: noqa: PLR0917 -- numba kernels take positional arrays
# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.format import EventFile
from engine.data.generator import generate
from engine.dtypes import BUY, ORDER_LIMIT_POST_ONLY
from engine.kernels._jit import kernel
from engine.kernels.layout import BID_PX, FEAT_EWMA_VOL, GF_TOKENS
from engine.kernels.model_nb import MODEL_MLP, predict
from engine.kernels.replay_nb import replay_packed
from engine.kernels.risk_nb import check_order
from engine.models.artifact import default_weights
from engine.replay.config import ReplayConfig
from engine.replay.runner import CHUNK_EVENTS
from engine.replay.state import EngineState


@kernel
def _risk_loop(n: int, book: np.ndarray, sym_i: np.ndarray, sym_f: np.ndarray,
               positions: np.ndarray, limits: np.ndarray, params: np.ndarray,
               corr: np.ndarray, gf: np.ndarray) -> int:  # fmt: skip
    accepted = 0
    symbols = sym_i.shape[0]
    for k in range(n):
        s = k % symbols
        gf[GF_TOKENS] = 1e9  # measure the checks, not an empty token bucket
        code = check_order(0, s, BUY, book[s, BID_PX, 0] - (k & 3), 1 + (k & 7),
                           ORDER_LIMIT_POST_ONLY, k, book, sym_i, sym_f, positions,
                           limits, params, corr, gf)  # fmt: skip
        accepted += code == 0
    return accepted


@kernel
def _model_loop(n: int, kind: int, features: np.ndarray, mv: np.ndarray, w1: np.ndarray,
                scratch: np.ndarray) -> float:  # fmt: skip
    total = 0.0
    symbols = features.shape[0]
    for k in range(n):
        row = features[k % symbols]
        row[FEAT_EWMA_VOL] += 1e-9
        total += predict(kind, row, mv, w1, scratch)
    return total


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(events: int, seed: int, *, model: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bot4-bench-") as folder:
        path = Path(folder) / "events.npy"
        generate(path, events=events, seed=seed)
        # Flush the generated file to disk now: its writeback (400 MB at 10M events)
        # otherwise lands inside the timed replay and costs it up to a third.
        os.sync()
        rss_after_generate = _peak_rss_mb()
        file = EventFile.open(path, validate=False)
        validate_started = time.perf_counter()
        file.validate()
        validate_s = time.perf_counter() - validate_started
        weights = default_weights(MODEL_MLP if model == "mlp" else 0)
        config = ReplayConfig()

        def fresh() -> EngineState:
            h = file.header
            return EngineState.create(
                symbols=h.symbols,
                tick_size=h.tick_size,
                lot_size=h.lot_size,
                config=config,
                weights=weights,
            )

        # warm up (compile or load the cache) on a small slice
        warm = fresh()
        for _, chunk in file.chunks(50_000):
            warm.run(chunk)
            break
        state = fresh()
        started = time.perf_counter()
        for _, chunk in file.chunks(CHUNK_EVENTS):
            state.run(chunk)
        wall = time.perf_counter() - started
        summary = state.summary()

        # one event at a time, from Python, continuing a warmed-up state
        single = fresh()
        sample = next(iter(file.chunks(min(events, 200_000))))[1].copy()
        single.run(sample, 0, sample.shape[0] // 2)
        arena = single.arena
        sample_bytes = sample.view(np.uint8)
        timings = []
        for k in range(sample.shape[0] // 2, sample.shape[0]):
            t0 = time.perf_counter_ns()
            replay_packed(sample_bytes, k, k + 1, arena)
            timings.append(time.perf_counter_ns() - t0)
        lat = np.array(timings, dtype=np.float64)

        n_risk = 2_000_000
        _risk_loop(10, single.book, single.sym_i, single.sym_f, single.positions,
                   single.limits, single.params, single.corr, single.gf.copy())  # fmt: skip
        t0 = time.perf_counter_ns()
        _risk_loop(n_risk, single.book, single.sym_i, single.sym_f, single.positions,
                   single.limits, single.params, single.corr, single.gf.copy())  # fmt: skip
        risk_ns = (time.perf_counter_ns() - t0) / n_risk
        feats = single.features.copy()
        _model_loop(10, single.model_kind, feats, single.mv, single.w1, single.scratch)
        t0 = time.perf_counter_ns()
        _model_loop(n_risk, single.model_kind, feats, single.mv, single.w1, single.scratch)
        model_ns = (time.perf_counter_ns() - t0) / n_risk
    return {
        "events": events,
        "wall_s": round(wall, 4),
        "events_per_s": round(events / wall),
        "ns_per_event": round(wall * 1e9 / events, 1),
        "decision_p50_ns": round(float(np.percentile(lat, 50))),
        "decision_p99_ns": round(float(np.percentile(lat, 99))),
        "risk_check_ns": round(risk_ns, 1),
        "inference_ns": round(model_ns, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_rss_after_generate_mb": round(rss_after_generate, 1),
        "validate_s": round(validate_s, 4),
        "model": weights.version,
        "fills": summary["fills"],
        "orders": summary["orders"],
        "pnl": summary["pnl"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", choices=("linear", "mlp"), default="mlp")
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.seed, model=args.model), indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
