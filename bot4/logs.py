"""Structured logs: JSON lines to ``BOT4_HOME/log/bot4.log``, readable text on a terminal.

Every operation binds a correlation id (:func:`operation`) that rides along in every log
line written while it runs, so one operation can be followed across components.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(
    *, log_dir: Path | None, level: int = logging.INFO, component: str | None = None
) -> None:
    """Send structlog and stdlib logging to a JSON file and, on a terminal, to stderr.

    Args:
        log_dir: where ``bot4.log`` goes; None logs to stderr only.
        level: the lowest level written.
        component: which process writes (``api``, ``worker``, ``engine-blue`` ...): every
            process of a stack appends to the same file, and ``bot4 trace`` says who did
            what.
    """
    processors = list(_SHARED_PROCESSORS)
    if component is not None:
        processors.append(_Component(component))
    handlers: list[logging.Handler] = []
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_dir / "bot4.log", encoding="utf-8")
        file_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(),
                ],
                foreign_pre_chain=processors,
            )
        )
        handlers.append(file_handler)
    if sys.stderr.isatty() or log_dir is None:
        console = logging.StreamHandler(sys.stderr)
        renderer: Any = (
            structlog.dev.ConsoleRenderer(colors=True)
            if sys.stderr.isatty()
            else structlog.processors.JSONRenderer()
        )
        console.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
                foreign_pre_chain=processors,
            )
        )
        # On a terminal, the CLI's own output is the interface: only warnings go there.
        console.setLevel(logging.WARNING if log_dir is not None else level)
        handlers.append(console)
    root = logging.getLogger()
    for old in root.handlers:
        old.close()  # reconfiguring must not leak open log files
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(
        # filter_by_level first: a disabled level (the engine's per-decision debug line)
        # then costs one check, not the time stamp and the rest of the chain
        processors=[
            structlog.stdlib.filter_by_level,
            *processors,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class _Component:
    """A structlog processor naming the process (and its pid) on every line."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid = os.getpid()

    def __call__(self, _logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("component", self.name)
        event.setdefault("pid", self.pid)
        return event


def new_correlation_id() -> str:
    """Return a fresh correlation id."""
    return uuid.uuid4().hex


@contextmanager
def operation(name: str, *, correlation_id: str | None = None, **context: Any) -> Iterator[str]:
    """Bind a correlation id (new unless given) and the operation's name to every log line."""
    cid = correlation_id or new_correlation_id()
    with structlog.contextvars.bound_contextvars(correlation_id=cid, operation=name, **context):
        yield cid
