"""The one place numba options live: every kernel is compiled through :func:`kernel`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., object])


def kernel(fn: F) -> F:
    """Compile ``fn`` ahead of its first call: no Python objects, cached on disk, GIL released.

    The original function stays reachable as ``fn.py_func`` so tests can run it in Python.
    """
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


def py_func(fn: F) -> F:
    """Return the interpreted original of a kernel (for tests), typed like the kernel."""
    return cast(F, getattr(fn, "py_func", fn))
