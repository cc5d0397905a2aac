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
