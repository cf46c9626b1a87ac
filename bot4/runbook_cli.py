"""``bot4 runbook``: list, read, run, follow, approve and abort runbooks (through the API).

A run prints its workflow id at once; ``--wait`` follows it (a progress line per change)
until it ends. Approval is the second operator's: the API refuses the requester's own.
Exit codes: 0 done (or started), 1 refused, failed or unreachable, 2 bad arguments, 3 the
run ended FAILED / TERMINATED / TIMED_OUT.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Final

from bot4 import console
from bot4.control_cli import EXIT_FAILED, EXIT_FOUND_PROBLEM, EXIT_OK, EXIT_USAGE
from bot4.control_commands import _run, _UsageError, client_for
from bot4.settings import Settings

ENDED_BADLY: Final = ("FAILED", "TERMINATED", "TIMED_OUT", "CANCELED")
POLL_S: Final = 1.0


def configure_parser(runbook: argparse.ArgumentParser) -> None:
    """Add the runbook actions."""
    actions = runbook.add_subparsers(dest="runbook_command", required=True, metavar="ACTION")
    actions.add_parser("list", help="every runbook: steps, guarded steps, least role to run")
    show = actions.add_parser("show", help="print a runbook (markdown) and its parameters")
    show.add_argument("name")
    run = actions.add_parser("run", help="start a runbook's workflow (prints its id)")
    run.add_argument("name")
    run.add_argument(
        "--param", action="append", default=[], metavar="K=V",
        help="a parameter (repeat); values are JSON when they parse, else text",
    )  # fmt: skip
    run.add_argument("--dry-run", action="store_true", help="return the plan, change nothing")
    run.add_argument("--wait", action="store_true", help="follow the run until it ends")
    status = actions.add_parser("status", help="a run's status, progress and result")
    status.add_argument("workflow_id")
    status.add_argument("--wait", action="store_true", help="follow the run until it ends")
    decisions = (
        ("approve", "approve the guarded step a run waits for [operator]"),
        ("abort", "abort a run (it rolls back what it can) [operator]"),
    )
    for name, text in decisions:
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("workflow_id")
        sub.add_argument("--note", default=None, help="why (kept in the audit log)")
        if name == "approve":
            sub.add_argument("--step", default=None, help="the step (default: the one waiting)")
    for sub in actions.choices.values():
        sub.add_argument("--json", action="store_true", help="print JSON documents")


def configure_rollout_parser(rollout: argparse.ArgumentParser) -> None:
    """Add ``bot4 rollout engine``: the blue_green_deploy runbook, with its usual knobs."""
    kinds = rollout.add_subparsers(dest="rollout_command", required=True, metavar="WHAT")
    engine = kinds.add_parser(
        "engine",
        help="blue-green deploy of a new engine release (runbook blue_green_deploy) [operator]",
        description=(
            "Start the idle color with the release, gate it, hand trading over (fenced),"
            " bake, retire the old color; any failed gate or bake check rolls back."
            " The release file must be readable where the worker and the engines run."
        ),
    )
    engine.add_argument("--release", required=True, type=Path, help="the release manifest")
    engine.add_argument("--reason", default="", help="why (kept in the audit log)")
    engine.add_argument("--bake-s", type=int, default=None, help="bake period in seconds")
    engine.add_argument(
        "--require-approval", action="store_true",
        help="the handoff waits for a second operator (bot4 runbook approve)",
    )  # fmt: skip
    engine.add_argument("--dry-run", action="store_true", help="return the plan, change nothing")
    engine.add_argument("--wait", action="store_true", help="follow the rollout until it ends")
    engine.add_argument("--json", action="store_true", help="print JSON documents")
    model = kinds.add_parser(
        "model",
        help="roll a registered model version out (runbook model_rollout) [operator]",
        description=(
            "Verify the artifact's checksum, shadow the candidate beside the active model,"
            " canary it, hot-swap it in on the leading engine, bake; any failed gate rolls"
            " back to the previous model. Train and register it first: bot4 model train."
        ),
    )
    model.add_argument("--version", required=True, help="the registered model version")
    model.add_argument("--reason", default="", help="why (kept in the registry and audit log)")
    for name, kind, text in (
        ("--shadow-s", int, "shadow period in seconds (default 60)"),
        ("--canary-s", int, "canary period in seconds (default 60)"),
        ("--canary-fraction", float, "share of the prediction the candidate carries (0.1)"),
        ("--bake-s", int, "bake period in seconds (default 60)"),
        ("--min-agreement", float, "least shadow agreement, 0..1 (default 0.8)"),
    ):
        model.add_argument(name, type=kind, default=None, help=text)
    model.add_argument("--dry-run", action="store_true", help="return the plan, change nothing")
    model.add_argument("--wait", action="store_true", help="follow the rollout until it ends")
    model.add_argument("--json", action="store_true", help="print JSON documents")


def rollout_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``bot4 rollout engine|model`` as its runbook through the API."""
    if args.rollout_command == "model":
        return _rollout_model(args, settings)
    release: Path = args.release
    if not release.is_file():
        console.error(f"--release {release}: no such file; give the release manifest's path")
        return EXIT_USAGE
    params: dict[str, Any] = {
        "release_path": str(release.resolve()),
        "require_approval": args.require_approval,
    }
    if args.reason:
        params["reason"] = args.reason
    if args.bake_s is not None:
        params["bake_s"] = args.bake_s
    return runbook_command(
        argparse.Namespace(
            runbook_command="run", name="blue_green_deploy", param=[], params=params,
            dry_run=args.dry_run, wait=args.wait, json=args.json,
        ),
        settings,
    )  # fmt: skip


def _rollout_model(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``bot4 rollout model`` as the model_rollout runbook through the API."""
    params: dict[str, Any] = {"version": args.version}
    for name in ("reason", "shadow_s", "canary_s", "canary_fraction", "bake_s", "min_agreement"):
        value = getattr(args, name)
        if value not in (None, ""):
            params[name] = value
    return runbook_command(
        argparse.Namespace(
            runbook_command="run", name="model_rollout", param=[], params=params,
            dry_run=args.dry_run, wait=args.wait, json=args.json,
        ),
        settings,
    )  # fmt: skip


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """Turn ``k=v`` pairs into parameters (JSON values where they parse).

    Raises:
        _UsageError: a pair without ``=``, or a name given twice.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise _UsageError(f"--param {pair!r}: write it as name=value")
        if key in params:
            raise _UsageError(f"--param {key} given twice")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def runbook_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``bot4 runbook ...`` through the API."""

    def call() -> int:
        client = client_for(settings)
        action = args.runbook_command
        if action == "list":
            books = client.get("/v1/runbooks").body
            if args.json:
                console.print_json(books)
            else:
                console.print_table(
                    ["runbook", "run role", "steps", "guarded", "summary"],
                    [[b["name"], b["run_role"], " → ".join(b["steps"]),
                      ", ".join(b["guarded_steps"]) or "-", b["summary"][:60]] for b in books],
                )  # fmt: skip
            return EXIT_OK
        if action == "show":
            book = client.get(f"/v1/runbooks/{args.name}").body
            if args.json:
                console.print_json(book)
            else:
                console.say(book["markdown"])
                console.say("parameters: " + ", ".join(
                    f"{p['name']}{'' if p['required'] else '=' + json.dumps(p['default'])}"
                    for p in book["parameters"]))  # fmt: skip
            return EXIT_OK
        if action == "run":
            params = {**getattr(args, "params", {}), **parse_params(args.param)}
            body = {"params": params, "dry_run": args.dry_run}
            started = client.post(f"/v1/runbooks/{args.name}/runs", body).body
            _print(args, started, f"started {started['workflow_id']}"
                   + (" (dry run)" if args.dry_run else ""))  # fmt: skip
            return _follow(client, started["workflow_id"], args) if args.wait else EXIT_OK
        if action == "status":
            if args.wait:
                return _follow(client, args.workflow_id, args)
            document = client.get(f"/v1/runbooks/runs/{args.workflow_id}").body
            _print(args, document, _line(document))
            return EXIT_FOUND_PROBLEM if document["status"] in ENDED_BADLY else EXIT_OK
        body = {"note": args.note} if args.note else {}
        if action == "approve" and args.step:
            body["step"] = args.step
        answer = client.post(f"/v1/runbooks/runs/{args.workflow_id}/{action}", body).body
        _print(args, answer, f"{action}: {answer.get(action)} (by {answer['by']})")
        return EXIT_OK

    return _run(call)


def _follow(client: Any, workflow_id: str, args: argparse.Namespace) -> int:
    last = ""
    while True:
        document = client.get(f"/v1/runbooks/runs/{workflow_id}").body
        line = _line(document)
        if line != last and not args.json:
            console.say(line)
        last = line
        if document["status"] != "RUNNING":
            if args.json:
                console.print_json(document)
            elif document.get("result") is not None:
                console.say(json.dumps(document["result"], indent=2, default=str))
            return EXIT_FOUND_PROBLEM if document["status"] in ENDED_BADLY else EXIT_OK
        time.sleep(POLL_S)


def _line(document: dict[str, Any]) -> str:
    progress = document.get("progress") or {}
    parts = [f"{document['workflow_id']}: {document['status']}"]
    if progress.get("step"):
        parts.append(f"step {progress['step']}")
    if progress.get("waiting_for_approval"):
        parts.append(f"waiting for approval of {progress['waiting_for_approval']}"
                     " (a second operator: bot4 runbook approve)")  # fmt: skip
    if document.get("failure"):
        parts.append(f"failure: {document['failure']}")
    return ", ".join(parts)


def _print(args: argparse.Namespace, document: Any, text: str) -> None:
    if args.json:
        console.print_json(document)
    else:
        console.say(text)


__all__ = [
    "EXIT_FAILED",
    "configure_parser",
    "configure_rollout_parser",
    "rollout_command",
    "runbook_command",
]
