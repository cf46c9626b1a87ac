"""CLI parsers of the control plane: ``api``, ``status``, ``keys``, ``audit``, engine actions.

Everything but ``bot4 api`` and ``bot4 keys bootstrap`` is a client of the control API
(``BOT4_API_URL``; key from ``BOT4_API_KEY`` or the bootstrap key file), so it is
authenticated, rate limited and audited like any other caller.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from bot4.api.clock import SystemClock
from bot4.settings import ROLE_NAMES

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_FOUND_PROBLEM: Final = 3

LOCAL_ONLY: Final = "LOCAL-ONLY (talks to PostgreSQL directly, not through the control API)"
_DURATION: Final = re.compile(r"^(\d+)([smhdw]?)$")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
ENGINE_ACTIONS: Final = {
    "pause": "stop taking new decisions (keeps orders and positions) [trader]",
    "drain": "stop opening risk, cancel resting orders [trader]",
    "flatten": "close every position with risk-reducing orders [operator]",
    "release-leadership": "stop sending, cancel, give up the trading lease [operator]",
    "acquire-leadership": "take the trading lease if it is free [operator]",
    "load-model": "load and activate a model version [operator]",
    "reduce": "take symbols out of the strategy: no quotes, only liquidation trades them [trader]",
    "restore": "give symbols back to the strategy (after a liquidation) [operator]",
}


def parse_duration(text: str, *, what: str, allow_never: bool) -> int:
    """Return seconds for ``90d``, ``12h``, ``30m``, ``45``, an ISO-8601 time, or ``never`` (0).

    Raises:
        ValueError: the text is none of these (the message names ``what``).
    """
    text = text.strip().lower()
    if text == "never" and allow_never:
        return 0
    match = _DURATION.match(text)
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    else:
        try:
            moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError:
            never = ", never" if allow_never else ""
            raise ValueError(
                f"{what}: {text!r} is not a duration (90d, 12h, 30m, 45s{never}) or an"
                " ISO-8601 time (2030-01-31T00:00:00Z)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = int((moment - SystemClock().now()).total_seconds())
        if seconds <= 0:
            raise ValueError(f"{what}: {text} is in the past")
    if seconds <= 0 and not allow_never:
        raise ValueError(f"{what}: must be more than 0 seconds")
    return seconds


def configure_parsers(commands: Any) -> None:
    """Add ``api``, ``status``, ``keys`` and ``audit`` to the CLI's subcommands."""
    api = commands.add_parser(
        "api",
        help="serve the control API here (`stack up` starts it) [LOCAL]",
        description="Serve the control API with uvicorn until SIGTERM. " + LOCAL_ONLY + ".",
    )
    api.add_argument("--host", default=None, help="bind address (default BOT4_API__HOST)")
    api.add_argument("--port", type=int, default=None, help="port (default BOT4_API__PORT)")

    status = commands.add_parser(
        "status", help="status of the stack and every engine, through the control API"
    )
    status.add_argument("--json", action="store_true", help="print a JSON document")

    keys = commands.add_parser("keys", help="API keys: bootstrap locally, manage through the API")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    boot = actions.add_parser(
        "bootstrap",
        help="create the first admin key and write it to a 0600 file [LOCAL]",
        description=(
            "Create the first admin key and write it to BOT4_API__KEY_FILE (default"
            " <home>/api/admin.key, mode 0600); the key is not printed. " + LOCAL_ONLY
            + "; refused while a usable admin key exists unless --force."
        ),
    )  # fmt: skip
    boot.add_argument("--name", default="bootstrap-admin", help="the key's name")
    boot.add_argument("--expires", default=None, help="lifetime (90d, 12h, ISO time, never)")
    boot.add_argument("--force", action="store_true", help="even if an admin key exists")
    create = actions.add_parser("create", help="create a key; it is printed once")
    create.add_argument("--role", required=True, choices=ROLE_NAMES, help="least privilege")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument("--expires", default=None, help="lifetime (90d, 12h, ISO time, never)")
    listing = actions.add_parser("list", help="list the keys (never their secrets)")
    listing.add_argument("--all", action="store_true", help="also revoked, expired, retired")
    show = actions.add_parser("show", help="show one key")
    show.add_argument("key_id", help="the key's id (16 hex digits)")
    rotate = actions.add_parser(
        "rotate", help="create a successor; the old key dies after the overlap"
    )
    rotate.add_argument("key_id", help="the key's id (16 hex digits)")
    rotate.add_argument("--overlap", default=None, help="old key stays valid (default setting)")
    rotate.add_argument("--expires", default=None, help="successor's lifetime (default: same)")
    revoke = actions.add_parser("revoke", help="revoke a key now")
    revoke.add_argument("key_id", help="the key's id (16 hex digits)")
    revoke.add_argument("--reason", required=True, help="why (kept with the key)")
    actions.add_parser("whoami", help="show the key this CLI uses")
    for sub in (boot, create, listing, show, rotate, revoke, actions.choices["whoami"]):
        sub.add_argument("--json", action="store_true", help="print a JSON document")

    audit = commands.add_parser("audit", help="query and verify the audit log (through the API)")
    audit_actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    rows = audit_actions.add_parser("list", help="show audit rows, newest first [operator]")
    rows.add_argument("--limit", type=int, default=50, help="rows (1..1000)")
    rows.add_argument("--before-seq", type=int, default=None, help="rows older than this seq")
    rows.add_argument("--since-seq", type=int, default=None, help="rows from this seq on")
    rows.add_argument("--key-id", default=None, help="one key's requests")
    rows.add_argument("--route", default=None, help="one route, e.g. /v1/halt")
    rows.add_argument("--correlation-id", default=None, help="one request")
    rows.add_argument("--status", type=int, default=None, help="one HTTP status")
    rows.add_argument("--decrypt", action="store_true", help="sensitive parameters [admin]")
    verify = audit_actions.add_parser(
        "verify",
        help="walk the hash chain; exit 3 naming the first broken row [operator]",
    )
    for sub in (rows, verify):
        sub.add_argument("--json", action="store_true", help="print a JSON document")


def configure_engine_actions(actions: Any) -> None:
    """Add the engine actions that only go through the control API."""
    for name, text in ENGINE_ACTIONS.items():
        sub = actions.add_parser(name, help=f"{text}, through the control API", description=text)
        sub.add_argument("--reason", required=True, help="why (kept in the engine's log)")
        sub.add_argument("--color", choices=("blue", "green", "all"), default="all")
        if name == "load-model":
            sub.add_argument("--version", required=True, help="model version to load")
        if name in ("reduce", "restore"):
            sub.add_argument("--symbol", action="append", required=True, metavar="SYMBOL",
                             help="BTC/USDT (repeat for more; * for every symbol)")  # fmt: skip
        sub.add_argument("--json", action="store_true", help="print a JSON document")
