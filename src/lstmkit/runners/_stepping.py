"""The stepped path of :class:`~lstmkit.Recurrent`: the cell contract, one step at a time.

Both loops work on a time-major batch sorted longest first, so the sequences still active at
step ``t`` are the first ``batch_sizes[t]`` rows (all rows when ``batch_sizes`` is None); a
finished sequence's state stays as it was at its last valid step.

Before the loop, :func:`lstmkit.runners._hoist.hoist_inputs` computes ``x @ W`` of the gates of a cell
that accepts it, for every step in one product; each step's gates read their rows of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit._hoisting import HOISTED, HoistedInputs
from lstmkit.protocols import StepContext, step_train
from lstmkit.runners._hoist import end_backward, finish_backward, hoist_inputs, start_backward
from lstmkit.state import map_state

Array = NDArray[Any]


def _head(state: Any, n: int) -> Any:
    """The first ``n`` rows of every array of ``state``."""
    return map_state(lambda a: a[:n], state)


def _merge(head: Any, full: Any, n: int) -> Any:
    """``full`` with its first ``n`` rows replaced by ``head``."""
    return map_state(lambda new, old: np.concatenate([new, old[n:]]), head, full)


class StepCaches(list):
    """The step caches of a training forward, with what its backward needs of the hoisting."""

    hoisted: HoistedInputs | None = None
    xt: Array | None = None


def forward_steps(
    cell: Any,
    xt: Array,
    state: Any,
    batch_sizes: Array | None,
    context: StepContext | None,
    out_shape: tuple[int, ...],
    recording: Any = None,
) -> tuple[Array, Any, list[Any] | None]:
    """``(y_tm, final_state, step caches)``: inference when ``context`` is None (no caches).

    ``out_shape`` is one step's output shape without the batch axis (``(output_size,)``).
    ``recording`` (from :mod:`lstmkit.trace`) is told where each step starts and its new state.
    """
    T, B = xt.shape[0], xt.shape[1]
    y = np.zeros((T, B, *out_shape), cell.dtype)
    caches = StepCaches()
    hoisted = hoist_inputs(cell, xt, training=context is not None)  # see lstmkit.runners._hoist
    # The gates look the products up only when there are some; a training forward without
    # them still notes each step's input array for the backward.
    token = None if hoisted is None or hoisted.products is None else HOISTED.set(hoisted)
    try:
        for t in range(T):
            n = B if batch_sizes is None else int(batch_sizes[t])
            if n == 0:
                break
            sub = state if n == B else _head(state, n)
            x_t = xt[t, :n]
            if hoisted is not None:
                hoisted.at_step(x_t, t, n)
                if context is not None:
                    hoisted.xs.append(x_t)
            if recording is not None:
                recording.begin_step(t, n)
            if context is not None:
                new, out, c = step_train(cell, sub, x_t, context)
                caches.append(c)
            else:
                new, out = cell.step(sub, x_t)
            y[t, :n] = out
            if recording is not None:
                recording.end_step(new)
            state = new if n == B else _merge(new, state, n)
    finally:
        if token is not None:
            HOISTED.reset(token)
    if context is None:
        return y, state, None
    if hoisted is not None:
        caches.hoisted, caches.xt = hoisted, xt
    return y, state, caches


def backward_steps(
    cell: Any,
    caches: list[Any],
    dyt: Array,
    d_final: Any,
    batch_sizes: Array | None,
    in_shape: tuple[int, ...],
) -> tuple[Array, Any]:
    """``(dx_tm, d_initial_state)`` from the caches of :func:`forward_steps`, last step first."""
    T, B = dyt.shape[0], dyt.shape[1]
    dx = np.zeros((T, B, *in_shape), cell.dtype)
    d_state = d_final
    hoisted = getattr(caches, "hoisted", None)
    xt = getattr(caches, "xt", None)
    token = None
    if hoisted is not None and xt is not None:
        start_backward(hoisted)
        token = HOISTED.set(hoisted)
    try:
        for t in range(len(caches) - 1, -1, -1):
            n = B if batch_sizes is None else int(batch_sizes[t])
            if token is not None:
                hoisted.at_step(hoisted.xs[t], t, n)  # type: ignore[union-attr]
            sub = d_state if n == B else _head(d_state, n)
            d_prev, d_x = cell.step_backward(caches[t], sub, dyt[t, :n])
            dx[t, :n] = d_x
            d_state = d_prev if n == B else _merge(d_prev, d_state, n)
        if token is not None:
            # The deferred products of the hoisted gates, for the whole sequence at once.
            active = None
            if batch_sizes is not None:
                active = np.arange(B)[None, :] < np.asarray(batch_sizes)[:, None]
            finish_backward(hoisted, xt, dx, active)  # type: ignore[arg-type]
    finally:
        if token is not None:
            HOISTED.reset(token)
            end_backward(hoisted)  # type: ignore[arg-type]
    return dx, d_state
