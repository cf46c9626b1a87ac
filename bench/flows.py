"""How long the chores take: backup and verified restore of a 1M-event journal,
reconciliation of 100,000 fills through ccxt.

    .venv/bin/python -m bench.flows [--events N] [--fills N]

Everything real and started here on free loopback ports, stopped at the end: a scratch
PostgreSQL (embedded binaries) holding the migrated schema and the journal, moto's S3
server for the dumps, the exchange simulator whose SQLite state holds the account's
trades. Prints one JSON document with ``backup_s`` (pg_dump with the manifest's counts
and digests, upload), ``restore_verify_s`` (download, checksum, restore into a fresh
scratch server, counts, digests, triggers) and ``reconcile_s`` (every fill paged by
trade id through ccxt, open orders, balances, comparison, stored run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import asyncpg

from bench.common import free_ports
from bot4.settings import ExchangeSettings, StorageSettings
from engine.execution import open_session
from engine.journal import Journal
from engine.leadership import Lease
from flows.backups import restore_test, take_backup
from flows.objstore import ObjectStore
from flows.reconciliation import ReconcileConfig, reconcile, venue_fills
from flows.scratch_pg import scratch_postgres
from infra.postgres.migrate import apply_migrations
from tests.stubs.exchange_sim import ThreadedSim, ccxt_binance, sim_config
from tests.stubs.journal_seed import seed_journal


def say(text: str) -> None:
    """Progress on stderr."""
    print(text, file=sys.stderr, flush=True)


async def _prime_trade(port: int) -> None:
    exchange = ccxt_binance(port)
    try:
        await exchange.create_order("BTC/USDT", "market", "buy", 0.002)
    finally:
        await exchange.close()


def _clone_trades(db_file: Path, count: int) -> None:
    """Copy the one real trade ``count`` times under new trade ids (the venue's history)."""
    db = sqlite3.connect(db_file)
    try:
        row = list(db.execute("SELECT * FROM trades ORDER BY trade_id LIMIT 1").fetchone())
        rows = []
        for i in range(2, count + 1):
            clone = list(row)
            clone[0], clone[5] = i, row[5] + i
            rows.append(tuple(clone))
        db.executemany(f"INSERT INTO trades VALUES ({','.join('?' * len(row))})", rows)
        db.commit()
    finally:
        db.close()


async def bench(events: int, fills: int) -> dict[str, object]:
    """Run the three measurements; return the JSON document."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request
    (s3_port,) = free_ports(1)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    moto.start()
    state_dir = Path(tempfile.mkdtemp(prefix="bot4-bench-sim-"))
    try:
        storage = StorageSettings(port=s3_port)
        store = ObjectStore.open("s3://bot4-bench/backups", storage)
        async with scratch_postgres() as server:
            admin = await asyncpg.connect(server.dsn())
            await admin.execute("CREATE DATABASE bot4")
            await admin.close()
            dsn = server.dsn("bot4")
            await apply_migrations(dsn)
            say(f"seeding {events} journal events ...")
            await seed_journal(dsn, events=events, fills=0)
            started = time.perf_counter()
            backup = await take_backup(dsn=dsn, store=store)
            backup_s = time.perf_counter() - started
            say(f"backup {backup.size_bytes} bytes in {backup_s:.2f} s; restore test ...")
            started = time.perf_counter()
            tested = await restore_test(dsn=dsn, store=store, backup_id=backup.backup_id)
            restore_verify_s = time.perf_counter() - started
            assert tested.ok, tested.problems
            admin = await asyncpg.connect(server.dsn())
            await admin.execute("CREATE DATABASE recon")
            await admin.close()
            await apply_migrations(server.dsn("recon"))
            reconcile_s, checked = await _reconcile(server.dsn("recon"), state_dir, fills)
        return {
            "bench": "flows", "python": platform.python_version(),
            "journal_events": events, "dump_bytes": backup.size_bytes,
            "backup_s": round(backup_s, 3), "restore_verify_s": round(restore_verify_s, 3),
            "restore_s": round(tested.restore_s, 3), "reconcile_fills": checked,
            "reconcile_s": round(reconcile_s, 3),
            "notes": "source and scratch PostgreSQL run with fsync=off; reconciliation"
            " without a balance baseline (fills, open orders, balances fetched)",
        }  # fmt: skip
    finally:
        moto.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


async def _reconcile(dsn: str, state_dir: Path, fills: int) -> tuple[float, int]:
    config = sim_config(state_dir=state_dir)
    with ThreadedSim(config) as sim:
        await _prime_trade(sim.config.port)
    _clone_trades(state_dir / "sim.db", fills)
    with ThreadedSim(config) as sim:
        settings = ExchangeSettings(port=sim.config.port, symbols=("BTC/USDT",))
        session = await open_session(settings, timeout_ms=30_000)
        try:
            async with asyncpg.create_pool(dsn, min_size=1, max_size=4) as pool:
                say(f"journaling the venue's {fills} fills ...")
                venue = await venue_fills(session, venue="binance", symbols=("BTC/USDT",),
                                          client_ids={})  # fmt: skip
                await pool.execute("UPDATE engine_leases SET holder = NULL, expires_at = now()")
                epoch = await Lease(pool, instance="bench", ttl_s=600).try_acquire()
                assert epoch is not None
                journal = Journal(pool, instance="bench", timeout_s=600)
                for first in range(0, len(venue), 20_000):
                    await journal.append([], venue[first : first + 20_000], epoch=epoch)
                say("reconciling ...")
                cfg = ReconcileConfig(venue="binance", symbols=("BTC/USDT",),
                                      quantity_tolerance=Decimal("1e-8"))  # fmt: skip
                started = time.perf_counter()
                report = await reconcile(pool, session, config=cfg)
                seconds = time.perf_counter() - started
                assert not report.breaks, report.counts()
                return seconds, report.fills_checked
        finally:
            await session.close()


def main() -> None:
    """Parse arguments, run, print JSON (logs and progress on stderr)."""
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    parser = argparse.ArgumentParser(prog="bench.flows")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--fills", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.events, args.fills)), indent=2))


if __name__ == "__main__":
    main()
