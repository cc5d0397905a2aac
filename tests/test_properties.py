"""Property-based laws of the runners (Hypothesis).

Each property ties one way of computing a result to another, independent way of
computing the same thing: a padded batch to each sequence run alone, a reversed
runner to flipping the data, a runner to stepping the cell by hand, one long run
to two chunks with the state carried, the fused kernel to the step-by-step path.
Sizes are tiny (batch 1-4, time 0-8, input 1-4, hidden 1-5) so that many random
cases run in a few seconds.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmkit import Bidirectional, LSTMCell, Recurrent, Stacked, activations

# Activations whose values stay bounded, so no property is about overflow.
BOUNDED = ("sigmoid", "tanh", "hard_sigmoid", "softsign")
ALL_ACTIVATIONS = tuple(activations.available())

FAST = settings(max_examples=100, deadline=None)
SLOW = settings(max_examples=50, deadline=None)


def close(a, b, dtype, err_msg=""):
    """Two computations of the same numbers in ``dtype`` agree to rounding.

    The absolute part scales with the largest value compared: unbounded activations
    (linear, relu, ...) can produce entries of hundreds whose differences cancel to small
    ones, carrying the rounding error of the large ones.
    """
    b = np.asarray(b)
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    if np.dtype(dtype) == np.float32:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale, err_msg=err_msg)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * scale, err_msg=err_msg)


@st.composite
def cells(draw, *, bounded_only=False, dtype=None):
    """An LSTMCell with random sizes, activations, peepholes, dtype and weights."""
    dt = draw(st.sampled_from([np.float32, np.float64])) if dtype is None else dtype
    # Unbounded activations amplify rounding error step by step; float32 keeps the bounded
    # ones so that its 1e-5 tolerance stays meaningful (float64 checks them all at 1e-10).
    pool = BOUNDED if bounded_only or dt == np.float32 else ALL_ACTIVATIONS
    return LSTMCell(
        draw(st.integers(1, 4)),
        draw(st.integers(1, 5)),
        # Unbounded activations are drawn for the gates and the candidate only, where a
        # short tiny sequence cannot overflow; the cell activation stays bounded.
        cell_activation=draw(st.sampled_from(BOUNDED)),
        gate_activation=draw(st.sampled_from(pool)),
        candidate_activation=draw(st.sampled_from(pool)),
        peephole=draw(st.sampled_from([False, True, ("forget",), ("output",)])),
        bias_initializer="normal",
        peephole_initializer="normal",
        dtype=dt,
        rng=draw(st.integers(0, 2**32 - 1)),
    )


@st.composite
def batches(draw, input_size, dtype, *, min_time=0):
    """``(x, lengths)``: a padded batch (batch 1-4, time 0-8) and valid lengths."""
    batch = draw(st.integers(1, 4))
    time = draw(st.integers(min_time, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).standard_normal((batch, time, input_size)).astype(dtype)
    lengths = np.array(draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch)))
    return x, lengths


def random_state(template, seed):
    gen = np.random.default_rng(seed)
    return type(template)(
        h=gen.standard_normal(template.h.shape).astype(template.h.dtype),
        c=gen.standard_normal(template.c.shape).astype(template.c.dtype),
    )


def by_hand(cell, x, state):
    """Step ``cell`` over a batched sequence ``(batch, time, features)`` in a Python loop."""
    outs = []
    for t in range(x.shape[1]):
        state, y = cell.step(state, x[:, t])
        outs.append(y)
    y = np.stack(outs, axis=1) if outs else np.zeros((x.shape[0], 0, cell.hidden_size), cell.dtype)
    return y, state


def grads(module):
    return {name: p.grad.copy() for name, p in module.named_parameters().items()}


# -- batch independence --------------------------------------------------------------------


@FAST
@given(data=st.data(), fused=st.booleans(), reverse=st.booleans())
def test_padded_batch_equals_each_sequence_alone(data, fused, reverse):
    cell = data.draw(cells())
    x, lengths = data.draw(batches(cell.input_size, cell.dtype))
    rnn = Recurrent(cell, reverse=reverse, fused=fused)
    y, final = rnn(x, lengths=lengths)
    for b, n in enumerate(lengths):
        y_alone, final_alone = rnn(x[b : b + 1, :n])
        close(y[b, :n], y_alone[0], cell.dtype)
        assert np.all(y[b, n:] == 0), "outputs past a sequence's length must be zero"
        close(final.h[b], final_alone.h[0], cell.dtype)
        close(final.c[b], final_alone.c[0], cell.dtype)


@FAST
@given(data=st.data())
def test_unbatched_equals_batch_of_one(data):
    cell = data.draw(cells())
    x, _ = data.draw(batches(cell.input_size, cell.dtype))
    rnn = Recurrent(cell)
    y, final = rnn(x[0])
    y_b, final_b = rnn(x[:1])
    np.testing.assert_array_equal(y, y_b[0])
    np.testing.assert_array_equal(final.c, final_b.c[0])


# -- direction symmetry --------------------------------------------------------------------


@FAST
@given(data=st.data(), fused=st.booleans())
def test_reverse_equals_flipping_the_data(data, fused):
    cell = data.draw(cells())
    x, _ = data.draw(batches(cell.input_size, cell.dtype))
    y_rev, final_rev = Recurrent(cell, reverse=True, fused=fused)(x)
    y_fwd, final_fwd = Recurrent(cell, fused=fused)(x[:, ::-1])
    close(y_rev, y_fwd[:, ::-1], cell.dtype)  # flipping twice gives the original order back
    close(final_rev.h, final_fwd.h, cell.dtype)
    close(final_rev.c, final_fwd.c, cell.dtype)


@FAST
@given(data=st.data(), merge=st.sampled_from(["concat", "sum", "mean", "mul"]))
def test_bidirectional_with_lengths_equals_per_sequence_runs(data, merge):
    cell = data.draw(cells(bounded_only=True))
    x, lengths = data.draw(batches(cell.input_size, cell.dtype))
    bi = Bidirectional(cell, merge=merge, rng=data.draw(st.integers(0, 100)))
    y, final = bi(x, lengths=lengths)
    for b, n in enumerate(lengths):
        seq = x[b : b + 1, :n]
        y_alone, final_alone = bi(seq)
        close(y[b, :n], y_alone[0], cell.dtype)
        close(final.forward.c[b], final_alone.forward.c[0], cell.dtype)
        close(final.backward.h[b], final_alone.backward.h[0], cell.dtype)
        # Independent oracle for the backward direction: flip the unpadded sequence by hand.
        yb_ref, fb_ref = Recurrent(bi.backward_layer.cell)(seq[:, ::-1])
        close(final.backward.c[b], fb_ref.c[0], cell.dtype)
        yf_ref, ff_ref = Recurrent(cell)(seq)
        close(final.forward.h[b], ff_ref.h[0], cell.dtype)
        if merge == "concat":
            H = cell.hidden_size
            close(y[b, :n, :H], yf_ref[0], cell.dtype)
            close(y[b, :n, H:], yb_ref[0, ::-1], cell.dtype)
        assert np.all(y[b, n:] == 0)


# -- composition laws ----------------------------------------------------------------------


@FAST
@given(data=st.data(), fused=st.booleans())
def test_runner_equals_stepping_the_cell_by_hand(data, fused):
    cell = data.draw(cells())
    x, _ = data.draw(batches(cell.input_size, cell.dtype))
    state = random_state(cell.initial_state(x.shape[0]), data.draw(st.integers(0, 1000)))
    y, final = Recurrent(cell, fused=fused)(x, state)
    y_ref, final_ref = by_hand(cell, x, state)
    close(y, y_ref, cell.dtype)
    close(final.h, final_ref.h, cell.dtype)
    close(final.c, final_ref.c, cell.dtype)


@FAST
@given(data=st.data())
def test_fused_equals_unfused_forward_and_backward(data):
    cell = data.draw(cells())
    x, lengths = data.draw(batches(cell.input_size, cell.dtype))
    seed = data.draw(st.integers(0, 1000))
    state = random_state(cell.initial_state(x.shape[0]), seed)
    gen = np.random.default_rng(seed + 1)
    results = []
    for fused in (True, False):
        rnn = Recurrent(cell, fused=fused)
        cell.zero_grad()
        y, final, cache = rnn.forward(x, state, lengths)
        dy = gen.standard_normal(y.shape).astype(cell.dtype) if not results else results[0][4]
        d_final = random_state(final, seed + 2) if not results else results[0][5]
        dx, d_init = rnn.backward(cache, dy, d_final)
        results.append((y, final, dx, d_init, dy, d_final, grads(cell)))
    (y1, f1, dx1, di1, *_, g1), (y2, f2, dx2, di2, *_, g2) = results
    close(y1, y2, cell.dtype)
    close(f1.c, f2.c, cell.dtype)
    close(dx1, dx2, cell.dtype)
    close(di1.h, di2.h, cell.dtype)
    close(di1.c, di2.c, cell.dtype)
    for name in g1:
        close(g1[name], g2[name], cell.dtype, err_msg=name)


@FAST
@given(data=st.data())
def test_one_layer_stack_equals_its_layer(data):
    cell = data.draw(cells())
    x, lengths = data.draw(batches(cell.input_size, cell.dtype))
    rnn = Recurrent(cell, reverse=data.draw(st.booleans()))
    stack = Stacked([rnn], dropout=0.5, rng=0)  # dropout acts only between layers: none here
    y, final = rnn(x, lengths=lengths)
    y_s, (final_s,) = stack(x, lengths=lengths)
    np.testing.assert_array_equal(y, y_s)
    np.testing.assert_array_equal(final.c, final_s.c)
    # Training: the same output, input gradient and parameter gradients.
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(cell.dtype)
    cell.zero_grad()
    _, _, cache = rnn.forward(x, lengths=lengths)
    dx, _ = rnn.backward(cache, dy)
    g_layer = grads(cell)
    cell.zero_grad()
    y_t, _, cache_s = stack.forward(x, lengths=lengths, training=True)
    dx_s, _ = stack.backward(cache_s, dy)
    np.testing.assert_array_equal(y_t, y)
    np.testing.assert_array_equal(dx_s, dx)
    for name, g in grads(cell).items():
        np.testing.assert_array_equal(g, g_layer[name], err_msg=name)


@st.composite
def stacks(draw, dtype):
    """A Stacked of 1-3 layers, each a Recurrent or a Bidirectional, sizes chained."""
    n_layers = draw(st.integers(1, 3))
    size = draw(st.integers(1, 4))
    input_size = size
    layers = []
    for k in range(n_layers):
        hidden = draw(st.integers(1, 4))
        cell = LSTMCell(size, hidden, bias_initializer="normal", dtype=dtype, rng=k)
        if draw(st.booleans()):
            layer = Bidirectional(cell, merge=draw(st.sampled_from(["concat", "sum"])), rng=k + 10)
        else:
            layer = Recurrent(cell, reverse=draw(st.booleans()))
        layers.append(layer)
        size = layer.output_size
    return input_size, layers


@SLOW
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_stack_equals_layers_applied_one_after_another(data, dtype):
    input_size, layers = data.draw(stacks(dtype))
    x, lengths = data.draw(batches(input_size, dtype))
    y, finals = Stacked(layers)(x, lengths=lengths)
    h = x
    for layer, final in zip(layers, finals):
        h, ref_final = layer(h, lengths=lengths)
        ref = ref_final.forward if isinstance(layer, Bidirectional) else ref_final
        got = final.forward if isinstance(layer, Bidirectional) else final
        np.testing.assert_array_equal(got.c, ref.c)
    np.testing.assert_array_equal(y, h)
    # And batch independence holds for the whole stack.
    for b, n in enumerate(lengths):
        y_alone, _ = Stacked(layers)(x[b : b + 1, :n])
        close(y[b, :n], y_alone[0], dtype)


# -- state carry ---------------------------------------------------------------------------


@FAST
@given(data=st.data(), fused=st.booleans())
def test_two_chunks_with_carried_state_equal_one_run(data, fused):
    cell = data.draw(cells())
    x, _ = data.draw(batches(cell.input_size, cell.dtype))
    split = data.draw(st.integers(0, x.shape[1]))
    rnn = Recurrent(cell, fused=fused)
    y, final = rnn(x)
    y1, mid = rnn(x[:, :split])
    y2, end = rnn(x[:, split:], mid)
    close(np.concatenate([y1, y2], axis=1), y, cell.dtype)
    close(end.h, final.h, cell.dtype)
    close(end.c, final.c, cell.dtype)


@FAST
@given(data=st.data(), fused=st.booleans())
def test_chunked_backward_with_carried_gradient_equals_whole_backward(data, fused):
    # The runners never truncate backpropagation: chunk 1 receives chunk 2's d_state in full.
    cell = data.draw(cells(dtype=np.float64))
    x, _ = data.draw(batches(cell.input_size, cell.dtype))
    split = data.draw(st.integers(0, x.shape[1]))
    rnn = Recurrent(cell, fused=fused)
    gen = np.random.default_rng(data.draw(st.integers(0, 1000)))
    h0 = random_state(cell.initial_state(x.shape[0]), 7)
    dy = gen.standard_normal((x.shape[0], x.shape[1], cell.hidden_size))
    d_final = random_state(h0, 8)

    cell.zero_grad()
    _, _, cache = rnn.forward(x, h0)
    dx, d_h0 = rnn.backward(cache, dy, d_final)
    whole = grads(cell)

    cell.zero_grad()
    _, mid, cache1 = rnn.forward(x[:, :split], h0)
    _, _, cache2 = rnn.forward(x[:, split:], mid)
    dx2, d_mid = rnn.backward(cache2, dy[:, split:], d_final)
    dx1, d_h0_chunks = rnn.backward(cache1, dy[:, :split], d_mid)
    close(np.concatenate([dx1, dx2], axis=1), dx, cell.dtype)
    close(d_h0_chunks.h, d_h0.h, cell.dtype)
    close(d_h0_chunks.c, d_h0.c, cell.dtype)
    for name, g in grads(cell).items():
        close(g, whole[name], cell.dtype, err_msg=name)


# -- determinism ---------------------------------------------------------------------------


def global_state_unchanged(before):
    after = np.random.get_state()
    return before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
    sizes=st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(0, 8)),
    kind=st.sampled_from(["recurrent", "bidirectional", "stacked"]),
)
def test_same_seed_same_weights_and_outputs_and_no_global_random_state(seed, dtype, sizes, kind):
    n_in, n_h, time = sizes
    np.random.seed(seed % 1000)  # a known global state, so any use of it would show
    before = np.random.get_state()

    def build():
        cell = LSTMCell(n_in, n_h, dtype=dtype, rng=seed)
        if kind == "recurrent":
            return Recurrent(cell)
        if kind == "bidirectional":
            return Bidirectional(cell, rng=seed + 1)
        return Stacked([cell, LSTMCell(n_h, n_h, dtype=dtype, rng=seed + 2)], dropout=0.3, rng=seed)

    a, b = build(), build()
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)
    x = np.random.default_rng(seed).standard_normal((2, time, n_in))
    ya, _ = a(x)
    yb, _ = b(x)
    np.testing.assert_array_equal(ya, yb)
    # Training forward with dropout draws from the stack's own generator (or the rng argument).
    yta, _, ca = a.forward(x, training=True, rng=seed)
    ytb, _, cb = b.forward(x, training=True, rng=seed)
    np.testing.assert_array_equal(yta, ytb)
    a.backward(ca, np.ones_like(yta))
    b.backward(cb, np.ones_like(ytb))
    for name, p in a.named_parameters().items():
        np.testing.assert_array_equal(p.grad, b.named_parameters()[name].grad, err_msg=name)
    assert global_state_unchanged(before), "NumPy's global random state was touched"


@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_different_seeds_give_different_weights(seed):
    a = LSTMCell(2, 3, rng=seed).state_dict()
    b = LSTMCell(2, 3, rng=seed + 1).state_dict()
    assert any(not np.array_equal(a[name], b[name]) for name in a)


@FAST
@given(data=st.data(), fused=st.booleans())
def test_runner_never_writes_into_the_callers_arrays(data, fused):
    cell = data.draw(cells())
    x, lengths = data.draw(batches(cell.input_size, cell.dtype))
    state = random_state(cell.initial_state(x.shape[0]), 3)
    x_copy, h_copy, c_copy = x.copy(), state.h.copy(), state.c.copy()
    rnn = Recurrent(cell, fused=fused)
    y, final, cache = rnn.forward(x, state, lengths)
    dy = np.ones_like(y)
    d_final = random_state(final, 4)
    dy_copy, dh_copy = dy.copy(), d_final.h.copy()
    rnn.backward(cache, dy, d_final)
    rnn(x, state, lengths)
    for got, want in (
        (x, x_copy),
        (state.h, h_copy),
        (state.c, c_copy),
        (dy, dy_copy),
        (d_final.h, dh_copy),
    ):
        np.testing.assert_array_equal(got, want)
