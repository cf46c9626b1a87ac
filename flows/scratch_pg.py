"""A throw-away PostgreSQL server for restore tests, and the pg_dump / pg_restore clients.

The scratch server uses the stack's embedded binaries (same major version as the dump),
runs as the unprivileged OS user when we are root (PostgreSQL refuses root), listens on a
free loopback port, trades durability for speed (``fsync=off``: it is deleted after the
test) and is always stopped and removed by the context manager.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.stack.pg_node import PgRunner, default_os_user, postgres_bin_dir
from infra.stack.pgconf import write_auto_conf


class PgToolError(Exception):
    """A PostgreSQL binary failed; the message carries its stderr."""


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary(tool: str) -> str:
    """Return the path of a PostgreSQL client binary of the embedded distribution."""
    return str(postgres_bin_dir() / tool)


async def run_tool(*argv: str, timeout_s: float = 3600.0) -> str:
    """Run a client binary (pg_dump, pg_restore, psql) and return its stdout.

    Raises:
        PgToolError: it exited non-zero or ran past ``timeout_s``.
    """
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError as e:
        process.kill()
        await process.wait()
        raise PgToolError(f"{Path(argv[0]).name} ran past {timeout_s:.0f} s") from e
    if process.returncode != 0:
        raise PgToolError(f"{Path(argv[0]).name} failed: {err.decode(errors='replace').strip()}")
    return out.decode(errors="replace")


@dataclass(frozen=True, kw_only=True, slots=True)
class ScratchServer:
    """A running scratch server."""

    port: int
    data_dir: Path

    def dsn(self, database: str = "postgres") -> str:
        """Return the DSN of ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def _prepare_folder(runner: PgRunner) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bot4-scratch-pg-", dir="/tmp"))
    folder.chmod(0o755)  # the server user must reach it
    (folder / "run").mkdir()
    (folder / "server.log").touch()
    runner.own(folder)
    return folder


@asynccontextmanager
async def scratch_postgres(*, os_user: str | None = None) -> AsyncIterator[ScratchServer]:
    """Start a fresh PostgreSQL server; yield it; stop and delete it whatever happens.

    Raises:
        PgToolError: initdb or the start failed.
    """
    runner = PgRunner(bin_dir=postgres_bin_dir(), os_user=os_user or default_os_user())
    folder = await asyncio.to_thread(_prepare_folder, runner)
    data_dir, socket_dir, log_file = folder / "data", folder / "run", folder / "server.log"
    started = False
    try:
        done = await asyncio.to_thread(
            runner.run, "initdb", "-D", str(data_dir), "--auth=trust", "-U", "postgres",
            "--encoding=UTF8", "--locale=C", "--no-instructions", "--no-sync",
        )  # fmt: skip
        if done.returncode != 0:
            raise PgToolError(f"initdb failed: {done.stderr.strip()}")
        port = free_port()
        write_auto_conf(
            data_dir,
            {
                "listen_addresses": "127.0.0.1",
                "port": str(port),
                "unix_socket_directories": str(socket_dir),
                "fsync": "off",
                "full_page_writes": "off",
                "synchronous_commit": "off",
                "max_wal_size": "4GB",
                "maintenance_work_mem": "256MB",
            },
        )
        done = await asyncio.to_thread(
            runner.run, "pg_ctl", "-D", str(data_dir), "-l", str(log_file), "-w", "-t", "60",
            "start",
        )  # fmt: skip
        if done.returncode != 0:
            tail = log_file.read_text(errors="replace")[-500:]
            raise PgToolError(f"scratch server did not start: {done.stderr.strip()} {tail}")
        started = True
        yield ScratchServer(port=port, data_dir=data_dir)
    finally:
        if started:
            await asyncio.to_thread(
                runner.run, "pg_ctl", "-D", str(data_dir), "-m", "immediate", "-w", "stop"
            )
        shutil.rmtree(folder, ignore_errors=True)
