"""FinalState: each direction's summary of a sequence; LastStep refused after a backward direction.

Oracles: PyTorch's ``nn.LSTM``/``nn.GRU(bidirectional=True)`` on a packed batch, whose ``h_n``
holds each direction's final hidden state (concatenated as ``h_n[-2], h_n[-1]``); lstmkit's own
final states; central finite differences for the backward pass.
"""

import os
import tempfile

import numpy as np
import pytest

from lstmkit import (
    Bidirectional,
    Dense,
    GRUCell,
    LSTMCell,
    MeanPool,
    Recurrent,
    Sequential,
    Stacked,
    load,
    save,
)
from lstmkit.layers import FinalState, LastStep
from lstmkit.layers.directions import output_directions
from lstmkit.testing import check_gradients

B, T, I, H = 4, 6, 3, 5
LENGTHS = np.array([6, 2, 5, 1])


def _x(seed=0):
    return np.random.default_rng(seed).standard_normal((B, T, I))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_final_state_is_torch_h_n_of_both_directions(kind, num_layers):
    torch = pytest.importorskip("torch")
    from lstmkit.interop.torch import from_torch

    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(
        I, H, num_layers=num_layers, bidirectional=True, batch_first=True
    ).double()
    model = Sequential(from_torch(module), FinalState())
    x = _x()
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(LENGTHS), batch_first=True, enforce_sorted=False
    )
    with torch.no_grad():
        _, h_n = module(packed)
        if kind == "LSTM":
            h_n = h_n[0]
    expected = torch.cat([h_n[-2], h_n[-1]], dim=-1).numpy()
    np.testing.assert_allclose(model(x, lengths=LENGTHS), expected, rtol=1e-11, atol=1e-12)
    # LastStep would have read the backward direction's output at the last valid step.
    last = model.layers[0](x, lengths=LENGTHS)[0][np.arange(B), LENGTHS - 1]
    assert not np.allclose(last[:, H:], expected[:, H:])


class ScaledTanhGRU(GRUCell):
    """A user's cell (a subclass): FinalState reads whatever its runner outputs."""


def test_final_state_equals_each_runners_final_state_for_user_cells():
    cell = ScaledTanhGRU(I, H, rng=0)
    bi = Bidirectional(cell, ScaledTanhGRU(I, H, rng=1))
    model = Sequential(bi, FinalState())
    x = _x(1)
    _, state = bi(x, lengths=LENGTHS)
    expected = np.concatenate([state.forward.h, state.backward.h], axis=1)
    np.testing.assert_allclose(model(x, lengths=LENGTHS), expected, rtol=1e-13)
    # A lone backward runner: its final state is at step 0.
    backward = Recurrent(ScaledTanhGRU(I, H, rng=2), reverse=True)
    model = Sequential(backward, FinalState())
    assert model.layers[1].directions == ("backward",)
    np.testing.assert_allclose(
        model(x, lengths=LENGTHS), backward(x, lengths=LENGTHS)[1].h, rtol=1e-13
    )


def test_final_state_gradients_match_finite_differences():
    model = Sequential(
        Stacked([LSTMCell(I, 3, rng=0), Bidirectional(LSTMCell(3, 2, rng=1), rng=2)]),
        FinalState(),
        Dense(4, 2, "tanh", rng=3, bias_initializer="normal"),
    )
    report = check_gradients(model, _x(2), lengths=[6, 2, 0, 3])
    assert report.passed(1e-6), str(report)


def test_final_state_on_its_own_reads_given_directions():
    x = _x(3)
    np.testing.assert_array_equal(FinalState()(x, LENGTHS), LastStep()(x, LENGTHS))
    y = FinalState(("forward", "backward"))(np.concatenate([x, x], axis=2), LENGTHS)
    np.testing.assert_array_equal(y[:, :I], x[np.arange(B), LENGTHS - 1])
    np.testing.assert_array_equal(y[:, I:], x[:, 0])
    assert not FinalState(("backward",))(x, [0, 1, 2, 3])[0].any()  # length 0: zeros
    with pytest.raises(ValueError, match=r"x: expected a feature axis of 2 equal blocks"):
        FinalState(("forward", "backward"))(x, LENGTHS)
    with pytest.raises(ValueError, match=r"directions: expected each entry"):
        FinalState(("forward", "sideways"))
    with pytest.raises(TypeError, match=r"directions: expected None or a non-empty tuple"):
        FinalState("forward")


def _bi(merge="concat"):
    return Bidirectional(LSTMCell(I, H, rng=0), merge=merge, rng=1)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Sequential(_bi(), LastStep()),
        lambda: Sequential(Stacked([LSTMCell(I, I, rng=2), _bi()]), LastStep()),
        lambda: Sequential(Sequential(_bi()), LastStep()),
        lambda: Sequential(_bi(), Sequential(LastStep(), Dense(2 * H, 1, rng=3))),
        lambda: Sequential(_bi(), Dense(2 * H, 4, rng=3), LastStep()),
        lambda: Sequential(_bi("sum"), LastStep()),
        lambda: Sequential(Recurrent(LSTMCell(I, H, rng=0), reverse=True), LastStep()),
    ],
)
def test_last_step_after_a_backward_direction_is_refused(build):
    with pytest.raises(ValueError, match=r"LastStep after .* use FinalState\(\)"):
        build()


def test_final_state_that_cannot_read_its_input_is_refused():
    with pytest.raises(ValueError, match=r"layers\[1\]: FinalState cannot tell .* merge='mean'"):
        Sequential(_bi("mean"), FinalState())
    with pytest.raises(ValueError, match=r"layers\[1\]: expected directions \('forward', 'back"):
        Sequential(_bi(), FinalState(("forward",)))
    with pytest.raises(ValueError, match=r"layers\[1\]\.layers\[0\]: a FinalState first"):
        Sequential(_bi(), Sequential(FinalState(), Dense(2 * H, 1, rng=3)))
    # Given explicitly, a nested FinalState works.
    head = Sequential(FinalState(("forward", "backward")), Dense(2 * H, 1, rng=3))
    model = Sequential(_bi(), head)
    flat = Sequential(_bi(), FinalState(), head.layers[1])
    np.testing.assert_array_equal(model(_x(), lengths=LENGTHS), flat(_x(), lengths=LENGTHS))


def test_heads_after_forward_layers_are_unchanged():
    Sequential(Recurrent(LSTMCell(I, H, rng=0)), Dense(H, 2, rng=1), LastStep())
    Sequential(_bi(), MeanPool())
    Sequential(_bi(), Recurrent(LSTMCell(2 * H, H, rng=2)), LastStep())  # forward again
    assert output_directions(Stacked([_bi(), LSTMCell(2 * H, H, rng=2)])) == ("forward",)


def test_final_state_is_saved_and_loaded():
    model = Sequential(_bi(), FinalState(), Dense(2 * H, 1, rng=3))
    path = os.path.join(tempfile.mkdtemp(), "model.npz")
    save(model, path)
    again = load(path)
    assert again.layers[1].directions == ("forward", "backward")
    np.testing.assert_array_equal(again(_x(), lengths=LENGTHS), model(_x(), lengths=LENGTHS))


def test_a_saved_final_state_with_bad_directions_is_refused():
    from lstmkit import config

    cfg = config.to_config(FinalState(("forward", "backward")))
    assert config.from_config(cfg).directions == ("forward", "backward")
    with pytest.raises(ValueError, match=r"model\.directions: expected each entry"):
        config.from_config({**cfg, "directions": ["forward", "up"]})
    with pytest.raises(TypeError, match=r"model\.directions: expected None or a non-empty"):
        config.from_config({**cfg, "directions": "forward"})
