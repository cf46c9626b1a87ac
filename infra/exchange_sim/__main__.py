"""``python -m infra.exchange_sim serve|fault ...``: the simulator's own entry point."""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

from bot4.logs import configure_logging
from bot4.settings import Settings
from infra.exchange_sim.cli import EXIT_USAGE, configure_parser, run_command


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, read settings, run the action; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.exchange_sim", description="Binance-compatible exchange simulator."
    )
    configure_parser(parser)
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as e:
        for problem in e.errors():
            path = "__".join(str(part) for part in problem["loc"]).upper()
            print(f"BOT4_{path}: {problem['msg']} (got {problem.get('input')!r})", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(log_dir=settings.home / "log", level=logging.INFO)
    return run_command(args, settings)


if __name__ == "__main__":
    sys.exit(main())
