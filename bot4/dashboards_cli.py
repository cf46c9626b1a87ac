"""``bot4 dashboards``: the Grafana dashboards of ``infra/grafana`` [push: a Grafana].

``push`` provisions the generated dashboards into the Grafana of ``BOT4_GRAFANA__URL``
(folder created when missing, every panel pinned to ``BOT4_GRAFANA__DATASOURCE_UID``); a
dashboard Grafana holds in another version is refused unless ``--overwrite``. ``render``
writes the JSON to a folder, for Grafana's file provisioning or a manual import; ``list``
shows the dashboards (and, with ``--grafana``, what Grafana holds of them).

Exit codes: 0 done; 1 Grafana unreachable, refused the credentials or answered something
unexpected, or a dashboard was refused (it differs: ``--overwrite`` replaces it); 2 bad
arguments or configuration (Grafana not configured).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from bot4 import console
from bot4.settings import GRAFANA_UID, GrafanaSettings, Settings

if TYPE_CHECKING:  # grafana-client loads only when a command needs it: the CLI stays fast
    from infra.grafana.push import GrafanaTarget

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
HOW_TO_CONFIGURE: Final = (
    "set BOT4_GRAFANA__URL (e.g. https://grafana.internal) and BOT4_GRAFANA__TOKEN (a"
    " service account token with the Editor role), or BOT4_GRAFANA__USER and"
    " BOT4_GRAFANA__PASSWORD; see README, 'Grafana dashboards'"
)


class _UsageError(Exception):
    """Bad arguments or configuration: exit 2."""


def configure_parser(dashboards: argparse.ArgumentParser) -> None:
    """Add ``bot4 dashboards push|render|list`` and their options."""
    actions = dashboards.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    push = actions.add_parser(
        "push",
        help="provision the dashboards into the configured Grafana (BOT4_GRAFANA__*)",
        description="Create the folder if missing, then create each dashboard, leave it"
        " if Grafana holds the same, or refuse it if Grafana holds another version"
        " (--overwrite replaces it).",
    )
    push.add_argument(
        "--overwrite",
        action="store_true",
        help="replace dashboards that differ in Grafana (edits made there are lost)",
    )
    render = actions.add_parser("render", help="write the dashboards' JSON to a folder")
    render.add_argument("--out", required=True, type=Path, help="folder to write <name>.json to")
    for sub in (push, render):
        sub.add_argument(
            "--datasource-uid",
            default=None,
            help="pin every panel to this Prometheus datasource uid (default:"
            " BOT4_GRAFANA__DATASOURCE_UID; empty keeps the datasource picker)",
        )
    listing = actions.add_parser("list", help="the generated dashboards")
    listing.add_argument(
        "--grafana", action="store_true", help="also show what the configured Grafana holds of them"
    )
    for sub in (push, render, listing):
        sub.add_argument("--json", action="store_true", help="print a JSON document")


def dashboards_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``bot4 dashboards push``, ``render`` or ``list``."""
    from infra.grafana.push import GrafanaError

    action = {"push": _push, "render": _render, "list": _list}[args.dashboards_command]
    try:
        return action(args, settings)
    except _UsageError as e:
        console.error(str(e))
        return EXIT_USAGE
    except GrafanaError as e:
        console.error(str(e))
        return EXIT_FAILED


def target_of(grafana: GrafanaSettings) -> GrafanaTarget:
    """Return where to push, from the settings.

    Raises:
        _UsageError: Grafana is not configured, or its URL carries credentials.
    """
    from infra.grafana.push import GrafanaTarget

    if not grafana.url:
        raise _UsageError(f"Grafana is not configured: {HOW_TO_CONFIGURE}.")
    if urlsplit(grafana.url).username is not None:
        # never echo it: the URL holds a password
        raise _UsageError(
            "BOT4_GRAFANA__URL carries credentials: move them to"
            " BOT4_GRAFANA__USER and BOT4_GRAFANA__PASSWORD (or use a token)"
        )
    basic = None
    if grafana.user and grafana.password is not None:
        basic = (grafana.user, grafana.password.get_secret_value())
    return GrafanaTarget(
        url=grafana.url.rstrip("/"),
        token=grafana.token.get_secret_value() if grafana.token is not None else None,
        basic=basic,
        folder_uid=grafana.folder_uid,
        folder_title=grafana.folder_title,
        timeout_s=grafana.timeout_s,
    )


def _datasource_uid(args: argparse.Namespace, settings: Settings) -> str:
    if args.datasource_uid is None:
        return settings.grafana.datasource_uid
    if args.datasource_uid and not re.fullmatch(GRAFANA_UID, args.datasource_uid):
        raise _UsageError(
            f"--datasource-uid {args.datasource_uid!r}: a Grafana uid, 1-40 of A-Z a-z 0-9 _ -"
        )
    return str(args.datasource_uid)


def _push(args: argparse.Namespace, settings: Settings) -> int:
    from infra.grafana.dashboards import render
    from infra.grafana.push import push_dashboards

    target = target_of(settings.grafana)
    dashboards = render(datasource_uid=_datasource_uid(args, settings))
    if not args.json:
        console.say(
            f"pushing {len(dashboards)} dashboards to {target.url} (folder {target.folder_uid}) ..."
        )
    report = push_dashboards(target, list(dashboards.values()), overwrite=args.overwrite)
    if args.json:
        console.print_json(report.as_json())
    else:
        if report.folder_created:
            console.say(f"created folder {target.folder_uid} ({target.folder_title!r})")
        console.print_table(
            ["dashboard", "action", "version", "url"],
            [[o.uid, o.action, o.version, o.url] for o in report.outcomes],
        )
    for refused in (o for o in report.outcomes if o.action == "refused"):
        console.error(
            f"{refused.uid}: {refused.reason}. Nothing was changed; replace it"
            " with: bot4 dashboards push --overwrite"
        )
    return EXIT_OK if report.ok else EXIT_FAILED


def _render(args: argparse.Namespace, settings: Settings) -> int:
    from infra.grafana.dashboards import render, write

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {out}: not a folder")
    dashboards = render(datasource_uid=_datasource_uid(args, settings))
    try:
        paths = write(out, dashboards)
    except OSError as e:
        console.error(f"cannot write to {out}: {e.strerror or e}")
        return EXIT_FAILED
    if args.json:
        console.print_json([str(p) for p in paths])
    else:
        for path in paths:
            console.say(f"wrote {path}")
    return EXIT_OK


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from infra.grafana.dashboards import FOLDER, generate
    from infra.grafana.model import TAG
    from infra.grafana.push import GrafanaProvisioner

    held: dict[str, str] | None = None
    if args.grafana:
        with GrafanaProvisioner(target_of(settings.grafana)) as grafana:
            found = grafana.search(tag=TAG)
        held = {str(d.get("uid")): str(d.get("folderTitle") or "General") for d in found}
    rows = []
    for name, dashboard in generate().items():
        row = {
            "name": name,
            "uid": dashboard["uid"],
            "title": dashboard["title"],
            "panels": len(dashboard["panels"]),
            "file": str(FOLDER / f"{name}.json"),
        }
        if held is not None:
            row["in_grafana"] = held.get(dashboard["uid"], "missing")
        rows.append(row)
    if args.json:
        console.print_json(rows)
    else:
        headers = ["name", "uid", "title", "panels"] + (
            ["folder in Grafana"] if held is not None else []
        )
        console.print_table(
            headers,
            [
                [r["name"], r["uid"], r["title"], r["panels"]]
                + ([r["in_grafana"]] if held is not None else [])
                for r in rows
            ],
        )
    return EXIT_OK
