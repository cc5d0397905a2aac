"""SimpleRNNCell and MGUCell: exact gradients, runners, properties, user parts, save/load, bad input.

Oracles: central finite differences (``lstmkit.testing`` and ``_fd``), and, for the properties,
an independent way of computing the same result (each sequence alone, flipped data, the cell
stepped by hand). PyTorch, ONNX Runtime, Keras' layout and the plain-Python MGU are in
test_simple_cells_oracles.py.
"""

from __future__ import annotations

import copy
import re

import attrs
import numpy as np
import pytest
from _fd import check_runner_gradients
from hypothesis import given, settings
from hypothesis import strategies as st

import lstmkit
from lstmkit import (
    Activation,
    Bidirectional,
    Gate,
    HiddenState,
    MGUCell,
    Recurrent,
    SimpleRNNCell,
    Stacked,
    VariationalDropout,
    Zoneout,
    activations,
    diagrams,
)
from lstmkit.initializers import as_rng
from lstmkit.module import Parameter, component
from lstmkit.testing import check_cell_gradients, check_gradients

PROPERTY = settings(max_examples=25, deadline=None)

# A user activation with a name of its own, derivative from the pre-activation: z / sqrt(1 + z^2).
ISRU = Activation("isru", lambda z: z / np.sqrt(1 + z * z), lambda z: (1 + z * z) ** -1.5)
# Named like a built-in, computing something else: sigmoid(2 z).
FAKE_SIGMOID = Activation(
    "sigmoid", lambda z: 0.5 * (1 + np.tanh(z)), lambda y: 2 * y * (1 - y), True
)


@component
class ScaledGate(Gate):
    """A user gate: ``z = (x @ W + h @ U + b) * s`` with a learned per-unit ``s``."""

    s: Parameter = attrs.field(init=False)

    def __attrs_post_init__(self):
        gen = as_rng(self.rng)
        self.rng = gen
        super().__attrs_post_init__()
        self.s = Parameter((1 + 0.5 * gen.standard_normal(self.hidden_size)).astype(self.dtype))

    def preactivation(self, x, h, c=None):
        return super().preactivation(x, h, c) * self.s.value

    def backward(self, dy, cache):
        dz = dy * self.activation.grad(cache.z, cache.y)
        self.s.grad += (dz * super().preactivation(cache.x, cache.h, cache.c)).sum(axis=0)
        dz = dz * self.s.value
        self.W.grad += cache.x.T @ dz
        self.U.grad += cache.h.T @ dz
        self.b.grad += dz.sum(axis=0)
        return dz @ self.W.value.T, dz @ self.U.value.T, None


CELLS = {
    "simple-tanh": lambda **kw: SimpleRNNCell(3, 4, bias_initializer="normal", **kw),
    "simple-relu": lambda **kw: SimpleRNNCell(
        3, 4, activation="relu", bias_initializer="normal", **kw
    ),
    "simple-isru": lambda **kw: SimpleRNNCell(
        3, 4, activation=ISRU, bias_initializer="normal", **kw
    ),
    "simple-scaled-gate": lambda **kw: SimpleRNNCell(
        3,
        4,
        ScaledGate(3, 4, activation="tanh", bias_initializer="normal", dtype=kw["dtype"], rng=7),
        **kw,
    ),
    "mgu-flax": lambda **kw: MGUCell(3, 4, bias_initializer="normal", **kw),
    "mgu-flax-paper-update": lambda **kw: MGUCell(
        3, 4, update_convention="paper", bias_initializer="normal", **kw
    ),
    "mgu-paper": lambda **kw: MGUCell(
        3, 4, reset_after=False, update_convention="paper", bias_initializer="normal", **kw
    ),
    "mgu-before-flax-update": lambda **kw: MGUCell(
        3, 4, reset_after=False, bias_initializer="normal", **kw
    ),
    "mgu-user-activations": lambda **kw: MGUCell(
        3,
        4,
        gate_activation=FAKE_SIGMOID,
        candidate_activation=ISRU,
        bias_initializer="normal",
        **kw,
    ),
    "mgu-scaled-candidate": lambda **kw: MGUCell(
        3,
        4,
        candidate=ScaledGate(3, 4, activation="tanh", dtype=kw["dtype"], rng=7),
        reset_after=False,
        bias_initializer="normal",
        **kw,
    ),
}


def make(name, dtype=np.float64, rng=0):
    return CELLS[name](dtype=dtype, rng=rng)


# -- gradients ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradients_match_finite_differences(name, reverse):
    report = check_cell_gradients(make(name), lengths=[3, 1], reverse=reverse, rng=3)
    assert report.passed(1e-6), str(report)
    assert report.unused == ()
    if "scaled" in name:  # the user gate's own parameter got its gradient
        assert any(key.endswith(".s") for key in report.errors)


@pytest.mark.parametrize("name", ["simple-tanh", "mgu-flax", "mgu-paper"])
def test_gradients_of_a_stack_with_bidirectional_layer(name):
    model = Stacked([Bidirectional(make(name), rng=1), type(make(name))(8, 2, rng=3)])
    x = np.random.default_rng(0).normal(size=(3, 4, 3))
    report = check_gradients(model, x, lengths=[4, 1, 2], rng=1)
    assert report.passed(1e-6), str(report)


@pytest.mark.parametrize("name", ["simple-tanh", "mgu-flax", "mgu-paper"])
def test_gradients_with_variational_dropout(name):
    # The MGU takes the mask itself (h_prev also enters its update, undropped).
    cell = VariationalDropout(make(name), 0.3, 0.4, rng=0)
    x = np.random.default_rng(1).normal(size=(2, 4, 3))
    report = check_gradients(cell, x, lengths=[4, 2], training_seed=5)
    assert report.passed(1e-6), str(report)


def test_independent_fd_checker_with_random_initial_state():
    # A second finite-difference implementation (tests/_fd.py) over every entry.
    for name in ("simple-relu", "mgu-flax", "mgu-paper"):
        cell = make(name)
        rng = np.random.default_rng(4)
        x = rng.normal(size=(3, 4, 3))
        init = HiddenState(h=rng.normal(size=(3, 4)))
        check_runner_gradients(Recurrent(cell), x, init, [4, 1, 3])


# -- runners ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CELLS))
def test_runs_in_every_runner(name):
    cell = make(name)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 3))
    lengths = [5, 2, 0]
    y, final = Recurrent(cell)(x, lengths=lengths)
    y_train, final_train, _ = Recurrent(cell).forward(x, lengths=lengths)
    np.testing.assert_array_equal(y, y_train)
    assert y.shape == (3, 5, 4) and np.all(y[1, 2:] == 0) and np.all(y[2] == 0)
    np.testing.assert_array_equal(final.h[2], 0)
    np.testing.assert_array_equal(final.h[1], y[1, 1])  # the state of the last valid step

    bi = Bidirectional(cell, rng=5)
    assert type(bi.backward_layer.cell) is type(cell)
    yb, _ = bi(x, lengths=lengths)
    np.testing.assert_array_equal(yb[..., :4], y)
    yr, _ = Recurrent(bi.backward_layer.cell, reverse=True)(x, lengths=lengths)
    np.testing.assert_array_equal(yb[..., 4:], yr)

    stack = Stacked([cell, type(cell)(4, 2, rng=1)], dropout=0.2, rng=0)
    ys, finals = stack(x, lengths=lengths)
    assert ys.shape == (3, 5, 2) and len(finals) == 2
    ys_t, _, c_st = stack.forward(x, lengths=lengths)
    dxs, _ = stack.backward(c_st, np.ones_like(ys_t))
    assert dxs.shape == x.shape and np.all(dxs[2] == 0)


@pytest.mark.parametrize("name", ["simple-tanh", "mgu-flax"])
def test_zoneout_wraps_the_cell(name):
    wrapped = Zoneout(make(name), h_rate=0.3, inference="expectation", rng=0)
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    report = check_gradients(wrapped, x, training_seed=1)
    assert report.passed(1e-6), str(report)


# -- properties -------------------------------------------------------------------------------------


@st.composite
def small_cells(draw):
    kind = draw(st.sampled_from(["simple", "mgu"]))
    n_in, n_h = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    if kind == "simple":
        act = draw(st.sampled_from(["tanh", "relu", "softsign", "sigmoid", ISRU]))
        return SimpleRNNCell(n_in, n_h, activation=act, bias_initializer="normal", rng=seed)
    return MGUCell(
        n_in,
        n_h,
        reset_after=draw(st.booleans()),
        update_convention=draw(st.sampled_from(["flax", "paper"])),
        gate_activation=draw(st.sampled_from(["sigmoid", "hard_sigmoid", FAKE_SIGMOID])),
        candidate_activation=draw(st.sampled_from(["tanh", "softsign", ISRU])),
        bias_initializer="normal",
        rng=seed,
    )


@PROPERTY
@given(data=st.data(), reverse=st.booleans())
def test_padded_batch_equals_each_sequence_alone(data, reverse):
    cell = data.draw(small_cells())
    batch, time = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    lengths = data.draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch))
    x = np.random.default_rng(data.draw(st.integers(0, 99))).normal(
        size=(batch, time, cell.input_size)
    )
    runner = Recurrent(cell, reverse=reverse)
    y, final = runner(x, lengths=lengths)
    for b, n in enumerate(lengths):
        y_b, final_b = runner(x[b : b + 1, :n])
        np.testing.assert_allclose(y[b, :n], y_b[0], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(final.h[b], final_b.h[0], rtol=1e-12, atol=1e-13)
        assert np.all(y[b, n:] == 0)


@PROPERTY
@given(data=st.data())
def test_reverse_equals_flipping_the_data(data):
    cell = data.draw(small_cells())
    time = data.draw(st.integers(1, 6))
    x = np.random.default_rng(data.draw(st.integers(0, 99))).normal(size=(2, time, cell.input_size))
    y_rev, final_rev = Recurrent(cell, reverse=True)(x)
    y, final = Recurrent(cell)(x[:, ::-1])
    np.testing.assert_allclose(y_rev, y[:, ::-1], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(final_rev.h, final.h, rtol=1e-12, atol=1e-13)


@PROPERTY
@given(data=st.data())
def test_runner_equals_stepping_the_cell_by_hand(data):
    cell = data.draw(small_cells())
    time = data.draw(st.integers(1, 6))
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    x = rng.normal(size=(3, time, cell.input_size))
    h0 = HiddenState(h=rng.normal(size=(3, cell.hidden_size)))
    y, final = Recurrent(cell)(x, h0)
    state = h0
    for t in range(time):
        state, y_t = cell.step(state, x[:, t])
        np.testing.assert_allclose(y[:, t], y_t, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(final.h, state.h, rtol=1e-12, atol=1e-13)


@PROPERTY
@given(data=st.data())
def test_two_chunks_with_carried_state_equal_one_run(data):
    cell = data.draw(small_cells())
    time = data.draw(st.integers(2, 6))
    cut = data.draw(st.integers(1, time - 1))
    x = np.random.default_rng(data.draw(st.integers(0, 99))).normal(size=(2, time, cell.input_size))
    y, final = Recurrent(cell)(x)
    y1, mid = Recurrent(cell)(x[:, :cut])
    y2, end = Recurrent(cell)(x[:, cut:], mid)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), y, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(end.h, final.h, rtol=1e-12, atol=1e-13)


def test_mgu_update_conventions_are_one_family_when_f_does_not_reach_the_candidate():
    # 1 - sigmoid(a) = sigmoid(-a): with the candidate's recurrent weights zero (so the forget
    # gate cannot act on the candidate), the paper's update with the forget gate negated is
    # Flax's update.
    flax = MGUCell(3, 4, bias_initializer="normal", rng=0)
    paper = MGUCell(3, 4, update_convention="paper", rng=1)
    flax.candidate.set_weights(U=np.zeros((4, 4)))
    flax.recurrent_bias.value[...] = 0
    paper.load_state_dict(flax.state_dict())
    f = paper.forget
    f.set_weights(W=-f.W.value, U=-f.U.value, b=-f.b.value)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    np.testing.assert_allclose(Recurrent(paper)(x)[0], Recurrent(flax)(x)[0], atol=1e-14)


def test_simple_rnn_is_its_gate_applied_in_a_loop():
    cell = SimpleRNNCell(3, 4, activation="relu", bias_initializer="normal", rng=0)
    x = np.random.default_rng(1).normal(size=(2, 5, 3))
    h = np.zeros((2, 4))
    y, _ = Recurrent(cell)(x)
    W, U, b = cell.candidate.W.value, cell.candidate.U.value, cell.candidate.b.value
    for t in range(5):
        h = np.maximum(x[:, t] @ W + h @ U + b, 0)
        np.testing.assert_allclose(y[:, t], h, rtol=1e-13, atol=1e-14)


# -- user parts are honoured ------------------------------------------------------------------------


def test_user_activation_and_gate_are_what_runs():
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    cell = make("simple-isru")
    assert cell.candidate.activation is ISRU
    builtin = copy.deepcopy(cell)
    builtin.candidate.activation = "softsign"
    assert not np.allclose(Recurrent(builtin)(x)[0], Recurrent(cell)(x)[0])
    # An activation swapped in place after construction is used on every path.
    cell.candidate.activation = "relu"
    assert np.all(Recurrent(cell)(x)[0] >= 0)

    mgu = make("mgu-user-activations")
    assert mgu.forget.activation is FAKE_SIGMOID and mgu.candidate.activation is ISRU
    real = copy.deepcopy(mgu)
    real.forget.activation = "sigmoid"
    assert not np.allclose(Recurrent(real)(x)[0], Recurrent(mgu)(x)[0])

    scaled = make("mgu-scaled-candidate")
    plain = copy.deepcopy(scaled)
    plain.candidate.s.value[...] = 1.0
    assert not np.allclose(Recurrent(plain)(x)[0], Recurrent(scaled)(x)[0])


def test_mgu_refuses_a_gate_subclass_it_would_bypass():
    with pytest.raises(TypeError, match="candidate: with reset_after=True"):
        MGUCell(3, 4, candidate=ScaledGate(3, 4, rng=0), rng=0)
    cell = MGUCell(3, 4, rng=0)
    cell.candidate = ScaledGate(3, 4, rng=0)  # swapped after construction
    with pytest.raises(TypeError, match="bypassing a ScaledGate"):
        cell.step(cell.initial_state(1), np.ones((1, 3)))


def test_given_gates_are_used_as_they_are():
    forget = Gate(3, 4, bias_initializer="ones", rng=3)
    cell = MGUCell(3, 4, forget=forget, rng=0)
    assert cell.forget is forget and np.all(forget.b.value == 1)  # no forget_bias added
    fresh = MGUCell(3, 4, rng=0)
    assert np.all(fresh.forget.b.value == 1.0)  # zeros + forget_bias
    gate = Gate(3, 4, activation="softsign", rng=1)
    assert SimpleRNNCell(3, 4, gate, rng=0).candidate is gate


@pytest.mark.parametrize("cls", [SimpleRNNCell, MGUCell])
def test_gates_are_gate_objects_listed_in_gate_names(cls):
    # Generic code walks GATE_NAMES and finds Gate objects, with the cell's sizes and dtype.
    cell = cls(3, 4, dtype=np.float32, rng=0)
    assert tuple(cell.gates) == cls.GATE_NAMES
    for name in cls.GATE_NAMES:
        gate = getattr(cell, name)
        assert isinstance(gate, Gate) and gate.dtype == np.float32
        assert (gate.input_size, gate.hidden_size) == (3, 4)
    params = set(cell.named_parameters())
    expected = {f"{n}.{p}" for n in cls.GATE_NAMES for p in ("W", "U", "b")}
    assert params - expected <= {"recurrent_bias"}


def test_reset_parameters_redraws_and_keeps_conventions():
    cell = MGUCell(3, 4, reset_after=True, update_convention="paper", rng=0)
    before = {k: p.value.copy() for k, p in cell.named_parameters().items()}
    cell.reset_parameters(5)
    after = cell.named_parameters()
    assert before.keys() == after.keys()
    assert not np.array_equal(before["forget.W"], after["forget.W"].value)
    assert np.all(after["forget.b"].value == 1.0)  # forget_bias again
    assert cell.update_convention == "paper"
    simple = SimpleRNNCell(3, 4, activation="relu", rng=0)
    simple.reset_parameters(1)
    assert simple.candidate.activation is activations.relu


# -- save / load ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "name", [n for n in sorted(CELLS) if not any(u in n for u in ("scaled", "user", "isru"))]
)
def test_save_load_round_trip(name, dtype, tmp_path):
    cell = make(name, dtype=dtype)
    model = Stacked([Bidirectional(cell, rng=1), type(cell)(8, 2, dtype=dtype, rng=2)])
    path = tmp_path / "model.npz"
    lstmkit.save(model, path)
    loaded = lstmkit.load(path)
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(dtype)
    np.testing.assert_array_equal(loaded(x, lengths=[4, 2])[0], model(x, lengths=[4, 2])[0])
    inner = loaded.layers[0].forward_layer.cell
    assert type(inner) is type(cell)
    assert inner.describe() == cell.describe()
    for key in ("reset_after", "update_convention", "forget_bias"):
        assert getattr(inner, key, None) == getattr(cell, key, None)
    # Weights into a fresh cell of the same architecture.
    other = type(cell)(3, 4, dtype=dtype, rng=9, **_options(cell))
    other.load_state_dict(cell.state_dict())
    np.testing.assert_array_equal(Recurrent(other)(x)[0], Recurrent(cell)(x)[0])


def _options(cell):
    if isinstance(cell, MGUCell):
        return {"reset_after": cell.reset_after, "update_convention": cell.update_convention}
    return {"activation": cell.candidate.activation}


def test_load_refuses_a_file_whose_weights_do_not_fit(tmp_path):
    cell = MGUCell(3, 4, reset_after=True, rng=0)
    path = tmp_path / "mgu.npz"
    lstmkit.save(cell, path)
    with np.load(path, allow_pickle=False) as data:
        arrays = dict(data)
    arrays.pop("recurrent_bias")
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(ValueError, match="recurrent_bias"):
        lstmkit.load(tmp_path / "broken.npz")


# -- drawing ----------------------------------------------------------------------------------------


def _labels(svg):
    """The text of each label of a figure, its math-style spans joined."""
    return {re.sub(r"<[^>]+>", "", text) for text in re.findall(r"<text[^>]*>(.*?)</text>", svg)}


def test_figures_show_the_cell():
    svg = diagrams.draw(SimpleRNNCell(3, 4, activation="relu", rng=0), highlight="candidate")
    assert svg.startswith("<svg") and 'data-activation="relu"' in svg
    assert diagrams.parts(SimpleRNNCell(3, 4, rng=0)) == ["candidate", "concat", "hidden", "module"]
    mgu = diagrams.draw(MGUCell(3, 4, gate_activation=FAKE_SIGMOID, rng=0))
    assert 'data-activation="sigmoid"' in mgu and ">σ<" not in mgu  # the user's, by its name
    assert "f ⊙ (hU + b)" in _labels(mgu)
    paper = diagrams.draw(MGUCell(3, 4, reset_after=False, update_convention="paper", rng=0))
    assert "f ⊙ h" in _labels(paper) and "f ⊙ (hU + b)" not in _labels(paper)
    assert {"forget", "reset", "update", "add"} <= set(diagrams.parts(MGUCell(3, 4, rng=0)))
    with pytest.raises(ValueError, match="highlight: expected names among"):
        diagrams.draw(MGUCell(3, 4, rng=0), highlight="output")
    # Every other cell is still drawn by the LSTM/GRU figure.
    assert "GRU cell" in diagrams.draw(lstmkit.GRUCell(3, 4, rng=0))


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: SimpleRNNCell(3, 4, candidate_activation="relu"), ValueError, "activation=..."),
        (lambda: SimpleRNNCell(3, 4, gate_activation="relu"), ValueError, "gate_activation"),
        (lambda: SimpleRNNCell(3, 4, activation="nope"), ValueError, "activation"),
        (lambda: SimpleRNNCell(3, 4, peephole=True), ValueError, "peephole"),
        (lambda: SimpleRNNCell(3, 4, proj_size=2), ValueError, "proj_size"),
        (lambda: SimpleRNNCell(3, 4, Gate(3, 5, rng=0)), ValueError, "candidate"),
        (lambda: SimpleRNNCell(3, 4, Gate(3, 4, peephole=True, rng=0)), ValueError, "peephole"),
        (lambda: SimpleRNNCell(0, 4), ValueError, "input_size"),
        (lambda: MGUCell(3, 4, update_convention="olah"), ValueError, "update_convention"),
        (lambda: MGUCell(3, 4, reset_after="yes"), TypeError, "reset_after"),
        (lambda: MGUCell(3, 4, forget_bias=float("nan")), ValueError, "forget_bias"),
        (lambda: MGUCell(3, 4, peephole=["forget"]), ValueError, "peephole"),
        (lambda: MGUCell(3, 4, proj_size=1), ValueError, "proj_size"),
        (lambda: MGUCell(3, 4, forget="gate"), TypeError, "forget"),
        (lambda: MGUCell(3, 4, Gate(3, 4, dtype=np.float32, rng=0)), TypeError, "dtype"),
    ],
)
def test_bad_construction_names_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize("cls", [SimpleRNNCell, MGUCell])
def test_bad_step_input_names_the_argument(cls):
    cell = cls(3, 4, rng=0)
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 3\)"):
        cell.step(cell.initial_state(2), np.ones((2, 5)))
    with pytest.raises(TypeError, match="state: expected a HiddenState"):
        cell.step(lstmkit.LSTMState(h=np.zeros((2, 4)), c=np.zeros((2, 4))), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"state.h: expected shape \(2, 4\)"):
        cell.step(HiddenState(h=np.zeros((2, 3))), np.ones((2, 3)))
    _, y, cache = cell.step_train(cell.initial_state(2), np.ones((2, 3)))
    with pytest.raises(ValueError, match="d_y: expected shape"):
        cell.step_backward(cache, HiddenState(h=np.zeros((2, 4))), np.zeros((2, 5)))
    cell.step_backward(cache, HiddenState(h=np.zeros((2, 4))), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="already back-propagated"):
        cell.step_backward(cache, HiddenState(h=np.zeros((2, 4))), np.zeros((2, 4)))
