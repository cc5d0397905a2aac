"""What both regularization wrappers share: argument checks, the wrapped cell's sizes, the
step context passed on to the wrapped cell, and redrawing weights and masks."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit.cells.base import WrapsCell
from lstmkit.initializers import as_rng
from lstmkit.module import Module
from lstmkit.protocols import StepContext, step_train

Array = NDArray[Any]

TRAINING = StepContext()  # what step_train does when called without a context


def check_rate(name: str, value: Any) -> float:
    """A dropout or zoneout probability in ``[0, 1)``, as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number in [0, 1), received {value!r}")
    if not (0.0 <= float(value) < 1.0):
        raise ValueError(
            f"{name}: expected a rate in [0, 1) (1 would drop everything), received {value!r}"
        )
    return float(value)


def check_cell(value: Any) -> None:
    """``value`` keeps the trainable-cell contract (a wrapper steps it and its backward)."""
    needed = (
        "input_size",
        "hidden_size",
        "dtype",
        "initial_state",
        "step",
        "step_train",
        "step_backward",
    )
    missing = [m for m in needed if not hasattr(value, m)]
    if missing:
        raise TypeError(
            f"cell: expected a trainable cell (see lstmkit.cells.base), received "
            f"{type(value).__name__} without {', '.join(missing)}"
        )
    shape = getattr(value, "input_shape", None)
    if shape is not None and len(shape) > 1:
        raise TypeError(
            f"cell: {type(value).__name__} steps on feature maps of shape {tuple(shape)}; the "
            "dropout and zoneout wrappers draw masks for vector steps (batch, features) only"
        )


# A wrapped cell is stepped like a runner steps a cell: with the context if it takes one.
inner_step_train = step_train


class Wrapper(WrapsCell, Module):
    """What both wrappers share: the wrapped cell's sizes, the context flag, redrawing."""

    cell: Any
    rng: np.random.Generator

    takes_context = True  # runners pass their training flag and rng to step_train

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Fresh weights for the wrapped cell and a new mask generator, both from ``rng``.

        :class:`~lstmkit.Bidirectional` calls this on its copy, so the two directions
        draw different masks.

        Raises
        ------
        TypeError
            The wrapped cell has no ``reset_parameters``; nothing was changed.
        """
        if not callable(getattr(self.cell, "reset_parameters", None)):
            raise TypeError(
                f"cell: {type(self.cell).__name__} has no reset_parameters, so "
                f"{type(self).__name__} cannot draw fresh weights for it"
            )
        gen = as_rng(rng)
        self.cell.reset_parameters(gen)
        self.rng = np.random.default_rng(gen.integers(2**63))
