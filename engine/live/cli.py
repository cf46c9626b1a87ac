"""``bot4 engine run``: arguments, errors an operator can act on, exit codes."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Final

from bot4 import console
from bot4.settings import Settings

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2


def configure_run_parser(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``bot4 engine run``."""
    parser.add_argument(
        "--color",
        choices=("blue", "green"),
        required=True,
        help="deploy slot; picks the control port",
    )
    parser.add_argument("--release", type=Path, required=True, help="release manifest (JSON)")
    parser.add_argument(
        "--instance",
        default=None,
        help="lease holder and client-order-id prefix (default: the color)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        help="record live market data to this event file (.npy)",
    )
    parser.add_argument(
        "--standby",
        action="store_true",
        help="do not contend for the lease (shadow until acquire_leadership)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=3.0,
        help="seconds a lease lasts unrenewed: the takeover bound",
    )
    parser.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="control HTTP port (default: the color's, from settings)",
    )


def run_engine_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one engine until SIGTERM / SIGINT."""
    from engine.errors import EngineError
    from engine.live.release import ReleaseError
    from engine.live.run import RunOptions, serve

    problem = _argument_problem(args)
    if problem is not None:
        console.error(problem)
        return EXIT_BAD_INPUT
    options = RunOptions(
        color=args.color,
        release=args.release,
        instance=args.instance,
        record=args.record,
        lead=not args.standby,
        lease_ttl_s=args.lease_ttl,
        control_port=args.control_port,
    )
    try:
        asyncio.run(serve(settings, options))
    except ReleaseError as e:
        console.error(f"{e}\nfix the release manifest and start again; nothing was started")
        return EXIT_BAD_INPUT
    except ValueError as e:
        console.error(f"bad engine configuration: {e}")
        return EXIT_BAD_INPUT
    except EngineError as e:
        console.error(f"engine stopped: {e}\ncheck the venue (bot4 stack status) and restart")
        return EXIT_FAILED
    except OSError as e:
        console.error(
            f"engine stopped: {e}\ncheck PostgreSQL (BOT4_DB__DSN) and that the control port"
            " is free, then restart"
        )
        return EXIT_FAILED
    return EXIT_OK


def _argument_problem(args: argparse.Namespace) -> str | None:
    if args.lease_ttl <= 0.3:
        return f"--lease-ttl must be > 0.3 seconds (got {args.lease_ttl})"
    if args.control_port is not None and not 0 <= args.control_port <= 65535:
        return f"--control-port must be in 0..65535 (got {args.control_port})"
    if not args.release.is_file():
        return f"--release: no such file {args.release}"
    return None
