"""``bot4``: the command line of the platform.

Exit codes: 0 success; 1 the operation failed (the message says what to do; ``engine
halt``: neither the kill-switch flag nor any engine was reached, or an engine could not
verify its halt; a command through the control API: refused or unreachable); 2 bad
arguments or configuration (including no API key); 3 ``stack status`` / ``status`` found
something unhealthy, or ``audit verify`` found a broken chain.

Most commands are clients of the control API (``bot4 api``); the local-only ones say so in
their help: ``stack``, ``db migrate``, ``keys bootstrap``, ``api``, ``exchange-sim``,
``replay``, ``data``, ``model train``, ``demo``, ``engine run``, and
``engine halt|resume --direct``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from bot4 import console
from bot4.logs import configure_logging, operation
from bot4.settings import Settings

EXIT_USAGE = 2  # argparse uses the same code for bad arguments
_SECRET = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|DSN")

Handler = Callable[[argparse.Namespace, Settings], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot4",
        description="Operations platform for an automated crypto trading desk.",
        epilog="Settings come from BOT4_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = commands.add_parser("stack", help="start, stop and inspect the local servers [LOCAL]")
    stack_commands = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    for name, text in (
        ("up", "start every server (reusing running ones) and migrate the schema"),
        ("down", "stop every server this state folder started"),
        ("status", "show each server's URL, pid and health (exit 3 if any is unhealthy)"),
    ):
        sub = stack_commands.add_parser(name, help=text, description=text)
        sub.add_argument("--json", action="store_true", help="print a JSON document")

    db = commands.add_parser("db", help="database operations [LOCAL]")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    migrate = db_commands.add_parser(
        "migrate", help="apply pending schema migrations [LOCAL: PostgreSQL directly]"
    )
    migrate.add_argument("--json", action="store_true", help="print a JSON document")

    from engine.replay.cli import configure_data_parser, configure_replay_parser
    from infra.exchange_sim.cli import configure_parser as configure_sim_parser

    configure_sim_parser(
        commands.add_parser(
            "exchange-sim", help="run the local exchange simulator, or inject faults into it"
        )
    )
    configure_replay_parser(
        commands.add_parser("replay", help="run the strategy over an event file (backtest)")
    )
    configure_data_parser(commands.add_parser("data", help="generate or inspect event files"))

    _engine_parser(commands.add_parser("engine", help="control running engines"))

    commands.add_parser(
        "worker",
        help="run the Temporal worker: every workflow and activity, metrics on worker.metrics_port",
    )

    from bot4.control_cli import configure_parsers

    configure_parsers(commands)

    from bot4.runbook_cli import configure_parser as configure_runbook_parser
    from bot4.runbook_cli import configure_rollout_parser

    configure_runbook_parser(
        commands.add_parser(
            "runbook", help="list, read, run, follow, approve and abort runbooks (through the API)"
        )
    )
    configure_rollout_parser(
        commands.add_parser("rollout", help="roll out a new release (runbooks, through the API)")
    )
    from bot4.model_cli import configure_parser as configure_model_parser

    configure_model_parser(
        commands.add_parser(
            "model",
            help="train and register a model [LOCAL]; list and show versions (through the API)",
        )
    )
    from bot4.liquidate_cli import configure_parser as configure_liquidate_parser

    configure_liquidate_parser(
        commands.add_parser(
            "liquidate",
            help="unwind positions in child orders (runbook liquidation, through the API)",
            description="Take symbols out of the strategy and unwind them through the leader"
            " (TWAP or participation cap, price band), verify flat; --all needs a second"
            " operator's approval (bot4 runbook approve liquidate-all).",
        )
    )

    from bot4.drill_cli import configure_parser as configure_drill_parser

    configure_drill_parser(
        commands.add_parser(
            "drill",
            help="disaster-recovery drills: bot4 drill failover (runbook dr_failover, through"
            " the API)",
        )
    )

    from bot4.flows_cli import configure_parsers as configure_flows_parsers

    configure_flows_parsers(commands)

    from bot4.dashboards_cli import configure_parser as configure_dashboards_parser

    configure_dashboards_parser(
        commands.add_parser(
            "dashboards",
            help="Grafana dashboards as code: push to a configured Grafana, render, list",
        )
    )

    from bot4.trace_cli import configure_parser as configure_trace_parser

    configure_trace_parser(
        commands.add_parser(
            "trace",
            help="one operation's timeline by correlation id: audit, logs, journal [LOCAL]",
        )
    )

    demo = commands.add_parser(
        "demo",
        help="bring the stack up, round-trip through every server, trade, roll out, bring it down",
    )
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.add_argument(
        "--keep", "--keep-running", dest="keep_running", action="store_true",
        help="leave the stack up at the end and print the UIs' URLs",
    )  # fmt: skip
    demo.add_argument(
        "--trade-seconds",
        type=float,
        default=20.0,
        help="how long the demo engine trades against the simulator (0 skips it)",
    )
    demo.add_argument(
        "--no-rollouts",
        action="store_true",
        help="skip the blue-green rollout of a second release and the rollback of a bad third",
    )
    return parser


def _engine_parser(engine: argparse.ArgumentParser) -> None:
    actions = engine.add_subparsers(dest="engine_command", required=True, metavar="ACTION")
    from engine.live.cli import configure_run_parser

    configure_run_parser(
        actions.add_parser(
            "run",
            help="run one engine color: market data, decisions, orders, journal, control",
            description=(
                "Run the trading engine of one color with a release manifest. It contends"
                " for the trading lease; the loser runs as a warm standby (shadow)."
            ),
        )
    )
    halt = actions.add_parser(
        "halt",
        help="engage the desk kill switch and halt the running engines (cancel all, verified)",
        description=(
            "Engage the kill-switch flag in PostgreSQL (every engine polls it) and call"
            " POST /admin/halt on each engine's control endpoint that answers. Succeeds if"
            " either worked; exit 1 if neither did or an engine could not verify. Path: the"
            " control API (POST /v1/halt, audited) when a key is configured; the direct path"
            " (PostgreSQL + engine endpoints, LOCAL) with --direct, without a key, or when"
            " the API does not answer. The output names the path used."
        ),
    )
    resume = actions.add_parser(
        "resume",
        help="disengage the desk kill switch (engines stay HALTED unless --engines)",
        description=(
            "Disengage the kill-switch flag; with --engines also resume the engines. Path:"
            " the control API (POST /v1/resume, audited) when a key is configured, else the"
            " direct path (LOCAL); an unreachable API is not bypassed: pass --direct."
        ),
    )
    resume.add_argument(
        "--engines", action="store_true", help="also POST /admin/resume to each engine"
    )
    resume.add_argument("--reason", required=True, help="why (kept with the flag)")
    # a halt must be one short command in an emergency: its reason has a default
    halt.add_argument(
        "--reason", default="emergency halt from the bot4 CLI", help="why (kept with the flag)"
    )
    for sub in (halt, resume):
        sub.add_argument(
            "--direct",
            action="store_true",
            help="skip the API: PostgreSQL flag + engine control endpoints [LOCAL]",
        )
        sub.add_argument(
            "--by", default=None, help="who asks, direct path (default: the OS user; API: the key)"
        )
        sub.add_argument(
            "--color", choices=("blue", "green", "all"), default="all", help="engines to call"
        )
        sub.add_argument(
            "--token-file",
            default=None,
            help=(
                "file holding the engines' control token (default: BOT4_ENGINE__CONTROL_TOKEN,"
                " else <home>/engine/control.token)"
            ),
        )
        sub.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each path")
        sub.add_argument("--json", action="store_true", help="print a JSON document")
    from bot4.control_cli import configure_engine_actions

    configure_engine_actions(actions)


def _handler(args: argparse.Namespace) -> Handler:
    from bot4 import commands
    from bot4 import control_commands as control

    command: str = args.command
    if command == "stack":
        return {"up": commands.stack_up, "down": commands.stack_down,
                "status": commands.stack_status}[args.stack_command]  # fmt: skip
    if command == "engine":
        from engine.live.cli import run_engine_command

        engine = {"halt": commands.engine_halt, "resume": commands.engine_resume,
                  "run": run_engine_command}  # fmt: skip
        return engine.get(args.engine_command, control.engine_action)
    if command == "keys" and args.keys_command == "bootstrap":
        return control.keys_bootstrap
    if command in ("exchange-sim", "replay", "data"):
        return _engine_side_handler(command)
    handlers: dict[str, Handler] = {
        "db": commands.db_migrate,
        "worker": commands.worker,
        "api": control.serve_api,
        "status": control.status,
        "keys": control.keys_command,
        "audit": control.audit_command,
        "runbook": _runbook_handler(),
        "rollout": _rollout_handler(),
        "liquidate": _liquidate_handler(),
        "drill": _drill_handler(),
        "dashboards": _dashboards_handler(),
        "trace": _trace_handler(),
        "model": _model_handler(),
    }
    from bot4.flows_cli import COMMANDS as FLOWS_COMMANDS
    from bot4.flows_cli import flows_command

    handlers.update(dict.fromkeys(FLOWS_COMMANDS, flows_command))
    return handlers.get(command, commands.demo)


def _drill_handler() -> Handler:
    from bot4.drill_cli import drill_command

    return drill_command


def _trace_handler() -> Handler:
    from bot4.trace_cli import trace_command

    return trace_command


def _dashboards_handler() -> Handler:
    from bot4.dashboards_cli import dashboards_command

    return dashboards_command


def _runbook_handler() -> Handler:
    from bot4.runbook_cli import runbook_command

    return runbook_command


def _rollout_handler() -> Handler:
    from bot4.runbook_cli import rollout_command

    return rollout_command


def _model_handler() -> Handler:
    from bot4.model_cli import model_command

    return model_command


def _liquidate_handler() -> Handler:
    from bot4.liquidate_cli import liquidate_command

    return liquidate_command


def _engine_side_handler(command: str) -> Handler:
    if command == "exchange-sim":
        from infra.exchange_sim.cli import run_command

        return run_command
    from engine.replay.cli import run_data_command, run_replay_command

    return run_replay_command if command == "replay" else run_data_command


def _settings_error(error: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for problem in error.errors():
        path = "__".join(str(part) for part in problem["loc"]).upper()
        shown = problem.get("input")
        # a malformed secret is still a secret: never echo it
        got = "value hidden" if _SECRET.search(path) else f"got {shown!r}"
        lines.append(f"  BOT4_{path}: {problem['msg']} ({got})")
    lines.append("Fix these environment variables (see README, 'Configuration').")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as e:
        console.error(_settings_error(e))
        return EXIT_USAGE
    component = "-".join(str(part) for part in (
        args.command, getattr(args, "engine_command", None), getattr(args, "color", None))
        if part)  # fmt: skip
    configure_logging(log_dir=settings.home / "log", level=logging.INFO, component=component)
    handler = _handler(args)
    with operation(f"cli.{args.command}", argv=list(argv if argv is not None else sys.argv[1:])):
        code = handler(args, settings)
    return code


def entry() -> None:
    """Console-script entry: run, flush, and leave without interpreter teardown.

    Temporal's SDK can abort during interpreter teardown in short-lived processes
    (sdk-python #300), so commands end with os._exit after flushing.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
