"""PyTorch interop: conversions in both directions give the same outputs, final states and gradients.

PyTorch is the oracle. For each pair (a PyTorch module, the lstmkit model holding the same
weights) we run both on the same padded batch (``pack_padded_sequence(enforce_sorted=False)`` for
PyTorch, ``lengths=`` for lstmkit) from the same random initial state, back-propagate the same
random upstream gradients through outputs and final states, and compare outputs, final states and
the gradients of the inputs, the initial states and every weight. The weight gradients are mapped
to PyTorch's layout by a mapping written here from PyTorch's documentation, independently of
``lstmkit.interop.torch``.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lstmkit import (
    Bidirectional,
    BidirectionalState,
    CoupledLSTMCell,
    GRUCell,
    HiddenState,
    LayerNormLSTMCell,
    LSTMCell,
    LSTMState,
    ProjectionLSTMCell,
    Recurrent,
    Stacked,
    Zoneout,
)
from lstmkit.interop.torch import from_torch, to_torch

B, T, I, H = 3, 5, 3, 4
LENGTHS = np.array([5, 2, 4])
TORCH_LSTM = ("input", "forget", "candidate", "output")  # PyTorch's i, f, g, o blocks
TORCH_GRU = ("reset", "update", "candidate")  # PyTorch's r, z, n blocks


def close(ours, ref, dtype, what):
    ref = np.asarray(ref)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * scale, err_msg=what)


# -- the lstmkit side -----------------------------------------------------------------------------


def layer_cells(model):
    layers = model.layers if isinstance(model, Stacked) else [model]
    out = []
    for layer in layers:
        out.append(
            [layer.cell]
            if isinstance(layer, Recurrent)
            else [layer.forward_layer.cell, layer.backward_layer.cell]
        )
    return out


def our_states(model, h, c):
    """PyTorch's (layers * directions, batch, size) states as our nested state objects."""
    layers = []
    cells = layer_cells(model)
    D = len(cells[0])
    for k in range(len(cells)):
        states = [
            LSTMState(h[k * D + d], c[k * D + d]) if c is not None else HiddenState(h[k * D + d])
            for d in range(D)
        ]
        layers.append(BidirectionalState(*states) if D == 2 else states[0])
    return tuple(layers) if isinstance(model, Stacked) else layers[0]


def flat_states(model, state):
    layers = state if isinstance(model, Stacked) else (state,)
    flat = []
    for s in layers:
        flat += [s.forward, s.backward] if isinstance(s, BidirectionalState) else [s]
    return flat


def grads_in_torch_layout(model):
    grads = {}
    for k, cells in enumerate(layer_cells(model)):
        for cell, suffix in zip(cells, ("", "_reverse")):
            gru = isinstance(cell, GRUCell)
            gates = [cell.gates[n] for n in (TORCH_GRU if gru else TORCH_LSTM)]
            grads[f"weight_ih_l{k}{suffix}"] = np.concatenate([g.W.grad.T for g in gates])
            grads[f"weight_hh_l{k}{suffix}"] = np.concatenate([g.U.grad.T for g in gates])
            b = np.concatenate([g.b.grad for g in gates])
            grads[f"bias_ih_l{k}{suffix}"] = b
            if gru:  # b_hr and b_hz add to b_ir and b_iz; b_hn is the cell's recurrent_bias
                grads[f"bias_hh_l{k}{suffix}"] = np.concatenate(
                    [b[: 2 * H], cell.recurrent_bias.grad]
                )
            else:
                grads[f"bias_hh_l{k}{suffix}"] = b
            if isinstance(cell, ProjectionLSTMCell):
                grads[f"weight_hr_l{k}{suffix}"] = cell.projection.grad.T
    return grads


# -- the comparison ---------------------------------------------------------------------------------


def compare(module, model, dtype, lengths, batch_first=True):
    lstm = isinstance(module, torch.nn.LSTM)
    rng = np.random.default_rng(11)
    D = 2 if module.bidirectional else 1
    L = module.num_layers
    out_h = module.proj_size if lstm and module.proj_size else H
    x = rng.standard_normal((B, T, I)).astype(dtype)
    h0 = rng.standard_normal((L * D, B, out_h)).astype(dtype)
    c0 = rng.standard_normal((L * D, B, H)).astype(dtype) if lstm else None
    dy = rng.standard_normal((B, T, D * out_h)).astype(dtype)
    if lengths is not None:
        dy = dy * (np.arange(T)[None, :, None] < lengths[:, None, None])  # zero past each length
    dh = rng.standard_normal(h0.shape).astype(dtype)
    dc = rng.standard_normal(c0.shape).astype(dtype) if lstm else None

    # PyTorch, with autograd.
    module.zero_grad()
    xt = torch.tensor(x if batch_first else x.transpose(1, 0, 2).copy(), requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    c0t = torch.tensor(c0, requires_grad=True) if lstm else None
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.from_numpy(lengths), batch_first=batch_first, enforce_sorted=False
        )
    out, hn = module(inp, (h0t, c0t) if lstm else h0t)
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out, batch_first=batch_first, total_length=T
        )
    y_ref = out if batch_first else out.transpose(0, 1)
    h_ref, c_ref = hn if lstm else (hn, None)
    loss = (y_ref * torch.from_numpy(dy)).sum() + (h_ref * torch.from_numpy(dh)).sum()
    if lstm:
        loss = loss + (c_ref * torch.from_numpy(dc)).sum()
    loss.backward()
    dx_ref = xt.grad.numpy() if batch_first else xt.grad.numpy().transpose(1, 0, 2)

    # lstmkit, with its own backward.
    model.zero_grad()
    y, final, cache = model.forward(x, our_states(model, h0, c0), lengths)
    dx, d_init = model.backward(cache, dy, our_states(model, dh, dc))
    assert y.dtype == dtype and dx.dtype == dtype

    close(y, y_ref.detach().numpy(), dtype, "outputs")
    finals = flat_states(model, final)
    close(np.stack([s.h for s in finals]), h_ref.detach().numpy(), dtype, "final h")
    if lstm:
        close(np.stack([s.c for s in finals]), c_ref.detach().numpy(), dtype, "final c")
    close(dx, dx_ref, dtype, "d inputs")
    inits = flat_states(model, d_init)
    close(np.stack([s.h for s in inits]), h0t.grad.numpy(), dtype, "d h0")
    if lstm:
        close(np.stack([s.c for s in inits]), c0t.grad.numpy(), dtype, "d c0")
    ours = grads_in_torch_layout(model)
    theirs = {name: p.grad.numpy() for name, p in module.named_parameters()}
    assert sorted(ours) == sorted(theirs)
    for name, grad in theirs.items():
        close(ours[name], grad, dtype, f"d {name}")


def torch_dtype(dtype):
    return torch.float32 if dtype == np.float32 else torch.float64


def random_torch(cls, dtype, seed=0, **kwargs):
    torch.manual_seed(seed)
    module = cls(I, H, **kwargs).to(torch_dtype(dtype))
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)  # biases too, and wider than PyTorch's default range
    return module


def randomize(model, dtype, seed=0):
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.value = rng.uniform(-0.8, 0.8, p.shape).astype(dtype)
    return model


DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_from_torch_matches(dtype, kind, num_layers, bidirectional, with_lengths):
    batch_first = num_layers == 1  # both layouts are covered; lstmkit itself is always batch-first
    module = random_torch(
        getattr(torch.nn, kind),
        dtype,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
    )
    model = from_torch(module)
    expected = Stacked if num_layers > 1 else (Bidirectional if bidirectional else Recurrent)
    assert type(model) is expected and model.dtype == dtype
    compare(module, model, dtype, LENGTHS if with_lengths else None, batch_first)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_to_torch_matches(dtype, kind, num_layers, bidirectional):
    def cell(k):
        size = I if k == 0 else H * (2 if bidirectional else 1)
        return (LSTMCell if kind == "LSTM" else GRUCell)(size, H, dtype=dtype, rng=k)

    layers = [
        Bidirectional(cell(k), rng=10 + k) if bidirectional else Recurrent(cell(k))
        for k in range(num_layers)
    ]
    model = randomize(Stacked(layers) if num_layers > 1 else layers[0], dtype)
    module = to_torch(model)
    assert isinstance(module, getattr(torch.nn, kind)) and module.batch_first
    assert (module.num_layers, module.bidirectional) == (num_layers, bidirectional)
    assert next(module.parameters()).dtype == torch_dtype(dtype)
    compare(module, model, dtype, LENGTHS)


@pytest.mark.parametrize("dtype", DTYPES)
def test_projection_both_ways(dtype):
    module = random_torch(
        torch.nn.LSTM, dtype, num_layers=2, bidirectional=True, proj_size=2, batch_first=True
    )
    model = from_torch(module)
    assert isinstance(model.layers[1].forward_layer.cell, ProjectionLSTMCell)
    compare(module, model, dtype, LENGTHS)
    back = to_torch(randomize(model, dtype, seed=3))
    assert back.proj_size == 2
    compare(back, model, dtype, LENGTHS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell"])
def test_single_cells_both_ways(dtype, kind):
    module = random_torch(getattr(torch.nn, kind), dtype)
    cell = from_torch(module)
    assert type(cell).__name__ == kind
    for _ in range(2):  # PyTorch -> lstmkit, then lstmkit -> PyTorch with fresh weights
        rng = np.random.default_rng(4)
        x = rng.standard_normal((B, I)).astype(dtype)
        h = rng.standard_normal((B, H)).astype(dtype)
        c = rng.standard_normal((B, H)).astype(dtype)
        dh, dc = (
            rng.standard_normal((B, H)).astype(dtype),
            rng.standard_normal((B, H)).astype(dtype),
        )
        lstm = kind == "LSTMCell"
        xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
        module.zero_grad()
        out = module(xt, (ht, ct)) if lstm else module(xt, ht)
        h_ref, c_ref = out if lstm else (out, None)
        loss = (h_ref * torch.from_numpy(dh)).sum() + (
            (c_ref * torch.from_numpy(dc)).sum() if lstm else 0
        )
        loss.backward()
        cell.zero_grad()
        state = LSTMState(h, c) if lstm else HiddenState(h)
        new, y, cache = cell.step_train(state, x)
        d_prev, d_x = cell.step_backward(
            cache, LSTMState(np.zeros_like(h), dc) if lstm else HiddenState(np.zeros_like(h)), dh
        )
        close(y, h_ref.detach().numpy(), dtype, "h")
        if lstm:
            close(new.c, c_ref.detach().numpy(), dtype, "c")
            close(d_prev.c, ct.grad.numpy(), dtype, "d c")
        close(d_x, xt.grad.numpy(), dtype, "d x")
        close(d_prev.h, ht.grad.numpy(), dtype, "d h")
        order = TORCH_LSTM if lstm else TORCH_GRU
        close(
            np.concatenate([cell.gates[n].W.grad.T for n in order]),
            module.weight_ih.grad.numpy(),
            dtype,
            "dW",
        )
        close(
            np.concatenate([cell.gates[n].U.grad.T for n in order]),
            module.weight_hh.grad.numpy(),
            dtype,
            "dU",
        )
        cell = randomize(cell, dtype, seed=5)
        module = to_torch(cell)


def test_batch_first_false_is_documented_as_batch_first_input():
    module = random_torch(torch.nn.LSTM, np.float64, batch_first=False)
    model = from_torch(module)
    x = np.random.default_rng(0).standard_normal((B, T, I))
    ref = (
        module(torch.from_numpy(x.transpose(1, 0, 2).copy()))[0].detach().numpy().transpose(1, 0, 2)
    )
    np.testing.assert_allclose(model(x)[0], ref, rtol=1e-12, atol=1e-13)


def test_modules_without_bias_import_as_zero_bias():
    module = random_torch(torch.nn.GRU, np.float64, bias=False, batch_first=True)
    model = from_torch(module)
    assert all(not np.any(g.b.value) for g in model.cell.gates.values())
    x = np.random.default_rng(0).standard_normal((B, T, I))
    np.testing.assert_allclose(
        model(x)[0], module(torch.from_numpy(x))[0].detach().numpy(), rtol=1e-12, atol=1e-13
    )


def test_stacked_dropout_round_trips():
    module = random_torch(torch.nn.LSTM, np.float64, num_layers=3, dropout=0.25, batch_first=True)
    model = from_torch(module)
    assert model.dropout == 0.25
    assert to_torch(model).dropout == 0.25


# -- what PyTorch cannot express ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: LSTMCell(I, H, peephole=True, rng=0),
            r"peepholes on the forget, input, output gate",
        ),
        (
            lambda: LSTMCell(I, H, gate_activation="hard_sigmoid", rng=0),
            r"input: activation 'hard_sigmoid'",
        ),
        (lambda: LSTMCell(I, H, cell_activation="softsign", rng=0), r"cell_activation 'softsign'"),
        (lambda: CoupledLSTMCell(I, H, rng=0), "coupled input and forget gates"),
        (lambda: LayerNormLSTMCell(I, H, rng=0), "layer normalization"),
        (lambda: Zoneout(LSTMCell(I, H, rng=0), 0.1, 0.1), "dropout wrappers"),
        (lambda: GRUCell(I, H, reset_after=False, rng=0), "reset_after=False"),
        (lambda: GRUCell(I, H, update_convention="olah", rng=0), "update_convention='olah'"),
        (lambda: ProjectionLSTMCell(I, H, 2, rng=0), "projection on nn.LSTMCell"),
        (lambda: Recurrent(LSTMCell(I, H, rng=0), reverse=True), "reverse-only"),
        (lambda: Bidirectional(LSTMCell(I, H, rng=0), merge="sum", rng=1), "merge='sum'"),
        (lambda: Stacked([LSTMCell(I, H, rng=0), GRUCell(H, H, rng=1)]), "a mix of LSTM and GRU"),
        (lambda: Stacked([LSTMCell(I, H, rng=0), LSTMCell(H, 2, rng=1)]), "different sizes"),
        (
            lambda: Stacked(
                [
                    Recurrent(LSTMCell(I, H, rng=0)),
                    Recurrent(LSTMCell(H, H, peephole=["output"], rng=1)),
                ]
            ),
            r"model\.layers\[1\]\.cell: peepholes on the output gate",
        ),
    ],
)
def test_to_torch_names_what_it_cannot_express(make, message):
    with pytest.raises(ValueError, match=message):
        to_torch(make())


def test_from_torch_rejects_other_modules():
    with pytest.raises(
        TypeError,
        match="expected torch.nn.LSTM, LSTMCell, GRU, GRUCell, RNN or RNNCell, received Linear",
    ):
        from_torch(torch.nn.Linear(3, 4))
    with pytest.raises(TypeError, match="dtype"):
        from_torch(torch.nn.LSTM(3, 4).half())


# -- activations are recognised by the object, never by name ---------------------------------------


def _impostor(name="sigmoid"):
    from lstmkit.activations import Activation

    return Activation(
        name,
        lambda z: np.clip(z, 0.0, 1.0),
        lambda y: np.ones_like(y),
        derivative_from_output=True,
    )


def test_user_activation_named_like_a_builtin_is_refused():
    with pytest.raises(
        ValueError, match=r"model\.forget: activation 'sigmoid' \(your own Activation"
    ):
        to_torch(LSTMCell(I, H, gate_activation=_impostor(), rng=0))
    with pytest.raises(
        ValueError,
        match=r"model\.layers\[1\]\.cell: cell_activation 'tanh' \(your own Activation",
    ):
        to_torch(
            Stacked(
                [LSTMCell(I, H, rng=0), LSTMCell(H, H, cell_activation=_impostor("tanh"), rng=1)]
            )
        )
    with pytest.raises(
        ValueError, match=r"model\.cell\.reset: activation 'sigmoid' \(your own Activation"
    ):
        to_torch(Recurrent(GRUCell(I, H, gate_activation=_impostor(), rng=0)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_deep_copied_cells_export_like_the_original(dtype):
    import copy

    model = randomize(
        Bidirectional(copy.deepcopy(LSTMCell(I, H, dtype=dtype, rng=0)), rng=1), dtype
    )
    model = copy.deepcopy(model)
    compare(to_torch(model), model, dtype, LENGTHS)
