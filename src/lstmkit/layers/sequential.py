"""``Sequential``: layers applied in order, runners and heads alike.

A :class:`Sequential` chains runners (``Recurrent``, ``Stacked``, ``Bidirectional``), bare
cells (wrapped in ``Recurrent``), feed-forward layers (``Dense``, pooling) and other
``Sequential`` models. Its state is the state of its recurrent layers; it validates
``lengths`` once per call (:func:`lstmkit.sequence.plan_for`) and hands the plan to every layer
inside, nested models included.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from lstmkit import config
from lstmkit.layers.dense import Dense
from lstmkit.layers.directions import BACKWARD, Layout, describe_layout, output_directions
from lstmkit.layers.final_state import FinalState
from lstmkit.layers.pooling import LastStep, _Pool
from lstmkit.module import (
    Module,
    accumulates_gradients,
    check_weights_since,
    component,
    weights_clock,
)
from lstmkit.runners.base import SequenceRunner
from lstmkit.runners.recurrent import Recurrent
from lstmkit.runners.stacked import as_runner
from lstmkit.sequence import (
    MaybeContext,
    MaybePlan,
    plan_for,
    run_runner,
    step_context,
)

__all__ = ["Sequential", "SequentialCache"]

Array = NDArray[Any]


def _has_state(layer: Any) -> bool:
    """Whether ``layer`` has a recurrent state: a runner, or a ``Sequential`` holding one."""
    if isinstance(layer, Sequential):
        return layer.has_state
    return hasattr(layer, "initial_state")


@attrs.define(eq=False)
class SequentialCache:
    """Training cache of :meth:`Sequential.forward`; ``final_state`` is the model's final state."""

    model: Any
    caches: list[Any]
    final_state: Any
    clock: int  # the weights clock when forward read the weights (see lstmkit.module)
    used: bool = False


@config.configurable()
@component
class Sequential(Module):
    """Layers applied in order: runners (``Recurrent``, ``Stacked``, ``Bidirectional``),
    bare cells (wrapped in ``Recurrent``), feed-forward layers (``Dense``, pooling) and
    other ``Sequential`` models.

    Parameters
    ----------
    *layers
        The layers, first to last.

    Notes
    -----
    A :class:`~lstmkit.layers.FinalState` without ``directions`` is stored with those of the
    layer before it (``model.layers[k]`` is then a new ``FinalState``); a
    :class:`~lstmkit.layers.LastStep` after a layer whose outputs come (partly) from a
    backward direction is refused with ``ValueError``, since it would read that direction's
    output after one step instead of its summary of the sequence.

    The model's state is the state of its recurrent layer; with several recurrent
    layers it is a tuple with one state per recurrent layer (``None`` entries allowed
    in an initial state). ``lengths`` is passed to every layer.

    A nested ``Sequential`` with a recurrent layer counts as one recurrent layer, whose
    state is the nested model's state; one without (feed-forward layers only) is a
    feed-forward layer. Either way it computes what its layers would compute inline.

    Examples
    --------
    >>> import numpy as np
    >>> from lstmkit import Dense, LSTMCell, Sequential
    >>> from lstmkit.layers import MeanPool
    >>> head = Sequential(MeanPool(), Dense(4, 2, "tanh", rng=1), Dense(2, 1, rng=2))
    >>> model = Sequential(LSTMCell(3, 4, rng=0), head)
    >>> y, state = model(np.ones((2, 5, 3)), lengths=[5, 3], return_state=True)
    >>> y.shape, head.has_state, type(state).__name__
    ((2, 1), False, 'LSTMState')
    """

    layers: list[Any]

    def __init__(self, *layers: Any) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("layers: expected at least one layer, received none")
        built = []
        for k, layer in enumerate(layers):
            if isinstance(layer, Sequential):
                built.append(layer)
            elif _has_state(layer):
                built.append(as_runner(layer, argument=f"layers[{k}]"))
            elif all(hasattr(layer, m) for m in ("forward", "backward")):
                built.append(layer)
            else:
                raise TypeError(
                    f"layers[{k}]: expected a runner, a cell or a layer, received {type(layer).__name__}"
                )
        for k in range(1, len(built)):
            prev = _out_size(built[k - 1])
            want = getattr(built[k], "input_size", None)
            if prev is not None and want is not None and prev != want:
                raise ValueError(
                    f"layers[{k}]: expected input size {prev} (the output of layers[{k - 1}]), received {want}"
                )
        self.layers = _bind_directions(built)

    @property
    def _recurrent(self) -> list[int]:
        return [k for k, layer in enumerate(self.layers) if _has_state(layer)]

    @property
    def has_state(self) -> bool:
        """Whether the model has a recurrent layer (else its state is None)."""
        return bool(self._recurrent)

    @property
    def input_size(self) -> int:
        return int(self.layers[0].input_size)

    @property
    def output_size(self) -> int | None:
        for layer in reversed(self.layers):
            size = _out_size(layer)
            if size is not None:
                return size
        return None

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.layers[0].dtype)

    def output_directions(self, incoming: Layout = None) -> Layout:
        """The time directions of the output features, given those of the input (see
        :func:`lstmkit.layers.directions.output_directions`)."""
        layout = incoming
        for layer in self.layers:
            layout = output_directions(layer, layout)
        return layout

    def initial_state(self, batch_size: int | None = None) -> Any:
        """Zero state of the recurrent layer(s); None if there is none."""
        states = tuple(self.layers[k].initial_state(batch_size) for k in self._recurrent)
        return self._pack(states)

    def _pack(self, states: tuple[Any, ...]) -> Any:
        if not states:
            return None
        return states[0] if len(states) == 1 else states

    def _unpack(self, state: Any, argument: str) -> list[Any]:
        n = len(self._recurrent)
        if state is None:
            return [None] * n
        if n == 1:
            return [state]
        if not isinstance(state, (tuple, list)) or len(state) != n:
            raise ValueError(
                f"{argument}: expected a tuple of {n} states (one per recurrent layer)"
            )
        return list(state)

    def __call__(
        self,
        x: Array,
        initial_state: Any = None,
        lengths: Any = None,
        *,
        return_state: bool = False,
    ) -> Any:
        """Inference.

        Parameters
        ----------
        x : ndarray, shape (batch, time, input_size) or (time, input_size)
        initial_state : state, optional
        lengths : array of int, shape (batch,), optional
        return_state : bool, default False
            Also return the final state.

        Returns
        -------
        y : ndarray
            The last layer's output, e.g. ``(batch, time, out)`` or ``(batch, out)`` after pooling.
        final_state : state
            Only with ``return_state``.
        """
        y, final, _ = self._run(x, initial_state, lengths, context=None, plan=None)
        return (y, final) if return_state else y

    def forward(
        self,
        x: Array,
        initial_state: Any = None,
        lengths: Any = None,
        *,
        training: bool = True,
        rng: Any = None,
    ) -> tuple[Array, SequentialCache]:
        """Training forward: ``(y, cache)``; the final state is ``cache.final_state``.

        ``training`` and ``rng`` reach every layer and every cell (see
        :meth:`Recurrent.forward <lstmkit.Recurrent.forward>`): with ``training=False`` the
        output is what inference gives.
        """
        y, _, cache = self._run(
            x, initial_state, lengths, context=step_context(training, rng), plan=None
        )
        assert cache is not None
        return y, cache

    _takes_plan = True  # an outer container passes its plan and context to _run

    def _run(
        self, x: Any, initial_state: Any, lengths: Any, *, context: MaybeContext, plan: MaybePlan
    ) -> tuple[Array, Any, SequentialCache | None]:
        """Inference (``context`` None, no cache) or a training forward pass, as a runner's.

        ``plan`` is an outer container's validated layout of this call's batch.
        """
        clock = weights_clock()
        states = iter(self._unpack(initial_state, "initial_state"))
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        if plan is None:
            plan = plan_for(x, lengths)  # validated and sorted once for every layer
        caches: list[Any] = []
        finals: list[Any] = []
        cache: Any
        for k, layer in enumerate(self.layers):
            if isinstance(layer, Recurrent) and k + 1 < len(self.layers):
                # The next layer reads its outputs; if it returns new arrays (all of lstmkit's
                # layers do), they never reach the caller and need no copy of their own.
                x, final, cache = layer._run(
                    x,
                    next(states),
                    lengths,
                    context=context,
                    plan=plan,
                    private_output=not _fresh_output(self.layers[k + 1]),
                )
                finals.append(final)
            elif _has_state(layer):
                x, final, cache = run_runner(
                    layer, x, next(states), lengths, context=context, plan=plan
                )
                finals.append(final)
            elif isinstance(layer, Sequential):  # feed-forward layers only
                x, _, cache = layer._run(x, None, lengths, context=context, plan=plan)
            elif isinstance(layer, _Pool):
                x, cache = layer._pool(x, lengths, plan)
            elif isinstance(layer, Dense) and context is not None:
                # x is the caller's for the first layer or after a layer of the user's; else an
                # array of this call's own, which the layer's cache may keep without a copy.
                internal = k > 0 and _fresh_output(self.layers[k - 1])
                x, cache = layer._forward(x, copy_input=not internal)
            elif context is None:
                x, cache = layer(x, lengths), None
            else:
                x, cache = layer.forward(x, lengths, training=context.training, rng=context.rng)
            caches.append(cache)
        final_state = self._pack(tuple(finals))
        if context is None:
            return x, final_state, None
        return x, final_state, SequentialCache(self, caches, final_state, clock)

    @accumulates_gradients
    def backward(
        self, cache: SequentialCache, dy: Array | None = None, d_state: Any = None
    ) -> tuple[Array, Any]:
        """Back-propagate through every layer; returns ``(dx, d_initial_state)``.

        ``dy`` is the gradient of the loss with respect to the output; ``d_state``
        (optional) with respect to the final state.

        Raises
        ------
        ValueError
            A weight of the model was replaced since :meth:`forward`; nothing is accumulated.
        """
        if not isinstance(cache, SequentialCache) or cache.model is not self:
            raise TypeError(
                f"cache: expected the SequentialCache from this model's forward(), received {type(cache).__name__}"
            )
        if cache.used:
            raise ValueError("cache: backward was already run on this cache; run forward again")
        check_weights_since(self, cache.clock)
        d_states = self._unpack(d_state, "d_state")
        d_inits: list[Any] = []
        grad: Any = dy
        r = len(d_states)
        for layer, layer_cache in zip(reversed(self.layers), reversed(cache.caches)):
            if _has_state(layer):
                r -= 1
                grad, d_init = layer.backward(layer_cache, grad, d_states[r])
                d_inits.append(d_init)
            elif grad is None:
                raise ValueError("dy: a feed-forward layer needs an output gradient, received None")
            elif isinstance(layer, Sequential):
                grad, _ = layer.backward(layer_cache, grad)
            else:
                grad = layer.backward(layer_cache, grad)
        cache.used = True
        return grad, self._pack(tuple(reversed(d_inits)))

    # -- configuration (see lstmkit.config) ------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """Every layer's configuration, first to last."""
        return {"layers": [config.to_config(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, cfg: dict[str, Any], ctx: config.BuildContext) -> Sequential:
        """A model from :meth:`to_config` output, its layers built in order."""
        ctx.check_keys(cfg, ["layers"])
        layers = ctx.list(cfg, "layers")
        return cls(
            *[ctx.build(layer, f"layers[{k}]", f"layers.{k}.") for k, layer in enumerate(layers)]
        )

    def describe(self) -> str:
        return f"Sequential({len(self.layers)} layers)"


def _bind_directions(layers: list[Any]) -> list[Any]:
    """The layers, each ``FinalState`` given the directions of the layer before it; a
    ``LastStep`` after a backward direction, or a head that cannot read its input, refused."""
    out = []
    layout: Layout = None  # the model's input
    for k, layer in enumerate(layers):
        if isinstance(layer, (LastStep, FinalState)):
            layer = _check_head(layer, layout, f"layers[{k}]", nested=False)
        elif isinstance(layer, Sequential):
            first, where = layer.layers[0], f"layers[{k}].layers[0]"
            while isinstance(first, Sequential):
                first, where = first.layers[0], where + ".layers[0]"
            if isinstance(first, (LastStep, FinalState)):
                _check_head(first, layout, where, nested=True)
        out.append(layer)
        layout = output_directions(layer, layout)
    return out


def _check_head(head: Any, layout: Layout, where: str, *, nested: bool) -> Any:
    """``head`` (or a ``FinalState`` with ``layout`` filled in) if it reads ``layout`` right."""
    backward = isinstance(layout, str) or (isinstance(layout, tuple) and BACKWARD in layout)
    if isinstance(head, LastStep):
        if backward:
            raise ValueError(
                f"{where}: LastStep after {describe_layout(layout)} would read the backward "
                "direction at each sequence's last valid step, where it has seen that step only; "
                "use FinalState() for each direction's final state (or MeanPool())"
            )
        return head
    if isinstance(layout, str):
        raise ValueError(
            f"{where}: FinalState cannot tell the directions apart after {layout}; "
            "use merge='concat' (or MeanPool())"
        )
    if not isinstance(layout, tuple):
        return head  # unknown input: the head's own directions (forward if None)
    if head.directions is None:
        if not nested:
            return head.with_directions(layout)
        if layout != ("forward",):
            raise ValueError(
                f"{where}: a FinalState first in a nested Sequential cannot see the layer before "
                f"it ({describe_layout(layout)}); give it directions={layout!r}"
            )
    elif head.directions != layout:
        raise ValueError(
            f"{where}: expected directions {layout!r} (those of the layer before), "
            f"received {head.directions!r}"
        )
    return head


def _fresh_output(layer: Any) -> bool:
    """Whether ``layer``'s outputs are always new arrays, never views of its input: true of
    lstmkit's runners, :class:`~lstmkit.Dense` and the pooling layers."""
    return isinstance(layer, (SequenceRunner, Dense, _Pool))


def _out_size(layer: Any) -> int | None:
    size = getattr(layer, "output_size", None)
    return None if size is None else int(size)
