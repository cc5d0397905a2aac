"""Whole models (``Sequential``: runners plus LastStep/MeanPool/Dense heads) exported to ONNX and
run in ONNX Runtime (the oracle), compared with lstmkit's own outputs, with and without lengths.

Weights are random everywhere (biases too), so a misplaced block, mask or transpose changes the
numbers. ONNX Runtime's CPU LSTM/GRU kernels run float32 only, so float64 models are exported with
``dtype=np.float32``.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lstmkit import (
    Bidirectional,
    Dense,
    GRUCell,
    LSTMCell,
    ProjectionLSTMCell,
    Recurrent,
    Sequential,
    Stacked,
    VariationalDropout,
)
from lstmkit.activations import Activation
from lstmkit.interop.onnx import to_onnx
from lstmkit.layers import FinalState, LastStep, MeanPool

LENGTHS = np.array([6, 2, 5, 0])


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.value = rng.uniform(-0.8, 0.8, p.shape).astype(p.dtype)
    return model


def run_onnx(model, tmp_path, lengths, **kwargs):
    path = tmp_path / "model.onnx"
    to_onnx(model, path, lengths=lengths is not None, **kwargs)
    onnx.checker.check_model(onnx.load(str(path)))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((4, 6, model.input_size))
    feed = {"x": x.astype(np.float32)}
    if lengths is not None:
        feed["lengths"] = np.asarray(lengths, np.int32)
    (y_onnx,) = session.run(None, feed)
    return x, y_onnx


def backbone():
    return [
        Bidirectional(LSTMCell(3, 4, peephole=True, rng=0), merge="concat", rng=1),
        GRUCell(8, 5, rng=2),
    ]


HEADS = {
    "last-step dense": lambda: [LastStep(), Dense(5, 2, "tanh", rng=3)],
    "mean-pool two dense": lambda: [
        MeanPool(),
        Dense(5, 3, "hard_sigmoid", rng=3),
        Dense(3, 2, rng=4),
    ],
    "sequence dense": lambda: [Dense(5, 2, "sigmoid", rng=3)],
    "dense then last step": lambda: [Dense(5, 5, "relu", rng=3), LastStep()],
    "dense between runners": lambda: [Dense(5, 6, "elu", rng=3), LSTMCell(6, 3, rng=4), MeanPool()],
    "nested sequential head": lambda: [
        Sequential(LastStep(), Dense(5, 4, "softsign", rng=3), Dense(4, 1, "softplus", rng=4))
    ],
}


@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("head", sorted(HEADS))
def test_whole_model_matches_lstmkit(tmp_path, head, with_lengths):
    model = randomize(Sequential(*backbone(), *HEADS[head]()))
    lengths = LENGTHS if with_lengths else None
    x, y_onnx = run_onnx(model, tmp_path, lengths, dtype=np.float32)
    y = model(x, lengths=lengths)  # the float64 original
    assert y_onnx.shape == y.shape and y_onnx.dtype == np.float32
    np.testing.assert_allclose(y_onnx, y, rtol=1e-4, atol=1e-5)
    if with_lengths and y.ndim == 2 and isinstance(model.layers[-1], LastStep):
        assert np.all(y_onnx[3] == 0)  # a sequence of length 0 pools to zeros


def test_float32_model_exports_without_dtype_and_the_original_is_untouched(tmp_path):
    model = randomize(Sequential(Stacked([LSTMCell(3, 4, dtype=np.float32, rng=0)]), MeanPool()))
    x, y_onnx = run_onnx(model, tmp_path, LENGTHS)
    np.testing.assert_allclose(
        y_onnx, model(x.astype(np.float32), lengths=LENGTHS), rtol=1e-5, atol=1e-6
    )
    model64 = randomize(Sequential(LSTMCell(3, 4, rng=0), LastStep()))
    to_onnx(model64, tmp_path / "m.onnx", dtype=np.float32)
    assert model64.dtype == np.float64 and model64.layers[0].cell.forget.W.value.dtype == np.float64


def test_a_dense_activation_declaring_its_onnx_form_is_honoured(tmp_path):
    scaled = Activation(
        "scaled_tanh_test",
        lambda z: 1.7 * np.tanh(0.5 * z),
        lambda z: 0.85 * (1 - np.tanh(0.5 * z) ** 2),
        onnx=("ScaledTanh", 1.7, 0.5),
    )
    affine = Activation(
        "affine_test",
        lambda z: 2.0 * z - 1.0,
        lambda z: np.full_like(z, 2.0),
        onnx=("Affine", 2.0, -1.0),
    )
    model = randomize(
        Sequential(
            LSTMCell(3, 4, rng=0),
            LastStep(),
            Dense(4, 3, scaled, rng=1),
            Dense(3, 2, affine, rng=2),
        )
    )
    x, y_onnx = run_onnx(model, tmp_path, LENGTHS, dtype=np.float32)
    np.testing.assert_allclose(y_onnx, model(x, lengths=LENGTHS), rtol=1e-4, atol=1e-5)


class MyPool(MeanPool):
    """A user's pooling layer (a subclass: it may compute anything)."""


def test_everything_onnx_cannot_express_is_listed(tmp_path):
    own = Activation("own_act", np.tanh, lambda z: 1 - np.tanh(z) ** 2)
    model = Sequential(
        Recurrent(ProjectionLSTMCell(3, 4, 2, rng=0)),
        VariationalDropout(LSTMCell(2, 4, rng=1), input_rate=0.1, rng=0),
        MyPool(),
        Dense(4, 2, own, rng=2),
    )
    with pytest.raises(ValueError) as info:
        to_onnx(model, tmp_path / "m.onnx")
    message = str(info.value)
    for part in (
        "model.layers[0].cell: a ProjectionLSTMCell",
        "model.layers[1].cell: a VariationalDropout",
        "model.layers[2]: a MyPool layer",
        "model.layers[3].activation: 'own_act'",
    ):
        assert part in message, part
    assert not (tmp_path / "m.onnx").exists()


def test_bad_opset_and_missing_folder(tmp_path):
    model = Sequential(LSTMCell(3, 4, rng=0), LastStep())
    with pytest.raises(ValueError, match="opset: expected an integer of at least 13"):
        to_onnx(model, tmp_path / "m.onnx", opset=11)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        to_onnx(model, tmp_path / "no" / "m.onnx")
    with pytest.raises(TypeError, match="dtype: expected float32 or float64"):
        to_onnx(model, tmp_path / "m.onnx", dtype=np.int8)


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_reductions_at_both_sides_of_opset_18(tmp_path, opset, with_lengths):
    # ReduceMean takes its axes as an attribute before opset 18 and as an input from 18 on.
    model = randomize(Sequential(Dense(3, 4, "tanh", rng=0), LSTMCell(4, 3, rng=1), MeanPool()))
    lengths = LENGTHS if with_lengths else None
    x, y_onnx = run_onnx(model, tmp_path, lengths, dtype=np.float32, opset=opset)
    np.testing.assert_allclose(y_onnx, model(x, lengths=lengths), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("with_lengths", [False, True])
def test_final_state_after_a_bidirectional_layer(tmp_path, with_lengths):
    model = randomize(
        Sequential(
            Bidirectional(LSTMCell(3, 4, rng=0), merge="concat", rng=1),
            FinalState(),
            Dense(8, 2, "tanh", rng=2),
        )
    )
    lengths = LENGTHS if with_lengths else None
    x, y_onnx = run_onnx(model, tmp_path, lengths, dtype=np.float32)
    np.testing.assert_allclose(y_onnx, model(x, lengths=lengths), rtol=1e-4, atol=1e-5)
