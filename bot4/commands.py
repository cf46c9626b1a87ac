"""The CLI's commands: parse nothing, print results, map errors to exit codes."""

from __future__ import annotations

import argparse

from bot4 import console
from bot4.settings import Settings
from infra.stack.errors import StackError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNHEALTHY = 3


def stack_up(args: argparse.Namespace, settings: Settings) -> int:
    """Start the stack and print where everything is."""
    from infra.stack.launcher import Stack

    stack = Stack(settings)
    console.say(f"bot4 stack up (BOT4_HOME={settings.home})")
    try:
        outcomes = stack.up(console.ConsoleProgress())
    except StackError as e:
        console.error(str(e))
        return EXIT_FAILED
    status = stack.status()
    if args.json:
        document = status.as_json()
        document["outcomes"] = outcomes
        console.print_json(document)
    else:
        print_status(status)
    return EXIT_OK if status.healthy else EXIT_UNHEALTHY


def stack_down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop everything this state folder started."""
    from infra.stack.launcher import Stack

    stack = Stack(settings)
    try:
        stopped = stack.down(console.ConsoleProgress())
    except StackError as e:
        console.error(str(e))
        return EXIT_FAILED
    left = stack.pids()
    if args.json:
        console.print_json({"stopped": stopped, "still_running_pids": left})
    else:
        console.say(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    if left:
        console.error(f"processes still running: {left}; stop them with kill and retry")
        return EXIT_FAILED
    return EXIT_OK


def stack_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print each component's URL, pid and health."""
    from infra.stack.launcher import Stack

    try:
        status = Stack(settings).status()
    except StackError as e:
        console.error(str(e))
        return EXIT_FAILED
    if args.json:
        console.print_json(status.as_json())
    else:
        print_status(status)
    return EXIT_OK if status.healthy else EXIT_UNHEALTHY


def print_status(status: object) -> None:
    """Print the status table of a StackStatus."""
    from infra.stack.launcher import StackStatus

    assert isinstance(status, StackStatus)
    rows = []
    for c in status.components:
        extra = c.details.get("role") or c.details.get("ui_url") or ""
        health = "skipped" if c.details.get("skipped") else "healthy" if c.healthy else "DOWN"
        rows.append([c.name, health, c.pid, c.url, extra])
    console.print_table(["component", "health", "pid", "url", "role / ui"], rows)


def db_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending migrations."""
    from infra.postgres.migrate import apply_migrations_sync

    try:
        applied = apply_migrations_sync(settings.db.effective_dsn())
    except StackError as e:
        console.error(str(e))
        return EXIT_FAILED
    if args.json:
        console.print_json({"applied": applied})
    else:
        console.say(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    return EXIT_OK


def demo(args: argparse.Namespace, settings: Settings) -> int:
    """Bring the stack up, prove every component with a round trip, bring it down."""
    from bot4.demo import run_demo

    if args.trade_seconds < 0:
        console.error(f"--trade-seconds must be >= 0 (got {args.trade_seconds})")
        return EXIT_USAGE
    return run_demo(
        settings,
        as_json=args.json,
        keep_running=args.keep_running,
        trade_seconds=args.trade_seconds,
        rollouts=not args.no_rollouts,
    )


def worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the Temporal worker until SIGTERM or SIGINT."""
    import asyncio

    from workflows.worker import serve

    del args
    try:
        asyncio.run(serve(settings))
    except RuntimeError as e:  # the SDK's core reports connect and bind failures this way
        console.error(
            f"the worker stopped: {e}. Is Temporal up at {settings.temporal.effective_address()}"
            f" (bot4 stack status), and is port {settings.worker.metrics_port} free"
            " (BOT4_WORKER__METRICS_PORT)?"
        )
        return EXIT_FAILED
    return EXIT_OK


def engine_halt(args: argparse.Namespace, settings: Settings) -> int:
    """Engage the kill-switch flag and halt every reachable engine; verify."""
    return _engine_command(args, settings, engaged=True)


def engine_resume(args: argparse.Namespace, settings: Settings) -> int:
    """Disengage the kill-switch flag (and, with --engines, resume the engines)."""
    return _engine_command(args, settings, engaged=False)


def _engine_command(args: argparse.Namespace, settings: Settings, *, engaged: bool) -> int:
    from bot4.api.client import find_key

    if args.direct:
        why = "--direct"
    elif find_key(settings) is None:
        why = "no API key (BOT4_API_KEY or the bootstrap key file)"
    else:
        code, why = _engine_via_api(args, settings, engaged=engaged)
        if code is not None:
            return code
        if not engaged:  # raising risk is never done behind the API's back without asking
            console.error(
                f"{why}. A resume does not fall back to the direct path by itself; run"
                " `bot4 engine resume --direct ...` to resume without the API."
            )
            return EXIT_FAILED
    return _engine_direct(args, settings, engaged=engaged, why=why)


def _engine_via_api(
    args: argparse.Namespace, settings: Settings, *, engaged: bool
) -> tuple[int | None, str]:
    """Halt or resume through the control API; (None, why) when the API cannot serve it."""
    from bot4.api.errors import ApiRefusedError, ApiUnreachableError
    from bot4.control_commands import client_for, refusal_text

    client = client_for(settings)
    body: dict[str, object] = {"reason": args.reason, "color": args.color}
    if not engaged:
        body["engines"] = args.engines
    try:
        answer = client.post("/v1/halt" if engaged else "/v1/resume", body, accept=(502, 503))
    except ApiUnreachableError as e:
        return None, str(e)
    except ApiRefusedError as e:
        if e.status == 503:
            return None, f"the control API could not serve it ({e.message})"
        verb = "halt" if engaged else "resume"
        console.error(
            f"{refusal_text(e)}. To {verb} without the API: `bot4 engine {verb} --direct`"
            " (needs the database and the engines' control token)"
        )
        return EXIT_FAILED, ""
    if answer.status == 503:
        return None, "the control API reached neither the kill switch nor an engine"
    document: dict[str, object] = {
        "path": "api",
        "api_url": client.base_url,
        "correlation_id": answer.correlation_id,
        **answer.body,
    }
    if args.json:
        console.print_json(document)
    else:
        console.say(
            f"path: control API at {client.base_url} (audited, correlation id"
            f" {answer.correlation_id})"
        )
        _say_engine_outcome(document, engaged=engaged)
    engines = document.get("engines")
    for engine in engines if isinstance(engines, list) else []:
        if engine.get("reached") and not engine.get("ok"):
            console.error(f"engine {engine['color']} at {engine['url']}: {engine.get('error')}")
    return (EXIT_OK if document.get("ok") else EXIT_FAILED), ""


def _engine_direct(args: argparse.Namespace, settings: Settings, *, engaged: bool, why: str) -> int:
    import asyncio
    from pathlib import Path

    from engine.live.run import control_token_path

    token = ""
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as e:
            console.error(f"--token-file: cannot read {args.token_file}: {e.strerror}")
            return EXIT_USAGE
    elif settings.engine.control_token is not None:
        token = settings.engine.control_token.get_secret_value()
    elif control_token_path(settings).exists():
        token = control_token_path(settings).read_text().strip()
    return asyncio.run(_engine_paths(args, settings, token=token, engaged=engaged, why=why))


async def _engine_paths(
    args: argparse.Namespace, settings: Settings, *, token: str, engaged: bool, why: str
) -> int:
    import getpass

    by: str = args.by or getpass.getuser()
    flag = await _set_flag(settings, args, by, engaged)
    flag_ok = "error" not in flag
    action = "halt" if engaged else ("resume" if args.engines else None)
    engines = [] if action is None else await _call_engines(args, settings, action, by, token)
    document: dict[str, object] = {
        "path": "direct",
        "path_reason": why,
        "kill_switch": flag,
        "engines": engines,
    }
    answered = [e for e in engines if e["reached"]]
    refused = [e for e in answered if not e["ok"]]
    document["ok"] = (flag_ok or bool(answered)) and not refused
    if args.json:
        console.print_json(document)
    else:
        console.say(f"path: direct — PostgreSQL flag + engine control endpoints ({why})")
        _say_engine_outcome(document, engaged=engaged)
    for engine in refused:
        console.error(f"engine {engine['color']} at {engine['url']}: {engine['error']}")
    if not flag_ok and not answered:
        what = "halted" if engaged else "resumed"
        console.error(
            f"nothing was {what}: the kill-switch flag could not be written"
            f" ({document['kill_switch']}) and no engine control endpoint answered."
            " Check BOT4_DB__DSN and the engines' ports (bot4 stack status); for a halt,"
            " cancel the orders at the venue directly."
        )
    return EXIT_OK if document["ok"] else EXIT_FAILED


async def _set_flag(
    settings: Settings, args: argparse.Namespace, by: str, engaged: bool
) -> dict[str, object]:
    import asyncpg

    from engine.live.killswitch import set_kill_switch

    try:
        connection = await asyncpg.connect(settings.db.effective_dsn(), timeout=args.timeout)
        try:
            state = await set_kill_switch(connection, engaged=engaged, reason=args.reason, by=by)
        finally:
            await connection.close()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    return state.as_json()


async def _call_engines(
    args: argparse.Namespace, settings: Settings, action: str, by: str, token: str
) -> list[dict[str, object]]:
    import asyncio

    from engine.live.control import ControlUnreachableError, post_admin

    ports = {"blue": settings.engine.blue_control_port, "green": settings.engine.green_control_port}
    colors = list(ports) if args.color == "all" else [args.color]

    async def call(color: str) -> dict[str, object]:
        url = f"http://{settings.engine.host}:{ports[color]}"
        row: dict[str, object] = {"color": color, "url": url, "reached": False, "ok": False}
        if not token:
            return row | {"error": "no control token: pass --token-file"}
        payload = {"reason": args.reason, "by": by}
        try:
            answer = await post_admin(
                url, action, token=token, payload=payload, timeout_s=args.timeout
            )
        except ControlUnreachableError as e:
            return row | {"error": str(e)}
        row |= {"reached": True, "status": answer.status, "answer": answer.body}
        if answer.status == 200:
            return row | {"ok": True}
        return row | {"error": f"HTTP {answer.status}: {answer.body.get('error', answer.body)}"}

    return list(await asyncio.gather(*(call(color) for color in colors)))


def _say_engine_outcome(document: dict[str, object], *, engaged: bool) -> None:
    flag = document["kill_switch"]
    assert isinstance(flag, dict)
    if "error" in flag:
        console.say(f"kill switch: NOT written ({flag['error']})")
    else:
        console.say(f"kill switch: {'ENGAGED' if flag['engaged'] else 'disengaged'}")
    engines = document["engines"]
    assert isinstance(engines, list)
    rows = [
        [e["color"], e["url"], "yes" if e["reached"] else "no", "ok" if e["ok"] else e["error"]]
        for e in engines
    ]
    if rows:
        console.print_table(["engine", "url", "reached", "outcome"], rows)
    if engaged and "error" not in flag and not any(e["reached"] for e in engines):
        console.say("no engine answered; running engines halt on their next poll of the flag")
