"""The index of stored daily reports (``flow_reports``): one query for the CLI and the API.

Kept apart from ``flows.reports`` so the control API lists reports without importing the
report builder (charts, fills, the engine's journal readers).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

__all__ = ["fetch_reports"]


class _Fetches(Protocol):
    """An asyncpg connection or pool."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...


async def fetch_reports(db: _Fetches, *, limit: int = 100) -> list[dict[str, object]]:
    """Return the stored reports, newest day first."""
    rows = await db.fetch(
        "SELECT report_id, kind, day, html_uri, json_uri, summary, created_at"
        " FROM flow_reports ORDER BY day DESC, created_at DESC LIMIT $1",
        limit,
    )
    return [{"report_id": r["report_id"], "kind": r["kind"], "day": r["day"].isoformat(),
             "html_uri": r["html_uri"], "json_uri": r["json_uri"],
             "summary": json.loads(r["summary"]), "created_at": r["created_at"].isoformat()}
            for r in rows]  # fmt: skip
