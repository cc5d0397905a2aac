"""Recurrent states: small frozen classes of arrays with a leading batch axis.

A state is never a bare tuple whose order must be remembered: an LSTM carries
``LSTMState(h, c)``, a GRU or plain RNN ``HiddenState(h)``. Runners treat any
frozen attrs class whose fields are arrays of shape ``(batch, ...)`` as a
state, so a user's cell can define its own.

Examples
--------
>>> import numpy as np
>>> LSTMState(h=np.zeros((2, 5)), c=np.zeros((2, 5)))
LSTMState(h=(2, 5) float64, c=(2, 5) float64)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "HiddenState",
    "LSTMState",
    "map_state",
    "state_arrays",
]

S = TypeVar("S")


def _short_repr(self: Any) -> str:
    parts = []
    for f in attrs.fields(type(self)):
        value = getattr(self, f.name)
        if isinstance(value, np.ndarray):
            parts.append(f"{f.name}={value.shape} {value.dtype}")
        else:
            parts.append(f"{f.name}={value!r}")
    return f"{type(self).__name__}({', '.join(parts)})"


@attrs.frozen(repr=False, eq=False)
class LSTMState:
    """State of an LSTM: hidden state ``h`` and cell state ``c``.

    Attributes
    ----------
    h : ndarray, shape (batch, hidden) or (hidden,)
        Hidden state (the cell's output at the last step).
    c : ndarray, shape (batch, hidden) or (hidden,)
        Cell state (the "conveyor belt").
    """

    h: NDArray[Any]
    c: NDArray[Any]

    __repr__ = _short_repr


@attrs.frozen(repr=False, eq=False)
class HiddenState:
    """State made of a hidden vector alone (GRU, plain RNN).

    Attributes
    ----------
    h : ndarray, shape (batch, hidden) or (hidden,)
    """

    h: NDArray[Any]

    __repr__ = _short_repr


def state_arrays(state: Any) -> dict[str, NDArray[Any]]:
    """The named arrays of a state, in field order."""
    if not attrs.has(type(state)):
        raise TypeError(
            f"state: expected an attrs state class such as LSTMState, received {type(state).__name__}"
        )
    return {f.name: getattr(state, f.name) for f in attrs.fields(type(state))}


def map_state(fn: Callable[..., NDArray[Any]], state: S, *others: Any) -> S:
    """Apply ``fn`` field by field to ``state`` (and the matching fields of ``others``)."""
    fields = attrs.fields(type(state))  # type: ignore[arg-type]
    return type(state)(
        **{
            f.name: fn(getattr(state, f.name), *(getattr(o, f.name) for o in others))
            for f in fields
        }
    )
