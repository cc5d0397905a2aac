"""The fused kernel's large-size regimes, reached with real sizes (no monkeypatching).

Property tests draw tiny sizes, so these branches of :mod:`lstmkit.cells.lstm_fused` are
otherwise reached only with patched limits:

* the chunked input projection: stacked input weights over ``BATCHED_PROJECTION_MAX_BYTES``
  and a batch of at most ``CHUNKED_PROJECTION_MAX_BATCH``;
* chunked inference: more than ``INFERENCE_CHUNK`` steps;
* batches wider than ``CHUNKED_PROJECTION_MAX_BATCH``;
* backward in chunks of steps: more than ``GRADIENT_COLUMNS`` columns (steps x batch).

Each compares the fused path with the step path. The file also bounds the peak memory of a
long training pass against the training cache the guarantees page documents.
"""

import tracemalloc

import numpy as np
import pytest

from lstmkit import LSTMCell, LSTMState, Recurrent
from lstmkit.cells import lstm_fused

F64 = {"rtol": 1e-9, "atol": 1e-11}
F32 = {"rtol": 2e-4, "atol": 2e-5}


def _cell(I, H, dtype, **kw):
    cell = LSTMCell(I, H, rng=0, dtype=dtype, bias_initializer="normal", **kw)
    for gate in cell.gates.values():
        if gate.p is not None:
            gate.p.value[...] = np.random.default_rng(1).standard_normal(H).astype(dtype) * 0.3
    return cell


def _inputs(B, T, I, H, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    s0 = LSTMState(
        h=rng.standard_normal((B, H)).astype(dtype), c=rng.standard_normal((B, H)).astype(dtype)
    )
    return x, s0


def _inference(cell, x, s0, lengths, fused):
    y, final = Recurrent(cell, fused=fused)(x, s0, lengths)
    return {"y": y, "h": final.h, "c": final.c}


def _training(cell, x, s0, lengths, fused, reverse=False):
    rnn = Recurrent(cell, reverse=reverse, fused=fused)
    rng = np.random.default_rng(3)
    cell.zero_grad()
    y, final, cache = rnn.forward(x, s0, lengths)
    dy = rng.standard_normal(y.shape).astype(y.dtype)
    d_final = LSTMState(
        h=rng.standard_normal(final.h.shape).astype(y.dtype),
        c=rng.standard_normal(final.c.shape).astype(y.dtype),
    )
    dx, d0 = rnn.backward(cache, dy, d_final)
    out = {"y": y, "h": final.h, "c": final.c, "dx": dx, "dh0": d0.h, "dc0": d0.c}
    out.update({f"grad {n}": p.grad.copy() for n, p in cell.named_parameters().items()})
    return out


def _assert_same(fused, stepped, tol):
    assert fused.keys() == stepped.keys()
    for key in fused:
        assert np.isfinite(fused[key]).all(), key
        np.testing.assert_allclose(fused[key], stepped[key], err_msg=key, **tol)


def _wt_bytes(I, H, dtype):
    return 4 * H * I * np.dtype(dtype).itemsize


# -- the chunked input projection --------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_chunked_input_projection_with_large_input_weights(dtype):
    """I = H = 160: the stacked input weights take 400 KiB (float32) or 800 KiB (float64), over
    the batched-projection limit, and a batch of 6 is narrow, so the kernel projects several
    steps per product. Training (with gradients) and inference equal the step path."""
    B, T, I, H = 6, 120, 160, 160
    assert _wt_bytes(I, H, dtype) > lstm_fused.BATCHED_PROJECTION_MAX_BYTES
    assert B <= lstm_fused.CHUNKED_PROJECTION_MAX_BATCH
    assert T * B > lstm_fused.PROJECTION_COLUMNS  # several chunks of steps
    cell = _cell(I, H, dtype)
    x, s0 = _inputs(B, T, I, H, dtype)
    lengths = [T, 100, 1, 90, 0, 119]
    tol = F64 if dtype == np.float64 else F32

    lstm_fused.clear_pool()
    _assert_same(_training(cell, x, s0, lengths, None), _training(cell, x, s0, lengths, False), tol)
    steps = lstm_fused.PROJECTION_COLUMNS // B
    scratch = ((4 * H * steps * B,), np.dtype(dtype))
    assert scratch in lstm_fused._pool, "the chunked projection should have run"
    _assert_same(
        _inference(cell, x[:, :60], s0, None, None),
        _inference(cell, x[:, :60], s0, None, False),
        tol,
    )
    lstm_fused.clear_pool()


# -- chunked inference ---------------------------------------------------------------------------


@pytest.mark.parametrize("gate", ["sigmoid", "hard_sigmoid"])
def test_chunked_inference_over_more_than_one_chunk_of_steps(gate):
    """T = 600 runs inference in chunks of INFERENCE_CHUNK steps; lengths end before, inside
    and after the chunk boundaries. Equal to the step path, and to the training forward."""
    B, T, I, H = 5, 600, 12, 24
    assert T > 2 * lstm_fused.INFERENCE_CHUNK
    cell = _cell(I, H, np.float64, gate_activation=gate)
    x, s0 = _inputs(B, T, I, H, np.float64)
    for lengths in (None, [600, 257, 256, 3, 511]):
        fused = _inference(cell, x, s0, lengths, None)
        _assert_same(fused, _inference(cell, x, s0, lengths, False), F64)
        y, final, _ = Recurrent(cell).forward(x, s0, lengths)
        np.testing.assert_array_equal(fused["y"], y)
        np.testing.assert_array_equal(fused["h"], final.h)
        np.testing.assert_array_equal(fused["c"], final.c)


def test_chunked_inference_float32():
    B, T, I, H = 3, 300, 8, 16
    assert T > lstm_fused.INFERENCE_CHUNK
    cell = _cell(I, H, np.float32)
    x, s0 = _inputs(B, T, I, H, np.float32)
    _assert_same(
        _inference(cell, x, s0, [300, 100, 280], None),
        _inference(cell, x, s0, [300, 100, 280], False),
        F32,
    )


# -- wide batches ----------------------------------------------------------------------------------


def test_batch_wider_than_the_chunked_projection_limit():
    """B = 70 with the large input weights of the first test: the batched projection again.
    (Few steps: products this size run multi-threaded, slow on a busy 2-core machine.)"""
    B, T, I, H = 70, 5, 160, 160
    assert B > lstm_fused.CHUNKED_PROJECTION_MAX_BATCH
    assert _wt_bytes(I, H, np.float64) > lstm_fused.BATCHED_PROJECTION_MAX_BYTES
    cell = _cell(I, H, np.float64, peephole=True)
    x, s0 = _inputs(B, T, I, H, np.float64)
    lengths = np.random.default_rng(4).integers(0, T + 1, B)
    lengths[0] = T
    for lens in (None, lengths):
        _assert_same(
            _training(cell, x, s0, lens, None, reverse=lens is not None),
            _training(cell, x, s0, lens, False, reverse=lens is not None),
            F64,
        )


# -- backward in chunks of steps ---------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [{}, {"candidate_activation": "softplus"}, {"peephole": True}],
    ids=["default", "pre_activations", "peepholes"],  # softplus needs its pre-activations
)
def test_backward_in_chunks_of_steps(variant):
    """T * B = 2,400 columns: backward runs its loop and weight gradients in two chunks of
    steps (256 and 44), and a chunk boundary falls inside the ragged lengths."""
    B, T, I, H = 8, 300, 6, 12
    assert T * B > lstm_fused.GRADIENT_COLUMNS
    cell = _cell(I, H, np.float64, **variant)
    x, s0 = _inputs(B, T, I, H, np.float64)
    for lengths in (None, [300, 300, 290, 256, 255, 100, 44, 0]):
        for reverse in (False, True):
            _assert_same(
                _training(cell, x, s0, lengths, None, reverse),
                _training(cell, x, s0, lengths, False, reverse),
                F64,
            )


# -- memory of a long training pass -------------------------------------------------------------


@pytest.mark.parametrize("gate", ["sigmoid", "hard_sigmoid"])
def test_training_peak_stays_within_1_5_times_the_documented_cache(gate):
    """NumPy's peak allocation (tracemalloc) over forward and backward of 2,000 steps is at
    most 1.5x the training cache the guarantees page documents, (I + 6H) x itemsize per step
    and sequence: backward's scratch is bounded by a chunk of steps, not the sequence."""
    B, T, I, H = 8, 2000, 32, 64
    rnn = Recurrent(LSTMCell(I, H, rng=0, gate_activation=gate))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I))
    dy = rng.standard_normal((B, T, H))
    _, _, warm = rnn.forward(x[:1, :2])  # one-time allocations are not the pass's
    rnn.backward(warm, dy[:1, :2])
    del warm
    lstm_fused.clear_pool()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        _, _, cache = rnn.forward(x)
        rnn.backward(cache, dy)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del cache
    lstm_fused.clear_pool()
    documented = (I + 6 * H) * 8 * T * B
    assert peak / documented <= 1.5, f"peak {peak / documented:.2f}x the documented cache"
