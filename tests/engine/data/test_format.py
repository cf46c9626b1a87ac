from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.data.format import EventFile, EventFileError, EventHeader, header_path
from engine.data.generator import generate
from engine.data.writer import EventRecorder, EventWriter
from engine.dtypes import BOOK_DELTA, BUY, EVENT_DTYPE, TRADE

HEADER = EventHeader(symbols=("A", "B"), tick_size=(0.1, 0.01), lot_size=(0.001, 0.1))


def _events(n: int = 5) -> np.ndarray:
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["ts_ns"] = np.arange(1, n + 1) * 1_000
    ev["seq"] = np.arange(n)
    ev["price"] = 100
    ev["qty"] = 1
    ev["kind"] = BOOK_DELTA
    ev["side"] = BUY
    return ev


def _write(path: Path, events: np.ndarray, header: EventHeader = HEADER) -> Path:
    with EventWriter(path, header) as w:
        w.append(events)
    return path


def test_written_file_opens_and_reads_back(tmp_path):
    path = _write(tmp_path / "e.npy", _events())
    f = EventFile.open(path)
    assert f.count == 5
    assert f.header.symbols == ("A", "B")
    np.testing.assert_array_equal(f.read_all(), _events())
    np.testing.assert_array_equal(np.load(path), _events())  # plain .npy for other tools


def test_np_save_with_a_header_is_a_valid_event_file(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, _events())
    header_path(path).write_text(json.dumps(HEADER.to_json() | {"count": None}))
    assert EventFile.open(path).count == 5


def test_recorder_writes_the_same_format(tmp_path):
    path = tmp_path / "rec.npy"
    rec = EventRecorder(path, HEADER, buffer_events=2)
    for i in range(5):
        rec.record(ts_ns=1_000 + i, seq=i, symbol=1, kind=TRADE, side=BUY, price=50, qty=2)
    rec.close()
    events = EventFile.open(path).read_all()
    assert list(events["seq"]) == [0, 1, 2, 3, 4]


def test_wrong_dtype_is_refused_naming_the_field(tmp_path):
    path = tmp_path / "e.npy"
    bad = np.zeros(
        3,
        dtype=[(n, "<f8" if n == "price" else EVENT_DTYPE[n].str) for n in EVENT_DTYPE.names or ()],
    )
    bad["price"] = np.nan
    np.save(path, bad)
    header_path(path).write_text(json.dumps(HEADER.to_json() | {"count": None}))
    with pytest.raises(EventFileError, match=r"field 'price'.*NaN"):
        EventFile.open(path)


def test_truncated_file_is_refused(tmp_path):
    path = _write(tmp_path / "e.npy", _events(10))
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size - 20)
    with pytest.raises(EventFileError, match="truncated"):
        EventFile.open(path)


def test_negative_price_is_refused_with_the_event_index(tmp_path):
    events = _events()
    events["price"][3] = -5
    with pytest.raises(EventFileError, match=r"event 3: price must be a positive"):
        EventFile.open(_write(tmp_path / "e.npy", events))


def test_unsorted_timestamps_are_refused(tmp_path):
    events = _events()
    events["ts_ns"][2] = 1
    with pytest.raises(EventFileError, match=r"event 2: timestamps are not sorted"):
        EventFile.open(_write(tmp_path / "e.npy", events))


def test_missing_header_and_bad_symbol_are_refused(tmp_path):
    path = tmp_path / "e.npy"
    np.save(path, _events())
    with pytest.raises(EventFileError, match="header file is missing"):
        EventFile.open(path)
    events = _events()
    events["symbol"][1] = 7
    with pytest.raises(EventFileError, match="symbol index"):
        EventFile.open(_write(tmp_path / "f.npy", events))


def test_generator_is_deterministic_and_valid(tmp_path):
    a = tmp_path / "a.npy"
    b = tmp_path / "b.npy"
    generate(a, events=20_000, seed=3)
    generate(b, events=20_000, seed=3)
    assert a.read_bytes() == b.read_bytes()
    events = EventFile.open(a).read_all()
    assert set(np.unique(events["symbol"])) == {0, 1, 2, 3}
    assert (events["kind"] == TRADE).sum() > 500
