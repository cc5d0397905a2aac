"""ONNX export, run in ONNX Runtime (the oracle) and compared with lstmkit's own outputs (float32).

Weights are random everywhere (peepholes and biases too), so a misplaced gate block, peephole or
bias changes the numbers. ONNX Runtime's CPU LSTM/GRU kernels run float32 only.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lstmkit import (
    Bidirectional,
    CoupledLSTMCell,
    GRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    ProjectionLSTMCell,
    Recurrent,
    Stacked,
    VariationalDropout,
)
from lstmkit.interop.onnx import to_onnx

F32 = np.float32
LENGTHS = [6, 2, 5]


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.value = rng.uniform(-0.8, 0.8, p.shape).astype(p.dtype)
    return model


def check(model, tmp_path, lengths=None):
    path = tmp_path / "model.onnx"
    to_onnx(model, path, lengths=lengths is not None)
    onnx.checker.check_model(onnx.load(str(path)))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((3, 6, model.input_size)).astype(F32)
    feed = {"x": x}
    if lengths is not None:
        feed["lengths"] = np.asarray(lengths, np.int32)
    (y_onnx,) = session.run(None, feed)
    runner = model if hasattr(model, "forward") else Recurrent(model)
    y, _ = runner(x, lengths=lengths)
    assert y_onnx.shape == y.shape and y_onnx.dtype == F32
    np.testing.assert_allclose(y_onnx, y, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(y).max())))
    return y_onnx


def lstm(n_in=3, n_h=4, seed=0, **kwargs):
    return LSTMCell(n_in, n_h, dtype=F32, rng=seed, **kwargs)


@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_single_layer(tmp_path, with_lengths, reverse):
    y = check(
        randomize(Recurrent(lstm(), reverse=reverse)), tmp_path, LENGTHS if with_lengths else None
    )
    if with_lengths:
        assert np.all(y[1, 2:] == 0)  # zero past each length, as in lstmkit


def test_peephole_cell_with_non_default_activations(tmp_path):
    cell = lstm(
        peephole=True,
        gate_activation="hard_sigmoid",
        candidate_activation="softsign",
        cell_activation="elu",
    )
    check(randomize(Recurrent(cell)), tmp_path, LENGTHS)


@pytest.mark.parametrize(
    "candidate, cell_activation", [("linear", "relu"), ("softplus", "tanh"), ("tanh", "softsign")]
)
def test_more_activations(tmp_path, candidate, cell_activation):
    cell = lstm(
        peephole=["output"], candidate_activation=candidate, cell_activation=cell_activation
    )
    model = randomize(Recurrent(cell))
    for gate in cell.gates.values():  # keep linear/relu/softplus chains moderate
        gate.W.value *= F32(0.5)
        gate.U.value *= F32(0.5)
    check(model, tmp_path, LENGTHS)


@pytest.mark.parametrize("merge", ["concat", "sum", "mean", "mul"])
def test_bidirectional_merges(tmp_path, merge):
    check(randomize(Bidirectional(lstm(peephole=True), merge=merge, rng=1)), tmp_path, LENGTHS)


def test_stack_of_layers(tmp_path):
    model = Stacked(
        [
            Bidirectional(lstm(), rng=1),
            Recurrent(lstm(8, 5, seed=2, peephole=True), reverse=True),
            Bidirectional(lstm(5, 3, seed=3), merge="sum", rng=4),
        ],
        dropout=0.3,
    )  # dropout is training-only, so the graph has none
    check(randomize(model), tmp_path, LENGTHS)
    check(model, tmp_path)


def test_coupled_cell_uses_input_forget(tmp_path):
    model = randomize(Recurrent(CoupledLSTMCell(3, 4, peephole=True, dtype=F32, rng=0)))
    check(model, tmp_path, LENGTHS)
    node = next(
        n for n in onnx.load(str(tmp_path / "model.onnx")).graph.node if n.op_type == "LSTM"
    )
    assert {a.name: a.i for a in node.attribute}["input_forget"] == 1
    hard = randomize(
        Recurrent(CoupledLSTMCell(3, 4, gate_activation="hard_sigmoid", dtype=F32, rng=0))
    )
    check(hard, tmp_path, LENGTHS)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru(tmp_path, reset_after):
    model = Stacked(
        [
            Bidirectional(GRUCell(3, 4, reset_after=reset_after, dtype=F32, rng=0), rng=1),
            GRUCell(
                8, 2, reset_after=reset_after, gate_activation="hard_sigmoid", dtype=F32, rng=2
            ),
        ]
    )
    check(randomize(model), tmp_path, LENGTHS)
    node = next(n for n in onnx.load(str(tmp_path / "model.onnx")).graph.node if n.op_type == "GRU")
    assert {a.name: a.i for a in node.attribute}["linear_before_reset"] == int(reset_after)


def test_bare_cell_exports_as_a_forward_runner(tmp_path):
    check(randomize(lstm()), tmp_path)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ProjectionLSTMCell(3, 4, 2, dtype=F32, rng=0), "ProjectionLSTMCell"),
        (lambda: LayerNormLSTMCell(3, 4, dtype=F32, rng=0), "LayerNormLSTMCell"),
        (lambda: VariationalDropout(lstm(), 0.1, 0.1), "VariationalDropout"),
        (
            lambda: GRUCell(3, 4, update_convention="olah", dtype=F32, rng=0),
            "update_convention='olah'",
        ),
        (lambda: Bidirectional(lstm(), merge="none", rng=1), "merge='none'"),
        (
            lambda: CoupledLSTMCell(3, 4, gate_activation="relu", dtype=F32, rng=0),
            "f\\(-a\\) = 1 - f\\(a\\)",
        ),
    ],
)
def test_clear_errors(tmp_path, make, message):
    with pytest.raises(ValueError, match=message):
        to_onnx(make(), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_per_gate_activations_and_unknown_activations_are_named(tmp_path):
    cell = lstm()
    cell.forget.activation = "hard_sigmoid"
    with pytest.raises(
        ValueError, match="different activations on the input, forget and output gates"
    ):
        to_onnx(cell, tmp_path / "m.onnx")
    from lstmkit.activations import Activation

    swish = Activation("swish_onnx_test", lambda z: z / (1 + np.exp(-z)), lambda z: z)
    with pytest.raises(ValueError, match=r"model\.cell\.candidate: activation 'swish_onnx_test'"):
        to_onnx(LSTMCell(3, 4, candidate_activation=swish, rng=0), tmp_path / "m.onnx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        to_onnx(lstm(), tmp_path / "missing" / "m.onnx")


# -- activations are recognised by the object and its declared onnx form ----------------------------

# ONNX's definitions of the recurrent-operator activations (the operator specification), written
# here independently of lstmkit.
ONNX_DEFINITIONS = {
    "Sigmoid": lambda z, a, b: 1 / (1 + np.exp(-z)),
    "Tanh": lambda z, a, b: np.tanh(z),
    "Relu": lambda z, a, b: np.maximum(z, 0),
    "HardSigmoid": lambda z, a, b: np.clip(a * z + b, 0, 1),
    "Affine": lambda z, a, b: a * z + b,
    "Softsign": lambda z, a, b: z / (1 + np.abs(z)),
    "Softplus": lambda z, a, b: np.log(1 + np.exp(z)),
    "Elu": lambda z, a, b: np.where(z >= 0, z, a * (np.exp(np.minimum(z, 0)) - 1)),
}


def test_every_builtin_declares_the_onnx_function_it_computes():
    from lstmkit import activations

    z = np.linspace(-6, 6, 121) + 0.0123
    for act in activations.BUILTINS:
        assert act.onnx is not None, act
        name, alpha, beta = act.onnx
        np.testing.assert_allclose(
            act(z), ONNX_DEFINITIONS[name](z, alpha, beta), rtol=1e-12, atol=1e-15, err_msg=name
        )


def _impostor(name="sigmoid"):
    from lstmkit.activations import Activation

    return Activation(
        name, lambda z: np.clip(z, 0.0, 1.0), lambda y: np.ones_like(y), derivative_from_output=True
    )


def test_user_activation_named_like_a_builtin_is_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"model\.cell\.input: activation 'sigmoid' is your own Activation"
    ):
        to_onnx(lstm(gate_activation=_impostor()), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"model\.cell\.reset: activation 'sigmoid' is your own"):
        to_onnx(GRUCell(3, 4, gate_activation=_impostor(), dtype=F32, rng=0), tmp_path / "m.onnx")
    with pytest.raises(
        ValueError,
        match=r"model\.layers\[1\]\.backward_layer\.cell\.cell_activation: activation 'tanh' is your own",
    ):
        to_onnx(
            Stacked([lstm(), Bidirectional(lstm(4, 2, cell_activation=_impostor("tanh")), rng=1)]),
            tmp_path / "m.onnx",
        )
    with pytest.raises(ValueError, match=r"model\.cell\.forget: activation 'sigmoid'"):
        to_onnx(
            CoupledLSTMCell(3, 4, gate_activation=_impostor(), dtype=F32, rng=0),
            tmp_path / "m.onnx",
        )
    assert not list(tmp_path.iterdir())


def test_deep_copied_cells_export_like_the_original(tmp_path):
    import copy

    cell = randomize(lstm(gate_activation="hard_sigmoid", peephole=True))
    check(copy.deepcopy(cell), tmp_path)
    check(randomize(Bidirectional(copy.deepcopy(lstm()), rng=1), seed=2), tmp_path)
    check(randomize(copy.deepcopy(CoupledLSTMCell(3, 4, dtype=F32, rng=0))), tmp_path)


def test_a_declared_onnx_form_is_honoured(tmp_path):
    from lstmkit import activations
    from lstmkit.activations import Activation

    # The user's own activation declares that it is ONNX's Affine(alpha=1, beta=0): exported as such.
    identity = Activation(
        "my_identity",
        lambda z: np.array(z, copy=True),
        np.ones_like,
        derivative_from_output=True,
        onnx=("Affine", 1.0, 0.0),
    )
    check(randomize(lstm(cell_activation=identity, candidate_activation="linear")), tmp_path)
    # Declaring the sigmoid's ONNX form without symmetric= is not enough for a coupled cell.
    own_sigmoid = Activation(
        "my_sigmoid",
        activations.sigmoid.function,
        activations.sigmoid.derivative,
        derivative_from_output=True,
        onnx=("Sigmoid", None, None),
    )
    with pytest.raises(ValueError, match=r"input_forget with the gate activation 'my_sigmoid'"):
        to_onnx(
            CoupledLSTMCell(3, 4, gate_activation=own_sigmoid, dtype=F32, rng=0),
            tmp_path / "c.onnx",
        )
