"""The gated recurrent unit (GRU), built from three gates.

Cho et al. (2014) merge the LSTM's cell and hidden states and its forget and
input gates. With row vectors and ``*`` elementwise::

    z = update(x, h_prev)                                  # sigmoid
    r = reset(x, h_prev)                                   # sigmoid
    n = tanh(x @ W_n + (r * h_prev) @ U_n + b_n)           # reset_after=False (Cho et al., Olah)
    n = tanh(x @ W_n + b_n + r * (h_prev @ U_n + b_hn))    # reset_after=True (PyTorch, Keras, cuDNN)
    h = (1 - z) * n + z * h_prev                           # update_convention="pytorch" (default)
    h = (1 - z) * h_prev + z * n                           # update_convention="olah"

Two conventions exist for each choice:

* **where the reset acts.** Before the recurrent product (Cho et al. 2014, Olah's
  figure, ONNX ``linear_before_reset=0``) or after it (PyTorch, Keras
  ``reset_after=True``, ONNX ``linear_before_reset=1``). After it, the reset also
  scales a separate recurrent bias ``b_hn``, so the cell owns one more parameter,
  :attr:`GRUCell.recurrent_bias`, which is PyTorch's ``b_hn`` exactly.
* **what z weighs.** Olah's figure weighs ``h_prev`` by ``1 - z`` (z = how much to
  update); Cho et al., PyTorch, Keras and ONNX weigh it by ``z`` (z = how much to
  keep). Since ``1 - sigmoid(a) = sigmoid(-a)`` the two are the same family of
  functions with the update gate's weights negated.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import config
from lstmkit._hoisting import input_gradient, input_product, recurrent_transposed
from lstmkit._tracing import record_gate
from lstmkit.cells.base import (
    check_state,
    check_step_cache,
    check_step_input,
)
from lstmkit.cells.gated import GatedCell
from lstmkit.gate import Gate, GateCache
from lstmkit.module import Parameter, accumulates_gradients, component
from lstmkit.state import HiddenState

__all__ = ["UPDATE_CONVENTIONS", "GRUCell", "GRUStepCache"]

Array = NDArray[Any]

GATE_NAMES = ("update", "reset", "candidate")
UPDATE_CONVENTIONS = ("pytorch", "olah")


@attrs.frozen(eq=False)
class GRUStepCache:
    """What :meth:`GRUCell.step_backward` needs from :meth:`GRUCell.step_train`."""

    update: GateCache
    reset: GateCache
    candidate: GateCache | None  # reset_after=False: the gate's own cache
    x: Array
    h_prev: Array
    h_gates: Array  # h_prev as the gates saw it (times the dropout mask, if any)
    h_mask: Array | None
    n: Array
    n_pre: Array | None  # reset_after=True: pre-activation of n (when the activation needs it)
    hu: Array | None  # reset_after=True: h_gates @ U_n + b_hn


def _check_update(instance: Any, attribute: Any, value: Any) -> None:
    if value not in UPDATE_CONVENTIONS:
        raise ValueError(
            f"update_convention: expected one of {list(UPDATE_CONVENTIONS)} ('pytorch': h = (1-z)*n + z*h_prev; "
            f"'olah': h = (1-z)*h_prev + z*n), received {value!r}"
        )


@config.configurable()
@component
class GRUCell(GatedCell):
    """Gated recurrent unit made of ``update``, ``reset`` and ``candidate`` gates.

    Besides the parameters below it takes the keyword options of
    :class:`~lstmkit.cells.gated.GatedCell` (gate and candidate activations, the initializers of
    every gate's ``W``, ``U``, ``b`` and of ``recurrent_bias``, ``dtype``, ``rng``); weights are
    drawn in the order update, reset, candidate, then ``b_hn``.

    Parameters
    ----------
    input_size, hidden_size : int
        Features of each input ``x_t``; units of the hidden state.
    reset_after : bool, default True
        Apply the reset gate after the recurrent product, ``r * (h @ U_n + b_hn)``
        (PyTorch, Keras default). False applies it before, ``(r * h) @ U_n`` (Cho et al.
        2014, Olah's figure).
    update_convention : {"pytorch", "olah"}, default "pytorch"
        ``"pytorch"``: ``h = (1 - z) * n + z * h_prev`` (also Cho et al., Keras, ONNX).
        ``"olah"``: ``h = (1 - z) * h_prev + z * n`` (Olah's figure).
    peephole, proj_size
        Not supported by a GRU (it has no cell state); anything but False/None raises.

    Attributes
    ----------
    update, reset, candidate : Gate
        ``W (input_size, hidden_size)``, ``U (hidden_size, hidden_size)``, ``b (hidden_size,)``.
    recurrent_bias : Parameter or None, shape (hidden_size,)
        ``b_hn``, the candidate's recurrent bias inside the reset (``reset_after=True`` only).

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import GRUCell, config
    >>> cell = GRUCell(3, 4, rng=0)
    >>> state, y = cell.step(cell.initial_state(2), np.ones((2, 3)))
    >>> type(state).__name__, y.shape
    ('HiddenState', (2, 4))
    """

    GATE_NAMES = GATE_NAMES
    #: Runners compute the gates' ``x @ W`` for a whole sequence before stepping (see
    #: ``lstmkit._hoisting``): this cell passes each step's ``x`` to its gates unchanged.
    accepts_hoisted_inputs = True
    STATE = HiddenState
    CONFIG_OPTIONS = ("reset_after", "update_convention")

    reset_after: bool = attrs.field(default=True, kw_only=True)
    update_convention: str = attrs.field(default="pytorch", kw_only=True, validator=_check_update)
    peephole: Any = attrs.field(default=False, kw_only=True, repr=False)
    proj_size: Any = attrs.field(default=None, kw_only=True, repr=False)
    update: Gate = attrs.field(init=False)
    reset: Gate = attrs.field(init=False)
    candidate: Gate = attrs.field(init=False)
    recurrent_bias: Parameter | None = attrs.field(init=False, default=None)

    #: The runners' variational dropout may pass ``h_mask`` to :meth:`step_train`: the
    #: GRU uses ``h_prev`` outside its gates too (in the update), where it must not be dropped.
    accepts_h_mask = True

    def _check_options(self) -> None:
        if not isinstance(self.reset_after, (bool, np.bool_)):
            raise TypeError(f"reset_after: expected a bool, received {self.reset_after!r}")
        if self.peephole not in (False, None):
            raise ValueError(
                f"peephole: a GRU has no cell state for a peephole to look at, received {self.peephole!r}; "
                "use LSTMCell(peephole=...) or CoupledLSTMCell(peephole=...)"
            )
        if self.proj_size not in (None, 0):
            raise ValueError(
                f"proj_size: projection (LSTMP, Sak et al. 2014) is defined for LSTM cells, not a GRU, "
                f"received {self.proj_size!r}; use ProjectionLSTMCell"
            )

    def _build_extra(self, rng: np.random.Generator) -> None:
        if self.reset_after:
            shape = (self.hidden_size,)
            init = self.candidate.bias_initializer
            self.recurrent_bias = Parameter(
                Gate._draw(init, shape, rng, self.dtype, "recurrent_bias")
            )

    def _config_options(self) -> dict[str, Any]:
        return {"reset_after": bool(self.reset_after), "update_convention": self.update_convention}

    @classmethod
    def _options_from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> dict[str, Any]:
        reset_after = ctx.bool(cfg, "reset_after")
        if reset_after:
            ctx.expect("recurrent_bias", (ctx.int(cfg, "hidden_size"),), ctx.dtype(cfg))
        convention = ctx.str(cfg, "update_convention", choices=UPDATE_CONVENTIONS)
        return {"reset_after": reset_after, "update_convention": convention}

    def state_sizes(self) -> dict[str, int]:
        """``h`` of ``hidden_size``."""
        return {"h": self.hidden_size}

    def _describe_extra(self) -> str:
        return f", reset_after={self.reset_after}, update_convention={self.update_convention!r}"

    def step_train(
        self, state: HiddenState, x: Array, h_mask: Array | None = None
    ) -> tuple[HiddenState, Array, GRUStepCache]:
        """:meth:`step` that also returns the cache :meth:`step_backward` needs.

        ``h_mask`` (batch, hidden_size), used by :class:`~lstmkit.VariationalDropout`,
        multiplies ``h_prev`` where it enters the gates' recurrent products only.
        """
        x = check_step_input(self, x)
        h = check_state(state, HiddenState, x.shape[0], dtype=self.dtype, h=self.hidden_size).h
        hg = h if h_mask is None else h * h_mask
        # --8<-- [start:gru]
        z, z_cache = self.update.forward_train(x, hg)
        r, r_cache = self.reset.forward_train(x, hg)
        n_cache = n_pre = hu = None
        if self.reset_after:
            assert self.recurrent_bias is not None
            cand = self.candidate
            hu = hg @ cand.U.value + self.recurrent_bias.value
            pre = input_product(cand, x) + cand.b.value + r * hu
            n = cand.activation(pre)
            record_gate(cand, pre, n)  # lstmkit.trace: the gate object is not called
            n_pre = None if cand.activation.derivative_from_output else pre
        else:
            n, n_cache = self.candidate.forward_train(x, r * hg)
        if self.update_convention == "pytorch":
            h_new = (1 - z) * n + z * h
        else:
            h_new = (1 - z) * h + z * n
        # --8<-- [end:gru]
        cache = GRUStepCache(z_cache, r_cache, n_cache, x, h, hg, h_mask, n, n_pre, hu)
        return HiddenState(h=h_new), h_new, cache

    @accumulates_gradients
    def step_backward(
        self, cache: GRUStepCache, d_state: HiddenState, d_y: Array
    ) -> tuple[HiddenState, Array]:
        """Back-propagate one step; returns ``(d_state_prev, d_x)`` and accumulates gradients."""
        check_step_cache(cache, GRUStepCache, d_y, like="n")
        dh = d_y + d_state.h
        z, r, n, h = cache.update.y, cache.reset.y, cache.n, cache.h_prev
        if self.update_convention == "pytorch":
            dn, dz, dh_direct = dh * (1 - z), dh * (h - n), dh * z
        else:
            dn, dz, dh_direct = dh * z, dh * (n - h), dh * (1 - z)
        if self.reset_after:
            assert self.recurrent_bias is not None and cache.hu is not None
            cand = self.candidate
            da = dn * cand.activation.grad(cache.n_pre, n)
            cand.b.grad += da.sum(axis=0)
            dx = input_gradient(cand, cache.x, da)  # dx share; W.grad += x.T @ da
            dhu = da * r
            dr = da * cache.hu
            cand.U.grad += cache.h_gates.T @ dhu
            self.recurrent_bias.grad += dhu.sum(axis=0)
            dhg = dhu @ recurrent_transposed(cand)
        else:
            assert cache.candidate is not None
            dx, d_rh, _ = self.candidate.backward(dn, cache.candidate)
            dr = d_rh * cache.h_gates
            dhg = d_rh * r
        for gate, d_gate, gate_cache in (
            (self.reset, dr, cache.reset),
            (self.update, dz, cache.update),
        ):
            dx_g, dh_g, _ = gate.backward(d_gate, gate_cache)
            dx = dx + dx_g
            dhg = dhg + dh_g
        if cache.h_mask is not None:
            dhg = dhg * cache.h_mask
        return HiddenState(h=dh_direct + dhg), dx
