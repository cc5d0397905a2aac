"""Runners: laws that tie Recurrent, Stacked and Bidirectional to stepping the cell by hand,
and their handling of lengths, reverse, unbatched input, empty sequences and bad input."""

import numpy as np
import pytest

from lstmkit import Bidirectional, BidirectionalState, LSTMCell, LSTMState, Recurrent, Stacked

RNG = np.random.default_rng(42)


def by_hand(cell, x, state=None):
    """Step the cell over an unbatched sequence (time, features) in a plain Python loop."""
    state = cell.initial_state(1) if state is None else state
    outs = []
    for t in range(x.shape[0]):
        state, y = cell.step(state, x[t][None])
        outs.append(y[0])
    return np.array(outs).reshape(x.shape[0], cell.hidden_size), state


@pytest.fixture(params=[True, False], ids=["fused", "unfused"])
def fused(request):
    return request.param


def test_runner_equals_stepping_by_hand(fused):
    cell = LSTMCell(3, 4, rng=0, bias_initializer="normal")
    x = RNG.standard_normal((2, 7, 3))
    h0 = LSTMState(RNG.standard_normal((2, 4)), RNG.standard_normal((2, 4)))
    y, final = Recurrent(cell, fused=fused)(x, h0)
    for b in range(2):
        ref_y, ref_state = by_hand(cell, x[b], LSTMState(h0.h[b : b + 1], h0.c[b : b + 1]))
        np.testing.assert_allclose(y[b], ref_y, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(final.c[b], ref_state.c[0], rtol=1e-12, atol=1e-14)


def test_batch_with_lengths_equals_each_sequence_alone(fused):
    cell = LSTMCell(3, 4, rng=1)
    x = RNG.standard_normal((4, 6, 3))
    lengths = np.array([3, 6, 0, 5])
    y, final = Recurrent(cell, fused=fused)(x, lengths=lengths)
    for b, L in enumerate(lengths):
        ref_y, ref_state = by_hand(cell, x[b, :L])
        np.testing.assert_allclose(y[b, :L], ref_y, rtol=1e-12, atol=1e-14)
        assert np.all(y[b, L:] == 0)
        np.testing.assert_allclose(final.h[b], ref_state.h[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(final.c[b], ref_state.c[0], rtol=1e-12, atol=1e-14)


def test_reverse_equals_flipped_run(fused):
    cell = LSTMCell(3, 4, rng=2)
    x = RNG.standard_normal((3, 5, 3))
    y, final = Recurrent(cell, reverse=True, fused=fused)(x)
    y_ref, final_ref = Recurrent(cell)(x[:, ::-1])
    np.testing.assert_allclose(y, y_ref[:, ::-1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(final.c, final_ref.c, rtol=1e-12, atol=1e-14)


def test_reverse_with_lengths_reverses_within_each_length(fused):
    cell = LSTMCell(2, 3, rng=3)
    x = RNG.standard_normal((3, 5, 2))
    lengths = [5, 2, 4]
    y, final = Recurrent(cell, reverse=True, fused=fused)(x, lengths=lengths)
    for b, L in enumerate(lengths):
        ref_y, ref_state = by_hand(cell, x[b, :L][::-1])
        np.testing.assert_allclose(y[b, :L], ref_y[::-1], rtol=1e-12, atol=1e-14)
        assert np.all(y[b, L:] == 0)
        np.testing.assert_allclose(final.h[b], ref_state.h[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("merge", ["concat", "sum", "mean", "mul", "none"])
def test_bidirectional_with_lengths_equals_per_sequence_runs(merge):
    fwd, bwd = LSTMCell(3, 4, rng=4), LSTMCell(3, 4, rng=5)
    bi = Bidirectional(fwd, bwd, merge=merge)
    x = RNG.standard_normal((3, 6, 3))
    lengths = [6, 1, 4]
    y, final = bi(x, lengths=lengths)
    for b, L in enumerate(lengths):
        yf, sf = by_hand(fwd, x[b, :L])
        yb, sb = by_hand(bwd, x[b, :L][::-1])
        yb = yb[::-1]
        if merge == "concat":
            expected = np.concatenate([yf, yb], axis=-1)
        elif merge == "sum":
            expected = yf + yb
        elif merge == "mean":
            expected = (yf + yb) / 2
        elif merge == "mul":
            expected = yf * yb
        else:
            expected = (yf, yb)
        if merge == "none":
            np.testing.assert_allclose(y[0][b, :L], expected[0], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(y[1][b, :L], expected[1], rtol=1e-12, atol=1e-14)
        else:
            np.testing.assert_allclose(y[b, :L], expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(final.forward.h[b], sf.h[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(final.backward.h[b], sb.h[0], rtol=1e-12, atol=1e-14)


def test_bidirectional_clone_has_independent_weights():
    bi = Bidirectional(LSTMCell(3, 4, rng=0), rng=1)
    f, b = bi.forward_layer.cell, bi.backward_layer.cell
    assert f is not b and f.forget.W is not b.forget.W
    assert not np.allclose(f.forget.W.value, b.forget.W.value)
    np.testing.assert_array_equal(b.forget.b.value, np.ones(4))  # forget bias re-applied


def test_one_layer_stack_equals_its_layer():
    layer = Recurrent(LSTMCell(3, 4, rng=6))
    x = RNG.standard_normal((2, 5, 3))
    y, (final,) = Stacked([layer])(x, lengths=[5, 3])
    y_ref, final_ref = layer(x, lengths=[5, 3])
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(final.c, final_ref.c)


def test_stack_equals_layers_in_sequence():
    a, b = Bidirectional(LSTMCell(3, 4, rng=7), rng=8), Recurrent(LSTMCell(8, 2, rng=9))
    x = RNG.standard_normal((2, 5, 3))
    y, finals = Stacked([a, b])(x, lengths=[2, 5])
    mid, fa = a(x, lengths=[2, 5])
    y_ref, fb = b(mid, lengths=[2, 5])
    np.testing.assert_array_equal(y, y_ref)
    assert isinstance(finals[0], BidirectionalState)
    np.testing.assert_array_equal(finals[1].h, fb.h)


def test_stack_dropout_only_in_training():
    stack = Stacked([LSTMCell(3, 4, rng=0), LSTMCell(4, 4, rng=1)], dropout=0.5, rng=0)
    x = RNG.standard_normal((2, 5, 3))
    y_inf, _ = stack(x)
    y_eval, _, _ = stack.forward(x, training=False)
    np.testing.assert_array_equal(y_inf, y_eval)
    y_train, _, _ = stack.forward(x, training=True)
    assert not np.allclose(y_train, y_inf)


def test_unbatched_input_like_the_seed():
    cell = LSTMCell(3, 5, rng=0)
    x = RNG.standard_normal((4, 3))
    y, final = Recurrent(cell)(x)
    assert y.shape == (4, 5) and final.h.shape == (5,)
    y_b, _ = Recurrent(cell)(x[None])
    np.testing.assert_array_equal(y, y_b[0])


def test_zero_length_time_axis_returns_empty_output_and_initial_state():
    cell = LSTMCell(3, 4, rng=0)
    h0 = LSTMState(RNG.standard_normal((2, 4)), RNG.standard_normal((2, 4)))
    y, final = Recurrent(cell)(np.zeros((2, 0, 3)), h0)
    assert y.shape == (2, 0, 4)
    np.testing.assert_array_equal(final.h, h0.h)
    rnn = Recurrent(cell)
    y, final, cache = rnn.forward(np.zeros((2, 0, 3)), h0)
    dx, d0 = rnn.backward(cache, np.zeros((2, 0, 4)), LSTMState(np.ones((2, 4)), np.ones((2, 4))))
    assert dx.shape == (2, 0, 3)
    np.testing.assert_array_equal(d0.h, np.ones((2, 4)))


def test_float32_runs_in_float32():
    rnn = Recurrent(LSTMCell(3, 4, rng=0, dtype=np.float32))
    y, final = rnn(RNG.standard_normal((2, 5, 3)))  # float64 input is converted once
    assert y.dtype == np.float32 and final.c.dtype == np.float32


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda r: r(np.zeros((2, 5, 4))),
            ValueError,
            r"x: expected 3 features on the last axis, received shape \(2, 5, 4\)",
        ),
        (lambda r: r(np.zeros(5)), ValueError, "x: expected shape"),
        (
            lambda r: r(np.zeros((2, 5, 3), dtype=complex)),
            TypeError,
            "x: expected a real numeric array",
        ),
        (
            lambda r: r(np.zeros((2, 5, 3)), lengths=[1, 2, 3]),
            ValueError,
            r"lengths: expected shape \(2,\), received \(3,\)",
        ),
        (
            lambda r: r(np.zeros((2, 5, 3)), lengths=[1, -1]),
            ValueError,
            "lengths: expected values >= 0",
        ),
        (
            lambda r: r(np.zeros((2, 5, 3)), lengths=[1, 6]),
            ValueError,
            "lengths: expected values <= the time axis length 5",
        ),
        (
            lambda r: r(np.zeros((2, 5, 3)), lengths=[1.5, 2]),
            TypeError,
            "lengths: expected integers",
        ),
        (
            lambda r: r(np.zeros((5, 3)), lengths=[5]),
            ValueError,
            "lengths: only meaningful for batched",
        ),
        (
            lambda r: r(np.zeros((2, 5, 3)), LSTMState(np.zeros((3, 4)), np.zeros((2, 4)))),
            ValueError,
            r"initial_state.h: expected shape \(2, 4\), received \(3, 4\)",
        ),
        (
            lambda r: r(np.zeros((2, 5, 3)), LSTMState(np.zeros((2, 5)), np.zeros((2, 5)))),
            ValueError,
            r"initial_state.h: expected shape \(2, 4\), received \(2, 5\)",
        ),
        (
            lambda r: r(np.zeros((2, 5, 3)), (np.zeros((2, 4)), np.zeros((2, 4)))),
            TypeError,
            "initial_state: expected LSTMState, received tuple",
        ),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(Recurrent(LSTMCell(3, 4, rng=0)))


def test_stack_sizes_must_chain():
    with pytest.raises(ValueError, match=r"layers\[1\]: expected input size 8"):
        Stacked([Bidirectional(LSTMCell(3, 4, rng=0)), LSTMCell(4, 4, rng=0)])
    with pytest.raises(ValueError, match="dropout: expected a rate in"):
        Stacked([LSTMCell(3, 4, rng=0)], dropout=1.0)
    with pytest.raises(ValueError, match="merge: expected one of"):
        Bidirectional(LSTMCell(3, 4, rng=0), merge="avg")


def test_backward_needs_a_training_cache():
    rnn = Recurrent(LSTMCell(3, 4, rng=0))
    with pytest.raises(TypeError, match="cache: expected the RecurrentCache"):
        rnn.backward(None, np.zeros((2, 5, 4)))
    _, _, cache = rnn.forward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"dy: expected shape \(2, 5, 4\), received \(2, 5, 3\)"):
        rnn.backward(cache, np.zeros((2, 5, 3)))


class ElmanCell:
    """A user's own cell, written without subclassing anything, to check the contract."""

    def __init__(self, n_in, n_h, rng):
        g = np.random.default_rng(rng)
        self.input_size, self.hidden_size, self.dtype = n_in, n_h, np.dtype(np.float64)
        self.W, self.U = g.standard_normal((n_in, n_h)), g.standard_normal((n_h, n_h)) * 0.3

    def initial_state(self, batch_size):
        from lstmkit import HiddenState

        return HiddenState(np.zeros((batch_size, self.hidden_size)))

    def step(self, state, x):
        from lstmkit import HiddenState

        h = np.tanh(x @ self.W + state.h @ self.U)
        return HiddenState(h), h


def test_user_cell_runs_in_every_runner():
    cell = ElmanCell(3, 4, 0)
    x = RNG.standard_normal((2, 5, 3))
    y, final = Recurrent(cell)(x, lengths=[5, 2])
    h = np.zeros(4)
    for t in range(2):
        h = np.tanh(x[1, t] @ cell.W + h @ cell.U)
    np.testing.assert_allclose(final.h[1], h, rtol=1e-12)
    y2, _ = Stacked([Bidirectional(cell, ElmanCell(3, 4, 1)), ElmanCell(8, 2, 2)])(
        x, lengths=[5, 2]
    )
    assert y2.shape == (2, 5, 2)


class Probe:
    """A user runner that passes its input through unchanged and records what it saw."""

    def __init__(self, size):
        self.input_size = self.output_size = size
        self.dtype = np.dtype(np.float64)
        self.seen = []

    def initial_state(self, batch_size=None):
        return None

    def __call__(self, x, initial_state=None, lengths=None):
        self.seen.append(x)
        return x, None

    def forward(self, x, initial_state=None, lengths=None, *, training=True, rng=None):
        self.seen.append(x)
        return x, None, None

    def backward(self, cache, dy=None, d_state=None):
        return dy, None


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_stack_dropout_is_inverted_and_preserves_the_mean(rate):
    B, T, F = 200, 10, 16
    x = np.random.default_rng(123).uniform(0.5, 1.5, size=(B, T, F))
    probe = Probe(F)
    stack = Stacked([Probe(F), probe], dropout=rate, rng=0)
    stack.forward(x, training=True)
    dropped = probe.seen[-1]
    keep = 1.0 - rate
    # Each entry is x * b / keep with b ~ Bernoulli(keep): mean x, variance x^2 * rate / keep,
    # so the mean difference over n entries has standard error sqrt(sum x^2 * rate / keep) / n.
    n = x.size
    diff = np.mean(dropped - x)
    diff_se = np.sqrt(np.sum(x**2) * rate / keep) / n
    assert abs(diff) < 4 * diff_se, (
        f"mean moved by {diff:.4g}, {diff / diff_se:.1f} standard errors"
    )
    # (without the 1 / keep rescaling the mean would move by -rate * mean(x): far outside that)
    assert rate * np.mean(x) > 40 * diff_se
    drop_se = np.sqrt(rate * keep / n)  # binomial standard error of the dropped fraction
    assert abs(np.mean(dropped == 0) - rate) < 4 * drop_se
    assert set(np.unique(np.round(dropped / x, 12))) == {0.0, round(1 / keep, 12)}
    stack.forward(x, training=False)
    assert probe.seen[-1] is x  # no dropout at all outside training
    stack(x)
    assert probe.seen[-1] is x


def test_stack_validates_lengths_once_and_equals_its_layers(monkeypatch):
    import lstmkit.sequence

    calls = []
    real = lstmkit.sequence.check_lengths

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(lstmkit.sequence, "check_lengths", spy)
    layers = [
        Bidirectional(LSTMCell(3, 4, rng=0), rng=1),
        Recurrent(LSTMCell(8, 4, rng=2, bias_initializer="normal"), reverse=True, fused=False),
        Recurrent(LSTMCell(4, 2, rng=3)),
    ]
    stack = Stacked(layers)
    x = RNG.standard_normal((4, 6, 3))
    lengths = np.array([2, 6, 0, 5])
    y, finals = stack(x, lengths=lengths)
    assert len(calls) == 1
    y_t, finals_t, cache = stack.forward(x, lengths=lengths)
    assert len(calls) == 2
    dy = RNG.standard_normal(y.shape)
    stack.zero_grad()
    dx, _ = stack.backward(cache, dy)
    grads = {n: p.grad.copy() for n, p in stack.named_parameters().items()}

    # The same numbers as each layer alone, each validating its own lengths.
    h, caches = x, []
    for k, layer in enumerate(layers):
        h_inf, final = layer(h, lengths=lengths)
        h, final_t, c = layer.forward(h, lengths=lengths)
        np.testing.assert_array_equal(h, h_inf)
        leaves = [final.forward, final.backward] if k == 0 else [final]
        mine = [finals[k].forward, finals[k].backward] if k == 0 else [finals[k]]
        for got, want in zip(mine, leaves):
            np.testing.assert_array_equal(got.h, want.h)
            np.testing.assert_array_equal(got.c, want.c)
        caches.append(c)
    np.testing.assert_array_equal(y, h)
    np.testing.assert_array_equal(y_t, h)
    assert len(calls) == 2 + 2 * len(layers)
    stack.zero_grad()
    g = dy
    for layer, c in zip(reversed(layers), reversed(caches)):
        g, _ = layer.backward(c, g)
    np.testing.assert_array_equal(dx, g)
    for name, p in stack.named_parameters().items():
        np.testing.assert_array_equal(p.grad, grads[name])


def test_sequential_and_bidirectional_validate_lengths_once(monkeypatch):
    import lstmkit.sequence
    from lstmkit import Dense, Sequential
    from lstmkit.layers import LastStep, MeanPool

    calls = []
    real = lstmkit.sequence.check_lengths
    monkeypatch.setattr(
        lstmkit.sequence, "check_lengths", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    x = RNG.standard_normal((3, 5, 3))
    lengths = [5, 1, 3]
    stack = Stacked([LSTMCell(3, 4, rng=0), LSTMCell(4, 4, rng=1), LSTMCell(4, 4, rng=2)])
    model = Sequential(stack, MeanPool(), Dense(4, 2, rng=3))
    y = model(x, lengths=lengths)
    y_t, _ = model.forward(x, lengths=lengths, training=False)
    assert len(calls) == 2
    mid, _ = stack(x, lengths=lengths)
    np.testing.assert_array_equal(y, model.layers[2](MeanPool()(mid, lengths)))
    np.testing.assert_array_equal(y_t, y)
    calls.clear()
    Bidirectional(LSTMCell(3, 4, rng=0), rng=1).forward(x, lengths=lengths)
    Sequential(Recurrent(LSTMCell(3, 4, rng=0)), LastStep())(x, lengths=lengths)
    assert len(calls) == 2


def test_stacked_runs_a_sequential_layer_as_a_runner():
    from lstmkit import Dense, Sequential
    from lstmkit.testing import check_gradients

    def build():
        return Sequential(LSTMCell(3, 4, rng=0), Dense(4, 4, "tanh", rng=1)), LSTMCell(4, 2, rng=2)

    first, second = build()
    stack = Stacked([first, second])
    inline = Sequential(*build())
    x = RNG.standard_normal((3, 5, 3))
    lengths = [5, 2, 0]
    y, (state_first, state_second) = stack(x, lengths=lengths)
    y_inline, (s1, s2) = inline(x, lengths=lengths, return_state=True)
    np.testing.assert_array_equal(y, y_inline)
    np.testing.assert_array_equal(state_first.c, s1.c)
    np.testing.assert_array_equal(state_second.h, s2.h)
    assert check_gradients(stack, x, lengths=lengths).passed(1e-6)
