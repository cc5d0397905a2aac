"""SimpleRNNCell and MGUCell against independent implementations.

* PyTorch ``nn.RNN`` and ``nn.RNNCell`` (tanh and relu, float32 and float64): outputs, final
  states and every gradient, with weights copied here by hand (not by the converter), with
  lengths (PyTorch runs each sequence alone); then the converters ``from_torch``/``to_torch``.
* ONNX Runtime's ``RNN`` operator, on graphs written by ``to_onnx`` (with lengths).
* Keras' ``SimpleRNN`` weight layout, against a NumPy loop of Keras' equations.
* The MGU against a slow plain-Python loop written from Zhou et al.'s (2016) equations and
  Flax's ``MGUCell``, one scalar at a time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstmkit import (
    Activation,
    Bidirectional,
    HiddenState,
    MGUCell,
    Recurrent,
    SimpleRNNCell,
    Stacked,
    activations,
)

NONLINEARITIES = {"tanh": activations.tanh, "relu": activations.relu}


def _tol(dtype):
    return 1e-10 if dtype == np.float64 else 2e-5


def _torch_dtype(torch, dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def _cell_from_torch_by_hand(module, suffix, nonlinearity, dtype):
    p = {k: v.detach().numpy() for k, v in module.named_parameters()}
    cell = SimpleRNNCell(
        p[f"weight_ih{suffix}"].shape[1],
        p[f"weight_ih{suffix}"].shape[0],
        activation=nonlinearity,
        dtype=dtype,
        rng=0,
    )
    cell.candidate.set_weights(
        W=p[f"weight_ih{suffix}"].T.copy(),
        U=p[f"weight_hh{suffix}"].T.copy(),
        b=p[f"bias_ih{suffix}"] + p[f"bias_hh{suffix}"],
    )
    return cell


# -- PyTorch --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_simple_rnn_matches_torch_rnn_outputs_and_gradients(nonlinearity, dtype):
    torch = pytest.importorskip("torch")
    I, H, B, T = 3, 4, 2, 6
    torch.manual_seed(0)
    ref = torch.nn.RNN(
        I, H, nonlinearity=nonlinearity, batch_first=True, dtype=_torch_dtype(torch, dtype)
    )
    cell = _cell_from_torch_by_hand(ref, "_l0", nonlinearity, dtype)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, I)).astype(dtype)
    h0 = rng.normal(size=(B, H)).astype(dtype)
    dy = rng.normal(size=(B, T, H)).astype(dtype)
    dh = rng.normal(size=(B, H)).astype(dtype)

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    yt, hnt = ref(xt, h0t)
    ((yt * torch.tensor(dy)).sum() + (hnt[0] * torch.tensor(dh)).sum()).backward()

    rnn = Recurrent(cell)
    y, final, cache = rnn.forward(x, HiddenState(h=h0.copy()))
    dx, d0 = rnn.backward(cache, dy, HiddenState(h=dh))
    tol = _tol(dtype)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=tol, rtol=tol)
    np.testing.assert_allclose(final.h, hnt[0].detach().numpy(), atol=tol, rtol=tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=10 * tol, rtol=tol)
    np.testing.assert_allclose(d0.h, h0t.grad[0].numpy(), atol=10 * tol, rtol=tol)
    g = {k: v.grad.numpy() for k, v in ref.named_parameters()}
    gate = cell.candidate
    np.testing.assert_allclose(gate.W.grad, g["weight_ih_l0"].T, atol=10 * tol, rtol=tol)
    np.testing.assert_allclose(gate.U.grad, g["weight_hh_l0"].T, atol=10 * tol, rtol=tol)
    np.testing.assert_allclose(gate.b.grad, g["bias_ih_l0"], atol=10 * tol, rtol=tol)
    np.testing.assert_allclose(gate.b.grad, g["bias_hh_l0"], atol=10 * tol, rtol=tol)
    if nonlinearity == "relu":  # the relu branch really was exercised: some units were cut
        assert np.any(y == 0) and np.any(y > 0)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_simple_rnn_with_lengths_matches_torch_run_per_sequence(nonlinearity, reverse):
    torch = pytest.importorskip("torch")
    I, H, T = 2, 3, 6
    torch.manual_seed(3)
    ref = torch.nn.RNN(I, H, nonlinearity=nonlinearity, batch_first=True, dtype=torch.float64)
    cell = _cell_from_torch_by_hand(ref, "_l0", nonlinearity, np.float64)
    rng = np.random.default_rng(0)
    lengths = [6, 2, 4, 0]
    x = rng.normal(size=(4, T, I))
    dy = rng.normal(size=(4, T, H))
    dh = rng.normal(size=(4, H))
    rnn = Recurrent(cell, reverse=reverse)
    y, final, cache = rnn.forward(x, lengths=lengths)
    dx, _ = rnn.backward(cache, dy, HiddenState(h=dh))
    for b, n in enumerate(lengths):
        seq = x[b, :n][::-1] if reverse else x[b, :n]
        want_dy = dy[b, :n][::-1] if reverse else dy[b, :n]
        xt = torch.tensor(seq.copy()[None], requires_grad=True)
        h = torch.zeros(1, 1, H, dtype=torch.float64)
        if n:
            yt, hn = ref(xt, h)
            loss = (yt[0] * torch.tensor(want_dy.copy())).sum() + (
                hn[0, 0] * torch.tensor(dh[b])
            ).sum()
            loss.backward()  # PyTorch accumulates each sequence's parameter gradients
            got_y = yt[0].detach().numpy()
            np.testing.assert_allclose(y[b, :n], got_y[::-1] if reverse else got_y, atol=1e-12)
            np.testing.assert_allclose(final.h[b], hn[0, 0].detach().numpy(), atol=1e-12)
            got_dx = xt.grad[0].numpy()
            np.testing.assert_allclose(dx[b, :n], got_dx[::-1] if reverse else got_dx, atol=1e-12)
        else:
            np.testing.assert_array_equal(final.h[b], 0)
        assert np.all(y[b, n:] == 0) and np.all(dx[b, n:] == 0)
    g = {k: v.grad.numpy() for k, v in ref.named_parameters()}
    np.testing.assert_allclose(cell.candidate.W.grad, g["weight_ih_l0"].T, atol=1e-11)
    np.testing.assert_allclose(cell.candidate.U.grad, g["weight_hh_l0"].T, atol=1e-11)
    np.testing.assert_allclose(cell.candidate.b.grad, g["bias_hh_l0"], atol=1e-11)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_simple_rnn_step_matches_torch_rnn_cell(nonlinearity, dtype):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    ref = torch.nn.RNNCell(3, 5, nonlinearity=nonlinearity, dtype=_torch_dtype(torch, dtype))
    cell = _cell_from_torch_by_hand(ref, "", nonlinearity, dtype)
    rng = np.random.default_rng(2)
    x, h = rng.normal(size=(4, 3)).astype(dtype), rng.normal(size=(4, 5)).astype(dtype)
    dy = rng.normal(size=(4, 5)).astype(dtype)
    xt, ht = torch.tensor(x, requires_grad=True), torch.tensor(h, requires_grad=True)
    yt = ref(xt, ht)
    (yt * torch.tensor(dy)).sum().backward()
    state, y, cache = cell.step_train(HiddenState(h=h), x)
    d_prev, dx = cell.step_backward(cache, HiddenState(h=np.zeros_like(h)), dy)
    tol = _tol(dtype)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=tol, rtol=tol)
    np.testing.assert_array_equal(state.h, y)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=10 * tol, rtol=tol)
    np.testing.assert_allclose(d_prev.h, ht.grad.numpy(), atol=10 * tol, rtol=tol)
    np.testing.assert_allclose(cell.candidate.W.grad, ref.weight_ih.grad.numpy().T, atol=10 * tol)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_from_torch_multi_layer_bidirectional_rnn(nonlinearity):
    torch = pytest.importorskip("torch")
    from lstmkit.interop.torch import from_torch, to_torch

    torch.manual_seed(4)
    ref = torch.nn.RNN(
        3, 4, num_layers=3, bidirectional=True, nonlinearity=nonlinearity, dtype=torch.float64
    )  # batch_first=False: lstmkit still takes (batch, time, features)
    model = from_torch(ref)
    assert isinstance(model, Stacked) and len(model.layers) == 3
    assert all(isinstance(layer, Bidirectional) for layer in model.layers)
    cells = [
        c for layer in model.layers for c in (layer.forward_layer.cell, layer.backward_layer.cell)
    ]
    assert all(type(c) is SimpleRNNCell for c in cells)
    assert all(c.candidate.activation is NONLINEARITIES[nonlinearity] for c in cells)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    xt = torch.tensor(x.transpose(1, 0, 2).copy(), requires_grad=True)
    yt, hn = ref(xt)
    dy = np.random.default_rng(1).normal(size=(2, 5, 8))
    (yt * torch.tensor(dy.transpose(1, 0, 2).copy())).sum().backward()
    y, _, cache = model.forward(x)
    dx, _ = model.backward(cache, dy)
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(1, 0, 2), atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(1, 0, 2), atol=1e-12)
    grads = model.named_parameters()
    for k in range(3):
        for suffix, side in (("", "forward_layer"), ("_reverse", "backward_layer")):
            ours = grads[f"layers.{k}.{side}.cell.candidate.U"].grad
            theirs = getattr(ref, f"weight_hh_l{k}{suffix}").grad.numpy().T
            np.testing.assert_allclose(ours, theirs, atol=1e-11)

    back = to_torch(model)
    assert isinstance(back, torch.nn.RNN) and back.nonlinearity == nonlinearity
    assert (back.num_layers, back.bidirectional, back.batch_first) == (3, True, True)
    with torch.no_grad():
        again = back(torch.tensor(x))[0].numpy()
    np.testing.assert_allclose(again, y, atol=1e-12)


def test_rnn_cell_conversions_and_refusals():
    torch = pytest.importorskip("torch")
    from lstmkit.interop.torch import from_torch, to_torch

    ref = torch.nn.RNNCell(3, 4, nonlinearity="relu", bias=False)
    cell = from_torch(ref)
    assert type(cell) is SimpleRNNCell and cell.dtype == np.float32
    assert cell.candidate.activation is activations.relu
    assert np.all(cell.candidate.b.value == 0)
    back = to_torch(cell)
    assert isinstance(back, torch.nn.RNNCell) and back.nonlinearity == "relu"
    np.testing.assert_array_equal(back.weight_ih.detach().numpy(), ref.weight_ih.detach().numpy())

    fake_tanh = Activation("tanh", lambda z: np.tanh(0.5 * z), lambda y: 0.5 * (1 - y * y), True)
    with pytest.raises(ValueError, match="your own Activation, not lstmkit's built-in tanh"):
        to_torch(SimpleRNNCell(3, 4, activation=fake_tanh, rng=0))
    with pytest.raises(ValueError, match="activation 'softsign'.*tanh or relu"):
        to_torch(Recurrent(SimpleRNNCell(3, 4, activation="softsign", rng=0)))
    mixed = Stacked([SimpleRNNCell(3, 4, rng=0), SimpleRNNCell(4, 4, activation="relu", rng=1)])
    with pytest.raises(ValueError, match="a mix of tanh RNN and relu RNN layers"):
        to_torch(mixed)
    with pytest.raises(ValueError, match="reverse-only"):
        to_torch(Recurrent(SimpleRNNCell(3, 4, rng=0), reverse=True))
    with pytest.raises(TypeError, match="RNN or RNNCell"):
        from_torch(torch.nn.Linear(3, 4))


# -- ONNX Runtime ---------------------------------------------------------------------------------


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_simple_rnn_export_matches_onnx_runtime_with_lengths(merge, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from lstmkit.interop.onnx import to_onnx

    f32 = np.float32
    first = SimpleRNNCell(3, 4, activation="relu", bias_initializer="normal", dtype=f32, rng=0)
    width = 8 if merge == "concat" else 4
    second = SimpleRNNCell(width, 5, bias_initializer="normal", dtype=f32, rng=2)
    model = Stacked([Bidirectional(first, merge=merge, rng=1), Recurrent(second, reverse=True)])
    path = tmp_path / "rnn.onnx"
    to_onnx(model, path, lengths=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 3)).astype(f32)
    lengths = np.array([6, 2, 4], np.int32)
    (got,) = session.run(None, {"x": x, "lengths": lengths})
    want, _ = model(x, lengths=lengths)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.all(got[1, 2:] == 0)


def test_onnx_refuses_what_its_rnn_cannot_express(tmp_path):
    pytest.importorskip("onnx")
    from lstmkit.interop.onnx import to_onnx

    own = Activation("mine", np.tanh, lambda y: 1 - y * y, True)
    with pytest.raises(ValueError, match="model.cell.candidate: activation 'mine'"):
        to_onnx(SimpleRNNCell(3, 4, activation=own, rng=0), tmp_path / "x.onnx")
    from lstmkit import GRUCell

    mixed = Bidirectional(
        Recurrent(SimpleRNNCell(3, 4, rng=0)), Recurrent(GRUCell(3, 4, rng=0), reverse=True)
    )
    with pytest.raises(ValueError, match="directions of different kinds"):
        to_onnx(mixed, tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="MGUCell"):
        to_onnx(MGUCell(3, 4, rng=0), tmp_path / "x.onnx")


# -- Keras' SimpleRNN layout ------------------------------------------------------------------------


def test_keras_simple_rnn_weights_follow_keras_equations():
    from lstmkit.interop.keras import from_keras_simple_rnn, keras_config, to_keras_simple_rnn

    rng = np.random.default_rng(0)
    kernel, recurrent, bias = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)), rng.normal(size=4)
    cell = from_keras_simple_rnn([kernel, recurrent, bias], activation="relu")
    assert cell.dtype == np.float64 and cell.candidate.activation is activations.relu
    x = rng.normal(size=(2, 5, 3))
    # Keras' SimpleRNNCell: output = activation(inputs @ kernel + bias + h @ recurrent_kernel).
    h = np.zeros((2, 4))
    y, _ = Recurrent(cell)(x)
    for t in range(5):
        h = np.maximum(x[:, t] @ kernel + bias + h @ recurrent, 0)
        np.testing.assert_allclose(y[:, t], h, atol=1e-12)
    weights = to_keras_simple_rnn(cell)
    for ours, theirs in zip(weights, (kernel, recurrent, bias)):
        np.testing.assert_array_equal(ours, theirs)
    assert keras_config(cell) == {"units": 4, "activation": "relu"}
    no_bias = from_keras_simple_rnn([kernel.astype(np.float32), recurrent], dtype=np.float32)
    assert no_bias.dtype == np.float32 and np.all(no_bias.candidate.b.value == 0)


def test_keras_simple_rnn_bad_input():
    from lstmkit.interop.keras import from_keras_simple_rnn, keras_config, to_keras_simple_rnn

    rng = np.random.default_rng(0)
    kernel, recurrent = rng.normal(size=(3, 4)), rng.normal(size=(4, 4))
    with pytest.raises(ValueError, match=r"kernel\): expected shape \(input, 4\)"):
        from_keras_simple_rnn([kernel[:, :3], recurrent])
    with pytest.raises(ValueError, match=r"bias\): expected shape \(4,\)"):
        from_keras_simple_rnn([kernel, recurrent, np.zeros(5)])
    with pytest.raises(ValueError, match="hard_sigmoid"):
        from_keras_simple_rnn([kernel, recurrent], activation="hard_sigmoid")
    with pytest.raises(TypeError, match="expected a SimpleRNNCell"):
        to_keras_simple_rnn(MGUCell(3, 4, rng=0))
    own = Activation("relu", lambda z: np.maximum(z, 0), lambda y: (y > 0) * 1.0, True)
    with pytest.raises(ValueError, match="your own Activation"):
        keras_config(SimpleRNNCell(3, 4, activation=own, rng=0))


# -- MGU: a plain-Python reference of the equations ------------------------------------------------


def _sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


def _affine(row, matrix, bias):
    """``row @ matrix + bias`` for lists, one scalar at a time."""
    return [
        bias[j] + sum(row[i] * matrix[i][j] for i in range(len(row))) for j in range(len(matrix[0]))
    ]


def _mgu_reference(x, h0, lengths, weights, reset_after, update):
    """Zhou et al. (2016) and Flax's MGUCell, step by step in plain Python.

    f = sigmoid(x W_f + h U_f + b_f)
    reset_after (Flax):  n = tanh(x W_n + b_n + f * (h U_n + b_hn))
    otherwise (paper):   n = tanh(x W_n + (f * h) U_n + b_n)
    update "flax":  h' = (1 - f) * n + f * h;   "paper":  h' = (1 - f) * h + f * n
    """
    Wf, Uf, bf, Wn, Un, bn, bhn = weights
    H = len(bf)
    ys, finals = [], []
    for b, row_x in enumerate(x):
        h = list(h0[b])
        out = []
        for t in range(lengths[b]):
            xt = row_x[t]
            f = [_sigmoid(a) for a in _affine(xt, Wf, _affine(h, Uf, bf))]
            if reset_after:
                hu = _affine(h, Un, bhn)
                xn = _affine(xt, Wn, bn)
                n = [math.tanh(xn[j] + f[j] * hu[j]) for j in range(H)]
            else:
                fh = [f[j] * h[j] for j in range(H)]
                n = [math.tanh(a) for a in _affine(xt, Wn, _affine(fh, Un, bn))]
            if update == "flax":
                h = [(1 - f[j]) * n[j] + f[j] * h[j] for j in range(H)]
            else:
                h = [(1 - f[j]) * h[j] + f[j] * n[j] for j in range(H)]
            out.append(h)
        ys.append(out)
        finals.append(h)
    return ys, finals


@pytest.mark.parametrize("update", ["flax", "paper"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["flax-reset", "paper-reset"])
def test_mgu_matches_plain_python_reference(reset_after, update):
    I, H, B, T = 3, 4, 3, 5
    cell = MGUCell(
        I, H, reset_after=reset_after, update_convention=update, bias_initializer="normal", rng=0
    )
    rng = np.random.default_rng(5)
    bhn = rng.normal(size=H)
    if reset_after:
        cell.recurrent_bias.value = bhn.copy()
    x = rng.normal(size=(B, T, I))
    h0 = rng.normal(size=(B, H))
    lengths = [5, 2, 0]
    y, final = Recurrent(cell)(x, HiddenState(h=h0), lengths=lengths)
    f, n = cell.forget, cell.candidate
    weights = [
        a.tolist() for a in (f.W.value, f.U.value, f.b.value, n.W.value, n.U.value, n.b.value, bhn)
    ]
    ys, finals = _mgu_reference(x.tolist(), h0.tolist(), lengths, weights, reset_after, update)
    for b, n_b in enumerate(lengths):
        for t in range(n_b):
            np.testing.assert_allclose(y[b, t], ys[b][t], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(final.h[b], finals[b], rtol=1e-12, atol=1e-14)
        assert np.all(y[b, n_b:] == 0)
    # The conventions give different numbers: each test checks its own.
    other = MGUCell(I, H, reset_after=not reset_after, update_convention=update, rng=0)
    other.forget.set_weights(W=f.W.value, U=f.U.value, b=f.b.value)
    other.candidate.set_weights(W=n.W.value, U=n.U.value, b=n.b.value)
    assert not np.allclose(Recurrent(other)(x, HiddenState(h=h0))[0], y)
