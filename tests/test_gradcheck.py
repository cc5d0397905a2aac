"""Every component's backward pass against central finite differences (lstmkit.testing).

The oracle is numerical differentiation in float64; relative errors must stay under
1e-6. Sizes are tiny because the check costs two forward passes per scalar entry.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import attrs
import numpy as np
import pytest

from lstmkit import Bidirectional, LSTMCell, LSTMState, Recurrent, Sequential, Stacked, activations
from lstmkit.layers import Dense, FinalState, LastStep, MeanPool
from lstmkit.module import Parameter
from lstmkit.runners.bidirectional import MERGE_MODES
from lstmkit.testing import check_cell_gradients, check_gradients, relative_error

TOL = 1e-6
ROOT = Path(__file__).resolve().parents[1]


def _x(batch=3, time=4, features=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, time, features))


def _assert_passes(report):
    assert report.passed(TOL), str(report)
    assert report.checked > 0


# -- LSTMCell: every option, step path and fused path ---------------------------------------------

CELL_OPTIONS = {
    "default": {},
    "peephole": {"peephole": True},
    "peephole-forget-only": {"peephole": ["forget"]},
    **{f"gate={name}": {"gate_activation": name} for name in activations.available()},
    **{f"candidate={name}": {"candidate_activation": name} for name in activations.available()},
    **{f"cell={name}": {"cell_activation": name} for name in activations.available()},
    "all-swapped+peephole": {
        "gate_activation": "hard_sigmoid",
        "candidate_activation": "softsign",
        "cell_activation": "elu",
        "peephole": True,
    },
}


FUSED = pytest.mark.parametrize("fused", [None, True, False], ids=["auto", "fused", "step"])


@FUSED
@pytest.mark.parametrize("options", list(CELL_OPTIONS.values()), ids=list(CELL_OPTIONS))
def test_lstm_cell_options(options, fused):
    # A nonzero random bias and peephole so every term of the backward pass matters.
    cell = LSTMCell(
        2, 3, rng=1, bias_initializer="normal", peephole_initializer="normal", **options
    )
    report = check_cell_gradients(cell, batch_size=2, time=3, lengths=[3, 2], fused=fused, rng=2)
    _assert_passes(report)
    names = {f"cell.{n}" for n in cell.named_parameters()}
    assert set(report.parameters) == names
    assert set(report.initial_state) == {"h", "c"}
    assert report.unused == ()
    if fused is False:
        assert report.step_path == {}  # nothing to compare: the checked path is the step path
    else:  # a plain LSTMCell runs fused by default: compared with its steps, array by array
        expected = names | {"outputs", "x"}
        expected |= {f"{k}.{n}" for k in ("final_state", "initial_state") for n in "hc"}
        assert set(report.step_path) == expected


@FUSED
def test_lstm_cell_one_step(fused):
    cell = LSTMCell(3, 2, rng=0, peephole=True, peephole_initializer="normal")
    _assert_passes(check_cell_gradients(cell, batch_size=1, time=1, fused=fused))


def test_zero_initialised_peephole_still_gets_gradient():
    # Peepholes start at zero by default; the cell state they look at is not zero, so their
    # gradient is not, and the checker must not flag them as unused.
    cell = LSTMCell(2, 3, rng=0, peephole=True)
    assert not np.any(cell.forget.p.value)
    report = check_cell_gradients(cell, lengths=[3, 1])
    _assert_passes(report)
    assert report.unused == ()


# -- Recurrent ------------------------------------------------------------------------------------


@FUSED
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [None, [4, 2, 0]], ids=["full", "lengths"])
def test_recurrent(fused, reverse, lengths):
    runner = Recurrent(
        LSTMCell(2, 3, rng=0, bias_initializer="normal"), reverse=reverse, fused=fused
    )
    report = check_gradients(runner, _x(), lengths=lengths, rng=1)
    _assert_passes(report)
    assert bool(report.step_path) == (fused is not False)


def test_recurrent_given_initial_state_and_unbatched_input():
    runner = Recurrent(LSTMCell(2, 3, rng=0))
    rng = np.random.default_rng(5)
    state = LSTMState(h=rng.standard_normal((3, 3)), c=rng.standard_normal((3, 3)))
    _assert_passes(check_gradients(runner, _x(), initial_state=state, lengths=[1, 4, 3]))
    _assert_passes(check_gradients(runner, _x()[0]))  # (time, features)


# -- Stacked --------------------------------------------------------------------------------------


@FUSED
def test_stacked(fused):
    stack = Stacked(
        [
            Recurrent(LSTMCell(2, 3, rng=0), fused=fused),
            Recurrent(LSTMCell(3, 2, rng=1), fused=fused),
        ]
    )
    report = check_gradients(stack, _x(), lengths=[4, 1, 3])
    _assert_passes(report)
    if fused is not False:
        assert {"layers.1.cell.output.U", "initial_state.0.c", "final_state.1.h"} <= set(
            report.step_path
        )


def test_stacked_dropout_with_fixed_masks():
    stack = Stacked(
        [LSTMCell(2, 3, rng=0), LSTMCell(3, 3, rng=1), LSTMCell(3, 2, rng=2)], dropout=0.4, rng=3
    )
    report = check_gradients(stack, _x(), lengths=[4, 2, 3], training_seed=7)
    _assert_passes(report)
    assert set(report.initial_state) == {f"{k}.{n}" for k in range(3) for n in "hc"}


@pytest.mark.parametrize("wrapper", ["variational", "zoneout"])
def test_regularization_wrappers_with_fixed_masks(wrapper):
    from lstmkit import VariationalDropout, Zoneout

    inner = LSTMCell(3, 2, rng=1, peephole=True)
    if wrapper == "variational":
        top = VariationalDropout(inner, input_rate=0.3, recurrent_rate=0.3, rng=2)
    else:
        top = Zoneout(inner, h_rate=0.3, c_rate=0.3, rng=2)
    stack = Stacked([LSTMCell(2, 3, rng=0), top])
    with pytest.raises(ValueError, match="training_seed"):
        check_gradients(stack, _x())
    # A sequence of length 0 keeps its variational masks undrawn (NaN): not differentiated.
    report = check_gradients(stack, _x(), lengths=[4, 0, 2], training_seed=3)
    _assert_passes(report)
    assert report.unused == ()
    assert set(report.initial_state) == {f"{k}.{n}" for k in range(2) for n in "hc"}
    assert "layers.0.cell.forget.W" in report.step_path  # the plain first layer runs fused
    assert max(report.step_path.values()) < 1e-12  # undrawn masks: NaN alike on both paths


def test_dropout_needs_a_training_seed():
    stack = Stacked([LSTMCell(2, 3, rng=0), LSTMCell(3, 2, rng=1)], dropout=0.5)
    with pytest.raises(ValueError, match="training_seed"):
        check_gradients(stack, _x())


# -- Bidirectional --------------------------------------------------------------------------------


@FUSED
@pytest.mark.parametrize("merge", MERGE_MODES)
def test_bidirectional(merge, fused):
    bi = Bidirectional(Recurrent(LSTMCell(2, 3, rng=0), fused=fused), merge=merge, rng=1)
    report = check_gradients(bi, _x(), lengths=[4, 3, 1])
    _assert_passes(report)
    assert {"forward.h", "backward.c"} <= set(report.initial_state)


def test_bidirectional_inside_a_stack_with_dropout():
    stack = Stacked(
        [
            Bidirectional(LSTMCell(2, 2, rng=0), rng=1),
            Bidirectional(LSTMCell(4, 2, rng=2), merge="sum", rng=3),
        ],
        dropout=0.3,
        rng=4,
    )
    _assert_passes(check_gradients(stack, _x(), lengths=[4, 2, 3], training_seed=0))


# -- Sequential and feed-forward layers ------------------------------------------------------------


@pytest.mark.parametrize("pool", [LastStep, FinalState, MeanPool])
def test_sequential_with_pooling_and_dense(pool):
    # LastStep is a forward runner's summary (after a backward direction it is refused).
    last = (
        LSTMCell(3, 4, rng=1) if pool is LastStep else Bidirectional(LSTMCell(3, 2, rng=1), rng=2)
    )
    model = Sequential(
        Stacked([LSTMCell(2, 3, rng=0), last]),
        pool(),
        Dense(4, 2, "tanh", rng=3, bias_initializer="normal"),
    )
    _assert_passes(check_gradients(model, _x(), lengths=[4, 0, 2]))


@pytest.mark.parametrize("activation", activations.available())
def test_sequential_dense_activations(activation):
    model = Sequential(
        Recurrent(LSTMCell(2, 3, rng=0)), Dense(3, 2, activation, rng=1, bias_initializer="normal")
    )
    _assert_passes(check_gradients(model, _x()))


# -- the checker itself ----------------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class _Broken(LSTMCell):
    """An LSTMCell whose step backward forgets the forget gate's path along the belt."""

    def step_backward(self, cache, d_state, d_y):
        d_prev, dx = super().step_backward(cache, d_state, d_y)
        return LSTMState(h=d_prev.h, c=d_prev.c * 0.9), dx


def test_checker_catches_a_wrong_backward():
    broken = _Broken(2, 3, rng=0)
    report = check_cell_gradients(broken, lengths=[3, 2])
    assert not report.passed(TOL)
    assert report.max_error > 1e-3
    assert report.initial_state["c"] > 1e-3


def test_checker_restores_weights_and_gradients():
    runner = Recurrent(LSTMCell(2, 3, rng=0))
    for p in runner.parameters():
        p.grad[...] = 1.5
    before = runner.state_dict()
    check_gradients(runner, _x())
    for name, p in runner.named_parameters().items():
        np.testing.assert_array_equal(p.value, before[name])
        assert np.all(p.grad == 1.5)


def test_checker_refuses_float32_and_non_components():
    with pytest.raises(TypeError, match="float64"):
        check_gradients(Recurrent(LSTMCell(2, 3, dtype=np.float32, rng=0)), _x())
    with pytest.raises(TypeError, match="component"):
        check_gradients(object(), _x())


def test_checker_samples_entries():
    report = check_gradients(Recurrent(LSTMCell(2, 4, rng=0)), _x(), max_entries=3)
    _assert_passes(report)
    assert report.checked <= 3 * (12 + 1 + 2)


def test_a_nan_error_fails_the_report():
    from lstmkit.testing import GradientReport

    report = GradientReport({"cell.W": 1e-9, "cell.U": float("nan")}, 1e-10, {"h": 1e-10}, 3)
    assert not report.passed(TOL)
    assert report.worst == "cell.U"
    assert report.max_error == float("inf")


def test_relative_error_definition():
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert relative_error([0.0], [0.0]) == 0.0
    assert relative_error([1.0], [0.0]) == 1.0
    assert relative_error([1.0, 0.0], [1.0, 1e-3]) == pytest.approx(1e-3 / (1 + np.sqrt(1 + 1e-6)))


# -- fused and unfused training agree ------------------------------------------------------------


def _unfused_copy(runner):
    clone = copy.deepcopy(runner)
    for module in [clone, *_descendants(clone)]:
        if isinstance(module, Recurrent):
            module.fused = False
    return clone


def _descendants(module):
    for _, child in module.named_children():
        yield child
        yield from _descendants(child)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["stacked", "bidirectional"])
def test_one_training_step_fused_equals_unfused(kind, dtype):
    from lstmkit import losses
    from lstmkit.optimizers import Adam
    from lstmkit.training import train_step

    if kind == "stacked":
        fused = Stacked(
            [LSTMCell(2, 4, dtype=dtype, rng=0), LSTMCell(4, 3, dtype=dtype, rng=1)], dropout=0.3
        )
    else:
        fused = Stacked(
            [
                Bidirectional(LSTMCell(2, 4, dtype=dtype, rng=0), rng=1),
                Bidirectional(LSTMCell(8, 3, dtype=dtype, rng=2), merge="mean", rng=3),
            ],
            dropout=0.3,
        )
    unfused = _unfused_copy(fused)
    assert all(not m.fused for m in _descendants(unfused) if isinstance(m, Recurrent))
    x = _x(4, 6, 2).astype(dtype)
    target = np.random.default_rng(9).standard_normal((4, 6, fused.output_size)).astype(dtype)
    lengths = [6, 3, 5, 1]
    results = []
    for model in (fused, unfused):
        opt = Adam(model.named_parameters(), lr=0.01)
        # Same seed -> same dropout masks in both runs.
        train_step(
            model,
            losses.mean_squared_error,
            opt,
            x,
            target,
            lengths=lengths,
            rng=np.random.default_rng(4),
        )
        results.append((model.named_parameters(), model.state_dict()))
    tol = 1e-11 if dtype == np.float64 else 1e-5
    (pf, wf), (pu, wu) = results
    assert pf.keys() == pu.keys()
    for name in pf:
        np.testing.assert_allclose(pf[name].grad, pu[name].grad, rtol=tol, atol=tol, err_msg=name)
        np.testing.assert_allclose(wf[name], wu[name], rtol=tol, atol=tol, err_msg=name)


# -- the custom-cell guide runs as a test -------------------------------------------------------------


def test_custom_cell_guide_runs(monkeypatch):
    from lstmkit import config
    from lstmkit import initializers as inits

    # The guide registers its cell; registries are global, and Sybil runs the same page later
    # in this process: let the registrations end with this test.
    for module, name in ((config, "_BY_NAME"), (config, "_BY_CLASS"), (activations, "_REGISTRY")):
        monkeypatch.setattr(module, name, dict(getattr(module, name)))
    monkeypatch.setattr(inits, "_USER", dict(inits._USER))
    page = (ROOT / "docs" / "guides" / "custom-cell.md").read_text()
    blocks = re.findall(r"^```python[^\n]*\n(.*?)^```", page, flags=re.DOTALL | re.MULTILINE)
    # Interactive (">>>") blocks are doctests, which Sybil runs with the docs.
    blocks = [b for b in blocks if not b.lstrip().startswith(">>>")]
    assert blocks, "no python blocks found in the guide"
    namespace: dict[str, object] = {}
    exec(compile("\n".join(blocks), "custom-cell.md", "exec"), namespace)  # noqa: S102
    assert namespace["report"].passed(1e-6)


# -- the other cells of the package keep the same contract --------------------------------------------

VARIANTS = {
    "GRUCell": lambda cls: cls(2, 3, rng=0, bias_initializer="normal"),
    "CoupledLSTMCell": lambda cls: cls(2, 3, rng=0, peephole=True, peephole_initializer="normal"),
    "LayerNormLSTMCell": lambda cls: cls(2, 3, rng=0),
    "ProjectionLSTMCell": lambda cls: cls(2, 4, 2, rng=0, peephole=True),
}


def _variant(name):
    import lstmkit

    return VARIANTS[name](getattr(lstmkit, name))  # a missing cell fails, never skips


@pytest.mark.parametrize("fused", [None, False], ids=["auto", "step"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_cells(name, fused):
    report = check_cell_gradients(_variant(name), lengths=[3, 1], fused=fused, rng=3)
    _assert_passes(report)
    assert report.unused == ()
    assert report.step_path == {}  # no fused path: the automatic path is the step path


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_cells_refuse_fused_true(name):
    with pytest.raises(TypeError, match="fused sequence path"):
        check_cell_gradients(_variant(name), fused=True)


# -- the checker's blind spots: unused parameters and a fused path unlike the steps ------------------


@attrs.define(eq=False, repr=False)
class _ScaledOutput(LSTMCell):
    """``h = s * o * tanh(c)`` with a learned ``s``, stepped exactly; but it declares LSTMCell's
    fused kernel exact (``cannot_fuse`` returns None), and that kernel ignores ``s``."""

    s: Parameter = attrs.field(init=False)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.s = Parameter(np.full(self.hidden_size, 1.5, self.dtype))

    def cannot_fuse(self):
        return None  # the false declaration under test

    def step(self, state, x):
        new, _ = super().step(state, x)
        h = new.h * self.s.value
        return LSTMState(h=h, c=new.c), h

    def step_train(self, state, x):
        new, _, cache = super().step_train(state, x)
        h = new.h * self.s.value
        return LSTMState(h=h, c=new.c), h, (cache, new.h)

    def step_backward(self, cache, d_state, d_y):
        inner, h_unscaled = cache
        dh = d_y + d_state.h
        self.s.grad += (dh * h_unscaled).sum(axis=0)
        d_inner = LSTMState(h=dh * self.s.value, c=d_state.c)
        return super().step_backward(inner, d_inner, np.zeros_like(d_y))


def test_scaled_output_cell_is_right_on_its_step_path():
    report = check_cell_gradients(_ScaledOutput(2, 3, rng=0), lengths=[3, 2], fused=False)
    _assert_passes(report)
    assert report.unused == ()


@pytest.mark.parametrize("fused", [None, True], ids=["auto", "fused"])
def test_checker_catches_a_fused_path_that_ignores_a_parameter(fused):
    cell = _ScaledOutput(2, 3, rng=0)
    assert Recurrent(cell).uses_fused()
    report = check_cell_gradients(cell, lengths=[3, 2], fused=fused)
    assert not report.passed(TOL)
    # Finite differences of the fused path alone agree: s gets no gradient on either side ...
    assert report.parameters["cell.s"] == 0.0
    assert report.unused == ("cell.s",)
    # ... and the step path differs in every output and in s's gradient.
    assert report.step_path["outputs"] > 0.1
    assert report.step_path["cell.s"] == 1.0
    assert report.worst.startswith("step_path.")
    assert "unused" in str(report) and "cell.s" in str(report)


def test_checker_catches_a_fused_backward_that_drops_a_gate_contribution(monkeypatch):
    original = LSTMCell.backward_sequence

    def drops_forget_u(self, cache, dy, d_final):
        before = self.forget.U.grad.copy()
        out = original(self, cache, dy, d_final)
        self.forget.U.grad[...] = before  # the forget gate's recurrent weights lose their share
        return out

    monkeypatch.setattr(LSTMCell, "backward_sequence", drops_forget_u)
    report = check_cell_gradients(LSTMCell(2, 3, rng=0), lengths=[3, 2])
    assert not report.passed(TOL)
    assert report.parameters["cell.forget.U"] == 1.0  # analytic zero, numeric not
    assert report.step_path["cell.forget.U"] == 1.0
    others = {k: v for k, v in report.step_path.items() if k != "cell.forget.U"}
    assert max(others.values()) < 1e-12  # the rest of the kernel is the steps' numbers
    assert report.unused == ()


@attrs.define(eq=False, repr=False)
class _DeadParameter(LSTMCell):
    """An LSTMCell with a parameter that no path ever reads."""

    unused_scale: Parameter = attrs.field(init=False)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.unused_scale = Parameter(np.ones(self.hidden_size, self.dtype))


def test_checker_flags_a_parameter_that_never_receives_gradient():
    report = check_cell_gradients(_DeadParameter(2, 3, rng=0), lengths=[3, 2])
    assert report.max_error < TOL  # every error is small: a zero matches a zero ...
    assert report.unused == ("cell.unused_scale",)  # ... but it is reported
    assert not report.passed(TOL)
    allowed = check_cell_gradients(
        _DeadParameter(2, 3, rng=0), lengths=[3, 2], allow_unused=["cell.unused_scale"]
    )
    _assert_passes(allowed)
    assert allowed.unused == ()


def test_allow_unused_names_must_exist():
    with pytest.raises(ValueError, match="allow_unused"):
        check_cell_gradients(LSTMCell(2, 3, rng=0), allow_unused=["cell.forget.V"])
    with pytest.raises(ValueError, match="allow_unused"):
        check_cell_gradients(LSTMCell(2, 3, rng=0), allow_unused="cell.forget.U")


def test_a_gradient_zero_for_a_reason_is_flagged_until_allowed():
    # One step from a zero state: h_prev = 0 gives every U no gradient, and c_prev = 0 gives
    # the whole forget gate (f * c_prev) and the input peephole none (the output one sees c_t).
    runner = Recurrent(LSTMCell(2, 3, rng=0, peephole=True))
    zero = runner.initial_state(2)
    x = _x(batch=2, time=1)
    report = check_gradients(runner, x, initial_state=zero)
    expected = {f"cell.{g}.U" for g in ("forget", "input", "candidate", "output")}
    expected |= {"cell.forget.W", "cell.forget.b", "cell.forget.p", "cell.input.p"}
    assert set(report.unused) == expected
    assert not report.passed(TOL)
    _assert_passes(check_gradients(runner, x, initial_state=zero, allow_unused=expected))
