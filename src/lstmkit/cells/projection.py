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
from lstmkit.cells.lstm import (
    GATE_NAMES,
    PEEPHOLE_GATES,
    LSTMStepCache,
    lstm_step_backward,
    lstm_step_train,
)
from lstmkit.gate import Gate, positive_int
from lstmkit.module import Parameter, accumulates_gradients, component
from lstmkit.state import LSTMState

__all__ = ["ProjectionLSTMCell", "ProjectionStepCache"]

Array = NDArray[Any]


@attrs.frozen(eq=False)
class ProjectionStepCache:
    """What :meth:`ProjectionLSTMCell.step_backward` needs from :meth:`ProjectionLSTMCell.step_train`."""

    lstm: LSTMStepCache  # the LSTM step's cache; its output is m
    m: Array  # o * cell_activation(c), before the projection
    h: Array  # the projected output


@config.configurable()
@component
class ProjectionLSTMCell(LSTMFamilyCell):
    """LSTM cell whose hidden state is projected to ``proj_size`` units (LSTMP).

    Besides the parameters below it takes the keyword options of
    :class:`~lstmkit.cells.gated.LSTMFamilyCell` (gate and candidate activations, initializers,
    ``forget_bias``, peepholes on forget, input and output, ``dtype``, ``rng``); weights are
    drawn in the order forget, input, candidate, output, projection.

    Parameters
    ----------
    input_size, hidden_size : int
        Features of each input ``x_t``; units of the cell state and of every gate.
    proj_size : int
        Features of the projected hidden state ``h`` (the output and the recurrent
        input); ``1 <= proj_size < hidden_size``.
    cell_activation : str or Activation, default "tanh"
        ``m = o * cell_activation(c)``, then ``h = m @ projection``.
    projection_initializer : str or callable, default "glorot_uniform"
        Initializer of ``projection`` (keyword only).

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
    #: Runners compute the gates' ``x @ W`` for a whole sequence before stepping (see
    #: ``lstmkit._hoisting``): this cell passes each step's ``x`` to its gates unchanged.
    accepts_hoisted_inputs = True
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
        state = check_lstm_state(state, x.shape[0], self.proj_size, self.hidden_size, self.dtype)
        m, c, lstm_cache = lstm_step_train(self, x, state.h, state.c)
        h = m @ self.projection.value  # project down before feeding back
        cache = ProjectionStepCache(lstm_cache, m, h)
        return LSTMState(h=h, c=c), h, cache

    @accumulates_gradients
    def step_backward(
        self, cache: ProjectionStepCache, d_state: LSTMState, d_y: Array
    ) -> tuple[LSTMState, Array]:
        """Back-propagate one step; returns ``(d_state_prev, d_x)`` and accumulates gradients."""
        check_step_cache(cache, ProjectionStepCache, d_y, like="h")
        dh = d_y + d_state.h
        self.projection.grad += cache.m.T @ dh
        dm = dh @ self.projection.value.T
        # The LSTM step below sees dm as its output's gradient and no separate recurrent one.
        return lstm_step_backward(self, cache.lstm, LSTMState(h=np.zeros_like(dm), c=d_state.c), dm)
