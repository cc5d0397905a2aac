"""Failure safety: a call that raises changes nothing.

Each test snapshots every parameter value and gradient (and, for files, the bytes on disk),
makes a call that must fail, checks the error type and that its message names the bad
argument, then checks the snapshot is untouched. The oracle is the snapshot itself.
"""

import re
from pathlib import Path

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
    fails(
        model,
        lambda: model.load_state_dict(state),
        ValueError,
        name,
        str(model.state_dict()[name].shape),
        str(state[name].shape),
    )


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
    fails(
        rnn,
        lambda: rnn.forward(X, LSTMState([[0.0] * 4] * 2, np.zeros((2, 4)))),
        TypeError,
        "initial_state.h",
        "list",
    )
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
    fails(
        runner,
        lambda: runner.backward(cache, np.ones_like(y), d_state),
        ValueError,
        "d_state",
        "(2, 4)",
        "(7, 4)",
    )
    # Nothing was consumed either: the same cache still runs a correct backward.
    runner.zero_grad()
    dx, _ = runner.backward(cache, np.ones_like(y), upstream(final))
    assert dx.shape == X.shape and any(np.any(p.grad) for p in runner.parameters())


def test_backward_with_a_bad_dy_changes_no_gradient(runner):
    y, _, cache = runner.forward(X, training=True, rng=0)
    bad = np.ones(y.shape[:-1] + (y.shape[-1] + 1,))
    fails(
        runner, lambda: runner.backward(cache, bad), ValueError, "dy", str(y.shape), str(bad.shape)
    )
    fails(runner, lambda: runner.backward(cache, y.tolist()), (TypeError, ValueError), "dy")
    runner.backward(cache, np.ones_like(y))  # the cache is still usable


def test_bidirectional_merge_none_with_a_bad_pair_changes_no_gradient():
    bi = with_gradients(Bidirectional(LSTMCell(3, 4, rng=0), merge="none", rng=1))
    (yf, _), _, cache = bi.forward(X)
    fails(
        bi,
        lambda: bi.backward(cache, (np.ones_like(yf), np.ones((2, 5, 3)))),
        ValueError,
        "dy",
        "(2, 5, 4)",
        "(2, 5, 3)",
    )
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
    fails(
        gate, lambda: gate.set_weights(W=W, U=np.ones((4, 5))), ValueError, "U", "(4, 4)", "(4, 5)"
    )
    fails(gate, lambda: gate.set_weights(W=W, b=np.ones(4, np.float32)), TypeError, "b", "float32")
    fails(gate, lambda: gate.set_weights(W=W, p=[1, 2, 3, 4]), TypeError, "p", "list")
    no_peep = with_gradients(Gate(3, 4, rng=0))
    fails(no_peep, lambda: no_peep.set_weights(W=W, p=np.ones(4)), ValueError, "p", "peephole")
    # The control: the same call with good arrays does set them, as copies.
    gate.set_weights(W=W, U=np.eye(4))
    W[0, 0] = 5
    np.testing.assert_array_equal(gate.W.value, np.ones((3, 4)))
    np.testing.assert_array_equal(gate.U.value, np.eye(4))


# -- optimizers --------------------------------------------------------------------------------


OPTIMIZERS = ["SGD", "SGD-momentum", "Adam", "AdamW", "RMSprop"]


def make_optimizer(kind, params):
    from lstmkit import optimizers

    if kind == "SGD-momentum":
        return optimizers.SGD(params, lr=0.1, momentum=0.9)
    return getattr(optimizers, kind)(params, lr=0.1)


def optimizer_state(opt):
    return {
        name: {key: np.array(value, copy=True) for key, value in buffers.items()}
        for name, buffers in opt.state.items()
    }, opt.steps


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_optimizer_step_with_a_non_finite_gradient_changes_nothing(kind, bad):
    model = Stacked([LSTMCell(3, 4, rng=0), LSTMCell(4, 2, rng=1)])
    opt = make_optimizer(kind, model.named_parameters())
    with_gradients(model, seed=1)
    opt.step()  # a good step first, so momentum and moment buffers hold values
    with_gradients(model, seed=2)
    name = list(model.named_parameters())[-1]  # the last one: every earlier gradient is fine
    model.named_parameters()[name].grad[0] = bad
    buffers, steps = optimizer_state(opt)
    fails(model, opt.step, ValueError, name)
    after, steps_after = optimizer_state(opt)
    assert steps_after == steps
    for pname, bufs in buffers.items():
        for key, value in bufs.items():
            np.testing.assert_array_equal(after[pname][key], value, err_msg=f"{pname}.{key}")


def test_clip_grad_norm_with_a_non_finite_gradient_changes_nothing():
    from lstmkit import optimizers

    model = with_gradients(LSTMCell(3, 4, rng=0))
    model.output.b.grad[1] = np.nan
    fails(
        model,
        lambda: optimizers.clip_grad_norm(model.named_parameters(), 1.0),
        ValueError,
        "output.b",
    )
    fails(
        model, lambda: optimizers.clip_grad_norm(model.parameters(), -1.0), ValueError, "max_norm"
    )


# -- files -------------------------------------------------------------------------------------


def io_module():
    from lstmkit import io

    return io


def test_a_failing_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    io = io_module()
    path = tmp_path / "model.npz"
    io.save(LSTMCell(3, 4, rng=0), path)
    before = path.read_bytes()
    # A model that cannot be saved (non-finite weights) is refused before anything is written.
    broken = LSTMCell(3, 4, rng=1)
    broken.forget.W.value[0, 0] = np.nan
    with pytest.raises(ValueError, match="forget.W"):
        io.save(broken, path)
    assert path.read_bytes() == before
    # A failure in the middle of writing (here: the disk "fills up") leaves the old file and
    # no temporary file behind.

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError):
        io.save(LSTMCell(3, 4, rng=2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    restored = io.load(path)
    np.testing.assert_array_equal(restored.forget.W.value, LSTMCell(3, 4, rng=0).forget.W.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "flipped"])
def test_loading_a_corrupt_file_raises_value_error(tmp_path, damage):
    io = io_module()
    path = tmp_path / "model.npz"
    io.save(Recurrent(LSTMCell(3, 4, rng=0)), path)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8))
    elif damage == "empty":
        data = bytearray()
    else:  # flip bytes in the middle of the archive (inside the stored arrays)
        for k in range(len(data) // 2, len(data) // 2 + 16):
            data[k] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        io.load(path)


def test_load_of_a_missing_file_names_the_path(tmp_path):
    io = io_module()
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError) as info:
        io.load(missing)
    assert "nope.npz" in str(info.value)


def test_load_weights_of_another_architecture_changes_nothing(tmp_path):
    io = io_module()
    path = tmp_path / "model.npz"
    io.save(LSTMCell(3, 5, rng=0), path)
    model = with_gradients(LSTMCell(3, 4, rng=1))
    snap = snapshot(model)
    with pytest.raises((ValueError, TypeError)):
        io.load_weights(model, path)
    assert_unchanged(model, snap)


# -- no pickle, no global random state ---------------------------------------------------------


class _Trap:
    """Unpickling this object would record that code ran during a load."""

    ran = False

    def __reduce__(self):
        return (_Trap._spring, ())

    @staticmethod
    def _spring():
        _Trap.ran = True
        return 0


def test_load_never_unpickles(tmp_path):
    io = io_module()
    path = tmp_path / "model.npz"
    io.save(LSTMCell(2, 3, rng=0), path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    # The same archive with one entry replaced by a pickled object array.
    name = next(n for n in arrays if arrays[n].dtype.kind == "f")
    arrays[name] = np.array([_Trap()], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(ValueError):
        io.load(path)
    assert not _Trap.ran, "loading ran code from the file"


SOURCE = sorted((Path(__file__).parents[1] / "src" / "lstmkit").rglob("*.py"))


def test_source_never_uses_pickle_or_numpy_global_random_state():
    legacy = re.compile(
        r"np\.random\.(seed|rand|randn|randint|random|normal|uniform|choice|shuffle|permutation"
        r"|get_state|set_state)\("
    )
    for path in SOURCE:
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+c?pickle", text, re.MULTILINE), path
        assert "allow_pickle=True" not in text, path
        assert not legacy.search(text), f"{path}: {legacy.search(text).group(0)}"
