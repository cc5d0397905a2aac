"""Fused whole-sequence forward and backward for :class:`~lstmkit.LSTMCell`.

Internal, not API: :meth:`LSTMCell.forward_sequence` and :meth:`LSTMCell.backward_sequence`
call :func:`forward` and :func:`backward` when a runner takes the fused path. The names here
are importable for tests, benchmarks and the docs, and may change in any release.

Same numbers as stepping :meth:`LSTMCell.step` (to float rounding), computed with fewer,
larger NumPy calls:

* The four gates' weights are stacked, in the order output, input, forget, candidate
  (:data:`FUSED_ORDER`), into ``WT (4H, I)``, ``UT (4H, H)`` and ``b (4H,)`` at the start
  of each call; the parameters stay owned by the gates. For a batch, ``UT`` is then copied
  to row-major order, from which OpenBLAS runs the per-step product 10-20% faster.
* Inside the kernel one step works **feature-major**: a step's gate values are a
  ``(4H, batch)`` block, one row per unit. Every gate is then a contiguous ``(H, batch)``
  slice, so each elementwise call runs NumPy's vectorised contiguous loop (a column slice
  of a batch-major ``(batch, 4H)`` array is strided, and NumPy runs strided 2-D operands
  several times slower). The recurrent product ``UT @ h`` also suits OpenBLAS better in
  this orientation for small and medium sizes.
* The input projection of the whole sequence is computed before the time loop: one batched
  product (a product per step) for small input weights or wide batches, else one product per
  chunk of steps (see :func:`_project`); the bias is added once.
* Per step: one product, then 8 in-place ufunc calls with the default activations. The
  sigmoid rows of ``WT``, ``UT`` and ``b`` are pre-scaled by 1/2 so one ``tanh`` over all
  ``4H`` rows yields every gate (``sigmoid(z) = (1 + tanh(z / 2)) / 2``), and one
  broadcast product forms ``[i * g, f * c]`` because ``[i, f]`` and ``[g, c_prev]`` are
  adjacent in the per-step block ``[o, i, f, g, c_prev]``.
* The time loops live in :mod:`lstmkit.cells.lstm_fused_steps`, which names the views each
  step works on (:class:`~lstmkit.cells.lstm_fused_steps.ForwardStep`,
  :class:`~lstmkit.cells.lstm_fused_steps.BackwardStep`) and runs the default activations;
  swapped activations and peepholes run the general loops of
  :mod:`lstmkit.cells.lstm_fused_general` over the same steps. Every call in the loops passes
  its output array positionally (``np.tanh(z, z)``, not ``out=z``): with blocks of a few
  hundred values a ufunc call is about 0.3 us, and keyword parsing adds about 50 ns of it.
* Backward runs in chunks of steps, last chunk first, each about :data:`GRADIENT_COLUMNS`
  columns (steps x batch): the chunk's time loop writes each step's pre-activation gradients
  over that step's gate values in the training cache, then one product each adds the chunk's
  share of ``dW``, ``dU`` and ``db`` and writes its rows of ``dX``, from unit-major copies of
  the chunk's ``dL/dz`` and hidden states. Backward's scratch is therefore bounded by a chunk,
  and a long pass peaks at the training cache plus ``dX`` and little more.

Variable lengths use the "packed" layout: sequences sorted longest first, so the active
sequences at step ``t`` are the first ``batch_sizes[t]`` columns. Padding (whatever ``x``
holds past a sequence's length, NaN and inf included) is replaced by zeros in a copy of ``x``
before anything reads it (:func:`_without_padding`), so it reaches no product: the projection
and the weight gradients run over whole steps, and ``0 * NaN`` would be NaN.

Training cache per time step and sequence: ``5H`` values (the four gates and the cell state
entering the step) plus the ``H`` hidden state (the output itself), and ``4H`` more
pre-activations only when a swapped activation needs its input for the derivative.
Inference keeps no per-step cache: only the input projection ``(T, 4H, B)`` (at most
:data:`INFERENCE_CHUNK` steps of it) and the output.

Buffer pool: the large per-call buffers (the training cache's gate block, the inference
projection, backward's per-chunk copies of ``dy``, ``dZ`` and the hidden states, the chunked
projection's scratch) are recycled between calls, because allocating several MB per call makes
the allocator hand the pages back to the OS and fault them in again every time, which costs as
much as the elementwise work of a small model. ``_take(shape, dtype)`` pops a pooled buffer of
that shape and dtype (its contents are stale unless ``zero``) or allocates one; ``_give``
returns buffers that nothing outside this module refers to any more. The pool keeps at most one
buffer per shape and dtype and :data:`POOL_BYTES` in all (256 MiB; 0 keeps nothing);
:func:`clear_pool` drops them. It is module state, shared by every cell in the process.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import activations
from lstmkit.cells.lstm_fused_general import backward_loop, forward_loop, gate_affine, needs_z
from lstmkit.cells.lstm_fused_steps import (
    backward_steps,
    fast_backward_loop,
    fast_forward_loop,
    forward_steps,
)
from lstmkit.state import LSTMState

__all__ = [
    "FUSED_ORDER",
    "FusedLSTMCache",
    "backward",
    "clear_pool",
    "forward",
    "fused_weights",
]

Array = NDArray[Any]

# Inference projects the inputs of at most this many steps at once (see _forward_in_chunks).
INFERENCE_CHUNK = 256

# How the input projection is computed (see _project): batched per step while the stacked
# input weights take at most this many bytes or the batch is wider than the second limit;
# otherwise one product per chunk of about PROJECTION_COLUMNS columns (steps x batch).
BATCHED_PROJECTION_MAX_BYTES = 256 << 10
CHUNKED_PROJECTION_MAX_BATCH = 64
PROJECTION_COLUMNS = 512

# Backward runs its time loop and forms the weight gradients a chunk of steps at a time, about
# this many columns (steps x batch) per chunk (at least one step), so its scratch is 6H values
# per column of a chunk rather than of the sequence. 1024 and 2048 timed the same at tiny to
# medium; the large benchmark configuration (H = 1024) was a few percent faster with 2048.
GRADIENT_COLUMNS = 2048

# Row blocks of the fused matrices, chosen so the three sigmoid gates are contiguous and
# [input, forget] sits right before [candidate, c_prev] in the per-step block.
FUSED_ORDER = ("output", "input", "forget", "candidate")


@attrs.define(eq=False)
class FusedLSTMCache:
    """Training cache of :func:`forward`; consumed by :func:`backward`."""

    x: Array  # (T, B, I) inputs, time-major; a zero-padded copy when the batch is padded
    y: Array  # (T + 1, H, B) hidden states, y[0] = h0
    z: (
        Array | None
    )  # (T + 1, 5H, B) per step [o, i, f, g, c_prev]; backward writes dL/dz over the gates
    pre: Array | None  # (T, 4H, B) pre-activations, only when an activation needs them
    batch_sizes: Array | None
    fast: bool
    consumed: bool = False


def _is_fast(cell: Any) -> bool:
    o, i, f = cell.output, cell.input, cell.forget
    return (
        o.activation is i.activation is f.activation is activations.sigmoid
        and cell.candidate.activation is cell.cell_activation is activations.tanh
        and o.p is None
        and i.p is None
        and f.p is None
    )


# The buffer pool (see the module docstring): at most one buffer per (shape, dtype) key,
# POOL_BYTES in all; _pooled_bytes counts what it holds.
POOL_BYTES = 256 << 20
_pool: dict[tuple[tuple[int, ...], np.dtype[Any]], Array] = {}
_pooled_bytes = 0


def _take(shape: tuple[int, ...], dtype: Any, zero: bool = False) -> Array:
    """A buffer of ``shape`` and ``dtype``: recycled if one is pooled, else new."""
    global _pooled_bytes
    buf = _pool.pop((shape, np.dtype(dtype)), None)
    if buf is None:
        return (np.zeros if zero else np.empty)(shape, dtype)
    _pooled_bytes -= buf.nbytes
    if zero:
        buf.fill(0)
    return buf


def _give(*buffers: Array) -> None:
    """Return buffers no longer referenced by anything outside this module to the pool."""
    global _pooled_bytes
    for buf in buffers:
        key = (buf.shape, buf.dtype)
        if key not in _pool and _pooled_bytes + buf.nbytes <= POOL_BYTES:
            _pool[key] = buf
            _pooled_bytes += buf.nbytes


def clear_pool() -> None:
    """Drop every recycled buffer (the memory goes back to the allocator)."""
    global _pooled_bytes
    _pool.clear()
    _pooled_bytes = 0


def fused_weights(cell: Any, scaled: bool) -> tuple[Array, Array, Array]:
    """Stacked ``WT (4H, I)``, ``UT (4H, H)``, ``b (4H,)`` in :data:`FUSED_ORDER`.

    With ``scaled``, the three sigmoid blocks are multiplied by 1/2 (exact in floating point).
    ``WT`` and ``UT`` come out column-major: ``np.concatenate`` of the gates' transposed
    matrices is a plain copy that way, where a row-major result would need a transposing
    copy, several times slower.
    """
    gates = (cell.output, cell.input, cell.forget, cell.candidate)
    WT = np.concatenate([g.W.value.T for g in gates])
    UT = np.concatenate([g.U.value.T for g in gates])
    b = np.concatenate([g.b.value for g in gates])
    if scaled:
        # One broadcast product per matrix: its rows are strided in column-major order, so
        # scaling the slice [:3H] alone would be a slow strided operation.
        scale = _row_scale(cell.hidden_size, b.dtype)
        np.multiply(WT, scale, WT)
        np.multiply(UT, scale, UT)
        np.multiply(b, scale[:, 0], b)
    return WT, UT, b


_ROW_SCALES: dict[tuple[int, np.dtype[Any]], Array] = {}


def _row_scale(H: int, dtype: np.dtype[Any]) -> Array:
    """Column ``(4H, 1)``: 1/2 for the three sigmoid blocks, 1 for the candidate block."""
    key = (H, dtype)
    scale = _ROW_SCALES.get(key)
    if scale is None:
        scale = np.ones((4 * H, 1), dtype)
        scale[: 3 * H] = 0.5
        scale.flags.writeable = False
        _ROW_SCALES[key] = scale
    return scale


def _project(WT: Array, b: Array, x: Array, out: Array) -> None:
    """The input projection of a whole sequence: ``out[t] = WT @ x[t] + b`` for every step.

    Two ways, picked by a rule measured on the benchmark machine (docs/performance.md):

    * One batched product, a ``(4H, I) @ (I, B)`` product per step. OpenBLAS packs ``WT`` on
      every one of them; that costs little while ``WT`` is small.
    * With a larger ``WT`` and at most :data:`CHUNKED_PROJECTION_MAX_BATCH` sequences, one
      product over :data:`PROJECTION_COLUMNS` columns (several steps) at a time into a
      scratch block, then the bias added while copying into ``out``'s per-step layout. Packing
      ``WT`` once per chunk wins more than the copy costs (medium: 12.1 -> 9.9 ms; a batch of
      8 with I = H = 256: 13.5 -> 4.8 ms), but not for wide batches, where each per-step
      product is already efficient.
    """
    T, B, I = x.shape
    H4 = WT.shape[0]
    if WT.nbytes <= BATCHED_PROJECTION_MAX_BYTES or B > CHUNKED_PROJECTION_MAX_BATCH:
        np.matmul(WT, x.transpose(0, 2, 1), out=out)
        out += b[:, None]
        return
    steps = max(1, min(T, PROJECTION_COLUMNS // max(B, 1)))
    buf = _take((H4 * steps * B,), WT.dtype)
    for t0 in range(0, T, steps):
        t1 = min(T, t0 + steps)
        n = (t1 - t0) * B
        chunk = buf[: H4 * n].reshape(H4, n)
        np.dot(WT, x[t0:t1].reshape(n, I).T, out=chunk)
        np.add(chunk.reshape(H4, t1 - t0, B).transpose(1, 0, 2), b[:, None], out=out[t0:t1])
    _give(buf)


def forward(
    cell: Any, x: Array, state: LSTMState, batch_sizes: Array | None, training: bool
) -> tuple[Array, LSTMState, FusedLSTMCache | None]:
    """Run an :class:`~lstmkit.LSTMCell` over a time-major sequence with fused gates.

    Parameters
    ----------
    cell : LSTMCell
    x : ndarray, shape (time, batch, input_size)
        In the cell's dtype.
    state : LSTMState
        Initial ``h`` and ``c``, shape (batch, hidden_size).
    batch_sizes : ndarray of int, shape (time,), or None
        Active sequences per step (sorted longest first); None means all.
    training : bool
        Keep the cache :func:`backward` needs.

    Returns
    -------
    y : ndarray, shape (time, batch, hidden_size)
        Outputs (a transposed view of the kernel's feature-major buffer), zero past each length.
    final : LSTMState
        State at each sequence's last valid step.
    cache : FusedLSTMCache or None
        None unless ``training``.
    """
    T, B, _ = x.shape
    H = cell.hidden_size
    if not training and T > INFERENCE_CHUNK:
        y_chunked, final_chunked = _forward_in_chunks(cell, x, state, batch_sizes)
        return y_chunked, final_chunked, None
    x = _without_padding(x, batch_sizes)
    H4 = 4 * H
    dt = cell.dtype
    fast = _is_fast(cell)
    WT, UT, b = fused_weights(cell, scaled=fast)
    if not fast:
        # Fold the affine maps of prescaled built-in activations (hard_sigmoid, sigmoid) into
        # the weights, as the fast path does for its sigmoids.
        scales, offsets = gate_affine(cell, FUSED_ORDER)
        if any(a != 1.0 for a in scales):
            col = np.repeat(np.array(scales, b.dtype), cell.hidden_size)
            np.multiply(WT, col[:, None], WT)
            np.multiply(UT, col[:, None], UT)
            np.multiply(b, col, b)
            np.add(b, np.repeat(np.array(offsets, b.dtype), cell.hidden_size), b)
    bs = batch_sizes
    # dot is faster for tiny products but needs a contiguous out (not so with packed batches).
    mm = np.dot if bs is None else np.matmul
    buffers = []
    if B > 1:
        # OpenBLAS runs the per-step product 10-20% faster from a row-major UT (medium:
        # 186 against 232 us); the transposing copy costs a few steps' worth once per call.
        # A single sequence (a matrix-vector product) is faster column-major.
        UT = np.ascontiguousarray(UT)

    # Hidden states, feature-major, with y[0] = h0 so step t reads y[t] and writes y[t + 1].
    Y = (np.empty if bs is None else np.zeros)((T + 1, H, B), dt)
    Y[0] = state.h.T
    keep_pre = training and not fast and needs_z(cell)
    if training:
        # The gate block [o, i, f, g, c_prev] of every step, c_prev of step 0 being c0. Zeros
        # with packed batches: inactive columns must hold finite values for the masked sums.
        Z = _take((T + 1, 5 * H, B), dt, zero=bs is not None)
        Z[0, H4:] = state.c.T
        _project(WT, b, x, Z[:T, :H4])  # each step adds its recurrent term in place
        projection = None
    else:
        projection = _take((T, H4, B), dt)
        buffers.append(projection)
        _project(WT, b, x, projection)
        S = np.zeros((5 * H, B), dt)  # the one step block; c is carried in place
        S[H4:] = state.c.T
    zpre = np.empty((T, H4, B), dt) if keep_pre else None  # filled step by step

    views = forward_steps(Y, Z if training else S, projection, zpre, bs, general=not fast)
    if fast:
        fast_forward_loop(views, mm, UT)
    else:
        forward_loop(cell, views, mm, UT, keep_pre, prescaled=True)

    if bs is None:
        h_final = np.array(Y[T].T, copy=True)
        c_final = np.array((Z[T, H4:] if training else S[H4:]).T, copy=True)
    else:
        lengths = _lengths_from_batch_sizes(bs, B)
        rows = np.arange(B)
        h_final = Y[lengths, :, rows]
        c_final = Z[lengths, H4:, rows] if training else np.array(S[H4:].T, copy=True)
    final = LSTMState(h=h_final, c=c_final)
    y = Y[1:].transpose(0, 2, 1)  # (T, B, H) view
    _give(*buffers)  # nothing returned refers to them
    if not training:
        return y, final, None
    cache = FusedLSTMCache(x=x, y=Y, z=Z, pre=zpre, batch_sizes=bs, fast=fast)
    return y, final, cache


def _forward_in_chunks(
    cell: Any, x: Array, state: LSTMState, batch_sizes: Array | None
) -> tuple[Array, LSTMState]:
    """Inference over a long sequence, :data:`INFERENCE_CHUNK` steps at a time.

    The input projection is the only buffer that grows with time in inference; projecting
    chunk by chunk bounds it, so the memory of a long run is the output plus one chunk.
    Each step's numbers are the same as in one call (the projection is a per-step product).
    """
    T, B, _ = x.shape
    y = np.empty((T, B, cell.hidden_size), cell.dtype)
    for t0 in range(0, T, INFERENCE_CHUNK):
        t1 = min(t0 + INFERENCE_CHUNK, T)
        chunk_sizes = None if batch_sizes is None else batch_sizes[t0:t1]
        y[t0:t1], state, _ = forward(cell, x[t0:t1], state, chunk_sizes, False)
    return y, state


def _without_padding(x: Array, batch_sizes: Array | None) -> Array:
    """``x``, or a copy of it with zeros past each sequence's length when the batch is padded.

    Padded positions may hold anything, NaN and inf included. The kernel projects whole steps
    (padded columns too) and forms the weight gradients over all ``T * B`` columns, where a
    padded column's zero gradient times a NaN input would still be NaN; zeroing the padding
    once keeps every product finite. Copying costs one pass over ``x``, and only for padded
    batches; the training cache then holds the copy, never the caller's array.
    """
    T, B = x.shape[0], x.shape[1]
    if batch_sizes is None or T == 0 or int(batch_sizes[-1]) >= B:
        return x
    out = np.array(x, copy=True, order="C")
    # Sorted longest first: sequence b is padded from its length on.
    for b, length in enumerate(_lengths_from_batch_sizes(batch_sizes, B).tolist()):
        if length < T:
            out[length:, b] = 0
    return out


def _lengths_from_batch_sizes(batch_sizes: Array, batch: int) -> Array:
    # batch_sizes[t] = number of sequences with length > t, sequences sorted longest first.
    counts = np.asarray(batch_sizes)
    return (counts[:, None] > np.arange(batch)[None, :]).sum(axis=0).astype(np.intp)


def backward(
    cell: Any, cache: FusedLSTMCache, dy: Array, d_final: LSTMState
) -> tuple[Array, LSTMState]:
    """Back-propagate :func:`forward` (consumes ``cache``); accumulates into every ``grad``.

    Parameters
    ----------
    cell : LSTMCell
        The cell that ran the forward pass.
    cache : FusedLSTMCache
        From a training :func:`forward`; usable once (its gate values become dL/dz).
    dy : ndarray, shape (time, batch, hidden_size)
        Gradient of the loss with respect to the outputs.
    d_final : LSTMState
        Gradient with respect to the final state, shape (batch, hidden_size).

    Returns
    -------
    dx : ndarray, shape (time, batch, input_size)
    d_initial : LSTMState
        Gradient with respect to the initial ``h`` and ``c``.
    """
    if not isinstance(cache, FusedLSTMCache):
        raise TypeError(
            f"cache: expected the cache of a training forward pass, received {type(cache).__name__}"
        )
    if cache.consumed:
        raise ValueError("cache: this training cache was already used by a backward pass")
    T, B, I = cache.x.shape
    H = cell.hidden_size
    H4 = 4 * H
    dt = cell.dtype
    bs = cache.batch_sizes
    WT, UT, _ = fused_weights(cell, scaled=False)
    # dh = U @ dZ; a contiguous U suits OpenBLAS better except for a single sequence.
    U = UT.T if B == 1 else np.ascontiguousarray(UT.T)
    mm = np.dot if bs is None else np.matmul
    Z = cache.z
    assert Z is not None  # only a consumed cache (refused above) has given its block back
    cache.consumed = True

    # The time loop and the weight gradients run a chunk of steps at a time, last chunk first,
    # so backward's scratch (dy in the kernel's layout, unit-major copies of dL/dz and of the
    # hidden states) is bounded by the chunk, not the sequence (see GRADIENT_COLUMNS).
    K = min(T, max(1, GRADIENT_COLUMNS // max(B, 1)))  # steps per chunk
    DY = _take((K, H, B), dt)
    dZ_buf = _take((H4 * K * B,), dt)
    Hp_buf = _take((H * K * B,), dt)
    dx = np.empty((T, B, I), dt)
    dx_rows = dx.reshape(T * B, I)
    dWT, dUT, db = np.empty((H4, I), dt), np.empty((H4, H), dt), np.empty(H4, dt)
    if T > K:  # each earlier chunk's products, added to the sums
        dWT_k, dUT_k, db_k = _take((H4, I), dt), _take((H4, H), dt), np.empty(H4, dt)
    first = True
    dhR = np.array(d_final.h.T, dtype=dt, copy=True, order="C")  # dL/dh from later steps
    dc = np.array(d_final.c.T, dtype=dt, copy=True, order="C")
    loop = fast_backward_loop if cache.fast else partial(backward_loop, cell)
    x, pre, Y = cache.x, cache.pre, cache.y
    sizes = None if bs is None else [int(n) for n in bs]
    for t0 in range(((T - 1) // K) * K, -1, -K):
        t1 = min(T, t0 + K)
        steps, n = t1 - t0, (t1 - t0) * B
        dy_k = DY[:steps]
        np.copyto(dy_k, dy[t0:t1].transpose(0, 2, 1))  # (steps, H, B)
        bs_k = None if bs is None else bs[t0:t1]
        pre_k = None if pre is None else pre[t0:t1]
        loop(backward_steps(dy_k, Z[t0 : t1 + 1], pre_k, dhR, dc, bs_k, not cache.fast), mm, U)
        if sizes is not None:
            # Columns past a sequence's end hold the forward's values; their gradient is zero.
            for t in range(t0, t1):
                if sizes[t] < B:
                    Z[t, :H4, sizes[t] :] = 0
        # Unit-major copies (k, rows, B) -> (rows, k*B) move whole columns of B values; cheaper
        # than an elementwise transpose to batch-major.
        dZ = dZ_buf[: H4 * n].reshape(H4, n)
        np.copyto(dZ.reshape(H4, steps, B), Z[t0:t1, :H4].transpose(1, 0, 2))
        Hp = Hp_buf[: H * n].reshape(H, n)
        np.copyto(Hp.reshape(H, steps, B), Y[t0:t1].transpose(1, 0, 2))
        x_k = np.asarray(x[t0:t1].reshape(n, I), dt)
        if first:  # the last chunk of steps: the products go straight into the sums
            np.dot(dZ, x_k, out=dWT)
            np.dot(dZ, Hp.T, out=dUT)
            np.sum(dZ, axis=1, out=db)
            first = False
        else:
            dWT += np.dot(dZ, x_k, out=dWT_k)
            dUT += np.dot(dZ, Hp.T, out=dUT_k)
            db += np.sum(dZ, axis=1, out=db_k)
        np.dot(dZ.T, WT, out=dx_rows[t0 * B : t1 * B])

    for k, name in enumerate(FUSED_ORDER):
        gate = getattr(cell, name)
        rows = slice(k * H, (k + 1) * H)
        gate.W.grad += dWT[rows].T
        gate.U.grad += dUT[rows].T
        gate.b.grad += db[rows]
    gz = Z[:T]
    for name, k, c in (
        ("output", 0, Z[1:, H4:]),
        ("input", 1, gz[:, H4:]),
        ("forget", 2, gz[:, H4:]),
    ):
        p = getattr(cell, name).p
        if p is not None:
            p.grad += np.einsum("thb,thb->h", gz[:, k * H : (k + 1) * H], c)
    cache.z = None  # the gate block is dead now: recycle it with the scratch copies
    _give(Z, DY, dZ_buf, Hp_buf)
    if T > K:
        _give(dWT_k, dUT_k)
    return dx, LSTMState(h=np.array(dhR.T, copy=True), c=np.array(dc.T, copy=True))
