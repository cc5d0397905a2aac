"""The layer-normalized LSTM (Ba, Kiros and Hinton 2016).

Layer normalization rescales a vector of ``H`` units to zero mean and unit
variance over its units, then applies a learned gain (and bias)::

    LN(a; gain, bias) = gain * (a - mean(a)) / sqrt(var(a) + epsilon) + bias

Ba et al. normalize the input and recurrent contributions separately, and the
cell state before the output nonlinearity. Here each gate ``k`` (forget, input,
candidate, output) keeps its own ``W``, ``U`` and ``b``, and its pre-activation is::

    a_k = LN(x @ W_k; gain_x[k]) + LN(h_prev @ U_k; gain_h[k]) + b_k
    c   = f * c_prev + i * g
    h   = o * tanh(LN(c; gain_c, bias_c))

Each gate is normalized over its own ``H`` units (as in TensorFlow's
``LayerNormBasicLSTMCell``) rather than over all ``4H`` at once, so every gate
stays a separate, swappable piece. The paper's two LN biases and the gate bias
add up to one bias per gate, so only ``b_k`` is kept for the gates; the
cell-state normalization has gain and bias. A hidden size of 1 is rejected:
normalizing a single unit always gives zero.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import activations, config
from lstmkit._hoisting import input_gradient, input_products, recurrent_transposed
from lstmkit._tracing import RECORDER
from lstmkit.activations import Activation
from lstmkit.cells.base import (
    check_lstm_state,
    check_step_cache,
    check_step_input,
)
from lstmkit.cells.gated import LSTMFamilyCell
from lstmkit.cells.lstm import GATE_NAMES as LSTM_GATE_NAMES
from lstmkit.gate import Gate
from lstmkit.module import Module, Parameter, accumulates_gradients, check_dtype, component
from lstmkit.state import LSTMState

__all__ = ["LayerNorm", "LayerNormLSTMCell", "LayerNormStepCache"]

Array = NDArray[Any]

# The same four gates as LSTMCell, each with its own layer norms.
GATE_NAMES = LSTM_GATE_NAMES


@config.configurable()
@component
class LayerNorm(Module):
    """Layer normalization over the last axis, with a gain (and optionally a bias) per group.

    Parameters
    ----------
    size : int
        Units normalized together (the last axis).
    groups : int, default 1
        Independent normalizations, stacked on the axis before the last; ``gain`` and
        ``bias`` have shape ``(groups, size)`` (``(size,)`` when ``groups == 1``).
    bias : bool, default True
        Learn a bias after the gain.
    epsilon : float, default 1e-5
        Added to the variance before the square root.
    dtype : float32 or float64, default float64

    Attributes
    ----------
    gain : Parameter, ones
    bias : Parameter or None, zeros
    """

    size: int = attrs.field()
    groups: int = attrs.field(default=1, kw_only=True)
    use_bias: bool = attrs.field(default=True, kw_only=True, alias="bias")
    epsilon: float = attrs.field(default=1e-5, kw_only=True)
    dtype: np.dtype[Any] = attrs.field(default=np.float64, kw_only=True, converter=check_dtype)
    gain: Parameter = attrs.field(init=False)
    bias: Parameter | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        if (
            isinstance(self.size, bool)
            or not isinstance(self.size, (int, np.integer))
            or self.size < 2
        ):
            raise ValueError(
                f"size: layer normalization needs at least 2 units (one unit always normalizes to 0), "
                f"received {self.size!r}"
            )
        if not (float(self.epsilon) > 0):
            raise ValueError(f"epsilon: expected a positive number, received {self.epsilon!r}")
        self.reset_parameters()

    @property
    def _shape(self) -> tuple[int, ...]:
        return (self.size,) if self.groups == 1 else (self.groups, self.size)

    def reset_parameters(self, rng: Any = None) -> None:
        """Gain to ones and bias to zeros (``rng`` is accepted and unused)."""
        self.gain = Parameter(np.ones(self._shape, self.dtype))
        if self.use_bias:
            self.bias = Parameter(np.zeros(self._shape, self.dtype))

    def forward(self, a: Array) -> tuple[Array, tuple[Array, Array]]:
        """``gain * normalized(a) + bias`` and the cache ``(normalized, 1/std)`` for :meth:`backward`."""
        mu = a.mean(axis=-1, keepdims=True)
        d = a - mu
        inv_std = 1 / np.sqrt((d * d).mean(axis=-1, keepdims=True) + self.dtype.type(self.epsilon))
        xhat = d * inv_std
        y = xhat * self.gain.value
        if self.bias is not None:
            y = y + self.bias.value
        return y, (xhat, inv_std)

    def backward(self, dy: Array, cache: tuple[Array, Array]) -> Array:
        """Gradient of the input; accumulates into ``gain.grad`` (and ``bias.grad``)."""
        xhat, inv_std = cache
        lead = tuple(range(dy.ndim - len(self._shape)))  # the batch axes
        self.gain.grad += (dy * xhat).sum(axis=lead)
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=lead)
        dxhat = dy * self.gain.value
        # d xhat / d a removes the mean and the component along xhat (the variance's pull).
        return inv_std * (
            dxhat
            - dxhat.mean(axis=-1, keepdims=True)
            - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)
        )

    def to_config(self) -> dict[str, Any]:
        """Size, groups, bias flag, epsilon and dtype."""
        return {
            "size": int(self.size),
            "groups": int(self.groups),
            "bias": bool(self.use_bias),
            "epsilon": float(self.epsilon),
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> LayerNorm:
        """A fresh normalization from :meth:`to_config` output, checked against the file."""
        ctx.check_keys(cfg, ["size", "groups", "bias", "epsilon", "dtype"])
        size, groups, dtype = ctx.int(cfg, "size"), ctx.int(cfg, "groups"), ctx.dtype(cfg)
        use_bias, epsilon = ctx.bool(cfg, "bias"), ctx.float(cfg, "epsilon", low=0.0)
        shape = (size,) if groups == 1 else (groups, size)
        ctx.expect("gain", shape, dtype)
        if use_bias:
            ctx.expect("bias", shape, dtype)
        return cls(size, groups=groups, bias=use_bias, epsilon=epsilon, dtype=dtype)

    def describe(self) -> str:
        bias = ", bias" if self.bias is not None else ""
        return f"LayerNorm(gain {self.gain.shape}{bias}, eps={self.epsilon})"


@attrs.frozen(eq=False)
class LayerNormStepCache:
    """What :meth:`LayerNormLSTMCell.step_backward` needs from :meth:`LayerNormLSTMCell.step_train`."""

    x: Array
    h_prev: Array
    c_prev: Array
    pre: Array  # (batch, 4, hidden): gate pre-activations
    acts: Array  # (batch, 4, hidden): gate values
    norm_x: tuple[Array, Array]
    norm_h: tuple[Array, Array]
    norm_c: tuple[Array, Array]
    c_hat: Array  # LN(c)
    cell_out: Array  # cell_activation(c_hat)


@config.configurable()
@component
class LayerNormLSTMCell(LSTMFamilyCell):
    """LSTM cell with layer normalization of every gate's inputs and of the cell state.

    Besides the parameters below it takes the keyword options of
    :class:`~lstmkit.cells.gated.LSTMFamilyCell` (gate and candidate activations, the initializers
    of every gate's ``W``, ``U``, ``b``, ``forget_bias``, ``dtype``, ``rng``); it has no
    peepholes.

    Parameters
    ----------
    input_size, hidden_size : int
        Features of each input ``x_t``; units of the hidden and cell states (at least 2).
    cell_activation : str or Activation, default "tanh"
        Applied to ``LN(c)``: ``h = o * cell_activation(LN(c))``.
    epsilon : float, default 1e-5
        Variance floor of every normalization.

    Attributes
    ----------
    forget, input, candidate, output : Gate
        ``W (input_size, hidden_size)``, ``U (hidden_size, hidden_size)``, ``b (hidden_size,)``.
    norm_x, norm_h : LayerNorm
        Gains of shape ``(4, hidden_size)``, one row per gate in the order above; no bias.
    norm_c : LayerNorm
        Gain and bias of shape ``(hidden_size,)`` for the cell state.

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import LayerNormLSTMCell
    >>> cell = LayerNormLSTMCell(3, 4, rng=0)
    >>> state, y = cell.step(cell.initial_state(2), np.ones((2, 3)))
    >>> y.shape, cell.norm_x.gain.shape
    ((2, 4), (4, 4))
    """

    GATE_NAMES = GATE_NAMES
    #: Runners compute the gates' ``x @ W`` for a whole sequence before stepping (see
    #: ``lstmkit._hoisting``): this cell passes each step's ``x`` to its gates unchanged.
    accepts_hoisted_inputs = True
    PEEPHOLE_GATES = ()
    CONFIG_OPTIONS = (*LSTMFamilyCell.CONFIG_OPTIONS, "epsilon")
    CONFIG_PARTS = ("norm_x", "norm_h", "norm_c")

    cell_activation: Activation = attrs.field(default=activations.tanh, converter=activations.get)
    epsilon: float = attrs.field(default=1e-5, kw_only=True, repr=False)
    forget: Gate = attrs.field(init=False)
    input: Gate = attrs.field(init=False)
    candidate: Gate = attrs.field(init=False)
    output: Gate = attrs.field(init=False)
    norm_x: LayerNorm = attrs.field(init=False)
    norm_h: LayerNorm = attrs.field(init=False)
    norm_c: LayerNorm = attrs.field(init=False)

    def _check_options(self) -> None:
        super()._check_options()
        if self.hidden_size == 1:
            raise ValueError(
                "hidden_size: a layer-normalized cell needs at least 2 units; normalizing 1 unit "
                "always gives 0, received 1"
            )

    def _build_extra(self, rng: np.random.Generator) -> None:
        # Gains start at ones and biases at zeros (no randomness), at construction and reset.
        H, eps, dt = self.hidden_size, self.epsilon, self.dtype
        self.norm_x = LayerNorm(H, groups=4, bias=False, epsilon=eps, dtype=dt)
        self.norm_h = LayerNorm(H, groups=4, bias=False, epsilon=eps, dtype=dt)
        self.norm_c = LayerNorm(H, bias=True, epsilon=eps, dtype=dt)

    def _config_options(self) -> dict[str, Any]:
        return {**super()._config_options(), "epsilon": float(self.epsilon)}

    @classmethod
    def _options_from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> dict[str, Any]:
        epsilon = ctx.float(cfg, "epsilon", low=0.0)
        return {**super()._options_from_config(cfg, ctx), "epsilon": epsilon}

    def _describe_extra(self) -> str:
        return f", eps={self.epsilon}"

    def step_train(self, state: LSTMState, x: Array) -> tuple[LSTMState, Array, LayerNormStepCache]:
        """:meth:`step` that also returns the cache :meth:`step_backward` needs."""
        x = check_step_input(self, x)
        state = check_lstm_state(state, x.shape[0], self.hidden_size, self.hidden_size, self.dtype)
        h_prev, c_prev = state.h, state.c
        gates = list(self.gates.values())
        xw = input_products(gates, x)  # (batch, 4, hidden); hoisted by a runner when it can
        hu = np.stack([h_prev @ g.U.value for g in gates], axis=1)
        nx, cache_x = self.norm_x.forward(xw)
        nh, cache_h = self.norm_h.forward(hu)
        pre = nx + nh + np.stack([g.b.value for g in gates])
        acts = np.stack([g.activation(pre[:, k]) for k, g in enumerate(gates)], axis=1)
        recorder = RECORDER.get()  # lstmkit.trace: the gates are not called, so report them
        if recorder is not None:
            for k, gate in enumerate(gates):
                recorder.gate(gate, pre[:, k], acts[:, k])
        f, i, g_, o = acts[:, 0], acts[:, 1], acts[:, 2], acts[:, 3]
        c = f * c_prev + i * g_
        c_hat, cache_c = self.norm_c.forward(c)
        cell_out = self.cell_activation(c_hat)
        h = o * cell_out
        cache = LayerNormStepCache(
            x, h_prev, c_prev, pre, acts, cache_x, cache_h, cache_c, c_hat, cell_out
        )
        return LSTMState(h=h, c=c), h, cache

    @accumulates_gradients
    def step_backward(
        self, cache: LayerNormStepCache, d_state: LSTMState, d_y: Array
    ) -> tuple[LSTMState, Array]:
        """Back-propagate one step; returns ``(d_state_prev, d_x)`` and accumulates gradients."""
        check_step_cache(cache, LayerNormStepCache, d_y, like="h_prev")
        acts = cache.acts
        f, i, g_, o = acts[:, 0], acts[:, 1], acts[:, 2], acts[:, 3]
        dh = d_y + d_state.h
        d_c_hat = dh * o * self.cell_activation.grad(cache.c_hat, cache.cell_out)
        dc = d_state.c + self.norm_c.backward(d_c_hat, cache.norm_c)
        d_acts = np.stack([dc * cache.c_prev, dc * g_, dc * i, dh * cache.cell_out], axis=1)
        gates = list(self.gates.values())
        d_pre = (
            np.stack(
                [gate.activation.grad(cache.pre[:, k], acts[:, k]) for k, gate in enumerate(gates)],
                axis=1,
            )
            * d_acts
        )
        d_xw = self.norm_x.backward(d_pre, cache.norm_x)
        d_hu = self.norm_h.backward(d_pre, cache.norm_h)
        dx = np.zeros_like(cache.x)
        dh_prev = np.zeros_like(cache.h_prev)
        for k, gate in enumerate(gates):
            gate.b.grad += d_pre[:, k].sum(axis=0)
            gate.U.grad += cache.h_prev.T @ d_hu[:, k]
            dx += input_gradient(gate, cache.x, d_xw[:, k])  # and W.grad += x.T @ d_xw
            dh_prev += d_hu[:, k] @ recurrent_transposed(gate)
        return LSTMState(h=dh_prev, c=dc * f), dx
