"""lstmkit.trace against an oracle written here: each sequence stepped by hand, one row at a time.

The oracle never goes through a runner: it walks each sequence alone over its own length (from
its end for a reversed runner), steps the cell with ``cell.step`` and recomputes every gate
from the gate's weights and activation with the cell's equations (the layer-norm LSTM's from
its own step cache). The trace must give the same values, NaN past each length, for every
built-in cell, a user's ``Gate`` subclass, a user's cell built from gates, inside
``Recurrent``, ``Stacked``, ``Bidirectional`` and ``Sequential``, fused and stepped; and the
traced outputs must equal the untraced outputs exactly.
"""

import attrs
import numpy as np
import pytest

from lstmkit import (
    Bidirectional,
    CoupledLSTMCell,
    Dense,
    Gate,
    GRUCell,
    HiddenState,
    LayerNormLSTMCell,
    LSTMCell,
    MGUCell,
    ProjectionLSTMCell,
    Recurrent,
    Sequential,
    SimpleRNNCell,
    Stacked,
    Zoneout,
)
from lstmkit.module import Module, component
from lstmkit.trace import trace

LENGTHS = [5, 2, 0, 4]


def data(input_size, batch=4, time=5, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, time, input_size))


@component
class ScaledGate(Gate):
    """A user gate: the pre-activation times 1.5."""

    def preactivation(self, x, h, c=None):
        return super().preactivation(x, h, c) * 1.5


@component
class MinimalGatedCell(Module):
    """A user cell built from two gates (the minimal gated unit), no base class of lstmkit's."""

    input_size: int
    hidden_size: int
    forget: Gate = attrs.field(init=False)
    candidate: Gate = attrs.field(init=False)
    dtype = np.dtype(np.float64)

    def __attrs_post_init__(self):
        gen = np.random.default_rng(3)
        self.forget = Gate(self.input_size, self.hidden_size, rng=gen)
        self.candidate = Gate(self.input_size, self.hidden_size, activation="tanh", rng=gen)

    def initial_state(self, batch_size=None):
        shape = (self.hidden_size,) if batch_size is None else (batch_size, self.hidden_size)
        return HiddenState(h=np.zeros(shape))

    def step(self, state, x):
        f = self.forget(x, state.h)
        g = self.candidate(x, f * state.h)
        h = (1 - f) * state.h + f * g
        return HiddenState(h=h), h


def act(gate, z):
    return gate.activation(z)


def affine(gate, x, h, c=None):
    z = x @ gate.W.value + h @ gate.U.value + gate.b.value
    if gate.p is not None:
        z = z + c * gate.p.value
    if isinstance(gate, ScaledGate):
        z = z * 1.5
    return z


def hand_step(cell, state, x):
    """Gate values of one step, recomputed from the equations, and the cell's next state."""
    new, _ = cell.step(state, x)
    h = state.h
    if isinstance(cell, LayerNormLSTMCell):
        cache = cell.step_train(state, x)[2]
        values = {name: cache.acts[:, k] for k, name in enumerate(cell.GATE_NAMES)}
        return values, new
    if isinstance(cell, GRUCell):
        z = act(cell.update, affine(cell.update, x, h))
        r = act(cell.reset, affine(cell.reset, x, h))
        cand = cell.candidate
        if cell.reset_after:
            hu = h @ cand.U.value + cell.recurrent_bias.value
            n = act(cand, x @ cand.W.value + cand.b.value + r * hu)
        else:
            n = act(cand, affine(cand, x, r * h))
        return {"update": z, "reset": r, "candidate": n}, new
    if isinstance(cell, SimpleRNNCell):
        return {"candidate": act(cell.candidate, affine(cell.candidate, x, h))}, new
    if isinstance(cell, MGUCell):
        f = act(cell.forget, affine(cell.forget, x, h))
        cand = cell.candidate
        if cell.reset_after:
            hu = h @ cand.U.value + cell.recurrent_bias.value
            n = act(cand, x @ cand.W.value + cand.b.value + f * hu)
        else:
            n = act(cand, affine(cand, x, f * h))
        return {"forget": f, "candidate": n}, new
    if isinstance(cell, MinimalGatedCell):
        f = act(cell.forget, affine(cell.forget, x, h))
        return {
            "forget": f,
            "candidate": act(cell.candidate, affine(cell.candidate, x, f * h)),
        }, new
    values = {}
    for name, gate in cell.gates.items():
        c = new.c if name == "output" else state.c
        values[name] = act(gate, affine(gate, x, h, c))
    return values, new


def oracle(cell, x, lengths, reverse=False):
    """``{gate or state field: (batch, time, width)}``, NaN past each length."""
    B, T = x.shape[0], x.shape[1]
    out = {}
    for b in range(B):
        state = cell.initial_state(1)
        steps = range(lengths[b])
        for t in reversed(steps) if reverse else steps:
            values, state = hand_step(cell, state, x[b, t][None])
            values.update(attrs.asdict(state, recurse=False))
            for name, v in values.items():
                out.setdefault(name, np.full((B, T, v.shape[-1]), np.nan))[b, t] = v[0]
    return out


def assert_layer(layer, expected, lengths):
    T = layer.mask.shape[1]
    assert layer.mask.tolist() == [[t < n for t in range(T)] for n in lengths]
    got = {**layer.gates, **layer.states}
    assert set(got) == set(expected)
    for name, want in expected.items():
        np.testing.assert_allclose(got[name], want, rtol=1e-12, atol=1e-13, err_msg=name)
        assert np.isnan(got[name][~layer.mask]).all()


CELLS = {
    "lstm": lambda: LSTMCell(3, 4, rng=0),
    "lstm_peephole": lambda: LSTMCell(3, 4, peephole=True, peephole_initializer="uniform", rng=0),
    "lstm_hard_sigmoid": lambda: LSTMCell(3, 4, gate_activation="hard_sigmoid", rng=0),
    "coupled": lambda: CoupledLSTMCell(3, 4, rng=0),
    "gru": lambda: GRUCell(3, 4, rng=0),
    "gru_reset_before": lambda: GRUCell(3, 4, reset_after=False, rng=0),
    "layernorm": lambda: LayerNormLSTMCell(3, 4, rng=0),
    "projection": lambda: ProjectionLSTMCell(3, 4, proj_size=2, rng=0),
    "user_gate": lambda: LSTMCell(3, 4, forget=ScaledGate(3, 4, rng=5), rng=0),
    "simple_rnn": lambda: SimpleRNNCell(3, 4, activation="relu", rng=0),
    "mgu": lambda: MGUCell(3, 4, bias_initializer="uniform", rng=0),
    "mgu_paper": lambda: MGUCell(3, 4, reset_after=False, update_convention="paper", rng=0),
    "user_cell": lambda: MinimalGatedCell(3, 4),
}


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("kind", sorted(CELLS))
def test_every_cell_matches_hand_stepping(kind, fused, reverse):
    cell = CELLS[kind]()
    rnn = Recurrent(cell, reverse=reverse, fused=fused)
    x = data(3)
    result = trace(rnn, x, lengths=LENGTHS)
    y, final = rnn(x, lengths=LENGTHS)
    np.testing.assert_array_equal(result.output, y)  # tracing changes no number
    for a, b in zip(attrs.astuple(result.final_state), attrs.astuple(final)):
        np.testing.assert_array_equal(a, b)
    layer = result.layer("root")
    assert layer.fused == (kind in ("lstm", "lstm_peephole", "lstm_hard_sigmoid") and fused is None)
    assert layer.reverse == reverse and layer.unreported == ()
    assert_layer(layer, oracle(cell, x, LENGTHS, reverse), LENGTHS)


@pytest.mark.parametrize("fused", [None, False])
def test_fused_and_stepped_traces_agree_with_preactivations(fused):
    cell = LSTMCell(3, 4, peephole=True, peephole_initializer="uniform", rng=2)
    x = data(3)
    layer = trace(Recurrent(cell, fused=fused), x, lengths=LENGTHS, preactivations=True).layer()
    for name, gate in cell.gates.items():
        np.testing.assert_allclose(gate.activation(layer.preactivations[name]), layer.gates[name])


def test_stacked_bidirectional_sequential():
    first = Bidirectional(LSTMCell(3, 4, rng=0), GRUCell(3, 4, rng=1), merge="concat")
    model = Sequential(Stacked([first, Recurrent(LSTMCell(8, 2, rng=2), fused=False)]), Dense(2, 1))
    x = data(3)
    result = trace(model, x, lengths=LENGTHS)
    np.testing.assert_array_equal(result.output, model(x, lengths=LENGTHS))
    names = ["layers.0.layers.0.forward_layer", "layers.0.layers.0.backward_layer"]
    assert list(result.layers) == [*names, "layers.0.layers.1"]
    fwd, bwd = (result.layer(n) for n in names)
    assert not fwd.reverse and bwd.reverse
    assert_layer(fwd, oracle(first.forward_layer.cell, x, LENGTHS), LENGTHS)
    assert_layer(bwd, oracle(first.backward_layer.cell, x, LENGTHS, reverse=True), LENGTHS)
    middle, _ = first(x, lengths=LENGTHS)
    second = result.layer("layers.0.layers.1")
    assert_layer(second, oracle(model.layers[0].layers[1].cell, middle, LENGTHS), LENGTHS)


def test_wrapped_cell_gates_are_named_by_path():
    cell = LSTMCell(3, 4, rng=0)
    layer = trace(Zoneout(cell, h_rate=0.0, c_rate=0.0), data(3)).layer()
    assert sorted(layer.gates) == ["cell.candidate", "cell.forget", "cell.input", "cell.output"]
    assert_layer(
        attrs.evolve(layer, gates={k[5:]: v for k, v in layer.gates.items()}),
        oracle(cell, data(3), [5] * 4),
        [5] * 4,
    )


def test_choosing_layers_gates_and_units_saves_memory():
    model = Stacked([LSTMCell(3, 6, rng=0), LSTMCell(6, 6, rng=1)])
    x = data(3)
    full = trace(model, x)
    part = trace(model, x, layers="layers.1", gates="forget", units=[0, 5], states=False)
    assert list(part.layers) == ["layers.1"]
    layer = part.layer()
    assert list(layer.gates) == ["forget"] and layer.states == {}
    np.testing.assert_array_equal(
        layer.gates["forget"], full.layer("layers.1").gates["forget"][..., [0, 5]]
    )
    assert layer.nbytes == 4 * 5 * 2 * 8  # batch * time * units * itemsize
    assert full.layer("layers.0").nbytes == 4 * 5 * 6 * 8 * 6  # 4 gates + h + c


def test_unbatched_and_empty():
    rnn = Recurrent(GRUCell(3, 4, rng=0))
    layer = trace(rnn, data(3)[0]).layer()
    assert layer.gates["update"].shape == (5, 4) and layer.mask.shape == (5,)
    empty = trace(rnn, np.zeros((2, 0, 3))).layer()
    assert empty.gates["update"].shape == (2, 0, 4) and empty.states["h"].shape == (2, 0, 4)


def test_tracing_leaves_nothing_switched_on():
    from lstmkit._tracing import RECORDER

    rnn = Recurrent(LSTMCell(3, 4, rng=0), fused=False)
    with pytest.raises(ValueError):
        trace(rnn, np.zeros((2, 5, 7)))  # wrong input size: the run fails
    assert RECORDER.get() is None


def test_bad_arguments_are_named():
    rnn = Stacked([LSTMCell(3, 4, rng=0)])
    with pytest.raises(ValueError, match="layers"):
        trace(rnn, data(3), layers="layers.3")
    with pytest.raises(ValueError, match="gates"):
        trace(rnn, data(3), gates="update")
    with pytest.raises(ValueError, match="units"):
        trace(rnn, data(3), units=[9])
    with pytest.raises(ValueError, match="units"):
        trace(rnn, data(3), units=[[1]])
    with pytest.raises(TypeError, match="model"):
        trace(object(), data(3))
    with pytest.raises(TypeError, match="gates"):
        trace(rnn, data(3), gates=[1])
    with pytest.raises(KeyError, match="name"):
        trace(rnn, data(3)).layer("nope")


@component
class BypassGate(Gate):
    """A user gate whose __call__ computes without Gate.__call__: nothing reports it."""

    def __call__(self, x, h, c=None):
        return self.activation(self.preactivation(x, h, c))


def test_a_gate_that_reports_nothing_is_listed():
    cell = LSTMCell(3, 4, forget=BypassGate(3, 4, rng=1), rng=0)
    layer = trace(Recurrent(cell), data(3)).layer()
    assert layer.unreported == ("forget",) and "forget" not in layer.gates


@component
class InlineCell(MinimalGatedCell):
    """A user cell that computes its forget gate without calling it, and reports it."""

    def step(self, state, x):
        from lstmkit.trace import record_gate

        gate = self.forget
        z = x @ gate.W.value + state.h @ gate.U.value + gate.b.value
        f = gate.activation(z)
        record_gate(gate, z, f)
        g = self.candidate(x, f * state.h)
        h = (1 - f) * state.h + f * g
        return HiddenState(h=h), h


def test_a_user_cell_reports_an_inline_gate_with_record_gate():
    cell = InlineCell(3, 4)
    x = data(3)
    layer = trace(Recurrent(cell), x, lengths=LENGTHS, preactivations=True).layer()
    assert layer.unreported == ()
    assert_layer(layer, oracle(cell, x, LENGTHS), LENGTHS)
    np.testing.assert_allclose(
        cell.forget.activation(layer.preactivations["forget"]), layer.gates["forget"]
    )


def test_a_convolutional_cell_is_refused_by_name_not_half_traced():
    from lstmkit import ConvLSTMCell, Stacked

    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5, 1))
    conv = ConvLSTMCell((5, 5, 1), 2, 3, rng=0)
    with pytest.raises(TypeError, match="ConvLSTMCell of root steps on arrays of shape"):
        trace(Recurrent(conv), x)
    with pytest.raises(TypeError, match=r"ConvLSTMCell of layers\.0"):
        trace(Stacked([conv]), x)
    # The switch is off again: an ordinary run afterwards records nothing and works.
    y, _ = Recurrent(conv)(x)
    assert y.shape == (2, 3, 5, 5, 2)
