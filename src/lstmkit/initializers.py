"""Weight initializers.

An initializer is a callable ``(shape, rng, dtype) -> ndarray``. Built-ins are
small frozen classes so that they have readable reprs, compare equal when their
settings do, and can be saved by name. Fans follow the row-vector convention of
lstmkit: a weight of shape ``(fan_in, fan_out)`` maps ``x @ W``.

Examples
--------
>>> import numpy as np
>>> from lstmkit.initializers import get
>>> init = get("orthogonal")
>>> q = init((4, 4), np.random.default_rng(0), np.float64)
>>> bool(np.allclose(q.T @ q, np.eye(4)))
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Initializer",
    "LecunNormal",
    "Normal",
    "Ones",
    "Orthogonal",
    "Uniform",
    "Zeros",
    "as_rng",
    "available",
    "builtin_names",
    "get",
    "name_of",
    "register",
    "registered_name",
]

Shape = tuple[int, ...]


class Initializer(Protocol):
    """Anything callable as ``init(shape, rng, dtype) -> ndarray``."""

    def __call__(
        self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike
    ) -> NDArray[Any]: ...


def as_rng(rng: np.random.Generator | int | None, *, argument: str = "rng") -> np.random.Generator:
    """Turn ``rng`` (a Generator, an int seed or None) into a Generator.

    ``None`` gives a fresh, unseeded Generator; NumPy's global random state is
    never used.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"{argument}: expected a non-negative seed, received {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{argument}: expected a numpy.random.Generator, an int seed or None, "
        f"received {type(rng).__name__}"
    )


def _fans(shape: Shape) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


@attrs.frozen
class Zeros:
    """All zeros."""

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        return np.zeros(shape, dtype=dtype)


@attrs.frozen
class Ones:
    """All ones."""

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        return np.ones(shape, dtype=dtype)


@attrs.frozen
class Constant:
    """Every entry equal to ``value``."""

    value: float = 0.0

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        return np.full(shape, self.value, dtype=dtype)


@attrs.frozen
class Normal:
    """Normal distribution with the given ``mean`` and ``std``."""

    mean: float = 0.0
    std: float = 0.05

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        return rng.normal(self.mean, self.std, size=shape).astype(dtype)


@attrs.frozen
class Uniform:
    """Uniform distribution on ``[low, high)``."""

    low: float = -0.05
    high: float = 0.05

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        return rng.uniform(self.low, self.high, size=shape).astype(dtype)


@attrs.frozen
class GlorotUniform:
    """Glorot/Xavier uniform: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""

    gain: float = 1.0

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        fan_in, fan_out = _fans(shape)
        limit = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(dtype)


@attrs.frozen
class GlorotNormal:
    """Glorot/Xavier normal: ``N(0, gain**2 * 2 / (fan_in + fan_out))``."""

    gain: float = 1.0

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        fan_in, fan_out = _fans(shape)
        std = self.gain * math.sqrt(2.0 / (fan_in + fan_out))
        return rng.normal(0.0, std, size=shape).astype(dtype)


@attrs.frozen
class HeUniform:
    """He uniform: ``U(-a, a)`` with ``a = sqrt(6 / fan_in)``."""

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        fan_in, _ = _fans(shape)
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape).astype(dtype)


@attrs.frozen
class HeNormal:
    """He normal: ``N(0, 2 / fan_in)``."""

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        fan_in, _ = _fans(shape)
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape).astype(dtype)


@attrs.frozen
class LecunNormal:
    """LeCun normal: ``N(0, 1 / fan_in)``."""

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        fan_in, _ = _fans(shape)
        return rng.normal(0.0, math.sqrt(1.0 / fan_in), size=shape).astype(dtype)


@attrs.frozen
class Orthogonal:
    """(Semi-)orthogonal matrix scaled by ``gain`` (Saxe et al. 2014).

    Draws a Gaussian matrix and takes the Q factor of its QR decomposition, with
    the signs fixed so the distribution is uniform (Haar).
    """

    gain: float = 1.0

    def __call__(self, shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> NDArray[Any]:
        if len(shape) < 2:
            raise ValueError(f"shape: orthogonal needs at least 2 dimensions, received {shape}")
        rows = math.prod(shape[:-1])
        cols = shape[-1]
        a = rng.normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).astype(dtype)


_REGISTRY: dict[str, Callable[[], Any]] = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "normal": Normal,
    "uniform": Uniform,
    "glorot_uniform": GlorotUniform,
    "xavier_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "xavier_normal": GlorotNormal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal,
}


# Initializers users registered by name: the objects themselves (not classes to instantiate).
_USER: dict[str, Initializer] = {}


def register(name: str, initializer: Initializer, *, overwrite: bool = False) -> Initializer:
    """Register a user-defined initializer under ``name``.

    A registered initializer is usable by name everywhere: in constructors
    (``LSTMCell(..., bias_initializer=name)``) and in saved files, which store it by that
    name. Built-in names cannot be taken. Returns ``initializer``.

    Raises
    ------
    ValueError
        ``name`` is a built-in's, or registered to another object without ``overwrite``.
    TypeError
        ``name`` is not a non-empty str or ``initializer`` is not callable.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str, received {name!r}")
    if not callable(initializer):
        raise TypeError(f"initializer: expected a callable, received {type(initializer).__name__}")
    if name in _REGISTRY:
        raise ValueError(f"name: {name!r} is a built-in initializer")
    if name in _USER and _USER[name] is not initializer and not overwrite:
        raise ValueError(f"name: {name!r} is already registered; pass overwrite=True to replace it")
    _USER[name] = initializer
    return initializer


def registered_name(initializer: Initializer) -> str | None:
    """The name ``initializer`` is registered under (built-in class or user object), or None."""
    for name, cls in _REGISTRY.items():
        if type(initializer) is cls:
            return name
    for name, user in _USER.items():
        if user is initializer:
            return name
    return None


def builtin_names() -> list[str]:
    """Names of the built-in initializers, sorted."""
    return sorted(_REGISTRY)


def available() -> list[str]:
    """Names of every built-in and registered initializer, sorted."""
    return sorted({*_REGISTRY, *_USER})


def get(initializer: str | Initializer, *, argument: str = "initializer") -> Initializer:
    """Look up an initializer by name, or pass a callable through.

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the known names).
    TypeError
        If ``initializer`` is neither a string nor callable.
    """
    if isinstance(initializer, str):
        if initializer in _USER:
            return _USER[initializer]
        try:
            return _REGISTRY[initializer]()
        except KeyError:
            raise ValueError(
                f"{argument}: unknown initializer {initializer!r}; expected one of "
                f"{', '.join(available())} or a callable (shape, rng, dtype) -> array"
            ) from None
    if callable(initializer):
        return initializer
    raise TypeError(
        f"{argument}: expected an initializer name (str) or a callable, "
        f"received {type(initializer).__name__}"
    )


def name_of(initializer: Initializer) -> str:
    """A short name for ``initializer`` (its class name in snake case) for reprs and diagrams."""
    for name, cls in _REGISTRY.items():
        if type(initializer) is cls:
            return name
    return getattr(initializer, "__name__", type(initializer).__name__)
