"""The seed's column-vector layout: a seed-style reference LSTM, written here exactly like the seed,
and an LSTMCell holding its weights through ``from_seed`` compute the same numbers."""

import numpy as np
import pytest

from lstmkit import LSTMCell, Recurrent
from lstmkit.interop.seed import from_seed, to_seed


class SeedLSTM:
    """The seed's class, verbatim in its arithmetic (column vectors, ``[h_prev; x]``), seeded."""

    def __init__(self, input_size, hidden_size, rng):
        self.input_size = input_size
        self.hidden_size = hidden_size
        # Scaled from the seed's randn so that 1 / (1 + exp(-z)) never overflows here.
        self.Wf = rng.standard_normal((hidden_size, hidden_size + input_size)) * 0.5
        self.Wi = rng.standard_normal((hidden_size, hidden_size + input_size)) * 0.5
        self.WC = rng.standard_normal((hidden_size, hidden_size + input_size)) * 0.5
        self.Wo = rng.standard_normal((hidden_size, hidden_size + input_size)) * 0.5
        # Non-zero biases (the seed starts at zero) so that a swapped bias would show.
        self.bf = rng.standard_normal((hidden_size, 1))
        self.bi = rng.standard_normal((hidden_size, 1))
        self.bC = rng.standard_normal((hidden_size, 1))
        self.bo = rng.standard_normal((hidden_size, 1))

    def sigmoid(self, z):
        return 1 / (1 + np.exp(-z))

    def tanh(self, z):
        return np.tanh(z)

    def forward(self, x, h_prev, C_prev):
        concat = np.vstack((h_prev, x))
        f_t = self.sigmoid(np.dot(self.Wf, concat) + self.bf)
        i_t = self.sigmoid(np.dot(self.Wi, concat) + self.bi)
        C_tilda = self.tanh(np.dot(self.WC, concat) + self.bC)
        C_t = f_t * C_prev + i_t * C_tilda
        o_t = self.sigmoid(np.dot(self.Wo, concat) + self.bo)
        h_t = o_t * self.tanh(C_t)
        return h_t, C_t

    def forward_sequence(self, X):
        h = np.zeros((self.hidden_size, 1))
        C = np.zeros((self.hidden_size, 1))
        outputs = []
        for x in X:
            h, C = self.forward(x.reshape(-1, 1), h, C)
            outputs.append(h)
        return np.hstack(outputs).T


@pytest.fixture
def seed():
    return SeedLSTM(3, 5, np.random.default_rng(0))


def test_one_step_matches_the_seed(seed):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 1))
    h_prev, c_prev = rng.standard_normal((5, 1)), rng.standard_normal((5, 1))
    h_ref, c_ref = seed.forward(x, h_prev, c_prev)
    cell = from_seed(seed)  # the seed object itself
    from lstmkit import LSTMState

    state, h = cell.step(LSTMState(h_prev.T, c_prev.T), x.T)
    np.testing.assert_allclose(h, h_ref.T, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(state.c, c_ref.T, rtol=1e-13, atol=1e-15)


def test_sequence_matches_the_seed(seed):
    X = np.random.default_rng(2).standard_normal((6, 3))
    ref = seed.forward_sequence(X)
    weights = {k: getattr(seed, k) for k in ("Wf", "Wi", "WC", "Wo", "bf", "bi", "bC", "bo")}
    for fused in (True, False):
        y, _ = Recurrent(from_seed(weights), fused=fused)(X)
        assert y.shape == (6, 5)
        np.testing.assert_allclose(y, ref, rtol=1e-13, atol=1e-15)


def test_round_trip(seed):
    weights = {k: getattr(seed, k) for k in ("Wf", "Wi", "WC", "Wo", "bf", "bi", "bC", "bo")}
    back = to_seed(from_seed(weights))
    assert sorted(back) == sorted(weights)
    for key, value in weights.items():
        assert back[key].shape == value.shape
        np.testing.assert_array_equal(back[key], value)
    cell = LSTMCell(3, 5, rng=4)
    again = from_seed(to_seed(cell))
    for name, value in cell.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[name], value)


def test_float32_and_flat_biases(seed):
    weights = {k: getattr(seed, k) for k in ("Wf", "Wi", "WC", "Wo")}
    weights.update({k: getattr(seed, k).ravel() for k in ("bf", "bi", "bC", "bo")})
    cell = from_seed(weights, dtype=np.float32)
    assert cell.dtype == np.float32
    X = np.random.default_rng(2).standard_normal((4, 3))
    np.testing.assert_allclose(
        Recurrent(cell)(X)[0], seed.forward_sequence(X), rtol=1e-5, atol=1e-6
    )


def test_bad_input(seed):
    weights = {k: getattr(seed, k) for k in ("Wf", "Wi", "WC", "Wo", "bf", "bi", "bC", "bo")}
    with pytest.raises(ValueError, match="missing 'bo'"):
        from_seed({k: v for k, v in weights.items() if k != "bo"})
    with pytest.raises(ValueError, match=r"weights\['Wi'\]: expected shape \(5, 8\)"):
        from_seed({**weights, "Wi": np.zeros((5, 7))})
    with pytest.raises(ValueError, match=r"weights\['bC'\]: expected shape \(5, 1\)"):
        from_seed({**weights, "bC": np.zeros((4, 1))})
    with pytest.raises(ValueError, match="non-finite"):
        from_seed({**weights, "Wf": np.full((5, 8), np.nan)})
    with pytest.raises(ValueError, match="peephole on the forget gate"):
        to_seed(LSTMCell(3, 5, peephole=["forget"], rng=0))
    with pytest.raises(ValueError, match="input activation 'hard_sigmoid'"):
        to_seed(LSTMCell(3, 5, gate_activation="hard_sigmoid", rng=0))
