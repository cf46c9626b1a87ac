"""Generate bot4's Grafana dashboards: ``infra/grafana/<name>.json``, committed.

``python -m infra.grafana.dashboards --write`` regenerates the files; ``--check`` exits 1
when a committed file differs from what the generator produces (a test does the same).
The committed JSON names its datasource through the ``${datasource}`` variable, so it
imports into any Grafana; :func:`with_datasource` pins a concrete Prometheus datasource
uid for ``bot4 dashboards push`` and ``render``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from infra.grafana import engine, operations, overview
from infra.grafana.model import DATASOURCE, DATASOURCE_VARIABLE, Dashboard

FOLDER: Final = Path(__file__).resolve().parent
# name (the file stem) -> builder; the order is the order Grafana lists them in
BUILDERS: Final[dict[str, Callable[[], Dashboard]]] = {
    "overview": overview.build,
    "engine": engine.build,
    "operations": operations.build,
}


def generate() -> dict[str, dict[str, Any]]:
    """Return every dashboard's JSON model by name, datasource left as a variable."""
    return {name: build().to_json() for name, build in BUILDERS.items()}


def with_datasource(dashboard: dict[str, Any], uid: str) -> dict[str, Any]:
    """Return a copy of ``dashboard`` whose panels and queries all use datasource ``uid``.

    The datasource variable goes away with it: a picker that changes nothing would only
    mislead. An empty ``uid`` returns an unchanged copy (the viewer picks the datasource).
    """
    pinned = copy.deepcopy(dashboard)
    if not uid:
        return pinned
    _pin(pinned, {"type": DATASOURCE["type"], "uid": uid})
    variables = pinned["templating"]["list"]
    pinned["templating"]["list"] = [v for v in variables if v["name"] != DATASOURCE_VARIABLE]
    return pinned


def _pin(node: Any, datasource: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and value == DATASOURCE:
                node[key] = dict(datasource)
            else:
                _pin(value, datasource)
    elif isinstance(node, list):
        for item in node:
            _pin(item, datasource)


def render(*, datasource_uid: str = "") -> dict[str, dict[str, Any]]:
    """Return every dashboard by name, pinned to ``datasource_uid`` when one is given."""
    return {name: with_datasource(d, datasource_uid) for name, d in generate().items()}


def to_text(dashboard: dict[str, Any]) -> str:
    """Return the file text of a dashboard: stable key order, two-space indent."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def write(folder: Path, dashboards: dict[str, dict[str, Any]]) -> list[Path]:
    """Write ``<folder>/<name>.json`` for each dashboard; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, dashboard in dashboards.items():
        path = folder / f"{name}.json"
        path.write_text(to_text(dashboard), encoding="utf-8")
        paths.append(path)
    return paths


def stale_files(folder: Path = FOLDER) -> list[str]:
    """Return the names of committed dashboards that differ from the generator's output."""
    stale = []
    for name, dashboard in generate().items():
        path = folder / f"{name}.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != to_text(dashboard):
            stale.append(name)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate (``--write``) or verify (``--check``) the committed dashboards."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.grafana.dashboards", description="Generate bot4's dashboards."
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate infra/grafana/*.json")
    mode.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    if args.write:
        for path in write(FOLDER, generate()):
            print(f"wrote {path}")
        return 0
    stale = stale_files()
    for name in stale:
        print(
            f"infra/grafana/{name}.json is out of date: run"
            " .venv/bin/python -m infra.grafana.dashboards --write",
            file=sys.stderr,
        )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
