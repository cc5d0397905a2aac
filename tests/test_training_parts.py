"""Losses, optimizers, clipping, Dense/pooling, Sequential and the training helpers.

Oracles: central finite differences for loss gradients and Dense, plain-Python
loops for loss values and optimizer updates, torch.optim where installed, and the
full-sequence run for truncated BPTT's carried state.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from _fd import check_runner_gradients

from lstmkit import (
    Dense,
    GRUCell,
    LSTMCell,
    LSTMState,
    Parameter,
    Recurrent,
    Sequential,
    Stacked,
    VariationalDropout,
    losses,
)
from lstmkit.layers import LastStep, MeanPool
from lstmkit.optimizers import SGD, Adam, AdamW, RMSprop, clip_grad_norm
from lstmkit.testing import check_gradients
from lstmkit.training import NonFiniteLossError, ProgressBar, fit, tbptt, train_step


def _fd(f, x, eps=1e-6):
    """Central differences of scalar ``f`` w.r.t. every entry of ``x`` (perturbed in place)."""
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        orig = x[k]
        x[k] = orig + eps
        plus = f()
        x[k] = orig - eps
        minus = f()
        x[k] = orig
        g[k] = (plus - minus) / (2 * eps)
    return g


# -- losses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_mask", [False, True])
def test_mse_value_and_gradient(use_mask):
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    mask = losses.mask_from_lengths([4, 1, 2], 4) if use_mask else None
    loss, grad = losses.mean_squared_error(pred, target, mask)
    # Plain-Python reference.
    total, count = 0.0, 0
    for b in range(3):
        for t in range(4):
            if mask is None or mask[b, t]:
                for f in range(2):
                    total += (pred[b, t, f] - target[b, t, f]) ** 2
                    count += 1
    assert loss == pytest.approx(total / count, rel=1e-12)
    num = _fd(lambda: losses.mean_squared_error(pred, target, mask)[0], pred)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
@pytest.mark.parametrize("use_mask", [False, True])
def test_cross_entropy_value_and_gradient(shape, use_mask):
    rng = np.random.default_rng(1)
    logits = 3 * rng.standard_normal(shape)
    targets = rng.integers(0, shape[-1], size=shape[:-1])
    mask = None
    if use_mask:
        mask = rng.random(shape[:-1]) < 0.6
        mask.flat[0] = True
        targets = np.where(mask, targets, -1)  # padding value, ignored under the mask
    loss, grad = losses.softmax_cross_entropy(logits, targets, mask)
    total, count = 0.0, 0
    for idx in np.ndindex(shape[:-1]):
        if mask is None or mask[idx]:
            row = logits[idx]
            total += math.log(sum(math.exp(v) for v in row)) - row[targets[idx]]
            count += 1
    assert loss == pytest.approx(total / count, rel=1e-12)
    num = _fd(lambda: losses.softmax_cross_entropy(logits, targets, mask)[0], logits)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, 1e4]])
    loss, grad = losses.softmax_cross_entropy(logits, np.array([1, 2]))
    assert loss == pytest.approx(1e4 / 2)
    assert np.all(np.isfinite(grad))


def test_loss_errors_name_the_argument():
    logits = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"targets: expected shape \(2, 3\)"):
        losses.softmax_cross_entropy(logits, np.zeros((2, 4), int))
    with pytest.raises(TypeError, match="targets: expected integer"):
        losses.softmax_cross_entropy(logits, np.zeros((2, 3)))
    with pytest.raises(
        ValueError, match=r"targets: expected class indices in \[0, 4\), received 4"
    ):
        losses.softmax_cross_entropy(logits, np.full((2, 3), 4))
    with pytest.raises(ValueError, match="received -1"):
        losses.softmax_cross_entropy(logits, np.full((2, 3), -1))
    with pytest.raises(ValueError, match="mask"):
        losses.softmax_cross_entropy(logits, np.zeros((2, 3), int), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="target: expected shape"):
        losses.mean_squared_error(np.zeros((2, 1)), np.zeros((2,)))
    with pytest.raises(ValueError, match="mask: expected only 0 and 1"):
        losses.mean_squared_error(np.zeros((2, 1)), np.zeros((2, 1)), np.array([0.5, 1.0]))


def test_fully_masked_loss_is_zero():
    loss, grad = losses.softmax_cross_entropy(np.ones((2, 3)), np.array([7, 7]), np.zeros(2, bool))
    assert loss == 0.0 and not grad.any()
    loss, grad = losses.MSE()(np.ones((2, 3)), np.zeros((2, 3)), np.zeros(2, bool))
    assert loss == 0.0 and not grad.any()


# -- optimizers: plain-Python reference updates ----------------------------------------------------


def _reference(kind, w, grads, lr, **kw):
    """Independent scalar-by-scalar implementation of each update rule."""
    w = [float(v) for v in w]
    n = len(w)
    m, v, buf, gavg = [0.0] * n, [0.0] * n, [None] * n, [0.0] * n
    for t, g in enumerate(grads, start=1):
        for j in range(n):
            gj = float(g[j])
            if kind == "sgd":
                gj += kw.get("weight_decay", 0.0) * w[j]
                mom = kw.get("momentum", 0.0)
                if mom:
                    buf[j] = gj if buf[j] is None else mom * buf[j] + gj
                    gj = gj + mom * buf[j] if kw.get("nesterov") else buf[j]
                w[j] -= lr * gj
            elif kind in ("adam", "adamw"):
                b1, b2 = kw.get("betas", (0.9, 0.999))
                wd = kw.get("weight_decay", 0.0)
                if kind == "adamw":
                    w[j] *= 1 - lr * wd
                else:
                    gj += wd * w[j]
                m[j] = b1 * m[j] + (1 - b1) * gj
                v[j] = b2 * v[j] + (1 - b2) * gj * gj
                mhat, vhat = m[j] / (1 - b1**t), v[j] / (1 - b2**t)
                w[j] -= lr * mhat / (math.sqrt(vhat) + 1e-8)
            elif kind == "rmsprop":
                a, mom = kw.get("alpha", 0.99), kw.get("momentum", 0.0)
                v[j] = a * v[j] + (1 - a) * gj * gj
                if kw.get("centered"):
                    gavg[j] = a * gavg[j] + (1 - a) * gj
                    avg = math.sqrt(v[j] - gavg[j] ** 2) + 1e-8
                else:
                    avg = math.sqrt(v[j]) + 1e-8
                if mom:
                    buf[j] = (0.0 if buf[j] is None else buf[j]) * mom + gj / avg
                    w[j] -= lr * buf[j]
                else:
                    w[j] -= lr * gj / avg
    return np.array(w)


CASES = [
    ("sgd", SGD, {}),
    ("sgd", SGD, {"momentum": 0.9}),
    ("sgd", SGD, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("adam", Adam, {}),
    ("adam", Adam, {"betas": (0.8, 0.99), "weight_decay": 0.05}),
    ("adamw", AdamW, {"weight_decay": 0.1}),
    ("rmsprop", RMSprop, {}),
    ("rmsprop", RMSprop, {"momentum": 0.5, "centered": True}),
]


def _grad_sequence(steps=5, n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n) for _ in range(steps)]


@pytest.mark.parametrize(("kind", "cls", "kw"), CASES)
def test_optimizer_matches_reference(kind, cls, kw):
    w0 = np.array([0.5, -1.0, 2.0, 0.0])
    grads = _grad_sequence()
    p = Parameter(w0.copy())
    opt = cls([p], lr=0.05, **kw)
    for g in grads:
        p.grad[...] = g
        opt.step()
    np.testing.assert_allclose(
        p.value, _reference(kind, w0, grads, 0.05, **kw), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize(("kind", "cls", "kw"), CASES)
def test_optimizer_matches_torch(kind, cls, kw):
    torch = pytest.importorskip("torch")
    torch_cls = {
        "sgd": torch.optim.SGD,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "rmsprop": torch.optim.RMSprop,
    }[kind]
    w0 = np.array([[0.5, -1.0], [2.0, 0.0]])
    grads = [g.reshape(2, 2) for g in _grad_sequence()]
    p = Parameter(w0.copy())
    tw = torch.nn.Parameter(torch.tensor(w0))
    opt, topt = cls({"w": p}, lr=0.05, **kw), torch_cls([tw], lr=0.05, **kw)
    for g in grads:
        p.grad[...] = g
        opt.step()
        tw.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p.value, tw.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_optimizer_step_checks_every_gradient_first():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    a.grad[...] = 1.0
    b.grad[...] = [1.0, np.nan]
    opt = Adam({"a": a, "b": b}, lr=0.1)
    with pytest.raises(ValueError, match="b: gradient contains NaN"):
        opt.step()
    assert np.all(a.value == 1.0) and np.all(b.value == 1.0)
    assert opt.steps == 0


def test_optimizer_argument_errors():
    p = Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="lr"):
        SGD([p], lr=-0.1)
    opt = SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    assert opt.lr == 0.1
    with pytest.raises(TypeError, match="not a Parameter"):
        Adam([p, np.zeros(2)])
    with pytest.raises(ValueError, match="listed twice"):
        Adam([p, p])
    with pytest.raises(ValueError, match="nesterov"):
        SGD([p], nesterov=True)
    with pytest.raises(ValueError, match="momentum"):
        SGD([p], momentum=1.5)
    with pytest.raises(TypeError):
        Adam([p], lr=0.1, momentum=0.9)  # an option Adam does not have


def test_optimizer_accepts_module_and_zero_grad():
    model = Dense(2, 3, rng=0)
    for p in model.parameters():
        p.grad[...] = 1.0
    opt = SGD(model, lr=0.1)
    assert set(opt.params) == {"W", "b"}
    opt.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_float32_parameters_stay_float32():
    p = Parameter(np.ones(3, np.float32))
    p.grad[...] = 0.5
    for opt in (Adam([p]), RMSprop([p]), SGD([p], momentum=0.9)):
        opt.step()
    assert p.value.dtype == np.float32


# -- clipping -------------------------------------------------------------------------------------


def test_clip_grad_norm():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(1))
    a.grad[...] = [3.0, 0.0]
    b.grad[...] = [4.0]
    norm = clip_grad_norm([a, b], 1.0)
    assert norm == pytest.approx(5.0)
    total = math.sqrt(float(np.sum(a.grad**2) + np.sum(b.grad**2)))
    assert total == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(a.grad / b.grad[0], [0.75, 0.0])  # direction kept
    before = a.grad.copy()
    assert clip_grad_norm([a, b], 10.0) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_array_equal(a.grad, before)  # below the limit: unchanged
    b.grad[...] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        clip_grad_norm({"a": a, "b": b}, 1.0)
    np.testing.assert_array_equal(a.grad, before)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([a], -1.0)


# -- Dense, pooling, Sequential ---------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["linear", "tanh", "softplus", "relu"])
def test_dense_backward_matches_finite_differences(activation):
    rng = np.random.default_rng(0)
    layer = Dense(3, 2, activation, rng=1, bias_initializer="normal")
    x = rng.standard_normal((4, 5, 3))
    dy = rng.standard_normal((4, 5, 2))
    y, cache = layer.forward(x)
    np.testing.assert_allclose(y, layer.activation(x @ layer.W.value + layer.b.value))
    dx = layer.backward(cache, dy)

    def loss():
        return float(np.sum(layer(x) * dy))

    np.testing.assert_allclose(dx, _fd(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(layer.W.grad, _fd(loss, layer.W.value), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(layer.b.grad, _fd(loss, layer.b.value), rtol=1e-6, atol=1e-8)
    # A second backward accumulates.
    _, cache = layer.forward(x)
    layer.backward(cache, dy)
    np.testing.assert_allclose(layer.b.grad, 2 * _fd(loss, layer.b.value), rtol=1e-6)


def test_dense_errors():
    layer = Dense(3, 2, rng=0)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 3\)"):
        layer(np.zeros((2, 4)))
    _, cache = layer.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"dy: expected shape \(2, 2\)"):
        layer.backward(cache, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="cache"):
        layer.backward(None, np.zeros((2, 2)))
    layer.backward(cache, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="already"):
        layer.backward(cache, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="output_size"):
        Dense(3, 0)


def test_pooling_picks_valid_steps():
    x = np.arange(2 * 4 * 3, dtype=float).reshape(2, 4, 3)
    np.testing.assert_array_equal(LastStep()(x, [2, 4]), np.stack([x[0, 1], x[1, 3]]))
    np.testing.assert_array_equal(LastStep()(x, [0, 4])[0], 0.0)
    np.testing.assert_allclose(MeanPool()(x, [2, 4]), np.stack([x[0, :2].mean(0), x[1].mean(0)]))


def test_sequential_carries_state_like_one_long_run():
    model = Sequential(Stacked([LSTMCell(2, 3, rng=0), LSTMCell(3, 3, rng=1)]), Dense(3, 1, rng=2))
    x = np.random.default_rng(0).standard_normal((2, 6, 2))
    full, full_state = model(x, return_state=True)
    first, state = model(x[:, :4], return_state=True)
    second = model(x[:, 4:], state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), full, rtol=1e-12)
    assert isinstance(full_state, tuple) and len(full_state) == 2


def test_sequential_size_check_and_backward_errors():
    with pytest.raises(ValueError, match=r"layers\[1\]: expected input size 3"):
        Sequential(Recurrent(LSTMCell(2, 3, rng=0)), Dense(4, 1))
    model = Sequential(Recurrent(LSTMCell(2, 3, rng=0)), LastStep(), Dense(3, 1))
    _, cache = model.forward(np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match=r"dy: expected shape \(2, 1\)"):
        model.backward(cache, np.zeros((2, 3)))


# -- a Sequential inside a Sequential ---------------------------------------------------------------
# A nested model without a recurrent layer is a feed-forward layer; one with a recurrent layer
# counts as one recurrent layer whose state is the nested model's state. Either way the outer
# model computes what the same layers would compute inline.


class _SequentialAsRunner:
    """A Sequential through the runner interface tests/_fd.py drives (the final state that
    a runner returns is on the Sequential's cache)."""

    def __init__(self, model):
        self.model = model

    def forward(self, x, initial_state=None, lengths=None):
        y, cache = self.model.forward(x, initial_state, lengths)
        return y, cache.final_state, cache

    def backward(self, cache, dy=None, d_state=None):
        return self.model.backward(cache, dy, d_state)

    def named_parameters(self):
        return self.model.named_parameters()


def _run_and_backward(model, x, lengths, dy, d_state=None):
    model.zero_grad()
    y, cache = model.forward(x, lengths=lengths)
    dx, d_init = model.backward(cache, dy, d_state)
    return y, cache.final_state, dx, d_init, [p.grad.copy() for p in model.parameters()]


def test_nested_feedforward_sequential_is_a_layer():
    rnn = Recurrent(LSTMCell(2, 3, rng=0))
    pool = LastStep()
    hidden = Dense(3, 2, "tanh", rng=1, bias_initializer="normal")
    out = Dense(2, 1, rng=2, bias_initializer="normal")
    head = Sequential(pool, hidden, out)
    assert not head.has_state and head.initial_state(2) is None
    nested, inline = Sequential(rnn, head), Sequential(rnn, pool, hidden, out)
    x = np.random.default_rng(0).standard_normal((3, 5, 2))
    lengths = [5, 2, 0]
    y, state = nested(x, lengths=lengths, return_state=True)
    y_inline, state_inline = inline(x, lengths=lengths, return_state=True)
    np.testing.assert_array_equal(y, y_inline)
    assert isinstance(state, LSTMState)
    np.testing.assert_array_equal(state.c, state_inline.c)
    gen = np.random.default_rng(1)
    dy = gen.standard_normal((3, 1))
    d_state = LSTMState(h=gen.standard_normal((3, 3)), c=gen.standard_normal((3, 3)))
    y, final, dx, d_init, grads = _run_and_backward(nested, x, lengths, dy, d_state)
    y_i, final_i, dx_i, d_init_i, grads_i = _run_and_backward(inline, x, lengths, dy, d_state)
    for a, b in [(y, y_i), (final.h, final_i.h), (dx, dx_i), (d_init.h, d_init_i.h)]:
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(d_init.c, d_init_i.c)
    for a, b in zip(grads, grads_i, strict=True):
        np.testing.assert_array_equal(a, b)
    # The head on its own, through finite differences of every parameter and of its input.
    h = np.random.default_rng(2).standard_normal((3, 4, 3))
    head.zero_grad()
    y_head, cache = head.forward(h, lengths=[4, 1, 2])
    dh, d_init = head.backward(cache, dy)
    assert d_init is None

    def loss():
        return float(np.sum(head(h, lengths=[4, 1, 2]) * dy))

    np.testing.assert_allclose(dh, _fd(loss, h), rtol=1e-6, atol=1e-9)
    for p in head.parameters():
        np.testing.assert_allclose(p.grad, _fd(loss, p.value), rtol=1e-6, atol=1e-9)


def test_nested_sequential_with_a_recurrent_layer_passes_finite_differences():
    inner = Sequential(LSTMCell(2, 3, rng=0), Dense(3, 3, "tanh", rng=1, bias_initializer="normal"))
    model = Sequential(inner, MeanPool(), Sequential(Dense(3, 2, rng=2)))
    assert inner.has_state and not model.layers[2].has_state
    gen = np.random.default_rng(3)
    x = gen.standard_normal((3, 4, 2))
    init = LSTMState(h=gen.standard_normal((3, 3)) * 0.5, c=gen.standard_normal((3, 3)) * 0.5)
    assert isinstance(model.initial_state(3), LSTMState)  # the one recurrent layer's state
    check_runner_gradients(_SequentialAsRunner(model), x, init, lengths=[4, 1, 0])


def test_nested_sequential_states_carry_like_one_long_run():
    def build():
        return Sequential(
            Sequential(LSTMCell(2, 3, rng=0), GRUCell(3, 3, rng=1)),
            Recurrent(LSTMCell(3, 2, rng=2)),
            Sequential(Dense(2, 2, "tanh", rng=3)),
        )

    model = build()
    x = np.random.default_rng(0).standard_normal((2, 6, 2))
    full, full_state = model(x, return_state=True)
    first, state = model(x[:, :4], return_state=True)
    second = model(x[:, 4:], state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), full, rtol=1e-12)
    (inner_lstm, inner_gru), outer_lstm = full_state  # the nested model's state, then the runner's
    assert isinstance(inner_lstm, LSTMState) and isinstance(outer_lstm, LSTMState)
    assert inner_gru.h.shape == (2, 3)
    zero = model.initial_state(2)
    assert len(zero) == 2 and len(zero[0]) == 2
    np.testing.assert_array_equal(model(x, zero), full)
    with pytest.raises(ValueError, match=r"initial_state: expected a tuple of 2 states"):
        model.layers[0](x, (inner_lstm,))
    # The same numbers as the layers inline, whose state is flat.
    flat = build()
    inline = Sequential(*flat.layers[0].layers, flat.layers[1], *flat.layers[2].layers)
    np.testing.assert_array_equal(inline(x), full)


def test_nested_sequentials_pass_gradient_checks_with_lengths_and_dropout():
    model = Sequential(
        Sequential(
            VariationalDropout(LSTMCell(2, 3, rng=0), 0.3, 0.3, rng=1),
            Dense(3, 3, "tanh", rng=2),
        ),
        Recurrent(GRUCell(3, 2, rng=3), reverse=True),
        Sequential(MeanPool(), Dense(2, 2, rng=4, bias_initializer="normal")),
    )
    x = np.random.default_rng(0).standard_normal((3, 4, 2))
    report = check_gradients(model, x, lengths=[4, 2, 0], training_seed=0)
    assert report.passed(1e-6), str(report)
    # training=False is inference, nested at any depth.
    y_eval, _ = model.forward(x, lengths=[4, 2, 0], training=False)
    np.testing.assert_array_equal(y_eval, model(x, lengths=[4, 2, 0]))


def test_nested_sequential_sizes_are_checked_at_construction():
    with pytest.raises(ValueError, match=r"layers\[1\]: expected input size 3"):
        Sequential(LSTMCell(2, 3, rng=0), Sequential(Dense(4, 1, rng=1)))
    with pytest.raises(ValueError, match=r"layers\[1\]: expected input size 2"):
        Sequential(Sequential(LSTMCell(2, 3, rng=0), Dense(3, 2, rng=1)), Dense(3, 1, rng=2))
    with pytest.raises(TypeError, match=r"layers\[1\]: expected a runner, a cell or a layer"):
        Sequential(Sequential(Dense(2, 2, rng=0)), object())


# -- training helpers -------------------------------------------------------------------------------


def _regression_model(seed=0):
    return Sequential(Recurrent(LSTMCell(1, 8, rng=seed)), LastStep(), Dense(8, 1, rng=seed + 1))


def test_nan_loss_stops_with_the_step_and_keeps_weights():
    model = _regression_model()
    opt = SGD(model, lr=0.1)
    x = np.ones((2, 3, 1))
    bad = np.array([[1.0], [np.nan]])
    before = model.state_dict()
    with pytest.raises(NonFiniteLossError, match="at step 7") as info:
        train_step(model, losses.mean_squared_error, opt, x, bad, step=7)
    assert info.value.step == 7 and math.isnan(info.value.loss)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])

    batches = [(x, np.ones((2, 1)))] * 3 + [(x, bad)]
    with pytest.raises(NonFiniteLossError, match="at step 3"):
        fit(model, losses.mean_squared_error, opt, batches, progress=False)


def test_fit_learns_and_shows_running_loss():
    rng = np.random.default_rng(0)
    model = _regression_model()

    def batch(step):
        x = rng.random((16, 5, 1))
        return x, x.mean(axis=1)

    out = io.StringIO()
    history = fit(
        model,
        losses.mean_squared_error,
        Adam(model, lr=0.02),
        batch,
        steps=150,
        clip_norm=1.0,
        stream=out,
    )
    assert np.mean(history.losses[-10:]) < 0.2 * np.mean(history.losses[:10])
    assert len(history.grad_norms) == 150
    text = out.getvalue()
    assert "150/150" in text and "loss " in text


def test_progress_bar_running_loss():
    out = io.StringIO()
    bar = ProgressBar(4, desc="demo", stream=out, smoothing=0.5)
    for loss in (4.0, 2.0):
        bar.update(loss)
    # Bias-corrected exponential average: (0.25*4 + 0.5*2) / 0.75.
    assert bar.running_loss == pytest.approx((0.25 * 4 + 0.5 * 2) / 0.75)
    assert "demo [" in out.getvalue() and "2/4" in out.getvalue()
    with pytest.raises(ValueError, match="total"):
        ProgressBar(-1)


def _seq_task(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 6, 2))
    target = rng.standard_normal((2, 6, 3))
    return x, target


def test_tbptt_carries_state_forward_but_not_gradients():
    x, target = _seq_task()
    runner = Recurrent(LSTMCell(2, 3, rng=0))
    opt = SGD(runner, lr=0.0)  # lr 0: weights fixed, so the chunks see the same model
    history = tbptt(runner, losses.mean_squared_error, opt, x, target, chunk=4)
    assert len(history.losses) == 2
    # The carried state equals one uninterrupted run.
    _, full_state = runner(x)
    np.testing.assert_allclose(history.final_state.h, full_state.h, rtol=1e-12)
    # Gradients left by the last chunk: those of chunk 2 starting from a constant state.
    last_grads = {n: p.grad.copy() for n, p in runner.named_parameters().items()}
    _, state4 = runner(x[:, :4])
    runner.zero_grad()
    y, _, cache = runner.forward(x[:, 4:], state4)
    runner.backward(cache, losses.mean_squared_error(y, target[:, 4:])[1])
    for n, p in runner.named_parameters().items():
        np.testing.assert_allclose(last_grads[n], p.grad, rtol=1e-12, atol=1e-15)
    # ... which differ from back-propagating the same loss through all six steps.
    runner.zero_grad()
    y, _, cache = runner.forward(x)
    dy = np.zeros_like(y)
    dy[:, 4:] = losses.mean_squared_error(y[:, 4:], target[:, 4:])[1]
    runner.backward(cache, dy)
    assert not np.allclose(last_grads["cell.forget.W"], runner.cell.forget.W.grad)


def test_tbptt_one_chunk_is_one_train_step():
    x, target = _seq_task(1)
    a, b = Recurrent(LSTMCell(2, 3, rng=0)), Recurrent(LSTMCell(2, 3, rng=0))
    tbptt(a, losses.mean_squared_error, Adam(a, lr=0.1), x, target, chunk=6)
    train_step(b, losses.mean_squared_error, Adam(b, lr=0.1), x, target)
    for n, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[n])
    with pytest.raises(ValueError, match="chunk"):
        tbptt(a, losses.mean_squared_error, Adam(a), x, target, chunk=0)
    with pytest.raises(ValueError, match="target"):
        tbptt(a, losses.mean_squared_error, Adam(a), x, target[:, :3], chunk=2)
