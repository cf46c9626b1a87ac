"""The journal: append-only facts in PostgreSQL, fenced by the leadership epoch."""

from engine.journal.committer import GroupCommitter
from engine.journal.models import FillRecord, JournalEvent, JournalKind
from engine.journal.tracking import AckLog, Acknowledged, FillKey, Outage, OutageLog
from engine.journal.writer import FencedError, Journal, JournalUnavailableError

__all__ = [
    "AckLog",
    "Acknowledged",
    "FencedError",
    "FillKey",
    "FillRecord",
    "GroupCommitter",
    "Journal",
    "JournalEvent",
    "JournalKind",
    "JournalUnavailableError",
    "Outage",
    "OutageLog",
]
