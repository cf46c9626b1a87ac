"""``bot4 model``: train and register a model [LOCAL], list and show versions (API).

``train`` replays an event file through the engine's feature kernel, fits a ridge model,
uploads the artifact to ``BOT4_STORAGE__MODELS_URI`` and registers it in PostgreSQL
(state ``registered``): it needs the file, the database and the object store, so it runs
where they are. ``list`` and ``show`` read the registry through the control API
(``/v1/models``, viewer). Rolling a version out is ``bot4 rollout model --version V``.

Exit codes: 0 done; 1 failed (database, object store or API refused or unreachable);
2 bad arguments (the message names the argument).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
import time
from pathlib import Path
from typing import Any, Final

from bot4 import console
from bot4.control_cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from bot4.control_commands import _run, client_for
from bot4.settings import Settings

VERSION: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def configure_parser(model: argparse.ArgumentParser) -> None:
    """Add ``bot4 model train|list|show``."""
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    train = actions.add_parser(
        "train",
        help="fit a ridge model on an event file and register it [LOCAL: PostgreSQL + S3]",
        description="Replay the event file through the engine's feature kernel, fit a ridge"
        " model of the future mid move, upload it with its SHA-256 and register it.",
    )
    train.add_argument("--data", type=Path, required=True, help="event file (.npy)")
    train.add_argument("--version", required=True, help="new version name (A-Z a-z 0-9 . _ -)")
    train.add_argument("--step", type=int, default=50, help="events between samples (>= 1)")
    train.add_argument("--horizon", type=int, default=5, help="samples ahead of the target")
    train.add_argument("--ridge", type=float, default=1.0, help="L2 penalty (>= 0)")
    train.add_argument("--holdout", type=float, default=0.2, help="newest share held out [0, 1)")
    train.add_argument("--by", default=None, help="who registers it (default: the OS user)")
    train.add_argument("--json", action="store_true", help="print a JSON document")
    listing = actions.add_parser("list", help="registered versions, newest first (API)")
    listing.add_argument("--json", action="store_true", help="print a JSON document")
    show = actions.add_parser("show", help="one version: metrics, training, history (API)")
    show.add_argument("version", help="the model version")
    show.add_argument("--json", action="store_true", help="print a JSON document")


def model_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``bot4 model ...``."""
    if args.model_command == "train":
        return _train(args, settings)

    def call() -> int:
        client = client_for(settings)
        if args.model_command == "list":
            rows = client.get("/v1/models").body
            if args.json:
                console.print_json(rows)
            else:
                console.print_table(
                    ["version", "state", "kind", "holdout r2", "created", "by"],
                    [
                        [
                            r["version"],
                            r["state"],
                            r["kind"],
                            (r["metrics"].get("holdout") or {}).get("r2"),
                            r["created_at"][:19],
                            r["created_by"],
                        ]
                        for r in rows
                    ],
                )
            return EXIT_OK
        if not VERSION.fullmatch(args.version):
            console.error(f"version {args.version!r}: 1-64 of A-Z a-z 0-9 . _ -")
            return EXIT_USAGE
        document = client.get(f"/v1/models/{args.version}").body
        if args.json:
            console.print_json(document)
        else:
            console.say(_describe(document))
        return EXIT_OK

    return _run(call)


def _describe(d: dict[str, Any]) -> str:
    lines = [
        f"{d['version']}: {d['state']} ({d['kind']}), sha256 {d['sha256']}",
        f"artifact {d['artifact_uri']}",
        f"created {d['created_at']} by {d['created_by']}",
        f"training {d['training']}",
        f"metrics {d['metrics']}",
        "history:",
    ]
    lines += [
        f"  {t['at'][:19]} {t['from'] or '-'} -> {t['to']} by {t['by']}: {t['reason']}"
        for t in d.get("history", [])
    ]
    return "\n".join(lines)


def _train_problem(args: argparse.Namespace) -> str | None:
    data: Path = args.data
    if not VERSION.fullmatch(args.version):
        return f"--version {args.version!r}: 1-64 characters of A-Z a-z 0-9 . _ -"
    if not data.is_file():
        return f"--data {data}: no such event file (make one with `bot4 data generate`)"
    if args.step < 1 or args.horizon < 1:
        return f"--step and --horizon must be >= 1 (got {args.step}, {args.horizon})"
    if not args.ridge >= 0:
        return f"--ridge must be >= 0 (got {args.ridge})"
    if not 0.0 <= args.holdout < 1.0:
        return f"--holdout must be in [0, 1) (got {args.holdout})"
    return None


class _Progress:
    """Prints ``train: done/total events`` to stderr after the first second."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last = self.started

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.started < 1.0 or (now - self.last < 0.5 and done < total):
            return
        self.last = now
        print(f"train: {done:,}/{total:,} events ({now - self.started:.1f}s)", file=sys.stderr)


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from engine.data.format import EventFileError
    from engine.models.artifact import ModelArtifactError
    from engine.models.registry import RegistryError
    from engine.models.train import TrainOptions, train_linear

    problem = _train_problem(args)
    if problem is not None:
        console.error(problem)
        return EXIT_USAGE
    options = TrainOptions(
        step=args.step, horizon=args.horizon, ridge=args.ridge, holdout=args.holdout
    )
    started = time.monotonic()
    try:
        result = train_linear(
            args.data, version=args.version, options=options, progress=_Progress()
        )
    except EventFileError as e:
        console.error(f"--data: {e}")
        return EXIT_USAGE
    except ModelArtifactError as e:
        console.error(str(e))
        return EXIT_FAILED
    fitted_s = time.monotonic() - started
    try:
        record = asyncio.run(_register(settings, result, by=args.by or getpass.getuser()))
    except RegistryError as e:
        console.error(f"--version: {e}")
        return EXIT_FAILED
    except (OSError, ModelArtifactError) as e:
        console.error(f"cannot register {args.version}: {type(e).__name__}: {e}")
        return EXIT_FAILED
    document = {**record, "fit_s": round(fitted_s, 3)}
    if args.json:
        console.print_json(document)
    else:
        holdout = result.metrics["holdout"]
        console.say(
            f"registered {record['version']} ({record['state']}), sha256 {record['sha256'][:16]}…"
            f" at {record['artifact_uri']}; holdout r2 {holdout['r2']}, hit rate"
            f" {holdout['hit_rate']} over {holdout['samples']} samples ({fitted_s:.1f}s)"
        )
    return EXIT_OK


async def _register(settings: Settings, result: Any, *, by: str) -> dict[str, Any]:
    import asyncpg

    from engine.models.fetch import publish
    from engine.models.registry import ModelRegistry
    from infra.model_store import model_store

    store = await asyncio.to_thread(model_store, settings.storage, create_bucket=True)
    pool = await asyncpg.create_pool(settings.db.effective_dsn(), min_size=1, max_size=2)
    try:
        record = await publish(
            ModelRegistry(pool),
            store,
            result.weights,
            training=result.training,
            metrics=result.metrics,
            by=by,
        )
    finally:
        await pool.close()
    return record.as_json()
