"""``Dense``: the fully connected layer ``activation(x @ W + b)`` on the last axis."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import activations, config, initializers
from lstmkit.activations import Activation
from lstmkit.initializers import as_rng
from lstmkit.layers._checks import check_grad, check_input
from lstmkit.module import (
    Module,
    Parameter,
    accumulates_gradients,
    check_dtype,
    check_weights_since,
    component,
    weights_clock,
)
from lstmkit.runners._aliasing import private

__all__ = ["Dense", "DenseCache"]

Array = NDArray[Any]

_INIT_KEYS = ("kernel_initializer", "bias_initializer")


@attrs.define(eq=False)
class DenseCache:
    """Training cache of :meth:`Dense.forward`."""

    layer: Any
    x: Array
    z: Array | None
    y: Array
    clock: int  # the weights clock when forward read the weights (see lstmkit.module)
    used: bool = False


@config.configurable()
@component
class Dense(Module):
    """Fully connected layer ``activation(x @ W + b)`` on the last axis of any array.

    Parameters
    ----------
    input_size : int
    output_size : int
    activation : str or Activation, default "linear"
    kernel_initializer : str or callable, default "glorot_uniform"
    bias_initializer : str or callable, default "zeros"
    dtype : float32 or float64, default float64
    rng : numpy.random.Generator or int or None

    Attributes
    ----------
    W : Parameter, shape (input_size, output_size)
    b : Parameter, shape (output_size,)
    """

    input_size: int = attrs.field()
    output_size: int = attrs.field()
    activation: Activation = attrs.field(default=activations.linear, converter=activations.get)
    kernel_initializer: Any = attrs.field(default="glorot_uniform", kw_only=True, repr=False)
    bias_initializer: Any = attrs.field(default="zeros", kw_only=True, repr=False)
    dtype: np.dtype[Any] = attrs.field(default=np.float64, kw_only=True, converter=check_dtype)
    rng: Any = attrs.field(default=None, kw_only=True, repr=False)
    W: Parameter = attrs.field(init=False)
    b: Parameter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        for name in ("input_size", "output_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, received {v!r}")
        rng, self.rng = self.rng, None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw fresh ``W`` and ``b`` from the layer's initializers (gradients are zeroed)."""
        gen = as_rng(rng)
        kernel = initializers.get(self.kernel_initializer, argument="kernel_initializer")
        bias = initializers.get(self.bias_initializer, argument="bias_initializer")
        shape = (int(self.input_size), int(self.output_size))
        W = np.asarray(kernel(shape, gen, self.dtype), dtype=self.dtype)
        b = np.asarray(bias((shape[1],), gen, self.dtype), dtype=self.dtype)
        self.W, self.b = Parameter(W), Parameter(b)

    def __call__(self, x: Array, lengths: Any = None) -> Array:
        """Inference. ``x`` has shape ``(..., input_size)``; returns ``(..., output_size)``."""
        x = check_input(x, self.input_size, self.dtype)
        return self.activation(x @ self.W.value + self.b.value)

    def forward(
        self, x: Array, lengths: Any = None, *, training: bool = True, rng: Any = None
    ) -> tuple[Array, DenseCache]:
        """Training forward: returns ``(y, cache)``.

        The cache keeps copies of ``x`` (when it is the caller's array) and of ``y`` (when the
        activation's derivative is computed from it), so editing either in place before
        :meth:`backward` changes no gradient.
        """
        return self._forward(x, copy_input=True)

    def _forward(self, x: Any, *, copy_input: bool) -> tuple[Array, DenseCache]:
        """:meth:`forward`; ``copy_input=False`` is for a container passing an array of its own,
        which no caller can reach (the cache then keeps it as it is)."""
        clock = weights_clock()
        given = x
        x = check_input(x, self.input_size, self.dtype)
        z = x @ self.W.value + self.b.value
        y = self.activation(z)
        kept_x = private(x, given) if copy_input else x
        if self.activation.derivative_from_output:
            keep_z = None
            # The derivative reads y, which the caller gets: keep a copy (linear's reads only
            # its shape).
            kept_y = y if self.activation is activations.linear else y.copy()
        else:
            keep_z = private(z, y)  # an activation may return z itself
            kept_y = y  # its shape only
        return y, DenseCache(self, kept_x, keep_z, kept_y, clock)

    @accumulates_gradients
    def backward(self, cache: DenseCache, dy: Array) -> Array:
        """Accumulate ``dW``, ``db``; return ``dx`` shaped like the input.

        Raises
        ------
        ValueError
            ``W`` or ``b`` was replaced since :meth:`forward`; nothing is accumulated.
        """
        if not isinstance(cache, DenseCache) or cache.layer is not self:
            raise TypeError(
                f"cache: expected the DenseCache from this layer's forward(), received {type(cache).__name__}"
            )
        if cache.used:
            raise ValueError("cache: backward was already run on this cache; run forward again")
        check_weights_since(self, cache.clock)
        dy = check_grad(dy, cache.y.shape).astype(self.dtype, copy=False)
        dz = dy * self.activation.grad(cache.z, cache.y)
        x2 = cache.x.reshape(-1, self.input_size)
        dz2 = dz.reshape(-1, self.output_size)
        self.W.grad += x2.T @ dz2
        self.b.grad += dz2.sum(axis=0)
        cache.used = True
        return dz @ self.W.value.T

    # -- configuration (see lstmkit.config) ------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """Sizes, activation, initializers and dtype."""
        return {
            "input_size": int(self.input_size),
            "output_size": int(self.output_size),
            "activation": config.activation_name(self.activation),
            **{
                key: config.initializer_config(initializers.get(getattr(self, key)))
                for key in _INIT_KEYS
            },
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> Dense:
        """A fresh layer from :meth:`to_config` output, its sizes checked against the file first."""
        ctx.check_keys(cfg, ["input_size", "output_size", "activation", *_INIT_KEYS, "dtype"])
        n_in, n_out, dtype = ctx.int(cfg, "input_size"), ctx.int(cfg, "output_size"), ctx.dtype(cfg)
        ctx.expect("W", (n_in, n_out), dtype)
        ctx.expect("b", (n_out,), dtype)
        return cls(
            n_in,
            n_out,
            activation=ctx.activation(cfg, "activation"),
            dtype=dtype,
            rng=ctx.rng,
            **{key: ctx.initializer(cfg, key) for key in _INIT_KEYS},
        )

    def describe(self) -> str:
        return f"Dense(input={self.input_size}, output={self.output_size}, {self.activation.name})"
