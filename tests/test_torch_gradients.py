"""PyTorch autograd as the oracle for every gradient of an LSTM stack.

Our random weights and random biases are copied into ``torch.nn.LSTM``
(PyTorch's gate order is input, forget, cell/candidate, output; ``weight_ih``
``(4H, I)`` holds our ``W.T`` blocks, ``weight_hh`` ``(4H, H)`` our ``U.T``
blocks; our single bias is split at random into ``bias_ih + bias_hh``). Both
sides receive the same random upstream gradients on the output sequence and on
the final ``(h_n, c_n)``; gradients of the inputs, the initial ``(h0, c0)`` and
every weight must agree. Variable lengths go through
``pack_padded_sequence(..., enforce_sorted=False)`` on the PyTorch side.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lstmkit import Bidirectional, BidirectionalState, LSTMCell, LSTMState, Recurrent, Stacked

TORCH_ORDER = ("input", "forget", "candidate", "output")
I, H, B, T = 3, 4, 3, 5


def _rel(ours, theirs):
    """Norm-based relative difference ``||ours - theirs|| / ||theirs||``."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-300))


def build(num_layers, bidirectional, dtype, seed=0):
    """Our stack with random weights and biases, and an ``nn.LSTM`` holding the same numbers."""
    rng = np.random.default_rng(seed)
    layers, cells = [], []
    in_size = I
    for _ in range(num_layers):
        directions = [
            LSTMCell(in_size, H, dtype=dtype, rng=rng, bias_initializer="normal")
            for _ in range(2 if bidirectional else 1)
        ]
        cells.append(directions)
        layers.append(Bidirectional(*directions) if bidirectional else Recurrent(directions[0]))
        in_size = 2 * H if bidirectional else H
    model = Stacked(layers)
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    lstm = torch.nn.LSTM(
        I,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=True,
        dtype=torch_dtype,
    )
    with torch.no_grad():
        for layer, directions in enumerate(cells):
            for cell, suffix in zip(directions, ("", "_reverse")):
                w_ih = np.concatenate([cell.gates[n].W.value.T for n in TORCH_ORDER])
                w_hh = np.concatenate([cell.gates[n].U.value.T for n in TORCH_ORDER])
                bias = np.concatenate([cell.gates[n].b.value for n in TORCH_ORDER])
                split = rng.standard_normal(bias.shape).astype(dtype)
                getattr(lstm, f"weight_ih_l{layer}{suffix}").copy_(torch.from_numpy(w_ih))
                getattr(lstm, f"weight_hh_l{layer}{suffix}").copy_(torch.from_numpy(w_hh))
                getattr(lstm, f"bias_ih_l{layer}{suffix}").copy_(torch.from_numpy(bias - split))
                getattr(lstm, f"bias_hh_l{layer}{suffix}").copy_(torch.from_numpy(split))
    return model, cells, lstm


def to_our_state(h, c, num_layers, bidirectional):
    """PyTorch's ``(layers * directions, B, H)`` arrays as our per-layer tuple of states."""
    states = []
    for layer in range(num_layers):
        if bidirectional:
            f, b = 2 * layer, 2 * layer + 1
            states.append(BidirectionalState(LSTMState(h[f], c[f]), LSTMState(h[b], c[b])))
        else:
            states.append(LSTMState(h[layer], c[layer]))
    return tuple(states)


def from_our_state(states, bidirectional):
    hs, cs = [], []
    for state in states:
        parts = [state.forward, state.backward] if bidirectional else [state]
        hs += [s.h for s in parts]
        cs += [s.c for s in parts]
    return np.stack(hs), np.stack(cs)


@pytest.mark.parametrize(
    ("dtype", "tol"), [(np.float64, 1e-10), (np.float32, 1e-5)], ids=["float64", "float32"]
)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("lengths", [None, [5, 2, 4]], ids=["full", "lengths"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "step"])
def test_gradients_match_torch(dtype, tol, num_layers, bidirectional, lengths, fused):
    model, cells, lstm = build(num_layers, bidirectional, dtype)
    if not fused:
        for layer in model.layers:
            for rec in [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]:
                rec.fused = False
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    h0 = rng.standard_normal((num_layers * D, B, H)).astype(dtype)
    c0 = rng.standard_normal((num_layers * D, B, H)).astype(dtype)
    dy = rng.standard_normal((B, T, D * H)).astype(dtype)
    dh = rng.standard_normal((num_layers * D, B, H)).astype(dtype)
    dc = rng.standard_normal((num_layers * D, B, H)).astype(dtype)
    if lengths is not None:
        for b, n in enumerate(lengths):
            dy[b, n:] = 0  # outputs past a sequence's end are padding on both sides

    # Ours.
    model.zero_grad()
    y, final, cache = model.forward(x, to_our_state(h0, c0, num_layers, bidirectional), lengths)
    dx, d_init = model.backward(cache, dy, to_our_state(dh, dc, num_layers, bidirectional))
    dh0, dc0 = from_our_state(d_init, bidirectional)

    # PyTorch.
    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(h0, requires_grad=True)
    tc0 = torch.tensor(c0, requires_grad=True)
    if lengths is None:
        out, (hn, cn) = lstm(tx, (th0, tc0))
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            tx, torch.tensor(lengths), batch_first=True, enforce_sorted=False
        )
        out, (hn, cn) = lstm(packed, (th0, tc0))
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    loss = (
        (out * torch.tensor(dy)).sum()
        + (hn * torch.tensor(dh)).sum()
        + (cn * torch.tensor(dc)).sum()
    )
    loss.backward()

    # Forward agreement first, so a gradient mismatch is not a forward bug in disguise.
    assert _rel(y, out.detach().numpy()) < tol
    hn_ours, cn_ours = from_our_state(final, bidirectional)
    assert _rel(hn_ours, hn.detach().numpy()) < tol
    assert _rel(cn_ours, cn.detach().numpy()) < tol

    assert _rel(dx, tx.grad.numpy()) < tol
    assert _rel(dh0, th0.grad.numpy()) < tol
    assert _rel(dc0, tc0.grad.numpy()) < tol
    for layer, directions in enumerate(cells):
        for cell, suffix in zip(directions, ("", "_reverse")):
            g_ih = getattr(lstm, f"weight_ih_l{layer}{suffix}").grad.numpy()
            g_hh = getattr(lstm, f"weight_hh_l{layer}{suffix}").grad.numpy()
            g_bih = getattr(lstm, f"bias_ih_l{layer}{suffix}").grad.numpy()
            g_bhh = getattr(lstm, f"bias_hh_l{layer}{suffix}").grad.numpy()
            assert _rel(g_bih, g_bhh) < tol  # the bias enters once; both halves see it
            for k, name in enumerate(TORCH_ORDER):
                rows = slice(k * H, (k + 1) * H)
                gate = cell.gates[name]
                where = f"layer {layer}{suffix} {name}"
                assert _rel(gate.W.grad, g_ih[rows].T) < tol, f"{where}.W"
                assert _rel(gate.U.grad, g_hh[rows].T) < tol, f"{where}.U"
                assert _rel(gate.b.grad, g_bih[rows]) < tol, f"{where}.b"
