"""The cell contract: what a runner needs from a cell.

A cell is one time step ``(state, x_t) -> (state, y_t)``. Any object with the
members below runs inside :class:`~lstmkit.Recurrent`, :class:`~lstmkit.Stacked`
and :class:`~lstmkit.Bidirectional`; subclassing :class:`~lstmkit.module.Module`
gives it parameter listing, state dicts and the tree repr.

Inference needs ``input_size``, ``hidden_size``, ``dtype``,
``initial_state(batch_size)`` and ``step(state, x)``. Training also needs
``step_train(state, x) -> (state, y, cache)`` and
``step_backward(cache, d_state, d_y) -> (d_state_prev, d_x)``, which must
accumulate parameter gradients into ``Parameter.grad``.

A cell may also offer a fused whole-sequence path, used by runners when
present (see :meth:`lstmkit.LSTMCell.forward_sequence`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Cell", "TrainableCell", "check_step_input"]

Array = NDArray[Any]


@runtime_checkable
class Cell(Protocol):
    """A recurrent cell usable for inference."""

    input_size: int
    hidden_size: int
    dtype: np.dtype[Any]

    def initial_state(self, batch_size: int) -> Any:
        """Zero state for ``batch_size`` sequences."""
        ...

    def step(self, state: Any, x: Array) -> tuple[Any, Array]:
        """One time step on ``x`` of shape ``(batch, input_size)``."""
        ...


@runtime_checkable
class TrainableCell(Cell, Protocol):
    """A cell with an exact backward pass."""

    def step_train(self, state: Any, x: Array) -> tuple[Any, Array, Any]:
        """Like :meth:`step`, also returning the cache for :meth:`step_backward`."""
        ...

    def step_backward(self, cache: Any, d_state: Any, d_y: Array) -> tuple[Any, Array]:
        """Gradients of the previous state and of ``x``; accumulates parameter gradients."""
        ...


def check_step_input(cell: Any, x: Any) -> Array:
    """Validate one step's input: a (batch, input_size) array, converted to the cell's dtype."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"x: expected a real numeric array, received dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != cell.input_size:
        raise ValueError(f"x: expected shape (batch, {cell.input_size}), received {x.shape}")
    return x.astype(cell.dtype, copy=False)
