"""A stand-in for Grafana's HTTP API: the part ``bot4 dashboards push`` uses.

No Grafana server is installable here (see README, "Grafana dashboards"), so the push path
is tested against this small server implementing the same contract, from Grafana's HTTP
API reference and grafana-client's requests:

- ``GET /api/health`` (no credentials): ``{"database": "ok", "version": ...}``;
- ``GET /api/folders``, ``GET /api/folders/<uid>`` (404 ``folder not found``),
  ``POST /api/folders`` ``{"uid", "title"}`` (409 when the uid is taken);
- ``GET /api/dashboards/uid/<uid>``: ``{"dashboard": {... "id", "version"}, "meta":
  {"folderUid", "url", ...}}`` or 404 ``Dashboard not found``;
- ``POST /api/dashboards/db`` ``{"dashboard", "folderUid", "overwrite", "message"}``: a new
  uid is created at version 1; an existing one is replaced when ``overwrite`` is true or
  the posted ``version`` equals the stored one, else 412 ``version-mismatch``; every save
  increments the version; an unknown folder is 400;
- ``GET /api/search?tag=..&type=dash-db``: the dashboards carrying every tag asked for;
- every route but health answers 401 ``invalid API key`` without the right Bearer token
  (or basic credentials).

It binds 127.0.0.1 on a port the kernel picks and runs in a thread; use it as a context
manager so it always stops.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

Json = dict[str, Any]


class GrafanaStub:
    """Grafana's folder and dashboard API in memory, served over real HTTP."""

    def __init__(
        self,
        *,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        version: str = "11.3.0-stub",
    ) -> None:
        self.token = token
        self.basic = basic
        self.version = version
        self.folders: dict[str, Json] = {}
        self.dashboards: dict[str, Json] = {}  # uid -> {"dashboard": ..., "folderUid": ...}
        self.requests: list[tuple[str, str]] = []  # (method, path) of each request
        self._next_id = 1
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Return the base URL (``http://127.0.0.1:<port>``)."""
        assert self._server is not None, "start the stub first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GrafanaStub:
        """Serve on a free loopback port in a daemon thread."""
        stub = self

        class Handler(_Handler):
            grafana = stub

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # keep-alive clients must not hold up stop()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            name="grafana-stub",
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> GrafanaStub:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the API -------------------------------------------------------------------------
    def authorized(self, header: str) -> bool:
        """Return whether an ``Authorization`` header carries the stub's credentials."""
        if self.token is not None and header == f"Bearer {self.token}":
            return True
        if self.basic is not None:
            expected = base64.b64encode(":".join(self.basic).encode()).decode()
            return header == f"Basic {expected}"
        return False

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Json | None
    ) -> tuple[int, Any]:
        """Answer one authorized request: (status, JSON body)."""
        with self._lock:
            if method == "GET" and path == "/api/folders":
                return 200, [_folder_summary(f) for f in self.folders.values()]
            if method == "POST" and path == "/api/folders":
                return self._create_folder(body or {})
            if method == "GET" and (m := re.fullmatch(r"/api/folders/([^/]+)", path)):
                folder = self.folders.get(m.group(1))
                return (200, folder) if folder else (404, {"message": "folder not found"})
            if method == "GET" and (m := re.fullmatch(r"/api/dashboards/uid/([^/]+)", path)):
                return self._get_dashboard(m.group(1))
            if method == "POST" and path == "/api/dashboards/db":
                return self._save_dashboard(body or {})
            if method == "GET" and path == "/api/search":
                return 200, self._search(query)
        return 404, {"message": "Not found"}

    def _create_folder(self, body: Json) -> tuple[int, Any]:
        title = str(body.get("title") or "")
        if not title:
            return 400, {"message": "folder title cannot be empty"}
        uid = str(body.get("uid") or f"folder{self._next_id}")
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        folder = {
            "id": self._take_id(),
            "uid": uid,
            "title": title,
            "version": 1,
            "url": f"/dashboards/f/{uid}/{_slug(title)}",
        }
        self.folders[uid] = folder
        return 200, folder

    def _get_dashboard(self, uid: str) -> tuple[int, Any]:
        stored = self.dashboards.get(uid)
        if stored is None:
            return 404, {"message": "Dashboard not found"}
        dashboard = stored["dashboard"]
        folder = self.folders.get(stored["folderUid"], {})
        return 200, {
            "dashboard": copy.deepcopy(dashboard),
            "meta": {
                "folderUid": stored["folderUid"],
                "folderId": folder.get("id", 0),
                "folderTitle": folder.get("title", "General"),
                "slug": _slug(dashboard["title"]),
                "url": f"/d/{uid}/{_slug(dashboard['title'])}",
                "version": dashboard["version"],
            },
        }

    def _save_dashboard(self, body: Json) -> tuple[int, Any]:
        dashboard = body.get("dashboard")
        if not isinstance(dashboard, dict) or not dashboard.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        folder_uid = str(body.get("folderUid") or "")
        if folder_uid and folder_uid not in self.folders:
            return 400, {"message": "folder not found"}
        uid = str(dashboard.get("uid") or f"dash{self._next_id}")
        if len(uid) > 40:
            return 400, {"message": "uid too long, max 40 characters"}
        existing = self.dashboards.get(uid)
        saved = copy.deepcopy(dashboard) | {"uid": uid}
        if existing is None:
            saved |= {"id": self._take_id(), "version": 1}
        else:
            held = existing["dashboard"]
            if not body.get("overwrite") and dashboard.get("version") != held["version"]:
                return 412, {
                    "status": "version-mismatch",
                    "message": "The dashboard has been changed by someone else",
                }
            saved |= {"id": held["id"], "version": held["version"] + 1}
        self.dashboards[uid] = {"dashboard": saved, "folderUid": folder_uid}
        return 200, {
            "id": saved["id"],
            "uid": uid,
            "status": "success",
            "version": saved["version"],
            "slug": _slug(saved["title"]),
            "url": f"/d/{uid}/{_slug(saved['title'])}",
        }

    def _search(self, query: dict[str, list[str]]) -> list[Json]:
        tags = set(query.get("tag", []))
        kind = (query.get("type") or ["dash-db"])[0]
        if kind != "dash-db":
            return []
        found = []
        for uid, stored in sorted(self.dashboards.items()):
            dashboard = stored["dashboard"]
            if not tags <= set(dashboard.get("tags", [])):
                continue
            folder = self.folders.get(stored["folderUid"], {})
            found.append(
                {
                    "id": dashboard["id"],
                    "uid": uid,
                    "title": dashboard["title"],
                    "type": "dash-db",
                    "tags": dashboard.get("tags", []),
                    "url": f"/d/{uid}/{_slug(dashboard['title'])}",
                    "folderUid": stored["folderUid"],
                    "folderTitle": folder.get("title"),
                }
            )
        return found

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1


class _Handler(BaseHTTPRequestHandler):
    grafana: GrafanaStub
    protocol_version = "HTTP/1.1"  # keep-alive, as grafana-client's session expects

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.grafana.requests.append((method, parts.path))
        if method == "GET" and parts.path == "/api/health":
            self._send(200, {"commit": "stub", "database": "ok", "version": self.grafana.version})
            return
        if not self.grafana.authorized(self.headers.get("Authorization", "")):
            self._send(401, {"message": "invalid API key"})
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(400, {"message": "bad request data"})
            return
        status, document = self.grafana.handle(method, parts.path, parse_qs(parts.query), body)
        self._send(status, document)

    def _send(self, status: int, document: Any) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the test output is the interface."""


def _folder_summary(folder: Json) -> Json:
    return {"id": folder["id"], "uid": folder["uid"], "title": folder["title"]}


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
