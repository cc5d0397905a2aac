"""The contracts between lstmkit's pieces, in one place.

* A **cell** is one time step ``(state, x_t) -> (state, y_t)`` (:class:`Cell`); a
  **trainable cell** also has an exact backward step (:class:`TrainableCell`).
* A cell may add a **fused sequence path** (:class:`SequenceCell`): ``forward_sequence`` and
  ``backward_sequence`` compute a whole sequence at once. Runners take it only when the cell
  declares, through ``cannot_fuse()``, that the kernel computes exactly what its steps do.
* A **runner** walks a cell over sequences (:class:`Runner`): ``runner(x, initial_state,
  lengths) -> (y, final_state)`` for inference, ``forward(..., training=, rng=) -> (y,
  final_state, cache)`` and ``backward(cache, dy, d_state) -> (dx, d_initial_state)``.
* A **layer** maps sequences or vectors without a state (:class:`Layer`):
  ``layer(x, lengths) -> y``, ``forward(x, lengths, training=, rng=) -> (y, cache)``,
  ``backward(cache, dy) -> dx``.
* A cell with randomness (dropout, zoneout) sets ``takes_context = True`` and accepts a
  :class:`StepContext` in ``step_train(state, x, context=...)``: the runner's ``training`` flag
  and ``rng`` reach it that way, through every wrapper.

Examples
--------
>>> from lstmkit import GRUCell, LSTMCell
>>> from lstmkit.protocols import TrainableCell, fused_refusal
>>> isinstance(GRUCell(3, 4, rng=0), TrainableCell)
True
>>> fused_refusal(LSTMCell(3, 4, rng=0)) is None
True
>>> fused_refusal(GRUCell(3, 4, rng=0))
'GRUCell has no fused sequence path (forward_sequence and backward_sequence)'
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Cell",
    "Layer",
    "Runner",
    "SequenceCell",
    "StepContext",
    "TrainableCell",
    "fused_refusal",
    "step_train",
]

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


@runtime_checkable
class SequenceCell(TrainableCell, Protocol):
    """A trainable cell with a fused whole-sequence path (time-major, packed batches)."""

    def cannot_fuse(self) -> str | None:
        """Why the fused path would not compute what the steps compute, or None if it does."""
        ...

    def forward_sequence(
        self, x: Array, state: Any, batch_sizes: Array | None = None, training: bool = False
    ) -> tuple[Array, Any, Any]:
        """``(y, final_state, cache)`` for a time-major sequence."""
        ...

    def backward_sequence(self, cache: Any, dy: Array, d_final: Any) -> tuple[Array, Any]:
        """``(dx, d_initial_state)``; accumulates parameter gradients."""
        ...


@runtime_checkable
class Runner(Protocol):
    """Walks a cell (or several) over sequences."""

    input_size: int
    output_size: int

    def initial_state(self, batch_size: int | None = None) -> Any: ...

    def __call__(
        self, x: Array, initial_state: Any = None, lengths: Any = None
    ) -> tuple[Array, Any]: ...

    def forward(
        self,
        x: Array,
        initial_state: Any = None,
        lengths: Any = None,
        *,
        training: bool = True,
        rng: Any = None,
    ) -> tuple[Array, Any, Any]: ...

    def backward(self, cache: Any, dy: Array | None = None, d_state: Any = None) -> Any: ...


@runtime_checkable
class Layer(Protocol):
    """A stateless layer in a :class:`~lstmkit.Sequential` model."""

    def __call__(self, x: Array, lengths: Any = None) -> Array: ...

    def forward(
        self, x: Array, lengths: Any = None, *, training: bool = True, rng: Any = None
    ) -> tuple[Array, Any]: ...

    def backward(self, cache: Any, dy: Array) -> Array: ...


@attrs.frozen
class StepContext:
    """What a runner's call tells every step of a cell that has randomness.

    Parameters
    ----------
    training : bool
        Apply noise (dropout masks, zoneout) only when true.
    rng : numpy.random.Generator or None
        Overrides the wrapper's own generator for this call when given.
    """

    training: bool = True
    rng: np.random.Generator | None = None


def step_train(
    cell: Any, state: Any, x: Array, context: StepContext, **kwargs: Any
) -> tuple[Any, Array, Any]:
    """``cell.step_train(state, x, **kwargs)``, with ``context`` for cells that declare
    ``takes_context``."""
    if getattr(cell, "takes_context", False):
        kwargs["context"] = context
    return cell.step_train(state, x, **kwargs)


def fused_refusal(cell: Any) -> str | None:
    """Why a runner cannot take ``cell``'s fused sequence path, or None if it can.

    The path needs ``forward_sequence`` and ``backward_sequence``; a cell that has them and a
    ``cannot_fuse`` method is asked whether its kernel computes exactly what its steps compute
    (:class:`~lstmkit.LSTMCell` answers for its exact class, its gates' exact class and their
    activation objects). A user cell with its own ``forward_sequence`` and no ``cannot_fuse``
    declares its kernel its own.
    """
    missing = [m for m in ("forward_sequence", "backward_sequence") if not hasattr(cell, m)]
    if missing:
        return (
            f"{type(cell).__name__} has no fused sequence path "
            "(forward_sequence and backward_sequence)"
        )
    cannot = getattr(cell, "cannot_fuse", None)
    return None if cannot is None else cannot()
