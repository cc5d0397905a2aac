"""One gate: a learned affine map of the input and the previous hidden state, then an activation.

Olah writes a gate as ``sigma(W_f . [h_{t-1}, x_t] + b_f)`` with one matrix
over the concatenation. lstmkit splits that matrix into input weights ``W``
(``input x hidden``) and recurrent weights ``U`` (``hidden x hidden``) and uses
row vectors::

    z = x @ W + h @ U + b   (+ c * p with a peephole)
    y = activation(z)

It is the same map (``[h, x] @ [[U], [W]] = h @ U + x @ W``), and splitting it
is what lets a runner project the inputs of a whole sequence in one product.

Examples
--------
>>> import numpy as np
>>> from lstmkit import Gate
>>> gate = Gate(3, 5, activation="sigmoid", rng=0)
>>> gate(np.ones((2, 3)), np.zeros((2, 5))).shape
(2, 5)
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import DTypeLike, NDArray

from lstmkit import activations, config, initializers
from lstmkit._hoisting import HOISTED, deferred_gate_backward, hoisted_affine
from lstmkit._tracing import RECORDER
from lstmkit.activations import Activation
from lstmkit.initializers import Initializer, as_rng
from lstmkit.module import Module, Parameter, accumulates_gradients, check_dtype, component

__all__ = ["Gate", "GateCache"]

Array = NDArray[Any]


def positive_int(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{attribute.name}: expected a positive integer, received {value!r}")


@attrs.frozen(eq=False)
class GateCache:
    """What :meth:`Gate.backward` needs from a training forward pass."""

    x: Array
    h: Array
    c: Array | None
    z: Array | None
    y: Array


_INIT_KEYS = (
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "peephole_initializer",
)


@config.configurable()
@component
class Gate(Module):
    """A gate: ``activation(x @ W + h @ U + b [+ c * p])``.

    Parameters
    ----------
    input_size : int
        Features of ``x``.
    hidden_size : int
        Units of the gate (features of ``h`` and of the output).
    activation : str or Activation, default "sigmoid"
        The nonlinearity, by name or object.
    peephole : bool, default False
        Add a diagonal peephole ``p`` so the gate also sees a cell state ``c``.
    recurrent_size : int, optional
        Features of the recurrent input ``h`` (keyword only); defaults to ``hidden_size``.
        A projection LSTM (LSTMP) feeds back a smaller projected ``h``.
    kernel_initializer, recurrent_initializer, bias_initializer, peephole_initializer
        Initializers for ``W``, ``U``, ``b`` and ``p`` (names or callables).
    dtype : float32 or float64, default float64
    rng : numpy.random.Generator or int or None
        Source of randomness for the initial weights.

    Attributes
    ----------
    W : Parameter, shape (input_size, hidden_size)
    U : Parameter, shape (recurrent_size, hidden_size)
    b : Parameter, shape (hidden_size,)
    p : Parameter or None, shape (hidden_size,)
        Diagonal peephole weights, present when ``peephole`` is true.
    """

    input_size: int = attrs.field(validator=positive_int)
    hidden_size: int = attrs.field(validator=positive_int)
    activation: Activation = attrs.field(
        default=activations.sigmoid,
        converter=activations.get,
    )
    peephole: bool = attrs.field(default=False, kw_only=True)
    recurrent_size: int | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(positive_int),
    )
    kernel_initializer: Initializer = attrs.field(
        default=initializers.GlorotUniform(),
        kw_only=True,
        converter=initializers.get,
    )
    recurrent_initializer: Initializer = attrs.field(
        default=initializers.Orthogonal(),
        kw_only=True,
        converter=initializers.get,
    )
    bias_initializer: Initializer = attrs.field(
        default=initializers.Zeros(),
        kw_only=True,
        converter=initializers.get,
    )
    peephole_initializer: Initializer = attrs.field(
        default=initializers.Zeros(),
        kw_only=True,
        converter=initializers.get,
    )
    dtype: np.dtype[Any] = attrs.field(default=np.float64, kw_only=True, converter=check_dtype)
    rng: Any = attrs.field(default=None, kw_only=True, repr=False)
    W: Parameter = attrs.field(init=False)
    U: Parameter = attrs.field(init=False)
    b: Parameter = attrs.field(init=False)
    p: Parameter | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        rng = as_rng(self.rng)
        # The generator is only needed to draw the initial weights; dropping it keeps the
        # gate free of hidden random state.
        self.rng = None
        if self.recurrent_size is None:
            self.recurrent_size = self.hidden_size
        n_in, n_h, n_r, dt = self.input_size, self.hidden_size, self.recurrent_size, self.dtype
        self.W = Parameter(self._draw(self.kernel_initializer, (n_in, n_h), rng, dt, "W"))
        self.U = Parameter(self._draw(self.recurrent_initializer, (n_r, n_h), rng, dt, "U"))
        self.b = Parameter(self._draw(self.bias_initializer, (n_h,), rng, dt, "b"))
        if self.peephole:
            self.p = Parameter(self._draw(self.peephole_initializer, (n_h,), rng, dt, "p"))

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw fresh weights from the gate's initializers (gradients are zeroed)."""
        gen = as_rng(rng)
        n_in, n_h, n_r, dt = self.input_size, self.hidden_size, self.U.shape[0], self.dtype
        new = {
            "W": self._draw(self.kernel_initializer, (n_in, n_h), gen, dt, "W"),
            "U": self._draw(self.recurrent_initializer, (n_r, n_h), gen, dt, "U"),
            "b": self._draw(self.bias_initializer, (n_h,), gen, dt, "b"),
        }
        if self.p is not None:
            new["p"] = self._draw(self.peephole_initializer, (n_h,), gen, dt, "p")
        for name, value in new.items():
            setattr(self, name, Parameter(value))

    @staticmethod
    def _draw(
        init: Initializer,
        shape: tuple[int, ...],
        rng: np.random.Generator,
        dtype: DTypeLike,
        name: str,
    ) -> Array:
        value = np.asarray(init(shape, rng, dtype))
        if value.shape != shape:
            raise ValueError(f"{name}: initializer returned shape {value.shape}, expected {shape}")
        return value.astype(dtype, copy=False)

    # -- setting weights ------------------------------------------------------------------------

    def set_weights(
        self,
        W: Array | None = None,
        U: Array | None = None,
        b: Array | None = None,
        p: Array | None = None,
    ) -> None:
        """Replace some of the weights, checking every shape and dtype before changing any.

        Raises
        ------
        ValueError
            A shape differs from the current one, or ``p`` is given to a gate without a peephole.
        TypeError
            A value is not an ndarray of the gate's dtype.
        """
        updates: dict[str, Array] = {}
        for name, value in (("W", W), ("U", U), ("b", b), ("p", p)):
            if value is None:
                continue
            param = getattr(self, name)
            if param is None:
                raise ValueError(f"{name}: this gate has no peephole; build it with peephole=True")
            updates[name] = param.check(value, argument=name)
        for name, value in updates.items():
            getattr(self, name).value = np.array(value, copy=True)

    # -- forward --------------------------------------------------------------------------------

    def preactivation(self, x: Array, h: Array, c: Array | None = None) -> Array:
        """``z = x @ W + h @ U + b``, plus ``c * p`` for a peephole gate.

        Parameters
        ----------
        x : ndarray, shape (batch, input_size)
        h : ndarray, shape (batch, recurrent_size)
        c : ndarray, shape (batch, hidden_size), optional
            Cell state seen through the peephole (ignored without one).
        """
        # --8<-- [start:gate]
        z = x @ self.W.value + h @ self.U.value + self.b.value
        if self.p is not None:
            z = z + c * self.p.value
        # --8<-- [end:gate]
        return z

    def _hoisted_preactivation(self, x: Array, h: Array, c: Array | None) -> Array:
        # A runner may have computed x @ W for the whole sequence before its loop
        # (lstmkit._hoisting); it does so only for gates of exactly this class, so a subclass's
        # own preactivation always runs.
        affine = hoisted_affine(self, x, h)
        if affine is None:
            return self.preactivation(x, h, c)
        z = affine + self.b.value  # (x @ W + h @ U) + b: the order of preactivation's sum
        if self.p is not None:
            z = z + c * self.p.value
        return z

    def _check_inputs(self, x: Any, h: Any, c: Any) -> None:
        # Shape checks only (a few comparisons), so a direct call with a wrong array names it
        # instead of failing deep inside a matrix product.
        for name, arr, size in (("x", x, self.input_size), ("h", h, self.recurrent_size)):
            shape = getattr(arr, "shape", None)
            if shape is None or len(shape) != 2 or shape[1] != size:
                got = shape if shape is not None else type(arr).__name__
                raise ValueError(f"{name}: expected shape (batch, {size}), received {got}")
        if h.shape[0] != x.shape[0]:
            raise ValueError(f"h: expected batch size {x.shape[0]} like x, received {h.shape[0]}")
        if self.p is not None:
            if c is None:
                raise ValueError("c: this peephole gate needs the cell state, received None")
            if getattr(c, "shape", None) != (x.shape[0], self.hidden_size):
                raise ValueError(
                    f"c: expected shape ({x.shape[0]}, {self.hidden_size}), "
                    f"received {getattr(c, 'shape', type(c).__name__)}"
                )

    def __call__(self, x: Array, h: Array, c: Array | None = None) -> Array:
        """The gate's value ``activation(preactivation(x, h, c))``, shape (batch, hidden_size)."""
        self._check_inputs(x, h, c)
        if HOISTED.get() is None:  # one context-variable read when nothing is hoisted
            z = self.preactivation(x, h, c)
        else:
            z = self._hoisted_preactivation(x, h, c)
        y = self.activation(z)
        recorder = RECORDER.get()  # lstmkit.trace: one context-variable read when off
        if recorder is not None:
            recorder.gate(self, z, y)
        return y

    def forward_train(self, x: Array, h: Array, c: Array | None = None) -> tuple[Array, GateCache]:
        """Like calling the gate, but also return the cache :meth:`backward` needs."""
        self._check_inputs(x, h, c)
        if HOISTED.get() is None:  # one context-variable read when nothing is hoisted
            z = self.preactivation(x, h, c)
        else:
            z = self._hoisted_preactivation(x, h, c)
        y = self.activation(z)
        recorder = RECORDER.get()
        if recorder is not None:
            recorder.gate(self, z, y)
        keep_z = None if self.activation.derivative_from_output else z
        return y, GateCache(x=x, h=h, c=c if self.p is not None else None, z=keep_z, y=y)

    # -- backward -------------------------------------------------------------------------------

    @accumulates_gradients
    def backward(self, dy: Array, cache: GateCache) -> tuple[Array, Array, Array | None]:
        """Back-propagate ``dy = dL/dy`` through the gate.

        Accumulates into ``W.grad``, ``U.grad``, ``b.grad`` (and ``p.grad``), holding
        :data:`lstmkit.module.GRADIENT_LOCK`, and returns ``(dx, dh, dc)``; ``dc`` is None for
        a gate without a peephole. The cache holds the arrays given to :meth:`forward_train`
        (no copies): leave them unchanged until this call.
        """
        dz = dy * self.activation.grad(cache.z, cache.y)
        hoisted = HOISTED.get()
        dh = (
            None if hoisted is None else deferred_gate_backward(hoisted, self, cache.x, cache.h, dz)
        )
        if dh is None:
            self.W.grad += cache.x.T @ dz
            self.U.grad += cache.h.T @ dz
            self.b.grad += dz.sum(axis=0)
            dx = dz @ self.W.value.T
            dh = dz @ self.U.value.T
        else:
            # A runner hoisted this gate: it adds dz @ W.T to dx and the products of W.grad,
            # U.grad and b.grad for the whole sequence at once (lstmkit._hoisting); this step's
            # share of dx is zero.
            dx = np.zeros_like(cache.x)
        dc = None
        if self.p is not None:
            assert cache.c is not None  # a peephole gate's forward always keeps c
            self.p.grad += (dz * cache.c).sum(axis=0)
            dc = dz * self.p.value
        return dx, dh, dc

    def describe(self) -> str:
        peep = ", peephole" if self.p is not None else ""
        return (
            f"Gate({self.activation.name}, W {self.W.shape}, U {self.U.shape}, "
            f"b {self.b.shape}{peep}, {self.dtype})"
        )

    # -- configuration --------------------------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """Sizes, activation, peephole flag, initializers and dtype (see :mod:`lstmkit.config`)."""
        return {
            "input_size": int(self.input_size),
            "hidden_size": int(self.hidden_size),
            "recurrent_size": int(self.U.shape[0]),
            "activation": config.activation_name(self.activation),
            "peephole": self.p is not None,
            **{key: config.initializer_config(getattr(self, key)) for key in _INIT_KEYS},
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> Gate:
        """A fresh gate from :meth:`to_config` output, its sizes checked against the file first."""
        keys = ["input_size", "hidden_size", "recurrent_size", "activation", "peephole"]
        ctx.check_keys(cfg, [*keys, *_INIT_KEYS, "dtype"])
        n_in, n_h, n_r = (ctx.int(cfg, key) for key in keys[:3])
        dtype = ctx.dtype(cfg)
        peephole = ctx.bool(cfg, "peephole")
        ctx.expect("W", (n_in, n_h), dtype)
        ctx.expect("U", (n_r, n_h), dtype)
        ctx.expect("b", (n_h,), dtype)
        if peephole:
            ctx.expect("p", (n_h,), dtype)
        return cls(
            n_in,
            n_h,
            activation=ctx.activation(cfg, "activation"),
            peephole=peephole,
            recurrent_size=n_r,
            dtype=dtype,
            rng=ctx.rng,
            **{key: ctx.initializer(cfg, key) for key in _INIT_KEYS},
        )
