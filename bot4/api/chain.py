"""The audit log's hash chain: canonical rows, their hashes, and the walk that checks them.

Every row stores ``prev_hash`` (the previous row's ``row_hash``; 64 zeros for the first)
and ``row_hash`` = SHA-256 over the canonical JSON of all its other columns, ``prev_hash``
included (keys sorted, no spaces, ASCII, timestamps as ISO-8601 UTC with microseconds).
Changing any column of any row breaks that row's own hash; recomputing it breaks the next
row's link; deleting rows leaves a gap in ``seq``; deleting the newest rows disagrees with
the chain head, which records the last ``seq`` and hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

GENESIS: Final = "0" * 64
CHAINED_COLUMNS: Final = (
    "seq",
    "at",
    "correlation_id",
    "client",
    "key_id",
    "key_name",
    "role",
    "method",
    "route",
    "params",
    "status",
    "outcome",
    "reason",
    "duration_us",
    "prev_hash",
)


def canonical(row: Mapping[str, object]) -> str:
    """Return the canonical JSON of a row's chained columns."""
    document: dict[str, object] = {}
    for column in CHAINED_COLUMNS:
        value = row[column]
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat(timespec="microseconds")
        document[column] = value
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def row_hash(row: Mapping[str, object]) -> str:
    """Return the SHA-256 (hex) of a row's canonical JSON."""
    return hashlib.sha256(canonical(row).encode("ascii")).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class ChainReport:
    """What a walk over the chain found."""

    ok: bool
    rows_checked: int
    head_seq: int
    broken_seq: int | None = None
    problem: str | None = None

    def as_json(self) -> dict[str, object]:
        """Return a JSON-ready dict."""
        return {
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "head_seq": self.head_seq,
            "broken_seq": self.broken_seq,
            "problem": self.problem,
        }


class ChainVerifier:
    """Check rows one by one, in ``seq`` order; stop at the first broken link."""

    def __init__(self) -> None:
        self._expected_seq = 1
        self._prev_hash = GENESIS
        self.rows_checked = 0
        self.broken_seq: int | None = None
        self.problem: str | None = None

    @property
    def broken(self) -> bool:
        """Tell whether a broken link was found."""
        return self.broken_seq is not None

    def feed(self, row: Mapping[str, object]) -> bool:
        """Check the next row; return False once the chain is broken."""
        if self.broken:
            return False
        seq = int(str(row["seq"]))
        if seq != self._expected_seq:
            what = "are missing" if seq > self._expected_seq else "is repeated or out of order"
            return self._break(
                seq, f"expected seq {self._expected_seq} here: rows {what} (deleted or inserted)"
            )
        if row["prev_hash"] != self._prev_hash:
            return self._break(
                seq,
                f"prev_hash does not match the hash of row {seq - 1}: row {seq - 1} was"
                " changed (and its hash recomputed), or this row's link was",
            )
        computed = row_hash(row)
        if row["row_hash"] != computed:
            return self._break(seq, f"row {seq} does not match its row_hash: it was changed")
        self._prev_hash = computed
        self._expected_seq = seq + 1
        self.rows_checked += 1
        return True

    def finish(self, *, head_seq: int, head_hash: str) -> ChainReport:
        """Compare the end of the chain with the recorded head; return the report."""
        last_seq = self._expected_seq - 1
        if not self.broken and (head_seq, head_hash) != (last_seq, self._prev_hash):
            if head_seq > last_seq:
                self._break(
                    last_seq + 1,
                    f"the chain head records seq {head_seq}, but the log ends at seq"
                    f" {last_seq}: the newest rows were deleted",
                )
            else:
                self._break(
                    head_seq,
                    f"the chain head (seq {head_seq}) does not match the log (ends at seq"
                    f" {last_seq}): the head or the rows after it were changed",
                )
        return ChainReport(
            ok=not self.broken,
            rows_checked=self.rows_checked,
            head_seq=head_seq,
            broken_seq=self.broken_seq,
            problem=self.problem,
        )

    def _break(self, seq: int, problem: str) -> bool:
        self.broken_seq, self.problem = seq, problem
        return False
