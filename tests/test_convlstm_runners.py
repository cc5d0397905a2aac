"""ConvLSTM in the unchanged runners: property laws (Hypothesis), user components, bad input.

Each law ties the runner's result to an independent computation: a padded batch with lengths
to each sequence run alone, ``reverse`` to flipping the data, ``Bidirectional`` to its two
directions run separately, the fused path to the step path.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmkit import (
    Activation,
    Bidirectional,
    ConvGate,
    ConvLSTMCell,
    LSTMState,
    Recurrent,
    Stacked,
    VariationalDropout,
    Zoneout,
)
from lstmkit.testing import check_cell_gradients

FEW = settings(max_examples=12, deadline=None)


@st.composite
def conv_cells(draw):
    rank = draw(st.integers(1, 2))
    spatial = tuple(draw(st.integers(3, 5)) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    return ConvLSTMCell(
        (*spatial, draw(st.integers(1, 2))),
        draw(st.integers(1, 3)),
        kernel,
        padding=draw(st.sampled_from(["same", "valid"])),
        bias_initializer="normal",
        rng=draw(st.integers(0, 2**31)),
    )


def _inputs(cell, batch, time, seed):
    return np.random.default_rng(seed).standard_normal((batch, time, *cell.input_shape))


@FEW
@given(conv_cells(), st.lists(st.integers(0, 4), min_size=1, max_size=3), st.booleans())
def test_padded_batch_equals_each_sequence_alone(cell, lengths, reverse):
    x = _inputs(cell, len(lengths), 4, 0)
    runner = Recurrent(cell, reverse=reverse)
    y, final = runner(x, lengths=lengths)
    for b, n in enumerate(lengths):
        y_b, final_b = runner(x[b : b + 1, :n])
        np.testing.assert_allclose(y[b, :n], y_b[0], rtol=1e-12, atol=1e-12)
        assert not np.any(y[b, n:])
        np.testing.assert_allclose(final.h[b], final_b.h[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(final.c[b], final_b.c[0], rtol=1e-12, atol=1e-12)


@FEW
@given(conv_cells(), st.integers(1, 4))
def test_reverse_equals_flipped_data(cell, time):
    x = _inputs(cell, 2, time, 1)
    y_rev, final_rev = Recurrent(cell, reverse=True)(x)
    y_fwd, final_fwd = Recurrent(cell)(x[:, ::-1])
    np.testing.assert_allclose(y_rev, y_fwd[:, ::-1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(final_rev.c, final_fwd.c, rtol=1e-12, atol=1e-12)


@FEW
@given(conv_cells(), st.lists(st.integers(0, 3), min_size=2, max_size=2))
def test_fused_equals_steps_forward_and_backward(cell, lengths):
    x = _inputs(cell, 2, 3, 2)
    results = []
    for fused in (None, False):
        runner = Recurrent(cell, fused=fused)
        cell.zero_grad()
        y, final, cache = runner.forward(x, lengths=lengths)
        dy = np.random.default_rng(3).standard_normal(y.shape)
        dx, d0 = runner.backward(cache, dy, LSTMState(h=final.h * 0 + 1.0, c=final.c * 0 - 1.0))
        grads = [p.grad.copy() for p in cell.parameters()]
        results.append((y, final.h, final.c, dx, d0.h, d0.c, *grads))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_bidirectional_is_its_two_directions():
    cell = ConvLSTMCell((5, 4, 2), 3, (3, 3), rng=0)
    bi = Bidirectional(cell, merge="concat", rng=1)
    x = _inputs(cell, 2, 3, 4)
    y, state = bi(x, lengths=[3, 2])
    yf, _ = Recurrent(bi.forward_layer.cell)(x, lengths=[3, 2])
    yb, _ = Recurrent(bi.backward_layer.cell, reverse=True)(x, lengths=[3, 2])
    assert y.shape == (2, 3, 5, 4, 6)
    np.testing.assert_allclose(y, np.concatenate([yf, yb], axis=-1), atol=1e-13)
    assert state.forward.h.shape == (2, 5, 4, 3)


def test_stack_unbatched_and_zero_length():
    model = Stacked([ConvLSTMCell((6, 1), 4, 3, rng=0), ConvLSTMCell((6, 4), 2, 3, rng=1)])
    x = np.random.default_rng(0).standard_normal((3, 6, 1))  # (time, length, channels)
    y, states = model(x)
    y_batched, _ = model(x[None])
    assert y.shape == (3, 6, 2) and states[1].h.shape == (6, 2)
    np.testing.assert_allclose(y, y_batched[0], atol=1e-13)
    y0, final0 = model(np.zeros((2, 0, 6, 1)))
    assert y0.shape == (2, 0, 6, 2) and not np.any(final0[0].c)


# -- user components ------------------------------------------------------------------------------


class DoubledGate(ConvGate):
    """A user gate: twice the pre-activation of a ConvGate (with its own backward)."""

    def preactivation(self, x, h):
        return 2.0 * super().preactivation(x, h)

    def backward(self, dy, cache):
        return super().backward(2.0 * dy, cache)


def test_user_gate_subclass_is_stepped_and_honoured():
    base = ConvLSTMCell((5, 2), 2, 3, rng=0)
    doubled = DoubledGate(2, 2, (3,), rng=0)
    doubled.set_weights(base.input.W.value, base.input.U.value, base.input.b.value)
    cell = ConvLSTMCell((5, 2), 2, 3, input=doubled, rng=0)
    reason = Recurrent(cell).cell.cannot_fuse()
    assert reason is not None and "DoubledGate" in reason
    assert not Recurrent(cell).uses_fused()
    with pytest.raises(TypeError, match="DoubledGate"):
        Recurrent(cell, fused=True)
    x = _inputs(cell, 2, 3, 0)
    assert not np.allclose(Recurrent(cell)(x)[0], Recurrent(base)(x)[0])
    report = check_cell_gradients(cell, time=3)
    assert report.passed(1e-6), str(report)


def test_cell_subclass_is_stepped():
    class MyConvLSTM(ConvLSTMCell):
        pass

    cell = MyConvLSTM((4, 1), 2, 3, rng=0)
    assert "subclass" in cell.cannot_fuse()
    assert not Recurrent(cell).uses_fused()


def test_user_activation_is_honoured_on_the_fused_path():
    def soft(z):
        return z / (1.0 + np.abs(z))

    act = Activation("my_softsign", soft, lambda z: 1.0 / (1.0 + np.abs(z)) ** 2)
    cell = ConvLSTMCell((4, 3, 1), 2, 2, candidate_activation=act, cell_activation=act, rng=0)
    assert Recurrent(cell).uses_fused()
    x = _inputs(cell, 1, 2, 0)
    y, _ = Recurrent(cell)(x)
    y_tanh, _ = Recurrent(ConvLSTMCell((4, 3, 1), 2, 2, rng=0))(x)
    assert not np.allclose(y, y_tanh)
    report = check_cell_gradients(cell, time=2)  # fused, compared with steps and differences
    assert report.passed(1e-6), str(report)


# -- bad input ------------------------------------------------------------------------------------


def test_bad_inputs_name_the_argument():
    cell = ConvLSTMCell((5, 4, 2), 3, 3, rng=0)
    runner = Recurrent(cell)
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, time, 5, 4, 2\)"):
        runner(np.zeros((2, 3, 5, 5, 2)))
    with pytest.raises(ValueError, match="initial_state.h: expected shape"):
        runner(np.zeros((2, 3, 5, 4, 2)), LSTMState(h=np.zeros((2, 5, 4)), c=np.zeros((2, 5, 4))))
    with pytest.raises(ValueError, match="x: expected shape"):
        cell.step(cell.initial_state(1), np.zeros((1, 5, 4)))
    with pytest.raises(ValueError, match="kernel_size"):
        ConvLSTMCell((5, 4, 2), 3, (3, 3, 3))
    with pytest.raises(ValueError, match="kernel_size: expected one size per spatial axis"):
        ConvGate(2, 3, 3)
    with pytest.raises(ValueError, match="padding"):
        ConvLSTMCell((5, 2), 3, padding="causal")
    with pytest.raises(ValueError, match="smaller than the kernel"):
        ConvLSTMCell((2, 2), 3, 3, padding="valid")
    with pytest.raises(ValueError, match="input_shape"):
        ConvLSTMCell(5, 3)
    with pytest.raises(ValueError, match="input: expected a ConvGate with"):
        ConvLSTMCell((5, 2), 3, input=ConvGate(2, 3, (5,)))
    with pytest.raises(TypeError, match="feature maps"):
        VariationalDropout(cell, input_rate=0.1)
    with pytest.raises(TypeError, match="feature maps"):
        Zoneout(cell, h_rate=0.1)


def test_misuse_of_a_step_is_refused_and_adds_nothing():
    cell = ConvLSTMCell((4, 3, 2), 2, 3, dtype=np.float32, rng=0)
    x = np.ones((2, 4, 3, 2), np.float32)
    state, y, cache = cell.step_train(cell.initial_state(2), x)
    cell.step_backward(cache, cell.initial_state(2), np.ones_like(y))
    once = [p.grad.copy() for p in cell.parameters()]
    with pytest.raises(ValueError, match="already back-propagated"):
        cell.step_backward(cache, cell.initial_state(2), np.ones_like(y))
    for grad, before in zip([p.grad for p in cell.parameters()], once, strict=True):
        np.testing.assert_array_equal(grad, before)
    zero = cell.initial_state(2)
    with pytest.raises(TypeError, match=r"^state\.h: expected real numbers"):
        cell.step(LSTMState(h=zero.h.astype(np.complex64), c=zero.c), x)
    with pytest.raises(TypeError, match="masked arrays"):
        cell.step(zero, np.ma.masked_array(x))
    wide = LSTMState(h=zero.h.astype(np.float64) + 0.1, c=zero.c.astype(np.float64))
    new, y = cell.step(wide, x)  # a float64 state is cast to the cell's float32
    assert y.dtype == np.float32 and new.c.dtype == np.float32
