"""Whole models (``Sequential``) converted to a PyTorch module and run by PyTorch (the oracle's
own LSTM/GRU kernels, packed sequences for lengths), compared with lstmkit's own outputs."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lstmkit import (
    Bidirectional,
    Dense,
    GRUCell,
    LSTMCell,
    Recurrent,
    Sequential,
    Stacked,
)
from lstmkit.activations import Activation
from lstmkit.interop.torch import to_torch
from lstmkit.layers import FinalState, LastStep, MeanPool

X = np.random.default_rng(1).standard_normal((4, 6, 3))
LENGTHS = np.array([6, 2, 0, 5])  # unsorted, with an empty sequence


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.value = rng.uniform(-0.8, 0.8, p.shape).astype(p.dtype)
    return model


HEADS = {
    "last-step dense": lambda: [LastStep(), Dense(6, 2, "tanh", rng=3)],
    "mean-pool dense": lambda: [MeanPool(), Dense(6, 3, "hard_sigmoid", rng=3), Dense(3, 1, rng=4)],
    "sequence dense": lambda: [Dense(6, 2, "softplus", rng=3)],
    "dense between runners": lambda: [
        Dense(6, 5, "elu", rng=3),
        Recurrent(LSTMCell(5, 3, rng=4)),
        Sequential(LastStep(), Dense(3, 2, "softsign", rng=5)),
    ],
}


def backbone():
    # Layers of different sizes: one PyTorch module per layer.
    return Stacked(
        [Bidirectional(LSTMCell(3, 4, rng=0), rng=1), GRUCell(8, 6, rng=2)], dropout=0.25
    )


def run_torch(module, x, lengths):
    with torch.no_grad():
        return module(torch.from_numpy(x), None if lengths is None else lengths).numpy()


@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("head", sorted(HEADS))
def test_whole_model_matches_lstmkit(head, with_lengths):
    model = randomize(Sequential(backbone(), *HEADS[head]()))
    module = to_torch(model)
    assert module.training and isinstance(module, torch.nn.Module)
    module.eval()
    lengths = LENGTHS if with_lengths else None
    y_torch = run_torch(module, X, lengths)
    y = model(X, lengths=lengths)
    assert y_torch.shape == y.shape and y_torch.dtype == np.float64
    np.testing.assert_allclose(y_torch, y, rtol=1e-11, atol=1e-12)
    if with_lengths and isinstance(model.layers[-1], LastStep):
        assert np.all(y_torch[2] == 0)  # a sequence of length 0 pools to zeros


def test_dtype_float32_and_the_original_untouched():
    model = randomize(Sequential(backbone(), MeanPool(), Dense(6, 2, rng=3)))
    module = to_torch(model, dtype=np.float32).eval()
    assert all(p.dtype == torch.float32 for p in module.parameters())
    with torch.no_grad():
        y = module(torch.from_numpy(X.astype(np.float32)), torch.from_numpy(LENGTHS)).numpy()
    np.testing.assert_allclose(y, model(X, lengths=LENGTHS), rtol=1e-5, atol=1e-6)
    assert model.dtype == np.float64


def test_stack_dropout_is_a_dropout_module_between_layers():
    module = to_torch(Sequential(backbone(), LastStep()))
    dropouts = [m for m in module.layers if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 1 and dropouts[0].p == 0.25


class MyDense(Dense):
    """A user's layer (a subclass: it may compute anything)."""


def test_everything_pytorch_cannot_express_is_listed():
    own = Activation("own_act", np.tanh, lambda z: 1 - np.tanh(z) ** 2)
    model = Sequential(
        Stacked(
            [LSTMCell(3, 4, peephole=True, rng=0), Recurrent(GRUCell(4, 4, rng=1), reverse=True)]
        ),
        Bidirectional(LSTMCell(4, 2, rng=2), merge="sum", rng=3),
        MyDense(2, 2, rng=4),
        MeanPool(),  # (a LastStep after a bidirectional sum is refused by Sequential itself)
        Dense(2, 2, own, rng=5),
    )
    with pytest.raises(ValueError) as info:
        to_torch(model)
    message = str(info.value)
    for part in (
        "model.layers[0].layers[0].cell: peepholes",
        "model.layers[0].layers[1]: a reverse-only runner",
        "model.layers[1]: merge='sum'",
        "model.layers[2]: a MyDense layer",
        "model.layers[4].activation: 'own_act'",
    ):
        assert part in message, (part, message)


@pytest.mark.parametrize("with_lengths", [False, True])
def test_final_state_after_a_bidirectional_layer(with_lengths):
    # FinalState takes the forward half at each sequence's last step and the backward half at
    # step 0: PyTorch's cat(h_n[-2], h_n[-1]) for the converted LSTM.
    cell = LSTMCell(3, 4, rng=0)
    model = randomize(Sequential(Bidirectional(cell, rng=1), FinalState(), Dense(8, 2, rng=2)))
    module = to_torch(model).eval()
    lengths = LENGTHS if with_lengths else None
    y = model(X, lengths=lengths)
    np.testing.assert_allclose(run_torch(module, X, lengths), y, rtol=1e-11, atol=1e-12)
    rnn = module.layers[0]
    with torch.no_grad():
        if with_lengths:
            keep = LENGTHS > 0  # PyTorch cannot pack an empty sequence
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                torch.from_numpy(X[keep]), LENGTHS[keep], batch_first=True, enforce_sorted=False
            )
            h_n = rnn(packed)[1][0]
        else:
            keep = np.ones(len(X), bool)
            h_n = rnn(torch.from_numpy(X))[1][0]
    summary = torch.cat([h_n[-2], h_n[-1]], dim=-1).numpy()
    pooled = Sequential(model.layers[0], model.layers[1])(X, lengths=lengths)
    np.testing.assert_allclose(pooled[keep], summary, rtol=1e-11, atol=1e-12)
