"""Write event files: a streaming writer and the recorder the live engine uses.

Both write ``NAME.npy.tmp`` first and rename it (with its header) into place on close, so a
crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType
from typing import Final

import numpy as np

from engine.data.format import EventHeader, header_path
from engine.dtypes import EVENT_DTYPE
from engine.kernels.market_nb import write_event

_HEADER_BYTES: Final = 512  # fixed, so the final count can be written over the placeholder


def _npy_header(count: int) -> bytes:
    descr = np.lib.format.dtype_to_descr(EVENT_DTYPE)
    body = repr({"descr": descr, "fortran_order": False, "shape": (count,)})
    prefix = b"\x93NUMPY\x01\x00"
    room = _HEADER_BYTES - len(prefix) - 2
    text = body.ljust(room - 1) + "\n"
    if len(text) != room:
        raise ValueError("event dtype description does not fit the fixed .npy header")
    return prefix + room.to_bytes(2, "little") + text.encode("latin1")


class EventWriter:
    """Append event chunks to a new event file; ``close`` makes it visible.

    Usable as a context manager; leaving the block with an exception discards the file.
    """

    def __init__(self, path: Path, header: EventHeader) -> None:
        self.path = Path(path)
        self.header = header
        self.count = 0
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._file = self._tmp.open("wb")
        self._file.write(_npy_header(0))

    def append(self, events: np.ndarray) -> None:
        """Append events (EVENT_DTYPE, any length).

        Raises:
            ValueError: the array has another dtype.
        """
        if events.dtype != EVENT_DTYPE:
            raise ValueError(f"events must have dtype EVENT_DTYPE, got {events.dtype}")
        self._file.write(np.ascontiguousarray(events).data)
        self.count += int(events.shape[0])

    def close(self) -> None:
        """Finish the header and move the file into place."""
        if self._file.closed:
            return
        self._file.seek(0)
        self._file.write(_npy_header(self.count))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        header = EventHeader(
            symbols=self.header.symbols,
            tick_size=self.header.tick_size,
            lot_size=self.header.lot_size,
            count=self.count,
        )
        hpath = header_path(self.path)
        tmp_header = hpath.with_name(hpath.name + ".tmp")
        tmp_header.write_text(json.dumps(header.to_json(), indent=2) + "\n")
        os.replace(self._tmp, self.path)
        os.replace(tmp_header, hpath)

    def discard(self) -> None:
        """Drop everything written so far."""
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


class EventRecorder:
    """Record live events one at a time into a buffer, flushed to an :class:`EventWriter`."""

    def __init__(self, path: Path, header: EventHeader, *, buffer_events: int = 65536) -> None:
        self._writer = EventWriter(path, header)
        self._buffer = np.zeros(buffer_events, dtype=EVENT_DTYPE)
        self._used = 0

    def record(
        self, *, ts_ns: int, seq: int, symbol: int, kind: int, side: int, price: int, qty: int
    ) -> None:
        """Append one event."""
        write_event(self._buffer, self._used, ts_ns, seq, symbol, kind, side, price, qty)
        self._used += 1
        if self._used == self._buffer.shape[0]:
            self.flush()

    def flush(self) -> None:
        """Write buffered events to the file."""
        if self._used:
            self._writer.append(self._buffer[: self._used])
            self._used = 0

    def close(self) -> None:
        """Flush and make the file visible."""
        self.flush()
        self._writer.close()
