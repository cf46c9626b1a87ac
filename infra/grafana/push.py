"""Provision dashboards into a Grafana through its HTTP API, with grafana-client.

What a push does: check Grafana answers (``GET /api/health``), make sure the folder exists
(``GET /api/folders/<uid>``, else ``POST /api/folders``), then for each dashboard read what
Grafana holds under its uid (``GET /api/dashboards/uid/<uid>``) and:

- nothing there: create it (``POST /api/dashboards/db``, ``overwrite: false``);
- the same content in the same folder: leave it (``unchanged``: pushing twice is a no-op);
- something else: without ``overwrite`` refuse and report it, with Grafana's version, so a
  hand edit in the UI is never lost by accident; with ``overwrite`` replace it.

A create races nobody silently: if the dashboard appeared meanwhile, Grafana answers
412 (version-mismatch) and the dashboard is reported refused.

Errors (one tree; each names the URL and what to do)::

    GrafanaError                   the push stopped here; earlier dashboards stay pushed
     +-- GrafanaUnreachableError   no answer: is Grafana up, is the URL right?
     +-- GrafanaAuthError          401/403: the token (or user/password) or its role
     +-- GrafanaApiError           any other unexpected answer: status and Grafana's message

A refused dashboard is an outcome, not an error: the others are still pushed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaException, GrafanaTimeoutError

Action = Literal["created", "updated", "unchanged", "refused"]
PUSH_MESSAGE: Final = "bot4 dashboards push"
# Grafana sets these itself on every save: they say nothing about the content
_VOLATILE: Final = frozenset({"id", "version"})
_OS_ERROR: Final = re.compile(r"\[Errno -?\d+\] [^'\")]+")


class GrafanaError(Exception):
    """The push stopped; the message names the URL and what to do."""


class GrafanaUnreachableError(GrafanaError):
    """Grafana did not answer (connection refused, DNS, timeout)."""


class GrafanaAuthError(GrafanaError):
    """Grafana refused the credentials (401) or their permissions (403)."""


class GrafanaApiError(GrafanaError):
    """Grafana answered something this client did not expect."""


@dataclass(frozen=True, kw_only=True, slots=True)
class GrafanaTarget:
    """Where to push and how to sign in (a token, or user and password)."""

    url: str
    token: str | None = None
    basic: tuple[str, str] | None = None
    folder_uid: str = "bot4"
    folder_title: str = "bot4"
    timeout_s: float = 10.0

    def base(self) -> str:
        """Return the URL with exactly one trailing slash (grafana-client appends ``api``)."""
        return self.url.rstrip("/") + "/"

    def origin(self) -> str:
        """Return ``scheme://host:port``, where Grafana's dashboard paths are rooted."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, kw_only=True, slots=True)
class DashboardOutcome:
    """What the push did with one dashboard."""

    uid: str
    title: str
    action: Action
    version: int | None  # Grafana's version now (refused: the version left in place)
    url: str = ""
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class PushReport:
    """The outcome of a push: the folder and each dashboard."""

    grafana_url: str
    grafana_version: str
    folder_uid: str
    folder_created: bool
    outcomes: tuple[DashboardOutcome, ...]

    @property
    def ok(self) -> bool:
        """Return whether every dashboard is now what the generator produced."""
        return all(o.action != "refused" for o in self.outcomes)

    def as_json(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return {
            "ok": self.ok,
            "grafana_url": self.grafana_url,
            "grafana_version": self.grafana_version,
            "folder_uid": self.folder_uid,
            "folder_created": self.folder_created,
            "dashboards": [
                {
                    "uid": o.uid,
                    "title": o.title,
                    "action": o.action,
                    "version": o.version,
                    "url": o.url,
                    "reason": o.reason,
                }
                for o in self.outcomes
            ],
        }


class GrafanaProvisioner:
    """The few Grafana API calls a push needs, with errors translated once, here."""

    def __init__(self, target: GrafanaTarget, *, api: Any | None = None) -> None:
        self.target = target
        credential: str | tuple[str, str] | None = target.token or target.basic
        # grafana-client is untyped: Any keeps mypy honest about what we know
        self.api: Any = api or GrafanaApi.from_url(
            url=target.base(), credential=credential, timeout=target.timeout_s
        )

    def close(self) -> None:
        """Close the HTTP session (its pooled connections would otherwise leak)."""
        session = getattr(getattr(self.api, "client", None), "s", None)
        if session is not None:
            session.close()

    def __enter__(self) -> GrafanaProvisioner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def version(self) -> str:
        """Return Grafana's version from ``/api/health`` (which needs no credentials)."""
        health = self._call("checking its health", lambda: self.api.client.GET("/health"))
        return str(health.get("version", "unknown")) if isinstance(health, dict) else "unknown"

    def ensure_folder(self) -> bool:
        """Create the target folder unless it exists; return whether it was created."""
        uid = self.target.folder_uid
        if self._get(f"reading folder {uid}", lambda: self.api.folder.get_folder(uid)):
            return False
        self._call(
            f"creating folder {uid}",
            lambda: self.api.folder.create_folder(self.target.folder_title, uid=uid),
        )
        return True

    def push(self, dashboard: dict[str, Any], *, overwrite: bool) -> DashboardOutcome:
        """Create, keep, replace or refuse one dashboard (see the module docstring)."""
        uid, title = dashboard["uid"], dashboard["title"]
        existing = self._get(
            f"reading dashboard {uid}", lambda: self.api.dashboard.get_dashboard(uid)
        )
        if existing is not None:
            version = existing.get("dashboard", {}).get("version")
            url = self.target.origin() + str(existing.get("meta", {}).get("url", ""))
            if self._same(existing, dashboard):
                return DashboardOutcome(
                    uid=uid, title=title, action="unchanged", version=version, url=url
                )
            if not overwrite:
                return DashboardOutcome(
                    uid=uid,
                    title=title,
                    action="refused",
                    version=version,
                    url=url,
                    reason=f"Grafana holds version {version} of {uid} and it differs from"
                    " the generated dashboard (edited in Grafana, or the generator changed)",
                )
        payload = {
            "dashboard": {k: v for k, v in dashboard.items() if k not in _VOLATILE} | {"id": None},
            "folderUid": self.target.folder_uid,
            "overwrite": overwrite,
            "message": PUSH_MESSAGE,
        }
        try:
            saved = self.api.dashboard.update_dashboard(payload)
        except GrafanaException as e:
            if e.status_code != 412:
                raise self._translate(e, f"saving dashboard {uid}") from e
            return DashboardOutcome(
                uid=uid,
                title=title,
                action="refused",
                version=None,
                reason=f"Grafana refused it: {_message(e)} (412)",
            )
        except OSError as e:
            raise self._unreachable(e, f"saving dashboard {uid}") from e
        return DashboardOutcome(
            uid=uid,
            title=title,
            action="created" if existing is None else "updated",
            version=saved.get("version"),
            url=self.target.origin() + str(saved.get("url", "")),
        )

    def search(self, *, tag: str) -> list[dict[str, Any]]:
        """Return the dashboards Grafana lists under ``tag`` (``GET /api/search``)."""
        found = self._call(
            f"searching tag {tag}",
            lambda: self.api.search.search_dashboards(tag=tag, type_="dash-db"),
        )
        return list(found or [])

    def _same(self, existing: dict[str, Any], dashboard: dict[str, Any]) -> bool:
        held = existing.get("dashboard", {})
        folder = existing.get("meta", {}).get("folderUid", "")
        return folder == self.target.folder_uid and _content(held) == _content(dashboard)

    def _get(self, what: str, call: Callable[[], Any]) -> Any:
        """Call; return None for a 404 (the thing does not exist yet)."""
        try:
            return call()
        except GrafanaException as e:
            if e.status_code == 404:
                return None
            raise self._translate(e, what) from e
        except OSError as e:
            raise self._unreachable(e, what) from e

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except GrafanaException as e:
            raise self._translate(e, what) from e
        except OSError as e:  # niquests' connection errors are OSErrors
            raise self._unreachable(e, what) from e

    def _translate(self, error: GrafanaException, what: str) -> GrafanaError:
        url = self.target.url
        if isinstance(error, GrafanaTimeoutError) or error.status_code == 0:
            return GrafanaUnreachableError(
                f"Grafana at {url} did not answer within {self.target.timeout_s:g} s while"
                f" {what} ({_message(error)}): is it running and reachable? Check"
                " BOT4_GRAFANA__URL (and BOT4_GRAFANA__TIMEOUT_S)."
            )
        if error.status_code in (401, 403):
            how = "a token" if self.target.token else "user and password"
            return GrafanaAuthError(
                f"Grafana at {url} refused {how} ({error.status_code}: {_message(error)})"
                f" while {what}: check BOT4_GRAFANA__TOKEN (a service account token with"
                " the Editor role) or BOT4_GRAFANA__USER and BOT4_GRAFANA__PASSWORD."
            )
        return GrafanaApiError(
            f"Grafana at {url} answered {error.status_code} while {what}: {_message(error)}"
        )

    def _unreachable(self, error: OSError, what: str) -> GrafanaUnreachableError:
        # urllib3 nests the cause in a long repr; the innermost OS error is what helps
        causes = _OS_ERROR.findall(str(error))
        cause = causes[-1] if causes else f"{type(error).__name__}: {error}"
        return GrafanaUnreachableError(
            f"cannot reach Grafana at {self.target.url} while {what} ({cause}): is it"
            " running? Check BOT4_GRAFANA__URL."
        )


def _content(dashboard: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dashboard.items() if k not in _VOLATILE}


def _message(error: GrafanaException) -> str:
    response = error.response
    if isinstance(response, dict) and response.get("message"):
        return str(response["message"])
    return str(error.message or type(error).__name__)


def push_dashboards(
    target: GrafanaTarget,
    dashboards: Sequence[dict[str, Any]],
    *,
    overwrite: bool,
    provisioner: GrafanaProvisioner | None = None,
) -> PushReport:
    """Push ``dashboards`` into the target's folder (created if missing).

    Raises:
        GrafanaError: Grafana is unreachable, refused the credentials, or answered
            something unexpected; dashboards pushed before it stay pushed.
    """
    grafana = provisioner or GrafanaProvisioner(target)
    try:
        version = grafana.version()
        created = grafana.ensure_folder()
        outcomes = tuple(grafana.push(d, overwrite=overwrite) for d in dashboards)
    finally:
        if provisioner is None:  # ours to close; a caller's stays open for its next call
            grafana.close()
    return PushReport(
        grafana_url=target.url,
        grafana_version=version,
        folder_uid=target.folder_uid,
        folder_created=created,
        outcomes=outcomes,
    )
