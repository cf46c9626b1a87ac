from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dtypes import BOOK_DELTA, BUY, SELL, SNAPSHOT_BEGIN, SNAPSHOT_END, TRADE
from engine.kernels._jit import py_func
from engine.kernels.book_nb import (
    BOOK_AWAITING_SNAPSHOT,
    BOOK_CROSSED,
    BOOK_GAP,
    BOOK_NEGATIVE_QTY,
    BOOK_OK,
    BOOK_STALE,
    book_apply,
    new_book,
)
from engine.kernels.layout import ASK_PX, ASK_QTY, BID_PX, BID_QTY, SI_N_ASK, SI_N_BID, SI_VALID

APPLY = [pytest.param(book_apply, id="compiled"), pytest.param(py_func(book_apply), id="py_func")]
STALE = 10**12


def _snapshot(apply: Any, book: Any, state: Any, bids: Any, asks: Any) -> int:
    seq = 100
    apply(book, state, 0, SNAPSHOT_BEGIN, 0, 0, 0, seq, 1, STALE)
    for px, q in bids:
        seq += 1
        assert apply(book, state, 0, BOOK_DELTA, BUY, px, q, seq, 1, STALE) == BOOK_OK
    for px, q in asks:
        seq += 1
        assert apply(book, state, 0, BOOK_DELTA, SELL, px, q, seq, 1, STALE) == BOOK_OK
    seq += 1
    assert apply(book, state, 0, SNAPSHOT_END, 0, 0, 0, seq, 1, STALE) == BOOK_OK
    return seq


def _assert_sane(book: Any, state: Any) -> None:
    nb, na = state[0, SI_N_BID], state[0, SI_N_ASK]
    bids, asks = book[0, BID_PX, :nb], book[0, ASK_PX, :na]
    assert np.all(np.diff(bids) < 0)
    assert np.all(np.diff(asks) > 0)
    assert np.all(book[0, BID_QTY, :nb] > 0)
    assert np.all(book[0, ASK_QTY, :na] > 0)
    if nb and na:
        assert bids[0] < asks[0]


@pytest.mark.parametrize("apply", APPLY)
def test_snapshot_builds_sorted_book_and_level_updates_apply(apply):
    book, state = new_book(1, 8)
    seq = _snapshot(apply, book, state, [(99, 5), (100, 3)], [(102, 4), (101, 2)])
    assert list(book[0, BID_PX, :2]) == [100, 99]
    assert list(book[0, ASK_PX, :2]) == [101, 102]
    assert apply(book, state, 0, BOOK_DELTA, BUY, 100, 0, seq + 1, 2, STALE) == BOOK_OK
    assert state[0, SI_N_BID] == 1
    assert book[0, BID_PX, 0] == 99


@pytest.mark.parametrize("apply", APPLY)
def test_crossing_update_is_refused_and_invalidates_until_snapshot(apply):
    book, state = new_book(1, 8)
    seq = _snapshot(apply, book, state, [(100, 3)], [(101, 2)])
    assert apply(book, state, 0, BOOK_DELTA, BUY, 101, 1, seq + 1, 2, STALE) == BOOK_CROSSED
    assert book[0, BID_PX, 0] == 100
    assert state[0, SI_VALID] == 0
    code = apply(book, state, 0, BOOK_DELTA, BUY, 99, 1, seq + 2, 2, STALE)
    assert code == BOOK_AWAITING_SNAPSHOT
    _snapshot(apply, book, state, [(100, 3)], [(101, 2)])
    assert state[0, SI_VALID] == 1


@pytest.mark.parametrize("apply", APPLY)
def test_negative_quantity_is_refused(apply):
    book, state = new_book(1, 8)
    seq = _snapshot(apply, book, state, [(100, 3)], [(101, 2)])
    code = apply(book, state, 0, BOOK_DELTA, SELL, 102, -1, seq + 1, 2, STALE)
    assert code == BOOK_NEGATIVE_QTY
    assert state[0, SI_N_ASK] == 1


@pytest.mark.parametrize("apply", APPLY)
def test_update_after_long_silence_is_reported_stale(apply):
    book, state = new_book(1, 8)
    seq = _snapshot(apply, book, state, [(100, 3)], [(101, 2)])
    code = apply(book, state, 0, BOOK_DELTA, SELL, 102, 1, seq + 1, 10, 5)
    assert code == BOOK_STALE
    assert state[0, SI_N_ASK] == 2


@settings(max_examples=60, deadline=None)
@given(
    updates=st.lists(
        st.tuples(
            st.sampled_from([BUY, SELL]),
            st.integers(90, 112),
            st.integers(0, 9),
            st.sampled_from([BOOK_DELTA, BOOK_DELTA, BOOK_DELTA, TRADE]),
        ),
        max_size=80,
    ),
    compiled=st.booleans(),
)
def test_book_is_never_crossed_after_a_valid_update(updates, compiled):
    apply = book_apply if compiled else py_func(book_apply)
    book, state = new_book(1, 6)
    seq = _snapshot(apply, book, state, [(100, 3), (99, 1)], [(102, 4), (103, 1)])
    for side, px, qty, kind in updates:
        seq += 1
        code = apply(
            book, state, 0, kind, side, px, max(qty, 1) if kind == TRADE else qty, seq, 2, STALE
        )
        if code == BOOK_OK:
            _assert_sane(book, state)
        if state[0, SI_VALID] == 0:
            seq = _snapshot(apply, book, state, [(100, 3)], [(102, 4)])


@settings(max_examples=60, deadline=None)
@given(
    jumps=st.lists(st.integers(-3, 5), min_size=1, max_size=40),
    compiled=st.booleans(),
)
def test_a_sequence_gap_is_always_detected(jumps, compiled):
    apply = book_apply if compiled else py_func(book_apply)
    book, state = new_book(1, 6)
    seq = _snapshot(apply, book, state, [(100, 3)], [(102, 4)])
    for jump in jumps:
        was_valid = state[0, SI_VALID] == 1
        seq += jump
        code = apply(book, state, 0, BOOK_DELTA, BUY, 99, 1, seq, 2, STALE)
        if was_valid and jump != 1:
            assert code == BOOK_GAP
        if not was_valid:
            assert code == BOOK_AWAITING_SNAPSHOT
            seq = _snapshot(apply, book, state, [(100, 3)], [(102, 4)])
