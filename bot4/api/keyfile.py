"""Key and secret files under ``BOT4_HOME``: created 0600, replaced atomically, read back."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def write_secret_file(path: Path, text: str, *, replace: bool) -> None:
    """Write ``text`` to ``path`` with mode 0600 (the file never exists with wider rights).

    Raises:
        FileExistsError: the file exists and ``replace`` is False.
        OSError: the folder cannot be created or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not replace and path.exists():
        raise FileExistsError(str(path))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if someone created it meanwhile
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def read_secret_file(path: Path) -> str | None:
    """Return the file's first line, or None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def too_open(path: Path) -> bool:
    """Tell whether group or others may read the file (it should be 0600)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def create_once(path: Path, make: str) -> str:
    """Return the file's content, creating it with ``make`` if it does not exist yet.

    Two processes starting at once end up with the same content.
    """
    existing = read_secret_file(path)
    if existing is not None:
        return existing
    with contextlib.suppress(FileExistsError):  # another process was first: use its content
        write_secret_file(path, make, replace=False)
    return read_secret_file(path) or make
