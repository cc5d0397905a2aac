"""ConvLSTM against an independent PyTorch reference (torch.nn.functional convolutions, autograd,
float64) and finite differences; the convolution helpers against PyTorch's own."""

from __future__ import annotations

import numpy as np
import pytest

from lstmkit import ConvGate, ConvLSTMCell, Recurrent, Stacked
from lstmkit.convolution import convolve, input_gradient, padding_amounts
from lstmkit.testing import check_cell_gradients, check_gradients

torch = pytest.importorskip("torch")
F = torch.nn.functional
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
# PyTorch notes that it copies the input to pad an even kernel's "same" window: expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def _to_torch_kernel(kernel):
    """(*k, in, out) -> PyTorch's (out, in, *k)."""
    rank = kernel.ndim - 2
    return torch.tensor(np.ascontiguousarray(kernel.transpose(rank + 1, rank, *range(rank))))


def _channels_first(a):
    return torch.tensor(np.ascontiguousarray(np.moveaxis(a, -1, 1)), requires_grad=True)


@pytest.mark.parametrize(
    ("spatial", "kernel", "dilation", "padding"),
    [
        ((7,), (3,), (1,), "same"),
        ((7,), (4,), (2,), "same"),  # even kernel: the odd pixel of padding goes at the end
        ((6, 5), (3, 2), (1, 2), "same"),
        ((6, 7), (2, 3), (2, 1), "valid"),
        ((4, 5, 3), (3, 2, 1), (1, 1, 1), "same"),
    ],
)
def test_convolution_and_its_input_gradient_match_torch(spatial, kernel, dilation, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *spatial, 3))
    w = rng.standard_normal((*kernel, 3, 4))
    pads = padding_amounts(padding, kernel, dilation)
    ours = convolve(x, w, pads, dilation)
    xt = _channels_first(x)
    theirs = CONV[len(spatial)](xt, _to_torch_kernel(w), padding=padding, dilation=dilation)
    np.testing.assert_allclose(ours, np.moveaxis(theirs.detach().numpy(), 1, -1), atol=1e-12)
    dz = rng.standard_normal(ours.shape)
    theirs.backward(torch.tensor(np.ascontiguousarray(np.moveaxis(dz, -1, 1))))
    np.testing.assert_allclose(
        input_gradient(dz, w, pads, dilation), np.moveaxis(xt.grad.numpy(), 1, -1), atol=1e-12
    )


def _torch_convlstm(cell, x, h0, c0, dy, dh, dc):
    """Shi et al.'s equations on torch.nn.functional convolutions; returns outputs and grads."""
    rank = cell.rank
    conv = CONV[rank]
    params = {}
    for name, gate in cell.gates.items():
        params[name] = [
            _to_torch_kernel(gate.W.value).requires_grad_(True),
            _to_torch_kernel(gate.U.value).requires_grad_(True),
            torch.tensor(gate.b.value, requires_grad=True),
        ]
    xt = _channels_first(x)
    h, c = _channels_first(h0), _channels_first(c0)
    h_start, c_start = h, c
    shape = (1, -1) + (1,) * rank
    acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}

    def gate(name, x_t, h_t):
        W, U, b = params[name]
        z = conv(x_t, W, padding=cell.padding, dilation=cell.dilation)
        z = z + conv(h_t, U, padding="same") + b.reshape(shape)
        return acts[cell.gates[name].activation.name](z)

    ys = []
    for t in range(x.shape[1]):
        x_t = xt[:, :, t]
        f, i = gate("forget", x_t, h), gate("input", x_t, h)
        g, o = gate("candidate", x_t, h), gate("output", x_t, h)
        c = f * c + i * g
        h = o * torch.tanh(c)
        ys.append(h)
    y = torch.stack(ys, dim=2)  # (B, F, T, *S)

    def tt(a):
        return torch.tensor(np.ascontiguousarray(np.moveaxis(a, -1, 1)))

    loss = (y * torch.tensor(np.moveaxis(dy, -1, 1).copy())).sum()
    loss = loss + (h * tt(dh)).sum() + (c * tt(dc)).sum()
    loss.backward()

    def back(a):
        return np.moveaxis(a.detach().numpy(), 1, -1)

    grads = {}
    for name, (W, U, b) in params.items():
        to_ours = (*range(2, 2 + rank), 1, 0)
        grads[f"{name}.W"] = W.grad.numpy().transpose(to_ours)
        grads[f"{name}.U"] = U.grad.numpy().transpose(to_ours)
        grads[f"{name}.b"] = b.grad.numpy()
    out = {"y": back(y), "h": back(h), "c": back(c), "dx": back(xt.grad)}
    out.update(dh0=back(h_start.grad), dc0=back(c_start.grad))
    return out, grads


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize(
    ("shape", "kernel", "padding", "dilation"),
    [
        ((9, 2), 3, "same", 1),
        ((9, 2), 2, "valid", 2),
        ((6, 5, 2), (3, 3), "same", 1),
        ((6, 7, 1), (2, 3), "valid", (1, 2)),
        ((4, 3, 3, 1), 2, "same", 1),
    ],
)
def test_convlstm_matches_torch_reference(shape, kernel, padding, dilation, fused):
    cell = ConvLSTMCell(shape, 3, kernel, padding=padding, dilation=dilation, rng=1)
    for gate in cell.gates.values():  # non-zero biases, so each one's gradient is exercised
        gate.b.value = np.random.default_rng(2).normal(size=3)
    runner = Recurrent(cell, fused=fused)
    assert runner.uses_fused() is (fused is None)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, *shape))
    state = cell.initial_state(2)
    h0, c0 = 0.5 * rng.standard_normal(state.h.shape), 0.5 * rng.standard_normal(state.c.shape)
    y, final, cache = runner.forward(x, type(state)(h=h0, c=c0))
    dy = rng.standard_normal(y.shape)
    dh, dc = rng.standard_normal(h0.shape), rng.standard_normal(c0.shape)
    cell.zero_grad()
    dx, d0 = runner.backward(cache, dy, type(state)(h=dh, c=dc))
    ref, ref_grads = _torch_convlstm(cell, x, h0, c0, dy, dh, dc)
    for name, ours in (("y", y), ("h", final.h), ("c", final.c), ("dx", dx)):
        np.testing.assert_allclose(ours, ref[name], atol=1e-10, err_msg=name)
    np.testing.assert_allclose(d0.h, ref["dh0"], atol=1e-10)
    np.testing.assert_allclose(d0.c, ref["dc0"], atol=1e-10)
    for name, param in cell.named_parameters().items():
        np.testing.assert_allclose(param.grad, ref_grads[name], atol=1e-9, err_msg=name)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    ("shape", "kernel", "padding"), [((5, 2), 3, "same"), ((4, 4, 1), (2, 3), "valid")]
)
def test_finite_differences(shape, kernel, padding, reverse):
    cell = ConvLSTMCell(shape, 2, kernel, padding=padding, rng=0)
    report = check_cell_gradients(cell, batch_size=3, time=3, lengths=[3, 1, 2], reverse=reverse)
    assert report.passed(1e-6), str(report)
    stepped = check_cell_gradients(cell, time=2, fused=False, max_entries=12)
    assert stepped.passed(1e-6), str(stepped)


def test_stack_of_conv_cells_finite_differences():
    model = Stacked([ConvLSTMCell((5, 1), 3, 3, rng=0), ConvLSTMCell((5, 3), 2, 3, rng=1)])
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 1))
    report = check_gradients(model, x, lengths=[3, 2], max_entries=15)
    assert report.passed(1e-6), str(report)


def test_float32_runs_close_to_float64():
    cell = ConvLSTMCell((6, 6, 2), 3, 3, rng=0)
    cell32 = ConvLSTMCell((6, 6, 2), 3, 3, rng=0, dtype=np.float32)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6, 2))
    y64, _ = Recurrent(cell)(x)
    y32, _ = Recurrent(cell32)(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, atol=1e-5)


def test_gate_alone_matches_its_definition():
    """A ConvGate is activation(conv(x, W) + conv_same(h, U) + b), written out with loops."""
    gate = ConvGate(2, 3, (3,), activation="tanh", padding="valid", dilation=2, rng=0)
    gate.b.value = np.arange(3.0)
    rng = np.random.default_rng(1)
    x, h = rng.standard_normal((1, 8, 2)), rng.standard_normal((1, 4, 3))
    W, U, b = gate.W.value, gate.U.value, gate.b.value
    expected = np.zeros((1, 4, 3))
    hp = np.pad(h, ((0, 0), (1, 1), (0, 0)))
    for p in range(4):
        z = b.copy()
        for k in range(3):
            z += x[0, p + 2 * k] @ W[k] + hp[0, p + k] @ U[k]
        expected[0, p] = np.tanh(z)
    np.testing.assert_allclose(gate(x, h), expected, atol=1e-12)


def test_finite_differences_on_an_unbatched_sequence():
    runner = Recurrent(ConvLSTMCell((4, 3, 1), 2, (2, 2), rng=0))
    x = np.random.default_rng(0).standard_normal((3, 4, 3, 1))  # (time, height, width, channels)
    report = check_gradients(runner, x, max_entries=10)
    assert report.passed(1e-6), str(report)
