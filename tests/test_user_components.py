"""User components run on the path the runner chooses, with the numbers of the step path.

A runner takes a cell's fused sequence path by default only when the cell declares that
the kernel computes exactly what its steps compute (``Recurrent.uses_fused``). These
properties build *user* components -- gate subclasses with their own pre-activation and
parameter, activations that reuse a built-in's name for another function, an LSTMCell
subclass with its own step, regularization wrappers -- and check, inside ``Recurrent``,
``Stacked`` and ``Bidirectional``, that the default path equals the step path
(``fused=False``) in outputs, final states, input gradients, initial-state gradients and
every parameter gradient, and that ``fused=True`` is refused where the kernel cannot apply.
The step path itself is checked against finite differences, and the fused path with a
user "sigmoid" against a plain per-step loop written from the LSTM equations.
"""

import copy

import attrs
import numpy as np
import pytest
from _fd import check_runner_gradients
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmkit import (
    Bidirectional,
    Gate,
    LSTMCell,
    LSTMState,
    Parameter,
    Recurrent,
    Stacked,
    VariationalDropout,
    Zoneout,
    activations,
)
from lstmkit.activations import Activation
from lstmkit.initializers import as_rng
from lstmkit.module import component

PROPERTY = settings(max_examples=25, deadline=None)

# -- user activations (never registered: the built-in names cannot be) -----------------------------

# Named like built-ins, computing something else (all stable for any input).
FAKE_SIGMOID = Activation(  # sigmoid(2 z)
    "sigmoid", lambda z: 0.5 * (1 + np.tanh(z)), lambda y: 2 * y * (1 - y), True
)
FAKE_TANH = Activation("tanh", lambda z: np.tanh(0.5 * z), lambda y: 0.5 * (1 - y * y), True)
FAKE_HARD_SIGMOID = Activation(  # smooth, derivative from the pre-activation
    "hard_sigmoid",
    lambda z: 0.5 * (1 + np.tanh(0.3 * z)),
    lambda z: 0.15 * (1 - np.tanh(0.3 * z) ** 2),
)
# A name of its own, derivative from the pre-activation: z / sqrt(1 + z^2).
ISRU = Activation("isru", lambda z: z / np.sqrt(1 + z * z), lambda z: (1 + z * z) ** -1.5)

GATE_ACTIVATIONS = [activations.sigmoid, activations.hard_sigmoid, FAKE_SIGMOID, FAKE_HARD_SIGMOID]
CANDIDATE_ACTIVATIONS = [activations.tanh, activations.softsign, FAKE_TANH, ISRU, FAKE_SIGMOID]
CELL_ACTIVATIONS = [activations.tanh, FAKE_TANH, ISRU, FAKE_SIGMOID]
GATES = ("forget", "input", "candidate", "output")

# -- user components -------------------------------------------------------------------------------


@component
class ScaledGate(Gate):
    """A gate with a learned per-unit scale of its pre-activation:
    ``z = (x @ W + h @ U + b [+ c * p]) * s``."""

    s: Parameter = attrs.field(init=False)

    def __attrs_post_init__(self):
        gen = as_rng(self.rng)
        self.rng = gen  # Gate draws its weights from it, then s comes next
        super().__attrs_post_init__()
        self.s = Parameter((1 + 0.5 * gen.standard_normal(self.hidden_size)).astype(self.dtype))

    def preactivation(self, x, h, c=None):
        return super().preactivation(x, h, c) * self.s.value

    def backward(self, dy, cache):
        dz = dy * self.activation.grad(cache.z, cache.y)
        self.s.grad += (dz * super().preactivation(cache.x, cache.h, cache.c)).sum(axis=0)
        dz = dz * self.s.value  # gradient of the unscaled pre-activation
        self.W.grad += cache.x.T @ dz
        self.U.grad += cache.h.T @ dz
        self.b.grad += dz.sum(axis=0)
        dc = None
        if self.p is not None:
            self.p.grad += (dz * cache.c).sum(axis=0)
            dc = dz * self.p.value
        return dz @ self.W.value.T, dz @ self.U.value.T, dc


@component
class DecayingCell(LSTMCell):
    """An LSTMCell whose new cell state is scaled by a learned per-unit ``k`` after the step:
    ``state = (h, k * c)`` with ``h`` computed from the unscaled ``c``."""

    k: Parameter = attrs.field(init=False)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.k = Parameter(np.linspace(0.6, 1.1, self.hidden_size).astype(self.dtype))

    def step(self, state, x):
        new, h = super().step(state, x)
        return LSTMState(h=h, c=new.c * self.k.value), h

    def step_train(self, state, x):
        new, h, cache = super().step_train(state, x)
        return LSTMState(h=h, c=new.c * self.k.value), h, cache

    def step_backward(self, cache, d_state, d_y):
        self.k.grad += (d_state.c * cache.c).sum(axis=0)  # cache.c: the unscaled new c
        d_new = LSTMState(h=d_state.h, c=d_state.c * self.k.value)
        return super().step_backward(cache, d_new, d_y)


ADDED = ("s", "k")  # parameters the user components add


@attrs.frozen
class Spec:
    """How to build one LSTM cell out of user components."""

    scaled: tuple[str, ...]  # gates that are ScaledGate
    subclass: bool  # DecayingCell instead of LSTMCell
    gate: tuple[Activation, Activation, Activation]  # forget, input, output
    candidate: Activation
    cell: Activation
    peephole: bool

    @property
    def fusable(self):
        return not self.scaled and not self.subclass


@st.composite
def specs(draw):
    # Half the time only sigmoid- and tanh-named activations (built-in or not): the names of
    # the kernel's fast path, where resolving an activation by name would go wrong.
    lookalike = draw(st.booleans())
    gates = [activations.sigmoid, FAKE_SIGMOID] if lookalike else GATE_ACTIVATIONS
    candidates = [activations.tanh, FAKE_TANH] if lookalike else CANDIDATE_ACTIVATIONS
    cells = [activations.tanh, FAKE_TANH] if lookalike else CELL_ACTIVATIONS
    return Spec(
        scaled=tuple(g for g in GATES if draw(st.booleans())) if draw(st.booleans()) else (),
        subclass=draw(st.booleans()),
        gate=tuple(draw(st.sampled_from(gates)) for _ in range(3)),
        candidate=draw(st.sampled_from(candidates)),
        cell=draw(st.sampled_from(cells)),
        peephole=draw(st.booleans()),
    )


def build(spec, input_size, hidden, dtype, seed):
    rng = np.random.default_rng(seed)
    forget, input_, output = spec.gate
    activation = {"forget": forget, "input": input_, "candidate": spec.candidate, "output": output}
    options = {"bias_initializer": "normal", "peephole_initializer": "normal", "dtype": dtype}
    given_gates = {
        name: ScaledGate(
            input_size,
            hidden,
            activation=activation[name],
            peephole=spec.peephole and name != "candidate",
            rng=rng,
            **options,
        )
        for name in spec.scaled
    }
    cls = DecayingCell if spec.subclass else LSTMCell
    cell = cls(
        input_size,
        hidden,
        **given_gates,
        gate_activation=forget,
        candidate_activation=spec.candidate,
        cell_activation=spec.cell,
        peephole=spec.peephole,
        rng=rng,
        **options,
    )
    for name in ("input", "output"):  # mixed gate activations
        cell.gates[name].activation = activation[name]
    return cell


# -- nests of arrays (states of stacks, wrappers and bidirectional runners) -------------------------


def leaves(obj, prefix=""):
    if isinstance(obj, np.ndarray):
        yield prefix, obj
    elif isinstance(obj, (tuple, list)):
        for k, item in enumerate(obj):
            yield from leaves(item, f"{prefix}.{k}")
    elif attrs.has(type(obj)):
        for f in attrs.fields(type(obj)):
            yield from leaves(getattr(obj, f.name), f"{prefix}.{f.name}")
    elif obj is not None:
        raise TypeError(type(obj).__name__)


def nest_map(fn, obj):
    if isinstance(obj, np.ndarray):
        return fn(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj)(nest_map(fn, item) for item in obj)
    if attrs.has(type(obj)):
        return type(obj)(
            **{f.name: nest_map(fn, getattr(obj, f.name)) for f in attrs.fields(type(obj))}
        )
    return obj


def random_like(template, rng, scale=0.5):
    """Random arrays shaped like ``template``; undrawn dropout masks (NaN) stay as they are."""
    return nest_map(
        lambda a: (
            a.copy()
            if np.isnan(a).any()
            else (scale * rng.standard_normal(a.shape)).astype(a.dtype)
        ),
        template,
    )


def modules(module):
    yield module
    for _, child in module.named_children():
        yield from modules(child)


def stepped(model):
    """A deep copy of ``model`` with every runner stepping its cell (same weights, same rngs)."""
    clone = copy.deepcopy(model)
    for m in modules(clone):
        if isinstance(m, Recurrent):
            m.fused = False
    return clone


# -- observing and comparing two paths -------------------------------------------------------------


def observe(model, x, s0, lengths, dy, d_final, seed):
    """Everything a caller sees: inference, training forward, backward, parameter gradients."""
    out = {}
    y_inf, final_inf = model(x, s0, lengths)
    out["y (inference)"] = y_inf
    out.update({f"final{k} (inference)": a for k, a in leaves(final_inf)})
    model.zero_grad()
    y, final, cache = model.forward(x, s0, lengths, training=True, rng=np.random.default_rng(seed))
    out["y"] = y
    out.update({f"final{k}": a for k, a in leaves(final)})
    dx, d_init = model.backward(cache, dy, d_final)
    out["dx"] = dx
    out.update({f"d_initial{k}": a for k, a in leaves(d_init)})
    out.update({f"grad {n}": p.grad.copy() for n, p in model.named_parameters().items()})
    return out


def assert_same(a, b, dtype):
    assert a.keys() == b.keys()
    for key in a:
        u, v = np.asarray(a[key]), np.asarray(b[key])
        assert u.dtype == dtype, f"{key}: dtype {u.dtype}"
        finite = np.abs(v[np.isfinite(v)])  # undrawn dropout masks are NaN on both paths
        scale = max(1.0, float(finite.max(initial=0.0)))
        if dtype == np.float32:
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5 * scale, err_msg=key)
        else:
            np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12 * scale, err_msg=key)


def compare_paths(model, batch, time, lengths, seed):
    """Default path of ``model`` against its step-path copy, on the same random data."""
    dtype = model.dtype
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, time, model.input_size)).astype(dtype)
    template = model.initial_state(batch)
    s0 = random_like(template, rng)
    dy = rng.standard_normal((batch, time, model.output_size)).astype(dtype)
    d_final = nest_map(
        lambda a: (
            np.zeros_like(a) if np.isnan(a).any() else rng.standard_normal(a.shape).astype(a.dtype)
        ),
        template,
    )
    step_model = stepped(model)  # copied before any call: wrapper generators start alike
    default = observe(model, x, s0, lengths, dy, d_final, seed)
    step = observe(step_model, x, s0, lengths, dy, d_final, seed)
    assert_same(default, step, dtype)
    return default


def check_cell_paths(cell, spec):
    """The runner takes the fused path exactly for fusable cells; True is refused otherwise."""
    assert Recurrent(cell).uses_fused() is spec.fusable
    if spec.fusable:
        assert Recurrent(cell, fused=True).uses_fused()
    else:
        with pytest.raises(TypeError, match="fused"):
            Recurrent(cell, fused=True)


def check_added_gradients(result, skip=None):
    """Every parameter a user component adds gets a nonzero gradient on the default path
    (but those whose names start with ``skip``)."""
    added = [k for k in result if k.startswith("grad ") and k.rsplit(".", 1)[-1] in ADDED]
    if skip is not None:
        added = [k for k in added if not k.startswith(f"grad {skip}")]
    for key in added:
        assert np.any(result[key] != 0), f"{key} received no gradient"
    return added


dtypes = st.sampled_from([np.float64, np.float32])


@st.composite
def batch_and_lengths(draw, time):
    batch = draw(st.integers(1, 3))
    lengths = draw(st.none() | st.lists(st.integers(0, time), min_size=batch, max_size=batch))
    return batch, lengths


# -- properties ------------------------------------------------------------------------------------


@PROPERTY
@given(
    spec=specs(), dtype=dtypes, data=st.data(), reverse=st.booleans(), seed=st.integers(0, 2**16)
)
def test_recurrent_default_path_equals_step_path(spec, dtype, data, reverse, seed):
    time = data.draw(st.integers(1, 4))
    batch, lengths = data.draw(batch_and_lengths(time))
    cell = build(spec, 2, 3, dtype, seed)
    check_cell_paths(cell, spec)
    runner = Recurrent(cell, reverse=reverse)
    result = compare_paths(runner, batch, time, lengths, seed)
    if lengths is None or max(lengths) > 0:
        check_added_gradients(result)
    if dtype == np.float64:
        # The step path's gradients, every parameter a user added included, against
        # central differences.
        rng = np.random.default_rng(seed + 1)
        x = rng.standard_normal((batch, time, 2))
        s0 = LSTMState(h=rng.standard_normal((batch, 3)), c=rng.standard_normal((batch, 3)))
        check_runner_gradients(runner, x, s0, lengths, seed=seed)


@PROPERTY
@given(
    first=specs(),
    second=specs(),
    wrapper=st.sampled_from([None, "variational", "zoneout"]),
    dropout=st.sampled_from([0.0, 0.3]),
    dtype=dtypes,
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_stacked_default_path_equals_step_path(first, second, wrapper, dropout, dtype, data, seed):
    time = data.draw(st.integers(1, 4))
    batch, lengths = data.draw(batch_and_lengths(time))
    top = build(second, 3, 2, dtype, seed + 1)
    if wrapper == "variational":
        top = VariationalDropout(top, input_rate=0.3, recurrent_rate=0.3, rng=seed)
    elif wrapper == "zoneout":
        top = Zoneout(top, h_rate=0.3, c_rate=0.2, rng=seed)
    plain = LSTMCell(
        3, 3, gate_activation=FAKE_SIGMOID, candidate_activation=ISRU, dtype=dtype, rng=seed
    )
    stack = Stacked([build(first, 2, 3, dtype, seed), plain, top], dropout=dropout, rng=seed)
    assert stack.layers[1].uses_fused()  # a plain LSTMCell with user activations runs fused
    result = compare_paths(stack, batch, time, lengths, seed)
    if lengths is None or max(lengths) > 0:
        # Zoneout may keep every unit of a short sequence at its previous value, and then
        # the wrapped cell's parameters rightly get no gradient.
        check_added_gradients(result, skip="layers.2." if wrapper == "zoneout" else None)


@PROPERTY
@given(
    forward=specs(),
    backward=specs(),
    merge=st.sampled_from(["concat", "sum", "mean", "mul"]),
    dtype=dtypes,
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_bidirectional_default_path_equals_step_path(forward, backward, merge, dtype, data, seed):
    time = data.draw(st.integers(1, 4))
    batch, lengths = data.draw(batch_and_lengths(time))
    # Both directions given: a clone of a user cell is the runners' business, not this test's.
    bi = Bidirectional(
        build(forward, 2, 3, dtype, seed), build(backward, 2, 3, dtype, seed + 1), merge=merge
    )
    assert bi.forward_layer.uses_fused() is forward.fusable
    assert bi.backward_layer.uses_fused() is backward.fusable
    result = compare_paths(bi, batch, time, lengths, seed)
    if lengths is None or max(lengths) > 0:
        check_added_gradients(result)


# -- examples --------------------------------------------------------------------------------------


def test_added_parameters_get_gradient_and_match_finite_differences():
    spec = Spec(
        scaled=("forget", "candidate", "output"),
        subclass=True,
        gate=(FAKE_SIGMOID, activations.sigmoid, FAKE_HARD_SIGMOID),
        candidate=ISRU,
        cell=FAKE_TANH,
        peephole=True,
    )
    cell = build(spec, 2, 3, np.float64, 7)
    names = set(cell.named_parameters())
    assert {"forget.s", "candidate.s", "output.s", "k"} <= names
    runner = Recurrent(cell, reverse=True)
    result = compare_paths(runner, 3, 4, [4, 1, 3], 7)
    assert len(check_added_gradients(result)) == 4
    rng = np.random.default_rng(3)
    s0 = LSTMState(h=rng.standard_normal((3, 3)), c=rng.standard_normal((3, 3)))
    check_runner_gradients(runner, rng.standard_normal((3, 4, 2)), s0, [4, 1, 3])


def test_cell_subclass_step_is_honoured():
    """DecayingCell's own step runs by default: its numbers differ from LSTMCell's with the
    same weights, and equal a hand loop over its step."""
    cell = DecayingCell(2, 3, rng=0)
    plain = LSTMCell(2, 3, rng=0)
    assert not Recurrent(cell).uses_fused() and Recurrent(plain).uses_fused()
    with pytest.raises(TypeError, match="DecayingCell is a subclass of LSTMCell"):
        Recurrent(cell, fused=True)
    x = np.random.default_rng(1).standard_normal((2, 5, 2))
    y, final = Recurrent(cell)(x)
    y_plain, _ = Recurrent(plain)(x)
    assert not np.allclose(y, y_plain)
    state = cell.initial_state(2)
    for t in range(5):
        state, out = cell.step(state, x[:, t])
        np.testing.assert_array_equal(y[:, t], out)
    np.testing.assert_array_equal(final.c, state.c)


def test_gate_subclass_refuses_fused_true():
    gate = ScaledGate(2, 3, rng=0)
    cell = LSTMCell(2, 3, input=gate, rng=1)
    assert not Recurrent(cell).uses_fused()
    with pytest.raises(TypeError, match="the input gate is a ScaledGate"):
        Recurrent(cell, fused=True)


# -- an independent oracle: a per-step loop written from the LSTM equations -----------------------


def _user_sigmoid(z):  # FAKE_SIGMOID's function written again: 1 / (1 + exp(-2 z))
    return 1.0 / (1.0 + np.exp(-2.0 * z))


def _half_tanh(z):  # FAKE_TANH's
    return np.tanh(z / 2.0)


def _isru(z):
    return z / np.sqrt(1.0 + z * z)


def _reference_lstm(x, lengths, weights, h0, c0, gate, candidate, cell):
    """Plain per-sequence, per-step LSTM from the equations; peepholes where ``weights["p"]``
    has them (forget and input see c_prev, output sees the new c)."""
    batch, time, _ = x.shape
    hidden = h0.shape[1]
    W, U, bias, p = (weights[k] for k in ("W", "U", "b", "p"))
    y = np.zeros((batch, time, hidden))
    h_final, c_final = h0.copy(), c0.copy()
    for b in range(batch):
        h, c = h0[b].copy(), c0[b].copy()
        for t in range(lengths[b]):
            pre = {name: x[b, t] @ W[name] + h @ U[name] + bias[name] for name in GATES}
            f = gate(pre["forget"] + c * p.get("forget", 0.0))
            i = gate(pre["input"] + c * p.get("input", 0.0))
            g = candidate(pre["candidate"])
            c = f * c + i * g
            o = gate(pre["output"] + c * p.get("output", 0.0))
            h = o * cell(c)
            y[b, t] = h
        h_final[b], c_final[b] = h, c
    return y, h_final, c_final


ORACLE_CELLS = {
    # The fast path's names and layout, other functions: only an activation resolved by its
    # own object gives these numbers.
    "named-like-fast-path": ({"cell_activation": FAKE_TANH}, _half_tanh),
    "peephole-isru": ({"cell_activation": ISRU, "peephole": True}, _isru),
}


@pytest.mark.parametrize("variant", list(ORACLE_CELLS))
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_user_sigmoid_on_the_default_path_equals_a_plain_loop(variant, reverse):
    options, cell_function = ORACLE_CELLS[variant]
    cell = LSTMCell(
        3,
        4,
        gate_activation=FAKE_SIGMOID,
        candidate_activation=FAKE_TANH,
        bias_initializer="normal",
        peephole_initializer="normal",
        rng=5,
        **options,
    )
    runner = Recurrent(cell, reverse=reverse)
    assert runner.uses_fused()  # the kernel, running the user's functions
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 5, 3))
    lengths = [5, 2, 0]
    h0, c0 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    weights = {
        k: {
            g: getattr(cell.gates[g], k).value
            for g in GATES
            if getattr(cell.gates[g], k) is not None
        }
        for k in ("W", "U", "b", "p")
    }
    xr = x.copy()
    if reverse:  # a reversed runner reads each sequence from its last valid step
        for b, n in enumerate(lengths):
            xr[b, :n] = x[b, :n][::-1]
    y_ref, h_ref, c_ref = _reference_lstm(
        xr, lengths, weights, h0, c0, _user_sigmoid, _half_tanh, cell_function
    )
    if reverse:
        for b, n in enumerate(lengths):
            y_ref[b, :n] = y_ref[b, :n][::-1].copy()
    s0 = LSTMState(h=h0, c=c0)
    y, final = runner(x, s0, lengths)
    y_train, final_train, _ = runner.forward(x, s0, lengths)
    for got, want in (
        (y, y_ref),
        (final.h, h_ref),
        (final.c, c_ref),
        (y_train, y_ref),
        (final_train.c, c_ref),
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # The built-in activations would give other numbers: the user's functions ran.
    builtin = copy.deepcopy(cell)
    for name in ("forget", "input", "output"):
        builtin.gates[name].activation = "sigmoid"
    assert not np.allclose(Recurrent(builtin, reverse=reverse)(x, s0, lengths)[0], y)
