"""``bot4 keys bootstrap``: the first admin key, made locally, written to a 0600 file.

It talks to PostgreSQL directly (the API cannot admit anyone before a key exists), so it
runs where the database is reachable, by someone who may read the database's DSN. It is
refused while a usable admin key exists (``force`` makes another one, e.g. when the
file was lost). The key goes to the file only, and the bootstrap is itself audited.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bot4.api.audit import AuditEntry, ParamsCodec, append_entries
from bot4.api.clock import Clock, SystemClock
from bot4.api.errors import ConflictError
from bot4.api.keyfile import write_secret_file
from bot4.api.keys import KeyRecord, KeyStore, database
from bot4.api.redact import Scrubber
from bot4.api.roles import Role
from bot4.logs import new_correlation_id


class KeyFileError(Exception):
    """The key file could not be written; nothing was created."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Bootstrapped:
    """What the bootstrap made."""

    key: KeyRecord
    path: Path
    audit_seq: int


async def bootstrap_admin(
    dsn: str,
    *,
    path: Path,
    name: str,
    lifetime_s: int,
    force: bool,
    audit_key: bytes,
    clock: Clock | None = None,
) -> Bootstrapped:
    """Create an admin key, write it to ``path`` (0600), and audit the act.

    Raises:
        ConflictError: a usable admin key exists, or ``path`` exists (without ``force``).
        UnavailableError: PostgreSQL cannot be reached.
        KeyFileError: the key file cannot be written (nothing was created).
    """
    clock = clock or SystemClock()
    async with database("bootstrap"):
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, command_timeout=10)
    try:
        store = KeyStore(pool, clock=clock)
        admins = await store.usable_admins()
        if admins and not force:
            raise ConflictError(
                f"a usable admin key exists ({', '.join(k.id for k in admins)}); create more"
                " through the API (`bot4 keys create --role admin ...`), or pass --force if"
                " every admin key is lost"
            )
        if not force and await asyncio.to_thread(path.exists):
            raise ConflictError(f"{path} exists; pass --force to replace it")
        user = getpass.getuser()
        async with (
            database("bootstrap"),
            pool.acquire() as connection,
            connection.transaction(),
        ):
            record, material = await store.create(
                name=name, role=Role.ADMIN, lifetime_s=lifetime_s, by=f"local:{user}",
                connection=connection,
            )  # fmt: skip
            codec = ParamsCodec(Scrubber(), audit_key=audit_key, sensitive=())
            entry = AuditEntry(
                at=clock.now(),
                correlation_id=new_correlation_id(),
                client=f"local:{user}@{socket.gethostname()}"[:200],
                key_id=record.id,
                key_name=record.name,
                role=Role.ADMIN.label,
                method="CLI",
                route="bot4 keys bootstrap",
                params=codec.encode({"name": name, "force": force, "file": str(path)}),
                status=201,
                outcome="ok",
                reason="bootstrap admin key created" + (" (--force)" if force else ""),
                duration_us=0,
            )
            (seq,) = await append_entries(connection, [entry])
            # last: a file that cannot be written rolls the key and its row back
            try:
                write_secret_file(path, material.token, replace=force)
            except OSError as e:  # not a database error: keep it apart from database()
                raise KeyFileError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        await pool.close()
    return Bootstrapped(key=record, path=path, audit_seq=seq)
