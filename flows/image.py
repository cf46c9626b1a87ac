"""What a database holds, in a form two databases can be compared by: counts and digests.

A backup's manifest records the image of the snapshot pg_dump copied; a restore test
computes the image of the restored database and compares. Row counts cover every table
of the ``public`` schema; the journal tables (``journal_events``, ``fills``) also get a
SHA-256 over their rows in key order, so a restored journal is proven equal row by row,
not just in size. Rows are rendered as text with ``TimeZone=UTC``, so the digest does not
depend on a server's or session's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import asyncpg

JOURNAL_TABLES: Final = {
    "journal_events": "seq",
    "fills": "venue, symbol, trade_id, side",
}
APPEND_ONLY_TRIGGERS: Final = ("journal_events_append_only", "fills_append_only")

_TABLES: Final = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class DatabaseImage:
    """Row counts of every table and digests of the journal tables."""

    row_counts: dict[str, int] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """Return the manifest's part."""
        return {"row_counts": self.row_counts, "digests": self.digests}

    def differences(self, other: DatabaseImage) -> list[str]:
        """Return what ``other`` (the restored database) lacks or has different."""
        problems = []
        for table, count in sorted(self.row_counts.items()):
            got = other.row_counts.get(table)
            if got != count:
                problems.append(f"{table}: {count} rows expected, {got} restored")
        for table, digest in sorted(self.digests.items()):
            got_digest = other.digests.get(table)
            if got_digest != digest:
                problems.append(f"{table}: row digest {digest[:12]}… expected, got {got_digest}")
        return problems


async def table_digest(conn: asyncpg.Connection, table: str) -> str:
    """Return the SHA-256 over ``table``'s rows in key order (a journal table)."""
    order = JOURNAL_TABLES[table]
    value = await conn.fetchval(
        f"SELECT encode(sha256(convert_to(coalesce(string_agg(md5(t::text), ''"
        f" ORDER BY {order}), ''), 'UTF8')), 'hex') FROM {table} t"
    )
    return str(value)


async def database_image(conn: asyncpg.Connection) -> DatabaseImage:
    """Return the image of the database ``conn`` sees (inside its snapshot, if any)."""
    await conn.execute("SET LOCAL TimeZone = 'UTC'")
    tables = [r["relname"] for r in await conn.fetch(_TABLES)]
    counts = {}
    for table in tables:
        counts[table] = int(await conn.fetchval(f'SELECT count(*) FROM "{table}"'))
    digests = {t: await table_digest(conn, t) for t in JOURNAL_TABLES if t in counts}
    return DatabaseImage(row_counts=counts, digests=digests)


async def image_of(dsn: str) -> DatabaseImage:
    """Return the image of the database at ``dsn`` (one consistent snapshot)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await database_image(conn)
    finally:
        await conn.close()


async def missing_triggers(conn: asyncpg.Connection) -> list[str]:
    """Return the append-only triggers the database lacks (integrity of the journal)."""
    present = {
        r["tgname"]
        for r in await conn.fetch(
            "SELECT tgname FROM pg_trigger WHERE tgname = ANY($1::text[]) AND tgenabled <> 'D'",
            list(APPEND_ONLY_TRIGGERS),
        )
    }
    return [t for t in APPEND_ONLY_TRIGGERS if t not in present]
