"""Keeping a training cache private: what a forward pass keeps, the caller can neither reach
nor change before the backward pass.

Two ways a cache could be shared with the caller, each closed by a copy made only where the
memory may be shared (:func:`may_share`; when sharing cannot be ruled out, the copy is made):

* the caller's arrays kept by the cache (``x`` of a batch of one, whose time-major layout is
  a view of it; the initial state, which a stepped cell keeps): copied on the way in;
* the cell's outputs returned to the caller (the fused kernel's ``y`` is a view of its
  hidden-state cache; a stepped cell's final state is its last step's): copied on the way out,
  unless the runner's own reordering already made a new array.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.state import map_state

Array = NDArray[Any]


def _owner(a: Array) -> Array:
    """The array at the end of ``a``'s chain of views."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def may_share(a: Array, b: Array) -> bool:
    """Whether ``a`` and ``b`` may share memory.

    Arrays whose chains of views end at different arrays owning their memory never share it,
    so most answers are one comparison; memory from another buffer object (``frombuffer``, a
    memory map) is left to :func:`numpy.may_share_memory`, a bounds check.
    """
    oa, ob = _owner(a), _owner(b)
    if oa.base is None and ob.base is None:
        return oa is ob
    return bool(np.may_share_memory(a, b))


def private(a: Array, given: Any) -> Array:
    """``a``, or a copy of it if it may share memory with the array ``given`` (anything else
    shares nothing).

    The copy keeps ``a``'s memory order (a transposed view stays transposed), so it is a
    straight copy of the memory rather than a gather.
    """
    if isinstance(given, np.ndarray) and may_share(a, given):
        return a.copy(order="K")
    return a


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    """The field names of an attrs state class (looked up once per class)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in attrs.fields(cls))
    return names


def copy_state(state: Any) -> Any:
    """A copy of a state object, every array copied."""
    cls = type(state)
    return cls(**{name: getattr(state, name).copy() for name in _names(cls)})


def state_arrays(state: Any) -> list[Array]:
    """The arrays of a state object (an attrs class of arrays); none for anything else."""
    if state is None or not attrs.has(type(state)):
        return []
    values = (getattr(state, f.name) for f in attrs.fields(type(state)))
    return [v for v in values if isinstance(v, np.ndarray)]


def private_state(state: Any, given: Any) -> Any:
    """``state`` with a copy of every array that may share memory with an array of the state
    ``given`` (None: nothing to compare with, ``state`` as it is)."""
    if given is None:
        return state
    theirs = state_arrays(given)
    if not any(may_share(a, b) for a in state_arrays(state) for b in theirs):
        return state
    return map_state(lambda a: a.copy() if any(may_share(a, b) for b in theirs) else a, state)
