"""The one place numba options live: every kernel is compiled through :func:`kernel`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., object])

_OPTIONS: Final[dict[str, Any]] = {
    "cache": True,
    "nogil": True,
    "error_model": "numpy",
    # No reference counting: kernels only take caller-owned arrays and never allocate, so
    # the runtime has nothing to manage. With it, every call into a kernel took and released
    # a reference on each array argument (an atomic each); quote_symbol alone, with a dozen
    # arrays, cost ~90 ns per event before doing anything. A kernel that allocated an array
    # would fail to compile, which is what the style guide asks for anyway.
    "_nrt": False,
}


def kernel(fn: F) -> F:
    """Compile ``fn`` ahead of its first call: no Python objects, cached on disk, GIL released.

    The original function stays reachable as ``fn.py_func`` so tests can run it in Python.
    """
    return cast(F, numba.njit(**_OPTIONS)(fn))


def inline_kernel(fn: F) -> F:
    """Compile like :func:`kernel`, and have LLVM inline it into every compiled caller.

    For a per-event helper with many array arguments: a real call copies every array's
    descriptor (pointer, shape, strides) across; inlined, the caller's are used directly.
    """
    return cast(F, numba.njit(forceinline=True, **_OPTIONS)(fn))


def py_func(fn: F) -> F:
    """Return the interpreted original of a kernel (for tests), typed like the kernel."""
    return cast(F, getattr(fn, "py_func", fn))
