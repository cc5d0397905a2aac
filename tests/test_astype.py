"""``Module.astype``: a converted deep copy, checked against the float64 original (outputs agree
to float32 rounding), the original untouched, and user components converted or refused."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from lstmkit import (
    Bidirectional,
    Dense,
    Gate,
    GRUCell,
    LSTMCell,
    Recurrent,
    Sequential,
    Stacked,
)
from lstmkit.initializers import as_rng
from lstmkit.layers import LastStep, MeanPool
from lstmkit.module import Module, Parameter, component
from lstmkit.state import HiddenState

X = np.random.default_rng(7).standard_normal((3, 6, 3))
LENGTHS = [6, 4, 1]


def _model() -> Sequential:
    return Sequential(
        Stacked(
            [
                Bidirectional(LSTMCell(3, 4, peephole=True, rng=0), merge="sum", rng=1),
                GRUCell(4, 5, rng=2),
            ]
        ),
        MeanPool(),
        Dense(5, 2, "tanh", rng=3),
    )


@pytest.mark.parametrize("target", [np.float32, "float32", np.dtype(np.float32)])
def test_copy_in_float32_computes_what_the_original_does(target):
    model = _model()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    model32 = model.astype(target)
    assert type(model32) is Sequential and model32 is not model
    assert all(p.value.dtype == np.float32 for p in model32.parameters())
    assert all(p.grad.dtype == np.float32 for p in model32.parameters())
    y32 = model32(X.astype(np.float32), lengths=LENGTHS)
    y64 = model(X, lengths=LENGTHS)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)
    # The original is untouched: same dtype, same weights, not shared with the copy.
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) and after[k].dtype == np.float64 for k in after)
    shared = {id(p.value) for p in model.parameters()} & {id(p.value) for p in model32.parameters()}
    assert not shared
    # And back: float32 weights widened exactly.
    back = model32.astype(np.float64)
    for name, value in back.state_dict().items():
        assert value.dtype == np.float64
        assert np.array_equal(value, model32.state_dict()[name].astype(np.float64))


def test_training_the_copy_leaves_the_original_alone():
    model = Sequential(Recurrent(LSTMCell(3, 4, rng=0)), LastStep(), Dense(4, 1, rng=1))
    copy32 = model.astype(np.float32)
    y, cache = copy32.forward(X.astype(np.float32), lengths=LENGTHS)
    copy32.backward(cache, np.ones_like(y))
    assert all(p.grad.dtype == np.float32 and np.any(p.grad) for p in copy32.parameters()[:1])
    assert not any(np.any(p.grad) for p in model.parameters())


def test_shared_parameters_stay_shared():
    cell = LSTMCell(3, 4, rng=0)
    model = Bidirectional(Recurrent(cell), Recurrent(cell, reverse=True))
    copy32 = model.astype(np.float32)
    assert copy32.forward_layer.cell is copy32.backward_layer.cell
    assert copy32.forward_layer.cell.forget.W.value.dtype == np.float32


def test_bad_dtype_and_bad_model():
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, received int32"):
        LSTMCell(3, 4, rng=0).astype(np.int32)
    from lstmkit.module import converted

    with pytest.raises(TypeError, match="model: expected an lstmkit Module to convert"):
        converted([1], np.float32)


@component
class ScaledGate(Gate):
    """A user gate: the pre-activation times a learned per-unit scale ``s``."""

    s: Parameter = attrs.field(init=False)
    temperature: float = attrs.field(default=2.0, kw_only=True)

    def __attrs_post_init__(self):
        gen = as_rng(self.rng)
        self.rng = gen
        super().__attrs_post_init__()
        self.s = Parameter((1 + 0.5 * gen.standard_normal(self.hidden_size)).astype(self.dtype))

    def preactivation(self, x, h, c=None):
        return super().preactivation(x, h, c) * self.s.value / self.temperature


def test_user_gate_subclass_is_converted_with_its_own_parameter():
    gates = {
        name: ScaledGate(3, 4, activation="tanh" if name == "candidate" else "sigmoid", rng=k)
        for k, name in enumerate(("forget", "input", "candidate", "output"))
    }
    cell = LSTMCell(3, 4, **gates, rng=9)
    cell32 = cell.astype(np.float32)
    assert type(cell32.forget) is ScaledGate and cell32.forget.temperature == 2.0
    assert cell32.forget.s.value.dtype == np.float32
    y32 = Recurrent(cell32)(X.astype(np.float32))[0]
    np.testing.assert_allclose(y32, Recurrent(cell)(X)[0], rtol=1e-5, atol=1e-6)
    assert y32.dtype == np.float32


@component
class ElmanCell(Module):
    """A user cell: ``h = tanh(x @ W + h_prev @ U)``, honouring its ``dtype`` field."""

    input_size: int
    hidden_size: int
    dtype: np.dtype = attrs.field(default=np.dtype(np.float64), converter=np.dtype)
    W: Parameter = attrs.field(init=False)
    U: Parameter = attrs.field(init=False)

    def __attrs_post_init__(self):
        rng = np.random.default_rng(0)
        self.W = Parameter(rng.normal(0, 0.3, (self.input_size, self.hidden_size)))
        self.U = Parameter(rng.normal(0, 0.3, (self.hidden_size, self.hidden_size)))

    def initial_state(self, batch_size=None):
        shape = (self.hidden_size,) if batch_size is None else (batch_size, self.hidden_size)
        return HiddenState(np.zeros(shape, self.dtype))

    def step(self, state, x):
        h = np.tanh(x @ self.W.value + state.h @ self.U.value)
        return HiddenState(h), h


def test_user_cell_is_converted():
    model = Recurrent(ElmanCell(3, 4))
    model32 = model.astype(np.float32)
    assert model32.cell.dtype == np.float32 and model.cell.dtype == np.float64
    y32 = model32(X.astype(np.float32))[0]
    assert y32.dtype == np.float32
    # Independent reference: the Elman recurrence in plain loops, float64.
    W, U = model.cell.W.value, model.cell.U.value
    h = np.zeros((3, 4))
    for t in range(X.shape[1]):
        h = np.tanh(X[:, t] @ W + h @ U)
        np.testing.assert_allclose(y32[:, t], h, rtol=1e-5, atol=1e-6)


@component
class CachedCell(ElmanCell):
    """A user cell keeping a float array that is not a Parameter."""

    scale: np.ndarray = attrs.field(factory=lambda: np.ones(4))


@component
class FixedDtypeCell(Module):
    """A user cell whose dtype is a property astype cannot set."""

    input_size: int = 3
    hidden_size: int = 4
    W: Parameter = attrs.field(factory=lambda: Parameter(np.zeros((3, 4))))

    @property
    def dtype(self):
        return np.dtype(np.float64)

    def initial_state(self, batch_size=None):
        return HiddenState(np.zeros((batch_size or 1, 4)))

    def step(self, state, x):
        return state, state.h


def test_user_components_that_cannot_be_converted_are_refused_completely():
    model = Stacked([Recurrent(CachedCell(3, 4)), Recurrent(FixedDtypeCell(4, 4))])
    with pytest.raises(TypeError) as info:
        model.astype(np.float32)
    message = str(info.value)
    assert "model.layers.0.cell.scale: a float array that is not a Parameter" in message
    assert "model.layers.1.cell: its dtype reads float64 after the conversion" in message
    assert model.layers[0].cell.W.value.dtype == np.float64  # untouched
