"""Which backups to keep: N daily, M weekly, and never the newest verified one.

Only verified backups count toward the daily and weekly slots (an untested backup is not
a backup yet). Kept: the newest verified backup, always; the newest verified backup of
each of the ``keep_daily`` most recent days and of the ``keep_weekly`` most recent ISO
weeks that have one; and every backup newer than the newest verified one (its restore
test may still be pending) unless it failed. Everything else is deleted, failed backups included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class BackupEntry:
    """What retention needs to know of one backup."""

    backup_id: str
    created_at: datetime
    verified: bool
    failed: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class RetentionPlan:
    """The outcome: ids to keep and ids to delete (newest first)."""

    keep: tuple[str, ...]
    delete: tuple[str, ...]


def plan_retention(
    backups: Sequence[BackupEntry], *, keep_daily: int, keep_weekly: int
) -> RetentionPlan:
    """Return which of ``backups`` to keep and which to delete.

    Raises:
        ValueError: ``keep_daily`` < 1 or ``keep_weekly`` < 0.
    """
    if keep_daily < 1 or keep_weekly < 0:
        raise ValueError(
            f"need keep_daily >= 1, keep_weekly >= 0 (got {keep_daily}, {keep_weekly})"
        )
    ordered = sorted(backups, key=lambda b: (b.created_at, b.backup_id), reverse=True)
    verified = [b for b in ordered if b.verified]
    keep: set[str] = set()
    if verified:
        newest = verified[0]
        keep.add(newest.backup_id)
        keep.update(
            b.backup_id for b in ordered if b.created_at > newest.created_at and not b.failed
        )
    else:  # nothing verified yet: deleting an untested backup could leave no way back
        keep.update(b.backup_id for b in ordered if not b.failed)
    days: dict[object, str] = {}
    weeks: dict[object, str] = {}
    for b in verified:  # newest first: the first of each day / week is its newest
        days.setdefault(b.created_at.date(), b.backup_id)
        weeks.setdefault(b.created_at.isocalendar()[:2], b.backup_id)
    keep.update(list(days.values())[:keep_daily])
    keep.update(list(weeks.values())[:keep_weekly])
    return RetentionPlan(
        keep=tuple(b.backup_id for b in ordered if b.backup_id in keep),
        delete=tuple(b.backup_id for b in ordered if b.backup_id not in keep),
    )
