"""Cell variants: exact gradients (finite differences), runners, conventions, weights, bad input.

Oracle tests against PyTorch / ONNX Runtime / a plain-Python reference are in
test_variants_oracles.py; regularization wrappers in test_regularization.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from _fd import check_runner_gradients

from lstmkit import (
    Bidirectional,
    CoupledLSTMCell,
    GRUCell,
    LayerNormLSTMCell,
    ProjectionLSTMCell,
    Recurrent,
    Stacked,
    VariationalDropout,
    Zoneout,
)
from lstmkit.state import map_state, state_arrays

VARIANTS = {
    "coupled": lambda **kw: CoupledLSTMCell(3, 4, **kw),
    "coupled-peephole": lambda **kw: CoupledLSTMCell(
        3, 4, peephole=True, peephole_initializer="normal", **kw
    ),
    "coupled-forget-peephole": lambda **kw: CoupledLSTMCell(
        3, 4, peephole={"forget"}, peephole_initializer="normal", **kw
    ),
    "gru-after-pytorch": lambda **kw: GRUCell(3, 4, bias_initializer="normal", **kw),
    "gru-after-olah": lambda **kw: GRUCell(
        3, 4, update_convention="olah", bias_initializer="normal", **kw
    ),
    "gru-before-pytorch": lambda **kw: GRUCell(
        3, 4, reset_after=False, bias_initializer="normal", **kw
    ),
    "gru-before-olah": lambda **kw: GRUCell(
        3, 4, reset_after=False, update_convention="olah", bias_initializer="normal", **kw
    ),
    "layernorm": lambda **kw: LayerNormLSTMCell(3, 4, **kw),
    "projection": lambda **kw: ProjectionLSTMCell(3, 4, 2, **kw),
    "projection-peephole": lambda **kw: ProjectionLSTMCell(
        3, 4, 2, peephole=True, peephole_initializer="normal", **kw
    ),
}


def _random_state(cell, batch, rng):
    return map_state(lambda a: rng.normal(size=a.shape), cell.initial_state(batch))


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("lengths", [None, [4, 1, 3]])
def test_gradients_match_finite_differences(name, lengths):
    cell = VARIANTS[name](rng=0)
    if isinstance(cell, LayerNormLSTMCell):  # move gains and biases off their trivial values
        g = np.random.default_rng(9)
        for norm in (cell.norm_x, cell.norm_h, cell.norm_c):
            norm.gain.value = g.normal(1, 0.3, size=norm.gain.shape)
        cell.norm_c.bias.value = g.normal(0, 0.3, size=cell.norm_c.bias.shape)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 3))
    check_runner_gradients(Recurrent(cell), x, _random_state(cell, 3, rng), lengths)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_runs_in_every_runner(name):
    cell = VARIANTS[name](rng=0)
    out = cell.output_size
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 3))
    lengths = [5, 2, 0]

    # Recurrent: fused=True falls back to the step loop; both ways agree, training or not.
    y, final = Recurrent(cell)(x, lengths=lengths)
    y2, _, _ = Recurrent(cell, fused=False).forward(x, lengths=lengths)
    np.testing.assert_array_equal(y, y2)
    assert y.shape == (3, 5, out)
    assert np.all(y[1, 2:] == 0) and np.all(y[2] == 0)
    zero = cell.initial_state(3)
    for field in ("h",):
        np.testing.assert_array_equal(getattr(final, field)[2], getattr(zero, field)[2])

    # Bidirectional clones the cell with fresh weights; each half matches its own Recurrent.
    bi = Bidirectional(cell, rng=5)
    assert bi.backward_layer.cell is not cell
    params_f = cell.named_parameters()
    params_b = bi.backward_layer.cell.named_parameters()
    assert params_f.keys() == params_b.keys()
    assert any(not np.array_equal(params_f[k].value, params_b[k].value) for k in params_f)
    yb, _ = bi(x, lengths=lengths)
    np.testing.assert_array_equal(yb[..., :out], y)
    yr, _ = Recurrent(bi.backward_layer.cell, reverse=True)(x, lengths=lengths)
    np.testing.assert_array_equal(yb[..., out:], yr)
    yb_t, _, c_bi = bi.forward(x, lengths=lengths)
    dx, _ = bi.backward(c_bi, np.ones_like(yb_t))
    assert dx.shape == x.shape and np.all(dx[2] == 0)

    # Stacked: two variant layers chain through output_size.
    if isinstance(cell, ProjectionLSTMCell):
        second = ProjectionLSTMCell(out, 4, 2, rng=1)
    else:
        second = type(cell)(out, 4, rng=1)
    stack = Stacked([cell, second], dropout=0.2, rng=0)
    ys, finals = stack(x, lengths=lengths)
    assert ys.shape == (3, 5, second.output_size) and len(finals) == 2
    ys_t, _, c_st = stack.forward(x, lengths=lengths)
    dxs, d_inits = stack.backward(c_st, np.ones_like(ys_t))
    assert dxs.shape == x.shape and len(d_inits) == 2


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_state_dict_round_trip_and_float32(name):
    a, b = VARIANTS[name](rng=0), VARIANTS[name](rng=1)
    x = np.random.default_rng(0).normal(size=(2, 3, 3))
    assert not np.array_equal(Recurrent(a)(x)[0], Recurrent(b)(x)[0])
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(Recurrent(a)(x)[0], Recurrent(b)(x)[0])
    c32 = VARIANTS[name](rng=0, dtype=np.float32)
    y32, s32 = Recurrent(c32)(x)
    assert y32.dtype == np.float32
    assert all(a.dtype == np.float32 for a in state_arrays(s32).values())
    np.testing.assert_allclose(y32, Recurrent(a)(x)[0], atol=1e-5)


def test_gru_update_conventions_are_the_same_family():
    # 1 - sigmoid(a) = sigmoid(-a): an Olah-convention GRU whose update gate has negated weights
    # computes exactly what the PyTorch-convention GRU computes.
    for reset_after in (False, True):
        torch_like = GRUCell(3, 4, reset_after=reset_after, bias_initializer="normal", rng=0)
        olah = GRUCell(3, 4, reset_after=reset_after, update_convention="olah", rng=1)
        olah.load_state_dict(torch_like.state_dict())
        u = olah.update
        u.set_weights(W=-u.W.value, U=-u.U.value, b=-u.b.value)
        x = np.random.default_rng(0).normal(size=(2, 5, 3))
        np.testing.assert_allclose(Recurrent(olah)(x)[0], Recurrent(torch_like)(x)[0], atol=1e-14)


def test_coupled_cell_is_an_lstm_whose_input_gate_is_one_minus_forget():
    # An LSTMCell with a linear input "gate" computing 1 - f is the coupled cell; build it from
    # the coupled cell's weights (f = sigmoid(a); 1 - f = sigmoid(-a)) and compare.
    from lstmkit import LSTMCell

    coupled = CoupledLSTMCell(3, 4, rng=0)
    lstm = LSTMCell(3, 4, rng=1)
    for name in ("forget", "candidate", "output"):
        src = getattr(coupled, name)
        getattr(lstm, name).set_weights(W=src.W.value, U=src.U.value, b=src.b.value)
    f = coupled.forget
    lstm.input.set_weights(W=-f.W.value, U=-f.U.value, b=-f.b.value)
    x = np.random.default_rng(0).normal(size=(2, 6, 3))
    np.testing.assert_allclose(Recurrent(coupled)(x)[0], Recurrent(lstm)(x)[0], atol=1e-14)


def test_projection_shapes_and_parameter_count():
    cell = ProjectionLSTMCell(3, 8, 2, rng=0)
    assert cell.forget.U.shape == (2, 8) and cell.projection.shape == (8, 2)
    assert cell.num_parameters() == 4 * (3 * 8 + 2 * 8 + 8) + 8 * 2
    state = cell.initial_state(5)
    assert state.h.shape == (5, 2) and state.c.shape == (5, 8)
    assert Recurrent(cell).output_size == 2


@pytest.mark.parametrize(
    ("build", "error", "words"),
    [
        (
            lambda: ProjectionLSTMCell(3, 4, 4),
            ValueError,
            ["proj_size", "smaller than hidden_size=4", "4"],
        ),
        (lambda: ProjectionLSTMCell(3, 4, 0), ValueError, ["proj_size", "positive"]),
        (
            lambda: GRUCell(3, 4, proj_size=2),
            ValueError,
            ["proj_size", "GRU", "ProjectionLSTMCell"],
        ),
        (lambda: GRUCell(3, 4, peephole=True), ValueError, ["peephole", "no cell state"]),
        (
            lambda: GRUCell(3, 4, update_convention="keras"),
            ValueError,
            ["update_convention", "keras"],
        ),
        (lambda: GRUCell(3, 4, reset_after="yes"), TypeError, ["reset_after", "bool"]),
        (lambda: LayerNormLSTMCell(3, 1), ValueError, ["hidden_size", "at least 2", "received 1"]),
        (lambda: LayerNormLSTMCell(3, 4, epsilon=0.0), ValueError, ["epsilon", "positive"]),
        (
            lambda: CoupledLSTMCell(3, 4, peephole={"input"}),
            ValueError,
            ["peephole", "no input gate"],
        ),
        (
            lambda: CoupledLSTMCell(3, 4, peephole={"candidate"}),
            ValueError,
            ["peephole", "candidate"],
        ),
        (lambda: CoupledLSTMCell(3, 4, peephole="forget"), TypeError, ["peephole"]),
    ],
)
def test_options_that_do_not_combine_raise_at_construction(build, error, words):
    with pytest.raises(error) as info:
        build()
    for word in words:
        assert word in str(info.value)


def test_step_rejects_wrong_state_and_input():
    cell = ProjectionLSTMCell(3, 4, 2, rng=0)
    bad = type(cell.initial_state(2))(h=np.zeros((2, 4)), c=np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"state.h: expected shape \(2, 2\)"):
        cell.step(bad, np.zeros((2, 3)))
    gru = GRUCell(3, 4, rng=0)
    with pytest.raises(TypeError, match="HiddenState"):
        gru.step(cell.initial_state(2), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 3\)"):
        gru.step(gru.initial_state(2), np.zeros((2, 5)))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_save_and_load_round_trip(name, tmp_path):
    import lstmkit

    model = Bidirectional(VARIANTS[name](rng=0), rng=1)
    x = np.random.default_rng(0).normal(size=(2, 3, 3))
    lstmkit.save(model, tmp_path / "model.npz")
    loaded = lstmkit.load(tmp_path / "model.npz")
    assert type(loaded.forward_layer.cell) is type(model.forward_layer.cell)
    np.testing.assert_array_equal(loaded(x, lengths=[3, 1])[0], model(x, lengths=[3, 1])[0])


@pytest.mark.parametrize(
    "wrap",
    [
        lambda c: VariationalDropout(c, 0.2, 0.3, rng=0),
        lambda c: Zoneout(c, 0.2, 0.1, inference="expectation", rng=0),
    ],
)
def test_wrappers_save_and_load(wrap, tmp_path):
    import lstmkit

    model = Recurrent(wrap(LayerNormLSTMCell(3, 4, rng=0)))
    lstmkit.save(model, tmp_path / "model.npz")
    loaded = lstmkit.load(tmp_path / "model.npz")
    x = np.random.default_rng(0).normal(size=(2, 3, 3))
    np.testing.assert_array_equal(loaded(x)[0], model(x)[0])
    assert loaded.cell.describe() == model.cell.describe()
