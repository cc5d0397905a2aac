"""Argument checks shared by the feed-forward layers: each error names the argument, what
was expected and what was received."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


def check_input(x: Any, size: int, dtype: np.dtype[Any], argument: str = "x") -> Array:
    """A real array with ``size`` features on its last axis, in ``dtype``."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{argument}: expected a numpy array, received {type(x).__name__}")
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{argument}: expected a real numeric array, received dtype {x.dtype}")
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{argument}: expected shape (..., {size}), received {x.shape}")
    return x.astype(dtype, copy=False)


def check_grad(dy: Any, shape: tuple[int, ...], argument: str = "dy") -> Array:
    """An upstream gradient of exactly ``shape``."""
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"{argument}: expected a numpy array, received {type(dy).__name__}")
    if dy.shape != shape:
        raise ValueError(f"{argument}: expected shape {shape}, received {dy.shape}")
    return dy
