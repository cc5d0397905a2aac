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
