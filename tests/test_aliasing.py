"""Caches and aliasing: what a training forward keeps can be neither reached nor changed from
outside before its backward.

* Editing the returned outputs or final state in place before ``backward`` changes no gradient
  (the fused kernel's output is a view of its training cache: the runner returns a copy).
* Editing the input ``x`` or the ``initial_state`` in place after ``forward`` changes no gradient
  (a cache never holds the caller's arrays).
* Replacing weights through lstmkit between ``forward`` and ``backward`` (an optimizer step,
  ``assign``, ``set_weights``, ``load_state_dict``, ``reset_parameters``, ``p.value = ...``)
  makes ``backward`` raise ``ValueError`` and accumulate nothing.

The oracle of the first two is an untouched deep copy of the model run on the same arrays.
Every model kind runs on both the fused and the stepped path.
"""

import copy

import numpy as np
import pytest

from lstmkit import (
    Bidirectional,
    BidirectionalState,
    Dense,
    LSTMCell,
    Recurrent,
    Sequential,
    Stacked,
)
from lstmkit.layers import LastStep, MeanPool
from lstmkit.optimizers import SGD, Adam
from lstmkit.state import map_state

I, H = 3, 5


class PassThrough:
    """A user layer returning its input itself: the runner before it must copy its outputs."""

    def __call__(self, x, lengths=None):
        return x

    def forward(self, x, lengths=None, *, training=True, rng=None):
        return x, None

    def backward(self, cache, dy):
        return dy


def rnn(fused, *, peephole=True, reverse=False, seed=0, size=I):
    return Recurrent(LSTMCell(size, H, peephole=peephole, rng=seed), fused=fused, reverse=reverse)


BUILDERS = {
    "recurrent": lambda f: rnn(f),
    "recurrent-fast-kernel": lambda f: rnn(f, peephole=False),
    "recurrent-reverse": lambda f: rnn(f, reverse=True),
    "stacked": lambda f: Stacked([rnn(f, seed=1), rnn(f, seed=2, size=H)]),
    **{
        f"bidirectional-{merge}": (
            lambda f, merge=merge: Bidirectional(
                rnn(f, seed=3), rnn(f, seed=4, reverse=True), merge=merge
            )
        )
        for merge in ("concat", "sum", "mean", "mul", "none")
    },
    "sequential-dense-last": lambda f: Sequential(rnn(f, seed=5), Dense(H, 2, "tanh", rng=6)),
    "sequential-recurrent-last": lambda f: Sequential(Dense(I, I, "tanh", rng=7), rnn(f, seed=8)),
    "sequential-pooled": lambda f: Sequential(rnn(f, seed=9), MeanPool(), Dense(H, 1, rng=10)),
    "sequential-user-layer-last": lambda f: Sequential(rnn(f, seed=11), PassThrough()),
    "sequential-user-layer-first": lambda f: Sequential(PassThrough(), Dense(I, 2, "tanh", rng=12)),
}
KINDS = sorted(BUILDERS)
PATHS = [pytest.param(True, id="fused"), pytest.param(False, id="stepped")]


def forward(model, x, state=None, lengths=None):
    """``(y, final, cache)`` of a training forward, whatever the model kind."""
    if isinstance(model, Sequential):
        y, cache = model.forward(x, state, lengths)
        return y, cache.final_state, cache
    if isinstance(model, Dense):
        y, cache = model.forward(x)
        return y, None, cache
    return model.forward(x, state, lengths)


def backward(model, cache, dy):
    if isinstance(model, Dense):
        return model.backward(cache, dy), None
    return model.backward(cache, dy)


def gradients(model):
    return {name: p.grad.copy() for name, p in model.named_parameters().items()}


def arrays(value):
    """Every array of an output, a state or a tuple of them."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [a for item in value for a in arrays(item)]
    if isinstance(value, BidirectionalState):
        return arrays(value.forward) + arrays(value.backward)
    return [a for a in (getattr(value, n) for n in ("h", "c")) if isinstance(a, np.ndarray)]


def upstream(y, seed=11):
    gen = np.random.default_rng(seed)
    if isinstance(y, tuple):
        return tuple(gen.standard_normal(a.shape) for a in y)
    return gen.standard_normal(y.shape)


def initial_state(model, batch):
    """A nonzero initial state for the model (None for a model without one)."""
    template = None if isinstance(model, Dense) else model.initial_state(batch)
    if template is None:
        return None
    gen = np.random.default_rng(12)

    def fill(state):
        if isinstance(state, tuple):
            return tuple(fill(s) for s in state)
        if isinstance(state, BidirectionalState):
            return BidirectionalState(fill(state.forward), fill(state.backward))
        return map_state(lambda a: gen.standard_normal(a.shape), state)

    return fill(template)


def assert_same_gradients(got, want, dx=None, dx_want=None):
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    if dx is not None:
        np.testing.assert_array_equal(dx, dx_want)


@pytest.mark.parametrize("fused", PATHS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [1, 3])
def test_editing_the_outputs_in_place_before_backward_changes_no_gradient(kind, fused, batch):
    model = BUILDERS[kind](fused)
    twin = copy.deepcopy(model)
    x = np.random.default_rng(0).standard_normal((batch, 4, I))
    state = initial_state(model, batch)

    y, final, cache = forward(twin, x, copy.deepcopy(state))
    dy = upstream(y)
    dx_want, _ = backward(twin, cache, dy)
    want = gradients(twin)

    y, final, cache = forward(model, x, state)
    for a in arrays(y) + arrays(final):
        a[...] = 7.0  # the caller owns what it gets back
    dx, _ = backward(model, cache, dy)
    assert_same_gradients(gradients(model), want, dx, dx_want)


@pytest.mark.parametrize("fused", PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_editing_the_input_and_initial_state_in_place_after_forward_changes_no_gradient(
    kind, fused
):
    # A batch of one: the runner's time-major layout is then a view of x, not a copy.
    model = BUILDERS[kind](fused)
    twin = copy.deepcopy(model)
    x = np.random.default_rng(1).standard_normal((1, 4, I))
    state = initial_state(model, 1)

    y, _, cache = forward(twin, x.copy(), copy.deepcopy(state))
    dy = upstream(y)
    dx_want, d_init_want = backward(twin, cache, dy)
    want = gradients(twin)

    y, _, cache = forward(model, x, state)
    x[...] = -3.0
    for a in arrays(state):
        a[...] = 5.0
    dx, d_init = backward(model, cache, dy)
    assert_same_gradients(gradients(model), want, dx, dx_want)
    for got, expected in zip(arrays(d_init), arrays(d_init_want)):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("fused", PATHS)
def test_an_unbatched_input_edited_after_forward_changes_no_gradient(fused):
    model, twin = rnn(fused), rnn(fused)
    x = np.random.default_rng(2).standard_normal((4, I))
    y, _, cache = twin.forward(x.copy())
    dy = upstream(y)
    twin.backward(cache, dy)
    y, _, cache = model.forward(x)
    x[...] = 1.0
    y[...] = 1.0
    model.backward(cache, dy)
    assert_same_gradients(gradients(model), gradients(twin))


def test_a_view_of_a_larger_array_is_not_kept_either():
    model, twin = rnn(True), rnn(True)
    big = np.random.default_rng(3).standard_normal((2, 4, I))
    y, _, cache = twin.forward(big[1:].copy())
    dy = upstream(y)
    twin.backward(cache, dy)
    y, _, cache = model.forward(big[1:])
    big[...] = 0.0
    model.backward(cache, dy)
    assert_same_gradients(gradients(model), gradients(twin))


def test_dense_alone_keeps_neither_its_input_nor_its_output():
    layer, twin = Dense(I, 4, "tanh", rng=0), Dense(I, 4, "tanh", rng=0)
    x = np.random.default_rng(4).standard_normal((2, 6, I))
    y, cache = twin.forward(x.copy())
    dy = upstream(y)
    dx_want = twin.backward(cache, dy)
    y, cache = layer.forward(x)
    x[...] = 2.0
    y[...] = 2.0
    dx = layer.backward(cache, dy)
    assert_same_gradients(gradients(layer), gradients(twin), dx, dx_want)


def test_pooling_keeps_nothing_the_caller_passed():
    x = np.random.default_rng(5).standard_normal((3, 4, 2))
    lengths = np.array([4, 2, 1])
    for layer in (LastStep(), MeanPool()):
        y, cache = layer.forward(x, lengths)
        want = layer.backward(layer.forward(x, lengths.copy())[1], np.ones_like(y))
        lengths[...] = 0
        np.testing.assert_array_equal(layer.backward(cache, np.ones_like(y)), want)
        lengths[...] = [4, 2, 1]


def test_inference_returns_the_kernels_output_without_a_copy():
    # The copy is a training cost only: inference keeps no cache, so nothing can alias it.
    model = rnn(True, peephole=False)
    x = np.random.default_rng(6).standard_normal((2, 4, I))
    y, _ = model(x)
    assert not y.flags.c_contiguous  # the transposed view of the kernel's feature-major output


# -- weights changed between forward and backward -------------------------------------------


def first_gate(model):
    """A gate of the model's first recurrent cell (for set_weights and reset_parameters)."""
    for _, module in _modules(model):
        if hasattr(module, "set_weights"):
            return module
    raise AssertionError("no gate")


def _modules(module, prefix=""):
    yield prefix, module
    for name, child in module.named_children():
        yield from _modules(child, f"{prefix}{name}.")


def _param(model):
    name, p = next(iter(model.named_parameters().items()))
    return name, p


CHANGES = {
    "sgd-step": lambda m: SGD(m, lr=0.1).step(),
    "adam-step": lambda m: Adam(m, lr=0.1).step(),
    "assign-attribute": lambda m: setattr(_param(m)[1], "value", _param(m)[1].value + 1.0),
    "in-place-operator": lambda m: _inplace_operator(_param(m)[1]),
    "assign": lambda m: _param(m)[1].assign(_param(m)[1].value * 2.0),
    "load_state_dict": lambda m: m.load_state_dict({k: v + 1.0 for k, v in m.state_dict().items()}),
    "set_weights": lambda m: first_gate(m).set_weights(b=first_gate(m).b.value + 1.0),
    "reset_parameters": lambda m: first_gate(m).reset_parameters(99),
}


def _inplace_operator(p):
    p.value -= 0.5  # Python assigns the attribute again: detected


def _with_gradients(model):
    for p in model.parameters():
        p.grad[...] = 0.25
    return model


@pytest.mark.parametrize("fused", PATHS)
@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize(
    "kind", ["recurrent", "stacked", "bidirectional-concat", "sequential-dense-last"]
)
def test_weights_replaced_between_forward_and_backward_are_refused(kind, change, fused):
    model = _with_gradients(BUILDERS[kind](fused))
    x = np.random.default_rng(7).standard_normal((2, 4, I))
    y, _, cache = forward(model, x)
    CHANGES[change](model)
    grads = gradients(model)
    with pytest.raises(
        ValueError, match=r"^cache: the weights of .* changed since forward"
    ) as info:
        backward(model, cache, upstream(y))
    assert "run forward again" in str(info.value)
    for name, p in model.named_parameters().items():  # nothing was accumulated
        np.testing.assert_array_equal(p.grad, grads[name], err_msg=name)
    # A fresh forward pass uses the new weights and back-propagates.
    y, _, cache = forward(model, x)
    backward(model, cache, upstream(y))


@pytest.mark.parametrize("change", ["sgd-step", "assign-attribute", "set_weights"])
def test_the_error_names_the_parameter_that_changed(change):
    model = rnn(True)
    y, _, cache = model.forward(np.ones((2, 3, I)))
    CHANGES[change](model)
    with pytest.raises(ValueError) as info:
        model.backward(cache, np.ones_like(y))
    name = {"sgd-step": "cell.forget.W", "assign-attribute": "cell.forget.W"}.get(
        change, "cell.forget.b"
    )
    assert repr(name) in str(info.value)


def test_dense_alone_refuses_changed_weights():
    layer = Dense(I, 2, "tanh", rng=0)
    y, cache = layer.forward(np.ones((2, I)))
    SGD(layer, lr=0.1).step()
    with pytest.raises(ValueError, match=r"^cache: the weights of 'W', 'b' changed since forward"):
        layer.backward(cache, np.ones_like(y))


def test_other_models_weights_and_new_models_do_not_disturb_a_backward():
    model, other = rnn(True), rnn(False, seed=1)
    x = np.ones((2, 3, I))
    y, _, cache = model.forward(x)
    SGD(other, lr=0.1).step()
    other.load_state_dict(other.state_dict())
    rnn(True, seed=2)  # new parameters elsewhere
    model.backward(cache, np.ones_like(y))  # no error


def test_parameter_versions_move_on_every_replacement_and_only_then():
    model = rnn(True)
    p = model.cell.forget.W
    seen = [p.version]

    def moved():
        seen.append(p.version)
        return seen[-1] > seen[-2]

    p.value = p.value.copy()
    assert moved()
    p.value += 1.0
    assert moved()
    p.assign(p.value)
    assert moved()
    model.cell.forget.set_weights(W=p.value)
    assert moved()
    model.load_state_dict(model.state_dict())
    assert moved()
    SGD([p], lr=0.1).step()
    assert moved()
    p.grad[...] = 1.0  # gradients are not weights
    p.value[0, 0] = 3.0  # an in-place edit of the array itself: not seen (documented)
    assert not moved()
