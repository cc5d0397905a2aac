"""ConvLSTM: Keras weight layout against a NumPy reference of Keras' ConvLSTM equations, and the
save/load round trip.

The reference follows Keras' ``ConvLSTMCell.call``: the kernel ``(*k, in, 4F)`` and recurrent
kernel ``(*k, F, 4F)`` are split into gates ``i, f, c, o`` on the last axis; the input
convolution uses the layer's padding and dilation, the recurrent one "same" padding without
dilation; ``c = f * c + i * act(x_c + h_c)``, ``h = o * act(c)``. Convolutions are written out
pixel by pixel with loops (TensorFlow's "same" rule: the smaller half of the padding first);
nothing is taken from lstmkit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lstmkit
from lstmkit import Bidirectional, ConvLSTMCell, Dense, Recurrent, Sequential, activations
from lstmkit.interop.keras_conv import (
    from_keras_convlstm,
    keras_convlstm_config,
    to_keras_convlstm,
)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def conv2d_loops(x, kernel, padding, dilation):
    """One image ``(H, W, in)``, kernel ``(kh, kw, in, out)``: a plain cross-correlation."""
    kh, kw = kernel.shape[:2]
    dh, dw = dilation
    if padding == "same":
        th, tw = dh * (kh - 1), dw * (kw - 1)
        x = np.pad(x, ((th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)))
    out_h, out_w = x.shape[0] - dh * (kh - 1), x.shape[1] - dw * (kw - 1)
    out = np.zeros((out_h, out_w, kernel.shape[-1]))
    for r in range(out_h):
        for s in range(out_w):
            for a in range(kh):
                for b in range(kw):
                    out[r, s] += x[r + a * dh, s + b * dw] @ kernel[a, b]
    return out


def keras_convlstm_reference(frames, kernel, recurrent_kernel, bias, padding, dilation):
    F = recurrent_kernel.shape[-2]
    h = c = None
    outputs = []
    for x in frames:
        x_all = conv2d_loops(x, kernel, padding, dilation) + bias
        if h is None:
            h = c = np.zeros(x_all.shape[:2] + (F,))
        h_all = conv2d_loops(h, recurrent_kernel, "same", (1, 1))
        z = x_all + h_all
        i, f = sigmoid(z[..., :F]), sigmoid(z[..., F : 2 * F])
        g, o = np.tanh(z[..., 2 * F : 3 * F]), sigmoid(z[..., 3 * F :])
        c = f * c + i * g
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs), h, c


@pytest.mark.parametrize(
    ("padding", "dilation", "kernel_size"),
    [("same", (1, 1), (3, 3)), ("valid", (1, 2), (2, 2)), ("same", (2, 1), (2, 3))],
)
def test_keras_weights_match_keras_equations(padding, dilation, kernel_size):
    rng = np.random.default_rng(0)
    C, F, T = 2, 3, 3
    kernel = 0.4 * rng.standard_normal((*kernel_size, C, 4 * F))
    recurrent = 0.4 * rng.standard_normal((*kernel_size, F, 4 * F))
    bias = 0.3 * rng.standard_normal(4 * F)
    frames = rng.standard_normal((T, 6, 5, C))
    cell = from_keras_convlstm(
        [kernel, recurrent, bias],
        input_shape=(6, 5, C),
        padding=padding,
        dilation_rate=dilation,
    )
    y, final = Recurrent(cell)(frames[None])
    ref_y, ref_h, ref_c = keras_convlstm_reference(
        frames, kernel, recurrent, bias, padding, dilation
    )
    np.testing.assert_allclose(y[0], ref_y, atol=1e-12)
    np.testing.assert_allclose(final.c[0], ref_c, atol=1e-12)
    back = to_keras_convlstm(cell)
    for ours, theirs in zip(back, (kernel, recurrent, bias), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    settings = keras_convlstm_config(cell)
    assert settings["layer"] == "ConvLSTM2D" and settings["padding"] == padding
    assert settings["dilation_rate"] == dilation and settings["filters"] == F


def test_keras_conversion_refuses_what_keras_cannot_express():
    cell = ConvLSTMCell((5, 2), 3, 3, cell_activation="relu", rng=0)
    with pytest.raises(ValueError, match="cell activation"):
        to_keras_convlstm(cell)
    mixed = ConvLSTMCell((5, 2), 3, 3, rng=0)
    mixed.output.activation = activations.hard_sigmoid
    with pytest.raises(ValueError, match="share one activation"):
        keras_convlstm_config(mixed)
    good = [np.zeros((3, 2, 12)), np.zeros((3, 3, 12))]
    with pytest.raises(ValueError, match="input_shape"):
        from_keras_convlstm(good, input_shape=(5, 3))
    with pytest.raises(ValueError, match="recurrent_kernel"):
        from_keras_convlstm([np.zeros((3, 2, 12)), np.zeros((3, 3, 9))], input_shape=(5, 2))
    with pytest.raises(ValueError, match="kernel"):
        from_keras_convlstm([np.zeros((2, 2, 12)), np.zeros((3, 3, 12))], input_shape=(5, 2))


def test_keras_conversion_without_bias_and_float32():
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal((3, 1, 8)).astype(np.float32), np.zeros((3, 2, 8), np.float32)]
    cell = from_keras_convlstm(weights, input_shape=(7, 1), padding="same")
    assert cell.dtype == np.float32 and not np.any(cell.forget.b.value)


@pytest.mark.parametrize("wrap", ["recurrent", "bidirectional", "sequential"])
def test_save_load_round_trip(tmp_path, wrap):
    cell = ConvLSTMCell(
        (5, 4, 2), 3, (3, 2), padding="valid", dilation=(1, 2), forget_bias=0.5, rng=0
    )
    cell.forget.activation = activations.hard_sigmoid
    if wrap == "recurrent":
        model = Recurrent(cell, reverse=True)
    elif wrap == "bidirectional":
        model = Bidirectional(cell, merge="sum", rng=1)
    else:
        model = Sequential([Recurrent(cell), Dense(3, 1, activation="sigmoid", rng=2)])
    path = tmp_path / "model.npz"
    lstmkit.save(model, path)
    loaded = lstmkit.load(path)
    x = np.random.default_rng(3).standard_normal((2, 3, 5, 4, 2))
    if wrap == "sequential":
        np.testing.assert_array_equal(loaded(x, lengths=[3, 1]), model(x, lengths=[3, 1]))
    else:
        np.testing.assert_array_equal(loaded(x, lengths=[3, 1])[0], model(x, lengths=[3, 1])[0])
    assert lstmkit.config.to_config(loaded) == lstmkit.config.to_config(model)


def test_load_refuses_a_description_that_does_not_fit(tmp_path):
    cell = ConvLSTMCell((5, 2), 3, 3, rng=0)
    cfg = lstmkit.config.to_config(cell)
    weights = cell.state_dict()
    cfg["gates"]["input"]["kernel_size"] = [5]
    with pytest.raises(ValueError, match="gates.input"):
        lstmkit.config.from_config(json.loads(json.dumps(cfg)), weights)
    cfg = lstmkit.config.to_config(cell)
    cfg["input_shape"] = [5, 2, 2]
    with pytest.raises(ValueError, match="kernel_size"):
        lstmkit.config.from_config(cfg, weights)


def test_moving_squares_example_runs(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "moving_squares.py"
    spec = importlib.util.spec_from_file_location("moving_squares", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    frames = module.moving_squares(np.random.default_rng(0), 3, 6)
    assert frames.shape == (3, 6, 12, 12, 1)
    assert np.all(frames.sum(axis=(2, 3, 4)) == 9)  # one 3x3 square in every frame
    copy_last, mse = module.main(["--steps", "2", "--plot", str(tmp_path / "plot.png")])
    assert 0 < copy_last < 1 and 0 < mse < 1
    assert "copy last frame" in capsys.readouterr().out
