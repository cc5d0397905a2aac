"""Misuse that used to give wrong numbers silently now raises a clear error (or is made right).

Each case was reproduced on the library before the fix: a step cache back-propagated twice
doubled the gradients; complex or object upstream gradients were accepted (the imaginary part
dropped with a warning); a complex state was stepped; a float64 state turned a float32 cell's
output into float64; a masked array's mask was ignored; ``np.matrix`` failed deep inside.
"""

import numpy as np
import pytest

from lstmkit import (
    CoupledLSTMCell,
    GRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    ProjectionLSTMCell,
    Recurrent,
    Stacked,
)

CELLS = {
    "LSTMCell": lambda dt: LSTMCell(3, 4, dtype=dt, rng=0),
    "CoupledLSTMCell": lambda dt: CoupledLSTMCell(3, 4, dtype=dt, rng=0),
    "GRUCell": lambda dt: GRUCell(3, 4, dtype=dt, rng=0),
    "LayerNormLSTMCell": lambda dt: LayerNormLSTMCell(3, 4, dtype=dt, rng=0),
    "ProjectionLSTMCell": lambda dt: ProjectionLSTMCell(3, 4, 2, dtype=dt, rng=0),
}


def _grads(cell):
    return {k: p.grad.copy() for k, p in cell.named_parameters().items()}


@pytest.mark.parametrize("name", list(CELLS))
def test_a_step_cache_back_propagated_twice_is_refused_and_adds_nothing(name):
    cell = CELLS[name](np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3))
    state, y, cache = cell.step_train(cell.initial_state(2), x)
    d_state = cell.initial_state(2)
    cell.step_backward(cache, d_state, np.ones_like(y))
    once = _grads(cell)
    assert any(np.any(g != 0) for g in once.values())
    with pytest.raises(ValueError, match=r"^cache: this step was already back-propagated"):
        cell.step_backward(cache, d_state, np.ones_like(y))
    for key, grad in _grads(cell).items():
        np.testing.assert_array_equal(grad, once[key], err_msg=key)


@pytest.mark.parametrize("bad", ["complex", "object"])
def test_runner_backward_refuses_non_real_upstream_gradients(bad):
    rnn = Recurrent(LSTMCell(3, 4, rng=0))
    y, _, cache = rnn.forward(np.ones((2, 5, 3)))
    dy = np.ones_like(y).astype(complex) if bad == "complex" else np.ones_like(y).astype(object)
    with pytest.raises(TypeError, match=r"^dy: expected real numbers"):
        rnn.backward(cache, dy)
    assert all(np.all(p.grad == 0) for p in rnn.parameters())  # nothing was accumulated
    rnn.backward(cache, np.ones_like(y))  # the cache is still usable


@pytest.mark.parametrize("name", list(CELLS))
def test_a_cell_refuses_a_complex_state_and_keeps_its_precision(name):
    cell = CELLS[name](np.float32)
    state = cell.initial_state(2)
    x = np.ones((2, 3), np.float32)
    bad = type(state)(**{k: v.astype(np.complex64) for k, v in vars_of(state).items()})
    with pytest.raises(TypeError, match=r"^state\.h: expected real numbers"):
        cell.step(bad, x)
    wide = type(state)(**{k: v.astype(np.float64) + 0.1 for k, v in vars_of(state).items()})
    new, y = cell.step(wide, x)
    assert y.dtype == np.float32
    assert all(v.dtype == np.float32 for v in vars_of(new).values())
    # The cast state gives the numbers of the same state already in float32.
    same = type(state)(**{k: v.astype(np.float32) for k, v in vars_of(wide).items()})
    np.testing.assert_array_equal(cell.step(same, x)[1], y)


def vars_of(state):
    import attrs

    return {f.name: getattr(state, f.name) for f in attrs.fields(type(state))}


def test_masked_arrays_are_refused_everywhere_a_mask_would_be_ignored():
    x = np.ma.masked_array(np.ones((2, 5, 3)), mask=np.zeros((2, 5, 3), bool))
    x.mask[1, 3:] = True
    cell = LSTMCell(3, 4, rng=0)
    for call in (
        lambda: Recurrent(cell)(x),
        lambda: Stacked([cell, LSTMCell(4, 2, rng=1)])(x),
        lambda: cell.step(cell.initial_state(2), x[:, 0]),
    ):
        with pytest.raises(TypeError, match=r"^x: masked arrays are not supported"):
            call()
    rnn = Recurrent(cell)
    y, _, cache = rnn.forward(np.ones((2, 5, 3)))
    with pytest.raises(TypeError, match=r"^dy: masked arrays are not supported"):
        rnn.backward(cache, np.ma.masked_array(np.ones_like(y)))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_np_matrix_input_gets_a_clear_error():
    with pytest.raises(TypeError, match=r"^x: expected a numpy ndarray, received numpy\.matrix"):
        Recurrent(LSTMCell(3, 4, rng=0))(np.matrix(np.ones((5, 3))))


@pytest.mark.parametrize("lengths", [[], np.array([], dtype=int)])
def test_an_empty_batch_with_empty_lengths_runs(lengths):
    y, final = Recurrent(LSTMCell(3, 4, rng=0))(np.ones((0, 5, 3)), lengths=lengths)
    assert y.shape == (0, 5, 4) and final.h.shape == (0, 4)
