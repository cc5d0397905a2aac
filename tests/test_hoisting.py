"""Input products hoisted out of the stepped time loop (``lstmkit._hoisting``).

The oracle is the same runner with hoisting switched off (the cell class's
``accepts_hoisted_inputs`` set to False), which computes every gate's ``x @ W`` inside its step,
and a plain Python loop over ``cell.step``. The hoisted path must give the same outputs, states,
input gradients and parameter gradients to float64 rounding; a tampering test shows that the
hoisted products are really what the gates read, and user components (a ``Gate`` subclass, a cell
that feeds its gates something other than ``x``) must run their own code.
"""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from lstmkit import (
    Bidirectional,
    CoupledLSTMCell,
    Gate,
    GRUCell,
    HiddenState,
    LayerNormLSTMCell,
    LSTMCell,
    MGUCell,
    ProjectionLSTMCell,
    Recurrent,
    SimpleRNNCell,
    Stacked,
    VariationalDropout,
    Zoneout,
)
from lstmkit.cells.gated import GatedCell
from lstmkit.gate import GateCache
from lstmkit.module import component
from lstmkit.runners import _hoist, _stepping
from lstmkit.trace import trace

RTOL, ATOL = 1e-12, 1e-13


@pytest.fixture(autouse=True, params=[False, True], ids=["backward-half", "forward-too"])
def forward_products(request, monkeypatch):
    """Every test runs with the forward's products hoisted (``FORWARD_PRODUCTS``) and without."""
    monkeypatch.setattr(_hoist, "FORWARD_PRODUCTS", request.param)
    return request.param


I, H = 3, 5


@attrs.frozen
class TwoGateCache:
    forget: GateCache
    candidate: GateCache
    h_prev: np.ndarray


@component
class TwoGateCell(GatedCell):
    """The custom-cell guide's minimal gated unit, opted in to hoisting."""

    GATE_NAMES = ("forget", "candidate")
    STATE = HiddenState
    accepts_hoisted_inputs = True
    forget: Gate = attrs.field(init=False)
    candidate: Gate = attrs.field(init=False)

    def state_sizes(self):
        return {"h": self.hidden_size}

    def gate_input(self, x):
        return x

    def step_train(self, state, x):
        h_prev = state.h
        f, f_cache = self.forget.forward_train(self.gate_input(x), h_prev)
        g, g_cache = self.candidate.forward_train(x, f * h_prev)
        h = h_prev + f * (g - h_prev)
        return HiddenState(h), h, TwoGateCache(f_cache, g_cache, h_prev)

    def step_backward(self, cache, d_state, d_y):
        f, g, h_prev = cache.forget.y, cache.candidate.y, cache.h_prev
        dh = d_y + d_state.h
        dx, d_fh, _ = self.candidate.backward(dh * f, cache.candidate)
        df = dh * (g - h_prev) + d_fh * h_prev
        dx_f, dh_f, _ = self.forget.backward(df, cache.forget)
        dx_f = self.gate_input(dx_f)
        return HiddenState(dh * (1 - f) + d_fh * f + dh_f), dx + dx_f


@component
class DoubledInputCell(TwoGateCell):
    """Declares hoisting but feeds its forget gate ``2 * x``: that gate must see ``2 * x``."""

    def gate_input(self, x):
        return 2 * x


@component
class TwiceCalledGateCell(TwoGateCell):
    """Calls its forget gate twice in a step, with the step's x and two different h."""

    def step_train(self, state, x):
        h_prev = state.h
        a, a_cache = self.forget.forward_train(x, h_prev)
        b, b_cache = self.forget.forward_train(x, a * h_prev)
        return HiddenState(b), b, (a_cache, b_cache, h_prev)

    def step_backward(self, cache, d_state, d_y):
        a_cache, b_cache, h_prev = cache
        dx_b, d_ah, _ = self.forget.backward(d_y + d_state.h, b_cache)
        dx_a, dh_a, _ = self.forget.backward(d_ah * h_prev, a_cache)
        return HiddenState(d_ah * a_cache.y + dh_a), dx_a + dx_b


@component
class ShiftedGate(Gate):
    """A user gate whose pre-activation differs from Gate's."""

    def preactivation(self, x, h, c=None):
        return super().preactivation(x, h, c) + 0.25


CELLS = {
    "lstm": lambda n=I: LSTMCell(n, H, rng=0),
    "lstm_peephole": lambda n=I: LSTMCell(n, H, peephole=True, peephole_initializer="ones", rng=0),
    "gru": lambda n=I: GRUCell(n, H, rng=0),
    "gru_reset_before": lambda n=I: GRUCell(n, H, reset_after=False, rng=0),
    "layernorm": lambda n=I: LayerNormLSTMCell(n, H, rng=0),
    "projection": lambda n=I: ProjectionLSTMCell(n, H, proj_size=2, rng=0),
    "coupled": lambda n=I: CoupledLSTMCell(n, H, peephole=True, rng=0),
    "simple": lambda n=I: SimpleRNNCell(n, H, rng=0),
    "mgu": lambda n=I: MGUCell(n, H, rng=0),
    "mgu_reset_before": lambda n=I: MGUCell(n, H, reset_after=False, rng=0),
    "two_gate": lambda n=I: TwoGateCell(n, H, rng=0),
    "lstm_user_gate": lambda n=I: LSTMCell(n, H, forget=ShiftedGate(n, H, rng=5), rng=0),
    "gate_called_twice": lambda n=I: TwiceCalledGateCell(n, H, rng=0),
    "gru_user_candidate": lambda n=I: GRUCell(n, H, reset_after=False, rng=0),
}


def _user_candidate(cell):
    if isinstance(cell, GRUCell):
        cell.candidate = ShiftedGate(cell.input_size, H, activation="tanh", rng=6)
    return cell


def make(kind, n=I):
    cell = CELLS[kind](n)
    return _user_candidate(cell) if kind == "gru_user_candidate" else cell


def data(batch=4, time=6, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, time, I)), rng.standard_normal


def run(runner, x, lengths, seed=2):
    """Forward and backward; every output and every parameter gradient, by name."""
    runner.zero_grad()
    y, final, cache = runner.forward(x, lengths=lengths, rng=np.random.default_rng(seed))
    rng = np.random.default_rng(3)
    dy = rng.standard_normal(y.shape)
    dx, d_init = runner.backward(cache, dy)
    out = {"y": y, "dx": dx}
    for name, value in _state_arrays(final, "final").items():
        out[name] = value
    for name, value in _state_arrays(d_init, "d_init").items():
        out[name] = value
    for name, param in runner.named_parameters().items():
        out["grad." + name] = param.grad.copy()
    out["inference"] = runner(x, lengths=lengths)[0]
    return out


def _state_arrays(state, prefix):
    if isinstance(state, np.ndarray):
        return {prefix: state}
    if attrs.has(type(state)):
        found = {}
        for field in attrs.fields(type(state)):
            found.update(_state_arrays(getattr(state, field.name), f"{prefix}.{field.name}"))
        return found
    return {}


def unhoisted(monkeypatch):
    """Switch hoisting off for every cell (the path as it was before hoisting)."""
    monkeypatch.setattr(_stepping, "hoist_inputs", lambda cell, xt, training: None)


def assert_same(got, expected):
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=RTOL, atol=ATOL, err_msg=name)


def used_hoisting(monkeypatch):
    """Record every hoist the runner makes."""
    made = []
    real = _hoist.hoist_inputs

    def spy(cell, xt, training):
        hoisted = real(cell, xt, training)
        made.append((training or _hoist.FORWARD_PRODUCTS, hoisted))
        return hoisted

    monkeypatch.setattr(_stepping, "hoist_inputs", spy)
    return made


LAYOUTS = [
    pytest.param(None, False, id="full"),
    pytest.param([6, 3, 0, 5], False, id="lengths"),
    pytest.param([6, 3, 1, 5], True, id="lengths-reverse"),
]


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize(("lengths", "reverse"), LAYOUTS)
def test_hoisted_step_path_equals_unhoisted(kind, lengths, reverse, monkeypatch):
    x, _ = data()
    runner = Recurrent(make(kind), reverse=reverse, fused=False)
    made = used_hoisting(monkeypatch)
    got = run(runner, x, lengths)
    assert made and all((h is not None) == expected for expected, h in made)
    unhoisted(monkeypatch)
    assert_same(got, run(runner, x, lengths))


@pytest.mark.parametrize("kind", list(CELLS))
def test_the_gates_read_the_hoisted_products(kind, monkeypatch):
    monkeypatch.setattr(_hoist, "FORWARD_PRODUCTS", True)
    # Perturb the hoisted products (not by a constant: layer norm removes that): the outputs
    # move, so the steps read them.
    x, _ = data()
    runner = Recurrent(make(kind), fused=False)
    clean = runner(x)[0]

    def tampered(cell, xt, training):
        hoisted = _hoist.hoist_inputs(cell, xt, training)
        hoisted.products += np.random.default_rng(9).standard_normal(hoisted.products.shape)
        return hoisted

    monkeypatch.setattr(_stepping, "hoist_inputs", tampered)
    assert not np.allclose(runner(x)[0], clean)


@pytest.mark.parametrize("kind", list(CELLS))
def test_the_gates_defer_their_input_gradients(kind, monkeypatch):
    # Without the runner's whole-sequence products after the loop, dx and the hoisted gates'
    # W.grad lose the deferred shares: so the steps did defer them.
    x, _ = data()
    runner = Recurrent(make(kind), fused=False)
    full = run(runner, x, [6, 4, 2, 5])
    monkeypatch.setattr(_stepping, "finish_backward", lambda *args: None)
    cut = run(runner, x, [6, 4, 2, 5])
    assert not np.allclose(cut["dx"], full["dx"])
    cell = runner.cell
    for gate in _hoist.hoisted_gates(cell):
        name = next(n for n, g in cell.gates.items() if g is gate)
        assert not np.any(cut[f"grad.cell.{name}.W"]), name
        unused = kind == "gate_called_twice" and name == "candidate"
        assert np.any(full[f"grad.cell.{name}.W"]) != unused, name
    for name, gate in cell.gates.items():
        if gate not in _hoist.hoisted_gates(cell):  # a user gate: its own backward, per step
            np.testing.assert_array_equal(cut[f"grad.cell.{name}.W"], full[f"grad.cell.{name}.W"])


def test_a_plain_loop_over_step_agrees():
    x, _ = data()
    for kind in CELLS:
        cell = make(kind)
        y, _ = Recurrent(cell, fused=False)(x)
        state = cell.initial_state(x.shape[0])
        for t in range(x.shape[1]):
            state, out = cell.step(state, x[:, t])
            np.testing.assert_allclose(y[:, t], out, rtol=RTOL, atol=ATOL, err_msg=kind)


def test_a_user_gate_subclass_runs_its_own_preactivation():
    cell = make("lstm_user_gate")
    assert [g for g in _hoist.hoisted_gates(cell) if type(g) is not Gate] == []
    assert cell.forget not in _hoist.hoisted_gates(cell)
    assert len(_hoist.hoisted_gates(cell)) == 3
    x, _ = data()
    y = Recurrent(cell, fused=False)(x)[0]
    # The same weights in a plain Gate give other numbers: the shift of ShiftedGate is honoured.
    plain = LSTMCell(I, H, rng=0)
    plain.forget = Gate(I, H, rng=5)
    plain.forget.b.value[:] = cell.forget.b.value
    assert not np.allclose(Recurrent(plain, fused=False)(x)[0], y)
    # And a hand loop over the cell's own gates (each calling its own code) agrees.
    h, c = np.zeros((4, H)), np.zeros((4, H))
    for t in range(x.shape[1]):
        xt = x[:, t].copy()  # a copy: never the runner's array, so nothing is hoisted
        f = cell.forget(xt, h, c)
        i = cell.input(xt, h, c)
        g = cell.candidate(xt, h)
        c = f * c + i * g
        h = cell.output(xt, h, c) * np.tanh(c)
        np.testing.assert_allclose(y[:, t], h, rtol=RTOL, atol=ATOL)


def test_a_gate_fed_something_else_than_x_computes_it(monkeypatch):
    # DoubledInputCell declares hoisting but gives its forget gate 2 * x: the identity check
    # keeps the hoisted x @ W away from that gate.
    x, _ = data()
    runner = Recurrent(DoubledInputCell(I, H, rng=0), fused=False)
    got = run(runner, x, [6, 2, 4, 1])
    unhoisted(monkeypatch)
    assert_same(got, run(runner, x, [6, 2, 4, 1]))


def test_cells_that_do_not_declare_it_are_not_hoisted():
    @component
    class Undeclared(TwoGateCell):
        accepts_hoisted_inputs = False

    assert _hoist.hoisted_gates(Undeclared(I, H, rng=0)) == []
    assert len(_hoist.hoisted_gates(LSTMCell(I, H, rng=0))) == 4
    assert _hoist.hoisted_gates(Zoneout(LSTMCell(I, H, rng=0), 0.1, 0.1, rng=0)) == []


@pytest.mark.parametrize("kind", ["lstm", "gru", "layernorm", "two_gate"])
def test_bidirectional_and_stacked(kind, monkeypatch):
    x, _ = data()
    lengths = [6, 4, 1, 3]
    bi = Bidirectional(make(kind), rng=1)
    stack = Stacked([make(kind), Recurrent(make(kind, H), fused=False)])
    for layer in (bi, stack):
        for sub in getattr(layer, "layers", [bi.forward_layer, bi.backward_layer]):
            sub.fused = False
    got = [run(bi, x, lengths), run(stack, x, lengths)]
    unhoisted(monkeypatch)
    assert_same(got[0], run(bi, x, lengths))
    assert_same(got[1], run(stack, x, lengths))


@pytest.mark.parametrize(
    "wrap",
    [
        lambda c: Zoneout(c, 0.3, 0.2 if isinstance(c, LSTMCell) else 0.0, rng=4),
        lambda c: VariationalDropout(c, 0.3, 0.2, rng=4),
    ],
    ids=["zoneout", "variational-dropout"],
)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_wrapped_cells_fall_back_and_agree(wrap, kind, monkeypatch):
    x, _ = data()
    runner = Recurrent(wrap(make(kind)), fused=False)
    made = used_hoisting(monkeypatch)
    got = run(runner, x, [6, 5, 2, 4])
    assert made and all(h is None for _, h in made)
    unhoisted(monkeypatch)
    assert_same(got, run(runner, x, [6, 5, 2, 4]))


@pytest.mark.parametrize("kind", ["lstm", "layernorm", "gru", "lstm_user_gate"])
def test_a_trace_records_the_same_gates(kind, monkeypatch):
    x, _ = data()
    runner = Recurrent(make(kind), fused=False)
    got = trace(runner, x, lengths=[6, 2, 5, 3], preactivations=True).layer()
    unhoisted(monkeypatch)
    expected = trace(runner, x, lengths=[6, 2, 5, 3], preactivations=True).layer()
    assert got.unreported == () and expected.unreported == ()
    for field in ("gates", "preactivations", "states"):
        want, have = getattr(expected, field), getattr(got, field)
        assert sorted(have) == sorted(want) and want
        for name in want:
            np.testing.assert_allclose(
                have[name], want[name], rtol=RTOL, atol=ATOL, err_msg=f"{field}.{name}"
            )


def test_float32_runs_hoisted_in_float32(monkeypatch):
    monkeypatch.setattr(_hoist, "FORWARD_PRODUCTS", True)
    cell = LSTMCell(I, H, dtype=np.float32, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 5, I)).astype(np.float32)
    hoisted = _hoist.hoist_inputs(cell, np.ascontiguousarray(x.swapaxes(0, 1)))
    assert hoisted is not None and hoisted.products.dtype == np.float32
    y = Recurrent(cell, fused=False)(x)[0]
    ref = Recurrent(cell, fused=True)(x)[0]
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru", "layernorm"])
@pytest.mark.parametrize(
    ("batch", "lengths"), [(0, None), (3, [0, 0, 0]), (3, [4, 0, 1])], ids=["empty", "zero", "some"]
)
def test_empty_batches_and_zero_lengths(kind, batch, lengths, monkeypatch):
    x = np.random.default_rng(0).standard_normal((batch, 4, I))
    runner = Recurrent(make(kind), fused=False)
    got = run(runner, x, lengths)
    unhoisted(monkeypatch)
    assert_same(got, run(runner, x, lengths))


def test_nan_in_the_padding_stays_out_of_the_gradients():
    x = np.random.default_rng(0).standard_normal((3, 5, I))
    x[1, 2:] = np.nan  # past the length of sequence 1
    runner = Recurrent(make("lstm"), fused=False)
    out = run(runner, x, [5, 2, 5])
    for name, value in out.items():
        if name not in ("y", "inference", "dx"):
            assert np.isfinite(value).all(), name
