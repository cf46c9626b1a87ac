"""Model inference kernels: a linear model and a one-hidden-layer MLP over the features.

Both share one parameter layout so the replay loop can take either: inputs are standardised
with ``mean``/``scale``; the linear model is ``w2 . z + b2``; the MLP is
``w2 . tanh(w1 z + b1) + b2`` (tanh approximated, see :func:`fast_tanh`). The output is the
expected mid change in ticks. The vectors are the rows of ``mv`` (``MV_*`` in the layout).
"""


# (njit has no keyword-only parameters) and stay flat: a helper call per event costs time.

from __future__ import annotations

from typing import Final

import numpy as np

from engine.kernels._jit import inline_kernel, kernel
from engine.kernels.layout import MV_B1, MV_B2, MV_MEAN, MV_SCALE, MV_W2

MODEL_LINEAR: Final = 0
MODEL_MLP: Final = 1
MODEL_KIND_NAMES: Final = ("linear", "mlp")


@kernel
def fast_tanh(x: float) -> float:
    """Return a rational approximation of tanh (max error ~2e-2, exact sign and limits)."""
    if x > 3.0:
        return 1.0
    if x < -3.0:
        return -1.0
    x2 = x * x
    return x * (27.0 + x2) / (27.0 + 9.0 * x2)


@inline_kernel
def predict(kind: int, x: np.ndarray, mv: np.ndarray, w1: np.ndarray, scratch: np.ndarray) -> float:
    """Return the model output for one feature row.

    Args:
        kind: ``MODEL_LINEAR`` or ``MODEL_MLP``.
        x: float64[features].
        mv: float64[MV_ROWS, width]: mean, scale, b1, w2 and b2 rows.
        w1: float64[hidden, features] (unused by the linear model).
        scratch: float64[features + hidden] work space.
    """
    n = x.shape[0]
    for j in range(n):
        scratch[j] = (x[j] - mv[MV_MEAN, j]) / mv[MV_SCALE, j]
    out = mv[MV_B2, 0]
    if kind == MODEL_LINEAR:
        for j in range(n):
            out += mv[MV_W2, j] * scratch[j]
        return float(out)
    hidden = w1.shape[0]
    # Four hidden units at a time: their add chains overlap in the pipeline. Each unit still
    # sums b1, w1[h, 0] z0, w1[h, 1] z1, ... in that order, so the output is bit-identical
    # to one unit at a time.
    h = 0
    while h + 4 <= hidden:
        a0 = mv[MV_B1, h]
        a1 = mv[MV_B1, h + 1]
        a2 = mv[MV_B1, h + 2]
        a3 = mv[MV_B1, h + 3]
        for j in range(n):
            z = scratch[j]
            a0 += w1[h, j] * z
            a1 += w1[h + 1, j] * z
            a2 += w1[h + 2, j] * z
            a3 += w1[h + 3, j] * z
        scratch[n + h] = fast_tanh(a0)
        scratch[n + h + 1] = fast_tanh(a1)
        scratch[n + h + 2] = fast_tanh(a2)
        scratch[n + h + 3] = fast_tanh(a3)
        h += 4
    while h < hidden:
        acc = mv[MV_B1, h]
        for j in range(n):
            acc += w1[h, j] * scratch[j]
        scratch[n + h] = fast_tanh(acc)
        h += 1
    for h in range(hidden):
        out += mv[MV_W2, h] * scratch[n + h]
    return float(out)
