"""PyTorch ``nn.LSTM`` as the oracle for forward outputs and final states.

Weights are random (biases too) and are copied from PyTorch into lstmkit:
PyTorch stacks the gates as (input, forget, cell/candidate, output) in
``weight_ih (4H, I)`` and ``weight_hh (4H, H)``; our gate ``W`` is the
transposed block and our single bias is ``bias_ih + bias_hh``.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lstmkit import Bidirectional, LSTMCell, Recurrent, Stacked  # noqa: E402

TORCH_ORDER = ("input", "forget", "candidate", "output")


def cell_from_torch(lstm, layer, suffix, dtype):
    w_ih = getattr(lstm, f"weight_ih_l{layer}{suffix}").detach().numpy()
    w_hh = getattr(lstm, f"weight_hh_l{layer}{suffix}").detach().numpy()
    bias = (
        (getattr(lstm, f"bias_ih_l{layer}{suffix}") + getattr(lstm, f"bias_hh_l{layer}{suffix}"))
        .detach()
        .numpy()
    )
    H = lstm.hidden_size
    cell = LSTMCell(w_ih.shape[1], H, dtype=dtype, rng=0)
    for k, name in enumerate(TORCH_ORDER):
        rows = slice(k * H, (k + 1) * H)
        cell.gates[name].set_weights(
            W=np.ascontiguousarray(w_ih[rows].T).astype(dtype),
            U=np.ascontiguousarray(w_hh[rows].T).astype(dtype),
            b=bias[rows].astype(dtype),
        )
    return cell


def model_from_torch(lstm, dtype):
    layers = []
    for layer in range(lstm.num_layers):
        fwd = cell_from_torch(lstm, layer, "", dtype)
        if lstm.bidirectional:
            layers.append(Bidirectional(fwd, cell_from_torch(lstm, layer, "_reverse", dtype)))
        else:
            layers.append(Recurrent(fwd))
    return Stacked(layers)


def torch_final(final, bidirectional):
    """Our per-layer states in PyTorch's (layers * directions, batch, hidden) layout."""
    hs, cs = [], []
    for state in final:
        parts = [state.forward, state.backward] if bidirectional else [state]
        hs += [s.h for s in parts]
        cs += [s.c for s in parts]
    return np.stack(hs), np.stack(cs)


@pytest.mark.parametrize(
    "dtype, rtol, atol", [(np.float32, 1e-5, 1e-6), (np.float64, 1e-12, 1e-13)]
)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_matches_torch_lstm(dtype, rtol, atol, num_layers, bidirectional, with_lengths):
    torch.manual_seed(0)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    B, T, I, H = 3, 7, 4, 5
    lstm = torch.nn.LSTM(I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    lstm = lstm.to(tdtype)
    with torch.no_grad():
        for p in lstm.parameters():
            p.uniform_(-0.8, 0.8)  # random weights and biases, not PyTorch's small default range
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    D = 2 if bidirectional else 1
    h0 = rng.standard_normal((num_layers * D, B, H)).astype(dtype)
    c0 = rng.standard_normal((num_layers * D, B, H)).astype(dtype)
    lengths = np.array([7, 3, 5]) if with_lengths else None

    with torch.no_grad():
        xt = torch.from_numpy(x)
        if with_lengths:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                xt, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
            )
            out, (hn, cn) = lstm(packed, (torch.from_numpy(h0), torch.from_numpy(c0)))
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        else:
            out, (hn, cn) = lstm(xt, (torch.from_numpy(h0), torch.from_numpy(c0)))

    model = model_from_torch(lstm, dtype)
    from lstmkit import BidirectionalState, LSTMState

    init = []
    for layer in range(num_layers):
        states = [LSTMState(h0[layer * D + d], c0[layer * D + d]) for d in range(D)]
        init.append(BidirectionalState(*states) if bidirectional else states[0])
    y, final = model(x, tuple(init), lengths)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, out.numpy(), rtol=rtol, atol=atol)
    h_ours, c_ours = torch_final(final, bidirectional)
    np.testing.assert_allclose(h_ours, hn.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(c_ours, cn.numpy(), rtol=rtol, atol=atol)


def test_unfused_path_matches_torch_too():
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(3, 4, batch_first=True).double()
    x = np.random.default_rng(2).standard_normal((2, 6, 3))
    with torch.no_grad():
        out, _ = lstm(torch.from_numpy(x))
    cell = cell_from_torch(lstm, 0, "", np.float64)
    y, _ = Recurrent(cell, fused=False)(x)
    np.testing.assert_allclose(y, out.numpy(), rtol=1e-12, atol=1e-13)
