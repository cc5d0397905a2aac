"""The minimal gated unit (MGU), built from a forget gate and a candidate.

Zhou, Wu, Zhang and Zhou (2016), "Minimal gated unit for recurrent neural networks"
(arXiv:1603.09420), keep a single gate of the GRU: the forget gate ``f`` both resets the
recurrent input of the candidate and mixes the old state with the candidate. With row vectors
and ``*`` elementwise::

    f = forget(x, h_prev)                                 # sigmoid
    n = tanh(x @ W_n + b_n + f * (h_prev @ U_n + b_hn))   # reset_after=True (Flax, default)
    n = tanh(x @ W_n + (f * h_prev) @ U_n + b_n)          # reset_after=False (the paper)
    h = (1 - f) * n + f * h_prev                          # update_convention="flax" (default)
    h = (1 - f) * h_prev + f * n                          # update_convention="paper"

The defaults are Flax's ``nn.MGUCell`` (``reset_gate=True``): the forget gate scales the
recurrent product and a recurrent bias ``b_hn`` (which the cell owns as
:attr:`MGUCell.recurrent_bias`), and ``f`` is "how much to keep", as in an LSTM. The paper
writes the candidate as ``tanh(W_h [f * h_prev, x] + b_h)`` and the state as
``(1 - f) * h_prev + f * n``, so its ``f`` is "how much to replace". Since
``1 - sigmoid(a) = sigmoid(-a)`` the two update conventions are one family with the forget
gate's weights negated, but the same ``f`` also feeds the candidate, so only the update
convention, not the whole cell, is equivalent that way.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import config
from lstmkit._hoisting import input_gradient, input_product, recurrent_transposed
from lstmkit._tracing import record_gate
from lstmkit.cells.base import apply_forget_bias, check_state, check_step_cache, check_step_input
from lstmkit.cells.gated import GatedCell, _finite_number
from lstmkit.gate import Gate, GateCache
from lstmkit.module import Parameter, accumulates_gradients, component
from lstmkit.state import HiddenState

__all__ = ["MGU_UPDATE_CONVENTIONS", "MGUCell", "MGUStepCache"]

Array = NDArray[Any]

GATE_NAMES = ("forget", "candidate")
MGU_UPDATE_CONVENTIONS = ("flax", "paper")


@attrs.frozen(eq=False)
class MGUStepCache:
    """What :meth:`MGUCell.step_backward` needs from :meth:`MGUCell.step_train`."""

    forget: GateCache
    candidate: GateCache | None  # reset_after=False: the gate's own cache
    x: Array
    h_prev: Array
    h_gates: Array  # h_prev as the gates saw it (times the dropout mask, if any)
    h_mask: Array | None
    n: Array
    n_pre: Array | None  # reset_after=True: pre-activation of n (when the activation needs it)
    hu: Array | None  # reset_after=True: h_gates @ U_n + b_hn
    h: Array  # the new hidden state (the step's output)


def _check_update(instance: Any, attribute: Any, value: Any) -> None:
    if value not in MGU_UPDATE_CONVENTIONS:
        raise ValueError(
            f"update_convention: expected one of {list(MGU_UPDATE_CONVENTIONS)} ('flax': "
            f"h = (1-f)*n + f*h_prev; 'paper': h = (1-f)*h_prev + f*n), received {value!r}"
        )


@config.configurable()
@component
class MGUCell(GatedCell):
    """Minimal gated unit made of a ``forget`` gate and a ``candidate`` gate.

    Besides the parameters below it takes the keyword options of
    :class:`~lstmkit.cells.gated.GatedCell` (``gate_activation`` for the forget gate,
    ``candidate_activation``, the initializers of every gate's ``W``, ``U``, ``b`` and of
    ``recurrent_bias``, ``dtype``, ``rng``); weights are drawn in the order forget, candidate,
    then ``b_hn``.

    Parameters
    ----------
    input_size, hidden_size : int
        Features of each input ``x_t``; units of the hidden state.
    forget, candidate : Gate, optional
        Gates to use as they are (a given forget gate keeps its bias). With
        ``reset_after=True`` the candidate's weights enter ``f * (h @ U + b_hn)`` directly, so
        a subclass of :class:`~lstmkit.Gate` there (whose own arithmetic would be bypassed) is
        refused; with ``reset_after=False`` the candidate is called as a gate.
    reset_after : bool, default True
        Apply the forget gate after the recurrent product, ``f * (h @ U_n + b_hn)`` (Flax);
        False applies it before, ``(f * h) @ U_n`` (Zhou et al. 2016).
    update_convention : {"flax", "paper"}, default "flax"
        ``"flax"``: ``h = (1 - f) * n + f * h_prev``; ``"paper"``: ``h = (1 - f) * h_prev + f * n``.
    forget_bias : float, default 1.0
        Added to the initial forget-gate bias (Flax's ``forget_bias_init`` of ones); finite.
    peephole, proj_size
        Not supported (the cell has no cell state); anything but False/None raises.

    Attributes
    ----------
    forget, candidate : Gate
        ``W (input_size, hidden_size)``, ``U (hidden_size, hidden_size)``, ``b (hidden_size,)``.
    recurrent_bias : Parameter or None, shape (hidden_size,)
        ``b_hn``, the candidate's recurrent bias inside the forget product (``reset_after=True``
        only).

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import MGUCell
    >>> cell = MGUCell(3, 4, rng=0)
    >>> state, y = cell.step(cell.initial_state(2), np.ones((2, 3)))
    >>> y.shape, list(cell.gates), cell.num_parameters()
    ((2, 4), ['forget', 'candidate'], 68)
    """

    GATE_NAMES = GATE_NAMES
    #: Runners compute the gates' ``x @ W`` for a whole sequence before stepping (see
    #: ``lstmkit._hoisting``): this cell passes each step's ``x`` to its gates unchanged.
    accepts_hoisted_inputs = True
    STATE = HiddenState
    CONFIG_OPTIONS = ("reset_after", "update_convention", "forget_bias")

    forget: Gate = attrs.field(default=None)
    candidate: Gate = attrs.field(default=None)
    reset_after: bool = attrs.field(default=True, kw_only=True)
    update_convention: str = attrs.field(default="flax", kw_only=True, validator=_check_update)
    forget_bias: float = attrs.field(
        default=1.0, kw_only=True, repr=False, validator=_finite_number
    )
    peephole: Any = attrs.field(default=False, kw_only=True, repr=False)
    proj_size: Any = attrs.field(default=None, kw_only=True, repr=False)
    recurrent_bias: Parameter | None = attrs.field(init=False, default=None)

    #: The runners' variational dropout may pass ``h_mask`` to :meth:`step_train`: the MGU
    #: uses ``h_prev`` outside its gates too (in the update), where it must not be dropped.
    accepts_h_mask = True

    def _check_options(self) -> None:
        if not isinstance(self.reset_after, (bool, np.bool_)):
            raise TypeError(f"reset_after: expected a bool, received {self.reset_after!r}")
        if self.peephole not in (False, None):
            raise ValueError(
                "peephole: an MGU has no cell state for a peephole to look at, received "
                f"{self.peephole!r}; use LSTMCell(peephole=...)"
            )
        if self.proj_size not in (None, 0):
            raise ValueError(
                "proj_size: projection (LSTMP) is defined for LSTM cells, not an MGU, "
                f"received {self.proj_size!r}; use ProjectionLSTMCell"
            )
        self._check_candidate(self.candidate)

    def _check_candidate(self, gate: Any) -> None:
        if self.reset_after and gate is not None and type(gate) is not Gate:
            raise TypeError(
                f"candidate: with reset_after=True the MGU computes f * (h @ U + b_hn) from the "
                f"candidate's weights, bypassing a {type(gate).__name__}'s own arithmetic; use a "
                "plain Gate, or reset_after=False to have the candidate called as a gate"
            )

    def _after_gates(self, built: dict[str, Gate], given: dict[str, Any]) -> None:
        if given.get("forget") is None:  # a forget gate the user gives keeps its bias
            apply_forget_bias(self, built["forget"])

    def _build_extra(self, rng: np.random.Generator) -> None:
        if self.reset_after:
            shape = (self.hidden_size,)
            init = self.candidate.bias_initializer
            self.recurrent_bias = Parameter(
                Gate._draw(init, shape, rng, self.dtype, "recurrent_bias")
            )

    def _config_options(self) -> dict[str, Any]:
        return {
            "reset_after": bool(self.reset_after),
            "update_convention": self.update_convention,
            "forget_bias": float(self.forget_bias),
        }

    @classmethod
    def _options_from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> dict[str, Any]:
        reset_after = ctx.bool(cfg, "reset_after")
        if reset_after:
            ctx.expect("recurrent_bias", (ctx.int(cfg, "hidden_size"),), ctx.dtype(cfg))
        return {
            "reset_after": reset_after,
            "update_convention": ctx.str(cfg, "update_convention", choices=MGU_UPDATE_CONVENTIONS),
            "forget_bias": ctx.float(cfg, "forget_bias"),
        }

    def state_sizes(self) -> dict[str, int]:
        """``h`` of ``hidden_size``."""
        return {"h": self.hidden_size}

    def _describe_extra(self) -> str:
        return f", reset_after={self.reset_after}, update_convention={self.update_convention!r}"

    def step_train(
        self, state: HiddenState, x: Array, h_mask: Array | None = None
    ) -> tuple[HiddenState, Array, MGUStepCache]:
        """:meth:`step` that also returns the cache :meth:`step_backward` needs.

        Parameters
        ----------
        state : HiddenState
            ``h`` of shape (batch, hidden_size).
        x : ndarray, shape (batch, input_size)
        h_mask : ndarray, shape (batch, hidden_size), optional
            Used by :class:`~lstmkit.VariationalDropout`: multiplies ``h_prev`` where it enters
            the gates' recurrent products only.

        Returns
        -------
        state : HiddenState
        y : ndarray, shape (batch, hidden_size)
            The output, equal to the new ``h``.
        cache : MGUStepCache
        """
        x = check_step_input(self, x)
        h = check_state(state, HiddenState, x.shape[0], dtype=self.dtype, h=self.hidden_size).h
        self._check_candidate(self.candidate)  # it may have been swapped since construction
        hg = h if h_mask is None else h * h_mask
        # --8<-- [start:mgu]
        f, f_cache = self.forget.forward_train(x, hg)
        n_cache = n_pre = hu = None
        if self.reset_after:
            assert self.recurrent_bias is not None
            cand = self.candidate
            hu = hg @ cand.U.value + self.recurrent_bias.value
            pre = input_product(cand, x) + cand.b.value + f * hu
            n = cand.activation(pre)
            record_gate(cand, pre, n)  # lstmkit.trace: the gate object is not called
            n_pre = None if cand.activation.derivative_from_output else pre
        else:
            n, n_cache = self.candidate.forward_train(x, f * hg)
        if self.update_convention == "flax":
            h_new = (1 - f) * n + f * h
        else:
            h_new = (1 - f) * h + f * n
        # --8<-- [end:mgu]
        cache = MGUStepCache(f_cache, n_cache, x, h, hg, h_mask, n, n_pre, hu, h_new)
        return HiddenState(h=h_new), h_new, cache

    @accumulates_gradients
    def step_backward(
        self, cache: MGUStepCache, d_state: HiddenState, d_y: Array
    ) -> tuple[HiddenState, Array]:
        """Back-propagate one step; returns ``(d_state_prev, d_x)`` and accumulates gradients."""
        check_step_cache(cache, MGUStepCache, d_y, like="h")
        dh = d_y + d_state.h
        f, n, h = cache.forget.y, cache.n, cache.h_prev
        if self.update_convention == "flax":
            dn, df, dh_direct = dh * (1 - f), dh * (h - n), dh * f
        else:
            dn, df, dh_direct = dh * f, dh * (n - h), dh * (1 - f)
        if self.reset_after:
            assert self.recurrent_bias is not None and cache.hu is not None
            cand = self.candidate
            da = dn * cand.activation.grad(cache.n_pre, n)
            cand.b.grad += da.sum(axis=0)
            dx = input_gradient(cand, cache.x, da)  # dx share; W.grad += x.T @ da
            dhu = da * f
            df = df + da * cache.hu
            cand.U.grad += cache.h_gates.T @ dhu
            self.recurrent_bias.grad += dhu.sum(axis=0)
            dhg = dhu @ recurrent_transposed(cand)
        else:
            assert cache.candidate is not None
            dx, d_fh, _ = self.candidate.backward(dn, cache.candidate)
            df = df + d_fh * cache.h_gates
            dhg = d_fh * f
        dx_f, dh_f, _ = self.forget.backward(df, cache.forget)
        dx = dx + dx_f
        dhg = dhg + dh_f
        if cache.h_mask is not None:
            dhg = dhg * cache.h_mask
        return HiddenState(h=dh_direct + dhg), dx
