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
    "get",
    "name_of",
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


def available() -> list[str]:
    """Names of every built-in initializer, sorted."""
    return sorted(_REGISTRY)


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
