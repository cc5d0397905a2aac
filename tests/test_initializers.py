"""Initializers: shapes, dtypes, the statistics each promises, determinism from explicit rngs."""

import math

import numpy as np
import pytest

from lstmkit import initializers
from lstmkit.initializers import as_rng


@pytest.mark.parametrize("name", initializers.available())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shape_dtype_and_determinism(name, dtype):
    init = initializers.get(name)
    a = init((6, 4), np.random.default_rng(3), dtype)
    b = init((6, 4), np.random.default_rng(3), dtype)
    assert a.shape == (6, 4) and a.dtype == dtype
    np.testing.assert_array_equal(a, b)


def test_glorot_uniform_bound_and_variance():
    w = initializers.get("glorot_uniform")((300, 200), np.random.default_rng(0), np.float64)
    limit = math.sqrt(6 / 500)
    assert np.abs(w).max() <= limit
    assert w.var() == pytest.approx(limit**2 / 3, rel=0.03)


@pytest.mark.parametrize(
    "name, std",
    [
        ("glorot_normal", math.sqrt(2 / 500)),
        ("he_normal", math.sqrt(2 / 300)),
        ("lecun_normal", math.sqrt(1 / 300)),
    ],
)
def test_normal_families_have_the_promised_std(name, std):
    w = initializers.get(name)((300, 200), np.random.default_rng(1), np.float64)
    assert w.std() == pytest.approx(std, rel=0.03)


def test_he_uniform_bound():
    w = initializers.get("he_uniform")((300, 200), np.random.default_rng(0), np.float64)
    assert np.abs(w).max() <= math.sqrt(6 / 300)


@pytest.mark.parametrize("shape", [(5, 5), (8, 3), (3, 8)])
def test_orthogonal_is_orthogonal_with_gain(shape):
    q = initializers.Orthogonal(gain=2.0)(shape, np.random.default_rng(0), np.float64)
    small = min(shape)
    gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-12)


def test_constant_zeros_ones():
    assert np.all(initializers.get("zeros")((2, 2), None, np.float64) == 0)
    assert np.all(initializers.get("ones")((2, 2), None, np.float64) == 1)
    assert np.all(initializers.Constant(0.25)((3,), None, np.float32) == np.float32(0.25))


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="unknown initializer 'glorot'.*glorot_uniform"):
        initializers.get("glorot")


def test_callable_passes_through():
    def mine(shape, rng, dtype):
        return np.full(shape, 7.0, dtype)

    assert initializers.get(mine) is mine


def test_as_rng_accepts_seeds_and_generators_only():
    g = np.random.default_rng(1)
    assert as_rng(g) is g
    assert isinstance(as_rng(5), np.random.Generator)
    with pytest.raises(TypeError, match="rng: expected"):
        as_rng("seed")
    with pytest.raises(ValueError, match="rng: expected a non-negative seed"):
        as_rng(-1)


def test_global_random_state_untouched():
    before = np.random.get_state()[1].copy()
    for name in initializers.available():
        initializers.get(name)((4, 4), as_rng(0), np.float64)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
