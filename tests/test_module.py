"""Parameters and the module base: dotted names, state dicts (all-or-nothing), zero_grad, repr."""

import copy
from typing import Any

import attrs
import numpy as np
import pytest

from lstmkit import Bidirectional, Gate, HiddenState, LSTMCell, Recurrent, Stacked
from lstmkit.initializers import as_rng
from lstmkit.module import Module, Parameter, component


def make_stack():
    first = Bidirectional(LSTMCell(3, 4, rng=0), rng=1)
    return Stacked([first, Recurrent(LSTMCell(8, 5, rng=2))])


def test_dotted_names():
    names = list(make_stack().named_parameters())
    assert "layers.0.forward_layer.cell.forget.W" in names
    assert "layers.0.backward_layer.cell.output.b" in names
    assert "layers.1.cell.candidate.U" in names
    assert len(names) == len(set(names)) == 3 * 4 * 3


def test_state_dict_round_trip_between_models():
    a, b = (
        make_stack(),
        Stacked([Bidirectional(LSTMCell(3, 4, rng=9), rng=8), LSTMCell(8, 5, rng=7)]),
    )
    x = np.random.default_rng(0).standard_normal((2, 6, 3))
    assert not np.allclose(a(x)[0], b(x)[0])
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x)[0], b(x)[0])


def test_state_dict_is_a_copy():
    cell = LSTMCell(2, 3, rng=0)
    sd = cell.state_dict()
    sd["forget.W"][...] = 99
    assert not np.any(cell.forget.W.value == 99)


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (lambda sd: sd.pop("input.U"), ValueError, "missing \\['input.U'\\]"),
        (lambda sd: sd.update(extra=np.zeros(2)), ValueError, "unexpected \\['extra'\\]"),
        (
            lambda sd: sd.update({"output.b": np.zeros(4)}),
            ValueError,
            "expected shape \\(3,\\), received \\(4,\\)",
        ),
        (
            lambda sd: sd.update({"output.b": np.zeros(3, np.float32)}),
            TypeError,
            "expected dtype float64, received float32",
        ),
        (lambda sd: sd.update({"output.b": [0.0, 0.0, 0.0]}), TypeError, "expected a numpy array"),
    ],
)
def test_load_state_dict_mismatch_raises_and_changes_nothing(mutate, error, match):
    cell = LSTMCell(2, 3, rng=0)
    before = cell.state_dict()
    new = LSTMCell(2, 3, rng=1).state_dict()
    mutate(new)
    with pytest.raises(error, match=match):
        cell.load_state_dict(new)
    for name, value in cell.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_zero_grad():
    cell = LSTMCell(2, 3, rng=0)
    for p in cell.parameters():
        p.grad += 1
    cell.zero_grad()
    assert all(np.all(p.grad == 0) for p in cell.parameters())


def test_repr_is_a_short_tree_without_array_contents():
    text = repr(make_stack())
    assert text.splitlines()[0].startswith("Stacked(2 layers)")
    assert "forward_layer: Recurrent" in text and "forget: Gate(sigmoid, W (3, 4)" in text
    assert "[" in text and "params]" in text
    assert "array(" not in text and len(text.splitlines()) < 40


def test_parameter_count():
    gate = Gate(3, 4, rng=0)
    assert gate.num_parameters() == 3 * 4 + 4 * 4 + 4
    assert LSTMCell(3, 4, rng=0).num_parameters() == 4 * gate.num_parameters()


@component
class TwoGateCell(Module):
    """A user's gated cell built from two Gates, without a reset_parameters of its own."""

    input_size: int
    hidden_size: int
    rng: Any = attrs.field(default=None, kw_only=True, repr=False)
    update: Gate = attrs.field(init=False)
    candidate: Gate = attrs.field(init=False)

    def __attrs_post_init__(self):
        gen, self.rng = as_rng(self.rng), None
        self.update = Gate(self.input_size, self.hidden_size, rng=gen)
        self.candidate = Gate(self.input_size, self.hidden_size, activation="tanh", rng=gen)

    @property
    def dtype(self):
        return np.dtype(np.float64)

    def initial_state(self, batch_size=None):
        shape = (self.hidden_size,) if batch_size is None else (batch_size, self.hidden_size)
        return HiddenState(np.zeros(shape))

    def step(self, state, x):
        z = self.update(x, state.h)
        h = z * state.h + (1 - z) * self.candidate(x, state.h)
        return HiddenState(h), h


@component
class OwnWeights(Module):
    """A user module that owns a parameter directly and cannot know how to redraw it."""

    W: Parameter = attrs.field(factory=lambda: Parameter(np.zeros((2, 2))))


@component
class Pair(Module):
    first: Any
    second: Any


def test_default_reset_parameters_redraws_children_in_field_order_from_one_generator():
    cell = TwoGateCell(3, 4, rng=0)
    before = cell.state_dict()
    cell.reset_parameters(5)
    after = cell.state_dict()
    assert all(not np.allclose(before[k], after[k]) for k in before if not k.endswith(".b"))
    gen = np.random.default_rng(5)
    ref_update, ref_candidate = Gate(3, 4, rng=0), Gate(3, 4, activation="tanh", rng=0)
    ref_update.reset_parameters(gen)
    ref_candidate.reset_parameters(gen)
    for name, p in {
        **_prefixed("update", ref_update),
        **_prefixed("candidate", ref_candidate),
    }.items():
        np.testing.assert_array_equal(after[name], p)


def _prefixed(prefix, module):
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def test_default_reset_parameters_refuses_parameters_it_cannot_redraw_and_changes_nothing():
    with pytest.raises(TypeError, match=r"OwnWeights owns parameters \['W'\].*override"):
        OwnWeights().reset_parameters(0)
    pair = Pair(TwoGateCell(3, 4, rng=0), OwnWeights())
    before = pair.state_dict()
    with pytest.raises(TypeError, match="OwnWeights"):
        pair.reset_parameters(0)
    for name, value in pair.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_models_redraw_their_weights():
    from lstmkit import Dense, Sequential
    from lstmkit.layers import LastStep

    def model():
        return Sequential(
            Stacked([LSTMCell(3, 4, rng=0), TwoGateCell(4, 4, rng=1)]),
            LastStep(),
            Dense(4, 2, rng=2),
        )

    a, b = model(), model()
    before = a.state_dict()
    a.reset_parameters(7)
    b.reset_parameters(np.random.default_rng(7))
    for name, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[name])
        if name.endswith((".W", ".U")):
            assert not np.allclose(value, before[name]), name


def test_bidirectional_gives_a_composed_user_cell_fresh_backward_weights():
    bi = Bidirectional(TwoGateCell(3, 4, rng=0), rng=1)
    fwd, bwd = bi.forward_layer.cell, bi.backward_layer.cell
    assert type(bwd) is TwoGateCell and bwd is not fwd
    for name, p in fwd.named_parameters().items():
        if not name.endswith(".b"):  # biases start at zero in both
            assert not np.allclose(p.value, bwd.named_parameters()[name].value), name
    y, _ = bi(np.random.default_rng(0).normal(size=(2, 5, 3)), lengths=[5, 2])
    assert y.shape == (2, 5, 8)


class PlainUserCell:
    """A cell that keeps the contract without being a Module: nothing can redraw it."""

    input_size, hidden_size, dtype = 3, 4, np.dtype(np.float64)

    def initial_state(self, batch_size=None):
        return HiddenState(np.zeros((batch_size, 4)))

    def step(self, state, x):
        h = np.tanh(x.sum(axis=-1, keepdims=True) + state.h)
        return HiddenState(h), h


@component
class OwnWeightsCell(TwoGateCell):
    extra: Parameter = attrs.field(init=False, factory=lambda: Parameter(np.zeros(4)))


@pytest.mark.parametrize(
    ("cell", "why"),
    [(PlainUserCell(), "no reset_parameters"), (OwnWeightsCell(3, 4, rng=0), "failed")],
    ids=["no-reset", "reset-raises"],
)
def test_bidirectional_refuses_a_cell_it_cannot_redraw(cell, why):
    with pytest.raises(TypeError) as info:
        Bidirectional(cell)
    message = str(info.value)
    assert message.startswith("backward_layer:")
    assert type(cell).__name__ in message and why in message
    assert "pass backward_layer explicitly" in message
    Bidirectional(cell, copy.deepcopy(cell))  # an explicit backward layer is fine
