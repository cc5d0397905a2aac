"""The whole-sequence path of :class:`~lstmkit.ConvLSTMCell` (internal).

The same numbers as stepping :func:`lstmkit.cells.lstm.lstm_step_train` over the sequence,
computed with fewer, larger products:

* the four gates' kernels are stacked on the output-channel axis (``W (*k, in, 4F)``,
  ``U (*k, F, 4F)``, ``b (4F,)``, in the order forget, input, candidate, output);
* the input convolutions of **every** step are one :func:`~lstmkit.convolution.patches` copy
  and one product before the time loop (they do not depend on the state);
* each step makes one copy of the windows of ``h`` and one product with the stacked ``U``;
  each gate's own activation object is applied to its quarter of the result;
* backward walks the steps in reverse with one transposed convolution for ``dh`` per step
  (a product and one strided addition per kernel position); both kernels' gradients and
  ``dx`` are one product each over the whole sequence, after the loop.

Inputs are time-major ``(time, batch, *spatial, channels)``; with ``batch_sizes`` (rows sorted
longest first) step ``t`` runs on the first ``batch_sizes[t]`` rows and the others keep their
state, exactly as :func:`lstmkit.runners._stepping.forward_steps` does.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit.convolution import input_gradient, kernel_gradient, patches
from lstmkit.state import LSTMState

Array = NDArray[Any]


@attrs.define(eq=False)
class ConvLSTMSequenceCache:
    """What :func:`backward` needs from a training :func:`forward`."""

    x_rows: Array  # (T, B, *S, prod(k) * in): windows of every input frame
    h_rows: Array  # (T, B, *S, prod(k) * F): windows of every step's h_prev (zero if inactive)
    steps: list[tuple[Array, ...]]  # per step: z, f, i, g, o, c_prev, c, cell_out
    batch_sizes: Array | None
    batch: int
    weights: tuple[Array, Array]  # the stacked W and U read by forward
    used: bool = False


def _stacked(cell: Any) -> tuple[Array, Array, Array]:
    gates = list(cell.gates.values())
    W = np.concatenate([g.W.value for g in gates], axis=-1)
    U = np.concatenate([g.U.value for g in gates], axis=-1)
    b = np.concatenate([g.b.value for g in gates])
    return W, U, b


def forward(
    cell: Any, x: Array, state: LSTMState, batch_sizes: Array | None, training: bool
) -> tuple[Array, LSTMState, ConvLSTMSequenceCache | None]:
    """``(y, final_state, cache)`` for ``x`` of shape ``(time, batch, *input_shape)``."""
    gate = cell.forget
    k, rank, F = gate.kernel_size, gate.rank, cell.filters
    ones = (1,) * rank
    forget, input_, candidate, output = cell.gates.values()
    W, U, b = _stacked(cell)
    T, B = x.shape[0], x.shape[1]
    # --8<-- [start:hoisted]
    x_rows = patches(x, k, gate.dilation, gate.input_pads)  # every step's windows at once
    xz = x_rows @ W.reshape(-1, 4 * F) + b  # (T, B, *S, 4F): the input convolutions
    U2 = U.reshape(-1, 4 * F)
    # --8<-- [end:hoisted]
    h, c = state.h, state.c
    y = np.zeros((T, B, *cell.output_shape), cell.dtype)
    if training:
        h_rows_all = np.zeros(xz.shape[:-1] + (U2.shape[0],), cell.dtype)
    steps: list[tuple[Array, ...]] = []
    for t in range(T):
        n = B if batch_sizes is None else int(batch_sizes[t])
        if n == 0:
            break
        h_prev, c_prev = h[:n], c[:n]
        # --8<-- [start:step]
        h_rows = patches(h_prev, k, ones, gate.recurrent_pads)
        z = xz[t, :n] + h_rows @ U2  # the four gates' pre-activations
        f = forget.activation(z[..., :F])
        i = input_.activation(z[..., F : 2 * F])
        g = candidate.activation(z[..., 2 * F : 3 * F])
        o = output.activation(z[..., 3 * F :])
        c_new = f * c_prev + i * g
        cell_out = cell.cell_activation(c_new)
        h_new = o * cell_out
        # --8<-- [end:step]
        y[t, :n] = h_new
        if n == B:
            h, c = h_new, c_new
        else:
            h = np.concatenate([h_new, h[n:]])
            c = np.concatenate([c_new, c[n:]])
        if training:
            h_rows_all[t, :n] = h_rows
            steps.append((z, f, i, g, o, c_prev, c_new, cell_out))
    if not training:
        return y, LSTMState(h=h, c=c), None
    cache = ConvLSTMSequenceCache(x_rows, h_rows_all, steps, batch_sizes, B, (W, U))
    return y, LSTMState(h=h, c=c), cache


def backward(
    cell: Any, cache: ConvLSTMSequenceCache, dy: Array, d_final: LSTMState
) -> tuple[Array, LSTMState]:
    """``(dx, d_initial_state)``; adds the gates' weight gradients (the caller holds the lock)."""
    if not isinstance(cache, ConvLSTMSequenceCache):
        raise TypeError(
            f"cache: expected the ConvLSTMSequenceCache from forward_sequence, received "
            f"{type(cache).__name__}"
        )
    if cache.used:
        raise ValueError("cache: backward_sequence was already run on this cache")
    cache.used = True
    gate = cell.forget
    rank, F = gate.rank, cell.filters
    ones = (1,) * rank
    forget, input_, candidate, output = cell.gates.values()
    W, U = cache.weights
    dh = np.array(d_final.h, dtype=cell.dtype, copy=True)
    dc = np.array(d_final.c, dtype=cell.dtype, copy=True)
    dZ = np.zeros(cache.x_rows.shape[:-1] + (4 * F,), cell.dtype)  # zero past each length
    for t in range(len(cache.steps) - 1, -1, -1):
        z, f, i, g, o, c_prev, c_new, cell_out = cache.steps[t]
        n = f.shape[0]
        dh_t = dy[t, :n] + dh[:n]
        dc_t = dc[:n] + dh_t * o * cell.cell_activation.grad(c_new, cell_out)
        dz = dZ[t, :n]
        dz[..., :F] = dc_t * c_prev * forget.activation.grad(z[..., :F], f)
        dz[..., F : 2 * F] = dc_t * g * input_.activation.grad(z[..., F : 2 * F], i)
        dz[..., 2 * F : 3 * F] = dc_t * i * candidate.activation.grad(z[..., 2 * F : 3 * F], g)
        dz[..., 3 * F :] = dh_t * cell_out * output.activation.grad(z[..., 3 * F :], o)
        dh[:n] = input_gradient(dz, U, gate.recurrent_pads, ones)
        dc[:n] = dc_t * f
    # the kernels' gradients and dx: one product each over every step
    dU = kernel_gradient(cache.h_rows, dZ, U.shape)
    dW = kernel_gradient(cache.x_rows, dZ, W.shape)
    db = dZ.reshape(-1, 4 * F).sum(axis=0)
    dx = input_gradient(dZ, W, gate.input_pads, gate.dilation)
    for q, g_ in enumerate((forget, input_, candidate, output)):
        part = slice(q * F, (q + 1) * F)
        g_.W.grad += dW[..., part]
        g_.U.grad += dU[..., part]
        g_.b.grad += db[part]
    return dx, LSTMState(h=dh, c=dc)
