"""Padding past ``lengths`` never influences anything, whatever it holds.

A padded batch whose padding holds NaN and inf must give exactly what the same batch with zero
padding gives: outputs, final states, the input gradient within the lengths (zero past them) and
every parameter gradient, with no NaN anywhere and no floating-point warning (the suite raises
those, tests/conftest.py). Checked for every built-in cell, on the fused path (the cells that
have one) and the step path, through Recurrent, a reversed Recurrent, Bidirectional and Stacked.
"""

import attrs
import numpy as np
import pytest

from lstmkit import (
    Bidirectional,
    CoupledLSTMCell,
    GRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    ProjectionLSTMCell,
    Recurrent,
    Stacked,
)

B, T, I, H = 4, 7, 3, 5


def _lstm(i, rng, **kw):
    cell = LSTMCell(i, H, rng=rng, bias_initializer="normal", **kw)
    for gate in cell.gates.values():
        if gate.p is not None:  # peepholes start at zero; make them count
            gate.p.value[...] = np.random.default_rng(rng).standard_normal(H)
    return cell


# name -> (cell factory (input size, seed, dtype), runs the fused kernel on the default path)
CELLS = {
    "lstm": (lambda i, rng, dt: _lstm(i, rng, dtype=dt), True),
    "lstm_hard_sigmoid": (
        lambda i, rng, dt: _lstm(i, rng, dtype=dt, gate_activation="hard_sigmoid"),
        True,
    ),
    "lstm_peepholes": (lambda i, rng, dt: _lstm(i, rng, dtype=dt, peephole=True), True),
    "gru": (lambda i, rng, dt: GRUCell(i, H, rng=rng, dtype=dt), False),
    "coupled": (lambda i, rng, dt: CoupledLSTMCell(i, H, rng=rng, dtype=dt), False),
    "layernorm": (lambda i, rng, dt: LayerNormLSTMCell(i, H, rng=rng, dtype=dt), False),
    "projection": (lambda i, rng, dt: ProjectionLSTMCell(i, H, 4, rng=rng, dtype=dt), False),
}
MODELS = ["recurrent", "reverse", "bidirectional", "stacked"]
LENGTHS = {
    "longest_full": [T, 3, 0, 5],  # a sequence of length 0 too
    "all_short": [4, 2, 4, 1],  # the last steps are padding for every sequence
}


def _model(cell_name, model, fused, dtype):
    make, _ = CELLS[cell_name]
    if model == "recurrent":
        return Recurrent(make(I, 0, dtype), fused=fused)
    if model == "reverse":
        return Recurrent(make(I, 0, dtype), reverse=True, fused=fused)
    if model == "bidirectional":
        return Bidirectional(
            Recurrent(make(I, 0, dtype), fused=fused),
            Recurrent(make(I, 1, dtype), reverse=True, fused=fused),
        )
    first = Recurrent(make(I, 0, dtype), fused=fused)
    return Stacked([first, Recurrent(make(first.output_size, 1, dtype), fused=fused)])


def _runners(model):
    if isinstance(model, Recurrent):
        return [model]
    if isinstance(model, Bidirectional):
        return [model.forward_layer, model.backward_layer]
    return list(model.layers)


def _leaves(state):
    """The arrays of a state, nested states (Bidirectional's, Stacked's list) flattened."""
    if attrs.has(type(state)):
        return [a for f in attrs.fields(type(state)) for a in _leaves(getattr(state, f.name))]
    if isinstance(state, (list, tuple)):
        return [a for s in state for a in _leaves(s)]
    return [state]


def _rebuild(state, arrays):
    """``state``'s structure with its arrays taken in order from the iterator ``arrays``."""
    if attrs.has(type(state)):
        fields = attrs.fields(type(state))
        return type(state)(**{f.name: _rebuild(getattr(state, f.name), arrays) for f in fields})
    if isinstance(state, (list, tuple)):
        return type(state)(_rebuild(s, arrays) for s in state)
    return next(arrays)


def _padded(lengths, dtype, fill):
    """A batch that is random within ``lengths`` and ``fill(rng, shape)`` past them."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    pad = np.arange(T)[None, :] >= np.asarray(lengths)[:, None]
    x[pad] = fill(rng, x[pad].shape)
    return x, pad


def _nonfinite(rng, shape):
    values = np.array([np.nan, np.inf, -np.inf])
    return values[rng.integers(0, len(values), shape)]


def _everything(model, x, lengths):
    """Inference and training outputs and states, input and parameter gradients."""
    dtype = x.dtype
    rng = np.random.default_rng(4)
    y_inf, final_inf = model(x, lengths=lengths)
    model.zero_grad()
    y, final, cache = model.forward(x, lengths=lengths)
    dy = rng.standard_normal(y.shape).astype(dtype)
    d_final = (rng.standard_normal(a.shape).astype(dtype) for a in _leaves(final))
    dx, d_init = model.backward(cache, dy, _rebuild(final, d_final))
    out = {"y_inference": y_inf, "y": y, "dx": dx}
    out.update({f"final_inference[{k}]": a for k, a in enumerate(_leaves(final_inf))})
    out.update({f"final[{k}]": a for k, a in enumerate(_leaves(final))})
    out.update({f"d_initial[{k}]": a for k, a in enumerate(_leaves(d_init))})
    out.update({f"grad {n}": p.grad.copy() for n, p in model.named_parameters().items()})
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", list(LENGTHS.values()), ids=list(LENGTHS))
@pytest.mark.parametrize("path", ["fused", "step"])
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("cell", list(CELLS))
def test_nan_and_inf_in_the_padding_change_nothing(cell, model, path, lengths, dtype):
    fused = None if path == "fused" else False
    clean_model = _model(cell, model, fused, dtype)
    dirty_model = _model(cell, model, fused, dtype)
    kernel = path == "fused" and CELLS[cell][1]
    assert all(r.uses_fused() is kernel for r in _runners(dirty_model))

    x_clean, pad = _padded(lengths, dtype, lambda rng, shape: np.zeros(shape))
    x_dirty, _ = _padded(lengths, dtype, _nonfinite)
    assert not np.isfinite(x_dirty[pad]).any() and np.array_equal(x_dirty[~pad], x_clean[~pad])
    x_before = x_dirty.copy()

    clean = _everything(clean_model, x_clean, lengths)
    dirty = _everything(dirty_model, x_dirty, lengths)

    np.testing.assert_array_equal(x_dirty, x_before)  # the caller's padding is left as it was
    assert clean.keys() == dirty.keys()
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else {"rtol": 1e-6, "atol": 1e-7}
    for key, value in dirty.items():
        assert np.isfinite(value).all(), f"{key}: not finite"
        np.testing.assert_allclose(value, clean[key], err_msg=key, **tol)
    # The input gradient is zero past the lengths.
    assert not dirty["dx"][pad].any()
