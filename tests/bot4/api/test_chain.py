"""The hash chain's walk finds every kind of change (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot4.api.chain import GENESIS, ChainVerifier, canonical, row_hash


def _chain(length: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    prev = GENESIS
    for seq in range(1, length + 1):
        row: dict[str, object] = {
            "seq": seq, "at": datetime(2030, 1, 1, tzinfo=UTC) + timedelta(microseconds=seq),
            "correlation_id": f"c{seq}", "client": "127.0.0.1", "key_id": None,
            "key_name": None, "role": None, "method": "GET", "route": "/v1/status",
            "params": "{}", "status": 200, "outcome": "ok", "reason": None,
            "duration_us": seq, "prev_hash": prev,
        }  # fmt: skip
        prev = row["row_hash"] = row_hash(row)
        rows.append(row)
    return rows


def _walk(rows: list[dict[str, object]], head: dict[str, object] | None = None):
    verifier = ChainVerifier()
    for row in rows:
        if not verifier.feed(row):
            break
    head = head or rows[-1]
    return verifier.finish(head_seq=int(str(head["seq"])), head_hash=str(head["row_hash"]))


def test_intact_chain_passes():
    rows = _chain(5)
    report = _walk(rows)
    assert (report.ok, report.rows_checked, report.broken_seq) == (True, 5, None)


def test_a_changed_row_is_named():
    rows = _chain(5)
    rows[2]["status"] = 500
    report = _walk(rows)
    assert (report.ok, report.broken_seq, report.rows_checked) == (False, 3, 2)
    assert "was changed" in (report.problem or "")


def test_a_changed_row_with_a_recomputed_hash_breaks_the_next_link():
    rows = _chain(5)
    rows[2]["status"] = 500
    rows[2]["row_hash"] = row_hash(rows[2])
    report = _walk(rows, head=_chain(5)[-1])
    assert report.broken_seq == 4
    assert "row 3 was changed" in (report.problem or "")


def test_a_deleted_row_leaves_a_gap():
    rows = _chain(5)
    del rows[1]
    report = _walk(rows)
    assert report.broken_seq == 3
    assert "missing" in (report.problem or "")


def test_deleted_newest_rows_disagree_with_the_head():
    rows = _chain(5)
    report = _walk(rows[:3], head=rows[-1])
    assert report.broken_seq == 4
    assert "newest rows were deleted" in (report.problem or "")


def test_canonical_form_is_stable_across_timezones():
    rows = _chain(1)
    moved = dict(rows[0])
    at = moved["at"]
    assert isinstance(at, datetime)
    moved["at"] = at.astimezone(datetime.now().astimezone().tzinfo)
    assert canonical(moved) == canonical(rows[0])
