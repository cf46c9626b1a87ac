"""Order-book views to records, and the integrity checks every view must pass.

How the book is kept in sync — a decision. ccxt.pro's ``watch_order_book`` already does
Binance's documented recipe: it buffers the ``depthUpdate`` diffs, anchors them on a REST
snapshot (``lastUpdateId``), drops diffs older than the snapshot, demands
``U <= lastUpdateId + 1 <= u`` for the first applied diff and ``U == previous u + 1``
after it, and raises ``ChecksumError`` on a gap (then drops its book, so the next watch
resubscribes and re-anchors). Re-implementing that over raw frames would duplicate a
maintained, venue-specific state machine and its websocket plumbing. So we use it, and
check every book it hands over ourselves, because a sync algorithm can be right and the
data still wrong:

* the update id (``nonce`` = last applied ``u``) strictly increases;
* no level has a non-positive quantity;
* bids strictly descending, asks strictly ascending (no duplicate levels);
* the book is not crossed (best bid < best ask);
* every price and quantity is on the instrument's tick and lot grid.

A failed check marks the book invalid and forces a resync (:mod:`.feeds`).

What reaches the engine is records, not ccxt's lists: for each book version, the top
``depth`` levels of each side as :data:`engine.dtypes.BOOK_LEVEL` records sharing one
``update_id``. A batch replaces the top of the book for that symbol (snapshot semantics):
the consumer cannot miss a level removal, and a lost batch is repaired by the next one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from engine.dtypes import BookLevels, empty_book_levels
from engine.errors import InvalidMarketDataError, OffGridError
from engine.execution.instruments import Instrument, off_grid_error
from engine.kernels.market_nb import (
    BOOK_CROSSED,
    BOOK_NON_POSITIVE_PRICE,
    BOOK_NON_POSITIVE_QUANTITY,
    BOOK_SOUND,
    BOOK_UNSORTED,
    BOOK_UPDATE_ID_NOT_INCREASING,
    book_problem,
    book_records,
)

# reasons a book view is rejected; also the `reason` label of the resync counter
CROSSED: Final = "crossed"
NON_POSITIVE_QUANTITY: Final = "non_positive_quantity"
NON_POSITIVE_PRICE: Final = "non_positive_price"
MALFORMED: Final = "malformed_level"
UNSORTED: Final = "unsorted"
UPDATE_ID_NOT_INCREASING: Final = "update_id_not_increasing"
OFF_GRID: Final = "off_grid"
GAP: Final = "gap"
STALE: Final = "stale"

_PROBLEMS: Final = {
    BOOK_SOUND: None,
    BOOK_UPDATE_ID_NOT_INCREASING: UPDATE_ID_NOT_INCREASING,
    BOOK_NON_POSITIVE_QUANTITY: NON_POSITIVE_QUANTITY,
    BOOK_NON_POSITIVE_PRICE: NON_POSITIVE_PRICE,
    BOOK_UNSORTED: UNSORTED,
    BOOK_CROSSED: CROSSED,
}  # the kernel's codes, as the resync counter's reasons


def _side_arrays(levels: Sequence[Sequence[float]], depth: int) -> npt.NDArray[np.float64]:
    top = levels[:depth]
    with contextlib.suppress(TypeError, ValueError):  # ragged: level by level below
        array = np.asarray(top, dtype=np.float64)
        if array.ndim == 2 and array.shape[1] >= 2:  # the usual case, in one call
            return array[:, :2]
    pairs = [level[:2] for level in top]
    if any(len(level) != 2 for level in pairs):
        raise MalformedLevelError(f"a book level must be [price, amount]; got {pairs!r}")
    try:
        return np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError) as e:  # a price or amount that is not a number
        raise MalformedLevelError(f"a book level must be numbers; got {pairs!r}") from e


class MalformedLevelError(InvalidMarketDataError):
    """A level that is not a [price, amount] pair."""


def book_to_levels(
    bids: Sequence[Sequence[float]],
    asks: Sequence[Sequence[float]],
    *,
    instrument: Instrument,
    depth: int,
    update_id: int,
    ts_ns: int,
) -> BookLevels:
    """Convert the top ``depth`` levels of a book view to records (bids first).

    Args:
        bids: ``[[price, amount], ...]`` best first, as ccxt gives them.
        asks: same for asks.
        instrument: grid of prices and quantities.
        depth: levels per side.
        update_id: the view's venue sequence number.
        ts_ns: the view's venue time.

    Raises:
        OffGridError: a price or quantity is off the grid.
    """
    bid_array, ask_array = _side_arrays(bids, depth), _side_arrays(asks, depth)
    n_bids = len(bid_array)
    out = empty_book_levels(n_bids + len(ask_array))
    # one kernel for the grid check and every field (a concatenation, two conversions and
    # five field writes cost ~40 µs for a 20-level view)
    bad = book_records(bid_array, ask_array, instrument.symbol_id, instrument.tick_float,
                       instrument.lot_float, update_id, ts_ns, out)  # fmt: skip
    if bad >= 0:
        raise off_grid_error(
            instrument, bad, np.concatenate([bid_array, ask_array]),
            fields=(f"{instrument.symbol} price", f"{instrument.symbol} quantity"),
        )  # fmt: skip
    return out


def integrity_problem(levels: BookLevels, *, previous_update_id: int | None) -> str | None:
    """Return why a book batch must not be used, or None when it is sound."""
    previous = -1 if previous_update_id is None else previous_update_id
    return _PROBLEMS[book_problem(levels, previous)]


def checked_levels(
    bids: Sequence[Sequence[float]],
    asks: Sequence[Sequence[float]],
    *,
    instrument: Instrument,
    depth: int,
    update_id: int,
    ts_ns: int,
    previous_update_id: int | None,
) -> tuple[BookLevels, str | None]:
    """Convert a view and check it: ``(records, None)`` or ``(empty, reason)``."""
    try:
        levels = book_to_levels(
            bids, asks, instrument=instrument, depth=depth, update_id=update_id, ts_ns=ts_ns
        )
    except OffGridError:
        return empty_book_levels(), OFF_GRID
    except MalformedLevelError:
        return empty_book_levels(), MALFORMED
    problem = integrity_problem(levels, previous_update_id=previous_update_id)
    if problem is not None:
        return empty_book_levels(), problem
    return levels, None
