"""What the API process holds while it runs: pool, key store, audit writer, limiter, engines.

Built once per app; :meth:`Services.lifespan` opens the database pool and the audit writer
when the server starts and closes them when it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg
import structlog

from bot4.api.audit import AuditLog, AuditWriter, ParamsCodec
from bot4.api.clock import Clock
from bot4.api.config import ApiConfig
from bot4.api.engines import Engines, KillSwitch
from bot4.api.errors import UnavailableError
from bot4.api.keys import KeyStore
from bot4.api.metrics import ApiMetrics
from bot4.api.ratelimit import RateLimiter
from bot4.api.redact import Scrubber
from bot4.api.runbooks import Runbooks

log = structlog.get_logger(__name__)

StackProbe = Callable[[], dict[str, object]]
"""Returns the stack's status document; blocking (run on a thread)."""


class Services:
    """The API's parts; the database-backed ones exist between start and stop."""

    def __init__(self, config: ApiConfig, *, clock: Clock, stack_probe: StackProbe | None):
        self.config = config
        self.clock = clock
        self.stack_probe = stack_probe
        self.scrubber = Scrubber((*config.secrets, config.engine_token, config.audit_key.decode()))
        self.codec = ParamsCodec(
            self.scrubber, audit_key=config.audit_key, sensitive=config.sensitive_params
        )
        self.limiter = RateLimiter(
            config.rate_limits, unauthenticated=config.unauthenticated_rate_limit, clock=clock
        )
        self.engines = Engines(
            config.engines,
            token=config.engine_token,
            timeout_s=config.engine_timeout_s,
            scrubber=self.scrubber,
        )
        self.runbooks = Runbooks(
            address=config.temporal_address,
            namespace=config.temporal_namespace,
            task_queue=config.task_queue,
        )
        self.metrics = ApiMetrics()
        self.started_at: datetime = clock.now()
        self._pool: asyncpg.Pool | None = None
        self._writer: AuditWriter | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """Return the database pool (only while the server runs)."""
        if self._pool is None:
            raise RuntimeError("the API is not started")
        return self._pool

    @property
    def writer(self) -> AuditWriter:
        """Return the audit writer (only while the server runs).

        Raises:
            UnavailableError: the server is not started (or is stopping).
        """
        if self._writer is None:
            raise UnavailableError("the audit writer is not running")
        return self._writer

    @property
    def keys(self) -> KeyStore:
        """Return the key store."""
        return KeyStore(self.pool, clock=self.clock)

    @property
    def audit(self) -> AuditLog:
        """Return the audit-log reader."""
        return AuditLog(self.pool, codec=self.codec)

    @property
    def kill_switch(self) -> KillSwitch:
        """Return the desk's kill switch."""
        return KillSwitch(self.pool, scrubber=self.scrubber)

    @asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """Open the pool and the audit writer for the server's lifetime.

        Raises:
            OSError / asyncpg.PostgresError: PostgreSQL cannot be reached at start.
        """
        pool = await asyncpg.create_pool(
            self.config.dsn,
            min_size=1,
            max_size=self.config.pool_max_size,
            timeout=5,  # connecting: a dead database must answer 503 soon, not in a minute
            command_timeout=10,
        )
        self._pool = pool
        self._writer = AuditWriter(pool)
        head = await pool.fetchval("SELECT seq FROM audit_chain_head WHERE id")
        self._writer.head_seq = int(head or 0)
        self._writer.start()
        log.info("api_started", audit_head_seq=self._writer.head_seq)
        try:
            yield
        finally:
            await self._writer.stop()
            await pool.close()
            self._pool = self._writer = None
            log.info("api_stopped")
