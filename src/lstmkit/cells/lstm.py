"""The LSTM cell, built from four named gates.

Step by step (row vectors, ``*`` elementwise)::

    f = forget(x, h_prev)            # what to keep of the old cell state
    i = input(x, h_prev)             # how much of the candidate to write
    g = candidate(x, h_prev)         # the candidate values
    c = f * c_prev + i * g           # the cell-state update
    o = output(x, h_prev)            # what to expose
    h = o * cell_activation(c)

:meth:`LSTMCell.step` computes exactly that, gate by gate, and is the
readable reference. :meth:`LSTMCell.forward_sequence` computes the same numbers
for a whole sequence with the gates fused (see :mod:`lstmkit.cells.lstm_fused`).
"""

from __future__ import annotations

from typing import Any

import attrs
from numpy.typing import NDArray

from lstmkit import activations, config
from lstmkit.activations import Activation
from lstmkit.cells.base import check_lstm_state, check_step_cache, check_step_input
from lstmkit.cells.gated import LSTMFamilyCell
from lstmkit.gate import Gate, GateCache
from lstmkit.module import accumulates_gradients, component
from lstmkit.state import LSTMState

__all__ = ["LSTMCell", "LSTMStepCache"]

Array = NDArray[Any]

GATE_NAMES = ("forget", "input", "candidate", "output")
PEEPHOLE_GATES = ("forget", "input", "output")


@attrs.frozen(eq=False)
class LSTMStepCache:
    """What :meth:`LSTMCell.step_backward` needs from :meth:`LSTMCell.step_train`."""

    forget: GateCache
    input: GateCache
    candidate: GateCache
    output: GateCache
    c_prev: Array
    c: Array
    cell_out: Array  # cell_activation(c)


@config.configurable()
@component
class LSTMCell(LSTMFamilyCell):
    """Long short-term memory cell made of four :class:`~lstmkit.Gate` objects.

    Besides the parameters below it takes the keyword options of
    :class:`~lstmkit.cells.gated.LSTMFamilyCell`: ``gate_activation`` (default sigmoid, for the
    forget, input and output gates), ``candidate_activation`` (tanh), the initializers of every
    gate's ``W``, ``U``, ``b`` and ``p`` (Glorot-uniform, orthogonal, zeros, zeros),
    ``forget_bias`` (1.0), ``dtype`` (float64) and ``rng``; gates are drawn in the order forget,
    input, candidate, output.

    Parameters
    ----------
    input_size, hidden_size : int
        Features of each input ``x_t``; units of the hidden and cell states.
    forget, input, candidate, output : Gate, optional
        Gates to use as they are (a given forget gate keeps its bias). Any gate not given is
        built from the options; :meth:`reset_parameters` redraws all four from their own
        initializers and adds ``forget_bias`` to the forget gate's bias.
    cell_activation : str or Activation, default "tanh"
        Applied to the cell state before the output gate: ``h = o * cell_activation(c)``.
    peephole : bool or collection of {"forget", "input", "output"}, default False
        Diagonal peepholes: forget and input see ``c_{t-1}``, output sees ``c_t`` (keyword only).

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import LSTMCell
    >>> cell = LSTMCell(3, 5, gate_activation="hard_sigmoid", rng=0)
    >>> state = cell.initial_state(batch_size=2)
    >>> state, y = cell.step(state, np.ones((2, 3)))
    >>> y.shape
    (2, 5)
    >>> cell.forget.activation = "sigmoid"   # swap one gate's activation in place
    """

    GATE_NAMES = GATE_NAMES
    PEEPHOLE_GATES = PEEPHOLE_GATES
    #: Runners compute the gates' ``x @ W`` for a whole sequence before stepping (see
    #: ``lstmkit._hoisting``): this cell passes each step's ``x`` to its gates unchanged.
    accepts_hoisted_inputs = True

    forget: Gate = attrs.field(default=None)
    input: Gate = attrs.field(default=None)
    candidate: Gate = attrs.field(default=None)
    output: Gate = attrs.field(default=None)
    cell_activation: Activation = attrs.field(default=activations.tanh, converter=activations.get)

    def step(self, state: LSTMState, x: Array) -> tuple[LSTMState, Array]:
        """One time step.

        Parameters
        ----------
        state : LSTMState
            ``h`` and ``c`` of shape (batch, hidden_size).
        x : ndarray, shape (batch, input_size)

        Returns
        -------
        state : LSTMState
            The new ``(h, c)``.
        y : ndarray, shape (batch, hidden_size)
            The output, equal to the new ``h``.
        """
        x = check_step_input(self, x)
        state = check_lstm_state(state, x.shape[0], self.hidden_size, self.hidden_size, self.dtype)
        h_prev, c_prev = state.h, state.c
        # --8<-- [start:step]
        # --8<-- [start:forget]
        f = self.forget(x, h_prev, c_prev)  # forget gate
        # --8<-- [end:forget]
        # --8<-- [start:input]
        i = self.input(x, h_prev, c_prev)  # input gate
        g = self.candidate(x, h_prev)  # candidate values
        # --8<-- [end:input]
        # --8<-- [start:update]
        c = f * c_prev + i * g  # cell-state update
        # --8<-- [end:update]
        # --8<-- [start:output]
        o = self.output(x, h_prev, c)  # output gate (its peephole sees the new c)
        h = o * self.cell_activation(c)  # new hidden state
        # --8<-- [end:output]
        # --8<-- [end:step]
        return LSTMState(h=h, c=c), h

    def step_train(self, state: LSTMState, x: Array) -> tuple[LSTMState, Array, LSTMStepCache]:
        """:meth:`step` that also returns the cache :meth:`step_backward` needs."""
        x = check_step_input(self, x)
        state = check_lstm_state(state, x.shape[0], self.hidden_size, self.hidden_size, self.dtype)
        h, c, cache = lstm_step_train(self, x, state.h, state.c)
        return LSTMState(h=h, c=c), h, cache

    @accumulates_gradients
    def step_backward(
        self, cache: LSTMStepCache, d_state: LSTMState, d_y: Array
    ) -> tuple[LSTMState, Array]:
        """Back-propagate one step.

        Parameters
        ----------
        cache : LSTMStepCache
            From :meth:`step_train`.
        d_state : LSTMState
            Gradients arriving at the new ``(h, c)`` from later steps (or the final state).
        d_y : ndarray, shape (batch, hidden_size)
            Gradient arriving at this step's output.

        Returns
        -------
        d_state_prev : LSTMState
            Gradients of the previous ``(h, c)``.
        d_x : ndarray, shape (batch, input_size)
        """
        check_step_cache(cache, LSTMStepCache, d_y, like="c")
        return lstm_step_backward(self, cache, d_state, d_y)

    # -- fused whole-sequence path --------------------------------------------------------------

    def cannot_fuse(self) -> str | None:
        """Why :mod:`lstmkit.cells.lstm_fused` would not compute what :meth:`step` does, or None.

        The kernel implements this class's own step with :class:`~lstmkit.Gate`'s own affine
        map, for any :class:`~lstmkit.Activation` object (each supplies its own in-place
        forms). A subclass of this cell or of ``Gate`` may compute something else, so it runs
        step by step; a subclass that keeps the same numbers can override this method to
        return None and declare it.
        """
        if type(self) is not LSTMCell:
            return (
                f"{type(self).__name__} is a subclass of LSTMCell; the fused kernel computes "
                "LSTMCell's own step (override cannot_fuse to declare the subclass equivalent)"
            )
        for name, gate in self.gates.items():
            if type(gate) is not Gate:
                return (
                    f"the {name} gate is a {type(gate).__name__}, not a Gate; the fused kernel "
                    "computes Gate's own affine map"
                )
        return None

    def forward_sequence(
        self, x: Array, state: LSTMState, batch_sizes: Array | None = None, training: bool = False
    ) -> tuple[Array, LSTMState, Any]:
        """Run a time-major sequence with fused gates (used by runners).

        Parameters
        ----------
        x : ndarray, shape (time, batch, input_size)
            Time-major and already in the cell's dtype.
        state : LSTMState
            Initial state, arrays of shape (batch, hidden_size).
        batch_sizes : ndarray of int, shape (time,), optional
            Number of active sequences at each step; sequences must be sorted by length,
            longest first, so the active ones are a prefix. None means all are active.
        training : bool
            Keep the cache for :meth:`backward_sequence`.

        Returns
        -------
        y : ndarray, shape (time, batch, hidden_size)
            Outputs, zero past each sequence's length.
        final : LSTMState
            State at each sequence's last valid step.
        cache : object or None
        """
        from lstmkit.cells import lstm_fused

        return lstm_fused.forward(self, x, state, batch_sizes, training)

    def backward_sequence(
        self, cache: Any, dy: Array, d_final: LSTMState
    ) -> tuple[Array, LSTMState]:
        """Backward of :meth:`forward_sequence`: returns ``(dx, d_initial_state)``."""
        from lstmkit.cells import lstm_fused

        return lstm_fused.backward(self, cache, dy, d_final)


# -- the LSTM step, shared with the variants that extend it (projection) ------------------------


def lstm_step_train(
    cell: Any, x: Array, h_prev: Array, c_prev: Array
) -> tuple[Array, Array, LSTMStepCache]:
    """The training step of a cell with ``forget``, ``input``, ``candidate`` and ``output`` gates.

    Returns ``(h, c, cache)``; ``x``, ``h_prev`` and ``c_prev`` are already checked.
    """
    f, f_cache = cell.forget.forward_train(x, h_prev, c_prev)
    i, i_cache = cell.input.forward_train(x, h_prev, c_prev)
    g, g_cache = cell.candidate.forward_train(x, h_prev)
    c = f * c_prev + i * g
    o, o_cache = cell.output.forward_train(x, h_prev, c)
    cell_out = cell.cell_activation(c)
    h = o * cell_out
    cache = LSTMStepCache(f_cache, i_cache, g_cache, o_cache, c_prev=c_prev, c=c, cell_out=cell_out)
    return h, c, cache


def lstm_step_backward(
    cell: Any, cache: LSTMStepCache, d_state: LSTMState, d_y: Array
) -> tuple[LSTMState, Array]:
    """Back-propagate :func:`lstm_step_train`: ``(d_state_prev, d_x)``; accumulates gradients."""
    o, g, i, f = cache.output.y, cache.candidate.y, cache.input.y, cache.forget.y
    # --8<-- [start:step_backward]
    dh = d_y + d_state.h  # output and recurrent paths meet
    d_o = dh * cache.cell_out
    dc = d_state.c + dh * o * cell.cell_activation.grad(cache.c, cache.cell_out)
    dx, dh_prev, dc_peep = cell.output.backward(d_o, cache.output)
    if dc_peep is not None:
        dc = dc + dc_peep  # output peephole looks at c_t
    dc_prev = dc * f  # along the conveyor belt
    for gate, d_gate, gate_cache in (
        (cell.forget, dc * cache.c_prev, cache.forget),
        (cell.input, dc * g, cache.input),
        (cell.candidate, dc * i, cache.candidate),
    ):
        dx_g, dh_g, dc_g = gate.backward(d_gate, gate_cache)
        dx = dx + dx_g
        dh_prev = dh_prev + dh_g
        if dc_g is not None:
            dc_prev = dc_prev + dc_g  # forget/input peepholes see c_{t-1}
    # --8<-- [end:step_backward]
    return LSTMState(h=dh_prev, c=dc_prev), dx
