"""Handlers of the control-plane commands (parsers in :mod:`bot4.control_cli`)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from bot4 import console
from bot4.api.client import Answer, ApiClient, find_key, key_file_warning
from bot4.api.errors import ApiError, ApiRefusedError, ApiUnreachableError
from bot4.control_cli import (
    EXIT_FAILED,
    EXIT_FOUND_PROBLEM,
    EXIT_OK,
    EXIT_USAGE,
    parse_duration,
)
from bot4.settings import Settings


class _UsageError(Exception):
    """Bad input or a missing key: exit 2."""


def client_for(settings: Settings) -> ApiClient:
    """Return a client with the CLI's key.

    Raises:
        _UsageError: no key is configured.
    """
    source = find_key(settings)
    if source is None:
        path = settings.api.effective_key_file(settings.home)
        raise _UsageError(
            "no API key: set BOT4_API_KEY, or run `bot4 keys bootstrap` where the database"
            f" is reachable (it writes {path})"
        )
    if source.origin != "BOT4_API_KEY":
        warning = key_file_warning(settings.api.effective_key_file(settings.home))
        if warning:
            console.say(f"warning: {warning}")
    return ApiClient(settings.effective_api_url(), source.key)


def _run(call: Callable[[], int]) -> int:
    """Run a client command; map its errors to messages and exit codes."""
    try:
        return call()
    except _UsageError as e:
        console.error(str(e))
        return EXIT_USAGE
    except ValueError as e:
        console.error(str(e))
        return EXIT_USAGE
    except ApiUnreachableError as e:
        console.error(str(e))
        return EXIT_FAILED
    except ApiRefusedError as e:
        console.error(refusal_text(e))
        return EXIT_FAILED


def refusal_text(error: ApiRefusedError) -> str:
    """Return an API refusal as a message that says what to do."""
    hint = {
        401: "check BOT4_API_KEY or the key file; `bot4 keys whoami` shows which key is used",
        403: "ask an admin for a key with a higher role, or call from an allow-listed network",
        429: "wait as Retry-After says, then retry",
    }.get(error.status, "")
    cid = f" (correlation id {error.correlation_id})" if error.correlation_id else ""
    return f"the control API refused: {error}{cid}" + (f"; {hint}" if hint else "")


def serve_api(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the control API until stopped."""
    from bot4.api.server import StartError, serve

    try:
        started = serve(settings, host=args.host, port=args.port)
    except StartError as e:
        console.error(f"the control API did not start: {e}")
        return EXIT_FAILED
    except OSError as e:
        console.error(f"cannot serve the API: {e.strerror or e}; check BOT4_API__HOST/PORT")
        return EXIT_FAILED
    if not started:
        console.error(
            "the control API did not start (see BOT4_HOME/log/bot4.log): is PostgreSQL up"
            " and migrated (`bot4 stack up`, `bot4 db migrate`)?"
        )
        return EXIT_FAILED
    return EXIT_OK


def status(args: argparse.Namespace, settings: Settings) -> int:
    """Print the stack's and the engines' status as the API sees it."""

    def call() -> int:
        document = client_for(settings).get("/v1/status").body
        if args.json:
            console.print_json(document)
        else:
            _print_status(document)
        return EXIT_OK if document.get("healthy") else EXIT_FOUND_PROBLEM

    return _run(call)


def _print_status(document: dict[str, Any]) -> None:
    stack = document.get("stack", {})
    rows = [
        [c.get("name"), "healthy" if c.get("healthy") else "DOWN", c.get("pid"), c.get("url")]
        for c in stack.get("components", [])
    ]
    if rows:
        console.print_table(["component", "health", "pid", "url"], rows)
    if "error" in stack:
        console.say(f"stack: {stack['error']}")
    engines = [
        [e["color"], e["url"], "yes" if e["reached"] else "no",
         (e.get("status") or {}).get("trading_state", e.get("error", "-"))]
        for e in document.get("engines", [])
    ]  # fmt: skip
    console.print_table(["engine", "url", "reached", "trading state"], engines)
    flag = document.get("kill_switch", {})
    console.say(f"kill switch: {'ENGAGED' if flag.get('engaged') else flag.get('error', 'off')}")


def keys_bootstrap(args: argparse.Namespace, settings: Settings) -> int:
    """Create the first admin key locally, into the key file."""
    from bot4.api.bootstrap import KeyFileError, bootstrap_admin
    from bot4.api.server import audit_key

    try:
        lifetime_s = (
            settings.api.key_lifetime_s
            if args.expires is None
            else parse_duration(args.expires, what="--expires", allow_never=True)
        )
    except ValueError as e:
        console.error(str(e))
        return EXIT_USAGE
    path = settings.api.effective_key_file(settings.home)
    try:
        done = asyncio.run(
            bootstrap_admin(settings.db.effective_dsn(), path=path, name=args.name,
                            lifetime_s=lifetime_s, force=args.force, audit_key=audit_key(settings))
        )  # fmt: skip
    except ApiError as e:
        console.error(e.message)
        return EXIT_FAILED
    except KeyFileError as e:
        console.error(f"{e}; nothing was created")
        return EXIT_FAILED
    now = done.key.created_at
    document = {**done.key.as_json(now), "key_file": str(done.path), "audit_seq": done.audit_seq}
    if args.json:
        console.print_json(document)
    else:
        console.say(f"admin key {done.key.id} written to {done.path} (mode 0600); not printed.")
        console.say("The CLI uses it from there; key management now goes through the API.")
    return EXIT_OK


def keys_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``bot4 keys create|list|show|rotate|revoke|whoami`` through the API."""

    def call() -> int:
        client = client_for(settings)
        action = args.keys_command
        if action == "create":
            body = {"name": args.name, "role": args.role}
            if args.expires is not None:
                body["expires_in_s"] = parse_duration(
                    args.expires, what="--expires", allow_never=True
                )
            return _print_new_key(client.post("/v1/keys", body), args)
        if action == "rotate":
            body = {}
            if args.overlap is not None:
                body["overlap_s"] = parse_duration(args.overlap, what="--overlap", allow_never=True)
            if args.expires is not None:
                body["expires_in_s"] = parse_duration(
                    args.expires, what="--expires", allow_never=True
                )
            return _print_new_key(client.post(f"/v1/keys/{_key_id(args)}/rotate", body), args)
        if action == "revoke":
            answer = client.post(f"/v1/keys/{_key_id(args)}/revoke", {"reason": args.reason})
            return _print_keys([answer.body], args)
        if action == "show":
            return _print_keys([client.get(f"/v1/keys/{_key_id(args)}").body], args)
        if action == "whoami":
            return _print_keys([client.get("/v1/whoami").body], args)
        return _print_keys(client.get("/v1/keys", params={"all": args.all}).body, args)

    return _run(call)


def _key_id(args: argparse.Namespace) -> str:
    key_id = str(args.key_id).strip()
    if len(key_id) != 16 or any(c not in "0123456789abcdef" for c in key_id):
        raise _UsageError(f"key id {key_id!r} is not 16 hex digits; `bot4 keys list` shows the ids")
    return key_id


def _print_new_key(answer: Answer, args: argparse.Namespace) -> int:
    document = answer.body
    if args.json:
        console.print_json(document)
        return EXIT_OK
    print(document["key"])  # stdout: the one time the key is shown
    expires = document.get("expires_at") or "never"
    console.say(
        f"key {document['id']} ({document['name']}, role {document['role']}, expires"
        f" {expires}) — shown once: store it now."
    )
    replaces = document.get("replaces")
    if replaces:
        console.say(f"the old key {replaces['id']} stays valid until {replaces['retires_at']}")
    return EXIT_OK


def _print_keys(keys: list[dict[str, Any]], args: argparse.Namespace) -> int:
    if args.json:
        console.print_json(keys if args.keys_command == "list" else keys[0])
        return EXIT_OK
    console.print_table(
        ["id", "name", "role", "state", "expires", "retires", "created by"],
        [[k["id"], k["name"], k["role"], k["state"], k["expires_at"], k["retires_at"],
          k["created_by"]] for k in keys],
    )  # fmt: skip
    return EXIT_OK


def audit_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``bot4 audit list|verify`` through the API."""

    def call() -> int:
        client = client_for(settings)
        if args.audit_command == "verify":
            report = client.get("/v1/audit/verify").body
            if args.json:
                console.print_json(report)
            elif report["ok"]:
                console.say(f"audit log intact: {report['rows_checked']} rows, head seq"
                            f" {report['head_seq']}")  # fmt: skip
            if not report["ok"]:
                console.error(
                    f"audit chain broken at row seq {report['broken_seq']}: {report['problem']}"
                    f" ({report['rows_checked']} rows before it are intact)"
                )
                return EXIT_FOUND_PROBLEM
            return EXIT_OK
        if not 1 <= args.limit <= 1000:
            raise _UsageError(f"--limit must be in 1..1000 (got {args.limit})")
        params = {
            "limit": args.limit,
            "before_seq": args.before_seq,
            "since_seq": args.since_seq,
            "key_id": args.key_id,
            "route": args.route,
            "status": args.status,
            "correlation_id": args.correlation_id,
            "decrypt": args.decrypt or None,
        }
        rows = client.get("/v1/audit", params=params).body
        if args.json:
            console.print_json(rows)
        else:
            console.print_table(
                ["seq", "at", "key", "role", "method", "route", "status", "outcome", "reason"],
                [[r["seq"], r["at"][:23], r["key_name"] or r["key_id"], r["role"], r["method"],
                  r["route"], r["status"], r["outcome"], r["reason"]] for r in rows],
            )  # fmt: skip
        return EXIT_OK

    return _run(call)


def engine_action(args: argparse.Namespace, settings: Settings) -> int:
    """Run an engine admin action through the API."""

    def call() -> int:
        action = str(args.engine_command).replace("-", "_")
        body: dict[str, object] = {"reason": args.reason}
        if action == "load_model":
            body["version"] = args.version
        if action in ("reduce", "restore"):
            body["symbols"] = list(args.symbol)
        answer = client_for(settings).post(
            f"/v1/engines/{args.color}/{action}", body, accept=(502, 503)
        )
        document = answer.body
        if args.json:
            console.print_json(document)
        else:
            console.print_table(
                ["engine", "url", "reached", "outcome"],
                [[e["color"], e["url"], "yes" if e["reached"] else "no",
                  "ok" if e["ok"] else e.get("error")] for e in document["engines"]],
            )  # fmt: skip
        return EXIT_OK if document.get("ok") else EXIT_FAILED

    return _run(call)
