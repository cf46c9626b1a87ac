"""The audit log: every request (who, role, route, parameters, outcome, correlation id).

:class:`AuditWriter` appends rows in batches: requests that finish together share one
transaction that locks the chain head (``SELECT ... FOR UPDATE``), numbers and hashes the
rows in Python (:mod:`bot4.api.chain`), copies them in and moves the head. Every API
process and the bootstrap command append this way, so the chain never forks. A request's
answer is held until its row is committed.

Parameters pass :class:`ParamsCodec` first: secrets removed (:mod:`bot4.api.redact`),
sensitive free text (``api.sensitive_params``) encrypted with Fernet, so the database
holds ciphertext and only an admin asking for ``decrypt`` sees the text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Final, cast

import asyncpg
import structlog
from cryptography.fernet import Fernet, InvalidToken

from bot4.api.chain import CHAINED_COLUMNS, ChainReport, ChainVerifier, row_hash
from bot4.api.errors import UnavailableError
from bot4.api.keys import Connection, database
from bot4.api.redact import JsonValue, Scrubber

log = structlog.get_logger(__name__)

ENCRYPTED: Final = "$encrypted"
COLUMNS: Final = (*CHAINED_COLUMNS, "row_hash")
_HEAD: Final = "SELECT seq, row_hash FROM audit_chain_head WHERE id FOR UPDATE"
_MOVE_HEAD: Final = "UPDATE audit_chain_head SET seq = $1, row_hash = $2 WHERE id"


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEntry:
    """One request, as the audit log records it (``params`` already encoded)."""

    at: datetime
    correlation_id: str
    client: str
    key_id: str | None
    key_name: str | None
    role: str | None
    method: str
    route: str
    params: str
    status: int
    outcome: str
    reason: str | None
    duration_us: int


class ParamsCodec:
    """Turns request parameters into the stored text, and back for readers.

    Args:
        scrubber: removes secrets.
        audit_key: Fernet key for sensitive values.
        sensitive: parameter names whose values are stored encrypted.
    """

    def __init__(self, scrubber: Scrubber, *, audit_key: bytes, sensitive: Iterable[str]):
        self._scrubber = scrubber
        self._fernet = Fernet(audit_key)
        self._sensitive = frozenset(sensitive)

    def encode(self, params: Mapping[str, object]) -> str:
        """Return the canonical JSON stored in ``audit_log.params``."""
        shaped = self._encrypt(self._scrubber.value(dict(params)))
        return json.dumps(shaped, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    def decode(self, text: str, *, decrypt: bool) -> JsonValue:
        """Return stored parameters; with ``decrypt``, sensitive values in clear text."""
        value: JsonValue = json.loads(text)
        return self._decrypt(value) if decrypt else value

    def _encrypt(self, value: JsonValue) -> JsonValue:
        if isinstance(value, dict):
            return {
                name: (
                    {ENCRYPTED: self._fernet.encrypt(json.dumps(item).encode()).decode()}
                    if name in self._sensitive
                    else self._encrypt(item)
                )
                for name, item in value.items()
            }
        if isinstance(value, list):
            return [self._encrypt(item) for item in value]
        return value

    def _decrypt(self, value: JsonValue) -> JsonValue:
        if isinstance(value, dict):
            token = value.get(ENCRYPTED)
            if len(value) == 1 and isinstance(token, str):
                try:
                    decoded: JsonValue = json.loads(self._fernet.decrypt(token.encode()))
                except (InvalidToken, ValueError):
                    return {ENCRYPTED: token, "error": "not decryptable with this audit key"}
                return decoded
            return {name: self._decrypt(item) for name, item in value.items()}
        if isinstance(value, list):
            return [self._decrypt(item) for item in value]
        return value


async def append_entries(connection: Connection, entries: list[AuditEntry]) -> list[int]:
    """Append ``entries`` to the chain in one transaction; return their ``seq``.

    Raises:
        asyncpg.PostgresError / OSError: the database failed (nothing was appended).
    """
    async with connection.transaction():
        head = await connection.fetchrow(_HEAD)
        if head is None:
            raise UnavailableError("audit_chain_head has no row: run `bot4 db migrate`")
        seq, prev = int(head["seq"]), str(head["row_hash"])
        records = []
        for entry in entries:
            seq += 1
            row: dict[str, object] = {**asdict(entry), "seq": seq, "prev_hash": prev}
            prev = row["row_hash"] = row_hash(row)
            records.append(tuple(row[column] for column in COLUMNS))
        await connection.copy_records_to_table("audit_log", records=records, columns=COLUMNS)
        await connection.execute(_MOVE_HEAD, seq, prev)
    return list(range(seq - len(entries) + 1, seq + 1))


class AuditWriter:
    """Appends entries from many concurrent requests in shared transactions.

    Args:
        pool: connections to bot4's database.
        max_batch: most rows per transaction.
    """

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 500) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[AuditEntry, asyncio.Future[int]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.head_seq = 0

    def start(self) -> None:
        """Start the writer task (on the running loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._queue.put_nowait(None)  # the writer ends after what was queued before it
        try:
            await asyncio.wait_for(task, timeout=10)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def append(self, entry: AuditEntry) -> int:
        """Append one entry; return its ``seq`` once committed.

        Raises:
            UnavailableError: the row could not be written.
        """
        if self._task is None or self._task.done():
            raise UnavailableError("the audit writer is not running")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((entry, future))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[tuple[AuditEntry, asyncio.Future[int]]] = []
            item = await self._queue.get()
            while True:
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                if stopping or len(batch) >= self._max_batch or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if not batch:
                continue
            error = await self._commit(batch)
            if error is not None and len(batch) > 1 and not _connection_trouble(error):
                # one row the database refuses must not fail the others: one by one
                for single in batch:
                    await self._commit(single=single)
            elif error is not None:
                _fail(batch, error)

    async def _commit(
        self,
        batch: list[tuple[AuditEntry, asyncio.Future[int]]] | None = None,
        *,
        single: tuple[AuditEntry, asyncio.Future[int]] | None = None,
    ) -> Exception | None:
        """Append in one transaction and settle the futures; return the error, if any."""
        rows = batch if batch is not None else [single] if single is not None else []
        try:
            async with self._pool.acquire() as connection:
                seqs = await append_entries(connection, [entry for entry, _ in rows])
        except Exception as e:  # a failure fails requests, never the writer
            log.error("audit_append_failed", error=type(e).__name__, rows=len(rows))
            if single is not None:
                _fail(rows, e)
            return e
        self.head_seq = seqs[-1]
        for (_, future), seq in zip(rows, seqs, strict=True):
            if not future.done():
                future.set_result(seq)
        return None


def _connection_trouble(error: Exception) -> bool:
    """Tell whether the database was unreachable (retrying row by row would only wait)."""
    return isinstance(
        error, OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.PostgresConnectionError
    )


def _fail(batch: list[tuple[AuditEntry, asyncio.Future[int]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(
                UnavailableError(f"audit log unavailable ({type(error).__name__})")
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditQuery:
    """Filters of an audit-log read; rows come newest first."""

    limit: int = 100
    before_seq: int | None = None
    since_seq: int | None = None
    key_id: str | None = None
    route: str | None = None
    correlation_id: str | None = None
    status: int | None = None


class AuditLog:
    """Reads the audit log and verifies its chain."""

    def __init__(self, pool: asyncpg.Pool, *, codec: ParamsCodec) -> None:
        self._pool = pool
        self._codec = codec

    async def rows(self, query: AuditQuery, *, decrypt: bool) -> list[dict[str, object]]:
        """Return the rows matching ``query``, newest first.

        Raises:
            UnavailableError: PostgreSQL cannot be reached.
        """
        filters, args = [], []
        for column, op, value in (
            ("seq", "<", query.before_seq),
            ("seq", ">=", query.since_seq),
            ("key_id", "=", query.key_id),
            ("route", "=", query.route),
            ("correlation_id", "=", query.correlation_id),
            ("status", "=", query.status),
        ):
            if value is not None:
                args.append(value)
                filters.append(f"{column} {op} ${len(args)}")
        where = f"WHERE {' AND '.join(filters)}" if filters else ""
        args.append(query.limit)
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM audit_log {where}"
            f" ORDER BY seq DESC LIMIT ${len(args)}"
        )
        async with database("read the audit log"):
            records = await self._pool.fetch(sql, *args)
        return [self._public(record, decrypt=decrypt) for record in records]

    def _public(self, record: asyncpg.Record, *, decrypt: bool) -> dict[str, object]:
        row = dict(record)
        row["at"] = record["at"].isoformat()
        row["params"] = self._codec.decode(record["params"], decrypt=decrypt)
        return row

    async def verify(self) -> ChainReport:
        """Walk the whole chain in one snapshot; report the first broken link.

        Raises:
            UnavailableError: PostgreSQL cannot be reached.
        """
        async with database("verify the audit log"), self._pool.acquire() as connection:
            return await verify_chain(connection)


async def verify_chain(connection: Connection) -> ChainReport:
    """Walk the chain on ``connection`` (one repeatable-read snapshot) and report."""
    verifier = ChainVerifier()
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        head = await connection.fetchrow("SELECT seq, row_hash FROM audit_chain_head WHERE id")
        if head is None:
            raise UnavailableError("audit_chain_head has no row: run `bot4 db migrate`")
        async for row in _all_rows(connection):
            if not verifier.feed(row):
                break
        return verifier.finish(head_seq=int(head["seq"]), head_hash=str(head["row_hash"]))


async def _all_rows(connection: Connection) -> AsyncIterator[Mapping[str, object]]:
    sql = f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY seq"
    async for row in connection.cursor(sql, prefetch=2000):
        yield cast(Mapping[str, object], row)  # a Record reads like a mapping
