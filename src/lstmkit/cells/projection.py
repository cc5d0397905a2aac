"""The LSTM with a recurrent projection layer (LSTMP, Sak et al. 2014; PyTorch ``proj_size``).

A large LSTM spends most of its weights on the recurrent matrices ``U (hidden,
hidden)``. LSTMP projects the hidden state down to ``proj_size`` units before it
is fed back and output, so the recurrent matrices shrink to ``(proj, hidden)``::

    f = forget(x, h_prev [, c_prev])     # h_prev has proj_size features
    i = input(x, h_prev [, c_prev])
    g = candidate(x, h_prev)
    c = f * c_prev + i * g               # c has hidden_size features
    o = output(x, h_prev [, c])
    m = o * cell_activation(c)           # (batch, hidden_size)
    h = m @ W_hr                         # (batch, proj_size): output and recurrent input

``W_hr`` is :attr:`ProjectionLSTMCell.projection`, shape ``(hidden_size,
proj_size)``: PyTorch's ``weight_hr_l0`` transposed (lstmkit uses row vectors).
As in PyTorch, ``proj_size`` must be smaller than ``hidden_size``. Sak et al.
also use peepholes, available here with ``peephole=`` (PyTorch has none).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import activations, config, initializers
from lstmkit.activations import Activation
from lstmkit.cells.base import (
    check_lstm_state,
    check_step_cache,
    check_step_input,
)
from lstmkit.cells.gated import LSTMFamilyCell
from lstmkit.cells.lstm import GATE_NAMES, PEEPHOLE_GATES
from lstmkit.gate import Gate, GateCache, positive_int
from lstmkit.module import Parameter, component
from lstmkit.state import LSTMState

__all__ = ["ProjectionLSTMCell", "ProjectionStepCache"]

Array = NDArray[Any]


@attrs.frozen(eq=False)
class ProjectionStepCache:
    """What :meth:`ProjectionLSTMCell.step_backward` needs from :meth:`ProjectionLSTMCell.step_train`."""

    forget: GateCache
    input: GateCache
    candidate: GateCache
    output: GateCache
    c_prev: Array
    c: Array
    cell_out: Array
    m: Array  # o * cell_activation(c), before the projection


@config.configurable()
@component
class ProjectionLSTMCell(LSTMFamilyCell):
    """LSTM cell whose hidden state is projected to ``proj_size`` units (LSTMP).

    Parameters
    ----------
    input_size : int
        Features of each input ``x_t``.
    hidden_size : int
        Units of the cell state and of every gate.
    proj_size : int
        Features of the projected hidden state ``h`` (the output and the recurrent
        input); ``1 <= proj_size < hidden_size``.
    cell_activation : str or Activation, default "tanh"
    gate_activation, candidate_activation : str or Activation
        Defaults sigmoid and tanh (keyword only).
    kernel_initializer, recurrent_initializer, bias_initializer, peephole_initializer
        Initializers of every gate's ``W``, ``U``, ``b``, ``p``.
    projection_initializer : str or callable, default "glorot_uniform"
        Initializer of ``projection``.
    forget_bias : float, default 1.0
    peephole : bool or collection of {"forget", "input", "output"}, default False
    dtype : float32 or float64, default float64
    rng : numpy.random.Generator or int or None
        Randomness for the initial weights (forget, input, candidate, output, projection).

    Attributes
    ----------
    forget, input, candidate, output : Gate
        ``W (input_size, hidden_size)``, ``U (proj_size, hidden_size)``, ``b (hidden_size,)``.
    projection : Parameter, shape (hidden_size, proj_size)
        ``W_hr``.

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import ProjectionLSTMCell
    >>> cell = ProjectionLSTMCell(3, 8, proj_size=2, rng=0)
    >>> state, y = cell.step(cell.initial_state(4), np.ones((4, 3)))
    >>> y.shape, state.c.shape, cell.output_size
    ((4, 2), (4, 8), 2)
    """

    GATE_NAMES = GATE_NAMES
    PEEPHOLE_GATES = PEEPHOLE_GATES
    CONFIG_OPTIONS = (*LSTMFamilyCell.CONFIG_OPTIONS, "proj_size", "projection_initializer")

    proj_size: int = attrs.field(validator=positive_int)
    cell_activation: Activation = attrs.field(default=activations.tanh, converter=activations.get)
    projection_initializer: Any = attrs.field(
        default="glorot_uniform",
        kw_only=True,
        repr=False,
        converter=initializers.get,
    )
    forget: Gate = attrs.field(init=False)
    input: Gate = attrs.field(init=False)
    candidate: Gate = attrs.field(init=False)
    output: Gate = attrs.field(init=False)
    projection: Parameter = attrs.field(init=False)

    def _check_options(self) -> None:
        super()._check_options()
        if self.proj_size >= self.hidden_size:
            raise ValueError(
                f"proj_size: expected a size smaller than hidden_size={self.hidden_size} (a projection "
                f"must shrink the state, as PyTorch requires), received {self.proj_size}"
            )

    def _gate_options(self) -> dict[str, Any]:
        return {**super()._gate_options(), "recurrent_size": self.proj_size}

    def _build_extra(self, rng: np.random.Generator) -> None:
        shape = (self.hidden_size, self.proj_size)
        value = Gate._draw(self.projection_initializer, shape, rng, self.dtype, "projection")
        self.projection = Parameter(value)

    @property
    def output_size(self) -> int:
        """Features of each output ``y_t``: ``proj_size``."""
        return self.proj_size

    def _config_options(self) -> dict[str, Any]:
        init = config.initializer_config(self.projection_initializer)
        return {
            **super()._config_options(),
            "proj_size": int(self.proj_size),
            "projection_initializer": init,
        }

    @classmethod
    def _options_from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> dict[str, Any]:
        n_p = ctx.int(cfg, "proj_size")
        ctx.expect("projection", (ctx.int(cfg, "hidden_size"), n_p), ctx.dtype(cfg))
        init = ctx.initializer(cfg, "projection_initializer")
        return {
            **super()._options_from_config(cfg, ctx),
            "proj_size": n_p,
            "projection_initializer": init,
        }

    def state_sizes(self) -> dict[str, int]:
        """``h`` of ``proj_size``, ``c`` of ``hidden_size``."""
        return {"h": self.proj_size, "c": self.hidden_size}

    def _describe_extra(self) -> str:
        return f", proj={self.proj_size}"

    def step_train(
        self, state: LSTMState, x: Array
    ) -> tuple[LSTMState, Array, ProjectionStepCache]:
        """:meth:`step` that also returns the cache :meth:`step_backward` needs."""
        x = check_step_input(self, x)
        state = check_lstm_state(state, x.shape[0], self.proj_size, self.hidden_size)
        h_prev, c_prev = state.h, state.c
        f, f_cache = self.forget.forward_train(x, h_prev, c_prev)
        i, i_cache = self.input.forward_train(x, h_prev, c_prev)
        g, g_cache = self.candidate.forward_train(x, h_prev)
        c = f * c_prev + i * g
        o, o_cache = self.output.forward_train(x, h_prev, c)
        cell_out = self.cell_activation(c)
        m = o * cell_out
        h = m @ self.projection.value  # project down before feeding back
        cache = ProjectionStepCache(f_cache, i_cache, g_cache, o_cache, c_prev, c, cell_out, m)
        return LSTMState(h=h, c=c), h, cache

    def step_backward(
        self, cache: ProjectionStepCache, d_state: LSTMState, d_y: Array
    ) -> tuple[LSTMState, Array]:
        """Back-propagate one step; returns ``(d_state_prev, d_x)`` and accumulates gradients."""
        check_step_cache(cache, ProjectionStepCache)
        want = (cache.c.shape[0], self.proj_size)
        if d_y.shape != want:
            raise ValueError(f"d_y: expected shape {want}, received {d_y.shape}")
        o, g, i, f = cache.output.y, cache.candidate.y, cache.input.y, cache.forget.y
        dh = d_y + d_state.h
        self.projection.grad += cache.m.T @ dh
        dm = dh @ self.projection.value.T
        dc = d_state.c + dm * o * self.cell_activation.grad(cache.c, cache.cell_out)
        dx, dh_prev, dc_peep = self.output.backward(dm * cache.cell_out, cache.output)
        if dc_peep is not None:
            dc = dc + dc_peep
        dc_prev = dc * f
        for gate, d_gate, gate_cache in (
            (self.forget, dc * cache.c_prev, cache.forget),
            (self.input, dc * g, cache.input),
            (self.candidate, dc * i, cache.candidate),
        ):
            dx_g, dh_g, dc_g = gate.backward(d_gate, gate_cache)
            dx = dx + dx_g
            dh_prev = dh_prev + dh_g
            if dc_g is not None:
                dc_prev = dc_prev + dc_g
        return LSTMState(h=dh_prev, c=dc_prev), dx
