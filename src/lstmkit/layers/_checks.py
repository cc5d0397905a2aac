"""Argument checks shared by the feed-forward layers: each error names the argument, what
was expected and what was received."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit.runners._checks import check_real_array

Array = NDArray[Any]


def check_input(x: Any, size: int, dtype: np.dtype[Any], argument: str = "x") -> Array:
    """A real array with ``size`` features on its last axis, in ``dtype``."""
    x = check_real_array(x, argument=argument)
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
