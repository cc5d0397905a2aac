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
from lstmkit.layers import Dense, LastStep, MeanPool
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


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "step"])
@pytest.mark.parametrize("options", list(CELL_OPTIONS.values()), ids=list(CELL_OPTIONS))
def test_lstm_cell_options(options, fused):
    # A nonzero random bias and peephole so every term of the backward pass matters.
    cell = LSTMCell(
        2, 3, rng=1, bias_initializer="normal", peephole_initializer="normal", **options
    )
    report = check_cell_gradients(cell, batch_size=2, time=3, lengths=[3, 2], fused=fused, rng=2)
    _assert_passes(report)
    assert set(report.parameters) == {f"cell.{n}" for n in cell.named_parameters()}
    assert set(report.initial_state) == {"h", "c"}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "step"])
def test_lstm_cell_one_step(fused):
    cell = LSTMCell(3, 2, rng=0, peephole=True, peephole_initializer="normal")
    _assert_passes(check_cell_gradients(cell, batch_size=1, time=1, fused=fused))


# -- Recurrent ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "step"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [None, [4, 2, 0]], ids=["full", "lengths"])
def test_recurrent(fused, reverse, lengths):
    runner = Recurrent(
        LSTMCell(2, 3, rng=0, bias_initializer="normal"), reverse=reverse, fused=fused
    )
    _assert_passes(check_gradients(runner, _x(), lengths=lengths, rng=1))


def test_recurrent_given_initial_state_and_unbatched_input():
    runner = Recurrent(LSTMCell(2, 3, rng=0))
    rng = np.random.default_rng(5)
    state = LSTMState(h=rng.standard_normal((3, 3)), c=rng.standard_normal((3, 3)))
    _assert_passes(check_gradients(runner, _x(), initial_state=state, lengths=[1, 4, 3]))
    _assert_passes(check_gradients(runner, _x()[0]))  # (time, features)


# -- Stacked --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "step"])
def test_stacked(fused):
    stack = Stacked(
        [
            Recurrent(LSTMCell(2, 3, rng=0), fused=fused),
            Recurrent(LSTMCell(3, 2, rng=1), fused=fused),
        ]
    )
    _assert_passes(check_gradients(stack, _x(), lengths=[4, 1, 3]))


def test_stacked_dropout_with_fixed_masks():
    stack = Stacked(
        [LSTMCell(2, 3, rng=0), LSTMCell(3, 3, rng=1), LSTMCell(3, 2, rng=2)], dropout=0.4, rng=3
    )
    report = check_gradients(stack, _x(), lengths=[4, 2, 3], training_seed=7)
    _assert_passes(report)
    assert set(report.initial_state) == {f"{k}.{n}" for k in range(3) for n in "hc"}


def test_dropout_needs_a_training_seed():
    stack = Stacked([LSTMCell(2, 3, rng=0), LSTMCell(3, 2, rng=1)], dropout=0.5)
    with pytest.raises(ValueError, match="training_seed"):
        check_gradients(stack, _x())


# -- Bidirectional --------------------------------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "step"])
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


@pytest.mark.parametrize("pool", [LastStep, MeanPool])
def test_sequential_with_pooling_and_dense(pool):
    model = Sequential(
        Stacked([LSTMCell(2, 3, rng=0), Bidirectional(LSTMCell(3, 2, rng=1), rng=2)]),
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


def test_custom_cell_guide_runs():
    page = (ROOT / "docs" / "guides" / "custom-cell.md").read_text()
    blocks = re.findall(r"^```python[^\n]*\n(.*?)^```", page, flags=re.DOTALL | re.MULTILINE)
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


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "step"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_cells(name, fused):
    import lstmkit

    cls = getattr(lstmkit, name, None)
    if cls is None:
        pytest.skip(f"lstmkit.{name} is not available")
    _assert_passes(check_cell_gradients(VARIANTS[name](cls), lengths=[3, 1], fused=fused, rng=3))
