"""``bot4 liquidate``: the liquidation runbook with its usual knobs (through the API).

A thin wrapper over ``bot4 runbook run liquidation``: the arguments are checked here first
(a clear message naming the bad one, exit 2), then the control API starts the workflow.
``--wait`` follows it and exits 3 when it ends without the symbols flat (the deadline left
a remainder) or failed.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any, Final

from bot4 import console
from bot4.control_cli import EXIT_FOUND_PROBLEM, EXIT_OK
from bot4.control_commands import _run, _UsageError, client_for
from bot4.settings import Settings
from workflows.liquidation.models import LiquidationInput, check_input

DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
ENDED_BADLY: Final = ("FAILED", "TERMINATED", "TIMED_OUT", "CANCELED")
POLL_S: Final = 1.0


def parse_duration_s(text: str, *, name: str) -> float:
    """Return ``text`` (``90``, ``90s``, ``10m``, ``1h``, ``500ms``) in seconds.

    Raises:
        _UsageError: not a duration (the message names the option).
    """
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise _UsageError(f"{name} {text!r}: write a duration like 90s, 10m, 1h or 500ms")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def configure_parser(liquidate: argparse.ArgumentParser) -> None:
    """Add the options of ``bot4 liquidate``."""
    which = liquidate.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--symbol", action="append", default=None, metavar="BASE/QUOTE",
        help="a symbol to unwind (repeat for several)",
    )  # fmt: skip
    which.add_argument(
        "--all", action="store_true",
        help="every symbol the leader trades (a second operator approves)",
    )  # fmt: skip
    liquidate.add_argument("--deadline", default="10m", help="stop and report after (10m)")
    liquidate.add_argument("--mode", choices=("twap", "participation"), default="twap")
    liquidate.add_argument(
        "--max-participation", type=float, default=0.1,
        help="share of market volume per child (participation mode)",
    )  # fmt: skip
    liquidate.add_argument(
        "--band-bps", type=float, default=50.0,
        help="never trade further than this from the live mid",
    )  # fmt: skip
    liquidate.add_argument("--interval", default="2s", help="time between slices (2s)")
    liquidate.add_argument("--reason", default="", help="why (audit log, journal)")
    liquidate.add_argument("--dry-run", action="store_true", help="return the plan, change nothing")
    liquidate.add_argument("--wait", action="store_true", help="follow the run until it ends")
    liquidate.add_argument("--json", action="store_true", help="print JSON documents")


def params_of(args: argparse.Namespace) -> dict[str, Any]:
    """Return the runbook parameters of the arguments, checked like the workflow does.

    Raises:
        _UsageError: a bad argument, named.
    """
    deadline_s = parse_duration_s(args.deadline, name="--deadline")
    interval_s = parse_duration_s(args.interval, name="--interval")
    if deadline_s < 1 or deadline_s != int(deadline_s):
        raise _UsageError(f"--deadline {args.deadline}: a whole number of seconds, at least 1s")
    params: dict[str, Any] = {
        "deadline_s": int(deadline_s),
        "mode": args.mode,
        "max_participation": args.max_participation,
        "band_bps": args.band_bps,
        "slice_interval_ms": round(interval_s * 1000),
    }
    if args.all:
        params["all_symbols"] = True
    else:
        params["symbols"] = [s.upper() for s in args.symbol]
    if args.reason:
        params["reason"] = args.reason
    try:
        check_input(LiquidationInput(**{**params, "symbols": tuple(params.get("symbols", ()))}))
    except ValueError as e:
        raise _UsageError(_option_names(str(e))) from None
    return params


def _option_names(message: str) -> str:
    """Say the CLI's option names in a model's message."""
    options = (
        ("deadline_s", "--deadline"), ("max_participation", "--max-participation"),
        ("band_bps", "--band-bps"), ("slice_interval_ms", "--interval"),
        ("symbols", "--symbol"), ("mode", "--mode"),
    )  # fmt: skip
    for field, option in options:
        message = message.replace(field, option)
    return message


def liquidate_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``bot4 liquidate`` through the API."""

    def call() -> int:
        params = params_of(args)
        client = client_for(settings)
        body = {"params": params, "dry_run": args.dry_run}
        started = client.post("/v1/runbooks/liquidation/runs", body).body
        wid = started["workflow_id"]
        _say(args, started, f"started {wid}" + (" (dry run)" if args.dry_run else ""))
        if params.get("all_symbols") and not args.dry_run:
            _say(args, None, f"waiting for a second operator: bot4 runbook approve {wid}")
        return _follow(client, wid, args) if args.wait else EXIT_OK

    return _run(call)


def _follow(client: Any, workflow_id: str, args: argparse.Namespace) -> int:
    last = ""
    while True:
        document = client.get(f"/v1/runbooks/runs/{workflow_id}").body
        progress = document.get("progress") or {}
        line = f"{workflow_id}: {document['status']}"
        if progress.get("step"):
            line += f", step {progress['step']}"
        if progress.get("detail"):
            line += f" ({progress['detail']})"
        if line != last and not args.json:
            console.say(line)
        last = line
        if document["status"] != "RUNNING":
            break
        time.sleep(POLL_S)
    result = document.get("result") or {}
    if args.json:
        console.print_json(document)
    elif result:
        console.say(json.dumps(result, indent=2, default=str))
    elif document.get("failure"):
        console.error(f"{workflow_id}: {document['failure']}")
    if document["status"] in ENDED_BADLY:
        return EXIT_FOUND_PROBLEM
    if not result.get("dry_run") and not result.get("flat"):
        if not args.json:
            console.error(f"not flat: remaining {result.get('remaining')}")
        return EXIT_FOUND_PROBLEM
    return EXIT_OK


def _say(args: argparse.Namespace, document: Any, text: str) -> None:
    if args.json:
        if document is not None:
            console.print_json(document)
    else:
        console.say(text)
