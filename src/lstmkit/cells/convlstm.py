"""The convolutional LSTM (Shi et al. 2015, as Keras' ``ConvLSTM1D/2D/3D``).

An LSTM whose four gates are :class:`~lstmkit.ConvGate` objects: the matrix products of the
LSTM become convolutions, and the states ``h`` and ``c`` are feature maps
``(batch, *spatial, filters)``. The step is the LSTM's own:
:meth:`ConvLSTMCell.step_train` and :meth:`ConvLSTMCell.step_backward` call
:func:`lstmkit.cells.lstm.lstm_step_train` and :func:`~lstmkit.cells.lstm.lstm_step_backward`,
which are written against the gate methods ``forward_train`` and ``backward`` and elementwise
arithmetic, so they run on feature maps as they are.

:meth:`ConvLSTMCell.forward_sequence` computes the same numbers for a whole sequence with the
input convolutions of every step hoisted out of the time loop
(:mod:`lstmkit.cells.convlstm_fused`); runners take it for this exact class with
:class:`~lstmkit.ConvGate` gates, and step any subclass.

Examples
--------
>>> import numpy as np
>>> from lstmkit import ConvLSTMCell, Recurrent
>>> cell = ConvLSTMCell((8, 8, 1), 4, kernel_size=3, rng=0)      # 8x8 frames, 1 channel
>>> y, state = Recurrent(cell)(np.zeros((2, 5, 8, 8, 1)))        # (batch, time, H, W, C)
>>> y.shape, state.c.shape
((2, 5, 8, 8, 4), (2, 8, 8, 4))
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import activations, config
from lstmkit.activations import Activation
from lstmkit.cells.base import check_step_cache, refuse_masked
from lstmkit.cells.gated import _finite_number, _initializer_option
from lstmkit.cells.lstm import LSTMStepCache, lstm_step_backward, lstm_step_train
from lstmkit.conv_gate import PADDINGS, ConvGate, as_size_tuple, int_list
from lstmkit.gate import positive_int
from lstmkit.initializers import as_rng
from lstmkit.module import Module, accumulates_gradients, check_dtype, component
from lstmkit.state import LSTMState

__all__ = ["ConvLSTMCell"]

Array = NDArray[Any]

GATE_NAMES = ("forget", "input", "candidate", "output")


def _input_shape(value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, (tuple, list)) else None
    if (
        items is None
        or len(items) not in (2, 3, 4)
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in items)
    ):
        raise ValueError(
            "input_shape: expected (*spatial, channels) with 1 to 3 spatial axes of positive "
            f"integers, e.g. (16, 16, 1), received {value!r}"
        )
    return tuple(int(v) for v in items)


@config.configurable()
@component
class ConvLSTMCell(Module):
    """Convolutional LSTM cell: four :class:`~lstmkit.ConvGate` objects and the LSTM step.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one step's input without the batch axis, channels last: ``(length, channels)``,
        ``(height, width, channels)`` or ``(depth, height, width, channels)``.
    filters : int
        Channels of the hidden and cell states (and of the output).
    kernel_size : int or tuple of int, default 3
        One size per spatial axis (an int is used on every axis).
    padding : {"same", "valid"}, default "same"
        Padding of the input convolutions (keyword only). With "valid" the states are smaller
        than the input by ``dilation * (k - 1)`` on each axis; recurrent convolutions are "same".
    dilation : int or tuple of int, default 1
        Dilation of the input convolutions (keyword only).
    forget, input, candidate, output : ConvGate, optional
        Gates to use as they are (keyword only; a given forget gate keeps its bias). Each must
        match the cell's channels, kernel, padding, dilation and dtype.
    gate_activation : str or Activation, default "sigmoid"
        Activation of the forget, input and output gates (keyword only).
    candidate_activation : str or Activation, default "tanh"
    cell_activation : str or Activation, default "tanh"
        ``h = o * cell_activation(c)`` (keyword only).
    forget_bias : float, default 1.0
        Added to the forget gate's initial bias (Keras ``unit_forget_bias``).
    kernel_initializer, recurrent_initializer, bias_initializer : str or callable
        Glorot-uniform, orthogonal and zeros by default (keyword only).
    dtype : float32 or float64, default float64
    rng : numpy.random.Generator or int or None
        Gates are drawn in the order forget, input, candidate, output.

    Notes
    -----
    ``input_size`` is the input's channels and ``hidden_size`` and ``output_size`` are
    ``filters``; ``input_shape`` and ``output_shape`` are the full per-step shapes the runners
    check.
    """

    GATE_NAMES: ClassVar[tuple[str, ...]] = GATE_NAMES

    input_shape: tuple[int, ...] = attrs.field(converter=_input_shape)
    filters: int = attrs.field(validator=positive_int)
    kernel_size: Any = attrs.field(default=3)
    padding: str = attrs.field(default="same", kw_only=True)
    dilation: Any = attrs.field(default=1, kw_only=True)
    forget: ConvGate = attrs.field(default=None, kw_only=True)
    input: ConvGate = attrs.field(default=None, kw_only=True)
    candidate: ConvGate = attrs.field(default=None, kw_only=True)
    output: ConvGate = attrs.field(default=None, kw_only=True)
    gate_activation: Any = attrs.field(default="sigmoid", kw_only=True, repr=False)
    candidate_activation: Any = attrs.field(default="tanh", kw_only=True, repr=False)
    cell_activation: Activation = attrs.field(
        default=activations.tanh, kw_only=True, converter=activations.get
    )
    forget_bias: float = attrs.field(default=1.0, kw_only=True, validator=_finite_number)
    kernel_initializer: Any = attrs.field(
        default="glorot_uniform", kw_only=True, repr=False, validator=_initializer_option
    )
    recurrent_initializer: Any = attrs.field(
        default="orthogonal", kw_only=True, repr=False, validator=_initializer_option
    )
    bias_initializer: Any = attrs.field(
        default="zeros", kw_only=True, repr=False, validator=_initializer_option
    )
    dtype: np.dtype[Any] = attrs.field(default=np.float64, kw_only=True, converter=check_dtype)
    rng: Any = attrs.field(default=None, kw_only=True, repr=False)

    def __attrs_post_init__(self) -> None:
        rank = len(self.input_shape) - 1
        self.kernel_size = as_size_tuple(self.kernel_size, rank, "kernel_size")
        self.dilation = as_size_tuple(self.dilation, rank, "dilation")
        if self.padding not in PADDINGS:
            raise ValueError(
                f"padding: expected one of {', '.join(PADDINGS)}, received {self.padding!r}"
            )
        gate_act = activations.get(self.gate_activation, argument="gate_activation")
        cand_act = activations.get(self.candidate_activation, argument="candidate_activation")
        rng = as_rng(self.rng)
        self.rng = None
        built = {}
        for name in GATE_NAMES:
            given = getattr(self, name)
            if given is not None:
                built[name] = self._check_given(name, given)
                continue
            built[name] = ConvGate(
                self.input_shape[-1],
                self.filters,
                self.kernel_size,
                activation=cand_act if name == "candidate" else gate_act,
                padding=self.padding,
                dilation=self.dilation,
                kernel_initializer=self.kernel_initializer,
                recurrent_initializer=self.recurrent_initializer,
                bias_initializer=self.bias_initializer,
                dtype=self.dtype,
                rng=rng,
            )
            if name == "forget":
                self._add_forget_bias(built[name])
        if any(n < 1 for n in self.output_shape[:-1]):
            raise ValueError(
                f"input_shape: spatial shape {self.input_shape[:-1]} is smaller than the kernel "
                f"{self.kernel_size} (dilation {self.dilation}) with padding 'valid'"
            )
        for name, gate in built.items():
            setattr(self, name, gate)

    def _check_given(self, name: str, gate: Any) -> ConvGate:
        if not isinstance(gate, ConvGate):
            raise TypeError(f"{name}: expected a ConvGate, received {type(gate).__name__}")
        want = (self.input_shape[-1], self.filters, self.kernel_size, self.padding, self.dilation)
        got = (gate.input_channels, gate.filters, gate.kernel_size, gate.padding, gate.dilation)
        if got != want:
            raise ValueError(
                f"{name}: expected a ConvGate with (input_channels, filters, kernel_size, padding, "
                f"dilation) = {want} like the cell, received {got}"
            )
        if gate.dtype != self.dtype:
            raise TypeError(f"{name}: expected dtype {self.dtype}, received {gate.dtype}")
        return gate

    def _add_forget_bias(self, gate: ConvGate) -> None:
        if self.forget_bias != 0:
            gate.b.value += self.dtype.type(self.forget_bias)

    def reset_parameters(self, rng: np.random.Generator | int | None = None) -> None:
        """Redraw every gate from its own initializers, in order, and add ``forget_bias``."""
        gen = as_rng(rng)
        for gate in self.gates.values():
            gate.reset_parameters(gen)
        self._add_forget_bias(self.forget)

    # -- sizes ----------------------------------------------------------------------------------

    @property
    def gates(self) -> dict[str, ConvGate]:
        """The gates by name, in the order of ``GATE_NAMES``."""
        return {name: getattr(self, name) for name in GATE_NAMES}

    @property
    def rank(self) -> int:
        """Number of spatial axes (1, 2 or 3)."""
        return len(self.input_shape) - 1

    @property
    def input_size(self) -> int:
        """Channels of each input frame."""
        return int(self.input_shape[-1])

    @property
    def hidden_size(self) -> int:
        """Channels of ``h`` and ``c`` (``filters``)."""
        return int(self.filters)

    @property
    def output_size(self) -> int:
        """Channels of each output frame (``filters``)."""
        return int(self.filters)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one step's output and of ``h`` and ``c``, without the batch axis."""
        gate = self.forget if isinstance(self.forget, ConvGate) else None
        if gate is None:  # during construction
            from lstmkit.convolution import output_spatial_shape, padding_amounts

            pads = padding_amounts(self.padding, self.kernel_size, self.dilation)
            spatial = output_spatial_shape(
                self.input_shape[:-1], self.kernel_size, self.dilation, pads
            )
        else:
            spatial = gate.output_spatial(self.input_shape[:-1])
        return (*spatial, int(self.filters))

    def initial_state(self, batch_size: int | None = None) -> LSTMState:
        """Zero ``LSTMState``: arrays ``(batch, *output_shape)``, or ``output_shape`` if None."""
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 0
        ):
            raise ValueError(
                f"batch_size: expected a non-negative integer or None, received {batch_size!r}"
            )
        shape = self.output_shape if batch_size is None else (batch_size, *self.output_shape)
        return LSTMState(h=np.zeros(shape, self.dtype), c=np.zeros(shape, self.dtype))

    # -- one step -------------------------------------------------------------------------------

    def _check_step(self, state: Any, x: Any) -> tuple[Array, LSTMState]:
        refuse_masked(x, "x")
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"x: expected a real numeric array, received dtype {x.dtype}")
        if x.ndim != self.rank + 2 or x.shape[1:] != self.input_shape:
            raise ValueError(f"x: expected shape (batch, *{self.input_shape}), received {x.shape}")
        if not isinstance(state, LSTMState):
            raise TypeError(f"state: expected an LSTMState, received {type(state).__name__}")
        want = (x.shape[0], *self.output_shape)
        cast = {}
        for name in ("h", "c"):
            arr = getattr(state, name)
            refuse_masked(arr, f"state.{name}")
            if not isinstance(arr, np.ndarray) or arr.shape != want:
                got = getattr(arr, "shape", type(arr).__name__)
                raise ValueError(f"state.{name}: expected shape {want}, received {got}")
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"state.{name}: expected real numbers, received dtype {arr.dtype}")
            cast[name] = arr.astype(self.dtype, copy=False)
        return x.astype(self.dtype, copy=False), LSTMState(**cast)

    def step(self, state: LSTMState, x: Array) -> tuple[LSTMState, Array]:
        """One time step: ``x (batch, *input_shape)`` -> ``(state, y (batch, *output_shape))``."""
        new, y, _ = self.step_train(state, x)
        return new, y

    def step_train(self, state: LSTMState, x: Array) -> tuple[LSTMState, Array, LSTMStepCache]:
        """:meth:`step` that also returns the cache :meth:`step_backward` needs (the LSTM's)."""
        x, state = self._check_step(state, x)
        # --8<-- [start:step]
        h, c, cache = lstm_step_train(self, x, state.h, state.c)
        # --8<-- [end:step]
        return LSTMState(h=h, c=c), h, cache

    @accumulates_gradients
    def step_backward(
        self, cache: LSTMStepCache, d_state: LSTMState, d_y: Array
    ) -> tuple[LSTMState, Array]:
        """Back-propagate one step: ``(d_state_prev, d_x)``; accumulates the gates' gradients."""
        check_step_cache(cache, LSTMStepCache, d_y, like="c")
        return lstm_step_backward(self, cache, d_state, d_y)

    # -- fused whole-sequence path --------------------------------------------------------------

    def cannot_fuse(self) -> str | None:
        """Why :mod:`lstmkit.cells.convlstm_fused` would not compute what :meth:`step` does.

        None for this exact class with four :class:`~lstmkit.ConvGate` gates (any activation
        objects); a subclass of either may compute something else and runs step by step.
        """
        if type(self) is not ConvLSTMCell:
            return (
                f"{type(self).__name__} is a subclass of ConvLSTMCell; the fused kernel computes "
                "ConvLSTMCell's own step (override cannot_fuse to declare the subclass equivalent)"
            )
        for name, gate in self.gates.items():
            if type(gate) is not ConvGate:
                return (
                    f"the {name} gate is a {type(gate).__name__}, not a ConvGate; the fused "
                    "kernel computes ConvGate's own convolutions"
                )
        return None

    def forward_sequence(
        self, x: Array, state: LSTMState, batch_sizes: Array | None = None, training: bool = False
    ) -> tuple[Array, LSTMState, Any]:
        """Run a time-major sequence ``x (time, batch, *input_shape)`` (used by runners).

        Same contract as :meth:`lstmkit.LSTMCell.forward_sequence`: ``batch_sizes`` gives the
        active (longest-first) rows of each step; returns ``(y, final_state, cache)``.
        """
        from lstmkit.cells import convlstm_fused

        return convlstm_fused.forward(self, x, state, batch_sizes, training)

    @accumulates_gradients
    def backward_sequence(
        self, cache: Any, dy: Array, d_final: LSTMState
    ) -> tuple[Array, LSTMState]:
        """Backward of :meth:`forward_sequence`: ``(dx, d_initial_state)``."""
        from lstmkit.cells import convlstm_fused

        return convlstm_fused.backward(self, cache, dy, d_final)

    def describe(self) -> str:
        return (
            f"ConvLSTMCell(input_shape={self.input_shape}, filters={self.filters}, "
            f"kernel_size={self.kernel_size}, cell_activation={self.cell_activation.name}, "
            f"{self.dtype})"
        )

    # -- configuration (see lstmkit.config) ------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """Shapes, options, dtype and each gate's configuration."""
        return {
            "input_shape": list(self.input_shape),
            "filters": int(self.filters),
            "kernel_size": list(self.kernel_size),
            "padding": self.padding,
            "dilation": list(self.dilation),
            "cell_activation": config.activation_name(self.cell_activation),
            "forget_bias": float(self.forget_bias),
            "dtype": self.dtype.name,
            "gates": {name: config.to_config(gate) for name, gate in self.gates.items()},
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> ConvLSTMCell:
        """A cell from :meth:`to_config` output around the saved gates, each checked first."""
        keys = ["input_shape", "filters", "kernel_size", "padding", "dilation"]
        ctx.check_keys(cfg, [*keys, "cell_activation", "forget_bias", "dtype", "gates"])
        shape = ctx.list(cfg, "input_shape")
        gates_cfg = ctx.dict(cfg, "gates")
        if sorted(gates_cfg) != sorted(GATE_NAMES):
            raise ValueError(
                f"{ctx.path}.gates: expected the gates {', '.join(GATE_NAMES)}, "
                f"received {', '.join(sorted(gates_cfg))}"
            )
        options = {
            "kernel_size": int_list(ctx, cfg, "kernel_size"),
            "padding": ctx.str(cfg, "padding", choices=PADDINGS),
            "dilation": int_list(ctx, cfg, "dilation"),
            "cell_activation": ctx.activation(cfg, "cell_activation"),
            "forget_bias": ctx.float(cfg, "forget_bias"),
            "dtype": ctx.dtype(cfg),
        }
        gates: dict[str, Any] = {}
        for name in GATE_NAMES:
            gate = ctx.build(gates_cfg[name], f"gates.{name}", f"{name}.")
            if type(gate) is not ConvGate:
                raise TypeError(
                    f"{ctx.path}.gates.{name}: expected a ConvGate, received {type(gate).__name__}"
                )
            gates[name] = gate
        try:
            return cls(_input_shape(shape), ctx.int(cfg, "filters"), **options, **gates)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{ctx.path}: {err}") from None
