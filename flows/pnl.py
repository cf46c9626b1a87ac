"""Daily PnL from journaled fills: average-cost realised PnL, unrealised at a mark, fees.

Conventions (all in the quote asset of each symbol): a fill that grows a position moves
its average cost; one that shrinks it realises ``closed qty * (price - average cost)``
(sign by side); a fill through zero closes, then opens the rest at its price. Fees are
counted apart: a quote-asset fee as is, a base-asset fee at the fill's price; fees in a
third asset are listed by asset, not converted. Unrealised PnL marks the end-of-day
position at ``marks`` (the report uses the day's last fill price of each symbol: the
journal holds no market data). Fills before the day only build the opening position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from engine.journal import FillRecord
from engine.live.fills import split_symbol

ZERO = Decimal(0)


@dataclass(kw_only=True, slots=True)
class SymbolBook:
    """One symbol's running position and day figures."""

    symbol: str
    qty: Decimal = ZERO
    avg_price: Decimal = ZERO
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    other_fees: dict[str, Decimal] = field(default_factory=dict)
    fills: int = 0
    volume: Decimal = ZERO
    notional: Decimal = ZERO
    last_price: Decimal | None = None
    opening_qty: Decimal = ZERO

    def apply(self, f: FillRecord, *, in_day: bool) -> Decimal:
        """Apply a fill; return the PnL it realised."""
        signed = f.qty if f.side == "buy" else -f.qty
        realised = ZERO
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = abs(self.qty) + f.qty
            self.avg_price = (self.avg_price * abs(self.qty) + f.price * f.qty) / total
            self.qty += signed
        else:
            closed = min(f.qty, abs(self.qty))
            direction = 1 if self.qty > 0 else -1
            realised = closed * (f.price - self.avg_price) * direction
            self.qty += signed
            if self.qty == 0:
                self.avg_price = ZERO
            elif (self.qty > 0) != (direction > 0):  # went through zero
                self.avg_price = f.price
        if in_day:
            self.realised += realised
            self.fills += 1
            self.volume += f.qty
            self.notional += f.qty * f.price
            self.last_price = f.price
            base, quote = split_symbol(f.symbol)
            if f.fee_asset == quote:
                self.fees += f.fee
            elif f.fee_asset == base:
                self.fees += f.fee * f.price
            elif f.fee:
                asset = f.fee_asset or "?"
                self.other_fees[asset] = self.other_fees.get(asset, ZERO) + f.fee
        else:
            self.opening_qty = self.qty
        return realised if in_day else ZERO

    def unrealised(self, mark: Decimal | None) -> Decimal:
        """Return the open position's PnL at ``mark`` (zero without a mark)."""
        if mark is None or self.qty == 0:
            return ZERO
        return (mark - self.avg_price) * self.qty


@dataclass(frozen=True, kw_only=True, slots=True)
class DayPnl:
    """The day's figures per symbol and the realised-PnL curve."""

    books: dict[str, SymbolBook]
    marks: dict[str, Decimal]
    curve: list[tuple[datetime, Decimal]]
    position_curves: dict[str, list[tuple[datetime, Decimal]]]

    def totals(self) -> dict[str, str]:
        """Return realised, unrealised, fees and net over all symbols (quote units)."""
        realised = sum((b.realised for b in self.books.values()), ZERO)
        unrealised = sum((b.unrealised(self.marks.get(s)) for s, b in self.books.items()), ZERO)
        fees = sum((b.fees for b in self.books.values()), ZERO)
        return {"realised": str(realised), "unrealised": str(unrealised), "fees": str(fees),
                "net": str(realised + unrealised - fees)}  # fmt: skip


def day_pnl(
    fills: Iterable[FillRecord], *, start: datetime, end: datetime,
    marks: Mapping[str, Decimal] | None = None,
) -> DayPnl:  # fmt: skip
    """Return the PnL of the fills traded in ``[start, end)`` (earlier fills: opening)."""
    books: dict[str, SymbolBook] = {}
    curve: list[tuple[datetime, Decimal]] = []
    positions: dict[str, list[tuple[datetime, Decimal]]] = {}
    cumulative = ZERO
    for f in sorted(fills, key=lambda f: (f.traded_at, f.symbol, int(f.trade_id), f.side)):
        if f.traded_at >= end:
            continue
        book = books.setdefault(f.symbol, SymbolBook(symbol=f.symbol))
        in_day = f.traded_at >= start
        cumulative += book.apply(f, in_day=in_day)
        if in_day:
            curve.append((f.traded_at, cumulative))
            positions.setdefault(f.symbol, []).append((f.traded_at, book.qty))
    day_marks = {s: b.last_price for s, b in books.items() if b.last_price is not None}
    return DayPnl(books=books, marks={**day_marks, **(marks or {})}, curve=curve,
                  position_curves=positions)  # fmt: skip
