"""Gate and LSTMCell: construction, defaults, swapping, and the step against a plain-Python reference."""

import math

import numpy as np
import pytest

from lstmkit import Gate, LSTMCell, LSTMState, activations, initializers


def reference_step(cell, x, h, c):
    """Slow scalar-by-scalar LSTM step written from the equations (not from lstmkit's code)."""
    B, H = h.shape

    def affine(gate, b, j):
        z = gate.b.value[j]
        z += sum(x[b, k] * gate.W.value[k, j] for k in range(x.shape[1]))
        z += sum(h[b, k] * gate.U.value[k, j] for k in range(H))
        return z

    def sig(z):
        return 1 / (1 + math.exp(-z))

    h_new, c_new = np.zeros((B, H)), np.zeros((B, H))
    for b in range(B):
        for j in range(H):
            f = sig(affine(cell.forget, b, j))
            i = sig(affine(cell.input, b, j))
            g = math.tanh(affine(cell.candidate, b, j))
            o = sig(affine(cell.output, b, j))
            c_new[b, j] = f * c[b, j] + i * g
            h_new[b, j] = o * math.tanh(c_new[b, j])
    return h_new, c_new


def test_step_matches_reference():
    rng = np.random.default_rng(0)
    cell = LSTMCell(3, 4, rng=1, bias_initializer="normal")
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    state, y = cell.step(LSTMState(h, c), x)
    h_ref, c_ref = reference_step(cell, x, h, c)
    np.testing.assert_allclose(state.h, h_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(state.c, c_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(y, state.h)


def test_defaults():
    cell = LSTMCell(3, 4, rng=0)
    assert [g.activation.name for g in cell.gates.values()] == [
        "sigmoid",
        "sigmoid",
        "tanh",
        "sigmoid",
    ]
    assert cell.cell_activation.name == "tanh"
    assert cell.dtype == np.float64
    np.testing.assert_array_equal(cell.forget.b.value, np.ones(4))
    for name in ("input", "candidate", "output"):
        np.testing.assert_array_equal(cell.gates[name].b.value, np.zeros(4))
    u = cell.input.U.value
    np.testing.assert_allclose(u.T @ u, np.eye(4), atol=1e-12)  # orthogonal recurrent weights
    assert np.abs(cell.input.W.value).max() <= math.sqrt(6 / 7)  # Glorot-uniform bound


def test_gates_are_drawn_independently_and_reproducibly():
    a, b = LSTMCell(3, 4, rng=5), LSTMCell(3, 4, rng=5)
    np.testing.assert_array_equal(a.forget.W.value, b.forget.W.value)
    assert not np.allclose(a.forget.W.value, a.input.W.value)


def test_swapping_at_construction_and_in_place():
    cell = LSTMCell(
        3,
        4,
        gate_activation="hard_sigmoid",
        candidate_activation="softsign",
        cell_activation=activations.relu,
        recurrent_initializer="glorot_normal",
        rng=0,
    )
    assert cell.forget.activation is activations.hard_sigmoid
    assert cell.candidate.activation.name == "softsign"
    assert cell.cell_activation.name == "relu"
    cell.output.activation = "tanh"
    assert cell.output.activation is activations.tanh
    with pytest.raises(ValueError, match="unknown activation"):
        cell.output.activation = "nope"


def test_custom_gate_object_and_initializer_object():
    gate = Gate(
        3, 4, activation="hard_sigmoid", kernel_initializer=initializers.Constant(0.1), rng=0
    )
    cell = LSTMCell(3, 4, forget=gate, rng=0)
    assert cell.forget is gate
    np.testing.assert_array_equal(cell.forget.W.value, np.full((3, 4), 0.1))


def test_float32_cell_keeps_float32():
    cell = LSTMCell(3, 4, dtype=np.float32, rng=0)
    state, y = cell.step(cell.initial_state(2), np.ones((2, 3)))
    assert y.dtype == np.float32 and state.c.dtype == np.float32
    assert all(p.dtype == np.float32 for p in cell.parameters())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(input_size=0, hidden_size=4), ValueError, "input_size: expected a positive integer"),
        (
            dict(input_size=3, hidden_size=4, dtype=np.int32),
            TypeError,
            "dtype: expected float32 or float64",
        ),
        (
            dict(input_size=3, hidden_size=4, gate_activation="sigmod"),
            ValueError,
            "gate_activation: unknown",
        ),
        (
            dict(input_size=3, hidden_size=4, kernel_initializer="glorot"),
            ValueError,
            "unknown initializer",
        ),
        (
            dict(input_size=3, hidden_size=4, forget=Gate(2, 4)),
            ValueError,
            "forget: expected a gate of sizes",
        ),
        (dict(input_size=3, hidden_size=4, peephole={"candidate"}), ValueError, "peephole: gates"),
    ],
)
def test_bad_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        LSTMCell(rng=0, **kwargs)


def test_step_bad_input():
    cell = LSTMCell(3, 4, rng=0)
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 3\), received \(2, 5\)"):
        cell.step(cell.initial_state(2), np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"state.h: expected shape \(2, 4\), received \(3, 4\)"):
        cell.step(LSTMState(np.zeros((3, 4)), np.zeros((2, 4))), np.ones((2, 3)))


def test_gate_set_weights_is_all_or_nothing():
    gate = Gate(2, 3, rng=0)
    before = gate.W.value.copy()
    with pytest.raises(ValueError, match=r"U: expected shape \(3, 3\), received \(2, 3\)"):
        gate.set_weights(W=np.zeros((2, 3)), U=np.zeros((2, 3)))
    np.testing.assert_array_equal(gate.W.value, before)
    with pytest.raises(TypeError, match="W: expected dtype float64, received float32"):
        gate.set_weights(W=np.zeros((2, 3), np.float32))
