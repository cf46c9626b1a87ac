"""The retention policy as a pure function: N daily, M weekly, never the newest verified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from flows.retention import BackupEntry, plan_retention

START = datetime(2026, 1, 1, 2, tzinfo=UTC)


def _entry(index: int, *, hours: int, verified: bool, failed: bool = False) -> BackupEntry:
    return BackupEntry(backup_id=f"b{index:03d}", created_at=START + timedelta(hours=hours),
                       verified=verified, failed=failed)  # fmt: skip


def test_keeps_newest_of_each_recent_day_and_week() -> None:
    backups = [_entry(i, hours=12 * i, verified=True) for i in range(40)]  # 20 days

    plan = plan_retention(backups, keep_daily=3, keep_weekly=2)

    assert plan.keep[:3] == ("b039", "b037", "b035")  # newest of the last three days
    assert len(plan.keep) <= 5
    assert set(plan.keep) | set(plan.delete) == {b.backup_id for b in backups}


def test_pending_backups_are_kept_and_failed_ones_deleted() -> None:
    backups = [
        _entry(1, hours=0, verified=True),
        _entry(2, hours=1, verified=False, failed=True),
        _entry(3, hours=2, verified=False),
    ]
    plan = plan_retention(backups, keep_daily=1, keep_weekly=0)
    assert plan.keep == ("b003", "b001")
    assert plan.delete == ("b002",)


@given(
    flags=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=40),
    daily=st.integers(1, 5),
    weekly=st.integers(0, 3),
)
def test_the_newest_verified_backup_is_never_deleted(
    flags: list[tuple[bool, bool]], daily: int, weekly: int
) -> None:
    backups = [_entry(i, hours=7 * i, verified=v, failed=f and not v)
               for i, (v, f) in enumerate(flags)]  # fmt: skip
    plan = plan_retention(backups, keep_daily=daily, keep_weekly=weekly)
    verified = [b for b in backups if b.verified]
    if verified:
        assert max(verified, key=lambda b: b.created_at).backup_id in plan.keep
    assert not set(plan.keep) & set(plan.delete)
