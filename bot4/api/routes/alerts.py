"""Open alerts: the local Prometheus's pending and firing alerts, passed on (viewer).

The API asks the Prometheus of the stack (``BOT4_PROMETHEUS__PORT`` on loopback) so the
console can show alerts with the same key and audit as everything else, without the
browser talking to another server. Prometheus is optional in the stack: when it does not
answer, the list is empty and ``note`` says why, instead of an error, because "no alert
source" must read differently from "no alerts" but must not break the page.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
from fastapi import APIRouter

from bot4.api.auth import ServicesDep, Viewer, route_options
from bot4.api.errors import UpstreamError
from bot4.api.roles import Role

router = APIRouter(prefix="/v1", tags=["alerts"])
TIMEOUT_S: Final = 3.0
SEVERITY_ORDER: Final = {"page": 0, "ticket": 1}


def _alert(raw: dict[str, Any]) -> dict[str, object]:
    labels = dict(raw.get("labels") or {})
    annotations = dict(raw.get("annotations") or {})
    return {
        "name": labels.get("alertname", ""),
        "state": raw.get("state", ""),
        "severity": labels.get("severity", ""),
        "summary": annotations.get("summary", ""),
        "runbook_url": annotations.get("runbook_url", ""),
        "active_at": raw.get("activeAt"),
        "value": raw.get("value"),
        "labels": labels,
    }


@router.get("/alerts", **route_options(Role.VIEWER))
async def alerts(_key: Viewer, services: ServicesDep) -> dict[str, object]:
    """Return the pending and firing alerts (firing and paging ones first).

    Raises:
        UpstreamError: Prometheus answered, but not with its alerts document (502).
    """
    source = services.config.prometheus_url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as http:
            answer = await http.get(f"{source}/api/v1/alerts")
    except httpx.TransportError as e:
        note = (
            f"Prometheus at {source} does not answer ({type(e).__name__}): no alert source;"
            " `bot4 stack up` starts it when Debian's prometheus package is installed"
        )
        return {"source": source, "available": False, "alerts": [], "note": note}
    try:
        answer.raise_for_status()
        document = answer.json()
        raw = document["data"]["alerts"]
    except (httpx.HTTPStatusError, ValueError, KeyError, TypeError) as e:
        raise UpstreamError(
            f"Prometheus at {source} answered HTTP {answer.status_code} without its alerts"
        ) from e
    found = [_alert(a) for a in raw if isinstance(a, dict)]
    found.sort(key=lambda a: (a["state"] != "firing", SEVERITY_ORDER.get(str(a["severity"]), 9),
                              str(a["name"])))  # fmt: skip
    return {"source": source, "available": True, "alerts": found}
