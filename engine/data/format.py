"""The on-disk event file format, and opening a file with every check a replay relies on.

An event file is two files side by side:

- ``NAME.npy``: a NumPy ``.npy`` file (format 1.0 or 2.0) holding a 1-D, C-ordered array of
  ``engine.dtypes.EVENT_DTYPE`` (40-byte little-endian records: ts_ns, seq, price, qty as int64;
  symbol int32; kind, side int8; flags int16). Any tool that can write a NumPy structured
  array can write one: ``np.save(path, array.astype(EVENT_DTYPE))``.
- ``NAME.npy.json``: the header, a JSON object::

      {"format": "bot4.events", "version": 1,
       "symbols": ["BTC-USDT", ...],        # symbol index i is symbols[i]
       "tick_size": [0.1, ...],             # quote currency per price tick, per symbol
       "lot_size": [0.001, ...],            # base currency per lot, per symbol
       "count": 1000000}                    # optional; checked against the .npy when present

Events must be sorted by ``ts_ns`` (ties allowed) with per-symbol ``seq`` increasing by one;
a jump in ``seq`` is a gap the book kernel reports (it is data, not a malformed file).
"""

from __future__ import annotations

import json
import math
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from engine.dtypes import EVENT_DTYPE
from engine.kernels.validate_nb import EVENT_OK, EVENT_PROBLEMS, validate_events

FORMAT_NAME: Final = "bot4.events"
FORMAT_VERSION: Final = 1
VALIDATE_CHUNK: Final = 1 << 20


class EventFileError(ValueError):
    """The event file cannot be used; the message names the file and the problem."""


def header_path(path: Path) -> Path:
    """Return the JSON header path that belongs to an event file."""
    return path.with_name(path.name + ".json")


@dataclass(frozen=True, kw_only=True, slots=True)
class EventHeader:
    """The JSON header of an event file."""

    symbols: tuple[str, ...]
    tick_size: tuple[float, ...]
    lot_size: tuple[float, ...]
    count: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the header as a JSON-ready dict."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "symbols": list(self.symbols),
            "tick_size": list(self.tick_size),
            "lot_size": list(self.lot_size),
            "count": self.count,
        }

    @classmethod
    def from_json(cls, document: object, *, source: Path) -> EventHeader:
        """Parse and check a header document.

        Raises:
            EventFileError: a field is missing or out of range.
        """
        if not isinstance(document, dict):
            raise EventFileError(f"{source}: header must be a JSON object")
        if document.get("format") != FORMAT_NAME or document.get("version") != FORMAT_VERSION:
            raise EventFileError(
                f"{source}: header format/version must be {FORMAT_NAME!r}/{FORMAT_VERSION}, "
                f"got {document.get('format')!r}/{document.get('version')!r}"
            )
        symbols = document.get("symbols")
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) and s for s in symbols)
        ):
            raise EventFileError(f"{source}: 'symbols' must be a non-empty list of names")
        sizes: dict[str, tuple[float, ...]] = {}
        for field in ("tick_size", "lot_size"):
            values = document.get(field)
            if (
                not isinstance(values, list)
                or len(values) != len(symbols)
                or not all(
                    isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in values
                )
            ):
                raise EventFileError(
                    f"{source}: '{field}' must list one positive finite number per symbol "
                    f"({len(symbols)})"
                )
            sizes[field] = tuple(float(v) for v in values)
        count = document.get("count")
        if count is not None and (not isinstance(count, int) or count < 0):
            raise EventFileError(f"{source}: 'count' must be a non-negative integer")
        return cls(
            symbols=tuple(symbols),
            tick_size=sizes["tick_size"],
            lot_size=sizes["lot_size"],
            count=count,
        )


def _read_npy_layout(path: Path) -> tuple[np.dtype[Any], tuple[int, ...], bool, int]:
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise EventFileError(f"{path}: unsupported .npy format version {version}")
            return dtype, shape, fortran, f.tell()
    except EventFileError:
        raise
    except (ValueError, OSError, SyntaxError) as e:
        raise EventFileError(f"{path}: not a readable .npy file ({e})") from e


def _dtype_problem(path: Path, dtype: np.dtype[Any], offset: int, size: int) -> str:
    """Describe how ``dtype`` differs from EVENT_DTYPE, naming fields."""
    if dtype.names is None:
        return f"{path}: dtype is {dtype}, expected the structured event dtype {EVENT_DTYPE}"
    problems = []
    for name in EVENT_DTYPE.names or ():
        if name not in dtype.names:
            problems.append(f"missing field {name!r}")
            continue
        got = dtype.fields[name][0] if dtype.fields else None
        want = EVENT_DTYPE.fields[name][0] if EVENT_DTYPE.fields else None
        if got != want:
            problems.append(f"field {name!r} is {got}, expected {want}")
            if name == "price" and got is not None and got.kind == "f" and dtype.itemsize:
                count = max(0, (size - offset) // dtype.itemsize)
                prices = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(count,))
                if count and bool(np.isnan(prices["price"]).any()):
                    problems.append("price contains NaN (prices must be int64 ticks)")
    extra = [n for n in dtype.names if n not in (EVENT_DTYPE.names or ())]
    if extra:
        problems.append(f"unexpected fields {extra}")
    if not problems:
        problems.append(f"field layout differs from {EVENT_DTYPE.descr}")
    return f"{path}: wrong event dtype: " + "; ".join(problems)


class EventFile:
    """An opened, checked event file whose events are read through a memory map.

    Pages are released after each chunk (``MADV_DONTNEED``), so replaying a file keeps the
    resident memory bounded by the chunk size, not the file size.
    """

    def __init__(self, path: Path, header: EventHeader, offset: int, count: int) -> None:
        self.path = path
        self.header = header
        self.offset = offset
        self.count = count

    @classmethod
    def open(cls, path: Path, *, validate: bool = True) -> EventFile:
        """Open ``path`` and check its header, layout and (by default) every event.

        Raises:
            EventFileError: the file is missing, malformed, truncated or has a bad event.
        """
        path = Path(path)
        if not path.is_file():
            raise EventFileError(f"{path}: no such event file")
        hpath = header_path(path)
        try:
            document = json.loads(hpath.read_text())
        except FileNotFoundError as e:
            raise EventFileError(f"{hpath}: header file is missing") from e
        except (OSError, ValueError) as e:
            raise EventFileError(f"{hpath}: header is not valid JSON ({e})") from e
        header = EventHeader.from_json(document, source=hpath)
        dtype, shape, fortran, offset = _read_npy_layout(path)
        size = path.stat().st_size
        if dtype != EVENT_DTYPE:
            raise EventFileError(_dtype_problem(path, dtype, offset, size))
        if len(shape) != 1 or fortran:
            raise EventFileError(f"{path}: events must be a 1-D C-ordered array, got {shape}")
        count = int(shape[0])
        expected = offset + count * EVENT_DTYPE.itemsize
        if size < expected:
            whole = (size - offset) // EVENT_DTYPE.itemsize
            raise EventFileError(
                f"{path}: truncated: header promises {count} events ({expected} bytes), "
                f"file has {size} bytes ({whole} whole events)"
            )
        if size > expected:
            raise EventFileError(f"{path}: {size - expected} trailing bytes after the events")
        if header.count is not None and header.count != count:
            raise EventFileError(
                f"{hpath}: header count {header.count} differs from the {count} events in {path}"
            )
        opened = cls(path, header, offset, count)
        if validate:
            opened.validate()
        return opened

    def validate(self) -> None:
        """Check every event (kinds, sides, symbols, prices, quantities, time order).

        Raises:
            EventFileError: names the first bad event and what is wrong with it.
        """
        last_ts = 0
        symbols = len(self.header.symbols)
        for start, chunk in self.chunks(VALIDATE_CHUNK):
            problem, index, last_ts = validate_events(chunk, symbols, last_ts)
            if problem != EVENT_OK:
                raise EventFileError(
                    f"{self.path}: event {start + index}: {EVENT_PROBLEMS[problem]} "
                    f"(got {chunk[index]})"
                )

    def chunks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first index, read-only events)`` chunks, releasing pages behind them."""
        if self.count == 0:
            return
        # the map is not closed here: callers may still hold the last view; it is released
        # with the last reference
        with self.path.open("rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        item = EVENT_DTYPE.itemsize
        page = mmap.PAGESIZE
        for start in range(0, self.count, size):
            n = min(size, self.count - start)
            offset = self.offset + start * item
            yield start, np.frombuffer(mm, dtype=EVENT_DTYPE, count=n, offset=offset)
            end = self.offset + (start + n) * item
            if end >= page:
                mm.madvise(mmap.MADV_DONTNEED, 0, (end // page) * page)

    def read_all(self) -> np.ndarray:
        """Return every event as an in-memory array (for small files and tests)."""
        out = np.empty(self.count, dtype=EVENT_DTYPE)
        for start, chunk in self.chunks(VALIDATE_CHUNK):
            out[start : start + chunk.shape[0]] = chunk
        return out


def file_size_bytes(path: Path) -> int:
    """Return the size of the event file and its header."""
    return os.path.getsize(path) + os.path.getsize(header_path(path))
