"""The fused sequence kernel (fast and general paths) equals stepping the cell one step at a time.

The oracle is :meth:`LSTMCell.step` / :meth:`LSTMCell.step_backward`, driven by the runner with
``fused=False``; it shares no code with :mod:`lstmkit.cells.lstm_fused`.
"""

import numpy as np
import pytest

from lstmkit import Gate, LSTMCell, Recurrent, activations
from lstmkit.activations import Activation
from lstmkit.cells import lstm_fused
from lstmkit.module import component
from lstmkit.state import LSTMState

B, T, I, H = 4, 6, 3, 5

VARIANTS = {
    "default": {},
    "hard_sigmoid": {"gate_activation": "hard_sigmoid"},
    "peepholes": {"peephole": True},
    "input_peephole": {"peephole": ["input"]},
    "output_peephole_hard": {"peephole": ["output"], "gate_activation": "hard_sigmoid"},
    "softplus_gates": {"gate_activation": "softplus"},  # derivative needs the pre-activation
    "relu_cell_softsign_candidate": {"cell_activation": "relu", "candidate_activation": "softsign"},
    # A built-in other than tanh as cell activation (copied, then applied in place).
    "sigmoid_cell_hard_candidate": {
        "cell_activation": "sigmoid",
        "candidate_activation": "hard_sigmoid",
    },
    # Three different gate activations: no grouped call, input and forget apart.
    "mixed_gates": {"swap": {"forget": "hard_sigmoid", "output": "tanh"}},
    "mixed_gates_peepholes": {"peephole": True, "swap": {"input": "softsign"}},
}


def _cell(dtype, swap=None, **kw):
    cell = LSTMCell(I, H, rng=0, dtype=dtype, **kw)
    for name, activation in (swap or {}).items():
        cell.gates[name].activation = activation
    rng = np.random.default_rng(1)
    for gate in cell.gates.values():
        gate.b.value[...] += rng.standard_normal(H).astype(dtype)
        if gate.p is not None:
            gate.p.value[...] = rng.standard_normal(H).astype(dtype)
    return cell


def _run(cell, fused, lengths, reverse, unbatched=False):
    """Forward (inference and training) and backward; everything a caller can observe."""
    dtype = cell.dtype
    rng = np.random.default_rng(2)
    runner = Recurrent(cell, reverse=reverse, fused=fused)
    shape = (T, I) if unbatched else (B, T, I)
    sshape = (H,) if unbatched else (B, H)
    x = rng.standard_normal(shape).astype(dtype)
    s0 = LSTMState(
        h=rng.standard_normal(sshape).astype(dtype), c=rng.standard_normal(sshape).astype(dtype)
    )
    y_inf, final_inf = runner(x, s0, lengths)
    cell.zero_grad()
    y, final, cache = runner.forward(x, s0, lengths)
    dy = rng.standard_normal(y.shape).astype(dtype)
    d_final = LSTMState(
        h=rng.standard_normal(sshape).astype(dtype), c=rng.standard_normal(sshape).astype(dtype)
    )
    dx, d_init = runner.backward(cache, dy, d_final)
    out = {
        "y_inference": y_inf,
        "h_inference": final_inf.h,
        "c_inference": final_inf.c,
        "y": y,
        "h": final.h,
        "c": final.c,
        "dx": dx,
        "dh0": d_init.h,
        "dc0": d_init.c,
    }
    out.update({f"grad {name}": p.grad.copy() for name, p in cell.named_parameters().items()})
    return out


def _assert_same(a, b, dtype):
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == dtype, f"{key}: dtype {a[key].dtype}, expected {dtype}"
        assert a[key].shape == b[key].shape, key
        np.testing.assert_allclose(a[key], b[key], err_msg=key, **tol)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", [None, [6, 2, 0, 4]], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_fused_equals_step_path(variant, dtype, lengths, reverse):
    kw = VARIANTS[variant]
    fused = _run(_cell(dtype, **kw), True, lengths, reverse)
    stepped = _run(_cell(dtype, **kw), False, lengths, reverse)
    _assert_same(fused, stepped, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_unbatched_fused_equals_step_path(dtype):
    fused = _run(_cell(dtype), True, None, False, unbatched=True)
    stepped = _run(_cell(dtype), False, None, False, unbatched=True)
    _assert_same(fused, stepped, dtype)


def _clone(act, name):
    # Same maths as a built-in, but a different object, so the kernel must take the general path.
    return Activation(name, act.function, act.derivative, act.derivative_from_output)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", [None, [6, 2, 0, 4]], ids=["full", "lengths"])
def test_fast_path_equals_general_path(dtype, lengths):
    fast_cell = _cell(dtype)
    general_cell = _cell(dtype, gate_activation=_clone(activations.sigmoid, "sigmoid_clone"))
    assert lstm_fused._is_fast(fast_cell) and not lstm_fused._is_fast(general_cell)
    _assert_same(
        _run(fast_cell, True, lengths, False), _run(general_cell, True, lengths, False), dtype
    )


def test_default_cell_takes_the_fast_path_and_swapped_ones_do_not():
    x = np.zeros((T, B, I))
    for kw, fast in (
        ({}, True),
        ({"gate_activation": "hard_sigmoid"}, False),
        ({"peephole": True}, False),
    ):
        cell = LSTMCell(I, H, rng=0, **kw)
        _, _, cache = cell.forward_sequence(x, cell.initial_state(B), None, training=True)
        assert cache.fast is fast


def test_inference_keeps_no_cache_and_training_cache_is_single_use():
    cell = LSTMCell(I, H, rng=0)
    x = np.ones((T, B, I))
    _, _, none = cell.forward_sequence(x, cell.initial_state(B), None, training=False)
    assert none is None
    y, _, cache = cell.forward_sequence(x, cell.initial_state(B), None, training=True)
    zero = cell.initial_state(B)
    cell.backward_sequence(cache, np.ones_like(y), zero)
    with pytest.raises(ValueError, match="cache"):
        cell.backward_sequence(cache, np.ones_like(y), zero)
    with pytest.raises(TypeError, match="cache"):
        cell.backward_sequence(object(), np.ones_like(y), zero)


@pytest.mark.parametrize("lengths", [None, [700, 10, 300, 0]])
@pytest.mark.parametrize("activation", ["sigmoid", "hard_sigmoid"])
def test_long_inference_in_chunks_equals_one_pass(monkeypatch, lengths, activation):
    """Inference projects at most INFERENCE_CHUNK steps at once; the numbers must not change."""
    cell = LSTMCell(3, 5, gate_activation=activation, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 700, 3))
    for reverse in (False, True):
        rnn = Recurrent(cell, reverse=reverse)
        monkeypatch.setattr(lstm_fused, "INFERENCE_CHUNK", 10**9)
        y_one, s_one = rnn(x, lengths=lengths)
        monkeypatch.setattr(lstm_fused, "INFERENCE_CHUNK", 256)
        y_chunked, s_chunked = rnn(x, lengths=lengths)
        y_train, s_train, _ = rnn.forward(x, lengths=lengths)
        np.testing.assert_array_equal(y_chunked, y_one)
        np.testing.assert_array_equal(s_chunked.h, s_one.h)
        np.testing.assert_array_equal(s_chunked.c, s_one.c)
        np.testing.assert_array_equal(y_chunked, y_train)


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("variant", ["default", "hard_sigmoid", "softplus_gates"])
@pytest.mark.parametrize("columns", [1, 12, 10**9])  # one step per product ... all steps
def test_chunked_input_projection_equals_step_path(monkeypatch, ragged, variant, columns):
    """Large input weights switch the projection to one product per chunk of steps (then a
    copy into the per-step layout); whatever the chunk, the numbers are the step path's."""
    monkeypatch.setattr(lstm_fused, "BATCHED_PROJECTION_MAX_BYTES", 0)
    monkeypatch.setattr(lstm_fused, "PROJECTION_COLUMNS", columns)
    lengths = [T, 2, 0, 4] if ragged else None
    for reverse in (False, True):
        fused = _run(_cell(np.float64, **VARIANTS[variant]), True, lengths, reverse)
        step = _run(_cell(np.float64, **VARIANTS[variant]), False, lengths, reverse)
        _assert_same(fused, step, np.float64)


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("columns", [1, 9, 10**9])  # one step per chunk ... all steps
def test_backward_in_chunks_of_steps_equals_step_path(monkeypatch, ragged, variant, columns):
    """Backward runs its loop and weight gradients a chunk of steps at a time (last chunk
    first); whatever the chunk, the numbers are the step path's."""
    monkeypatch.setattr(lstm_fused, "GRADIENT_COLUMNS", columns)
    lengths = [T, 2, 0, 4] if ragged else None
    for reverse in (False, True):
        fused = _run(_cell(np.float64, **VARIANTS[variant]), True, lengths, reverse)
        step = _run(_cell(np.float64, **VARIANTS[variant]), False, lengths, reverse)
        _assert_same(fused, step, np.float64)


@pytest.mark.parametrize("lengths", [None, [0, 0]], ids=["empty_batch", "all_empty"])
def test_backward_of_an_empty_batch_or_empty_sequences(lengths):
    """A batch of 0 sequences (or sequences of length 0) goes through backward's chunking."""
    cell = LSTMCell(I, H, rng=0)
    x = np.zeros((0 if lengths is None else 2, T, I))
    for fused in (True, False):
        cell.zero_grad()
        rnn = Recurrent(cell, fused=fused)
        y, _, cache = rnn.forward(x, lengths=lengths)
        dx, _ = rnn.backward(cache, np.ones_like(y))
        assert dx.shape == x.shape and not dx.any()
        assert all(not p.grad.any() for p in cell.parameters())


@pytest.mark.parametrize("training", [False, True])
def test_padding_is_zeroed_in_a_copy_never_in_the_callers_array(training):
    """With a padded batch the kernel zeroes the padding of a copy of ``x`` (the training
    cache holds that copy); the caller's array is left as it was, padding included."""
    cell = LSTMCell(I, H, rng=0)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    x[2:, 2:] = np.nan  # sequences 2 and 3 (sorted longest first) end after 2 steps
    before = x.copy()
    bs = np.array([4, 4, 2, 2, 2, 2])
    y, final, cache = cell.forward_sequence(x, cell.initial_state(B), bs, training)
    np.testing.assert_array_equal(x, before)
    assert np.isfinite(y).all() and np.isfinite(final.h).all() and np.isfinite(final.c).all()
    if training:
        assert not np.shares_memory(cache.x, x)
        np.testing.assert_array_equal(cache.x[2:, 2:], 0)
        np.testing.assert_array_equal(cache.x[:, :2], x[:, :2])
        np.testing.assert_array_equal(cache.x[:2], x[:2])
    # Without padding nothing is copied: the cache refers to the input.
    full = np.ones((T, B, I))
    _, _, full_cache = cell.forward_sequence(full, cell.initial_state(B), None, True)
    assert full_cache.x is full


def test_projection_rule_picks_chunks_for_large_weights_and_narrow_batches():
    """The rule of _project, observed through the scratch buffer it leaves in the pool."""
    lstm_fused.clear_pool()
    rnn = Recurrent(LSTMCell(128, 256, rng=0, dtype=np.float32))  # WT: 512 KiB
    rnn(np.zeros((32, 10, 128), np.float32))
    steps = min(10, lstm_fused.PROJECTION_COLUMNS // 32)
    chunk_shape = (4 * 256 * steps * 32,)
    assert (chunk_shape, np.dtype(np.float32)) in lstm_fused._pool
    lstm_fused.clear_pool()
    rnn(np.zeros((65, 10, 128), np.float32))  # wider than CHUNKED_PROJECTION_MAX_BATCH
    assert not any(len(shape) == 1 and shape[0] > 4 * 256 for shape, _ in lstm_fused._pool)
    lstm_fused.clear_pool()


def test_recycled_buffers_never_alias_results(monkeypatch):
    """Interleaved training passes share the buffer pool; no result may change afterwards."""
    cell = LSTMCell(3, 4, rng=0, dtype=np.float64)
    rnn = Recurrent(cell)
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((2, 6, 3)) for _ in range(3)]
    dys = [rng.standard_normal((2, 6, 4)) for _ in range(3)]

    def reference(k):
        monkeypatch.setattr(lstm_fused, "POOL_BYTES", 0)  # no recycling at all
        cell.zero_grad()
        _, _, c = rnn.forward(xs[k])
        dx, d0 = rnn.backward(c, dys[k])
        grads = {n: p.grad.copy() for n, p in cell.named_parameters().items()}
        monkeypatch.undo()
        return dx.copy(), d0.h.copy(), grads

    expected = [reference(k) for k in range(3)]
    lstm_fused.clear_pool()
    # Order: forward 0, forward 1, backward 0 (returns buffers), forward 2 (takes them),
    # backward 2, backward 1.
    _, _, c0 = rnn.forward(xs[0])
    _, _, c1 = rnn.forward(xs[1])
    results = {}
    for k, cache in ((0, c0),):
        cell.zero_grad()
        dx, d0 = rnn.backward(cache, dys[k])
        results[k] = (dx, d0.h, {n: p.grad.copy() for n, p in cell.named_parameters().items()})
    assert lstm_fused._pool, "backward should have returned its buffers to the pool"
    _, _, c2 = rnn.forward(xs[2])
    for k, cache in ((2, c2), (1, c1)):
        cell.zero_grad()
        dx, d0 = rnn.backward(cache, dys[k])
        results[k] = (dx, d0.h, {n: p.grad.copy() for n, p in cell.named_parameters().items()})
    for k in range(3):
        np.testing.assert_array_equal(results[k][0], expected[k][0])
        np.testing.assert_array_equal(results[k][1], expected[k][1])
        for name, grad in expected[k][2].items():
            np.testing.assert_array_equal(results[k][2][name], grad)


# -- the default path: fused for LSTMCell's own maths, stepped for a user's subclass ---------------


@component
class _SameGate(Gate):
    """A Gate subclass that changes nothing; the runner cannot know that, so it steps it."""


@component
class _SameCell(LSTMCell):
    """An LSTMCell subclass that changes nothing."""


# Never registered: a user's "sigmoid" that is sigmoid(2 z), a user's "tanh" that is
# tanh(z / 2), and one under its own name whose derivative needs the pre-activation.
_USER_SIGMOID = Activation(
    "sigmoid", lambda z: 0.5 * (1 + np.tanh(z)), lambda y: 2 * y * (1 - y), True
)
_USER_TANH = Activation("tanh", lambda z: np.tanh(0.5 * z), lambda y: 0.5 * (1 - y * y), True)
_USER_ISRU = Activation("isru", lambda z: z / np.sqrt(1 + z * z), lambda z: (1 + z * z) ** -1.5)


def _default_path_cell(kind, dtype):
    if kind == "builtin":
        return _cell(dtype)
    if kind == "user-named-like-builtins":  # the fast path's names, other functions
        return _cell(
            dtype,
            gate_activation=_USER_SIGMOID,
            candidate_activation=_USER_TANH,
            cell_activation=_USER_TANH,
        )
    if kind == "user-activations":
        return _cell(
            dtype,
            gate_activation=_USER_SIGMOID,
            candidate_activation=_USER_ISRU,
            cell_activation=_USER_SIGMOID,
        )
    if kind == "gate-subclass":
        cell = LSTMCell(I, H, forget=_SameGate(I, H, dtype=dtype, rng=0), dtype=dtype, rng=0)
    else:
        cell = _SameCell(I, H, dtype=dtype, rng=0)
    cell.load_state_dict(_cell(dtype).state_dict())  # the "builtin" cell's weights
    return cell


KINDS = [
    "builtin",
    "user-named-like-builtins",
    "user-activations",
    "gate-subclass",
    "cell-subclass",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", [None, [6, 2, 0, 4]], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_default_path_choice_and_numbers(kind, dtype, lengths, reverse):
    cell = _default_path_cell(kind, dtype)
    fused = kind not in ("gate-subclass", "cell-subclass")
    assert Recurrent(cell).uses_fused() is fused
    if fused:
        assert Recurrent(cell, fused=True).uses_fused()
    else:
        with pytest.raises(TypeError, match="_Same"):
            Recurrent(cell, fused=True)
    default = _run(cell, None, lengths, reverse)
    _assert_same(default, _run(_default_path_cell(kind, dtype), False, lengths, reverse), dtype)
    if kind in ("gate-subclass", "cell-subclass"):
        # Stepped, and the subclass changes nothing: the fused numbers of the plain cell.
        _assert_same(default, _run(_cell(dtype), True, lengths, reverse), dtype)


# -- the named step views ------------------------------------------------------------------------


def test_time_loops_unpack_each_step_in_field_order():
    """The loops bind each step's views to locals named as the step type's fields, in order
    (unpacking a tuple costs less per step than attribute access); the fast loops read a prefix
    of the fields and the general loops all of them, so a reordered field or loop shows here."""
    import ast
    import inspect

    from lstmkit.cells import lstm_fused_general, lstm_fused_steps

    fwd = lstm_fused_steps.ForwardStep._fields
    bwd = lstm_fused_steps.BackwardStep._fields
    found = {}
    for module in (lstm_fused_steps, lstm_fused_general):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.FunctionDef) and node.name.endswith("_loop"):
                loops = [
                    n
                    for n in ast.walk(node)
                    if isinstance(n, ast.For) and isinstance(n.target, ast.Tuple)
                ]
                assert len(loops) == 1, node.name
                found[node.name] = tuple(elt.id for elt in loops[0].target.elts)
    assert found == {
        "fast_forward_loop": fwd[: len(found["fast_forward_loop"])],
        "fast_backward_loop": bwd[: len(found["fast_backward_loop"])],
        "forward_loop": fwd,
        "backward_loop": bwd,
    }


@pytest.mark.parametrize("general", [False, True], ids=["fast", "general"])
@pytest.mark.parametrize("batch_sizes", [None, [2, 1, 1]], ids=["full", "packed"])
def test_step_views_are_the_rows_their_names_say(general, batch_sizes):
    from lstmkit.cells import lstm_fused_steps as steps

    n_t, n_h, n_b = 3, 2, 2
    bs = None if batch_sizes is None else np.array(batch_sizes)
    Z = np.arange((n_t + 1) * 5 * n_h * n_b, dtype=float).reshape(n_t + 1, 5 * n_h, n_b)
    Y = np.arange((n_t + 1) * n_h * n_b, dtype=float).reshape(n_t + 1, n_h, n_b)
    rows = {  # [o, i, f, g, c_prev] of the step's block
        "gates": (0, 4),
        "sigmoid_gates": (0, 3),
        "output_gate": (0, 1),
        "input_gate": (1, 2),
        "forget_gate": (2, 3),
        "candidate": (3, 4),
        "input_forget": (1, 3),
        "candidate_cell": (3, 5),
        "c_prev": (4, 5),
    }
    for t, view in enumerate(steps.forward_steps(Y, Z, None, None, bs, general)):
        step = dict(zip(steps.ForwardStep._fields, view))
        n = n_b if bs is None else bs[t]
        for name, (a, b) in rows.items():
            if name in step:
                np.testing.assert_array_equal(step[name], Z[t, a * n_h : b * n_h, :n], name)
        np.testing.assert_array_equal(step["c_new"], Z[t + 1, 4 * n_h :, :n])
        np.testing.assert_array_equal(step["h_prev"], Y[t, :, :n])
        np.testing.assert_array_equal(step["y"], Y[t + 1, :, :n])
        assert step["projection"] is None  # training: the gate block holds the projection
    dy = np.zeros((n_t, n_h, n_b))
    carried = np.zeros((n_h, n_b)), np.zeros((n_h, n_b))
    backward = list(steps.backward_steps(dy, Z, None, *carried, bs, general))
    for t, view in zip(range(n_t - 1, -1, -1), backward):
        step = dict(zip(steps.BackwardStep._fields, view))
        n = n_b if bs is None else bs[t]
        for name, (a, b) in rows.items():
            if name in step and name != "candidate_cell":
                np.testing.assert_array_equal(step[name], Z[t, a * n_h : b * n_h, :n], name)
        pair = step["candidate_cell"].reshape(2 * n_h, -1)
        np.testing.assert_array_equal(pair, Z[t, 3 * n_h :, :n])
        np.testing.assert_array_equal(step["c_new"], Z[t + 1, 4 * n_h :, :n])
