"""``bot4 engine run``: start one engine color and keep it running until told to stop.

Startup order matters: the safety thread (control HTTP, kill switch, halt) comes up
before the engine contends for the lease, so an engine that can trade can always be
halted. SIGTERM / SIGINT stop it cleanly: as leader it cancels its resting orders,
releases the lease and leaves a standby to take over at once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import structlog

from bot4.settings import Settings
from engine.live.admin import EngineAdmin
from engine.live.control import ControlConfig
from engine.live.engine import EngineConfig, open_engine
from engine.live.release import Release
from engine.live.safety import SafetyConfig, SafetyThread
from engine.models.fetch import registry_fetcher
from infra.model_store import model_store

log = structlog.get_logger(__name__)

TOKEN_FILE: Final = "engine/control.token"  # noqa: S105 (a path under home, not a secret)


def control_token_path(settings: Settings) -> Path:
    """Return where the engines' control token lives under the state folder."""
    return settings.home / TOKEN_FILE


def control_token(settings: Settings) -> str:
    """Return the configured control token, else the token file's (created 0600 once)."""
    if settings.engine.control_token is not None:
        return settings.engine.control_token.get_secret_value()
    path = control_token_path(settings)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # O_EXCL: two engines starting at once must end up with the same token
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token


@dataclass(frozen=True, kw_only=True, slots=True)
class RunOptions:
    """What ``bot4 engine run`` was asked for."""

    color: Literal["blue", "green"]
    release: Path
    instance: str | None = None
    record: Path | None = None
    lead: bool = True
    lease_ttl_s: float = 3.0
    control_port: int | None = None


async def serve(settings: Settings, options: RunOptions) -> None:
    """Run one engine until SIGTERM/SIGINT.

    Raises:
        ReleaseError: the release manifest is wrong (nothing was started).
        EngineError / OSError: the venue, PostgreSQL or the control port are unreachable.
    """
    release = Release.load(options.release)
    port = options.control_port
    if port is None:
        engine = settings.engine
        port = engine.blue_control_port if options.color == "blue" else engine.green_control_port
    config = EngineConfig(
        instance=options.instance or options.color,
        color=options.color,
        dsn=settings.db.effective_dsn(),
        lease_ttl_s=options.lease_ttl_s,
        lead=options.lead,
        ended_order_retention_s=settings.engine.ended_order_retention_s,
    )
    live, pool = await open_engine(config, release, settings.exchange)
    loop = asyncio.get_running_loop()
    safety = SafetyThread(
        gate=live.gate,
        control=EngineAdmin(
            live, fetch_model=registry_fetcher(pool, model_store(settings.storage))
        ),
        engine_loop=loop,
        exchange=settings.exchange.model_copy(update={"symbols": release.symbols}),
        config=SafetyConfig(
            control=ControlConfig(host=settings.engine.host, port=port,
                                  token=control_token(settings),
                                  engine_call_timeout_s=settings.engine.admin_call_timeout_s),
        ),
        dsn=config.dsn,
    )  # fmt: skip
    try:
        await loop.run_in_executor(None, safety.start)
        if options.record is not None:
            live.decider.record_to(options.record)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, live.stop)
        log.info("engine_started", instance=config.instance, color=config.color,
                 release=release.version, control=safety.url)  # fmt: skip
        await live.run()
    finally:
        live.decider.close_recording()
        await loop.run_in_executor(None, safety.stop)
        await live.session.close()
        await pool.close()
