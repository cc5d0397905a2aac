"""A convolutional gate: the affine maps of :class:`~lstmkit.Gate` replaced by convolutions.

Where a :class:`~lstmkit.Gate` computes ``activation(x @ W + h @ U + b)`` on vectors, a
:class:`ConvGate` works on feature maps, channels last::

    z = conv(x, W) + conv_same(h, U) + b
    y = activation(z)

``x`` has shape ``(batch, *spatial, input_channels)`` and ``h`` ``(batch, *out_spatial,
filters)``, with 1, 2 or 3 spatial axes. What is supported, as in Keras' ``ConvLSTM1D/2D/3D``:

* ``kernel_size``: one size per spatial axis, shared by both convolutions;
* the input convolution: ``padding`` ``"same"`` (keeps the spatial shape) or ``"valid"`` (no
  padding: each axis shrinks by ``dilation * (k - 1)``), ``dilation`` per axis, stride 1;
* the recurrent convolution: always ``"same"``, stride 1, no dilation (so the state keeps the
  shape of the input convolution's output);
* the weights in Keras' layout, ``W (*kernel_size, input_channels, filters)``,
  ``U (*kernel_size, filters, filters)``, ``b (filters,)``; no peephole.

The gate has the methods a cell's step uses on a :class:`~lstmkit.Gate` (``__call__``,
``forward_train`` and ``backward``, with the same ``c`` argument and ``(dx, dh, dc)`` result),
so :func:`lstmkit.cells.lstm.lstm_step_train` runs it unchanged: that is how
:class:`~lstmkit.ConvLSTMCell` reuses the LSTM's step.

Examples
--------
>>> import numpy as np
>>> from lstmkit import ConvGate
>>> gate = ConvGate(2, 4, kernel_size=(3, 3), rng=0)
>>> gate(np.ones((1, 5, 6, 2)), np.zeros((1, 5, 6, 4))).shape
(1, 5, 6, 4)
>>> gate.W.shape, gate.U.shape
((3, 3, 2, 4), (3, 3, 4, 4))
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import activations, config, initializers
from lstmkit.activations import Activation
from lstmkit.convolution import (
    PADDINGS,
    input_gradient,
    kernel_gradient,
    output_spatial_shape,
    padding_amounts,
    patches,
)
from lstmkit.gate import Gate, positive_int
from lstmkit.initializers import Initializer, as_rng
from lstmkit.module import Module, Parameter, accumulates_gradients, check_dtype, component

__all__ = ["ConvGate", "ConvGateCache", "as_size_tuple"]

Array = NDArray[Any]

_INIT_KEYS = ("kernel_initializer", "recurrent_initializer", "bias_initializer")


def as_size_tuple(value: Any, rank: int, argument: str) -> tuple[int, ...]:
    """``value`` (an int or one int per spatial axis) as a tuple of ``rank`` positive ints."""
    items = (value,) * rank if isinstance(value, (int, np.integer)) else value
    if (
        not isinstance(items, (tuple, list))
        or len(items) != rank
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in items)
    ):
        raise ValueError(
            f"{argument}: expected a positive integer or {rank} of them (one per spatial axis), "
            f"received {value!r}"
        )
    return tuple(int(v) for v in items)


def _kernel_size(value: Any) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        raise ValueError(
            f"kernel_size: expected one size per spatial axis, e.g. (3,) or (3, 3), received "
            f"{value!r}"
        )
    rank = len(value) if isinstance(value, (tuple, list)) else 0
    if rank not in (1, 2, 3):
        raise ValueError(
            f"kernel_size: expected a tuple of 1 to 3 positive integers, received {value!r}"
        )
    return as_size_tuple(value, rank, "kernel_size")


def _check_padding(instance: Any, attribute: Any, value: Any) -> None:
    if value not in PADDINGS:
        raise ValueError(f"padding: expected one of {', '.join(PADDINGS)}, received {value!r}")


@attrs.frozen(eq=False)
class ConvGateCache:
    """What :meth:`ConvGate.backward` needs from :meth:`ConvGate.forward_train`."""

    x: Array
    h: Array
    z: Array | None
    y: Array


@config.configurable()
@component
class ConvGate(Module):
    """A gate on feature maps: ``activation(conv(x, W) + conv_same(h, U) + b)``.

    Parameters
    ----------
    input_channels : int
        Channels of ``x`` (its last axis).
    filters : int
        Channels of ``h`` and of the output.
    kernel_size : tuple of int
        One size per spatial axis (1 to 3 axes); both convolutions use it.
    activation : str or Activation, default "sigmoid"
    padding : {"same", "valid"}, default "same"
        Padding of the input convolution (keyword only); the recurrent one is always "same".
    dilation : int or tuple of int, default 1
        Dilation of the input convolution, per spatial axis (keyword only).
    kernel_initializer, recurrent_initializer, bias_initializer
        Initializers of ``W``, ``U`` and ``b`` (Glorot-uniform, orthogonal, zeros). Fans count
        the kernel window as Keras does (``fan_in = prod(kernel_size) * in``).
    dtype : float32 or float64, default float64
    rng : numpy.random.Generator or int or None

    Attributes
    ----------
    W : Parameter, shape (*kernel_size, input_channels, filters)
    U : Parameter, shape (*kernel_size, filters, filters)
    b : Parameter, shape (filters,)
    """

    input_channels: int = attrs.field(validator=positive_int)
    filters: int = attrs.field(validator=positive_int)
    kernel_size: tuple[int, ...] = attrs.field(converter=_kernel_size)
    activation: Activation = attrs.field(default=activations.sigmoid, converter=activations.get)
    padding: str = attrs.field(default="same", kw_only=True, validator=_check_padding)
    dilation: Any = attrs.field(default=1, kw_only=True)
    kernel_initializer: Initializer = attrs.field(
        default=initializers.GlorotUniform(), kw_only=True, converter=initializers.get
    )
    recurrent_initializer: Initializer = attrs.field(
        default=initializers.Orthogonal(), kw_only=True, converter=initializers.get
    )
    bias_initializer: Initializer = attrs.field(
        default=initializers.Zeros(), kw_only=True, converter=initializers.get
    )
    dtype: np.dtype[Any] = attrs.field(default=np.float64, kw_only=True, converter=check_dtype)
    rng: Any = attrs.field(default=None, kw_only=True, repr=False)
    W: Parameter = attrs.field(init=False)
    U: Parameter = attrs.field(init=False)
    b: Parameter = attrs.field(init=False)

    #: No peephole: the LSTM step reads ``gate.p`` nowhere, but code that inspects gates may.
    p = None

    def __attrs_post_init__(self) -> None:
        self.dilation = as_size_tuple(self.dilation, self.rank, "dilation")
        rng = as_rng(self.rng)
        self.rng = None
        for name, value in self._draw_all(rng).items():
            setattr(self, name, Parameter(value))

    @property
    def rank(self) -> int:
        """Number of spatial axes."""
        return len(self.kernel_size)

    @property
    def input_size(self) -> int:
        """Channels of ``x`` (the gate-protocol name of ``input_channels``)."""
        return int(self.input_channels)

    @property
    def hidden_size(self) -> int:
        """Channels of ``h`` and of the output (``filters``)."""
        return int(self.filters)

    @property
    def input_pads(self) -> tuple[tuple[int, int], ...]:
        """Zeros added before and after each spatial axis of ``x``."""
        return padding_amounts(self.padding, self.kernel_size, self.dilation)

    @property
    def recurrent_pads(self) -> tuple[tuple[int, int], ...]:
        """Zeros added before and after each spatial axis of ``h`` ("same", no dilation)."""
        return padding_amounts("same", self.kernel_size, (1,) * self.rank)

    def output_spatial(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Spatial shape of the gate's output (and of ``h``) for ``x`` of spatial shape ``spatial``."""
        return output_spatial_shape(
            tuple(spatial), self.kernel_size, self.dilation, self.input_pads
        )

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        k, n_in, n_f = self.kernel_size, int(self.input_channels), int(self.filters)
        return {"W": (*k, n_in, n_f), "U": (*k, n_f, n_f), "b": (n_f,)}

    def _draw_all(self, rng: np.random.Generator) -> dict[str, Array]:
        inits = (self.kernel_initializer, self.recurrent_initializer, self.bias_initializer)
        return {
            name: Gate._draw(init, shape, rng, self.dtype, name)
            for (name, shape), init in zip(self._shapes().items(), inits, strict=True)
        }

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Draw fresh weights from the gate's initializers (gradients are zeroed)."""
        for name, value in self._draw_all(as_rng(rng)).items():
            setattr(self, name, Parameter(value))

    def set_weights(
        self, W: Array | None = None, U: Array | None = None, b: Array | None = None
    ) -> None:
        """Replace some of the weights, checking every shape and dtype before changing any."""
        updates = {}
        for name, value in (("W", W), ("U", U), ("b", b)):
            if value is not None:
                updates[name] = getattr(self, name).check(value, argument=name)
        for name, value in updates.items():
            getattr(self, name).value = np.array(value, copy=True)

    # -- forward --------------------------------------------------------------------------------

    def _check_inputs(self, x: Any, h: Any) -> None:
        rank, n_in, n_f = self.rank, self.input_channels, self.filters
        shape = getattr(x, "shape", None)
        if shape is None or len(shape) != rank + 2 or shape[-1] != n_in:
            got = shape if shape is not None else type(x).__name__
            raise ValueError(
                f"x: expected shape (batch, {rank} spatial axes, {n_in}), received {got}"
            )
        want = (shape[0], *self.output_spatial(shape[1:-1]), n_f)
        if any(n < 1 for n in want[1:-1]):
            raise ValueError(
                f"x: spatial shape {shape[1:-1]} is smaller than the kernel {self.kernel_size} "
                f"(dilation {self.dilation}) with padding 'valid'"
            )
        if getattr(h, "shape", None) != want:
            raise ValueError(
                f"h: expected shape {want}, received {getattr(h, 'shape', type(h).__name__)}"
            )

    def _rows(self, x: Array, h: Array) -> tuple[Array, Array]:
        k = self.kernel_size
        return patches(x, k, self.dilation, self.input_pads), patches(
            h, k, (1,) * self.rank, self.recurrent_pads
        )

    def preactivation(self, x: Array, h: Array) -> Array:
        """``z = conv(x, W) + conv_same(h, U) + b``, shape (batch, *out_spatial, filters)."""
        x_rows, h_rows = self._rows(x, h)
        return self._combine(x_rows, h_rows)

    def _combine(self, x_rows: Array, h_rows: Array) -> Array:
        n_f = self.filters
        # --8<-- [start:conv_gate]
        z = x_rows @ self.W.value.reshape(-1, n_f) + h_rows @ self.U.value.reshape(-1, n_f)
        z += self.b.value
        # --8<-- [end:conv_gate]
        return z

    def __call__(self, x: Array, h: Array, c: Array | None = None) -> Array:
        """The gate's value, shape (batch, *out_spatial, filters); ``c`` is ignored (no peephole)."""
        self._check_inputs(x, h)
        return self.activation(self.preactivation(x, h))

    def forward_train(
        self, x: Array, h: Array, c: Array | None = None
    ) -> tuple[Array, ConvGateCache]:
        """Like calling the gate, but also return the cache :meth:`backward` needs."""
        self._check_inputs(x, h)
        z = self.preactivation(x, h)
        y = self.activation(z)
        keep_z = None if self.activation.derivative_from_output else z
        return y, ConvGateCache(x=x, h=h, z=keep_z, y=y)

    # -- backward -------------------------------------------------------------------------------

    @accumulates_gradients
    def backward(self, dy: Array, cache: ConvGateCache) -> tuple[Array, Array, None]:
        """Back-propagate ``dy = dL/dy``: returns ``(dx, dh, None)``.

        Accumulates into ``W.grad``, ``U.grad`` and ``b.grad`` (holding
        :data:`lstmkit.module.GRADIENT_LOCK`). The third value is the peephole gradient of a
        :class:`~lstmkit.Gate`, always None here. A subclass that changes :meth:`preactivation`
        overrides this method too (it is the gradient of this class's map). The cache holds
        the arrays given to :meth:`forward_train` (no copies): leave them unchanged until this
        call.
        """
        dz = dy * self.activation.grad(cache.z, cache.y)
        x_rows, h_rows = self._rows(cache.x, cache.h)  # the windows again: no copies kept
        self.W.grad += kernel_gradient(x_rows, dz, self.W.shape)
        self.U.grad += kernel_gradient(h_rows, dz, self.U.shape)
        self.b.grad += dz.reshape(-1, self.filters).sum(axis=0)
        dx = input_gradient(dz, self.W.value, self.input_pads, self.dilation)
        dh = input_gradient(dz, self.U.value, self.recurrent_pads, (1,) * self.rank)
        return dx, dh, None

    def describe(self) -> str:
        return (
            f"ConvGate({self.activation.name}, W {self.W.shape}, U {self.U.shape}, "
            f"b {self.b.shape}, padding={self.padding!r}, dilation={self.dilation}, {self.dtype})"
        )

    # -- configuration --------------------------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """Channels, kernel, activation, padding, dilation, initializers and dtype."""
        return {
            "input_channels": int(self.input_channels),
            "filters": int(self.filters),
            "kernel_size": list(self.kernel_size),
            "activation": config.activation_name(self.activation),
            "padding": self.padding,
            "dilation": list(self.dilation),
            **{key: config.initializer_config(getattr(self, key)) for key in _INIT_KEYS},
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> ConvGate:
        """A fresh gate from :meth:`to_config` output, its shapes checked against the file first."""
        keys = ["input_channels", "filters", "kernel_size", "activation", "padding", "dilation"]
        ctx.check_keys(cfg, [*keys, *_INIT_KEYS, "dtype"])
        n_in, n_f = ctx.int(cfg, "input_channels"), ctx.int(cfg, "filters")
        kernel = int_list(ctx, cfg, "kernel_size")
        dilation = int_list(ctx, cfg, "dilation")
        dtype = ctx.dtype(cfg)
        try:
            kernel = _kernel_size(kernel)
            dilation = as_size_tuple(dilation, len(kernel), "dilation")
        except ValueError as err:
            raise ValueError(f"{ctx.path}: {err}") from None
        ctx.expect("W", (*kernel, n_in, n_f), dtype)
        ctx.expect("U", (*kernel, n_f, n_f), dtype)
        ctx.expect("b", (n_f,), dtype)
        return cls(
            n_in,
            n_f,
            kernel,
            activation=ctx.activation(cfg, "activation"),
            padding=ctx.str(cfg, "padding", choices=PADDINGS),
            dilation=dilation,
            dtype=dtype,
            rng=ctx.rng,
            **{key: ctx.initializer(cfg, key) for key in _INIT_KEYS},
        )


def int_list(ctx: config.BuildContext, cfg: dict[str, Any], key: str) -> tuple[int, ...]:
    """``cfg[key]`` as a tuple of 1 to 3 positive integers (spatial sizes in a saved file)."""
    items = ctx.list(cfg, key)
    if len(items) > 3 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in items):
        raise ValueError(f"{ctx.path}.{key}: expected 1 to 3 positive integers, received {items!r}")
    return tuple(items)
