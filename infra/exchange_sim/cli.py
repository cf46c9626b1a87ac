"""Command line of the simulator: ``serve`` and run-time fault control.

``bot4 exchange-sim serve`` (or ``python -m infra.exchange_sim serve``) runs the server;
``fault list|set|clear`` talk to a running simulator's admin routes. Exit codes: 0 ok,
1 the operation failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot4.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
ADMIN_TIMEOUT_S = 5.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's actions to ``parser``."""
    actions = parser.add_subparsers(dest="sim_command", required=True, metavar="ACTION")
    actions.add_parser("serve", help="run the exchange simulator (REST + websocket, one port)")
    fault = actions.add_parser("fault", help="list, set or clear injected faults")
    fault_actions = fault.add_subparsers(dest="fault_command", required=True, metavar="ACTION")
    listing = fault_actions.add_parser("list", help="show active faults and every known fault")
    listing.add_argument("--json", action="store_true", help="print a JSON document")
    setter = fault_actions.add_parser("set", help="activate a fault")
    setter.add_argument("name", help="fault name (see 'fault list')")
    setter.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="fault parameter, repeatable"
    )
    setter.add_argument("--json", action="store_true", help="print a JSON document")
    clearer = fault_actions.add_parser("clear", help="clear one fault, or all with --all")
    clearer.add_argument("name", nargs="?", help="fault name")
    clearer.add_argument("--all", action="store_true", help="clear every active fault")
    clearer.add_argument("--json", action="store_true", help="print a JSON document")


def _error(message: str) -> None:
    print(f"exchange-sim: {message}", file=sys.stderr)


def _params(pairs: list[str]) -> dict[str, str] | None:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _error(f"--param {pair!r} must look like key=value")
            return None
        params[key] = value
    return params


def _admin(settings: Settings, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import httpx

    token = settings.exchange.sim_admin_token.get_secret_value()
    with httpx.Client(base_url=settings.exchange.base_url(), timeout=ADMIN_TIMEOUT_S) as client:
        response = client.request(method, path, json=body, headers={"X-Bot4-Admin-Token": token})
    document = response.json()
    if response.status_code >= 400:
        raise ValueError(document.get("error", response.text))
    return document


def _print(document: Any, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(document, indent=2, sort_keys=True))
        return
    active = document.get("active", [])
    if "cleared" in document:
        print(f"cleared: {', '.join(document['cleared']) or 'nothing was active'}")
    if "dropped" in document:
        print(f"dropped websocket connections: {document['dropped']}")
    print("active faults:" if active else "active faults: none")
    for fault in active:
        params = " ".join(f"{k}={v}" for k, v in fault["params"].items())
        print(f"  {fault['name']} {params}".rstrip())
    for entry in document.get("catalog", []):
        defaults = " ".join(f"{k}={v}" for k, v in entry["params"].items())
        print(f"  available: {entry['name']:<18} {defaults:<24} {entry['doc']}")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one simulator action; return the exit code."""
    if args.sim_command == "serve":
        return serve(settings)
    import httpx

    try:
        if args.fault_command == "list":
            document = _admin(settings, "GET", "/admin/faults")
        elif args.fault_command == "set":
            params = _params(args.param)
            if params is None:
                return EXIT_USAGE
            document = _admin(settings, "PUT", f"/admin/faults/{args.name}", params)
        else:
            if bool(args.all) == bool(args.name):
                _error("fault clear needs a fault NAME or --all (not both)")
                return EXIT_USAGE
            path = "/admin/faults" if args.all else f"/admin/faults/{args.name}"
            document = _admin(settings, "DELETE", path)
    except httpx.HTTPError as e:
        _error(
            f"cannot reach the simulator at {settings.exchange.base_url()} ({e}). Start it with"
            " 'bot4 exchange-sim serve' or set BOT4_EXCHANGE__HOST / BOT4_EXCHANGE__PORT."
        )
        return EXIT_FAILED
    except ValueError as e:
        _error(str(e))
        return EXIT_USAGE
    _print(document, as_json=args.json)
    return EXIT_OK


def serve(settings: Settings) -> int:
    """Run the simulator until SIGINT or SIGTERM."""
    from aiohttp import web

    from infra.exchange_sim.config import config_from_settings
    from infra.exchange_sim.server import build_app

    try:
        config = config_from_settings(settings)
    except ValueError as e:
        _error(str(e))
        return EXIT_USAGE
    try:
        app = build_app(config)
        web.run_app(app, host=config.host, port=config.port, print=None, access_log=None)
    except OSError as e:
        _error(
            f"cannot listen on {config.host}:{config.port} ({e.strerror or e}). Stop whatever"
            f" listens there (ss -ltnp 'sport = :{config.port}') or choose another port with"
            " BOT4_EXCHANGE__PORT=<port>."
        )
        return EXIT_FAILED
    return EXIT_OK
