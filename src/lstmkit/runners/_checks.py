"""Argument checks shared by the runners: every error names the argument, what was expected
and what was received, and is raised before anything is computed or changed."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.cells.base import refuse_masked
from lstmkit.state import map_state

Array = NDArray[Any]


def check_real_array(x: Any, *, argument: str = "x") -> Array:
    """``x`` as a real numeric ndarray (lists and tuples converted), else a clear error."""
    refuse_masked(x, argument)
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{argument}: expected a numpy array, received {type(x).__name__}")
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{argument}: expected a real numeric array, received dtype {x.dtype}")
    return x


def check_sequence(
    x: Any,
    input_size: int,
    dtype: np.dtype[Any],
    *,
    argument: str = "x",
    step_shape: tuple[int, ...] | None = None,
) -> Array:
    """A ``(batch, time, input_size)`` or unbatched ``(time, input_size)`` array in ``dtype``.

    ``step_shape`` is the shape of one step's input when it has more than one axis (a
    convolutional cell's ``input_shape``, such as ``(height, width, channels)``): ``x`` is then
    ``(batch, time, *step_shape)`` or ``(time, *step_shape)``.
    """
    x = check_real_array(x, argument=argument)
    if step_shape is not None and len(step_shape) > 1:
        n = len(step_shape)
        if x.ndim not in (n + 1, n + 2) or tuple(x.shape[-n:]) != tuple(step_shape):
            want = ", ".join(str(s) for s in step_shape)
            raise ValueError(
                f"{argument}: expected shape (batch, time, {want}) or (time, {want}), "
                f"received {x.ndim}-d array of shape {x.shape}"
            )
        return x.astype(dtype, copy=False)
    if x.ndim not in (2, 3):
        raise ValueError(
            f"{argument}: expected shape (batch, time, {input_size}) or (time, {input_size}), "
            f"received {x.ndim}-d array of shape {x.shape}"
        )
    if x.shape[-1] != input_size:
        raise ValueError(
            f"{argument}: expected {input_size} features on the last axis, received shape {x.shape}"
        )
    return x.astype(dtype, copy=False)


def step_shape(obj: Any, which: str) -> tuple[int, ...]:
    """Shape of one step's input or output (``which``) without the batch axis.

    A cell whose steps are more than vectors declares ``input_shape`` and ``output_shape``
    (:class:`~lstmkit.ConvLSTMCell`); any other has ``(input_size,)`` and ``(output_size,)``
    (``(hidden_size,)`` for a cell without ``output_size``).
    """
    shape = getattr(obj, f"{which}_shape", None)
    if shape is None:
        if which == "input":
            return (int(obj.input_size),)
        return (int(getattr(obj, "output_size", obj.hidden_size)),)
    return tuple(int(s) for s in shape)


def check_state(
    state: Any, template: Any, dtype: np.dtype[Any], *, argument: str = "initial_state"
) -> Any:
    """Check ``state`` against a zero ``template`` of the right type and shapes; cast to dtype."""
    if type(state) is not type(template):
        raise TypeError(
            f"{argument}: expected {type(template).__name__}, received {type(state).__name__}"
        )
    values = {}
    for f in attrs.fields(type(template)):
        got = getattr(state, f.name)
        want = getattr(template, f.name)
        if not isinstance(got, np.ndarray):
            raise TypeError(
                f"{argument}.{f.name}: expected a numpy array, received {type(got).__name__}"
            )
        if got.dtype.kind not in "fiu":
            raise TypeError(
                f"{argument}.{f.name}: expected real numbers, received dtype {got.dtype}"
            )
        if got.shape != want.shape:
            raise ValueError(
                f"{argument}.{f.name}: expected shape {want.shape}, received {got.shape}"
            )
        values[f.name] = got.astype(dtype, copy=False)
    return type(template)(**values)


def check_gradient(d: Any, shape: tuple[int, ...], dtype: np.dtype[Any], *, argument: str) -> Array:
    """An upstream gradient of exactly ``shape``, real, in ``dtype``."""
    refuse_masked(d, argument)
    if not isinstance(d, np.ndarray):
        raise TypeError(f"{argument}: expected a numpy array, received {type(d).__name__}")
    if d.dtype.kind not in "fiu":
        raise TypeError(f"{argument}: expected real numbers, received dtype {d.dtype}")
    if d.shape != shape:
        raise ValueError(f"{argument}: expected shape {shape}, received {d.shape}")
    return d.astype(dtype, copy=False)


def check_flag(name: str, value: Any) -> None:
    """``value`` is True or False (a NumPy bool included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, received {value!r}")


def check_fused(value: Any) -> None:
    """``value`` is None, True or False: a runner's ``fused`` setting."""
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"fused: expected None, True or False, received {value!r}")


def unbatched_to_batched(state: Any, argument: str) -> Any:
    """An unbatched state with a batch axis of 1 added to every array."""
    if not attrs.has(type(state)):
        raise TypeError(f"{argument}: expected a state object, received {type(state).__name__}")
    return map_state(lambda a: np.asarray(a)[None], state)
