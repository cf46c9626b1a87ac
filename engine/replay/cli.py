"""CLI functions for ``bot4 replay`` and ``bot4 data generate`` (wired in by bot4/cli.py).

Exit codes: 0 success, 1 the operation failed, 2 bad input (the message names the problem).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2
MAX_EVENTS: Final = 2_000_000_000


class _Progress:
    """Prints ``label: done/total`` to stderr at most twice a second, after the first second."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.last = self.started

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.started < 1.0 or (now - self.last < 0.5 and done < total):
            return
        self.last = now
        print(f"{self.label}: {done:,}/{total:,} events ({now - self.started:.1f}s)",
              file=sys.stderr)  # fmt: skip


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def configure_replay_parser(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``bot4 replay``."""
    parser.add_argument("--events", type=Path, required=True, help="event file (.npy)")
    parser.add_argument("--model", type=Path, help="model artifact (.npz); default: built-in")
    parser.add_argument("--json", action="store_true", help="print a JSON document")


def run_replay_command(args: argparse.Namespace, settings: object) -> int:
    """Replay an event file and print PnL, orders, fills, denials and max drawdown."""
    from engine.data.format import EventFileError
    from engine.models.artifact import ModelArtifactError, ModelWeights
    from engine.replay.runner import replay_file

    del settings  # the replay reads no platform settings yet
    try:
        weights = ModelWeights.load(args.model) if args.model is not None else None
        started = time.perf_counter()
        _, summary = replay_file(args.events, weights=weights, progress=_Progress("replay"))
        wall = time.perf_counter() - started
    except (EventFileError, ModelArtifactError) as e:
        _error(str(e))
        return EXIT_BAD_INPUT
    except OSError as e:
        _error(f"replay failed: {e}")
        return EXIT_FAILED
    summary["wall_s"] = round(wall, 3)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    return EXIT_OK


def _print_summary(summary: dict[str, Any]) -> None:
    print(f"events        {summary['events']:,}  ({summary['wall_s']} s)")
    print(f"pnl           {summary['pnl']:.4f}  (fees {summary['fees']:.4f})")
    print(f"orders        {summary['orders']:,}  (taker {summary['taker_orders']:,}, "
          f"cancels {summary['cancels']:,})")  # fmt: skip
    print(f"fills         {summary['fills']:,}")
    denials = ", ".join(f"{k} {v:,}" for k, v in summary["denials"].items()) or "none"
    print(f"denials       {denials}")
    print(f"max drawdown  {summary['max_drawdown']:.4f}")
    print(f"trading state {summary['trading_state']}  (stops {summary['stops']}, "
          f"latency-arb fills {summary['latency_arb_fills']})")  # fmt: skip
    integrity = ", ".join(f"{k} {v:,}" for k, v in summary["book_integrity"].items()) or "clean"
    print(f"book          {integrity}")


def configure_data_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``bot4 data generate``."""
    actions = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    gen = actions.add_parser(
        "generate", help="write a synthetic event file", description="write a synthetic event file"
    )
    gen.add_argument("--events", type=int, required=True, help="number of events (> 0)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (>= 0)")
    gen.add_argument("--out", type=Path, required=True, help="output file (.npy)")
    gen.add_argument("--json", action="store_true", help="print a JSON document")


def run_data_command(args: argparse.Namespace, settings: object) -> int:
    """Run ``bot4 data generate``."""
    from engine.data.generator import generate

    del settings
    if args.data_command != "generate":
        _error(f"unknown data action {args.data_command!r}; expected 'generate'")
        return EXIT_BAD_INPUT
    if not 0 < args.events <= MAX_EVENTS:
        _error(f"--events must be between 1 and {MAX_EVENTS:,}, got {args.events}")
        return EXIT_BAD_INPUT
    if args.seed < 0:
        _error(f"--seed must be >= 0, got {args.seed}")
        return EXIT_BAD_INPUT
    out: Path = args.out
    if not out.parent.is_dir():
        _error(f"--out: folder {out.parent} does not exist")
        return EXIT_BAD_INPUT
    started = time.perf_counter()
    try:
        header = generate(out, events=args.events, seed=args.seed, progress=_Progress("generate"))
    except OSError as e:
        _error(f"cannot write {out}: {e}")
        return EXIT_FAILED
    document = {
        "out": str(out),
        "events": args.events,
        "seed": args.seed,
        "symbols": list(header.symbols),
        "bytes": out.stat().st_size,
        "wall_s": round(time.perf_counter() - started, 3),
    }
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(f"wrote {args.events:,} events ({document['bytes']:,} bytes) to {out}")
    return EXIT_OK
