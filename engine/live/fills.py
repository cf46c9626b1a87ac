"""Fills into positions: the arithmetic, the journal record, and the positions table.

A position is what trading did to the account, so that it can be compared with the
venue's balances: ``qty`` is the base asset bought minus sold, net of fees paid in the
base asset; ``cost`` is the quote asset paid minus received, plus fees paid in the quote
asset. Fees in a third asset (BNB discounts) are kept apart in ``other_fees``.

The ``positions`` table is derived from the ``fills`` table (the truth) and written with
optimistic locking on its ``version`` column; every write also checks the lease, so a
deposed engine cannot move it. After a crash it may lag the fills; recovery rewrites it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

import asyncpg

from engine.execution.models import Fill
from engine.journal import FencedError, FillRecord
from engine.journal.writer import JournalUnavailableError

MAX_VERSION_RETRIES: Final = 20


@dataclass(frozen=True, kw_only=True, slots=True)
class Position:
    """One symbol's position (see the module docstring for the sign conventions)."""

    symbol: str
    qty: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    other_fees: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def base(self) -> str:
        """Return the base asset (``BTC`` of ``BTC/USDT``)."""
        return split_symbol(self.symbol)[0]

    @property
    def quote(self) -> str:
        """Return the quote asset (``USDT`` of ``BTC/USDT``)."""
        return split_symbol(self.symbol)[1]

    def plus(self, fill: FillRecord) -> Position:
        """Return the position after ``fill``."""
        sign = 1 if fill.side == "buy" else -1
        qty = self.qty + sign * fill.qty
        cost = self.cost + sign * fill.price * fill.qty
        other = dict(self.other_fees)
        if fill.fee:
            if fill.fee_asset == self.base:
                qty -= fill.fee
            elif fill.fee_asset == self.quote:
                cost += fill.fee
            else:
                asset = fill.fee_asset or "?"
                other[asset] = other.get(asset, Decimal(0)) + fill.fee
        return replace(self, qty=qty, cost=cost, other_fees=other)


def split_symbol(symbol: str) -> tuple[str, str]:
    """Return (base, quote) of a unified spot symbol.

    Raises:
        ValueError: ``symbol`` is not ``BASE/QUOTE``.
    """
    base, slash, quote = symbol.partition("/")
    if not slash or not base or not quote:
        raise ValueError(f"symbol must be BASE/QUOTE (got {symbol!r})")
    return base, quote.split(":")[0]


def positions_from(fills: Iterable[FillRecord]) -> dict[str, Position]:
    """Return every symbol's position after ``fills``."""
    positions: dict[str, Position] = {}
    for f in fills:
        positions[f.symbol] = positions.get(f.symbol, Position(symbol=f.symbol)).plus(f)
    return positions


def asset_deltas(positions: Iterable[Position]) -> dict[str, Decimal]:
    """Return what the positions changed in each asset of the account."""
    deltas: dict[str, Decimal] = {}
    for p in positions:
        deltas[p.base] = deltas.get(p.base, Decimal(0)) + p.qty
        deltas[p.quote] = deltas.get(p.quote, Decimal(0)) - p.cost
        for asset, fee in p.other_fees.items():
            deltas[asset] = deltas.get(asset, Decimal(0)) - fee
    return deltas


def fill_record(fill: Fill, *, venue: str, client_order_id: str) -> FillRecord:
    """Return the journal record of a venue fill."""
    return FillRecord(
        venue=venue,
        trade_id=str(fill.trade_id),
        client_order_id=client_order_id,
        symbol=fill.symbol,
        side=fill.side,
        price=fill.price,
        qty=fill.amount,
        fee=fill.fee,
        fee_asset=fill.fee_currency,
        traded_at=datetime.fromtimestamp(fill.timestamp_ms / 1000, tz=UTC),
        liquidity=None if fill.is_maker is None else ("maker" if fill.is_maker else "taker"),
    )


async def load_fills(pool: asyncpg.Pool, *, venue: str) -> list[FillRecord]:
    """Return every fill of ``venue`` in the journal, in trade order per symbol."""
    rows = await pool.fetch(
        "SELECT * FROM fills WHERE venue = $1 ORDER BY symbol, length(trade_id), trade_id", venue
    )
    return [
        FillRecord(
            venue=r["venue"], trade_id=r["trade_id"], client_order_id=r["client_order_id"],
            symbol=r["symbol"], side=r["side"], price=r["price"], qty=r["qty"], fee=r["fee"],
            fee_asset=r["fee_asset"], traded_at=r["traded_at"], liquidity=r["liquidity"],
        )
        for r in rows
    ]  # fmt: skip


_LEASE_HELD: Final = (
    "EXISTS (SELECT 1 FROM engine_leases WHERE name = {} AND epoch = {} AND holder = {})"
)
_UPDATE: Final = (
    "UPDATE positions SET qty = $2, cost = $3, version = version + 1, updated_at = now()"
    " WHERE symbol = $1 AND version = $4 AND "
    + _LEASE_HELD.format("$5", "$6", "$7")
    + " RETURNING version"
)
_STILL_HELD: Final = "SELECT " + _LEASE_HELD.format("$1", "$2", "$3")


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionStore:
    """Writes the ``positions`` table under our lease epoch, with optimistic locking."""

    pool: asyncpg.Pool
    lease: str
    epoch: int
    instance: str

    async def add(self, delta: Position) -> Position:
        """Add ``delta`` (qty and cost) to the symbol's row; return the row after.

        Raises:
            FencedError: our epoch is stale.
            JournalUnavailableError: the database is unreachable or the row stayed
                contended past :data:`MAX_VERSION_RETRIES`.
        """
        return await self._write(delta, add=True)

    async def put(self, position: Position) -> Position:
        """Overwrite the symbol's row with ``position`` (recovery's rebuild)."""
        return await self._write(position, add=False)

    async def _write(self, value: Position, *, add: bool) -> Position:
        try:
            await self.pool.execute(
                "INSERT INTO positions (symbol) VALUES ($1) ON CONFLICT DO NOTHING", value.symbol
            )
            for _ in range(MAX_VERSION_RETRIES):
                row = await self.pool.fetchrow(
                    "SELECT qty, cost, version FROM positions WHERE symbol = $1", value.symbol
                )
                assert row is not None  # inserted above, never deleted
                qty = row["qty"] + value.qty if add else value.qty
                cost = row["cost"] + value.cost if add else value.cost
                done = await self.pool.fetchval(
                    _UPDATE,
                    value.symbol, qty, cost, row["version"], self.lease, self.epoch,
                    self.instance,
                )  # fmt: skip
                if done is not None:
                    return replace(value, qty=qty, cost=cost)
                if not await self.pool.fetchval(_STILL_HELD, self.lease, self.epoch, self.instance):
                    raise FencedError(f"positions: epoch {self.epoch} no longer holds the lease")
                # someone else moved the version between our read and write: read again
        except (OSError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError) as e:
            raise JournalUnavailableError(f"positions write failed: {e}") from e
        raise JournalUnavailableError(
            f"positions row {value.symbol} stayed contended for {MAX_VERSION_RETRIES} tries"
        )
