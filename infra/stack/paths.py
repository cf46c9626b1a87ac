"""Where the stack keeps its state under ``BOT4_HOME``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StackPaths:
    """The state folder layout: one place that names every path."""

    home: Path

    @property
    def run_dir(self) -> Path:
        """Pid files and unix sockets."""
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        """Server logs and bot4's own JSON logs."""
        return self.home / "log"

    @property
    def postgres_dir(self) -> Path:
        """PostgreSQL data directories, one per node."""
        return self.home / "postgres"

    @property
    def temporal_dir(self) -> Path:
        """The Temporal dev server's SQLite file."""
        return self.home / "temporal"

    @property
    def prefect_home(self) -> Path:
        """PREFECT_HOME of the stack's Prefect server."""
        return self.home / "prefect"

    def pid_file(self, component: str) -> Path:
        """Return the pid file of a component started by the launcher."""
        return self.run_dir / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        """Return the log file of a component."""
        return self.log_dir / f"{component}.log"

    def create(self) -> None:
        """Create the folders (idempotent)."""
        for folder in (self.run_dir, self.log_dir, self.postgres_dir, self.temporal_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o755)
