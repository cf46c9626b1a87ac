"""The CLI's commands: parse nothing, print results, map errors to exit codes."""

from __future__ import annotations

import argparse

from bot4 import console
from bot4.settings import Settings
from infra.stack.errors import StackError

EXIT_OK = 0
EXIT_FAILED = 1
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
        rows.append([c.name, "healthy" if c.healthy else "DOWN", c.pid, c.url, extra])
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

    return run_demo(settings, as_json=args.json, keep_running=args.keep_running)
