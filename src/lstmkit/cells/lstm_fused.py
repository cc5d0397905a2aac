"""Fused whole-sequence forward and backward for :class:`~lstmkit.LSTMCell`.

Same numbers as stepping :meth:`LSTMCell.step`, computed with fewer, larger
NumPy calls:

* the four gates' weights are concatenated (order input, forget, output,
  candidate, so the three sigmoid gates are contiguous) into ``W (I, 4H)``,
  ``U (H, 4H)`` and ``b (4H,)`` at the start of each call; the parameters stay
  owned by the gates;
* the input projection of the whole sequence is one product
  ``X (T*B, I) @ W``;
* each step is one product ``h @ U`` and in-place elementwise work on
  preallocated buffers. With the default activations, the sigmoid columns of
  ``W``, ``U`` and ``b`` are pre-scaled by 1/2 so a single ``tanh`` over all
  ``4H`` columns yields every gate (``sigmoid(z) = (1 + tanh(z / 2)) / 2``);
* backward writes the pre-activation gradients of every step into the
  training cache (in place of the gate values it no longer needs) and forms
  ``dW``, ``dU``, ``db`` and ``dX`` with one product each.

Variable lengths use the "packed" layout: sequences sorted longest first, so
the active rows at step ``t`` are the prefix ``[:batch_sizes[t]]``.

Training cache per time step and sequence: ``4H`` gate values, ``H`` cell
state (plus ``4H`` pre-activations when a swapped activation needs them).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import activations
from lstmkit.state import LSTMState

Array = NDArray[Any]

# Column blocks of the fused matrices.
FUSED_ORDER = ("input", "forget", "output", "candidate")


@attrs.define(eq=False)
class FusedLSTMCache:
    """Training cache of :func:`forward`; consumed by :func:`backward`."""

    x: Array  # (T, B, I) inputs
    h0: Array  # (B, H)
    y: Array  # (T, B, H) outputs, which are the hidden states
    gates: Array  # (T, B, 4H) gate values; overwritten by backward with dL/dz
    z: Array | None  # (T, B, 4H) pre-activations, only when an activation needs them
    c: Array  # (T + 1, B, H) cell states, c[0] = c0
    batch_sizes: Array | None
    fast: bool
    consumed: bool = False


def _is_fast(cell: Any) -> bool:
    return (
        cell.forget.activation is activations.sigmoid
        and cell.input.activation is activations.sigmoid
        and cell.output.activation is activations.sigmoid
        and cell.candidate.activation is activations.tanh
        and cell.cell_activation is activations.tanh
        and all(cell.gates[n].p is None for n in ("forget", "input", "output"))
    )


def fused_weights(cell: Any, scaled: bool) -> tuple[Array, Array, Array]:
    """Concatenated ``W (I, 4H)``, ``U (H, 4H)``, ``b (4H,)`` in :data:`FUSED_ORDER`.

    With ``scaled``, the three sigmoid blocks are multiplied by 1/2 (exact in floating point).
    """
    gates = [getattr(cell, n) for n in FUSED_ORDER]
    W = np.concatenate([g.W.value for g in gates], axis=1)
    U = np.concatenate([g.U.value for g in gates], axis=1)
    b = np.concatenate([g.b.value for g in gates])
    if scaled:
        H = cell.hidden_size
        for a in (W, U, b):
            a[..., : 3 * H] *= 0.5
    return W, U, b


def forward(
    cell: Any, x: Array, state: LSTMState, batch_sizes: Array | None, training: bool
) -> tuple[Array, LSTMState, FusedLSTMCache | None]:
    """Run ``cell`` over a time-major sequence ``x (time, batch, input)`` with fused gates.

    Returns ``(y (time, batch, hidden), final_state, cache)``; the cache is None unless
    ``training``. This is :meth:`LSTMCell.forward_sequence`'s implementation.
    """
    T, B, I = x.shape
    H = cell.hidden_size
    dt = cell.dtype
    fast = _is_fast(cell)
    W, U, b = fused_weights(cell, scaled=fast)
    H3 = 3 * H

    # The whole sequence's input projection in one product (plus bias).
    pre = (x.reshape(T * B, I) @ W).reshape(T, B, 4 * H)
    pre += b

    y = np.zeros((T, B, H), dt)
    keep_z = training and not fast and _needs_z(cell)
    z_all = pre.copy() if keep_z else None
    if training:
        gates = pre  # activated in place, step by step
        c_all = np.zeros((T + 1, B, H), dt) if batch_sizes is not None else np.empty((T + 1, B, H), dt)
        c_all[0] = state.c
    else:
        gates = pre
        c_run = np.array(state.c, copy=True)
    rec = np.empty((B, 4 * H), dt)
    tmp = np.empty((B, H), dt)
    cell_out = np.empty((B, H), dt)
    h = state.h
    peep = {n: getattr(cell, n).p for n in ("forget", "input", "output")}
    pf = None if peep["forget"] is None else peep["forget"].value
    pi = None if peep["input"] is None else peep["input"].value
    po = None if peep["output"] is None else peep["output"].value

    for t in range(T):
        n = B if batch_sizes is None else int(batch_sizes[t])
        if n == 0:
            break
        h_prev = h[:n]
        G = gates[t, :n]
        r = rec[:n]
        np.matmul(h_prev, U, out=r)
        G += r
        if training:
            c_prev = c_all[t, :n]
            c_new = c_all[t + 1, :n]
        else:
            c_prev = c_run[:n]
            c_new = c_run[:n]  # updated in place: the old value is not needed afterwards
        if fast:
            np.tanh(G, out=G)
            s = G[:, :H3]
            s *= 0.5
            s += 0.5
            i_g, f_g, o_g, g_g = G[:, :H], G[:, H : 2 * H], G[:, 2 * H : H3], G[:, H3:]
            np.multiply(i_g, g_g, out=tmp[:n])
            np.multiply(f_g, c_prev, out=c_new)
            c_new += tmp[:n]
            co = cell_out[:n]
            np.tanh(c_new, out=co)
            np.multiply(o_g, co, out=y[t, :n])
        else:
            if keep_z:
                assert z_all is not None
                z_all[t, :n] += r
            if pf is not None:
                G[:, H : 2 * H] += c_prev * pf
            if pi is not None:
                G[:, :H] += c_prev * pi
            if keep_z and (pf is not None or pi is not None):
                z_all[t, :n, : 2 * H] = G[:, : 2 * H]  # type: ignore[index]
            G[:, :H] = cell.input.activation(G[:, :H])
            G[:, H : 2 * H] = cell.forget.activation(G[:, H : 2 * H])
            G[:, H3:] = cell.candidate.activation(G[:, H3:])
            i_g, f_g, o_g, g_g = G[:, :H], G[:, H : 2 * H], G[:, 2 * H : H3], G[:, H3:]
            c_val = f_g * c_prev + i_g * g_g
            c_new[...] = c_val
            if po is not None:
                o_g += c_new * po
                if keep_z:
                    z_all[t, :n, 2 * H : H3] = o_g  # type: ignore[index]
            G[:, 2 * H : H3] = cell.output.activation(o_g)
            np.multiply(G[:, 2 * H : H3], cell.cell_activation(c_new), out=y[t, :n])
        h = y[t]

    # Final state: each sequence's state at its last valid step.
    if batch_sizes is None:
        h_final = np.array(y[T - 1], copy=True) if T else np.array(state.h, copy=True)
        c_final = np.array(c_all[T] if training else c_run, copy=True)
    else:
        lengths = _lengths_from_batch_sizes(batch_sizes, B)
        rows = np.arange(B)
        h_final = np.where(
            (lengths > 0)[:, None], y[np.maximum(lengths - 1, 0), rows], state.h
        ).astype(dt, copy=False)
        c_final = np.array(c_all[lengths, rows] if training else c_run, copy=True)
    final = LSTMState(h=h_final, c=c_final)
    if not training:
        return y, final, None
    cache = FusedLSTMCache(
        x=x, h0=state.h, y=y, gates=gates, z=z_all, c=c_all, batch_sizes=batch_sizes, fast=fast
    )
    return y, final, cache


def _needs_z(cell: Any) -> bool:
    return any(not g.activation.derivative_from_output for g in cell.gates.values())


def _lengths_from_batch_sizes(batch_sizes: Array, batch: int) -> Array:
    # batch_sizes[t] = number of sequences with length > t, sequences sorted longest first.
    counts = np.asarray(batch_sizes)
    return (counts[:, None] > np.arange(batch)[None, :]).sum(axis=0).astype(np.intp)


def backward(
    cell: Any, cache: FusedLSTMCache, dy: Array, d_final: LSTMState
) -> tuple[Array, LSTMState]:
    """Back-propagate :func:`forward`: returns ``(dx (time, batch, input), d_initial_state)``.

    Accumulates into the gates' ``Parameter.grad``; a cache can be used once.
    """
    if not isinstance(cache, FusedLSTMCache):
        raise TypeError(
            f"cache: expected the cache of a training forward pass, received {type(cache).__name__}"
        )
    if cache.consumed:
        raise ValueError("cache: this training cache was already used by a backward pass")
    T, B, H = cache.y.shape
    I = cache.x.shape[2]
    dt = cell.dtype
    bs = cache.batch_sizes
    fast = cache.fast
    H3 = 3 * H
    W, U, _ = fused_weights(cell, scaled=False)
    UT = np.ascontiguousarray(U.T)
    peep = {n: getattr(cell, n).p for n in ("forget", "input", "output")}
    pf = None if peep["forget"] is None else peep["forget"].value
    pi = None if peep["input"] is None else peep["input"].value
    po = None if peep["output"] is None else peep["output"].value

    dh = np.array(d_final.h, dtype=dt, copy=True)
    dc = np.array(d_final.c, dtype=dt, copy=True)
    gates = cache.gates  # becomes dZ in place
    c_all = cache.c
    d_gate = np.empty((B, 4 * H), dt)
    cell_out = np.empty((B, H), dt)
    tmp = np.empty((B, H), dt)
    cache.consumed = True

    for t in range(T - 1, -1, -1):
        n = B if bs is None else int(bs[t])
        if n == 0:
            continue
        G = gates[t, :n]
        i_g, f_g, o_g, g_g = G[:, :H], G[:, H : 2 * H], G[:, 2 * H : H3], G[:, H3:]
        c_new = c_all[t + 1, :n]
        c_prev = c_all[t, :n]
        dhn = dh[:n]
        dhn += dy[t, :n]
        dcn = dc[:n]
        D = d_gate[:n]
        co = cell_out[:n]
        tn = tmp[:n]
        if fast:
            np.tanh(c_new, out=co)
            np.multiply(dhn, co, out=D[:, 2 * H : H3])  # dL/do
            # dc += dh * o * (1 - tanh(c)^2)
            np.multiply(co, co, out=tn)
            np.subtract(1, tn, out=tn)
            tn *= o_g
            tn *= dhn
            dcn += tn
            np.multiply(dcn, g_g, out=D[:, :H])  # dL/di
            np.multiply(dcn, c_prev, out=D[:, H : 2 * H])  # dL/df
            np.multiply(dcn, i_g, out=D[:, H3:])  # dL/dg
            dcn *= f_g  # dL/dc_{t-1} along the conveyor belt
            # Pre-activation gradients, written over the gate values: sigmoid' = s(1-s), tanh' = 1-g^2.
            s = G[:, :H3]
            np.multiply(D[:, :H3], s, out=D[:, :H3])
            np.subtract(1, s, out=s)
            s *= D[:, :H3]
            np.multiply(g_g, g_g, out=tn)
            np.subtract(1, tn, out=tn)
            np.multiply(D[:, H3:], tn, out=g_g)
        else:
            act_c = cell.cell_activation
            co[...] = act_c(c_new)
            np.multiply(dhn, co, out=D[:, 2 * H : H3])
            dcn += dhn * o_g * act_c.grad(c_new, co)
            z = None if cache.z is None else cache.z[t, :n]
            # Output gate first: its peephole adds to dL/dc_t.
            D[:, 2 * H : H3] *= cell.output.activation.grad(
                None if z is None else z[:, 2 * H : H3], o_g
            )
            if po is not None:
                dcn += D[:, 2 * H : H3] * po
            np.multiply(dcn, g_g, out=D[:, :H])
            np.multiply(dcn, c_prev, out=D[:, H : 2 * H])
            np.multiply(dcn, i_g, out=D[:, H3:])
            D[:, :H] *= cell.input.activation.grad(None if z is None else z[:, :H], i_g)
            D[:, H : 2 * H] *= cell.forget.activation.grad(
                None if z is None else z[:, H : 2 * H], f_g
            )
            D[:, H3:] *= cell.candidate.activation.grad(None if z is None else z[:, H3:], g_g)
            dcn *= f_g
            if pf is not None:
                dcn += D[:, H : 2 * H] * pf
            if pi is not None:
                dcn += D[:, :H] * pi
            G[...] = D
        np.matmul(G, UT, out=dhn)  # dL/dh_{t-1}

    dZ = gates.reshape(T * B, 4 * H)
    if bs is not None:
        # Rows past a sequence's end hold stale gate values; their gradient is zero.
        mask = np.arange(B)[None, :] >= np.asarray(bs)[:, None]
        gates[mask] = 0
    dW = cache.x.reshape(T * B, I).T @ dZ
    dU = cache.h0.T @ gates[0]
    if T > 1:
        dU += cache.y[:-1].reshape((T - 1) * B, H).T @ gates[1:].reshape((T - 1) * B, 4 * H)
    db = dZ.sum(axis=0)
    dx = (dZ @ W.T).reshape(T, B, I)

    for k, name in enumerate(FUSED_ORDER):
        gate = getattr(cell, name)
        cols = slice(k * H, (k + 1) * H)
        gate.W.grad += dW[:, cols]
        gate.U.grad += dU[:, cols]
        gate.b.grad += db[cols]
    if pf is not None:
        cell.forget.p.grad += np.einsum("tbh,tbh->h", gates[:, :, H : 2 * H], c_all[:-1])
    if pi is not None:
        cell.input.p.grad += np.einsum("tbh,tbh->h", gates[:, :, :H], c_all[:-1])
    if po is not None:
        cell.output.p.grad += np.einsum("tbh,tbh->h", gates[:, :, 2 * H : H3], c_all[1:])
    return dx, LSTMState(h=dh, c=dc)
