"""Failure safety: a call that raises changes nothing.

Each test snapshots every parameter value and gradient (and, for files, the bytes on disk),
makes a call that must fail, checks the error type and that its message names the bad
argument, then checks the snapshot is untouched. The oracle is the snapshot itself.
"""

import numpy as np
import pytest

from lstmkit import (
    Bidirectional,
    BidirectionalState,
    Gate,
    LSTMCell,
    LSTMState,
    Recurrent,
    Stacked,
)


def snapshot(module):
    return {
        name: (p.value.copy(), p.grad.copy(), p.value.dtype)
        for name, p in module.named_parameters().items()
    }


def assert_unchanged(module, snap):
    now = module.named_parameters()
    assert now.keys() == snap.keys()
    for name, (value, grad, dtype) in snap.items():
        assert now[name].value.dtype == dtype, name
        np.testing.assert_array_equal(now[name].value, value, err_msg=name)
        np.testing.assert_array_equal(now[name].grad, grad, err_msg=name)


def with_gradients(module, seed=0):
    """Give every parameter a nonzero gradient, so 'unchanged' also covers gradients."""
    gen = np.random.default_rng(seed)
    for p in module.parameters():
        p.grad[...] = gen.standard_normal(p.shape)
    return module


def fails(module, fn, error, *words):
    """``fn()`` raises ``error`` whose message holds each of ``words``; ``module`` is unchanged."""
    snap = snapshot(module)
    with pytest.raises(error) as info:
        fn()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert_unchanged(module, snap)
    return message


# -- load_state_dict ---------------------------------------------------------------------------


MODELS = {
    "cell": lambda: LSTMCell(3, 4, peephole=True, rng=0),
    "stacked": lambda: Stacked([LSTMCell(3, 4, rng=0), LSTMCell(4, 2, rng=1)]),
    "bidirectional": lambda: Bidirectional(LSTMCell(3, 4, rng=0), rng=1),
}


@pytest.fixture(params=sorted(MODELS))
def model(request):
    return with_gradients(MODELS[request.param]())


def good_state(model):
    """A complete, valid state dict whose values differ from the model's."""
    return {name: value + 1 for name, value in model.state_dict().items()}


def test_load_state_dict_with_a_wrong_shape_changes_nothing(model):
    state = good_state(model)
    name = max(state)  # the last name, so every earlier one was valid
    state[name] = np.zeros(state[name].shape + (1,), state[name].dtype)
    fails(model, lambda: model.load_state_dict(state), ValueError,
          name, str(model.state_dict()[name].shape), str(state[name].shape))


def test_load_state_dict_with_a_wrong_dtype_changes_nothing(model):
    state = good_state(model)
    name = max(state)
    state[name] = state[name].astype(np.float32)
    fails(model, lambda: model.load_state_dict(state), TypeError, name, "float64", "float32")


def test_load_state_dict_with_a_missing_or_extra_name_changes_nothing(model):
    state = good_state(model)
    missing = min(state)
    del state[missing]
    fails(model, lambda: model.load_state_dict(state), ValueError, "state", missing)
    state = good_state(model)
    state["not.a.parameter"] = np.zeros(1)
    fails(model, lambda: model.load_state_dict(state), ValueError, "not.a.parameter")


def test_load_state_dict_with_a_non_array_changes_nothing(model):
    state = good_state(model)
    name = max(state)
    state[name] = state[name].tolist()
    fails(model, lambda: model.load_state_dict(state), TypeError, name, "list")
    fails(model, lambda: model.load_state_dict([1, 2]), TypeError, "state", "list")


def test_a_successful_load_copies_the_arrays(model):
    # The control: a valid load does change the model, and later edits of the dict do not.
    state = good_state(model)
    model.load_state_dict(state)
    name = min(state)
    loaded = state[name].copy()
    state[name] += 1
    np.testing.assert_array_equal(model.state_dict()[name], loaded)


# -- runner calls ------------------------------------------------------------------------------


RUNNERS = {
    "recurrent": lambda: Recurrent(LSTMCell(3, 4, rng=0)),
    "recurrent-unfused": lambda: Recurrent(LSTMCell(3, 4, rng=0), fused=False),
    "stacked": lambda: Stacked([LSTMCell(3, 4, rng=0), LSTMCell(4, 4, rng=1)], dropout=0.2, rng=2),
    "bidirectional": lambda: Bidirectional(LSTMCell(3, 4, rng=0), merge="sum", rng=1),
}


@pytest.fixture(params=sorted(RUNNERS))
def runner(request):
    return with_gradients(RUNNERS[request.param]())


X = np.random.default_rng(0).standard_normal((2, 5, 3))


@pytest.mark.parametrize("call", ["__call__", "forward"])
def test_bad_inputs_to_a_runner_raise_and_change_nothing(runner, call):
    run = getattr(runner, call)
    fails(runner, lambda: run(np.zeros((2, 5, 7))), ValueError, "x", "3", "(2, 5, 7)")
    fails(runner, lambda: run(np.zeros(3)), ValueError, "x", "(3,)")
    fails(runner, lambda: run("abc"), TypeError, "x", "str")
    fails(runner, lambda: run(X.astype(complex)), TypeError, "x", "complex")
    fails(runner, lambda: run(X, lengths=[1, 2, 3]), ValueError, "lengths", "(2,)", "(3,)")
    fails(runner, lambda: run(X, lengths=[6, 1]), ValueError, "lengths", "5", "6")
    fails(runner, lambda: run(X, lengths=[-1, 1]), ValueError, "lengths", "-1")
    fails(runner, lambda: run(X, lengths=[1.5, 1]), TypeError, "lengths", "float")
    fails(runner, lambda: run(X[0], lengths=[3]), ValueError, "lengths")


def test_bad_initial_states_raise_and_change_nothing():
    rnn = with_gradients(Recurrent(LSTMCell(3, 4, rng=0)))
    bad_shape = LSTMState(np.zeros((3, 4)), np.zeros((2, 4)))
    fails(rnn, lambda: rnn(X, bad_shape), ValueError, "initial_state.h", "(2, 4)", "(3, 4)")
    fails(rnn, lambda: rnn(X, (np.zeros((2, 4)),) * 2), TypeError, "initial_state", "tuple")
    fails(rnn, lambda: rnn.forward(X, LSTMState([[0.0] * 4] * 2, np.zeros((2, 4)))), TypeError,
          "initial_state.h", "list")
    stack = with_gradients(Stacked([LSTMCell(3, 4, rng=0), LSTMCell(4, 4, rng=1)]))
    ok = stack.initial_state(2)
    fails(stack, lambda: stack(X, ok[:1]), ValueError, "initial_state", "2", "1")
    fails(stack, lambda: stack.forward(X, (ok[0], bad_shape)), ValueError, "initial_state.h")
    bi = with_gradients(Bidirectional(LSTMCell(3, 4, rng=0), rng=1))
    fails(bi, lambda: bi(X, ok[0]), TypeError, "initial_state", "BidirectionalState")


def upstream(final):
    """A valid upstream state gradient shaped like ``final``."""
    if isinstance(final, tuple):
        return tuple(upstream(f) for f in final)
    if isinstance(final, BidirectionalState):
        return BidirectionalState(upstream(final.forward), upstream(final.backward))
    return LSTMState(np.ones_like(final.h), np.ones_like(final.c))


def spoil(d_state):
    """The same upstream gradient with its *first* state given a wrong batch size.

    Containers back-propagate their last part first, so the bad entry is only reached
    after another part could already have added its gradients.
    """
    if isinstance(d_state, tuple):
        return (spoil(d_state[0]),) + d_state[1:]
    if isinstance(d_state, BidirectionalState):
        return BidirectionalState(d_state.forward, spoil(d_state.backward))
    return LSTMState(np.zeros((7, d_state.h.shape[1])), d_state.c)


def test_backward_with_a_bad_upstream_state_changes_no_gradient(runner):
    y, final, cache = runner.forward(X, training=True, rng=0)
    d_state = spoil(upstream(final))
    fails(runner, lambda: runner.backward(cache, np.ones_like(y), d_state), ValueError,
          "d_state", "(2, 4)", "(7, 4)")
    # Nothing was consumed either: the same cache still runs a correct backward.
    runner.zero_grad()
    dx, _ = runner.backward(cache, np.ones_like(y), upstream(final))
    assert dx.shape == X.shape and any(np.any(p.grad) for p in runner.parameters())


def test_backward_with_a_bad_dy_changes_no_gradient(runner):
    y, _, cache = runner.forward(X, training=True, rng=0)
    bad = np.ones(y.shape[:-1] + (y.shape[-1] + 1,))
    fails(runner, lambda: runner.backward(cache, bad), ValueError,
          "dy", str(y.shape), str(bad.shape))
    fails(runner, lambda: runner.backward(cache, y.tolist()), (TypeError, ValueError), "dy")
    runner.backward(cache, np.ones_like(y))  # the cache is still usable


def test_bidirectional_merge_none_with_a_bad_pair_changes_no_gradient():
    bi = with_gradients(Bidirectional(LSTMCell(3, 4, rng=0), merge="none", rng=1))
    (yf, _), _, cache = bi.forward(X)
    fails(bi, lambda: bi.backward(cache, (np.ones_like(yf), np.ones((2, 5, 3)))), ValueError,
          "dy", "(2, 5, 4)", "(2, 5, 3)")
    fails(bi, lambda: bi.backward(cache, np.ones_like(yf)), TypeError, "dy")


def test_backward_with_a_foreign_or_used_cache_changes_no_gradient(runner):
    other = RUNNERS["recurrent"]()
    _, _, foreign = other.forward(X)
    fails(runner, lambda: runner.backward(foreign), TypeError, "cache")
    fails(runner, lambda: runner.backward(None), TypeError, "cache")
    _, _, cache = runner.forward(X, training=True, rng=0)
    runner.backward(cache)
    fails(runner, lambda: runner.backward(cache), ValueError, "cache")


# -- construction and weight setting -----------------------------------------------------------


def test_lstm_cell_with_an_invalid_gate_builds_nothing():
    good = Gate(3, 4, rng=0)
    snap = snapshot(good)
    with pytest.raises(ValueError, match="output"):
        LSTMCell(3, 4, forget=good, output=Gate(3, 5, rng=1))
    with pytest.raises(TypeError, match="candidate"):
        LSTMCell(3, 4, forget=good, candidate="not a gate")
    assert_unchanged(good, snap)  # the gate that was given is untouched (no forget bias added)
    cell = LSTMCell(3, 4, forget=good)  # and can still be used
    assert cell.forget is good


def test_gate_set_weights_with_one_bad_array_changes_none():
    gate = with_gradients(Gate(3, 4, peephole=True, rng=0))
    W = np.ones((3, 4))
    fails(gate, lambda: gate.set_weights(W=W, U=np.ones((4, 5))), ValueError, "U", "(4, 4)", "(4, 5)")
    fails(gate, lambda: gate.set_weights(W=W, b=np.ones(4, np.float32)), TypeError, "b", "float32")
    fails(gate, lambda: gate.set_weights(W=W, p=[1, 2, 3, 4]), TypeError, "p", "list")
    no_peep = with_gradients(Gate(3, 4, rng=0))
    fails(no_peep, lambda: no_peep.set_weights(W=W, p=np.ones(4)), ValueError, "p", "peephole")
    # The control: the same call with good arrays does set them, as copies.
    gate.set_weights(W=W, U=np.eye(4))
    W[0, 0] = 5
    np.testing.assert_array_equal(gate.W.value, np.ones((3, 4)))
    np.testing.assert_array_equal(gate.U.value, np.eye(4))
