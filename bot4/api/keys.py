"""API keys: the key format, its salted hash, and the ``api_keys`` table.

A key reads ``b4_<id>_<secret>``: ``id`` is 16 hex digits, public (it names the key in
lists and the audit log), ``secret`` is 32 random bytes (url-safe base64). Only a salted
SHA-256 of the secret is stored. A slow password hash (scrypt, argon2) protects
low-entropy passwords against offline guessing; a 256-bit random secret cannot be guessed
either way, and a fast hash keeps authentication at microseconds per request, so the
fast hash is the right trade here.

Lifecycle: *active* → *retiring* (rotated: valid until ``retires_at``, the end of the
overlap window, beside its successor) → *retired*; or *expired* (past ``expires_at``) or
*revoked* at any time. Only active and retiring keys authenticate.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bot4.api.clock import Clock
from bot4.api.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    UnavailableError,
)
from bot4.api.roles import Role

KEY_PATTERN: Final = re.compile(r"b4_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
"""A whole key; also used to scrub keys out of anything that is logged or stored."""
KEY_ID_PATTERN: Final = r"^[0-9a-f]{16}$"
KEY_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,63}$"

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection of its own or one lent by a pool."""

_COLUMNS: Final = """id, name, role, created_at, created_by, expires_at, revoked_at, revoked_by,
    revoke_reason, rotated_from, rotated_to, retires_at"""


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """A key as the client holds it."""

    id: str
    secret: str

    @property
    def token(self) -> str:
        """Return the whole key, ``b4_<id>_<secret>``."""
        return f"b4_{self.id}_{self.secret}"

    def __repr__(self) -> str:
        return f"KeyMaterial(id={self.id!r}, secret='**********')"


def new_key() -> KeyMaterial:
    """Return fresh key material."""
    return KeyMaterial(id=secrets.token_hex(8), secret=secrets.token_urlsafe(32))


def parse_key(token: str) -> KeyMaterial | None:
    """Return the parts of a well-formed key, else None."""
    match = KEY_PATTERN.fullmatch(token)
    return None if match is None else KeyMaterial(id=match.group(1), secret=match.group(2))


def hash_secret(secret: str, salt: bytes) -> bytes:
    """Return the stored form of a secret: SHA-256 over salt and secret."""
    return hashlib.sha256(salt + secret.encode()).digest()


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyRecord:
    """A row of ``api_keys`` without its hash."""

    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    rotated_from: str | None
    rotated_to: str | None
    retires_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> KeyRecord:
        """Build from a row holding :data:`_COLUMNS`."""
        return cls(**{name: row[name] for name in cls.__slots__ if name != "role"},
                   role=Role.parse(row["role"]))  # fmt: skip

    def state(self, now: datetime) -> str:
        """Return active, retiring, retired, expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        if self.retires_at is not None:
            return "retired" if now >= self.retires_at else "retiring"
        return "active"

    def as_json(self, now: datetime) -> dict[str, object]:
        """Return the key as the API shows it (never the secret nor its hash)."""
        stamp = _iso
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.label,
            "state": self.state(now),
            "created_at": stamp(self.created_at),
            "created_by": self.created_by,
            "expires_at": stamp(self.expires_at),
            "revoked_at": stamp(self.revoked_at),
            "revoked_by": self.revoked_by,
            "revoke_reason": self.revoke_reason,
            "rotated_from": self.rotated_from,
            "rotated_to": self.rotated_to,
            "retires_at": stamp(self.retires_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@asynccontextmanager
async def database(what: str) -> AsyncIterator[None]:
    """Translate PostgreSQL trouble into :class:`UnavailableError` (the one boundary)."""
    try:
        yield
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise UnavailableError(
            f"{what}: PostgreSQL is unavailable ({type(e).__name__}); retry, or check"
            " BOT4_DB__DSN and `bot4 stack status`"
        ) from e


class KeyStore:
    """The ``api_keys`` table.

    Args:
        pool: connections to bot4's database.
        clock: decides expiry and overlap ends.
    """

    def __init__(self, pool: asyncpg.Pool, *, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock

    async def authenticate(self, token: str) -> KeyRecord:
        """Return the key ``token`` names, if it may be used now.

        Raises:
            AuthenticationError: malformed, unknown (or wrong secret), revoked, expired, or
                retired by a rotation whose overlap ended.
            UnavailableError: PostgreSQL cannot be reached.
        """
        material = parse_key(token)
        if material is None:
            raise AuthenticationError(
                "malformed API key: expected b4_<id>_<secret>", reason="malformed"
            )
        async with database("authentication"):
            row = await self._pool.fetchrow(
                f"SELECT {_COLUMNS}, salt, hash FROM api_keys WHERE id = $1", material.id
            )
        # unknown id and wrong secret read the same: the answer must not confirm an id
        if row is None or not hmac.compare_digest(
            hash_secret(material.secret, bytes(row["salt"])), bytes(row["hash"])
        ):
            raise AuthenticationError("unknown API key", reason="unknown")
        record = KeyRecord.from_row(row)
        state = record.state(self._clock.now())
        problem = {
            "revoked": f"API key {record.id} was revoked",
            "expired": f"API key {record.id} expired; ask an admin for a new one",
            "retired": f"API key {record.id} was rotated and its overlap ended; use its"
            f" successor {record.rotated_to}",
        }.get(state)
        if problem is not None:
            raise AuthenticationError(
                problem, reason=state, key_id=record.id, role=record.role.label
            )
        return record

    async def create(
        self,
        *,
        name: str,
        role: Role,
        lifetime_s: int,
        by: str,
        connection: Connection | None = None,
        rotated_from: str | None = None,
    ) -> tuple[KeyRecord, KeyMaterial]:
        """Create a key; return its record and its material (shown once, never stored).

        Raises:
            UnavailableError: PostgreSQL cannot be reached.
        """
        material = new_key()
        salt = secrets.token_bytes(16)
        now = self._clock.now()
        expires_at = now + timedelta(seconds=lifetime_s) if lifetime_s > 0 else None
        query = f"""
            INSERT INTO api_keys (id, name, role, salt, hash, created_at, created_by,
                                  expires_at, rotated_from)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            RETURNING {_COLUMNS}"""
        args = (material.id, name, role.label, salt, hash_secret(material.secret, salt), now,
                by, expires_at, rotated_from)  # fmt: skip
        async with database("create key"):
            if connection is not None:
                row = await connection.fetchrow(query, *args)
            else:
                row = await self._pool.fetchrow(query, *args)
        assert row is not None
        return KeyRecord.from_row(row), material

    async def get(self, key_id: str) -> KeyRecord:
        """Return one key.

        Raises:
            NotFoundError: no key has this id.
            UnavailableError: PostgreSQL cannot be reached.
        """
        async with database("read key"):
            row = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1", key_id
            )
        if row is None:
            raise NotFoundError(f"no API key {key_id!r}; `bot4 keys list` shows the keys")
        return KeyRecord.from_row(row)

    async def list_keys(self, *, include_inactive: bool) -> list[KeyRecord]:
        """Return the keys, newest first (only usable ones unless ``include_inactive``).

        Raises:
            UnavailableError: PostgreSQL cannot be reached.
        """
        async with database("list keys"):
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at DESC, id"
            )
        keys = [KeyRecord.from_row(row) for row in rows]
        if include_inactive:
            return keys
        now = self._clock.now()
        return [k for k in keys if k.state(now) in ("active", "retiring")]

    async def rotate(
        self, key_id: str, *, overlap_s: int, lifetime_s: int | None, by: str
    ) -> tuple[KeyRecord, KeyRecord, KeyMaterial]:
        """Give key ``key_id`` a successor; the old key dies when the overlap ends.

        The successor keeps the name and role. Its lifetime is ``lifetime_s`` if given,
        else the old key's (none if the old one never expired).

        Returns:
            (the old key as updated, the new key, the new key's material).

        Raises:
            NotFoundError: no such key.
            ConflictError: the key is revoked, expired, or already rotated.
            UnavailableError: PostgreSQL cannot be reached.
        """
        now = self._clock.now()
        async with (
            database("rotate key"),
            self._pool.acquire() as connection,
            connection.transaction(),
        ):
            row = await connection.fetchrow(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE", key_id
            )
            if row is None:
                raise NotFoundError(f"no API key {key_id!r}; `bot4 keys list` shows the keys")
            old = KeyRecord.from_row(row)
            if old.rotated_to is not None:
                raise ConflictError(
                    f"API key {key_id} was already rotated to {old.rotated_to}; rotate that"
                )
            state = old.state(now)
            if state != "active":
                raise ConflictError(f"API key {key_id} is {state}; create a new key instead")
            if lifetime_s is None:
                lifetime_s = (
                    0
                    if old.expires_at is None
                    else max(1, int((old.expires_at - old.created_at).total_seconds()))
                )
            new, material = await self.create(
                name=old.name, role=old.role, lifetime_s=lifetime_s, by=by,
                connection=connection, rotated_from=old.id,
            )  # fmt: skip
            updated = await connection.fetchrow(
                f"""UPDATE api_keys SET rotated_to = $2, retires_at = $3
                     WHERE id = $1 RETURNING {_COLUMNS}""",
                key_id,
                new.id,
                now + timedelta(seconds=overlap_s),
            )
        assert updated is not None
        return KeyRecord.from_row(updated), new, material

    async def revoke(self, key_id: str, *, by: str, reason: str) -> KeyRecord:
        """Revoke a key at once.

        Raises:
            NotFoundError: no such key.
            ConflictError: already revoked.
            UnavailableError: PostgreSQL cannot be reached.
        """
        async with database("revoke key"):
            row = await self._pool.fetchrow(
                f"""UPDATE api_keys SET revoked_at = $2, revoked_by = $3, revoke_reason = $4
                     WHERE id = $1 AND revoked_at IS NULL RETURNING {_COLUMNS}""",
                key_id,
                self._clock.now(),
                by,
                reason,
            )
        if row is None:
            record = await self.get(key_id)  # NotFoundError when there is no such key
            raise ConflictError(f"API key {record.id} was already revoked")
        return KeyRecord.from_row(row)

    async def usable_admins(self) -> list[KeyRecord]:
        """Return the admin keys that authenticate now.

        Raises:
            UnavailableError: PostgreSQL cannot be reached.
        """
        keys = await self.list_keys(include_inactive=False)
        return [k for k in keys if k.role is Role.ADMIN]
