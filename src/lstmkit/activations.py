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
    "BUILTINS",
    "Activation",
    "KernelOps",
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


@attrs.frozen(eq=False, repr=False)
class KernelOps:
    """In-place forms of an activation for one dtype, used by fused kernels.

    A fused kernel calls these on preallocated blocks instead of ``function`` and
    ``derivative``, which allocate a new array per call. Each must compute exactly what
    the activation's ``function`` and ``derivative`` compute (the test suite checks the
    built-ins' against them).

    Parameters
    ----------
    inplace : callable
        ``inplace(a)`` overwrites ``a`` with ``function(a)``.
    derivative : callable or None
        ``derivative(y, q)`` writes ``dy/dz`` into ``q`` from the output ``y``; only for
        activations with ``derivative_from_output``.
    post_affine : callable or None
        For an activation with an ``affine`` map: ``post_affine(a)`` overwrites
        ``a = scale * z + offset`` with ``function(z)``.
    into : callable or None
        ``into(src, dst)`` writes ``function(src)`` into ``dst``; by default a copy then
        ``inplace``.
    """

    inplace: Callable[[Array], None]
    derivative: Callable[[Array, Array], None] | None = None
    post_affine: Callable[[Array], None] | None = None
    into: Callable[[Array, Array], None] | None = None


@attrs.frozen(eq=False, repr=False)
class Activation:
    """An elementwise nonlinearity with its derivative.

    Activations compare by identity: two objects with the same name are different
    activations unless they are the same object. Copies (``copy.copy``,
    ``copy.deepcopy``) return the object itself, as activations are immutable.

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
    kernel : callable or None, default None
        ``kernel(dtype) -> KernelOps``: in-place forms for fused kernels (keyword only).
        Without one, a fused kernel calls ``function`` and ``derivative`` and copies.
    affine : (float, float) or None, default None
        ``(scale, offset)`` such that ``function(z) = g(scale * z + offset)`` for the
        kernel's cheaper ``post_affine`` form ``g``; a fused kernel folds the map into its
        stacked weights (keyword only).
    onnx : (str, float or None, float or None) or None, default None
        The ONNX recurrent-operator activation name with its ``alpha`` and ``beta``, when
        ONNX defines exactly this function (keyword only).
    keras : str or None, default None
        The Keras 3 activation name, when Keras defines exactly this function.
    symmetric : bool, default False
        Whether ``function(-z) = 1 - function(z)`` (sigmoid-like), which an exporter
        needs to express a coupled gate as ``1 - f``.

    Examples
    --------
    >>> import numpy as np
    >>> swish = Activation("swish", lambda z: z / (1 + np.exp(-z)),
    ...                    lambda z: (1 + np.exp(-z) + z * np.exp(-z)) / (1 + np.exp(-z)) ** 2)
    >>> swish
    Activation('swish')
    >>> swish == Activation("swish", swish.function, swish.derivative)   # identity
    False
    """

    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    function: Callable[[Array], Array] = attrs.field()
    derivative: Callable[[Array], Array] = attrs.field()
    derivative_from_output: bool = False
    kernel: Callable[[np.dtype[Any]], KernelOps] | None = attrs.field(default=None, kw_only=True)
    affine: tuple[float, float] | None = attrs.field(default=None, kw_only=True)
    onnx: tuple[str, float | None, float | None] | None = attrs.field(default=None, kw_only=True)
    keras: str | None = attrs.field(default=None, kw_only=True)
    symmetric: bool = attrs.field(default=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        for argument in ("function", "derivative"):
            value = getattr(self, argument)
            if not callable(value):
                raise TypeError(f"{argument}: expected a callable, received {type(value).__name__}")
        if self.kernel is not None and not callable(self.kernel):
            raise TypeError(f"kernel: expected a callable, received {type(self.kernel).__name__}")
        if self.affine is not None and self.kernel is None:
            raise ValueError("affine: needs a kernel with a post_affine form")

    def __call__(self, z: Array) -> Array:
        return self.function(z)

    def __copy__(self) -> Activation:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Activation:
        return self

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
    out = np.multiply(z, HARD_SIGMOID_SLOPE)
    out += HARD_SIGMOID_OFFSET
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _hard_sigmoid_grad(y: Array) -> Array:
    return np.where((y > 0) & (y < 1), y.dtype.type(HARD_SIGMOID_SLOPE), y.dtype.type(0.0))


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


# --- in-place kernel forms of the built-ins ------------------------------------------------
# Constants are 0-d arrays of the dtype, bound once per dtype: NumPy converts a Python float
# on every call, which costs more than the arithmetic on small blocks. Outputs are passed
# positionally (keyword parsing costs about 50 ns a call).

HARD_SIGMOID_SLOPE = 0.2
HARD_SIGMOID_OFFSET = 0.5


def _cached(factory: Callable[[np.dtype[Any]], KernelOps]) -> Callable[[Any], KernelOps]:
    made: dict[np.dtype[Any], KernelOps] = {}

    def kernel(dtype: Any) -> KernelOps:
        key = np.dtype(dtype)
        ops = made.get(key)
        if ops is None:
            ops = made[key] = factory(key)
        return ops

    return kernel


@_cached
def _sigmoid_kernel(dtype: np.dtype[Any]) -> KernelOps:
    half, one = np.array(0.5, dtype), np.array(1.0, dtype)

    def post_affine(a: Array) -> None:  # a = z / 2: sigmoid(z) = (1 + tanh(z / 2)) / 2
        np.tanh(a, a)
        np.multiply(a, half, a)
        np.add(a, half, a)

    def inplace(a: Array) -> None:
        np.multiply(a, half, a)
        post_affine(a)

    def derivative(y: Array, q: Array) -> None:
        np.subtract(one, y, q)
        np.multiply(q, y, q)

    return KernelOps(inplace, derivative, post_affine)


@_cached
def _tanh_kernel(dtype: np.dtype[Any]) -> KernelOps:
    one = np.array(1.0, dtype)

    def inplace(a: Array) -> None:
        np.tanh(a, a)

    def into(src: Array, dst: Array) -> None:
        np.tanh(src, dst)

    def derivative(y: Array, q: Array) -> None:
        np.multiply(y, y, q)
        np.subtract(one, q, q)

    return KernelOps(inplace, derivative, into=into)


@_cached
def _hard_sigmoid_kernel(dtype: np.dtype[Any]) -> KernelOps:
    zero, one = np.array(0.0, dtype), np.array(1.0, dtype)
    slope, offset = np.array(HARD_SIGMOID_SLOPE, dtype), np.array(HARD_SIGMOID_OFFSET, dtype)

    def post_affine(a: Array) -> None:  # maximum/minimum give clip's values with less overhead
        np.maximum(a, zero, out=a)
        np.minimum(a, one, out=a)

    def inplace(a: Array) -> None:
        np.multiply(a, slope, a)
        np.add(a, offset, a)
        post_affine(a)

    def derivative(y: Array, q: Array) -> None:
        # slope inside (0, 1), else 0. For y in [0, 1], (1 - y) y > 0 exactly when 0 < y < 1
        # (neither factor rounds to zero inside), which needs no boolean temporary.
        np.subtract(one, y, q)
        np.multiply(q, y, q)
        np.greater(q, zero, out=q, casting="unsafe")
        np.multiply(q, slope, q)

    return KernelOps(inplace, derivative, post_affine)


sigmoid = Activation(
    "sigmoid",
    _sigmoid,
    _sigmoid_grad,
    derivative_from_output=True,
    kernel=_sigmoid_kernel,
    affine=(0.5, 0.0),
    onnx=("Sigmoid", None, None),
    keras="sigmoid",
    symmetric=True,
)
tanh = Activation(
    "tanh",
    _tanh,
    _tanh_grad,
    derivative_from_output=True,
    kernel=_tanh_kernel,
    onnx=("Tanh", None, None),
    keras="tanh",
)
# Keras 3's hard_sigmoid is relu6(x + 3) / 6, a different function: no Keras name.
hard_sigmoid = Activation(
    "hard_sigmoid",
    _hard_sigmoid,
    _hard_sigmoid_grad,
    derivative_from_output=True,
    kernel=_hard_sigmoid_kernel,
    affine=(HARD_SIGMOID_SLOPE, HARD_SIGMOID_OFFSET),
    onnx=("HardSigmoid", HARD_SIGMOID_SLOPE, HARD_SIGMOID_OFFSET),
    symmetric=True,
)
relu = Activation(
    "relu", _relu, _relu_grad, derivative_from_output=True, onnx=("Relu", None, None), keras="relu"
)
linear = Activation(
    "linear",
    _linear,
    _linear_grad,
    derivative_from_output=True,
    onnx=("Affine", 1.0, 0.0),
    keras="linear",
)
softsign = Activation(
    "softsign",
    _softsign,
    _softsign_grad,
    derivative_from_output=True,
    onnx=("Softsign", None, None),
    keras="softsign",
)
softplus = Activation(
    "softplus",
    _softplus,
    _softplus_grad,
    derivative_from_output=False,
    onnx=("Softplus", None, None),
    keras="softplus",
)
elu = Activation(
    "elu",
    _elu,
    _elu_grad,
    derivative_from_output=True,
    onnx=("Elu", 1.0, None),
    keras="elu",
)

BUILTINS: tuple[Activation, ...] = (
    sigmoid,
    tanh,
    hard_sigmoid,
    relu,
    linear,
    softsign,
    softplus,
    elu,
)
_REGISTRY: dict[str, Activation] = {a.name: a for a in BUILTINS}


def register(activation: Activation, *, overwrite: bool = False) -> Activation:
    """Register a user-defined activation under its name so it can be looked up and loaded.

    The names of the built-ins (:data:`BUILTINS`) cannot be taken: fused kernels and
    exporters recognise a built-in by the object itself, and a saved file naming
    ``"sigmoid"`` must always mean the built-in sigmoid. Give your activation its own name.

    Parameters
    ----------
    activation : Activation
        The activation to register.
    overwrite : bool, default False
        Replace an existing user registration of the same name.

    Returns
    -------
    Activation
        The registered activation (so this can be used as a one-liner).

    Raises
    ------
    ValueError
        The name is a built-in's, or already registered to another object without
        ``overwrite``.
    """
    if not isinstance(activation, Activation):
        raise TypeError(f"activation: expected an Activation, received {type(activation).__name__}")
    current = _REGISTRY.get(activation.name)
    if current is activation:
        return activation
    if any(activation.name == b.name for b in BUILTINS):
        raise ValueError(
            f"activation: {activation.name!r} is the name of a built-in activation and cannot be "
            "replaced; register yours under its own name"
        )
    if current is not None and not overwrite:
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
