"""The runner's side of :mod:`lstmkit._hoisting`: which gates to hoist, and the products that
a stepped loop does once for the whole sequence."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstmkit._hoisting import HoistedInputs
from lstmkit.cells import lstm_fused
from lstmkit.gate import Gate

__all__ = [
    "FORWARD_PRODUCTS",
    "end_backward",
    "finish_backward",
    "hoist_inputs",
    "hoisted_gates",
    "start_backward",
]

Array = NDArray[Any]

#: Whether a runner also computes the forward's ``x @ W`` before its loop. Off: on the machine
#: the benchmark ran on (OpenBLAS, one thread) the per-step products of these shapes already run
#: at about 80% of the whole-sequence product's rate, so hoisting them saved nothing measurable
#: (see ``benchmarks/ab_steps.py``); the backward half is what pays. The forward half is tested
#: equal with this set to True.
FORWARD_PRODUCTS = False


def hoisted_gates(cell: Any) -> list[Any]:
    """The gates of ``cell`` whose input products a runner computes before the time loop.

    Empty unless the cell's class declares ``accepts_hoisted_inputs = True`` and has a
    ``gates`` mapping; only gates of exactly the type :class:`~lstmkit.Gate` are listed (a gate
    object used under two names is listed once).

    Examples
    --------
    >>> from lstmkit import GRUCell
    >>> [g.activation.name for g in hoisted_gates(GRUCell(3, 4, rng=0))]
    ['sigmoid', 'sigmoid', 'tanh']
    """
    if getattr(type(cell), "accepts_hoisted_inputs", False) is not True:
        return []
    gates = getattr(cell, "gates", None)
    if not isinstance(gates, dict):
        return []
    chosen: dict[int, Any] = {}
    for gate in gates.values():
        if type(gate) is Gate and id(gate) not in chosen:
            chosen[id(gate)] = gate
    return list(chosen.values())


def hoist_inputs(cell: Any, xt: Array, training: bool = True) -> HoistedInputs | None:
    """What a runner hoists for stepping ``cell`` over ``xt``, or None (nothing to hoist).

    Parameters
    ----------
    cell : cell
        The cell a runner is about to step.
    xt : ndarray, shape (time, batch, input_size)
        The time-major input, in the processing order of the runner's loop.
    training : bool
        A backward will follow (its deferred products need the hoisted gates).

    Returns
    -------
    HoistedInputs or None
        With the products ``xt @ W`` of the hoisted gates (one NumPy call) when
        :data:`FORWARD_PRODUCTS` is set; None for inference without them.
    """
    if not (training or FORWARD_PRODUCTS):
        return None
    gates = hoisted_gates(cell)
    if not gates or xt.ndim != 3 or xt.shape[0] == 0 or xt.shape[1] == 0:
        return None
    T, B, n_in = xt.shape
    shape = gates[0].W.value.shape
    if any(g.W.value.shape != shape or g.W.value.dtype != xt.dtype for g in gates):
        return None
    if shape[0] != n_in:
        return None
    full = (len(gates), T, B, shape[1])
    products = None
    if FORWARD_PRODUCTS:
        weights = np.stack([g.W.value for g in gates])  # (gates, input, units)
        products = np.matmul(xt.reshape(1, T * B, n_in), weights).reshape(full)
    return HoistedInputs(products, gates, xt.dtype, full)


def start_backward(hoisted: HoistedInputs) -> None:
    """Give ``hoisted`` a zero gradient buffer: gates defer to it from now on.

    The buffer comes from the fused LSTM's buffer pool (``lstm_fused.POOL_BYTES``): a fresh
    large array is mapped page by page as the loop first writes it, and on the machine the
    benchmark ran on those page faults cost more than the products the buffer saves.
    """
    dtype = hoisted.dtype
    hoisted.d_products = lstm_fused._take(hoisted.shape, dtype, zero=True)
    hoisted.u_t = [np.ascontiguousarray(g.U.value.T) for g in hoisted.gates]
    recurrent = {g.U.value.shape for g in hoisted.gates}
    if len(recurrent) == 1:
        k, T, B, units = hoisted.shape
        ((r, _),) = recurrent
        hoisted.gate_rows = lstm_fused._take((k, T, B, r + units), dtype, zero=True)
    hoisted.last_t = [-1] * len(hoisted.gates)


def end_backward(hoisted: HoistedInputs) -> None:
    """Return the backward's buffer to the pool (after :func:`finish_backward`, or when the
    loop failed: the buffer is zeroed again when it is next taken)."""
    for buffer in (hoisted.d_products, hoisted.gate_rows):
        if buffer is not None:
            lstm_fused._give(buffer)
    hoisted.d_products = hoisted.gate_rows = None
    hoisted.u_t = []


def finish_backward(hoisted: HoistedInputs, xt: Array, dx: Array, active: Array | None) -> None:
    """After a backward loop: ``dx += dZ @ W.T``, each ``W.grad += X.T @ dZ``, and the
    ``U.grad`` and ``b.grad`` shares that gates' own backward deferred.

    ``active`` (time, batch) marks the steps that ran (None: all); ``X``'s other rows are set to
    zero first, so padding the caller filled with anything (even NaN) adds nothing.
    """
    dz = hoisted.d_products
    assert dz is not None
    T, B, n_in = xt.shape
    x2 = xt.reshape(T * B, n_in)
    if active is not None:
        x2 = np.where(active.reshape(T * B, 1), x2, 0).astype(xt.dtype, copy=False)
    dx2 = dx.reshape(T * B, n_in)
    for k, gate in enumerate(hoisted.gates):
        dz_k = dz[k].reshape(T * B, -1)
        dx2 += dz_k @ np.ascontiguousarray(gate.W.value.T)
        gate.W.grad += x2.T @ dz_k
        if hoisted.gate_rows is not None:
            # Rows a gate's own backward deferred: U.grad += H.T @ dZ and b.grad += sum(dZ).
            rows = hoisted.gate_rows[k].reshape(T * B, -1)
            r = rows.shape[1] - dz_k.shape[1]
            dz_own = rows[:, r:]
            gate.U.grad += rows[:, :r].T @ dz_own
            gate.b.grad += dz_own.sum(axis=0)
