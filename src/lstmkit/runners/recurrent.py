"""``Recurrent``: walk any cell over a sequence, forward and backward in time.

The runner owns the time loop; the cell owns one step. Inputs are batch-first
``(batch, time, features)`` or unbatched ``(time, features)`` as in the seed.
Internally the runner works time-major, sorts a variable-length batch longest
first so the active sequences at each step are a prefix (PyTorch's "packed"
layout), and reverses each sequence within its own length when ``reverse`` is
set. A cell whose fused ``forward_sequence``/``backward_sequence`` computes exactly
what its steps compute (see :func:`lstmkit.protocols.fused_refusal`) runs fused, such
as a plain :class:`~lstmkit.LSTMCell`; any other cell, including a subclass or a cell
holding a user's gate subclass, is stepped one time step at a time through the cell
contract.

Behaviour at the edges, by design:

* past a sequence's length its outputs are zero and its state stays as it was
  at its last valid step (a length of 0 returns the initial state);
* a time axis of length 0 returns an empty output ``(batch, 0, output)`` and
  the initial state unchanged.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import config
from lstmkit._tracing import RECORDER
from lstmkit.cells.base import WrapsCell
from lstmkit.module import accumulates_gradients, check_weights_since, component, weights_clock
from lstmkit.protocols import fused_refusal
from lstmkit.runners._aliasing import copy_state, private, private_state
from lstmkit.runners._checks import (
    check_flag,
    check_fused,
    check_gradient,
    check_sequence,
    check_state,
    step_shape,
    unbatched_to_batched,
)
from lstmkit.runners._stepping import backward_steps, forward_steps
from lstmkit.runners.base import SequenceRunner
from lstmkit.sequence import MaybeContext, MaybePlan, plan_sequence
from lstmkit.state import map_state

__all__ = ["Recurrent", "RecurrentCache"]

Array = NDArray[Any]


@attrs.define(eq=False)
class _Plan:
    """How a call's batch is laid out in time-major order."""

    unbatched: bool
    batch: int
    time: int
    order: Array | None  # sorted position -> original row
    time_index: Array | None  # (T, B) source time of each processed step (reverse)
    batch_sizes: Array | None


@attrs.define(eq=False)
class RecurrentCache:
    """Training cache of :meth:`Recurrent.forward`; pass it to :meth:`Recurrent.backward`."""

    runner: Any
    plan: _Plan
    cell_cache: Any
    fused: bool
    final_template: Any
    clock: int  # the weights clock when forward read the weights (see lstmkit.module)
    used: bool = False


@config.configurable()
@component
class Recurrent(WrapsCell, SequenceRunner):
    """Run a cell over sequences.

    Parameters
    ----------
    cell : cell
        Any object keeping the cell contract (see :mod:`lstmkit.cells.base`).
    reverse : bool, default False
        Process each sequence from its last valid step to its first; outputs are
        returned in the original time order.
    fused : bool or None, default None
        ``None`` takes the cell's fused ``forward_sequence``/``backward_sequence`` when
        the cell declares that it computes what its steps compute
        (:func:`lstmkit.protocols.fused_refusal`), and steps it otherwise. ``True``
        requires the fused path and raises ``TypeError`` naming the reason when the cell
        cannot take it; ``False`` always steps (same numbers, slower). Stepping a cell that
        declares ``accepts_hoisted_inputs`` (the built-in gated cells do) still lets its gates'
        input side of the backward run as one product per sequence (``lstmkit._hoisting``).

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import LSTMCell, Recurrent
    >>> rnn = Recurrent(LSTMCell(3, 5, rng=0))
    >>> y, state = rnn(np.ones((2, 4, 3)), lengths=[4, 2])
    >>> y.shape, state.h.shape
    ((2, 4, 5), (2, 5))
    >>> bool(np.all(y[1, 2:] == 0))
    True
    """

    cell: Any = attrs.field()
    reverse: bool = attrs.field(
        default=False, kw_only=True, validator=lambda i, a, v: check_flag(a.name, v)
    )
    fused: bool | None = attrs.field(
        default=None, kw_only=True, validator=lambda i, a, v: check_fused(v)
    )

    @cell.validator
    def _check_cell(self, attribute: Any, value: Any) -> None:
        missing = [
            m
            for m in ("input_size", "hidden_size", "dtype", "initial_state", "step")
            if not hasattr(value, m)
        ]
        if missing:
            raise TypeError(
                f"cell: expected an object keeping the cell contract, received "
                f"{type(value).__name__} without {', '.join(missing)}"
            )

    def __attrs_post_init__(self) -> None:
        if self.fused:
            self.uses_fused()  # raises now rather than at the first call

    def uses_fused(self) -> bool:
        """Whether a call runs the cell's fused sequence path (see ``fused``).

        Raises
        ------
        TypeError
            ``fused=True`` and the cell cannot take the fused path (the message says why).
        """
        if self.fused is False:
            return False
        reason = fused_refusal(self.cell)
        if reason is None:
            return True
        if self.fused:
            raise TypeError(f"fused: True needs a fused sequence path, but {reason}")
        return False

    def initial_state(self, batch_size: int | None = None) -> Any:
        """The cell's zero state (unbatched when ``batch_size`` is None)."""
        return self.cell.initial_state(batch_size)

    # -- public API -----------------------------------------------------------------------------

    def check_backward(
        self, cache: RecurrentCache, dy: Array | None = None, d_state: Any = None
    ) -> tuple[Array, Any]:
        """Validate the arguments of :meth:`backward` without changing anything.

        Containers (``Stacked``, ``Bidirectional``) call this for every layer before any
        layer's backward runs, so a bad argument never leaves gradients half-accumulated.

        Returns
        -------
        dy : ndarray
            The upstream output gradient, zeros where None, in the runner's dtype.
        d_final : state
            The upstream final-state gradient, zeros where None, in the runner's dtype.
        """
        self._unused_cache(cache, RecurrentCache)
        check_weights_since(self, cache.clock)
        plan = cache.plan
        B, T, O = plan.batch, plan.time, step_shape(self.cell, "output")
        dt = self.dtype
        y_shape = (T, *O) if plan.unbatched else (B, T, *O)
        dy = np.zeros(y_shape, dt) if dy is None else check_gradient(dy, y_shape, dt, argument="dy")
        template = cache.final_template
        if d_state is None:
            d_final = map_state(np.zeros_like, template)
        else:
            if plan.unbatched:
                d_state = unbatched_to_batched(d_state, "d_state")
            d_final = check_state(d_state, template, dt, argument="d_state")
        return dy, d_final

    @accumulates_gradients
    def backward(
        self, cache: RecurrentCache, dy: Array | None = None, d_state: Any = None
    ) -> tuple[Array, Any]:
        """Back-propagate through time.

        Gradients of the cell's parameters are accumulated into their ``grad`` (holding
        :data:`lstmkit.module.GRADIENT_LOCK`).

        Parameters
        ----------
        cache : RecurrentCache
            From :meth:`forward` of this runner.
        dy : ndarray, optional
            Gradient of the loss with respect to the outputs, shaped like them; zeros if None.
        d_state : state, optional
            Gradient with respect to the final state; zeros if None.

        Returns
        -------
        dx : ndarray
            Gradient with respect to ``x``, shaped like it.
        d_initial_state : state
            Gradient with respect to the initial state.

        Raises
        ------
        ValueError
            The weights were replaced since :meth:`forward` (see
            :func:`lstmkit.module.check_weights_since`); nothing is accumulated.
        """
        dy, d_final = self.check_backward(cache, dy, d_state)
        plan = cache.plan
        B, T = plan.batch, plan.time
        dt = self.dtype
        cache.used = True

        dyt = (dy[None] if plan.unbatched else dy).swapaxes(0, 1)
        dyt, d_final = self._to_processing(dyt, d_final, plan)
        if T == 0:
            dxt = np.zeros((0, B, *step_shape(self.cell, "input")), dt)
            d_init = d_final
        elif cache.fused:
            dxt, d_init = self.cell.backward_sequence(
                cache.cell_cache, np.ascontiguousarray(dyt), d_final
            )
        else:
            dxt, d_init = backward_steps(
                self.cell,
                cache.cell_cache,
                dyt,
                d_final,
                plan.batch_sizes,
                step_shape(self.cell, "input"),
            )
        return self._to_caller(dxt, d_init, plan)

    # -- internals ------------------------------------------------------------------------------

    def _run(
        self,
        x: Any,
        initial_state: Any,
        lengths: Any,
        *,
        context: MaybeContext,
        plan: MaybePlan,
        private_output: bool = True,
    ) -> tuple[Array, Any, RecurrentCache | None]:
        """Inference (``context`` None, no cache) or a training forward pass.

        ``plan`` is a container's validated layout of this call's batch; ``lengths`` is
        ignored when a plan that fits ``x`` is given. ``private_output=False`` is for a
        container that only computes with ``y`` (the next layer's input, a merge), so ``y``
        never reaches its caller: training then skips the copy that keeps ``y`` apart from the
        cell's cache.
        """
        training = context is not None
        clock = weights_clock() if training else 0  # read before any weight is
        dt = self.dtype
        in_shape = step_shape(self.cell, "input")
        x = check_sequence(x, self.input_size, dt, step_shape=in_shape)
        unbatched = x.ndim == len(in_shape) + 1
        xb = x[None] if unbatched else x
        B, T = xb.shape[0], xb.shape[1]
        if plan is None or unbatched or not plan.fits(B, T):
            plan = plan_sequence(B, T, lengths, unbatched=unbatched)
        template = self.cell.initial_state(B)
        if initial_state is None:
            state = template
        else:
            if unbatched:
                initial_state = unbatched_to_batched(initial_state, "initial_state")
            state = check_state(initial_state, template, dt)
        layout = _Plan(unbatched, B, T, plan.order, plan.time_index(self.reverse), plan.batch_sizes)

        xt, state = self._to_processing(np.ascontiguousarray(xb.swapaxes(0, 1)), state, layout)
        xt = np.ascontiguousarray(xt)
        if training:
            # The cache keeps xt and (stepping) the state: never the caller's arrays. Here xt is
            # still a view of x for a batch of one (or a single step), and the state is the
            # caller's unless a sort reordered it.
            xt = private(xt, x)
            state = private_state(state, initial_state)

        use_fused = self.uses_fused()
        recorder = RECORDER.get()  # lstmkit.trace: one context-variable read when off
        recording = None if recorder is None else recorder.begin(self, layout)
        if T == 0:
            yt = np.zeros((0, B, *step_shape(self.cell, "output")), dt)
            final_t, cell_cache = map_state(np.copy, state), None
        elif use_fused:
            # A trace reads the gates from the kernel's training cache (same numbers).
            yt, final_t, cell_cache = self.cell.forward_sequence(
                xt, state, layout.batch_sizes, training or recording is not None
            )
            if recording is not None:
                recording.fused(cell_cache)
                cell_cache = cell_cache if training else None
        else:
            yt, final_t, cell_cache = forward_steps(
                self.cell,
                xt,
                state,
                layout.batch_sizes,
                context,
                step_shape(self.cell, "output"),
                recording,
            )
        if recording is not None:
            recording.finish()

        y, final = self._to_caller(yt, final_t, layout)
        cache = None
        if training:
            if T > 0:
                # What the caller gets back is its own. The cell's outputs may be its cache's
                # arrays (the fused kernel's y is a view of its hidden-state cache; a stepped
                # cell's final state is its last step's): copied unless _to_caller's
                # reordering already made new ones. One output-sized copy at most.
                if private_output:
                    y = private(y, yt)
                if layout.order is None:  # else a gather made the final state anew
                    final = copy_state(final)
            cache = RecurrentCache(
                runner=self,
                plan=layout,
                cell_cache=cell_cache,
                fused=use_fused,
                final_template=template,
                clock=clock,
            )
        return y, final, cache

    def _to_processing(self, at: Array, state: Any, plan: _Plan) -> tuple[Array, Any]:
        """A time-major array and a state of the caller's batch, in processing order."""
        if plan.order is not None:
            at = at[:, plan.order]
            state = map_state(lambda a: a[plan.order], state)
        return self._to_processing_order(at, plan), state

    def _to_caller(self, at: Array, state: Any, plan: _Plan) -> tuple[Array, Any]:
        """The inverse of :meth:`_to_processing`, then batch-first (unbatched if the call was)."""
        at = self._from_processing_order(at, plan)
        if plan.order is not None:
            inverse = np.argsort(plan.order)
            at = at[:, inverse]
            state = map_state(lambda a: a[inverse], state)
        out = at.swapaxes(0, 1)
        if plan.unbatched:
            return out[0], map_state(lambda a: a[0], state)
        return out, state

    @staticmethod
    def _to_processing_order(a: Array, plan: _Plan) -> Array:
        # Reversal within each length is an involution, so the same gather maps both ways.
        if plan.time_index is None:
            return a
        return a[plan.time_index, np.arange(plan.batch)[None, :]]

    _from_processing_order = _to_processing_order

    # -- configuration (see lstmkit.config) ------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """The cell's configuration, ``reverse`` and ``fused`` (None, True or False)."""
        return {
            "cell": config.to_config(self.cell),
            "reverse": bool(self.reverse),
            "fused": None if self.fused is None else bool(self.fused),
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> Recurrent:
        """A runner from :meth:`to_config` output, around the cell the file describes."""
        ctx.check_keys(cfg, ["cell", "reverse", "fused"])
        reverse = ctx.bool(cfg, "reverse")
        fused = None if cfg.get("fused") is None else ctx.bool(cfg, "fused")
        return cls(ctx.build(cfg["cell"], "cell", "cell."), reverse=reverse, fused=fused)

    def describe(self) -> str:
        flags = []
        if self.reverse:
            flags.append("reverse")
        if self.fused is not None:
            flags.append("fused" if self.fused else "unfused")
        extra = f", {', '.join(flags)}" if flags else ""
        return f"Recurrent(input={self.input_size}, output={self.output_size}{extra})"
