"""The LSTM with coupled forget and input gates (CIFG).

Olah's second variant: instead of deciding separately what to forget and what
to write, the cell writes new values exactly where it forgets old ones. The
input gate is gone; ``1 - f`` takes its place (row vectors, ``*`` elementwise)::

    f = forget(x, h_prev [, c_prev])     # what to keep of the old cell state
    g = candidate(x, h_prev)             # the candidate values
    c = f * c_prev + (1 - f) * g         # coupled update
    o = output(x, h_prev [, c])          # what to expose
    h = o * cell_activation(c)

This is ONNX's LSTM with ``input_forget=1`` and Greff et al.'s (2017) "CIFG"
variant. Optional diagonal peepholes work as in :class:`~lstmkit.LSTMCell`:
the forget gate sees ``c_{t-1}``, the output gate sees ``c_t``.
"""

from __future__ import annotations

from typing import Any

import attrs
from numpy.typing import NDArray

from lstmkit import activations, config
from lstmkit.activations import Activation
from lstmkit.cells.base import (
    check_lstm_state,
    check_step_cache,
    check_step_input,
)
from lstmkit.cells.gated import LSTMFamilyCell
from lstmkit.gate import Gate, GateCache
from lstmkit.module import accumulates_gradients, component
from lstmkit.state import LSTMState

__all__ = ["CoupledLSTMCell", "CoupledStepCache"]

Array = NDArray[Any]

GATE_NAMES = ("forget", "candidate", "output")
PEEPHOLE_GATES = ("forget", "output")


def _no_input_peephole(names: frozenset[str]) -> None:
    if "input" in names:
        raise ValueError(
            "peephole: a coupled cell has no input gate (it uses 1 - forget), so it cannot have an "
            f"input peephole; expected a subset of {list(PEEPHOLE_GATES)}, received {sorted(names)}"
        )


@attrs.frozen(eq=False)
class CoupledStepCache:
    """What :meth:`CoupledLSTMCell.step_backward` needs from :meth:`CoupledLSTMCell.step_train`."""

    forget: GateCache
    candidate: GateCache
    output: GateCache
    c_prev: Array
    c: Array
    cell_out: Array


@config.configurable()
@component
class CoupledLSTMCell(LSTMFamilyCell):
    """LSTM cell whose input gate is ``1 - forget`` (coupled input and forget gates).

    Besides the parameters below it takes the keyword options of
    :class:`~lstmkit.cells.gated.LSTMFamilyCell` (gate and candidate activations, initializers,
    ``forget_bias``, ``peephole_initializer``, ``dtype``, ``rng``); gates are drawn in the order
    forget, candidate, output.

    Parameters
    ----------
    input_size, hidden_size : int
        Features of each input ``x_t``; units of the hidden and cell states.
    cell_activation : str or Activation, default "tanh"
        ``h = o * cell_activation(c)``.
    gate_activation : str or Activation, default "sigmoid"
        Activation of the forget and output gates. It must map into [0, 1] for
        ``1 - f`` to be a gate; sigmoid and hard_sigmoid do.
    peephole : bool or collection of {"forget", "output"}, default False
        Diagonal peepholes: forget sees ``c_{t-1}``, output sees ``c_t``.

    Attributes
    ----------
    forget, candidate, output : Gate
        ``W (input_size, hidden_size)``, ``U (hidden_size, hidden_size)``, ``b (hidden_size,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import CoupledLSTMCell
    >>> cell = CoupledLSTMCell(3, 5, rng=0)
    >>> state, y = cell.step(cell.initial_state(2), np.ones((2, 3)))
    >>> y.shape, sorted(cell.gates)
    ((2, 5), ['candidate', 'forget', 'output'])
    """

    GATE_NAMES = GATE_NAMES
    #: Runners compute the gates' ``x @ W`` for a whole sequence before stepping (see
    #: ``lstmkit._hoisting``): this cell passes each step's ``x`` to its gates unchanged.
    accepts_hoisted_inputs = True
    PEEPHOLE_GATES = PEEPHOLE_GATES

    cell_activation: Activation = attrs.field(default=activations.tanh, converter=activations.get)
    forget: Gate = attrs.field(init=False)
    candidate: Gate = attrs.field(init=False)
    output: Gate = attrs.field(init=False)

    def _check_peephole_names(self, names: frozenset[str]) -> None:
        _no_input_peephole(names)

    def step_train(self, state: LSTMState, x: Array) -> tuple[LSTMState, Array, CoupledStepCache]:
        """:meth:`step` that also returns the cache :meth:`step_backward` needs."""
        x = check_step_input(self, x)
        state = check_lstm_state(state, x.shape[0], self.hidden_size, self.hidden_size, self.dtype)
        h_prev, c_prev = state.h, state.c
        # --8<-- [start:coupled]
        f, f_cache = self.forget.forward_train(x, h_prev, c_prev)
        g, g_cache = self.candidate.forward_train(x, h_prev)
        c = f * c_prev + (1 - f) * g  # write exactly where we forget
        # --8<-- [end:coupled]
        o, o_cache = self.output.forward_train(x, h_prev, c)
        cell_out = self.cell_activation(c)
        h = o * cell_out
        cache = CoupledStepCache(f_cache, g_cache, o_cache, c_prev=c_prev, c=c, cell_out=cell_out)
        return LSTMState(h=h, c=c), h, cache

    @accumulates_gradients
    def step_backward(
        self, cache: CoupledStepCache, d_state: LSTMState, d_y: Array
    ) -> tuple[LSTMState, Array]:
        """Back-propagate one step; returns ``(d_state_prev, d_x)`` and accumulates gradients."""
        check_step_cache(cache, CoupledStepCache, d_y, like="c")
        o, g, f = cache.output.y, cache.candidate.y, cache.forget.y
        dh = d_y + d_state.h
        dc = d_state.c + dh * o * self.cell_activation.grad(cache.c, cache.cell_out)
        dx, dh_prev, dc_peep = self.output.backward(dh * cache.cell_out, cache.output)
        if dc_peep is not None:
            dc = dc + dc_peep
        dc_prev = dc * f
        # d c / d f = c_prev - g: forgetting more also writes less.
        for gate, d_gate, gate_cache in (
            (self.forget, dc * (cache.c_prev - g), cache.forget),
            (self.candidate, dc * (1 - f), cache.candidate),
        ):
            dx_g, dh_g, dc_g = gate.backward(d_gate, gate_cache)
            dx = dx + dx_g
            dh_prev = dh_prev + dh_g
            if dc_g is not None:
                dc_prev = dc_prev + dc_g
        return LSTMState(h=dh_prev, c=dc_prev), dx
