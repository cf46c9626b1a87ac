"""The model registry: one PostgreSQL row per model version and its lifecycle.

A version moves only along :data:`ALLOWED` (``registered → shadow → canary → active →
retired``, any live state → ``rejected``, ``retired → active`` when a rollback brings the
previous model back). Every move is one transaction: the row is locked
(``SELECT … FOR UPDATE``), checked against the expected state, updated and appended to
``model_transitions``. Two workflows racing on one version cannot both move it; the
unique index on the active state makes a promotion retire the previous model in the
same commit or fail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

STATES: Final = ("registered", "shadow", "canary", "active", "retired", "rejected")
ALLOWED: Final[dict[str, tuple[str, ...]]] = {
    "registered": ("shadow", "rejected"),
    "shadow": ("canary", "rejected"),
    "canary": ("active", "rejected"),
    "active": ("retired", "rejected"),
    "retired": ("active",),
    "rejected": (),
}


class RegistryError(Exception):
    """Base of the registry's refusals."""


class UnknownModelError(RegistryError):
    """No such model version in the registry."""


class ModelExistsError(RegistryError):
    """The version is registered already (versions are immutable: pick a new one)."""


class IllegalTransitionError(RegistryError):
    """The lifecycle does not allow this move (or the state changed under us)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelRecord:
    """One registered model version."""

    version: str
    kind: str
    sha256: str
    artifact_uri: str
    features: tuple[str, ...]
    training: dict[str, Any]
    metrics: dict[str, Any]
    state: str
    created_at: datetime
    created_by: str

    def as_json(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return {
            "version": self.version,
            "kind": self.kind,
            "sha256": self.sha256,
            "artifact_uri": self.artifact_uri,
            "features": list(self.features),
            "training": self.training,
            "metrics": self.metrics,
            "state": self.state,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Transition:
    """One recorded lifecycle move."""

    version: str
    from_state: str
    to_state: str
    by: str
    reason: str
    at: datetime

    def as_json(self) -> dict[str, Any]:
        """Return the transition as a JSON-ready dict."""
        return {
            "version": self.version,
            "from": self.from_state,
            "to": self.to_state,
            "by": self.by,
            "reason": self.reason,
            "at": self.at.isoformat(),
        }


_COLUMNS: Final = (
    "version, kind, sha256, artifact_uri, features, training, metrics, state, created_at,"
    " created_by"
)


def _record(row: asyncpg.Record) -> ModelRecord:
    return ModelRecord(
        version=row["version"],
        kind=row["kind"],
        sha256=row["sha256"],
        artifact_uri=row["artifact_uri"],
        features=tuple(json.loads(row["features"])),
        training=dict(json.loads(row["training"])),
        metrics=dict(json.loads(row["metrics"])),
        state=row["state"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


class ModelRegistry:
    """Model versions in PostgreSQL (the ``model_versions`` and ``model_transitions`` tables)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def register(
        self,
        *,
        version: str,
        kind: str,
        sha256: str,
        artifact_uri: str,
        features: tuple[str, ...],
        training: dict[str, Any],
        metrics: dict[str, Any],
        by: str,
    ) -> ModelRecord:
        """Insert a new version in state ``registered``.

        Raises:
            ModelExistsError: the version is taken.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                row = await conn.fetchrow(
                    f"INSERT INTO model_versions (version, kind, sha256, artifact_uri, features,"
                    f" training, metrics, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                    f" RETURNING {_COLUMNS}",
                    version,
                    kind,
                    sha256,
                    artifact_uri,
                    json.dumps(list(features)),
                    json.dumps(training),
                    json.dumps(metrics),
                    by,
                )
            except asyncpg.UniqueViolationError as e:
                raise ModelExistsError(
                    f"model version {version!r} is registered already; versions are"
                    " immutable: choose a new one"
                ) from e
            await conn.execute(
                "INSERT INTO model_transitions (version, from_state, to_state, by, reason)"
                " VALUES ($1, '', 'registered', $2, 'registered')",
                version,
                by,
            )
        assert row is not None
        return _record(row)

    async def get(self, version: str) -> ModelRecord:
        """Return one version.

        Raises:
            UnknownModelError: not registered.
        """
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM model_versions WHERE version = $1", version
        )
        if row is None:
            raise UnknownModelError(f"model version {version!r} is not registered")
        return _record(row)

    async def versions(self, *, limit: int = 100) -> list[ModelRecord]:
        """Return the newest versions first."""
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM model_versions ORDER BY created_at DESC, version LIMIT $1",
            limit,
        )
        return [_record(r) for r in rows]

    async def active(self) -> ModelRecord | None:
        """Return the active version (None: the engines run their release's model)."""
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM model_versions WHERE state = 'active'"
        )
        return None if row is None else _record(row)

    async def history(self, version: str) -> list[Transition]:
        """Return the version's transitions, oldest first."""
        rows = await self.pool.fetch(
            "SELECT version, from_state, to_state, by, reason, at FROM model_transitions"
            " WHERE version = $1 ORDER BY seq",
            version,
        )
        return [
            Transition(
                version=r["version"],
                from_state=r["from_state"],
                to_state=r["to_state"],
                by=r["by"],
                reason=r["reason"],
                at=r["at"],
            )
            for r in rows
        ]

    async def transition(
        self, version: str, *, to: str, by: str, reason: str, expect: tuple[str, ...] | None = None
    ) -> ModelRecord:
        """Move ``version`` to ``to``; a no-op when it is there already (idempotent).

        Args:
            version: the model version.
            to: the new state.
            by: who asks (recorded).
            reason: why (recorded).
            expect: states the caller believes the version is in (default: any state
                that may move to ``to``).

        Raises:
            UnknownModelError: not registered.
            IllegalTransitionError: the lifecycle does not allow the move.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._move(conn, version, to=to, by=by, reason=reason, expect=expect)

    async def promote(
        self, version: str, *, by: str, reason: str
    ) -> tuple[ModelRecord, str | None]:
        """Make ``version`` active and retire the active one, in one commit.

        Returns the record and the retired version (None when there was none).

        Raises:
            UnknownModelError / IllegalTransitionError: as :meth:`transition`.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            current = await conn.fetchval(
                "SELECT version FROM model_versions WHERE state = 'active' FOR UPDATE"
            )
            retired = None
            if current is not None and current != version:
                await self._move(
                    conn,
                    current,
                    to="retired",
                    by=by,
                    reason=f"replaced by {version}: {reason}",
                    expect=("active",),
                )
                retired = str(current)
            record = await self._move(conn, version, to="active", by=by, reason=reason, expect=None)
            return record, retired

    async def _move(
        self,
        conn: Any,  # a pooled connection proxy
        version: str,
        *,
        to: str,
        by: str,
        reason: str,
        expect: tuple[str, ...] | None,
    ) -> ModelRecord:
        if to not in STATES:
            raise IllegalTransitionError(f"state {to!r} is not one of {STATES}")
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM model_versions WHERE version = $1 FOR UPDATE", version
        )
        if row is None:
            raise UnknownModelError(f"model version {version!r} is not registered")
        state = str(row["state"])
        if state == to:
            return _record(row)
        if expect is not None and state not in expect:
            raise IllegalTransitionError(
                f"model {version} is {state}, expected {' or '.join(expect)} before {to}"
            )
        if to not in ALLOWED[state]:
            allowed = ", ".join(ALLOWED[state]) or "nothing (final)"
            raise IllegalTransitionError(
                f"model {version}: {state} -> {to} is not allowed (from {state}: {allowed})"
            )
        updated = await conn.fetchrow(
            f"UPDATE model_versions SET state = $2, updated_at = now() WHERE version = $1"
            f" AND state = $3 RETURNING {_COLUMNS}",
            version,
            to,
            state,
        )
        if updated is None:  # cannot happen under the row lock; refuse rather than guess
            raise IllegalTransitionError(f"model {version} changed state during the move")
        await conn.execute(
            "INSERT INTO model_transitions (version, from_state, to_state, by, reason)"
            " VALUES ($1, $2, $3, $4, $5)",
            version,
            state,
            to,
            by,
            reason,
        )
        return _record(updated)
