"""Keras weight lists for runners and stacks, checked against a NumPy implementation of Keras'
own LSTM, GRU and Bidirectional equations (written here from the Keras source's formulas, not
from lstmkit), and round trips."""

import numpy as np
import pytest

from lstmkit import (
    Bidirectional,
    GRUCell,
    LSTMCell,
    Recurrent,
    Stacked,
    activations,
)
from lstmkit.interop.keras_layers import (
    from_keras_layers,
    keras_layer_configs,
    to_keras_layers,
)

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 5, 3))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


ACTS = {"tanh": np.tanh, "sigmoid": sigmoid, "relu": lambda z: np.maximum(z, 0)}


def keras_lstm(x, weights, config):
    kernel, recurrent, bias = weights
    act, ract = (
        ACTS[config.get("activation", "tanh")],
        ACTS[config.get("recurrent_activation", "sigmoid")],
    )
    H = recurrent.shape[0]
    h = np.zeros((x.shape[0], H))
    c = np.zeros((x.shape[0], H))
    out = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, cc, o = (z[:, k * H : (k + 1) * H] for k in range(4))
        c = ract(f) * c + ract(i) * act(cc)
        h = ract(o) * act(c)
        out.append(h)
    return np.stack(out, axis=1)


def keras_gru(x, weights, config):
    kernel, recurrent, bias = weights
    act, ract = (
        ACTS[config.get("activation", "tanh")],
        ACTS[config.get("recurrent_activation", "sigmoid")],
    )
    H = recurrent.shape[0]
    h = np.zeros((x.shape[0], H))
    out = []
    for t in range(x.shape[1]):
        if config["reset_after"]:
            xz = x[:, t] @ kernel + bias[0]
            inner = h @ recurrent + bias[1]
            z = ract(xz[:, :H] + inner[:, :H])
            r = ract(xz[:, H : 2 * H] + inner[:, H : 2 * H])
            hh = act(xz[:, 2 * H :] + r * inner[:, 2 * H :])
        else:
            xz = x[:, t] @ kernel + bias
            z = ract(xz[:, :H] + h @ recurrent[:, :H])
            r = ract(xz[:, H : 2 * H] + h @ recurrent[:, H : 2 * H])
            hh = act(xz[:, 2 * H :] + (r * h) @ recurrent[:, 2 * H :])
        h = z * h + (1 - z) * hh
        out.append(h)
    return np.stack(out, axis=1)


def keras_rnn(x, weights, config):
    return (keras_lstm if config["class_name"] == "LSTM" else keras_gru)(x, weights, config)


def keras_bidirectional(x, weights, config):
    n = len(weights) // 2
    forward = keras_rnn(x, weights[:n], config["layer"])
    backward = keras_rnn(x[:, ::-1], weights[n:], config["layer"])[:, ::-1]
    mode = config["merge_mode"]
    if mode == "concat":
        return np.concatenate([forward, backward], axis=-1)
    return {"sum": forward + backward, "mul": forward * backward, "ave": (forward + backward) / 2}[
        mode
    ]


def keras_stack(x, weights, configs):
    for layer_weights, config in zip(weights, configs):
        fn = keras_bidirectional if config["class_name"] == "Bidirectional" else keras_rnn
        x = fn(x, layer_weights, config)
    return x


def randomize(model):
    for p in model.parameters():
        p.value = RNG.uniform(-0.7, 0.7, p.shape)
    return model


MODELS = {
    "lstm runner": lambda: Recurrent(LSTMCell(3, 4, rng=0)),
    "gru cell": lambda: GRUCell(3, 4, reset_after=False, rng=0),
    "bidirectional lstm concat": lambda: Bidirectional(LSTMCell(3, 4, rng=0), rng=1),
    "stack": lambda: Stacked(
        [
            Bidirectional(LSTMCell(3, 4, gate_activation="sigmoid", rng=0), merge="sum", rng=1),
            Bidirectional(GRUCell(4, 3, rng=2), merge="mean", rng=3),
            GRUCell(3, 2, candidate_activation="relu", rng=4),
            Recurrent(LSTMCell(2, 5, rng=5)),
        ]
    ),
    "bidirectional gru mul": lambda: Bidirectional(GRUCell(3, 2, rng=0), merge="mul", rng=1),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_lstmkit_matches_keras_equations_on_the_exported_lists(name):
    model = randomize(MODELS[name]())
    weights, configs = to_keras_layers(model), keras_layer_configs(model)
    runner = model if hasattr(model, "forward") else Recurrent(model)
    np.testing.assert_allclose(
        runner(X)[0], keras_stack(X, weights, configs), rtol=1e-12, atol=1e-13
    )
    # And back: the same arrays, the same function.
    again = from_keras_layers(weights, configs)
    for ours, theirs in zip(to_keras_layers(again), weights):
        assert len(ours) == len(theirs)
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))
    np.testing.assert_array_equal(again(X)[0], runner(X)[0])


def test_keras_lists_in_give_keras_outputs():
    # Weights drawn as Keras would store them, read through from_keras_layers.
    configs = [
        {
            "class_name": "Bidirectional",
            "merge_mode": "concat",
            "layer": {"class_name": "LSTM", "units": 4},
        },
        {"class_name": "GRU", "units": 3, "reset_after": True, "activation": "tanh"},
    ]
    weights = [
        [RNG.normal(size=s) for s in [(3, 16), (4, 16), (16,)] * 2],
        [RNG.normal(size=s) for s in [(8, 9), (3, 9), (2, 9)]],
    ]
    model = from_keras_layers(weights, configs)
    assert isinstance(model, Stacked) and model.layers[0].merge == "concat"
    np.testing.assert_allclose(
        model(X)[0], keras_stack(X, weights, configs), rtol=1e-12, atol=1e-13
    )
    assert model.layers[1].cell.update.activation is activations.sigmoid


def test_every_problem_is_listed():
    model = Stacked(
        [
            Recurrent(LSTMCell(3, 4, peephole=True, rng=0), reverse=True),
            Bidirectional(
                Recurrent(LSTMCell(4, 2, rng=1)),
                Recurrent(LSTMCell(4, 2, gate_activation="hard_sigmoid", rng=2), reverse=True),
            ),
        ]
    )
    with pytest.raises(ValueError) as info:
        to_keras_layers(model)
    message = str(info.value)
    for part in (
        "model.layers[0]: a reverse-only runner",
        "model.layers[0].cell: Keras cannot express a peephole",
        "model.layers[1].backward_layer.cell: Keras cannot express",
    ):
        assert part in message, (part, message)
    with pytest.raises(
        TypeError, match="model: expected a cell, Recurrent, Bidirectional or Stacked"
    ):
        to_keras_layers([1, 2])


def test_bad_lists_and_settings_name_the_layer():
    good = to_keras_layers(Recurrent(LSTMCell(3, 4, rng=0)))
    lstm = {"class_name": "LSTM", "units": 4}
    with pytest.raises(ValueError, match="received 1 weight lists and 2 settings"):
        from_keras_layers(good, [lstm, lstm])
    with pytest.raises(ValueError, match=r"weights\[0\]: units is 5 but the weights have 4 units"):
        from_keras_layers(good, [{"class_name": "LSTM", "units": 5}])
    with pytest.raises(ValueError, match=r"weights\[0\]: unexpected settings \['stateful'\]"):
        from_keras_layers(good, [{"class_name": "LSTM", "stateful": True}])
    with pytest.raises(ValueError, match=r"weights\[0\]: class_name: expected 'LSTM', 'GRU'"):
        from_keras_layers(good, [{"class_name": "SimpleRNN"}])
    with pytest.raises(ValueError, match=r"weights\[0\]: weights \(kernel\)"):
        from_keras_layers([[good[0][0][:, :8], good[0][1], good[0][2]]], [lstm])
    with pytest.raises(
        ValueError, match=r"weights\[1\]: the kernel expects 3 inputs, but weights\[0\] gives 4"
    ):
        from_keras_layers(good * 2, [lstm, lstm])
    with pytest.raises(ValueError, match=r"weights\[0\]: merge_mode: expected"):
        from_keras_layers(
            [good[0] * 2], [{"class_name": "Bidirectional", "merge_mode": "max", "layer": lstm}]
        )
    with pytest.raises(TypeError, match="weights: expected a list of per-layer weight lists"):
        from_keras_layers("weights", [lstm])


def test_dtype_converts_a_copy():
    model = Stacked([LSTMCell(3, 4, rng=0), GRUCell(4, 2, rng=1)])
    weights = to_keras_layers(model, dtype=np.float32)
    assert all(w.dtype == np.float32 for layer in weights for w in layer)
    assert all(w.dtype == np.float64 for layer in to_keras_layers(model) for w in layer)
    again = from_keras_layers(weights, keras_layer_configs(model))
    assert again.dtype == np.float32
    np.testing.assert_allclose(again(X.astype(np.float32))[0], model(X)[0], rtol=1e-5, atol=1e-6)
