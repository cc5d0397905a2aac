"""Activations: values against plain-Python formulas, derivatives against finite differences,
stability at |z| = 1e4, lookup by name and user-defined activations."""

import math

import numpy as np
import pytest

from lstmkit import activations
from lstmkit.activations import Activation

# Plain-Python references, written from the textbook definitions (math module, scalar by scalar).
REFERENCE = {
    "sigmoid": lambda z: 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z)),
    "tanh": math.tanh,
    "hard_sigmoid": lambda z: min(1.0, max(0.0, 0.2 * z + 0.5)),
    "relu": lambda z: max(z, 0.0),
    "linear": lambda z: z,
    "softsign": lambda z: z / (1 + abs(z)),
    "softplus": lambda z: max(z, 0) + math.log1p(math.exp(-abs(z))),
    "elu": lambda z: z if z > 0 else math.expm1(z),
}
BUILTINS = sorted(REFERENCE)


def test_every_builtin_is_registered():
    assert set(BUILTINS) <= set(activations.available())


@pytest.mark.parametrize("name", BUILTINS)
def test_values_match_reference(name):
    z = np.linspace(-6, 6, 101)
    got = activations.get(name)(z)
    want = np.array([REFERENCE[name](float(v)) for v in z])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", BUILTINS)
def test_derivative_matches_finite_differences(name):
    act = activations.get(name)
    # Avoid the kinks of relu, hard_sigmoid and elu where the derivative is one-sided.
    z = np.array([-3.7, -1.3, -0.4, 0.3, 1.1, 2.9])
    y = act(z)
    eps = 1e-6
    numeric = (act(z + eps) - act(z - eps)) / (2 * eps)
    np.testing.assert_allclose(act.grad(z, y), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", BUILTINS)
def test_stable_and_exact_at_extremes(name, dtype):
    act = activations.get(name)
    z = np.array([-1e4, -80.0, 0.0, 80.0, 1e4], dtype=dtype)
    with np.errstate(all="raise", under="ignore"):
        y = act(z)
        d = act.grad(z, y)
    assert y.dtype == dtype and d.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(d))
    low, high = REFERENCE[name](-1e4), REFERENCE[name](1e4)
    assert y[0] == dtype(low) and y[-1] == dtype(high)


def test_sigmoid_limits_are_exact():
    y = activations.sigmoid(np.array([-1e4, 1e4]))
    assert y[0] == 0.0 and y[1] == 1.0


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="unknown activation 'sigmoidd'.*hard_sigmoid"):
        activations.get("sigmoidd")


def test_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="activation: expected"):
        activations.get(3)


def test_user_defined_activation_and_registration():
    swish = Activation(
        "test_swish",
        lambda z: z * activations.sigmoid(z),
        lambda z: activations.sigmoid(z) * (1 + z * (1 - activations.sigmoid(z))),
    )
    activations.register(swish)
    try:
        assert activations.get("test_swish") is swish
        z = np.array([-2.0, 0.5, 3.0])
        eps = 1e-6
        numeric = (swish(z + eps) - swish(z - eps)) / (2 * eps)
        np.testing.assert_allclose(swish.grad(z, swish(z)), numeric, rtol=1e-7)
        with pytest.raises(ValueError, match="already registered"):
            activations.register(Activation("test_swish", np.tanh, lambda z: 1 - np.tanh(z) ** 2))
    finally:
        activations._REGISTRY.pop("test_swish")


def test_non_callable_function_rejected():
    with pytest.raises(TypeError, match="function: expected a callable"):
        Activation("bad", 3, np.tanh)


# -- kernel forms, declared formats and identity ----------------------------------------------------

KERNELED = [a for a in activations.BUILTINS if a.kernel is not None]


def _kernel_inputs(dtype):
    rng = np.random.default_rng(7)
    span = np.concatenate([-np.logspace(-6, 4, 61), [0.0], np.logspace(-6, 4, 61)])
    return np.concatenate([span, rng.standard_normal(200), 5 * rng.standard_normal(200)]).astype(
        dtype
    )


def test_some_builtins_have_kernels():
    assert {a.name for a in KERNELED} >= {"sigmoid", "tanh", "hard_sigmoid"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("act", KERNELED, ids=lambda a: a.name)
def test_kernel_forms_compute_what_the_activation_computes(act, dtype):
    z = _kernel_inputs(dtype)
    ops = act.kernel(dtype)
    assert ops is act.kernel(np.dtype(dtype))  # made once per dtype
    with np.errstate(all="raise", under="ignore"):
        want = act.function(z)
        a = z.copy()
        ops.inplace(a)
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, want)

        if act.derivative_from_output:
            assert ops.derivative is not None
            q = np.full_like(want, np.nan)
            ops.derivative(want, q)
            np.testing.assert_array_equal(q, act.derivative(want))
        else:
            assert ops.derivative is None

        if act.affine is not None:
            assert ops.post_affine is not None
            scale, offset = act.affine
            a = z * dtype(scale) + dtype(offset)
            ops.post_affine(a)
            eps = np.finfo(dtype).eps
            np.testing.assert_allclose(a, want, rtol=4 * eps, atol=4 * eps)

        if ops.into is not None:
            dst = np.full_like(z, np.nan)
            src = z.copy()
            ops.into(src, dst)
            np.testing.assert_array_equal(dst, want)
            np.testing.assert_array_equal(src, z)  # the source is left alone


@pytest.mark.parametrize(
    "act", [a for a in activations.BUILTINS if a.symmetric], ids=lambda a: a.name
)
def test_symmetric_declaration_holds(act):
    z = np.linspace(-8, 8, 161)
    np.testing.assert_allclose(act(-z), 1 - act(z), rtol=0, atol=1e-15)


@pytest.mark.parametrize("act", activations.BUILTINS, ids=lambda a: a.name)
def test_symmetric_is_declared_exactly_where_it_holds(act):
    z = np.linspace(-8, 8, 161)
    assert act.symmetric == bool(np.allclose(act(-z), 1 - act(z), rtol=0, atol=1e-12))


def test_activations_compare_by_identity():
    impostor = Activation("sigmoid", np.tanh, lambda y: 1 - y * y, derivative_from_output=True)
    same_parts = Activation(
        "sigmoid",
        activations.sigmoid.function,
        activations.sigmoid.derivative,
        derivative_from_output=True,
    )
    for other in (impostor, same_parts):
        assert other != activations.sigmoid and not (other == activations.sigmoid)
        assert other not in activations.BUILTINS
        table = {activations.sigmoid: "builtin"}
        assert other not in table and table.get(other) is None
    assert activations.get("sigmoid") is activations.sigmoid
    assert activations.sigmoid == activations.sigmoid


def test_copies_are_the_object_itself():
    import copy

    for act in activations.BUILTINS:
        assert copy.copy(act) is act and copy.deepcopy(act) is act
    assert copy.deepcopy([activations.tanh])[0] is activations.tanh


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("act", activations.BUILTINS, ids=lambda a: a.name)
def test_register_refuses_builtin_names(act, overwrite):
    impostor = Activation(act.name, np.tanh, lambda y: 1 - y * y, derivative_from_output=True)
    with pytest.raises(ValueError, match=f"{act.name!r} is the name of a built-in"):
        activations.register(impostor, overwrite=overwrite)
    assert activations.get(act.name) is act
    assert activations.register(act) is act  # re-registering the built-in itself is a no-op


def test_register_overwrites_user_names_only_when_asked():
    first = Activation("test_overwrite", np.tanh, lambda z: 1 - np.tanh(z) ** 2)
    second = Activation("test_overwrite", np.sin, np.cos)
    activations.register(first)
    try:
        with pytest.raises(ValueError, match="already registered"):
            activations.register(second)
        assert activations.get("test_overwrite") is first
        assert activations.register(second, overwrite=True) is second
        assert activations.get("test_overwrite") is second
    finally:
        activations._REGISTRY.pop("test_overwrite")


def _impostor():
    # Named like the built-in sigmoid, but a different function: never the built-in.
    return Activation(
        "sigmoid",
        lambda z: np.clip(z, 0.0, 1.0),
        lambda y: np.ones_like(y),
        derivative_from_output=True,
    )


def test_save_refuses_a_user_activation_named_like_a_builtin(tmp_path):
    import lstmkit
    from lstmkit import LSTMCell

    cell = LSTMCell(2, 3, gate_activation=_impostor(), rng=0)
    with pytest.raises(ValueError, match=r"'sigmoid'.*built-in.*under its own name"):
        lstmkit.save(cell, tmp_path / "c.npz")
    assert not list(tmp_path.iterdir())


def test_save_refuses_a_user_activation_named_like_a_registered_one(tmp_path):
    import lstmkit
    from lstmkit import LSTMCell

    mine = activations.register(
        Activation("test_saved_twice", np.tanh, lambda z: 1 - np.tanh(z) ** 2)
    )
    try:
        other = Activation("test_saved_twice", np.sin, np.cos)
        with pytest.raises(ValueError, match=r"'test_saved_twice'.*lstmkit\.activations\.register"):
            lstmkit.save(LSTMCell(2, 3, candidate_activation=other, rng=0), tmp_path / "c.npz")
        lstmkit.save(LSTMCell(2, 3, candidate_activation=mine, rng=0), tmp_path / "c.npz")
        assert lstmkit.load(tmp_path / "c.npz").candidate.activation is mine
    finally:
        activations._REGISTRY.pop("test_saved_twice")


def test_deep_copied_builtin_cell_saves_and_loads(tmp_path):
    import copy

    import lstmkit
    from lstmkit import Bidirectional, LSTMCell

    cell = copy.deepcopy(LSTMCell(2, 3, gate_activation="hard_sigmoid", rng=0))
    assert cell.forget.activation is activations.hard_sigmoid
    model = Bidirectional(cell, rng=1)  # clones the cell for the backward direction
    assert model.backward_layer.cell.forget.activation is activations.hard_sigmoid
    lstmkit.save(model, tmp_path / "m.npz")
    loaded = lstmkit.load(tmp_path / "m.npz")
    assert loaded.backward_layer.cell.forget.activation is activations.hard_sigmoid
    x = np.random.default_rng(0).standard_normal((2, 4, 2))
    np.testing.assert_array_equal(loaded(x)[0], model(x)[0])
