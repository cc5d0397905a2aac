"""Keras weight lists, checked without Keras against a NumPy reference of Keras' own equations.

The reference functions below follow the Keras ``LSTMCell.call`` / ``GRUCell.call`` source: the
weight arrays are sliced by Keras' documented column layout (LSTM ``i, f, c, o``; GRU ``z, r, h``;
GRU ``reset_after=True`` bias rows ``[input; recurrent]``) and nothing is taken from lstmkit.
The Keras arrays are built by hand from that layout with random values, and lstmkit's cells
built from them must give the same hidden states over a short sequence.
"""

import numpy as np
import pytest

from lstmkit import GRUCell, HiddenState, LSTMCell, LSTMState, Recurrent, activations
from lstmkit.interop.keras import (
    from_keras_gru,
    from_keras_lstm,
    keras_config,
    to_keras_gru,
    to_keras_lstm,
)

I, H, T = 3, 2, 4


def sigmoid(z):
    return 0.5 * (1 + np.tanh(z / 2))


def hard_sigmoid_keras2(z):
    return np.clip(0.2 * z + 0.5, 0, 1)


def keras_lstm_reference(x_seq, kernel, recurrent_kernel, bias, act=np.tanh, rec_act=sigmoid):
    h = np.zeros(H)
    c = np.zeros(H)
    out = []
    for x in x_seq:
        z = x @ kernel + h @ recurrent_kernel + bias
        z0, z1, z2, z3 = z[:H], z[H : 2 * H], z[2 * H : 3 * H], z[3 * H :]
        i = rec_act(z0)
        f = rec_act(z1)
        c = f * c + i * act(z2)
        o = rec_act(z3)
        h = o * act(c)
        out.append(h)
    return np.array(out)


def keras_gru_reference(
    x_seq, kernel, recurrent_kernel, bias, reset_after, act=np.tanh, rec_act=sigmoid
):
    h = np.zeros(H)
    out = []
    for x in x_seq:
        if reset_after:
            input_bias, recurrent_bias = bias[0], bias[1]
            matrix_x = x @ kernel + input_bias
            x_z, x_r, x_h = matrix_x[:H], matrix_x[H : 2 * H], matrix_x[2 * H :]
            matrix_inner = h @ recurrent_kernel + recurrent_bias
            rec_z, rec_r, rec_h = matrix_inner[:H], matrix_inner[H : 2 * H], matrix_inner[2 * H :]
            z = rec_act(x_z + rec_z)
            r = rec_act(x_r + rec_r)
            hh = act(x_h + r * rec_h)
        else:
            x_z = x @ kernel[:, :H] + bias[:H]
            x_r = x @ kernel[:, H : 2 * H] + bias[H : 2 * H]
            x_h = x @ kernel[:, 2 * H :] + bias[2 * H :]
            z = rec_act(x_z + h @ recurrent_kernel[:, :H])
            r = rec_act(x_r + h @ recurrent_kernel[:, H : 2 * H])
            hh = act(x_h + (r * h) @ recurrent_kernel[:, 2 * H :])
        h = z * h + (1 - z) * hh
        out.append(h)
    return np.array(out)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def keras_arrays(rng, gates, bias_shape):
    return [
        rng.uniform(-1, 1, (I, gates * H)),
        rng.uniform(-1, 1, (H, gates * H)),
        rng.uniform(-1, 1, bias_shape),
    ]


def test_lstm_matches_keras_equations(rng):
    weights = keras_arrays(rng, 4, (4 * H,))
    x = rng.standard_normal((T, I))
    cell = from_keras_lstm(weights)
    y, _ = Recurrent(cell)(x)
    np.testing.assert_allclose(y, keras_lstm_reference(x, *weights), rtol=1e-13, atol=1e-15)


def test_lstm_with_swapped_activations(rng):
    weights = keras_arrays(rng, 4, (4 * H,))
    x = rng.standard_normal((T, I))
    # A Keras 2 model's hard_sigmoid is lstmkit's object; the Keras 3 name means relu6(x + 3) / 6,
    # which lstmkit does not have, so the name is refused rather than silently reinterpreted.
    with pytest.raises(ValueError, match=r"^recurrent_activation: .*'hard_sigmoid'.*relu6"):
        from_keras_lstm(weights, activation="softsign", recurrent_activation="hard_sigmoid")
    with pytest.raises(ValueError, match=r"^activation: Keras activation 'gelu'"):
        from_keras_gru(keras_arrays(rng, 3, (2, 3 * H)), activation="gelu")
    cell = from_keras_lstm(
        weights, activation="softsign", recurrent_activation=activations.hard_sigmoid
    )
    ref = keras_lstm_reference(
        x, *weights, act=lambda z: z / (1 + np.abs(z)), rec_act=hard_sigmoid_keras2
    )
    np.testing.assert_allclose(Recurrent(cell)(x)[0], ref, rtol=1e-13, atol=1e-15)
    # lstmkit's hard_sigmoid is Keras 2's; Keras 3's "hard_sigmoid" is another function, so the
    # settings cannot name it.
    with pytest.raises(ValueError, match=r"input gate activation 'hard_sigmoid'.*relu6"):
        keras_config(cell)
    cell = from_keras_lstm(weights, activation="softsign", recurrent_activation="relu")
    assert keras_config(cell) == {
        "units": H,
        "activation": "softsign",
        "recurrent_activation": "relu",
    }


def test_lstm_blocks_land_in_the_documented_gates(rng):
    kernel = np.zeros((I, 4 * H))
    kernel[:, H : 2 * H] = 1.0  # only Keras' second block (f) is non-zero
    cell = from_keras_lstm([kernel, np.zeros((H, 4 * H)), np.zeros(4 * H)])
    assert np.all(cell.forget.W.value == 1.0)
    assert not any(np.any(cell.gates[n].W.value) for n in ("input", "candidate", "output"))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_matches_keras_equations(rng, reset_after):
    weights = keras_arrays(rng, 3, (2, 3 * H) if reset_after else (3 * H,))
    x = rng.standard_normal((T, I))
    cell = from_keras_gru(weights)  # reset_after inferred from the bias shape
    assert cell.reset_after is reset_after
    y, _ = Recurrent(cell)(x)
    np.testing.assert_allclose(
        y, keras_gru_reference(x, *weights, reset_after), rtol=1e-13, atol=1e-15
    )


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_export_computes_the_same_keras_function(rng, reset_after):
    cell = GRUCell(I, H, reset_after=reset_after, rng=0)
    for p in cell.parameters():
        p.value = rng.uniform(-1, 1, p.shape)
    weights = to_keras_gru(cell)
    assert weights[2].shape == ((2, 3 * H) if reset_after else (3 * H,))
    x = rng.standard_normal((T, I))
    np.testing.assert_allclose(
        keras_gru_reference(x, *weights, reset_after), Recurrent(cell)(x)[0], rtol=1e-13, atol=1e-15
    )
    again = from_keras_gru(weights)
    for name, value in cell.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[name], value)


def test_lstm_round_trip_is_exact(rng):
    weights = keras_arrays(rng, 4, (4 * H,))
    back = to_keras_lstm(from_keras_lstm(weights))
    for a, b in zip(weights, back):
        np.testing.assert_array_equal(a, b)
    cell = LSTMCell(I, H, rng=3)
    x = rng.standard_normal((T, I))
    np.testing.assert_allclose(
        keras_lstm_reference(x, *to_keras_lstm(cell)), Recurrent(cell)(x)[0], rtol=1e-13, atol=1e-15
    )


def test_dtype_and_use_bias_false(rng):
    weights = [w.astype(np.float32) for w in keras_arrays(rng, 4, (4 * H,))[:2]]
    cell = from_keras_lstm(weights)
    assert cell.dtype == np.float32 and not np.any(cell.input.b.value)
    state, y = cell.step(cell.initial_state(1), np.ones((1, I), np.float32))
    assert isinstance(state, LSTMState) and y.dtype == np.float32
    gru = from_keras_gru(
        [w.astype(np.float32) for w in keras_arrays(rng, 3, (3 * H,))[:2]],
        reset_after=True,
        dtype=np.float64,
    )
    assert gru.dtype == np.float64 and not np.any(gru.recurrent_bias.value)
    assert isinstance(gru.initial_state(1), HiddenState)


def test_bad_input(rng):
    weights = keras_arrays(rng, 4, (4 * H,))
    with pytest.raises(ValueError, match=r"kernel\): expected shape \(input, 8\)"):
        from_keras_lstm([weights[0][:, :6], *weights[1:]])
    with pytest.raises(
        ValueError, match=r"recurrent_kernel\): expected shape \(units, 4 \* units\)"
    ):
        from_keras_lstm([weights[0], weights[1][:, :6], weights[2]])
    with pytest.raises(ValueError, match=r"bias\): expected shape \(8,\)"):
        from_keras_lstm([*weights[:2], np.zeros(6)])
    with pytest.raises(ValueError, match="non-finite"):
        from_keras_lstm([weights[0] * np.nan, *weights[1:]])
    with pytest.raises(TypeError, match="expected a list"):
        from_keras_lstm(weights[0])
    gru = keras_arrays(rng, 3, (2, 3 * H))
    with pytest.raises(ValueError, match="does not fit reset_after=False"):
        from_keras_gru(gru, reset_after=False)
    with pytest.raises(ValueError, match="cannot infer"):
        from_keras_gru(gru[:2])
    with pytest.raises(ValueError, match="peephole"):
        to_keras_lstm(LSTMCell(I, H, peephole=True, rng=0))
    with pytest.raises(ValueError, match="one activation for both"):
        to_keras_lstm(LSTMCell(I, H, cell_activation="softsign", rng=0))
    mixed = LSTMCell(I, H, rng=0)
    mixed.forget.activation = "hard_sigmoid"
    with pytest.raises(ValueError, match="one recurrent_activation"):
        to_keras_lstm(mixed)
    with pytest.raises(ValueError, match="update_convention='olah'"):
        to_keras_gru(GRUCell(I, H, update_convention="olah", rng=0))
    with pytest.raises(TypeError, match="expected a GRUCell"):
        to_keras_gru(LSTMCell(I, H, rng=0))


# -- activations are recognised by the object and its declared Keras name ---------------------------

# Keras 3's definitions of the activations lstmkit declares a Keras name for (keras.activations),
# written here independently of lstmkit.
KERAS3_DEFINITIONS = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "linear": lambda z: z,
    "softsign": lambda z: z / (1 + np.abs(z)),
    "softplus": lambda z: np.log(1 + np.exp(z)),
    "elu": lambda z: np.where(z > 0, z, np.exp(np.minimum(z, 0)) - 1),
    "hard_sigmoid": lambda z: np.clip(z + 3, 0, 6) / 6,  # relu6(x + 3) / 6
}


def test_declared_keras_names_compute_the_keras_function():
    from lstmkit import activations

    z = np.linspace(-6, 6, 121) + 0.0123
    for act in activations.BUILTINS:
        if act.keras is None:
            # Keras 3 has no name for it: whatever it shares a name with computes something else.
            if act.name in KERAS3_DEFINITIONS:
                assert not np.allclose(act(z), KERAS3_DEFINITIONS[act.name](z)), act
            continue
        np.testing.assert_allclose(
            act(z), KERAS3_DEFINITIONS[act.keras](z), rtol=1e-12, atol=1e-15, err_msg=act.name
        )


def _impostor(name="sigmoid"):
    from lstmkit.activations import Activation

    return Activation(
        name,
        lambda z: np.clip(z, 0.0, 1.0),
        lambda y: np.ones_like(y),
        derivative_from_output=True,
    )


def test_user_activation_named_like_a_builtin_is_refused():
    with pytest.raises(ValueError, match=r"input gate activation 'sigmoid'.*your own Activation"):
        to_keras_lstm(LSTMCell(I, H, gate_activation=_impostor(), rng=0))
    with pytest.raises(ValueError, match=r"update gate activation 'sigmoid'.*your own Activation"):
        to_keras_gru(GRUCell(I, H, gate_activation=_impostor(), rng=0))
    tanh = _impostor("tanh")
    with pytest.raises(ValueError, match=r"candidate activation 'tanh'.*your own Activation"):
        keras_config(LSTMCell(I, H, candidate_activation=tanh, cell_activation=tanh, rng=0))
    # Same name, different objects: the candidate and cell activations are not one activation.
    with pytest.raises(ValueError, match="one activation for both"):
        keras_config(LSTMCell(I, H, cell_activation=_impostor("tanh"), rng=0))


def test_deep_copied_cells_export_like_the_original(rng):
    import copy

    weights = keras_arrays(rng, 4, (4 * H,))
    cell = copy.deepcopy(from_keras_lstm(weights, activation="softsign"))
    assert keras_config(cell) == {
        "units": H,
        "activation": "softsign",
        "recurrent_activation": "sigmoid",
    }
    for got, want in zip(to_keras_lstm(cell), weights):
        np.testing.assert_array_equal(got, want)
    gru = copy.deepcopy(GRUCell(I, H, rng=0))
    assert keras_config(gru)["recurrent_activation"] == "sigmoid"
    to_keras_gru(gru)
