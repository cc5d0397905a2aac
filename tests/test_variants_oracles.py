"""Cell variants against independent implementations: PyTorch (GRU with reset after the product,
LSTMP), ONNX Runtime (peephole LSTM, coupled LSTM, GRU both ways) and a slow plain-Python
layer-norm LSTM written here from Ba et al.'s equations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstmkit import (
    CoupledLSTMCell,
    GRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    ProjectionLSTMCell,
    Recurrent,
)

# -- PyTorch ------------------------------------------------------------------------------------


def _torch_run(module, x, h0, dy, dh, c0=None, dc=None):
    """Forward + backward of loss = sum(y*dy) + sum(h_n*dh) (+ sum(c_n*dc)) in PyTorch."""
    import torch

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    if c0 is None:
        y, hn = module(xt, h0t)
        loss = (y * torch.tensor(dy)).sum() + (hn[0] * torch.tensor(dh)).sum()
        c0t, cn = None, None
    else:
        c0t = torch.tensor(c0[None], requires_grad=True)
        y, (hn, cn) = module(xt, (h0t, c0t))
        loss = (
            (y * torch.tensor(dy)).sum()
            + (hn[0] * torch.tensor(dh)).sum()
            + (cn[0] * torch.tensor(dc)).sum()
        )
    loss.backward()
    out = {
        "y": y.detach().numpy(),
        "h": hn[0].detach().numpy(),
        "dx": xt.grad.numpy(),
        "dh0": h0t.grad[0].numpy(),
    }
    if c0t is not None:
        out["c"], out["dc0"] = cn[0].detach().numpy(), c0t.grad[0].numpy()
    return out


def _tol(dtype):
    return 1e-10 if dtype == np.float64 else 1e-5


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gru_reset_after_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    I, H, B, T = 3, 4, 2, 5
    torch.manual_seed(0)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    ref = torch.nn.GRU(I, H, batch_first=True, dtype=tdt)
    p = {k: v.detach().numpy() for k, v in ref.named_parameters()}
    cell = GRUCell(I, H, reset_after=True, update_convention="pytorch", dtype=dtype, rng=0)
    # PyTorch's rows are ordered r, z, n; lstmkit uses row vectors, hence the transposes.
    Wr, Wz, Wn = np.split(p["weight_ih_l0"], 3)
    Ur, Uz, Un = np.split(p["weight_hh_l0"], 3)
    bir, biz, bin_ = np.split(p["bias_ih_l0"], 3)
    bhr, bhz, bhn = np.split(p["bias_hh_l0"], 3)
    cell.reset.set_weights(W=Wr.T.copy(), U=Ur.T.copy(), b=bir + bhr)
    cell.update.set_weights(W=Wz.T.copy(), U=Uz.T.copy(), b=biz + bhz)
    cell.candidate.set_weights(W=Wn.T.copy(), U=Un.T.copy(), b=bin_)
    cell.recurrent_bias.value = bhn.copy()

    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, I)).astype(dtype)
    h0 = rng.normal(size=(B, H)).astype(dtype)
    dy = rng.normal(size=(B, T, H)).astype(dtype)
    dh = rng.normal(size=(B, H)).astype(dtype)
    want = _torch_run(ref, x, h0, dy, dh)

    rnn = Recurrent(cell)
    y, final, cache = rnn.forward(x, type(final0 := cell.initial_state(B))(h=h0.copy()))
    assert final0.h.shape == (B, H)
    dx, d0 = rnn.backward(cache, dy, type(final)(h=dh))
    tol = _tol(dtype)
    np.testing.assert_allclose(y, want["y"], atol=tol, rtol=0)
    np.testing.assert_allclose(final.h, want["h"], atol=tol, rtol=0)
    np.testing.assert_allclose(dx, want["dx"], atol=tol * 10, rtol=tol)
    np.testing.assert_allclose(d0.h, want["dh0"], atol=tol * 10, rtol=tol)
    g = {k: v.grad.numpy() for k, v in ref.named_parameters()}
    gWr, gWz, gWn = np.split(g["weight_ih_l0"], 3)
    gUr, gUz, gUn = np.split(g["weight_hh_l0"], 3)
    gbir, gbiz, gbin = np.split(g["bias_ih_l0"], 3)
    gbhr, gbhz, gbhn = np.split(g["bias_hh_l0"], 3)
    pairs = [
        (cell.reset.W.grad, gWr.T),
        (cell.update.W.grad, gWz.T),
        (cell.candidate.W.grad, gWn.T),
        (cell.reset.U.grad, gUr.T),
        (cell.update.U.grad, gUz.T),
        (cell.candidate.U.grad, gUn.T),
        (cell.reset.b.grad, gbir),
        (cell.reset.b.grad, gbhr),
        (cell.update.b.grad, gbiz),
        (cell.update.b.grad, gbhz),
        (cell.candidate.b.grad, gbin),
        (cell.recurrent_bias.grad, gbhn),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs, atol=tol * 10, rtol=tol)


def test_gru_lengths_match_torch_run_per_sequence():
    torch = pytest.importorskip("torch")
    I, H, T = 2, 3, 6
    torch.manual_seed(3)
    ref = torch.nn.GRUCell(I, H, dtype=torch.float64)
    p = {k: v.detach().numpy() for k, v in ref.named_parameters()}
    cell = GRUCell(I, H, rng=0)
    W, U = np.split(p["weight_ih"], 3), np.split(p["weight_hh"], 3)
    bi, bh = np.split(p["bias_ih"], 3), np.split(p["bias_hh"], 3)
    for k, gate in enumerate((cell.reset, cell.update)):
        gate.set_weights(W=W[k].T.copy(), U=U[k].T.copy(), b=bi[k] + bh[k])
    cell.candidate.set_weights(W=W[2].T.copy(), U=U[2].T.copy(), b=bi[2])
    cell.recurrent_bias.value = bh[2].copy()
    x = np.random.default_rng(0).normal(size=(3, T, I))
    lengths = [6, 2, 4]
    y, final = Recurrent(cell)(x, lengths=lengths)
    for b, n in enumerate(lengths):
        h = torch.zeros(1, H, dtype=torch.float64)
        for t in range(n):
            h = ref(torch.tensor(x[b, t][None]), h)
            np.testing.assert_allclose(y[b, t], h[0].detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(final.h[b], h[0].detach().numpy(), atol=1e-12)
        assert np.all(y[b, n:] == 0)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_projection_matches_torch_proj_size(dtype):
    torch = pytest.importorskip("torch")
    I, H, P, B, T = 3, 5, 2, 2, 4
    torch.manual_seed(0)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    ref = torch.nn.LSTM(I, H, proj_size=P, batch_first=True, dtype=tdt)
    p = {k: v.detach().numpy() for k, v in ref.named_parameters()}
    cell = ProjectionLSTMCell(I, H, P, dtype=dtype, rng=0)
    Ws, Us = np.split(p["weight_ih_l0"], 4), np.split(p["weight_hh_l0"], 4)
    bs = np.split(p["bias_ih_l0"] + p["bias_hh_l0"], 4)
    names = ("input", "forget", "candidate", "output")  # PyTorch's order i, f, g, o
    for k, name in enumerate(names):
        getattr(cell, name).set_weights(W=Ws[k].T.copy(), U=Us[k].T.copy(), b=bs[k])
    cell.projection.value = p["weight_hr_l0"].T.copy()

    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, T, I)).astype(dtype)
    h0, c0 = rng.normal(size=(B, P)).astype(dtype), rng.normal(size=(B, H)).astype(dtype)
    dy = rng.normal(size=(B, T, P)).astype(dtype)
    dh, dc = rng.normal(size=(B, P)).astype(dtype), rng.normal(size=(B, H)).astype(dtype)
    want = _torch_run(ref, x, h0, dy, dh, c0, dc)

    rnn = Recurrent(cell)
    init = cell.initial_state(B)
    init = type(init)(h=h0.copy(), c=c0.copy())
    y, final, cache = rnn.forward(x, init)
    dx, d0 = rnn.backward(cache, dy, type(final)(h=dh, c=dc))
    tol = _tol(dtype)
    np.testing.assert_allclose(y, want["y"], atol=tol, rtol=0)
    np.testing.assert_allclose(final.h, want["h"], atol=tol, rtol=0)
    np.testing.assert_allclose(final.c, want["c"], atol=tol, rtol=0)
    np.testing.assert_allclose(dx, want["dx"], atol=tol * 10, rtol=tol)
    np.testing.assert_allclose(d0.h, want["dh0"], atol=tol * 10, rtol=tol)
    np.testing.assert_allclose(d0.c, want["dc0"], atol=tol * 10, rtol=tol)
    g = {k: v.grad.numpy() for k, v in ref.named_parameters()}
    gW, gU = np.split(g["weight_ih_l0"], 4), np.split(g["weight_hh_l0"], 4)
    gbi, gbh = np.split(g["bias_ih_l0"], 4), np.split(g["bias_hh_l0"], 4)
    for k, name in enumerate(names):
        gate = getattr(cell, name)
        np.testing.assert_allclose(gate.W.grad, gW[k].T, atol=tol * 10, rtol=tol)
        np.testing.assert_allclose(gate.U.grad, gU[k].T, atol=tol * 10, rtol=tol)
        np.testing.assert_allclose(gate.b.grad, gbi[k], atol=tol * 10, rtol=tol)
        np.testing.assert_allclose(gate.b.grad, gbh[k], atol=tol * 10, rtol=tol)
    np.testing.assert_allclose(cell.projection.grad, g["weight_hr_l0"].T, atol=tol * 10, rtol=tol)


# -- ONNX Runtime -------------------------------------------------------------------------------


def _onnx_run(op, names, arrays, attributes, x):
    """Run one ONNX recurrent node on x (T, B, I) in float32 (ORT's LSTM has no float64 kernel).

    ``names`` lists the node's inputs after X, with "" for a skipped optional input.
    """
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node(op, ["X", *names], ["Y", "Y_h"], **attributes)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()]
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["Y"], {"X": x.astype(np.float32)})[0][:, 0]  # (T, B, H): one direction


def _rand_f32(rng, *shape):
    return rng.normal(scale=0.5, size=shape).astype(np.float32).astype(np.float64)


def test_peephole_lstm_matches_onnx_runtime():
    I, H, B, T = 3, 4, 2, 5
    rng = np.random.default_rng(0)
    cell = LSTMCell(I, H, peephole=True, rng=0)
    gates = {}
    for name in ("input", "output", "forget", "candidate"):
        W, U, b = _rand_f32(rng, I, H), _rand_f32(rng, H, H), _rand_f32(rng, H)
        getattr(cell, name).set_weights(W=W, U=U, b=b)
        gates[name] = (W, U, b)
    peep = {n: _rand_f32(rng, H) for n in ("input", "output", "forget")}
    for n, p in peep.items():
        getattr(cell, n).set_weights(p=p)
    order = ("input", "output", "forget", "candidate")  # ONNX gate order i, o, f, c
    Wx = np.concatenate([gates[n][0].T for n in order])[None]
    R = np.concatenate([gates[n][1].T for n in order])[None]
    Bias = np.concatenate([np.concatenate([gates[n][2] for n in order]), np.zeros(4 * H)])[None]
    P = np.concatenate([peep[n] for n in order[:3]])[None]  # P order i, o, f
    x = _rand_f32(rng, B, T, I)
    arrays = {"W": Wx, "R": R, "B": Bias, "P": P}
    names = ["W", "R", "B", "", "", "", "P"]  # no sequence_lens, initial_h, initial_c
    want = _onnx_run("LSTM", names, arrays, {"hidden_size": H}, x.transpose(1, 0, 2))
    y, _ = Recurrent(cell)(x)
    np.testing.assert_allclose(y.transpose(1, 0, 2), want, atol=1e-5)


@pytest.mark.parametrize("peephole", [False, True])
def test_coupled_lstm_matches_onnx_runtime_input_forget(peephole):
    # ONNX Runtime implements input_forget=1 as f = 1 - i (the forget gate follows the input
    # gate; its own weights are unused). So ORT's input gate is 1 - our forget gate: our forget
    # gate's weights are ORT's input-gate weights negated, since 1 - sigmoid(a) = sigmoid(-a).
    I, H, B, T = 3, 4, 2, 5
    rng = np.random.default_rng(1)
    cell = CoupledLSTMCell(I, H, peephole=peephole, rng=0)
    p = {
        n: (_rand_f32(rng, I, H), _rand_f32(rng, H, H), _rand_f32(rng, H))
        for n in ("forget", "candidate", "output")
    }
    for n, (W, U, b) in p.items():
        getattr(cell, n).set_weights(W=W, U=U, b=b)
    pf, po = _rand_f32(rng, H), _rand_f32(rng, H)
    if peephole:
        cell.forget.set_weights(p=pf)
        cell.output.set_weights(p=po)
    unused = (_rand_f32(rng, I, H), _rand_f32(rng, H, H), _rand_f32(rng, H))
    onnx_gates = {
        "input": tuple(-a for a in p["forget"]),
        "output": p["output"],
        "forget": unused,
        "candidate": p["candidate"],
    }
    order = ("input", "output", "forget", "candidate")
    Wx = np.concatenate([onnx_gates[n][0].T for n in order])[None]
    R = np.concatenate([onnx_gates[n][1].T for n in order])[None]
    Bias = np.concatenate([np.concatenate([onnx_gates[n][2] for n in order]), np.zeros(4 * H)])[
        None
    ]
    arrays = {"W": Wx, "R": R, "B": Bias}
    names = ["W", "R", "B"]
    if peephole:
        arrays["P"] = np.concatenate([-pf, po, _rand_f32(rng, H)])[
            None
        ]  # i (negated f), o, f (unused)
        names += ["", "", "", "P"]
    x = _rand_f32(rng, B, T, I)
    attributes = {"hidden_size": H, "input_forget": 1}
    want = _onnx_run("LSTM", names, arrays, attributes, x.transpose(1, 0, 2))
    y, _ = Recurrent(cell)(x)
    np.testing.assert_allclose(y.transpose(1, 0, 2), want, atol=1e-5)


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_matches_onnx_runtime(reset_after):
    # ONNX GRU: gate order z, r, h; H_t = (1 - z) * h~ + z * H_{t-1} (our "pytorch" convention);
    # linear_before_reset=0 is Cho et al. (reset before the product), 1 is reset after.
    I, H, B, T = 3, 4, 2, 5
    rng = np.random.default_rng(2)
    cell = GRUCell(I, H, reset_after=reset_after, rng=0)
    p = {
        n: (_rand_f32(rng, I, H), _rand_f32(rng, H, H), _rand_f32(rng, H))
        for n in ("update", "reset", "candidate")
    }
    for n, (W, U, b) in p.items():
        getattr(cell, n).set_weights(W=W, U=U, b=b)
    rb = _rand_f32(rng, H) if reset_after else np.zeros(H)
    if reset_after:
        cell.recurrent_bias.value = rb.copy()
    order = ("update", "reset", "candidate")
    Wx = np.concatenate([p[n][0].T for n in order])[None]
    R = np.concatenate([p[n][1].T for n in order])[None]
    Bias = np.concatenate([p["update"][2], p["reset"][2], p["candidate"][2], np.zeros(2 * H), rb])[
        None
    ]
    x = _rand_f32(rng, B, T, I)
    attrs_ = {"hidden_size": H, "linear_before_reset": int(reset_after)}
    arrays = {"W": Wx, "R": R, "B": Bias}
    want = _onnx_run("GRU", ["W", "R", "B"], arrays, attrs_, x.transpose(1, 0, 2))
    y, _ = Recurrent(cell)(x)
    np.testing.assert_allclose(y.transpose(1, 0, 2), want, atol=1e-5)


# -- layer norm: a slow plain-Python reference of Ba et al.'s equations --------------------------


def _ln_python(v, gain, bias, eps):
    n = len(v)
    mean = sum(v) / n
    var = sum((a - mean) ** 2 for a in v) / n
    return [gain[k] * (v[k] - mean) / math.sqrt(var + eps) + bias[k] for k in range(n)]


def _matvec(row, M):
    return [sum(row[i] * M[i][j] for i in range(len(row))) for j in range(len(M[0]))]


def _sig(a):
    return 1 / (1 + math.exp(-a))


def test_layernorm_lstm_matches_plain_python_reference():
    I, H, B, T = 3, 4, 2, 4
    cell = LayerNormLSTMCell(I, H, epsilon=1e-5, rng=0)
    rng = np.random.default_rng(5)
    cell.norm_x.gain.value = rng.normal(1, 0.3, size=(4, H))
    cell.norm_h.gain.value = rng.normal(1, 0.3, size=(4, H))
    cell.norm_c.gain.value = rng.normal(1, 0.3, size=H)
    cell.norm_c.bias.value = rng.normal(0, 0.3, size=H)
    for gate in cell.gates.values():
        gate.set_weights(b=rng.normal(size=H))
    x = rng.normal(size=(B, T, I))
    h0, c0 = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    y, final = Recurrent(cell)(x, type(cell.initial_state(B))(h=h0, c=c0))

    names = ("forget", "input", "candidate", "output")
    P = {
        n: (
            getattr(cell, n).W.value.tolist(),
            getattr(cell, n).U.value.tolist(),
            getattr(cell, n).b.value.tolist(),
        )
        for n in names
    }
    gx, gh = cell.norm_x.gain.value.tolist(), cell.norm_h.gain.value.tolist()
    gc, bc = cell.norm_c.gain.value.tolist(), cell.norm_c.bias.value.tolist()
    zero = [0.0] * H
    for b in range(B):
        h, c = h0[b].tolist(), c0[b].tolist()
        for t in range(T):
            xt = x[b, t].tolist()
            act = {}
            for k, n in enumerate(names):
                W, U, bias = P[n]
                a = [
                    p + q + r
                    for p, q, r in zip(
                        _ln_python(_matvec(xt, W), gx[k], zero, 1e-5),
                        _ln_python(_matvec(h, U), gh[k], zero, 1e-5),
                        bias,
                    )
                ]
                act[n] = [math.tanh(v) if n == "candidate" else _sig(v) for v in a]
            c = [act["forget"][u] * c[u] + act["input"][u] * act["candidate"][u] for u in range(H)]
            cn = _ln_python(c, gc, bc, 1e-5)
            h = [act["output"][u] * math.tanh(cn[u]) for u in range(H)]
            np.testing.assert_allclose(y[b, t], h, atol=1e-12)
        np.testing.assert_allclose(final.c[b], c, atol=1e-12)
