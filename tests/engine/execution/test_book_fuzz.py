"""Hypothesis: malformed book frames into the adapter never crash it or corrupt a book."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dtypes import BID
from engine.execution.book import checked_levels
from tests.engine.execution.test_book import BTC

# What a websocket frame's level can hold after ccxt parsed it: any float, including NaN,
# infinities, negatives, zero, off-grid values; sometimes a level with a missing field.
number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**12), max_value=10**12).map(float),
    st.sampled_from([0.0, -0.01, 60000.01, 60000.005, 1e-12]),
)
level = st.one_of(st.lists(number, min_size=2, max_size=2), st.lists(number, max_size=1))
side = st.lists(level, max_size=8)


@settings(max_examples=400, deadline=None)
@given(bids=side, asks=side, update_id=st.integers(-5, 50), previous=st.none() | st.integers(0, 50))
def test_any_frame_is_either_refused_with_a_reason_or_a_sound_book(
    bids, asks, update_id, previous
) -> None:
    levels, problem = checked_levels(
        bids, asks, instrument=BTC, depth=5, update_id=update_id, ts_ns=1,
        previous_update_id=previous,
    )  # fmt: skip
    if problem is not None:
        assert len(levels) == 0  # nothing of a refused frame reaches the engine
        return
    bid = levels["price_ticks"][levels["side"] == BID]
    ask = levels["price_ticks"][levels["side"] != BID]
    assert (levels["qty_lots"] > 0).all()
    assert (levels["price_ticks"] > 0).all()
    assert not (len(bid) and len(ask) and bid[0] >= ask[0])  # never crossed
    assert all(math.isfinite(float(p)) for p in levels["price_ticks"])
    if previous is not None and len(levels):
        assert int(levels["update_id"][0]) > previous
