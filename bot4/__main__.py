"""``python -m bot4``."""

from bot4.cli import entry

entry()
