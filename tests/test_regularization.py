"""VariationalDropout and Zoneout: hand-written references, exact gradients, runners, bad input."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from _fd import check_runner_gradients

from lstmkit import (
    Bidirectional,
    Dense,
    GRUCell,
    LSTMCell,
    ProjectionLSTMCell,
    Recurrent,
    Sequential,
    Stacked,
    VariationalDropout,
    Zoneout,
)
from lstmkit.layers import MeanPool
from lstmkit.protocols import StepContext
from lstmkit.state import LSTMState, map_state


def _sig(a):
    return 1 / (1 + np.exp(-a))


# -- variational dropout ------------------------------------------------------------------------


def test_variational_lstm_matches_hand_loop_with_one_mask_per_sequence():
    cell = LSTMCell(3, 4, rng=0)
    wrapped = VariationalDropout(cell, input_rate=0.4, recurrent_rate=0.3, rng=7)
    x = np.random.default_rng(1).normal(size=(3, 6, 3))
    lengths = [6, 3, 0]
    y, final, _ = Recurrent(wrapped).forward(x, lengths=lengths)
    mx, mh = final.mask_x, final.mask_h
    assert np.all(np.isnan(mx[2])) and np.all(np.isnan(mh[2]))  # never started: never drawn
    keep_x, keep_h = 1 / 0.6, 1 / 0.7
    assert set(np.round(mx[:2], 12).ravel()) <= {0.0, round(keep_x, 12)}
    assert set(np.round(mh[:2], 12).ravel()) <= {0.0, round(keep_h, 12)}
    # Reference: the gates written out by hand, the same masks at every step.
    g = {
        n: (getattr(cell, n).W.value, getattr(cell, n).U.value, getattr(cell, n).b.value)
        for n in cell.gates
    }
    for b, n in enumerate(lengths[:2]):
        h, c = np.zeros(4), np.zeros(4)
        for t in range(n):
            xt, ht = x[b, t] * mx[b], h * mh[b]
            a = {k: xt @ W + ht @ U + bias for k, (W, U, bias) in g.items()}
            c = _sig(a["forget"]) * c + _sig(a["input"]) * np.tanh(a["candidate"])
            h = _sig(a["output"]) * np.tanh(c)
            np.testing.assert_allclose(y[b, t], h, atol=1e-13)
        np.testing.assert_allclose(final.c[b], c, atol=1e-13)
    assert np.all(y[1, 3:] == 0) and np.all(y[2] == 0)


@pytest.mark.parametrize("reset_after", [False, True])
def test_variational_gru_drops_h_only_inside_the_products(reset_after):
    cell = GRUCell(2, 3, reset_after=reset_after, bias_initializer="normal", rng=0)
    wrapped = VariationalDropout(cell, input_rate=0.3, recurrent_rate=0.5, rng=3)
    x = np.random.default_rng(2).normal(size=(2, 5, 2))
    y, final, _ = Recurrent(wrapped).forward(x)
    mx, mh = final.mask_x, final.mask_h
    Wz, Uz, bz = (getattr(cell.update, k).value for k in "WUb")
    Wr, Ur, br = (getattr(cell.reset, k).value for k in "WUb")
    Wn, Un, bn = (getattr(cell.candidate, k).value for k in "WUb")
    for b in range(2):
        h = np.zeros(3)
        for t in range(5):
            xt, hd = x[b, t] * mx[b], h * mh[b]
            z = _sig(xt @ Wz + hd @ Uz + bz)
            r = _sig(xt @ Wr + hd @ Ur + br)
            if reset_after:
                n = np.tanh(xt @ Wn + bn + r * (hd @ Un + cell.recurrent_bias.value))
            else:
                n = np.tanh(xt @ Wn + (r * hd) @ Un + bn)
            h = (1 - z) * n + z * h  # the undropped h carries over
            np.testing.assert_allclose(y[b, t], h, atol=1e-13)


def test_inference_is_the_plain_cell_and_masks_are_reproducible():
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    for wrapper in (
        lambda c, s: VariationalDropout(c, 0.5, 0.5, rng=s),
        lambda c, s: Zoneout(c, 0.5, 0.5, rng=s),
    ):
        cell = LSTMCell(3, 4, rng=0)
        plain, _ = Recurrent(cell)(x)
        inferred, _ = Recurrent(wrapper(cell, 1))(x)
        # (the plain LSTM runs fused, the wrapper step by step: same math, rounding may differ)
        np.testing.assert_allclose(inferred, plain, rtol=0, atol=1e-12)
        a = Recurrent(wrapper(cell, 1)).forward(x)[0]
        b = Recurrent(wrapper(cell, 1)).forward(x)[0]
        c = Recurrent(wrapper(cell, 2)).forward(x)[0]
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c) and not np.array_equal(a, plain)


def test_dropout_masks_have_the_requested_rate():
    wrapped = VariationalDropout(LSTMCell(50, 40, rng=0), input_rate=0.3, recurrent_rate=0.6, rng=0)
    _, final, _ = Recurrent(wrapped).forward(np.ones((400, 1, 50)))
    assert abs(np.mean(final.mask_x == 0) - 0.3) < 0.01
    assert abs(np.mean(final.mask_h == 0) - 0.6) < 0.01


def test_masks_persist_across_chunks_and_fresh_state_redraws():
    wrapped = VariationalDropout(LSTMCell(3, 4, rng=0), 0.5, 0.5, rng=0)
    rnn = Recurrent(wrapped)
    x = np.random.default_rng(0).normal(size=(2, 6, 3))
    y_all, final_all, _ = rnn.forward(x)
    wrapped.rng = 0  # replay the same draws
    y1, s1, _ = rnn.forward(x[:, :3])
    y2, s2, _ = rnn.forward(x[:, 3:], s1)
    np.testing.assert_array_equal(np.concatenate([y1, y2], axis=1), y_all)
    np.testing.assert_array_equal(s2.mask_h, final_all.mask_h)
    inner = wrapped.unwrap_state(s1)
    assert type(inner) is LSTMState
    fresh = wrapped.wrap_state(inner)
    assert np.all(np.isnan(fresh.mask_x)) and np.array_equal(fresh.h, s1.h)


# -- zoneout ------------------------------------------------------------------------------------


def test_zoneout_units_keep_previous_or_take_new_value_at_the_rate():
    cell = LSTMCell(3, 20, rng=0)
    zo = Zoneout(cell, h_rate=0.3, c_rate=0.6, rng=0)
    B, T = 200, 3
    x = np.random.default_rng(1).normal(size=(B, T, 3))
    state = zo.initial_state(B)
    kept = {"h": [], "c": []}
    for t in range(T):
        new, y, _ = zo.step_train(state, x[:, t])
        plain, _ = cell.step(state, x[:, t])
        np.testing.assert_array_equal(y, new.h)
        for f in ("h", "c"):
            prev, got, fresh = getattr(state, f), getattr(new, f), getattr(plain, f)
            is_prev, is_new = got == prev, got == fresh
            assert np.all(is_prev | is_new)
            kept[f].append(is_prev & ~is_new)
        state = new
    assert abs(np.mean(kept["h"]) - 0.3) < 0.02
    assert abs(np.mean(kept["c"]) - 0.6) < 0.02


def test_zoneout_expectation_inference():
    cell = GRUCell(3, 4, rng=0)
    zo = Zoneout(cell, h_rate=0.25, inference="expectation", rng=0)
    s = cell.initial_state(2)
    s = map_state(lambda a: a + 0.5, s)
    x = np.ones((2, 3))
    new, y = zo.step(s, x)
    plain, _ = cell.step(s, x)
    np.testing.assert_allclose(y, 0.25 * s.h + 0.75 * plain.h, atol=1e-15)
    assert y is new.h


# -- exact gradients ----------------------------------------------------------------------------

WRAPPED = {
    "dropout-lstm": lambda: VariationalDropout(LSTMCell(3, 4, rng=0), 0.3, 0.4, rng=0),
    "dropout-gru-after": lambda: VariationalDropout(
        GRUCell(3, 4, bias_initializer="normal", rng=0), 0.3, 0.4
    ),
    "dropout-gru-before": lambda: VariationalDropout(
        GRUCell(3, 4, reset_after=False, rng=0), 0.3, 0.4
    ),
    "dropout-projection": lambda: VariationalDropout(ProjectionLSTMCell(3, 4, 2, rng=0), 0.3, 0.4),
    "zoneout-lstm": lambda: Zoneout(LSTMCell(3, 4, rng=0), 0.3, 0.4),
    "zoneout-gru": lambda: Zoneout(GRUCell(3, 4, rng=0), 0.3),
    "zoneout-over-dropout": lambda: Zoneout(
        VariationalDropout(GRUCell(3, 4, rng=0), 0.3, 0.3), 0.3
    ),
}


@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_wrapper_gradients_match_finite_differences(name):
    wrapped = WRAPPED[name]()
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4, 3))
    init = map_state(
        lambda a: rng.normal(size=a.shape) if not np.isnan(a).any() else a, wrapped.initial_state(3)
    )

    def reseed():  # replay the same masks in every wrapper of the chain
        layer, seed = wrapped, 11
        while isinstance(layer, (VariationalDropout, Zoneout)):
            layer.rng, layer, seed = seed, layer.cell, seed + 1

    check_runner_gradients(
        Recurrent(wrapped), x, init, [4, 1, 3], state_fields=("h", "c"), reseed=reseed
    )


def test_wrappers_run_in_stacked_and_bidirectional():
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    lengths = [5, 2]
    bi = Bidirectional(VariationalDropout(LSTMCell(3, 4, rng=0), 0.5, 0.5, rng=0), rng=1)
    assert bi.backward_layer.cell.rng is not bi.forward_layer.cell.rng
    y, state, cache = bi.forward(x, lengths=lengths)
    assert not np.array_equal(state.forward.mask_x, state.backward.mask_x)
    dx, _ = bi.backward(cache, np.ones_like(y))
    assert dx.shape == x.shape and np.all(dx[1, 2:] == 0)
    stack = Stacked(
        [Zoneout(GRUCell(3, 4, rng=0), 0.2, rng=0), Zoneout(LSTMCell(4, 2, rng=1), 0.2, 0.2, rng=1)]
    )
    y, finals, cache = stack.forward(x, lengths=lengths)
    dx, d_inits = stack.backward(cache, np.ones_like(y))
    assert y.shape == (2, 5, 2) and dx.shape == x.shape
    assert len(finals) == len(d_inits) == 2
    assert all(
        name.startswith(("layers.0.cell.cell.", "layers.1.cell.cell."))
        for name in stack.state_dict()
    )


@pytest.mark.parametrize(
    ("build", "error", "words"),
    [
        (
            lambda: VariationalDropout(LSTMCell(3, 4), input_rate=1.0),
            ValueError,
            ["input_rate", "[0, 1)", "1.0"],
        ),
        (
            lambda: VariationalDropout(LSTMCell(3, 4), recurrent_rate=-0.1),
            ValueError,
            ["recurrent_rate", "-0.1"],
        ),
        (lambda: VariationalDropout(LSTMCell(3, 4), input_rate="0.2"), TypeError, ["input_rate"]),
        (lambda: VariationalDropout(object()), TypeError, ["cell", "object"]),
        (lambda: Zoneout(LSTMCell(3, 4), h_rate=1.5), ValueError, ["h_rate", "1.5"]),
        (lambda: Zoneout(GRUCell(3, 4), c_rate=0.2), ValueError, ["c_rate", "HiddenState", "'c'"]),
        (lambda: Zoneout(LSTMCell(3, 4), inference="mean"), ValueError, ["inference", "mean"]),
    ],
)
def test_bad_rates_and_options_raise(build, error, words):
    with pytest.raises(error) as info:
        build()
    for word in words:
        assert word in str(info.value)


def test_wrapper_rejects_a_state_without_masks():
    wrapped = VariationalDropout(LSTMCell(3, 4, rng=0), 0.2, 0.2)
    with pytest.raises(TypeError, match="VariationalLSTMState"):
        wrapped.step_train(LSTMCell(3, 4).initial_state(2), np.zeros((2, 3)))


# -- the training flag and rng reach the wrappers ---------------------------------------------

EVAL_WRAPPERS = {
    "dropout-lstm": lambda n_in, n_h, s: VariationalDropout(
        LSTMCell(n_in, n_h, rng=s), 0.4, 0.4, rng=s
    ),
    "dropout-gru-hooked": lambda n_in, n_h, s: VariationalDropout(
        GRUCell(n_in, n_h, rng=s), 0.4, 0.4, rng=s
    ),
    "zoneout-off": lambda n_in, n_h, s: Zoneout(LSTMCell(n_in, n_h, rng=s), 0.4, 0.4, rng=s),
    "zoneout-expectation": lambda n_in, n_h, s: Zoneout(
        LSTMCell(n_in, n_h, rng=s), 0.4, 0.4, inference="expectation", rng=s
    ),
    "zoneout-over-dropout": lambda n_in, n_h, s: Zoneout(
        VariationalDropout(GRUCell(n_in, n_h, rng=s), 0.4, 0.4, rng=s),
        0.4,
        inference="expectation",
        rng=s + 1,
    ),
}

EVAL_CONTAINERS = {
    "recurrent": lambda w: Recurrent(w(2, 3, 0)),
    "stacked-with-dropout": lambda w: Stacked([w(2, 3, 0), w(3, 2, 1)], dropout=0.5, rng=0),
    "bidirectional": lambda w: Bidirectional(w(2, 3, 0), rng=1),
    "sequential": lambda w: Sequential(
        Stacked([w(2, 3, 0), Bidirectional(w(3, 2, 1), rng=2)], dropout=0.5, rng=3),
        MeanPool(),
        Dense(4, 2, rng=4),
    ),
}


def _eval_forward(model, x, lengths):
    out = model.forward(x, lengths=lengths, training=False)
    return out[0], out[-1]  # (y, final, cache) for a runner, (y, cache) for Sequential


def _check_eval_gradients(model, x, lengths):
    """Central differences of ``sum(y * dy)`` through ``forward(training=False)``."""
    y, cache = _eval_forward(model, x, lengths)
    dy = np.random.default_rng(5).normal(size=y.shape)
    model.zero_grad()
    dx, _ = model.backward(cache, dy)
    targets = [(n, p.value, p.grad.copy()) for n, p in model.named_parameters().items()]
    targets.append(("x", x, dx))
    eps = 1e-6
    for name, array, analytic in targets:
        numeric = np.zeros(array.shape)
        for k in np.ndindex(array.shape):
            old = array[k]
            array[k] = old + eps
            plus = float(np.sum(_eval_forward(model, x, lengths)[0] * dy))
            array[k] = old - eps
            minus = float(np.sum(_eval_forward(model, x, lengths)[0] * dy))
            array[k] = old
            numeric[k] = (plus - minus) / (2 * eps)
        scale = max(1.0, float(np.abs(numeric).max(initial=0.0)))
        err = float(np.abs(numeric - analytic).max(initial=0.0)) / scale
        assert err < 1e-6, f"{name}: max |fd - analytic| / scale = {err:.3g}"


@pytest.mark.parametrize("container", sorted(EVAL_CONTAINERS))
@pytest.mark.parametrize("wrapper", sorted(EVAL_WRAPPERS))
def test_forward_with_training_false_is_inference_with_exact_gradients(wrapper, container):
    model = EVAL_CONTAINERS[container](EVAL_WRAPPERS[wrapper])
    x = np.random.default_rng(0).normal(size=(3, 4, 2))
    lengths = [4, 1, 3]
    if container == "sequential":
        expected = model(x, lengths=lengths)
    else:
        expected, expected_final = model(x, lengths=lengths)
    out = model.forward(x, lengths=lengths, training=False)
    np.testing.assert_array_equal(out[0], expected)
    if container != "sequential":
        for got, want in zip(_leaves(out[1]), _leaves(expected_final)):
            np.testing.assert_array_equal(got, want)
    # the training pass does draw masks, so the comparison above means something
    assert not np.array_equal(model.forward(x, lengths=lengths, rng=0)[0], expected)
    _check_eval_gradients(model, x, lengths)


def _leaves(state):
    """Every array of a (nested) state, in a fixed order."""
    if isinstance(state, np.ndarray):
        return [state]
    if isinstance(state, (tuple, list)):
        return [a for s in state for a in _leaves(s)]
    return [a for f in attrs.fields(type(state)) for a in _leaves(getattr(state, f.name))]


@pytest.mark.parametrize("wrapper", sorted(EVAL_WRAPPERS))
def test_forward_rng_gives_reproducible_masks_and_overrides_the_wrappers_generator(wrapper):
    build = EVAL_WRAPPERS[wrapper]
    x = np.random.default_rng(0).normal(size=(3, 5, 2))

    def run(cell_seed, wrapper_seed, rng):
        cell = build(2, 3, cell_seed)
        layer = cell
        while isinstance(layer, (VariationalDropout, Zoneout)):
            layer.rng, layer = np.random.default_rng(wrapper_seed), layer.cell
        return Recurrent(cell).forward(x, lengths=[5, 2, 4], rng=rng)[0]

    a = run(0, 100, rng=5)
    np.testing.assert_array_equal(a, run(0, 200, rng=np.random.default_rng(5)))
    assert not np.array_equal(a, run(0, 100, rng=6))
    assert not np.array_equal(a, run(0, 100, rng=None))  # the wrapper's own generator
    np.testing.assert_array_equal(run(0, 100, rng=None), run(0, 100, rng=None))


def test_forward_rng_reaches_wrappers_inside_containers():
    x = np.random.default_rng(0).normal(size=(3, 5, 2))

    def build(wrapper_seed):
        def wrap(n_in, n_h, s):
            return VariationalDropout(LSTMCell(n_in, n_h, rng=s), 0.4, 0.4, rng=wrapper_seed + s)

        return Sequential(
            Stacked([wrap(2, 3, 0), Bidirectional(wrap(3, 2, 1), rng=2)], dropout=0.3, rng=3),
            MeanPool(),
        )

    a, b = build(10).forward(x, rng=7)[0], build(20).forward(x, rng=7)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(build(10).forward(x)[0], build(20).forward(x)[0])


def test_wrapper_step_train_without_context_still_trains():
    wrapped = VariationalDropout(LSTMCell(3, 4, rng=0), 0.5, 0.5, rng=0)
    state = wrapped.initial_state(2)
    new, _, _ = wrapped.step_train(state, np.ones((2, 3)))
    assert not np.isnan(new.mask_x).any()  # drawn from the wrapper's own generator
    new, _, cache = wrapped.step_train(state, np.ones((2, 3)), context=StepContext(training=False))
    assert np.isnan(new.mask_x).all() and np.all(cache.mask_x == 1)  # carried, not drawn


def test_every_name_is_importable_from_lstmkit_regularization():
    import lstmkit.regularization as reg
    from lstmkit.regularization import dropout, zoneout

    assert reg.VariationalDropout is dropout.VariationalDropout is VariationalDropout
    assert reg.Zoneout is zoneout.Zoneout is Zoneout
    assert reg.VariationalStepCache is dropout.VariationalStepCache
    assert reg.ZoneoutStepCache is zoneout.ZoneoutStepCache
    assert reg.masked_state_class is dropout.masked_state_class
    assert sorted(reg.__all__) == sorted(
        ["VariationalDropout", "VariationalStepCache", "Zoneout", "ZoneoutStepCache"]
        + ["masked_state_class"]
    )
    cls = reg.masked_state_class(LSTMState)
    assert cls.__name__ == "VariationalLSTMState" and reg.masked_state_class(LSTMState) is cls
    wrapped = VariationalDropout(LSTMCell(3, 4, rng=0), 0.1, 0.1, rng=0)
    assert type(wrapped.initial_state(2)) is cls


@pytest.mark.parametrize(
    "cfg, error",
    [
        ({"input_rate": 1.0}, r"model\.input_rate: expected a finite number in \[0\.0, 1\.0\)"),
        ({"recurrent_rate": -0.1}, r"model\.recurrent_rate"),
        ({"h_rate": True}, r"model\.h_rate: expected a number"),
        ({"inference": "paper"}, r"model\.inference: expected one of off, expectation"),
        ({"extra": 0}, r"model: keys do not match"),
    ],
)
def test_wrapper_descriptions_are_checked_before_the_cell_is_built(cfg, error, monkeypatch):
    from lstmkit import config

    kind = "Zoneout" if {"h_rate", "inference"} & set(cfg) else "VariationalDropout"
    wrapper = (
        Zoneout(LSTMCell(3, 4, rng=0), 0.1, 0.1)
        if kind == "Zoneout"
        else VariationalDropout(LSTMCell(3, 4, rng=0), 0.1, 0.1)
    )
    description = {**config.to_config(wrapper), **cfg}
    built = []
    monkeypatch.setattr(config.BuildContext, "build", lambda *a: built.append(a))
    with pytest.raises((TypeError, ValueError), match=error):
        config.from_config(description)
    assert built == []
