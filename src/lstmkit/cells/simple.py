"""The simple (Elman) recurrent cell: one gate whose output is the new hidden state.

Elman (1990) feeds the hidden state back into the layer that computes it. With row
vectors::

    h = activation(x @ W + h_prev @ U + b)      # tanh by default

That is exactly one :class:`~lstmkit.Gate`, so the cell is a single gate named
``candidate`` and a hidden state. It is PyTorch's ``nn.RNN`` / ``nn.RNNCell``
(``nonlinearity="tanh"`` or ``"relu"``), Keras' ``SimpleRNN``, Flax's ``SimpleCell``
and ONNX's ``RNN`` operator; :mod:`lstmkit.interop` converts between them.
"""

from __future__ import annotations

from typing import Any

import attrs
from numpy.typing import NDArray

from lstmkit import activations, config
from lstmkit.cells.base import check_state, check_step_cache, check_step_input
from lstmkit.cells.gated import GatedCell
from lstmkit.gate import Gate, GateCache
from lstmkit.module import accumulates_gradients, component
from lstmkit.state import HiddenState

__all__ = ["SimpleRNNCell", "SimpleRNNStepCache"]

Array = NDArray[Any]

GATE_NAMES = ("candidate",)


def _activation_option(instance: Any, attribute: Any, value: Any) -> None:
    activations.get(value, argument=attribute.name)


@attrs.frozen(eq=False)
class SimpleRNNStepCache:
    """What :meth:`SimpleRNNCell.step_backward` needs from :meth:`SimpleRNNCell.step_train`."""

    candidate: GateCache
    h: Array  # the new hidden state (the step's output)


@config.configurable()
@component
class SimpleRNNCell(GatedCell):
    """Elman recurrent cell: ``h = activation(x @ W + h_prev @ U + b)``, one :class:`~lstmkit.Gate`.

    Besides the parameters below it takes the keyword options of
    :class:`~lstmkit.cells.gated.GatedCell` that concern its one gate: the initializers of
    ``W``, ``U`` and ``b`` (Glorot-uniform, orthogonal, zeros), ``dtype`` and ``rng``.

    Parameters
    ----------
    input_size, hidden_size : int
        Features of each input ``x_t``; units of the hidden state.
    candidate : Gate, optional
        The gate to use as it is (any :class:`~lstmkit.Gate`, including a subclass of your
        own, of sizes ``(input_size, hidden_size)`` and the cell's dtype, without a peephole);
        built from the options when not given.
    activation : str or Activation, default "tanh"
        The nonlinearity of the gate built here (keyword only); ``"relu"`` gives PyTorch's
        ``nonlinearity="relu"``. Swap it later with ``cell.candidate.activation = ...``.
    candidate_activation, gate_activation
        Not used: the cell's one nonlinearity is ``activation``. Anything but the defaults
        raises ``ValueError`` rather than being ignored.
    peephole, proj_size
        Not supported (the cell has no cell state); anything but False/None raises.

    Attributes
    ----------
    candidate : Gate
        ``W (input_size, hidden_size)``, ``U (hidden_size, hidden_size)``, ``b (hidden_size,)``;
        its output is the new hidden state.

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import SimpleRNNCell
    >>> cell = SimpleRNNCell(3, 4, activation="relu", rng=0)
    >>> state, y = cell.step(cell.initial_state(2), np.ones((2, 3)))
    >>> y.shape, cell.candidate.activation.name, bool((y >= 0).all())
    ((2, 4), 'relu', True)
    """

    GATE_NAMES = GATE_NAMES
    #: Runners compute the gates' ``x @ W`` for a whole sequence before stepping (see
    #: ``lstmkit._hoisting``): this cell passes each step's ``x`` to its gates unchanged.
    accepts_hoisted_inputs = True
    STATE = HiddenState

    candidate: Gate = attrs.field(default=None)
    activation: Any = attrs.field(
        default="tanh", kw_only=True, repr=False, validator=_activation_option
    )
    peephole: Any = attrs.field(default=False, kw_only=True, repr=False)
    proj_size: Any = attrs.field(default=None, kw_only=True, repr=False)

    def _check_options(self) -> None:
        act = activations.get(self.activation, argument="activation")
        for name, default in (("candidate_activation", "tanh"), ("gate_activation", "sigmoid")):
            value = activations.get(getattr(self, name), argument=name)
            # candidate_activation mirrors activation once built (a copy of the cell keeps it).
            if value is not activations.get(default) and (
                name == "gate_activation" or value is not act
            ):
                raise ValueError(
                    f"{name}: a SimpleRNNCell has one nonlinearity, set with activation=...; "
                    f"received {name}={getattr(self, name)!r}"
                )
        if self.peephole not in (False, None):
            raise ValueError(
                "peephole: a SimpleRNNCell has no cell state for a peephole to look at, "
                f"received {self.peephole!r}"
            )
        if self.proj_size not in (None, 0):
            raise ValueError(
                "proj_size: projection (LSTMP) is defined for LSTM cells, not a SimpleRNNCell, "
                f"received {self.proj_size!r}; use ProjectionLSTMCell"
            )
        # The gate named "candidate" is built with candidate_activation (see build_gates).
        self.candidate_activation = self.activation

    def state_sizes(self) -> dict[str, int]:
        """``h`` of ``hidden_size``."""
        return {"h": self.hidden_size}

    def _describe_extra(self) -> str:
        return f", activation={self.candidate.activation.name}"

    def step_train(
        self, state: HiddenState, x: Array
    ) -> tuple[HiddenState, Array, SimpleRNNStepCache]:
        """:meth:`step` that also returns the cache :meth:`step_backward` needs.

        Parameters
        ----------
        state : HiddenState
            ``h`` of shape (batch, hidden_size).
        x : ndarray, shape (batch, input_size)

        Returns
        -------
        state : HiddenState
            The new ``h``.
        y : ndarray, shape (batch, hidden_size)
            The output, equal to the new ``h``.
        cache : SimpleRNNStepCache
        """
        x = check_step_input(self, x)
        h_prev = check_state(state, HiddenState, x.shape[0], dtype=self.dtype, h=self.hidden_size).h
        # --8<-- [start:simple]
        h, h_cache = self.candidate.forward_train(x, h_prev)  # activation(x W + h_prev U + b)
        # --8<-- [end:simple]
        return HiddenState(h=h), h, SimpleRNNStepCache(candidate=h_cache, h=h)

    @accumulates_gradients
    def step_backward(
        self, cache: SimpleRNNStepCache, d_state: HiddenState, d_y: Array
    ) -> tuple[HiddenState, Array]:
        """Back-propagate one step; returns ``(d_state_prev, d_x)`` and accumulates gradients."""
        check_step_cache(cache, SimpleRNNStepCache, d_y, like="h")
        dx, dh_prev, _ = self.candidate.backward(d_y + d_state.h, cache.candidate)
        return HiddenState(h=dh_prev), dx
