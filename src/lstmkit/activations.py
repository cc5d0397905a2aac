"""Activation functions and their derivatives.

An :class:`Activation` bundles an elementwise function with its derivative.
Built-in activations express the derivative through the *output* ``y = f(z)``
(``sigmoid' = y (1 - y)``, ``tanh' = 1 - y**2``), which lets a training
forward pass cache only the gate values; user-defined activations may instead
use the pre-activation ``z``.

Every built-in is numerically stable: no overflow or invalid-value warnings
and exact limits for inputs up to ``|z| = 1e4`` in float32 and float64.

Examples
--------
>>> import numpy as np
>>> from lstmkit.activations import get
>>> sig = get("sigmoid")
>>> sig(np.array([-1e4, 0.0, 1e4]))
array([0. , 0.5, 1. ])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating[Any]]

__all__ = [
    "Activation",
    "available",
    "elu",
    "get",
    "hard_sigmoid",
    "linear",
    "register",
    "relu",
    "sigmoid",
    "softplus",
    "softsign",
    "tanh",
]


@attrs.frozen(repr=False)
class Activation:
    """An elementwise nonlinearity with its derivative.

    Parameters
    ----------
    name : str
        Name used in reprs, diagrams and saved files.
    function : callable
        ``function(z) -> y``, elementwise, shape- and dtype-preserving.
    derivative : callable
        If ``derivative_from_output`` is true, ``derivative(y) -> dy/dz``
        where ``y = function(z)``; otherwise ``derivative(z) -> dy/dz``.
    derivative_from_output : bool, default False
        Whether ``derivative`` takes the output ``y`` instead of ``z``.
        User-defined activations usually leave this False.

    Examples
    --------
    >>> import numpy as np
    >>> swish = Activation("swish", lambda z: z / (1 + np.exp(-z)),
    ...                    lambda z: (1 + np.exp(-z) + z * np.exp(-z)) / (1 + np.exp(-z)) ** 2)
    >>> swish
    Activation('swish')
    """

    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    function: Callable[[Array], Array] = attrs.field(eq=False)
    derivative: Callable[[Array], Array] = attrs.field(eq=False)
    derivative_from_output: bool = False

    def __attrs_post_init__(self) -> None:
        if not callable(self.function):
            raise TypeError(
                f"function: expected a callable, received {type(self.function).__name__}"
            )
        if not callable(self.derivative):
            raise TypeError(
                f"derivative: expected a callable, received {type(self.derivative).__name__}"
            )

    def __call__(self, z: Array) -> Array:
        return self.function(z)

    def grad(self, z: Array | None, y: Array) -> Array:
        """Derivative ``dy/dz`` evaluated from ``z`` or ``y`` as this activation needs.

        Parameters
        ----------
        z : ndarray or None
            Pre-activation; may be None when ``derivative_from_output`` is true.
        y : ndarray
            Output ``function(z)``.
        """
        if self.derivative_from_output:
            return self.derivative(y)
        if z is None:
            raise ValueError(f"z: activation {self.name!r} needs the pre-activation, received None")
        return self.derivative(z)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


# --- built-in functions --------------------------------------------------------------------


def _sigmoid(z: Array) -> Array:
    # 0.5 * (1 + tanh(z / 2)) never overflows, unlike 1 / (1 + exp(-z)).
    out = np.multiply(z, 0.5)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _sigmoid_grad(y: Array) -> Array:
    return y * (1 - y)


def _tanh(z: Array) -> Array:
    return np.tanh(z)


def _tanh_grad(y: Array) -> Array:
    return 1 - y * y


def _hard_sigmoid(z: Array) -> Array:
    # Keras 2 definition: clip(0.2 z + 0.5, 0, 1).
    out = np.multiply(z, 0.2)
    out += 0.5
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _hard_sigmoid_grad(y: Array) -> Array:
    return np.where((y > 0) & (y < 1), y.dtype.type(0.2), y.dtype.type(0.0))


def _relu(z: Array) -> Array:
    return np.maximum(z, 0)


def _relu_grad(y: Array) -> Array:
    return (y > 0).astype(y.dtype)


def _linear(z: Array) -> Array:
    return np.array(z, copy=True)


def _linear_grad(y: Array) -> Array:
    return np.ones_like(y)


def _softsign(z: Array) -> Array:
    return z / (1 + np.abs(z))


def _softsign_grad(y: Array) -> Array:
    # f'(z) = 1 / (1 + |z|)^2 = (1 - |y|)^2
    d = 1 - np.abs(y)
    return d * d


def _softplus(z: Array) -> Array:
    # log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), stable for every z.
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _softplus_grad(z: Array) -> Array:
    return _sigmoid(z)


def _elu(z: Array) -> Array:
    # expm1 of min(z, 0) so positive inputs never reach exp.
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def _elu_grad(y: Array) -> Array:
    # For z <= 0, y = exp(z) - 1 so f'(z) = y + 1; for z > 0, f'(z) = 1.
    return np.where(y > 0, y.dtype.type(1.0), y + 1)


sigmoid = Activation("sigmoid", _sigmoid, _sigmoid_grad, derivative_from_output=True)
tanh = Activation("tanh", _tanh, _tanh_grad, derivative_from_output=True)
hard_sigmoid = Activation(
    "hard_sigmoid", _hard_sigmoid, _hard_sigmoid_grad, derivative_from_output=True
)
relu = Activation("relu", _relu, _relu_grad, derivative_from_output=True)
linear = Activation("linear", _linear, _linear_grad, derivative_from_output=True)
softsign = Activation("softsign", _softsign, _softsign_grad, derivative_from_output=True)
softplus = Activation("softplus", _softplus, _softplus_grad, derivative_from_output=False)
elu = Activation("elu", _elu, _elu_grad, derivative_from_output=True)

_REGISTRY: dict[str, Activation] = {
    a.name: a for a in (sigmoid, tanh, hard_sigmoid, relu, linear, softsign, softplus, elu)
}


def register(activation: Activation, *, overwrite: bool = False) -> Activation:
    """Register a user-defined activation under its name so it can be looked up and loaded.

    Parameters
    ----------
    activation : Activation
        The activation to register.
    overwrite : bool, default False
        Replace an existing registration of the same name.

    Returns
    -------
    Activation
        The registered activation (so this can be used as a one-liner).
    """
    if not isinstance(activation, Activation):
        raise TypeError(f"activation: expected an Activation, received {type(activation).__name__}")
    if (
        activation.name in _REGISTRY
        and not overwrite
        and _REGISTRY[activation.name] is not activation
    ):
        raise ValueError(
            f"activation: the name {activation.name!r} is already registered; "
            "pass overwrite=True to replace it"
        )
    _REGISTRY[activation.name] = activation
    return activation


def available() -> list[str]:
    """Names of every registered activation, sorted."""
    return sorted(_REGISTRY)


def get(activation: str | Activation, *, argument: str = "activation") -> Activation:
    """Look up an activation by name, or pass an :class:`Activation` through.

    Parameters
    ----------
    activation : str or Activation
        A registered name such as ``"sigmoid"`` or an activation object.
    argument : str, default "activation"
        The argument name used in error messages.

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the known names).
    TypeError
        If ``activation`` is neither a string nor an Activation.
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        try:
            return _REGISTRY[activation]
        except KeyError:
            raise ValueError(
                f"{argument}: unknown activation {activation!r}; expected one of "
                f"{', '.join(available())} or an Activation object"
            ) from None
    raise TypeError(
        f"{argument}: expected an activation name (str) or an Activation, "
        f"received {type(activation).__name__}"
    )
