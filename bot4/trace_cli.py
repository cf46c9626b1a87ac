"""``bot4 trace ID``: the timeline of one operation, from the API to the journal [LOCAL].

Exit codes: 0 something was found; 1 nothing carries the id (or the database cannot be
read); 2 the id is malformed.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Final

import asyncpg

from bot4 import console
from bot4.settings import Settings
from bot4.trace import log_files, trace
from engine.journal.models import VALID_CORRELATION_ID

EXIT_NOTHING: Final = 1
EXIT_USAGE: Final = 2
#: above this much log to read, say so first (it takes a while)
_BIG_LOGS_BYTES: Final = 50 * 1024 * 1024


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``bot4 trace``."""
    parser.add_argument(
        "correlation_id",
        help="the id (an API answer's X-Correlation-ID header, a row of bot4 audit)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")


def trace_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the timeline of one correlation id."""
    cid = str(args.correlation_id)
    if not VALID_CORRELATION_ID.match(cid):
        console.error(f"{cid!r} is not a correlation id (1-64 of A-Z a-z 0-9 . _ -)")
        return EXIT_USAGE
    files = log_files(settings.home)
    size = sum(p.stat().st_size for p in files)
    if size > _BIG_LOGS_BYTES and not args.json:
        console.say(f"reading {len(files)} log files ({size / 2**20:.0f} MiB) ...")
    try:
        entries = asyncio.run(trace(settings.db.effective_dsn(), settings.home, cid))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        console.error(
            f"cannot read the journal and audit log: {type(e).__name__}: {e}."
            " Is the stack up (bot4 stack status), or BOT4_DB__DSN right?"
        )
        return EXIT_NOTHING
    if args.json:
        console.print_json({"correlation_id": cid, "entries": [e.as_json() for e in entries]})
    elif entries:
        console.print_table(
            ["time (UTC)", "source", "what"],
            [[e.at.strftime("%H:%M:%S.%f")[:-3], e.source, e.what] for e in entries],
        )
    if not entries:
        console.error(
            f"nothing carries correlation id {cid}: not in the audit log, the journal, nor"
            f" the {len(files)} log files under {settings.home / 'log'}. Ids come from an API"
            " answer's X-Correlation-ID header or `bot4 audit`."
        )
        return EXIT_NOTHING
    return 0
