"""Numerical safety: long sequences, saturating inputs, cell-state growth, clipping, memory.

The suite turns NumPy floating-point errors (overflow, invalid, divide) into exceptions
(tests/conftest.py), so "runs without error" below also means "without an overflow or
NaN being produced along the way"; the tests still check finiteness explicitly.
"""

import math
import tracemalloc

import numpy as np
import pytest

from lstmkit import LSTMCell, LSTMState, Recurrent, activations
from lstmkit.activations import Activation
from lstmkit.cells import lstm_fused

DTYPES = [np.float32, np.float64]
BOUNDED = ("sigmoid", "tanh", "hard_sigmoid", "softsign")
# The built-in activations (module attributes), not any a test may have registered.
BUILTINS = sorted(
    name
    for name in activations.available()
    if isinstance(getattr(activations, name, None), Activation)
)

# Mathematical limits at z = -1e4 and z = +1e4: (f(-1e4), f(1e4), f'(-1e4), f'(1e4)).
# Each is what the exact function rounds to in float32 and float64, computed below from
# Python's math module where the value is not a plain limit.
LIMITS = {
    "sigmoid": (0.0, 1.0, 0.0, 0.0),
    "tanh": (-1.0, 1.0, 0.0, 0.0),
    "hard_sigmoid": (0.0, 1.0, 0.0, 0.0),
    "relu": (0.0, 1e4, 0.0, 1.0),
    "linear": (-1e4, 1e4, 1.0, 1.0),
    "softsign": (-1e4 / (1 + 1e4), 1e4 / (1 + 1e4), 1 / (1 + 1e4) ** 2, 1 / (1 + 1e4) ** 2),
    "softplus": (math.log1p(math.exp(-1e4)), 1e4 + math.log1p(math.exp(-1e4)), 0.0, 1.0),
    "elu": (math.expm1(-1e4), 1e4, 0.0, 1.0),
}


def test_every_builtin_activation_has_its_limits_listed():
    assert set(BUILTINS) == set(LIMITS), "add the saturation limits of a new built-in here"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(LIMITS))
def test_activation_values_and_derivatives_at_plus_minus_1e4(name, dtype):
    act = activations.get(name)
    z = np.array([-1e4, 1e4], dtype=dtype)
    y = act(z)
    d = act.grad(z, y)
    assert y.dtype == dtype and d.dtype == dtype
    lo, hi, d_lo, d_hi = (dtype(v) for v in LIMITS[name])
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(y, [lo, hi], rtol=rtol, atol=0)
    # Derivatives computed from the output (softsign: (1 - |y|)^2) lose relative precision
    # to cancellation where they are tiny; their absolute error stays at rounding level.
    np.testing.assert_allclose(d, [d_lo, d_hi], rtol=rtol, atol=4 * np.finfo(dtype).eps)
    if name in ("sigmoid", "tanh", "hard_sigmoid"):
        # Exact limits, not merely close ones: a saturated gate is exactly open or shut.
        assert y[0] == lo and y[1] == hi and d[0] == 0 and d[1] == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BUILTINS)
def test_activations_are_finite_and_monotone_over_the_whole_range(name, dtype):
    z = np.concatenate([-np.logspace(4, -8, 400), [0.0], np.logspace(-8, 4, 400)]).astype(dtype)
    act = activations.get(name)
    y = act(z)
    d = act.grad(z, y)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(d))
    # Every built-in is non-decreasing, up to one or two units of rounding (softplus in
    # float32 wobbles by an ulp near 0, where log1p(exp(-|z|)) meets max(z, 0)).
    assert np.all(np.diff(y) >= -2 * np.spacing(np.abs(y[1:])))
    assert np.all(d >= 0)


# -- long sequences --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_ten_thousand_steps_forward_and_backward_stay_finite(dtype):
    T = 10_000
    cell = LSTMCell(3, 4, rng=0, dtype=dtype)
    x = (3 * np.random.default_rng(1).standard_normal((2, T, 3))).astype(dtype)
    rnn = Recurrent(cell)
    y, final, cache = rnn.forward(x)
    dx, d_init = rnn.backward(
        cache, np.ones_like(y), LSTMState(np.ones((2, 4), dtype), np.ones((2, 4), dtype))
    )
    for a in (y, final.h, final.c, dx, d_init.h, d_init.c, *(p.grad for p in cell.parameters())):
        assert a.dtype == dtype
        assert np.all(np.isfinite(a))
    # The step-by-step path gives the same long run (an independent computation of it).
    y_loop, final_loop = Recurrent(cell, fused=False)(x)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}
    np.testing.assert_allclose(y_loop, y, **tol)
    np.testing.assert_allclose(final_loop.c, final.c, **tol)


def test_float32_long_run_tracks_float64():
    # Rounding does not accumulate: a float32 run of 10,000 steps stays near the float64 one.
    T = 10_000
    x = np.random.default_rng(2).standard_normal((1, T, 2))
    c64 = LSTMCell(2, 3, rng=5, dtype=np.float64)
    c32 = LSTMCell(2, 3, rng=5, dtype=np.float32)
    c32.load_state_dict({k: v.astype(np.float32) for k, v in c64.state_dict().items()})
    y64, _ = Recurrent(c64)(x)
    y32, _ = Recurrent(c32)(x.astype(np.float32))
    assert np.max(np.abs(y32 - y64)) < 1e-5


# -- saturating inputs -----------------------------------------------------------------------


def saturating(shape, dtype, seed=0):
    return (1e4 * np.random.default_rng(seed).choice([-1.0, 1.0], size=shape)).astype(dtype)


def forward_backward(cell, x, fused=True):
    rnn = Recurrent(cell, fused=fused)
    cell.zero_grad()
    y, final, cache = rnn.forward(x)
    dx, d_init = rnn.backward(cache, np.ones_like(y), final)
    return [y, final.h, final.c, dx, d_init.h, d_init.c, *(p.grad for p in cell.parameters())]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gate", BOUNDED)
@pytest.mark.parametrize("candidate", BOUNDED)
def test_saturating_inputs_give_finite_outputs_and_gradients(gate, candidate, dtype):
    # With bounded activations, +-1e4 inputs over 30 steps stay finite, in both paths.
    for cell_act, peephole in (("tanh", False), ("softsign", True), ("hard_sigmoid", False)):
        cell = LSTMCell(
            2,
            3,
            cell_activation=cell_act,
            gate_activation=gate,
            candidate_activation=candidate,
            peephole=peephole,
            peephole_initializer="normal",
            dtype=dtype,
            rng=3,
        )
        x = saturating((2, 30, 2), dtype)
        for fused in (True, False):
            for a in forward_backward(cell, x, fused):
                assert a.dtype == dtype
                assert np.all(np.isfinite(a)), (cell_act, peephole, fused)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("role", ["gate_activation", "candidate_activation", "cell_activation"])
@pytest.mark.parametrize("name", BUILTINS)
def test_any_activation_in_any_role_is_finite_for_one_saturated_step(name, role, dtype):
    # Unbounded activations (relu, linear, elu, softplus) can grow a state without limit
    # over many steps, which is the model's mathematics; one step from a zero state is finite.
    cell = LSTMCell(2, 3, dtype=dtype, rng=4, **{role: name})
    for a in forward_backward(cell, saturating((2, 1, 2), dtype)):
        assert np.all(np.isfinite(a))


# -- cell-state growth ------------------------------------------------------------------------


def test_cell_state_grows_at_most_one_per_step():
    # c_t = f*c_{t-1} + i*g with f, i in [0, 1] and g in [-1, 1], so |c_t| <= |c_0| + t,
    # whatever the inputs; checked at every step with strong inputs and forget bias 1.
    cell = LSTMCell(3, 4, forget_bias=1.0, rng=6)
    state = LSTMState(np.zeros((2, 4)), np.full((2, 4), 0.5))
    x = 10 * np.random.default_rng(7).standard_normal((2, 2000, 3))
    worst = 0.0
    for t in range(x.shape[1]):
        state, _ = cell.step(state, x[:, t])
        assert np.max(np.abs(state.c)) <= 0.5 + (t + 1)
        worst = max(worst, float(np.max(np.abs(state.c)) / (0.5 + t + 1)))
    assert worst <= 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_state_growth_bound_is_reached_and_stays_finite(dtype):
    # Forget, input and candidate gates saturated open: c_t = c_{t-1} + 1, exactly t after
    # t steps (the bound is tight), and h = o * tanh(c) stays finite at 1.
    T = 10_000
    cell = LSTMCell(1, 2, dtype=dtype, rng=8)
    for name in ("forget", "input", "candidate", "output"):
        gate = cell.gates[name]
        gate.set_weights(
            W=np.zeros_like(gate.W.value),
            U=np.zeros_like(gate.U.value),
            b=np.full_like(gate.b.value, 1e4),
        )
    y, final = Recurrent(cell)(np.zeros((1, T, 1), dtype))
    np.testing.assert_array_equal(final.c, np.full((1, 2), T, dtype))
    np.testing.assert_array_equal(y[0, -1], np.ones(2, dtype))


def test_default_forget_bias_keeps_cell_state_small_on_random_inputs():
    # With the default initialisation (forget bias 1) and unit-normal inputs the state
    # stays far below the t bound over 10,000 steps (measured; see docs/guarantees.md).
    T = 10_000
    cell = LSTMCell(4, 8, rng=9)
    rnn = Recurrent(cell)
    x = np.random.default_rng(10).standard_normal((2, T, 4))
    state, peak = None, 0.0
    for start in range(0, T, 1000):  # chunks with the state carried equal one run
        _, state = rnn(x[:, start : start + 1000], state)
        peak = max(peak, float(np.max(np.abs(state.c))))
    assert 0 < peak < 20


# -- gradient clipping ------------------------------------------------------------------------


def exploding_setup():
    # Linear candidate and cell activations with gates held open make h_t ~ (1 + U) h_{t-1}:
    # gradients grow geometrically with the sequence length.
    cell = LSTMCell(
        2,
        3,
        candidate_activation="linear",
        cell_activation="linear",
        forget_bias=3.0,
        recurrent_initializer="orthogonal",
        rng=11,
    )
    cell.candidate.set_weights(U=1.5 * np.eye(3))
    x = np.random.default_rng(12).standard_normal((2, 25, 2))
    target = np.random.default_rng(13).standard_normal((2, 25, 3))
    return Recurrent(cell), x, target


def loss_and_grad(rnn, x, target):
    rnn.zero_grad()
    y, _, cache = rnn.forward(x)
    diff = y - target
    rnn.backward(cache, diff / diff.size)
    return 0.5 * float(np.sum(diff * diff)) / diff.size


def grad_norm(rnn):
    return math.sqrt(sum(float(np.sum(p.grad * p.grad)) for p in rnn.parameters()))


def train(clip, steps=30, lr=0.1):
    """Plain SGD on the exploding setup; ``clip(rnn)`` (or None) runs after each backward."""
    rnn, x, target = exploding_setup()
    losses, norms = [], []
    for _ in range(steps):
        losses.append(loss_and_grad(rnn, x, target))
        norms.append(grad_norm(rnn))
        if clip is not None:
            clip(rnn)
        for p in rnn.parameters():
            p.value -= lr * p.grad
            assert np.all(np.isfinite(p.value))
    return losses, norms


def test_without_clipping_the_exploding_setup_derails_training():
    # The control experiment for the clipping test: the first gradient is huge, plain SGD
    # jumps the weights so far that every gate saturates and the loss ends above its start.
    losses, norms = train(None)
    assert norms[0] > 1e6
    assert losses[-1] > losses[0]


def test_gradient_clipping_keeps_training_finite_on_an_exploding_setup():
    from lstmkit import optimizers

    max_norm = 1.0

    def clip(rnn):
        before = [p.grad.copy() for p in rnn.parameters()]
        total = grad_norm(rnn)
        returned = optimizers.clip_grad_norm(rnn.parameters(), max_norm)
        np.testing.assert_allclose(returned, total, rtol=1e-12)  # the norm before clipping
        clipped = grad_norm(rnn)
        assert clipped <= max_norm * (1 + 1e-9)
        # Oracle: the same vector, scaled by one factor, which is max_norm / total when the
        # gradient was longer (up to a relative 1e-6, as PyTorch adds 1e-6 to the norm).
        scale = clipped / total
        if total > max_norm:
            np.testing.assert_allclose(scale, max_norm / total, rtol=1e-6)
        else:
            assert scale == 1.0
        for g0, p in zip(before, rnn.parameters()):
            np.testing.assert_allclose(p.grad, g0 * scale, rtol=1e-9, atol=1e-300)

    losses, norms = train(clip)
    assert norms[0] > 1e6
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] / 100


# -- memory -----------------------------------------------------------------------------------


def traced(fn):
    """``(peak, retained)`` bytes allocated by ``fn()`` while its result is alive."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak - base, retained - base


I_MEM, H_MEM = 8, 16


def memory(B, T, training):
    rnn = Recurrent(LSTMCell(I_MEM, H_MEM, rng=0))
    x = np.random.default_rng(0).standard_normal((B, T, I_MEM))
    if training:
        return traced(lambda: rnn.forward(x))
    return traced(lambda: rnn(x))


def test_training_memory_grows_linearly_in_time_and_batch():
    p_t, r_t = memory(2, 1000, True)
    p_2t, r_2t = memory(2, 2000, True)
    p_2b, r_2b = memory(4, 1000, True)
    for small, big in ((p_t, p_2t), (r_t, r_2t), (p_t, p_2b), (r_t, r_2b)):
        assert 1.8 < big / small < 2.2
    # Bytes kept per step and sequence: at most the inputs, 4 gate values, the cell state,
    # the output and 4 pre-activations (those only for activations that need them).
    per_step = r_2t / (2 * 2000)
    assert per_step <= (I_MEM + 10 * H_MEM) * 8


def test_inference_keeps_no_per_step_cache():
    B, T = 2, 4000
    memory(B, 300, False)  # warm-up: the first call in a process allocates one-time caches
    lstm_fused.clear_pool()
    peak_i, kept_i = memory(B, T, False)
    # The fused kernel recycles its projection buffers for the next call: one of a full chunk
    # of steps and one of the shorter last chunk.
    recycled = lstm_fused._pooled_bytes
    assert recycled <= 2 * lstm_fused.INFERENCE_CHUNK * 4 * H_MEM * B * 8
    lstm_fused.clear_pool()
    peak_t, kept_t = memory(B, T, True)
    y_and_state = B * T * H_MEM * 8 + 2 * B * H_MEM * 8
    # After an inference call only the outputs and the final state remain ...
    assert kept_i - recycled < 1.05 * y_and_state
    # ... while a training call keeps several times more (its cache) ...
    assert kept_t > 4 * kept_i
    # ... and inference projects its inputs a chunk of steps at a time, so its peak is the
    # outputs plus the time-major copy of the inputs, a fraction of training's.
    assert peak_i < 0.35 * peak_t
