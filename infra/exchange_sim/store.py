"""Durable state: accounts, orders and trades in SQLite, written through on every change.

WAL mode with ``synchronous=NORMAL`` keeps each commit cheap; a restarted simulator
reloads balances and orders (open ones back into the books, in time priority) and
continues order and trade ids from the highest stored.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from infra.exchange_sim.engine import MatchingEngine
from infra.exchange_sim.models import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Outcome,
    Side,
    TimeInForce,
)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS balances (
    account TEXT NOT NULL, asset TEXT NOT NULL, free INTEGER NOT NULL, locked INTEGER NOT NULL,
    PRIMARY KEY (account, asset));
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY, account TEXT NOT NULL, symbol TEXT NOT NULL,
    client_order_id TEXT NOT NULL, side TEXT NOT NULL, type TEXT NOT NULL,
    time_in_force TEXT NOT NULL, price INTEGER NOT NULL, qty INTEGER NOT NULL,
    time_ms INTEGER NOT NULL, filled INTEGER NOT NULL, quote_filled INTEGER NOT NULL,
    status TEXT NOT NULL, locked INTEGER NOT NULL, update_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS orders_by_account ON orders (account, symbol, order_id);
CREATE TABLE IF NOT EXISTS trades (
    trade_id INTEGER NOT NULL, symbol TEXT NOT NULL, price INTEGER NOT NULL,
    qty INTEGER NOT NULL, quote_qty INTEGER NOT NULL, time_ms INTEGER NOT NULL,
    maker_order_id INTEGER NOT NULL, taker_order_id INTEGER NOT NULL,
    buyer_account TEXT NOT NULL, seller_account TEXT NOT NULL,
    buyer_order_id INTEGER NOT NULL, seller_order_id INTEGER NOT NULL,
    buyer_is_maker INTEGER NOT NULL, buyer_fee INTEGER NOT NULL, seller_fee INTEGER NOT NULL,
    PRIMARY KEY (symbol, trade_id));
CREATE INDEX IF NOT EXISTS trades_by_buyer ON trades (buyer_account, symbol, trade_id);
CREATE INDEX IF NOT EXISTS trades_by_seller ON trades (seller_account, symbol, trade_id);
"""

_ORDER_COLUMNS: Final = (
    "order_id, account, symbol, client_order_id, side, type, time_in_force, price, qty,"
    " time_ms, filled, quote_filled, status, locked, update_ms"
)
_TRADE_COLUMNS: Final = (
    "trade_id, symbol, price, qty, quote_qty, time_ms, maker_order_id, taker_order_id,"
    " buyer_account, seller_account, buyer_order_id, seller_order_id, buyer_is_maker,"
    " buyer_fee, seller_fee"
)


def _order_row(order: Order) -> tuple[object, ...]:
    return (
        order.order_id, order.account, order.symbol, order.client_order_id, order.side.value,
        order.type.value, order.time_in_force.value, order.price, order.qty, order.time_ms,
        order.filled, order.quote_filled, order.status.value, order.locked, order.update_ms,
    )  # fmt: skip


def _order_from_row(row: tuple[object, ...]) -> Order:
    (oid, account, symbol, cid, side, otype, tif, price, qty, time_ms, filled, qf, status,
     locked, update_ms) = row  # fmt: skip
    return Order(
        order_id=int(str(oid)),
        account=str(account),
        symbol=str(symbol),
        client_order_id=str(cid),
        side=Side(str(side)),
        type=OrderType(str(otype)),
        time_in_force=TimeInForce(str(tif)),
        price=int(str(price)),
        qty=int(str(qty)),
        time_ms=int(str(time_ms)),
        filled=int(str(filled)),
        quote_filled=int(str(qf)),
        status=OrderStatus(str(status)),
        locked=int(str(locked)),
        update_ms=int(str(update_ms)),
    )


def fill_from_row(row: tuple[object, ...]) -> Fill:
    """Rebuild a :class:`Fill` from a ``trades`` row (columns in table order)."""
    values = [int(str(v)) if i not in (1, 8, 9) else str(v) for i, v in enumerate(row)]
    return Fill(
        trade_id=int(values[0]), symbol=str(values[1]), price=int(values[2]),
        qty=int(values[3]), quote_qty=int(values[4]), time_ms=int(values[5]),
        maker_order_id=int(values[6]), taker_order_id=int(values[7]),
        buyer_account=str(values[8]), seller_account=str(values[9]),
        buyer_order_id=int(values[10]), seller_order_id=int(values[11]),
        buyer_is_maker=bool(values[12]), buyer_fee=int(values[13]), seller_fee=int(values[14]),
    )  # fmt: skip


class Store:
    """The simulator's SQLite file (or an in-memory database when no state dir is set)."""

    def __init__(self, state_dir: Path | None) -> None:
        if state_dir is None:
            target = ":memory:"
        else:
            state_dir.mkdir(parents=True, exist_ok=True)
            target = str(state_dir / "sim.db")
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def is_empty(self) -> bool:
        """Whether no account was ever stored (a first start)."""
        count: int = self._db.execute("SELECT COUNT(*) FROM balances").fetchone()[0]
        return count == 0

    def load_into(self, engine: MatchingEngine) -> None:
        """Restore balances, orders and id counters into a fresh engine."""
        for account, asset, free, locked in self._db.execute(
            "SELECT account, asset, free, locked FROM balances"
        ):
            balances = engine.ledger.account(account)
            balances.free[asset] = free
            balances.locked[asset] = locked
        for row in self._db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders ORDER BY order_id"):
            engine.restore(_order_from_row(row))
        for symbol, last_trade in self._db.execute(
            "SELECT symbol, MAX(trade_id) FROM trades GROUP BY symbol"
        ):
            engine.next_trade_ids[symbol] = last_trade + 1

    def save(self, engine: MatchingEngine, outcome: Outcome) -> None:
        """Write every order, trade and balance an outcome touched, in one transaction."""
        order_ids = {event.order.order_id for event in outcome.events}
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                f"INSERT OR REPLACE INTO orders ({_ORDER_COLUMNS}) VALUES ({','.join('?' * 15)})",
                [_order_row(engine.orders[i]) for i in sorted(order_ids)],
            )
            self._db.executemany(
                f"INSERT INTO trades ({_TRADE_COLUMNS}) VALUES ({','.join('?' * 15)})",
                [_fill_row(fill) for fill in outcome.fills],
            )
            self.save_balances(engine, outcome.accounts, transaction=False)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def save_balances(
        self, engine: MatchingEngine, accounts: set[str], *, transaction: bool = True
    ) -> None:
        """Write the balances of ``accounts``."""
        rows = []
        for name in accounts:
            balances = engine.ledger.account(name)
            for asset in balances.assets():
                rows.append(
                    (name, asset, balances.free.get(asset, 0), balances.locked.get(asset, 0))
                )
        statement = (
            "INSERT OR REPLACE INTO balances (account, asset, free, locked) VALUES (?,?,?,?)"
        )
        if transaction:
            with self._db:
                self._db.executemany(statement, rows)
        else:
            self._db.executemany(statement, rows)

    def trades_of(
        self, account: str, symbol: str, *, from_id: int | None, start_ms: int | None, limit: int
    ) -> list[Fill]:
        """Return an account's trades on a symbol, oldest first (``myTrades`` paging)."""
        query = (
            f"SELECT {_TRADE_COLUMNS} FROM trades WHERE symbol = ?"
            " AND (buyer_account = ? OR seller_account = ?)"
        )
        args: list[object] = [symbol, account, account]
        if from_id is not None:
            query += " AND trade_id >= ?"
            args.append(from_id)
        elif start_ms is not None:
            query += " AND time_ms >= ?"
            args.append(start_ms)
        query += " ORDER BY trade_id LIMIT ?"
        args.append(limit)
        return [fill_from_row(row) for row in self._db.execute(query, args)]

    def recent_trades(self, symbol: str, limit: int) -> list[Fill]:
        """Return a symbol's newest trades, oldest first."""
        rows = self._db.execute(
            f"SELECT {_TRADE_COLUMNS} FROM trades WHERE symbol = ? ORDER BY trade_id DESC LIMIT ?",
            (symbol, limit),
        ).fetchall()
        return [fill_from_row(row) for row in reversed(rows)]

    def orders_of(
        self, account: str, symbol: str, *, from_id: int | None, limit: int
    ) -> list[Order]:
        """Return an account's orders on a symbol, oldest first (``allOrders``)."""
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE account = ? AND symbol = ?"
            " AND order_id >= ? ORDER BY order_id LIMIT ?",
            (account, symbol, from_id or 0, limit),
        )
        return [_order_from_row(row) for row in rows]


def _fill_row(fill: Fill) -> tuple[object, ...]:
    return (
        fill.trade_id, fill.symbol, fill.price, fill.qty, fill.quote_qty, fill.time_ms,
        fill.maker_order_id, fill.taker_order_id, fill.buyer_account, fill.seller_account,
        fill.buyer_order_id, fill.seller_order_id, int(fill.buyer_is_maker), fill.buyer_fee,
        fill.seller_fee,
    )  # fmt: skip


def stats_since(store: Store, symbol: str, since_ms: int) -> tuple[int, ...] | None:
    """Return (open, high, low, last, lots, quote units, first id, last id, count) or None."""
    row = store._db.execute(
        "SELECT MIN(trade_id), MAX(trade_id), MAX(price), MIN(price), SUM(qty), SUM(quote_qty),"
        " COUNT(*) FROM trades WHERE symbol = ? AND time_ms >= ?",
        (symbol, since_ms),
    ).fetchone()
    if row is None or row[6] == 0:
        return None
    first_id, last_id, high, low, lots, quote, count = row
    open_price = store._db.execute(
        "SELECT price FROM trades WHERE symbol = ? AND trade_id = ?", (symbol, first_id)
    ).fetchone()[0]
    last_price = store._db.execute(
        "SELECT price FROM trades WHERE symbol = ? AND trade_id = ?", (symbol, last_id)
    ).fetchone()[0]
    return (open_price, high, low, last_price, lots, quote, first_id, last_id, count)
