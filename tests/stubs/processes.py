"""Process-tree snapshots, to prove a command left nothing running."""

from __future__ import annotations

from pathlib import Path

from infra.stack.process import process_start_ticks


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def process_tree(roots: list[int]) -> dict[int, int]:
    """Return {pid: start ticks} of ``roots`` and all their live descendants."""
    live = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    children: dict[int, list[int]] = {}
    for pid in live:
        parent = _parent_of(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    tree: dict[int, int] = {}
    todo = list(roots)
    while todo:
        pid = todo.pop()
        ticks = process_start_ticks(pid)
        if ticks is None or pid in tree:
            continue
        tree[pid] = ticks
        todo.extend(children.get(pid, []))
    return tree


def still_running(tree: dict[int, int]) -> list[int]:
    """Return the pids of ``tree`` that still run (same pid, same start; zombies are gone)."""
    return [pid for pid, ticks in tree.items() if process_start_ticks(pid) == ticks]
